/*
 * cmd_calibrate.c: `jplprof calibrate`: the power sensor's time constant,
 * update period, resolution and noise, per rail, from an idle/busy square
 * wave (profiler/calibration.h has the file it writes).
 *
 * The wave is the protocol's own power window (profiler/measure.h) with the
 * cooldown as the idle half and the loop as the busy half: every core spins
 * on the clock while busy and sleeps while idle, --periods times.  Each
 * half-period is a step of the true power, so each is a window of the lag
 * model (profiler/lag.h): the first-order fit over all of them gives tau,
 * its residual says whether the sensor is first-order at all.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "calibration.h"
#include "cli.h"
#include "clock.h"
#include "fileio.h"
#include "lag.h"
#include "measure.h"

typedef struct calibrate_options {
    jp_cli_power_options power;
    long periods;
    double half_period_s;
    long threads;
    const char *out_dir;
} calibrate_options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: jplprof calibrate [options]\n"
            "\n"
            "Measures the power sensor itself: every core busy, then idle, in a square wave;\n"
            "per rail the time constant tau of its first-order lag (the INA3221 averages),\n"
            "its update period, its resolution (LSB) and its noise.  Printed, and written to\n"
            "<out>/" JP_CALIBRATION_FILE ", which later `profile` runs record in their\n"
            "manifest and `process` uses for the lag-corrected power.  Run it on an idle\n"
            "board, in the power mode you profile.\n"
            "\n"
            "  --periods N             busy/idle periods (default 4)\n"
            "  --half-period S         seconds busy, then as many idle (default 3: well over\n"
            "                          5 tau for the 0.4-0.9 s of a Jetson's INA3221)\n"
            "  --threads N             busy cores (default: all online cores)\n"
            "  --out DIR               the dataset root the file goes under (default Dataset)\n"
            "  --power-source auto|tegrastats|ina3221|nvml|rapl   (default auto)\n"
            "  --tegrastats PATH, --tgr_interval MS (default 20)   as for profile\n");
}

static jp_status parse_args(int argc, char **argv, calibrate_options *o, jp_error *err)
{
    static const struct option options[] = {
        {"periods", required_argument, NULL, 'n'},     {"half-period", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 't'},     {"out", required_argument, NULL, 'o'},
        {"power-source", required_argument, NULL, 'p'}, {"tegrastats", required_argument, NULL, 'T'},
        {"tgr-interval", required_argument, NULL, 'I'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (jp_cli_parse_int("--periods", optarg, 1, 1000, &o->periods, err))
                return err->status;
            break;
        case 'H':
            if (jp_cli_parse_double("--half-period", optarg, 0.05, 3600, &o->half_period_s, err))
                return err->status;
            break;
        case 't':
            if (jp_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, err))
                return err->status;
            break;
        case 'o': o->out_dir = optarg; break;
        case 'p':
            if (jp_power_kind_parse(optarg, &o->power.kind, err))
                return jp_error_prefix(err, "--power-source: ");
            break;
        case 'T': o->power.tegrastats = optarg; break;
        case 'I':
            if (jp_cli_parse_int("--tgr_interval", optarg, 1, 60000, &o->power.interval_ms, err))
                return err->status;
            break;
        case 'h': return JP_STATUS_COUNT;
        default:
            return jp_cli_getopt_error("calibrate", c, argv, err);
        }
    }
    if (jp_cli_no_operands("calibrate", argc, argv, err))
        return err->status;
    return JP_OK;
}

/* Busy: every thread spins on the clock for 10 ms. */
static jp_status spin_all(void *ctx, jp_error *err)
{
    (void)err;
    int threads = *(const int *)ctx;
#pragma omp parallel num_threads(threads)
    {
        int64_t until = jp_clock_ns() + 10000000;
        volatile unsigned x = 0;
        while (jp_clock_ns() < until)
            x++;
    }
    return JP_OK;
}

/* The samples of column p with t in [from_ns, to_ns], times in s since from_ns. */
static jp_lag_window phase_window(const jp_power_samples *s, size_t p, int64_t from_ns, int64_t to_ns,
                                  double *t_buf, double *y_buf)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        if (s->t_ns[i] >= from_ns && s->t_ns[i] <= to_ns) {
            t_buf[n] = (double)(s->t_ns[i] - from_ns) * 1e-9;
            y_buf[n++] = s->values[i * s->n_params + p];
        }
    double len = (double)(to_ns - from_ns) * 1e-9;
    return (jp_lag_window){.t_s = t_buf, .y = y_buf, .n = n, .loop_s = len, .lo_s = 0, .hi_s = len};
}

/* Median of the spacings between samples (all, or only where column p
 * changed), s; NaN with fewer than two. */
