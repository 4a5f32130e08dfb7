#!/usr/bin/env bash
# Runs every glint test (lit + FileCheck suites and GoogleTest units) through
# ctest, installing and building first when needed. Arguments go to ctest,
# except:
#   --sanitize              run the whole suite in the instrumented tree
#                           instead (build-fuzz/: clang-22, every glint
#                           target under AddressSanitizer and
#                           UndefinedBehaviorSanitizer, shared with
#                           scripts/fuzz.sh); see docs/hardening.md.
#   --fuzz-smoke[=SECONDS]  then build the libFuzzer harnesses (build-fuzz/)
#                           and run each for SECONDS (default 5).
# Both are opt-in: the instrumented tree is a second full build
# (docs/hardening.md has the times).
set -euo pipefail
fuzz_seconds=
sanitize=
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    --fuzz-smoke) fuzz_seconds=5 ;;
    --fuzz-smoke=*) fuzz_seconds=${arg#--fuzz-smoke=} ;;
    *) ctest_args+=("$arg") ;;
  esac
done
if [ -n "$sanitize" ]; then
  export GLINT_SANITIZE=1
  source "$(dirname "${BASH_SOURCE[0]}")/sanitize-env.sh"
fi
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
ctest --test-dir "$GLINT_BUILD" --output-on-failure -j "$(nproc)" \
  ${ctest_args[@]+"${ctest_args[@]}"}
if [ -n "$fuzz_seconds" ]; then
  "$GLINT_ROOT/scripts/fuzz.sh" --time "$fuzz_seconds"
fi
