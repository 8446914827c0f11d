/*
 * cuda_kernels.h: what the CUDA backend offers the rest of jplprof.
 *
 * The .cu files of kernels/cuda are linked into one shared module,
 * jplprof-cuda.so, with cuDNN, cuBLAS and the CUDA runtime; the main binary
 * links none of them.  kernels/registry.c dlopen's the module when the cuda
 * device is first asked for and looks these three symbols up by name (C
 * linkage); nothing else includes this header.  The module's own references
 * to the engine (jp_error_set, jp_tensor_numel, ...) resolve against the
 * executable that loads it, which exports its symbols (-rdynamic).
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

/* JP_MODULE_ABI (jp_kernel.h) as this module was compiled. */
extern const size_t jp_cuda_module_abi;

#ifdef __cplusplus
}
#endif

#endif /* JP_CUDA_KERNELS_H */
