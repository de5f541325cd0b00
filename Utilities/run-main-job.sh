#!/usr/bin/env bash
# The README's main job: DivAttentionSegment on the bundled phantom CT with its bundled click and bundled models.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="${1:-$here/build}"
models="$here/Models"
if [ ! -x "$build_dir/bin/DivAttentionSegment" ]; then
  echo "run-main-job: $build_dir/bin/DivAttentionSegment is not built; run Utilities/setup.sh first" >&2
  exit 3
fi
if [ ! -f "$models/coarse-munet-small.pt" ] || [ ! -f "$models/refine-unetr-small-divattention.pt" ] ||
   [ ! -f "$models/demo/phantom-ct.nii.gz" ]; then
  cat <<'MSG'
The bundled models and demo phantom do not exist yet (issue "Realistic CT phantoms, bundled models trained by the
toolkit, the README's main job"). What exists today: DivAttentionSegment (the full click -> mask pipeline, given model
files), DivAttentionPhantom (phantom datasets), DivAttentionTrain and DivAttentionEvaluate. For example:
  build/bin/DivAttentionPhantom --output-dir phantoms --cases 8
  build/bin/DivAttentionTrain --help
  build/bin/DivAttentionSegment --input ct.nii.gz --click x,y,z --coarse-model c.pt --refine-model r.pt --output mask.nii.gz
MSG
  exit 3
fi
click=$(cat "$models/demo/click.txt")
out="$here/demo-output"
mkdir -p "$out"
"$build_dir/bin/DivAttentionSegment" --input "$models/demo/phantom-ct.nii.gz" --click "$click" \
  --output "$out/mask.nii.gz" --preview "$out/preview.png" --verbose
