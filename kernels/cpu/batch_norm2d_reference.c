/*
 * batch_norm2d_reference.c: cpu/batch_norm2d/reference, inference batch norm
 *     y = (x - mean) / sqrt(var + eps) * gamma + beta
 * per channel of [n, c, h, w], computed as y = x * s + t with s and t from
 * the formula in double (one rounding each), then an optional activation
 * (the executor fuses batch norm into the convolution instead where it can;
 * this kernel runs it alone, e.g. under --no-fuse).
 */
#include "cpu_internal.h"

static bool bn_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_BATCH_NORM2D || !jp_cpu_step_on_cpu(step) ||
        step->fused_bn != NULL || !jp_cpu_same_numel(step, 1) || step->in[0].rank != 4 ||
        step->in[0].dims[1] != op->attrs.batch_norm2d.channels || op->n_params < 4)
        return false;
    for (int i = 0; i < 4; i++)
        if (op->params[i].rank != 1 || op->params[i].dims[0] != op->attrs.batch_norm2d.channels)
            return false;
    return jp_activation_valid(step->act);
}

static jp_status bn_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_op *op = step->op;
    const float *gamma = op->params[JP_PARAM_WEIGHT].data, *beta = op->params[JP_PARAM_BIAS].data;
    const float *mean = op->params[JP_PARAM_MEAN].data, *var = op->params[JP_PARAM_VAR].data;
    if (!gamma || !beta || !mean || !var)
        return jp_error_set(err, JP_ERR_MISSING, "%s: parameters not bound", op->name);
    const double eps = op->attrs.batch_norm2d.eps;
    const int64_t n = step->in[0].dims[0], c = step->in[0].dims[1];
    const int64_t hw = step->in[0].dims[2] * step->in[0].dims[3];
    const float *x = step->in[0].data; /* [n, c, h, w] */
    float *y = step->out.data;         /* [n, c, h, w] */
#pragma omp parallel for schedule(static) if (n * c * hw >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < n * c; pl++) {
        const int64_t ch = pl % c;
        const double s = gamma[ch] / sqrt((double)var[ch] + eps);
        const double t = beta[ch] - mean[ch] * s;
        jp_cpu_scale_shift_act(y + pl * hw, x + pl * hw, hw, (float)s, (float)t, step->act);
    }
    return JP_OK;
}

const jp_kernel jp_cpu_batch_norm2d_reference = {
    .name = "cpu/batch_norm2d/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_BATCH_NORM2D,
    .is_reference = true,
    .priority = 0,
    .supports = bn_supports,
    .run = bn_run,
};
