/*
 * cuda_common.cu: helpers shared by the CUDA kernels (declared in
 * cuda_context.h): launch geometry, weight upload and batch-norm folding,
 * the bias + activation epilogue, device copies, shared shape checks.
 */
#include "cuda_context.h"

#include <math.h>
#include <stdlib.h>

/* A grid-striding kernel needs no more blocks than fill the GPU several
 * times over; 65535 keeps within every architecture's grid limits. */
unsigned int jp_cuda_blocks(int64_t work_items)
{
    int64_t blocks = (work_items + JP_CUDA_THREADS - 1) / JP_CUDA_THREADS;
    if (blocks < 1)
        blocks = 1;
    if (blocks > 65535)
        blocks = 65535;
    return (unsigned int)blocks;
}

jp_status jp_cuda_upload_floats(const float *src_host, int64_t count, float **dst_device,
                                jp_error *err)
{
    size_t bytes = (size_t)count * sizeof(float);

    *dst_device = NULL;
    JP_CUDA_CHECK(err, cudaMalloc((void **)dst_device, bytes));
    if (jp_cuda_upload(*dst_device, src_host, bytes, err) != JP_OK)
        goto fail;
    return JP_OK;
fail:
    if (*dst_device)
        cudaFree(*dst_device);
    *dst_device = NULL;
    return jp_cuda_fail_status(err);
}

/* y [outer, channels, inner]: y = act(y + bias[c]). */
static __global__ void bias_act_kernel(float *y, const float *bias, int64_t total, int channels,
                                       int64_t inner, jp_activation act)
{
    JP_CUDA_FOR(i, total) {
        float v = y[i];
        if (bias)
            v += bias[(i / inner) % channels];
        y[i] = jp_cuda_activate(v, act);
    }
}

jp_status jp_cuda_bias_act(float *y, const float *bias, int64_t outer, int channels,
                           int64_t inner, jp_activation act, jp_error *err)
{
    int64_t total = outer * channels * inner;

    if ((!bias && act == JP_ACT_NONE) || total == 0)
        return JP_OK;
    bias_act_kernel<<<jp_cuda_blocks(total), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        y, bias, total, channels, inner, act);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

/* y = act(x), elementwise. */
static __global__ void act_map_kernel(float *y, const float *x, int64_t n, jp_activation act)
{
    JP_CUDA_FOR(i, n) {
        y[i] = jp_cuda_activate(x[i], act);
    }
}

jp_status jp_cuda_act_map(float *y, const float *x, int64_t n, jp_activation act, jp_error *err)
{
    if (n == 0 || (act == JP_ACT_NONE && y == x))
        return JP_OK;
    act_map_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(y, x, n, act);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

jp_status jp_cuda_copy(void *dst, const void *src, size_t bytes, jp_error *err)
{
    if (dst == src || bytes == 0)
        return JP_OK;
    JP_CUDA_CHECK(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                       jp_cuda_stream()));
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

jp_status jp_cuda_conv_params_upload(const jp_step *step, bool want_zero_bias, float **w_device,
                                     float **b_device, jp_error *err)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const jp_op *bn = step->fused_bn;
    const jp_param *w = &step->op->params[JP_PARAM_WEIGHT];
    const jp_param *b = a->has_bias ? &step->op->params[JP_PARAM_BIAS] : NULL;
    int64_t per_out = (int64_t)(a->c_in / a->groups) * a->kernel_h * a->kernel_w;
    int64_t w_count = (int64_t)a->c_out * per_out;
    float *w_host = NULL;  /* [c_out, c_in/groups, kh, kw] */
    float *b_host = NULL;  /* [c_out] */
    bool need_bias = a->has_bias || bn || want_zero_bias;

    *w_device = NULL;
    *b_device = NULL;
    if (!w->data || (b && !b->data)) {
        return jp_error_set(err, JP_ERR_MISSING, "%s not bound to weight data",
                            !w->data ? w->name : b->name);
    }
    if (bn) {
        for (int i = 0; i < 4; i++)
            if (!bn->params[i].data)
                return jp_error_set(err, JP_ERR_MISSING, "%s (of %s) not bound to weight data",
                                    bn->params[i].name, bn->name);
    }
    w_host = (float *)malloc((size_t)w_count * sizeof(float));
    b_host = (float *)calloc((size_t)a->c_out, sizeof(float));
    if (!w_host || !b_host) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory to fold the weights");
        goto fail;
    }
    for (int co = 0; co < a->c_out; co++) {
        double scale = 1.0, shift = b ? b->data[co] : 0.0;
        if (bn) {
            const float *gamma = bn->params[JP_PARAM_WEIGHT].data;
            const float *beta = bn->params[JP_PARAM_BIAS].data;
            const float *mean = bn->params[JP_PARAM_MEAN].data;
            const float *var = bn->params[JP_PARAM_VAR].data;
            scale = gamma[co] / sqrt((double)var[co] + (double)bn->attrs.batch_norm2d.eps);
            shift = (shift - mean[co]) * scale + beta[co];
        }
        for (int64_t k = 0; k < per_out; k++)
            w_host[co * per_out + k] = (float)(w->data[co * per_out + k] * scale);
        b_host[co] = (float)shift;
    }
    if (jp_cuda_upload_floats(w_host, w_count, w_device, err) != JP_OK)
        goto fail;
    if (need_bias && jp_cuda_upload_floats(b_host, a->c_out, b_device, err) != JP_OK)
        goto fail;
    free(w_host);
    free(b_host);
    return JP_OK;