static double median_spacing(const jp_power_samples *s, size_t p, bool changes_only, double *scratch)
{
    size_t n = 0;
    int64_t last_t = -1;
    double last_v = NAN;
    for (size_t i = 0; i < s->count; i++) {
        double v = s->values[i * s->n_params + p];
        if (!isfinite(v))
            continue;
        if (last_t >= 0 && (!changes_only || v != last_v))
            scratch[n++] = (double)(s->t_ns[i] - last_t) * 1e-9;
        if (last_t < 0 || !changes_only || v != last_v)
            last_t = s->t_ns[i];
        last_v = v;
    }
    return n ? jp_cli_median(scratch, n) : NAN;
}

/* The smallest step between successive readings that is not zero. */
static double lsb_of(const jp_power_samples *s, size_t p)
{
    double best = INFINITY, last = NAN;
    for (size_t i = 0; i < s->count; i++) {
        double v = s->values[i * s->n_params + p];
        if (!isfinite(v))
            continue;
        if (isfinite(last) && v != last && fabs(v - last) < best)
            best = fabs(v - last);
        last = v;
    }
    return best;
}

/* Mean of column p over the second half of each phase of one kind. */
static double settled_mean(const jp_power_samples *s, size_t p, const jp_measure_window *w, size_t n_w, bool busy)
{
    double sum = 0;
    size_t n = 0;
    for (size_t k = 0; k < n_w; k++) {
        int64_t a = busy ? w[k].start_ns : w[k].idle_start_ns, b = busy ? w[k].end_ns : w[k].start_ns;
        for (size_t i = 0; i < s->count; i++) {
            double v = s->values[i * s->n_params + p];
            if (s->t_ns[i] >= a + (b - a) / 2 && s->t_ns[i] <= b && isfinite(v))
                sum += v, n++;
        }
    }
    return n ? sum / (double)n : NAN;
}

