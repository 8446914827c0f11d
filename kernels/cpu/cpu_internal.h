/*
 * cpu_internal.h: helpers shared by the CPU kernels (not part of the engine's
 * interface).
 *
 * - aligned host allocation;
 * - a vectorisable expf and the activations built on it (glibc's expf is
 *   only vectorised under -ffast-math, which we do not use: IEEE semantics
 *   are kept, and the polynomial below is within 2 ulp of expf on the
 *   clamped range, see tests/test_cpu_kernels.c "expf");
 * - step validation used by every supports();
 * - batch-norm folding for the GEMM and depthwise convolutions;
 *
 * Floating-point contraction: in ISO C mode (-std=c11) gcc does not fuse
 * a*b+c into an FMA; JP_FMA does it explicitly where the hardware has one
 * (x86 with FMA3; every AArch64 core, __ARM_FEATURE_FMA), so that the scalar
 * paths round as the vector ones do.
 */
#ifndef JP_CPU_INTERNAL_H
#define JP_CPU_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../engine/jp_weights.h" /* jp_weights_give_back */
#include "../jp_kernel.h"

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define JP_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define JP_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* Elementwise loops smaller than this run on one thread: forking the team
 * costs a few microseconds, about what 64K float operations take. */
#define JP_CPU_PARALLEL_MIN_ELEMS 65536

/* 64-byte aligned host memory (rounded up to a multiple of 64 bytes);
 * NULL on failure or when bytes == 0.  Free with jp_cpu_free. */
void *jp_cpu_alloc(size_t bytes);
void jp_cpu_free(void *ptr);

/* exp(x) for x in [-87, 88] (clamped outside: exp(-87) = 1.6e-38 stays
 * normal, exp(88) = 1.7e38 stays finite); relative error below 2e-7. */
static inline float jp_cpu_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (exact in IEEE arithmetic). */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    /* r = x - n ln 2 in two steps (Cody-Waite), |r| <= 0.35. */
    float r = JP_FMA(n, -0.693359375f, x);
    r = JP_FMA(n, 2.12194440e-4f, r);
    /* exp(r) = 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3) by Horner, five
     * FMAs: c2..c5 minimise the relative error on [-ln2/2, ln2/2] (1.05e-7;
     * fitted by Lawson's iteration on 20,000 points, then rounded to
     * float).  Cephes' polynomial, one degree higher, took eight operations
     * for 1.2e-7 over the clamped range; this one 1.7e-7 (test_expf). */
    float p = 8.31250567e-3f;
    p = JP_FMA(p, r, 4.18900959e-2f);
    p = JP_FMA(p, r, 1.66671142e-1f);
    p = JP_FMA(p, r, 4.99992311e-1f);
    p = JP_FMA(p, r, 1.0f);
    p = JP_FMA(p, r, 1.0f);
    /* 2^n from its exponent bits; n in [-126, 127]. */
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float jp_cpu_sigmoidf(float x) { return 1.0f / (1.0f + jp_cpu_expf(-x)); }
static inline float jp_cpu_siluf(float x) { return x / (1.0f + jp_cpu_expf(-x)); }
/* NaN passes through, as in torch.relu. */
static inline float jp_cpu_reluf(float x) { return x < 0.0f ? 0.0f : x; }
/* min(max(x, 0), 6): torch.nn.ReLU6 (hardtanh(x, 0, 6)). */
static inline float jp_cpu_relu6f(float x) { return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x); }
/* torch.nn.Hardsigmoid: relu6(x + 3) / 6; Hardswish: x * relu6(x + 3) / 6,
 * multiplied by 1/6 here (PyTorch divides: the two differ by an ulp). */
static inline float jp_cpu_hardsigmoidf(float x) { return jp_cpu_relu6f(x + 3.0f) * (1.0f / 6.0f); }
static inline float jp_cpu_hardswishf(float x) { return x * jp_cpu_relu6f(x + 3.0f) * (1.0f / 6.0f); }

/* torch.nn.GELU (approximate='none'): x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)),
 * with libm's erff (the vector form, cpu_simd.h, approximates erf). */
static inline float jp_cpu_geluf(float x) { return 0.5f * x * (1.0f + erff(x * 0.707106781186547524f)); }

/* The activation act of x.  Every case listed (no default): -Wswitch names
 * an activation added to JP_ACTIVATIONS without its math here. */
static inline float jp_cpu_act(float x, jp_activation act)
{
    switch (act) {
    case JP_ACT_RELU: return jp_cpu_reluf(x);
    case JP_ACT_SILU: return jp_cpu_siluf(x);
    case JP_ACT_SIGMOID: return jp_cpu_sigmoidf(x);
    case JP_ACT_RELU6: return jp_cpu_relu6f(x);
    case JP_ACT_HARDSWISH: return jp_cpu_hardswishf(x);
    case JP_ACT_HARDSIGMOID: return jp_cpu_hardsigmoidf(x);
    case JP_ACT_GELU: return jp_cpu_geluf(x);
    case JP_ACT_NONE:
    case JP_ACT_COUNT: break;
    }
    return x;
}

/* The activations computed with libm's expf, as written in PyTorch's docs
 * (silu = x * sigmoid(x), hardswish = x * relu6(x + 3) / 6 with a true
 * division): what the reference convolution uses, so that it does not share
 * the polynomial above with the kernels it checks. */
static inline float jp_cpu_act_libm(float x, jp_activation act)
{
    switch (act) {
    case JP_ACT_RELU: return x < 0.0f ? 0.0f : x;
    case JP_ACT_SILU: return x * (1.0f / (1.0f + expf(-x)));
    case JP_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case JP_ACT_RELU6: return fminf(fmaxf(x, 0.0f), 6.0f);
    case JP_ACT_HARDSWISH: return x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case JP_ACT_HARDSIGMOID: return fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case JP_ACT_GELU: return (float)(0.5 * x * (1.0 + erf((double)x * 0.707106781186547524)));
    case JP_ACT_NONE:
    case JP_ACT_COUNT: break;
    }
    return x;
}

