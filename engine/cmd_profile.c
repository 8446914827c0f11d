/*
 * cmd_profile.c: `jplprof profile`, the dataset generator (DESIGN.md,
 * "Measurement protocol"; the seed tool's options and defaults).
 *
 * For each model and image: one forward pass gives every layer its input;
 * then each layer (or op, --granularity op) runs alone:
 *   latency: --warmup calls, then --lt_smpl_count calls, each timed on its
 *            own (device synchronised before each clock read), every sample
 *            kept;
 *   power:   start marker, the layer in a loop for --tgr_smpl_duration s,
 *            end marker; the samples of the one sampler that runs for the
 *            whole profile, stamped on arrival with the same clock, are cut
 *            into windows [start + boundary, end - boundary] later.
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
#include "power.h"
#include "rawdata.h"
#include "tegrastats_parse.h"
#include "trace.h"

/* ---- options ------------------------------------------------------------ */

typedef struct profile_options {
    long mode;
    bool mode_given;
    jp_device device;
    const char *imgs;           /* comma-separated; NULL: every image in data/imagenet */
    char *tgr_params;           /* comma-separated; NULL: every parameter sampled       */
    bool eval_tgr, eval_latency;
    bool power_if_available;    /* --eval_tgr, but latency only when no source exists */
    long tgr_interval_ms;
    double tgr_smpl_duration_s, tgr_smpl_boundary_s;
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
            "  --imgs a.jpg,b.png     images in data/imagenet/ (default: all of them)\n"
            "  --tgr_params P ...     parameters to keep (space- or comma-separated; default:\n"
            "                         every parameter the power source gives; the device's\n"
            "                         rail is always kept)\n"
            "  --eval_tgr             measure power\n"
            "  --tgr_interval MS      power sampling interval (default 20)\n"
            "  --tgr_smpl_duration S  seconds each layer runs in its power window (default 5)\n"
            "  --tgr_smpl_boundary S  seconds cut from each end of the window (default 1)\n"
            "  --eval_latency         measure latency (the default when neither is given)\n"
            "  --lt_smpl_count N      timed calls per layer (default 100)\n"
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
            "  --resume               skip the (image, layer) pairs already complete\n"
            "  --warmup N             untimed calls before the latency samples (default 10)\n"
            "  --threads N            CPU threads (default: all online cores)\n"
            "  --trace FILE           write a Chrome/Perfetto trace (ui.perfetto.dev)\n"
            "  --seed N               seed of synthetic weights (default 0)\n"
            "  --plan FILE            kernels per op from `jplprof compare --plan` (for the model\n"
            "                         it names; the others use the default kernels)\n");
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
        {"imgs", required_argument, NULL, 'i'},
        {"eval-tgr", no_argument, NULL, 'E'},
        {"tgr-interval", required_argument, NULL, 'I'},
        {"tgr-smpl-duration", required_argument, NULL, 'D'},
        {"tgr-smpl-boundary", required_argument, NULL, 'B'},
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
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    /* --tgr-params first: it may take several words. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tgr-params") == 0) {
            free(o->tgr_params);
            o->tgr_params = collect_words(argc, argv, &i);
            if (!o->tgr_params || !o->tgr_params[0])
                return jp_error_set(err, JP_ERR_ARG, "--tgr_params needs at least one parameter name");
        } else if (strncmp(argv[i], "--tgr-params=", 13) == 0) {
            free(o->tgr_params);
            o->tgr_params = strdup(argv[i] + 13);
            for (char *c = o->tgr_params; c && *c; c++)
                if (*c == ' ')
                    *c = ',';
        } else {
            argv[kept++] = argv[i];
        }
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
        case 'i': o->imgs = optarg; break;
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
        case 'L': o->eval_latency = true; break;
        case 'n':
            if (jp_cli_parse_int("--lt_smpl_count", optarg, 1, 100000000, &o->lt_smpl_count, err))
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
        case ':':
            return jp_error_set(err, JP_ERR_ARG, "option \"%s\" needs a value (see jplprof profile --help)",
                                argv[optind - 1]);
        default:
            return jp_error_set(err, JP_ERR_ARG, "unknown option \"%s\" (see jplprof profile --help)",
                                argv[optind - 1]);
        }
    }
    if (optind < argc)
        return jp_error_set(err, JP_ERR_ARG, "unexpected argument \"%s\" (see jplprof profile --help)", argv[optind]);
    if (!o->mode_given)
        return jp_error_set(err, JP_ERR_ARG, "--mode is required (the board's power mode, set beforehand)");
    if (o->eval_tgr && 2 * o->tgr_smpl_boundary_s >= o->tgr_smpl_duration_s)
        return jp_error_set(err, JP_ERR_ARG,
                            "--tgr_smpl_boundary %g s: twice the boundary must be less than --tgr_smpl_duration %g s, "
                            "or no sample is left in a window",
                            o->tgr_smpl_boundary_s, o->tgr_smpl_duration_s);
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
    return m;
}

/* nvpmodel -q prints "NV Power Mode: MAXN\n0": the last line is the mode id. */
static void check_nvpmodel(long mode)
{
    char out[512];
    command_line_output("nvpmodel -q 2>/dev/null", out, sizeof out);
    if (!out[0])
        return;
    const char *last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    char *end;
    long board_mode = strtol(last, &end, 10);
    if (end != last && board_mode != mode)
        fprintf(stderr,
                "jplprof profile: warning: --mode %ld, but nvpmodel -q says the board is in mode %ld (%s); the data "
                "will be filed under Mode%ld. Set the mode with `sudo nvpmodel -m %ld` first if that is not what "
                "you meant.\n",
                mode, board_mode, out, mode, mode);
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
} profiler;

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

