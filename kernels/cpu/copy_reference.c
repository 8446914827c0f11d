/*
 * copy_reference.c: the ops that move data without computing: flatten (a
 * copy into the flattened shape), dropout and stochastic depth (identities
 * at inference).  One run function; one kernel per op type, since kernels
 * are registered per op ("cpu/flatten/reference", ...).  When the executor
 * gives the same memory as input and output, nothing moves.
 */
#include "cpu_internal.h"

static bool copy_supports(const jp_step *step, jp_op_type type)
{
    return step->op && step->op->type == type && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_cpu_same_numel(step, 1);
}

static bool flatten_supports(const jp_step *step) { return copy_supports(step, JP_OP_FLATTEN); }
static bool dropout_supports(const jp_step *step) { return copy_supports(step, JP_OP_DROPOUT); }
static bool stochastic_depth_supports(const jp_step *step) { return copy_supports(step, JP_OP_STOCHASTIC_DEPTH); }

static jp_status copy_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    if (step->out.data != step->in[0].data)
        memcpy(step->out.data, step->in[0].data, (size_t)jp_tensor_numel(&step->out) * sizeof(float));
    return JP_OK;
}

const jp_kernel jp_cpu_flatten_reference = {
    .name = "cpu/flatten/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_FLATTEN,
    .is_reference = true,
    .supports = flatten_supports,
    .run = copy_run,
};

const jp_kernel jp_cpu_dropout_reference = {
    .name = "cpu/dropout/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_DROPOUT,
    .is_reference = true,
    .supports = dropout_supports,
    .run = copy_run,
};

const jp_kernel jp_cpu_stochastic_depth_reference = {
    .name = "cpu/stochastic_depth/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_STOCHASTIC_DEPTH,
    .is_reference = true,
    .supports = stochastic_depth_supports,
    .run = copy_run,
};
