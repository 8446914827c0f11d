/*
 * cuda_kernels.cu: the list of CUDA kernels that jp_cuda_kernels() gives the
 * registry (kernels/registry.c), in op order; within an op the default
 * (highest priority) first.
 */
#include "cuda_context.h"

static const jp_kernel *const cuda_kernels[] = {
    &jp_cuda_conv2d_cudnn,
    &jp_cuda_conv2d_cudnn_implicit_gemm,
    &jp_cuda_conv2d_cudnn_implicit_precomp_gemm,
    &jp_cuda_conv2d_cudnn_gemm,
    &jp_cuda_conv2d_cudnn_direct,
    &jp_cuda_conv2d_cudnn_fft,
    &jp_cuda_conv2d_cudnn_fft_tiling,
    &jp_cuda_conv2d_cudnn_winograd,
    &jp_cuda_conv2d_cudnn_winograd_nonfused,
    &jp_cuda_conv2d_direct,
    &jp_cuda_batch_norm2d_cudnn,
    &jp_cuda_relu_cudnn,
    &jp_cuda_silu_direct,
    &jp_cuda_sigmoid_direct,
    &jp_cuda_max_pool2d_cudnn,
    &jp_cuda_max_pool2d_direct,
    &jp_cuda_adaptive_avg_pool2d_direct,
    &jp_cuda_linear_cublas,
    &jp_cuda_flatten_copy,
    &jp_cuda_add_direct,
    &jp_cuda_mul_direct,
    &jp_cuda_dropout_copy,
    &jp_cuda_stochastic_depth_copy,
    &jp_cuda_relu6_direct,
    &jp_cuda_hardswish_direct,
    &jp_cuda_hardsigmoid_direct,
    &jp_cuda_mean_direct,
    &jp_cuda_concat_copy,
    &jp_cuda_avg_pool2d_direct,
    &jp_cuda_channel_affine_direct,
    &jp_cuda_gelu_direct,
    &jp_cuda_layer_norm_direct,
    &jp_cuda_permute_direct,
    &jp_cuda_layer_scale_direct,
    &jp_cuda_chunk_copy,
    &jp_cuda_channel_shuffle_direct,
};

extern "C" const jp_kernel *const *jp_cuda_kernels(size_t *count)
{
    if (count)
        *count = sizeof cuda_kernels / sizeof cuda_kernels[0];
    return cuda_kernels;
}
