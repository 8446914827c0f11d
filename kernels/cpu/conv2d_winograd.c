/*
 * conv2d_winograd.c: cpu/conv2d/winograd, 3x3 stride-1 convolutions
 * (dilation 1, groups 1, any padding and size) by Winograd's minimal
 * filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2015):
 *
 *     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 *
 * per 4x4 output tile, d the 6x6 input tile around it, g one 3x3 filter.
 * Summed over input channels, the element-wise products become 36
 * independent GEMMs, one per position (i, k) of the 6x6 transformed tile:
 *
 *     M[p][c_out][tiles] = U[p][c_out][c_in] * V[p][c_in][tiles]
 *
 * 36 * c_out * c_in multiply-adds per 16 outputs instead of 9 * 16: 4x fewer
 * than the direct convolution, before the transforms.
 *   prepare: U = G g G^T (in double, batch norm folded in first), packed
 *            for the GEMM microkernel (gemm_tile.h); workspaces; never timed;
 *   run:     V = B^T d B per tile (edge tiles read zeros outside the input),
 *            36 GEMMs with the microkernel, V read in place, Y = A^T M A +
 *            bias, activation, cropped to the output at the bottom and right
 *            edges.
 * The GEMMs were 36 cblas_sgemm calls.  OpenBLAS packs both operands on
 * every call; in a forward pass U is cold (9.4 MB at ResNet-50's 14x14
 * layers) and its packing did not overlap the arithmetic: those layers took
 * 1.22 ms in a pass against 0.68 ms warm.  With U packed once and streamed
 * with prefetch, 0.63 ms in a pass (ResNet-50 end to end at two threads:
 * 43.5 -> 40.1 ms; ResNet-34 35.4 -> 26.9 ms).
 * The transforms hold one tile per vector lane, up to JP_VLEN consecutive
 * tiles of one tile row (a "run"), so that each input row of a run is read
 * with contiguous loads and each output row written with contiguous stores
 * (AVX-512: de-interleaved / interleaved by permutes; the masked gathers and
 * scatters tried first cost as much as the GEMMs at 56x56).  Narrow maps
 * leave lanes idle (7 of 16 at 28x28), where the GEMMs dominate anyway.
 *
 * Invariants: the tiles of all images are numbered together (image, tile
 * row, tile column) and processed in blocks of consecutive tiles; columns of
 * v and m past a block's tile count hold no data (the GEMMs load whole
 * vectors of v there, which the input transform zeroes, and store only the
 * block's columns of m).
 *
 * Threads (chosen in prepare): with many tiles each thread transforms and
 * multiplies its own blocks (by_tiles); otherwise the team shares one block
 * at a time: input channels split for the input transform, the 36 positions
 * split for the GEMMs (each thread reads only its share of U), output
 * channels split for the output transform.
 */
#include "gemm_tile.h"

#include <omp.h>
#include <string.h>
#include <stdlib.h>

#define WG_M 4                 /* output tile side                          */
#define WG_T 6                 /* input tile side: WG_M + 3 - 1             */
#define WG_POS (WG_T * WG_T)   /* positions of a transformed tile: 36       */

/* Bytes of V and M per block (both together).  Every ResNet map fits in
 * one block: smaller blocks that stay in L2 were no faster, the GEMMs
 * narrower (ResNet-50's 3x3 layers at one thread, 8 MiB / 1 MiB / 512 KiB /
 * 256 KiB: 0.91 / 0.97 / 0.92 / 1.12 ms at 56x56, 0.92 / 1.00 / 1.11 / 1.11
 * at 28x28, 1.43 / 1.40 / 1.36 / 1.36 at 14x14, within noise at 7x7). */
#ifndef WG_BLOCK_BYTES
#define WG_BLOCK_BYTES (8 * 1024 * 1024)
#endif

