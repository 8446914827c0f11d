/*
 * gemm_tile.h: the register-tiled GEMM microkernel of the CPU convolutions
 * (cpu/conv2d/packed_gemm, and the 36 GEMMs of cpu/conv2d/winograd):
 *
 *     C[rows, cols] (+)= A-panel[kc][JP_TILE_MR]^T * B[kc][ldb]
 *
 * A is packed: JP_TILE_MR consecutive floats per k, one row of the tile
 * each.  B is read a row of columns at a time with row stride ldb: a packed
 * panel (ldb = JP_TILE_NR) or a matrix used in place.  Every full vector of
 * a row of B is loaded, also past cols (up to NV vectors): B must be
 * readable there.  The epilogue (bias, residual add, activation) runs on
 * the registers before the single store.
 *
 * Portable: written against cpu_simd.h (AVX-512: 8x48 tile, AVX2: 6x16,
 * NEON: 8x12, scalar: 4x3).
 */
#ifndef JP_GEMM_TILE_H
#define JP_GEMM_TILE_H

#include "cpu_simd.h"

/* Register tile: JP_TILE_MR rows x JP_TILE_NV vectors.  AVX-512 has 32
 * registers: 24 accumulators + 3 B vectors + 1 broadcast; AVX2 has 16:
 * 12 + 2 + 1 as 6x16 (4x24's 12 + 3 + 1 left gcc no spare register: it
 * folded the B loads into the FMAs, 16 loads per 12 FMAs; bench_cpu_kernels'
 * microkernel row on Zen 3, alternating runs: 4x24 median 60 GFLOP/s, 6x16
 * 80, of a 96 peak).  NEON has 32 of 4 floats: 24 accumulators + 3 B vectors + the
 * 8 A values of a k in 2 vectors, read by FMLA's lane operand (5 loads per
 * 24 FMAs, where a broadcast per row would take 11): an 8x12 tile, chosen
 * by counting registers and loads, not timed (no ARM machine here). */
#if JP_VLEN == 16 || defined(JP_SIMD_NEON)
#define JP_TILE_MR 8
#define JP_TILE_NV 3
#elif JP_VLEN == 8
#define JP_TILE_MR 6
#define JP_TILE_NV 2
#else
#define JP_TILE_MR 4
#define JP_TILE_NV 3
#endif
#define JP_TILE_NR (JP_TILE_NV * JP_VLEN)

/* Software prefetch of A into L2, this many floats ahead of the tile being
 * read (8 KiB: about 1.5 microseconds of the microkernel, well past DRAM
 * latency).  A is the weights, cold in a forward pass. */
#ifndef JP_TILE_PREFETCH_FLOATS
#define JP_TILE_PREFETCH_FLOATS 2048
#endif
#if defined(__GNUC__)
#define JP_TILE_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#define JP_TILE_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define JP_TILE_PREFETCH(p) ((void)(p))
#define JP_TILE_PREFETCH_W(p) ((void)(p))
#endif

/* The microkernel: C[rows, cols] (+)= A[kc][JP_TILE_MR]^T-panel * B[kc][ldb]
 * with NV vectors of columns (B: a packed panel, ldb = JP_TILE_NR, or a
 * matrix read in place: the input of a 1x1 stride-1 convolution, ldb = h*w;
 * Winograd's transformed input).
 * first: start from the bias (else from C); last: add the residual res
 * (NULL: none; at C's position with C's row stride) and apply the
 * activation before storing.  rows <= JP_TILE_MR, cols <= NV * JP_VLEN; full
 * tiles take the unmasked path. */
