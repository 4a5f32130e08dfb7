//===- ReferenceEvaluator.h - double-precision glint oracle -----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Executes glint model IR directly, op by op, in double precision with naive
// loops written straight from the math. It is deliberately simple: every
// lowering of glint is tested against it, so it must be obviously correct
// rather than fast.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_REFERENCE_REFERENCEEVALUATOR_H
#define GLINT_REFERENCE_REFERENCEEVALUATOR_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::glint::runtime {
class Checkpoint;
struct RunArray;
} // namespace mlir::glint::runtime

namespace mlir::glint::reference {

/// A dense row-major array of doubles. Integer tensors (token ids) and
/// scalars (`index`, rank 0) use the same representation: every integer the
/// models use is exact in a double.
struct Array {
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<double> data;

  Array() = default;
  explicit Array(llvm::ArrayRef<int64_t> shape, double fill = 0.0);
  static Array scalar(double value) { return Array({}, value); }

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numElements() const { return static_cast<int64_t>(data.size()); }
  /// Row-major strides of `shape`.
  llvm::SmallVector<int64_t, 4> strides() const;
};

/// Product of `shape`, or an error if it overflows or a dim is negative.
llvm::Expected<int64_t> numElementsOf(llvm::ArrayRef<int64_t> shape);

/// Supplies the weight bound to an `ml_program.global` by its name, with the
/// shape the IR declares; an error names the weight.
using WeightProvider = std::function<llvm::Expected<Array>(
    llvm::StringRef name, llvm::ArrayRef<int64_t> shape)>;

/// Supplies weights from a checkpoint (any stored float dtype, converted
/// exactly to double); errors name the file and the tensor. The checkpoint
/// must outlive the provider.
WeightProvider weightsFrom(const mlir::glint::runtime::Checkpoint &checkpoint);

/// Supplies no weights, for modules whose arrays are all arguments: a
/// weight asked for is an error naming it ("no weight NAME").
WeightProvider noWeights();

/// The runtime's array (token ids or floats, held as doubles) as an input
/// of the evaluator.
Array fromRunArray(const runtime::RunArray &array);

/// An array of the evaluator as the runtime's; `integer` says whether it
/// holds token ids.
runtime::RunArray toRunArray(Array array, bool integer);

/// Receives every value the IR marks with the discardable attribute
/// `glint.trace = "<name>"` (e.g. each layer's hidden state), as computed.
using TraceCallback =
    std::function<void(llvm::StringRef name, const Array &value)>;

/// Told how far a run has come: \p done of the \p total ops of the called
/// function's body (its terminator not counted), once with 0 before the
/// first and then after each (a layer's whole mixer is one op). The
/// evaluator prints nothing itself; a tool draws a bar from this.
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

class ReferenceEvaluator {
public:
  ReferenceEvaluator(mlir::ModuleOp module, WeightProvider weights);

  /// Reports the progress of every later run() to \p callback (none by
  /// default).
  void setProgress(ProgressCallback callback) {
    progress = std::move(callback);
  }

  /// Runs the function `name` on `arguments` and returns its results. Every
  /// error names the op (with its location) and the problem: a shape that
  /// disagrees at run time, a token id outside the vocabulary, a weight that
  /// is missing or mis-shaped, a non-finite value produced from finite
  /// inputs, or an op the evaluator does not know.
  llvm::Expected<std::vector<Array>> run(llvm::StringRef name,
                                         llvm::ArrayRef<Array> arguments,
                                         TraceCallback trace = nullptr);

private:
  mlir::ModuleOp module;
  WeightProvider weights;
  ProgressCallback progress;
};

} // namespace mlir::glint::reference

#endif // GLINT_REFERENCE_REFERENCEEVALUATOR_H
