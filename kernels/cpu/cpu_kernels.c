/*
 * cpu_kernels.c: the CPU backend (host memory) and the list of CPU kernels.
 */
#include "cpu_kernels.h"

#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_threads.h"

static const jp_kernel *const cpu_kernels[] = {
    &jp_cpu_conv2d_reference,
    &jp_cpu_conv2d_im2col_blas,
    &jp_cpu_conv2d_gemm_1x1,
    &jp_cpu_conv2d_packed_gemm,
    &jp_cpu_conv2d_winograd,
    &jp_cpu_conv2d_depthwise,
    &jp_cpu_conv2d_direct,
    &jp_cpu_batch_norm2d_reference,
    &jp_cpu_relu_reference,
    &jp_cpu_silu_reference,
    &jp_cpu_sigmoid_reference,
    &jp_cpu_max_pool2d_reference,
    &jp_cpu_max_pool2d_separable,
    &jp_cpu_adaptive_avg_pool2d_reference,
    &jp_cpu_linear_reference,
    &jp_cpu_linear_blas,
    &jp_cpu_linear_gemv,
    &jp_cpu_flatten_reference,
    &jp_cpu_add_reference,
    &jp_cpu_mul_reference,
    &jp_cpu_dropout_reference,
    &jp_cpu_stochastic_depth_reference,
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
