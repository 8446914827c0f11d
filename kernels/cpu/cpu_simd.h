/*
 * cpu_simd.h: a small vector abstraction for the hand-tiled CPU kernels.
 *
 * One code path serves four targets, chosen at compile time:
 *   __AVX512F__            jp_vf = __m512,      JP_VLEN 16
 *   __AVX2__ && __FMA__    jp_vf = __m256,      JP_VLEN 8
 *   __aarch64__ (NEON)     jp_vf = float32x4_t, JP_VLEN 4 (every AArch64
 *                          core has NEON and FMA: the Jetsons' Cortex-A57,
 *                          Denver 2, Carmel, Cortex-A78AE, Neoverse V3AE)
 *   otherwise              jp_vf = float,       JP_VLEN 1 (portable C)
 * so a kernel written against it is correct everywhere and fast where the
 * build allows (-march=native on the benchmark machines).  The tiles keep
 * their accumulators in registers, which gcc's auto-vectoriser does not
 * reliably do (it prefers 256-bit vectors on AVX-512 parts and reloads
 * accumulators through memory).
 *
 * Arithmetic is IEEE single precision; jp_v_fma is a fused multiply-add
 * where the target has one.  jp_v_exp is the polynomial of jp_cpu_expf,
 * lane for lane; SiLU and sigmoid divide as the scalar path does, or
 * (JP_SIMD_FAST_DIV 0) use jp_v_recip, an estimate refined by Newton steps,
 * within about 1 ulp of the division.
 */
#ifndef JP_CPU_SIMD_H
#define JP_CPU_SIMD_H

#include "cpu_internal.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define JP_SIMD_NEON 1
#endif

#define JP_ALWAYS_INLINE static inline __attribute__((always_inline))

#if defined(__AVX512F__)

#define JP_VLEN 16
typedef __m512 jp_vf;
JP_ALWAYS_INLINE jp_vf jp_v_load(const float *p) { return _mm512_loadu_ps(p); }
JP_ALWAYS_INLINE void jp_v_store(float *p, jp_vf v) { _mm512_storeu_ps(p, v); }
/* Stores lanes [0, n), 0 < n <= JP_VLEN. */
JP_ALWAYS_INLINE void jp_v_store_n(float *p, jp_vf v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), v);
}
/* Loads lanes [0, n), zeros above. */
JP_ALWAYS_INLINE jp_vf jp_v_load_n(const float *p, int n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
}
/* A lane mask, for loads repeated with the same lanes. */
typedef __mmask16 jp_vmask;
JP_ALWAYS_INLINE jp_vmask jp_v_mask_range(int64_t lo, int64_t hi)
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    return hi <= lo ? 0 : (jp_vmask)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
JP_ALWAYS_INLINE jp_vf jp_v_load_mask(const float *p, jp_vmask m)
{
    return _mm512_maskz_loadu_ps(m, p);
}
/* x[0..31] in a (0-15) and b (16-31): *even = x[0, 2, .., 30], *odd = x[1,
 * 3, .., 31] (stride-2 rows). */
JP_ALWAYS_INLINE void jp_v_deinterleave2(jp_vf a, jp_vf b, jp_vf *even, jp_vf *odd)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}
JP_ALWAYS_INLINE jp_vf jp_v_set1(float x) { return _mm512_set1_ps(x); }
JP_ALWAYS_INLINE jp_vf jp_v_zero(void) { return _mm512_setzero_ps(); }
JP_ALWAYS_INLINE jp_vf jp_v_fma(jp_vf a, jp_vf b, jp_vf c) { return _mm512_fmadd_ps(a, b, c); }
JP_ALWAYS_INLINE jp_vf jp_v_add(jp_vf a, jp_vf b) { return _mm512_add_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_sub(jp_vf a, jp_vf b) { return _mm512_sub_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_mul(jp_vf a, jp_vf b) { return _mm512_mul_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_div(jp_vf a, jp_vf b) { return _mm512_div_ps(a, b); }
/* a < b ? b : a, lane-wise (NaN in a passes through, as jp_cpu_reluf). */
JP_ALWAYS_INLINE jp_vf jp_v_max(jp_vf a, jp_vf b) { return _mm512_max_ps(b, a); }
/* b > a or b NaN ? b : a, lane-wise: PyTorch's max, NaN from either side. */
JP_ALWAYS_INLINE jp_vf jp_v_max_nan(jp_vf a, jp_vf b)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), _mm512_max_ps(b, a), b);
}
JP_ALWAYS_INLINE jp_vf jp_v_min(jp_vf a, jp_vf b) { return _mm512_min_ps(b, a); }
/* 1/d to about 1 ulp: the 14-bit estimate and one Newton step (vdivps is a
 * single-port 16-lane divide, 10+ cycles per vector: it dominated SiLU). */
