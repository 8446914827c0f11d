/*
 * conv2d_packed_gemm.c: cpu/conv2d/packed_gemm, any convolution as a GEMM
 * with our own register-tiled microkernel instead of OpenBLAS:
 *
 *     Y[m_g, n_sp] = W'[m_g, k_g] * col[k_g, n_sp]      per image and group
 *
 * (m_g = c_out/groups, k_g = c_in/groups*kh*kw, n_sp = oh*ow).  What it does
 * that im2col + cblas_sgemm cannot:
 *   - W' (batch norm folded in) is packed once, in prepare, into tiles of
 *     JP_TILE_MR rows (pg_a_tile); OpenBLAS repacks its A operand on every call,
 *     which is most of the time of a call with few columns (ResNet's 7x7
 *     layers: 49 columns, 2.4M weights);
 *   - im2col writes the input straight into the microkernel's panel layout
 *     [k][JP_TILE_NR] (no second packing pass);
 *   - the bias and the activation are applied to the register tile before it
 *     is stored.
 * Blocking: per task (image, group, column block, row block), K is cut into
 * blocks of at most PG_KC so that one packed B panel (PG_KC x JP_TILE_NR floats,
 * 36 KiB) stays in L1 while the rows of W' stream from L2; the C tile is
 * reloaded once per K block.
 *
 * The last 1..4 columns of a map (49 = 48 + 1 at 7x7) go through a narrow
 * tile that vectorises over rows instead (jp_tile_narrow).
 *
 * Threads, three ways (chosen in prepare):
 *   - columns: (image, group, column block) tasks split over the OpenMP team
 *     in contiguous runs, the blocks equal to a vector; each thread packs
 *     its own B (maps of 28x28 and more);
 *   - K (split_k): too few columns (14x14, 7x7): each thread takes an equal
 *     share of the K blocks, then the team adds the partial sums;
 *   - rows (shared_b): too few columns and K too short to split: B packed
 *     once by the team, each thread a block of rows.
 *
 * Portable: written against cpu_simd.h (AVX-512: 8x48 tile, AVX2: 6x16,
 * scalar: 4x3), so it is correct everywhere and fast with -march=native.
 */
#include "gemm_tile.h"

#include <omp.h>
#include <stdlib.h>

/* K block: one packed B panel, PG_KC * JP_TILE_NR * 4 bytes = 36 KiB at 192 x 48,
 * stays in L1d (48 KiB on the Xeons we target) while A streams from L2.
 * Measured with tests/bench_cpu_kernels.c over ResNet-50's layers at one
 * thread: KC 128..256 with MC 256 within noise of each other, 192 best on
 * average; 384 and MC 128/512 a few percent slower. */
#ifndef PG_KC
#define PG_KC 192
#endif
/* Rows of W' per pass over a B block: PG_MC * PG_KC * 4 = 192 KiB, so that
 * the A slice and the B block (<= PG_KC * col_block) share L2. */
#ifndef PG_MC
#define PG_MC 256
#endif
/* The row step: PG_MC rounded down to whole tiles (AVX2's are 6 rows), so
 * that every pass starts on a tile of the packed W'. */
#define PG_MC_ROWS (PG_MC / JP_TILE_MR * JP_TILE_MR)
/* Columns per task: about 512 columns of B (384 KiB at PG_KC = 192), fewer
 * when the threads need more tasks. */
#ifndef PG_NC
#define PG_NC 512
#endif
/* 0 disables the split-K mode (for comparisons). */
#ifndef PG_SPLIT_K
#define PG_SPLIT_K 1
#endif
/* Narrowest column block worth splitting columns for (else split K or
 * rows): 196 columns (14x14) split K, 784 (28x28) split columns. */
#ifndef PG_MIN_SPLIT_COLS
#define PG_MIN_SPLIT_COLS 200
#endif
/* Shortest K range per thread worth splitting K for. */
#define PG_MIN_KC 64
/* A run of output columns inside one output row and one B panel: what
 * packing copies in one piece for every row k of the im2col matrix.  The
 * runs of a column block do not depend on k, so each task computes them once
 * (the per-k bookkeeping, divisions included, used to cost more than the
 * copies: ~40 cycles per run). */
typedef struct pg_seg {
    int32_t panel, col;  /* destination: panel index, column inside it        */
    int32_t oy, ox;      /* first output position of the run                  */
    int32_t len;         /* columns                                           */
} pg_seg;

/* Where row k of the im2col matrix reads: input plane c = k / (kh*kw) at
 * offset `plane`, row oy*sh + iy, column ox*sw + ix. */
typedef struct pg_ktap {
    int64_t plane;       /* c * h * w                                          */
    int32_t iy, ix;      /* ky*dh - ph, kx*dw - pw                            */
} pg_ktap;

