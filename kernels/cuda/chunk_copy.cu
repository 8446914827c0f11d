/*
 * chunk_copy.cu: "cuda/chunk/copy", x.chunk(chunks, dim)[index] of a
 * contiguous tensor (ShuffleNetV2): one strided device-to-device copy
 * (cudaMemcpy2DAsync: `outer` rows of the piece's slab, each taken at its
 * offset in the input row), ordered on the backend's stream.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

static bool chunk_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHUNK && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status chunk_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_chunk_runs r = jp_chunk_runs_of(&step->op->attrs.chunk, &step->in[0], &step->out);
    const size_t row_bytes = (size_t)r.len * sizeof(float), in_row_bytes = (size_t)r.stride * sizeof(float);
    JP_CUDA_CHECK(err, cudaMemcpy2DAsync(step->out.data, row_bytes, step->in[0].data + r.offset, in_row_bytes,
                                         row_bytes, (size_t)r.outer, cudaMemcpyDeviceToDevice, jp_cuda_stream()));
    return JP_OK;
fail:
    return jp_error_prefix(err, "%s (cuda/chunk/copy): ", step->op->name);
}

extern "C" const jp_kernel jp_cuda_chunk_copy = {
    /* name         */ "cuda/chunk/copy",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CHUNK,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ chunk_supports,
    /* prepare      */ NULL,
    /* run          */ chunk_run,
    /* release      */ NULL,
};
