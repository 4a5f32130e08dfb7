//===- Passes.h - the CPU target's passes ----------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The passes of the CPU target: vector forms of the recurrences, the
// convolution, the matrix products and the element-wise maps; the chunked
// form of matrix-state recurrences; polynomial exp; buffer legalisation.
// Every choice that depends on the machine (vector width, AVX-512, threads)
// is a pass option, set by the pipeline from a TargetOptions value; no pass
// asks the host.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_PASSES_H
#define GLINT_PASSES_CPU_PASSES_H

#include "passes/TargetOptions.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::glint {

#define GEN_PASS_DECL
#include "passes/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/cpu/Passes.h.inc"

/// Checks a CPU pass's `vector-width` option: f32 lanes, a power of two
/// from 1 to 64; otherwise emits an error naming `pass` on `op`.
inline LogicalResult checkVectorWidth(Operation *op, StringRef pass,
                                      int64_t width) {
  if (width >= 1 && width <= 64 && (width & (width - 1)) == 0)
    return success();
  return op->emitError() << pass
                         << ": vector-width must be a power of two from 1 to "
                            "64 (f32 lanes), not "
                         << width;
}

} // namespace mlir::glint

#endif // GLINT_PASSES_CPU_PASSES_H
