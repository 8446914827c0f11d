/*
 * cpu_kernels.h: the CPU backend and its kernels, as the registry sees them.
 *
 * Every kernel in kernels/cpu/ is a `const jp_kernel` listed by
 * jp_cpu_kernels(); the registry (kernels/registry.c) merges that list with
 * the other backends'.  Names are "cpu/<op>/<impl>" and stable.
 *
 * Threads: the kernels parallelise with OpenMP (omp_get_max_threads()) and
 * call OpenBLAS from inside their parallel loops; the caller must set
 * OpenBLAS to one thread (openblas_set_num_threads(1)) before running them,
 * or the two thread pools oversubscribe the cores.
 */
#ifndef JP_CPU_KERNELS_H
#define JP_CPU_KERNELS_H

#include <stddef.h>

#include "../jp_kernel.h"

/* Every CPU kernel of this build, in a fixed order (references first for each
 * op); *count receives the number.  The array is static: never freed. */
const jp_kernel *const *jp_cpu_kernels(size_t *count);

/* Host memory: 64-byte aligned malloc; upload/download are memcpy;
 * synchronize does nothing. */
extern const jp_backend jp_cpu_backend;

#endif /* JP_CPU_KERNELS_H */
