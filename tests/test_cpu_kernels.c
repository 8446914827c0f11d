/*
 * test_cpu_kernels.c: every CPU kernel against its reference (or, for the
 * references of simple ops, against a direct computation here), on awkward
 * shapes, with fresh random data each run.
 *
 * The seed comes from the clock and is printed; JP_TEST_SEED=<n> replays a
 * run.  Tolerance (a float kernel against the double-accumulating
 * reference): max|out - ref| <= 1e-4 * max|ref| + 1e-5.  Every line prints
 * the error it measured.  Each convolution case runs at 1 and 2 OpenMP
 * threads, OpenBLAS single-threaded (as the CLI sets it).
 *
 * Kernels are taken from the registry (jp_cpu_kernels), not named: every
 * kernel of an op runs on that op's cases wherever its supports() takes
 * them, and the last check fails for any kernel of the registry that no case
 * ran, so that a new kernel cannot go untested.  Where a kernel is known,
 * the cases also say whether it must take them (conv_expect_support).
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jp_test.h"
#include "../kernels/cpu/cpu_internal.h"
#include "../kernels/cpu/cpu_kernels.h"
#include "../kernels/cpu/cpu_simd.h"
#include "../engine/jp_ops.h"

/* ---- random numbers: xorshift64*, reproducible from the printed seed ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [lo, hi). */
static float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}

static float *rand_buf(int64_t n, float lo, float hi)
{
    float *p = jp_cpu_alloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = rng_uniform(lo, hi);
    return p;
}

static float *zero_buf(int64_t n)
{
    float *p = rand_buf(n, 0.0f, 0.0f);
    memset(p, 0, (size_t)(n > 0 ? n : 1) * sizeof(float));
    return p;
}

/* ---- helpers ---- */

static const jp_kernel *find_kernel(const char *name)
{
    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    for (size_t i = 0; i < count; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

static const char *act_name(jp_activation act) { return jp_activation_name(act); }

/* The CPU kernels of op type `type` in registry order, the reference
 * excluded unless with_ref; *n receives their number (at most 32). */
static int kernels_of(jp_op_type type, bool with_ref, const jp_kernel **out)
{
    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    int n = 0;
    for (size_t i = 0; i < count && n < 32; i++)
        if (all[i]->op_type == type && (with_ref || !all[i]->is_reference))
            out[n++] = all[i];
    return n;
}

/* Kernels this run has computed a checked result with (run_kernel records
 * them); test_every_kernel_ran fails for a registered kernel not among them. */
#define MAX_RAN 256
static const jp_kernel *ran[MAX_RAN];
static int n_ran;

static void note_ran(const jp_kernel *k)
{
    for (int i = 0; i < n_ran; i++)
        if (ran[i] == k)
            return;
    if (n_ran < MAX_RAN)
        ran[n_ran++] = k;
}

static jp_tensor make_tensor(int rank, const int64_t *dims, float *data)
{
    jp_tensor t = {.rank = rank, .device = JP_DEVICE_CPU, .data = data};
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    return t;
}

static void set_param(jp_param *p, char *name, int rank, const int64_t *dims, const float *data)
{
    p->name = name;
    p->rank = rank;
    for (int i = 0; i < rank; i++)
        p->dims[i] = dims[i];
    p->data = data;
}

/* Runs kernel k on step: prepare, run, release.  Returns the status and
 * fills err. */
static jp_status run_kernel(const jp_kernel *k, const jp_step *step, jp_error *err)
{
    void *state = NULL;
    jp_status st = JP_OK;
    if (k->prepare)
        st = k->prepare(step, &state, err);
    if (st == JP_OK)
        st = k->run(state, step, err);
    if (k->release)
        k->release(state);
    if (st == JP_OK)
        note_ran(k);
    return st;
}

/* max|a - b| and max|b|; NaN in either counts as an infinite error. */
static double max_err(const float *a, const float *b, int64_t n, double *ref_max)
{
    double e = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d)
            d = INFINITY;
        if (d > e)
            e = d;
        if (fabs((double)b[i]) > m)
            m = fabs((double)b[i]);
    }
    *ref_max = m;
    return e;
}

static bool within_tol(double err, double ref_max) { return err <= 1e-4 * ref_max + 1e-5; }

/* Reports "<name> (err E)" as a pass or a failure. */
static void check_close(const char *name, const float *out, const float *ref, int64_t n)
{
    double ref_max;
    double e = max_err(out, ref, n, &ref_max);
    char line[512];
    snprintf(line, sizeof line, "%s (err %.1e)", name, e);
    JP_CHECK(line, within_tol(e, ref_max), "max|ref| %.3g, tolerance %.1e", ref_max,
             1e-4 * ref_max + 1e-5);
}

static void set_threads(int t)
{
    omp_set_num_threads(t);
    openblas_set_num_threads(1);
}

/* ---- convolution ---- */

typedef struct conv_case {
    const char *label;         /* shape part of the test name */
    int n, c_in, c_out, h, w;
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
    int combos;                /* 1: bn+relu only; 8: {no bn, bn} x {none, relu, silu, sigmoid} */
} conv_case;

typedef struct conv_fixture {
    jp_op op, bn;
    jp_step step;
    float *x, *wt, *b, *bn_p[4], *out, *ref;
    int64_t out_n;
} conv_fixture;

static void conv_fixture_init(conv_fixture *f, const conv_case *c)
{
    memset(f, 0, sizeof *f);
    jp_conv2d_attrs *a = &f->op.attrs.conv2d;
    f->op.name = "test.conv";
    f->op.path = "test.conv";
    f->op.module = "Conv2d";
    f->op.type = JP_OP_CONV2D;
    f->op.n_inputs = 1;
    *a = (jp_conv2d_attrs){c->c_in, c->c_out, c->kh, c->kw, c->sh, c->sw,
                           c->ph, c->pw, c->dh, c->dw, c->groups, c->bias};
    const int64_t cg = c->c_in / c->groups;
    const int64_t w_dims[4] = {c->c_out, cg, c->kh, c->kw};
    const int64_t c_dims[1] = {c->c_out};
    /* He-uniform-ish weights keep outputs near unit scale. */
    const float bound = sqrtf(3.0f / (float)(cg * c->kh * c->kw));
    f->wt = rand_buf(w_dims[0] * w_dims[1] * w_dims[2] * w_dims[3], -bound, bound);
    set_param(&f->op.params[0], "test.conv.weight", 4, w_dims, f->wt);
    f->op.n_params = 1;
    if (c->bias) {
        f->b = rand_buf(c->c_out, -0.5f, 0.5f);
        set_param(&f->op.params[1], "test.conv.bias", 1, c_dims, f->b);
        f->op.n_params = 2;
    }
    f->bn.name = "test.bn";
    f->bn.type = JP_OP_BATCH_NORM2D;
    f->bn.attrs.batch_norm2d = (jp_batch_norm2d_attrs){c->c_out, 1e-5f};
    f->bn.n_params = 4;
    static char *bn_names[4] = {"test.bn.weight", "test.bn.bias", "test.bn.running_mean",
                                "test.bn.running_var"};
    const float lo[4] = {0.5f, -0.5f, -0.5f, 0.3f}, hi[4] = {1.5f, 0.5f, 0.5f, 1.5f};
    for (int i = 0; i < 4; i++) {
        f->bn_p[i] = rand_buf(c->c_out, lo[i], hi[i]);
        set_param(&f->bn.params[i], bn_names[i], 1, c_dims, f->bn_p[i]);
    }
    const int64_t oh = jp_cpu_out_size(c->h, c->kh, c->sh, c->ph, c->dh);
    const int64_t ow = jp_cpu_out_size(c->w, c->kw, c->sw, c->pw, c->dw);
    const int64_t in_dims[4] = {c->n, c->c_in, c->h, c->w};
    const int64_t out_dims[4] = {c->n, c->c_out, oh, ow};
    f->x = rand_buf((int64_t)c->n * c->c_in * c->h * c->w, -1.0f, 1.0f);
    f->out_n = (int64_t)c->n * c->c_out * oh * ow;
    f->out = zero_buf(f->out_n);
    f->ref = zero_buf(f->out_n);
    f->step.op = &f->op;
    f->step.n_in = 1;
    f->step.in[0] = make_tensor(4, in_dims, f->x);
    f->step.out = make_tensor(4, out_dims, f->out);
}

static void conv_fixture_free(conv_fixture *f)
{
    jp_cpu_free(f->x);
    jp_cpu_free(f->wt);
    jp_cpu_free(f->b);
    for (int i = 0; i < 4; i++)
        jp_cpu_free(f->bn_p[i]);
    jp_cpu_free(f->out);
    jp_cpu_free(f->ref);
}

/* Whether a known fast kernel must accept the case (1) or refuse it (0): one
 * that refuses a case it should take fails the test, as does one that takes
 * a case it should not.  -1 for a kernel this table does not know: it runs
 * the cases it supports. */
static int conv_expect_support(const char *kernel, const conv_case *c)
{
    if (strcmp(kernel, "cpu/conv2d/im2col_blas") == 0 ||
        strcmp(kernel, "cpu/conv2d/packed_gemm") == 0)
        return true;
    if (strcmp(kernel, "cpu/conv2d/gemm_1x1") == 0)
        return c->kh == 1 && c->kw == 1 && c->ph == 0 && c->pw == 0;
    if (strcmp(kernel, "cpu/conv2d/depthwise") == 0)
        return c->groups == c->c_in && c->c_out == c->c_in;
    if (strcmp(kernel, "cpu/conv2d/grouped") == 0) /* at most 64 channels a group */
        return c->groups > 1 && !(c->groups == c->c_in && c->c_out == c->c_in) &&
               c->c_in / c->groups <= 64 && c->c_out / c->groups <= 64;
    if (strcmp(kernel, "cpu/conv2d/winograd") == 0)
        return c->kh == 3 && c->kw == 3 && c->sh == 1 && c->sw == 1 && c->dh == 1 && c->dw == 1 &&
               c->groups == 1;
    if (strcmp(kernel, "cpu/conv2d/direct") == 0) /* AVX-512 only */
        return JP_VLEN == 16 && c->groups == 1;
    return -1;
}

static void test_conv_case(const conv_case *c)
{
    const jp_kernel *fast[32];
    const int n_fast = kernels_of(JP_OP_CONV2D, false, fast);
    const jp_kernel *ref = jp_kernel_reference(JP_OP_CONV2D);
    conv_fixture f;
    conv_fixture_init(&f, c);
    /* combos 8: with and without batch norm, each activation of JP_ACTIVATIONS. */
    for (int combo = 0; combo < 2 * JP_ACT_COUNT; combo++) {
        bool bn;
        jp_activation act;
        if (c->combos == 1) {
            if (combo > 0)
                break;
            bn = true;
            act = JP_ACT_RELU;
        } else {
            bn = combo >= JP_ACT_COUNT;
            act = (jp_activation)(combo % JP_ACT_COUNT);
        }
        f.step.fused_bn = bn ? &f.bn : NULL;
        f.step.act = act;
        char fusion[32];
        snprintf(fusion, sizeof fusion, "%s%s", bn ? "bn+" : "", act_name(act));
        jp_error err = {0};
        set_threads(2);
        f.step.out.data = f.ref;
        if (!ref->supports(&f.step) || run_kernel(ref, &f.step, &err) != JP_OK) {
            char name[256];
            snprintf(name, sizeof name, "conv2d/reference %s %s", c->label, fusion);
            jp_test_fail(name, "reference refused or failed: %s", err.msg);
            continue;
        }
        for (int k = 0; k < n_fast; k++) {
            const jp_kernel *kern = fast[k];
            const bool has = kern->supports(&f.step);
            const int expect = conv_expect_support(kern->name, c);
            const bool want = expect < 0 ? has : expect;
            char name[256];
            if (has != want) {
                snprintf(name, sizeof name, "%s supports %s %s", kern->name + 4, c->label, fusion);
                jp_test_fail(name, "supports() says %s, expected %s", has ? "yes" : "no",
                             want ? "yes" : "no");
                continue;
            }
            if (!has)
                continue;
            for (int t = 1; t <= 2; t++) {
                set_threads(t);
                memset(f.out, 0xff, (size_t)f.out_n * sizeof(float)); /* NaN: unwritten shows */
                f.step.out.data = f.out;
                snprintf(name, sizeof name, "%s %s n%d %s t%d", kern->name + 4, c->label, c->n,
                         fusion, t);
                jp_status st = run_kernel(kern, &f.step, &err);
                if (st != JP_OK)
                    jp_test_fail(name, "%s: %s", jp_status_name(st), err.msg);
                else
                    check_close(name, f.out, f.ref, f.out_n);
            }
        }
    }
    conv_fixture_free(&f);
}

