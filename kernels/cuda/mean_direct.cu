/*
 * mean_direct.cu: "cuda/mean/direct", torch's x.mean(dims) over the last
 * dimensions of an [n, c, h, w] tensor: each of the `outer` outputs averages
 * one contiguous run of `inner` inputs.  One block per output, its threads
 * striding over the run, then a shared-memory tree reduction (as the global
 * average pool of adaptive_avg_pool2d_direct.cu).
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

static __global__ void mean_block_per_output(const float *__restrict__ x, float *__restrict__ y,
                                             int64_t outer, int64_t inner)
{
    __shared__ float partial[JP_CUDA_THREADS];

    for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
        float sum = 0.0f;
        for (int64_t k = threadIdx.x; k < inner; k += blockDim.x)
            sum += x[o * inner + k];
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half)
                partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            y[o] = partial[0] / (float)inner;
        __syncthreads(); /* partial[] is reused by the next output */
    }
}

static bool mean_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_MEAN || !jp_cuda_step_on_device(step) || !jp_cuda_no_fusion(step) ||
        step->n_in != 1 || step->in[0].rank != 4)
        return false;
    const int first = op->attrs.mean.first_dim;
    if (first < 1 || first > 3)
        return false;
    int64_t outer = 1;
    for (int i = 0; i < first; i++)
        outer *= step->in[0].dims[i];
    return outer > 0 && jp_tensor_numel(&step->in[0]) > 0 && jp_tensor_numel(&step->out) == outer;
}

static jp_status mean_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const int64_t outer = jp_tensor_numel(&step->out);
    const int64_t inner = jp_tensor_numel(&step->in[0]) / outer;
    const unsigned int blocks = (unsigned int)(outer < 65535 ? outer : 65535);
    mean_block_per_output<<<blocks, JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(step->in[0].data, step->out.data,
                                                                             outer, inner);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    return jp_error_prefix(err, "%s (cuda/mean/direct): ", step->op->name);
}

extern "C" const jp_kernel jp_cuda_mean_direct = {
    /* name         */ "cuda/mean/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_MEAN,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ mean_supports,
    /* prepare      */ NULL,
    /* run          */ mean_run,
    /* release      */ NULL,
};
