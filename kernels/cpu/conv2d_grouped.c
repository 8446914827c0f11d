/*
 * conv2d_grouped.c: cpu/conv2d/grouped, direct grouped convolution
 * (groups > 1, not depthwise: ResNeXt, RegNet), up to GC_MAX_CG input and
 * output channels per group, kernels up to 7x7, strides up to 4.
 *
 * As a GEMM per group (cpu/conv2d/im2col_blas) such a convolution has as
 * few rows as the group has output channels (8 in RegNetY-400MF), too few
 * for OpenBLAS, and pays im2col's copy of every tap: on Zen 3 (AVX2) its
 * grouped 3x3 layers took 3 to 4 times ONNX Runtime's time.
 *
 * A task is one image's group and a block of output rows.  It first copies
 * the input rows it reads, of each of the group's input channels, into the
 * thread's workspace as `stride` column phases (as cpu/conv2d/depthwise
 * does):
 *     ws[ci][q][r][x] = padded[r0 + r][stride*x + q]
 * so that every tap reads a contiguous run with no bounds test: output
 * column ox, tap kx reads phase (kx*dil) % stride at column ox + (kx*dil) /
 * stride.  Then each output row is computed in tiles of GC_R output
 * channels x GC_V vectors of JP_VLEN columns whose accumulators stay in
 * registers across every (input channel, tap): one input vector feeds GC_R
 * FMAs, one broadcast weight GC_V.  Batch norm is folded into the weights
 * in prepare, packed per block of GC_R output channels (zero past the
 * group's last); the activation is applied in registers.
 */
#include "cpu_simd.h"

#include <omp.h>
#include <stdlib.h>

#define GC_MAX_KERNEL 7
#define GC_MAX_STRIDE 4
#define GC_MAX_CG 64
/* The tile: 4 output channels x 2 vectors = 8 accumulators, enough
 * independent FMA chains for two FMA pipes of latency 4, with room for the
 * inputs in AVX2's 16 registers. */
#define GC_R 4
#define GC_V 2
/* A task's copy of its input rows stays in L2 next to its outputs. */
#define GC_WORK_BYTES (256 * 1024)

typedef struct gc_plan {
    jp_cpu_conv_shape s;
    int64_t cgi, cgo;       /* input / output channels per group                  */
    int taps;               /* kh * kw                                            */
    int64_t row_block;      /* output rows per task                               */
    int64_t n_row_blocks;
    int64_t rows_alloc;     /* padded input rows a task reads                     */
    int64_t phase_w;        /* floats of one phase row, whole vectors             */
    int64_t chan_floats;    /* one input channel in the workspace                 */
    int64_t tap_off[GC_MAX_KERNEL * GC_MAX_KERNEL]; /* tap t in a channel's phases */
    int64_t n_cb;           /* blocks of GC_R output channels per group           */
    float *wp;              /* [groups][n_cb][cgi * taps][GC_R]                   */
    float *bp;              /* [groups][n_cb][GC_R]                               */
    jp_activation act;
    int n_threads;
    float *work;            /* [n_threads][cgi * chan_floats]                     */
} gc_plan;

static bool gc_supports(const jp_step *step)
{
    if (!jp_cpu_conv_step_ok(step))
        return false;
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    const bool depthwise = a->groups == a->c_in && a->c_out == a->c_in;
    return a->groups > 1 && !depthwise && a->c_in / a->groups <= GC_MAX_CG &&
           a->c_out / a->groups <= GC_MAX_CG && a->kernel_h <= GC_MAX_KERNEL &&
           a->kernel_w <= GC_MAX_KERNEL && a->stride_h <= GC_MAX_STRIDE &&
           a->stride_w <= GC_MAX_STRIDE;
}

static void gc_release(void *state)
{
    gc_plan *p = state;
    if (!p)
        return;
    jp_cpu_free(p->wp);
    jp_cpu_free(p->bp);
    jp_cpu_free(p->work);
    free(p);
}

/* Rows per task: the workspace within GC_WORK_BYTES, and at least two tasks
 * per thread where the rows allow it (RegNet's first stage has 6 groups). */
