#!/usr/bin/env bash
# device_check.sh: the CUDA checks of issue 4, prepared here and run in one go
# on the lent GPU machine (../shared/GPU.md), where time is short.
#
#   bash tests/gpu/device_check.sh prepare    # here: build .gpu/ (binary, tests, libs), xz-packed
#   bash tests/gpu/device_check.sh run        # there: unpack, run everything, logs into $OUT
#
# prepare: `make CUDA=1 STATIC_DEPS=1 NATIVE=0` into .gpu/build (OpenBLAS, stb,
# libjpeg, libcrypto static; libcjson and libgomp copied beside the binary;
# the CUDA backend as the module .gpu/jplprof-cuda.so beside .gpu/jplprof,
# which loads it for --device cuda, and test_cuda_kernels through $JPLPROF),
# the binaries stripped and packed into .gpu/jplprof-gpu.tar.xz, which must stay
# under the device tool's 64 MiB carry limit; carry ".gpu" with the run.
#
# run (each step bounded by `timeout`, its log under $OUT, a summary line per
# step in $OUT/summary.txt, so a step that hangs costs its own time only):
#   1. nvidia-smi -L, and ldd: which cuDNN / cuBLAS the module found (and
#      that the binary itself links none);
#   2. build/tests/test_cuda_kernels: every CUDA kernel (each cuDNN forward
#      algorithm included) against the CPU reference;
#   3. jplprof layers resnet50 --device cuda: the cuDNN algorithm per step;
#   4. jplprof compare --device cuda on resnet50 layer 5 (every algorithm, the
#      GPU's measured peak);
#   5. the model tests on the GPU (JP_TEST_DEVICE=cuda tests/test_models.py),
#      efficientnet_b6 and b7 first, with the time of each stage printed;
#   6. the GPU benchmark against PyTorch eager (tests/bench/bench_e2e.py).
# Environment there: LD_LIBRARY_PATH gets the wheels' nvidia/*/lib folders;
# python3 is /opt/torch/.venv's (torch with CUDA).
set -u
cd "$(dirname "$0")/../.."
mode=${1:-}
GPU_DIR=.gpu

case "$mode" in
prepare)
    set -e
    rm -rf "$GPU_DIR"
    make CUDA=1 STATIC_DEPS=1 NATIVE=0 BUILD="$GPU_DIR/build" BIN="$GPU_DIR/jplprof" \
        "$GPU_DIR/jplprof" "$GPU_DIR/jplprof-cuda.so" "$GPU_DIR/build/tests/test_cuda_kernels" \
        "$GPU_DIR/build/tests/fake_tegrastats"
    strip "$GPU_DIR/jplprof" "$GPU_DIR/build/tests/test_cuda_kernels"
    strip --strip-unneeded "$GPU_DIR/jplprof-cuda.so"
    tar -C "$GPU_DIR" -cJf "$GPU_DIR/jplprof-gpu.tar.xz" jplprof jplprof-cuda.so build/lib \
        build/tests/test_cuda_kernels build/tests/fake_tegrastats
    find "$GPU_DIR" -mindepth 1 -maxdepth 1 ! -name jplprof-gpu.tar.xz -exec rm -rf {} +
    ls -l "$GPU_DIR/jplprof-gpu.tar.xz"
    size=$(stat -c %s "$GPU_DIR/jplprof-gpu.tar.xz")
    [ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "too large to carry: $size bytes" >&2; exit 1; }
    ;;
run)
    OUT=${OUT:-$PWD/gpu-logs}
    mkdir -p "$OUT"
    : >"$OUT/summary.txt"
    tar -C "$GPU_DIR" -xJf "$GPU_DIR/jplprof-gpu.tar.xz" || { echo "no $GPU_DIR/jplprof-gpu.tar.xz: run prepare first" >&2; exit 1; }
    wheels=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | paste -sd:)
    export LD_LIBRARY_PATH="$PWD/$GPU_DIR/build/lib${wheels:+:$wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export JPLPROF="$PWD/$GPU_DIR/jplprof" JP_TEST_BIN_DIR="$PWD/$GPU_DIR/build/tests"
    export PYTHON=${PYTHON:-python3}
    step() { # name seconds command...
        local name=$1 secs=$2 start=$SECONDS rc
        shift 2
        timeout "$secs" "$@" >"$OUT/$name.log" 2>&1
        rc=$?
        printf '%-14s rc=%-3d %4d s  %s\n' "$name" "$rc" "$((SECONDS - start))" \
            "$(grep -E 'passed|failed|kernel runs|forward:' "$OUT/$name.log" | tail -n 1)" | tee -a "$OUT/summary.txt"
    }
    step env 30 sh -c 'nvidia-smi -L; echo "jplprof:"; ldd "$JPLPROF" | grep -E "not found|cudnn|cublas|cudart";
        echo "jplprof-cuda.so:"; ldd "${JPLPROF%/*}/jplprof-cuda.so" | grep -E "not found|cudnn|cublas|cudart"'
    step cuda_kernels 240 "$JP_TEST_BIN_DIR/test_cuda_kernels"
    step layers 120 "$JPLPROF" layers resnet50 --device cuda
    step compare 240 "$JPLPROF" compare --model resnet50 --layer 5 --device cuda --synthetic --runs 50 \
        --json "$OUT/compare_resnet50_l5.json"
    step models_b6b7 400 env JP_TEST_DEVICE=cuda JP_TEST_MODELS=efficientnet_b6,efficientnet_b7 \
        "$PYTHON" tests/test_models.py
    step models 600 env JP_TEST_DEVICE=cuda "$PYTHON" tests/test_models.py
    step bench 600 "$PYTHON" tests/bench/bench_e2e.py --device cuda --jplprof "$JPLPROF" --threads 2 \
        --rounds 3 --runs 20 --no-isolated --no-ort --out "$OUT/bench_gpu.md"
    ;;
*)
    echo "usage: bash tests/gpu/device_check.sh prepare|run" >&2
    exit 2
    ;;
esac
