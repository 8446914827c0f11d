/*
 * jp_exec.c: step building (fusion), memory planning and running; see
 * jp_exec.h for the contract.
 */
#include "jp_exec.h"

#include "jp_ops.h"
#include "jp_weights.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN_BYTES 256 /* cudaMalloc's alignment: some cuDNN kernels need it */

static size_t align_up(size_t n) { return (n + ARENA_ALIGN_BYTES - 1) & ~(size_t)(ARENA_ALIGN_BYTES - 1); }

static size_t value_bytes(const jp_op *op)
{
    size_t n = 1;
    for (int i = 0; i < op->out_rank; i++)
        n *= (size_t)op->out_dims[i];
    return n * sizeof(float);
}

/* Number of ops reading value v, and the last one. */
static int consumers(const jp_graph *g, int v, int *last)
{
    int n = 0;
    *last = -1;
    for (int i = v + 1; i < g->n_ops; i++)
        for (int k = 0; k < g->ops[i].n_inputs; k++)
            if (g->ops[i].inputs[k] == v) {
                n++;
                *last = i;
            }
    return n;
}

/* Can op i+1 be folded into the step that ends with op i?  It must read
 * only op i's value, op i's value must have no other reader, both must be in
 * the same layer, and op i must not be the graph output. */
static bool fusable_next(const jp_graph *g, int i, jp_op_type want)
{
    if (i + 1 >= g->n_ops || g->ops[i + 1].type != want)
        return false;
    const jp_op *next = &g->ops[i + 1];
    int last;
    return next->layer == g->ops[i].layer && next->n_inputs == 1 && next->inputs[0] == i &&
           consumers(g, i, &last) == 1 && g->output != i;
}

/* Is op i+1 an activation (by its descriptor) that the step ending with op
 * i may take in?  Returns it, or JP_ACT_NONE. */
static jp_activation fusable_activation(const jp_graph *g, int i)
{
    if (i + 1 >= g->n_ops)
        return JP_ACT_NONE;
    const jp_activation act = jp_op_desc_of(g->ops[i + 1].type)->activation;
    return act != JP_ACT_NONE && fusable_next(g, i, g->ops[i + 1].type) ? act : JP_ACT_NONE;
}

/* Is op i+1 an identity at inference that the step ending with op i can
 * step over? */
static bool fusable_identity(const jp_graph *g, int i)
{
    return i + 1 < g->n_ops && jp_op_desc_of(g->ops[i + 1].type)->identity &&
           fusable_next(g, i, g->ops[i + 1].type);
}

/* A value's tensor without data (the shapes kernels' supports() read). */
static jp_tensor shape_tensor(const jp_exec *ex, int v)
{
    jp_tensor t = {.device = ex->options.device};
    jp_graph_value_shape(ex->graph, v, &t.rank, t.dims);
    return t;
}

/* The add after op `last` that a convolution step can take over as its
 * residual (ResNet's out += identity): in the same layer, reading last's
 * value (which nothing else reads) and one value computed before the step
 * began (first) -- so it is ready when the step runs.  Returns the add's
 * index and the residual value in *residual, or -1. */
static int fusable_add(const jp_graph *g, int first, int last, int *residual)
{
    if (last + 1 >= g->n_ops || g->ops[last + 1].type != JP_OP_ADD)
        return -1;
    const jp_op *add = &g->ops[last + 1];
    int other, n_last;
    if (add->layer != g->ops[last].layer || add->n_inputs != 2 || consumers(g, last, &n_last) != 1 ||
        g->output == last)
        return -1;
    if (add->inputs[0] == last)
        other = add->inputs[1];
    else if (add->inputs[1] == last)
        other = add->inputs[0];
    else
        return -1;
    if (other == last || other >= first)
        return -1;
    *residual = other;
    return last + 1;
}

/* Does the kernel that would run `plain` also run `fused` (the same step
 * with more ops taken in)?  The plan's kernel for the op when the options
 * name one, else the default choice, which must not change: taking in the
 * add must not trade a faster kernel (Winograd, which has no residual
 * epilogue) for one that has it.  Decided from shapes alone. */
