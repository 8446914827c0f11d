/*
 * export.c: the processed dataset joined with the manifests' layer tables
 * (see export.h).  Process's document is read through cJSON exactly as
 * process built it; nothing here recomputes a statistic except trtexec's
 * derived fields (timeMs = mean x count, percentage = share of their sum).
 */
#include "export.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fileio.h"

/* ---- columns ---- */

enum {
    C_MODE, C_DEVICE, C_NETWORK, C_LAYER, C_LAYER_INDEX, C_LAYER_PATH, C_LAYER_TYPE, C_INPUT_SHAPE,
    C_OUTPUT_SHAPE, C_PARAMS, C_MACS, C_KERNELS, C_KERNEL_CHOICES, C_IMAGES, C_IMAGE_COUNT,
    C_LAT_MEAN, C_LAT_MEDIAN, C_LAT_STD, C_LAT_N,
    C_INPASS_MEDIAN, C_INPASS_MEAN, C_INPASS_STD, C_INPASS_N,
    C_POWER_PARAM, C_POWER_MEAN, C_POWER_MEDIAN, C_POWER_STD, C_POWER_N, C_POWER_WINDOWS,
    C_POWER_NEFF, C_POWER_CORR, C_POWER_CI_LO, C_POWER_CI_HI, C_POWER_CI_METHOD, C_TAU, C_TAU_FROM,
    C_TIME_PER_CALL, C_ENERGY_GROSS, C_ENERGY_NET, C_IDLE,
    C_CLOSURE_RATIO, C_CLOSURE_IN_PASS, C_E2E_MEDIAN,
    C_COUNT
};

static const char *const column_names[] = {
    "mode", "device", "network", "layer", "layer_index", "layer_path", "layer_type", "input_shape",
    "output_shape", "params", "macs", "kernels", "kernel_choices", "images", "image_count",
    "latency_mean_s", "latency_median_s", "latency_std_s", "latency_n",
    "latency_in_pass_median_s", "latency_in_pass_mean_s", "latency_in_pass_std_s", "latency_in_pass_n",
    "power_param", "power_mean_mw", "power_median_mw", "power_std_mw", "power_n", "power_windows",
    "power_n_effective", "power_corrected_mw", "power_corrected_ci95_low_mw",
    "power_corrected_ci95_high_mw", "power_ci_method", "tau_s", "tau_from",
    "time_per_call_s", "energy_gross_mj", "energy_net_mj", "idle_power_mw",
    "closure_ratio", "closure_in_pass_ratio", "end_to_end_median_s",
};
static_assert(sizeof column_names / sizeof column_names[0] == C_COUNT, "one name per column");

const char *const *jp_export_columns(int *n)
{
    *n = C_COUNT;
    return column_names;
}

typedef struct cell {
    enum { CELL_NONE, CELL_STR, CELL_NUM } kind;
    const char *s; /* CELL_STR: borrowed */
    double v;      /* CELL_NUM */
} cell;

static cell cell_json(const cJSON *j)
{
    if (cJSON_IsNumber(j))
        return (cell){.kind = CELL_NUM, .v = j->valuedouble};
    if (cJSON_IsString(j))
        return (cell){.kind = CELL_STR, .s = j->valuestring};
    return (cell){.kind = CELL_NONE};
}

static cell cell_str(const char *s) { return (cell){.kind = s ? CELL_STR : CELL_NONE, .s = s}; }

/* obj[k1][k2]...: NULL-terminated keys, case-sensitive; NULL when any is absent. */
static const cJSON *at(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    const char *k;
    while (obj && (k = va_arg(ap, const char *)) != NULL)
        obj = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, k) : NULL;
    va_end(ap);
    return obj;
}
#define AT(...) at(__VA_ARGS__, (const char *)NULL)

/* RFC 4180: quoted when it holds a comma, quote, CR or LF, or starts or ends
 * with a space (pandas would keep them, other readers strip them). */
