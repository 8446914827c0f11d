/*
 * jp_ops.c: the op descriptor table (see jp_ops.h), and each op's attribute
 * parser, parameter slots, shape rule and MAC count.
 *
 * Shape rules see the shapes only (the graph reader has checked the number of
 * inputs against min_inputs..max_inputs); a rule returns why the inputs do
 * not fit, and the reader names the model, the op and the input shape.
 */
#include "jp_ops.h"

#include "jp_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG (1 << 20)

static int64_t numel(const jp_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

/* A [h, w] pair field into *h, *w. */
static jp_status get_pair(jp_json_reader *r, const cJSON *attrs, const char *path, const char *key, int lo,
                          int hi, int *h, int *w)
{
    int pair[2];
    if (jp_json_get_ints(r, attrs, path, key, 2, lo, hi, pair))
        return r->err->status;
    *h = pair[0], *w = pair[1];
    return JP_OK;
}

/* ---- shape rules shared by several ops ---- */

static const char *same_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    (void)op, (void)n_in;
    *out = in[0];
    return NULL;
}

static int64_t macs_per_element(const jp_op *op, const jp_shape *in, const jp_shape *out)
{
    (void)op, (void)out;
    return numel(&in[0]);
}

static int64_t conv_out(int64_t in, int k, int s, int p, int d)
{
    int64_t span = (int64_t)d * (k - 1) + 1;
    if (in + 2 * p < span)
        return 0;
    return (in + 2 * p - span) / s + 1;
}

static int64_t pool_out(int64_t in, int k, int s, int p, int d, bool ceil_mode)
{
    int64_t span = (int64_t)d * (k - 1) + 1;
    int64_t num = in + 2 * p - span;
    if (num < 0)
        return 0;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* PyTorch: the last window must start inside the input or left padding. */
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static const char *const no_keys[] = {NULL};

/* ---- conv2d ---- */

static const char *const conv_keys[] = {"in_channels", "out_channels", "kernel", "stride", "padding",
                                        "dilation", "groups", "bias", NULL};
static const char *const weight_bias[] = {"weight", "bias"};

static jp_status conv_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_conv2d_attrs *a = &op->attrs.conv2d;
    if (jp_json_get_int(r, attrs, path, "in_channels", 1, BIG, &a->c_in) ||
        jp_json_get_int(r, attrs, path, "out_channels", 1, BIG, &a->c_out) ||
        jp_json_get_int(r, attrs, path, "groups", 1, BIG, &a->groups) ||
        jp_json_get_bool(r, attrs, path, "bias", &a->has_bias) ||
        get_pair(r, attrs, path, "kernel", 1, 1024, &a->kernel_h, &a->kernel_w) ||
        get_pair(r, attrs, path, "stride", 1, 1024, &a->stride_h, &a->stride_w) ||
        get_pair(r, attrs, path, "padding", 0, 1024, &a->pad_h, &a->pad_w) ||
        get_pair(r, attrs, path, "dilation", 1, 1024, &a->dilation_h, &a->dilation_w))
        return r->err->status;
    if (a->c_in % a->groups || a->c_out % a->groups)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.groups: %d does not divide in_channels %d and out_channels %d",
                            r->file, path, a->groups, a->c_in, a->c_out);
    return JP_OK;
}

static int conv_n_params(const jp_op *op) { return op->attrs.conv2d.has_bias ? 2 : 1; }

static void conv_param_shape(const jp_op *op, int slot, jp_shape *s)
{
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    if (slot == JP_PARAM_WEIGHT)
        *s = (jp_shape){4, {a->c_out, a->c_in / a->groups, a->kernel_h, a->kernel_w}};
    else
        *s = (jp_shape){1, {a->c_out}};
}

