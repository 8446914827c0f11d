/*
 * test_process.c: `jplprof process` (profiler/process.h).
 *
 * Builds the same samples twice: dataset A by hand in the seed tool's own
 * raw format, dataset B through the raw-data API (whose power_raw files keep
 * samples outside the windows too, and whose seed-format power files are
 * overwritten with garbage to prove that the power_raw files are the ones
 * read).  Processing both must give byte-identical Mode<M>.json files whose
 * numbers equal the means computed here from the known values.  Then
 * --params, --stats, --modes, re-windowing, and the errors: a malformed seed
 * line named by file and line, a missing parameter, an unknown mode.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "../profiler/fileio.h"
#include "../profiler/process.h"
#include "../profiler/rawdata.h"
#include "jp_test.h"

static char g_root[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *slurp(const char *path)
{
    char *data = NULL;
    jp_error err;
    if (jp_file_read_all(path, &data, NULL, &err) != JP_OK)
        return NULL;
    return data;
}

static void write_file(const char *path, const char *text)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    jp_error err;
    jp_mkdir_p(dir, &err);
    jp_file_write_atomic(path, text, strlen(text), &err);
}

/* ---- the known samples ---- */

#define N_PARAMS 3
#define N_IMAGES 2
static const char *const g_param_names[N_PARAMS] = {"VDD_SYS_CPU", "VDD_SYS_GPU", "VDD_SYS_SOC"};

typedef struct layer_data {
    const char *key;
    double lat[3];
    double pw[N_PARAMS][4]; /* the samples inside the window; NaN: not reported */
} layer_data;

typedef struct case_data {
    int mode;
    const char *device; /* "cpu" | "cuda" */
    const char *network;
    int lt_smpl_count;
    double duration_s, boundary_s;
    const char *rail;
    size_t n_layers;
    layer_data layers[N_IMAGES][4]; /* per image */
} case_data;

static const char *const g_images[N_IMAGES] = {"img1.png", "img2.jpg"};

static const case_data g_cases[] = {
    {0, "cpu", "netA", 3, 5, 1, "VDD_SYS_CPU", 4,
     {{{"0", {0.5, 0.25, 0.125}, {{1151, 1152, 1153, 1160}, {10, 11, 12, 13}, {300, NAN, 302, 303}}},
       {"1", {0.001, 0.002, 0.003}, {{1200.5, 1201, 1202, 1203}, {20, 21, 22, 23}, {310, 311, 312, 313}}},
       {"2", {1.5, 2.5, 3.5}, {{900, 901, 902, 903}, {30, 31, 32, 33}, {320, 321, 322, 323}}},
       {"10", {0.1, 0.2, 0.3}, {{700, 710, 720, 730}, {40, 41, 42, 43}, {330, 331, 332, 333}}}},
      {{"0", {0.75, 0.5, 0.0625}, {{1154, 1155, 1156, 1157}, {14, 15, 16, 17}, {304, 305, 306, 307}}},
       {"1", {0.004, 0.005, 0.006}, {{1204, 1205, 1206, 1207.25}, {24, 25, 26, 27}, {314, 315, 316, 317}}},
       {"2", {4.5, 5.5, 6.5}, {{904, 905, 906, 907}, {34, 35, 36, 37}, {324, 325, 326, 327}}},
       {"10", {0.4, 0.5, 0.6}, {{740, 750, 760, 770}, {44, 45, 46, 47}, {334, 335, 336, 337}}}}}},
    {0, "cuda", "netA", 3, 5, 1, "VDD_SYS_GPU", 2,
     {{{"0", {0.01, 0.02, 0.03}, {{100, 101, 102, 103}, {2000, 2001, 2002, 2003}, {400, 401, 402, 403}}},
       {"1", {0.04, 0.05, 0.06}, {{104, 105, 106, 107}, {2100, 2101, 2102, 2103}, {404, 405, 406, 407}}}},
      {{"0", {0.07, 0.08, 0.09}, {{108, 109, 110, 111}, {2200, 2201, 2202, 2203}, {408, 409, 410, 411}}},
       {"1", {0.1, 0.11, 0.12}, {{112, 113, 114, 115}, {2300, 2301, 2302, 2303}, {412, 413, 414, 415}}}}}},
    {1, "cpu", "netB", 3, 0.4, 0.1, "VDD_SYS_CPU", 2,
     {{{"features.0", {0.3, 0.1, 0.2}, {{500, 501, 502, 503}, {1, 2, 3, 4}, {5, 6, 7, 8}}},
       {"classifier.1", {0.7, 0.8, 0.9}, {{600, 601, 602, 603}, {1, 2, 3, 4}, {5, 6, 7, 8}}}},
      {{"features.0", {0.31, 0.11, 0.21}, {{510, 511, 512, 513}, {1, 2, 3, 4}, {5, 6, 7, 8}}},
       {"classifier.1", {0.71, 0.81, 0.91}, {{610, 611, 612, 613}, {1, 2, 3, 4}, {5, 6, 7, 8}}}}}},
};
#define N_CASES (sizeof g_cases / sizeof g_cases[0])

