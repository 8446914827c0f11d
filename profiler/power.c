/*
 * power.c: the core of power.h: the source object, its sample buffer, the
 * polling thread of polled sources, `auto`, and the helpers the backends
 * share (power_impl.h).
 *
 * Locking: src->lock guards the buffer, the failure record and the stop
 * flag.  Backends push from their own thread with jp_power_push; the
 * profiler takes from its thread with jp_power_take.  Parameters are
 * written only while no sampler runs (open, or start before its first
 * push), so readers need no lock for them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "power_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long auto waits for a candidate's values to be plausible and to
 * change: at least this, or 10 intervals when longer.  NVML's power reading
 * on an H100 moves every ~100 ms, INA3221 conversions take a few ms. */
#define AUTO_PROBE_MIN_MS 1000
/* Samples auto wants before judging a candidate early. */
#define AUTO_PROBE_SAMPLES 3

static const char *const kind_names[] = {
    [JP_POWER_NONE] = "none", [JP_POWER_TEGRASTATS] = "tegrastats",
    [JP_POWER_INA3221] = "ina3221", [JP_POWER_NVML] = "nvml",
    [JP_POWER_RAPL] = "rapl", [JP_POWER_AUTO] = "auto",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == JP_POWER_KIND_COUNT,
               "kind_names must name every jp_power_kind");

static const jp_power_backend *const backends[] = {
    [JP_POWER_NONE] = &jp_power_backend_none,
    [JP_POWER_TEGRASTATS] = &jp_power_backend_tegrastats,
    [JP_POWER_INA3221] = &jp_power_backend_ina3221,
    [JP_POWER_NVML] = &jp_power_backend_nvml,
    [JP_POWER_RAPL] = &jp_power_backend_rapl,
    [JP_POWER_AUTO] = NULL,
};
_Static_assert(sizeof backends / sizeof backends[0] == JP_POWER_KIND_COUNT,
               "backends must list every jp_power_kind");

const char *jp_power_kind_name(jp_power_kind kind)
{
    return (unsigned)kind < JP_POWER_KIND_COUNT ? kind_names[kind] : "unknown";
}

jp_status jp_power_kind_parse(const char *name, jp_power_kind *out, jp_error *err)
{
    for (int k = 0; name && k < JP_POWER_KIND_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (jp_power_kind)k;
            return JP_OK;
        }
    }
    return jp_error_set(err, JP_ERR_ARG,
                        "--power-source: '%s' is not a power source; expected one of auto, "
                        "tegrastats, ina3221, nvml, rapl, none",
                        name ? name : "(null)");
}

void jp_power_options_init(jp_power_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->kind = JP_POWER_AUTO;
    opts->interval_ms = 20;
}

/* ---- samples ---- */

void jp_power_samples_init(jp_power_samples *s) { memset(s, 0, sizeof *s); }

void jp_power_samples_clear(jp_power_samples *s) { s->count = 0; }

void jp_power_samples_free(jp_power_samples *s)
{
    free(s->t_ns);
    free(s->values);
    memset(s, 0, sizeof *s);
}

/* Grows (t_ns, values) to hold at least need rows of n_params values. */
static bool grow_rows(int64_t **t_ns, double **values, size_t *cap, size_t need, size_t n_params)
{
    if (need <= *cap)
        return true;
    size_t new_cap = *cap ? *cap : 256;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2)
            return false;
        new_cap *= 2;
    }
    size_t row_vals = n_params ? n_params : 1;
    if (new_cap > SIZE_MAX / sizeof(double) / row_vals)
        return false;
    int64_t *t = realloc(*t_ns, new_cap * sizeof *t);
    if (!t)
        return false;
    *t_ns = t;
    double *v = realloc(*values, new_cap * row_vals * sizeof *v);
    if (!v)
        return false;
    *values = v;
    *cap = new_cap;
    return true;
}

/* ---- shared helpers (power_impl.h) ---- */

int64_t jp_power_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