static const char *conv_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    if (in[0].rank != 4 || in[0].dims[1] != a->c_in)
        return "expected [n, in_channels, h, w]";
    *out = (jp_shape){4, {in[0].dims[0], a->c_out,
                          conv_out(in[0].dims[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h),
                          conv_out(in[0].dims[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w)}};
    return NULL;
}

static int64_t conv_macs(const jp_op *op, const jp_shape *in, const jp_shape *out)
{
    const jp_conv2d_attrs *a = &op->attrs.conv2d;
    return numel(out) * (a->c_in / a->groups) * a->kernel_h * a->kernel_w;
}

/* ---- batch_norm2d ---- */

static const char *const bn_keys[] = {"num_features", "eps", NULL};
static const char *const bn_params[] = {"weight", "bias", "running_mean", "running_var"};

static jp_status bn_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_batch_norm2d_attrs *a = &op->attrs.batch_norm2d;
    if (jp_json_get_int(r, attrs, path, "num_features", 1, BIG, &a->channels) ||
        jp_json_get_float(r, attrs, path, "eps", &a->eps))
        return r->err->status;
    if (!(a->eps > 0))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.eps: must be positive", r->file, path);
    return JP_OK;
}

static void bn_param_shape(const jp_op *op, int slot, jp_shape *s)
{
    (void)slot;
    *s = (jp_shape){1, {op->attrs.batch_norm2d.channels}};
}

static const char *bn_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    if (in[0].rank != 4 || in[0].dims[1] != op->attrs.batch_norm2d.channels)
        return "expected [n, num_features, h, w]";
    *out = in[0];
    return NULL;
}

/* ---- max_pool2d ---- */

static const char *const pool_keys[] = {"kernel", "stride", "padding", "dilation", "ceil_mode", NULL};

static jp_status pool_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_max_pool2d_attrs *a = &op->attrs.max_pool2d;
    if (jp_json_get_bool(r, attrs, path, "ceil_mode", &a->ceil_mode) ||
        get_pair(r, attrs, path, "kernel", 1, 1024, &a->kernel_h, &a->kernel_w) ||
        get_pair(r, attrs, path, "stride", 1, 1024, &a->stride_h, &a->stride_w) ||
        get_pair(r, attrs, path, "padding", 0, 1024, &a->pad_h, &a->pad_w) ||
        get_pair(r, attrs, path, "dilation", 1, 1024, &a->dilation_h, &a->dilation_w))
        return r->err->status;
    if (2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.padding: must be at most half the kernel", r->file, path);
    return JP_OK;
}

static const char *pool_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_max_pool2d_attrs *a = &op->attrs.max_pool2d;
    if (in[0].rank != 4)
        return "expected [n, c, h, w]";
    *out = in[0];
    out->dims[2] = pool_out(in[0].dims[2], a->kernel_h, a->stride_h, a->pad_h, a->dilation_h, a->ceil_mode);
    out->dims[3] = pool_out(in[0].dims[3], a->kernel_w, a->stride_w, a->pad_w, a->dilation_w, a->ceil_mode);
    return NULL;
}

/* ---- avg_pool2d ---- */

static const char *const avg_pool_keys[] = {"kernel", "stride", "padding", "ceil_mode", "count_include_pad", NULL};

static jp_status avg_pool_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_avg_pool2d_attrs *a = &op->attrs.avg_pool2d;
    if (jp_json_get_bool(r, attrs, path, "ceil_mode", &a->ceil_mode) ||
        jp_json_get_bool(r, attrs, path, "count_include_pad", &a->count_include_pad) ||
        get_pair(r, attrs, path, "kernel", 1, 1024, &a->kernel_h, &a->kernel_w) ||
        get_pair(r, attrs, path, "stride", 1, 1024, &a->stride_h, &a->stride_w) ||
        get_pair(r, attrs, path, "padding", 0, 1024, &a->pad_h, &a->pad_w))
        return r->err->status;
    if (2 * a->pad_h > a->kernel_h || 2 * a->pad_w > a->kernel_w)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.padding: must be at most half the kernel", r->file, path);
    return JP_OK;
}

static const char *avg_pool_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                  size_t buf_bytes)
{
    const jp_avg_pool2d_attrs *a = &op->attrs.avg_pool2d;
    if (in[0].rank != 4)
        return "expected [n, c, h, w]";
    *out = in[0];
    out->dims[2] = pool_out(in[0].dims[2], a->kernel_h, a->stride_h, a->pad_h, 1, a->ceil_mode);
    out->dims[3] = pool_out(in[0].dims[3], a->kernel_w, a->stride_w, a->pad_w, 1, a->ceil_mode);
    return NULL;
}

