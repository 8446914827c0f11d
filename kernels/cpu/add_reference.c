/*
 * add_reference.c: cpu/add/reference, y = act(a + b) elementwise on two
 * tensors of the same shape (ResNet's residual add; the block's final ReLU
 * may be fused as the activation).  Its own reference.
 */
#include "cpu_internal.h"

#define ADD_CHUNK 16384

static bool add_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_ADD || !jp_cpu_step_on_cpu(step) || step->fused_bn != NULL ||
        !jp_cpu_same_numel(step, 2))
        return false;
    return jp_activation_valid(step->act);
}

static jp_status add_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const float *a = step->in[0].data, *b = step->in[1].data;
    float *y = step->out.data; /* may alias a or b */
    const int64_t n = jp_tensor_numel(&step->out);
    const int64_t chunks = (n + ADD_CHUNK - 1) / ADD_CHUNK;
    const jp_activation act = step->act;
#pragma omp parallel for schedule(static) if (n >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t k = 0; k < chunks; k++) {
        const int64_t i0 = k * ADD_CHUNK, cnt = n - i0 < ADD_CHUNK ? n - i0 : ADD_CHUNK;
        for (int64_t i = i0; i < i0 + cnt; i++)
            y[i] = a[i] + b[i];
        if (act != JP_ACT_NONE)
            jp_cpu_bias_act(y + i0, cnt, 0.0f, act);
    }
    return JP_OK;
}

const jp_kernel jp_cpu_add_reference = {
    .name = "cpu/add/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_ADD,
    .is_reference = true,
    .priority = 0,
    .supports = add_supports,
    .run = add_run,
};
