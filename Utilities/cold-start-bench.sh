#!/usr/bin/env bash
# The cold start and the batch throughput (issue 25; Documentation/Performance.md, "Cold start" and "Batch"): what a
# process pays for its first click, what a whole command-line run costs from read to write, and cases per second of a
# batch. Every figure is repeated and the median printed with the single values. Run at normal priority on an idle
# machine; the thread budget is --threads (default 2).
#   Utilities/cold-start-bench.sh [--repeat N] [--threads N] [--work DIR] [--build DIR] pipeline|cli|batch|dicom ...
# pipeline: DivAttentionPipelineBench (512x512x300 in memory), `small` and `paper`, without and with --warm-up 1:
#           run 1 (the first click of the process) against runs 2-4 (steady), one process per repeat.
# cli:      DivAttentionSegment on the same CT as an uncompressed NIfTI (the pipeline bench's --write-inputs), mask
#           out as .nii.gz, `small` (bundled models) and `paper` (untrained paper-size models, one coarse window),
#           with --warm-up auto (the default: off on the CPU), always, read and off: wall seconds of the whole process
#           (/usr/bin/time).
# dicom:    DivAttentionSegment on the same CT as a DICOM series of 300 slices, mask out as a DICOM SEG (`small`): the
#           SEG's write (from the verbose log: "segmented" to "wrote") and the whole process's wall seconds.
# batch:    100 phantom cases (DivAttentionPhantom, 253x200x~60-90 voxels, a click on the spleen each) in one
#           DivAttentionSegment --batch, bundled models, --jobs 1 and --jobs 2 (the thread budget split between the
#           jobs): cases/s over the run, and the first and second case's seconds from the summary CSV.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repeat=3
threads=2
work=${TMPDIR:-/tmp}/divattention-cold-start
build="$here/build"
modes=()
while [ $# -gt 0 ]; do
  case "$1" in
  --repeat) repeat=$2; shift 2 ;;
  --threads) threads=$2; shift 2 ;;
  --work) work=$2; shift 2 ;;
  --build) build=$2; shift 2 ;;
  pipeline | cli | batch | dicom) modes+=("$1"); shift ;;
  *) echo "cold-start-bench: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ ${#modes[@]} -gt 0 ] || { echo "cold-start-bench: say pipeline, cli, batch and/or dicom" >&2; exit 2; }
segment="$build/bin/DivAttentionSegment"
bench="$build/Testing/Benchmarks/DivAttentionPipelineBench"
phantom="$build/bin/DivAttentionPhantom"
for tool in "$segment" "$bench" "$phantom"; do
  [ -x "$tool" ] || { echo "cold-start-bench: $tool is not built" >&2; exit 3; }
done
mkdir -p "$work"
echo "cold-start-bench: $(lscpu | sed -n 's/^Model name: *//p'), $threads threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The median of the numbers on stdin, and the numbers.
median() {
  sort -g | awk '{ v[NR] = $1; all = all (NR > 1 ? " " : "") $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f (of %s)\n", m, all }'
}

run_pipeline() {
  for preset in small paper; do
    for warm in 0 1; do
      local first=() later=()
      for ((k = 0; k < repeat; ++k)); do
        local log
        log=$("$bench" --size 512,512,300 --spacing 0.75,0.75,1.0 --preset "$preset" --threads "$threads" --repeat 4 \
          --warm-up "$warm")
        first+=("$(sed -n 's/^run 1: total \([0-9.]*\) s.*/\1/p' <<<"$log")")
        later+=($(sed -n 's/^run [2-4]: total \([0-9.]*\) s.*/\1/p' <<<"$log"))
        [ "$warm" = 1 ] && sed -n 's/^warm-up 1: /  warm-up: /p' <<<"$log"
      done
      echo "pipeline $preset, warm-up $warm: first click $(printf '%s\n' "${first[@]}" | median) s;" \
        "steady $(printf '%s\n' "${later[@]}" | median) s"
    done
  done
}

