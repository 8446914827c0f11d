/*
 * cpu_common.c: allocation, epilogues, step validation and batch-norm folding
 * shared by the CPU kernels (see cpu_internal.h).
 */
#include "cpu_internal.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "cpu_simd.h"

/* Blocks of this size and more start on a 2 MiB boundary, and the whole
 * 2 MiB pages inside them are offered to the kernel as transparent huge
 * pages (where THP is "madvise", the Debian default, nothing is huge unless
 * asked for); the tail past the last whole one stays on 4 KiB pages.  Every
 * block of 1 MiB or more used to be rounded up to whole huge pages, all of
 * them resident: issue 16's peak RSS, googlenet 104.3 -> 75.7 MiB without
 * that (resnet50 226.6 -> 199.9). */
#define HUGE_BYTES ((size_t)2 << 20)

void *jp_cpu_alloc(size_t bytes)
{
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_BYTES)
        return NULL;
    const size_t size = (bytes + 63) & ~(size_t)63;
    if (size < HUGE_BYTES)
        return aligned_alloc(64, size); /* a size that is a multiple of the alignment */
    void *p = NULL;
    if (posix_memalign(&p, HUGE_BYTES, size) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, size & ~(HUGE_BYTES - 1), MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
    return p;
}

void jp_cpu_free(void *ptr) { free(ptr); }

/* y[i] = act(x[i] * scale + shift), vectors then one masked tail; y may be
 * x.  ACT is a constant after inlining, so each instantiation has its
 * activation inside the loop and no branch. */
JP_ALWAYS_INLINE void affine_act(float *y, const float *x, int64_t n, float scale, float shift,
                                 const jp_activation ACT)
{
    const jp_vf s = jp_v_set1(scale), t = jp_v_set1(shift);
    int64_t i = 0;
    for (; i + JP_VLEN <= n; i += JP_VLEN)
        jp_v_store(y + i, jp_v_act(jp_v_fma(jp_v_load(x + i), s, t), ACT));
    if (i < n) {
        const int rest = (int)(n - i);
        jp_v_store_n(y + i, jp_v_act(jp_v_fma(jp_v_load_range(x + i, 0, rest), s, t), ACT), rest);
    }
}

void jp_cpu_scale_shift_act(float *y, const float *x, int64_t n, float scale, float shift,
                            jp_activation act)
{
    switch (act) {
#define AFFINE_ACT_(name)                                                                                     \
    case JP_ACT_##name: affine_act(y, x, n, scale, shift, JP_ACT_##name); break;
        JP_ACTIVATIONS(AFFINE_ACT_)
#undef AFFINE_ACT_
    case JP_ACT_NONE:
    case JP_ACT_COUNT: affine_act(y, x, n, scale, shift, JP_ACT_NONE); break;
    }
}

JP_ALWAYS_INLINE void bias_vec_act(float *y, const float *bias, int64_t n, const jp_activation ACT)
{
    int64_t i = 0;
    for (; i + JP_VLEN <= n; i += JP_VLEN)
        jp_v_store(y + i, jp_v_act(jp_v_add(jp_v_load(y + i), bias ? jp_v_load(bias + i) : jp_v_zero()), ACT));
    if (i < n) {
        const int rest = (int)(n - i);
        const jp_vf b = bias ? jp_v_load_range(bias + i, 0, rest) : jp_v_zero();
        jp_v_store_n(y + i, jp_v_act(jp_v_add(jp_v_load_range(y + i, 0, rest), b), ACT), rest);
    }
}

void jp_cpu_bias_vec_act(float *y, const float *bias, int64_t n, jp_activation act)
{
    switch (act) {
#define BIAS_VEC_ACT_(name)                                                                                   \
    case JP_ACT_##name: bias_vec_act(y, bias, n, JP_ACT_##name); break;
        JP_ACTIVATIONS(BIAS_VEC_ACT_)
#undef BIAS_VEC_ACT_
    case JP_ACT_NONE:
    case JP_ACT_COUNT: bias_vec_act(y, bias, n, JP_ACT_NONE); break;
    }
}

JP_ALWAYS_INLINE void bias_res_act(float *y, const float *res, int64_t n, float bias,
                                   const jp_activation ACT)
{
    const jp_vf b = jp_v_set1(bias);
    int64_t i = 0;
    for (; i + JP_VLEN <= n; i += JP_VLEN)
        jp_v_store(y + i, jp_v_act(jp_v_add(jp_v_add(jp_v_load(y + i), b), jp_v_load(res + i)), ACT));
    if (i < n) {
        const int rest = (int)(n - i);
        const jp_vf t = jp_v_add(jp_v_add(jp_v_load_range(y + i, 0, rest), b),
                                 jp_v_load_range(res + i, 0, rest));
        jp_v_store_n(y + i, jp_v_act(t, ACT), rest);
    }
}

