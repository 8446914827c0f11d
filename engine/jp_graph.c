/*
 * jp_graph.c: reads weights/<model>.json (docs/model-format.md) and derives
 * shapes.
 *
 * The reader is strict: every required field must be present with the right
 * JSON type, unknown fields and duplicate keys are errors, every value name
 * must refer to an earlier op, and layers must be contiguous runs of ops.
 * Errors name the file and the JSON path of the field at fault.
 */
#include "jp_graph.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_type_names[] = {
    [JP_OP_CONV2D] = "conv2d",
    [JP_OP_BATCH_NORM2D] = "batch_norm2d",
    [JP_OP_RELU] = "relu",
    [JP_OP_SILU] = "silu",
    [JP_OP_SIGMOID] = "sigmoid",
    [JP_OP_MAX_POOL2D] = "max_pool2d",
    [JP_OP_ADAPTIVE_AVG_POOL2D] = "adaptive_avg_pool2d",
    [JP_OP_LINEAR] = "linear",
    [JP_OP_FLATTEN] = "flatten",
    [JP_OP_ADD] = "add",
    [JP_OP_MUL] = "mul",
    [JP_OP_DROPOUT] = "dropout",
    [JP_OP_STOCHASTIC_DEPTH] = "stochastic_depth",
};
_Static_assert(sizeof op_type_names / sizeof op_type_names[0] == JP_OP_TYPE_COUNT,
               "op_type_names must name every jp_op_type");

const char *jp_op_type_name(jp_op_type type)
{
    if ((unsigned)type >= JP_OP_TYPE_COUNT)
        return "unknown";
    return op_type_names[type];
}

jp_op_type jp_op_type_parse(const char *name)
{
    for (int i = 0; i < JP_OP_TYPE_COUNT; i++)
        if (strcmp(op_type_names[i], name) == 0)
            return (jp_op_type)i;
    return JP_OP_TYPE_COUNT;
}

/* ---- strict JSON access ------------------------------------------------- */

typedef struct reader {
    const char *file;
    jp_error *err;
} reader;

/* Fails unless every key of obj is in allowed (NULL-terminated) and no key
 * appears twice. */
static jp_status check_keys(reader *r, const cJSON *obj, const char *path, const char *const *allowed)
{
    for (const cJSON *a = obj->child; a; a = a->next) {
        bool known = false;
        for (const char *const *k = allowed; *k; k++)
            if (strcmp(*k, a->string) == 0)
                known = true;
        if (!known)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: unknown field \"%s\"", r->file, path,
                                a->string);
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: duplicate field \"%s\"", r->file,
                                    path, a->string);
    }
    return JP_OK;
}

static const cJSON *field(reader *r, const cJSON *obj, const char *path, const char *key, int type_mask,
                          const char *type_name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: missing field (expected %s)", r->file, path, key,
                     type_name);
        return NULL;
    }
    if (!(item->type & type_mask)) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: expected %s", r->file, path, key, type_name);
        return NULL;
    }
    return item;
}

static jp_status get_string(reader *r, const cJSON *obj, const char *path, const char *key, char **out)
{
    const cJSON *item = field(r, obj, path, key, cJSON_String, "a string");
    if (!item)
        return r->err->status;
    *out = strdup(item->valuestring);
    if (!*out)
        return jp_error_set(r->err, JP_ERR_NOMEM, "%s: out of memory", r->file);
    return JP_OK;
}

/* An integer in [lo, hi]. */
static jp_status get_int(reader *r, const cJSON *obj, const char *path, const char *key, int lo, int hi,
                         int *out)
{
    const cJSON *item = field(r, obj, path, key, cJSON_Number, "an integer");
    if (!item)
        return r->err->status;
    double v = item->valuedouble;
    if (v != floor(v) || v < lo || v > hi)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: %g is not an integer in [%d, %d]", r->file,
                            path, key, v, lo, hi);
    *out = (int)v;
    return JP_OK;
}

static jp_status get_float(reader *r, const cJSON *obj, const char *path, const char *key, float *out)
{
    const cJSON *item = field(r, obj, path, key, cJSON_Number, "a number");
    if (!item)
        return r->err->status;
    if (!isfinite(item->valuedouble))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: not a finite number", r->file, path, key);
    *out = (float)item->valuedouble;
    return JP_OK;
}

