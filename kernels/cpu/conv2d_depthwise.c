/*
 * conv2d_depthwise.c: cpu/conv2d/depthwise, direct depthwise convolution
 * (groups == c_in == c_out), the EfficientNet workhorse.
 *
 * Kernels up to 7x7, any stride up to 4, padding and dilation.  Batch norm is
 * folded into the weights and bias in prepare; the activation is applied to
 * each output tile while it is still in registers.  OpenMP splits the n*c
 * planes.  Outputs are computed in tiles of up to 8 vectors (rows x column
 * vectors, 7 rows when 7 divides the plane) whose accumulators stay in
 * registers across all taps (cpu_simd.h).  Three paths, chosen in prepare:
 *
 *   - 3x3 and 5x5, stride 1, no dilation (dw_tile_s1): the tile reads the
 *     input plane itself; rows outside the plane are skipped, columns
 *     outside come from masked loads.  Each (input row, kx) vector is loaded
 *     once and feeds the up-to-K output rows that use it.
 *   - the same at stride 2 on AVX-512 (dw_tile_s2): two loads and one
 *     permute de-interleave the 32 input floats of a tap pair.
 *   - maps at most 8 wide, stride 1, on AVX-512 (dw_pair_s1): two channels
 *     per vector, planes taken in pairs (EfficientNet's 7x7 stages: 1152
 *     channels of 5x5 in 0.035 ms against 0.057 ms one plane a vector).
 *   - anything else (and stride 2 without AVX-512): the padded input is first
 *     copied into the thread's workspace as `stride` column phases,
 *         phase[q][r][x] = padded[r][stride*x + q],
 *     so that every tap reads a contiguous run whatever the stride, with no
 *     bounds test left: output column ox, tap kx reads
 *     phase[(kx*dil) % stride][row][ox + (kx*dil) / stride]
 *     (dw_tile for any kernel, dw_tile_k for 3x3/5x5 without dilation).
 */
#include "cpu_simd.h"

#include <omp.h>
#include <stdlib.h>

#define DW_MAX_KERNEL 7
#define DW_MAX_STRIDE 4

typedef struct dw_plan {
    int64_t n, c, h, w, oh, ow;
    int kh, kw, sh, sw, ph, pw, dh, dw;
    jp_activation act;
    int64_t rows;       /* padded rows read: (oh-1)*sh + (kh-1)*dh + 1        */
    int64_t rows_alloc; /* rows of a phase in the workspace: rows + 7*sh      */
    int64_t phase_w;    /* columns of one phase: ow + (kw-1)*dw/sw (+ slack)  */
    int64_t plane;      /* floats of one thread's workspace: sw*rows_alloc*phase_w */
    float *wt;          /* [c, kh*kw], batch norm folded                       */
    float *b;           /* [c]                                                 */
    int taps;           /* kh * kw                                             */
    int64_t tap_off[DW_MAX_KERNEL * DW_MAX_KERNEL]; /* tap t's offset in the phases */
    /* Lane masks of the row copies, the same for every row: stride 1, chunk
     * k: masks[k]; stride 2 (AVX-512), block k: masks[2k], masks[2k+1]. */
    jp_vmask *masks;
    /* Computes one output plane from the input plane (direct) or from the
     * phases; chosen in prepare (dw_choose). */
    void (*plane_fn)(const struct dw_plan *p, const float *in, const float *wc, float bias,
                     float *y);
    bool direct;
    bool pairs;         /* two channels per vector (dw_pair_s1): narrow maps   */
    int n_threads;
    float *work;        /* [n_threads][plane]; NULL when direct                */
} dw_plan;

static bool dw_supports(const jp_step *step)
{
    if (!jp_cpu_conv_step_ok(step))
        return false;
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    return a->groups == a->c_in && a->c_out == a->c_in && a->kernel_h <= DW_MAX_KERNEL &&
           a->kernel_w <= DW_MAX_KERNEL && a->stride_h <= DW_MAX_STRIDE &&
           a->stride_w <= DW_MAX_STRIDE;
}

static void dw_release(void *state)
{
    dw_plan *p = state;
    if (!p)
        return;
    jp_cpu_free(p->wt);
    jp_cpu_free(p->b);
    jp_cpu_free(p->work);
    jp_cpu_free(p->masks);
    free(p);
}

typedef void (*dw_plane_fn)(const dw_plan *p, const float *in, const float *wc, float bias,
                            float *y);
static dw_plane_fn dw_choose(const dw_plan *p, bool *direct);

static jp_status dw_prepare(const jp_step *step, void **state, jp_error *err)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    *state = NULL;
    dw_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->n = step->in[0].dims[0];
    p->c = a->c_in;
    p->h = step->in[0].dims[2];
    p->w = step->in[0].dims[3];
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
    p->rows = (p->oh - 1) * p->sh + (int64_t)(p->kh - 1) * p->dh + 1;
    /* The last vector of a row reads (never uses) lanes up to ow rounded up
     * to JP_VLEN, at the tap offsets up to (kw-1)*dw/sw. */
    p->phase_w = (p->ow + JP_VLEN - 1) / JP_VLEN * JP_VLEN + (int64_t)(p->kw - 1) * p->dw / p->sw;
    p->phase_w = (p->phase_w + JP_VLEN - 1) / JP_VLEN * JP_VLEN; /* whole vectors per row */
    /* The fast path's last tile may run up to 7 rows past oh: zero rows. */
    p->rows_alloc = p->rows + 7 * (int64_t)p->sh;
    p->plane = p->sw * p->rows_alloc * p->phase_w;
    p->taps = p->kh * p->kw;
    for (int ky = 0; ky < p->kh; ky++)
        for (int kx = 0; kx < p->kw; kx++) {
            const int e = kx * p->dw;
            p->tap_off[ky * p->kw + kx] =
                ((int64_t)(e % p->sw) * p->rows_alloc + (int64_t)ky * p->dh) * p->phase_w +
                e / p->sw;
        }
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;
    const int64_t chunks = p->phase_w / JP_VLEN;