static void csv_field(jp_textbuf *b, const char *s)
{
    size_t n = strlen(s);
    bool quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        jp_textbuf_append(b, s, n);
        return;
    }
    jp_textbuf_puts(b, "\"");
    for (size_t i = 0; i < n; i++)
        jp_textbuf_append(b, s[i] == '"' ? "\"\"" : s + i, s[i] == '"' ? 2 : 1);
    jp_textbuf_puts(b, "\"");
}

static void write_row(jp_textbuf *b, jp_export_format f, const cell *row)
{
    char num[40];
    if (f == JP_EXPORT_JSONL)
        jp_textbuf_puts(b, "{");
    for (int c = 0; c < C_COUNT; c++) {
        if (f == JP_EXPORT_JSONL) {
            jp_textbuf_puts(b, c ? ", " : "");
            jp_textbuf_json_string(b, column_names[c]);
            jp_textbuf_puts(b, ": ");
            if (row[c].kind == CELL_STR)
                jp_textbuf_json_string(b, row[c].s);
            else if (row[c].kind == CELL_NUM)
                jp_textbuf_json_double(b, row[c].v);
            else
                jp_textbuf_puts(b, "null");
        } else {
            jp_textbuf_puts(b, c ? "," : "");
            if (row[c].kind == CELL_STR)
                csv_field(b, row[c].s);
            else if (row[c].kind == CELL_NUM)
                jp_textbuf_puts(b, jp_format_double(row[c].v, num, sizeof num));
        }
    }
    jp_textbuf_puts(b, f == JP_EXPORT_JSONL ? "}\n" : "\n");
}

/* ---- manifests ---- */

void jp_manifests_free(jp_manifests *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->names[i]);
        cJSON_Delete(m->docs[i]);
    }
    free(m->names);
    free(m->docs);
    free(m->dir);
    *m = (jp_manifests){0};
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

jp_status jp_manifests_load(const char *dataset, jp_manifests *m, jp_error *err)
{
    m->dir = jp_strprintf("%s/.jplprof/manifests", dataset);
    if (!m->dir)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    DIR *d = opendir(m->dir);
    if (!d) {
        if (errno == ENOENT)
            return JP_OK; /* none: the join says what is missing */
        return jp_error_set(err, JP_ERR_IO, "%s: %s", m->dir, strerror(errno));
    }
    struct dirent *e;
    size_t cap = 0;
    jp_status st = JP_OK;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "Mode", 4) != 0 || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (m->n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nn = realloc(m->names, cap * sizeof *nn);
            if (!nn) {
                st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
                break;
            }
            m->names = nn;
        }
        if (!(m->names[m->n] = strdup(e->d_name))) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            break;
        }
        m->n++;
    }
    closedir(d);
    if (st != JP_OK)
        return st;
    if (m->n)
        qsort(m->names, m->n, sizeof *m->names, cmp_str);
    m->docs = calloc(m->n ? m->n : 1, sizeof *m->docs);
    if (!m->docs)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++) {
        char *path = jp_strprintf("%s/%s", m->dir, m->names[i]), *text = NULL;
        size_t len = 0;
        if (!path)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        st = jp_file_read_all(path, &text, &len, err);
        if (st == JP_OK) {
            m->docs[i] = cJSON_ParseWithLength(text, len);
            if (!m->docs[i] || !cJSON_IsArray(AT(m->docs[i], "models")))
                st = jp_error_set(err, JP_ERR_FORMAT, "%s: not a jplprof manifest (no \"models\" array)", path);
        }
        free(text);
        free(path);
        if (st != JP_OK)
            return st;
    }
    return JP_OK;
}

const cJSON *jp_manifests_model(const jp_manifests *m, const char *mode, const char *device,
                               const char *network, bool *any)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "Mode%s_%s_", mode, device);
    *any = false;
    for (size_t i = m->n; i-- > 0;) {
        if (strncmp(m->names[i], prefix, strlen(prefix)) != 0)
            continue;
        *any = true;
        const cJSON *model;
        cJSON_ArrayForEach(model, AT(m->docs[i], "models"))
        {
            const cJSON *name = AT(model, "name");
            if (cJSON_IsString(name) && strcmp(name->valuestring, network) == 0 &&
                cJSON_IsArray(AT(model, "layers")))
                return model;
        }
    }
    return NULL;
}

