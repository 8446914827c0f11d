"""Bad input through the jplprof command line (issue 2, "Bad input").

Each case runs jplprof on one broken input and checks that it exits non-zero
(2 for usage errors), does not crash (no signal), prints exactly one line on
stderr, and that the line names the file, field or value at fault.
Environment: JPLPROF (see run_tests.sh).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
MODEL = "resnet18"
failures = 0


def params_of(model_json):
    with open(model_json) as f:
        graph = json.load(f)
    out = {}
    for op in graph["ops"]:
        for p in op.get("params", {}).values():
            out[p["name"]] = p["shape"]
    return out


def build_safetensors(tensors, header_edit=None, raw_header=None):
    """tensors: name -> (dtype, shape, bytes).  Returns the file's bytes."""
    header, data, off = {}, b"", 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        data += blob
        off += len(blob)
    if header_edit:
        header_edit(header)
    text = raw_header if raw_header is not None else json.dumps(header)
    text = text.encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def valid_tensors(shapes, shape_edit=None):
    out = {}
    for name, shape in shapes.items():
        if shape_edit and name in shape_edit:
            shape = shape_edit[name]
        n = int(np.prod(shape))
        out[name] = ("F32", shape, np.zeros(n, np.float32).tobytes())
    return out


def expect(name, args, needles, env=None, usage=False):
    global failures
    r = subprocess.run([JPLPROF] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, **(env or {})), timeout=300)
    lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith("jplprof: no converted weights")]
    problems = []
    if r.returncode == 0:
        problems.append("exited 0")
    elif r.returncode < 0:
        problems.append("killed by signal %d" % -r.returncode)
    elif usage and r.returncode != 2:
        problems.append("exit status %d, expected 2 (usage error)" % r.returncode)
    if len(lines) != 1:
        problems.append("%d lines on stderr, expected 1: %r" % (len(lines), r.stderr[-500:]))
    for needle in needles:
        if needle not in r.stderr:
            problems.append("stderr does not mention %r: %r" % (needle, r.stderr.strip()[-300:]))
    if problems:
        print("FAIL bad-input/%s: %s" % (name, "; ".join(problems)))
        failures += 1
    else:
        print("PASS bad-input/%s: %s" % (name, lines[0]))


