/*
 * registry.c: every kernel and backend of this build, in one table.
 *
 * This is the only file outside kernels/cuda/ that knows whether the build
 * has CUDA (JP_HAVE_CUDA, set by the Makefile for this file alone).
 */
#include "jp_kernel.h"

#include <pthread.h>
#include <string.h>

#include "cpu/cpu_kernels.h"
#ifdef JP_HAVE_CUDA
#include "cuda/cuda_kernels.h"
#endif

#define JP_MAX_KERNELS 128

typedef struct registry {
    size_t count;
    const jp_kernel *kernels[JP_MAX_KERNELS];
} registry;

/* Built once, on first use, from the backends' own lists; read-only after. */
static registry reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void registry_fill(void)
{
    size_t n = 0;
    const jp_kernel *const *cpu = jp_cpu_kernels(&n);
    for (size_t i = 0; i < n && reg.count < JP_MAX_KERNELS; i++)
        reg.kernels[reg.count++] = cpu[i];
#ifdef JP_HAVE_CUDA
    const jp_kernel *const *cuda = jp_cuda_kernels(&n);
    for (size_t i = 0; i < n && reg.count < JP_MAX_KERNELS; i++)
        reg.kernels[reg.count++] = cuda[i];
#endif
}

static void registry_build(void) { pthread_once(&reg_once, registry_fill); }

const jp_kernel *const *jp_kernels_all(size_t *count)
{
    registry_build();
    *count = reg.count;
    return reg.kernels;
}

const jp_kernel *jp_kernel_find(const char *name)
{
    registry_build();
    for (size_t i = 0; i < reg.count; i++)
        if (strcmp(reg.kernels[i]->name, name) == 0)
            return reg.kernels[i];
    return NULL;
}

const jp_kernel *jp_kernel_choose(jp_device device, const jp_step *step)
{
    registry_build();
    const jp_kernel *best = NULL;
    int best_priority = 0;
    for (size_t i = 0; i < reg.count; i++) {
        const jp_kernel *k = reg.kernels[i];
        if (k->device != device || k->op_type != step->op->type || !k->supports(step))
            continue;
        int priority = k->priority_for ? k->priority_for(step) : k->priority;
        if (!best || priority > best_priority)
            best = k, best_priority = priority;
    }
    return best;
}

const jp_kernel *jp_kernel_reference(jp_op_type type)
{
    registry_build();
    for (size_t i = 0; i < reg.count; i++) {
        const jp_kernel *k = reg.kernels[i];
        if (k->device == JP_DEVICE_CPU && k->op_type == type && k->is_reference)
            return k;
    }
    return NULL;
}

const jp_backend *jp_backend_get(jp_device device)
{
    switch (device) {
    case JP_DEVICE_CPU:
        return &jp_cpu_backend;
#ifdef JP_HAVE_CUDA
    case JP_DEVICE_CUDA:
        return &jp_cuda_backend;
#endif
    default:
        return NULL;
    }
}

void jp_kernel_describe(const jp_kernel *k, const void *state, char *buf, size_t buf_bytes)
{
    if (!buf || buf_bytes == 0)
        return;
    buf[0] = '\0';
    if (k && k->describe)
        k->describe(state, buf, buf_bytes);
}
