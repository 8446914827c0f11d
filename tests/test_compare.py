"""`jplprof compare`: every implementation of each op of a layer, on the op's
real input, checked against the reference and timed.
Environment: JPLPROF (see run_tests.sh).
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
BIN_DIR = os.environ.get("JP_TEST_BIN_DIR", os.path.join(ROOT, "build", "tests"))
FAKE = os.path.abspath(os.path.join(BIN_DIR, "fake_tegrastats"))
failures = 0


def check(name, ok, why=""):
    global failures
    print(("PASS compare/%s" % name) if ok else ("FAIL compare/%s: %s" % (name, why)))
    failures += 0 if ok else 1
    sys.stdout.flush()


def compare(*args, env=None):
    return subprocess.run([JPLPROF, "compare", "--synthetic", "--runs", "3", "--warmup", "1", "--threads", "2"]
                          + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        js, cs = os.path.join(tmp, "c.json"), os.path.join(tmp, "c.csv")
        r = compare("--model", "resnet18", "--layer", "4", "--json", js, "--csv", cs)
        check("resnet18 layer 4 runs, every kernel within the tolerance", r.returncode == 0, r.stdout[-1500:] + r.stderr)
        rows = json.load(open(js))["results"] if r.returncode == 0 else []
        convs = {x["op"] for x in rows if x["type"] == "conv2d"}
        kernels = {(x["op"], x["kernel"]) for x in rows}
        ok = convs == {"layer1.0.conv1", "layer1.0.conv2"} and all(
            (op, "cpu/conv2d/reference") in kernels and (op, "cpu/conv2d/im2col_blas") in kernels for op in convs)
        check("each conv runs the reference and im2col_blas at least", ok, sorted(kernels))
        ok = all(len(x["samples_s"]) == 3 and x["p5_s"] <= x["median_s"] <= x["p95_s"] and x["pass"] for x in rows)
        check("every row keeps its samples, p5 <= median <= p95", ok and rows, rows[:1])
        with open(cs) as f:
            table = list(csv.DictReader(f)) if os.path.exists(cs) else []
        check("CSV has the same rows", len(table) == len(rows) and rows, "%d vs %d" % (len(table), len(rows)))

        r = compare("--model", "efficientnet_b0", "--op", "features.1.0.block.0.0", "--json", js)
        rows = json.load(open(js))["results"] if r.returncode == 0 else []
        ks = {x["kernel"] for x in rows}
        check("a depthwise convolution runs the depthwise kernel, within the tolerance",
              r.returncode == 0 and "cpu/conv2d/depthwise" in ks and all(x["pass"] for x in rows), r.stdout + r.stderr)

        r = compare("--model", "resnet18", "--layer", "4", "--impls", "im2col_blas", "--json", js)
        rows = json.load(open(js))["results"] if r.returncode == 0 else []
        check("--impls keeps only the kernels named", r.returncode == 0 and rows and
              all(x["kernel"] == "cpu/conv2d/im2col_blas" for x in rows), [x["kernel"] for x in rows])

        plan = os.path.join(tmp, "plan.json")
        r = compare("--model", "resnet18", "--layer", "4", "--plan", plan, "--json", js)
        rows = json.load(open(js))["results"] if r.returncode == 0 else []
        ops = json.load(open(plan))["ops"] if os.path.exists(plan) else {}
        fastest = {}
        for x in rows:
            if x["pass"] and (x["op"] not in fastest or x["median_s"] < fastest[x["op"]][1]):
                fastest[x["op"]] = (x["kernel"], x["median_s"])
        check("--plan writes the fastest correct kernel of each op", ops and ops == {k: v[0] for k, v in
              fastest.items()}, ops)
        inf = subprocess.run([JPLPROF, "infer", "--model", "resnet18", "--synthetic", "--plan", plan, "--runs", "1",
                              "--granularity", "op", "--top", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        used = {l.split()[1]: l.split()[-2] for l in inf.stdout.splitlines() if l[:1].isdigit()}
        check("infer --plan runs each planned op on the planned kernel", inf.returncode == 0 and ops and
              all(used.get(op) == k for op, k in ops.items()), inf.stderr[-300:] + str(used)[:300])
        inf = subprocess.run([JPLPROF, "infer", "--model", "resnet50", "--synthetic", "--plan", plan],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("a plan for another model: clear error", inf.returncode == 2 and "resnet18" in inf.stderr, inf.stderr)
        with open(plan, "w") as f:
            json.dump({"format": "jplprof-plan-1", "model": "resnet18", "device": "cpu",
                       "ops": {"conv1": "cpu/conv2d/depthwise"}}, f)
        inf = subprocess.run([JPLPROF, "infer", "--model", "resnet18", "--synthetic", "--plan", plan],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("a plan naming a kernel that cannot run the op: clear error",
              inf.returncode != 0 and "conv1" in inf.stderr and "depthwise" in inf.stderr, inf.stderr)

        peak = json.load(open(js)) if os.path.exists(js) else {}
        ok = peak.get("peak_gflops") and peak["peak_gflops"] > 0 and "FMA" in peak.get("peak_method", "") and all(
            abs(x["pct_of_peak"] - 100 * x["gflops"] / peak["peak_gflops"]) < 1e-6 for x in peak["results"])
        check("the measured FMA peak and each row's share of it are recorded", ok and "peak" in r.stdout,
              {k: peak.get(k) for k in ("peak_gflops", "peak_method")})

        # Power: the fake tegrastats holds the CPU rail at a known value, so
        # every kernel's mean power is exactly that value and its energy per
        # call that power times the window's time per call.
        control = os.path.join(tmp, "control")
        with open(control, "w") as f:
            f.write("VDD_SYS_CPU=1234 VDD_SYS_GPU=55")
        power_args = ["--model", "resnet18", "--op", "layer1.0.conv1", "--impls", "im2col_blas,packed_gemm",
                      "--eval_tgr", "--power-source", "tegrastats", "--tegrastats", FAKE, "--tgr_interval", "10",
                      "--tgr_smpl_duration", "0.5", "--tgr_smpl_boundary", "0.1", "--cooldown", "0.05"]
        r = compare(*power_args, "--json", js, "--csv", cs, env={"FAKE_TEGRASTATS_CONTROL": control})
        doc = json.load(open(js)) if r.returncode == 0 else {}
        rows = doc.get("results", [])
        ok = len(rows) == 2 and doc["power"]["rail"] == "VDD_SYS_CPU" and all(
            x["power_mw"] == 1234 and x["power_samples"] >= 10 and x["power_window_calls"] > 0 and
            x["power_window_s"] >= 0.7 and
            abs(x["energy_per_call_mj"] - 1234 * x["power_window_s"] / x["power_window_calls"]) < 1e-9 for x in rows)
        check("--eval_tgr: each kernel's power is the rail's value in its window, energy per call = power x "
              "time per call", ok, r.stderr[-500:] + str([{k: x.get(k) for k in ("power_mw", "power_samples",
                                                          "energy_per_call_mj")} for x in rows]))
        with open(cs) as f:
            table = list(csv.DictReader(f)) if os.path.exists(cs) else []
        check("--eval_tgr: the CSV has power and energy per call", len(table) == 2 and all(
            float(t["power_mw"]) == 1234 for t in table), table[:1])
        r = compare(*power_args, env={"FAKE_TEGRASTATS_MODE": "exit_after:5"})
        check("--eval_tgr: tegrastats dying mid-run is a clear error", r.returncode == 1 and
              "tegrastats" in r.stderr.lower(), r.stderr[-400:])
        r = compare("--model", "resnet18", "--eval_tgr", "--power-source", "none")
        check("--eval_tgr with --power-source none: clear error", r.returncode == 2 and "none" in r.stderr, r.stderr)
        r = compare("--model", "resnet18", "--eval_tgr", "--cooldown", "-1")
        check("--eval_tgr with a negative --cooldown: clear error", r.returncode == 2 and
              "--cooldown" in r.stderr, r.stderr)

        lay = subprocess.run([JPLPROF, "layers", "resnet18", "--device", "cpu", "--threads", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        steps = [l.split() for l in lay.stdout.split("kernels on cpu", 1)[-1].splitlines() if l[:1].isdigit()]
        check("layers --device cpu lists every step's kernel, convolutions fused with batch-norm and relu",
              lay.returncode == 0 and steps and all(s[3].startswith("cpu/") for s in steps) and
              any(s[2] == "layer1.0.conv1+layer1.0.bn1+layer1.0.relu" and s[3].startswith("cpu/conv2d/")
                  for s in steps), lay.stdout[-800:] + lay.stderr)
        lay = subprocess.run([JPLPROF, "layers", "efficientnet_b0", "--device", "cpu", "--threads", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        steps = [l.split() for l in lay.stdout.split("kernels on cpu", 1)[-1].splitlines() if l[:1].isdigit()]
        # The residual add joins the step where the kernel chosen for it takes a residual
        # (packed_gemm, the default where the build targets AVX-512, and gemm_1x1, first
        # with an AVX2 build, both do; jp_exec.c would keep a faster kernel without one
        # rather than fuse).
        proj = "features.2.1.block.3.0+features.2.1.block.3.1+features.2.1.stochastic_depth"
        step = next((s for s in steps if s[2].startswith(proj)), None)
        takes_residual = step is not None and step[3] in (
            "cpu/conv2d/packed_gemm", "cpu/conv2d/gemm_1x1", "cpu/conv2d/im2col_blas", "cpu/conv2d/direct")
        check("layers --device cpu: EfficientNet's projection and stochastic depth (an identity) run as one step "
              "(with the residual add when its kernel, %s, takes one), and no stochastic depth step is left"
              % (step[3] if step else "?"),
              lay.returncode == 0 and step is not None and
              (step[2] == proj + "+features.2.1.add") == takes_residual and
              (takes_residual or any(s[2] == "features.2.1.add" for s in steps)) and
              not any(s[2].split("+")[0].endswith("stochastic_depth") for s in steps), lay.stdout[-800:] + lay.stderr)
        inf = subprocess.run([JPLPROF, "infer", "--model", "efficientnet_b0", "--synthetic", "--steps", "--runs", "2",
                              "--threads", "2", "--top", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=300)
        timed = [l.split() for l in inf.stdout.splitlines() if l[:1].isdigit()]
        want = {s[2].split("+")[0]: (s[2].count("+"), s[3]) for s in steps}
        got = {t[1]: (int(t[3][1:]) if t[3].startswith("+") else 0, t[-2]) for t in timed}
        check("infer --steps times each step of `layers`, named by its first op with the count of ops fused in "
              "and its kernel", inf.returncode == 0 and got == want and len(timed) == len(steps) and
              "sum of step medians" in inf.stdout, inf.stdout[-800:] + inf.stderr)
        lay = subprocess.run([JPLPROF, "layers", "resnet18", "--device", "cuda"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=600)
        if lay.returncode == 0:
            check("layers --device cuda names each convolution's cuDNN algorithm",
                  lay.stdout.count("cuda/conv2d/cudnn") == lay.stdout.count("algo ") > 0, lay.stdout[-800:])
        else:
            check("layers --device cuda without a usable GPU: clear error", lay.returncode == 1 and
                  "--device cuda" in lay.stderr, lay.stderr)

        r = compare("--model", "resnet18", "--impls", "warp_drive")
        check("--impls with an unknown kernel: clear error", r.returncode == 2 and "warp_drive" in r.stderr, r.stderr)
        r = compare("--model", "resnet18", "--op", "layer9.conv")
        check("--op that the model lacks: clear error", r.returncode == 2 and "layer9.conv" in r.stderr, r.stderr)
        r = compare("--model", "resnet18", "--layer", "99")
        check("--layer out of range: clear error", r.returncode == 2 and "99" in r.stderr, r.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
