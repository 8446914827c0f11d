/*
 * conv2d_cudnn.cu: "cuda/conv2d/cudnn", a convolution through cuDNN's legacy
 * API, with a folded batch-norm and the activation fused where cuDNN can.
 *
 * prepare (never timed) does all the set-up once per step:
 *   - descriptors: x [n, c_in, h, w], y [n, c_out, oh, ow], filter
 *     [c_out, c_in/groups, kh, kw], groups through cudnnSetConvolutionGroupCount
 *     (depthwise = groups == c_in), cross-correlation as PyTorch;
 *   - math type CUDNN_FMA_MATH: FP32 FMA kernels only, TF32 disabled (on
 *     cuDNN >= 8, CUDNN_DEFAULT_MATH lets Ampere and newer use TF32 tensor
 *     cores for float data, which would miss our 1e-4 tolerance);
 *   - weights uploaded once, batch-norm folded in (cuda_common.cu);
 *   - the algorithm chosen by timing every candidate with
 *     cudnnFindConvolutionForwardAlgorithmEx on scratch buffers of the step's
 *     shapes (never on the step's own buffers: at prepare time the
 *     activation arena may hold live values the trial runs would
 *     overwrite); when the scratch buffers cannot be allocated, by
 *     cudnnGetConvolutionForwardAlgorithm_v7's heuristic instead;
 *   - the workspace of the chosen algorithm allocated once.
 *
 * The epilogue (bias, activation), decided in prepare:
 *   relu (with or without bias)   cudnnConvolutionBiasActivationForward, RELU
 *                                 (a zero bias when the conv has none)
 *   bias, no activation           the same call with IDENTITY when the chosen
 *                                 algorithm is IMPLICIT_PRECOMP_GEMM (the only
 *                                 one cuDNN accepts for IDENTITY), else
 *                                 cudnnConvolutionForward + bias kernel
 *   silu, sigmoid                 cudnnConvolutionForward + bias/act kernel
 *   no bias, no activation        cudnnConvolutionForward alone
 * A fused call that cuDNN refuses in prepare's trial (NOT_SUPPORTED) falls
 * back to the unfused pair.
 *
 * One kernel per forward algorithm, "cuda/conv2d/cudnn_<algo>"
 * (cudnn_implicit_gemm, cudnn_winograd_nonfused, ...), runs that algorithm
 * and no other, for `jplprof compare`: priority 0, so never a default
 * choice.  Their prepare fails with JP_ERR_UNSUPPORTED when cuDNN has no such
 * algorithm for the step (the workspace query or a trial call on scratch
 * buffers refuses it, or it needs more workspace than the budget).
 */
#include "cuda_context.h"

#include <stdlib.h>
#include <string.h>

/* The largest workspace a candidate algorithm may use (and FindEx may be
 * given): 1 GiB, and never more than a quarter of the free device memory,
 * so that prepare cannot starve the activation arena on a Jetson whose
 * 8 GB are shared with the CPU.  FFT algorithms above it are skipped. */
#define CONV_WORKSPACE_LIMIT_BYTES ((size_t)1 << 30)

typedef enum conv_epilogue {
    EPILOGUE_SEPARATE = 0, /* cudnnConvolutionForward, then jp_cuda_bias_act */
    EPILOGUE_CUDNN_FUSED,  /* cudnnConvolutionBiasActivationForward          */
} conv_epilogue;

typedef struct conv_cudnn_state {
    cudnnTensorDescriptor_t x_desc;    /* [n, c_in, h, w]              */
    cudnnTensorDescriptor_t y_desc;    /* [n, c_out, oh, ow]           */
    cudnnTensorDescriptor_t bias_desc; /* [1, c_out, 1, 1]             */
    cudnnFilterDescriptor_t w_desc;    /* [c_out, c_in/groups, kh, kw] */
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnActivationDescriptor_t act_desc; /* RELU or IDENTITY, fused path only */
    cudnnConvolutionFwdAlgo_t algo;
    const char *chosen_by;             /* "timing", "heuristic", "forced" */
    conv_epilogue epilogue;
    jp_activation act;
    float *w;                          /* device [c_out, c_in/groups, kh, kw], BN folded */
    float *bias;                       /* device [c_out], or NULL         */
    void *workspace;                   /* device, workspace_bytes         */
    size_t workspace_bytes;
    int64_t x_dims[4], y_dims[4];      /* the shapes prepared for         */
} conv_cudnn_state;