#if defined(__AVX512F__)
    p->pairs = p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 && p->kh == p->kw &&
               (p->kh == 3 || p->kh == 5) && p->ow <= 8;
#endif
    /* Pairs: masks[kx], the lanes l < 8 of a row piece read at column
     * kx - pw + l that lie inside the row. */
    const int64_t n_masks = p->pairs && p->kw > 2 * chunks ? p->kw : 2 * chunks;
    p->masks = jp_cpu_alloc((size_t)n_masks * sizeof(jp_vmask));
    if (!p->masks) {
        free(p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    }
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t j = k * JP_VLEN;
        if (p->sw == 1) {
            p->masks[k] = jp_v_mask_range(p->pw - j, p->w + p->pw - j);
        } else {
            /* Stride 2: the 2*JP_VLEN input floats from 2j - pw. */
            const int64_t start = 2 * j - p->pw;
            p->masks[2 * k] = jp_v_mask_range(-start, p->w - start);
            p->masks[2 * k + 1] = jp_v_mask_range(-start - JP_VLEN, p->w - start - JP_VLEN);
        }
    }
    if (p->pairs)
        for (int kx = 0; kx < p->kw; kx++)
            p->masks[kx] = jp_v_mask_range(p->pw - kx, p->w + p->pw - kx) & 0xFF;
    jp_status st = jp_cpu_conv_fold(step, &p->wt, &p->b, err);
    if (st != JP_OK) {
        jp_cpu_free(p->masks);
        free(p);
        return st;
    }
    p->plane_fn = dw_choose(p, &p->direct);
    if (!p->direct) {
        p->work = jp_cpu_alloc((size_t)p->plane * (size_t)p->n_threads * sizeof(float));
        if (!p->work) {
            dw_release(p);
            return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the depthwise workspace",
                                step->op->name);
        }
        memset(p->work, 0, (size_t)p->plane * (size_t)p->n_threads * sizeof(float));
    }
    *state = p;
    return JP_OK;
}

/* dst[j] = src[stride*j + ix0] for j < count, zero where the source index
 * falls outside [0, len). */
static void dw_fill_row(float *restrict dst, const float *restrict src, int64_t len, int64_t ix0,
                        int stride, int64_t count)
{
    int64_t j_lo = ix0 < 0 ? (-ix0 + stride - 1) / stride : 0;
    int64_t j_hi = ix0 <= len - 1 ? (len - 1 - ix0) / stride + 1 : 0;
    if (j_lo > count)
        j_lo = count;
    if (j_hi > count)
        j_hi = count;
    if (j_hi < j_lo)
        j_hi = j_lo;
    for (int64_t j = 0; j < j_lo; j++)
        dst[j] = 0.0f;
    if (stride == 1) {
        memcpy(dst + j_lo, src + ix0 + j_lo, (size_t)(j_hi - j_lo) * sizeof(float));
    } else {
        for (int64_t j = j_lo; j < j_hi; j++)
            dst[j] = src[ix0 + j * stride];
    }
    for (int64_t j = j_hi; j < count; j++)
        dst[j] = 0.0f;
}

/* Both phases of one input row at stride 2: even[j] = src[2j - pad],
 * odd[j] = src[2j + 1 - pad] (zero outside [0, len)), count a multiple of
 * JP_VLEN.  On AVX-512, 32 floats at a time: two masked loads, two
 * permutes (the scalar gather it replaces cost as much as the convolution
 * itself); on AVX2 16 at a time.  masks[2k], masks[2k+1]: the lanes of the
 * two loads of output block k (prepare). */
static void dw_fill_row_s2(float *restrict even, float *restrict odd, const float *restrict src,
                           int64_t len, int pad, int64_t count, const jp_vmask *masks)
{
#if defined(__AVX512F__)
    const __m512i idx_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                               28, 30);
    const __m512i idx_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                              29, 31);
    (void)len;
    for (int64_t j = 0; j < count; j += 16) {
        const int64_t start = 2 * j - pad;
        const __m512 a = jp_v_load_mask(src + start, masks[j / 8]);
        const __m512 b = jp_v_load_mask(src + start + 16, masks[j / 8 + 1]);
        _mm512_storeu_ps(even + j, _mm512_permutex2var_ps(a, idx_even, b));
        _mm512_storeu_ps(odd + j, _mm512_permutex2var_ps(a, idx_odd, b));
    }
#elif defined(__AVX2__) && defined(__FMA__)
    /* 16 floats at a time: two masked loads, one de-interleave.  The scalar
     * loop cost 0.8 ms of features.2's 1.07 ms in mobilenet_v2 on Zen 3. */
    (void)len;
    for (int64_t j = 0; j < count; j += 8) {
        const int64_t start = 2 * j - pad;
        jp_vf e, o;
        jp_v_deinterleave2(jp_v_load_mask(src + start, masks[j / 4]),
                           jp_v_load_mask(src + start + 8, masks[j / 4 + 1]), &e, &o);
        jp_v_store(even + j, e);
        jp_v_store(odd + j, o);
    }