static int64_t avg_pool_macs(const jp_op *op, const jp_shape *in, const jp_shape *out)
{
    (void)in;
    return numel(out) * op->attrs.avg_pool2d.kernel_h * op->attrs.avg_pool2d.kernel_w;
}

/* ---- adaptive_avg_pool2d ---- */

static const char *const adaptive_keys[] = {"output_size", NULL};

static jp_status adaptive_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_adaptive_avg_pool2d_attrs *a = &op->attrs.adaptive_avg_pool2d;
    return get_pair(r, attrs, path, "output_size", 1, BIG, &a->out_h, &a->out_w);
}

static const char *adaptive_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    if (in[0].rank != 4)
        return "expected [n, c, h, w]";
    *out = in[0];
    out->dims[2] = op->attrs.adaptive_avg_pool2d.out_h;
    out->dims[3] = op->attrs.adaptive_avg_pool2d.out_w;
    return NULL;
}

/* ---- linear ---- */

static const char *const linear_keys[] = {"in_features", "out_features", "bias", NULL};

static jp_status linear_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_linear_attrs *a = &op->attrs.linear;
    if (jp_json_get_int(r, attrs, path, "in_features", 1, 1 << 28, &a->in_features) ||
        jp_json_get_int(r, attrs, path, "out_features", 1, 1 << 28, &a->out_features) ||
        jp_json_get_bool(r, attrs, path, "bias", &a->has_bias))
        return r->err->status;
    return JP_OK;
}

static int linear_n_params(const jp_op *op) { return op->attrs.linear.has_bias ? 2 : 1; }

static void linear_param_shape(const jp_op *op, int slot, jp_shape *s)
{
    const jp_linear_attrs *a = &op->attrs.linear;
    if (slot == JP_PARAM_WEIGHT)
        *s = (jp_shape){2, {a->out_features, a->in_features}};
    else
        *s = (jp_shape){1, {a->out_features}};
}

static const char *linear_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    if (in[0].dims[in[0].rank - 1] != op->attrs.linear.in_features)
        return "last dimension is not in_features";
    *out = in[0];
    out->dims[out->rank - 1] = op->attrs.linear.out_features;
    return NULL;
}

static int64_t linear_macs(const jp_op *op, const jp_shape *in, const jp_shape *out)
{
    (void)in;
    return numel(out) * op->attrs.linear.in_features;
}

/* ---- flatten ---- */

static const char *const flatten_keys[] = {"start_dim", "end_dim", NULL};

static jp_status flatten_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_flatten_attrs *a = &op->attrs.flatten;
    if (jp_json_get_int(r, attrs, path, "start_dim", 0, JP_MAX_RANK - 1, &a->start_dim) ||
        jp_json_get_int(r, attrs, path, "end_dim", -1, JP_MAX_RANK - 1, &a->end_dim))
        return r->err->status;
    return JP_OK;
}

static const char *flatten_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_flatten_attrs *a = &op->attrs.flatten;
    const int rank = in[0].rank;
    const int end = a->end_dim < 0 ? rank + a->end_dim : a->end_dim;
    if (a->start_dim >= rank || end >= rank || end < a->start_dim)
        return "flatten dimensions out of range";
    int r = 0;
    for (int i = 0; i < a->start_dim; i++)
        out->dims[r++] = in[0].dims[i];
    int64_t n = 1;
    for (int i = a->start_dim; i <= end; i++)
        n *= in[0].dims[i];
    out->dims[r++] = n;
    for (int i = end + 1; i < rank; i++)
        out->dims[r++] = in[0].dims[i];
    out->rank = r;
    return NULL;
}

/* ---- add, mul ---- */

static const char *add_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    if (in[1].rank != in[0].rank || memcmp(in[1].dims, in[0].dims, sizeof(int64_t) * (size_t)in[0].rank) != 0) {
        char s1[96];
        snprintf(buf, buf_bytes, "the two inputs of add differ in shape (inputs[1] is %s)",
                 jp_shape_str(in[1].rank, in[1].dims, s1, sizeof s1));
        return buf;
    }
    *out = in[0];
    return NULL;
}

