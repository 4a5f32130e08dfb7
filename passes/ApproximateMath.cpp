//===- ApproximateMath.cpp - glint-approximate-math -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "glint-approximate-math"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTAPPROXIMATEMATH
#include "passes/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {
struct ApproximateMathPass
    : public glint::impl::GlintApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Every function MLIR approximates; f16/bf16 are widened to f32 first.
    auto all = [](StringRef) { return true; };
    populateMathF32ExpansionPatterns(patterns, all);
    populateMathPolynomialApproximationPatterns(patterns, all);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
