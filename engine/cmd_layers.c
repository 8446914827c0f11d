/* cmd_layers.c: `jplprof models` and `jplprof layers MODEL`: what can run, and
 * a model's layer (or op) table with shapes, parameters and MACs; with
 * --device, also the kernel of every step on that device and what its
 * prepare chose (the cuDNN algorithm and workspace on cuda). */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int jp_cmd_models(int argc, char **argv)
{
    jp_error err = {0};
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            printf("usage: jplprof models\n\nLists the models jplprof can run (AvailableModel.txt), one a line,\n"
                   "with whether converted weights are present.\n");
            return 0;
        }
        jp_error_set(&err, JP_ERR_ARG, "unexpected argument \"%s\" (see jplprof models --help)", argv[1]);
        return jp_cli_fail("models", &err);
    }
    char **names;
    int n;
    if (jp_cli_read_models(&names, &n, &err))
        return jp_cli_fail("models", &err);
    for (int i = 0; i < n; i++) {
        char rel[PATH_MAX], path[PATH_MAX];
        snprintf(rel, sizeof rel, "weights/%s.safetensors", names[i]);
        jp_cli_path(path, sizeof path, rel);
        FILE *f = fopen(path, "rb");
        printf("%-18s %s\n", names[i], f ? "converted weights" : "synthetic weights");
        if (f)
            fclose(f);
    }
    jp_cli_free_models(names, n);
    return 0;
}

static void layers_usage(FILE *out)
{
    fprintf(out, "usage: jplprof layers MODEL [--granularity layer|op] [--input-size N]\n"
                 "                     [--device cpu|cuda [--no-fuse] [--plan FILE] [--threads N]]\n"
                 "\n"
                 "Prints MODEL's layer table: index, torchvision path, type, input and output\n"
                 "shapes, parameters and multiply-accumulates (MACs) for one image.\n"
                 "  --granularity layer|op  one row per layer (default, the seed's split) or per op\n"
                 "  --input-size N          input height and width (default: the model's, 224)\n"
                 "  --device cpu|cuda       also prepare the model there (weights as infer finds\n"
                 "                          them) and list each step's kernel and what its prepare\n"
                 "                          chose: on cuda the cuDNN algorithm, found by timing\n"
                 "  --no-fuse, --plan FILE  the steps infer would run with these options\n");
}

static void shape_of(const jp_graph *g, int v, char *buf, size_t bytes)
{
    int rank;
    int64_t dims[JP_MAX_RANK];
    jp_graph_value_shape(g, v, &rank, dims);
    jp_shape_str(rank, dims, buf, bytes);
}

/* Builds the executor for model on device (initialised by the caller), as
 * infer would, and prints every step: its layer, the ops it covers, its
 * kernel and the kernel's describe. */
static jp_status print_kernels(const char *model, jp_device device, bool fuse, const char *plan_path, jp_error *err)
{
    jp_cli_model m;
    jp_cli_model_options mo = {.model = model};
    jp_cli_plan plan = {0};
    jp_exec ex;
    bool built = false;
    jp_status st = jp_cli_model_load(&m, &mo, err);
    if (st)
        return st;
    if (plan_path && (st = jp_cli_plan_load(plan_path, &m.graph, device, &plan, err)))
        goto done;
    jp_exec_options eo = {.device = device, .fuse = fuse, .kernel_for_op = plan_path ? jp_cli_plan_kernel : NULL,
                          .kernel_for_op_ctx = &plan};
    if ((st = jp_exec_build(&ex, &m.graph, &eo, err)))
        goto done;
    built = true;
    const jp_graph *g = &m.graph;
    char desc[256] = "";
    if (ex.backend->describe)
        ex.backend->describe(desc, sizeof desc);
    printf("\nkernels on %s (%s; %s%s%s):\n", jp_device_name(device), desc,
           fuse ? "batch-norm, activation and residual add fused as infer fuses them" : "every op alone",
           plan_path ? ", plan " : "", plan_path ? plan_path : "");
    printf("%-5s %-5s %-46s %-34s %s\n", "step", "layer", "ops", "kernel", "chose");
    for (int s = 0; s < ex.n_steps; s++) {
        const jp_exec_step *es = &ex.steps[s];
        char ops[256], chose[256];
        int used = snprintf(ops, sizeof ops, "%s", g->ops[es->first_op].name);
        for (int i = es->first_op + 1; i < es->first_op + es->n_ops && used < (int)sizeof ops; i++)
            used += snprintf(ops + used, sizeof ops - (size_t)used, "+%s", g->ops[i].name);
        jp_kernel_describe(es->kernel, es->state, chose, sizeof chose);
        printf("%-5d %-5d %-46s %-34s %s\n", s, es->layer, ops, es->kernel->name, chose);
    }
done:
    if (built)
        jp_exec_free(&ex);
    jp_cli_plan_free(&plan);
    jp_cli_model_free(&m);
    return st;
}

/* layers' options; JP_STATUS_COUNT for --help. */
typedef struct layers_options {
    bool op_level, device_given, no_fuse;
    jp_device device;
    const char *plan_path;
    long size, threads;
    const char *model;
} layers_options;

