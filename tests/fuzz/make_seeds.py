"""Writes the fuzz harnesses' seed corpora (tests/fuzz/corpus/<harness>/):
small valid inputs of each format, made from the repository's own files and
from numpy/PIL-free code, so that `python3 tests/fuzz/make_seeds.py` gives
the committed seeds again.  Each seed is a few hundred bytes to a few KiB:
libFuzzer's default -max_len follows the largest seed.
"""
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(harness, name, blob):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob if isinstance(blob, bytes) else blob.encode())


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        blob = struct.pack("<%df" % n, *[0.5 * i for i in range(n)])
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def small_graph(model, n_ops):
    with open(os.path.join(ROOT, "weights", model + ".json")) as f:
        g = json.load(f)
    ops = g["ops"][:n_ops]
    g["ops"] = ops
    g["output"] = ops[-1]["name"]
    used = sorted({op["layer"] for op in ops})
    g["layers"] = [l for l in g["layers"] if l["index"] in used]
    return json.dumps(g, separators=(",", ":"))


def png(w, h, colour_type, rows):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(w, h):
    row = bytes((x * 40) % 256 for x in range(w * 3)) + b"\0" * ((4 - w * 3 % 4) % 4)
    pixels = row * h
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) +
            struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) + pixels)


def main():
    put("safetensors", "two_tensors", safetensors([("conv.weight", [2, 1, 2, 2]), ("conv.bias", [2])],
                                                  {"model": "tiny", "sha256": "00"}))
    put("safetensors", "scalar_and_empty", safetensors([("s", []), ("e", [0, 3])]))
    put("safetensors", "no_tensor", safetensors([]))

    put("graph", "alexnet_first_ops", small_graph("alexnet", 6))
    put("graph", "resnet18_first_block", small_graph("resnet18", 12))
    put("graph", "efficientnet_b0_first_ops", small_graph("efficientnet_b0", 14))

    for name in sorted(os.listdir(os.path.join(ROOT, "tests", "data", "tegrastats"))):
        with open(os.path.join(ROOT, "tests", "data", "tegrastats", name)) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        put("tegrastats", name.replace(".txt", "") + "_line", lines[0] + "\n")
        put("tegrastats", name.replace(".txt", "") + "_log", "\n".join(lines[:4]) + "\n")

    raw = {"format": "jplprof-power-raw", "version": 1, "mode": 0, "device": "cpu", "network": "alexnet",
           "image": "chelsea.jpg", "power_source": "tegrastats", "device_rail": "VDD_SYS_CPU",
           "tgr_interval_ms": 20, "tgr_smpl_duration_s": 0.4, "tgr_smpl_boundary_s": 0.1,
           "window_rule": "start_ns + tgr_smpl_boundary_s <= t_ns <= end_ns - tgr_smpl_boundary_s",
           "layers": [{"layer": "0", "segment": 0, "start_ns": 0, "end_ns": 400000000, "calls": 12},
                      {"layer": "1", "segment": 1, "start_ns": 1000, "end_ns": 300000000, "calls": 3}],
           "segments": [{"clock": "CLOCK_MONOTONIC", "t0_ns": 1000000000,
                         "params": [{"name": "VDD_SYS_CPU", "unit": "mW"}, {"name": "RAM", "unit": "MB"}],
                         "samples": [[t * 20000000, 1000 + t, None if t % 3 == 0 else 512.5] for t in range(24)]},
                        {"clock": "CLOCK_MONOTONIC", "t0_ns": 9000000000,
                         "params": [{"name": "VDD_SYS_CPU", "unit": "mW"}],
                         "samples": [[t * 20000000, 900 + t] for t in range(16)]}]}
    put("power_raw", "two_segments", json.dumps(raw))
    # found by hand while writing the harness: a boundary of 1e300 s
    # overflowed the window arithmetic (int64) before the loader bounded it
    raw["tgr_smpl_boundary_s"] = 1e300
    put("power_raw", "boundary_1e300", json.dumps(raw))

    # profiler/calibration.h's example, and the shapes its checks tell apart
    rail = {"tau_s": 0.43, "fits": True, "why": "single exponential", "fit_rms_residual": 2.1, "noise": 2.0,
            "lsb": 1, "update_period_s": 0.02, "delivery_interval_s": 0.021, "idle_mw": 1200, "busy_mw": 3400}
    cal = {"format": "jplprof-calibration", "version": 1, "created": "2026-12-08T03:00:00Z", "board": "tx2",
           "power_source": "tegrastats", "describe": "fuzz seed",
           "protocol": {"periods": 4, "half_period_s": 3, "threads": 6},
           "rails": {"VDD_SYS_CPU": rail, "VDD_SYS_GPU": dict(rail, tau_s=0.0, fits=False, why="flat")}}
    put("calibration", "tx2_two_rails", json.dumps(cal))
    put("calibration", "one_rail_compact", json.dumps(dict(cal, rails={"VDD_IN": {"tau_s": 1e-3, "fits": True}}),
                                                      separators=(",", ":")))
    put("calibration", "duplicate_key", json.dumps(cal)[:-1] + ', "board": "orin"}')

    # first byte: bit 0 power (1) or latency (0), bit 1 --params all, bit 2 --stats
    put("seed", "latency", b"\x00" + b'{"0": [0.001, 0.002, 0.0015]}\n{"1": [0.01, 0.011, 0.012]}\n')
    put("seed", "latency_stats", b"\x04" + b'{"0": [0.001]}\n\n{"conv1": [1e-05, 2e-05]}\n')
    put("seed", "power", b"\x01" + b'{"0": {"VDD_SYS_CPU": [1000, 1002], "VDD_SYS_GPU": [150, 152]}}\n'
                                   b'{"1": {"VDD_SYS_CPU": [990], "CPU": [[1, 2], [3, 4]]}}\n')
    put("seed", "power_all_stats", b"\x07" + b'{"0": {"VDD_SYS_CPU": [1000, null], "RAM": [1404, 1405]}}\n')

    with open(os.path.join(ROOT, "data", "imagenet", "chelsea.jpg"), "rb") as f:
        jpeg = f.read()
    put("image", "chelsea_head.jpg", jpeg[:2048] + b"\xff\xd9")
    put("image", "rgb_4x3.png", png(4, 3, 2, [bytes(range(i * 12, i * 12 + 12)) for i in range(3)]))
    put("image", "grey_alpha_2x2.png", png(2, 2, 4, [b"\x10\xff\x20\x80", b"\x30\x00\x40\xff"]))
    put("image", "bgr_3x2.bmp", bmp(3, 2))
    put("image", "pgm_2x2.pgm", b"P5\n2 2\n255\n\x00\x40\x80\xff")

    # first byte picks the subcommand (infer, compare, profile, layers, process); NUL separates words
    def cli(which, *words):
        return bytes([which]) + b"\0".join(w.encode() for w in words)
    put("cli", "infer", cli(0, "--model", "resnet18", "--runs", "2", "--threads", "1", "--granularity", "op",
                            "--image", "x.jpg", "--dump-layers", "d.safetensors"))
    put("cli", "compare", cli(1, "--model", "resnet50", "--layer", "5", "--impls", "a,b", "--eval_tgr",
                              "--tgr_smpl_duration=0.5", "--rail", "VDD_CPU_CV"))
    put("cli", "profile", cli(2, "--mode", "0", "--models", "alexnet,resnet18", "--tgr_params", "RAM", "VDD_SYS_GPU",
                              "--eval_tgr", "--tgr_smpl_duration", "0.4", "--tgr_smpl_boundry", "0.1",
                              "--lt_smpl_count", "5", "--resume"))
    put("cli", "layers", cli(3, "resnet18", "--granularity", "op", "--input-size", "96", "--device", "cpu",
                             "--no-fuse"))
    put("cli", "process", cli(4, "--modes", "0", "1", "--params", "rail,VDD_SYS_SOC", "--stats",
                              "--tgr_smpl_boundary", "0.2", "--output_file_root", "out"))


if __name__ == "__main__":
    main()
