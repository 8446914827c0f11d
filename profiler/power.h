/*
 * power.h: power sources behind one interface.
 *
 * A source samples a fixed list of parameters (rails in mW; tegrastats adds
 * temperatures, loads, clocks and memory) in its own thread or child
 * process, and stamps every sample when it arrives with
 * clock_gettime(CLOCK_MONOTONIC), the clock of the profiler's markers.  The
 * profiler takes the samples collected so far whenever it likes
 * (jp_power_take is thread-safe) and cuts them into layer windows itself.
 *
 * Sources: tegrastats (Jetson's tool, spawned as `<program> --interval N`),
 * ina3221 (Jetson's power monitor read from sysfs), nvml (NVIDIA's
 * management library, loaded with dlopen), rapl (Intel/AMD energy counters
 * under /sys/class/powercap), none; auto tries tegrastats, ina3221, nvml,
 * rapl in that order and keeps the first whose values are plausible and
 * change within a short probe.
 *
 * Invariants:
 *   - a missing or refusing source is an error whose message names the
 *     program, file or library and says how to fix it; it never yields
 *     zeros.  A reading that does not exist is NAN, never 0;
 *   - energy counters (rapl, nvml's total energy) give a sample only when
 *     the counter moved, the power over the time since it last moved;
 *   - the parameter list is fixed by jp_power_start and stays the same
 *     until the next start;
 *   - lifecycle: open -> start -> take* -> stop [-> start ...] -> close.
 *     stop and close reap every child process: none is left as a zombie.
 */
#ifndef JP_POWER_H
#define JP_POWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../engine/jp_error.h"
#include "tegrastats_parse.h"

/* ---- source kinds ---- */

typedef enum jp_power_kind {
    JP_POWER_NONE,
    JP_POWER_TEGRASTATS,
    JP_POWER_INA3221,
    JP_POWER_NVML,
    JP_POWER_RAPL,
    JP_POWER_AUTO,
    JP_POWER_KIND_COUNT
} jp_power_kind;

/* "none", "tegrastats", "ina3221", "nvml", "rapl", "auto"; never NULL. */
const char *jp_power_kind_name(jp_power_kind kind);

/* Parses a --power-source value; JP_ERR_ARG naming the choices otherwise. */
jp_status jp_power_kind_parse(const char *name, jp_power_kind *out, jp_error *err);

/* ---- boards and the device's own rail ---- */

typedef enum jp_board {
    JP_BOARD_UNKNOWN, /* no device tree model, or one not in the table */
    JP_BOARD_TX1,
    JP_BOARD_TX2,
    JP_BOARD_TX2_NX,
    JP_BOARD_NANO,
    JP_BOARD_AGX_XAVIER,
    JP_BOARD_XAVIER_NX,
    JP_BOARD_AGX_ORIN,
    JP_BOARD_ORIN_NX,
    JP_BOARD_ORIN_NANO,
    JP_BOARD_AGX_THOR,
    JP_BOARD_COUNT
} jp_board;

/* "unknown", "tx1", "tx2", ..., "agx-thor"; never NULL. */
const char *jp_board_name(jp_board board);

/* The board a device-tree model string names ("NVIDIA Jetson AGX Orin
 * Developer Kit" -> JP_BOARD_AGX_ORIN); JP_BOARD_UNKNOWN otherwise. */
jp_board jp_board_from_model(const char *model);

/* Reads <root_dir>/proc/device-tree/model (root_dir NULL or "" = "/") into
 * model (NUL-terminated, trailing NULs and newlines removed; "" when the
 * file is absent) and returns the board it names. */
jp_board jp_board_detect(const char *root_dir, char *model, size_t model_bytes);

/* The table's rail for device "cpu" or "gpu" ("cuda" is taken as "gpu"):
 * for tegrastats and ina3221 the board's row (TX2 VDD_SYS_CPU/VDD_SYS_GPU,
 * AGX Xavier CPU/GPU, AGX Orin VDD_CPU_CV/VDD_GPU_SOC, Orin NX, Orin Nano
 * and Xavier NX VDD_CPU_GPU_CV for both, Nano POM_5V_CPU/POM_5V_GPU, ...);
 * for nvml "gpu"; for rapl "package-0" (cpu only).  NULL when the table has
 * no rail for that pair.  See profiler/README.md for the whole table. */
