/* cli_common.c: helpers shared by the subcommands; see cli.h. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jp_image.h"
#include "jp_kernel.h"
#include "jp_safetensors.h"

#include <cJSON.h>

void jp_cli_normalize_options(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return;
        if (a[0] != '-' || a[1] != '-')
            continue;
        for (char *p = a + 2; *p && *p != '='; p++)
            if (*p == '_')
                *p = '-';
    }
}

int jp_cli_fail(const char *cmd, const jp_error *err)
{
    fprintf(stderr, "jplprof %s: %s\n", cmd, err->msg);
    return err->status == JP_ERR_ARG ? JP_EXIT_USAGE : JP_EXIT_FAILURE;
}

jp_status jp_cli_getopt_error(const char *cmd, int c, char **argv, jp_error *err)
{
    if (c == ':')
        return jp_error_set(err, JP_ERR_ARG, "option \"%s\" needs a value (see jplprof %s --help)", argv[optind - 1],
                            cmd);
    return jp_error_set(err, JP_ERR_ARG, "unknown option \"%s\" (see jplprof %s --help)", argv[optind - 1], cmd);
}

jp_status jp_cli_no_operands(const char *cmd, int argc, char **argv, jp_error *err)
{
    if (optind >= argc)
        return JP_OK;
    return jp_error_set(err, JP_ERR_ARG, "unexpected argument \"%s\" (see jplprof %s --help)", argv[optind], cmd);
}

jp_status jp_cli_parse_int(const char *option, const char *text, long lo, long hi, long *out, jp_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi)
        return jp_error_set(err, JP_ERR_ARG, "%s \"%s\": expected an integer from %ld to %ld", option, text, lo, hi);
    *out = v;
    return JP_OK;
}

jp_status jp_cli_parse_double(const char *option, const char *text, double lo, double hi, double *out,
                              jp_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return jp_error_set(err, JP_ERR_ARG, "%s \"%s\": expected a number from %g to %g", option, text, lo, hi);
    *out = v;
    return JP_OK;
}

const char *jp_cli_root(void)
{
    static char root[PATH_MAX];
    if (root[0])
        return root;
    const char *env = getenv("JPLPROF_ROOT");
    if (env && *env) {
        snprintf(root, sizeof root, "%s", env);
        return root;
    }
    env = getenv("JPLPROF_DATA"); /* the name `make install` documents */
    if (env && *env) {
        snprintf(root, sizeof root, "%s", env);
        return root;
    }
    if (access("AvailableModel.txt", R_OK) == 0) {
        snprintf(root, sizeof root, ".");
        return root;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *bin = dirname(exe);
        char probe[PATH_MAX + 64];
        /* installed: <prefix>/bin/jplprof with <prefix>/share/jplprof/AvailableModel.txt */
        snprintf(probe, sizeof probe, "%s/../share/jplprof/AvailableModel.txt", bin);
        if (access(probe, R_OK) == 0)
            snprintf(root, sizeof root, "%s/../share/jplprof", bin);
        else
            snprintf(root, sizeof root, "%s", bin);
    } else {
        snprintf(root, sizeof root, ".");
    }
    return root;
}

char *jp_cli_path(char *buf, size_t buf_bytes, const char *relative)
{
    const char *root = jp_cli_root();
    if (strcmp(root, ".") == 0)
        snprintf(buf, buf_bytes, "%s", relative);
    else
        snprintf(buf, buf_bytes, "%s/%s", root, relative);
    return buf;
}

jp_status jp_cli_read_models(char ***names, int *n, jp_error *err)
{
    char path[PATH_MAX];
    jp_cli_path(path, sizeof path, "AvailableModel.txt");
    *names = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return jp_error_set(err, JP_ERR_MISSING, "%s: cannot open: %s (set JPLPROF_ROOT to the jplprof folder)", path,
                            strerror(errno));
    char line[256];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*names, (size_t)cap * sizeof *grown);
            if (!grown) {
                fclose(f);
                jp_cli_free_models(*names, *n);
                return jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
            }
            *names = grown;
        }
        (*names)[(*n)++] = strdup(s);
    }
    fclose(f);
    return JP_OK;
}

