/*
 * layer_scale_direct.cu: "cuda/layer_scale/direct", ConvNeXt's layer scale,
 * y[n, c, h, w] = x[n, c, h, w] * weight[c], the weight uploaded in prepare.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

static __global__ void layer_scale_kernel(float *y, const float *x, const float *w, int64_t n, int64_t hw,
                                          int64_t channels)
{
    JP_CUDA_FOR(i, n) {
        y[i] = x[i] * w[(i / hw) % channels];
    }
}

static bool layer_scale_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_LAYER_SCALE && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) && op->n_params == 1 &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static void layer_scale_release(void *state) { cudaFree(state); }

static jp_status layer_scale_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_op *op = step->op;
    float *w = NULL;

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    if (!op->params[JP_PARAM_WEIGHT].data) {
        jp_error_set(err, JP_ERR_MISSING, "%s not bound to weight data", op->params[JP_PARAM_WEIGHT].name);
        goto fail;
    }
    if (jp_cuda_upload_floats(op->params[JP_PARAM_WEIGHT].data, op->attrs.layer_scale.channels, &w, err) != JP_OK)
        goto fail;
    *state_out = w;
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/layer_scale/direct prepare): ", op->name);
    return jp_cuda_fail_status(err);
}

static jp_status layer_scale_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_tensor *x = &step->in[0];
    const int64_t n = jp_tensor_numel(&step->out);

    layer_scale_kernel<<<jp_cuda_blocks(n), JP_CUDA_THREADS, 0, jp_cuda_stream()>>>(
        step->out.data, x->data, (const float *)state, n, x->dims[2] * x->dims[3], x->dims[1]);
    JP_CUDA_CHECK(err, cudaGetLastError());
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/layer_scale/direct): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_layer_scale_direct = {
    /* name         */ "cuda/layer_scale/direct",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_LAYER_SCALE,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ layer_scale_supports,
    /* prepare      */ layer_scale_prepare,
    /* run          */ layer_scale_run,
    /* release      */ layer_scale_release,
};