#else
    (void)masks;
    for (int64_t j = 0; j < count; j++) {
        const int64_t i = 2 * j - pad;
        even[j] = i >= 0 && i < len ? src[i] : 0.0f;
        odd[j] = i + 1 >= 0 && i + 1 < len ? src[i + 1] : 0.0f;
    }
#endif
}

/* Copies channel plane x[h, w] into rows [0, rows) of the phases (see the
 * file header); rows [rows, rows_alloc) stay zero from prepare. */
static void dw_fill_phases(const dw_plan *p, const float *restrict x, float *restrict work)
{
    for (int64_t r = 0; r < p->rows; r++) {
        const int64_t iy = r - p->ph;
        if (iy < 0 || iy >= p->h) {
            for (int q = 0; q < p->sw; q++)
                for (int64_t j = 0; j < p->phase_w; j += JP_VLEN)
                    jp_v_store(work + (q * p->rows_alloc + r) * p->phase_w + j, jp_v_zero());
            continue;
        }
        const float *src = x + iy * p->w;
        if (p->sw == 1) {
            /* Vector by vector with masked loads: small planes (EfficientNet's
             * 14x14 and 7x7) spend more in per-row memcpy/memset calls than in
             * the convolution. */
            float *dst = work + r * p->phase_w;
            for (int64_t j = 0; j < p->phase_w; j += JP_VLEN)
                jp_v_store(dst + j, jp_v_load_mask(src + j - p->pw, p->masks[j / JP_VLEN]));
            continue;
        }
        if (p->sw == 2) {
            dw_fill_row_s2(work + r * p->phase_w, work + (p->rows_alloc + r) * p->phase_w, src, p->w,
                           p->pw, p->phase_w, p->masks);
            continue;
        }
        for (int q = 0; q < p->sw; q++)
            dw_fill_row(work + (q * p->rows_alloc + r) * p->phase_w, src, p->w, q - p->pw, p->sw,
                        p->phase_w);
    }
}

/* Output tile: R rows x V vectors of JP_VLEN columns, accumulators in
 * registers; R*V <= 8 keeps enough independent FMA chains in flight to hide
 * the FMA latency (4 cycles, 2 ports) and stays far from the 32 registers. */
