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
#include "calibration.h"
#include "lag.h"
#include "passes.h"
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

/* One timestamped window of one parameter (from a power_raw file): the
 * samples of the whole loop, for the lag fit and the corrected mean. */
typedef struct lag_acc {
    jp_lag_window w;    /* the loop; points into t_s and y below               */
    double *t_s, *y;    /* (w.n) owned                                          */
    jp_lag_window idle; /* the cooldown before it (t since its start; n may be 0) */
    double *idle_t_s, *idle_y;
    uint64_t calls;     /* unit calls in the loop                               */
} lag_acc;

typedef struct param_acc {
    char *name;
    dvec vals;
    char *non_numeric_at; /* "file:line" where a non-numeric value was met, or NULL */
    bool power_unit;      /* mW, as a power_raw file recorded: lag correction applies */
    char unit[8];         /* as a power_raw file recorded ("MHz", "C", ...); "" unknown */
    size_t changed_windows; /* windows in which this clock (MHz) changed */
    lag_acc *wins;        /* (n_wins) timestamped windows */
    size_t n_wins, cap_wins;
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
    layer_list in_pass;  /* latency_s: each layer's times inside whole passes */
    dvec end_to_end_s;   /* whole passes without timers                       */
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
            for (size_t k = 0; k < a->params[p].n_wins; k++) {
                free(a->params[p].wins[k].t_s);
                free(a->params[p].wins[k].y);
                free(a->params[p].wins[k].idle_t_s);
                free(a->params[p].wins[k].idle_y);
            }
            free(a->params[p].wins);
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
            layers_free(&m->nets[i].dev[d].in_pass);
            free(m->nets[i].dev[d].end_to_end_s.v);
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

/* A seed-format power file being read: where its layers go, and how many
 * lines the seed's processData.py dropped at each end of every list. */
typedef struct seed_power_ctx {
    layer_list *layers;
    size_t trim;
} seed_power_ctx;

static jp_status on_power_line(const char *path, size_t line_no, const char *layer_key,
                               const cJSON *value, void *ctx, jp_error *err)
{
    const seed_power_ctx *sc = ctx;
    if (!cJSON_IsObject(value))
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s:%zu: layer '%s': expected {\"<param>\": [values]}", path, line_no,
                            layer_key);
    layer_acc *a = layer_get(sc->layers, layer_key);
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
        /* the seed's stat[f*b : -f*b] */
        size_t n = (size_t)cJSON_GetArraySize(p), i = 0;
        for (const cJSON *c = p->child; c; c = c->next, i++) {
            if (i < sc->trim || i + sc->trim >= n)
                continue;
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

/* Copies rows [first, last) of parameter p of seg, times in seconds since
 * origin_ns (relative to the segment's t0 like the rows). */
static bool copy_rows(const jp_raw_power_segment *seg, size_t p, size_t first, size_t last,
                      int64_t origin_ns, double **t_s, double **y)
{
    size_t n = last - first;
    *t_s = malloc((n ? n : 1) * sizeof **t_s);
    *y = malloc((n ? n : 1) * sizeof **y);
    if (!*t_s || !*y)
        return false;
    for (size_t r = 0; r < n; r++) {
        (*t_s)[r] = (double)(seg->t_ns[first + r] - origin_ns) * 1e-9;
        (*y)[r] = seg->values[(first + r) * seg->n_params + p];
    }
    return true;
}

/* Keeps parameter p's samples of a window for the lag model and the
 * energy: the loop's (in seconds since the start marker) and the
 * cooldown's before it (since its start). */
static jp_status add_lag_window(param_acc *pa, const jp_raw_power_segment *seg, size_t p,
                                const jp_raw_power_window *win, int64_t boundary_ns, jp_error *err)
{
    if (pa->n_wins == pa->cap_wins) {
        size_t nc = pa->cap_wins ? pa->cap_wins * 2 : 4;
        lag_acc *nv = realloc(pa->wins, nc * sizeof *nv);
        if (!nv)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        pa->wins = nv;
        pa->cap_wins = nc;
    }
    lag_acc *la = &pa->wins[pa->n_wins];
    memset(la, 0, sizeof *la);
    size_t first, last, idle_first, idle_last;
    jp_raw_window_range(seg, win->start_ns, win->end_ns, 0, &first, &last);
    jp_raw_window_range(seg, win->idle_start_ns, win->start_ns, 0, &idle_first, &idle_last);
    if (!copy_rows(seg, p, first, last, win->start_ns, &la->t_s, &la->y) ||
        !copy_rows(seg, p, idle_first, idle_last, win->idle_start_ns, &la->idle_t_s, &la->idle_y)) {
        free(la->t_s);
        free(la->y);
        free(la->idle_t_s);
        free(la->idle_y);
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    double loop_s = (double)(win->end_ns - win->start_ns) * 1e-9;
    double gap_s = (double)(win->start_ns - win->idle_start_ns) * 1e-9;
    la->w = (jp_lag_window){.t_s = la->t_s, .y = la->y, .n = last - first, .loop_s = loop_s,
                            .lo_s = (double)boundary_ns * 1e-9,
                            .hi_s = loop_s - (double)boundary_ns * 1e-9};
    la->idle = (jp_lag_window){.t_s = la->idle_t_s, .y = la->idle_y, .n = idle_last - idle_first,
                               .loop_s = gap_s, .lo_s = 0, .hi_s = gap_s};
    la->calls = win->calls;
    pa->n_wins++;
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
            pa->power_unit = strcmp(seg->param_units[p], "mW") == 0;
            snprintf(pa->unit, sizeof pa->unit, "%s", seg->param_units[p]);
            if (pa->power_unit && (st = add_lag_window(pa, seg, p, win, boundary_ns, err)))
                goto done;
            double lo = INFINITY, hi = -INFINITY;
            for (size_t r = first; r < last; r++) {
                double v = seg->values[r * seg->n_params + p];
                if (!isnan(v) && !dvec_push(&pa->vals, v)) {
                    st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                    goto done;
                }
                if (!isnan(v))
                    lo = fmin(lo, v), hi = fmax(hi, v);
            }
            if (strcmp(pa->unit, "MHz") == 0 && hi > lo)
                pa->changed_windows++;
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

/* The lines the seed's processData.py drops at each end of a layer's list
 * in a file named "<stem>_sf_<f>_sb_<b>.json": f x b (its
 * int(nameSplit[2]) * int(nameSplit[4])).  suffix: "_sf_<f>_sb_<b>.json",
 * already matched by match_power_seed_name(). */
static size_t seed_name_trim(const char *suffix)
{
    const char *sb = strstr(suffix, "_sb_");
    return jp_raw_seed_trim(strtol(suffix + 4, NULL, 10), strtod(sb + 4, NULL));
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

/* Every passes file (passes.h) of one (mode, device, network), pooled. */
static jp_status read_passes_dir(const char *dataset, const char *mode, const char *device, const char *net,
                                 dev_acc *dev, jp_error *err)
{
    char *dir = jp_strprintf("%s/.jplprof/passes/Mode%s/%s/%s", dataset, mode, device, net);
    if (!dir)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    strlist files = {0};
    jp_status st = jp_path_exists(dir) ? list_dir(dir, false, &files, err) : JP_OK;
    for (size_t i = 0; st == JP_OK && i < files.n; i++) {
        size_t len = strlen(files.v[i]);
        if (len < 6 || strcmp(files.v[i] + len - 5, ".json") != 0)
            continue;
        char *path = jp_strprintf("%s/%s", dir, files.v[i]);
        jp_passes ps;
        st = path ? jp_passes_load(path, &ps, err) : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        for (size_t u = 0; st == JP_OK && u < ps.n_units; u++) {
            layer_acc *a = layer_get(&dev->in_pass, ps.units[u]);
            for (size_t r = 0; a && r < ps.n_passes; r++)
                if (!dvec_push(&a->latency_s, ps.in_pass_s[r * ps.n_units + u]))
                    a = NULL;
            if (!a)
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        }
        for (size_t r = 0; st == JP_OK && r < ps.n_passes; r++)
            if (!dvec_push(&dev->end_to_end_s, ps.end_to_end_s[r]))
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        jp_passes_free(&ps);
        free(path);
    }
    strlist_free(&files);
    free(dir);
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
            else {
                seed_power_ctx sc = {.layers = &pc->dev->power,
                                     .trim = seed_name_trim(files.v[i] + len)};
                st = read_seed_nonempty(path, on_power_line, &sc, err);
            }
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

/* The median of d (mean of the two middle values for an even count); NaN
 * when empty or out of memory. */
static double median_of(const dvec *d)
{
    if (d->n == 0)
        return NAN;
    double *s = malloc(d->n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, d->v, d->n * sizeof *s);
    qsort(s, d->n, sizeof *s, cmp_double);
    double m = d->n % 2 ? s[d->n / 2] : (s[d->n / 2 - 1] + s[d->n / 2]) / 2;
    free(s);
    return m;
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
    double median = median_of(d);
    if (isnan(median)) {
        cJSON_Delete(o);
        return NULL;
    }
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
    jp_calibration cal; /* the dataset's calibration; cal.path NULL: none */
    size_t n_empty;    /* (layer, param) means with no sample: reported */
    jp_process_mode_fn sink; /* jp_process_collect: gets each mode's document */
    void *sink_ctx;          /*   instead of writing it                       */
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

/* The lag model of one parameter of one (network, device): tau fitted over
 * every timestamped window of every layer. */
typedef struct lag_model {
    char *name;
    jp_lag_fit fit;
    bool from_calibration; /* fit.tau_s is the calibration's          */
    double estimated_tau_s; /* what the windows gave, then            */
    size_t n_windows; /* timestamped windows seen */
} lag_model;

typedef struct lag_models {
    lag_model *v;
    size_t n;
} lag_models;

static void lag_models_free(lag_models *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].name);
    free(m->v);
    memset(m, 0, sizeof *m);
}

/* Fits tau per power parameter (mW, timestamped) over all layers of dev. */
static jp_status fit_lag_models(const dev_acc *dev, const jp_calibration *cal, const char *where,
                                lag_models *out, jp_error *err)
{
    if (cal->path && dev->rail && !jp_calibration_rail_of(cal, dev->rail)) {
        char have[512] = "";
        for (size_t i = 0, used = 0; i < cal->n_rails && used < sizeof have; i++)
            used += (size_t)snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "", cal->rails[i].name);
        return jp_error_set(err, JP_ERR_FORMAT,
                            "%s: the calibration %s has no rail %s, the device rail of %s (it has: %s): it is for "
                            "another board or source; run jplprof calibrate on this one, or remove the file",
                            cal->path, cal->path, dev->rail, where, have);
    }
    for (size_t i = 0; i < dev->power.n; i++) {
        const layer_acc *a = &dev->power.v[i];
        for (size_t p = 0; p < a->n_params; p++) {
            const param_acc *pa = &a->params[p];
            bool seen = !pa->power_unit || pa->n_wins == 0;
            for (size_t k = 0; k < out->n && !seen; k++)
                seen = strcmp(out->v[k].name, pa->name) == 0;
            if (seen)
                continue;
            size_t total = 0;
            for (size_t l = 0; l < dev->power.n; l++)
                for (size_t q = 0; q < dev->power.v[l].n_params; q++)
                    if (strcmp(dev->power.v[l].params[q].name, pa->name) == 0)
                        total += dev->power.v[l].params[q].n_wins;
            jp_lag_window *ws = malloc(total * sizeof *ws);
            lag_model *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
            if (nv)
                out->v = nv;
            if (!ws || !nv) {
                free(ws);
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            }
            size_t m = 0;
            for (size_t l = 0; l < dev->power.n; l++)
                for (size_t q = 0; q < dev->power.v[l].n_params; q++)
                    if (strcmp(dev->power.v[l].params[q].name, pa->name) == 0)
                        for (size_t k = 0; k < dev->power.v[l].params[q].n_wins; k++)
                            ws[m++] = dev->power.v[l].params[q].wins[k].w;
            lag_model *lm = &out->v[out->n];
            memset(lm, 0, sizeof *lm);
            const jp_calibration_rail *cr = jp_calibration_rail_of(cal, pa->name);
            jp_lag_fit_tau(ws, m, &lm->fit);
            if (cr && cr->fits) {
                lm->from_calibration = true;
                lm->estimated_tau_s = lm->fit.tau_s;
                lm->fit.tau_s = cr->tau_s;
                lm->fit.fits = true;
                snprintf(lm->fit.why, sizeof lm->fit.why, "tau from the calibration %s (the windows alone "
                         "would give %.4g s)", cal->path, lm->estimated_tau_s);
            }
            lm->n_windows = m;
            free(ws);
            if (!(lm->name = xstrdup(pa->name)))
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            out->n++;
        }
    }
    return JP_OK;
}

static const lag_model *lag_model_of(const lag_models *m, const char *name)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0)
            return &m->v[i];
    return NULL;
}

/* The lag-corrected mean of a parameter of a layer over its windows, each
 * window weighted by its length; NaN when no window gives one. */
static double corrected_mean(const param_acc *pa, double tau_s)
{
    double sum = 0, width = 0;
    for (size_t k = 0; k < pa->n_wins; k++) {
        double plain, c = jp_lag_corrected_mean(&pa->wins[k].w, tau_s, &plain);
        double wk = pa->wins[k].w.hi_s - pa->wins[k].w.lo_s;
        if (isfinite(c) && wk > 0)
            sum += c * wk, width += wk;
    }
    return width > 0 ? sum / width : NAN;
}

/* Adds one parameter's mean (and stats) of layer a to pobj (and sobj), and
 * its lag-corrected mean to cobj: corrected where the parameter is a power
 * with timestamped windows and a first-order model that fits, else the
 * plain mean (the model's entry in "power_lag" says which). */
static void add_uncertainty(cJSON *st, const param_acc *pa, double tau_s, double corrected);
static cJSON *energy_json(const param_acc *pa, double tau_s, double power_mw);

static jp_status add_param(out_ctx *oc, const char *where, const layer_acc *a,
                           const param_acc *pa, cJSON *pobj, cJSON *sobj, cJSON *cobj,
                           cJSON *eobj, const lag_models *lags, jp_error *err)
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
    const lag_model *lm = lag_model_of(lags, pa->name);
    double c = NAN;
    if (lm && lm->fit.fits) {
        c = corrected_mean(pa, lm->fit.tau_s);
        for (size_t k = 0; k < pa->n_wins && lm->fit.tau_s > 0; k++)
            if (pa->wins[k].w.hi_s - pa->wins[k].w.lo_s < 2 * lm->fit.tau_s) {
                notify(oc->opt, "warning: %s: layer '%s', %s: the window (%.3g s) is shorter than "
                       "2 x the sensor's time constant (%.3g s): its corrected power is uncertain; "
                       "use a longer --tgr_smpl_duration", where, a->layer, pa->name,
                       pa->wins[k].w.hi_s - pa->wins[k].w.lo_s, lm->fit.tau_s);
                break;
            }
    }
    cJSON *cj = isfinite(c) ? cJSON_CreateNumber(c) : mean_json(&pa->vals);
    if (!cj || !cJSON_AddItemToObject(cobj, pa->name, cj))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    if (sobj && pa->power_unit && pa->n_wins > 0) {
        double tau = lm && lm->fit.fits ? lm->fit.tau_s : 0;
        double p = cJSON_IsNumber(cj) ? cj->valuedouble : NAN;
        add_uncertainty(cJSON_GetObjectItemCaseSensitive(sobj, pa->name), pa, tau, p);
        cJSON *e = energy_json(pa, tau, p);
        if (!e || !cJSON_AddItemToObject(eobj, pa->name, e))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    return JP_OK;
}

/* Two-sided 95 % quantile of Student's t with dof degrees of freedom. */
static double t_975(size_t dof)
{
    static const double table[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
                                   2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
                                   2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
                                   2.048, 2.045, 2.042};
    return dof < sizeof table / sizeof table[0] ? table[dof] : 1.96;
}

/* The samples of the kept window of w, in order (finite only). */
static size_t kept_samples(const jp_lag_window *w, double *out)
{
    size_t m = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->t_s[i] >= w->lo_s && w->t_s[i] <= w->hi_s && isfinite(w->y[i]))
            out[m++] = w->y[i];
    return m;
}

/* The kept window's mean sample spacing, s (0 with fewer than 2). */
static double spacing_s(const jp_lag_window *w)
{
    double t0 = NAN, t1 = NAN;
    size_t m = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->t_s[i] >= w->lo_s && w->t_s[i] <= w->hi_s && isfinite(w->y[i])) {
            if (m++ == 0)
                t0 = w->t_s[i];
            t1 = w->t_s[i];
        }
    return m > 1 ? (t1 - t0) / (double)(m - 1) : 0;
}

/* Adds to st (the layer's --stats object of one power parameter): the
 * number of windows, the effectively independent samples given tau (an
 * AR(1) series with rho = exp(-dt / tau) counts n (1 - rho) / (1 + rho)),
 * and a 95 % interval of the corrected power: Student's t over the
 * windows' corrected means for N >= 2, else a moving-block bootstrap of the
 * one window's samples (blocks of 3 tau, at least 5 samples; 400
 * resamples, fixed seed) shifted onto the corrected mean. */
static void add_uncertainty(cJSON *st, const param_acc *pa, double tau_s, double corrected)
{
    size_t n_w = 0;
    double n_eff = 0, sum = 0, sum2 = 0;
    for (size_t k = 0; k < pa->n_wins; k++) {
        double plain, c = jp_lag_corrected_mean(&pa->wins[k].w, tau_s, &plain);
        if (!isfinite(c))
            continue;
        n_w++, sum += c, sum2 += c * c;
        double dt = spacing_s(&pa->wins[k].w), rho = tau_s > 0 && dt > 0 ? exp(-dt / tau_s) : 0;
        double buf_n = 0;
        for (size_t i = 0; i < pa->wins[k].w.n; i++)
            buf_n += pa->wins[k].w.t_s[i] >= pa->wins[k].w.lo_s &&
                     pa->wins[k].w.t_s[i] <= pa->wins[k].w.hi_s && isfinite(pa->wins[k].w.y[i]);
        n_eff += buf_n * (1 - rho) / (1 + rho);
    }
    cJSON_AddNumberToObject(st, "windows", (double)n_w);
    cJSON_AddNumberToObject(st, "n_effective", n_eff);
    double lo = NAN, hi = NAN;
    const char *method = "none (no timestamped window)";
    char how[96];
    if (n_w >= 2) {
        double mean = sum / (double)n_w;
        double var = (sum2 - (double)n_w * mean * mean) / (double)(n_w - 1);
        double half = t_975(n_w - 1) * sqrt(var > 0 ? var : 0) / sqrt((double)n_w);
        lo = corrected - half, hi = corrected + half;
        snprintf(how, sizeof how, "Student's t over %zu windows' corrected means", n_w);
        method = how;
    } else if (n_w == 1) {
        const jp_lag_window *w = NULL;
        for (size_t k = 0; k < pa->n_wins && !w; k++)
            if (pa->wins[k].w.n)
                w = &pa->wins[k].w;
        double *y = w ? malloc(w->n * sizeof *y) : NULL, *means = malloc(400 * sizeof *means);
        size_t m = y ? kept_samples(w, y) : 0;
        double dt = w ? spacing_s(w) : 0;
        size_t block = dt > 0 ? (size_t)ceil(3 * tau_s / dt) : 5;
        if (block < 5)
            block = 5;
        if (m >= 2 * block && means) {
            if (block > m / 2)
                block = m / 2;
            double mean0 = 0;
            for (size_t i = 0; i < m; i++)
                mean0 += y[i];
            mean0 /= (double)m;
            uint64_t state = 0x9E3779B97F4A7C15ULL;
            for (int b = 0; b < 400; b++) {
                double s = 0;
                size_t taken = 0;
                while (taken < m) {
                    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
                    size_t start = (size_t)(state % (m - block + 1));
                    for (size_t i = 0; i < block && taken < m; i++, taken++)
                        s += y[start + i];
                }
                means[b] = s / (double)m;
            }
            qsort(means, 400, sizeof *means, cmp_double);
            lo = corrected + (means[9] - mean0);   /* 2.5 % of 400: the 10th */
            hi = corrected + (means[390] - mean0); /* 97.5 %: the 391st */
            snprintf(how, sizeof how, "block bootstrap of 1 window (blocks of %zu samples)", block);
            method = how;
        } else {
            method = "none (1 window, too few samples for a block bootstrap)";
        }
        free(y);
        free(means);
    }
    cJSON *ci = cJSON_AddArrayToObject(st, "corrected_ci95");
    cJSON_AddItemToArray(ci, isfinite(lo) ? cJSON_CreateNumber(lo) : cJSON_CreateNull());
    cJSON_AddItemToArray(ci, isfinite(hi) ? cJSON_CreateNumber(hi) : cJSON_CreateNull());
    cJSON_AddStringToObject(st, "ci_method", method);
}

/* Energy per call of a power parameter (mW) over its windows: the corrected
 * power times the loop's time per call (mJ), and net of the idle power that
 * the cooldowns before the windows measured (corrected for the lag too: the
 * true power is constant, idle, over a whole cooldown). */
static cJSON *energy_json(const param_acc *pa, double tau_s, double power_mw)
{
    double loop_s = 0, calls = 0, idle_sum = 0, idle_w = 0;
    for (size_t k = 0; k < pa->n_wins; k++) {
        loop_s += pa->wins[k].w.loop_s;
        calls += (double)pa->wins[k].calls;
        double plain, c = jp_lag_corrected_mean(&pa->wins[k].idle, tau_s, &plain);
        double wk = pa->wins[k].idle.hi_s - pa->wins[k].idle.lo_s;
        if (isfinite(c) && wk > 0)
            idle_sum += c * wk, idle_w += wk;
    }
    cJSON *e = cJSON_CreateObject();
    double per_call_s = calls > 0 ? loop_s / calls : NAN;
    double idle = idle_w > 0 ? idle_sum / idle_w : NAN;
    double gross = power_mw * per_call_s, net = (power_mw - idle) * per_call_s;
    cJSON_AddItemToObject(e, "time_per_call_s", isfinite(per_call_s) ? cJSON_CreateNumber(per_call_s)
                                                                      : cJSON_CreateNull());
    cJSON_AddItemToObject(e, "gross_mj", isfinite(gross) ? cJSON_CreateNumber(gross) : cJSON_CreateNull());
    cJSON_AddItemToObject(e, "idle_mw", isfinite(idle) ? cJSON_CreateNumber(idle) : cJSON_CreateNull());
    cJSON_AddItemToObject(e, "net_mj", isfinite(net) ? cJSON_CreateNumber(net) : cJSON_CreateNull());
    return e;
}

/* "power_lag": {"<param>": {the model behind "power_corrected"}}. */
static cJSON *lag_json(const lag_models *lags, const cJSON *power)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *first = power ? power->child : NULL;
    for (const cJSON *p = first ? first->child : NULL; o && p; p = p->next) {
        const lag_model *lm = lag_model_of(lags, p->string);
        cJSON *e = cJSON_AddObjectToObject(o, p->string);
        if (!e)
            break;
        if (!lm) {
            cJSON_AddBoolToObject(e, "corrected", false);
            cJSON_AddStringToObject(e, "why", "no timestamped power samples (a seed-format file, or "
                                              "not a power in mW): the plain mean");
            continue;
        }
        cJSON_AddBoolToObject(e, "corrected", lm->fit.fits);
        cJSON_AddNumberToObject(e, "tau_s", lm->fit.tau_s);
        cJSON_AddStringToObject(e, "tau_from", lm->from_calibration
                                                   ? "calibration"
                                                   : "estimated from the window starts (no calibration)");
        cJSON_AddNumberToObject(e, "fit_rms_residual", lm->fit.rms_residual);
        cJSON_AddNumberToObject(e, "noise", lm->fit.noise);
        cJSON_AddNumberToObject(e, "windows", (double)lm->fit.n_windows);
        cJSON_AddStringToObject(e, "why", lm->fit.why);
    }
    return o;
}