static const char *algo_name(cudnnConvolutionFwdAlgo_t algo)
{
    switch (algo) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "UNKNOWN";
    }
}

static void conv_cudnn_describe(const void *state, char *buf, size_t buf_bytes)
{
    const conv_cudnn_state *s = (const conv_cudnn_state *)state;

    if (!s) {
        snprintf(buf, buf_bytes, "%s", "");
        return;
    }
    snprintf(buf, buf_bytes, "algo %s (%s), workspace %zu B, %s", algo_name(s->algo), s->chosen_by,
             s->workspace_bytes,
             s->epilogue == EPILOGUE_CUDNN_FUSED ? "bias+activation fused by cuDNN"
             : s->bias || s->act != JP_ACT_NONE  ? "bias/activation kernel after the conv"
                                                 : "no epilogue");
}

static bool conv_cudnn_supports(const jp_step *step)
{
    /* cuDNN serves every geometry the models use; activations beyond relu go
     * through the bias/act kernel. */
    return jp_cuda_conv_step_ok(step);
}

static void conv_cudnn_release(void *state_ptr)
{
    conv_cudnn_state *s = (conv_cudnn_state *)state_ptr;

    if (!s)
        return;
    if (s->x_desc)
        cudnnDestroyTensorDescriptor(s->x_desc);
    if (s->y_desc)
        cudnnDestroyTensorDescriptor(s->y_desc);
    if (s->bias_desc)
        cudnnDestroyTensorDescriptor(s->bias_desc);
    if (s->w_desc)
        cudnnDestroyFilterDescriptor(s->w_desc);
    if (s->conv_desc)
        cudnnDestroyConvolutionDescriptor(s->conv_desc);
    if (s->act_desc)
        cudnnDestroyActivationDescriptor(s->act_desc);
    if (s->w)
        cudaFree(s->w);
    if (s->bias)
        cudaFree(s->bias);
    if (s->workspace)
        cudaFree(s->workspace);
    free(s);
}

/* The workspace budget: CONV_WORKSPACE_LIMIT_BYTES, at most free/4. */
static size_t workspace_limit_bytes(void)
{
    size_t free_bytes = 0, total_bytes = 0;

    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return free_bytes / 4 < CONV_WORKSPACE_LIMIT_BYTES ? free_bytes / 4
                                                       : CONV_WORKSPACE_LIMIT_BYTES;
}

