/*
 * rawdata.c: the raw dataset writer and readers of rawdata.h.
 *
 * In memory a handle keeps everything this (mode, device, network, image)
 * has recorded: the latency entries, the power file (windows and sample
 * segments, the same struct the reader fills) and the journal's entries.
 * jp_raw_flush() regenerates each file from that state, so a file on disk is
 * always a whole, self-consistent snapshot.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "rawdata.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

#define POWER_RAW_FORMAT "jplprof-power-raw"
#define POWER_RAW_VERSION 2 /* written; 1 is still read */
#define JOURNAL_VERSION 1
/* Largest integer a JSON double (cJSON) holds exactly: 2^53. */
#define EXACT_INT_MAX 9007199254740992.0
/* Largest --tgr_smpl_duration / --tgr_smpl_boundary the CLI takes (s). */
#define MAX_SETTING_S 86400.0
/* 2^63: the first double that does not fit int64_t. */
#define INT64_LIMIT 9223372036854775808.0

typedef struct lat_entry {
    char *layer;
    double *samples_s; /* (n) seconds, in the order measured */
    size_t n;
    bool pending; /* added since the last flush: needs a journal line */
} lat_entry;

typedef struct journal_entry {
    jp_raw_kind kind;
    char *layer;
    char *file; /* base name of the data file it was completed in */
} journal_entry;

struct jp_raw {
    /* options, copied */
    char *out_dir;
    int mode;
    const char *device_dir; /* static "cpu" | "gpu" */
    char *network;
    char *image;
    char *stem;
    bool resume;
    bool enabled[JP_RAW_KIND_COUNT];
    int lt_smpl_count;
    int64_t boundary_ns;
    int64_t profile_start_ns; /* 0 until known */

    /* paths */
    char *path[JP_RAW_KIND_COUNT]; /* seed-format data files                  */
    const char *base[JP_RAW_KIND_COUNT]; /* their base names (into path[])     */
    char *path_power_raw;
    char *path_journal;
    char *dir_journal;

    /* latency */
    lat_entry *lat;
    size_t n_lat, cap_lat;

    /* power: the file's contents; the last segment is this run's */
    jp_raw_power_file pf;
    size_t cap_windows;
    bool *window_pending; /* (cap_windows) */
    size_t current_segment;

    /* journal */
    journal_entry *jr;
    size_t n_jr, cap_jr;
    off_t journal_valid_bytes; /* length of the valid prefix on disk */
    int journal_fd;            /* -1 until the first append */
};

const char *jp_raw_kind_name(jp_raw_kind kind)
{
    switch (kind) {
    case JP_RAW_LATENCY: return "latency";
    case JP_RAW_POWER: return "power";
    default: return "?";
    }
}

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Grows *ptr (an array of elem bytes) so that it holds at least need. */
static bool grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return false;
        nc *= 2;
    }
    void *np = realloc(*ptr, nc * elem);
    if (!np)
        return false;
    *ptr = np;
    *cap = nc;
    return true;
}

const char *jp_raw_device_dir(const char *device)
{
    if (!device)
        return NULL;
    if (strcmp(device, "cpu") == 0)
        return "cpu";
    if (strcmp(device, "cuda") == 0 || strcmp(device, "gpu") == 0)
        return "gpu";
    return NULL;
}

jp_status jp_raw_image_stem(const char *image, char *stem, size_t cap, jp_error *err)
{
    if (!image || !*image)
        return jp_error_set(err, JP_ERR_ARG, "empty image name");
    const char *slash = strrchr(image, '/');
    const char *base = slash ? slash + 1 : image;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        n = (size_t)(dot - base);
    if (n == 0)
        return jp_error_set(err, JP_ERR_ARG, "image '%s': empty file name", image);
    if (n >= cap)
        return jp_error_set(err, JP_ERR_ARG, "image '%s': name too long", image);
    memcpy(stem, base, n);
    stem[n] = '\0';
    return JP_OK;
}

char *jp_raw_format_setting(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else
        jp_format_double(v, buf, cap);
    return buf;
}

int64_t jp_raw_seconds_to_ns(double s) { return (int64_t)llround(s * 1e9); }

long jp_raw_samples_per_s(double tgr_interval_ms)
{
    return tgr_interval_ms > 0 ? (long)(1000.0 / tgr_interval_ms) : 0;
}

size_t jp_raw_seed_trim(long samples_per_s, double boundary_s)
{
    double n = floor((double)samples_per_s * boundary_s + 1e-9);
    return n > 0 ? (size_t)n : 0;
}

bool jp_raw_in_window(int64_t t_ns, int64_t start_ns, int64_t end_ns, int64_t boundary_ns)
{
    return start_ns + boundary_ns <= t_ns && t_ns <= end_ns - boundary_ns;
}

void jp_raw_window_range(const jp_raw_power_segment *seg, int64_t start_ns, int64_t end_ns,
                         int64_t boundary_ns, size_t *first, size_t *last)
{
    int64_t lo_t = start_ns + boundary_ns, hi_t = end_ns - boundary_ns;
    /* first row with t >= lo_t */
    size_t lo = 0, hi = seg->n_samples;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->t_ns[mid] < lo_t)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    /* first row with t > hi_t */
    hi = seg->n_samples;
    size_t lo2 = lo;
    while (lo2 < hi) {
        size_t mid = lo2 + (hi - lo2) / 2;
        if (seg->t_ns[mid] <= hi_t)
            lo2 = mid + 1;
        else
            hi = mid;
    }
    *last = lo2 < lo ? lo : lo2;
}

/* ---- seed-format reader ---- */

typedef struct seen_keys {
    char **keys;
    size_t *lines;
    size_t n, cap, cap_lines;
} seen_keys;

static void seen_free(seen_keys *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->lines);
}

jp_status jp_raw_read_seed_file(const char *path, jp_raw_seed_fn fn, void *ctx, jp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return jp_error_set(err, errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO,
                            "cannot open '%s': %s", path, strerror(errno));
    jp_line_reader rd;
    jp_status st = jp_line_reader_init(&rd, f, JP_RAW_SEED_LINE_MAX_BYTES, err);
    if (st != JP_OK) {
        fclose(f);
        return st;
    }
    seen_keys seen = {0};
    int got = 0;
    while (st == JP_OK && (got = jp_line_reader_next(&rd)) > 0) {
        size_t line_no = rd.line_no;
        if (rd.cut_bytes) {
            st = jp_error_set(err, JP_ERR_FORMAT,
                              "%s:%zu: line longer than %d bytes, cut at byte %llu (it starts at "
                              "byte %llu): jplprof writes no layer line that long; the file is "
                              "damaged",
                              path, line_no, JP_RAW_SEED_LINE_MAX_BYTES,
                              (unsigned long long)(rd.offset + rd.len),
                              (unsigned long long)rd.offset);
            break;
        }
        const char *q = rd.buf;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q) {
            const char *parse_end = NULL;
            cJSON *obj = cJSON_ParseWithOpts(q, &parse_end, 0);
            if (obj && parse_end) {
                while (*parse_end == ' ' || *parse_end == '\t' || *parse_end == '\r')
                    parse_end++;
            }
            char dup[256];
            if (!obj || !cJSON_IsObject(obj)) {
                st = jp_error_set(err, JP_ERR_FORMAT,
                                  "%s:%zu: expected one JSON object per line "
                                  "({\"<layer>\": ...}), found '%.40s'",
                                  path, line_no, q);
            } else if (*parse_end) {
                st = jp_error_set(err, JP_ERR_FORMAT,
                                  "%s:%zu: unexpected text after the JSON object: '%.40s'", path,
                                  line_no, parse_end);
            } else if (!obj->child) {
                st = jp_error_set(err, JP_ERR_FORMAT, "%s:%zu: empty object, expected a layer",
                                  path, line_no);
            } else if (jp_json_find_duplicate_key(obj, dup, sizeof dup)) {
                st = jp_error_set(err, JP_ERR_FORMAT, "%s:%zu: duplicate key '%s'", path,
                                  line_no, dup);
            } else {
                for (const cJSON *c = obj->child; c && st == JP_OK; c = c->next) {
                    for (size_t i = 0; i < seen.n; i++) {
                        if (strcmp(seen.keys[i], c->string) == 0) {
                            st = jp_error_set(err, JP_ERR_FORMAT,
                                              "%s:%zu: layer '%s' appears again (first on line "
                                              "%zu)",
                                              path, line_no, c->string, seen.lines[i]);
                            break;
                        }
                    }
                    if (st != JP_OK)
                        break;
                    if (!grow((void **)&seen.keys, &seen.cap, seen.n + 1, sizeof *seen.keys) ||
                        !grow((void **)&seen.lines, &seen.cap_lines, seen.n + 1,
                              sizeof *seen.lines) ||
                        !(seen.keys[seen.n] = xstrdup(c->string))) {
                        st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
                        break;
                    }
                    seen.lines[seen.n++] = line_no;
                    st = fn(path, line_no, c->string, c, ctx, err);
                }
            }
            cJSON_Delete(obj);
        }
    }
    if (st == JP_OK && got < 0)
        st = jp_error_set(err, errno == ENOMEM ? JP_ERR_NOMEM : JP_ERR_IO, "cannot read '%s': %s",
                          path, strerror(errno));
    seen_free(&seen);
    jp_line_reader_free(&rd);
    fclose(f);
    return st;
}

