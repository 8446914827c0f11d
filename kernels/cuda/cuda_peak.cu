/*
 * cuda_peak.cu: the GPU's measured peak FP32 multiply-add rate, the
 * yardstick beside the GFLOP/s that `jplprof compare --device cuda` prints.
 *
 * Every thread of a grid that fills the GPU (PEAK_BLOCKS_PER_SM blocks of
 * PEAK_THREADS on every SM) runs PEAK_CHAINS independent FMA chains in
 * registers for PEAK_ITERS iterations: no memory traffic, bound by the FP32
 * FMA units alone.  Timed with CUDA events on the backend's stream, best of
 * PEAK_TRIALS after one warm-up launch; FLOPs = 2 per FMA.  One result is
 * written per thread (to a device buffer) so the compiler keeps every chain.
 */
#include "cuda_context.h"

#include <math.h>
#include <stdio.h>

#define PEAK_CHAINS 8
#define PEAK_ITERS 4096
#define PEAK_THREADS 256
#define PEAK_BLOCKS_PER_SM 8
#define PEAK_TRIALS 5

static __global__ void fma_peak_kernel(float *out, float a, float b)
{
    float acc[PEAK_CHAINS];
#pragma unroll
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = (float)(threadIdx.x + c);
    for (int i = 0; i < PEAK_ITERS; i++) {
#pragma unroll
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = fmaf(acc[c], a, b);
    }
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < PEAK_CHAINS; c++)
        sum += acc[c];
    out[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = sum;
}

jp_status jp_cuda_measure_peak(double *gflops, char *how, size_t how_bytes, jp_error *err)
{
    int device = 0, sms = 0;
    cudaEvent_t start = NULL, stop = NULL;
    float *out = NULL;
    float ms = 0.0f, best_ms = INFINITY;
    int blocks;
    cudaStream_t stream = jp_cuda_stream();

    if (jp_cuda_require_ready(err) != JP_OK)
        return JP_ERR_DEVICE;
    JP_CUDA_CHECK(err, cudaGetDevice(&device));
    JP_CUDA_CHECK(err, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    blocks = sms * PEAK_BLOCKS_PER_SM;
    JP_CUDA_CHECK(err, cudaMalloc((void **)&out, (size_t)blocks * PEAK_THREADS * sizeof(float)));
    JP_CUDA_CHECK(err, cudaEventCreate(&start));
    JP_CUDA_CHECK(err, cudaEventCreate(&stop));
    for (int t = 0; t <= PEAK_TRIALS; t++) { /* t == 0: warm-up */
        JP_CUDA_CHECK(err, cudaEventRecord(start, stream));
        fma_peak_kernel<<<blocks, PEAK_THREADS, 0, stream>>>(out, 0.999999f, 1e-7f);
        JP_CUDA_CHECK(err, cudaGetLastError());
        JP_CUDA_CHECK(err, cudaEventRecord(stop, stream));
        JP_CUDA_CHECK(err, cudaEventSynchronize(stop));
        JP_CUDA_CHECK(err, cudaEventElapsedTime(&ms, start, stop));
        if (t > 0 && ms < best_ms)
            best_ms = ms;
    }
    *gflops = 2.0 * PEAK_CHAINS * (double)PEAK_ITERS * blocks * PEAK_THREADS / (best_ms * 1e-3) *
              1e-9;
    if (how && how_bytes)
        snprintf(how, how_bytes,
                 "register-only FP32 FMA kernel, %d SMs x %d blocks x %d threads x %d chains, "
                 "CUDA events, best of %d launches of %.3f ms",
                 sms, PEAK_BLOCKS_PER_SM, PEAK_THREADS, PEAK_CHAINS, PEAK_TRIALS, best_ms);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(out);
    return JP_OK;
fail:
    if (start)
        cudaEventDestroy(start);
    if (stop)
        cudaEventDestroy(stop);
    if (out)
        cudaFree(out);
    jp_error_prefix(err, "measuring the GPU's FMA peak: ");
    return jp_cuda_fail_status(err);
}