static bool same_kernel_takes(const jp_exec *ex, const jp_step *plain, const jp_step *fused)
{
    const jp_exec_options *o = &ex->options;
    const char *want = o->kernel_for_op ? o->kernel_for_op(o->kernel_for_op_ctx, plain->op) : NULL;
    if (want) {
        const jp_kernel *k = jp_kernel_find(want);
        return k && k->device == o->device && k->supports(fused);
    }
    const jp_kernel *k = jp_kernel_choose(o->device, plain);
    return k && k == jp_kernel_choose(o->device, fused);
}

/* Splits the graph into steps (without buffers yet). */
static jp_status plan_steps(jp_exec *ex, jp_error *err)
{
    const jp_graph *g = ex->graph;
    ex->steps = calloc((size_t)g->n_ops, sizeof *ex->steps);
    ex->layer_first_step = calloc((size_t)g->n_layers + 1, sizeof *ex->layer_first_step);
    if (!ex->steps || !ex->layer_first_step)
        return jp_error_set(err, JP_ERR_NOMEM, "executor: out of memory");
    int n = 0;
    for (int i = 0; i < g->n_ops;) {
        jp_exec_step *s = &ex->steps[n];
        s->first_op = i;
        s->n_ops = 1;
        s->layer = g->ops[i].layer;
        s->step.op = &g->ops[i];
        s->residual = -1;
        int last = i;
        if (ex->options.fuse && g->ops[i].type == JP_OP_CONV2D) {
            if (fusable_next(g, last, JP_OP_BATCH_NORM2D)) {
                s->step.fused_bn = &g->ops[last + 1];
                last++;
            }
            const jp_activation act = fusable_activation(g, last);
            if (act != JP_ACT_NONE) {
                s->step.act = act;
                last++;
            }
            /* An identity at inference (EfficientNet's stochastic depth
             * between its projection and the residual add): nothing to run,
             * and the add behind it can still be taken in. */
            if (fusable_identity(g, last))
                last++;
            /* conv [+ bn] [+ identity] + add(residual) [+ relu]: where a kernel takes it. */
            int residual = -1, add = s->step.act == JP_ACT_NONE ? fusable_add(g, i, last, &residual) : -1;
            if (add >= 0) {
                jp_step probe = s->step;
                int end = add;
                probe.fused_add = &g->ops[add];
                if (fusable_next(g, add, JP_OP_RELU)) {
                    probe.act = JP_ACT_RELU;
                    end = add + 1;
                }
                jp_step plain = s->step;
                plain.n_in = 1;
                plain.in[0] = shape_tensor(ex, g->ops[i].inputs[0]);
                plain.out = shape_tensor(ex, last);
                probe.n_in = 2;
                probe.in[0] = plain.in[0];
                probe.in[1] = shape_tensor(ex, residual);
                probe.out = shape_tensor(ex, end);
                if (same_kernel_takes(ex, &plain, &probe)) {
                    s->step.fused_add = probe.fused_add;
                    s->step.act = probe.act;
                    s->residual = residual;
                    last = end;
                }
            }
        }
        /* linear + activation (ConvNeXt's Linear + GELU in one block): every
         * linear kernel applies any activation in its epilogue. */
        if (ex->options.fuse && g->ops[i].type == JP_OP_LINEAR) {
            const jp_activation act = fusable_activation(g, last);
            if (act != JP_ACT_NONE) {
                s->step.act = act;
                last++;
            }
        }
        s->n_ops = last - i + 1;
        i = last + 1;
        n++;
    }
    ex->n_steps = n;
    int layer = 0;
    for (int si = 0; si < n; si++)
        while (layer <= ex->steps[si].layer)
            ex->layer_first_step[layer++] = si;
    while (layer <= g->n_layers)
        ex->layer_first_step[layer++] = n;
    return JP_OK;
}

typedef struct live_block {
    size_t offset, bytes;
    int last_use; /* op index after which the block is free */
    int value;    /* the value it holds (the last one, when shared in place) */
} live_block;

/* The value whose buffer op v may write its result into: v is a step of its
 * own computing an elementwise mul (the kernels of JP_OP_MUL allow y == x),
 * and its tensor input x is read by nothing after v.  The squeeze-excitation
 * scale then rewrites the depthwise output where it lies, still in cache,
 * instead of filling a buffer of its own (first touched, then written back:
 * EfficientNet-B7's mul at 28x28 took 236 us against ONNX Runtime's 34 us,
 * which works in place).  -1 when not. */
