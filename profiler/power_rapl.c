/*
 * power_rapl.c: the `rapl` power source: Intel (and AMD Zen) RAPL energy
 * counters under /sys/class/powercap (root directory configurable).
 *
 * Zones are the entries named intel-rapl:<p> (a package, or psys) and
 * intel-rapl:<p>:<s> (its core, uncore, dram sub-zones); the duplicate
 * intel-rapl-mmio:* view is ignored.  Parameter names: a zone's `name`
 * ("package-0", "psys"), a sub-zone's "<parent name>:<name>"
 * ("package-0:core", "package-0:dram").
 *
 * Power = delta energy / delta time per zone.  A counter wraps at
 * max_energy_range_uj: a reading below the previous one means it wrapped
 * once (the shortest wrap, ~60 s at full load on a desktop, is far longer
 * than any interval).  A zone whose counter has not moved since the last
 * poll yields NAN (nothing new), never 0, and keeps its previous reading so
 * that the next sample covers the whole span.
 *
 * Since Linux 5.10 energy_uj is readable by root only (CVE-2020-8694);
 * the error says how to open it.
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

#define MAX_ZONES 64

typedef struct rapl_zone {
    char energy_path[PATH_MAX];
    long long max_range_uj; /* 0 when unknown: a decrease is then a reset */
    bool have_prev;
    long long prev_uj;
    int64_t prev_t_ns;
} rapl_zone;

typedef struct rapl_state {
    size_t n;
    rapl_zone *zones; /* (n) in parameter order */
} rapl_state;

