//===- StackKernelBuffers.cpp - glint-stack-kernel-buffers ----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTSTACKKERNELBUFFERS
#include "passes/cuda/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

/// Bytes of a statically shaped buffer, or nothing.
static std::optional<int64_t> staticBytes(MemRefType type) {
  if (!type.hasStaticShape() || !type.getElementType().isIntOrFloat())
    return std::nullopt;
  return type.getNumElements() * ((type.getElementTypeBitWidth() + 7) / 8);
}

namespace {
struct GlintStackKernelBuffers
    : public glint::impl::GlintStackKernelBuffersBase<GlintStackKernelBuffers> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<scf::ForallOp> outermost;
    getOperation().walk<WalkOrder::PreOrder>([&](scf::ForallOp loop) {
      outermost.push_back(loop);
      return WalkResult::skip();
    });
    for (scf::ForallOp loop : outermost) {
      SmallVector<memref::AllocOp> allocs;
      loop.getBody()->walk([&](memref::AllocOp alloc) {
        std::optional<int64_t> bytes = staticBytes(alloc.getType());
        bool yielded = llvm::any_of(alloc->getUsers(), [](Operation *user) {
          return isa<scf::YieldOp>(user);
        });
        if (bytes && *bytes <= maxBytes && !yielded)
          allocs.push_back(alloc);
      });
      OpBuilder b(loop.getContext());
      for (memref::AllocOp alloc : allocs) {
        // At the start of the body (an alloc erased below may be its first
        // op, so the insertion point is set anew each time).
        b.setInsertionPointToStart(loop.getBody());
        auto stack = memref::AllocaOp::create(
            b, alloc.getLoc(), alloc.getType(), alloc.getAlignmentAttr());
        alloc.replaceAllUsesWith(stack.getResult());
        alloc.erase();
      }
    }
  }
};
} // namespace