static jp_status get_bool(reader *r, const cJSON *obj, const char *path, const char *key, bool *out)
{
    const cJSON *item = field(r, obj, path, key, cJSON_True | cJSON_False, "true or false");
    if (!item)
        return r->err->status;
    *out = cJSON_IsTrue(item);
    return JP_OK;
}

/* A list of exactly n integers in [lo, hi]. */
static jp_status get_ints(reader *r, const cJSON *obj, const char *path, const char *key, int n, int lo,
                          int hi, int *out)
{
    const cJSON *item = field(r, obj, path, key, cJSON_Array, "a list of integers");
    if (!item)
        return r->err->status;
    if (cJSON_GetArraySize(item) != n)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: expected %d integers, found %d", r->file,
                            path, key, n, cJSON_GetArraySize(item));
    int i = 0;
    for (const cJSON *e = item->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < lo ||
            e->valuedouble > hi)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s[%d]: expected an integer in [%d, %d]",
                                r->file, path, key, i, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    return JP_OK;
}

/* A shape: 1..JP_MAX_RANK positive integers. */
static jp_status get_shape(reader *r, const cJSON *obj, const char *path, const char *key, int *rank,
                           int64_t *dims)
{
    const cJSON *item = field(r, obj, path, key, cJSON_Array, "a shape (list of integers)");
    if (!item)
        return r->err->status;
    int n = cJSON_GetArraySize(item);
    if (n < 1 || n > JP_MAX_RANK)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: rank %d, expected 1 to %d", r->file, path,
                            key, n, JP_MAX_RANK);
    int i = 0;
    for (const cJSON *e = item->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 1 ||
            e->valuedouble > (double)INT32_MAX)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s[%d]: expected a positive integer",
                                r->file, path, key, i);
        dims[i] = (int64_t)e->valuedouble;
    }
    *rank = n;
    return JP_OK;
}

/* ---- ops ---------------------------------------------------------------- */

static const char *const conv_keys[] = {"in_channels", "out_channels", "kernel", "stride", "padding",
                                        "dilation", "groups", "bias", NULL};
static const char *const bn_keys[] = {"num_features", "eps", NULL};
static const char *const pool_keys[] = {"kernel", "stride", "padding", "dilation", "ceil_mode", NULL};
static const char *const adaptive_keys[] = {"output_size", NULL};
static const char *const linear_keys[] = {"in_features", "out_features", "bias", NULL};
static const char *const flatten_keys[] = {"start_dim", "end_dim", NULL};
static const char *const dropout_keys[] = {"p", NULL};
static const char *const sd_keys[] = {"p", "mode", NULL};
static const char *const no_keys[] = {NULL};

#define BIG (1 << 20)

