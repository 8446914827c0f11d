/*
 * conv2d_direct.c: cpu/conv2d/direct, a direct convolution with the output
 * channels in the vector lanes (AVX-512 only): nothing is packed per call.
 *
 * The GEMM kernels put output positions in the lanes, so every call first
 * copies the input into im2col panels; with a stride that copy is a gather
 * (18 % of packed_gemm's time on ResNet's 7x7 stride-2 stem, perf).  Here a
 * tile is 16 output positions of one row x 16 output channels, 16
 * accumulators; per tap (c, ky, kx) one vector of 16 weights (packed once, in
 * prepare) multiplies each of the 16 input values the positions read,
 * broadcast straight from the input at the tap's offset plus a compile-time
 * stride.  The tile is then transposed in registers (four permute stages) so
 * that each vector holds 16 positions of one channel, and stored, with the
 * residual added and the activation applied, into the NCHW output.
 *
 * The input is first copied into a zero-bordered workspace, so that no tap
 * tests bounds; the borders are zeroed once, in prepare.  A row's last tile
 * computes all 16 positions (the workspace has the columns they read) and
 * stores the valid ones: maps whose width is not a multiple of 16 waste lanes
 * (28: 12.5 %, 7: 56 %), hence the default only on wide maps (dc_priority_for).
 * Threads split (image, channel block, output row) tasks.
 */
#include "cpu_simd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if JP_VLEN == 16

#define DC_TILE 16 /* positions per tile = channels per tile = lanes */

typedef struct dc_plan {
    int64_t n, c_in, h, w, c_out, oh, ow;
    int kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t hp, wp;      /* the padded input plane (wp with the last tile's slack) */
    int64_t k;           /* taps: c_in * kh * kw                                    */
    int64_t cob;         /* output channel blocks of 16                            */
    float *wt;           /* [cob][k][16], lanes past c_out zero                    */
    float *bias;         /* [cob * 16]                                             */
    int64_t *tap;        /* [k]: tap (c, ky, kx)'s offset in an image's padded input */
    float *xpad;         /* [n][c_in][hp][wp], borders zero                        */
    jp_activation act;
    int n_threads;
} dc_plan;

static bool dc_supports(const jp_step *step)
{
    if (!jp_cpu_conv_step_ok(step) && !jp_cpu_conv_residual_step_ok(step))
        return false;
    return step->op->attrs.conv2d.groups == 1;
}

static void dc_release(void *state)
{
    dc_plan *p = state;
    if (!p)
        return;
    jp_cpu_free(p->wt);
    jp_cpu_free(p->bias);
    free(p->tap);
    jp_cpu_free(p->xpad);
    free(p);
}

static jp_status dc_prepare(const jp_step *step, void **state, jp_error *err)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    *state = NULL;
    dc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->n = step->in[0].dims[0];
    p->c_in = a->c_in;
    p->h = step->in[0].dims[2];
    p->w = step->in[0].dims[3];
    p->c_out = a->c_out;
    p->oh = step->out.dims[2];
    p->ow = step->out.dims[3];
    p->kh = a->kernel_h;
    p->kw = a->kernel_w;
    p->sh = a->stride_h;
    p->sw = a->stride_w;
    p->ph = a->pad_h;
    p->pw = a->pad_w;
    p->dh = a->dilation_h;
    p->dw = a->dilation_w;
    p->act = step->act;
    p->k = p->c_in * p->kh * p->kw;
    p->cob = (p->c_out + DC_TILE - 1) / DC_TILE;
    p->hp = p->h + 2 * (int64_t)p->ph;
    /* The last tile of a row reads up to position ow rounded up to 16. */
    const int64_t ow_tiles = (p->ow + DC_TILE - 1) / DC_TILE * DC_TILE;
    const int64_t cols = (ow_tiles - 1) * p->sw + (int64_t)(p->kw - 1) * p->dw + 1;
    p->wp = p->w + 2 * (int64_t)p->pw > cols ? p->w + 2 * (int64_t)p->pw : cols;
    p->n_threads = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;

    float *w = NULL, *b = NULL;
    jp_status st = jp_cpu_conv_fold(step, &w, &b, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }
    const size_t xpad_floats = (size_t)(p->n * p->c_in * p->hp * p->wp);
    p->wt = jp_cpu_alloc((size_t)(p->cob * p->k * DC_TILE) * sizeof(float));
    p->bias = jp_cpu_alloc((size_t)(p->cob * DC_TILE) * sizeof(float));
    p->tap = malloc((size_t)p->k * sizeof *p->tap);
    p->xpad = jp_cpu_alloc(xpad_floats * sizeof(float));
    if (!p->wt || !p->bias || !p->tap || !p->xpad) {
        jp_cpu_free(w);
        jp_cpu_free(b);
        dc_release(p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate cpu/conv2d/direct's workspace",
                            step->op->name);
    }
    memset(p->xpad, 0, xpad_floats * sizeof(float));
    for (int64_t cb = 0; cb < p->cob; cb++)
        for (int64_t k = 0; k < p->k; k++)
            for (int l = 0; l < DC_TILE; l++) {
                const int64_t co = cb * DC_TILE + l;
                p->wt[(cb * p->k + k) * DC_TILE + l] = co < p->c_out ? w[co * p->k + k] : 0.0f;
            }
    for (int64_t co = 0; co < p->cob * DC_TILE; co++)
        p->bias[co] = co < p->c_out ? b[co] : 0.0f;
    for (int64_t c = 0; c < p->c_in; c++)
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++)
                p->tap[(c * p->kh + ky) * p->kw + kx] =
                    (c * p->hp + (int64_t)ky * p->dh) * p->wp + (int64_t)kx * p->dw;
    jp_cpu_free(w);
    jp_cpu_free(b);
    *state = p;
    return JP_OK;
}

