/*
 * linear_common.h: what the CPU linear kernels (reference, blas, gemv)
 * accept and share: the parameters, and the bias + ReLU epilogue.
 */
#ifndef JP_CPU_LINEAR_COMMON_H
#define JP_CPU_LINEAR_COMMON_H

#include "cpu_internal.h"

/* The rows of a linear step: out's elements / out_features. */
static inline int64_t jp_cpu_linear_rows(const jp_step *step)
{
    return jp_tensor_numel(&step->out) / step->op->attrs.linear.out_features;
}

/* A linear op on the CPU: in[0] [n, ...] with in_features elements per row
 * and out [n, out_features], or in[0] [..., in_features] and out [...,
 * out_features] (ConvNeXt's blocks: a row per pixel); weight [out, in],
 * bias [out] when has_bias; no fused batch norm; any activation. */
static inline bool jp_cpu_linear_step_ok(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_LINEAR || step->n_in != 1 || !jp_cpu_step_on_cpu(step) ||
        step->fused_bn != NULL || !jp_activation_valid(step->act))
        return false;
    const jp_linear_attrs *a = &op->attrs.linear;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (a->in_features <= 0 || a->out_features <= 0 || in->rank < 2 || in->dims[0] <= 0)
        return false;
    bool rows_ok = jp_tensor_numel(in) == in->dims[0] * a->in_features && out->rank == 2 &&
                   out->dims[0] == in->dims[0] && out->dims[1] == a->out_features;
    if (!rows_ok && in->rank == out->rank && in->dims[in->rank - 1] == a->in_features &&
        out->dims[out->rank - 1] == a->out_features) {
        rows_ok = true;
        for (int d = 0; d + 1 < in->rank; d++)
            rows_ok &= in->dims[d] == out->dims[d];
    }
    if (!rows_ok)
        return false;
    const jp_param *w = &op->params[JP_PARAM_WEIGHT], *b = &op->params[JP_PARAM_BIAS];
    if (op->n_params < (a->has_bias ? 2 : 1) || w->rank != 2 || w->dims[0] != a->out_features ||
        w->dims[1] != a->in_features)
        return false;
    return !a->has_bias || (b->rank == 1 && b->dims[0] == a->out_features);
}

/* The weight [out, in] and bias [out] (NULL without one) of a linear step;
 * JP_ERR_MISSING when they are not bound. */
static inline jp_status jp_cpu_linear_params(const jp_step *step, const float **wt, const float **bias,
                                             jp_error *err)
{
    const jp_op *op = step->op;
    *wt = op->params[JP_PARAM_WEIGHT].data;
    *bias = op->attrs.linear.has_bias ? op->params[JP_PARAM_BIAS].data : NULL;
    if (!*wt || (op->attrs.linear.has_bias && !*bias))
        return jp_error_set(err, JP_ERR_MISSING, "%s: parameters not bound", op->name);
    return JP_OK;
}

/* y[r] = act(y[r] + bias[r]) for r in [r0, r1): the epilogue of the fast
 * kernels (bias NULL: none), vectorised. */
static inline void jp_cpu_linear_epilogue(float *y, const float *bias, int64_t r0, int64_t r1, jp_activation act)
{
    if (r1 > r0)
        jp_cpu_bias_vec_act(y + r0, bias ? bias + r0 : NULL, r1 - r0, act);
}

#endif /* JP_CPU_LINEAR_COMMON_H */
