/*
 * cmd_profile.c: `jplprof profile`, the dataset generator (DESIGN.md,
 * "Measurement protocol"; the seed tool's options and defaults).
 *
 * For each model and image: one forward pass gives every layer its input;
 * --passes whole passes time each layer in context; then each layer (or op,
 * --granularity op) runs alone, through profiler/measure.h (the protocol
 * lives there; this file keeps the options, the files and the output):
 *   latency: --warmup calls, then --lt_smpl_count calls, each timed on its
 *            own (device synchronised before each clock read), every sample
 *            kept;
 *   power:   the seed's window: --cooldown s idle, a start marker, the
 *            layer in a loop for --tgr_smpl_duration + 2 x
 *            --tgr_smpl_boundary s, an end marker; the samples of the one
 *            sampler that runs for the whole profile, stamped on arrival
 *            with the same clock, are cut into windows [start + boundary,
 *            end - boundary] later.  --repeats N windows per layer run
 *            after the latency samples, shuffled across layers.
 * After each layer the raw files are rewritten atomically and the layer is
 * journalled, so Ctrl-C (after the current layer) or kill -9 loses at most
 * the layer in progress, and --resume skips what is complete.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "clock.h"
#include "cli.h"
#include "fileio.h"
#include "jp_image.h"
#include "calibration.h"
#include "measure.h"
#include "passes.h"
#include "power.h"
#include "rawdata.h"
#include "tegrastats_parse.h"
#include "trace.h"

/* ---- options ------------------------------------------------------------ */

typedef struct profile_options {
    long mode;
    bool mode_given;
    jp_device device;
    char *imgs;                 /* comma-separated; NULL: every image in data/imagenet */
    char *tgr_params;           /* comma-separated; NULL: every parameter sampled       */
    bool eval_tgr, eval_latency;
    bool power_if_available;    /* --eval_tgr, but latency only when no source exists */
    long tgr_interval_ms;
    double tgr_smpl_duration_s, tgr_smpl_boundary_s;
    double cooldown_s;          /* idle before each power window (the seed's sleep) */
    long repeats;               /* power windows per layer, shuffled across layers */
    long passes;                /* whole forward passes timed per image (latency in context) */
    long lt_smpl_count;
    const char *models;         /* comma-separated; NULL: AvailableModel.txt   */
    bool op_level;
    jp_power_kind power_source;
    const char *tegrastats;     /* program to run                               */
    const char *rail;           /* override of the device rail                  */
    const char *out_dir;
    bool resume;
    long warmup;
    long threads;
    const char *trace_path;
    const char *plan_path;      /* kernels per op for the model the plan names */
    uint64_t seed;
    bool quiet;                 /* --quiet: no per-layer progress lines         */
} profile_options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: jplprof profile --mode M [options]\n"
            "\n"
            "Generates the layer-wise latency and power dataset: for each model and image,\n"
            "each layer runs alone on its real input; raw files go to\n"
            "<out>/Mode<M>/<cpu|gpu>/<latency|power>/<model>/ (the seed's layout and format).\n"
            "Then `jplprof process` averages them into <out>/Processed/Mode<M>.json.\n"
            "\n"
            "The seed tool's options (also spelled with dashes):\n"
            "  --mode M               the power mode being measured (required; set it on the\n"
            "                         board beforehand, e.g. nvpmodel -m M: jplprof does not)\n"
            "  --device cpu|cuda      default cpu\n"
            "  --imgs a.jpg b.png     images in data/imagenet/ (space- or comma-separated;\n"
            "                         default: all of them)\n"
            "  --tgr_params P ...     parameters to keep (space- or comma-separated; default:\n"
            "                         every parameter the power source gives; the device's\n"
            "                         rail is always kept)\n"
            "  --eval_tgr             measure power\n"
            "  --tgr_interval MS      power sampling interval (default 20)\n"
            "  --tgr_smpl_duration S  seconds of each layer's power window that are kept (default 5)\n"
            "  --tgr_smpl_boundary S  seconds before and after them, run but not kept (default 1;\n"
            "                         also spelled --tgr_smpl_boundry, as the seed's code does):\n"
            "                         each layer runs duration + 2 x boundary s (7 s by default)\n"
            "  --eval_latency         measure latency (the default when neither is given)\n"
            "  --lt_smpl_count N      timed calls per layer (default 100, at most %d)\n"
            "And:\n"
            "  --models a,b           default: every model of AvailableModel.txt\n"
            "  --granularity layer|op layers (default, the seed's split) or single ops\n"
            "  --power-source auto|tegrastats|ina3221|nvml|rapl|none   (default auto)\n"
            "  --tegrastats PATH      the tegrastats program (default: tegrastats on PATH)\n"
            "  --rail NAME            the device's rail, overriding the board table\n"
            "  --power-if-available   with --eval_tgr: when the machine has no power source at\n"
            "                         all, say so and measure latency only (a source that is\n"
            "                         there but refuses still stops the run)\n"
            "  --out DIR              dataset root (default Dataset)\n"
            "  --cooldown S           idle seconds before each layer's power window, so that it\n"
            "                         starts from the idle state (default 2, the seed's sleep)\n"
            "  --repeats N            power windows per layer (default 1); with N > 1 they run\n"
            "                         after the latency samples, in an order shuffled across\n"
            "                         layers (seeded by --seed), and `process --stats` gives\n"
            "                         each layer's power a 95 %% interval from their spread\n"
            "  --passes N             with --eval_latency: also N whole forward passes per image,\n"
            "                         each layer timed inside them, and N without timers (the\n"
            "                         end-to-end time): latency in context and the closure ratio\n"
            "                         (sum of isolated medians / end-to-end); default 5, 0: none\n"
            "  --resume               skip the (image, layer) pairs already complete\n"
            "  --warmup N             untimed calls before the latency samples (default 10)\n"
            "  --threads N            CPU threads (default: all online cores)\n"
            "  --trace FILE           write a Chrome/Perfetto trace (ui.perfetto.dev)\n"
            "  --seed N               seed of synthetic weights (default 0)\n"
            "  --plan FILE            kernels per op from `jplprof compare --plan` (for the model\n"
            "                         it names; the others use the default kernels)\n"
            "  --quiet                no per-layer progress (on a terminal one updating line with\n"
            "                         the time left; in a log one line per layer); warnings stay\n",
            JP_RAW_SEED_LINE_MAX_BYTES / 32);
}

/* The seed took --tgr_params as a space-separated list of words: join the
 * words after the option (up to the next option) into one comma list. */
static char *collect_words(int argc, char **argv, int *i)
{
    size_t bytes = 1;
    int j = *i + 1;
    for (; j < argc && argv[j][0] != '-'; j++)
        bytes += strlen(argv[j]) + 1;
    char *joined = calloc(bytes, 1);
    if (!joined)
        return NULL;
    for (int k = *i + 1; k < j; k++) {
        if (k > *i + 1)
            strcat(joined, ",");
        strcat(joined, argv[k]);
    }
    *i = j - 1;
    return joined;
}