typedef struct wg_plan {
    int64_t n, c_in, h, w, c_out, oh, ow;
    int ph, pw;
    int64_t tiles_h, tiles_w; /* tiles per image: ceil(oh / 4), ceil(ow / 4)  */
    int64_t n_tiles;          /* n * tiles_h * tiles_w                        */
    jp_activation act;
    int64_t m_panels;         /* ceil(c_out / JP_TILE_MR)                     */
    float *u;                 /* G g G^T, batch norm folded, packed for the
                                 microkernel: [36][m_panels][c_in][JP_TILE_MR],
                                 zero rows past c_out (wg_u_tile)             */
    float *bias;              /* [c_out]                                      */
    int n_threads;            /* threads the workspaces were sized for        */
    bool by_tiles;            /* each thread its own blocks, else one shared  */
    int64_t n_blocks;         /* block i: [wg_block_start(i), wg_block_start(i+1)) */
    int64_t ld;               /* row stride of v and m: widest block, rounded
                                 up to JP_VLEN                                */
    int n_bufs;               /* by_tiles: n_threads, else 1                  */
    float *v;                 /* [n_bufs][36][c_in][ld]                       */
    float *m;                 /* [n_bufs][36][c_out][ld]                      */
    bool shared;              /* v and m point into the executor's workspace
                                 (wg_bind_workspace), not owned            */
} wg_plan;

static int64_t wg_block_start(const wg_plan *p, int64_t i)
{
    return i >= p->n_blocks ? p->n_tiles : i * p->n_tiles / p->n_blocks;
}

/* The packed rows m .. m+JP_TILE_MR-1 (m a multiple of JP_TILE_MR) of U at
 * position pos: one contiguous stream per position, as the GEMMs read it. */
static inline float *wg_u_tile(const wg_plan *p, int pos, int64_t m)
{
    return p->u + ((size_t)pos * p->m_panels + (size_t)(m / JP_TILE_MR)) * p->c_in * JP_TILE_MR;
}

static bool wg_supports(const jp_step *step)
{
    if (!jp_cpu_conv_step_ok(step))
        return false;
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    if (a->kernel_h != 3 || a->kernel_w != 3 || a->stride_h != 1 || a->stride_w != 1 ||
        a->dilation_h != 1 || a->dilation_w != 1 || a->groups != 1)
        return false;
    return true;
}

static void wg_release(void *state)
{
    wg_plan *p = state;
    if (!p)
        return;
    jp_cpu_free(p->u);
    jp_cpu_free(p->bias);
    if (!p->shared) {
        jp_cpu_free(p->v);
        jp_cpu_free(p->m);
    }
    free(p);
}

