#!/usr/bin/env bash
# Runs every glint test (lit + FileCheck suites and GoogleTest units) through
# ctest, installing and building first when needed, and then the fast
# sanitized subset (--sanitize=fast below). Arguments go to ctest, except:
#   --sanitize              run the whole suite in the instrumented tree
#                           instead (build-fuzz/: clang-22, every glint
#                           target under AddressSanitizer and
#                           UndefinedBehaviorSanitizer, shared with
#                           scripts/fuzz.sh); not by default: a second full
#                           build and a suite several times slower
#   --sanitize=fast         only the MLIR-free part of it: the runtime,
#                           allocator, tokenizer and explain units (ctest
#                           label mlir-free) in the instrumented tree, and a
#                           five-second run of each of the five harnesses
#                           of the file readers
#   --no-sanitize           the normal suite alone
#   --fuzz-smoke[=SECONDS]  then run each of the eight libFuzzer harnesses
#                           (build-fuzz/, the whole instrumented tree) for
#                           SECONDS (default 5)
# docs/hardening.md has what each costs.
set -euo pipefail
fuzz_seconds=
sanitize=default
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=full ;;
    --sanitize=fast) sanitize=fast ;;
    --no-sanitize) sanitize= ;;
    --fuzz-smoke) fuzz_seconds=5 ;;
    --fuzz-smoke=*) fuzz_seconds=${arg#--fuzz-smoke=} ;;
    *) ctest_args+=("$arg") ;;
  esac
done
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The MLIR-free units and harnesses, built alone in the instrumented tree.
sanitize_fast() {
  (
    export GLINT_SANITIZE=1 GLINT_CONFIGURE_ONLY=1
    source "$scripts/sanitize-env.sh"
    source "$scripts/bootstrap.sh"
    cmake --build "$GLINT_BUILD" --target GlintRuntimeTests \
      GlintModelAllocTests GlintTokenizerTests GlintExplainTests
    ctest --test-dir "$GLINT_BUILD" --output-on-failure -j "$(nproc)" \
      -L mlir-free ${ctest_args[@]+"${ctest_args[@]}"}
    "$scripts/fuzz.sh" --time 5 fuzz-npy fuzz-safetensors fuzz-model-info \
      fuzz-vocab fuzz-image
  )
}

if [ "$sanitize" = fast ]; then
  sanitize_fast
  exit 0
fi
if [ "$sanitize" = full ]; then
  export GLINT_SANITIZE=1
  source "$scripts/sanitize-env.sh"
fi
source "$scripts/bootstrap.sh"
ctest --test-dir "$GLINT_BUILD" --output-on-failure -j "$(nproc)" \
  ${ctest_args[@]+"${ctest_args[@]}"}
if [ "$sanitize" = default ]; then
  sanitize_fast
fi
if [ -n "$fuzz_seconds" ]; then
  "$scripts/fuzz.sh" --time "$fuzz_seconds"
fi
