/*
 * test_power_sources.c: every power source of power.h, without the
 * hardware:
 *   - tegrastats against tests/fake_tegrastats ($JP_TEST_BIN_DIR, default
 *     build/tests): values and stamps, the delivered interval, a control
 *     file changed mid-run, formats of several generations, a missing
 *     program, early and mid-run exits, garbage, silence, slowness, a child
 *     that ignores SIGTERM; never a zombie left (checked in /proc);
 *   - ina3221 against fake sysfs trees (hwmon and iio layouts);
 *   - rapl against a fake powercap tree whose counters a thread advances,
 *     wrapping around, plus unreadable counters;
 *   - nvml against tests/fake_nvml.c built now as libnvidia-ml.so.1
 *     ($CC, default cc; source in $JP_TEST_SRC_DIR, default tests);
 *   - auto, none, boards and the device-rail table.
 * Fake trees live in a fresh directory under $TMPDIR (default /tmp),
 * removed at the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jp_test.h"
#include "power.h"

static char g_tmp[256];        /* this run's scratch directory */
static char g_fake_tgr[1024];  /* the fake tegrastats, or "" */
static char g_fake_nvml[1024]; /* the fake libnvidia-ml.so.1, or "" */
static char g_nvml_why[512];   /* why it could not be built */

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static void mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

/* Writes text to path atomically (temp + rename), as sysfs readers expect
 * whole values.  Creates the directories. */
static void put(const char *path, const char *text)
{
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        mkdirs(dir);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)pthread_self() % 100000);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return;
    fputs(text, fp);
    fclose(fp);
    rename(tmp, path);
}

static void putf(const char *root, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void putf(const char *root, const char *rel, const char *fmt, ...)
{
    char path[1024], text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s%s", root, rel);
    put(path, text);
}

/* A new empty directory under the scratch directory. */
static void new_root(char *out, size_t bytes, const char *name)
{
    snprintf(out, bytes, "%s/%s", g_tmp, name);
    mkdirs(out);
}

/* Children of this process that are zombies (state Z in /proc/<pid>/stat). */
static int zombie_children(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int zombies = 0;
    struct dirent *de;
    pid_t me = getpid();
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], text[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
        text[n] = '\0';
        char *rp = strrchr(text, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me && state == 'Z')
            zombies++;
    }
    closedir(d);
    return zombies;
}

/* Whether pid is gone and reaped: no /proc entry, waitpid says ECHILD. */
static bool reaped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (access(path, F_OK) == 0)
        return false;
    return waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD;
}

static jp_power_options opts_for(jp_power_kind kind, int interval_ms, const char *root)
{
    jp_power_options o;
    jp_power_options_init(&o);
    o.kind = kind;
    o.interval_ms = interval_ms;
    o.root_dir = root;
    o.tegrastats_program = g_fake_tgr[0] ? g_fake_tgr : "/nonexistent/tegrastats";
    static char lib[1100];
    snprintf(lib, sizeof lib, "%s/no-such-libnvidia-ml.so.1", g_tmp);
    o.nvml_library = lib;
    return o;
}

/* Values of parameter name in s (NAN skipped): min, max, mean, count. */
typedef struct stats {
    double min, max, mean;
    size_t n;
} stats;

static stats column_stats(const jp_power_source *src, const jp_power_samples *s, const char *name,
                          size_t from)
{
    stats r = {INFINITY, -INFINITY, NAN, 0};
    long c = jp_power_param_index(src, name);
    if (c < 0)
        return r;
    double sum = 0.0;
    for (size_t i = from; i < s->count; i++) {
        double v = s->values[i * s->n_params + (size_t)c];
        if (isnan(v))
            continue;
        r.min = fmin(r.min, v);
        r.max = fmax(r.max, v);
        sum += v;
        r.n++;
    }
    if (r.n)
        r.mean = sum / (double)r.n;
    return r;
}

static bool stamps_increasing(const jp_power_samples *s, int64_t lo, int64_t hi)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->t_ns[i] < lo || s->t_ns[i] > hi)
            return false;
        if (i > 0 && s->t_ns[i] < s->t_ns[i - 1])
            return false;
    }
    return true;
}

/* ---- tegrastats ---- */

static void set_fake_env(const char *format, const char *mode, const char *control)
{
    if (format)
        setenv("FAKE_TEGRASTATS_FORMAT", format, 1);
    else
        unsetenv("FAKE_TEGRASTATS_FORMAT");
    if (mode)
        setenv("FAKE_TEGRASTATS_MODE", mode, 1);
    else
        unsetenv("FAKE_TEGRASTATS_MODE");
    if (control)
        setenv("FAKE_TEGRASTATS_CONTROL", control, 1);
    else
        unsetenv("FAKE_TEGRASTATS_CONTROL");
}

static void test_tegrastats_tx2(void)
{
    char control[512];
    snprintf(control, sizeof control, "%s/control_tx2", g_tmp);
    put(control, "VDD_SYS_GPU=1234 VDD_SYS_CPU=567\n");
    set_fake_env("tx2", NULL, control);
    jp_power_options o = opts_for(JP_POWER_TEGRASTATS, 50, g_tmp);
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = jp_power_open(&o, &src, &err);
    if (st == JP_OK) {
        st = jp_power_start(src, &err);
        if (st != JP_OK)
            jp_power_close(src);
    }
    JP_CHECK("tegrastats_fake_starts", st == JP_OK, "%s", err.msg);
    if (st != JP_OK)
        return;
    int64_t t_start = now_ns();
    pid_t pid = jp_power_child_pid(src);
    sleep_ms(550);
    jp_power_samples s;
    jp_power_samples_init(&s);
    st = jp_power_take(src, &s, &err);
    int64_t t_take = now_ns();
    size_t n_params = 0;
    const jp_power_param *params = jp_power_params(src, &n_params);
    long gpu = jp_power_param_index(src, "VDD_SYS_GPU");
    stats g = column_stats(src, &s, "VDD_SYS_GPU", 0), c = column_stats(src, &s, "VDD_SYS_CPU", 0),
          soc = column_stats(src, &s, "VDD_SYS_SOC", 0);
    JP_CHECK("tegrastats_params_fixed_at_start",
             st == JP_OK && n_params >= 20 && gpu >= 0 && params[gpu].kind == JP_TGR_RAIL &&
                 jp_power_param_index(src, "RAM") >= 0 && jp_power_rails(src, NULL, 0) == 6 &&
                 s.n_params == n_params,
             "status %d, %zu params, VDD_SYS_GPU at %ld, %zu rails: %s", st, n_params, gpu,
             jp_power_rails(src, NULL, 0), err.msg);
    JP_CHECK("tegrastats_values_from_control_file_current_not_average",
             g.n >= 8 && g.min == 1234 && g.max == 1234 && c.min == 567 && c.max == 567 && soc.min == 306,
             "%zu samples, VDD_SYS_GPU %g..%g, VDD_SYS_CPU %g..%g, VDD_SYS_SOC %g", g.n, g.min, g.max,
             c.min, c.max, soc.min);
    JP_CHECK("tegrastats_samples_stamped_on_arrival", stamps_increasing(&s, t_start - 3000000000LL, t_take),
             "stamps not increasing or outside [start, take]");
    double delivered = jp_power_delivered_interval_ms(src);
    JP_CHECK("tegrastats_delivered_interval_near_requested",
             delivered > 35 && delivered < 75 && jp_power_requested_interval_ms(src) == 50,
             "delivered %.1f ms for 50 ms asked", delivered);
    printf("# tegrastats fake (tx2): %zu samples in 0.55 s, delivered interval %.1f ms (asked 50)\n", s.count,
           delivered);

    /* change the control file: new values arrive after the change */
    size_t before = s.count;
    int64_t t_change = now_ns();
    put(control, "VDD_SYS_GPU=2222\n");
    sleep_ms(400);
    st = jp_power_take(src, &s, &err);
    stats g2 = column_stats(src, &s, "VDD_SYS_GPU", before);
    size_t first_new = s.count;
    for (size_t i = before; i < s.count; i++) {
        if (s.values[i * s.n_params + (size_t)gpu] == 2222) {
            first_new = i;
            break;
        }
    }
    /* Lines printed between the take above and the change still carry the
     * old values: judge VDD_SYS_CPU from the first line with the new ones. */
    stats c2 = column_stats(src, &s, "VDD_SYS_CPU", first_new);
    JP_CHECK("tegrastats_control_change_seen",
             st == JP_OK && first_new < s.count && s.t_ns[first_new] >= t_change &&
                 s.values[(s.count - 1) * s.n_params + (size_t)gpu] == 2222 && c2.max == 306 && g2.n >= 4,
             "status %d, new value first at %zu of %zu, last %g, VDD_SYS_CPU back to %g", st, first_new,
             s.count, s.count ? s.values[(s.count - 1) * s.n_params + (size_t)gpu] : NAN, c2.max);

    jp_rail_choice ch;
    jp_status cs = jp_power_choose_device_rail(src, "cuda", NULL, &ch, &err);
    JP_CHECK("tegrastats_device_rail_inferred_without_board",
             cs == JP_OK && strcmp(ch.rail, "VDD_SYS_GPU") == 0 && ch.param_index == gpu &&
                 strstr(ch.why, "tx2") && strstr(ch.why, "not detected"),
             "%s (%s)", cs == JP_OK ? ch.rail : err.msg, ch.why);

    st = jp_power_stop(src, &err);
    JP_CHECK("tegrastats_stop_reaps_child", st == JP_OK && pid > 0 && reaped(pid) && zombie_children() == 0,
             "pid %d still there or zombie", (int)pid);
    size_t after_stop = s.count;
    st = jp_power_take(src, &s, &err);
    JP_CHECK("tegrastats_take_after_stop", st == JP_OK && s.count >= after_stop, "%s", err.msg);

    /* a second start runs a fresh child */
    st = jp_power_start(src, &err);
    pid_t pid2 = jp_power_child_pid(src);
    sleep_ms(200);
    jp_power_samples_clear(&s);
    jp_status st2 = jp_power_take(src, &s, &err);
    jp_power_close(src);
    JP_CHECK("tegrastats_restart_and_close", st == JP_OK && st2 == JP_OK && s.count >= 1 && pid2 != pid &&
                                                 reaped(pid2),
             "status %d/%d, %zu samples", st, st2, s.count);
    jp_power_samples_free(&s);
}

