/*
 * process.c: `jplprof process` (see process.h; file formats in
 * profiler/DATASET.md).
 *
 * One mode at a time: every sample of every raw file under
 * <dataset>/Mode<M>/<cpu|gpu>/<latency|power>/<network>/ is gathered into
 * per-(network, device, layer[, parameter]) arrays, in a fixed order (images
 * by stem, then files by name, then the file's own order), and the means and
 * spreads are computed from those arrays.  The fixed order makes the result
 * the same, to the last bit, whether a sample came from a seed-format file or
 * from a jplprof power_raw file.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "process.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fileio.h"
#include "rawdata.h"

/* The seed tool's rails on the TX2, for raw data with no record of its own. */
#define SEED_RAIL_CPU "VDD_SYS_CPU"
#define SEED_RAIL_GPU "VDD_SYS_GPU"

static const char *const device_dirs[2] = {"cpu", "gpu"};

/* ---- growable arrays and string lists ---- */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static bool dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        double *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv)
            return false;
        d->v = nv;
        d->cap = nc;
    }
    d->v[d->n++] = x;
    return true;
}

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = nc;
    }
    char *d = xstrdup(s);
    if (!d)
        return false;
    l->v[l->n++] = d;
    return true;
}

static bool strlist_has(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort(strlist *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
}

/* Splits a comma-separated list, skipping empty items. */
static bool strlist_split(strlist *l, const char *csv)
{
    const char *p = csv;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n > 0) {
            char *item = malloc(n + 1);
            if (!item)
                return false;
            memcpy(item, p, n);
            item[n] = '\0';
            bool ok = strlist_push(l, item);
            free(item);
            if (!ok)
                return false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

/* Lists dir's entries (sorted; only directories when dirs_only).  A missing
 * dir gives an empty list. */
static jp_status list_dir(const char *dir, bool dirs_only, strlist *out, jp_error *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return JP_OK;
        return jp_error_set(err, JP_ERR_IO, "cannot read directory '%s': %s", dir,
                            strerror(errno));
    }
    struct dirent *de;
    jp_status st = JP_OK;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (dirs_only) {
            char *full = jp_strprintf("%s/%s", dir, de->d_name);
            bool is_dir = full && jp_is_dir(full);
            free(full);
            if (!is_dir)
                continue;
        }
        if (!strlist_push(out, de->d_name)) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    strlist_sort(out);
    return st;
}

/* ---- accumulators ---- */

typedef struct param_acc {
    char *name;
    dvec vals;
    char *non_numeric_at; /* "file:line" where a non-numeric value was met, or NULL */
} param_acc;

typedef struct layer_acc {
    char *layer;
    dvec latency_s;
    param_acc *params;
    size_t n_params, cap_params;
} layer_acc;

typedef struct layer_list {
    layer_acc *v;
    size_t n, cap;
} layer_list;

typedef struct dev_acc {
    bool present;
    layer_list latency, power;
    char *rail;      /* the device rail, from a power_raw file; NULL: the seed's */
    char *rail_file; /* the file that said so */
} dev_acc;

typedef struct net_acc {
    char *name;
    dev_acc dev[2];
} net_acc;

typedef struct mode_acc {
    net_acc *nets;
    size_t n, cap;
} mode_acc;

static void layers_free(layer_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        layer_acc *a = &l->v[i];
        free(a->layer);
        free(a->latency_s.v);
        for (size_t p = 0; p < a->n_params; p++) {
            free(a->params[p].name);
            free(a->params[p].vals.v);
            free(a->params[p].non_numeric_at);
        }
        free(a->params);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void mode_free(mode_acc *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->nets[i].name);
        for (int d = 0; d < 2; d++) {
            layers_free(&m->nets[i].dev[d].latency);
            layers_free(&m->nets[i].dev[d].power);
            free(m->nets[i].dev[d].rail);
            free(m->nets[i].dev[d].rail_file);
        }
    }
    free(m->nets);
    memset(m, 0, sizeof *m);
}

static net_acc *mode_net(mode_acc *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->nets[i].name, name) == 0)
            return &m->nets[i];
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        net_acc *nv = realloc(m->nets, nc * sizeof *nv);
        if (!nv)
            return NULL;
        m->nets = nv;
        m->cap = nc;
    }
    net_acc *n = &m->nets[m->n];
    memset(n, 0, sizeof *n);
    if (!(n->name = xstrdup(name)))
        return NULL;
    m->n++;
    return n;
}