static jp_status parse_args(int argc, char **argv, profile_options *o, jp_error *err)
{
    static const struct option options[] = {
        {"mode", required_argument, NULL, 'M'},
        {"device", required_argument, NULL, 'd'},
        {"eval-tgr", no_argument, NULL, 'E'},
        {"tgr-interval", required_argument, NULL, 'I'},
        {"tgr-smpl-duration", required_argument, NULL, 'D'},
        {"tgr-smpl-boundary", required_argument, NULL, 'B'},
        {"tgr-smpl-boundry", required_argument, NULL, 'B'},
        {"cooldown", required_argument, NULL, 'C'},
        {"repeats", required_argument, NULL, 'N'},
        {"passes", required_argument, NULL, 'A'},
        {"eval-latency", no_argument, NULL, 'L'},
        {"lt-smpl-count", required_argument, NULL, 'n'},
        {"models", required_argument, NULL, 'm'},
        {"granularity", required_argument, NULL, 'g'},
        {"power-source", required_argument, NULL, 'p'},
        {"tegrastats", required_argument, NULL, 'T'},
        {"rail", required_argument, NULL, 'R'},
        {"power-if-available", no_argument, NULL, 'P'},
        {"out", required_argument, NULL, 'o'},
        {"resume", no_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"trace", required_argument, NULL, 'x'},
        {"seed", required_argument, NULL, 'S'},
        {"plan", required_argument, NULL, 'K'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    /* --tgr-params and --imgs first: as the seed's argparse (nargs='+'),
     * each may take several words. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        char **list = strcmp(argv[i], "--tgr-params") == 0 || strncmp(argv[i], "--tgr-params=", 13) == 0
                          ? &o->tgr_params
                      : strcmp(argv[i], "--imgs") == 0 || strncmp(argv[i], "--imgs=", 7) == 0 ? &o->imgs
                                                                                                : NULL;
        if (!list) {
            argv[kept++] = argv[i];
            continue;
        }
        const char *name = list == &o->imgs ? "--imgs" : "--tgr_params";
        const char *eq = strchr(argv[i], '=');
        free(*list);
        *list = eq ? strdup(eq + 1) : collect_words(argc, argv, &i);
        for (char *c = *list; c && *c; c++)
            if (*c == ' ')
                *c = ',';
        if (!*list)
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        if (!(*list)[0])
            return jp_error_set(err, JP_ERR_ARG, "%s needs at least one %s", name,
                                list == &o->imgs ? "image" : "parameter name");
    }
    argc = kept;
    long v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'M':
            if (jp_cli_parse_int("--mode", optarg, 0, INT_MAX, &o->mode, err))
                return err->status;
            o->mode_given = true;
            break;
        case 'd':
            if (jp_cli_parse_device(optarg, &o->device, err))
                return err->status;
            break;
        case 'E': o->eval_tgr = true; break;
        case 'I':
            if (jp_cli_parse_int("--tgr_interval", optarg, 1, 60000, &o->tgr_interval_ms, err))
                return err->status;
            break;
        case 'D':
            if (jp_cli_parse_double("--tgr_smpl_duration", optarg, 1e-3, 86400, &o->tgr_smpl_duration_s, err))
                return err->status;
            break;
        case 'B':
            if (jp_cli_parse_double("--tgr_smpl_boundary", optarg, 0, 86400, &o->tgr_smpl_boundary_s, err))
                return err->status;
            break;
        case 'C':
            if (jp_cli_parse_double("--cooldown", optarg, 0, 86400, &o->cooldown_s, err))
                return err->status;
            break;
        case 'A':
            if (jp_cli_parse_int("--passes", optarg, 0, 100000, &o->passes, err))
                return err->status;
            break;
        case 'N':
            if (jp_cli_parse_int("--repeats", optarg, 1, 100000, &o->repeats, err))
                return err->status;
            break;
        case 'L': o->eval_latency = true; break;
        case 'q': o->quiet = true; break;
        case 'n':
            /* a layer's samples are one line of the latency file, at most
             * JP_RAW_SEED_LINE_MAX_BYTES: 32 bytes a sample leaves room */
            if (jp_cli_parse_int("--lt_smpl_count", optarg, 1, JP_RAW_SEED_LINE_MAX_BYTES / 32,
                                 &o->lt_smpl_count, err))
                return err->status;
            break;
        case 'm': o->models = optarg; break;
        case 'g':
            if (jp_cli_parse_granularity(optarg, &o->op_level, err))
                return err->status;
            break;
        case 'p':
            if (jp_power_kind_parse(optarg, &o->power_source, err))
                return jp_error_prefix(err, "--power-source: ");
            break;
        case 'T': o->tegrastats = optarg; break;
        case 'R': o->rail = optarg; break;
        case 'P': o->power_if_available = true; break;
        case 'o': o->out_dir = optarg; break;
        case 'r': o->resume = true; break;
        case 'w':
            if (jp_cli_parse_int("--warmup", optarg, 0, 1000000, &o->warmup, err))
                return err->status;
            break;
        case 't':
            if (jp_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, err))
                return err->status;
            break;
        case 'x': o->trace_path = optarg; break;
        case 'K': o->plan_path = optarg; break;
        case 'S':
            if (jp_cli_parse_int("--seed", optarg, 0, LONG_MAX, &v, err))
                return err->status;
            o->seed = (uint64_t)v;
            break;
        case 'h': return JP_STATUS_COUNT;
        default:
            return jp_cli_getopt_error("profile", c, argv, err);
        }
    }
    if (jp_cli_no_operands("profile", argc, argv, err))
        return err->status;
    if (!o->mode_given)
        return jp_error_set(err, JP_ERR_ARG, "--mode is required (the board's power mode, set beforehand)");
    return JP_OK;
}

/* ---- Ctrl-C --------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- small helpers -------------------------------------------------------- */

static char **split_list(const char *list, int *n)
{
    *n = 0;
    char *copy = strdup(list);
    if (!copy)
        return NULL;
    int cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    char **out = calloc((size_t)cap, sizeof *out);
    if (!out) {
        free(copy);
        return NULL;
    }
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            out[(*n)++] = strdup(tok);
    free(copy);
    return out;
}

static void free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every JPEG/PNG in data/imagenet, sorted. */
static jp_status default_images(char ***names, int *n, jp_error *err)
{
    char dir[PATH_MAX];
    jp_cli_path(dir, sizeof dir, "data/imagenet");
    *n = 0;
    *names = calloc(256, sizeof **names);
    if (!*names)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (!d)
        return jp_error_set(err, JP_ERR_MISSING, "%s: cannot open: %s (give images with --imgs)", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) && *n < 256;) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0))
            (*names)[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    if (*n == 0)
        return jp_error_set(err, JP_ERR_MISSING, "%s: no JPEG or PNG image (give images with --imgs)", dir);
    return JP_OK;
}

/* data/imagenet/<name>, or name itself when it holds a '/'. */
static void image_path(const char *name, char *buf, size_t bytes)
{
    if (strchr(name, '/')) {
        snprintf(buf, bytes, "%s", name);
    } else {
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "data/imagenet/%s", name);
        jp_cli_path(buf, bytes, rel);
    }
}

