#!/usr/bin/env bash
# Turns ../shared/data/real (its README) and Utilities/real-data-split.txt into the datasets DivAttentionTrain and
# DivAttentionEvaluate read, for training on real CT (Models/README.md, "Trained with real CT"):
#   Utilities/prepare-real-data.sh BIN_DIR OUT_DIR [DATA_DIR] [SPLIT_FILE]
# OUT_DIR receives (nothing is copied: real cases are symbolic links with unique names, so no two rows of a CSV share
# a file stem, and nothing from DATA_DIR can end up in the repository):
#   train.csv        image,label of every training case: the ibsi-sts "train" cases (each listed STS_REPEAT times
#                    under its own name, so the 33 real tumours are not outnumbered by the synthetic objects),
#                    AMOS cases (the amos-labels map painted with random HU per label), and phantoms
#   split.json       DivAttentionTrain's split of train.csv: every 5th training STS case (all its copies), one AMOS
#                    painting in four and one phantom in five validate; no case is in both
#   test-sts.csv, test-deeplesion.csv, test-totalseg.csv, test-phantoms.csv
#                    the held-out cases of the split file (and held-out phantoms of another seed), for evaluation
# Environment (defaults in brackets): STS_REPEAT [3], AMOS_CASES painted AMOS cases [12], PHANTOMS [16],
# TEST_PHANTOMS [8], SEED [2312]. The painted AMOS cases come in three shards (scanners): per-label HU ranges
# AMOS_LABEL_HU ["-20,220 0,90 -20,160"] (the middle one low-contrast: neighbouring organs of like HU, as real
# non-contrast CT), soft-tissue clutter fractions AMOS_CLUTTER ["0.35 0.45 0.3"] (bowel-like blobs in the unlabelled
# body, so organs do not always end where fat begins), noise 8/15/25 HU, blur 0.4/0.8/1.2 mm.
# Never trains on a held-out case: the script refuses a split file that lists a case as both.
set -euo pipefail
bin=${1:?usage: prepare-real-data.sh BIN_DIR OUT_DIR [DATA_DIR] [SPLIT_FILE]}
out=${2:?usage: prepare-real-data.sh BIN_DIR OUT_DIR [DATA_DIR] [SPLIT_FILE]}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data=${3:-$here/../../shared/data/real}
split=${4:-$here/real-data-split.txt}
STS_REPEAT=${STS_REPEAT:-3}
AMOS_CASES=${AMOS_CASES:-12}
PHANTOMS=${PHANTOMS:-16}
TEST_PHANTOMS=${TEST_PHANTOMS:-8}
SEED=${SEED:-2312}
AMOS_LABEL_HU=${AMOS_LABEL_HU:--20,220 0,90 -20,160}
AMOS_CLUTTER=${AMOS_CLUTTER:-0.35 0.45 0.3}
[ -d "$data" ] || { echo "prepare-real-data: no data directory $data" >&2; exit 3; }
[ -s "$split" ] || { echo "prepare-real-data: no split file $split" >&2; exit 3; }
data=$(cd "$data" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "== $(date +%T) $*"; }

entries() { grep -v '^#' "$split" | awk -v set="$1" '$1 == set { print $2 }'; }
both=$(comm -12 <(entries train | sort) <(entries held-out | sort))
[ -z "$both" ] || { echo "prepare-real-data: $split lists as both train and held-out: $both" >&2; exit 2; }

link() { # target link
  [ -e "$1" ] || { echo "prepare-real-data: missing $1" >&2; exit 3; }
  ln -sfn "$1" "$2"
}
mkdir -p "$out/real/images" "$out/real/labels"

# Held-out real cases.
{
  echo "image,label"
  for entry in $(entries held-out | grep '^ibsi-sts/'); do
    name=$(basename "$entry")
    link "$data/$entry/ct.nii.gz" "$out/real/images/$name.nii.gz"
    link "$data/$entry/lesion.nii.gz" "$out/real/labels/$name.nii.gz"
    echo "real/images/$name.nii.gz,real/labels/$name.nii.gz"
  done
} >"$out/test-sts.csv"
{
  echo "image,label"
  for entry in $(entries held-out | grep '^deeplesion-crops/'); do
    name=$(basename "$entry")
    # copies with the spacing in the right order, not links (Utilities/deeplesion-geometry.py)
    "$here/deeplesion-geometry.py" "$data/${entry}_ct.nii.gz" "$out/real/images/$name.nii.gz"
    "$here/deeplesion-geometry.py" "$data/${entry}_lesion.nii.gz" "$out/real/labels/$name.nii.gz"
    echo "real/images/$name.nii.gz,real/labels/$name.nii.gz"
  done
} >"$out/test-deeplesion.csv"
{
  echo "image,label"
  if entries held-out | grep -qx 'totalseg-example'; then
    link "$data/totalseg-example/ct.nii.gz" "$out/real/images/totalseg-example.nii.gz"
    link "$data/totalseg-example/labels.nii.gz" "$out/real/labels/totalseg-example.nii.gz"
    echo "real/images/totalseg-example.nii.gz,real/labels/totalseg-example.nii.gz"
  fi
} >"$out/test-totalseg.csv"

