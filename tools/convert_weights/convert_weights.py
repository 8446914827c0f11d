#!/usr/bin/python3
"""convert_weights: writes jplprof's model descriptions and weight files from torchvision.

  --gen-json      weights/<model>.json, the graph (docs/model-format.md), traced with torch.fx
  --pth FILE      weights/<model>.safetensors from a torchvision state_dict (.pth)
  --random-init   weights/<model>.safetensors from a freshly built, seeded model (for tests)
  --labels        weights/imagenet_classes.txt, the 1000 ImageNet class names in index order

Every weight file is checked tensor by tensor (name and shape) against the model description
before anything is written; every model description is checked against DESIGN.md's layer count.
Run with Debian's /usr/bin/python3 (torch, torchvision, numpy); see README.md beside this file.

The tracer and the op naming here are also used by tests/torch_reference.py, so that the
reference's op names are by construction the ones in the JSON.
"""

import argparse
import hashlib
import json
import operator
import os
import sys
import tempfile

import numpy as np
import torch
import torch.fx
import torchvision
from torch.fx.passes.shape_prop import ShapeProp
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.ops import StochasticDepth

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_WEIGHTS_DIR = os.path.join(REPO_ROOT, "weights")
AVAILABLE_MODELS_FILE = os.path.join(REPO_ROOT, "AvailableModel.txt")

MODEL_FORMAT = "jplprof-model-1"
WEIGHTS_FORMAT = "jplprof-weights-1"

# DESIGN.md, "Layers": the seed tool's split gives exactly these counts.  A model
# without an entry cannot be described until its split has been checked by hand.
EXPECTED_LAYER_COUNTS = {
    "alexnet": 21,
    "resnet18": 14, "resnet34": 22, "resnet50": 22, "resnet101": 39, "resnet152": 56,
    "efficientnet_b0": 12, "efficientnet_b1": 12, "efficientnet_b2": 12, "efficientnet_b3": 12,
    "efficientnet_b4": 12, "efficientnet_b5": 12, "efficientnet_b6": 12, "efficientnet_b7": 12,
    # The seed's multi_network_stats/numLayers.json gives mobilenet_v2 21, mobilenet_v3_large 22
    # and every regnet 9; its layer_stats/utils/operations.py puts the function between
    # features and classifier at layer 19 (mobilenet_v2), 18 / 14 (mobilenet_v3 large / small)
    # and 17 (mnasnet): 19, 22, 18 and 19 layers by the rule.
    "mobilenet_v2": 21, "mobilenet_v3_large": 22, "mobilenet_v3_small": 18,
    "mnasnet0_5": 19, "mnasnet1_0": 19,
    "regnet_y_400mf": 9, "regnet_y_800mf": 9, "regnet_y_1_6gf": 9,
    "regnet_x_400mf": 9, "regnet_x_800mf": 9, "regnet_x_3_2gf": 9,
    # features (13) and classifier (4) expanded, and the seed's trailing Flatten layer.
    "squeezenet1_0": 18,
    # features expanded (12), classifier; the seed's relu + pool + flatten run at layer 12.
    "densenet121": 13,
    # conv1 (3), maxpool, stage2-4 (4 + 8 + 4 blocks), conv5 (3), fc: 24; the seed's
    # x.mean([2, 3]) runs at layer 23 (fc).
    "shufflenet_v2_x0_5": 24, "shufflenet_v2_x1_0": 24, "shufflenet_v2_x1_5": 24, "shufflenet_v2_x2_0": 24,
    # features expanded, avgpool, classifier (7) expanded; the seed's flatten runs at the
    # classifier's first layer: 22/30/26/36/32/45/38/54 (vgg11 ... vgg19_bn).
    "vgg11": 29, "vgg11_bn": 37, "vgg13": 33, "vgg13_bn": 43,
    "vgg16": 39, "vgg16_bn": 52, "vgg19": 45, "vgg19_bn": 61,
    # As resnet50 / resnet101: the seed's flatten at layer 21 / 38 (fc).
    "resnext50_32x4d": 22, "resnext101_32x8d": 39, "resnext101_64x4d": 39,
    "wide_resnet50_2": 22, "wide_resnet101_2": 39,
    "densenet161": 13, "densenet169": 13, "densenet201": 13,
    "squeezenet1_1": 18,
    "mnasnet0_75": 19, "mnasnet1_3": 19,
    # stem (3), trunk_output (4), avgpool, fc; the seed's flatten at layer 8, as every regnet.
    "regnet_y_3_2gf": 9, "regnet_y_8gf": 9, "regnet_y_16gf": 9, "regnet_y_32gf": 9, "regnet_y_128gf": 9,
    "regnet_x_1_6gf": 9, "regnet_x_8gf": 9, "regnet_x_16gf": 9, "regnet_x_32gf": 9,
}
# features (stem, six stages for s, seven for m and l, head conv), avgpool, classifier expanded
# (2).  The seed registers the flatten at layer 10 for all three: the Dropout that follows avgpool
# for m and l; for s (one layer fewer) the Linear, where the rule puts it at the Dropout (9).
EXPECTED_LAYER_COUNTS.update({"efficientnet_v2_s": 11, "efficientnet_v2_m": 12, "efficientnet_v2_l": 12})
# As the pretrained builders make them (aux_logits off: aux1/aux2/AuxLogits are None, no layer;
# transform_input on, at the start of layer 0): googlenet 16 blocks + avgpool, dropout, fc, the
# seed's flatten at 17 (dropout); inception_v3 18 blocks + avgpool, dropout, fc, flatten at 20 (fc).
EXPECTED_LAYER_COUNTS.update({"googlenet": 19, "inception_v3": 21})

# features expanded (stem, four stages, three downsamplings), avgpool, classifier expanded (3).
EXPECTED_LAYER_COUNTS.update({"convnext_tiny": 12, "convnext_small": 12, "convnext_base": 12,
                              "convnext_large": 12})

# Builder arguments other than weights=None, per model: those its pretrained weights imply, so that
# the description fits a converted .pth (torchvision's builders set them when weights are given).
BUILD_KWARGS = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": True},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": True},
}
# State-dict entries of a pretrained .pth that belong to no op (the auxiliary classifiers, which
# the pretrained builders load and then drop): ignored by --pth.
UNUSED_PTH_PREFIXES = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}
# Input size and preprocessing other than the default (torchvision's Inception_V3_Weights).
INPUT_HW_OF = {"inception_v3": 299}
PREPROCESS_OF = {"inception_v3": {"resize": 342, "crop": 299}}