JP_ALWAYS_INLINE jp_vf jp_v_recip(jp_vf d)
{
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}
/* x rounded to the nearest integer, ties to even. */
JP_ALWAYS_INLINE jp_vf jp_v_round(jp_vf x)
{
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* p * 2^n for lanes holding integral n in [-126, 127]: one vscalefps. */
JP_ALWAYS_INLINE jp_vf jp_v_ldexp(jp_vf p, jp_vf n) { return _mm512_scalef_ps(p, n); }

#elif defined(__AVX2__) && defined(__FMA__)

#define JP_VLEN 8
typedef __m256 jp_vf;
JP_ALWAYS_INLINE __m256i jp_v_mask_n(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
JP_ALWAYS_INLINE jp_vf jp_v_load(const float *p) { return _mm256_loadu_ps(p); }
JP_ALWAYS_INLINE void jp_v_store(float *p, jp_vf v) { _mm256_storeu_ps(p, v); }
/* A partial store: vmaskmovps to memory is microcoded on AMD (measured on
 * Zen 3: 7.8 ns a store against 0.8 ns for vmovups, full mask or not), so
 * a whole vector is a plain store and a partial one goes lane by lane from
 * a spill (store-to-load forwarding serves the lanes). */
JP_ALWAYS_INLINE void jp_v_store_n(float *p, jp_vf v, int n)
{
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    for (int i = 0; i < n; i++)
        p[i] = lanes[i];
}
JP_ALWAYS_INLINE jp_vf jp_v_load_n(const float *p, int n)
{
    return _mm256_maskload_ps(p, jp_v_mask_n(n));
}
typedef __m256i jp_vmask;
JP_ALWAYS_INLINE jp_vmask jp_v_mask_range(int64_t lo, int64_t hi)
{
    lo = lo < 0 ? 0 : lo > 8 ? 8 : lo;
    hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), lane),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane));
}
JP_ALWAYS_INLINE jp_vf jp_v_load_mask(const float *p, jp_vmask m) { return _mm256_maskload_ps(p, m); }
/* x[0..15] in a (0-7) and b (8-15): *even = x[0, 2, .., 14], *odd = x[1, 3,
 * .., 15] (stride-2 rows): the 128-bit halves regrouped (x0-3 x8-11 | x4-7
 * x12-15), then one shuffle per phase. */
