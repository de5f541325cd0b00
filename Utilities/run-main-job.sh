#!/usr/bin/env bash
# The README's main job: DivAttentionSegment on the bundled phantom CT with its bundled click.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="${1:-$here/build}"
if [ ! -x "$build_dir/bin/DivAttentionSegment" ]; then
  cat <<'MSG'
DivAttentionSegment does not exist yet: the segmentation pipeline (issue "Segmentation pipeline") and the bundled
phantom and models (issue "Realistic CT phantoms, bundled models") are still to be built. What exists today is the
foundation: the ITK <-> LibTorch bridge, run-time settings, tests and kernel benchmarks
(run: build/Testing/Benchmarks/DivAttentionBenchmarks).
MSG
  exit 3
fi
exec "$build_dir/bin/DivAttentionSegment" --demo
