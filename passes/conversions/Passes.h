//===- Passes.h - glint ops to loops ---------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Target-independent conversions of glint ops: recurrences and attention
// maps to scalar loops, the other layers to linalg, and the check that no
// glint op is left.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CONVERSIONS_PASSES_H
#define GLINT_PASSES_CONVERSIONS_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/conversions/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/conversions/Passes.h.inc"

} // namespace mlir::glint

#endif // GLINT_PASSES_CONVERSIONS_PASSES_H