static void add_or_null(cJSON *o, const char *key, double v)
{
    cJSON_AddItemToObject(o, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

int jp_cmd_calibrate(int argc, char **argv)
{
    calibrate_options o = {.power = {.kind = JP_POWER_AUTO, .interval_ms = 20},
                           .periods = 4,
                           .half_period_s = 3,
                           .out_dir = "Dataset"};
    jp_error err = {0};
    jp_status st = parse_args(argc, argv, &o, &err);
    if (st == JP_STATUS_COUNT) {
        usage(stdout);
        return 0;
    }
    if (st)
        return jp_cli_fail("calibrate", &err);
    if (!o.threads)
        o.threads = jp_cli_default_threads();
    jp_power_source *src = NULL;
    jp_rail_choice rail;
    jp_power_samples samples;
    jp_power_samples_init(&samples);
    jp_measure_window *w = calloc((size_t)o.periods + 1, sizeof *w);
    cJSON *root = NULL;
    char *path = NULL;
    double *t_buf = NULL, *y_buf = NULL, *scratch = NULL;
    jp_lag_window *lw = NULL;
    int rc = 0, threads = (int)o.threads;
    if (!w) {
        jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (jp_cli_power_open(&o.power, JP_DEVICE_CPU, &src, &rail, &err))
        goto fail;
    fprintf(stderr, "jplprof calibrate: %s; %ld periods of %g s busy (%d threads) and %g s idle, %.0f s\n",
            jp_power_describe(src), o.periods, o.half_period_s, threads, o.half_period_s,
            (2.0 * (double)o.periods + 1) * o.half_period_s);
    jp_measure_unit busy = {.run = spin_all, .ctx = &threads};
    jp_measure_window_options wo = {.duration_s = o.half_period_s, .boundary_s = 0, .cooldown_s = o.half_period_s};
    for (long k = 0; k < o.periods; k++) {
        if (jp_measure_power_window(NULL, &busy, &wo, NULL, &w[k], &err))
            goto fail;
        if (jp_power_take(src, &samples, &err)) {
            jp_error_prefix(&err, "power source failed: ");
            goto fail;
        }
        fprintf(stderr, "jplprof calibrate: period %ld/%ld done\n", k + 1, o.periods);
    }
    /* a last idle half, for the last falling edge */
    wo.duration_s = 1e-3;
    if (jp_measure_power_window(NULL, &(jp_measure_unit){.run = spin_all, .ctx = &(int){1}}, &wo, NULL,
                                &w[o.periods], &err) ||
        jp_power_take(src, &samples, &err))
        goto fail;

    size_t n_params;
    const jp_power_param *params = jp_power_params(src, &n_params);
    size_t n_lw = 2 * (size_t)o.periods;
    t_buf = malloc((samples.count + 1) * n_lw * sizeof *t_buf);
    y_buf = malloc((samples.count + 1) * n_lw * sizeof *y_buf);
    scratch = malloc((samples.count + 1) * sizeof *scratch);
    lw = calloc(n_lw, sizeof *lw);
    root = cJSON_CreateObject();
    if (!t_buf || !y_buf || !scratch || !lw || !root) {
        jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    time_t now = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    cJSON_AddStringToObject(root, "format", "jplprof-calibration");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "created", stamp);
    cJSON_AddStringToObject(root, "tool", "jplprof " JP_VERSION);
    cJSON_AddStringToObject(root, "board", jp_board_name(jp_power_board(src)));
    cJSON_AddStringToObject(root, "power_source", jp_power_kind_name(jp_power_source_kind(src)));
    cJSON_AddStringToObject(root, "describe", jp_power_describe(src));
    cJSON *proto = cJSON_AddObjectToObject(root, "protocol");
    cJSON_AddNumberToObject(proto, "periods", (double)o.periods);
    cJSON_AddNumberToObject(proto, "half_period_s", o.half_period_s);
    cJSON_AddNumberToObject(proto, "threads", threads);
    cJSON_AddNumberToObject(proto, "samples", (double)samples.count);
    cJSON *rails = cJSON_AddObjectToObject(root, "rails");
    printf("%-20s %9s %5s %11s %9s %7s %12s %12s %9s %9s\n", "rail", "tau_s", "fits", "residual", "noise", "lsb",
           "update_s", "delivery_s", "idle_mW", "busy_mW");
    for (size_t p = 0; p < n_params; p++) {
        if (params[p].kind != JP_TGR_RAIL)
            continue;
        size_t cap = samples.count + 1;
        for (long k = 0; k < o.periods; k++) { /* the rise (busy loop), then the fall (next idle) */
            lw[2 * k] = phase_window(&samples, p, w[k].start_ns, w[k].end_ns, t_buf + 2 * k * cap,
                                     y_buf + 2 * k * cap);
            lw[2 * k + 1] = phase_window(&samples, p, w[k + 1].idle_start_ns, w[k + 1].start_ns,
                                         t_buf + (2 * k + 1) * cap, y_buf + (2 * k + 1) * cap);
        }
        jp_lag_fit fit;
        jp_lag_fit_tau(lw, n_lw, &fit);
        double update = median_spacing(&samples, p, true, scratch);
        double delivery = median_spacing(&samples, p, false, scratch);
        double lsb = lsb_of(&samples, p);
        double idle = settled_mean(&samples, p, w, (size_t)o.periods, false);
        double busy_mw = settled_mean(&samples, p, w, (size_t)o.periods, true);
        cJSON *r = cJSON_AddObjectToObject(rails, params[p].name);
        cJSON_AddNumberToObject(r, "tau_s", fit.tau_s);
        cJSON_AddBoolToObject(r, "fits", fit.fits);
        cJSON_AddStringToObject(r, "why", fit.why);
        cJSON_AddNumberToObject(r, "fit_rms_residual", fit.rms_residual);
        cJSON_AddNumberToObject(r, "noise", fit.noise);
        add_or_null(r, "lsb", lsb);
        add_or_null(r, "update_period_s", update);
        add_or_null(r, "delivery_interval_s", delivery);
        add_or_null(r, "idle_mw", idle);
        add_or_null(r, "busy_mw", busy_mw);
        cJSON_AddNumberToObject(r, "edges", (double)fit.n_windows);
        printf("%-20s %9.4f %5s %11.3g %9.3g %7.3g %12.4f %12.4f %9.1f %9.1f\n", params[p].name, fit.tau_s,
               fit.fits ? "yes" : "NO", fit.rms_residual, fit.noise, lsb, update, delivery, idle, busy_mw);
        if (!fit.fits)
            printf("  %s: %s\n", params[p].name, fit.why);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.jplprof", o.out_dir);
    if (!(path = jp_calibration_path(o.out_dir))) {
        jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (jp_mkdir_p(dir, &err) || jp_json_write_atomic(path, root, true, &err))
        goto fail;
    printf("Calibration in %s: later `jplprof profile --out %s` runs record it, `jplprof process --dataset %s` "
           "corrects each layer's power with its tau.\n",
           path, o.out_dir, o.out_dir);
    goto done;
fail:
    rc = jp_cli_fail("calibrate", &err);
done:
    jp_power_close(src);
    jp_power_samples_free(&samples);
    cJSON_Delete(root);
    free(path);
    free(w);
    free(t_buf);
    free(y_buf);
    free(scratch);
    free(lw);
    return rc;
}
