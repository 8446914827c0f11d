/*
 * conv2d_gemm_1x1.c: cpu/conv2d/gemm_1x1, 1x1 convolutions without padding
 * as one GEMM per group straight on the input (driver in conv2d_gemm.c).
 *
 * Stride 1: the input [c_in, h*w] is the GEMM's B matrix, read in place.
 * Stride > 1 (ResNet's downsample): each thread first subsamples its column
 * block into its workspace (im2col with a 1x1 kernel is exactly that).
 * Batch norm is folded into the weights in prepare; the residual (a fused
 * add) and the activation are the
 * GEMM's epilogue.
 */
#include "conv2d_gemm.h"

static bool gemm_1x1_supports(const jp_step *step)
{
    if (!jp_cpu_conv_step_ok(step) && !jp_cpu_conv_residual_step_ok(step))
        return false;
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    return a->kernel_h == 1 && a->kernel_w == 1 && a->pad_h == 0 && a->pad_w == 0;
}

static jp_status gemm_1x1_prepare(const jp_step *step, void **state, jp_error *err)
{
    jp_conv_gemm *plan;
    jp_status st = jp_conv_gemm_prepare(step, true, &plan, err);
    *state = st == JP_OK ? plan : NULL;
    return st;
}

static void gemm_1x1_release(void *state) { jp_conv_gemm_release(state); }

const jp_kernel jp_cpu_conv2d_gemm_1x1 = {
    .name = "cpu/conv2d/gemm_1x1",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 20,
    .supports = gemm_1x1_supports,
    .prepare = gemm_1x1_prepare,
    .run = jp_conv_gemm_run,
    .release = gemm_1x1_release,
    .memory = jp_conv_gemm_memory,
    .params_copied = true,
};
