/*
 * conv2d_im2col_blas.c: cpu/conv2d/im2col_blas, any convolution as im2col +
 * OpenBLAS sgemm per group (driver in conv2d_gemm.c).
 *
 * Always copies its input through im2col, even for 1x1 stride-1 layers, so
 * that comparing it with cpu/conv2d/gemm_1x1 shows what the copy costs.
 * Batch norm is folded into the weights in prepare; the residual (a fused
 * add) and the activation are the
 * GEMM's epilogue.
 */
#include "conv2d_gemm.h"

/* Any convolution, with or without a fused residual add. */
static bool im2col_supports(const jp_step *step)
{
    return jp_cpu_conv_step_ok(step) || jp_cpu_conv_residual_step_ok(step);
}

static jp_status im2col_prepare(const jp_step *step, void **state, jp_error *err)
{
    jp_conv_gemm *plan;
    jp_status st = jp_conv_gemm_prepare(step, false, &plan, err);
    *state = st == JP_OK ? plan : NULL;
    return st;
}

static void im2col_release(void *state) { jp_conv_gemm_release(state); }

const jp_kernel jp_cpu_conv2d_im2col_blas = {
    .name = "cpu/conv2d/im2col_blas",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 10,
    .supports = im2col_supports,
    .prepare = im2col_prepare,
    .run = jp_conv_gemm_run,
    .release = im2col_release,
    .memory = jp_conv_gemm_memory,
    .params_copied = true,
};
