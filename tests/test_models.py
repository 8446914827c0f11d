"""Every model of AvailableModel.txt against torchvision, layer by layer.

For each model: the converter builds random-init weights (random batch-norm
statistics included), PyTorch (tests/torch_reference.py, live, Debian's
torchvision) and jplprof (`infer --dump-layers`) run the same random input,
and every layer's output and the logits must agree:
    max|out - ref| <= 1e-4 * max|ref| + 1e-5      (issue 2)
Input 224x224 for alexnet, resnet18, resnet50, efficientnet_b0, mobilenet_v2,
mobilenet_v3_large, regnet_y_400mf and densenet121, a reduced size for the
others so that the suite stays fast.  A few models are also
compared op by op (--granularity op, no fusion).

Prints one PASS/FAIL line per (model, granularity) with the worst layer, and
one info line per layer.  Environment: JPLPROF, PYTHON (see run_tests.sh);
JP_TEST_MODELS="a,b" restricts the models; of issue 12's second list one model per
family runs by default (shufflenet_v2_x1_0 at 224 and op by op, googlenet with
transform_input off, inception_v3, efficientnet_v2_s, convnext_tiny), every one with
JP_TEST_MODELS_ALL=1; JP_TEST_SIZE=N runs every case
at NxN (tests/cross/aarch64.sh: jplprof emulated by qemu, where 224x224 would
take minutes a model).  JPLPROF may be a wrapper (that script's runs the
aarch64 binary under qemu-aarch64); torchvision always runs natively.
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert_weights"))
import safetensors_io  # noqa: E402

# On the CPU the converter and the reference run in this process: importing torch
# costs 2.3 s of CPU a process here, twice a case (AvailableModel.txt's 27 models:
# about two minutes of make test).  The GPU machine keeps the separate processes.
IN_PROCESS = os.environ.get("JP_TEST_DEVICE", "cpu") == "cpu"
if IN_PROCESS:
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import convert_weights  # noqa: E402
    import torch_reference  # noqa: E402

JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
PYTHON = os.environ.get("PYTHON", sys.executable)
# Issue 12 names mobilenet_v2, mobilenet_v3_large, regnet_y_400mf and densenet121 (and
# shufflenet_v2_x1_0, added below) for a full-size check.
FULL_SIZE = {"alexnet", "resnet18", "resnet50", "efficientnet_b0",
             "mobilenet_v2", "mobilenet_v3_large", "regnet_y_400mf", "densenet121"}
FULL_SIZE |= {"shufflenet_v2_x1_0"}
REDUCED_SIZE = 96
# model -> input size.  Op by op, nothing is fused: mobilenet_v3_small runs its hardswish and
# hardsigmoid as ops of their own, mnasnet0_5 its mean.
OP_LEVEL = {"resnet18": 64, "efficientnet_b0": 64, "mobilenet_v3_small": 64, "mnasnet0_5": 64}
# Issue 12's later families: one model each by default (make test's budget), every one with
# JP_TEST_MODELS_ALL=1; their size where it is not REDUCED_SIZE.
# GoogLeNet's default case is the transform_input-off one below (Inception v3 checks it on).
ALL_ONLY = {"efficientnet_v2_m", "efficientnet_v2_l", "googlenet"}
ALL_ONLY |= {"convnext_small", "convnext_base", "convnext_large"}
SIZE_OF = {"efficientnet_v2_s": 64, "efficientnet_v2_m": 64, "efficientnet_v2_l": 64,
           "googlenet": 64, "inception_v3": 96,
           "convnext_tiny": 64, "convnext_small": 64, "convnext_base": 64, "convnext_large": 64}
# GoogLeNet and Inception v3 also with transform_input off (what their random-init builders
# make): the JSON without its op, torchvision's model without it.
TRANSFORM_OFF = {"googlenet": 64}
# ShuffleNetV2's chunk and channel_shuffle, op by op (the weights of its 224x224 case reused).
OP_LEVEL["shufflenet_v2_x1_0"] = 64
# Models of AvailableModel.txt checked only with JP_TEST_MODELS_ALL=1 (make test's budget): of
# issue 12's second list, each family's representative runs by default (shufflenet_v2_x1_0 at
# 224 and op by op), and these are the same ops at other widths and depths: VGG is alexnet's
# ops, ResNeXt and wide ResNet resnet50's with regnet's grouped convolutions, the others their
# families' first-list models'.
ALL_ONLY |= {"shufflenet_v2_x0_5", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
            "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
            "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
            "densenet161", "densenet169", "densenet201", "squeezenet1_1", "mnasnet0_75", "mnasnet1_3",
            "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf",
            "regnet_x_1_6gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf"}
REL_TOL, ABS_TOL = float(os.environ.get("JP_TEST_REL_TOL", "1e-4")), 1e-5
# JP_TEST_DEVICE=cuda: jplprof --device cuda against torch on the GPU (the GPU
# machine runs this; `make test` runs the CPU).
DEVICE = os.environ.get("JP_TEST_DEVICE", "cpu")
SIZE = int(os.environ.get("JP_TEST_SIZE", "0"))  # 0: the sizes above


# Seconds spent in each stage of the current case (converter, torchvision,
# jplprof), printed with its result: on the GPU machine efficientnet_b6/b7
# once ran out of time without saying where.
stage_s = {}


def run(cmd, stage, env=None):
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    stage_s[stage] = stage_s.get(stage, 0.0) + time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:]))
    return r.stdout


def run_python(script, argv, stage):
    """script's main(argv), in this process on the CPU (see IN_PROCESS), else in its own."""
    if not IN_PROCESS:
        return run([PYTHON, os.path.join(ROOT, script)] + argv, stage)
    main = {"tools/convert_weights/convert_weights.py": convert_weights.main,
            "tests/torch_reference.py": torch_reference.main}[script]
    t0 = time.monotonic()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
    stage_s[stage] = stage_s.get(stage, 0.0) + time.monotonic() - t0
    if rc:
        raise RuntimeError("%s %s exited %s:\n%s" % (script, " ".join(argv), rc, out.getvalue()[-3000:]))
    return out.getvalue()