jp_status jp_power_push(jp_power_source *src, int64_t t_ns, const double *values)
{
    jp_status st = JP_OK;
    pthread_mutex_lock(&src->lock);
    if (!grow_rows(&src->buf_t_ns, &src->buf_values, &src->buf_cap, src->buf_count + 1,
                   src->n_params)) {
        if (!src->failed) {
            src->failed = true;
            jp_error_set(&src->failure, JP_ERR_NOMEM, "%s: out of memory for %zu samples",
                         jp_power_kind_name(src->backend->kind), src->buf_count + 1);
        }
        st = JP_ERR_NOMEM;
    } else {
        src->buf_t_ns[src->buf_count] = t_ns;
        if (src->n_params)
            memcpy(src->buf_values + src->buf_count * src->n_params, values,
                   src->n_params * sizeof *values);
        src->buf_count++;
        if (src->total == 0)
            src->first_t_ns = t_ns;
        src->last_t_ns = t_ns;
        src->total++;
    }
    pthread_cond_broadcast(&src->wake);
    pthread_mutex_unlock(&src->lock);
    return st;
}

void jp_power_fail(jp_power_source *src, const jp_error *err)
{
    pthread_mutex_lock(&src->lock);
    if (!src->failed) {
        src->failed = true;
        src->failure = *err;
    }
    pthread_cond_broadcast(&src->wake);
    pthread_mutex_unlock(&src->lock);
}

bool jp_power_stopping(jp_power_source *src)
{
    pthread_mutex_lock(&src->lock);
    bool s = src->stop_requested;
    pthread_mutex_unlock(&src->lock);
    return s;
}

jp_status jp_power_add_param(jp_power_source *src, const char *name, jp_tgr_kind kind,
                             jp_error *err)
{
    if (src->n_params >= JP_TGR_MAX_PARAMS)
        return jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: more than %d parameters",
                            jp_power_kind_name(src->backend->kind), JP_TGR_MAX_PARAMS);
    char cand[JP_TGR_NAME_BYTES];
    snprintf(cand, sizeof cand, "%s", name);
    for (int k = 2; jp_power_param_index(src, cand) >= 0; k++) {
        if (k > 99)
            return jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: parameter '%s' repeated too often",
                                jp_power_kind_name(src->backend->kind), name);
        /* room for "_99" */
        int w = snprintf(cand, sizeof cand, "%.*s_%d", JP_TGR_NAME_BYTES - 4, name, k);
        if (w < 0 || (size_t)w >= sizeof cand)
            return jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: parameter name '%s' too long",
                                jp_power_kind_name(src->backend->kind), name);
    }
    jp_power_param *p = &src->params[src->n_params++];
    memcpy(p->name, cand, sizeof p->name);
    p->kind = kind;
    return JP_OK;
}

bool jp_power_path(const jp_power_source *src, char *buf, size_t bytes, const char *path)
{
    const char *root = src->root_dir;
    size_t rn = strlen(root);
    /* "/" + "/sys/..." would give "//sys"; harmless but ugly in messages */
    if (rn > 0 && root[rn - 1] == '/' && path[0] == '/')
        rn--;
    int n = snprintf(buf, bytes, "%.*s%s", (int)rn, root, path);
    return n >= 0 && (size_t)n < bytes;
}

jp_status jp_power_read_text(const char *path, char *buf, size_t bytes, int *errno_out,
                             jp_error *err)
{
    if (errno_out)
        *errno_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (errno_out)
            *errno_out = e;
        return jp_error_set(err, e == ENOENT ? JP_ERR_MISSING : JP_ERR_IO, "cannot open %s: %s",
                            path, strerror(e));
    }
    size_t got = 0;
    while (got + 1 < bytes) {
        ssize_t n = read(fd, buf + got, bytes - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            if (errno_out)
                *errno_out = e;
            return jp_error_set(err, JP_ERR_IO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' ' || buf[got - 1] == '\t' ||
                       buf[got - 1] == '\r' || buf[got - 1] == '\0'))
        buf[--got] = '\0';
    return JP_OK;
}

