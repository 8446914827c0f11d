/*
 * cuda_context.h: what the .cu files of kernels/cuda share (C++ only, internal).
 *
 * - The backend's stream and handles (made by jp_cuda_backend.init in
 *   cuda_backend.cu): every kernel enqueues on jp_cuda_stream() and uses the
 *   cuDNN / cuBLAS handles already bound to it.
 * - The activation applied in an epilogue, as a device function.
 * - Helpers of cuda_common.cu: launch geometry, weight upload, bias +
 *   activation epilogue, device-to-device copy, the conv weight/bias fold.
 * - The kernel objects listed by jp_cuda_kernels() (cuda_kernels.cu).
 *
 * Invariants: run() functions only enqueue work on jp_cuda_stream(); they do
 * not allocate, synchronise or print.  All device pointers are float32 and
 * contiguous (NCHW, or [n, features]).
 */
#ifndef JP_CUDA_CONTEXT_H
#define JP_CUDA_CONTEXT_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdint.h>

#include "cuda_check.h"
#include "cuda_kernels.h"

/* ---- the backend's context (cuda_backend.cu) ---------------------------- */

/* JP_OK when jp_cuda_backend.init has succeeded, else JP_ERR_DEVICE with
 * "cuda backend not initialised" (a prepare called too early). */
jp_status jp_cuda_require_ready(jp_error *err);
cudaStream_t jp_cuda_stream(void);
cudnnHandle_t jp_cuda_cudnn(void);
cublasHandle_t jp_cuda_cublas(void);

/* Host to device copy ordered on the stream; returns once it is done.  Used
 * by prepare (weights) and by the backend's upload. */
jp_status jp_cuda_upload(void *dst_device, const void *src_host, size_t bytes, jp_error *err);

/* ---- activations --------------------------------------------------------- */

/* The activations of jp_graph.h (JP_ACTIVATIONS), in float, as PyTorch
 * computes them: relu max(x, 0) (NaN propagates), silu x * sigmoid(x),
 * sigmoid 1/(1+e^-x), relu6 min(max(x, 0), 6), hardsigmoid relu6(x + 3) / 6,
 * hardswish x * relu6(x + 3) / 6.  expf is the accurate one (no
 * --use_fast_math in our build).  Every case listed: -Wswitch names one
 * added to the list without its math here. */
static __device__ __forceinline__ float jp_cuda_activate(float x, jp_activation act)
{
    switch (act) {
    case JP_ACT_RELU: return x > 0.0f ? x : (x != x ? x : 0.0f);
    case JP_ACT_SILU: return x / (1.0f + expf(-x));
    case JP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case JP_ACT_RELU6: return fminf(fmaxf(x, 0.0f), 6.0f);
    case JP_ACT_HARDSWISH: return x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case JP_ACT_HARDSIGMOID: return fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case JP_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.707106781186547524f));
    case JP_ACT_NONE:
    case JP_ACT_COUNT: break;
    }
    return x;
}

/* ---- helpers (cuda_common.cu) -------------------------------------------- */

/* Threads per block of the hand-written kernels; their grids stride, so the
 * block count is capped (jp_cuda_blocks). */
#define JP_CUDA_THREADS 256
unsigned int jp_cuda_blocks(int64_t work_items);

/* Grid-stride loop over [0, n) with an int64 index. */
#define JP_CUDA_FOR(i, n)                                                        \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);     \
         i += (int64_t)gridDim.x * blockDim.x)

/* cudaMalloc + upload of `count` floats; *dst_device is NULL on failure. */
jp_status jp_cuda_upload_floats(const float *src_host, int64_t count, float **dst_device,
                                jp_error *err);

/* In place on y, laid out [outer, channels, inner]:
 *     y[o, c, i] = act(y[o, c, i] + bias[c])      (bias may be NULL)
 * Enqueued on the stream; nothing when bias is NULL and act is NONE. */
jp_status jp_cuda_bias_act(float *y, const float *bias, int64_t outer, int channels,
                           int64_t inner, jp_activation act, jp_error *err);

/* dst = src, `bytes` bytes device to device on the stream (nothing when
 * dst == src). */
jp_status jp_cuda_copy(void *dst, const void *src, size_t bytes, jp_error *err);

/* Uploads a convolution's weight and bias, with step->fused_bn (when not NULL)
 * folded in:  s = gamma / sqrt(var + eps),  w' = w * s,  b' = (b - mean) * s + beta.
 *   *w_device  [c_out, c_in/groups, kh, kw]
 *   *b_device  [c_out]; NULL when the conv has no bias and no fused BN,
 *              unless want_zero_bias (then zeros, for cuDNN's fused call,
 *              which needs a bias).
 * Fails with JP_ERR_MISSING when a parameter is not bound. */
