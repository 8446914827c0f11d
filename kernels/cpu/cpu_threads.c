/*
 * cpu_threads.c: the one --threads setting for the CPU backend.
 *
 * Our kernels parallelise with OpenMP and call OpenBLAS from inside their
 * parallel loops, so OpenBLAS itself must stay single-threaded: two thread
 * pools on the same cores would oversubscribe them.
 */
#include <cblas.h>
#include <omp.h>

#include "cpu_threads.h"

jp_status jp_cpu_set_threads(int n_threads, jp_error *err)
{
    if (n_threads < 1)
        return jp_error_set(err, JP_ERR_ARG, "--threads %d: must be at least 1", n_threads);
    openblas_set_num_threads(1);
    omp_set_num_threads(n_threads);
    return JP_OK;
}
