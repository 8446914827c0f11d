/*
 * cmd_compare.c: `jplprof compare`: every implementation (kernel) of each
 * selected op, on the op's real input from a forward pass, checked against
 * the naive CPU reference and timed with the profiler's protocol.
 *
 * The model runs unfused with every value kept, so each op's input is its
 * real one.  For each op and each kernel of the device that supports it, the
 * kernel is prepared on its own (never timed), writes into a scratch buffer,
 * runs --warmup times untimed, then --runs times each timed alone (device
 * synchronised before each clock read); every sample is kept for the JSON
 * and CSV files, and the table gives median, p5, p95, n and GFLOP/s
 * (2 x multiply-accumulates / median) beside the device's measured peak
 * (the backend's measure_peak: a register-only FMA loop, measured once
 * before the first op).  Correctness: max|out - ref| <= 1e-4 * max|ref| +
 * 1e-5, the bound of the model tests.
 *
 * With --eval_tgr, after its latency samples each kernel also gets a power
 * window, as profile gives a layer (profiler/measure.h: --cooldown idle,
 * then a loop of duration + 2 x boundary between two markers); the power
 * source samples throughout, and the kernel's power is the
 * mean of the device rail's samples within [start + boundary, end -
 * boundary], its energy per call that power times the window's time per
 * call.  A window with no sample gives no power (null), never zero.
 *
 * A kernel whose prepare answers JP_ERR_UNSUPPORTED for a step it claimed
 * (a cuDNN algorithm that cuDNN does not offer for that shape) is listed
 * as not applicable, with cuDNN's reason, and is no failure.
 */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "clock.h"
#include "cli.h"
#include "fileio.h"
#include "measure.h"
#include "rawdata.h"

#define REL_TOL 1e-4
#define ABS_TOL 1e-5

typedef struct compare_options {
    jp_cli_model_options model;
    jp_device device;
    long threads;
    long layer;          /* -1: every layer */
    const char *op;      /* NULL: every op of the selected layers */
    const char *impls;   /* comma-separated kernel names (or name suffixes); NULL: all */
    long runs, warmup;
    const char *json_path, *csv_path;
    const char *plan_path; /* written: the fastest correct kernel per op */
    bool eval_tgr;         /* power and energy per call                 */
    jp_cli_power_options power;
    double tgr_smpl_duration_s, tgr_smpl_boundary_s, cooldown_s;
} compare_options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: jplprof compare --model MODEL [options]\n"
            "\n"
            "Runs every implementation of each selected op on the op's real input (from a\n"
            "forward pass), checks it against the naive CPU reference and times it:\n"
            "median, p5, p95 and n of --runs calls, with GFLOP/s.\n"
            "  --model NAME          a model of `jplprof models` (required)\n"
            "  --layer N | --op NAME the ops of layer N, or one op (default: every op)\n"
            "  --impls a,b           only these kernels (full names, or the last part:\n"
            "                        im2col_blas,depthwise)\n"
            "  --device cpu|cuda     default cpu\n"
            "  --image FILE | --input-tensor FILE   the input (default: synthetic)\n"
            "  --weights FILE | --synthetic | --seed N   as for infer\n"
            "  --threads N           CPU threads (default: all online cores)\n"
            "  --runs N              timed calls per kernel (default 20); --warmup N (3)\n"
            "  --json FILE, --csv FILE   also write every row (and every sample, JSON)\n"
            "  --plan FILE           write the fastest correct kernel per op, for infer and\n"
            "                        profile --plan\n"
            "\n"
            "Power (as profile measures a layer's):\n"
            "  --eval_tgr            also power (mW, device rail) and energy per call (mJ): each\n"
            "                        kernel runs in a loop for duration + 2 x boundary s after\n"
            "                        --cooldown s idle; the middle duration s are kept\n"
            "  --tgr_smpl_duration S kept seconds per kernel (default 5); --tgr_smpl_boundary S\n"
            "                        run but not kept at each end (default 1); --cooldown S\n"
            "                        (default 2); --tgr_interval MS (default 20)\n"
            "  --power-source auto|tegrastats|ina3221|nvml|rapl   (default auto)\n"
            "  --tegrastats PATH, --rail NAME   as for profile\n");
}