/* ---- power_raw reader ---- */

void jp_raw_power_file_free(jp_raw_power_file *pf)
{
    if (!pf)
        return;
    free(pf->device);
    free(pf->network);
    free(pf->image);
    free(pf->power_source);
    free(pf->device_rail);
    for (size_t i = 0; i < pf->n_windows; i++)
        free(pf->windows[i].layer);
    free(pf->windows);
    for (size_t s = 0; s < pf->n_segments; s++) {
        jp_raw_power_segment *seg = &pf->segments[s];
        for (size_t p = 0; p < seg->n_params; p++) {
            free(seg->param_names[p]);
            free(seg->param_units[p]);
        }
        free(seg->param_names);
        free(seg->param_units);
        free(seg->t_ns);
        free(seg->values);
    }
    free(pf->segments);
    memset(pf, 0, sizeof *pf);
}

static const cJSON *get_member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static jp_status get_string(const char *path, const cJSON *obj, const char *where,
                            const char *key, char **out, jp_error *err)
{
    const cJSON *v = get_member(obj, key);
    if (!v)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s%s%s: missing", path, where,
                            *where ? "." : "", key);
    if (!cJSON_IsString(v))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s%s%s: expected a string", path, where,
                            *where ? "." : "", key);
    *out = xstrdup(v->valuestring);
    if (!*out)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
    return JP_OK;
}

static jp_status get_number(const char *path, const cJSON *obj, const char *where,
                            const char *key, double *out, jp_error *err)
{
    const cJSON *v = get_member(obj, key);
    if (!v)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s%s%s: missing", path, where,
                            *where ? "." : "", key);
    if (!cJSON_IsNumber(v))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s%s%s: expected a number", path, where,
                            *where ? "." : "", key);
    *out = v->valuedouble;
    return JP_OK;
}

/* An integer in [lo, 2^53], as JSON writes our int64 fields. */
static jp_status get_int(const char *path, const cJSON *obj, const char *where, const char *key,
                         double lo, int64_t *out, jp_error *err)
{
    double d = 0;
    jp_status st = get_number(path, obj, where, key, &d, err);
    if (st != JP_OK)
        return st;
    if (d != floor(d) || d < lo || d > EXACT_INT_MAX || d < -EXACT_INT_MAX)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s%s%s: expected an integer%s, found %g",
                            path, where, *where ? "." : "", key, lo >= 0 ? " >= 0" : "", d);
    *out = (int64_t)d;
    return JP_OK;
}

static jp_status load_segment(const char *path, const cJSON *js, size_t index,
                              jp_raw_power_segment *seg, jp_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "segments[%zu]", index);
    if (!cJSON_IsObject(js))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s: expected an object", path, where);
    char *clock = NULL;
    jp_status st = get_string(path, js, where, "clock", &clock, err);
    if (st != JP_OK)
        return st;
    bool mono = strcmp(clock, "CLOCK_MONOTONIC") == 0;
    free(clock);
    if (!mono)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.clock: expected \"CLOCK_MONOTONIC\"",
                            path, where);
    /* t0_ns is written exactly in the text; as a double it may be off by a few
     * ns past 2^53 ns (104 days of uptime): it only dates the run, windows
     * use the relative times.  It must fit int64_t before the cast: a value
     * at or past 2^63 (1e300, inf) or a fraction is an edited file (issue 14;
     * the unchecked cast was undefined behaviour). */
    const cJSON *t0 = get_member(js, "t0_ns");
    if (!t0)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.t0_ns: missing", path, where);
    if (!cJSON_IsNumber(t0))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.t0_ns: expected an integer (ns)", path,
                            where);
    if (!(t0->valuedouble >= 0) || t0->valuedouble >= INT64_LIMIT ||
        t0->valuedouble != floor(t0->valuedouble))
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s: %s.t0_ns: expected an integer from 0 to 2^63-1 (ns), found %.17g",
                            path, where, t0->valuedouble);
    seg->t0_ns = (int64_t)t0->valuedouble;

    const cJSON *params = get_member(js, "params");
    if (!cJSON_IsArray(params) || cJSON_GetArraySize(params) < 1)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.params: expected a non-empty array",
                            path, where);
    size_t np = (size_t)cJSON_GetArraySize(params);
    seg->param_names = calloc(np, sizeof *seg->param_names);
    seg->param_units = calloc(np, sizeof *seg->param_units);
    if (!seg->param_names || !seg->param_units)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
    seg->n_params = np;
    size_t i = 0;
    for (const cJSON *p = params->child; p; p = p->next, i++) {
        char pw[96];
        snprintf(pw, sizeof pw, "%s.params[%zu]", where, i);
        if (!cJSON_IsObject(p))
            return jp_error_set(err, JP_ERR_FORMAT, "%s: %s: expected an object", path, pw);
        if ((st = get_string(path, p, pw, "name", &seg->param_names[i], err)) != JP_OK ||
            (st = get_string(path, p, pw, "unit", &seg->param_units[i], err)) != JP_OK)
            return st;
        if (!seg->param_names[i][0])
            return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.name: empty", path, pw);
        for (size_t j = 0; j < i; j++)
            if (strcmp(seg->param_names[j], seg->param_names[i]) == 0)
                return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.name: '%s' listed twice", path,
                                    pw, seg->param_names[i]);
    }

    const cJSON *samples = get_member(js, "samples");
    if (!cJSON_IsArray(samples))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.samples: expected an array", path,
                            where);
    size_t ns = (size_t)cJSON_GetArraySize(samples);
    if (ns > 0) {
        seg->t_ns = malloc(ns * sizeof *seg->t_ns);
        if (np > SIZE_MAX / sizeof(double) / ns ||
            !(seg->values = malloc(ns * np * sizeof *seg->values)) || !seg->t_ns)
            return jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
    }
    seg->cap_samples = ns;
    size_t r = 0;
    for (const cJSON *row = samples->child; row; row = row->next, r++) {
        if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != np + 1)
            return jp_error_set(err, JP_ERR_FORMAT,
                                "%s: %s.samples[%zu]: expected [t_ns, %zu values]", path, where,
                                r, np);
        const cJSON *c = row->child;
        if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble) ||
            fabs(c->valuedouble) > EXACT_INT_MAX)
            return jp_error_set(err, JP_ERR_FORMAT, "%s: %s.samples[%zu][0]: expected t_ns, an "
                                "integer", path, where, r);
        seg->t_ns[r] = (int64_t)c->valuedouble;
        if (r > 0 && seg->t_ns[r] < seg->t_ns[r - 1])
            return jp_error_set(err, JP_ERR_FORMAT,
                                "%s: %s.samples[%zu][0]: time goes backwards (%lld < %lld)", path,
                                where, r, (long long)seg->t_ns[r], (long long)seg->t_ns[r - 1]);
        size_t p = 0;
        for (c = c->next; c; c = c->next, p++) {
            if (cJSON_IsNumber(c))
                seg->values[r * np + p] = c->valuedouble;
            else if (cJSON_IsNull(c))
                seg->values[r * np + p] = NAN;
            else
                return jp_error_set(err, JP_ERR_FORMAT,
                                    "%s: %s.samples[%zu][%zu]: expected a number or null", path,
                                    where, r, p + 1);
        }
        seg->n_samples = r + 1;
    }
    return JP_OK;
}