static const char *mul_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const int64_t *s = in[0].dims, *x = in[1].dims;
    if (in[0].rank != 4 || in[1].rank != 4 || s[0] != x[0] || s[1] != x[1] || s[2] != 1 || s[3] != 1)
        return "mul expects a [n, c, 1, 1] scale and an [n, c, h, w] tensor";
    *out = in[1];
    return NULL;
}

/* ---- dropout, stochastic_depth ---- */

static const char *const dropout_keys[] = {"p", NULL};
static const char *const sd_keys[] = {"p", "mode", NULL};

static jp_status dropout_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    return jp_json_get_float(r, attrs, path, "p", &op->attrs.dropout.p);
}

static jp_status sd_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    char *mode = NULL;
    if (jp_json_get_float(r, attrs, path, "p", &op->attrs.dropout.p) ||
        jp_json_get_string(r, attrs, path, "mode", &mode))
        return r->err->status;
    bool ok = strcmp(mode, "row") == 0 || strcmp(mode, "batch") == 0;
    free(mode);
    if (!ok)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.mode: expected \"row\" or \"batch\"", r->file, path);
    return JP_OK;
}

/* ---- mean ---- */

static const char *const mean_keys[] = {"dims", "keepdim", NULL};

/* "dims": the dimensions averaged, as torch's x.mean(dims): a run of
 * consecutive dimensions ending at the last of a rank-4 tensor ([2, 3] in
 * MNASNet and ShuffleNet); kept as its first. */
static jp_status mean_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_mean_attrs *a = &op->attrs.mean;
    const cJSON *dims = jp_json_field(r, attrs, path, "dims", cJSON_Array, "a list of dimensions");
    if (!dims || jp_json_get_bool(r, attrs, path, "keepdim", &a->keepdim))
        return r->err->status;
    const int n = cJSON_GetArraySize(dims);
    if (n < 1 || n > 3)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.dims: %d dimensions, expected 1 to 3", r->file, path, n);
    int i = 0;
    for (const cJSON *e = dims->child; e; e = e->next, i++) {
        const int want = JP_MAX_RANK - n + i;
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)want)
            return jp_error_set(r->err, JP_ERR_UNSUPPORTED,
                                "%s: %s.dims[%d]: expected %d (only a mean over the last dimensions of a "
                                "rank-4 tensor is supported)", r->file, path, i, want);
    }
    a->first_dim = JP_MAX_RANK - n;
    return JP_OK;
}

static const char *mean_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_mean_attrs *a = &op->attrs.mean;
    if (in[0].rank != 4)
        return "mean expects an [n, c, h, w] tensor";
    *out = in[0];
    if (a->keepdim) {
        for (int i = a->first_dim; i < 4; i++)
            out->dims[i] = 1;
    } else {
        out->rank = a->first_dim;
    }
    return NULL;
}

/* ---- concat ---- */

static const char *const concat_keys[] = {"dim", NULL};

static jp_status concat_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    return jp_json_get_int(r, attrs, path, "dim", 1, JP_MAX_RANK - 1, &op->attrs.concat.dim);
}

/* Every input of in[0]'s rank, equal to it in every dimension but dim. */
static const char *concat_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                size_t buf_bytes)
{
    static const char *const dim_names[JP_MAX_RANK] = {"batch (n)", "channels (c)", "height (h)", "width (w)"};
    const int dim = op->attrs.concat.dim;
    if (dim >= in[0].rank)
        return "concat dimension beyond the inputs' rank";
    *out = in[0];
    out->dims[dim] = 0;
    for (int k = 0; k < n_in; k++) {
        for (int i = 0; i < in[0].rank; i++)
            if (in[k].rank != in[0].rank || (i != dim && in[k].dims[i] != in[0].dims[i])) {
                char s0[96], sk[96];
                snprintf(buf, buf_bytes, "inputs[%d] is %s, inputs[0] %s: they differ in %s, not only in the "
                         "concatenated %s",
                         k, jp_shape_str(in[k].rank, in[k].dims, sk, sizeof sk),
                         jp_shape_str(in[0].rank, in[0].dims, s0, sizeof s0),
                         in[k].rank != in[0].rank ? "rank" : (i < JP_MAX_RANK ? dim_names[i] : "a dimension"),
                         dim_names[dim]);
                return buf;
            }
        out->dims[dim] += in[k].dims[dim];
    }
    return NULL;
}