JP_ALWAYS_INLINE void dw_tile(const dw_plan *p, const float *restrict work,
                              const float *restrict wc, float bias, float *restrict y, int64_t oy,
                              int64_t ox0, const int R, const int V, int tail)
{
    jp_vf acc[8][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = jp_v_set1(bias);
    const int64_t row_step = p->sh * p->phase_w;
    const float *origin = work + oy * row_step + ox0;
    for (int t = 0; t < p->taps; t++) {
        const jp_vf wv = jp_v_set1(wc[t]);
        /* One pointer walked down the rows: an array of R row pointers does
         * not fit the general registers next to the loop state, and gcc then
         * parks them in mask registers (kmov on the FMA port). */
        const float *q = origin + p->tap_off[t];
        for (int r = 0; r < R; r++) {
            for (int v = 0; v < V; v++)
                acc[r][v] = jp_v_fma(wv, jp_v_load(q + v * JP_VLEN), acc[r][v]);
            q += row_step;
        }
    }
    for (int r = 0; r < R; r++) {
        float *dst = y + (oy + r) * p->ow + ox0;
        for (int v = 0; v < V - 1; v++)
            jp_v_store(dst + v * JP_VLEN, jp_v_act(acc[r][v], p->act));
        jp_v_store_n(dst + (V - 1) * JP_VLEN, jp_v_act(acc[r][V - 1], p->act), tail);
    }
}

/* A column strip of V vectors: tiles of 8/V rows, then one tile of the rows
 * left (a single-row tile would be one FMA chain, latency-bound: the 7x7
 * planes of EfficientNet's last stages have only 7 rows). */
JP_ALWAYS_INLINE void dw_column_strip(const dw_plan *p, const float *restrict work,
                                      const float *restrict wc, float bias, float *restrict y,
                                      int64_t ox0, const int V, int tail)
{
    const int R = 8 / V;
    int64_t oy = 0;
    for (; oy + R <= p->oh; oy += R)
        dw_tile(p, work, wc, bias, y, oy, ox0, R, V, tail);
    switch (p->oh - oy) { /* < R; the `k < R` tests drop impossible cases at compile time */
    case 0: break;
    case 1: dw_tile(p, work, wc, bias, y, oy, ox0, 1, V, tail); break;
    case 2: if (2 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 2, V, tail); break;
    case 3: if (3 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 3, V, tail); break;
    case 4: if (4 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 4, V, tail); break;
    case 5: if (5 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 5, V, tail); break;
    case 6: if (6 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 6, V, tail); break;
    default: if (7 < R) dw_tile(p, work, wc, bias, y, oy, ox0, 7, V, tail); break;
    }
}

/* One output plane y[oh, ow] from the phases of its input channel: the
 * general path (any kernel, dilation, stride). */
static void dw_plane_generic(const dw_plan *p, const float *restrict work,
                             const float *restrict wc, float bias, float *restrict y)
{
    const int64_t nvec = (p->ow + JP_VLEN - 1) / JP_VLEN;
    const int last_lanes = (int)(p->ow - (nvec - 1) * JP_VLEN);
    int64_t vec = 0;
    for (; vec + 4 < nvec; vec += 4)
        dw_column_strip(p, work, wc, bias, y, vec * JP_VLEN, 4, JP_VLEN);
    switch (nvec - vec) { /* 1..4 vectors left, the last one partial */
    case 1: dw_column_strip(p, work, wc, bias, y, vec * JP_VLEN, 1, last_lanes); break;
    case 2: dw_column_strip(p, work, wc, bias, y, vec * JP_VLEN, 2, last_lanes); break;
    case 3: dw_column_strip(p, work, wc, bias, y, vec * JP_VLEN, 3, last_lanes); break;
    default: dw_column_strip(p, work, wc, bias, y, vec * JP_VLEN, 4, last_lanes); break;
    }
}

/* The fast path: square K x K kernel (3 or 5), stride S (1 or 2), no
 * dilation, all compile-time.  The tile walks the INPUT rows it needs once:
 * each (input row, kx) vector is loaded one time and feeds every output row
 * of the tile that uses it (up to K of them), the weight being the FMA's
 * broadcast operand.  Per 8-row tile of a 5x5 that is 60 loads for 200 FMAs
 * instead of 200 loads, most of which straddle two cache lines (the kx
 * shifts): the loads, not the FMAs, were the limit (measured: the 5x5 taps
 * loop ran at 1 FMA per cycle).  Rows past oh (the last tile's) are computed
 * from the zero rows below the plane and not stored. */
/* The tile's loops have compile-time bounds but gcc's cost model stops
 * unrolling the nest half way and keeps the accumulators on the stack:
 * unroll everything (other compilers ignore the pragma). */
#if defined(__GNUC__) && !defined(__clang__)
#define DW_UNROLL _Pragma("GCC unroll 64")
#else
#define DW_UNROLL
#endif

JP_ALWAYS_INLINE void dw_tile_k(const dw_plan *p, const float *restrict work,
                                const float *restrict wc, float bias, float *restrict y,
                                int64_t oy, int64_t ox0, const int K, const int S, const int R,
                                const int V, int tail, int rows_valid)
{
    jp_vf acc[8][4];
    DW_UNROLL
    for (int r = 0; r < R; r++)
        DW_UNROLL
        for (int v = 0; v < V; v++)
            acc[r][v] = jp_v_set1(bias);
    const int64_t phase_floats = p->rows_alloc * p->phase_w;
    const float *base = work + oy * S * p->phase_w + ox0;
    DW_UNROLL
    for (int ir = 0; ir < (R - 1) * S + K; ir++) {
        const float *row = base + ir * p->phase_w;
        DW_UNROLL
        for (int kx = 0; kx < K; kx++) {
            const float *src = row + (kx % S) * phase_floats + kx / S;
            jp_vf in[4];
            DW_UNROLL
            for (int v = 0; v < V; v++)
                in[v] = jp_v_load(src + v * JP_VLEN);
            DW_UNROLL
            for (int ky = 0; ky < K; ky++) {
                /* Output row r reads input row r*S + ky. */
                if (ir - ky < 0 || (ir - ky) % S != 0 || (ir - ky) / S >= R)
                    continue;
                const int r = (ir - ky) / S;
                const jp_vf wv = jp_v_set1(wc[ky * K + kx]);
                DW_UNROLL
                for (int v = 0; v < V; v++)
                    acc[r][v] = jp_v_fma(wv, in[v], acc[r][v]);
            }
        }
    }
    for (int r = 0; r < R && r < rows_valid; r++) {
        float *dst = y + (oy + r) * p->ow + ox0;
        for (int v = 0; v < V - 1; v++)
            jp_v_store(dst + v * JP_VLEN, jp_v_act(acc[r][v], p->act));
        jp_v_store_n(dst + (V - 1) * JP_VLEN, jp_v_act(acc[r][V - 1], p->act), tail);
    }
}

JP_ALWAYS_INLINE void dw_strip_k(const dw_plan *p, const float *restrict work,
                                 const float *restrict wc, float bias, float *restrict y,
                                 int64_t ox0, const int K, const int S, const int R, const int V,
                                 int tail)
{
    for (int64_t oy = 0; oy < p->oh; oy += R) {
        const int rows_valid = p->oh - oy < R ? (int)(p->oh - oy) : R;
        dw_tile_k(p, work, wc, bias, y, oy, ox0, K, S, R, V, tail, rows_valid);
    }
}

/* Tiles of 8 accumulators (8 rows x 1 vector ... 2 rows x 4 vectors; 7 rows
 * when 7 divides the plane: EfficientNet's 7, 14, 28). */
JP_ALWAYS_INLINE void dw_plane_k(const dw_plan *p, const float *restrict work,
                                 const float *restrict wc, float bias, float *restrict y,
                                 const int K, const int S)
{
    const int64_t nvec = (p->ow + JP_VLEN - 1) / JP_VLEN;
    const int last_lanes = (int)(p->ow - (nvec - 1) * JP_VLEN);
    int64_t vec = 0;
    for (; vec + 4 < nvec; vec += 4)
        dw_strip_k(p, work, wc, bias, y, vec * JP_VLEN, K, S, 2, 4, JP_VLEN);
    const int64_t ox0 = vec * JP_VLEN;
    switch (nvec - vec) { /* 1..4 vectors left, the last one partial */
    case 1:
        if (p->oh % 7 == 0)
            dw_strip_k(p, work, wc, bias, y, ox0, K, S, 7, 1, last_lanes);
        else
            dw_strip_k(p, work, wc, bias, y, ox0, K, S, 8, 1, last_lanes);
        break;
    case 2: dw_strip_k(p, work, wc, bias, y, ox0, K, S, 4, 2, last_lanes); break;
    case 3: dw_strip_k(p, work, wc, bias, y, ox0, K, S, 2, 3, last_lanes); break;
    default: dw_strip_k(p, work, wc, bias, y, ox0, K, S, 2, 4, last_lanes); break;
    }
}

/* Stride 1 needs no phases: the tile reads the input plane x[h, w] itself.
 * Rows above and below the plane are skipped (a zero row adds nothing);
 * columns outside it come from masked loads (zeros, never read) in the
 * strips that touch the left or right edge, from plain loads in the
 * interior.  This removed the plane copy, a third of the time of the 14x14
 * and 7x7 layers.  Same input-row reuse as dw_tile_k. */
JP_ALWAYS_INLINE void dw_tile_s1(const dw_plan *p, const float *restrict x,
                                 const float *restrict wc, float bias, float *restrict y,
                                 int64_t oy, int64_t ox0, const int K, const int R, const int V,
                                 const bool interior, const jp_vmask (*mk)[4], int tail,
                                 int rows_valid)
{
    jp_vf acc[8][4];
    DW_UNROLL
    for (int r = 0; r < R; r++)
        DW_UNROLL
        for (int v = 0; v < V; v++)
            acc[r][v] = jp_v_set1(bias);
    DW_UNROLL
    for (int ir = 0; ir < R - 1 + K; ir++) {
        const int64_t iy = oy + ir - p->ph;
        if (iy < 0 || iy >= p->h)
            continue;
        const float *row = x + iy * p->w;
        DW_UNROLL
        for (int kx = 0; kx < K; kx++) {
            jp_vf in[4];
            DW_UNROLL
            for (int v = 0; v < V; v++) {
                const int64_t col = ox0 + v * JP_VLEN + kx - p->pw;
                in[v] = interior ? jp_v_load(row + col) : jp_v_load_mask(row + col, mk[kx][v]);
            }
            DW_UNROLL
            for (int ky = 0; ky < K; ky++) {
                if (ir - ky < 0 || ir - ky >= R)
                    continue;
                const jp_vf wv = jp_v_set1(wc[ky * K + kx]);
                DW_UNROLL
                for (int v = 0; v < V; v++)
                    acc[ir - ky][v] = jp_v_fma(wv, in[v], acc[ir - ky][v]);
            }
        }
    }
    for (int r = 0; r < R && r < rows_valid; r++) {
        float *dst = y + (oy + r) * p->ow + ox0;
        for (int v = 0; v < V - 1; v++)
            jp_v_store(dst + v * JP_VLEN, jp_v_act(acc[r][v], p->act));
        jp_v_store_n(dst + (V - 1) * JP_VLEN, jp_v_act(acc[r][V - 1], p->act), tail);
    }
}

JP_ALWAYS_INLINE void dw_strip_s1(const dw_plan *p, const float *restrict x,
                                  const float *restrict wc, float bias, float *restrict y,
                                  int64_t ox0, const int K, const int R, const int V, int tail)
{
    /* Interior: every load of the strip, all lanes, inside the row. */
    const bool interior = ox0 - p->pw >= 0 && ox0 + V * JP_VLEN + K - 1 - p->pw <= p->w;
    /* Edge strips: the lanes of each (kx, vector) load that fall in the row. */
    jp_vmask mk[5][4];
    for (int kx = 0; kx < K; kx++)
        for (int v = 0; v < V; v++) {
            const int64_t col = ox0 + v * JP_VLEN + kx - p->pw;
            mk[kx][v] = jp_v_mask_range(-col, p->w - col);
        }
    for (int64_t oy = 0; oy < p->oh; oy += R) {
        const int rows_valid = p->oh - oy < R ? (int)(p->oh - oy) : R;
        if (interior)
            dw_tile_s1(p, x, wc, bias, y, oy, ox0, K, R, V, true, mk, tail, rows_valid);
        else
            dw_tile_s1(p, x, wc, bias, y, oy, ox0, K, R, V, false, mk, tail, rows_valid);
    }
}

JP_ALWAYS_INLINE void dw_plane_s1(const dw_plan *p, const float *restrict x,
                                  const float *restrict wc, float bias, float *restrict y,
                                  const int K)
{
    const int64_t nvec = (p->ow + JP_VLEN - 1) / JP_VLEN;
    const int last_lanes = (int)(p->ow - (nvec - 1) * JP_VLEN);
    int64_t vec = 0;
    for (; vec + 4 < nvec; vec += 4)
        dw_strip_s1(p, x, wc, bias, y, vec * JP_VLEN, K, 2, 4, JP_VLEN);
    const int64_t ox0 = vec * JP_VLEN;
    switch (nvec - vec) { /* 1..4 vectors left, the last one partial */
    case 1:
        if (p->oh % 7 == 0)
            dw_strip_s1(p, x, wc, bias, y, ox0, K, 7, 1, last_lanes);
        else
            dw_strip_s1(p, x, wc, bias, y, ox0, K, 8, 1, last_lanes);
        break;
    case 2:
        if (p->oh % 7 == 0)
            dw_strip_s1(p, x, wc, bias, y, ox0, K, 7, 2, last_lanes);
        else
            dw_strip_s1(p, x, wc, bias, y, ox0, K, 4, 2, last_lanes);
        break;
    case 3: dw_strip_s1(p, x, wc, bias, y, ox0, K, 2, 3, last_lanes); break;
    default: dw_strip_s1(p, x, wc, bias, y, ox0, K, 2, 4, last_lanes); break;
    }
}

#if defined(__AVX512F__)
/* Stride 1 on maps at most 8 wide (EfficientNet's 7x7 stages), two channels
 * per vector: lanes 0-7 hold a row of channel c, lanes 8-15 the same row of
 * channel c+1.  One row to a vector would leave 9 of 16 lanes idle, for the
 * taps and for the activation alike.  Each (input row, kx) pair of row
 * pieces is loaded once (two masked 8-float loads, zero outside the row) and
 * feeds the up-to-K output rows that use it; R output rows per tile. */
JP_ALWAYS_INLINE void dw_pair_tile(const dw_plan *p, const float *restrict in0,
                                   const float *restrict in1, const __m512 *w2, __m512 b2,
                                   float *restrict y0, float *restrict y1, int64_t oy0,
                                   const int K, const int R)
{
    __m512 acc[8];
    for (int r = 0; r < R; r++)
        acc[r] = b2;
    /* Fully unrolled (R and K are constants), so that acc stays in
     * registers: a row outside the plane loads zeros (mask 0) instead of
     * being skipped by a branch, which kept gcc from unrolling. */
#pragma GCC unroll 16
    for (int i = 0; i < R + K - 1; i++) {
        const int64_t iy = oy0 + i - p->ph;
        const __mmask8 row_ok = iy >= 0 && iy < p->h ? 0xFF : 0;
#pragma GCC unroll 8
        for (int kx = 0; kx < K; kx++) {
            const int64_t at = iy * p->w + kx - p->pw;
            const __mmask8 m = (__mmask8)p->masks[kx] & row_ok;
            const __m512 v = _mm512_insertf32x8(
                _mm512_castps256_ps512(_mm256_maskz_loadu_ps(m, in0 + at)),
                _mm256_maskz_loadu_ps(m, in1 + at), 1);
#pragma GCC unroll 8
            for (int ky = 0; ky < K; ky++) {
                const int r = i - ky; /* output row oy0 + r reads input row iy at tap ky */
                if (r >= 0 && r < R)
                    acc[r] = _mm512_fmadd_ps(w2[ky * K + kx], v, acc[r]);
            }
        }
    }
    const __mmask8 out = (__mmask8)((1u << p->ow) - 1u);
    for (int r = 0; r < R; r++) {
        const __m512 a = jp_v_act(acc[r], p->act);
        _mm256_mask_storeu_ps(y0 + (oy0 + r) * p->ow, out, _mm512_castps512_ps256(a));
        _mm256_mask_storeu_ps(y1 + (oy0 + r) * p->ow, out, _mm512_extractf32x8_ps(a, 1));
    }
}

/* Planes c and c+1 (in0/in1, weights wc0/wc1, into y0/y1): tiles of 8 rows,
 * then one of the rows left. */
JP_ALWAYS_INLINE void dw_pair_s1(const dw_plan *p, const float *restrict in0,
                                 const float *restrict in1, const float *restrict wc0,
                                 const float *restrict wc1, float b0, float b1,
                                 float *restrict y0, float *restrict y1, const int K)
{
    __m512 w2[25];
    for (int t = 0; t < K * K; t++)
        w2[t] = _mm512_insertf32x8(_mm512_set1_ps(wc0[t]), _mm256_set1_ps(wc1[t]), 1);
    const __m512 b2 = _mm512_insertf32x8(_mm512_set1_ps(b0), _mm256_set1_ps(b1), 1);
    int64_t oy = 0;
    for (; oy + 8 <= p->oh; oy += 8)
        dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 8);
    switch (p->oh - oy) { /* 0..7 rows left */
    case 1: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 1); break;
    case 2: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 2); break;
    case 3: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 3); break;
    case 4: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 4); break;
    case 5: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 5); break;
    case 6: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 6); break;
    case 7: dw_pair_tile(p, in0, in1, w2, b2, y0, y1, oy, K, 7); break;
    default: break;
    }
}