typedef struct pg_plan {
    jp_cpu_conv_shape s; /* shapes and attributes                                  */
    int64_t m_g, k_g, n_sp;
    int64_t m_panels;    /* ceil(m_g / JP_TILE_MR)                                  */
    jp_activation act;
    float *a;            /* [groups][K block][m_panels][kc][JP_TILE_MR] (pg_a_tile),
                            zero rows past m_g                                 */
    float *bias;         /* [c_out]                                            */
    int64_t kc;          /* K block (last one shorter)                         */
    int64_t n_col_blocks; /* column block i: [pg_col_start(i), pg_col_start(i+1)) */
    int64_t col_block;    /* the widest column block                           */
    int64_t row_block, n_row_blocks; /* row_block a multiple of JP_TILE_MR          */
    bool contiguous;     /* 1x1, stride 1, no padding: B rows are input rows   */
    int n_threads;
    bool split_k;        /* few columns: K split over threads, partial sums    */
    float *partial;      /* split_k: [n_threads-1][m_g][col_block]            */
    bool shared_b;       /* rows split over threads: B packed once, shared     */
    int64_t b_floats;    /* per thread: ceil(col_block / JP_TILE_NR) * JP_TILE_NR * kc;
                            shared: ceil(col_block / JP_TILE_NR) * JP_TILE_NR * k_g     */
    float *b;            /* [n_threads][b_floats], or [b_floats] when shared  */
    int64_t max_runs;    /* per thread                                         */
    pg_seg *runs;        /* [n_threads][max_runs]                              */
    void *own_scratch;   /* partial, b and runs (pg_scratch_bytes), until the
                            executor binds its shared workspace: then NULL */
    pg_ktap *ktab;       /* [k_g]                                              */
} pg_plan;

/* The per-run scratch, partial then b then runs, each on 64 bytes: their
 * offsets in *b_at and *runs_at; returns the whole size. */
static size_t pg_scratch_bytes(const pg_plan *p, size_t *b_at, size_t *runs_at)
{
    const size_t nt = (size_t)p->n_threads;
    const size_t partial = p->split_k ? (nt - 1) * (size_t)p->m_g * (size_t)p->col_block * sizeof(float) : 0;
    const size_t b = (size_t)p->b_floats * (p->shared_b ? 1 : nt) * sizeof(float);
    *b_at = ((partial + 63) & ~(size_t)63);
    *runs_at = *b_at + ((b + 63) & ~(size_t)63);
    return *runs_at + (size_t)p->max_runs * nt * sizeof(pg_seg);
}

/* Points partial, b and runs into scratch (64-byte aligned). */
static void pg_use_scratch(pg_plan *p, void *scratch)
{
    size_t b_at, runs_at;
    pg_scratch_bytes(p, &b_at, &runs_at);
    p->partial = p->split_k ? scratch : NULL;
    p->b = (float *)((char *)scratch + b_at);
    p->runs = (pg_seg *)((char *)scratch + runs_at);
}

/* Any convolution, and also one with a fused residual add (ResNet's last
 * convolution of a block: the add and its ReLU in the epilogue). */
static bool pg_supports(const jp_step *step)
{
    return jp_cpu_conv_step_ok(step) || jp_cpu_conv_residual_step_ok(step);
}

/* The packed rows m .. m+JP_TILE_MR-1 (m a multiple of JP_TILE_MR) of W' for the K
 * block starting at k0 (kc long) of one group's a_g.  Layout per group:
 * [K block][row panel][kc][JP_TILE_MR], so that the slice a K block needs is one
 * contiguous run the hardware prefetchers follow (row panels [k_g][JP_TILE_MR]
 * put consecutive tiles k_g*JP_TILE_MR floats apart; 3-5% slower at 14x14). */
static inline float *pg_a_tile(const pg_plan *p, const float *a_g, int64_t k0, int64_t kc,
                               int64_t m)
{
    return (float *)a_g + k0 * p->m_panels * JP_TILE_MR + (m / JP_TILE_MR) * kc * JP_TILE_MR;
}

/* First column of column block i (i <= n_col_blocks): the columns split in
 * proportion, cut at multiples of JP_VLEN, so that the blocks differ by at
 * most one vector (rounding every block up to a vector left the last one
 * short: 112 + 84 columns for a 14x14 map on two threads). */
static int64_t pg_col_start(const pg_plan *p, int64_t i)
{
    if (i >= p->n_col_blocks)
        return p->n_sp;
    return i * p->n_sp / p->n_col_blocks / JP_VLEN * JP_VLEN;
}

static void pg_release(void *state)
{
    pg_plan *p = state;
    if (!p)
        return;
    jp_cpu_free(p->a);
    jp_cpu_free(p->bias);
    jp_cpu_free(p->own_scratch);
    jp_cpu_free(p->ktab);
    free(p);
}

