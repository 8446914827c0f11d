/*
 * adaptive_avg_pool2d_reference.c: cpu/adaptive_avg_pool2d/reference, as
 * torch.nn.AdaptiveAvgPool2d: output cell (i, j) averages input rows
 * [floor(i*h/oh), ceil((i+1)*h/oh)) and the same for columns, so bins may
 * overlap and, when the output is larger than the input, repeat inputs
 * (AlexNet's 6x6 pool on a small image).  The global case (1x1 output) is a
 * mean per plane.
 */
#include "cpu_internal.h"

static bool avgpool_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    if (!op || op->type != JP_OP_ADAPTIVE_AVG_POOL2D || !jp_cpu_step_on_cpu(step) ||
        !jp_cpu_no_fusion(step) || step->n_in != 1)
        return false;
    const jp_adaptive_avg_pool2d_attrs *a = &op->attrs.adaptive_avg_pool2d;
    const jp_tensor *in = &step->in[0], *out = &step->out;
    return a->out_h > 0 && a->out_w > 0 && in->rank == 4 && out->rank == 4 && in->dims[0] > 0 &&
           in->dims[1] > 0 && in->dims[2] > 0 && in->dims[3] > 0 &&
           out->dims[0] == in->dims[0] && out->dims[1] == in->dims[1] &&
           out->dims[2] == a->out_h && out->dims[3] == a->out_w;
}

static jp_status avgpool_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const float *x = step->in[0].data; /* [n, c, h, w]   */
    float *y = step->out.data;         /* [n, c, oh, ow] */
    const int64_t planes = step->in[0].dims[0] * step->in[0].dims[1];
    const int64_t h = step->in[0].dims[2], w = step->in[0].dims[3];
    const int64_t oh = step->out.dims[2], ow = step->out.dims[3];
#pragma omp parallel for schedule(static) if (planes * h * w >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x_p = x + pl * h * w;
        float *y_p = y + pl * oh * ow;
        if (oh == 1 && ow == 1) {
            /* 16 partial sums: the loop vectorises without reassociation
             * (EfficientNet's squeeze-excitation pools big planes). */
            float part[16] = {0};
            const int64_t hw = h * w, body = hw / 16 * 16;
            for (int64_t i = 0; i < body; i += 16)
                for (int k = 0; k < 16; k++)
                    part[k] += x_p[i + k];
            float sum = 0.0f;
            for (int k = 0; k < 16; k++)
                sum += part[k];
            for (int64_t i = body; i < hw; i++)
                sum += x_p[i];
            y_p[0] = sum / (float)hw;
            continue;
        }
        for (int64_t i = 0; i < oh; i++) {
            const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
            for (int64_t j = 0; j < ow; j++) {
                const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
                float sum = 0.0f;
                for (int64_t yy = y0; yy < y1; yy++)
                    for (int64_t xx = x0; xx < x1; xx++)
                        sum += x_p[yy * w + xx];
                y_p[i * ow + j] = sum / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
    return JP_OK;
}

const jp_kernel jp_cpu_adaptive_avg_pool2d_reference = {
    .name = "cpu/adaptive_avg_pool2d/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_ADAPTIVE_AVG_POOL2D,
    .is_reference = true,
    .priority = 0,
    .supports = avgpool_supports,
    .run = avgpool_run,
};
