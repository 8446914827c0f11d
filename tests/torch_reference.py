#!/usr/bin/python3
"""torch_reference: the PyTorch side of jplprof's layer-by-layer correctness test.

    /usr/bin/python3 tests/torch_reference.py --model M --weights W.safetensors \
        --input IN.safetensors --out OUT.safetensors [--granularity layer|op] [--json FILE]

Builds torchvision's model M, loads W (strictly: every state_dict key but
num_batches_tracked must be there, nothing else may be), and runs IN's tensor
`input` [1, 3, H, W] through it layer by layer, using the layer split of
weights/M.json: for each layer, the functions the JSON puts before its module
(torch.flatten, F.adaptive_avg_pool2d, x.mean, F.relu) and then the module at the
layer's `path`.  Writes to OUT:

    layer.<i>    the output of layer i, for every layer
    logits       the model's output (the last layer's output)
    op.<name>    with --granularity op: the output of every op of the JSON, by
                 its JSON name (the model is traced with the converter's own
                 tracer and run under torch.fx.Interpreter)

It also checks that the layer-by-layer logits equal the whole model's forward
(and, for ops, the traced graph's output), so that a wrong split cannot pass.
Exit status 0 on success, 1 with one error line on any failure.
"""

import argparse
import collections
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools", "convert_weights"))

import torch  # noqa: E402
import torch.fx  # noqa: E402

import convert_weights  # noqa: E402
import safetensors_io  # noqa: E402


class ReferenceError(Exception):
    """A one-line reason the reference cannot be produced."""


def snapshot(value):
    """A private copy of a tensor: later in-place ops (ReLU(inplace=True), the
    traced `+=`) must not change what was recorded."""
    return value.detach().to("cpu", torch.float32).contiguous().clone().numpy()