run_cli() {
  local inputs="$work/cli"
  if [ ! -f "$inputs/coarse-paper.pt" ]; then
    "$bench" --size 512,512,300 --spacing 0.75,0.75,1.0 --preset paper --repeat 0 --write-inputs "$inputs" >/dev/null
  fi
  local click
  click=$(cat "$inputs/click.txt")
  for preset in small paper; do
    local models=()
    [ "$preset" = paper ] && models=(--coarse-model "$inputs/coarse-paper.pt" --refine-model "$inputs/refine-paper.pt"
      --coarse-max-extent 1)
    for warm in auto always read off; do
      local walls=()
      for ((k = 0; k < repeat; ++k)); do
        rm -f "$inputs/mask.nii.gz"
        local start end
        start=$(date +%s.%N)
        "$segment" --input "$inputs/ct.nii" --click "$click" --output "$inputs/mask.nii.gz" --threads "$threads" \
          ${models[@]+"${models[@]}"} --warm-up "$warm" >/dev/null
        end=$(date +%s.%N)
        walls+=("$(echo "$end - $start" | bc)")
      done
      echo "cli $preset --warm-up $warm: wall $(printf '%s\n' "${walls[@]}" | median) s"
    done
  done
  # Where the time of one run goes (the last one, with the warm-up).
  "$segment" --input "$inputs/ct.nii" --click "$click" --output "$inputs/mask.nii.gz" --threads "$threads" \
    --verbose 2>&1 | sed 's/^/  small, --verbose: /'
}

run_batch() {
  local data="$work/batch"
  if [ ! -f "$data/phantoms/dataset.json" ]; then
    "$phantom" --output-dir "$data/phantoms" --cases 100 --seed 14 >/dev/null
  fi
  # One case per phantom: its spleen's click (dataset.json, LPS mm).
  python3 - "$data" <<'EOF'
import json, sys
data = sys.argv[1]
cases = json.load(open(f"{data}/phantoms/dataset.json"))["divattention"]["cases"]
with open(f"{data}/cases.csv", "w") as csv:
    csv.write("image,clicks,output\n")
    for case in cases:
        spleen = next(o for o in case["objects"] if o["name"] == "spleen")
        click = ",".join(f"{v:.3f}" for v in spleen["click_lps"])
        csv.write(f'phantoms/imagesTr/{case["name"]}.nii.gz,"{click}",masks/{case["name"]}.nii.gz\n')
EOF
  for jobs in 1 2; do
    for ((k = 0; k < repeat; ++k)); do
      rm -rf "$data/masks" && mkdir -p "$data/masks"
      local start end
      start=$(date +%s.%N)
      "$segment" --batch "$data/cases.csv" --threads "$threads" --jobs "$jobs" >/dev/null 2>"$data/batch.log" || true
      end=$(date +%s.%N)
      awk -F, -v wall="$(echo "$end - $start" | bc)" -v jobs="$jobs" 'NR > 1 { n++; if ($2 == "done") done++; s[n] = $3 }
        END { printf "batch --jobs %d: %d cases (%d done) in %.1f s: %.2f cases/s; case 1 %.3f s, case 2 %.3f s, median case %.3f s\n",
              jobs, n, done, wall, n / wall, s[1], s[2], 0 }' "$data/cases.summary.csv" |
        sed "s/median case 0.000 s/median case $(tail -n +2 "$data/cases.summary.csv" | cut -d, -f3 | median | cut -d' ' -f1) s/"
    done
  done
}

run_dicom() {
  local series="$work/dicom-series"
  if [ ! -f "$series/click.txt" ]; then
    "$bench" --size 512,512,300 --spacing 0.75,0.75,1.0 --preset small --repeat 0 --write-dicom-series "$series" >/dev/null
  fi
  local click writes=() walls=()
  click=$(cat "$series/click.txt")
  for ((k = 0; k < repeat; ++k)); do
    rm -f "$work/mask.dcm"
    local log
    log=$( { /usr/bin/time -f "wall %e" "$segment" --input "$series" --click "$click" --output "$work/mask.dcm" \
      --threads "$threads" -v; } 2>&1 )
    writes+=("$(awk '/\] segmented on/ { s = substr($1, 2) } /\] wrote / { w = substr($1, 2) } END { printf "%.2f", w - s }' <<<"$log")")
    walls+=("$(sed -n 's/^wall //p' <<<"$log")")
  done
  echo "dicom: SEG of 300 slices written in $(printf '%s\n' "${writes[@]}" | median) s (after the mask); whole run" \
    "$(printf '%s\n' "${walls[@]}" | median) s wall"
}

for mode in "${modes[@]}"; do
  "run_$mode"
done