/* r[i] lane l -> r[l] lane i (16 x 16): pairs of floats, then of doubles,
 * within 128-bit lanes, then the lanes themselves, twice; 64 shuffles.
 * Two-source permutes (vpermt2ps, four butterfly stages) cost 9 % of the
 * stem's time against 4 % with these (one thread, tests/bench_cpu_kernels). */
JP_ALWAYS_INLINE void dc_transpose(__m512 r[DC_TILE])
{
    __m512 t[DC_TILE];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* One tile: positions ox0 .. ox0+15 of output row oy (n_pos valid) x the 16
 * channels of block cb (n_ch valid).  x: the image's padded input; y, res:
 * the image's output and residual (res NULL: none).  S: the column stride,
 * a compile-time constant where the caller has one (0: p->sw). */
JP_ALWAYS_INLINE void dc_tile(const dc_plan *p, const float *restrict x, const float *restrict wcb,
                              const float *restrict bias, float *restrict y,
                              const float *restrict res, int64_t cb, int64_t oy, int64_t ox0,
                              int n_pos, int n_ch, const int S)
{
    const int64_t sw = S ? S : p->sw;
    __m512 acc[DC_TILE];
    const __m512 b = _mm512_load_ps(bias + cb * DC_TILE);
    for (int j = 0; j < DC_TILE; j++)
        acc[j] = b;
    const float *base = x + oy * p->sh * p->wp + ox0 * sw;
    const int64_t *tap = p->tap;
    for (int64_t k = 0; k < p->k; k++) {
        const __m512 wv = _mm512_load_ps(wcb + k * DC_TILE);
        const float *src = base + tap[k];
#pragma GCC unroll 16
        for (int j = 0; j < DC_TILE; j++)
            acc[j] = _mm512_fmadd_ps(wv, _mm512_set1_ps(src[j * sw]), acc[j]);
    }
    dc_transpose(acc);
    const int64_t plane = p->oh * p->ow;
    const __mmask16 m = (__mmask16)((1u << n_pos) - 1u);
    for (int c = 0; c < n_ch; c++) {
        const int64_t at = (cb * DC_TILE + c) * plane + oy * p->ow + ox0;
        __m512 v = acc[c];
        if (res)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + at));
        _mm512_mask_storeu_ps(y + at, m, jp_v_act(v, p->act));
    }
}