/* ---- channel_affine ---- */

static const char *const affine_keys[] = {"scale", "shift", NULL};

/* One list of finite numbers, n of them (n == 0: any length up to the limit). */
static jp_status get_floats(jp_json_reader *r, const cJSON *attrs, const char *path, const char *key, int *n,
                            float *out)
{
    const cJSON *list = jp_json_field(r, attrs, path, key, cJSON_Array, "a list of numbers");
    if (!list)
        return r->err->status;
    const int len = cJSON_GetArraySize(list);
    if (len < 1 || len > JP_MAX_AFFINE_CHANNELS || (*n && len != *n))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: %d numbers, expected %s%d", r->file, path, key,
                            len, *n ? "" : "1 to ", *n ? *n : JP_MAX_AFFINE_CHANNELS);
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble > -1e30 && e->valuedouble < 1e30))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s[%d]: expected a finite number", r->file, path,
                                key, i);
        out[i] = (float)e->valuedouble;
    }
    *n = len;
    return JP_OK;
}

static jp_status affine_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_channel_affine_attrs *a = &op->attrs.channel_affine;
    a->channels = 0;
    if (get_floats(r, attrs, path, "scale", &a->channels, a->scale) ||
        get_floats(r, attrs, path, "shift", &a->channels, a->shift))
        return r->err->status;
    return JP_OK;
}

static const char *affine_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                size_t buf_bytes)
{
    if (in[0].rank != 4 || in[0].dims[1] != op->attrs.channel_affine.channels)
        return "expected [n, c, h, w] with c the length of scale and shift";
    *out = in[0];
    return NULL;
}

/* ---- layer_norm ---- */

static const char *const ln_keys[] = {"dim", "normalized_features", "eps", NULL};

static jp_status ln_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_layer_norm_attrs *a = &op->attrs.layer_norm;
    if (jp_json_get_int(r, attrs, path, "dim", 1, JP_MAX_RANK - 1, &a->dim) ||
        jp_json_get_int(r, attrs, path, "normalized_features", 1, BIG, &a->features) ||
        jp_json_get_float(r, attrs, path, "eps", &a->eps))
        return r->err->status;
    if (!(a->eps > 0))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.eps: must be positive", r->file, path);
    return JP_OK;
}

static int ln_n_params(const jp_op *op) { return 2; }

static void ln_param_shape(const jp_op *op, int slot, jp_shape *s)
{
    (void)slot;
    *s = (jp_shape){1, {op->attrs.layer_norm.features}};
}

/* dim 1 (LayerNorm2d, over the channels of [n, c, h, w]) or the last. */
static const char *ln_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_layer_norm_attrs *a = &op->attrs.layer_norm;
    if (a->dim >= in[0].rank || in[0].dims[a->dim] != a->features)
        return "dimension dim is not normalized_features long";
    if (a->dim != 1 && a->dim != in[0].rank - 1)
        return "layer_norm over a dimension other than 1 or the last";
    *out = in[0];
    return NULL;
}

/* ---- permute ---- */

static const char *const permute_keys[] = {"dims", NULL};

static jp_status permute_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_permute_attrs *a = &op->attrs.permute;
    const cJSON *dims = jp_json_field(r, attrs, path, "dims", cJSON_Array, "a list of dimensions");
    if (!dims)
        return r->err->status;
    a->rank = cJSON_GetArraySize(dims);
    if (a->rank < 1 || a->rank > JP_MAX_RANK)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.dims: %d dimensions, expected 1 to %d", r->file, path,
                            a->rank, JP_MAX_RANK);
    unsigned seen = 0;
    int i = 0;
    for (const cJSON *e = dims->child; e; e = e->next, i++) {
        const int d = cJSON_IsNumber(e) ? (int)e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)d || d < 0 || d >= a->rank || (seen >> d & 1u))
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.dims[%d]: expected a dimension 0..%d not listed "
                                "before", r->file, path, i, a->rank - 1);
        seen |= 1u << d;
        a->dims[i] = d;
    }
    return JP_OK;
}

