#!/usr/bin/env bash
# Packs this machine's ITK (Debian's libinsighttoolkit5-dev: headers, the shared libraries DivAttention links and
# their non-system dependencies) with a small CMake package shim into one archive, so that DivAttention can be built
# on a machine that has a CUDA LibTorch but no ITK and no package access (the lent GPU machine; see
# Documentation/Building.md, "Building on a machine without ITK"). glibc and libstdc++ are not packed: the target
# must have glibc >= 2.34 and libstdc++ from GCC >= 12.
#   Utilities/pack-itk-bundle.sh BUILD_DIR ARCHIVE      (BUILD_DIR: a configured standalone build, for the IO factory
#                                                       registration header ITK generated there)
set -euo pipefail
build=${1:?usage: pack-itk-bundle.sh BUILD_DIR ARCHIVE}
archive=${2:?usage: pack-itk-bundle.sh BUILD_DIR ARCHIVE}
itk_include=$(ls -d /usr/include/ITK-5.* | head -1)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/itk-bundle
mkdir -p "$root/include" "$root/lib" "$root/factory" "$root/cmake"
cp -a "$itk_include" "$root/include/"
cp -a /usr/include/tclap "$root/include/"
cp -a /usr/include/nlohmann "$root/include/"
cp "$build"/ITKFactoryRegistration/*.h "$root/factory/"

# The ITK libraries any DivAttention binary links, found through an application that links them all.
probe=$(find "$build" -name DivAttentionSegment -type f -perm -u+x | head -1)
[ -n "$probe" ] || { echo "no DivAttentionSegment in $build: build the applications first" >&2; exit 1; }
ldd "$probe" | awk '$3 ~ /^\// {print $3}' | grep -E 'lib(ITK|itk|gdcm)' | sort -u >"$stage/itk.txt"
for lib in $(cat "$stage/itk.txt"); do ldd "$lib" | awk '$3 ~ /^\// {print $3}'; done | sort -u |
  grep -vE 'lib(ITK|itk|gdcm)|/lib(c|m|stdc\+\+|gcc_s|pthread|dl|rt)\.so' >"$stage/deps.txt"
for lib in $(cat "$stage/itk.txt") $(cat "$stage/deps.txt"); do cp -L "$lib" "$root/lib/$(basename "$lib")"; done

version=$(sed -n 's/.*ITK_VERSION_STRING "\([0-9.]*\)".*/\1/p' "$itk_include/itkConfigure.h" | head -1)
version=${version:-$(basename "$itk_include" | sed 's/ITK-//')}
cat >"$root/cmake/ITKConfigVersion.cmake" <<CMAKE
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE TRUE)
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
endif()
CMAKE
cat >"$root/cmake/ITKConfig.cmake" <<CMAKE
# A packed ITK (Utilities/pack-itk-bundle.sh): every packed library is linked; COMPONENTS are accepted and ignored.
get_filename_component(_itk_bundle "\${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(ITK_FOUND TRUE)
set(ITK_VERSION "$version")
string(REPLACE "." ";" _itk_parts "\${ITK_VERSION}")
list(GET _itk_parts 0 ITK_VERSION_MAJOR)
list(GET _itk_parts 1 ITK_VERSION_MINOR)
set(ITK_CMAKE_DIR "\${CMAKE_CURRENT_LIST_DIR}")
set(ITK_INCLUDE_DIRS "\${_itk_bundle}/include/$(basename "$itk_include")" "\${_itk_bundle}/factory")
file(GLOB ITK_LIBRARIES "\${_itk_bundle}/lib/lib*.so*")
set(ITK_USE_FILE "\${CMAKE_CURRENT_LIST_DIR}/UseITK.cmake")
CMAKE
cat >"$root/cmake/UseITK.cmake" <<'CMAKE'
# What ITK's UseITK.cmake does for a standalone build: include paths and IO factory registration.
include_directories(SYSTEM ${ITK_INCLUDE_DIRS})
add_compile_definitions(ITK_IO_FACTORY_REGISTER_MANAGER)
get_filename_component(_itk_bundle_lib "${ITK_CMAKE_DIR}/../lib" ABSOLUTE)
list(APPEND CMAKE_BUILD_RPATH "${_itk_bundle_lib}")
set(CMAKE_BUILD_RPATH "${CMAKE_BUILD_RPATH}")
CMAKE
tar -C "$stage" -cJf "$archive" itk-bundle
echo "packed ITK $version: $(wc -l <"$stage/itk.txt") ITK libraries, $(wc -l <"$stage/deps.txt") dependencies -> $archive ($(du -h "$archive" | cut -f1))"