static jp_status pg_prepare(const jp_step *step, void **state, jp_error *err)
{
    const jp_conv2d_attrs *at = &step->op->attrs.conv2d;
    *state = NULL;
    pg_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->s = jp_cpu_conv_shape_of(step);
    p->m_g = at->c_out / at->groups;
    p->k_g = (int64_t)(at->c_in / at->groups) * at->kernel_h * at->kernel_w;
    p->n_sp = p->s.oh * p->s.ow;
    p->m_panels = jp_cpu_div_up(p->m_g, JP_TILE_MR);
    p->act = step->act;
    p->contiguous = p->s.kh == 1 && p->s.kw == 1 && p->s.sh == 1 && p->s.sw == 1 && p->s.ph == 0 &&
                    p->s.pw == 0;
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;

    /* Work split.  Columns first: about PG_NC per block, as many blocks per
     * thread, when every block keeps PG_MIN_SPLIT_COLS columns. */
    const int64_t outer = p->s.n * p->s.groups;
    const int nt = p->n_threads;
    int64_t ncb = jp_cpu_div_up(p->n_sp, PG_NC);
    if (outer * ncb % nt != 0) {
        int64_t want = jp_cpu_div_up(jp_cpu_round_up(outer * ncb, nt), outer);
        if (p->n_sp / want >= PG_MIN_SPLIT_COLS)
            ncb = want;
    }
    if (ncb > jp_cpu_div_up(p->n_sp, JP_VLEN))
        ncb = jp_cpu_div_up(p->n_sp, JP_VLEN);
    /* An EfficientNet block at 28x28: the expansion (M >= 4K) splits rows
     * and the projection (K >= 4M) splits K, each thread the same channels
     * the depthwise convolution, pooling and scaling between them give it.
     * Split by columns, half of every expanded map was written by the other
     * core: a thread's depthwise read it from there (in slow VM phases b7's
     * stage 3 took 0.8 ms less so, end to end b0, b2, b4 and b7 -1 to -3 %;
     * one pair in a fast phase +0.4 %; at 56x56 the expansion lost what the
     * depthwise gained).  ResNet's 1x1 layers at 28x28 fit the rule too:
     * resnet50 within noise.  Batch 1 only: measured so. */
    const bool chan = p->contiguous && p->s.groups == 1 && nt > 1 && p->s.n == 1 && p->n_sp >= 784 &&
                      p->n_sp < 3136 && (p->m_g >= 4 * p->k_g || p->k_g >= 4 * p->m_g);
    if (chan)
        ncb = 1;
    p->n_col_blocks = ncb;
    p->col_block = 0;
    for (int64_t i = 0; i < ncb; i++) {
        const int64_t width = pg_col_start(p, i + 1) - pg_col_start(p, i);
        if (width > p->col_block)
            p->col_block = width;
    }
    /* Too few columns to feed every thread (ResNet's 14x14 and 7x7 maps):
     * split K when it is long enough: each thread packs only its K range
     * and streams only its slice of W', partial sums added after a barrier
     * (measured at two threads on ResNet-50's 14x14 layers: +20% over
     * splitting their 196 columns in two, +5..20% over splitting rows on
     * the 7x7 ones).  Else split rows, B packed once by the team and shared
     * (packing it in every thread cost 20% of those layers). */
    int64_t nkb = jp_cpu_div_up(p->k_g, PG_KC); /* K blocks */
    p->split_k = PG_SPLIT_K && nt > 1 && outer * ncb < nt && p->k_g >= (int64_t)nt * PG_MIN_KC && p->k_g >= p->m_g;
    if (chan)
        p->split_k = p->k_g >= 4 * p->m_g;
    if (p->split_k)
        nkb = jp_cpu_round_up(nkb, nt); /* the same number of K blocks per thread */
    /* K blocks of equal size (the last one shorter). */
    p->kc = jp_cpu_div_up(p->k_g, nkb);
    int64_t nrb = 1;
    if (!p->split_k && outer * ncb < nt)
        nrb = jp_cpu_div_up(nt, outer * ncb);
    p->row_block = jp_cpu_round_up(jp_cpu_div_up(p->m_g, nrb), JP_TILE_MR);
    if (p->row_block > p->m_panels * JP_TILE_MR)
        p->row_block = p->m_panels * JP_TILE_MR;
    p->n_row_blocks = jp_cpu_div_up(p->m_g, p->row_block);
    p->shared_b = p->n_row_blocks > 1;

    /* Fold, then pack W' (pg_a_tile's layout). */
    float *wf = NULL;
    jp_status st = jp_cpu_conv_fold(step, &wf, &p->bias, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }
    const size_t a_floats = (size_t)p->s.groups * (size_t)p->m_panels * JP_TILE_MR * (size_t)p->k_g;
    p->a = jp_cpu_alloc(a_floats * sizeof(float));
    if (!p->a) {
        jp_cpu_free(wf);
        pg_release(p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes of packed weights",
                            step->op->name, a_floats * sizeof(float));
    }
    for (int64_t g = 0; g < p->s.groups; g++)
        for (int64_t k0 = 0; k0 < p->k_g; k0 += p->kc) {
            const int64_t kc = p->k_g - k0 < p->kc ? p->k_g - k0 : p->kc;
            for (int64_t mp = 0; mp < p->m_panels; mp++) {
                float *tile = pg_a_tile(p, p->a + g * p->m_panels * JP_TILE_MR * p->k_g, k0, kc,
                                        mp * JP_TILE_MR);
                for (int64_t k = 0; k < kc; k++)
                    for (int r = 0; r < JP_TILE_MR; r++) {
                        const int64_t m = mp * JP_TILE_MR + r;
                        tile[k * JP_TILE_MR + r] =
                            m < p->m_g ? wf[(g * p->m_g + m) * p->k_g + k0 + k] : 0.0f;
                    }
            }
        }
    jp_cpu_free(wf);

    /* Workspaces. */
    p->b_floats = jp_cpu_round_up(p->col_block, JP_TILE_NR) * (p->shared_b ? p->k_g : p->kc);
    p->max_runs = p->col_block / p->s.ow + p->col_block / JP_TILE_NR + 2;
    size_t b_at, runs_at;
    p->own_scratch = jp_cpu_alloc(pg_scratch_bytes(p, &b_at, &runs_at));
    if (p->own_scratch)
        pg_use_scratch(p, p->own_scratch);
    p->ktab = jp_cpu_alloc((size_t)p->k_g * sizeof(pg_ktap));
    if (p->ktab)
        for (int64_t k = 0; k < p->k_g; k++) {
            const int64_t taps = (int64_t)p->s.kh * p->s.kw;
            const int64_t ky = (k % taps) / p->s.kw, kx = k % p->s.kw;
            p->ktab[k] = (pg_ktap){(k / taps) * p->s.h * p->s.w, (int32_t)(ky * p->s.dh - p->s.ph),
                                   (int32_t)(kx * p->s.dw - p->s.pw)};
        }
    if (!p->own_scratch || !p->ktab) {
        pg_release(p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the packing workspace",
                            step->op->name);
    }
    *state = p;
    return JP_OK;
}