/* u[6][6] = G g G^T for one 3x3 filter g (row-major), in double. */
static void wg_filter_transform(const float *g, double u[WG_T][WG_T])
{
    static const double G[WG_T][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    double t[WG_T][3]; /* G g */
    for (int i = 0; i < WG_T; i++)
        for (int j = 0; j < 3; j++)
            t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
    for (int i = 0; i < WG_T; i++)
        for (int k = 0; k < WG_T; k++)
            u[i][k] = t[i][0] * G[k][0] + t[i][1] * G[k][1] + t[i][2] * G[k][2];
}

static jp_status wg_prepare(const jp_step *step, void **state, jp_error *err)
{
    const jp_conv2d_attrs *at = &step->op->attrs.conv2d;
    *state = NULL;
    wg_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->n = step->in[0].dims[0];
    p->c_in = at->c_in;
    p->h = step->in[0].dims[2];
    p->w = step->in[0].dims[3];
    p->c_out = at->c_out;
    p->oh = step->out.dims[2];
    p->ow = step->out.dims[3];
    p->ph = at->pad_h;
    p->pw = at->pad_w;
    p->tiles_h = jp_cpu_div_up(p->oh, WG_M);
    p->tiles_w = jp_cpu_div_up(p->ow, WG_M);
    p->n_tiles = p->n * p->tiles_h * p->tiles_w;
    p->act = step->act;
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;

    /* Blocks: as wide as WG_BLOCK_BYTES allows; split between the threads
     * (a multiple of their number) when there are at least as many blocks
     * as threads, else shared by the team. */
    const int nt = p->n_threads;
    const int64_t tile_bytes = WG_POS * (p->c_in + p->c_out) * (int64_t)sizeof(float);
    int64_t max_tiles = WG_BLOCK_BYTES / tile_bytes;
    if (max_tiles < JP_VLEN)
        max_tiles = JP_VLEN;
    p->n_blocks = jp_cpu_div_up(p->n_tiles, max_tiles);
    p->by_tiles = nt > 1 && p->n_blocks >= nt;
    if (p->by_tiles)
        p->n_blocks = jp_cpu_round_up(p->n_blocks, nt);
    p->ld = 0;
    for (int64_t i = 0; i < p->n_blocks; i++) {
        const int64_t width = wg_block_start(p, i + 1) - wg_block_start(p, i);
        if (width > p->ld)
            p->ld = width;
    }
    p->ld = jp_cpu_round_up(p->ld, JP_VLEN);
    p->n_bufs = p->by_tiles ? nt : 1;

    /* U, from the folded weights [c_out][c_in][3][3]. */
    float *wf = NULL;
    jp_status st = jp_cpu_conv_fold(step, &wf, &p->bias, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }
    p->m_panels = jp_cpu_div_up(p->c_out, JP_TILE_MR);
    const size_t u_floats = (size_t)WG_POS * (size_t)p->m_panels * JP_TILE_MR * (size_t)p->c_in;
    p->u = jp_cpu_alloc(u_floats * sizeof(float));
    if (!p->u) {
        jp_cpu_free(wf);
        wg_release(p);
        return jp_error_set(err, JP_ERR_NOMEM,
                            "%s: cannot allocate %zu bytes of transformed weights",
                            step->op->name, u_floats * sizeof(float));
    }
    memset(p->u, 0, u_floats * sizeof(float));
    for (int64_t co = 0; co < p->c_out; co++)
        for (int64_t ci = 0; ci < p->c_in; ci++) {
            double u[WG_T][WG_T];
            wg_filter_transform(wf + (co * p->c_in + ci) * 9, u);
            for (int pos = 0; pos < WG_POS; pos++)
                wg_u_tile(p, pos, co)[ci * JP_TILE_MR + co % JP_TILE_MR] =
                    (float)u[pos / WG_T][pos % WG_T];
        }
    jp_cpu_free(wf);

    const size_t v_floats = (size_t)p->n_bufs * WG_POS * (size_t)p->c_in * (size_t)p->ld;
    const size_t m_floats = (size_t)p->n_bufs * WG_POS * (size_t)p->c_out * (size_t)p->ld;
    p->v = jp_cpu_alloc(v_floats * sizeof(float));
    p->m = jp_cpu_alloc(m_floats * sizeof(float));
    if (!p->v || !p->m) {
        wg_release(p);
        return jp_error_set(err, JP_ERR_NOMEM,
                            "%s: cannot allocate %zu bytes of Winograd workspace",
                            step->op->name, (v_floats + m_floats) * sizeof(float));
    }
    *state = p;
    return JP_OK;
}

/* ---- the 1-D transforms, on vectors (one tile per lane) ---- */

/* out = B^T in (6 -> 6), B^T = [4  0 -5  0  1  0]
 *                              [0 -4 -4  1  1  0]
 *                              [0  4 -4 -1  1  0]
 *                              [0 -2 -1  2  1  0]
 *                              [0  2 -1 -2  1  0]
 *                              [0  4  0 -5  0  1] */
JP_ALWAYS_INLINE void wg_bt(const jp_vf in[WG_T], jp_vf out[WG_T])
{
    const jp_vf four = jp_v_set1(4.0f), minus5 = jp_v_set1(-5.0f), two = jp_v_set1(2.0f);
    const jp_vf s12 = jp_v_add(in[1], in[2]), d12 = jp_v_sub(in[1], in[2]);
    const jp_vf s34 = jp_v_add(in[3], in[4]), d43 = jp_v_sub(in[4], in[3]);
    const jp_vf d42 = jp_v_sub(in[4], in[2]), d31 = jp_v_sub(in[3], in[1]);
    out[0] = jp_v_fma(minus5, in[2], jp_v_fma(four, in[0], in[4]));
    out[1] = jp_v_fma(jp_v_set1(-4.0f), s12, s34);
    out[2] = jp_v_fma(four, d12, d43);
    out[3] = jp_v_fma(two, d31, d42);
    out[4] = jp_v_fma(jp_v_set1(-2.0f), d31, d42);
    out[5] = jp_v_fma(minus5, in[3], jp_v_fma(four, in[1], in[5]));
}

/* out = A^T in (6 -> 4), A^T = [1  1  1  1  1  0]
 *                              [0  1 -1  2 -2  0]
 *                              [0  1  1  4  4  0]
 *                              [0  1 -1  8 -8  1] */
JP_ALWAYS_INLINE void wg_at(const jp_vf in[WG_T], jp_vf out[WG_M])
{
    const jp_vf s12 = jp_v_add(in[1], in[2]), d12 = jp_v_sub(in[1], in[2]);
    const jp_vf s34 = jp_v_add(in[3], in[4]), d34 = jp_v_sub(in[3], in[4]);
    out[0] = jp_v_add(jp_v_add(in[0], s12), s34);
    out[1] = jp_v_fma(jp_v_set1(2.0f), d34, d12);
    out[2] = jp_v_fma(jp_v_set1(4.0f), s34, s12);
    out[3] = jp_v_add(jp_v_fma(jp_v_set1(8.0f), d34, d12), in[5]);
}

/* ---- one input / output row of a run of tiles, lane k = tile k ---- */

/* A run of at most JP_VLEN consecutive tiles inside one tile row: what one
 * vector of each transform holds (the lanes of a vector must be tiles of the
 * same row for the row loads and stores below to be contiguous). */
typedef struct wg_seg {
    int64_t col;   /* first tile's column in the block's v and m          */
    int64_t img;   /* image                                               */
    int64_t y0;    /* first output row of the tiles: 4 * tile row         */
    int64_t x0;    /* first output column of the first tile: 4 * tile col */
    int n;         /* tiles, 1 .. JP_VLEN                                 */
} wg_seg;

/* The run of tiles starting at tile t (< end), clipped at its tile row, at
 * end and at JP_VLEN tiles; col = t - t0. */
static wg_seg wg_seg_at(const wg_plan *p, int64_t t0, int64_t t, int64_t end)
{
    const int64_t per_image = p->tiles_h * p->tiles_w, r = t % per_image;
    const int64_t tx = r % p->tiles_w;
    int64_t n = p->tiles_w - tx;
    if (n > end - t)
        n = end - t;
    if (n > JP_VLEN)
        n = JP_VLEN;
    return (wg_seg){t - t0, t / per_image, r / p->tiles_w * WG_M, tx * WG_M, (int)n};
}

/* d[j] lane k = row[x0 + 4k + j] for j < 6, k < n, 0 where that index lies
 * outside [0, w) (the padding); row NULL: an input row in the padding. */
JP_ALWAYS_INLINE void wg_load_row(const float *row, int64_t x0, int n, int64_t w, jp_vf d[WG_T])
{
    if (!row) {
        for (int j = 0; j < WG_T; j++)
            d[j] = jp_v_zero();
        return;
    }
#if defined(__AVX512F__)
    /* a[q] = row[x0 + 16q ..], b[q] = row[x0 + 4 + 16q ..]: the 68 floats
     * 16 tiles read, masked to the row; then each phase j (j + 4k) picked
     * out of them: two 2-vector permutes (8 lanes each) and one shuffle. */
    (void)n;
    __m512 a[4], b[4];
    for (int q = 0; q < 4; q++) {
        const int64_t sa = x0 + 16 * q, sb = sa + 4;
        a[q] = jp_v_load_range(row + sa, -sa, w - sa);
        b[q] = jp_v_load_range(row + sb, -sb, w - sb);
    }
    for (int j = 0; j < WG_T; j++) {
        const int f = j & 3; /* first float of the phase in src */
        const __m512i idx = _mm512_setr_epi32(f, f + 4, f + 8, f + 12, f + 16, f + 20, f + 24,
                                              f + 28, f, f + 4, f + 8, f + 12, f + 16, f + 20,
                                              f + 24, f + 28);
        const __m512 *src = j < 4 ? a : b;
        const __m512 lo = _mm512_permutex2var_ps(src[0], idx, src[1]);
        const __m512 hi = _mm512_permutex2var_ps(src[2], idx, src[3]);
        d[j] = _mm512_shuffle_f32x4(lo, hi, 0x44);
    }
#else
    for (int j = 0; j < WG_T; j++) {
        float buf[JP_VLEN];
        for (int k = 0; k < JP_VLEN; k++) {
            const int64_t x = x0 + 4 * k + j;
            buf[k] = k < n && x >= 0 && x < w ? row[x] : 0.0f;
        }
        d[j] = jp_v_load(buf);
    }
#endif
}

/* row[x0 + 4k + b] = o[b] lane k for b < 4, k < n, where x0 + 4k + b < ow
 * (the right edge crops the last tile). */
JP_ALWAYS_INLINE void wg_store_row(float *row, int64_t x0, int n, int64_t ow, const jp_vf o[WG_M])
{
    int64_t limit = ow - x0; /* columns of row from x0 on */
    if (limit > 4 * (int64_t)n)
        limit = 4 * (int64_t)n;
#if defined(__AVX512F__)
    /* Interleave the four vectors: first pairs (o0, o1), (o2, o3) lane by
     * lane, then the pairs two by two: 16 floats = 4 tiles per store. */
    const __m512i pair_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7,
                                              23);
    const __m512i pair_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                              15, 31);
    const __m512i quad_lo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22,
                                              23);
    const __m512i quad_hi = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15,
                                              30, 31);
    const __m512 p01[2] = {_mm512_permutex2var_ps(o[0], pair_lo, o[1]),
                           _mm512_permutex2var_ps(o[0], pair_hi, o[1])};
    const __m512 p23[2] = {_mm512_permutex2var_ps(o[2], pair_lo, o[3]),
                           _mm512_permutex2var_ps(o[2], pair_hi, o[3])};
    for (int q = 0; q < 4 && 16 * q < limit; q++) {
        const __m512 v = _mm512_permutex2var_ps(p01[q / 2], q % 2 ? quad_hi : quad_lo, p23[q / 2]);
        const int64_t cnt = limit - 16 * q;
        jp_v_store_n(row + x0 + 16 * q, v, cnt > 16 ? 16 : (int)cnt);
    }
