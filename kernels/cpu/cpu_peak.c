/*
 * cpu_peak.c: the CPU's measured peak FP32 multiply-add rate, the yardstick
 * beside every GFLOP/s that `jplprof compare` prints.
 *
 * Each OpenMP thread (as many as --threads set) runs a loop of FMAs on
 * PEAK_CHAINS independent register accumulators, widest vectors the build
 * allows (cpu_simd.h: AVX-512, AVX2+FMA, or scalar fmaf).  PEAK_CHAINS
 * covers the FMA latency times the FMA ports of current x86 cores (4 cycles
 * x 2 ports = 8 in flight) with room to spare and fits the register file,
 * so the loop is bound by FMA throughput alone: no loads, no stores.  The best of PEAK_TRIALS timed
 * trials is kept (a trial is cut short by nothing but the OS, so the best is
 * the least disturbed).  FLOPs = 2 per lane per FMA.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

#include "cpu_simd.h"

/* The chains and the two constants must fit the vector registers, or the
 * compiler keeps accumulators on the stack and the loop measures loads and
 * stores: 16 chains on AVX2's 16 registers ran at one FMA a cycle on Zen 3
 * (51.8 GFLOP/s a core, against 97 measured with 8 chains). */
#if defined(__AVX512F__) || defined(JP_SIMD_NEON)
#define PEAK_CHAINS 16 /* of 32 registers */
#else
#define PEAK_CHAINS 12 /* of 16 */
#endif
#define PEAK_TRIALS 5
#define PEAK_ITERS 2000000L /* per thread per trial: 32 M FMAs, ~0.05-0.2 s */

#if defined(__AVX512F__)
#define PEAK_ISA "AVX-512 FMA"
#elif defined(__AVX2__) && defined(__FMA__)
#define PEAK_ISA "AVX2 FMA"
#elif defined(JP_SIMD_NEON)
#define PEAK_ISA "NEON FMLA"
#else
#define PEAK_ISA "scalar fmaf"
#endif

/* iters x PEAK_CHAINS dependent-per-chain FMAs; returns a value that
 * depends on every chain so the compiler keeps them all. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float fma_loop(long iters, float seed)
{
    jp_vf acc[PEAK_CHAINS];
    const jp_vf a = jp_v_set1(0.999999f), b = jp_v_set1(1e-7f);
    for (int c = 0; c < PEAK_CHAINS; c++)
        acc[c] = jp_v_set1(seed + (float)c);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int c = 0; c < PEAK_CHAINS; c++)
            acc[c] = jp_v_fma(acc[c], a, b);
    }
    jp_vf sum = acc[0];
    for (int c = 1; c < PEAK_CHAINS; c++)
        sum = jp_v_add(sum, acc[c]);
    float lanes[JP_VLEN];
    jp_v_store(lanes, sum);
    float s = 0.0f;
    for (int l = 0; l < JP_VLEN; l++)
        s += lanes[l];
    return s;
}

jp_status jp_cpu_measure_peak(double *gflops, char *how, size_t how_bytes, jp_error *err)
{
    int threads = omp_get_max_threads();
    double best_s = INFINITY;
    volatile float sink = 0.0f;

    (void)err;
    fma_loop(PEAK_ITERS / 10, 1.0f); /* wake the core to its running clock */
    for (int t = 0; t < PEAK_TRIALS; t++) {
        float partial = 0.0f;
        double t0 = now_s();
#pragma omp parallel reduction(+ : partial) num_threads(threads)
        partial += fma_loop(PEAK_ITERS, (float)omp_get_thread_num());
        double s = now_s() - t0;
        sink += partial;
        if (s < best_s)
            best_s = s;
    }
    (void)sink;
    double flops = 2.0 * JP_VLEN * PEAK_CHAINS * (double)PEAK_ITERS * threads;
    *gflops = flops / best_s * 1e-9;
    if (how && how_bytes)
        snprintf(how, how_bytes,
                 "register-only %s loop, %d independent chains, %d thread%s, best of %d "
                 "trials of %.0f ms",
                 PEAK_ISA, PEAK_CHAINS, threads, threads == 1 ? "" : "s", PEAK_TRIALS,
                 best_s * 1e3);
    return JP_OK;
}