/* TF32 / FP16 tensor-core results are never acceptable for FP32 layers. */
static bool math_is_fp32(cudnnMathType_t math)
{
    return math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* Times every algorithm on scratch x/y (FindEx) and keeps the fastest that
 * succeeded within the workspace budget.  *found is false (and JP_OK
 * returned) when no candidate qualified. */
static jp_status choose_algo_by_timing(conv_cudnn_state *s, const float *x, float *y,
                                       size_t limit_bytes, bool *found, jp_error *err)
{
    cudnnHandle_t h = jp_cuda_cudnn();
    cudnnConvolutionFwdAlgoPerf_t perf[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int max_count = 0, returned = 0;
    size_t need_bytes = 0, find_bytes, bytes;
    void *find_ws = NULL;

    *found = false;
    /* Give FindEx the largest workspace any candidate needs, within budget. */
    JP_CUDA_CHECK(err, cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
    if (max_count > (int)(sizeof perf / sizeof perf[0]))
        max_count = (int)(sizeof perf / sizeof perf[0]);
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; a++) {
        if (cudnnGetConvolutionForwardWorkspaceSize(h, s->x_desc, s->w_desc, s->conv_desc,
                                                    s->y_desc, (cudnnConvolutionFwdAlgo_t)a,
                                                    &bytes) == CUDNN_STATUS_SUCCESS &&
            bytes <= limit_bytes && bytes > need_bytes)
            need_bytes = bytes;
    }
    jp_cudnn_forget_last_error(); /* algorithms that do not apply refused the query */
    find_bytes = need_bytes;
    if (find_bytes > 0 && cudaMalloc(&find_ws, find_bytes) != cudaSuccess) {
        cudaGetLastError();
        find_ws = NULL;
        find_bytes = 0; /* then only workspace-free algorithms compete */
    }
    JP_CUDA_CHECK(err, cudnnFindConvolutionForwardAlgorithmEx(
                           h, s->x_desc, x, s->w_desc, s->w, s->conv_desc, s->y_desc, y,
                           max_count, &returned, perf, find_ws, find_bytes));
    jp_cudnn_forget_last_error(); /* candidates that failed their trial */
    /* perf[] is sorted fastest first. */
    for (int i = 0; i < returned; i++) {
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= find_bytes &&
            math_is_fp32(perf[i].mathType)) {
            s->algo = perf[i].algo;
            *found = true;
            break;
        }
    }
    if (find_ws)
        cudaFree(find_ws);
    return JP_OK;
fail:
    if (find_ws)
        cudaFree(find_ws);
    return jp_cuda_fail_status(err);
}

/* cuDNN's heuristic ranking (no trial runs): the first algorithm that it
 * rates as working within the workspace budget. */
static jp_status choose_algo_by_heuristic(conv_cudnn_state *s, size_t limit_bytes, bool *found,
                                          jp_error *err)
{
    cudnnConvolutionFwdAlgoPerf_t perf[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;

    *found = false;
    JP_CUDA_CHECK(err, cudnnGetConvolutionForwardAlgorithm_v7(
                           jp_cuda_cudnn(), s->x_desc, s->w_desc, s->conv_desc, s->y_desc,
                           (int)(sizeof perf / sizeof perf[0]), &returned, perf));
    for (int i = 0; i < returned; i++) {
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= limit_bytes &&
            math_is_fp32(perf[i].mathType)) {
            s->algo = perf[i].algo;
            *found = true;
            break;
        }
    }
    return JP_OK;
fail:
    return jp_cuda_fail_status(err);
}

/* cuDNN 9 splits a refusal into sub-codes (CUDNN_STATUS_NOT_SUPPORTED_SHAPE,
 * ...): 3000-3999 are "not supported", 2000-2999 "bad parameter". */
static bool cudnn_refused(cudnnStatus_t rc)
{
#if CUDNN_MAJOR >= 9
    return rc >= CUDNN_STATUS_BAD_PARAM && rc < CUDNN_STATUS_INTERNAL_ERROR;
#else
    return rc == CUDNN_STATUS_NOT_SUPPORTED || rc == CUDNN_STATUS_BAD_PARAM;
#endif
}

/* One fused call on scratch buffers: does cuDNN accept it for this
 * algorithm?  *accepted is false when cuDNN refuses it (not supported, bad
 * parameter): the unfused pair computes the same thing.  Other failures
 * are errors. */
static jp_status try_fused(conv_cudnn_state *s, const float *x, float *y, bool *accepted,
                           jp_error *err)
{
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t rc;

    rc = cudnnConvolutionBiasActivationForward(
        jp_cuda_cudnn(), &one, s->x_desc, x, s->w_desc, s->w, s->conv_desc, s->algo,
        s->workspace, s->workspace_bytes, &zero, s->y_desc, y, s->bias_desc, s->bias,
        s->act_desc, s->y_desc, y);
    *accepted = rc == CUDNN_STATUS_SUCCESS;
    if (rc == CUDNN_STATUS_SUCCESS)
        return JP_OK;
    if (cudnn_refused(rc)) {
        jp_cudnn_forget_last_error();
        return JP_OK;
    }
    return jp_cuda_record_error(err, rc, "cudnnConvolutionBiasActivationForward (trial)",
                                __FILE__, __LINE__);
}

/* A forced algorithm on scratch buffers: does cuDNN run it for this step?
 * *runs is false when cuDNN refuses it. */
static jp_status try_forced(conv_cudnn_state *s, const float *x, float *y, bool *runs,
                            jp_error *err)
{
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t rc;

    rc = cudnnConvolutionForward(jp_cuda_cudnn(), &one, s->x_desc, x, s->w_desc, s->w,
                                 s->conv_desc, s->algo, s->workspace, s->workspace_bytes, &zero,
                                 s->y_desc, y);
    *runs = rc == CUDNN_STATUS_SUCCESS;
    if (rc == CUDNN_STATUS_SUCCESS)
        return JP_OK;
    if (cudnn_refused(rc)) {
        jp_cudnn_forget_last_error();
        return JP_OK;
    }
    return jp_cuda_record_error(err, rc, "cudnnConvolutionForward (trial)", __FILE__, __LINE__);
}

/* forced: an algorithm to use (a kernel per algorithm), or -1 to choose the
 * fastest by timing.  kernel_name prefixes errors. */
static jp_status conv_cudnn_prepare_algo(const jp_step *step, int forced, const char *kernel_name,
                                         void **state_out, jp_error *err)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    conv_cudnn_state *s = NULL;
    cudnnHandle_t h;
    int n, c, oh, ow;
    bool has_bias = a->has_bias || step->fused_bn != NULL;
    bool want_fused = step->act == JP_ACT_RELU || (step->act == JP_ACT_NONE && has_bias);
    bool found = false, accepted = false;
    size_t limit_bytes;
    float *scratch_x = NULL, *scratch_y = NULL;
    size_t x_bytes = (size_t)jp_tensor_numel(x) * sizeof(float);
    size_t y_bytes = (size_t)jp_tensor_numel(y) * sizeof(float);

    *state_out = NULL;
    if (jp_cuda_require_ready(err) != JP_OK)
        goto fail;
    h = jp_cuda_cudnn();
    s = (conv_cudnn_state *)calloc(1, sizeof *s);
    if (!s) {
        jp_error_set(err, JP_ERR_NOMEM, "no host memory for the conv state");
        goto fail;
    }
    s->act = step->act;
    memcpy(s->x_dims, x->dims, sizeof s->x_dims);
    memcpy(s->y_dims, y->dims, sizeof s->y_dims);

    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->x_desc));
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->y_desc));
    JP_CUDA_CHECK(err, cudnnCreateTensorDescriptor(&s->bias_desc));
    JP_CUDA_CHECK(err, cudnnCreateFilterDescriptor(&s->w_desc));
    JP_CUDA_CHECK(err, cudnnCreateConvolutionDescriptor(&s->conv_desc));
    JP_CUDA_CHECK(err, cudnnCreateActivationDescriptor(&s->act_desc));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  (int)x->dims[0], (int)x->dims[1],
                                                  (int)x->dims[2], (int)x->dims[3]));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                  (int)y->dims[0], (int)y->dims[1],
                                                  (int)y->dims[2], (int)y->dims[3]));
    JP_CUDA_CHECK(err, cudnnSetTensor4dDescriptor(s->bias_desc, CUDNN_TENSOR_NCHW,
                                                  CUDNN_DATA_FLOAT, 1, a->c_out, 1, 1));
    JP_CUDA_CHECK(err, cudnnSetFilter4dDescriptor(s->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                  a->c_out, a->c_in / a->groups, a->kernel_h,
                                                  a->kernel_w));
    JP_CUDA_CHECK(err, cudnnSetConvolution2dDescriptor(s->conv_desc, a->pad_h, a->pad_w,
                                                       a->stride_h, a->stride_w, a->dilation_h,
                                                       a->dilation_w, CUDNN_CROSS_CORRELATION,
                                                       CUDNN_DATA_FLOAT));
    JP_CUDA_CHECK(err, cudnnSetConvolutionGroupCount(s->conv_desc, a->groups));
