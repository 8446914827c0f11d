/*
 * cpu_kernels.h: the CPU backend and its kernels, as the registry sees them.
 *
 * Every kernel in kernels/cpu/ is a `const jp_kernel` listed by
 * jp_cpu_kernels(); the registry (kernels/registry.c) merges that list with
 * the other backends'.  Names are "cpu/<op>/<impl>" and stable.
 *
 * Threads: the kernels parallelise with OpenMP (omp_get_max_threads(), read
 * in prepare to size per-thread workspaces) and call OpenBLAS from inside
 * their parallel loops, so OpenBLAS must run single-threaded: the backend's
 * set_threads (cpu_threads.c) sets both, and must be called before the
 * kernels are prepared.  Without it the two thread pools oversubscribe the
 * cores (AlexNet's classifier ran 2x slower).
 */
#ifndef JP_CPU_KERNELS_H
#define JP_CPU_KERNELS_H

#include <stddef.h>

#include "../jp_kernel.h"

/* Every CPU kernel of this build, in a fixed order (references first for each
 * op); *count receives the number.  The array is static: never freed. */
const jp_kernel *const *jp_cpu_kernels(size_t *count);

/* Host memory: 64-byte aligned malloc; upload/download are memcpy;
 * synchronize does nothing; set_threads as above. */
extern const jp_backend jp_cpu_backend;

#endif /* JP_CPU_KERNELS_H */