static int in_place_input(const jp_exec *ex, const int *step_first_op, int v)
{
    const jp_graph *g = ex->graph;
    const jp_op *op = &g->ops[v];
    int x = op->n_inputs == 2 ? op->inputs[1] : -1, last;
    if (op->type != JP_OP_MUL || step_first_op[v] != v || x < 0 || ex->options.keep_all_values)
        return -1;
    consumers(g, x, &last);
    return last == v ? x : -1;
}

/* Assigns every materialised value an offset in the arena.  Persistent values
 * are laid out first; scratch values share the region after them. */
static jp_status plan_memory(jp_exec *ex, size_t *offsets, jp_error *err)
{
    const jp_graph *g = ex->graph;
    bool *materialised = calloc((size_t)g->n_ops, sizeof *materialised);
    bool *persistent = calloc((size_t)g->n_ops, sizeof *persistent);
    live_block *live = calloc((size_t)g->n_ops, sizeof *live);
    if (!materialised || !persistent || !live) {
        free(materialised), free(persistent), free(live);
        return jp_error_set(err, JP_ERR_NOMEM, "executor: out of memory");
    }
    int *step_first_op = calloc((size_t)g->n_ops, sizeof *step_first_op);
    if (!step_first_op) {
        free(materialised), free(persistent), free(live);
        return jp_error_set(err, JP_ERR_NOMEM, "executor: out of memory");
    }
    for (int s = 0; s < ex->n_steps; s++) {
        const jp_exec_step *es = &ex->steps[s];
        materialised[es->first_op + es->n_ops - 1] = true;
        for (int i = 0; i < es->n_ops; i++)
            step_first_op[es->first_op + i] = es->first_op;
    }

    size_t input_elems = 1;
    for (int i = 0; i < g->input_rank; i++)
        input_elems *= (size_t)g->input_dims[i];
    size_t persistent_bytes = align_up(input_elems * sizeof(float));
    for (int v = 0; v < g->n_ops; v++) {
        if (!materialised[v])
            continue;
        int last;
        consumers(g, v, &last);
        bool crosses = v == g->output || last < 0 || ex->options.keep_all_values;
        for (int i = v + 1; i < g->n_ops && !crosses && !ex->options.share_layer_outputs; i++)
            for (int k = 0; k < g->ops[i].n_inputs; k++)
                if (g->ops[i].inputs[k] == v && g->ops[i].layer != g->ops[v].layer)
                    crosses = true;
        persistent[v] = crosses;
        if (crosses) {
            offsets[v] = persistent_bytes;
            persistent_bytes += align_up(value_bytes(&g->ops[v]));
        }
    }
    /* Scratch: first fit among the blocks still live, per layer. */
    size_t scratch_bytes = 0;
    int n_live = 0;
    int layer = -1;
    for (int v = 0; v < g->n_ops; v++) {
        if (g->ops[v].layer != layer && !ex->options.share_layer_outputs) {
            layer = g->ops[v].layer; /* every block of the layer before is dead */
            n_live = 0;
        }
        if (!materialised[v] || persistent[v])
            continue;
        /* Drop the blocks whose last reader is a step before the one that
         * produces v (that step still reads its inputs while writing v). */
        int j = 0;
        for (int i = 0; i < n_live; i++)
            if (live[i].last_use >= step_first_op[v])
                live[j++] = live[i];
        n_live = j;
        size_t bytes = align_up(value_bytes(&g->ops[v]));
        const int x = in_place_input(ex, step_first_op, v);
        int shared = -1;
        for (int i = 0; x >= 0 && i < n_live; i++)
            if (live[i].value == x && live[i].bytes == bytes)
                shared = i;
        if (shared >= 0) {
            int last;
            consumers(g, v, &last);
            live[shared].last_use = last;
            live[shared].value = v;
            offsets[v] = persistent_bytes + live[shared].offset;
            continue;
        }
        size_t at = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int i = 0; i < n_live; i++)
                if (at < live[i].offset + live[i].bytes && live[i].offset < at + bytes) {
                    at = live[i].offset + live[i].bytes;
                    moved = true;
                }
        }
        int last;
        consumers(g, v, &last);
        live[n_live++] = (live_block){at, bytes, last, v};
        offsets[v] = persistent_bytes + at;
        if (at + bytes > scratch_bytes)
            scratch_bytes = at + bytes;
    }
    for (int v = 0; v < g->n_ops; v++)
        if (!materialised[v])
            offsets[v] = SIZE_MAX;
    ex->arena_bytes = persistent_bytes + scratch_bytes;
    free(materialised), free(persistent), free(live), free(step_first_op);
    return JP_OK;
}

