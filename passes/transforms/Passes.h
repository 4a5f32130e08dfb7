//===- Passes.h - glint to glint rewrites ----------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Target-independent rewrites of glint IR into glint IR: mixers inlined,
// weights bound as arguments, the streaming step function, the attention
// form, the model summary.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_TRANSFORMS_PASSES_H
#define GLINT_PASSES_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

#include <optional>
#include <string>

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/transforms/Passes.h.inc"

/// Replaces every `glint.mixer` under `root` by the ops of its body (what
/// glint-inline-mixers does).
void inlineMixers(Operation *root);

/// Why `fn` cannot run step by step, naming the first op that cannot carry
/// its state across calls ("'glint.recurrence' at loc(...) runs backwards
/// ..."), or nothing when glint-expose-state can make its step function.
std::optional<std::string> findUnstreamableOp(func::FuncOp fn);

/// The name glint-compile gives the step function of `function`
/// (`<function>_step`), the compiled library's `glint_step` entry.
std::string stepFunctionName(StringRef function);

/// The work of glint-expose-state: adds `@stepName`, the streaming variant
/// of `fn`, next to it (see the pass description). Emits an error on the
/// offending op and fails if `fn` cannot stream.
FailureOr<func::FuncOp> exposeState(func::FuncOp fn, StringRef stepName);

/// The default name of the gradient function of `function`
/// (`<function>_grad`).
std::string gradientFunctionName(StringRef function);

/// Adds `name`, the reverse-mode gradient function of `forward` (see
/// glint-differentiate), next to it in its module; fails with a diagnostic
/// naming the op without a backward rule, leaving the module unchanged.
FailureOr<func::FuncOp> differentiate(func::FuncOp forward, StringRef name);

/// The value a model's layers start from, which gradient methods attribute
/// to: the result of its one `glint.embedding` lookup, else the op traced
/// "hidden_states.0" (an image model's patch embeddings with the class token
/// and position embeddings, as the importers mark them); null if neither.
Value findInputEmbeddings(func::FuncOp forward);

/// Makes `embeddings`, a value of `forward`'s body, an argument after the
/// others: every use reads the new argument, and what computed it (now
/// dead) is erased. The earlier arguments stay (they may still give sizes).
BlockArgument embeddingsAsArgument(func::FuncOp forward, Value embeddings);

} // namespace mlir::glint

#endif // GLINT_PASSES_TRANSFORMS_PASSES_H
