//===- FuzzImport.cpp - fuzzes config.json → glint IR import --------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The first byte picks a checkpoint (one fixture per family, so every
// importer sees its own weights and, as often, another family's); the rest
// is config.json. A model that imports must verify.
//
//===----------------------------------------------------------------------===//

#include "FuzzContext.h"
#include "FuzzSupport.h"
#include "dialect/GlintDialect.h"
#include "import/Importers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <memory>
#include <vector>

using namespace mlir;

/// The fixture checkpoints, opened once.
static const std::vector<std::unique_ptr<mlir::glint::runtime::Checkpoint>> &
checkpoints() {
  static const auto opened = [] {
    std::vector<std::unique_ptr<mlir::glint::runtime::Checkpoint>> result;
    for (const char *name :
         {"mamba_conv3", "mamba2", "rwkv4", "recurrentgemma", "rwkv6", "vim"}) {
      auto checkpoint = mlir::glint::runtime::Checkpoint::open(
          std::string(GLINT_SOURCE_DIR "/test/fixtures/") + name);
      if (!checkpoint) {
        llvm::errs() << llvm::toString(checkpoint.takeError()) << "\n";
        std::abort();
      }
      result.push_back(std::move(*checkpoint));
    }
    return result;
  }();
  return opened;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const auto &all = checkpoints();
  const mlir::glint::runtime::Checkpoint &checkpoint =
      *all[data[0] % all.size()];
  glint_fuzz::writeScratch("config.json",
                           glint_fuzz::asText(data + 1, size - 1));

  static const DialectRegistry *registry = [] {
    auto *r = new DialectRegistry();
    r->insert<glint::GlintDialect, arith::ArithDialect, func::FuncDialect,
              linalg::LinalgDialect, math::MathDialect,
              ml_program::MLProgramDialect, tensor::TensorDialect>();
    return r;
  }();
  MLIRContext &context = glint_fuzz::sharedContext(*registry);
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });
  auto module = glint::import::importCheckpoint(
      &context, glint_fuzz::scratchDirectory(), checkpoint);
  if (!module) {
    llvm::consumeError(module.takeError());
    return 0;
  }
  if (failed(verify(**module))) {
    llvm::errs() << "an imported model does not verify\n";
    std::abort();
  }
  return 0;
}
