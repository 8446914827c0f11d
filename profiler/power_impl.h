/*
 * power_impl.h: what the power sources share; not for callers of power.h.
 *
 * A backend is a struct of function pointers.  Two shapes exist:
 *   - polled (ina3221, nvml, rapl): `poll` reads the sensor once; the core
 *     (power.c) runs the thread that calls it every interval and stamps
 *     each sample;
 *   - own-thread (tegrastats): `start` launches whatever delivers samples
 *     and pushes them with jp_power_push; `stop` ends it.
 * The core owns the sample buffer, its lock, the failure record and the
 * delivered-interval statistics.
 */
#ifndef JP_POWER_IMPL_H
#define JP_POWER_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "power.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef struct jp_power_backend {
    jp_power_kind kind;
    /* Required.  Finds the sensor, checks it can be read, names its
     * parameters (jp_power_add_param) unless start does, and writes
     * src->description.  Allocates src->impl as needed. */
    jp_status (*open)(jp_power_source *src, jp_error *err);
    /* Optional.  Own-thread sources: starts delivering and returns once the
     * parameters are named.  Polled sources: readies the counters (a first
     * reading) before the core's thread starts. */
    jp_status (*start)(jp_power_source *src, jp_error *err);
    /* Polled sources only (NULL for own-thread ones).  Reads every
     * parameter once into values (n_params of them; NAN for a parameter
     * with nothing new), sets *have_sample when anything is new.  t_ns is
     * the time of this reading. */
    jp_status (*poll)(jp_power_source *src, int64_t t_ns, double *values, bool *have_sample,
                      jp_error *err);
    /* Optional.  Own-thread sources: ends what start began, reaps. */
    jp_status (*stop)(jp_power_source *src, jp_error *err);
    /* Optional.  Frees src->impl. */
    void (*close)(jp_power_source *src);
} jp_power_backend;

extern const jp_power_backend jp_power_backend_none;
extern const jp_power_backend jp_power_backend_tegrastats;
extern const jp_power_backend jp_power_backend_ina3221;
extern const jp_power_backend jp_power_backend_nvml;
extern const jp_power_backend jp_power_backend_rapl;

struct jp_power_source {
    const jp_power_backend *backend;
    jp_power_options opts; /* its strings point at the copies below */
    char root_dir[PATH_MAX];
    char tegrastats_program[PATH_MAX];
    char nvml_library[PATH_MAX];

    jp_board board;
    char board_model[256];
    char description[512];
    char auto_log[2048];

    /* Parameters, fixed from start to the next start. */
    jp_power_param params[JP_TGR_MAX_PARAMS];
    size_t n_params;

    /* Everything below is guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC: stop requests, new samples */
    int64_t *buf_t_ns;   /* (buf_count)               */
    double *buf_values;  /* (buf_count, n_params)     */
    size_t buf_count, buf_cap;
    uint64_t total;      /* samples since start       */
    int64_t first_t_ns, last_t_ns;
    bool failed;
    jp_error failure;
    bool stop_requested;

    /* The polling thread of polled sources. */
    bool running;
    bool poll_thread_started;
    pthread_t poll_thread;

    void *impl; /* the backend's state */
};

/* CLOCK_MONOTONIC now, ns. */
int64_t jp_power_now_ns(void);

/* Appends one sample (n_params values) stamped t_ns; JP_ERR_NOMEM when the
 * buffer cannot grow (the sample is lost and the failure recorded). */
jp_status jp_power_push(jp_power_source *src, int64_t t_ns, const double *values);

/* Records the first failure since start (later ones are dropped). */
void jp_power_fail(jp_power_source *src, const jp_error *err);

/* Whether stop was asked. */
bool jp_power_stopping(jp_power_source *src);

/* Appends a parameter; a name already present gets "_2", "_3", ... (as the
 * tegrastats parser does).  JP_ERR_UNSUPPORTED past JP_TGR_MAX_PARAMS. */
jp_status jp_power_add_param(jp_power_source *src, const char *name, jp_tgr_kind kind,
                             jp_error *err);

/* <root_dir><path> into buf; false when it does not fit. */
bool jp_power_path(const jp_power_source *src, char *buf, size_t bytes, const char *path);

/* Reads a small text file (sysfs attribute) into buf, NUL-terminated, with
 * trailing whitespace removed.  Errors (JP_ERR_IO, JP_ERR_MISSING for
 * ENOENT) name the path and strerror; errno_out (may be NULL) gets errno. */
jp_status jp_power_read_text(const char *path, char *buf, size_t bytes, int *errno_out,
                             jp_error *err);

/* Reads a file holding one integer ("123456\n"). */
jp_status jp_power_read_ll(const char *path, long long *out, int *errno_out, jp_error *err);

/* Whether a rail reading is plausible: finite, above -1 W (an idle INA3221
 * channel reads a few mW below zero) and below 10 kW. */
bool jp_power_plausible_mw(double mw);

#endif /* JP_POWER_IMPL_H */