#else
    float buf[WG_M][JP_VLEN];
    for (int b = 0; b < WG_M; b++)
        jp_v_store(buf[b], o[b]);
    for (int64_t x = 0; x < limit; x++)
        row[x0 + x] = buf[x % 4][x / 4];
#endif
}

/* ---- the three phases of a block ---- */

/* v[36][c_in][ld], columns 0 .. count-1 = B^T d B of tiles t0 .. t0+count-1,
 * for input channels [c0, c1) of x [n, c_in, h, w]. */
static void wg_input_transform(const wg_plan *p, const float *x, int64_t t0, int64_t count,
                               int64_t c0, int64_t c1, float *v)
{
    const int64_t plane = p->h * p->w, pos_stride = p->c_in * p->ld;
    for (int64_t t = t0; t < t0 + count;) {
        const wg_seg sg = wg_seg_at(p, t0, t, t0 + count);
        t += sg.n;
        const int64_t iy0 = sg.y0 - p->ph, ix0 = sg.x0 - p->pw;
        for (int64_t c = c0; c < c1; c++) {
            const float *xc = x + (sg.img * p->c_in + c) * plane;
            jp_vf rows[WG_T][WG_T]; /* [input row][k]: B^T applied along each row */
            for (int i = 0; i < WG_T; i++) {
                const int64_t iy = iy0 + i;
                jp_vf d[WG_T];
                wg_load_row(iy >= 0 && iy < p->h ? xc + iy * p->w : NULL, ix0, sg.n, p->w, d);
                wg_bt(d, rows[i]);
            }
            float *vc = v + c * p->ld + sg.col;
            for (int k = 0; k < WG_T; k++) {
                const jp_vf col[WG_T] = {rows[0][k], rows[1][k], rows[2][k],
                                         rows[3][k], rows[4][k], rows[5][k]};
                jp_vf out[WG_T];
                wg_bt(col, out);
                for (int i = 0; i < WG_T; i++)
                    jp_v_store_n(vc + (i * WG_T + k) * pos_stride, out[i], sg.n);
            }
        }
    }
    /* The GEMMs load whole vectors past column count - 1 (up to count rounded
     * up to JP_VLEN, within ld; never stored): zeros there, whatever the
     * shared workspace held before (another kernel's scratch: its integers
     * read as denormals, slow on some cores, or as NaN). */
    const int64_t pad = jp_cpu_round_up(count, JP_VLEN) - count;
    if (pad > 0)
        for (int64_t c = c0; c < c1; c++)
            for (int pos = 0; pos < WG_POS; pos++)
                memset(v + pos * pos_stride + c * p->ld + count, 0, (size_t)pad * sizeof(float));
}

