/*
 * calibration.h: the power sensor's calibration file, written by
 * `jplprof calibrate` and read by `profile` (recorded in the manifest; a
 * warning when --tgr_smpl_boundary < 3 tau) and `process` (tau for the
 * lag-corrected power instead of an estimate from the windows).
 *
 *   <dataset>/.jplprof/calibration.json
 *   {"format": "jplprof-calibration", "version": 1, "created": "2026...Z",
 *    "board": "tx2", "power_source": "tegrastats", "describe": "...",
 *    "protocol": {"periods": 4, "half_period_s": 3, "threads": 6},
 *    "rails": {"VDD_SYS_CPU": {"tau_s": 0.43, "fits": true, "why": "...",
 *              "fit_rms_residual": 2.1, "noise": 2.0, "lsb": 1,
 *              "update_period_s": 0.02, "delivery_interval_s": 0.021,
 *              "idle_mw": 1200, "busy_mw": 3400}, ...}}
 */
#ifndef JP_CALIBRATION_H
#define JP_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "../engine/jp_error.h"

#define JP_CALIBRATION_FILE ".jplprof/calibration.json"

typedef struct jp_calibration_rail {
    char *name;
    double tau_s;
    bool fits;
} jp_calibration_rail;

typedef struct jp_calibration {
    char *path;
    char *board, *power_source;
    jp_calibration_rail *rails;
    size_t n_rails;
    cJSON *json; /* the whole file, for the manifest */
} jp_calibration;

/* The calibration file of a dataset root (malloc'd). */
char *jp_calibration_path(const char *dataset_dir);

/*
 * Loads and checks path.  JP_ERR_MISSING when there is no such file (no
 * calibration: not an error for the callers, who estimate); JP_ERR_FORMAT,
 * naming the file and the field, for anything malformed (a tau that is not
 * a finite number >= 0, a rail without one, a duplicate key).  *cal is
 * zeroed first; jp_calibration_free() it in every case.
 */
jp_status jp_calibration_load(const char *path, jp_calibration *cal, jp_error *err);
void jp_calibration_free(jp_calibration *cal);

/* The rail called name, or NULL. */
const jp_calibration_rail *jp_calibration_rail_of(const jp_calibration *cal, const char *name);

#endif /* JP_CALIBRATION_H */
