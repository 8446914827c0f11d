/*
 * conv2d_direct.c: cpu/conv2d/direct, a direct convolution with the output
 * channels in the vector lanes (AVX-512 only): nothing is packed per call.
 *
 * The GEMM kernels put output positions in the lanes, so every call first
 * copies the input into im2col panels; with a stride that copy is a gather
 * (18 % of packed_gemm's time on ResNet's 7x7 stride-2 stem, perf).  Here a
 * tile is 16 output positions x 16 output channels, 16 accumulators; per tap
 * (c, ky, kx) one vector of 16 weights (packed once, in prepare) multiplies
 * each of the 16 input values the positions read, broadcast straight from
 * the input as the FMA's memory operand.  The tile is then transposed in
 * registers (dc_transpose) so that each vector holds 16 positions of one
 * channel, and stored, with the residual added and the activation applied,
 * into the NCHW output.
 *
 * The input is first copied into a zero-bordered workspace, so that no tap
 * tests bounds; the borders are zeroed once, in prepare.  Tiles run over the
 * plane's positions in row-major order (see dc_tile), so only a plane's last
 * tile has idle lanes; each thread takes a run of them (see dc_run).
 */
#include "cpu_simd.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if JP_VLEN == 16

#define DC_TILE 16 /* positions per tile = channels per tile = lanes */
#define DC_MIN_TILES_PER_THREAD 16

typedef struct dc_plan {
    jp_cpu_conv_shape s; /* shapes and attributes                                  */
    int64_t hp, wp;      /* the padded input plane                                 */
    int64_t k;           /* taps: c_in * kh * kw                                    */
    int64_t cob;         /* output channel blocks of 16                            */
    float *wt;           /* [cob][k][16], lanes past c_out zero                    */
    float *bias;         /* [cob * 16]                                             */
    int64_t *tap;        /* [k]: tap (c, ky, kx)'s offset in an image's padded input */
    int64_t tiles;       /* per plane: ceil(oh * ow / 16)                          */
    bool split_tiles;    /* threads split the tiles (else the channel blocks)      */
    int64_t xpad_floats; /* one padded copy of the input: n * c_in * hp * wp       */
    float *xpad;         /* [split_tiles ? 1 : n_threads][n][c_in][hp][wp], borders zero */
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
    *state = NULL;
    dc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->s = jp_cpu_conv_shape_of(step);
    p->act = step->act;
    p->k = p->s.c_in * p->s.kh * p->s.kw;
    p->cob = (p->s.c_out + DC_TILE - 1) / DC_TILE;
    p->hp = p->s.h + 2 * (int64_t)p->s.ph;
    p->wp = p->s.w + 2 * (int64_t)p->s.pw;
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;

    float *w = NULL, *b = NULL;
    jp_status st = jp_cpu_conv_fold(step, &w, &b, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }
    p->tiles = (p->s.oh * p->s.ow + DC_TILE - 1) / DC_TILE;
    p->split_tiles = p->tiles >= DC_MIN_TILES_PER_THREAD * (int64_t)p->n_threads;
    p->xpad_floats = p->s.n * p->s.c_in * p->hp * p->wp;
    /* Slack after the last padded image: the discarded lanes of the plane's
     * last tile (those past n_pos) read up to one output row's stride plus
     * 16 positions past the last row (found by the ASan build, issue 14:
     * a heap over-read, whose values were never used).  Zeroed. */
    const size_t slack_floats = (size_t)((p->s.sh + 1) * p->wp + DC_TILE * p->s.sw);
    const size_t xpad_floats =
        (size_t)p->xpad_floats * (p->split_tiles ? 1 : (size_t)p->n_threads) + slack_floats;
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
                p->wt[(cb * p->k + k) * DC_TILE + l] = co < p->s.c_out ? w[co * p->k + k] : 0.0f;
            }
    for (int64_t co = 0; co < p->cob * DC_TILE; co++)
        p->bias[co] = co < p->s.c_out ? b[co] : 0.0f;
    for (int64_t c = 0; c < p->s.c_in; c++)
        for (int ky = 0; ky < p->s.kh; ky++)
            for (int kx = 0; kx < p->s.kw; kx++)
                p->tap[(c * p->s.kh + ky) * p->s.kw + kx] =
                    (c * p->hp + (int64_t)ky * p->s.dh) * p->wp + (int64_t)kx * p->s.dw;
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