/* m[pos][c_out][ld] = u[pos] * v[pos] for positions [pos0, pos1), count
 * columns: per position, each panel of JP_TILE_NR columns of v read in
 * place (it stays in L1/L2) against every row tile of u[pos] (streamed). */
static void wg_gemms(const wg_plan *p, int pos0, int pos1, int64_t count, const float *v, float *m)
{
    for (int pos = pos0; pos < pos1; pos++) {
        const float *vp = v + (size_t)pos * p->c_in * p->ld;
        float *mp = m + (size_t)pos * p->c_out * p->ld;
        for (int64_t col = 0; col < count; col += JP_TILE_NR) {
            const int cols = count - col < JP_TILE_NR ? (int)(count - col) : JP_TILE_NR;
            for (int64_t row = 0; row < p->c_out; row += JP_TILE_MR) {
                const int rows = p->c_out - row < JP_TILE_MR ? (int)(p->c_out - row) : JP_TILE_MR;
                jp_tile_cols(p->c_in, wg_u_tile(p, pos, row), vp + col, p->ld,
                             mp + row * p->ld + col, p->ld, NULL, NULL, true, true, JP_ACT_NONE,
                             rows, cols);
            }
        }
    }
}

/* y [n, c_out, oh, ow], output channels [c0, c1) of tiles t0 .. t0+count-1:
 * act(A^T M A + bias), cropped at the bottom and right edges. */
