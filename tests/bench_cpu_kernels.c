/*
 * bench_cpu_kernels.c: times every CPU convolution kernel on the layers that
 * dominate ResNet-50 and EfficientNet-B0 (batch 1, 224x224), and OpenBLAS's
 * large sgemm and our GEMM microkernel in L1 as the ceilings.  Not a test: a benchmark binary.
 *
 *   bench_cpu_kernels [--threads N] [--filter TEXT] [--min-ms MS] [--reference]
 *                     [--cold MIB]
 *
 * --cold MIB writes that much memory before every timed run, so that the
 * weights come from DRAM as in a forward pass (the profiler's repeated runs
 * of one layer are the warm case, the default here).
 *
 * Each layer runs with the fusion the executor gives it (batch norm folded,
 * ReLU for ResNet, SiLU for EfficientNet), warm-up first, then repeatedly for
 * at least --min-ms; the median is printed with GFLOP/s = 2 * MACs / time.
 * OpenBLAS runs single-threaded inside our OpenMP loops, as in jplprof.
 * tests/bench_torch_convs.py times PyTorch's F.conv2d on the same shapes.
 * Then the other ops (pools, add, mul, activations, linear) in GB/s.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/cpu/cpu_internal.h"
#include "../kernels/cpu/cpu_kernels.h"
#include "../kernels/cpu/gemm_tile.h"

typedef struct bench_layer {
    const char *name;
    int c_in, c_out, hw, k, s, p, groups;
    jp_activation act;
} bench_layer;

/* Stride-2 3x3 convolutions are ResNet v1.5's (torchvision): the stride sits
 * on the 3x3 of the first bottleneck of layers 2-4. */