static const char *dev_dir(const char *device) { return strcmp(device, "cpu") ? "gpu" : "cpu"; }

static void stem_of(const char *image, char *stem, size_t cap)
{
    jp_error err;
    jp_raw_image_stem(image, stem, cap, &err);
}

#define OUTSIDE_VALUE 99999.0 /* samples outside the windows: must never count */

/* Dataset A: the seed's format, written as text here. */
static void build_seed_dataset(const char *out)
{
    for (size_t c = 0; c < N_CASES; c++) {
        const case_data *cd = &g_cases[c];
        for (int im = 0; im < N_IMAGES; im++) {
            char stem[64], path[700], b[40], num[40];
            stem_of(g_images[im], stem, sizeof stem);
            jp_textbuf lat, pw;
            jp_textbuf_init(&lat);
            jp_textbuf_init(&pw);
            for (size_t l = 0; l < cd->n_layers; l++) {
                const layer_data *ld = &cd->layers[im][l];
                jp_textbuf_printf(&lat, "{\"%s\": [", ld->key);
                for (int k = 0; k < 3; k++)
                    jp_textbuf_printf(&lat, "%s%s", k ? ", " : "",
                                      jp_format_double(ld->lat[k], num, sizeof num));
                jp_textbuf_puts(&lat, "]}\n");
                jp_textbuf_printf(&pw, "{\"%s\": {", ld->key);
                for (int p = 0; p < N_PARAMS; p++) {
                    /* the seed's file: f x b lines of the window's boundaries at each
                     * end, which its processData.py drops by index (and must never
                     * count), around the kept samples */
                    size_t trim = jp_raw_seed_trim(50, cd->boundary_s);
                    jp_textbuf_printf(&pw, "%s\"%s\": [", p ? ", " : "", g_param_names[p]);
                    for (size_t k = 0; k < trim; k++)
                        jp_textbuf_printf(&pw, "%.0f, ", OUTSIDE_VALUE);
                    for (int k = 0; k < 4; k++)
                        jp_textbuf_printf(&pw, "%s%s", k ? ", " : "",
                                          isnan(ld->pw[p][k])
                                              ? "null"
                                              : jp_format_double(ld->pw[p][k], num, sizeof num));
                    for (size_t k = 0; k < trim; k++)
                        jp_textbuf_printf(&pw, ", %.0f", OUTSIDE_VALUE);
                    jp_textbuf_puts(&pw, "]");
                }
                jp_textbuf_puts(&pw, "}}\n");
            }
            snprintf(path, sizeof path, "%s/Mode%d/%s/latency/%s/%s_sc_%d.json", out, cd->mode,
                     dev_dir(cd->device), cd->network, stem, cd->lt_smpl_count);
            write_file(path, lat.data);
            snprintf(path, sizeof path, "%s/Mode%d/%s/power/%s/%s_sf_50_sb_%s.json", out, cd->mode,
                     dev_dir(cd->device), cd->network, stem,
                     jp_raw_format_setting(cd->boundary_s, b, sizeof b));
            write_file(path, pw.data);
            jp_textbuf_free(&lat);
            jp_textbuf_free(&pw);
        }
    }
}

#define NS_PER_S 1000000000LL

/* Dataset B: the same samples through the raw-data API, with extra samples
 * between the layers and inside the boundaries. */