def main():
    global failures
    tmp = tempfile.mkdtemp()
    try:
        shapes = params_of(os.path.join(ROOT, "weights", MODEL + ".json"))
        good = build_safetensors(valid_tensors(shapes))

        def write(name, blob):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(blob)
            return path

        def infer(weights=None, *extra):
            args = ["infer", "--model", MODEL, "--runs", "1", "--warmup", "0", "--top", "0", "--quiet"]
            if weights:
                args += ["--weights", weights]
            return args + list(extra)

        p = write("truncated.safetensors", good[: len(good) // 2])
        expect("truncated safetensors", infer(p), [p])
        p = write("short.safetensors", good[:5])
        expect("safetensors shorter than its length field", infer(p), [p])
        p = write("hugeheader.safetensors", struct.pack("<Q", len(good) * 4) + good[8:])
        expect("header length larger than the file", infer(p), [p, "header"])

        def out_of_range(h):
            h["conv1.weight"]["data_offsets"][1] += 1 << 30
        p = write("offset.safetensors", build_safetensors(valid_tensors(shapes), header_edit=out_of_range))
        expect("tensor offset out of range", infer(p), [p, "conv1.weight"])

        tensors = valid_tensors(shapes)
        # Same key twice in the JSON header.
        dup_header = '{"fc.bias": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}, ' \
                     '"fc.bias": {"dtype": "F32", "shape": [1000], "data_offsets": [4000, 8000]}}'
        p = write("dup.safetensors", build_safetensors({"x": ("F32", [2000], bytes(8000))}, raw_header=dup_header))
        expect("duplicated tensor name", infer(p), [p, "fc.bias"])

        def f16(h):
            h["fc.bias"]["dtype"] = "F16"
        p = write("f16.safetensors", build_safetensors(valid_tensors(shapes), header_edit=f16))
        expect("dtype other than F32", infer(p), [p, "F16"])

        p = write("shape.safetensors", build_safetensors(valid_tensors(shapes, {"conv1.weight": [64, 3, 7, 6]})))
        expect("tensor with the wrong shape", infer(p), [p, "conv1.weight"])

        missing = dict(valid_tensors(shapes))
        del missing["fc.bias"]
        p = write("missing.safetensors", build_safetensors(missing))
        expect("missing tensor", infer(p), [p, "fc.bias"])

        extra = dict(valid_tensors(shapes))
        extra["head.weight"] = ("F32", [2], bytes(8))
        p = write("extra.safetensors", build_safetensors(extra))
        expect("tensor the model does not have", infer(p), [p, "head.weight"])

        p = os.path.join(tmp, "nonexistent.safetensors")
        expect("missing weights file", infer(p), [p])

        # A project root with a broken model description.
        def broken_root(name, edit, model=MODEL):
            root = os.path.join(tmp, name)
            os.makedirs(os.path.join(root, "weights"))
            with open(os.path.join(root, "AvailableModel.txt"), "w") as f:
                f.write(model + "\n")
            with open(os.path.join(ROOT, "weights", model + ".json")) as f:
                graph = json.load(f)
            edit(graph)
            with open(os.path.join(root, "weights", model + ".json"), "w") as f:
                json.dump(graph, f)
            return root

        root = broken_root("nofield", lambda g: g.pop("num_classes"))
        expect("model JSON with a missing field", infer(), ["num_classes", MODEL + ".json"],
               env={"JPLPROF_ROOT": root})
        root = broken_root("unknownfield", lambda g: g["ops"][0]["attrs"].update({"colour": 1}))
        expect("model JSON with an unknown field", infer(), ["colour", "ops[0].attrs"], env={"JPLPROF_ROOT": root})
        root = broken_root("badtype", lambda g: g["ops"][0].update({"type": "conv3d"}))
        expect("model JSON with an unknown op type", infer(), ["conv3d", "ops[0].type"], env={"JPLPROF_ROOT": root})
        root = broken_root("noattr", lambda g: g["ops"][0]["attrs"].pop("stride"))
        expect("model JSON with an op missing an attribute", infer(), [MODEL + ".json", "ops[0].attrs.stride"],
               env={"JPLPROF_ROOT": root})

        # A concat whose inputs disagree in height and width: SqueezeNet's first Fire module
        # with its 3x3 expansion unpadded (its weights keep their shapes).
        def unpad_expand3x3(g):
            conv = next(op for op in g["ops"] if op["name"] == "features.3.expand3x3")
            conv["attrs"]["padding"] = [0, 0]
        if "squeezenet1_0" in open(os.path.join(ROOT, "AvailableModel.txt")).read().split():
            root = broken_root("catshape", unpad_expand3x3, "squeezenet1_0")
            expect("concat whose inputs disagree in H and W",
                   ["infer", "--model", "squeezenet1_0", "--runs", "1", "--warmup", "0", "--top", "0", "--quiet"],
                   ["squeezenet1_0.json", "features.3.concat", "inputs[1]", "height"], env={"JPLPROF_ROOT": root})
        # transform_input's channel_affine (GoogLeNet's ops[0]) without its shift, and with a scale
        # one number short.
        if "googlenet" in open(os.path.join(ROOT, "AvailableModel.txt")).read().split():
            googlenet = ["infer", "--model", "googlenet", "--runs", "1", "--warmup", "0", "--top", "0", "--quiet"]
            root = broken_root("noshift", lambda g: g["ops"][0]["attrs"].pop("shift"), "googlenet")
            expect("channel_affine missing an attribute", googlenet,
                   ["googlenet.json", "ops[0].attrs.shift"], env={"JPLPROF_ROOT": root})
            root = broken_root("shortscale", lambda g: g["ops"][0]["attrs"]["scale"].pop(), "googlenet")
            expect("channel_affine with scale and shift of different lengths", googlenet,
                   ["googlenet.json", "ops[0].attrs.shift", "expected 2"], env={"JPLPROF_ROOT": root})
        # ConvNeXt's ops: a layer_norm (its stem's LayerNorm2d, ops[1]) without eps, a permute with
        # a dimension twice.
        if "convnext_tiny" in open(os.path.join(ROOT, "AvailableModel.txt")).read().split():
            convnext = ["infer", "--model", "convnext_tiny", "--runs", "1", "--warmup", "0", "--top", "0", "--quiet"]
            root = broken_root("noeps", lambda g: g["ops"][1]["attrs"].pop("eps"), "convnext_tiny")
            expect("layer_norm missing an attribute", convnext, ["convnext_tiny.json", "ops[1].attrs.eps"],
                   env={"JPLPROF_ROOT": root})

            def twice(g):
                next(op for op in g["ops"] if op["type"] == "permute")["attrs"]["dims"] = [0, 2, 2, 1]
            root = broken_root("permtwice", twice, "convnext_tiny")
            expect("permute listing a dimension twice", convnext, ["convnext_tiny.json", "attrs.dims[2]"],
                   env={"JPLPROF_ROOT": root})
        root = broken_root("notjson", lambda g: None)
        with open(os.path.join(root, "weights", MODEL + ".json"), "a") as f:
            f.write("}")
        expect("model JSON that is not JSON", infer(), [MODEL + ".json", "JSON"], env={"JPLPROF_ROOT": root})

        expect("unknown model name", ["infer", "--model", "resnet19"], ["resnet19"], usage=True)
        expect("unknown model name (layers)", ["layers", "resnet19"], ["resnet19"], usage=True)

        p = write("notanimage.jpg", b"this is a text file, not a JPEG\n" * 10)
        expect("image that is not an image", infer(None, "--image", p), [p])
        p = write("truncated.png", open(os.path.join(ROOT, "data/imagenet/chelsea.png"), "rb").read()[:2000])
        expect("truncated PNG", infer(None, "--image", p), [p])
        p = os.path.join(tmp, "nonexistent.jpg")
        expect("missing image file", infer(None, "--image", p), [p])

        expect("bad option value --threads", ["infer", "--model", MODEL, "--threads", "abc"], ["--threads", "abc"],
               usage=True)
        expect("bad option value --device", ["infer", "--model", MODEL, "--device", "tpu"], ["--device", "tpu"],
               usage=True)
        expect("bad option value --runs", ["infer", "--model", MODEL, "--runs", "0"], ["--runs"], usage=True)
        expect("bad option value --granularity", ["layers", MODEL, "--granularity", "block"], ["block"], usage=True)
        expect("unknown option", ["infer", "--model", MODEL, "--frobnicate"], ["--frobnicate"], usage=True)
        # An option given last without its value (issue 14: "unknown option").
        for cmd in (["infer", "--model"], ["infer", "--model", MODEL, "--threads"], ["layers", MODEL, "--granularity"],
                    ["profile", "--mode"], ["compare", "--model"], ["process", "--dataset"]):
            expect("option without its value: %s" % " ".join(cmd), cmd, [cmd[-1], "needs a value"], usage=True)

        # A PNG header claiming 100000 x 100000 pixels (issue 14: "unknown image type").
        png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 100000, 100000) +
               bytes([8, 2, 0, 0, 0]) + bytes(4) + struct.pack(">I", 0) + b"IEND" + bytes.fromhex("ae426082"))
        p = write("huge.png", png)
        expect("PNG header of 100000 x 100000 pixels", infer(None, "--image", p), [p, "too large"])

        # process on an empty raw file (issue 14: wrote {} and exited 0).
        for kind, name in (("latency", "chelsea_sc_5.json"), ("power", "chelsea_sf_5_sb_1.json")):
            ds = os.path.join(tmp, "empty_" + kind)
            d = os.path.join(ds, "Mode0", "cpu", kind, "alexnet")
            os.makedirs(d)
            p = write(os.path.join(d, name), b"")
            expect("process on an empty %s file" % kind, ["process", "--dataset", ds], [p, "no layer"])
            if os.path.exists(os.path.join(ds, "Processed", "Mode0.json")):
                print("FAIL bad-input/process on an empty %s file writes no result: Mode0.json written" % kind)
                failures += 1
            else:
                print("PASS bad-input/process on an empty %s file writes no result" % kind)
        expect("unknown command", ["frobnicate"], ["frobnicate"], usage=True)

        p = os.path.join(tmp, "no", "such", "dir", "dump.safetensors")
        expect("dump into a missing directory", infer(None, "--dump-layers", p), [p])
        left = [f for f in os.listdir(tmp) if ".tmp." in f]
        if left:
            print("FAIL bad-input/no temporary files left: %s" % left)
        else:
            print("PASS bad-input/no temporary files left")

        small = write("small.safetensors", build_safetensors(
            {"input": ("F32", [1, 3, 8, 8], np.zeros(192, np.float32).tobytes())}))
        expect("input tensor smaller than the model's minimum",
               ["infer", "--model", "alexnet", "--input-tensor", small, "--top", "0", "--quiet"], ["8x8", "alexnet"])
        wrong = write("wrong_input.safetensors", build_safetensors(
            {"input": ("F32", [1, 4, 64, 64], np.zeros(4 * 64 * 64, np.float32).tobytes())}))
        expect("input tensor with the wrong shape", infer(None, "--input-tensor", wrong), [wrong, "[1, 4, 64, 64]"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
