#!/usr/bin/env bash
# The main job: import a bundled tiny trained model, compile it for this CPU,
# run it on sentences whose answer is planted in one word (the reference
# evaluator runs the same IR to show that the compiled model agrees), then
# explain one held-out input through the model's implicit attention and
# write an HTML report with heat maps: the planted word should light up.
#   scripts/demo.sh [models/<text model>]     (default: models/mamba-keyword)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

bin="$GLINT_BUILD/bin"
model=${1:-$GLINT_ROOT/models/mamba-keyword}
name=$(basename "$model")
out="$GLINT_ROOT/out"
mkdir -p "$out"

echo
echo "== Verifying the hand-written example models (examples/)"
for example in "$GLINT_ROOT"/examples/*.mlir; do
  "$bin/glint-opt" "$example" -o /dev/null
done
echo "   $(ls "$GLINT_ROOT"/examples/*.mlir | wc -l) models parse, verify and round-trip"

echo
echo "== Importing $name and compiling it for this CPU"
"$bin/glint-import" "$model" -o "$out/$name.mlir"
"$bin/glint-opt" "$out/$name.mlir" -glint-model-summary -o /dev/null |
  sed 's/^/   /'
"$bin/glint-compile" "$out/$name.mlir" -o "$out/$name.so"
echo "   wrote out/$name.mlir (glint IR) and out/$name.so (compiled model)"

echo
echo "== The task: a sentence of filler words with one planted key word; the"
echo "   model answers its class at '?' (positive, negative, animal, colour)"
sentences=(
  "<bos> they went to the river in the morning and saw a tiger near the old house ?"
  "<bos> the new paper on the table was awful said some people after the evening ?"
  "<bos> we took the road to the city and the water was azure under the window ?"
)
for sentence in "${sentences[@]}"; do
  echo
  echo "   $sentence"
  "$bin/glint-run" "$out/$name.so" --weights "$model" \
    --vocab "$model/vocab.json" --text "$sentence" --top 2 |
    sed -n 's/^sequence 0: /   compiled:    /p'
  "$bin/glint-run" --interpret "$out/$name.mlir" --weights "$model" \
    --vocab "$model/vocab.json" --text "$sentence" --top 2 |
    sed -n 's/^sequence 0: /   interpreted: /p'
done
echo
echo "(Scores are logits at '?'. 'compiled' runs out/$name.so; 'interpreted'"
echo " runs the same IR in double precision with the reference evaluator.)"

echo
echo "== Explaining held-out example 0: which words does the answer depend on?"
rm -rf "$out/explain-$name"
"$bin/glint-explain" "$model" --heldout 0 -o "$out/explain-$name" |
  sed 's/^/   /'
echo
echo "Open out/explain-$name/report.html in a browser: every word is coloured by"
echo "its relevance to the answer at '?' (attention rollout over the layers'"
echo "implicit attention, unified formulation); the planted key word is"
echo "underlined; the explained position is outlined with its answer. Maps with"
echo "token labels: out/explain-$name/rollout.png (the answer's row as bars under"
echo "it), layers.png (every layer), layer*.png and .npy."
