//===- VerifyLowered.cpp - glint-verify-lowered ---------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "passes/conversions/Passes.h"

#include "mlir/IR/BuiltinOps.h"

#define DEBUG_TYPE "glint-verify-lowered"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVERIFYLOWERED
#include "passes/conversions/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {
struct VerifyLoweredPass
    : public glint::impl::GlintVerifyLoweredBase<VerifyLoweredPass> {
  void runOnOperation() override {
    bool failed = false;
    getOperation()->walk([&](Operation *op) {
      if (!isa<glint::GlintDialect>(op->getDialect()))
        return;
      op->emitError("'")
          << op->getName()
          << "' was not lowered: no pattern of the pipeline handles this "
             "form of the op";
      failed = true;
    });
    if (failed)
      signalPassFailure();
    markAllAnalysesPreserved();
  }
};
} // namespace