/* acc[j] += w[k] * input of position j at tap k, for every tap: positions
 * 0 .. N1-1 at a (stride S from it), N1 .. 15 at b (a tile that starts N1
 * positions before the end of a row and goes on in the next).  N1 and S
 * compile-time (S 0: p->s.sw), so each broadcast is one FMA operand
 * [pointer + constant]. */
JP_ALWAYS_INLINE void dc_taps(const dc_plan *p, __m512 acc[DC_TILE], const float *restrict wcb,
                              const float *a, const float *b, const int N1, const int S)
{
    const int64_t sw = S ? S : p->s.sw;
    const int64_t *tap = p->tap;
    for (int64_t k = 0; k < p->k; k++) {
        const __m512 wv = _mm512_load_ps(wcb + k * DC_TILE);
        const float *sa = a + tap[k], *sb = b + tap[k];
#pragma GCC unroll 16
        for (int j = 0; j < DC_TILE; j++)
            acc[j] = _mm512_fmadd_ps(wv, _mm512_set1_ps(j < N1 ? sa[j * sw] : sb[(j - N1) * sw]), acc[j]);
    }
}

/* dc_taps with N1 from a run-time n1 in 1 .. 16 (16: one row). */
JP_ALWAYS_INLINE void dc_taps_split(const dc_plan *p, __m512 acc[DC_TILE], const float *wcb,
                                    const float *a, const float *b, int n1, const int S)
{
    switch (n1) {
#define DC_CASE(N) \
    case N: dc_taps(p, acc, wcb, a, b, N, S); break;
    DC_CASE(1) DC_CASE(2) DC_CASE(3) DC_CASE(4) DC_CASE(5) DC_CASE(6) DC_CASE(7) DC_CASE(8)
    DC_CASE(9) DC_CASE(10) DC_CASE(11) DC_CASE(12) DC_CASE(13) DC_CASE(14) DC_CASE(15)
#undef DC_CASE
    default: dc_taps(p, acc, wcb, a, b, DC_TILE, S); break;
    }
}

/* One tile: output positions p0 .. p0+15 of the plane (row-major, n_pos
 * valid; p0 is row oy0, column ox0) x the 16 channels of block cb (n_ch valid).  x: the image's padded
 * input; y, res: the image's output and residual (res NULL: none).  Tiles
 * run over the plane's positions, not rows, so that a map 14 or 28 wide
 * wastes no lanes but at its end: a tile within one row or across two reads
 * at constant strides (dc_taps); one across three (maps under 16 wide) from
 * a table of offsets, a load more per FMA.  A channel's 16 outputs are
 * contiguous in y either way. */
JP_ALWAYS_INLINE void dc_tile(const dc_plan *p, const float *restrict x, const float *restrict wcb,
                              const float *restrict bias, float *restrict y,
                              const float *restrict res, int64_t cb, int64_t p0, int64_t oy0,
                              int64_t ox0, int n_pos, int n_ch, const int S)
{
    const int64_t sw = S ? S : p->s.sw;
    __m512 acc[DC_TILE];
    const __m512 b = _mm512_load_ps(bias + cb * DC_TILE);
    for (int j = 0; j < DC_TILE; j++)
        acc[j] = b;
    const int64_t n1 = p->s.ow - ox0; /* positions left in the first row */
    if (n1 >= DC_TILE || n1 + p->s.ow >= DC_TILE || n1 >= n_pos) {
        const float *a = x + oy0 * p->s.sh * p->wp + ox0 * sw, *next = x + (oy0 + 1) * p->s.sh * p->wp;
        /* All valid positions in the first row: the others read the row's
         * first ones again (b = a), never past the row. */
        dc_taps_split(p, acc, wcb, a, n1 >= n_pos ? a : next, n1 < DC_TILE ? (int)n1 : DC_TILE, S);
    } else {
        int64_t pos[DC_TILE]; /* position j's input offset (the last valid one's past the plane) */
        for (int j = 0; j < DC_TILE; j++) {
            const int64_t q = j < n_pos ? p0 + j : p0 + n_pos - 1;
            pos[j] = q / p->s.ow * p->s.sh * p->wp + q % p->s.ow * sw;
        }
        for (int64_t k = 0; k < p->k; k++) {
            const __m512 wv = _mm512_load_ps(wcb + k * DC_TILE);
            const float *src = x + p->tap[k];
#pragma GCC unroll 16
            for (int j = 0; j < DC_TILE; j++)
                acc[j] = _mm512_fmadd_ps(wv, _mm512_set1_ps(src[pos[j]]), acc[j]);
        }
    }
    dc_transpose(acc);
    const int64_t plane = p->s.oh * p->s.ow;
    const __mmask16 m = (__mmask16)((1u << n_pos) - 1u);
    for (int c = 0; c < n_ch; c++) {
        const int64_t at = (cb * DC_TILE + c) * plane + p0;
        __m512 v = acc[c];
        if (res)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + at));
        _mm512_mask_storeu_ps(y + at, m, jp_v_act(v, p->act));
    }
}

