#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]: runs each libFuzzer
# harness BUILD_DIR/fuzz_<name> (all of them by default) for SECONDS seconds,
# one after the other (one process each: -jobs=1, the machine may be
# shared), starting from its committed seeds tests/fuzz/corpus/<name>/.
# New inputs go to BUILD_DIR/corpus/<name>/ (the repository's seeds are not
# touched); a crash, sanitizer report, leak, timeout (-timeout, 10 s, or
# $FUZZ_TIMEOUT: a long run at nice 19 on a loaded machine needs more) or
# out-of-memory (-rss_limit_mb, 2 GiB) is a finding: its input lands in
# BUILD_DIR/findings/ and the script fails.  Prints one line per harness:
# "fuzz <name>: N executions in S s (R/s), corpus C, <result>".
set -u
cd "$(dirname "$0")/../.."
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]}
seconds=${2:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS [HARNESS...]}
shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for b in "$build"/fuzz_*; do
        [ -x "$b" ] && [ -f "$b" ] && names+=("$(basename "$b" | sed 's/^fuzz_//')")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "no harness in $build (make fuzz-build)"; exit 1; }
mkdir -p "$build/findings" "$build/logs"
failed=()
for name in "${names[@]}"; do
    bin="$build/fuzz_$name" seeds="tests/fuzz/corpus/$name" work="$build/corpus/$name"
    log="$build/logs/$name.log"
    mkdir -p "$work"
    [ -d "$seeds" ] || { echo "fuzz $name: no seed folder $seeds"; failed+=("$name"); continue; }
    start=$SECONDS
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/findings/$name-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(ls "$work" | wc -l)
    took=$((SECONDS - start))
    rate=$(( ${execs:-0} / (took > 0 ? took : 1) ))
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $name: ${execs:-?} executions in $took s ($rate/s), corpus $corpus, no finding"
    else
        failed+=("$name")
        echo "fuzz $name: FINDING after ${execs:-?} executions in $took s (exit $rc); input and log:"
        ls "$build/findings/$name-"* 2>/dev/null | sed 's/^/    /'
        grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -n 8 | sed 's/^/    /'
        echo "    full log: $log"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#names[@]} harnesses, no finding"