/* Runs format with control text for ~ms, returns the samples' stats of rail. */
static bool run_format(const char *format, const char *control_text, const char *rail, double want,
                       const char *model, const char *want_gpu_rail, char *why, size_t why_bytes)
{
    char control[512], root[512];
    snprintf(control, sizeof control, "%s/control_%s", g_tmp, format);
    put(control, control_text);
    new_root(root, sizeof root, format);
    if (model) {
        char path[1024];
        snprintf(path, sizeof path, "%s/proc/device-tree/model", root);
        char text[256];
        snprintf(text, sizeof text, "%s%c", model, '\0'); /* DT strings end with NUL */
        put(path, text);
    }
    set_fake_env(format, NULL, control);
    jp_power_options o = opts_for(JP_POWER_TEGRASTATS, 40, root);
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = jp_power_open(&o, &src, &err);
    if (st == JP_OK)
        st = jp_power_start(src, &err);
    if (st != JP_OK) {
        snprintf(why, why_bytes, "%.400s", err.msg);
        jp_power_close(src);
        return false;
    }
    sleep_ms(220);
    jp_power_samples s;
    jp_power_samples_init(&s);
    st = jp_power_take(src, &s, &err);
    stats r = column_stats(src, &s, rail, 0);
    bool ok = st == JP_OK && r.n >= 3 && r.min == want && r.max == want;
    if (!ok)
        snprintf(why, why_bytes, "%s: %zu samples, %g..%g, expected %g (%.300s)", rail, r.n, r.min, r.max,
                 want, err.msg);
    jp_rail_choice ch;
    if (ok && want_gpu_rail) {
        st = jp_power_choose_device_rail(src, "gpu", NULL, &ch, &err);
        ok = st == JP_OK && strcmp(ch.rail, want_gpu_rail) == 0;
        if (!ok)
            snprintf(why, why_bytes, "gpu rail %s, expected %s (%.300s)", st == JP_OK ? ch.rail : "none",
                     want_gpu_rail, st == JP_OK ? ch.why : err.msg);
    } else if (ok && model) { /* a board whose rails this format lacks */
        st = jp_power_choose_device_rail(src, "gpu", NULL, &ch, &err);
        ok = st == JP_ERR_MISSING && strstr(err.msg, "VDD_GPU_SOC") && strstr(err.msg, rail);
        if (!ok)
            snprintf(why, why_bytes, "expected a missing-rail error naming the rails, got %d: %.300s", st,
                     err.msg);
    }
    jp_power_samples_free(&s);
    jp_power_close(src);
    return ok;
}

static void test_tegrastats_formats(void)
{
    char why[512] = "";
    JP_CHECK("tegrastats_jp5_duplicate_nc_rail_and_board",
             run_format("jp5", "NC_2=77 VDD_GPU_SOC=5191", "NC_2", 77, "NVIDIA Jetson AGX Orin Developer Kit",
                        "VDD_GPU_SOC", why, sizeof why),
             "%s", why);
    why[0] = '\0';
    JP_CHECK("tegrastats_jp7_three_values_current",
             run_format("jp7", "VDD_CPU_SOC_MSS=9000", "VDD_CPU_SOC_MSS", 9000, NULL, "VDD_GPU", why, sizeof why),
             "%s", why);
    why[0] = '\0';
    JP_CHECK("tegrastats_xavier_rail_named_gpu",
             run_format("xavier", "GPU=3210", "GPU", 3210, "Jetson-AGX", "GPU", why, sizeof why), "%s", why);
    why[0] = '\0';
    JP_CHECK("tegrastats_orin_nx_shared_rail",
             run_format("orin-nx", "VDD_CPU_GPU_CV=4321", "VDD_CPU_GPU_CV", 4321,
                        "NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "VDD_CPU_GPU_CV", why,
                        sizeof why),
             "%s", why);
    why[0] = '\0';
    JP_CHECK("tegrastats_board_without_its_rail_is_an_error",
             run_format("tx2", "", "VDD_SYS_GPU", 153, "NVIDIA Jetson AGX Orin Developer Kit", NULL, why,
                        sizeof why),
             "%s", why);
}

static jp_status open_and_start(jp_power_options *o, jp_power_source **src, jp_error *err)
{
    jp_status st = jp_power_open(o, src, err);
    if (st == JP_OK) {
        st = jp_power_start(*src, err);
        if (st != JP_OK) {
            jp_power_close(*src);
            *src = NULL;
        }
    }
    return st;
}

