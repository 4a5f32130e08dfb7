//===- Pipelines.cpp - glint pass pipelines -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Pipelines.h"
#include "passes/conversions/Passes.h"
#include "passes/cpu/Passes.h"
#include "passes/transforms/Passes.h"

#include "dialect/GlintDialect.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/OpenMPToLLVM/ConvertOpenMPToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void glint::buildGlintLowerToLoopsPipeline(OpPassManager &pm,
                                           const TargetOptions &target,
                                           const LoopsOptions &options) {
  // The attention form (after glint-to-attention): maps to loops first; a
  // model without map ops is left unchanged.
  ConvertGlintMapToLoopsOptions maps;
  maps.vectorWidth = target.vectorWidth;
  maps.channelParts = std::max<int64_t>(1, target.threads);
  pm.addNestedPass<func::FuncOp>(createConvertGlintMapToLoops(maps));
  pm.addPass(createGlintInlineMixers());
  // Matrix-state recurrences that gain from it in the chunked form, then
  // those with a recurrent vector form; the rest as scalar loops.
  GlintChunkRecurrenceOptions chunked;
  chunked.form = options.recurrenceForm;
  chunked.threads = target.threads;
  chunked.vectorWidth = target.vectorWidth;
  if (options.chunkSize > 0)
    chunked.chunkSize = options.chunkSize;
  pm.addPass(createGlintChunkRecurrence(chunked));
  // The backward ops of a gradient function (glint-differentiate): the
  // per-channel scans' in vector form, each with its forward scan (which
  // keeps the backward's checkpoints), the matrix-state ones' linear form
  // with vectors along the value axis, the rest as scalar loops.
  GlintVectorizeGradientsOptions gradients;
  gradients.vectorWidth = target.vectorWidth;
  gradients.chunks = std::max<int64_t>(target.threads, 2);
  pm.addNestedPass<func::FuncOp>(createGlintVectorizeGradients(gradients));
  GlintVectorizeRecurrenceOptions recurrences;
  recurrences.vectorWidth = target.vectorWidth;
  pm.addNestedPass<func::FuncOp>(createGlintVectorizeRecurrence(recurrences));
  pm.addNestedPass<func::FuncOp>(createGlintLowerRecurrence());
  GlintLowerGradientsOptions lowerGradients;
  lowerGradients.vectorWidth = target.vectorWidth;
  pm.addNestedPass<func::FuncOp>(createGlintLowerGradients(lowerGradients));
  // Convolutions along the sequence as vector loops over the channels.
  GlintVectorizeConvOptions convs;
  convs.vectorWidth = target.vectorWidth;
  pm.addNestedPass<func::FuncOp>(createGlintVectorizeConv(convs));
  // Matrix weights kept in 16 bits, widened where they are read.
  if (options.weightType != "f32") {
    GlintNarrowWeightsOptions narrow;
    narrow.dtype = options.weightType;
    pm.addPass(createGlintNarrowWeights(narrow));
  }
  pm.addNestedPass<func::FuncOp>(createConvertGlintToLinalg());
  // Element-wise arith/math on whole tensors (residual adds, gates) become
  // linalg.generic, which bufferizes and fuses.
  pm.addPass(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  // Matrix products (glint.linear) as register-blocked vector loops.
  GlintVectorizeMatmulOptions matmuls;
  matmuls.vectorWidth = target.vectorWidth;
  matmuls.prepare = options.prepareWeights;
  matmuls.threads = target.threads;
  pm.addPass(createGlintVectorizeMatmul(matmuls));
  // Element-wise maps (the scans' pre-activations among them) in their own
  // vector loops.
  GlintVectorizeElementwiseOptions elementwise;
  elementwise.vectorWidth = target.vectorWidth;
  pm.addNestedPass<func::FuncOp>(createGlintVectorizeElementwise(elementwise));
  pm.addPass(createCSEPass());
  pm.addPass(createGlintVerifyLowered());
}

void glint::buildGlintLowerToCpuPipeline(OpPassManager &pm,
                                         const TargetOptions &target,
                                         const LoopsOptions &options) {
  buildGlintLowerToLoopsPipeline(pm, target, options);
  pm.addPass(createGlintExternalizeWeights());
  buildGlintBuffersToLLVMPipeline(pm, target);
}

void glint::addGlintBufferizePass(OpPassManager &pm) {
  // Parts of an assembled tensor computed into their slices of it, so that
  // bufferization writes them in place.
  pm.addNestedPass<func::FuncOp>(createGlintWriteSlicesInPlace());
  // Tensors to buffers. Function results are returned as freshly allocated
  // buffers that the caller (the runtime) owns and frees.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  // Buffers whose layout bufferization cannot infer (the results of an
  // scf.if choosing between two forms of a recurrence, each a fresh
  // allocation) get the identity layout too: with the default, fully
  // dynamic one, every such result was copied before it was returned or
  // reshaped.
  bufferize.unknownTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
}

void glint::buildGlintBuffersToLLVMPipeline(OpPassManager &pm,
                                            const TargetOptions &target) {
  addGlintBufferizePass(pm);
  bufferization::buildBufferDeallocationPipeline(pm);

  // Buffers to loops to LLVM; contiguous copies as memcpy, other copies of
  // contiguous rows as vector loops.
  GlintLegalizeBuffersOptions legalize;
  legalize.contiguousAsMemcpy = true;
  legalize.copyRowsAsVectors = true;
  legalize.vectorWidth = target.vectorWidth;
  pm.addNestedPass<func::FuncOp>(createGlintLegalizeBuffers(legalize));
  pm.addPass(createConvertLinalgToLoopsPass());
  buildGlintParallelLoopsToLLVMPipeline(pm, target, /*flushDenormals=*/true);
}

void glint::buildGlintParallelLoopsToLLVMPipeline(OpPassManager &pm,
                                                  const TargetOptions &target,
                                                  bool flushDenormals) {
  // The recurrences' loops over (batch, head) run on OpenMP threads.
  pm.addPass(createForallToParallelLoopPass());
  // Small parallel loops run as plain loops on the calling thread (their
  // bounds' arithmetic already lowered from affine).
  pm.addPass(createLowerAffinePass());
  pm.addPass(createGlintGuardParallel());
  pm.addPass(createConvertSCFToOpenMPPass());
  // Subnormals flushed to zero in every entry point and OpenMP region (the
  // model runtime's MXCSR calls).
  if (flushDenormals)
    pm.addPass(createGlintFlushDenormals());
  pm.addPass(createGlintInlineAllocaScopes());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  GlintApproximateMathOptions approximate;
  approximate.avx512 = target.avx512;
  pm.addNestedPass<func::FuncOp>(createGlintApproximateMath(approximate));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  // Vector transfers become (masked) loads and stores, then LLVM vectors.
  pm.addPass(createConvertVectorToLLVMPass());
  // Buffers come from MLIR's generic allocation functions, which the
  // allocator linked into every compiled model provides (a cache of large
  // blocks: runtime/ModelAlloc.c).
  FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
  memrefOptions.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void glint::registerCompilerDialects(DialectRegistry &registry) {
  registry.insert<GlintDialect, affine::AffineDialect, arith::ArithDialect,
                  bufferization::BufferizationDialect, cf::ControlFlowDialect,
                  func::FuncDialect, index::IndexDialect, linalg::LinalgDialect,
                  LLVM::LLVMDialect, math::MathDialect, memref::MemRefDialect,
                  ml_program::MLProgramDialect, scf::SCFDialect,
                  omp::OpenMPDialect, tensor::TensorDialect, ub::UBDialect,
                  vector::VectorDialect>();
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  vector::registerBufferizableOpInterfaceExternalModels(registry);
  // Without these, buffer deallocation silently skips the bodies of
  // scf.forall (and arith.select of buffers): a buffer allocated per
  // parallel iteration would leak on every call.
  arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerConvertOpenMPToLLVMInterface(registry);
  registerOpenMPDialectTranslation(registry);
}

namespace {
/// The pipelines' options as glint-opt flags, e.g.
/// `-glint-lower-to-cpu="recurrence-form=chunked threads=2 vector-width=8"`;
/// the target's fields left unset keep the defaults given at registration.
struct PipelineFlags : public PassPipelineOptions<PipelineFlags> {
  Option<glint::RecurrenceForm> recurrenceForm{
      *this, "recurrence-form",
      llvm::cl::desc("How matrix-state recurrences are lowered"),
      llvm::cl::init(glint::RecurrenceForm::Auto),
      llvm::cl::values(clEnumValN(glint::RecurrenceForm::Auto, "auto",
                                  "chunked where it is measured to win"),
                       clEnumValN(glint::RecurrenceForm::Recurrent, "recurrent",
                                  "the recurrent forms only"),
                       clEnumValN(glint::RecurrenceForm::Chunked, "chunked",
                                  "the chunked form wherever it applies"))};
  Option<int64_t> chunkSize{
      *this, "chunk-size",
      llvm::cl::desc("Steps per chunk of the chunked form (0: "
                     "glint-chunk-recurrence's default)"),
      llvm::cl::init(0)};
  Option<std::string> weightType{
      *this, "weight-dtype",
      llvm::cl::desc("The linear layers' and embeddings' weights in memory: "
                     "f32 (default), bf16 or f16 (glint-narrow-weights)"),
      llvm::cl::init("f32")};
  Option<bool> prepareWeights{
      *this, "prepare-weights",
      llvm::cl::desc("Hold the products' weights as panels prepared when "
                     "they are bound (default), instead of packing them on "
                     "every call"),
      llvm::cl::init(true)};
  Option<int64_t> threads{
      *this, "threads",
      llvm::cl::desc("Threads the compiled code will run on (default: the "
                     "host's)")};
  Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("f32 lanes per vector: 4, 8 or 16 (default: the "
                     "host's)")};
  Option<bool> avx512{
      *this, "avx512",
      llvm::cl::desc("Whether AVX-512F may be used (default: the host's)")};

  glint::TargetOptions target(glint::TargetOptions defaults) const {
    if (threads.hasValue())
      defaults.threads = threads;
    if (vectorWidth.hasValue())
      defaults.vectorWidth = vectorWidth;
    if (avx512.hasValue())
      defaults.avx512 = avx512;
    return defaults;
  }
  glint::LoopsOptions loops() const {
    return {recurrenceForm, chunkSize, weightType, prepareWeights};
  }
};
} // namespace

void glint::registerGlintCpuPipelines(const TargetOptions &defaults) {
  PassPipelineRegistration<PipelineFlags>(
      "glint-lower-to-loops",
      "Lower glint model IR to loops on tensors (no glint op left)",
      [defaults](OpPassManager &pm, const PipelineFlags &flags) {
        buildGlintLowerToLoopsPipeline(pm, flags.target(defaults),
                                       flags.loops());
      });
  PassPipelineRegistration<PipelineFlags>(
      "glint-lower-to-cpu",
      "Lower glint model IR to the LLVM dialect for a CPU",
      [defaults](OpPassManager &pm, const PipelineFlags &flags) {
        buildGlintLowerToCpuPipeline(pm, flags.target(defaults), flags.loops());
      });
}