static const char *permute_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                 size_t buf_bytes)
{
    const jp_permute_attrs *a = &op->attrs.permute;
    if (in[0].rank != a->rank)
        return "input rank differs from the length of dims";
    out->rank = a->rank;
    for (int i = 0; i < a->rank; i++)
        out->dims[i] = in[0].dims[a->dims[i]];
    return NULL;
}

/* ---- layer_scale ---- */

static const char *const layer_scale_keys[] = {"channels", NULL};
static const char *const weight_only[] = {"weight"};

static jp_status layer_scale_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    return jp_json_get_int(r, attrs, path, "channels", 1, BIG, &op->attrs.layer_scale.channels);
}

static int layer_scale_n_params(const jp_op *op) { return 1; }

static void layer_scale_param_shape(const jp_op *op, int slot, jp_shape *s)
{
    (void)slot;
    *s = (jp_shape){3, {op->attrs.layer_scale.channels, 1, 1}};
}

static const char *layer_scale_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                     size_t buf_bytes)
{
    if (in[0].rank != 4 || in[0].dims[1] != op->attrs.layer_scale.channels)
        return "expected [n, channels, h, w]";
    *out = in[0];
    return NULL;
}

/* ---- chunk ---- */

static const char *const chunk_keys[] = {"chunks", "dim", "index", NULL};

static jp_status chunk_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    jp_chunk_attrs *a = &op->attrs.chunk;
    if (jp_json_get_int(r, attrs, path, "chunks", 1, BIG, &a->chunks) ||
        jp_json_get_int(r, attrs, path, "dim", 1, JP_MAX_RANK - 1, &a->dim) ||
        jp_json_get_int(r, attrs, path, "index", 0, BIG, &a->index))
        return r->err->status;
    if (a->index >= a->chunks)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.index: %d, but only %d chunks", r->file, path, a->index,
                            a->chunks);
    return JP_OK;
}

/* torch.chunk: pieces of ceil(size / chunks) along dim, the last one shorter,
 * and fewer pieces than asked for when they run out. */
static int64_t chunk_start(const jp_chunk_attrs *a, int64_t size)
{
    return (size + a->chunks - 1) / a->chunks * a->index;
}

jp_chunk_runs jp_chunk_runs_of(const jp_chunk_attrs *a, const jp_tensor *in, const jp_tensor *out)
{
    int64_t outer = 1, inner = 1; /* in: [outer, dims[dim] * inner] */
    for (int i = 0; i < a->dim; i++)
        outer *= out->dims[i];
    for (int i = a->dim + 1; i < out->rank; i++)
        inner *= out->dims[i];
    return (jp_chunk_runs){.outer = outer, .len = out->dims[a->dim] * inner, .stride = in->dims[a->dim] * inner,
                           .offset = chunk_start(a, in->dims[a->dim]) * inner};
}

static const char *chunk_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf, size_t buf_bytes)
{
    const jp_chunk_attrs *a = &op->attrs.chunk;
    if (a->dim >= in[0].rank)
        return "chunk dimension beyond the input's rank";
    const int64_t size = in[0].dims[a->dim], piece = (size + a->chunks - 1) / a->chunks;
    const int64_t start = chunk_start(a, size);
    if (start >= size) {
        snprintf(buf, buf_bytes, "chunk %d of %d along a dimension of %lld: torch.chunk gives only %lld pieces",
                 a->index, a->chunks, (long long)size, (long long)(piece ? (size + piece - 1) / piece : 0));
        return buf;
    }
    *out = in[0];
    out->dims[a->dim] = size - start < piece ? size - start : piece;
    return NULL;
}

/* ---- channel_shuffle ---- */

static const char *const shuffle_keys[] = {"groups", NULL};

static jp_status shuffle_parse(jp_json_reader *r, const cJSON *attrs, const char *path, jp_op *op)
{
    return jp_json_get_int(r, attrs, path, "groups", 1, BIG, &op->attrs.channel_shuffle.groups);
}

