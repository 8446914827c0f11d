/*
 * cli.h: what the subcommands of jplprof share: option spelling, the project
 * root, loading a model (graph + weights) and the input.
 *
 * Only the CLI prints errors and chooses exit codes; everything it calls
 * returns jp_status.  Exit codes: 0 success, 1 runtime failure (bad file,
 * device error), 2 usage error (unknown option, bad value).
 */
#ifndef JP_CLI_H
#define JP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "jp_error.h"
#include "jp_exec.h"
#include "jp_graph.h"
#include "jp_weights.h"
#include "power.h"

#define JP_EXIT_FAILURE 1
#define JP_EXIT_USAGE 2

#define JP_VERSION "0.1.0"

/* Rewrites "--tgr_interval" to "--tgr-interval" (the seed's spelling and
 * ours) in place, up to an '='; leaves everything else alone. */
void jp_cli_normalize_options(int argc, char **argv);

/* Prints "jplprof <cmd>: <err.msg>" on stderr and returns JP_EXIT_FAILURE
 * (JP_EXIT_USAGE for JP_ERR_ARG). */
int jp_cli_fail(const char *cmd, const jp_error *err);

/* The JP_ERR_ARG for what getopt_long returned and no case of cmd took: ':'
 * an option without its value, anything else an unknown option; each names
 * argv[optind - 1] and `jplprof <cmd> --help`.  Use with opterr = 0 and an
 * optstring that starts with ':'. */
jp_status jp_cli_getopt_error(const char *cmd, int c, char **argv, jp_error *err);

/* JP_OK when getopt_long left no operand (optind == argc), else the
 * JP_ERR_ARG naming the first one and `jplprof <cmd> --help`. */
jp_status jp_cli_no_operands(const char *cmd, int argc, char **argv, jp_error *err);

/* Parses a whole decimal integer in [lo, hi]; JP_ERR_ARG naming the option. */
jp_status jp_cli_parse_int(const char *option, const char *text, long lo, long hi, long *out, jp_error *err);
jp_status jp_cli_parse_double(const char *option, const char *text, double lo, double hi, double *out,
                              jp_error *err);

/* The folder holding AvailableModel.txt, weights/ and data/: $JPLPROF_ROOT,
 * else $JPLPROF_DATA, else the current directory when it has
 * AvailableModel.txt, else <exe>/../share/jplprof when it has one (an
 * installed jplprof), else the folder of the executable. */
const char *jp_cli_root(void);

/* Joins root and a relative path into buf; returns buf. */
char *jp_cli_path(char *buf, size_t buf_bytes, const char *relative);

/* Reads AvailableModel.txt: *names (count *n) are owned by the caller
 * (jp_cli_free_models). */
jp_status jp_cli_read_models(char ***names, int *n, jp_error *err);
void jp_cli_free_models(char **names, int n);

/* Fails with JP_ERR_ARG listing the available models unless name is one. */
jp_status jp_cli_check_model(const char *name, jp_error *err);

/* The --threads default: the online cores (at least 1). */
long jp_cli_default_threads(void);

/* Parses --granularity: "layer" (false) or "op" (true). */
jp_status jp_cli_parse_granularity(const char *text, bool *op_level, jp_error *err);

/* Median of n > 0 values; sorts v in place. */
double jp_cli_median(double *v, size_t n);

/* Parses "cpu" / "cuda" (also "gpu"). */
jp_status jp_cli_parse_device(const char *text, jp_device *device, jp_error *err);

/* Initialises the backend for device (and its threads); a clear error when
 * the build or the machine has none. */
jp_status jp_cli_init_device(jp_device device, int threads, jp_error *err);

/* A model ready to run: graph (shapes inferred), weights, and the input. */
typedef struct jp_cli_model {
    jp_graph graph;
    jp_weights weights;
    float *input;            /* [1, 3, h, w] host, preprocessed          */
    char input_desc[512];    /* "data/imagenet/chelsea.jpg" or "tensor X" */
} jp_cli_model;

typedef struct jp_cli_model_options {
    const char *model;
    const char *weights_path; /* NULL: weights/<model>.safetensors, synthetic when absent */
    const char *image;        /* NULL with input_tensor, or for a synthetic input */
    const char *input_tensor; /* safetensors file holding "input" [1,3,h,w] */
    uint64_t seed;            /* synthetic weights                          */
    bool synthetic;           /* synthetic weights even when a file exists  */
    bool quiet;               /* no notice on stderr about synthetic weights */
} jp_cli_model_options;

/* Loads graph, weights and input; prints the synthetic-weights notice on
 * stderr unless quiet.  On failure everything is released. */
jp_status jp_cli_model_load(jp_cli_model *m, const jp_cli_model_options *opt, jp_error *err);
void jp_cli_model_free(jp_cli_model *m);

/* A kernel plan (`compare --plan` writes it; infer, profile and compare
 * read it): the kernel to use per op name, for one model and device.
 * Format: {"format": "jplprof-plan-1", "model": M, "device": D,
 *          "ops": {"<op name>": "<kernel name>", ...}}. */
typedef struct jp_cli_plan {
    char *path;
    int n;
    char **op_names, **kernel_names; /* n each */
} jp_cli_plan;

/* Reads and checks a plan: its model and device must be these, every op
 * must be one of graph's and every kernel a kernel of this build for that
 * device and op type.  Errors name the file and the entry. */
jp_status jp_cli_plan_load(const char *path, const jp_graph *graph, jp_device device, jp_cli_plan *plan,
                           jp_error *err);
void jp_cli_plan_free(jp_cli_plan *plan);
/* jp_exec_options.kernel_for_op for a plan (ctx: the jp_cli_plan). */
const char *jp_cli_plan_kernel(void *ctx, const jp_op *op);

/* The power options that profile and compare share (--eval_tgr). */
typedef struct jp_cli_power_options {
    jp_power_kind kind;        /* --power-source, default auto            */
    long interval_ms;          /* --tgr_interval, default 20              */
    const char *tegrastats;    /* --tegrastats: program, NULL = on PATH   */
    const char *rail;          /* --rail: override of the board table     */
    void (*on_tried)(void *ctx, const char *kind, const char *msg); /* jp_power_options' */
    void *on_tried_ctx;
} jp_cli_power_options;

/* Opens and starts the power source for --eval_tgr and chooses the rail
 * that is device's power.  A source that is missing or refuses, or
 * --power-source none, is an error that says how to fix it; *src is then
 * NULL (everything released).  The caller closes *src. */
jp_status jp_cli_power_open(const jp_cli_power_options *o, jp_device device, jp_power_source **src,
                            jp_rail_choice *rail, jp_error *err);

/* The subcommands. */
int jp_cmd_models(int argc, char **argv);
int jp_cmd_layers(int argc, char **argv);
int jp_cmd_infer(int argc, char **argv);
int jp_cmd_compare(int argc, char **argv);
int jp_cmd_process(int argc, char **argv);
int jp_cmd_profile(int argc, char **argv);
int jp_cmd_tegrastats(int argc, char **argv);
int jp_cmd_calibrate(int argc, char **argv);
int jp_cmd_export(int argc, char **argv);
int jp_cmd_report(int argc, char **argv);

#endif /* JP_CLI_H */