static void dw_pair(const dw_plan *p, const float *in0, const float *in1, const float *wc0,
                    const float *wc1, float b0, float b1, float *y0, float *y1)
{
    if (p->kh == 3)
        dw_pair_s1(p, in0, in1, wc0, wc1, b0, b1, y0, y1, 3);
    else
        dw_pair_s1(p, in0, in1, wc0, wc1, b0, b1, y0, y1, 5);
}
#endif

/* Computes one output plane y from `in`: the phases in the workspace, or the
 * input plane itself for the stride-1 paths (dw_plan.direct). */
#if defined(__AVX512F__)
/* Stride 2 without phases (AVX-512): output lane l of vector v, tap kx,
 * reads x[row][2*(ox0 + 16v + l) + kx - pw]: the even (kx even) or odd (kx
 * odd) elements of the 32 floats from 2*(ox0 + 16v) - pw + (kx & ~1), two
 * loads and one permute per (input row, tap pair) shared by taps kx and
 * kx+1.  The phase copy it replaces was half the time of the stride-2
 * layers (EfficientNet's 112 -> 56 one: 96 planes of 112x112). */
JP_ALWAYS_INLINE void dw_tile_s2(const dw_plan *p, const float *restrict x,
                                 const float *restrict wc, float bias, float *restrict y,
                                 int64_t oy, int64_t ox0, const int K, const int R, const int V,
                                 const bool interior, const jp_vmask (*mk)[4][2], int tail,
                                 int rows_valid)
{
    const __m512i idx_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                               28, 30);
    const __m512i idx_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                              29, 31);
    jp_vf acc[8][4];
    DW_UNROLL
    for (int r = 0; r < R; r++)
        DW_UNROLL
        for (int v = 0; v < V; v++)
            acc[r][v] = jp_v_set1(bias);
    DW_UNROLL
    for (int ir = 0; ir < 2 * (R - 1) + K; ir++) {
        const int64_t iy = 2 * oy + ir - p->ph;
        if (iy < 0 || iy >= p->h)
            continue;
        const float *row = x + iy * p->w;
        DW_UNROLL
        for (int e = 0; e < K; e += 2) { /* taps e and e+1 */
            jp_vf in_even[4], in_odd[4];
            DW_UNROLL
            for (int v = 0; v < V; v++) {
                const int64_t col = 2 * (ox0 + v * JP_VLEN) - p->pw + e;
                __m512 lo, hi;
                if (interior) {
                    lo = _mm512_loadu_ps(row + col);
                    hi = _mm512_loadu_ps(row + col + 16);
                } else {
                    lo = _mm512_maskz_loadu_ps(mk[e / 2][v][0], row + col);
                    hi = _mm512_maskz_loadu_ps(mk[e / 2][v][1], row + col + 16);
                }
                in_even[v] = _mm512_permutex2var_ps(lo, idx_even, hi);
                if (e + 1 < K)
                    in_odd[v] = _mm512_permutex2var_ps(lo, idx_odd, hi);
            }
            DW_UNROLL
            for (int ky = 0; ky < K; ky++) {
                if (ir - ky < 0 || (ir - ky) % 2 != 0 || (ir - ky) / 2 >= R)
                    continue;
                const int r = (ir - ky) / 2;
                const jp_vf w_even = jp_v_set1(wc[ky * K + e]);
                DW_UNROLL
                for (int v = 0; v < V; v++)
                    acc[r][v] = jp_v_fma(w_even, in_even[v], acc[r][v]);
                if (e + 1 < K) {
                    const jp_vf w_odd = jp_v_set1(wc[ky * K + e + 1]);
                    DW_UNROLL
                    for (int v = 0; v < V; v++)
                        acc[r][v] = jp_v_fma(w_odd, in_odd[v], acc[r][v]);
                }
            }
        }
    }
    for (int r = 0; r < R && r < rows_valid; r++) {
        float *dst = y + (oy + r) * p->ow + ox0;
        for (int v = 0; v < V - 1; v++)
            jp_v_store(dst + v * JP_VLEN, jp_v_act(acc[r][v], p->act));
        jp_v_store_n(dst + (V - 1) * JP_VLEN, jp_v_act(acc[r][V - 1], p->act), tail);
    }
}

