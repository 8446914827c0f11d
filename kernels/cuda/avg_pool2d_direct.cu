/*
 * avg_pool2d_direct.cu: "cuda/avg_pool2d/direct", as torch.nn.AvgPool2d (no
 * divisor_override), one thread per output cell; the window and divisor as
 * the CPU reference computes them (kernels/cpu/avg_pool2d_reference.c:
 * count_include_pad divides by the window clipped to input + padding).
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

typedef struct avg_geometry {
    int64_t cells; /* n * c * oh * ow */
    int h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    bool count_include_pad;
} avg_geometry;

static __global__ void avg_pool_kernel(const float *__restrict__ x, float *__restrict__ y, avg_geometry g)
{
    JP_CUDA_FOR(cell, g.cells) {
        const int ox = (int)(cell % g.ow), oy = (int)(cell / g.ow % g.oh);
        const int64_t plane = cell / ((int64_t)g.ow * g.oh);
        int y0 = oy * g.sh - g.ph, y1 = min(y0 + g.kh, g.h + g.ph);
        int x0 = ox * g.sw - g.pw, x1 = min(x0 + g.kw, g.w + g.pw);
        const int padded = (y1 - y0) * (x1 - x0);
        y0 = max(y0, 0), y1 = min(y1, g.h), x0 = max(x0, 0), x1 = min(x1, g.w);
        const float *x_p = x + plane * g.h * g.w;
        float sum = 0.0f;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++)
                sum += x_p[(int64_t)yy * g.w + xx];
        const int divisor = g.count_include_pad ? padded : (y1 - y0) * (x1 - x0);
        y[cell] = divisor > 0 && y1 > y0 && x1 > x0 ? sum / (float)divisor : 0.0f;
    }
}

static bool avg_pool_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_AVG_POOL2D || !jp_cuda_step_on_device(step) || !jp_cuda_no_fusion(step) ||
        step->n_in != 1)
        return false;
    const jp_avg_pool2d_attrs *a = &op->attrs.avg_pool2d;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (in->rank != 4 || out->rank != 4 || 2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w ||
        in->dims[2] > INT32_MAX / 2 || in->dims[3] > INT32_MAX / 2)
        return false;
    return out->dims[0] == in->dims[0] && out->dims[1] == in->dims[1] &&
           out->dims[2] == jp_cuda_window_out_size(in->dims[2], a->kernel_h, a->stride_h, a->pad_h, 1, a->ceil_mode) &&
           out->dims[3] == jp_cuda_window_out_size(in->dims[3], a->kernel_w, a->stride_w, a->pad_w, 1, a->ceil_mode) &&
           out->dims[2] > 0 && out->dims[3] > 0;
}

static jp_status avg_pool_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_avg_pool2d_attrs *a = &step->op->attrs.avg_pool2d;
    avg_geometry g;
    g.cells = jp_tensor_numel(&step->out);
    g.h = (int)step->in[0].dims[2], g.w = (int)step->in[0].dims[3];
    g.oh = (int)step->out.dims[2], g.ow = (int)step->out.dims[3];
    g.kh = a->kernel_h, g.kw = a->kernel_w, g.sh = a->stride_h, g.sw = a->stride_w;
    g.ph = a->pad_h, g.pw = a->pad_w, g.count_include_pad = a->count_include_pad;
    avg_pool_kernel<<<jp_cuda_blocks(g.cells), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(step->in[0].data,
                                                                                     step->out.data, g);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    return jp_error_prefix(err, "%s (cuda/avg_pool2d/direct): ", step->op->name);
}

extern "C" const jp_kernel jp_cuda_avg_pool2d_direct = {
    /* name         */ "cuda/avg_pool2d/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_AVG_POOL2D,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ avg_pool_supports,
    /* prepare      */ NULL,
    /* run          */ avg_pool_run,
    /* release      */ NULL,
};