/* SHA-256 of n bytes as 64 hex digits. */
static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (!EVP_Digest(data, n, digest, &len, EVP_sha256(), NULL))
        return;
    for (unsigned i = 0; i < len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* First line of a command's output, "" when it fails. */
static void command_line_output(const char *cmd, char *buf, size_t bytes)
{
    buf[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    size_t used = 0;
    while (used + 1 < bytes && fgets(buf + used, (int)(bytes - used), p))
        used = strlen(buf);
    pclose(p);
    while (used && (buf[used - 1] == '\n' || buf[used - 1] == ' '))
        buf[--used] = '\0';
}

static void read_first_line(const char *path, char *buf, size_t bytes)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, (int)bytes, f))
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static cJSON *machine_json(const profile_options *o, jp_device device)
{
    cJSON *m = cJSON_CreateObject();
    char buf[1024] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
                char *colon = strchr(line, ':');
                if (colon) {
                    snprintf(buf, sizeof buf, "%s", colon + 2);
                    buf[strcspn(buf, "\n")] = '\0';
                }
                break;
            }
        fclose(f);
    }
    cJSON_AddStringToObject(m, "cpu", buf);
    cJSON_AddNumberToObject(m, "cpus_online", (double)sysconf(_SC_NPROCESSORS_ONLN));
    read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", buf, sizeof buf);
    cJSON_AddStringToObject(m, "governor", buf);
    read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq", buf, sizeof buf);
    cJSON_AddStringToObject(m, "cpu0_max_khz", buf);
    char model[256];
    jp_board board = jp_board_detect(NULL, model, sizeof model);
    cJSON_AddStringToObject(m, "device_tree_model", model);
    cJSON_AddStringToObject(m, "board", jp_board_name(board));
    const jp_backend *b = jp_backend_get(device);
    buf[0] = '\0';
    if (b && b->describe)
        b->describe(buf, sizeof buf);
    cJSON_AddStringToObject(m, "device", buf);
    command_line_output("nvpmodel -q 2>/dev/null", buf, sizeof buf);
    cJSON_AddStringToObject(m, "nvpmodel_q", buf);
    jp_nvpmodel pm;
    jp_error err = {0};
    if (buf[0] && jp_nvpmodel_parse(buf, &pm, &err) == JP_OK) {
        cJSON_AddStringToObject(m, "power_mode_name", pm.name);
        cJSON_AddNumberToObject(m, "power_mode_id", (double)pm.id);
    }
    return m;
}

/* The board's power mode (jp_nvpmodel_parse: "NV Power Mode: MAXN", then
 * the id, possibly after NVPM warnings) against --mode. */
static void check_nvpmodel(long mode)
{
    char out[512];
    command_line_output("nvpmodel -q 2>/dev/null", out, sizeof out);
    if (!out[0])
        return;
    jp_nvpmodel pm;
    jp_error err = {0};
    if (jp_nvpmodel_parse(out, &pm, &err) != JP_OK) {
        fprintf(stderr, "jplprof profile: warning: cannot tell the board's power mode: %s\n", err.msg);
        return;
    }
    if (pm.id != mode)
        fprintf(stderr,
                "jplprof profile: warning: --mode %ld, but nvpmodel -q says the board is in mode %ld (%s); the data "
                "will be filed under Mode%ld. Set the mode with `sudo nvpmodel -m %ld` first if that is not what "
                "you meant.\n",
                mode, pm.id, pm.name, mode, mode);
}

/* ---- the run -------------------------------------------------------------- */

typedef struct profiler {
    const profile_options *o;
    jp_power_source *power;        /* NULL without --eval_tgr                  */
    jp_rail_choice rail;
    size_t n_src_params;
    long *keep;                    /* source column of each kept parameter      */
    jp_raw_param *kept;            /* names and units of the kept parameters    */
    size_t n_kept;
    jp_power_samples samples;      /* taken from the source, not yet routed     */
    double *row;                   /* scratch: kept values of one sample        */
    jp_raw *raw;                   /* the current (model, image)                */
    jp_trace *trace;
    int64_t start_ns;
    long layers_done, layers_skipped;
    /* progress: work = one (image, unit) of the layer loop, plus one per
     * --repeats window when repeats > 1 */
    long work_total, work_seen, work_measured;
    int64_t measured_ns;           /* wall time of the measured work so far     */
    int64_t last_ns;               /* end of the previous progress step         */
    bool tty, tty_pending;         /* stderr is a terminal; a line is open on it */
    jp_textbuf tried;              /* --power-if-available: one line per source  */
} profiler;

/* "1 h 05 min", "12 min 30 s", "45 s" */
static void format_duration(double s, char *buf, size_t cap)
{
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld h %02ld min", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ld min %02ld s", t / 60, t % 60);
    else
        snprintf(buf, cap, "%ld s", t);
}

/* One step of the run's progress: what was measured (line, no newline) and
 * the time left for the whole run, estimated from the measured steps' mean
 * wall time (model loading and forward passes included).  measured: false
 * for a step skipped by --resume (it costs no time).  On a terminal the line
 * replaces the previous one; in a log it is one line per step. */
static void progress_step(profiler *p, const char *line, bool measured)
{
    int64_t now = jp_clock_ns();
    p->work_seen++;
    if (measured) {
        p->work_measured++;
        p->measured_ns += now - p->last_ns;
    }
    p->last_ns = now;
    if (p->o->quiet || !line)
        return;
    char left[64] = "";
    long remaining = p->work_total - p->work_seen;
    if (p->work_measured > 0 && remaining > 0) {
        char d[32];
        format_duration((double)p->measured_ns * 1e-9 / (double)p->work_measured * (double)remaining, d,
                        sizeof d);
        snprintf(left, sizeof left, " | ~%s left", d);
    } else if (remaining <= 0) {
        snprintf(left, sizeof left, " | done");
    }
    if (p->tty) {
        fprintf(stderr, "\r\033[K%.*s%s", 200, line, left);
        p->tty_pending = true;
    } else {
        fprintf(stderr, "%s%s\n", line, left);
    }
}

/* Ends the updating terminal line before other output. */
static void progress_break(profiler *p)
{
    if (p->tty_pending)
        fputc('\n', stderr);
    p->tty_pending = false;
}

/* The work of the whole run, from the model descriptions (a model that
 * cannot be read counts as 0: its load fails later with the real error). */
static long progress_total(const profile_options *o, char **models, int n_models, int n_images)
{
    long total = 0;
    for (int i = 0; i < n_models; i++) {
        char rel[PATH_MAX], path[PATH_MAX];
        snprintf(rel, sizeof rel, "weights/%s.json", models[i]);
        jp_graph g;
        jp_error ignored = {0};
        if (jp_graph_load(jp_cli_path(path, sizeof path, rel), &g, &ignored) != JP_OK)
            continue;
        long units = o->op_level ? g.n_ops : g.n_layers;
        total += units * n_images * (o->eval_tgr && o->repeats > 1 ? 1 + o->repeats : 1);
        jp_graph_free(&g);
    }
    return total;
}

