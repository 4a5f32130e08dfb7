//===- Passes.h - the CUDA target's passes ---------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The passes of the NVIDIA GPU target: the loops of bufferized code as GPU
// kernels. The rest of the target's pipeline (Pipelines.h) is upstream's
// gpu → nvvm → PTX/cubin path.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CUDA_PASSES_H
#define GLINT_PASSES_CUDA_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/cuda/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/cuda/Passes.h.inc"

} // namespace mlir::glint

#endif // GLINT_PASSES_CUDA_PASSES_H