static void test_tegrastats_failures(void)
{
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_power_options o = opts_for(JP_POWER_TEGRASTATS, 20, g_tmp);

    /* missing program, by path and on PATH */
    o.tegrastats_program = "/nonexistent/dir/tegrastats";
    jp_status st = jp_power_open(&o, &src, &err);
    JP_CHECK("tegrastats_missing_program_path",
             st == JP_ERR_MISSING && !src && strstr(err.msg, "/nonexistent/dir/tegrastats") &&
                 strstr(err.msg, "--tegrastats PATH"),
             "status %d: %s", st, err.msg);
    char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", g_tmp, 1);
    o.tegrastats_program = "tegrastats";
    st = jp_power_open(&o, &src, &err);
    if (old_path) {
        setenv("PATH", old_path, 1);
        free(old_path);
    }
    JP_CHECK("tegrastats_not_on_path",
             st == JP_ERR_MISSING && strstr(err.msg, "not on PATH") && strstr(err.msg, "--power-source"),
             "status %d: %s", st, err.msg);

    if (!g_fake_tgr[0]) {
        jp_test_skip("tegrastats_failure_modes", "no fake tegrastats in $JP_TEST_BIN_DIR");
        return;
    }
    o.tegrastats_program = g_fake_tgr;

    /* exits before its first line */
    set_fake_env("tx2", "exit_after:0", NULL);
    double t0 = now_s();
    st = open_and_start(&o, &src, &err);
    JP_CHECK("tegrastats_early_exit_reports_status_and_stderr",
             st == JP_ERR_IO && strstr(err.msg, "exited with status 3") &&
                 strstr(err.msg, "simulated failure after 0 lines") && strstr(err.msg, g_fake_tgr),
             "status %d: %s", st, err.msg);
    JP_CHECK("tegrastats_early_exit_no_zombie", zombie_children() == 0 && now_s() - t0 < 3.0,
             "%d zombies, %.1f s", zombie_children(), now_s() - t0);

    /* exits mid-run */
    set_fake_env("tx2", "exit_after:5", NULL);
    o.interval_ms = 30;
    st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        pid_t pid = jp_power_child_pid(src);
        sleep_ms(600);
        jp_power_samples s;
        jp_power_samples_init(&s);
        jp_status tk = jp_power_take(src, &s, &err);
        bool zombie_free = reaped(pid) && zombie_children() == 0;
        jp_error again;
        jp_status ck = jp_power_check(src, &again);
        JP_CHECK("tegrastats_mid_run_exit_keeps_samples_reports_failure",
                 tk == JP_ERR_IO && s.count == 5 && strstr(err.msg, "after 5 lines") &&
                     strstr(err.msg, "exited with status 3") && ck == JP_ERR_IO,
                 "take %d, %zu samples: %s", tk, s.count, err.msg);
        JP_CHECK("tegrastats_mid_run_exit_reaped", zombie_free, "pid %d not reaped", (int)pid);
        jp_power_samples_free(&s);
        jp_power_close(src);
    } else {
        jp_test_fail("tegrastats_mid_run_exit_keeps_samples_reports_failure", "start: %s", err.msg);
    }
    o.interval_ms = 20;

    /* garbage */
    set_fake_env("tx2", "garbage", NULL);
    t0 = now_s();
    st = open_and_start(&o, &src, &err);
    JP_CHECK("tegrastats_garbage_is_an_error",
             st == JP_ERR_FORMAT && strstr(err.msg, "without a power rail") && strstr(err.msg, g_fake_tgr) &&
                 strstr(err.msg, "not a tegrastats line") && zombie_children() == 0 && now_s() - t0 < 2.0,
             "status %d after %.2f s: %s", st, now_s() - t0, err.msg);

    /* silent */
    set_fake_env("tx2", "silent", NULL);
    t0 = now_s();
    st = open_and_start(&o, &src, &err);
    JP_CHECK("tegrastats_silent_times_out",
             st == JP_ERR_IO && strstr(err.msg, "printed nothing") && zombie_children() == 0 &&
                 now_s() - t0 < 4.0,
             "status %d after %.2f s: %s", st, now_s() - t0, err.msg);

    /* slower than asked: the delivered interval says so */
    set_fake_env("tx2", "slow", NULL);
    o.interval_ms = 50;
    st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        sleep_ms(900);
        double d = jp_power_delivered_interval_ms(src);
        jp_power_close(src);
        JP_CHECK("tegrastats_slow_delivered_interval_honest", d > 160 && d < 260,
                 "delivered %.1f ms, the fake prints every 200 ms", d);
        printf("# tegrastats fake in slow mode: delivered %.1f ms for 50 ms asked\n", d);
    } else {
        jp_test_fail("tegrastats_slow_delivered_interval_honest", "start: %s", err.msg);
    }
    o.interval_ms = 20;

    /* ignores SIGTERM: stop escalates to SIGKILL and reaps */
    set_fake_env("tx2", "ignore_term", NULL);
    st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        pid_t pid = jp_power_child_pid(src);
        sleep_ms(100);
        t0 = now_s();
        jp_power_close(src);
        double took = now_s() - t0;
        JP_CHECK("tegrastats_ignoring_sigterm_killed_and_reaped", reaped(pid) && took < 4.0 && took > 1.5,
                 "pid %d reaped %d after %.2f s", (int)pid, reaped(pid), took);
    } else {
        jp_test_fail("tegrastats_ignoring_sigterm_killed_and_reaped", "start: %s", err.msg);
    }
    set_fake_env(NULL, NULL, NULL);
}

/* ---- ina3221 ---- */

static void make_hwmon_tree(const char *root)
{
    putf(root, "/sys/class/hwmon/hwmon0/name", "coretemp\n");
    putf(root, "/sys/class/hwmon/hwmon0/in1_label", "not a rail\n");
    putf(root, "/sys/class/hwmon/hwmon0/in1_input", "1\n");
    putf(root, "/sys/class/hwmon/hwmon0/curr1_input", "1\n");
    const char *h3 = "/sys/class/hwmon/hwmon3/";
    char rel[256];
    const struct {
        const char *dir, *label;
        int i, mv, ma;
    } ch[] = {
        {"hwmon3", "VDD_GPU_SOC", 1, 5000, 800},    {"hwmon3", "VDD_CPU_CV", 2, 5000, 200},
        {"hwmon3", "VIN_SYS_5V0", 3, 5000, 900},    {"hwmon4", "NC", 1, 0, 0},
        {"hwmon4", "VDDQ_VDD2_1V8AO", 2, 1800, 100}, {"hwmon4", "NC", 3, 0, 0},
    };
    (void)h3;
    putf(root, "/sys/class/hwmon/hwmon3/name", "ina3221\n");
    putf(root, "/sys/class/hwmon/hwmon4/name", "ina3221\n");
    for (size_t k = 0; k < sizeof ch / sizeof ch[0]; k++) {
        snprintf(rel, sizeof rel, "/sys/class/hwmon/%s/in%d_label", ch[k].dir, ch[k].i);
        putf(root, rel, "%s\n", ch[k].label);
        snprintf(rel, sizeof rel, "/sys/class/hwmon/%s/in%d_input", ch[k].dir, ch[k].i);
        putf(root, rel, "%d\n", ch[k].mv);
        snprintf(rel, sizeof rel, "/sys/class/hwmon/%s/curr%d_input", ch[k].dir, ch[k].i);
        putf(root, rel, "%d\n", ch[k].ma);
    }
    /* the summation channel has a label but no current: not a rail */
    putf(root, "/sys/class/hwmon/hwmon3/in7_label", "sum of shunt voltages\n");
    putf(root, "/sys/class/hwmon/hwmon3/in7_input", "7\n");
}