/* Moves the samples taken so far into the raw handle (and the trace). */
static jp_status route_samples(profiler *p, jp_error *err)
{
    jp_status st = jp_power_take(p->power, &p->samples, err);
    if (st)
        return jp_error_prefix(err, "power source failed during the profile: ");
    for (size_t i = 0; i < p->samples.count; i++) {
        const double *src = p->samples.values + i * p->samples.n_params;
        for (size_t k = 0; k < p->n_kept; k++)
            p->row[k] = src[p->keep[k]];
        if (p->raw && jp_raw_add_power_samples(p->raw, &p->samples.t_ns[i], p->row, 1, err))
            return err->status;
        for (size_t k = 0; p->trace && k < p->n_kept; k++)
            if (p->kept[k].unit && strcmp(p->kept[k].unit, "mW") == 0 &&
                jp_trace_add_counter(p->trace, p->kept[k].name, "mW", p->samples.t_ns[i], p->row[k], err))
                return err->status;
    }
    jp_power_samples_clear(&p->samples);
    return JP_OK;
}

/* A layer (or, at op level, an executor step) as a measurement unit: one
 * call, then the device synchronised. */
typedef struct exec_unit {
    jp_exec *ex;
    int index;
    bool step;
} exec_unit;

static jp_status run_exec_unit(void *ctx, jp_error *err)
{
    const exec_unit *u = ctx;
    jp_status st = u->step ? jp_exec_run_step(u->ex, u->index, err) : jp_exec_run_layer(u->ex, u->index, err);
    return st ? st : u->ex->backend->synchronize(err);
}

static jp_status sync_backend(jp_exec *ex, jp_error *err) { return ex->backend->synchronize(err); }

/* One power window of the unit (measure.h): the samples that arrived
 * before it are routed first, those of the window after; the markers go to
 * the raw file and the trace. */
static jp_status measure_power(profiler *p, const jp_measure_unit *unit, const char *key, int repeat,
                               uint64_t *calls_out, jp_error *err)
{
    if (route_samples(p, err)) /* what arrived before the window */
        return err->status;
    jp_measure_window_options wo = {.duration_s = p->o->tgr_smpl_duration_s,
                                    .boundary_s = p->o->tgr_smpl_boundary_s,
                                    .cooldown_s = p->o->cooldown_s};
    jp_measure_window w;
    if (jp_measure_power_window(NULL, unit, &wo, &interrupted, &w, err))
        return err->status;
    if (route_samples(p, err) || jp_raw_add_power_window(p->raw, key, repeat, w.idle_start_ns, w.start_ns, w.end_ns, w.calls, err))
        return err->status;
    if (p->trace) {
        jp_trace_slice s = {.name = key, .layer = key, .start_ns = w.start_ns, .end_ns = w.end_ns, .calls = w.calls};
        if (jp_trace_add_slice(p->trace, &s, err))
            return err->status;
    }
    *calls_out = w.calls;
    return JP_OK;
}

/* The raw files' key of a unit: the layer's index ("3") or the op's path. */
static void unit_key(const jp_exec *ex, bool op_level, int u, char *key, size_t bytes)
{
    if (op_level)
        snprintf(key, bytes, "%s", ex->steps[u].step.op->name);
    else
        snprintf(key, bytes, "%d", u);
}

/* xorshift64*: the shuffle of --repeats, reproducible from --seed. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

/* --passes whole forward passes with a timer around each unit, then as
 * many without (the end-to-end time); written to the passes file
 * (passes.h).  Adds to image_json the medians: the units in the pass
 * summed, the end-to-end pass. */
static jp_status time_passes(const profiler *p, jp_exec *ex, int n_units, const char *model, const char *image,
                             cJSON *image_json, jp_error *err)
{
    const profile_options *o = p->o;
    size_t n = (size_t)o->passes;
    jp_passes ps = {.network = (char *)model, .image = (char *)image, .n_units = (size_t)n_units, .n_passes = n};
    ps.units = calloc((size_t)n_units, sizeof *ps.units);
    ps.in_pass_s = calloc(n * (size_t)n_units, sizeof *ps.in_pass_s);
    ps.hooked_s = calloc(n, sizeof *ps.hooked_s);
    ps.end_to_end_s = calloc(n, sizeof *ps.end_to_end_s);
    double *scratch = calloc(n, sizeof *scratch);
    char stem[256];
    char *path = NULL;
    jp_status st = JP_OK;
    if (!ps.units || !ps.in_pass_s || !ps.hooked_s || !ps.end_to_end_s || !scratch) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int u = 0; u < n_units && st == JP_OK; u++) {
        char key[600];
        unit_key(ex, o->op_level, u, key, sizeof key);
        if (!(ps.units[u] = strdup(key)))
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    jp_measure_pass_timer timer = {.n_units = n_units, .pass = -1, .unit_s = ps.in_pass_s};
    jp_exec_hooks hooks = {.ctx = &timer};
    if (o->op_level)
        hooks.before_step = jp_measure_timer_before, hooks.after_step = jp_measure_timer_after;
    else
        hooks.before_layer = jp_measure_timer_before, hooks.after_layer = jp_measure_timer_after;
    for (size_t r = 0; r < n && st == JP_OK; r++) {
        timer.pass = (int)r;
        int64_t t0 = jp_clock_ns();
        st = jp_exec_forward(ex, &hooks, err);
        ps.hooked_s[r] = (double)(jp_clock_ns() - t0) * 1e-9;
    }
    for (size_t r = 0; r < n && st == JP_OK; r++) {
        int64_t t0 = jp_clock_ns();
        if ((st = jp_exec_forward(ex, NULL, err)) == JP_OK && (st = sync_backend(ex, err)) == JP_OK)
            ps.end_to_end_s[r] = (double)(jp_clock_ns() - t0) * 1e-9;
    }
    if (st == JP_OK && (st = jp_raw_image_stem(image, stem, sizeof stem, err)) == JP_OK) {
        path = jp_passes_path(o->out_dir, (int)o->mode, jp_raw_device_dir(jp_device_name(o->device)), model, stem);
        st = path ? jp_passes_write(path, &ps, err) : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    if (st == JP_OK) {
        double sum = 0;
        for (int u = 0; u < n_units; u++) {
            for (size_t r = 0; r < n; r++)
                scratch[r] = ps.in_pass_s[r * (size_t)n_units + (size_t)u];
            sum += jp_cli_median(scratch, n);
        }
        memcpy(scratch, ps.end_to_end_s, n * sizeof *scratch);
        cJSON_AddNumberToObject(image_json, "in_pass_median_sum_s", sum);
        cJSON_AddNumberToObject(image_json, "end_to_end_median_s", jp_cli_median(scratch, n));
        cJSON_AddStringToObject(image_json, "passes_file", path);
    }
done:
    for (int u = 0; ps.units && u < n_units; u++)
        free(ps.units[u]);
    free(ps.units);
    free(ps.in_pass_s);
    free(ps.hooked_s);
    free(ps.end_to_end_s);
    free(scratch);
    free(path);
    return st;
}

/* The --repeats windows of the units that still need power: every (unit,
 * repeat) pair once, in an order shuffled across units (Fisher-Yates,
 * seeded by --seed), so that drift over the run (temperature, clocks) does
 * not line up with the layer order.  Each window is saved when it ends; a
 * unit is journalled complete with its last repeat. */
static jp_status run_repeats(profiler *p, jp_exec *ex, const char *model, const char *image, const int *units,
                             int n_units, jp_error *err)
{
    const profile_options *o = p->o;
    size_t n = (size_t)n_units * (size_t)o->repeats;
    int *order = malloc(n * sizeof *order);
    if (!order)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = (int)i;
    uint64_t state = o->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next_random(&state) % i);
        int t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    jp_status st = JP_OK;
    for (size_t i = 0; i < n && st == JP_OK && !interrupted; i++) {
        int u = units[order[i] / o->repeats], rep = order[i] % (int)o->repeats;
        char key[600];
        unit_key(ex, o->op_level, u, key, sizeof key);
        exec_unit eu = {.ex = ex, .index = u, .step = o->op_level};
        jp_measure_unit unit = {.run = run_exec_unit, .ctx = &eu};
        uint64_t calls = 0;
        st = measure_power(p, &unit, key, rep, &calls, err);
        if (st == JP_ERR_INTERRUPTED) {
            st = JP_OK, *err = (jp_error){0};
            break;
        }
        if (st == JP_OK)
            st = jp_raw_flush(p->raw, err);
        if (st == JP_OK) {
            char line[1024];
            snprintf(line, sizeof line, "[%s | %s] power window %zu/%zu: %s %s, repeat %d/%ld, %llu calls", model,
                     image, i + 1, n, o->op_level ? "op" : "layer", key, rep + 1, o->repeats,
                     (unsigned long long)calls);
            progress_step(p, line, true);
        }
    }
    free(order);
    return st;
}

