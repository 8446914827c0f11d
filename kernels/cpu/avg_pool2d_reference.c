/*
 * avg_pool2d_reference.c: cpu/avg_pool2d/reference, as torch.nn.AvgPool2d
 * (no divisor_override): output (oy, ox) averages the window rows
 * [oy*s - p, oy*s - p + k) and the columns likewise, clipped to the input.
 * The divisor is PyTorch's (aten/src/ATen/native/cpu/AvgPoolKernel.cpp):
 * with count_include_pad, the window clipped to input + padding (so a
 * ceil_mode window hanging past the padding counts only up to it); without,
 * the cells inside the input.  Sums in double.
 */
#include "cpu_internal.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Output size along one axis, PyTorch's rule (jp_ops.c's, repeated so that
 * supports() checks the shape it is given). */
static int64_t avg_out(int64_t in, int k, int s, int p, bool ceil_mode)
{
    const int64_t num = in + 2 * (int64_t)p - k;
    if (num < 0)
        return 0;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static bool avg_pool_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_AVG_POOL2D || !jp_cpu_step_on_cpu(step) || !jp_cpu_no_fusion(step) ||
        step->n_in != 1)
        return false;
    const jp_avg_pool2d_attrs *a = &op->attrs.avg_pool2d;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (a->kernel_h < 1 || a->kernel_w < 1 || a->stride_h < 1 || a->stride_w < 1 || a->pad_h < 0 ||
        a->pad_w < 0 || 2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w || in->rank != 4 ||
        out->rank != 4 || in->dims[0] < 1 || in->dims[1] < 1)
        return false;
    return out->dims[0] == in->dims[0] && out->dims[1] == in->dims[1] &&
           out->dims[2] == avg_out(in->dims[2], a->kernel_h, a->stride_h, a->pad_h, a->ceil_mode) &&
           out->dims[3] == avg_out(in->dims[3], a->kernel_w, a->stride_w, a->pad_w, a->ceil_mode) &&
           out->dims[2] > 0 && out->dims[3] > 0;
}

static jp_status avg_pool_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const jp_avg_pool2d_attrs *a = &step->op->attrs.avg_pool2d;
    const float *x = step->in[0].data; /* [n, c, h, w]   */
    float *y = step->out.data;         /* [n, c, oh, ow] */
    const int64_t planes = step->in[0].dims[0] * step->in[0].dims[1];
    const int64_t h = step->in[0].dims[2], w = step->in[0].dims[3];
    const int64_t oh = step->out.dims[2], ow = step->out.dims[3];
#pragma omp parallel for schedule(static) if (planes * h * w >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x_p = x + pl * h * w;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t y0 = oy * a->stride_h - a->pad_h, y1 = min64(y0 + a->kernel_h, h + a->pad_h);
            const int64_t rows_padded = y1 - y0;
            y0 = max64(y0, 0), y1 = min64(y1, h);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t x0 = ox * a->stride_w - a->pad_w, x1 = min64(x0 + a->kernel_w, w + a->pad_w);
                const int64_t cols_padded = x1 - x0;
                x0 = max64(x0, 0), x1 = min64(x1, w);
                double sum = 0.0;
                for (int64_t yy = y0; yy < y1; yy++)
                    for (int64_t xx = x0; xx < x1; xx++)
                        sum += x_p[yy * w + xx];
                const int64_t divisor = a->count_include_pad ? rows_padded * cols_padded : (y1 - y0) * (x1 - x0);
                y[(pl * oh + oy) * ow + ox] = divisor > 0 ? (float)(sum / (double)divisor) : 0.0f;
            }
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_avg_pool2d_reference = {
    .name = "cpu/avg_pool2d/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_AVG_POOL2D,
    .is_reference = true,
    .priority = 0,
    .supports = avg_pool_supports,
    .run = avg_pool_run,
};