# The seed tool's preprocessing, for every model: resize the shorter side to 256,
# centre-crop 224, bilinear, ImageNet mean/std on [0,1] RGB values.
PREPROCESS = {"resize": 256, "crop": 224, "interpolation": "bilinear",
              "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
INPUT_HW = 224
# min_hw search bound: every model here runs at 224, so the search never goes past it.
MAX_MIN_HW = INPUT_HW

# Tensor functions the graph may call, by the name used in the JSON.
FUNCTION_NAMES = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
    torch.flatten: "flatten",
    torch.nn.functional.adaptive_avg_pool2d: "adaptive_avg_pool2d",
    torch.nn.functional.relu: "relu",
    torch.cat: "concat",
    torch.nn.functional.avg_pool2d: "avg_pool2d",
    torch.nn.functional.max_pool2d: "max_pool2d",
    torch.permute: "permute",
}

# Tensor methods the graph may call (x.mean([2, 3]): MNASNet, ShuffleNet; x.flatten(start_dim=1):
# RegNet), by JSON name.
METHOD_NAMES = {"mean": "mean", "flatten": "flatten"}


class ConvertError(Exception):
    """A condition that stops the conversion; the message is one line naming what is wrong."""


# ----------------------------------------------------------------------------- tracing

class ScopeTracer(torch.fx.Tracer):
    """A torch.fx tracer that stops at torch.nn leaf modules and StochasticDepth (so that
    torchvision's own blocks, Conv2dNormActivation, SqueezeExcitation, MBConv, BasicBlock,
    Bottleneck, are traced through) and records, in node.meta["jp_scope"], the path of the
    module whose forward created each node ("" at the model's top level)."""

    def __init__(self):
        # ShuffleNetV2's channel_shuffle (view, transpose, view of a traced size) is one op.
        super().__init__(autowrap_functions=(torchvision.models.shufflenetv2.channel_shuffle,))
        self.jp_scope = [""]

    def is_leaf_module(self, m, module_qualified_name):
        if isinstance(m, (StochasticDepth, TransformInput, LayerNorm2d)):
            return True
        if isinstance(m, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)):
            return False
        return type(m).__module__.startswith("torch.nn.")

    def iter(self, obj):
        # `x1, x2 = x.chunk(2, dim=1)` (ShuffleNetV2): one getitem per chunk (torch.fx finds
        # the unpacking by reading the caller's bytecode, which fails on this Python).
        node = obj.node
        if node.op == "call_method" and node.target == "chunk":
            chunks = node.args[1] if len(node.args) > 1 else node.kwargs.get("chunks")
            if isinstance(chunks, int) and chunks > 0:
                return iter([obj[i] for i in range(chunks)])
        return super().iter(obj)

    def call_module(self, m, forward, args, kwargs):
        self.jp_scope.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.jp_scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["jp_scope"] = self.jp_scope[-1]
        return node


class Op:
    """One op of the description: a leaf module call or a tensor function call."""

    def __init__(self, node, name, path, module, op_type, inputs, attrs, params):
        self.node = node          # the torch.fx node that computes it
        self.name = name          # unique; also the name of its output value
        self.path = path
        self.module = module
        self.type = op_type
        self.inputs = inputs      # value names: "input" or earlier op names
        self.attrs = attrs
        self.params = params      # {slot: (state_dict key, shape list)}
        self.layer = None

    def to_json(self):
        return {"name": self.name, "path": self.path, "module": self.module, "type": self.type,
                "layer": self.layer, "inputs": self.inputs, "attrs": self.attrs,
                "params": {slot: {"name": key, "shape": shape}
                           for slot, (key, shape) in self.params.items()}}


def _pair(value, what):
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int)
                                                                     for v in value):
        return [int(v) for v in value]
    raise ConvertError(f"{what}: {value!r} is not an int or a pair of ints")


def _param(module, path, attr):
    tensor = getattr(module, attr)
    if tensor is None:
        raise ConvertError(f"{path}: has no {attr}")
    return (f"{path}.{attr}", [int(d) for d in tensor.shape])


class TransformInput(torch.nn.Module):
    """GoogLeNet's and Inception3's _transform_input as a module of its own (the tracer makes it
    the first op, "transform_input"): x[:, c] * scale[c] + shift[c], the same arithmetic."""

    SCALE = [0.229 / 0.5, 0.224 / 0.5, 0.225 / 0.5]
    SHIFT = [(0.485 - 0.5) / 0.5, (0.456 - 0.5) / 0.5, (0.406 - 0.5) / 0.5]

    def forward(self, x):
        return channel_affine(x, self.SCALE, self.SHIFT)


def channel_affine(x, scale, shift):
    """The channel_affine op in torch, as torchvision's _transform_input computes it."""
    return torch.cat([torch.unsqueeze(x[:, c], 1) * s + t
                      for c, (s, t) in enumerate(zip(scale, shift))], 1)


