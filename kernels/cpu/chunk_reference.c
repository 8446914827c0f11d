/*
 * chunk_reference.c: cpu/chunk/reference, x.chunk(chunks, dim)[index] of a
 * contiguous tensor (ShuffleNetV2's stride-1 blocks split their input in two
 * channel halves): for each of the `outer` index tuples before dim, one
 * contiguous run of the piece's rows copied out.  A copy: the blocks spend
 * little in it next to their convolutions.  Its own reference
 * (tests/test_cpu_kernels.c checks it element by element).
 */
#include "cpu_internal.h"

/* The piece's first row along dim, when the output is the piece torch.chunk
 * gives (shape rule in engine/jp_ops.c); -1 when not. */
static int64_t chunk_start(const jp_step *step)
{
    const jp_chunk_attrs *a = &step->op->attrs.chunk;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    if (a->dim < 1 || a->dim >= x->rank || y->rank != x->rank || a->chunks < 1)
        return -1;
    const int64_t size = x->dims[a->dim], piece = (size + a->chunks - 1) / a->chunks, start = piece * a->index;
    if (start >= size || y->dims[a->dim] != (size - start < piece ? size - start : piece))
        return -1;
    for (int i = 0; i < x->rank; i++)
        if (i != a->dim && y->dims[i] != x->dims[i])
            return -1;
    return start;
}

static bool chunk_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHUNK && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) && step->n_in == 1 &&
           chunk_start(step) >= 0 && jp_tensor_numel(&step->out) > 0;
}

static jp_status chunk_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const int dim = step->op->attrs.chunk.dim, rank = step->out.rank;
    int64_t outer = 1, inner = 1; /* x: [outer, dims[dim] * inner] */
    for (int i = 0; i < dim; i++)
        outer *= step->out.dims[i];
    for (int i = dim + 1; i < rank; i++)
        inner *= step->out.dims[i];
    const int64_t in_row = step->in[0].dims[dim] * inner, len = step->out.dims[dim] * inner;
    const float *x = step->in[0].data + chunk_start(step) * inner;
    float *y = step->out.data;
#pragma omp parallel for schedule(static) if (outer * len >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t o = 0; o < outer; o++)
        memcpy(y + o * len, x + o * in_row, (size_t)len * sizeof(float));
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