const char *jp_power_device_rail(jp_board board, jp_power_kind kind, const char *device);

/* The power mode `nvpmodel -q` reports: "NV Power Mode: <name>" and, on
 * the next line, the mode's id.  Every generation prints those two lines
 * (TX2 "MAXN" 0 on JetPack 4, AGX Orin "MODE_30W" 2 on JetPack 5, Orin Nano
 * "25W" 1 on JetPack 6), some after "NVPM WARN: ..." lines (Nano and Xavier
 * NX: "fan mode is not set!"; Orin: "Golden image context is already
 * created"); with --verbose the name line is "NVPM VERB: Current mode: NV
 * Power Mode: <name>" among "NVPM VERB" lines. */
typedef struct jp_nvpmodel {
    char name[64]; /* "MAXN", "MODE_15W", "25W", "MAXN_SUPER", ...       */
    long id;       /* the mode number that `nvpmodel -m` takes             */
} jp_nvpmodel;

/* Parses text (nvpmodel -q's stdout, stderr mixed in or not) into out.
 * JP_ERR_FORMAT, naming what is missing, when there is no "NV Power Mode:"
 * line with a name, or the line after it is not a non-negative integer. */
jp_status jp_nvpmodel_parse(const char *text, jp_nvpmodel *out, jp_error *err);

/* ---- options ---- */

typedef struct jp_power_options {
    jp_power_kind kind;             /* default JP_POWER_AUTO                    */
    int interval_ms;                /* requested sampling interval, 1..60000;   */
                                    /* default 20 (the seed's --tgr_interval)   */
    const char *root_dir;           /* prefix of every /sys and /proc path;     */
                                    /* NULL or "" = "/" (tests: a fake tree)    */
    const char *tegrastats_program; /* NULL = "tegrastats" on PATH              */
    const char *nvml_library;       /* NULL = "libnvidia-ml.so.1"               */
    unsigned nvml_device;           /* NVML device index, default 0             */
    /* JP_POWER_AUTO: called once per source tried, in order, with its whole
     * message (not cut to fit the error), "chosen" for the one chosen; NULL:
     * not called.  For the CLI to print one line per source. */
    void (*on_tried)(void *ctx, const char *kind, const char *msg);
    void *on_tried_ctx;
} jp_power_options;

/* Fills opts with the defaults above. */
void jp_power_options_init(jp_power_options *opts);

/* ---- samples ---- */

/* A growable, caller-owned buffer of samples. */
typedef struct jp_power_samples {
    size_t n_params; /* values per sample; fixed by the first take     */
    size_t count;    /* samples held                                     */
    size_t capacity; /* samples allocated                                */
    int64_t *t_ns;   /* (count) CLOCK_MONOTONIC arrival time, ns         */
    double *values;  /* (count, n_params) row-major; NAN = not measured  */
} jp_power_samples;

void jp_power_samples_init(jp_power_samples *s);
/* Forgets the samples, keeps the memory and n_params. */
void jp_power_samples_clear(jp_power_samples *s);
void jp_power_samples_free(jp_power_samples *s);

/* One sampled parameter. */
typedef struct jp_power_param {
    char name[JP_TGR_NAME_BYTES]; /* "VDD_SYS_GPU", "package-0", "gpu", "RAM" */
    jp_tgr_kind kind;             /* JP_TGR_RAIL (mW) for every power rail    */
} jp_power_param;

/* ---- the source ---- */

typedef struct jp_power_source jp_power_source;

/* Finds and checks the source opts asks for (for auto: probes each in
 * turn, see the file comment) and returns it, not yet sampling, in *out.
 * Errors: JP_ERR_MISSING (no such program, sensor or library),
 * JP_ERR_IO (it is there but refuses: permissions, exits early),
 * JP_ERR_FORMAT (tegrastats prints lines without rails),
 * JP_ERR_UNSUPPORTED (NVML without power readings), JP_ERR_ARG (options);
 * the message says what to do.  *out is NULL on error. */