JP_ALWAYS_INLINE void dw_strip_s2(const dw_plan *p, const float *restrict x,
                                  const float *restrict wc, float bias, float *restrict y,
                                  int64_t ox0, const int K, const int R, const int V, int tail)
{
    const int e_max = (K - 1) & ~1;
    const int64_t first = 2 * ox0 - p->pw;
    const int64_t last = 2 * (ox0 + (V - 1) * JP_VLEN) - p->pw + e_max + 31;
    const bool interior = first >= 0 && last < p->w;
    jp_vmask mk[3][4][2];
    for (int e = 0; e < K; e += 2)
        for (int v = 0; v < V; v++) {
            const int64_t col = 2 * (ox0 + v * JP_VLEN) - p->pw + e;
            mk[e / 2][v][0] = jp_v_mask_range(-col, p->w - col);
            mk[e / 2][v][1] = jp_v_mask_range(-col - 16, p->w - col - 16);
        }
    for (int64_t oy = 0; oy < p->oh; oy += R) {
        const int rows_valid = p->oh - oy < R ? (int)(p->oh - oy) : R;
        if (interior)
            dw_tile_s2(p, x, wc, bias, y, oy, ox0, K, R, V, true, mk, tail, rows_valid);
        else
            dw_tile_s2(p, x, wc, bias, y, oy, ox0, K, R, V, false, mk, tail, rows_valid);
    }
}

