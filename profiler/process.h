/*
 * process.h: `jplprof process`, the post-processing of a raw dataset into one
 * JSON file per power mode, in exactly the seed tool's shape:
 *
 *   <root>/Mode<M>.json = {network: {"cpu"|"gpu": {
 *       "power":   {"<layer>": {"<param>": mean}},    (mW for rails)
 *       "latency": {"<layer>": mean_seconds}}}}
 *
 * and, with --stats, beside "power" and "latency" (the seed's keys stay as
 * they are, so old consumers keep working):
 *
 *       "power_stats":   {"<layer>": {"<param>": {"median", "std", "n"}}},
 *       "latency_stats": {"<layer>": {"median", "std", "n"}}
 *
 * It reads jplprof's raw files (power re-windowed from <stem>_power_raw.json)
 * and the seed tool's own (<stem>_sc_<n>.json, <stem>_sf_<f>_sb_<b>.json),
 * and gives the same numbers for the same samples in either.  Every sample
 * of every image is pooled: a layer's mean is the mean of all its samples
 * over all images (not a mean of per-image means).  Precise rules in
 * profiler/DATASET.md.
 */
#ifndef JP_PROCESS_H
#define JP_PROCESS_H

#include <stdbool.h>

#include "../engine/jp_error.h"

/* Receives one human-readable line (no newline): a file written, or a
 * warning such as a window that held no sample.  For the CLI to print. */
typedef void (*jp_process_notify_fn)(void *ctx, const char *line);

typedef struct jp_process_options {
    const char *dataset_dir; /* --dataset: the raw data's root; default "Dataset"            */
    const char *output_root; /* --output_file_root; NULL: <dataset_dir>/Processed            */
    const char *modes;       /* --modes: comma-separated ("0,2"); NULL: every Mode* folder   */
    const char *params;      /* --params: comma-separated parameter names; NULL: the device
                                rail.  "rail" stands for the device's rail, "all" for every
                                numeric parameter sampled: "rail,VDD_SYS_SOC" adds one beside
                                the rail, "VDD_SYS_SOC" replaces it.                          */
    bool stats;              /* --stats: median, std (n-1), n beside each mean              */
    double boundary_s;       /* --tgr_smpl_boundary: re-window jplprof raw files with this
                                boundary (s); < 0: the boundary each file recorded          */
    bool help;               /* -h/--help was given: print jp_process_usage(), do nothing   */
    jp_process_notify_fn notify; /* NULL: silent */
    void *notify_ctx;
    char *owned_[3]; /* private: strings jp_process_parse_args() allocated */
} jp_process_options;

/* Sets the defaults above (dataset "Dataset", boundary_s -1, rest empty). */
void jp_process_options_init(jp_process_options *opt);

/* Frees what jp_process_parse_args() allocated; safe on hand-filled options
 * (it frees only owned_). */
void jp_process_options_free(jp_process_options *opt);

/*
 * Parses `jplprof process` arguments; argv[0] is the subcommand's name and is
 * skipped.  Accepts the seed's names (--modes, --params, --output_file_root)
 * and dash variants (--output-file-root), "--opt value" and "--opt=value";
 * lists comma-separated or space-separated as the seed's argparse took them
 * (--modes 0 1 --params VDD_SYS_GPU VDD_SYS_SOC).  opt must have been
 * initialised with jp_process_options_init().  Uses getopt_long (resets its
 * state; not thread-safe).  JP_ERR_ARG names the option at fault.
 */
jp_status jp_process_parse_args(int argc, char **argv, jp_process_options *opt, jp_error *err);

/* The option summary for --help: one line per option, each ending in a
 * newline, without a "usage:" header (the CLI prints that). */
const char *jp_process_usage(void);

/*
 * Processes every selected mode of opt->dataset_dir and writes
 * <root>/Mode<M>.json atomically for each (creating root).  Errors name the
 * file and line, or the folder and layer, at fault: a malformed raw file, a
 * requested parameter that a layer lacks, a --modes entry with no folder.
 * A mode's file is written only when the whole mode was read without error.
 */
jp_status jp_process_run(const jp_process_options *opt, jp_error *err);

/* Receives one mode's processed document (exactly what jp_process_run would
 * write to <root>/Mode<mode>.json); borrowed for the call only.  A non-OK
 * return stops jp_process_collect with that status. */
struct cJSON;
typedef jp_status (*jp_process_mode_fn)(void *ctx, const char *mode, const struct cJSON *doc, jp_error *err);

/*
 * jp_process_run without writing: each selected mode's document goes to fn,
 * in mode order (export and report use it, so that their numbers are
 * process's own).  opt->output_root is not created.  Same errors as
 * jp_process_run, plus whatever fn returns.
 */
jp_status jp_process_collect(const jp_process_options *opt, jp_process_mode_fn fn, void *ctx, jp_error *err);

#endif /* JP_PROCESS_H */
