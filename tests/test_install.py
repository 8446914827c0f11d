"""`make install` / `make uninstall` into a DESTDIR, then the installed jplprof run
from another folder: `models`, `layers`, `infer` and `profile --eval_latency`
find the model descriptions and data/imagenet/ under <prefix>/share/jplprof;
`man --warnings -l` renders the installed page without a warning; the bash
completion completes commands, options and model names.

Environment: JP_BUILD_DIR (see run_tests.sh); make is run with the build's
configuration (build/config) so that nothing is rebuilt.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("JP_BUILD_DIR", "build")
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS install/%s" % name)
    else:
        failures += 1
        print("FAIL install/%s: %s" % (name, why))
    sys.stdout.flush()


def main():
    tmp = tempfile.mkdtemp()
    try:
        stage, elsewhere = os.path.join(tmp, "stage"), os.path.join(tmp, "elsewhere")
        os.makedirs(elsewhere)
        config = open(os.path.join(ROOT, BUILD, "config")).read().split()
        make = ["make", "-s", "-C", ROOT, "BUILD=" + BUILD] + config + ["PREFIX=/usr", "DESTDIR=" + stage]
        r = subprocess.run(make + ["install"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        binary = os.path.join(stage, "usr", "bin", "jplprof")
        check("make install DESTDIR PREFIX", r.returncode == 0 and os.access(binary, os.X_OK), r.stderr[-1500:])
        env = {k: v for k, v in os.environ.items() if k not in ("JPLPROF_ROOT", "JPLPROF_DATA")}
        env["PATH"] = os.path.dirname(binary) + ":" + env.get("PATH", "")

        def run(args, timeout=300):
            return subprocess.run([binary] + args, cwd=elsewhere, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, timeout=timeout)
        want = [l.strip() for l in open(os.path.join(ROOT, "AvailableModel.txt")) if l.strip() and l[0] != "#"]
        r = run(["models"])
        check("installed models, from another folder", r.returncode == 0 and
              [l.split()[0] for l in r.stdout.splitlines() if l.strip()] == want, r.stdout + r.stderr[-800:])
        r = run(["layers", "resnet18"])
        check("installed layers", r.returncode == 0 and "layer4.1" in r.stdout, r.stderr[-800:])
        r = run(["infer", "--model", "resnet18", "--runs", "1", "--threads", "2"])
        check("installed infer", r.returncode == 0, r.stderr[-800:])
        r = run(["profile", "--mode", "0", "--models", "resnet18", "--imgs", "chelsea.jpg", "--eval_latency",
                 "--lt_smpl_count", "2", "--warmup", "0", "--passes", "0", "--threads", "2", "--quiet",
                 "--out", "ds"])
        check("installed profile --eval_latency finds data/imagenet", r.returncode == 0 and
              os.path.exists(os.path.join(elsewhere, "ds", "Mode0", "cpu", "latency", "resnet18", "chelsea_sc_2.json")),
              r.stderr[-800:])
        page = os.path.join(stage, "usr", "share", "man", "man1", "jplprof.1")
        r = subprocess.run(["man", "--warnings", "-l", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=dict(env, MANPAGER="cat", PAGER="cat", MANWIDTH="80"), timeout=60)
        check("man --warnings -l: renders, no warning", r.returncode == 0 and not r.stderr.strip() and
              "export" in r.stdout and "JPLPROF_DATA" in r.stdout, r.stderr[-800:])
        comp = os.path.join(stage, "usr", "share", "bash-completion", "completions", "jplprof")
        script = ('source %s; complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _jplprof;'
                  ' echo "${COMPREPLY[*]}"; }; complete_words jplprof ex; complete_words jplprof infer --mod;'
                  ' complete_words jplprof infer --model resnet1' % comp)
        r = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=elsewhere, timeout=60)
        lines = r.stdout.splitlines()
        check("bash completion: commands, options, model names", len(lines) == 3 and lines[0] == "export" and
              "--model" in lines[1].split() and set(lines[2].split()) == {"resnet18", "resnet101", "resnet152"},
              "%r %s" % (lines, r.stderr[-400:]))
        r = subprocess.run(make + ["uninstall"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        left = [os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs]
        check("make uninstall removes every file", r.returncode == 0 and not left, "%s %s" % (left[:5], r.stderr[-400:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
