"""`jplprof profile`'s progress: per layer what it measured and the time left for
the whole run; one line per layer in a log, one updating line on a terminal
(a pty here), nothing per layer with --quiet; --power-if-available on a
machine without a source prints one whole line per source tried.  Two models, so that the
estimate must count the layers of a model not loaded yet.

Environment: JPLPROF (see run_tests.sh).
"""
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS progress/%s" % name)
    else:
        failures += 1
        print("FAIL progress/%s: %s" % (name, why))
    sys.stdout.flush()


def main():
    tmp = tempfile.mkdtemp()
    try:
        args = [JPLPROF, "profile", "--mode", "0", "--models", "resnet18,alexnet", "--imgs", "chelsea.jpg",
                "--eval_latency", "--lt_smpl_count", "2", "--warmup", "0", "--passes", "0", "--threads", "2"]
        r = subprocess.run(args + ["--out", os.path.join(tmp, "a")], stderr=subprocess.PIPE, text=True, timeout=300)
        lines = [l for l in r.stderr.splitlines() if re.match(r"^\[\d+/2 ", l)]
        left = [re.search(r" \| (~(\d+ h )?(\d+ min )?\d+ s left|done)$", l) for l in lines]
        check("a log: one line per layer (14 + 21), each with the time left", r.returncode == 0 and
              len(lines) == 35 and all(left) and lines[-1].endswith("| done") and
              all(m.group(1) != "done" for m in left[:-1]), r.stderr[-1500:])
        check("the estimate counts the model not loaded yet", len(lines) > 14 and "[1/2 resnet18" in lines[13] and
              "~" in lines[13], lines[13] if len(lines) > 13 else r.stderr[-800:])

        r = subprocess.run(args + ["--out", os.path.join(tmp, "b"), "--quiet"], stderr=subprocess.PIPE, text=True,
                           timeout=300)
        check("--quiet: no per-layer line, the summary stays", r.returncode == 0 and
              not re.search(r"^\[\d+/2 ", r.stderr, re.M) and "35 layers measured" in r.stderr, r.stderr[-1500:])

        # a terminal: one line rewritten in place ("\r" + erase line), not 35
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(JPLPROF, args + ["--out", os.path.join(tmp, "c")])
        out = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        text = out.decode(errors="replace")
        rewrites = text.count("\r\x1b[K[")
        check("a terminal: one updating line", os.WEXITSTATUS(status) == 0 and rewrites == 35 and
              text.count("layer 14/14 fc") == 1 and text.count("\n[1/2") == 0,
              "%d rewrites; %r" % (rewrites, text[-600:]))

        # --power-if-available with no source: one whole line per source tried
        sysfs = os.path.join(tmp, "empty-sysfs")
        os.makedirs(sysfs)
        env = dict(os.environ, JPLPROF_SYSFS_ROOT=sysfs, PATH="/usr/bin:/bin")
        base = args[:2] + ["--mode", "0", "--models", "resnet18", "--imgs", "chelsea.jpg", "--eval_tgr",
                           "--lt_smpl_count", "1", "--warmup", "0", "--passes", "0", "--quiet"]
        one = subprocess.run(base + ["--power-source", "tegrastats", "--out", os.path.join(tmp, "d")],
                             stderr=subprocess.PIPE, text=True, env=env, timeout=300)
        r = subprocess.run(base + ["--power-if-available", "--out", os.path.join(tmp, "e")], stderr=subprocess.PIPE,
                           text=True, env=env, timeout=300)
        if "chosen" in r.stderr or shutil.which("tegrastats"):
            print("SKIP progress/power-if-available messages: this machine has a power source")
        else:
            tried = r.stderr.split("Tried:\n", 1)[1].split("  To measure", 1)[0].splitlines() if "Tried:" in r.stderr else []
            whole = one.stderr.strip().split("--eval_tgr: tegrastats: ", 1)[-1]
            check("--power-if-available: one whole line per source, then what to do",
                  r.returncode == 0 and [l.split()[0] for l in tried] == ["tegrastats", "ina3221", "nvml", "rapl"] and
                  tried[0].endswith(whole) and "To measure power" in r.stderr, r.stderr[-1500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
