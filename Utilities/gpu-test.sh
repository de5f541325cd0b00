#!/usr/bin/env bash
# The GPU path of issue 8 in one call on a lent GPU machine (CUDA, a pip PyTorch 2.x, no ITK, no network): builds the
# whole toolkit with its tests against the wheel's LibTorch and the ITK packed here (Utilities/pack-itk-bundle.sh ->
# .device/itk-bundle.tar.xz; .device/googletest = Debian's /usr/src/googletest), runs the CUDA twin tests (label CUDA,
# registered because that LibTorch has CUDA: Testing/CMakeLists.txt) and their CPU originals, then the click -> mask
# benchmark on CUDA (small and paper presets) and the UNETR paper forward (Documentation/Performance.md, "GPU").
#   Utilities/gpu-test.sh [OUTPUT_DIR]
set -uo pipefail
out=${1:-${OUT:-/tmp/divattention-gpu-test}}
mkdir -p "$out"
log() { echo "== $(date +%T) $*"; }
log "machine"
nvidia-smi -L
torch_dir=$(python3 -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
rm -rf /tmp/itk-bundle && tar -C /tmp -xJf .device/itk-bundle.tar.xz || exit 1
export LD_LIBRARY_PATH=/tmp/itk-bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
build=/tmp/divattention-gpu-test-build
log "configure"
# If LibTorch's c10d check cannot even be configured (it failed once with CMake 4.4 and the wheel's torch target),
# configure again without distributed training rather than lose the machine's time.
configure() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DITK_DIR=/tmp/itk-bundle/cmake -DTorch_DIR="$torch_dir" \
    -DBUILD_TESTING=ON -DDivAttention_GTEST_SOURCE_DIR="$PWD/.device/googletest" \
    -DTCLAP_INCLUDE_DIR=/tmp/itk-bundle/include -DDivAttention_JSON_INCLUDE_DIR=/tmp/itk-bundle/include \
    -DDivAttention_BUILD_BENCHMARKS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 "$@" >"$out/configure.log" 2>&1
}
configure || { echo "configure failed: again with -DDivAttention_USE_DISTRIBUTED=OFF"; rm -rf "$build";
  configure -DDivAttention_USE_DISTRIBUTED=OFF; } ||
  { tail -40 "$out/configure.log"; exit 1; }
grep "DivAttention:" "$out/configure.log"
log "build"
targets="DivAttentionTorchRuntimeTests DivAttentionNetworksTests DivAttentionSegmentationTests"
targets="$targets DivAttentionBundledModelsTests"
cmake --build "$build" -j "$(nproc)" --target $targets >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED|undefined" -A3 "$out/build.log" | head -60; exit 1; }
log "CUDA twins and their CPU originals"
ctest --test-dir "$build" -L CUDA -j 4 --output-on-failure >"$out/ctest-cuda.log" 2>&1
tail -15 "$out/ctest-cuda.log"
ctest --test-dir "$build" -R "TestDevice|Device\.|Shapes|EveryParameter|Overfits|ClickGuidedSegmentation|BundledModels" \
  -LE CUDA -j 8 --output-on-failure >"$out/ctest-cpu.log" 2>&1
tail -5 "$out/ctest-cpu.log"
log "click -> mask on CUDA"
cmake -S . -B "$build" -DDivAttention_BUILD_BENCHMARKS=ON >/dev/null 2>&1 &&
  cmake --build "$build" -j "$(nproc)" --target DivAttentionPipelineBench DivAttentionNetworkBench >>"$out/build.log" 2>&1
for preset in small paper; do
  "$build/Testing/Benchmarks/DivAttentionPipelineBench" --device cuda --preset "$preset" --repeat 3 --threads 8 2>&1 |
    tee -a "$out/pipeline-bench.txt"
done
"$build/Testing/Benchmarks/DivAttentionNetworkBench" --device cuda --model unetr --preset paper --div-attention 0 \
  --iterations 20 2>&1 | tee -a "$out/network-bench.txt"
