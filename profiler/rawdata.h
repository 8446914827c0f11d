/*
 * rawdata.h: the raw dataset writer, one handle per (mode, device, network,
 * image), and the resume journal.
 *
 * Layout (DESIGN.md "Measurement protocol"; details in profiler/DATASET.md):
 *
 *   <out>/Mode<M>/<cpu|gpu>/latency/<network>/<stem>_sc_<n>.json
 *   <out>/Mode<M>/<cpu|gpu>/power/<network>/<stem>_sf_<f>_sb_<b>.json
 *   <out>/Mode<M>/<cpu|gpu>/power/<network>/<stem>_power_raw.json
 *   <out>/.jplprof/journal/Mode<M>/<cpu|gpu>/<network>/<stem>.jsonl
 *
 * <stem> is the image's file name without directory and without its last
 * extension ("data/imagenet/astronaut.png" -> "astronaut"); the device folder
 * is "gpu" for --device cuda, as the seed tool wrote it.  The first two files
 * are in the seed tool's own format (one JSON object per line, one line per
 * layer); the third keeps every power sample with its timestamp and each
 * layer's window markers so that `jplprof process` can re-window; the journal
 * records which (kind, layer) pairs are complete, for --resume.
 *
 * Crash safety: jp_raw_flush() rewrites each data file atomically (fileio.h),
 * then appends one fsync'd journal line per layer completed since the last
 * flush.  A layer is "done" only when its journal line is whole and its data
 * is in the file, so a run killed at any instant (SIGKILL, power cut) leaves
 * every layer either complete or absent: never a half layer.
 *
 * Not thread-safe: one thread drives a handle.  All times are
 * CLOCK_MONOTONIC nanoseconds, the clock of the power sampler's stamps.
 */
#ifndef JP_RAWDATA_H
#define JP_RAWDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "../engine/jp_error.h"

typedef enum jp_raw_kind {
    JP_RAW_LATENCY = 0,
    JP_RAW_POWER = 1,
    JP_RAW_KIND_COUNT
} jp_raw_kind;

/* "latency" or "power" (the folder name); "?" for an invalid kind. */
const char *jp_raw_kind_name(jp_raw_kind kind);

/* One sampled power-source parameter: a rail ("VDD_SYS_GPU", unit "mW") or
 * any other value the source reports ("RAM", "MB"; "GR3D_FREQ", "%"). */
typedef struct jp_raw_param {
    const char *name;
    const char *unit; /* NULL or "" when unitless */
} jp_raw_param;

typedef struct jp_raw_options {
    const char *out_dir; /* dataset root (profile --out), e.g. "Dataset"            */
    int mode;            /* --mode, >= 0: folder Mode<mode>                          */
    const char *device;  /* "cpu" or "cuda" ("gpu" accepted): folder cpu | gpu       */
    const char *network; /* model name, e.g. "alexnet"                               */
    const char *image;   /* image file name as given to --imgs, e.g. "astronaut.png" */
    bool resume;         /* load what earlier runs completed (else start afresh)     */

    /* Latency: enabled when eval_latency. */
    bool eval_latency;
    int lt_smpl_count; /* >= 1; names the file <stem>_sc_<n>.json                    */

    /* Power: enabled when eval_tgr. */
    bool eval_tgr;
    double tgr_smpl_duration_s;  /* > 0; the kept middle of each window, recorded  */
    double tgr_smpl_boundary_s;  /* >= 0; the window's trim on each side (_sb_)    */
    double cooldown_s;           /* >= 0; idle before each window, recorded        */
    int repeats;                 /* power windows per layer (--repeats); 0 = 1     */
    double tgr_interval_ms;      /* requested sampling interval, recorded; names
                                    the file: _sf_<int(1000 / interval)>, the
                                    seed's samples per second                      */
    const char *power_source;    /* "tegrastats", "ina3221", ...; recorded         */
    const char *device_rail;     /* the device's own rail; must be among params    */
    const jp_raw_param *params;  /* the columns of every sample, in order          */
    size_t n_params;             /* >= 1                                           */
    int64_t profile_start_ns;    /* monotonic origin of this run's timestamps;
                                    0: the first timestamp given to the handle     */
} jp_raw_options;

typedef struct jp_raw jp_raw; /* opaque */

/*
 * Opens the raw files of one (mode, device, network, image) under
 * opt->out_dir: creates the folders of the enabled kinds, removes stale temp
 * files of killed runs, and
 *   - with opt->resume, loads the journal and the existing data files, so
 *     that jp_raw_is_done() answers and the next flush keeps their layers;
 *     a power_raw file recorded with another duration, boundary or device
 *     rail is refused (JP_ERR_ARG: resume with the same settings or another
 *     --out), as is an image whose stem another image already uses;
 *   - without it, deletes the journal; existing data files are replaced at
 *     the first flush.
 * All strings in opt are copied; opt may be freed after the call.
 * On success *out is a new handle (jp_raw_close() it); on failure *out is
 * NULL and err names the file or the option at fault.
 */