static jp_tensor value_tensor(const jp_exec *ex, int v)
{
    jp_tensor t = {.device = ex->options.device};
    jp_graph_value_shape(ex->graph, v, &t.rank, t.dims);
    t.data = v < 0 ? ex->input : ex->value_data[v];
    return t;
}

/* options.release_params: the pages of step es's parameters, when its kernel
 * keeps its own copy (see jp_exec.h). */
static size_t release_step_params(const jp_exec *ex, const jp_exec_step *es)
{
    size_t released = 0;
    if (!es->kernel->params_copied)
        return 0;
    for (int i = es->first_op; i < es->first_op + es->n_ops; i++) {
        const jp_op *op = &ex->graph->ops[i];
        for (int p = 0; p < op->n_params; p++)
            if (op->params[p].data)
                released += jp_weights_give_back(op->params[p].data,
                                                 (size_t)jp_param_numel(&op->params[p]) * sizeof(float));
    }
    return released;
}

jp_status jp_exec_build(jp_exec *ex, const jp_graph *graph, const jp_exec_options *options, jp_error *err)
{
    memset(ex, 0, sizeof *ex);
    ex->graph = graph;
    ex->options = *options;
    if (jp_backend_open(options->device, &ex->backend, err))
        return err->status;
    size_t *offsets = NULL;
    if (plan_steps(ex, err))
        goto fail;
    offsets = calloc((size_t)graph->n_ops, sizeof *offsets);
    ex->value_data = calloc((size_t)graph->n_ops, sizeof *ex->value_data);
    if (!offsets || !ex->value_data) {
        jp_error_set(err, JP_ERR_NOMEM, "executor: out of memory");
        goto fail;
    }
    if (plan_memory(ex, offsets, err))
        goto fail;
    if (ex->backend->alloc(ex->arena_bytes, &ex->arena, err))
        goto fail;
    ex->input = ex->arena;
    for (int v = 0; v < graph->n_ops; v++)
        if (offsets[v] != SIZE_MAX)
            ex->value_data[v] = (float *)((char *)ex->arena + offsets[v]);
    free(offsets);
    offsets = NULL;

    for (int s = 0; s < ex->n_steps; s++) {
        jp_exec_step *es = &ex->steps[s];
        const jp_op *op = es->step.op;
        es->step.n_in = op->n_inputs;
        for (int k = 0; k < op->n_inputs; k++)
            es->step.in[k] = value_tensor(ex, op->inputs[k]);
        if (es->step.fused_add)
            es->step.in[es->step.n_in++] = value_tensor(ex, es->residual);
        es->step.out = value_tensor(ex, es->first_op + es->n_ops - 1);
        const char *want = options->kernel_for_op ? options->kernel_for_op(options->kernel_for_op_ctx, op) : NULL;
        if (want) {
            es->kernel = jp_kernel_find(want);
            if (!es->kernel) {
                jp_error_set(err, JP_ERR_ARG, "op %s: no kernel named \"%s\"", op->name, want);
                goto fail;
            }
            if (es->kernel->device != options->device || es->kernel->op_type != op->type ||
                !es->kernel->supports(&es->step)) {
                jp_error_set(err, JP_ERR_UNSUPPORTED, "op %s: kernel %s does not support this op", op->name, want);
                goto fail;
            }
        } else {
            es->kernel = jp_kernel_choose(options->device, &es->step);
        }
        if (!es->kernel) {
            jp_error_set(err, JP_ERR_UNSUPPORTED, "op %s (%s%s%s%s): no %s kernel supports it", op->name,
                         jp_op_type_name(op->type), es->step.fused_bn ? " + batch_norm2d" : "",
                         es->step.fused_add ? " + add" : "", es->step.act ? " + activation" : "",
                         jp_device_name(options->device));
            goto fail;
        }
        if (!options->defer_prepare && jp_exec_prepare_step(ex, s, err))
            goto fail;
    }
    return JP_OK;
fail:
    free(offsets);
    jp_exec_free(ex);
    return err->status;
}

