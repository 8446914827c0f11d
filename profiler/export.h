/*
 * export.h: `jplprof export`, the processed dataset as a table to train on.
 *
 * One row per (mode, device, network, layer): the layer table the profile
 * recorded in its manifest (.jplprof/manifests/: index, torchvision path,
 * type, shapes, parameters, MACs, kernels) joined with process's statistics
 * for that layer, computed by process's own code (jp_process_collect with
 * --stats), so every number equals the one in Processed/Mode<M>.json.
 * Formats: CSV (RFC 4180 quoting, a header row, empty cell = no value),
 * JSON Lines (one object per row, null = no value) and trtexec's
 * --exportProfile JSON (one file per mode, device and network).  Columns and
 * their units: profiler/DATASET.md, "jplprof export".
 */
#ifndef JP_EXPORT_H
#define JP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "../engine/jp_error.h"
#include "process.h"

typedef enum jp_export_format { JP_EXPORT_CSV, JP_EXPORT_JSONL, JP_EXPORT_TRTEXEC } jp_export_format;

typedef struct jp_export_options {
    const char *dataset_dir; /* --dataset, default "Dataset"                                */
    const char *modes;       /* --modes, comma-separated; NULL: every Mode* folder          */
    jp_export_format format; /* --format, default csv                                       */
    const char *out;         /* --out: csv/jsonl: a file (NULL: standard output); trtexec:
                                a folder (NULL: <dataset>/Exported)                         */
    jp_process_notify_fn notify; /* warnings and files written; NULL: silent               */
    void *notify_ctx;
} jp_export_options;

/* The column names of the csv and jsonl formats, in order; *n gets the count. */
const char *const *jp_export_columns(int *n);

/*
 * Exports opt->dataset_dir.  csv/jsonl without opt->out go to standard output;
 * files are written atomically.  Errors name what is missing: a dataset with
 * no manifest for a mode and device, a network or layer the manifest lacks,
 * a --modes entry with no folder (process's error).
 */
jp_status jp_export_run(const jp_export_options *opt, jp_error *err);

/* The manifests of a dataset (.jplprof/manifests/Mode<M>_<device>_<start>.json),
 * parsed; export and report share them. */
struct cJSON;
typedef struct jp_manifests {
    char *dir;            /* <dataset>/.jplprof/manifests                          */
    size_t n;
    char **names;         /* file names, sorted (= by start time)                  */
    struct cJSON **docs;  /* n parsed manifests                                    */
} jp_manifests;

/* Loads every manifest (none is not an error: n = 0); a file that does not
 * parse or has no "models" array is an error naming it.  Free with
 * jp_manifests_free (also after a failure). */
jp_status jp_manifests_load(const char *dataset, jp_manifests *m, jp_error *err);
void jp_manifests_free(jp_manifests *m);

/* The "models" entry for network in the latest manifest of (mode, device)
 * that records it, NULL if none; *any: whether (mode, device) has a manifest. */
const struct cJSON *jp_manifests_model(const jp_manifests *m, const char *mode, const char *device,
                                       const char *network, bool *any);

/* The images every manifest of (mode, device) records for network, sorted,
 * ';'-separated (the image set process pooled); *count gets how many.
 * Caller frees; NULL when out of memory. */
char *jp_manifests_images(const jp_manifests *m, const char *mode, const char *device, const char *network,
                          int *count);

#endif /* JP_EXPORT_H */