def compare(model, granularity, ours_path, ref_path):
    ours, _ = safetensors_io.load(ours_path)
    ref, _ = safetensors_io.load(ref_path)
    keys = [k for k in ref if k.startswith("layer.") or k == "logits" or (granularity == "op" and k.startswith("op."))]
    worst, worst_key, problems = -1.0, None, []
    for key in sorted(keys, key=lambda k: (k.split(".")[0], int(k.split(".")[1]) if k.startswith("layer.") else 0, k)):
        if key not in ours:
            problems.append("%s missing from jplprof's dump" % key)
            continue
        a, b = ours[key], ref[key]
        if a.shape != b.shape:
            problems.append("%s: shape %s, torchvision %s" % (key, a.shape, b.shape))
            continue
        if not np.all(np.isfinite(a)):
            problems.append("%s: non-finite values" % key)
            continue
        err = float(np.max(np.abs(a.astype(np.float64) - b)))
        scale = float(np.max(np.abs(b)))
        bound = REL_TOL * scale + ABS_TOL
        ratio = err / bound
        print("    %s %s %s: max err %.3g, max|ref| %.3g, bound %.3g%s" %
              (model, granularity, key, err, scale, bound, "  <-- over" if ratio > 1 else ""))
        if ratio > 1:
            problems.append("%s: err %.3g > bound %.3g" % (key, err, bound))
        if ratio > worst:
            worst, worst_key = ratio, key
    return problems, worst, worst_key, len(keys)


