/*
 * linear_common.h: what cpu/linear/reference and cpu/linear/blas accept.
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

#endif /* JP_CPU_LINEAR_COMMON_H */
