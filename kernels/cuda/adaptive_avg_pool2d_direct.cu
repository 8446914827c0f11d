/*
 * adaptive_avg_pool2d_direct.cu: "cuda/adaptive_avg_pool2d/direct", as
 * torch.nn.AdaptiveAvgPool2d: output cell (i, j) averages input rows
 * [floor(i*h/oh), ceil((i+1)*h/oh)) and the columns likewise, so bins may
 * overlap and, when the output is larger than the input, repeat inputs.
 *
 * Two launches of the same arithmetic, chosen by bin size:
 *   small bins (AlexNet's 13x13 -> 6x6): one thread per output cell;
 *   large bins (the global pools of ResNet, EfficientNet's squeeze-excitation
 *   over planes up to 300x300): one block per output cell, its threads
 *   striding over the bin, then a shared-memory tree reduction; a single
 *   thread summing 90,000 values serially would take milliseconds.
 */
#include "cuda_context.h"

/* Average bin (in elements) from which a block per cell pays off: below it
 * most of a 256-thread block would idle. */
#define BIN_ELEMS_PER_BLOCK_MIN 256

typedef struct avg_geometry {
    int64_t cells;           /* n * c * oh * ow */
    int h, w, oh, ow;
} avg_geometry;

static __device__ __forceinline__ void bin_of(const avg_geometry &g, int64_t cell, int64_t *plane,
                                              int *y0, int *y1, int *x0, int *x1)
{
    const int j = (int)(cell % g.ow);
    const int i = (int)(cell / g.ow % g.oh);

    *plane = cell / ((int64_t)g.ow * g.oh);
    *y0 = (int)((int64_t)i * g.h / g.oh);
    *y1 = (int)(((int64_t)(i + 1) * g.h + g.oh - 1) / g.oh);
    *x0 = (int)((int64_t)j * g.w / g.ow);
    *x1 = (int)(((int64_t)(j + 1) * g.w + g.ow - 1) / g.ow);
}

static __global__ void avg_pool_thread_per_cell(const float *__restrict__ x,
                                                float *__restrict__ y, avg_geometry g)
{
    JP_CUDA_FOR(cell, g.cells) {
        int64_t plane;
        int y0, y1, x0, x1;
        float sum = 0.0f;

        bin_of(g, cell, &plane, &y0, &y1, &x0, &x1);
        const float *x_p = x + plane * g.h * g.w;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++)
                sum += x_p[(int64_t)yy * g.w + xx];
        y[cell] = sum / (float)((y1 - y0) * (x1 - x0));
    }
}

static __global__ void avg_pool_block_per_cell(const float *__restrict__ x,
                                               float *__restrict__ y, avg_geometry g)
{
    __shared__ float partial[JP_CUDA_THREADS];

    for (int64_t cell = blockIdx.x; cell < g.cells; cell += gridDim.x) {
        int64_t plane;
        int y0, y1, x0, x1;
        float sum = 0.0f;

        bin_of(g, cell, &plane, &y0, &y1, &x0, &x1);
        const float *x_p = x + plane * g.h * g.w;
        const int bw = x1 - x0, n = (y1 - y0) * bw;
        for (int k = threadIdx.x; k < n; k += blockDim.x)
            sum += x_p[(int64_t)(y0 + k / bw) * g.w + x0 + k % bw];
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half)
                partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0)
            y[cell] = partial[0] / (float)n;
        __syncthreads(); /* partial[] is reused by the next cell */
    }
}

static bool avgpool_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    const jp_adaptive_avg_pool2d_attrs *a;
    const jp_tensor *x = &step->in[0], *y = &step->out;

    if (!op || op->type != JP_OP_ADAPTIVE_AVG_POOL2D || step->n_in != 1 ||
        !jp_cuda_step_on_device(step) || !jp_cuda_no_fusion(step))
        return false;
    a = &op->attrs.adaptive_avg_pool2d;
    return a->out_h > 0 && a->out_w > 0 && x->rank == 4 && y->rank == 4 && x->dims[0] > 0 &&
           x->dims[1] > 0 && x->dims[2] > 0 && x->dims[3] > 0 && y->dims[0] == x->dims[0] &&
           y->dims[1] == x->dims[1] && y->dims[2] == a->out_h && y->dims[3] == a->out_w &&
           x->dims[2] <= INT32_MAX / 2 && x->dims[3] <= INT32_MAX / 2;
}

static jp_status avgpool_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_tensor *x = &step->in[0], *y = &step->out;
    avg_geometry g;
    int64_t bin_elems;

    (void)state;
    g.cells = jp_tensor_numel(y);
    g.h = (int)x->dims[2];
    g.w = (int)x->dims[3];
    g.oh = (int)y->dims[2];
    g.ow = (int)y->dims[3];
    bin_elems = ((int64_t)g.h / g.oh + 1) * ((int64_t)g.w / g.ow + 1);
    if (bin_elems >= BIN_ELEMS_PER_BLOCK_MIN)
        avg_pool_block_per_cell<<<(unsigned int)(g.cells < 65535 ? g.cells : 65535),
                                  JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(x->data, y->data, g);
    else
        avg_pool_thread_per_cell<<<jp_cuda_blocks(g.cells), JP_CUDA_THREADS, 0,
                                   jp_cuda_stream()>>>(x->data, y->data, g);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/adaptive_avg_pool2d/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_adaptive_avg_pool2d_direct = {
    /* name         */ "cuda/adaptive_avg_pool2d/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_ADAPTIVE_AVG_POOL2D,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ avgpool_supports,
    /* prepare      */ NULL,
    /* run          */ avgpool_run,
    /* release      */ NULL,
};
