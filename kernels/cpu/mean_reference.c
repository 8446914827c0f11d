/*
 * mean_reference.c: cpu/mean/reference, torch's x.mean(dims) over the last
 * dimensions of an [n, c, h, w] tensor (MNASNet's and ShuffleNet's x.mean([2,
 * 3]) before the classifier): each of the n*c (or n) outputs averages one
 * contiguous run of `inner` inputs.  Sums in double: it is its own reference,
 * and the runs are short (49 to a few thousand).
 */
#include "cpu_internal.h"

static bool mean_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_MEAN || !jp_cpu_step_on_cpu(step) || !jp_cpu_no_fusion(step) ||
        step->n_in != 1 || step->in[0].rank != 4)
        return false;
    const int first = op->attrs.mean.first_dim;
    if (first < 1 || first > 3)
        return false;
    int64_t outer = 1;
    for (int i = 0; i < first; i++)
        outer *= step->in[0].dims[i];
    return outer > 0 && jp_tensor_numel(&step->in[0]) > 0 && jp_tensor_numel(&step->out) == outer;
}

static jp_status mean_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const float *x = step->in[0].data; /* [outer, inner]: [n, c, h, w] */
    float *y = step->out.data;         /* [outer]: [n, c] or [n, c, 1, 1] */
    const int64_t outer = jp_tensor_numel(&step->out);
    const int64_t inner = jp_tensor_numel(&step->in[0]) / outer;
#pragma omp parallel for schedule(static) if (outer * inner >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++) {
        double sum = 0.0;
        for (int64_t i = 0; i < inner; i++)
            sum += x[o * inner + i];
        y[o] = (float)(sum / (double)inner);
    }
    return JP_OK;
}

const jp_kernel jp_cpu_mean_reference = {
    .name = "cpu/mean/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_MEAN,
    .is_reference = true,
    .priority = 0,
    .supports = mean_supports,
    .run = mean_run,
};
