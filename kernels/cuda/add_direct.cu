/*
 * add_direct.cu: "cuda/add/direct", y = act(a + b) elementwise on two
 * tensors with the same number of elements (ResNet's residual add, with the
 * block's final ReLU fused as the activation when the executor fuses it).
 * y may alias a or b.
 */
#include "cuda_context.h"

static __global__ void add_kernel(float *y, const float *a, const float *b, int64_t n,
                                  jp_activation act)
{
    JP_CUDA_FOR(i, n) {
        y[i] = jp_cuda_activate(a[i] + b[i], act);
    }
}

static bool add_supports(const jp_step *step)
{
    return step->op && step->op->type == JP_OP_ADD && jp_cuda_step_on_device(step) &&
           step->fused_bn == NULL && jp_cuda_act_ok(step->act) && jp_cuda_same_numel(step, 2);
}

static jp_status add_run(void *state, const jp_step *step, jp_error *err)
{
    const int64_t n = jp_tensor_numel(&step->out);

    (void)state;
    add_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        step->out.data, step->in[0].data, step->in[1].data, n, step->act);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/add/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_add_direct = {
    /* name         */ "cuda/add/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_ADD,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ add_supports,
    /* prepare      */ NULL,
    /* run          */ add_run,
    /* release      */ NULL,
};
