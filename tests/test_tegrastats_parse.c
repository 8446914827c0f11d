/*
 * test_tegrastats_parse.c: the tegrastats parser on real lines of every
 * Jetson generation (the .txt files of tests/data/tegrastats, each line's public source
 * noted there), its odd cases, the seed's --tgr_params names, and the
 * log-to-CSV conversion.
 *
 * Data directory: $JP_TEST_DATA_DIR/tegrastats (default tests/data).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jp_test.h"
#include "tegrastats_parse.h"

#define MAX_LINES 32

typedef struct data_file {
    size_t n;
    char *lines[MAX_LINES];
} data_file;

static char g_why[512]; /* the first mismatch of the current case */

static bool load(const char *name, data_file *df)
{
    const char *dir = getenv("JP_TEST_DATA_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tegrastats/%s", dir && *dir ? dir : "tests/data", name);
    memset(df, 0, sizeof *df);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(g_why, sizeof g_why, "cannot open %.400s", path);
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) >= 0 && df->n < MAX_LINES) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        df->lines[df->n++] = strdup(line);
    }
    free(line);
    fclose(fp);
    return true;
}

static void unload(data_file *df)
{
    for (size_t i = 0; i < df->n; i++)
        free(df->lines[i]);
    df->n = 0;
}

/* Parameter name has value (within 1e-9) and kind; records why not. */
static bool has(const jp_tgr_line *l, const char *name, double value, jp_tgr_kind kind)
{
    const jp_tgr_param *p = jp_tgr_line_find(l, name);
    if (!p) {
        if (!g_why[0])
            snprintf(g_why, sizeof g_why, "%s missing", name);
        return false;
    }
    if (fabs(p->value - value) > 1e-9 || p->kind != kind) {
        if (!g_why[0])
            snprintf(g_why, sizeof g_why, "%s = %g (%s), expected %g (%s)", name, p->value,
                     jp_tgr_kind_name(p->kind), value, jp_tgr_kind_name(kind));
        return false;
    }
    return true;
}

static bool lacks(const jp_tgr_line *l, const char *name)
{
    if (jp_tgr_line_find(l, name)) {
        if (!g_why[0])
            snprintf(g_why, sizeof g_why, "%s present, expected absent", name);
        return false;
    }
    return true;
}

static bool parse(const char *text, jp_tgr_line *l)
{
    jp_error err = {0};
    if (jp_tegrastats_parse_line(text, l, &err) != JP_OK) {
        if (!g_why[0])
            snprintf(g_why, sizeof g_why, "parse failed: %.400s", err.msg);
        return false;
    }
    return true;
}

#define CASE(name, cond) \
    do { g_why[0] = '\0'; bool ok_ = (cond); JP_CHECK(name, ok_, "%s", g_why); } while (0)

static jp_tgr_line g_line; /* ~14 KiB: kept off the stack */

static void test_every_line_parses(void)
{
    const char *files[] = {"jetpack4.txt", "xavier.txt", "jetpack5_6.txt", "jetpack7.txt"};
    for (size_t f = 0; f < 4; f++) {
        data_file df;
        char name[128];
        snprintf(name, sizeof name, "parse_all_lines_%s", files[f]);
        g_why[0] = '\0';
        bool ok = load(files[f], &df) && df.n > 0;
        for (size_t i = 0; ok && i < df.n; i++) {
            ok = parse(df.lines[i], &g_line) && g_line.n_rails >= 3 && !g_line.truncated &&
                 jp_tgr_line_find(&g_line, "RAM") && jp_tgr_line_find(&g_line, "CPU0");
            /* only IRAM's two tokens are not understood in these lines */
            if (ok && g_line.n_skipped > 2)
                ok = false;
            if (!ok && !g_why[0])
                snprintf(g_why, sizeof g_why, "line %zu: %zu rails, %zu skipped tokens", i + 1,
                         g_line.n_rails, g_line.n_skipped);
        }
        JP_CHECK(name, ok, "%s", g_why);
        unload(&df);
    }
}