void jp_exec_free(jp_exec *ex)
{
    if (!ex)
        return;
    for (int s = 0; s < ex->n_steps; s++)
        jp_exec_release_step(ex, s);
    if (ex->arena && ex->backend)
        ex->backend->free(ex->arena);
    if (ex->workspace && ex->backend)
        ex->backend->free(ex->workspace);
    free(ex->steps);
    free(ex->layer_first_step);
    free(ex->value_data);
    memset(ex, 0, sizeof *ex);
}

jp_status jp_exec_set_input(jp_exec *ex, const float *host_input, jp_error *err)
{
    const jp_graph *g = ex->graph;
    size_t bytes = sizeof(float);
    for (int i = 0; i < g->input_rank; i++)
        bytes *= (size_t)g->input_dims[i];
    return ex->backend->upload(ex->input, host_input, bytes, err);
}

static jp_status run_step(jp_exec *ex, int s, jp_error *err)
{
    jp_exec_step *es = &ex->steps[s];
    if (es->kernel->run(es->state, &es->step, err))
        return jp_error_prefix(err, "op %s, kernel %s: ", es->step.op->name, es->kernel->name);
    return JP_OK;
}

static jp_status backend_sync(jp_exec *ex, jp_error *err)
{
    return ex->backend->synchronize ? ex->backend->synchronize(err) : JP_OK;
}

jp_status jp_exec_forward_to(jp_exec *ex, const jp_exec_hooks *hooks, int last_step, jp_error *err)
{
    static const jp_exec_hooks none = {0};
    const jp_exec_hooks *h = hooks ? hooks : &none;
    bool any = h->before_layer || h->after_layer || h->before_step || h->after_step;
    for (int l = 0; l < ex->graph->n_layers && ex->layer_first_step[l] <= last_step; l++) {
        if (h->before_layer && (backend_sync(ex, err) || h->before_layer(h->ctx, l, err)))
            return err->status;
        for (int s = ex->layer_first_step[l]; s < ex->layer_first_step[l + 1] && s <= last_step; s++) {
            if (h->before_step && (backend_sync(ex, err) || h->before_step(h->ctx, s, err)))
                return err->status;
            if (run_step(ex, s, err))
                return err->status;
            if (h->after_step && (backend_sync(ex, err) || h->after_step(h->ctx, s, err)))
                return err->status;
        }
        if (h->after_layer && ex->layer_first_step[l + 1] - 1 <= last_step &&
            (backend_sync(ex, err) || h->after_layer(h->ctx, l, err)))
            return err->status;
    }
    return any ? JP_OK : backend_sync(ex, err);
}

jp_status jp_exec_forward(jp_exec *ex, const jp_exec_hooks *hooks, jp_error *err)
{
    return jp_exec_forward_to(ex, hooks, ex->n_steps - 1, err);
}

/* A layer or step alone reads inputs that a shared arena no longer holds. */
static jp_status alone_ok(const jp_exec *ex, jp_error *err)
{
    if (ex->options.share_layer_outputs)
        return jp_error_set(err, JP_ERR_INTERNAL, "executor: a layer or step run alone needs the "
                            "layer outputs kept (share_layer_outputs is set)");
    return JP_OK;
}

jp_status jp_exec_run_layer(jp_exec *ex, int layer, jp_error *err)
{
    if (alone_ok(ex, err))
        return err->status;
    for (int s = ex->layer_first_step[layer]; s < ex->layer_first_step[layer + 1]; s++)
        if (run_step(ex, s, err))
            return err->status;
    return JP_OK;
}

jp_status jp_exec_run_step(jp_exec *ex, int step, jp_error *err)
{
    return alone_ok(ex, err) ? err->status : run_step(ex, step, err);
}