static const bench_layer layers[] = {
    {"r50 stem 7x7 s2 3->64 @224", 3, 64, 224, 7, 2, 3, 1, JP_ACT_RELU},
    {"r50 l1 3x3 64->64 @56", 64, 64, 56, 3, 1, 1, 1, JP_ACT_RELU},
    {"r50 l2 3x3 s2 128->128 @56", 128, 128, 56, 3, 2, 1, 1, JP_ACT_RELU},
    {"r50 l2 3x3 128->128 @28", 128, 128, 28, 3, 1, 1, 1, JP_ACT_RELU},
    {"r50 l3 3x3 s2 256->256 @28", 256, 256, 28, 3, 2, 1, 1, JP_ACT_RELU},
    {"r50 l3 3x3 256->256 @14", 256, 256, 14, 3, 1, 1, 1, JP_ACT_RELU},
    {"r50 l4 3x3 s2 512->512 @14", 512, 512, 14, 3, 2, 1, 1, JP_ACT_RELU},
    {"r50 l4 3x3 512->512 @7", 512, 512, 7, 3, 1, 1, 1, JP_ACT_RELU},
    {"r50 l1 1x1 64->256 @56", 64, 256, 56, 1, 1, 0, 1, JP_ACT_NONE},
    {"r50 l1 1x1 256->64 @56", 256, 64, 56, 1, 1, 0, 1, JP_ACT_RELU},
    {"r50 l2 1x1 256->128 @56", 256, 128, 56, 1, 1, 0, 1, JP_ACT_RELU},
    {"r50 l2 1x1 512->128 @28", 512, 128, 28, 1, 1, 0, 1, JP_ACT_RELU},
    {"r50 l2 1x1 128->512 @28", 128, 512, 28, 1, 1, 0, 1, JP_ACT_NONE},
    {"r50 l3 1x1 1024->256 @14", 1024, 256, 14, 1, 1, 0, 1, JP_ACT_RELU},
    {"r50 l3 1x1 256->1024 @14", 256, 1024, 14, 1, 1, 0, 1, JP_ACT_NONE},
    {"r50 l4 1x1 2048->512 @7", 2048, 512, 7, 1, 1, 0, 1, JP_ACT_RELU},
    {"r50 l4 1x1 512->2048 @7", 512, 2048, 7, 1, 1, 0, 1, JP_ACT_NONE},
    {"r50 l2 down 1x1 s2 256->512 @56", 256, 512, 56, 1, 2, 0, 1, JP_ACT_NONE},
    {"r50 l3 down 1x1 s2 512->1024 @28", 512, 1024, 28, 1, 2, 0, 1, JP_ACT_NONE},
    {"r50 l4 down 1x1 s2 1024->2048 @14", 1024, 2048, 14, 1, 2, 0, 1, JP_ACT_NONE},
    {"b0 stem 3x3 s2 3->32 @224", 3, 32, 224, 3, 2, 1, 1, JP_ACT_SILU},
    {"b0 dw 3x3 c32 @112", 32, 32, 112, 3, 1, 1, 32, JP_ACT_SILU},
    {"b0 dw 3x3 s2 c96 @112", 96, 96, 112, 3, 2, 1, 96, JP_ACT_SILU},
    {"b0 dw 3x3 c144 @56", 144, 144, 56, 3, 1, 1, 144, JP_ACT_SILU},
    {"b0 dw 5x5 s2 c144 @56", 144, 144, 56, 5, 2, 2, 144, JP_ACT_SILU},
    {"b0 dw 5x5 c240 @28", 240, 240, 28, 5, 1, 2, 240, JP_ACT_SILU},
    {"b0 dw 3x3 s2 c240 @28", 240, 240, 28, 3, 2, 1, 240, JP_ACT_SILU},
    {"b0 dw 3x3 c480 @14", 480, 480, 14, 3, 1, 1, 480, JP_ACT_SILU},
    {"b0 dw 5x5 c672 @14", 672, 672, 14, 5, 1, 2, 672, JP_ACT_SILU},
    {"b0 dw 5x5 s2 c672 @14", 672, 672, 14, 5, 2, 2, 672, JP_ACT_SILU},
    {"b0 dw 5x5 c1152 @7", 1152, 1152, 7, 5, 1, 2, 1152, JP_ACT_SILU},
    {"b0 1x1 16->96 @112", 16, 96, 112, 1, 1, 0, 1, JP_ACT_SILU},
    {"b0 1x1 96->24 @56", 96, 24, 56, 1, 1, 0, 1, JP_ACT_NONE},
    {"b0 1x1 240->40 @28", 240, 40, 28, 1, 1, 0, 1, JP_ACT_NONE},
    {"b0 1x1 1152->192 @7", 1152, 192, 7, 1, 1, 0, 1, JP_ACT_NONE},
    {"b0 head 1x1 320->1280 @7", 320, 1280, 7, 1, 1, 0, 1, JP_ACT_SILU},
    {"b7 dw 3x3 c288 @56", 288, 288, 56, 3, 1, 1, 288, JP_ACT_SILU},
    {"b7 dw 5x5 c480 @28", 480, 480, 28, 5, 1, 2, 480, JP_ACT_SILU},
    {"b7 1x1 48->288 @56", 48, 288, 56, 1, 1, 0, 1, JP_ACT_SILU},
    {"b7 1x1 288->48 @56", 288, 48, 56, 1, 1, 0, 1, JP_ACT_NONE},
    {"b7 1x1 224->1344 @14", 224, 1344, 14, 1, 1, 0, 1, JP_ACT_SILU},
    {"d121 3x3 128->32 @56", 128, 32, 56, 3, 1, 1, 1, JP_ACT_NONE},
    {"d121 3x3 128->32 @14", 128, 32, 14, 3, 1, 1, 1, JP_ACT_NONE},
    {"d121 1x1 128->128 @56", 128, 128, 56, 1, 1, 0, 1, JP_ACT_RELU},
    {"d121 1x1 512->128 @28", 512, 128, 28, 1, 1, 0, 1, JP_ACT_RELU},
    {"mv2 1x1 24->144 @56", 24, 144, 56, 1, 1, 0, 1, JP_ACT_RELU6},
    {"mv2 1x1 144->24 @56", 144, 24, 56, 1, 1, 0, 1, JP_ACT_NONE},
    {"mv2 1x1 32->192 @28", 32, 192, 28, 1, 1, 0, 1, JP_ACT_RELU6},
    {"mv2 1x1 192->32 @28", 192, 32, 28, 1, 1, 0, 1, JP_ACT_NONE},
    {"mv2 1x1 96->576 @14", 96, 576, 14, 1, 1, 0, 1, JP_ACT_RELU6},
    {"rgy 1x1 440->440 @7", 440, 440, 7, 1, 1, 0, 1, JP_ACT_RELU},
    {"rgy 1x1 208->208 @14", 208, 208, 14, 1, 1, 0, 1, JP_ACT_RELU},
    {"rgy 1x1 104->104 @28", 104, 104, 28, 1, 1, 0, 1, JP_ACT_RELU},
    {"rgy 1x1 48->48 @56", 48, 48, 56, 1, 1, 0, 1, JP_ACT_RELU},
    {"b7 1x1 1344->224 @14", 1344, 224, 14, 1, 1, 0, 1, JP_ACT_NONE},
    {"b7 1x1 640->3840 @7", 640, 3840, 7, 1, 1, 0, 1, JP_ACT_SILU},
    {"b7 1x1 3840->640 @7", 3840, 640, 7, 1, 1, 0, 1, JP_ACT_NONE},
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *alloc_fill(int64_t n, float lo, float hi, unsigned *seed)
{
    float *p = jp_cpu_alloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        p[i] = lo + (hi - lo) * (float)((*seed >> 8) & 0xffff) / 65536.0f;
    }
    return p;
}

