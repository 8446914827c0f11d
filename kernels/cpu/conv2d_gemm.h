/*
 * conv2d_gemm.h: the convolution-as-GEMM driver shared by
 * cpu/conv2d/im2col_blas and cpu/conv2d/gemm_1x1.
 *
 * Per image i and group g the convolution is one GEMM
 *     Y[m_g, n_sp] = W'[m_g, k_g] * col[k_g, n_sp]
 * with m_g = c_out/groups, k_g = c_in/groups*kh*kw, n_sp = oh*ow, where
 * col is the im2col matrix of the input (row (c, ky, kx), column (oy, ox)),
 * or the input itself for a 1x1 stride-1 unpadded convolution ("direct").
 * W' and the bias b' have the batch norm folded in; the residual (a fused
 * add) and the activation are applied to each block of Y right after its
 * GEMM, while the block is in cache.
 *
 * Threads: the (image, group, column block, row block) tasks are split over
 * the OpenMP team in contiguous runs; each thread fills its own slice of the
 * col workspace for its column block and calls a single-threaded sgemm on it.
 * Rows are split only when there are too few column blocks to feed every
 * thread (ResNet's 7x7 layers: n_sp = 49).
 */
#ifndef JP_CONV2D_GEMM_H
#define JP_CONV2D_GEMM_H

#include "cpu_internal.h"

typedef struct jp_conv_gemm {
    jp_cpu_conv_shape s;  /* shapes and attributes                       */
    int64_t m_g;          /* GEMM rows per group: c_out / groups         */
    int64_t k_g;          /* GEMM depth: c_in / groups * kh * kw          */
    int64_t n_sp;         /* GEMM columns: oh * ow                        */
    bool direct;          /* B is the input itself (1x1, s1, p0)          */
    jp_activation act;
    float *wt;            /* [c_out, k_g], batch norm folded in           */
    float *bias;          /* [c_out]                                      */
    int n_threads;        /* threads the workspace was sized for          */
    int64_t col_block;    /* columns per task (last one shorter)          */
    int64_t n_col_blocks;
    int64_t row_block;    /* rows per task (last one shorter)             */
    int64_t n_row_blocks;
    float *col;           /* [n_threads][k_g * col_block]; NULL if direct */
} jp_conv_gemm;

/* Builds the plan for step (which jp_cpu_conv_step_ok accepted): folds the
 * weights, picks the blocking for omp_get_max_threads() threads and
 * allocates the workspace.  allow_direct lets a 1x1 s1 p0 convolution read
 * its input in place instead of copying it.  *plan is freed with
 * jp_conv_gemm_release. */
jp_status jp_conv_gemm_prepare(const jp_step *step, bool allow_direct, jp_conv_gemm **plan,
                               jp_error *err);

/* The kernels' run slot: out = act(conv(in[0]) [+ in[1], the fused residual
 * add]), shapes as prepared. */
jp_status jp_conv_gemm_run(void *state, const jp_step *step, jp_error *err);

void jp_conv_gemm_release(jp_conv_gemm *plan);
/* The kernels' memory slot (jp_kernel.h) for a jp_conv_gemm plan. */
void jp_conv_gemm_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes);

#endif /* JP_CONV2D_GEMM_H */