def _describe_leaf(m, path):
    """Returns (type, attrs, params) of a leaf module, or raises ConvertError."""
    nn = torch.nn
    if type(m) is TransformInput:
        return "channel_affine", {"scale": list(m.SCALE), "shift": list(m.SHIFT)}, {}
    if type(m) in (LayerNorm2d, nn.LayerNorm):
        # LayerNorm2d: over the channels of [n, c, h, w]; nn.LayerNorm: over the last dimension
        # (trace_ops sets "dim" from the input's rank).
        if len(m.normalized_shape) != 1 or not m.elementwise_affine:
            raise ConvertError(f"{path}: LayerNorm over {list(m.normalized_shape)} (affine "
                               f"{m.elementwise_affine}): only one dimension, with weight and bias")
        return "layer_norm", {"dim": 1 if type(m) is LayerNorm2d else -1,
                              "normalized_features": int(m.normalized_shape[0]), "eps": float(m.eps)}, {
            "weight": _param(m, path, "weight"), "bias": _param(m, path, "bias")}
    if type(m) is nn.GELU:
        if m.approximate != "none":
            raise ConvertError(f"{path}: GELU approximate={m.approximate!r}: only the exact form")
        return "gelu", {}, {}
    if type(m) is nn.Flatten:
        return "flatten", {"start_dim": int(m.start_dim), "end_dim": int(m.end_dim)}, {}
    if type(m) is nn.Conv2d:
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ConvertError(f"{path}: Conv2d padding {m.padding!r} mode {m.padding_mode!r} "
                               "is not supported (explicit zero padding only)")
        has_bias = m.bias is not None
        params = {"weight": _param(m, path, "weight")}
        if has_bias:
            params["bias"] = _param(m, path, "bias")
        return "conv2d", {
            "in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel": _pair(m.kernel_size, f"{path}.kernel_size"),
            "stride": _pair(m.stride, f"{path}.stride"),
            "padding": _pair(m.padding, f"{path}.padding"),
            "dilation": _pair(m.dilation, f"{path}.dilation"),
            "groups": m.groups, "bias": has_bias}, params
    if type(m) is nn.BatchNorm2d:
        if not (m.affine and m.track_running_stats):
            raise ConvertError(f"{path}: BatchNorm2d without affine or running stats "
                               "is not supported")
        return "batch_norm2d", {"num_features": m.num_features, "eps": float(m.eps)}, {
            slot: _param(m, path, slot)
            for slot in ("weight", "bias", "running_mean", "running_var")}
    if type(m) is nn.ReLU:
        return "relu", {}, {}
    if type(m) is nn.SiLU:
        return "silu", {}, {}
    if type(m) is nn.Sigmoid:
        return "sigmoid", {}, {}
    if type(m) is nn.ReLU6:
        return "relu6", {}, {}
    if type(m) is nn.Hardswish:
        return "hardswish", {}, {}
    if type(m) is nn.Hardsigmoid:
        return "hardsigmoid", {}, {}
    if type(m) is nn.MaxPool2d:
        if m.return_indices:
            raise ConvertError(f"{path}: MaxPool2d with return_indices is not supported")
        return "max_pool2d", {
            "kernel": _pair(m.kernel_size, f"{path}.kernel_size"),
            "stride": _pair(m.stride, f"{path}.stride"),
            "padding": _pair(m.padding, f"{path}.padding"),
            "dilation": _pair(m.dilation, f"{path}.dilation"),
            "ceil_mode": bool(m.ceil_mode)}, {}
    if type(m) is nn.AvgPool2d:
        if m.divisor_override is not None:
            raise ConvertError(f"{path}: AvgPool2d with divisor_override is not supported")
        return "avg_pool2d", {
            "kernel": _pair(m.kernel_size, f"{path}.kernel_size"),
            "stride": _pair(m.stride, f"{path}.stride"),
            "padding": _pair(m.padding, f"{path}.padding"),
            "ceil_mode": bool(m.ceil_mode), "count_include_pad": bool(m.count_include_pad)}, {}
    if type(m) is nn.AdaptiveAvgPool2d:
        return "adaptive_avg_pool2d", {
            "output_size": _pair(m.output_size, f"{path}.output_size")}, {}
    if type(m) is nn.Linear:
        has_bias = m.bias is not None
        params = {"weight": _param(m, path, "weight")}
        if has_bias:
            params["bias"] = _param(m, path, "bias")
        return "linear", {"in_features": m.in_features, "out_features": m.out_features,
                          "bias": has_bias}, params
    if type(m) is nn.Dropout:
        return "dropout", {"p": float(m.p)}, {}
    if type(m) is StochasticDepth:
        if m.mode not in ("row", "batch"):
            raise ConvertError(f"{path}: StochasticDepth mode {m.mode!r} is not supported")
        return "stochastic_depth", {"p": float(m.p), "mode": m.mode}, {}
    raise ConvertError(f"{path}: module {type(m).__module__}.{type(m).__name__} is not "
                       "supported by jplprof (no op type for it in docs/model-format.md)")


def _function_attrs(node, fname, path):
    """Checks a tensor function call's arguments; returns (input nodes, attrs)."""
    if fname in ("add", "mul"):
        if len(node.args) != 2 or node.kwargs or not all(
                isinstance(a, torch.fx.Node) for a in node.args):
            raise ConvertError(f"{path}: {fname} must take two tensors and nothing else, "
                               f"got args {node.args} kwargs {node.kwargs}")
        return list(node.args), {}
    if fname == "relu":
        # F.relu(x, inplace=...): inplace changes nothing at inference.
        if not node.args or not isinstance(node.args[0], torch.fx.Node) or len(node.args) > 2 \
                or set(node.kwargs) - {"inplace"}:
            raise ConvertError(f"{path}: unexpected relu arguments {node.args} {node.kwargs}")
        return [node.args[0]], {}
    if fname == "adaptive_avg_pool2d":
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        if not isinstance(node.args[0], torch.fx.Node) or len(node.args) > 2 or \
                set(node.kwargs) - {"output_size"}:
            raise ConvertError(f"{path}: unexpected adaptive_avg_pool2d arguments {node.args} "
                               f"{node.kwargs}")
        return [node.args[0]], {"output_size": _pair(size, f"{path}.output_size")}
    if fname == "concat":
        # torch.cat(tensors, dim=0): a list of two or more values, a dimension other than the batch.
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(tensors, (list, tuple)) or not tensors or \
                not all(isinstance(t, torch.fx.Node) for t in tensors) or len(node.args) > 2 or \
                set(node.kwargs) - {"tensors", "dim"} or not isinstance(dim, int):
            raise ConvertError(f"{path}: unexpected cat arguments {node.args} {node.kwargs}")
        rank = len(_tensor_shape(tensors[0]))
        if not 1 <= dim % rank < rank:
            raise ConvertError(f"{path}: cat along dimension {dim}: only channels, height or width "
                               "are supported")
        return list(tensors), {"dim": dim % rank}
    if fname in ("avg_pool2d", "max_pool2d"):
        return _function_pool_attrs(node, fname, path)
    if fname == "permute":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dims")
        if not isinstance(node.args[0], torch.fx.Node) or len(node.args) > 2 or \
                set(node.kwargs) - {"dims"} or not isinstance(dims, (list, tuple)) or \
                not all(isinstance(d, int) for d in dims):
            raise ConvertError(f"{path}: unexpected permute arguments {node.args} {node.kwargs}")
        rank = len(_tensor_shape(node.args[0]))
        return [node.args[0]], {"dims": [d % rank for d in dims]}
    if fname == "mean":
        # x.mean(dims, keepdim=False): a list of dimensions, no dtype.
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if not isinstance(node.args[0], torch.fx.Node) or len(node.args) > 3 or \
                set(node.kwargs) - {"dim", "keepdim"} or not isinstance(keepdim, bool):
            raise ConvertError(f"{path}: unexpected mean arguments {node.args} {node.kwargs}")
        if isinstance(dims, int):
            dims = [dims]
        if not isinstance(dims, (list, tuple)) or not dims or \
                not all(isinstance(d, int) for d in dims):
            raise ConvertError(f"{path}: mean over {dims!r}: a list of dimensions is expected")
        rank = len(_tensor_shape(node.args[0]))
        dims = sorted(d % rank for d in dims)
        return [node.args[0]], {"dims": dims, "keepdim": keepdim}
    # flatten(input, start_dim=0, end_dim=-1)
    names = ("input", "start_dim", "end_dim")
    bound = {"start_dim": 0, "end_dim": -1}
    if len(node.args) > 3 or set(node.kwargs) - set(names):
        raise ConvertError(f"{path}: unexpected flatten arguments {node.args} {node.kwargs}")
    bound.update(zip(names, node.args))
    bound.update(node.kwargs)
    if not isinstance(bound.get("input"), torch.fx.Node) or not all(
            isinstance(bound[k], int) for k in ("start_dim", "end_dim")):
        raise ConvertError(f"{path}: unexpected flatten arguments {node.args} {node.kwargs}")
    return [bound["input"]], {"start_dim": bound["start_dim"], "end_dim": bound["end_dim"]}


