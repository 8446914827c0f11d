/*
 * linear_gemv.c: cpu/linear/gemv, y[1, out] = act(W[out, in] x + b) for a
 * batch of one, the case of every classifier here, with our own
 * matrix-vector product: four rows of W at a time, one vector accumulator
 * each, x read once per four rows; the rows split over the OpenMP team.
 *
 * Memory-bound: W streams from DRAM once per call (AlexNet's fc6 is 151 MB).
 * Four concurrent row streams per core keep more loads in flight than
 * OpenBLAS's sgemv: on AlexNet's fc6 at two threads, weights cold, 4.04 ms
 * (37 GB/s) against OpenBLAS's 4.51 ms (33.5 GB/s); a plain read of the
 * same bytes with two threads measured 27.5 GB/s with one stream per
 * thread.  Batches above one stay with cpu/linear/blas (sgemm).
 * prepare copies W into 2 MiB pages (gemv_prepare): fc6 4.45 -> 4.1 ms in a
 * forward pass, AlexNet end to end -4 % (six alternating pairs).
 */
#include "cpu_simd.h"
#include "linear_common.h"

#include <omp.h>
#include <string.h>

/* Rows per thread below which one thread does everything (as linear_blas). */
#define GEMV_MIN_ROWS_PER_THREAD 64
#define GEMV_ROWS 4

static bool gemv_supports(const jp_step *step)
{
    return jp_cpu_linear_step_ok(step) && jp_cpu_linear_rows(step) == 1;
}

/* y[r] = W[r, :] . x for r in [r0, r1). */
static void gemv_rows(const float *restrict w, const float *restrict x, float *restrict y, int64_t r0,
                      int64_t r1, int64_t k)
{
    int64_t r = r0;
    for (; r + GEMV_ROWS <= r1; r += GEMV_ROWS) {
        const float *a[GEMV_ROWS];
        jp_vf acc[GEMV_ROWS];
        for (int j = 0; j < GEMV_ROWS; j++) {
            a[j] = w + (r + j) * k;
            acc[j] = jp_v_zero();
        }
        int64_t i = 0;
        for (; i + JP_VLEN <= k; i += JP_VLEN) {
            const jp_vf xv = jp_v_load(x + i);
            for (int j = 0; j < GEMV_ROWS; j++)
                acc[j] = jp_v_fma(jp_v_load(a[j] + i), xv, acc[j]);
        }
        for (int j = 0; j < GEMV_ROWS; j++) {
            float s = jp_v_hsum(acc[j]);
            for (int64_t t = i; t < k; t++)
                s += a[j][t] * x[t];
            y[r + j] = s;
        }
    }
    for (; r < r1; r++) {
        jp_vf acc = jp_v_zero();
        const float *a = w + r * k;
        int64_t i = 0;
        for (; i + JP_VLEN <= k; i += JP_VLEN)
            acc = jp_v_fma(jp_v_load(a + i), jp_v_load(x + i), acc);
        float s = jp_v_hsum(acc);
        for (; i < k; i++)
            s += a[i] * x[i];
        y[r] = s;
    }
}

/* W copied into a block of our own (jp_cpu_alloc: 2 MiB pages where the
 * kernel gives them).  The weights file's mapping has 4 KiB pages, at whose
 * boundaries the hardware prefetchers stop. */
static jp_status gemv_prepare(const jp_step *step, void **state, jp_error *err)
{
    const float *wt, *bias;
    *state = NULL;
    if (jp_cpu_linear_params(step, &wt, &bias, err))
        return err->status;
    const jp_linear_attrs *a = &step->op->attrs.linear;
    const size_t bytes = (size_t)a->out_features * (size_t)a->in_features * sizeof(float);
    float *w = jp_cpu_alloc(bytes);
    if (!w)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes of weights",
                            step->op->name, bytes);
    /* In chunks, each original chunk given back once copied when the step
     * allows: VGG's fc6 (392 MiB) and its copy were both resident, the peak
     * RSS of the whole run. */
    const size_t chunk = (size_t)8 << 20;
    for (size_t at = 0; at < bytes; at += chunk) {
        const size_t n = bytes - at < chunk ? bytes - at : chunk;
        memcpy((char *)w + at, (const char *)wt + at, n);
        if (step->give_back_params)
            jp_weights_give_back((const char *)wt + at, n);
    }
    *state = w;
    return JP_OK;
}

static void gemv_release(void *state) { jp_cpu_free(state); }

static jp_status gemv_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_op *op = step->op;
    const jp_linear_attrs *a = &op->attrs.linear;
    const float *wt, *bias; /* [out, in], [out] or NULL */
    if (jp_cpu_linear_params(step, &wt, &bias, err))
        return err->status;
    if (!state)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/linear/gemv run before prepare", op->name);
    wt = state;
    const float *x = step->in[0].data; /* [1, in]  */
    float *y = step->out.data;         /* [1, out] */
    const int64_t k = a->in_features, m = a->out_features;
    int nt = omp_get_max_threads();
    if (m < (int64_t)nt * GEMV_MIN_ROWS_PER_THREAD)
        nt = 1;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        /* Rows [r0, r1), starts on a multiple of GEMV_ROWS. */
        const int64_t per = ((m + team - 1) / team + GEMV_ROWS - 1) / GEMV_ROWS * GEMV_ROWS;
        const int64_t r0 = t * per < m ? t * per : m;
        const int64_t r1 = r0 + per < m ? r0 + per : m;
        gemv_rows(wt, x, y, r0, r1, k);
        jp_cpu_linear_epilogue(y, bias, r0, r1, step->act);
    }
    return JP_OK;
}

static void gemv_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const jp_linear_attrs *a = &step->op->attrs.linear;
    *prepared_bytes = (size_t)a->out_features * (size_t)a->in_features * sizeof(float);
    *workspace_bytes = 0;
}

const jp_kernel jp_cpu_linear_gemv = {
    .name = "cpu/linear/gemv",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LINEAR,
    .is_reference = false,
    .priority = 20,
    .supports = gemv_supports,
    .prepare = gemv_prepare,
    .run = gemv_run,
    .release = gemv_release,
    .memory = gemv_memory,
    .params_copied = true,
};