static void gc_choose_rows(gc_plan *p)
{
    const jp_cpu_conv_shape *s = &p->s;
    const int64_t halo = (int64_t)(s->kh - 1) * s->dh + 1;
    const int64_t row_floats = p->cgi * s->sw * p->phase_w; /* one padded row, every channel */
    int64_t rb = ((int64_t)GC_WORK_BYTES / (int64_t)sizeof(float) / row_floats - halo) / s->sh + 1;
    if (rb < 1)
        rb = 1;
    if (rb > s->oh)
        rb = s->oh;
    const int64_t outer = s->n * s->groups;
    const int64_t want = 2 * (int64_t)p->n_threads;
    if (outer * jp_cpu_div_up(s->oh, rb) < want) {
        int64_t blocks = jp_cpu_div_up(want, outer);
        if (blocks > s->oh)
            blocks = s->oh;
        rb = jp_cpu_div_up(s->oh, blocks);
    }
    p->row_block = rb;
    p->n_row_blocks = jp_cpu_div_up(s->oh, rb);
    p->rows_alloc = (rb - 1) * s->sh + halo;
}

static jp_status gc_prepare(const jp_step *step, void **state, jp_error *err)
{
    *state = NULL;
    gc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->s = jp_cpu_conv_shape_of(step);
    const jp_cpu_conv_shape *s = &p->s;
    p->cgi = s->c_in / s->groups;
    p->cgo = s->c_out / s->groups;
    p->taps = s->kh * s->kw;
    p->act = step->act;
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;
    /* A tile's last vector reads lanes up to ow rounded up to JP_VLEN, at
     * column offsets up to (kw-1)*dw/sw. */
    p->phase_w = jp_cpu_div_up(s->ow, JP_VLEN) * JP_VLEN + (int64_t)(s->kw - 1) * s->dw / s->sw;
    p->phase_w = jp_cpu_div_up(p->phase_w, JP_VLEN) * JP_VLEN;
    gc_choose_rows(p);
    p->chan_floats = s->sw * p->rows_alloc * p->phase_w;
    for (int ky = 0; ky < s->kh; ky++)
        for (int kx = 0; kx < s->kw; kx++) {
            const int e = kx * s->dw;
            p->tap_off[ky * s->kw + kx] =
                ((int64_t)(e % s->sw) * p->rows_alloc + (int64_t)ky * s->dh) * p->phase_w + e / s->sw;
        }
    p->n_cb = jp_cpu_div_up(p->cgo, GC_R);

    float *wt = NULL, *b = NULL;
    jp_status st = jp_cpu_conv_fold(step, &wt, &b, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }
    const int64_t k = p->cgi * p->taps; /* one output channel's weights */
    const size_t n_blocks = (size_t)s->groups * (size_t)p->n_cb;
    p->wp = jp_cpu_alloc(n_blocks * (size_t)k * GC_R * sizeof(float));
    p->bp = jp_cpu_alloc(n_blocks * GC_R * sizeof(float));
    p->work = jp_cpu_alloc((size_t)p->n_threads * (size_t)p->cgi * (size_t)p->chan_floats *
                           sizeof(float));
    if (!p->wp || !p->bp || !p->work) {
        jp_cpu_free(wt);
        jp_cpu_free(b);
        gc_release(p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the grouped convolution's "
                            "weights and workspace", step->op->name);
    }
    for (int64_t g = 0; g < s->groups; g++)
        for (int64_t cb = 0; cb < p->n_cb; cb++) {
            float *wb = p->wp + ((size_t)g * (size_t)p->n_cb + (size_t)cb) * (size_t)k * GC_R;
            float *bb = p->bp + ((size_t)g * (size_t)p->n_cb + (size_t)cb) * GC_R;
            for (int r = 0; r < GC_R; r++) {
                const int64_t co = cb * GC_R + r; /* within the group */
                const bool real = co < p->cgo;
                bb[r] = real ? b[g * p->cgo + co] : 0.0f;
                for (int64_t i = 0; i < k; i++)
                    wb[i * GC_R + r] = real ? wt[(g * p->cgo + co) * k + i] : 0.0f;
            }
        }
    jp_cpu_free(wt);
    jp_cpu_free(b);
    *state = p;
    return JP_OK;
}

