/*
 * channel_affine_direct.cu: "cuda/channel_affine/direct",
 * y[n, c, h, w] = x[n, c, h, w] * scale[c] + shift[c] (GoogLeNet's and
 * Inception v3's transform_input).  The constants travel in the kernel's
 * arguments (the attributes struct by value); __fmul_rn/__fadd_rn keep the
 * product rounded before the add, as torch's two elementwise kernels.
 */
#include "cuda_context.h"

static __global__ void channel_affine_kernel(float *y, const float *x, int64_t n, int64_t hw,
                                             jp_channel_affine_attrs a)
{
    JP_CUDA_FOR(i, n) {
        const int c = (int)((i / hw) % a.channels);
        y[i] = __fadd_rn(__fmul_rn(x[i], a.scale[c]), a.shift[c]);
    }
}

static bool channel_affine_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHANNEL_AFFINE && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status channel_affine_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_tensor *x = &step->in[0];
    const int64_t n = jp_tensor_numel(&step->out);

    (void)state;
    channel_affine_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        step->out.data, x->data, n, x->dims[2] * x->dims[3], step->op->attrs.channel_affine);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/channel_affine/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_channel_affine_direct = {
    /* name         */ "cuda/channel_affine/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CHANNEL_AFFINE,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ channel_affine_supports,
    /* prepare      */ NULL,
    /* run          */ channel_affine_run,
    /* release      */ NULL,
};