static layer_acc *layer_get(layer_list *l, const char *layer)
{
    for (size_t i = l->n; i-- > 0;) /* the latest first: files come in layer order */
        if (strcmp(l->v[i].layer, layer) == 0)
            return &l->v[i];
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        layer_acc *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = nc;
    }
    layer_acc *a = &l->v[l->n];
    memset(a, 0, sizeof *a);
    if (!(a->layer = xstrdup(layer)))
        return NULL;
    l->n++;
    return a;
}

static param_acc *param_get(layer_acc *a, const char *name)
{
    for (size_t i = 0; i < a->n_params; i++)
        if (strcmp(a->params[i].name, name) == 0)
            return &a->params[i];
    if (a->n_params == a->cap_params) {
        size_t nc = a->cap_params ? a->cap_params * 2 : 8;
        param_acc *nv = realloc(a->params, nc * sizeof *nv);
        if (!nv)
            return NULL;
        a->params = nv;
        a->cap_params = nc;
    }
    param_acc *p = &a->params[a->n_params];
    memset(p, 0, sizeof *p);
    if (!(p->name = xstrdup(name)))
        return NULL;
    a->n_params++;
    return p;
}

/* ---- readers ---- */

static jp_status on_latency_line(const char *path, size_t line_no, const char *layer_key,
                                 const cJSON *value, void *ctx, jp_error *err)
{
    layer_list *layers = ctx;
    if (!cJSON_IsArray(value))
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s:%zu: layer '%s': expected an array of seconds", path, line_no,
                            layer_key);
    layer_acc *a = layer_get(layers, layer_key);
    if (!a)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *c = value->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c))
            return jp_error_set(err, JP_ERR_FORMAT,
                                "%s:%zu: layer '%s': sample %zu is not a number", path, line_no,
                                layer_key, i);
        if (!dvec_push(&a->latency_s, c->valuedouble))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    return JP_OK;
}

static jp_status on_power_line(const char *path, size_t line_no, const char *layer_key,
                               const cJSON *value, void *ctx, jp_error *err)
{
    layer_list *layers = ctx;
    if (!cJSON_IsObject(value))
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s:%zu: layer '%s': expected {\"<param>\": [values]}", path, line_no,
                            layer_key);
    layer_acc *a = layer_get(layers, layer_key);
    if (!a)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    for (const cJSON *p = value->child; p; p = p->next) {
        param_acc *pa = param_get(a, p->string);
        if (!pa)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        if (!cJSON_IsArray(p))
            return jp_error_set(err, JP_ERR_FORMAT,
                                "%s:%zu: layer '%s', parameter '%s': expected an array", path,
                                line_no, layer_key, p->string);
        for (const cJSON *c = p->child; c; c = c->next) {
            if (cJSON_IsNumber(c)) {
                if (!dvec_push(&pa->vals, c->valuedouble))
                    return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            } else if (!cJSON_IsNull(c) && !pa->non_numeric_at) {
                /* e.g. per-core lists: kept out of the means, an error only
                 * when this parameter is asked for by name */
                pa->non_numeric_at = jp_strprintf("%s:%zu", path, line_no);
                if (!pa->non_numeric_at)
                    return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            }
        }
    }
    return JP_OK;
}

static jp_status read_power_raw(const char *path, dev_acc *dev, double boundary_override_s,
                                jp_error *err)
{
    jp_raw_power_file pf;
    jp_status st = jp_raw_power_file_load(path, &pf, err);
    if (st != JP_OK)
        goto done;
    if (dev->rail && strcmp(dev->rail, pf.device_rail) != 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: device rail %s, but %s says %s", path,
                          pf.device_rail, dev->rail_file, dev->rail);
        goto done;
    }
    if (!dev->rail) {
        dev->rail = xstrdup(pf.device_rail);
        dev->rail_file = xstrdup(path);
        if (!dev->rail || !dev->rail_file) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    if (pf.n_windows == 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: layers: empty, no layer's window in the file "
                          "(profile with --resume to complete it, or remove it)", path);
        goto done;
    }
    double boundary_s = boundary_override_s >= 0 ? boundary_override_s : pf.tgr_smpl_boundary_s;
    int64_t boundary_ns = jp_raw_seconds_to_ns(boundary_s);
    for (size_t w = 0; w < pf.n_windows; w++) {
        const jp_raw_power_window *win = &pf.windows[w];
        const jp_raw_power_segment *seg = &pf.segments[win->segment];
        layer_acc *a = layer_get(&dev->power, win->layer);
        if (!a) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
        size_t first, last;
        jp_raw_window_range(seg, win->start_ns, win->end_ns, boundary_ns, &first, &last);
        for (size_t p = 0; p < seg->n_params; p++) {
            param_acc *pa = param_get(a, seg->param_names[p]);
            if (!pa) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (size_t r = first; r < last; r++) {
                double v = seg->values[r * seg->n_params + p];
                if (!isnan(v) && !dvec_push(&pa->vals, v)) {
                    st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                    goto done;
                }
            }
        }
    }
