"""kill -9 anywhere, then --resume: the same dataset as an uninterrupted run
(issue 14, "Crash anywhere").

A small latency profile (mobilenet_v3_small, one image, --lt_smpl_count 3, --warmup 0)
runs once uninterrupted: its processed JSON (process --stats) is the
reference, and its wall time T sets the range of the kill times.  Then, for
KILLS seeded random instants in [0.02 T, 0.98 T], a fresh run is killed with
SIGKILL at that instant and the same command is run again with --resume
until it completes; after each: exit status 0, no temporary file left,
every raw file parses, and the processed JSON has the reference's structure
(every key at every level) and sample counts (latency_stats n per layer),
latency values excluded (they are timings).

Raw files are found by globbing (<out>/Mode0/cpu/latency/mobilenet_v3_small/*.json),
not by name, so the test holds when file names change.
Environment: JPLPROF (see run_tests.sh); JP_TEST_KILLS (default 20).
"""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
KILLS = int(os.environ.get("JP_TEST_KILLS", "20"))
SEED = 14
# 18 layers in 0.25 s here (alexnet, 21 layers, took 2.7 s: its 61 M synthetic weights)
MODEL, LAYERS = "mobilenet_v3_small", 18
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS crash-resume/%s" % name)
    else:
        failures += 1
        print("FAIL crash-resume/%s: %s" % (name, why))
    sys.stdout.flush()


def profile_args(out):
    return [JPLPROF, "profile", "--mode", "0", "--models", MODEL, "--imgs", "chelsea.jpg", "--eval_latency",
            "--lt_smpl_count", "3", "--warmup", "0", "--passes", "1", "--threads", "2", "--out", out]


def processed(out):
    r = subprocess.run([JPLPROF, "process", "--dataset", out, "--stats"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if r.returncode != 0:
        return None, r.stderr[-400:]
    with open(os.path.join(out, "Processed", "Mode0.json")) as f:
        return json.load(f), ""


def shape(node, path=""):
    """Every key path of the JSON tree, with the sample counts ('n') kept and
    every other number replaced by its type: latency values are timings."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out[k] = v if k == "n" else shape(v, path + "/" + k)
        return out
    if isinstance(node, (int, float)):
        return "number"
    return node


def raw_files_parse(out):
    bad = []
    files = glob.glob(os.path.join(out, "Mode0", "cpu", "latency", "*", "*.json"))
    for p in files:
        try:
            with open(p) as f:
                for line in f:
                    if line.strip():
                        json.loads(line)
        except ValueError as e:
            bad.append("%s: %s" % (p, e))
    return files, bad


def temps(out):
    return [p for p in glob.glob(os.path.join(out, "**", "*"), recursive=True) if ".tmp." in p]


def main():
    tmp = tempfile.mkdtemp()
    try:
        ref_out = os.path.join(tmp, "ref")
        t0 = time.monotonic()
        r = subprocess.run(profile_args(ref_out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
        wall = time.monotonic() - t0
        ref, why = processed(ref_out) if r.returncode == 0 else (None, r.stderr[-400:])
        check("uninterrupted run and process", ref is not None, why)
        if ref is None:
            return 1
        n_layers = len(ref[MODEL]["cpu"]["latency"])
        check("reference has %d layers with 3 samples each" % LAYERS,
              n_layers == LAYERS and all(s["n"] == 3 for s in ref[MODEL]["cpu"]["latency_stats"].values()),
              json.dumps(ref)[:300])
        # --resume where nothing was saved yet (a kill before the first
        # layer): it failed at the end, on the missing journal, before.
        fresh = os.path.join(tmp, "fresh")
        r = subprocess.run(profile_args(fresh) + ["--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=300)
        got, why = processed(fresh) if r.returncode == 0 else (None, r.stderr[-400:])
        check("--resume with nothing saved yet runs the whole profile", got is not None and
              shape(got) == shape(ref), why or json.dumps(got)[:300])
        want = shape(ref)
        rng = random.Random(SEED)
        problems = []
        killed_mid = 0
        for i in range(KILLS):
            out = os.path.join(tmp, "k%02d" % i)
            at = rng.uniform(0.02, 0.98) * wall
            p = subprocess.Popen(profile_args(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(at)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            if p.returncode == -signal.SIGKILL:
                killed_mid += 1
            files, bad = raw_files_parse(out)
            if bad:
                problems.append("kill %d at %.2f s: torn raw file: %s" % (i, at, bad[0]))
            r = subprocess.run(profile_args(out) + ["--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=300)
            if r.returncode != 0:
                problems.append("kill %d at %.2f s: --resume exited %d: %s" % (i, at, r.returncode,
                                                                                r.stderr[-300:]))
                continue
            left = temps(out)
            if left:
                problems.append("kill %d at %.2f s: temporary files left: %s" % (i, at, left[:3]))
            got, why = processed(out)
            if got is None:
                problems.append("kill %d at %.2f s: process failed: %s" % (i, at, why))
            elif shape(got) != want:
                problems.append("kill %d at %.2f s: processed JSON differs from the uninterrupted run's: %s"
                                % (i, at, json.dumps(shape(got))[:300]))
            shutil.rmtree(out, ignore_errors=True)
        print("  %d kills in [%.2f, %.2f] s (uninterrupted run: %.2f s), %d of them before the run ended"
              % (KILLS, 0.02 * wall, 0.98 * wall, wall, killed_mid))
        check("%d seeded kill -9 instants, each then --resume: exit 0, no torn or temporary file, "
              "processed JSON with the reference's structure and sample counts" % KILLS,
              not problems, "; ".join(problems[:3]))
        check("most kills landed before the run ended (the property was exercised)", killed_mid >= KILLS // 2,
              "%d of %d" % (killed_mid, KILLS))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