JP_ALWAYS_INLINE void jp_v_deinterleave2(jp_vf a, jp_vf b, jp_vf *even, jp_vf *odd)
{
    const __m256 lo = _mm256_permute2f128_ps(a, b, 0x20);
    const __m256 hi = _mm256_permute2f128_ps(a, b, 0x31);
    *even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    *odd = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
}
JP_ALWAYS_INLINE jp_vf jp_v_set1(float x) { return _mm256_set1_ps(x); }
JP_ALWAYS_INLINE jp_vf jp_v_zero(void) { return _mm256_setzero_ps(); }
JP_ALWAYS_INLINE jp_vf jp_v_fma(jp_vf a, jp_vf b, jp_vf c) { return _mm256_fmadd_ps(a, b, c); }
JP_ALWAYS_INLINE jp_vf jp_v_add(jp_vf a, jp_vf b) { return _mm256_add_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_sub(jp_vf a, jp_vf b) { return _mm256_sub_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_mul(jp_vf a, jp_vf b) { return _mm256_mul_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_div(jp_vf a, jp_vf b) { return _mm256_div_ps(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_max(jp_vf a, jp_vf b) { return _mm256_max_ps(b, a); }
JP_ALWAYS_INLINE jp_vf jp_v_max_nan(jp_vf a, jp_vf b)
{
    return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}
JP_ALWAYS_INLINE jp_vf jp_v_min(jp_vf a, jp_vf b) { return _mm256_min_ps(b, a); }
/* 1/d for d in [2^-124, 2^128): the 12-bit estimate and two Newton steps
 * (about 1 ulp), taken on d/4 and scaled back: vrcpps flushes a reciprocal
 * below 2^-126 to zero, which made SiLU(-87.4) 0 instead of -1e-36. */
JP_ALWAYS_INLINE jp_vf jp_v_recip(jp_vf d)
{
    const __m256 q = _mm256_mul_ps(d, _mm256_set1_ps(0.25f));
    __m256 r = _mm256_rcp_ps(q);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(1.0f)), r);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(1.0f)), r);
    return _mm256_mul_ps(r, _mm256_set1_ps(0.25f));
}
JP_ALWAYS_INLINE jp_vf jp_v_round(jp_vf x)
{
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
JP_ALWAYS_INLINE jp_vf jp_v_ldexp(jp_vf p, jp_vf n)
{
    __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}

#elif defined(JP_SIMD_NEON)

/* AArch64 NEON: 32 registers of 4 floats.  NEON has no masked loads or
 * stores: the partial ones below move lane by lane, so that they never touch
 * a float outside their lanes (callers rely on that at buffer ends, as the
 * AVX masks allow).  Comparisons and selects, not FMAX/FMIN, give max and
 * min: FMAX returns NaN for a NaN in either operand and +0 for (-0, +0),
 * where the x86 paths and the scalar reference return one given operand. */
#define JP_VLEN 4
typedef float32x4_t jp_vf;
/* Full loads and stores as plain vector dereferences (gcc gives a vector
 * type its element's alias set; LDR/STR Q take any alignment): vld1q_f32 is
 * a builtin that gcc 12 cannot see through (see jp_v_fma). */
typedef float32x4_t jp_vf_unaligned __attribute__((aligned(4)));
JP_ALWAYS_INLINE jp_vf jp_v_load(const float *p) { return *(const jp_vf_unaligned *)p; }
JP_ALWAYS_INLINE void jp_v_store(float *p, jp_vf v) { *(jp_vf_unaligned *)p = v; }
/* Stores lanes [0, n), 0 < n <= JP_VLEN. */
JP_ALWAYS_INLINE void jp_v_store_n(float *p, jp_vf v, int n)
{
    if (n >= 4) {
        vst1q_f32(p, v);
    } else if (n >= 2) {
        vst1_f32(p, vget_low_f32(v));
        if (n == 3)
            vst1q_lane_f32(p + 2, v, 2);
    } else if (n == 1) {
        vst1q_lane_f32(p, v, 0);
    }
}
/* A lane mask: bit l set = lane l loaded (as AVX-512's __mmask16). */
typedef unsigned jp_vmask;
JP_ALWAYS_INLINE jp_vmask jp_v_mask_range(int64_t lo, int64_t hi)
{
    lo = lo < 0 ? 0 : lo;
    hi = hi > 4 ? 4 : hi;
    return hi <= lo ? 0u : ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}
JP_ALWAYS_INLINE jp_vf jp_v_load_mask(const float *p, jp_vmask m)
{
    if (m == 0xFu)
        return vld1q_f32(p);
    jp_vf v = vdupq_n_f32(0.0f);
    if (m & 1u)
        v = vld1q_lane_f32(p, v, 0);
    if (m & 2u)
        v = vld1q_lane_f32(p + 1, v, 1);
    if (m & 4u)
        v = vld1q_lane_f32(p + 2, v, 2);
    if (m & 8u)
        v = vld1q_lane_f32(p + 3, v, 3);
    return v;
}
/* Loads lanes [0, n), zeros above. */
JP_ALWAYS_INLINE jp_vf jp_v_load_n(const float *p, int n)
{
    return jp_v_load_mask(p, jp_v_mask_range(0, n));
}
/* x[0..7] in a (0-3) and b (4-7): *even = x[0, 2, 4, 6], *odd = x[1, 3, 5,
 * 7] (stride-2 rows). */
JP_ALWAYS_INLINE void jp_v_deinterleave2(jp_vf a, jp_vf b, jp_vf *even, jp_vf *odd)
{
    *even = vuzp1q_f32(a, b);
    *odd = vuzp2q_f32(a, b);
}
JP_ALWAYS_INLINE jp_vf jp_v_set1(float x) { return vdupq_n_f32(x); }
JP_ALWAYS_INLINE jp_vf jp_v_zero(void) { return vdupq_n_f32(0.0f); }
/* a * b + c, one rounding: FMLA, written as an asm statement because gcc
 * 12's vfmaq_f32 builtin is opaque to its loop-invariant motion ("unanalyzed
 * memory reference" in -fdump-tree-lim2-details), which then keeps register
 * tiles (gemm_tile.h, the depthwise tiles) in memory, storing every
 * accumulator on every k; an asm without memory operands is not. */
JP_ALWAYS_INLINE jp_vf jp_v_fma(jp_vf a, jp_vf b, jp_vf c)
{
    __asm__("fmla %0.4s, %1.4s, %2.4s" : "+w"(c) : "w"(a), "w"(b));
    return c;
}
/* acc += b * lane `lane` of a (FMLA by element), lane a constant 0..3; acc
 * goes through a register temporary (an array element as the asm's operand
 * would make the asm a memory reference). */
#define JP_V_FMA_LANE(acc, b, a, lane)                                                             \
    do {                                                                                           \
        jp_vf acc_ = (acc);                                                                        \
        __asm__("fmla %0.4s, %1.4s, %2.s[" #lane "]" : "+w"(acc_) : "w"(b), "w"(a));              \
        (acc) = acc_;                                                                              \
    } while (0)
JP_ALWAYS_INLINE jp_vf jp_v_add(jp_vf a, jp_vf b) { return vaddq_f32(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_sub(jp_vf a, jp_vf b) { return vsubq_f32(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_mul(jp_vf a, jp_vf b) { return vmulq_f32(a, b); }
JP_ALWAYS_INLINE jp_vf jp_v_div(jp_vf a, jp_vf b) { return vdivq_f32(a, b); }
/* a < b ? b : a (NaN in a passes through, as jp_cpu_reluf). */
JP_ALWAYS_INLINE jp_vf jp_v_max(jp_vf a, jp_vf b) { return vbslq_f32(vcltq_f32(a, b), b, a); }
/* b > a or b NaN ? b : a: PyTorch's max, NaN from either side. */
JP_ALWAYS_INLINE jp_vf jp_v_max_nan(jp_vf a, jp_vf b)
{
    const uint32x4_t take_b = vorrq_u32(vcgtq_f32(b, a), vmvnq_u32(vceqq_f32(b, b)));
    return vbslq_f32(take_b, b, a);
}
/* b < a ? b : a (as _mm_min_ps(b, a)). */
JP_ALWAYS_INLINE jp_vf jp_v_min(jp_vf a, jp_vf b) { return vbslq_f32(vcltq_f32(b, a), b, a); }
/* 1/d for d in [2^-124, 2^128): the 8-bit estimate (FRECPE) and three
 * Newton steps (FRECPS, fused), taken on d/4 and scaled back as on AVX2 so
 * that no estimate falls below the normal range. */
JP_ALWAYS_INLINE jp_vf jp_v_recip(jp_vf d)
{
    const float32x4_t q = vmulq_n_f32(d, 0.25f);
    float32x4_t r = vrecpeq_f32(q);
    r = vmulq_f32(r, vrecpsq_f32(q, r));
    r = vmulq_f32(r, vrecpsq_f32(q, r));
    r = vmulq_f32(r, vrecpsq_f32(q, r));
    return vmulq_n_f32(r, 0.25f);
}
/* x rounded to the nearest integer, ties to even (FRINTN). */
JP_ALWAYS_INLINE jp_vf jp_v_round(jp_vf x) { return vrndnq_f32(x); }
/* p * 2^n for lanes holding integral n in [-126, 127]. */
JP_ALWAYS_INLINE jp_vf jp_v_ldexp(jp_vf p, jp_vf n)
{
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(e, 23)));
}

#else

#define JP_VLEN 1
typedef float jp_vf;
JP_ALWAYS_INLINE jp_vf jp_v_load(const float *p) { return *p; }
JP_ALWAYS_INLINE void jp_v_store(float *p, jp_vf v) { *p = v; }
JP_ALWAYS_INLINE void jp_v_store_n(float *p, jp_vf v, int n)
{
    if (n > 0)
        *p = v;
}
JP_ALWAYS_INLINE jp_vf jp_v_load_n(const float *p, int n) { return n > 0 ? *p : 0.0f; }
typedef int jp_vmask;
JP_ALWAYS_INLINE jp_vmask jp_v_mask_range(int64_t lo, int64_t hi) { return lo <= 0 && hi > 0; }
JP_ALWAYS_INLINE jp_vf jp_v_load_mask(const float *p, jp_vmask m) { return m ? *p : 0.0f; }
/* x[0..1] in a and b: *even = x[0], *odd = x[1]. */
JP_ALWAYS_INLINE void jp_v_deinterleave2(jp_vf a, jp_vf b, jp_vf *even, jp_vf *odd)
{
    *even = a;
    *odd = b;
}
JP_ALWAYS_INLINE jp_vf jp_v_set1(float x) { return x; }
JP_ALWAYS_INLINE jp_vf jp_v_zero(void) { return 0.0f; }
JP_ALWAYS_INLINE jp_vf jp_v_fma(jp_vf a, jp_vf b, jp_vf c) { return JP_FMA(a, b, c); }
JP_ALWAYS_INLINE jp_vf jp_v_add(jp_vf a, jp_vf b) { return a + b; }
JP_ALWAYS_INLINE jp_vf jp_v_sub(jp_vf a, jp_vf b) { return a - b; }
JP_ALWAYS_INLINE jp_vf jp_v_mul(jp_vf a, jp_vf b) { return a * b; }
JP_ALWAYS_INLINE jp_vf jp_v_div(jp_vf a, jp_vf b) { return a / b; }
JP_ALWAYS_INLINE jp_vf jp_v_max(jp_vf a, jp_vf b) { return a < b ? b : a; }
JP_ALWAYS_INLINE jp_vf jp_v_max_nan(jp_vf a, jp_vf b) { return (b > a || b != b) ? b : a; }
JP_ALWAYS_INLINE jp_vf jp_v_min(jp_vf a, jp_vf b) { return a > b ? b : a; }
JP_ALWAYS_INLINE jp_vf jp_v_recip(jp_vf d) { return 1.0f / d; }
JP_ALWAYS_INLINE jp_vf jp_v_round(jp_vf x) { return (x + 12582912.0f) - 12582912.0f; }
JP_ALWAYS_INLINE jp_vf jp_v_ldexp(jp_vf p, jp_vf n)
{
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

#endif

/* Loads lanes l with lo <= l < hi (clamped to [0, JP_VLEN)), zeros elsewhere.
 * Lanes outside the range are never read, so p + l may lie outside the
 * buffer for them (masked loads do not fault). */
JP_ALWAYS_INLINE jp_vf jp_v_load_range(const float *p, int64_t lo, int64_t hi)
{
    return jp_v_load_mask(p, jp_v_mask_range(lo, hi));
}

/* exp, lane for lane the same operations as jp_cpu_expf. */
JP_ALWAYS_INLINE jp_vf jp_v_exp(jp_vf x)
{
    x = jp_v_max(x, jp_v_set1(-87.0f));
    x = jp_v_min(x, jp_v_set1(88.0f));
    /* |x / ln 2| < 2^22: rounding it as jp_cpu_expf does (1.5 * 2^23 added
     * and taken off) gives the same n. */
    jp_vf n = jp_v_round(jp_v_mul(x, jp_v_set1(1.44269504088896341f)));
    jp_vf r = jp_v_fma(n, jp_v_set1(-0.693359375f), x);
    r = jp_v_fma(n, jp_v_set1(2.12194440e-4f), r);
    jp_vf p = jp_v_set1(8.31250567e-3f);
    p = jp_v_fma(p, r, jp_v_set1(4.18900959e-2f));
    p = jp_v_fma(p, r, jp_v_set1(1.66671142e-1f));
    p = jp_v_fma(p, r, jp_v_set1(4.99992311e-1f));
    p = jp_v_fma(p, r, jp_v_set1(1.0f));
    p = jp_v_fma(p, r, jp_v_set1(1.0f));
    return jp_v_ldexp(p, n);
}

/* Divide or multiply by the refined reciprocal in SiLU and sigmoid: on
 * AMD Zen 4 (gcc 12 names it znver3 with AVX-512), vdivps is the faster,
 * 12.4 against 14.5 cycles per SiLU vector in a harness (and exact, as the
 * scalar path).  Other AVX-512 machines (Intel's, none measured here) keep
 * the reciprocal they had; test_expf checks both paths against the scalar
 * SiLU.  NEON divides (FDIV .4S): the Jetsons' cores (Cortex-A57, Carmel,
 * Cortex-A78AE) could not be timed here, and with the division the vector
 * SiLU does the scalar one's operations, lane for lane. */
#ifndef JP_SIMD_FAST_DIV
#if defined(__AVX512F__) && (defined(__znver3__) || defined(__znver4__) || defined(__znver5__))
#define JP_SIMD_FAST_DIV 1
#elif defined(JP_SIMD_NEON)
#define JP_SIMD_FAST_DIV 1 /* exact, as the scalar path; not timed: no ARM machine here */
#else
#define JP_SIMD_FAST_DIV 0
#endif
#endif

/* relu6(v + 3) * (1/6), as jp_cpu_hardsigmoidf: PyTorch's order (add,
 * clamp, scale), not v / 6 + 0.5 clamped, which rounds differently. */
JP_ALWAYS_INLINE jp_vf jp_v_hardsigmoid(jp_vf v)
{
    const jp_vf t = jp_v_min(jp_v_max(jp_v_add(v, jp_v_set1(3.0f)), jp_v_zero()), jp_v_set1(6.0f));
    return jp_v_mul(t, jp_v_set1(1.0f / 6.0f));
}

/* GELU, x/2 * (1 + erf(x / sqrt 2)), with erf by Abramowitz and Stegun
 * 7.1.26 (|error| < 1.5e-7 on erf): for z = |x| / sqrt 2, t = 1/(1 + p z),
 * q = t (a1 + t (a2 + ... a5)) e^(-z^2) = 1 - erf(z), so 1 + erf(x/sqrt 2)
 * is q for x < 0 and 2 - q otherwise: x/2 (max(x,0) (2 - q) + min(x,0) q)/x. */
JP_ALWAYS_INLINE jp_vf jp_v_gelu(jp_vf v)
{
    const jp_vf pos = jp_v_max(v, jp_v_zero()), neg = jp_v_min(v, jp_v_zero());
    const jp_vf z = jp_v_mul(jp_v_sub(pos, neg), jp_v_set1(0.707106781186547524f));
    const jp_vf t = jp_v_div(jp_v_set1(1.0f), jp_v_fma(z, jp_v_set1(0.3275911f), jp_v_set1(1.0f)));
    jp_vf p = jp_v_set1(1.061405429f);
    p = jp_v_fma(p, t, jp_v_set1(-1.453152027f));
    p = jp_v_fma(p, t, jp_v_set1(1.421413741f));
    p = jp_v_fma(p, t, jp_v_set1(-0.284496736f));
    p = jp_v_fma(p, t, jp_v_set1(0.254829592f));
    const jp_vf q = jp_v_mul(jp_v_mul(p, t), jp_v_exp(jp_v_sub(jp_v_zero(), jp_v_mul(z, z))));
    const jp_vf sum = jp_v_fma(neg, q, jp_v_mul(pos, jp_v_sub(jp_v_set1(2.0f), q)));
    return jp_v_mul(sum, jp_v_set1(0.5f));
}

/* The activation of a vector of pre-activations (the scalar jp_cpu_act's
 * math; every case listed, as there). */
JP_ALWAYS_INLINE jp_vf jp_v_act(jp_vf v, jp_activation act)
{
    switch (act) {
    case JP_ACT_RELU:
        return jp_v_max(v, jp_v_zero());
    case JP_ACT_SILU:
#if JP_SIMD_FAST_DIV
        return jp_v_div(v, jp_v_add(jp_v_set1(1.0f), jp_v_exp(jp_v_sub(jp_v_zero(), v))));
#else
        return jp_v_mul(v, jp_v_recip(jp_v_add(jp_v_set1(1.0f), jp_v_exp(jp_v_sub(jp_v_zero(), v)))));
#endif
    case JP_ACT_SIGMOID:
#if JP_SIMD_FAST_DIV
        return jp_v_div(jp_v_set1(1.0f), jp_v_add(jp_v_set1(1.0f), jp_v_exp(jp_v_sub(jp_v_zero(), v))));
#else
        return jp_v_recip(jp_v_add(jp_v_set1(1.0f), jp_v_exp(jp_v_sub(jp_v_zero(), v))));
#endif
    case JP_ACT_RELU6:
        return jp_v_min(jp_v_max(v, jp_v_zero()), jp_v_set1(6.0f));
    case JP_ACT_HARDSWISH:
        return jp_v_mul(v, jp_v_hardsigmoid(v));
    case JP_ACT_HARDSIGMOID:
        return jp_v_hardsigmoid(v);
    case JP_ACT_GELU:
        return jp_v_gelu(v);
    case JP_ACT_NONE:
    case JP_ACT_COUNT:
        break;
    }
    return v;
}

/* The sum of v's lanes, in lane order. */
static inline float jp_v_hsum(jp_vf v)
{
    float lanes[JP_VLEN], s = 0.0f;
    jp_v_store(lanes, v);
    for (int l = 0; l < JP_VLEN; l++)
        s += lanes[l];
    return s;
}

#endif /* JP_CPU_SIMD_H */