/* --cold: before every timed run, write this much memory, so that weights
 * and activations come from DRAM as in a forward pass through a whole
 * network (the L3 of the machines we use is up to a few hundred MiB). */
static size_t cold_bytes;
static char *cold_buf;

static void evict_caches(void)
{
    if (!cold_buf)
        return;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < cold_bytes; i += 64)
        cold_buf[i] = (char)i;
}

/* Median seconds of kernel k on step over at least min_s of runs; *min_out
 * receives the fastest run (the machine may be shared: the minimum is what
 * the kernel can do, the median what it did). */
static double time_kernel(const jp_kernel *k, const jp_step *step, double min_s, double *min_out)
{
    void *state = NULL;
    jp_error err = {0};
    if (k->prepare && k->prepare(step, &state, &err) != JP_OK) {
        fprintf(stderr, "bench: %s prepare failed: %s\n", k->name, err.msg);
        *min_out = NAN;
        return NAN;
    }
    for (int i = 0; i < 3; i++)
        k->run(state, step, &err);
    enum { MAX_REPS = 2000 };
    static double t[MAX_REPS];
    int reps = 0;
    double start = now_s();
    while (reps < MAX_REPS && (reps < 5 || now_s() - start < min_s)) {
        evict_caches();
        double t0 = now_s();
        k->run(state, step, &err);
        t[reps++] = now_s() - t0;
    }
    if (k->release)
        k->release(state);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *min_out = t[0];
    return t[reps / 2];
}

