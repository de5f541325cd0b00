#!/usr/bin/env bash
# The README's main job: DivAttentionSegment on the bundled phantom CT (Models/demo) with its bundled click and the
# bundled models; writes the mask and the preview picture into demo-output/ and prints the Dice against the phantom's
# known truth.
#   Utilities/run-main-job.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="${1:-$here/build}"
demo="$here/Models/demo"
if [ ! -x "$build_dir/bin/DivAttentionSegment" ]; then
  echo "run-main-job: $build_dir/bin/DivAttentionSegment is not built; run Utilities/setup.sh first" >&2
  exit 3
fi
out="$here/demo-output"
mkdir -p "$out"
echo "DivAttentionSegment on the bundled phantom ($demo/phantom-ct.nii.gz), click $(cat "$demo/click.txt") (LPS, mm)"
"$build_dir/bin/DivAttentionSegment" --input "$demo/phantom-ct.nii.gz" --click "$(cat "$demo/click.txt")" \
  --output "$out/mask.nii.gz" --preview "$out/preview.png" \
  --reference "$demo/phantom-labels.nii.gz" --reference-label "$(cat "$demo/label.txt")" --verbose
echo "mask: $out/mask.nii.gz, preview: $out/preview.png"
