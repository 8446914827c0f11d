/*
 * permute_reference.c: cpu/permute/reference and cpu/permute/transpose,
 * torch.permute as a copy: out.dims[i] = in.dims[dims[i]].
 *
 * reference: any permutation, one output element at a time from its index.
 * transpose: the permutations that are a batched 2D transpose, in[B, A, C]
 * to out[B, C, A] (leading dimensions kept, the rest rotated: ConvNeXt's
 * NCHW <-> NHWC, [0, 2, 3, 1] and [0, 3, 1, 2]), in 32 x 32 tiles so that
 * both sides stream through the cache; tiles split over the OpenMP team.
 */
#include "cpu_internal.h"

static bool permute_supports(const jp_step *step)
{
    const jp_op *op = step->op;
    return op && op->type == JP_OP_PERMUTE && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_op_output_ok(op, step->in, step->n_in, &step->out) && jp_tensor_numel(&step->out) > 0;
}

static jp_status permute_ref_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    const jp_permute_attrs *a = &step->op->attrs.permute;
    const jp_tensor *x = &step->in[0], *y = &step->out;
    int64_t in_stride[JP_MAX_RANK], stride[JP_MAX_RANK]; /* in's stride of out's dimension d */
    in_stride[a->rank - 1] = 1;
    for (int d = a->rank - 2; d >= 0; d--)
        in_stride[d] = in_stride[d + 1] * x->dims[d + 1];
    for (int d = 0; d < a->rank; d++)
        stride[d] = in_stride[a->dims[d]];
    const int64_t n = jp_tensor_numel(y);
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i, src = 0;
        for (int d = a->rank - 1; d >= 0; d--) {
            src += rest % y->dims[d] * stride[d];
            rest /= y->dims[d];
        }
        y->data[i] = x->data[src];
    }
    return JP_OK;
}

/* in as [B, A, C] with out [B, C, A]: true and the three sizes when the
 * permutation keeps dims [0, k) and rotates the rest at s. */
static bool as_transpose(const jp_step *step, int64_t *B, int64_t *A, int64_t *C)
{
    const jp_permute_attrs *a = &step->op->attrs.permute;
    const int64_t *dims = step->in[0].dims;
    int k = 0;
    while (k < a->rank && a->dims[k] == k)
        k++;
    if (k == a->rank)
        return false;
    const int s = a->dims[k]; /* the rest reads [s, rank) then [k, s) */
    for (int i = k; i < a->rank; i++)
        if (a->dims[i] != (i - k < a->rank - s ? s + (i - k) : k + (i - k) - (a->rank - s)))
            return false;
    *B = *A = *C = 1;
    for (int d = 0; d < a->rank; d++)
        *(d < k ? B : d < s ? A : C) *= dims[d];
    return true;
}

static bool transpose_supports(const jp_step *step)
{
    int64_t b, a, c;
    return permute_supports(step) && as_transpose(step, &b, &a, &c);
}

#define TILE 32

static jp_status transpose_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state, (void)err;
    int64_t B, A, C;
    as_transpose(step, &B, &A, &C);
    const float *x = step->in[0].data;
    float *y = step->out.data;
    const int64_t ta = (A + TILE - 1) / TILE, tc = (C + TILE - 1) / TILE;
#pragma omp parallel for collapse(3) schedule(static) if (B * A * C >= JP_CPU_PARALLEL_MIN_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < ta; i++)
            for (int64_t j = 0; j < tc; j++) {
                const float *xb = x + b * A * C;
                float *yb = y + b * A * C;
                const int64_t a1 = (i + 1) * TILE < A ? (i + 1) * TILE : A;
                const int64_t c1 = (j + 1) * TILE < C ? (j + 1) * TILE : C;
                for (int64_t c = j * TILE; c < c1; c++)
                    for (int64_t r = i * TILE; r < a1; r++)
                        yb[c * A + r] = xb[r * C + c];
            }
    return JP_OK;
}

const jp_kernel jp_cpu_permute_reference = {
    .name = "cpu/permute/reference",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_PERMUTE,
    .is_reference = true,
    .priority = 0,
    .supports = permute_supports,
    .run = permute_ref_run,
};

const jp_kernel jp_cpu_permute_transpose = {
    .name = "cpu/permute/transpose",
    .device = JP_DEVICE_CPU,
    .op_type = JP_OP_PERMUTE,
    .is_reference = false,
    .priority = 10,
    .supports = transpose_supports,
    .run = transpose_run,
};