/* Copies padded rows [r0, r0 + rows_alloc) of input plane x[h, w] into
 * one channel's phases; rows outside the plane are zero. */
static void gc_fill_channel(const gc_plan *p, const float *restrict x, int64_t r0,
                            float *restrict ws)
{
    const jp_cpu_conv_shape *s = &p->s;
    for (int64_t r = 0; r < p->rows_alloc; r++) {
        const int64_t iy = r0 + r - s->ph;
        if (s->sw == 2 && iy >= 0 && iy < s->h) {
            float *dst0 = ws + r * p->phase_w, *dst1 = dst0 + p->rows_alloc * p->phase_w;
            jp_cpu_split_row2(dst0, dst1, x + iy * s->w, s->w, -s->pw, p->phase_w);
            continue;
        }
        for (int q = 0; q < s->sw; q++) {
            float *dst = ws + ((int64_t)q * p->rows_alloc + r) * p->phase_w;
            if (iy < 0 || iy >= s->h)
                memset(dst, 0, (size_t)p->phase_w * sizeof(float));
            else
                jp_cpu_gather_row(dst, x + iy * s->w, s->w, q - s->pw, s->sw, p->phase_w);
        }
    }
}

/* One tile: GC_R output channels (planes of y `plane` apart, the first
 * r_valid of them stored) x V vectors.  Vector v reads the phases from
 * origin + v*in_step and is stored at y + v*out_step with tail_mid lanes
 * (tail for the last): consecutive vectors of a row (steps JP_VLEN), or,
 * where a row is one vector (7x7 maps), the same vector of consecutive
 * rows, so that a tile still holds 8 independent FMA chains. */
