/* jp_weights.c: parameter binding, synthesis and calibration; see jp_weights.h. */
#include "jp_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jp_exec.h"

static void unbind(jp_graph *g)
{
    for (int i = 0; i < g->n_ops; i++)
        for (int p = 0; p < g->ops[i].n_params; p++)
            g->ops[i].params[p].data = NULL;
}

jp_status jp_weights_load(jp_weights *w, jp_graph *g, const char *path, jp_error *err)
{
    memset(w, 0, sizeof *w);
    if (jp_st_open(path, &w->file, err))
        return err->status;
    w->path = strdup(path);
    if (!w->path) {
        jp_error_set(err, JP_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    size_t bound = 0;
    for (int i = 0; i < g->n_ops; i++) {
        jp_op *op = &g->ops[i];
        for (int p = 0; p < op->n_params; p++) {
            const jp_st_tensor *t;
            if (jp_st_require(&w->file, op->params[p].name, op->params[p].rank, op->params[p].dims, &t, err)) {
                jp_error_prefix(err, "model %s, op %s: ", g->model, op->name);
                goto fail;
            }
            op->params[p].data = t->data;
            bound++;
        }
    }
    /* Shared parameters would be counted twice; the models have none, and a
     * file with more tensors than the model's parameters is refused. */
    if (jp_st_count(&w->file) != bound) {
        for (size_t k = 0; k < jp_st_count(&w->file); k++) {
            const char *name = jp_st_at(&w->file, k)->name;
            bool used = false;
            for (int i = 0; i < g->n_ops && !used; i++)
                for (int p = 0; p < g->ops[i].n_params && !used; p++)
                    used = strcmp(g->ops[i].params[p].name, name) == 0;
            if (!used) {
                jp_error_set(err, JP_ERR_FORMAT, "%s: tensor \"%s\" is not a parameter of %s (weights of another model?)",
                             path, name, g->model);
                goto fail;
            }
        }
    }
    return JP_OK;
fail:
    unbind(g);
    jp_weights_free(w);
    return err->status;
}

/* splitmix64: a small, well-mixed generator; one stream per parameter. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) { return ((splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static void fill_normal(float *out, int64_t n, double std, uint64_t *state)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = uniform01(state), u2 = uniform01(state);
        double r = sqrt(-2.0 * log(u1)) * std;
        out[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n)
            out[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

jp_status jp_weights_synthesize(jp_weights *w, jp_graph *g, uint64_t seed, jp_error *err)
{
    memset(w, 0, sizeof *w);
    w->synthetic = true;
    w->seed = seed;
    const int64_t total = jp_graph_param_numel(g);
    w->synthetic_data = malloc((size_t)(total ? total : 1) * sizeof(float));
    if (!w->synthetic_data)
        return jp_error_set(err, JP_ERR_NOMEM, "synthetic weights of %s: cannot allocate %lld floats", g->model,
                            (long long)total);
    float *next = w->synthetic_data;
    for (int i = 0; i < g->n_ops; i++) {
        jp_op *op = &g->ops[i];
        for (int p = 0; p < op->n_params; p++) {
            jp_param *prm = &op->params[p];
            int64_t n = jp_param_numel(prm);
            uint64_t state = seed ^ hash_name(prm->name);
            if ((op->type == JP_OP_CONV2D || op->type == JP_OP_LINEAR) && p == JP_PARAM_WEIGHT) {
                int64_t fan_in = n / prm->dims[0];
                fill_normal(next, n, sqrt(2.0 / (double)fan_in), &state);
            } else {
                /* biases, beta, running mean: 0; gamma, running variance, a layer
                 * norm's weight, a layer scale: 1 */
                float v = (op->type == JP_OP_BATCH_NORM2D && (p == JP_PARAM_WEIGHT || p == JP_PARAM_VAR)) ? 1.0f : 0.0f;
                if ((op->type == JP_OP_LAYER_NORM || op->type == JP_OP_LAYER_SCALE) && p == JP_PARAM_WEIGHT)
                    v = 1.0f;
                for (int64_t k = 0; k < n; k++)
                    next[k] = v;
            }
            prm->data = next;
            next += n;
        }
    }
    return JP_OK;
}

