//===- Compiler.cpp - glint model IR to native code -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"

#include "dialect/GlintOps.h"
#include "passes/Passes.h"
#include "passes/cpu/Codegen.h"
#include "passes/cpu/Pipelines.h"
#include "passes/cuda/Codegen.h"
#include "passes/cuda/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::glint;
using llvm::Error;
using llvm::Expected;

llvm::DenseMap<unsigned, int64_t> compiler::tokenLimits(ModuleOp module,
                                                        StringRef function) {
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
  // Weights kept narrow in memory (glint-compile --weight-dtype).
  if (type.isBF16())
    return std::string("bf16");
  if (type.isF16())
    return std::string("f16");
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
    auto weight =
        fn.getArgAttrOfType<StringAttr>(i, GlintDialect::kWeightAttrName);
    auto state =
        fn.getArgAttrOfType<StringAttr>(i, GlintDialect::kStateAttrName);
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
      // Prepared panels (glint-vectorize-matmul): the record keeps the
      // checkpoint matrix's shape and how the runtime lays it out.
      if (auto panels = fn.getArgAttrOfType<DictionaryAttr>(
              i, GlintDialect::kPanelsAttrName)) {
        auto layout = panels.getAs<StringAttr>("layout");
        auto shape = panels.getAs<DenseI64ArrayAttr>("shape");
        auto width = panels.getAs<IntegerAttr>("width");
        if (!layout || !shape || !width || shape.size() != 2)
          return llvm::createStringError(
              "@" + function + ": weight '" + weight.str() +
              "' has a malformed glint.panels attribute");
        std::vector<int64_t> layoutShape = spec->shape;
        spec->shape.assign(shape.asArrayRef().begin(),
                           shape.asArrayRef().end());
        spec->panelLayout = layout.str();
        spec->panelWidth = width.getInt();
        if (spec->layoutShape() != layoutShape)
          return llvm::createStringError(llvm::formatv(
              "@{0}: weight '{1}' is {2}, not the panels {3} of its {4} "
              "matrix",
              function, weight.str(), runtime::shapeString(layoutShape),
              runtime::shapeString(spec->layoutShape()),
              runtime::shapeString(spec->shape)));
      }
      info.weights.push_back(std::move(*spec));
    } else if (state) {
      info.states.push_back(std::move(*spec));
    } else {
      spec->limit = limits.lookup(i);
      info.inputs.push_back(std::move(*spec));
    }
  }
  // One result, or (glint-to-attention) one plus a map per layer, or
  // (glint-differentiate) one plus a cotangent per layer and per input.
  auto gradientLayers =
      fn->getAttrOfType<ArrayAttr>(GlintDialect::kGradientLayersAttrName);
  auto layers = gradientLayers ? gradientLayers
                               : fn->getAttrOfType<ArrayAttr>(
                                     GlintDialect::kAttentionLayersAttrName);
  size_t expected = 1 + (layers ? layers.size() : 0);
  size_t results = fn.getNumResults() - info.states.size();
  if (gradientLayers && results >= expected + 1)
    expected = results;
  if (fn.getNumResults() < info.states.size() || results != expected)
    return llvm::createStringError(llvm::formatv(
        "@{0} returns {1} values and carries {2} states; compiled models "
        "return exactly {3} result(s) (and the next states)",
        function, fn.getNumResults(), info.states.size(), expected));
  for (size_t r = 0; r < results; ++r) {
    std::string name = "result";
    if (r > 0 && r - 1 < (layers ? layers.size() : 0)) {
      auto label = dyn_cast<StringAttr>(layers[r - 1]);
      name = (gradientLayers ? "grad:" : "attention:") +
             (label ? label.str() : std::to_string(r - 1));
    } else if (r > 0) {
      size_t layerCount = layers ? layers.size() : 0;
      size_t inputCount = results - 1 - layerCount;
      name = "grad:input" + (inputCount > 1 ? std::to_string(r - 1 - layerCount)
                                            : std::string());
    }
    auto result = specOf(fn.getResultTypes()[r], std::move(name));
    if (!result)
      return result.takeError();
    info.results.push_back(std::move(*result));
  }
  // The next states come back in the order they went in.
  for (auto [i, state] : llvm::enumerate(info.states)) {
    unsigned r = results + i;
    auto name =
        fn.getResultAttrOfType<StringAttr>(r, GlintDialect::kStateAttrName);
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
        "--aggregate=full is not supported by compiled models "
        "(each layer's result must be [B, L, L]); use mean, mean_abs or sum");
  GlintToAttentionOptions options;
  options.formulation = attention.formulation;
  options.aggregate = attention.aggregate;
  options.attribution = attention.attribution;
  PassManager pm(fn.getContext(), func::FuncOp::getOperationName());
  pm.addPass(createGlintToAttention(options));
  if (configure)
    configure(pm);
  if (failed(pm.run(fn)))
    return llvm::createStringError(
        "rewriting @" + fn.getSymName() +
        " into its attention form failed (see the diagnostics above)");
  auto layers =
      fn->getAttrOfType<ArrayAttr>(GlintDialect::kAttentionLayersAttrName);
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
                            const LoopsOptions &loops,
                            const TargetOptions &target, bool gradient) {
  auto fn = module.lookupSymbol<func::FuncOp>(function);
  if (!fn)
    return llvm::createStringError("the module has no function @" + function);
  std::optional<runtime::AttentionInfo> attentionInfo;
  if (attention.enabled()) {
    if (Error e = toAttention(fn, attention, configure))
      return e;
    attentionInfo.emplace();
    attentionInfo->formulation = attention.formulation;
    attentionInfo->aggregate =
        attention.attribution ? "attribution" : attention.aggregate;
    for (Attribute label :
         fn->getAttrOfType<ArrayAttr>(GlintDialect::kAttentionLayersAttrName))
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
  std::string gradName = gradientFunctionName(function);
  if (gradient) {
    if (attention.enabled())
      return llvm::createStringError(
          "--grad and --attention cannot be combined: the gradient entry "
          "differentiates the forward, not its attention form");
    if (target.kind == TargetOptions::Kind::Cuda)
      return llvm::createStringError(
          "--grad is supported for the CPU target only");
    if (failed(differentiate(fn, gradName)))
      return llvm::createStringError(
          "cannot add the gradient entry (see the diagnostics above)");
  }
  auto limits = tokenLimits(module, function);
  auto gradLimits = gradient ? tokenLimits(module, gradName)
                             : llvm::DenseMap<unsigned, int64_t>();
  auto stepLimits = withStep ? tokenLimits(module, stepName)
                             : llvm::DenseMap<unsigned, int64_t>();
  bool cuda = target.kind == TargetOptions::Kind::Cuda;
  PassManager toScan(module.getContext());
  if (cuda)
    buildGlintLowerToGpuLoopsPipeline(toScan, target);
  else
    buildGlintLowerToLoopsPipeline(toScan, target, loops);
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
  if (gradient) {
    auto gradInfo =
        collectEntryInfo(module, gradName, gradLimits, "glint_gradient");
    if (!gradInfo)
      return gradInfo.takeError();
    runtime::GradientInfo entry;
    static_cast<runtime::EntryInfo &>(entry) = std::move(*gradInfo);
    for (Attribute label :
         module.lookupSymbol<func::FuncOp>(gradName)->getAttrOfType<ArrayAttr>(
             GlintDialect::kGradientLayersAttrName))
      entry.layers.push_back(cast<StringAttr>(label).str());
    record.gradient = std::move(entry);
  }
  info = std::move(record);
  // Recorded in `info`; LLVM would only warn about the unknown attributes.
  module.walk([](func::FuncOp fn) {
    fn->removeAttr(GlintDialect::kAttentionLayersAttrName);
    fn->removeAttr(GlintDialect::kGradientLayersAttrName);
    fn->removeAttr(GlintDialect::kFormulationAttrName);
    for (unsigned i = 0; i < fn.getNumArguments(); ++i) {
      fn.removeArgAttr(i, GlintDialect::kWeightAttrName);
      fn.removeArgAttr(i, GlintDialect::kStateAttrName);
      fn.removeArgAttr(i, GlintDialect::kPanelsAttrName);
    }
    for (unsigned i = 0; i < fn.getNumResults(); ++i)
      fn.removeResultAttr(
          i, StringAttr::get(fn.getContext(), GlintDialect::kStateAttrName));
  });
  PassManager toLLVM(module.getContext());
  if (cuda)
    buildGlintBuffersToCudaPipeline(toLLVM, target);
  else
    buildGlintBuffersToLLVMPipeline(toLLVM, target);
  if (configure)
    configure(toLLVM);
  if (failed(toLLVM.run(module)))
    return llvm::createStringError(
        "lowering to LLVM failed (see the diagnostics above)");
  return Error::success();
}

Error compiler::compileToLibrary(ModuleOp module, StringRef function,
                                 StringRef output, StepMode step,
                                 const AttentionOptions &attention,
                                 const LoopsOptions &loops,
                                 const TargetOptions &target, bool gradient) {
  runtime::ModelInfo info;
  if (Error e = lowerModule(module, function, Stage::LLVM, info, nullptr, step,
                            attention, loops, target, gradient))
    return e;
  llvm::LLVMContext context;
  auto llvmModule = translateToLLVMIR(module, context, info, function, target);
  if (!llvmModule)
    return llvmModule.takeError();
  return emitLibrary(**llvmModule, output, target);
}

/// Whether `target`'s code runs on a GPU (CUDA, not emulated on the CPU).
static bool onGpu(const TargetOptions &target) {
  return target.kind == TargetOptions::Kind::Cuda && !target.gpuEmulate;
}

Expected<std::unique_ptr<llvm::Module>>
compiler::translateToLLVMIR(ModuleOp module, llvm::LLVMContext &context,
                            const runtime::ModelInfo &info, StringRef function,
                            const TargetOptions &target) {
  return onGpu(target)
             ? cuda::translateToLLVMIR(module, context, info, function, target)
             : cpu::translateToLLVMIR(module, context, info, function, target);
}

Error compiler::emitLibrary(llvm::Module &module, StringRef output,
                            const TargetOptions &target) {
  return onGpu(target) ? cuda::emitLibrary(module, output, target)
                       : cpu::emitLibrary(module, output, target);
}