def load_description(json_path, model_name):
    try:
        with open(json_path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ReferenceError(f"{json_path}: cannot read: {e}") from None
    if doc.get("model") != model_name:
        raise ReferenceError(f"{json_path}: describes {doc.get('model')!r}, not {model_name!r}")
    return doc


def load_weights(model, weights_path):
    """Loads a jplprof safetensors file into `model`, strictly."""
    try:
        arrays, _ = safetensors_io.load(weights_path)
    except (OSError, safetensors_io.SafetensorsError) as e:
        raise ReferenceError(f"cannot read weights: {e}") from None
    state = collections.OrderedDict((k, torch.from_numpy(v)) for k, v in arrays.items())
    # The module versions a state_dict carries (MNASNet refuses one without its own):
    # those of the model being loaded, whose layout the converter checked.
    state._metadata = model.state_dict()._metadata
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ReferenceError(f"{weights_path}: missing tensors {missing[:5]}, unexpected "
                             f"tensors {result.unexpected_keys[:5]}")


# The functions a model's forward calls between its children (DESIGN.md, "Layers"): they
# run at the start of the layer that follows, as the seed's operations.py runs them.
PRE_OPS = {
    "flatten": lambda x, a: torch.flatten(x, a["start_dim"], a["end_dim"]),
    "adaptive_avg_pool2d": lambda x, a: torch.nn.functional.adaptive_avg_pool2d(
        x, a["output_size"]),
    "mean": lambda x, a: x.mean(a["dims"], keepdim=a["keepdim"]),
    "relu": lambda x, a: torch.nn.functional.relu(x),
    # GoogLeNet's and Inception3's transform_input (the converter's own torch code).
    "channel_affine": lambda x, a: convert_weights.channel_affine(x, a["scale"], a["shift"]),
}


def layer_plan(doc, model):
    """For each layer of the JSON: (index, module, [pre-module function ops])."""
    ops_by_layer = {}
    for op in doc["ops"]:
        ops_by_layer.setdefault(op["layer"], []).append(op)
    plan = []
    for layer in doc["layers"]:
        index, path = layer["index"], layer["path"]
        trailing = (path, layer["module"]) in convert_weights.TRAILING_LAYERS.get(doc["model"], [])
        try:
            # A trailing layer of the seed's (SqueezeNet's Flatten) is its function ops alone.
            module = torch.nn.Identity() if trailing else model.get_submodule(path)
        except AttributeError:
            raise ReferenceError(f"layers[{index}]: no module '{path}' in the model") from None
        if not trailing and type(module).__name__ != layer["module"]:
            raise ReferenceError(f"layers[{index}]: '{path}' is a {type(module).__name__}, "
                                 f"the JSON says {layer['module']}")
        pre_ops = []
        inside = False
        for op in ops_by_layer.get(index, []):
            scope = op["path"]
            if op["module"] == op["type"]:  # a function: its path is its caller's + its name
                scope = scope.rpartition(".")[0]
            if scope == path or scope.startswith(path + "."):
                inside = True
                continue
            if inside or op["type"] not in PRE_OPS:
                raise ReferenceError(f"op {op['name']}: outside module '{path}' of layer "
                                     f"{index}; only {', '.join(sorted(PRE_OPS))} may run "
                                     "before the module")
            pre_ops.append(op)
        plan.append((index, module, pre_ops))
    return plan


def run_layers(model, plan, x):
    """Runs the model layer by layer; returns ({"layer.<i>": array}, last output tensor)."""
    outputs = {}
    with torch.no_grad():
        for index, module, pre_ops in plan:
            for op in pre_ops:
                x = PRE_OPS[op["type"]](x, op["attrs"])
            x = module(x)
            outputs[f"layer.{index}"] = snapshot(x)
    return outputs, x


class _Recorder(torch.fx.Interpreter):
    """Runs a traced graph, keeping a copy of every op node's output."""

    def __init__(self, gm, names):
        super().__init__(gm)
        self.names = names      # fx node -> op name
        self.outputs = {}

    def run_node(self, n):
        result = super().run_node(n)
        name = self.names.get(n)
        if name is not None:
            self.outputs[f"op.{name}"] = snapshot(result)
        return result


def run_ops(model, doc, x):
    """Every op's output, by JSON name; checks the names are the JSON's, in order."""
    gm, ops, _ = convert_weights.trace_ops(model)
    traced = [op.name for op in ops]
    described = [op["name"] for op in doc["ops"]]
    if traced != described:
        first = next((i for i, (a, b) in enumerate(zip(traced, described)) if a != b),
                     min(len(traced), len(described)))
        raise ReferenceError(f"traced ops differ from the JSON at ops[{first}] (traced "
                             f"{traced[first:first + 1]}, JSON {described[first:first + 1]}, "
                             f"{len(traced)} vs {len(described)} ops): regenerate the JSON")
    recorder = _Recorder(gm, {op.node: op.name for op in ops})
    with torch.no_grad():
        out = recorder.run(x)
    return recorder.outputs, out


def _close(a, b):
    """Same computation by two routes: equal up to summation-order rounding."""
    scale = max(a.abs().max().item(), 1.0)
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run a torchvision model layer by layer (and op by op) on one input and "
                    "write every layer's output, for comparison with jplprof's.")
    parser.add_argument("--model", required=True, help="model name, as in AvailableModel.txt")
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="weights in jplprof's safetensors format")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help="safetensors file holding 'input', float32 [1, 3, H, W]")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="safetensors file to write (layer.<i>, logits, op.<name>)")
    parser.add_argument("--granularity", choices=("layer", "op"), default="layer",
                        help="'op' also writes every op's output (default: layer)")
    parser.add_argument("--json", metavar="FILE",
                        help="model description (default: weights/<model>.json)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where torch runs (cuda: cuDNN with TF32 off, as jplprof)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    json_path = args.json or os.path.join(REPO_ROOT, "weights", f"{args.model}.json")
    try:
        doc = load_description(json_path, args.model)
        try:
            inputs, _ = safetensors_io.load(args.input)
        except (OSError, safetensors_io.SafetensorsError) as e:
            raise ReferenceError(f"cannot read input: {e}") from None
        if "input" not in inputs:
            raise ReferenceError(f"{args.input}: no tensor 'input' (has {sorted(inputs)[:5]})")
        x = torch.from_numpy(inputs["input"].copy()).to(device)
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ReferenceError(f"{args.input}: 'input' has shape {list(x.shape)}, "
                                 "expected [1, 3, H, W]")
        try:
            model = convert_weights.build_model(args.model)
        except convert_weights.ConvertError as e:
            raise ReferenceError(str(e)) from None
        if hasattr(model, "transform_input"):
            # GoogLeNet, Inception3: on when the JSON has its op (as the pretrained builders
            # make it), off otherwise (a random-init builder's default).
            model.transform_input = any(op["name"] == "transform_input" for op in doc["ops"])
        load_weights(model, args.weights)
        model.eval().to(device)

        outputs, logits = run_layers(model, layer_plan(doc, model), x.clone())
        with torch.no_grad():
            whole = model(x.clone())
        if not _close(whole, logits):
            diff = (whole - logits).abs().max().item()
            raise ReferenceError(f"layer-by-layer logits differ from the model's forward "
                                 f"(max abs diff {diff:.3g}): the layer split is wrong")
        outputs["logits"] = snapshot(logits)
        if args.granularity == "op":
            try:
                op_outputs, traced = run_ops(model, doc, x.clone())
            except convert_weights.ConvertError as e:
                raise ReferenceError(str(e)) from None
            if not _close(traced, logits):
                diff = (traced - logits).abs().max().item()
                raise ReferenceError(f"traced graph's logits differ from the model's forward "
                                     f"(max abs diff {diff:.3g})")
            for layer in doc["layers"]:
                last = [op["name"] for op in doc["ops"] if op["layer"] == layer["index"]][-1]
                a = torch.from_numpy(op_outputs[f"op.{last}"])
                b = torch.from_numpy(outputs[f"layer.{layer['index']}"])  # both on the CPU
                if not _close(a, b):
                    raise ReferenceError(f"layer {layer['index']}: its last op {last} does not "
                                         "give the layer's output: the JSON's layer split is wrong")
            outputs.update(op_outputs)
        out_dir = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(out_dir, exist_ok=True)
        safetensors_io.save(args.out, outputs, {"model": args.model,
                                                "granularity": args.granularity,
                                                "torch_version": torch.__version__})
    except (ReferenceError, OSError, safetensors_io.SafetensorsError) as e:
        print(f"torch_reference: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(doc['layers'])} layers"
          + (f", {len(doc['ops'])} ops" if args.granularity == "op" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
