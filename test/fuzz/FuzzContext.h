//===- FuzzContext.h - one MLIR context for many fuzz inputs ---*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Making an MLIRContext and loading the dialects (linalg's hundreds of ops,
// their interfaces) costs more than parsing or importing most inputs, so
// the MLIR harnesses share one context between inputs and make a new one
// every kInputsPerContext inputs: what inputs intern (types, attributes,
// identifiers) is bounded by that many, and a state that one input leaves
// in the context reaches at most the next few hundred. An input that
// crashes only after others have run is still kept by libFuzzer; run it
// alone and, if it does not crash, with the inputs before it
// (`-runs` over the corpus).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_FUZZ_FUZZCONTEXT_H
#define GLINT_TEST_FUZZ_FUZZCONTEXT_H

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>

namespace glint_fuzz {

inline constexpr unsigned kInputsPerContext = 500;

/// The context for the next input: every dialect of `registry` loaded,
/// threading off, made afresh every kInputsPerContext calls.
inline mlir::MLIRContext &sharedContext(const mlir::DialectRegistry &registry) {
  static std::unique_ptr<mlir::MLIRContext> context;
  static unsigned inputs = 0;
  if (!context || ++inputs % kInputsPerContext == 0) {
    context.reset();
    context = std::make_unique<mlir::MLIRContext>(
        registry, mlir::MLIRContext::Threading::DISABLED);
    context->loadAllAvailableDialects();
  }
  return *context;
}

} // namespace glint_fuzz

#endif // GLINT_TEST_FUZZ_FUZZCONTEXT_H