typedef jp_status (*unit_runner)(jp_exec *ex, int unit, jp_error *err);

static jp_status sync_backend(jp_exec *ex, jp_error *err) { return ex->backend->synchronize(err); }

/* --warmup calls, then n timed calls. */
static jp_status measure_latency(jp_exec *ex, unit_runner run, int unit, long warmup, long n, double *samples_s,
                                 jp_error *err)
{
    for (long i = 0; i < warmup; i++)
        if (run(ex, unit, err))
            return err->status;
    if (sync_backend(ex, err))
        return err->status;
    for (long i = 0; i < n; i++) {
        int64_t t0 = jp_clock_ns();
        if (run(ex, unit, err) || sync_backend(ex, err))
            return err->status;
        samples_s[i] = (double)(jp_clock_ns() - t0) * 1e-9;
    }
    return JP_OK;
}

/* The unit in a loop for duration_s between two markers. */
static jp_status measure_power(profiler *p, jp_exec *ex, unit_runner run, int unit, const char *key,
                               uint64_t *calls_out, jp_error *err)
{
    int64_t duration_ns = jp_raw_seconds_to_ns(p->o->tgr_smpl_duration_s);
    if (route_samples(p, err)) /* what arrived before the window */
        return err->status;
    uint64_t calls = 0;
    int64_t start = jp_clock_ns(), now = start;
    while (now - start < duration_ns) {
        if (run(ex, unit, err) || sync_backend(ex, err))
            return err->status;
        calls++;
        now = jp_clock_ns();
    }
    int64_t end = now;
    if (route_samples(p, err) || jp_raw_add_power_window(p->raw, key, start, end, calls, err))
        return err->status;
    if (p->trace) {
        jp_trace_slice s = {.name = key, .layer = key, .start_ns = start, .end_ns = end, .calls = calls};
        if (jp_trace_add_slice(p->trace, &s, err))
            return err->status;
    }
    *calls_out = calls;
    return JP_OK;
}

