"""Bounded memory and terminal-safe messages on hostile streams (issue 14).

- `jplprof tegrastats -` fed a 300 MB line (generated here, through a pipe,
  never written to disk) between two real lines: the CSV keeps the two real
  rows, stderr names the line and the byte where it was cut, and the peak
  RSS (ru_maxrss of the child, from wait4) stays under RSS_BOUND_KIB.  The
  converter reads a line at a time, each cut at 64 KiB (JP_LINE_MAX_BYTES);
  before, getline() held the whole line (300 MB RSS).
- the tegrastats power source of `profile` reading a 300 MB line from its
  pipe before the real lines: the line is cut at 64 KiB and the rest
  dropped, counted as one line without rails, and the profile goes on
  (before, every 16 KiB piece counted as a garbage line and the run failed
  after five).
- a broken tegrastats printing binary garbage (terminal escape sequences,
  bytes >= 0x80) on stdout and stderr: `jplprof profile` fails with a named
  error whose text holds no control byte (the garbage is shown escaped,
  \\x1b...), where it used to be echoed raw to the terminal.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh).
"""
import glob
import os
import re
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
BIN_DIR = os.environ.get("JP_TEST_BIN_DIR", os.path.join(ROOT, "build", "tests"))
FAKE = os.path.abspath(os.path.join(BIN_DIR, "fake_tegrastats"))
LONG_LINE_MB = 300
# What the long line may add to the peak RSS of the same command on two
# short lines.  The baseline is the binary's own pages: 10.4 MB built with
# CUDA=0, about 220 MB with cuDNN and cuBLAS linked in (issue 16); an ASan
# build needs more for its shadow memory and quarantine.
RSS_BOUND_KIB = int(os.environ.get("JP_TEST_RSS_BOUND_KIB", 32 * 1024))
GOOD = b"RAM 1404/7860MB (lfb 236x4MB) CPU [1%@345,0%@345] VDD_SYS_GPU 152/152 VDD_SYS_CPU 305/305\n"
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS bounded-io/%s" % name)
    else:
        failures += 1
        print("FAIL bounded-io/%s: %s" % (name, why))
    sys.stdout.flush()


def baseline_rss_kib():
    """Peak RSS of `jplprof tegrastats -` on two short lines."""
    p = subprocess.Popen([JPLPROF, "tegrastats", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    p.stdin.write(GOOD + GOOD)
    p.stdin.close()
    _, _, usage = os.wait4(p.pid, 0)
    return usage.ru_maxrss


def long_line_through_tegrastats():
    p = subprocess.Popen([JPLPROF, "tegrastats", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    got = {}
    readers = [threading.Thread(target=lambda k=k, f=f: got.__setitem__(k, f.read()))
               for k, f in (("out", p.stdout), ("err", p.stderr))]
    for t in readers:
        t.start()
    chunk = b"A" * (1 << 20)
    try:
        p.stdin.write(GOOD)
        for _ in range(LONG_LINE_MB):
            p.stdin.write(chunk)
        p.stdin.write(b"\n" + GOOD)
        p.stdin.close()
    except BrokenPipeError:
        pass
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    out, err = got.get("out", b""), got.get("err", b"").decode("utf-8", "replace")
    rows = out.decode().splitlines()
    check("tegrastats: a %d MB line is cut, the real lines kept" % LONG_LINE_MB,
          p.returncode == 0 and len(rows) == 3 and rows[1] == rows[2] == "1404,7860,1,345,0,345,152,305",
          "rc %s, rows %r, stderr %r" % (p.returncode, rows[:4], err[-300:]))
    check("tegrastats: says which line was cut and at which byte",
          re.search(r"line 2 \(from byte 90\) is longer than 65536 bytes: cut at byte 65626", err) is not None,
          err[-300:])
    base = baseline_rss_kib()
    check("tegrastats: a %d MB line adds %d KiB to the peak RSS (%d KiB on two short lines), under %d KiB" % (
              LONG_LINE_MB, usage.ru_maxrss - base, base, RSS_BOUND_KIB),
          usage.ru_maxrss - base < RSS_BOUND_KIB, "peak RSS %d KiB, %d KiB without the line" % (usage.ru_maxrss, base))


def binary_garbage_not_echoed():
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([JPLPROF, "profile", "--mode", "0", "--imgs", "chelsea.jpg", "--models", "alexnet",
                            "--eval_tgr", "--power-source", "tegrastats", "--tegrastats", FAKE,
                            "--tgr_smpl_duration", "0.2", "--tgr_smpl_boundary", "0.05", "--threads", "2",
                            "--out", os.path.join(tmp, "ds")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
                           env=dict(os.environ, FAKE_TEGRASTATS_MODE="binary"))
    raw = [b for b in r.stderr if (b < 0x20 and b != 0x0a) or b >= 0x7f]
    text = r.stderr.decode("ascii", "replace")
    check("binary garbage from tegrastats: named error, exit non-zero",
          r.returncode != 0 and "tegrastats" in text, "rc %d: %r" % (r.returncode, text[-400:]))
    check("binary garbage from tegrastats: no control or high byte reaches the terminal, shown as \\xNN",
          not raw and "\\x1b" in text, "%d raw bytes (%r): %r" % (len(raw), bytes(raw[:8]), r.stderr[-400:]))


def long_line_through_the_power_pipe():
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.Popen([JPLPROF, "profile", "--mode", "0", "--imgs", "chelsea.jpg", "--models", "alexnet",
                              "--eval_tgr", "--power-source", "tegrastats", "--tegrastats", FAKE,
                              "--tgr_smpl_duration", "0.2", "--tgr_smpl_boundary", "0.05", "--threads", "2",
                              "--out", os.path.join(tmp, "ds")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, FAKE_TEGRASTATS_MODE="long_line:%d" % LONG_LINE_MB))
        out, err = p.communicate(timeout=600)
        err = err.decode("utf-8", "replace")
        journal = [l for j in glob.glob(os.path.join(tmp, "ds", ".jplprof", "journal", "**", "*.jsonl"),
                                        recursive=True) for l in open(j)]
    check("profile: a %d MB line from tegrastats is cut and dropped, the profile completes" % LONG_LINE_MB,
          p.returncode == 0 and len(journal) == 21, "rc %d, %d layers journalled: %s" % (p.returncode, len(journal),
                                                                                         err[-400:]))


def main():
    long_line_through_tegrastats()
    long_line_through_the_power_pipe()
    binary_garbage_not_echoed()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
