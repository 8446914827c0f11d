/*
 * jp_ops.h: one descriptor per op type, the only place that knows what an op
 * of the model description is.
 *
 * The graph reader (jp_graph.c) checks an op's inputs, attributes and
 * parameters against its descriptor and derives its output shape and MACs
 * with it; the executor asks it whether an op is an activation that a
 * kernel may fuse, or an identity at inference.  A new standalone op is its
 * enum value (jp_graph.h), its attributes struct where it has attributes, its
 * entry in jp_ops.c, its kernels (kernels/<backend>/, listed in the
 * backend's kernel list) and its tests.
 */
#ifndef JP_OPS_H
#define JP_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jp_error.h"
#include "jp_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The attribute parsers' arguments (jp_json.h; cJSON's object), declared
 * only, so that kernels (C and CUDA C++) can include this header without
 * cJSON's. */
struct cJSON;
typedef struct jp_json_reader jp_json_reader;

typedef struct jp_shape {
    int rank;
    int64_t dims[JP_MAX_RANK];
} jp_shape;

typedef struct jp_op_desc {
    const char *name;             /* the JSON "type"; stable (datasets use it) */
    int min_inputs, max_inputs;   /* how many values the op reads            */
    /* The keys its "attrs" object may have, NULL-terminated (checked by the
     * reader: unknown and duplicate keys are errors). */
    const char *const *attr_keys;
    /* Optional: fills op->attrs from attrs (its keys already checked);
     * errors name r->file and path.attrs.<key>. */
    jp_status (*parse_attrs)(jp_json_reader *r, const struct cJSON *attrs, const char *path, jp_op *op);
    /* Parameter slots in jp_param order (NULL: none) and how many of them
     * this op has (NULL: all of param_names); the expected shape of each. */
    const char *const *param_names;
    int (*n_params)(const jp_op *op);
    void (*param_shape)(const jp_op *op, int slot, jp_shape *shape);
    /* Required: the output shape from the input shapes (n_in of them);
     * returns NULL, or why the inputs do not fit: a constant string
     * ("expected [n, c, h, w]") or one formatted into buf. */
    const char *(*shape)(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                         size_t buf_bytes);
    /* Optional (NULL: 0): multiply-accumulates of one call. */
    int64_t (*macs)(const jp_op *op, const jp_shape *in, const jp_shape *out);
    /* JP_ACT_NONE, or the activation an elementwise op of this type is: the
     * executor folds it into the step before it when that step's kernel
     * takes the activation. */
    jp_activation activation;
    /* An identity at inference (dropout, stochastic depth): fusion may step
     * over it. */
    bool identity;
} jp_op_desc;

/* The descriptor of type; NULL when type is not a jp_op_type. */
const jp_op_desc *jp_op_desc_of(jp_op_type type);

/* The op type whose descriptor is activation act; JP_OP_TYPE_COUNT when none. */
jp_op_type jp_op_type_of_activation(jp_activation act);

/* Whether out has the shape op's shape rule gives for the n_in inputs (each
 * of rank 1..JP_MAX_RANK): the check of a step's tensors that a kernel's
 * supports() makes, so that the rule is written once, in the descriptor. */
bool jp_op_output_ok(const jp_op *op, const jp_tensor *in, int n_in, const jp_tensor *out);

/* x.chunk(chunks, dim)[index] of a contiguous x as a strided copy: `outer`
 * runs of `len` floats, run o read at x + offset + o * stride and written at
 * y + o * len (torch.chunk: pieces of ceil(size / chunks), the last shorter).
 * in and out as jp_op_output_ok accepts them. */
typedef struct jp_chunk_runs {
    int64_t outer, len, stride, offset;
} jp_chunk_runs;
jp_chunk_runs jp_chunk_runs_of(const jp_chunk_attrs *a, const jp_tensor *in, const jp_tensor *out);

#ifdef __cplusplus
}
#endif

#endif /* JP_OPS_H */
