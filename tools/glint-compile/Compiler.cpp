//===- Compiler.cpp - glint model IR to native code -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "tools/glint-compile/Compiler.h"

#include "dialect/GlintOps.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
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
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;
using namespace mlir::glint;
using llvm::Error;
using llvm::Expected;

llvm::DenseMap<unsigned, int64_t>
compiler::tokenLimits(ModuleOp module, StringRef function) {
  llvm::DenseMap<unsigned, int64_t> limits;
  auto fn = module.lookupSymbol<func::FuncOp>(function);
  if (!fn)
    return limits;
  fn.walk([&](EmbeddingOp embedding) {
    auto arg = dyn_cast<BlockArgument>(embedding.getIds());
    int64_t vocab = embedding.getTable().getType().getDimSize(0);
    if (!arg || arg.getOwner()->getParentOp() != fn ||
        ShapedType::isDynamic(vocab))
      return;
    int64_t &limit = limits[arg.getArgNumber()];
    limit = limit ? std::min(limit, vocab) : vocab;
  });
  return limits;
}

static Expected<std::string> dtypeOf(Type type) {
  if (type.isF32())
    return std::string("f32");
  if (type.isF64())
    return std::string("f64");
  if (type.isInteger(64) || type.isIndex())
    return std::string("i64");
  if (type.isInteger(32))
    return std::string("i32");
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "element type " << type
     << " is not supported at the interface of a compiled model";
  return llvm::createStringError(s);
}

static Expected<runtime::TensorSpec> specOf(Type type, std::string name) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return llvm::createStringError("interface value '" + name +
                                   "' is not a ranked tensor");
  auto dtype = dtypeOf(tensor.getElementType());
  if (!dtype)
    return dtype.takeError();
  runtime::TensorSpec spec;
  spec.name = std::move(name);
  spec.dtype = *dtype;
  for (int64_t d : tensor.getShape())
    spec.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  return spec;
}

std::string compiler::stepFunctionName(StringRef function) {
  return (function + "_step").str();
}

Expected<runtime::EntryInfo>
compiler::collectEntryInfo(ModuleOp module, StringRef function,
                           const llvm::DenseMap<unsigned, int64_t> &limits,
                           StringRef entry) {
  auto fn = module.lookupSymbol<func::FuncOp>(function);
  if (!fn)
    return llvm::createStringError("the module has no function @" + function);
  runtime::EntryInfo info;
  info.entry = entry.str();
  // The ABI passes inputs, states, weights in this order.
  enum { Input, State, Weight } last = Input;
  for (unsigned i = 0; i < fn.getNumArguments(); ++i) {
    auto weight = fn.getArgAttrOfType<StringAttr>(i, "glint.weight");
    auto state = fn.getArgAttrOfType<StringAttr>(i, "glint.state");
    auto spec =
        specOf(fn.getArgumentTypes()[i], weight  ? weight.str()
                                         : state ? state.str()
                                                 : "input" + std::to_string(i));
    if (!spec)
      return spec.takeError();
    auto kind = weight ? Weight : state ? State : Input;
    if (kind < last)
      return llvm::createStringError(llvm::formatv(
          "@{0}: argument #{1} is an {2} after a {3}; the interface takes "
          "inputs, then states, then weights",
          function, i, kind == Input ? "input" : "state",
          last == Weight ? "weight" : "state"));
    last = kind;
    if (weight) {
      info.weights.push_back(std::move(*spec));
    } else if (state) {
      info.states.push_back(std::move(*spec));
    } else {
      spec->limit = limits.lookup(i);
      info.inputs.push_back(std::move(*spec));
    }
  }
  // One result, or (glint-to-attention) one plus a map per layer.
  auto layers = fn->getAttrOfType<ArrayAttr>("glint.attention_layers");
  size_t expected = 1 + (layers ? layers.size() : 0);
  size_t results = fn.getNumResults() - info.states.size();
  if (fn.getNumResults() < info.states.size() || results != expected)
    return llvm::createStringError(llvm::formatv(
        "@{0} returns {1} values and carries {2} states; compiled models "
        "return exactly {3} result(s) (and the next states)",
        function, fn.getNumResults(), info.states.size(), expected));
  for (size_t r = 0; r < results; ++r) {
    std::string name = "result";
    if (r > 0) {
      auto label = dyn_cast<StringAttr>(layers[r - 1]);
      name = "attention:" + (label ? label.str() : std::to_string(r - 1));
    }
    auto result = specOf(fn.getResultTypes()[r], std::move(name));
    if (!result)
      return result.takeError();
    info.results.push_back(std::move(*result));
  }
  // The next states come back in the order they went in.
  for (auto [i, state] : llvm::enumerate(info.states)) {
    unsigned r = results + i;
    auto name = fn.getResultAttrOfType<StringAttr>(r, "glint.state");
    auto spec = specOf(fn.getResultTypes()[r], state.name);
    if (!spec)
      return spec.takeError();
    if (!name || name.getValue() != state.name || spec->shape != state.shape ||
        spec->dtype != state.dtype)
      return llvm::createStringError(llvm::formatv(
          "@{0}: result #{1} is not the next value of state '{2}'", function, r,
          state.name));
  }
  return info;
}

