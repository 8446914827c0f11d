"""Convolutions against the machine's measured FMA peak (issue 5's target:
ResNet-50's convolution layers at >= 75 % of peak).

Runs `jplprof compare` on every convolution of a model (synthetic weights and
input, the given threads), which measures the peak first (register-only FMA
loop, see `jplprof compare`) and times each kernel on the op's real input;
prints, per convolution, the fastest correct kernel and its share of the
peak, then a summary.  Winograd's GFLOP/s count the direct algorithm's
multiply-adds (2 x MACs / time), so it can exceed 100 %.

Usage: /usr/bin/python3 tests/bench/conv_peak.py [--model resnet50] [--threads 2]
           [--runs 30] [--impls packed_gemm,winograd,im2col_blas,gemm_1x1,depthwise,direct]
Needs the build (`make`).  Not a test.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--impls", default="packed_gemm,winograd,im2col_blas,gemm_1x1,depthwise,direct")
    ap.add_argument("--target", type=float, default=75.0, help="percent of peak (default 75)")
    ap.add_argument("--jplprof", default=os.path.join(ROOT, "jplprof"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "compare.json")
        r = subprocess.run([a.jplprof, "compare", "--model", a.model, "--synthetic", "--threads", str(a.threads),
                            "--runs", str(a.runs), "--impls", a.impls, "--json", js],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit("jplprof compare failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
        doc = json.load(open(js))
    peak = doc["peak_gflops"]
    best = {}
    for row in doc["results"]:
        if row["type"] == "conv2d" and row["pass"] and (
                row["op"] not in best or row["median_s"] < best[row["op"]]["median_s"]):
            best[row["op"]] = row
    print("%s, %d threads: peak %.1f GFLOP/s (%s)\n" % (a.model, a.threads, peak, doc["peak_method"]))
    print("| conv | output | fastest kernel | median (ms) | GFLOP/s | % of peak |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for op, row in best.items():
        print("| %s | %s | %s | %.4f | %.1f | %.1f |" % (op, row["output"], row["kernel"], row["median_s"] * 1e3,
                                                     row["gflops"], row["pct_of_peak"]))
    pct = [row["pct_of_peak"] for row in best.values()]
    below = [op for op, row in best.items() if row["pct_of_peak"] < a.target]
    macs = sum(row["macs"] for row in best.values())
    secs = sum(row["median_s"] for row in best.values())
    print("\n%d convolutions: fastest kernel at min %.1f %%, median %.1f %%, max %.1f %% of peak; "
          "all together %.2f ms = %.1f %% of peak; below %.0f %%: %s" %
          (len(pct), min(pct), statistics.median(pct), max(pct), secs * 1e3, 100 * 2 * macs / secs / 1e9 / peak,
           a.target, ", ".join(below) or "none"))


if __name__ == "__main__":
    main()