def without_transform_input(model, tmp):
    """A project root whose <model>.json lacks the transform_input op; returns (root, json)."""
    import json
    root = os.path.join(tmp, model + "_no_transform")
    os.makedirs(os.path.join(root, "weights"), exist_ok=True)
    with open(os.path.join(root, "AvailableModel.txt"), "w") as f:
        f.write(model + "\n")
    with open(os.path.join(ROOT, "weights", model + ".json")) as f:
        doc = json.load(f)
    doc["ops"] = [op for op in doc["ops"] if op["name"] != "transform_input"]
    for op in doc["ops"]:
        op["inputs"] = ["input" if v == "transform_input" else v for v in op["inputs"]]
    path = os.path.join(root, "weights", model + ".json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return root, path


def check_model(model, size, granularity, tmp, transform_off=False):
    weights = os.path.join(tmp, model + ".safetensors")
    if not os.path.exists(weights):
        run_python("tools/convert_weights/convert_weights.py", ["--model", model, "--random-init", "--seed", "7",
                                                                "--out", weights], "convert")
    rng = np.random.default_rng()
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    inp = os.path.join(tmp, "%s_%d_input.safetensors" % (model, size))
    safetensors_io.save(inp, {"input": x}, {})
    ref = os.path.join(tmp, "%s_%s_ref.safetensors" % (model, granularity))
    ours = os.path.join(tmp, "%s_%s_ours.safetensors" % (model, granularity))
    extra, env = [], None
    if transform_off:
        root, json_path = without_transform_input(model, tmp)
        extra, env = ["--json", json_path], dict(os.environ, JPLPROF_ROOT=root)
        ref, ours = ref + ".off", ours + ".off"
    run_python("tests/torch_reference.py", ["--model", model, "--weights", weights, "--input", inp, "--out", ref,
                                            "--granularity", granularity, "--device", DEVICE] + extra, "torchvision")
    run([JPLPROF, "infer", "--model", model, "--weights", weights, "--input-tensor", inp, "--dump-layers", ours,
         "--granularity", granularity, "--device", DEVICE, "--runs", "1", "--warmup", "0", "--top", "0", "--quiet", "--threads", "2"], "jplprof", env)
    return compare(model, granularity, ours, ref)


def main():
    with open(os.path.join(ROOT, "AvailableModel.txt")) as f:
        models = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    listed = models
    only = os.environ.get("JP_TEST_MODELS")
    if only:
        models = [m for m in models if m in only.split(",")]
    elif os.environ.get("JP_TEST_MODELS_ALL") != "1":
        for m in sorted(ALL_ONLY & set(models)):
            print("SKIP model/%s: its family's representative is checked (JP_TEST_MODELS_ALL=1 checks "
                  "every model)" % m)
        models = [m for m in models if m not in ALL_ONLY]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(m, 224 if m in FULL_SIZE else SIZE_OF.get(m, REDUCED_SIZE), "layer") for m in models]
        cases += [(m, s, "op") for m, s in OP_LEVEL.items() if m in models]
        cases += [(m, s, "layer transform_input-off") for m, s in TRANSFORM_OFF.items() if m in listed and (not only or m in only.split(","))]
        if SIZE:
            cases = [(m, SIZE, g) for m, _, g in cases]
        for model, size, granularity in cases:
            name = "model/%s %s %s %dx%d vs torchvision" % (model, DEVICE, granularity, size, size)
            stage_s.clear()
            try:
                problems, worst, worst_key, n = check_model(model, size, granularity.split()[0], tmp,
                                                            granularity.endswith("-off"))
            except Exception as e:  # a crash of either side is a failure of this case
                print("FAIL %s: %s" % (name, str(e).replace("\n", "\n    ")))
                failed += 1
                continue
            if problems or n == 0:
                print("FAIL %s: %s" % (name, "; ".join(problems[:5]) or "nothing compared"))
                failed += 1
            else:
                print("PASS %s (%d tensors, worst %s at %.2f of the bound; %s)" % (
                    name, n, worst_key, worst, ", ".join("%s %.1f s" % kv for kv in stage_s.items())))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
