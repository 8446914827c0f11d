/*
 * conv2d_reference.c: cpu/conv2d/reference, the naive direct convolution
 * every other convolution is tested against.
 *
 * Any stride, padding, dilation and groups.  A fused batch norm is applied
 * as PyTorch's BatchNorm2d does, after the convolution (not folded into the
 * weights), then the activation.  Sums are accumulated in double so that
 * the reference is closer to the exact result than any float kernel.
 * Parallel over (image, output channel) only, so that the loop nest stays
 * the textbook one.
 */
#include "cpu_internal.h"

#include <omp.h>

static bool conv_ref_supports(const jp_step *step) { return jp_cpu_conv_step_ok(step); }

static jp_status conv_ref_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_op *op = step->op, *bn = step->fused_bn;
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    const float *x = step->in[0].data;   /* [n, c_in, h, w]             */
    float *y = step->out.data;           /* [n, c_out, oh, ow]          */
    const float *wt = op->params[JP_PARAM_WEIGHT].data; /* [c_out, c_in/g, kh, kw] */
    const float *bias = a->has_bias ? op->params[JP_PARAM_BIAS].data : NULL; /* [c_out] */
    if (!wt || (a->has_bias && !bias))
        return jp_error_set(err, JP_ERR_MISSING, "%s: parameters not bound", op->name);
    const float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
    float eps = 0.0f;
    if (bn) {
        gamma = bn->params[JP_PARAM_WEIGHT].data;
        beta = bn->params[JP_PARAM_BIAS].data;
        mean = bn->params[JP_PARAM_MEAN].data;
        var = bn->params[JP_PARAM_VAR].data;
        eps = bn->attrs.batch_norm2d.eps;
        if (!gamma || !beta || !mean || !var)
            return jp_error_set(err, JP_ERR_MISSING, "%s: parameters not bound", bn->name);
    }
    const int64_t n = step->in[0].dims[0], h = step->in[0].dims[2], w = step->in[0].dims[3];
    const int64_t oh = step->out.dims[2], ow = step->out.dims[3];
    const int c_in = a->c_in, c_out = a->c_out;
    const int cg_in = c_in / a->groups, cg_out = c_out / a->groups;
    const int kh = a->kernel_h, kw = a->kernel_w;
    const jp_activation act = step->act;

#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int64_t i = 0; i < n; i++) {
        for (int co = 0; co < c_out; co++) {
            const int g = co / cg_out;
            const float *w_co = wt + (int64_t)co * cg_in * kh * kw;
            float *y_co = y + (i * c_out + co) * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++) {
                for (int64_t ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < cg_in; ci++) {
                        const float *x_c = x + (i * c_in + (int64_t)g * cg_in + ci) * h * w;
                        for (int ky = 0; ky < kh; ky++) {
                            int64_t iy = oy * a->stride_h - a->pad_h + (int64_t)ky * a->dilation_h;
                            if (iy < 0 || iy >= h)
                                continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int64_t ix =
                                    ox * a->stride_w - a->pad_w + (int64_t)kx * a->dilation_w;
                                if (ix < 0 || ix >= w)
                                    continue;
                                acc += (double)w_co[((int64_t)ci * kh + ky) * kw + kx] *
                                       x_c[iy * w + ix];
                            }
                        }
                    }
                    float v = (float)acc;
                    if (bn)
                        v = (v - mean[co]) / sqrtf(var[co] + eps) * gamma[co] + beta[co];
                    y_co[oy * ow + ox] = jp_cpu_act_libm(v, act);
                }
            }
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_conv2d_reference = {
    .name = "cpu/conv2d/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = true,
    .priority = 0,
    .supports = conv_ref_supports,
    .prepare = NULL,
    .run = conv_ref_run,
    .release = NULL,
};