static jp_status build_api_dataset(const char *out, jp_error *err)
{
    jp_raw_param params[N_PARAMS];
    for (int p = 0; p < N_PARAMS; p++)
        params[p] = (jp_raw_param){g_param_names[p], "mW"};
    for (size_t c = 0; c < N_CASES; c++) {
        const case_data *cd = &g_cases[c];
        for (int im = 0; im < N_IMAGES; im++) {
            jp_raw_options o = {0};
            o.out_dir = out;
            o.mode = cd->mode;
            o.device = cd->device;
            o.network = cd->network;
            o.image = g_images[im];
            o.eval_latency = true;
            o.lt_smpl_count = cd->lt_smpl_count;
            o.eval_tgr = true;
            o.tgr_smpl_duration_s = cd->duration_s;
            o.tgr_smpl_boundary_s = cd->boundary_s;
            o.tgr_interval_ms = 20;
            o.power_source = "tegrastats";
            o.device_rail = cd->rail;
            o.params = params;
            o.n_params = N_PARAMS;
            o.profile_start_ns = 7 * NS_PER_S + 123;
            jp_raw *raw = NULL;
            jp_status st = jp_raw_open(&raw, &o, err);
            if (st != JP_OK)
                return st;
            int64_t dur = jp_raw_seconds_to_ns(cd->duration_s);
            int64_t bnd = jp_raw_seconds_to_ns(cd->boundary_s);
            int64_t t = o.profile_start_ns + 1000;
            double outside[N_PARAMS] = {OUTSIDE_VALUE, OUTSIDE_VALUE, OUTSIDE_VALUE};
            for (size_t l = 0; st == JP_OK && l < cd->n_layers; l++) {
                const layer_data *ld = &cd->layers[im][l];
                int64_t start = t + 5000, end = start + dur;
                /* between layers, and just inside each boundary */
                int64_t extra[3] = {t, start + bnd - 1, end - bnd + 1};
                st = jp_raw_add_power_samples(raw, &extra[0], outside, 1, err);
                if (st == JP_OK)
                    st = jp_raw_add_power_samples(raw, &extra[1], outside, 1, err);
                /* the four in-window samples: on both edges and between */
                for (int k = 0; st == JP_OK && k < 4; k++) {
                    int64_t ts = start + bnd + (end - bnd - (start + bnd)) * k / 3;
                    double v[N_PARAMS];
                    for (int p = 0; p < N_PARAMS; p++)
                        v[p] = ld->pw[p][k];
                    st = jp_raw_add_power_samples(raw, &ts, v, 1, err);
                }
                if (st == JP_OK)
                    st = jp_raw_add_power_samples(raw, &extra[2], outside, 1, err);
                if (st == JP_OK)
                    st = jp_raw_add_power_window(raw, ld->key, 0, start, start, end, 42, err);
                if (st == JP_OK)
                    st = jp_raw_add_latency(raw, ld->key, ld->lat, 3, err);
                if (st == JP_OK)
                    st = jp_raw_flush(raw, err);
                t = end + 10000;
            }
            /* the seed-format power file must not be what process reads */
            if (st == JP_OK)
                write_file(jp_raw_path(raw, JP_RAW_POWER), "garbage, not JSON\n");
            jp_raw_close(raw);
            if (st != JP_OK)
                return st;
        }
    }
    return JP_OK;
}

/* The mean process must give: all samples of all images, in image order. */
static double expected_mean(const case_data *cd, size_t layer, int param /* -1: latency */,
                            size_t *n_out)
{
    double sum = 0;
    size_t n = 0;
    for (int im = 0; im < N_IMAGES; im++) {
        const layer_data *ld = &cd->layers[im][layer];
        for (int k = 0; k < (param < 0 ? 3 : 4); k++) {
            double v = param < 0 ? ld->lat[k] : ld->pw[param][k];
            if (isnan(v))
                continue;
            sum += v;
            n++;
        }
    }
    if (n_out)
        *n_out = n;
    return sum / (double)n;
}

static jp_status run_process(const char *dataset, const char *out_root, const char *modes,
                             const char *params, bool stats, double boundary, jp_error *err)
{
    jp_process_options o;
    jp_process_options_init(&o);
    o.dataset_dir = dataset;
    o.output_root = out_root;
    o.modes = modes;
    o.params = params;
    o.stats = stats;
    o.boundary_s = boundary;
    return jp_process_run(&o, err);
}

static cJSON *load_json(const char *path)
{
    char *t = slurp(path);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Checks every mean of the default output (device rail, latency). */
static bool check_means(const char *out_root, char *why, size_t cap)
{
    for (size_t c = 0; c < N_CASES; c++) {
        const case_data *cd = &g_cases[c];
        char path[600];
        snprintf(path, sizeof path, "%s/Mode%d.json", out_root, cd->mode);
        cJSON *j = load_json(path);
        const cJSON *dev = jget(jget(j, cd->network), dev_dir(cd->device));
        int rail = strcmp(cd->rail, "VDD_SYS_CPU") == 0 ? 0 : 1;
        for (size_t l = 0; l < cd->n_layers; l++) {
            const char *key = cd->layers[0][l].key;
            const cJSON *lat = jget(jget(dev, "latency"), key);
            const cJSON *pw = jget(jget(jget(dev, "power"), key), cd->rail);
            double el = expected_mean(cd, l, -1, NULL), ep = expected_mean(cd, l, rail, NULL);
            if (!cJSON_IsNumber(lat) || lat->valuedouble != el || !cJSON_IsNumber(pw) ||
                pw->valuedouble != ep || cJSON_GetArraySize(jget(jget(dev, "power"), key)) != 1) {
                snprintf(why, cap, "%s: %s/%s layer %s: latency %.17g (want %.17g), %s %.17g "
                         "(want %.17g)", path, cd->network, dev_dir(cd->device), key,
                         lat ? lat->valuedouble : NAN, el, cd->rail, pw ? pw->valuedouble : NAN,
                         ep);
                cJSON_Delete(j);
                return false;
            }
        }
        cJSON_Delete(j);
    }
    return true;
}

/* Removes the keys that exist only where samples carry times (the
 * power_raw files of dataset B): the lag model, energy per call and the
 * windows' uncertainty; the formats agree on everything else. */
static void strip_lag_keys(cJSON *j)
{
    for (cJSON *net = j ? j->child : NULL; net; net = net->next)
        for (cJSON *dev = net->child; dev; dev = dev->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(dev, "power_corrected");
            cJSON_DeleteItemFromObjectCaseSensitive(dev, "power_lag");
            cJSON_DeleteItemFromObjectCaseSensitive(dev, "energy_per_call");
            cJSON *ps = cJSON_GetObjectItemCaseSensitive(dev, "power_stats");
            for (cJSON *layer = ps ? ps->child : NULL; layer; layer = layer->next)
                for (cJSON *param = layer->child; param; param = param->next) {
                    const char *extra[] = {"windows", "n_effective", "corrected_ci95", "ci_method"};
                    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++)
                        cJSON_DeleteItemFromObjectCaseSensitive(param, extra[k]);
                }
        }
}

