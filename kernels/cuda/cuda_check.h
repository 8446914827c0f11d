/*
 * cuda_check.h: the one macro that checks every CUDA, cuDNN and cuBLAS call.
 *
 *     JP_CUDA_CHECK(err, cudnnSetStream(handle, stream));
 *
 * evaluates the call once; on failure it fills err (a jp_error *, may be
 * NULL) with
 *     "kernels/cuda/conv2d_cudnn.cu:212: cudnnSetStream(handle, stream)
 *      failed: CUDNN_STATUS_BAD_PARAM (<the library's detail, if any>)"
 * and jumps to the enclosing function's `fail:` label.  It never aborts or
 * exits.  Kernel launches are checked by `JP_CUDA_CHECK(err,
 * cudaGetLastError())` on the line after the launch (file:line names it).
 *
 * Status: allocation failures become JP_ERR_NOMEM, everything else
 * JP_ERR_DEVICE.  jp_cuda_fail_status(err) is what a `fail:` label returns.
 *
 * C++ only (the .cu files): the check is overloaded on the three libraries'
 * status types.  Because `goto fail` may not jump over an initialised
 * declaration in C++, functions using the macro declare their locals first.
 */
#ifndef JP_CUDA_CHECK_H
#define JP_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdio.h>

extern "C" {
#include "../../engine/jp_error.h"
}

static inline bool jp_cuda_ok(cudaError_t rc) { return rc == cudaSuccess; }
static inline bool jp_cuda_ok(cudnnStatus_t rc) { return rc == CUDNN_STATUS_SUCCESS; }
static inline bool jp_cuda_ok(cublasStatus_t rc) { return rc == CUBLAS_STATUS_SUCCESS; }

/* cublasGetStatusString only exists from CUDA 11.4 on: our own table, valid
 * for every cuBLAS from CUDA 10.2 to 13. */
static inline const char *jp_cublas_status_name(cublasStatus_t rc)
{
    switch (rc) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_(unknown)";
    }
}

/* The failing call's text, cut so that the library's message still fits. */
#define JP_CUDA_CALL_TEXT_MAX 300

static inline jp_status jp_cuda_record_error(jp_error *err, cudaError_t rc, const char *call,
                                             const char *file, int line)
{
    jp_status status = rc == cudaErrorMemoryAllocation ? JP_ERR_NOMEM : JP_ERR_DEVICE;
    cudaGetLastError(); /* clear a non-sticky error so that it is not reported twice */
    return jp_error_set(err, status, "%s:%d: %.*s failed: %s (%s)", file, line,
                        JP_CUDA_CALL_TEXT_MAX, call, cudaGetErrorName(rc), cudaGetErrorString(rc));
}

static inline jp_status jp_cuda_record_error(jp_error *err, cudnnStatus_t rc, const char *call,
                                             const char *file, int line)
{
#if CUDNN_MAJOR >= 9
    jp_status status = rc == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                               rc == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED
                           ? JP_ERR_NOMEM
                           : JP_ERR_DEVICE;
#else
    jp_status status = rc == CUDNN_STATUS_ALLOC_FAILED ? JP_ERR_NOMEM : JP_ERR_DEVICE;
#endif
#if CUDNN_MAJOR >= 9
    /* cuDNN 9 says why (e.g. which dimension it rejected); cuDNN 8 does not. */
    char detail[512];
    detail[0] = '\0';
    cudnnGetLastErrorString(detail, sizeof detail);
    if (detail[0] != '\0')
        return jp_error_set(err, status, "%s:%d: %.*s failed: %s (cuDNN's last message: %s)",
                            file, line, JP_CUDA_CALL_TEXT_MAX, call, cudnnGetErrorString(rc),
                            detail);
#endif
    return jp_error_set(err, status, "%s:%d: %.*s failed: %s", file, line,
                        JP_CUDA_CALL_TEXT_MAX, call, cudnnGetErrorString(rc));
}

static inline jp_status jp_cuda_record_error(jp_error *err, cublasStatus_t rc, const char *call,
                                             const char *file, int line)
{
    jp_status status = rc == CUBLAS_STATUS_ALLOC_FAILED ? JP_ERR_NOMEM : JP_ERR_DEVICE;
    return jp_error_set(err, status, "%s:%d: %.*s failed: %s", file, line,
                        JP_CUDA_CALL_TEXT_MAX, call, jp_cublas_status_name(rc));
}

/* Reads and drops cuDNN 9's last error message, after a failure that was
 * expected (a refused candidate), so that it cannot be reported later as the
 * detail of an unrelated failure.  Nothing to do before cuDNN 9. */
static inline void jp_cudnn_forget_last_error(void)
{
#if CUDNN_MAJOR >= 9
    char discard[512];
    cudnnGetLastErrorString(discard, sizeof discard);
#endif
}

/* What a `fail:` label returns: the recorded status (JP_ERR_DEVICE when the
 * caller passed no jp_error). */
static inline jp_status jp_cuda_fail_status(const jp_error *err)
{
    return err && err->status != JP_OK ? err->status : JP_ERR_DEVICE;
}

#define JP_CUDA_CHECK(err, call)                                                \
    do {                                                                        \
        const auto jp_cuda_rc_ = (call);                                        \
        if (!jp_cuda_ok(jp_cuda_rc_)) {                                         \
            jp_cuda_record_error((err), jp_cuda_rc_, #call, __FILE__, __LINE__); \
            goto fail;                                                          \
        }                                                                       \
    } while (0)

#endif /* JP_CUDA_CHECK_H */
