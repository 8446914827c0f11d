/*
 * lag.c: the first-order sensor model of lag.h.
 */
#include "lag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define GRID_POINTS 241 /* log-spaced over [TAU_MIN, TAU_MAX]: 3.3 % apart */
#define MIN_LOOP_SAMPLES 6
#define EDGE_SAMPLES 5

/* Sum of squared residuals of y = P + A exp(-t / tau) over one window's loop,
 * P and A by least squares; *a_out gets A.  y is centred on ybar first so
 * that the normal equations stay well conditioned. */
static double window_sse(const jp_lag_window *w, double tau, double ybar, double *a_out)
{
    double n = 0, se = 0, see = 0, sy = 0, sey = 0, syy = 0;
    for (size_t i = 0; i < w->n; i++) {
        double t = w->t_s[i], y = w->y[i] - ybar;
        if (!(t >= 0 && t <= w->loop_s) || !isfinite(y))
            continue;
        double e = exp(-t / tau);
        n += 1, se += e, see += e * e, sy += y, sey += e * y, syy += y * y;
    }
    double det = n * see - se * se;
    double a = 0, p = n > 0 ? sy / n : 0;
    if (det > 1e-12 * n * n) {
        a = (n * sey - se * sy) / det;
        p = (sy - a * se) / n;
    }
    *a_out = a;
    double sse = syy - p * sy - a * sey; /* = sum (y - p - a e)^2 at the optimum */
    return sse > 0 ? sse : 0;
}

static size_t loop_count(const jp_lag_window *w, double *mean)
{
    size_t n = 0;
    double s = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->t_s[i] >= 0 && w->t_s[i] <= w->loop_s && isfinite(w->y[i]))
            n++, s += w->y[i];
    *mean = n ? s / (double)n : 0;
    return n;
}

static double total_sse(const jp_lag_window *w, size_t n, const double *ybar, double tau, double *step_rms)
{
    double sse = 0, a2 = 0;
    size_t used = 0;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(ybar[k]))
            continue;
        double a;
        sse += window_sse(&w[k], tau, ybar[k], &a);
        a2 += a * a, used++;
    }
    if (step_rms)
        *step_rms = used ? sqrt(a2 / (double)used) : 0;
    return sse;
}

/* Noise of the settled second half of each loop, from successive
 * differences (a slow drift does not count). */
static double settled_noise(const jp_lag_window *w, size_t n)
{
    double s = 0;
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        double prev = NAN;
        for (size_t i = 0; i < w[k].n; i++) {
            double t = w[k].t_s[i], y = w[k].y[i];
            if (!(t >= 0.5 * w[k].loop_s && t <= w[k].loop_s) || !isfinite(y))
                continue;
            if (isfinite(prev))
                s += (y - prev) * (y - prev), m++;
            prev = y;
        }
    }
    return m ? sqrt(s / (double)m / 2) : 0;
}