static cJSON *layer_table_json(const jp_exec *ex, bool op_level)
{
    const jp_graph *g = ex->graph;
    cJSON *arr = cJSON_CreateArray();
    char in[96], out[96];
    int n = op_level ? ex->n_steps : g->n_layers;
    for (int u = 0; u < n; u++) {
        cJSON *row = cJSON_CreateObject();
        int first = op_level ? ex->steps[u].first_op : g->layers[u].first_op;
        int last = op_level ? ex->steps[u].first_op + ex->steps[u].n_ops - 1
                            : g->layers[u].first_op + g->layers[u].n_ops - 1;
        int rank;
        int64_t dims[JP_MAX_RANK];
        jp_graph_value_shape(g, g->ops[first].inputs[0], &rank, dims);
        jp_shape_str(rank, dims, in, sizeof in);
        jp_graph_value_shape(g, last, &rank, dims);
        jp_shape_str(rank, dims, out, sizeof out);
        int64_t params = 0, macs = 0;
        for (int i = first; i <= last; i++)
            params += g->ops[i].n_param_elems, macs += g->ops[i].macs;
        char key[32];
        snprintf(key, sizeof key, "%d", u);
        cJSON_AddNumberToObject(row, "index", u);
        cJSON_AddStringToObject(row, "key", op_level ? g->ops[first].name : key);
        cJSON_AddStringToObject(row, "path", op_level ? g->ops[first].path : g->layers[u].path);
        cJSON_AddStringToObject(row, "type", op_level ? jp_op_type_name(g->ops[first].type) : g->layers[u].module);
        cJSON_AddStringToObject(row, "input", in);
        cJSON_AddStringToObject(row, "output", out);
        cJSON_AddNumberToObject(row, "params", (double)params);
        cJSON_AddNumberToObject(row, "macs", (double)macs);
        cJSON *kernels = cJSON_AddArrayToObject(row, "kernels");
        int s0 = op_level ? u : ex->layer_first_step[u], s1 = op_level ? u + 1 : ex->layer_first_step[u + 1];
        cJSON *chose = cJSON_AddArrayToObject(row, "kernel_choices");
        for (int s = s0; s < s1; s++) {
            char detail[256];
            jp_kernel_describe(ex->steps[s].kernel, ex->steps[s].state, detail, sizeof detail);
            cJSON_AddItemToArray(kernels, cJSON_CreateString(ex->steps[s].kernel->name));
            cJSON_AddItemToArray(chose, cJSON_CreateString(detail));
        }
        cJSON_AddItemToArray(arr, row);
    }
    return arr;
}

