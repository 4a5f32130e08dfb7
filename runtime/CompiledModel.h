//===- CompiledModel.h - loading and running compiled models ----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_COMPILEDMODEL_H
#define GLINT_RUNTIME_COMPILEDMODEL_H

#include "runtime/ModelInfo.h"

#include "llvm/Support/Error.h"

#include <memory>
#include <vector>

namespace mlir::glint::runtime {

class Checkpoint;

/// A dense row-major host array in one of the interface dtypes.
struct HostArray {
  std::vector<int64_t> shape;
  std::string dtype; // "f32", "f64", "i64" or "i32"
  std::vector<char> bytes;

  int64_t numElements() const;
  template <typename T> T *data() { return reinterpret_cast<T *>(bytes.data()); }
  template <typename T> const T *data() const {
    return reinterpret_cast<const T *>(bytes.data());
  }
  static HostArray make(std::vector<int64_t> shape, std::string dtype);
};

/// A shared library made by `glint-compile -emit=lib`, its weights bound
/// from a checkpoint by name.
class CompiledModel {
public:
  /// Opens the library and reads its `glint_model_info`.
  static llvm::Expected<std::unique_ptr<CompiledModel>>
  load(llvm::StringRef path);
  /// A model linked into this program (a standalone executable made by
  /// `glint-compile -emit=exe`): its entry point and record.
  static llvm::Expected<std::unique_ptr<CompiledModel>>
  fromSymbols(void (*entry)(void **), const char *record);
  ~CompiledModel();

  const ModelInfo &info() const { return modelInfo; }

  /// Loads every weight the model names from `checkpoint` (converted to the
  /// model's dtype) and checks its shape: a missing or mis-shaped weight, or
  /// a checkpoint of another model, is an error naming the weight.
  llvm::Error bindWeights(const Checkpoint &checkpoint);

  /// Runs the model. The inputs must match the interface (rank, static
  /// dims, dtype, token ids inside the vocabulary); errors say which.
  llvm::Expected<HostArray> run(llvm::ArrayRef<HostArray> inputs);

private:
  CompiledModel() = default;

  void *handle = nullptr;
  void (*entry)(void **) = nullptr;
  ModelInfo modelInfo;
  std::string path;
  std::vector<HostArray> weights;
};

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_COMPILEDMODEL_H
