//===- ParallelToGpu.cpp - glint-parallel-to-gpu --------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// One kernel per outermost parallel loop nest, one thread per iteration.
// Upstream's convert-parallel-loops-to-gpu maps nested parallel loops to
// blocks and threads by nesting depth, which leaves a flat loop over (batch,
// sequence, channel) with one thread per block; numbering the iterations
// instead fills every block whatever the nest looks like.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTPARALLELTOGPU
#include "passes/cuda/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

/// The trip count of each dimension of `loop`: ceil((ub - lb) / step), at
/// least 0.
static SmallVector<Value> tripCounts(OpBuilder &b, scf::ParallelOp loop) {
  Location loc = loop.getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  SmallVector<Value> counts;
  for (auto [lb, ub, step] :
       llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
    Value span = arith::SubIOp::create(b, loc, ub, lb);
    Value count = arith::CeilDivSIOp::create(b, loc, span, step);
    counts.push_back(arith::MaxSIOp::create(b, loc, count, zero));
  }
  return counts;
}

/// Clones the body of `loop` (without its terminator) at `b`, its induction
/// variables replaced by `ivs`.
static void cloneBody(OpBuilder &b, scf::ParallelOp loop, ValueRange ivs) {
  IRMapping map;
  map.map(loop.getInductionVars(), ivs);
  for (Operation &op : loop.getBody()->without_terminator())
    b.clone(op, map);
}

/// Replaces `loop` (no results) by a nest of scf.for with its bounds.
static void sequentialize(scf::ParallelOp loop) {
  OpBuilder b(loop);
  scf::buildLoopNest(b, loop.getLoc(), loop.getLowerBound(),
                     loop.getUpperBound(), loop.getStep(),
                     [&](OpBuilder &nested, Location, ValueRange ivs) {
                       cloneBody(nested, loop, ivs);
                     });
  loop.erase();
}

/// Unrolls the loops of `region` with a constant trip count whose unrolled
/// body stays small (at most kUnrolledOps ops), innermost first: a
/// recurrence's loops over its 16 state entries then index its stack
/// buffers with constants, which LLVM keeps in registers instead of the
/// thread's local memory.
static void unrollSmallLoops(Region &region) {
  constexpr int64_t kUnrolledOps = 512;
  SmallVector<scf::ForOp> loops;
  region.walk([&](scf::ForOp loop) { loops.push_back(loop); });
  for (scf::ForOp loop : loops) { // innermost first (post-order)
    std::optional<llvm::APInt> trips = loop.getStaticTripCount();
    if (!trips || trips->getZExtValue() < 1 ||
        trips->getZExtValue() > uint64_t(kUnrolledOps))
      continue;
    int64_t ops = 0;
    loop.getBody()->walk([&](Operation *) { ++ops; });
    if (int64_t(trips->getZExtValue()) * ops <= kUnrolledOps)
      (void)loopUnrollFull(loop);
  }
}