def _function_pool_attrs(node, fname, path):
    """F.avg_pool2d / F.max_pool2d (Inception v3's branches) with torch's defaults filled in, as
    the module ops' attributes."""
    if fname == "avg_pool2d":
        names = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override")
        bound = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                 "divisor_override": None}
    else:
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                 "return_indices")
        bound = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                 "return_indices": False}
    if len(node.args) > len(names) or set(node.kwargs) - set(names):
        raise ConvertError(f"{path}: unexpected {fname} arguments {node.args} {node.kwargs}")
    bound.update(zip(names, node.args))
    bound.update(node.kwargs)
    if not isinstance(bound.get("input"), torch.fx.Node) or "kernel_size" not in bound or \
            bound.get("divisor_override") is not None or bound.get("return_indices") or \
            not isinstance(bound["ceil_mode"], bool):
        raise ConvertError(f"{path}: unsupported {fname} arguments {node.args} {node.kwargs}")
    kernel = _pair(bound["kernel_size"], f"{path}.kernel_size")
    stride = kernel if bound["stride"] in (None, []) else _pair(bound["stride"], f"{path}.stride")
    attrs = {"kernel": kernel, "stride": stride, "padding": _pair(bound["padding"], f"{path}.padding")}
    if fname == "avg_pool2d":
        if not isinstance(bound["count_include_pad"], bool):
            raise ConvertError(f"{path}: unsupported avg_pool2d arguments {node.args} {node.kwargs}")
        attrs.update(ceil_mode=bound["ceil_mode"], count_include_pad=bound["count_include_pad"])
    else:
        attrs.update(dilation=_pair(bound["dilation"], f"{path}.dilation"),
                     ceil_mode=bound["ceil_mode"])
    return [bound["input"]], attrs


def _chunk_attrs(node, path):
    """x.chunk(chunks, dim)[index]: (input nodes, attrs) of one chunk op."""
    chunk = node.args[0]
    index = node.args[1]
    names = ("input", "chunks", "dim")
    bound = {"dim": 0}
    if len(chunk.args) > 3 or set(chunk.kwargs) - set(names) or len(node.args) != 2 or node.kwargs:
        raise ConvertError(f"{path}: unexpected chunk arguments {chunk.args} {chunk.kwargs}")
    bound.update(zip(names, chunk.args))
    bound.update(chunk.kwargs)
    x, chunks, dim = bound.get("input"), bound.get("chunks"), bound["dim"]
    if not isinstance(x, torch.fx.Node) or not isinstance(chunks, int) or not isinstance(dim, int) or \
            not isinstance(index, int) or chunks < 1:
        raise ConvertError(f"{path}: unexpected chunk arguments {chunk.args} {chunk.kwargs}[{index!r}]")
    rank = len(_tensor_shape(x))
    if not 1 <= dim % rank < rank:
        raise ConvertError(f"{path}: chunk along dimension {dim}: only channels, height or width "
                           "are supported")
    return [x], {"chunks": chunks, "dim": dim % rank, "index": index}


def _tensor_shape(node):
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise ConvertError(f"node {node.name}: no tensor shape after shape propagation")
    return [int(d) for d in meta.shape]


def propagate_shapes(gm, hw):
    """Runs ShapeProp on a [1, 3, hw, hw] zero input (no_grad, model in eval mode)."""
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(1, 3, hw, hw))


