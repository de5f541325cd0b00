#!/usr/bin/env bash
# Checks build modes 2 and 3 (Documentation/Building.md) against ITK's source. Not part of CI (it takes a while:
# Building.md has the figures).
#   3. remote module: a minimal ITK with only Module_DivAttention=ON (ITK enables what it depends on), built with the
#      module inside, and the module's tests run there;
#   2. external module: a second, module-free minimal ITK build tree (exactly the ITK modules itk-module.cmake names),
#      DivAttention configured against it (include(ITKModuleExternal)), built, and its tests run.
# Two ITK trees, because switching the module off in the first tree re-configures it and rebuilds most of ITK.
#
#   Utilities/check-remote-module.sh [--remote-only|--external-only] ITK_SOURCE_DIR [WORK_DIR]
#
# ITK_SOURCE_DIR: ITK >= 5.2 source, e.g. Debian's (see Documentation/Building.md for apt-get source).
# WORK_DIR: where the two build trees go (default: ./divattention-itk-check). Reruns are incremental.
# The module is cloned from this repository at its current commit (HEAD): commit what you want checked.
set -euo pipefail
check_remote=1
check_external=1
case "${1:-}" in
  --remote-only) check_external=0; shift ;;
  --external-only) check_remote=0; shift ;;
esac
if [ $# -lt 1 ] || [ ! -f "$1/CMakeLists.txt" ] || [ ! -d "$1/Modules/Remote" ]; then
  echo "usage: $0 [--remote-only|--external-only] ITK_SOURCE_DIR [WORK_DIR]  (ITK_SOURCE_DIR must be an ITK source tree)" >&2
  exit 2
fi
itk_source=$(cd "$1" && pwd)
work=$(mkdir -p "${2:-divattention-itk-check}" && cd "${2:-divattention-itk-check}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "check-remote-module: note: uncommitted changes in $repo are not part of the check (HEAD = $commit)"
fi
jobs=${DIVATTENTION_BUILD_JOBS:-2}
itk_version=$(sed -n 's/^set(ITK_VERSION_\(MAJOR\|MINOR\|PATCH\) "\([0-9]*\)")/\2/p' "$itk_source/CMake/itkVersion.cmake" |
  paste -sd.)
echo "check-remote-module: ITK source $itk_source ($itk_version), DivAttention $commit"

# Shared libraries and the system's GDCM, as Debian builds ITK: Debian's LibTorch loads the system's GDCM too
# (through OpenCV), and a second, ITK-bundled copy of GDCM in the same process is freed twice at exit.
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_EXAMPLES=OFF -DITK_BUILD_DEFAULT_MODULES=OFF
  -DITK_USE_KWSTYLE=OFF -DITK_USE_CLANG_FORMAT=OFF -DITK_USE_SYSTEM_GOOGLETEST=ON
  -DBUILD_SHARED_LIBS=ON -DITK_USE_SYSTEM_GDCM=ON)
summary=()

if [ "$check_remote" = 1 ]; then
  # 3. Remote module inside ITK. Only Module_DivAttention is requested: ITK enables its dependencies by itself, and
  #    builds tests only for the requested module. KWStyle and clang-format would be downloaded: switched off.
  cp "$repo/Utilities/DivAttention.remote.cmake" "$itk_source/Modules/Remote/DivAttention.remote.cmake"
  start=$(date +%s)
  cmake -S "$itk_source" -B "$work/itk" "${common[@]}" -DBUILD_TESTING=ON \
    -DModule_DivAttention=ON -DDivAttention_GIT_REPOSITORY="$repo" -DModule_DivAttention_GIT_TAG="$commit" \
    -DDivAttention_BUILD_BENCHMARKS=OFF -DDivAttention_BUILD_APPLICATIONS=OFF
  cmake --build "$work/itk" -j "$jobs"
  built=$(date +%s)
  # The whole tree's tests are DivAttention's (ITK builds tests only for the requested module); they live in the
  # module's test/ and Examples/ folders.
  ctest --test-dir "$work/itk" --output-on-failure -j "$jobs"
  summary+=("remote module: ITK + module configure and build $((built - start)) s, tests $(($(date +%s) - built)) s")
fi

if [ "$check_external" = 1 ]; then
  # 2. External module against a module-free ITK build tree holding exactly the ITK modules itk-module.cmake names
  #    (DEPENDS and TEST_DEPENDS). ITK's own tests are not built (BUILD_TESTING=OFF there); the test kernel and
  #    GoogleTest modules are requested by name, so the module's tests can be.
  modules=$(sed -n '/^set(DivAttention_ITK\(_TEST\)\?_DEPENDS/,/)/p' "$repo/itk-module.cmake" | grep -o 'ITK[A-Z][A-Za-z0-9]*' |
    sort -u)
  module_flags=()
  for m in $modules; do module_flags+=("-DModule_$m=ON"); done
  rm -f "$itk_source/Modules/Remote/DivAttention.remote.cmake" # the module must not exist inside this tree
  start=$(date +%s)
  # Configured once: re-running CMake on an ITK 5.2 build tree rewrites generated headers and rebuilds most of ITK.
  if [ ! -f "$work/itk-modulefree/CMakeCache.txt" ]; then
    cmake -S "$itk_source" -B "$work/itk-modulefree" "${common[@]}" -DBUILD_TESTING=OFF "${module_flags[@]}"
  fi
  cmake --build "$work/itk-modulefree" -j "$jobs"
  itk_built=$(date +%s)
  cmake -S "$repo" -B "$work/external" -G Ninja -DCMAKE_BUILD_TYPE=Release -DITK_DIR="$work/itk-modulefree" \
    -DBUILD_TESTING=ON -DDivAttention_BUILD_BENCHMARKS=OFF -DDivAttention_BUILD_APPLICATIONS=OFF |
    tee "$work/external-configure.log"
  if ! grep -q 'DivAttention build mode: ITKExternalModule' "$work/external-configure.log"; then
    echo "check-remote-module: the build against $work/itk-modulefree did not take the external-module path" >&2
    exit 1
  fi
  cmake --build "$work/external" -j "$jobs"
  built=$(date +%s)
  ctest --test-dir "$work/external" --output-on-failure -j "$jobs"
  summary+=("external module: module-free ITK configure and build $((itk_built - start)) s," \
    "DivAttention configure and build $((built - itk_built)) s, tests $(($(date +%s) - built)) s")
fi

echo "check-remote-module: PASSED with ITK $itk_version at DivAttention $commit"
for line in "${summary[@]}"; do echo "  $line"; done
