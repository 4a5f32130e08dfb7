//===- FuzzNpy.cpp - fuzzes the .npy reader -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Reads the input as a .npy file with each of the three readers, and reads
// back what writeNpy makes of an accepted array.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "runtime/io/Npy.h"

#include <cstdlib>

using namespace mlir::glint::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path =
      glint_fuzz::writeScratch("input.npy", glint_fuzz::asText(data, size));
  glint_fuzz::ignore(readNpyF32(path));
  glint_fuzz::ignore(readNpyI64(path));
  auto array = readNpyF64(path);
  if (!array) {
    llvm::consumeError(array.takeError());
    return 0;
  }
  // An accepted array must survive a round trip unchanged.
  std::string copy = glint_fuzz::scratchDirectory() + "/copy.npy";
  if (llvm::Error err = writeNpy(copy, array->shape, array->data)) {
    llvm::errs() << "writeNpy refused an array readNpyF64 accepted: "
                 << llvm::toString(std::move(err)) << "\n";
    std::abort();
  }
  auto again = readNpyF64(copy);
  if (!again || again->shape != array->shape ||
      again->data.size() != array->data.size()) {
    llvm::errs() << "a written .npy does not read back\n";
    std::abort();
  }
  return 0;
}
