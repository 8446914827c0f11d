"""I/O faults (issue 14): open, write, fsync or rename failing with ENOSPC or
EIO at the Nth call, through tests/iofault.c (an LD_PRELOAD shim built here
with cc, counting only files under the dataset folder).

For each operation a first run counts its calls C in a small latency
profile (mobilenet_v3_small, one image, 2 samples); then N walks over 1, 2, 3 and four
points up to C (errno alternating).  Each faulted run must: exit non-zero
with a one-line named error (the path and the system's message for the
errno); leave no temporary file; leave every data file complete (each line
of each latency file and journal parses); then `--resume` without the fault
finishes, and `process --stats` gives the same structure and sample counts
as an uninterrupted run.  `process` is walked the same way over every call
N of each operation: a non-zero exit with a named error, and
Processed/Mode0.json is the previous complete file, byte for byte, with no
temporary file beside it.

Raw files are globbed, not named.  Environment: JPLPROF (see run_tests.sh).
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
OPS = ("open", "write", "fsync", "rename")
MESSAGES = {"ENOSPC": "No space left on device", "EIO": "Input/output error"}
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS io-faults/%s" % name)
    else:
        failures += 1
        print("FAIL io-faults/%s: %s" % (name, why))
    sys.stdout.flush()


def profile_args(out):
    return [JPLPROF, "profile", "--mode", "0", "--models", "mobilenet_v3_small", "--imgs", "chelsea.jpg", "--eval_latency",
            "--lt_smpl_count", "2", "--warmup", "0", "--passes", "1", "--threads", "2", "--out", out]


def run(args, fault=None, under=None, log=None, shim=None):
    env = dict(os.environ)
    if fault:
        env.update(JP_IOFAULT=fault, JP_IOFAULT_DIR=under, JP_IOFAULT_LOG=log, LD_PRELOAD=shim)
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=300)


def shape(node):
    if isinstance(node, dict):
        return {k: (v if k == "n" else shape(v)) for k, v in node.items()}
    return "number" if isinstance(node, (int, float)) else node


def processed_shape(out):
    r = run([JPLPROF, "process", "--dataset", out, "--stats"])
    if r.returncode != 0:
        return None
    with open(os.path.join(out, "Processed", "Mode0.json")) as f:
        return shape(json.load(f))


def incomplete_files(out):
    bad = []
    files = glob.glob(os.path.join(out, "Mode0", "**", "*.json"), recursive=True) + \
        glob.glob(os.path.join(out, ".jplprof", "journal", "**", "*.jsonl"), recursive=True)
    for p in files:
        with open(p, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            bad.append(p + ": no final newline")
            continue
        for line in data.splitlines():
            try:
                if line.strip():
                    json.loads(line)
            except ValueError:
                bad.append(p + ": a line does not parse")
                break
    return bad


def temps(out):
    return [p for p in glob.glob(os.path.join(out, "**", "*"), recursive=True) if ".tmp." in p]


def error_line(stderr):
    lines = [l for l in stderr.splitlines() if l.startswith("jplprof profile: ") or l.startswith("jplprof process: ")]
    return lines[0] if lines else ""


def main():
    tmp = tempfile.mkdtemp()
    try:
        shim = os.path.join(tmp, "libiofault.so")
        r = subprocess.run(["cc", "-std=gnu11", "-shared", "-fPIC", "-o", shim,
                            os.path.join(ROOT, "tests", "iofault.c"), "-ldl"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        check("the fault shim builds", r.returncode == 0, r.stderr[-400:])
        if r.returncode != 0:
            return 1
        ref_out = os.path.join(tmp, "ref")
        r = run(profile_args(ref_out))
        want = processed_shape(ref_out) if r.returncode == 0 else None
        check("uninterrupted run and process", want is not None, r.stderr[-400:])
        if want is None:
            return 1

        walked = 0
        problems = []
        for k, op in enumerate(OPS):
            log = os.path.join(tmp, "%s.log" % op)
            out = os.path.join(tmp, "count_" + op)
            run(profile_args(out), "%s:100000000:EIO" % op, out, log, shim)
            with open(log) as f:
                count = int(f.read().split()[-1])
            ns = sorted({1, 2, 3, count // 4, count // 2, 3 * count // 4, count} - {0})
            for i, n in enumerate(ns):
                err = ("ENOSPC", "EIO")[(i + k) % 2]
                out = os.path.join(tmp, "%s_%d" % (op, n))
                fired = os.path.join(tmp, "%s_%d.log" % (op, n))
                r = run(profile_args(out), "%s:%d:%s" % (op, n, err), out, fired, shim)
                where = "%s #%d %s" % (op, n, err)
                if not os.path.exists(fired) or open(fired).read().startswith("count"):
                    problems.append("%s: never reached" % where)
                    continue
                walked += 1
                line = error_line(r.stderr)
                if r.returncode == 0 or r.returncode < 0:
                    problems.append("%s: exit status %d" % (where, r.returncode))
                elif MESSAGES[err] not in line or out not in line:
                    problems.append("%s: error does not name the file and the cause: %r" % (where, line or
                                                                                              r.stderr[-300:]))
                if temps(out):
                    problems.append("%s: temporary files left: %s" % (where, temps(out)[:2]))
                bad = incomplete_files(out)
                if bad:
                    problems.append("%s: incomplete data files: %s" % (where, bad[:2]))
                r = run(profile_args(out) + ["--resume"])
                if r.returncode != 0:
                    problems.append("%s: --resume exited %d: %s" % (where, r.returncode, error_line(r.stderr)))
                elif processed_shape(out) != want:
                    problems.append("%s: after --resume, process differs from the uninterrupted run" % where)
                shutil.rmtree(out, ignore_errors=True)
        check("profile: %d faults (open, write, fsync, rename; ENOSPC, EIO), each a named error, no torn or "
              "temporary file, then --resume gives the uninterrupted result" % walked,
              not problems and walked >= 20, "; ".join(problems[:4]))

        # process: the previous Mode0.json stays whole
        before_path = os.path.join(ref_out, "Processed", "Mode0.json")
        with open(before_path, "rb") as f:
            before = f.read()
        problems = []
        walked = 0
        for k, op in enumerate(OPS):
            for n in range(1, 50):
                err = ("ENOSPC", "EIO")[(n + k) % 2]
                fired = os.path.join(tmp, "process_%s_%d.log" % (op, n))
                r = run([JPLPROF, "process", "--dataset", ref_out, "--stats"], "%s:%d:%s" % (op, n, err),
                        os.path.join(ref_out, "Processed"), fired, shim)
                if open(fired).read().startswith("count"):
                    break
                walked += 1
                where = "process %s #%d %s" % (op, n, err)
                line = error_line(r.stderr)
                if r.returncode <= 0 or MESSAGES[err] not in line:
                    problems.append("%s: exit %d, %r" % (where, r.returncode, line or r.stderr[-200:]))
                with open(before_path, "rb") as f:
                    if f.read() != before:
                        problems.append("%s: Mode0.json changed" % where)
                if temps(os.path.join(ref_out, "Processed")):
                    problems.append("%s: temporary file left" % where)
        check("process: %d faults, each a named error, the previous Mode0.json kept whole" % walked,
              not problems and walked >= 4, "; ".join(problems[:4]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