#if CUDNN_MAJOR >= 8
    JP_CUDA_CHECK(err, cudnnSetConvolutionMathType(s->conv_desc, CUDNN_FMA_MATH));
#else
    JP_CUDA_CHECK(err, cudnnSetConvolutionMathType(s->conv_desc, CUDNN_DEFAULT_MATH));
#endif
    JP_CUDA_CHECK(err, cudnnSetActivationDescriptor(
                           s->act_desc,
                           step->act == JP_ACT_RELU ? CUDNN_ACTIVATION_RELU
                                                    : CUDNN_ACTIVATION_IDENTITY,
                           CUDNN_PROPAGATE_NAN, 0.0));

    /* cuDNN must agree with the graph on the output shape. */
    JP_CUDA_CHECK(err, cudnnGetConvolution2dForwardOutputDim(s->conv_desc, s->x_desc, s->w_desc,
                                                             &n, &c, &oh, &ow));
    if (n != y->dims[0] || c != y->dims[1] || oh != y->dims[2] || ow != y->dims[3]) {
        jp_error_set(err, JP_ERR_SHAPE,
                     "cuDNN computes output [%d, %d, %d, %d], the graph expects [%lld, %lld, "
                     "%lld, %lld]",
                     n, c, oh, ow, (long long)y->dims[0], (long long)y->dims[1],
                     (long long)y->dims[2], (long long)y->dims[3]);
        goto fail;
    }

    if (jp_cuda_conv_params_upload(step, step->act == JP_ACT_RELU, &s->w, &s->bias, err) !=
        JP_OK)
        goto fail;

    limit_bytes = workspace_limit_bytes();
    if (cudaMalloc((void **)&scratch_x, x_bytes) != cudaSuccess ||
        cudaMalloc((void **)&scratch_y, y_bytes) != cudaSuccess) {
        cudaGetLastError();
        if (scratch_x)
            cudaFree(scratch_x);
        scratch_x = NULL;
        scratch_y = NULL;
    }
    if (scratch_x && scratch_y)
        JP_CUDA_CHECK(err, cudaMemsetAsync(scratch_x, 0, x_bytes, jp_cuda_stream()));
    if (forced >= 0) {
        s->algo = (cudnnConvolutionFwdAlgo_t)forced;
        s->chosen_by = "forced";
        found = cudnnGetConvolutionForwardWorkspaceSize(h, s->x_desc, s->w_desc, s->conv_desc,
                                                        s->y_desc, s->algo,
                                                        &s->workspace_bytes) ==
                CUDNN_STATUS_SUCCESS;
        jp_cudnn_forget_last_error();
        if (!found) {
            jp_error_set(err, JP_ERR_UNSUPPORTED,
                         "cuDNN offers no %s algorithm for this convolution", algo_name(s->algo));
            goto fail;
        }
        if (s->workspace_bytes > limit_bytes) {
            jp_error_set(err, JP_ERR_UNSUPPORTED,
                         "cuDNN's %s needs %zu bytes of workspace, over the %zu-byte budget",
                         algo_name(s->algo), s->workspace_bytes, limit_bytes);
            goto fail;
        }
    } else {
        if (scratch_x && scratch_y &&
            choose_algo_by_timing(s, scratch_x, scratch_y, limit_bytes, &found, err) != JP_OK)
            goto fail;
        s->chosen_by = "fastest by timing";
        if (!found) {
            if (choose_algo_by_heuristic(s, limit_bytes, &found, err) != JP_OK)
                goto fail;
            s->chosen_by = "cuDNN heuristic";
        }
        if (!found) {
            jp_error_set(err, JP_ERR_UNSUPPORTED,
                         "no cuDNN FP32 forward algorithm fits in %zu bytes of workspace",
                         limit_bytes);
            goto fail;
        }
        JP_CUDA_CHECK(err, cudnnGetConvolutionForwardWorkspaceSize(h, s->x_desc, s->w_desc,
                                                                   s->conv_desc, s->y_desc,
                                                                   s->algo, &s->workspace_bytes));
    }
    if (s->workspace_bytes > 0)
        JP_CUDA_CHECK(err, cudaMalloc(&s->workspace, s->workspace_bytes));
    if (forced >= 0 && scratch_x && scratch_y) {
        bool runs = false;
        if (try_forced(s, scratch_x, scratch_y, &runs, err) != JP_OK)
            goto fail;
        if (!runs) {
            jp_error_set(err, JP_ERR_UNSUPPORTED,
                         "cuDNN refuses %s for this convolution", algo_name(s->algo));
            goto fail;
        }
    }

    /* IDENTITY is accepted by the fused call only with IMPLICIT_PRECOMP_GEMM. */
    if (step->act == JP_ACT_NONE && s->algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        want_fused = false;
    s->epilogue = EPILOGUE_SEPARATE;
    if (want_fused) {
        accepted = true; /* without scratch buffers, trust the documented rule */
        if (scratch_x && scratch_y && try_fused(s, scratch_x, scratch_y, &accepted, err) != JP_OK)
            goto fail;
        if (accepted)
            s->epilogue = EPILOGUE_CUDNN_FUSED;
    }
    JP_CUDA_CHECK(err, cudaStreamSynchronize(jp_cuda_stream()));
    if (scratch_x)
        cudaFree(scratch_x);
    if (scratch_y)
        cudaFree(scratch_y);
    *state_out = s;
    return JP_OK;
fail:
    if (scratch_x)
        cudaFree(scratch_x);
    if (scratch_y)
        cudaFree(scratch_y);
    conv_cudnn_release(s);
    jp_error_prefix(err, "%s (%s prepare): ", step->op->name, kernel_name);
    return jp_cuda_fail_status(err);
}

