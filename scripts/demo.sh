#!/usr/bin/env bash
# The main job, for now: verify every bundled example model, print its layer
# structure, and write the verified and the mixer-inlined IR of one model.
#   scripts/demo.sh [examples/<model>.mlir]      (default: examples/mamba1.mlir)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

opt="$GLINT_BUILD/bin/glint-opt"
model=${1:-$GLINT_ROOT/examples/mamba1.mlir}
out="$GLINT_ROOT/out"
mkdir -p "$out"

echo
echo "== Verifying the bundled example models"
for example in "$GLINT_ROOT"/examples/*.mlir; do
  "$opt" "$example" -o /dev/null
  echo "  ok  examples/$(basename "$example")"
done

name=$(basename "$model" .mlir)
echo
echo "== Layer structure of $name"
"$opt" "$model" -glint-model-summary -o "$out/$name.verified.mlir"
"$opt" "$model" -glint-inline-mixers -canonicalize -cse \
  -o "$out/$name.inlined.mlir"

echo
echo "== The recurrence of $name, as verified"
grep -m1 -A0 "glint.recurrence" "$out/$name.verified.mlir" | sed 's/^ *//' |
  fold -w 100 | sed 's/^/  /'
echo
echo "Wrote out/$name.verified.mlir (verified IR) and out/$name.inlined.mlir"
echo "(after glint-inline-mixers, the first step of the scan pipeline)."
