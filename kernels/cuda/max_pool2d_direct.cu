/*
 * max_pool2d_direct.cu: "cuda/max_pool2d/direct", max pooling as
 * torch.nn.MaxPool2d, hand-written: one thread per output cell; any kernel,
 * stride, padding (implicit -inf), dilation and ceil_mode (the output shape
 * decides how many windows there are; a window is clipped to the input).
 * NaN propagates, as in PyTorch.  The fallback for what cuDNN pooling cannot
 * do (dilation, a ceil_mode that adds a window); priority below
 * cuda/max_pool2d/cudnn.
 */
#include "cuda_context.h"

#include <math.h>

typedef struct pool_geometry {
    int64_t planes;          /* n * c              */
    int h, w, oh, ow;
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
} pool_geometry;

static __global__ void max_pool2d_kernel(const float *__restrict__ x, float *__restrict__ y,
                                         pool_geometry g)
{
    const int64_t total = g.planes * g.oh * g.ow;

    JP_CUDA_FOR(i, total) {
        const int ox = (int)(i % g.ow);
        const int oy = (int)(i / g.ow % g.oh);
        const int64_t plane = i / ((int64_t)g.ow * g.oh);
        const float *x_p = x + plane * g.h * g.w;
        float m = -INFINITY;

        for (int ky = 0; ky < g.kh; ky++) {
            const int iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
            if (iy < 0 || iy >= g.h)
                continue;
            for (int kx = 0; kx < g.kw; kx++) {
                const int ix = ox * g.stride_w - g.pad_w + kx * g.dil_w;
                if (ix < 0 || ix >= g.w)
                    continue;
                const float v = x_p[(int64_t)iy * g.w + ix];
                m = (v > m || v != v) ? v : m;
            }
        }
        y[i] = m;
    }
}

static bool maxpool_direct_supports(const jp_step *step) { return jp_cuda_maxpool_step_ok(step); }

static jp_status maxpool_direct_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    pool_geometry g;

    (void)state;
    g.planes = x->dims[0] * x->dims[1];
    g.h = (int)x->dims[2];
    g.w = (int)x->dims[3];
    g.oh = (int)y->dims[2];
    g.ow = (int)y->dims[3];
    g.kh = a->kernel_h;
    g.kw = a->kernel_w;
    g.stride_h = a->stride_h;
    g.stride_w = a->stride_w;
    g.pad_h = a->pad_h;
    g.pad_w = a->pad_w;
    g.dil_h = a->dilation_h;
    g.dil_w = a->dilation_w;
    max_pool2d_kernel<<<jp_cuda_blocks(jp_tensor_numel(y)), JP_CUDA_THREADS, 0,
                        jp_cuda_stream()>>>(x->data, y->data, g);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/max_pool2d/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_max_pool2d_direct = {
    /* name         */ "cuda/max_pool2d/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_MAX_POOL2D,
    /* is_reference */ false,
    /* priority     */ 10,
    /* supports     */ maxpool_direct_supports,
    /* prepare      */ NULL,
    /* run          */ maxpool_direct_run,
    /* release      */ NULL,
};