/// Runs glint-to-attention on `fn` alone, with the aggregate a compiled
/// model can return (one [B, L, L] map per layer).
static Error toAttention(func::FuncOp fn,
                         const compiler::AttentionOptions &attention,
                         const std::function<void(PassManager &)> &configure) {
  if (attention.aggregate == "full")
    return llvm::createStringError(
        "--attention-aggregate=full is not supported by compiled models "
        "(each layer's result must be [B, L, L]); use mean, mean_abs or sum");
  GlintToAttentionOptions options;
  options.formulation = attention.formulation;
  options.aggregate = attention.aggregate;
  PassManager pm(fn.getContext(), func::FuncOp::getOperationName());
  pm.addPass(createGlintToAttention(options));
  if (configure)
    configure(pm);
  if (failed(pm.run(fn)))
    return llvm::createStringError(
        "rewriting @" + fn.getSymName() +
        " into its attention form failed (see the diagnostics above)");
  auto layers = fn->getAttrOfType<ArrayAttr>("glint.attention_layers");
  if (!layers || layers.empty())
    return llvm::createStringError(
        "@" + fn.getSymName() +
        " has no token-mixing layer: --attention has no map to return");
  return Error::success();
}

Error compiler::lowerModule(ModuleOp module, StringRef function, Stage stage,
                            runtime::ModelInfo &info,
                            const std::function<void(PassManager &)> &configure,
                            StepMode step, const AttentionOptions &attention,
                            const LoopsOptions &loops) {
  auto fn = module.lookupSymbol<func::FuncOp>(function);
  if (!fn)
    return llvm::createStringError("the module has no function @" + function);
  std::optional<runtime::AttentionInfo> attentionInfo;
  if (attention.enabled()) {
    if (Error e = toAttention(fn, attention, configure))
      return e;
    attentionInfo.emplace();
    attentionInfo->formulation = attention.formulation;
    attentionInfo->aggregate = attention.aggregate;
    for (Attribute label :
         fn->getAttrOfType<ArrayAttr>("glint.attention_layers"))
      attentionInfo->layers.push_back(cast<StringAttr>(label).str());
    // The step entry returns logits only; the maps are of a whole sequence.
    if (step == StepMode::On)
      return llvm::createStringError(
          "--step=on and --attention cannot be combined: the attention maps "
          "are those of the whole sequence, which the step entry never sees");
    step = StepMode::Off;
  }
  if (stage == Stage::Glint)
    return Error::success();
  // A step entry for models over token ids [batch, seq] that can stream.
  bool withStep = step == StepMode::On;
  if (step == StepMode::Auto) {
    auto ids = fn.getNumArguments()
                   ? dyn_cast<RankedTensorType>(fn.getArgumentTypes()[0])
                   : RankedTensorType();
    withStep = ids && ids.getRank() == 2 &&
               isa<IntegerType>(ids.getElementType()) &&
               !findUnstreamableOp(fn);
  }
  std::string stepName = stepFunctionName(function);
  if (withStep && failed(exposeState(fn, stepName)))
    return llvm::createStringError(
        "cannot add a step entry for generation (see the diagnostics above)");
  auto limits = tokenLimits(module, function);
  auto stepLimits = withStep ? tokenLimits(module, stepName)
                             : llvm::DenseMap<unsigned, int64_t>();
  PassManager toScan(module.getContext());
  buildGlintLowerToLoopsPipeline(toScan, loops);
  if (configure)
    configure(toScan);
  if (failed(toScan.run(module)))
    return llvm::createStringError(
        "lowering to loops failed (see the diagnostics above)");
  if (stage == Stage::Scan)
    return Error::success();
  // The interface is read between externalizing the weights and
  // bufferization, which erases the argument attributes.
  PassManager externalize(module.getContext());
  externalize.addPass(createGlintExternalizeWeights());
  if (configure)
    configure(externalize);
  if (failed(externalize.run(module)))
    return llvm::createStringError(
        "binding the weights as arguments failed (see the diagnostics "
        "above)");
  auto collected = collectEntryInfo(module, function, limits, "glint_forward");
  if (!collected)
    return collected.takeError();
  if (!collected->states.empty())
    return llvm::createStringError("@" + function +
                                   " carries states; the forward entry "
                                   "takes none");
  runtime::ModelInfo record;
  static_cast<runtime::EntryInfo &>(record) = std::move(*collected);
  record.attention = std::move(attentionInfo);
  if (withStep) {
    auto stepInfo =
        collectEntryInfo(module, stepName, stepLimits, "glint_step");
    if (!stepInfo)
      return stepInfo.takeError();
    record.step = std::move(*stepInfo);
  }
  info = std::move(record);
  // Recorded in `info`; LLVM would only warn about the unknown attributes.
  module.walk([](func::FuncOp fn) {
    fn->removeAttr("glint.attention_layers");
    fn->removeAttr("glint.formulation");
    for (unsigned i = 0; i < fn.getNumArguments(); ++i) {
      fn.removeArgAttr(i, "glint.weight");
      fn.removeArgAttr(i, "glint.state");
    }
    for (unsigned i = 0; i < fn.getNumResults(); ++i)
      fn.removeResultAttr(i, StringAttr::get(fn.getContext(), "glint.state"));
  });
  PassManager toLLVM(module.getContext());
  buildGlintBuffersToLLVMPipeline(toLLVM);
  if (configure)
    configure(toLLVM);
  if (failed(toLLVM.run(module)))
    return llvm::createStringError(
        "lowering to LLVM failed (see the diagnostics above)");
  return Error::success();
}