static jp_status parse_attrs(reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    int pair[2];
    switch (op->type) {
    case JP_OP_CONV2D: {
        jp_conv2d_attrs *a = &op->attrs.conv2d;
        if (check_keys(r, attrs, path, conv_keys) || get_int(r, attrs, path, "in_channels", 1, BIG, &a->c_in) ||
            get_int(r, attrs, path, "out_channels", 1, BIG, &a->c_out) ||
            get_int(r, attrs, path, "groups", 1, BIG, &a->groups) ||
            get_bool(r, attrs, path, "bias", &a->has_bias))
            return r->err->status;
        if (get_ints(r, attrs, path, "kernel", 2, 1, 1024, pair))
            return r->err->status;
        a->kernel_h = pair[0], a->kernel_w = pair[1];
        if (get_ints(r, attrs, path, "stride", 2, 1, 1024, pair))
            return r->err->status;
        a->stride_h = pair[0], a->stride_w = pair[1];
        if (get_ints(r, attrs, path, "padding", 2, 0, 1024, pair))
            return r->err->status;
        a->pad_h = pair[0], a->pad_w = pair[1];
        if (get_ints(r, attrs, path, "dilation", 2, 1, 1024, pair))
            return r->err->status;
        a->dilation_h = pair[0], a->dilation_w = pair[1];
        if (a->c_in % a->groups || a->c_out % a->groups)
            return jp_error_set(r->err, JP_ERR_FORMAT,
                                "%s: %s.groups: %d does not divide in_channels %d and out_channels %d",
                                r->file, path, a->groups, a->c_in, a->c_out);
        return JP_OK;
    }
    case JP_OP_BATCH_NORM2D: {
        jp_batch_norm2d_attrs *a = &op->attrs.batch_norm2d;
        if (check_keys(r, attrs, path, bn_keys) || get_int(r, attrs, path, "num_features", 1, BIG, &a->channels) ||
            get_float(r, attrs, path, "eps", &a->eps))
            return r->err->status;
        if (!(a->eps > 0))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.eps: must be positive", r->file, path);
        return JP_OK;
    }
    case JP_OP_MAX_POOL2D: {
        jp_max_pool2d_attrs *a = &op->attrs.max_pool2d;
        if (check_keys(r, attrs, path, pool_keys) || get_bool(r, attrs, path, "ceil_mode", &a->ceil_mode))
            return r->err->status;
        if (get_ints(r, attrs, path, "kernel", 2, 1, 1024, pair))
            return r->err->status;
        a->kernel_h = pair[0], a->kernel_w = pair[1];
        if (get_ints(r, attrs, path, "stride", 2, 1, 1024, pair))
            return r->err->status;
        a->stride_h = pair[0], a->stride_w = pair[1];
        if (get_ints(r, attrs, path, "padding", 2, 0, 1024, pair))
            return r->err->status;
        a->pad_h = pair[0], a->pad_w = pair[1];
        if (get_ints(r, attrs, path, "dilation", 2, 1, 1024, pair))
            return r->err->status;
        a->dilation_h = pair[0], a->dilation_w = pair[1];
        if (2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.padding: must be at most half the kernel",
                                r->file, path);
        return JP_OK;
    }
    case JP_OP_ADAPTIVE_AVG_POOL2D: {
        jp_adaptive_avg_pool2d_attrs *a = &op->attrs.adaptive_avg_pool2d;
        if (check_keys(r, attrs, path, adaptive_keys) || get_ints(r, attrs, path, "output_size", 2, 1, BIG, pair))
            return r->err->status;
        a->out_h = pair[0], a->out_w = pair[1];
        return JP_OK;
    }
    case JP_OP_LINEAR: {
        jp_linear_attrs *a = &op->attrs.linear;
        if (check_keys(r, attrs, path, linear_keys) ||
            get_int(r, attrs, path, "in_features", 1, 1 << 28, &a->in_features) ||
            get_int(r, attrs, path, "out_features", 1, 1 << 28, &a->out_features) ||
            get_bool(r, attrs, path, "bias", &a->has_bias))
            return r->err->status;
        return JP_OK;
    }
    case JP_OP_FLATTEN: {
        jp_flatten_attrs *a = &op->attrs.flatten;
        if (check_keys(r, attrs, path, flatten_keys) ||
            get_int(r, attrs, path, "start_dim", 0, JP_MAX_RANK - 1, &a->start_dim) ||
            get_int(r, attrs, path, "end_dim", -1, JP_MAX_RANK - 1, &a->end_dim))
            return r->err->status;
        return JP_OK;
    }
    case JP_OP_DROPOUT:
        if (check_keys(r, attrs, path, dropout_keys) || get_float(r, attrs, path, "p", &op->attrs.dropout.p))
            return r->err->status;
        return JP_OK;
    case JP_OP_STOCHASTIC_DEPTH: {
        char *mode = NULL;
        if (check_keys(r, attrs, path, sd_keys) || get_float(r, attrs, path, "p", &op->attrs.dropout.p) ||
            get_string(r, attrs, path, "mode", &mode))
            return r->err->status;
        bool ok = strcmp(mode, "row") == 0 || strcmp(mode, "batch") == 0;
        free(mode);
        if (!ok)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.mode: expected \"row\" or \"batch\"", r->file,
                                path);
        return JP_OK;
    }
    default:
        return check_keys(r, attrs, path, no_keys);
    }
}

/* The parameter slots each op type has, in jp_param order. */
static int param_slots(const jp_op *op, const char *const **names)
{
    static const char *const conv[] = {"weight", "bias"};
    static const char *const bn[] = {"weight", "bias", "running_mean", "running_var"};
    switch (op->type) {
    case JP_OP_CONV2D:
        *names = conv;
        return op->attrs.conv2d.has_bias ? 2 : 1;
    case JP_OP_LINEAR:
        *names = conv;
        return op->attrs.linear.has_bias ? 2 : 1;
    case JP_OP_BATCH_NORM2D:
        *names = bn;
        return 4;
    default:
        *names = NULL;
        return 0;
    }
}

