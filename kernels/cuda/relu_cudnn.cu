/*
 * relu_cudnn.cu: "cuda/relu/cudnn", y = max(x, 0) through cudnnActivationForward
 * (CUDNN_ACTIVATION_RELU, NaN propagated as torch.relu does).  Any rank: a
 * rank-4 tensor keeps its [n, c, h, w] descriptor, anything else (AlexNet's
 * classifier ReLUs on [n, features]) is described as [n, rest, 1, 1].
 * In place (y == x) is allowed.
 */
#include "cuda_context.h"

#include <stdlib.h>

typedef struct relu_state {
    cudnnTensorDescriptor_t desc; /* x and y */
    cudnnActivationDescriptor_t act_desc;
} relu_state;

static bool relu_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_RELU && jp_cuda_step_on_device(step) &&
           jp_cuda_no_fusion(step) && jp_cuda_same_numel(step, 1) &&
           jp_tensor_numel(&step->out) <= INT32_MAX;
}

static void relu_release(void *state_ptr)
{
    relu_state *s = (relu_state *)state_ptr;

    if (!s)
        return;
    if (s->desc)
        cudnnDestroyTensorDescriptor(s->desc);
    if (s->act_desc)
        cudnnDestroyActivationDescriptor(s->act_desc);
    free(s);
}

static jp_status relu_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_tensor *x = &step->in[0];
    relu_state *s = NULL;
    int dims[4];

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    if (x->rank == 4) {
        for (int i = 0; i < 4; i++)
            dims[i] = (int)x->dims[i];
    } else {
        dims[0] = (int)x->dims[0];
        dims[1] = (int)(jp_tensor_numel(x) / x->dims[0]);
        dims[2] = 1;
        dims[3] = 1;
    }
    s = (relu_state *)calloc(1, sizeof *s);
    if (!s) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the relu state");
        goto fail;
    }
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->desc));
    JP_CUDA_CHECK(err, cudnnCreateActivationDescriptor(&s->act_desc));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  dims[0], dims[1], dims[2], dims[3]));
    JP_CUDA_CHECK(err, cudnnSetActivationDescriptor(s->act_desc, CUDNN_ACTIVATION_RELU,
                                                    CUDNN_PROPAGATE_NAN, 0.0));
    *state_out = s;
    return JP_OK;
fail:
    relu_release(s);
    jp_error_prefix(err, "%s (cuda/relu/cudnn prepare): ", step->op->name);
    return jp_cuda_fail_status(err);
}

static jp_status relu_run(void *state, const jp_step *step, jp_error *err)
{
    const relu_state *s = (const relu_state *)state;
    const float one = 1.0f, zero = 0.0f;

    JP_CUDA_CHECK(err, cudnnActivationForward(jp_cuda_cudnn(), s->act_desc, &one, s->desc,
                                              step->in[0].data, &zero, s->desc, step->out.data));
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/relu/cudnn): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_relu_cudnn = {
    /* name         */ "cuda/relu/cudnn",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_RELU,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ relu_supports,
    /* prepare      */ relu_prepare,
    /* run          */ relu_run,
    /* release      */ relu_release,
};