static void bench_sgemm(int threads)
{
    const int n = 2048;
    unsigned seed = 1;
    float *a = alloc_fill((int64_t)n * n, -1, 1, &seed), *b = alloc_fill((int64_t)n * n, -1, 1, &seed);
    float *c = alloc_fill((int64_t)n * n, 0, 0, &seed);
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 1e9;
    for (int r = 0; r < 10; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    openblas_set_num_threads(1);
    printf("%-36s %-24s %9.3f ms %7.1f GFLOP/s\n", "sgemm 2048^3 (OpenBLAS threaded)", "openblas",
           best * 1e3, 2.0 * n * n * n / best * 1e-9);
    jp_cpu_free(a);
    jp_cpu_free(b);
    jp_cpu_free(c);
}

/* The GEMM microkernel (gemm_tile.h) alone, one thread, its A panel and B
 * panel in L1 (kc = 192) and C rows a 56x56 map apart, against the machine's
 * peak: the ceiling of packed_gemm and winograd, as sgemm 2048^3 is
 * OpenBLAS's. */
static void bench_tile(void)
{
    const int64_t kc = 192, ldc = 56 * 56;
    unsigned seed = 3;
    float *a = alloc_fill(kc * JP_TILE_MR + JP_TILE_PREFETCH_FLOATS, -1, 1, &seed);
    float *b = alloc_fill(kc * JP_TILE_NR, -1, 1, &seed);
    float *c = alloc_fill(JP_TILE_MR * ldc, 0, 0, &seed);
    const int calls = 20000;
    double best = 1e9;
    for (int r = 0; r < 7; r++) {
        double t0 = now_s();
        for (int i = 0; i < calls; i++)
            jp_tile_cols(kc, a, b, JP_TILE_NR, c, ldc, NULL, NULL, i == 0, false, JP_ACT_NONE,
                         JP_TILE_MR, JP_TILE_NR);
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    const double gflops = 2.0 * calls * kc * JP_TILE_MR * JP_TILE_NR / best * 1e-9;
    char name[64], how[256];
    snprintf(name, sizeof name, "microkernel %dx%d, kc %d, in L1", JP_TILE_MR, JP_TILE_NR, (int)kc);
    double peak = 0.0;
    jp_error err;
    omp_set_num_threads(1);
    if (jp_cpu_measure_peak(&peak, how, sizeof how, &err) != JP_OK)
        peak = 0.0;
    printf("%-36s %-24s %9.3f ms %7.1f GFLOP/s (%.0f%% of %s)\n", name, "gemm_tile.h", best * 1e3,
           gflops, peak > 0 ? 100.0 * gflops / peak : 0.0, peak > 0 ? how : "no peak");
    jp_cpu_free(a);
    jp_cpu_free(b);
    jp_cpu_free(c);
}

/* The other ops at the sizes where they cost most in ResNet-50 and
 * EfficientNet-B0, reported in GB/s of tensor traffic (inputs + output):
 * they are memory-bound. */
static void bench_other_ops(const char *filter, double min_s)
{
    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    unsigned seed = 7;
    enum { MAXE = 96 * 112 * 112 };
    float *a = alloc_fill(MAXE, -1, 1, &seed), *b = alloc_fill(MAXE, -1, 1, &seed);
    float *c = alloc_fill(MAXE, 0, 0, &seed);
    float *w = alloc_fill(2048 * 1000, -0.05f, 0.05f, &seed), *bias = alloc_fill(1000, -1, 1, &seed);
    struct {
        const char *name;
        jp_op op;
        jp_activation act;
        int n_in;
        int rank_in0;
        int64_t in0[4], in1[4], out[4];
        int rank_out;
    } cases[] = {
        {"r50 maxpool 3x3 s2 p1 64@112", {.type = JP_OP_MAX_POOL2D}, JP_ACT_NONE, 1, 4,
         {1, 64, 112, 112}, {0}, {1, 64, 56, 56}, 4},
        {"r50 add+relu 256@56", {.type = JP_OP_ADD}, JP_ACT_RELU, 2, 4, {1, 256, 56, 56},
         {1, 256, 56, 56}, {1, 256, 56, 56}, 4},
        {"r50 avgpool global 2048@7", {.type = JP_OP_ADAPTIVE_AVG_POOL2D}, JP_ACT_NONE, 1, 4,
         {1, 2048, 7, 7}, {0}, {1, 2048, 1, 1}, 4},
        {"r50 fc 2048->1000", {.type = JP_OP_LINEAR}, JP_ACT_NONE, 1, 2, {1, 2048}, {0},
         {1, 1000}, 2},
        {"b0 se avgpool 96@112", {.type = JP_OP_ADAPTIVE_AVG_POOL2D}, JP_ACT_NONE, 1, 4,
         {1, 96, 112, 112}, {0}, {1, 96, 1, 1}, 4},
        {"b0 se mul 96@112", {.type = JP_OP_MUL}, JP_ACT_NONE, 2, 4, {1, 96, 1, 1},
         {1, 96, 112, 112}, {1, 96, 112, 112}, 4},
        {"b0 silu 96@112", {.type = JP_OP_SILU}, JP_ACT_NONE, 1, 4, {1, 96, 112, 112}, {0},
         {1, 96, 112, 112}, 4},
        {"b0 sigmoid 96", {.type = JP_OP_SIGMOID}, JP_ACT_NONE, 1, 4, {1, 96, 1, 1}, {0},
         {1, 96, 1, 1}, 4},
    };
    cases[0].op.attrs.max_pool2d = (jp_max_pool2d_attrs){3, 3, 2, 2, 1, 1, 1, 1, false};
    cases[2].op.attrs.adaptive_avg_pool2d = (jp_adaptive_avg_pool2d_attrs){1, 1};
    cases[3].op.attrs.linear = (jp_linear_attrs){2048, 1000, true};
    cases[3].op.params[0] = (jp_param){.name = "w", .rank = 2, .dims = {1000, 2048}, .data = w};
    cases[3].op.params[1] = (jp_param){.name = "b", .rank = 1, .dims = {1000}, .data = bias};
    cases[3].op.n_params = 2;
    cases[4].op.attrs.adaptive_avg_pool2d = (jp_adaptive_avg_pool2d_attrs){1, 1};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (filter && !strstr(cases[i].name, filter))
            continue;
        cases[i].op.name = (char *)cases[i].name;
        jp_step step = {.op = &cases[i].op, .act = cases[i].act, .n_in = cases[i].n_in};
        step.in[0] = (jp_tensor){.rank = cases[i].rank_in0, .data = a};
        memcpy(step.in[0].dims, cases[i].in0, sizeof cases[i].in0);
        step.in[1] = (jp_tensor){.rank = 4, .data = b};
        memcpy(step.in[1].dims, cases[i].in1, sizeof cases[i].in1);
        step.out = (jp_tensor){.rank = cases[i].rank_out, .data = c};
        memcpy(step.out.dims, cases[i].out, sizeof cases[i].out);
        double bytes = 4.0 * (double)jp_tensor_numel(&step.out);
        for (int k = 0; k < step.n_in; k++)
            bytes += 4.0 * (double)jp_tensor_numel(&step.in[k]);
        if (cases[i].op.type == JP_OP_LINEAR)
            bytes += 4.0 * 2048 * 1000;
        for (size_t k = 0; k < count; k++) {
            if (all[k]->op_type != cases[i].op.type || !all[k]->supports(&step))
                continue;
            double t_min = NAN;
            double t = time_kernel(all[k], &step, min_s, &t_min);
            printf("%-36s %-24s %9.3f ms %7.1f GB/s    %9.3f ms %7.1f GB/s\n", cases[i].name,
                   all[k]->name, t * 1e3, bytes / t * 1e-9, t_min * 1e3, bytes / t_min * 1e-9);
            fflush(stdout);
        }
    }
    jp_cpu_free(a);
    jp_cpu_free(b);
    jp_cpu_free(c);
    jp_cpu_free(w);
    jp_cpu_free(bias);
}

int main(int argc, char **argv)
{
    int threads = 2;
    double min_ms = 200.0;
    const char *filter = NULL;
    bool with_ref = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc)
            min_ms = atof(argv[++i]);
        else if (strcmp(argv[i], "--reference") == 0)
            with_ref = true;
        else if (strcmp(argv[i], "--cold") == 0 && i + 1 < argc)
            cold_bytes = (size_t)atof(argv[++i]) << 20;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--filter TEXT] [--min-ms MS] [--reference] "
                    "[--cold MIB]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    if (cold_bytes) {
        cold_buf = malloc(cold_bytes);
        if (!cold_buf) {
            fprintf(stderr, "bench: cannot allocate --cold buffer\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    openblas_set_num_threads(1);
    char cpu[256];
    jp_cpu_backend.describe(cpu, sizeof cpu);
    printf("# %s, %d threads\n", cpu, threads);
    printf("%-36s %-24s %12s %15s %12s %15s\n", "layer", "kernel", "median", "rate", "min",
           "best rate");
    if (!filter || strstr("sgemm", filter))
        bench_sgemm(threads);
    if (!filter || strstr("microkernel", filter)) {
        bench_tile();
        omp_set_num_threads(threads);
    }

    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const bench_layer *L = &layers[li];
        if (filter && !strstr(L->name, filter))
            continue;
        unsigned seed = 42;
        jp_op op = {.name = (char *)L->name, .type = JP_OP_CONV2D, .n_inputs = 1};
        op.attrs.conv2d = (jp_conv2d_attrs){L->c_in, L->c_out, L->k, L->k, L->s, L->s, L->p,
                                            L->p, 1, 1, L->groups, false};
        const int64_t cg = L->c_in / L->groups;
        const int64_t w_dims[4] = {L->c_out, cg, L->k, L->k}, c_dims[1] = {L->c_out};
        float *wt = alloc_fill(L->c_out * cg * L->k * L->k, -0.1f, 0.1f, &seed);
        op.params[0] = (jp_param){.name = "w", .rank = 4, .data = wt};
        memcpy(op.params[0].dims, w_dims, sizeof w_dims);
        op.n_params = 1;
        jp_op bn = {.name = "bn", .type = JP_OP_BATCH_NORM2D};
        bn.attrs.batch_norm2d = (jp_batch_norm2d_attrs){L->c_out, 1e-5f};
        float *bnp[4];
        for (int i = 0; i < 4; i++) {
            bnp[i] = alloc_fill(L->c_out, 0.5f, 1.5f, &seed);
            bn.params[i] = (jp_param){.name = "bn.p", .rank = 1, .data = bnp[i]};
            memcpy(bn.params[i].dims, c_dims, sizeof c_dims);
        }
        bn.n_params = 4;
        const int64_t o = jp_cpu_out_size(L->hw, L->k, L->s, L->p, 1);
        float *x = alloc_fill((int64_t)L->c_in * L->hw * L->hw, -1, 1, &seed);
        float *y = alloc_fill((int64_t)L->c_out * o * o, 0, 0, &seed);
        jp_step step = {.op = &op, .fused_bn = &bn, .act = L->act, .n_in = 1};
        step.in[0] = (jp_tensor){.rank = 4, .dims = {1, L->c_in, L->hw, L->hw}, .data = x};
        step.out = (jp_tensor){.rank = 4, .dims = {1, L->c_out, o, o}, .data = y};
        const double flops = 2.0 * (double)L->c_out * o * o * cg * L->k * L->k;
        for (size_t k = 0; k < count; k++) {
            const jp_kernel *kern = all[k];
            if (kern->op_type != JP_OP_CONV2D || !kern->supports(&step))
                continue;
            if (kern->is_reference && !with_ref)
                continue;
            double t_min = NAN;
            double t = time_kernel(kern, &step, min_ms * 1e-3, &t_min);
            printf("%-36s %-24s %9.3f ms %7.1f GFLOP/s %9.3f ms %7.1f GFLOP/s\n", L->name,
                   kern->name, t * 1e3, flops / t * 1e-9, t_min * 1e3, flops / t_min * 1e-9);
            fflush(stdout);
        }
        jp_cpu_free(wt);
        for (int i = 0; i < 4; i++)
            jp_cpu_free(bnp[i]);
        jp_cpu_free(x);
        jp_cpu_free(y);
    }
    bench_other_ops(filter, min_ms * 1e-3);
    free(cold_buf);
    return 0;
}
