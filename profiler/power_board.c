/*
 * power_board.c: which Jetson this is, and which rail is "the device's
 * power" on it (power.h: jp_board_*, jp_power_device_rail,
 * jp_power_choose_device_rail).
 *
 * The table below is the one place that knows rail names per board.  The
 * names come from the boards' INA3221 labels, which tegrastats prints as
 * they are: TX2 VDD_SYS_CPU/VDD_SYS_GPU (the seed's choice), AGX Xavier CPU
 * and GPU, AGX Orin VDD_CPU_CV/VDD_GPU_SOC, the NX and Orin Nano modules one
 * shared VDD_CPU_GPU_CV rail, Nano POM_5V_CPU/POM_5V_GPU, TX1
 * VDD_CPU/VDD_GPU, AGX Thor VDD_CPU_SOC_MSS/VDD_GPU.  Later names in a row
 * are fallbacks for other L4T releases of the same board.
 *
 * Also the parser of `nvpmodel -q` (jp_nvpmodel_parse), the board's power
 * mode.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "power_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct board_row {
    jp_board board;
    const char *name;        /* jp_board_name()                              */
    const char *models[4];   /* case-insensitive substrings of the DT model  */
    const char *cpu_rails[3];
    const char *gpu_rails[3];
} board_row;

/* Most specific first: "Orin Nano" must match before "Nano", "Xavier NX"
 * before "Xavier", "TX2 NX" before "TX2". */
static const board_row rows[] = {
    {JP_BOARD_ORIN_NANO, "orin-nano", {"orin nano"}, {"VDD_CPU_GPU_CV"}, {"VDD_CPU_GPU_CV"}},
    {JP_BOARD_ORIN_NX, "orin-nx", {"orin nx"}, {"VDD_CPU_GPU_CV"}, {"VDD_CPU_GPU_CV"}},
    {JP_BOARD_AGX_ORIN, "agx-orin", {"agx orin", "orin"}, {"VDD_CPU_CV"}, {"VDD_GPU_SOC"}},
    {JP_BOARD_XAVIER_NX, "xavier-nx", {"xavier nx"}, {"VDD_CPU_GPU_CV"}, {"VDD_CPU_GPU_CV"}},
    {JP_BOARD_AGX_XAVIER, "agx-xavier", {"agx xavier", "jetson-agx", "xavier"}, {"CPU", "VDD_CPU"},
     {"GPU", "VDD_GPU"}},
    {JP_BOARD_TX2_NX, "tx2-nx", {"tx2 nx"}, {0}, {0}},
    {JP_BOARD_TX2, "tx2", {"tx2", "quill"}, {"VDD_SYS_CPU", "VDD_CPU"}, {"VDD_SYS_GPU", "VDD_GPU"}},
    {JP_BOARD_TX1, "tx1", {"tx1"}, {"VDD_CPU"}, {"VDD_GPU"}},
    {JP_BOARD_NANO, "nano", {"nano"}, {"POM_5V_CPU"}, {"POM_5V_GPU"}},
    {JP_BOARD_AGX_THOR, "agx-thor", {"thor"}, {"VDD_CPU_SOC_MSS"}, {"VDD_GPU"}},
};
_Static_assert(sizeof rows / sizeof rows[0] == JP_BOARD_COUNT - 1,
               "rows must describe every jp_board but JP_BOARD_UNKNOWN");

static const board_row *row_of(jp_board board)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].board == board)
            return &rows[i];
    return NULL;
}

const char *jp_board_name(jp_board board)
{
    const board_row *r = row_of(board);
    return r ? r->name : "unknown";
}

jp_board jp_board_from_model(const char *model)
{
    if (!model || !*model)
        return JP_BOARD_UNKNOWN;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t k = 0; k < 4 && rows[i].models[k]; k++)
            if (strcasestr(model, rows[i].models[k]))
                return rows[i].board;
    return JP_BOARD_UNKNOWN;
}

jp_board jp_board_detect(const char *root_dir, char *model, size_t model_bytes)
{
    char path[PATH_MAX];
    const char *root = (root_dir && *root_dir) ? root_dir : "/";
    size_t rn = strlen(root);
    if (rn > 0 && root[rn - 1] == '/')
        rn--;
    snprintf(path, sizeof path, "%.*s/proc/device-tree/model", (int)rn, root);
    if (model && model_bytes)
        model[0] = '\0';
    char text[256];
    if (jp_power_read_text(path, text, sizeof text, NULL, NULL) != JP_OK)
        return JP_BOARD_UNKNOWN;
    if (model && model_bytes)
        snprintf(model, model_bytes, "%s", text);
    return jp_board_from_model(text);
}

