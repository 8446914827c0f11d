/*
 * silu_reference.c: cpu/silu/reference, y = x * sigmoid(x), with the vectorised expf of cpu_internal.h.
 * Elementwise: its own reference; split over threads when large.
 */
#include "cpu_internal.h"

static bool silu_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_SILU && jp_cpu_step_on_cpu(step) &&
           jp_cpu_no_fusion(step) && jp_cpu_same_numel(step, 1);
}

static jp_status silu_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    jp_cpu_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out), JP_ACT_SILU);
    return JP_OK;
}

const jp_kernel jp_cpu_silu_reference = {
    .name = "cpu/silu/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_SILU,
    .is_reference = true,
    .priority = 0,
    .supports = silu_supports,
    .run = silu_run,
};
