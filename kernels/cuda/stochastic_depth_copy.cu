/*
 * stochastic_depth_copy.cu: "cuda/stochastic_depth/copy", torchvision's StochasticDepth, the identity at inference: a device-to-device copy on
 * the stream (cudaMemcpyAsync), nothing when the executor aliases out to
 * in.
 */
#include "cuda_context.h"

static bool stochastic_depth_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_STOCHASTIC_DEPTH && jp_cuda_step_on_device(step) &&
           jp_cuda_no_fusion(step) && jp_cuda_same_numel(step, 1);
}

static jp_status stochastic_depth_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    if (jp_cuda_copy(step->out.data, step->in[0].data,
                     (size_t)jp_tensor_numel(&step->out) * sizeof(float), err) != JP_OK)
        return jp_error_prefix(err, "%s (cuda/stochastic_depth/copy): ", step->op->name);
    return JP_OK;
}

extern "C" const jp_kernel jp_cuda_stochastic_depth_copy = {
    /* name         */ "cuda/stochastic_depth/copy",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_STOCHASTIC_DEPTH,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ stochastic_depth_supports,
    /* prepare      */ NULL,
    /* run          */ stochastic_depth_run,
    /* release      */ NULL,
};