/// The target machine for the host CPU, with its features.
static Expected<std::unique_ptr<llvm::TargetMachine>> hostTargetMachine() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getProcessTriple());
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError("no LLVM target for " + triple.str() +
                                   ": " + error);
  llvm::SubtargetFeatures features;
  for (const auto &[feature, enabled] : llvm::sys::getHostCPUFeatures())
    features.AddFeature(feature, enabled);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), features.getString(), options,
      llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return llvm::createStringError("cannot create a target machine for " +
                                   triple.str());
  return machine;
}

Expected<std::unique_ptr<llvm::Module>>
compiler::translateForHost(ModuleOp module, llvm::LLVMContext &context,
                           const runtime::ModelInfo &info,
                           StringRef function) {
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, context, "glint-model");
  if (!llvmModule)
    return llvm::createStringError("translation to LLVM IR failed");
  auto machine = hostTargetMachine();
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
    SmallVector<llvm::Value *> args;
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
    b.CreateCall(ciface, args);
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

  auto optimize = makeOptimizingTransformer(3, 0, machine->get());
  if (Error e = optimize(llvmModule.get()))
    return std::move(e);
  return llvmModule;
}

Error compiler::writeObject(llvm::Module &module, StringRef path) {
  auto machine = hostTargetMachine();
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
/// `-o output object` followed by `extra`.
static Error link(StringRef driver, StringRef object, StringRef output,
                  ArrayRef<std::string> extra) {
  auto program = llvm::sys::findProgramByName(driver);
  if (!program)
    return llvm::createStringError("cannot link: no compiler driver '" +
                                   driver + "' on PATH (install g++)");
  // The model's allocator (runtime/ModelAlloc.c) comes right after its
  // object: it defines the allocation functions the object calls.
  std::vector<std::string> argv = {*program, "-o", output.str(), object.str(),
                                   GLINT_MODEL_ALLOC_LIB};
  argv.insert(argv.end(), extra.begin(), extra.end());
  // Parallel loops call LLVM's OpenMP runtime.
  for (const char *flag :
       {"-L" GLINT_LLVM_LIBRARY_DIR, "-Wl,-rpath," GLINT_LLVM_LIBRARY_DIR,
        "-lomp", "-lm"})
    argv.push_back(flag);
  std::vector<StringRef> args(argv.begin(), argv.end());
  std::string error;
  if (llvm::sys::ExecuteAndWait(*program, args, std::nullopt, {}, 0, 0,
                                &error))
    return llvm::createStringError("linking " + output + " failed" +
                                   (error.empty() ? "" : ": " + error));
  return Error::success();
}

/// Writes `module` as an object to a temporary file and links it into
/// `output` with `linkObject`. The result is renamed into place at the end,
/// so a failure leaves no file that looks complete.
static Error emitLinked(
    llvm::Module &module, StringRef output,
    llvm::function_ref<Error(StringRef object, StringRef output)> linkObject) {
  SmallString<128> object;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("glint-model", "o", object))
    return llvm::createStringError("cannot create a temporary file: " +
                                   ec.message());
  llvm::FileRemover removeObject(object);
  if (Error e = compiler::writeObject(module, object))
    return e;
  std::string partial = (output + ".partial").str();
  llvm::FileRemover removePartial(partial);
  if (Error e = linkObject(object, partial))
    return e;
  if (std::error_code ec = llvm::sys::fs::rename(partial, output))
    return llvm::createStringError(output + ": " + ec.message());
  return Error::success();
}

Error compiler::emitLibrary(llvm::Module &module, StringRef output) {
  return emitLinked(module, output, [](StringRef object, StringRef out) {
    return link("cc", object, out, {"-shared"});
  });
}

Error compiler::emitExecutable(llvm::Module &module, StringRef output) {
  // The runtime archives and LLVM's library directory are those of this
  // build (see tools/glint-compile/CMakeLists.txt).
  return emitLinked(module, output, [](StringRef object, StringRef out) {
    return link("c++", object, out,
                {GLINT_MODEL_MAIN_LIB, GLINT_RUNTIME_LIB, GLINT_RUNTIME_IO_LIB,
                 "-lLLVM", "-ldl"});
  });
}

Error compiler::compileToLibrary(ModuleOp module, StringRef function,
                                 StringRef output, StepMode step,
                                 const AttentionOptions &attention,
                                 const LoopsOptions &loops) {
  runtime::ModelInfo info;
  if (Error e = lowerModule(module, function, Stage::LLVM, info, nullptr, step,
                            attention, loops))
    return e;
  llvm::LLVMContext context;
  auto llvmModule = translateForHost(module, context, info, function);
  if (!llvmModule)
    return llvmModule.takeError();
  return emitLibrary(**llvmModule, output);
}
