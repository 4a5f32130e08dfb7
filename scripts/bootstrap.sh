#!/usr/bin/env bash
# Installs what glint needs from Debian when it is missing, configures the
# build once, and builds. Quick when nothing changed. Sourced by test.sh,
# demo.sh and fuzz.sh; GLINT_BUILD_DIR overrides the build directory (default:
# build/).
#
# GLINT_SANITIZE=1 selects the instrumented tree instead (test.sh --sanitize,
# fuzz.sh): clang-22, every glint target with AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage, the harnesses of
# test/fuzz, in build-fuzz/ (GLINT_FUZZ_BUILD_DIR overrides). See
# docs/hardening.md. GLINT_CONFIGURE_ONLY=1 stops before building.
set -euo pipefail

GLINT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${GLINT_SANITIZE:-}" ]; then
  GLINT_BUILD=${GLINT_FUZZ_BUILD_DIR:-$GLINT_ROOT/build-fuzz}
else
  GLINT_BUILD=${GLINT_BUILD_DIR:-$GLINT_ROOT/build}
fi

packages=(libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools libomp-22-dev
          libgtest-dev libbenchmark-dev libpng-dev libjpeg-dev libopenblas-dev
          libpcre2-dev libicu-dev libsentencepiece-dev pkg-config
          ninja-build cmake g++ python3)
# The instrumented tree needs clang with libFuzzer and the sanitizer
# runtimes, from the same LLVM.
if [ -n "${GLINT_SANITIZE:-}" ]; then
  packages+=(clang-22 libclang-rt-22-dev)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
    grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "glint: installing missing Debian packages: ${missing[*]}" >&2
  sudo=
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f "$GLINT_BUILD/build.ninja" ]; then
  :
elif [ -z "${GLINT_SANITIZE:-}" ]; then
  cmake -G Ninja -S "$GLINT_ROOT" -B "$GLINT_BUILD" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
else
  # clang with libFuzzer, preferably that of the LLVM glint builds against.
  cc=; cxx=
  for v in -22 ""; do
    if command -v "clang++$v" >/dev/null &&
       echo 'extern "C" int LLVMFuzzerTestOneInput(const char*,unsigned long){return 0;}' |
       "clang++$v" -x c++ -fsanitize=fuzzer,address,undefined - -o /dev/null 2>/dev/null
    then cc=clang$v; cxx=clang++$v; break; fi
  done
  if [ -z "$cxx" ]; then
    echo "glint: no clang with libFuzzer and the sanitizers (clang-22, libclang-rt-22-dev)" >&2
    exit 2
  fi
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 -gline-tables-only: the usual sanitizer build, readable stack
  # traces at a bearable speed (and the flags this tree has always had).
  cmake -G Ninja -S "$GLINT_ROOT" -B "$GLINT_BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS_RELEASE="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" \
    -DGLINT_BUILD_FUZZERS=ON "${launcher[@]}" >/dev/null
fi
if [ -z "${GLINT_CONFIGURE_ONLY:-}" ]; then
  cmake --build "$GLINT_BUILD"
fi