/* Profiles every layer of one model for every image. */
static jp_status profile_model(profiler *p, const char *model, char **images, int n_images, cJSON *models_json,
                               int model_index, int n_models, jp_error *err)
{
    const profile_options *o = p->o;
    char path[PATH_MAX];
    image_path(images[0], path, sizeof path);
    jp_cli_model_options mo = {.model = model, .image = path, .seed = o->seed};
    jp_cli_model m;
    if (jp_cli_model_load(&m, &mo, err))
        return err->status;
    jp_cli_plan plan = {0};
    bool use_plan = false;
    if (o->plan_path) {
        /* Only the plan's own model uses it: peek at its model first. */
        jp_error perr = {0};
        use_plan = jp_cli_plan_load(o->plan_path, &m.graph, o->device, &plan, &perr) == JP_OK;
        if (!use_plan && perr.status != JP_ERR_ARG) {
            *err = perr;
            jp_cli_model_free(&m);
            return err->status;
        }
    }
    jp_exec ex;
    jp_exec_options eo = {.device = o->device, .fuse = !o->op_level, .keep_all_values = o->op_level,
                          .kernel_for_op = use_plan ? jp_cli_plan_kernel : NULL, .kernel_for_op_ctx = &plan};
    if (jp_exec_build(&ex, &m.graph, &eo, err)) {
        jp_cli_plan_free(&plan);
        jp_cli_model_free(&m);
        return err->status;
    }
    cJSON *mj = cJSON_CreateObject();
    cJSON_AddItemToArray(models_json, mj);
    cJSON_AddStringToObject(mj, "name", model);
    cJSON *wj = cJSON_AddObjectToObject(mj, "weights");
    if (m.weights.synthetic) {
        cJSON_AddStringToObject(wj, "kind", "synthetic");
        cJSON_AddNumberToObject(wj, "seed", (double)m.weights.seed);
        cJSON_AddStringToObject(wj, "calibrated_on", images[0]);
    } else {
        char hex[65];
        sha256_hex(m.weights.file.map, m.weights.file.map_bytes, hex);
        cJSON_AddStringToObject(wj, "kind", "converted");
        cJSON_AddStringToObject(wj, "file", m.weights.path);
        cJSON_AddStringToObject(wj, "sha256", hex);
        const char *src = jp_st_metadata(&m.weights.file, "source_sha256");
        if (src)
            cJSON_AddStringToObject(wj, "source_sha256", src);
    }
    cJSON_AddStringToObject(mj, "plan", use_plan ? o->plan_path : "default kernels");
    cJSON_AddItemToObject(mj, "layers", layer_table_json(&ex, o->op_level));
    cJSON *ij = cJSON_AddArrayToObject(mj, "images");

    int n_units = o->op_level ? ex.n_steps : m.graph.n_layers;
    double *samples = calloc((size_t)o->lt_smpl_count, sizeof *samples);
    double *sorted = calloc((size_t)o->lt_smpl_count, sizeof *sorted);
    int *pending = calloc((size_t)n_units + 1, sizeof *pending);
    double *iso_median = calloc((size_t)n_units + 1, sizeof *iso_median); /* this run's, NaN: not measured */
    jp_status st = samples && sorted && pending && iso_median ? JP_OK
                                                              : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    for (int im = 0; st == JP_OK && im < n_images && !interrupted; im++) {
        image_path(images[im], path, sizeof path);
        if (im > 0 && (st = jp_image_load(path, &m.graph.preprocess, m.input, err)))
            break;
        int64_t t_up = jp_clock_ns();
        if ((st = jp_exec_set_input(&ex, m.input, err)) || (st = sync_backend(&ex, err)))
            break;
        double upload_s = (double)(jp_clock_ns() - t_up) * 1e-9;
        if ((st = jp_exec_forward(&ex, NULL, err)))
            break;
        cJSON *one = cJSON_CreateObject();
        cJSON_AddStringToObject(one, "image", images[im]);
        cJSON_AddNumberToObject(one, "input_upload_s", upload_s);
        cJSON_AddItemToArray(ij, one);
        if (o->eval_latency && o->passes > 0 && !interrupted &&
            (st = time_passes(p, &ex, n_units, model, images[im], one, err)))
            break;
        for (int u = 0; u < n_units; u++)
            iso_median[u] = NAN;

        jp_raw_options ro = {
            .out_dir = o->out_dir,
            .mode = (int)o->mode,
            .device = jp_device_name(o->device),
            .network = model,
            .image = images[im],
            .resume = o->resume,
            .eval_latency = o->eval_latency,
            .lt_smpl_count = (int)o->lt_smpl_count,
            .eval_tgr = o->eval_tgr,
            .tgr_smpl_duration_s = o->tgr_smpl_duration_s,
            .tgr_smpl_boundary_s = o->tgr_smpl_boundary_s,
            .cooldown_s = o->cooldown_s,
            .repeats = (int)o->repeats,
            .tgr_interval_ms = (double)o->tgr_interval_ms,
            .power_source = p->power ? jp_power_kind_name(jp_power_source_kind(p->power)) : NULL,
            .device_rail = p->power ? p->rail.rail : NULL,
            .params = p->kept,
            .n_params = p->n_kept,
            .profile_start_ns = p->start_ns,
        };
        if ((st = jp_raw_open(&p->raw, &ro, err)))
            break;
        int n_pending = 0; /* units whose --repeats windows are still to run */
        for (int u = 0; u < n_units && !interrupted; u++) {
            char key[600];
            unit_key(&ex, o->op_level, u, key, sizeof key);
            bool lat = o->eval_latency && !jp_raw_is_done(p->raw, JP_RAW_LATENCY, key);
            bool pow = o->eval_tgr && !jp_raw_is_done(p->raw, JP_RAW_POWER, key);
            if (pow && o->repeats > 1) { /* later, shuffled across layers */
                pending[n_pending++] = u;
                pow = false;
            }
            if (!lat && !pow) {
                p->layers_skipped++;
                progress_step(p, NULL, false);
                continue;
            }
            char line[1024];
            int used = snprintf(line, sizeof line, "[%d/%d %s | %s] %s %d/%d %s", model_index + 1, n_models, model,
                                images[im], o->op_level ? "op" : "layer", u + 1, n_units,
                                o->op_level ? ex.steps[u].step.op->name : m.graph.layers[u].path);
            exec_unit eu = {.ex = &ex, .index = u, .step = o->op_level};
            jp_measure_unit unit = {.run = run_exec_unit, .ctx = &eu};
            if (lat) {
                if ((st = jp_measure_latency(NULL, &unit, o->warmup, o->lt_smpl_count, samples, err)) ||
                    (st = jp_raw_add_latency(p->raw, key, samples, (size_t)o->lt_smpl_count, err)))
                    break;
                memcpy(sorted, samples, (size_t)o->lt_smpl_count * sizeof *sorted);
                iso_median[u] = jp_cli_median(sorted, (size_t)o->lt_smpl_count);
                used += snprintf(line + used, sizeof line - (size_t)used, ": latency median %.4f ms (n=%ld)",
                                 iso_median[u] * 1e3, o->lt_smpl_count);
            }
            if (pow) {
                uint64_t calls = 0;
                if ((st = measure_power(p, &unit, key, 0, &calls, err))) {
                    if (st == JP_ERR_INTERRUPTED) /* Ctrl-C in the cooldown: the layer is not saved */
                        st = JP_OK, *err = (jp_error){0};
                    break;
                }
                snprintf(line + used, sizeof line - (size_t)used, "%s power window %.1f s, %llu calls",
                         lat ? ";" : ":", o->tgr_smpl_duration_s + 2 * o->tgr_smpl_boundary_s,
                         (unsigned long long)calls);
            }
            if ((st = jp_raw_flush(p->raw, err)))
                break;
            p->layers_done++;
            progress_step(p, line, true);
        }
        if (st == JP_OK && n_pending > 0)
            st = run_repeats(p, &ex, model, images[im], pending, n_pending, err);
        /* the closure ratio, when this run measured every unit's latency */
        double iso_sum = 0;
        for (int u = 0; u < n_units; u++)
            iso_sum += iso_median[u];
        const cJSON *e2e = cJSON_GetObjectItemCaseSensitive(one, "end_to_end_median_s");
        if (st == JP_OK && isfinite(iso_sum) && cJSON_IsNumber(e2e) && e2e->valuedouble > 0) {
            cJSON_AddNumberToObject(one, "isolated_median_sum_s", iso_sum);
            cJSON_AddNumberToObject(one, "closure_ratio", iso_sum / e2e->valuedouble);
            progress_break(p);
            if (!o->quiet)
                fprintf(stderr, "[%s | %s] closure: the isolated layer medians sum to %.3f ms, %.2f x the end-to-end "
                    "pass (%.3f ms)\n", model, images[im], iso_sum * 1e3, iso_sum / e2e->valuedouble,
                    e2e->valuedouble * 1e3);
        }
        if (st == JP_OK && p->power)
            st = route_samples(p, err);
        if (st == JP_OK)
            st = jp_raw_flush(p->raw, err);
        jp_raw_close(p->raw);
        p->raw = NULL;
    }
    free(samples);
    free(sorted);
    free(pending);
    free(iso_median);
    jp_exec_free(&ex);
    jp_cli_plan_free(&plan);
    jp_cli_model_free(&m);
    return st;
}

/* --power-if-available: each source auto tried, one whole line each. */
static void note_tried(void *ctx, const char *kind, const char *msg)
{
    jp_textbuf *b = ctx;
    jp_textbuf_printf(b, "  %-10s %s\n", kind, msg);
}