jp_status jp_raw_power_file_load(const char *path, jp_raw_power_file *pf, jp_error *err)
{
    memset(pf, 0, sizeof *pf);
    char *text = NULL;
    jp_status st = jp_file_read_all(path, &text, NULL, err);
    if (st != JP_OK)
        return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    char dup[256];
    if (!root || !cJSON_IsObject(root)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: not a JSON object (truncated or edited?)", path);
        goto done;
    }
    if (jp_json_find_duplicate_key(root, dup, sizeof dup)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s: duplicate key", path, dup);
        goto done;
    }
    char *format = NULL;
    if ((st = get_string(path, root, "", "format", &format, err)) != JP_OK)
        goto done;
    bool ours = strcmp(format, POWER_RAW_FORMAT) == 0;
    free(format);
    if (!ours) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: format: expected \"%s\"", path,
                          POWER_RAW_FORMAT);
        goto done;
    }
    int64_t version = 0, mode = 0;
    if ((st = get_int(path, root, "", "version", 0, &version, err)) != JP_OK)
        goto done;
    if (version != 1 && version != POWER_RAW_VERSION) {
        st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                          "%s: version %lld, this jplprof reads versions 1 and %d", path,
                          (long long)version, POWER_RAW_VERSION);
        goto done;
    }
    pf->version = (int)version;
    pf->repeats = 1;
    int64_t repeats = 1;
    if (version >= 2 &&
        ((st = get_number(path, root, "", "cooldown_s", &pf->cooldown_s, err)) != JP_OK ||
         (st = get_int(path, root, "", "repeats", 1, &repeats, err)) != JP_OK))
        goto done;
    if (repeats > 100000) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: repeats: %lld, expected 1..100000", path,
                          (long long)repeats);
        goto done;
    }
    pf->repeats = (int)repeats;
    if ((st = get_int(path, root, "", "mode", 0, &mode, err)) != JP_OK ||
        (st = get_string(path, root, "", "device", &pf->device, err)) != JP_OK ||
        (st = get_string(path, root, "", "network", &pf->network, err)) != JP_OK ||
        (st = get_string(path, root, "", "image", &pf->image, err)) != JP_OK ||
        (st = get_string(path, root, "", "power_source", &pf->power_source, err)) != JP_OK ||
        (st = get_string(path, root, "", "device_rail", &pf->device_rail, err)) != JP_OK ||
        (st = get_number(path, root, "", "tgr_interval_ms", &pf->tgr_interval_ms, err)) != JP_OK ||
        (st = get_number(path, root, "", "tgr_smpl_duration_s", &pf->tgr_smpl_duration_s, err)) !=
            JP_OK ||
        (st = get_number(path, root, "", "tgr_smpl_boundary_s", &pf->tgr_smpl_boundary_s, err)) !=
            JP_OK)
        goto done;
    pf->mode = (int)mode;
    /* The CLI's own limits (1 day): a boundary of 1e300 s made the window
     * arithmetic overflow int64 (found by tests/fuzz, issue 14). */
    if (!(pf->tgr_smpl_boundary_s >= 0 && pf->tgr_smpl_boundary_s <= MAX_SETTING_S) ||
        !(pf->tgr_smpl_duration_s > 0 && pf->tgr_smpl_duration_s <= MAX_SETTING_S) ||
        !(pf->tgr_interval_ms >= 0 && pf->tgr_interval_ms <= MAX_SETTING_S * 1000)) {
        st = jp_error_set(err, JP_ERR_FORMAT,
                          "%s: tgr_smpl_duration_s must be in (0, %g], tgr_smpl_boundary_s in [0, %g] "
                          "and tgr_interval_ms in [0, %g]; found %g, %g and %g",
                          path, MAX_SETTING_S, MAX_SETTING_S, MAX_SETTING_S * 1000,
                          pf->tgr_smpl_duration_s, pf->tgr_smpl_boundary_s, pf->tgr_interval_ms);
        goto done;
    }

    const cJSON *segs = get_member(root, "segments");
    if (!cJSON_IsArray(segs)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: segments: expected an array", path);
        goto done;
    }
    size_t nseg = (size_t)cJSON_GetArraySize(segs);
    pf->segments = calloc(nseg ? nseg : 1, sizeof *pf->segments);
    if (!pf->segments) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *s = segs->child; s; s = s->next, i++) {
        pf->n_segments = i + 1;
        if ((st = load_segment(path, s, i, &pf->segments[i], err)) != JP_OK)
            goto done;
    }

    const cJSON *layers = get_member(root, "layers");
    if (!cJSON_IsArray(layers)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: layers: expected an array", path);
        goto done;
    }
    size_t nl = (size_t)cJSON_GetArraySize(layers);
    pf->windows = calloc(nl ? nl : 1, sizeof *pf->windows);
    if (!pf->windows) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    i = 0;
    for (const cJSON *l = layers->child; l; l = l->next, i++) {
        char where[48];
        snprintf(where, sizeof where, "layers[%zu]", i);
        jp_raw_power_window *w = &pf->windows[i];
        pf->n_windows = i + 1;
        int64_t seg = 0, calls = 0;
        if (!cJSON_IsObject(l)) {
            st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s: expected an object", path, where);
            goto done;
        }
        if ((st = get_string(path, l, where, "layer", &w->layer, err)) != JP_OK ||
            (st = get_int(path, l, where, "segment", 0, &seg, err)) != JP_OK ||
            (st = get_int(path, l, where, "start_ns", -EXACT_INT_MAX, &w->start_ns, err)) !=
                JP_OK ||
            (st = get_int(path, l, where, "end_ns", -EXACT_INT_MAX, &w->end_ns, err)) != JP_OK ||
            (st = get_int(path, l, where, "calls", 0, &calls, err)) != JP_OK)
            goto done;
        w->idle_start_ns = w->start_ns;
        w->repeat = 0;
        if (pf->version >= 2) {
            int64_t rep = 0;
            if ((st = get_int(path, l, where, "idle_start_ns", -EXACT_INT_MAX, &w->idle_start_ns,
                              err)) != JP_OK ||
                (st = get_int(path, l, where, "repeat", 0, &rep, err)) != JP_OK)
                goto done;
            if (rep >= pf->repeats) {
                st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s.repeat: %lld, but repeats is %d",
                                  path, where, (long long)rep, pf->repeats);
                goto done;
            }
            w->repeat = (int)rep;
            if (w->idle_start_ns > w->start_ns) {
                st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s: idle_start_ns > start_ns", path,
                                  where);
                goto done;
            }
        }
        if ((size_t)seg >= pf->n_segments) {
            st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s.segment: %lld, but there are %zu "
                              "segments", path, where, (long long)seg, pf->n_segments);
            goto done;
        }
        if (w->end_ns < w->start_ns) {
            st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s: end_ns < start_ns", path, where);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(pf->windows[j].layer, w->layer) == 0 && pf->windows[j].repeat == w->repeat) {
                st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s.layer: '%s' (repeat %d) also in "
                                  "layers[%zu]", path, where, w->layer, w->repeat, j);
                goto done;
            }
        }
        w->segment = (size_t)seg;
        w->calls = (uint64_t)calls;
    }
done:
    cJSON_Delete(root);
    return st;
}

/* ---- writers: text of each file ---- */

static void text_latency(const jp_raw *raw, jp_textbuf *b)
{
    for (size_t i = 0; i < raw->n_lat; i++) {
        const lat_entry *e = &raw->lat[i];
        jp_textbuf_puts(b, "{");
        jp_textbuf_json_string(b, e->layer);
        jp_textbuf_puts(b, ": [");
        for (size_t k = 0; k < e->n; k++) {
            if (k)
                jp_textbuf_puts(b, ", ");
            jp_textbuf_json_double(b, e->samples_s[k]);
        }
        jp_textbuf_puts(b, "]}\n");
    }
}

/* The seed's power format: per layer, each parameter's values in the window,
 * with `trim` samples before and after them, so that the seed's
 * processData.py, which drops f x b lines at each end by index, keeps
 * exactly the window's samples.  The samples around are the ones that came
 * before and after the window (the loop's boundaries, then the cooldown);
 * where the stream has too few (tegrastats delivered fewer lines than asked,
 * or the run ended), null stands in: the seed's script drops them unread. */