jp_status jp_power_read_ll(const char *path, long long *out, int *errno_out, jp_error *err)
{
    char text[64];
    jp_status st = jp_power_read_text(path, text, sizeof text, errno_out, err);
    if (st != JP_OK)
        return st;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: expected an integer, found '%.40s'", path,
                            text);
    *out = v;
    return JP_OK;
}

bool jp_power_plausible_mw(double mw) { return isfinite(mw) && mw > -1000.0 && mw < 1e7; }

/* ---- source lifecycle ---- */

static jp_status copy_opt(char *dst, size_t bytes, const char *value, const char *fallback,
                          const char *what, jp_error *err)
{
    const char *v = (value && *value) ? value : fallback;
    int n = snprintf(dst, bytes, "%s", v);
    if (n < 0 || (size_t)n >= bytes)
        return jp_error_set(err, JP_ERR_ARG, "%s is too long (%zu bytes at most)", what, bytes - 1);
    return JP_OK;
}

static void destroy(jp_power_source *src)
{
    if (!src)
        return;
    if (src->backend && src->backend->close)
        src->backend->close(src);
    pthread_mutex_destroy(&src->lock);
    pthread_cond_destroy(&src->wake);
    free(src->buf_t_ns);
    free(src->buf_values);
    free(src);
}