JP_ALWAYS_INLINE void dw_plane_s2(const dw_plan *p, const float *restrict x,
                                  const float *restrict wc, float bias, float *restrict y,
                                  const int K)
{
    const int64_t nvec = (p->ow + JP_VLEN - 1) / JP_VLEN;
    const int last_lanes = (int)(p->ow - (nvec - 1) * JP_VLEN);
    int64_t vec = 0;
    for (; vec + 4 < nvec; vec += 4)
        dw_strip_s2(p, x, wc, bias, y, vec * JP_VLEN, K, 2, 4, JP_VLEN);
    const int64_t ox0 = vec * JP_VLEN;
    switch (nvec - vec) { /* 1..4 vectors left, the last one partial */
    case 1:
        if (p->oh % 7 == 0)
            dw_strip_s2(p, x, wc, bias, y, ox0, K, 7, 1, last_lanes);
        else
            dw_strip_s2(p, x, wc, bias, y, ox0, K, 8, 1, last_lanes);
        break;
    case 2: dw_strip_s2(p, x, wc, bias, y, ox0, K, 4, 2, last_lanes); break;
    case 3: dw_strip_s2(p, x, wc, bias, y, ox0, K, 2, 3, last_lanes); break;
    default: dw_strip_s2(p, x, wc, bias, y, ox0, K, 2, 4, last_lanes); break;
    }
}
#endif

