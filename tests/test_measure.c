/*
 * test_measure.c: the measurement protocol (profiler/measure.h) on a fake
 * clock, and the lag model (profiler/lag.h) on a first-order sensor
 * simulated here: neither the binary nor a model is needed.
 *
 * The fake clock advances only when the fake unit runs (each call takes
 * call_ns) or the protocol sleeps, so every marker and count is known
 * exactly beforehand.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jp_test.h"
#include "lag.h"
#include "measure.h"
#include "rawdata.h"

typedef struct fake {
    int64_t now_ns;
    int64_t call_ns;    /* how long one unit call takes                  */
    long calls;         /* calls made                                    */
    long fail_at;       /* the call that fails (1-based), 0: none        */
    int64_t slept_ns;   /* total time asleep                             */
    volatile sig_atomic_t *stop_after_sleep; /* set to 1 by the first sleep */
} fake;

static int64_t fake_now(void *ctx) { return ((fake *)ctx)->now_ns; }

static void fake_sleep(void *ctx, int64_t ns)
{
    fake *f = ctx;
    f->now_ns += ns;
    f->slept_ns += ns;
    if (f->stop_after_sleep)
        *f->stop_after_sleep = 1;
}

static jp_status fake_run(void *ctx, jp_error *err)
{
    fake *f = ctx;
    f->calls++;
    if (f->fail_at && f->calls == f->fail_at)
        return jp_error_set(err, JP_ERR_DEVICE, "fake unit: call %ld failed", f->calls);
    f->now_ns += f->call_ns;
    return JP_OK;
}

static void test_latency(void)
{
    fake f = {.now_ns = 1000, .call_ns = 3000000};
    jp_measure_clock clock = {.now_ns = fake_now, .sleep_ns = fake_sleep, .ctx = &f};
    jp_measure_unit unit = {.run = fake_run, .ctx = &f};
    double s[5];
    jp_error err = {0};
    jp_status st = jp_measure_latency(&clock, &unit, 4, 5, s, &err);
    bool ok = st == JP_OK && f.calls == 9;
    for (int i = 0; i < 5; i++)
        ok = ok && s[i] == 0.003;
    JP_CHECK("measure: latency = warm-up calls untimed, then n calls timed one by one", ok, "st %d, %ld calls, %g",
             st, f.calls, s[0]);
    f = (fake){.call_ns = 1, .fail_at = 7};
    st = jp_measure_latency(&clock, &unit, 4, 5, s, &err);
    JP_CHECK("measure: a failing call stops the latency loop with its error",
             st == JP_ERR_DEVICE && f.calls == 7 && strstr(err.msg, "call 7"), "st %d %s", st, err.msg);
}

static void test_window(void)
{
    /* the seed's defaults: 5 + 2 x 1 s loop after a 2 s cooldown; calls of 0.3 s */
    fake f = {.now_ns = 10 * 1000000000LL, .call_ns = 300000000};
    jp_measure_clock clock = {.now_ns = fake_now, .sleep_ns = fake_sleep, .ctx = &f};
    jp_measure_unit unit = {.run = fake_run, .ctx = &f};
    jp_measure_window_options o = {.duration_s = 5, .boundary_s = 1, .cooldown_s = 2};
    jp_measure_window w;
    jp_error err = {0};
    jp_status st = jp_measure_power_window(&clock, &unit, &o, NULL, &w, &err);
    /* 7 s / 0.3 s: the 24th call ends at 7.2 s, the first past 7 s */
    JP_CHECK("measure: window = cooldown, then the loop for duration + 2 x boundary",
             st == JP_OK && w.idle_start_ns == 10000000000LL && w.start_ns == 12000000000LL &&
                 w.calls == 24 && w.end_ns == 12000000000LL + 24 * 300000000LL && f.slept_ns == 2000000000LL &&
                 jp_measure_loop_ns(&o) == 7000000000LL,
             "st %d: idle %lld start %lld end %lld calls %llu slept %lld", st, (long long)w.idle_start_ns,
             (long long)w.start_ns, (long long)w.end_ns, (unsigned long long)w.calls, (long long)f.slept_ns);

    f = (fake){.call_ns = 9000000000LL};
    o = (jp_measure_window_options){.duration_s = 0.5, .boundary_s = 0, .cooldown_s = 0};
    st = jp_measure_power_window(&clock, &unit, &o, NULL, &w, &err);
    JP_CHECK("measure: a call longer than the window still runs once; no cooldown, no sleep",
             st == JP_OK && w.calls == 1 && w.idle_start_ns == w.start_ns && f.slept_ns == 0, "st %d calls %llu", st,
             (unsigned long long)w.calls);

    volatile sig_atomic_t stop = 0;
    f = (fake){.call_ns = 1000, .stop_after_sleep = &stop};
    o = (jp_measure_window_options){.duration_s = 1, .boundary_s = 0, .cooldown_s = 2};
    st = jp_measure_power_window(&clock, &unit, &o, &stop, &w, &err);
    JP_CHECK("measure: Ctrl-C during the cooldown: no window started, JP_ERR_INTERRUPTED",
             st == JP_ERR_INTERRUPTED && f.calls == 0, "st %d calls %ld", st, f.calls);

    /* the mean over the kept middle, NaN skipped, both edges included */
    int64_t t[6] = {0, 100, 200, 300, 400, 500};
    double v[12] = {1, 9, 2, 9, 3, NAN, 4, 9, 5, 9, 6, 9}; /* two parameters */
    jp_measure_window mw = {.start_ns = 0, .end_ns = 500};
    size_t n;
    double m0 = jp_measure_window_mean(t, v, 6, 2, 0, &mw, 100, &n);
    size_t n1;
    double m1 = jp_measure_window_mean(t, v, 6, 2, 1, &mw, 100, &n1);
    JP_CHECK("measure: window mean over [start + b, end - b], NaN skipped", m0 == 3.5 && n == 4 && m1 == 9 && n1 == 3,
             "%g (%zu) %g (%zu)", m0, n, m1, n1);
}

