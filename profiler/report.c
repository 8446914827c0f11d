/*
 * report.c: the HTML report (see report.h).  Layout of a card's chart, in
 * SVG user units: one row of ROW_H per layer; the layer path in the first
 * LABEL_W; then the latency bars scaled to the largest median + std; then
 * the power bars scaled to the largest interval's top (or corrected mean).
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "export.h"
#include "fileio.h"

enum { ROW_H = 18, LABEL_W = 150, LAT_X = 160, LAT_W = 280, POW_X = 490, POW_W = 170, CHART_W = 730 };

static void html_text(jp_textbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': jp_textbuf_puts(b, "&amp;"); break;
        case '<': jp_textbuf_puts(b, "&lt;"); break;
        case '>': jp_textbuf_puts(b, "&gt;"); break;
        case '"': jp_textbuf_puts(b, "&quot;"); break;
        default: jp_textbuf_append(b, s, 1);
        }
    }
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static double num(const cJSON *j) { return cJSON_IsNumber(j) ? j->valuedouble : NAN; }

/* "12.3" or "-" */
static void fmt(jp_textbuf *b, double v, const char *f)
{
    if (isfinite(v))
        jp_textbuf_printf(b, f, v);
    else
        jp_textbuf_puts(b, "-");
}

typedef struct report_ctx {
    const jp_report_options *opt;
    const char *dataset;
    jp_manifests man;
    cJSON *cards; /* {network: [{"mode", "device", "doc": dobj copy}]} */
} report_ctx;

static jp_status on_mode(void *ctx, const char *mode, const cJSON *doc, jp_error *err)
{
    report_ctx *x = ctx;
    const cJSON *net;
    cJSON_ArrayForEach(net, doc)
    {
        static const char *const devs[] = {"cpu", "gpu"};
        for (int d = 0; d < 2; d++) {
            const cJSON *dobj = get(net, devs[d]);
            if (!dobj)
                continue;
            bool any = false;
            if (!jp_manifests_model(&x->man, mode, devs[d], net->string, &any))
                return jp_error_set(err, JP_ERR_MISSING,
                                    any ? "%s: no manifest of Mode%s/%s records network '%s' (its layer table)"
                                        : "%s: no manifest for Mode%s/%s (the report names layers from the "
                                          "layer table `jplprof profile` records there; network %s)",
                                    x->man.dir, mode, devs[d], net->string);
            cJSON *list = cJSON_GetObjectItemCaseSensitive(x->cards, net->string);
            if (!list)
                list = cJSON_AddArrayToObject(x->cards, net->string);
            cJSON *card = cJSON_CreateObject();
            if (!list || !card)
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            cJSON_AddItemToArray(list, card);
            cJSON_AddStringToObject(card, "mode", mode);
            cJSON_AddStringToObject(card, "device", devs[d]);
            cJSON *copy = cJSON_Duplicate(dobj, true);
            if (!copy || !cJSON_AddItemToObject(card, "doc", copy))
                return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        }
    }
    return JP_OK;
}

/* The manifest's "power" of the latest run of (mode, device). */
static const cJSON *manifest_power(const jp_manifests *m, const char *mode, const char *device)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "Mode%s_%s_", mode, device);
    for (size_t i = m->n; i-- > 0;)
        if (strncmp(m->names[i], prefix, strlen(prefix)) == 0)
            return get(m->docs[i], "power");
    return NULL;
}

