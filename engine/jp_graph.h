/*
 * jp_graph.h: the model description (weights/<model>.json) in memory.
 *
 * A graph is the list of ops in execution order.  Every op produces exactly one
 * value, named by the op's unique `name`; an op's inputs name earlier ops'
 * values or the graph input.  Every op belongs to exactly one layer (DESIGN.md,
 * "Layers"); layers are contiguous runs of ops, numbered from 0.
 * Activation shapes are not stored in the file: jp_graph_infer_shapes derives
 * them from the input size, so a model runs at any input size >= its minimum.
 */
#ifndef JP_GRAPH_H
#define JP_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "jp_error.h"
#include "jp_tensor.h"

/* Op types.  Each has one descriptor (engine/jp_ops.h: its JSON name, inputs,
 * attributes, parameter slots, shape rule, MACs, whether kernels may fuse
 * it as an activation); nothing else depends on the order here. */
typedef enum jp_op_type {
    JP_OP_CONV2D = 0,
    JP_OP_BATCH_NORM2D,
    JP_OP_RELU,
    JP_OP_SILU,
    JP_OP_SIGMOID,
    JP_OP_MAX_POOL2D,
    JP_OP_ADAPTIVE_AVG_POOL2D,
    JP_OP_LINEAR,
    JP_OP_FLATTEN,
    JP_OP_ADD,              /* elementwise, same shapes                    */
    JP_OP_MUL,              /* inputs[0] [n,c,1,1] * inputs[1] [n,c,h,w]  */
    JP_OP_DROPOUT,          /* identity at inference                       */
    JP_OP_STOCHASTIC_DEPTH, /* identity at inference                       */
    JP_OP_RELU6,            /* min(max(x, 0), 6)                           */
    JP_OP_HARDSWISH,        /* x * relu6(x + 3) / 6                        */
    JP_OP_HARDSIGMOID,      /* relu6(x + 3) / 6                            */
    JP_OP_MEAN,             /* mean over trailing dims (x.mean([2, 3]))    */
    JP_OP_CONCAT,           /* torch.cat(inputs, dim)                      */
    JP_OP_AVG_POOL2D,       /* nn.AvgPool2d (DenseNet's transitions)       */
    JP_OP_CHANNEL_AFFINE,   /* y[:, c] = x[:, c] * scale[c] + shift[c]     */
    JP_OP_GELU,             /* x * Phi(x), the exact (erf) form            */
    JP_OP_LAYER_NORM,       /* normalised over one dimension, then affine  */
    JP_OP_PERMUTE,          /* torch.permute (a copy)                      */
    JP_OP_LAYER_SCALE,      /* y[n, c, h, w] = x * weight[c] (ConvNeXt)    */
    JP_OP_CHUNK,            /* x.chunk(chunks, dim)[index] (ShuffleNetV2)  */
    JP_OP_CHANNEL_SHUFFLE,  /* ShuffleNetV2's channel_shuffle(x, groups)   */
    JP_OP_TYPE_COUNT
} jp_op_type;

/* The activations a kernel may apply in its epilogue (a convolution's, a
 * batch norm's, an add's): X(NAME) for JP_ACT_<NAME>.  Switches that
 * instantiate a loop per activation are generated from this list, so a new
 * activation cannot fall through to "none" unnoticed; the math itself is
 * written once per backend (cpu_internal.h scalar and libm, cpu_simd.h
 * vector, cuda_context.h device). */
#define JP_ACTIVATIONS(X) X(RELU) X(SILU) X(SIGMOID) X(RELU6) X(HARDSWISH) X(HARDSIGMOID) X(GELU)

typedef enum jp_activation {
    JP_ACT_NONE = 0,
#define JP_ACT_ENUM_(name) JP_ACT_##name,
    JP_ACTIVATIONS(JP_ACT_ENUM_)
#undef JP_ACT_ENUM_
    JP_ACT_COUNT
} jp_activation;

/* Lower-case name of an activation ("none", "relu", ...). */
const char *jp_activation_name(jp_activation act);
/* act is JP_ACT_NONE or one of JP_ACTIVATIONS. */
static inline bool jp_activation_valid(jp_activation act) { return (unsigned)act < JP_ACT_COUNT; }

