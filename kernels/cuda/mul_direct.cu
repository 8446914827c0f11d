/*
 * mul_direct.cu: "cuda/mul/direct", y[n,c,h,w] = act(s[n,c,1,1] * x[n,c,h,w])
 * (EfficientNet's squeeze-excitation scale; in[0] is the scale, in[1] the
 * tensor, as the graph records them).  y may alias x.
 */
#include "cuda_context.h"

static __global__ void mul_kernel(float *y, const float *scale, const float *x, int64_t n,
                                  int64_t hw, jp_activation act)
{
    JP_CUDA_FOR(i, n) {
        y[i] = jp_cuda_activate(scale[i / hw] * x[i], act);
    }
}

static bool mul_supports(const jp_step *step)
{
    const jp_tensor *s = &step->in[0], *x = &step->in[1], *y = &step->out;

    if (!step->op || step->op->type != JP_OP_MUL || step->n_in != 2 ||
        !jp_cuda_step_on_device(step) || step->fused_bn != NULL || !jp_cuda_act_ok(step->act))
        return false;
    if (s->rank != 4 || x->rank != 4 || y->rank != 4)
        return false;
    for (int d = 0; d < 4; d++)
        if (x->dims[d] <= 0 || y->dims[d] != x->dims[d])
            return false;
    return s->dims[0] == x->dims[0] && s->dims[1] == x->dims[1] && s->dims[2] == 1 &&
           s->dims[3] == 1;
}

static jp_status mul_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_tensor *x = &step->in[1];
    const int64_t n = jp_tensor_numel(&step->out);

    (void)state;
    mul_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        step->out.data, step->in[0].data, x->data, n, x->dims[2] * x->dims[3], step->act);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/mul/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_mul_direct = {
    /* name         */ "cuda/mul/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_MUL,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ mul_supports,
    /* prepare      */ NULL,
    /* run          */ mul_run,
    /* release      */ NULL,
};
