#!/usr/bin/env bash
# Builds the libFuzzer targets of Testing/Fuzzing (clang, -fsanitize=fuzzer,address,undefined on the project's own
# code) in build-fuzz/ and runs every one of them (Documentation/Reliability.md, "Fuzzing").
#   Utilities/run-fuzzers.sh [SECONDS | -runs=N] [--build-dir DIR] [--only NAME] [--make-seeds]
# SECONDS (default 60): fuzz each target that long; -runs=N: N executions of each target.
# --only NAME     run one target (ModelFile, ClickPoints, DatasetMSDJson, DatasetCSV, DatasetSplit, TrainingOptions)
# --make-seeds    (re)write the model-file seeds in Testing/Fuzzing/corpus/ModelFile and stop
# Each target starts from its seed corpus (Testing/Fuzzing/corpus/<NAME>, only read) and a scratch corpus in the build
# directory that keeps what earlier runs found. A crash, leak, timeout (10 s per input) or out-of-memory (2 GB) stops
# the target, leaves the input in <build>/Testing/Fuzzing/artifacts/<NAME>/ and makes this script fail. At the end a
# table gives executions, seconds and executions per second per target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$here/build-fuzz"
limit="-max_total_time=60"
only=""
make_seeds=0
while [ $# -gt 0 ]; do
  case "$1" in
    -runs=*) limit="$1"; shift ;;
    [0-9]*) limit="-max_total_time=$1"; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --make-seeds) make_seeds=1; shift ;;
    *) echo "run-fuzzers.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

command -v clang++ >/dev/null || { echo "run-fuzzers.sh: needs clang++ (Debian: apt-get install clang)" >&2; exit 2; }
# Release at -O2 without NDEBUG, so that nlohmann::json's own assertions stay on.
cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE=-O2 -DCMAKE_CXX_FLAGS_RELEASE=-O2 \
  -DDivAttention_BUILD_FUZZERS=ON -DDivAttention_BUILD_BENCHMARKS=OFF -DDivAttention_BUILD_APPLICATIONS=OFF >/dev/null

names=(ModelFile ClickPoints DatasetMSDJson DatasetCSV DatasetSplit TrainingOptions)
[ -z "$only" ] || names=("$only")
if [ "$make_seeds" = 1 ]; then
  cmake --build "$build_dir" -j "${DIVATTENTION_BUILD_JOBS:-2}" --target DivAttentionFuzzMakeModelSeeds
  "$build_dir/Testing/Fuzzing/DivAttentionFuzzMakeModelSeeds" "$here/Testing/Fuzzing/corpus/ModelFile"
  exit 0
fi
targets=()
for name in "${names[@]}"; do targets+=("DivAttentionFuzz$name"); done
cmake --build "$build_dir" -j "${DIVATTENTION_BUILD_JOBS:-2}" --target "${targets[@]}"

# Findings stop the program at once; LibTorch's and ITK's own (uninstrumented) code is not checked.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$here/Testing/Sanitizers/lsan.supp:print_suppressions=0}"

fuzz_dir="$build_dir/Testing/Fuzzing"
summary=()
failed=0
for name in "${names[@]}"; do
  corpus="$here/Testing/Fuzzing/corpus/$name"
  scratch="$fuzz_dir/corpus/$name"
  artifacts="$fuzz_dir/artifacts/$name"
  log="$fuzz_dir/$name.log"
  mkdir -p "$scratch" "$artifacts"
  dictionary=()
  [ ! -f "$here/Testing/Fuzzing/$name.dict" ] || dictionary=("-dict=$here/Testing/Fuzzing/$name.dict")
  echo "== $name ($limit)"
  start=$(date +%s.%N)
  status=0
  "$fuzz_dir/DivAttentionFuzz$name" "$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dictionary[@]}" "$scratch" "$corpus" >"$log" 2>&1 || status=$?
  seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$status" != 0 ]; then
    failed=1
    tail -40 "$log"
    echo "== $name: FAILED (exit $status); the input is in $artifacts/, the log in $log"
  fi
  summary+=("$(printf '%-16s %12s %9s %10s  %s' "$name" "${runs:-?}" "$seconds" "${rate:-?}" \
    "$([ "$status" = 0 ] && echo ok || echo FAILED)")")
done
printf '%-16s %12s %9s %10s  %s\n' target executions seconds exec/s result
printf '%s\n' "${summary[@]}"
exit $failed
