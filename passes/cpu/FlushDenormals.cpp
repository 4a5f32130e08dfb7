//===- FlushDenormals.cpp - glint-flush-denormals -------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The decays of a gated linear recurrence are exponentials of negative
// numbers, and a long product of them, or of a cotangent carried back
// through them, runs into float32's subnormal range (below 1.2e-38). x86
// cores take a microcode assist for many operations on such values, each
// tens to a hundred cycles: `glint-bench --gradient` of mamba-keyword at
// L = 2048 ran 5–9% faster with subnormals flushed to zero. XLA's and
// TensorFlow's CPU kernels run that way; so do compiled glint models.
//
// This pass brackets each entry point (a public function with a body) and
// each OpenMP parallel region's body with calls to the model runtime:
//
//   %saved = func.call @glint_denormals_off() : () -> i32
//   ... the body ...
//   func.call @glint_denormals_restore(%saved) : (i32) -> ()
//
// On x86 the first sets MXCSR's flush-to-zero and denormals-are-zero bits
// and returns the register as it was, the second puts it back
// (runtime/host/ModelAlloc.c; no-ops elsewhere), so that the caller's
// threads and OpenMP's workers leave a call as they entered it. A call
// ended by an allocation failure (a longjmp out of the model) is restored
// by glint_call_guarded.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTFLUSHDENORMALS
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kOff = "glint_denormals_off";
constexpr llvm::StringLiteral kRestore = "glint_denormals_restore";

/// A private declaration of `name` in `module`, made if it has none.
func::FuncOp declare(ModuleOp module, StringRef name, FunctionType type) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToStart(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), name, type);
  fn.setPrivate();
  return fn;
}

/// The off call at the start of `block`, the restore call before the
/// terminator of each block of `region` that `isExit` takes.
void bracket(Region &region, function_ref<bool(Operation *)> isExit,
             func::FuncOp off, func::FuncOp restore) {
  OpBuilder b(region.getContext());
  Block &entry = region.front();
  b.setInsertionPointToStart(&entry);
  Value saved =
      func::CallOp::create(b, region.getLoc(), off, ValueRange{}).getResult(0);
  for (Block &block : region)
    if (Operation *terminator = block.getTerminator();
        terminator && isExit(terminator)) {
      b.setInsertionPoint(terminator);
      func::CallOp::create(b, terminator->getLoc(), restore, saved);
    }
}

struct FlushDenormalsPass
    : public glint::impl::GlintFlushDenormalsBase<FlushDenormalsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> entries;
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn.isPublic() && !fn.isExternal())
        entries.push_back(fn);
    SmallVector<omp::ParallelOp> regions;
    module.walk([&](omp::ParallelOp parallel) { regions.push_back(parallel); });
    if (entries.empty() && regions.empty())
      return;
    MLIRContext *context = &getContext();
    Type i32 = IntegerType::get(context, 32);
    func::FuncOp off =
        declare(module, kOff, FunctionType::get(context, {}, {i32}));
    func::FuncOp restore =
        declare(module, kRestore, FunctionType::get(context, {i32}, {}));
    for (func::FuncOp fn : entries) {
      if (!fn.getBody().hasOneBlock()) {
        fn.emitOpError("has several blocks; glint-flush-denormals brackets "
                       "single-block entry points only");
        return signalPassFailure();
      }
      bracket(
          fn.getBody(),
          [](Operation *op) { return isa<func::ReturnOp>(op); }, off, restore);
    }
    for (omp::ParallelOp parallel : regions) {
      if (!parallel.getRegion().hasOneBlock()) {
        parallel.emitOpError("has several blocks; glint-flush-denormals "
                             "brackets single-block regions only");
        return signalPassFailure();
      }
      bracket(
          parallel.getRegion(),
          [](Operation *op) { return isa<omp::TerminatorOp>(op); }, off,
          restore);
    }
  }
};

} // namespace