static void text_power_seed(const jp_raw *raw, jp_textbuf *b)
{
    const jp_raw_power_file *pf = &raw->pf;
    size_t trim = jp_raw_seed_trim(jp_raw_samples_per_s(pf->tgr_interval_ms),
                                   pf->tgr_smpl_boundary_s);
    for (size_t i = 0; i < pf->n_windows; i++) {
        const jp_raw_power_window *w = &pf->windows[i];
        bool first_of_layer = true;
        for (size_t j = 0; j < i && first_of_layer; j++)
            first_of_layer = strcmp(pf->windows[j].layer, w->layer) != 0;
        if (!first_of_layer)
            continue;
        jp_textbuf_puts(b, "{");
        jp_textbuf_json_string(b, w->layer);
        jp_textbuf_puts(b, ": {");
        const jp_raw_power_segment *seg0 = &pf->segments[w->segment];
        for (size_t p = 0; p < seg0->n_params; p++) {
            if (p)
                jp_textbuf_puts(b, ", ");
            jp_textbuf_json_string(b, seg0->param_names[p]);
            jp_textbuf_puts(b, ": [");
            /* every window of the layer (repeats in order), the trim before
             * the first and after the last */
            size_t n_out = 0;
            for (int rep = 0; rep < pf->repeats; rep++) {
                const jp_raw_power_window *wr = NULL;
                for (size_t j = i; j < pf->n_windows && !wr; j++)
                    if (strcmp(pf->windows[j].layer, w->layer) == 0 && pf->windows[j].repeat == rep)
                        wr = &pf->windows[j];
                if (!wr)
                    continue;
                const jp_raw_power_segment *seg = &pf->segments[wr->segment];
                size_t first, last;
                jp_raw_window_range(seg, wr->start_ns, wr->end_ns, raw->boundary_ns, &first, &last);
                size_t lo = rep == 0 ? trim : 0, hi = rep == pf->repeats - 1 ? trim : 0;
                for (size_t k = 0; k < lo + (last - first) + hi; k++) {
                    bool real = k + first >= lo && k + first - lo < seg->n_samples;
                    jp_textbuf_puts(b, n_out++ ? ", " : "");
                    if (real && p < seg->n_params)
                        jp_textbuf_json_double(b, seg->values[(k + first - lo) * seg->n_params + p]);
                    else
                        jp_textbuf_puts(b, "null");
                }
            }
            jp_textbuf_puts(b, "]");
        }
        jp_textbuf_puts(b, "}}\n");
    }
}

static void text_power_raw(const jp_raw *raw, jp_textbuf *b)
{
    const jp_raw_power_file *pf = &raw->pf;
    jp_textbuf_printf(b, "{\"format\": \"%s\", \"version\": %d,\n", POWER_RAW_FORMAT,
                      POWER_RAW_VERSION);
    jp_textbuf_printf(b, "\"mode\": %d, \"device\": ", pf->mode);
    jp_textbuf_json_string(b, pf->device);
    jp_textbuf_puts(b, ", \"network\": ");
    jp_textbuf_json_string(b, pf->network);
    jp_textbuf_puts(b, ", \"image\": ");
    jp_textbuf_json_string(b, pf->image);
    jp_textbuf_puts(b, ",\n\"power_source\": ");
    jp_textbuf_json_string(b, pf->power_source);
    jp_textbuf_puts(b, ", \"device_rail\": ");
    jp_textbuf_json_string(b, pf->device_rail);
    jp_textbuf_puts(b, ",\n\"tgr_interval_ms\": ");
    jp_textbuf_json_double(b, pf->tgr_interval_ms);
    jp_textbuf_puts(b, ", \"tgr_smpl_duration_s\": ");
    jp_textbuf_json_double(b, pf->tgr_smpl_duration_s);
    jp_textbuf_puts(b, ", \"tgr_smpl_boundary_s\": ");
    jp_textbuf_json_double(b, pf->tgr_smpl_boundary_s);
    jp_textbuf_puts(b, ", \"cooldown_s\": ");
    jp_textbuf_json_double(b, pf->cooldown_s);
    jp_textbuf_printf(b, ", \"repeats\": %d", pf->repeats);
    jp_textbuf_puts(b, ",\n\"window_rule\": \"start_ns + tgr_smpl_boundary_s <= t_ns <= end_ns - "
                       "tgr_smpl_boundary_s\",\n\"layers\": [");
    for (size_t i = 0; i < pf->n_windows; i++) {
        const jp_raw_power_window *w = &pf->windows[i];
        jp_textbuf_puts(b, i ? ",\n" : "\n");
        jp_textbuf_puts(b, "{\"layer\": ");
        jp_textbuf_json_string(b, w->layer);
        jp_textbuf_printf(b, ", \"repeat\": %d, \"segment\": %zu, \"idle_start_ns\": %lld, "
                             "\"start_ns\": %lld, \"end_ns\": %lld, \"calls\": %llu}",
                          w->repeat, w->segment, (long long)w->idle_start_ns, (long long)w->start_ns,
                          (long long)w->end_ns, (unsigned long long)w->calls);
    }
    jp_textbuf_puts(b, "],\n\"segments\": [");
    for (size_t s = 0; s < pf->n_segments; s++) {
        const jp_raw_power_segment *seg = &pf->segments[s];
        jp_textbuf_puts(b, s ? ",\n" : "\n");
        jp_textbuf_printf(b, "{\"clock\": \"CLOCK_MONOTONIC\", \"t0_ns\": %lld, \"params\": [",
                          (long long)seg->t0_ns);
        for (size_t p = 0; p < seg->n_params; p++) {
            jp_textbuf_puts(b, p ? ", {\"name\": " : "{\"name\": ");
            jp_textbuf_json_string(b, seg->param_names[p]);
            jp_textbuf_puts(b, ", \"unit\": ");
            jp_textbuf_json_string(b, seg->param_units[p]);
            jp_textbuf_puts(b, "}");
        }
        jp_textbuf_puts(b, "],\n\"samples\": [");
        for (size_t r = 0; r < seg->n_samples; r++) {
            jp_textbuf_printf(b, "%s[%lld", r ? ",\n" : "\n", (long long)seg->t_ns[r]);
            for (size_t p = 0; p < seg->n_params; p++) {
                jp_textbuf_puts(b, ", ");
                jp_textbuf_json_double(b, seg->values[r * seg->n_params + p]);
            }
            jp_textbuf_puts(b, "]");
        }
        jp_textbuf_puts(b, "]}");
    }
    jp_textbuf_puts(b, "]}\n");
}

/* ---- journal ---- */

static bool journal_has(const jp_raw *raw, jp_raw_kind kind, const char *layer, const char *file)
{
    for (size_t i = 0; i < raw->n_jr; i++) {
        const journal_entry *e = &raw->jr[i];
        if (e->kind == kind && strcmp(e->layer, layer) == 0 && strcmp(e->file, file) == 0)
            return true;
    }
    return false;
}

