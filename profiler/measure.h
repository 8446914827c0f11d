/*
 * measure.h: the measurement protocol, in one place (DESIGN.md,
 * "Measurement protocol").  `profile`, `compare` and `calibrate` call it;
 * they keep only their options and their output.
 *
 * A "unit" is whatever is measured: a layer, an executor step, one prepared
 * kernel.  Its run function makes one call and returns with the device
 * synchronised, so that a clock read after it sees the work done.
 *
 *   latency: `warmup` untimed calls, then n calls each timed on its own;
 *            every sample kept, in call order.
 *   power:   the seed's window: a cooldown (the unit idle for cooldown_s,
 *            the seed's 2 s sleep "to eliminate the power of current layer
 *            get accounted towards the next"), a start marker, the unit in
 *            a loop for duration + 2 x boundary seconds, an end marker.  The
 *            samples with start + boundary <= t <= end - boundary, the
 *            middle `duration` seconds, belong to the unit
 *            (jp_raw_in_window()); the cooldown's samples give the idle
 *            baseline.
 *
 * The clock is injectable so that the protocol is tested on a fake clock
 * (tests/test_measure.c); NULL means CLOCK_MONOTONIC and nanosleep, the
 * clock of every power sample's stamp.
 */
#ifndef JP_MEASURE_H
#define JP_MEASURE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/jp_error.h"

typedef struct jp_measure_clock {
    int64_t (*now_ns)(void *ctx);              /* monotonic nanoseconds      */
    void (*sleep_ns)(void *ctx, int64_t ns);   /* sleeps at least ns (> 0)   */
    void *ctx;
} jp_measure_clock;

typedef struct jp_measure_unit {
    /* One call of the unit, device synchronised on return. */
    jp_status (*run)(void *ctx, jp_error *err);
    void *ctx;
} jp_measure_unit;

/* The seed's power-window settings, in seconds. */
typedef struct jp_measure_window_options {
    double duration_s; /* --tgr_smpl_duration: the kept middle, > 0          */
    double boundary_s; /* --tgr_smpl_boundary: cut from each end, >= 0       */
    double cooldown_s; /* --cooldown: idle before the window, >= 0           */
} jp_measure_window_options;

/* One power window's markers (monotonic ns) and what ran in it. */
typedef struct jp_measure_window {
    int64_t idle_start_ns; /* start of the cooldown (== start_ns without one) */
    int64_t start_ns;      /* start marker: the loop begins                  */
    int64_t end_ns;        /* end marker: the loop's last call returned      */
    uint64_t calls;        /* unit calls the loop completed                  */
} jp_measure_window;

/* The whole loop a window runs: duration + 2 x boundary, in ns. */
int64_t jp_measure_loop_ns(const jp_measure_window_options *o);

/* The clock's now (CLOCK_MONOTONIC for a NULL clock). */
int64_t jp_measure_now_ns(const jp_measure_clock *clock);

/*
 * warmup untimed calls, then n timed calls: samples_s[i] is the i-th call's
 * duration in seconds.  The first error of a call is returned as it is.
 */
jp_status jp_measure_latency(const jp_measure_clock *clock, const jp_measure_unit *unit, long warmup, long n,
                             double *samples_s, jp_error *err);

/*
 * One power window: sleeps o->cooldown_s, then runs the unit in a loop
 * until duration + 2 x boundary has passed since the start marker (at least
 * one call), and fills *w.  The caller takes the power samples before and
 * after (the sampler stamps them with the same clock).  When *stop becomes
 * non-zero during the cooldown, the window is not started and
 * JP_ERR_INTERRUPTED is returned (stop may be NULL).
 */
jp_status jp_measure_power_window(const jp_measure_clock *clock, const jp_measure_unit *unit,
                                  const jp_measure_window_options *o, const volatile sig_atomic_t *stop,
                                  jp_measure_window *w, jp_error *err);

/*
 * Timers of the units inside whole forward passes, as executor hooks
 * (jp_exec_hooks: before/after each layer or step; the executor
 * synchronises the device before each hook call): the latency of a layer in
 * context, beside its isolated latency.  unit_s[pass * n_units + unit] gets
 * the unit's seconds in pass `pass`; pass < 0 records nothing (warm-up).
 */
typedef struct jp_measure_pass_timer {
    const jp_measure_clock *clock; /* NULL: CLOCK_MONOTONIC */
    int n_units;
    int pass;
    int64_t start_ns;
    double *unit_s; /* (passes, n_units), the caller's */
} jp_measure_pass_timer;

jp_status jp_measure_timer_before(void *timer, int unit, jp_error *err);
jp_status jp_measure_timer_after(void *timer, int unit, jp_error *err);

/*
 * The plain mean of one parameter over a window's kept samples
 * (start + boundary <= t <= end - boundary), NaN values skipped: *n gets
 * the count, the result is NaN when it is 0.  t_ns (count), values
 * row-major (count, n_params).
 */
double jp_measure_window_mean(const int64_t *t_ns, const double *values, size_t count, size_t n_params,
                              size_t param, const jp_measure_window *w, int64_t boundary_ns, size_t *n);

#endif /* JP_MEASURE_H */
