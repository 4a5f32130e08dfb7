//===- InlineMixers.cpp - glint-inline-mixers -----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "glint-inline-mixers"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTINLINEMIXERS
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

void glint::inlineMixers(Operation *root) {
  SmallVector<MixerOp> mixers;
  // Post-order: nested mixers are inlined before the ones around them.
  root->walk([&](MixerOp op) { mixers.push_back(op); });
  IRRewriter rewriter(root->getContext());
  for (MixerOp mixer : mixers) {
    Value yielded = mixer.getYield().getValue();
    // The block argument dies with the block: an identity body yields the
    // mixer's input.
    if (yielded == mixer.getValueArgument())
      yielded = mixer.getInput();
    rewriter.eraseOp(mixer.getYield());
    rewriter.inlineBlockBefore(&mixer.getBody().front(), mixer,
                               ValueRange{mixer.getInput()});
    rewriter.replaceOp(mixer, yielded);
  }
}

namespace {
struct InlineMixersPass
    : public glint::impl::GlintInlineMixersBase<InlineMixersPass> {
  void runOnOperation() override { inlineMixers(getOperation()); }
};
} // namespace
