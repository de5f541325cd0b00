#!/usr/bin/env bash
# Trains the bundled models on a lent GPU machine (CUDA, a pip PyTorch 2.x, no ITK, no network) in one call:
# unpacks the ITK packed here by Utilities/pack-itk-bundle.sh (.device/itk-bundle.tar.xz), builds the applications
# against the wheel's LibTorch, runs Utilities/train-bundled-models.sh with the time left, and copies the model files
# and a tarball of logs and evaluation tables into OUTPUT_DIR.
#   BUDGET=seconds Utilities/gpu-train.sh [OUTPUT_DIR]
set -uo pipefail
out=${1:-${OUT:-/tmp/divattention-gpu-train}}
mkdir -p "$out"
budget=${BUDGET:-540}
log() { echo "== $(date +%T) $*"; }
log "machine"
nvidia-smi -L
ldd --version | head -1
torch_dir=$(python3 -c 'import os, torch; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
rm -rf /tmp/itk-bundle && tar -C /tmp -xJf .device/itk-bundle.tar.xz || exit 1
build=/tmp/divattention-gpu-build
log "configure"
# Distributed training is not needed here (one process), and its configure-time check failed there once (CMake 4.4,
# the wheel's torch target; CMake/DivAttentionDistributed.cmake now links files instead, not yet tried there).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DITK_DIR=/tmp/itk-bundle/cmake -DTorch_DIR="$torch_dir" \
  -DBUILD_TESTING=OFF -DTCLAP_INCLUDE_DIR=/tmp/itk-bundle/include -DDivAttention_JSON_INCLUDE_DIR=/tmp/itk-bundle/include \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DDivAttention_USE_DISTRIBUTED=OFF >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
log "build"
cmake --build "$build" -j "$(nproc)" --target DivAttentionPhantom DivAttentionTrain DivAttentionEvaluate \
  >"$out/build.log" 2>&1 || { grep -E "error|FAILED|undefined" -A3 "$out/build.log" | head -60; exit 1; }
export LD_LIBRARY_PATH=/tmp/itk-bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
"$build/bin/DivAttentionTrain" --version | head -2
# What is left of the budget goes to training; phantoms and evaluation take about 100 s on 16 cores (130 s kept).
left=$((budget - SECONDS))
export TRAIN_SECONDS=$((left - 130))
export DEVICE=cuda THREADS=3 SHARDS=16 STEPS_PER_EPOCH=100 TEST_CASES=8 CLICKS=1
log "train, $TRAIN_SECONDS s per run"
[ "$TRAIN_SECONDS" -gt 30 ] || { echo "no time left to train"; exit 1; }
work=/tmp/divattention-train
Utilities/train-bundled-models.sh "$build/bin" "$work" 2>&1 | tee "$out/train.log"
log "collect"
for run in stage1-munet stage2-espnet stage2-espnet-divattention stage2-unetr stage2-unetr-divattention; do
  [ -s "$work/runs/$run/model-best.pt" ] && cp "$work/runs/$run/model-best.pt" "$out/$run.pt"
done
(cd "$work" && tar -czf "$out/results.tar.gz" --exclude='*.pt' --exclude='*.ckpt' runs/*.log runs/*/ eval-*.md eval-*.csv \
  train.csv test.csv 2>/dev/null)
ls -la "$out"
