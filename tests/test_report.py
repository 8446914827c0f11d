"""`jplprof report`: one self-contained HTML page of a dataset.

Makes a small dataset with the fake tegrastats (resnet18: mode 0 with power,
mode 1 latency only: two cards side by side), writes the report, and checks:
nothing is fetched (no script, no src/href, no url()); one card per (mode,
device); each card's SVG has one bar per layer whose tooltip names the
manifest's path and type; the power bars where power was measured; headless
Chromium (Debian's chromium) renders it to a PNG that is not blank and shows
the bars' colour; the errors for a missing --out and a missing manifest.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh).
"""
import glob
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JPLPROF = os.environ.get("JPLPROF", os.path.join(ROOT, "jplprof"))
BIN_DIR = os.environ.get("JP_TEST_BIN_DIR", os.path.join(ROOT, "build", "tests"))
FAKE = os.path.abspath(os.path.join(BIN_DIR, "fake_tegrastats"))
BAR_RGB = (0x3B, 0x7D, 0xD8)  # .bar's fill in report.c's CSS
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS report/%s" % name)
    else:
        failures += 1
        print("FAIL report/%s: %s" % (name, why))
    sys.stdout.flush()


def run(args, timeout=300):
    return subprocess.run([JPLPROF] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class Svgs(html.parser.HTMLParser):
    """Per <svg>: the class of each <rect> and the text of its <title>."""

    def __init__(self):
        super().__init__()
        self.svgs, self.rect, self.in_title = [], None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs.append([])
        elif tag == "rect" and self.svgs:
            self.rect = [a.get("class", ""), ""]
            self.svgs[-1].append(self.rect)
        elif tag == "title" and self.rect is not None:
            self.in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag == "rect":
            self.rect = None

    def handle_data(self, data):
        if self.in_title and self.rect is not None:
            self.rect[1] += data


def main():
    tmp = tempfile.mkdtemp()
    try:
        ds = os.path.join(tmp, "ds")
        common = ["--imgs", "chelsea.jpg", "--models", "resnet18", "--threads", "2", "--warmup", "1",
                  "--lt_smpl_count", "3", "--passes", "2", "--out", ds, "--quiet"]
        r = run(["profile", "--mode", "0"] + common +
                ["--eval_tgr", "--eval_latency", "--power-source", "tegrastats", "--tegrastats", FAKE,
                 "--tgr_smpl_duration", "0.1", "--tgr_smpl_boundary", "0.04", "--cooldown", "0.02"])
        check("profile mode 0 (fake tegrastats)", r.returncode == 0, r.stderr[-1500:])
        r = run(["profile", "--mode", "1", "--eval_latency"] + common)
        check("profile mode 1 (latency only)", r.returncode == 0, r.stderr[-1500:])
        # No calibration yet: no calibration section.
        out = os.path.join(tmp, "report.html")
        r = run(["report", "--dataset", ds, "--out", out])
        check("without a calibration file, no calibration section",
              r.returncode == 0 and "Power sensor calibration" not in open(out).read(), r.stderr[-800:])
        # The sensor's calibration, measured (fake tegrastats lagging through tau = 0.2 s).
        r = subprocess.run([JPLPROF, "calibrate", "--power-source", "tegrastats", "--tegrastats", FAKE,
                            "--periods", "2", "--half-period", "1", "--threads", "1", "--out", ds],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300,
                           env=dict(os.environ, FAKE_TEGRASTATS_LOAD="VDD_SYS_CPU:1000", FAKE_TEGRASTATS_LAG_S="0.2"))
        cal_path = os.path.join(ds, ".jplprof", "calibration.json")
        check("calibrate (fake tegrastats, tau 0.2 s)", r.returncode == 0 and os.path.exists(cal_path),
              r.stderr[-800:])
        rails = json.load(open(cal_path))["rails"] if os.path.exists(cal_path) else {}
        r = run(["report", "--dataset", ds, "--out", out, "--note", "power from the fake tegrastats"])
        check("report runs", r.returncode == 0 and os.path.exists(out), r.stderr[-1500:])
        page = open(out).read() if os.path.exists(out) else ""
        low = page.lower()
        check("self-contained: no script, src, href or url()",
              page and "<script" not in low and " src=" not in low and " href=" not in low and "url(" not in low
              and low.count("http") == low.count('xmlns="http://www.w3.org/2000/svg"'), "")
        p = Svgs()
        p.feed(page)
        layers = json.load(open(glob.glob(os.path.join(ds, ".jplprof", "manifests", "Mode0_cpu_*.json"))[0]))
        table = layers["models"][0]["layers"]
        charts = [s for s in p.svgs if any(c == "bar" for c, _ in s)]
        bars = [[t for c, t in s if c == "bar"] for s in charts]
        check("one card per mode, one bar per layer in each",
              len(charts) == 2 and all(len(b) == len(table) == 14 for b in bars), "%s" % [len(b) for b in bars])
        check("each bar's tooltip names the layer's path and type",
              all("%s (%s)" % (l["path"], l["type"]) in b[i] for b in bars for i, l in enumerate(table)),
              bars[0][:2] if bars else "")
        pbars = [[t for c, t in s if c == "pbar"] for s in charts]
        check("power bars where power was measured (mode 0), none where not (mode 1)",
              [len(x) for x in pbars] == [14, 0], "%s" % [len(x) for x in pbars])
        check("the note and the closure ratio are shown", "power from the fake tegrastats" in page and
              "closure (isolated medians summed / end-to-end): " in page and
              "closure (isolated medians summed / end-to-end): -" not in page, "")

        # The calibration section: a row per rail with the file's tau, and each curve
        # the first-order step response 1 - exp(-t / tau) of that tau.
        section = page.split("<h2>Power sensor calibration</h2>", 1)[-1] if "Power sensor calibration" in page else ""
        problems = []
        tmax = float(re.search(r'class="sh">([0-9.e+-]+) s</text>', section).group(1)) if section else 0
        for name, rail in rails.items():
            tau = rail["tau_s"]
            row = re.search(r"<tr><td>%s</td><td class=\"n\">([^<]*)</td>" % re.escape(name), section)
            if not row or abs(float(row.group(1)) - tau) > 1e-3 * max(tau, 1e-9):
                problems.append("%s: row %s, file tau %g" % (name, row and row.group(1), tau))
            curve = re.search(r'points="([^"]*)"><title>%s: tau' % re.escape(name), section)
            if not curve or tmax <= 0:
                problems.append("%s: no curve" % name)
                continue
            pts = [tuple(map(float, p.split(","))) for p in curve.group(1).split()]
            worst = max(abs((130 - y) / 110 - ((1 - math.exp(-((x - 40) / 360 * tmax) / tau)) if tau > 0 else 1))
                        for x, y in pts)
            if len(pts) < 20 or worst > 0.01:
                problems.append("%s: %d points, off the step response by up to %.3g" % (name, len(pts), worst))
        check("calibration section: each rail's tau as in the file, its curve the step response of that tau",
              section and "VDD_SYS_CPU" in rails and 0.1 < rails["VDD_SYS_CPU"]["tau_s"] < 0.3 and not problems,
              "; ".join(problems) or "rails %s" % {k: v["tau_s"] for k, v in rails.items()})

        chromium = shutil.which("chromium")
        if not chromium:
            print("SKIP report/chromium renders it: no chromium on PATH (apt-get install chromium)")
        else:
            png = os.path.join(tmp, "report.png")
            profile_dir = tempfile.mkdtemp(dir=tmp)
            r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                "--no-first-run", "--user-data-dir=" + profile_dir, "--window-size=1280,1200",
                                "--screenshot=" + png, "file://" + out],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
            why = r.stderr[-800:]
            ok = r.returncode == 0 and os.path.exists(png)
            if ok:
                from PIL import Image
                img = Image.open(png).convert("RGB")
                colours = img.getcolors(maxcolors=1 << 20) or []
                bar_px = sum(n for n, c in colours if all(abs(c[i] - BAR_RGB[i]) <= 8 for i in range(3)))
                ok = img.size == (1280, 1200) and len(colours) > 20 and bar_px > 500
                why = "%s, %d colours, %d bar pixels" % (img.size, len(colours), bar_px)
            check("headless chromium renders it: not blank, bars drawn", ok, why)

        r = run(["report", "--dataset", ds])
        check("no --out: a usage error", r.returncode == 2 and "--out" in r.stderr, r.stderr)
        ds_nm = os.path.join(tmp, "nomanifest")
        shutil.copytree(ds, ds_nm)
        shutil.rmtree(os.path.join(ds_nm, ".jplprof", "manifests"))
        r = run(["report", "--dataset", ds_nm, "--out", os.path.join(tmp, "x.html")])
        check("no manifest: an error naming it", r.returncode == 1 and "no manifest for Mode0/cpu" in r.stderr and
              not os.path.exists(os.path.join(tmp, "x.html")), r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