def trace_ops(model, hw=INPUT_HW):
    """Traces `model` (eval mode) and lists its ops in execution order.

    Returns (graph_module, ops, output_op) where ops is a list of Op (layer not yet set)
    and output_op the Op whose value the model returns.  Shapes are propagated at a
    [1, 3, hw, hw] input to check every add and to put each mul's [n,c,1,1] scale first.
    Raises ConvertError for anything the model description cannot express."""
    model.eval()
    tracer = ScopeTracer()
    # GoogLeNet's and Inception3's transform_input: traced as one module op at the start (its
    # torch code, four tensor functions a channel, has no op of its own otherwise).
    transform = isinstance(model, (torchvision.models.GoogLeNet, torchvision.models.Inception3)) \
        and model.transform_input
    if transform:
        model.transform_input = False
    try:
        graph = tracer.trace(model)
    finally:
        if transform:
            model.transform_input = True
    gm = torch.fx.GraphModule(tracer.root, graph)
    if transform:
        gm.add_submodule("transform_input", TransformInput())
        placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
        with gm.graph.inserting_after(placeholder):
            node = gm.graph.call_module("transform_input", (placeholder,))
        placeholder.replace_all_uses_with(node, delete_user_cb=lambda user: user is not node)
        node.meta["jp_scope"] = "transform_input"
        gm.recompile()
    propagate_shapes(gm, hw)

    value_names = {}        # fx node -> value name
    attr_nodes = {}         # fx get_attr node -> its target (a parameter's state_dict key)
    path_calls = {}         # path -> calls seen so far
    ops = []
    output_op = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if value_names:
                raise ConvertError(f"{type(model).__name__}: more than one graph input")
            value_names[node] = "input"
            continue
        if node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node) or result not in value_names:
                raise ConvertError(f"{type(model).__name__}: the graph output is not one op's "
                                   f"value ({result!r})")
            output_op = next(op for op in ops if op.node is result)
            continue
        if node.op == "get_attr":
            attr_nodes[node] = node.target  # used by the op that reads it (layer scale)
            continue
        if node.op == "call_function" and node.target in (operator.mul, torch.mul) and \
                len(node.args) == 2 and not node.kwargs and node.args[0] in attr_nodes and \
                isinstance(node.args[1], torch.fx.Node) and node.args[1] not in attr_nodes:
            # ConvNeXt's `self.layer_scale * self.block(x)`: a [c, 1, 1] parameter.
            scope = node.meta.get("jp_scope", "")
            path = f"{scope}.mul" if scope else "mul"
            key = attr_nodes[node.args[0]]
            shape = [int(d) for d in gm.get_parameter(key).shape]
            x_shape = _tensor_shape(node.args[1])
            if len(shape) != 3 or shape[1:] != [1, 1] or len(x_shape) != 4 or x_shape[1] != shape[0]:
                raise ConvertError(f"{path}: mul of parameter {key} {shape} and a {x_shape} tensor; "
                                   "only a [c, 1, 1] layer scale of [n, c, h, w] is supported")
            module_name, op_type = "mul", "layer_scale"
            arg_nodes, attrs, params = [node.args[1]], {"channels": shape[0]}, {"weight": (key, shape)}
        elif node.op == "call_module":
            path = node.target
            module = gm.get_submodule(path)
            module_name = type(module).__name__
            op_type, attrs, params = _describe_leaf(module, path)
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], torch.fx.Node):
                raise ConvertError(f"{path}: a module op must take exactly one tensor, got "
                                   f"args {node.args} kwargs {node.kwargs}")
            arg_nodes = [node.args[0]]
            if op_type == "layer_norm" and attrs["dim"] < 0:
                attrs["dim"] = len(_tensor_shape(node.args[0])) - 1
        elif node.op == "call_method" and node.target == "chunk":
            continue  # its values are its getitems: one chunk op each, below
        elif node.op == "call_function" and node.target is operator.getitem and \
                isinstance(node.args[0], torch.fx.Node) and node.args[0].op == "call_method" and \
                node.args[0].target == "chunk":
            scope = node.meta.get("jp_scope", "")
            path = f"{scope}.chunk" if scope else "chunk"
            module_name = op_type = "chunk"
            arg_nodes, attrs = _chunk_attrs(node, path)
            params = {}
        elif node.op == "call_function" and \
                node.target is torchvision.models.shufflenetv2.channel_shuffle:
            scope = node.meta.get("jp_scope", "")
            path = f"{scope}.channel_shuffle" if scope else "channel_shuffle"
            module_name = op_type = "channel_shuffle"
            groups = node.args[1] if len(node.args) > 1 else node.kwargs.get("groups")
            if len(node.args) + len(node.kwargs) != 2 or not isinstance(node.args[0], torch.fx.Node) or \
                    not isinstance(groups, int) or groups < 1 or \
                    _tensor_shape(node.args[0])[1] % groups or len(_tensor_shape(node.args[0])) != 4:
                raise ConvertError(f"{path}: unexpected channel_shuffle arguments {node.args} "
                                   f"{node.kwargs} (a [n, c, h, w] tensor and groups dividing c)")
            arg_nodes, attrs, params = [node.args[0]], {"groups": groups}, {}
        elif (node.op == "call_function" and node.target in FUNCTION_NAMES) or \
                (node.op == "call_method" and node.target in METHOD_NAMES):
            fname = (FUNCTION_NAMES if node.op == "call_function" else METHOD_NAMES)[node.target]
            scope = node.meta.get("jp_scope", "")
            path = f"{scope}.{fname}" if scope else fname
            module_name = op_type = fname
            arg_nodes, attrs = _function_attrs(node, fname, path)
            params = {}
            if fname == "add":
                shapes = [_tensor_shape(a) for a in arg_nodes]
                if shapes[0] != shapes[1]:
                    raise ConvertError(f"{path}: add of shapes {shapes[0]} and {shapes[1]}; "
                                       "only same-shape adds are supported")
            elif fname == "mul":
                shapes = [_tensor_shape(a) for a in arg_nodes]

                def is_scale(s, other):
                    return (len(s) == 4 and s[2:] == [1, 1] and s[:2] == other[:2]
                            and len(other) == 4 and other[2] * other[3] > 1)
                if is_scale(shapes[1], shapes[0]):
                    arg_nodes.reverse()
                elif not is_scale(shapes[0], shapes[1]):
                    raise ConvertError(f"{path}: mul of shapes {shapes[0]} and {shapes[1]}; "
                                       "only a [n,c,1,1] scale times a [n,c,h,w] tensor "
                                       "is supported")
        else:
            raise ConvertError(f"{type(model).__name__}: graph node {node.name} "
                               f"({node.op} {node.target}) is not supported by jplprof")
        for a in arg_nodes:
            if a not in value_names:
                raise ConvertError(f"{path}: input {a.name} is not an earlier op's value")
        calls = path_calls.get(path, 0)
        path_calls[path] = calls + 1
        name = path if calls == 0 else f"{path}#{calls}"
        value_names[node] = name
        shape = _tensor_shape(node)
        if not all(d > 0 for d in shape):
            raise ConvertError(f"{name}: empty output {shape} at a {hw}x{hw} input")
        ops.append(Op(node, name, path, module_name, op_type,
                      [value_names[a] for a in arg_nodes], attrs, params))
    if output_op is None:
        raise ConvertError(f"{type(model).__name__}: the graph has no output")
    return gm, ops, output_op


# Layers the seed adds after the model's children (its PowerLatencySampler.flatten_layers
# appends an nn.Flatten() for SqueezeNet, whose forward ends with torch.flatten(x, 1)): the
# function op of that path belongs to it.
TRAILING_LAYERS = {"squeezenet1_0": [("flatten", "Flatten")], "squeezenet1_1": [("flatten", "Flatten")]}


