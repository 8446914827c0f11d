"""Peak RSS of `jplprof infer` against issue 16's bound, and `infer --memory`.

Bound: the weights + the kernels' prepared weights (folded, packed,
Winograd-transformed) + 2 x the largest activation pair (a step's inputs and
output) + 16 MiB.  For each model (synthetic weights, 2 threads, one pass):
- the peak RSS is GNU time's (the kernel's ru_maxrss of the child), not the
  figure jplprof prints;
- the weights are summed here from weights/<model>.json's parameter shapes;
- the prepared weights and the largest pair are what `--memory` prints; so
  that an understated figure cannot pass, the prepared weights must be at
  least 90 % of the weights that are not read in place (`--memory`'s
  "read in place": the parameters of kernels that make no copy, such as
  cpu/linear/blas, ConvNeXt's linears);
- the weights given back and those read in place must make at least 95 % of
  the weights (no original is kept beside its prepared copy).
And `jplprof models` stays under 10 MB of peak RSS (issue 16: 224 MB when
cuDNN and cuBLAS were linked in).

Models: resnet18 and efficientnet_b0 by default (about 12 s);
JP_TEST_MEMORY_MODELS=a,b,... for others (`all`: AvailableModel.txt).
The activation arena of whole passes is checked on JP_TEST_ARENA_MODELS (default
squeezenet1_0,resnet50,densenet121).
Environment: JPLPROF (the binary under test).  Needs GNU time (/usr/bin/time);
SKIP without it.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
TIME = "/usr/bin/time"  # GNU time (Debian's `time` package)
MIB = 1024.0 * 1024.0
failures = 0


def check(name, ok, why=""):
    global failures
    print(("PASS memory/%s" % name) if ok else ("FAIL memory/%s: %s" % (name, why)))
    failures += 0 if ok else 1
    sys.stdout.flush()


def run_rss(args):
    """(returncode, stdout, stderr, peak RSS in MiB) of `jplprof args`, the
    peak from GNU time's %M (the kernel's ru_maxrss of that child; a child of
    Python would start from a copy of the interpreter's pages)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        r = subprocess.run([TIME, "-q", "-f", "%M", "-o", f.name, JPLPROF] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=900, env=dict(os.environ, JPLPROF_ROOT=ROOT))
        text = f.read().strip().splitlines()
    kb = int(text[-1]) if text and text[-1].isdigit() else None
    return r.returncode, r.stdout, r.stderr, (kb / 1024.0 if kb is not None else None)


def weights_mib(model):
    d = json.load(open(os.path.join(ROOT, "weights", model + ".json")))
    n = 0
    for op in d["ops"]:
        for prm in op.get("params", {}).values():
            k = 1
            for s in prm["shape"]:
                k *= s
            n += k
    return n * 4 / MIB


def main():
    if not os.access(TIME, os.X_OK):
        print("SKIP memory: no %s to measure peak RSS with (apt-get install time)" % TIME)
        return 0
    rc, out, err, rss = run_rss(["models"])
    check("jplprof models under 10 MB of peak RSS (%.1f MiB)" % (rss or -1), rc == 0 and rss is not None
          and rss * MIB < 10e6, "rc %d, %s MiB; %s" % (rc, rss, err[-300:]))

    want = os.environ.get("JP_TEST_MEMORY_MODELS", "resnet18,efficientnet_b0")
    if want == "all":
        models = [l.strip() for l in open(os.path.join(ROOT, "AvailableModel.txt")) if l.strip() and l[0] != "#"]
    else:
        models = [m for m in want.split(",") if m]
    for model in models:
        rc, out, err, rss = run_rss(["infer", "--model", model, "--synthetic", "--threads", "2", "--runs", "1",
                                     "--warmup", "0", "--quiet", "--top", "0", "--memory"])
        line = next((l for l in out.splitlines() if l.startswith("memory: weights")), "")
        m = re.search(r"weights ([0-9.]+) MiB \(synthetic\), ([0-9.]+) MiB of them given back, "
                      r"([0-9.]+) MiB read in place", line)
        prepared = re.search(r"prepared weights ([0-9.]+) MiB", line)
        pair = re.search(r"largest activation pair ([0-9.]+) MiB", line)
        if rc != 0 or not (m and prepared and pair and rss):
            check("%s: infer --memory" % model, False, "rc %d, line %r, rss %s; %s" % (rc, line, rss, err[-500:]))
            continue
        w = weights_mib(model)
        given_back, in_place = float(m.group(2)), float(m.group(3))
        prep, pr = float(prepared.group(1)), float(pair.group(1))
        bound = w + prep + 2 * pr + 16
        check("%s: --memory's weights are the model's (%.1f MiB)" % (model, w), abs(float(m.group(1)) - w) < 0.2,
              line)
        check("%s: prepared weights counted (%.1f MiB, weights %.1f MiB, %.1f read in place)"
              % (model, prep, w, in_place), prep >= 0.9 * (w - in_place) and "cannot say" not in out, line)
        check("%s: the originals given back (%.1f of %.1f MiB, %.1f read in place)" % (model, given_back, w, in_place),
              given_back + in_place >= 0.95 * w, line)
        check("%s: peak RSS %.1f MiB <= bound %.1f MiB (weights %.1f + prepared %.1f + 2 x %.1f + 16)"
              % (model, rss, bound, w, prep, pr), rss <= bound, line)
    # The activation arena of a whole-pass run: layer outputs share it by lifetime
    # (jp_exec_options.share_layer_outputs), so it holds a few activations, not every
    # layer's output: squeezenet1_0 26.5 MiB and resnet50 42.3 MiB when they did not.
    for model in os.environ.get("JP_TEST_ARENA_MODELS", "squeezenet1_0,resnet50,densenet121").split(","):
        rc, out, err, _ = run_rss(["infer", "--model", model, "--synthetic", "--threads", "2", "--runs", "1",
                                   "--warmup", "0", "--quiet", "--top", "0", "--memory"])
        arena = re.search(r"activation arena ([0-9.]+) MiB", out)
        pair = re.search(r"largest activation pair ([0-9.]+) MiB", out)
        ok = rc == 0 and arena and pair
        check("%s: activation arena %s MiB <= 3 x the largest activation pair (%s MiB)"
              % (model, arena.group(1) if arena else "?", pair.group(1) if pair else "?"),
              ok and float(arena.group(1)) <= 3 * float(pair.group(1)), (out + err)[-500:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
