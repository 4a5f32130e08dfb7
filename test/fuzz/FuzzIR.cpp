//===- FuzzIR.cpp - fuzzes the IR parser, verifier and canonicaliser ------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Parses the input as a module in the dialects glint-opt reads (the parser
// verifies it), and canonicalises what verifies; the result must verify
// again.
//
//===----------------------------------------------------------------------===//

#include "FuzzContext.h"
#include "FuzzSupport.h"
#include "passes/cpu/Pipelines.h"
#include "runtime/io/InputLimits.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

static const DialectRegistry &registry() {
  static const DialectRegistry *registry = [] {
    auto *r = new DialectRegistry();
    glint::registerCompilerDialects(*r);
    return r;
  }();
  return *registry;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &context = glint_fuzz::sharedContext(registry());
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });
  ParserConfig config(&context);
  // MLIR's lexer stops at a NUL byte it expects after the text (files and
  // std::string have one; the fuzzer's buffer does not).
  std::string text(glint_fuzz::asText(data, size));
  // The tools check what the parser would crash on (deep nesting, some
  // linalg arrays) before they parse.
  if (llvm::Error e =
          mlir::glint::runtime::checkIRBeforeParsing(text, "fuzz")) {
    llvm::consumeError(std::move(e));
    return 0;
  }
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(text, config, "fuzz");
  if (!module)
    return 0;
  PassManager pm(&context);
  pm.addPass(createCanonicalizerPass());
  if (failed(pm.run(*module)))
    return 0;
  if (failed(verify(*module))) {
    llvm::errs() << "canonicalisation left IR that does not verify\n";
    std::abort();
  }
  return 0;
}
