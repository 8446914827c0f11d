/*
 * report.h: `jplprof report`, one self-contained HTML page of a dataset.
 *
 * Per network, one card per (mode, device) side by side: per layer a
 * latency bar (the isolated median) with its spread (± one standard
 * deviation), the lag-corrected power with its 95 % interval, the energy per
 * call and the layer's share of the summed latency; the closure ratio; the
 * power source as the manifest records it; the sensor's calibration when the
 * dataset has one.  Numbers are process --stats's (jp_process_collect), the
 * layer table the manifest's (jp_manifests_*).  Inline SVG and CSS only: no
 * script, font or image is fetched.  Every layer bar is an SVG <rect
 * class="bar"> whose <title> (the tooltip) names the layer's path and type.
 */
#ifndef JP_REPORT_H
#define JP_REPORT_H

#include "../engine/jp_error.h"
#include "process.h"

typedef struct jp_report_options {
    const char *dataset_dir; /* --dataset, default "Dataset"                     */
    const char *modes;       /* --modes; NULL: every Mode* folder                */
    const char *out;         /* --out: the HTML file (required)                  */
    const char *note;        /* --note: a line shown under the title; NULL: none */
    jp_process_notify_fn notify;
    void *notify_ctx;
} jp_report_options;

/* Writes opt->out atomically.  Errors: as jp_export_run (a missing manifest,
 * mode or layer names what is missing). */
jp_status jp_report_run(const jp_report_options *opt, jp_error *err);

#endif /* JP_REPORT_H */