static void card_html(jp_textbuf *b, report_ctx *x, const char *network, const cJSON *card)
{
    const char *mode = get(card, "mode")->valuestring, *device = get(card, "device")->valuestring;
    const cJSON *d = get(card, "doc");
    bool any;
    const cJSON *layers = get(jp_manifests_model(&x->man, mode, device, network, &any), "layers");
    int n_images = 0;
    char *images = jp_manifests_images(&x->man, mode, device, network, &n_images);
    const cJSON *power = manifest_power(&x->man, mode, device);
    const cJSON *pl = get(d, "power_lag");
    const char *rail = pl && pl->child ? pl->child->string : NULL;
    int n = cJSON_GetArraySize(layers);
    double lat_max = 0, pow_max = 0, lat_sum = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        const char *k = get(l, "key")->valuestring;
        const cJSON *ls = get(get(d, "latency_stats"), k);
        double med = num(get(ls, "median")), sd = num(get(ls, "std"));
        if (isfinite(med))
            lat_max = fmax(lat_max, med + (isfinite(sd) ? sd : 0));
        double mean = num(get(get(d, "latency"), k));
        if (isfinite(mean))
            lat_sum += mean;
        if (rail) {
            const cJSON *ci = get(get(get(get(d, "power_stats"), k), rail), "corrected_ci95");
            double pc = num(get(get(get(d, "power_corrected"), k), rail));
            double hi = num(cJSON_GetArrayItem(ci, 1));
            pow_max = fmax(pow_max, isfinite(hi) ? hi : isfinite(pc) ? pc : 0);
        }
    }
    jp_textbuf_printf(b, "<section class=\"card\"><h3>Mode %s &middot; %s</h3>\n<p class=\"meta\">images: ", mode,
                      device);
    html_text(b, images && *images ? images : "(none recorded)");
    const cJSON *desc = get(power, "describe"), *src = get(power, "source");
    jp_textbuf_puts(b, "<br>power source: ");
    html_text(b, cJSON_IsString(desc) ? desc->valuestring : cJSON_IsString(src) ? src->valuestring : "not recorded");
    if (rail) {
        jp_textbuf_puts(b, "; rail ");
        html_text(b, rail);
        const cJSON *lag = get(pl, rail);
        jp_textbuf_puts(b, ", &tau; ");
        fmt(b, num(get(lag, "tau_s")), "%.3g s");
        jp_textbuf_puts(b, " (");
        const cJSON *from = get(lag, "tau_from");
        html_text(b, cJSON_IsString(from) ? from->valuestring : "?");
        jp_textbuf_puts(b, ")");
    }
    const cJSON *cl = get(d, "closure");
    jp_textbuf_puts(b, "<br>closure (isolated medians summed / end-to-end): ");
    fmt(b, num(get(cl, "ratio")), "%.3f");
    jp_textbuf_puts(b, "; in-pass: ");
    fmt(b, num(get(cl, "in_pass_ratio")), "%.3f");
    jp_textbuf_puts(b, "; end-to-end median ");
    fmt(b, num(get(cl, "end_to_end_median_s")) * 1e3, "%.3f ms");
    jp_textbuf_puts(b, "</p>\n");

    int h = (n + 2) * ROW_H;
    jp_textbuf_printf(b, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
                         "xmlns=\"http://www.w3.org/2000/svg\">\n", CHART_W, h, CHART_W, h);
    jp_textbuf_printf(b, "<text x=\"%d\" y=\"12\" class=\"hd\">latency, isolated median &#177; std (max %.3g ms)</text>",
                      LAT_X, lat_max * 1e3);
    if (rail)
        jp_textbuf_printf(b, "<text x=\"%d\" y=\"12\" class=\"hd\">power, corrected, 95%% interval (mW)</text>", POW_X);
    jp_textbuf_puts(b, "\n");
    int row = 0;
    cJSON_ArrayForEach(l, layers)
    {
        const char *k = get(l, "key")->valuestring;
        const cJSON *path = get(l, "path"), *type = get(l, "type");
        const char *ps = cJSON_IsString(path) ? path->valuestring : k;
        const char *ts = cJSON_IsString(type) ? type->valuestring : "?";
        const cJSON *ls = get(get(d, "latency_stats"), k);
        double med = num(get(ls, "median")), sd = num(get(ls, "std")), mean = num(get(get(d, "latency"), k));
        double share = lat_sum > 0 && isfinite(mean) ? 100 * mean / lat_sum : NAN;
        double pc = NAN, lo = NAN, hi = NAN, eg = NAN, en = NAN;
        if (rail) {
            const cJSON *ci = get(get(get(get(d, "power_stats"), k), rail), "corrected_ci95");
            pc = num(get(get(get(d, "power_corrected"), k), rail));
            lo = num(cJSON_GetArrayItem(ci, 0)), hi = num(cJSON_GetArrayItem(ci, 1));
            const cJSON *e = get(get(get(d, "energy_per_call"), k), rail);
            eg = num(get(e, "gross_mj")), en = num(get(e, "net_mj"));
        }
        int y = (row + 1) * ROW_H;
        jp_textbuf_printf(b, "<text x=\"0\" y=\"%d\" class=\"lb\">%s ", y + 12, k);
        html_text(b, ps);
        jp_textbuf_puts(b, "</text>");
        double w = lat_max > 0 && isfinite(med) ? med / lat_max * LAT_W : 0;
        jp_textbuf_printf(b, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"%d\"><title>", LAT_X,
                          y + 3, w, ROW_H - 6);
        jp_textbuf_puts(b, "layer ");
        html_text(b, k);
        jp_textbuf_puts(b, ": ");
        html_text(b, ps);
        jp_textbuf_puts(b, " (");
        html_text(b, ts);
        jp_textbuf_puts(b, ")\nlatency median ");
        fmt(b, med * 1e3, "%.4g ms");
        jp_textbuf_puts(b, ", std ");
        fmt(b, sd * 1e3, "%.3g ms");
        jp_textbuf_puts(b, ", share ");
        fmt(b, share, "%.1f %%");
        if (rail) {
            jp_textbuf_puts(b, "\npower ");
            fmt(b, pc, "%.1f mW");
            jp_textbuf_puts(b, " [");
            fmt(b, lo, "%.1f");
            jp_textbuf_puts(b, ", ");
            fmt(b, hi, "%.1f");
            jp_textbuf_puts(b, "]\nenergy per call ");
            fmt(b, eg, "%.4g mJ");
            jp_textbuf_puts(b, " (net of idle ");
            fmt(b, en, "%.4g mJ");
            jp_textbuf_puts(b, ")");
        }
        jp_textbuf_puts(b, "</title></rect>");
        if (lat_max > 0 && isfinite(med) && isfinite(sd)) {
            double x0 = LAT_X + fmax(0, med - sd) / lat_max * LAT_W, x1 = LAT_X + (med + sd) / lat_max * LAT_W;
            jp_textbuf_printf(b, "<line class=\"wh\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%d\" y2=\"%d\"/>", x0, x1,
                              y + ROW_H / 2, y + ROW_H / 2);
        }
        jp_textbuf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"sh\">", LAT_X + LAT_W + 4, y + 12);
        fmt(b, share, "%.1f%%");
        jp_textbuf_puts(b, "</text>");
        if (rail && pow_max > 0 && isfinite(pc)) {
            jp_textbuf_printf(b, "<rect class=\"pbar\" x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"%d\"><title>", POW_X,
                              y + 3, pc / pow_max * POW_W, ROW_H - 6);
            html_text(b, ps);
            jp_textbuf_puts(b, " (");
            html_text(b, ts);
            jp_textbuf_puts(b, "): ");
            fmt(b, pc, "%.1f mW");
            jp_textbuf_puts(b, "</title></rect>");
            if (isfinite(lo) && isfinite(hi))
                jp_textbuf_printf(b, "<line class=\"wh\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%d\" y2=\"%d\"/>",
                                  POW_X + fmax(0, lo) / pow_max * POW_W, POW_X + hi / pow_max * POW_W, y + ROW_H / 2,
                                  y + ROW_H / 2);
            jp_textbuf_printf(b, "<text x=\"%d\" y=\"%d\" class=\"sh\">", POW_X + POW_W + 4, y + 12);
            fmt(b, eg, "%.3g mJ");
            jp_textbuf_puts(b, "</text>");
        }
        jp_textbuf_puts(b, "\n");
        row++;
    }
    jp_textbuf_puts(b, "</svg>\n<table><tr><th>layer</th><th>path</th><th>type</th><th>MACs</th>"
                       "<th>latency median (ms)</th><th>std (ms)</th><th>share</th><th>power (mW)</th>"
                       "<th>95% interval</th><th>energy/call (mJ)</th><th>net (mJ)</th></tr>\n");
    cJSON_ArrayForEach(l, layers)
    {
        const char *k = get(l, "key")->valuestring;
        const cJSON *ls = get(get(d, "latency_stats"), k);
        double mean = num(get(get(d, "latency"), k));
        jp_textbuf_puts(b, "<tr><td>");
        html_text(b, k);
        jp_textbuf_puts(b, "</td><td>");
        html_text(b, cJSON_IsString(get(l, "path")) ? get(l, "path")->valuestring : "");
        jp_textbuf_puts(b, "</td><td>");
        html_text(b, cJSON_IsString(get(l, "type")) ? get(l, "type")->valuestring : "");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, num(get(l, "macs")), "%.0f");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, num(get(ls, "median")) * 1e3, "%.4g");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, num(get(ls, "std")) * 1e3, "%.3g");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, lat_sum > 0 ? 100 * mean / lat_sum : NAN, "%.1f%%");
        const cJSON *ci = rail ? get(get(get(get(d, "power_stats"), k), rail), "corrected_ci95") : NULL;
        const cJSON *e = rail ? get(get(get(d, "energy_per_call"), k), rail) : NULL;
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, rail ? num(get(get(get(d, "power_corrected"), k), rail)) : NAN, "%.1f");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        if (isfinite(num(cJSON_GetArrayItem(ci, 0))))
            jp_textbuf_printf(b, "%.1f&ndash;%.1f", num(cJSON_GetArrayItem(ci, 0)), num(cJSON_GetArrayItem(ci, 1)));
        else
            jp_textbuf_puts(b, "-");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, num(get(e, "gross_mj")), "%.4g");
        jp_textbuf_puts(b, "</td><td class=\"n\">");
        fmt(b, num(get(e, "net_mj")), "%.4g");
        jp_textbuf_puts(b, "</td></tr>\n");
    }
    jp_textbuf_puts(b, "</table></section>\n");
    free(images);
}