static void test_jetpack4(void)
{
    data_file df;
    g_why[0] = '\0';
    if (!load("jetpack4.txt", &df) || df.n < 4) {
        jp_test_fail("jetpack4_data", "%s", g_why[0] ? g_why : "fewer than 4 lines");
        return;
    }
    CASE("tx2_unitless_rails_first_number",
         parse(df.lines[0], &g_line) && has(&g_line, "VDD_SYS_GPU", 153, JP_TGR_RAIL) &&
             has(&g_line, "VDD_SYS_CPU", 306, JP_TGR_RAIL) &&
             has(&g_line, "VDD_SYS_DDR", 173, JP_TGR_RAIL) && has(&g_line, "VDD_IN", 1649, JP_TGR_RAIL) &&
             g_line.n_rails == 6 && g_line.timestamp[0] == '\0');
    CASE("tx2_memory_cpu_emc",
         parse(df.lines[0], &g_line) && has(&g_line, "RAM", 1404, JP_TGR_MEM) &&
             has(&g_line, "RAM_total", 7860, JP_TGR_MEM) && has(&g_line, "SWAP", 0, JP_TGR_MEM) &&
             has(&g_line, "SWAP_total", 3930, JP_TGR_MEM) && has(&g_line, "CPU1", 0, JP_TGR_LOAD) &&
             has(&g_line, "CPU1_freq", 960, JP_TGR_FREQ) && has(&g_line, "EMC_FREQ", 0, JP_TGR_LOAD) &&
             lacks(&g_line, "EMC_freq") && has(&g_line, "GR3D_FREQ", 0, JP_TGR_LOAD));
    CASE("tx2_temperatures_apart_from_rails",
         parse(df.lines[0], &g_line) && has(&g_line, "MCPU_temp", 35.5, JP_TGR_TEMP) &&
             has(&g_line, "BCPU_temp", 35.5, JP_TGR_TEMP) && has(&g_line, "GPU_temp", 32, JP_TGR_TEMP) &&
             has(&g_line, "thermal_temp", 34.1, JP_TGR_TEMP) && lacks(&g_line, "GPU"));
    CASE("tx2_off_cores_skipped",
         parse(df.lines[1], &g_line) && has(&g_line, "CPU0", 1, JP_TGR_LOAD) && lacks(&g_line, "CPU1") &&
             lacks(&g_line, "CPU2") && lacks(&g_line, "CPU1_freq") && has(&g_line, "CPU3", 1, JP_TGR_LOAD) &&
             has(&g_line, "CPU5", 2, JP_TGR_LOAD) && has(&g_line, "CPU5_freq", 345, JP_TGR_FREQ) &&
             has(&g_line, "EMC_FREQ", 4, JP_TGR_LOAD) && has(&g_line, "EMC_freq", 1600, JP_TGR_FREQ) &&
             has(&g_line, "APE", 150, JP_TGR_FREQ));
    CASE("tx1_missing_swap_current_not_average",
         parse(df.lines[2], &g_line) && lacks(&g_line, "SWAP") && lacks(&g_line, "SWAP_total") &&
             lacks(&g_line, "IRAM") && has(&g_line, "RAM", 1179, JP_TGR_MEM) &&
             has(&g_line, "VDD_IN", 2532, JP_TGR_RAIL) && has(&g_line, "VDD_CPU", 76, JP_TGR_RAIL) &&
             has(&g_line, "VDD_GPU", 19, JP_TGR_RAIL) && has(&g_line, "CPU3", 0, JP_TGR_LOAD));
    CASE("nano_pom_rails",
         parse(df.lines[3], &g_line) && has(&g_line, "POM_5V_IN", 1022, JP_TGR_RAIL) &&
             has(&g_line, "POM_5V_GPU", 0, JP_TGR_RAIL) && has(&g_line, "POM_5V_CPU", 204, JP_TGR_RAIL) &&
             has(&g_line, "SWAP", 5, JP_TGR_MEM) && has(&g_line, "CPU_temp", 36.5, JP_TGR_TEMP));
    unload(&df);
}

