/*
 * power_ina3221.c: the `ina3221` power source: Jetson's INA3221 power
 * monitors read directly from sysfs, no extra process.
 *
 * Two layouts exist (both under the configurable root directory):
 *   - hwmon (JetPack 5 and later, mainline driver):
 *       /sys/class/hwmon/hwmon<N>/name = "ina3221"
 *       in<i>_label (rail name), in<i>_input (bus voltage, mV),
 *       curr<i>_input (current, mA)          -> mW = mV * mA / 1000
 *   - iio (JetPack 4 and earlier, NVIDIA's ina3221x driver):
 *       /sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<N>/ (or
 *       iio_device on L4T 28): rail_name_<k>, in_power<k>_input (mW), or
 *       in_current<k>_input (mA) and in_voltage<k>_input (mV).
 * Channels are listed in the order of the sorted directory names, so the
 * same board always gives the same parameter order.  Every poll re-opens
 * each file (a sysfs attribute is re-read on each open).  A rail label seen
 * twice (two "NC") becomes NC, NC_2 as in the tegrastats parser.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "power_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Channel numbers tried per device: the INA3221 has 3; hwmon numbers them
 * from 1, iio from 0, and the summation channel sits above 3. */
#define MAX_CHANNEL 8

typedef struct ina_channel {
    char power_path[PATH_MAX]; /* iio in_power<k>_input (mW), or ""        */
    char volt_path[PATH_MAX];  /* mV */
    char curr_path[PATH_MAX];  /* mA */
} ina_channel;

typedef struct ina_state {
    size_t n, cap;
    ina_channel *ch; /* (n) one per parameter, in parameter order */
    bool any_hwmon, any_iio;
} ina_state;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of dir's entries accepted by keep(); returns how many (at
 * most max), 0 when dir cannot be opened.  Names are malloc'ed. */
