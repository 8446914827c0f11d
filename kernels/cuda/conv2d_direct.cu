/*
 * conv2d_direct.cu: "cuda/conv2d/direct", a hand-written direct convolution:
 * one thread per output element, the textbook loop nest over the input
 * channels of its group and the kernel window.  Any stride, padding,
 * dilation and groups; bias (with a batch-norm folded in, as cuda/conv2d/cudnn
 * folds it) and activation applied before the one store.
 *
 * It exists to be simple and correct (a second opinion on cuDNN and a
 * fallback), not fast: priority below cuda/conv2d/cudnn.
 */
#include "cuda_context.h"

#include <stdlib.h>

typedef struct conv_direct_state {
    float *w;    /* device [c_out, c_in/groups, kh, kw], BN folded */
    float *bias; /* device [c_out], or NULL                        */
} conv_direct_state;

typedef struct conv_geometry {
    int n, c_in, h, w;       /* input  [n, c_in, h, w]    */
    int c_out, oh, ow;       /* output [n, c_out, oh, ow] */
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int cg_in, cg_out;       /* channels per group        */
} conv_geometry;

static __global__ void conv2d_direct_kernel(const float *__restrict__ x,
                                            const float *__restrict__ wt,
                                            const float *__restrict__ bias, float *__restrict__ y,
                                            conv_geometry g, jp_activation act)
{
    const int64_t total = (int64_t)g.n * g.c_out * g.oh * g.ow;

    JP_CUDA_FOR(i, total) {
        const int ox = (int)(i % g.ow);
        const int oy = (int)(i / g.ow % g.oh);
        const int co = (int)(i / ((int64_t)g.ow * g.oh) % g.c_out);
        const int b = (int)(i / ((int64_t)g.ow * g.oh * g.c_out));
        const int group = co / g.cg_out;
        const float *w_co = wt + (int64_t)co * g.cg_in * g.kh * g.kw;
        float acc = bias ? bias[co] : 0.0f;

        for (int ci = 0; ci < g.cg_in; ci++) {
            const float *x_c = x + ((int64_t)b * g.c_in + (int64_t)group * g.cg_in + ci) * g.h * g.w;
            const float *w_c = w_co + (int64_t)ci * g.kh * g.kw;
            for (int ky = 0; ky < g.kh; ky++) {
                const int iy = oy * g.stride_h - g.pad_h + ky * g.dil_h;
                if (iy < 0 || iy >= g.h)
                    continue;
                for (int kx = 0; kx < g.kw; kx++) {
                    const int ix = ox * g.stride_w - g.pad_w + kx * g.dil_w;
                    if (ix < 0 || ix >= g.w)
                        continue;
                    acc = fmaf(w_c[ky * g.kw + kx], x_c[(int64_t)iy * g.w + ix], acc);
                }
            }
        }
        y[i] = jp_cuda_activate(acc, act);
    }
}

static bool conv_direct_supports(const jp_step *step) { return jp_cuda_conv_step_ok(step); }

static void conv_direct_release(void *state_ptr)
{
    conv_direct_state *s = (conv_direct_state *)state_ptr;

    if (!s)
        return;
    if (s->w)
        cudaFree(s->w);
    if (s->bias)
        cudaFree(s->bias);
    free(s);
}

static jp_status conv_direct_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    conv_direct_state *s;

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        return jp_error_prefix(err, "%s (cuda/conv2d/direct prepare): ", step->op->name);
    s = (conv_direct_state *)calloc(1, sizeof *s);
    if (!s)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: no host memory for the conv state",
                            step->op->name);
    if (jp_cuda_conv_params_upload(step, false, &s->w, &s->bias, err) != JP_OK) {
        conv_direct_release(s);
        return jp_error_prefix(err, "%s (cuda/conv2d/direct prepare): ", step->op->name);
    }
    *state_out = s;
    return JP_OK;
}

static jp_status conv_direct_run(void *state, const jp_step *step, jp_error *err)
{
    const conv_direct_state *s = (const conv_direct_state *)state;
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    conv_geometry g;
    int64_t total = jp_tensor_numel(y);

    g.n = (int)x->dims[0];
    g.c_in = (int)x->dims[1];
    g.h = (int)x->dims[2];
    g.w = (int)x->dims[3];
    g.c_out = (int)y->dims[1];
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
    g.cg_in = a->c_in / a->groups;
    g.cg_out = a->c_out / a->groups;
    conv2d_direct_kernel<<<jp_cuda_blocks(total), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        x->data, s->w, s->bias, y->data, g, step->act);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/conv2d/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_conv2d_direct = {
    /* name         */ "cuda/conv2d/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CONV2D,
    /* is_reference */ false,
    /* priority     */ 10,
    /* supports     */ conv_direct_supports,
    /* prepare      */ conv_direct_prepare,
    /* run          */ conv_direct_run,
    /* release      */ conv_direct_release,
};
