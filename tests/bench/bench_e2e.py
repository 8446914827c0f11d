"""End-to-end benchmark: jplprof against PyTorch eager on the same weights.

For each model: random-init weights from the converter (the same file for
both), batch 1, 224x224, the same number of threads.  Rounds alternate
between the two engines (jplprof, then PyTorch, then jplprof...) so that
drift of the machine affects both alike; each round takes the median of
--runs timed passes after warm-up, and the table reports the median over the
rounds.  PyTorch runs in worker processes (model loaded once) under torch.no_grad()
with torch.set_num_threads(threads), once as installed and once with
OPENBLAS_NUM_THREADS=1 (Debian's PyTorch and its OpenBLAS pool can fight
over the cores); the faster of the two is kept and named in the table.
jplprof runs through `jplprof infer --quiet` (its end-to-end median, timed
without per-layer hooks).

Usage: /usr/bin/python3 tests/bench/bench_e2e.py [--models a,b] [--threads 2]
           [--rounds 3] [--runs 10] [--out docs/benchmarks.md]
Needs the build (`make`) and Debian's python3-torchvision.  Not a test.
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "convert_weights"))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def torch_worker(model, weights, inp, threads, device, runs):
    """Child process: loads the model once, then answers each "run" line on
    stdin with the median of `runs` timed passes (ms) on stdout."""
    import numpy as np  # noqa: F401
    import torch
    import torchvision
    import safetensors_io
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    tensors, _ = safetensors_io.load(weights)
    net = getattr(torchvision.models, model)()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    net.eval().to(dev)
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


# PyTorch configurations tried, the faster kept (issue 5: Debian's PyTorch and
# its OpenBLAS pool can fight over the cores).
TORCH_CONFIGS = [("default", {}), ("OPENBLAS_NUM_THREADS=1", {"OPENBLAS_NUM_THREADS": "1"})]


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        m, w, i, t, d, r = sys.argv[2:8]
        return torch_worker(m, w, i, int(t), d, int(r))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=None, help="comma-separated (default: AvailableModel.txt)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--jplprof", default=os.path.join(ROOT, "jplprof"))
    ap.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch  # only for its version and the GPU's name: the timing runs in workers
    import safetensors_io

    if args.models:
        models = args.models.split(",")
    else:
        with open(os.path.join(ROOT, "AvailableModel.txt")) as f:
            models = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
        inp = os.path.join(tmp, "input.safetensors")
        safetensors_io.save(inp, {"input": x}, {})
        for model in models:
            weights = os.path.join(tmp, model + ".safetensors")
            subprocess.run([sys.executable, os.path.join(ROOT, "tools/convert_weights/convert_weights.py"),
                            "--model", model, "--random-init", "--seed", "1", "--out", weights],
                           check=True, stdout=subprocess.DEVNULL)
            workers = []
            for name, extra in TORCH_CONFIGS if args.device == "cpu" else TORCH_CONFIGS[:1]:
                w = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", model, weights, inp,
                                      str(args.threads), args.device, str(args.runs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, **extra))
                assert w.stdout.readline().strip() == "ready"
                workers.append((name, w, []))
            ours = []
            for _ in range(args.rounds):
                out = subprocess.run([args.jplprof, "infer", "--model", model, "--weights", weights,
                                      "--input-tensor", inp, "--threads", str(args.threads), "--device", args.device,
                                      "--runs", str(args.runs), "--warmup", "2", "--top", "0", "--quiet"],
                                     check=True, stdout=subprocess.PIPE, text=True).stdout
                ours.append(float(re.search(r"forward: median ([0-9.]+) ms", out).group(1)))
                for _, w, times in workers:
                    w.stdin.write("run\n")
                    w.stdin.flush()
                    times.append(float(w.stdout.readline()))
            for _, w, _ in workers:
                w.stdin.close()
                w.wait()
            best = min(workers, key=lambda nw: statistics.median(nw[2]))
            theirs, config = best[2], best[0]
            a, b = statistics.median(ours), statistics.median(theirs)
            rows.append((model, a, b, config))
            print("%-16s jplprof %9.2f ms   pytorch %9.2f ms (%s)   ratio %.2f" % (model, a, b, config, b / a),
                  flush=True)
            if args.out:  # written as it goes, so an interrupted run keeps its rows
                with open(args.out + ".partial", "a") as f:
                    f.write("| %s | %.2f | %.2f | %.2f |\n" % (model, a, b, b / a))

    dev_desc = torch.cuda.get_device_name(0) if args.device == "cuda" else cpu_name()
    lines = ["| model | jplprof (ms) | PyTorch %s (ms) | PyTorch / jplprof | PyTorch setting kept |" % torch.__version__,
             "| --- | ---: | ---: | ---: | --- |"]
    lines += ["| %s | %.2f | %.2f | %.2f | %s |" % (m, a, b, b / a, c) for m, a, b, c in rows]
    header = ("Device %s: %s, %d thread(s), batch 1, 224x224, median of %d rounds x %d runs, %s.\n" %
              (args.device, dev_desc, args.threads, args.rounds, args.runs, time.strftime("%Y-%m-%d")))
    table = header + "\n" + "\n".join(lines) + "\n"
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