static jp_status conv_cudnn_prepare(const jp_step *step, void **state_out, jp_error *err)
{
    return conv_cudnn_prepare_algo(step, -1, "cuda/conv2d/cudnn", state_out, err);
}

static jp_status conv_cudnn_run(void *state, const jp_step *step, jp_error *err)
{
    conv_cudnn_state *s = (conv_cudnn_state *)state;
    const float one = 1.0f, zero = 0.0f;
    const jp_tensor *x = &step->in[0], *y = &step->out;

    if (!s || memcmp(s->x_dims, x->dims, sizeof s->x_dims) ||
        memcmp(s->y_dims, y->dims, sizeof s->y_dims))
        return jp_error_set(err, JP_ERR_INTERNAL,
                            "%s: cuda/conv2d/cudnn run on shapes it was not prepared for",
                            step->op->name);
    if (s->epilogue == EPILOGUE_CUDNN_FUSED) {
        JP_CUDA_CHECK(err, cudnnConvolutionBiasActivationForward(
                               jp_cuda_cudnn(), &one, s->x_desc, x->data, s->w_desc, s->w,
                               s->conv_desc, s->algo, s->workspace, s->workspace_bytes, &zero,
                               s->y_desc, y->data, s->bias_desc, s->bias, s->act_desc,
                               s->y_desc, y->data));
        return JP_OK;
    }
    JP_CUDA_CHECK(err, cudnnConvolutionForward(jp_cuda_cudnn(), &one, s->x_desc, x->data,
                                               s->w_desc, s->w, s->conv_desc, s->algo,
                                               s->workspace, s->workspace_bytes, &zero,
                                               s->y_desc, y->data));
    if (jp_cuda_bias_act(y->data, s->bias, y->dims[0], (int)y->dims[1], y->dims[2] * y->dims[3],
                         s->act, err) != JP_OK)
        goto fail;
    return JP_OK;
fail:
    jp_error_prefix(err, "%s (cuDNN %s): ", step->op->name, algo_name(s->algo));
    return jp_cuda_fail_status(err);
}