/* Expected shape of parameter slot i (rank, dims). */
static void param_expected_shape(const jp_op *op, int slot, int *rank, int64_t *dims)
{
    switch (op->type) {
    case JP_OP_CONV2D: {
        const jp_conv2d_attrs *a = &op->attrs.conv2d;
        if (slot == JP_PARAM_WEIGHT) {
            *rank = 4;
            dims[0] = a->c_out, dims[1] = a->c_in / a->groups, dims[2] = a->kernel_h, dims[3] = a->kernel_w;
        } else {
            *rank = 1;
            dims[0] = a->c_out;
        }
        return;
    }
    case JP_OP_LINEAR: {
        const jp_linear_attrs *a = &op->attrs.linear;
        if (slot == JP_PARAM_WEIGHT) {
            *rank = 2;
            dims[0] = a->out_features, dims[1] = a->in_features;
        } else {
            *rank = 1;
            dims[0] = a->out_features;
        }
        return;
    }
    case JP_OP_BATCH_NORM2D:
        *rank = 1;
        dims[0] = op->attrs.batch_norm2d.channels;
        return;
    default:
        *rank = 0;
    }
}

static jp_status parse_params(reader *r, const cJSON *params, const char *path, jp_op *op)
{
    const char *const *names;
    int n = param_slots(op, &names);
    int found = 0;
    for (const cJSON *p = params->child; p; p = p->next)
        found++;
    for (int i = 0; i < n; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, names[i]);
        const cJSON *p = field(r, params, path, names[i], cJSON_Object, "an object");
        if (!p)
            return r->err->status;
        static const char *const keys[] = {"name", "shape", NULL};
        jp_param *prm = &op->params[i];
        if (check_keys(r, p, sub, keys) || get_string(r, p, sub, "name", &prm->name) ||
            get_shape(r, p, sub, "shape", &prm->rank, prm->dims))
            return r->err->status;
        op->n_params = i + 1;
        int rank;
        int64_t dims[JP_MAX_RANK];
        param_expected_shape(op, i, &rank, dims);
        bool same = rank == prm->rank;
        for (int d = 0; same && d < rank; d++)
            same = dims[d] == prm->dims[d];
        if (!same) {
            char want[96], got[96];
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.shape: %s does not fit the attributes (expected %s)",
                                r->file, sub, jp_shape_str(prm->rank, prm->dims, got, sizeof got),
                                jp_shape_str(rank, dims, want, sizeof want));
        }
    }
    if (found != n) {
        for (const cJSON *p = params->child; p; p = p->next) {
            bool known = false;
            for (int i = 0; i < n; i++)
                known |= strcmp(p->string, names[i]) == 0;
            if (!known)
                return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: unexpected parameter \"%s\" for %s", r->file,
                                    path, p->string, jp_op_type_name(op->type));
        }
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: duplicate parameter", r->file, path);
    }
    return JP_OK;
}

/* Finds the value named name among ops[0..n_ops-1] or the graph input. */
static int find_value(const jp_graph *g, int n_ops, const char *name)
{
    if (strcmp(name, "input") == 0)
        return -1;
    for (int i = n_ops - 1; i >= 0; i--)
        if (strcmp(g->ops[i].name, name) == 0)
            return i;
    return -2;
}

static const char *const op_keys[] = {"name", "path", "module", "type", "layer", "inputs", "attrs", "params", NULL};

