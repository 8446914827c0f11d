/*
 * conv2d_gemm.c: the convolution-as-GEMM driver (see conv2d_gemm.h).
 */
#include "conv2d_gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

/* Bytes of im2col block per thread.  The block is written by im2col, then
 * read once by sgemm (which packs it), so it should stay in L2 (2 MiB per
 * core on the Xeons we target) next to the output block.  Tuned with
 * tests/bench_cpu_kernels.c at one thread on ResNet-50's 3x3 layers: 256 KiB
 * to 1.5 MiB within noise of each other once JP_CONV_MIN_COLS is 256. */
#ifndef JP_CONV_COL_BLOCK_BYTES
#define JP_CONV_COL_BLOCK_BYTES (768 * 1024)
#endif

/* OpenBLAS packs the whole weight block (A) on every call, so a call with
 * few columns spends most of its time packing: below this many columns per
 * call we prefer a bigger im2col block (out of L2) or splitting rows. */
#ifndef JP_CONV_MIN_COLS
#define JP_CONV_MIN_COLS 256
#endif

jp_status jp_conv_gemm_prepare(const jp_step *step, bool allow_direct, jp_conv_gemm **plan_out,
                               jp_error *err)
{
    const jp_conv2d_attrs *a = &step->op->attrs.conv2d;
    jp_conv_gemm *p = calloc(1, sizeof *p);
    *plan_out = NULL;
    if (!p)
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the plan", step->op->name);
    p->s = jp_cpu_conv_shape_of(step);
    p->m_g = a->c_out / a->groups;
    p->k_g = (int64_t)(a->c_in / a->groups) * a->kernel_h * a->kernel_w;
    p->n_sp = p->s.oh * p->s.ow;
    p->direct = allow_direct && a->kernel_h == 1 && a->kernel_w == 1 && a->stride_h == 1 &&
                a->stride_w == 1 && a->pad_h == 0 && a->pad_w == 0;
    p->act = step->act;
    p->n_threads = omp_get_max_threads();
    if (p->n_threads < 1)
        p->n_threads = 1;

    jp_status st = jp_cpu_conv_fold(step, &p->wt, &p->bias, err);
    if (st != JP_OK) {
        free(p);
        return st;
    }

    /* Column blocks: as wide as the L2 budget allows but at least
     * JP_CONV_MIN_COLS; then more blocks (down to JP_CONV_MIN_COLS / 2
     * columns) when that evens the load over the threads. */
    const int64_t outer = p->s.n * p->s.groups;
    const int nt = p->n_threads;
    int64_t cb_max = JP_CONV_COL_BLOCK_BYTES / (p->k_g * (int64_t)sizeof(float));
    if (cb_max < JP_CONV_MIN_COLS)
        cb_max = JP_CONV_MIN_COLS;
    int64_t ncb = jp_cpu_div_up(p->n_sp, cb_max);
    int64_t ncb_fit = p->n_sp / (JP_CONV_MIN_COLS / 2); /* most blocks that stay wide enough */
    if (ncb_fit < 1)
        ncb_fit = 1;
    if (outer * ncb % nt != 0) {
        /* Round the task count up to a multiple of the thread count when the
         * blocks stay wide enough, so that no thread idles at the end. */
        int64_t want = jp_cpu_div_up(jp_cpu_round_up(outer * ncb, nt), outer);
        if (want <= ncb_fit && want > ncb)
            ncb = want;
    }
    p->col_block = jp_cpu_round_up(jp_cpu_div_up(p->n_sp, ncb), 16);
    if (p->col_block > p->n_sp)
        p->col_block = p->n_sp;
    p->n_col_blocks = jp_cpu_div_up(p->n_sp, p->col_block);
    /* Rows: split only when columns cannot feed every thread. */
    int64_t nrb = 1;
    if (outer * p->n_col_blocks < nt)
        nrb = jp_cpu_div_up(nt, outer * p->n_col_blocks);
    p->row_block = jp_cpu_round_up(jp_cpu_div_up(p->m_g, nrb), 16);
    if (p->row_block > p->m_g)
        p->row_block = p->m_g;
    p->n_row_blocks = jp_cpu_div_up(p->m_g, p->row_block);

    if (!p->direct) {
        size_t per_thread = (size_t)p->k_g * (size_t)p->col_block;
        p->col = jp_cpu_alloc(per_thread * (size_t)nt * sizeof(float));
        if (!p->col) {
            jp_conv_gemm_release(p);
            return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes of im2col workspace",
                                step->op->name, per_thread * (size_t)nt * sizeof(float));
        }
    }
    *plan_out = p;
    return JP_OK;
}

void jp_conv_gemm_memory(const void *state, const jp_step *step, size_t *prepared_bytes, size_t *workspace_bytes)
{
    const jp_conv_gemm *p = state;
    *prepared_bytes = ((size_t)p->s.c_out * (size_t)p->k_g + (size_t)p->s.c_out) * sizeof(float);
    *workspace_bytes = p->direct ? 0 : (size_t)p->k_g * (size_t)p->col_block * (size_t)p->n_threads * sizeof(float);
}

