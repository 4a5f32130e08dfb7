#!/usr/bin/env bash
# Builds glint's libFuzzer harnesses (test/fuzz) with clang and
# -fsanitize=fuzzer,address,undefined in the instrumented tree (build-fuzz/,
# or $GLINT_FUZZ_BUILD_DIR; shared with scripts/test.sh --sanitize), and runs
# each for a given time, printing the executions and crashes per harness.
#
#   scripts/fuzz.sh [--time SECONDS] [--runs N] [--jobs N] [--build-only]
#                   [harness...]
#
# --runs N stops each harness after N executions (e.g. 1000000, the count
# the hardening issue aims at), with --time still the cap. The last column
# is the time each harness took.
#
# Harnesses: fuzz-safetensors fuzz-npy fuzz-model-info fuzz-vocab fuzz-image
# fuzz-import fuzz-ir fuzz-lower (all by default). Seeds come from the repository's own
# files (test/fuzz/make-corpus.py); what the fuzzer finds accumulates in
# build-fuzz/corpus/<harness>/, crashing inputs in
# build-fuzz/crashes/<harness>-* (slow inputs there too, reported but not
# failures). Exits 1 if any harness crashed.
set -euo pipefail

GLINT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
runs=
jobs=
build_only=0
harnesses=()
while (($#)); do
  case "$1" in
    --time) seconds=$2; shift 2 ;;
    --time=*) seconds=${1#--time=}; shift ;;
    --runs) runs=$2; shift 2 ;;
    --runs=*) runs=${1#--runs=}; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
all=(fuzz-safetensors fuzz-npy fuzz-model-info fuzz-vocab fuzz-image
     fuzz-import fuzz-ir fuzz-lower)
((${#harnesses[@]})) || harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  [[ " ${all[*]} " == *" $h "* ]] ||
    { echo "fuzz.sh: no harness '$h' (have: ${all[*]})" >&2; exit 2; }
done

# Debian's clang-22 and its sanitizer runtimes when missing, and the
# instrumented tree (shared with scripts/test.sh --sanitize) configured once.
GLINT_SANITIZE=1 GLINT_CONFIGURE_ONLY=1 source "$GLINT_ROOT/scripts/bootstrap.sh"
BUILD=$GLINT_BUILD

targets=()
for h in "${harnesses[@]}"; do targets+=("$h"); done
cmake --build "$BUILD" --target "${targets[@]}" ${jobs:+-j "$jobs"}
((build_only)) && exit 0

python3 "$GLINT_ROOT/test/fuzz/make-corpus.py" "$GLINT_ROOT" "$BUILD/corpus/seeds"
mkdir -p "$BUILD/crashes" "$BUILD/logs"
dict_of() {
  case "$1" in
    fuzz-ir|fuzz-lower) echo mlir ;;
    fuzz-npy) echo npy ;;
    fuzz-image) echo image ;;
    *) echo json ;;
  esac
}
maxlen_of() {
  case "$1" in
    fuzz-ir|fuzz-lower|fuzz-safetensors) echo 16384 ;;
    fuzz-vocab) echo 131072 ;;
    *) echo 8192 ;;
  esac
}

failed=0
printf '%-18s %12s %8s %s\n' harness executions crashes "time (s)"
SECONDS=0
for h in "${harnesses[@]}"; do
  found="$BUILD/corpus/$h"
  mkdir -p "$found"
  log="$BUILD/logs/$h.log"
  rm -f "$BUILD/crashes/$h-"*
  rc=0
  # One input may take long only in the lowering harness (a whole model
  # through the CPU pipeline); a minute for one is a hang.
  "$BUILD/fuzz/$h" -max_total_time="$seconds" ${runs:+-runs="$runs"} \
    -print_final_stats=1 \
    -dict="$GLINT_ROOT/test/fuzz/dicts/$(dict_of "$h").dict" \
    -max_len="$(maxlen_of "$h")" -timeout=60 -rss_limit_mb=4096 \
    -artifact_prefix="$BUILD/crashes/$h-" \
    "$found" "$BUILD/corpus/seeds/$h" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" |
          tail -1 | grep -o '[0-9]*$' || true)
  # Crashes, leaks, timeouts and out-of-memory inputs fail the run; a slow
  # unit (over 10 s, libFuzzer's -report_slow_units) is only reported.
  crashes=$(find "$BUILD/crashes" \( -name "$h-crash-*" -o -name "$h-leak-*" \
            -o -name "$h-timeout-*" -o -name "$h-oom-*" \) | wc -l)
  slow=$(find "$BUILD/crashes" -name "$h-slow-unit-*" | wc -l)
  if ((rc != 0)) && ((crashes == 0)); then crashes=1; fi
  printf '%-18s %12s %8s %s\n' "$h" "${execs:-?}" "$crashes" "$SECONDS"
  SECONDS=0
  if ((crashes)); then
    failed=1
    grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error|deadly signal' "$log" | sed 's/^/    /' || true
    echo "    log: $log" >&2
  fi
  if ((slow)); then
    echo "    $slow slow input(s) (over 10 s): $BUILD/crashes/$h-slow-unit-*"
  fi
done
exit $failed