/* Splits columns [n0, n0+nb) into runs; returns their number (at most
 * nb / ow + nb / JP_TILE_NR + 2, the bound prepare sizes the array with). */
static int64_t pg_make_runs(const pg_plan *p, int64_t n0, int64_t nb, pg_seg *runs)
{
    int64_t count = 0, pos = n0, oy = n0 / p->s.ow, ox = n0 % p->s.ow;
    while (pos < n0 + nb) {
        const int64_t rel = pos - n0;
        int64_t len = JP_TILE_NR - rel % JP_TILE_NR;
        if (len > n0 + nb - pos)
            len = n0 + nb - pos;
        if (!p->contiguous && len > p->s.ow - ox)
            len = p->s.ow - ox;
        runs[count++] = (pg_seg){(int32_t)(rel / JP_TILE_NR), (int32_t)(rel % JP_TILE_NR), (int32_t)oy,
                                 (int32_t)ox, (int32_t)len};
        pos += len;
        ox += len;
        if (ox >= p->s.ow) {
            oy += ox / p->s.ow;
            ox %= p->s.ow;
        }
    }
    return count;
}

/* dst[j] = row[ix0 + j*stride] for j < len, 0 where the index leaves
 * [0, w).  Stride 1 (and 2 on AVX-512) by vectors; inside the row (most
 * runs) with plain loads, at its edges with masked loads that zero the
 * padding in the same instruction that copies the data. */
JP_ALWAYS_INLINE void pg_copy_run(float *restrict dst, const float *restrict row, int64_t w,
                                  int64_t ix0, int stride, int len)
{
#if JP_VLEN > 1
    const bool inside = ix0 >= 0 && ix0 + (int64_t)(len - 1) * stride < w;
    if (stride == 1) {
        int j = 0;
        if (inside) {
            for (; j + JP_VLEN <= len; j += JP_VLEN)
                jp_v_store(dst + j, jp_v_load(row + ix0 + j));
            if (j < len)
                jp_v_store_n(dst + j, jp_v_load_n(row + ix0 + j, len - j), len - j);
            return;
        }
        for (; j < len; j += JP_VLEN) {
            const int64_t i = ix0 + j;
            const jp_vf v = jp_v_load_range(row + i, -i, w - i);
            if (len - j >= JP_VLEN)
                jp_v_store(dst + j, v);
            else
                jp_v_store_n(dst + j, v, len - j);
        }
        return;
    }
#endif
#if defined(__AVX512F__)
    if (stride == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                               28, 30);
        for (int j = 0; j < len; j += 16) {
            const int cnt = len - j < 16 ? len - j : 16;
            const int64_t i = ix0 + 2 * j; /* reads i .. i + 2*cnt - 2 */
            __m512 a, b;
            if (inside) {
                a = jp_v_load_n(row + i, 2 * cnt - 1 < 16 ? 2 * cnt - 1 : 16);
                b = 2 * cnt - 1 > 16 ? jp_v_load_n(row + i + 16, 2 * cnt - 1 - 16) : a;
            } else {
                const int64_t hi = w - i < 2 * cnt - 1 ? w - i : 2 * cnt - 1;
                a = jp_v_load_range(row + i, -i, hi);
                b = jp_v_load_range(row + i + 16, -i - 16, hi - 16);
            }
            jp_v_store_n(dst + j, _mm512_permutex2var_ps(a, even, b), cnt);
        }
        return;
    }