def layer_split(model, model_name=None):
    """DESIGN.md's layers: top-level children in registration order, a Sequential (or
    subclass) or ModuleList child replaced by its own children, one level deep, then the
    seed's trailing layers for `model_name` (TRAILING_LAYERS).  Returns a list of (path, class name)."""
    layers = []
    for name, child in model.named_children():
        if isinstance(child, (torch.nn.Sequential, torch.nn.ModuleList)):
            for sub, grandchild in child.named_children():
                layers.append((f"{name}.{sub}", type(grandchild).__name__))
        else:
            layers.append((name, type(child).__name__))
    return layers + TRAILING_LAYERS.get(model_name, [])


def _scope_of(op):
    """The module path an op lives in: its own path for a module, its caller's for a function."""
    if op.node.op == "call_module":
        return op.path
    return op.node.meta.get("jp_scope", "")


def assign_layers(model_name, ops, layers):
    """Sets op.layer for every op.  An op outside every layer (a function the model's own
    forward calls, torch.flatten) belongs to the layer of the op that follows it."""
    pending = []
    for op in ops:
        scope = _scope_of(op)
        if op.node.op != "call_module" and not scope:
            scope = op.path  # a top-level function: its own trailing layer, if it has one
        index = None
        for i, (path, _) in enumerate(layers):
            if scope == path or scope.startswith(path + "."):
                index = i
                break
        if index is None:
            pending.append(op)
            continue
        for p in pending:
            p.layer = index
        pending = []
        op.layer = index
    if pending:
        raise ConvertError(f"{model_name}: op {pending[0].name} is outside every layer and "
                           "no layer follows it")
    expected = 0
    for op in ops:
        if op.layer == expected + 1:
            expected += 1
        if op.layer != expected:
            lost = layers[expected + 1][0] if op.layer > expected else layers[op.layer][0]
            raise ConvertError(f"{model_name}: op {op.name} is in layer {op.layer} "
                               f"({layers[op.layer][0]}) after layer {expected}: layer "
                               f"'{lost}' has no ops or layers interleave")
    if expected != len(layers) - 1:
        raise ConvertError(f"{model_name}: layer '{layers[expected + 1][0]}' has no ops")


class _ShapeRecorder(torch.fx.Interpreter):
    """Runs a graph module and records every node's output shape (ShapeProp, which is
    used for the main check, prints a traceback on each failure: too noisy for a search)."""

    def __init__(self, gm):
        super().__init__(gm)
        self.shapes = {}

    def run_node(self, n):
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            self.shapes[n] = tuple(result.shape)
        return result


def find_min_hw(gm):
    """Smallest square input size h = w >= 1 at which every op's output is non-empty.
    Output sizes never shrink as the input grows, so the first size that works is it;
    a size at which torch refuses to run an op (an input smaller than a kernel) fails."""
    for hw in range(1, MAX_MIN_HW + 1):
        recorder = _ShapeRecorder(gm)
        try:
            with torch.no_grad():
                recorder.run(torch.zeros(1, 3, hw, hw))
        except (RuntimeError, ValueError):
            continue
        if all(all(d > 0 for d in shape) for shape in recorder.shapes.values()):
            return hw
    raise ConvertError(f"no input size up to {MAX_MIN_HW} gives every op a non-empty output")


def build_model(name):
    """torchvision's model `name`, untrained (weights=None), in eval mode."""
    builder = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder):
        raise ConvertError(f"torchvision {torchvision.__version__} has no model '{name}'")
    return builder(weights=None, **BUILD_KWARGS.get(name, {})).eval()