JP_ALWAYS_INLINE void gc_tile(const gc_plan *p, const float *restrict ws, int64_t origin,
                              int64_t in_step, const float *restrict wb,
                              const float *restrict bb, float *restrict y, int64_t out_step,
                              int64_t plane, int r_valid, const int V, int tail_mid, int tail)
{
    jp_vf acc[GC_R][GC_V];
    for (int r = 0; r < GC_R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = jp_v_set1(bb[r]);
    for (int64_t ci = 0; ci < p->cgi; ci++) {
        const float *src = ws + ci * p->chan_floats + origin;
        const float *wc = wb + ci * p->taps * GC_R;
        for (int t = 0; t < p->taps; t++) {
            jp_vf in[GC_V];
            for (int v = 0; v < V; v++)
                in[v] = jp_v_load(src + p->tap_off[t] + v * in_step);
            for (int r = 0; r < GC_R; r++) {
                const jp_vf wv = jp_v_set1(wc[t * GC_R + r]);
                for (int v = 0; v < V; v++)
                    acc[r][v] = jp_v_fma(wv, in[v], acc[r][v]);
            }
        }
    }
    for (int r = 0; r < r_valid; r++) {
        float *dst = y + r * plane;
        for (int v = 0; v < V - 1; v++)
            jp_v_store_n(dst + v * out_step, jp_v_act(acc[r][v], p->act), tail_mid);
        jp_v_store_n(dst + (V - 1) * out_step, jp_v_act(acc[r][V - 1], p->act), tail);
    }
}

/* Task t: image b, group g, output rows [oy0, oy0 + row_block). */
static void gc_task(const gc_plan *p, const float *restrict x, float *restrict y, int64_t t,
                    float *restrict ws)
{
    const jp_cpu_conv_shape *s = &p->s;
    const int64_t rbk = t % p->n_row_blocks, bg = t / p->n_row_blocks;
    const int64_t g = bg % s->groups, b = bg / s->groups;
    const int64_t oy0 = rbk * p->row_block;
    const int64_t oy1 = oy0 + p->row_block < s->oh ? oy0 + p->row_block : s->oh;
    const int64_t plane = s->oh * s->ow;
    const float *xg = x + (b * s->c_in + g * p->cgi) * s->h * s->w;
    for (int64_t ci = 0; ci < p->cgi; ci++)
        gc_fill_channel(p, xg + ci * s->h * s->w, oy0 * s->sh, ws + ci * p->chan_floats);

    const int64_t nvec = jp_cpu_div_up(s->ow, JP_VLEN);
    const int last_lanes = (int)(s->ow - (nvec - 1) * JP_VLEN);
    const int64_t k = p->cgi * p->taps;
    for (int64_t cb = 0; cb < p->n_cb; cb++) {
        const float *wb = p->wp + ((size_t)g * (size_t)p->n_cb + (size_t)cb) * (size_t)k * GC_R;
        const float *bb = p->bp + ((size_t)g * (size_t)p->n_cb + (size_t)cb) * GC_R;
        const int64_t co = g * p->cgo + cb * GC_R;
        const int r_valid = p->cgo - cb * GC_R < GC_R ? (int)(p->cgo - cb * GC_R) : GC_R;
        float *yc = y + (b * s->c_out + co) * plane;
        const int64_t row_step = s->sh * p->phase_w; /* next output row in the phases */
        int64_t oy = oy0;
        if (nvec == 1) /* rows of one vector: GC_V rows a tile */
            for (; oy + GC_V <= oy1; oy += GC_V)
                gc_tile(p, ws, (oy - oy0) * row_step, row_step, wb, bb, yc + oy * s->ow, s->ow,
                        plane, r_valid, GC_V, last_lanes, last_lanes);
        for (; oy < oy1; oy++) {
            const int64_t origin = (oy - oy0) * row_step;
            float *yr = yc + oy * s->ow;
            int64_t vec = 0;
            for (; vec + GC_V <= nvec; vec += GC_V)
                gc_tile(p, ws, origin + vec * JP_VLEN, JP_VLEN, wb, bb, yr + vec * JP_VLEN,
                        JP_VLEN, plane, r_valid, GC_V, JP_VLEN,
                        vec + GC_V == nvec ? last_lanes : JP_VLEN);
            if (vec < nvec) /* one vector left, the last */
                gc_tile(p, ws, origin + vec * JP_VLEN, JP_VLEN, wb, bb, yr + vec * JP_VLEN,
                        JP_VLEN, plane, r_valid, 1, last_lanes, last_lanes);
        }
    }
}

static jp_status gc_run(void *state, const jp_step *step, jp_error *err)
{
    const gc_plan *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: cpu/conv2d/grouped run before prepare",
                            step->op->name);
    const float *x = step->in[0].data;
    float *y = step->out.data;
    const int64_t n_tasks = p->s.n * p->s.groups * p->n_row_blocks;
    int nt = omp_get_max_threads();
    if (nt > p->n_threads)
        nt = p->n_threads;
    if (nt < 1)
        nt = 1;
#pragma omp parallel num_threads(nt)
    {
        float *ws = p->work + (size_t)omp_get_thread_num() * (size_t)p->cgi * (size_t)p->chan_floats;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n_tasks; t++)
            gc_task(p, x, y, t, ws);
    }
    return JP_OK;
}

static void gc_memory(const void *state, const jp_step *step, size_t *prepared_bytes,
                      size_t *workspace_bytes)
{
    const gc_plan *p = state;
    (void)step;
    const size_t blocks = (size_t)p->s.groups * (size_t)p->n_cb;
    *prepared_bytes = blocks * ((size_t)p->cgi * (size_t)p->taps + 1) * GC_R * sizeof(float);
    *workspace_bytes = (size_t)p->n_threads * (size_t)p->cgi * (size_t)p->chan_floats * sizeof(float);
}

const jp_kernel jp_cpu_conv2d_grouped = {
    .name = "cpu/conv2d/grouped",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_CONV2D,
    .is_reference = false,
    .priority = 25,
    .supports = gc_supports,
    .prepare = gc_prepare,
    .run = gc_run,
    .release = gc_release,
    .memory = gc_memory,
    .params_copied = true,
};