/* The sensor's calibration: per rail its fitted tau and the first-order
 * step response 1 - exp(-t/tau) that tau implies (the model, not samples). */
static void calibration_html(jp_textbuf *b, const char *dataset)
{
    char *path = jp_strprintf("%s/.jplprof/calibration.json", dataset), *text = NULL;
    size_t len = 0;
    jp_error ignored = {0};
    cJSON *cal = NULL;
    if (path && jp_file_read_all(path, &text, &len, &ignored) == JP_OK)
        cal = cJSON_ParseWithLength(text, len);
    const cJSON *rails = get(cal, "rails");
    if (cJSON_IsObject(rails) && rails->child) {
        jp_textbuf_puts(b, "<h2>Power sensor calibration</h2><p class=\"meta\">");
        html_text(b, path);
        jp_textbuf_puts(b, " (jplprof calibrate): the fitted first-order step response per rail</p>\n");
        jp_textbuf_puts(b, "<svg class=\"chart\" viewBox=\"0 0 420 160\" width=\"420\" height=\"160\" "
                           "xmlns=\"http://www.w3.org/2000/svg\"><line class=\"ax\" x1=\"40\" y1=\"130\" x2=\"400\" "
                           "y2=\"130\"/><line class=\"ax\" x1=\"40\" y1=\"10\" x2=\"40\" y2=\"130\"/>");
        double tmax = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, rails) tmax = fmax(tmax, num(get(r, "tau_s")));
        tmax = tmax > 0 ? 5 * tmax : 1;
        int k = 0;
        cJSON_ArrayForEach(r, rails)
        {
            double tau = num(get(r, "tau_s"));
            if (!isfinite(tau))
                continue;
            jp_textbuf_printf(b, "<polyline class=\"c%d\" fill=\"none\" points=\"", k % 4);
            for (int i = 0; i <= 60; i++) {
                double t = tmax * i / 60.0, v = tau > 0 ? 1 - exp(-t / tau) : 1;
                jp_textbuf_printf(b, "%.1f,%.1f ", 40 + 360 * t / tmax, 130 - 110 * v);
            }
            jp_textbuf_puts(b, "\"><title>");
            html_text(b, r->string);
            jp_textbuf_printf(b, ": tau %.4g s</title></polyline><text x=\"250\" y=\"%d\" class=\"c%dt\">", tau,
                              90 + 14 * k, k % 4);
            html_text(b, r->string);
            jp_textbuf_printf(b, " &tau; = %.4g s</text>", tau);
            k++;
        }
        jp_textbuf_printf(b, "<text x=\"40\" y=\"148\" class=\"sh\">0</text><text x=\"370\" y=\"148\" "
                             "class=\"sh\">%.3g s</text></svg>\n<table><tr><th>rail</th><th>&tau; (s)</th><th>fits</th>"
                             "<th>noise</th><th>LSB</th><th>update period (s)</th><th>idle (mW)</th><th>busy (mW)"
                             "</th></tr>\n", tmax);
        cJSON_ArrayForEach(r, rails)
        {
            jp_textbuf_puts(b, "<tr><td>");
            html_text(b, r->string);
            jp_textbuf_puts(b, "</td><td class=\"n\">");
            fmt(b, num(get(r, "tau_s")), "%.4g");
            jp_textbuf_printf(b, "</td><td>%s</td><td class=\"n\">", cJSON_IsTrue(get(r, "fits")) ? "yes" : "no");
            fmt(b, num(get(r, "noise")), "%.3g");
            jp_textbuf_puts(b, "</td><td class=\"n\">");
            fmt(b, num(get(r, "lsb")), "%.3g");
            jp_textbuf_puts(b, "</td><td class=\"n\">");
            fmt(b, num(get(r, "update_period_s")), "%.3g");
            jp_textbuf_puts(b, "</td><td class=\"n\">");
            fmt(b, num(get(r, "idle_mw")), "%.1f");
            jp_textbuf_puts(b, "</td><td class=\"n\">");
            fmt(b, num(get(r, "busy_mw")), "%.1f");
            jp_textbuf_puts(b, "</td></tr>\n");
        }
        jp_textbuf_puts(b, "</table>\n");
    }
    cJSON_Delete(cal);
    free(text);
    free(path);
}