static jp_status create(const jp_power_options *opts, jp_power_kind kind, jp_power_source **out,
                        jp_error *err)
{
    *out = NULL;
    jp_power_source *src = calloc(1, sizeof *src);
    if (!src)
        return jp_error_set(err, JP_ERR_NOMEM, "power source: out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&src->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&src->lock, NULL);
    src->backend = backends[kind];
    src->opts = *opts;
    src->opts.kind = kind;
    jp_status st = copy_opt(src->root_dir, sizeof src->root_dir, opts->root_dir, "/",
                            "power source root directory", err);
    if (st == JP_OK)
        st = copy_opt(src->tegrastats_program, sizeof src->tegrastats_program,
                      opts->tegrastats_program, "tegrastats", "--tegrastats", err);
    if (st == JP_OK)
        st = copy_opt(src->nvml_library, sizeof src->nvml_library, opts->nvml_library,
                      "libnvidia-ml.so.1", "NVML library path", err);
    if (st != JP_OK) {
        destroy(src);
        return st;
    }
    src->opts.root_dir = src->root_dir;
    src->opts.tegrastats_program = src->tegrastats_program;
    src->opts.nvml_library = src->nvml_library;
    src->board = jp_board_detect(src->root_dir, src->board_model, sizeof src->board_model);
    st = src->backend->open(src, err);
    if (st != JP_OK) {
        destroy(src);
        return st;
    }
    *out = src;
    return JP_OK;
}

/* Appends "kind: message; " to the auto log (bounded). */
static void log_append(char *log, size_t bytes, jp_power_kind kind, const char *msg)
{
    size_t used = strlen(log);
    if (used + 1 >= bytes)
        return;
    /* backend messages start with their own "kind: " already */
    const char *name = jp_power_kind_name(kind);
    size_t nn = strlen(name);
    if (strncmp(msg, name, nn) == 0 && strncmp(msg + nn, ": ", 2) == 0)
        msg += nn + 2;
    snprintf(log + used, bytes - used, "%s%s: %.170s", used ? "; " : "", name, msg);
}

/* Runs src for a short probe and judges its values: at least two samples,
 * every rail reading plausible, some rail above 0 mW, some value changing.
 * Stops src again (its parameters stay). */
static jp_status probe(jp_power_source *src, jp_error *err)
{
    jp_status st = jp_power_start(src, err);
    if (st != JP_OK)
        return st;
    int64_t t0 = jp_power_now_ns();
    int64_t budget_ms = 10LL * src->opts.interval_ms;
    if (budget_ms < AUTO_PROBE_MIN_MS)
        budget_ms = AUTO_PROBE_MIN_MS;
    int64_t deadline = t0 + budget_ms * 1000000LL;
    jp_power_samples got;
    jp_power_samples_init(&got);
    bool changed = false;
    for (;;) {
        st = jp_power_take(src, &got, err);
        if (st != JP_OK)
            break;
        /* changed: some value differs from the same parameter earlier */
        for (size_t s = 1; s < got.count && !changed; s++) {
            for (size_t p = 0; p < got.n_params && !changed; p++) {
                double a = got.values[(s - 1) * got.n_params + p];
                double b = got.values[s * got.n_params + p];
                if (!isnan(a) && !isnan(b) && a != b)
                    changed = true;
            }
        }
        if ((got.count >= AUTO_PROBE_SAMPLES && changed) || jp_power_now_ns() >= deadline)
            break;
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
    int64_t waited_ms = (jp_power_now_ns() - t0) / 1000000;
    if (st == JP_OK) {
        size_t n_params = 0;
        const jp_power_param *params = jp_power_params(src, &n_params);
        bool positive = false;
        for (size_t s = 0; s < got.count && st == JP_OK; s++) {
            for (size_t p = 0; p < n_params; p++) {
                if (params[p].kind != JP_TGR_RAIL)
                    continue;
                double v = got.values[s * got.n_params + p];
                if (isnan(v))
                    continue;
                if (!jp_power_plausible_mw(v)) {
                    st = jp_error_set(err, JP_ERR_FORMAT,
                                      "rail %s read %g mW, which no board draws", params[p].name, v);
                    break;
                }
                if (v > 0.0)
                    positive = true;
            }
        }
        if (st == JP_OK && got.count < 2)
            st = jp_error_set(err, JP_ERR_IO, "delivered %zu samples in %lld ms (2 needed)", got.count,
                              (long long)waited_ms);
        else if (st == JP_OK && !positive)
            st = jp_error_set(err, JP_ERR_FORMAT, "every rail read 0 mW over %zu samples", got.count);
        else if (st == JP_OK && !changed)
            st = jp_error_set(err, JP_ERR_FORMAT,
                              "no value changed over %zu samples in %lld ms (a stuck sensor)",
                              got.count, (long long)waited_ms);
    }
    jp_power_samples_free(&got);
    jp_error stop_err;
    jp_power_stop(src, &stop_err);
    return st;
}

static jp_status open_auto(const jp_power_options *opts, jp_power_source **out, jp_error *err)
{
    static const jp_power_kind order[] = {JP_POWER_TEGRASTATS, JP_POWER_INA3221, JP_POWER_NVML,
                                          JP_POWER_RAPL};
    char log[sizeof((jp_power_source *)0)->auto_log] = "";
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        jp_power_source *src = NULL;
        jp_error e = {0};
        jp_status st = create(opts, order[i], &src, &e);
        if (st == JP_OK)
            st = probe(src, &e);
        if (opts->on_tried) {
            const char *name = jp_power_kind_name(order[i]), *msg = st == JP_OK ? "chosen" : e.msg;
            size_t nn = strlen(name); /* backend messages start with their own "kind: " */
            if (strncmp(msg, name, nn) == 0 && strncmp(msg + nn, ": ", 2) == 0)
                msg += nn + 2;
            opts->on_tried(opts->on_tried_ctx, name, msg);
        }
        if (st == JP_OK) {
            log_append(log, sizeof log, order[i], "chosen");
            snprintf(src->auto_log, sizeof src->auto_log, "%s", log);
            *out = src;
            return JP_OK;
        }
        log_append(log, sizeof log, order[i], e.msg);
        if (src)
            jp_power_close(src);
    }
    return jp_error_set(err, JP_ERR_MISSING,
                        "--power-source auto: no power source answered (%.850s); name one with "
                        "--power-source to see its whole message, or use --power-source none",
                        log);
}

jp_status jp_power_open(const jp_power_options *opts, jp_power_source **out, jp_error *err)
{
    if (!out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_power_open: out is NULL");
    *out = NULL;
    jp_power_options defaults;
    if (!opts) {
        jp_power_options_init(&defaults);
        opts = &defaults;
    }
    if ((unsigned)opts->kind >= JP_POWER_KIND_COUNT)
        return jp_error_set(err, JP_ERR_ARG, "power source: unknown kind %d", (int)opts->kind);
    if (opts->interval_ms < 1 || opts->interval_ms > 60000)
        return jp_error_set(err, JP_ERR_ARG,
                            "--tgr_interval: %d ms is out of range; expected 1 to 60000 ms",
                            opts->interval_ms);
    if (opts->kind == JP_POWER_AUTO)
        return open_auto(opts, out, err);
    return create(opts, opts->kind, out, err);
}

static void *poll_main(void *arg)
{
    jp_power_source *src = arg;
    double *values = malloc((src->n_params ? src->n_params : 1) * sizeof *values);
    if (!values) {
        jp_error e;
        jp_error_set(&e, JP_ERR_NOMEM, "%s: out of memory", jp_power_kind_name(src->backend->kind));
        jp_power_fail(src, &e);
        return NULL;
    }
    const int64_t interval_ns = (int64_t)src->opts.interval_ms * 1000000LL;
    int64_t next = jp_power_now_ns();
    for (;;) {
        int64_t t = jp_power_now_ns();
        bool have = false;
        jp_error e = {0};
        for (size_t i = 0; i < src->n_params; i++)
            values[i] = NAN;
        jp_status st = src->backend->poll(src, t, values, &have, &e);
        if (st != JP_OK) {
            jp_power_fail(src, &e);
            break;
        }
        if (have && jp_power_push(src, t, values) != JP_OK)
            break;
        next += interval_ns;
        int64_t now = jp_power_now_ns();
        if (next < now) /* a slow read: do not try to catch up */
            next = now;
        pthread_mutex_lock(&src->lock);
        bool stop = src->stop_requested;
        while (!stop) {
            struct timespec until = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
            int rc = pthread_cond_timedwait(&src->wake, &src->lock, &until);
            stop = src->stop_requested;
            if (rc == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&src->lock);
        if (stop)
            break;
    }
    free(values);
    return NULL;
}

jp_status jp_power_start(jp_power_source *src, jp_error *err)
{
    if (!src)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_power_start: NULL source");
    if (src->running)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: started twice without stop",
                            jp_power_kind_name(src->backend->kind));
    pthread_mutex_lock(&src->lock);
    src->buf_count = 0;
    src->total = 0;
    src->first_t_ns = src->last_t_ns = 0;
    src->failed = false;
    src->stop_requested = false;
    pthread_mutex_unlock(&src->lock);

    jp_status st = JP_OK;
    if (src->backend->start)
        st = src->backend->start(src, err);
    if (st != JP_OK)
        return st;
    if (src->backend->poll) {
        int rc = pthread_create(&src->poll_thread, NULL, poll_main, src);
        if (rc != 0) {
            if (src->backend->stop) {
                jp_error ignored;
                src->backend->stop(src, &ignored);
            }
            return jp_error_set(err, JP_ERR_IO, "%s: cannot start the sampling thread: %s",
                                jp_power_kind_name(src->backend->kind), strerror(rc));
        }
        src->poll_thread_started = true;
    }
    src->running = true;
    return JP_OK;
}

jp_status jp_power_take(jp_power_source *src, jp_power_samples *out, jp_error *err)
{
    if (!src || !out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_power_take: NULL argument");
    jp_status st = JP_OK;
    pthread_mutex_lock(&src->lock);
    if (out->count == 0)
        out->n_params = src->n_params;
    if (out->n_params != src->n_params) {
        st = jp_error_set(err, JP_ERR_INTERNAL,
                          "jp_power_take: the buffer holds samples of %zu parameters, the source "
                          "has %zu",
                          out->n_params, src->n_params);
    } else if (src->buf_count > 0) {
        if (!grow_rows(&out->t_ns, &out->values, &out->capacity, out->count + src->buf_count,
                       out->n_params)) {
            st = jp_error_set(err, JP_ERR_NOMEM, "power samples: out of memory for %zu samples",
                              out->count + src->buf_count);
        } else {
            memcpy(out->t_ns + out->count, src->buf_t_ns, src->buf_count * sizeof *out->t_ns);
            if (out->n_params)
                memcpy(out->values + out->count * out->n_params, src->buf_values,
                       src->buf_count * src->n_params * sizeof *out->values);
            out->count += src->buf_count;
            src->buf_count = 0;
        }
    }
    if (st == JP_OK && src->failed) {
        if (err)
            *err = src->failure;
        st = src->failure.status;
    }
    pthread_mutex_unlock(&src->lock);
    return st;
}

jp_status jp_power_check(const jp_power_source *src, jp_error *err)
{
    jp_power_source *s = (jp_power_source *)src; /* the lock is not part of the value */
    pthread_mutex_lock(&s->lock);
    jp_status st = JP_OK;
    if (s->failed) {
        if (err)
            *err = s->failure;
        st = s->failure.status;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

jp_status jp_power_stop(jp_power_source *src, jp_error *err)
{
    if (!src)
        return JP_OK;
    pthread_mutex_lock(&src->lock);
    src->stop_requested = true;
    pthread_cond_broadcast(&src->wake);
    pthread_mutex_unlock(&src->lock);
    if (src->poll_thread_started) {
        pthread_join(src->poll_thread, NULL);
        src->poll_thread_started = false;
    }
    jp_status st = JP_OK;
    if (src->running && src->backend->stop)
        st = src->backend->stop(src, err);
    src->running = false;
    return st;
}

void jp_power_close(jp_power_source *src)
{
    if (!src)
        return;
    jp_error ignored;
    jp_power_stop(src, &ignored);
    destroy(src);
}

const jp_power_param *jp_power_params(const jp_power_source *src, size_t *count)
{
    if (count)
        *count = src ? src->n_params : 0;
    return src ? src->params : NULL;
}

long jp_power_param_index(const jp_power_source *src, const char *name)
{
    for (size_t i = 0; src && name && i < src->n_params; i++)
        if (strcmp(src->params[i].name, name) == 0)
            return (long)i;
    return -1;
}

size_t jp_power_rails(const jp_power_source *src, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; src && i < src->n_params; i++) {
        if (src->params[i].kind != JP_TGR_RAIL)
            continue;
        if (names && n < max)
            names[n] = src->params[i].name;
        n++;
    }
    return n;
}

jp_power_kind jp_power_source_kind(const jp_power_source *src)
{
    return src ? src->backend->kind : JP_POWER_NONE;
}

int jp_power_requested_interval_ms(const jp_power_source *src)
{
    return src ? src->opts.interval_ms : 0;
}

double jp_power_delivered_interval_ms(const jp_power_source *src)
{
    jp_power_source *s = (jp_power_source *)src;
    if (!s)
        return NAN;
    pthread_mutex_lock(&s->lock);
    double ms = NAN;
    if (s->total >= 2)
        ms = (double)(s->last_t_ns - s->first_t_ns) / 1e6 / (double)(s->total - 1);
    pthread_mutex_unlock(&s->lock);
    return ms;
}

uint64_t jp_power_sample_total(const jp_power_source *src)
{
    jp_power_source *s = (jp_power_source *)src;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->total;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const char *jp_power_describe(const jp_power_source *src) { return src ? src->description : ""; }

const char *jp_power_auto_log(const jp_power_source *src) { return src ? src->auto_log : ""; }

jp_board jp_power_board(const jp_power_source *src) { return src ? src->board : JP_BOARD_UNKNOWN; }

const char *jp_power_board_model(const jp_power_source *src) { return src ? src->board_model : ""; }

/* ---- the `none` source ---- */

static jp_status none_open(jp_power_source *src, jp_error *err)
{
    snprintf(src->description, sizeof src->description, "none: power is not measured");
    return JP_OK;
}

const jp_power_backend jp_power_backend_none = {
    .kind = JP_POWER_NONE,
    .open = none_open,
};