done:
    jp_raw_power_file_free(&pf);
    return st;
}

/* A seed-format file must give at least one layer: an empty one (a file
 * zeroed by a crash, a copy that failed) is an error, never a silent {}
 * (issue 14).  Counts the layers fn is called for. */
typedef struct seed_counter {
    jp_raw_seed_fn fn;
    void *ctx;
    size_t layers;
} seed_counter;

static jp_status count_layer(const char *path, size_t line_no, const char *layer_key,
                             const cJSON *value, void *ctx, jp_error *err)
{
    seed_counter *c = ctx;
    c->layers++;
    return c->fn(path, line_no, layer_key, value, c->ctx, err);
}

static jp_status read_seed_nonempty(const char *path, jp_raw_seed_fn fn, void *ctx,
                                    jp_error *err)
{
    seed_counter c = {fn, ctx, 0};
    jp_status st = jp_raw_read_seed_file(path, count_layer, &c, err);
    if (st == JP_OK && c.layers == 0)
        st = jp_error_set(err, JP_ERR_FORMAT,
                          "%s: no layer in the file (empty or blank lines only; expected one "
                          "{\"<layer>\": ...} object per line): remove it, or profile again",
                          path);
    return st;
}

/* "<stem>_sc_<digits>.json" -> stem length, else 0. */
static size_t match_latency_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, ".json") != 0)
        return 0;
    size_t end = n - 5, d = end;
    while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9')
        d--;
    if (d == end || d < 5 || strncmp(name + d - 4, "_sc_", 4) != 0)
        return 0;
    return d - 4;
}

static bool is_number_text(const char *s, size_t n)
{
    if (n == 0 || n >= 40)
        return false;
    char buf[40];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end = NULL;
    strtod(buf, &end);
    return end == buf + n;
}

/* "<stem>_sf_<num>_sb_<num>.json" -> stem length, else 0. */
static size_t match_power_seed_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, ".json") != 0)
        return 0;
    /* the last "_sb_" and the last "_sf_" before it */
    const char *sb = NULL, *sf = NULL;
    for (const char *p = name; (p = strstr(p, "_sb_")) != NULL; p++)
        sb = p;
    if (!sb)
        return 0;
    for (const char *p = name; (p = strstr(p, "_sf_")) != NULL && p < sb; p++)
        sf = p;
    if (!sf || sf == name)
        return 0;
    if (!is_number_text(sf + 4, (size_t)(sb - sf - 4)) ||
        !is_number_text(sb + 4, (size_t)(name + n - 5 - sb - 4)))
        return 0;
    return (size_t)(sf - name);
}

/* "<stem>_power_raw.json" -> stem length, else 0. */
static size_t match_power_raw_name(const char *name)
{
    const char *suffix = "_power_raw.json";
    size_t n = strlen(name), s = strlen(suffix);
    if (n <= s || strcmp(name + n - s, suffix) != 0)
        return 0;
    return n - s;
}

static bool stem_eq(const char *name, size_t len, const char *stem)
{
    return strlen(stem) == len && strncmp(name, stem, len) == 0;
}

static jp_status read_latency_dir(const char *dir, dev_acc *dev, jp_error *err)
{
    strlist files = {0};
    jp_status st = list_dir(dir, false, &files, err);
    for (size_t i = 0; st == JP_OK && i < files.n; i++) {
        if (!match_latency_name(files.v[i]))
            continue;
        char *path = jp_strprintf("%s/%s", dir, files.v[i]);
        if (!path) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            break;
        }
        st = read_seed_nonempty(path, on_latency_line, &dev->latency, err);
        free(path);
    }
    strlist_free(&files);
    return st;
}

