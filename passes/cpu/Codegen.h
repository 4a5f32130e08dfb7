//===- Codegen.h - LLVM dialect to objects, libraries, programs -*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The last step of the CPU target, after glint-lower-to-cpu:
//
//   LLVM dialect ──translate──▶ LLVM IR (+ glint_model_info, glint_forward,
//     glint_step) ──codegen for the target CPU──▶ object ──cc──▶ library
//     or standalone program (with the host runtime's main)
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_CODEGEN_H
#define GLINT_PASSES_CPU_CODEGEN_H

#include "passes/TargetOptions.h"
#include "runtime/io/ModelInfo.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mlir::glint::cpu {

/// What a target's runtime adds around the model's call in each packed
/// entry point (the CUDA target stages the arguments on the device).
struct EntryHooks {
  /// May replace the C-interface arguments: pointers to memref descriptors,
  /// the results' first, then those of `entry`'s inputs, states, weights.
  std::function<void(llvm::IRBuilder<> &, std::vector<llvm::Value *> &args,
                     const runtime::EntryInfo &entry)>
      beforeCall;
  std::function<void(llvm::IRBuilder<> &)> afterCall;
};

/// Translates an LLVM-dialect module to LLVM IR for `target` (its host
/// side), adds the model record and the packed entry points
/// (`glint_forward`, and `glint_step` when `info` has a step entry), and
/// optimises it (-O3).
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                  const runtime::ModelInfo &info, llvm::StringRef function,
                  const TargetOptions &target, const EntryHooks &hooks = {});

/// Writes `module` as an object file for `target`.
llvm::Error writeObject(llvm::Module &module, llvm::StringRef path,
                        const TargetOptions &target);

/// Object code of `module` linked into a shared library at `output`,
/// written atomically (no partial file on failure).
llvm::Error emitLibrary(llvm::Module &module, llvm::StringRef output,
                        const TargetOptions &target);

/// Object code of `module` linked with `runtime` (an archive providing the
/// allocation functions and whatever else the host code calls) and `flags`
/// into a shared library at `output`, written atomically.
llvm::Error emitLibraryWith(llvm::Module &module, llvm::StringRef output,
                            const TargetOptions &target,
                            llvm::StringRef runtime,
                            llvm::ArrayRef<std::string> flags);

/// Object code of `module` linked with the host runtime's main() into a
/// standalone executable at `output` (`./model --weights ... --tokens ...`),
/// written atomically.
llvm::Error emitExecutable(llvm::Module &module, llvm::StringRef output,
                           const TargetOptions &target);

} // namespace mlir::glint::cpu

#endif // GLINT_PASSES_CPU_CODEGEN_H
