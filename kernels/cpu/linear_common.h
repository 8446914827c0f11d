/*
 * linear_common.h: what the CPU linear kernels (reference, blas, gemv)
 * accept and share: the parameters, and the bias + ReLU epilogue.
 */
#ifndef JP_CPU_LINEAR_COMMON_H
#define JP_CPU_LINEAR_COMMON_H

#include "cpu_internal.h"

/* A linear op on the CPU: in[0] [n, ...] with in_features elements per row,
 * out [n, out_features], weight [out, in], bias [out] when has_bias; no
 * fused batch norm; activation none or relu. */
static inline bool jp_cpu_linear_step_ok(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_LINEAR || step->n_in != 1 || !jp_cpu_step_on_cpu(step) ||
        step->fused_bn != NULL || (step->act != JP_ACT_NONE && step->act != JP_ACT_RELU))
        return false;
    const jp_linear_attrs *a = &op->attrs.linear;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (a->in_features <= 0 || a->out_features <= 0 || in->rank < 2 || in->dims[0] <= 0 ||
        jp_tensor_numel(in) != in->dims[0] * a->in_features || out->rank != 2 ||
        out->dims[0] != in->dims[0] || out->dims[1] != a->out_features)
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
 * kernels (act none or relu; bias NULL: none). */
static inline void jp_cpu_linear_epilogue(float *y, const float *bias, int64_t r0, int64_t r1, jp_activation act)
{
    for (int64_t r = r0; r < r1; r++) {
        const float v = y[r] + (bias ? bias[r] : 0.0f);
        y[r] = act == JP_ACT_RELU ? jp_cpu_reluf(v) : v;
    }
}

#endif /* JP_CPU_LINEAR_COMMON_H */
