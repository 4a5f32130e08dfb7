//===- ModelInfo.h - the interface of a compiled model ----------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What glint-compile records in every compiled model (as the JSON string
// `glint_model_info`) and what the runtime reads back to call it: the entry
// point, its inputs, the weights it expects by name, and its results.
//
// The entry point is `void glint_forward(void **args)`: args[0] points to
// the result's memref descriptor (filled by the callee; its buffer is
// malloc'ed and owned by the caller), then one pointer per input and per
// weight, in the order listed, to a strided memref descriptor
// {allocated, aligned, offset, sizes[rank], strides[rank]}.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_MODELINFO_H
#define GLINT_RUNTIME_MODELINFO_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::glint::runtime {

/// One tensor of the interface. Dynamic dims are -1.
struct TensorSpec {
  std::string name;
  /// "f32", "f64", "i64" or "i32".
  std::string dtype;
  std::vector<int64_t> shape;
  /// For token-id inputs: every value must lie in [0, limit) (the
  /// vocabulary); 0 when unchecked. Compiled code does not bounds-check, so
  /// the runtime does.
  int64_t limit = 0;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
};

struct ModelInfo {
  /// Format version of this record.
  int64_t version = 1;
  std::string entry = "glint_forward";
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> weights;
  std::vector<TensorSpec> results;
};

llvm::json::Value toJSON(const ModelInfo &info);
/// Parses and validates a record; errors say what is missing or malformed.
llvm::Expected<ModelInfo> parseModelInfo(llvm::StringRef json);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_MODELINFO_H
