//===- ApproximateMath.cpp - glint-approximate-math -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "glint-approximate-math"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTAPPROXIMATEMATH
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// exp(x) on f32 in 13 vector instructions, where MLIR's approximation
/// takes about 25: the exponential is most of a selective scan's work, one
/// per state entry and step.
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

/// exp2(y) on f32: n = round(y), f = y - n (exact), 2^f ~ p(f) of degree 5
/// (minimax for the relative error on [-1/2, 1/2]: 7.5e-8; 2.1e-7 with
/// float32 rounding), times 2^n:
///
/// * with AVX-512 on vector<16xf32>: `vrndscaleps` for n and `vscalefps`
///   (llvm.x86.avx512.mask.scalef.ps.512) for p * 2^n, which also gives
///   exact 0 / +inf past the exponent range:
///   9 instructions, 7 without the clamp of +-inf inputs;
/// * otherwise: n by the 1.5 * 2^23 + 127 shifter as for exp, 2^n from the
///   shifter's bits: 12 instructions, 10 without the clamp.
///
/// With `ninf` (the operand and result are finite, as for a scan's decay
/// exp2(delta_t * A * log2 e)) the clamp to [-150, 150] (AVX-512) or the
/// upper clamp (otherwise) is left out; the portable form keeps its lower
/// clamp at -126, where the exponent field would wrap.
struct Exp2F32Approximation : public OpRewritePattern<math::Exp2Op> {
  Exp2F32Approximation(MLIRContext *context, bool avx512)
      : OpRewritePattern(context, /*benefit=*/2), avx512(avx512) {}

  LogicalResult matchAndRewrite(math::Exp2Op op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return rewriter.notifyMatchFailure(op, "not f32");
    auto vectorType = dyn_cast<VectorType>(type);
    if (vectorType && vectorType.isScalable())
      return rewriter.notifyMatchFailure(op, "scalable vector");
    bool finite = bitEnumContainsAll(op.getFastmath(),
                                     arith::FastMathFlags::ninf);
    bool scalef = avx512 && vectorType && vectorType.getRank() == 1 &&
                  vectorType.getDimSize(0) == 16;
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto constant = [&](float x) -> Value {
      Attribute attr = b.getF32FloatAttr(x);
      if (vectorType)
        attr = DenseElementsAttr::get(vectorType, x);
      return arith::ConstantOp::create(b, cast<TypedAttr>(attr));
    };
    // select(y >= c, y, c) and select(y <= c, y, c) keep NaN.
    auto atLeast = [&](Value y, float c) -> Value {
      Value bound = constant(c);
      return arith::SelectOp::create(
          b, arith::CmpFOp::create(b, arith::CmpFPredicate::UGE, y, bound), y,
          bound);
    };
    auto atMost = [&](Value y, float c) -> Value {
      Value bound = constant(c);
      return arith::SelectOp::create(
          b, arith::CmpFOp::create(b, arith::CmpFPredicate::ULE, y, bound), y,
          bound);
    };
    auto polynomial = [&](Value f) -> Value {
      Value p = constant(0.00132764725f);
      for (float c : {0.00967554096f, 0.0555071309f, 0.240221202f,
                      0.693146944f, 1.00000012f})
        p = math::FmaOp::create(b, p, f, constant(c));
      return p;
    };

    Value y = op.getOperand();
    if (scalef) {
      if (!finite) // +-inf would give inf - inf below.
        y = atMost(atLeast(y, -150.0f), 150.0f);
      Value n = math::RoundEvenOp::create(b, y);
      Value p = polynomial(arith::SubFOp::create(b, y, n));
      // vscalefps through its LLVM intrinsic, (a, b, passthrough, mask,
      // rounding) -> a * 2^floor(b). Not x86vector.avx512.mask.scalef:
      // in MLIR 22 that op passes its `src` as the intrinsic's `a`, so it
      // computes src * 2^a (checked on this host).
      Value allLanes = arith::ConstantOp::create(b, b.getI16IntegerAttr(-1));
      Value currentRounding =
          arith::ConstantOp::create(b, b.getI32IntegerAttr(4));
      auto scaled = LLVM::CallIntrinsicOp::create(
          b, type, b.getStringAttr("llvm.x86.avx512.mask.scalef.ps.512"),
          ValueRange{p, n, p, allLanes, currentRounding});
      rewriter.replaceOp(op, scaled.getResult(0));
      return success();
    }
    y = atLeast(y, -126.0f);
    if (!finite)
      y = atMost(y, 127.0f);
    Type i32 = b.getI32Type();
    Type intType = vectorType ? Type(vectorType.clone(i32)) : i32;
    Value magic = constant(12583039.0f); // 1.5 * 2^23 + 127
    Value t = arith::AddFOp::create(b, y, magic);
    Value n = arith::SubFOp::create(b, t, magic);
    Value p = polynomial(arith::SubFOp::create(b, y, n));
    Value shift = arith::ConstantOp::create(
        b, vectorType ? cast<TypedAttr>(DenseElementsAttr::get(
                            cast<ShapedType>(intType), int32_t(23)))
                      : cast<TypedAttr>(b.getI32IntegerAttr(23)));
    Value scale = arith::BitcastOp::create(
        b, type,
        arith::ShLIOp::create(b, arith::BitcastOp::create(b, intType, t),
                              shift));
    rewriter.replaceOp(op, arith::MulFOp::create(b, p, scale));
    return success();
  }

