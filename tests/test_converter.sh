#!/usr/bin/env bash
# test_converter.sh: tests of tools/convert_weights (the converter and its safetensors I/O).
#
# Prints one line per case, "PASS <name>", "FAIL <name>: <why>" or "SKIP <name>: <why>",
# and exits non-zero when any case fails.  Works only in temporary folders (never in
# weights/); takes about 15 s on 2 cores.  PYTHON overrides the interpreter (default
# /usr/bin/python3, Debian's, which has torch and torchvision).

set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
CONVERT="$REPO/tools/convert_weights/convert_weights.py"
WEIGHTS="$REPO/weights"
export PYTHONPATH="$REPO/tools/convert_weights${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1

failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
skip() { echo "SKIP $1: $2"; }

CASES="safetensors_io_round_trip safetensors_io_rejects_bad_files help list list_alone random_init_matches_json
pth_round_trip pth_wrapped_state_dict pth_missing_key pth_wrong_shape pth_unexpected_key
gen_json_resnet18_not_stale gen_json_efficientnet_b0_not_stale"

if ! "$PYTHON" -c 'import torch, torchvision, numpy' 2>/dev/null; then
    for c in $CASES; do skip "$c" "$PYTHON cannot import torch, torchvision and numpy"; done
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jp_test_converter.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

# Runs a command, keeping its stdout+stderr in $TMP/log; returns its status.
run() { "$@" >"$TMP/log" 2>&1; }
last_line() { tail -n 1 "$TMP/log"; }

# --- safetensors_io alone -----------------------------------------------------------------

if run "$PYTHON" - "$TMP/st" <<'EOF'
import sys, os, numpy as np, safetensors_io as st
path = sys.argv[1]
rng = np.random.RandomState(0)
tensors = {"b": rng.randn(3, 5).astype(np.float32), "a.weight": rng.randn(7).astype(np.float32),
           "scalar": np.array(2.5, np.float32), "empty": np.zeros((0, 4), np.float32),
           "odd#1": rng.randn(1, 3, 2, 2).astype(np.float32)}
st.save(path, tensors, {"model": "x", "seed": "1"})
raw = open(path, "rb").read()
n = int.from_bytes(raw[:8], "little")
assert (8 + n) % 8 == 0, f"data starts at {8 + n}, not 8-aligned"
back, meta = st.load(path)
assert meta == {"model": "x", "seed": "1"}, meta
assert sorted(back) == sorted(tensors), sorted(back)
for k, v in tensors.items():
    assert back[k].dtype == np.float32 and back[k].shape == v.shape, k
    assert back[k].tobytes() == v.tobytes(), k
assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")], "temp left"
EOF
then pass safetensors_io_round_trip; else fail safetensors_io_round_trip "$(last_line)"; fi

