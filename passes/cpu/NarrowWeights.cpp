//===- NarrowWeights.cpp - glint-narrow-weights ---------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// A generated token reads every weight once, so generation is bound by the
// bytes of the weights; nearly all of them are the matrices of the linear
// layers and the embedding table. This pass gives those matrices a 16-bit
// element type in the compiled model's interface (the weight arguments that
// glint-externalize-weights makes of the globals), so that they stay bf16
// or f16 in memory; the products widen each vector as they load it
// (glint-vectorize-matmul) and the embedding gather widens each element.
// Everything else stays f32: the small per-channel parameters would gain no
// bandwidth and lose precision.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/cpu/MatrixWeights.h"
#include "passes/cpu/Passes.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinOps.h"

#define DEBUG_TYPE "glint-narrow-weights"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTNARROWWEIGHTS
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// Whether `use` reads the weight in a way whose lowering widens it where it
/// is loaded: the weight of a dense (rank-2) glint.linear, or an embedding
/// table.
bool readsNarrowed(OpOperand &use) {
  Operation *user = use.getOwner();
  if (auto linear = dyn_cast<LinearOp>(user))
    return use.get() == linear.getWeight() &&
           linear.getInput() != linear.getWeight() &&
           linear.getWeight().getType().getRank() == 2;
  if (auto embedding = dyn_cast<EmbeddingOp>(user))
    return use.get() == embedding.getTable() &&
           embedding.getIds() != embedding.getTable();
  return false;
}

struct NarrowWeightsPass
    : public glint::impl::GlintNarrowWeightsBase<NarrowWeightsPass> {
  using GlintNarrowWeightsBase::GlintNarrowWeightsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    Type narrow;
    if (dtype == "bf16")
      narrow = BFloat16Type::get(context);
    else if (dtype == "f16")
      narrow = Float16Type::get(context);
    if (!narrow) {
      module.emitError() << "glint-narrow-weights: dtype '" << dtype
                         << "' is not bf16 or f16";
      return signalPassFailure();
    }

    for (MatrixWeight &weight : matrixWeights(module)) {
      if (!weight.type.getElementType().isF32())
        continue;
      bool narrowable =
          llvm::all_of(weight.loads, [](ml_program::GlobalLoadConstOp l) {
            return !l->use_empty() &&
                   llvm::all_of(l->getUses(), [](OpOperand &use) {
                     return readsNarrowed(use);
                   });
          });
      if (!narrowable)
        continue;
      auto narrowType = weight.type.clone(narrow);
      weight.setGlobalType(narrowType);
      for (ml_program::GlobalLoadConstOp load : weight.loads)
        load.getResult().setType(narrowType);
    }
  }
};

} // namespace
