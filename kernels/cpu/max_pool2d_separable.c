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
 * Both passes are written in vectors (cpu_simd.h), and so is the stride-2
 * pick on AVX-512: left to gcc, the pick stayed scalar and the passes went
 * through a select per element (ResNet's pool took 0.25 ms in a forward
 * pass, ONNX Runtime's 0.05-0.09 ms; now 0.075 ms).  NaN propagates as in
 * PyTorch (jp_v_max_nan: a NaN on either side wins).  Same output shapes as
 * the reference (implicit -inf padding, ceil_mode's extra window, dropped
 * when it starts in the padding): the reference's supports() decides what a
 * pool is.
 */
#include "cpu_simd.h"

#include <omp.h>

/* v row: the padded input width, at most this many floats on the stack;
 * wider rows are left to the reference. */
#define POOL_ROW_MAX 4096
/* Slack after v and hm: the vector loads of their last lanes (and the
 * stride-2 gather's second load) read up to this far past the end. */
#define POOL_SLACK (2 * JP_VLEN + 8)

/* max_pool2d_reference.c: the shape checks are the reference's. */
extern const jp_kernel jp_cpu_max_pool2d_reference;

static bool sep_supports(const jp_step *step)
{
    if (!jp_cpu_max_pool2d_reference.supports(step))
        return false;
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const int64_t ow = step->out.dims[3];
    return a->dilation_h == 1 && a->dilation_w == 1 &&
           (ow - 1) * a->stride_w + a->kernel_w <= POOL_ROW_MAX;
}

/* dst[j] = src[j * stride] for j < n.  Stride 2 on AVX-512: two loads and one
 * permute per vector (src holds 2 * JP_VLEN readable floats past each load). */
static void sep_gather(float *restrict dst, const float *restrict src, int64_t n, int stride)
{
    int64_t j = 0;
#if defined(__AVX512F__)
    if (stride == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                               28, 30);
        for (; j < n; j += JP_VLEN) {
            const jp_vf e = _mm512_permutex2var_ps(jp_v_load(src + 2 * j), even,
                                                   jp_v_load(src + 2 * j + JP_VLEN));
            if (n - j >= JP_VLEN)
                jp_v_store(dst + j, e);
            else
                jp_v_store_n(dst + j, e, (int)(n - j));
        }
        return;
    }
#endif
    for (; j < n; j++)
        dst[j] = src[j * stride];
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
    const int64_t hw = vw - kw + 1; /* window starts: hm[i] = max(v[i .. i + kw - 1]) */
#pragma omp parallel if (planes * h * w >= JP_CPU_PARALLEL_MIN_ELEMS)
    {
        /* -inf outside [x_lo, x_hi) for good: the padding columns, and the
         * slack the vector loads read past vw. */
        float v[POOL_ROW_MAX + POOL_SLACK], hm[POOL_ROW_MAX + POOL_SLACK];
        for (int64_t i = 0; i < vw + POOL_SLACK; i++)
            v[i] = hm[i] = -INFINITY;
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            const float *x_p = x + pl * h * w;
            float *y_p = y + pl * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++) {
                int64_t iy0 = oy * sh - a->pad_h, iy1 = iy0 + kh;
                iy0 = iy0 < 0 ? 0 : iy0;
                iy1 = iy1 > h ? h : iy1;
                /* Down the window's rows (v column i is row[i - pw]). */
                for (int64_t i = x_lo; i < x_hi; i += JP_VLEN) {
                    const int n = x_hi - i < JP_VLEN ? (int)(x_hi - i) : JP_VLEN;
                    jp_vf m = jp_v_set1(-INFINITY);
                    for (int64_t iy = iy0; iy < iy1; iy++)
                        m = jp_v_max_nan(m, jp_v_load_n(x_p + iy * w + i - pw, n));
                    jp_v_store_n(v + i, m, n);
                }
                /* Along the row: every window start, then every sw-th. */
                float *out = y_p + oy * ow;
                float *dst = sw == 1 ? out : hm;
                for (int64_t i = 0; i < hw; i += JP_VLEN) {
                    jp_vf m = jp_v_load(v + i);
                    for (int k = 1; k < kw; k++)
                        m = jp_v_max_nan(m, jp_v_load(v + i + k));
                    if (hw - i >= JP_VLEN)
                        jp_v_store(dst + i, m);
                    else
                        jp_v_store_n(dst + i, m, (int)(hw - i));
                }
                if (sw != 1)
                    sep_gather(out, hm, ow, sw);
            }
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
