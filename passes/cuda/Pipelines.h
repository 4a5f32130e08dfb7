//===- Pipelines.h - the CUDA target's pass pipelines ----------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
//   glint IR ──lower-to-gpu-loops──▶ loops on tensors (scalar forms)
//     ──buffers-to-cuda──▶ host code in the LLVM dialect that launches
//        kernels + the kernels as PTX/cubin (gpu.binary)
//
// The host code calls MLIR's `mgpu*` functions and its generic allocation
// functions; runtime/cuda/ provides both over the CUDA driver API, with
// every buffer in managed memory.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CUDA_PIPELINES_H
#define GLINT_PASSES_CUDA_PIPELINES_H

#include "passes/TargetOptions.h"

#include "mlir/Pass/PassManager.h"

namespace mlir::glint {

/// glint IR to loops on tensors with no glint op left, in the forms a GPU
/// thread runs (the scalar recurrences, no CPU vector forms).
void buildGlintLowerToGpuLoopsPipeline(OpPassManager &pm,
                                       const TargetOptions &target);

/// Bufferized loops to kernels for `target.gpuArch` and host code in the
/// LLVM dialect.
void buildGlintBuffersToCudaPipeline(OpPassManager &pm,
                                     const TargetOptions &target);

/// Both: glint IR to the LLVM dialect for an NVIDIA GPU.
void buildGlintLowerToCudaPipeline(OpPassManager &pm,
                                   const TargetOptions &target);

/// Adds the dialects, interfaces and translations the CUDA pipelines need
/// (beyond registerCompilerDialects).
void registerCudaDialects(DialectRegistry &registry);

/// Registers `glint-lower-to-cuda` as a glint-opt pipeline, with options
/// `gpu-arch` and `format` over `defaults`.
void registerGlintCudaPipelines(const TargetOptions &defaults);

} // namespace mlir::glint

#endif // GLINT_PASSES_CUDA_PIPELINES_H
