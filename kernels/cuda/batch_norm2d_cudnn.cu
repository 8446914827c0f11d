/*
 * batch_norm2d_cudnn.cu: "cuda/batch_norm2d/cudnn", inference batch norm
 *     y = (x - mean) / sqrt(var + eps) * gamma + beta
 * per channel of [n, c, h, w] through cudnnBatchNormalizationForwardInference
 * (CUDNN_BATCHNORM_SPATIAL), then an optional activation in place.  The
 * executor folds batch norm into the convolution where it can; this kernel
 * runs it alone (--no-fuse).
 */
#include "cuda_context.h"

#include <stdlib.h>
#include <string.h>

typedef struct bn_state {
    cudnnTensorDescriptor_t x_desc;  /* [n, c, h, w] (y the same) */
    cudnnTensorDescriptor_t bn_desc; /* [1, c, 1, 1]              */
    float *params;                   /* device [4, c]: gamma, beta, mean, var */
    int channels;
    double eps;
} bn_state;

static bool bn_supports(const jp_step *step)
{
    const jp_op *op = step->op;

    if (!op || op->type != JP_OP_BATCH_NORM2D || !jp_cuda_step_on_device(step) ||
        step->fused_bn != NULL || !jp_cuda_same_numel(step, 1) || step->in[0].rank != 4 ||
        step->out.rank != 4 || step->in[0].dims[1] != op->attrs.batch_norm2d.channels ||
        op->n_params < 4 || !jp_cuda_act_ok(step->act) ||
        jp_tensor_numel(&step->out) > INT32_MAX)
        return false;
    for (int i = 0; i < 4; i++)
        if (op->params[i].rank != 1 || op->params[i].dims[0] != op->attrs.batch_norm2d.channels)
            return false;
    /* cuDNN's floor on eps (0.0 in cuDNN 8 and 9, 1e-5 in 7). */
    return (double)op->attrs.batch_norm2d.eps >= CUDNN_BN_MIN_EPSILON;
}

static void bn_release(void *state_ptr)
{
    bn_state *s = (bn_state *)state_ptr;

    if (!s)
        return;
    if (s->x_desc)
        cudnnDestroyTensorDescriptor(s->x_desc);
    if (s->bn_desc)
        cudnnDestroyTensorDescriptor(s->bn_desc);
    if (s->params)
        cudaFree(s->params);
    free(s);
}

static jp_status bn_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_op *op = step->op;
    const jp_tensor *x = &step->in[0];
    const int c = op->attrs.batch_norm2d.channels;
    bn_state *s = NULL;
    float *host = NULL; /* [4, c] */

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    for (int i = 0; i < 4; i++)
        if (!op->params[i].data) {
            jp_error_set(err, JP_ERR_MISSING, "%s not bound to weight data", op->params[i].name);
            goto fail;
        }
    s = (bn_state *)calloc(1, sizeof *s);
    host = (float *)malloc(4 * (size_t)c * sizeof(float));
    if (!s || !host) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the batch-norm state");
        goto fail;
    }
    s->channels = c;
    s->eps = op->attrs.batch_norm2d.eps;
    for (int i = 0; i < 4; i++)
        memcpy(host + (size_t)i * c, op->params[i].data, (size_t)c * sizeof(float));
    if (jp_cuda_upload_floats(host, 4 * (int64_t)c, &s->params, err) != JP_OK)
        goto fail;
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->x_desc));
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->bn_desc));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  (int)x->dims[0], (int)x->dims[1],
                                                  (int)x->dims[2], (int)x->dims[3]));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->bn_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  1, c, 1, 1));
    free(host);
    *state_out = s;
    return JP_OK;
fail:
    free(host);
    bn_release(s);
    jp_error_prefix(err, "%s (cuda/batch_norm2d/cudnn prepare): ", op->name);
    return jp_cuda_fail_status(err);
}

static jp_status bn_run(void *state, const jp_step *step, jp_error *err)
{
    const bn_state *s = (const bn_state *)state;
    const float one = 1.0f, zero = 0.0f;
    const float *gamma = s->params, *beta = s->params + s->channels;
    const float *mean = s->params + 2 * s->channels, *var = s->params + 3 * s->channels;

    JP_CUDA_CHECK(err, cudnnBatchNormalizationForwardInference(
                           jp_cuda_cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, s->x_desc,
                           step->in[0].data, s->x_desc, step->out.data, s->bn_desc, gamma, beta,
                           mean, var, s->eps));
    if (jp_cuda_act_map(step->out.data, step->out.data, jp_tensor_numel(&step->out), step->act,
                        err) != JP_OK)
        goto fail;
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/batch_norm2d/cudnn): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_batch_norm2d_cudnn = {
    /* name         */ "cuda/batch_norm2d/cudnn",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_BATCH_NORM2D,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ bn_supports,
    /* prepare      */ bn_prepare,
    /* run          */ bn_run,
    /* release      */ bn_release,
};
