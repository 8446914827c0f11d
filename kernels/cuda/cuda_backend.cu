/*
 * cuda_backend.cu: the jp_backend for JP_DEVICE_CUDA, and the context every
 * CUDA kernel shares: one device (0), one stream, one cuDNN and one cuBLAS
 * handle bound to that stream.
 *
 * Invariant: g_ctx.ready is true exactly when the stream and both handles
 * exist; the getters of cuda_context.h are only meaningful then.  The
 * context is process-wide (one executor, one device) and holds no timing
 * state.
 */
#include "cuda_context.h"

#include <stdio.h>
#include <string.h>

static struct {
    bool ready;
    int device;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    char gpu_name[256];
    int cc_major, cc_minor;
} g_ctx;

jp_status jp_cuda_require_ready(jp_error *err)
{
    if (g_ctx.ready)
        return JP_OK;
    return jp_error_set(err, JP_ERR_DEVICE,
                        "cuda backend not initialised: jp_cuda_backend.init must succeed first");
}

cudaStream_t jp_cuda_stream(void) { return g_ctx.stream; }
cudnnHandle_t jp_cuda_cudnn(void) { return g_ctx.cudnn; }
cublasHandle_t jp_cuda_cublas(void) { return g_ctx.cublas; }

/* Library versions are major*1000 + minor*100 + patch in older releases and
 * major*10000 + minor*100 + patch in newer ones (cuDNN from 9, cuBLAS from
 * 12): `wide_from` is the smallest value in the newer encoding. */
static void version_split(size_t v, size_t wide_from, int *major, int *minor, int *patch)
{
    size_t per_major = v >= wide_from ? 10000 : 1000;
    *major = (int)(v / per_major);
    *minor = (int)(v % per_major / 100);
    *patch = (int)(v % 100);
}

static void cuda_shutdown(void)
{
    /* Best effort: a failing destroy leaves nothing we could do better. */
    if (g_ctx.cublas)
        cublasDestroy(g_ctx.cublas);
    if (g_ctx.cudnn)
        cudnnDestroy(g_ctx.cudnn);
    if (g_ctx.stream)
        cudaStreamDestroy(g_ctx.stream);
    memset(&g_ctx, 0, sizeof g_ctx);
}

