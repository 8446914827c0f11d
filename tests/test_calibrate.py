"""`jplprof calibrate` against a simulated sensor, and its file through
`profile` and `process`.

The fake tegrastats draws, on VDD_SYS_CPU, 1000 mW per thread of jplprof
that is running when it makes a line (state R in /proc/PID/task/*/stat, so
that other load on the machine does not change the truth) and prints that through a first-order lag of tau = 0.43 s
(FAKE_TEGRASTATS_LOAD, FAKE_TEGRASTATS_LAG_S): the truth is set here, not
by jplprof.  calibrate must recover tau within 10 %.  Then the file: a later
profile records it in the manifest and warns that a 0.04 s boundary is under
3 tau; process takes tau from it; a corrupt file, or one of another board or
rail, is refused by name.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh).
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
BIN_DIR = os.environ.get("JP_TEST_BIN_DIR", os.path.join(ROOT, "build", "tests"))
FAKE = os.path.abspath(os.path.join(BIN_DIR, "fake_tegrastats"))
TAU = 0.43
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS calibrate/%s" % name)
    else:
        failures += 1
        print("FAIL calibrate/%s: %s" % (name, why))
    sys.stdout.flush()


def run(args, env=None):
    return subprocess.run([JPLPROF] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, **(env or {})), timeout=600)


def main():
    tmp = tempfile.mkdtemp()
    try:
        ds = os.path.join(tmp, "ds")
        sensor = {"FAKE_TEGRASTATS_LOAD": "VDD_SYS_CPU:1000", "FAKE_TEGRASTATS_LAG_S": str(TAU)}
        src = ["--power-source", "tegrastats", "--tegrastats", FAKE]
        r = run(["calibrate"] + src + ["--periods", "3", "--half-period", "2.5", "--threads", "1", "--out", ds],
                env=sensor)
        cal_path = os.path.join(ds, ".jplprof", "calibration.json")
        cal = json.load(open(cal_path)) if r.returncode == 0 and os.path.exists(cal_path) else {}
        rail = cal.get("rails", {}).get("VDD_SYS_CPU", {})
        print("  calibrate: %s" % json.dumps(rail))
        check("calibrate recovers the simulated tau (%g s) within 10 %%" % TAU,
              abs(rail.get("tau_s", 0) - TAU) <= 0.1 * TAU, r.stdout[-800:] + r.stderr[-400:])
        check("calibrate: LSB 1 mW, delivery every 20 ms, the busy step seen",
              rail.get("lsb") == 1 and abs(rail.get("delivery_interval_s", 0) - 0.02) < 0.005 and
              rail.get("busy_mw", 0) - rail.get("idle_mw", 0) > 500, json.dumps(rail))

        prof = ["profile", "--mode", "0", "--models", "resnet18", "--imgs", "chelsea.jpg", "--eval_tgr"] + src + [
            "--tgr_smpl_duration", "0.1", "--tgr_smpl_boundary", "0.04", "--cooldown", "0.02", "--threads", "2",
            "--out", ds]
        r = run(prof, env=sensor)
        manifests = glob.glob(os.path.join(ds, ".jplprof", "manifests", "*.json"))
        m = json.load(open(manifests[0])) if manifests else {}
        check("profile records the calibration in the manifest and warns that the boundary is under 3 tau",
              r.returncode == 0 and m.get("power", {}).get("calibration", {}).get("file") == cal_path and
              "3 x the sensor's time constant" in r.stderr, r.stderr[-600:])
        r = run(["process", "--dataset", ds])
        out = json.load(open(os.path.join(ds, "Processed", "Mode0.json"))) if r.returncode == 0 else {}
        lag = out.get("resnet18", {}).get("cpu", {}).get("power_lag", {}).get("VDD_SYS_CPU", {})
        check("process takes tau from the calibration", lag.get("tau_from") == "calibration" and
              lag.get("tau_s") == rail.get("tau_s"), json.dumps(lag) + r.stderr[-300:])

        good = open(cal_path).read()
        with open(cal_path, "w") as f:
            f.write(good[: len(good) // 2])
        r1, r2 = run(prof, env=sensor), run(["process", "--dataset", ds])
        check("a corrupt calibration file is refused by name (profile and process)",
              r1.returncode != 0 and cal_path in r1.stderr and r2.returncode != 0 and cal_path in r2.stderr,
              r1.stderr[-300:] + r2.stderr[-300:])
        other = dict(cal, board="agx-orin")
        with open(cal_path, "w") as f:
            json.dump(other, f)
        r = run(prof, env=sensor)
        check("a calibration of another board is refused by name",
              r.returncode != 0 and cal_path in r.stderr and "agx-orin" in r.stderr, r.stderr[-300:])
        other = dict(cal, rails={"VDD_CPU_CV": rail})
        with open(cal_path, "w") as f:
            json.dump(other, f)
        r1, r2 = run(prof, env=sensor), run(["process", "--dataset", ds])
        check("a calibration without the device rail is refused by name (profile and process)",
              r1.returncode != 0 and "VDD_SYS_CPU" in r1.stderr and cal_path in r1.stderr and
              r2.returncode != 0 and "VDD_SYS_CPU" in r2.stderr, r1.stderr[-300:] + r2.stderr[-300:])
        r = run(["calibrate", "--periods", "0"])
        check("calibrate --periods 0 is a clear usage error", r.returncode == 2 and "--periods" in r.stderr,
              r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