jp_status jp_raw_open(jp_raw **out, const jp_raw_options *opt, jp_error *err);

/*
 * True when the journal says (kind, layer_key) was completed with this run's
 * settings (same file name: same lt_smpl_count, or duration and boundary)
 * and the data file holds that layer.  False for a disabled kind.
 */
bool jp_raw_is_done(const jp_raw *raw, jp_raw_kind kind, const char *layer_key);

/*
 * Records the latency samples of one layer: n >= 1 durations in seconds
 * (finite, >= 0), every one kept in order.  Replaces an earlier record of
 * the same layer (a re-run).  layer_key is the layer's index as a string
 * ("0", "1", ...) at layer granularity, the op's torchvision path at op
 * granularity.  Nothing is written before jp_raw_flush().
 * JP_ERR_ARG when latency is not enabled or a value is invalid.
 */
jp_status jp_raw_add_latency(jp_raw *raw, const char *layer_key, const double *samples_s, size_t n,
                             jp_error *err);

/*
 * Appends n power samples to this run's sample stream.  t_ns[i] is the
 * monotonic time sample i arrived (non-decreasing, also across calls);
 * values_by_param is row-major (n, n_params): values_by_param[i*n_params+p]
 * is params[p] at t_ns[i], NaN when the source did not report it.
 * Samples are kept whether or not they fall in a layer's window.
 * JP_ERR_ARG when power is not enabled or a time goes backwards.
 */
jp_status jp_raw_add_power_samples(jp_raw *raw, const int64_t *t_ns, const double *values_by_param,
                                   size_t n, jp_error *err);

/*
 * Records one layer's power window: the start of the idle cooldown before
 * it (idle_start_ns <= start_ns; == start_ns without a cooldown), the start
 * and end markers (monotonic ns, start_ns <= end_ns) around the layer's
 * loop and how many layer calls the loop completed.  repeat (0 ..
 * repeats - 1) numbers the layer's windows; the layer is complete (and
 * journalled) when all its repeats are recorded.  The samples that belong to the layer are those with
 * start_ns + boundary <= t <= end_ns - boundary (jp_raw_in_window()).
 * Replaces an earlier window of the same (layer, repeat).  Contract: before the flush
 * that completes this layer, every sample up to end_ns has been added.
 */
jp_status jp_raw_add_power_window(jp_raw *raw, const char *layer_key, int repeat, int64_t idle_start_ns,
                                  int64_t start_ns, int64_t end_ns, uint64_t calls, jp_error *err);

/*
 * Rewrites the enabled kinds' data files atomically from everything recorded
 * (loaded + added), then appends a journal line for each layer added since
 * the previous flush.  Call it after each layer: a kill loses at most the
 * layer in progress.  Cost: the power_raw file is rewritten whole each time
 * (O(samples so far)).  On failure the files on disk stay as they were after
 * the last successful flush and the layers stay pending (a later flush may
 * retry).
 */
jp_status jp_raw_flush(jp_raw *raw, jp_error *err);

/* Frees the handle without writing (flush first).  NULL is allowed. */
void jp_raw_close(jp_raw *raw);

/* The file a kind is written to ("Dataset/Mode0/cpu/latency/alexnet/
 * astronaut_sc_100.json"); for JP_RAW_POWER the seed-format file.  NULL when
 * the kind is not enabled.  Valid until jp_raw_close(). */
const char *jp_raw_path(const jp_raw *raw, jp_raw_kind kind);

/* The richer power file (<stem>_power_raw.json), NULL when power is off. */
const char *jp_raw_power_raw_path(const jp_raw *raw);

/* The journal file of this handle. */
const char *jp_raw_journal_path(const jp_raw *raw);

/* ---- readers, shared with process.c ---- */

/* One run's sample stream in a power_raw file.  Times are relative to t0_ns
 * (the run's monotonic origin) so that they stay exact as JSON doubles. */
typedef struct jp_raw_power_segment {
    int64_t t0_ns;       /* absolute CLOCK_MONOTONIC origin of this run           */
    size_t n_params;
    char **param_names;  /* (n_params)                                             */
    char **param_units;  /* (n_params), "" when unitless                           */
    size_t n_samples;
    size_t cap_samples;  /* allocated rows (writer's bookkeeping)                  */
    int64_t *t_ns;       /* (n_samples) arrival time - t0_ns, non-decreasing       */
    double *values;      /* (n_samples, n_params) row-major, NaN = not reported    */
} jp_raw_power_segment;

/* One layer's window; times relative to its segment's t0_ns. */
typedef struct jp_raw_power_window {
    char *layer;
    size_t segment; /* index into segments */
    int repeat;     /* which of the layer's --repeats windows (version 1: 0) */
    int64_t idle_start_ns; /* the cooldown before it began (version 1: == start_ns) */
    int64_t start_ns;
    int64_t end_ns;
    uint64_t calls; /* layer calls the window's loop completed */
} jp_raw_power_window;

