#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on a GPU machine that has no
# LLVM, no MLIR and no network: run here, on a development machine with the
# glint build and the CUDA toolkit (for cubins), then carry build-gpu/ with
# the working tree.
#
#   scripts/gpu-check/prepare.sh [build-dir]     (default: build)
#
# build-gpu/ then holds (about 20 MB):
#   bin/glint-run        glint-run linked with LLVM's Support library
#                        statically (the GPU machine has no libLLVM)
#   models/<case>.so     every reference fixture compiled --target=cuda
#                        (sm_90 cubin + PTX), with the step entry where the
#                        model can generate; scan1.so (scripts/gpu-check/
#                        scan1.mlir) and mamba-130m.so (Mamba-130m's shapes)
#   models/<case>.chunk4.so  the recurrent families again with chunks of 4
#                        steps (--gpu-time-chunk=4), so that the fixtures'
#                        short sequences run the time-parallel kernels
#   models/scan1.chunkT.so, models/*.sequential.so  the scan with other
#                        chunk sizes, and without chunks (one thread per
#                        channel for the whole sequence), to compare
#   expected/            what the CPU computes for the same runs: the
#                        greedy continuations, and glint's CPU prefill time
#                        of the mamba-130m model at L = 2048 (glint-bench,
#                        one thread and all cores)
#   weights/*.json       the names and shapes of the weights the GPU machine
#                        fills with random values (safetensors headers)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=$root/build-gpu
bin=$build/bin
# GLINT_KEEP_CPU_TIMES=1 keeps the CPU timings of the previous run (they
# take minutes and do not change with the GPU code).
kept_cpu=$(mktemp)
if [ "${GLINT_KEEP_CPU_TIMES:-0}" = 1 ] && [ -s "$out/expected/mamba-130m.cpu.jsonl" ]; then
  cp "$out/expected/mamba-130m.cpu.jsonl" "$kept_cpu"
fi
rm -rf "$out"
mkdir -p "$out"/{bin,models,expected,weights,obj}

# 1. The runner, without libLLVM.so: the runtime's sources and glint-run's
#    main, with LLVM's Support and Demangle archives and libstdc++ linked in.
#    glibc's arc4random (2.36) is replaced so that glibc 2.35 suffices.
cat > "$out/obj/shim.c" <<'EOF'
#include <stdint.h>
#include <sys/random.h>
uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != sizeof value) {
  }
  return value;
}
EOF
cc -c -O2 "$out/obj/shim.c" -o "$out/obj/shim.o"
#    Tokenizers: vocab.json and RWKV vocabularies only (no PCRE2, ICU or
#    SentencePiece there); pictures as .npy only (no libpng or libjpeg).
for src in tools/glint-run/glint-run.cpp tools/glint-run/NoInterpreter.cpp \
    runtime/host/CompiledModel.cpp runtime/host/Generate.cpp \
    runtime/host/RunSupport.cpp runtime/io/AtomicFile.cpp \
    runtime/io/InputLimits.cpp runtime/io/ModelInfo.cpp runtime/io/Npy.cpp \
    runtime/io/Safetensors.cpp runtime/text/Tokenizer.cpp \
    scripts/gpu-check/no-subword-tokenizers.cpp \
    explain/PictureFiles.cpp scripts/gpu-check/no-pictures.cpp; do
  c++ -c -O2 -std=gnu++17 -fno-exceptions -w -I"$root" -I"$build" \
    -isystem /usr/lib/llvm-22/include "$root/$src" \
    -o "$out/obj/$(basename "$src" .cpp).o" &