/* "intel-rapl:0" -> 1 level, "intel-rapl:0:1" -> 2; 0 when not a zone. */
static int zone_depth(const char *name)
{
    static const char prefix[] = "intel-rapl:";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = name + sizeof prefix - 1;
    int depth = 0;
    for (;;) {
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        depth++;
        if (*p == '\0')
            return depth <= 2 ? depth : 0;
        if (*p != ':')
            return 0;
        p++;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static jp_status rapl_permission_error(const char *path, int e, jp_error *err)
{
    return jp_error_set(err, JP_ERR_IO,
                        "rapl: cannot read %s: %s; since Linux 5.10 RAPL energy counters are "
                        "readable by root only: run jplprof as root, or allow reading with `sudo "
                        "chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
                        "/sys/class/powercap/intel-rapl:*:*/energy_uj` (until reboot)",
                        path, strerror(e));
}

static jp_status rapl_open(jp_power_source *src, jp_error *err)
{
    rapl_state *st = calloc(1, sizeof *st);
    if (!st)
        return jp_error_set(err, JP_ERR_NOMEM, "rapl: out of memory");
    src->impl = st;
    char base[PATH_MAX];
    if (!jp_power_path(src, base, sizeof base, "/sys/class/powercap"))
        return jp_error_set(err, JP_ERR_ARG, "rapl: root directory too long");
    DIR *d = opendir(base);
    if (!d)
        return jp_error_set(err, JP_ERR_MISSING,
                            "rapl: cannot open %s (%s): no powercap framework here (not an x86 "
                            "Linux machine, or the intel_rapl_common module is not loaded: `sudo "
                            "modprobe intel_rapl_msr`); choose another --power-source",
                            base, strerror(errno));
    char *names[MAX_ZONES];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && nn < MAX_ZONES) {
        if (zone_depth(de->d_name) == 0)
            continue;
        names[nn] = strdup(de->d_name);
        if (names[nn])
            nn++;
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);

    jp_status s = JP_OK;
    st->zones = calloc(nn ? nn : 1, sizeof *st->zones);
    if (!st->zones)
        s = jp_error_set(err, JP_ERR_NOMEM, "rapl: out of memory");
    for (size_t i = 0; i < nn && s == JP_OK; i++) {
        char path[PATH_MAX], zname[64], parent_name[64] = "";
        if (snprintf(path, sizeof path, "%s/%s/name", base, names[i]) >= (int)sizeof path)
            continue;
        if ((s = jp_power_read_text(path, zname, sizeof zname, NULL, err)) != JP_OK) {
            s = jp_error_prefix(err, "rapl: ");
            break;
        }
        if (zone_depth(names[i]) == 2) {
            /* the parent is the name up to the last ':' */
            const char *last = strrchr(names[i], ':');
            char ppath[PATH_MAX];
            if (snprintf(ppath, sizeof ppath, "%s/%.*s/name", base, (int)(last - names[i]),
                         names[i]) < (int)sizeof ppath)
                jp_power_read_text(ppath, parent_name, sizeof parent_name, NULL, NULL);
            if (!parent_name[0])
                snprintf(parent_name, sizeof parent_name, "%.*s", (int)(last - names[i]), names[i]);
        }
        rapl_zone *z = &st->zones[st->n];
        memset(z, 0, sizeof *z);
        char range_path[PATH_MAX];
        if (snprintf(z->energy_path, sizeof z->energy_path, "%s/%s/energy_uj", base, names[i]) >=
                (int)sizeof z->energy_path ||
            snprintf(range_path, sizeof range_path, "%s/%s/max_energy_range_uj", base, names[i]) >=
                (int)sizeof range_path)
            continue;
        long long range = 0;
        if (jp_power_read_ll(range_path, &range, NULL, NULL) == JP_OK && range > 0)
            z->max_range_uj = range;
        long long uj;
        int e = 0;
        if (jp_power_read_ll(z->energy_path, &uj, &e, err) != JP_OK) {
            if (e == EACCES || e == EPERM)
                s = rapl_permission_error(z->energy_path, e, err);
            else
                s = jp_error_prefix(err, "rapl: zone %s: ", zname);
            break;
        }
        char pname[JP_TGR_NAME_BYTES];
        if (parent_name[0])
            snprintf(pname, sizeof pname, "%.20s:%.20s", parent_name, zname);
        else
            snprintf(pname, sizeof pname, "%.40s", zname);
        if ((s = jp_power_add_param(src, pname, JP_TGR_RAIL, err)) != JP_OK)
            break;
        st->n++;
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    if (s != JP_OK)
        return s;
    if (st->n == 0)
        return jp_error_set(err, JP_ERR_MISSING,
                            "rapl: %s has no intel-rapl:* zone (the CPU has no RAPL, or "
                            "intel_rapl_msr is not loaded: `sudo modprobe intel_rapl_msr`); choose "
                            "another --power-source",
                            base);
    snprintf(src->description, sizeof src->description,
             "rapl: %zu zones under %.400s, energy counter differences", st->n, base);
    return JP_OK;
}

static jp_status rapl_start(jp_power_source *src, jp_error *err)
{
    rapl_state *st = src->impl;
    for (size_t i = 0; i < st->n; i++)
        st->zones[i].have_prev = false;
    return JP_OK;
}

static jp_status rapl_poll(jp_power_source *src, int64_t t_ns, double *values, bool *have_sample,
                           jp_error *err)
{
    rapl_state *st = src->impl;
    *have_sample = false;
    for (size_t i = 0; i < st->n; i++) {
        rapl_zone *z = &st->zones[i];
        long long uj;
        int e = 0;
        if (jp_power_read_ll(z->energy_path, &uj, &e, err) != JP_OK) {
            if (e == EACCES || e == EPERM)
                return rapl_permission_error(z->energy_path, e, err);
            return jp_error_prefix(err, "rapl: zone %s stopped answering: ", src->params[i].name);
        }
        if (!z->have_prev) {
            z->have_prev = true;
            z->prev_uj = uj;
            z->prev_t_ns = t_ns;
            continue;
        }
        if (uj == z->prev_uj || t_ns <= z->prev_t_ns)
            continue; /* not moved: NAN, the span carries over */
        long long delta;
        if (uj > z->prev_uj) {
            delta = uj - z->prev_uj;
        } else if (z->max_range_uj > 0 && z->prev_uj <= z->max_range_uj) {
            delta = (z->max_range_uj - z->prev_uj) + uj; /* wrapped once */
        } else { /* a reset without a known range: start again */
            z->prev_uj = uj;
            z->prev_t_ns = t_ns;
            continue;
        }
        /* uJ/ns * 1e9 = uJ/s; / 1e3 = mJ/s = mW */
        values[i] = (double)delta * 1e6 / (double)(t_ns - z->prev_t_ns);
        z->prev_uj = uj;
        z->prev_t_ns = t_ns;
        *have_sample = true;
    }
    return JP_OK;
}

static void rapl_close(jp_power_source *src)
{
    rapl_state *st = src->impl;
    if (st)
        free(st->zones);
    free(st);
    src->impl = NULL;
}

const jp_power_backend jp_power_backend_rapl = {
    .kind = JP_POWER_RAPL,
    .open = rapl_open,
    .start = rapl_start,
    .poll = rapl_poll,
    .close = rapl_close,
};