static jp_status journal_remember(jp_raw *raw, jp_raw_kind kind, const char *layer,
                                  const char *file, jp_error *err)
{
    if (journal_has(raw, kind, layer, file))
        return JP_OK;
    if (!grow((void **)&raw->jr, &raw->cap_jr, raw->n_jr + 1, sizeof *raw->jr))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    journal_entry *e = &raw->jr[raw->n_jr];
    e->kind = kind;
    e->layer = xstrdup(layer);
    e->file = xstrdup(file);
    if (!e->layer || !e->file) {
        free(e->layer);
        free(e->file);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    raw->n_jr++;
    return JP_OK;
}

/*
 * Loads the journal's valid prefix: whole lines (ending in '\n') that parse
 * as {"v":1,"image":..,"kind":..,"layer":..,"file":..}.  Reading stops at the
 * first line that does not (a write torn by a kill or a power cut); the next
 * append truncates the file there.  A whole line longer than
 * JP_LINE_MAX_BYTES is an error naming it (a torn last line, without its
 * '\n', is only cut and dropped: a power cut may leave a tail of zeros).
 */
static jp_status journal_load(jp_raw *raw, jp_error *err)
{
    /* A missing journal (a run killed before its first layer) is an empty
     * one: *err is left untouched (issue 14: profile judged the run by
     * err->status and failed a --resume that had finished). */
    FILE *f = fopen(raw->path_journal, "rb");
    if (!f && errno == ENOENT) {
        raw->journal_valid_bytes = 0;
        return JP_OK;
    }
    if (!f)
        return jp_error_set(err, JP_ERR_IO, "cannot open journal '%s': %s", raw->path_journal,
                            strerror(errno));
    /* A journal line is short (names and paths): a line past
     * JP_LINE_MAX_BYTES is cut there and never held whole. */
    jp_line_reader rd;
    jp_status st = jp_line_reader_init(&rd, f, JP_LINE_MAX_BYTES, err);
    if (st != JP_OK) {
        fclose(f);
        return st;
    }
    uint64_t valid = 0;
    int got;
    while ((got = jp_line_reader_next(&rd)) > 0 && rd.ended_by_newline) {
        if (rd.cut_bytes) {
            st = jp_error_set(err, JP_ERR_FORMAT,
                              "journal '%s': line %zu is longer than %d bytes (cut at byte %llu): "
                              "jplprof writes no such line; the journal is damaged: delete it "
                              "and profile without --resume",
                              raw->path_journal, rd.line_no, JP_LINE_MAX_BYTES,
                              (unsigned long long)(rd.offset + rd.len));
            break;
        }
        cJSON *o = cJSON_Parse(rd.buf);
        const cJSON *v = get_member(o, "v"), *img = get_member(o, "image"),
                    *kind = get_member(o, "kind"), *layer = get_member(o, "layer"),
                    *file = get_member(o, "file");
        bool ok = cJSON_IsObject(o) && cJSON_IsNumber(v) && v->valuedouble == JOURNAL_VERSION &&
                  cJSON_IsString(img) && cJSON_IsString(kind) && cJSON_IsString(layer) &&
                  cJSON_IsString(file) && layer->valuestring[0] &&
                  !jp_json_find_duplicate_key(o, NULL, 0);
        jp_raw_kind k = JP_RAW_KIND_COUNT;
        if (ok) {
            if (strcmp(kind->valuestring, "latency") == 0)
                k = JP_RAW_LATENCY;
            else if (strcmp(kind->valuestring, "power") == 0)
                k = JP_RAW_POWER;
            else
                ok = false;
        }
        if (ok && strcmp(img->valuestring, raw->image) != 0)
            st = jp_error_set(err, JP_ERR_ARG,
                              "%s: images '%s' and '%s' both have the file-name stem '%s'; "
                              "rename one (raw files are named by the stem)",
                              raw->path_journal, img->valuestring, raw->image, raw->stem);
        else if (ok)
            st = journal_remember(raw, k, layer->valuestring, file->valuestring, err);
        cJSON_Delete(o);
        if (!ok || st != JP_OK)
            break;
        valid = rd.next_offset;
    }
    if (st == JP_OK && got < 0)
        st = jp_error_set(err, errno == ENOMEM ? JP_ERR_NOMEM : JP_ERR_IO,
                          "cannot read journal '%s': %s", raw->path_journal, strerror(errno));
    jp_line_reader_free(&rd);
    fclose(f);
    if (st == JP_OK)
        raw->journal_valid_bytes = (off_t)valid;
    return st;
}

static jp_status journal_append(jp_raw *raw, jp_raw_kind kind, const char *layer, jp_error *err)
{
    const char *file = raw->base[kind];
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_printf(&b, "{\"v\": %d, \"image\": ", JOURNAL_VERSION);
    jp_textbuf_json_string(&b, raw->image);
    jp_textbuf_printf(&b, ", \"kind\": \"%s\", \"layer\": ", jp_raw_kind_name(kind));
    jp_textbuf_json_string(&b, layer);
    jp_textbuf_puts(&b, ", \"file\": ");
    jp_textbuf_json_string(&b, file);
    jp_textbuf_puts(&b, "}\n");
    if (!jp_textbuf_ok(&b)) {
        jp_textbuf_free(&b);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }

    jp_status st = JP_OK;
    if (raw->journal_fd < 0) {
        bool existed = jp_path_exists(raw->path_journal);
        int fd = open(raw->path_journal, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            st = jp_error_set(err, JP_ERR_IO, "cannot open journal '%s': %s", raw->path_journal,
                              strerror(errno));
            goto out;
        }
        struct stat sb;
        if (fstat(fd, &sb) == 0 && sb.st_size != raw->journal_valid_bytes &&
            (ftruncate(fd, raw->journal_valid_bytes) != 0 || fsync(fd) != 0)) {
            st = jp_error_set(err, JP_ERR_IO, "cannot truncate the torn end of journal '%s': %s",
                              raw->path_journal, strerror(errno));
            close(fd);
            goto out;
        }
        if (!existed && (st = jp_fsync_dir(raw->dir_journal, err)) != JP_OK) {
            close(fd);
            goto out;
        }
        raw->journal_fd = fd;
    }
    size_t done = 0;
    while (done < b.len) {
        ssize_t w = pwrite(raw->journal_fd, b.data + done, b.len - done,
                           raw->journal_valid_bytes + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = jp_error_set(err, JP_ERR_IO, "cannot write journal '%s': %s", raw->path_journal,
                              w < 0 ? strerror(errno) : "short write");
            /* drop what was written of this line: the prefix stays valid */
            if (ftruncate(raw->journal_fd, raw->journal_valid_bytes) != 0) {
                /* a torn line is ignored on load anyway */
            }
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(raw->journal_fd) != 0) {
        st = jp_error_set(err, JP_ERR_IO, "cannot sync journal '%s': %s", raw->path_journal,
                          strerror(errno));
        goto out;
    }
    raw->journal_valid_bytes += (off_t)b.len;
    st = journal_remember(raw, kind, layer, file, err);
out:
    jp_textbuf_free(&b);
    return st;
}

/* ---- handle ---- */

void jp_raw_close(jp_raw *raw)
{
    if (!raw)
        return;
    if (raw->journal_fd >= 0)
        close(raw->journal_fd);
    free(raw->out_dir);
    free(raw->network);
    free(raw->image);
    free(raw->stem);
    for (int k = 0; k < JP_RAW_KIND_COUNT; k++)
        free(raw->path[k]);
    free(raw->path_power_raw);
    free(raw->path_journal);
    free(raw->dir_journal);
    for (size_t i = 0; i < raw->n_lat; i++) {
        free(raw->lat[i].layer);
        free(raw->lat[i].samples_s);
    }
    free(raw->lat);
    jp_raw_power_file_free(&raw->pf);
    free(raw->window_pending);
    for (size_t i = 0; i < raw->n_jr; i++) {
        free(raw->jr[i].layer);
        free(raw->jr[i].file);
    }
    free(raw->jr);
    free(raw);
}

static jp_status latency_loaded(const char *path, size_t line_no, const char *layer_key,
                                const cJSON *value, void *ctx, jp_error *err)
{
    jp_raw *raw = ctx;
    if (!cJSON_IsArray(value) || !value->child)
        return jp_error_set(err, JP_ERR_FORMAT, "%s:%zu: layer '%s': expected a non-empty array "
                            "of seconds", path, line_no, layer_key);
    size_t n = (size_t)cJSON_GetArraySize(value);
    if (!grow((void **)&raw->lat, &raw->cap_lat, raw->n_lat + 1, sizeof *raw->lat))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    lat_entry *e = &raw->lat[raw->n_lat];
    e->layer = xstrdup(layer_key);
    e->samples_s = malloc(n * sizeof *e->samples_s);
    e->n = n;
    e->pending = false;
    if (!e->layer || !e->samples_s) {
        free(e->layer);
        free(e->samples_s);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    size_t i = 0;
    for (const cJSON *c = value->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c)) {
            free(e->layer);
            free(e->samples_s);
            return jp_error_set(err, JP_ERR_FORMAT, "%s:%zu: layer '%s': sample %zu is not a "
                                "number", path, line_no, layer_key, i);
        }
        e->samples_s[i] = c->valuedouble;
    }
    raw->n_lat++;
    return JP_OK;
}

static bool same_setting(double a, double b) { return jp_raw_seconds_to_ns(a) == jp_raw_seconds_to_ns(b); }

/* Adds this run's segment (empty) with the options' parameters. */
static jp_status power_new_segment(jp_raw *raw, const jp_raw_options *opt, jp_error *err)
{
    jp_raw_power_file *pf = &raw->pf;
    jp_raw_power_segment *segs = realloc(pf->segments, (pf->n_segments + 1) * sizeof *segs);
    if (!segs)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    pf->segments = segs;
    jp_raw_power_segment *seg = &segs[pf->n_segments];
    memset(seg, 0, sizeof *seg);
    pf->n_segments++;
    raw->current_segment = pf->n_segments - 1;
    seg->t0_ns = opt->profile_start_ns;
    seg->param_names = calloc(opt->n_params, sizeof *seg->param_names);
    seg->param_units = calloc(opt->n_params, sizeof *seg->param_units);
    if (!seg->param_names || !seg->param_units)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    seg->n_params = opt->n_params;
    for (size_t p = 0; p < opt->n_params; p++) {
        seg->param_names[p] = xstrdup(opt->params[p].name);
        seg->param_units[p] = xstrdup(opt->params[p].unit);
        if (!seg->param_names[p] || !seg->param_units[p])
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    return JP_OK;
}

static jp_status check_options(const jp_raw_options *opt, jp_error *err)
{
    if (!opt->out_dir || !*opt->out_dir)
        return jp_error_set(err, JP_ERR_ARG, "--out: empty directory name");
    if (opt->mode < 0)
        return jp_error_set(err, JP_ERR_ARG, "--mode: %d, expected an integer >= 0", opt->mode);
    if (!jp_raw_device_dir(opt->device))
        return jp_error_set(err, JP_ERR_ARG, "--device: '%s', expected cpu or cuda",
                            opt->device ? opt->device : "(null)");
    if (!opt->network || !*opt->network || strchr(opt->network, '/'))
        return jp_error_set(err, JP_ERR_ARG, "network name '%s': expected a non-empty name "
                            "without '/'", opt->network ? opt->network : "(null)");
    if (!opt->eval_latency && !opt->eval_tgr)
        return jp_error_set(err, JP_ERR_ARG, "raw data: neither latency nor power is enabled");
    if (opt->eval_latency && opt->lt_smpl_count < 1)
        return jp_error_set(err, JP_ERR_ARG, "--lt_smpl_count: %d, expected >= 1",
                            opt->lt_smpl_count);
    if (opt->eval_tgr) {
        if (!(opt->tgr_smpl_duration_s > 0) || !isfinite(opt->tgr_smpl_duration_s))
            return jp_error_set(err, JP_ERR_ARG, "--tgr_smpl_duration: %g, expected > 0",
                                opt->tgr_smpl_duration_s);
        if (!(opt->tgr_smpl_boundary_s >= 0) || !isfinite(opt->tgr_smpl_boundary_s))
            return jp_error_set(err, JP_ERR_ARG, "--tgr_smpl_boundary: %g, expected >= 0",
                                opt->tgr_smpl_boundary_s);
        if (!(opt->cooldown_s >= 0) || !isfinite(opt->cooldown_s))
            return jp_error_set(err, JP_ERR_ARG, "--cooldown: %g, expected >= 0", opt->cooldown_s);
        if (!opt->params || opt->n_params == 0)
            return jp_error_set(err, JP_ERR_ARG, "power: no sampled parameter");
        bool has_rail = false;
        for (size_t p = 0; p < opt->n_params; p++) {
            if (!opt->params[p].name || !*opt->params[p].name)
                return jp_error_set(err, JP_ERR_ARG, "power: parameter %zu has no name", p);
            for (size_t q = 0; q < p; q++)
                if (strcmp(opt->params[q].name, opt->params[p].name) == 0)
                    return jp_error_set(err, JP_ERR_ARG, "power: parameter '%s' listed twice",
                                        opt->params[p].name);
            if (opt->device_rail && strcmp(opt->params[p].name, opt->device_rail) == 0)
                has_rail = true;
        }
        if (!opt->device_rail || !*opt->device_rail)
            return jp_error_set(err, JP_ERR_ARG, "power: no device rail given");
        if (!has_rail) {
            char names[512] = "";
            size_t used = 0;
            for (size_t p = 0; p < opt->n_params && used < sizeof names; p++) {
                int w = snprintf(names + used, sizeof names - used, "%s%s", p ? ", " : "",
                                 opt->params[p].name);
                if (w < 0)
                    break;
                used += (size_t)w;
            }
            return jp_error_set(err, JP_ERR_ARG,
                                "--tgr_params: the device's rail %s is not among the sampled "
                                "parameters (%s); add it",
                                opt->device_rail, names);
        }
    }
    return JP_OK;
}

jp_status jp_raw_open(jp_raw **out, const jp_raw_options *opt, jp_error *err)
{
    *out = NULL;
    jp_status st = check_options(opt, err);
    if (st != JP_OK)
        return st;
    char stem[NAME_MAX];
    if ((st = jp_raw_image_stem(opt->image, stem, sizeof stem - 32, err)) != JP_OK)
        return st;

    jp_raw *raw = calloc(1, sizeof *raw);
    if (!raw)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    raw->journal_fd = -1;
    raw->out_dir = xstrdup(opt->out_dir);
    raw->mode = opt->mode;
    raw->device_dir = jp_raw_device_dir(opt->device);
    raw->network = xstrdup(opt->network);
    raw->image = xstrdup(opt->image);
    raw->stem = xstrdup(stem);
    raw->resume = opt->resume;
    raw->enabled[JP_RAW_LATENCY] = opt->eval_latency;
    raw->enabled[JP_RAW_POWER] = opt->eval_tgr;
    raw->lt_smpl_count = opt->lt_smpl_count;
    raw->profile_start_ns = opt->profile_start_ns;
    if (!raw->out_dir || !raw->network || !raw->image || !raw->stem) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }

    const char *mode_fmt = "%s/Mode%d/%s/%s/%s";
    if (opt->eval_latency) {
        char *dir = jp_strprintf(mode_fmt, raw->out_dir, raw->mode, raw->device_dir, "latency",
                              raw->network);
        raw->path[JP_RAW_LATENCY] = dir ? jp_strprintf("%s/%s_sc_%d.json", dir, stem,
                                                    opt->lt_smpl_count) : NULL;
        if (!raw->path[JP_RAW_LATENCY]) {
            free(dir);
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        st = jp_mkdir_p(dir, err);
        free(dir);
        if (st != JP_OK)
            goto fail;
    }
    if (opt->eval_tgr) {
        char b[40];
        long f = jp_raw_samples_per_s(opt->tgr_interval_ms);
        if (f < 1) {
            st = jp_error_set(err, JP_ERR_ARG, "--tgr_interval %g ms: the seed's file name needs at "
                              "least one sample per second (at most 1000 ms)", opt->tgr_interval_ms);
            goto fail;
        }
        jp_raw_format_setting(opt->tgr_smpl_boundary_s, b, sizeof b);
        raw->boundary_ns = jp_raw_seconds_to_ns(opt->tgr_smpl_boundary_s);
        char *dir = jp_strprintf(mode_fmt, raw->out_dir, raw->mode, raw->device_dir, "power",
                              raw->network);
        raw->path[JP_RAW_POWER] = dir ? jp_strprintf("%s/%s_sf_%ld_sb_%s.json", dir, stem, f, b)
                                      : NULL;
        raw->path_power_raw = dir ? jp_strprintf("%s/%s_power_raw.json", dir, stem) : NULL;
        if (!raw->path[JP_RAW_POWER] || !raw->path_power_raw) {
            free(dir);
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        st = jp_mkdir_p(dir, err);
        free(dir);
        if (st != JP_OK)
            goto fail;
    }
    for (int k = 0; k < JP_RAW_KIND_COUNT; k++)
        if (raw->path[k])
            raw->base[k] = strrchr(raw->path[k], '/') + 1;
    raw->dir_journal = jp_strprintf("%s/.jplprof/journal/Mode%d/%s/%s", raw->out_dir, raw->mode,
                                 raw->device_dir, raw->network);
    raw->path_journal = raw->dir_journal ? jp_strprintf("%s/%s.jsonl", raw->dir_journal, stem)
                                         : NULL;
    if (!raw->path_journal) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = jp_mkdir_p(raw->dir_journal, err)) != JP_OK)
        goto fail;
    for (int k = 0; k < JP_RAW_KIND_COUNT; k++)
        if (raw->path[k])
            jp_file_remove_stale_temps(raw->path[k]);
    if (raw->path_power_raw)
        jp_file_remove_stale_temps(raw->path_power_raw);

    if (opt->resume) {
        if ((st = journal_load(raw, err)) != JP_OK)
            goto fail;
        if (opt->eval_latency && jp_path_exists(raw->path[JP_RAW_LATENCY])) {
            st = jp_raw_read_seed_file(raw->path[JP_RAW_LATENCY], latency_loaded, raw, err);
            if (st != JP_OK) {
                jp_error_prefix(err, "--resume: ");
                goto fail;
            }
        }
        if (opt->eval_tgr && jp_path_exists(raw->path_power_raw)) {
            st = jp_raw_power_file_load(raw->path_power_raw, &raw->pf, err);
            if (st != JP_OK) {
                jp_error_prefix(err, "--resume: ");
                goto fail;
            }
            const jp_raw_power_file *pf = &raw->pf;
            if (strcmp(pf->image, raw->image) != 0) {
                st = jp_error_set(err, JP_ERR_ARG,
                                  "%s: images '%s' and '%s' both have the file-name stem '%s'; "
                                  "rename one (raw files are named by the stem)",
                                  raw->path_power_raw, pf->image, raw->image, stem);
                goto fail;
            }
            if (pf->version != POWER_RAW_VERSION) {
                st = jp_error_set(err, JP_ERR_ARG,
                                  "--resume: %s was written by an older jplprof (power_raw version "
                                  "%d: each layer ran --tgr_smpl_duration s, not the seed's duration "
                                  "+ 2 x boundary); its windows cannot be continued with this "
                                  "protocol: use another --out, or run without --resume",
                                  raw->path_power_raw, pf->version);
                goto fail;
            }
            if (pf->repeats != (opt->repeats > 1 ? opt->repeats : 1)) {
                st = jp_error_set(err, JP_ERR_ARG,
                                  "--resume: %s was recorded with --repeats %d; this run asks %d: "
                                  "resume with the same --repeats, or use another --out",
                                  raw->path_power_raw, pf->repeats, opt->repeats > 1 ? opt->repeats : 1);
                goto fail;
            }
            if (!same_setting(pf->tgr_smpl_duration_s, opt->tgr_smpl_duration_s) ||
                !same_setting(pf->tgr_smpl_boundary_s, opt->tgr_smpl_boundary_s) ||
                strcmp(pf->device_rail, opt->device_rail) != 0) {
                st = jp_error_set(err, JP_ERR_ARG,
                                  "--resume: %s was recorded with --tgr_smpl_duration %g "
                                  "--tgr_smpl_boundary %g and device rail %s; this run asks %g, "
                                  "%g and %s: resume with the same settings, or use another --out",
                                  raw->path_power_raw, pf->tgr_smpl_duration_s,
                                  pf->tgr_smpl_boundary_s, pf->device_rail,
                                  opt->tgr_smpl_duration_s, opt->tgr_smpl_boundary_s,
                                  opt->device_rail);
                goto fail;
            }
            raw->cap_windows = pf->n_windows;
            raw->window_pending = calloc(pf->n_windows ? pf->n_windows : 1, sizeof(bool));
            if (!raw->window_pending) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
    } else if (jp_path_exists(raw->path_journal)) {
        if (unlink(raw->path_journal) != 0) {
            st = jp_error_set(err, JP_ERR_IO, "cannot remove old journal '%s': %s",
                              raw->path_journal, strerror(errno));
            goto fail;
        }
        if ((st = jp_fsync_dir(raw->dir_journal, err)) != JP_OK)
            goto fail;
    }

    if (opt->eval_tgr) {
        jp_raw_power_file *pf = &raw->pf;
        if (!pf->device) { /* a fresh file: the header comes from the options */
            pf->mode = opt->mode;
            pf->device = xstrdup(raw->device_dir);
            pf->network = xstrdup(opt->network);
            pf->image = xstrdup(opt->image);
            if (!pf->device || !pf->network || !pf->image) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        /* power source and interval describe the latest run */
        free(pf->power_source);
        free(pf->device_rail);
        pf->power_source = xstrdup(opt->power_source ? opt->power_source : "");
        pf->device_rail = xstrdup(opt->device_rail);
        pf->tgr_interval_ms = opt->tgr_interval_ms;
        pf->tgr_smpl_duration_s = opt->tgr_smpl_duration_s;
        pf->tgr_smpl_boundary_s = opt->tgr_smpl_boundary_s;
        pf->cooldown_s = opt->cooldown_s;
        pf->repeats = opt->repeats > 1 ? opt->repeats : 1;
        pf->version = POWER_RAW_VERSION;
        if (!pf->power_source || !pf->device_rail) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = power_new_segment(raw, opt, err)) != JP_OK)
            goto fail;
    }
    *out = raw;
    return JP_OK;
fail:
    jp_raw_close(raw);
    return st;
}

static const lat_entry *find_lat(const jp_raw *raw, const char *layer)
{
    for (size_t i = 0; i < raw->n_lat; i++)
        if (strcmp(raw->lat[i].layer, layer) == 0)
            return &raw->lat[i];
    return NULL;
}

static ssize_t find_window(const jp_raw *raw, const char *layer, int repeat)
{
    for (size_t i = 0; i < raw->pf.n_windows; i++)
        if (strcmp(raw->pf.windows[i].layer, layer) == 0 && raw->pf.windows[i].repeat == repeat)
            return (ssize_t)i;
    return -1;
}

/* The layer has all its --repeats windows. */
static bool windows_complete(const jp_raw *raw, const char *layer)
{
    for (int r = 0; r < raw->pf.repeats; r++)
        if (find_window(raw, layer, r) < 0)
            return false;
    return true;
}

bool jp_raw_is_done(const jp_raw *raw, jp_raw_kind kind, const char *layer_key)
{
    if (!raw || (unsigned)kind >= JP_RAW_KIND_COUNT || !raw->enabled[kind] || !layer_key)
        return false;
    if (!journal_has(raw, kind, layer_key, raw->base[kind]))
        return false;
    if (kind == JP_RAW_LATENCY)
        return find_lat(raw, layer_key) != NULL;
    return windows_complete(raw, layer_key);
}

jp_status jp_raw_add_latency(jp_raw *raw, const char *layer_key, const double *samples_s, size_t n,
                             jp_error *err)
{
    if (!raw->enabled[JP_RAW_LATENCY])
        return jp_error_set(err, JP_ERR_ARG, "raw data: latency was not enabled at open");
    if (!layer_key || !*layer_key)
        return jp_error_set(err, JP_ERR_ARG, "raw data: empty layer key");
    if (n == 0)
        return jp_error_set(err, JP_ERR_ARG, "raw data: layer '%s': no latency sample", layer_key);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(samples_s[i]) || samples_s[i] < 0)
            return jp_error_set(err, JP_ERR_ARG, "raw data: layer '%s': latency sample %zu is "
                                "%g s, expected a finite value >= 0", layer_key, i, samples_s[i]);
    double *copy = malloc(n * sizeof *copy);
    if (!copy)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    memcpy(copy, samples_s, n * sizeof *copy);
    lat_entry *e = (lat_entry *)find_lat(raw, layer_key);
    if (!e) {
        if (!grow((void **)&raw->lat, &raw->cap_lat, raw->n_lat + 1, sizeof *raw->lat)) {
            free(copy);
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        }
        e = &raw->lat[raw->n_lat];
        e->layer = xstrdup(layer_key);
        if (!e->layer) {
            free(copy);
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        }
        e->samples_s = NULL;
        raw->n_lat++;
    }
    free(e->samples_s);
    e->samples_s = copy;
    e->n = n;
    e->pending = true;
    return JP_OK;
}

