/*
 * fake_tegrastats.c: a stand-in for Jetson's `tegrastats`, for tests on
 * machines without a Jetson.
 *
 *   fake_tegrastats [--interval MS] [--format tx2|xavier|jp5|orin-nx|jp7] [--stop]
 *
 * Prints one line every --interval ms (default 1000, as the real one) in
 * the real format of a board generation, flushed line by line:
 *   tx2      TX2, JetPack 4: unitless rails "cur/avg", two cores off
 *   xavier   AGX Xavier, JetPack 4: rails GPU, CPU, SOC, ... beside GPU@..C
 *   jp5      AGX Orin, JetPack 5: timestamp, "cur mW/avg mW", two rails NC
 *   orin-nx  Orin NX, JetPack 6: shared VDD_CPU_GPU_CV, GR3D_FREQ 0%@[f]
 *   jp7      AGX Thor, JetPack 7: "cur mW/avg mW/max mW" rails
 * The format is --format, else $FAKE_TEGRASTATS_FORMAT, else tx2.  The
 * averages (and maxima) are the real running ones, so that a reader that
 * takes them instead of the current value is caught.  CPU loads and RAM
 * move a little from line to line, as on a real board.
 *
 * Environment:
 *   FAKE_TEGRASTATS_CONTROL=FILE  re-read before every line; holds
 *       "NAME=mW" pairs separated by blanks or newlines, e.g.
 *       "VDD_SYS_GPU=1234 VDD_SYS_CPU=567", setting the current value of
 *       those rails (names as the parser gives them: NC_2 is the 2nd NC).
 *   FAKE_TEGRASTATS_MODE=
 *       exit_after:N   print N lines, a message on stderr, exit status 3;
 *       exit_when:FILE as exit_after, once FILE exists (a test makes it when
 *                      it has seen what it wanted, whatever the machine's speed);
 *       garbage        print lines that are not tegrastats lines;
 *       long_line:MB   first print one line of MB MiB (no tegrastats field),
 *                      then real lines;
 *       binary         print lines of binary garbage (terminal escape
 *                      sequences, bytes >= 0x80, a NUL), and the same on
 *                      stderr before exiting after 20 lines, status 3;
 *       slow[:MS]      print every MS ms (default 4 intervals), whatever
 *                      --interval says;
 *       silent         print nothing until killed;
 *       ignore_term    ignore SIGTERM (only SIGKILL ends it).
 *   FAKE_TEGRASTATS_VARY=1  every rail's value changes from line to line
 *       (default + (line * 37) % 500), so that each layer's window has its
 *       own mean.
 *   FAKE_TEGRASTATS_LOG=FILE  appends "<CLOCK_MONOTONIC ns> NAME=mW ..." for
 *       every line printed, taken just before printing: what the fake
 *       emitted and when, for tests to recompute each window's mean.
 *   FAKE_TEGRASTATS_LOAD=NAME:MW  the rail NAME draws MW more per thread of
 *       the parent process (jplprof) that is running when the line is made
 *       (state R in /proc/PPID/task/x/stat); a true power that follows what
 *       jplprof runs.
 *   FAKE_TEGRASTATS_LAG_S=TAU  every rail prints a first-order sensor's
 *       reading of its true value (TAU dy/dt = x - y, solved exactly over
 *       the time between lines), as an INA3221 that averages: the printed
 *       value lags the true one.
 * --stop is accepted and exits at once (the real one stops a background
 * instance).  SIGTERM and SIGINT end it with status 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

typedef enum rail_style { UNITLESS_2, MW_2, MW_3 } rail_style;

#define MAX_RAILS 8

typedef struct format {
    const char *name;
    rail_style style;
    bool timestamp;
    const char *body;                 /* everything before the rails; %s = CPU list */
    const char *rails[MAX_RAILS];     /* names as printed                 */
    const char *keys[MAX_RAILS];      /* names in the control file        */
    double defaults[MAX_RAILS];       /* mW                               */
} format;

