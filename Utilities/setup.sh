#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for DivAttention and builds it (Release, both cores).
# Idempotent: packages already present are kept, an existing build directory is reused.
#   Utilities/setup.sh [--build-dir DIR] [--no-install] [--tests-only]
# --no-install   skip apt-get (for machines where the packages are known to be present)
# --tests-only   build what the test suite needs (libraries, tests, the applications they run), not benchmarks
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$here/build"
install_packages=1
benchmarks=ON
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --no-install) install_packages=0; shift ;;
    --tests-only) benchmarks=OFF; shift ;;
    *) echo "setup.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

# Why each package (Documentation/Building.md has the long form):
#   libinsighttoolkit5-dev  ITK 5.2 (with libgdcm-tools: GDCM's CMake targets name its tools, and complain without them)
#   libtorch-dev            LibTorch 1.13 (CPU), with oneDNN for convolutions
#   libopenblas0-pthread    an optimised BLAS behind libblas.so.3; without it LibTorch's matmuls use the reference BLAS
#                           (~6 GFLOP/s here instead of ~130)
#   libtclap-dev, nlohmann-json3-dev  command lines and JSON (model files, configs, datasets)
#   libgtest-dev, libbenchmark-dev    tests and benchmarks
#   libfftw3-dev            recommended by ITK's package; some ITK CMake configurations expect it
#   libdcmtk-dev            DCMTK's dcmseg: DivAttentionSegment writes the mask as a DICOM SEG of the input series
#                           (Documentation/ClinicalIO.md); without it that feature is left out of the build
#   libdeflate-dev          libdeflate: .nii.gz outputs compressed about three times faster than ITK's zlib writer
#                           (itk::GzipFile); without it ITK compresses them
#   libgloo-dev             Gloo's headers, which LibTorch's c10d ProcessGroupGloo.hpp includes: distributed training
#                           (Documentation/Training.md); without it that feature is left out of the build
packages=(build-essential cmake ninja-build pkg-config clang-format
  libinsighttoolkit5-dev libgdcm-tools libfftw3-dev
  libtorch-dev libopenblas0-pthread
  libtclap-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev libgloo-dev libdcmtk-dev libdeflate-dev)

if [ "$install_packages" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    echo "setup.sh: installing ${missing[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDivAttention_BUILD_BENCHMARKS="$benchmarks" ${DIVATTENTION_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "${DIVATTENTION_BUILD_JOBS:-2}"
echo "setup.sh: built in $build_dir"
