#!/usr/bin/env bash
# tests/cross/aarch64.sh: jplprof built for AArch64 (the Jetsons) on this
# x86-64 Debian 12 machine and tested under user-mode emulation.
#
#   1. installs (apt-get, as root; skipped when all is there already): the
#      cross compiler gcc-aarch64-linux-gnu, qemu-user, and the arm64
#      multiarch -dev packages of every library jplprof links (OpenBLAS,
#      cJSON, stb, libjpeg, libcrypto), after dpkg --add-architecture arm64;
#      python3-torchvision for the reference side;
#   2. builds jplprof and the C tests with
#          make CROSS=aarch64-linux-gnu- NATIVE=0 CUDA=0 tests-build
#      into build-aarch64-linux-gnu/ (pkg-config reads
#      /usr/lib/aarch64-linux-gnu/pkgconfig: see the Makefile), checks that
#      `file` calls the binary ARM aarch64 and that the AArch64 loader, run
#      under qemu, finds every library it needs;
#   3. runs under qemu-aarch64: every C unit test (tests/run_tests.sh with
#      JP_TEST_EXEC=qemu-aarch64); `jplprof infer` on resnet18 and
#      efficientnet_b0 with converted random-init weights against
#      torchvision, layer by layer and op by op, at JP_CROSS_SIZE (default
#      112) square inputs (tests/test_models.py, JPLPROF a qemu wrapper:
#      PyTorch runs natively, only jplprof is emulated); a short `jplprof
#      profile` + `process` of efficientnet_b0 with the fake tegrastats in the
#      TX2 (JetPack 4) and Orin NX (JetPack 6) formats (tests/test_profile.py,
#      quick mode).  The fake tegrastats and the fake libnvidia-ml are test
#      fixtures: the first is built for this machine (qemu-user cannot exec
#      an AArch64 child), the second for AArch64 (the emulated test dlopens
#      it).
#
# Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
# Environment: JOBS (make -j, default 2), JP_CROSS_SIZE, JP_CROSS_NO_INSTALL=1
# (use what is installed).
set -uo pipefail
cd "$(dirname "$0")/../.."

TRIPLET=aarch64-linux-gnu
CROSS=$TRIPLET-
BUILD=build-$TRIPLET
JOBS=${JOBS:-2}
SIZE=${JP_CROSS_SIZE:-112}
PYTHON=${PYTHON:-/usr/bin/python3}
QEMU=qemu-aarch64
start=$SECONDS

passed=0 failed=0 skipped=0
failures=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); failures+=("$1"); }

# run_step NAME CMD...: runs CMD, shows and counts its PASS/FAIL/SKIP lines
# (as tests/run_tests.sh does); a non-zero exit without a FAIL line, or no
# case at all, is one failure.
run_step() {
    local name=$1; shift
    local log="$log_dir/step.log" t0=$SECONDS
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$? p f s
    grep -E '^(PASS|FAIL|SKIP) ' "$log"
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc without a FAIL line; its output:"
        tail -n 30 "$log" | sed 's/^/    /'
        f=1
    elif [ "$f" -gt 0 ]; then
        echo "   ($name output, last lines:)"
        grep -vE '^(PASS|SKIP) ' "$log" | tail -n 40 | sed 's/^/    /'
    elif [ "$((p + s))" -eq 0 ]; then
        echo "FAIL $name: ran no case"
        tail -n 30 "$log" | sed 's/^/    /'
        f=1
    fi
    [ "$f" -gt 0 ] && failures+=("$name")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    echo "   $name: $p passed, $f failed, $s skipped ($((SECONDS - t0)) s)"
}

finish() {
    echo
    echo "aarch64.sh: $((SECONDS - start)) s in all"
    [ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}

# ---- 1. packages ------------------------------------------------------------
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file pkg-config make
          libopenblas-dev:arm64 libcjson-dev:arm64 libstb-dev:arm64 libjpeg-dev:arm64
          libssl-dev:arm64 libgomp1:arm64 python3 python3-numpy python3-torchvision)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