char *jp_manifests_images(const jp_manifests *m, const char *mode, const char *device, const char *network,
                             int *count)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "Mode%s_%s_", mode, device);
    char *names[512];
    int n = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (strncmp(m->names[i], prefix, strlen(prefix)) != 0)
            continue;
        const cJSON *model, *img;
        cJSON_ArrayForEach(model, AT(m->docs[i], "models"))
        {
            const cJSON *name = AT(model, "name");
            if (!cJSON_IsString(name) || strcmp(name->valuestring, network) != 0)
                continue;
            cJSON_ArrayForEach(img, AT(model, "images"))
            {
                const cJSON *s = AT(img, "image");
                if (!cJSON_IsString(s) || n == (int)(sizeof names / sizeof names[0]))
                    continue;
                bool dup = false;
                for (int k = 0; k < n && !dup; k++)
                    dup = strcmp(names[k], s->valuestring) == 0;
                if (!dup)
                    names[n++] = s->valuestring;
            }
        }
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_puts(&b, "");
    for (int k = 0; k < n; k++) {
        jp_textbuf_puts(&b, k ? ";" : "");
        jp_textbuf_puts(&b, names[k]);
    }
    *count = n;
    if (!jp_textbuf_ok(&b)) {
        jp_textbuf_free(&b);
        return NULL;
    }
    char *out = b.data ? b.data : strdup("");
    return out;
}

