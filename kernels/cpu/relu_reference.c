/*
 * relu_reference.c: cpu/relu/reference, y = max(x, 0), NaN passing through as in torch.relu.
 * Elementwise: its own reference; split over threads when large.
 */
#include "cpu_internal.h"

static bool relu_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_RELU && jp_cpu_step_on_cpu(step) &&
           jp_cpu_no_fusion(step) && jp_cpu_same_numel(step, 1);
}

static jp_status relu_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    jp_cpu_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out), JP_ACT_RELU);
    return JP_OK;
}

const jp_kernel jp_cpu_relu_reference = {
    .name = "cpu/relu/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_RELU,
    .is_reference = true,
    .priority = 0,
    .supports = relu_supports,
    .run = relu_run,
};
