"""End-to-end benchmark: jplprof against PyTorch eager and ONNX Runtime on the same weights.

For each model: random-init weights from the converter (the same file for
every engine), batch 1, 224x224, the same number of threads; one table row
per model and thread count (`--threads 1,2` gives both in one table).

Rounds alternate between the engines (jplprof, PyTorch, ONNX Runtime,
jplprof, ...) so that drift of the machine affects all alike; each round
takes the median of --runs timed passes after 2 warm-up passes, and the
table reports the median over the rounds.
  - jplprof runs through `jplprof infer --quiet` (its end-to-end median,
    timed without per-layer hooks).
  - PyTorch runs in worker processes (model loaded once) under
    torch.no_grad() with torch.set_num_threads(threads), once as installed
    and once with OPENBLAS_NUM_THREADS=1 (Debian's PyTorch and its OpenBLAS
    pool can fight over the cores); the faster of the two is kept and named.
  - ONNX Runtime (CPU execution provider, through the npm package
    onnxruntime-node) runs in a node worker, tests/bench/ort_worker.mjs, on
    the model exported from the same torchvision module with
    torch.onnx.export (opset 13, batch 1, eval mode); intraOpNumThreads =
    threads, interOpNumThreads = 1, sequential, every graph optimisation;
    each pass is timed around `session.run`.  Before timing, ORT's logits
    are checked against PyTorch's on the same input (max abs difference
    within 1e-3 of the largest |logit|), so a wrong export stops the run.
    Not on --device cuda (only the CPU provider is installed) nor with --no-ort.
Every child gets OMP_NUM_THREADS = the row's thread count.

Sum of isolated layer medians (--isolated, the default; --no-isolated to
skip): `jplprof profile --eval_latency` runs each layer alone on its real
input (the same weights file, through a JPLPROF_ROOT of links; the input is
data/imagenet/chelsea.jpg at 224x224, as profile takes images, not tensors),
10 warm-up calls then --layer-samples timed calls per layer; the median of
each layer's raw samples is summed (and checked against `jplprof process
--stats`).  The table gives that sum and its ratio to jplprof's end-to-end
median.  A few seconds per model and thread count.

Usage: /usr/bin/python3 tests/bench/bench_e2e.py [--models a,b] [--threads 1,2]
           [--rounds 3] [--runs 10] [--layer-samples 30] [--no-isolated] [--no-ort]
           [--out table.md]
Needs the build (`make`), Debian's python3-torchvision, node and
onnxruntime-node in tests/bench/node_modules (`make bench-deps`, i.e.
ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix tests/bench --ignore-scripts).
Not a test.
"""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tests", "bench")
sys.path.insert(0, os.path.join(ROOT, "tools", "convert_weights"))

ORT_WORKER = os.path.join(BENCH, "ort_worker.mjs")
ORT_PACKAGE = os.path.join(BENCH, "node_modules", "onnxruntime-node")
ORT_INSTALL = "make bench-deps  (or: ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix tests/bench --ignore-scripts)"
ONNX_OPSET = 13
ORT_REL_TOL = 1e-3
ISOLATED_IMAGE = os.path.join(ROOT, "data", "imagenet", "chelsea.jpg")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load_torch_model(model, weights):
    """The torchvision module with the converter's weights, in eval mode."""
    import torch
    import torchvision
    import safetensors_io
    tensors, _ = safetensors_io.load(weights)
    net = getattr(torchvision.models, model)()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    return net.eval()


def torch_worker(model, weights, inp, threads, device, runs):
    """Child process: loads the model once, then answers each "run" line on
    stdin with the median of `runs` timed passes (ms) on stdout."""
    import numpy as np  # noqa: F401
    import torch
    import safetensors_io
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    net = load_torch_model(model, weights).to(dev)
    xt = torch.from_numpy(safetensors_io.load(inp)[0]["input"]).to(dev)
    print("ready", flush=True)
    for line in sys.stdin:
        times = []
        with torch.no_grad():
            for i in range(runs + 2):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                net(xt)
                if device == "cuda":
                    torch.cuda.synchronize()
                if i >= 2:
                    times.append((time.perf_counter() - t0) * 1e3)
        print(statistics.median(times), flush=True)


