/*
 * permute_direct.cu: "cuda/permute/direct", torch.permute as a copy: one
 * thread per output element, its source offset from the output index and
 * the input strides of the permuted dimensions (passed by value).
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

typedef struct permute_geom {
    int rank;
    int64_t out_dims[JP_MAX_RANK];
    int64_t src_stride[JP_MAX_RANK]; /* in's stride of out's dimension d */
} permute_geom;

static __global__ void permute_kernel(float *y, const float *x, int64_t n, permute_geom g)
{
    JP_CUDA_FOR(i, n) {
        int64_t rest = i, src = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            src += rest % g.out_dims[d] * g.src_stride[d];
            rest /= g.out_dims[d];
        }
        y[i] = x[src];
    }
}

static bool permute_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_PERMUTE && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status permute_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_permute_attrs *a = &step->op->attrs.permute;
    const jp_tensor *x = &step->in[0];
    const int64_t n = jp_tensor_numel(&step->out);
    int64_t in_stride[JP_MAX_RANK];
    permute_geom g;

    (void)state;
    g.rank = a->rank;
    in_stride[a->rank - 1] = 1;
    for (int d = a->rank - 2; d >= 0; d--)
        in_stride[d] = in_stride[d + 1] * x->dims[d + 1];
    for (int d = 0; d < a->rank; d++) {
        g.out_dims[d] = step->out.dims[d];
        g.src_stride[d] = in_stride[a->dims[d]];
    }
    permute_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(step->out.data, x->data, n, g);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/permute/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_permute_direct = {
    /* name         */ "cuda/permute/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_PERMUTE,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ permute_supports,
    /* prepare      */ NULL,
    /* run          */ permute_run,
    /* release      */ NULL,
};