jp_status jp_cuda_conv_params_upload(const jp_step *step, bool want_zero_bias, float **w_device,
                                     float **b_device, jp_error *err);

/* y[i] = act(x[i]) for i < n (y == x allowed), enqueued on the stream. */
jp_status jp_cuda_act_map(float *y, const float *x, int64_t n, jp_activation act, jp_error *err);

/* ---- checks shared by supports() ----------------------------------------- */

/* Every tensor of the step is on the CUDA device (n_in within bounds). */
bool jp_cuda_step_on_device(const jp_step *step);

/* step->op is a conv2d whose in[0]/out shapes agree with its attributes and
 * parameter shapes, whose fused_bn (if any) is a batch_norm2d over c_out with
 * its four parameters, with any activation; all dimensions fit in int. */
bool jp_cuda_conv_step_ok(const jp_step *step);

/* A max_pool2d step either max-pool kernel may take: PyTorch's rules
 * (2 * pad <= kernel), out of the shape PyTorch computes (ceil_mode
 * included), no fusion. */
bool jp_cuda_maxpool_step_ok(const jp_step *step);

/* n_in inputs, each with as many elements as out (> 0). */
bool jp_cuda_same_numel(const jp_step *step, int n_in);

/* No fused batch norm and no activation. */
static inline bool jp_cuda_no_fusion(const jp_step *step)
{
    return step->fused_bn == NULL && step->act == JP_ACT_NONE;
}

/* An activation this backend knows. */
static inline bool jp_cuda_act_ok(jp_activation act)
{
    return jp_activation_valid(act);
}

/* Output size of a convolution or pooling window along one axis, as
 * PyTorch computes it (pooling_output_shape); ceil_mode drops a last window
 * that would start in the right/bottom padding.  <= 0 when nothing fits. */
int64_t jp_cuda_window_out_size(int64_t in, int kernel, int stride, int pad, int dilation,
                                bool ceil_mode);

/* ---- the kernels (one .cu file each) -------------------------------------- */

extern "C" {
/* The backend's measure_peak (cuda_peak.cu): a register-only FMA kernel
 * filling every SM, timed with CUDA events. */
jp_status jp_cuda_measure_peak(double *gflops, char *how, size_t how_bytes, jp_error *err);

extern const jp_kernel jp_cuda_conv2d_cudnn;
/* conv2d_cudnn.cu: one kernel per cuDNN forward algorithm (compare only). */
extern const jp_kernel jp_cuda_conv2d_cudnn_implicit_gemm;
extern const jp_kernel jp_cuda_conv2d_cudnn_implicit_precomp_gemm;
extern const jp_kernel jp_cuda_conv2d_cudnn_gemm;
extern const jp_kernel jp_cuda_conv2d_cudnn_direct;
extern const jp_kernel jp_cuda_conv2d_cudnn_fft;
extern const jp_kernel jp_cuda_conv2d_cudnn_fft_tiling;
extern const jp_kernel jp_cuda_conv2d_cudnn_winograd;
extern const jp_kernel jp_cuda_conv2d_cudnn_winograd_nonfused;
extern const jp_kernel jp_cuda_conv2d_direct;
extern const jp_kernel jp_cuda_linear_cublas;
extern const jp_kernel jp_cuda_batch_norm2d_cudnn;
extern const jp_kernel jp_cuda_max_pool2d_cudnn;
extern const jp_kernel jp_cuda_max_pool2d_direct;
extern const jp_kernel jp_cuda_adaptive_avg_pool2d_direct;
extern const jp_kernel jp_cuda_relu_cudnn;
extern const jp_kernel jp_cuda_silu_direct;
extern const jp_kernel jp_cuda_sigmoid_direct;
extern const jp_kernel jp_cuda_add_direct;
extern const jp_kernel jp_cuda_mul_direct;
extern const jp_kernel jp_cuda_flatten_copy;
extern const jp_kernel jp_cuda_dropout_copy;
extern const jp_kernel jp_cuda_stochastic_depth_copy;
extern const jp_kernel jp_cuda_relu6_direct;
extern const jp_kernel jp_cuda_hardswish_direct;
extern const jp_kernel jp_cuda_hardsigmoid_direct;
extern const jp_kernel jp_cuda_mean_direct;
extern const jp_kernel jp_cuda_concat_copy;
extern const jp_kernel jp_cuda_avg_pool2d_direct;
extern const jp_kernel jp_cuda_channel_affine_direct;
extern const jp_kernel jp_cuda_gelu_direct;
extern const jp_kernel jp_cuda_layer_norm_direct;
extern const jp_kernel jp_cuda_permute_direct;
extern const jp_kernel jp_cuda_layer_scale_direct;
extern const jp_kernel jp_cuda_chunk_copy;
extern const jp_kernel jp_cuda_channel_shuffle_direct;
}

#endif /* JP_CUDA_CONTEXT_H */
