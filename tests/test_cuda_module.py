"""The CUDA backend is a module loaded on demand (issue 16): the main binary
links no CUDA library and a CPU run maps none; `--device cuda` without the
module says how to build it.

1. `ldd $JPLPROF` names no libcudnn, libcublas or libcudart.
2. A CPU `infer` is sampled while it runs: /proc/<pid>/maps is read every few
   milliseconds until it exits; no mapping may name libcudnn / libcublas /
   libcudart / jplprof-cuda.so, and libopenblas must be seen (proof that the
   maps were read from the running jplprof, not from a process that had
   already gone).
3. A copy of the binary alone in an empty folder (no module beside it, none
   under ../lib/jplprof) with `infer --device cuda` and `layers --device cuda`:
   exits non-zero with the registry's message, which names jplprof-cuda.so and
   `make CUDA=1`.
4. Where this build has the module (beside $JPLPROF), `ldd` on the module
   finds cuDNN and cuBLAS: the libraries went there, not away.  SKIP otherwise.

Environment: JPLPROF (the binary under test).  About 2 s.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
CUDA_LIBS = ("libcudnn", "libcublas", "libcudart", "jplprof-cuda.so")
failures = 0


def check(name, ok, why=""):
    global failures
    print(("PASS cuda_module/%s" % name) if ok else ("FAIL cuda_module/%s: %s" % (name, why)))
    failures += 0 if ok else 1
    sys.stdout.flush()


def main():
    ldd = subprocess.run(["ldd", JPLPROF], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = [l.strip() for l in ldd.stdout.splitlines() if any(c in l for c in CUDA_LIBS)]
    check("ldd jplprof: no CUDA library", ldd.returncode == 0 and "libopenblas" in ldd.stdout and not bad,
          "\n".join(bad) or ldd.stdout[-800:])

    env = dict(os.environ, JPLPROF_ROOT=ROOT)
    p = subprocess.Popen([JPLPROF, "infer", "--model", "resnet18", "--synthetic", "--runs", "3", "--threads", "1",
                          "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen, reads = set(), 0
    while p.poll() is None:
        try:
            with open("/proc/%d/maps" % p.pid) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 6:
                        seen.add(os.path.basename(parts[5]))
            reads += 1
        except OSError:
            break
        time.sleep(0.005)
    out, err = p.communicate()
    cuda = sorted(s for s in seen if any(c in s for c in CUDA_LIBS))
    check("a CPU infer maps no CUDA library (%d reads of /proc/pid/maps)" % reads,
          p.returncode == 0 and any("libopenblas" in s for s in seen) and not cuda,
          "rc %s, CUDA mappings %s, libopenblas seen %s; %s" % (p.returncode, cuda,
                                                               any("libopenblas" in s for s in seen), err[-500:]))

    tmp = tempfile.mkdtemp()
    try:
        lone = os.path.join(tmp, "bin", "jplprof")
        os.makedirs(os.path.dirname(lone))
        shutil.copy(JPLPROF, lone)
        env_lone = {k: v for k, v in env.items() if k != "JPLPROF_CUDA_MODULE"}
        for args in (["infer", "--model", "resnet18", "--synthetic", "--device", "cuda"],
                     ["layers", "resnet18", "--device", "cuda"]):
            r = subprocess.run([lone] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env_lone, timeout=120)
            check("%s --device cuda without the module says how to build it" % args[0],
                  r.returncode != 0 and "jplprof-cuda.so" in r.stderr and "make CUDA=1" in r.stderr
                  and os.path.join(tmp, "bin") in r.stderr, "rc %d, stderr: %s" % (r.returncode, r.stderr[-800:]))
        r = subprocess.run([lone, "infer", "--model", "resnet18", "--synthetic", "--device", "cuda"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                           env=dict(env_lone, JPLPROF_CUDA_MODULE=os.path.join(tmp, "bin", "jplprof")))
        check("a JPLPROF_CUDA_MODULE that is no module is refused by name",
              r.returncode != 0 and "does not load" in r.stderr and os.path.join(tmp, "bin", "jplprof") in r.stderr,
              "rc %d, stderr: %s" % (r.returncode, r.stderr[-800:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    module = os.path.join(os.path.dirname(os.path.abspath(JPLPROF)), "jplprof-cuda.so")
    if not os.path.exists(module):
        print("SKIP cuda_module/ldd jplprof-cuda.so: this build has no CUDA module (%s; `make CUDA=1` builds it)"
              % module)
    else:
        r = subprocess.run(["ldd", module], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check("the module links cuDNN and cuBLAS", "libcudnn" in r.stdout and "libcublas" in r.stdout, r.stdout[-800:])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