JP_ALWAYS_INLINE void jp_tile(int64_t kc, const float *restrict a, const float *restrict b,
                              int64_t ldb, float *restrict c, int64_t ldc,
                              const float *restrict res, const float *restrict bias,
                              bool first, bool last, jp_activation act, int rows, int cols,
                              const int NV)
{
    jp_vf acc[JP_TILE_MR][JP_TILE_NV];
    const bool full = rows == JP_TILE_MR && cols == NV * JP_VLEN;
    if (first) {
        for (int r = 0; r < JP_TILE_MR; r++) {
            const jp_vf bv = jp_v_set1(r < rows && bias ? bias[r] : 0.0f);
            for (int v = 0; v < NV; v++)
                acc[r][v] = bv;
        }
    } else if (full) {
        for (int r = 0; r < JP_TILE_MR; r++)
            for (int v = 0; v < NV; v++)
                acc[r][v] = jp_v_load(c + r * ldc + v * JP_VLEN);
    } else {
        for (int r = 0; r < JP_TILE_MR; r++)
            for (int v = 0; v < NV; v++)
                acc[r][v] = r < rows ? jp_v_load_range(c + r * ldc + v * JP_VLEN, 0,
                                                       cols - v * JP_VLEN)
                                     : jp_v_zero();
    }
    /* The lines the epilogue will store to (and, last, the residual it will
     * read), requested now so that they arrive during the K loop: the rows
     * of C are a map apart (12.5 KB at 56x56), too many streams for the
     * hardware prefetchers, and the stores missed at the end of every tile
     * (ResNet-50's 64->256 1x1 at 56x56 with its residual: 0.84 ms in a
     * pass, 0.51 ms without the add). */
    for (int r = 0; r < rows; r++)
        for (int col = 0; col < cols + JP_VLEN - 1; col += JP_VLEN) {
            const int64_t off = r * ldc + (col < cols ? col : cols - 1); /* a row's last line too */
            JP_TILE_PREFETCH_W(c + off);
            if (last && res)
                JP_TILE_PREFETCH(res + off);
        }
    for (int64_t k = 0; k < kc; k++) {
        /* One cache line of A ahead per 64 bytes consumed (at each k whose
         * A values start a line: every 2nd k on AVX-512, 3 in 8 on AVX2):
         * A's tiles (W', Winograd's U) are one contiguous stream, cold in a
         * forward pass, and the hardware prefetcher alone left the 7x7
         * layers 40% slower cold than warm. */
        if ((k * JP_TILE_MR * (int64_t)sizeof(float)) % 64 < JP_TILE_MR * (int64_t)sizeof(float))
            JP_TILE_PREFETCH(a + JP_TILE_PREFETCH_FLOATS);
        jp_vf bv[JP_TILE_NV];
        for (int v = 0; v < NV; v++)
            bv[v] = jp_v_load(b + v * JP_VLEN);
#if defined(JP_SIMD_NEON)
        /* Row r's A value is lane r % 4 of a_lo (r < 4) or a_hi: the lane
         * operand must be a constant, hence one line per row. */
        const jp_vf a_lo = jp_v_load(a), a_hi = jp_v_load(a + 4);
#define JP_TILE_ROW(r, src, lane)                                                                  \
    for (int v = 0; v < NV; v++)                                                                   \
        JP_V_FMA_LANE(acc[r][v], bv[v], src, lane);
        JP_TILE_ROW(0, a_lo, 0) JP_TILE_ROW(1, a_lo, 1) JP_TILE_ROW(2, a_lo, 2)
        JP_TILE_ROW(3, a_lo, 3) JP_TILE_ROW(4, a_hi, 0) JP_TILE_ROW(5, a_hi, 1)
        JP_TILE_ROW(6, a_hi, 2) JP_TILE_ROW(7, a_hi, 3)
#undef JP_TILE_ROW
#else
        for (int r = 0; r < JP_TILE_MR; r++) {
            const jp_vf av = jp_v_set1(a[r]);
            for (int v = 0; v < NV; v++)
                acc[r][v] = jp_v_fma(av, bv[v], acc[r][v]);
        }
#endif
        a += JP_TILE_MR;
        b += ldb;
    }
    if (last && res) {
        if (full) {
            for (int r = 0; r < JP_TILE_MR; r++)
                for (int v = 0; v < NV; v++)
                    acc[r][v] = jp_v_add(acc[r][v], jp_v_load(res + r * ldc + v * JP_VLEN));
        } else {
            for (int r = 0; r < rows; r++)
                for (int v = 0; v < NV; v++)
                    acc[r][v] = jp_v_add(acc[r][v], jp_v_load_range(res + r * ldc + v * JP_VLEN, 0,
                                                                    cols - v * JP_VLEN));
        }
    }
    if (last && act != JP_ACT_NONE)
        for (int r = 0; r < JP_TILE_MR; r++)
            for (int v = 0; v < NV; v++)
                acc[r][v] = jp_v_act(acc[r][v], act);
    if (full) {
        for (int r = 0; r < JP_TILE_MR; r++)
            for (int v = 0; v < NV; v++)
                jp_v_store(c + r * ldc + v * JP_VLEN, acc[r][v]);
    } else {
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < NV; v++) {
                const int lanes = cols - v * JP_VLEN;
                if (lanes >= JP_VLEN)
                    jp_v_store(c + r * ldc + v * JP_VLEN, acc[r][v]);
                else if (lanes > 0)
                    jp_v_store_n(c + r * ldc + v * JP_VLEN, acc[r][v], lanes);
            }
    }
}

