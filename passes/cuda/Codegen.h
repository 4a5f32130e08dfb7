//===- Codegen.h - CUDA host code to libraries ------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The last step of the CUDA target, after glint-lower-to-cuda: the host code
// (with the kernels embedded as a gpu.binary) is translated and compiled for
// the host CPU like a CPU model, its entry points stage their arguments on
// the device, and it is linked with runtime/cuda instead of the CPU's
// allocator and OpenMP.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CUDA_CODEGEN_H
#define GLINT_PASSES_CUDA_CODEGEN_H

#include "passes/TargetOptions.h"
#include "runtime/io/ModelInfo.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

#include <memory>

namespace mlir::glint::cuda {

/// cpu::translateToLLVMIR for the host side of `target`, with entry points
/// that stage every argument (glint_cuda_stage) and release the staged
/// copies after the call.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                  const runtime::ModelInfo &info, llvm::StringRef function,
                  const TargetOptions &target);

/// The PTX of every kernel module in `module` (lowered with
/// `gpuBinary = "isa"`), one after the other.
llvm::Expected<std::string> kernelAssembly(ModuleOp module);

/// Object code of `module` linked with runtime/cuda into a shared library
/// at `output`, written atomically.
llvm::Error emitLibrary(llvm::Module &module, llvm::StringRef output,
                        const TargetOptions &target);

} // namespace mlir::glint::cuda

#endif // GLINT_PASSES_CUDA_CODEGEN_H