static jp_status parse_args(int argc, char **argv, compare_options *o, jp_error *err)
{
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},   {"layer", required_argument, NULL, 'l'},
        {"op", required_argument, NULL, 'o'},      {"impls", required_argument, NULL, 'i'},
        {"device", required_argument, NULL, 'd'},  {"image", required_argument, NULL, 'I'},
        {"input-tensor", required_argument, NULL, 'T'}, {"weights", required_argument, NULL, 'w'},
        {"synthetic", no_argument, NULL, 'Y'},     {"seed", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 't'}, {"runs", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'W'},  {"json", required_argument, NULL, 'J'},
        {"csv", required_argument, NULL, 'C'},     {"plan", required_argument, NULL, 'P'},
        {"eval-tgr", no_argument, NULL, 'E'},      {"tgr-interval", required_argument, NULL, 'G'},
        {"tgr-smpl-duration", required_argument, NULL, 'D'},
        {"tgr-smpl-boundary", required_argument, NULL, 'B'},
        {"tgr-smpl-boundry", required_argument, NULL, 'B'},
        {"cooldown", required_argument, NULL, 'q'},
        {"power-source", required_argument, NULL, 'p'}, {"tegrastats", required_argument, NULL, 'g'},
        {"rail", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'm': o->model.model = optarg; break;
        case 'l':
            if (jp_cli_parse_int("--layer", optarg, 0, INT_MAX, &o->layer, err))
                return err->status;
            break;
        case 'o': o->op = optarg; break;
        case 'i': o->impls = optarg; break;
        case 'd':
            if (jp_cli_parse_device(optarg, &o->device, err))
                return err->status;
            break;
        case 'I': o->model.image = optarg; break;
        case 'T': o->model.input_tensor = optarg; break;
        case 'w': o->model.weights_path = optarg; break;
        case 'Y': o->model.synthetic = true; break;
        case 'S':
            if (jp_cli_parse_int("--seed", optarg, 0, LONG_MAX, &v, err))
                return err->status;
            o->model.seed = (uint64_t)v;
            break;
        case 't':
            if (jp_cli_parse_int("--threads", optarg, 1, 1024, &o->threads, err))
                return err->status;
            break;
        case 'r':
            if (jp_cli_parse_int("--runs", optarg, 1, 1000000, &o->runs, err))
                return err->status;
            break;
        case 'W':
            if (jp_cli_parse_int("--warmup", optarg, 0, 1000000, &o->warmup, err))
                return err->status;
            break;
        case 'J': o->json_path = optarg; break;
        case 'C': o->csv_path = optarg; break;
        case 'P': o->plan_path = optarg; break;
        case 'E': o->eval_tgr = true; break;
        case 'G':
            if (jp_cli_parse_int("--tgr_interval", optarg, 1, 60000, &o->power.interval_ms, err))
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
        case 'q':
            if (jp_cli_parse_double("--cooldown", optarg, 0, 86400, &o->cooldown_s, err))
                return err->status;
            break;
        case 'p':
            if (jp_power_kind_parse(optarg, &o->power.kind, err))
                return jp_error_prefix(err, "--power-source: ");
            break;
        case 'g': o->power.tegrastats = optarg; break;
        case 'R': o->power.rail = optarg; break;
        case 'h': return JP_STATUS_COUNT;
        default:
            return jp_cli_getopt_error("compare", c, argv, err);
        }
    }
    if (jp_cli_no_operands("compare", argc, argv, err))
        return err->status;
    if (!o->model.model)
        return jp_error_set(err, JP_ERR_ARG, "--model is required (see jplprof models)");
    if (o->op && o->layer >= 0)
        return jp_error_set(err, JP_ERR_ARG, "--layer and --op exclude each other");
    if (o->model.synthetic && o->model.weights_path)
        return jp_error_set(err, JP_ERR_ARG, "--synthetic and --weights exclude each other");
    return JP_OK;
}

