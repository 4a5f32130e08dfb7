//===- FuzzLower.cpp - fuzzes the lowering pipelines on verified IR -------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What glint-compile does to a module that parses and verifies: the first
// byte chooses the plain lowering (glint-lower-to-cpu, with the step
// function when the model streams) or the attention form first
// (glint-to-attention, then the same lowering); the rest is the module. The
// target is fixed, not this machine, so a crash reproduces anywhere.
// Passes may refuse a model (with a diagnostic); they must not crash.
//
//===----------------------------------------------------------------------===//

#include "FuzzContext.h"
#include "FuzzSupport.h"
#include "compiler/Compiler.h"
#include "passes/cpu/Pipelines.h"
#include "runtime/io/InputLimits.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

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
  if (size == 0)
    return 0;
  bool attention = data[0] & 1;
  MLIRContext &context = glint_fuzz::sharedContext(registry());
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });
  ParserConfig config(&context);
  // MLIR's lexer stops at a NUL byte it expects after the text.
  std::string text(glint_fuzz::asText(data + 1, size - 1));
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

  glint::TargetOptions target;
  target.triple = "x86_64-unknown-linux-gnu";
  target.cpu = "x86-64-v3";
  target.vectorWidth = 8;
  target.threads = 2;
  glint::compiler::AttentionOptions attentionOptions;
  if (attention)
    attentionOptions.formulation = "unified";
  glint::runtime::ModelInfo info;
  glint_fuzz::ignore(glint::compiler::lowerModule(
      *module, "forward", glint::compiler::Stage::LLVM, info, nullptr,
      glint::compiler::StepMode::Auto, attentionOptions, {}, target));
  return 0;
}