static const char css[] =
    "body{font:13px/1.4 sans-serif;margin:16px;color:#222;background:#fff}"
    "h1{font-size:20px}h2{font-size:17px;margin-top:24px}h3{font-size:14px;margin:4px 0}"
    ".row{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #ccc;padding:8px;border-radius:4px}"
    ".meta{color:#555;font-size:12px;max-width:730px}"
    ".bar{fill:#3b7dd8}.pbar{fill:#e08a2c}.wh{stroke:#111;stroke-width:1.5}.ax{stroke:#888}"
    ".lb{font-size:11px}.hd{font-size:11px;font-weight:bold}.sh{font-size:10px;fill:#444}"
    ".c0{stroke:#3b7dd8;stroke-width:2}.c1{stroke:#e08a2c;stroke-width:2}.c2{stroke:#2ca05a;stroke-width:2}"
    ".c3{stroke:#a03ca0;stroke-width:2}.c0t{fill:#3b7dd8}.c1t{fill:#e08a2c}.c2t{fill:#2ca05a}.c3t{fill:#a03ca0}"
    "table{border-collapse:collapse;font-size:11px;margin-top:6px}td,th{border:1px solid #ddd;padding:1px 4px}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}";

jp_status jp_report_run(const jp_report_options *opt, jp_error *err)
{
    report_ctx x = {.opt = opt};
    x.dataset = opt->dataset_dir && *opt->dataset_dir ? opt->dataset_dir : "Dataset";
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_status st;
    if (!opt->out || !*opt->out) {
        st = jp_error_set(err, JP_ERR_ARG, "--out: the HTML file to write is required");
        goto done;
    }
    if (!jp_is_dir(x.dataset)) {
        st = jp_error_set(err, JP_ERR_MISSING, "--dataset: '%s' is not a directory", x.dataset);
        goto done;
    }
    if ((st = jp_manifests_load(x.dataset, &x.man, err)) != JP_OK)
        goto done;
    if (!(x.cards = cJSON_CreateObject())) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
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
    jp_textbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>jplprof report: ");
    html_text(&b, x.dataset);
    jp_textbuf_printf(&b, "</title>\n<style>%s</style></head><body>\n<h1>jplprof report: ", css);
    html_text(&b, x.dataset);
    jp_textbuf_puts(&b, "</h1>\n");
    if (opt->note) {
        jp_textbuf_puts(&b, "<p class=\"note\"><b>");
        html_text(&b, opt->note);
        jp_textbuf_puts(&b, "</b></p>\n");
    }
    jp_textbuf_puts(&b, "<p class=\"meta\">Numbers from <code>jplprof process --stats</code>; layer names from the "
                        "profile's manifests. Hover a bar for its layer's path, type and numbers. Whiskers: latency "
                        "&#177; one standard deviation; power: its 95% interval.</p>\n");
    const cJSON *net;
    cJSON_ArrayForEach(net, x.cards)
    {
        jp_textbuf_puts(&b, "<h2>");
        html_text(&b, net->string);
        jp_textbuf_puts(&b, "</h2><div class=\"row\">\n");
        const cJSON *card;
        cJSON_ArrayForEach(card, net) card_html(&b, &x, net->string, card);
        jp_textbuf_puts(&b, "</div>\n");
    }
    calibration_html(&b, x.dataset);
    jp_textbuf_puts(&b, "</body></html>\n");
    if (!jp_textbuf_ok(&b)) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = jp_file_write_atomic(opt->out, b.data, b.len, err)) == JP_OK && opt->notify) {
        char line[JP_ERROR_MSG_BYTES];
        snprintf(line, sizeof line, "wrote %s", opt->out);
        opt->notify(opt->notify_ctx, line);
    }
done:
    cJSON_Delete(x.cards);
    jp_manifests_free(&x.man);
    jp_textbuf_free(&b);
    return st;
}
