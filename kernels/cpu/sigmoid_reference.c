/*
 * sigmoid_reference.c: cpu/sigmoid/reference, y = 1 / (1 + exp(-x)), with the vectorised expf of cpu_internal.h.
 * Elementwise: its own reference; split over threads when large.
 */
#include "cpu_internal.h"

static bool sigmoid_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_SIGMOID && jp_cpu_step_on_cpu(step) &&
           jp_cpu_no_fusion(step) && jp_cpu_same_numel(step, 1);
}

static jp_status sigmoid_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    jp_cpu_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out), JP_ACT_SIGMOID);
    return JP_OK;
}

const jp_kernel jp_cpu_sigmoid_reference = {
    .name = "cpu/sigmoid/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_SIGMOID,
    .is_reference = true,
    .priority = 0,
    .supports = sigmoid_supports,
    .run = sigmoid_run,
};