#endif
    for (int j = 0; j < len; j++) {
        const int64_t i = ix0 + (int64_t)j * stride;
        dst[j] = i >= 0 && i < w ? row[i] : 0.0f;
    }
}

/* Packs rows k0 .. k0+kc-1 of the im2col matrix of x_g[c_in/groups, h, w],
 * columns given by runs (of a block of nb columns), into b: row k0+kk of
 * panel j at b + (j*ld_panel + kk)*JP_TILE_NR (ld_panel: rows per panel in the
 * layout, kc for a private K block, k_g for the shared whole-K layout with b
 * pointing at row k0); the columns past nb in the last panel that the
 * microkernel loads are zero (a 1-column panel, a squeeze-excitation
 * convolution's, used to get 47 zero columns per row: 250 KB for K = 1344,
 * most of the call).
 * Runs outside, rows k inside, with the per-k offsets from p->ktab: the
 * other way round, the per-run bookkeeping was paid kc times over (23% of
 * a 64-channel 3x3 layer went to packing). */
/* gcc turns the vector copies of pg_copy_run into a memcpy call per run and
 * row (192 bytes each): 10% of a 1x1 layer went to libc's memmove. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void pg_pack_b(const pg_plan *p, const float *restrict x_g, const pg_seg *runs,
                      int64_t n_runs, int64_t nb, int64_t k0, int64_t kc, float *restrict b,
                      int64_t ld_panel)
{
    const int64_t panels = jp_cpu_div_up(nb, JP_TILE_NR);
    const int64_t last_cols = nb - (panels - 1) * JP_TILE_NR;
    const int64_t tail = jp_tile_loaded_cols(last_cols) - last_cols; /* zeros after them */
    const pg_ktap *kt = p->ktab + k0;
    for (int64_t r = 0; r < n_runs; r++) {
        const pg_seg *run = &runs[r];
        float *dst = b + run->panel * ld_panel * JP_TILE_NR + run->col;
        if (p->contiguous) {
            const float *src = x_g + run->oy * p->s.ow + run->ox;
            for (int64_t kk = 0; kk < kc; kk++)
                pg_copy_run(dst + kk * JP_TILE_NR, src + kt[kk].plane, p->s.w * p->s.h, 0, 1, run->len);
            continue;
        }
        const int64_t iy0 = run->oy * p->s.sh, ix0 = run->ox * p->s.sw;
        for (int64_t kk = 0; kk < kc; kk++) {
            const int64_t iy = iy0 + kt[kk].iy;
            if (iy < 0 || iy >= p->s.h)
                memset(dst + kk * JP_TILE_NR, 0, (size_t)run->len * sizeof(float));
            else
                pg_copy_run(dst + kk * JP_TILE_NR, x_g + kt[kk].plane + iy * p->s.w, p->s.w,
                            ix0 + kt[kk].ix, p->s.sw, run->len);
        }
    }
    if (tail > 0)
        for (int64_t kk = 0; kk < kc; kk++)
            memset(b + ((panels - 1) * ld_panel + kk) * JP_TILE_NR + last_cols, 0,
                   (size_t)tail * sizeof(float));
}

/* One panel of B against rows [m0, m1) of W' (m0 a multiple of JP_TILE_MR), into
 * c (row 0 of the group, at the panel's first column; row stride ldc).
 * first: start from bias (zeros when NULL); last: add the residual res (NULL:
 * none; at c's position, row stride ldc) and apply the activation. */
static void pg_panel(const pg_plan *p, const float *restrict a_g, int64_t k0, int64_t kc,
                     const float *restrict b_panel, int64_t ldb, float *restrict c, int64_t ldc,
                     const float *restrict res, int cols,
                     int64_t m0, int64_t m1, const float *restrict bias_g, bool first, bool last)
{
    for (int64_t m = m0; m < m1; m += JP_TILE_MR) {
        const float *a = pg_a_tile(p, a_g, k0, kc, m);
        float *cm = c + m * ldc;
        const float *rm = res ? res + m * ldc : NULL;
        const float *bias = bias_g ? bias_g + m : NULL;
        const int rows = m1 - m < JP_TILE_MR ? (int)(m1 - m) : JP_TILE_MR;
        jp_tile_cols(kc, a, b_panel, ldb, cm, ldc, rm, bias, first, last, p->act, rows, cols);
    }
}

/* Panels of a block of nb columns that the microkernel reads from the input
 * itself instead of a packed copy: the full panels of a 1x1 stride-1
 * convolution, whose B rows are input rows (B[k][n] = x_g[k*h*w + n]), and
 * its last panel too when the narrow tile takes it (it reads single floats).
 * Packing them is a copy the microkernel can do without: measured at one
 * thread on ResNet-50's 1x1 256->64 at 56x56, 102 GFLOP/s packed against
 * 110 read in place (a GEMM harness with this microkernel).  For a map of
 * one pixel (squeeze-excitation) that leaves nothing to pack: no packing
 * pass and no barrier after it. */