static void test_ina3221(void)
{
    char root[512];
    new_root(root, sizeof root, "ina_hwmon");
    make_hwmon_tree(root);
    putf(root, "/proc/device-tree/model", "NVIDIA Jetson AGX Orin Developer Kit");
    jp_power_options o = opts_for(JP_POWER_INA3221, 20, root);
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = open_and_start(&o, &src, &err);
    JP_CHECK("ina3221_hwmon_opens", st == JP_OK, "%s", err.msg);
    if (st == JP_OK) {
        size_t n = 0;
        const jp_power_param *p = jp_power_params(src, &n);
        JP_CHECK("ina3221_hwmon_rails_in_order_duplicates_numbered",
                 n == 6 && strcmp(p[0].name, "VDD_GPU_SOC") == 0 && strcmp(p[3].name, "NC") == 0 &&
                     strcmp(p[4].name, "VDDQ_VDD2_1V8AO") == 0 && strcmp(p[5].name, "NC_2") == 0,
                 "%zu params, first %s", n, n ? p[0].name : "-");
        sleep_ms(250);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        stats g = column_stats(src, &s, "VDD_GPU_SOC", 0), m = column_stats(src, &s, "VDDQ_VDD2_1V8AO", 0);
        double d = jp_power_delivered_interval_ms(src);
        JP_CHECK("ina3221_hwmon_mv_times_ma", st == JP_OK && g.n >= 6 && g.min == 4000 && g.max == 4000 &&
                                                  m.min == 180,
                 "%zu samples, VDD_GPU_SOC %g..%g, VDDQ %g: %s", g.n, g.min, g.max, m.min, err.msg);
        JP_CHECK("ina3221_polled_at_interval", d > 15 && d < 35, "delivered %.1f ms for 20 ms", d);
        size_t before = s.count;
        int64_t t_change = now_ns();
        putf(root, "/sys/class/hwmon/hwmon3/curr1_input", "1000\n");
        sleep_ms(120);
        st = jp_power_take(src, &s, &err);
        double last = s.values[(s.count - 1) * s.n_params];
        bool later = true;
        for (size_t i = before; i < s.count; i++)
            if (s.values[i * s.n_params] == 5000 && s.t_ns[i] < t_change)
                later = false;
        JP_CHECK("ina3221_follows_the_sensor", st == JP_OK && last == 5000 && later, "last %g", last);
        jp_rail_choice ch;
        jp_status c1 = jp_power_choose_device_rail(src, "cpu", NULL, &ch, &err);
        bool cpu_ok = c1 == JP_OK && strcmp(ch.rail, "VDD_CPU_CV") == 0 && strstr(ch.why, "agx-orin");
        JP_CHECK("ina3221_agx_orin_device_rails", cpu_ok && jp_power_board(src) == JP_BOARD_AGX_ORIN,
                 "cpu rail %s (%s)", c1 == JP_OK ? ch.rail : err.msg, ch.why);
        jp_power_samples_free(&s);
        jp_power_close(src);
    }

    /* the older iio layout of JetPack 4 */
    new_root(root, sizeof root, "ina_iio");
    const char *d40 = "/sys/bus/i2c/drivers/ina3221x/0-0040/iio:device0";
    const char *d41 = "/sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1";
    char rel[256];
#define IIO(dir, file, ...) (snprintf(rel, sizeof rel, "%s/%s", dir, file), putf(root, rel, __VA_ARGS__))
    IIO(d40, "rail_name_0", "VDD_SYS_GPU\n");
    IIO(d40, "in_power0_input", "1234\n");
    IIO(d40, "rail_name_1", "VDD_SYS_SOC\n");
    IIO(d40, "in_power1_input", "500\n");
    IIO(d40, "rail_name_2", "VDD_4V0_WIFI\n");
    IIO(d40, "in_power2_input", "0\n");
    IIO(d41, "rail_name_0", "VDD_IN\n");
    IIO(d41, "in_power0_input", "4000\n");
    IIO(d41, "rail_name_1", "VDD_SYS_CPU\n");
    IIO(d41, "in_current1_input", "100\n"); /* no in_power1: V x I */
    IIO(d41, "in_voltage1_input", "5000\n");
    IIO(d41, "rail_name_2", "VDD_SYS_DDR\n");
    IIO(d41, "in_power2_input", "800\n");
#undef IIO
    putf(root, "/proc/device-tree/model", "quill");
    o = opts_for(JP_POWER_INA3221, 20, root);
    st = open_and_start(&o, &src, &err);
    JP_CHECK("ina3221_iio_opens", st == JP_OK, "%s", err.msg);
    if (st == JP_OK) {
        sleep_ms(120);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        stats gpu = column_stats(src, &s, "VDD_SYS_GPU", 0), cpu = column_stats(src, &s, "VDD_SYS_CPU", 0),
              ddr = column_stats(src, &s, "VDD_SYS_DDR", 0);
        size_t n = 0;
        const jp_power_param *p = jp_power_params(src, &n);
        JP_CHECK("ina3221_iio_values",
                 st == JP_OK && n == 6 && strcmp(p[3].name, "VDD_IN") == 0 && gpu.min == 1234 &&
                     cpu.min == 500 && cpu.max == 500 && ddr.min == 800,
                 "%zu params, VDD_SYS_GPU %g, VDD_SYS_CPU %g, VDD_SYS_DDR %g", n, gpu.min, cpu.min, ddr.min);
        jp_rail_choice ch;
        jp_status c1 = jp_power_choose_device_rail(src, "gpu", NULL, &ch, &err);
        JP_CHECK("ina3221_tx2_device_rail_as_seed",
                 c1 == JP_OK && strcmp(ch.rail, "VDD_SYS_GPU") == 0 && jp_power_board(src) == JP_BOARD_TX2,
                 "%s", c1 == JP_OK ? ch.rail : err.msg);
        jp_status c2 = jp_power_choose_device_rail(src, "gpu", "VDD_IN", &ch, &err);
        jp_status c3 = jp_power_choose_device_rail(src, "gpu", "VDD_NOPE", &ch, &err);
        JP_CHECK("ina3221_rail_override", c2 == JP_OK && c3 == JP_ERR_MISSING && strstr(err.msg, "VDD_SYS_DDR"),
                 "override %d, bad override %d: %s", c2, c3, err.msg);
        jp_power_samples_free(&s);
        jp_power_close(src);
    }

    /* nothing there */
    new_root(root, sizeof root, "ina_none");
    o = opts_for(JP_POWER_INA3221, 20, root);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("ina3221_missing_is_an_error",
             st == JP_ERR_MISSING && strstr(err.msg, "ina3221") && strstr(err.msg, "--power-source"),
             "status %d: %s", st, err.msg);

    /* a rail file that cannot be read */
    new_root(root, sizeof root, "ina_unreadable");
    make_hwmon_tree(root);
    char path[1024];
    snprintf(path, sizeof path, "%s/sys/class/hwmon/hwmon3/curr2_input", root);
    unlink(path);
    mkdir(path, 0755); /* a directory where a value should be */
    o = opts_for(JP_POWER_INA3221, 20, root);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("ina3221_unreadable_rail_is_an_error",
             st == JP_ERR_IO && strstr(err.msg, "VDD_CPU_CV") && strstr(err.msg, "curr2_input"),
             "status %d: %s", st, err.msg);
}

/* ---- rapl ---- */

typedef struct rapl_writer {
    char root[512];
    atomic_bool stop;
    pthread_t thread;
    int64_t t0;
} rapl_writer;

/* zone directory, name, mW drawn, wrap range (uJ), start value (uJ) */
static const struct {
    const char *dir, *name;
    double mw;
    long long range, start;
} g_zones[] = {
    {"intel-rapl:0", "package-0", 20000, 2000000, 1900000}, /* wraps every 100 ms */
    {"intel-rapl:0:0", "core", 12000, 262143328850LL, 5000},
    {"intel-rapl:0:2", "dram", 3000, 65532610987LL, 777},
    {"intel-rapl:1", "psys", 30000, 262143328850LL, 1000000},
};
#define N_ZONES (sizeof g_zones / sizeof g_zones[0])

static void rapl_write_all(rapl_writer *w)
{
    double s = (double)(now_ns() - w->t0) / 1e9;
    for (size_t z = 0; z < N_ZONES; z++) {
        long long uj = (g_zones[z].start + (long long)(g_zones[z].mw * 1000.0 * s)) % g_zones[z].range;
        char rel[256];
        snprintf(rel, sizeof rel, "/sys/class/powercap/%s/energy_uj", g_zones[z].dir);
        putf(w->root, rel, "%lld\n", uj);
    }
}

static void *rapl_writer_main(void *arg)
{
    rapl_writer *w = arg;
    while (!atomic_load(&w->stop)) {
        rapl_write_all(w);
        sleep_ms(1);
    }
    return NULL;
}

static void make_rapl_tree(rapl_writer *w, const char *name)
{
    new_root(w->root, sizeof w->root, name);
    for (size_t z = 0; z < N_ZONES; z++) {
        char rel[256];
        snprintf(rel, sizeof rel, "/sys/class/powercap/%s/name", g_zones[z].dir);
        putf(w->root, rel, "%s\n", g_zones[z].name);
        snprintf(rel, sizeof rel, "/sys/class/powercap/%s/max_energy_range_uj", g_zones[z].dir);
        putf(w->root, rel, "%lld\n", g_zones[z].range);
    }
    /* the MMIO view of the same package: ignored */
    putf(w->root, "/sys/class/powercap/intel-rapl-mmio:0/name", "package-0\n");
    putf(w->root, "/sys/class/powercap/intel-rapl-mmio:0/energy_uj", "1\n");
    w->t0 = now_ns();
    atomic_store(&w->stop, false);
    rapl_write_all(w);
}