typedef struct power_ctx {
    dev_acc *dev;
    double boundary_override_s;
} power_ctx;

static jp_status read_power_dir(const char *dir, const power_ctx *pc, jp_error *err)
{
    strlist files = {0}, stems = {0};
    jp_status st = list_dir(dir, false, &files, err);
    /* stems, sorted; each image read from its power_raw file when it has one */
    for (size_t i = 0; st == JP_OK && i < files.n; i++) {
        size_t len = match_power_raw_name(files.v[i]);
        if (!len)
            len = match_power_seed_name(files.v[i]);
        if (!len)
            continue;
        char *stem = malloc(len + 1);
        if (!stem) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(stem, files.v[i], len);
        stem[len] = '\0';
        if (!strlist_has(&stems, stem) && !strlist_push(&stems, stem))
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        free(stem);
    }
    strlist_sort(&stems);
    for (size_t s = 0; st == JP_OK && s < stems.n; s++) {
        const char *stem = stems.v[s];
        const char *raw_name = NULL;
        for (size_t i = 0; i < files.n && !raw_name; i++) {
            size_t len = match_power_raw_name(files.v[i]);
            if (len && stem_eq(files.v[i], len, stem))
                raw_name = files.v[i];
        }
        if (raw_name) {
            char *path = jp_strprintf("%s/%s", dir, raw_name);
            st = path ? read_power_raw(path, pc->dev, pc->boundary_override_s, err)
                      : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            free(path);
            continue;
        }
        for (size_t i = 0; st == JP_OK && i < files.n; i++) {
            size_t len = match_power_seed_name(files.v[i]);
            if (!len || !stem_eq(files.v[i], len, stem))
                continue;
            char *path = jp_strprintf("%s/%s", dir, files.v[i]);
            if (!path) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                break;
            }
            if (pc->boundary_override_s >= 0)
                st = jp_error_set(err, JP_ERR_ARG,
                                  "--tgr_smpl_boundary: %s is in the seed's format, which keeps "
                                  "only the samples of its own window and cannot be re-windowed",
                                  path);
            else
                st = read_seed_nonempty(path, on_power_line, &pc->dev->power, err);
            free(path);
        }
    }
    strlist_free(&stems);
    strlist_free(&files);
    return st;
}

/* ---- statistics and output ---- */

static double mean_of(const dvec *d)
{
    double sum = 0;
    for (size_t i = 0; i < d->n; i++)
        sum += d->v[i];
    return sum / (double)d->n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* {"median", "std" (sample, n-1; 0 for n < 2), "n"}; median/std null when n == 0. */
static cJSON *stats_of(const dvec *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (d->n == 0) {
        cJSON_AddNullToObject(o, "median");
        cJSON_AddNullToObject(o, "std");
        cJSON_AddNumberToObject(o, "n", 0);
        return o;
    }
    double *s = malloc(d->n * sizeof *s);
    if (!s) {
        cJSON_Delete(o);
        return NULL;
    }
    memcpy(s, d->v, d->n * sizeof *s);
    qsort(s, d->n, sizeof *s, cmp_double);
    double median = d->n % 2 ? s[d->n / 2] : (s[d->n / 2 - 1] + s[d->n / 2]) / 2;
    free(s);
    double mean = mean_of(d), ss = 0;
    for (size_t i = 0; i < d->n; i++)
        ss += (d->v[i] - mean) * (d->v[i] - mean);
    double std = d->n > 1 ? sqrt(ss / (double)(d->n - 1)) : 0;
    cJSON_AddNumberToObject(o, "median", median);
    cJSON_AddNumberToObject(o, "std", std);
    cJSON_AddNumberToObject(o, "n", (double)d->n);
    return o;
}

static cJSON *mean_json(const dvec *d)
{
    return d->n ? cJSON_CreateNumber(mean_of(d)) : cJSON_CreateNull();
}

/* Layers keyed by index ("0", "1", ...) sort numerically; otherwise (op
 * paths) they stay in file order. */
static bool all_indices(const layer_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->v[i].layer;
        if (!*s || strlen(s) > 9)
            return false;
        for (; *s; s++)
            if (*s < '0' || *s > '9')
                return false;
    }
    return true;
}

