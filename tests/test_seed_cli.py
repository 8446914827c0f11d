"""The seed tool's command lines, as its README writes them and as its code
(argparse) parses them, run unchanged by `jplprof profile`.

The seed's README: `PowerLatencyDatasetGenerator.py --mode 1 --device cpu`
(every model of AvailableModels.txt, the images img1..3.jpg of
data/imagenet, latency, 100 samples a layer).  Its argparse: `--imgs` and
`--tgr_params` take space-separated lists (nargs='+'), and the boundary is
spelled `--tgr_smpl_boundry`.  A project root made here (JPLPROF_ROOT) lists
one model, resnet18, and holds img1..3.jpg, so that the README's line runs
as written in seconds; tegrastats is the fake, first on PATH, as the real one
is on a Jetson.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh).
"""
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
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS seed_cli/%s" % name)
    else:
        failures += 1
        print("FAIL seed_cli/%s: %s" % (name, why))
    sys.stdout.flush()


def lines_of(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                out.update(json.loads(line))
    return out


def main():
    tmp = tempfile.mkdtemp()
    try:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "data", "imagenet"))
        os.makedirs(os.path.join(tmp, "bin"))
        with open(os.path.join(root, "AvailableModel.txt"), "w") as f:
            f.write("resnet18\n")
        os.symlink(os.path.join(ROOT, "weights"), os.path.join(root, "weights"))
        for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
            shutil.copy(os.path.join(ROOT, "data", "imagenet", "chelsea.jpg"), os.path.join(root, "data", "imagenet", name))
        os.symlink(FAKE, os.path.join(tmp, "bin", "tegrastats"))
        env = dict(os.environ, JPLPROF_ROOT=root, PATH=os.path.join(tmp, "bin") + ":" + os.environ["PATH"],
                   OMP_NUM_THREADS="2")
        work = os.path.join(tmp, "work")
        os.makedirs(work)

        def profile(args):
            return subprocess.run([JPLPROF, "profile"] + args, cwd=work, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, timeout=600)

        # The README's line, as written.
        r = profile(["--mode", "1", "--device", "cpu"])
        lat = os.path.join(work, "Dataset", "Mode1", "cpu", "latency", "resnet18")
        files = sorted(os.listdir(lat)) if os.path.isdir(lat) else []
        ok = r.returncode == 0 and files == ["img1_sc_100.json", "img2_sc_100.json", "img3_sc_100.json"]
        if ok:
            got = lines_of(os.path.join(lat, "img1_sc_100.json"))
            ok = set(got) == {str(i) for i in range(14)} and all(len(v) == 100 for v in got.values())
        check("the seed README's `--mode 1 --device cpu`: 100 latency samples of every layer, img1..3",
              ok, "rc %d, files %s: %s" % (r.returncode, files, r.stderr[-600:]))

        # As the seed's argparse takes them: nargs='+' lists and its spelling
        # of the boundary.  Small windows and no cooldown, to stay fast.
        r = profile(["--mode", "2", "--device", "cpu", "--imgs", "img1.jpg", "img2.jpg", "--eval_tgr",
                     "--tgr_params", "VDD_SYS_CPU", "VDD_SYS_GPU", "--tgr_smpl_boundry", "0.05",
                     "--tgr_smpl_duration", "0.1", "--tgr_interval", "20", "--cooldown", "0"])
        power = os.path.join(work, "Dataset", "Mode2", "cpu", "power", "resnet18")
        files = sorted(f for f in os.listdir(power) if "_sf_" in f) if os.path.isdir(power) else []
        ok = r.returncode == 0 and files == ["img1_sf_50_sb_0.05.json", "img2_sf_50_sb_0.05.json"]
        if ok:
            got = lines_of(os.path.join(power, files[0]))
            ok = set(got) == {str(i) for i in range(14)} and all(
                set(v) == {"VDD_SYS_CPU", "VDD_SYS_GPU"} for v in got.values())
        check("--imgs img1.jpg img2.jpg --tgr_params A B --tgr_smpl_boundry 0.05 (the seed's code's forms)",
              ok, "rc %d, files %s: %s" % (r.returncode, files, r.stderr[-600:]))

        # Bad values of the new options.
        for args, want in ((["--cooldown", "-1"], "--cooldown"), (["--imgs"], "--imgs"),
                           (["--repeats", "0"], "--repeats")):
            r = profile(["--mode", "0"] + args)
            check("%s is a clear usage error" % " ".join(args),
                  r.returncode == 2 and want in r.stderr, "rc %d: %s" % (r.returncode, r.stderr[-300:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
