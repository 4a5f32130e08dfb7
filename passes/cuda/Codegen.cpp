//===- Codegen.cpp - CUDA host code to libraries --------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Codegen.h"
#include "passes/cpu/Codegen.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "llvm/IR/IRBuilder.h"

using namespace mlir;
using namespace mlir::glint;

/// Bytes per element of an interface dtype.
static int64_t elementBytes(llvm::StringRef dtype) {
  return dtype == "f64" || dtype == "i64" ? 8 : 4;
}

llvm::Expected<std::unique_ptr<llvm::Module>>
cuda::translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                        const runtime::ModelInfo &info, StringRef function,
                        const TargetOptions &target) {
  cpu::EntryHooks hooks;
  // Each descriptor is copied (the caller's stays as it was) and pointed at
  // device-visible data: glint_cuda_stage(descriptor, rank, element bytes,
  // kind), kind 1 for weights (kept across calls), 0 for the rest.
  hooks.beforeCall = [](llvm::IRBuilder<> &b, std::vector<llvm::Value *> &args,
                        const runtime::EntryInfo &entry) {
    llvm::Module *m = b.GetInsertBlock()->getModule();
    auto *ptr = b.getPtrTy();
    llvm::FunctionCallee stage =
        m->getOrInsertFunction("glint_cuda_stage", b.getVoidTy(), ptr,
                               b.getInt32Ty(), b.getInt64Ty(), b.getInt32Ty());
    std::vector<std::pair<const runtime::TensorSpec *, int>> specs;
    for (const auto &spec : entry.inputs)
      specs.push_back({&spec, 0});
    for (const auto &spec : entry.states)
      specs.push_back({&spec, 0});
    for (const auto &spec : entry.weights)
      specs.push_back({&spec, 1});
    for (auto [i, spec] : llvm::enumerate(specs)) {
      int64_t rank = spec.first->shape.size();
      uint64_t bytes = 8 * (3 + 2 * rank);
      llvm::Value *copy =
          b.CreateAlloca(llvm::ArrayType::get(b.getInt8Ty(), bytes));
      b.CreateMemCpy(copy, llvm::MaybeAlign(8), args[i + 1],
                     llvm::MaybeAlign(8), bytes);
      b.CreateCall(stage, {copy, b.getInt32(rank),
                           b.getInt64(elementBytes(spec.first->dtype)),
                           b.getInt32(spec.second)});
      args[i + 1] = copy;
    }
  };
  hooks.afterCall = [](llvm::IRBuilder<> &b) {
    llvm::Module *m = b.GetInsertBlock()->getModule();
    b.CreateCall(m->getOrInsertFunction("glint_cuda_end_call", b.getVoidTy()));
  };
  // glint-mark-device-memory's verdict, as the symbol runtime/cuda reads.
  auto onDevice = module->getAttrOfType<BoolAttr>("glint.device_memory");
  module->removeAttr("glint.device_memory");
  auto translated =
      cpu::translateToLLVMIR(module, context, info, function, target, hooks);
  if (!translated)
    return translated.takeError();
  auto *flag = new llvm::GlobalVariable(
      **translated, llvm::Type::getInt32Ty(context), /*isConstant=*/true,
      llvm::GlobalValue::ExternalLinkage,
      llvm::ConstantInt::get(llvm::Type::getInt32Ty(context),
                             onDevice && onDevice.getValue() ? 1 : 0),
      "glint_cuda_device_memory");
  flag->setVisibility(llvm::GlobalValue::HiddenVisibility);
  return translated;
}

llvm::Expected<std::string> cuda::kernelAssembly(ModuleOp module) {
  std::string ptx;
  bool found = false;
  for (auto binary : module.getOps<gpu::BinaryOp>())
    for (Attribute attr : binary.getObjects()) {
      auto object = dyn_cast<gpu::ObjectAttr>(attr);
      if (!object || object.getFormat() != gpu::CompilationTarget::Assembly)
        return llvm::createStringError(
            "the kernels of @" + binary.getSymName() +
            " were not compiled to PTX (use --gpu-binary=isa)");
      ptx += object.getObject().getValue();
      found = true;
    }
  if (!found)
    return llvm::createStringError("the model has no GPU kernel");
  return ptx;
}

llvm::Error cuda::emitLibrary(llvm::Module &module, StringRef output,
                              const TargetOptions &target) {
  return cpu::emitLibraryWith(module, output, target, GLINT_CUDA_MODEL_LIB,
                              {"-ldl", "-lpthread", "-lm"});
}
