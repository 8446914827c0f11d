/* main.c: jplprof's entry point: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"infer", jp_cmd_infer, "run one image through a model: top-5 classes and per-layer times"},
    {"compare", jp_cmd_compare, "run every implementation of each op on its real input: error and time"},
    {"layers", jp_cmd_layers, "print a model's layer (or op) table: shapes, parameters, MACs"},
    {"models", jp_cmd_models, "list the models jplprof can run (AvailableModel.txt)"},
    {"profile", jp_cmd_profile, "generate the layer-wise latency and power dataset (the seed's options)"},
    {"process", jp_cmd_process, "average a raw dataset into Processed/Mode<M>.json (the seed's shape)"},
    {"export", jp_cmd_export, "the processed dataset joined with its layer table: csv, jsonl, trtexec"},
    {"report", jp_cmd_report, "one self-contained HTML page of a dataset: latency, power, energy per layer"},
    {"calibrate", jp_cmd_calibrate, "measure the power sensor: its lag (tau), update period, LSB and noise"},
    {"tegrastats", jp_cmd_tegrastats, "convert a tegrastats log (any Jetson) to CSV"},
};

static void usage(FILE *out)
{
    fprintf(out, "jplprof %s: per-layer latency and power of torchvision CNNs, in C\n\n"
                 "usage: jplprof COMMAND [options]   (jplprof COMMAND --help for its options)\n\n",
            JP_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nOptions are written --like-this; the seed tool's --like_this is accepted too.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return JP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("jplprof %s\n", JP_VERSION);
        return 0;
    }
    jp_cli_normalize_options(argc, argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "jplprof: unknown command \"%s\" (see jplprof --help)\n", argv[1]);
    return JP_EXIT_USAGE;
}