/* "a;b;c" of a JSON array of strings (kernels, kernel_choices). */
static char *join_strings(const cJSON *arr)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    const cJSON *s;
    int k = 0;
    cJSON_ArrayForEach(s, arr)
    {
        jp_textbuf_puts(&b, k++ ? ";" : "");
        if (cJSON_IsString(s))
            jp_textbuf_puts(&b, s->valuestring);
    }
    if (!jp_textbuf_ok(&b)) {
        jp_textbuf_free(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

/* ---- the join ---- */

typedef struct export_ctx {
    const jp_export_options *opt;
    const char *dataset;
    const char *trtexec_dir;
    jp_manifests man;
    jp_textbuf out; /* csv / jsonl */
    size_t rows, files;
} export_ctx;

static const char *const devices[] = {"cpu", "gpu"};

/* The rail process reported for this (network, device): the one parameter of
 * its "power" layers (export runs process with the default --params). */
static const char *power_param_of(const cJSON *dobj)
{
    const cJSON *layer;
    cJSON_ArrayForEach(layer, AT(dobj, "power"))
    {
        if (cJSON_IsObject(layer) && layer->child)
            return layer->child->string;
    }
    return NULL;
}

static jp_status trtexec_write(export_ctx *x, const char *mode, const char *device, const char *network,
                               const cJSON *dobj, const cJSON *layers, jp_error *err)
{
    /* count: the timed calls per layer (trtexec: iterations); the least, if
     * they differ */
    double count = -1, total_ms = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        const cJSON *key = AT(l, "key");
        const cJSON *n = cJSON_IsString(key) ? AT(dobj, "latency_stats", key->valuestring, "n") : NULL;
        const cJSON *mean = cJSON_IsString(key) ? AT(dobj, "latency", key->valuestring) : NULL;
        if (!cJSON_IsNumber(n) || !cJSON_IsNumber(mean))
            return jp_error_set(err, JP_ERR_MISSING,
                                "Mode%s/%s/latency/%s: layer %s has no latency (trtexec's profile needs "
                                "every layer's; profile with --eval_latency)",
                                mode, device, network, cJSON_IsString(key) ? key->valuestring : "?");
        if (count < 0 || n->valuedouble < count)
            count = n->valuedouble;
    }
    cJSON_ArrayForEach(l, layers)
    total_ms += AT(dobj, "latency", AT(l, "key")->valuestring)->valuedouble * 1e3 * count;
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_puts(&b, "[\n  {\"count\": ");
    jp_textbuf_json_double(&b, count < 0 ? 0 : count);
    jp_textbuf_puts(&b, "}");
    cJSON_ArrayForEach(l, layers)
    {
        const char *key = AT(l, "key")->valuestring;
        const cJSON *path = AT(l, "path");
        double mean_ms = AT(dobj, "latency", key)->valuedouble * 1e3;
        const cJSON *median = AT(dobj, "latency_stats", key, "median");
        jp_textbuf_puts(&b, ",\n  {\"name\": ");
        jp_textbuf_json_string(&b, cJSON_IsString(path) ? path->valuestring : key);
        jp_textbuf_puts(&b, ", \"timeMs\": ");
        jp_textbuf_json_double(&b, mean_ms * count);
        jp_textbuf_puts(&b, ", \"averageMs\": ");
        jp_textbuf_json_double(&b, mean_ms);
        jp_textbuf_puts(&b, ", \"medianMs\": ");
        jp_textbuf_json_double(&b, cJSON_IsNumber(median) ? median->valuedouble * 1e3 : mean_ms);
        jp_textbuf_puts(&b, ", \"percentage\": ");
        jp_textbuf_json_double(&b, total_ms > 0 ? 100.0 * mean_ms * count / total_ms : 0);
        jp_textbuf_puts(&b, "}");
    }
    jp_textbuf_puts(&b, "\n]\n");
    char *path = jp_strprintf("%s/Mode%s_%s_%s.profile.json", x->trtexec_dir, mode, device, network);
    jp_status st = !jp_textbuf_ok(&b) || !path ? jp_error_set(err, JP_ERR_NOMEM, "out of memory")
                                                : jp_file_write_atomic(path, b.data, b.len, err);
    if (st == JP_OK) {
        x->files++;
        if (x->opt->notify) {
            char line[JP_ERROR_MSG_BYTES];
            snprintf(line, sizeof line, "wrote %s", path);
            x->opt->notify(x->opt->notify_ctx, line);
        }
    }
    free(path);
    jp_textbuf_free(&b);
    return st;
}

static jp_status network_rows(export_ctx *x, const char *mode, const char *device, const char *network,
                              const cJSON *dobj, jp_error *err)
{
    bool any = false;
    const cJSON *model = jp_manifests_model(&x->man, mode, device, network, &any);
    if (!any)
        return jp_error_set(err, JP_ERR_MISSING,
                            "%s: no manifest for Mode%s/%s (export joins the layer table that `jplprof "
                            "profile` records in %s/Mode%s_%s_<start>.json; a dataset the seed tool wrote "
                            "has none: `jplprof layers %s` prints the table)",
                            x->dataset, mode, device, x->man.dir, mode, device, network);
    if (!model)
        return jp_error_set(err, JP_ERR_MISSING,
                            "%s/Mode%s_%s_*.json: no manifest records network '%s' (its layer table is "
                            "missing; was the run that measured it deleted?)",
                            x->man.dir, mode, device, network);
    const cJSON *layers = AT(model, "layers");
    /* every processed layer must be in the table */
    static const char *const keyed[] = {"latency", "power"};
    for (int k = 0; k < 2; k++) {
        const cJSON *pl;
        cJSON_ArrayForEach(pl, AT(dobj, keyed[k]))
        {
            bool found = false;
            const cJSON *l;
            cJSON_ArrayForEach(l, layers)
            {
                const cJSON *key = AT(l, "key");
                if (cJSON_IsString(key) && strcmp(key->valuestring, pl->string) == 0) {
                    found = true;
                    break;
                }
            }
            if (!found)
                return jp_error_set(err, JP_ERR_MISSING,
                                    "Mode%s/%s/%s/%s: layer '%s' is not in the manifest's layer table "
                                    "for %s (%s)",
                                    mode, device, keyed[k], network, pl->string, network, x->man.dir);
        }
    }
    if (x->opt->format == JP_EXPORT_TRTEXEC)
        return trtexec_write(x, mode, device, network, dobj, layers, err);

    int n_images = 0;
    char *images = jp_manifests_images(&x->man, mode, device, network, &n_images);
    if (!images)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    const char *param = power_param_of(dobj);
    const cJSON *lag = param ? AT(dobj, "power_lag", param) : NULL;
    const cJSON *closure = AT(dobj, "closure");
    jp_status st = JP_OK;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        const cJSON *key = AT(l, "key");
        if (!cJSON_IsString(key)) {
            st = jp_error_set(err, JP_ERR_FORMAT, "%s: network %s: a layer without \"key\"", x->man.dir,
                              network);
            break;
        }
        const char *k = key->valuestring;
        char *kernels = join_strings(AT(l, "kernels"));
        char *choices = join_strings(AT(l, "kernel_choices"));
        cell row[C_COUNT] = {{0}};
        row[C_MODE] = cell_str(mode);
        row[C_DEVICE] = cell_str(device);
        row[C_NETWORK] = cell_str(network);
        row[C_LAYER] = cell_str(k);
        row[C_LAYER_INDEX] = cell_json(AT(l, "index"));
        row[C_LAYER_PATH] = cell_json(AT(l, "path"));
        row[C_LAYER_TYPE] = cell_json(AT(l, "type"));
        row[C_INPUT_SHAPE] = cell_json(AT(l, "input"));
        row[C_OUTPUT_SHAPE] = cell_json(AT(l, "output"));
        row[C_PARAMS] = cell_json(AT(l, "params"));
        row[C_MACS] = cell_json(AT(l, "macs"));
        row[C_KERNELS] = cell_str(kernels);
        row[C_KERNEL_CHOICES] = cell_str(choices);
        row[C_IMAGES] = cell_str(images);
        row[C_IMAGE_COUNT] = (cell){.kind = CELL_NUM, .v = n_images};
        row[C_LAT_MEAN] = cell_json(AT(dobj, "latency", k));
        row[C_LAT_MEDIAN] = cell_json(AT(dobj, "latency_stats", k, "median"));
        row[C_LAT_STD] = cell_json(AT(dobj, "latency_stats", k, "std"));
        row[C_LAT_N] = cell_json(AT(dobj, "latency_stats", k, "n"));
        row[C_INPASS_MEDIAN] = cell_json(AT(dobj, "latency_in_pass", k, "median"));
        row[C_INPASS_MEAN] = cell_json(AT(dobj, "latency_in_pass", k, "mean"));
        row[C_INPASS_STD] = cell_json(AT(dobj, "latency_in_pass", k, "std"));
        row[C_INPASS_N] = cell_json(AT(dobj, "latency_in_pass", k, "n"));
        if (param && AT(dobj, "power", k)) {
            const cJSON *ps = AT(dobj, "power_stats", k, param);
            const cJSON *ci = AT(ps, "corrected_ci95");
            row[C_POWER_PARAM] = cell_str(param);
            row[C_POWER_MEAN] = cell_json(AT(dobj, "power", k, param));
            row[C_POWER_MEDIAN] = cell_json(AT(ps, "median"));
            row[C_POWER_STD] = cell_json(AT(ps, "std"));
            row[C_POWER_N] = cell_json(AT(ps, "n"));
            row[C_POWER_WINDOWS] = cell_json(AT(ps, "windows"));
            row[C_POWER_NEFF] = cell_json(AT(ps, "n_effective"));
            row[C_POWER_CORR] = cell_json(AT(dobj, "power_corrected", k, param));
            row[C_POWER_CI_LO] = cell_json(cJSON_IsArray(ci) ? cJSON_GetArrayItem(ci, 0) : NULL);
            row[C_POWER_CI_HI] = cell_json(cJSON_IsArray(ci) ? cJSON_GetArrayItem(ci, 1) : NULL);
            row[C_POWER_CI_METHOD] = cell_json(AT(ps, "ci_method"));
            row[C_TAU] = cell_json(AT(lag, "tau_s"));
            row[C_TAU_FROM] = cell_json(AT(lag, "tau_from"));
            const cJSON *e = AT(dobj, "energy_per_call", k, param);
            row[C_TIME_PER_CALL] = cell_json(AT(e, "time_per_call_s"));
            row[C_ENERGY_GROSS] = cell_json(AT(e, "gross_mj"));
            row[C_ENERGY_NET] = cell_json(AT(e, "net_mj"));
            row[C_IDLE] = cell_json(AT(e, "idle_mw"));
        }
        row[C_CLOSURE_RATIO] = cell_json(AT(closure, "ratio"));
        row[C_CLOSURE_IN_PASS] = cell_json(AT(closure, "in_pass_ratio"));
        row[C_E2E_MEDIAN] = cell_json(AT(closure, "end_to_end_median_s"));
        if (kernels && choices)
            write_row(&x->out, x->opt->format, row);
        else
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        free(kernels);
        free(choices);
        x->rows++;
        if (st != JP_OK)
            break;
    }
    free(images);
    return st;
}

