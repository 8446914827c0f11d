/*
 * test_cuda_kernels.c: every CUDA kernel against the CPU reference of its op,
 * on awkward shapes, with fresh random data each run.
 *
 * For each case the CPU reference kernel (cpu/<op>/reference, found through
 * the registry) computes the expected output on the host; then every CUDA
 * kernel of that op that supports the case is prepared, run on the backend's
 * stream, synchronised, its output downloaded and compared.  The device
 * output is filled with NaN first, so an element a kernel never writes
 * shows as an infinite error.  A kernel whose supports() answer differs
 * from what it is documented to accept fails, as does a case that no CUDA
 * kernel accepts.
 *
 * Tolerance: max|out - ref| <= 1e-4 * max|ref| + 1e-5, as for the CPU
 * kernels.  It holds for cuDNN only because TF32 is off (cuDNN
 * CUDNN_FMA_MATH, cuBLAS CUBLAS_DEFAULT_MATH): every algorithm cuDNN picks
 * computes in FP32 and only reorders the sums.  The exception, which issue 4
 * allows: the forced transform algorithms (cuda/conv2d/cudnn_fft,
 * cudnn_fft_tiling, cudnn_winograd, cudnn_winograd_nonfused) compute
 * through FFT or Winograd transforms, not just reordered sums, and are held
 * to 1e-3 * max|ref| + 1e-5; the line says which bound applied.  Each line
 * prints the error
 * it measured, max|ref|, the tolerance and what prepare chose (the kernel's
 * describe: the cuDNN algorithm).  A per-algorithm cuDNN kernel
 * (cuda/conv2d/cudnn_<algo>) whose prepare says JP_ERR_UNSUPPORTED (cuDNN
 * has no such algorithm for the case) is a skip that prints cuDNN's refusal.
 *
 * Without a GPU (or driver) every case prints "SKIP <kernel> <case>: no CUDA
 * device (<why>)" and the test exits 0; supports() is still checked, since
 * it needs no device.  The CUDA kernels live in the module jplprof-cuda.so,
 * which this program loads as jplprof does (kernels/registry.c): from
 * $JPLPROF_CUDA_MODULE, else beside $JPLPROF (the binary under test), else
 * beside ../../jplprof relative to this program (build/tests/ -> the repo
 * root, where `make` puts it).  Without the module (a CUDA=0 build) every
 * case prints SKIP with the registry's reason.  The seed comes from the clock and is
 * printed; JP_TEST_SEED=<n> replays a run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jp_test.h"
#include "../engine/jp_ops.h"
#include "../kernels/jp_kernel.h"
#include <libgen.h>
#include <limits.h>


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

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_cuda_kernels: out of host memory\n");
        exit(2);
    }
    return p;
}

static float *rand_buf(int64_t n, float lo, float hi)
{
    float *p = xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = rng_uniform(lo, hi);
    return p;
}

/* ---- the environment: is there a CUDA backend, and a GPU? ---- */

static struct {
    const jp_backend *cuda;   /* NULL in a build without CUDA            */
    bool ready;               /* init succeeded                          */
    char why_not[JP_ERROR_MSG_BYTES]; /* why not ready                   */
    char no_module[JP_ERROR_MSG_BYTES]; /* why env.cuda is NULL           */
} env;

static const char *act_name(jp_activation act) { return jp_activation_name(act); }

