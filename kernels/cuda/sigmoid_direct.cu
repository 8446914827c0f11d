/*
 * sigmoid_direct.cu: "cuda/sigmoid/direct", y = 1 / (1 + e^-x), elementwise, a
 * hand-written kernel (jp_cuda_act_map, with the accurate expf).  Any rank;
 * in place (y == x) allowed.
 */
#include "cuda_context.h"

static bool sigmoid_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_SIGMOID && jp_cuda_step_on_device(step) &&
           jp_cuda_no_fusion(step) && jp_cuda_same_numel(step, 1);
}

static jp_status sigmoid_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    if (jp_cuda_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out),
                        JP_ACT_SIGMOID, err) != JP_OK)
        return jp_error_prefix(err, "%s (cuda/sigmoid/direct): ", step->op->name);
    return JP_OK;
}

extern "C" const jp_kernel jp_cuda_sigmoid_direct = {
    /* name         */ "cuda/sigmoid/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_SIGMOID,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ sigmoid_supports,
    /* prepare      */ NULL,
    /* run          */ sigmoid_run,
    /* release      */ NULL,
};
