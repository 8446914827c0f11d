/*
 * measure.c: the measurement protocol of measure.h.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "measure.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#include "clock.h"
#include "rawdata.h"

int64_t jp_measure_now_ns(const jp_measure_clock *clock)
{
    return clock && clock->now_ns ? clock->now_ns(clock->ctx) : jp_clock_ns();
}

/* Sleeps ns in slices of at most 50 ms, so that *stop is seen soon. */
static jp_status sleep_for(const jp_measure_clock *clock, int64_t ns, const volatile sig_atomic_t *stop,
                           jp_error *err)
{
    int64_t until = jp_measure_now_ns(clock) + ns;
    for (int64_t left = ns; left > 0; left = until - jp_measure_now_ns(clock)) {
        if (stop && *stop)
            return jp_error_set(err, JP_ERR_INTERRUPTED, "interrupted during the cooldown");
        int64_t slice = left < 50000000 ? left : 50000000;
        if (clock && clock->sleep_ns) {
            clock->sleep_ns(clock->ctx, slice);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(slice / 1000000000), .tv_nsec = (long)(slice % 1000000000)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !(stop && *stop))
                ;
        }
    }
    return JP_OK;
}

int64_t jp_measure_loop_ns(const jp_measure_window_options *o)
{
    return jp_raw_seconds_to_ns(o->duration_s + 2 * o->boundary_s);
}

jp_status jp_measure_latency(const jp_measure_clock *clock, const jp_measure_unit *unit, long warmup, long n,
                             double *samples_s, jp_error *err)
{
    for (long i = 0; i < warmup; i++)
        if (unit->run(unit->ctx, err))
            return err->status;
    for (long i = 0; i < n; i++) {
        int64_t t0 = jp_measure_now_ns(clock);
        if (unit->run(unit->ctx, err))
            return err->status;
        samples_s[i] = (double)(jp_measure_now_ns(clock) - t0) * 1e-9;
    }
    return JP_OK;
}

jp_status jp_measure_power_window(const jp_measure_clock *clock, const jp_measure_unit *unit,
                                  const jp_measure_window_options *o, const volatile sig_atomic_t *stop,
                                  jp_measure_window *w, jp_error *err)
{
    int64_t loop_ns = jp_measure_loop_ns(o);
    w->idle_start_ns = jp_measure_now_ns(clock);
    if (o->cooldown_s > 0 && sleep_for(clock, jp_raw_seconds_to_ns(o->cooldown_s), stop, err))
        return err->status;
    w->calls = 0;
    w->start_ns = jp_measure_now_ns(clock);
    int64_t now = w->start_ns;
    do {
        if (unit->run(unit->ctx, err))
            return err->status;
        w->calls++;
        now = jp_measure_now_ns(clock);
    } while (now - w->start_ns < loop_ns);
    w->end_ns = now;
    return JP_OK;
}

double jp_measure_window_mean(const int64_t *t_ns, const double *values, size_t count, size_t n_params,
                              size_t param, const jp_measure_window *w, int64_t boundary_ns, size_t *n)
{
    double sum = 0;
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        double v = values[i * n_params + param];
        if (jp_raw_in_window(t_ns[i], w->start_ns, w->end_ns, boundary_ns) && isfinite(v))
            sum += v, (*n)++;
    }
    return *n ? sum / (double)*n : NAN;
}

jp_status jp_measure_timer_before(void *timer, int unit, jp_error *err)
{
    (void)unit, (void)err;
    jp_measure_pass_timer *t = timer;
    t->start_ns = jp_measure_now_ns(t->clock);
    return JP_OK;
}

jp_status jp_measure_timer_after(void *timer, int unit, jp_error *err)
{
    jp_measure_pass_timer *t = timer;
    int64_t now = jp_measure_now_ns(t->clock);
    if (unit < 0 || unit >= t->n_units)
        return jp_error_set(err, JP_ERR_INTERNAL, "pass timer: unit %d of %d", unit, t->n_units);
    if (t->pass >= 0)
        t->unit_s[(size_t)t->pass * (size_t)t->n_units + (size_t)unit] = (double)(now - t->start_ns) * 1e-9;
    return JP_OK;
}
