//===- MarkDeviceMemory.cpp - glint-mark-device-memory --------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTMARKDEVICEMEMORY
#include "passes/cuda/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

/// Whether `op` (host code) reads or writes the contents of a buffer.
static bool touchesBuffer(Operation *op) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return false;
  SmallVector<MemoryEffects::EffectInstance> instances;
  effects.getEffects(instances);
  return llvm::any_of(instances, [](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Read, MemoryEffects::Write>(e.getEffect()) &&
           e.getValue() && isa<BaseMemRefType>(e.getValue().getType());
  });
}

namespace {
struct GlintMarkDeviceMemory
    : public glint::impl::GlintMarkDeviceMemoryBase<GlintMarkDeviceMemory> {
  void runOnOperation() override {
    bool host = false;
    getOperation().walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa<gpu::LaunchOp, gpu::GPUModuleOp>(op))
        return WalkResult::skip();
      if (touchesBuffer(op)) {
        host = true;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    getOperation()->setAttr("glint.device_memory",
                            BoolAttr::get(&getContext(), !host));
  }
};
} // namespace
