//===- Passes.h - every glint pass -----------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The passes of every folder under passes/, for tools that register them
// all (glint-opt) and code that uses passes of several folders.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_PASSES_H
#define GLINT_PASSES_PASSES_H

#include "passes/conversions/Passes.h"
#include "passes/cpu/Passes.h"
#include "passes/cuda/Passes.h"
#include "passes/transforms/Passes.h"

namespace mlir::glint {

/// Registers every glint pass as a glint-opt flag.
inline void registerGlintPasses() {
  registerGlintTransformsPasses();
  registerGlintConversionsPasses();
  registerGlintCpuPasses();
  registerGlintCudaPasses();
}

} // namespace mlir::glint

#endif // GLINT_PASSES_PASSES_H
