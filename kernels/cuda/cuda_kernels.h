/*
 * cuda_kernels.h: what the CUDA backend offers the rest of jplprof.
 *
 * Includable from C11 (the registry, the CLI, the tests) and from the CUDA
 * C++ files that define these symbols.  Only builds with CUDA (JP_HAVE_CUDA)
 * include it; the objects come from the .cu files of kernels/cuda.
 *
 * Every kernel here works on float32 NCHW tensors in device memory and only
 * enqueues work on the backend's one stream (created by jp_cuda_backend.init);
 * jp_cuda_backend.synchronize waits for it.  Kernels must not be prepared or
 * run before jp_cuda_backend.init has succeeded (prepare then fails with
 * JP_ERR_DEVICE, "cuda backend not initialised").
 *
 * Numerics: FP32 throughout.  TF32 is disabled: cuDNN convolutions use
 * CUDNN_FMA_MATH (cuDNN >= 8; CUDNN_DEFAULT_MATH would allow TF32 tensor
 * cores on Ampere and newer) and the cuBLAS handle CUBLAS_DEFAULT_MATH.
 */
#ifndef JP_CUDA_KERNELS_H
#define JP_CUDA_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../jp_kernel.h"

/* Every CUDA kernel of this build, in a fixed order; *count receives their
 * number.  The array is static: never freed, never NULL. */
const jp_kernel *const *jp_cuda_kernels(size_t *count);

/* The backend for JP_DEVICE_CUDA (name "cuda").  init picks device 0 (as
 * CUDA_VISIBLE_DEVICES presents it), creates one stream and the cuDNN and
 * cuBLAS handles bound to it, and fails with "--device cuda: no CUDA device
 * found (cudaGetDeviceCount: ...)" on a machine without a GPU or driver.
 * init is idempotent; shutdown destroys what init made.  upload and download
 * are ordered with the kernels on the stream and return when the copy is
 * done. */
extern const jp_backend jp_cuda_backend;

#ifdef __cplusplus
}
#endif

#endif /* JP_CUDA_KERNELS_H */
