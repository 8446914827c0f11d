/*
 * linear_cublas.cu: "cuda/linear/cublas", y[n, out] = x[n, in] W[out, in]^T + b,
 * then an optional ReLU, through cuBLAS.
 *
 * cuBLAS is column-major.  The row-major W [out, in] is, read column-major,
 * the matrix W^T [in, out] with leading dimension in; likewise x is x^T
 * [in, n] and y is y^T [out, n].  So y^T = W x^T is
 *     n == 1:  cublasSgemv(OP_T, m=in, n=out, A=W, lda=in, x, y)
 *     n > 1:   cublasSgemm(OP_T, OP_N, m=out, n=n, k=in, A=W, lda=in, B=x, ldb=in, C=y, ldc=out)
 * with no copy or transpose of the weights.  The bias and the ReLU follow
 * in one small kernel (jp_cuda_bias_act over [n, out, 1]).  The handle's
 * math mode is CUBLAS_DEFAULT_MATH (FP32, no TF32; cuda_backend.cu).
 * The input may have any rank whose trailing dimensions multiply to
 * in_features (what flatten produces).
 */
#include "cuda_context.h"

#include <stdlib.h>

typedef struct linear_state {
    float *w;    /* device [out, in] */
    float *bias; /* device [out], or NULL */
} linear_state;

static bool linear_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    const jp_linear_attrs *a;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    const jp_param *w, *b;
    bool rows_ok;

    if (!op || op->type != JP_OP_LINEAR || step->n_in != 1 || !jp_cuda_step_on_device(step) ||
        step->fused_bn != NULL || !jp_cuda_act_ok(step->act))
        return false;
    a = &op->attrs.linear;
    if (a->in_features <= 0 || a->out_features <= 0 || x->rank < 2 || x->dims[0] <= 0)
        return false;
    /* [n, ...] -> [n, out], or [..., in] -> [..., out] (a row per pixel: ConvNeXt). */
    rows_ok = jp_tensor_numel(x) == x->dims[0] * a->in_features && y->rank == 2 &&
              y->dims[0] == x->dims[0] && y->dims[1] == a->out_features;
    if (!rows_ok && x->rank == y->rank && x->dims[x->rank - 1] == a->in_features &&
        y->dims[y->rank - 1] == a->out_features) {
        rows_ok = true;
        for (int d = 0; d + 1 < x->rank; d++)
            rows_ok = rows_ok && x->dims[d] == y->dims[d];
    }
    if (!rows_ok || jp_tensor_numel(y) / a->out_features > INT32_MAX)
        return false;
    w = &op->params[JP_PARAM_WEIGHT];
    b = &op->params[JP_PARAM_BIAS];
    if (op->n_params < (a->has_bias ? 2 : 1) || w->rank != 2 || w->dims[0] != a->out_features ||
        w->dims[1] != a->in_features)
        return false;
    return !a->has_bias || (b->rank == 1 && b->dims[0] == a->out_features);
}

static void linear_release(void *state_ptr)
{
    linear_state *s = (linear_state *)state_ptr;

    if (!s)
        return;
    if (s->w)
        cudaFree(s->w);
    if (s->bias)
        cudaFree(s->bias);
    free(s);
}

static jp_status linear_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    const jp_op *op = step->op;
    const jp_linear_attrs *a = &op->attrs.linear;
    const jp_param *w = &op->params[JP_PARAM_WEIGHT];
    const jp_param *b = a->has_bias ? &op->params[JP_PARAM_BIAS] : NULL;
    linear_state *s = NULL;

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    if (!w->data || (b && !b->data)) {
        jp_error_set(err, JP_ERR_MISSING, "%s not bound to weight data",
                     !w->data ? w->name : b->name);
        goto fail;
    }
    s = (linear_state *)calloc(1, sizeof *s);
    if (!s) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the linear state");
        goto fail;
    }
    if (jp_cuda_upload_floats(w->data, (int64_t)a->out_features * a->in_features, &s->w, err) !=
        JP_OK)
        goto fail;
    if (b && jp_cuda_upload_floats(b->data, a->out_features, &s->bias, err) != JP_OK)
        goto fail;
    *state_out = s;
    return JP_OK;
fail:
    linear_release(s);
    jp_error_prefix(err, "%s (cuda/linear/cublas prepare): ", op->name);
    return jp_cuda_fail_status(err);
}

static jp_status linear_run(void *state, const jp_step *step, jp_error *err)
{
    const linear_state *s = (const linear_state *)state;
    const jp_linear_attrs *a = &step->op->attrs.linear;
    const float *x = step->in[0].data; /* [n, in]  */
    float *y = step->out.data;         /* [n, out] */
    const int n = (int)(jp_tensor_numel(&step->out) / a->out_features);
    const float one = 1.0f, zero = 0.0f;
    cublasHandle_t h = jp_cuda_cublas();

    if (n == 1)
        JP_CUDA_CHECK(err, cublasSgemv(h, CUBLAS_OP_T, a->in_features, a->out_features, &one,
                                       s->w, a->in_features, x, 1, &zero, y, 1));
    else
        JP_CUDA_CHECK(err, cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, a->out_features, n,
                                       a->in_features, &one, s->w, a->in_features, x,
                                       a->in_features, &zero, y, a->out_features));
    if (jp_cuda_bias_act(y, s->bias, n, a->out_features, 1, step->act, err) != JP_OK)
        goto fail;
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuda/linear/cublas): ", step->op->name);
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_linear_cublas = {
    /* name         */ "cuda/linear/cublas",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_LINEAR,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ linear_supports,
    /* prepare      */ linear_prepare,
    /* run          */ linear_run,
    /* release      */ linear_release,
};