void jp_cli_free_models(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

jp_status jp_cli_check_model(const char *name, jp_error *err)
{
    char **names;
    int n;
    if (jp_cli_read_models(&names, &n, err))
        return err->status;
    char list[1024] = "";
    bool found = false;
    for (int i = 0; i < n; i++) {
        found |= strcmp(names[i], name) == 0;
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
    }
    jp_cli_free_models(names, n);
    if (!found)
        return jp_error_set(err, JP_ERR_ARG, "unknown model \"%s\"; available: %s", name, list);
    return JP_OK;
}

long jp_cli_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

jp_status jp_cli_parse_granularity(const char *text, bool *op_level, jp_error *err)
{
    if (strcmp(text, "op") == 0)
        *op_level = true;
    else if (strcmp(text, "layer") == 0)
        *op_level = false;
    else
        return jp_error_set(err, JP_ERR_ARG, "--granularity \"%s\": expected layer or op", text);
    return JP_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double jp_cli_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

jp_status jp_cli_parse_device(const char *text, jp_device *device, jp_error *err)
{
    if (strcmp(text, "cpu") == 0)
        *device = JP_DEVICE_CPU;
    else if (strcmp(text, "cuda") == 0 || strcmp(text, "gpu") == 0)
        *device = JP_DEVICE_CUDA;
    else
        return jp_error_set(err, JP_ERR_ARG, "--device \"%s\": expected cpu or cuda", text);
    return JP_OK;
}

jp_status jp_cli_init_device(jp_device device, int threads, jp_error *err)
{
    const jp_backend *cpu = jp_backend_get(JP_DEVICE_CPU);
    if (cpu->set_threads && cpu->set_threads(threads, err))
        return err->status;
    if (device == JP_DEVICE_CPU)
        return cpu->init ? cpu->init(err) : JP_OK;
    const jp_backend *b;
    if (jp_backend_open(device, &b, err))
        return err->status;
    return b->init ? b->init(err) : JP_OK;
}

/* Reads "input" [1, 3, h, w] from a safetensors file into a malloc'ed buffer. */
static jp_status load_input_tensor(const char *path, float **out, int *h, int *w, jp_error *err)
{
    jp_st_file f;
    if (jp_st_open(path, &f, err))
        return err->status;
    jp_status st = JP_OK;
    const jp_st_tensor *t = jp_st_find(&f, "input");
    if (!t) {
        st = jp_error_set(err, JP_ERR_MISSING, "%s: no tensor named \"input\" (expected float32 [1, 3, H, W])", path);
    } else if (t->rank != 4 || t->dims[0] != 1 || t->dims[1] != 3 || t->dims[2] < 1 || t->dims[3] < 1) {
        char s[96];
        st = jp_error_set(err, JP_ERR_SHAPE, "%s: tensor \"input\" has shape %s, expected [1, 3, H, W]", path,
                          jp_shape_str(t->rank, t->dims, s, sizeof s));
    } else {
        *out = malloc(t->size_bytes);
        if (!*out)
            st = jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
        else {
            memcpy(*out, t->data, t->size_bytes);
            *h = (int)t->dims[2];
            *w = (int)t->dims[3];
        }
    }
    jp_st_close(&f);
    return st;
}

/* A deterministic stand-in input when neither an image nor a tensor is given:
 * uniform noise in roughly the range of a normalised photo. */
static void synthetic_input(float *x, size_t n)
{
    uint64_t s = 0x6a09e667f3bcc909ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(s >> 40) / (float)(1 << 24)) * 4.0f - 2.0f;
    }
}