/* The contents of a <stem>_power_raw.json file. */
typedef struct jp_raw_power_file {
    int version;        /* 1: jplprof before the seed's window (loop = duration);
                           2: loop = duration + 2 x boundary, cooldowns recorded */
    int mode;
    char *device;       /* "cpu" | "gpu" */
    char *network;
    char *image;        /* as given to --imgs */
    char *power_source;
    char *device_rail;
    double tgr_interval_ms;
    double tgr_smpl_duration_s;
    double tgr_smpl_boundary_s;
    double cooldown_s;  /* version 1: 0 */
    int repeats;        /* windows per layer; version 1: 1 */
    jp_raw_power_window *windows; /* (n_windows) in layer order, one per layer */
    size_t n_windows;
    jp_raw_power_segment *segments; /* (n_segments), one per run that added to it */
    size_t n_segments;
} jp_raw_power_file;

/*
 * Parses a power_raw file into *pf (zeroed first; jp_raw_power_file_free()
 * it, also after a failure).  Every field is checked; errors name the file
 * and the JSON path ("x_power_raw.json: segments[0].samples[3][2]: expected
 * a number or null").
 */
jp_status jp_raw_power_file_load(const char *path, jp_raw_power_file *pf, jp_error *err);
void jp_raw_power_file_free(jp_raw_power_file *pf);

/*
 * The samples of seg that fall in a window (jp_raw_in_window()), as the
 * index range [*first, *last) of seg's rows (samples are time-sorted).
 */
void jp_raw_window_range(const jp_raw_power_segment *seg, int64_t start_ns, int64_t end_ns,
                         int64_t boundary_ns, size_t *first, size_t *last);

/*
 * Called by jp_raw_read_seed_file() once per layer of a seed-format file,
 * in file order: value is {"<param>": [...]} (power) or [...] (latency),
 * line_no counts from 1.  A non-OK return stops the read and is returned.
 */
typedef jp_status (*jp_raw_seed_fn)(const char *path, size_t line_no, const char *layer_key,
                                    const cJSON *value, void *ctx, jp_error *err);

/*
 * The longest line of a seed-format file: what its readers hold in memory at
 * most, and what jplprof's writer refuses to exceed (a latency line is about
 * 26 bytes a sample: --lt_smpl_count is limited to fit; a power line holds
 * each parameter's samples of a window).  Larger than JP_LINE_MAX_BYTES
 * because a layer's samples are one line.
 */
#define JP_RAW_SEED_LINE_MAX_BYTES (16 * 1024 * 1024)

/*
 * Reads a seed-format raw file: one JSON object per line, each key a layer,
 * a line at a time (jp_line_reader): memory stays bounded by the longest line.
 * Blank lines are skipped.  JP_ERR_FORMAT, naming the file and line, for a
 * line that is not a JSON object, an empty object, a duplicate key, a layer
 * that appears twice in the file, or a line longer than
 * JP_RAW_SEED_LINE_MAX_BYTES (it is cut there: the error names the byte).
 */
jp_status jp_raw_read_seed_file(const char *path, jp_raw_seed_fn fn, void *ctx, jp_error *err);

/* ---- helpers shared with process.c and the CLI ---- */

/* "gpu" for "cuda" or "gpu", "cpu" for "cpu", NULL for anything else. */
const char *jp_raw_device_dir(const char *device);

/*
 * The file-name stem of an image: its base name without its last extension
 * ("data/imagenet/astronaut.png" -> "astronaut", "a.b.jpg" -> "a.b",
 * ".hidden" -> ".hidden").  JP_ERR_ARG when the stem is empty or too long
 * for stem[cap].
 */
jp_status jp_raw_image_stem(const char *image, char *stem, size_t cap, jp_error *err);

/*
 * Formats a duration or boundary for a file name as the seed's Python would
 * print it with argparse type=int where the value is whole ("5", "1"), and
 * as Python's repr of a float otherwise ("0.4", "0.1"): the shortest decimal
 * that reads back as the same double.
 */
char *jp_raw_format_setting(double v, char *buf, size_t cap);

/* The seed's samples per second, int(1000 / tgr_interval_ms) as its Python
 * computed it (truncated): 50 for 20 ms.  The _sf_ of the power file's name. */
long jp_raw_samples_per_s(double tgr_interval_ms);

/* How many lines the seed's processData.py drops at each end of a layer's
 * list in a <stem>_sf_<f>_sb_<b>.json file: f x b, by index (b whole in the
 * seed; a fractional b is ours, and the count is floor(f x b)). */
size_t jp_raw_seed_trim(long samples_per_s, double boundary_s);

/* A boundary or duration in seconds as nanoseconds, rounded to nearest. */
int64_t jp_raw_seconds_to_ns(double s);

/* The window rule: start_ns + boundary_ns <= t_ns <= end_ns - boundary_ns. */
bool jp_raw_in_window(int64_t t_ns, int64_t start_ns, int64_t end_ns, int64_t boundary_ns);

#endif /* JP_RAWDATA_H */
