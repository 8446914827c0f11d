/*
 * max_pool2d_separable.c: cpu/max_pool2d/separable, max pooling (dilation 1)
 * as two one-dimensional passes, since max over a kh x kw window is the max
 * over kw columns of the max over kh rows:
 *
 *   per output row oy:  v[x] = max over the window rows of x[iy][x - pad_w]
 *                       (contiguous, vectorised; -inf where x is padding)
 *                       hm[x] = max(v[x .. x + kw - 1])  (contiguous too)
 *                       y[oy][ox] = hm[ox * sw]
 *
 * which reads each input row once per window row instead of kw times with
 * a stride, the reference's inner loop (AlexNet's three pools: 0.51 ms at two
 * threads with the reference, the whole of ONNX Runtime's are 0.04 ms).
 * NaN propagates as in PyTorch: the select keeps a NaN whichever side it is
 * on.  Same output shapes as the reference (implicit -inf padding,
 * ceil_mode's extra window, dropped when it starts in the padding): the
 * reference's supports() decides what a pool is.
 */
#include "cpu_internal.h"

#include <omp.h>

/* v row: the padded input width, at most this many floats on the stack;
 * wider rows are left to the reference. */
#define POOL_ROW_MAX 4096

static inline float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

static bool sep_supports(const jp_step *step)
{
    if (!jp_cpu_max_pool2d_reference.supports(step))
        return false;
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const int64_t ow = step->out.dims[3];
    return a->dilation_h == 1 && a->dilation_w == 1 &&
           (ow - 1) * a->stride_w + a->kernel_w <= POOL_ROW_MAX;
}

static jp_status sep_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const float *x = step->in[0].data; /* [n, c, h, w]   */
    float *y = step->out.data;         /* [n, c, oh, ow] */
    const int64_t planes = step->in[0].dims[0] * step->in[0].dims[1];
    const int64_t h = step->in[0].dims[2], w = step->in[0].dims[3];
    const int64_t oh = step->out.dims[2], ow = step->out.dims[3];
    const int kh = a->kernel_h, kw = a->kernel_w, sh = a->stride_h, sw = a->stride_w;
    const int pw = a->pad_w;
    /* v covers input columns [-pw, -pw + vw): every column a window reads. */
    const int64_t vw = (ow - 1) * sw + kw;
    const int64_t x_lo = pw, x_hi = pw + w < vw ? pw + w : vw; /* v columns that are input */
#pragma omp parallel for schedule(static) if (planes * h * w >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x_p = x + pl * h * w;
        float *y_p = y + pl * oh * ow;
        float v[POOL_ROW_MAX], hm[POOL_ROW_MAX];
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t iy0 = oy * sh - a->pad_h, iy1 = iy0 + kh;
            iy0 = iy0 < 0 ? 0 : iy0;
            iy1 = iy1 > h ? h : iy1;
            for (int64_t i = 0; i < vw; i++)
                v[i] = -INFINITY;
            for (int64_t iy = iy0; iy < iy1; iy++) {
                const float *row = x_p + iy * w; /* v column i is row[i - pw] */
                for (int64_t i = x_lo; i < x_hi; i++)
                    v[i] = max_nan(v[i], row[i - pw]);
            }
            /* hm[i] = max(v[i .. i + kw - 1]) for every i, branch-free and
             * contiguous (a compare per window cell mispredicts on real data:
             * 1.0 ms for ResNet's pool, against 0.28 for the reference); then
             * every sw-th of them. */
            const int64_t hw = vw - kw + 1;
            for (int64_t i = 0; i < hw; i++)
                hm[i] = v[i];
            for (int k = 1; k < kw; k++)
                for (int64_t i = 0; i < hw; i++)
                    hm[i] = max_nan(hm[i], v[i + k]);
            float *out = y_p + oy * ow;
            for (int64_t ox = 0; ox < ow; ox++)
                out[ox] = hm[ox * sw];
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_max_pool2d_separable = {
    .name = "cpu/max_pool2d/separable",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_MAX_POOL2D,
    .is_reference = false,
    .priority = 10,
    .supports = sep_supports,
    .run = sep_run,
};
