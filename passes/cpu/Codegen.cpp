//===- Codegen.cpp - LLVM dialect to objects, libraries, programs ---------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Codegen.h"
#include "passes/transforms/Passes.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/IntrinsicsX86.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::glint;
using llvm::Error;
using llvm::Expected;

/// LLVM's target machine for `target` (its triple, CPU and features).
static Expected<std::unique_ptr<llvm::TargetMachine>>
targetMachine(const TargetOptions &target) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(target.triple);
  std::string error;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return llvm::createStringError("no LLVM target for " + triple.str() + ": " +
                                   error);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, target.cpu, target.features, options, llvm::Reloc::PIC_,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return llvm::createStringError("cannot create a target machine for " +
                                   triple.str());
  return machine;
}

Expected<std::unique_ptr<llvm::Module>>
cpu::translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                       const runtime::ModelInfo &info, StringRef function,
                       const TargetOptions &target, const EntryHooks &hooks) {
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "glint-model");
  if (!llvmModule)
    return llvm::createStringError("translation to LLVM IR failed");
  auto machine = targetMachine(target);
  if (!machine)
    return machine.takeError();
  llvmModule->setTargetTriple((*machine)->getTargetTriple());
  llvmModule->setDataLayout((*machine)->createDataLayout());

  // glint_model_info: a pointer to the JSON record.
  std::string record;
  llvm::raw_string_ostream os(record);
  os << runtime::toJSON(info);
  llvm::Constant *text =
      llvm::ConstantDataArray::getString(context, record, /*AddNull=*/true);
  auto *textGlobal = new llvm::GlobalVariable(
      *llvmModule, text->getType(), /*isConstant=*/true,
      llvm::GlobalValue::PrivateLinkage, text, "glint_model_info_text");
  auto *ptrType = llvm::PointerType::getUnqual(context);
  new llvm::GlobalVariable(*llvmModule, ptrType, /*isConstant=*/true,
                           llvm::GlobalValue::ExternalLinkage, textGlobal,
                           "glint_model_info");

  // glint_forward(void **args), glint_step(void **args): one pointer per
  // C-interface parameter.
  auto addEntry = [&](StringRef fn, const runtime::EntryInfo &spec) -> Error {
    llvm::Function *ciface =
        llvmModule->getFunction(("_mlir_ciface_" + fn).str());
    if (!ciface)
      return llvm::createStringError("no C interface for @" + fn);
    size_t expected =
        1 + spec.inputs.size() + spec.states.size() + spec.weights.size();
    if (ciface->arg_size() != expected)
      return llvm::createStringError(llvm::formatv(
          "internal error: the C interface of @{0} takes {1} arguments, the "
          "model record describes {2}",
          fn, ciface->arg_size(), expected));
    auto *entryType = llvm::FunctionType::get(llvm::Type::getVoidTy(context),
                                              {ptrType}, false);
    auto *entry = llvm::Function::Create(
        entryType, llvm::GlobalValue::ExternalLinkage, spec.entry, *llvmModule);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(context, "entry", entry));
    std::vector<llvm::Value *> args;
    for (unsigned i = 0; i < ciface->arg_size(); ++i) {
      llvm::Value *slot = b.CreateConstGEP1_64(ptrType, entry->getArg(0), i);
      args.push_back(b.CreateLoad(ptrType, slot));
    }
    // x86: flush denormals to zero (FTZ) and treat denormal inputs as zero
    // (DAZ) for the duration of the call, as ML runtimes do. Decaying
    // recurrence states (the attention form's columns far from the
    // diagonal) otherwise run through denormals, which cost ~100 cycles per
    // operation here: 13x slower at L = 1024 (glint-bench
    // attn-map-mamba1). Only values below 1.2e-38 change. The caller's
    // MXCSR is restored.
    llvm::Value *saved = nullptr;
    bool x86 = llvm::Triple(llvmModule->getTargetTriple()).isX86();
    if (x86) {
      saved = b.CreateAlloca(b.getInt32Ty());
      llvm::Value *flushed = b.CreateAlloca(b.getInt32Ty());
      b.CreateIntrinsic(llvm::Intrinsic::x86_sse_stmxcsr, {}, {saved});
      llvm::Value *mode = b.CreateLoad(b.getInt32Ty(), saved);
      b.CreateStore(b.CreateOr(mode, b.getInt32(0x8040)), flushed);
      b.CreateIntrinsic(llvm::Intrinsic::x86_sse_ldmxcsr, {}, {flushed});
    }
    if (hooks.beforeCall)
      hooks.beforeCall(b, args, spec);
    b.CreateCall(ciface, args);
    if (hooks.afterCall)
      hooks.afterCall(b);
    if (x86)
      b.CreateIntrinsic(llvm::Intrinsic::x86_sse_ldmxcsr, {}, {saved});
    b.CreateRetVoid();
    return Error::success();
  };
  if (Error e = addEntry(function, info))
    return std::move(e);
  if (info.step)
    if (Error e = addEntry(stepFunctionName(function), *info.step))
      return std::move(e);
  if (info.gradient)
    if (Error e = addEntry(gradientFunctionName(function), *info.gradient))
      return std::move(e);

  auto optimize = makeOptimizingTransformer(3, 0, machine->get());
  if (Error e = optimize(llvmModule.get()))
    return std::move(e);
  return llvmModule;
}

