/*
 * cmd_infer.c: `jplprof infer`: one input through a model; prints the top-5
 * classes and the time of each layer (or op) and of the whole pass, and can
 * dump every layer's output for comparison with PyTorch.
 *
 * Timing: --warmup untimed passes, then --runs passes with the executor's
 * hooks reading the clock around each layer (the executor synchronises the
 * device first), whose per-layer medians are printed, then --runs passes
 * without hooks, whose median is the end-to-end time.
 *
 * Memory: during the build, the pages of every parameter whose kernel made
 * its own prepared copy are given back (jp_exec_options.release_params): the run
 * never reads them in their original form.  --memory prints where the rest
 * went and the peak RSS against issue 16's bound: the weights + the
 * prepared weights + 2 x the largest activation pair + 16 MiB.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "measure.h"
#include "jp_safetensors.h"

typedef struct infer_options {
    jp_cli_model_options model;
    jp_device device;
    long threads;
    bool op_level;
    bool steps; /* time the executor's steps, fused ops as one */
    bool fuse;
    long runs, warmup, top;
    bool quiet;
    bool memory;
    const char *dump_path;
    const char *plan_path;
} infer_options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: jplprof infer --model MODEL [--image FILE | --input-tensor FILE] [options]\n"
            "\n"
            "Runs one image through MODEL and prints the top classes and the time of\n"
            "each layer.  Without --image or --input-tensor a synthetic input is used.\n"
            "  --model NAME            a model of `jplprof models` (required)\n"
            "  --image FILE            a JPEG or PNG, preprocessed as torchvision does\n"
            "                          (resize 256, center crop 224, ImageNet mean/std)\n"
            "  --input-tensor FILE     a safetensors file with \"input\" float32 [1, 3, H, W]\n"
            "  --weights FILE          converted weights (default weights/MODEL.safetensors;\n"
            "                          synthetic weights when that file is absent)\n"
            "  --seed N                seed of synthetic weights (default 0)\n"
            "  --synthetic             synthetic weights even when converted ones exist\n"
            "  --device cpu|cuda       default cpu\n"
            "  --threads N             CPU threads (default: all online cores)\n"
            "  --granularity layer|op  time layers (default) or single ops (no fusion)\n"
            "  --no-fuse               run every op alone (no batch-norm folding)\n"
            "  --steps                 time each step the engine runs: ops fused at layer\n"
            "                          granularity (a convolution with its batch-norm,\n"
            "                          activation and residual add) are one step\n"
            "  --runs N                timed passes (default 5); --warmup N untimed first (1)\n"
            "  --top K                 classes to print (default 5)\n"
            "  --dump-layers FILE      write every layer's output (layer.<i>), the input and\n"
            "                          the logits as safetensors; at op granularity also op.<name>\n"
            "  --plan FILE             the kernel per op from `jplprof compare --plan`\n"
            "  --memory                print where the memory went: weights (mapped or\n"
            "                          synthetic, how much of them was given back and how\n"
            "                          much the kernels read where they are),\n"
            "                          the kernels' prepared weights, the activation arena,\n"
            "                          the kernels' workspace, and the peak RSS\n"
            "  --quiet                 print only the summary line and the classes\n");
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* One line, `key value MiB` pairs, for people and for tests/test_memory.py. */
static void print_memory(const jp_exec *ex, const jp_cli_model *m)
{
    jp_exec_memory mem;
    jp_exec_memory_of(ex, &mem);
    size_t weights_bytes = 0;
    if (m->weights.synthetic) {
        weights_bytes = (size_t)jp_graph_param_numel(&m->graph) * sizeof(float);
    } else {
        weights_bytes = m->weights.file.map_bytes;
    }
    const size_t slack_bytes = (size_t)16 << 20;
    size_t bound = weights_bytes + mem.prepared_bytes + 2 * mem.largest_pair_bytes + slack_bytes;
    struct rusage ru;
    double peak = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : -1.0;
    printf("memory: weights %.1f MiB (%s), %.1f MiB of them given back, %.1f MiB read in place | "
           "prepared weights %.1f MiB | "
           "activation arena %.1f MiB | workspace %.1f MiB | largest activation pair %.1f MiB | "
           "bound %.1f MiB (weights + prepared + 2 x pair + 16 MiB) | peak RSS %.1f MiB\n",
           mib(weights_bytes), m->weights.synthetic ? "synthetic" : "mapped", mib(ex->released_param_bytes),
           mib(mem.in_place_param_bytes), mib(mem.prepared_bytes), mib(mem.arena_bytes), mib(mem.workspace_bytes), mib(mem.largest_pair_bytes),
           mib(bound), peak);
    if (mem.n_unaccounted)
        printf("memory: %d steps' kernels cannot say what they prepared (not counted above)\n",
               mem.n_unaccounted);
}