static int64_t pg_in_place_panels(const pg_plan *p, int64_t nb)
{
    if (!p->contiguous)
        return 0;
    const int64_t full = nb / JP_TILE_NR, rest = nb - full * JP_TILE_NR;
    return rest > 0 && jp_tile_loaded_cols(rest) == rest ? full + 1 : full;
}

/* Packs the panels of B from panel `first` on (rows k0 .. k0+kc-1; layout
 * as pg_pack_b): runs are ordered by panel, so it is a suffix of them. */
static void pg_pack_b_from(const pg_plan *p, const float *restrict x_g, const pg_seg *runs,
                           int64_t n_runs, int64_t nb, int64_t first, int64_t k0, int64_t kc,
                           float *restrict b, int64_t ld_panel)
{
    int64_t r = 0;
    while (r < n_runs && runs[r].panel < first)
        r++;
    if (r < n_runs)
        pg_pack_b(p, x_g, runs + r, n_runs - r, nb, k0, kc, b, ld_panel);
}

/* Rows [r0, r1) x columns [n0, n0+nb) of one image and group over the K
 * range [k_begin, k_end) (whole K blocks): for each K block, pack B into the
 * thread's workspace b (the panels not read in place), then sweep the
 * panels against the rows.  c: the destination's row 0 at column n0, row
 * stride ldc.  After the last K block, when `act` is set, the residual res
 * (NULL: none; at c's position) is added and the activation applied. */
static void pg_block(const pg_plan *p, const float *restrict a_g, const float *restrict x_g,
                     const pg_seg *runs, int64_t n_runs, int64_t n0, int64_t nb, int64_t r0,
                     int64_t r1, int64_t k_begin, int64_t k_end, float *restrict b,
                     float *restrict c, int64_t ldc, const float *restrict res,
                     const float *restrict bias_g, bool act)
{
    const int64_t panels = jp_cpu_div_up(nb, JP_TILE_NR), in_place = pg_in_place_panels(p, nb);
    const int64_t plane = p->s.h * p->s.w;
    for (int64_t k0 = k_begin; k0 < k_end; k0 += p->kc) {
        const int64_t kc = k_end - k0 < p->kc ? k_end - k0 : p->kc;
        pg_pack_b_from(p, x_g, runs, n_runs, nb, in_place, k0, kc, b, kc);
        for (int64_t m0 = r0; m0 < r1; m0 += PG_MC_ROWS) {
            const int64_t m1 = m0 + PG_MC_ROWS < r1 ? m0 + PG_MC_ROWS : r1;
            for (int64_t j = 0; j < panels; j++) {
                const int64_t col = j * JP_TILE_NR;
                const int cols = nb - col < JP_TILE_NR ? (int)(nb - col) : JP_TILE_NR;
                const float *rc = res ? res + col : NULL;
                if (j < in_place)
                    pg_panel(p, a_g, k0, kc, x_g + k0 * plane + n0 + col, plane, c + col, ldc, rc,
                             cols, m0, m1, bias_g, k0 == k_begin, act && k0 + kc == k_end);
                else
                    pg_panel(p, a_g, k0, kc, b + j * kc * JP_TILE_NR, JP_TILE_NR, c + col, ldc, rc, cols,
                             m0, m1, bias_g, k0 == k_begin, act && k0 + kc == k_end);
            }
        }
    }
}

/* Split-K mode: for each (image, group, column block) thread t multiplies
 * its share of the K blocks, thread 0 into y (from the bias), the others
 * into their partial buffers (from zero); after a barrier the team adds the
 * partials into y, each thread a slice of rows, adds the residual res (NULL:
 * none) and applies the activation. */