static jp_status on_mode(void *ctx, const char *mode, const cJSON *doc, jp_error *err)
{
    export_ctx *x = ctx;
    const cJSON *net;
    cJSON_ArrayForEach(net, doc)
    {
        for (int d = 0; d < 2; d++) {
            const cJSON *dobj = AT(net, devices[d]);
            if (!dobj)
                continue;
            jp_status st = network_rows(x, mode, devices[d], net->string, dobj, err);
            if (st != JP_OK)
                return st;
        }
    }
    return JP_OK;
}

jp_status jp_export_run(const jp_export_options *opt, jp_error *err)
{
    export_ctx x = {.opt = opt};
    x.dataset = opt->dataset_dir && *opt->dataset_dir ? opt->dataset_dir : "Dataset";
    jp_textbuf_init(&x.out);
    char *trtexec_dir = NULL;
    jp_status st = JP_OK;
    if (!jp_is_dir(x.dataset)) {
        st = jp_error_set(err, JP_ERR_MISSING, "--dataset: '%s' is not a directory", x.dataset);
        goto done;
    }
    if ((st = jp_manifests_load(x.dataset, &x.man, err)) != JP_OK)
        goto done;
    if (opt->format == JP_EXPORT_TRTEXEC) {
        trtexec_dir = opt->out && *opt->out ? strdup(opt->out) : jp_strprintf("%s/Exported", x.dataset);
        if (!trtexec_dir) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = jp_mkdir_p(trtexec_dir, err)) != JP_OK) {
            jp_error_prefix(err, "--out: ");
            goto done;
        }
        x.trtexec_dir = trtexec_dir;
    } else if (opt->format == JP_EXPORT_CSV) {
        for (int c = 0; c < C_COUNT; c++) {
            jp_textbuf_puts(&x.out, c ? "," : "");
            jp_textbuf_puts(&x.out, column_names[c]);
        }
        jp_textbuf_puts(&x.out, "\n");
    }
    jp_process_options po;
    jp_process_options_init(&po);
    po.dataset_dir = x.dataset;
    po.modes = opt->modes;
    po.stats = true;
    po.notify = opt->notify;
    po.notify_ctx = opt->notify_ctx;
    if ((st = jp_process_collect(&po, on_mode, &x, err)) != JP_OK)
        goto done;
    if (!jp_textbuf_ok(&x.out)) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (opt->format != JP_EXPORT_TRTEXEC) {
        if (opt->out && *opt->out) {
            st = jp_file_write_atomic(opt->out, x.out.data, x.out.len, err);
            if (st == JP_OK && opt->notify) {
                char line[JP_ERROR_MSG_BYTES];
                snprintf(line, sizeof line, "wrote %s (%zu rows)", opt->out, x.rows);
                opt->notify(opt->notify_ctx, line);
            }
        } else if (fwrite(x.out.data, 1, x.out.len, stdout) != x.out.len || fflush(stdout) != 0) {
            st = jp_error_set(err, JP_ERR_IO, "standard output: %s", strerror(errno));
        }
    }
done:
    free(trtexec_dir);
    jp_manifests_free(&x.man);
    jp_textbuf_free(&x.out);
    return st;
}
