#!/usr/bin/env bash
# The on-device check of the CUDA target, for a GPU machine without LLVM,
# MLIR or network (see ../shared/GPU.md for the one it was written for).
#
#   scripts/gpu-check/prepare.sh        # here: builds build-gpu/ (runner,
#                                       # models compiled --target=cuda,
#                                       # CPU expectations)
#   scripts/gpu-check.sh [OUT]          # there, from the repository root
#
# Prints, and writes to OUT/gpu-check.txt (default: ./gpu-check-out):
#   1. every reference fixture compiled for the GPU against the fixture's
#      float64 logits (PASS at relative error <= 1e-4);
#   2. greedy generation on the GPU (prompt, then one token per step with
#      the state carried) against the CPU's tokens;
#   3. timings: the Mamba-1 scan kernel at B=1, D=4096, N=16, L=8192 (from
#      the runtime's per-kernel profile, GLINT_CUDA_PROFILE) against the
#      bytes it must move and the measured copy bandwidth; the whole
#      Mamba-130m-shaped model at L=2048 against glint's CPU path (measured
#      by prepare.sh) and PyTorch eager.
# Needs: an NVIDIA driver, python3 with numpy, torch, safetensors (and
# transformers for the PyTorch model).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gpu=$root/build-gpu
out=${1:-$root/gpu-check-out}
mkdir -p "$out"
run=$gpu/bin/glint-run
check="python3 $root/scripts/gpu-check/check.py"
exec > >(tee "$out/gpu-check.txt") 2>&1
[ -x "$run" ] || { echo "no $run: run scripts/gpu-check/prepare.sh first"; exit 1; }
failures=0
# cuBLAS for the matrix products: the CUDA toolkit's, or PyTorch's wheel's.
blas_dirs=/usr/local/cuda/lib64:$(python3 -c 'import os, nvidia.cublas as c;
print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH=$blas_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
ldd --version | head -1

echo "== 1. fixtures: compiled for the GPU vs float64 reference"
for so in "$gpu"/models/*.so; do
  case=$(basename "$so" .so)
  dir=$root/test/fixtures/$case
  [ -d "$dir" ] || continue
  for i in 0 1; do
    input=$dir/input_ids_$i.npy
    [ -f "$input" ] || input=$dir/pixel_values_$i.npy
    [ -f "$input" ] || continue
    if "$run" "$so" --weights "$dir" --input "$input" -o "$out/$case.$i.npy" \
        > "$out/$case.$i.log" 2>&1; then
      $check compare "$out/$case.$i.npy" "$dir/logits_float64_$i.npy" \
        "$case case $i" || failures=$((failures + 1))
    else
      echo "$case case $i: FAIL"; cat "$out/$case.$i.log"; failures=$((failures + 1))
    fi
  done
done

echo "== 1b. the same without cuBLAS (every matrix product as a kernel)"
for case in mamba_conv3 rwkv6; do
  dir=$root/test/fixtures/$case
  if GLINT_CUDA_BLAS=0 "$run" "$gpu/models/$case.so" --weights "$dir" \
      --input "$dir/input_ids_0.npy" -o "$out/$case.noblas.npy" \
      > "$out/$case.noblas.log" 2>&1; then
    $check compare "$out/$case.noblas.npy" "$dir/logits_float64_0.npy" \
      "$case no cuBLAS" || failures=$((failures + 1))
  else
    echo "$case no cuBLAS: FAIL"; cat "$out/$case.noblas.log"; failures=$((failures + 1))
  fi
done

echo "== 1c. the time-parallel scan kernels (chunks of 4 steps) vs float64"
for so in "$gpu"/models/*.chunk4.so; do
  case=$(basename "$so" .chunk4.so)
  dir=$root/test/fixtures/$case
  input=$dir/input_ids_0.npy
  [ -f "$input" ] || input=$dir/pixel_values_0.npy
  if "$run" "$so" --weights "$dir" --input "$input" -o "$out/$case.chunk4.npy" \
      > "$out/$case.chunk4.log" 2>&1; then
    $check compare "$out/$case.chunk4.npy" "$dir/logits_float64_0.npy" \
      "$case chunks of 4" || failures=$((failures + 1))
  else
    echo "$case chunks of 4: FAIL"; cat "$out/$case.chunk4.log"
    failures=$((failures + 1))
  fi
done

echo "== 2. generation on the GPU (8 tokens after 1,2,3,4,5) vs the CPU"
for expected in "$gpu"/expected/*.generate.txt; do
  case=$(basename "$expected" .generate.txt)
  "$run" "$gpu/models/$case.so" --weights "$root/test/fixtures/$case" \
    --tokens 1,2,3,4,5 --generate 8 > "$out/$case.generate.txt" \
    2> "$out/$case.generate.log"
  if diff -q "$expected" "$out/$case.generate.txt" > /dev/null; then
    echo "$case: PASS $(head -1 "$out/$case.generate.txt")"
    cat "$out/$case.generate.log"
  else
    echo "$case: FAIL"; diff "$expected" "$out/$case.generate.txt"
    cat "$out/$case.generate.log"; failures=$((failures + 1))
  fi
done

echo "== 3a. Mamba-1 scan, B=1 D=4096 N=16 L=8192"
$check weights "$gpu/weights/scan1.json" "$out/scan1.safetensors"
$check ids 8192 "$out/ids8192.npy"
# The time-parallel form (chunks of 64 steps, and 32, 128), and the
# sequential one (a thread per channel) whose output the others must match.
for variant in sequential "" chunk32 chunk128; do
  name=scan1${variant:+.$variant}
  GLINT_CUDA_PROFILE=1 "$run" "$gpu/models/$name.so" --weights \
    "$out/scan1.safetensors" --input "$out/ids8192.npy" --repeat 3 \
    -o "$out/$name.npy" > "$out/$name.log" 2> "$out/$name.profile.jsonl" ||
    failures=$((failures + 1))
  echo "-- $name"; cat "$out/$name.log"; head -6 "$out/$name.profile.jsonl"
  if [ -n "$variant" ]; then
    $check compare "$out/$name.npy" "$out/scan1.sequential.npy" \
      "$name vs sequential" || failures=$((failures + 1))
  fi
done

echo "== 3b. Mamba-130m shapes, prefill L=2048"
mkdir -p "$out/m130"
cp "$gpu/weights/mamba-130m.config.json" "$out/m130/config.json"
$check weights "$gpu/weights/mamba-130m.json" "$out/m130/model.safetensors"
$check ids 2048 "$out/ids2048.npy"
GLINT_CUDA_PROFILE=1 "$run" "$gpu/models/mamba-130m.so" --weights "$out/m130" \
  --input "$out/ids2048.npy" --repeat 3 -o "$out/m130.npy" > "$out/m130.log" \
  2> "$out/m130.profile.jsonl" || failures=$((failures + 1))
cat "$out/m130.log"
grep -v '^{' "$out/m130.profile.jsonl"
echo "slowest kernels:"; grep '^{' "$out/m130.profile.jsonl" | head -8
echo "-- without the time-parallel form"
GLINT_CUDA_PROFILE=1 "$run" "$gpu/models/mamba-130m.sequential.so" --weights \
  "$out/m130" --input "$out/ids2048.npy" --repeat 3 -o "$out/m130.seq.npy" \
  > "$out/m130.seq.log" 2> "$out/m130.seq.profile.jsonl" ||
  failures=$((failures + 1))
cat "$out/m130.seq.log"
grep -v '^{' "$out/m130.seq.profile.jsonl"
echo "slowest kernels:"; grep '^{' "$out/m130.seq.profile.jsonl" | head -4
$check compare "$out/m130.npy" "$out/m130.seq.npy" \
  "mamba-130m chunked vs sequential" || failures=$((failures + 1))
echo "== 3c. peers: PyTorch eager, copy bandwidth"
$check peers "$out/peers.json" || true

echo "== 4. table"
python3 "$root/scripts/gpu-check/table.py" "$out" \
  "$gpu/expected/mamba-130m.cpu.jsonl" || true

echo "== summary: $failures failure(s)"
exit $((failures > 0))