static void pg_run_split_k(const pg_plan *p, const float *x, const float *res, float *y, int nt)
{
    const int64_t ncb = p->n_col_blocks;
    const int64_t cg = p->s.c_in / p->s.groups;
    const int64_t nkb = jp_cpu_div_up(p->k_g, p->kc);
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        float *b = p->b + (size_t)tid * p->b_floats;
        pg_seg *runs = p->runs + (size_t)tid * p->max_runs;
        const int64_t k_begin = nkb * tid / nth * p->kc;
        int64_t k_end = nkb * (tid + 1) / nth * p->kc;
        if (k_end > p->k_g)
            k_end = p->k_g;
        for (int64_t key = 0; key < p->s.n * p->s.groups * ncb; key++) {
            const int64_t cbi = key % ncb, ig = key / ncb;
            const int64_t g = ig % p->s.groups, i = ig / p->s.groups;
            const int64_t n0 = pg_col_start(p, cbi), nb = pg_col_start(p, cbi + 1) - n0;
            const float *x_g = x + (i * p->s.c_in + g * cg) * p->s.h * p->s.w;
            const float *a_g = p->a + g * p->m_panels * JP_TILE_MR * p->k_g;
            float *y_g = y + (i * p->s.c_out + g * p->m_g) * p->n_sp;
            const float *res_g = res ? res + (i * p->s.c_out + g * p->m_g) * p->n_sp : NULL;
            const float *bias_g = p->bias + g * p->m_g;
            const int64_t n_runs = pg_make_runs(p, n0, nb, runs);
            float *part = tid ? p->partial + (size_t)(tid - 1) * p->m_g * p->col_block : NULL;
            if (tid == 0)
                pg_block(p, a_g, x_g, runs, n_runs, n0, nb, 0, p->m_g, k_begin, k_end, b, y_g + n0,
                         p->n_sp, res_g ? res_g + n0 : NULL, bias_g, nth == 1);
            else if (k_begin < k_end)
                pg_block(p, a_g, x_g, runs, n_runs, n0, nb, 0, p->m_g, k_begin, k_end, b, part, nb,
                         NULL, NULL, false);
            else /* no K block left for this thread (never with prepare's blocking) */
                memset(part, 0, (size_t)p->m_g * (size_t)nb * sizeof(float));
            if (nth == 1)
                continue;
#pragma omp barrier
            for (int64_t r = p->m_g * tid / nth; r < p->m_g * (tid + 1) / nth; r++) {
                float *yr = y_g + r * p->n_sp + n0;
                for (int t = 1; t < nth; t++) {
                    const float *pr =
                        p->partial + (size_t)(t - 1) * p->m_g * p->col_block + r * nb;
                    for (int64_t j = 0; j < nb; j++)
                        yr[j] += pr[j];
                }
                if (res_g) {
                    const float *rr = res_g + r * p->n_sp + n0;
                    for (int64_t j = 0; j < nb; j++)
                        yr[j] += rr[j];
                }
                jp_cpu_bias_act(yr, nb, 0.0f, p->act);
            }
#pragma omp barrier
        }
    }
}

/* Shared-B mode (rows split over the team): for each (image, group, column
 * block) the team packs B whole-K together, each thread a slice of K, then
 * each thread multiplies its rows against all of it. */
static void pg_run_shared(const pg_plan *p, const float *x, const float *res, float *y, int nt)
{
    const int64_t ncb = p->n_col_blocks, nrb = p->n_row_blocks;
    const int64_t cg = p->s.c_in / p->s.groups;
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        pg_seg *runs = p->runs + (size_t)tid * p->max_runs;
        for (int64_t key = 0; key < p->s.n * p->s.groups * ncb; key++) {
            const int64_t cbi = key % ncb, ig = key / ncb;
            const int64_t g = ig % p->s.groups, i = ig / p->s.groups;
            const int64_t n0 = pg_col_start(p, cbi), nb = pg_col_start(p, cbi + 1) - n0;
            const float *x_g = x + (i * p->s.c_in + g * cg) * p->s.h * p->s.w;
            const float *a_g = p->a + g * p->m_panels * JP_TILE_MR * p->k_g;
            float *y_g = y + (i * p->s.c_out + g * p->m_g) * p->n_sp;
            const float *res_g = res ? res + (i * p->s.c_out + g * p->m_g) * p->n_sp : NULL;
            const float *bias_g = p->bias + g * p->m_g;
            const int64_t panels = jp_cpu_div_up(nb, JP_TILE_NR), in_place = pg_in_place_panels(p, nb);
            const int64_t plane = p->s.h * p->s.w;
            const int64_t n_runs = pg_make_runs(p, n0, nb, runs);
            const int64_t k_lo = p->k_g * tid / nth, k_hi = p->k_g * (tid + 1) / nth;
            if (k_hi > k_lo)
                pg_pack_b_from(p, x_g, runs, n_runs, nb, in_place, k_lo, k_hi - k_lo,
                               p->b + k_lo * JP_TILE_NR, p->k_g);
            if (in_place < panels) {
#pragma omp barrier
            }
            for (int64_t rb = tid; rb < nrb; rb += nth) {
                const int64_t r0 = rb * p->row_block;
                const int64_t r1 = r0 + p->row_block < p->m_g ? r0 + p->row_block : p->m_g;
                for (int64_t k0 = 0; k0 < p->k_g; k0 += p->kc) {
                    const int64_t kc = p->k_g - k0 < p->kc ? p->k_g - k0 : p->kc;
                    for (int64_t m0 = r0; m0 < r1; m0 += PG_MC_ROWS) {
                        const int64_t m1 = m0 + PG_MC_ROWS < r1 ? m0 + PG_MC_ROWS : r1;
                        for (int64_t j = 0; j < panels; j++) {
                            const int64_t col = j * JP_TILE_NR;
                            const int cols = nb - col < JP_TILE_NR ? (int)(nb - col) : JP_TILE_NR;
                            const float *rc = res_g ? res_g + n0 + col : NULL;
                            if (j < in_place)
                                pg_panel(p, a_g, k0, kc, x_g + k0 * plane + n0 + col, plane,
                                         y_g + n0 + col, p->n_sp, rc, cols, m0, m1, bias_g,
                                         k0 == 0, k0 + kc == p->k_g);
                            else
                                pg_panel(p, a_g, k0, kc, p->b + (j * p->k_g + k0) * JP_TILE_NR, JP_TILE_NR,
                                         y_g + n0 + col, p->n_sp, rc, cols, m0, m1, bias_g,
                                         k0 == 0, k0 + kc == p->k_g);
                        }
                    }
                }
            }
#pragma omp barrier
        }
    }
}

