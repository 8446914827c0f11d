/*
 * cpu_kernels.c: the CPU backend (host memory) and the list of CPU kernels.
 */
#include "cpu_kernels.h"

#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_threads.h"

/* Every CPU kernel, each defined in its own file as `const jp_kernel
 * jp_cpu_<name>`: X(name).  References first for each op.  A new kernel is
 * its file and one entry here; tests/test_cpu_kernels.c iterates this list. */
#define CPU_KERNELS(X)                                                                                        \
    X(conv2d_reference) X(conv2d_im2col_blas) X(conv2d_gemm_1x1) X(conv2d_packed_gemm) X(conv2d_winograd)     \
    X(conv2d_depthwise) X(conv2d_grouped) X(conv2d_direct)                                                                  \
    X(batch_norm2d_reference)                                                                                 \
    X(relu_reference) X(silu_reference) X(sigmoid_reference) X(relu6_reference) X(hardswish_reference)       \
    X(hardsigmoid_reference)                                                                                  \
    X(max_pool2d_reference) X(max_pool2d_separable) X(avg_pool2d_reference)                                   \
    X(adaptive_avg_pool2d_reference)                                                                          \
    X(mean_reference) X(concat_reference)                                                                     \
    X(linear_reference) X(linear_blas) X(linear_gemv)                                                         \
    X(flatten_reference) X(add_reference) X(mul_reference) X(dropout_reference)                              \
    X(stochastic_depth_reference)                                                                             \
    X(channel_affine_reference)                                                                               \
    X(gelu_reference) X(layer_norm_reference) X(layer_norm_fast) X(permute_reference) X(permute_transpose)    \
    X(layer_scale_reference)                                                                                  \
    X(chunk_reference) X(channel_shuffle_reference)

#define CPU_KERNEL_DECLARE_(name) extern const jp_kernel jp_cpu_##name;
CPU_KERNELS(CPU_KERNEL_DECLARE_)
#undef CPU_KERNEL_DECLARE_

static const jp_kernel *const cpu_kernels[] = {
#define CPU_KERNEL_ENTRY_(name) &jp_cpu_##name,
    CPU_KERNELS(CPU_KERNEL_ENTRY_)
#undef CPU_KERNEL_ENTRY_
};

const jp_kernel *const *jp_cpu_kernels(size_t *count)
{
    if (count)
        *count = sizeof cpu_kernels / sizeof cpu_kernels[0];
    return cpu_kernels;
}

static jp_status cpu_alloc(size_t bytes, void **ptr, jp_error *err)
{
    *ptr = jp_cpu_alloc(bytes ? bytes : 1);
    if (!*ptr)
        return jp_error_set(err, JP_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    return JP_OK;
}

static void cpu_free(void *ptr) { jp_cpu_free(ptr); }

static jp_status cpu_copy(void *dst, const void *src, size_t bytes, jp_error *err)
{
    (void)err;
    if (bytes && dst != src)
        memmove(dst, src, bytes);
    return JP_OK;
}

static jp_status cpu_synchronize(jp_error *err)
{
    (void)err;
    return JP_OK;
}

/* "Intel(R) Xeon(R) ..., 2 threads" from /proc/cpuinfo where it exists. */
static void cpu_describe(char *buf, size_t buf_bytes)
{
    if (!buf || buf_bytes == 0)
        return;
    snprintf(buf, buf_bytes, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                snprintf(buf, buf_bytes, "%.*s", (int)strcspn(colon, "\n"), colon);
            }
            break;
        }
    }
    fclose(f);
}

const jp_backend jp_cpu_backend = {
    .name = "cpu",
    .device = JP_DEVICE_CPU,
    .init = NULL,
    .shutdown = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .synchronize = cpu_synchronize,
    .describe = cpu_describe,
    /* OpenMP for our loops, OpenBLAS single-threaded inside them. */
    .set_threads = jp_cpu_set_threads,
    .measure_peak = jp_cpu_measure_peak,
};