/* The current segment, its t0 fixed by the first timestamp when not given. */
static jp_raw_power_segment *current_segment(jp_raw *raw, int64_t first_t_ns)
{
    jp_raw_power_segment *seg = &raw->pf.segments[raw->current_segment];
    if (raw->profile_start_ns == 0) {
        raw->profile_start_ns = first_t_ns;
        seg->t0_ns = first_t_ns;
    }
    return seg;
}

jp_status jp_raw_add_power_samples(jp_raw *raw, const int64_t *t_ns, const double *values_by_param,
                                   size_t n, jp_error *err)
{
    if (!raw->enabled[JP_RAW_POWER])
        return jp_error_set(err, JP_ERR_ARG, "raw data: power was not enabled at open");
    if (n == 0)
        return JP_OK;
    jp_raw_power_segment *seg = current_segment(raw, t_ns[0]);
    int64_t prev = seg->n_samples ? seg->t_ns[seg->n_samples - 1] + seg->t0_ns : INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (t_ns[i] < prev)
            return jp_error_set(err, JP_ERR_ARG, "raw data: power sample at %lld ns comes after "
                                "one at %lld ns: timestamps must not decrease",
                                (long long)t_ns[i], (long long)prev);
        prev = t_ns[i];
    }
    size_t need = seg->n_samples + n;
    size_t cap = seg->cap_samples;
    if (need > cap) {
        size_t nc = cap ? cap : 256;
        while (nc < need)
            nc *= 2;
        if (nc > SIZE_MAX / sizeof(double) / (seg->n_params + 1))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        int64_t *nt = realloc(seg->t_ns, nc * sizeof *nt);
        if (!nt)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        seg->t_ns = nt;
        double *nv = realloc(seg->values, nc * seg->n_params * sizeof *nv);
        if (!nv)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        seg->values = nv;
        seg->cap_samples = nc;
    }
    for (size_t i = 0; i < n; i++)
        seg->t_ns[seg->n_samples + i] = t_ns[i] - seg->t0_ns;
    memcpy(seg->values + seg->n_samples * seg->n_params, values_by_param,
           n * seg->n_params * sizeof *seg->values);
    seg->n_samples = need;
    return JP_OK;
}