static jp_status cuda_init(jp_error *err)
{
    int n_devices;
    cudaError_t rc;
    struct cudaDeviceProp prop;
    int cudnn_major, cudnn_minor, cudnn_patch;

    if (g_ctx.ready)
        return JP_OK;
    n_devices = 0;
    rc = cudaGetDeviceCount(&n_devices);
    if (rc != cudaSuccess || n_devices == 0) {
        cudaGetLastError();
        return jp_error_set(err, JP_ERR_DEVICE,
                            "--device cuda: no CUDA device found (cudaGetDeviceCount: %s)",
                            rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
    }
    /* cuDNN refuses to run against another major version than the one we
     * were compiled with; say so plainly instead of failing in a kernel. */
    version_split(cudnnGetVersion(), 90000, &cudnn_major, &cudnn_minor, &cudnn_patch);
    if (cudnn_major != CUDNN_MAJOR)
        return jp_error_set(err, JP_ERR_DEVICE,
                            "--device cuda: built against cuDNN %d.%d.%d but libcudnn is %d.%d.%d "
                            "(the major versions must match)",
                            CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, cudnn_major, cudnn_minor,
                            cudnn_patch);

    g_ctx.device = 0;
    JP_CUDA_CHECK(err, cudaSetDevice(g_ctx.device));
    JP_CUDA_CHECK(err, cudaGetDeviceProperties(&prop, g_ctx.device));
    snprintf(g_ctx.gpu_name, sizeof g_ctx.gpu_name, "%s", prop.name);
    g_ctx.cc_major = prop.major;
    g_ctx.cc_minor = prop.minor;

    JP_CUDA_CHECK(err, cudaStreamCreate(&g_ctx.stream));
    JP_CUDA_CHECK(err, cudnnCreate(&g_ctx.cudnn));
    JP_CUDA_CHECK(err, cudnnSetStream(g_ctx.cudnn, g_ctx.stream));
    JP_CUDA_CHECK(err, cublasCreate(&g_ctx.cublas));
    JP_CUDA_CHECK(err, cublasSetStream(g_ctx.cublas, g_ctx.stream));
    /* FP32 as written: CUBLAS_DEFAULT_MATH never uses TF32 for Sgemm/Sgemv
     * (that takes CUBLAS_TF32_TENSOR_OP_MATH, CUDA >= 11). */
    JP_CUDA_CHECK(err, cublasSetMathMode(g_ctx.cublas, CUBLAS_DEFAULT_MATH));
    JP_CUDA_CHECK(err, cublasSetPointerMode(g_ctx.cublas, CUBLAS_POINTER_MODE_HOST));
    g_ctx.ready = true;
    return JP_OK;
fail:
    cuda_shutdown();
    jp_error_prefix(err, "--device cuda: ");
    return jp_cuda_fail_status(err);
}

static jp_status cuda_alloc(size_t bytes, void **ptr, jp_error *err)
{
    *ptr = NULL;
    if (bytes == 0)
        return JP_OK;
    JP_CUDA_CHECK(err, cudaMalloc(ptr, bytes));
    return JP_OK;
fail:
    *ptr = NULL;
    jp_error_prefix(err, "allocating %zu bytes on the GPU: ", bytes);
    return jp_cuda_fail_status(err);
}

static void cuda_free(void *ptr)
{
    if (ptr)
        cudaFree(ptr);
}

jp_status jp_cuda_upload(void *dst_device, const void *src_host, size_t bytes, jp_error *err)
{
    if (bytes == 0)
        return JP_OK;
    if (jp_cuda_require_ready(err) != JP_OK)
        return JP_ERR_DEVICE;
    JP_CUDA_CHECK(err, cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice,
                                       g_ctx.stream));
    JP_CUDA_CHECK(err, cudaStreamSynchronize(g_ctx.stream));
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

static jp_status cuda_download(void *dst_host, const void *src_device, size_t bytes,
                               jp_error *err)
{
    if (bytes == 0)
        return JP_OK;
    if (jp_cuda_require_ready(err) != JP_OK)
        return JP_ERR_DEVICE;
    JP_CUDA_CHECK(err, cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost,
                                       g_ctx.stream));
    JP_CUDA_CHECK(err, cudaStreamSynchronize(g_ctx.stream));
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

static jp_status cuda_synchronize(jp_error *err)
{
    if (jp_cuda_require_ready(err) != JP_OK)
        return JP_ERR_DEVICE;
    /* A kernel that faulted reports it here, at the first synchronisation. */
    JP_CUDA_CHECK(err, cudaStreamSynchronize(g_ctx.stream));
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

static void cuda_describe(char *buf, size_t buf_bytes)
{
    int runtime = 0, driver = 0, cublas = 0;
    int cudnn_major, cudnn_minor, cudnn_patch;
    int cublas_major, cublas_minor, cublas_patch;

    if (buf_bytes == 0)
        return;
    if (!g_ctx.ready) {
        snprintf(buf, buf_bytes, "cuda (not initialised)");
        return;
    }
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    cublasGetVersion(g_ctx.cublas, &cublas);
    version_split((size_t)cublas, 100000, &cublas_major, &cublas_minor, &cublas_patch);
    version_split(cudnnGetVersion(), 90000, &cudnn_major, &cudnn_minor, &cudnn_patch);
    snprintf(buf, buf_bytes,
             "%s, compute capability %d.%d, CUDA runtime %d.%d, driver %d.%d, cuDNN %d.%d.%d, "
             "cuBLAS %d.%d.%d",
             g_ctx.gpu_name, g_ctx.cc_major, g_ctx.cc_minor, runtime / 1000, runtime % 1000 / 10,
             driver / 1000, driver % 1000 / 10, cudnn_major, cudnn_minor, cudnn_patch,
             cublas_major, cublas_minor, cublas_patch);
}

extern "C" const jp_backend jp_cuda_backend = {
    /* name        */ "cuda",
    /* device      */ JP_DEVICE_CUDA,
    /* init        */ cuda_init,
    /* shutdown    */ cuda_shutdown,
    /* alloc       */ cuda_alloc,
    /* free        */ cuda_free,
    /* upload      */ jp_cuda_upload,
    /* download    */ cuda_download,
    /* synchronize */ cuda_synchronize,
    /* describe    */ cuda_describe,
    /* set_threads */ NULL, /* the kernels use no host threads */
    /* measure_peak */ jp_cuda_measure_peak,
};

/* The registry (kernels/registry.c) refuses this module unless it equals the
 * loading binary's JP_MODULE_ABI. */
extern "C" const size_t jp_cuda_module_abi = JP_MODULE_ABI;