def export_onnx(model, weights, inp, onnx_path, logits_path):
    """Child process: exports the torchvision module (the torch worker's
    weights) to ONNX at batch 1, and writes PyTorch's logits on the input
    (raw float32) for the ORT check."""
    import numpy as np
    import torch
    import safetensors_io
    torch.set_num_threads(1)
    net = load_torch_model(model, weights)
    xt = torch.from_numpy(safetensors_io.load(inp)[0]["input"])
    with torch.no_grad():
        torch.onnx.export(net, xt, onnx_path, opset_version=ONNX_OPSET, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
        net(xt).numpy().astype("<f4").tofile(logits_path)


# PyTorch configurations tried, the faster kept (issue 5: Debian's PyTorch and
# its OpenBLAS pool can fight over the cores).
TORCH_CONFIGS = [("default", {}), ("OPENBLAS_NUM_THREADS=1", {"OPENBLAS_NUM_THREADS": "1"})]


def thread_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected thread counts like 2 or 1,2")
    return values


def run_checked(cmd, env=None):
    """Runs cmd; on failure prints its output and stops."""
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        sys.stderr.write(p.stdout)
        sys.exit("bench_e2e: failed (%d): %s" % (p.returncode, " ".join(cmd)))
    return p.stdout


def isolated_root(tmp, model, weights):
    """A JPLPROF_ROOT for `jplprof profile`, which has no --weights: links to
    the repository's files, and weights/<model>.safetensors -> weights."""
    root = os.path.join(tmp, "root_" + model)
    os.makedirs(os.path.join(root, "weights"), exist_ok=True)
    links = [("AvailableModel.txt", os.path.join(ROOT, "AvailableModel.txt")),
             ("weights/%s.json" % model, os.path.join(ROOT, "weights", model + ".json")),
             ("weights/%s.safetensors" % model, weights)]
    for rel, target in links:
        path = os.path.join(root, rel)
        if not os.path.lexists(path):
            os.symlink(os.path.abspath(target), path)
    return root


def isolated_sum(jplprof, tmp, model, weights, threads, device, samples):
    """Sum over the layers of the median of `samples` isolated calls (ms),
    and the layer count, from `jplprof profile` raw files."""
    root = isolated_root(tmp, model, weights)
    ds = os.path.join(tmp, "isolated_%s_t%d" % (model, threads))
    env = dict(os.environ, JPLPROF_ROOT=root, OMP_NUM_THREADS=str(threads))
    run_checked([jplprof, "profile", "--mode", "0", "--models", model, "--imgs", ISOLATED_IMAGE, "--eval_latency",
                 "--lt_smpl_count", str(samples), "--warmup", "10", "--threads", str(threads), "--device", device,
                 "--out", ds], env)
    run_checked([jplprof, "process", "--dataset", ds, "--modes", "0", "--stats"], env)
    folder = os.path.join(ds, "Mode0", "gpu" if device == "cuda" else "cpu", "latency", model)
    files = glob.glob(os.path.join(folder, "*_sc_%d.json" % samples))
    if len(files) != 1:
        sys.exit("bench_e2e: %s: expected one latency file, found %s" % (folder, files))
    medians = {}
    with open(files[0]) as f:  # one {"<layer>": [seconds, ...]} per line
        for line in f:
            if line.strip():
                (layer, values), = json.loads(line).items()
                assert len(values) == samples, (layer, len(values))
                medians[layer] = statistics.median(values)
    with open(os.path.join(ds, "Processed", "Mode0.json")) as f:
        stats = json.load(f)[model]["gpu" if device == "cuda" else "cpu"]["latency_stats"]
    assert set(stats) == set(medians), (sorted(stats), sorted(medians))
    for layer, m in medians.items():
        assert abs(stats[layer]["median"] - m) <= 1e-9 * m, (layer, stats[layer]["median"], m)
    return 1e3 * sum(medians.values()), len(medians)


def start_ort(node, onnx_path, input_bin, threads, runs, logits_path, env):
    w = subprocess.Popen([node, ORT_WORKER, onnx_path, input_bin, str(threads), str(runs), logits_path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    ready = w.stdout.readline().split()
    if not ready or ready[0] != "ready":
        w.kill()
        sys.exit("bench_e2e: the ONNX Runtime worker did not start (%s)" % " ".join(ready))
    return w, ready[1] if len(ready) > 1 else "?"


def check_ort_logits(model, ref_path, ort_path, threads, printed):
    import numpy as np
    ref = np.fromfile(ref_path, dtype="<f4")
    got = np.fromfile(ort_path, dtype="<f4")
    assert ref.shape == got.shape, (model, ref.shape, got.shape)
    diff = float(np.max(np.abs(ref - got)))
    scale = float(np.max(np.abs(ref)))
    if model not in printed:
        printed.add(model)
        print("%-16s ORT vs PyTorch logits: max abs diff %.3g (max |logit| %.3g, relative %.3g), %d thread(s)" %
              (model, diff, scale, diff / scale, threads), flush=True)
    if not diff <= ORT_REL_TOL * scale:
        sys.exit("bench_e2e: %s: ONNX Runtime's logits differ from PyTorch's by %.3g (max |logit| %.3g): "
                 "wrong export?" % (model, diff, scale))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        m, w, i, t, d, r = sys.argv[2:8]
        return torch_worker(m, w, i, int(t), d, int(r))
    if len(sys.argv) > 1 and sys.argv[1] == "--export-onnx":
        return export_onnx(*sys.argv[2:7])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=None, help="comma-separated (default: AvailableModel.txt)")
    ap.add_argument("--threads", type=thread_list, default=[1, 2],
                    help="comma-separated thread counts, one row each (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--jplprof", default=os.path.join(ROOT, "jplprof"))
    ap.add_argument("--node", default="node", help="the node program for the ONNX Runtime worker")
    ap.add_argument("--no-ort", action="store_true", help="leave ONNX Runtime out")
    ap.add_argument("--isolated", action=argparse.BooleanOptionalAction, default=True,
                    help="sum of isolated per-layer medians from `jplprof profile` (default on)")
    ap.add_argument("--layer-samples", type=int, default=30,
                    help="timed calls per layer for --isolated (profile's --lt_smpl_count, default 30)")
    ap.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    args = ap.parse_args()

    use_ort = not args.no_ort and args.device == "cpu"
    if not args.no_ort and not use_ort:
        print("bench_e2e: ONNX Runtime left out on --device %s (only its CPU provider is installed)" % args.device)
    if use_ort and not os.path.isdir(ORT_PACKAGE):
        sys.exit("bench_e2e: onnxruntime-node is not installed in tests/bench/node_modules: run\n  %s\n"
                 "(or pass --no-ort)" % ORT_INSTALL)
    import numpy as np
    import torch  # only for its version and the GPU's name: the timing runs in workers
    import safetensors_io

    if args.models:
        models = args.models.split(",")
    else:
        with open(os.path.join(ROOT, "AvailableModel.txt")) as f:
            models = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    rows = {}  # (threads, model) -> row
    ort_version = None
    printed = set()
    if args.out and os.path.exists(args.out + ".partial"):
        os.remove(args.out + ".partial")
    with tempfile.TemporaryDirectory() as tmp:
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        inp = os.path.join(tmp, "input.safetensors")
        safetensors_io.save(inp, {"input": x}, {})
        input_bin = os.path.join(tmp, "input.bin")
        x.astype("<f4").tofile(input_bin)
        for model in models:
            weights = os.path.join(tmp, model + ".safetensors")
            run_checked([sys.executable, os.path.join(ROOT, "tools/convert_weights/convert_weights.py"),
                         "--model", model, "--random-init", "--seed", "1", "--out", weights])
            if use_ort:
                onnx_path = os.path.join(tmp, model + ".onnx")
                ref_logits = os.path.join(tmp, model + ".torch_logits.bin")
                run_checked([sys.executable, os.path.abspath(__file__), "--export-onnx", model, weights, inp,
                             onnx_path, ref_logits])
            for threads in args.threads:
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                workers = []
                for name, extra in TORCH_CONFIGS if args.device == "cpu" else TORCH_CONFIGS[:1]:
                    w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", model, weights, inp,
                                          str(threads), args.device, str(args.runs)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         env=dict(env, **extra))
                    assert w.stdout.readline().strip() == "ready"
                    workers.append((name, w, []))
                ort_times = []
                if use_ort:
                    ort_logits = os.path.join(tmp, "%s.ort_logits_t%d.bin" % (model, threads))
                    ort, ort_version = start_ort(args.node, onnx_path, input_bin, threads, args.runs, ort_logits, env)
                    check_ort_logits(model, ref_logits, ort_logits, threads, printed)
                    workers.append(("ort", ort, ort_times))
                ours = []
                for _ in range(args.rounds):
                    out = subprocess.run([args.jplprof, "infer", "--model", model, "--weights", weights,
                                          "--input-tensor", inp, "--threads", str(threads), "--device", args.device,
                                          "--runs", str(args.runs), "--warmup", "2", "--top", "0", "--quiet"],
                                         check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
                    ours.append(float(re.search(r"forward: median ([0-9.]+) ms", out).group(1)))
                    for _, w, times in workers:
                        w.stdin.write("run\n")
                        w.stdin.flush()
                        times.append(float(w.stdout.readline()))
                for _, w, _ in workers:
                    w.stdin.close()
                    w.wait()
                torch_workers = [nw for nw in workers if nw[0] != "ort"]
                best = min(torch_workers, key=lambda nw: statistics.median(nw[2]))
                a, b, config = statistics.median(ours), statistics.median(best[2]), best[0]
                o = statistics.median(ort_times) if use_ort else None
                t_iso = time.monotonic()
                iso = (isolated_sum(args.jplprof, tmp, model, weights, threads, args.device, args.layer_samples)
                       if args.isolated else None)
                t_iso = time.monotonic() - t_iso
                rows[(threads, model)] = row = (model, threads, a, b, config, o, iso)
                line = "%-16s %d thr  jplprof %8.2f ms   pytorch %8.2f ms (%s) x%.2f" % (model, threads, a, b, config,
                                                                                       b / a)
                if o is not None:
                    line += "   ort %8.2f ms x%.2f" % (o, o / a)
                if iso is not None:
                    line += "   isolated sum %8.2f ms (%d layers, %.1f s) x%.2f" % (iso[0], iso[1], t_iso, iso[0] / a)
                print(line, flush=True)
                if args.out:  # written as it goes, so an interrupted run keeps its rows
                    with open(args.out + ".partial", "a") as f:
                        f.write(format_row(row) + "\n")

    cols = ["model", "threads", "jplprof (ms)", "PyTorch %s (ms)" % torch.__version__, "PyTorch / jplprof",
            "PyTorch setting kept"]
    align = ["---", "---:", "---:", "---:", "---:", "---"]
    if use_ort:
        cols += ["ONNX Runtime %s (ms)" % ort_version, "ORT / jplprof"]
        align += ["---:", "---:"]
    if args.isolated:
        cols += ["sum of isolated layer medians (ms)", "sum / end-to-end"]
        align += ["---:", "---:"]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join(align) + " |"]
    lines += [format_row(rows[(t, m)]) for t in args.threads for m in models]
    dev_desc = torch.cuda.get_device_name(0) if args.device == "cuda" else cpu_name()
    header = ("Device %s: %s, %s thread(s), batch 1, 224x224, median of %d rounds x %d runs, %s.\n" %
              (args.device, dev_desc, ",".join(map(str, args.threads)), args.rounds, args.runs,
               time.strftime("%Y-%m-%d")))
    header += "PyTorch %s eager (torch.no_grad)." % torch.__version__
    if use_ort:
        header += (" ONNX Runtime %s (npm onnxruntime-node, CPU execution provider, graph optimisation 'all', "
                   "intra-op threads = threads, inter-op 1), model exported by torch.onnx.export, opset %d." %
                   (ort_version, ONNX_OPSET))
    if args.isolated:
        header += (" Isolated layers: `jplprof profile`, each layer alone on its real input (chelsea.jpg), "
                   "10 warm-up + %d timed calls, medians summed over the layers." % args.layer_samples)
    table = header + "\n\n" + "\n".join(lines) + "\n"
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
        os.remove(args.out + ".partial")


def format_row(row):
    model, threads, a, b, config, o, iso = row
    cells = [model, str(threads), "%.2f" % a, "%.2f" % b, "%.2f" % (b / a), config]
    if o is not None:
        cells += ["%.2f" % o, "%.2f" % (o / a)]
    if iso is not None:
        cells += ["%.2f" % iso[0], "%.2f" % (iso[0] / a)]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