/* Tiles [t0, t1) of channel block cb (tile t: positions 16t .. 16t+15). */
JP_ALWAYS_INLINE void dc_tiles(const dc_plan *p, const float *x, float *y, const float *res,
                               int64_t cb, int64_t t0, int64_t t1, const int S)
{
    const float *wcb = p->wt + cb * p->k * DC_TILE;
    const int n_ch = p->s.c_out - cb * DC_TILE < DC_TILE ? (int)(p->s.c_out - cb * DC_TILE) : DC_TILE;
    const int64_t plane = p->s.oh * p->s.ow;
    /* Row and column of each tile's first position, advanced without a
     * division per tile (two of them were 15 % of EfficientNet's stem). */
    int64_t oy = t0 * DC_TILE / p->s.ow, ox = t0 * DC_TILE % p->s.ow;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t p0 = t * DC_TILE;
        const int n_pos = plane - p0 < DC_TILE ? (int)(plane - p0) : DC_TILE;
        dc_tile(p, x, wcb, p->bias, y, res, cb, p0, oy, ox, n_pos, n_ch, S);
        for (ox += DC_TILE; ox >= p->s.ow; ox -= p->s.ow)
            oy++;
    }
}

/* Input rows [r0, r1) of every image and channel into the workspace xpad. */
static void dc_fill(const dc_plan *p, const float *x, float *xpad, int64_t r0, int64_t r1)
{
    for (int64_t plane = 0; plane < p->s.n * p->s.c_in; plane++)
        for (int64_t iy = r0; iy < r1; iy++)
            memcpy(xpad + (plane * p->hp + iy + p->s.ph) * p->wp + p->s.pw, x + (plane * p->s.h + iy) * p->s.w,
                   (size_t)p->s.w * sizeof(float));
}

/* Tiles [t0, t1) of image i, channel block cb, from the workspace xpad. */
static void dc_dispatch(const dc_plan *p, const float *xpad, float *y, const float *res, int64_t i,
                        int64_t cb, int64_t t0, int64_t t1)
{
    const float *xi = xpad + i * p->s.c_in * p->hp * p->wp;
    float *yi = y + i * p->s.c_out * p->s.oh * p->s.ow;
    const float *ri = res ? res + i * p->s.c_out * p->s.oh * p->s.ow : NULL;
    switch (p->s.sw) {
    case 1: dc_tiles(p, xi, yi, ri, cb, t0, t1, 1); break;
    case 2: dc_tiles(p, xi, yi, ri, cb, t0, t1, 2); break;
    case 4: dc_tiles(p, xi, yi, ri, cb, t0, t1, 4); break;
    default: dc_tiles(p, xi, yi, ri, cb, t0, t1, 0); break;
    }
}

