#!/usr/bin/env bash
# Runs the whole pipeline (DivAttentionSegment, bundled or given models) on the small real CT in ../shared/data/real
# (see its README) with clicks from the reference masks, and prints a Markdown table of Dice, recall and precision
# against those references (agreement: the references are model-made). Documentation/Results.md, "Real data".
#   Utilities/evaluate-real-data.sh BUILD_DIR [DATA_DIR] [extra DivAttentionSegment options...]
set -euo pipefail
bin=${1:?usage: evaluate-real-data.sh BUILD_DIR [DATA_DIR]}/bin
data=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data/real}
shift $(($# >= 2 ? 2 : 1))
[ -d "$data" ] || { echo "evaluate-real-data: no $data" >&2; exit 3; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Voxel index (i,j,k) of the mask voxel nearest the mask's centroid: a click inside the object even when it is concave.
click_of() {
  python3 - "$1" <<'PY'
import gzip, struct, sys
raw = gzip.open(sys.argv[1]).read()
dims = struct.unpack('<8h', raw[40:56]); code = struct.unpack('<h', raw[70:72])[0]
offset = int(struct.unpack('<f', raw[108:112])[0])
kinds = {2: 'B', 4: 'h', 8: 'i', 16: 'f', 64: 'd', 256: 'b', 512: 'H', 768: 'I'}
n = dims[1] * dims[2] * dims[3]
values = struct.unpack('<%d%s' % (n, kinds[code]), raw[offset:offset + n * struct.calcsize(kinds[code])])
label = int(sys.argv[2]) if len(sys.argv) > 2 else 0
inside = [v for v in range(n) if (values[v] == label if label else values[v] != 0)]
ijk = [(v % dims[1], v // dims[1] % dims[2], v // (dims[1] * dims[2])) for v in inside]
c = [sum(p[a] for p in ijk) / len(ijk) for a in range(3)]
best = min(ijk, key=lambda p: sum((p[a] - c[a]) ** 2 for a in range(3)))
print('%d,%d,%d' % best)
PY
}
row() { # name ct reference label click
  local line
  line=$("$bin/DivAttentionSegment" --input "$2" --click "$5" --click-space index --output "$scratch/mask.nii.gz" \
    --reference "$3" --reference-label "$4" "${extra[@]}" 2>&1 | grep "against" || echo "failed")
  echo "| $1 | $5 | $(echo "$line" | sed -n 's/.*Dice \([0-9.]*\), recall \([0-9.]*\), precision \([0-9.]*\)/\1 | \2 | \3/p') |"
}
extra=("$@")
echo "| object | click (voxel index) | Dice | recall | precision |"
echo "|---|---|---:|---:|---:|"
ts=$data/totalseg-example
row "TotalSegmentator example: spleen" "$ts/ct.nii.gz" "$ts/labels.nii.gz" 1 23,32,104
row "TotalSegmentator example: right kidney" "$ts/ct.nii.gz" "$ts/labels.nii.gz" 2 86,43,74
row "TotalSegmentator example: left kidney" "$ts/ct.nii.gz" "$ts/labels.nii.gz" 3 31,33,90
for lesion in "$data"/deeplesion-crops/*_lesion.nii.gz; do
  ct=${lesion%_lesion.nii.gz}_ct.nii.gz
  name=$(basename "${lesion%_lesion.nii.gz}")
  row "DeepLesion $name" "$ct" "$lesion" 0 "$(click_of "$lesion")"
done