static jp_status parse_op(reader *r, jp_graph *g, const cJSON *j, int index)
{
    char path[64];
    snprintf(path, sizeof path, "ops[%d]", index);
    jp_op *op = &g->ops[index];
    char *type = NULL;
    if (!cJSON_IsObject(j))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: expected an object", r->file, path);
    if (check_keys(r, j, path, op_keys) || get_string(r, j, path, "name", &op->name) ||
        get_string(r, j, path, "path", &op->path) || get_string(r, j, path, "module", &op->module) ||
        get_string(r, j, path, "type", &type) || get_int(r, j, path, "layer", 0, g->n_layers - 1, &op->layer))
        goto fail;
    op->type = jp_op_type_parse(type);
    if (op->type == JP_OP_TYPE_COUNT) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.type: unknown op type \"%s\"", r->file, path, type);
        goto fail;
    }
    free(type);
    type = NULL;
    if (find_value(g, index, op->name) != -2 || strcmp(op->name, "input") == 0)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.name: \"%s\" is used twice", r->file, path, op->name);

    const cJSON *inputs = field(r, j, path, "inputs", cJSON_Array, "a list of value names");
    if (!inputs)
        return r->err->status;
    int want_inputs = (op->type == JP_OP_ADD || op->type == JP_OP_MUL) ? 2 : 1;
    if (cJSON_GetArraySize(inputs) != want_inputs)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.inputs: %s takes %d input(s), found %d", r->file, path,
                            jp_op_type_name(op->type), want_inputs, cJSON_GetArraySize(inputs));
    op->n_inputs = 0;
    for (const cJSON *in = inputs->child; in; in = in->next) {
        if (!cJSON_IsString(in))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.inputs[%d]: expected a value name", r->file, path,
                                op->n_inputs);
        int v = find_value(g, index, in->valuestring);
        if (v == -2)
            return jp_error_set(r->err, JP_ERR_FORMAT,
                                "%s: %s.inputs[%d]: \"%s\" is neither \"input\" nor an earlier op", r->file, path,
                                op->n_inputs, in->valuestring);
        op->inputs[op->n_inputs++] = v;
    }

    char sub[96];
    snprintf(sub, sizeof sub, "%s.attrs", path);
    const cJSON *attrs = field(r, j, path, "attrs", cJSON_Object, "an object");
    if (!attrs || parse_attrs(r, attrs, sub, op))
        return r->err->status;
    snprintf(sub, sizeof sub, "%s.params", path);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(j, "params");
    if (params) {
        if (!cJSON_IsObject(params))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: expected an object", r->file, sub);
        if (parse_params(r, params, sub, op))
            return r->err->status;
    } else {
        const char *const *names;
        if (param_slots(op, &names) > 0)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: missing field (a %s has parameters)", r->file,
                                sub, jp_op_type_name(op->type));
    }
    return JP_OK;
fail:
    free(type);
    return r->err->status;
}

static const char *const top_keys[] = {"format", "model", "torchvision_version", "input", "num_classes",
                                       "preprocess", "output", "layers", "ops", NULL};