extern "C" const jp_kernel jp_cuda_conv2d_cudnn = {
    /* name         */ "cuda/conv2d/cudnn",
    /* device       */ JP_DEVICE_CUDA,
    /* op_type      */ JP_OP_CONV2D,
    /* is_reference */ false,
    /* priority     */ 100,
    /* supports     */ conv_cudnn_supports,
    /* prepare      */ conv_cudnn_prepare,
    /* run          */ conv_cudnn_run,
    /* release      */ conv_cudnn_release,
    /* describe     */ conv_cudnn_describe,
};

/* One kernel per forward algorithm, for compare; never chosen by default. */
#define CONV_CUDNN_FORCED(suffix, ALGO)                                                       \
    static jp_status conv_cudnn_prepare_##suffix(const jp_step *step, void **state_out,       \
                                                 jp_error *err)                               \
    {                                                                                         \
        return conv_cudnn_prepare_algo(step, CUDNN_CONVOLUTION_FWD_ALGO_##ALGO,               \
                                       "cuda/conv2d/cudnn_" #suffix, state_out, err);        \
    }                                                                                         \
    extern "C" const jp_kernel jp_cuda_conv2d_cudnn_##suffix = {                              \
        "cuda/conv2d/cudnn_" #suffix, JP_DEVICE_CUDA, JP_OP_CONV2D, false, 0,                 \
        conv_cudnn_supports,          conv_cudnn_prepare_##suffix,                            \
        conv_cudnn_run,               conv_cudnn_release,                                     \
        conv_cudnn_describe,                                                                  \
    };

CONV_CUDNN_FORCED(implicit_gemm, IMPLICIT_GEMM)
CONV_CUDNN_FORCED(implicit_precomp_gemm, IMPLICIT_PRECOMP_GEMM)
CONV_CUDNN_FORCED(gemm, GEMM)
CONV_CUDNN_FORCED(direct, DIRECT)
CONV_CUDNN_FORCED(fft, FFT)
CONV_CUDNN_FORCED(fft_tiling, FFT_TILING)
CONV_CUDNN_FORCED(winograd, WINOGRAD)
CONV_CUDNN_FORCED(winograd_nonfused, WINOGRAD_NONFUSED)
