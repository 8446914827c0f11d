/*
 * mul_reference.c: cpu/mul/reference, y[n,c,h,w] = s[n,c,1,1] * x[n,c,h,w]
 * (EfficientNet's squeeze-excitation scale; in[0] is the scale, in[1] the
 * tensor, as the graph records them), then an optional activation.
 */
#include "cpu_internal.h"

static bool mul_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_MUL || !jp_cpu_step_on_cpu(step) || step->fused_bn != NULL ||
        step->n_in != 2)
        return false;
    const jp_tensor *s = &step->in[0], *x = &step->in[1], *y = &step->out;
    if (s->rank != 4 || x->rank != 4 || y->rank != 4)
        return false;
    for (int d = 0; d < 4; d++)
        if (x->dims[d] <= 0 || y->dims[d] != x->dims[d])
            return false;
    if (s->dims[0] != x->dims[0] || s->dims[1] != x->dims[1] || s->dims[2] != 1 || s->dims[3] != 1)
        return false;
    return jp_activation_valid(step->act);
}

static jp_status mul_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const float *s = step->in[0].data; /* [n, c, 1, 1] */
    const float *x = step->in[1].data; /* [n, c, h, w] */
    float *y = step->out.data;         /* [n, c, h, w] */
    const int64_t planes = step->in[1].dims[0] * step->in[1].dims[1];
    const int64_t hw = step->in[1].dims[2] * step->in[1].dims[3];
#pragma omp parallel for schedule(static) if (planes * hw >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++)
        jp_cpu_scale_shift_act(y + pl * hw, x + pl * hw, hw, s[pl], 0.0f, step->act);
    return JP_OK;
}

const jp_kernel jp_cpu_mul_reference = {
    .name = "cpu/mul/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_MUL,
    .is_reference = true,
    .priority = 0,
    .supports = mul_supports,
    .run = mul_run,
};