static void start_writer(rapl_writer *w) { pthread_create(&w->thread, NULL, rapl_writer_main, w); }

static void stop_writer(rapl_writer *w)
{
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
}

static void test_rapl(void)
{
    static rapl_writer w;
    make_rapl_tree(&w, "rapl");
    start_writer(&w);
    jp_power_options o = opts_for(JP_POWER_RAPL, 20, w.root);
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = open_and_start(&o, &src, &err);
    JP_CHECK("rapl_opens", st == JP_OK, "%s", err.msg);
    if (st == JP_OK) {
        size_t n = 0;
        const jp_power_param *p = jp_power_params(src, &n);
        JP_CHECK("rapl_zone_names",
                 n == 4 && strcmp(p[0].name, "package-0") == 0 && strcmp(p[1].name, "package-0:core") == 0 &&
                     strcmp(p[2].name, "package-0:dram") == 0 && strcmp(p[3].name, "psys") == 0,
                 "%zu zones: %s %s %s %s", n, n > 0 ? p[0].name : "", n > 1 ? p[1].name : "",
                 n > 2 ? p[2].name : "", n > 3 ? p[3].name : "");
        sleep_ms(700);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        bool ok = st == JP_OK && s.count >= 15;
        char why[512] = "";
        size_t core_n = n > 1 ? column_stats(src, &s, p[1].name, 0).n : 0;
        for (size_t z = 0; ok && z < N_ZONES && z < n; z++) {
            stats r = column_stats(src, &s, p[z].name, 0);
            /* A wrap read as a negative delta gives a negative power, one
             * read as a huge delta raises the mean (package-0 wraps every
             * 100 ms: 2 J more in one of five 20 ms samples doubles it), a
             * reset drops samples.  Single samples are bounded by those
             * signatures only (no negative power, no outlier of 10x): the
             * writer thread can fall behind for one interval and catch up in
             * the next (80 % behind once under qemu; 87 % once natively, in
             * the ASan build on a loaded 2-core machine: dram 396 mW against
             * 3000), which moves single samples but not the mean.  The mean
             * is held to 10 % natively, 25 % emulated (JP_TEST_TIME_SCALE >
             * 1). */
            const bool emulated = jp_test_time_scale() > 1.0;
            const double lo = 0.0, hi = 10.0, mean_tol = emulated ? 0.25 : 0.1;
            if (r.n < 10 || r.n + 3 < core_n || fabs(r.mean - g_zones[z].mw) > mean_tol * g_zones[z].mw ||
                r.min < lo * g_zones[z].mw || r.max > hi * g_zones[z].mw) {
                ok = false;
                snprintf(why, sizeof why, "%s: %zu values, mean %.0f min %.0f max %.0f, expected %.0f mW",
                         p[z].name, r.n, r.mean, r.min, r.max, g_zones[z].mw);
            }
        }
        JP_CHECK("rapl_power_from_counters_across_wraps", ok, "%s", why[0] ? why : err.msg);
        printf("# rapl fake: %zu samples in 0.7 s, package-0 wrapped ~7 times, delivered %.1f ms\n", s.count,
               jp_power_delivered_interval_ms(src));
        jp_rail_choice ch;
        jp_status c1 = jp_power_choose_device_rail(src, "cpu", NULL, &ch, &err);
        jp_status c2 = jp_power_choose_device_rail(src, "gpu", NULL, &ch, &err);
        JP_CHECK("rapl_device_rails", c1 == JP_ERR_MISSING || (c1 == JP_OK && c2 == JP_ERR_MISSING),
                 "cpu %d gpu %d", c1, c2);
        jp_power_samples_free(&s);
        jp_power_close(src);
    }
    stop_writer(&w);

    /* counters that do not move: no sample at all, never a zero */
    make_rapl_tree(&w, "rapl_still");
    o = opts_for(JP_POWER_RAPL, 20, w.root);
    st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        sleep_ms(150);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        JP_CHECK("rapl_still_counters_give_no_zeros", st == JP_OK && s.count == 0, "%zu samples", s.count);
        jp_power_samples_free(&s);
        jp_power_close(src);
    } else {
        jp_test_fail("rapl_still_counters_give_no_zeros", "%s", err.msg);
    }

    /* unreadable counter: a directory in its place (works as root too) */
    char path[1024];
    snprintf(path, sizeof path, "%s/sys/class/powercap/intel-rapl:0:2/energy_uj", w.root);
    unlink(path);
    mkdir(path, 0755);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("rapl_unreadable_counter_is_an_error",
             st == JP_ERR_IO && strstr(err.msg, "intel-rapl:0:2/energy_uj") && strstr(err.msg, "dram"),
             "status %d: %s", st, err.msg);
    rmdir(path);

    /* permission denied: only meaningful when not root */
    if (geteuid() == 0) {
        jp_test_skip("rapl_permission_denied_says_how_to_fix",
                     "running as root, which reads a mode-000 file anyway (the directory case above "
                     "covers the unreadable counter)");
    } else {
        put(path, "5\n");
        chmod(path, 0);
        st = jp_power_open(&o, &src, &err);
        JP_CHECK("rapl_permission_denied_says_how_to_fix",
                 st == JP_ERR_IO && strstr(err.msg, "sudo chmod o+r") && strstr(err.msg, "root"),
                 "status %d: %s", st, err.msg);
        chmod(path, 0644);
    }

    char root[512];
    new_root(root, sizeof root, "rapl_none");
    o = opts_for(JP_POWER_RAPL, 20, root);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("rapl_missing_is_an_error", st == JP_ERR_MISSING && strstr(err.msg, "powercap"), "status %d: %s",
             st, err.msg);
}

/* ---- nvml ---- */

static bool build_fake_nvml(void)
{
    const char *src_dir = getenv("JP_TEST_SRC_DIR");
    const char *cc = getenv("CC");
    char source[1024], cmd[3000];
    snprintf(source, sizeof source, "%s/fake_nvml.c", src_dir && *src_dir ? src_dir : "tests");
    if (access(source, R_OK) != 0) {
        snprintf(g_nvml_why, sizeof g_nvml_why, "%.400s not found (set JP_TEST_SRC_DIR)", source);
        return false;
    }
    snprintf(g_fake_nvml, sizeof g_fake_nvml, "%s/nvml/libnvidia-ml.so.1", g_tmp);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/nvml", g_tmp);
    mkdirs(dir);
    snprintf(cmd, sizeof cmd, "%s -shared -fPIC -o '%s' '%s' 2>&1", cc && *cc ? cc : "cc", g_fake_nvml, source);
    int rc = system(cmd);
    if (rc != 0 || access(g_fake_nvml, R_OK) != 0) {
        snprintf(g_nvml_why, sizeof g_nvml_why, "cannot build the fake library (%s exited %d)",
                 cc && *cc ? cc : "cc", rc);
        g_fake_nvml[0] = '\0';
        return false;
    }
    return true;
}

