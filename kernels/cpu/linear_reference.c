/*
 * linear_reference.c: cpu/linear/reference, y[n, out] = x[n, in] W[out, in]^T
 * + b, then an optional ReLU; dot products accumulated in double.  The input
 * may be of any rank whose trailing dimensions multiply to in_features
 * (what flatten produced).
 */
#include "cpu_internal.h"

#include "linear_common.h"

static jp_status linear_ref_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_op *op = step->op;
    const jp_linear_attrs *a = &op->attrs.linear;
    const float *wt, *bias; /* [out, in], [out] or NULL */
    if (jp_cpu_linear_params(step, &wt, &bias, err))
        return err->status;
    const float *x = step->in[0].data; /* [n, in]  */
    float *y = step->out.data;         /* [n, out] */
    const int64_t n = jp_cpu_linear_rows(step), k = a->in_features, m = a->out_features;
#pragma omp parallel for collapse(2) schedule(static) if (n * m * k >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t i = 0; i < n; i++) {
        for (int64_t o = 0; o < m; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int64_t j = 0; j < k; j++)
                acc += (double)wt[o * k + j] * x[i * k + j];
            y[i * m + o] = jp_cpu_act_libm((float)acc, step->act);
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_linear_reference = {
    .name = "cpu/linear/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LINEAR,
    .is_reference = true,
    .priority = 0,
    .supports = jp_cpu_linear_step_ok,
    .run = linear_ref_run,
};
