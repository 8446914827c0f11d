/* trace.c: the Chrome / Perfetto JSON trace writer of trace.h.
 *
 * Tracks and rails are interned (small tables, looked up linearly: a profile
 * has a few dozen of each); slices and counter samples are plain arrays that
 * refer to them by index.  pid 1 is "jplprof"; each track is a tid, named by
 * a "thread_name" metadata event. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "trace.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

typedef struct slice_rec {
    size_t track; /* index into tracks */
    char *name;
    char *layer;
    int64_t start_ns, end_ns;
    uint64_t calls;
} slice_rec;

typedef struct counter_rec {
    size_t rail; /* index into rails */
    int64_t t_ns;
    double value;
} counter_rec;

typedef struct rail_rec {
    char *name;
    char *unit;
} rail_rec;

struct jp_trace {
    char *path;
    int64_t start_ns;
    char **tracks;
    size_t n_tracks, cap_tracks;
    rail_rec *rails;
    size_t n_rails, cap_rails;
    slice_rec *slices;
    size_t n_slices, cap_slices;
    counter_rec *counters;
    size_t n_counters, cap_counters;
};

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / elem)
        return false;
    void *np = realloc(*ptr, nc * elem);
    if (!np)
        return false;
    *ptr = np;
    *cap = nc;
    return true;
}