static int cmp_layer_index(const void *a, const void *b)
{
    long x = strtol(((const layer_acc *)a)->layer, NULL, 10);
    long y = strtol(((const layer_acc *)b)->layer, NULL, 10);
    return (x > y) - (x < y);
}

static void order_layers(layer_list *l)
{
    if (l->n > 1 && all_indices(l))
        qsort(l->v, l->n, sizeof *l->v, cmp_layer_index);
}

typedef struct out_ctx {
    const jp_process_options *opt;
    const char *mode_dir;
    strlist selection; /* --params items, or {"rail"} */
    size_t n_empty;    /* (layer, param) means with no sample: reported */
} out_ctx;

static void notify(const jp_process_options *opt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void notify(const jp_process_options *opt, const char *fmt, ...)
{
    if (!opt->notify)
        return;
    char line[JP_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    opt->notify(opt->notify_ctx, line);
}

/* Adds one parameter's mean (and stats) of layer a to pobj (and sobj). */
static jp_status add_param(out_ctx *oc, const char *where, const layer_acc *a,
                           const param_acc *pa, cJSON *pobj, cJSON *sobj, jp_error *err)
{
    if (pa->non_numeric_at)
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s: parameter '%s' of layer '%s' has non-numeric values (first at "
                            "%s); only numeric parameters can be averaged",
                            where, pa->name, a->layer, pa->non_numeric_at);
    if (cJSON_GetObjectItemCaseSensitive(pobj, pa->name))
        return JP_OK; /* asked twice ("rail,VDD_SYS_CPU") */
    if (pa->vals.n == 0) {
        oc->n_empty++;
        notify(oc->opt, "warning: %s: layer '%s', %s: no sample in the window; mean is null",
               where, a->layer, pa->name);
    }
    cJSON *m = mean_json(&pa->vals);
    if (!m || !cJSON_AddItemToObject(pobj, pa->name, m))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    if (sobj) {
        cJSON *s = stats_of(&pa->vals);
        if (!s || !cJSON_AddItemToObject(sobj, pa->name, s))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    return JP_OK;
}

static jp_status power_json(out_ctx *oc, const char *where, const dev_acc *dev, int d,
                            cJSON *power, cJSON *power_stats, jp_error *err)
{
    const char *rail = dev->rail ? dev->rail : (d == 0 ? SEED_RAIL_CPU : SEED_RAIL_GPU);
    for (size_t i = 0; i < dev->power.n; i++) {
        const layer_acc *a = &dev->power.v[i];
        cJSON *pobj = cJSON_AddObjectToObject(power, a->layer);
        cJSON *sobj = power_stats ? cJSON_AddObjectToObject(power_stats, a->layer) : NULL;
        if (!pobj || (power_stats && !sobj))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        for (size_t s = 0; s < oc->selection.n; s++) {
            const char *want = oc->selection.v[s];
            jp_status st;
            if (strcmp(want, "all") == 0) {
                for (size_t p = 0; p < a->n_params; p++) {
                    if (a->params[p].non_numeric_at)
                        continue; /* "all" means every numeric parameter */
                    if ((st = add_param(oc, where, a, &a->params[p], pobj, sobj, err)) != JP_OK)
                        return st;
                }
                continue;
            }
            const char *name = strcmp(want, "rail") == 0 ? rail : want;
            const param_acc *pa = NULL;
            for (size_t p = 0; p < a->n_params && !pa; p++)
                if (strcmp(a->params[p].name, name) == 0)
                    pa = &a->params[p];
            if (!pa) {
                char have[512] = "";
                size_t used = 0;
                for (size_t p = 0; p < a->n_params && used < sizeof have; p++) {
                    int w = snprintf(have + used, sizeof have - used, "%s%s", p ? ", " : "",
                                     a->params[p].name);
                    if (w < 0)
                        break;
                    used += (size_t)w;
                }
                return jp_error_set(err, JP_ERR_MISSING,
                                    "%s: layer '%s' has no parameter '%s'%s (it has: %s)%s", where,
                                    a->layer, name,
                                    strcmp(want, "rail") == 0 ? " (the device rail)" : "", have,
                                    strcmp(want, "rail") == 0 && !dev->rail
                                        ? "; name the rail with --params"
                                        : "");
            }
            if ((st = add_param(oc, where, a, pa, pobj, sobj, err)) != JP_OK)
                return st;
        }
    }
    return JP_OK;
}

static jp_status mode_json(out_ctx *oc, mode_acc *m, cJSON **out, jp_error *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    jp_status st = JP_OK;
    for (size_t n = 0; n < m->n && st == JP_OK; n++) {
        net_acc *net = &m->nets[n];
        cJSON *nobj = cJSON_AddObjectToObject(root, net->name);
        if (!nobj) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            break;
        }
        for (int d = 0; d < 2 && st == JP_OK; d++) {
            dev_acc *dev = &net->dev[d];
            if (!dev->present)
                continue;
            order_layers(&dev->power);
            order_layers(&dev->latency);
            char where[1024];
            snprintf(where, sizeof where, "%s/%s/power/%s", oc->mode_dir, device_dirs[d],
                     net->name);
            cJSON *dobj = cJSON_AddObjectToObject(nobj, device_dirs[d]);
            cJSON *power = dobj ? cJSON_AddObjectToObject(dobj, "power") : NULL;
            cJSON *latency = dobj ? cJSON_AddObjectToObject(dobj, "latency") : NULL;
            cJSON *power_stats = NULL, *latency_stats = NULL;
            if (oc->opt->stats && latency) {
                power_stats = cJSON_AddObjectToObject(dobj, "power_stats");
                latency_stats = cJSON_AddObjectToObject(dobj, "latency_stats");
            }
            if (!latency || (oc->opt->stats && !latency_stats)) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                break;
            }
            st = power_json(oc, where, dev, d, power, power_stats, err);
            for (size_t i = 0; st == JP_OK && i < dev->latency.n; i++) {
                const layer_acc *a = &dev->latency.v[i];
                cJSON *mj = mean_json(&a->latency_s);
                if (!mj || !cJSON_AddItemToObject(latency, a->layer, mj)) {
                    st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                    break;
                }
                if (latency_stats) {
                    cJSON *s = stats_of(&a->latency_s);
                    if (!s || !cJSON_AddItemToObject(latency_stats, a->layer, s))
                        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                }
            }
        }
    }
    if (st != JP_OK) {
        cJSON_Delete(root);
        return st;
    }
    *out = root;
    return JP_OK;
}

static jp_status process_mode(out_ctx *oc, const char *mode, const char *out_root, jp_error *err)
{
    const jp_process_options *opt = oc->opt;
    mode_acc m = {0};
    strlist nets = {0};
    char *mode_dir = jp_strprintf("%s/Mode%s", opt->dataset_dir, mode);
    char *out_path = jp_strprintf("%s/Mode%s.json", out_root, mode);
    cJSON *root = NULL;
    jp_status st = JP_OK;
    if (!mode_dir || !out_path) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    oc->mode_dir = mode_dir;
    for (int d = 0; d < 2 && st == JP_OK; d++) {
        for (int kind = 0; kind < 2 && st == JP_OK; kind++) {
            const char *kind_name = kind == 0 ? "latency" : "power";
            char *kind_dir = jp_strprintf("%s/%s/%s", mode_dir, device_dirs[d], kind_name);
            if (!kind_dir) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                break;
            }
            strlist_free(&nets);
            st = list_dir(kind_dir, true, &nets, err);
            for (size_t n = 0; st == JP_OK && n < nets.n; n++) {
                net_acc *net = mode_net(&m, nets.v[n]);
                char *dir = jp_strprintf("%s/%s", kind_dir, nets.v[n]);
                if (!net || !dir) {
                    free(dir);
                    st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                    break;
                }
                dev_acc *dev = &net->dev[d];
                dev->present = true;
                if (kind == 0) {
                    st = read_latency_dir(dir, dev, err);
                } else {
                    power_ctx pc = {dev, opt->boundary_s};
                    st = read_power_dir(dir, &pc, err);
                }
                free(dir);
            }
            free(kind_dir);
        }
    }
    if (st != JP_OK)
        goto done;
    /* networks in name order */
    for (size_t i = 1; i < m.n; i++)
        for (size_t j = i; j > 0 && strcmp(m.nets[j - 1].name, m.nets[j].name) > 0; j--) {
            net_acc t = m.nets[j];
            m.nets[j] = m.nets[j - 1];
            m.nets[j - 1] = t;
        }
    if ((st = mode_json(oc, &m, &root, err)) != JP_OK)
        goto done;
    if ((st = jp_json_write_atomic(out_path, root, true, err)) != JP_OK)
        goto done;
    notify(opt, "wrote %s (%zu network%s)", out_path, m.n, m.n == 1 ? "" : "s");
done:
    cJSON_Delete(root);
    strlist_free(&nets);
    mode_free(&m);
    free(mode_dir);
    free(out_path);
    oc->mode_dir = NULL;
    return st;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int cmp_mode(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    if (all_digits(x) && all_digits(y)) {
        size_t lx = strlen(x), ly = strlen(y);
        if (lx != ly)
            return lx < ly ? -1 : 1;
    }
    return strcmp(x, y);
}

jp_status jp_process_run(const jp_process_options *opt, jp_error *err)
{
    const char *dataset = opt->dataset_dir && *opt->dataset_dir ? opt->dataset_dir : "Dataset";
    jp_process_options o = *opt;
    o.dataset_dir = dataset;
    out_ctx oc = {.opt = &o};
    strlist modes = {0}, found = {0}, entries = {0};
    char *out_root = NULL;
    jp_status st;

    if (!jp_is_dir(dataset)) {
        st = jp_error_set(err, JP_ERR_MISSING,
                          "--dataset: '%s' is not a directory (run `jplprof profile --out %s` "
                          "first, or name the raw data's folder)",
                          dataset, dataset);
        goto done;
    }
    if ((st = list_dir(dataset, true, &entries, err)) != JP_OK)
        goto done;
    for (size_t i = 0; i < entries.n; i++)
        if (strncmp(entries.v[i], "Mode", 4) == 0 && entries.v[i][4] &&
            !strlist_push(&found, entries.v[i] + 4)) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
    if (found.n > 1)
        qsort(found.v, found.n, sizeof *found.v, cmp_mode);

    if (opt->modes && *opt->modes) {
        if (!strlist_split(&modes, opt->modes)) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < modes.n; i++) {
            const char *mv = modes.v[i];
            if (strncmp(mv, "Mode", 4) == 0) /* "--modes Mode0" also works */
                memmove(modes.v[i], mv + 4, strlen(mv + 4) + 1);
            if (!*modes.v[i] || strchr(modes.v[i], '/') || !strlist_has(&found, modes.v[i])) {
                char have[512] = "";
                size_t used = 0;
                for (size_t f = 0; f < found.n && used < sizeof have; f++) {
                    int w = snprintf(have + used, sizeof have - used, "%s%s", f ? ", " : "",
                                     found.v[f]);
                    if (w < 0)
                        break;
                    used += (size_t)w;
                }
                st = jp_error_set(err, JP_ERR_MISSING,
                                  "--modes: no folder '%s/Mode%s' (modes found: %s)", dataset,
                                  modes.v[i], found.n ? have : "none");
                goto done;
            }
        }
    } else {
        if (found.n == 0) {
            st = jp_error_set(err, JP_ERR_MISSING, "--dataset: no Mode* folder in '%s'", dataset);
            goto done;
        }
        for (size_t i = 0; i < found.n; i++)
            if (!strlist_push(&modes, found.v[i])) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                goto done;
            }
    }

    if (!strlist_split(&oc.selection, opt->params && *opt->params ? opt->params : "rail")) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (oc.selection.n == 0) {
        st = jp_error_set(err, JP_ERR_ARG, "--params: empty list");
        goto done;
    }
    out_root = opt->output_root && *opt->output_root ? xstrdup(opt->output_root)
                                                     : jp_strprintf("%s/Processed", dataset);
    if (!out_root) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = jp_mkdir_p(out_root, err)) != JP_OK) {
        jp_error_prefix(err, "--output_file_root: ");
        goto done;
    }
    for (size_t i = 0; i < modes.n; i++)
        if ((st = process_mode(&oc, modes.v[i], out_root, err)) != JP_OK)
            goto done;
