//===- Passes.h - glint passes ----------------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_PASSES_H
#define GLINT_PASSES_PASSES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

#include <optional>
#include <string>

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// The f32 lanes of the host's widest vector unit (16 with AVX-512, 8 with
/// AVX, else 4): the default `vector-width` of the vectorising passes.
int64_t hostVectorWidth();

/// The threads compiled code gets from OpenMP when nothing sets them at run
/// time, estimated at compile time: OMP_NUM_THREADS if this process has it
/// (glint-bench and glint-run set it from --threads), else the host's
/// hardware threads.
int64_t defaultThreads();

/// Replaces every `glint.mixer` under `root` by the ops of its body (what
/// glint-inline-mixers does).
void inlineMixers(Operation *root);

/// Why `fn` cannot run step by step, naming the first op that cannot carry
/// its state across calls ("'glint.recurrence' at loc(...) runs backwards
/// ..."), or nothing when glint-expose-state can make its step function.
std::optional<std::string> findUnstreamableOp(func::FuncOp fn);

/// The work of glint-expose-state: adds `@stepName`, the streaming variant
/// of `fn`, next to it (see the pass description). Emits an error on the
/// offending op and fails if `fn` cannot stream.
FailureOr<func::FuncOp> exposeState(func::FuncOp fn, StringRef stepName);

} // namespace mlir::glint

#endif // GLINT_PASSES_PASSES_H
