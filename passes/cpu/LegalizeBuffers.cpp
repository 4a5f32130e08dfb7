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

struct LegalizeBuffersPass
    : public glint::impl::GlintLegalizeBuffersBase<LegalizeBuffersPass> {
  using GlintLegalizeBuffersBase::GlintLegalizeBuffersBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ContiguousExpandShape>(&getContext());
    patterns.add<CopyAsLinalg>(&getContext(), contiguousAsMemcpy);
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