if run "$PYTHON" - "$TMP" <<'EOF'
import sys, os, json, struct, numpy as np, safetensors_io as st
d = sys.argv[1]
def write(name, header, data=b"", raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    return p
good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
short = os.path.join(d, "c0")
open(short, "wb").write(b"\1\2\3")
past_end = os.path.join(d, "c1")
open(past_end, "wb").write(struct.pack("<Q", 1000) + b"{}")
cases = {
    "short file": (short, "shorter"),
    "header past end": (past_end, "past the end"),
    "not json": (write("c3", None, raw_header=b"{nope"), "not valid JSON"),
    "duplicate key": (write("c4", None, b"\0" * 8, raw_header=b'{"a":{"dtype":"F32","shape":[2],'
                      b'"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
                      "duplicate key"),
    "dtype": (write("c5", {"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
              "not supported"),
    "size mismatch": (write("c6", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                            b"\0" * 8), "needs 12"),
    "out of bounds": (write("c7", good, b"\0" * 4), "outside the data buffer"),
    "overlap": (write("c8", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                      b"\0" * 8), "overlaps"),
    "hole": (write("c9", {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                   b"\0" * 8), "hole"),
    "trailing": (write("c10", good, b"\0" * 12), "trailing"),
    "metadata value": (write("c11", dict(good, __metadata__={"k": 1}), b"\0" * 8), "not a string"),
    "unknown field": (write("c12", {"a": dict(good["a"], extra=1)}, b"\0" * 8), "unknown fields"),
    "negative dim": (write("c13", {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
                           b"\0" * 8), "integers >= 0"),
}
for what, (path, needle) in cases.items():
    try:
        st.load(path)
    except st.SafetensorsError as e:
        assert needle in str(e), f"{what}: message {e!r} lacks {needle!r}"
        assert path in str(e), f"{what}: message {e!r} does not name the file"
    else:
        raise AssertionError(f"{what}: accepted")
for bad, needle in (({"x": np.zeros(2, np.float64)}, "only float32"),
                    ({"__metadata__": np.zeros(2, np.float32)}, "reserved")):
    try:
        st.save(os.path.join(d, "bad.st"), bad)
    except st.SafetensorsError as e:
        assert needle in str(e), f"save: {e!r} lacks {needle!r}"
    else:
        raise AssertionError(f"save accepted {bad}")
assert not os.path.exists(os.path.join(d, "bad.st"))
EOF
then pass safetensors_io_rejects_bad_files; else fail safetensors_io_rejects_bad_files "$(last_line)"; fi

# --- the converter ------------------------------------------------------------------------

# --help: every option it has is listed, each with an example ("e.g. ...").
if run "$PYTHON" "$CONVERT" --help && "$PYTHON" - "$TMP/log" >"$TMP/why" 2>&1 <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
usage = " ".join(text.split("\n\n")[0].split())
options = sorted(set(re.findall(r"\[(--[a-z-]+)", usage)) - {"--help"})
assert len(options) >= 10, f"usage lists {options}"
paragraphs, current = {}, None
for line in text.splitlines():
    m = re.match(r"  (--[a-z-]+)", line)
    if m:
        current = m.group(1)
        paragraphs[current] = line
    elif current and line.startswith("      "):
        paragraphs[current] += " " + line.strip()
    else:
        current = None
missing = [o for o in options if "e.g." not in paragraphs.get(o, "")]
assert not missing, f"no example for {missing}"
PYEOF
then pass help; else fail help "$(tail -n 1 "$TMP/why")"; fi

# --list: every model of AvailableModel.txt with its layer count; nothing written.
if run "$PYTHON" "$CONVERT" --list --weights-dir "$TMP/nolist" &&
   [ "$(grep -c . "$REPO/AvailableModel.txt")" -eq "$(grep -cE '^[a-z0-9_]+ +[0-9]+  ' "$TMP/log")" ] &&
   ! [ -e "$TMP/nolist/resnet18.json" ]
then pass list; else fail list "$(head -c 300 "$TMP/log")"; fi
if ! run "$PYTHON" "$CONVERT" --list --all && grep -q -- "--list prints the models" "$TMP/log"
then pass list_alone; else fail list_alone "--list --all: $(last_line)"; fi

# Checks that a weights file holds exactly the tensors of a model description, with their
# shapes, and the expected metadata.  Args: weights file, json file, expected source.
CHECK_AGAINST_JSON='
import sys, json, safetensors_io as st
path, json_path, source = sys.argv[1:4]
header, meta = st.read_header(path)
doc = json.load(open(json_path))
want = {p["name"]: tuple(p["shape"]) for op in doc["ops"] for p in op["params"].values()}
got = {k: v[1] for k, v in header.items()}
assert set(got) == set(want), f"missing {sorted(set(want) - set(got))[:3]}, extra {sorted(set(got) - set(want))[:3]}"
bad = [k for k in want if got[k] != want[k]]
assert not bad, f"shape of {bad[0]}: {got[bad[0]]} vs {want[bad[0]]}"
assert meta["model"] == doc["model"] and meta["source"] == source, meta
assert meta["format"] == "jplprof-weights-1" and meta["torchvision_version"], meta
'

out="$TMP/rand.safetensors"
if ! run "$PYTHON" "$CONVERT" --model resnet18 --random-init --seed 7 --out "$out"; then
    fail random_init_matches_json "convert exited non-zero: $(last_line)"
elif ! run "$PYTHON" -c "$CHECK_AGAINST_JSON" "$out" "$WEIGHTS/resnet18.json" random-init; then
    fail random_init_matches_json "$(last_line)"
elif ! run "$PYTHON" -c 'import sys, safetensors_io as st; m = st.read_header(sys.argv[1])[1]; assert m["seed"] == "7", m' "$out"; then
    fail random_init_matches_json "seed not in metadata: $(last_line)"
else
    pass random_init_matches_json
fi

# Makes the .pth files of the next cases from one randomly initialised resnet18 (its
# state_dict includes num_batches_tracked, as torchvision's files do).
PTH="$TMP/pth"
mkdir -p "$PTH"
if ! run "$PYTHON" - "$PTH" <<'EOF'
import sys, os, torch, torchvision
d = sys.argv[1]
torch.manual_seed(11)
sd = torchvision.models.resnet18(weights=None).state_dict()
for k, v in sd.items():
    if v.is_floating_point():
        v.copy_(torch.randn(v.shape))
torch.save(sd, os.path.join(d, "good.pth"))
torch.save({"model": sd, "epoch": 90}, os.path.join(d, "wrapped.pth"))
missing = dict(sd); del missing["layer2.1.bn1.running_var"]
torch.save(missing, os.path.join(d, "missing.pth"))
shape = dict(sd); shape["layer3.0.conv2.weight"] = torch.zeros(256, 256, 3, 1)
torch.save(shape, os.path.join(d, "shape.pth"))
extra = dict(sd); extra["layer4.1.extra.weight"] = torch.zeros(3)
torch.save(extra, os.path.join(d, "extra.pth"))
EOF
then
    for c in pth_round_trip pth_wrapped_state_dict pth_missing_key pth_wrong_shape pth_unexpected_key; do
        fail "$c" "could not make the test .pth files: $(last_line)"
    done
else
    # Args: case name, .pth file.
    round_trip() {
        local name=$1 pth=$2 out="$TMP/$1.safetensors"
        if ! run "$PYTHON" "$CONVERT" --model resnet18 --pth "$pth" --out "$out"; then
            fail "$name" "convert exited non-zero: $(last_line)"
        elif ! run "$PYTHON" - "$pth" "$out" <<'EOF'
import sys, hashlib, numpy as np, torch, safetensors_io as st
pth, out = sys.argv[1:3]
sd = torch.load(pth, map_location="cpu")
sd = sd.get("model", sd)
tensors, meta = st.load(out)
want = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
assert set(tensors) == set(want), sorted(set(tensors) ^ set(want))[:3]
for k, v in want.items():
    a = v.numpy()
    assert tensors[k].shape == a.shape and tensors[k].view(np.uint32).tobytes() == a.view(np.uint32).tobytes(), f"{k} differs"
assert meta["source_sha256"] == hashlib.sha256(open(pth, "rb").read()).hexdigest(), meta
assert meta["source"] == pth.rsplit("/", 1)[-1] and meta["model"] == "resnet18", meta
EOF
        then
            fail "$name" "$(last_line)"
        else
            pass "$name"
        fi
    }
    round_trip pth_round_trip "$PTH/good.pth"
    round_trip pth_wrapped_state_dict "$PTH/wrapped.pth"

    # Args: case name, .pth file, the key the error must name.
    must_refuse() {
        local name=$1 pth=$2 key=$3 dir="$TMP/$1"
        mkdir -p "$dir"
        if run "$PYTHON" "$CONVERT" --model resnet18 --pth "$pth" --out "$dir/out.safetensors"; then
            fail "$name" "convert exited 0"
        elif ! grep -q "error: .*'$key'" "$TMP/log"; then
            fail "$name" "no error line names '$key': $(last_line)"
        elif [ -n "$(ls -A "$dir")" ]; then
            fail "$name" "left files behind: $(ls -A "$dir" | tr '\n' ' ')"
        else
            pass "$name"
        fi
    }
    must_refuse pth_missing_key "$PTH/missing.pth" layer2.1.bn1.running_var
    must_refuse pth_wrong_shape "$PTH/shape.pth" layer3.0.conv2.weight
    must_refuse pth_unexpected_key "$PTH/extra.pth" layer4.1.extra.weight
fi

# --- committed model descriptions are not stale -------------------------------------------

# Args: model.  Regenerates the JSON in a temp dir and compares it with weights/.  A
# different torchvision version string alone is reported but passes.
not_stale() {
    local model=$1 name="gen_json_$1_not_stale" dir="$TMP/json_$1"
    mkdir -p "$dir"
    if ! run "$PYTHON" "$CONVERT" --model "$model" --gen-json --weights-dir "$dir"; then
        fail "$name" "gen-json exited non-zero: $(last_line)"
    elif [ ! -f "$WEIGHTS/$model.json" ]; then
        fail "$name" "$WEIGHTS/$model.json is missing"
    elif cmp -s "$dir/$model.json" "$WEIGHTS/$model.json"; then
        pass "$name"
    elif diff <(grep -v '"torchvision_version"' "$dir/$model.json") \
              <(grep -v '"torchvision_version"' "$WEIGHTS/$model.json") >/dev/null; then
        pass "$name (only the torchvision version differs)"
    else
        local first
        first=$(diff "$dir/$model.json" "$WEIGHTS/$model.json" | sed -n 2p | cut -c1-120)
        fail "$name" "weights/$model.json differs from a fresh --gen-json (first diff: $first)"
    fi
}
not_stale resnet18
not_stale efficientnet_b0

[ "$failures" -eq 0 ]
