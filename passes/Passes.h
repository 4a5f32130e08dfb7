//===- Passes.h - glint passes ----------------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_PASSES_H
#define GLINT_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::glint

#endif // GLINT_PASSES_PASSES_H