jp_status jp_cli_model_load(jp_cli_model *m, const jp_cli_model_options *opt, jp_error *err)
{
    memset(m, 0, sizeof *m);
    if (jp_cli_check_model(opt->model, err))
        return err->status;
    char json[PATH_MAX], rel[PATH_MAX];
    snprintf(rel, sizeof rel, "weights/%s.json", opt->model);
    jp_cli_path(json, sizeof json, rel);
    if (jp_graph_load(json, &m->graph, err))
        return err->status;

    int h = (int)m->graph.input_dims[2], w = (int)m->graph.input_dims[3];
    if (opt->input_tensor) {
        if (load_input_tensor(opt->input_tensor, &m->input, &h, &w, err))
            goto fail;
        snprintf(m->input_desc, sizeof m->input_desc, "tensor %s", opt->input_tensor);
    } else if (opt->image) {
        h = w = m->graph.preprocess.crop;
        m->input = malloc((size_t)3 * h * w * sizeof(float));
        if (!m->input) {
            jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (jp_image_load(opt->image, &m->graph.preprocess, m->input, err))
            goto fail;
        snprintf(m->input_desc, sizeof m->input_desc, "image %s", opt->image);
    } else {
        m->input = malloc((size_t)3 * h * w * sizeof(float));
        if (!m->input) {
            jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        synthetic_input(m->input, (size_t)3 * h * w);
        snprintf(m->input_desc, sizeof m->input_desc, "synthetic input");
    }
    if (h < m->graph.min_input_hw || w < m->graph.min_input_hw) {
        jp_error_set(err, JP_ERR_SHAPE, "%s: input %dx%d is smaller than %s's minimum %dx%d", m->input_desc + 0, h, w,
                     opt->model, m->graph.min_input_hw, m->graph.min_input_hw);
        goto fail;
    }
    if (jp_graph_infer_shapes(&m->graph, 1, h, w, err))
        goto fail;

    char weights[PATH_MAX];
    const char *wpath = opt->weights_path;
    if (!wpath && !opt->synthetic) {
        snprintf(rel, sizeof rel, "weights/%s.safetensors", opt->model);
        jp_cli_path(weights, sizeof weights, rel);
        if (access(weights, F_OK) == 0)
            wpath = weights;
    }
    if (wpath) {
        if (jp_weights_load(&m->weights, &m->graph, wpath, err))
            goto fail;
    } else {
        if (jp_weights_synthesize(&m->weights, &m->graph, opt->seed, err) ||
            jp_weights_calibrate(&m->weights, &m->graph, m->input, err))
            goto fail;
        if (!opt->quiet && opt->synthetic)
            fprintf(stderr,
                    "jplprof: using SYNTHETIC weights for %s (--synthetic, seed %llu). Latency and power are "
                    "representative; class predictions are not.\n",
                    opt->model, (unsigned long long)opt->seed);
        else if (!opt->quiet)
            fprintf(stderr,
                    "jplprof: no converted weights for %s (%s): using SYNTHETIC weights (seed %llu). Latency and power "
                    "are representative; class predictions are not. Convert real weights with "
                    "tools/convert_weights/convert_weights.py.\n",
                    opt->model, weights, (unsigned long long)opt->seed);
    }
    return JP_OK;
fail:
    jp_cli_model_free(m);
    return err->status;
}

void jp_cli_model_free(jp_cli_model *m)
{
    jp_weights_free(&m->weights);
    jp_graph_free(&m->graph);
    free(m->input);
    memset(m, 0, sizeof *m);
}

jp_status jp_cli_plan_load(const char *path, const jp_graph *graph, jp_device device, jp_cli_plan *plan,
                           jp_error *err)
{
    memset(plan, 0, sizeof *plan);
    FILE *f = fopen(path, "rb");
    if (!f)
        return jp_error_set(err, errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO, "--plan %s: cannot open: %s", path,
                            strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[8192];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(f);
    if (!mem || fclose(mem) != 0) {
        free(text);
        return jp_error_set(err, JP_ERR_NOMEM, "--plan %s: out of memory", path);
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    jp_status st = JP_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(root, "ops");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "jplprof-plan-1") != 0 ||
        !cJSON_IsString(model) || !cJSON_IsString(dev) || !cJSON_IsObject(ops)) {
        st = jp_error_set(err, JP_ERR_FORMAT,
                          "--plan %s: not a jplprof plan (expected {\"format\": \"jplprof-plan-1\", \"model\", "
                          "\"device\", \"ops\"}, as jplprof compare --plan writes)",
                          path);
        goto done;
    }
    if (strcmp(model->valuestring, graph->model) != 0 || strcmp(dev->valuestring, jp_device_name(device)) != 0) {
        st = jp_error_set(err, JP_ERR_ARG, "--plan %s: a plan for %s on %s, not for %s on %s", path, model->valuestring,
                          dev->valuestring, graph->model, jp_device_name(device));
        goto done;
    }
    plan->path = strdup(path);
    int count = cJSON_GetArraySize(ops);
    plan->op_names = calloc((size_t)count + 1, sizeof *plan->op_names);
    plan->kernel_names = calloc((size_t)count + 1, sizeof *plan->kernel_names);
    if (!plan->path || !plan->op_names || !plan->kernel_names) {
        st = jp_error_set(err, JP_ERR_NOMEM, "--plan %s: out of memory", path);
        goto done;
    }
    for (const cJSON *e = ops->child; e; e = e->next) {
        const jp_op *op = NULL;
        for (int i = 0; i < graph->n_ops && !op; i++)
            if (strcmp(graph->ops[i].name, e->string) == 0)
                op = &graph->ops[i];
        const jp_kernel *k = cJSON_IsString(e) ? jp_kernel_find(e->valuestring) : NULL;
        if (!op) {
            st = jp_error_set(err, JP_ERR_FORMAT, "--plan %s: ops.%s: %s has no such op", path, e->string,
                              graph->model);
            goto done;
        }
        if (!k || k->device != device || k->op_type != op->type) {
            st = jp_error_set(err, JP_ERR_FORMAT, "--plan %s: ops.%s: \"%s\" is not a %s kernel of this build for %s",
                              path, e->string, cJSON_IsString(e) ? e->valuestring : "?", jp_device_name(device),
                              jp_op_type_name(op->type));
            goto done;
        }
        plan->op_names[plan->n] = strdup(e->string);
        plan->kernel_names[plan->n] = strdup(e->valuestring);
        plan->n++;
    }
done:
    cJSON_Delete(root);
    if (st)
        jp_cli_plan_free(plan);
    return st;
}

void jp_cli_plan_free(jp_cli_plan *plan)
{
    for (int i = 0; i < plan->n; i++) {
        free(plan->op_names[i]);
        free(plan->kernel_names[i]);
    }
    free(plan->op_names);
    free(plan->kernel_names);
    free(plan->path);
    memset(plan, 0, sizeof *plan);
}

const char *jp_cli_plan_kernel(void *ctx, const jp_op *op)
{
    const jp_cli_plan *plan = ctx;
    for (int i = 0; plan && i < plan->n; i++)
        if (strcmp(plan->op_names[i], op->name) == 0)
            return plan->kernel_names[i];
    return NULL;
}

jp_status jp_cli_power_open(const jp_cli_power_options *o, jp_device device, jp_power_source **src,
                            jp_rail_choice *rail, jp_error *err)
{
    jp_power_options po;
    jp_power_options_init(&po);
    po.kind = o->kind;
    po.interval_ms = (int)o->interval_ms;
    po.tegrastats_program = o->tegrastats;
    po.root_dir = getenv("JPLPROF_SYSFS_ROOT");
    po.on_tried = o->on_tried;
    po.on_tried_ctx = o->on_tried_ctx;
    *src = NULL;
    if (jp_power_open(&po, src, err) || jp_power_start(*src, err)) {
        jp_error_prefix(err, "--eval_tgr: ");
        goto fail;
    }
    if (jp_power_source_kind(*src) == JP_POWER_NONE) {
        jp_error_set(err, JP_ERR_ARG,
                     "--eval_tgr with --power-source none: no power to measure (drop --eval_tgr, or pick a "
                     "source: tegrastats, ina3221, nvml, rapl)");
        goto fail;
    }
    if (jp_power_choose_device_rail(*src, jp_device_name(device), o->rail, rail, err))
        goto fail;
    return JP_OK;
fail:
    jp_power_close(*src);
    *src = NULL;
    return err->status;
}
