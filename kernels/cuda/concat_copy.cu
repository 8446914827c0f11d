/*
 * concat_copy.cu: "cuda/concat/copy", torch.cat(inputs, dim) of contiguous
 * tensors: one strided device-to-device copy per input (cudaMemcpy2DAsync:
 * `outer` rows of the input's slab, each placed at its offset in the output
 * row), ordered on the backend's stream.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

static bool concat_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_CONCAT || !jp_cuda_step_on_device(step) || !jp_cuda_no_fusion(step) ||
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
    const int dim = step->op->attrs.concat.dim, rank = step->out.rank;
    int64_t outer = 1, inner = 1; /* out: [outer, dims[dim] * inner] */
    for (int i = 0; i < dim; i++)
        outer *= step->out.dims[i];
    for (int i = dim + 1; i < rank; i++)
        inner *= step->out.dims[i];
    const size_t out_row_bytes = (size_t)(step->out.dims[dim] * inner) * sizeof(float);
    size_t at_bytes = 0;
    for (int k = 0; k < step->n_in; k++) {
        const size_t row_bytes = (size_t)(step->in[k].dims[dim] * inner) * sizeof(float);
        JP_CUDA_CHECK(err, cudaMemcpy2DAsync((char *)step->out.data + at_bytes, out_row_bytes, step->in[k].data,
                                             row_bytes, row_bytes, (size_t)outer, cudaMemcpyDeviceToDevice,
                                             jp_cuda_stream()));
        at_bytes += row_bytes;
    }
    return JP_OK;
fail:
    return jp_error_prefix(err, "%s (cuda/concat/copy): ", step->op->name);
}

extern "C" const jp_kernel jp_cuda_concat_copy = {
    /* name         */ "cuda/concat/copy",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CONCAT,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ concat_supports,
    /* prepare      */ NULL,
    /* run          */ concat_run,
    /* release      */ NULL,
};
