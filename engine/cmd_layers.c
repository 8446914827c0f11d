/* cmd_layers.c: `jplprof models` and `jplprof layers MODEL`: what can run, and
 * a model's layer (or op) table with shapes, parameters and MACs. */
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
                 "\n"
                 "Prints MODEL's layer table: index, torchvision path, type, input and output\n"
                 "shapes, parameters and multiply-accumulates (MACs) for one image.\n"
                 "  --granularity layer|op  one row per layer (default, the seed's split) or per op\n"
                 "  --input-size N          input height and width (default: the model's, 224)\n");
}

static void shape_of(const jp_graph *g, int v, char *buf, size_t bytes)
{
    int rank;
    int64_t dims[JP_MAX_RANK];
    jp_graph_value_shape(g, v, &rank, dims);
    jp_shape_str(rank, dims, buf, bytes);
}

int jp_cmd_layers(int argc, char **argv)
{
    static const struct option options[] = {
        {"granularity", required_argument, NULL, 'g'},
        {"input-size", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    jp_error err = {0};
    bool op_level = false;
    long size = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (jp_cli_parse_granularity(optarg, &op_level, &err))
                return jp_cli_fail("layers", &err);
            break;
        case 's':
            if (jp_cli_parse_int("--input-size", optarg, 1, 8192, &size, &err))
                return jp_cli_fail("layers", &err);
            break;
        case 'h':
            layers_usage(stdout);
            return 0;
        default:
            jp_error_set(&err, JP_ERR_ARG, "unknown option \"%s\" (see jplprof layers --help)", argv[optind - 1]);
            return jp_cli_fail("layers", &err);
        }
    }
    if (optind != argc - 1) {
        layers_usage(stderr);
        return JP_EXIT_USAGE;
    }
    const char *model = argv[optind];
    if (jp_cli_check_model(model, &err))
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
    return 0;
}
