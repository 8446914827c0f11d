/* cpu_threads.h: host thread count of the CPU kernels (see cpu_threads.c). */
#ifndef JP_CPU_THREADS_H
#define JP_CPU_THREADS_H

#include "../../engine/jp_error.h"

/* OpenMP threads for our loops = n_threads; OpenBLAS = 1 (called inside them). */
jp_status jp_cpu_set_threads(int n_threads, jp_error *err);

#endif
