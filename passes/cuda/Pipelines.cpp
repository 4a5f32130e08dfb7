//===- Pipelines.cpp - the CUDA target's pass pipelines -------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Pipelines.h"
#include "passes/Passes.h"
#include "passes/cpu/Pipelines.h"
#include "passes/cuda/Passes.h"

#include "mlir/Conversion/GPUCommon/GPUToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void glint::buildGlintLowerToGpuLoopsPipeline(OpPassManager &pm,
                                              const TargetOptions &target) {
  // The target-independent conversions, without the CPU's vector and
  // chunked forms: one GPU thread runs one channel's scalar recurrence.
  ConvertGlintMapToLoopsOptions maps;
  maps.vectorWidth = 1;
  maps.parallelColumns = false;
  maps.groupChannels = 0;
  pm.addNestedPass<func::FuncOp>(createConvertGlintMapToLoops(maps));
  pm.addPass(createGlintInlineMixers());
  GlintLowerRecurrenceOptions recurrences;
  recurrences.timeChunk = target.gpuTimeChunk;
  pm.addNestedPass<func::FuncOp>(createGlintLowerRecurrence(recurrences));
  pm.addNestedPass<func::FuncOp>(createConvertGlintToLinalg());
  pm.addPass(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createGlintVerifyLowered());
}

void glint::buildGlintBuffersToCudaPipeline(OpPassManager &pm,
                                            const TargetOptions &target) {
  // Tensors to buffers as on the CPU: results are fresh buffers the caller
  // owns (here from runtime/cuda).
  addGlintBufferizePass(pm);
  // A kernel cannot allocate: the small fixed buffers of a loop body (a
  // recurrence's state) live on the thread's stack.
  pm.addNestedPass<func::FuncOp>(createGlintStackKernelBuffers());
  bufferization::buildBufferDeallocationPipeline(pm);

  // Buffers to parallel loops to kernels; matrix products through cuBLAS
  // where the machine has it (the kernels stay as the fallback).
  pm.addNestedPass<func::FuncOp>(createGlintLegalizeBuffers());
  if (!target.gpuEmulate)
    pm.addPass(createGlintMatmulToBlas());
  pm.addPass(createConvertLinalgToParallelLoopsPass());
  pm.addPass(createForallToParallelLoopPass());
  pm.addPass(createGlintInlineAllocaScopes());
  pm.addPass(createCanonicalizerPass());
  GlintParallelToGpuOptions kernels;
  pm.addNestedPass<func::FuncOp>(createGlintParallelToGpu(kernels));
  if (target.gpuEmulate) {
    // The same kernels as loops on the host, then the CPU's way to LLVM.
    pm.addNestedPass<func::FuncOp>(createGlintGpuLaunchToLoops());
    buildGlintParallelLoopsToLLVMPipeline(pm, target);
    return;
  }
  pm.addPass(createGlintMarkDeviceMemory());
  pm.addPass(createGpuKernelOutliningPass());
  GpuNVVMAttachTargetOptions nvvm;
  nvvm.chip = target.gpuArch;
  nvvm.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(nvvm));

  // Both sides to the LLVM dialect: the kernels to NVVM (math through
  // libdevice), the host to calls of the mgpu* functions.
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  OpPassManager &kernelPm = pm.nest<gpu::GPUModuleOp>();
  kernelPm.addPass(createConvertGpuOpsToNVVMOps());
  kernelPm.addPass(createCanonicalizerPass());
  kernelPm.addPass(createCSEPass());
  kernelPm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
  memrefOptions.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
  pm.addPass(createGpuToLLVMConversionPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = target.gpuBinary;
  binary.toolkitPath = target.cudaToolkit;
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void glint::buildGlintLowerToCudaPipeline(OpPassManager &pm,
                                          const TargetOptions &target) {
  buildGlintLowerToGpuLoopsPipeline(pm, target);
  pm.addPass(createGlintExternalizeWeights());
  buildGlintBuffersToCudaPipeline(pm, target);
}

void glint::registerCudaDialects(DialectRegistry &registry) {
  registry.insert<gpu::GPUDialect, NVVM::NVVMDialect>();
  gpu::registerConvertGpuToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
}

namespace {
/// `-glint-lower-to-cuda="gpu-arch=sm_80 format=isa"`.
struct CudaPipelineFlags : public PassPipelineOptions<CudaPipelineFlags> {
  Option<std::string> gpuArch{
      *this, "gpu-arch",
      llvm::cl::desc("The GPU's compute capability (sm_80, sm_90, ...)")};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("What the kernels become: isa (PTX), bin (cubin) or "
                     "fatbin (cubin and PTX)")};
  Option<bool> emulate{
      *this, "emulate",
      llvm::cl::desc("Run the kernels as parallel loops on the host CPU")};
  Option<int64_t> timeChunk{
      *this, "time-chunk",
      llvm::cl::desc("Steps per chunk of the recurrences' time-parallel form "
                     "(0: one thread per channel for the whole sequence)")};

  glint::TargetOptions target(glint::TargetOptions defaults) const {
    defaults.kind = glint::TargetOptions::Kind::Cuda;
    if (gpuArch.hasValue())
      defaults.gpuArch = gpuArch;
    if (format.hasValue())
      defaults.gpuBinary = format;
    if (emulate.hasValue())
      defaults.gpuEmulate = emulate;
    if (timeChunk.hasValue())
      defaults.gpuTimeChunk = timeChunk;
    return defaults;
  }
};
} // namespace

void glint::registerGlintCudaPipelines(const TargetOptions &defaults) {
  PassPipelineRegistration<CudaPipelineFlags>(
      "glint-lower-to-gpu-loops",
      "Lower glint model IR to the loops on tensors a GPU thread runs",
      [defaults](OpPassManager &pm, const CudaPipelineFlags &flags) {
        buildGlintLowerToGpuLoopsPipeline(pm, flags.target(defaults));
      });
  PassPipelineRegistration<CudaPipelineFlags>(
      "glint-lower-to-cuda",
      "Lower glint model IR to host code in the LLVM dialect and kernels for "
      "an NVIDIA GPU",
      [defaults](OpPassManager &pm, const CudaPipelineFlags &flags) {
        buildGlintLowerToCudaPipeline(pm, flags.target(defaults));
      });
}
