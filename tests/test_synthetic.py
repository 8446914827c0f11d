"""Synthetic weights (DESIGN.md, "No weights file"): for every model at
224x224, on a real photo, every layer's output is finite and of moderate
size (batch-norm statistics calibrated on the input keep activations near
unit variance), the same seed gives bit-identical logits, another seed other
ones (checked on the first model of each family: determinism is the
synthesizer's, not a model's), and every run says the weights are synthetic.

Every model of AvailableModel.txt up to the 14 of the first list; of the
families that came after (issue 12: MobileNet, MNASNet, RegNet, SqueezeNet,
DenseNet) the smallest and the deepest of each, to keep `make test` within
its budget on 2 cores (every model: JP_TEST_SYNTHETIC_ALL=1).
Environment: JPLPROF (see run_tests.sh).
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert_weights"))
import safetensors_io  # noqa: E402

JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
IMAGE = os.path.join(ROOT, "data", "imagenet", "coffee.png")


def infer(model, out, seed):
    r = subprocess.run([JPLPROF, "infer", "--model", model, "--synthetic", "--seed", str(seed), "--image", IMAGE,
                        "--dump-layers", out, "--runs", "1", "--warmup", "0", "--top", "0", "--quiet",
                        "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return r, (safetensors_io.load(out)[0] if r.returncode == 0 else None)


def main():
    with open(os.path.join(ROOT, "AvailableModel.txt")) as f:
        models = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    if os.environ.get("JP_TEST_SYNTHETIC_ALL") != "1":
        skipped = {"mnasnet1_0", "mobilenet_v3_large", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_x_800mf"}
        # Issue 12's second list: googlenet and convnext_tiny (the new ops: transform_input,
        # layer_norm, gelu, permute, layer scale); the rest reuse ops checked here already.
        skipped |= {"efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "inception_v3",
                    "convnext_small", "convnext_base", "convnext_large"}
        # Issue 12's second list: ShuffleNetV2's x0_5 and x1_0 (new ops) by default, the rest
        # (the same ops at other widths and depths; VGG and the large RegNets take seconds each).
        skipped |= {"shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
                    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
                    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2",
                    "wide_resnet101_2", "densenet161", "densenet169", "densenet201", "squeezenet1_1",
                    "mnasnet0_75", "mnasnet1_3", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf",
                    "regnet_y_32gf", "regnet_y_128gf", "regnet_x_1_6gf", "regnet_x_8gf", "regnet_x_16gf",
                    "regnet_x_32gf"}
        for m in sorted(skipped & set(models)):
            print("SKIP synthetic/%s: a smaller and a deeper model of its family are checked "
                  "(JP_TEST_SYNTHETIC_ALL=1 checks every model)" % m)
        models = [m for m in models if m not in skipped]
    failed = 0
    families = set()
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            family = re.match(r"[a-z]+", model).group(0)  # resnet, efficientnet, mobilenet, ...
            seeds = family not in families
            families.add(family)
            name = "synthetic/%s 224x224: finite, moderate activations%s" % (
                model, ", deterministic, seeded" if seeds else "")
            a_path, b_path, c_path = (os.path.join(tmp, "%s_%s.safetensors" % (model, k)) for k in "abc")
            ra, a = infer(model, a_path, 3)
            runs = [ra]
            if seeds:
                rb, b = infer(model, b_path, 3)
                rc, c = infer(model, c_path, 4)
                runs += [rb, rc]
            problems = []
            for r in runs:
                if r.returncode != 0:
                    problems.append("exit %d: %s" % (r.returncode, r.stderr.strip()[-300:]))
                elif "SYNTHETIC" not in r.stderr:
                    problems.append("no synthetic-weights notice on stderr")
            worst = 0.0
            if not problems:
                for key, v in a.items():
                    if not key.startswith("layer."):
                        continue
                    if not np.all(np.isfinite(v)):
                        problems.append("%s: non-finite values" % key)
                        continue
                    std = float(np.std(v))
                    worst = max(worst, float(np.max(np.abs(v))))
                    if not (1e-3 < std < 1e3):
                        problems.append("%s: std %.3g outside (1e-3, 1e3)" % (key, std))
                if seeds and not np.array_equal(a["logits"], b["logits"]):
                    problems.append("same seed, different logits")
                if seeds and np.array_equal(a["logits"], c["logits"]):
                    problems.append("seeds 3 and 4 give the same logits")
            if problems:
                failed += 1
                print("FAIL %s: %s" % (name, "; ".join(problems[:4])))
            else:
                print("PASS %s (max |activation| %.3g)" % (name, worst))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