void jp_cpu_bias_res_act(float *y, const float *res, int64_t n, float bias, jp_activation act)
{
    if (!res) {
        jp_cpu_bias_act(y, n, bias, act);
        return;
    }
    switch (act) {
#define BIAS_RES_ACT_(name)                                                                                   \
    case JP_ACT_##name: bias_res_act(y, res, n, bias, JP_ACT_##name); break;
        JP_ACTIVATIONS(BIAS_RES_ACT_)
#undef BIAS_RES_ACT_
    case JP_ACT_NONE:
    case JP_ACT_COUNT: bias_res_act(y, res, n, bias, JP_ACT_NONE); break;
    }
}

void jp_cpu_bias_act(float *y, int64_t n, float bias, jp_activation act)
{
    if (act == JP_ACT_NONE && bias == 0.0f)
        return;
    /* x * 1 + bias is x + bias exactly (one rounding either way). */
    jp_cpu_scale_shift_act(y, y, n, 1.0f, bias, act);
}

/* Elements per OpenMP chunk of the elementwise maps: 64 KiB of floats, a
 * multiple of every vector width, so that chunks start aligned. */
#define MAP_CHUNK 16384

void jp_cpu_act_map(float *y, const float *x, int64_t n, jp_activation act)
{
    if (act == JP_ACT_NONE) {
        if (y != x)
            memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    const int64_t chunks = (n + MAP_CHUNK - 1) / MAP_CHUNK;
#pragma omp parallel for schedule(static) if (n >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t i0 = k * MAP_CHUNK;
        const int64_t cnt = n - i0 < MAP_CHUNK ? n - i0 : MAP_CHUNK;
        jp_cpu_scale_shift_act(y + i0, x + i0, cnt, 1.0f, 0.0f, act);
    }
}

void jp_cpu_split_row2(float *restrict dst0, float *restrict dst1, const float *restrict src,
                       int64_t len, int64_t ix0, int64_t count)
{
    int64_t j = 0;
    for (; j < count && ix0 + 2 * j < 0; j++) { /* the left padding */
        const int64_t i1 = ix0 + 2 * j + 1;
        dst0[j] = 0.0f;
        dst1[j] = i1 >= 0 && i1 < len ? src[i1] : 0.0f;
    }
    /* Whole vectors of both phases from one pair of loads, while the
     * 2 * JP_VLEN floats they read lie in the row. */
    for (; j + JP_VLEN <= count && ix0 + 2 * (j + JP_VLEN) <= len; j += JP_VLEN) {
        const float *row = src + (ix0 + 2 * j);
        jp_vf even, odd;
        jp_v_deinterleave2(jp_v_load(row), jp_v_load(row + JP_VLEN), &even, &odd);
        jp_v_store(dst0 + j, even);
        jp_v_store(dst1 + j, odd);
    }
    for (; j < count; j++) { /* the right end and padding (ix0 + 2j >= 0 here) */
        const int64_t i0 = ix0 + 2 * j;
        dst0[j] = i0 < len ? src[i0] : 0.0f;
        dst1[j] = i0 + 1 < len ? src[i0 + 1] : 0.0f;
    }
}

