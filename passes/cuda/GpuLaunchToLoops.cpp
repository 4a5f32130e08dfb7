//===- GpuLaunchToLoops.cpp - glint-gpu-launch-to-loops -------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTGPULAUNCHTOLOOPS
#include "passes/cuda/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

/// Replaces `launch` by loops over its grid's and blocks' x sizes, one
/// iteration after the other; fails on what glint-parallel-to-gpu never
/// makes.
static LogicalResult unlaunch(gpu::LaunchOp launch) {
  Block &body = launch.getBody().front();
  if (!launch.getBody().hasOneBlock() || launch.getAsyncToken() ||
      !launch.getWorkgroupAttributions().empty() ||
      !launch.getPrivateAttributions().empty())
    return launch.emitError("glint-gpu-launch-to-loops: only single-block "
                            "synchronous kernels without attributions can "
                            "run as loops");
  WalkResult barriers =
      body.walk([](gpu::BarrierOp) { return WalkResult::interrupt(); });
  if (barriers.wasInterrupted())
    return launch.emitError("glint-gpu-launch-to-loops: a kernel with "
                            "barriers cannot run as loops");
  OpBuilder b(launch);
  Location loc = launch.getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
  gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
  // Each thread's stack buffers (glint-stack-kernel-buffers) become one set
  // for the whole launch, reused by the iterations one after the other.
  SmallVector<memref::AllocaOp> buffers;
  body.walk([&](memref::AllocaOp alloca) {
    if (alloca->getNumOperands() == 0)
      buffers.push_back(alloca);
  });
  for (memref::AllocaOp alloca : buffers)
    alloca->moveBefore(launch);
  auto blocks = scf::ForOp::create(b, loc, zero, grid.x, one);
  b.setInsertionPointToStart(blocks.getBody());
  auto threads = scf::ForOp::create(b, loc, zero, block.x, one);
  Value blockId = blocks.getInductionVar();
  Value threadId = threads.getInductionVar();
  gpu::KernelDim3 blockIds = launch.getBlockIds();
  gpu::KernelDim3 threadIds = launch.getThreadIds();
  gpu::KernelDim3 gridSizes = launch.getGridSize();
  gpu::KernelDim3 blockSizes = launch.getBlockSize();
  SmallVector<Value> args = {blockIds.x,   blockIds.y,   blockIds.z,
                             threadIds.x,  threadIds.y,  threadIds.z,
                             gridSizes.x,  gridSizes.y,  gridSizes.z,
                             blockSizes.x, blockSizes.y, blockSizes.z};
  SmallVector<Value> values = {blockId, zero,    zero,    threadId,
                               zero,    zero,    grid.x,  grid.y,
                               grid.z,  block.x, block.y, block.z};
  for (auto [arg, value] : llvm::zip(args, values))
    arg.replaceAllUsesWith(value);
  Block *loopBody = threads.getBody();
  Operation *terminator = body.getTerminator();
  loopBody->getOperations().splice(loopBody->getTerminator()->getIterator(),
                                   body.getOperations(), body.begin(),
                                   terminator->getIterator());
  launch.erase();
  return success();
}

namespace {
struct GlintGpuLaunchToLoops
    : public glint::impl::GlintGpuLaunchToLoopsBase<GlintGpuLaunchToLoops> {
  void runOnOperation() override {
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk(
        [&](gpu::LaunchOp launch) { launches.push_back(launch); });
    for (gpu::LaunchOp launch : launches)
      if (failed(unlaunch(launch)))
        return signalPassFailure();
  }
};
} // namespace