static const char *shuffle_shape(const jp_op *op, const jp_shape *in, int n_in, jp_shape *out, char *buf,
                                 size_t buf_bytes)
{
    if (in[0].rank != 4)
        return "channel_shuffle expects an [n, c, h, w] tensor";
    if (in[0].dims[1] % op->attrs.channel_shuffle.groups) {
        snprintf(buf, buf_bytes, "groups %d does not divide the %lld channels", op->attrs.channel_shuffle.groups,
                 (long long)in[0].dims[1]);
        return buf;
    }
    *out = in[0];
    return NULL;
}

/* ---- the table ---- */

#define ONE_INPUT .min_inputs = 1, .max_inputs = 1
#define ACTIVATION(json, act)                                                                                 \
    {.name = json, ONE_INPUT, .attr_keys = no_keys, .shape = same_shape, .activation = act}

static const jp_op_desc op_descs[JP_OP_TYPE_COUNT] = {
    [JP_OP_CONV2D] = {.name = "conv2d", ONE_INPUT, .attr_keys = conv_keys, .parse_attrs = conv_parse,
                      .param_names = weight_bias, .n_params = conv_n_params, .param_shape = conv_param_shape,
                      .shape = conv_shape, .macs = conv_macs},
    [JP_OP_BATCH_NORM2D] = {.name = "batch_norm2d", ONE_INPUT, .attr_keys = bn_keys, .parse_attrs = bn_parse,
                            .param_names = bn_params, .param_shape = bn_param_shape, .shape = bn_shape,
                            .macs = macs_per_element},
    [JP_OP_RELU] = ACTIVATION("relu", JP_ACT_RELU),
    [JP_OP_SILU] = ACTIVATION("silu", JP_ACT_SILU),
    [JP_OP_SIGMOID] = ACTIVATION("sigmoid", JP_ACT_SIGMOID),
    [JP_OP_RELU6] = ACTIVATION("relu6", JP_ACT_RELU6),
    [JP_OP_HARDSWISH] = ACTIVATION("hardswish", JP_ACT_HARDSWISH),
    [JP_OP_HARDSIGMOID] = ACTIVATION("hardsigmoid", JP_ACT_HARDSIGMOID),
    [JP_OP_MAX_POOL2D] = {.name = "max_pool2d", ONE_INPUT, .attr_keys = pool_keys, .parse_attrs = pool_parse,
                          .shape = pool_shape},
    [JP_OP_AVG_POOL2D] = {.name = "avg_pool2d", ONE_INPUT, .attr_keys = avg_pool_keys, .parse_attrs = avg_pool_parse,
                          .shape = avg_pool_shape, .macs = avg_pool_macs},
    [JP_OP_ADAPTIVE_AVG_POOL2D] = {.name = "adaptive_avg_pool2d", ONE_INPUT, .attr_keys = adaptive_keys,
                                   .parse_attrs = adaptive_parse, .shape = adaptive_shape,
                                   .macs = macs_per_element},
    [JP_OP_LINEAR] = {.name = "linear", ONE_INPUT, .attr_keys = linear_keys, .parse_attrs = linear_parse,
                      .param_names = weight_bias, .n_params = linear_n_params, .param_shape = linear_param_shape,
                      .shape = linear_shape, .macs = linear_macs},
    [JP_OP_FLATTEN] = {.name = "flatten", ONE_INPUT, .attr_keys = flatten_keys, .parse_attrs = flatten_parse,
                       .shape = flatten_shape},
    [JP_OP_ADD] = {.name = "add", .min_inputs = 2, .max_inputs = 2, .attr_keys = no_keys, .shape = add_shape},
    [JP_OP_MUL] = {.name = "mul", .min_inputs = 2, .max_inputs = 2, .attr_keys = no_keys, .shape = mul_shape},
    [JP_OP_DROPOUT] = {.name = "dropout", ONE_INPUT, .attr_keys = dropout_keys, .parse_attrs = dropout_parse,
                       .shape = same_shape, .identity = true},
    [JP_OP_STOCHASTIC_DEPTH] = {.name = "stochastic_depth", ONE_INPUT, .attr_keys = sd_keys,
                                .parse_attrs = sd_parse, .shape = same_shape, .identity = true},
    [JP_OP_CONCAT] = {.name = "concat", .min_inputs = 1, .max_inputs = JP_MAX_OP_INPUTS, .attr_keys = concat_keys,
                      .parse_attrs = concat_parse, .shape = concat_shape},
    [JP_OP_MEAN] = {.name = "mean", ONE_INPUT, .attr_keys = mean_keys, .parse_attrs = mean_parse,
                    .shape = mean_shape, .macs = macs_per_element},
    [JP_OP_CHANNEL_AFFINE] = {.name = "channel_affine", ONE_INPUT, .attr_keys = affine_keys,
                              .parse_attrs = affine_parse, .shape = affine_shape, .macs = macs_per_element},
    [JP_OP_GELU] = ACTIVATION("gelu", JP_ACT_GELU),
    [JP_OP_LAYER_NORM] = {.name = "layer_norm", ONE_INPUT, .attr_keys = ln_keys, .parse_attrs = ln_parse,
                          .param_names = weight_bias, .n_params = ln_n_params, .param_shape = ln_param_shape, .shape = ln_shape,
                          .macs = macs_per_element},
    [JP_OP_PERMUTE] = {.name = "permute", ONE_INPUT, .attr_keys = permute_keys, .parse_attrs = permute_parse,
                       .shape = permute_shape},
    [JP_OP_LAYER_SCALE] = {.name = "layer_scale", ONE_INPUT, .attr_keys = layer_scale_keys,
                           .parse_attrs = layer_scale_parse, .param_names = weight_only,
                           .n_params = layer_scale_n_params, .param_shape = layer_scale_param_shape, .shape = layer_scale_shape,
                           .macs = macs_per_element},
    [JP_OP_CHUNK] = {.name = "chunk", ONE_INPUT, .attr_keys = chunk_keys, .parse_attrs = chunk_parse,
                     .shape = chunk_shape},
    [JP_OP_CHANNEL_SHUFFLE] = {.name = "channel_shuffle", ONE_INPUT, .attr_keys = shuffle_keys,
                               .parse_attrs = shuffle_parse, .shape = shuffle_shape},
};