static jp_status parse_graph(reader *r, const cJSON *root, jp_graph *g)
{
    if (!cJSON_IsObject(root))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: expected a JSON object at the top", r->file);
    if (check_keys(r, root, "$", top_keys))
        return r->err->status;
    char *format = NULL;
    if (get_string(r, root, "$", "format", &format))
        return r->err->status;
    bool known = strcmp(format, "jplprof-model-1") == 0;
    if (!known) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.format: \"%s\", expected \"jplprof-model-1\"", r->file, format);
        free(format);
        return r->err->status;
    }
    free(format);
    if (get_string(r, root, "$", "model", &g->model) ||
        get_string(r, root, "$", "torchvision_version", &g->torchvision_version) ||
        get_int(r, root, "$", "num_classes", 1, 1 << 24, &g->num_classes))
        return r->err->status;

    const cJSON *input = field(r, root, "$", "input", cJSON_Object, "an object");
    static const char *const input_keys[] = {"name", "shape", "min_hw", NULL};
    if (!input || check_keys(r, input, "$.input", input_keys) ||
        get_shape(r, input, "$.input", "shape", &g->input_rank, g->input_dims) ||
        get_int(r, input, "$.input", "min_hw", 1, 1 << 16, &g->min_input_hw))
        return r->err->status;
    if (g->input_rank != 4 || g->input_dims[1] != 3)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.input.shape: expected [n, 3, h, w]", r->file);

    const cJSON *pp = field(r, root, "$", "preprocess", cJSON_Object, "an object");
    static const char *const pp_keys[] = {"resize", "crop", "interpolation", "mean", "std", NULL};
    if (!pp || check_keys(r, pp, "$.preprocess", pp_keys) ||
        get_int(r, pp, "$.preprocess", "resize", 1, 1 << 14, &g->preprocess.resize) ||
        get_int(r, pp, "$.preprocess", "crop", 1, 1 << 14, &g->preprocess.crop))
        return r->err->status;
    const cJSON *interp = field(r, pp, "$.preprocess", "interpolation", cJSON_String, "a string");
    if (!interp)
        return r->err->status;
    if (strcmp(interp->valuestring, "bilinear") != 0)
        return jp_error_set(r->err, JP_ERR_UNSUPPORTED, "%s: $.preprocess.interpolation: \"%s\", only \"bilinear\" is supported",
                            r->file, interp->valuestring);
    if (g->preprocess.crop > g->preprocess.resize)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.preprocess.crop: larger than resize", r->file);
    const char *stat_names[2] = {"mean", "std"};
    float *stats[2] = {g->preprocess.mean, g->preprocess.std};
    for (int s = 0; s < 2; s++) {
        const cJSON *a = field(r, pp, "$.preprocess", stat_names[s], cJSON_Array, "a list of 3 numbers");
        if (!a)
            return r->err->status;
        if (cJSON_GetArraySize(a) != 3)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.preprocess.%s: expected 3 numbers", r->file,
                                stat_names[s]);
        int i = 0;
        for (const cJSON *e = a->child; e; e = e->next, i++) {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || (s == 1 && !(e->valuedouble > 0)))
                return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.preprocess.%s[%d]: expected a %s number", r->file,
                                    stat_names[s], i, s ? "positive" : "finite");
            stats[s][i] = (float)e->valuedouble;
        }
    }

    const cJSON *layers = field(r, root, "$", "layers", cJSON_Array, "a list");
    if (!layers)
        return r->err->status;
    g->n_layers = cJSON_GetArraySize(layers);
    if (g->n_layers < 1)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.layers: empty", r->file);
    g->layers = calloc((size_t)g->n_layers, sizeof *g->layers);
    if (!g->layers)
        return jp_error_set(r->err, JP_ERR_NOMEM, "%s: out of memory", r->file);
    int li = 0;
    for (const cJSON *l = layers->child; l; l = l->next, li++) {
        char path[48];
        snprintf(path, sizeof path, "$.layers[%d]", li);
        static const char *const layer_keys[] = {"index", "path", "module", NULL};
        jp_layer *layer = &g->layers[li];
        if (!cJSON_IsObject(l))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: expected an object", r->file, path);
        if (check_keys(r, l, path, layer_keys) || get_int(r, l, path, "index", 0, INT_MAX, &layer->index) ||
            get_string(r, l, path, "path", &layer->path) || get_string(r, l, path, "module", &layer->module))
            return r->err->status;
        if (layer->index != li)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.index: %d, expected %d (layers are numbered in order)",
                                r->file, path, layer->index, li);
    }

    const cJSON *ops = field(r, root, "$", "ops", cJSON_Array, "a list");
    if (!ops)
        return r->err->status;
    g->n_ops = cJSON_GetArraySize(ops);
    if (g->n_ops < 1)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.ops: empty", r->file);
    g->ops = calloc((size_t)g->n_ops, sizeof *g->ops);
    if (!g->ops)
        return jp_error_set(r->err, JP_ERR_NOMEM, "%s: out of memory", r->file);
    int oi = 0;
    for (const cJSON *o = ops->child; o; o = o->next, oi++)
        if (parse_op(r, g, o, oi))
            return r->err->status;

    /* Layers: contiguous, in order, none empty. */
    for (int i = 0; i < g->n_layers; i++)
        g->layers[i].first_op = -1;
    for (int i = 0; i < g->n_ops; i++) {
        jp_layer *layer = &g->layers[g->ops[i].layer];
        if (i > 0 && g->ops[i].layer < g->ops[i - 1].layer)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.ops[%d].layer: %d after layer %d (layers must be contiguous)",
                                r->file, i, g->ops[i].layer, g->ops[i - 1].layer);
        if (layer->first_op < 0)
            layer->first_op = i;
        layer->n_ops++;
    }
    for (int i = 0; i < g->n_layers; i++)
        if (g->layers[i].n_ops == 0)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.layers[%d]: no op belongs to layer \"%s\"", r->file, i,
                                g->layers[i].path);

    const cJSON *output = field(r, root, "$", "output", cJSON_String, "an op name");
    if (!output)
        return r->err->status;
    g->output = find_value(g, g->n_ops, output->valuestring);
    if (g->output < 0)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.output: \"%s\" is not an op", r->file, output->valuestring);
    return JP_OK;
}