static jp_status power_json(out_ctx *oc, const char *where, const dev_acc *dev, int d,
                            cJSON *power, cJSON *power_stats, cJSON *corrected, cJSON *energy,
                            const lag_models *lags, jp_error *err)
{
    const char *rail = dev->rail ? dev->rail : (d == 0 ? SEED_RAIL_CPU : SEED_RAIL_GPU);
    for (size_t i = 0; i < dev->power.n; i++) {
        const layer_acc *a = &dev->power.v[i];
        cJSON *pobj = cJSON_AddObjectToObject(power, a->layer);
        cJSON *sobj = power_stats ? cJSON_AddObjectToObject(power_stats, a->layer) : NULL;
        cJSON *cobj = cJSON_AddObjectToObject(corrected, a->layer);
        cJSON *eobj = energy ? cJSON_AddObjectToObject(energy, a->layer) : NULL;
        if (!pobj || !cobj || (power_stats && (!sobj || !eobj)))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        for (size_t s = 0; s < oc->selection.n; s++) {
            const char *want = oc->selection.v[s];
            jp_status st;
            if (strcmp(want, "all") == 0) {
                for (size_t p = 0; p < a->n_params; p++) {
                    if (a->params[p].non_numeric_at)
                        continue; /* "all" means every numeric parameter */
                    if ((st = add_param(oc, where, a, &a->params[p], pobj, sobj, cobj, eobj, lags, err)) !=
                        JP_OK)
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
            if ((st = add_param(oc, where, a, pa, pobj, sobj, cobj, eobj, lags, err)) != JP_OK)
                return st;
        }
    }
    return JP_OK;
}

/* --stats: "latency_in_pass" (each layer inside whole forward passes) and
 * "closure": the isolated medians summed against the end-to-end pass. */
static jp_status context_json(cJSON *dobj, dev_acc *dev, jp_error *err)
{
    order_layers(&dev->in_pass);
    cJSON *ip = cJSON_AddObjectToObject(dobj, "latency_in_pass");
    cJSON *cl = cJSON_AddObjectToObject(dobj, "closure");
    if (!ip || !cl)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    double in_pass_sum = 0, iso_sum = 0;
    bool iso_all = dev->latency.n > 0;
    for (size_t i = 0; i < dev->in_pass.n; i++) {
        const layer_acc *a = &dev->in_pass.v[i];
        cJSON *s = stats_of(&a->latency_s);
        if (!s || !cJSON_AddItemToObject(ip, a->layer, s))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        cJSON_AddNumberToObject(s, "mean", mean_of(&a->latency_s));
        in_pass_sum += median_of(&a->latency_s);
        const layer_acc *iso = NULL;
        for (size_t k = 0; k < dev->latency.n && !iso; k++)
            if (strcmp(dev->latency.v[k].layer, a->layer) == 0)
                iso = &dev->latency.v[k];
        if (iso && iso->latency_s.n)
            iso_sum += median_of(&iso->latency_s);
        else
            iso_all = false;
    }
    double e2e = median_of(&dev->end_to_end_s);
    cJSON_AddNumberToObject(cl, "in_pass_median_sum_s", in_pass_sum);
    cJSON_AddNumberToObject(cl, "end_to_end_median_s", e2e);
    cJSON_AddItemToObject(cl, "isolated_median_sum_s", iso_all ? cJSON_CreateNumber(iso_sum) : cJSON_CreateNull());
    cJSON_AddItemToObject(cl, "ratio", iso_all && e2e > 0 ? cJSON_CreateNumber(iso_sum / e2e) : cJSON_CreateNull());
    cJSON_AddItemToObject(cl, "in_pass_ratio", e2e > 0 ? cJSON_CreateNumber(in_pass_sum / e2e) : cJSON_CreateNull());
    return JP_OK;
}

/* The operating point of each layer's windows, from what the source
 * reports beside the rails (tegrastats: EMC_FREQ, GR3D_FREQ, each CPU's
 * MHz; temperatures): with --stats "operating_point": {layer: {"clocks_mhz":
 * {name: mean}, "temps_c": {name: mean}, "clock_changed": [names]}}; a
 * clock that changed inside a window is warned about, naming the layer,
 * with or without --stats (its power mixes two operating points). */
static jp_status operating_point_json(out_ctx *oc, const char *where, cJSON *dobj, const dev_acc *dev,
                                      jp_error *err)
{
    cJSON *op = oc->opt->stats ? cJSON_CreateObject() : NULL;
    bool any = false;
    for (size_t i = 0; i < dev->power.n; i++) {
        const layer_acc *a = &dev->power.v[i];
        cJSON *lj = NULL, *clocks = NULL, *temps = NULL, *changed = NULL;
        for (size_t p = 0; p < a->n_params; p++) {
            const param_acc *pa = &a->params[p];
            bool clock = strcmp(pa->unit, "MHz") == 0, temp = strcmp(pa->unit, "C") == 0;
            if (!(clock || temp) || pa->vals.n == 0)
                continue;
            if (clock && pa->changed_windows)
                notify(oc->opt, "warning: %s: layer '%s': %s changed inside %zu of its windows: its power mixes "
                       "two operating points (fix the clocks, e.g. jetson_clocks, and profile it again)",
                       where, a->layer, pa->name, pa->changed_windows);
            if (!op)
                continue;
            if (!lj) {
                lj = cJSON_AddObjectToObject(op, a->layer);
                clocks = cJSON_AddObjectToObject(lj, "clocks_mhz");
                temps = cJSON_AddObjectToObject(lj, "temps_c");
                changed = cJSON_AddArrayToObject(lj, "clock_changed");
            }
            cJSON_AddNumberToObject(clock ? clocks : temps, pa->name, mean_of(&pa->vals));
            if (clock && pa->changed_windows)
                cJSON_AddItemToArray(changed, cJSON_CreateString(pa->name));
            any = true;
        }
    }
    if (op && any) {
        if (!cJSON_AddItemToObject(dobj, "operating_point", op))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        return JP_OK;
    }
    cJSON_Delete(op);
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
            lag_models lags = {0};
            cJSON *corrected = cJSON_CreateObject();
            cJSON *energy = oc->opt->stats ? cJSON_CreateObject() : NULL;
            st = corrected && (energy || !oc->opt->stats)
                     ? fit_lag_models(dev, &oc->cal, where, &lags, err)
                     : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            if (st == JP_OK)
                st = power_json(oc, where, dev, d, power, power_stats, corrected, energy, &lags, err);
            if (st == JP_OK && dev->power.n > 0) {
                /* beside the seed's keys, after them */
                cJSON_AddItemToObject(dobj, "power_corrected", corrected);
                corrected = NULL;
                cJSON *lj = lag_json(&lags, power);
                if (!lj || !cJSON_AddItemToObject(dobj, "power_lag", lj))
                    st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                if (energy) {
                    cJSON_AddItemToObject(dobj, "energy_per_call", energy);
                    energy = NULL;
                }
            }
            cJSON_Delete(corrected);
            cJSON_Delete(energy);
            lag_models_free(&lags);
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
            if (st == JP_OK && oc->opt->stats && dev->in_pass.n > 0)
                st = context_json(dobj, dev, err);
            if (st == JP_OK)
                st = operating_point_json(oc, where, dobj, dev, err);
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
                    if (st == JP_OK)
                        st = read_passes_dir(opt->dataset_dir, mode, device_dirs[d], nets.v[n], dev, err);
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
    if (oc->sink) {
        st = oc->sink(oc->sink_ctx, mode, root, err);
        goto done;
    }
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

static jp_status run_modes(const jp_process_options *opt, jp_process_mode_fn sink, void *sink_ctx,
                           jp_error *err)
{
    const char *dataset = opt->dataset_dir && *opt->dataset_dir ? opt->dataset_dir : "Dataset";
    jp_process_options o = *opt;
    o.dataset_dir = dataset;
    out_ctx oc = {.opt = &o, .sink = sink, .sink_ctx = sink_ctx};
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
    if (!sink && (st = jp_mkdir_p(out_root, err)) != JP_OK) {
        jp_error_prefix(err, "--output_file_root: ");
        goto done;
    }
    char *cal_path = jp_calibration_path(dataset);
    st = cal_path ? jp_calibration_load(cal_path, &oc.cal, err) : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    free(cal_path);
    if (st == JP_ERR_MISSING)
        jp_calibration_free(&oc.cal), st = JP_OK, *err = (jp_error){0};
    else if (st != JP_OK)
        goto done;
    else
        notify(&o, "the sensor's time constants from %s", oc.cal.path);
    for (size_t i = 0; i < modes.n; i++)
        if ((st = process_mode(&oc, modes.v[i], out_root, err)) != JP_OK)
            goto done;
done:
    jp_calibration_free(&oc.cal);
    free(out_root);
    strlist_free(&oc.selection);
    strlist_free(&modes);
    strlist_free(&found);
    strlist_free(&entries);
    return st;
}

jp_status jp_process_run(const jp_process_options *opt, jp_error *err)
{
    return run_modes(opt, NULL, NULL, err);
}

jp_status jp_process_collect(const jp_process_options *opt, jp_process_mode_fn fn, void *ctx, jp_error *err)
{
    if (!fn)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_process_collect: no callback");
    return run_modes(opt, fn, ctx, err);
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