static jp_status open_power(profiler *p, jp_error *err)
{
    const profile_options *o = p->o;
    jp_cli_power_options po = {.kind = o->power_source, .interval_ms = o->tgr_interval_ms,
                               .tegrastats = o->tegrastats, .rail = o->rail,
                               .on_tried = o->power_if_available ? note_tried : NULL, .on_tried_ctx = &p->tried};
    if (jp_cli_power_open(&po, o->device, &p->power, &p->rail, err))
        return err->status;
    size_t n;
    const jp_power_param *params = jp_power_params(p->power, &n);
    p->n_src_params = n;
    p->keep = calloc(n, sizeof *p->keep);
    p->kept = calloc(n, sizeof *p->kept);
    p->row = calloc(n, sizeof *p->row);
    if (!p->keep || !p->kept || !p->row)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    int n_req = 0;
    char **req = o->tgr_params ? split_list(o->tgr_params, &n_req) : NULL;
    for (int r = 0; r < n_req; r++) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = jp_tegrastats_name_selects(req[r], params[i].name);
        if (!any) {
            char names[1024] = "";
            for (size_t i = 0; i < n; i++) {
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s%s", i ? " " : "", params[i].name);
            }
            jp_error_set(err, JP_ERR_ARG, "--tgr_params %s: the power source (%s) has no such parameter; it has: %s",
                         req[r], jp_power_describe(p->power), names);
            free_list(req, n_req);
            return err->status;
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool keep = !req || (long)i == p->rail.param_index;
        for (int r = 0; r < n_req && !keep; r++)
            keep = jp_tegrastats_name_selects(req[r], params[i].name);
        if (keep) {
            p->keep[p->n_kept] = (long)i;
            p->kept[p->n_kept].name = params[i].name;
            p->kept[p->n_kept].unit = jp_tgr_kind_unit(params[i].kind);
            p->n_kept++;
        }
    }
    free_list(req, n_req);
    jp_power_samples_init(&p->samples);
    return JP_OK;
}

/* The dataset's sensor calibration (`jplprof calibrate --out` the same
 * folder), when there is one: it must be for this board, source and device
 * rail; recorded in the manifest's "power"; a warning when the boundary is
 * shorter than 3 tau (the window would start inside the sensor's lag). */
static jp_status record_calibration(const profile_options *o, const profiler *p, cJSON *pj, jp_error *err)
{
    char *path = jp_calibration_path(o->out_dir);
    jp_calibration cal = {0};
    jp_status st = path ? jp_calibration_load(path, &cal, err) : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    const char *board = jp_board_name(jp_power_board(p->power));
    const char *source = jp_power_kind_name(jp_power_source_kind(p->power));
    const jp_calibration_rail *cr = NULL;
    if (st == JP_ERR_MISSING) {
        cJSON_AddStringToObject(pj, "calibration", "none: process estimates the sensor's lag from the windows "
                                                   "(run jplprof calibrate to measure it)");
        *err = (jp_error){0};
        st = JP_OK;
    } else if (st == JP_OK && (strcmp(cal.board, board) != 0 || strcmp(cal.power_source, source) != 0)) {
        st = jp_error_set(err, JP_ERR_ARG,
                          "%s: a calibration of board %s with power source %s; this run has board %s and source "
                          "%s: run jplprof calibrate --out %s here, or remove the file",
                          path, cal.board, cal.power_source, board, source, o->out_dir);
    } else if (st == JP_OK && !(cr = jp_calibration_rail_of(&cal, p->rail.rail))) {
        st = jp_error_set(err, JP_ERR_ARG,
                          "%s: no rail %s (this run's device rail) in the calibration: run jplprof calibrate "
                          "--out %s again, or remove the file",
                          path, p->rail.rail, o->out_dir);
    } else if (st == JP_OK) {
        cJSON *copy = cJSON_Duplicate(cal.json, true);
        cJSON_AddItemToObject(pj, "calibration", copy);
        cJSON_AddStringToObject(copy, "file", path);
        if (cr->fits && o->tgr_smpl_boundary_s < 3 * cr->tau_s)
            fprintf(stderr,
                    "jplprof profile: warning: --tgr_smpl_boundary %g s is less than 3 x the sensor's time constant "
                    "on %s (tau %.3g s, %s): each window's first samples still carry the state before it; "
                    "process corrects for it (power_corrected), but a boundary of %.2g s or more keeps the "
                    "plain mean honest too\n",
                    o->tgr_smpl_boundary_s, cr->name, cr->tau_s, path, 3 * cr->tau_s);
    }
    if (st != JP_ERR_MISSING)
        jp_calibration_free(&cal);
    free(path);
    return st;
}

static cJSON *options_json(const profile_options *o, int argc, char **argv)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *args = cJSON_AddArrayToObject(j, "argv");
    for (int i = 0; i < argc; i++)
        cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    cJSON_AddNumberToObject(j, "mode", (double)o->mode);
    cJSON_AddStringToObject(j, "device", jp_device_name(o->device));
    cJSON_AddBoolToObject(j, "eval_tgr", o->eval_tgr);
    cJSON_AddBoolToObject(j, "eval_latency", o->eval_latency);
    cJSON_AddNumberToObject(j, "tgr_interval", (double)o->tgr_interval_ms);
    cJSON_AddNumberToObject(j, "tgr_smpl_duration", o->tgr_smpl_duration_s);
    cJSON_AddNumberToObject(j, "tgr_smpl_boundary", o->tgr_smpl_boundary_s);
    cJSON_AddNumberToObject(j, "cooldown", o->cooldown_s);
    cJSON_AddNumberToObject(j, "repeats", (double)o->repeats);
    cJSON_AddNumberToObject(j, "passes", (double)o->passes);
    cJSON_AddNumberToObject(j, "lt_smpl_count", (double)o->lt_smpl_count);
    cJSON_AddStringToObject(j, "tgr_params", o->tgr_params ? o->tgr_params : "(all)");
    cJSON_AddStringToObject(j, "granularity", o->op_level ? "op" : "layer");
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "threads", (double)o->threads);
    cJSON_AddBoolToObject(j, "resume", o->resume);
    cJSON_AddStringToObject(j, "out", o->out_dir);
    return j;
}