/* A first-order sensor: steps from y0 to p at t = 0, sampled every 20 ms. */
static size_t step_response(double tau, double y0, double p, double loop_s, double *t, double *y, size_t cap)
{
    size_t n = 0;
    for (double s = 0.01; s <= loop_s && n < cap; s += 0.02, n++) {
        t[n] = s;
        y[n] = p + (y0 - p) * (tau > 0 ? exp(-s / tau) : 0);
    }
    return n;
}

static void test_lag(void)
{
    enum { CAP = 400, WINDOWS = 4 };
    static double t[WINDOWS][CAP], y[WINDOWS][CAP];
    const double tau = 0.5, p[WINDOWS] = {3000, 5000, 2000, 8000}, y0[WINDOWS] = {1000, 4000, 2500, 1200};
    jp_lag_window w[WINDOWS];
    for (int k = 0; k < WINDOWS; k++) {
        size_t n = step_response(tau, y0[k], p[k], 7, t[k], y[k], CAP);
        w[k] = (jp_lag_window){.t_s = t[k], .y = y[k], .n = n, .loop_s = 7, .lo_s = 1, .hi_s = 6};
    }
    jp_lag_fit fit;
    jp_lag_fit_tau(w, WINDOWS, &fit);
    JP_CHECK("lag: tau of an exact first-order response recovered", fit.fits && fabs(fit.tau_s - tau) < 1e-3 * tau,
             "tau %g, fits %d: %s", fit.tau_s, fit.fits, fit.why);
    double worst = 0, worst_plain = 0;
    for (int k = 0; k < WINDOWS; k++) {
        double plain, c = jp_lag_corrected_mean(&w[k], fit.tau_s, &plain);
        worst = fmax(worst, fabs(c - p[k]) / p[k]);
        worst_plain = fmax(worst_plain, fabs(plain - p[k]) / p[k]);
    }
    JP_CHECK("lag: the corrected mean is the true power (1e-4), the plain one is not (> 1e-3)",
             worst < 1e-4 && worst_plain > 1e-3, "corrected %g, plain %g", worst, worst_plain);

    double plain;
    double c = jp_lag_corrected_mean(&w[0], 0, &plain);
    JP_CHECK("lag: tau 0 gives the time-weighted plain mean", c == plain, "%g %g", c, plain);
    jp_lag_window tiny = {.t_s = t[0], .y = y[0], .n = 1, .loop_s = 7, .lo_s = 0, .hi_s = 7};
    c = jp_lag_corrected_mean(&tiny, tau, &plain);
    JP_CHECK("lag: fewer than 2 samples in the window: NaN", isnan(c) && isnan(plain), "%g", c);

    /* no step at all (a flat load): no first-order step to fit */
    for (int k = 0; k < WINDOWS; k++)
        for (size_t i = 0; i < w[k].n; i++)
            y[k][i] = 4000 + ((i * 7919) % 5); /* flat with a little noise */
    jp_lag_fit_tau(w, WINDOWS, &fit);
    double shift = 0;
    for (int k = 0; k < WINDOWS && fit.fits; k++) {
        c = jp_lag_corrected_mean(&w[k], fit.tau_s, &plain);
        shift = fmax(shift, fabs(c - plain));
    }
    JP_CHECK("lag: a flat load gets no spurious correction (< 0.5 mW)", shift < 0.5, "tau %g, shift %g: %s",
             fit.tau_s, shift, fit.why);
    jp_lag_fit_tau(w, 0, &fit);
    JP_CHECK("lag: no window: does not fit, says why", !fit.fits && strstr(fit.why, "no window"), "%s", fit.why);
}

static void test_seed_trim(void)
{
    JP_CHECK("seed names: f = int(1000 / interval) (50 at 20 ms, 33 at 30 ms), trim f x b",
             jp_raw_samples_per_s(20) == 50 && jp_raw_samples_per_s(30) == 33 && jp_raw_seed_trim(50, 1) == 50 &&
                 jp_raw_seed_trim(50, 0.1) == 5 && jp_raw_seed_trim(33, 0) == 0,
             "%ld %ld %zu %zu", jp_raw_samples_per_s(20), jp_raw_samples_per_s(30), jp_raw_seed_trim(50, 1),
             jp_raw_seed_trim(50, 0.1));
}

int main(void)
{
    test_latency();
    test_window();
    test_lag();
    test_seed_trim();
    return jp_test_exit_code();
}
