#!/usr/bin/env bash
# glint against llama.cpp on one machine, in one run: generation (ms per
# token after a 64-token prompt, f32 and bf16 weights) and prefill (tokens
# per second at 512 and 2048 tokens) of the same random Mamba-130m-shaped
# checkpoint. Dev-time only (the README's "Generation (decode)" section).
#
#   scripts/bench/llama-compare.sh LLAMA_SRC WORK [THREADS] [ROUNDS]
#
# LLAMA_SRC: a llama.cpp source tree, e.g. the vendor/llama.cpp of the
# llama-cpp-python source distribution (`pip download --no-binary :all:
# --no-deps llama-cpp-python`, then unpack it). WORK: a folder outside the
# repository for llama.cpp's build, the checkpoint and its GGUF copies (made
# once, reused). THREADS: 1 (default) or more. ROUNDS: llama-bench, then
# glint-bench, repeated (default 2), with a last llama-bench after them.
# Needs cmake, a C++ compiler, and a Python with numpy (PYTHON, default
# python3) for the GGUF conversion; glint's build/bin/glint-bench must exist.
set -euo pipefail

if [ $# -lt 2 ]; then
  sed -n '2,17p' "$0"
  exit 2
fi
src=$(cd "$1" && pwd)
work=$(mkdir -p "$2" && cd "$2" && pwd)
threads=${3:-1}
rounds=${4:-2}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench="$here/build/bin/glint-bench"
[ -x "$bench" ] || { echo "build glint first: $bench is missing" >&2; exit 1; }

llama_bench="$work/llama-build/bin/llama-bench"
if [ ! -x "$llama_bench" ]; then
  cmake -S "$src" -B "$work/llama-build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$work/llama-build" --target llama-bench -j"$(nproc)" >/dev/null
fi

# The random checkpoint (glint-bench writes it, seeded) and its GGUF copies.
ckpt="$work/mamba-130m"
if [ ! -f "$ckpt/model.safetensors" ]; then
  "$bench" --cases=mamba-130m --mamba-130m-dir="$ckpt" --L=8 --repetitions=1 \
    >/dev/null
fi
for type in f32 bf16; do
  if [ ! -f "$work/mamba-130m-$type.gguf" ]; then
    "$python" "$here/scripts/bench/mamba-to-gguf.py" --gguf-py "$src/gguf-py" \
      --outtype "$type" "$ckpt" "$work/mamba-130m-$type.gguf.part"
    mv "$work/mamba-130m-$type.gguf.part" "$work/mamba-130m-$type.gguf"
  fi
done

lines="python3 $here/scripts/bench/compare-lines.py"

llama() { # generation and prefill, both weight types
  for type in f32 bf16; do
    "$llama_bench" -m "$work/mamba-130m-$type.gguf" -t "$threads" -r 3 \
      -p 0 -n 32 -d 64 -o jsonl 2>/dev/null
    "$llama_bench" -m "$work/mamba-130m-$type.gguf" -t "$threads" -r 3 \
      -p 512,2048 -n 0 -o jsonl 2>/dev/null
  done | $lines llama.cpp
}

glint() {
  {
    "$bench" --cases=mamba-130m --mamba-130m-dir="$ckpt" --decode \
      --weight-dtype=f32,bf16 --threads="$threads" --repetitions=5
    "$bench" --cases=mamba-130m --mamba-130m-dir="$ckpt" --L=512,2048 \
      --weight-dtype=f32,bf16 --threads="$threads" --repetitions=3
  } 2>/dev/null | $lines glint
}

echo "# $(date -u +%FT%TZ) threads=$threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "# glint $(git -C "$here" rev-parse --short HEAD), llama.cpp $(git -C "$src" rev-parse --short HEAD 2>/dev/null || basename "$(dirname "$(dirname "$src")")")"
for round in $(seq "$rounds"); do
  echo "## round $round"
  llama
  glint
done
echo "## after"
llama