/* "cpu", "gpu"; "cuda" is the seed's name for the GPU. */
static const char *device_key(const char *device)
{
    if (!device)
        return NULL;
    if (strcmp(device, "cpu") == 0)
        return "cpu";
    if (strcmp(device, "gpu") == 0 || strcmp(device, "cuda") == 0)
        return "gpu";
    return NULL;
}

static const char *const *row_rails(const board_row *r, const char *key)
{
    return strcmp(key, "cpu") == 0 ? r->cpu_rails : r->gpu_rails;
}

const char *jp_power_device_rail(jp_board board, jp_power_kind kind, const char *device)
{
    const char *key = device_key(device);
    if (!key)
        return NULL;
    if (kind == JP_POWER_NVML)
        return strcmp(key, "gpu") == 0 ? "gpu" : NULL;
    if (kind == JP_POWER_RAPL)
        return strcmp(key, "cpu") == 0 ? "package-0" : NULL;
    if (kind != JP_POWER_TEGRASTATS && kind != JP_POWER_INA3221)
        return NULL;
    const board_row *r = row_of(board);
    return r ? row_rails(r, key)[0] : NULL;
}

static bool is_rail(const jp_power_source *src, const char *name, long *index)
{
    long i = jp_power_param_index(src, name);
    if (i < 0 || src->params[i].kind != JP_TGR_RAIL)
        return false;
    *index = i;
    return true;
}

