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

#include "jp_json.h"
#include "jp_ops.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parameter slots op has, by its descriptor: their names and count. */
static int param_slots(const jp_op *op, const char *const **names)
{
    const jp_op_desc *d = jp_op_desc_of(op->type);
    *names = d->param_names;
    if (!d->param_names)
        return 0;
    return d->n_params ? d->n_params(op) : JP_MAX_OP_PARAMS;
}

static jp_status parse_params(jp_json_reader *r, const cJSON *params, const char *path, jp_op *op)
{
    const char *const *names;
    int n = param_slots(op, &names);
    int found = 0;
    for (const cJSON *p = params->child; p; p = p->next)
        found++;
    for (int i = 0; i < n; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, names[i]);
        const cJSON *p = jp_json_field(r, params, path, names[i], cJSON_Object, "an object");
        if (!p)
            return r->err->status;
        static const char *const keys[] = {"name", "shape", NULL};
        jp_param *prm = &op->params[i];
        if (jp_json_check_keys(r, p, sub, keys) || jp_json_get_string(r, p, sub, "name", &prm->name) ||
            jp_json_get_shape(r, p, sub, "shape", &prm->rank, prm->dims))
            return r->err->status;
        op->n_params = i + 1;
        jp_shape want;
        jp_op_desc_of(op->type)->param_shape(op, i, &want);
        bool same = want.rank == prm->rank;
        for (int d = 0; same && d < want.rank; d++)
            same = want.dims[d] == prm->dims[d];
        if (!same) {
            char want_s[96], got_s[96];
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.shape: %s does not fit the attributes (expected %s)",
                                r->file, sub, jp_shape_str(prm->rank, prm->dims, got_s, sizeof got_s),
                                jp_shape_str(want.rank, want.dims, want_s, sizeof want_s));
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

static jp_status parse_op(jp_json_reader *r, jp_graph *g, const cJSON *j, int index)
{
    char path[64];
    snprintf(path, sizeof path, "ops[%d]", index);
    jp_op *op = &g->ops[index];
    char *type = NULL;
    if (!cJSON_IsObject(j))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: expected an object", r->file, path);
    if (jp_json_check_keys(r, j, path, op_keys) || jp_json_get_string(r, j, path, "name", &op->name) ||
        jp_json_get_string(r, j, path, "path", &op->path) || jp_json_get_string(r, j, path, "module", &op->module) ||
        jp_json_get_string(r, j, path, "type", &type) || jp_json_get_int(r, j, path, "layer", 0, g->n_layers - 1, &op->layer))
        goto fail;
    op->type = jp_op_type_parse(type);
    if (op->type == JP_OP_TYPE_COUNT) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.type: unknown op type \"%s\" (op \"%s\"; docs/model-format.md lists the types)",
                     r->file, path, type, op->name);
        goto fail;
    }
    const jp_op_desc *desc = jp_op_desc_of(op->type);
    free(type);
    type = NULL;
    if (find_value(g, index, op->name) != -2 || strcmp(op->name, "input") == 0)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.name: \"%s\" is used twice", r->file, path, op->name);

    const cJSON *inputs = jp_json_field(r, j, path, "inputs", cJSON_Array, "a list of value names");
    if (!inputs)
        return r->err->status;
    const int n_inputs = cJSON_GetArraySize(inputs);
    if (n_inputs < desc->min_inputs || n_inputs > desc->max_inputs || n_inputs > JP_MAX_OP_INPUTS) {
        if (desc->min_inputs == desc->max_inputs)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.inputs: %s takes %d input(s), found %d", r->file, path,
                                desc->name, desc->min_inputs, n_inputs);
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.inputs: %s takes %d to %d inputs, found %d", r->file,
                            path, desc->name, desc->min_inputs, desc->max_inputs, n_inputs);
    }
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
    const cJSON *attrs = jp_json_field(r, j, path, "attrs", cJSON_Object, "an object");
    if (!attrs || jp_json_check_keys(r, attrs, sub, desc->attr_keys) ||
        (desc->parse_attrs && desc->parse_attrs(r, attrs, sub, op)))
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