void jp_conv_gemm_release(jp_conv_gemm *p)
{
    if (!p)
        return;
    jp_cpu_free(p->wt);
    jp_cpu_free(p->bias);
    jp_cpu_free(p->col);
    free(p);
}

/* col[k_g, nb]: the im2col rows of channels x_g[c_in/groups, h, w] for the
 * output positions n0 .. n0+nb-1 (flattened oy*ow + ox). */
static void im2col_block(const jp_conv_gemm *p, const float *x_g, int64_t n0, int64_t nb,
                         float *col)
{
    const int64_t cg = p->s.c_in / p->s.groups;
    for (int64_t c = 0; c < cg; c++) {
        const float *x_c = x_g + c * p->s.h * p->s.w;
        for (int ky = 0; ky < p->s.kh; ky++) {
            for (int kx = 0; kx < p->s.kw; kx++) {
                float *dst = col + ((c * p->s.kh + ky) * p->s.kw + kx) * nb;
                int64_t pos = n0, oy = n0 / p->s.ow, ox = n0 % p->s.ow;
                while (pos < n0 + nb) {
                    int64_t seg = p->s.ow - ox;
                    if (seg > n0 + nb - pos)
                        seg = n0 + nb - pos;
                    int64_t iy = oy * p->s.sh - p->s.ph + (int64_t)ky * p->s.dh;
                    if (iy < 0 || iy >= p->s.h) {
                        memset(dst, 0, (size_t)seg * sizeof(float));
                    } else {
                        int64_t ix0 = ox * p->s.sw - p->s.pw + (int64_t)kx * p->s.dw;
                        jp_cpu_gather_row(dst, x_c + iy * p->s.w, p->s.w, ix0, p->s.sw, seg);
                    }
                    dst += seg;
                    pos += seg;
                    ox = 0;
                    oy++;
                }
            }
        }
    }
}

jp_status jp_conv_gemm_run(void *state, const jp_step *step, jp_error *err)
{
    const jp_conv_gemm *p = state;
    if (!p)
        return jp_error_set(err, JP_ERR_INTERNAL, "%s: convolution-as-GEMM kernel run before prepare",
                            step->op->name);
    const float *x = step->in[0].data;
    const float *res = step->fused_add ? step->in[1].data : NULL; /* [n, c_out, oh, ow] */
    float *y = step->out.data;
    const int64_t ncb = p->n_col_blocks, nrb = p->n_row_blocks;
    const int64_t n_tasks = p->s.n * p->s.groups * ncb * nrb;
    const int64_t cg = p->s.c_in / p->s.groups;
    int nt = omp_get_max_threads();
    if (nt > p->n_threads)
        nt = p->n_threads;
    if (nt > n_tasks)
        nt = (int)n_tasks;
    if (nt < 1)
        nt = 1;

#pragma omp parallel num_threads(nt)
    {
        float *buf = p->col ? p->col + (size_t)omp_get_thread_num() * p->k_g * p->col_block : NULL;
        int64_t cached = -1; /* (image, group, column block) whose im2col buf holds */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n_tasks; t++) {
            const int64_t rb = t % nrb, key = t / nrb;
            const int64_t cbi = key % ncb, ig = key / ncb;
            const int64_t g = ig % p->s.groups, i = ig / p->s.groups;
            const int64_t n0 = cbi * p->col_block;
            const int64_t nb = n0 + p->col_block <= p->n_sp ? p->col_block : p->n_sp - n0;
            const int64_t r0 = rb * p->row_block;
            const int64_t mb = r0 + p->row_block <= p->m_g ? p->row_block : p->m_g - r0;
            const float *x_g = x + (i * p->s.c_in + g * cg) * p->s.h * p->s.w;
            const float *bmat;
            int64_t ldb;
            if (p->direct) {
                bmat = x_g + n0;
                ldb = p->n_sp;
            } else {
                if (key != cached) {
                    im2col_block(p, x_g, n0, nb, buf);
                    cached = key;
                }
                bmat = buf;
                ldb = nb;
            }
            const int64_t row = g * p->m_g + r0; /* first output channel */
            float *c = y + (i * p->s.c_out + row) * p->n_sp + n0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mb, (int)nb, (int)p->k_g,
                        1.0f, p->wt + row * p->k_g, (int)p->k_g, bmat, (int)ldb, 0.0f, c,
                        (int)p->n_sp);
            const float *res_c = res ? res + (c - y) : NULL;
            for (int64_t r = 0; r < mb; r++)
                jp_cpu_bias_res_act(c + r * p->n_sp, res_c ? res_c + r * p->n_sp : NULL, nb,
                                    p->bias[row + r], p->act);
        }
    }
    return JP_OK;
}
