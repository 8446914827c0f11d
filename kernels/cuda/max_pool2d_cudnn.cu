/*
 * max_pool2d_cudnn.cu: "cuda/max_pool2d/cudnn", max pooling through
 * cudnnPoolingForward (CUDNN_POOLING_MAX, NaN propagated; padded cells never
 * win, as PyTorch's implicit -inf padding).
 *
 * cuDNN pooling knows neither dilation nor ceil_mode: supports() refuses a
 * dilated window, and a ceil_mode pool whose output is larger than floor
 * mode's; those go to cuda/max_pool2d/direct.  A ceil_mode pool whose output
 * size equals floor mode's (13 -> 6 with kernel 3, stride 2) has the same
 * windows and is served here.
 */
#include "cuda_context.h"

#include <stdlib.h>

typedef struct maxpool_state {
    cudnnTensorDescriptor_t x_desc;  /* [n, c, h, w]   */
    cudnnTensorDescriptor_t y_desc;  /* [n, c, oh, ow] */
    cudnnPoolingDescriptor_t pool_desc;
} maxpool_state;

static bool maxpool_cudnn_supports(const jp_step *step)
{
    const jp_max_pool2d_attrs *a;
    const jp_tensor *x = &step->in[0], *y = &step->out;

    if (!jp_cuda_maxpool_step_ok(step))
        return false;
    a = &step->op->attrs.max_pool2d;
    if (a->dilation_h != 1 || a->dilation_w != 1)
        return false;
    /* Floor mode's output size: what cuDNN computes. */
    return y->dims[2] == jp_cuda_window_out_size(x->dims[2], a->kernel_h, a->stride_h, a->pad_h,
                                                 1, false) &&
           y->dims[3] == jp_cuda_window_out_size(x->dims[3], a->kernel_w, a->stride_w, a->pad_w,
                                                 1, false);
}

static void maxpool_cudnn_release(void *state_ptr)
{
    maxpool_state *s = (maxpool_state *)state_ptr;

    if (!s)
        return;
    if (s->x_desc)
        cudnnDestroyTensorDescriptor(s->x_desc);
    if (s->y_desc)
        cudnnDestroyTensorDescriptor(s->y_desc);
    if (s->pool_desc)
        cudnnDestroyPoolingDescriptor(s->pool_desc);
    free(s);
}

static jp_status maxpool_cudnn_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    maxpool_state *s = NULL;
    int n, c, oh, ow;

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    s = (maxpool_state *)calloc(1, sizeof *s);
    if (!s) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the pooling state");
        goto fail;
    }
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->x_desc));
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->y_desc));
    JP_CUDA_CHECK(err, cudnnCreatePoolingDescriptor(&s->pool_desc));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  (int)x->dims[0], (int)x->dims[1],
                                                  (int)x->dims[2], (int)x->dims[3]));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  (int)y->dims[0], (int)y->dims[1],
                                                  (int)y->dims[2], (int)y->dims[3]));
    JP_CUDA_CHECK(err, cudnnSetPooling2dDescriptor(s->pool_desc, CUDNN_POOLING_MAX,
                                                   CUDNN_PROPAGATE_NAN, a->kernel_h, a->kernel_w,
                                                   a->pad_h, a->pad_w, a->stride_h,
                                                   a->stride_w));
    JP_CUDA_CHECK(err, cudnnGetPooling2dForwardOutputDim(s->pool_desc, s->x_desc, &n, &c, &oh,
                                                         &ow));
    if (n != y->dims[0] || c != y->dims[1] || oh != y->dims[2] || ow != y->dims[3]) {
        jp_error_set(err, JP_ERR_SHAPE,
                     "cuDNN pools to [%d, %d, %d, %d], the graph expects [%lld, %lld, %lld, "
                     "%lld]",
                     n, c, oh, ow, (long long)y->dims[0], (long long)y->dims[1],
                     (long long)y->dims[2], (long long)y->dims[3]);
        goto fail;
    }
    *state_out = s;
    return JP_OK;
fail:
    maxpool_cudnn_release(s);
    jp_error_prefix(err, "%s (cuda/max_pool2d/cudnn prepare): ", step->op->name);
    return jp_cuda_fail_status(err);
}

static jp_status maxpool_cudnn_run(void *state, const jp_step *step, jp_error *err)
{
    const maxpool_state *s = (const maxpool_state *)state;
    const float one = 1.0f, zero = 0.0f;

    JP_CUDA_CHECK(err, cudnnPoolingForward(jp_cuda_cudnn(), s->pool_desc, &one, s->x_desc,
                                           step->in[0].data, &zero, s->y_desc, step->out.data));
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/max_pool2d/cudnn): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_max_pool2d_cudnn = {
    /* name         */ "cuda/max_pool2d/cudnn",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_MAX_POOL2D,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ maxpool_cudnn_supports,
    /* prepare      */ maxpool_cudnn_prepare,
    /* run          */ maxpool_cudnn_run,
    /* release      */ maxpool_cudnn_release,
};