static jp_status parse_args(int argc, char **argv, infer_options *o, jp_error *err)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},   {"image", required_argument, NULL, 'i'},
        {"input-tensor", required_argument, NULL, 'T'}, {"weights", required_argument, NULL, 'w'},
        {"seed", required_argument, NULL, 'S'},    {"synthetic", no_argument, NULL, 'Y'},
        {"device", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'}, {"granularity", required_argument, NULL, 'g'},
        {"no-fuse", no_argument, NULL, 'F'},       {"runs", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'W'},  {"top", required_argument, NULL, 'k'},
        {"dump-layers", required_argument, NULL, 'D'}, {"quiet", no_argument, NULL, 'q'},
        {"plan", required_argument, NULL, 'P'},   {"steps", no_argument, NULL, 's'},
        {"memory", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},          {0},
    };
    long seed = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
        switch (c) {
        case 'm': o->model.model = optarg; break;
        case 'i': o->model.image = optarg; break;
        case 'T': o->model.input_tensor = optarg; break;
        case 'Y': o->model.synthetic = true; break;
        case 'w': o->model.weights_path = optarg; break;
        case 'S':
            if (jp_cli_parse_int("--seed", optarg, 0, LONG_MAX, &seed, err))
                return err->status;
            o->model.seed = (uint64_t)seed;
            break;
        case 'd':
            if (jp_cli_parse_device(optarg, &o->device, err))
                return err->status;
            break;
        case 't':
            if (jp_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, err))
                return err->status;
            break;
        case 'g':
            if (jp_cli_parse_granularity(optarg, &o->op_level, err))
                return err->status;
            break;
        case 'F': o->fuse = false; break;
        case 's': o->steps = true; break;
        case 'r':
            if (jp_cli_parse_int("--runs", optarg, 1, 1000000, &o->runs, err))
                return err->status;
            break;
        case 'W':
            if (jp_cli_parse_int("--warmup", optarg, 0, 1000000, &o->warmup, err))
                return err->status;
            break;
        case 'k':
            if (jp_cli_parse_int("--top", optarg, 0, 1000000, &o->top, err))
                return err->status;
            break;
        case 'D': o->dump_path = optarg; break;
        case 'P': o->plan_path = optarg; break;
        case 'q': o->quiet = true; break;
        case 'M': o->memory = true; break;
        case 'h': return JP_STATUS_COUNT; /* help printed by the caller */
        default:
            return jp_cli_getopt_error("infer", c, argv, err);
        }
    }
    if (jp_cli_no_operands("infer", argc, argv, err))
        return err->status;
    if (!o->model.model)
        return jp_error_set(err, JP_ERR_ARG, "--model is required (see jplprof models)");
    if (o->model.synthetic && o->model.weights_path)
        return jp_error_set(err, JP_ERR_ARG, "--synthetic and --weights exclude each other");
    if (o->model.image && o->model.input_tensor)
        return jp_error_set(err, JP_ERR_ARG, "--image and --input-tensor exclude each other");
    return JP_OK;
}

/* Median of column `unit` of a [runs][n] table (scratch: runs doubles). */
static double median_of(const double *table, int runs, int n, int unit, double *scratch)
{
    for (int r = 0; r < runs; r++)
        scratch[r] = table[(size_t)r * (size_t)n + (size_t)unit];
    return jp_cli_median(scratch, (size_t)runs);
}

