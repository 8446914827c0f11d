#!/usr/bin/env bash
# run_tests.sh: runs every test of jplprof and prints one summary line,
# "N passed, N failed, N skipped".
#
# A test is a program build/tests/test_*, or a script tests/test_*.sh or
# tests/test_*.py.  Each prints one line per case: "PASS name",
# "FAIL name: why" or "SKIP name: why"; these lines are counted.  A test that
# exits non-zero without printing a FAIL line (a crash, say) counts as one
# failure of its own.  Scripts get JPLPROF (the binary), JP_BUILD_DIR and
# PYTHON (Debian's python3, which has torch and torchvision) in the
# environment.  JP_TEST_EXEC, when set, is a command that runs the C test
# programs (e.g. "qemu-aarch64" for a cross build: tests/cross/aarch64.sh);
# JP_TEST_SCRIPTS=0 runs the C tests only.
#
# Usage: tests/run_tests.sh [PATTERN...]   (run only tests whose name contains
# one of the PATTERNs)
#
# JP_SANITIZER_LOG_DIR: the folder where a sanitizer build writes its reports
# (ASAN_OPTIONS/UBSAN_OPTIONS log_path=DIR/...; see tests/sanitize.sh).  Each
# report file found there at the end counts as one failure and is shown, so
# that a report from any process (a jplprof that a Python test ran, a forked
# child) fails the run even when the test itself passed.
set -u
cd "$(dirname "$0")/.."
export JP_BUILD_DIR=${JP_BUILD_DIR:-build}
export JP_TEST_BIN_DIR=${JP_TEST_BIN_DIR:-$JP_BUILD_DIR/tests}
export JPLPROF=${JPLPROF:-$PWD/jplprof}
export PYTHON=${PYTHON:-/usr/bin/python3}
export PYTHONUNBUFFERED=1
patterns=("$@")

passed=0 failed=0 skipped=0
failures=()
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

run_one() {
    local name=$1; shift
    if [ ${#patterns[@]} -gt 0 ]; then
        local p hit=0
        for p in "${patterns[@]}"; do
            [[ $name == *"$p"* ]] && hit=1
        done
        [ "$hit" -eq 1 ] || return
    fi
    local log="$log_dir/$name.log" start=$SECONDS
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    # Show each case line as it is; keep other output for failures only.
    grep -E '^(PASS|FAIL|SKIP) ' "$log"
    local p f s
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
        f=1
    fi
    [ "$f" -gt 0 ] && failures+=("$name")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    echo "   $name: $p passed, $f failed, $s skipped ($((SECONDS - start)) s)"
}

for bin in "$JP_BUILD_DIR"/tests/test_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    # shellcheck disable=SC2086 # JP_TEST_EXEC is a command and its options
    run_one "$(basename "$bin")" ${JP_TEST_EXEC:-} "$bin"
done
scripts=${JP_TEST_SCRIPTS:-1}
for script in tests/test_*.sh; do
    [ "$scripts" = 0 ] && break
    [ -f "$script" ] || continue
    run_one "$(basename "$script")" bash "$script"
done
for script in tests/test_*.py; do
    [ "$scripts" = 0 ] && break
    [ -f "$script" ] || continue
    run_one "$(basename "$script")" "$PYTHON" "$script"
done

if [ -n "${JP_SANITIZER_LOG_DIR:-}" ]; then
    echo "== sanitizer reports in $JP_SANITIZER_LOG_DIR"
    n_reports=0
    for report in "$JP_SANITIZER_LOG_DIR"/*; do
        [ -f "$report" ] || continue
        n_reports=$((n_reports + 1))
        echo "FAIL sanitizer report $(basename "$report"):"
        grep -E 'ERROR|SUMMARY|runtime error|#[0-3] ' "$report" | head -n 12 | sed 's/^/    /'
    done
    [ "$n_reports" -eq 0 ] && echo "PASS no sanitizer report" && passed=$((passed + 1))
    [ "$n_reports" -gt 0 ] && failures+=("sanitizer") && failed=$((failed + n_reports))
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed tests: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