void jp_cpu_gather_row(float *restrict dst, const float *restrict src, int64_t len, int64_t ix0,
                       int stride, int64_t count)
{
    /* Valid j: 0 <= ix0 + j*stride <= len - 1 (strides 1 and 2 without a
     * division: this runs once per row and phase, rows of 28 to 112). */
    int64_t j_lo, j_hi;
    if (stride == 1) {
        j_lo = ix0 < 0 ? -ix0 : 0;
        j_hi = ix0 <= len - 1 ? len - ix0 : 0;
    } else if (stride == 2) {
        j_lo = ix0 < 0 ? (1 - ix0) >> 1 : 0;
        j_hi = ix0 <= len - 1 ? ((len - 1 - ix0) >> 1) + 1 : 0;
    } else {
        j_lo = ix0 < 0 ? (-ix0 + stride - 1) / stride : 0;
        j_hi = ix0 <= len - 1 ? (len - 1 - ix0) / stride + 1 : 0;
    }
    if (j_lo > count)
        j_lo = count;
    if (j_hi > count)
        j_hi = count;
    if (j_hi < j_lo)
        j_hi = j_lo;
    for (int64_t j = 0; j < j_lo; j++)
        dst[j] = 0.0f;
    int64_t j = j_lo;
    if (stride == 1) {
#if JP_VLEN > 1
        for (; j + JP_VLEN <= j_hi; j += JP_VLEN)
            jp_v_store(dst + j, jp_v_load(src + (ix0 + j)));
        if (j < j_hi) {
            const int n = (int)(j_hi - j);
            jp_v_store_n(dst + j, jp_v_load_range(src + (ix0 + j), 0, n), n);
            j = j_hi;
        }
#else
        memcpy(dst + j, src + (ix0 + j), (size_t)(j_hi - j) * sizeof(float));
        j = j_hi;
#endif
    }
#if JP_VLEN > 1
    else if (stride == 2) {
        /* Whole vectors while the 2 * JP_VLEN floats they read lie in the
         * row: plain loads and stores (the masked ones below cost more than
         * the shuffle: half of a grouped stride-2 convolution's time). */
        for (; j + JP_VLEN <= j_hi && ix0 + 2 * (j + JP_VLEN) <= len; j += JP_VLEN) {
            jp_vf even, odd;
            const float *row = src + (ix0 + 2 * j);
            jp_v_deinterleave2(jp_v_load(row), jp_v_load(row + JP_VLEN), &even, &odd);
            jp_v_store(dst + j, even);
        }
        for (; j < j_hi; j += JP_VLEN) {
            /* Up to JP_VLEN outputs read 2*cnt - 1 floats from src + ix0 + 2j. */
            const int cnt = j_hi - j < JP_VLEN ? (int)(j_hi - j) : JP_VLEN;
            const int need = 2 * cnt - 1;
            const float *row = src + (ix0 + 2 * j);
            jp_vf even, odd;
            jp_v_deinterleave2(jp_v_load_range(row, 0, need),
                               jp_v_load_range(row + JP_VLEN, 0, need - JP_VLEN), &even, &odd);
            jp_v_store_n(dst + j, even, cnt);
        }
        j = j_hi;
    }
#endif
    for (; j < j_hi; j++)
        dst[j] = src[ix0 + j * stride];
    for (j = j_hi; j < count; j++)
        dst[j] = 0.0f;
}

bool jp_cpu_same_numel(const jp_step *step, int n_in)
{
    if (step->n_in != n_in)
        return false;
    const int64_t n = jp_tensor_numel(&step->out);
    if (n <= 0 || step->out.rank < 1 || step->out.rank > JP_MAX_RANK)
        return false;
    for (int i = 0; i < n_in; i++)
        if (step->in[i].rank < 1 || step->in[i].rank > JP_MAX_RANK ||
            jp_tensor_numel(&step->in[i]) != n)
            return false;
    return true;
}

bool jp_cpu_step_on_cpu(const jp_step *step)
{
    if (step->n_in < 0 || step->n_in > JP_MAX_OP_INPUTS)
        return false;
    for (int i = 0; i < step->n_in; i++)
        if (step->in[i].device != JP_DEVICE_CPU)
            return false;
    return step->out.device == JP_DEVICE_CPU;
}

static bool param_is(const jp_param *p, int rank, const int64_t *dims)
{
    if (p->rank != rank)
        return false;
    for (int i = 0; i < rank; i++)
        if (p->dims[i] != dims[i])
            return false;
    return true;
}

jp_cpu_conv_shape jp_cpu_conv_shape_of(const jp_step *step)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    return (jp_cpu_conv_shape){
        .n = step->in[0].dims[0], .c_in = a->c_in, .h = step->in[0].dims[2],
        .w = step->in[0].dims[3], .c_out = a->c_out, .oh = step->out.dims[2],
        .ow = step->out.dims[3], .groups = a->groups, .kh = a->kernel_h, .kw = a->kernel_w,
        .sh = a->stride_h, .sw = a->stride_w, .ph = a->pad_h, .pw = a->pad_w,
        .dh = a->dilation_h, .dw = a->dilation_w,
    };
}