done:
    free(out_root);
    strlist_free(&oc.selection);
    strlist_free(&modes);
    strlist_free(&found);
    strlist_free(&entries);
    return st;
}

/* ---- options ---- */

void jp_process_options_init(jp_process_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->dataset_dir = "Dataset";
    opt->boundary_s = -1;
}

void jp_process_options_free(jp_process_options *opt)
{
    for (size_t i = 0; i < sizeof opt->owned_ / sizeof opt->owned_[0]; i++) {
        free(opt->owned_[i]);
        opt->owned_[i] = NULL;
    }
}

const char *jp_process_usage(void)
{
    return "  --dataset DIR             raw data's root (default Dataset, as profile --out)\n"
           "  --modes M[,M...]          modes to process (also space-separated: --modes 0 1);\n"
           "                            default: every Mode* folder found\n"
           "  --params P[,P...]         parameters to average per layer (also space-separated);\n"
           "                            default: the device's rail; 'rail' names the device's\n"
           "                            rail, 'all' every numeric parameter sampled\n"
           "  --output_file_root DIR    where Mode<M>.json go (default <dataset>/Processed)\n"
           "  --stats                   add median, std and sample count beside each mean\n"
           "  --tgr_smpl_boundary S     re-window jplprof power_raw files with this boundary\n"
           "  -h, --help                this help\n";
}

