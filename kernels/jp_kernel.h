/*
 * jp_kernel.h: the interface every op implementation (kernel) and every
 * backend offers to the engine.
 *
 * A kernel computes one step: one op, or a convolution / linear with a
 * batch-norm folded in and an activation applied in the same pass (fusion
 * happens only inside a layer; see DESIGN.md).  Lifecycle:
 *   supports  can it run this step?                     (pure, cheap)
 *   prepare   allocate, repack/fold weights, create descriptors, choose
 *             algorithms; never timed                  (optional)
 *   run       only computes: no allocation, no I/O, no printing, no timing
 *   release   frees what prepare made                  (optional)
 *   describe  the choices prepare made, one line        (optional)
 * Kernels are registered by a stable name "<device>/<op>/<impl>"
 * ("cpu/conv2d/im2col_blas"); datasets and plans are keyed by it.
 *
 * Threads: CPU kernels parallelise their own loops with OpenMP
 * (omp_get_max_threads(), set once by the CLI's --threads) and call OpenBLAS
 * single-threaded from inside those loops, so that one thread pool does all
 * the work.
 */
#ifndef JP_KERNEL_H
#define JP_KERNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "../engine/jp_error.h"
#include "../engine/jp_graph.h"
#include "../engine/jp_ops.h"
#include "../engine/jp_tensor.h"

/* One kernel call.  in[] and out are on the kernel's device and have the
 * shapes jp_graph_infer_shapes gave the op (out: of the last fused op).
 * Parameters (op->params[i].data, fused_bn->params[i].data) are host
 * pointers into the weight mapping; a device kernel uploads what it needs in
 * prepare.  A mul step's out may be its in[1] (the executor runs it in place
 * when nothing reads in[1] later): mul kernels write each element only after
 * reading it. */
typedef struct jp_step {
    const jp_op *op;          /* the op computed                           */
    const jp_op *fused_bn;    /* NULL, or a batch_norm2d applied to op's output */
    const jp_op *fused_add;   /* NULL, or an add of in[1] (the residual, out's
                                 shape) after the batch-norm, before act: a
                                 ResNet block's last convolution          */
    jp_activation act;        /* applied last (jp_graph.h: JP_ACTIVATIONS) */
    int n_in;
    jp_tensor in[JP_MAX_OP_INPUTS];
    jp_tensor out;
    /* Nothing reads the parameters after prepare (the executor's
     * release_params, for a kernel with params_copied): prepare may give
     * their pages back as soon as it has copied them (jp_weights_give_back),
     * so that the largest original and its copies are not all resident at
     * once. */
    bool give_back_params;
} jp_step;

typedef struct jp_kernel {
    const char *name;         /* "cpu/conv2d/im2col_blas"                  */
    jp_device device;
    jp_op_type op_type;
    bool is_reference;        /* the naive implementation others are tested against */
    int priority;             /* the default choice is the supporting kernel with the highest */
    /* Can this kernel compute step (shapes, attributes, fusion)? Required. */
    bool (*supports)(const jp_step *step);
    /* Optional.  *state is passed to run and release (may stay NULL). */
    jp_status (*prepare)(const jp_step *step, void **state, jp_error *err);
    /* Required.  Reads step->in[], writes step->out. */
    jp_status (*run)(void *state, const jp_step *step, jp_error *err);
    /* Optional. */
    void (*release)(void *state);
    /* Optional: one line saying what prepare chose for this step, for
     * `jplprof layers --device`, compare and the manifest ("algo
     * IMPLICIT_PRECOMP_GEMM, workspace 0 B, bias+relu fused").  state is what
     * this kernel's prepare returned; buf always gets a NUL-terminated
     * string ("" when there is nothing to say). */
    void (*describe)(const void *state, char *buf, size_t buf_bytes);
    /* Optional: this kernel's priority for step, instead of `priority`, for
     * a kernel that is the fastest only on some shapes (measured: the
     * kernel's file says where).  Pure and cheap, like supports. */
    int (*priority_for)(const jp_step *step);
    /* Optional: what prepare allocated for step, in bytes: *prepared_bytes
     * the weights it made (folded, packed, Winograd-transformed), and
     * *workspace_bytes the rest (im2col columns, padded copies, per-thread
     * buffers).  For `jplprof infer --memory`. */
    void (*memory)(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes);
    /* true when run never reads the step's parameters (op->params[].data,
     * fused_bn->params[].data), only what prepare made of them: the
     * executor may then give the originals' pages back
     * (jp_exec_release_params).  Leave false when unsure. */
    bool params_copied;
    /* Optional, with memory: hands the kernel a buffer of at least the
     * *workspace_bytes its memory slot reports, 64-byte aligned, on the
     * kernel's device, shared with the other steps of the executor (they run
     * one at a time), for a workspace that holds nothing from one run to the
     * next; the kernel frees its own and uses this one until release (which
     * must not free it).  Called after prepare, before any run, and again
     * whenever the executor moves the buffer; its contents are whatever the
     * other steps left. */
    void (*bind_workspace)(void *state, void *workspace);
} jp_kernel;