echo "== packages"
if [ ${#missing[@]} -eq 0 ]; then
    pass "cross/packages installed"
elif [ "${JP_CROSS_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" -ne 0 ]; then
    fail "cross/packages installed" "missing ${missing[*]}; as root: dpkg --add-architecture arm64 && apt-get update && apt-get install ${missing[*]}"
    finish
else
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    if apt-get update -qq >"$log_dir/apt.log" 2>&1 &&
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log_dir/apt.log" 2>&1; then
        pass "cross/packages installed (${#missing[@]} missing, installed in $((SECONDS - t0)) s)"
    else
        fail "cross/packages installed" "apt-get failed for ${missing[*]}: $(tail -n 5 "$log_dir/apt.log")"
        finish
    fi
fi

# ---- 2. build ---------------------------------------------------------------
echo "== build"
t0=$SECONDS
if make -j"$JOBS" CROSS="$CROSS" NATIVE=0 CUDA=0 tests-build >"$log_dir/make.log" 2>&1; then
    pass "cross/make CROSS=$CROSS NATIVE=0 CUDA=0 tests-build ($((SECONDS - t0)) s, $(grep -c ' warning: ' "$log_dir/make.log") warnings)"
else
    fail "cross/make CROSS=$CROSS NATIVE=0 CUDA=0 tests-build" "$(grep -E 'error|Error' "$log_dir/make.log" | head -n 10)"
    finish
fi
# The fake tegrastats runs as jplprof's child: built for this machine.
mkdir -p "$BUILD/host"
if cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$BUILD/host/fake_tegrastats" tests/fake_tegrastats.c -lm \
    2>"$log_dir/cc.log"; then
    pass "cross/fake tegrastats built for the host"
else
    fail "cross/fake tegrastats built for the host" "$(head -n 5 "$log_dir/cc.log")"
fi
# jplprof under qemu, for the Python tests (which run JPLPROF as a program).
cat >"$BUILD/jplprof-qemu" <<EOF
#!/bin/sh
exec $QEMU "\$(dirname "\$0")/jplprof" "\$@"
EOF
chmod +x "$BUILD/jplprof-qemu"

what=$(file -b "$BUILD/jplprof")
if [[ $what == *"ARM aarch64"* ]]; then
    pass "cross/file says ARM aarch64"
else
    fail "cross/file says ARM aarch64" "file: $what"
fi
# ldd's work, done by the AArch64 loader itself under qemu.
libs=$($QEMU /lib/ld-linux-aarch64.so.1 --list "$BUILD/jplprof" 2>&1)
if [ $? -eq 0 ] && ! grep -q 'not found' <<<"$libs" && grep -q libopenblas <<<"$libs"; then
    pass "cross/the loader under qemu finds every library ($(grep -c '=>' <<<"$libs") libraries)"
else
    fail "cross/the loader under qemu finds every library" "$libs"
fi
out=$("$BUILD/jplprof-qemu" models 2>&1)
if grep -q '^resnet18 ' <<<"$out"; then
    pass "cross/jplprof models runs under qemu"
else
    fail "cross/jplprof models runs under qemu" "$out"
fi

# ---- 3. tests under qemu ------------------------------------------------------
# The C tests, through run_tests.sh: its own summary line is counted here.
echo "== C unit tests under $QEMU"
t0=$SECONDS
# JP_TEST_TIME_SCALE (tests/jp_test.h): the time bounds under qemu's TCG,
# e.g. test_tegrastats_parse's 20000-line CSV took 20.6 s emulated against
# 1.5 s native in one run here (both on a loaded 2-core machine).
JP_BUILD_DIR=$BUILD JP_TEST_BIN_DIR=$BUILD/host JP_TEST_EXEC=$QEMU JP_TEST_SCRIPTS=0 CC=${CROSS}gcc \
    JP_TEST_TIME_SCALE=20 bash tests/run_tests.sh >"$log_dir/c.log" 2>&1
rc=$?
grep -E '^(FAIL|SKIP) |^   test_' "$log_dir/c.log"
summary=$(tail -n 1 "$log_dir/c.log")
if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
    skipped=$((skipped + BASH_REMATCH[3]))
    [ "${BASH_REMATCH[2]}" -gt 0 ] && failures+=("C unit tests")
    echo "   C unit tests: $summary ($((SECONDS - t0)) s)"
    if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
        fail "cross/C unit tests" "run_tests.sh exited $rc"
    fi
else
    fail "cross/C unit tests" "no summary line; last lines: $(tail -n 20 "$log_dir/c.log")"
fi

export JPLPROF=$PWD/$BUILD/jplprof-qemu PYTHON JP_TEST_BIN_DIR=$PWD/$BUILD/host
run_step "models vs torchvision (${SIZE}x${SIZE}, jplprof under qemu)" \
    env JP_TEST_MODELS=resnet18,efficientnet_b0 JP_TEST_SIZE="$SIZE" "$PYTHON" tests/test_models.py
# Samples are stamped when the emulated reader thread gets them: 40 ms of
# slack at the window edges (up to two samples at the 20 ms interval; 20 ms
# was once too little with another build running beside it).
for format in tx2 orin-nx; do
    run_step "profile + process, fake tegrastats $format (jplprof under qemu)" \
        env JP_TEST_PROFILE_FORMAT=$format JP_TEST_PROFILE_MODELS=efficientnet_b0 JP_TEST_PROFILE_QUICK=1 \
        JP_TEST_EDGE_NS=40000000 "$PYTHON" tests/test_profile.py
done

finish
