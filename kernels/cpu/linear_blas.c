/*
 * linear_blas.c: cpu/linear/blas, y[n, out] = act(x[n, in] W[out, in]^T + b)
 * with OpenBLAS, the output features split over the OpenMP team (each
 * thread a single-threaded sgemv for n == 1, sgemm otherwise, on its rows of
 * W).  AlexNet's classifier is memory-bound (W is 151 MB for fc6), so both
 * cores stream their half of W at once.
 */
#include "linear_common.h"

#include <cblas.h>
#include <omp.h>

/* Rows per thread below which one thread does everything: the fork costs
 * about what 64 rows of a 1280-wide dot product take. */
#define LINEAR_MIN_ROWS_PER_THREAD 64

static jp_status linear_blas_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_op *op = step->op;
    const jp_linear_attrs *a = &op->attrs.linear;
    const float *wt, *bias; /* [out, in], [out] or NULL */
    if (jp_cpu_linear_params(step, &wt, &bias, err))
        return err->status;
    const float *x = step->in[0].data; /* [n, in]  */
    float *y = step->out.data;         /* [n, out] */
    const int n = (int)jp_cpu_linear_rows(step), k = a->in_features, m = a->out_features;
    int nt = omp_get_max_threads();
    if ((int64_t)m < (int64_t)nt * LINEAR_MIN_ROWS_PER_THREAD)
        nt = 1;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        /* Rows [r0, r1), 16-aligned starts. */
        const int per = ((m + team - 1) / team + 15) / 16 * 16;
        const int r0 = t * per < m ? t * per : m;
        const int r1 = r0 + per < m ? r0 + per : m;
        if (r1 > r0) {
            if (n == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, k, 1.0f, wt + (int64_t)r0 * k,
                            k, x, 1, 0.0f, y + r0, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r1 - r0, k, 1.0f, x, k,
                            wt + (int64_t)r0 * k, k, 0.0f, y + r0, m);
            for (int i = 0; i < n; i++)
                jp_cpu_linear_epilogue(y + (int64_t)i * m, bias, r0, r1, step->act);
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_linear_blas = {
    .name = "cpu/linear/blas",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LINEAR,
    .is_reference = false,
    .priority = 10,
    .supports = jp_cpu_linear_step_ok,
    .run = linear_blas_run,
};