static jp_status read_labels(char ***labels, int n, jp_error *err)
{
    char path[PATH_MAX];
    jp_cli_path(path, sizeof path, "weights/imagenet_classes.txt");
    *labels = calloc((size_t)n, sizeof **labels);
    if (!*labels)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    FILE *f = fopen(path, "r");
    if (!f)
        return JP_OK; /* labels are a convenience: indices still print */
    char line[512];
    for (int i = 0; i < n && fgets(line, sizeof line, f); i++) {
        line[strcspn(line, "\r\n")] = '\0';
        (*labels)[i] = strdup(line);
    }
    fclose(f);
    return JP_OK;
}

static void print_top(const float *logits, int n, int k)
{
    char **labels = NULL;
    jp_error err;
    read_labels(&labels, n, &err);
    double maxv = -INFINITY, sum = 0;
    /* A compare (NaN skipped, as fmax does), not fmax: gcc 12.2 for aarch64
     * stops with an internal compiler error (vect_transform_reduction)
     * vectorising this fmax reduction from float to double. */
    for (int i = 0; i < n; i++)
        if (logits[i] > maxv)
            maxv = logits[i];
    for (int i = 0; i < n; i++)
        sum += exp(logits[i] - maxv);
    bool *taken = calloc((size_t)n, 1);
    printf("top-%d:\n", k);
    for (int r = 0; r < k && r < n && taken; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || logits[i] > logits[best]))
                best = i;
        taken[best] = true;
        printf("  %4d  %-40s p=%.4f  logit=%.4f\n", best, labels && labels[best] ? labels[best] : "",
               exp(logits[best] - maxv) / sum, logits[best]);
    }
    free(taken);
    if (labels)
        for (int i = 0; i < n; i++)
            free(labels[i]);
    free(labels);
}

/* The dump's state: what the after_layer hook copies, and where. */
typedef struct dump_ctx {
    jp_exec *ex;
    const jp_graph *g;
    bool op_level;
    jp_st_writer *w;
    float *host;
} dump_ctx;

/* after_layer hook: copies the layer's output (and at op granularity every
 * op's value) while it is intact, before a later layer reuses its buffer. */
static jp_status dump_layer(void *ctx, int layer, jp_error *err)
{
    dump_ctx *d = ctx;
    const jp_graph *g = d->g;
    const int first = g->layers[layer].first_op, last = first + g->layers[layer].n_ops - 1;
    char name[600];
    for (int i = first; i <= last; i++) {
        if (i != last && !d->op_level)
            continue;
        jp_tensor t = jp_exec_value(d->ex, i);
        if (!t.data)
            continue;
        free(d->host);
        d->host = malloc((size_t)jp_tensor_numel(&t) * sizeof(float));
        if (!d->host)
            return jp_error_set(err, JP_ERR_NOMEM, "--dump-layers: out of memory");
        if (jp_exec_download(d->ex, i, d->host, err))
            return err->status;
        if (i == last) {
            snprintf(name, sizeof name, "layer.%d", layer);
            if (jp_st_writer_add_copy(d->w, name, t.rank, t.dims, d->host, err))
                return err->status;
        }
        if (d->op_level) {
            snprintf(name, sizeof name, "op.%s", g->ops[i].name);
            if (jp_st_writer_add_copy(d->w, name, t.rank, t.dims, d->host, err))
                return err->status;
        }
        if (i == g->output && jp_st_writer_add_copy(d->w, "logits", t.rank, t.dims, d->host, err))
            return err->status;
    }
    return JP_OK;
}

/* Writes input, layer.<i>, op.<name> (op granularity) and logits, read in
 * one more pass, each right after its layer ran. */
static jp_status dump_values(jp_exec *ex, const jp_cli_model *m, bool op_level, const char *path, jp_error *err)
{
    const jp_graph *g = &m->graph;
    jp_st_writer w;
    jp_st_writer_init(&w);
    dump_ctx d = {.ex = ex, .g = g, .op_level = op_level, .w = &w};
    const jp_exec_hooks hooks = {.ctx = &d, .after_layer = dump_layer};
    jp_status st = jp_st_writer_add_copy(&w, "input", g->input_rank, g->input_dims, m->input, err);
    if (st == JP_OK)
        st = jp_exec_forward(ex, &hooks, err);
    if (st == JP_OK) {
        jp_st_writer_set_metadata(&w, "model", g->model, err);
        jp_st_writer_set_metadata(&w, "weights", m->weights.synthetic ? "synthetic" : m->weights.path, err);
        st = jp_st_writer_write(&w, path, err);
    }
    free(d.host);
    jp_st_writer_free(&w);
    return st;
}