static void test_xavier(void)
{
    data_file df;
    g_why[0] = '\0';
    if (!load("xavier.txt", &df) || df.n < 3) {
        jp_test_fail("xavier_data", "%s", g_why[0] ? g_why : "fewer than 3 lines");
        return;
    }
    CASE("xavier_rails_and_temperatures_share_names",
         parse(df.lines[0], &g_line) && has(&g_line, "GPU", 463, JP_TGR_RAIL) &&
             has(&g_line, "GPU_temp", 31, JP_TGR_TEMP) && has(&g_line, "CPU", 1236, JP_TGR_RAIL) &&
             has(&g_line, "CPU_temp", 32, JP_TGR_TEMP) && has(&g_line, "SYS5V", 2934, JP_TGR_RAIL) &&
             has(&g_line, "CV", 0, JP_TGR_RAIL) && has(&g_line, "CPU1", 33, JP_TGR_LOAD) &&
             has(&g_line, "CPU7_freq", 2265, JP_TGR_FREQ) && has(&g_line, "GR3D_freq", 905, JP_TGR_FREQ) &&
             has(&g_line, "MTS_fg", 0, JP_TGR_LOAD) && has(&g_line, "MTS_bg", 3, JP_TGR_LOAD));
    CASE("xavier_off_cores",
         parse(df.lines[1], &g_line) && has(&g_line, "CPU3", 0, JP_TGR_LOAD) && lacks(&g_line, "CPU4") &&
             lacks(&g_line, "CPU7") && has(&g_line, "CPU", 311, JP_TGR_RAIL) &&
             has(&g_line, "VDDRQ", 621, JP_TGR_RAIL));
    CASE("xavier_nx_shared_rail",
         parse(df.lines[2], &g_line) && has(&g_line, "VDD_CPU_GPU_CV", 738, JP_TGR_RAIL) &&
             has(&g_line, "VDD_IN", 4067, JP_TGR_RAIL) && has(&g_line, "GR3D_FREQ", 62, JP_TGR_LOAD) &&
             has(&g_line, "CPU5_freq", 1267, JP_TGR_FREQ));
    unload(&df);
}