def describe_model(name):
    """The model description of `name` as a dict (docs/model-format.md)."""
    model = build_model(name)
    gm, ops, output_op = trace_ops(model)
    layers = layer_split(model, name)
    expected = EXPECTED_LAYER_COUNTS.get(name)
    if expected is None:
        raise ConvertError(f"{name}: no expected layer count; check its split by hand against "
                           "DESIGN.md and add it to EXPECTED_LAYER_COUNTS")
    if len(layers) != expected:
        raise ConvertError(f"{name}: layer split gives {len(layers)} layers, DESIGN.md says "
                           f"{expected}: {[p for p, _ in layers]}")
    assign_layers(name, ops, layers)
    if output_op.type not in ("linear", "flatten"):
        raise ConvertError(f"{name}: output op {output_op.name} is a {output_op.type}, "
                           "expected the classifier's linear (or SqueezeNet's flatten)")
    out_shape = _tensor_shape(output_op.node)
    if len(out_shape) != 2 or out_shape[0] != 1:
        raise ConvertError(f"{name}: logits shape {out_shape}, expected [1, num_classes]")

    # Every state_dict entry but num_batches_tracked is some op's parameter, and vice versa.
    state = {k: list(v.shape) for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    used = {}
    for op in ops:
        for key, shape in op.params.values():
            used[key] = shape
    if set(used) != set(state) or any(used[k] != state[k] for k in used):
        unused = sorted(set(state) - set(used))
        unknown = sorted(set(used) - set(state))
        raise ConvertError(f"{name}: op parameters do not match the state_dict: "
                           f"unused {unused[:5]}, unknown {unknown[:5]}")

    min_hw = find_min_hw(gm)
    return {
        "format": MODEL_FORMAT,
        "model": name,
        "torchvision_version": torchvision.__version__,
        "input": {"name": "input", "shape": [1, 3, INPUT_HW_OF.get(name, INPUT_HW),
                                             INPUT_HW_OF.get(name, INPUT_HW)], "min_hw": min_hw},
        "num_classes": out_shape[1],
        "preprocess": dict(PREPROCESS, **PREPROCESS_OF.get(name, {})),
        "output": output_op.name,
        "layers": [{"index": i, "path": p, "module": m} for i, (p, m) in enumerate(layers)],
        "ops": [op.to_json() for op in ops],
    }


def format_model_json(doc):
    """JSON text of a model description: one line per top-level field, per layer, and per
    field of an op, so that a diff shows what changed."""
    def dump(value):
        return json.dumps(value, ensure_ascii=True)

    lines = ["{"]
    for key in ("format", "model", "torchvision_version", "input", "num_classes",
                "preprocess", "output"):
        lines.append(f"  {dump(key)}: {dump(doc[key])},")
    lines.append('  "layers": [')
    for i, layer in enumerate(doc["layers"]):
        comma = "," if i + 1 < len(doc["layers"]) else ""
        lines.append(f"    {dump(layer)}{comma}")
    lines.append("  ],")
    lines.append('  "ops": [')
    for i, op in enumerate(doc["ops"]):
        comma = "," if i + 1 < len(doc["ops"]) else ""
        head = ", ".join(f"{dump(k)}: {dump(op[k])}"
                         for k in ("name", "path", "module", "type", "layer"))
        lines.append(f"    {{{head},")
        lines.append(f'     "inputs": {dump(op["inputs"])},')
        lines.append(f'     "attrs": {dump(op["attrs"])},')
        lines.append(f'     "params": {dump(op["params"])}}}{comma}')
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if json.loads(text) != doc:
        raise ConvertError("internal error: formatted JSON does not parse back to itself")
    return text


def write_text_atomic(path, text):
    """Writes `text` to `path` through a temporary file, fsync and rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ----------------------------------------------------------------------------- weights

def expected_params(json_path, model_name):
    """Reads a model description; returns {state_dict key: shape list} of its params."""
    try:
        with open(json_path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ConvertError(f"{json_path}: not found; run with --gen-json first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ConvertError(f"{json_path}: cannot read: {e}") from None
    if doc.get("format") != MODEL_FORMAT or doc.get("model") != model_name:
        raise ConvertError(f"{json_path}: format {doc.get('format')!r} model "
                           f"{doc.get('model')!r}, expected {MODEL_FORMAT!r} {model_name!r}")
    expected = {}
    for i, op in enumerate(doc.get("ops", [])):
        for slot, param in op.get("params", {}).items():
            key, shape = param["name"], param["shape"]
            if expected.setdefault(key, shape) != shape:
                raise ConvertError(f"{json_path}: ops[{i}].params.{slot}: '{key}' has two shapes")
    if not expected:
        raise ConvertError(f"{json_path}: no parameters listed")
    return expected


def checked_tensors(state_dict, expected, source, json_path):
    """Checks a state_dict against the description's params; returns {key: float32 array}.

    num_batches_tracked entries are dropped.  Raises ConvertError listing every missing,
    unexpected, wrongly shaped, non-float or non-finite tensor, one line each."""
    errors = []
    tensors = {}
    for key in sorted(state_dict):
        value = state_dict[key]
        if key.split(".")[-1] == "num_batches_tracked":
            continue
        if not isinstance(value, torch.Tensor):
            errors.append(f"{source}: '{key}' is a {type(value).__name__}, not a tensor")
            continue
        shape = [int(d) for d in value.shape]
        if key not in expected:
            errors.append(f"{source}: unexpected tensor '{key}' (shape {shape}), "
                          f"not a parameter in {json_path}")
            continue
        if shape != expected[key]:
            errors.append(f"{source}: tensor '{key}' has shape {shape}, {json_path} "
                          f"expects {expected[key]}")
            continue
        if not value.is_floating_point():
            errors.append(f"{source}: tensor '{key}' has dtype {value.dtype}, "
                          "expected floating point")
            continue
        array = value.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        if not np.isfinite(array).all():
            errors.append(f"{source}: tensor '{key}' has non-finite values")
            continue
        tensors[key] = array
    for key in sorted(set(expected) - set(state_dict)):
        errors.append(f"{source}: missing tensor '{key}' ({json_path} expects shape "
                      f"{expected[key]})")
    if errors:
        shown = errors[:20]
        if len(errors) > len(shown):
            shown.append(f"... and {len(errors) - len(shown)} more errors")
        raise ConvertError("\n".join(shown))
    return tensors


def load_pth(path, trust_pickle):
    """Loads a .pth file; returns the state_dict in it (plain, or under 'state_dict'/'model')."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except FileNotFoundError:
        raise ConvertError(f"{path}: not found") from None
    except Exception as e:  # torch.load raises many types for a bad or unsafe file
        hint = "" if trust_pickle else (" (if the file holds more than tensors and you "
                                        "trust it, add --trust-pickle)")
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConvertError(f"{path}: cannot load: {first}{hint}") from None
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if isinstance(obj, torch.nn.Module):
        raise ConvertError(f"{path}: holds a whole module, not a state_dict; "
                           "save model.state_dict() instead")
    if not isinstance(obj, dict) or not obj:
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of "
                           "tensors, plain or under 'state_dict' or 'model')")
    return obj


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def randomized_state_dict(name, seed):
    """A freshly built model's state_dict under torch.manual_seed(seed), with every batch
    norm's statistics and affine parameters randomised (running_mean ~ N(0, 0.1),
    running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5), bias ~ N(0, 0.1)) so that folding
    batch norm into a convolution is really exercised."""
    torch.manual_seed(seed)
    model = build_model(name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            if isinstance(m, torch.nn.LayerNorm):  # LayerNorm2d too
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
            if isinstance(m, CNBlock):  # 1e-6 at init: the blocks would hardly count
                m.layer_scale.uniform_(0.1, 1.0)
        hw = INPUT_HW_OF.get(name, INPUT_HW)
        logits = model(torch.randn(1, 3, hw, hw))
    if not torch.isfinite(logits).all():
        raise ConvertError(f"{name}: random-init model gives non-finite logits")
    return model.state_dict(), float(logits.std())


def write_weights(out_path, tensors, metadata):
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    safetensors_io.save(out_path, tensors, metadata)
    count = sum(a.size for a in tensors.values())
    print(f"wrote {out_path}: {len(tensors)} tensors, {count} floats, source "
          f"{metadata['source']}")


# ----------------------------------------------------------------------------- CLI

def read_available_models():
    try:
        with open(AVAILABLE_MODELS_FILE, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as e:
        raise ConvertError(f"{AVAILABLE_MODELS_FILE}: cannot read: {e}") from None
    if not names or len(set(names)) != len(names):
        raise ConvertError(f"{AVAILABLE_MODELS_FILE}: empty or has duplicate names")
    return names


def write_labels(weights_dir):
    weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    categories = list(weights.meta["categories"])
    if len(categories) != 1000 or any(not c or "\n" in c for c in categories):
        raise ConvertError(f"torchvision {torchvision.__version__}: {weights} lists "
                           f"{len(categories)} categories, expected 1000 one-line names")
    path = os.path.join(weights_dir, "imagenet_classes.txt")
    write_text_atomic(path, "".join(c + "\n" for c in categories))
    print(f"wrote {path}: {len(categories)} classes")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="convert_weights.py",
        description="Write jplprof's model descriptions (weights/<model>.json) and weight files "
                    "(weights/<model>.safetensors) from torchvision. Every weight file is "
                    "checked tensor by tensor against the model description before it is "
                    "written. Run with /usr/bin/python3 (needs torch, torchvision, numpy).",
        epilog="examples:\n"
               "  convert_weights.py --list\n"
               "  convert_weights.py --all --gen-json --labels\n"
               "  convert_weights.py --model resnet50 --pth ~/resnet50-0676ba61.pth\n"
               "  convert_weights.py --model resnet18 --random-init --seed 1 --out /tmp/r18.st\n"
               "  convert_weights.py --model mobilenet_v2 --gen-json --weights-dir /tmp/w",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="NAME",
                        help="the model, one of AvailableModel.txt (required unless --all, "
                             "--list or --labels alone); e.g. --model resnet50")
    parser.add_argument("--list", action="store_true",
                        help="print the models this converter knows (AvailableModel.txt), each "
                             "with its layer count and the files of --weights-dir it has; "
                             "e.g. --list")
    parser.add_argument("--all", action="store_true",
                        help="every model of AvailableModel.txt (with --gen-json or "
                             "--random-init); e.g. --all --gen-json")
    parser.add_argument("--gen-json", action="store_true",
                        help="write <weights-dir>/<model>.json, the model description, "
                             "traced from torchvision; e.g. --model resnet18 --gen-json")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pth", metavar="FILE",
                        help="convert a torchvision state_dict (.pth; plain or under "
                             "'state_dict'/'model') to <weights-dir>/<model>.safetensors; "
                             "e.g. --model resnet50 --pth resnet50-0676ba61.pth")
    source.add_argument("--random-init", action="store_true",
                        help="write weights of a freshly built model (torch.manual_seed(SEED), "
                             "batch-norm statistics randomised): for tests; e.g. --model "
                             "resnet18 --random-init")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed for --random-init (default 0); e.g. --seed 7")
    parser.add_argument("--out", metavar="FILE",
                        help="weights file to write instead of <weights-dir>/<model>.safetensors; "
                             "e.g. --out /tmp/r18.safetensors")
    parser.add_argument("--labels", action="store_true",
                        help="write <weights-dir>/imagenet_classes.txt (1000 names, index order) "
                             "from torchvision's weight metadata (offline); e.g. --labels")
    parser.add_argument("--weights-dir", metavar="DIR", default=DEFAULT_WEIGHTS_DIR,
                        help="where model descriptions are read and written and weights go "
                             "(default: the repository's weights/); e.g. --weights-dir /tmp/w")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="load --pth with full unpickling (only for files you trust; by "
                             "default only tensors and plain containers are accepted); e.g. "
                             "--pth mine.pth --trust-pickle")
    args = parser.parse_args(argv)
    if args.list and (args.gen_json or args.pth or args.random_init or args.labels or args.all
                      or args.model or args.out):
        parser.error("--list prints the models and does nothing else: give it alone "
                     "(or with --weights-dir)")
    if not (args.gen_json or args.pth or args.random_init or args.labels or args.list):
        parser.error("nothing to do: give --gen-json, --pth, --random-init, --labels or --list")
    if args.all and args.model:
        parser.error("give --model or --all, not both")
    if args.all and args.pth:
        parser.error("--pth converts one model's file: give --model, not --all")
    if args.out and not (args.pth or args.random_init):
        parser.error("--out names a weights file: use it with --pth or --random-init")
    if args.out and args.all:
        parser.error("--out names one file: use it with --model, not --all")
    if (args.gen_json or args.pth or args.random_init) and not (args.model or args.all):
        parser.error("--model NAME (or --all) is required")
    return args