JP_ALWAYS_INLINE void wg_output_tiles(const wg_plan *p, float *y, int64_t t0, int64_t count,
                                      int64_t c0, int64_t c1, const float *m,
                                      const jp_activation ACT)
{
    const int64_t plane = p->oh * p->ow, pos_stride = p->c_out * p->ld;
    for (int64_t t = t0; t < t0 + count;) {
        const wg_seg sg = wg_seg_at(p, t0, t, t0 + count);
        t += sg.n;
        const int rows = p->oh - sg.y0 < WG_M ? (int)(p->oh - sg.y0) : WG_M;
        for (int64_t c = c0; c < c1; c++) {
            const float *mc = m + c * p->ld + sg.col;
            jp_vf cols[WG_M][WG_T]; /* [output row a][k]: A^T applied down each column */
            for (int k = 0; k < WG_T; k++) {
                jp_vf in[WG_T], out[WG_M];
                for (int i = 0; i < WG_T; i++)
                    in[i] = jp_v_load_n(mc + (i * WG_T + k) * pos_stride, sg.n);
                wg_at(in, out);
                for (int a = 0; a < WG_M; a++)
                    cols[a][k] = out[a];
            }
            const jp_vf bias = jp_v_set1(p->bias[c]);
            float *yc = y + (sg.img * p->c_out + c) * plane + sg.y0 * p->ow;
            for (int a = 0; a < rows; a++) {
                jp_vf out[WG_M];
                wg_at(cols[a], out);
                for (int b = 0; b < WG_M; b++)
                    out[b] = jp_v_act(jp_v_add(out[b], bias), ACT);
                wg_store_row(yc + a * p->ow, sg.x0, sg.n, p->ow, out);
            }
        }
    }
}

/* wg_output_tiles with the activation a constant inside each loop. */
static void wg_output_transform(const wg_plan *p, float *y, int64_t t0, int64_t count, int64_t c0,
                                int64_t c1, const float *m)
{
    switch (p->act) {
#define WG_OUTPUT_ACT_(name)                                                                                  \
    case JP_ACT_##name: wg_output_tiles(p, y, t0, count, c0, c1, m, JP_ACT_##name); break;
        JP_ACTIVATIONS(WG_OUTPUT_ACT_)
#undef WG_OUTPUT_ACT_
    case JP_ACT_NONE:
    case JP_ACT_COUNT: wg_output_tiles(p, y, t0, count, c0, c1, m, JP_ACT_NONE); break;
    }
}

/* [lo, hi) of part `part` of `parts` equal shares of [0, total). */
static void wg_share(int64_t total, int part, int parts, int64_t *lo, int64_t *hi)
{
    *lo = total * part / parts;
    *hi = total * (part + 1) / parts;
}