int jp_cmd_profile(int argc, char **argv)
{
    profile_options o = {
        .device = JP_DEVICE_CPU,
        .tgr_interval_ms = 20,
        .tgr_smpl_duration_s = 5,
        .tgr_smpl_boundary_s = 1,
        .cooldown_s = 2,
        .repeats = 1,
        .passes = 5,
        .lt_smpl_count = 100,
        .power_source = JP_POWER_AUTO,
        .out_dir = "Dataset",
        .warmup = 10,
    };
    jp_error err = {0};
    /* getopt permutes argv: keep the command line as given for the manifest. */
    char **argv_copy = calloc((size_t)argc + 1, sizeof *argv_copy);
    if (!argv_copy)
        return JP_EXIT_FAILURE;
    memcpy(argv_copy, argv, (size_t)argc * sizeof *argv);
    jp_status st = parse_args(argc, argv, &o, &err);
    if (st == JP_STATUS_COUNT) {
        usage(stdout);
        free(argv_copy);
        free(o.tgr_params);
        free(o.imgs);
        return 0;
    }
    if (st) {
        free(argv_copy);
        free(o.tgr_params);
        free(o.imgs);
        return jp_cli_fail("profile", &err);
    }
    if (!o.eval_tgr && !o.eval_latency) {
        o.eval_latency = true;
        fprintf(stderr, "jplprof profile: neither --eval_latency nor --eval_tgr given: measuring latency.\n");
    }
    if (!o.threads)
        o.threads = jp_cli_default_threads();

    profiler p = {.o = &o};
    jp_textbuf_init(&p.tried);
    char **models = NULL, **images = NULL;
    int n_models = 0, n_images = 0;
    cJSON *manifest = NULL;
    int rc = 0;
    if (o.models) {
        models = split_list(o.models, &n_models);
        for (int i = 0; i < n_models; i++)
            if (jp_cli_check_model(models[i], &err))
                goto fail;
    } else if (jp_cli_read_models(&models, &n_models, &err)) {
        goto fail;
    }
    if (o.imgs)
        images = split_list(o.imgs, &n_images);
    else if (default_images(&images, &n_images, &err))
        goto fail;
    for (int i = 0; i < n_images; i++) {
        char path[PATH_MAX];
        image_path(images[i], path, sizeof path);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            jp_error_set(&err, JP_ERR_MISSING, "--imgs: %s: %s (images are looked up in data/imagenet/)", path,
                         strerror(errno));
            goto fail;
        }
    }
    if (jp_mkdir_p(o.out_dir, &err) || access(o.out_dir, W_OK) != 0) {
        if (err.status == JP_OK)
            jp_error_set(&err, JP_ERR_IO, "--out %s: not writable: %s", o.out_dir, strerror(errno));
        goto fail;
    }
    if (jp_cli_init_device(o.device, (int)o.threads, &err))
        goto fail;
    check_nvpmodel(o.mode);
    p.start_ns = jp_clock_ns();
    p.last_ns = p.start_ns;
    p.tty = isatty(STDERR_FILENO);
    p.work_total = progress_total(&o, models, n_models, n_images);
    if (o.trace_path && jp_trace_open(&p.trace, o.trace_path, p.start_ns, &err))
        goto fail;
    if (o.eval_tgr && open_power(&p, &err)) {
        if (!(o.power_if_available && err.status == JP_ERR_MISSING))
            goto fail;
        if (jp_textbuf_ok(&p.tried) && p.tried.len > 0)
            fprintf(stderr, "jplprof profile: no power source on this machine; measuring latency only. Tried:\n%s"
                            "  To measure power, fix one of these, or name it with --power-source.\n",
                    p.tried.data);
        else
            fprintf(stderr, "jplprof profile: no power source on this machine, measuring latency only (%s)\n",
                    err.msg);
        jp_power_close(p.power);
        p.power = NULL;
        o.eval_tgr = false;
        o.eval_latency = true;
        err = (jp_error){0};
    }

    manifest = cJSON_CreateObject();
    cJSON_AddStringToObject(manifest, "tool", "jplprof " JP_VERSION);
    time_t now = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    cJSON_AddStringToObject(manifest, "started", stamp);
    cJSON_AddItemToObject(manifest, "options", options_json(&o, argc, argv_copy));
    cJSON_AddItemToObject(manifest, "machine", machine_json(&o, o.device));
    cJSON *pj = cJSON_AddObjectToObject(manifest, "power");
    if (p.power) {
        cJSON_AddStringToObject(pj, "source", jp_power_kind_name(jp_power_source_kind(p.power)));
        cJSON_AddStringToObject(pj, "describe", jp_power_describe(p.power));
        cJSON_AddStringToObject(pj, "auto", jp_power_auto_log(p.power));
        cJSON_AddStringToObject(pj, "board", jp_board_name(jp_power_board(p.power)));
        cJSON_AddStringToObject(pj, "device_rail", p.rail.rail);
        cJSON_AddStringToObject(pj, "device_rail_why", p.rail.why);
        cJSON_AddNumberToObject(pj, "interval_requested_ms", jp_power_requested_interval_ms(p.power));
        cJSON *params = cJSON_AddArrayToObject(pj, "params");
        for (size_t i = 0; i < p.n_kept; i++)
            cJSON_AddItemToArray(params, cJSON_CreateString(p.kept[i].name));
        if (record_calibration(&o, &p, pj, &err))
            goto fail;
    } else {
        cJSON_AddStringToObject(pj, "source", "not measured (no --eval_tgr)");
    }
    cJSON *models_json = cJSON_AddArrayToObject(manifest, "models");

    struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (int i = 0; i < n_models && !interrupted; i++)
        if (profile_model(&p, models[i], images, n_images, models_json, i, n_models, &err))
            break;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    progress_break(&p);
    if (err.status)
        goto fail;

    if (p.power) {
        double delivered = jp_power_delivered_interval_ms(p.power);
        cJSON_AddNumberToObject(pj, "interval_delivered_ms", isfinite(delivered) ? delivered : -1);
        cJSON_AddNumberToObject(pj, "samples", (double)jp_power_sample_total(p.power));
    }
    now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    cJSON_AddStringToObject(manifest, "finished", interrupted ? "interrupted" : stamp);
    char dir[PATH_MAX], mpath[PATH_MAX + 64];
    /* Beside the journal, not among the seed's Mode/device folders, whose
     * readers expect only latency/ and power/ there. */
    snprintf(dir, sizeof dir, "%s/.jplprof/manifests", o.out_dir);
    snprintf(mpath, sizeof mpath, "%s/Mode%ld_%s_%s.json", dir, o.mode, jp_raw_device_dir(jp_device_name(o.device)),
             cJSON_GetObjectItemCaseSensitive(manifest, "started")->valuestring);
    if (jp_mkdir_p(dir, &err) || jp_json_write_atomic(mpath, manifest, true, &err))
        goto fail;
    if (p.trace && jp_trace_write(p.trace, &err))
        goto fail;
    fprintf(stderr, "jplprof profile: %ld %s%s measured, %ld already complete; manifest %s\n", p.layers_done,
            o.op_level ? "ops" : "layers", "", p.layers_skipped, mpath);
    if (interrupted) {
        fprintf(stderr,
                "jplprof profile: interrupted: every completed layer is saved. Resume with the same command plus "
                "--resume.\n");
        rc = 130;
    } else {
        printf("Raw data in %s/Mode%ld/%s. Next: jplprof process --dataset %s\n", o.out_dir, o.mode,
               jp_raw_device_dir(jp_device_name(o.device)), o.out_dir);
    }
    goto done;
fail:
    rc = jp_cli_fail("profile", &err);
    if (p.layers_done)
        fprintf(stderr, "jplprof profile: %ld layers were saved before the failure; rerun with --resume to go on.\n",
                p.layers_done);
done:
    cJSON_Delete(manifest);
    jp_raw_close(p.raw);
    jp_trace_close(p.trace);
    jp_power_close(p.power);
    jp_power_samples_free(&p.samples);
    jp_textbuf_free(&p.tried);
    free(p.keep);
    free(p.kept);
    free(p.row);
    free_list(models, n_models);
    free_list(images, n_images);
    free(argv_copy);
    free(o.tgr_params);
        free(o.imgs);
    return rc;
}
