"""`make install` / `make uninstall` into a DESTDIR, then the installed jplprof run
from another folder: `models`, `layers`, `infer` and `profile --eval_latency`
find the model descriptions and data/imagenet/ under <prefix>/share/jplprof;
`man --warnings -l` renders the installed page without a warning; the bash
completion completes commands, options and model names.

With JP_TEST_STATIC_INSTALL=1 (it builds a STATIC_DEPS=1 CUDA=0 tree of its
own, about 3 minutes on 2 cores; skipped otherwise): that build installs the
shared libraries it carries (libcjson, libgomp) under <prefix>/lib/jplprof,
where its rpath looks, the installed binary loads them from there, and
uninstall removes them.

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
        static_install(tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


def static_install(tmp, env):
    name = "STATIC_DEPS build: installs its libcjson and libgomp, loads them from <prefix>/lib/jplprof"
    if os.environ.get("JP_TEST_STATIC_INSTALL") != "1":
        print("SKIP install/%s: set JP_TEST_STATIC_INSTALL=1 (builds a tree of its own, ~3 min)" % name)
        return
    build, stage = os.path.join(tmp, "build-static"), os.path.join(tmp, "stage-static")
    make = ["make", "-s", "-C", ROOT, "BUILD=" + build, "BIN=" + os.path.join(build, "jplprof"), "STATIC_DEPS=1",
            "CUDA=0", "-j2", "PREFIX=/opt/jp", "DESTDIR=" + stage]
    r = subprocess.run(make + ["install"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=1200)
    binary = os.path.join(stage, "opt", "jp", "bin", "jplprof")
    libdir = os.path.join(stage, "opt", "jp", "lib", "jplprof")
    problems = [] if r.returncode == 0 else ["make install: %s" % r.stderr[-600:]]
    if not problems:
        r = subprocess.run([binary, "models"], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(env, LD_DEBUG="libs"), timeout=120)
        for lib in ("libcjson.so.1", "libgomp.so.1"):
            if "init: %s" % os.path.join(os.path.dirname(binary), "..", "lib", "jplprof", lib) not in r.stderr:
                problems.append("%s not loaded from %s" % (lib, libdir))
        if r.returncode != 0 or "resnet18" not in r.stdout:
            problems.append("models: exit %d" % r.returncode)
        r = subprocess.run(make + ["uninstall"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        left = [os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs]
        if r.returncode != 0 or left:
            problems.append("uninstall left %s" % left[:3])
    check(name, not problems, "; ".join(problems))


if __name__ == "__main__":
    sys.exit(main())