bool jp_cpu_conv_step_ok(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_CONV2D || step->n_in != 1 || step->fused_add ||
        !jp_cpu_step_on_cpu(step))
        return false;
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    if (a->c_in <= 0 || a->c_out <= 0 || a->groups <= 0 || a->c_in % a->groups ||
        a->c_out % a->groups || a->kernel_h <= 0 || a->kernel_w <= 0 || a->stride_h <= 0 ||
        a->stride_w <= 0 || a->pad_h < 0 || a->pad_w < 0 || a->dilation_h <= 0 ||
        a->dilation_w <= 0)
        return false;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (in->rank != 4 || out->rank != 4 || in->dims[0] <= 0 || in->dims[1] != a->c_in)
        return false;
    int64_t oh = jp_cpu_out_size(in->dims[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h);
    int64_t ow = jp_cpu_out_size(in->dims[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w);
    if (oh <= 0 || ow <= 0 || out->dims[0] != in->dims[0] || out->dims[1] != a->c_out ||
        out->dims[2] != oh || out->dims[3] != ow)
        return false;
    const int64_t w_dims[4] = {a->c_out, a->c_in / a->groups, a->kernel_h, a->kernel_w};
    const int64_t b_dims[1] = {a->c_out};
    if (op->n_params < (a->has_bias ? 2 : 1) || !param_is(&op->params[JP_PARAM_WEIGHT], 4, w_dims))
        return false;
    if (a->has_bias && !param_is(&op->params[JP_PARAM_BIAS], 1, b_dims))
        return false;
    const jp_op *bn = step->fused_bn;
    if (bn) {
        if (bn->type != JP_OP_BATCH_NORM2D || bn->attrs.batch_norm2d.channels != a->c_out ||
            bn->n_params < 4 || !(bn->attrs.batch_norm2d.eps >= 0.0f))
            return false;
        for (int i = 0; i < 4; i++)
            if (!param_is(&bn->params[i], 1, b_dims))
                return false;
    }
    return jp_activation_valid(step->act);
}

jp_status jp_cpu_conv_fold(const jp_step *step, float **w_out, float **b_out, jp_error *err)
{
    const jp_op *op = step->op, *bn = step->fused_bn;
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    const int64_t k_per_out = (int64_t)(a->c_in / a->groups) * a->kernel_h * a->kernel_w;
    const float *w = op->params[JP_PARAM_WEIGHT].data;
    const float *b = a->has_bias ? op->params[JP_PARAM_BIAS].data : NULL;
    *w_out = NULL;
    *b_out = NULL;
    if (!w || (a->has_bias && !b))
        return jp_error_set(err, JP_ERR_MISSING, "%s: %s parameters not bound", op->name,
                            !w ? "weight" : "bias");
    if (bn)
        for (int i = 0; i < 4; i++)
            if (!bn->params[i].data)
                return jp_error_set(err, JP_ERR_MISSING, "%s: parameter %s not bound", bn->name,
                                    bn->params[i].name ? bn->params[i].name : "?");
    float *wf = jp_cpu_alloc((size_t)a->c_out * (size_t)k_per_out * sizeof(float));
    float *bf = jp_cpu_alloc((size_t)a->c_out * sizeof(float));
    if (!wf || !bf) {
        jp_cpu_free(wf);
        jp_cpu_free(bf);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate folded weights (%lld floats)",
                            op->name, (long long)(a->c_out * k_per_out));
    }
    for (int co = 0; co < a->c_out; co++) {
        double scale = 1.0, shift = b ? b[co] : 0.0;
        if (bn) {
            const float *gamma = bn->params[JP_PARAM_WEIGHT].data;
            const float *beta = bn->params[JP_PARAM_BIAS].data;
            const float *mean = bn->params[JP_PARAM_MEAN].data;
            const float *var = bn->params[JP_PARAM_VAR].data;
            scale = gamma[co] / sqrt((double)var[co] + (double)bn->attrs.batch_norm2d.eps);
            shift = (shift - mean[co]) * scale + beta[co];
        }
        for (int64_t k = 0; k < k_per_out; k++)
            wf[co * k_per_out + k] = (float)(w[co * k_per_out + k] * scale);
        bf[co] = (float)shift;
    }
    if (step->give_back_params) /* before the kernel packs or transforms wf */
        jp_weights_give_back(w, (size_t)a->c_out * (size_t)k_per_out * sizeof(float));
    *w_out = wf;
    *b_out = bf;
    return JP_OK;
}

bool jp_cpu_conv_residual_step_ok(const jp_step *step)
{
    if (!step->fused_add || step->n_in != 2 || step->in[1].device != JP_DEVICE_CPU ||
        step->in[1].rank != step->out.rank)
        return false;
    for (int i = 0; i < step->out.rank; i++)
        if (step->in[1].dims[i] != step->out.dims[i])
            return false;
    jp_step plain = *step;
    plain.fused_add = NULL;
    plain.n_in = 1;
    return jp_cpu_conv_step_ok(&plain);
}
