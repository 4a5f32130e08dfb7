#!/usr/bin/env bash
# Installs what glint needs from Debian when it is missing, configures the
# build once, and builds. Quick when nothing changed. Sourced by test.sh and
# demo.sh; GLINT_BUILD_DIR overrides the build directory (default: build/).
set -euo pipefail

GLINT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GLINT_BUILD=${GLINT_BUILD_DIR:-$GLINT_ROOT/build}

packages=(libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools libomp-22-dev
          libgtest-dev libbenchmark-dev libpng-dev libopenblas-dev libpcre2-dev
          libicu-dev libsentencepiece-dev pkg-config
          ninja-build cmake g++ python3)
# The fuzz harnesses (scripts/fuzz.sh, scripts/test.sh --fuzz-smoke) need
# clang with libFuzzer and the sanitizer runtimes, from the same LLVM.
if [ -n "${GLINT_WANT_FUZZ:-}" ]; then
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

# scripts/fuzz.sh wants the packages only (it builds its own tree).
if [ -n "${GLINT_PACKAGES_ONLY:-}" ]; then
  return 0
fi

if [ ! -f "$GLINT_BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$GLINT_ROOT" -B "$GLINT_BUILD" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$GLINT_BUILD"
