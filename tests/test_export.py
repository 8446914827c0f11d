"""`jplprof export`: the processed dataset joined with the manifest's layer table.

Makes a small dataset with the fake tegrastats (resnet18: mode 0 with power and
latency, mode 1 latency only), then checks: every layer once per (mode, device,
network), the documented columns, every number equal to `process --stats`'s
(the CSV and JSONL print the shortest round-trip decimal, so equal means
equal), the layer table equal to the manifest's, pandas read_csv with no
options (Debian's python3-pandas), the CSV writer's quoting on a path holding
a comma and a quote, trtexec's --exportProfile shape, and the errors for a
dataset without manifest and for a missing mode.

Environment: JPLPROF, JP_TEST_BIN_DIR (see run_tests.sh).
"""
import csv
import glob
import io
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

# The documented columns (profiler/DATASET.md, "jplprof export"), in order.
COLUMNS = ("mode,device,network,layer,layer_index,layer_path,layer_type,input_shape,output_shape,params,"
           "macs,kernels,kernel_choices,images,image_count,latency_mean_s,latency_median_s,latency_std_s,"
           "latency_n,latency_in_pass_median_s,latency_in_pass_mean_s,latency_in_pass_std_s,"
           "latency_in_pass_n,power_param,power_mean_mw,power_median_mw,power_std_mw,power_n,"
           "power_windows,power_n_effective,power_corrected_mw,power_corrected_ci95_low_mw,"
           "power_corrected_ci95_high_mw,power_ci_method,tau_s,tau_from,time_per_call_s,energy_gross_mj,"
           "energy_net_mj,idle_power_mw,closure_ratio,closure_in_pass_ratio,end_to_end_median_s").split(",")


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS export/%s" % name)
    else:
        failures += 1
        print("FAIL export/%s: %s" % (name, why))
    sys.stdout.flush()