/// Why `loop` cannot become a kernel, or an empty string.
static std::string unsupported(scf::ParallelOp loop) {
  if (loop.getNumResults() != 0)
    return "a parallel loop with a reduction";
  std::string why;
  loop.getBody()->walk([&](Operation *op) {
    if (isa<memref::AllocOp, memref::ReallocOp, memref::DeallocOp>(op)) {
      why = "a heap buffer allocated or freed inside the loop (" +
            op->getName().getStringRef().str() +
            "; only small static buffers can live in a kernel)";
      return WalkResult::interrupt();
    }
    if (auto inner = dyn_cast<scf::ParallelOp>(op);
        inner && inner.getNumResults() != 0) {
      why = "a nested parallel loop with a reduction";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return why;
}

/// Rewrites `loop` into a gpu.launch with one thread per iteration, in
/// blocks of at most blockSize threads (at least minBlocks blocks where the
/// iterations allow), guarded so that an empty loop launches nothing.
/// All kernels go to one module, `@glint_kernels`, so that a model loads
/// its kernels at once; each is named after its function and its position
/// there (`forward_kernel_3`).
static void launch(scf::ParallelOp loop, int64_t blockSize, int64_t minBlocks,
                   unsigned number) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  SmallVector<Value> counts = tripCounts(b, loop);
  Value total = arith::ConstantIndexOp::create(b, loc, 1);
  for (Value count : counts)
    total = arith::MulIOp::create(b, loc, total, count);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value any =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, total, zero);
  auto guard = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
  b.setInsertionPointToStart(guard.thenBlock());
  // Threads per block: blockSize, or fewer (a multiple of 32) when that
  // leaves fewer than minBlocks blocks, so that a small iteration space
  // (the channels of a scan, each a long sequential loop) still spreads
  // over the GPU's multiprocessors.
  Value warp = arith::ConstantIndexOp::create(b, loc, 32);
  Value fewest = arith::ConstantIndexOp::create(b, loc, minBlocks);
  Value most = arith::ConstantIndexOp::create(b, loc, blockSize);
  Value perBlock = arith::CeilDivUIOp::create(b, loc, total, fewest);
  Value warps = arith::CeilDivUIOp::create(b, loc, perBlock, warp);
  Value rounded = arith::MulIOp::create(b, loc, warps, warp);
  Value atLeastWarp = arith::MaxUIOp::create(b, loc, rounded, warp);
  Value threads = arith::MinUIOp::create(b, loc, most, atLeastWarp);
  Value blocks = arith::CeilDivUIOp::create(b, loc, total, threads);
  auto fn = loop->getParentOfType<func::FuncOp>();
  MLIRContext *context = loop.getContext();
  auto module = FlatSymbolRefAttr::get(context, "glint_kernels");
  auto name = FlatSymbolRefAttr::get(
      context, (fn.getSymName() + "_kernel_" + llvm::Twine(number)).str());
  auto kernel = gpu::LaunchOp::create(
      b, loc, blocks, one, one, threads, one, one,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, /*workgroupAttributions=*/{},
      /*privateAttributions=*/{}, /*clusterSizeX=*/nullptr,
      /*clusterSizeY=*/nullptr, /*clusterSizeZ=*/nullptr, module, name);
  b.setInsertionPointToEnd(&kernel.getBody().front());
  auto terminator = gpu::TerminatorOp::create(b, loc);
  b.setInsertionPoint(terminator);
  // iteration = block * threads per block + thread; the last dimension varies
  // fastest.
  Value first = arith::MulIOp::create(b, loc, kernel.getBlockIds().x,
                                      kernel.getBlockSize().x);
  Value iteration =
      arith::AddIOp::create(b, loc, first, kernel.getThreadIds().x);
  Value inside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                       iteration, total);
  auto body = scf::IfOp::create(b, loc, inside, /*withElseRegion=*/false);
  b.setInsertionPointToStart(body.thenBlock());
  SmallVector<Value> ivs(counts.size());
  Value rest = iteration;
  for (int64_t k = counts.size() - 1; k >= 0; --k) {
    Value index = arith::RemUIOp::create(b, loc, rest, counts[k]);
    if (k > 0)
      rest = arith::DivUIOp::create(b, loc, rest, counts[k]);
    Value offset = arith::MulIOp::create(b, loc, index, loop.getStep()[k]);
    ivs[k] = arith::AddIOp::create(b, loc, loop.getLowerBound()[k], offset);
  }
  cloneBody(b, loop, ivs);
  loop.erase();
  // Constants the kernel uses are defined inside it: scalars, so that its
  // index arithmetic and loop bounds are constants there (not kernel
  // parameters), and buffers (memref.get_global, from dense tensors), so
  // that outlining puts their globals in the kernel module, in device
  // memory: the host's globals are not visible to the GPU.
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(kernel.getBody(), captured);
  b.setInsertionPointToStart(&kernel.getBody().front());
  for (Value value : captured) {
    Operation *def = value.getDefiningOp();
    if (def && (def->hasTrait<OpTrait::ConstantLike>() ||
                isa<memref::GetGlobalOp>(def)))
      replaceAllUsesInRegionWith(value, b.clone(*def)->getResult(0),
                                 kernel.getBody());
  }
  // Parallel loops inside the kernel run in their thread.
  SmallVector<scf::ParallelOp> inner;
  kernel.getBody().walk([&](scf::ParallelOp op) { inner.push_back(op); });
  for (scf::ParallelOp op : inner) // innermost first (post-order)
    sequentialize(op);
  unrollSmallLoops(kernel.getBody());
}

namespace {
struct GlintParallelToGpu
    : public glint::impl::GlintParallelToGpuBase<GlintParallelToGpu> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (minBlocks < 1) {
      fn.emitError() << "glint-parallel-to-gpu: min-blocks must be positive, "
                        "not "
                     << minBlocks;
      return signalPassFailure();
    }
    if (blockSize < 32 || blockSize > 1024 || blockSize % 32 != 0) {
      fn.emitError() << "glint-parallel-to-gpu: block-size must be a multiple "
                        "of 32 from 32 to 1024, not "
                     << blockSize;
      return signalPassFailure();
    }
    SmallVector<scf::ParallelOp> roots;
    fn.walk<WalkOrder::PreOrder>([&](scf::ParallelOp loop) {
      roots.push_back(loop);
      return WalkResult::skip();
    });
    for (auto [number, loop] : llvm::enumerate(roots)) {
      std::string why = unsupported(loop);
      if (!why.empty()) {
        loop.emitError() << "glint-parallel-to-gpu: cannot run this loop as "
                            "a GPU kernel: it contains "
                         << why;
        return signalPassFailure();
      }
      launch(loop, blockSize, minBlocks, number);
    }
  }
};
} // namespace