Error cpu::writeObject(llvm::Module &module, StringRef path,
                       const TargetOptions &target) {
  auto machine = targetMachine(target);
  if (!machine)
    return machine.takeError();
  std::error_code ec;
  llvm::ToolOutputFile out(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(path + ": " + ec.message());
  llvm::legacy::PassManager codegen;
  if ((*machine)->addPassesToEmitFile(codegen, out.os(), nullptr,
                                      llvm::CodeGenFileType::ObjectFile))
    return llvm::createStringError("the target cannot emit object files");
  codegen.run(module);
  out.os().flush();
  out.keep();
  return Error::success();
}

/// Runs a compiler driver to link `object` into `output`: the driver gets
/// `-o output object runtime` followed by `extra`.
static Error link(StringRef driver, StringRef object, StringRef output,
                  StringRef runtime, ArrayRef<std::string> extra) {
  auto program = llvm::sys::findProgramByName(driver);
  if (!program)
    return llvm::createStringError("cannot link: no compiler driver '" +
                                   driver + "' on PATH (install g++)");
  // The model's runtime (runtime/host/ModelAlloc.c on the CPU) comes right
  // after its object: it defines the allocation functions the object calls.
  std::vector<std::string> argv = {*program, "-o", output.str(), object.str(),
                                   runtime.str()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<StringRef> args(argv.begin(), argv.end());
  std::string error;
  if (llvm::sys::ExecuteAndWait(*program, args, std::nullopt, {}, 0, 0, &error))
    return llvm::createStringError("linking " + output + " failed" +
                                   (error.empty() ? "" : ": " + error));
  return Error::success();
}

/// Writes `module` as an object to a temporary file and links it into
/// `output` with `linkObject`. The result is renamed into place at the end,
/// so a failure leaves no file that looks complete.
static Error emitLinked(
    llvm::Module &module, StringRef output, const TargetOptions &target,
    llvm::function_ref<Error(StringRef object, StringRef output)> linkObject) {
  SmallString<128> object;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("glint-model", "o", object))
    return llvm::createStringError("cannot create a temporary file: " +
                                   ec.message());
  llvm::FileRemover removeObject(object);
  if (Error e = cpu::writeObject(module, object, target))
    return e;
  std::string partial = (output + ".partial").str();
  llvm::FileRemover removePartial(partial);
  if (Error e = linkObject(object, partial))
    return e;
  if (std::error_code ec = llvm::sys::fs::rename(partial, output))
    return llvm::createStringError(output + ": " + ec.message());
  return Error::success();
}

/// Parallel loops call LLVM's OpenMP runtime.
static const std::vector<std::string> &openMPFlags() {
  static const std::vector<std::string> flags = {
      "-L" GLINT_LLVM_LIBRARY_DIR, "-Wl,-rpath," GLINT_LLVM_LIBRARY_DIR,
      "-lomp", "-lm"};
  return flags;
}

Error cpu::emitLibraryWith(llvm::Module &module, StringRef output,
                           const TargetOptions &target, StringRef runtime,
                           ArrayRef<std::string> flags) {
  std::vector<std::string> extra = {"-shared"};
  extra.insert(extra.end(), flags.begin(), flags.end());
  return emitLinked(module, output, target,
                    [&](StringRef object, StringRef out) {
                      return link("cc", object, out, runtime, extra);
                    });
}

Error cpu::emitLibrary(llvm::Module &module, StringRef output,
                       const TargetOptions &target) {
  return emitLibraryWith(module, output, target, GLINT_MODEL_ALLOC_LIB,
                         openMPFlags());
}

Error cpu::emitExecutable(llvm::Module &module, StringRef output,
                          const TargetOptions &target) {
  // The runtime archives and LLVM's library directory are those of this
  // build (see passes/cpu/CMakeLists.txt).
  return emitLinked(
      module, output, target, [](StringRef object, StringRef out) {
        std::vector<std::string> extra = {
            GLINT_MODEL_MAIN_LIB, GLINT_RUNTIME_LIB, GLINT_RUNTIME_IO_LIB,
            "-lLLVM", "-ldl"};
        extra.insert(extra.end(), openMPFlags().begin(), openMPFlags().end());
#ifdef GLINT_SANITIZER_LINK_FLAG
        // A sanitized build's archives call the sanitizer runtimes: link them
        // with the compiler that built them (passes/cpu/CMakeLists.txt).
        extra.push_back(GLINT_SANITIZER_LINK_FLAG);
#endif
        return link(GLINT_PROGRAM_LINKER, object, out, GLINT_MODEL_ALLOC_LIB,
                    extra);
      });
}