jp_status jp_power_open(const jp_power_options *opts, jp_power_source **out, jp_error *err);

/* Starts sampling: spawns tegrastats or starts the polling thread, and
 * returns once the parameter list is fixed (for tegrastats: after the first
 * line with rails).  Forgets the samples of an earlier start.  Errors are
 * those of jp_power_open, found now (a program that exits at once, prints
 * garbage or nothing). */
jp_status jp_power_start(jp_power_source *src, jp_error *err);

/* Moves every sample collected since the last take into out (appended;
 * out->n_params is set on first use and must match later).  Safe to call
 * from any thread while the source samples.  When the source has failed
 * since start (tegrastats exited, a sensor file vanished), the samples it
 * delivered before are still moved and the failure is returned, every time
 * until the next start. */
jp_status jp_power_take(jp_power_source *src, jp_power_samples *out, jp_error *err);

/* The failure, if any, since start (JP_OK otherwise); takes nothing. */
jp_status jp_power_check(const jp_power_source *src, jp_error *err);

/* Stops sampling: ends the thread, sends the child SIGTERM (SIGKILL after
 * 2 s) and reaps it.  Samples not taken yet stay takeable.  Idempotent. */
jp_status jp_power_stop(jp_power_source *src, jp_error *err);

/* Stops (when needed) and frees everything; NULL is accepted. */
void jp_power_close(jp_power_source *src);

/* The parameters, fixed by start (for sources other than tegrastats already
 * known after open); *count gets how many.  Valid until the next start or
 * close. */
const jp_power_param *jp_power_params(const jp_power_source *src, size_t *count);

/* Index of the parameter called name, or -1. */
long jp_power_param_index(const jp_power_source *src, const char *name);

/* Names of the power rails (parameters of kind JP_TGR_RAIL), at most max of
 * them into names; returns how many there are. */
size_t jp_power_rails(const jp_power_source *src, const char **names, size_t max);

/* The kind actually sampling (never JP_POWER_AUTO). */
jp_power_kind jp_power_source_kind(const jp_power_source *src);

/* The requested interval, and the delivered one: the mean spacing of the
 * samples since start, ms (NAN before two samples).  tegrastats delivers
 * fewer lines than asked at short intervals; record both. */
int jp_power_requested_interval_ms(const jp_power_source *src);
double jp_power_delivered_interval_ms(const jp_power_source *src);

/* Samples delivered since start (taken or not). */
uint64_t jp_power_sample_total(const jp_power_source *src);

/* One line for the manifest: what samples, from where, how
 * ("tegrastats: /usr/bin/tegrastats --interval 20"). */
const char *jp_power_describe(const jp_power_source *src);

/* What auto tried and why each candidate was refused or kept; "" when the
 * source was not chosen by auto. */
const char *jp_power_auto_log(const jp_power_source *src);

/* The board detected at open, and the device-tree model it came from ("" if
 * none). */
jp_board jp_power_board(const jp_power_source *src);
const char *jp_power_board_model(const jp_power_source *src);

/* The device's own rail, as the manifest records it. */
typedef struct jp_rail_choice {
    char rail[JP_TGR_NAME_BYTES]; /* parameter name in this source  */
    long param_index;             /* its index in jp_power_params() */
    char why[512];                /* how it was chosen, one line    */
} jp_rail_choice;

/* Chooses the rail whose power is device's ("cpu", "gpu" or "cuda"):
 * override when not NULL (it must be one of the source's rails); else the
 * table's rail for the detected board (jp_power_device_rail); else, with no
 * board detected, the first table row whose rail is among the source's
 * rails (a TX2-format tegrastats on a machine without a device tree).
 * Errors (JP_ERR_MISSING) name the rails the source has and how to choose
 * one.  Call after start. */
jp_status jp_power_choose_device_rail(const jp_power_source *src, const char *device,
                                      const char *override, jp_rail_choice *out, jp_error *err);

/* The process id of the running tegrastats child, -1 when none (tests check
 * with it that no zombie is left). */
pid_t jp_power_child_pid(const jp_power_source *src);

#endif /* JP_POWER_H */