static void test_nvml(void)
{
    jp_power_options o = opts_for(JP_POWER_NVML, 20, g_tmp);
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = jp_power_open(&o, &src, &err);
    JP_CHECK("nvml_missing_library_is_an_error",
             st == JP_ERR_MISSING && strstr(err.msg, "no-such-libnvidia-ml.so.1") &&
                 strstr(err.msg, "NVIDIA driver"),
             "status %d: %s", st, err.msg);
    if (!g_fake_nvml[0]) {
        jp_test_skip("nvml_fake_library", "%s", g_nvml_why);
        return;
    }
    o.nvml_library = g_fake_nvml;

    /* energy counter preferred over the power reading */
    setenv("FAKE_NVML_MODE", "energy", 1);
    setenv("FAKE_NVML_POWER_MW", "75000", 1);
    setenv("FAKE_NVML_USAGE_MW", "1000", 1);
    st = open_and_start(&o, &src, &err);
    JP_CHECK("nvml_energy_opens", st == JP_OK, "%s", err.msg);
    if (st == JP_OK) {
        sleep_ms(400);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        stats g = column_stats(src, &s, "gpu", 0);
        JP_CHECK("nvml_energy_counter_differences",
                 st == JP_OK && g.n >= 10 && fabs(g.mean - 75000) < 0.05 * 75000 && g.min > 50000 &&
                     strstr(jp_power_describe(src), "energy"),
                 "%zu samples mean %.0f min %.0f (%s)", g.n, g.mean, g.min, jp_power_describe(src));
        jp_rail_choice ch;
        jp_status c1 = jp_power_choose_device_rail(src, "cuda", NULL, &ch, &err);
        jp_status c2 = jp_power_choose_device_rail(src, "cpu", NULL, &ch, &err);
        JP_CHECK("nvml_device_rail_gpu", c1 == JP_OK && c2 == JP_ERR_MISSING, "gpu %d cpu %d", c1, c2);
        jp_power_samples_free(&s);
        jp_power_close(src);
    }

    /* no energy counter: the power reading */
    setenv("FAKE_NVML_MODE", "power", 1);
    setenv("FAKE_NVML_USAGE_MW", "42000", 1);
    st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        sleep_ms(150);
        jp_power_samples s;
        jp_power_samples_init(&s);
        st = jp_power_take(src, &s, &err);
        stats g = column_stats(src, &s, "gpu", 0);
        JP_CHECK("nvml_power_usage_fallback",
                 st == JP_OK && g.n >= 4 && g.min == 42000 && g.max == 42000 &&
                     strstr(jp_power_describe(src), "PowerUsage"),
                 "%zu samples %g..%g (%s)", g.n, g.min, g.max, jp_power_describe(src));
        jp_power_samples_free(&s);
        jp_power_close(src);
    } else {
        jp_test_fail("nvml_power_usage_fallback", "%s", err.msg);
    }

    setenv("FAKE_NVML_MODE", "init_fail", 1);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("nvml_init_failure_is_an_error", st == JP_ERR_MISSING && strstr(err.msg, "Driver Not Loaded"),
             "status %d: %s", st, err.msg);
    setenv("FAKE_NVML_MODE", "none", 1);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("nvml_without_power_is_an_error", st == JP_ERR_UNSUPPORTED && strstr(err.msg, "Not Supported"),
             "status %d: %s", st, err.msg);
    o.nvml_device = 3;
    setenv("FAKE_NVML_MODE", "energy", 1);
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("nvml_bad_device_index", st == JP_ERR_MISSING && strstr(err.msg, "index 3"), "status %d: %s", st,
             err.msg);
    unsetenv("FAKE_NVML_MODE");
    unsetenv("FAKE_NVML_USAGE_MW");
}

/* ---- auto and none ---- */

typedef struct jiggler {
    char path[1024];
    atomic_bool stop;
    pthread_t thread;
} jiggler;

/* Moves an INA3221 current as a live sensor does. */
static void *jiggle_main(void *arg)
{
    jiggler *j = arg;
    for (int i = 0; !atomic_load(&j->stop); i++) {
        char text[32];
        snprintf(text, sizeof text, "%d\n", 800 + i % 5);
        put(j->path, text);
        sleep_ms(3);
    }
    return NULL;
}

static void test_auto(void)
{
    jp_power_source *src = NULL;
    jp_error err = {0};
    char root[512];
    new_root(root, sizeof root, "auto_empty");

    if (g_fake_tgr[0]) {
        set_fake_env("jp5", NULL, NULL);
        jp_power_options o = opts_for(JP_POWER_AUTO, 20, root);
        double t0 = now_s();
        jp_status st = jp_power_open(&o, &src, &err);
        JP_CHECK("auto_picks_tegrastats_first",
                 st == JP_OK && jp_power_source_kind(src) == JP_POWER_TEGRASTATS &&
                     strstr(jp_power_auto_log(src), "tegrastats: chosen") && now_s() - t0 < 3.0,
                 "status %d kind %s: %s", st, src ? jp_power_kind_name(jp_power_source_kind(src)) : "-",
                 st == JP_OK ? jp_power_auto_log(src) : err.msg);
        if (st == JP_OK) {
            /* the chosen source starts again for the profile */
            st = jp_power_start(src, &err);
            sleep_ms(100);
            jp_power_samples s;
            jp_power_samples_init(&s);
            jp_status tk = jp_power_take(src, &s, &err);
            JP_CHECK("auto_chosen_source_restarts", st == JP_OK && tk == JP_OK && s.count >= 1, "%s", err.msg);
            jp_power_samples_free(&s);
        }
        jp_power_close(src);
        set_fake_env(NULL, NULL, NULL);
    } else {
        jp_test_skip("auto_picks_tegrastats_first", "no fake tegrastats in $JP_TEST_BIN_DIR");
    }

    /* ina3221 with a live sensor, tegrastats missing */
    new_root(root, sizeof root, "auto_ina");
    make_hwmon_tree(root);
    static jiggler j;
    snprintf(j.path, sizeof j.path, "%s/sys/class/hwmon/hwmon3/curr1_input", root);
    atomic_store(&j.stop, false);
    pthread_create(&j.thread, NULL, jiggle_main, &j);
    jp_power_options o = opts_for(JP_POWER_AUTO, 20, root);
    o.tegrastats_program = "/nonexistent/tegrastats";
    jp_status st = jp_power_open(&o, &src, &err);
    atomic_store(&j.stop, true);
    pthread_join(j.thread, NULL);
    JP_CHECK("auto_picks_ina3221_when_no_tegrastats",
             st == JP_OK && jp_power_source_kind(src) == JP_POWER_INA3221 &&
                 strstr(jp_power_auto_log(src), "tegrastats: '/nonexistent/tegrastats' does not exist") &&
                 strstr(jp_power_auto_log(src), "ina3221: chosen"),
             "status %d: %s", st, st == JP_OK ? jp_power_auto_log(src) : err.msg);
    jp_power_close(src);

    /* a stuck INA3221 (values never change) is passed over for rapl */
    static rapl_writer w;
    make_rapl_tree(&w, "auto_rapl");
    make_hwmon_tree(w.root);
    start_writer(&w);
    o = opts_for(JP_POWER_AUTO, 20, w.root);
    o.tegrastats_program = "/nonexistent/tegrastats";
    st = jp_power_open(&o, &src, &err);
    stop_writer(&w);
    JP_CHECK("auto_skips_stuck_sensor_picks_rapl",
             st == JP_OK && jp_power_source_kind(src) == JP_POWER_RAPL &&
                 strstr(jp_power_auto_log(src), "stuck sensor") && strstr(jp_power_auto_log(src), "nvml:") &&
                 strstr(jp_power_auto_log(src), "rapl: chosen"),
             "status %d: %s", st, st == JP_OK ? jp_power_auto_log(src) : err.msg);
    jp_power_close(src);

    if (g_fake_nvml[0]) {
        new_root(root, sizeof root, "auto_nvml");
        o = opts_for(JP_POWER_AUTO, 20, root);
        o.tegrastats_program = "/nonexistent/tegrastats";
        o.nvml_library = g_fake_nvml;
        setenv("FAKE_NVML_MODE", "energy", 1);
        st = jp_power_open(&o, &src, &err);
        JP_CHECK("auto_picks_nvml", st == JP_OK && jp_power_source_kind(src) == JP_POWER_NVML, "status %d: %s",
                 st, st == JP_OK ? jp_power_auto_log(src) : err.msg);
        jp_power_close(src);
        unsetenv("FAKE_NVML_MODE");
    } else {
        jp_test_skip("auto_picks_nvml", "%s", g_nvml_why);
    }

    new_root(root, sizeof root, "auto_nothing");
    o = opts_for(JP_POWER_AUTO, 20, root);
    o.tegrastats_program = "/nonexistent/tegrastats";
    st = jp_power_open(&o, &src, &err);
    JP_CHECK("auto_nothing_answers_names_every_source",
             st == JP_ERR_MISSING && !src && strstr(err.msg, "tegrastats:") && strstr(err.msg, "ina3221:") &&
                 strstr(err.msg, "nvml:") && strstr(err.msg, "rapl:") && strstr(err.msg, "--power-source none"),
             "status %d: %s", st, err.msg);
}

