#!/usr/bin/env bash
# Builds a minimal ITK (only the modules DivAttention depends on) from ITK's source with DivAttention switched on as
# a remote module, runs the module's tests there, then builds DivAttention as an external module against that ITK
# build tree and runs its tests again. Not part of CI (it takes a while: Documentation/Building.md has the figures).
#
#   Utilities/check-remote-module.sh ITK_SOURCE_DIR [WORK_DIR]
#
# ITK_SOURCE_DIR: ITK >= 5.2 source, e.g. Debian's (see Documentation/Building.md for apt-get source).
# WORK_DIR: where the two build trees go (default: ./divattention-itk-check). Reruns are incremental.
# The module is cloned from this repository at its current commit (HEAD): commit what you want checked.
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1/CMakeLists.txt" ] || [ ! -d "$1/Modules/Remote" ]; then
  echo "usage: $0 ITK_SOURCE_DIR [WORK_DIR]  (ITK_SOURCE_DIR must be an ITK source tree)" >&2
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

cp "$repo/Utilities/DivAttention.remote.cmake" "$itk_source/Modules/Remote/DivAttention.remote.cmake"

start=$(date +%s)
# 1. Remote module inside ITK. Only Module_DivAttention is requested: ITK enables its dependencies by itself, and
#    builds tests only for the requested module. KWStyle and clang-format would be downloaded: switched off.
cmake -S "$itk_source" -B "$work/itk" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_TESTING=ON -DBUILD_EXAMPLES=OFF -DITK_BUILD_DEFAULT_MODULES=OFF \
  -DITK_USE_KWSTYLE=OFF -DITK_USE_CLANG_FORMAT=OFF -DITK_USE_SYSTEM_GOOGLETEST=ON \
  -DModule_DivAttention=ON -DDivAttention_GIT_REPOSITORY="$repo" -DModule_DivAttention_GIT_TAG="$commit" \
  -DDivAttention_BUILD_BENCHMARKS=OFF -DDivAttention_BUILD_APPLICATIONS=OFF
cmake --build "$work/itk" -j "$jobs"
remote_built=$(date +%s)
ctest --test-dir "$work/itk/Modules/Remote/DivAttention" --output-on-failure -j "$jobs"
remote_tested=$(date +%s)

# 2. External module against that ITK build tree (ITKModuleExternal.cmake exists there). The tree must not export
#    DivAttention itself (its targets would clash with ours), so the remote module is switched off first; ITK's own
#    libraries stay built.
cmake "$work/itk" -DModule_DivAttention=OFF
cmake --build "$work/itk" -j "$jobs"
cmake -S "$repo" -B "$work/external" -G Ninja -DCMAKE_BUILD_TYPE=Release -DITK_DIR="$work/itk" \
  -DDivAttention_BUILD_BENCHMARKS=OFF -DDivAttention_BUILD_APPLICATIONS=OFF
cmake --build "$work/external" -j "$jobs"
ctest --test-dir "$work/external" --output-on-failure -j "$jobs"
end=$(date +%s)

echo "check-remote-module: PASSED with ITK $itk_version at DivAttention $commit"
echo "  remote module: configure+build $((remote_built - start)) s, tests $((remote_tested - remote_built)) s"
echo "  external module: configure+build+tests $((end - remote_tested)) s"