  bool avx512;
};

/// log1p(exp(-|x|)), softplus's tail: the argument of log1p is e in (0, 1],
/// where log1p(e) = e q(e) with q of degree 8 (minimax for the relative
/// error on [0, 1]: 3.0e-8; 1.7e-7 with float32 rounding): 9 instructions,
/// no range reduction and no division (MLIR's log1p has both, about 30).
/// The exp is left to its own pattern.
struct SoftplusTailApproximation : public OpRewritePattern<math::Log1pOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::Log1pOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!getElementTypeOrSelf(type).isF32())
      return rewriter.notifyMatchFailure(op, "not f32");
    auto exp = op.getOperand().getDefiningOp<math::ExpOp>();
    auto neg = exp ? exp.getOperand().getDefiningOp<arith::NegFOp>()
                   : arith::NegFOp();
    if (!neg || !neg.getOperand().getDefiningOp<math::AbsFOp>())
      return rewriter.notifyMatchFailure(op, "not log1p(exp(-|x|))");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto vectorType = dyn_cast<VectorType>(type);
    auto constant = [&](float x) -> Value {
      Attribute attr = b.getF32FloatAttr(x);
      if (vectorType)
        attr = DenseElementsAttr::get(vectorType, x);
      return arith::ConstantOp::create(b, cast<TypedAttr>(attr));
    };
    Value e = exp.getResult();
    Value q = constant(0.00523269456f);
    for (float c : {-0.0295052398f, 0.0782259554f, -0.136632457f,
                    0.191060066f, -0.24842982f, 0.333190978f, -0.499994934f,
                    0.99999994f})
      q = math::FmaOp::create(b, q, e, constant(c));
    rewriter.replaceOp(op, arith::MulFOp::create(b, q, e));
    return success();
  }
};

struct ApproximateMathPass
    : public glint::impl::GlintApproximateMathBase<ApproximateMathPass> {
  using GlintApproximateMathBase::GlintApproximateMathBase;

  void runOnOperation() override {
    // First the patterns that look at the producers of their operand, while
    // those are still math ops.
    {
      RewritePatternSet patterns(&getContext());
      patterns.add<SoftplusTailApproximation>(&getContext());
      if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
        return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    // f16/bf16 are widened to f32 first.
    // Every function MLIR approximates but rsqrt: MLIR's is for AVX2
    // vectors only (x86vector.avx.rsqrt, 12 bits and a Newton step), and
    // rsqrt lowers to LLVM's exact one anyway.
    auto all = [](StringRef) { return true; };
    auto allButRsqrt = [](StringRef name) { return !name.ends_with("rsqrt"); };
    populateMathF32ExpansionPatterns(patterns, all);
    populateMathPolynomialApproximationPatterns(patterns, allButRsqrt);
    patterns.add<ExpF32Approximation>(&getContext());
    patterns.add<Exp2F32Approximation>(&getContext(), avx512);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