static const format formats[] = {
    {"tx2", UNITLESS_2, false,
     "SWAP 0/3930MB (cached 0MB) CPU [%s] EMC_FREQ 4%%@1600 GR3D_FREQ 0%%@624 APE 150 "
     "PLL@35.5C MCPU@35.5C PMIC@100C Tboard@30C GPU@32C BCPU@35.5C thermal@34.1C Tdiode@31.5C",
     {"VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"},
     {"VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI", "VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR"},
     {153, 306, 0, 1649, 306, 173}},
    {"xavier", UNITLESS_2, false,
     "SWAP 0/7912MB (cached 0MB) CPU [%s] EMC_FREQ 0%%@2133 GR3D_FREQ 0%%@905 APE 150 MTS fg 0%% "
     "bg 3%% AO@30C GPU@31C Tdiode@33C PMIC@50C AUX@30.5C CPU@32C thermal@30.95C Tboard@32C",
     {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"},
     {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"},
     {463, 1236, 2318, 0, 154, 2934}},
    {"jp5", MW_2, true,
     "SWAP 45/15294MB (cached 0MB) CPU [%s] EMC_FREQ 0%%@3199 GR3D_FREQ 0%%@1300 GR3D2_FREQ "
     "0%%@1300 VIC_FREQ 729 APE 174 CV0@-256C CPU@52.625C Tboard@40C SOC2@48.468C Tdiode@42.25C "
     "SOC0@49.718C CV1@-256C GPU@48.281C tj@52.625C SOC1@49.781C CV2@-256C",
     {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "NC", "VDDQ_VDD2_1V8AO", "NC"},
     {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "NC", "VDDQ_VDD2_1V8AO", "NC_2"},
     {4368, 1588, 4233, 0, 403, 0}},
    {"orin-nx", MW_2, true,
     "SWAP 0/7828MB (cached 0MB) CPU [%s] EMC_FREQ 0%%@2133 GR3D_FREQ 0%%@[305] NVENC off NVDEC "
     "off NVJPG off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off PVA0_FREQ off APE 174 "
     "cv0@52.781C cpu@55.187C soc2@52.062C soc0@54.062C cv1@52.156C gpu@51.343C tj@55.875C "
     "soc1@55.875C cv2@51.125C",
     {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"},
     {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"},
     {5469, 970, 1579}},
    {"jp7", MW_3, true,
     "SWAP 0/2048MB (cached 0MB) CPU [%s] EMC_FREQ 7%%@3200 GR3D_FREQ @[314,314,314] NVENC0_FREQ "
     "@1556 NVENC1_FREQ @1556 NVDEC0_FREQ @1556 NVDEC1_FREQ @1556 NVJPG0_FREQ @1556 VIC 59%%@423 "
     "OFA_FREQ @1556 PVA0_FREQ off APE 300 cpu@34.312C/34.843C tj@35.906C/35.906C "
     "soc012@34.093C/34.437C gpu@35.906C/35.906C soc345@34.437C/34.437C",
     {"VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"},
     {"VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"},
     {4925, 7953, 6667}},
};

/* Cores per format, "off" ones included, and RAM totals. */
static int cores_of(const format *f, int *off_mask, int *ram_total)
{
    if (strcmp(f->name, "tx2") == 0) {
        *off_mask = 0x6; /* the two Denver cores off */
        *ram_total = 7860;
        return 6;
    }
    *off_mask = 0;
    if (strcmp(f->name, "xavier") == 0) {
        *ram_total = 15825;
        return 8;
    }
    if (strcmp(f->name, "jp5") == 0) {
        *ram_total = 30587;
        return 12;
    }
    if (strcmp(f->name, "orin-nx") == 0) {
        *ram_total = 15657;
        return 8;
    }
    *ram_total = 125811;
    return 14;
}

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Reads "NAME=value" pairs from path into values (by f->keys). */
static void read_control(const char *path, const format *f, double *values, int n_rails)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char tok[128];
    while (fscanf(fp, "%127s", tok) == 1) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *end;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1)
            continue;
        for (int i = 0; i < n_rails; i++)
            if (strcmp(f->keys[i], tok) == 0)
                values[i] = v;
    }
    fclose(fp);
}

/* How many threads of process pid are running or runnable (state R in
 * /proc/PID/task/x/stat) right now; -1 when unreadable.  A spinning thread
 * is R even while another process holds the core, so the simulated power
 * follows what jplprof runs, not how loaded the machine is. */
static int running_threads(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int running = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[384], buf[512];
        snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
        FILE *fp = fopen(path, "r");
        size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
        if (fp)
            fclose(fp);
        buf[n] = '\0';
        const char *close = strrchr(buf, ')'); /* "pid (comm) S ..." */
        if (close && close[1] == ' ' && close[2] == 'R')
            running++;
    }
    closedir(d);
    return running;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_until(struct timespec *t)
{
    while (!g_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
        ;
}

static void add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

int main(int argc, char **argv)
{
    long interval_ms = 1000;
    const char *fmt_name = getenv("FAKE_TEGRASTATS_FORMAT");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval_ms = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            fmt_name = argv[++i];
        } else if (strcmp(argv[i], "--stop") == 0) {
            return 0;
        }
    }
    if (interval_ms < 1)
        interval_ms = 1;
    if (!fmt_name || !*fmt_name)
        fmt_name = "tx2";
    const format *f = NULL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, fmt_name) == 0)
            f = &formats[i];
    if (!f) {
        fprintf(stderr, "fake_tegrastats: unknown format '%s' (tx2, xavier, jp5, orin-nx, jp7)\n",
                fmt_name);
        return 2;
    }

    const char *mode = getenv("FAKE_TEGRASTATS_MODE");
    if (!mode)
        mode = "";
    long exit_after = -1;
    bool garbage = false, silent = false, binary = false;
    long period_ms = interval_ms;
    const char *exit_file = NULL;
    if (strncmp(mode, "exit_after:", 11) == 0)
        exit_after = strtol(mode + 11, NULL, 10);
    else if (strncmp(mode, "exit_when:", 10) == 0)
        exit_file = mode + 10;
    else if (strcmp(mode, "garbage") == 0)
        garbage = true;
    else if (strcmp(mode, "binary") == 0)
        binary = true;
    else if (strncmp(mode, "long_line:", 10) == 0) {
        long mb = strtol(mode + 10, NULL, 10);
        static char chunk[1 << 20];
        memset(chunk, 'A', sizeof chunk);
        for (long i = 0; i < mb; i++)
            fwrite(chunk, 1, sizeof chunk, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    else if (strcmp(mode, "silent") == 0)
        silent = true;
    else if (strncmp(mode, "slow", 4) == 0)
        period_ms = mode[4] == ':' ? strtol(mode + 5, NULL, 10) : 4 * interval_ms;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    if (strcmp(mode, "ignore_term") == 0)
        sa.sa_handler = SIG_IGN;
    sigaction(SIGTERM, &sa, NULL);

    const char *control = getenv("FAKE_TEGRASTATS_CONTROL");
    const char *vary = getenv("FAKE_TEGRASTATS_VARY");
    FILE *log = NULL;
    if (getenv("FAKE_TEGRASTATS_LOG")) {
        log = fopen(getenv("FAKE_TEGRASTATS_LOG"), "a");
        if (!log) {
            fprintf(stderr, "fake_tegrastats: cannot open FAKE_TEGRASTATS_LOG: %s\n", strerror(errno));
            return 2;
        }
    }
    int n_rails = 0;
    while (n_rails < MAX_RAILS && f->rails[n_rails])
        n_rails++;
    double cur[MAX_RAILS], sum[MAX_RAILS] = {0}, max[MAX_RAILS];
    for (int i = 0; i < n_rails; i++)
        max[i] = -1e300;
    int off_mask, ram_total;
    int cores = cores_of(f, &off_mask, &ram_total);

    /* the load-driven rail and the sensor lag */
    int load_rail = -1;
    double load_mw = 0;
    const char *load = getenv("FAKE_TEGRASTATS_LOAD");
    if (load && strchr(load, ':')) {
        for (int i = 0; i < n_rails; i++)
            if (strncmp(f->keys[i], load, (size_t)(strchr(load, ':') - load)) == 0 &&
                f->keys[i][strchr(load, ':') - load] == '\0')
                load_rail = i;
        load_mw = strtod(strchr(load, ':') + 1, NULL);
    }
    double lag_s = getenv("FAKE_TEGRASTATS_LAG_S") ? strtod(getenv("FAKE_TEGRASTATS_LAG_S"), NULL) : 0;
    double sensor[MAX_RAILS] = {0};
    bool sensor_set = false;
    double last_t = now_s();

    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    add_ms(&next, period_ms); /* the real one prints after one interval */
    long line = 0;
    while (!g_stop) {
        sleep_until(&next);
        if (g_stop)
            break;
        add_ms(&next, period_ms);
        if (silent)
            continue;
        if ((exit_after >= 0 && line >= exit_after) || (exit_file && access(exit_file, F_OK) == 0)) {
            fprintf(stderr, "fake_tegrastats: simulated failure after %ld lines\n", line);
            return 3;
        }
        line++;
        if (binary) {
            /* clear screen, set the window title, bell, a NUL, high bytes */
            static const char junk[] = "\x1b[2J\x1b]0;pwned\x07\x00\xff\xfe\x80VDD_SYS_CPU\x1b[31m 1/1";
            fwrite(junk, 1, sizeof junk - 1, stdout);
            fputc('\n', stdout);
            fflush(stdout);
            if (line >= 20) {
                fwrite(junk, 1, sizeof junk - 1, stderr);
                fputc('\n', stderr);
                return 3;
            }
            continue;
        }
        if (garbage) {
            printf("fake_tegrastats: this is not a tegrastats line (%ld)\n", line);
            fflush(stdout);
            continue;
        }
        for (int i = 0; i < n_rails; i++)
            cur[i] = f->defaults[i];
        if (control)
            read_control(control, f, cur, n_rails);
        if (vary && *vary == '1')
            for (int i = 0; i < n_rails; i++)
                cur[i] += (double)((line * 37) % 500);
        double t = now_s();
        if (load_rail >= 0) {
            int running = running_threads(getppid());
            if (running > 0)
                cur[load_rail] += load_mw * running;
        }
        if (lag_s > 0) {
            double a = sensor_set ? exp(-(t - last_t) / lag_s) : 0;
            for (int i = 0; i < n_rails; i++)
                cur[i] = sensor[i] = cur[i] + (sensor[i] - cur[i]) * a;
            sensor_set = true;
        }
        last_t = t;

        char out[4096];
        size_t used = 0;
#define PUT(...) used += (size_t)snprintf(out + used, sizeof out - used, __VA_ARGS__)
        if (f->timestamp) {
            time_t now = time(NULL);
            struct tm tm;
            localtime_r(&now, &tm);
            used += strftime(out, sizeof out, "%m-%d-%Y %H:%M:%S ", &tm);
        }
        PUT("RAM %d/%dMB (lfb 236x4MB) ", 1400 + (int)(line % 7), ram_total);
        char cpus[1024];
        size_t cu = 0;
        for (int c = 0; c < cores; c++) {
            if (off_mask & (1 << c))
                cu += (size_t)snprintf(cpus + cu, sizeof cpus - cu, "%soff", c ? "," : "");
            else
                cu += (size_t)snprintf(cpus + cu, sizeof cpus - cu, "%s%d%%@%d", c ? "," : "",
                                       (int)((line * 7 + c * 13) % 40), 1190 + c);
        }
        PUT(f->body, cpus);
        for (int i = 0; i < n_rails; i++) {
            sum[i] += cur[i];
            if (cur[i] > max[i])
                max[i] = cur[i];
            long c = lround(cur[i]), a = lround(sum[i] / (double)line), m = lround(max[i]);
            if (f->style == UNITLESS_2)
                PUT(" %s %ld/%ld", f->rails[i], c, a);
            else if (f->style == MW_2)
                PUT(" %s %ldmW/%ldmW", f->rails[i], c, a);
            else
                PUT(" %s %ldmW/%ldmW/%ldmW", f->rails[i], c, a, m);
        }
#undef PUT
        if (log) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            fprintf(log, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            for (int i = 0; i < n_rails; i++)
                fprintf(log, " %s=%ld", f->keys[i], lround(cur[i]));
            fputc('\n', log);
            fflush(log);
        }
        fputs(out, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    return 0;
}