static void test_jetpack5_6(void)
{
    data_file df;
    g_why[0] = '\0';
    if (!load("jetpack5_6.txt", &df) || df.n < 6) {
        jp_test_fail("jetpack5_6_data", "%s", g_why[0] ? g_why : "fewer than 6 lines");
        return;
    }
    CASE("agx_orin_timestamp_mw_rails",
         parse(df.lines[0], &g_line) && strcmp(g_line.timestamp, "06-25-2025 09:43:17") == 0 &&
             has(&g_line, "VDD_GPU_SOC", 4368, JP_TGR_RAIL) && has(&g_line, "VDD_CPU_CV", 1588, JP_TGR_RAIL) &&
             has(&g_line, "VDDQ_VDD2_1V8AO", 403, JP_TGR_RAIL) && has(&g_line, "RAM", 6589, JP_TGR_MEM));
    CASE("agx_orin_duplicate_rails_numbered",
         parse(df.lines[0], &g_line) && has(&g_line, "NC", 0, JP_TGR_RAIL) &&
             has(&g_line, "NC_2", 0, JP_TGR_RAIL) && lacks(&g_line, "NC_3") && g_line.n_rails == 6);
    CASE("agx_orin_disabled_sensors_not_emitted",
         parse(df.lines[0], &g_line) && lacks(&g_line, "CV0_temp") && lacks(&g_line, "CV1_temp") &&
             lacks(&g_line, "CV2_temp") && has(&g_line, "CPU_temp", 52.625, JP_TGR_TEMP) &&
             has(&g_line, "tj_temp", 52.625, JP_TGR_TEMP));
    CASE("agx_orin_second_gpc_and_bare_clock",
         parse(df.lines[0], &g_line) && has(&g_line, "GR3D2_FREQ", 0, JP_TGR_LOAD) &&
             has(&g_line, "GR3D2_freq", 1300, JP_TGR_FREQ) && has(&g_line, "VIC_freq", 729, JP_TGR_FREQ) &&
             has(&g_line, "EMC_freq", 3199, JP_TGR_FREQ) && has(&g_line, "CPU11_freq", 2201, JP_TGR_FREQ));
    CASE("orin_nx_gpc_list_and_engines_off",
         parse(df.lines[1], &g_line) && has(&g_line, "GR3D_FREQ", 0, JP_TGR_LOAD) &&
             has(&g_line, "GR3D_freq", 305, JP_TGR_FREQ) && lacks(&g_line, "GR3D_freq1") &&
             lacks(&g_line, "NVENC") && lacks(&g_line, "PVA0_freq") &&
             has(&g_line, "VDD_CPU_GPU_CV", 970, JP_TGR_RAIL) && has(&g_line, "cv0_temp", 52.781, JP_TGR_TEMP));
    CASE("orin_nx_jp5_off_cores",
         parse(df.lines[2], &g_line) && has(&g_line, "CPU3", 16, JP_TGR_LOAD) && lacks(&g_line, "CPU4") &&
             has(&g_line, "VDD_SOC", 1424, JP_TGR_RAIL));
    CASE("agx_orin_spaces_and_two_gpcs",
         parse(df.lines[3], &g_line) && has(&g_line, "GR3D_freq", 305, JP_TGR_FREQ) &&
             has(&g_line, "GR3D_freq1", 305, JP_TGR_FREQ) && has(&g_line, "APE", 174, JP_TGR_FREQ) &&
             has(&g_line, "SWAP", 4915, JP_TGR_MEM) && has(&g_line, "VIN_SYS_5V0", 4767, JP_TGR_RAIL) &&
             has(&g_line, "CPU5", 100, JP_TGR_LOAD) && g_line.n_skipped == 0);
    CASE("agx_orin_without_emc",
         parse(df.lines[4], &g_line) && lacks(&g_line, "EMC_FREQ") && has(&g_line, "GR3D_FREQ", 0, JP_TGR_LOAD) &&
             lacks(&g_line, "GR3D_freq") && has(&g_line, "VDD_GPU_SOC", 4940, JP_TGR_RAIL));
    CASE("agx_orin_engine_load_current_not_average",
         parse(df.lines[5], &g_line) && has(&g_line, "VIN_SYS_5V0", 4607, JP_TGR_RAIL) &&
             has(&g_line, "NVENC", 78, JP_TGR_LOAD) && has(&g_line, "NVENC_freq", 166, JP_TGR_FREQ) &&
             has(&g_line, "VIC", 32, JP_TGR_LOAD) && has(&g_line, "VIC_freq", 115, JP_TGR_FREQ) &&
             has(&g_line, "GR3D_freq1", 0, JP_TGR_FREQ));
    unload(&df);
}