/* JSON name of an op type ("conv2d", ...); jp_op_type_parse is its inverse
 * (returns JP_OP_TYPE_COUNT when unknown). */
const char *jp_op_type_name(jp_op_type type);
jp_op_type jp_op_type_parse(const char *name);

typedef struct jp_conv2d_attrs {
    int c_in, c_out;         /* channels                       */
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;        /* zero padding, both sides       */
    int dilation_h, dilation_w;
    int groups;              /* c_in % groups == c_out % groups == 0 */
    bool has_bias;
} jp_conv2d_attrs;

typedef struct jp_batch_norm2d_attrs {
    int channels;
    float eps;
} jp_batch_norm2d_attrs;

typedef struct jp_max_pool2d_attrs {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;        /* implicit -inf padding          */
    int dilation_h, dilation_w;
    bool ceil_mode;
} jp_max_pool2d_attrs;

typedef struct jp_adaptive_avg_pool2d_attrs {
    int out_h, out_w;
} jp_adaptive_avg_pool2d_attrs;

typedef struct jp_linear_attrs {
    int in_features, out_features;
    bool has_bias;
} jp_linear_attrs;

typedef struct jp_flatten_attrs {
    int start_dim, end_dim;  /* as torch.flatten; end_dim -1 = last */
} jp_flatten_attrs;

typedef struct jp_dropout_attrs {
    float p;                 /* recorded only: identity at inference */
} jp_dropout_attrs;

typedef struct jp_avg_pool2d_attrs {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;        /* zero padding; at most half the kernel (PyTorch) */
    bool ceil_mode;
    bool count_include_pad;  /* divide by the window within input + padding,
                                else by its cells inside the input          */
} jp_avg_pool2d_attrs;

typedef struct jp_concat_attrs {
    int dim;                 /* 1..3: channels, height, width (not the batch) */
} jp_concat_attrs;

typedef struct jp_mean_attrs {
    int first_dim;           /* mean over dims first_dim .. rank-1 (torch's dim list, sorted) */
    bool keepdim;            /* keep them as size 1                          */
} jp_mean_attrs;

/* GoogLeNet's and Inception v3's transform_input: per-channel constants
 * (attributes, not weights: the state_dict has none). */
#define JP_MAX_AFFINE_CHANNELS 16
typedef struct jp_channel_affine_attrs {
    int channels;
    float scale[JP_MAX_AFFINE_CHANNELS], shift[JP_MAX_AFFINE_CHANNELS];
} jp_channel_affine_attrs;

/* nn.LayerNorm over the last dimension (ConvNeXt's blocks, transformers'
 * tokens) or LayerNorm2d over the channels of [n, c, h, w] (dim 1): one
 * normalised dimension of `features` elements, weight and bias over it. */
typedef struct jp_layer_norm_attrs {
    int dim;
    int features;
    float eps;
} jp_layer_norm_attrs;

typedef struct jp_permute_attrs {
    int rank;
    int dims[JP_MAX_RANK];   /* out.dims[i] = in.dims[dims[i]]              */
} jp_permute_attrs;

typedef struct jp_layer_scale_attrs {
    int channels;            /* weight [channels, 1, 1] over dim 1          */
} jp_layer_scale_attrs;
typedef struct jp_chunk_attrs {
    int chunks;              /* as torch.chunk: pieces of ceil(dims[dim] / chunks) */
    int dim;                 /* 1..3: channels, height, width (not the batch) */
    int index;               /* which piece; the last may be shorter           */
} jp_chunk_attrs;

typedef struct jp_channel_shuffle_attrs {
    int groups;              /* out channel j * groups + i = in channel i * (c / groups) + j */
} jp_channel_shuffle_attrs;

/* DenseNet's dense blocks concatenate every earlier feature map: 25 values
 * in DenseNet-121's third block, 49 in DenseNet-201's. */
#define JP_MAX_OP_INPUTS 64
#define JP_MAX_OP_PARAMS 4

/* A parameter tensor of an op, resolved against the weights file. */
typedef struct jp_param {
    char *name;              /* state_dict key, e.g. "layer1.0.conv1.weight" */
    int rank;
    int64_t dims[JP_MAX_RANK];
    const float *data;       /* into the weight mapping; NULL until bound */
} jp_param;