/* "A, B, C" of the source's rails. */
static void list_rails(const jp_power_source *src, char *buf, size_t bytes)
{
    const char *names[JP_TGR_MAX_PARAMS];
    size_t n = jp_power_rails(src, names, JP_TGR_MAX_PARAMS);
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < n && used + 1 < bytes; i++) {
        int w = snprintf(buf + used, bytes - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (n == 0)
        snprintf(buf, bytes, "none");
}

static jp_status chosen(const jp_power_source *src, const char *rail, long index,
                        jp_rail_choice *out, const char *fmt_why, const char *a, const char *b)
{
    (void)src;
    snprintf(out->rail, sizeof out->rail, "%s", rail);
    out->param_index = index;
    snprintf(out->why, sizeof out->why, fmt_why, a, b);
    return JP_OK;
}

jp_status jp_power_choose_device_rail(const jp_power_source *src, const char *device,
                                      const char *override, jp_rail_choice *out, jp_error *err)
{
    if (!src || !out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_power_choose_device_rail: NULL argument");
    const char *key = device_key(device);
    if (!key)
        return jp_error_set(err, JP_ERR_ARG, "--device: '%s' is not a device; expected cpu or cuda",
                            device ? device : "(null)");
    memset(out, 0, sizeof *out);
    out->param_index = -1;
    char rails[1024];
    list_rails(src, rails, sizeof rails);
    jp_power_kind kind = jp_power_source_kind(src);
    long index;

    if (override && *override) {
        if (is_rail(src, override, &index))
            return chosen(src, override, index, out, "given by the user (%s%s)", override, "");
        return jp_error_set(err, JP_ERR_MISSING,
                            "rail '%s' is not one of the %s source's rails (%s); pick one of those",
                            override, jp_power_kind_name(kind), rails);
    }
    if (kind == JP_POWER_NONE)
        return jp_error_set(err, JP_ERR_MISSING,
                            "power source none has no rail for the %s; choose another "
                            "--power-source to measure power",
                            key);
    if (kind == JP_POWER_NVML || kind == JP_POWER_RAPL) {
        const char *rail = jp_power_device_rail(src->board, kind, key);
        if (rail && is_rail(src, rail, &index))
            return chosen(src, rail, index, out, "the %s source's own rail for the device (%s)",
                          jp_power_kind_name(kind), rail);
        return jp_error_set(err, JP_ERR_MISSING,
                            "the %s source measures no rail of the %s (its rails: %s); for the %s "
                            "use %s",
                            jp_power_kind_name(kind), key, rails, key,
                            strcmp(key, "gpu") == 0 ? "nvml on a discrete NVIDIA GPU, or tegrastats/"
                                                      "ina3221 on a Jetson"
                                                    : "rapl on an x86 machine, or tegrastats/"
                                                      "ina3221 on a Jetson");
    }

    /* tegrastats and ina3221: the board's row */
    const board_row *r = row_of(src->board);
    if (r && row_rails(r, key)[0]) {
        const char *const *cands = row_rails(r, key);
        for (size_t k = 0; k < 3 && cands[k]; k++)
            if (is_rail(src, cands[k], &index))
                return chosen(src, cands[k], index, out,
                              "board %s (device tree model '%s'): the table's rail for the device",
                              r->name, src->board_model);
        return jp_error_set(err, JP_ERR_MISSING,
                            "board %s: the table's %s rail %s is not among the %s source's rails "
                            "(%s); name the rail to use explicitly",
                            r->name, key, cands[0], jp_power_kind_name(kind), rails);
    }
    /* No board (or one without a known rail): the first row whose rail is
     * there, e.g. a TX2-format fake tegrastats on an x86 test machine. */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *const *cands = row_rails(&rows[i], key);
        for (size_t k = 0; k < 3 && cands[k]; k++) {
            if (is_rail(src, cands[k], &index)) {
                char why[sizeof out->why];
                snprintf(why, sizeof why,
                         "board not detected (device tree model '%s'); the rail names match the "
                         "%s row of the table",
                         src->board_model[0] ? src->board_model : "absent", rows[i].name);
                snprintf(out->rail, sizeof out->rail, "%s", cands[k]);
                out->param_index = index;
                snprintf(out->why, sizeof out->why, "%s", why);
                return JP_OK;
            }
        }
    }
    return jp_error_set(err, JP_ERR_MISSING,
                        "no %s rail known for board %s among the %s source's rails (%s); name the "
                        "rail to use explicitly",
                        key, r ? r->name : "unknown", jp_power_kind_name(kind), rails);
}

/* ---- nvpmodel -q ---------------------------------------------------------- */

/* [start, end) of the line at p, end at its '\n' or the text's end; CRs
 * before the newline are left out. */
static const char *line_end(const char *p)
{
    const char *e = strchr(p, '\n');
    e = e ? e : p + strlen(p);
    while (e > p && e[-1] == '\r')
        e--;
    return e;
}

jp_status jp_nvpmodel_parse(const char *text, jp_nvpmodel *out, jp_error *err)
{
    static const char key[] = "NV Power Mode:";
    if (!text || !out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_nvpmodel_parse: NULL argument");
    memset(out, 0, sizeof *out);
    out->id = -1;
    const char *at = strstr(text, key);
    if (!at)
        return jp_error_set(err, JP_ERR_FORMAT,
                            "nvpmodel -q: no 'NV Power Mode:' line in its output ('%.80s')", text);
    const char *name = at + sizeof key - 1, *end = line_end(at);
    while (name < end && isspace((unsigned char)*name))
        name++;
    while (end > name && isspace((unsigned char)end[-1]))
        end--;
    if (end == name)
        return jp_error_set(err, JP_ERR_FORMAT, "nvpmodel -q: 'NV Power Mode:' names no mode");
    if ((size_t)(end - name) >= sizeof out->name)
        return jp_error_set(err, JP_ERR_FORMAT, "nvpmodel -q: mode name '%.*s...' longer than %zu bytes",
                            40, name, sizeof out->name - 1);
    memcpy(out->name, name, (size_t)(end - name));
    out->name[end - name] = '\0';

    /* The id: the next line, digits only (blanks around them allowed). */
    const char *nl = strchr(at, '\n');
    const char *id = nl ? nl + 1 : at + strlen(at);
    const char *id_end = line_end(id);
    while (id < id_end && isspace((unsigned char)*id))
        id++;
    while (id_end > id && isspace((unsigned char)id_end[-1]))
        id_end--;
    bool digits = id < id_end && id_end - id <= 9;
    for (const char *c = id; digits && c < id_end; c++)
        digits = isdigit((unsigned char)*c) != 0;
    if (!digits) {
        out->name[0] = '\0';
        return jp_error_set(err, JP_ERR_FORMAT,
                            "nvpmodel -q: the line after 'NV Power Mode: %.*s' is '%.*s', expected the "
                            "mode's id (an integer)",
                            (int)(end - name), name, (int)(id_end - id > 40 ? 40 : id_end - id), id);
    }
    out->id = strtol(id, NULL, 10);
    return JP_OK;
}