static void test_jetpack7(void)
{
    data_file df;
    g_why[0] = '\0';
    if (!load("jetpack7.txt", &df) || df.n < 2) {
        jp_test_fail("jetpack7_data", "%s", g_why[0] ? g_why : "fewer than 2 lines");
        return;
    }
    CASE("thor_r38_two_value_rails",
         parse(df.lines[0], &g_line) && has(&g_line, "VDD_CPU_SOC_MSS", 4923, JP_TGR_RAIL) &&
             has(&g_line, "VDD_GPU", 0, JP_TGR_RAIL) && has(&g_line, "GR3D_freq2", 0, JP_TGR_FREQ) &&
             lacks(&g_line, "GR3D_FREQ") && has(&g_line, "NVENC0_freq", 0, JP_TGR_FREQ) &&
             lacks(&g_line, "VIC") && has(&g_line, "CPU13", 1, JP_TGR_LOAD));
    CASE("thor_r39_three_value_rails_current",
         parse(df.lines[1], &g_line) && has(&g_line, "VDD_CPU_SOC_MSS", 7953, JP_TGR_RAIL) &&
             has(&g_line, "VIN_SYS_5V0", 6667, JP_TGR_RAIL) && has(&g_line, "VDD_GPU", 4925, JP_TGR_RAIL) &&
             g_line.n_rails == 3 && strcmp(g_line.timestamp, "07-23-2026 15:29:27") == 0);
    CASE("thor_r39_current_temperature_not_max",
         parse(df.lines[1], &g_line) && has(&g_line, "cpu_temp", 34.312, JP_TGR_TEMP) &&
             has(&g_line, "soc012_temp", 34.093, JP_TGR_TEMP) && has(&g_line, "GR3D_freq2", 314, JP_TGR_FREQ) &&
             has(&g_line, "VIC", 59, JP_TGR_LOAD) && has(&g_line, "VIC_freq", 423, JP_TGR_FREQ) &&
             has(&g_line, "OFA_freq", 1556, JP_TGR_FREQ));
    unload(&df);
}

static void test_odd_lines(void)
{
    jp_error err = {0};
    JP_CHECK("empty_line_is_not_tegrastats",
             jp_tegrastats_parse_line("\n", &g_line, &err) == JP_ERR_FORMAT && g_line.count == 0,
             "status %d count %zu", err.status, g_line.count);
    err.msg[0] = '\0';
    JP_CHECK("garbage_line_error_names_it",
             jp_tegrastats_parse_line("hello from another program", &g_line, &err) == JP_ERR_FORMAT &&
                 strstr(err.msg, "hello from another") != NULL,
             "message: %s", err.msg);
    CASE("unknown_tokens_skipped_not_fatal",
         parse("RAM 10/20MB FROB nicate 12/ab EDP limit 1734 VDD_IN 100/90 ???", &g_line) &&
             has(&g_line, "RAM", 10, JP_TGR_MEM) && has(&g_line, "VDD_IN", 100, JP_TGR_RAIL) &&
             g_line.n_skipped >= 5);
    CASE("three_duplicates_numbered_in_order",
         parse("NC 1mW/1mW NC 2mW/2mW NC 3mW/3mW", &g_line) && has(&g_line, "NC", 1, JP_TGR_RAIL) &&
             has(&g_line, "NC_2", 2, JP_TGR_RAIL) && has(&g_line, "NC_3", 3, JP_TGR_RAIL));
    CASE("mixed_rail_units_rejected",
         parse("RAM 1/2MB X 5mW/5 Y 7/7/7/7", &g_line) && lacks(&g_line, "X") && lacks(&g_line, "Y"));
    CASE("old_shared_cpu_clock",
         parse("RAM 1/2MB CPU [3%,4%,off]@1224 VDD_IN 5/5", &g_line) && has(&g_line, "CPU0", 3, JP_TGR_LOAD) &&
             has(&g_line, "CPU1_freq", 1224, JP_TGR_FREQ) && lacks(&g_line, "CPU2"));
    CASE("unitless_three_values",
         parse("VDD_IN 3000/2900/3100", &g_line) && has(&g_line, "VDD_IN", 3000, JP_TGR_RAIL));
    CASE("negative_but_enabled_temperature_kept",
         parse("RAM 1/2MB cold@-20.5C off@-256C", &g_line) && has(&g_line, "cold_temp", -20.5, JP_TGR_TEMP) &&
             lacks(&g_line, "off_temp"));
    CASE("gr3d_percent_and_gpc_list",
         parse("GR3D_FREQ 14%@[407,408] NVDLA0_FREQ @1600", &g_line) &&
             has(&g_line, "GR3D_FREQ", 14, JP_TGR_LOAD) && has(&g_line, "GR3D_freq", 407, JP_TGR_FREQ) &&
             has(&g_line, "GR3D_freq1", 408, JP_TGR_FREQ) && has(&g_line, "NVDLA0_freq", 1600, JP_TGR_FREQ));

    /* more rails than fit: the rest dropped, the flag set */
    static char big[32768];
    size_t used = 0;
    for (int i = 0; i < JP_TGR_MAX_PARAMS + 20; i++)
        used += (size_t)snprintf(big + used, sizeof big - used, "R%d %d/%d ", i, i, i);
    CASE("too_many_parameters_truncated",
         parse(big, &g_line) && g_line.truncated && g_line.count == JP_TGR_MAX_PARAMS &&
             has(&g_line, "R0", 0, JP_TGR_RAIL));
}

