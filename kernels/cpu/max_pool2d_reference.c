/*
 * max_pool2d_reference.c: cpu/max_pool2d/reference, max pooling as
 * torch.nn.MaxPool2d: implicit -inf padding, dilation, ceil_mode (a last
 * window that starts in the right/bottom padding is dropped, as PyTorch
 * does).  NaN propagates, as in PyTorch.
 *
 * Per output row the window rows are scanned once each, kx outside and the
 * output columns inside, with the valid column range computed up front, so
 * the inner loop has no bounds test and vectorises.
 */
#include "cpu_internal.h"

/* Output columns per pass of the inner loop (an accumulator row on the
 * stack). */
#define POOL_CHUNK 256

/* PyTorch's pooling_output_shape. */
static int64_t pool_out_size(int64_t in, int k, int s, int p, int d, bool ceil_mode)
{
    int64_t num = in + 2 * (int64_t)p - (int64_t)d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    if (num < 0)
        return 0;
    int64_t out = num / s + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static bool maxpool_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_MAX_POOL2D || !jp_cpu_step_on_cpu(step) ||
        !jp_cpu_no_fusion(step) || step->n_in != 1)
        return false;
    const jp_max_pool2d_attrs *a = &op->attrs.max_pool2d;
    if (a->kernel_h <= 0 || a->kernel_w <= 0 || a->stride_h <= 0 || a->stride_w <= 0 ||
        a->dilation_h <= 0 || a->dilation_w <= 0 || a->pad_h < 0 || a->pad_w < 0 ||
        2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w)
        return false;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    if (in->rank != 4 || out->rank != 4 || in->dims[0] <= 0 || in->dims[1] <= 0)
        return false;
    int64_t oh = pool_out_size(in->dims[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h,
                               a->ceil_mode);
    int64_t ow = pool_out_size(in->dims[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w,
                               a->ceil_mode);
    return oh > 0 && ow > 0 && out->dims[0] == in->dims[0] && out->dims[1] == in->dims[1] &&
           out->dims[2] == oh && out->dims[3] == ow;
}

static jp_status maxpool_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
    const float *x = step->in[0].data; /* [n, c, h, w]   */
    float *y = step->out.data;         /* [n, c, oh, ow] */
    const int64_t planes = step->in[0].dims[0] * step->in[0].dims[1];
    const int64_t h = step->in[0].dims[2], w = step->in[0].dims[3];
    const int64_t oh = step->out.dims[2], ow = step->out.dims[3];
    const int sw = a->stride_w;
#pragma omp parallel for schedule(static) if (planes * h * w >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x_p = x + pl * h * w;
        for (int64_t oy = 0; oy < oh; oy++) {
            for (int64_t ox0 = 0; ox0 < ow; ox0 += POOL_CHUNK) {
                const int64_t cnt = ow - ox0 < POOL_CHUNK ? ow - ox0 : POOL_CHUNK;
                float m[POOL_CHUNK];
                for (int64_t j = 0; j < cnt; j++)
                    m[j] = -INFINITY;
                for (int ky = 0; ky < a->kernel_h; ky++) {
                    const int64_t iy = oy * a->stride_h - a->pad_h + (int64_t)ky * a->dilation_h;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *row = x_p + iy * w;
                    for (int kx = 0; kx < a->kernel_w; kx++) {
                        /* ix = (ox0 + j) * sw + ix0 must lie in [0, w). */
                        const int64_t ix0 = ox0 * sw - a->pad_w + (int64_t)kx * a->dilation_w;
                        int64_t j_lo = ix0 < 0 ? (-ix0 + sw - 1) / sw : 0;
                        int64_t j_hi = ix0 <= w - 1 ? (w - 1 - ix0) / sw + 1 : 0;
                        if (j_hi > cnt)
                            j_hi = cnt;
                        for (int64_t j = j_lo; j < j_hi; j++) {
                            const float v = row[ix0 + j * sw];
                            m[j] = (v > m[j] || v != v) ? v : m[j];
                        }
                    }
                }
                memcpy(y + (pl * oh + oy) * ow + ox0, m, (size_t)cnt * sizeof(float));
            }
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_max_pool2d_reference = {
    .name = "cpu/max_pool2d/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_MAX_POOL2D,
    .is_reference = true,
    .priority = 0,
    .supports = maxpool_supports,
    .run = maxpool_run,
};