jp_status jp_graph_load(const char *json_path, jp_graph *graph, jp_error *err)
{
    memset(graph, 0, sizeof *graph);
    FILE *f = fopen(json_path, "rb");
    if (!f)
        return jp_error_set(err, errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO, "%s: cannot open: %s", json_path,
                            strerror(errno));
    char *text = NULL;
    cJSON *root = NULL;
    jp_status st;
    if (fseek(f, 0, SEEK_END) != 0) {
        st = jp_error_set(err, JP_ERR_IO, "%s: cannot seek: %s", json_path, strerror(errno));
        goto done;
    }
    long size = ftell(f);
    if (size < 0 || size > (256L << 20)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: size %ld is not that of a model description", json_path, size);
        goto done;
    }
    rewind(f);
    text = malloc((size_t)size + 1);
    if (!text) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", json_path);
        goto done;
    }
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        st = jp_error_set(err, JP_ERR_IO, "%s: short read", json_path);
        goto done;
    }
    text[size] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        long off = end ? (long)(end - text) : -1;
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: not valid JSON (near byte %ld)", json_path, off);
        goto done;
    }
    reader r = {json_path, err};
    st = parse_graph(&r, root, graph);
done:
    if (st != JP_OK)
        jp_graph_free(graph);
    cJSON_Delete(root);
    free(text);
    fclose(f);
    return st;
}

void jp_graph_free(jp_graph *graph)
{
    if (!graph)
        return;
    for (int i = 0; i < graph->n_ops; i++) {
        jp_op *op = &graph->ops[i];
        free(op->name);
        free(op->path);
        free(op->module);
        for (int p = 0; p < JP_MAX_OP_PARAMS; p++)
            free(op->params[p].name);
    }
    free(graph->ops);
    for (int i = 0; i < graph->n_layers; i++) {
        free(graph->layers[i].path);
        free(graph->layers[i].module);
    }
    free(graph->layers);
    free(graph->model);
    free(graph->torchvision_version);
    memset(graph, 0, sizeof *graph);
}

/* ---- shapes ------------------------------------------------------------- */

static int64_t conv_out(int64_t in, int k, int s, int p, int d)
{
    int64_t span = (int64_t)d * (k - 1) + 1;
    if (in + 2 * p < span)
        return 0;
    return (in + 2 * p - span) / s + 1;
}