static jp_status parse_args(int argc, char **argv, layers_options *o, jp_error *err)
{
    static const struct option options[] = {
        {"granularity", required_argument, NULL, 'g'},
        {"input-size", required_argument, NULL, 's'},
        {"device", required_argument, NULL, 'd'},
        {"no-fuse", no_argument, NULL, 'F'},
        {"plan", required_argument, NULL, 'P'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (jp_cli_parse_granularity(optarg, &o->op_level, err))
                return err->status;
            break;
        case 's':
            if (jp_cli_parse_int("--input-size", optarg, 1, 8192, &o->size, err))
                return err->status;
            break;
        case 'd':
            if (jp_cli_parse_device(optarg, &o->device, err))
                return err->status;
            o->device_given = true;
            break;
        case 'F': o->no_fuse = true; break;
        case 'P': o->plan_path = optarg; break;
        case 't':
            if (jp_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, err))
                return err->status;
            break;
        case 'h': return JP_STATUS_COUNT;
        default:
            return jp_cli_getopt_error("layers", c, argv, err);
        }
    }
    o->model = optind == argc - 1 ? argv[optind] : NULL;
    return JP_OK;
}

int jp_cmd_layers(int argc, char **argv)
{
    jp_error err = {0};
    layers_options o = {.device = JP_DEVICE_CPU};
    jp_status pst = parse_args(argc, argv, &o, &err);
    if (pst == JP_STATUS_COUNT) {
        layers_usage(stdout);
        return 0;
    }
    if (pst)
        return jp_cli_fail("layers", &err);
    if (!o.model) {
        layers_usage(stderr);
        return JP_EXIT_USAGE;
    }
    bool op_level = o.op_level, device_given = o.device_given, no_fuse = o.no_fuse;
    jp_device device = o.device;
    const char *plan_path = o.plan_path;
    long size = o.size, threads = o.threads;
    const char *model = o.model;
    if (jp_cli_check_model(model, &err))
        return jp_cli_fail("layers", &err);
    if (!device_given && (no_fuse || plan_path || threads)) {
        jp_error_set(&err, JP_ERR_ARG, "--no-fuse, --plan and --threads go with --device (see jplprof layers --help)");
        return jp_cli_fail("layers", &err);
    }
    if (device_given && size) {
        jp_error_set(&err, JP_ERR_ARG, "--device prepares the model at its own input size: drop --input-size");
        return jp_cli_fail("layers", &err);
    }
    if (!threads)
        threads = jp_cli_default_threads();
    /* The device first: no table before "no CUDA device". */
    if (device_given && jp_cli_init_device(device, (int)threads, &err))
        return jp_cli_fail("layers", &err);
    char rel[PATH_MAX], json[PATH_MAX];
    snprintf(rel, sizeof rel, "weights/%s.json", model);
    jp_graph g;
    if (jp_graph_load(jp_cli_path(json, sizeof json, rel), &g, &err))
        return jp_cli_fail("layers", &err);
    int hw = size ? (int)size : (int)g.input_dims[2];
    if (jp_graph_infer_shapes(&g, 1, hw, size ? hw : (int)g.input_dims[3], &err)) {
        jp_graph_free(&g);
        return jp_cli_fail("layers", &err);
    }
    printf("%s: %d layers, %d ops, input [1, 3, %d, %d]\n", model, g.n_layers, g.n_ops, hw,
           size ? hw : (int)g.input_dims[3]);
    printf("%-5s %-5s %-34s %-22s %-20s %-20s %12s %14s\n", "index", "layer", "path", "type", "input", "output",
           "params", "MACs");
    int64_t total_params = 0, total_macs = 0;
    char in[64], out[64];
    if (op_level) {
        for (int i = 0; i < g.n_ops; i++) {
            const jp_op *op = &g.ops[i];
            shape_of(&g, op->inputs[0], in, sizeof in);
            shape_of(&g, i, out, sizeof out);
            printf("%-5d %-5d %-34s %-22s %-20s %-20s %12" PRId64 " %14" PRId64 "\n", i, op->layer, op->name,
                   jp_op_type_name(op->type), in, out, op->n_param_elems, op->macs);
            total_params += op->n_param_elems;
            total_macs += op->macs;
        }
    } else {
        for (int l = 0; l < g.n_layers; l++) {
            const jp_layer *layer = &g.layers[l];
            int64_t params = 0, macs = 0;
            for (int i = layer->first_op; i < layer->first_op + layer->n_ops; i++)
                params += g.ops[i].n_param_elems, macs += g.ops[i].macs;
            shape_of(&g, g.ops[layer->first_op].inputs[0], in, sizeof in);
            shape_of(&g, layer->first_op + layer->n_ops - 1, out, sizeof out);
            printf("%-5d %-5d %-34s %-22s %-20s %-20s %12" PRId64 " %14" PRId64 "\n", l, l, layer->path, layer->module,
                   in, out, params, macs);
            total_params += params;
            total_macs += macs;
        }
    }
    printf("total: %" PRId64 " parameters, %" PRId64 " MACs (%.2f GMAC)\n", total_params, total_macs,
           (double)total_macs / 1e9);
    jp_graph_free(&g);
    fflush(stdout);
    if (device_given &&
        print_kernels(model, device, !no_fuse && !op_level, plan_path, &err))
        return jp_cli_fail("layers", &err);
    return 0;
}
