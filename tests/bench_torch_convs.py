#!/usr/bin/env python3
"""bench_torch_convs.py: PyTorch's time for the layers of tests/bench_cpu_kernels.c.

Usage: /usr/bin/python3 tests/bench_torch_convs.py [--threads N] [--filter TEXT] [--min-ms MS]
                                                   [--fused]

Times F.conv2d alone (eager PyTorch runs batch norm and the activation as
separate ops; --fused adds them, which is what a torchvision model executes),
warm-up first, then repeatedly for at least --min-ms; prints the median and
the minimum, like the C benchmark, so the two outputs line up.
"""
import argparse
import time

import torch
import torch.nn.functional as F

# name, c_in, c_out, hw, k, s, p, groups, act: the same list as bench_cpu_kernels.c
LAYERS = [
    ("r50 stem 7x7 s2 3->64 @224", 3, 64, 224, 7, 2, 3, 1, "relu"),
    ("r50 l1 3x3 64->64 @56", 64, 64, 56, 3, 1, 1, 1, "relu"),
    ("r50 l2 3x3 s2 128->128 @56", 128, 128, 56, 3, 2, 1, 1, "relu"),
    ("r50 l2 3x3 128->128 @28", 128, 128, 28, 3, 1, 1, 1, "relu"),
    ("r50 l3 3x3 s2 256->256 @28", 256, 256, 28, 3, 2, 1, 1, "relu"),
    ("r50 l3 3x3 256->256 @14", 256, 256, 14, 3, 1, 1, 1, "relu"),
    ("r50 l4 3x3 s2 512->512 @14", 512, 512, 14, 3, 2, 1, 1, "relu"),
    ("r50 l4 3x3 512->512 @7", 512, 512, 7, 3, 1, 1, 1, "relu"),
    ("r50 l1 1x1 64->256 @56", 64, 256, 56, 1, 1, 0, 1, "none"),
    ("r50 l1 1x1 256->64 @56", 256, 64, 56, 1, 1, 0, 1, "relu"),
    ("r50 l2 1x1 256->128 @56", 256, 128, 56, 1, 1, 0, 1, "relu"),
    ("r50 l2 1x1 512->128 @28", 512, 128, 28, 1, 1, 0, 1, "relu"),
    ("r50 l2 1x1 128->512 @28", 128, 512, 28, 1, 1, 0, 1, "none"),
    ("r50 l3 1x1 1024->256 @14", 1024, 256, 14, 1, 1, 0, 1, "relu"),
    ("r50 l3 1x1 256->1024 @14", 256, 1024, 14, 1, 1, 0, 1, "none"),
    ("r50 l4 1x1 2048->512 @7", 2048, 512, 7, 1, 1, 0, 1, "relu"),
    ("r50 l4 1x1 512->2048 @7", 512, 2048, 7, 1, 1, 0, 1, "none"),
    ("r50 l2 down 1x1 s2 256->512 @56", 256, 512, 56, 1, 2, 0, 1, "none"),
    ("r50 l3 down 1x1 s2 512->1024 @28", 512, 1024, 28, 1, 2, 0, 1, "none"),
    ("r50 l4 down 1x1 s2 1024->2048 @14", 1024, 2048, 14, 1, 2, 0, 1, "none"),
    ("b0 stem 3x3 s2 3->32 @224", 3, 32, 224, 3, 2, 1, 1, "silu"),
    ("b0 dw 3x3 c32 @112", 32, 32, 112, 3, 1, 1, 32, "silu"),
    ("b0 dw 3x3 s2 c96 @112", 96, 96, 112, 3, 2, 1, 96, "silu"),
    ("b0 dw 3x3 c144 @56", 144, 144, 56, 3, 1, 1, 144, "silu"),
    ("b0 dw 5x5 s2 c144 @56", 144, 144, 56, 5, 2, 2, 144, "silu"),
    ("b0 dw 5x5 c240 @28", 240, 240, 28, 5, 1, 2, 240, "silu"),
    ("b0 dw 3x3 s2 c240 @28", 240, 240, 28, 3, 2, 1, 240, "silu"),
    ("b0 dw 3x3 c480 @14", 480, 480, 14, 3, 1, 1, 480, "silu"),
    ("b0 dw 5x5 c672 @14", 672, 672, 14, 5, 1, 2, 672, "silu"),
    ("b0 dw 5x5 s2 c672 @14", 672, 672, 14, 5, 2, 2, 672, "silu"),
    ("b0 dw 5x5 c1152 @7", 1152, 1152, 7, 5, 1, 2, 1152, "silu"),
    ("b0 1x1 16->96 @112", 16, 96, 112, 1, 1, 0, 1, "silu"),
    ("b0 1x1 96->24 @56", 96, 24, 56, 1, 1, 0, 1, "none"),
    ("b0 1x1 240->40 @28", 240, 40, 28, 1, 1, 0, 1, "none"),
    ("b0 1x1 1152->192 @7", 1152, 192, 7, 1, 1, 0, 1, "none"),
    ("b0 head 1x1 320->1280 @7", 320, 1280, 7, 1, 1, 0, 1, "silu"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--min-ms", type=float, default=200.0)
    ap.add_argument("--fused", action="store_true",
                    help="time conv + batch norm + activation, as the model runs them")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"{'layer':36s} {'kernel':24s} {'median':>12s} {'rate':>15s} {'min':>12s}")
    for name, c_in, c_out, hw, k, s, p, g, act in LAYERS:
        if args.filter and args.filter not in name:
            continue
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(c_in, c_out, k, s, p, groups=g, bias=False).eval()
        bn = torch.nn.BatchNorm2d(c_out).eval()
        actf = {"relu": torch.relu, "silu": F.silu, "none": lambda t: t}[act]
        x = torch.randn(1, c_in, hw, hw)
        if args.fused:
            def fn():
                return actf(bn(conv(x)))
        else:
            def fn():
                return conv(x)
        with torch.no_grad():
            for _ in range(3):
                y = fn()
            ts = []
            start = time.perf_counter()
            while len(ts) < 5 or time.perf_counter() - start < args.min_ms * 1e-3:
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
        ts.sort()
        o = y.shape[-1]
        flops = 2.0 * c_out * o * o * (c_in // g) * k * k
        med = ts[len(ts) // 2]
        label = "torch conv+bn+act" if args.fused else "torch F.conv2d"
        print(f"{name:36s} {label:24s} {med * 1e3:9.3f} ms {flops / med * 1e-9:7.1f} GFLOP/s "
              f"{ts[0] * 1e3:9.3f} ms", flush=True)


if __name__ == "__main__":
    main()
