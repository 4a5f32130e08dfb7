#!/usr/bin/env bash
# Runs every glint test (lit + FileCheck suites and GoogleTest units) through
# ctest, installing and building first when needed. Arguments go to ctest,
# except:
#   --fuzz-smoke[=SECONDS]  then build the libFuzzer harnesses (build-fuzz/,
#                           clang) and run each for SECONDS (default 5); see
#                           docs/hardening.md. Opt-in: building the
#                           instrumented tree costs about as much as the
#                           normal build.
set -euo pipefail
fuzz_seconds=
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --fuzz-smoke) fuzz_seconds=5 ;;
    --fuzz-smoke=*) fuzz_seconds=${arg#--fuzz-smoke=} ;;
    *) ctest_args+=("$arg") ;;
  esac
done
if [ -n "$fuzz_seconds" ]; then export GLINT_WANT_FUZZ=1; fi
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ctest --test-dir "$GLINT_BUILD" --output-on-failure -j "$(nproc)" \
  ${ctest_args[@]+"${ctest_args[@]}"}
if [ -n "$fuzz_seconds" ]; then
  "$GLINT_ROOT/scripts/fuzz.sh" --time "$fuzz_seconds"
fi