static jp_status run_layer_unit(jp_exec *ex, int unit, jp_error *err) { return jp_exec_run_layer(ex, unit, err); }
static jp_status run_step_unit(jp_exec *ex, int unit, jp_error *err) { return jp_exec_run_step(ex, unit, err); }

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
    unit_runner run = o->op_level ? run_step_unit : run_layer_unit;
    double *samples = calloc((size_t)o->lt_smpl_count, sizeof *samples);
    double *sorted = calloc((size_t)o->lt_smpl_count, sizeof *sorted);
    jp_status st = samples && sorted ? JP_OK : jp_error_set(err, JP_ERR_NOMEM, "out of memory");
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
            .tgr_interval_ms = (double)o->tgr_interval_ms,
            .power_source = p->power ? jp_power_kind_name(jp_power_source_kind(p->power)) : NULL,
            .device_rail = p->power ? p->rail.rail : NULL,
            .params = p->kept,
            .n_params = p->n_kept,
            .profile_start_ns = p->start_ns,
        };
        if ((st = jp_raw_open(&p->raw, &ro, err)))
            break;
        for (int u = 0; u < n_units && !interrupted; u++) {
            char key[600];
            if (o->op_level)
                snprintf(key, sizeof key, "%s", ex.steps[u].step.op->name);
            else
                snprintf(key, sizeof key, "%d", u);
            bool lat = o->eval_latency && !jp_raw_is_done(p->raw, JP_RAW_LATENCY, key);
            bool pow = o->eval_tgr && !jp_raw_is_done(p->raw, JP_RAW_POWER, key);
            if (!lat && !pow) {
                p->layers_skipped++;
                continue;
            }
            char line[1024];
            int used = snprintf(line, sizeof line, "[%d/%d %s | %s] %s %d/%d %s", model_index + 1, n_models, model,
                                images[im], o->op_level ? "op" : "layer", u + 1, n_units,
                                o->op_level ? ex.steps[u].step.op->name : m.graph.layers[u].path);
            if (lat) {
                if ((st = measure_latency(&ex, run, u, o->warmup, o->lt_smpl_count, samples, err)) ||
                    (st = jp_raw_add_latency(p->raw, key, samples, (size_t)o->lt_smpl_count, err)))
                    break;
                memcpy(sorted, samples, (size_t)o->lt_smpl_count * sizeof *sorted);
                used += snprintf(line + used, sizeof line - (size_t)used, ": latency median %.4f ms (n=%ld)",
                                 jp_cli_median(sorted, (size_t)o->lt_smpl_count) * 1e3, o->lt_smpl_count);
            }
            if (pow) {
                uint64_t calls = 0;
                if ((st = measure_power(p, &ex, run, u, key, &calls, err)))
                    break;
                snprintf(line + used, sizeof line - (size_t)used, "%s power window %.1f s, %llu calls",
                         lat ? ";" : ":", o->tgr_smpl_duration_s, (unsigned long long)calls);
            }
            if ((st = jp_raw_flush(p->raw, err)))
                break;
            p->layers_done++;
            fprintf(stderr, "%s\n", line);
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
    jp_exec_free(&ex);
    jp_cli_plan_free(&plan);
    jp_cli_model_free(&m);
    return st;
}

static jp_status open_power(profiler *p, jp_error *err)
{
    const profile_options *o = p->o;
    jp_cli_power_options po = {.kind = o->power_source, .interval_ms = o->tgr_interval_ms,
                               .tegrastats = o->tegrastats, .rail = o->rail};
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
        return 0;
    }
    if (st) {
        free(argv_copy);
        free(o.tgr_params);
        return jp_cli_fail("profile", &err);
    }
    if (!o.eval_tgr && !o.eval_latency) {
        o.eval_latency = true;
        fprintf(stderr, "jplprof profile: neither --eval_latency nor --eval_tgr given: measuring latency.\n");
    }
    if (!o.threads)
        o.threads = jp_cli_default_threads();

    profiler p = {.o = &o};
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
    if (o.trace_path && jp_trace_open(&p.trace, o.trace_path, p.start_ns, &err))
        goto fail;
    if (o.eval_tgr && open_power(&p, &err)) {
        if (!(o.power_if_available && err.status == JP_ERR_MISSING))
            goto fail;
        fprintf(stderr, "jplprof profile: no power source on this machine, measuring latency only (%s)\n", err.msg);
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
    free(p.keep);
    free(p.kept);
    free(p.row);
    free_list(models, n_models);
    free_list(images, n_images);
    free(argv_copy);
    free(o.tgr_params);
    return rc;
}
