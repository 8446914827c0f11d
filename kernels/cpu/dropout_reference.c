/*
 * dropout_reference.c: cpu/dropout/reference, identity at inference: a copy.
 */
#include "cpu_internal.h"

static bool dropout_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_DROPOUT && jp_cpu_step_on_cpu(step) &&
           jp_cpu_no_fusion(step) && jp_cpu_same_numel(step, 1);
}

static jp_status dropout_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    if (step->out.data != step->in[0].data)
        memcpy(step->out.data, step->in[0].data,
               (size_t)jp_tensor_numel(&step->out) * sizeof(float));
    return JP_OK;
}

const jp_kernel jp_cpu_dropout_reference = {
    .name = "cpu/dropout/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_DROPOUT,
    .is_reference = true,
    .priority = 0,
    .supports = dropout_supports,
    .run = dropout_run,
};
