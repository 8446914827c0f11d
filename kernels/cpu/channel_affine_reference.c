/*
 * channel_affine_reference.c: cpu/channel_affine/reference,
 * y[n, c, h, w] = x[n, c, h, w] * scale[c] + shift[c] with the constants of
 * the op's attributes: GoogLeNet's and Inception v3's transform_input, which
 * torchvision computes as x[:, c] * scale + shift, a multiply rounded before
 * the add (no FMA here either).  It runs once on the 3-channel input: one
 * pass, nothing to gain from a faster kernel.
 */
#include "cpu_internal.h"

static bool affine_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHANNEL_AFFINE && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status affine_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    const jp_channel_affine_attrs *a = &step->op->attrs.channel_affine;
    const float *x = step->in[0].data;
    float *y = step->out.data;
    const int64_t c = step->in[0].dims[1], planes = step->in[0].dims[0] * c;
    const int64_t hw = step->in[0].dims[2] * step->in[0].dims[3];
    for (int64_t pl = 0; pl < planes; pl++) {
        /* volatile: the product is rounded to float before the add, as
         * torch's two elementwise kernels do, whatever the compiler fuses. */
        const float s = a->scale[pl % c], t = a->shift[pl % c];
        for (int64_t i = 0; i < hw; i++) {
            volatile float p = x[pl * hw + i] * s;
            y[pl * hw + i] = p + t;
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_channel_affine_reference = {
    .name = "cpu/channel_affine/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CHANNEL_AFFINE,
    .is_reference = true,
    .priority = 0,
    .supports = affine_supports,
    .run = affine_run,
};
