//===- Compiler.h - glint model IR to native code ---------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The compile driver: the stages of glint-compile, as a library that
// glint-bench, glint-explain and the tests use too:
//
//   glint IR ──(attention form, step function)──▶ glint IR
//     ──lower-to-loops──▶ scan IR ──buffers-to-LLVM──▶ LLVM dialect
//     ──passes/cpu/Codegen──▶ LLVM IR ──▶ object ──▶ library or program
//
// Every stage is built for one TargetOptions value (compiler/Target.h makes
// the host's).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_COMPILER_COMPILER_H
#define GLINT_COMPILER_COMPILER_H

#include "compiler/Target.h"
#include "passes/cpu/Pipelines.h"
#include "runtime/io/ModelInfo.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <memory>

namespace mlir::glint::compiler {

/// How far to compile; each stage can be printed (`-emit=`).
/// (Kernels: the CUDA target's PTX.)
enum class Stage { Glint, Scan, LLVM, Kernels, Object, Library, Executable };

/// Whether to add the streaming step entry (glint-expose-state): `Auto`
/// adds it to models over token ids that can stream and leaves it out
/// otherwise; `On` requires it (an error names the layer that cannot
/// stream); `Off` never adds it.
enum class StepMode { Auto, On, Off };

/// `glint-compile --attention`: glint-to-attention runs on the entry
/// function before lowering, so that it returns the logits and then one
/// `[B, L, L]` map per token-mixing layer (recorded as ModelInfo::attention).
/// A layer the lowering cannot handle yet fails compilation, naming the op.
struct AttentionOptions {
  /// Empty: no attention maps. Otherwise unified, scan-only, no-conv,
  /// no-gate or no-act.
  std::string formulation;
  /// mean, mean_abs or sum (full would not be [B, L, L]).
  std::string aggregate = "mean_abs";
  /// The attribution method's maps instead (glint-to-attention
  /// attribution=true): the forward also takes each layer's output
  /// cotangent, after its inputs, and returns per layer the channel mean of
  /// the positive part of A ⊙ ∂s/∂A; `aggregate` is then not used.
  bool attribution = false;

  bool enabled() const { return !formulation.empty(); }
};

/// Token-id inputs of `function` in glint IR: argument index → vocabulary
/// size (from the glint.embedding that reads it).
llvm::DenseMap<unsigned, int64_t> tokenLimits(ModuleOp module,
                                              llvm::StringRef function);

/// The interface of `function` after glint-externalize-weights: arguments
/// marked `glint.weight` are weights, those marked `glint.state` states
/// (with the results marked so), the others inputs, in that order. `entry`
/// is the symbol of its packed entry point.
llvm::Expected<runtime::EntryInfo>
collectEntryInfo(ModuleOp module, llvm::StringRef function,
                 const llvm::DenseMap<unsigned, int64_t> &limits,
                 llvm::StringRef entry);

/// Lowers glint IR in place to the scan stage, then (if `stage` is later)
/// to the LLVM dialect, filling `info` on the way. With `step` (see
/// StepMode) the module gains `@<function>_step` first, recorded as the
/// step entry. `configure` may adjust each pass manager (e.g. from
/// command-line options); `loops` are the choices of the lowering to loops
/// (the form of matrix-state recurrences), `target` what the code is
/// generated for. With `gradient` the module gains `@<function>_grad`
/// (glint-differentiate), recorded as the gradient entry (CPU targets
/// only). Diagnostics go to the context's handler.
llvm::Error
lowerModule(ModuleOp module, llvm::StringRef function, Stage stage,
            runtime::ModelInfo &info,
            const std::function<void(PassManager &)> &configure = nullptr,
            StepMode step = StepMode::Auto,
            const AttentionOptions &attention = {},
            const LoopsOptions &loops = {},
            const TargetOptions &target = hostTarget(), bool gradient = false);

/// An LLVM-dialect module (lowerModule's Stage::LLVM) as LLVM IR with the
/// model record and entry points, for `target` (cpu:: or cuda::
/// translateToLLVMIR, by where the code runs).
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                  const runtime::ModelInfo &info, llvm::StringRef function,
                  const TargetOptions &target);

/// `module` linked into a shared library for `target` at `output`, written
/// atomically (cpu:: or cuda::emitLibrary, by where the code runs).
llvm::Error emitLibrary(llvm::Module &module, llvm::StringRef output,
                        const TargetOptions &target);

/// glint IR to a shared library for `target` at `output`, written
/// atomically (no partial file on failure).
llvm::Error compileToLibrary(ModuleOp module, llvm::StringRef function,
                             llvm::StringRef output,
                             StepMode step = StepMode::Auto,
                             const AttentionOptions &attention = {},
                             const LoopsOptions &loops = {},
                             const TargetOptions &target = hostTarget(),
                             bool gradient = false);

} // namespace mlir::glint::compiler

#endif // GLINT_COMPILER_COMPILER_H