def run(args, timeout=300):
    return subprocess.run([JPLPROF] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def expected(processed, row):
    """The value process gives for a column of this row (None: no value)."""
    d = processed[row["network"]][row["device"]]
    k, p = row["layer"], row["power_param"]

    def get(*path):
        v = d
        for key in path:
            if not isinstance(v, dict) or key not in v:
                return None
            v = v[key]
        return v
    ci = get("power_stats", k, p, "corrected_ci95") if p else None
    return {
        "latency_mean_s": get("latency", k), "latency_median_s": get("latency_stats", k, "median"),
        "latency_std_s": get("latency_stats", k, "std"), "latency_n": get("latency_stats", k, "n"),
        "latency_in_pass_median_s": get("latency_in_pass", k, "median"),
        "latency_in_pass_n": get("latency_in_pass", k, "n"),
        "power_mean_mw": get("power", k, p) if p else None,
        "power_median_mw": get("power_stats", k, p, "median") if p else None,
        "power_corrected_mw": get("power_corrected", k, p) if p else None,
        "power_corrected_ci95_low_mw": ci[0] if ci else None,
        "power_corrected_ci95_high_mw": ci[1] if ci else None,
        "power_n_effective": get("power_stats", k, p, "n_effective") if p else None,
        "tau_s": get("power_lag", p, "tau_s") if p else None,
        "energy_gross_mj": get("energy_per_call", k, p, "gross_mj") if p else None,
        "energy_net_mj": get("energy_per_call", k, p, "net_mj") if p else None,
        "closure_ratio": get("closure", "ratio"),
    }


def main():
    tmp = tempfile.mkdtemp()
    try:
        ds = os.path.join(tmp, "ds")
        common = ["--imgs", "chelsea.jpg", "--models", "resnet18", "--threads", "2", "--warmup", "1",
                  "--lt_smpl_count", "3", "--passes", "2", "--out", ds]
        r = run(["profile", "--mode", "0"] + common +
                ["--eval_tgr", "--eval_latency", "--power-source", "tegrastats", "--tegrastats", FAKE,
                 "--tgr_smpl_duration", "0.1", "--tgr_smpl_boundary", "0.04", "--cooldown", "0.02"])
        check("profile mode 0 (fake tegrastats)", r.returncode == 0, r.stderr[-1500:])
        r = run(["profile", "--mode", "1", "--eval_latency"] + common)
        check("profile mode 1 (latency only)", r.returncode == 0, r.stderr[-1500:])
        r = run(["process", "--dataset", ds, "--stats"])
        check("process --stats", r.returncode == 0, r.stderr[-1500:])
        processed = {m: json.load(open(os.path.join(ds, "Processed", "Mode%s.json" % m))) for m in ("0", "1")}
        manifests = {m: json.load(open(glob.glob(os.path.join(ds, ".jplprof", "manifests", "Mode%s_cpu_*.json" % m))[0]))
                     for m in ("0", "1")}

        out_csv = os.path.join(tmp, "all.csv")
        r = run(["export", "--dataset", ds, "--out", out_csv])
        check("export csv", r.returncode == 0, r.stderr[-1500:])
        text = open(out_csv).read()
        rows = list(csv.DictReader(io.StringIO(text)))
        header = text.split("\n", 1)[0].split(",")
        check("csv columns as documented", header == COLUMNS, "header %s" % header)
        keys = [(x["mode"], x["device"], x["network"], x["layer"]) for x in rows]
        want = [(m, "cpu", "resnet18", str(i)) for m in ("0", "1") for i in range(14)]
        check("every layer once, in order", keys == want, "rows %s" % keys)

        bad = []
        for x in rows:
            table = {l["key"]: l for l in manifests[x["mode"]]["models"][0]["layers"]}[x["layer"]]
            for col, key in (("layer_path", "path"), ("layer_type", "type"), ("input_shape", "input"),
                             ("output_shape", "output")):
                if x[col] != table[key]:
                    bad.append((x["mode"], x["layer"], col, x[col], table[key]))
            for col, key in (("params", "params"), ("macs", "macs"), ("layer_index", "index")):
                if int(x[col]) != table[key]:
                    bad.append((x["mode"], x["layer"], col, x[col], table[key]))
            if x["kernels"] != ";".join(table["kernels"]):
                bad.append((x["layer"], "kernels", x["kernels"]))
            for col, v in expected(processed[x["mode"]], x).items():
                got = None if x[col] == "" else float(x[col])
                if got != v:
                    bad.append((x["mode"], x["layer"], col, x[col], v))
        check("csv numbers equal process's and the manifest's", not bad, "%s" % bad[:6])
        m0 = [x for x in rows if x["mode"] == "0"]
        m1 = [x for x in rows if x["mode"] == "1"]
        check("power columns filled where power was measured, empty where not",
              all(x["power_mean_mw"] and x["power_param"] == "VDD_SYS_CPU" for x in m0) and
              all(not x["power_mean_mw"] and not x["energy_gross_mj"] for x in m1),
              "mode 0 %s / mode 1 %s" % (m0[0]["power_mean_mw"], m1[0]["power_mean_mw"]))
        check("image set from the manifest", all(x["images"] == "chelsea.jpg" and x["image_count"] == "1" for x in rows),
              rows[0]["images"])

        try:
            import pandas
        except ImportError:
            print("SKIP export/pandas: python3-pandas is not installed (apt-get install python3-pandas)")
            pandas = None
        if pandas is not None:
            df = pandas.read_csv(out_csv)
            conds = {"columns": list(df.columns) == COLUMNS, "rows": len(df) == 28,
                     "macs int": df["macs"].dtype.kind == "i", "median float": df["latency_median_s"].dtype.kind == "f",
                     "shape text": df["input_shape"][0] == "[1, 3, 224, 224]",
                     # pandas' default float parser (1.5's xstrtod) is not round-trip exact: it keeps
                     # about 15 significant digits (up to 1e-12 off on random doubles); the csv
                     # module's float() above checked the file's digits exactly
                     "latency values": all(abs(a - float(b)) <= 1e-11 * abs(float(b)) for a, b in
                                           zip(df["latency_mean_s"], [x["latency_mean_s"] for x in rows]))}
            check("pandas read_csv needs no options", all(conds.values()),
                  "failed: %s; latency_mean_s %s against %s" % ([k for k, v in conds.items() if not v],
                                                               list(df["latency_mean_s"])[:4],
                                                               [x["latency_mean_s"] for x in rows][:4]))

        # quoting: a layer path with a comma and a quote, a type with a leading space
        ds_q = os.path.join(tmp, "quoted")
        shutil.copytree(ds, ds_q)
        mp = glob.glob(os.path.join(ds_q, ".jplprof", "manifests", "Mode0_cpu_*.json"))[0]
        m = json.load(open(mp))
        m["models"][0]["layers"][0]["path"] = 'odd,"name"\nline2'
        m["models"][0]["layers"][0]["type"] = " Conv2d"
        json.dump(m, open(mp, "w"))
        r = run(["export", "--dataset", ds_q, "--modes", "0"])
        rows_q = list(csv.DictReader(io.StringIO(r.stdout)))
        ok = r.returncode == 0 and rows_q and rows_q[0]["layer_path"] == 'odd,"name"\nline2' and \
            rows_q[0]["layer_type"] == " Conv2d" and len(rows_q) == 14
        if ok and pandas is not None:
            dq = pandas.read_csv(io.StringIO(r.stdout))
            ok = dq["layer_path"][0] == 'odd,"name"\nline2' and len(dq) == 14
        check("csv quoting (comma, quote, newline, leading space)", ok, r.stderr[-500:] + r.stdout[:300])

        r = run(["export", "--dataset", ds, "--format", "jsonl"])
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        bad = []
        for x in lines:
            for col, v in expected(processed[x["mode"]], x).items():
                if x[col] != v:
                    bad.append((x["mode"], x["layer"], col, x[col], v))
        check("jsonl: same rows, numbers equal process's",
              r.returncode == 0 and [list(x) for x in lines] == [COLUMNS] * 28 and not bad,
              r.stderr[-500:] + "%s" % bad[:5])

        tdir = os.path.join(tmp, "trt")
        r = run(["export", "--dataset", ds, "--format", "trtexec", "--out", tdir])
        files = sorted(os.listdir(tdir)) if os.path.isdir(tdir) else []
        ok = r.returncode == 0 and files == ["Mode0_cpu_resnet18.profile.json", "Mode1_cpu_resnet18.profile.json"]
        why = "%s %s" % (files, r.stderr[-500:])
        if ok:
            prof = json.load(open(os.path.join(tdir, files[0])))
            lat = processed["0"]["resnet18"]["cpu"]
            paths = [l["path"] for l in manifests["0"]["models"][0]["layers"]]
            ok = (prof[0] == {"count": 3} and [e["name"] for e in prof[1:]] == paths and
                  all(set(e) == {"name", "timeMs", "averageMs", "medianMs", "percentage"} for e in prof[1:]) and
                  all(abs(e["averageMs"] - lat["latency"][str(i)] * 1e3) <= 1e-12 * e["averageMs"]
                      for i, e in enumerate(prof[1:])) and
                  all(abs(e["medianMs"] - lat["latency_stats"][str(i)]["median"] * 1e3) <= 1e-12 * e["medianMs"]
                      for i, e in enumerate(prof[1:])) and
                  abs(sum(e["percentage"] for e in prof[1:]) - 100) < 1e-9)
            why = json.dumps(prof[:3])
        check("trtexec --exportProfile shape, per network", ok, why)

        # errors name what is missing
        ds_nm = os.path.join(tmp, "nomanifest")
        shutil.copytree(ds, ds_nm)
        shutil.rmtree(os.path.join(ds_nm, ".jplprof", "manifests"))
        r = run(["export", "--dataset", ds_nm])
        check("no manifest: an error naming it", r.returncode == 1 and "no manifest for Mode0/cpu" in r.stderr
              and not r.stdout, "rc %d: %s" % (r.returncode, r.stderr))
        r = run(["export", "--dataset", ds, "--modes", "7"])
        check("a missing mode: an error naming it and the modes found",
              r.returncode != 0 and "Mode7" in r.stderr and "0, 1" in r.stderr, "rc %d: %s" % (r.returncode, r.stderr))
        r = run(["export", "--dataset", ds, "--format", "xls"])
        check("a bad --format: a usage error", r.returncode == 2 and "--format" in r.stderr, r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