static void test_none_and_tables(void)
{
    jp_power_options o;
    jp_power_options_init(&o);
    o.kind = JP_POWER_NONE;
    jp_power_source *src = NULL;
    jp_error err = {0};
    jp_status st = open_and_start(&o, &src, &err);
    if (st == JP_OK) {
        sleep_ms(30);
        jp_power_samples s;
        jp_power_samples_init(&s);
        jp_status tk = jp_power_take(src, &s, &err);
        size_t n = 9;
        jp_power_params(src, &n);
        jp_rail_choice ch;
        jp_status cs = jp_power_choose_device_rail(src, "cpu", NULL, &ch, &err);
        JP_CHECK("none_source_has_nothing",
                 tk == JP_OK && s.count == 0 && n == 0 && isnan(jp_power_delivered_interval_ms(src)) &&
                     cs == JP_ERR_MISSING && jp_power_source_kind(src) == JP_POWER_NONE,
                 "take %d, %zu samples, %zu params, rail %d", tk, s.count, n, cs);
        jp_power_samples_free(&s);
        jp_power_close(src);
    } else {
        jp_test_fail("none_source_has_nothing", "%s", err.msg);
    }

    jp_power_kind k;
    JP_CHECK("power_kind_names",
             jp_power_kind_parse("rapl", &k, &err) == JP_OK && k == JP_POWER_RAPL &&
                 jp_power_kind_parse("bogus", &k, &err) == JP_ERR_ARG && strstr(err.msg, "tegrastats, ina3221") &&
                 strcmp(jp_power_kind_name(JP_POWER_AUTO), "auto") == 0,
             "%s", err.msg);
    jp_power_options_init(&o);
    o.interval_ms = 0;
    JP_CHECK("power_bad_interval", jp_power_open(&o, &src, &err) == JP_ERR_ARG && strstr(err.msg, "--tgr_interval"),
             "%s", err.msg);

    const struct {
        const char *model;
        jp_board board;
    } models[] = {
        {"NVIDIA Jetson AGX Orin Developer Kit", JP_BOARD_AGX_ORIN},
        {"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", JP_BOARD_ORIN_NANO},
        {"NVIDIA Jetson Orin NX Engineering Reference Developer Kit", JP_BOARD_ORIN_NX},
        {"NVIDIA Jetson Xavier NX Developer Kit", JP_BOARD_XAVIER_NX},
        {"Jetson-AGX", JP_BOARD_AGX_XAVIER},
        {"NVIDIA Jetson AGX Xavier Developer Kit", JP_BOARD_AGX_XAVIER},
        {"NVIDIA Jetson Nano Developer Kit", JP_BOARD_NANO},
        {"quill", JP_BOARD_TX2},
        {"NVIDIA Jetson TX2", JP_BOARD_TX2},
        {"NVIDIA Jetson TX2 NX Developer Kit", JP_BOARD_TX2_NX},
        {"NVIDIA Jetson TX1 Developer Kit", JP_BOARD_TX1},
        {"NVIDIA Jetson AGX Thor Developer Kit", JP_BOARD_AGX_THOR},
        {"Raspberry Pi 4 Model B Rev 1.4", JP_BOARD_UNKNOWN},
        {"", JP_BOARD_UNKNOWN},
    };
    bool ok = true;
    char why[256] = "";
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        jp_board b = jp_board_from_model(models[i].model);
        if (b != models[i].board && ok) {
            ok = false;
            snprintf(why, sizeof why, "'%s' -> %s, expected %s", models[i].model, jp_board_name(b),
                     jp_board_name(models[i].board));
        }
    }
    JP_CHECK("board_from_device_tree_model", ok, "%s", why);

    const struct {
        jp_board board;
        jp_power_kind kind;
        const char *device, *rail;
    } rails[] = {
        {JP_BOARD_TX2, JP_POWER_TEGRASTATS, "cpu", "VDD_SYS_CPU"},
        {JP_BOARD_TX2, JP_POWER_TEGRASTATS, "cuda", "VDD_SYS_GPU"},
        {JP_BOARD_AGX_XAVIER, JP_POWER_TEGRASTATS, "gpu", "GPU"},
        {JP_BOARD_AGX_XAVIER, JP_POWER_INA3221, "cpu", "CPU"},
        {JP_BOARD_AGX_ORIN, JP_POWER_INA3221, "cpu", "VDD_CPU_CV"},
        {JP_BOARD_AGX_ORIN, JP_POWER_TEGRASTATS, "gpu", "VDD_GPU_SOC"},
        {JP_BOARD_ORIN_NX, JP_POWER_TEGRASTATS, "gpu", "VDD_CPU_GPU_CV"},
        {JP_BOARD_ORIN_NANO, JP_POWER_TEGRASTATS, "cpu", "VDD_CPU_GPU_CV"},
        {JP_BOARD_XAVIER_NX, JP_POWER_TEGRASTATS, "gpu", "VDD_CPU_GPU_CV"},
        {JP_BOARD_NANO, JP_POWER_TEGRASTATS, "cpu", "POM_5V_CPU"},
        {JP_BOARD_NANO, JP_POWER_TEGRASTATS, "gpu", "POM_5V_GPU"},
        {JP_BOARD_AGX_THOR, JP_POWER_TEGRASTATS, "gpu", "VDD_GPU"},
        {JP_BOARD_UNKNOWN, JP_POWER_NVML, "cuda", "gpu"},
        {JP_BOARD_UNKNOWN, JP_POWER_RAPL, "cpu", "package-0"},
        {JP_BOARD_UNKNOWN, JP_POWER_RAPL, "gpu", NULL},
        {JP_BOARD_UNKNOWN, JP_POWER_TEGRASTATS, "gpu", NULL},
        {JP_BOARD_TX2, JP_POWER_TEGRASTATS, "npu", NULL},
    };
    ok = true;
    for (size_t i = 0; i < sizeof rails / sizeof rails[0]; i++) {
        const char *r = jp_power_device_rail(rails[i].board, rails[i].kind, rails[i].device);
        bool same = (r == NULL && rails[i].rail == NULL) || (r && rails[i].rail && strcmp(r, rails[i].rail) == 0);
        if (!same && ok) {
            ok = false;
            snprintf(why, sizeof why, "%s/%s/%s -> %s, expected %s", jp_board_name(rails[i].board),
                     jp_power_kind_name(rails[i].kind), rails[i].device, r ? r : "NULL",
                     rails[i].rail ? rails[i].rail : "NULL");
        }
    }
    JP_CHECK("device_rail_table", ok, "%s", why);
}

/* The seven Jetsons of issue 13 from fake device trees: each real `model`
 * string written as the kernel exposes it (NUL-terminated) under a fresh
 * root, detected by jp_board_detect, and its CPU and GPU rails from the
 * table. */