int jp_cmd_infer(int argc, char **argv)
{
    infer_options o = {.device = JP_DEVICE_CPU, .fuse = true, .runs = 5, .warmup = 1, .top = 5};
    jp_error err = {0};
    jp_status st = parse_args(argc, argv, &o, &err);
    if (st == JP_STATUS_COUNT) {
        usage(stdout);
        return 0;
    }
    if (st)
        return jp_cli_fail("infer", &err);
    if (!o.threads)
        o.threads = jp_cli_default_threads();
    o.model.quiet = false;
    if (jp_cli_init_device(o.device, (int)o.threads, &err))
        return jp_cli_fail("infer", &err);

    jp_cli_model m;
    if (jp_cli_model_load(&m, &o.model, &err))
        return jp_cli_fail("infer", &err);
    const jp_graph *g = &m.graph;
    jp_cli_plan plan = {0};
    if (o.plan_path && jp_cli_plan_load(o.plan_path, g, o.device, &plan, &err)) {
        jp_cli_model_free(&m);
        return jp_cli_fail("infer", &err);
    }
    jp_exec ex;
    jp_exec_options eo = {
        .device = o.device,
        .fuse = o.fuse && !o.op_level,
        .keep_all_values = o.op_level && o.dump_path,
        .share_layer_outputs = true, /* whole passes only; the dump reads in-pass */
        .kernel_for_op = o.plan_path ? jp_cli_plan_kernel : NULL,
        .kernel_for_op_ctx = &plan,
        .release_params = true, /* nothing reads the weights after the build */
    };
    jp_measure_pass_timer t = {.pass = -1};
    double *scratch = NULL, *total_s = NULL, *hooked_s = NULL;
    int rc = 0;
    /* Build time includes every kernel's prepare (on cuda: cuDNN's timed
     * algorithm search per convolution), reported because it can dwarf a
     * pass. */
    int64_t t_build = jp_clock_ns();
    if (jp_exec_build(&ex, g, &eo, &err)) {
        jp_cli_plan_free(&plan);
        jp_cli_model_free(&m);
        return jp_cli_fail("infer", &err);
    }
    double build_s = (double)(jp_clock_ns() - t_build) * 1e-9;
    /* At op granularity every op is a step of its own (no fusion). */
    bool per_step = o.op_level || o.steps;
    const char *unit = o.op_level ? "op" : o.steps ? "step" : "layer";
    t.n_units = per_step ? ex.n_steps : g->n_layers;
    t.unit_s = calloc((size_t)o.runs * (size_t)t.n_units, sizeof *t.unit_s);
    scratch = calloc((size_t)o.runs, sizeof *scratch);
    total_s = calloc((size_t)o.runs, sizeof *total_s);
    hooked_s = calloc((size_t)o.runs, sizeof *hooked_s);
    if (!t.unit_s || !scratch || !total_s || !hooked_s) {
        jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    jp_exec_hooks hooks = {.ctx = &t};
    if (per_step)
        hooks.before_step = jp_measure_timer_before, hooks.after_step = jp_measure_timer_after;
    else
        hooks.before_layer = jp_measure_timer_before, hooks.after_layer = jp_measure_timer_after;

    int64_t t_in = jp_clock_ns();
    if (jp_exec_set_input(&ex, m.input, &err) || ex.backend->synchronize(&err))
        goto fail;
    double upload_s = (double)(jp_clock_ns() - t_in) * 1e-9;
    for (long r = 0; r < o.warmup; r++)
        if (jp_exec_forward(&ex, NULL, &err))
            goto fail;
    /* Per-layer times: passes with the hooks (each synchronises the device). */
    for (long r = 0; r < o.runs; r++) {
        t.pass = (int)r;
        int64_t t0 = jp_clock_ns();
        if (jp_exec_forward(&ex, &hooks, &err))
            goto fail;
        hooked_s[r] = (double)(jp_clock_ns() - t0) * 1e-9;
    }
    /* End-to-end times: passes without hooks, one synchronise at the end. */
    for (long r = 0; r < o.runs; r++) {
        int64_t t0 = jp_clock_ns();
        if (jp_exec_forward(&ex, NULL, &err))
            goto fail;
        total_s[r] = (double)(jp_clock_ns() - t0) * 1e-9;
    }

    if (!o.quiet) {
        printf("model %s | device %s (%ld threads) | weights %s | %s [1, 3, %lld, %lld] | kernels %s, prepared in "
               "%.2f s\n",
               g->model, jp_device_name(o.device), o.threads, m.weights.synthetic ? "SYNTHETIC" : m.weights.path,
               m.input_desc, (long long)g->input_dims[2], (long long)g->input_dims[3],
               o.plan_path ? o.plan_path : "default", build_s);
        printf("%-5s %-34s %-22s %-20s %-28s %10s\n", unit, "path", "type", "output",
               "kernel", "median_ms");
    }
    double sum_s = 0;
    for (int u = 0; u < t.n_units; u++) {
        double med = median_of(t.unit_s, (int)o.runs, t.n_units, u, scratch);
        sum_s += med;
        if (o.quiet)
            continue;
        char shape[64];
        if (per_step) {
            /* A fused step is named by its first op; "+N" counts the ops fused into it. */
            const jp_exec_step *es = &ex.steps[u];
            jp_shape_str(es->step.out.rank, es->step.out.dims, shape, sizeof shape);
            char type[48];
            if (es->n_ops > 1)
                snprintf(type, sizeof type, "%s +%d", jp_op_type_name(es->step.op->type), es->n_ops - 1);
            else
                snprintf(type, sizeof type, "%s", jp_op_type_name(es->step.op->type));
            printf("%-5d %-34s %-22s %-20s %-28s %10.4f\n", u, es->step.op->name, type, shape, es->kernel->name,
                   med * 1e3);
        } else {
            const jp_layer *l = &g->layers[u];
            const jp_op *last = &g->ops[l->first_op + l->n_ops - 1];
            jp_shape_str(last->out_rank, last->out_dims, shape, sizeof shape);
            const jp_exec_step *first = &ex.steps[ex.layer_first_step[u]];
            int n_steps = ex.layer_first_step[u + 1] - ex.layer_first_step[u];
            char kernel[64];
            snprintf(kernel, sizeof kernel, "%s%s", first->kernel->name, n_steps > 1 ? " +" : "");
            printf("%-5d %-34s %-22s %-20s %-28s %10.4f\n", u, l->path, l->module, shape, kernel, med * 1e3);
        }
    }
    double med_total = median_of(total_s, (int)o.runs, 1, 0, scratch);
    double med_hooked = median_of(hooked_s, (int)o.runs, 1, 0, scratch);
    double min_total = total_s[0];
    for (long r = 1; r < o.runs; r++)
        min_total = fmin(min_total, total_s[r]);
    printf("forward: median %.3f ms, min %.3f ms over %ld runs; with per-%s timing: median %.3f ms, sum of %s "
           "medians %.3f ms; input upload %.3f ms\n",
           med_total * 1e3, min_total * 1e3, o.runs, unit, med_hooked * 1e3, unit, sum_s * 1e3, upload_s * 1e3);

    jp_tensor logits = jp_exec_value(&ex, g->output);
    float *host = malloc((size_t)jp_tensor_numel(&logits) * sizeof(float));
    if (!host) {
        jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (jp_exec_download(&ex, g->output, host, &err)) {
        free(host);
        goto fail;
    }
    if (o.top > 0)
        print_top(host, (int)logits.dims[logits.rank - 1], (int)o.top);
    if (m.weights.synthetic && o.top > 0)
        printf("(synthetic weights: these classes mean nothing)\n");
    free(host);
    if (o.dump_path) {
        if (dump_values(&ex, &m, o.op_level, o.dump_path, &err))
            goto fail;
        if (!o.quiet)
            printf("wrote %s\n", o.dump_path);
    }
    if (o.memory)
        print_memory(&ex, &m);
    goto done;
fail:
    rc = jp_cli_fail("infer", &err);
done:
    free(t.unit_s);
    free(scratch);
    free(total_s);
    free(hooked_s);
    jp_exec_free(&ex);
    jp_cli_plan_free(&plan);
    jp_cli_model_free(&m);
    return rc;
}