done
wait
c++ "$out"/obj/*.o -o "$out/bin/glint-run" \
  /usr/lib/llvm-22/lib/libLLVMSupport.a /usr/lib/llvm-22/lib/libLLVMDemangle.a \
  -static-libstdc++ -static-libgcc -ldl -lpthread
rm -rf "$out/obj"
echo "runner: $(objdump -T "$out/bin/glint-run" | grep -o 'GLIBC_[0-9.]*' |
  sort -uV | tail -1) at most"

# 2. Every fixture family for the GPU, and its greedy continuation on the
#    CPU (the GPU must choose the same tokens).
for dir in "$root"/test/fixtures/*/; do
  case=$(basename "$dir")
  [ -f "$dir/config.json" ] || continue
  "$bin/glint-import" "$dir" -o "$out/models/$case.mlir"
  "$bin/glint-compile" "$out/models/$case.mlir" --target=cuda \
    --gpu-arch=sm_90 -o "$out/models/$case.so"
  if [ -f "$dir/input_ids_0.npy" ]; then
    "$bin/glint-compile" "$out/models/$case.mlir" -o "$out/models/$case.cpu.so"
    "$bin/glint-run" "$out/models/$case.cpu.so" --weights "$dir" \
      --tokens 1,2,3,4,5 --generate 8 > "$out/expected/$case.generate.txt"
    rm "$out/models/$case.cpu.so"
  fi
  case $case in
    mamba_conv3|mamba2|rwkv6|recurrentgemma|vim)
      "$bin/glint-compile" "$out/models/$case.mlir" --target=cuda \
        --gpu-arch=sm_90 --gpu-time-chunk=4 -o "$out/models/$case.chunk4.so" ;;
  esac
  rm "$out/models/$case.mlir"
  echo "compiled $case"
done

# 3. The Mamba-1 scan at D = 4096, N = 16.
"$bin/glint-compile" "$root/scripts/gpu-check/scan1.mlir" --target=cuda \
  -o "$out/models/scan1.so"
for chunk in 0 32 128; do
  name=scan1.chunk$chunk
  [ "$chunk" = 0 ] && name=scan1.sequential
  "$bin/glint-compile" "$root/scripts/gpu-check/scan1.mlir" --target=cuda \
    --gpu-time-chunk=$chunk -o "$out/models/$name.so"
done
cat > "$out/weights/scan1.json" <<'EOF'
{"u.weight": [256, 4096], "dt.weight": [256, 4096], "b.weight": [256, 16],
 "c.weight": [256, 16], "A": [4096, 16], "D": [4096]}
EOF

# 4. A Mamba-130m-shaped model: glint-bench writes its random checkpoint and
#    measures glint's CPU prefill at L = 2048 here; the GPU machine makes
#    random weights of the same names and shapes.
m130=$(mktemp -d)
trap 'rm -rf "$m130"' EXIT
if [ -s "$kept_cpu" ]; then
  cp "$kept_cpu" "$out/expected/mamba-130m.cpu.jsonl"
  "$bin/glint-bench" --cases=mamba-130m --L=64 --repetitions=1 \
    --mamba-130m-dir="$m130" > /dev/null  # writes the checkpoint
else
  for threads in 1 $(nproc); do
    "$bin/glint-bench" --cases=mamba-130m --L=2048 --repetitions=2 \
      --threads="$threads" --mamba-130m-dir="$m130"
  done > "$out/expected/mamba-130m.cpu.jsonl"
fi
rm -f "$kept_cpu"
cp "$m130/config.json" "$out/weights/mamba-130m.config.json"
"$bin/glint-import" "$m130" -o "$m130/model.mlir"
"$bin/glint-compile" "$m130/model.mlir" --target=cuda -o "$out/models/mamba-130m.so"
"$bin/glint-compile" "$m130/model.mlir" --target=cuda --gpu-time-chunk=0 \
  -o "$out/models/mamba-130m.sequential.so"
# The safetensors header: names, dtypes, shapes.
python3 - "$m130/model.safetensors" "$out/weights/mamba-130m.json" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
json.dump({k: v["shape"] for k, v in header.items()}, open(sys.argv[2], "w"))
EOF
du -sh "$out"