static size_t count_selected(const jp_tgr_line *l, const char *requested)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++)
        n += jp_tegrastats_name_selects(requested, l->params[i].name);
    return n;
}

static void test_seed_names(void)
{
    data_file df;
    g_why[0] = '\0';
    if (!load("jetpack4.txt", &df) || df.n < 2 || !parse(df.lines[1], &g_line)) {
        jp_test_fail("seed_names_data", "%s", g_why);
        return;
    }
    /* The seed's --tgr_params defaults, and what each selects on a TX2. */
    const struct {
        const char *name;
        size_t expected;
    } seed[] = {{"RAM", 1},         {"SWAP", 1},        {"CPU", 8},         {"EMC_FREQ", 2},
                {"MCPU", 1},        {"GPU", 1},         {"BCPU", 1},        {"VDD_SYS_GPU", 1},
                {"VDD_SYS_SOC", 1}, {"VDD_SYS_CPU", 1}, {"VDD_SYS_DDR", 1}};
    bool ok = true;
    char why[256] = "";
    for (size_t i = 0; i < sizeof seed / sizeof seed[0]; i++) {
        size_t got = count_selected(&g_line, seed[i].name);
        if (got != seed[i].expected && ok) {
            ok = false;
            snprintf(why, sizeof why, "%s selects %zu parameters, expected %zu", seed[i].name, got,
                     seed[i].expected);
        }
    }
    JP_CHECK("seed_default_params_select_on_tx2", ok, "%s", why);
    JP_CHECK("seed_names_map_to_seed_meaning",
             jp_tegrastats_name_selects("MCPU", "MCPU_temp") && jp_tegrastats_name_selects("GPU", "GPU_temp") &&
                 jp_tegrastats_name_selects("CPU", "CPU3") && jp_tegrastats_name_selects("CPU", "CPU3_freq") &&
                 !jp_tegrastats_name_selects("CPU", "CPU_temp") &&
                 !jp_tegrastats_name_selects("CPU", "CPU3_temp") &&
                 jp_tegrastats_name_selects("EMC_FREQ", "EMC_freq") &&
                 jp_tegrastats_name_selects("GR3D_FREQ", "GR3D_freq1") &&
                 !jp_tegrastats_name_selects("GR3D_FREQ", "GR3D2_freq") &&
                 !jp_tegrastats_name_selects("VDD_SYS_GPU", "VDD_SYS_GPU_2") &&
                 !jp_tegrastats_name_selects("RAM", "RAM_total"),
             "a mapping differs from profiler/README.md");
    unload(&df);
    if (load("xavier.txt", &df) && df.n > 0 && parse(df.lines[0], &g_line))
        JP_CHECK("seed_gpu_on_xavier_selects_rail_and_temperature", count_selected(&g_line, "GPU") == 2,
                 "GPU selects %zu parameters", count_selected(&g_line, "GPU"));
    unload(&df);
}