/* Threads split the tiles of a plane when each gets at least
 * DC_MIN_TILES_PER_THREAD of them, else the channel blocks.  Split by
 * channel blocks over a shared copy of the input (filled by rows), each
 * thread read the other's half of it every call, freshly written in the
 * other core's cache: EfficientNet-B7's stem took 0.51 instead of 0.30 ms
 * in some runs, and 0.26 ms split by tiles.  But the 14x14 maps (13 tiles)
 * balance badly by tiles, and each thread would stream every channel
 * block's weights: ResNet-50's layer3.0.conv2 1.20 ms, 1.13 split by
 * channel blocks, each thread with its own copy of the input. */
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
    const int64_t tiles = p->tiles;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        if (p->split_tiles) {
            /* A run of tiles per thread (the same in every image and channel
             * block); the thread first copies the input rows its tiles start
             * on into the workspace, so it reads rows it wrote itself but
             * for the kh - 1 below its last, which the next thread wrote. */
            const int64_t tl0 = tiles * t / team, tl1 = tiles * (t + 1) / team;
            /* Input rows [r0, r1): from the row this thread's first tile
             * starts reading to where the next thread's starts. */
            int64_t r0 = t == 0 ? 0 : tl0 * DC_TILE / p->s.ow * p->s.sh - p->s.ph;
            int64_t r1 = t == team - 1 ? p->s.h : tl1 * DC_TILE / p->s.ow * p->s.sh - p->s.ph;
            r0 = r0 < 0 ? 0 : r0 > p->s.h ? p->s.h : r0;
            r1 = r1 < r0 ? r0 : r1 > p->s.h ? p->s.h : r1;
            dc_fill(p, x, p->xpad, r0, r1);
#pragma omp barrier
            for (int64_t i = 0; i < p->s.n && tl0 < tl1; i++)
                for (int64_t cb = 0; cb < p->cob; cb++)
                    dc_dispatch(p, p->xpad, y, res, i, cb, tl0, tl1);
        } else {
            /* Few tiles: the channel blocks split over the threads, each
             * with a whole copy of the input of its own. */
            float *xpad = p->xpad + (size_t)t * (size_t)p->xpad_floats;
            dc_fill(p, x, xpad, 0, p->s.h);
#pragma omp for schedule(static)
            for (int64_t task = 0; task < p->s.n * p->cob; task++)
                dc_dispatch(p, xpad, y, res, task / p->cob, task % p->cob, 0, tiles);
        }
    }
    return JP_OK;
}

/* The default (26: above cpu/conv2d/packed_gemm's 25) for convolutions
 * that are strided, or 5x5 and wider, with outputs at least 14 wide (a tile
 * spans at most two rows) and a plane that fills at least 85 % of its tiles'
 * lanes: there packed_gemm gathers its B panels with a stride, or packs
 * kh x kw shifted copies of each input row.  Measured at two threads
 * (`jplprof compare --impls packed_gemm,direct`, two runs), against
 * packed_gemm:
 *   ResNet-50's 7x7 stem              1.08-1.11 against 1.31-1.35 ms
 *   its 3x3 stride-2 at 28x28, 14x14  1.06-1.17 / 1.09-1.17 against 1.25-1.36 / 1.21-1.39
 *   AlexNet's 11x11 stride-4 stem     0.63-0.67 against 0.92-0.96 (im2col_blas 0.90-0.97)
 *   AlexNet's 5x5 at 27x27            1.98-2.09 against 2.37-2.64
 *   EfficientNet-B0's and B7's stems  0.13-0.15 / 0.26-0.29 against 0.17-0.18 / 0.30
 * Not at 7x7 outputs (tiles over three rows, read through an offset table:
 * 1.37-1.48 against 1.22-1.28 ms), nor for 1x1 stride-2 downsamples (each
 * of the K = c_in taps reads a line from another plane: 1.09-1.25 against
 * 1.04-1.16 ms), nor for 3x3 stride 1 (winograd's, 28, from 13x13). */
static int dc_priority_for(const jp_step *step)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const int64_t plane = step->out.dims[2] * step->out.dims[3];
    const int64_t lanes = (plane + DC_TILE - 1) / DC_TILE * DC_TILE;
    const bool shape = a->stride_w >= 2 ? a->kernel_w > 1 : a->kernel_w >= 5;
    return shape && step->out.dims[3] >= 14 && plane * 100 >= lanes * 85 ? 26 : 1;
}

/* The padded input's slack (a few rows) is left out of the workspace. */
static void dc_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const dc_plan *p = state;
    *prepared_bytes = (size_t)(p->cob * (p->k + 1) * DC_TILE) * sizeof(float);
    *workspace_bytes = (size_t)p->xpad_floats * (p->split_tiles ? 1 : (size_t)p->n_threads) * sizeof(float) +
                       (size_t)p->k * sizeof *p->tap;
}

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

#define dc_prepare NULL
#define dc_release NULL
#define dc_priority_for NULL
#define dc_memory NULL

#endif

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
    .memory = dc_memory,
    .params_copied = true,
};