/* y[i] = act(y[i] + bias[i]) for i < n (bias NULL: 0), vectorised: the
 * epilogue of the linear kernels, one row of outputs. */
void jp_cpu_bias_vec_act(float *y, const float *bias, int64_t n, jp_activation act);

/* y[i] = act(y[i] + bias) for i < n, vectorised (cpu_simd.h).  Used as the
 * epilogue of the OpenBLAS convolutions while y is in cache. */
void jp_cpu_bias_act(float *y, int64_t n, float bias, jp_activation act);
/* y[i] = act((y[i] + bias) + res[i]) for i < n: the same epilogue with a
 * fused residual add (res NULL: jp_cpu_bias_act). */
void jp_cpu_bias_res_act(float *y, const float *res, int64_t n, float bias, jp_activation act);

/* y[i] = act(x[i] * scale + shift): batch norm, mul and the activations;
 * y may be x. */
void jp_cpu_scale_shift_act(float *y, const float *x, int64_t n, float scale, float shift,
                            jp_activation act);

/* y[i] = act(x[i]) for i < n (a copy for JP_ACT_NONE; y == x allowed),
 * split over the OpenMP team when n >= JP_CPU_PARALLEL_MIN_ELEMS.  Call it
 * from outside a parallel region. */
void jp_cpu_act_map(float *y, const float *x, int64_t n, jp_activation act);

/* Both phases of a stride-2 row in one pass: dst0[j] = src[ix0 + 2j] and
 * dst1[j] = src[ix0 + 2j + 1] for j < count, 0 where the index falls
 * outside [0, len) (the grouped convolution's stride-2 input rows). */
void jp_cpu_split_row2(float *dst0, float *dst1, const float *src, int64_t len, int64_t ix0,
                       int64_t count);

/* dst[j] = src[ix0 + j*stride] for j < count, 0 where ix0 + j*stride falls
 * outside [0, len): one row of an im2col matrix (padding included).  Vector
 * copies for strides 1 and 2 on every SIMD target (short rows are
 * common: 7 and 14). */
void jp_cpu_gather_row(float *dst, const float *src, int64_t len, int64_t ix0, int stride,
                       int64_t count);

/* ---- validation for supports() ---- */

/* All tensors of step on the CPU, with data. */
bool jp_cpu_step_on_cpu(const jp_step *step);

/* step->op is a conv2d whose in[0]/out shapes agree with its attributes and
 * parameters, fused_bn (if any) is a batch_norm2d over c_out with its four
 * parameters, act is one of none/relu/silu/sigmoid, and there is no fused
 * residual add (which a kernel accepts only through the function below). */
bool jp_cpu_conv_step_ok(const jp_step *step);
/* The same convolution with a fused residual add (step->fused_add, in[1] of
 * out's shape on the CPU): what cpu/conv2d/packed_gemm also accepts. */
bool jp_cpu_conv_residual_step_ok(const jp_step *step);

/* No fused batch norm and no activation: what simple ops accept. */
static inline bool jp_cpu_no_fusion(const jp_step *step)
{
    return step->fused_bn == NULL && step->act == JP_ACT_NONE;
}

/* in[i] (i < n_in) and out have the same number of elements, > 0. */
bool jp_cpu_same_numel(const jp_step *step, int n_in);

/* ceil(a / b) and a rounded up to a multiple of m, for a, b, m > 0: the
 * blocking arithmetic of the kernels' plans. */
static inline int64_t jp_cpu_div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t jp_cpu_round_up(int64_t a, int64_t m) { return jp_cpu_div_up(a, m) * m; }

/* Output size of a convolution or pooling window along one axis (floor
 * mode); <= 0 when the window does not fit. */
static inline int64_t jp_cpu_out_size(int64_t in, int k, int stride, int pad, int dilation)
{
    return (in + 2 * (int64_t)pad - (int64_t)dilation * (k - 1) - 1) / stride + 1;
}

/* A convolution step's shapes and attributes, as the kernels keep them in
 * their plans (jp_cpu_conv_shape_of). */
typedef struct jp_cpu_conv_shape {
    int64_t n, c_in, h, w, c_out, oh, ow;
    int groups, kh, kw, sh, sw, ph, pw, dh, dw;
} jp_cpu_conv_shape;

jp_cpu_conv_shape jp_cpu_conv_shape_of(const jp_step *step);

/* ---- batch-norm folding ---- */

/* Folds step's conv bias and fused batch norm into a copy of the weights:
 *   s = gamma / sqrt(var + eps);  w' = w * s;  b' = (b - mean) * s + beta
 * (in double, rounded once).  Without batch norm w' = w and b' = b (0 without
 * bias).  *w_out: [c_out, c_in/groups * kh * kw], *b_out: [c_out], both from
 * jp_cpu_alloc, owned by the caller.  Fails with JP_ERR_MISSING when a
 * parameter is not bound, JP_ERR_NOMEM on allocation failure. */
jp_status jp_cpu_conv_fold(const jp_step *step, float **w_out, float **b_out, jp_error *err);

/* ---- the kernels (one file each) ---- */

/* The CPU backend's measure_peak (cpu_peak.c): a register-only FMA loop on
 * every OpenMP thread. */
jp_status jp_cpu_measure_peak(double *gflops, char *how, size_t how_bytes, jp_error *err);

#endif /* JP_CPU_INTERNAL_H */