jp_status jp_raw_add_power_window(jp_raw *raw, const char *layer_key, int repeat, int64_t idle_start_ns,
                                  int64_t start_ns, int64_t end_ns, uint64_t calls, jp_error *err)
{
    if (!raw->enabled[JP_RAW_POWER])
        return jp_error_set(err, JP_ERR_ARG, "raw data: power was not enabled at open");
    if (!layer_key || !*layer_key)
        return jp_error_set(err, JP_ERR_ARG, "raw data: empty layer key");
    if (end_ns < start_ns)
        return jp_error_set(err, JP_ERR_ARG, "raw data: layer '%s': window ends (%lld ns) before "
                            "it starts (%lld ns)", layer_key, (long long)end_ns,
                            (long long)start_ns);
    if (idle_start_ns > start_ns)
        return jp_error_set(err, JP_ERR_ARG, "raw data: layer '%s': cooldown starts after the "
                            "window", layer_key);
    jp_raw_power_segment *seg = current_segment(raw, idle_start_ns);
    jp_raw_power_file *pf = &raw->pf;
    if (repeat < 0 || repeat >= raw->pf.repeats)
        return jp_error_set(err, JP_ERR_ARG, "raw data: layer '%s': repeat %d of %d", layer_key,
                            repeat, raw->pf.repeats);
    ssize_t at = find_window(raw, layer_key, repeat);
    char *layer = NULL;
    if (at < 0) {
        layer = xstrdup(layer_key);
        if (!layer)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        size_t need = pf->n_windows + 1;
        if (need > raw->cap_windows) {
            size_t nc = raw->cap_windows ? raw->cap_windows * 2 : 16;
            jp_raw_power_window *nw = realloc(pf->windows, nc * sizeof *nw);
            if (!nw) {
                free(layer);
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            }
            pf->windows = nw;
            bool *np = realloc(raw->window_pending, nc * sizeof *np);
            if (!np) {
                free(layer);
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            }
            raw->window_pending = np;
            raw->cap_windows = nc;
        }
        at = (ssize_t)pf->n_windows++;
        pf->windows[at].layer = layer;
    }
    jp_raw_power_window *w = &pf->windows[at];
    w->segment = raw->current_segment;
    w->repeat = repeat;
    w->idle_start_ns = idle_start_ns - seg->t0_ns;
    w->start_ns = start_ns - seg->t0_ns;
    w->end_ns = end_ns - seg->t0_ns;
    w->calls = calls;
    raw->window_pending[at] = true;
    return JP_OK;
}

