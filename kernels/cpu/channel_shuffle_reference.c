/*
 * channel_shuffle_reference.c: cpu/channel_shuffle/reference, ShuffleNetV2's
 * channel_shuffle(x, groups) of an [n, c, h, w] tensor: x viewed as [n, groups,
 * c / groups, h, w], dims 1 and 2 transposed, viewed back, so output channel
 * j * groups + i is input channel i * (c / groups) + j.  One h*w plane copied
 * per channel, into a buffer of its own (only mul runs in place).  Its own
 * reference (tests/test_cpu_kernels.c checks it element by element against
 * that index rule).
 */
#include "cpu_internal.h"

static bool shuffle_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHANNEL_SHUFFLE && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status shuffle_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const int64_t n = step->in[0].dims[0], c = step->in[0].dims[1];
    const int64_t plane = step->in[0].dims[2] * step->in[0].dims[3];
    const int64_t groups = step->op->attrs.channel_shuffle.groups, per_group = c / groups;
    const float *x = step->in[0].data;
    float *y = step->out.data;
#pragma omp parallel for collapse(2) schedule(static) if (n * c * plane >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t b = 0; b < n; b++)
        for (int64_t oc = 0; oc < c; oc++) {
            const int64_t ic = (oc % groups) * per_group + oc / groups;
            memcpy(y + (b * c + oc) * plane, x + (b * c + ic) * plane, (size_t)plane * sizeof(float));
        }
    return JP_OK;
}

const jp_kernel jp_cpu_channel_shuffle_reference = {
    .name = "cpu/channel_shuffle/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CHANNEL_SHUFFLE,
    .is_reference = true,
    .priority = 0,
    .supports = shuffle_supports,
    .run = shuffle_run,
};