static int64_t pool_out(int64_t in, int k, int s, int p, int d, bool ceil_mode)
{
    int64_t span = (int64_t)d * (k - 1) + 1;
    int64_t num = in + 2 * p - span;
    if (num < 0)
        return 0;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* PyTorch: the last window must start inside the input or left padding. */
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

void jp_graph_value_shape(const jp_graph *graph, int v, int *rank, int64_t *dims)
{
    if (v < 0) {
        *rank = graph->input_rank;
        memcpy(dims, graph->input_dims, sizeof graph->input_dims);
    } else {
        *rank = graph->ops[v].out_rank;
        memcpy(dims, graph->ops[v].out_dims, sizeof graph->ops[v].out_dims);
    }
}

static jp_status shape_error(jp_error *err, const jp_graph *g, const jp_op *op, int rank, const int64_t *dims,
                             const char *why)
{
    char s[96];
    return jp_error_set(err, JP_ERR_SHAPE, "%s: op %s (%s): input %s: %s", g->model, op->name,
                        jp_op_type_name(op->type), jp_shape_str(rank, dims, s, sizeof s), why);
}

static jp_status infer_op(jp_graph *g, jp_op *op, jp_error *err)
{
    int rank;
    int64_t d[JP_MAX_RANK];
    jp_graph_value_shape(g, op->inputs[0], &rank, d);
    int64_t *o = op->out_dims;
    op->macs = 0;
    op->n_param_elems = 0;
    for (int p = 0; p < op->n_params; p++) {
        int64_t n = 1;
        for (int i = 0; i < op->params[p].rank; i++)
            n *= op->params[p].dims[i];
        op->n_param_elems += n;
    }
    op->out_rank = rank;
    memcpy(o, d, sizeof d);
    switch (op->type) {
    case JP_OP_CONV2D: {
        const jp_conv2d_attrs *a = &op->attrs.conv2d;
        if (rank != 4 || d[1] != a->c_in)
            return shape_error(err, g, op, rank, d, "expected [n, in_channels, h, w]");
        o[1] = a->c_out;
        o[2] = conv_out(d[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h);
        o[3] = conv_out(d[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w);
        op->macs = o[0] * o[1] * o[2] * o[3] * (a->c_in / a->groups) * a->kernel_h * a->kernel_w;
        break;
    }
    case JP_OP_BATCH_NORM2D:
        if (rank != 4 || d[1] != op->attrs.batch_norm2d.channels)
            return shape_error(err, g, op, rank, d, "expected [n, num_features, h, w]");
        op->macs = d[0] * d[1] * d[2] * d[3];
        break;
    case JP_OP_MAX_POOL2D: {
        const jp_max_pool2d_attrs *a = &op->attrs.max_pool2d;
        if (rank != 4)
            return shape_error(err, g, op, rank, d, "expected [n, c, h, w]");
        o[2] = pool_out(d[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h, a->ceil_mode);
        o[3] = pool_out(d[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w, a->ceil_mode);
        break;
    }
    case JP_OP_ADAPTIVE_AVG_POOL2D:
        if (rank != 4)
            return shape_error(err, g, op, rank, d, "expected [n, c, h, w]");
        o[2] = op->attrs.adaptive_avg_pool2d.out_h;
        o[3] = op->attrs.adaptive_avg_pool2d.out_w;
        op->macs = d[0] * d[1] * d[2] * d[3];
        break;
    case JP_OP_LINEAR: {
        const jp_linear_attrs *a = &op->attrs.linear;
        if (d[rank - 1] != a->in_features)
            return shape_error(err, g, op, rank, d, "last dimension is not in_features");
        o[rank - 1] = a->out_features;
        int64_t rows = 1;
        for (int i = 0; i < rank - 1; i++)
            rows *= d[i];
        op->macs = rows * a->in_features * a->out_features;
        break;
    }
    case JP_OP_FLATTEN: {
        const jp_flatten_attrs *a = &op->attrs.flatten;
        int end = a->end_dim < 0 ? rank + a->end_dim : a->end_dim;
        if (a->start_dim >= rank || end >= rank || end < a->start_dim)
            return shape_error(err, g, op, rank, d, "flatten dimensions out of range");
        int r = 0;
        for (int i = 0; i < a->start_dim; i++)
            o[r++] = d[i];
        int64_t n = 1;
        for (int i = a->start_dim; i <= end; i++)
            n *= d[i];
        o[r++] = n;
        for (int i = end + 1; i < rank; i++)
            o[r++] = d[i];
        op->out_rank = r;
        break;
    }
    case JP_OP_ADD: {
        int rank1;
        int64_t d1[JP_MAX_RANK];
        jp_graph_value_shape(g, op->inputs[1], &rank1, d1);
        if (rank1 != rank || memcmp(d1, d, sizeof(int64_t) * (size_t)rank) != 0)
            return shape_error(err, g, op, rank1, d1, "the two inputs of add differ in shape");
        break;
    }
    case JP_OP_MUL: {
        int rank1;
        int64_t d1[JP_MAX_RANK];
        jp_graph_value_shape(g, op->inputs[1], &rank1, d1);
        if (rank != 4 || rank1 != 4 || d[0] != d1[0] || d[1] != d1[1] || d[2] != 1 || d[3] != 1)
            return shape_error(err, g, op, rank, d, "mul expects a [n, c, 1, 1] scale and an [n, c, h, w] tensor");
        op->out_rank = 4;
        memcpy(o, d1, sizeof d1);
        break;
    }
    default:
        break;
    }
    for (int i = 0; i < op->out_rank; i++)
        if (o[i] < 1)
            return shape_error(err, g, op, rank, d, "the output would be empty (input too small)");
    return JP_OK;
}

jp_status jp_graph_infer_shapes(jp_graph *graph, int n, int h, int w, jp_error *err)
{
    if (n < 1 || h < 1 || w < 1)
        return jp_error_set(err, JP_ERR_ARG, "input shape [%d, 3, %d, %d] is not positive", n, h, w);
    graph->input_rank = 4;
    graph->input_dims[0] = n, graph->input_dims[1] = 3, graph->input_dims[2] = h, graph->input_dims[3] = w;
    for (int i = 0; i < graph->n_ops; i++)
        if (infer_op(graph, &graph->ops[i], err))
            return err->status;
    return JP_OK;
}
