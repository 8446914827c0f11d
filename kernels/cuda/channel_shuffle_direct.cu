/*
 * channel_shuffle_direct.cu: "cuda/channel_shuffle/direct", ShuffleNetV2's
 * channel_shuffle(x, groups) of an [n, c, h, w] tensor: output channel
 * j * groups + i is input channel i * (c / groups) + j.  One thread per
 * output element (grid-stride), reading its input plane's element; the
 * threads of a warp read and write consecutive addresses within a plane.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

static __global__ void shuffle_elements(const float *__restrict__ x, float *__restrict__ y, int64_t total,
                                        int64_t c, int64_t plane, int64_t groups, int64_t per_group)
{
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = e % plane, bc = e / plane, oc = bc % c, b = bc / c;
        const int64_t ic = (oc % groups) * per_group + oc / groups;
        y[e] = x[(b * c + ic) * plane + p];
    }
}

static bool shuffle_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_CHANNEL_SHUFFLE && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status shuffle_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const int64_t total = jp_tensor_numel(&step->out), c = step->in[0].dims[1];
    const int64_t plane = step->in[0].dims[2] * step->in[0].dims[3], groups = step->op->attrs.channel_shuffle.groups;
    const int64_t want = (total + JP_CUDA_THREADS - 1) / JP_CUDA_THREADS;
    const unsigned int blocks = (unsigned int)(want < 65535 ? want : 65535);
    shuffle_elements<<<blocks, JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(step->in[0].data, step->out.data, total, c,
                                                                       plane, groups, c / groups);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    return jp_error_prefix(err, "%s (cuda/channel_shuffle/direct): ", step->op->name);
}

extern "C" const jp_kernel jp_cuda_channel_shuffle_direct = {
    /* name         */ "cuda/channel_shuffle/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CHANNEL_SHUFFLE,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ shuffle_supports,
    /* prepare      */ NULL,
    /* run          */ shuffle_run,
    /* release      */ NULL,
};
