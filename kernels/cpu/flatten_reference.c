/*
 * flatten_reference.c: cpu/flatten/reference, a copy into the flattened
 * shape (the executor may alias the two instead; then in and out are the
 * same memory and nothing moves).
 */
#include "cpu_internal.h"

static bool flatten_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_FLATTEN && jp_cpu_step_on_cpu(step) &&
           jp_cpu_no_fusion(step) && jp_cpu_same_numel(step, 1);
}

static jp_status flatten_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    if (step->out.data != step->in[0].data)
        memcpy(step->out.data, step->in[0].data,
               (size_t)jp_tensor_numel(&step->out) * sizeof(float));
    return JP_OK;
}

const jp_kernel jp_cpu_flatten_reference = {
    .name = "cpu/flatten/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_FLATTEN,
    .is_reference = true,
    .priority = 0,
    .supports = flatten_supports,
    .run = flatten_run,
};
