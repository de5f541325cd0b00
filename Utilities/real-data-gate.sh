#!/usr/bin/env bash
# The real-data gate (issue 23; Documentation/Results.md, "Real CT"): DivAttentionEvaluate on the held-out part of
# ../shared/data/real (Utilities/real-data-split.txt lists it), one simulated click deep inside each object, and per
# structure group the Dice, recall, precision and HD95 of (a) stage 1 alone, (b) the whole pipeline and (c) ITK region
# growing from the same click (ConfidenceConnectedImageFilter, multiplier 2, 3 iterations).
#   Utilities/real-data-gate.sh BUILD_DIR OUT_DIR [DATA_DIR [COARSE_MODEL REFINE_MODEL]]
# Lesions: the held-out ibsi-sts cases and the DeepLesion crops (each connected component of the mask a target; the
# crops as Utilities/deeplesion-geometry.py copies them, with their spacing in the right order).
# Organs, vessels, muscle, bone: every labelled structure of totalseg-example (label-names.txt names them).
# Writes OUT_DIR/{lesions,totalseg}.{csv,md} (per run) and OUT_DIR/gate.md (the groups of both, and how many of the
# pipeline's masks are the networks' or a like-intensity answer), and prints gate.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:?usage: real-data-gate.sh BUILD_DIR OUT_DIR [DATA_DIR [COARSE_MODEL REFINE_MODEL]]}/bin
out=${2:?usage: real-data-gate.sh BUILD_DIR OUT_DIR [DATA_DIR [COARSE_MODEL REFINE_MODEL]]}
data=${3:-$(cd "$here/.." && pwd)/shared/data/real}
coarse=${4:-$here/Models/coarse-munet-small.pt}
refine=${5:-$here/Models/refine-unetr-small-divattention.pt}
split=$here/Utilities/real-data-split.txt
[ -d "$data" ] || { echo "real-data-gate: no data folder $data" >&2; exit 3; }
[ -x "$bin/DivAttentionEvaluate" ] || { echo "real-data-gate: $bin/DivAttentionEvaluate is not built" >&2; exit 3; }
mkdir -p "$out"

{
  echo "image,label"
  grep '^held-out ' "$split" | while read -r _ entry; do
    case $entry in
      ibsi-sts/*) echo "$data/$entry/ct.nii.gz,$data/$entry/lesion.nii.gz" ;;
      deeplesion-crops/*)
        # Their files hold the spacing in the wrong order (Utilities/deeplesion-geometry.py): scored on fixed copies.
        mkdir -p "$out/deeplesion"
        for part in ct lesion; do
          "$here/Utilities/deeplesion-geometry.py" "$data/${entry}_$part.nii.gz" \
            "$out/deeplesion/$(basename "$entry")_$part.nii.gz"
        done
        echo "$out/deeplesion/$(basename "$entry")_ct.nii.gz,$out/deeplesion/$(basename "$entry")_lesion.nii.gz" ;;
    esac
  done
} > "$out/lesions-list.csv"
printf 'image,label,id\n%s,%s,totalseg-example\n' "$data/totalseg-example/ct.nii.gz" \
  "$data/totalseg-example/labels.nii.gz" > "$out/totalseg-list.csv"

common=(--subset all --clicks 1 --click-strategy interior --seed 0 --coarse-model "$coarse"
  -m "Pipeline=$refine" --stage1-name "Stage 1 alone" --region-growing --groups)
echo "real-data-gate: lesions ($(($(wc -l < "$out/lesions-list.csv") - 1)) held-out cases)" >&2
"$bin/DivAttentionEvaluate" --dataset "$out/lesions-list.csv" "${common[@]}" --instances lesion --structure lesion \
  --dataset-name "Real lesions" --csv "$out/lesions.csv" --markdown "$out/lesions.md" >&2
echo "real-data-gate: totalseg-example (every labelled structure)" >&2
"$bin/DivAttentionEvaluate" --dataset "$out/totalseg-list.csv" "${common[@]}" \
  --label-names "$data/totalseg-example/label-names.txt" --dataset-name "totalseg-example" --csv "$out/totalseg.csv" \
  --markdown "$out/totalseg.md" >&2

# Both runs' samples by group and method (means; HD95 over the samples where it is defined).
python3 - "$out/lesions.csv" "$out/totalseg.csv" > "$out/gate.md" <<'PY'
import csv, math, sys
order = ["organs", "lesions", "vessels", "muscle", "bone", "other"]
rows = [r for path in sys.argv[1:] for r in csv.DictReader(open(path))]
methods = []
for r in rows:
    if r["model"] not in methods:
        methods.append(r["model"])
print("| Group | Method | Dice | Recall | Precision | HD95 (mm) | Targets |")
print("|---|---|---:|---:|---:|---:|---:|")
for group in order + sorted({r["group"] for r in rows} - set(order)):
    for method in methods:
        some = [r for r in rows if r["group"] == group and r["model"] == method]
        if not some:
            continue
        mean = lambda key: sum(float(r[key]) for r in some) / len(some)
        hd = [float(r["hd95_mm"]) for r in some if r["hd95_mm"] not in ("", "nan") and math.isfinite(float(r["hd95_mm"]))]
        hd95 = "%.1f" % (sum(hd) / len(hd)) if hd else "-"
        print("| %s | %s | %.3f | %.3f | %.3f | %s | %d |" % (group, method, mean("dice"), mean("recall"),
                                                           mean("precision"), hd95, len(some)))# What the whole pipeline's masks are (DivAttentionEvaluate's "answer" column), per group: the networks' mask, or the
# click's like-intensity region because they found nothing at it or marked mostly another tissue.
kinds = ["networks", "like-intensity", "other-tissue", "nothing"]
answered = [r for r in rows if r.get("answer")]
if answered:
    print()
    print("| Group | Method | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---:|" * len(kinds))
    for group in order + sorted({r["group"] for r in answered} - set(order)):
        for method in methods:
            some = [r for r in answered if r["group"] == group and r["model"] == method]
            if some:
                print("| %s | %s | " % (group, method) +
                      " | ".join(str(sum(r["answer"] == k for r in some)) for k in kinds) + " |")
PY
cat "$out/gate.md"