static void test_convs(void)
{
    /* label, n, c_in, c_out, h, w, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias, combos */
    static const conv_case cases[] = {
        {"13x11 3x3 s1 p1", 1, 5, 7, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 8},
        {"13x11 3x3 s2 p4 g2", 2, 6, 10, 13, 11, 3, 3, 2, 2, 4, 4, 1, 1, 2, false, 8},
        {"15x17 3x3 s1 p2 d2", 1, 8, 6, 15, 17, 3, 3, 1, 1, 2, 2, 2, 2, 1, true, 8},
        {"12x9 3x3 s2 p1 g4", 2, 16, 8, 12, 9, 3, 3, 2, 2, 1, 1, 1, 1, 4, true, 8},
        {"9x14 5x3 s(2,1) p(2,0) d(1,2)", 1, 4, 6, 9, 14, 5, 3, 2, 1, 2, 0, 1, 2, 1, false, 8},
        {"14x14 1x1 s1", 1, 32, 48, 14, 14, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 8},
        {"13x11 1x1 s1 bias", 2, 24, 20, 13, 11, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"15x13 1x1 s2", 2, 16, 24, 15, 13, 1, 1, 2, 2, 0, 0, 1, 1, 1, false, 8},
        {"13x11 1x1 s1 g2", 1, 16, 12, 13, 11, 1, 1, 1, 1, 0, 0, 1, 1, 2, false, 1},
        {"9x9 1x1 s1 p1", 1, 8, 8, 9, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"40x36 7x7 s2 p3 (stem)", 1, 3, 16, 40, 36, 7, 7, 2, 2, 3, 3, 1, 1, 1, false, 1},
        {"63x67 11x11 s4 p2 (alexnet)", 1, 3, 12, 63, 67, 11, 11, 4, 4, 2, 2, 1, 1, 1, true, 1},
        {"20x22 3x3 s3 p1", 2, 5, 9, 20, 22, 3, 3, 3, 3, 1, 1, 1, 1, 1, false, 8},
        /* direct's tiles: rows of whole 16-position tiles and a partial one,
         * 2.5 blocks of 16 output channels, two images */
        {"33x64 3x3 s2 p1 c8->40", 2, 8, 40, 33, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, true, 8},
        {"9x75 5x5 s2 p2 c6->17", 1, 6, 17, 9, 75, 5, 5, 2, 2, 2, 2, 1, 1, 1, false, 8},
        /* tiles across two rows (14 wide) and three (7 wide) */
        {"28x28 3x3 s2 p1 c24->20", 2, 24, 20, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, true, 1},
        {"14x14 3x3 s2 p1 c16->33", 1, 16, 33, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, false, 1},
        {"224x224 11x11 s4 p2 c3->64 (alexnet)", 1, 3, 64, 224, 224, 11, 11, 4, 4, 2, 2, 1, 1, 1, true, 1},
        {"28x28 3x3 s1 p1 c64", 1, 64, 64, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"7x7 3x3 s1 p1 c256->128", 1, 256, 128, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"7x7 3x3 s1 p1 c64->12", 1, 64, 12, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 8},
        {"14x14 3x3 s1 p1 c40->20", 2, 40, 20, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        /* few columns, one K block: packed_gemm's shared-B row split at t2 */
        {"5x5 1x1 c64->36", 1, 64, 36, 5, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"56x56 1x1 s1 c64->96", 1, 64, 96, 56, 56, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        /* 28x28 expansion (rows split) and projection (K split) */
        {"28x28 1x1 c40->240", 1, 40, 240, 28, 28, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"28x28 1x1 c240->40", 1, 240, 40, 28, 28, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 8},
        /* squeeze-excitation: a 1x1 map, K >= M (split K) and K < M (rows);
         * packed_gemm reads the one column in place, nothing packed */
        {"1x1 1x1 c480->20 (SE fc1)", 1, 480, 20, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"1x1 1x1 c20->480 (SE fc2)", 1, 20, 480, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"2x2 1x1 c200->72", 2, 200, 72, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"28x28 1x1 s2 c64->128", 2, 64, 128, 28, 28, 1, 1, 2, 2, 0, 0, 1, 1, 1, false, 1},
        {"17x19 dw 3x3 s1 p1", 1, 24, 24, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 24, false, 8},
        {"17x19 dw 3x3 s2 p1", 2, 24, 24, 17, 19, 3, 3, 2, 2, 1, 1, 1, 1, 24, false, 8},
        {"17x19 dw 5x5 s1 p2", 1, 20, 20, 17, 19, 5, 5, 1, 1, 2, 2, 1, 1, 20, true, 8},
        {"17x19 dw 5x5 s2 p2", 2, 20, 20, 17, 19, 5, 5, 2, 2, 2, 2, 1, 1, 20, false, 8},
        {"10x8 dw 3x3 s1 p0", 1, 8, 8, 10, 8, 3, 3, 1, 1, 0, 0, 1, 1, 8, false, 1},
        {"10x8 dw 3x3 s2 p5", 1, 8, 8, 10, 8, 3, 3, 2, 2, 5, 5, 1, 1, 8, false, 1},
        {"21x23 dw 3x3 s1 p2 d2", 1, 8, 8, 21, 23, 3, 3, 1, 1, 2, 2, 2, 2, 8, false, 1},
        {"11x13 dw 5x3 s(1,2) p(2,1)", 1, 8, 8, 11, 13, 5, 3, 1, 2, 2, 1, 1, 1, 8, true, 1},
        {"112x112 dw 3x3 s1 p1 c32", 1, 32, 32, 112, 112, 3, 3, 1, 1, 1, 1, 1, 1, 32, false, 1},
        /* maps at most 8 wide: two channels per vector on AVX-512, odd
         * channel counts, batches, more than 8 rows, no padding */
        {"7x7 dw 5x5 s1 p2 c7", 2, 7, 7, 7, 7, 5, 5, 1, 1, 2, 2, 1, 1, 7, true, 8},
        {"7x7 dw 3x3 s1 p1 c10", 1, 10, 10, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 10, false, 8},
        {"5x8 dw 5x5 s1 p2 c9", 1, 9, 9, 5, 8, 5, 5, 1, 1, 2, 2, 1, 1, 9, false, 1},
        {"12x6 dw 3x3 s1 p1 c6", 2, 6, 6, 12, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6, false, 1},
        {"9x9 dw 5x5 s1 p0 c4", 1, 4, 4, 9, 9, 5, 5, 1, 1, 0, 0, 1, 1, 4, true, 1},
        {"112x112 dw 3x3 s2 p1 c16", 1, 16, 16, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 16, false, 1},
        {"28x28 dw 5x5 s2 p2 c40", 1, 40, 40, 28, 28, 5, 5, 2, 2, 2, 2, 1, 1, 40, false, 1},
        {"3x3 dw 5x5 s1 p2 c4", 1, 4, 4, 3, 3, 5, 5, 1, 1, 2, 2, 1, 1, 4, false, 1},
        /* wide rows: the vector paths' interior strips (no edge masks) */
        {"20x150 dw 3x3 s1 p1", 1, 3, 3, 20, 150, 3, 3, 1, 1, 1, 1, 1, 1, 3, false, 1},
        {"9x150 dw 5x5 s1 p2", 1, 3, 3, 9, 150, 5, 5, 1, 1, 2, 2, 1, 1, 3, true, 1},
        {"6x301 dw 3x3 s2 p1", 1, 3, 3, 6, 301, 3, 3, 2, 2, 1, 1, 1, 1, 3, false, 1},
        {"9x300 dw 5x5 s2 p2", 2, 3, 3, 9, 300, 5, 5, 2, 2, 2, 2, 1, 1, 3, false, 1},
        {"1x1 3x3 s1 p1 c4", 1, 4, 6, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        /* 3x3 s1 (winograd's 4x4 output tiles): maps that are not a multiple
         * of 4, a single partial tile, padding 0 / 2 / above the kernel,
         * channels not a multiple of 8 or 16, tiles that span images */
        {"2x2 3x3 s1 p1 c3->5", 1, 3, 5, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 8},
        {"3x3 3x3 s1 p0 c7->9", 2, 7, 9, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, false, 8},
        {"3x3 3x3 s1 p1 c9->7", 1, 9, 7, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 8},
        {"1x1 3x3 s1 p2 c5->3", 1, 5, 3, 1, 1, 3, 3, 1, 1, 2, 2, 1, 1, 1, false, 8},
        {"6x5 3x3 s1 p0 c6->10", 1, 6, 10, 6, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1, false, 8},
        {"19x23 3x3 s1 p(2,0) c17->33", 2, 17, 33, 19, 23, 3, 3, 1, 1, 2, 0, 1, 1, 1, true, 8},
        {"9x7 3x3 s1 p4 c4->6", 1, 4, 6, 9, 7, 3, 3, 1, 1, 4, 4, 1, 1, 1, false, 8},
        {"1x13 3x3 s1 p1 c8->8", 1, 8, 8, 1, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"30x26 3x3 s1 p1 c24->40", 3, 24, 40, 30, 26, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 1},
        {"56x56 3x3 s1 p1 c64", 1, 64, 64, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"14x14 3x3 s1 p1 c256", 1, 256, 256, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"7x7 3x3 s1 p1 c512", 1, 512, 512, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        /* 3 x 35 x 35 tiles, more than winograd's 8 MiB block holds: two
         * blocks (one per thread at t2, one after the other at t1), each
         * spanning two images, cut inside a tile row */
        {"140x140 3x3 s1 p1 c8 (2 blocks)", 3, 8, 8, 140, 140, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 1},
        {"3x3 3x3 s1 p1 g3", 1, 6, 6, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, false, 1},
        /* grouped (RegNet, ResNeXt): 8 channels a group (a tile of 4 twice),
         * stride 2 from an odd map, groups of 3 and 5 (a partial tile), more
         * output than input channels a group, dilation, 5x5, a 1x1, 64 a
         * group (the limit) and 65 (refused), rows split into blocks */
        {"56x56 3x3 s1 p1 c48 g6 (regnet)", 1, 48, 48, 56, 56, 3, 3, 1, 1, 1, 1, 1, 1, 6, true, 8},
        {"29x27 3x3 s2 p1 c40 g5", 2, 40, 40, 29, 27, 3, 3, 2, 2, 1, 1, 1, 1, 5, false, 8},
        {"13x15 3x3 s1 p1 c9->15 g3", 1, 9, 15, 13, 15, 3, 3, 1, 1, 1, 1, 1, 1, 3, true, 8},
        {"15x17 3x3 s1 p2 d2 c12->20 g4", 1, 12, 20, 15, 17, 3, 3, 1, 1, 2, 2, 2, 2, 4, false, 1},
        {"11x19 5x5 s2 p2 c10->6 g2", 2, 10, 6, 11, 19, 5, 5, 2, 2, 2, 2, 1, 1, 2, true, 1},
        {"9x10 5x3 s(1,3) p(2,1) c8 g2", 1, 8, 8, 9, 10, 5, 3, 1, 3, 2, 1, 1, 1, 2, false, 1},
        {"7x7 3x3 s1 p1 c128 g2 (64 a group)", 1, 128, 128, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 2, true, 1},
        {"7x7 3x3 s1 p1 c130 g2 (65 a group)", 1, 130, 130, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 2, false, 1},
        {"112x112 3x3 s2 p1 c32 g4 (row blocks)", 1, 32, 32, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 4, false, 1},
        {"14x14 3x3 s1 p1 c64 g16 (cg 4)", 2, 64, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 16, false, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_conv_case(&cases[i]);
}

/* A convolution with a fused residual add (ResNet's out += identity):
 * out = act(bn(conv(x)) + residual).  Expected: the reference without the
 * activation, plus the residual, then the activation, in this test.  The
 * kernels with a residual epilogue (packed_gemm, im2col_blas, gemm_1x1 and
 * direct on AVX-512) must take every such step of a shape they take, and
 * every other kernel must refuse it, or the executor could hand it one that
 * ignores the residual. */
static void test_conv_residual(void)
{
    /* label, n, c_in, c_out, h, w, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias, combos:
     * 1x1 at 56x56 (columns split, B read in place with a packed tail), 14x14
     * with K >= M (split K), 7x7 with K < M (rows split, shared B), a 3x3, a
     * strided downsample, two images, two groups. */
    static const conv_case cases[] = {
        {"56x56 1x1 c64->96 +res", 1, 64, 96, 56, 56, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"14x14 1x1 c256->64 +res", 1, 256, 64, 14, 14, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"7x7 1x1 c64->256 +res", 1, 64, 256, 7, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"13x11 3x3 p1 c24->20 +res", 2, 24, 20, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 1},
        {"28x28 1x1 s2 c32->64 +res", 1, 32, 64, 28, 28, 1, 1, 2, 2, 0, 0, 1, 1, 1, false, 1},
        {"56x56 3x3 s2 c16->24 +res", 1, 16, 24, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, true, 1},
        {"28x28 1x1 c240->40 +res", 1, 240, 40, 28, 28, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"13x11 1x1 c20->12 g2 +res", 2, 20, 12, 13, 11, 1, 1, 1, 1, 0, 0, 1, 1, 2, true, 1},
    };
    const jp_kernel *ref = find_kernel("cpu/conv2d/reference");
    const char *takers[] = {"cpu/conv2d/packed_gemm", "cpu/conv2d/im2col_blas", "cpu/conv2d/gemm_1x1",
                            "cpu/conv2d/direct"};
    const int n_takers = sizeof takers / sizeof takers[0];
    /* Every other convolution kernel of the registry, the reference included. */
    const jp_kernel *convs[32], *others[32];
    const int n_convs = kernels_of(JP_OP_CONV2D, true, convs);
    int n_others = 0;
    for (int k = 0; k < n_convs; k++) {
        bool taker = false;
        for (int t = 0; t < n_takers; t++)
            taker = taker || strcmp(convs[k]->name, takers[t]) == 0;
        if (!taker)
            others[n_others++] = convs[k];
    }
    jp_op add = {.name = "test.add", .type = JP_OP_ADD, .n_inputs = 2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i];
        conv_fixture f;
        conv_fixture_init(&f, c);
        float *res = rand_buf(f.out_n, -1.0f, 1.0f);
        for (int a = 0; a < 2; a++) {
            const jp_activation act = a ? JP_ACT_RELU : JP_ACT_NONE;
            char name[256];
            jp_error err = {0};
            set_threads(2);
            f.step.fused_bn = &f.bn;
            f.step.act = JP_ACT_NONE;
            f.step.out.data = f.ref;
            if (run_kernel(ref, &f.step, &err) != JP_OK) {
                snprintf(name, sizeof name, "conv2d/reference %s", c->label);
                jp_test_fail(name, "%s", err.msg);
                continue;
            }
            for (int64_t j = 0; j < f.out_n; j++)
                f.ref[j] = jp_cpu_act(f.ref[j] + res[j], act);
            jp_step st = f.step;
            st.fused_add = &add;
            st.act = act;
            st.n_in = 2;
            st.in[1] = st.out;
            st.in[1].data = res;
            for (int k = 0; k < n_others; k++) {
                snprintf(name, sizeof name, "%s refuses a residual step %s %s (err 0.0e+00)",
                         others[k]->name + 4, c->label, act_name(act));
                JP_CHECK(name, !others[k]->supports(&st), "accepted it");
            }
            for (int t = 0; t < 2 * n_takers; t++) {
                const jp_kernel *pg = find_kernel(takers[t / 2]);
                const int threads = 1 + t % 2;
                if (!conv_expect_support(pg->name, c)) { /* a shape it never takes */
                    if (t % 2 == 0) {
                        snprintf(name, sizeof name, "%s refuses a residual step of a shape it does not "
                                 "take: %s %s (err 0.0e+00)", pg->name + 4, c->label, act_name(act));
                        JP_CHECK(name, !pg->supports(&st), "accepted it");
                    }
                    continue;
                }
                set_threads(threads);
                memset(f.out, 0xff, (size_t)f.out_n * sizeof(float));
                st.out.data = f.out;
                snprintf(name, sizeof name, "%s %s bn+%s t%d", pg->name + 4, c->label, act_name(act),
                         threads);
                jp_status rc = pg->supports(&st) ? run_kernel(pg, &st, &err)
                                                 : jp_error_set(&err, JP_ERR_UNSUPPORTED, "refused");
                if (rc != JP_OK)
                    jp_test_fail(name, "%s", err.msg);
                else
                    check_close(name, f.out, f.ref, f.out_n);
            }
        }
        jp_cpu_free(res);
        conv_fixture_free(&f);
    }
}

/* ---- linear ---- */

static void test_linear_case(int n, int in_f, int out_f, bool bias, jp_activation act)
{
    jp_op op = {.name = "test.fc", .type = JP_OP_LINEAR, .n_inputs = 1};
    op.attrs.linear = (jp_linear_attrs){in_f, out_f, bias};
    const int64_t w_dims[2] = {out_f, in_f}, b_dims[1] = {out_f};
    const float bound = 1.0f / sqrtf((float)in_f);
    float *wt = rand_buf((int64_t)out_f * in_f, -bound, bound);
    float *b = rand_buf(out_f, -0.5f, 0.5f);
    set_param(&op.params[0], "test.fc.weight", 2, w_dims, wt);
    set_param(&op.params[1], "test.fc.bias", 1, b_dims, b);
    op.n_params = bias ? 2 : 1;
    const int64_t in_dims[2] = {n, in_f}, out_dims[2] = {n, out_f};
    float *x = rand_buf((int64_t)n * in_f, -1.0f, 1.0f);
    float *out = zero_buf((int64_t)n * out_f), *ref = zero_buf((int64_t)n * out_f);
    jp_step step = {.op = &op, .act = act, .n_in = 1};
    step.in[0] = make_tensor(2, in_dims, x);
    step.out = make_tensor(2, out_dims, out);
    const jp_kernel *kr = find_kernel("cpu/linear/reference");
    /* Every linear kernel of the registry: blas takes every batch, gemv a
     * batch of one only; another runs where it says it can. */
    const jp_kernel *fast[32];
    const int n_fast = kernels_of(JP_OP_LINEAR, false, fast);
    for (int f = 0; f < n_fast; f++) {
        const jp_kernel *kb = fast[f];
        const bool want = strcmp(kb->name, "cpu/linear/blas") == 0   ? true
                          : strcmp(kb->name, "cpu/linear/gemv") == 0 ? n == 1
                                                                     : kb->supports(&step);
        for (int t = 1; t <= 2; t++) {
            char name[256];
            snprintf(name, sizeof name, "%s %dx%d->%d %s %s t%d", kb->name + 4, n, in_f, out_f,
                     bias ? "bias" : "nobias", act_name(act), t);
            jp_error err = {0};
            set_threads(t);
            step.out = make_tensor(2, out_dims, ref);
            jp_status st = run_kernel(kr, &step, &err);
            step.out.data = out;
            memset(out, 0, (size_t)n * (size_t)out_f * sizeof *out);
            if (kb->supports(&step) != want) {
                jp_test_fail(name, "supports() says %s", want ? "no" : "yes");
                continue;
            }
            if (!want) {
                jp_test_skip(name, "batches above one are cpu/linear/blas's, by design");
                continue;
            }
            if (st == JP_OK)
                st = run_kernel(kb, &step, &err);
            if (st != JP_OK)
                jp_test_fail(name, "%s", err.msg);
            else
                check_close(name, out, ref, (int64_t)n * out_f);
        }
    }
    /* The reference itself, on the first row, against a direct sum. */
    double worst = 0.0, ref_max = 0.0;
    for (int o = 0; o < out_f; o++) {
        double acc = bias ? b[o] : 0.0;
        for (int j = 0; j < in_f; j++)
            acc += (double)wt[(int64_t)o * in_f + j] * x[j];
        if (act == JP_ACT_RELU && acc < 0)
            acc = 0;
        worst = fmax(worst, fabs(acc - ref[o]));
        ref_max = fmax(ref_max, fabs(acc));
    }
    char name[256];
    snprintf(name, sizeof name, "linear/reference %dx%d->%d %s %s (err %.1e)", n, in_f, out_f,
             bias ? "bias" : "nobias", act_name(act), worst);
    JP_CHECK(name, within_tol(worst, ref_max), "max|ref| %.3g", ref_max);
    jp_cpu_free(wt);
    jp_cpu_free(b);
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

/* ---- giving the originals back during prepare (jp_step.give_back_params) ---- */

/* Whether every whole page inside [p, p + n) reads zero: given back. */
static bool pages_zero(const float *p, int64_t n)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)(p + n)) & ~(page - 1);
    for (const unsigned char *b = (const unsigned char *)lo; b < (const unsigned char *)hi; b++)
        if (*b)
            return false;
    return hi > lo;
}

/* Kernel k on step twice, from the same weights w (n floats, restored from
 * keep): without and with give_back_params.  The outputs must be equal bit
 * for bit, and with it the weights' pages must have been given back. */
static void check_give_back(const jp_kernel *k, jp_step *step, float *w, const float *keep, int64_t n,
                            const char *label)
{
    char name[256];
    snprintf(name, sizeof name, "%s gives its weights back in prepare (%s)", k->name, label);
    const size_t out_bytes = (size_t)jp_tensor_numel(&step->out) * sizeof(float);
    float *first = malloc(out_bytes);
    jp_error err = {0};
    memcpy(w, keep, (size_t)n * sizeof(float));
    step->give_back_params = false;
    jp_status st = first ? run_kernel(k, step, &err) : JP_ERR_NOMEM;
    if (st == JP_OK) {
        memcpy(first, step->out.data, out_bytes);
        step->give_back_params = true;
        st = run_kernel(k, step, &err);
    }
    step->give_back_params = false;
    if (st != JP_OK)
        jp_test_fail(name, "%s", err.msg);
    else
        JP_CHECK(name, memcmp(first, step->out.data, out_bytes) == 0 && pages_zero(w, n),
                 "output %s, weights' pages %s", memcmp(first, step->out.data, out_bytes) ? "differs" : "equal",
                 pages_zero(w, n) ? "given back" : "still there");
    memcpy(w, keep, (size_t)n * sizeof(float));
    free(first);
}

/* Every kernel that copies its weights (params_copied) gives the originals
 * back as it copies them when the step allows, so that the largest
 * original is not resident beside its copies (issue 16: VGG's fc6, 392 MiB,
 * was the peak of the whole run). */
static void test_give_back(void)
{
    const conv_case cases[] = {
        {"64->128 3x3 s1 p1", 1, 64, 128, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 1},
        {"256->128 1x1", 1, 256, 128, 14, 14, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"512 dw 3x3", 1, 512, 512, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 512, false, 1},
        {"128->128 g8 3x3", 1, 128, 128, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 8, false, 1},
    };
    const jp_kernel *convs[32];
    const int n_convs = kernels_of(JP_OP_CONV2D, false, convs);
    set_threads(2);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        conv_fixture f;
        conv_fixture_init(&f, &cases[c]);
        const int64_t n = jp_param_numel(&f.op.params[0]);
        float *keep = malloc((size_t)n * sizeof(float));
        memcpy(keep, f.wt, (size_t)n * sizeof(float));
        for (int k = 0; k < n_convs; k++)
            if (convs[k]->params_copied && convs[k]->supports(&f.step))
                check_give_back(convs[k], &f.step, f.wt, keep, n, cases[c].label);
        free(keep);
        conv_fixture_free(&f);
    }
    /* cpu/linear/gemv: 12 MiB of weights, copied in more than one chunk */
    const int in_f = 2048, out_f = 1536;
    jp_op op = {.name = "test.fc", .type = JP_OP_LINEAR, .n_inputs = 1, .n_params = 1};
    op.attrs.linear = (jp_linear_attrs){in_f, out_f, false};
    const int64_t w_dims[2] = {out_f, in_f}, in_dims[2] = {1, in_f}, out_dims[2] = {1, out_f};
    const int64_t n = (int64_t)out_f * in_f;
    float *wt = rand_buf(n, -0.02f, 0.02f), *keep = malloc((size_t)n * sizeof(float));
    float *x = rand_buf(in_f, -1.0f, 1.0f), *out = zero_buf(out_f);
    memcpy(keep, wt, (size_t)n * sizeof(float));
    set_param(&op.params[0], "test.fc.weight", 2, w_dims, wt);
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(2, in_dims, x);
    step.out = make_tensor(2, out_dims, out);
    const jp_kernel *linears[32];
    const int n_linears = kernels_of(JP_OP_LINEAR, false, linears);
    for (int k = 0; k < n_linears; k++)
        if (linears[k]->params_copied && linears[k]->supports(&step))
            check_give_back(linears[k], &step, wt, keep, n, "1x2048->1536");
    free(keep);
    jp_cpu_free(wt);
    jp_cpu_free(x);
    jp_cpu_free(out);
}

static void test_linears(void)
{
    test_linear_case(1, 37, 129, true, JP_ACT_NONE);
    test_linear_case(1, 37, 129, false, JP_ACT_RELU);
    test_linear_case(2, 1280, 1000, true, JP_ACT_NONE);
    test_linear_case(3, 301, 257, false, JP_ACT_RELU);
    test_linear_case(1, 9216, 512, true, JP_ACT_RELU);
    test_linear_case(1, 15, 3, true, JP_ACT_RELU);    /* shorter than a vector, fewer rows than 4 */
    test_linear_case(1, 1283, 1001, true, JP_ACT_NONE); /* tails in both directions */
}

/* ---- pooling ---- */

static void test_max_pool(const char *label, int n, int c, int h, int w, int k, int s, int p,
                          int d, bool ceil_mode, int expect_o)
{
    jp_op op = {.name = "test.pool", .type = JP_OP_MAX_POOL2D, .n_inputs = 1};
    op.attrs.max_pool2d = (jp_max_pool2d_attrs){k, k, s, s, p, p, d, d, ceil_mode};
    const int64_t in_dims[4] = {n, c, h, w}, out_dims[4] = {n, c, expect_o, expect_o};
    const int64_t out_n = (int64_t)n * c * expect_o * expect_o;
    float *x = rand_buf((int64_t)n * c * h * w, -1.0f, 1.0f);
    float *out = zero_buf(out_n), *ref = zero_buf(out_n);
    /* Direct: every window cell, -inf outside. */
    for (int64_t pl = 0; pl < (int64_t)n * c; pl++)
        for (int oy = 0; oy < expect_o; oy++)
            for (int ox = 0; ox < expect_o; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * s - p + ky * d, ix = ox * s - p + kx * d;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w && x[(pl * h + iy) * w + ix] > m)
                            m = x[(pl * h + iy) * w + ix];
                    }
                ref[(pl * expect_o + oy) * expect_o + ox] = m;
            }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(4, out_dims, out);
    /* Every CPU max-pool kernel of the registry: the reference takes every
     * pool, separable every undilated one, another where it says it can. */
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_MAX_POOL2D, true, kernels);
    for (int i = 0; i < n_kernels; i++) {
        const jp_kernel *kern = kernels[i];
        const bool want = kern->is_reference                                      ? true
                          : strcmp(kern->name, "cpu/max_pool2d/separable") == 0 ? d == 1
                                                                                : kern->supports(&step);
        char name[256];
        snprintf(name, sizeof name, "%s %s", kern->name + 4, label);
        jp_error err = {0};
        memset(out, 0, (size_t)out_n * sizeof *out);
        if (kern->supports(&step) != want)
            jp_test_fail(name, "supports() says %s for the torch output size %d", want ? "no" : "yes", expect_o);
        else if (!want)
            jp_test_skip(name, "dilated pools are the reference's, by design");
        else if (run_kernel(kern, &step, &err) != JP_OK)
            jp_test_fail(name, "%s", err.msg);
        else
            check_close(name, out, ref, out_n);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

/* A NaN anywhere in a window makes that output NaN (PyTorch), whichever
 * side of the comparison it lands on; the other outputs stay finite. */
static void test_max_pool_nan(void)
{
    jp_op op = {.name = "test.pool", .type = JP_OP_MAX_POOL2D, .n_inputs = 1};
    op.attrs.max_pool2d = (jp_max_pool2d_attrs){3, 3, 2, 2, 1, 1, 1, 1, false};
    const int64_t in_dims[4] = {1, 1, 9, 9}, out_dims[4] = {1, 1, 5, 5};
    float *x = rand_buf(81, -1.0f, 1.0f), *out = zero_buf(25);
    x[0] = NAN;      /* first in its windows: output (0, 0) only        */
    x[4 * 9 + 6] = NAN; /* row 4, column 6: every output whose window covers it */
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(4, out_dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_MAX_POOL2D, true, kernels);
    for (int i = 0; i < n_kernels; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s NaN propagates (err 0.0e+00)", kernels[i]->name + 4);
        jp_error err = {0};
        bool ok = run_kernel(kernels[i], &step, &err) == JP_OK;
        int n_nan = 0;
        for (int oy = 0; oy < 5; oy++)
            for (int ox = 0; ox < 5; ox++) {
                /* Window rows 2oy-1..2oy+1, columns 2ox-1..2ox+1. */
                bool want = (oy == 0 && ox == 0) ||
                            (2 * oy - 1 <= 4 && 4 <= 2 * oy + 1 && 2 * ox - 1 <= 6 && 6 <= 2 * ox + 1);
                bool got = out[oy * 5 + ox] != out[oy * 5 + ox];
                ok &= want == got;
                n_nan += got;
            }
        JP_CHECK(name, ok, "%d NaN outputs, or the wrong ones (%s)", n_nan, err.msg);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
}

static void test_avg_pool(const char *label, int n, int c, int h, int w, int oh, int ow)
{
    jp_op op = {.name = "test.avgpool", .type = JP_OP_ADAPTIVE_AVG_POOL2D, .n_inputs = 1};
    op.attrs.adaptive_avg_pool2d = (jp_adaptive_avg_pool2d_attrs){oh, ow};
    const int64_t in_dims[4] = {n, c, h, w}, out_dims[4] = {n, c, oh, ow};
    const int64_t out_n = (int64_t)n * c * oh * ow;
    float *x = rand_buf((int64_t)n * c * h * w, -1.0f, 1.0f);
    float *out = zero_buf(out_n), *ref = zero_buf(out_n);
    for (int64_t pl = 0; pl < (int64_t)n * c; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                int y0 = (int)floor((double)i * h / oh), y1 = (int)ceil((double)(i + 1) * h / oh);
                int x0 = (int)floor((double)j * w / ow), x1 = (int)ceil((double)(j + 1) * w / ow);
                double sum = 0.0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        sum += x[(pl * h + yy) * w + xx];
                ref[(pl * oh + i) * ow + j] = (float)(sum / ((y1 - y0) * (x1 - x0)));
            }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(4, out_dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_ADAPTIVE_AVG_POOL2D, true, kernels);
    for (int i = 0; i < n_kernels; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s %s", kernels[i]->name + 4, label);
        jp_error err = {0};
        memset(out, 0xff, (size_t)out_n * sizeof *out);
        if (!kernels[i]->supports(&step))
            jp_test_fail(name, "refused");
        else if (run_kernel(kernels[i], &step, &err) != JP_OK)
            jp_test_fail(name, "%s", err.msg);
        else
            check_close(name, out, ref, out_n);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

/* nn.AvgPool2d against a sum written here: the divisor counts the window's
 * cells inside input + padding (count_include_pad) or inside the input. */
static void test_avg_pool2d(const char *label, int n, int c, int h, int w, int k, int s, int p, bool ceil_mode,
                            bool include_pad, int expect_oh, int expect_ow)
{
    jp_op op = {.name = "test.avgpool2d", .type = JP_OP_AVG_POOL2D, .n_inputs = 1};
    op.attrs.avg_pool2d = (jp_avg_pool2d_attrs){k, k, s, s, p, p, ceil_mode, include_pad};
    const int64_t in_dims[4] = {n, c, h, w}, out_dims[4] = {n, c, expect_oh, expect_ow};
    const int64_t out_n = (int64_t)n * c * expect_oh * expect_ow;
    float *x = rand_buf((int64_t)n * c * h * w, -1.0f, 1.0f);
    float *out = zero_buf(out_n), *ref = zero_buf(out_n);
    for (int64_t pl = 0; pl < (int64_t)n * c; pl++)
        for (int oy = 0; oy < expect_oh; oy++)
            for (int ox = 0; ox < expect_ow; ox++) {
                double sum = 0.0;
                int inside = 0, padded = 0;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        const int iy = oy * s - p + ky, ix = ox * s - p + kx;
                        padded += iy < h + p && ix < w + p;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                            sum += x[(pl * h + iy) * w + ix];
                            inside++;
                        }
                    }
                const int divisor = include_pad ? padded : inside;
                ref[(pl * expect_oh + oy) * expect_ow + ox] = inside ? (float)(sum / divisor) : 0.0f;
            }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(4, out_dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_AVG_POOL2D, true, kernels);
    for (int i = 0; i < n_kernels; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s %s%s", kernels[i]->name + 4, label, include_pad ? "" : " exclude pad");
        jp_error err = {0};
        memset(out, 0xff, (size_t)out_n * sizeof *out);
        if (!kernels[i]->supports(&step))
            jp_test_fail(name, "refused the torch output size %dx%d", expect_oh, expect_ow);
        else if (run_kernel(kernels[i], &step, &err) != JP_OK)
            jp_test_fail(name, "%s", err.msg);
        else
            check_close(name, out, ref, out_n);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

static void test_pools(void)
{
    /* Expected sizes are torch.nn.functional.avg_pool2d's on torch 1.13. */
    test_avg_pool2d("56x56 2x2 s2 (densenet transition)", 1, 8, 56, 56, 2, 2, 0, false, true, 28, 28);
    test_avg_pool2d("7x9 2x2 s2 ceil (last window off the edge)", 2, 3, 7, 9, 2, 2, 0, true, true, 4, 5);
    test_avg_pool2d("7x9 3x3 s2 p1 ceil", 1, 3, 7, 9, 3, 2, 1, true, true, 4, 5);
    test_avg_pool2d("7x9 3x3 s2 p1 ceil", 1, 3, 7, 9, 3, 2, 1, true, false, 4, 5);
    test_avg_pool2d("13x13 3x3 s1 p1", 1, 5, 13, 13, 3, 1, 1, false, true, 13, 13);
    test_avg_pool2d("10x10 5x5 s3 p2 ceil", 1, 2, 10, 10, 5, 3, 2, true, false, 4, 4);
    test_avg_pool2d("1x1 1x1 s1", 1, 3, 1, 1, 1, 1, 0, false, true, 1, 1);
    /* Expected sizes are torch.nn.functional.max_pool2d's on torch 1.13. */
    test_max_pool("13x13 3x3 s2 p1", 2, 3, 13, 13, 3, 2, 1, 1, false, 7);
    test_max_pool("13x13 3x3 s2 p1 ceil", 1, 3, 13, 13, 3, 2, 1, 1, true, 7);
    test_max_pool("56x56 3x3 s2 ceil", 1, 4, 56, 56, 3, 2, 0, 1, true, 28);
    test_max_pool("14x14 3x3 s2 ceil", 1, 4, 14, 14, 3, 2, 0, 1, true, 7);
    test_max_pool("11x11 2x2 s2 p1 ceil (last window dropped)", 1, 3, 11, 11, 2, 2, 1, 1, true, 6);
    test_max_pool("10x10 3x3 s3 p1 ceil", 1, 3, 10, 10, 3, 3, 1, 1, true, 4);
    test_max_pool("17x17 3x3 s2 p1 d2", 1, 3, 17, 17, 3, 2, 1, 2, false, 8);
    test_max_pool("112x112 3x3 s2 p1 (resnet)", 1, 64, 112, 112, 3, 2, 1, 1, false, 56);
    test_max_pool("55x55 3x3 s2 (alexnet)", 1, 64, 55, 55, 3, 2, 0, 1, false, 27);
    test_max_pool("9x9 5x5 s1 p2", 2, 3, 9, 9, 5, 1, 2, 1, false, 9);
    /* Rows of several vectors with a partial last one, at stride 1 and 2. */
    test_max_pool("37x37 3x3 s1 p1", 1, 3, 37, 37, 3, 1, 1, 1, false, 37);
    test_max_pool("67x67 3x3 s2 p1", 2, 3, 67, 67, 3, 2, 1, 1, false, 34);
    test_max_pool("66x66 2x2 s2 ceil", 1, 2, 66, 66, 2, 2, 0, 1, true, 33);
    test_max_pool("1x1 1x1 s1", 1, 3, 1, 1, 1, 1, 0, 1, false, 1);
    test_max_pool_nan();
    test_avg_pool("7x7->6x6", 1, 5, 7, 7, 6, 6);
    test_avg_pool("1x1->6x6", 2, 5, 1, 1, 6, 6);
    test_avg_pool("13x11->6x6", 1, 5, 13, 11, 6, 6);
    test_avg_pool("13x11->5x3", 1, 5, 13, 11, 5, 3);
    test_avg_pool("7x7->1x1 (global)", 2, 64, 7, 7, 1, 1);
    test_avg_pool("112x112->1x1 (global)", 1, 32, 112, 112, 1, 1);
    test_avg_pool("5x3->1x1 (global)", 1, 7, 5, 3, 1, 1);
}

/* ---- elementwise ops ---- */

static void test_elementwise(void)
{
    const int64_t dims[4] = {2, 5, 13, 11};
    const int64_t big_dims[4] = {1, 32, 112, 112};
    for (int big = 0; big < 2; big++) {
        const int64_t *d = big ? big_dims : dims;
        const int64_t n = d[0] * d[1] * d[2] * d[3];
        char shape[64];
        jp_shape_str(4, d, shape, sizeof shape);
        float *x = rand_buf(n, -12.0f, 12.0f), *x2 = rand_buf(n, -1.0f, 1.0f);
        float *out = zero_buf(n), *ref = zero_buf(n);
        /* Every op whose descriptor is an activation, and the identities at
         * inference, each through every CPU kernel of its type, against the
         * libm formula. */
        for (int t = 0; t < JP_OP_TYPE_COUNT; t++) {
            const jp_op_desc *desc = jp_op_desc_of((jp_op_type)t);
            if (!desc || (desc->activation == JP_ACT_NONE && !desc->identity))
                continue;
            jp_op op = {.name = "test.op", .type = (jp_op_type)t, .n_inputs = 1};
            jp_step step = {.op = &op, .n_in = 1};
            step.in[0] = make_tensor(4, d, x);
            step.out = make_tensor(4, d, out);
            for (int64_t j = 0; j < n; j++)
                ref[j] = jp_cpu_act_libm(x[j], desc->activation);
            const jp_kernel *kernels[32];
            const int n_kernels = kernels_of((jp_op_type)t, true, kernels);
            if (n_kernels == 0)
                jp_test_fail(desc->name, "no cpu kernel");
            for (int k = 0; k < n_kernels; k++) {
                char name[256];
                snprintf(name, sizeof name, "%s %s", kernels[k]->name + 4, shape);
                jp_error err = {0};
                set_threads(2);
                memset(out, 0xff, (size_t)n * sizeof *out);
                if (!kernels[k]->supports(&step) || run_kernel(kernels[k], &step, &err) != JP_OK)
                    jp_test_fail(name, "refused or failed: %s", err.msg);
                else
                    check_close(name, out, ref, n);
            }
        }
        /* flatten: [n, c, h, w] -> [n, c*h*w] */
        {
            jp_op op = {.name = "test.flatten", .type = JP_OP_FLATTEN, .n_inputs = 1};
            op.attrs.flatten = (jp_flatten_attrs){1, -1};
            const int64_t fd[2] = {d[0], d[1] * d[2] * d[3]};
            jp_step step = {.op = &op, .n_in = 1};
            step.in[0] = make_tensor(4, d, x);
            step.out = make_tensor(2, fd, out);
            char name[256];
            snprintf(name, sizeof name, "flatten/reference %s", shape);
            const jp_kernel *kern = find_kernel("cpu/flatten/reference");
            jp_error err = {0};
            if (!kern->supports(&step) || run_kernel(kern, &step, &err) != JP_OK)
                jp_test_fail(name, "refused or failed: %s", err.msg);
            else
                check_close(name, out, x, n);
        }
        /* add, with each fused activation and none */
        for (int r = 0; r < JP_ACT_COUNT; r++) {
            jp_op op = {.name = "test.add", .type = JP_OP_ADD, .n_inputs = 2};
            jp_step step = {.op = &op, .n_in = 2, .act = (jp_activation)r};
            step.in[0] = make_tensor(4, d, x);
            step.in[1] = make_tensor(4, d, x2);
            step.out = make_tensor(4, d, out);
            for (int64_t j = 0; j < n; j++)
                ref[j] = jp_cpu_act_libm(x[j] + x2[j], step.act);
            char name[256];
            snprintf(name, sizeof name, "add/reference %s %s", shape, act_name(step.act));
            const jp_kernel *kern = find_kernel("cpu/add/reference");
            jp_error err = {0};
            if (!kern->supports(&step) || run_kernel(kern, &step, &err) != JP_OK)
                jp_test_fail(name, "refused or failed: %s", err.msg);
            else
                check_close(name, out, ref, n);
        }
        /* mul: [n, c, 1, 1] scale broadcast over [n, c, h, w] */
        {
            jp_op op = {.name = "test.mul", .type = JP_OP_MUL, .n_inputs = 2};
            const int64_t sd[4] = {d[0], d[1], 1, 1};
            float *s = rand_buf(d[0] * d[1], 0.0f, 1.0f);
            jp_step step = {.op = &op, .n_in = 2};
            step.in[0] = make_tensor(4, sd, s);
            step.in[1] = make_tensor(4, d, x);
            step.out = make_tensor(4, d, out);
            const int64_t hw = d[2] * d[3];
            for (int64_t j = 0; j < n; j++)
                ref[j] = s[j / hw] * x[j];
            char name[256];
            snprintf(name, sizeof name, "mul/reference %s broadcast", shape);
            const jp_kernel *kern = find_kernel("cpu/mul/reference");
            jp_error err = {0};
            if (!kern->supports(&step) || run_kernel(kern, &step, &err) != JP_OK)
                jp_test_fail(name, "refused or failed: %s", err.msg);
            else
                check_close(name, out, ref, n);
            jp_cpu_free(s);
        }
        /* batch norm, the formula written out */
        {
            jp_op op = {.name = "test.bn", .type = JP_OP_BATCH_NORM2D, .n_inputs = 1};
            op.attrs.batch_norm2d = (jp_batch_norm2d_attrs){(int)d[1], 1e-3f};
            const int64_t cd[1] = {d[1]};
            const float lo[4] = {0.5f, -0.5f, -0.5f, 0.01f}, hi[4] = {1.5f, 0.5f, 0.5f, 2.0f};
            float *bp[4];
            for (int i = 0; i < 4; i++) {
                bp[i] = rand_buf(d[1], lo[i], hi[i]);
                set_param(&op.params[i], "test.bn.p", 1, cd, bp[i]);
            }
            op.n_params = 4;
            jp_step step = {.op = &op, .n_in = 1};
            step.in[0] = make_tensor(4, d, x);
            step.out = make_tensor(4, d, out);
            const int64_t hw = d[2] * d[3];
            for (int64_t j = 0; j < n; j++) {
                int64_t ch = (j / hw) % d[1];
                ref[j] = (x[j] - bp[2][ch]) / sqrtf(bp[3][ch] + 1e-3f) * bp[0][ch] + bp[1][ch];
            }
            char name[256];
            snprintf(name, sizeof name, "batch_norm2d/reference %s", shape);
            const jp_kernel *kern = find_kernel("cpu/batch_norm2d/reference");
            jp_error err = {0};
            if (!kern->supports(&step) || run_kernel(kern, &step, &err) != JP_OK)
                jp_test_fail(name, "refused or failed: %s", err.msg);
            else
                check_close(name, out, ref, n);
            for (int i = 0; i < 4; i++)
                jp_cpu_free(bp[i]);
        }
        jp_cpu_free(x);
        jp_cpu_free(x2);
        jp_cpu_free(out);
        jp_cpu_free(ref);
    }
}

/* The row copies of the im2col and grouped kernels (jp_cpu_gather_row,
 * jp_cpu_split_row2) against their definition, over every row length, start
 * and count up to a few vectors: the vector bodies, their tails and the
 * padding on both sides, on whichever SIMD target this build has. */
static void test_row_copies(void)
{
    float got[2][96];
    int bad_gather = 0, bad_split = 0, cases = 0;
    for (int64_t len = 1; len <= 70; len++) {
        /* the row alone in its allocation: a read past it is a sanitizer
         * report (tests/sanitize.sh) */
        float *src = malloc((size_t)len * sizeof(float));
        if (!src)
            abort();
        for (int64_t i = 0; i < len; i++)
            src[i] = (float)(i + 1);
        for (int64_t ix0 = -3; ix0 <= 3; ix0++)
            for (int64_t count = 1; count <= 40; count++) {
                for (int stride = 1; stride <= 3; stride++) {
                    for (int j = 0; j < 96; j++)
                        got[0][j] = -1.0f;
                    jp_cpu_gather_row(got[0], src, len, ix0, stride, count);
                    for (int64_t j = 0; j < 96; j++) {
                        const int64_t i = ix0 + j * stride;
                        const float want = j >= count ? -1.0f : i >= 0 && i < len ? src[i] : 0.0f;
                        bad_gather += got[0][j] != want;
                    }
                    cases++;
                }
                for (int j = 0; j < 96; j++)
                    got[0][j] = got[1][j] = -1.0f;
                jp_cpu_split_row2(got[0], got[1], src, len, ix0, count);
                for (int64_t j = 0; j < 96; j++)
                    for (int q = 0; q < 2; q++) {
                        const int64_t i = ix0 + 2 * j + q;
                        const float want = j >= count ? -1.0f : i >= 0 && i < len ? src[i] : 0.0f;
                        bad_split += got[q][j] != want;
                    }
                cases++;
            }
        free(src);
    }
    char name[128];
    snprintf(name, sizeof name, "cpu gather_row and split_row2: %d rows as defined (err 0.0e+00)",
             cases);
    JP_CHECK(name, bad_gather == 0 && bad_split == 0, "%d gathered and %d split floats wrong",
             bad_gather, bad_split);
}

/* The polynomial expf against libm's over its whole clamped range. */
static void test_expf(void)
{
    double worst = 0.0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0037f) {
        double e = exp((double)x);
        double rel = fabs(jp_cpu_expf(x) - e) / e;
        if (rel > worst)
            worst = rel;
    }
    char name[128];
    snprintf(name, sizeof name, "cpu expf on [-87, 88] (rel err %.1e)", worst);
    JP_CHECK(name, worst < 2.4e-7, "relative error above 2 ulp");
    /* Vector SiLU against the scalar one, both ways the vector code may
     * divide (JP_SIMD_FAST_DIV: vdivps, else jp_v_recip's refined estimate,
     * which this build's kernels may not use). */
    double worst_act = 0.0, worst_recip = 0.0;
    for (float x0 = -100.0f; x0 <= 100.0f; x0 += 0.0113f * JP_VLEN) {
        float in[JP_VLEN], act[JP_VLEN], rec[JP_VLEN];
        for (int l = 0; l < JP_VLEN; l++)
            in[l] = x0 + 0.0113f * (float)l;
        const jp_vf v = jp_v_load(in);
        jp_v_store(act, jp_v_act(v, JP_ACT_SILU));
        jp_v_store(rec, jp_v_mul(v, jp_v_recip(jp_v_add(jp_v_set1(1.0f),
                                                        jp_v_exp(jp_v_sub(jp_v_zero(), v))))));
        for (int l = 0; l < JP_VLEN; l++) {
            const double ref = jp_cpu_siluf(in[l]), tol = fabs(ref) + 1e-30;
            worst_act = fmax(worst_act, fabs(act[l] - ref) / tol);
            worst_recip = fmax(worst_recip, fabs(rec[l] - ref) / tol);
        }
    }
    snprintf(name, sizeof name, "cpu vector silu against scalar on [-100, 100] (rel err %.1e, "
             "with the refined reciprocal %.1e)", worst_act, worst_recip);
    JP_CHECK(name, worst_act < 2.4e-7 && worst_recip < 2.4e-7, "above 2 ulp");
    float big = jp_cpu_siluf(-200.0f), sat = jp_cpu_sigmoidf(200.0f);
    JP_CHECK("cpu silu(-200) and sigmoid(200) finite (err 0.0e+00)",
             isfinite(big) && fabsf(big) < 1e-30f && sat == 1.0f, "silu(-200) = %g, sigmoid(200) = %g",
             big, sat);
}

/* ---- mean over the last dimensions ---- */

/* x.mean(dims) of an [n, c, h, w] tensor over dims first..3, against a sum
 * in double written here, through every CPU mean kernel. */
static void test_mean_case(const char *label, int n, int c, int h, int w, int first, bool keepdim)
{
    jp_op op = {.name = "test.mean", .type = JP_OP_MEAN, .n_inputs = 1};
    op.attrs.mean = (jp_mean_attrs){first, keepdim};
    const int64_t in_dims[4] = {n, c, h, w};
    int64_t out_dims[4], outer = 1, inner = 1;
    for (int i = 0; i < 4; i++) {
        *(i < first ? &outer : &inner) *= in_dims[i];
        out_dims[i] = i < first ? in_dims[i] : 1; /* [n, c] or [n, c, 1, 1] */
    }
    float *x = rand_buf(outer * inner, -2.0f, 3.0f), *out = zero_buf(outer), *ref = zero_buf(outer);
    for (int64_t o = 0; o < outer; o++) {
        double sum = 0.0;
        for (int64_t i = 0; i < inner; i++)
            sum += x[o * inner + i];
        ref[o] = (float)(sum / (double)inner);
    }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(keepdim ? 4 : first, out_dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_MEAN, true, kernels);
    for (int k = 0; k < n_kernels; k++) {
        char name[256];
        snprintf(name, sizeof name, "%s %s", kernels[k]->name + 4, label);
        jp_error err = {0};
        memset(out, 0xff, (size_t)outer * sizeof *out);
        if (!kernels[k]->supports(&step))
            jp_test_fail(name, "refused");
        else if (run_kernel(kernels[k], &step, &err) != JP_OK)
            jp_test_fail(name, "%s", err.msg);
        else
            check_close(name, out, ref, outer);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

/* ---- channel_affine (transform_input) ---- */

/* y[:, c] = x[:, c] * scale[c] + shift[c] against the same formula written
 * here in double, through every CPU channel_affine kernel, on odd sizes,
 * batch 2 and more channels than GoogLeNet's 3 (so that a kernel indexing the
 * constants by plane instead of channel fails). */
static void test_channel_affine_case(const char *label, int n, int c, int h, int w)
{
    jp_op op = {.name = "test.transform_input", .type = JP_OP_CHANNEL_AFFINE, .n_inputs = 1};
    op.attrs.channel_affine.channels = c;
    for (int i = 0; i < c; i++) {
        op.attrs.channel_affine.scale[i] = 0.458f + 0.1f * (float)i;
        op.attrs.channel_affine.shift[i] = -0.03f - 0.25f * (float)i;
    }
    const int64_t dims[4] = {n, c, h, w}, count = (int64_t)n * c * h * w;
    float *x = rand_buf(count, -2.0f, 3.0f), *out = zero_buf(count), *ref = zero_buf(count);
    for (int64_t i = 0; i < count; i++) {
        const int ch = (int)((i / ((int64_t)h * w)) % c);
        ref[i] = (float)((double)x[i] * op.attrs.channel_affine.scale[ch] + op.attrs.channel_affine.shift[ch]);
    }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, x);
    step.out = make_tensor(4, dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_CHANNEL_AFFINE, true, kernels);
    for (int k = 0; k < n_kernels; k++) {
        char name[256];
        snprintf(name, sizeof name, "%s %s", kernels[k]->name + 4, label);
        jp_error err = {0};
        memset(out, 0xff, (size_t)count * sizeof *out);
        if (!kernels[k]->supports(&step))
            jp_test_fail(name, "refused");
        else if (run_kernel(kernels[k], &step, &err) != JP_OK)
            jp_test_fail(name, "%s", err.msg);
        else
            check_close(name, out, ref, count);
    }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

static void test_channel_affines(void)
{
    test_channel_affine_case("[1,3,299,299] (inception_v3)", 1, 3, 299, 299);
    test_channel_affine_case("[2,5,7,3]", 2, 5, 7, 3);
    test_channel_affine_case("[3,1,1,1]", 3, 1, 1, 1);
    /* An input whose channels are not the constants' count is refused. */
    jp_op op = {.name = "test.transform_input", .type = JP_OP_CHANNEL_AFFINE, .n_inputs = 1};
    op.attrs.channel_affine.channels = 3;
    const int64_t dims[4] = {1, 4, 3, 3};
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, NULL);
    step.out = make_tensor(4, dims, NULL);
    JP_CHECK("reject channel_affine of 3 channels on a [1,4,3,3] input (err 0.0e+00)",
             !jp_kernel_reference(JP_OP_CHANNEL_AFFINE)->supports(&step), "accepted");
}

/* ---- ConvNeXt's ops: gelu, layer_norm, permute, layer_scale, linear on rows ---- */

/* Runs every CPU kernel of step's op type that supports step against ref
 * (count floats); the reference kernel must support it. */
static void check_all_kernels(const char *label, jp_step *step, float *out, const float *ref, int64_t count)
{
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(step->op->type, true, kernels);
    for (int k = 0; k < n_kernels; k++) {
        char name[256];
        snprintf(name, sizeof name, "%s %s", kernels[k]->name + 4, label);
        jp_error err = {0};
        memset(out, 0xff, (size_t)count * sizeof *out);
        if (!kernels[k]->supports(step)) {
            if (kernels[k]->is_reference)
                jp_test_fail(name, "refused");
        } else if (run_kernel(kernels[k], step, &err) != JP_OK) {
            jp_test_fail(name, "%s", err.msg);
        } else {
            check_close(name, out, ref, count);
        }
    }
}

/* The vector GELU (erf by a polynomial) against libm's erf in double. */
static void test_gelu_vector(void)
{
    double worst = 0.0;
    for (float x0 = -12.0f; x0 <= 12.0f; x0 += 0.0071f * JP_VLEN) {
        float in[JP_VLEN], out[JP_VLEN];
        for (int l = 0; l < JP_VLEN; l++)
            in[l] = x0 + 0.0071f * (float)l;
        jp_v_store(out, jp_v_act(jp_v_load(in), JP_ACT_GELU));
        for (int l = 0; l < JP_VLEN; l++) {
            const double ref = 0.5 * in[l] * (1.0 + erf(in[l] * 0.70710678118654752));
            worst = fmax(worst, fabs(out[l] - ref) / fmax(1.0, fabs(in[l])));
        }
    }
    char name[128];
    snprintf(name, sizeof name, "cpu vector gelu against erf on [-12, 12] (err / max(1, |x|) %.1e)", worst);
    JP_CHECK(name, worst < 3e-7, "above 3e-7");
}

static void test_layer_norm_case(const char *label, int rank, const int64_t *dims, int dim)
{
    jp_op op = {.name = "test.ln", .type = JP_OP_LAYER_NORM, .n_inputs = 1};
    const int f = (int)dims[dim];
    op.attrs.layer_norm = (jp_layer_norm_attrs){dim, f, 1e-6f};
    int64_t outer = 1, inner = 1, count = 1;
    for (int d = 0; d < rank; d++) {
        count *= dims[d];
        if (d < dim)
            outer *= dims[d];
        else if (d > dim)
            inner *= dims[d];
    }
    float *x = rand_buf(count, -2.0f, 3.0f), *out = zero_buf(count), *ref = zero_buf(count);
    float *g = rand_buf(f, 0.5f, 1.5f), *b = rand_buf(f, -0.2f, 0.2f);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double m = 0.0, v = 0.0;
            for (int c = 0; c < f; c++)
                m += x[(o * f + c) * inner + i];
            m /= f;
            for (int c = 0; c < f; c++)
                v += pow(x[(o * f + c) * inner + i] - m, 2);
            const double r = 1.0 / sqrt(v / f + 1e-6);
            for (int c = 0; c < f; c++)
                ref[(o * f + c) * inner + i] = (float)((x[(o * f + c) * inner + i] - m) * r * g[c] + b[c]);
        }
    const int64_t pdims[1] = {f};
    set_param(&op.params[JP_PARAM_WEIGHT], "test.ln.weight", 1, pdims, g);
    set_param(&op.params[JP_PARAM_BIAS], "test.ln.bias", 1, pdims, b);
    op.n_params = 2;
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(rank, dims, x);
    step.out = make_tensor(rank, dims, out);
    check_all_kernels(label, &step, out, ref, count);
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
    jp_cpu_free(g);
    jp_cpu_free(b);
}

static void test_permute_case(const char *label, const int64_t *dims, const int *perm)
{
    jp_op op = {.name = "test.permute", .type = JP_OP_PERMUTE, .n_inputs = 1};
    op.attrs.permute.rank = 4;
    int64_t out_dims[4], count = 1;
    for (int d = 0; d < 4; d++) {
        op.attrs.permute.dims[d] = perm[d];
        out_dims[d] = dims[perm[d]];
        count *= dims[d];
    }
    float *x = rand_buf(count, -2.0f, 3.0f), *out = zero_buf(count), *ref = zero_buf(count);
    int64_t idx[4];
    for (idx[0] = 0; idx[0] < dims[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < dims[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < dims[2]; idx[2]++)
                for (idx[3] = 0; idx[3] < dims[3]; idx[3]++) {
                    const int64_t src = ((idx[0] * dims[1] + idx[1]) * dims[2] + idx[2]) * dims[3] + idx[3];
                    const int64_t o[4] = {idx[perm[0]], idx[perm[1]], idx[perm[2]], idx[perm[3]]};
                    ref[((o[0] * out_dims[1] + o[1]) * out_dims[2] + o[2]) * out_dims[3] + o[3]] = x[src];
                }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, x);
    step.out = make_tensor(4, out_dims, out);
    check_all_kernels(label, &step, out, ref, count);
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

static void test_layer_scale_case(const char *label, int n, int c, int h, int w)
{
    jp_op op = {.name = "test.layer_scale", .type = JP_OP_LAYER_SCALE, .n_inputs = 1};
    op.attrs.layer_scale.channels = c;
    const int64_t dims[4] = {n, c, h, w}, pdims[3] = {c, 1, 1}, count = (int64_t)n * c * h * w;
    float *x = rand_buf(count, -2.0f, 3.0f), *out = zero_buf(count), *ref = zero_buf(count);
    float *s = rand_buf(c, 0.1f, 1.0f);
    for (int64_t i = 0; i < count; i++)
        ref[i] = x[i] * s[(i / ((int64_t)h * w)) % c];
    set_param(&op.params[JP_PARAM_WEIGHT], "test.layer_scale", 3, pdims, s);
    op.n_params = 1;
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, x);
    step.out = make_tensor(4, dims, out);
    check_all_kernels(label, &step, out, ref, count);
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
    jp_cpu_free(s);
}

/* linear on [n, h, w, in] -> [n, h, w, out] (a row per pixel) with GELU
 * taken in, as in ConvNeXt's blocks; and gelu as an op of its own. */
static void test_linear_rows_gelu(const char *label, int n, int h, int w, int in_f, int out_f)
{
    jp_op op = {.name = "test.fc", .type = JP_OP_LINEAR, .n_inputs = 1};
    op.attrs.linear = (jp_linear_attrs){in_f, out_f, true};
    const int64_t rows = (int64_t)n * h * w, in_dims[4] = {n, h, w, in_f}, out_dims[4] = {n, h, w, out_f};
    const int64_t wdims[2] = {out_f, in_f}, bdims[1] = {out_f};
    float *x = rand_buf(rows * in_f, -1.0f, 1.0f), *wt = rand_buf((int64_t)out_f * in_f, -0.3f, 0.3f);
    float *b = rand_buf(out_f, -0.5f, 0.5f), *out = zero_buf(rows * out_f), *ref = zero_buf(rows * out_f);
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < out_f; o++) {
            double acc = b[o];
            for (int k = 0; k < in_f; k++)
                acc += (double)wt[(int64_t)o * in_f + k] * x[r * in_f + k];
            ref[r * out_f + o] = (float)(0.5 * acc * (1.0 + erf(acc * 0.70710678118654752)));
        }
    set_param(&op.params[JP_PARAM_WEIGHT], "test.fc.weight", 2, wdims, wt);
    set_param(&op.params[JP_PARAM_BIAS], "test.fc.bias", 1, bdims, b);
    op.n_params = 2;
    jp_step step = {.op = &op, .n_in = 1, .act = JP_ACT_GELU};
    step.in[0] = make_tensor(4, in_dims, x);
    step.out = make_tensor(4, out_dims, out);
    check_all_kernels(label, &step, out, ref, rows * out_f);
    /* gelu alone, on the pre-activations. */
    jp_op gelu = {.name = "test.gelu", .type = JP_OP_GELU, .n_inputs = 1};
    jp_step gs = {.op = &gelu, .n_in = 1};
    float *pre = zero_buf(rows * out_f);
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < out_f; o++) {
            double acc = b[o];
            for (int k = 0; k < in_f; k++)
                acc += (double)wt[(int64_t)o * in_f + k] * x[r * in_f + k];
            pre[r * out_f + o] = (float)acc;
            ref[r * out_f + o] = (float)(0.5 * pre[r * out_f + o] * (1.0 + erf(pre[r * out_f + o] * 0.70710678118654752)));
        }
    gs.in[0] = make_tensor(4, out_dims, pre);
    gs.out = make_tensor(4, out_dims, out);
    check_all_kernels(label, &gs, out, ref, rows * out_f);
    jp_cpu_free(x);
    jp_cpu_free(wt);
    jp_cpu_free(b);
    jp_cpu_free(out);
    jp_cpu_free(ref);
    jp_cpu_free(pre);
}

static void test_convnext_ops(void)
{
    test_gelu_vector();
    const int64_t d1[4] = {2, 7, 5, 3}, d2[3] = {3, 5, 96}, d3[3] = {1, 13, 17}, d4[4] = {1, 768, 1, 1};
    const int64_t d5[4] = {1, 96, 14, 14};
    test_layer_norm_case("[2,7,5,3] dim 1 (15 pixels a group)", 4, d1, 1);
    test_layer_norm_case("[3,5,96] dim 2 (rows)", 3, d2, 2);
    test_layer_norm_case("[1,13,17] dim 2 (odd rows)", 3, d3, 2);
    test_layer_norm_case("[1,768,1,1] dim 1 (convnext head)", 4, d4, 1);
    test_layer_norm_case("[1,96,14,14] dim 1 (threads)", 4, d5, 1);
    const int64_t p1[4] = {2, 5, 7, 3}, p2[4] = {1, 96, 37, 33}, p3[4] = {2, 33, 35, 40};
    const int nhwc[4] = {0, 2, 3, 1}, nchw[4] = {0, 3, 1, 2}, other[4] = {1, 0, 3, 2};
    test_permute_case("[2,5,7,3] to NHWC", p1, nhwc);
    test_permute_case("[2,5,7,3] to NCHW", p1, nchw);
    test_permute_case("[2,5,7,3] dims 1,0,3,2", p1, other);
    test_permute_case("[1,96,37,33] to NHWC (tiles off the edge)", p2, nhwc);
    test_permute_case("[2,33,35,40] to NCHW", p3, nchw);
    test_layer_scale_case("[2,5,7,3]", 2, 5, 7, 3);
    test_layer_scale_case("[1,96,56,56] (threads)", 1, 96, 56, 56);
    test_linear_rows_gelu("[2,3,5,24]->[2,3,5,40] + gelu", 2, 3, 5, 24, 40);
    test_linear_rows_gelu("[1,7,7,96]->[1,7,7,384] + gelu", 1, 7, 7, 96, 384);
}

static void test_means(void)
{
    test_mean_case("[1,1024,7,7] dims 2,3 (mnasnet)", 1, 1024, 7, 7, 2, false);
    test_mean_case("[2,5,13,11] dims 2,3 keepdim", 2, 5, 13, 11, 2, true);
    test_mean_case("[3,7,1,1] dims 2,3", 3, 7, 1, 1, 2, false);
    test_mean_case("[2,3,5,17] dim 3", 2, 3, 5, 17, 3, false);
    test_mean_case("[2,6,9,10] dims 1,2,3", 2, 6, 9, 10, 1, false);
    test_mean_case("[1,64,112,112] dims 2,3 (threads)", 1, 64, 112, 112, 2, false);
    /* A mean whose output shape does not match its dims is refused. */
    jp_op op = {.name = "test.mean", .type = JP_OP_MEAN, .n_inputs = 1};
    op.attrs.mean = (jp_mean_attrs){2, false};
    const int64_t in_dims[4] = {1, 4, 3, 3}, bad[2] = {1, 3};
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, in_dims, NULL);
    step.out = make_tensor(2, bad, NULL);
    JP_CHECK("reject mean with a [1,3] output for a [1,4,3,3] input (err 0.0e+00)",
             !jp_kernel_reference(JP_OP_MEAN)->supports(&step), "accepted");
}

/* ---- concat ---- */

/* torch.cat of n_in [n, c_k, h, w] tensors (sizes[k] along dim, the other
 * dims from base) through every CPU concat kernel; expected: each output
 * element found by walking the inputs' offsets along dim, here. */
static void test_concat_case(const char *label, const int64_t *base, int dim, int n_in, const int *sizes)
{
    jp_op op = {.name = "test.cat", .type = JP_OP_CONCAT, .n_inputs = n_in};
    op.attrs.concat = (jp_concat_attrs){dim};
    jp_step step = {.op = &op, .n_in = n_in};
    float *xs[JP_MAX_OP_INPUTS];
    int64_t out_dims[4] = {base[0], base[1], base[2], base[3]};
    out_dims[dim] = 0;
    for (int k = 0; k < n_in; k++) {
        int64_t d[4] = {base[0], base[1], base[2], base[3]};
        d[dim] = sizes[k];
        out_dims[dim] += sizes[k];
        xs[k] = rand_buf(d[0] * d[1] * d[2] * d[3], -1.0f, 1.0f);
        step.in[k] = make_tensor(4, d, xs[k]);
    }
    const int64_t out_n = out_dims[0] * out_dims[1] * out_dims[2] * out_dims[3];
    float *out = zero_buf(out_n), *ref = zero_buf(out_n);
    for (int64_t i = 0; i < out_n; i++) {
        int64_t idx[4], r = i;
        for (int a = 3; a >= 0; a--) {
            idx[a] = r % out_dims[a];
            r /= out_dims[a];
        }
        int k = 0;
        while (idx[dim] >= sizes[k])
            idx[dim] -= sizes[k++];
        const int64_t *d = step.in[k].dims;
        ref[i] = xs[k][((idx[0] * d[1] + idx[1]) * d[2] + idx[2]) * d[3] + idx[3]];
    }
    step.out = make_tensor(4, out_dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_CONCAT, true, kernels);
    for (int k = 0; k < n_kernels; k++)
        for (int t = 1; t <= 2; t++) {
            char name[256];
            snprintf(name, sizeof name, "%s %s t%d", kernels[k]->name + 4, label, t);
            jp_error err = {0};
            set_threads(t);
            memset(out, 0xff, (size_t)out_n * sizeof *out);
            if (!kernels[k]->supports(&step))
                jp_test_fail(name, "refused");
            else if (run_kernel(kernels[k], &step, &err) != JP_OK)
                jp_test_fail(name, "%s", err.msg);
            else
                check_close(name, out, ref, out_n);
        }
    /* One input a row short in a dimension other than dim: refused. */
    step.in[n_in - 1].dims[dim == 2 ? 3 : 2]--;
    char name[256];
    snprintf(name, sizeof name, "reject concat %s with inputs[%d] one short in %s (err 0.0e+00)", label, n_in - 1,
             dim == 2 ? "w" : "h");
    JP_CHECK(name, !jp_kernel_reference(JP_OP_CONCAT)->supports(&step), "accepted");
    for (int k = 0; k < n_in; k++)
        jp_cpu_free(xs[k]);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

static void test_concats(void)
{
    const int64_t fire[4] = {1, 0, 13, 13}, odd[4] = {2, 0, 5, 7}, hw[4] = {2, 3, 0, 5}, w[4] = {1, 5, 3, 0};
    static const int two[] = {64, 64}, three[] = {3, 1, 17}, rows[] = {4, 1, 6}, cols[] = {9, 2};
    int dense[25];
    for (int k = 0; k < 25; k++)
        dense[k] = k == 0 ? 256 : 32;
    const int64_t dense_base[4] = {1, 0, 7, 7};
    test_concat_case("2 x [1,64,13,13] dim 1 (squeezenet fire)", fire, 1, 2, two);
    test_concat_case("[2,3|1|17,5,7] dim 1", odd, 1, 3, three);
    test_concat_case("[2,3,4|1|6,5] dim 2", hw, 2, 3, rows);
    test_concat_case("[1,5,3,9|2] dim 3", w, 3, 2, cols);
    test_concat_case("25 inputs [1,256|32..,7,7] dim 1 (densenet block)", dense_base, 1, 25, dense);
    test_concat_case("1 input dim 1", odd, 1, 1, three + 2);
}

/* ---- chunk and channel shuffle (ShuffleNetV2) ---- */

/* x.chunk(chunks, dim)[index] of a 4-d tensor through every CPU chunk kernel.
 * Expected: each input row along dim goes to piece row / ceil(size / chunks)
 * (torch.chunk), found here by walking the input; the output is the rows of
 * piece `index` in order.  want_rows: the piece's size torch gives. */
static void test_chunk_case(const char *label, const int64_t *dims, int chunks, int dim, int index, int64_t want_rows)
{
    jp_op op = {.name = "test.chunk", .type = JP_OP_CHUNK, .n_inputs = 1};
    op.attrs.chunk = (jp_chunk_attrs){chunks, dim, index};
    jp_shape in_shape = {4, {dims[0], dims[1], dims[2], dims[3]}}, out_shape;
    char buf[160];
    const char *why = jp_op_desc_of(JP_OP_CHUNK)->shape(&op, &in_shape, 1, &out_shape, buf, sizeof buf);
    char name[256];
    snprintf(name, sizeof name, "chunk shape rule %s: %lld rows (err 0.0e+00)", label, (long long)want_rows);
    JP_CHECK(name, !why && out_shape.dims[dim] == want_rows, "%s; got %lld", why ? why : "fits",
             (long long)out_shape.dims[dim]);
    if (why)
        return;
    const int64_t n = dims[0] * dims[1] * dims[2] * dims[3], m = n / dims[dim] * want_rows;
    const int64_t piece = (dims[dim] + chunks - 1) / chunks;
    float *x = rand_buf(n, -1.0f, 1.0f), *out = zero_buf(m), *ref = zero_buf(m);
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) { /* input order, keeping piece `index`: the output's order */
        int64_t idx[4], r = i;
        for (int a = 3; a >= 0; a--) {
            idx[a] = r % dims[a];
            r /= dims[a];
        }
        if (idx[dim] / piece == index)
            ref[at++] = x[i];
    }
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, x);
    step.out = make_tensor(4, out_shape.dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_CHUNK, true, kernels);
    for (int k = 0; k < n_kernels; k++)
        for (int t = 1; t <= 2; t++) {
            snprintf(name, sizeof name, "%s %s t%d", kernels[k]->name + 4, label, t);
            jp_error err = {0};
            set_threads(t);
            memset(out, 0xff, (size_t)m * sizeof *out);
            if (at != m)
                jp_test_fail(name, "the test's walk found %lld of %lld elements", (long long)at, (long long)m);
            else if (!kernels[k]->supports(&step))
                jp_test_fail(name, "refused");
            else if (run_kernel(kernels[k], &step, &err) != JP_OK)
                jp_test_fail(name, "%s", err.msg);
            else
                check_close(name, out, ref, m);
        }
    /* An output one row longer than the piece: refused. */
    step.out.dims[dim]++;
    snprintf(name, sizeof name, "reject chunk %s with an output a row too long (err 0.0e+00)", label);
    JP_CHECK(name, !jp_kernel_reference(JP_OP_CHUNK)->supports(&step), "accepted");
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

/* channel_shuffle(x, groups) through every CPU kernel, against torch's
 * definition written out: x viewed as [n, g, c/g, h, w], out as [n, c/g, g,
 * h, w], out[b, j, i] = x[b, i, j]. */
static void test_shuffle_case(const char *label, int n, int c, int h, int w, int groups)
{
    jp_op op = {.name = "test.shuffle", .type = JP_OP_CHANNEL_SHUFFLE, .n_inputs = 1};
    op.attrs.channel_shuffle = (jp_channel_shuffle_attrs){groups};
    const int64_t dims[4] = {n, c, h, w}, total = (int64_t)n * c * h * w, plane = (int64_t)h * w;
    const int per = c / groups;
    float *x = rand_buf(total, -1.0f, 1.0f), *out = zero_buf(total), *ref = zero_buf(total);
    for (int b = 0; b < n; b++)
        for (int i = 0; i < groups; i++)
            for (int j = 0; j < per; j++)
                for (int64_t p = 0; p < plane; p++)
                    ref[(((int64_t)b * per + j) * groups + i) * plane + p] =
                        x[(((int64_t)b * groups + i) * per + j) * plane + p];
    jp_step step = {.op = &op, .n_in = 1};
    step.in[0] = make_tensor(4, dims, x);
    step.out = make_tensor(4, dims, out);
    const jp_kernel *kernels[32];
    const int n_kernels = kernels_of(JP_OP_CHANNEL_SHUFFLE, true, kernels);
    char name[256];
    for (int k = 0; k < n_kernels; k++)
        for (int t = 1; t <= 2; t++) {
            snprintf(name, sizeof name, "%s %s t%d", kernels[k]->name + 4, label, t);
            jp_error err = {0};
            set_threads(t);
            memset(out, 0xff, (size_t)total * sizeof *out);
            if (!kernels[k]->supports(&step))
                jp_test_fail(name, "refused");
            else if (run_kernel(kernels[k], &step, &err) != JP_OK)
                jp_test_fail(name, "%s", err.msg);
            else
                check_close(name, out, ref, total);
        }
    jp_cpu_free(x);
    jp_cpu_free(out);
    jp_cpu_free(ref);
}

static void test_chunks_and_shuffles(void)
{
    const int64_t block[4] = {1, 116, 28, 28}, odd[4] = {2, 7, 5, 3}, rows[4] = {2, 5, 9, 4}, cols[4] = {1, 3, 10, 7},
                  few[4] = {1, 5, 2, 3}, big[4] = {2, 232, 28, 28};
    test_chunk_case("[1,116,28,28] 2 chunks dim 1 [0] (shufflenet block)", block, 2, 1, 0, 58);
    test_chunk_case("[1,116,28,28] 2 chunks dim 1 [1] (shufflenet block)", block, 2, 1, 1, 58);
    test_chunk_case("[2,7,5,3] 2 chunks dim 1 [0]", odd, 2, 1, 0, 4);
    test_chunk_case("[2,7,5,3] 2 chunks dim 1 [1] (the shorter last)", odd, 2, 1, 1, 3);
    test_chunk_case("[2,5,9,4] 3 chunks dim 2 [1]", rows, 3, 2, 1, 3);
    test_chunk_case("[1,3,10,7] 4 chunks dim 3 [3]", cols, 4, 3, 3, 1);
    test_chunk_case("[1,3,10,7] 4 chunks dim 3 [2]", cols, 4, 3, 2, 2);
    test_chunk_case("[1,5,2,3] 4 chunks dim 1 [2] (torch gives 3 pieces)", few, 4, 1, 2, 1);
    test_chunk_case("[2,232,28,28] 2 chunks dim 1 [1] (threads)", big, 2, 1, 1, 116);
    /* [1,5,2,3].chunk(4, 1) has pieces of 2, 2, 1: a fourth is refused by the shape rule. */
    jp_op op = {.type = JP_OP_CHUNK};
    op.attrs.chunk = (jp_chunk_attrs){4, 1, 3};
    jp_shape in = {4, {1, 5, 2, 3}}, out;
    char buf[160];
    const char *why = jp_op_desc_of(JP_OP_CHUNK)->shape(&op, &in, 1, &out, buf, sizeof buf);
    JP_CHECK("chunk shape rule refuses piece 3 of [1,5,2,3].chunk(4, 1): torch gives 3 (err 0.0e+00)",
             why && strstr(why, "only 3 pieces"), "%s", why ? why : "accepted");
    test_shuffle_case("[1,232,7,7] groups 2 (shufflenet stage4)", 1, 232, 7, 7, 2);
    test_shuffle_case("[2,12,5,3] groups 3", 2, 12, 5, 3, 3);
    test_shuffle_case("[3,10,4,9] groups 5", 3, 10, 4, 9, 5);
    test_shuffle_case("[1,6,1,1] groups 6 (identity)", 1, 6, 1, 1, 6);
    test_shuffle_case("[2,7,3,3] groups 1 (identity)", 2, 7, 3, 3, 1);
    test_shuffle_case("[1,116,56,56] groups 2 (threads)", 1, 116, 56, 56, 2);
    jp_op shuffle = {.type = JP_OP_CHANNEL_SHUFFLE};
    shuffle.attrs.channel_shuffle = (jp_channel_shuffle_attrs){4};
    in = (jp_shape){4, {1, 6, 3, 3}};
    why = jp_op_desc_of(JP_OP_CHANNEL_SHUFFLE)->shape(&shuffle, &in, 1, &out, buf, sizeof buf);
    JP_CHECK("channel_shuffle shape rule refuses groups 4 for 6 channels (err 0.0e+00)",
             why && strstr(why, "groups 4"), "%s", why ? why : "accepted");
}

/* ---- the op descriptors (engine/jp_ops.c) ---- */

static void test_descriptors(void)
{
    bool all_ok = true;
    char why[256] = "";
    for (int t = 0; t < JP_OP_TYPE_COUNT; t++) {
        const jp_op_desc *d = jp_op_desc_of((jp_op_type)t);
        if (!d || !d->name || !d->shape || !d->attr_keys) {
            snprintf(why, sizeof why, "op type %d: no descriptor, name, shape rule or attribute list", t);
            all_ok = false;
            break;
        }
        if (jp_op_type_parse(d->name) != (jp_op_type)t || strcmp(jp_op_type_name((jp_op_type)t), d->name) != 0 ||
            d->min_inputs < 1 || d->min_inputs > d->max_inputs || d->max_inputs > JP_MAX_OP_INPUTS ||
            (d->param_names && !d->param_shape) || (d->activation != JP_ACT_NONE && d->identity)) {
            snprintf(why, sizeof why, "%s: name does not parse back, bad input counts, or slots without shapes",
                     d->name);
            all_ok = false;
        }
        if (!jp_kernel_reference((jp_op_type)t)) {
            snprintf(why, sizeof why, "%s: no cpu reference kernel", d->name);
            all_ok = false;
        }
    }
    JP_CHECK("op descriptors: every op type named, parsed back, with a shape rule and a cpu reference "
             "(err 0.0e+00)", all_ok, "%s", why);
    bool acts_ok = jp_op_type_of_activation(JP_ACT_NONE) == JP_OP_TYPE_COUNT &&
                   strcmp(jp_activation_name(JP_ACT_NONE), "none") == 0;
    for (int a = 1; a < JP_ACT_COUNT; a++) {
        const jp_op_type t = jp_op_type_of_activation((jp_activation)a);
        int n_ops = 0;
        for (int u = 0; u < JP_OP_TYPE_COUNT; u++)
            n_ops += jp_op_desc_of((jp_op_type)u)->activation == (jp_activation)a;
        if (t == JP_OP_TYPE_COUNT || n_ops != 1 || strcmp(jp_activation_name((jp_activation)a), jp_op_type_name(t)) != 0) {
            snprintf(why, sizeof why, "activation %d: %d op types", a, n_ops);
            acts_ok = false;
        }
    }
    JP_CHECK("op descriptors: each activation of JP_ACTIVATIONS is exactly one op type (err 0.0e+00)", acts_ok,
             "%s", why);
    /* The shape rules, on the shapes they exist for. */
    jp_op conv = {.type = JP_OP_CONV2D};
    conv.attrs.conv2d = (jp_conv2d_attrs){8, 16, 3, 1, 2, 1, 1, 0, 1, 1, 4, false};
    jp_shape in = {4, {2, 8, 11, 7}}, out;
    char buf[160];
    const char *r = jp_op_desc_of(JP_OP_CONV2D)->shape(&conv, &in, 1, &out, buf, sizeof buf);
    const int64_t macs = jp_op_desc_of(JP_OP_CONV2D)->macs(&conv, &in, &out);
    JP_CHECK("conv2d shape rule: [2,8,11,7] 3x1 s(2,1) p(1,0) g4 -> [2,16,6,7], 2*16*6*7*2*3 MACs (err 0.0e+00)",
             !r && out.rank == 4 && out.dims[0] == 2 && out.dims[1] == 16 && out.dims[2] == 6 && out.dims[3] == 7 &&
             macs == 2 * 16 * 6 * 7 * 2 * 3, "%s; got [%lld,%lld,%lld,%lld], %lld MACs", r ? r : "fits",
             (long long)out.dims[0], (long long)out.dims[1], (long long)out.dims[2], (long long)out.dims[3],
             (long long)macs);
    in.dims[1] = 9;
    r = jp_op_desc_of(JP_OP_CONV2D)->shape(&conv, &in, 1, &out, buf, sizeof buf);
    JP_CHECK("conv2d shape rule refuses 9 input channels for in_channels 8 (err 0.0e+00)", r != NULL, "accepted");
    jp_op mean = {.type = JP_OP_MEAN};
    mean.attrs.mean = (jp_mean_attrs){2, false};
    in = (jp_shape){4, {1, 1024, 7, 7}};
    r = jp_op_desc_of(JP_OP_MEAN)->shape(&mean, &in, 1, &out, buf, sizeof buf);
    JP_CHECK("mean shape rule: [1,1024,7,7] dims 2,3 -> [1,1024] (err 0.0e+00)",
             !r && out.rank == 2 && out.dims[0] == 1 && out.dims[1] == 1024, "%s", r ? r : "wrong shape");
    jp_op add = {.type = JP_OP_ADD};
    jp_shape two[2] = {{4, {1, 8, 5, 5}}, {4, {1, 8, 5, 4}}};
    r = jp_op_desc_of(JP_OP_ADD)->shape(&add, two, 2, &out, buf, sizeof buf);
    JP_CHECK("add shape rule names the second input's shape when they differ (err 0.0e+00)",
             r && strstr(r, "[1, 8, 5, 4]"), "%s", r ? r : "accepted");
    jp_op cat = {.type = JP_OP_CONCAT};
    cat.attrs.concat = (jp_concat_attrs){1};
    jp_shape three[3] = {{4, {1, 8, 5, 5}}, {4, {1, 3, 5, 5}}, {4, {1, 2, 4, 5}}};
    r = jp_op_desc_of(JP_OP_CONCAT)->shape(&cat, three, 2, &out, buf, sizeof buf);
    JP_CHECK("concat shape rule: [1,8,5,5] + [1,3,5,5] along c -> [1,11,5,5] (err 0.0e+00)",
             !r && out.dims[1] == 11 && out.dims[2] == 5, "%s", r ? r : "wrong shape");
    r = jp_op_desc_of(JP_OP_CONCAT)->shape(&cat, three, 3, &out, buf, sizeof buf);
    JP_CHECK("concat shape rule names inputs[2] and the height when they differ (err 0.0e+00)",
             r && strstr(r, "inputs[2]") && strstr(r, "height"), "%s", r ? r : "accepted");
}

/* Last: every CPU kernel of the registry computed a checked result above. */
static void test_every_kernel_ran(void)
{
    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    char missing[512] = "";
    for (size_t i = 0; i < count; i++) {
        bool seen = false;
        for (int k = 0; k < n_ran; k++)
            seen |= ran[k] == all[i];
        /* direct is AVX-512 only: it supports nothing in other builds. */
        if (!seen && !(JP_VLEN != 16 && strcmp(all[i]->name, "cpu/conv2d/direct") == 0))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", all[i]->name);
    }
    JP_CHECK("every cpu kernel of the registry ran in a checked case (err 0.0e+00)", missing[0] == '\0',
             "never run:%s", missing);
}

/* ---- supports() must refuse what a kernel cannot do ---- */

static void test_rejections(void)
{
    conv_case c3 = {"", 1, 8, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1};
    conv_fixture f;
    conv_fixture_init(&f, &c3);
    const jp_kernel *dw = find_kernel("cpu/conv2d/depthwise");
    const jp_kernel *g1 = find_kernel("cpu/conv2d/gemm_1x1");
    const jp_kernel *im = find_kernel("cpu/conv2d/im2col_blas");
    const jp_kernel *ref = find_kernel("cpu/conv2d/reference");
    JP_CHECK("reject depthwise on groups=1 (err 0.0e+00)", !dw->supports(&f.step), "accepted");
    JP_CHECK("reject gemm_1x1 on 3x3 (err 0.0e+00)", !g1->supports(&f.step), "accepted");
    JP_CHECK("accept im2col_blas on 3x3 (err 0.0e+00)", im->supports(&f.step), "refused");
    f.step.act = (jp_activation)JP_ACT_COUNT;
    JP_CHECK("reject conv with an unknown activation (err 0.0e+00)",
             !im->supports(&f.step) && !ref->supports(&f.step), "accepted");
    f.step.act = JP_ACT_SILU;
    f.bn.attrs.batch_norm2d.channels = 9;
    f.step.fused_bn = &f.bn;
    JP_CHECK("reject conv with a fused bn of the wrong width (err 0.0e+00)",
             !im->supports(&f.step) && !ref->supports(&f.step), "accepted");
    f.bn.attrs.batch_norm2d.channels = 8;
    f.bn.type = JP_OP_RELU;
    JP_CHECK("reject conv fused with a non-bn op (err 0.0e+00)", !im->supports(&f.step), "accepted");
    f.bn.type = JP_OP_BATCH_NORM2D;
    f.step.fused_bn = NULL;
    f.step.out.dims[3] = 8;
    JP_CHECK("reject conv with a wrong output shape (err 0.0e+00)",
             !im->supports(&f.step) && !ref->supports(&f.step), "accepted");
    f.step.out.dims[3] = 9;
    f.step.in[0].device = JP_DEVICE_CUDA;
    JP_CHECK("reject conv on a cuda tensor (err 0.0e+00)", !ref->supports(&f.step), "accepted");
    f.step.in[0].device = JP_DEVICE_CPU;
    f.op.params[0].dims[1] = 4;
    JP_CHECK("reject conv whose weight shape disagrees (err 0.0e+00)", !im->supports(&f.step),
             "accepted");
    f.op.params[0].dims[1] = 8;
    conv_fixture_free(&f);

    /* 1x1 with padding: gemm_1x1 refuses, depthwise multiplier refused. */
    conv_case c1 = {"", 1, 8, 8, 9, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, 1};
    conv_fixture_init(&f, &c1);
    JP_CHECK("reject gemm_1x1 on a padded 1x1 (err 0.0e+00)", !g1->supports(&f.step), "accepted");
    conv_fixture_free(&f);
    conv_case cm = {"", 1, 8, 16, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 8, false, 1};
    conv_fixture_init(&f, &cm);
    JP_CHECK("reject depthwise with channel multiplier 2 (err 0.0e+00)", !dw->supports(&f.step),
             "accepted");
    conv_fixture_free(&f);

    /* linear: no silu, no fused bn */
    jp_op op = {.name = "test.fc", .type = JP_OP_LINEAR, .n_inputs = 1};
    op.attrs.linear = (jp_linear_attrs){16, 4, false};
    const int64_t w_dims[2] = {4, 16}, in_dims[2] = {1, 16}, out_dims[2] = {1, 4};
    set_param(&op.params[0], "w", 2, w_dims, NULL);
    op.n_params = 1;
    /* Every activation of JP_ACTIVATIONS is taken in (ConvNeXt's GELU); a
     * value outside the list is not. */
    jp_step step = {.op = &op, .n_in = 1, .act = JP_ACT_COUNT};
    step.in[0] = make_tensor(2, in_dims, NULL);
    step.out = make_tensor(2, out_dims, NULL);
    const jp_kernel *lb = find_kernel("cpu/linear/blas");
    JP_CHECK("reject linear with an activation outside JP_ACTIVATIONS (err 0.0e+00)", !lb->supports(&step),
             "accepted");
    step.act = JP_ACT_RELU;
    JP_CHECK("accept linear with relu (err 0.0e+00)", lb->supports(&step), "refused");
    jp_op bn = {.type = JP_OP_BATCH_NORM2D};
    step.fused_bn = &bn;
    JP_CHECK("reject linear with a fused bn (err 0.0e+00)", !lb->supports(&step), "accepted");

    /* simple ops take no fusion */
    jp_op relu = {.name = "test.relu", .type = JP_OP_RELU, .n_inputs = 1};
    jp_step rs = {.op = &relu, .n_in = 1, .act = JP_ACT_SIGMOID};
    rs.in[0] = make_tensor(2, in_dims, NULL);
    rs.out = make_tensor(2, in_dims, NULL);
    JP_CHECK("reject relu with a fused activation (err 0.0e+00)",
             !find_kernel("cpu/relu/reference")->supports(&rs), "accepted");
    /* mul with a scale that is not [n, c, 1, 1] */
    jp_op mul = {.name = "test.mul", .type = JP_OP_MUL, .n_inputs = 2};
    const int64_t sd[4] = {1, 3, 2, 1}, xd[4] = {1, 3, 4, 4};
    jp_step ms = {.op = &mul, .n_in = 2};
    ms.in[0] = make_tensor(4, sd, NULL);
    ms.in[1] = make_tensor(4, xd, NULL);
    ms.out = make_tensor(4, xd, NULL);
    JP_CHECK("reject mul with a [1,3,2,1] scale (err 0.0e+00)",
             !find_kernel("cpu/mul/reference")->supports(&ms), "accepted");
    /* max pool whose output is not torch's size */
    jp_op mp = {.name = "test.pool", .type = JP_OP_MAX_POOL2D, .n_inputs = 1};
    mp.attrs.max_pool2d = (jp_max_pool2d_attrs){3, 3, 2, 2, 1, 1, 1, 1, false};
    const int64_t pin[4] = {1, 2, 13, 13}, pout[4] = {1, 2, 6, 6};
    jp_step ps = {.op = &mp, .n_in = 1};
    ps.in[0] = make_tensor(4, pin, NULL);
    ps.out = make_tensor(4, pout, NULL);
    JP_CHECK("reject max_pool2d with a wrong output size (err 0.0e+00)",
             !find_kernel("cpu/max_pool2d/reference")->supports(&ps), "accepted");
}

/* ---- the registry list and the backend ---- */

static void test_registry_and_backend(void)
{
    size_t count;
    const jp_kernel *const *all = jp_cpu_kernels(&count);
    int refs[JP_OP_TYPE_COUNT] = {0};
    bool names_ok = true;
    for (size_t i = 0; i < count; i++) {
        if (all[i]->device != JP_DEVICE_CPU || !all[i]->supports || !all[i]->run ||
            strncmp(all[i]->name, "cpu/", 4) != 0)
            names_ok = false;
        if (all[i]->is_reference && (unsigned)all[i]->op_type < JP_OP_TYPE_COUNT)
            refs[all[i]->op_type]++;
        for (size_t j = 0; j < i; j++)
            if (strcmp(all[i]->name, all[j]->name) == 0)
                names_ok = false;
    }
    JP_CHECK("cpu kernel list: unique cpu/ names, supports and run set (err 0.0e+00)", names_ok,
             "a kernel is malformed or listed twice");
    bool one_ref = true;
    for (int t = 0; t < JP_OP_TYPE_COUNT; t++)
        if (refs[t] != 1)
            one_ref = false;
    JP_CHECK("cpu kernel list: one reference per op type (err 0.0e+00)", one_ref,
             "an op type has none or several");
    const int p_dw = find_kernel("cpu/conv2d/depthwise")->priority;
    const int p_1x1 = find_kernel("cpu/conv2d/gemm_1x1")->priority;
    const int p_im = find_kernel("cpu/conv2d/im2col_blas")->priority;
    const int p_ref = find_kernel("cpu/conv2d/reference")->priority;
    const int p_pk = find_kernel("cpu/conv2d/packed_gemm")->priority;
    JP_CHECK("conv priorities depthwise > gemm_1x1 > im2col_blas > reference (err 0.0e+00)",
             p_dw > p_1x1 && p_1x1 > p_im && p_im > p_ref, "%d %d %d %d", p_dw, p_1x1, p_im, p_ref);
#if JP_VLEN == 16
    JP_CHECK("conv priority packed_gemm between depthwise and gemm_1x1 on AVX-512 (err 0.0e+00)",
             p_dw > p_pk && p_pk > p_1x1, "%d", p_pk);
#else
    JP_CHECK("conv priority packed_gemm below im2col_blas without AVX-512 (err 0.0e+00)",
             p_pk < p_im && p_pk > p_ref, "%d", p_pk);
#endif
    /* winograd is faster on ResNet's 56x56..14x14 and AlexNet's 13x13 3x3
     * layers but 1.7x slower at 7x7 (conv2d_winograd.c): the default from
     * 13x13 outputs up only. */
    const int p_wg = find_kernel("cpu/conv2d/winograd")->priority;
    JP_CHECK("conv priority winograd below packed_gemm and im2col_blas (err 0.0e+00)",
             p_wg < p_pk && p_wg < p_im && p_wg > p_ref, "%d", p_wg);
    /* direct: strided (wider than 1x1) or 5x5 and wider, outputs at least
     * 14 wide filling 85 % of its 16-lane tiles (conv2d_direct.c) */
    const char *direct = JP_VLEN == 16 ? "cpu/conv2d/direct" : NULL;
    const struct { int hw; int stride; int k; const char *want; } choices[] = {
        {56, 1, 3, "cpu/conv2d/winograd"}, {14, 1, 3, "cpu/conv2d/winograd"},
        {13, 1, 3, "cpu/conv2d/winograd"}, {12, 1, 3, NULL}, {7, 1, 3, NULL}, /* NULL: the highest static priority */
        {56, 2, 3, direct}, {28, 2, 3, direct}, {14, 2, 3, direct}, {13, 2, 3, NULL}, {7, 2, 3, NULL},
        {27, 1, 5, direct}, {12, 1, 5, NULL}, {112, 2, 7, direct}, {28, 2, 1, NULL},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        const int k = choices[i].k, pad = k / 2;
        conv_case c = {"choice", 1, 64, 64, choices[i].hw * choices[i].stride,
                       choices[i].hw * choices[i].stride, k, k, choices[i].stride, choices[i].stride,
                       pad, pad, 1, 1, 1, false, 1};
        conv_fixture f;
        conv_fixture_init(&f, &c);
        const jp_kernel *got = jp_kernel_choose(JP_DEVICE_CPU, &f.step);
        /* NULL: the highest static priority among the GEMM kernels that take
         * the shape (gemm_1x1 takes 1x1 unpadded ones: above packed_gemm
         * without AVX-512, e.g. on NEON). */
        const char *gemm = p_pk > p_im ? "cpu/conv2d/packed_gemm" : "cpu/conv2d/im2col_blas";
        if (k == 1 && p_1x1 > (p_pk > p_im ? p_pk : p_im))
            gemm = "cpu/conv2d/gemm_1x1";
        const char *want = choices[i].want ? choices[i].want : gemm;
        char name[160];
        snprintf(name, sizeof name, "default conv kernel for %dx%d stride %d, %dx%d outputs is %s (err 0.0e+00)",
                 k, k, choices[i].stride, choices[i].hw, choices[i].hw, want);
        JP_CHECK(name, got && strcmp(got->name, want) == 0, "got %s", got ? got->name : "none");
        conv_fixture_free(&f);
    }
    JP_CHECK("linear priorities blas > reference (err 0.0e+00)",
             find_kernel("cpu/linear/blas")->priority > find_kernel("cpu/linear/reference")->priority,
             "wrong order");
    JP_CHECK("linear priorities gemv > blas: the default for a batch of one (err 0.0e+00)",
             find_kernel("cpu/linear/gemv")->priority > find_kernel("cpu/linear/blas")->priority,
             "wrong order");

    jp_error err = {0};
    bool threads_ok = jp_cpu_backend.set_threads &&
                      jp_cpu_backend.set_threads(2, &err) == JP_OK &&
                      omp_get_max_threads() == 2 && openblas_get_num_threads() == 1 &&
                      jp_cpu_backend.set_threads(0, &err) == JP_ERR_ARG;
    JP_CHECK("cpu backend set_threads: OpenMP n, OpenBLAS 1, 0 refused (err 0.0e+00)",
             threads_ok, "omp %d, openblas %d", omp_get_max_threads(), openblas_get_num_threads());
    void *p = NULL;
    jp_status st = jp_cpu_backend.alloc(1000, &p, &err);
    JP_CHECK("cpu backend alloc is 64-byte aligned (err 0.0e+00)",
             st == JP_OK && p && ((uintptr_t)p % 64) == 0, "%s", err.msg);
    if (st == JP_OK) {
        float host[250], back[250];
        for (int i = 0; i < 250; i++)
            host[i] = (float)i;
        bool ok = jp_cpu_backend.upload(p, host, sizeof host, &err) == JP_OK &&
                  jp_cpu_backend.download(back, p, sizeof back, &err) == JP_OK &&
                  jp_cpu_backend.synchronize(&err) == JP_OK && memcmp(host, back, sizeof host) == 0;
        JP_CHECK("cpu backend upload/download round trip (err 0.0e+00)", ok, "%s", err.msg);
        jp_cpu_backend.free(p);
    }
}

int main(void)
{
    const char *env = getenv("JP_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10)
                                : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (seed == 0)
        seed = 1;
    rng_state = seed;
    printf("# test_cpu_kernels: seed %llu (JP_TEST_SEED=%llu replays this run)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    openblas_set_num_threads(1);
    test_registry_and_backend();
    test_rejections();
    test_expf();
    test_row_copies();
    test_convs();
    test_conv_residual();
    test_linears();
    test_give_back();
    test_pools();
    test_elementwise();
    test_means();
    test_channel_affines();
    test_convnext_ops();
    test_concats();
    test_chunks_and_shuffles();
    test_descriptors();
    test_every_kernel_ran();
    return jp_test_exit_code();
}