/* k->describe(state) into buf, or "" when k has no describe slot. */
void jp_kernel_describe(const jp_kernel *k, const void *state, char *buf, size_t buf_bytes);

/* A backend: memory and synchronisation for one device.  The CPU backend is
 * always present; the CUDA one where its module (jplprof-cuda.so, loaded on
 * demand: kernels/registry.c) was built and loads, and its init succeeds on
 * machines with a GPU. */
typedef struct jp_backend {
    const char *name;         /* "cpu", "cuda"                             */
    jp_device device;
    /* Optional: makes the device ready (creates handles); fails with a
     * message that says what is missing (no GPU, no driver). */
    jp_status (*init)(jp_error *err);
    void (*shutdown)(void);   /* optional */
    jp_status (*alloc)(size_t bytes, void **ptr, jp_error *err);
    void (*free)(void *ptr);
    jp_status (*upload)(void *dst_device, const void *src_host, size_t bytes, jp_error *err);
    jp_status (*download)(void *dst_host, const void *src_device, size_t bytes, jp_error *err);
    /* Waits until all work issued so far has finished (no-op on the CPU);
     * the executor calls it before every clock read. */
    jp_status (*synchronize)(jp_error *err);
    /* Optional: one line describing the device ("NVIDIA H100 80GB HBM3, cuDNN 9.1.0"). */
    void (*describe)(char *buf, size_t buf_bytes);
    /* Optional: the number of host threads this backend's kernels use
     * (the CLI's --threads). */
    jp_status (*set_threads)(int n_threads, jp_error *err);
    /* Optional: measures the device's peak FP32 multiply-add rate, GFLOP/s
     * (2 per FMA), with the threads set_threads gave (CPU) or the whole GPU,
     * and says how in `how` ("register-only AVX-512 FMA loop, 16
     * independent chains, 2 threads, best of 5 trials of 9 ms").  Takes a
     * fraction of a second; never call it inside a timed region. */
    jp_status (*measure_peak)(double *gflops, char *how, size_t how_bytes, jp_error *err);
} jp_backend;

/* The registry (kernels/registry.c): every kernel and backend of this build. */
const jp_kernel *const *jp_kernels_all(size_t *count);
const jp_kernel *jp_kernel_find(const char *name);
/* The default kernel for step on device: the supporting one of highest
 * priority (priority_for(step) where a kernel has it); NULL when none
 * supports it. */
const jp_kernel *jp_kernel_choose(jp_device device, const jp_step *step);
/* The reference kernel for step's op type on the CPU. */
const jp_kernel *jp_kernel_reference(jp_op_type type);
/* The backend for device, loading the CUDA module the first time cuda is
 * asked for; fails (JP_ERR_UNSUPPORTED) with a message that says where the
 * module was looked for and how to build it, or why it did not load. */
jp_status jp_backend_open(jp_device device, const jp_backend **backend, jp_error *err);
/* jp_backend_open without the reason: NULL when there is no such backend. */
const jp_backend *jp_backend_get(jp_device device);

/* What a module and the binary loading it must agree on: the sizes of the
 * structs passed between them.  The CUDA module exports it as
 * jp_cuda_module_abi; the registry refuses a module built with other
 * structs (a stale jplprof-cuda.so beside a newer binary). */
#define JP_MODULE_ABI \
    ((size_t)sizeof(jp_kernel) << 48 | (size_t)sizeof(jp_backend) << 32 | \
     (size_t)sizeof(jp_step) << 16 | (size_t)sizeof(jp_op))

#endif /* JP_KERNEL_H */
