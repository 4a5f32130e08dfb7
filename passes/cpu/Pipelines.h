//===- Pipelines.h - glint pass pipelines -----------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The named pipelines, built by functions so that glint-opt, glint-compile
// and the tests run exactly the same passes.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_PIPELINES_H
#define GLINT_PASSES_CPU_PIPELINES_H

#include "passes/TargetOptions.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace mlir::glint {

/// What a caller may choose about the lowering to loops, beyond the target.
struct LoopsOptions {
  /// How matrix-state recurrences are lowered (glint-chunk-recurrence's
  /// `form`).
  RecurrenceForm recurrenceForm = RecurrenceForm::Auto;
  /// Steps per chunk of the chunked form (0: the pass's default).
  int64_t chunkSize = 0;
  /// The element type of the linear layers' and embeddings' weights in
  /// memory: "f32", or "bf16" / "f16" (glint-narrow-weights; CPU only).
  std::string weightType = "f32";
  /// Whether the products' weights are held as panels that the runtime
  /// prepares when it binds them (glint-vectorize-matmul's
  /// prepare-weights), instead of packed on every call.
  bool prepareWeights = true;
};

/// glint model IR → loops on tensors with no glint op left (the "scan" stage
/// of glint-compile): inline mixers, lower recurrences, lower the other
/// layers to linalg, clean up, verify.
void buildGlintLowerToLoopsPipeline(OpPassManager &pm,
                                    const TargetOptions &target,
                                    const LoopsOptions &options = {});

/// After glint-externalize-weights (which fixes the ABI of compiled models):
/// tensors become buffers, loops become the LLVM dialect.
void buildGlintBuffersToLLVMPipeline(OpPassManager &pm,
                                     const TargetOptions &target);

/// One-shot bufferization as every target runs it: across function
/// boundaries, identity layouts, results returned as fresh buffers.
void addGlintBufferizePass(OpPassManager &pm);

/// The end of buildGlintBuffersToLLVMPipeline: loops on buffers (scf.forall
/// and scf.parallel on OpenMP threads) to the LLVM dialect. With
/// `flushDenormals` (the CPU's, whose models link runtime/host/ModelAlloc.c),
/// entry points and OpenMP regions run with subnormals flushed to zero
/// (glint-flush-denormals).
void buildGlintParallelLoopsToLLVMPipeline(OpPassManager &pm,
                                           const TargetOptions &target,
                                           bool flushDenormals = false);

/// All of it: loops, weights as arguments, buffers, LLVM:
/// `glint-lower-to-cpu`.
void buildGlintLowerToCpuPipeline(OpPassManager &pm,
                                  const TargetOptions &target,
                                  const LoopsOptions &options = {});

/// Every dialect and interface model a glint compiler tool needs: the model
/// dialects, and those the lowering passes through (bufferization models,
/// conversions to LLVM, translation to LLVM IR).
void registerCompilerDialects(DialectRegistry &registry);

/// Registers the pipelines as glint-opt flags; what their options leave
/// unset comes from `defaults` (glint-opt passes the host's).
void registerGlintCpuPipelines(const TargetOptions &defaults);

} // namespace mlir::glint

#endif // GLINT_PASSES_CPU_PIPELINES_H