#if defined(__AVX512F__) && JP_TILE_MR == 8
/* Narrow tail: cols <= JP_TILE_NARROW columns of B (row stride ldb; the
 * 49th column of a 7x7 map, the last 4 of a 14x14 one).  The vector runs over the 8 rows of the A
 * panel instead of over columns: per k one 8-float load of A and one
 * broadcast + FMA per column, where the column-vector tile would spend 8
 * FMAs on a mostly empty vector.  Four k-phases of accumulators hide the FMA
 * latency.  Rows go back to C one by one (rarely: once per K block). */
#define JP_TILE_NARROW 4
static inline void jp_tile_narrow(int64_t kc, const float *restrict a,
                                  const float *restrict b, int64_t ldb, float *restrict c,
                                  int64_t ldc, const float *restrict res,
                                  const float *restrict bias, bool first, bool last,
                                  jp_activation act, int rows, int cols)
{
    __m256 acc[4][JP_TILE_NARROW];
    for (int u = 0; u < 4; u++)
        for (int j = 0; j < JP_TILE_NARROW; j++)
            acc[u][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4)
        for (int u = 0; u < 4; u++) {
            const __m256 av = _mm256_loadu_ps(a + (k + u) * JP_TILE_MR);
            for (int j = 0; j < JP_TILE_NARROW; j++)
                if (j < cols)
                    acc[u][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(b[(k + u) * ldb + j]),
                                                acc[u][j]);
        }
    for (; k < kc; k++) {
        const __m256 av = _mm256_loadu_ps(a + k * JP_TILE_MR);
        for (int j = 0; j < JP_TILE_NARROW; j++)
            if (j < cols)
                acc[0][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(b[k * ldb + j]), acc[0][j]);
    }
    for (int j = 0; j < cols; j++) {
        float sum[8];
        _mm256_storeu_ps(sum, _mm256_add_ps(_mm256_add_ps(acc[0][j], acc[1][j]),
                                            _mm256_add_ps(acc[2][j], acc[3][j])));
        for (int r = 0; r < rows; r++) {
            float v = sum[r] + (first ? (bias ? bias[r] : 0.0f) : c[r * ldc + j]);
            if (last && res)
                v += res[r * ldc + j];
            c[r * ldc + j] = last ? jp_cpu_act(v, act) : v;
        }
    }
}
#endif

/* The columns of B that jp_tile_cols reads for a panel of `cols` columns:
 * cols itself for the narrow tile (single floats), else cols rounded up to
 * whole vectors.  Packing zero-fills up to it; reading in place needs B
 * readable up to it. */
static inline int64_t jp_tile_loaded_cols(int64_t cols)
{
#ifdef JP_TILE_NARROW
    if (cols <= JP_TILE_NARROW)
        return cols;
#endif
    return (cols + JP_VLEN - 1) / JP_VLEN * JP_VLEN;
}

/* jp_tile for any cols <= JP_TILE_NR: the narrow tile for the last few
 * columns, else as few vectors as cover cols. */
JP_ALWAYS_INLINE void jp_tile_cols(int64_t kc, const float *restrict a, const float *restrict b,
                                   int64_t ldb, float *restrict c, int64_t ldc,
                                   const float *restrict res, const float *restrict bias,
                                   bool first, bool last, jp_activation act, int rows, int cols)
{
#ifdef JP_TILE_NARROW
    if (cols <= JP_TILE_NARROW) {
        jp_tile_narrow(kc, a, b, ldb, c, ldc, res, bias, first, last, act, rows, cols);
        return;
    }
#endif
#if JP_TILE_NV == 3
    if (cols > 2 * JP_VLEN)
        jp_tile(kc, a, b, ldb, c, ldc, res, bias, first, last, act, rows, cols, 3);
    else
#endif
    if (cols > JP_VLEN)
        jp_tile(kc, a, b, ldb, c, ldc, res, bias, first, last, act, rows, cols, 2);
    else
        jp_tile(kc, a, b, ldb, c, ldc, res, bias, first, last, act, rows, cols, 1);
}

#endif