/* Parameter slots, by op type:
 *   conv2d, linear:  [0] weight, [1] bias (when has_bias)
 *   batch_norm2d:    [0] weight (gamma), [1] bias (beta), [2] running_mean, [3] running_var
 *   layer_norm:      [0] weight, [1] bias;  layer_scale: [0] weight */
enum { JP_PARAM_WEIGHT = 0, JP_PARAM_BIAS = 1, JP_PARAM_MEAN = 2, JP_PARAM_VAR = 3 };

typedef struct jp_op {
    char *name;              /* unique: torchvision path, "#k" for the k-th repeated call */
    char *path;              /* torchvision path ("layer1.0.conv1", "layer1.0.add") */
    char *module;            /* torch class or function ("Conv2d", "add")  */
    jp_op_type type;
    int layer;               /* index into graph->layers                    */
    int n_inputs;
    int inputs[JP_MAX_OP_INPUTS]; /* value ids: -1 = graph input, else op index */
    int n_params;
    jp_param params[JP_MAX_OP_PARAMS];
    union {
        jp_conv2d_attrs conv2d;
        jp_batch_norm2d_attrs batch_norm2d;
        jp_max_pool2d_attrs max_pool2d;
        jp_adaptive_avg_pool2d_attrs adaptive_avg_pool2d;
        jp_linear_attrs linear;
        jp_flatten_attrs flatten;
        jp_dropout_attrs dropout;
        jp_mean_attrs mean;
        jp_concat_attrs concat;
        jp_avg_pool2d_attrs avg_pool2d;
        jp_channel_affine_attrs channel_affine;
        jp_layer_norm_attrs layer_norm;
        jp_permute_attrs permute;
        jp_layer_scale_attrs layer_scale;
        jp_chunk_attrs chunk;
        jp_channel_shuffle_attrs channel_shuffle;
    } attrs;
    /* Filled by jp_graph_infer_shapes: */
    int out_rank;
    int64_t out_dims[JP_MAX_RANK];
    int64_t macs;            /* multiply-accumulates of one call             */
    int64_t n_param_elems;   /* parameter elements                           */
} jp_op;

typedef struct jp_layer {
    int index;
    char *path;              /* torchvision path of the child ("layer1.0")   */
    char *module;            /* its class ("BasicBlock", "Conv2d")           */
    int first_op, n_ops;     /* ops[first_op .. first_op+n_ops-1]            */
} jp_layer;

typedef struct jp_preprocess {
    int resize;              /* shorter side, pixels (256)                   */
    int crop;                /* center crop, pixels (224)                    */
    float mean[3], std[3];   /* per RGB channel, on [0,1] values             */
} jp_preprocess;

typedef struct jp_graph {
    char *file;              /* the path it was read from, for messages      */
    char *model;             /* "resnet50"                                   */
    char *torchvision_version;
    int input_rank;
    int64_t input_dims[JP_MAX_RANK]; /* as written in the file: [1,3,224,224] */
    int min_input_hw;        /* smallest input height/width that runs        */
    int num_classes;
    jp_preprocess preprocess;
    int n_layers;
    jp_layer *layers;
    int n_ops;
    jp_op *ops;
    int output;              /* op index of the logits                       */
} jp_graph;

/* Reads and validates weights/<model>.json.  Every field is checked; an error
 * names the file and the JSON path ("ops[12].attrs.stride").  On success the
 * caller owns *graph and frees it with jp_graph_free. */
jp_status jp_graph_load(const char *json_path, jp_graph *graph, jp_error *err);
void jp_graph_free(jp_graph *graph);

/* Derives every op's output shape, MACs and parameter count for an input of
 * shape [n, 3, h, w]; fails with JP_ERR_SHAPE naming the op whose input does
 * not fit (an input too small, a channel mismatch). */
jp_status jp_graph_infer_shapes(jp_graph *graph, int n, int h, int w, jp_error *err);

/* Shape of value v (-1 = graph input, as set by infer_shapes). */
void jp_graph_value_shape(const jp_graph *graph, int v, int *rank, int64_t *dims);

/* Elements of one parameter; of every parameter of the graph. */
int64_t jp_param_numel(const jp_param *p);
int64_t jp_graph_param_numel(const jp_graph *graph);

#endif /* JP_GRAPH_H */
