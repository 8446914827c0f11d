/*
 * lag.h: the power sensor's lag, and per-window power corrected for it.
 *
 * A Jetson's INA3221 averages 64 to 1024 conversions per reading: its value
 * y follows the true power x like a first-order low-pass,
 *     tau dy/dt = x - y,
 * with tau about 0.4-0.9 s (issue 11).  A layer's window then starts with
 * the tail of the state before it, and the plain mean of y over the window
 * is biased towards that state.  For such a sensor x = y + tau dy/dt
 * exactly, so the mean of x over a window [a, b] is
 *     (integral of y over [a, b] + tau (y(b) - y(a))) / (b - a),
 * whatever x did inside: jp_lag_corrected_mean().
 *
 * tau comes from a calibration (`jplprof calibrate`) or, without one, from
 * the windows themselves: the unit's loop starts at the start marker, so
 * over the loop x is constant and y(t) = P + A exp(-t / tau) with P and A
 * per window and tau shared: jp_lag_fit_tau() fits it by least squares
 * (for a fixed tau the model is linear in P and A).
 */
#ifndef JP_LAG_H
#define JP_LAG_H

#include <stdbool.h>
#include <stddef.h>

/* One window's samples of one parameter. */
typedef struct jp_lag_window {
    const double *t_s; /* (n) seconds since the start marker, non-decreasing  */
    const double *y;   /* (n) readings; NaN entries are skipped                */
    size_t n;
    double loop_s;     /* the loop's length: the end marker, since the start  */
    double lo_s, hi_s; /* the kept window: start + boundary, end - boundary   */
} jp_lag_window;

/* Shortest and longest time constant jp_lag_fit_tau() considers, s. */
#define JP_LAG_TAU_MIN_S 0.002
#define JP_LAG_TAU_MAX_S 5.0

typedef struct jp_lag_fit {
    double tau_s;        /* the fitted time constant; 0 when below JP_LAG_TAU_MIN_S */
    double rms_residual; /* RMS of y - model over the loops' samples (unit of y)   */
    double noise;        /* sample-to-sample noise of the settled halves            */
    double step;         /* RMS of the fitted steps A over the windows             */
    size_t n_windows;    /* windows with enough samples to take part               */
    size_t n_samples;
    bool fits;           /* the first-order model explains the samples (see why)   */
    char why[200];       /* one line: what was found, or why it does not fit       */
} jp_lag_fit;

/*
 * Fits tau over the windows' loops (samples with 0 <= t <= loop_s).  A
 * window takes part when it has at least 6 samples in its loop.  fits is
 * false when no window takes part, when the best tau is the longest
 * considered (no first-order step), or when the residual is well above the
 * noise (rms_residual > 3 x noise + 1: the 1 is a reading's LSB in mW)
 * and above 2 % of the RMS step (slow wander of the true power counts as
 * the first, but not as the second).
 * When the fitted steps themselves are within the noise (RMS < 3 x noise +
 * 1), tau cannot be told and is reported as 0: no correction.
 */
void jp_lag_fit_tau(const jp_lag_window *w, size_t n, jp_lag_fit *fit);

/*
 * The window's mean power corrected for a first-order lag tau_s (0: none),
 * over [t_a, t_b], the first and last sample in [lo_s, hi_s]: the integral
 * of y by the trapezoid rule, y(t_a) and y(t_b) from a line fitted through
 * the 5 samples nearest each edge (noise on one reading is not multiplied by
 * tau / W).  *plain gets the time-weighted mean without the correction.
 * NaN (and *plain NaN) with fewer than 2 samples in the window.
 */
double jp_lag_corrected_mean(const jp_lag_window *w, double tau_s, double *plain);

#endif /* JP_LAG_H */