static void test_boards_from_fake_device_trees(void)
{
    const struct {
        const char *label, *model; /* /proc/device-tree/model, without its NUL */
        jp_board board;
        const char *cpu_rail, *gpu_rail;
    } boards[] = {
        {"tx2", "quill", JP_BOARD_TX2, "VDD_SYS_CPU", "VDD_SYS_GPU"},
        {"tx2_l4t32", "NVIDIA Jetson TX2", JP_BOARD_TX2, "VDD_SYS_CPU", "VDD_SYS_GPU"},
        {"agx_xavier", "Jetson-AGX", JP_BOARD_AGX_XAVIER, "CPU", "GPU"},
        {"agx_xavier_l4t35", "NVIDIA Jetson AGX Xavier Developer Kit", JP_BOARD_AGX_XAVIER, "CPU", "GPU"},
        {"xavier_nx", "NVIDIA Jetson Xavier NX Developer Kit", JP_BOARD_XAVIER_NX, "VDD_CPU_GPU_CV",
         "VDD_CPU_GPU_CV"},
        {"agx_orin", "NVIDIA Jetson AGX Orin Developer Kit", JP_BOARD_AGX_ORIN, "VDD_CPU_CV", "VDD_GPU_SOC"},
        {"orin_nx", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit", JP_BOARD_ORIN_NX,
         "VDD_CPU_GPU_CV", "VDD_CPU_GPU_CV"},
        {"orin_nano", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
         JP_BOARD_ORIN_NANO, "VDD_CPU_GPU_CV", "VDD_CPU_GPU_CV"},
        {"agx_thor", "NVIDIA Jetson AGX Thor Developer Kit", JP_BOARD_AGX_THOR, "VDD_CPU_SOC_MSS", "VDD_GPU"},
        {"no_device_tree", NULL, JP_BOARD_UNKNOWN, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof boards / sizeof boards[0]; i++) {
        char root[512], dir[64], path[1024], model[256];
        snprintf(dir, sizeof dir, "dt_%s", boards[i].label);
        new_root(root, sizeof root, dir);
        if (boards[i].model) {
            snprintf(path, sizeof path, "%s/proc/device-tree", root);
            mkdirs(path);
            snprintf(path, sizeof path, "%s/proc/device-tree/model", root);
            FILE *fp = fopen(path, "wb");
            if (fp) {
                fwrite(boards[i].model, 1, strlen(boards[i].model) + 1, fp); /* with the NUL */
                fclose(fp);
            }
        }
        const jp_board b = jp_board_detect(root, model, sizeof model);
        const char *cpu = jp_power_device_rail(b, JP_POWER_TEGRASTATS, "cpu");
        const char *gpu = jp_power_device_rail(b, JP_POWER_INA3221, "cuda");
        const bool rails_ok = (cpu == NULL) == (boards[i].cpu_rail == NULL) &&
                              (gpu == NULL) == (boards[i].gpu_rail == NULL) &&
                              (!cpu || strcmp(cpu, boards[i].cpu_rail) == 0) &&
                              (!gpu || strcmp(gpu, boards[i].gpu_rail) == 0);
        char name[160];
        snprintf(name, sizeof name, "board_from_fake_device_tree_%s", boards[i].label);
        JP_CHECK(name,
                 b == boards[i].board && strcmp(model, boards[i].model ? boards[i].model : "") == 0 && rails_ok,
                 "board %s, model '%s', rails %s/%s; expected %s, %s/%s", jp_board_name(b), model,
                 cpu ? cpu : "none", gpu ? gpu : "none", jp_board_name(boards[i].board),
                 boards[i].cpu_rail ? boards[i].cpu_rail : "none",
                 boards[i].gpu_rail ? boards[i].gpu_rail : "none");
    }
}

/* `nvpmodel -q` as each generation prints it (JetPack 4 on TX2, Nano and
 * Xavier NX with its fan warning, JetPack 5 on AGX Orin, JetPack 6 on Orin
 * Nano and its Super mode, --verbose, CRLF), then outputs that must be
 * refused. */
static void test_nvpmodel(void)
{
    const struct {
        const char *label, *text, *name;
        long id;
    } good[] = {
        {"jp4_tx2", "NV Power Mode: MAXN\n0\n", "MAXN", 0},
        {"jp4_tx2_maxq", "NV Power Mode: MAXQ\n1", "MAXQ", 1},
        {"jp4_nano_fan_warning", "NVPM WARN: fan mode is not set!\nNV Power Mode: MAXN\n0\n", "MAXN", 0},
        {"jp4_agx_xavier", "NV Power Mode: MODE_30W_ALL\n3\n", "MODE_30W_ALL", 3},
        {"jp5_agx_orin", "NVPM WARN: Golden image context is already created\nNV Power Mode: MODE_30W\n2\n",
         "MODE_30W", 2},
        {"jp6_orin_nano", "NV Power Mode: 25W\n1\n", "25W", 1},
        {"jp6_orin_nano_super", "NV Power Mode: MAXN_SUPER\n2\n", "MAXN_SUPER", 2},
        {"verbose", "NVPM VERB: Config file: /etc/nvpmodel.conf\nNVPM VERB: parsing done for /etc/nvpmodel.conf\n"
                    "NVPM VERB: Current mode: NV Power Mode: 15W\n0\nNVPM VERB: PARAM CPU_ONLINE: ARG CORE_0: "
                    "PATH /sys/devices/system/cpu/cpu0/online: REAL_VAL: 1 CONF_VAL: 1\n",
         "15W", 0},
        {"crlf", "NV Power Mode: MODE_15W_2CORE \r\n 2 \r\n", "MODE_15W_2CORE", 2},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        jp_nvpmodel pm;
        jp_error err = {0};
        jp_status st = jp_nvpmodel_parse(good[i].text, &pm, &err);
        char name[128];
        snprintf(name, sizeof name, "nvpmodel_q_%s", good[i].label);
        JP_CHECK(name, st == JP_OK && strcmp(pm.name, good[i].name) == 0 && pm.id == good[i].id,
                 "status %d, '%s' id %ld, expected '%s' %ld (%s)", st, pm.name, pm.id, good[i].name, good[i].id,
                 err.msg);
    }
    const struct {
        const char *label, *text, *says;
    } bad[] = {
        {"empty", "", "no 'NV Power Mode:'"},
        {"error_only", "NVPM ERROR: failed to read PARAM", "no 'NV Power Mode:'"},
        {"no_id", "NV Power Mode: MAXN\n", "expected the mode's id"},
        {"id_not_a_number", "NV Power Mode: MAXN\nNVPM WARN: fan mode is not set!\n", "expected the mode's id"},
        {"no_name", "NV Power Mode:   \n0\n", "names no mode"},
        {"negative_id", "NV Power Mode: MAXN\n-1\n", "expected the mode's id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jp_nvpmodel pm;
        jp_error err = {0};
        jp_status st = jp_nvpmodel_parse(bad[i].text, &pm, &err);
        char name[128];
        snprintf(name, sizeof name, "nvpmodel_q_refuses_%s", bad[i].label);
        JP_CHECK(name, st == JP_ERR_FORMAT && strstr(err.msg, bad[i].says) && pm.id == -1,
                 "status %d, id %ld: %s", st, pm.id, err.msg);
    }
}

static void remove_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/jp_power_test_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tmp)) {
        jp_test_fail("scratch_directory", "mkdtemp %s: %s", g_tmp, strerror(errno));
        return jp_test_exit_code();
    }
    const char *bin = getenv("JP_TEST_BIN_DIR");
    snprintf(g_fake_tgr, sizeof g_fake_tgr, "%s/fake_tegrastats", bin && *bin ? bin : "build/tests");
    if (access(g_fake_tgr, X_OK) != 0)
        g_fake_tgr[0] = '\0';
    signal(SIGPIPE, SIG_IGN);
    build_fake_nvml();

    double t0 = now_s();
    if (g_fake_tgr[0]) {
        test_tegrastats_tx2();
        test_tegrastats_formats();
    } else {
        jp_test_skip("tegrastats_fake", "no executable fake_tegrastats in %s (build it: make tests-build)",
                     bin && *bin ? bin : "build/tests");
    }
    test_tegrastats_failures();
    test_ina3221();
    test_rapl();
    test_nvml();
    test_auto();
    test_none_and_tables();
    test_boards_from_fake_device_trees();
    test_nvpmodel();
    JP_CHECK("no_zombie_left_at_the_end", zombie_children() == 0, "%d zombie children", zombie_children());
    printf("# test_power_sources: %.1f s\n", now_s() - t0);
    remove_tree(g_tmp);
    return jp_test_exit_code();
}
