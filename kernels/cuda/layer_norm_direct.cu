/*
 * layer_norm_direct.cu: "cuda/layer_norm/direct", torch.nn.LayerNorm over one
 * dimension (jp_layer_norm_attrs; the CPU kernels' file says which), in[0]
 * viewed as [outer, features, inner]: one warp per group of `features`
 * elements (stride inner), two passes (mean, then the squared deviations)
 * reduced by shuffles, in float.  Weight and bias are uploaded in prepare.
 * cuDNN's legacy API has no layer norm; this is the direct kernel.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

#include <stdlib.h>
#include <string.h>

typedef struct ln_state {
    float *params; /* [2, features]: weight, bias */
} ln_state;

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return __shfl_sync(0xffffffffu, v, 0);
}

static __global__ void layer_norm_kernel(float *y, const float *x, const float *params, int64_t groups,
                                         int64_t features, int64_t inner, float eps)
{
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
    for (int64_t gi = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; gi < groups; gi += warps) {
        const int64_t o = gi / inner, i = gi % inner;
        const float *xg = x + o * features * inner + i;
        float *yg = y + o * features * inner + i;
        float s = 0.0f;
        for (int64_t c = lane; c < features; c += 32)
            s += xg[c * inner];
        const float mean = warp_sum(s) / (float)features;
        float ss = 0.0f;
        for (int64_t c = lane; c < features; c += 32) {
            const float d = xg[c * inner] - mean;
            ss += d * d;
        }
        const float rstd = rsqrtf(warp_sum(ss) / (float)features + eps);
        for (int64_t c = lane; c < features; c += 32)
            yg[c * inner] = (xg[c * inner] - mean) * rstd * params[c] + params[features + c];
    }
}

static bool layer_norm_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_LAYER_NORM && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) && op->n_params == 2 &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static void layer_norm_release(void *state_ptr)
{
    ln_state *s = (ln_state *)state_ptr;

    if (!s)
        return;
    if (s->params)
        cudaFree(s->params);
    free(s);
}

static jp_status layer_norm_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_op *op = step->op;
    const int f = op->attrs.layer_norm.features;
    ln_state *s = NULL;
    float *host = NULL;

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    if (!op->params[JP_PARAM_WEIGHT].data || !op->params[JP_PARAM_BIAS].data) {
        jp_error_set(err, JP_ERR_MISSING, "%s: parameters not bound to weight data", op->name);
        goto fail;
    }
    s = (ln_state *)calloc(1, sizeof *s);
    host = (float *)malloc(2 * (size_t)f * sizeof(float));
    if (!s || !host) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the layer-norm state");
        goto fail;
    }
    memcpy(host, op->params[JP_PARAM_WEIGHT].data, (size_t)f * sizeof(float));
    memcpy(host + f, op->params[JP_PARAM_BIAS].data, (size_t)f * sizeof(float));
    if (jp_cuda_upload_floats(host, 2 * (int64_t)f, &s->params, err) != JP_OK)
        goto fail;
    free(host);
    *state_out = s;
    return JP_OK;
fail:
    free(host);
    layer_norm_release(s);
    jp_error_prefix(err, "%s (cuda/layer_norm/direct prepare): ", op->name);
    return jp_cuda_fail_status(err);
}

static jp_status layer_norm_run(void *state, const jp_step *step, jp_error *err)
{
    const ln_state *s = (const ln_state *)state;
    const jp_layer_norm_attrs *a = &step->op->attrs.layer_norm;
    const jp_tensor *x = &step->in[0];
    int64_t outer = 1, inner = 1;

    for (int d = 0; d < x->rank; d++) {
        if (d < a->dim)
            outer *= x->dims[d];
        else if (d > a->dim)
            inner *= x->dims[d];
    }
    const int64_t groups = outer * inner, warps_per_block = JP_CUDA_THREADS / 32;
    const int64_t blocks64 = (groups + warps_per_block - 1) / warps_per_block;
    const unsigned int blocks = (unsigned int)(blocks64 < 65535 ? blocks64 : 65535);
    layer_norm_kernel<<<blocks, JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(step->out.data, x->data, s->params, groups,
                                                                        a->features, inner, a->eps);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/layer_norm/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_layer_norm_direct = {
    /* name         */ "cuda/layer_norm/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_LAYER_NORM,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ layer_norm_supports,
    /* prepare      */ layer_norm_prepare,
    /* run          */ layer_norm_run,
    /* release      */ layer_norm_release,
};