/* A seed-format file that its readers would refuse (a line past
 * JP_RAW_SEED_LINE_MAX_BYTES) is never written: the error names the line. */
static jp_status check_seed_lines(const char *path, const jp_textbuf *b, jp_error *err)
{
    size_t line_no = 0;
    for (size_t pos = 0; pos < b->len;) {
        const char *nl = memchr(b->data + pos, '\n', b->len - pos);
        size_t n = nl ? (size_t)(nl - (b->data + pos)) : b->len - pos;
        line_no++;
        if (n > JP_RAW_SEED_LINE_MAX_BYTES)
            return jp_error_set(err, JP_ERR_ARG,
                                "cannot write '%s': line %zu (a layer's samples) would be %zu "
                                "bytes, more than the %d that jplprof process reads in a line: "
                                "take fewer samples (--lt_smpl_count, --tgr_smpl_duration)",
                                path, line_no, n, JP_RAW_SEED_LINE_MAX_BYTES);
        pos += n + 1;
    }
    return JP_OK;
}

static jp_status write_text(const char *path, void (*fill)(const jp_raw *, jp_textbuf *),
                            bool seed_format, const jp_raw *raw, jp_error *err)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    fill(raw, &b);
    jp_status st = !jp_textbuf_ok(&b)
                       ? jp_error_set(err, JP_ERR_NOMEM, "cannot write '%s': out of memory", path)
                   : seed_format ? check_seed_lines(path, &b, err)
                                 : JP_OK;
    if (st == JP_OK)
        st = jp_file_write_atomic(path, b.data ? b.data : "", b.len, err);
    jp_textbuf_free(&b);
    return st;
}

jp_status jp_raw_flush(jp_raw *raw, jp_error *err)
{
    jp_status st;
    if (raw->enabled[JP_RAW_LATENCY] && raw->n_lat > 0 &&
        (st = write_text(raw->path[JP_RAW_LATENCY], text_latency, true, raw, err)) != JP_OK)
        return st;
    if (raw->enabled[JP_RAW_POWER]) {
        const jp_raw_power_segment *seg = &raw->pf.segments[raw->current_segment];
        if (raw->pf.n_windows > 0 || seg->n_samples > 0) {
            if ((st = write_text(raw->path_power_raw, text_power_raw, false, raw, err)) != JP_OK ||
                (st = write_text(raw->path[JP_RAW_POWER], text_power_seed, true, raw, err)) != JP_OK)
                return st;
        }
    }
    /* The data of every pending layer is on disk: now journal them. */
    for (size_t i = 0; i < raw->n_lat; i++) {
        if (!raw->lat[i].pending)
            continue;
        if ((st = journal_append(raw, JP_RAW_LATENCY, raw->lat[i].layer, err)) != JP_OK)
            return st;
        raw->lat[i].pending = false;
    }
    for (size_t i = 0; raw->enabled[JP_RAW_POWER] && i < raw->pf.n_windows; i++) {
        if (!raw->window_pending[i])
            continue;
        /* a layer is complete when its last repeat is in */
        if (windows_complete(raw, raw->pf.windows[i].layer) &&
            !journal_has(raw, JP_RAW_POWER, raw->pf.windows[i].layer, raw->base[JP_RAW_POWER]) &&
            (st = journal_append(raw, JP_RAW_POWER, raw->pf.windows[i].layer, err)) != JP_OK)
            return st;
        raw->window_pending[i] = false;
    }
    return JP_OK;
}

const char *jp_raw_path(const jp_raw *raw, jp_raw_kind kind)
{
    if (!raw || (unsigned)kind >= JP_RAW_KIND_COUNT)
        return NULL;
    return raw->path[kind];
}

const char *jp_raw_power_raw_path(const jp_raw *raw) { return raw ? raw->path_power_raw : NULL; }

const char *jp_raw_journal_path(const jp_raw *raw) { return raw ? raw->path_journal : NULL; }
