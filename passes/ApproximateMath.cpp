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
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "glint-approximate-math"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTAPPROXIMATEMATH
#include "passes/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// exp(x) on f32 in 13 vector instructions, where MLIR's approximation
/// takes about 25: the exponential is most of a selective scan's work
/// (PERF.md), one per state entry and step.
///
///   x  = clamp(x, -126 ln 2, 127 ln 2)          (NaN passes through)
///   t  = x log2(e) + (1.5 * 2^23 + 127)         rounds n = round(x log2 e)
///                                               into t's low mantissa bits
///   n  = t - (1.5 * 2^23 + 127)                 (exact)
///   r  = x - n ln 2                             (Cody-Waite, two FMAs)
///   e^r ~ p(r), degree 5, |r| <= ln 2 / 2       (minimax for the relative
///                                               error, 7.5e-8)
///   2^n = bitcast(bitcast<i32>(t) << 23)        (the biased exponent n + 127
///                                               is t's low 8 bits)
///   exp(x) = p(r) * 2^n
///
/// Relative error <= 2.1e-7 over [-87, 88] (float32 emulation, 2e5 random
/// points). Like MLIR's, the result saturates outside the clamp: exp(x)
/// for x < -87.3 is 2^-126 instead of a denormal or 0, and for x > 88.0
/// it is ~1.6e38 instead of +inf.
struct ExpF32Approximation : public OpRewritePattern<math::ExpOp> {
  ExpF32Approximation(MLIRContext *context)
      : OpRewritePattern(context, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(math::ExpOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return rewriter.notifyMatchFailure(op, "not f32");
    auto vectorType = dyn_cast<VectorType>(type);
    if (vectorType && vectorType.isScalable())
      return rewriter.notifyMatchFailure(op, "scalable vector");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type i32 = b.getI32Type();
    Type intType = vectorType ? Type(vectorType.clone(i32)) : i32;
    auto constant = [&](float x) -> Value {
      Attribute attr = b.getF32FloatAttr(x);
      if (vectorType)
        attr = DenseElementsAttr::get(vectorType, x);
      return arith::ConstantOp::create(b, cast<TypedAttr>(attr));
    };
    auto fma = [&](Value x, Value y, Value z) -> Value {
      return math::FmaOp::create(b, x, y, z);
    };

    Value x = op.getOperand();
    Value lo = constant(-87.3365447f), hi = constant(88.0296919f);
    x = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::UGE, x, lo), x, lo);
    x = arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::ULE, x, hi), x, hi);
    Value magic = constant(12583039.0f); // 1.5 * 2^23 + 127
    Value t = fma(x, constant(1.44269504f), magic);
    Value n = arith::SubFOp::create(b, t, magic);
    Value r = fma(n, constant(-0.693359375f), x);
    r = fma(n, constant(2.12194440e-4f), r);
    Value p = constant(0.0082976548f);
    for (float c : {0.0419153832f, 0.166675746f, 0.499988943f, 0.999999702f,
                    1.00000012f})
      p = fma(p, r, constant(c));
    Value bits = arith::BitcastOp::create(b, intType, t);
    Value shift = arith::ConstantOp::create(
        b, vectorType ? cast<TypedAttr>(DenseElementsAttr::get(
                            cast<ShapedType>(intType), int32_t(23)))
                      : cast<TypedAttr>(b.getI32IntegerAttr(23)));
    Value scale = arith::BitcastOp::create(
        b, type, arith::ShLIOp::create(b, bits, shift));
    rewriter.replaceOp(op, arith::MulFOp::create(b, p, scale));
    return success();
  }
};

struct ApproximateMathPass
    : public glint::impl::GlintApproximateMathBase<ApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Every function MLIR approximates; f16/bf16 are widened to f32 first.
    auto all = [](StringRef) { return true; };
    populateMathF32ExpansionPatterns(patterns, all);
    populateMathPolynomialApproximationPatterns(patterns, all);
    patterns.add<ExpF32Approximation>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