static jp_status parse_graph(jp_json_reader *r, const cJSON *root, jp_graph *g)
{
    if (!cJSON_IsObject(root))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: expected a JSON object at the top", r->file);
    if (jp_json_check_keys(r, root, "$", top_keys))
        return r->err->status;
    char *format = NULL;
    if (jp_json_get_string(r, root, "$", "format", &format))
        return r->err->status;
    bool known = strcmp(format, "jplprof-model-1") == 0;
    if (!known) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.format: \"%s\", expected \"jplprof-model-1\"", r->file, format);
        free(format);
        return r->err->status;
    }
    free(format);
    if (jp_json_get_string(r, root, "$", "model", &g->model) ||
        jp_json_get_string(r, root, "$", "torchvision_version", &g->torchvision_version) ||
        jp_json_get_int(r, root, "$", "num_classes", 1, 1 << 24, &g->num_classes))
        return r->err->status;

    const cJSON *input = jp_json_field(r, root, "$", "input", cJSON_Object, "an object");
    static const char *const input_keys[] = {"name", "shape", "min_hw", NULL};
    if (!input || jp_json_check_keys(r, input, "$.input", input_keys) ||
        jp_json_get_shape(r, input, "$.input", "shape", &g->input_rank, g->input_dims) ||
        jp_json_get_int(r, input, "$.input", "min_hw", 1, 1 << 16, &g->min_input_hw))
        return r->err->status;
    if (g->input_rank != 4 || g->input_dims[1] != 3)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: $.input.shape: expected [n, 3, h, w]", r->file);

    const cJSON *pp = jp_json_field(r, root, "$", "preprocess", cJSON_Object, "an object");
    static const char *const pp_keys[] = {"resize", "crop", "interpolation", "mean", "std", NULL};
    if (!pp || jp_json_check_keys(r, pp, "$.preprocess", pp_keys) ||
        jp_json_get_int(r, pp, "$.preprocess", "resize", 1, 1 << 14, &g->preprocess.resize) ||
        jp_json_get_int(r, pp, "$.preprocess", "crop", 1, 1 << 14, &g->preprocess.crop))
        return r->err->status;
    const cJSON *interp = jp_json_field(r, pp, "$.preprocess", "interpolation", cJSON_String, "a string");
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
        const cJSON *a = jp_json_field(r, pp, "$.preprocess", stat_names[s], cJSON_Array, "a list of 3 numbers");
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

    const cJSON *layers = jp_json_field(r, root, "$", "layers", cJSON_Array, "a list");
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
        if (jp_json_check_keys(r, l, path, layer_keys) || jp_json_get_int(r, l, path, "index", 0, INT_MAX, &layer->index) ||
            jp_json_get_string(r, l, path, "path", &layer->path) || jp_json_get_string(r, l, path, "module", &layer->module))
            return r->err->status;
        if (layer->index != li)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.index: %d, expected %d (layers are numbered in order)",
                                r->file, path, layer->index, li);
    }

    const cJSON *ops = jp_json_field(r, root, "$", "ops", cJSON_Array, "a list");
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

    const cJSON *output = jp_json_field(r, root, "$", "output", cJSON_String, "an op name");
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
    jp_json_reader r = {json_path, err};
    st = parse_graph(&r, root, graph);
    if (st == JP_OK && !(graph->file = strdup(json_path)))
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", json_path);
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
    free(graph->file);
    free(graph->model);
    free(graph->torchvision_version);
    memset(graph, 0, sizeof *graph);
}

/* ---- shapes ------------------------------------------------------------- */

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
    return jp_error_set(err, JP_ERR_SHAPE, "%s: %s: op %s (%s): input %s: %s", g->file ? g->file : "(model)",
                        g->model, op->name, jp_op_type_name(op->type), jp_shape_str(rank, dims, s, sizeof s), why);
}

/* op's output shape, MACs and parameter count, by its descriptor. */
static jp_status infer_op(jp_graph *g, jp_op *op, jp_error *err)
{
    const jp_op_desc *desc = jp_op_desc_of(op->type);
    jp_shape in[JP_MAX_OP_INPUTS], out;
    for (int k = 0; k < op->n_inputs; k++)
        jp_graph_value_shape(g, op->inputs[k], &in[k].rank, in[k].dims);
    op->n_param_elems = 0;
    for (int p = 0; p < op->n_params; p++) {
        int64_t n = 1;
        for (int i = 0; i < op->params[p].rank; i++)
            n *= op->params[p].dims[i];
        op->n_param_elems += n;
    }
    memset(&out, 0, sizeof out);
    char buf[160];
    const char *why = desc->shape(op, in, op->n_inputs, &out, buf, sizeof buf);
    const jp_shape *shown = &in[0];
    if (!why)
        for (int i = 0; i < out.rank; i++)
            if (out.dims[i] < 1)
                why = "the output would be empty (input too small)";
    if (why)
        return shape_error(err, g, op, shown->rank, shown->dims, why);
    op->out_rank = out.rank;
    memset(op->out_dims, 0, sizeof op->out_dims);
    memcpy(op->out_dims, out.dims, sizeof(int64_t) * (size_t)out.rank);
    op->macs = desc->macs ? desc->macs(op, in, &out) : 0;
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

int64_t jp_param_numel(const jp_param *p)
{
    int64_t n = 1;
    for (int i = 0; i < p->rank; i++)
        n *= p->dims[i];
    return n;
}

int64_t jp_graph_param_numel(const jp_graph *graph)
{
    int64_t total = 0;
    for (int i = 0; i < graph->n_ops; i++)
        for (int p = 0; p < graph->ops[i].n_params; p++)
            total += jp_param_numel(&graph->ops[i].params[p]);
    return total;
}