void jp_lag_fit_tau(const jp_lag_window *w, size_t n, jp_lag_fit *fit)
{
    *fit = (jp_lag_fit){0};
    double *ybar = calloc(n ? n : 1, sizeof *ybar);
    if (!ybar) {
        snprintf(fit->why, sizeof fit->why, "out of memory");
        return;
    }
    for (size_t k = 0; k < n; k++) {
        size_t m = loop_count(&w[k], &ybar[k]);
        if (m < MIN_LOOP_SAMPLES) {
            ybar[k] = NAN;
            continue;
        }
        fit->n_windows++;
        fit->n_samples += m;
    }
    if (fit->n_windows == 0) {
        snprintf(fit->why, sizeof fit->why, "no window has %d samples in its loop", MIN_LOOP_SAMPLES);
        free(ybar);
        return;
    }
    /* the grid, then a golden-section search around its best point */
    double log_lo = log(JP_LAG_TAU_MIN_S), log_hi = log(JP_LAG_TAU_MAX_S);
    double best = INFINITY;
    int best_k = 0;
    for (int k = 0; k < GRID_POINTS; k++) {
        double tau = exp(log_lo + (log_hi - log_lo) * k / (GRID_POINTS - 1));
        double sse = total_sse(w, n, ybar, tau, NULL);
        if (sse < best)
            best = sse, best_k = k;
    }
    double step = (log_hi - log_lo) / (GRID_POINTS - 1);
    double a = log_lo + step * (best_k > 0 ? best_k - 1 : 0);
    double b = log_lo + step * (best_k < GRID_POINTS - 1 ? best_k + 1 : GRID_POINTS - 1);
    const double g = 0.6180339887498949;
    double c = b - g * (b - a), d = a + g * (b - a);
    double fc = total_sse(w, n, ybar, exp(c), NULL), fd = total_sse(w, n, ybar, exp(d), NULL);
    for (int it = 0; it < 40; it++) {
        if (fc < fd) {
            b = d, d = c, fd = fc;
            c = b - g * (b - a);
            fc = total_sse(w, n, ybar, exp(c), NULL);
        } else {
            a = c, c = d, fc = fd;
            d = a + g * (b - a);
            fd = total_sse(w, n, ybar, exp(d), NULL);
        }
    }
    double tau = exp(fc < fd ? c : d);
    double sse = total_sse(w, n, ybar, tau, &fit->step);
    free(ybar);
    fit->rms_residual = sqrt(sse / (double)fit->n_samples);
    fit->noise = settled_noise(w, n);
    fit->tau_s = best_k == 0 ? 0 : tau;
    if (best_k == GRID_POINTS - 1) {
        snprintf(fit->why, sizeof fit->why,
                 "the first-order model does not fit: no step, the best time constant is the longest "
                 "considered (%g s)", JP_LAG_TAU_MAX_S);
        return;
    }
    /* The noise from successive differences misses slow wander of the true
     * power (a loaded machine, a board's DVFS): a residual within 2 % of the
     * steps still fits. */
    if (fit->rms_residual > 3 * fit->noise + 1 && fit->rms_residual > 0.02 * fit->step) {
        snprintf(fit->why, sizeof fit->why,
                 "the first-order model does not fit: residual %.3g RMS against noise %.3g (tau %.3g s, %zu "
                 "windows)",
                 fit->rms_residual, fit->noise, tau, fit->n_windows);
        return;
    }
    fit->fits = true;
    if (fit->step < 3 * fit->noise + 1) /* no step stands out of the noise: tau is not identifiable */
        fit->tau_s = 0;
    if (fit->tau_s == 0)
        snprintf(fit->why, sizeof fit->why,
                 "no lag detectable over %zu windows (tau < %g s, or window-start steps of %.3g RMS within the "
                 "noise %.3g)",
                 fit->n_windows, JP_LAG_TAU_MIN_S, fit->step, fit->noise);
    else
        snprintf(fit->why, sizeof fit->why,
                 "first-order fit over %zu window starts: residual %.3g RMS, noise %.3g, steps %.3g RMS",
                 fit->n_windows, fit->rms_residual, fit->noise, fit->step);
}

/* y at the edge sample e, from a line through the (up to) EDGE_SAMPLES
 * window samples idx[from..from+m) around it. */
static double edge_value(const jp_lag_window *w, const size_t *idx, size_t m, double t_edge)
{
    double st = 0, sy = 0, stt = 0, sty = 0;
    for (size_t i = 0; i < m; i++) {
        double t = w->t_s[idx[i]] - t_edge, y = w->y[idx[i]];
        st += t, sy += y, stt += t * t, sty += t * y;
    }
    double det = (double)m * stt - st * st;
    if (m < 2 || !(fabs(det) > 0))
        return sy / (double)m;
    double slope = ((double)m * sty - st * sy) / det;
    return (sy - slope * st) / (double)m; /* the line at t_edge */
}

double jp_lag_corrected_mean(const jp_lag_window *w, double tau_s, double *plain)
{
    *plain = NAN;
    size_t first_idx[EDGE_SAMPLES], last_idx[EDGE_SAMPLES], n_first = 0, n_last = 0, m = 0;
    double integral = 0, t_a = NAN, t_b = NAN, prev_t = NAN, prev_y = NAN;
    for (size_t i = 0; i < w->n; i++) {
        double t = w->t_s[i], y = w->y[i];
        if (!(t >= w->lo_s && t <= w->hi_s) || !isfinite(y))
            continue;
        if (m == 0)
            t_a = t;
        else
            integral += 0.5 * (y + prev_y) * (t - prev_t);
        if (n_first < EDGE_SAMPLES)
            first_idx[n_first++] = i;
        last_idx[n_last++ % EDGE_SAMPLES] = i; /* a ring of the last ones */
        prev_t = t, prev_y = y, t_b = t, m++;
    }
    if (m < 2 || !(t_b > t_a))
        return NAN;
    double width = t_b - t_a;
    *plain = integral / width;
    if (!(tau_s > 0))
        return *plain;
    size_t k = n_last < EDGE_SAMPLES ? n_last : EDGE_SAMPLES;
    double y_a = edge_value(w, first_idx, n_first, t_a), y_b = edge_value(w, last_idx, k, t_b);
    return (integral + tau_s * (y_b - y_a)) / width;
}
