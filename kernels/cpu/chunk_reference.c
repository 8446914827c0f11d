/*
 * chunk_reference.c: cpu/chunk/reference, x.chunk(chunks, dim)[index] of a
 * contiguous tensor (ShuffleNetV2's stride-1 blocks split their input in two
 * channel halves): for each of the `outer` index tuples before dim, one
 * contiguous run of the piece's rows copied out.  A copy: the blocks spend
 * little in it next to their convolutions.  Its own reference
 * (tests/test_cpu_kernels.c checks it element by element).
 */
#include "cpu_internal.h"

static bool chunk_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHUNK && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status chunk_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const jp_chunk_runs r = jp_chunk_runs_of(&step->op->attrs.chunk, &step->in[0], &step->out);
    const float *x = step->in[0].data + r.offset;
    float *y = step->out.data;
#pragma omp parallel for schedule(static) if (r.outer * r.len >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t o = 0; o < r.outer; o++)
        memcpy(y + o * r.len, x + o * r.stride, (size_t)r.len * sizeof(float));
    return JP_OK;
}

const jp_kernel jp_cpu_chunk_reference = {
    .name = "cpu/chunk/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CHUNK,
    .is_reference = true,
    .priority = 0,
    .supports = chunk_supports,
    .run = chunk_run,
};
