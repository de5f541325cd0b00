#!/usr/bin/env bash
# Reproduces the bundled models (Models/) and the phantom benchmark of Documentation/Results.md from fixed seeds, with
# the toolkit's own applications: DivAttentionPhantom makes the data, DivAttentionTrain trains stage 1 (mUnet small)
# and the four stage-2 models (3D ESPNet and UNETR, small, with and without div-attention) with the same budget and
# seed, DivAttentionEvaluate compares them on held-out phantoms.
#   Utilities/train-bundled-models.sh BIN_DIR WORK_DIR
# Environment (defaults in brackets): DEVICE [auto], TRAIN_SECONDS wall-clock budget of every training run [240],
# CASES training+validation phantoms [48], TEST_CASES held-out phantoms [12], SEED [2026], SHARDS parallel phantom
# writers [8], THREADS per training run [3], PARALLEL_RUNS train the five models at once (1) or one after another [1],
# BATCH [4], LOADER_THREADS per run [0: DivAttentionTrain's default], FOV_CUT field-of-view cut probability [0; the
# models of 2026-11-27 were trained without], STEPS_PER_EPOCH [50], RUNS which runs (names below) [all five], CLICKS
# simulated per test object [3].
# Runs are stopped by SIGTERM at their budget: DivAttentionTrain then saves and exits, and model-best.pt is the
# checkpoint with the best validation Dice so far.
set -euo pipefail
bin=${1:?usage: train-bundled-models.sh BIN_DIR WORK_DIR}
work=${2:?usage: train-bundled-models.sh BIN_DIR WORK_DIR}
DEVICE=${DEVICE:-auto}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
CASES=${CASES:-48}
TEST_CASES=${TEST_CASES:-12}
SEED=${SEED:-2026}
SHARDS=${SHARDS:-8}
THREADS=${THREADS:-3}
PARALLEL_RUNS=${PARALLEL_RUNS:-1}
BATCH=${BATCH:-4}
LOADER_THREADS=${LOADER_THREADS:-0}
FOV_CUT=${FOV_CUT:-0}
STEPS_PER_EPOCH=${STEPS_PER_EPOCH:-50}
CLICKS=${CLICKS:-3}
RUNS=${RUNS:-stage1-munet stage2-espnet stage2-espnet-divattention stage2-unetr stage2-unetr-divattention}
mkdir -p "$work"
log() { echo "== $(date +%T) $*"; }

# Phantoms, written by SHARDS processes at once (shard k has its own seed), listed in one CSV (image,label).
phantoms() { # name seed cases
  local name=$1 seed=$2 cases=$3 k
  [ -s "$work/$name.csv" ] && return 0
  for ((k = 0; k < SHARDS; ++k)); do
    local n=$(((cases + SHARDS - 1 - k) / SHARDS))
    [ "$n" -gt 0 ] || continue
    "$bin/DivAttentionPhantom" -n "$n" -s $((seed * 100 + k)) --name-prefix "${name}${k}_" \
      -o "$work/$name/shard$k" >"$work/$name-shard$k.log" 2>&1 &
  done
  wait
  {
    echo "image,label"
    (cd "$work" && ls "$name"/shard*/imagesTr/*.nii.gz | sort | sed 's|\(.*\)/imagesTr/\(.*\)|&,\1/labelsTr/\2|')
  } >"$work/$name.csv.tmp"
  mv "$work/$name.csv.tmp" "$work/$name.csv"
}

log "phantoms: $CASES for training and validation (seed $SEED), $TEST_CASES held out (seed $((SEED + 1)))"
phantoms train "$SEED" "$CASES"
phantoms test $((SEED + 1)) "$TEST_CASES"

# One object per organ label (liver, spleen, kidneys, stomach) and one per lesion: a model for any click.
common=(--dataset "$work/train.csv" --layout csv --labels 1,2,3,4,5,6 --instances label-components --preset small
  --batch-size "$BATCH" --lr 3e-4 --epochs 10000 --milestones 10000 --steps-per-epoch "$STEPS_PER_EPOCH" --patience 0 --seed "$SEED"
  --device "$DEVICE" --threads "$THREADS" --loader-threads "$LOADER_THREADS" --fov-cut "$FOV_CUT" --no-progress --export-float16)
train() { # run-name options...
  local name=$1
  shift
  log "train $name: $*"
  timeout -s TERM -k 60 "$TRAIN_SECONDS" "$bin/DivAttentionTrain" "${common[@]}" "$@" -o "$work/runs/$name" \
    >"$work/runs/$name.log" 2>&1 || true
  tail -3 "$work/runs/$name.log"
  [ -s "$work/runs/$name/model-best.pt" ] || { echo "no model from $name" >&2; return 1; }
}
mkdir -p "$work/runs"
# Stage 1 is the paper's plain mUnet (no div-attention) on 64^3 windows at 3 mm: one 19 cm window holds most organs,
# so a click costs one small forward (Documentation/Pipeline.md, "Stage 1's design point").
declare -A options=([stage1-munet]="--stage 1 --model munet --no-div-attention --spacing 3,3,3 --patch 64,64,64"
  [stage2-espnet]="--stage 2 --model espnet --no-div-attention" [stage2-espnet-divattention]="--stage 2 --model espnet"
  [stage2-unetr]="--stage 2 --model unetr --no-div-attention" [stage2-unetr-divattention]="--stage 2 --model unetr")
for run in $RUNS; do
  if [ "$PARALLEL_RUNS" = 1 ]; then train "$run" ${options[$run]} & else train "$run" ${options[$run]}; fi
done
wait

have() { for run in "$@"; do [ -s "$work/runs/$run/model-best.pt" ] || return 1; done; }
have stage2-espnet stage2-espnet-divattention stage2-unetr stage2-unetr-divattention || { log "done (no evaluation: not all stage-2 models)"; exit 0; }
log "evaluate on the held-out phantoms ($CLICKS clicks per object, seed $SEED)"
models=(-m "ESPNet=$work/runs/stage2-espnet/model-best.pt" -m "ESPNet+div=$work/runs/stage2-espnet-divattention/model-best.pt"
  -m "UNETR=$work/runs/stage2-unetr/model-best.pt" -m "UNETR+div=$work/runs/stage2-unetr-divattention/model-best.pt")
"$bin/DivAttentionEvaluate" --dataset "$work/test.csv" --layout csv --subset all --label 1,2,3,4,5 \
  --instances label-components --clicks "$CLICKS" --seed "$SEED" --device "$DEVICE" --dataset-name "Phantom organs" \
  --csv "$work/eval-organs.csv" --markdown "$work/eval-organs.md" "${models[@]}"
"$bin/DivAttentionEvaluate" --dataset "$work/test.csv" --layout csv --subset all --label 6 --instances lesion \
  --clicks "$CLICKS" --seed "$SEED" --device "$DEVICE" --dataset-name "Phantom lesions" \
  --csv "$work/eval-lesions.csv" --markdown "$work/eval-lesions.md" "${models[@]}"
"$bin/DivAttentionEvaluate" --dataset "$work/test.csv" --layout csv --subset all --label 1,2,3,4,5,6 \
  --instances label-components --clicks 1 --seed "$SEED" --device "$DEVICE" --dataset-name "Phantom (stage 1)" \
  --markdown "$work/eval-stage1.md" -m "mUnet=$work/runs/stage1-munet/model-best.pt"
log "done"
