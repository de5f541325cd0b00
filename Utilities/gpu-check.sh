#!/usr/bin/env bash
# The GPU check (Documentation/Performance.md, "GPU"): on a machine that has a CUDA GPU and a pip PyTorch 2.x but no
# ITK, builds the LibTorch half of DivAttention (DivAttention_TORCH_ONLY) against the wheel's LibTorch, runs its tests
# (CPU cases and the device cases, which then take the CUDA branch), and times the networks on CUDA and on the CPU.
# Needs, copied beside the checkout in .device/: googletest/ (Debian: /usr/src/googletest) and nlohmann/ (json.hpp).
#   Utilities/gpu-check.sh [OUTPUT_DIR]
set -uo pipefail
out=${1:-${OUT:-/tmp/divattention-gpu-check}}
mkdir -p "$out"
build=/tmp/divattention-gpu-build
log() { echo "== $*"; }
log "machine"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
torch_dir=$(python3 -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')
log "configure against $torch_dir"
# If LibTorch's c10d check cannot even be configured (it failed once with CMake 4.4 and the wheel's torch target),
# configure again without distributed training rather than lose the machine's time.
configure() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDivAttention_TORCH_ONLY=ON -DTorch_DIR="$torch_dir" \
    -DDivAttention_GTEST_SOURCE_DIR="$PWD/.device/googletest" -DDivAttention_JSON_INCLUDE_DIR="$PWD/.device" \
    -DDivAttention_WARNINGS_AS_ERRORS=ON -DCMAKE_CUDA_ARCHITECTURES=90 "$@" >"$out/configure.log" 2>&1
}
configure || { echo "configure failed: again with -DDivAttention_USE_DISTRIBUTED=OFF"; rm -rf "$build";
  configure -DDivAttention_USE_DISTRIBUTED=OFF; } ||
  { tail -40 "$out/configure.log"; exit 1; }
grep -E "DivAttention:|Torch" "$out/configure.log" | head
log "build"
start=$(date +%s)
cmake --build "$build" -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error|FAILED" -A5 "$out/build.log" | head -60; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
log "tests (the three overfit tests run on the CPU and are left to the CPU suite)"
ctest --test-dir "$build" -j 8 --output-on-failure -E "OverfitsOnePhantom" >"$out/ctest.log" 2>&1
tail -25 "$out/ctest.log"
log "network bench"
bench="$build/Testing/Benchmarks/DivAttentionNetworkBench"
for device in cuda cpu; do
  for spec in "unetr small 1" "unetr paper 1" "munet small 2" "munet paper 2" "espnet small 1" "espnet paper 1"; do
    set -- $spec
    for attention in 0 1; do
      iterations=20
      [ "$device" = cpu ] && iterations=3
      [ "$device" = cpu ] && [ "$2" = paper ] && continue
      "$bench" --device "$device" --model "$1" --preset "$2" --inputs "$3" --div-attention "$attention" \
        --iterations "$iterations" --threads 16 2>&1 | tee -a "$out/bench.txt"
    done
  done
done
