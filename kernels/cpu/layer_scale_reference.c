/*
 * layer_scale_reference.c: cpu/layer_scale/reference, ConvNeXt's layer
 * scale, y[n, c, h, w] = x[n, c, h, w] * weight[c] (weight [c, 1, 1], a
 * parameter of the block), vectorised and split over planes.
 */
#include "cpu_internal.h"

static bool layer_scale_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_LAYER_SCALE && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           op->n_params == 1 && op->params[JP_PARAM_WEIGHT].data &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status layer_scale_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    const float *w = step->op->params[JP_PARAM_WEIGHT].data, *x = step->in[0].data;
    float *y = step->out.data;
    const int64_t c = step->in[0].dims[1], planes = step->in[0].dims[0] * c;
    const int64_t hw = step->in[0].dims[2] * step->in[0].dims[3];
#pragma omp parallel for schedule(static) if (planes * hw >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++)
        jp_cpu_scale_shift_act(y + pl * hw, x + pl * hw, hw, w[pl % c], 0.0f, JP_ACT_NONE);
    return JP_OK;
}

const jp_kernel jp_cpu_layer_scale_reference = {
    .name = "cpu/layer_scale/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_LAYER_SCALE,
    .is_reference = true,
    .priority = 0,
    .supports = layer_scale_supports,
    .run = layer_scale_run,
};