/* The two processed files agree byte for byte on the seed's keys and the
 * --stats keys (printed in the same order by the same code). */
static bool same_files(const char *a, const char *b)
{
    cJSON *x = load_json(a), *y = load_json(b);
    strip_lag_keys(x);
    strip_lag_keys(y);
    char *px = x ? cJSON_PrintUnformatted(x) : NULL, *py = y ? cJSON_PrintUnformatted(y) : NULL;
    bool same = px && py && strcmp(px, py) == 0;
    free(px);
    free(py);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

static void test_parse_args(void)
{
    jp_process_options o;
    jp_error err = {0};
    jp_process_options_init(&o);
    char *argv1[] = {"process", "--modes", "0", "1", "--params", "VDD_SYS_CPU", "VDD_SYS_SOC",
                     "--output-file-root", "out", "--stats", "--dataset", "D", NULL};
    jp_status st = jp_process_parse_args(12, argv1, &o, &err);
    JP_CHECK("args: space-separated lists, dash names",
             st == JP_OK && strcmp(o.modes, "0,1") == 0 &&
                 strcmp(o.params, "VDD_SYS_CPU,VDD_SYS_SOC") == 0 &&
                 strcmp(o.output_root, "out") == 0 && o.stats && strcmp(o.dataset_dir, "D") == 0,
             "st=%d %s modes=%s params=%s", st, err.msg, o.modes ? o.modes : "-",
             o.params ? o.params : "-");
    jp_process_options_free(&o);

    jp_process_options_init(&o);
    char *argv2[] = {"process", "--output_file_root=R", "--modes=2,3", "--tgr_smpl_boundary",
                     "0.25", NULL};
    st = jp_process_parse_args(5, argv2, &o, &err);
    JP_CHECK("args: seed underscore names, --opt=value, comma lists",
             st == JP_OK && strcmp(o.output_root, "R") == 0 && strcmp(o.modes, "2,3") == 0 &&
                 o.boundary_s == 0.25 && !o.stats && strcmp(o.dataset_dir, "Dataset") == 0,
             "st=%d %s", st, err.msg);
    jp_process_options_free(&o);

    jp_process_options_init(&o);
    char *argv3[] = {"process", "--frobnicate", NULL};
    st = jp_process_parse_args(2, argv3, &o, &err);
    JP_CHECK("args: unknown option named", st == JP_ERR_ARG && strstr(err.msg, "--frobnicate"),
             "st=%d %s", st, err.msg);
    jp_process_options_free(&o);

    jp_process_options_init(&o);
    char *argv4[] = {"process", "--dataset", NULL};
    st = jp_process_parse_args(2, argv4, &o, &err);
    JP_CHECK("args: missing value named", st == JP_ERR_ARG && strstr(err.msg, "--dataset"),
             "st=%d %s", st, err.msg);
    jp_process_options_free(&o);

    jp_process_options_init(&o);
    char *argv5[] = {"process", "--tgr_smpl_boundary", "-1", NULL};
    st = jp_process_parse_args(3, argv5, &o, &err);
    JP_CHECK("args: negative boundary refused", st == JP_ERR_ARG, "st=%d", st);
    jp_process_options_free(&o);

    jp_process_options_init(&o);
    char *argv6[] = {"process", "-h", NULL};
    st = jp_process_parse_args(2, argv6, &o, &err);
    JP_CHECK("args: -h sets help", st == JP_OK && o.help && strstr(jp_process_usage(), "--modes"),
             "st=%d", st);
    jp_process_options_free(&o);
}

typedef struct notes {
    int n;
    char last[1024];
} notes;

static void on_note(void *ctx, const char *line)
{
    notes *n = ctx;
    n->n++;
    snprintf(n->last, sizeof n->last, "%s", line);
}

static void test_same_numbers(void)
{
    char a[300], b[300], oa[300], ob[300], why[1024] = "";
    snprintf(a, sizeof a, "%s/A", g_root);
    snprintf(b, sizeof b, "%s/B", g_root);
    snprintf(oa, sizeof oa, "%s/outA", g_root);
    snprintf(ob, sizeof ob, "%s/outB", g_root);
    jp_error err = {0};
    build_seed_dataset(a);
    jp_status st = build_api_dataset(b, &err);
    JP_CHECK("build the same samples through the API", st == JP_OK, "%s", err.msg);
    if (st != JP_OK)
        return;

    st = run_process(a, oa, NULL, NULL, false, -1, &err);
    JP_CHECK("process the seed-format dataset", st == JP_OK, "%s", err.msg);
    st = run_process(b, ob, NULL, NULL, false, -1, &err);
    JP_CHECK("process the jplprof dataset", st == JP_OK, "%s", err.msg);
    char pa[400], pb[400];
    bool same = true;
    for (int m = 0; m < 2; m++) {
        snprintf(pa, sizeof pa, "%s/Mode%d.json", oa, m);
        snprintf(pb, sizeof pb, "%s/Mode%d.json", ob, m);
        same = same && same_files(pa, pb);
    }
    JP_CHECK("both formats give the same Mode0.json and Mode1.json (but the lag model's keys)", same, "%s differs from %s",
             pa, pb);
    JP_CHECK("means equal the pooled means of the known samples (seed format)",
             check_means(oa, why, sizeof why), "%s", why);
    JP_CHECK("means equal the pooled means of the known samples (jplprof format)",
             check_means(ob, why, sizeof why), "%s", why);

    /* shape: exactly the seed's keys, layers in index order */
    snprintf(pa, sizeof pa, "%s/Mode0.json", oa);
    cJSON *j = load_json(pa);
    const cJSON *net = jget(j, "netA");
    const cJSON *cpu = jget(net, "cpu");
    const cJSON *lat = jget(cpu, "latency");
    bool shape = cJSON_GetArraySize(j) == 1 && cJSON_GetArraySize(net) == 2 &&
                 cJSON_GetArraySize(cpu) == 4 && jget(cpu, "power") && lat &&
                 jget(cpu, "power_corrected") && jget(cpu, "power_lag") &&
                 strcmp(cpu->child->string, "power") == 0 &&
                 strcmp(cpu->child->next->string, "latency") == 0 &&
                 jget(net, "gpu") && cJSON_GetArraySize(lat) == 4 &&
                 strcmp(cJSON_GetArrayItem(lat, 2)->string, "2") == 0 &&
                 strcmp(cJSON_GetArrayItem(lat, 3)->string, "10") == 0 &&
                 jget(jget(jget(jget(net, "gpu"), "power"), "1"), "VDD_SYS_GPU");
    cJSON_Delete(j);
    JP_CHECK("shape: {network: {cpu|gpu: {power, latency, power_corrected, power_lag}}}, layers 0,1,2,10 in "
             "order", shape,
             "unexpected shape in %s", pa);

    /* --params: beside and instead of the rail, and all */
    char oa2[300], ob2[300];
    snprintf(oa2, sizeof oa2, "%s/outA2", g_root);
    snprintf(ob2, sizeof ob2, "%s/outB2", g_root);
    st = run_process(a, oa2, "0", "rail,VDD_SYS_SOC", false, -1, &err);
    jp_status st2 = run_process(b, ob2, "0", "rail,VDD_SYS_SOC", false, -1, &err);
    snprintf(pa, sizeof pa, "%s/Mode0.json", oa2);
    snprintf(pb, sizeof pb, "%s/Mode0.json", ob2);
    j = load_json(pa);
    const cJSON *l0 = jget(jget(jget(jget(j, "netA"), "cpu"), "power"), "0");
    size_t n_soc = 0;
    double soc = expected_mean(&g_cases[0], 0, 2, &n_soc);
    bool ok = st == JP_OK && st2 == JP_OK && cJSON_GetArraySize(l0) == 2 &&
              jget(l0, "VDD_SYS_CPU") && jget(l0, "VDD_SYS_SOC") &&
              jget(l0, "VDD_SYS_SOC")->valuedouble == soc && n_soc == 7 && same_files(pa, pb);
    cJSON_Delete(j);
    JP_CHECK("--params rail,VDD_SYS_SOC: both, nulls skipped, same in both formats", ok,
             "st=%d/%d %s", st, st2, err.msg);

    st = run_process(a, oa2, "0", "VDD_SYS_SOC", false, -1, &err);
    j = load_json(pa);
    l0 = jget(jget(jget(jget(j, "netA"), "gpu"), "power"), "1");
    ok = st == JP_OK && cJSON_GetArraySize(l0) == 1 && jget(l0, "VDD_SYS_SOC");
    cJSON_Delete(j);
    JP_CHECK("--params VDD_SYS_SOC replaces the rail", ok, "st=%d %s", st, err.msg);

    st = run_process(a, oa2, "0", "all", false, -1, &err);
    st2 = run_process(b, ob2, "0", "all", false, -1, &err);
    j = load_json(pa);
    l0 = jget(jget(jget(jget(j, "netA"), "cpu"), "power"), "10");
    ok = st == JP_OK && st2 == JP_OK && cJSON_GetArraySize(l0) == 3 && same_files(pa, pb);
    cJSON_Delete(j);
    JP_CHECK("--params all: every parameter, same in both formats", ok, "st=%d/%d %s", st, st2,
             err.msg);

    st = run_process(a, oa2, "0", "VDD_NOPE", false, -1, &err);
    JP_CHECK("--params with an unknown parameter names it and the folder",
             st == JP_ERR_MISSING && strstr(err.msg, "VDD_NOPE") && strstr(err.msg, "netA") &&
                 strstr(err.msg, "VDD_SYS_SOC"),
             "st=%d %s", st, err.msg);

    /* --stats */
    st = run_process(a, oa2, NULL, NULL, true, -1, &err);
    st2 = run_process(b, ob2, NULL, NULL, true, -1, &err);
    snprintf(pa, sizeof pa, "%s/Mode0.json", oa2);
    snprintf(pb, sizeof pb, "%s/Mode0.json", ob2);
    j = load_json(pa);
    cpu = jget(jget(j, "netA"), "cpu");
    const cJSON *ls = jget(jget(cpu, "latency_stats"), "0");
    const cJSON *ps = jget(jget(jget(cpu, "power_stats"), "0"), "VDD_SYS_CPU");
    /* latency of layer 0: 0.5 0.25 0.125 0.75 0.5 0.0625 -> sorted median (0.25+0.5)/2 */
    double m = expected_mean(&g_cases[0], 0, -1, NULL);
    const double v[6] = {0.5, 0.25, 0.125, 0.75, 0.5, 0.0625};
    double ss = 0;
    for (int k = 0; k < 6; k++)
        ss += (v[k] - m) * (v[k] - m);
    double sd = sqrt(ss / 5);
    ok = st == JP_OK && st2 == JP_OK && ls && jget(ls, "median")->valuedouble == 0.375 &&
         fabs(jget(ls, "std")->valuedouble - sd) <= 1e-15 * sd &&
         jget(ls, "n")->valuedouble == 6 && jget(ps, "n")->valuedouble == 8 &&
         jget(ps, "median")->valuedouble == (1154 + 1155) / 2.0 &&
         jget(jget(cpu, "latency"), "0")->valuedouble == m && same_files(pa, pb);
    cJSON_Delete(j);
    JP_CHECK("--stats: median, std (n-1), n beside the seed's keys, same in both formats", ok,
             "st=%d/%d %s", st, st2, err.msg);
    snprintf(pa, sizeof pa, "%s/Mode1.json", oa2);
    j = load_json(pa);
    ps = jget(jget(jget(jget(jget(j, "netB"), "cpu"), "power_stats"), "classifier.1"),
              "VDD_SYS_CPU");
    ok = ps && jget(ps, "n")->valuedouble == 8;
    cJSON_Delete(j);
    JP_CHECK("--stats on op-named layers", ok, "no stats for classifier.1");

    /* --modes */
    char oa3[300];
    snprintf(oa3, sizeof oa3, "%s/outA3", g_root);
    st = run_process(a, oa3, "1", NULL, false, -1, &err);
    snprintf(pa, sizeof pa, "%s/Mode1.json", oa3);
    snprintf(pb, sizeof pb, "%s/Mode0.json", oa3);
    JP_CHECK("--modes 1 writes only Mode1.json", st == JP_OK && jp_path_exists(pa) &&
                                                     !jp_path_exists(pb),
             "st=%d %s", st, err.msg);
    st = run_process(a, oa3, "0,7", NULL, false, -1, &err);
    JP_CHECK("--modes with a missing mode names it and the modes found",
             st == JP_ERR_MISSING && strstr(err.msg, "Mode7") && strstr(err.msg, "0, 1"),
             "st=%d %s", st, err.msg);

    /* default output root */
    st = run_process(a, NULL, NULL, NULL, false, -1, &err);
    snprintf(pa, sizeof pa, "%s/Processed/Mode0.json", a);
    JP_CHECK("default output root is <dataset>/Processed", st == JP_OK && jp_path_exists(pa),
             "st=%d %s", st, err.msg);

    /* re-windowing: boundary 0 takes in the two samples inside the
     * boundaries (OUTSIDE_VALUE), not the one between layers */
    st = run_process(b, ob2, "0", NULL, false, 0, &err);
    snprintf(pb, sizeof pb, "%s/Mode0.json", ob2);
    j = load_json(pb);
    const cJSON *p1 = jget(jget(jget(jget(jget(j, "netA"), "cpu"), "power"), "1"), "VDD_SYS_CPU");
    double sum = 0;
    for (int im = 0; im < N_IMAGES; im++) {
        sum += OUTSIDE_VALUE;
        for (int k = 0; k < 4; k++)
            sum += g_cases[0].layers[im][1].pw[0][k];
        sum += OUTSIDE_VALUE;
    }
    ok = st == JP_OK && cJSON_IsNumber(p1) && p1->valuedouble == sum / 12;
    cJSON_Delete(j);
    JP_CHECK("--tgr_smpl_boundary 0 re-windows the jplprof raw files", ok, "st=%d %s got %.17g",
             st, err.msg, p1 ? p1->valuedouble : NAN);
    st = run_process(a, oa3, "0", NULL, false, 0, &err);
    JP_CHECK("--tgr_smpl_boundary on seed-format files is refused, naming the file",
             st == JP_ERR_ARG && strstr(err.msg, "_sf_50_sb_1.json"), "st=%d %s", st, err.msg);
}

static void test_errors(void)
{
    jp_error err = {0};
    char d[300], o[300], path[600];
    snprintf(d, sizeof d, "%s/bad", g_root);
    snprintf(o, sizeof o, "%s/outbad", g_root);
    snprintf(path, sizeof path, "%s/Mode2/cpu/latency/net/img_sc_3.json", d);
    write_file(path, "{\"0\": [0.1, 0.2, 0.3]}\n{\"1\": [0.1, 0.2\n");
    jp_status st = run_process(d, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a malformed seed line is named by file and line",
             st == JP_ERR_FORMAT && strstr(err.msg, "img_sc_3.json:2"), "st=%d %s", st, err.msg);

    write_file(path, "{\"0\": [0.1, 0.2, 0.3]}\n{\"0\": [0.1, 0.2]}\n");
    st = run_process(d, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a layer twice in one file is refused", st == JP_ERR_FORMAT &&
                                                         strstr(err.msg, "img_sc_3.json:2") &&
                                                         strstr(err.msg, "line 1"),
             "st=%d %s", st, err.msg);

    write_file(path, "{\"0\": [0.1, 0.2, 0.3], \"0\": [1]}\n");
    st = run_process(d, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a duplicate key is refused", st == JP_ERR_FORMAT && strstr(err.msg, "duplicate"),
             "st=%d %s", st, err.msg);

    write_file(path, "{\"0\": [0.1, \"x\"]}\n");
    st = run_process(d, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a non-numeric latency is refused", st == JP_ERR_FORMAT && strstr(err.msg, ":1"),
             "st=%d %s", st, err.msg);

    /* seed power files with a per-core list parameter (not averageable) */
    write_file(path, "{\"0\": [0.5]}\n");
    snprintf(path, sizeof path, "%s/Mode2/cpu/power/net/img_sf_1_sb_1.json", d);
    write_file(path, "{\"0\": {\"VDD_SYS_CPU\": [5, 1000, 1002, 7], \"CPU\": [[1, 2], [3, 4], [5, 6], [7, 8]]}}\n");
    st = run_process(d, o, NULL, NULL, false, -1, &err);
    jp_status st2 = run_process(d, o, NULL, "all", false, -1, &err);
    snprintf(path, sizeof path, "%s/Mode2.json", o);
    cJSON *j = load_json(path);
    const cJSON *l0 = jget(jget(jget(jget(j, "net"), "cpu"), "power"), "0");
    bool ok = st == JP_OK && st2 == JP_OK && cJSON_GetArraySize(l0) == 1 &&
              jget(l0, "VDD_SYS_CPU")->valuedouble == 1001;
    cJSON_Delete(j);
    JP_CHECK("non-numeric parameters stay out of 'all'", ok, "st=%d/%d %s", st, st2, err.msg);
    st = run_process(d, o, NULL, "CPU", false, -1, &err);
    JP_CHECK("asking for a non-numeric parameter names it and where",
             st == JP_ERR_FORMAT && strstr(err.msg, "CPU") && strstr(err.msg, "img_sf_1_sb_1.json:1"),
             "st=%d %s", st, err.msg);

    /* empty raw files: an error naming the file, not a silent {} (issue 14) */
    char ed[300], epath[600];
    snprintf(ed, sizeof ed, "%s/empty_lat", g_root);
    snprintf(epath, sizeof epath, "%s/Mode0/cpu/latency/net/img_sc_3.json", ed);
    write_file(epath, "");
    st = run_process(ed, o, NULL, NULL, false, -1, &err);
    JP_CHECK("an empty latency file is an error naming it",
             st == JP_ERR_FORMAT && strstr(err.msg, epath) && strstr(err.msg, "no layer"), "st=%d %s", st,
             err.msg);
    write_file(epath, "\n  \n\n");
    st = run_process(ed, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a latency file of blank lines is an error naming it",
             st == JP_ERR_FORMAT && strstr(err.msg, epath), "st=%d %s", st, err.msg);
    snprintf(ed, sizeof ed, "%s/empty_pow", g_root);
    snprintf(epath, sizeof epath, "%s/Mode0/cpu/power/net/img_sf_5_sb_1.json", ed);
    write_file(epath, "");
    st = run_process(ed, o, NULL, NULL, false, -1, &err);
    JP_CHECK("an empty seed power file is an error naming it",
             st == JP_ERR_FORMAT && strstr(err.msg, epath) && strstr(err.msg, "no layer"), "st=%d %s", st,
             err.msg);

    snprintf(path, sizeof path, "%s/nonexistent", g_root);
    st = run_process(path, o, NULL, NULL, false, -1, &err);
    JP_CHECK("a missing dataset folder is named", st == JP_ERR_MISSING &&
                                                      strstr(err.msg, "nonexistent"),
             "st=%d %s", st, err.msg);

    /* an empty window gives null and a warning; the rail comes from the file */
    snprintf(d, sizeof d, "%s/orin", g_root);
    jp_raw_param params[2] = {{"VDD_CPU_CV", "mW"}, {"VDD_GPU_SOC", "mW"}};
    jp_raw_options ro = {0};
    ro.out_dir = d;
    ro.mode = 0;
    ro.device = "cpu";
    ro.network = "resnet18";
    ro.image = "x.png";
    ro.eval_tgr = true;
    ro.tgr_smpl_duration_s = 1;
    ro.tgr_smpl_boundary_s = 0.25;
    ro.tgr_interval_ms = 50;
    ro.power_source = "ina3221";
    ro.device_rail = "VDD_CPU_CV";
    ro.params = params;
    ro.n_params = 2;
    ro.profile_start_ns = NS_PER_S;
    jp_raw *raw = NULL;
    st = jp_raw_open(&raw, &ro, &err);
    int64_t t[2] = {NS_PER_S + 500000000, 3 * NS_PER_S};
    double vals[4] = {4000, 5000, 4100, 5100};
    if (st == JP_OK)
        st = jp_raw_add_power_samples(raw, t, vals, 2, &err);
    if (st == JP_OK)
        st = jp_raw_add_power_window(raw, "0", 0, NS_PER_S, NS_PER_S, 2 * NS_PER_S, 9, &err);
    if (st == JP_OK)
        st = jp_raw_add_power_window(raw, "1", 0, 2 * NS_PER_S + 1, 2 * NS_PER_S + 1, 2 * NS_PER_S + 2, 1, &err);
    if (st == JP_OK)
        st = jp_raw_flush(raw, &err);
    jp_raw_close(raw);
    notes nt = {0};
    jp_process_options po;
    jp_process_options_init(&po);
    po.dataset_dir = d;
    po.notify = on_note;
    po.notify_ctx = &nt;
    if (st == JP_OK)
        st = jp_process_run(&po, &err);
    snprintf(path, sizeof path, "%s/Processed/Mode0.json", d);
    j = load_json(path);
    const cJSON *pw = jget(jget(jget(j, "resnet18"), "cpu"), "power");
    ok = st == JP_OK && jget(jget(pw, "0"), "VDD_CPU_CV") &&
         jget(jget(pw, "0"), "VDD_CPU_CV")->valuedouble == 4000 &&
         cJSON_IsNull(jget(jget(pw, "1"), "VDD_CPU_CV")) && nt.n >= 2;
    cJSON_Delete(j);
    JP_CHECK("the device rail comes from the raw file; an empty window is null and warned", ok,
             "st=%d %s; %d notes, last '%s'", st, err.msg, nt.n, nt.last);
}

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(g_root, sizeof g_root, "/tmp/jp_test_process.XXXXXX");
    if (!mkdtemp(g_root)) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_parse_args();
    test_same_numbers();
    test_errors();
    rm_rf(g_root);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "test_process: %.2f s\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return jp_test_exit_code();
}
