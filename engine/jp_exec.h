/*
 * jp_exec.h: the executor: runs a graph, layer by layer or op by op, on one
 * backend, with instrumentation hooks around every layer and every step.
 *
 * Build: each op (or, with fusion, a convolution plus the batch-norm and
 * activation that follow it inside the same layer, an identity at inference
 * after them (stochastic depth, dropout), and a residual add with its ReLU
 * where a kernel of the device takes it) becomes a step
 * with its kernel; values get buffers in one arena on the device; kernels are
 * prepared once.  Run: a whole forward pass, or one layer / one step alone on
 * the inputs the last forward pass left (the seed's isolated-layer method).
 *
 * Memory: a value read outside its own layer (a layer's output, the logits)
 * keeps its own buffer for the executor's lifetime, so any layer can be
 * re-run alone.  Values used only inside their layer share a scratch region
 * by lifetime, unless keep_all_values (op granularity, op dumps) asks each to
 * keep its own buffer.  share_layer_outputs lets layer outputs share it too
 * (whole passes only: `infer`).
 *
 * The executor never times: hooks do.  Before each hook call it synchronises
 * the backend, so a hook that reads a clock measures finished work.
 */
#ifndef JP_EXEC_H
#define JP_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "jp_error.h"
#include "jp_graph.h"
#include "jp_kernel.h"

typedef struct jp_exec_options {
    jp_device device;
    bool fuse;            /* fold batch-norm + activation into convolutions within a layer */
    bool keep_all_values; /* every op output keeps its own buffer           */
    /* Layer outputs share the arena by lifetime as the values inside a layer
     * do (issue 16: the arena held every layer's output, 26.5 MiB for
     * squeezenet1_0).  Then only whole passes run (jp_exec_run_layer and
     * jp_exec_run_step refuse), and after a pass only the graph output is
     * sure to be intact: read a layer's output from an after_layer hook. */
    bool share_layer_outputs;
    /* Give back each parameter's pages as soon as its step's kernel has made
     * its own copy (kernel->params_copied): madvise MADV_DONTNEED on the
     * page-aligned inside of the tensor, right after that step's prepare, so
     * that the original and the prepared copy never coexist for long.  A
     * mapped weights file keeps its contents (a later read faults them back
     * in from the file); synthetic weights (anonymous memory) read as zeros
     * after, so ask for it only when nothing else will read them: not when
     * another executor will be built on the same weights, nor before hashing
     * them. */
    bool release_params;
    /* Choose the kernels but prepare none: the caller prepares each step
     * just before it runs and releases it after (jp_exec_prepare_step,
     * jp_exec_release_step), so that one step's prepared weights exist at a
     * time (synthetic weights' calibration walks the graph once). */
    bool defer_prepare;
    /* Optional: the kernel to use per op name ("layer1.0.conv1" ->
     * "cpu/conv2d/im2col_blas"); NULL picks the default (highest priority). */
    const char *(*kernel_for_op)(void *ctx, const jp_op *op);
    void *kernel_for_op_ctx;
} jp_exec_options;

typedef struct jp_exec_step {
    jp_step step;              /* what the kernel computes (pointers into the arena) */
    const jp_kernel *kernel;
    void *state;               /* from kernel->prepare                      */
    bool prepared;
    int first_op, n_ops;       /* the ops this step covers (fused: 2 to 5)  */
    int residual;              /* step.fused_add: the value added (in[1]); else -1 */
    int layer;
} jp_exec_step;

/* Instrumentation.  Every slot is optional; a hook that fails stops the run
 * with its error.  `layer` indexes graph->layers; `step` indexes exec->steps. */
typedef struct jp_exec_hooks {
    void *ctx;
    jp_status (*before_layer)(void *ctx, int layer, jp_error *err);
    jp_status (*after_layer)(void *ctx, int layer, jp_error *err);
    jp_status (*before_step)(void *ctx, int step, jp_error *err);
    jp_status (*after_step)(void *ctx, int step, jp_error *err);
} jp_exec_hooks;

typedef struct jp_exec {
    const jp_graph *graph;     /* borrowed; shapes inferred before build   */
    const jp_backend *backend;
    jp_exec_options options;
    int n_steps;
    jp_exec_step *steps;       /* in execution order                        */
    int *layer_first_step;     /* [n_layers + 1]: steps of layer l are
                                  layer_first_step[l] .. layer_first_step[l+1]-1 */
    void *arena;               /* device memory for every value             */
    size_t arena_bytes;
    float *input;              /* [n, 3, h, w] in the arena                 */
    float **value_data;        /* [n_ops]: op i's output, NULL when fused away */
    size_t released_param_bytes; /* options.release_params: pages given back */
    void *workspace;           /* shared by the kernels with bind_workspace */
    size_t workspace_bytes;
} jp_exec;

/* Builds the executor for graph (shapes already inferred, parameters bound)
 * on options->device: plans memory, chooses and prepares every kernel.  The
 * backend must be initialised.  On failure nothing is left allocated. */
jp_status jp_exec_build(jp_exec *exec, const jp_graph *graph, const jp_exec_options *options, jp_error *err);
void jp_exec_free(jp_exec *exec);

/* Copies a host tensor of the graph's input shape into the executor. */
jp_status jp_exec_set_input(jp_exec *exec, const float *host_input, jp_error *err);

/* Runs every step in order, calling the hooks (may be NULL). */
jp_status jp_exec_forward(jp_exec *exec, const jp_exec_hooks *hooks, jp_error *err);
/* The same, up to step last_step only (its layer's after_layer hook is not
 * called unless it is the layer's last step): for values early in the pass. */
jp_status jp_exec_forward_to(jp_exec *exec, const jp_exec_hooks *hooks, int last_step, jp_error *err);

/* Runs the steps of one layer / one step alone, without hooks, on the inputs
 * the last forward pass left.  For repeated timing. */
jp_status jp_exec_run_layer(jp_exec *exec, int layer, jp_error *err);
jp_status jp_exec_run_step(jp_exec *exec, int step, jp_error *err);

/* defer_prepare: prepares / releases one step's kernel (prepare of a step
 * already prepared does nothing). */
jp_status jp_exec_prepare_step(jp_exec *exec, int step, jp_error *err);
void jp_exec_release_step(jp_exec *exec, int step);

/* The value op `op` produced (device memory); data NULL if it was fused away. */
jp_tensor jp_exec_value(const jp_exec *exec, int op);

/* Copies value `op` to host memory (numel floats). */
jp_status jp_exec_download(const jp_exec *exec, int op, float *host, jp_error *err);

/* Where an executor's memory goes (`jplprof infer --memory`), in bytes. */
typedef struct jp_exec_memory {
    size_t arena_bytes;        /* every activation: exec->arena_bytes      */
    size_t prepared_bytes;     /* what the kernels made of the weights (folded,
                                  packed, Winograd-transformed)            */
    size_t workspace_bytes;    /* the kernels' other buffers (one shared
                                  buffer for those with bind_workspace)    */
    size_t largest_pair_bytes; /* the largest step's inputs + output       */
    size_t in_place_param_bytes; /* parameters whose kernel reads them where
                                  they are (params_copied false): kept     */
    int n_unaccounted;         /* steps whose kernel prepares but cannot
                                  say how much (no memory slot)            */
} jp_exec_memory;
void jp_exec_memory_of(const jp_exec *exec, jp_exec_memory *m);


#endif /* JP_EXEC_H */
