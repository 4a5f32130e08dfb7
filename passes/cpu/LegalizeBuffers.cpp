//===- LegalizeBuffers.cpp - glint-legalize-buffers -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "glint-legalize-buffers"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTINLINEALLOCASCOPES
#define GEN_PASS_DEF_GLINTLEGALIZEBUFFERS
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {
/// expand_shape(contiguous) = reinterpret_cast(offset 0, output sizes,
/// row-major strides of the output sizes).
struct ContiguousExpandShape : public OpRewritePattern<memref::ExpandShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::ExpandShapeOp op,
                                PatternRewriter &rewriter) const override {
    MemRefType source = op.getSrcType(), result = op.getResultType();
    if (!source.getLayout().isIdentity() || !result.getLayout().isIdentity())
      return failure();
    Location loc = op.getLoc();
    SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();
    SmallVector<OpFoldResult> strides(sizes.size());
    OpFoldResult stride = rewriter.getIndexAttr(1);
    for (int64_t i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
      strides[i] = stride;
      auto staticStride = getConstantIntValue(stride);
      auto staticSize = getConstantIntValue(sizes[i]);
      if (staticStride && staticSize) {
        stride = rewriter.getIndexAttr(*staticStride * *staticSize);
        continue;
      }
      stride = arith::MulIOp::create(
                   rewriter, loc,
                   getValueOrCreateConstantIndexOp(rewriter, loc, stride),
                   getValueOrCreateConstantIndexOp(rewriter, loc, sizes[i]))
                   .getResult();
    }
    rewriter.replaceOpWithNewOp<memref::ReinterpretCastOp>(
        op, result, op.getSrc(), rewriter.getIndexAttr(0), sizes, strides);
    return success();
  }
};

/// Whether MemRefToLLVM lowers a copy from or to `type` as llvm.memcpy
/// (its own test: the identity layout, or a static, non-empty, contiguous
/// row-major one; anything else becomes a call of `memrefCopy`).
bool isContiguous(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref && (memref.getLayout().isIdentity() ||
                    (memref.hasStaticShape() && memref.getNumElements() > 0 &&
                     memref::isStaticShapeAndContiguousRowMajor(memref)));
}

/// memref.copy as linalg.copy, which lowers to loops; with `keepContiguous`,
/// not between two contiguous buffers.
struct CopyAsLinalg : public OpRewritePattern<memref::CopyOp> {
  CopyAsLinalg(MLIRContext *context, bool keepContiguous)
      : OpRewritePattern(context), keepContiguous(keepContiguous) {}
  LogicalResult matchAndRewrite(memref::CopyOp op,
                                PatternRewriter &rewriter) const override {
    if (keepContiguous && isContiguous(op.getSource().getType()) &&
        isContiguous(op.getTarget().getType()))
      return failure();
    rewriter.replaceOpWithNewOp<linalg::CopyOp>(op, op.getSource(),
                                                op.getTarget());
    return success();
  }
  bool keepContiguous;
};

/// Whether the innermost dimension of `type` has unit stride.
bool hasUnitInnerStride(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  if (!memref || memref.getRank() == 0)
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(memref.getStridesAndOffset(strides, offset)) &&
         strides.back() == 1;
}

/// A copy between two buffers whose rows (the innermost dimension) are
/// contiguous but which are not contiguous as a whole (a slice of a wider
/// buffer, a shifted view): loops over the outer dimensions, each row moved
/// by vector transfers of the target's width (`vectorWidth` f32 lanes, as
/// many bits for other element types; masked past a row's end). As scalar
/// loops, LLVM unrolled a short static row and vectorised across rows, one
/// gather and one scatter per element column.
struct CopyRowsAsVectors : public OpRewritePattern<memref::CopyOp> {
  CopyRowsAsVectors(MLIRContext *context, int64_t vectorWidth)
      : OpRewritePattern(context, /*benefit=*/2), vectorWidth(vectorWidth) {}
  LogicalResult matchAndRewrite(memref::CopyOp op,
                                PatternRewriter &rewriter) const override {
    Value source = op.getSource(), target = op.getTarget();
    if (isContiguous(source.getType()) && isContiguous(target.getType()))
      return failure();
    if (!hasUnitInnerStride(source.getType()) ||
        !hasUnitInnerStride(target.getType()))
      return failure();
    auto type = cast<MemRefType>(target.getType());
    Type element = type.getElementType();
    if (!element.isIntOrFloat() || element.getIntOrFloatBitWidth() < 8)
      return failure();
    int64_t width = std::max<int64_t>(
        vectorWidth * 32 / element.getIntOrFloatBitWidth(), 1);
    int64_t rank = type.getRank();
    int64_t rowSize = type.getDimSize(rank - 1);
    bool inBounds = !ShapedType::isDynamic(rowSize) && rowSize % width == 0;
    Location loc = op.getLoc();
    auto vectorType = VectorType::get({width}, element);
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value step = arith::ConstantIndexOp::create(rewriter, loc, width);
    Value padding = arith::ConstantOp::create(rewriter, loc, element,
                                              rewriter.getZeroAttr(element));
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < rank; ++d)
      sizes.push_back(memref::DimOp::create(rewriter, loc, target, d));
    SmallVector<Value> lowers(rank, zero), steps(rank - 1, one);
    steps.push_back(step);
    scf::buildLoopNest(
        rewriter, loc, lowers, sizes, steps,
        [&](OpBuilder &b, Location, ValueRange indices) {
          Value row = vector::TransferReadOp::create(b, loc, vectorType, source,
                                                     indices, padding,
                                                     ArrayRef<bool>{inBounds});
          vector::TransferWriteOp::create(b, loc, row, target, indices,
                                          ArrayRef<bool>{inBounds});
        });
    rewriter.eraseOp(op);
    return success();
  }
  int64_t vectorWidth;
};

struct LegalizeBuffersPass
    : public glint::impl::GlintLegalizeBuffersBase<LegalizeBuffersPass> {
  using GlintLegalizeBuffersBase::GlintLegalizeBuffersBase;
  void runOnOperation() override {
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(),
                                       vectorWidth)))
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    patterns.add<ContiguousExpandShape>(&getContext());
    patterns.add<CopyAsLinalg>(&getContext(), contiguousAsMemcpy);
    if (copyRowsAsVectors)
      patterns.add<CopyRowsAsVectors>(&getContext(), vectorWidth);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
/// An alloca_scope with no alloca inside is just its body.
struct InlineEmptyAllocaScope
    : public OpRewritePattern<memref::AllocaScopeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::AllocaScopeOp op,
                                PatternRewriter &rewriter) const override {
    bool allocates = false;
    op.getBodyRegion().walk([&](memref::AllocaOp) { allocates = true; });
    if (allocates || !op.getBodyRegion().hasOneBlock())
      return failure();
    Block &body = op.getBodyRegion().front();
    auto yield = cast<memref::AllocaScopeReturnOp>(body.getTerminator());
    SmallVector<Value> results(yield.getResults());
    rewriter.eraseOp(yield);
    rewriter.inlineBlockBefore(&body, op);
    rewriter.replaceOp(op, results);
    return success();
  }
};

struct InlineAllocaScopesPass
    : public glint::impl::GlintInlineAllocaScopesBase<InlineAllocaScopesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<InlineEmptyAllocaScope>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