fail:
    free(w_host);
    free(b_host);
    if (*w_device)
        cudaFree(*w_device);
    *w_device = NULL;
    *b_device = NULL;
    return jp_cuda_fail_status(err);
}

int64_t jp_cuda_window_out_size(int64_t in, int kernel, int stride, int pad, int dilation,
                                bool ceil_mode)
{
    int64_t num = in + 2 * (int64_t)pad - (int64_t)dilation * (kernel - 1) - 1 +
                  (ceil_mode ? stride - 1 : 0);
    int64_t out;

    if (num < 0)
        return 0;
    out = num / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

bool jp_cuda_step_on_device(const jp_step *step)
{
    if (step->n_in < 0 || step->n_in > JP_MAX_OP_INPUTS)
        return false;
    for (int i = 0; i < step->n_in; i++)
        if (step->in[i].device != JP_DEVICE_CUDA)
            return false;
    return step->out.device == JP_DEVICE_CUDA;
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

bool jp_cuda_conv_step_ok(const jp_step *step)
{
    const jp_op *op = step->op;
    const jp_conv2d_attrs *a;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    int64_t w_dims[4], c_dims[1];

    if (!op || op->type != JP_OP_CONV2D || step->n_in != 1 || !jp_cuda_step_on_device(step) ||
        x->rank != 4 || y->rank != 4 || !jp_cuda_act_ok(step->act))
        return false;
    a = &op->attrs.conv2d;
    if (a->c_in <= 0 || a->c_out <= 0 || a->groups <= 0 || a->c_in % a->groups ||
        a->c_out % a->groups || a->kernel_h <= 0 || a->kernel_w <= 0 || a->stride_h <= 0 ||
        a->stride_w <= 0 || a->dilation_h <= 0 || a->dilation_w <= 0 || a->pad_h < 0 ||
        a->pad_w < 0)
        return false;
    if (x->dims[0] <= 0 || x->dims[1] != a->c_in || y->dims[0] != x->dims[0] ||
        y->dims[1] != a->c_out || y->dims[2] < 1 || y->dims[3] < 1 ||
        y->dims[2] != jp_cuda_window_out_size(x->dims[2], a->kernel_h, a->stride_h, a->pad_h,
                                              a->dilation_h, false) ||
        y->dims[3] != jp_cuda_window_out_size(x->dims[3], a->kernel_w, a->stride_w, a->pad_w,
                                              a->dilation_w, false))
        return false;
    /* cuDNN and our kernels index with int. */
    if (jp_tensor_numel(x) > INT32_MAX || jp_tensor_numel(y) > INT32_MAX)
        return false;
    w_dims[0] = a->c_out;
    w_dims[1] = a->c_in / a->groups;
    w_dims[2] = a->kernel_h;
    w_dims[3] = a->kernel_w;
    c_dims[0] = a->c_out;
    if (op->n_params < (a->has_bias ? 2 : 1) || !param_is(&op->params[JP_PARAM_WEIGHT], 4, w_dims))
        return false;
    if (a->has_bias && !param_is(&op->params[JP_PARAM_BIAS], 1, c_dims))
        return false;
    if (step->fused_bn) {
        const jp_op *bn = step->fused_bn;
        if (bn->type != JP_OP_BATCH_NORM2D || bn->attrs.batch_norm2d.channels != a->c_out ||
            bn->n_params < 4 || !(bn->attrs.batch_norm2d.eps >= 0.0f))
            return false;
        for (int i = 0; i < 4; i++)
            if (!param_is(&bn->params[i], 1, c_dims))
                return false;
    }
    return true;
}

bool jp_cuda_maxpool_step_ok(const jp_step *step)
{
    const jp_op *op = step->op;
    const jp_max_pool2d_attrs *a;
    const jp_tensor *x = &step->in[0], *y = &step->out;

    if (!op || op->type != JP_OP_MAX_POOL2D || step->n_in != 1 ||
        !jp_cuda_step_on_device(step) || !jp_cuda_no_fusion(step) || x->rank != 4 ||
        y->rank != 4)
        return false;
    a = &op->attrs.max_pool2d;
    if (a->kernel_h <= 0 || a->kernel_w <= 0 || a->stride_h <= 0 || a->stride_w <= 0 ||
        a->dilation_h <= 0 || a->dilation_w <= 0 || a->pad_h < 0 || a->pad_w < 0 ||
        2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w)
        return false;
    return x->dims[0] > 0 && x->dims[1] > 0 && y->dims[0] == x->dims[0] &&
           y->dims[1] == x->dims[1] && y->dims[2] > 0 && y->dims[3] > 0 &&
           y->dims[2] == jp_cuda_window_out_size(x->dims[2], a->kernel_h, a->stride_h, a->pad_h,
                                                 a->dilation_h, a->ceil_mode) &&
           y->dims[3] == jp_cuda_window_out_size(x->dims[3], a->kernel_w, a->stride_w, a->pad_w,
                                                 a->dilation_w, a->ceil_mode) &&
           jp_tensor_numel(x) <= INT32_MAX;
}

bool jp_cuda_same_numel(const jp_step *step, int n_in)
{
    int64_t numel = jp_tensor_numel(&step->out);

    if (step->n_in != n_in || numel <= 0 || step->out.rank < 1 || step->out.rank > JP_MAX_RANK)
        return false;
    for (int i = 0; i < n_in; i++)
        if (step->in[i].rank < 1 || step->in[i].rank > JP_MAX_RANK ||
            jp_tensor_numel(&step->in[i]) != numel)
            return false;
    return true;
}
