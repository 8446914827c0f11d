"""`jplprof profile` and `jplprof process` end to end, with the fake tegrastats.

The fake prints real TX2-format lines whose rail values change from line to
line and logs what it printed with the CLOCK_MONOTONIC time it printed it
(FAKE_TEGRASTATS_LOG); the test recomputes, from that log alone and the
window markers in the raw file, what each layer's mean power must be, and
checks the processed JSON against it.  Then the failures: tegrastats missing,
exiting mid-run, printing garbage; the output folder not writable; Ctrl-C
(SIGINT) and kill -9 followed by --resume.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh), and for
tests/cross/aarch64.sh (jplprof under qemu, the fake native):
  JP_TEST_PROFILE_FORMAT  the fake's line format (fake_tegrastats --format;
                          default tx2), e.g. orin-nx for JetPack 6;
  JP_TEST_PROFILE_MODELS  the profiled models (default alexnet,resnet18);
  JP_TEST_PROFILE_QUICK=1 the profile + process checks only, not the
                          failure, Ctrl-C and --resume cases;
  JP_TEST_EDGE_NS         see EDGE_NS below;
  JP_TEST_MODELS_ALL=1    every model of issue 12 end to end (ISSUE12_MODELS below).
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
BIN_DIR = os.environ.get("JP_TEST_BIN_DIR", os.path.join(ROOT, "build", "tests"))
FAKE = os.path.abspath(os.path.join(BIN_DIR, "fake_tegrastats"))
# A line printed this close to a window edge may fall either side: it is
# stamped when jplprof reads it, after the fake logged it (the pipe and the
# scheduler: milliseconds on a loaded machine; lines come 20 ms apart).
# Under qemu (tests/cross/aarch64.sh) the reading thread runs emulated and
# later: JP_TEST_EDGE_NS widens this there.
EDGE_NS = int(os.environ.get("JP_TEST_EDGE_NS", "10000000"))
FORMAT = os.environ.get("JP_TEST_PROFILE_FORMAT", "tx2")
# The rail the profiler must pick for the CPU from each format's rails alone
# (no device tree on a test machine: the first row of the board table whose
# rail is there, profiler/power_board.c).
CPU_RAIL = {"tx2": "VDD_SYS_CPU", "xavier": "CPU", "jp5": "VDD_CPU_CV", "orin-nx": "VDD_CPU_GPU_CV",
            "jp7": "VDD_CPU_SOC_MSS"}[FORMAT]
MODELS = os.environ.get("JP_TEST_PROFILE_MODELS", "alexnet,resnet18").split(",")
N_LAYERS = {"alexnet": 21, "resnet18": 14, "efficientnet_b0": 12}
QUICK = os.environ.get("JP_TEST_PROFILE_QUICK", "0") == "1"
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS profile/%s" % name)
    else:
        failures += 1
        print("FAIL profile/%s: %s" % (name, why))
    sys.stdout.flush()


def run(args, env=None, timeout=300):
    return subprocess.run([JPLPROF] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, **(env or {})), timeout=timeout)


def seed_lines(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                out.update(json.loads(line))
    return out


def emitted(log_path, rail):
    rows = []
    with open(log_path) as f:
        for line in f:
            parts = line.split()
            values = dict(p.split("=") for p in parts[1:])
            rows.append((int(parts[0]), float(values[rail])))
    return rows


def seed_process_power(path, rail):
    """The seed's processData.py on one power file, line for line: f and b
    from the name, f x b values dropped at each end by index, the mean of
    the rest.  (The seed's int(b) is float(b) here, for the tests'
    fractional boundaries; int(f * b) is the same for a whole b.)"""
    name_split = os.path.basename(path)[:-5].split("_")
    elim = int(int(name_split[2]) * float(name_split[4]))
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                break
            for layer, stats in json.loads(line).items():
                window = stats[rail][elim:-elim]
                out[layer] = float(sum(window)) / len(window)
    return out


def window_means(rows, start, end, boundary):
    """The mean of the fake's values inside [start+b, end-b], with each edge
    moved by up to EDGE_NS either way: every mean a correct profiler may give."""
    means = set()
    shifts = [EDGE_NS * k // 4 for k in range(-4, 5)]  # steps finer than the 20 ms between lines
    for d0 in shifts:
        for d1 in shifts:
            vals = [v for t, v in rows if start + boundary + d0 <= t <= end - boundary + d1]
            if vals:
                means.add(round(sum(vals) / len(vals), 6))
    return means


def no_temp_files(root):
    return [p for p in glob.glob(os.path.join(root, "**", "*"), recursive=True) if ".tmp." in p]


def main():
    tmp = tempfile.mkdtemp()
    try:
        ds = os.path.join(tmp, "ds")
        log = os.path.join(tmp, "emitted.log")
        trace = os.path.join(tmp, "trace.json")
        env = {"FAKE_TEGRASTATS_VARY": "1", "FAKE_TEGRASTATS_LOG": log, "FAKE_TEGRASTATS_FORMAT": FORMAT}
        common = ["--mode", "0", "--imgs", "chelsea.jpg", "--power-source", "tegrastats", "--tegrastats", FAKE,
                  "--threads", "2", "--warmup", "1", "--cooldown", "0.05"]
        r = run(["profile"] + common + ["--models", ",".join(MODELS), "--eval_tgr", "--eval_latency",
                                        "--tgr_smpl_duration", "0.4", "--tgr_smpl_boundary", "0.1",
                                        "--tgr_interval", "20", "--lt_smpl_count", "5", "--out", ds,
                                        "--trace", trace], env=env)
        check("profile with the fake tegrastats (%s format) runs" % FORMAT, r.returncode == 0, r.stderr[-2000:])
        r2 = run(["process", "--dataset", ds, "--stats"])
        check("process runs", r2.returncode == 0, r2.stderr[-2000:])
        processed = json.load(open(os.path.join(ds, "Processed", "Mode0.json")))
        n_layers = {m: N_LAYERS[m] for m in MODELS}
        shape_ok = set(processed) == set(n_layers)
        for net, n in n_layers.items():
            cpu = processed.get(net, {}).get("cpu", {})
            shape_ok &= set(cpu.get("power", {})) == {str(i) for i in range(n)}
            shape_ok &= set(cpu.get("latency", {})) == {str(i) for i in range(n)}
            shape_ok &= all(set(v) == {CPU_RAIL} for v in cpu.get("power", {}).values())
            shape_ok &= all(isinstance(v, float) and 0 < v < 10 for v in cpu.get("latency", {}).values())
        check("processed JSON has the seed's shape (network/cpu/power|latency/layer)", shape_ok,
              json.dumps(processed)[:600])

        rows = emitted(log, CPU_RAIL)
        bad = []
        for net in n_layers:
            raw = json.load(open(os.path.join(ds, "Mode0", "cpu", "power", net, "chelsea_power_raw.json")))
            seg = raw["segments"]
            for w in raw["layers"]:
                t0 = seg[w["segment"]]["t0_ns"]
                want = window_means(rows, t0 + w["start_ns"], t0 + w["end_ns"], 100_000_000)
                got = round(processed[net]["cpu"]["power"][w["layer"]][CPU_RAIL], 6)
                if got not in want:
                    bad.append("%s layer %s: %s, the fake emitted %s" % (net, w["layer"], got, sorted(want)))
                if w["calls"] < 1:
                    bad.append("%s layer %s: no call in the window" % (net, w["layer"]))
        check("each layer's power is the mean of what the fake emitted in its window", not bad, "; ".join(bad[:5]))

        first = MODELS[0]
        seed_lat = os.path.join(ds, "Mode0", "cpu", "latency", first, "chelsea_sc_5.json")
        seed_pow = os.path.join(ds, "Mode0", "cpu", "power", first, "chelsea_sf_50_sb_0.1.json")
        ok = os.path.exists(seed_lat) and os.path.exists(seed_pow)
        if ok:
            lat = seed_lines(seed_lat)
            ok = set(lat) == {str(i) for i in range(N_LAYERS[first])} and all(len(v) == 5 for v in lat.values())
        check("raw files in the seed's layout and format", ok, "%s / %s" % (seed_lat, seed_pow))

        # The seed's window: each layer ran duration + 2 x boundary (0.6 s),
        # after a cooldown; its processData.py rule on the _sf_ file gives
        # the numbers jplprof process gives.
        bad = []
        for net in n_layers:
            raw = json.load(open(os.path.join(ds, "Mode0", "cpu", "power", net, "chelsea_power_raw.json")))
            for w in raw["layers"]:
                if not (w["end_ns"] - w["start_ns"] >= 600_000_000 and w["start_ns"] - w["idle_start_ns"] >= 50_000_000):
                    bad.append("%s layer %s: loop %d ns after %d ns idle" % (
                        net, w["layer"], w["end_ns"] - w["start_ns"], w["start_ns"] - w["idle_start_ns"]))
            seed = seed_process_power(os.path.join(ds, "Mode0", "cpu", "power", net, "chelsea_sf_50_sb_0.1.json"),
                                      CPU_RAIL)
            ours = {k: v[CPU_RAIL] for k, v in processed[net]["cpu"]["power"].items()}
            if set(seed) != set(ours):
                bad.append("%s: layers %s against %s" % (net, sorted(seed), sorted(ours)))
            bad += ["%s layer %s: the seed's rule gives %r, jplprof process %r" % (net, k, seed[k], ours[k])
                    for k in seed if k in ours and seed[k] != ours[k]]
        check("loop = duration + 2 x boundary after the cooldown; the seed's processData.py rule on the _sf_ file "
              "equals jplprof process", not bad, "; ".join(bad[:5]))
        manifests = glob.glob(os.path.join(ds, ".jplprof", "manifests", "Mode0_cpu_*.json"))
        ok = len(manifests) == 1
        if ok:
            m = json.load(open(manifests[0]))
            ok = (m["power"]["device_rail"] == CPU_RAIL and m["power"]["source"] == "tegrastats" and
                  m["power"]["interval_delivered_ms"] > 0 and len(m["models"]) == len(MODELS) and
                  len(m["models"][0]["layers"]) == N_LAYERS[first] and m["models"][0]["weights"]["kind"] in ("synthetic",
                                                                                              "converted") and
                  all(len(l["kernel_choices"]) == len(l["kernels"]) > 0 for l in m["models"][0]["layers"]))
        check("manifest records the rail, the source, the delivered interval and the layer table with kernels", ok,
              manifests)
        try:
            events = json.load(open(trace))["traceEvents"]
            slices = [e for e in events if e.get("ph") == "X"]
            counters = [e for e in events if e.get("ph") == "C"]
            n_windows = sum(n_layers.values())
            check("trace has one slice per layer window and power counters",
                  len(slices) == n_windows and len(counters) > n_windows,
                  "%d slices, %d counters" % (len(slices), len(counters)))
        except (OSError, ValueError, KeyError) as e:
            check("trace has one slice per layer window and power counters", False, str(e))
        check("no temporary file left", not no_temp_files(ds), no_temp_files(ds))
        if QUICK or FORMAT != "tx2":  # the cases below name TX2 rails
            return 1 if failures else 0

        # The seed's space-separated --tgr_params; the device rail is always kept.
        ds2 = os.path.join(tmp, "ds2")
        r = run(["profile"] + common + ["--models", "alexnet", "--eval_tgr", "--tgr_smpl_duration", "0.1",
                                        "--tgr_smpl_boundary", "0.02", "--tgr_params", "RAM", "VDD_SYS_GPU",
                                        "--out", ds2])
        ok = r.returncode == 0
        if ok:
            p = seed_lines(os.path.join(ds2, "Mode0", "cpu", "power", "alexnet", "chelsea_sf_50_sb_0.02.json"))
            ok = all(set(v) == {"RAM", "VDD_SYS_GPU", "VDD_SYS_CPU"} for v in p.values()) and len(p) == 21
        check("--tgr_params RAM VDD_SYS_GPU (space-separated) keeps those and the device rail", ok, r.stderr[-800:])

        # --repeats 3: three windows per layer in a shuffled order; --stats
        # gives an interval that holds the fake's value (constant: 306 mW on
        # VDD_SYS_CPU), energy per call, latency inside passes, the closure.
        ds5 = os.path.join(tmp, "ds5")
        r = run(["profile"] + common + ["--models", "resnet18", "--eval_tgr", "--eval_latency", "--repeats", "3",
                                        "--tgr_smpl_duration", "0.1", "--tgr_smpl_boundary", "0.04",
                                        "--lt_smpl_count", "5", "--passes", "3", "--out", ds5])
        r2 = run(["process", "--dataset", ds5, "--stats"]) if r.returncode == 0 else r
        ok = r.returncode == 0 and r2.returncode == 0
        why = r.stderr[-600:] + r2.stderr[-300:]
        if ok:
            raw = json.load(open(os.path.join(ds5, "Mode0", "cpu", "power", "resnet18", "chelsea_power_raw.json")))
            reps = sorted((w["layer"], w["repeat"]) for w in raw["layers"])
            order = [int(w["layer"]) for w in raw["layers"]]
            d = json.load(open(os.path.join(ds5, "Processed", "Mode0.json")))["resnet18"]["cpu"]
            st = d["power_stats"]
            cl = d["closure"]
            ok = (reps == sorted((str(l), k) for l in range(14) for k in range(3)) and order != sorted(order) and
                  all(st[str(l)]["VDD_SYS_CPU"]["windows"] == 3 and
                      st[str(l)]["VDD_SYS_CPU"]["corrected_ci95"][0] - 1e-9 <= 306 <=
                      st[str(l)]["VDD_SYS_CPU"]["corrected_ci95"][1] + 1e-9  # a constant: a zero-width interval
                      for l in range(14)) and
                  set(d["latency_in_pass"]) == {str(l) for l in range(14)} and
                  all(d["latency_in_pass"][str(l)]["n"] == 3 for l in range(14)) and
                  cl["ratio"] > 0 and cl["end_to_end_median_s"] > 0 and
                  set(d["energy_per_call"]) == {str(l) for l in range(14)})
            why = json.dumps({"closure": d.get("closure"), "stats0": st.get("0")})
        check("--repeats 3: 3 shuffled windows per layer, an interval holding the fake's 306 mW; --passes: latency "
              "in the pass and the closure ratio", ok, why)

        # Failures of the power source.
        ds3 = os.path.join(tmp, "ds3")
        power = ["profile", "--mode", "0", "--imgs", "chelsea.jpg", "--models", "alexnet", "--eval_tgr",
                 "--power-source", "tegrastats", "--tgr_smpl_duration", "0.2", "--tgr_smpl_boundary", "0.05",
                 "--cooldown", "0.05", "--out", ds3, "--threads", "2"]
        r = run(power + ["--tegrastats", "/nonexistent/tegrastats"])
        check("tegrastats missing: clear error", r.returncode != 0 and "/nonexistent/tegrastats" in r.stderr,
              r.stderr[-500:])
        r = run(power + ["--tegrastats", FAKE], env={"FAKE_TEGRASTATS_MODE": "garbage"})
        check("tegrastats printing garbage: clear error", r.returncode != 0 and "tegrastats" in r.stderr,
              r.stderr[-500:])
        # tegrastats dies once the first layers are journalled (the fake
        # exits when the test makes the file), whatever the machine's speed.
        die = os.path.join(tmp, "tegrastats_dies")
        p = subprocess.Popen([JPLPROF] + [a if a != "0.2" else "0.3" for a in power] + ["--tegrastats", FAKE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, FAKE_TEGRASTATS_MODE="exit_when:" + die))
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            journal = glob.glob(os.path.join(ds3, ".jplprof", "journal", "**", "*.jsonl"), recursive=True)
            if sum(1 for j in journal for _ in open(j)) >= 2:
                break
            time.sleep(0.02)
        open(die, "w").close()
        out, err = p.communicate(timeout=120)
        r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        journal = glob.glob(os.path.join(ds3, ".jplprof", "journal", "**", "*.jsonl"), recursive=True)
        done = sum(1 for j in journal for _ in open(j))
        check("tegrastats exiting mid-run: clear error, completed layers kept",
              r.returncode != 0 and "tegrastats" in r.stderr and 0 < done < 21 and not no_temp_files(ds3),
              "rc %d, %d layers journalled: %s" % (r.returncode, done, r.stderr[-500:]))

        blocker = os.path.join(tmp, "a_file")
        open(blocker, "w").close()
        r = run(["profile", "--mode", "0", "--models", "alexnet", "--imgs", "chelsea.jpg",
                 "--out", os.path.join(blocker, "ds")])
        check("output folder not writable: clear error", r.returncode != 0 and blocker in r.stderr, r.stderr[-500:])

        # Ctrl-C, then --resume; kill -9, then --resume.
        for sig, name in ((signal.SIGINT, "Ctrl-C"), (signal.SIGKILL, "kill -9")):
            ds4 = os.path.join(tmp, "ds4_%d" % sig)
            args = [JPLPROF, "profile", "--mode", "0", "--models", "resnet18", "--imgs", "chelsea.jpg",
                    "--eval_latency", "--lt_smpl_count", "40", "--warmup", "1", "--threads", "2", "--out", ds4]
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lat_file = os.path.join(ds4, "Mode0", "cpu", "latency", "resnet18", "chelsea_sc_40.json")
            deadline = time.time() + 60
            while time.time() < deadline and p.poll() is None:
                if os.path.exists(lat_file) and len(seed_lines(lat_file)) >= 3:
                    break
                time.sleep(0.02)
            p.send_signal(sig)
            out, err = p.communicate(timeout=120)
            # the layers journalled before the kill: a layer in the file but
            # not yet journalled is re-run by --resume, as DATASET.md says
            jpath = os.path.join(ds4, ".jplprof", "journal", "Mode0", "cpu", "resnet18", "chelsea.jsonl")
            journalled = set()
            if os.path.exists(jpath):
                for line in open(jpath):
                    try:
                        e = json.loads(line)
                        journalled.add(e["layer"]) if e.get("kind") == "latency" else None
                    except ValueError:
                        break  # a line cut by the kill
            before = {k: v for k, v in (seed_lines(lat_file) if os.path.exists(lat_file) else {}).items()
                      if k in journalled}
            if sig == signal.SIGINT:
                check("Ctrl-C stops after the current layer and says how to resume",
                      p.returncode == 130 and "--resume" in err and 0 < len(before) < 14,
                      "rc %s, %d layers: %s" % (p.returncode, len(before), err[-500:]))
            r = subprocess.run(args + ["--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=300)
            after = seed_lines(lat_file) if os.path.exists(lat_file) else {}
            kept = all(after.get(k) == v for k, v in before.items())
            check("%s, then --resume: every layer complete, earlier samples kept" % name,
                  r.returncode == 0 and set(after) == {str(i) for i in range(14)} and kept and len(before) > 0
                  and not no_temp_files(ds4) and "already complete" in r.stderr,
                  "rc %d, %d layers before, %d after, kept %s: %s" % (r.returncode, len(before), len(after), kept,
                                                                    r.stderr[-400:]))

        # Issue 12's models, end to end: synthetic weights, latency only, two samples a layer;
        # every layer of each in the processed JSON.
        new_models = [m for m in ISSUE12_MODELS if m in available_models()]
        ds6 = os.path.join(tmp, "ds6")
        r = run(["profile", "--mode", "0", "--imgs", "chelsea.jpg", "--models", ",".join(new_models),
                 "--eval_latency", "--lt_smpl_count", "2", "--warmup", "1", "--passes", "1", "--threads", "2",
                 "--out", ds6], timeout=600)
        r2 = run(["process", "--dataset", ds6]) if r.returncode == 0 else r
        processed = {}
        if r2.returncode == 0:
            processed = json.load(open(os.path.join(ds6, "Processed", "Mode0.json")))
        bad = []
        for net in new_models:
            with open(os.path.join(ROOT, "weights", net + ".json")) as f:
                n = len(json.load(f)["layers"])
            lat = processed.get(net, {}).get("cpu", {}).get("latency", {})
            if set(lat) != {str(i) for i in range(n)} or not all(v > 0 for v in lat.values()):
                bad.append("%s: %d of %d layers" % (net, len(lat), n))
        check("profile + process of %d models added by issue 12 (%s)" % (len(new_models), ",".join(new_models)),
              r.returncode == 0 and r2.returncode == 0 and new_models and not bad,
              "rc %d/%d %s %s" % (r.returncode, r2.returncode, "; ".join(bad[:5]), (r.stderr + r2.stderr)[-800:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


# The models issue 12 added: each must profile end to end (those in AvailableModel.txt).
ISSUE12_MODELS = ["mobilenet_v2", "mnasnet0_5", "mnasnet1_0", "mobilenet_v3_large", "mobilenet_v3_small",
                  "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_x_400mf", "regnet_x_800mf",
                  "regnet_x_3_2gf", "squeezenet1_0", "densenet121"]
# Issue 12's second list: the small ones and those with new ops by default, every one with
# JP_TEST_MODELS_ALL=1 (VGG and the large RegNets take seconds a model on 2 cores).
ISSUE12_MODELS += ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_1", "googlenet", "convnext_tiny"]
if os.environ.get("JP_TEST_MODELS_ALL") == "1":
    ISSUE12_MODELS += ["shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "mnasnet0_75", "mnasnet1_3",
                       "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
                       "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2",
                       "wide_resnet101_2", "densenet161", "densenet169", "densenet201",
                       "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf",
                       "regnet_x_1_6gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf",
                       "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "inception_v3",
                       "convnext_small", "convnext_base", "convnext_large"]


def available_models():
    with open(os.path.join(ROOT, "AvailableModel.txt")) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


if __name__ == "__main__":
    sys.exit(main())
