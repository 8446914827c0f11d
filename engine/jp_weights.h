/*
 * jp_weights.h: a model's parameters, from a converted safetensors file or
 * synthesized (DESIGN.md, "No weights file").
 *
 * Loading binds every jp_param of the graph to a tensor of the mapped file,
 * checking that each one is present with the expected shape and that the
 * file holds nothing else.  Synthetic weights are deterministic for a seed:
 * He-normal convolution and linear weights (std = sqrt(2 / fan_in)), zero
 * biases, batch-norm gamma 1 and beta 0, and running statistics calibrated on
 * an input (jp_weights_calibrate) so that every batch-norm's output has zero
 * mean and unit variance per channel on that input: activations stay near
 * unit variance and never overflow.  Latency and power are representative
 * with synthetic weights; class predictions are not.
 */
#ifndef JP_WEIGHTS_H
#define JP_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "jp_error.h"
#include "jp_graph.h"
#include "jp_safetensors.h"

typedef struct jp_weights {
    bool synthetic;
    uint64_t seed;             /* synthetic only                             */
    char *path;                /* the file (loaded only)                     */
    jp_st_file file;           /* the mapping that owns loaded parameters    */
    float *synthetic_data;     /* owns synthetic parameters                  */
} jp_weights;

/* Maps path and binds every parameter of graph to it.  Errors (each naming
 * the file and tensor): a missing tensor, a wrong shape, a tensor the model
 * does not have, and everything jp_st_open refuses.  The graph's params point
 * into w until jp_weights_free. */
jp_status jp_weights_load(jp_weights *w, jp_graph *graph, const char *path, jp_error *err);

/* Synthesizes every parameter of graph from seed (batch-norm statistics left
 * at mean 0, variance 1 until jp_weights_calibrate). */
jp_status jp_weights_synthesize(jp_weights *w, jp_graph *graph, uint64_t seed, jp_error *err);

/* Synthetic weights only: runs graph (shapes inferred for input) op by op on
 * the CPU, setting each batch-norm's running mean and variance to the
 * per-channel statistics of its input before it runs. */
jp_status jp_weights_calibrate(jp_weights *w, jp_graph *graph, const float *input, jp_error *err);

void jp_weights_free(jp_weights *w);

/* Gives the whole pages inside [data, data + bytes) back to the kernel
 * (madvise MADV_DONTNEED), for parameters nothing will read again: a mapped
 * file's pages fault back in from the file if they are read after all,
 * anonymous ones (synthetic weights) read as zeros.  Returns the bytes given
 * back. */
size_t jp_weights_give_back(const void *data, size_t bytes);

#endif /* JP_WEIGHTS_H */