static jp_status wg_run(void *state, const jp_step *step, jp_error *err)
{
    const wg_plan *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/winograd run before prepare",
                            step->op->name);
    const float *x = step->in[0].data; /* [n, c_in, h, w]    */
    float *y = step->out.data;         /* [n, c_out, oh, ow] */
    int nt = omp_get_max_threads();
    if (nt > p->n_threads)
        nt = p->n_threads;
    if (nt < 1)
        nt = 1;
    if (p->by_tiles) {
#pragma omp parallel num_threads(nt)
        {
            const size_t tid = (size_t)omp_get_thread_num();
            float *v = p->v + tid * WG_POS * (size_t)p->c_in * (size_t)p->ld;
            float *m = p->m + tid * WG_POS * (size_t)p->c_out * (size_t)p->ld;
#pragma omp for schedule(static)
            for (int64_t b = 0; b < p->n_blocks; b++) {
                const int64_t t0 = wg_block_start(p, b), count = wg_block_start(p, b + 1) - t0;
                wg_input_transform(p, x, t0, count, 0, p->c_in, v);
                wg_gemms(p, 0, WG_POS, count, v, m);
                wg_output_transform(p, y, t0, count, 0, p->c_out, m);
            }
        }
        return JP_OK;
    }
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        int64_t ci0, ci1, co0, co1, pos0, pos1;
        wg_share(p->c_in, tid, nth, &ci0, &ci1);
        wg_share(p->c_out, tid, nth, &co0, &co1);
        wg_share(WG_POS, tid, nth, &pos0, &pos1);
        for (int64_t b = 0; b < p->n_blocks; b++) {
            const int64_t t0 = wg_block_start(p, b), count = wg_block_start(p, b + 1) - t0;
            /* v is free: every thread finished the previous block's GEMMs. */
            wg_input_transform(p, x, t0, count, ci0, ci1, p->v);
#pragma omp barrier
            wg_gemms(p, (int)pos0, (int)pos1, count, p->v, p->m);
#pragma omp barrier
            /* m is rewritten only after the next block's first barrier. */
            wg_output_transform(p, y, t0, count, co0, co1, p->m);
        }
    }
    return JP_OK;
}

/* The default for 3x3 stride-1 layers with maps of at least 13x13 outputs,
 * above cpu/conv2d/packed_gemm (25) there; below it (and im2col_blas) on
 * smaller maps.  Measured at two threads (`jplprof compare --impls
 * packed_gemm,winograd`, tests/bench_cpu_kernels): 2.4x packed_gemm at
 * ResNet-50's 56x56 and 28x28, 1.7-1.9x at 14x14 (1.9x in a forward pass);
 * AlexNet's three 13x13 layers end to end 13.5 -> 11.9 ms; but 0.57x at 7x7
 * (U is 37.7 MB there, for GEMMs of 4 columns: memory-bound). */
#define WG_MIN_OUTPUTS (13 * 13)

static int wg_priority_for(const jp_step *step)
{
    const jp_tensor *y = &step->out;
    return y->dims[2] * y->dims[3] >= WG_MIN_OUTPUTS ? 28 : 3;
}

static size_t wg_v_bytes(const wg_plan *p)
{
    return (size_t)p->n_bufs * WG_POS * (size_t)p->c_in * (size_t)p->ld * sizeof(float);
}

static void wg_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const wg_plan *p = state;
    *prepared_bytes = ((size_t)WG_POS * (size_t)p->m_panels * JP_TILE_MR * (size_t)p->c_in + (size_t)p->c_out) *
                      sizeof(float);
    *workspace_bytes = ((wg_v_bytes(p) + 63) & ~(size_t)63) + (size_t)p->n_bufs * WG_POS * (size_t)p->c_out * (size_t)p->ld * sizeof(float);
}

/* v then m in the shared workspace (v's size is a multiple of 64 bytes: ld is
 * a multiple of JP_VLEN floats, and the 36 * c_in rows keep it so when
 * JP_VLEN >= 16; else rounded up here).  Nothing is read there before it is
 * written (wg_input_transform zeroes what the GEMMs read past a block). */
static void wg_bind_workspace(void *state, void *workspace)
{
    wg_plan *p = state;
    const size_t v_bytes = (wg_v_bytes(p) + 63) & ~(size_t)63;
    if (!p->shared) {
        jp_cpu_free(p->v);
        jp_cpu_free(p->m);
    }
    p->shared = true;
    p->v = workspace;
    p->m = (float *)((char *)workspace + v_bytes);
}

const jp_kernel jp_cpu_conv2d_winograd = {
    .name = "cpu/conv2d/winograd",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 3,
    .supports = wg_supports,
    .prepare = wg_prepare,
    .run = wg_run,
    .release = wg_release,
    .priority_for = wg_priority_for,
    .memory = wg_memory,
    .bind_workspace = wg_bind_workspace,
    .params_copied = true,
};