static size_t list_dir(const char *dir, bool (*keep)(const char *), char **names, size_t max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        if (de->d_name[0] == '.' || !keep(de->d_name))
            continue;
        names[n] = strdup(de->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

static bool keep_hwmon(const char *n) { return strncmp(n, "hwmon", 5) == 0; }
static bool keep_any(const char *n) { return n[0] != '\0'; }
static bool keep_iio(const char *n)
{
    return strncmp(n, "iio:device", 10) == 0 || strncmp(n, "iio_device", 10) == 0;
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static jp_status add_channel(jp_power_source *src, ina_state *st, const char *label,
                             const ina_channel *ch, jp_error *err)
{
    if (st->n >= JP_TGR_MAX_PARAMS)
        return jp_error_set(err, JP_ERR_UNSUPPORTED, "ina3221: more than %d channels",
                            JP_TGR_MAX_PARAMS);
    char name[JP_TGR_NAME_BYTES];
    snprintf(name, sizeof name, "%s", label);
    for (char *p = name; *p; p++) /* labels are rail names; keep them CSV- and JSON-safe */
        if (*p == ' ' || *p == ',' || *p == '"' || *p == '\\')
            *p = '_';
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 8;
        ina_channel *grown = realloc(st->ch, cap * sizeof *grown);
        if (!grown)
            return jp_error_set(err, JP_ERR_NOMEM, "ina3221: out of memory");
        st->ch = grown;
        st->cap = cap;
    }
    jp_status s = jp_power_add_param(src, name, JP_TGR_RAIL, err);
    if (s != JP_OK)
        return s;
    st->ch[st->n++] = *ch;
    return JP_OK;
}

#define JOIN(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static jp_status scan_hwmon(jp_power_source *src, ina_state *st, jp_error *err)
{
    char base[PATH_MAX];
    if (!jp_power_path(src, base, sizeof base, "/sys/class/hwmon"))
        return JP_OK;
    char *dirs[256];
    size_t nd = list_dir(base, keep_hwmon, dirs, 256);
    jp_status s = JP_OK;
    for (size_t d = 0; d < nd && s == JP_OK; d++) {
        char path[PATH_MAX], name[64];
        if (!JOIN(path, "%s/%s/name", base, dirs[d]) ||
            jp_power_read_text(path, name, sizeof name, NULL, NULL) != JP_OK ||
            strcmp(name, "ina3221") != 0)
            continue;
        for (int i = 1; i <= MAX_CHANNEL && s == JP_OK; i++) {
            ina_channel ch = {0};
            char label_path[PATH_MAX], label[64];
            if (!JOIN(label_path, "%s/%s/in%d_label", base, dirs[d], i) ||
                !JOIN(ch.volt_path, "%s/%s/in%d_input", base, dirs[d], i) ||
                !JOIN(ch.curr_path, "%s/%s/curr%d_input", base, dirs[d], i))
                continue;
            if (!file_exists(label_path) || !file_exists(ch.volt_path) || !file_exists(ch.curr_path))
                continue;
            if (jp_power_read_text(label_path, label, sizeof label, NULL, err) != JP_OK) {
                s = jp_error_prefix(err, "ina3221: ");
                break;
            }
            if (!label[0])
                continue;
            s = add_channel(src, st, label, &ch, err);
            st->any_hwmon = true;
        }
    }
    free_names(dirs, nd);
    return s;
}

static jp_status scan_iio(jp_power_source *src, ina_state *st, jp_error *err)
{
    char base[PATH_MAX];
    if (!jp_power_path(src, base, sizeof base, "/sys/bus/i2c/drivers/ina3221x"))
        return JP_OK;
    char *devs[64];
    size_t ndev = list_dir(base, keep_any, devs, 64);
    jp_status s = JP_OK;
    for (size_t d = 0; d < ndev && s == JP_OK; d++) {
        char dev_dir[PATH_MAX];
        if (!JOIN(dev_dir, "%s/%s", base, devs[d]))
            continue;
        char *iios[16];
        size_t niio = list_dir(dev_dir, keep_iio, iios, 16);
        for (size_t k = 0; k < niio && s == JP_OK; k++) {
            for (int c = 0; c < MAX_CHANNEL && s == JP_OK; c++) {
                ina_channel ch = {0};
                char label_path[PATH_MAX], label[64];
                if (!JOIN(label_path, "%s/%s/rail_name_%d", dev_dir, iios[k], c) ||
                    !file_exists(label_path))
                    continue;
                if (!JOIN(ch.power_path, "%s/%s/in_power%d_input", dev_dir, iios[k], c) ||
                    !JOIN(ch.volt_path, "%s/%s/in_voltage%d_input", dev_dir, iios[k], c) ||
                    !JOIN(ch.curr_path, "%s/%s/in_current%d_input", dev_dir, iios[k], c))
                    continue;
                if (!file_exists(ch.power_path)) {
                    ch.power_path[0] = '\0';
                    if (!file_exists(ch.volt_path) || !file_exists(ch.curr_path))
                        continue;
                }
                if (jp_power_read_text(label_path, label, sizeof label, NULL, err) != JP_OK) {
                    s = jp_error_prefix(err, "ina3221: ");
                    break;
                }
                if (!label[0])
                    continue;
                s = add_channel(src, st, label, &ch, err);
                st->any_iio = true;
            }
        }
        free_names(iios, niio);
    }
    free_names(devs, ndev);
    return s;
}

/* Reads channel ch in mW. */
static jp_status read_channel(const ina_channel *ch, double *mw, int *errno_out, jp_error *err)
{
    long long a, b;
    jp_status s;
    if (ch->power_path[0]) {
        s = jp_power_read_ll(ch->power_path, &a, errno_out, err);
        if (s == JP_OK)
            *mw = (double)a;
        return s;
    }
    s = jp_power_read_ll(ch->volt_path, &a, errno_out, err);
    if (s == JP_OK)
        s = jp_power_read_ll(ch->curr_path, &b, errno_out, err);
    if (s == JP_OK)
        *mw = (double)a * (double)b / 1000.0;
    return s;
}

static jp_status ina_open(jp_power_source *src, jp_error *err)
{
    ina_state *st = calloc(1, sizeof *st);
    if (!st)
        return jp_error_set(err, JP_ERR_NOMEM, "ina3221: out of memory");
    src->impl = st;
    jp_status s = scan_hwmon(src, st, err);
    if (s == JP_OK)
        s = scan_iio(src, st, err);
    if (s != JP_OK)
        return s;
    if (st->n == 0) {
        char a[PATH_MAX], b[PATH_MAX];
        jp_power_path(src, a, sizeof a, "/sys/class/hwmon");
        jp_power_path(src, b, sizeof b, "/sys/bus/i2c/drivers/ina3221x");
        return jp_error_set(err, JP_ERR_MISSING,
                            "ina3221: no INA3221 power monitor channel under %s (a hwmon named "
                            "'ina3221') or %s: this is not a Jetson, or its kernel lacks the "
                            "driver; choose another --power-source (tegrastats, nvml, rapl, none)",
                            a, b);
    }
    /* Read every channel once: permissions and format are checked now. */
    for (size_t i = 0; i < st->n; i++) {
        double mw;
        int e = 0;
        if (read_channel(&st->ch[i], &mw, &e, err) != JP_OK) {
            if (e == EACCES || e == EPERM)
                return jp_error_prefix(err,
                                       "ina3221: rail %s is not readable (run jplprof as root, or "
                                       "`sudo chmod o+r` the file): ",
                                       src->params[i].name);
            return jp_error_prefix(err, "ina3221: rail %s: ", src->params[i].name);
        }
    }
    snprintf(src->description, sizeof src->description,
             "ina3221: %zu rails from %.400s (%s)", st->n, src->root_dir,
             st->any_hwmon && st->any_iio ? "hwmon and iio layouts"
             : st->any_hwmon              ? "hwmon layout, mV x mA"
                                          : "iio layout");
    return JP_OK;
}

static jp_status ina_poll(jp_power_source *src, int64_t t_ns, double *values, bool *have_sample,
                          jp_error *err)
{
    ina_state *st = src->impl;
    for (size_t i = 0; i < st->n; i++) {
        if (read_channel(&st->ch[i], &values[i], NULL, err) != JP_OK)
            return jp_error_prefix(err, "ina3221: rail %s stopped answering: ", src->params[i].name);
    }
    *have_sample = true;
    return JP_OK;
}

static void ina_close(jp_power_source *src)
{
    ina_state *st = src->impl;
    if (st)
        free(st->ch);
    free(st);
    src->impl = NULL;
}

const jp_power_backend jp_power_backend_ina3221 = {
    .kind = JP_POWER_INA3221,
    .open = ina_open,
    .poll = ina_poll,
    .close = ina_close,
};