bool jp_op_output_ok(const jp_op *op, const jp_tensor *in, int n_in, const jp_tensor *out)
{
    const jp_op_desc *d = op ? jp_op_desc_of(op->type) : NULL;
    if (!d || n_in < d->min_inputs || n_in > d->max_inputs || n_in > JP_MAX_OP_INPUTS)
        return false;
    jp_shape shapes[JP_MAX_OP_INPUTS], want;
    for (int i = 0; i < n_in; i++) {
        if (in[i].rank < 1 || in[i].rank > JP_MAX_RANK)
            return false;
        shapes[i].rank = in[i].rank;
        memcpy(shapes[i].dims, in[i].dims, sizeof shapes[i].dims);
    }
    char why[128];
    if (d->shape(op, shapes, n_in, &want, why, sizeof why) || want.rank != out->rank)
        return false;
    for (int i = 0; i < want.rank; i++)
        if (want.dims[i] != out->dims[i])
            return false;
    return true;
}

const jp_op_desc *jp_op_desc_of(jp_op_type type)
{
    if ((unsigned)type >= JP_OP_TYPE_COUNT || !op_descs[type].name)
        return NULL;
    return &op_descs[type];
}

const char *jp_op_type_name(jp_op_type type)
{
    const jp_op_desc *d = jp_op_desc_of(type);
    return d ? d->name : "unknown";
}

jp_op_type jp_op_type_parse(const char *name)
{
    for (int i = 0; i < JP_OP_TYPE_COUNT; i++)
        if (op_descs[i].name && strcmp(op_descs[i].name, name) == 0)
            return (jp_op_type)i;
    return JP_OP_TYPE_COUNT;
}

jp_op_type jp_op_type_of_activation(jp_activation act)
{
    for (int i = 0; act != JP_ACT_NONE && i < JP_OP_TYPE_COUNT; i++)
        if (op_descs[i].activation == act)
            return (jp_op_type)i;
    return JP_OP_TYPE_COUNT;
}

const char *jp_activation_name(jp_activation act)
{
    if (act == JP_ACT_NONE)
        return "none";
    /* The name of the op that is this activation ("relu6"). */
    jp_op_type t = jp_op_type_of_activation(act);
    return t == JP_OP_TYPE_COUNT ? "unknown" : op_descs[t].name;
}
