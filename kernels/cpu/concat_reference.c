/*
 * concat_reference.c: cpu/concat/reference, torch.cat(inputs, dim) of
 * contiguous tensors: for each of the `outer` index tuples before dim, the
 * inputs' slabs (dims[dim..] of each) one after the other.  A copy: SqueezeNet's
 * Fire modules and DenseNet's blocks spend little in it next to their
 * convolutions.  Its own reference (tests/test_cpu_kernels.c checks it
 * element by element).
 */
#include "cpu_internal.h"

static bool concat_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_CONCAT || !jp_cpu_step_on_cpu(step) || !jp_cpu_no_fusion(step) ||
        step->n_in < 1)
        return false;
    const int dim = op->attrs.concat.dim, rank = step->out.rank;
    if (dim < 1 || dim >= rank)
        return false;
    int64_t total = 0;
    for (int k = 0; k < step->n_in; k++) {
        const jp_tensor *t = &step->in[k];
        if (t->rank != rank)
            return false;
        for (int i = 0; i < rank; i++)
            if (i != dim && t->dims[i] != step->out.dims[i])
                return false;
        total += t->dims[dim];
    }
    return total == step->out.dims[dim] && jp_tensor_numel(&step->out) > 0;
}

static jp_status concat_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const int dim = step->op->attrs.concat.dim, rank = step->out.rank;
    int64_t outer = 1, inner = 1; /* out: [outer, dims[dim] * inner] */
    for (int i = 0; i < dim; i++)
        outer *= step->out.dims[i];
    for (int i = dim + 1; i < rank; i++)
        inner *= step->out.dims[i];
    const int64_t out_row = step->out.dims[dim] * inner;
    const int n_in = step->n_in;
    float *y = step->out.data;
#pragma omp parallel for collapse(2) schedule(static) if (outer * out_row >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n_in; k++) {
            int64_t at = 0; /* where input k's slab starts in the output row */
            for (int j = 0; j < k; j++)
                at += step->in[j].dims[dim] * inner;
            const int64_t len = step->in[k].dims[dim] * inner;
            memcpy(y + o * out_row + at, step->in[k].data + o * len, (size_t)len * sizeof(float));
        }
    return JP_OK;
}

const jp_kernel jp_cpu_concat_reference = {
    .name = "cpu/concat/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONCAT,
    .is_reference = true,
    .priority = 0,
    .supports = concat_supports,
    .run = concat_run,
};