/* Is kernel k selected by --impls (full names or their last component)? */
static bool impl_selected(const char *impls, const jp_kernel *k)
{
    if (!impls)
        return true;
    const char *last = strrchr(k->name, '/');
    last = last ? last + 1 : k->name;
    size_t n_full = strlen(k->name), n_last = strlen(last);
    for (const char *p = impls; *p;) {
        size_t len = strcspn(p, ",");
        if ((len == n_full && strncmp(p, k->name, len) == 0) || (len == n_last && strncmp(p, last, len) == 0))
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Does any kernel of the registry match an --impls entry?  (A typo must not
 * silently compare nothing.) */
static jp_status check_impls(const char *impls, jp_error *err)
{
    if (!impls)
        return JP_OK;
    size_t n;
    const jp_kernel *const *all = jp_kernels_all(&n);
    for (const char *p = impls; *p;) {
        size_t len = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            const char *last = strrchr(all[i]->name, '/');
            last = last ? last + 1 : all[i]->name;
            found = (strlen(all[i]->name) == len && strncmp(p, all[i]->name, len) == 0) ||
                    (strlen(last) == len && strncmp(p, last, len) == 0);
        }
        if (!found)
            return jp_error_set(err, JP_ERR_ARG, "--impls: no kernel is called \"%.*s\" (jplprof compare lists the "
                                "kernels of each op it runs)", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    return JP_OK;
}

typedef struct result {
    const jp_op *op;
    const jp_kernel *kernel;
    char detail[256];          /* what prepare chose (kernel describe) */
    double median_s, p5_s, p95_s, gflops;
    double pct_of_peak;        /* gflops against the device's measured peak; NAN: none */
    double max_err, max_ref;
    bool pass;
    long n;
    double *samples_s;         /* n, in call order */
    /* --eval_tgr: */
    double power_mw;           /* mean of the rail in the trimmed window; NAN: no sample */
    double energy_per_call_mj; /* power_mw x window time per call; NAN without power */
    double window_s;           /* the whole window (markers), s */
    uint64_t calls;            /* calls in the whole window */
    size_t power_samples;      /* rail samples in the trimmed window */
} result;

/* The power source of --eval_tgr and the samples taken from it. */
typedef struct power_meter {
    jp_power_source *src;      /* NULL without --eval_tgr */
    jp_rail_choice rail;
    jp_power_samples samples;
} power_meter;

/* A prepared kernel as a measurement unit: one call, device synchronised. */
typedef struct kernel_unit {
    const jp_backend *b;
    const jp_kernel *k;
    void *state;
    const jp_step *step;
} kernel_unit;

static jp_status run_kernel_unit(void *ctx, jp_error *err)
{
    const kernel_unit *u = ctx;
    jp_status st = u->k->run(u->state, u->step, err);
    return st ? st : u->b->synchronize(err);
}

/* One power window of the kernel (measure.h, as profile measures a layer)
 * and the device rail's plain mean over its kept middle. */
static jp_status measure_power(const compare_options *o, power_meter *pm, const jp_measure_unit *unit, result *r,
                               jp_error *err)
{
    if (jp_power_take(pm->src, &pm->samples, err)) /* what arrived before the window */
        return jp_error_prefix(err, "power source failed: ");
    jp_power_samples_clear(&pm->samples);
    jp_measure_window_options wo = {.duration_s = o->tgr_smpl_duration_s, .boundary_s = o->tgr_smpl_boundary_s,
                                    .cooldown_s = o->cooldown_s};
    jp_measure_window w;
    if (jp_measure_power_window(NULL, unit, &wo, NULL, &w, err))
        return err->status;
    if (jp_power_take(pm->src, &pm->samples, err))
        return jp_error_prefix(err, "power source failed: ");
    size_t n;
    r->power_mw = jp_measure_window_mean(pm->samples.t_ns, pm->samples.values, pm->samples.count,
                                         pm->samples.n_params, (size_t)pm->rail.param_index, &w,
                                         jp_raw_seconds_to_ns(o->tgr_smpl_boundary_s), &n);
    r->window_s = (double)(w.end_ns - w.start_ns) * 1e-9;
    r->calls = w.calls;
    r->power_samples = n;
    r->energy_per_call_mj = n && w.calls ? r->power_mw * r->window_s / (double)w.calls : NAN;
    return JP_OK;
}

static double percentile(const double *sorted, long n, double q)
{
    double pos = q * (double)(n - 1);
    long lo = (long)floor(pos), hi = (long)ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

/* Runs one kernel on one step; fills r.  ref: the reference output on the
 * host (numel floats); host: scratch of the same size. */
static jp_status run_kernel(const compare_options *o, power_meter *pm, const jp_backend *b, const jp_step *base,
                            const jp_kernel *k, void *scratch_out, const float *ref, float *host, result *r,
                            jp_error *err)
{
    jp_step step = *base;
    step.out.data = scratch_out;
    void *state = NULL;
    size_t numel = (size_t)jp_tensor_numel(&step.out);
    r->power_mw = r->energy_per_call_mj = NAN;
    jp_status st = k->prepare ? k->prepare(&step, &state, err) : JP_OK;
    if (st == JP_ERR_UNSUPPORTED)
        return st; /* the caller lists it as not applicable */
    if (st)
        return jp_error_prefix(err, "op %s, kernel %s: ", base->op->name, k->name);
    jp_kernel_describe(k, state, r->detail, sizeof r->detail);
    r->samples_s = calloc((size_t)o->runs, sizeof *r->samples_s);
    double *sorted = calloc((size_t)o->runs, sizeof *sorted);
    if (!r->samples_s || !sorted) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    kernel_unit ku = {.b = b, .k = k, .state = state, .step = &step};
    jp_measure_unit unit = {.run = run_kernel_unit, .ctx = &ku};
    st = jp_measure_latency(NULL, &unit, o->warmup, o->runs, r->samples_s, err);
    if (st == JP_OK && o->runs + o->warmup == 0)
        st = k->run(state, &step, err);
    if (st == JP_OK && pm->src)
        st = measure_power(o, pm, &unit, r, err);
    if (st == JP_OK)
        st = b->download(host, scratch_out, numel * sizeof(float), err);
    if (st) {
        jp_error_prefix(err, "op %s, kernel %s: ", base->op->name, k->name);
        goto done;
    }
    r->op = base->op;
    r->kernel = k;
    r->n = o->runs;
    memcpy(sorted, r->samples_s, (size_t)o->runs * sizeof *sorted);
    r->median_s = jp_cli_median(sorted, (size_t)o->runs);
    r->p5_s = percentile(sorted, o->runs, 0.05);
    r->p95_s = percentile(sorted, o->runs, 0.95);
    r->gflops = base->op->macs > 0 && r->median_s > 0 ? 2.0 * (double)base->op->macs / r->median_s * 1e-9 : 0;
    r->max_err = 0, r->max_ref = 0;
    bool finite = true;
    for (size_t i = 0; i < numel; i++) {
        finite &= isfinite(host[i]) != 0;
        r->max_err = fmax(r->max_err, fabs((double)host[i] - ref[i]));
        r->max_ref = fmax(r->max_ref, fabs((double)ref[i]));
    }
    r->pass = finite && r->max_err <= REL_TOL * r->max_ref + ABS_TOL;
done:
    free(sorted);
    if (k->release && state)
        k->release(state);
    return st;
}

/* The reference output of a step, on the host: the CPU reference kernel on
 * host copies of the inputs. */
static jp_status reference_output(const jp_backend *b, const jp_step *base, float *out_host, jp_error *err)
{
    const jp_kernel *ref = jp_kernel_reference(base->op->type);
    if (!ref)
        return jp_error_set(err, JP_ERR_INTERNAL, "op %s: no reference kernel", base->op->name);
    jp_step step = *base;
    float *in_host[JP_MAX_OP_INPUTS] = {0};
    jp_status st = JP_OK;
    for (int i = 0; i < step.n_in && st == JP_OK; i++) {
        size_t bytes = (size_t)jp_tensor_numel(&step.in[i]) * sizeof(float);
        in_host[i] = malloc(bytes);
        if (!in_host[i])
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        else
            st = b->download(in_host[i], step.in[i].data, bytes, err);
        step.in[i].data = in_host[i];
        step.in[i].device = JP_DEVICE_CPU;
    }
    step.out.data = out_host;
    step.out.device = JP_DEVICE_CPU;
    void *state = NULL;
    if (st == JP_OK && ref->prepare)
        st = ref->prepare(&step, &state, err);
    if (st == JP_OK)
        st = ref->run(state, &step, err);
    if (ref->release && state)
        ref->release(state);
    for (int i = 0; i < JP_MAX_OP_INPUTS; i++)
        free(in_host[i]);
    return st;
}

/* A number, or null when it is not one (no power sample). */
static void add_number_or_null(cJSON *j, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(j, name, v);
    else
        cJSON_AddNullToObject(j, name);
}

static cJSON *result_json(const result *r, bool eval_tgr)
{
    cJSON *j = cJSON_CreateObject();
    char shape[96];
    cJSON_AddStringToObject(j, "op", r->op->name);
    cJSON_AddStringToObject(j, "type", jp_op_type_name(r->op->type));
    cJSON_AddNumberToObject(j, "layer", r->op->layer);
    cJSON_AddStringToObject(j, "output", jp_shape_str(r->op->out_rank, r->op->out_dims, shape, sizeof shape));
    cJSON_AddStringToObject(j, "kernel", r->kernel->name);
    cJSON_AddStringToObject(j, "detail", r->detail);
    cJSON_AddBoolToObject(j, "reference", r->kernel->is_reference);
    cJSON_AddNumberToObject(j, "macs", (double)r->op->macs);
    cJSON_AddNumberToObject(j, "median_s", r->median_s);
    cJSON_AddNumberToObject(j, "p5_s", r->p5_s);
    cJSON_AddNumberToObject(j, "p95_s", r->p95_s);
    cJSON_AddNumberToObject(j, "n", (double)r->n);
    cJSON_AddNumberToObject(j, "gflops", r->gflops);
    add_number_or_null(j, "pct_of_peak", r->pct_of_peak);
    if (eval_tgr) {
        add_number_or_null(j, "power_mw", r->power_mw);
        add_number_or_null(j, "energy_per_call_mj", r->energy_per_call_mj);
        cJSON_AddNumberToObject(j, "power_window_s", r->window_s);
        cJSON_AddNumberToObject(j, "power_window_calls", (double)r->calls);
        cJSON_AddNumberToObject(j, "power_samples", (double)r->power_samples);
    }
    cJSON_AddNumberToObject(j, "max_abs_err", r->max_err);
    cJSON_AddNumberToObject(j, "max_abs_ref", r->max_ref);
    cJSON_AddNumberToObject(j, "rel_err", r->max_ref > 0 ? r->max_err / r->max_ref : 0);
    cJSON_AddBoolToObject(j, "pass", r->pass);
    cJSON_AddItemToObject(j, "samples_s", cJSON_CreateDoubleArray(r->samples_s, (int)r->n));
    return j;
}

static jp_status write_csv(const char *path, const result *rs, size_t n, jp_error *err)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_puts(&b, "op,type,layer,kernel,reference,macs,median_s,p5_s,p95_s,n,gflops,pct_of_peak,max_abs_err,"
                        "max_abs_ref,pass,power_mw,energy_per_call_mj\n");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        char pct[32] = "", power[32] = "", energy[32] = "";
        if (isfinite(r->pct_of_peak))
            snprintf(pct, sizeof pct, "%.2f", r->pct_of_peak);
        if (isfinite(r->power_mw))
            snprintf(power, sizeof power, "%.3f", r->power_mw);
        if (isfinite(r->energy_per_call_mj))
            snprintf(energy, sizeof energy, "%.6g", r->energy_per_call_mj);
        jp_textbuf_printf(&b, "%s,%s,%d,%s,%d,%lld,%.9g,%.9g,%.9g,%ld,%.4f,%s,%.6g,%.6g,%d,%s,%s\n", r->op->name,
                          jp_op_type_name(r->op->type), r->op->layer, r->kernel->name, r->kernel->is_reference,
                          (long long)r->op->macs, r->median_s, r->p5_s, r->p95_s, r->n, r->gflops, pct, r->max_err,
                          r->max_ref, r->pass, power, energy);
    }
    jp_status st = jp_textbuf_ok(&b) ? jp_file_write_atomic(path, b.data, b.len, err)
                                     : jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
    jp_textbuf_free(&b);
    return st;
}

int jp_cmd_compare(int argc, char **argv)
{
    compare_options o = {.device = JP_DEVICE_CPU, .layer = -1, .runs = 20, .warmup = 3,
                         .power = {.kind = JP_POWER_AUTO, .interval_ms = 20},
                         .tgr_smpl_duration_s = 5, .tgr_smpl_boundary_s = 1, .cooldown_s = 2};
    jp_error err = {0};
    jp_status st = parse_args(argc, argv, &o, &err);
    if (st == JP_STATUS_COUNT) {
        usage(stdout);
        return 0;
    }
    if (st || check_impls(o.impls, &err))
        return jp_cli_fail("compare", &err);
    if (!o.threads)
        o.threads = jp_cli_default_threads();
    if (jp_cli_init_device(o.device, (int)o.threads, &err))
        return jp_cli_fail("compare", &err);
    jp_cli_model m;
    if (jp_cli_model_load(&m, &o.model, &err))
        return jp_cli_fail("compare", &err);
    const jp_graph *g = &m.graph;
    int rc = 0;
    result *results = NULL;
    size_t n_results = 0, cap = 0;
    float *ref = NULL, *host = NULL;
    void *scratch = NULL;
    power_meter pm = {0};
    double peak_gflops = 0;
    char peak_how[256] = "not measured (this backend has no measure_peak)";
    size_t n_not_applicable = 0;
    cJSON *not_applicable = cJSON_CreateArray();
    jp_exec ex;
    jp_exec_options eo = {.device = o.device, .fuse = false, .keep_all_values = true};
    if (o.layer >= g->n_layers) {
        jp_error_set(&err, JP_ERR_ARG, "--layer %ld: %s has layers 0 to %d", o.layer, g->model, g->n_layers - 1);
        jp_cli_model_free(&m);
        return jp_cli_fail("compare", &err);
    }
    if (jp_exec_build(&ex, g, &eo, &err)) {
        jp_cli_model_free(&m);
        return jp_cli_fail("compare", &err);
    }
    const jp_backend *b = ex.backend;
    size_t max_out = 0;
    for (int s = 0; s < ex.n_steps; s++)
        max_out = (size_t)fmax((double)max_out, (double)jp_tensor_numel(&ex.steps[s].step.out));
    ref = malloc(max_out * sizeof *ref);
    host = malloc(max_out * sizeof *host);
    if (!ref || !host || b->alloc(max_out * sizeof(float), &scratch, &err) ||
        jp_exec_set_input(&ex, m.input, &err) || jp_exec_forward(&ex, NULL, &err)) {
        if (!err.status)
            jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    jp_power_samples_init(&pm.samples);
    if (o.eval_tgr && jp_cli_power_open(&o.power, o.device, &pm.src, &pm.rail, &err))
        goto fail;
    if (b->measure_peak && b->measure_peak(&peak_gflops, peak_how, sizeof peak_how, &err))
        goto fail;
    bool any_op = false;
    printf("model %s | device %s (%ld threads) | weights %s | %s | %ld runs after %ld warm-up\n", g->model,
           jp_device_name(o.device), o.threads, m.weights.synthetic ? "SYNTHETIC" : m.weights.path, m.input_desc,
           o.runs, o.warmup);
    if (peak_gflops > 0)
        printf("peak %.1f GFLOP/s: %s\n", peak_gflops, peak_how);
    if (pm.src)
        printf("power: %s, rail %s (%s); %g s per kernel, %g s cut from each end\n", jp_power_describe(pm.src),
               pm.rail.rail, pm.rail.why, o.tgr_smpl_duration_s, o.tgr_smpl_boundary_s);
    printf("%-34s %-18s %-30s %10s %10s %10s %9s %6s %10s %5s%s  %s\n", "op", "output", "kernel", "median_ms", "p5_ms",
           "p95_ms", "GFLOP/s", "%peak", "rel_err", "ok", pm.src ? "   power_mW  mJ/call" : "", "chose");
    for (int s = 0; s < ex.n_steps; s++) {
        const jp_step *base = &ex.steps[s].step;
        if ((o.op && strcmp(base->op->name, o.op) != 0) || (o.layer >= 0 && base->op->layer != o.layer))
            continue;
        any_op = true;
        if (reference_output(b, base, ref, &err))
            goto fail;
        size_t n_k;
        const jp_kernel *const *all = jp_kernels_all(&n_k);
        for (size_t i = 0; i < n_k; i++) {
            const jp_kernel *k = all[i];
            if (k->device != o.device || k->op_type != base->op->type || !impl_selected(o.impls, k) ||
                !k->supports(base))
                continue;
            if (n_results == cap) {
                cap = cap ? 2 * cap : 64;
                result *grown = realloc(results, cap * sizeof *grown);
                if (!grown) {
                    jp_error_set(&err, JP_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                results = grown;
            }
            result *r = &results[n_results];
            memset(r, 0, sizeof *r);
            char shape[64];
            jp_shape_str(base->out.rank, base->out.dims, shape, sizeof shape);
            st = run_kernel(&o, &pm, b, base, k, scratch, ref, host, r, &err);
            if (st == JP_ERR_UNSUPPORTED) {
                printf("%-34s %-18s %-30s not applicable: %s\n", base->op->name, shape, k->name, err.msg);
                cJSON *na = cJSON_CreateObject();
                cJSON_AddStringToObject(na, "op", base->op->name);
                cJSON_AddStringToObject(na, "kernel", k->name);
                cJSON_AddStringToObject(na, "why", err.msg);
                cJSON_AddItemToArray(not_applicable, na);
                n_not_applicable++;
                err = (jp_error){0};
                free(r->samples_s);
                continue;
            }
            if (st) {
                free(r->samples_s);
                goto fail;
            }
            n_results++;
            r->pct_of_peak = peak_gflops > 0 ? 100.0 * r->gflops / peak_gflops : NAN;
            char power[48] = "";
            if (pm.src)
                snprintf(power, sizeof power, " %10.1f %8.4g", r->power_mw, r->energy_per_call_mj);
            printf("%-34s %-18s %-30s %10.4f %10.4f %10.4f %9.2f %6.1f %10.2e %5s%s  %s\n", base->op->name, shape,
                   k->name, r->median_s * 1e3, r->p5_s * 1e3, r->p95_s * 1e3, r->gflops,
                   r->pct_of_peak, r->max_ref > 0 ? r->max_err / r->max_ref : r->max_err, r->pass ? "yes" : "NO",
                   power, r->detail);
            fflush(stdout);
        }
    }
    if (!any_op) {
        jp_error_set(&err, JP_ERR_ARG, "--op %s: %s has no op of that name (see jplprof layers %s --granularity op)",
                     o.op ? o.op : "?", g->model, g->model);
        goto fail;
    }
    if (o.json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "tool", "jplprof " JP_VERSION);
        cJSON_AddStringToObject(root, "model", g->model);
        cJSON_AddStringToObject(root, "device", jp_device_name(o.device));
        cJSON_AddNumberToObject(root, "threads", (double)o.threads);
        cJSON_AddStringToObject(root, "weights", m.weights.synthetic ? "synthetic" : m.weights.path);
        cJSON_AddStringToObject(root, "input", m.input_desc);
        cJSON_AddNumberToObject(root, "warmup", (double)o.warmup);
        cJSON_AddStringToObject(root, "tolerance", "max|out - ref| <= 1e-4 * max|ref| + 1e-5");
        add_number_or_null(root, "peak_gflops", peak_gflops > 0 ? peak_gflops : NAN);
        cJSON_AddStringToObject(root, "peak_method", peak_how);
        if (pm.src) {
            cJSON *pj = cJSON_AddObjectToObject(root, "power");
            cJSON_AddStringToObject(pj, "source", jp_power_describe(pm.src));
            cJSON_AddStringToObject(pj, "rail", pm.rail.rail);
            cJSON_AddStringToObject(pj, "rail_why", pm.rail.why);
            cJSON_AddNumberToObject(pj, "tgr_smpl_duration_s", o.tgr_smpl_duration_s);
            cJSON_AddNumberToObject(pj, "tgr_smpl_boundary_s", o.tgr_smpl_boundary_s);
            cJSON_AddNumberToObject(pj, "cooldown_s", o.cooldown_s);
            add_number_or_null(pj, "interval_delivered_ms", jp_power_delivered_interval_ms(pm.src));
        }
        cJSON *rows = cJSON_AddArrayToObject(root, "results");
        for (size_t i = 0; i < n_results; i++)
            cJSON_AddItemToArray(rows, result_json(&results[i], pm.src != NULL));
        cJSON_AddItemToObject(root, "not_applicable", not_applicable);
        not_applicable = NULL;
        st = jp_json_write_atomic(o.json_path, root, true, &err);
        cJSON_Delete(root);
        if (st)
            goto fail;
    }
    if (o.csv_path && write_csv(o.csv_path, results, n_results, &err))
        goto fail;
    if (o.plan_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "format", "jplprof-plan-1");
        cJSON_AddStringToObject(root, "model", g->model);
        cJSON_AddStringToObject(root, "device", jp_device_name(o.device));
        cJSON *ops = cJSON_AddObjectToObject(root, "ops");
        for (size_t i = 0; i < n_results; i++) {
            const result *best = NULL;
            for (size_t j = 0; j < n_results; j++)
                if (results[j].op == results[i].op && results[j].pass &&
                    (!best || results[j].median_s < best->median_s))
                    best = &results[j];
            if (best && !cJSON_GetObjectItemCaseSensitive(ops, results[i].op->name))
                cJSON_AddStringToObject(ops, results[i].op->name, best->kernel->name);
        }
        st = jp_json_write_atomic(o.plan_path, root, true, &err);
        cJSON_Delete(root);
        if (st)
            goto fail;
    }
    size_t failed = 0;
    for (size_t i = 0; i < n_results; i++)
        failed += !results[i].pass;
    printf("%zu kernel runs, %zu outside the tolerance", n_results, failed);
    if (n_not_applicable)
        printf(", %zu not applicable", n_not_applicable);
    printf("\n");
    rc = failed ? JP_EXIT_FAILURE : 0;
    goto done;
fail:
    rc = jp_cli_fail("compare", &err);
done:
    jp_power_close(pm.src);
    jp_power_samples_free(&pm.samples);
    cJSON_Delete(not_applicable);
    for (size_t i = 0; i < n_results; i++)
        free(results[i].samples_s);
    free(results);
    free(ref);
    free(host);
    if (scratch)
        b->free(scratch);
    jp_exec_free(&ex);
    jp_cli_model_free(&m);
    return rc;
}