def list_models(weights_dir):
    """--list: every model of AvailableModel.txt with its expected layer count and the
    files weights_dir has for it."""
    names = read_available_models()
    width = max(len(n) for n in names)
    print(f"{'model':<{width}}  layers  {weights_dir}/")
    for name in names:
        count = EXPECTED_LAYER_COUNTS.get(name)
        files = [f"{name}{ext}" for ext in (".json", ".safetensors")
                 if os.path.exists(os.path.join(weights_dir, f"{name}{ext}"))]
        print(f"{name:<{width}}  {count if count is not None else '?':>6}  "
              f"{', '.join(files) or '-'}")
    print(f"{len(names)} models ({AVAILABLE_MODELS_FILE}); torchvision {torchvision.__version__}")


def run(args):
    weights_dir = args.weights_dir
    if args.list:
        list_models(weights_dir)
        return
    models = []
    if args.model or args.all:
        available = read_available_models()
        if args.all:
            models = available
        elif args.model not in available:
            raise ConvertError(f"--model {args.model}: not in {AVAILABLE_MODELS_FILE} "
                               f"({', '.join(available)})")
        else:
            models = [args.model]
    os.makedirs(weights_dir, exist_ok=True)
    if args.labels:
        write_labels(weights_dir)
    for name in models:
        json_path = os.path.join(weights_dir, f"{name}.json")
        if args.gen_json:
            doc = describe_model(name)
            write_text_atomic(json_path, format_model_json(doc))
            print(f"wrote {json_path}: {len(doc['layers'])} layers, {len(doc['ops'])} ops, "
                  f"min_hw {doc['input']['min_hw']}")
        if not (args.pth or args.random_init):
            continue
        expected = expected_params(json_path, name)
        out_path = args.out or os.path.join(weights_dir, f"{name}.safetensors")
        metadata = {"model": name, "torchvision_version": torchvision.__version__,
                    "format": WEIGHTS_FORMAT}
        if args.pth:
            source = os.path.basename(args.pth)
            state = load_pth(args.pth, args.trust_pickle)
            unused = UNUSED_PTH_PREFIXES.get(name, ())
            state = {k: v for k, v in state.items() if not k.startswith(unused)}
            tensors = checked_tensors(state, expected, args.pth, json_path)
            metadata.update(source=source, source_sha256=sha256_file(args.pth))
        else:
            state, logits_std = randomized_state_dict(name, args.seed)
            tensors = checked_tensors(state, expected, "random-init", json_path)
            metadata.update(source="random-init", seed=str(args.seed))
            print(f"{name}: random-init seed {args.seed}, logits std {logits_std:.3g} "
                  "on a N(0,1) input")
        write_weights(out_path, tensors, metadata)


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except ConvertError as e:
        for line in str(e).splitlines():
            print(f"convert_weights: error: {line}", file=sys.stderr)
        return 1
    except (OSError, safetensors_io.SafetensorsError) as e:
        print(f"convert_weights: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
