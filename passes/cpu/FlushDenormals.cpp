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

/// The off call at the start of `owner`'s body `region`, the restore call
/// before its terminator (a func.return, an omp.terminator).
LogicalResult bracket(Operation *owner, Region &region, func::FuncOp off,
                      func::FuncOp restore) {
  if (!region.hasOneBlock())
    return owner->emitOpError("has several blocks; glint-flush-denormals "
                              "brackets single-block bodies only");
  Block &body = region.front();
  OpBuilder b = OpBuilder::atBlockBegin(&body);
  Value saved =
      func::CallOp::create(b, owner->getLoc(), off, ValueRange{}).getResult(0);
  b.setInsertionPoint(body.getTerminator());
  func::CallOp::create(b, owner->getLoc(), restore, saved);
  return success();
}

struct FlushDenormalsPass
    : public glint::impl::GlintFlushDenormalsBase<FlushDenormalsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // The entry points' bodies and the OpenMP regions'.
    SmallVector<std::pair<Operation *, Region *>> bodies;
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn.isPublic() && !fn.isExternal())
        bodies.push_back({fn, &fn.getBody()});
    module.walk([&](omp::ParallelOp parallel) {
      bodies.push_back({parallel, &parallel.getRegion()});
    });
    if (bodies.empty())
      return;
    MLIRContext *context = &getContext();
    Type i32 = IntegerType::get(context, 32);
    func::FuncOp off =
        declare(module, kOff, FunctionType::get(context, {}, {i32}));
    func::FuncOp restore =
        declare(module, kRestore, FunctionType::get(context, {i32}, {}));
    for (auto [owner, region] : bodies)
      if (failed(bracket(owner, *region, off, restore)))
        return signalPassFailure();
  }
};

} // namespace
