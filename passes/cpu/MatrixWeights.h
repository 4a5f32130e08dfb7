//===- MatrixWeights.h - the checkpoint's matrices in a module -*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The passes that change how the CPU target holds the checkpoint's matrices
// in memory (glint-narrow-weights: 16 bits; glint-vectorize-matmul: prepared
// panels) find them the same way: the rank-2 `ml_program.global`s with an
// `#ml_program.extern` value (bound by name when the model is loaded), each
// with every load of it, and retype a global together with its value.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_MATRIXWEIGHTS_H
#define GLINT_PASSES_CPU_MATRIXWEIGHTS_H

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::glint {

/// A rank-2 weight bound from the checkpoint and its loads.
struct MatrixWeight {
  ml_program::GlobalOp global;
  RankedTensorType type;
  SmallVector<ml_program::GlobalLoadConstOp> loads;

  /// Gives the global (and its extern value) `newType`; the loads are the
  /// caller's to retype or replace.
  void setGlobalType(RankedTensorType newType) {
    global.setType(newType);
    global.setValueAttr(
        ml_program::ExternAttr::get(global.getContext(), newType));
  }
};

/// The matrix weights that `module` loads, in the order of their first
/// loads.
inline SmallVector<MatrixWeight> matrixWeights(ModuleOp module) {
  llvm::MapVector<StringRef, SmallVector<ml_program::GlobalLoadConstOp>> loads;
  module.walk([&](ml_program::GlobalLoadConstOp load) {
    loads[load.getGlobal().getLeafReference().getValue()].push_back(load);
  });
  SymbolTable symbols(module);
  SmallVector<MatrixWeight> weights;
  for (auto &[name, globalLoads] : loads) {
    auto global = symbols.lookup<ml_program::GlobalOp>(name);
    if (!global ||
        !isa_and_nonnull<ml_program::ExternAttr>(global.getValueAttr()))
      continue;
    auto type = dyn_cast<RankedTensorType>(global.getType());
    if (type && type.getRank() == 2)
      weights.push_back({global, type, std::move(globalLoads)});
  }
  return weights;
}

} // namespace mlir::glint

#endif // GLINT_PASSES_CPU_MATRIXWEIGHTS_H