/* ---- CSV ---- */

/* Splits a CSV line in place; returns the number of cells. */
static size_t split_csv(char *line, char **cells, size_t max)
{
    size_t n = 0;
    line[strcspn(line, "\n")] = '\0';
    char *p = line;
    while (n < max) {
        cells[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static long column(char **cells, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cells[i], name) == 0)
            return (long)i;
    return -1;
}

/* A log of `lines` lines, each with `per_line` rails whose names are new
 * (R_0, R_1, ...), converted; the CSV text in *csv (to free). */
static jp_status csv_of_many_names(int lines, int per_line, char **csv, jp_error *err)
{
    char *text = NULL;
    size_t text_len = 0, csv_len = 0;
    FILE *in = open_memstream(&text, &text_len);
    for (int l = 0, name = 0; l < lines; l++) {
        for (int i = 0; i < per_line; i++)
            fprintf(in, "%sR_%d %dmW/%dmW", i ? " " : "", name++, l, l);
        fputc('\n', in);
    }
    fclose(in);
    in = fmemopen(text, text_len, "r");
    FILE *out = open_memstream(csv, &csv_len);
    jp_status st = jp_tegrastats_to_csv(in, out, NULL, err);
    fclose(in);
    fclose(out);
    free(text);
    return st;
}

/* The column table grows as names come (64 at first, doubled), up to its
 * limit of 4096 distinct names: past it, a named error. */
static void test_csv_many_names(void)
{
    char *csv = NULL;
    jp_error err = {0};
    jp_status st = csv_of_many_names(3, 150, &csv, &err); /* 450 names: grown three times */
    size_t n = 0;
    long first = -1, last = -1;
    static char *cells[4096];
    if (st == JP_OK) {
        n = split_csv(csv, cells, 4096);
        first = column(cells, n, "R_0");
        last = column(cells, n, "R_449");
    }
    JP_CHECK("csv_450_names_in_first_seen_order", st == JP_OK && n == 450 && first == 0 && last == 449,
             "status %d (%s), %zu columns, R_0 at %ld, R_449 at %ld", st, err.msg, n, first, last);
    free(csv);
    csv = NULL;
    st = csv_of_many_names(30, 150, &csv, &err); /* 4500 names */
    JP_CHECK("csv_more_than_4096_names_is_an_error",
             st == JP_ERR_UNSUPPORTED && strstr(err.msg, "more than 4096 distinct parameter names"),
             "status %d: %s", st, err.msg);
    free(csv);
}

static void test_csv(void)
{
    data_file a, b, c;
    if (!load("jetpack4.txt", &a) || !load("jetpack5_6.txt", &b) || !load("jetpack7.txt", &c)) {
        jp_test_fail("csv_data", "%s", g_why);
        return;
    }
    char *in_text = NULL, *out_text = NULL;
    size_t in_len = 0, out_len = 0;
    FILE *in = open_memstream(&in_text, &in_len);
    fputs(a.lines[0], in);                          /* TX2, no timestamp      */
    fputs("some other program's output\n\n", in);   /* skipped                */
    fputs(b.lines[0], in);                          /* AGX Orin, NC and NC_2  */
    fputs(c.lines[1], in);                          /* Thor, three values     */
    fclose(in);
    in = fmemopen(in_text, in_len, "r");
    FILE *out = open_memstream(&out_text, &out_len);
    jp_error err = {0};
    jp_status st = jp_tegrastats_to_csv(in, out, NULL, &err);
    fclose(in);
    fclose(out);
    JP_CHECK("csv_converts_mixed_generations", st == JP_OK, "%s", err.msg);
    if (st == JP_OK) {
        char *rows[8];
        size_t n_rows = 0;
        for (char *p = strtok(out_text, "\n"); p && n_rows < 8; p = strtok(NULL, "\n"))
            rows[n_rows++] = p;
        static char *hdr[1024], *r1[1024], *r2[1024], *r3[1024];
        size_t nh = n_rows > 0 ? split_csv(rows[0], hdr, 1024) : 0;
        size_t n1 = n_rows > 1 ? split_csv(rows[1], r1, 1024) : 0;
        size_t n2 = n_rows > 2 ? split_csv(rows[2], r2, 1024) : 0;
        size_t n3 = n_rows > 3 ? split_csv(rows[3], r3, 1024) : 0;
        JP_CHECK("csv_header_then_one_row_per_line", n_rows == 4 && n1 == nh && n2 == nh && n3 == nh,
                 "%zu rows; cells %zu %zu %zu %zu", n_rows, nh, n1, n2, n3);
        long ts = column(hdr, nh, "timestamp"), ram = column(hdr, nh, "RAM"),
             gpu = column(hdr, nh, "VDD_SYS_GPU"), nc2 = column(hdr, nh, "NC_2"),
             mss = column(hdr, nh, "VDD_CPU_SOC_MSS");
        JP_CHECK("csv_columns_first_seen_order",
                 ts == 0 && ram == 1 && gpu > ram && nc2 > gpu && mss > nc2,
                 "timestamp %ld RAM %ld VDD_SYS_GPU %ld NC_2 %ld VDD_CPU_SOC_MSS %ld", ts, ram, gpu, nc2, mss);
        if (n_rows == 4 && ts == 0 && gpu > 0 && nc2 > 0 && mss > 0 && n1 == nh && n2 == nh && n3 == nh)
            JP_CHECK("csv_cells_values_and_blanks",
                     r1[0][0] == '\0' && strcmp(r1[gpu], "153") == 0 && r1[nc2][0] == '\0' &&
                         strcmp(r2[0], "06-25-2025 09:43:17") == 0 && strcmp(r2[nc2], "0") == 0 &&
                         r2[gpu][0] == '\0' && strcmp(r3[mss], "7953") == 0,
                     "row1 ts '%s' gpu '%s'; row2 ts '%s' NC_2 '%s'; row3 MSS '%s'", r1[0], r1[gpu], r2[0],
                     r2[nc2], r3[mss]);
    }
    free(in_text);
    free(out_text);

    /* no tegrastats line at all */
    in = fmemopen((char *)"nothing here\n", 13, "r");
    out = open_memstream(&out_text, &out_len);
    st = jp_tegrastats_to_csv(in, out, NULL, &err);
    fclose(in);
    fclose(out);
    free(out_text);
    JP_CHECK("csv_without_tegrastats_lines_is_an_error", st == JP_ERR_FORMAT, "status %d: %s", st, err.msg);

    /* a long log: bounded time */
    char *big = NULL;
    size_t big_len = 0;
    in = open_memstream(&big, &big_len);
    for (int i = 0; i < 20000; i++)
        fputs(b.lines[i % b.n], in);
    fclose(in);
    in = fmemopen(big, big_len, "r");
    out = fopen("/dev/null", "w");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = jp_tegrastats_to_csv(in, out, NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fclose(in);
    fclose(out);
    free(big);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    const double bound_s = 5.0 * jp_test_time_scale();
    JP_CHECK("csv_20000_lines_fast", st == JP_OK && s < bound_s, "status %d, %.2f s (bound %.0f s): %s", st, s,
             bound_s, st == JP_OK ? "" : err.msg);
    printf("# 20000 JetPack 5/6 lines to CSV in %.3f s\n", s);
    unload(&a);
    unload(&b);
    unload(&c);
}

int main(void)
{
    test_every_line_parses();
    test_jetpack4();
    test_xavier();
    test_jetpack5_6();
    test_jetpack7();
    test_odd_lines();
    test_seed_names();
    test_csv();
    test_csv_many_names();
    return jp_test_exit_code();
}
