#!/usr/bin/env bash
# The README's main job: DivAttentionSegment with the bundled models on the bundled real demo CT (Models/demo/
# ibsi-sts-031: a soft-tissue sarcoma, CC BY 3.0, attribution in its README.md) and its bundled click; writes the mask
# and the preview picture into demo-output/ and prints the Dice against the expert-drawn tumour mask. --phantom runs
# the phantom demo instead (Models/demo: a CT phantom, its click on the spleen, Dice against the phantom's truth).
#   Utilities/run-main-job.sh [--phantom] [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
phantom=0
if [ "${1:-}" = "--phantom" ]; then
  phantom=1
  shift
fi
build_dir="${1:-$here/build}"
if [ ! -x "$build_dir/bin/DivAttentionSegment" ]; then
  echo "run-main-job: $build_dir/bin/DivAttentionSegment is not built; run Utilities/setup.sh first" >&2
  exit 3
fi
out="$here/demo-output"
mkdir -p "$out"
if [ "$phantom" = 1 ]; then
  demo="$here/Models/demo"
  ct="$demo/phantom-ct.nii.gz"
  reference=(--reference "$demo/phantom-labels.nii.gz" --reference-label "$(cat "$demo/label.txt")")
  what="the bundled phantom"
else
  demo="$here/Models/demo/ibsi-sts-031"
  ct="$demo/ct.nii.gz"
  reference=(--reference "$demo/lesion.nii.gz")
  what="the bundled real CT (IBSI STS_031, a soft-tissue sarcoma; CC BY 3.0, $demo/README.md)"
fi
echo "DivAttentionSegment on $what ($ct), click $(cat "$demo/click.txt") (LPS, mm)"
"$build_dir/bin/DivAttentionSegment" --input "$ct" --click " $(cat "$demo/click.txt")" \
  --output "$out/mask.nii.gz" --preview "$out/preview.png" "${reference[@]}" --verbose
echo "mask: $out/mask.nii.gz, preview: $out/preview.png"
