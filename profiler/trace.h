/*
 * trace.h: a Chrome / Perfetto trace writer (`profile --trace FILE`).
 *
 * Writes the JSON "Trace Event Format" ({"traceEvents": [...]}) that
 * ui.perfetto.dev and chrome://tracing open:
 *   - one complete slice ("ph": "X") per layer call window, on a named track
 *     (a thread row, e.g. "alexnet cpu astronaut.png"), with args
 *     {"layer", "calls"};
 *   - one counter track ("ph": "C") per power rail (or other parameter),
 *     named after it, its series named after the unit ("VDD_SYS_GPU" / "mW").
 * Timestamps are microseconds (with ns decimals) since the profile start;
 * inputs are CLOCK_MONOTONIC nanoseconds, the clock of the markers and of the
 * sampler.  Events are kept in memory and the whole file is rewritten
 * atomically by jp_trace_write(), which may be called any number of times
 * (e.g. after each network) so that a killed run still leaves a valid trace.
 * Not thread-safe.
 */
#ifndef JP_TRACE_H
#define JP_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/jp_error.h"

typedef struct jp_trace jp_trace; /* opaque */

typedef struct jp_trace_slice {
    const char *track; /* the row it goes on; NULL: "layers"                   */
    const char *name;  /* the slice's label; NULL: the layer key                */
    const char *layer; /* the layer key as in the dataset ("3", "layer1.0")     */
    int64_t start_ns;  /* start marker, monotonic                               */
    int64_t end_ns;    /* end marker, >= start_ns                               */
    uint64_t calls;    /* layer calls the window completed                      */
} jp_trace_slice;

/*
 * Starts a trace to be written to path; profile_start_ns is the monotonic
 * time that becomes ts 0.  Nothing is written until jp_trace_write().
 * *out is a new handle (jp_trace_close() it), NULL on failure.
 */
jp_status jp_trace_open(jp_trace **out, const char *path, int64_t profile_start_ns,
                        jp_error *err);

/* Records one layer window (strings copied).  JP_ERR_ARG when end < start or
 * the layer key is missing. */
jp_status jp_trace_add_slice(jp_trace *tr, const jp_trace_slice *slice, jp_error *err);

/* Records one sample of a counter track (rail "VDD_SYS_GPU", unit "mW").  A
 * NaN value (not reported) is skipped.  Strings copied. */
jp_status jp_trace_add_counter(jp_trace *tr, const char *rail, const char *unit, int64_t t_ns,
                               double value, jp_error *err);

/* Writes every event recorded so far to the path, atomically (fileio.h). */
jp_status jp_trace_write(jp_trace *tr, jp_error *err);

/* Number of slices and counter samples recorded (for tests and messages). */
size_t jp_trace_slice_count(const jp_trace *tr);
size_t jp_trace_counter_count(const jp_trace *tr);

/* Frees the handle without writing.  NULL is allowed. */
void jp_trace_close(jp_trace *tr);

#endif /* JP_TRACE_H */