enum {
    OPT_MODES = 1000,
    OPT_PARAMS,
    OPT_OUTPUT_ROOT,
    OPT_DATASET,
    OPT_STATS,
    OPT_BOUNDARY,
};

/* Appends the option's argument and the non-option words after it to the
 * comma-separated list in *owned (the seed's argparse nargs='+'). */
static jp_status take_list(int argc, char **argv, const char *first, char **owned,
                           const char *name, jp_error *err)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    if (*owned)
        jp_textbuf_puts(&b, *owned);
    const char *item = first;
    for (;;) {
        if (b.len)
            jp_textbuf_puts(&b, ",");
        jp_textbuf_puts(&b, item);
        if (optind >= argc || argv[optind][0] == '-' || argv[optind][0] == '\0')
            break;
        item = argv[optind++];
    }
    if (!jp_textbuf_ok(&b)) {
        jp_textbuf_free(&b);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    free(*owned);
    *owned = b.data ? b.data : xstrdup("");
    if (!*owned)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    (void)name;
    return JP_OK;
}

jp_status jp_process_parse_args(int argc, char **argv, jp_process_options *opt, jp_error *err)
{
    static const struct option longopts[] = {
        {"modes", required_argument, NULL, OPT_MODES},
        {"params", required_argument, NULL, OPT_PARAMS},
        {"output_file_root", required_argument, NULL, OPT_OUTPUT_ROOT},
        {"output-file-root", required_argument, NULL, OPT_OUTPUT_ROOT},
        {"dataset", required_argument, NULL, OPT_DATASET},
        {"stats", no_argument, NULL, OPT_STATS},
        {"tgr_smpl_boundary", required_argument, NULL, OPT_BOUNDARY},
        {"tgr-smpl-boundary", required_argument, NULL, OPT_BOUNDARY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0; /* glibc: full re-initialisation */
    opterr = 0;
    jp_status st = JP_OK;
    for (;;) {
        int c = getopt_long(argc, argv, "+:h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case OPT_MODES:
            st = take_list(argc, argv, optarg, &opt->owned_[0], "--modes", err);
            opt->modes = opt->owned_[0];
            break;
        case OPT_PARAMS:
            st = take_list(argc, argv, optarg, &opt->owned_[1], "--params", err);
            opt->params = opt->owned_[1];
            break;
        case OPT_OUTPUT_ROOT:
            opt->output_root = optarg;
            break;
        case OPT_DATASET:
            opt->dataset_dir = optarg;
            break;
        case OPT_STATS:
            opt->stats = true;
            break;
        case OPT_BOUNDARY: {
            char *end = NULL;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(v >= 0) || !(v <= 86400))
                return jp_error_set(err, JP_ERR_ARG,
                                    "--tgr_smpl_boundary: '%s', expected seconds from 0 to 86400",
                                    optarg);
            opt->boundary_s = v;
            break;
        }
        case 'h':
            opt->help = true;
            break;
        case ':':
            return jp_error_set(err, JP_ERR_ARG, "process: option '%s' needs a value",
                                argv[optind - 1]);
        default:
            return jp_error_set(err, JP_ERR_ARG, "process: unknown option '%s' (see --help)",
                                argv[optind - 1]);
        }
        if (st != JP_OK)
            return st;
    }
    if (optind < argc)
        return jp_error_set(err, JP_ERR_ARG, "process: unexpected argument '%s'", argv[optind]);
    return JP_OK;
}