jp_status jp_trace_open(jp_trace **out, const char *path, int64_t profile_start_ns,
                        jp_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return jp_error_set(err, JP_ERR_ARG, "--trace: empty file name");
    jp_trace *tr = calloc(1, sizeof *tr);
    if (!tr || !(tr->path = xstrdup(path))) {
        free(tr);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    tr->start_ns = profile_start_ns;
    *out = tr;
    return JP_OK;
}

void jp_trace_close(jp_trace *tr)
{
    if (!tr)
        return;
    for (size_t i = 0; i < tr->n_tracks; i++)
        free(tr->tracks[i]);
    free(tr->tracks);
    for (size_t i = 0; i < tr->n_rails; i++) {
        free(tr->rails[i].name);
        free(tr->rails[i].unit);
    }
    free(tr->rails);
    for (size_t i = 0; i < tr->n_slices; i++) {
        free(tr->slices[i].name);
        free(tr->slices[i].layer);
    }
    free(tr->slices);
    free(tr->counters);
    free(tr->path);
    free(tr);
}

/* Index of track name, added when new; (size_t)-1 when out of memory. */
static size_t intern_track(jp_trace *tr, const char *name)
{
    for (size_t i = 0; i < tr->n_tracks; i++)
        if (strcmp(tr->tracks[i], name) == 0)
            return i;
    if (!grow((void **)&tr->tracks, &tr->cap_tracks, tr->n_tracks + 1, sizeof *tr->tracks))
        return (size_t)-1;
    if (!(tr->tracks[tr->n_tracks] = xstrdup(name)))
        return (size_t)-1;
    return tr->n_tracks++;
}

static size_t intern_rail(jp_trace *tr, const char *name, const char *unit)
{
    for (size_t i = 0; i < tr->n_rails; i++)
        if (strcmp(tr->rails[i].name, name) == 0)
            return i;
    if (!grow((void **)&tr->rails, &tr->cap_rails, tr->n_rails + 1, sizeof *tr->rails))
        return (size_t)-1;
    rail_rec *r = &tr->rails[tr->n_rails];
    r->name = xstrdup(name);
    r->unit = xstrdup(unit && *unit ? unit : "value");
    if (!r->name || !r->unit) {
        free(r->name);
        free(r->unit);
        return (size_t)-1;
    }
    return tr->n_rails++;
}

jp_status jp_trace_add_slice(jp_trace *tr, const jp_trace_slice *s, jp_error *err)
{
    if (!s->layer || !*s->layer)
        return jp_error_set(err, JP_ERR_ARG, "trace: slice without a layer key");
    if (s->end_ns < s->start_ns)
        return jp_error_set(err, JP_ERR_ARG, "trace: layer '%s': window ends before it starts",
                            s->layer);
    size_t track = intern_track(tr, s->track && *s->track ? s->track : "layers");
    if (track == (size_t)-1 ||
        !grow((void **)&tr->slices, &tr->cap_slices, tr->n_slices + 1, sizeof *tr->slices))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    slice_rec *r = &tr->slices[tr->n_slices];
    r->track = track;
    r->name = xstrdup(s->name && *s->name ? s->name : s->layer);
    r->layer = xstrdup(s->layer);
    if (!r->name || !r->layer) {
        free(r->name);
        free(r->layer);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    r->start_ns = s->start_ns;
    r->end_ns = s->end_ns;
    r->calls = s->calls;
    tr->n_slices++;
    return JP_OK;
}

jp_status jp_trace_add_counter(jp_trace *tr, const char *rail, const char *unit, int64_t t_ns,
                               double value, jp_error *err)
{
    if (!rail || !*rail)
        return jp_error_set(err, JP_ERR_ARG, "trace: counter without a name");
    if (isnan(value))
        return JP_OK;
    size_t ri = intern_rail(tr, rail, unit);
    if (ri == (size_t)-1 || !grow((void **)&tr->counters, &tr->cap_counters,
                                  tr->n_counters + 1, sizeof *tr->counters))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    counter_rec *c = &tr->counters[tr->n_counters++];
    c->rail = ri;
    c->t_ns = t_ns;
    c->value = value;
    return JP_OK;
}

size_t jp_trace_slice_count(const jp_trace *tr) { return tr ? tr->n_slices : 0; }

size_t jp_trace_counter_count(const jp_trace *tr) { return tr ? tr->n_counters : 0; }

/* ns since the profile start as microseconds with three decimals, exactly
 * (integer arithmetic: no rounding of large timestamps). */
static void put_us(jp_textbuf *b, int64_t rel_ns)
{
    if (rel_ns < 0) {
        jp_textbuf_puts(b, "-");
        rel_ns = -rel_ns;
    }
    jp_textbuf_printf(b, "%lld.%03lld", (long long)(rel_ns / 1000), (long long)(rel_ns % 1000));
}

jp_status jp_trace_write(jp_trace *tr, jp_error *err)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_puts(&b, "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"tool\": \"jplprof\", "
                        "\"clock\": \"CLOCK_MONOTONIC\", \"profile_start_ns\": ");
    jp_textbuf_printf(&b, "%lld}, \"traceEvents\": [\n", (long long)tr->start_ns);
    jp_textbuf_puts(&b, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 0, "
                        "\"args\": {\"name\": \"jplprof\"}}");
    for (size_t i = 0; i < tr->n_tracks; i++) {
        jp_textbuf_printf(&b, ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, "
                              "\"tid\": %zu, \"args\": {\"name\": ", i + 1);
        jp_textbuf_json_string(&b, tr->tracks[i]);
        jp_textbuf_puts(&b, "}}");
        jp_textbuf_printf(&b, ",\n{\"name\": \"thread_sort_index\", \"ph\": \"M\", \"pid\": 1, "
                              "\"tid\": %zu, \"args\": {\"sort_index\": %zu}}", i + 1, i + 1);
    }
    for (size_t i = 0; i < tr->n_slices; i++) {
        const slice_rec *s = &tr->slices[i];
        jp_textbuf_puts(&b, ",\n{\"name\": ");
        jp_textbuf_json_string(&b, s->name);
        jp_textbuf_printf(&b, ", \"cat\": \"layer\", \"ph\": \"X\", \"pid\": 1, \"tid\": %zu, "
                              "\"ts\": ", s->track + 1);
        put_us(&b, s->start_ns - tr->start_ns);
        jp_textbuf_puts(&b, ", \"dur\": ");
        put_us(&b, s->end_ns - s->start_ns);
        jp_textbuf_puts(&b, ", \"args\": {\"layer\": ");
        jp_textbuf_json_string(&b, s->layer);
        jp_textbuf_printf(&b, ", \"calls\": %llu}}", (unsigned long long)s->calls);
    }
    for (size_t i = 0; i < tr->n_counters; i++) {
        const counter_rec *c = &tr->counters[i];
        const rail_rec *r = &tr->rails[c->rail];
        jp_textbuf_puts(&b, ",\n{\"name\": ");
        jp_textbuf_json_string(&b, r->name);
        jp_textbuf_puts(&b, ", \"cat\": \"power\", \"ph\": \"C\", \"pid\": 1, \"ts\": ");
        put_us(&b, c->t_ns - tr->start_ns);
        jp_textbuf_puts(&b, ", \"args\": {");
        jp_textbuf_json_string(&b, r->unit);
        jp_textbuf_puts(&b, ": ");
        jp_textbuf_json_double(&b, c->value);
        jp_textbuf_puts(&b, "}}");
    }
    jp_textbuf_puts(&b, "\n]}\n");
    jp_status st = JP_OK;
    const char *slash = strrchr(tr->path, '/');
    if (slash && slash != tr->path) { /* create the trace's folder when missing */
        char *dir = malloc((size_t)(slash - tr->path) + 1);
        if (!dir) {
            jp_textbuf_free(&b);
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        }
        memcpy(dir, tr->path, (size_t)(slash - tr->path));
        dir[slash - tr->path] = '\0';
        st = jp_mkdir_p(dir, err);
        free(dir);
    }
    if (st == JP_OK)
        st = jp_textbuf_ok(&b)
                       ? jp_file_write_atomic(tr->path, b.data, b.len, err)
                       : jp_error_set(err, JP_ERR_NOMEM, "cannot write '%s': out of memory",
                                      tr->path);
    jp_textbuf_free(&b);
    if (st != JP_OK)
        jp_error_prefix(err, "--trace: ");
    return st;
}