static jp_status pg_run(void *state, const jp_step *step, jp_error *err)
{
    const pg_plan *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/packed_gemm run before prepare",
                            step->op->name);
    const float *x = step->in[0].data; /* [n, c_in, h, w]     */
    float *y = step->out.data;         /* [n, c_out, oh, ow]  */
    const float *res = step->fused_add ? step->in[1].data : NULL; /* [n, c_out, oh, ow] or NULL */
    const int64_t ncb = p->n_col_blocks, nrb = p->n_row_blocks;
    const int64_t n_tasks = p->s.n * p->s.groups * ncb * nrb;
    const int64_t cg = p->s.c_in / p->s.groups;
    int nt = omp_get_max_threads();
    if (nt > p->n_threads)
        nt = p->n_threads;
    if (nt > n_tasks && !p->split_k) /* split-K shares each task among the team */
        nt = (int)n_tasks;
    if (nt < 1)
        nt = 1;
    if (p->split_k) {
        pg_run_split_k(p, x, res, y, nt);
        return JP_OK;
    }
    if (p->shared_b) {
        pg_run_shared(p, x, res, y, nt);
        return JP_OK;
    }
#pragma omp parallel num_threads(nt)
    {
        float *b = p->b + (size_t)omp_get_thread_num() * p->b_floats;
        pg_seg *runs = p->runs + (size_t)omp_get_thread_num() * p->max_runs;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n_tasks; t++) {
            const int64_t rb = t % nrb, key = t / nrb;
            const int64_t cbi = key % ncb, ig = key / ncb;
            const int64_t g = ig % p->s.groups, i = ig / p->s.groups;
            const int64_t n0 = pg_col_start(p, cbi), nb = pg_col_start(p, cbi + 1) - n0;
            const int64_t r0 = rb * p->row_block;
            const int64_t r1 = r0 + p->row_block < p->m_g ? r0 + p->row_block : p->m_g;
            const float *x_g = x + (i * p->s.c_in + g * cg) * p->s.h * p->s.w;
            const float *a_g = p->a + g * p->m_panels * JP_TILE_MR * p->k_g;
            float *y_g = y + (i * p->s.c_out + g * p->m_g) * p->n_sp;
            const float *res_g = res ? res + (i * p->s.c_out + g * p->m_g) * p->n_sp + n0 : NULL;
            const float *bias_g = p->bias + g * p->m_g;
            const int64_t n_runs = pg_make_runs(p, n0, nb, runs);
            pg_block(p, a_g, x_g, runs, n_runs, n0, nb, r0, r1, 0, p->k_g, b, y_g + n0, p->n_sp,
                     res_g, bias_g, true);
        }
    }
    return JP_OK;
}

/* The default GEMM convolution where the build targets AVX-512 (measured
 * with tests/bench_cpu_kernels.c at 2 threads: faster than im2col_blas and
 * gemm_1x1 on every ResNet-50 and EfficientNet-B0 layer, by 10-45%).  Built
 * for AVX2 it ranks below cpu/conv2d/im2col_blas and gemm_1x1: with its 6x16
 * tile it is faster than them alone on many 1x1 layers (MobileNetV2's at
 * 56x56 and 28x28: up to 2x, Zen 3, 2 threads) but not inside a forward
 * pass (mobilenet_v2 with it as the default: sum of steps 10.1 ms against
 * 9.5, `jplprof infer --steps`, alternating rounds). */
#if JP_VLEN == 16
#define PG_PRIORITY 25
#else
#define PG_PRIORITY 5
#endif

static void pg_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const pg_plan *p = state;
    size_t b_at, runs_at;
    *prepared_bytes = ((size_t)p->s.groups * (size_t)p->m_panels * JP_TILE_MR * (size_t)p->k_g + (size_t)p->s.c_out) *
                          sizeof(float) +
                      (size_t)p->k_g * sizeof(pg_ktap);
    *workspace_bytes = pg_scratch_bytes(p, &b_at, &runs_at);
}

/* The executor's shared workspace instead of the own scratch: every run
 * writes what it reads there (packed panels with their zero tails, the
 * runs, the partial sums), so whatever other steps left does not matter. */
static void pg_bind_workspace(void *state, void *workspace)
{
    pg_plan *p = state;
    jp_cpu_free(p->own_scratch);
    p->own_scratch = NULL;
    pg_use_scratch(p, workspace);
}

const jp_kernel jp_cpu_conv2d_packed_gemm = {
    .name = "cpu/conv2d/packed_gemm",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = PG_PRIORITY,
    .supports = pg_supports,
    .prepare = pg_prepare,
    .run = pg_run,
    .release = pg_release,
    .memory = pg_memory,
    .bind_workspace = pg_bind_workspace,
    .params_copied = true,
};