typedef void (*dw_plane_fn)(const dw_plan *p, const float *in, const float *wc, float bias,
                            float *y);

/* Stride 1: `in` is the input plane x[h, w] itself (no phases). */
static void dw_plane_k3s1(const dw_plan *p, const float *in, const float *wc, float bias,
                          float *y)
{
    dw_plane_s1(p, in, wc, bias, y, 3);
}

static void dw_plane_k5s1(const dw_plan *p, const float *in, const float *wc, float bias,
                          float *y)
{
    dw_plane_s1(p, in, wc, bias, y, 5);
}

#if defined(__AVX512F__)
static void dw_plane_k3s2_direct(const dw_plan *p, const float *in, const float *wc, float bias,
                                 float *y)
{
    dw_plane_s2(p, in, wc, bias, y, 3);
}

static void dw_plane_k5s2_direct(const dw_plan *p, const float *in, const float *wc, float bias,
                                 float *y)
{
    dw_plane_s2(p, in, wc, bias, y, 5);
}
#endif

#if !defined(__AVX512F__)
/* Stride 2 elsewhere: from the phases. */
static void dw_plane_k3s2(const dw_plan *p, const float *work, const float *wc, float bias,
                          float *y)
{
    dw_plane_k(p, work, wc, bias, y, 3, 2);
}

static void dw_plane_k5s2(const dw_plan *p, const float *work, const float *wc, float bias,
                          float *y)
{
    dw_plane_k(p, work, wc, bias, y, 5, 2);
}
#endif

/* The plane function for p: a fast path when one fits, else the general one;
 * *direct tells whether it reads the input plane instead of the phases. */
static dw_plane_fn dw_choose(const dw_plan *p, bool *direct)
{
    *direct = false;
    if (p->kh != p->kw || p->sh != p->sw || p->dh != 1 || p->dw != 1 || p->sh > 2 ||
        (p->kh != 3 && p->kh != 5))
        return dw_plane_generic;
    *direct = true;
    if (p->sh == 1)
        return p->kh == 3 ? dw_plane_k3s1 : dw_plane_k5s1;
#if defined(__AVX512F__)
    return p->kh == 3 ? dw_plane_k3s2_direct : dw_plane_k5s2_direct;
#else
    *direct = false;
    return p->kh == 3 ? dw_plane_k3s2 : dw_plane_k5s2;
#endif
}

static jp_status dw_run(void *state, const jp_step *step, jp_error *err)
{
    const dw_plan *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/depthwise run before prepare",
                            step->op->name);
    const float *x = step->in[0].data; /* [n, c, h, w]   */
    float *y = step->out.data;         /* [n, c, oh, ow] */
    const int64_t planes = p->n * p->c;
    const bool direct = p->direct;
    const dw_plane_fn plane_fn = p->plane_fn;
    int nt = omp_get_max_threads();
    if (nt > p->n_threads)
        nt = p->n_threads;
    if (nt < 1)
        nt = 1;
#if defined(__AVX512F__)
    if (p->pairs) {
        const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, taps = p->kh * p->kw;
        const int64_t per_image = (p->c + 1) / 2;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t t = 0; t < p->n * per_image; t++) {
            const int64_t c0 = 2 * (t % per_image), pl = t / per_image * p->c + c0;
            if (c0 + 1 < p->c)
                dw_pair(p, x + pl * hw, x + (pl + 1) * hw, p->wt + c0 * taps,
                        p->wt + (c0 + 1) * taps, p->b[c0], p->b[c0 + 1], y + pl * ohw,
                        y + (pl + 1) * ohw);
            else /* an odd channel count's last channel */
                plane_fn(p, x + pl * hw, p->wt + c0 * taps, p->b[c0], y + pl * ohw);
        }
        return JP_OK;
    }
#endif
#pragma omp parallel num_threads(nt)
    {
        float *work = direct ? NULL : p->work + (size_t)omp_get_thread_num() * p->plane;
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            const int64_t ch = pl % p->c;
            const float *in = x + pl * p->h * p->w;
            if (!direct)
                dw_fill_phases(p, in, work);
            plane_fn(p, direct ? in : work, p->wt + ch * p->kh * p->kw, p->b[ch],
                             y + pl * p->oh * p->ow);
        }
    }
    return JP_OK;
}

static void dw_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const dw_plan *p = state;
    *prepared_bytes = (size_t)p->c * (size_t)(p->taps + 1) * sizeof(float);
    *workspace_bytes = p->direct ? 0 : (size_t)p->plane * (size_t)p->n_threads * sizeof(float);
}

const jp_kernel jp_cpu_conv2d_depthwise = {
    .name = "cpu/conv2d/depthwise",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 30,
    .supports = dw_supports,
    .prepare = dw_prepare,
    .run = dw_run,
    .release = dw_release,
    .memory = dw_memory,
    .params_copied = true,
};