/* Step s's kernel takes the shared workspace, grown first if it needs more
 * (every step already bound then moves to the new buffer). */
static jp_status bind_workspace(jp_exec *ex, int s, jp_error *err)
{
    const jp_exec_step *es = &ex->steps[s];
    size_t prepared = 0, need = 0;
    es->kernel->memory(es->state, &es->step, &prepared, &need);
    if (need > ex->workspace_bytes) {
        void *grown;
        if (ex->backend->alloc(need, &grown, err))
            return jp_error_prefix(err, "op %s: shared workspace of %zu bytes: ", es->step.op->name, need);
        for (int t = 0; t < ex->n_steps; t++)
            if (t != s && ex->steps[t].prepared && ex->steps[t].kernel->bind_workspace)
                ex->steps[t].kernel->bind_workspace(ex->steps[t].state, grown);
        if (ex->workspace)
            ex->backend->free(ex->workspace);
        ex->workspace = grown;
        ex->workspace_bytes = need;
    }
    es->kernel->bind_workspace(es->state, ex->workspace);
    return JP_OK;
}

jp_status jp_exec_prepare_step(jp_exec *ex, int s, jp_error *err)
{
    jp_exec_step *es = &ex->steps[s];
    if (es->prepared || !es->kernel->prepare) {
        es->prepared = true;
        return JP_OK;
    }
    es->step.give_back_params = ex->options.release_params && es->kernel->params_copied;
    if (es->kernel->prepare(&es->step, &es->state, err))
        return jp_error_prefix(err, "op %s, kernel %s: ", es->step.op->name, es->kernel->name);
    es->prepared = true;
    if (es->kernel->bind_workspace && es->kernel->memory && bind_workspace(ex, s, err))
        return err->status;
    if (ex->options.release_params)
        ex->released_param_bytes += release_step_params(ex, es);
    return JP_OK;
}

void jp_exec_release_step(jp_exec *ex, int s)
{
    jp_exec_step *es = &ex->steps[s];
    if (es->kernel && es->kernel->release && es->state)
        es->kernel->release(es->state);
    es->state = NULL;
    es->prepared = false;
}

jp_tensor jp_exec_value(const jp_exec *ex, int op) { return value_tensor(ex, op); }

jp_status jp_exec_download(const jp_exec *ex, int op, float *host, jp_error *err)
{
    jp_tensor t = value_tensor(ex, op);
    if (!t.data)
        return jp_error_set(err, JP_ERR_INTERNAL, "op %s: value was fused away and is not stored",
                            ex->graph->ops[op].name);
    if (backend_sync((jp_exec *)ex, err))
        return err->status;
    return ex->backend->download(host, t.data, (size_t)jp_tensor_numel(&t) * sizeof(float), err);
}

void jp_exec_memory_of(const jp_exec *ex, jp_exec_memory *m)
{
    memset(m, 0, sizeof *m);
    m->arena_bytes = ex->arena_bytes;
    m->workspace_bytes = ex->workspace_bytes;
    for (int s = 0; s < ex->n_steps; s++) {
        const jp_exec_step *es = &ex->steps[s];
        size_t pair = (size_t)jp_tensor_numel(&es->step.out);
        for (int k = 0; k < es->step.n_in; k++)
            pair += (size_t)jp_tensor_numel(&es->step.in[k]);
        if (pair * sizeof(float) > m->largest_pair_bytes)
            m->largest_pair_bytes = pair * sizeof(float);
        if (!es->kernel->params_copied)
            for (int i = es->first_op; i < es->first_op + es->n_ops; i++)
                for (int p = 0; p < ex->graph->ops[i].n_params; p++)
                    m->in_place_param_bytes += (size_t)jp_param_numel(&ex->graph->ops[i].params[p]) * sizeof(float);
        if (es->kernel->memory) {
            size_t prepared = 0, workspace = 0;
            es->kernel->memory(es->state, &es->step, &prepared, &workspace);
            m->prepared_bytes += prepared;
            if (!es->kernel->bind_workspace)
                m->workspace_bytes += workspace;
        } else if (es->kernel->prepare) {
            m->n_unaccounted++;
        }
    }
}
