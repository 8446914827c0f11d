/* cmd_export.c: `jplprof export` (profiler/export.h does the work). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "export.h"

static const char export_usage[] =
    "usage: jplprof export [--dataset D] [--modes M[,M...]] [--format csv|jsonl|trtexec] [--out F]\n\n"
    "One row per (mode, device, network, layer): the layer table of the profile's manifest\n"
    "(path, type, shapes, params, MACs, kernels) joined with process --stats's numbers.\n\n"
    "  --dataset D   the raw data's root (default Dataset)\n"
    "  --modes M     only these modes (comma- or space-separated; default: every Mode* folder)\n"
    "  --format F    csv (default), jsonl (one JSON object a line), or trtexec (trtexec\n"
    "                --exportProfile's JSON, one file per mode, device and network)\n"
    "  --out F       csv/jsonl: the file (default standard output); trtexec: a folder\n"
    "                (default <dataset>/Exported)\n"
    "Columns and units: profiler/DATASET.md, \"jplprof export\".\n";

static void print_line(void *ctx, const char *line) { fprintf(stderr, "jplprof export: %s\n", line); }

int jp_cmd_export(int argc, char **argv)
{
    static const struct option longs[] = {
        {"dataset", required_argument, NULL, 'd'}, {"modes", required_argument, NULL, 'm'},
        {"format", required_argument, NULL, 'f'},  {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    jp_export_options opt = {.dataset_dir = "Dataset", .format = JP_EXPORT_CSV, .notify = print_line};
    jp_error err = {0};
    char modes[1024] = "";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 'd': opt.dataset_dir = optarg; break;
        case 'o': opt.out = optarg; break;
        case 'm':
            /* the seed's nargs='+' style: --modes 0 1 as well as --modes 0,1 */
            snprintf(modes, sizeof modes, "%s", optarg);
            while (optind < argc && argv[optind][0] != '-') {
                size_t used = strlen(modes);
                snprintf(modes + used, sizeof modes - used, ",%s", argv[optind++]);
            }
            opt.modes = modes;
            break;
        case 'f':
            if (strcmp(optarg, "csv") == 0)
                opt.format = JP_EXPORT_CSV;
            else if (strcmp(optarg, "jsonl") == 0)
                opt.format = JP_EXPORT_JSONL;
            else if (strcmp(optarg, "trtexec") == 0)
                opt.format = JP_EXPORT_TRTEXEC;
            else {
                jp_error_set(&err, JP_ERR_ARG, "--format: '%s' is not one of csv, jsonl, trtexec", optarg);
                return jp_cli_fail("export", &err);
            }
            break;
        case 'h': printf("%s", export_usage); return 0;
        default:
            jp_cli_getopt_error("export", c, argv, &err);
            return jp_cli_fail("export", &err);
        }
    }
    if (jp_cli_no_operands("export", argc, argv, &err))
        return jp_cli_fail("export", &err);
    if (jp_export_run(&opt, &err))
        return jp_cli_fail("export", &err);
    return 0;
}