/* Calibration's before_step: a batch norm's running statistics from the
 * input the pass gives it, then the step's kernel prepared (on the
 * calibrated parameters). */
static jp_status calibrate_before_step(void *ctx, int s, jp_error *err)
{
    jp_exec *ex = ctx;
    const jp_op *op = ex->steps[s].step.op;
    if (op->type == JP_OP_BATCH_NORM2D) {
        const jp_tensor *x = &ex->steps[s].step.in[0]; /* [n, c, h, w] on the CPU */
        int64_t n = x->dims[0], c = x->dims[1], hw = x->dims[2] * x->dims[3];
        /* The parameters are ours (synthetic_data), so writing is safe. */
        float *mean = (float *)op->params[JP_PARAM_MEAN].data;
        float *var = (float *)op->params[JP_PARAM_VAR].data;
        for (int64_t ch = 0; ch < c; ch++) {
            double sum = 0, sq = 0;
            for (int64_t b = 0; b < n; b++) {
                const float *p = x->data + (b * c + ch) * hw;
                for (int64_t k = 0; k < hw; k++)
                    sum += p[k], sq += (double)p[k] * p[k];
            }
            double cnt = (double)(n * hw);
            double m = sum / cnt;
            double v = sq / cnt - m * m;
            mean[ch] = (float)m;
            /* A constant channel (variance 0, e.g. all-zero after ReLU)
             * keeps variance 1 rather than amplifying rounding noise. */
            var[ch] = v > 1e-6 ? (float)v : 1.0f;
        }
    }
    return jp_exec_prepare_step(ex, s, err);
}

static jp_status calibrate_after_step(void *ctx, int s, jp_error *err)
{
    (void)err;
    jp_exec_release_step(ctx, s);
    return JP_OK;
}

jp_status jp_weights_calibrate(jp_weights *w, jp_graph *g, const float *input, jp_error *err)
{
    if (!w->synthetic)
        return jp_error_set(err, JP_ERR_INTERNAL, "calibration applies to synthetic weights only");
    /* Only batch norms have statistics to set: the pass stops after the
     * last one, and a model without any (ConvNeXt) needs none (it cost
     * convnext_large 24 MiB of peak RSS, and VGG-BN's classifier, run for
     * nothing, 392 MiB for the copy of fc6 beside its original). */
    bool any_bn = false;
    for (int i = 0; i < g->n_ops && !any_bn; i++)
        any_bn = g->ops[i].type == JP_OP_BATCH_NORM2D;
    if (!any_bn)
        return JP_OK;
    jp_exec ex;
    /* One pass, one step prepared at a time, the values sharing the arena by
     * lifetime: the kernels' prepared copies of the whole model, or every
     * op's output, would otherwise sit beside the weights (issue 16: each was
     * in turn the peak RSS of every run with synthetic weights; the outputs
     * were 37 MB of squeezenet1_0's 56). */
    jp_exec_options opt = {.device = JP_DEVICE_CPU, .fuse = false, .defer_prepare = true,
                           .share_layer_outputs = true};
    if (jp_exec_build(&ex, g, &opt, err))
        return jp_error_prefix(err, "calibrating synthetic weights: ");
    const jp_exec_hooks hooks = {.ctx = &ex, .before_step = calibrate_before_step,
                                 .after_step = calibrate_after_step};
    int last_bn = -1; /* the step of the last batch norm (unfused: each op a step) */
    for (int s = 0; s < ex.n_steps; s++)
        if (ex.steps[s].step.op->type == JP_OP_BATCH_NORM2D)
            last_bn = s;
    jp_status st = jp_exec_set_input(&ex, input, err);
    if (st == JP_OK)
        st = jp_exec_forward_to(&ex, &hooks, last_bn, err);
    jp_exec_free(&ex);
    return st;
}

size_t jp_weights_give_back(const void *data, size_t bytes)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)data + page - 1) & ~(page - 1);
    const uintptr_t hi = ((uintptr_t)data + bytes) & ~(page - 1);
    return hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0 ? hi - lo : 0;
}

void jp_weights_free(jp_weights *w)
{
    if (!w)
        return;
    jp_st_close(&w->file);
    free(w->path);
    free(w->synthetic_data);
    memset(w, 0, sizeof *w);
}