# Training real cases: STS_REPEAT copies of each ibsi-sts case under its own name (STS_001_c0, STS_001_c1, ...).
train_rows=()
train_ids=()
validation_ids=()
index=0
for entry in $(entries train | grep '^ibsi-sts/'); do
  name=$(basename "$entry")
  validate=$((index % 5 == 4))
  index=$((index + 1))
  for ((copy = 0; copy < STS_REPEAT; ++copy)); do
    link "$data/$entry/ct.nii.gz" "$out/real/images/${name}_c$copy.nii.gz"
    link "$data/$entry/lesion.nii.gz" "$out/real/labels/${name}_c$copy.nii.gz"
    train_rows+=("real/images/${name}_c$copy.nii.gz,real/labels/${name}_c$copy.nii.gz")
    if [ "$validate" = 1 ]; then
      # One copy validates (copies differ only in their augmentation); the others are not used at all.
      [ "$copy" = 0 ] && validation_ids+=("${name}_c$copy")
    else
      train_ids+=("${name}_c$copy")
    fi
  done
done

# Semi-synthetic CT: the AMOS label map painted with random HU per label (domain randomisation), in three shards with
# different noise and blur so that the network sees several scanners.
if entries train | grep -qx 'amos-labels'; then
  amos=$(ls "$data"/amos-labels/*.nii.gz | head -1)
  noises=(8 15 25)
  blurs=(0.4 0.8 1.2)
  read -r -a label_hu <<<"$AMOS_LABEL_HU"
  read -r -a clutter <<<"$AMOS_CLUTTER"
  [ "${#label_hu[@]}" = 3 ] && [ "${#clutter[@]}" = 3 ] ||
    { echo "prepare-real-data: AMOS_LABEL_HU and AMOS_CLUTTER need three values each" >&2; exit 2; }
  if [ ! -s "$out/amos.done" ]; then
    log "painting $AMOS_CASES AMOS cases (HU per label: ${label_hu[*]}; clutter: ${clutter[*]})"
    for shard in 0 1 2; do
      n=$(((AMOS_CASES + 2 - shard) / 3))
      [ "$n" -gt 0 ] || continue
      "$bin/DivAttentionPhantom" --label-map "$amos" --label-hu "${label_hu[$shard]}" --clutter "${clutter[$shard]}" \
        --noise "${noises[$shard]}" --blur "${blurs[$shard]}" --texture $((6 + 4 * shard)) -n "$n" \
        -s $((SEED * 10 + shard + 7)) --name-prefix "amos${shard}_" -o "$out/amos/shard$shard" \
        >"$out/amos-shard$shard.log"
    done
    touch "$out/amos.done"
  fi
  index=0
  for image in $(cd "$out" && ls amos/shard*/imagesTr/*.nii.gz | sort); do
    id=$(basename "$image" .nii.gz)
    train_rows+=("$image,${image/imagesTr/labelsTr}")
    if [ $((index % 4)) = 3 ]; then validation_ids+=("$id"); else train_ids+=("$id"); fi
    index=$((index + 1))
  done
fi

# Phantoms (whole synthetic bodies: organs and lesions), oblique grids for variety, and held-out ones of another seed.
if [ ! -s "$out/phantoms.done" ]; then
  log "writing $PHANTOMS training and $TEST_PHANTOMS held-out phantoms"
  "$bin/DivAttentionPhantom" -n "$PHANTOMS" -s $((SEED * 10 + 5)) --oblique-degrees 10 --name-prefix phantom_ \
    -o "$out/phantoms" >"$out/phantoms.log"
  "$bin/DivAttentionPhantom" -n "$TEST_PHANTOMS" -s $((SEED * 10 + 6)) --name-prefix testphantom_ \
    -o "$out/test-phantoms" >"$out/test-phantoms.log"
  touch "$out/phantoms.done"
fi
index=0
for image in $(cd "$out" && ls phantoms/imagesTr/*.nii.gz | sort); do
  id=$(basename "$image" .nii.gz)
  train_rows+=("$image,${image/imagesTr/labelsTr}")
  if [ $((index % 5)) = 4 ]; then validation_ids+=("$id"); else train_ids+=("$id"); fi
  index=$((index + 1))
done
{
  echo "image,label"
  (cd "$out" && ls test-phantoms/imagesTr/*.nii.gz | sort | sed 's|\(.*\)/imagesTr/\(.*\)|&,\1/labelsTr/\2|')
} >"$out/test-phantoms.csv"

{
  echo "image,label"
  printf '%s\n' "${train_rows[@]}"
} >"$out/train.csv.tmp"
mv "$out/train.csv.tmp" "$out/train.csv"
python3 - "$out/split.json" "${#train_ids[@]}" "${train_ids[@]}" "${validation_ids[@]}" <<'PY'
import json, os, sys
path, count = sys.argv[1], int(sys.argv[2])
ids = sys.argv[3:]
document = {"scheme": "public", "seed": 0, "train": ids[:count], "validation": ids[count:], "test": []}
with open(path + ".tmp", "w") as stream:
    json.dump(document, stream, indent=1)
os.replace(path + ".tmp", path)
PY
log "train.csv: ${#train_rows[@]} rows (${#train_ids[@]} training, ${#validation_ids[@]} validation cases in split.json)"
