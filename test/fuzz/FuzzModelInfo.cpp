//===- FuzzModelInfo.cpp - fuzzes the compiled model's record -------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The JSON record a compiled library carries (its entries, inputs, states,
// attention maps), which glint-run reads from any .so it is given.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "runtime/io/ModelInfo.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  glint_fuzz::ignore(
      mlir::glint::runtime::parseModelInfo(glint_fuzz::asText(data, size)));
  return 0;
}
