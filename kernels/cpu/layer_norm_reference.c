/*
 * layer_norm_reference.c: cpu/layer_norm/reference and cpu/layer_norm/fast,
 * torch.nn.LayerNorm over one dimension (features elements):
 *   y = (x - mean) / sqrt(var + eps) * weight + bias, var the biased variance,
 * over dimension `dim` of in[0] viewed as [outer, features, inner]: inner == 1
 * for nn.LayerNorm over the last dimension (ConvNeXt's blocks, later the
 * tokens of a transformer), inner = h * w for ConvNeXt's LayerNorm2d over the
 * channels of [n, c, h, w].
 *
 * reference: two passes in double, one group at a time.
 * fast: in float, vectorised along what is contiguous: a row's features when
 * inner == 1 (sum, then the sum of squared deviations), JP_VLEN pixels at a
 * time over the features otherwise; groups split over the OpenMP team.
 */
#include "cpu_internal.h"
#include "cpu_simd.h"

static bool ln_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_LAYER_NORM && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) && op->n_params == 2 &&
           op->params[JP_PARAM_WEIGHT].data && op->params[JP_PARAM_BIAS].data &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

/* in[0] as [outer, features, inner]. */
static void ln_view(const jp_step *step, int64_t *outer, int64_t *inner)
{
    const jp_tensor *x = &step->in[0];
    *outer = *inner = 1;
    for (int d = 0; d < x->rank; d++) {
        if (d < step->op->attrs.layer_norm.dim)
            *outer *= x->dims[d];
        else if (d > step->op->attrs.layer_norm.dim)
            *inner *= x->dims[d];
    }
}

static jp_status ln_ref_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    const jp_layer_norm_attrs *a = &step->op->attrs.layer_norm;
    const float *g = step->op->params[JP_PARAM_WEIGHT].data, *b = step->op->params[JP_PARAM_BIAS].data;
    const float *x = step->in[0].data;
    float *y = step->out.data;
    int64_t outer, inner;
    ln_view(step, &outer, &inner);
    const int64_t f = a->features;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xg = x + o * f * inner + i;
            float *yg = y + o * f * inner + i;
            double mean = 0.0, var = 0.0;
            for (int64_t c = 0; c < f; c++)
                mean += xg[c * inner];
            mean /= (double)f;
            for (int64_t c = 0; c < f; c++)
                var += (xg[c * inner] - mean) * (xg[c * inner] - mean);
            const double rstd = 1.0 / sqrt(var / (double)f + a->eps);
            for (int64_t c = 0; c < f; c++)
                yg[c * inner] = (float)((xg[c * inner] - mean) * rstd * g[c] + b[c]);
        }
    return JP_OK;
}

/* One row of f contiguous features. */
static void ln_row(float *y, const float *x, int64_t f, const float *g, const float *b, float eps)
{
    jp_vf acc = jp_v_zero();
    int64_t c = 0;
    for (; c + JP_VLEN <= f; c += JP_VLEN)
        acc = jp_v_add(acc, jp_v_load(x + c));
    float sum = jp_v_hsum(acc);
    for (; c < f; c++)
        sum += x[c];
    const float mean = sum / (float)f;
    const jp_vf vm = jp_v_set1(mean);
    acc = jp_v_zero();
    for (c = 0; c + JP_VLEN <= f; c += JP_VLEN) {
        const jp_vf d = jp_v_sub(jp_v_load(x + c), vm);
        acc = jp_v_fma(d, d, acc);
    }
    float ss = jp_v_hsum(acc);
    for (; c < f; c++)
        ss += (x[c] - mean) * (x[c] - mean);
    const float rstd = 1.0f / sqrtf(ss / (float)f + eps);
    const jp_vf vr = jp_v_set1(rstd);
    for (c = 0; c + JP_VLEN <= f; c += JP_VLEN) {
        const jp_vf n = jp_v_mul(jp_v_sub(jp_v_load(x + c), vm), vr);
        jp_v_store(y + c, jp_v_fma(n, jp_v_load(g + c), jp_v_load(b + c)));
    }
    for (; c < f; c++)
        y[c] = (x[c] - mean) * rstd * g[c] + b[c];
}

/* Up to JP_VLEN pixels [i0, i0 + cnt) of one [f, inner] group, features
 * strided by inner: the pixels are the vector lanes. */
static void ln_pixels(float *y, const float *x, int64_t f, int64_t inner, int64_t i0, int cnt, const float *g,
                      const float *b, float eps)
{
    jp_vf sum = jp_v_zero();
    for (int64_t c = 0; c < f; c++)
        sum = jp_v_add(sum, jp_v_load_range(x + c * inner + i0, 0, cnt));
    const jp_vf mean = jp_v_mul(sum, jp_v_set1(1.0f / (float)f));
    jp_vf ss = jp_v_zero();
    for (int64_t c = 0; c < f; c++) {
        const jp_vf d = jp_v_sub(jp_v_load_range(x + c * inner + i0, 0, cnt), mean);
        ss = jp_v_fma(d, d, ss);
    }
    float lanes[JP_VLEN];
    jp_v_store(lanes, ss);
    for (int l = 0; l < JP_VLEN; l++)
        lanes[l] = 1.0f / sqrtf(lanes[l] / (float)f + eps);
    const jp_vf rstd = jp_v_load(lanes);
    for (int64_t c = 0; c < f; c++) {
        const jp_vf n = jp_v_mul(jp_v_sub(jp_v_load_range(x + c * inner + i0, 0, cnt), mean), rstd);
        jp_v_store_n(y + c * inner + i0, jp_v_fma(n, jp_v_set1(g[c]), jp_v_set1(b[c])), cnt);
    }
}

static jp_status ln_fast_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    const jp_layer_norm_attrs *a = &step->op->attrs.layer_norm;
    const float *g = step->op->params[JP_PARAM_WEIGHT].data, *b = step->op->params[JP_PARAM_BIAS].data;
    const float *x = step->in[0].data;
    float *y = step->out.data;
    int64_t outer, inner;
    ln_view(step, &outer, &inner);
    const int64_t f = a->features, total = outer * f * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (total >= JP_CPU_PARALLEL_MIN_ELEMS)
        for (int64_t o = 0; o < outer; o++)
            ln_row(y + o * f, x + o * f, f, g, b, a->eps);
        return JP_OK;
    }
    const int64_t blocks = (inner + JP_VLEN - 1) / JP_VLEN;
#pragma omp parallel for collapse(2) schedule(static) if (total >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < blocks; k++) {
            const int64_t i0 = k * JP_VLEN;
            const int cnt = (int)(inner - i0 < JP_VLEN ? inner - i0 : JP_VLEN);
            ln_pixels(y + o * f * inner, x + o * f * inner, f, inner, i0, cnt, g, b, a->eps);
        }
    return JP_OK;
}

const jp_kernel jp_cpu_layer_norm_reference = {
    .name = "cpu/layer_norm/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LAYER_NORM,
    .is_reference = true,
    .priority = 0,
    .supports = ln_supports,
    .run = ln_ref_run,
};

const jp_kernel jp_cpu_layer_norm_fast = {
    .name = "cpu/layer_norm/fast",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LAYER_NORM,
    .is_reference = false,
    .priority = 10,
    .supports = ln_supports,
    .run = ln_fast_run,
};
