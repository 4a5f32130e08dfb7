//===- FuzzSafetensors.cpp - fuzzes the safetensors and index loader ------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The first byte chooses what the rest is: even, a `.safetensors` file;
// odd, a `model.safetensors.index.json` beside two valid shards. A
// checkpoint that opens has every tensor loaded as float, double and (for
// integer tensors) int64, which reads every byte the header claims.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "runtime/io/Safetensors.h"

#include <vector>

using namespace mlir::glint::runtime;

/// Two shards an index may name: `a.safetensors` holds `x` and `y`,
/// `b.safetensors` holds `z`.
static void writeShards() {
  static bool written = false;
  if (written)
    return;
  written = true;
  const std::string &dir = glint_fuzz::scratchDirectory();
  std::vector<float> values = {1.0f, -2.0f, 0.5f, 3.0f, 4.0f, -1.0f};
  auto write = [&](const char *name, std::vector<F32Tensor> tensors) {
    if (llvm::Error err = writeSafetensors(dir + "/" + name, tensors)) {
      llvm::errs() << llvm::toString(std::move(err)) << "\n";
      std::abort();
    }
  };
  write("a.safetensors", {{"x", {2, 2}, llvm::ArrayRef(values).take_front(4)},
                          {"y", {2}, llvm::ArrayRef(values).take_back(2)}});
  write("b.safetensors", {{"z", {3}, llvm::ArrayRef(values).take_front(3)}});
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  bool index = data[0] & 1;
  llvm::StringRef bytes = glint_fuzz::asText(data + 1, size - 1);
  std::string path;
  if (index) {
    writeShards();
    path = glint_fuzz::writeScratch("model.safetensors.index.json", bytes);
  } else {
    path = glint_fuzz::writeScratch("model.safetensors", bytes);
  }
  auto checkpoint = Checkpoint::open(path);
  if (!checkpoint) {
    llvm::consumeError(checkpoint.takeError());
    return 0;
  }
  for (const std::string &name : (*checkpoint)->names()) {
    const TensorInfo *info = (*checkpoint)->find(name);
    // Bounded by the input size: the header was checked against the file.
    if (!info || info->numElements() > (1 << 20))
      continue;
    glint_fuzz::ignore((*checkpoint)->loadF32(name));
    glint_fuzz::ignore((*checkpoint)->loadF64(name, info->shape));
    glint_fuzz::ignore((*checkpoint)->loadI64(name));
  }
  return 0;
}
