#!/usr/bin/env bash
# Builds the project's own code with AddressSanitizer + UndefinedBehaviorSanitizer (DivAttention_SANITIZE, the default
# compiler, build-sanitize/) and runs the sanitizer subset of the tests (Documentation/Reliability.md, "Sanitizers"):
# the Core, TorchRuntime, Filters and Datasets suites, and the replay of every fuzz target's corpus. CI runs this after
# the README's test command.
#   Utilities/run-sanitized-tests.sh [--build-dir DIR]
# ITK and LibTorch are not instrumented; Testing/Sanitizers/*.supp hold the (commented) suppressions of findings in
# their code. Any finding in ours fails the test that made it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$here/build-sanitize"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    *) echo "run-sanitized-tests.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

# The suites of the subset (folders of Testing/ and their test programs) and the fuzz replay programs.
suites=(Core TorchRuntime Filters Datasets)
targets=(DivAttentionCoreTests DivAttentionTorchRuntimeTests DivAttentionFiltersTests DivAttentionDatasetsTests
  DivAttentionFuzzModelFile DivAttentionFuzzClickPoints DivAttentionFuzzDatasetMSDJson DivAttentionFuzzDatasetCSV
  DivAttentionFuzzDatasetSplit DivAttentionFuzzTrainingOptions)

start=$(date +%s)
# -O0: compiling is most of this script's time, and -O0 compiles in ~40 % less CPU time than -O1 (the subset's tests
# are quick either way); no NDEBUG, so nlohmann::json's assertions are on. Warnings are the normal build's business
# (CI builds that with -Werror).
cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE=-O0 \
  -DCMAKE_CXX_FLAGS_RELEASE=-O0 -DDivAttention_SANITIZE=address,undefined -DDivAttention_BUILD_BENCHMARKS=OFF \
  -DDivAttention_BUILD_APPLICATIONS=OFF >/dev/null
cmake --build "$build_dir" -j "${DIVATTENTION_BUILD_JOBS:-2}" --target "${targets[@]}"
built=$(date +%s)

supp="$here/Testing/Sanitizers"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:suppressions=$supp/asan.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
status=0
for suite in "${suites[@]}" Fuzzing; do
  ctest --test-dir "$build_dir/Testing/$suite" --output-on-failure -j "${DIVATTENTION_TEST_JOBS:-2}" || status=1
done
echo "run-sanitized-tests.sh: build $(( built - start )) s, tests $(( $(date +%s) - built )) s"
exit $status