static jp_tensor make_tensor(int rank, const int64_t *dims, jp_device device, float *data)
{
    jp_tensor t = {.rank = rank, .device = device, .data = data};
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

/* PyTorch's output size of a conv / pooling window along one axis. */
static int64_t window_out(int64_t in, int k, int s, int p, int d, bool ceil_mode)
{
    int64_t num = in + 2 * (int64_t)p - (int64_t)d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    if (num < 0)
        return 0;
    int64_t out = num / s + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

/* ---- comparison ---- */

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

/* ---- one case on every CUDA kernel of its op ---- */

/* What each CUDA kernel is documented to accept, beyond the op's own rules
 * (the reference's): cuDNN pooling has neither dilation nor ceil_mode, so
 * cuda/max_pool2d/cudnn takes a pool only when it is undilated and its
 * output is floor mode's. */
static bool expect_support(const char *kernel, const jp_step *step)
{
    if (strcmp(kernel, "cuda/max_pool2d/cudnn") == 0) {
        const jp_max_pool2d_attrs *a = &step->op->attrs.max_pool2d;
        const jp_tensor *x = &step->in[0];
        return a->dilation_h == 1 && a->dilation_w == 1 &&
               window_out(x->dims[2], a->kernel_h, a->stride_h, a->pad_h, 1, false) ==
                   step->out.dims[2] &&
               window_out(x->dims[3], a->kernel_w, a->stride_w, a->pad_w, 1, false) ==
                   step->out.dims[3];
    }
    return true;
}

/* A forced cuDNN algorithm that computes through transforms (FFT,
 * Winograd): held to the looser bound of the file comment. */
static bool transform_algorithm(const char *kernel)
{
    return strncmp(kernel, "cuda/conv2d/cudnn_fft", 21) == 0 ||
           strncmp(kernel, "cuda/conv2d/cudnn_winograd", 26) == 0;
}

/* The step as a CUDA kernel sees it: tensors on the device, data NULL
 * until allocated. */
static jp_step device_view(const jp_step *host)
{
    jp_step d = *host;
    for (int i = 0; i < d.n_in; i++) {
        d.in[i].device = JP_DEVICE_CUDA;
        d.in[i].data = NULL;
    }
    d.out.device = JP_DEVICE_CUDA;
    d.out.data = NULL;
    return d;
}

/* Runs kernel k on the GPU for the host step: uploads the inputs, fills the
 * output with NaN, prepare / run / synchronize / download / release.
 * in_place: out is in[0]'s buffer (the executor may alias elementwise ops).
 * chose: what prepare chose (the kernel's describe), chose_bytes long. */
static jp_status run_on_gpu(const jp_kernel *k, const jp_step *host, bool in_place, float *out,
                            char *chose, size_t chose_bytes, jp_error *err)
{
    const jp_backend *be = env.cuda;
    jp_step d = device_view(host);
    void *buf[JP_MAX_OP_INPUTS + 1] = {NULL};
    void *state = NULL;
    bool prepared = false;
    const int64_t out_n = jp_tensor_numel(&host->out);
    jp_status st = JP_OK;

    chose[0] = '\0';
    for (int i = 0; i < d.n_in && st == JP_OK; i++) {
        size_t bytes = (size_t)jp_tensor_numel(&host->in[i]) * sizeof(float);
        st = be->alloc(bytes, &buf[i], err);
        if (st == JP_OK)
            st = be->upload(buf[i], host->in[i].data, bytes, err);
        d.in[i].data = buf[i];
    }
    if (st == JP_OK && in_place) {
        d.out.data = d.in[0].data;
    } else if (st == JP_OK) {
        st = be->alloc((size_t)out_n * sizeof(float), &buf[JP_MAX_OP_INPUTS], err);
        d.out.data = buf[JP_MAX_OP_INPUTS];
        if (st == JP_OK) {
            memset(out, 0xff, (size_t)out_n * sizeof(float)); /* NaN */
            st = be->upload(d.out.data, out, (size_t)out_n * sizeof(float), err);
        }
    }
    if (st == JP_OK && k->prepare) {
        st = k->prepare(&d, &state, err);
        prepared = st == JP_OK;
    }
    if (st == JP_OK)
        jp_kernel_describe(k, state, chose, chose_bytes);
    if (st == JP_OK)
        st = k->run(state, &d, err);
    if (st == JP_OK)
        st = be->synchronize(err);
    if (st == JP_OK)
        st = be->download(out, d.out.data, (size_t)out_n * sizeof(float), err);
    if (prepared && k->release)
        k->release(state);
    for (int i = 0; i <= JP_MAX_OP_INPUTS; i++)
        if (buf[i])
            be->free(buf[i]);
    return st;
}

/* The case: host->in[] hold host data, host->out its shape (its data is
 * overwritten with the reference).  Reports one line per CUDA kernel. */
static void check_case(const char *label, jp_step *host, bool in_place)
{
    const jp_op_type type = host->op->type;
    const char *op_name = jp_op_type_name(type);
    const int64_t out_n = jp_tensor_numel(&host->out);
    const jp_step dview = device_view(host);
    const jp_kernel *ref = jp_kernel_reference(type);
    const jp_kernel *const *all;
    size_t count;
    int n_cuda = 0, n_supported = 0;
    bool ref_ok = false;
    char name[512], line[1024];
    float *ref_out = host->out.data, *out = xmalloc((size_t)out_n * sizeof(float));

    if (!env.cuda) {
        snprintf(name, sizeof name, "cuda/%s/* %s", op_name, label);
        jp_test_skip(name, "no CUDA backend: %s", env.no_module);
        free(out);
        return;
    }
    all = jp_kernels_all(&count);
    for (size_t i = 0; i < count; i++) {
        const jp_kernel *k = all[i];
        char chose[256];
        jp_error err = {0};
        double e, ref_max, tol;
        bool want, has;

        if (k->device != JP_DEVICE_CUDA || k->op_type != type)
            continue;
        n_cuda++;
        snprintf(name, sizeof name, "%s %s%s", k->name, label, in_place ? " in-place" : "");
        want = expect_support(k->name, &dview);
        has = k->supports(&dview);
        if (has != want) {
            jp_test_fail(name, "supports() says %s, expected %s", has ? "yes" : "no",
                         want ? "yes" : "no");
            continue;
        }
        if (!has) {
            jp_test_skip(name, "outside what this kernel supports, by design (another %s "
                               "kernel serves it)", op_name);
            continue;
        }
        n_supported++;
        if (!env.ready) {
            jp_test_skip(name, "no CUDA device (%s)", env.why_not);
            continue;
        }
        if (!ref_ok) {
            /* Computed once, on the first kernel that needs it. */
            if (!ref || !ref->supports(host)) {
                jp_test_fail(name, "the CPU reference %s refuses this case",
                             ref ? ref->name : "(none registered)");
                break;
            }
            void *ref_state = NULL;
            jp_status st = ref->prepare ? ref->prepare(host, &ref_state, &err) : JP_OK;
            bool ref_prepared = st == JP_OK && ref->prepare;
            if (st == JP_OK)
                st = ref->run(ref_state, host, &err);
            if (ref_prepared && ref->release)
                ref->release(ref_state);
            if (st != JP_OK) {
                jp_test_fail(name, "the CPU reference %s failed: %s", ref->name, err.msg);
                break;
            }
            ref_ok = true;
        }
        jp_status st = run_on_gpu(k, host, in_place, out, chose, sizeof chose, &err);
        if (st == JP_ERR_UNSUPPORTED && strncmp(k->name, "cuda/conv2d/cudnn_", 18) == 0) {
            jp_test_skip(name, "cuDNN has no such algorithm for this case: %s", err.msg);
            continue;
        }
        if (st != JP_OK) {
            jp_test_fail(name, "%s: %s", jp_status_name(st), err.msg);
            continue;
        }
        e = max_err(out, ref_out, out_n, &ref_max);
        tol = transform_algorithm(k->name) ? 1e-3 * ref_max + 1e-5 : 1e-4 * ref_max + 1e-5;
        snprintf(line, sizeof line, "%s (err %.2e, max|ref| %.3g, tol %.2e%s%s)", name, e,
                 ref_max, tol, *chose ? ", " : "", chose);
        JP_CHECK(line, e <= tol, "error %.3e above tolerance %.3e (max|ref| %.4g)%s%s", e, tol,
                 ref_max, *chose ? ", " : "", chose);
    }
    if (n_cuda > 0 && n_supported == 0) {
        snprintf(name, sizeof name, "cuda/%s/* %s", op_name, label);
        jp_test_fail(name, "no CUDA kernel supports this case");
    } else if (n_cuda == 0) {
        snprintf(name, sizeof name, "cuda/%s/* %s", op_name, label);
        jp_test_fail(name, "no CUDA kernel is registered for %s", op_name);
    }
    free(out);
}

/* ---- convolution ---- */

typedef struct conv_case {
    const char *label;         /* shape part of the test name */
    int n, c_in, c_out, h, w;
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
    int combos;                /* 1: bn+relu only; 8: {no bn, bn} x {none, relu, silu, sigmoid} */
} conv_case;

static void test_conv_case(const conv_case *c)
{
    jp_op op = {0}, bn = {0};
    jp_conv2d_attrs *a = &op.attrs.conv2d;
    const int64_t cg = c->c_in / c->groups;
    const int64_t w_dims[4] = {c->c_out, cg, c->kh, c->kw}, c_dims[1] = {c->c_out};
    const float bound = sqrtf(3.0f / (float)(cg * c->kh * c->kw));
    static char *bn_names[4] = {"test.bn.weight", "test.bn.bias", "test.bn.running_mean",
                                "test.bn.running_var"};
    const float lo[4] = {0.5f, -0.5f, -0.5f, 0.3f}, hi[4] = {1.5f, 0.5f, 0.5f, 1.5f};
    const int64_t oh = window_out(c->h, c->kh, c->sh, c->ph, c->dh, false);
    const int64_t ow = window_out(c->w, c->kw, c->sw, c->pw, c->dw, false);
    const int64_t in_dims[4] = {c->n, c->c_in, c->h, c->w};
    const int64_t out_dims[4] = {c->n, c->c_out, oh, ow};
    float *wt, *b = NULL, *bn_p[4], *x, *ref;
    jp_step step = {.op = &op, .n_in = 1};

    op.name = "test.conv";
    op.path = "test.conv";
    op.module = "Conv2d";
    op.type = JP_OP_CONV2D;
    op.n_inputs = 1;
    *a = (jp_conv2d_attrs){c->c_in, c->c_out, c->kh, c->kw, c->sh, c->sw,
                           c->ph, c->pw, c->dh, c->dw, c->groups, c->bias};
    /* He-uniform-ish weights keep outputs near unit scale. */
    wt = rand_buf(w_dims[0] * w_dims[1] * w_dims[2] * w_dims[3], -bound, bound);
    set_param(&op.params[0], "test.conv.weight", 4, w_dims, wt);
    op.n_params = 1;
    if (c->bias) {
        b = rand_buf(c->c_out, -0.5f, 0.5f);
        set_param(&op.params[1], "test.conv.bias", 1, c_dims, b);
        op.n_params = 2;
    }
    bn.name = "test.bn";
    bn.path = "test.bn";
    bn.module = "BatchNorm2d";
    bn.type = JP_OP_BATCH_NORM2D;
    bn.attrs.batch_norm2d = (jp_batch_norm2d_attrs){c->c_out, 1e-5f};
    bn.n_params = 4;
    for (int i = 0; i < 4; i++) {
        bn_p[i] = rand_buf(c->c_out, lo[i], hi[i]);
        set_param(&bn.params[i], bn_names[i], 1, c_dims, bn_p[i]);
    }
    x = rand_buf(in_dims[0] * in_dims[1] * in_dims[2] * in_dims[3], -1.0f, 1.0f);
    ref = xmalloc((size_t)(out_dims[0] * out_dims[1] * oh * ow) * sizeof(float));
    step.in[0] = make_tensor(4, in_dims, JP_DEVICE_CPU, x);
    step.out = make_tensor(4, out_dims, JP_DEVICE_CPU, ref);
    /* combos 8: with and without batch norm, each activation of JP_ACTIVATIONS. */
    for (int combo = 0; combo < (c->combos == 1 ? 1 : 2 * JP_ACT_COUNT); combo++) {
        bool with_bn = c->combos == 1 ? true : combo >= JP_ACT_COUNT;
        jp_activation act = c->combos == 1 ? JP_ACT_RELU : (jp_activation)(combo % JP_ACT_COUNT);
        char label[256];
        step.fused_bn = with_bn ? &bn : NULL;
        step.act = act;
        snprintf(label, sizeof label, "%s n%d %s%s%s", c->label, c->n, c->bias ? "bias+" : "",
                 with_bn ? "bn+" : "", act_name(act));
        check_case(label, &step, false);
    }
    free(wt);
    free(b);
    for (int i = 0; i < 4; i++)
        free(bn_p[i]);
    free(x);
    free(ref);
}

static void test_convs(void)
{
    /* label, n, c_in, c_out, h, w, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias, combos */
    static const conv_case cases[] = {
        {"13x11 3x3 s1 p1", 1, 5, 7, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, 8},
        {"13x11 3x3 s1 p1", 2, 5, 7, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 8},
        {"13x11 3x3 s2 p4 g2 (pad > kernel)", 2, 6, 10, 13, 11, 3, 3, 2, 2, 4, 4, 1, 1, 2, false, 8},
        {"15x17 3x3 s1 p2 d2", 1, 8, 6, 15, 17, 3, 3, 1, 1, 2, 2, 2, 2, 1, true, 8},
        {"12x9 3x3 s2 p1 g4", 2, 16, 8, 12, 9, 3, 3, 2, 2, 1, 1, 1, 1, 4, true, 8},
        {"9x14 5x3 s(2,1) p(2,0) d(1,2)", 1, 4, 6, 9, 14, 5, 3, 2, 1, 2, 0, 1, 2, 1, false, 8},
        {"14x14 1x1 s1", 1, 32, 48, 14, 14, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 8},
        {"13x11 1x1 s1", 2, 24, 20, 13, 11, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"15x13 1x1 s2", 2, 16, 24, 15, 13, 1, 1, 2, 2, 0, 0, 1, 1, 1, false, 8},
        {"13x11 1x1 s1 g2", 1, 16, 12, 13, 11, 1, 1, 1, 1, 0, 0, 1, 1, 2, false, 1},
        {"9x9 1x1 s1 p1", 1, 8, 8, 9, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"1x1 1x1 c8->32 (squeeze-excitation)", 2, 8, 32, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, true, 8},
        {"40x36 7x7 s2 p3 (stem)", 1, 3, 16, 40, 36, 7, 7, 2, 2, 3, 3, 1, 1, 1, false, 1},
        {"40x36 7x7 s2 p3 (stem)", 2, 3, 16, 40, 36, 7, 7, 2, 2, 3, 3, 1, 1, 1, false, 1},
        {"63x67 11x11 s4 p2 (alexnet)", 1, 3, 12, 63, 67, 11, 11, 4, 4, 2, 2, 1, 1, 1, true, 8},
        {"28x28 3x3 s1 p1 c64", 1, 64, 64, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"7x7 3x3 s1 p1 c256->128", 1, 256, 128, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
        {"56x56 1x1 s1 c64->96", 1, 64, 96, 56, 56, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, 1},
        {"28x28 1x1 s2 c64->128", 2, 64, 128, 28, 28, 1, 1, 2, 2, 0, 0, 1, 1, 1, false, 1},
        {"17x19 dw 3x3 s1 p1", 1, 24, 24, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 24, false, 8},
        {"17x19 dw 3x3 s2 p1", 2, 24, 24, 17, 19, 3, 3, 2, 2, 1, 1, 1, 1, 24, false, 8},
        {"17x19 dw 5x5 s1 p2", 1, 20, 20, 17, 19, 5, 5, 1, 1, 2, 2, 1, 1, 20, true, 8},
        {"17x19 dw 5x5 s2 p2", 2, 20, 20, 17, 19, 5, 5, 2, 2, 2, 2, 1, 1, 20, false, 8},
        {"10x8 dw 3x3 s2 p5 (pad > kernel)", 1, 8, 8, 10, 8, 3, 3, 2, 2, 5, 5, 1, 1, 8, false, 1},
        {"21x23 dw 3x3 s1 p2 d2", 1, 8, 8, 21, 23, 3, 3, 1, 1, 2, 2, 2, 2, 8, false, 1},
        {"112x112 dw 3x3 s2 p1 c16", 1, 16, 16, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 16, false, 1},
        {"28x28 dw 5x5 s2 p2 c40", 1, 40, 40, 28, 28, 5, 5, 2, 2, 2, 2, 1, 1, 40, false, 1},
        {"1x1 3x3 s1 p1 c4", 1, 4, 6, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_conv_case(&cases[i]);
}

/* ---- linear ---- */

/* in_rank 4: the input is [n, c, h, w] with c*h*w = in_features (flatten's
 * input, when the executor hands linear the unflattened buffer). */
static void test_linear_case(int n, int in_f, int out_f, bool bias, jp_activation act,
                             int in_rank)
{
    jp_op op = {.name = "test.fc", .path = "test.fc", .module = "Linear", .type = JP_OP_LINEAR,
                .n_inputs = 1};
    const int64_t w_dims[2] = {out_f, in_f}, b_dims[1] = {out_f};
    const float bound = 1.0f / sqrtf((float)in_f);
    float *wt = rand_buf((int64_t)out_f * in_f, -bound, bound);
    float *b = rand_buf(out_f, -0.5f, 0.5f);
    float *x = rand_buf((int64_t)n * in_f, -1.0f, 1.0f);
    float *ref = xmalloc((size_t)n * out_f * sizeof(float));
    const int64_t in2[2] = {n, in_f}, in4[4] = {n, in_f / 9, 3, 3}, out_dims[2] = {n, out_f};
    jp_step step = {.op = &op, .act = act, .n_in = 1};
    char label[256];

    op.attrs.linear = (jp_linear_attrs){in_f, out_f, bias};
    set_param(&op.params[0], "test.fc.weight", 2, w_dims, wt);
    set_param(&op.params[1], "test.fc.bias", 1, b_dims, b);
    op.n_params = bias ? 2 : 1;
    step.in[0] = in_rank == 4 ? make_tensor(4, in4, JP_DEVICE_CPU, x)
                              : make_tensor(2, in2, JP_DEVICE_CPU, x);
    step.out = make_tensor(2, out_dims, JP_DEVICE_CPU, ref);
    snprintf(label, sizeof label, "%s%dx%d->%d %s %s", in_rank == 4 ? "[n,c,3,3] " : "", n,
             in_f, out_f, bias ? "bias" : "nobias", act_name(act));
    check_case(label, &step, false);
    free(wt);
    free(b);
    free(x);
    free(ref);
}

static void test_linears(void)
{
    test_linear_case(1, 37, 129, true, JP_ACT_NONE, 2);   /* n = 1: cublasSgemv */
    test_linear_case(1, 37, 129, false, JP_ACT_RELU, 2);
    test_linear_case(1, 37, 129, false, JP_ACT_NONE, 2);
    test_linear_case(2, 37, 129, true, JP_ACT_RELU, 2);   /* n > 1: cublasSgemm */
    test_linear_case(2, 1280, 1000, true, JP_ACT_NONE, 2);
    test_linear_case(3, 301, 257, false, JP_ACT_RELU, 2);
    test_linear_case(1, 9216, 512, true, JP_ACT_RELU, 2);
    test_linear_case(2, 45, 10, true, JP_ACT_NONE, 4);
}

/* ---- batch norm ---- */

static void test_batch_norm(int n, int c, int h, int w, float eps, jp_activation act)
{
    jp_op op = {.name = "test.bn", .path = "test.bn", .module = "BatchNorm2d",
                .type = JP_OP_BATCH_NORM2D, .n_inputs = 1};
    const int64_t dims[4] = {n, c, h, w}, c_dims[1] = {c};
    const float lo[4] = {0.5f, -0.5f, -0.5f, 0.01f}, hi[4] = {1.5f, 0.5f, 0.5f, 2.0f};
    static char *names[4] = {"test.bn.weight", "test.bn.bias", "test.bn.running_mean",
                             "test.bn.running_var"};
    const int64_t numel = dims[0] * dims[1] * dims[2] * dims[3];
    float *p[4], *x = rand_buf(numel, -3.0f, 3.0f), *ref = xmalloc((size_t)numel * sizeof(float));
    jp_step step = {.op = &op, .act = act, .n_in = 1};
    char label[256];

    op.attrs.batch_norm2d = (jp_batch_norm2d_attrs){c, eps};
    for (int i = 0; i < 4; i++) {
        p[i] = rand_buf(c, lo[i], hi[i]);
        set_param(&op.params[i], names[i], 1, c_dims, p[i]);
    }
    op.n_params = 4;
    step.in[0] = make_tensor(4, dims, JP_DEVICE_CPU, x);
    step.out = make_tensor(4, dims, JP_DEVICE_CPU, ref);
    snprintf(label, sizeof label, "%dx%dx%dx%d eps %g %s", n, c, h, w, eps, act_name(act));
    check_case(label, &step, false);
    for (int i = 0; i < 4; i++)
        free(p[i]);
    free(x);
    free(ref);
}

static void test_batch_norms(void)
{
    for (int act = JP_ACT_NONE; act < JP_ACT_COUNT; act++)
        test_batch_norm(2, 5, 13, 11, 1e-5f, (jp_activation)act);
    test_batch_norm(1, 32, 28, 28, 1e-3f, JP_ACT_NONE);
}

/* ---- pooling ---- */

static void test_max_pool(const char *label, int n, int c, int h, int w, int k, int s, int p,
                          int d, bool ceil_mode)
{
    jp_op op = {.name = "test.pool", .path = "test.pool", .module = "MaxPool2d",
                .type = JP_OP_MAX_POOL2D, .n_inputs = 1};
    const int64_t oh = window_out(h, k, s, p, d, ceil_mode), ow = window_out(w, k, s, p, d,
                                                                            ceil_mode);
    const int64_t in_dims[4] = {n, c, h, w}, out_dims[4] = {n, c, oh, ow};
    float *x = rand_buf((int64_t)n * c * h * w, -1.0f, 1.0f);
    float *ref = xmalloc((size_t)(n * c * oh * ow) * sizeof(float));
    jp_step step = {.op = &op, .n_in = 1};
    char full[256];

    op.attrs.max_pool2d = (jp_max_pool2d_attrs){k, k, s, s, p, p, d, d, ceil_mode};
    step.in[0] = make_tensor(4, in_dims, JP_DEVICE_CPU, x);
    step.out = make_tensor(4, out_dims, JP_DEVICE_CPU, ref);
    snprintf(full, sizeof full, "%s n%d -> %lldx%lld", label, n, (long long)oh, (long long)ow);
    check_case(full, &step, false);
    free(x);
    free(ref);
}

static void test_avg_pool(const char *label, int n, int c, int h, int w, int oh, int ow)
{
    jp_op op = {.name = "test.avgpool", .path = "test.avgpool", .module = "AdaptiveAvgPool2d",
                .type = JP_OP_ADAPTIVE_AVG_POOL2D, .n_inputs = 1};
    const int64_t in_dims[4] = {n, c, h, w}, out_dims[4] = {n, c, oh, ow};
    float *x = rand_buf((int64_t)n * c * h * w, -1.0f, 1.0f);
    float *ref = xmalloc((size_t)n * c * oh * ow * sizeof(float));
    jp_step step = {.op = &op, .n_in = 1};
    char full[256];

    op.attrs.adaptive_avg_pool2d = (jp_adaptive_avg_pool2d_attrs){oh, ow};
    step.in[0] = make_tensor(4, in_dims, JP_DEVICE_CPU, x);
    step.out = make_tensor(4, out_dims, JP_DEVICE_CPU, ref);
    snprintf(full, sizeof full, "%s n%d", label, n);
    check_case(full, &step, false);
    free(x);
    free(ref);
}

static void test_pools(void)
{
    test_max_pool("13x13 3x3 s2 p1", 2, 3, 13, 13, 3, 2, 1, 1, false);
    test_max_pool("13x11 3x3 s2 p0 (alexnet)", 1, 5, 13, 11, 3, 2, 0, 1, false);
    test_max_pool("13x13 3x3 s2 p1 ceil (same size as floor)", 1, 3, 13, 13, 3, 2, 1, 1, true);
    test_max_pool("56x56 3x3 s2 ceil (one more window)", 1, 4, 56, 56, 3, 2, 0, 1, true);
    test_max_pool("14x12 3x3 s2 p1 ceil", 2, 4, 14, 12, 3, 2, 1, 1, true);
    test_max_pool("11x11 2x2 s2 p1 ceil (last window dropped)", 1, 3, 11, 11, 2, 2, 1, 1, true);
    test_max_pool("10x10 3x3 s3 p1 ceil", 1, 3, 10, 10, 3, 3, 1, 1, true);
    test_max_pool("17x17 3x3 s2 p1 d2", 1, 3, 17, 17, 3, 2, 1, 2, false);
    test_max_pool("17x15 3x3 s1 p1 d2 ceil", 2, 3, 17, 15, 3, 1, 1, 2, true);
    test_max_pool("112x112 3x3 s2 p1 (resnet)", 1, 64, 112, 112, 3, 2, 1, 1, false);
    test_avg_pool("7x7->6x6", 1, 5, 7, 7, 6, 6);
    test_avg_pool("1x1->6x6", 2, 5, 1, 1, 6, 6);
    test_avg_pool("13x11->6x6 (alexnet)", 1, 5, 13, 11, 6, 6);
    test_avg_pool("13x11->5x3", 2, 5, 13, 11, 5, 3);
    test_avg_pool("40x40->2x3 (large bins: block per cell)", 1, 6, 40, 40, 2, 3);
    test_avg_pool("7x7->1x1 (global)", 2, 64, 7, 7, 1, 1);
    test_avg_pool("37x29->1x1 (global, block per cell)", 2, 5, 37, 29, 1, 1);
    test_avg_pool("112x112->1x1 (global)", 1, 32, 112, 112, 1, 1);
    test_avg_pool("5x3->1x1 (global)", 1, 7, 5, 3, 1, 1);
}

/* ---- elementwise and copies ---- */

static void test_unary(jp_op_type type, int rank, const int64_t *in_dims, int out_rank,
                       const int64_t *out_dims, bool in_place)
{
    jp_op op = {.name = "test.op", .path = "test.op", .module = "op", .type = type,
                .n_inputs = 1};
    jp_step step = {.op = &op, .n_in = 1};
    int64_t numel = 1;
    float *x, *ref;
    char label[256], shape[64];

    for (int i = 0; i < rank; i++)
        numel *= in_dims[i];
    /* [-12, 12]: the exponentials of silu and sigmoid saturate there. */
    x = rand_buf(numel, -12.0f, 12.0f);
    ref = xmalloc((size_t)numel * sizeof(float));
    if (type == JP_OP_FLATTEN)
        op.attrs.flatten = (jp_flatten_attrs){1, -1};
    if (type == JP_OP_DROPOUT)
        op.attrs.dropout = (jp_dropout_attrs){0.2f};
    if (type == JP_OP_MEAN) /* over the dims the output does not keep */
        op.attrs.mean = (jp_mean_attrs){out_rank, false};
    step.in[0] = make_tensor(rank, in_dims, JP_DEVICE_CPU, x);
    step.out = make_tensor(out_rank, out_dims, JP_DEVICE_CPU, ref);
    jp_shape_str(rank, in_dims, shape, sizeof shape);
    snprintf(label, sizeof label, "%s", shape);
    check_case(label, &step, in_place);
    free(x);
    free(ref);
}

static void test_binary(jp_op_type type, const int64_t *dims, jp_activation act, bool in_place)
{
    jp_op op = {.name = "test.op", .path = "test.op", .module = "op", .type = type,
                .n_inputs = 2};
    jp_step step = {.op = &op, .n_in = 2, .act = act};
    const int64_t numel = dims[0] * dims[1] * dims[2] * dims[3];
    const int64_t scale_dims[4] = {dims[0], dims[1], 1, 1};
    float *a, *b, *ref;
    char label[256], shape[64];

    if (type == JP_OP_MUL) {
        /* in[0] the [n, c, 1, 1] scale, in[1] the tensor: in-place means out = scale's
         * buffer, which is too small, so mul's in-place case aliases nothing. */
        a = rand_buf(dims[0] * dims[1], 0.0f, 1.0f);
        step.in[0] = make_tensor(4, scale_dims, JP_DEVICE_CPU, a);
    } else {
        a = rand_buf(numel, -2.0f, 2.0f);
        step.in[0] = make_tensor(4, dims, JP_DEVICE_CPU, a);
    }
    b = rand_buf(numel, -2.0f, 2.0f);
    ref = xmalloc((size_t)numel * sizeof(float));
    step.in[1] = make_tensor(4, dims, JP_DEVICE_CPU, b);
    step.out = make_tensor(4, dims, JP_DEVICE_CPU, ref);
    jp_shape_str(4, dims, shape, sizeof shape);
    snprintf(label, sizeof label, "%s%s %s", shape, type == JP_OP_MUL ? " by [n,c,1,1]" : "",
             act_name(act));
    check_case(label, &step, in_place && type != JP_OP_MUL);
    free(a);
    free(b);
    free(ref);
}

static void test_elementwise(void)
{
    const int64_t small[4] = {2, 5, 13, 11}, big[4] = {1, 32, 112, 112};
    const int64_t feat[2] = {2, 37};
    const int64_t fl_in[4] = {2, 5, 3, 3}, fl_out[2] = {2, 45};
    const int64_t mean_out[2] = {2, 5}, mean_big_out[2] = {1, 32};

    /* Every op whose descriptor is an activation or an identity at inference. */
    for (int t = 0; t < JP_OP_TYPE_COUNT; t++) {
        const jp_op_desc *d = jp_op_desc_of((jp_op_type)t);
        if (d->activation == JP_ACT_NONE && !d->identity)
            continue;
        test_unary((jp_op_type)t, 4, small, 4, small, false);
        test_unary((jp_op_type)t, 4, big, 4, big, false);
        test_unary((jp_op_type)t, 2, feat, 2, feat, false);
        test_unary((jp_op_type)t, 4, small, 4, small, true);
    }
    test_unary(JP_OP_MEAN, 4, small, 2, mean_out, false);
    /* concat of three channel slabs; nn.AvgPool2d with a ceil_mode window off the edge */
    {
        jp_op op = {.name = "test.cat", .path = "test.cat", .module = "concat", .type = JP_OP_CONCAT, .n_inputs = 3};
        op.attrs.concat = (jp_concat_attrs){1};
        const int64_t d0[4] = {2, 3, 5, 7}, d1[4] = {2, 1, 5, 7}, d2[4] = {2, 17, 5, 7}, dout[4] = {2, 21, 5, 7};
        float *x0 = rand_buf(2 * 3 * 35, -1.0f, 1.0f), *x1 = rand_buf(2 * 35, -1.0f, 1.0f);
        float *x2 = rand_buf(2 * 17 * 35, -1.0f, 1.0f), *ref = xmalloc(2 * 21 * 35 * sizeof(float));
        jp_step step = {.op = &op, .n_in = 3};
        step.in[0] = make_tensor(4, d0, JP_DEVICE_CPU, x0);
        step.in[1] = make_tensor(4, d1, JP_DEVICE_CPU, x1);
        step.in[2] = make_tensor(4, d2, JP_DEVICE_CPU, x2);
        step.out = make_tensor(4, dout, JP_DEVICE_CPU, ref);
        check_case("[2,3|1|17,5,7] dim 1", &step, false);
        free(x0), free(x1), free(x2), free(ref);
    }
    for (int include_pad = 0; include_pad < 2; include_pad++) {
        jp_op op = {.name = "test.avgpool", .path = "test.avgpool", .module = "AvgPool2d", .type = JP_OP_AVG_POOL2D,
                    .n_inputs = 1};
        op.attrs.avg_pool2d = (jp_avg_pool2d_attrs){3, 3, 2, 2, 1, 1, true, include_pad != 0};
        const int64_t din[4] = {2, 3, 7, 9}, dout[4] = {2, 3, 4, 5};
        float *x = rand_buf(2 * 3 * 63, -1.0f, 1.0f), *ref = xmalloc(2 * 3 * 20 * sizeof(float));
        jp_step step = {.op = &op, .n_in = 1};
        step.in[0] = make_tensor(4, din, JP_DEVICE_CPU, x);
        step.out = make_tensor(4, dout, JP_DEVICE_CPU, ref);
        check_case(include_pad ? "7x9 3x3 s2 p1 ceil" : "7x9 3x3 s2 p1 ceil exclude pad", &step, false);
        free(x), free(ref);
    }
    {
        /* Issue 12's second list: transform_input, ConvNeXt's layer norms, permutes, layer scale. */
        const int64_t d[4] = {2, 5, 7, 3}, nhwc[4] = {2, 7, 3, 5}, rows[3] = {3, 5, 96}, f5[1] = {5};
        const int64_t f96[1] = {96}, s5[3] = {5, 1, 1};
        float *x = rand_buf(2 * 5 * 21, -2.0f, 3.0f), *xr = rand_buf(3 * 5 * 96, -2.0f, 3.0f);
        float *ref = xmalloc(3 * 5 * 96 * sizeof(float)), *g = rand_buf(96, 0.5f, 1.5f), *b = rand_buf(96, -0.2f, 0.2f);
        jp_op op = {.name = "test.op", .path = "test.op", .module = "op", .type = JP_OP_CHANNEL_AFFINE, .n_inputs = 1};
        op.attrs.channel_affine.channels = 5;
        for (int c = 0; c < 5; c++)
            op.attrs.channel_affine.scale[c] = 0.4f + 0.1f * c, op.attrs.channel_affine.shift[c] = -0.1f * c;
        jp_step step = {.op = &op, .n_in = 1};
        step.in[0] = make_tensor(4, d, JP_DEVICE_CPU, x);
        step.out = make_tensor(4, d, JP_DEVICE_CPU, ref);
        check_case("[2,5,7,3]", &step, false);
        op.type = JP_OP_LAYER_NORM;
        op.attrs.layer_norm = (jp_layer_norm_attrs){1, 5, 1e-6f};
        set_param(&op.params[JP_PARAM_WEIGHT], "test.ln.weight", 1, f5, g);
        set_param(&op.params[JP_PARAM_BIAS], "test.ln.bias", 1, f5, b);
        op.n_params = 2;
        check_case("[2,5,7,3] dim 1", &step, false);
        op.attrs.layer_norm = (jp_layer_norm_attrs){2, 96, 1e-6f};
        set_param(&op.params[JP_PARAM_WEIGHT], "test.ln.weight", 1, f96, g);
        set_param(&op.params[JP_PARAM_BIAS], "test.ln.bias", 1, f96, b);
        step.in[0] = make_tensor(3, rows, JP_DEVICE_CPU, xr);
        step.out = make_tensor(3, rows, JP_DEVICE_CPU, ref);
        check_case("[3,5,96] dim 2", &step, false);
        op.type = JP_OP_LAYER_SCALE;
        op.attrs.layer_scale.channels = 5;
        set_param(&op.params[JP_PARAM_WEIGHT], "test.layer_scale", 3, s5, g);
        op.n_params = 1;
        step.in[0] = make_tensor(4, d, JP_DEVICE_CPU, x);
        step.out = make_tensor(4, d, JP_DEVICE_CPU, ref);
        check_case("[2,5,7,3]", &step, false);
        op.type = JP_OP_PERMUTE;
        op.n_params = 0;
        op.attrs.permute = (jp_permute_attrs){4, {0, 2, 3, 1}};
        step.out = make_tensor(4, nhwc, JP_DEVICE_CPU, ref);
        check_case("[2,5,7,3] to NHWC", &step, false);
        free(x), free(xr), free(ref), free(g), free(b);
    }
    /* ShuffleNetV2: the shorter last piece of a chunk along channels; a 3-group shuffle */
    {
        jp_op op = {.name = "test.chunk", .path = "test.chunk", .module = "chunk", .type = JP_OP_CHUNK, .n_inputs = 1};
        op.attrs.chunk = (jp_chunk_attrs){2, 1, 1};
        const int64_t din[4] = {2, 7, 5, 3}, dout[4] = {2, 3, 5, 3};
        float *x = rand_buf(2 * 7 * 15, -1.0f, 1.0f), *ref = xmalloc(2 * 3 * 15 * sizeof(float));
        jp_step step = {.op = &op, .n_in = 1};
        step.in[0] = make_tensor(4, din, JP_DEVICE_CPU, x);
        step.out = make_tensor(4, dout, JP_DEVICE_CPU, ref);
        check_case("[2,7,5,3] 2 chunks dim 1 [1]", &step, false);
        free(x), free(ref);
        jp_op sh = {.name = "test.shuffle", .path = "test.shuffle", .module = "channel_shuffle",
                    .type = JP_OP_CHANNEL_SHUFFLE, .n_inputs = 1};
        sh.attrs.channel_shuffle = (jp_channel_shuffle_attrs){3};
        const int64_t ds[4] = {2, 12, 5, 3};
        x = rand_buf(2 * 12 * 15, -1.0f, 1.0f), ref = xmalloc(2 * 12 * 15 * sizeof(float));
        step = (jp_step){.op = &sh, .n_in = 1};
        step.in[0] = make_tensor(4, ds, JP_DEVICE_CPU, x);
        step.out = make_tensor(4, ds, JP_DEVICE_CPU, ref);
        check_case("[2,12,5,3] groups 3", &step, false);
        free(x), free(ref);
    }
    test_unary(JP_OP_MEAN, 4, big, 2, mean_big_out, false);
    test_unary(JP_OP_FLATTEN, 4, fl_in, 2, fl_out, false);
    test_unary(JP_OP_FLATTEN, 4, fl_in, 2, fl_out, true);
    for (int act = JP_ACT_NONE; act < JP_ACT_COUNT; act++) {
        test_binary(JP_OP_ADD, small, (jp_activation)act, false);
        test_binary(JP_OP_MUL, small, (jp_activation)act, false);
    }
    test_binary(JP_OP_ADD, small, JP_ACT_RELU, true);
    test_binary(JP_OP_ADD, big, JP_ACT_NONE, false);
    test_binary(JP_OP_MUL, big, JP_ACT_NONE, false);
}

/* ---- the backend and the kernel list ---- */

static void test_backend(void)
{
    jp_error err = {0};
    size_t count;
    const jp_kernel *const *all = jp_kernels_all(&count);
    bool list_ok = true;
    int n_cuda = 0;

    for (size_t i = 0; i < count; i++) {
        if (all[i]->device != JP_DEVICE_CUDA)
            continue;
        n_cuda++;
        if (strncmp(all[i]->name, "cuda/", 5) != 0 || !all[i]->supports || !all[i]->run ||
            all[i]->is_reference)
            list_ok = false;
    }
    if (!env.cuda) {
        jp_test_skip("cuda backend", "no CUDA backend: %s", env.no_module);
        return;
    }
    JP_CHECK("cuda kernel list: cuda/ names, supports and run set, no reference", list_ok && n_cuda,
             "a CUDA kernel is malformed (or none is listed: %d)", n_cuda);

    /* Before init, a prepare must fail with a clear error, not crash. */
    {
        const jp_kernel *k = jp_kernel_find("cuda/conv2d/cudnn");
        jp_op op = {.name = "test.conv", .type = JP_OP_CONV2D, .n_inputs = 1};
        jp_step step = {.op = &op, .n_in = 1};
        void *state = NULL;
        jp_status st = k ? k->prepare(&step, &state, &err) : JP_ERR_MISSING;
        char line[1200];
        snprintf(line, sizeof line, "cuda/conv2d/cudnn prepare before init fails cleanly (%s)",
                 err.msg);
        JP_CHECK(line, st == JP_ERR_DEVICE && strstr(err.msg, "not initialised") && !state,
                 "status %s, message \"%s\"", jp_status_name(st), err.msg);
    }

    jp_status st = env.cuda->init(&err);
    if (st != JP_OK) {
        char line[1200];
        env.ready = false;
        snprintf(env.why_not, sizeof env.why_not, "%s", err.msg);
        /* Without a GPU the message must say so, for --device cuda. */
        snprintf(line, sizeof line, "cuda backend init without a GPU says why (%s)", err.msg);
        JP_CHECK(line, strncmp(err.msg, "--device cuda: ", 15) == 0, "message \"%s\"", err.msg);
        return;
    }
    env.ready = true;
    {
        char desc[512], line[700];
        env.cuda->describe(desc, sizeof desc);
        snprintf(line, sizeof line, "cuda backend: %s", desc);
        jp_test_pass(line);
        JP_CHECK("cuda backend init is idempotent", env.cuda->init(&err) == JP_OK, "%s", err.msg);
    }
    {
        float host[1000], back[1000];
        void *p = NULL;
        bool ok;
        for (int i = 0; i < 1000; i++)
            host[i] = (float)i * 0.5f - 7.0f;
        st = env.cuda->alloc(sizeof host, &p, &err);
        ok = st == JP_OK && env.cuda->upload(p, host, sizeof host, &err) == JP_OK &&
             env.cuda->download(back, p, sizeof back, &err) == JP_OK &&
             env.cuda->synchronize(&err) == JP_OK && memcmp(host, back, sizeof host) == 0;
        JP_CHECK("cuda backend upload/download round trip", ok, "%s", err.msg);
        if (p)
            env.cuda->free(p);
    }
    {
        /* A failing CUDA call becomes an error naming the call, file:line and
         * the library's message, with the status JP_ERR_NOMEM. */
        void *p = NULL;
        char line[1200];
        st = env.cuda->alloc((size_t)1 << 50, &p, &err);
        snprintf(line, sizeof line, "cuda backend alloc of 1 PiB fails cleanly (%s)", err.msg);
        JP_CHECK(line, st == JP_ERR_NOMEM && !p && strstr(err.msg, "cudaMalloc") &&
                           strstr(err.msg, ".cu:"),
                 "status %s, message \"%s\"", jp_status_name(st), err.msg);
        /* The failure must not poison later calls (a non-sticky error). */
        JP_CHECK("cuda backend usable after a failed alloc", env.cuda->synchronize(&err) == JP_OK,
                 "%s", err.msg);
    }
}

int main(void)
{
    const char *seed_env = getenv("JP_TEST_SEED");
    uint64_t seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 10)
                                          : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (seed == 0)
        seed = 1;
    rng_state = seed;
    printf("# test_cuda_kernels: seed %llu (JP_TEST_SEED=%llu replays this run)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    /* Where the module is: see the header comment. */
    if (!getenv("JPLPROF_CUDA_MODULE")) {
        char path[PATH_MAX + 32], dir[PATH_MAX];
        const char *bin = getenv("JPLPROF");
        ssize_t n;
        if (bin && *bin) {
            snprintf(dir, sizeof dir, "%s", bin);
            snprintf(path, sizeof path, "%s/jplprof-cuda.so", dirname(dir));
        } else if ((n = readlink("/proc/self/exe", dir, sizeof dir - 1)) > 0) {
            dir[n] = '\0';
            snprintf(path, sizeof path, "%s/../../jplprof-cuda.so", dirname(dir));
        } else {
            path[0] = '\0';
        }
        if (path[0])
            setenv("JPLPROF_CUDA_MODULE", path, 1);
    }
    {
        jp_error err = {0};
        if (jp_backend_open(JP_DEVICE_CUDA, &env.cuda, &err))
            snprintf(env.no_module, sizeof env.no_module, "%s", err.msg);
    }
    test_backend();
    test_convs();
    test_linears();
    test_batch_norms();
    test_pools();
    test_elementwise();
    if (env.ready && env.cuda->shutdown)
        env.cuda->shutdown();
    return jp_test_exit_code();
}
