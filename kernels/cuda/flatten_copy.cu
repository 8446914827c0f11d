/*
 * flatten_copy.cu: "cuda/flatten/copy", torch.flatten: the same contiguous data under the flattened shape: a device-to-device copy on
 * the stream (cudaMemcpyAsync), nothing when the executor aliases out to
 * in.
 */
#include "cuda_context.h"

static bool flatten_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_FLATTEN && jp_cuda_step_on_device(step) &&
           jp_cuda_no_fusion(step) && jp_cuda_same_numel(step, 1);
}

static jp_status flatten_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    if (jp_cuda_copy(step->out.data, step->in[0].data,
                     (size_t)jp_tensor_numel(&step->out) * sizeof(float), err) != JP_OK)
        return jp_error_prefix(err, "%s (cuda/flatten/copy): ", step->op->name);
    return JP_OK;
}

extern "C" const jp_kernel jp_cuda_flatten_copy = {
    /* name         */ "cuda/flatten/copy",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_FLATTEN,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ flatten_supports,
    /* prepare      */ NULL,
    /* run          */ flatten_run,
    /* release      */ NULL,
};