/* Every tile of output row oy, channel block cb. */
JP_ALWAYS_INLINE void dc_row(const dc_plan *p, const float *x, float *y, const float *res,
                             int64_t cb, int64_t oy, const int S)
{
    const float *wcb = p->wt + cb * p->k * DC_TILE;
    const int n_ch = p->c_out - cb * DC_TILE < DC_TILE ? (int)(p->c_out - cb * DC_TILE) : DC_TILE;
    for (int64_t ox0 = 0; ox0 < p->ow; ox0 += DC_TILE) {
        const int n_pos = p->ow - ox0 < DC_TILE ? (int)(p->ow - ox0) : DC_TILE;
        dc_tile(p, x, wcb, p->bias, y, res, cb, oy, ox0, n_pos, n_ch, S);
    }
}

static jp_status dc_run(void *state, const jp_step *step, jp_error *err)
{
    const dc_plan *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/direct run before prepare",
                            step->op->name);
    const float *x = step->in[0].data;                            /* [n, c_in, h, w]    */
    float *y = step->out.data;                                    /* [n, c_out, oh, ow] */
    const float *res = step->fused_add ? step->in[1].data : NULL; /* like y, or NULL    */
    int nt = omp_get_max_threads();
    nt = nt > p->n_threads ? p->n_threads : nt < 1 ? 1 : nt;
    const int64_t in_rows = p->n * p->c_in * p->h;
    const int64_t tasks = p->n * p->cob * p->oh;
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < in_rows; r++) {
            const int64_t plane = r / p->h, iy = r % p->h;
            memcpy(p->xpad + (plane * p->hp + iy + p->ph) * p->wp + p->pw, x + r * p->w,
                   (size_t)p->w * sizeof(float));
        }
        /* The implicit barrier: every row is in place before any tile reads. */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t oy = t % p->oh, cb = t / p->oh % p->cob, i = t / (p->oh * p->cob);
            const float *xi = p->xpad + i * p->c_in * p->hp * p->wp;
            float *yi = y + i * p->c_out * p->oh * p->ow;
            const float *ri = res ? res + i * p->c_out * p->oh * p->ow : NULL;
            switch (p->sw) {
            case 1: dc_row(p, xi, yi, ri, cb, oy, 1); break;
            case 2: dc_row(p, xi, yi, ri, cb, oy, 2); break;
            case 4: dc_row(p, xi, yi, ri, cb, oy, 4); break;
            default: dc_row(p, xi, yi, ri, cb, oy, 0); break;
            }
        }
    }
    return JP_OK;
}

/* The default (26: above cpu/conv2d/packed_gemm's 25) for strided
 * convolutions wider than 1x1 whose rows fill at least 85 % of the tiles'
 * lanes: there packed_gemm gathers its B panels with a stride.  Measured at
 * two threads (`jplprof compare --impls packed_gemm,direct`): ResNet-50's
 * 7x7 stem 1.19 against 1.32-1.60 ms, its 3x3 stride-2 layers at 28x28 and
 * 14x14 1.30 / 1.28 against 1.43 / 1.39 ms, AlexNet's 11x11 stem 0.79
 * against 0.99 ms (im2col_blas; packed_gemm 1.35), EfficientNet's 3x3 stems
 * 0.20 / 0.29 against 0.22 / 0.30 ms.  Not at 7x7 outputs (7 of 16 lanes:
 * 2.5 against 1.4 ms) nor for 1x1 stride-2 downsamples (K = c_in taps read
 * a line each from as many planes: 1.47 against 1.05 ms). */
static int dc_priority_for(const jp_step *step)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const int64_t ow = step->out.dims[3];
    const int64_t lanes = (ow + DC_TILE - 1) / DC_TILE * DC_TILE;
    return a->stride_w >= 2 && a->kernel_w > 1 && ow * 100 >= lanes * 85 ? 26 : 1;
}

const jp_kernel jp_cpu_conv2d_direct = {
    .name = "cpu/conv2d/direct",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 1,
    .supports = dc_supports,
    .prepare = dc_prepare,
    .run = dc_run,
    .release = dc_release,
    .priority_for = dc_priority_for,
};

#else /* no AVX-512: the kernel exists (for `jplprof compare` and its tests) but supports nothing */

static bool dc_supports(const jp_step *step)
{
    (void)step;
    return false;
}

static jp_status dc_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/direct needs AVX-512", step->op->name);
}

const jp_kernel jp_cpu_conv2d_direct = {
    .name = "cpu/conv2d/direct",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 1,
    .supports = dc_supports,
    .run = dc_run,
};

#endif
