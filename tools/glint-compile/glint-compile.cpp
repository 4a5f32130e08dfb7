//===- glint-compile.cpp - glint model IR to native code ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Compiles glint model IR for a CPU (the host's unless --cpu names
// another). Like toyc, each stage can be
// printed with -emit=: glint (verified input), scan (loops on tensors, no
// glint op left), llvm (LLVM IR with the model record and entry point), obj,
// lib (default: a shared library that glint-run and the runtime load), exe
// (a standalone program with the runtime linked in). --attention makes the
// library also return every token-mixing layer's attention map, of
// --formulation.
//
//===----------------------------------------------------------------------===//

#include "compiler/Cache.h"
#include "compiler/Compiler.h"
#include "compiler/PassProgress.h"
#include "compiler/Target.h"
#include "dialect/GlintOps.h"
#include "import/Importers.h"
#include "passes/cpu/Codegen.h"
#include "passes/cpu/Pipelines.h"
#include "passes/cuda/Codegen.h"
#include "passes/cuda/Pipelines.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/AtomicFile.h"
#include "runtime/io/InputLimits.h"
#include "runtime/io/Progress.h"
#include "runtime/io/Safetensors.h"
#include "tools/ToolVersion.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "runtime/io/CrashReport.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <map>

using namespace mlir;
using namespace mlir::glint;
namespace cl = llvm::cl;

static cl::OptionCategory category("glint-compile options");
// MLIR's own options (--mlir-print-ir-after-all, --mlir-timing, ...) stay
// listed under --help; libLLVM's hundreds of codegen flags do not.
static cl::OptionCategory mlirCategory("MLIR options");

static cl::opt<std::string> inputPath(
    cl::Positional,
    cl::desc("<model.mlir, or a checkpoint directory that glint-import "
             "reads>"),
    cl::Required, cl::cat(category));
static cl::opt<std::string> outputPath("o", cl::desc("Output file"),
                                       cl::value_desc("file"),
                                       cl::cat(category));
static cl::opt<compiler::Stage> emit(
    "emit", cl::desc("What to produce"), cl::init(compiler::Stage::Library),
    cl::cat(category),
    cl::values(
        clEnumValN(compiler::Stage::Glint, "glint", "the verified glint IR"),
        clEnumValN(compiler::Stage::Scan, "scan",
                   "loops on tensors, after glint-lower-to-loops"),
        clEnumValN(compiler::Stage::LLVM, "llvm",
                   "LLVM IR for the host CPU, optimised"),
        clEnumValN(compiler::Stage::Kernels, "ptx",
                   "--target=cuda: the kernels' PTX"),
        clEnumValN(compiler::Stage::Object, "obj", "an object file"),
        clEnumValN(compiler::Stage::Library, "lib",
                   "a shared library (default)"),
        clEnumValN(compiler::Stage::Executable, "exe",
                   "a standalone program: ./model --weights W --tokens ...")));
static cl::opt<bool> useCache(
    "cache",
    cl::desc("Compile a shared library into the compile cache, or find it "
             "there (keyed by a hash of the IR, the target and glint's "
             "build), and print 'cached: PATH' or 'compiled: PATH'"),
    cl::cat(category));
static cl::opt<std::string>
    cacheDir("cache-dir",
             cl::desc("The compile cache (default: $GLINT_CACHE_DIR, else "
                      "$XDG_CACHE_HOME/glint, else ~/.cache/glint)"),
             cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> functionName("function", cl::desc("Entry function"),
                                         cl::init("forward"),
                                         cl::cat(category));
static cl::opt<compiler::StepMode> stepMode(
    "step",
    cl::desc("Add the streaming step entry for generation "
             "(glint-expose-state)"),
    cl::init(compiler::StepMode::Auto), cl::cat(category),
    cl::values(
        clEnumValN(compiler::StepMode::Auto, "auto",
                   "for models over token ids that can stream (default)"),
        clEnumValN(compiler::StepMode::On, "on",
                   "always; an error names the layer that cannot stream"),
        clEnumValN(compiler::StepMode::Off, "off", "never")));
static cl::opt<bool> gradEntry(
    "grad",
    cl::desc("Add the gradient entry glint_gradient (glint-differentiate's "
             "@<function>_grad: the cotangents of every layer's output and of "
             "the input embeddings for a seed on the logits)"),
    cl::init(false), cl::cat(category));

static cl::opt<std::string> weightDtype(
    "weight-dtype",
    cl::desc("The element type of the linear layers' and embeddings' weights "
             "in memory (CPU): auto (default: a checkpoint's own when it is "
             "stored in bf16 or f16, else f32), f32, bf16 or f16; arithmetic "
             "stays f32 and the other weights f32"),
    cl::init("auto"), cl::cat(category));

static cl::opt<bool> prepareWeights(
    "prepare-weights",
    cl::desc("Hold the linear layers' weights as the panels the matrix "
             "products read, laid out once when the weights are bound (CPU; "
             "default); =false packs them on every call of a prompt instead "
             "and reads them in place"),
    cl::init(true), cl::cat(category));

/// The weight type --weight-dtype=auto picks for a checkpoint: bf16 or f16
/// when most of its matrix bytes are stored so (the bytes a generated token
/// reads), else f32.
static std::string storedWeightType(const runtime::Checkpoint &checkpoint) {
  std::map<runtime::DType, int64_t> bytes;
  for (const std::string &name : checkpoint.names()) {
    const runtime::TensorInfo *tensor = checkpoint.find(name);
    if (tensor && tensor->shape.size() == 2)
      bytes[tensor->dtype] +=
          tensor->numElements() * runtime::dtypeBits(tensor->dtype) / 8;
  }
  int64_t total = 0;
  for (auto &[dtype, n] : bytes)
    total += n;
  for (auto [dtype, name] : {std::pair{runtime::DType::BF16, "bf16"},
                             std::pair{runtime::DType::F16, "f16"}})
    if (2 * bytes[dtype] > total)
      return name;
  return "f32";
}

/// The names a dialect enum defines, as "a, b or c" for error messages.
template <typename Enum, unsigned MaxValue> static std::string enumNames() {
  SmallVector<StringRef> names;
  for (unsigned i = 0; i <= MaxValue; ++i)
    names.push_back(stringifyEnum(static_cast<Enum>(i)));
  return llvm::join(ArrayRef(names).drop_back(), ", ") + " or " +
         names.back().str();
}

/// Parses a flag's value as one of the names a dialect enum defines
/// (`MaxValue` is its getMaxEnumValFor*()), so that a misspelt name fails at
/// the flag with the accepted names, and --help lists them.
template <typename Enum, unsigned MaxValue>
class DialectEnumParser : public cl::parser<Enum> {
public:
  using cl::parser<Enum>::parser;

  void initialize() {
    for (unsigned i = 0; i <= MaxValue; ++i) {
      auto value = static_cast<Enum>(i);
      this->addLiteralOption(stringifyEnum(value), value, "");
    }
  }

  bool parse(cl::Option &option, StringRef argName, StringRef arg,
             Enum &value) {
    if (this->findOption(arg) != this->getNumOptions())
      return cl::parser<Enum>::parse(option, argName, arg, value);
    return option.error("unknown " + option.ValueStr + " '" + arg +
                        "' (expected " + enumNames<Enum, MaxValue>() + ")");
  }
};

/// --attention is a flag; `--attention=F`, its older spelling, still names
/// the formulation (now --formulation's job, the name glint-explain uses).
/// The value is kept as given ("" for the bare flag) and shown nowhere in
/// --help.
class AttentionFlagParser : public cl::parser<std::string> {
public:
  using cl::parser<std::string>::parser;

  StringRef getValueName() const override { return {}; }

  bool parse(cl::Option &option, StringRef argName, StringRef arg,
             std::string &value) {
    if (!arg.empty() && !symbolizeFormulation(arg))
      return option.error(
          "unknown formulation '" + arg + "' (expected " +
          enumNames<Formulation, getMaxEnumValForFormulation()>() + ")");
    value = arg.str();
    return false;
  }
};

static cl::opt<std::string, false, AttentionFlagParser> attentionFlag(
    "attention", cl::ValueOptional,
    cl::desc("Also return each token-mixing layer's [B, L, L] attention map "
             "after the logits (glint-to-attention), of --formulation "
             "(--attention=F is the older spelling of --attention "
             "--formulation=F)"),
    cl::cat(category));
static cl::opt<Formulation, false,
               DialectEnumParser<Formulation, getMaxEnumValForFormulation()>>
    attentionFormulation(
        "formulation",
        cl::desc("The formulation of --attention's maps (default: unified), "
                 "as glint-explain names it"),
        cl::value_desc("formulation"), cl::init(Formulation::unified),
        cl::cat(category));
static cl::opt<MapAggregate, false,
               DialectEnumParser<MapAggregate, getMaxEnumValForMapAggregate()>>
    attentionAggregate(
        "aggregate",
        cl::desc("How --attention combines a layer's per-channel matrices "
                 "(default: mean_abs; not full: a compiled layer returns one "
                 "[B, L, L] map)"),
        cl::value_desc("aggregate"), cl::init(MapAggregate::mean_abs),
        cl::cat(category));
static cl::opt<bool> attributionMaps(
    "attribution",
    cl::desc("With --attention: each layer's map is the attribution "
             "method's (the channel mean of the positive part of A times "
             "its gradient), the layers' output cotangents taken as inputs "
             "after the model's (what glint-explain's attribution calls)"),
    cl::cat(category));
// glint-explain's name is --aggregate; this was glint-compile's.
static cl::alias attentionAggregateOld("attention-aggregate",
                                       cl::aliasopt(attentionAggregate),
                                       cl::Hidden,
                                       cl::desc("Alias for --aggregate"));

static cl::opt<RecurrenceForm> recurrenceForm(
    "recurrence-form", cl::desc("How matrix-state recurrences are lowered"),
    cl::init(RecurrenceForm::Auto), cl::cat(category),
    cl::values(clEnumValN(RecurrenceForm::Auto, "auto",
                          "chunked where it is measured to win, see "
                          "glint-chunk-recurrence (default)"),
               clEnumValN(RecurrenceForm::Recurrent, "recurrent",
                          "the recurrent forms only"),
               clEnumValN(RecurrenceForm::Chunked, "chunked",
                          "the chunked form wherever it applies")));

static cl::opt<std::string> cpuName(
    "cpu",
    cl::desc("The CPU to compile for, as LLVM names it (x86-64-v3, haswell, "
             "skylake-avx512, znver4, ...; default: native, this machine)"),
    cl::value_desc("name"), cl::init("native"), cl::cat(category));
static cl::opt<int64_t> vectorWidth(
    "vector-width",
    cl::desc("f32 lanes of the vector loops: 4, 8 or 16 (default: the "
             "CPU's widest vectors, 16 with AVX-512)"),
    cl::init(0), cl::cat(category));

enum class TargetKind { Cpu, Cuda };
static cl::opt<TargetKind> targetKind(
    "target", cl::desc("What the model runs on"), cl::init(TargetKind::Cpu),
    cl::cat(category),
    cl::values(clEnumValN(TargetKind::Cpu, "cpu", "the CPU (default)"),
               clEnumValN(TargetKind::Cuda, "cuda",
                          "an NVIDIA GPU, driven from the CPU (--cpu)")));
static cl::opt<std::string>
    gpuArch("gpu-arch",
            cl::desc("--target=cuda: the GPU's compute capability (default "
                     "sm_90; sm_80 for A100)"),
            cl::value_desc("sm_NN"), cl::init("sm_90"), cl::cat(category));
static cl::opt<std::string> gpuBinary(
    "gpu-binary",
    cl::desc("--target=cuda: how the kernels are embedded: auto (default: "
             "fatbin with the CUDA toolkit, else isa), isa (PTX, compiled by "
             "the driver at load), bin (cubin), fatbin (cubin and PTX)"),
    cl::init("auto"), cl::cat(category));

static cl::opt<int64_t> gpuTimeChunk(
    "gpu-time-chunk",
    cl::desc("--target=cuda: steps per chunk of the recurrences' "
             "time-parallel form, one thread per channel and chunk (default "
             "64; 0: one thread per channel for the whole sequence)"),
    cl::init(64), cl::cat(category));

static cl::opt<bool> gpuEmulate(
    "gpu-emulate",
    cl::desc("--target=cuda: run the kernels as parallel loops on this CPU "
             "(a CPU library that checks the GPU lowering without a GPU)"),
    cl::cat(category));

/// The progress bar of the compile under way, ended before anything else is
/// written to the terminal.
static runtime::ProgressBar *progressBar = nullptr;

/// Ends the bar, showing `status` (on success: "done"; on failure the
/// phase that failed stays).
static void endProgress(StringRef status = {}) {
  if (!progressBar)
    return;
  if (!status.empty())
    progressBar->setStatus(status);
  progressBar->finish();
}

static int fail(const llvm::Twine &message) {
  endProgress();
  llvm::WithColor::error(llvm::errs(), "glint-compile") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::glint::addGlintVersionPrinter();
  mlir::glint::runtime::setBugReportMessage();
  // libLLVM already has a --threads option: glint-compile takes it over.
  cl::opt<int> *threadsOpt = runtime::adoptThreadsOption(
      category, "Threads the compiled code will run on, for the choices "
                "that depend on it (default: OMP_NUM_THREADS, else this "
                "machine's hardware threads)");
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  for (auto &entry : cl::getRegisteredOptions())
    if (entry.first.starts_with("mlir-"))
      entry.second->addCategory(mlirCategory);
  cl::HideUnrelatedOptions({&category, &mlirCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-compile: glint model IR to native code for a CPU or an NVIDIA "
      "GPU\n\n"
      "  glint-compile model.mlir -o model.so\n"
      "  glint-compile model.mlir -emit=scan\n"
      "  glint-compile model.mlir --attention --formulation=scan-only -o "
      "model.so\n");

  if (useCache && (emit.getNumOccurrences() || !outputPath.empty()))
    return fail("--cache makes a shared library in the cache and prints its "
                "path: it takes neither -o nor -emit");
  if (cacheDir.getNumOccurrences() && !useCache)
    return fail("--cache-dir needs --cache");
  bool binary = emit == compiler::Stage::Object ||
                emit == compiler::Stage::Library ||
                emit == compiler::Stage::Executable;
  if (binary && !useCache && (outputPath.empty() || outputPath == "-"))
    return fail("-o FILE is required for -emit=obj, -emit=lib and -emit=exe");
  if (outputPath.empty())
    outputPath = "-";

  DialectRegistry registry;
  registerCompilerDialects(registry);
  registerCudaDialects(registry);
  // On a terminal, once the work has taken a second: the passes run, then
  // LLVM's code generation. (Made before the context, which may report
  // to it until it is destroyed.)
  runtime::ProgressBar bar("glint-compile: passes run", /*total=*/0,
                           runtime::ProgressBar::kQuickWorkDelay);
  progressBar = &bar;
  compiler::PassProgress passProgress(bar);
  passProgress.setStatus(llvm::sys::fs::is_directory(inputPath)
                             ? "importing the checkpoint"
                             : "parsing");
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  // A diagnostic ends the bar first and goes on to the handler above.
  context.getDiagEngine().registerHandler([](Diagnostic &) {
    endProgress();
    return failure();
  });

  std::string error;
  if (llvm::Error e = mlir::glint::runtime::checkOutputPath(outputPath))
    return fail(llvm::toString(std::move(e)));
  OwningOpRef<ModuleOp> module;
  // The checkpoint's own weight type (f32 for IR, which names none).
  std::string storedType = "f32";
  if (llvm::sys::fs::is_directory(inputPath)) {
    // A checkpoint: imported as glint-import would.
    auto checkpoint = runtime::Checkpoint::open(inputPath);
    if (!checkpoint)
      return fail(llvm::toString(checkpoint.takeError()));
    context.loadAllAvailableDialects();
    auto imported = import::importCheckpoint(&context, inputPath, **checkpoint);
    if (!imported)
      return fail(llvm::toString(imported.takeError()));
    module = std::move(*imported);
    storedType = storedWeightType(**checkpoint);
  } else {
    std::unique_ptr<llvm::MemoryBuffer> input =
        openInputFile(inputPath, &error);
    if (!input)
      return fail(error);
    if (input->getBuffer().trim().empty())
      return fail(inputPath + ": input is empty: expected glint model IR");
    if (llvm::Error e = mlir::glint::runtime::checkIRBeforeParsing(
            input->getBuffer(), inputPath))
      return fail(llvm::toString(std::move(e)));
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
    if (!module)
      return 1; // Located diagnostics are printed.
  }

  compiler::AttentionOptions attention;
  if (attentionFlag.getNumOccurrences()) {
    if (!attentionFlag.empty() && attentionFormulation.getNumOccurrences())
      return fail("--attention=" + attentionFlag +
                  " is the older spelling of --attention --formulation=" +
                  attentionFlag + "; give the formulation once");
    attention.formulation =
        attentionFlag.empty() ? stringifyFormulation(attentionFormulation).str()
                              : attentionFlag.getValue();
    attention.aggregate = stringifyMapAggregate(attentionAggregate).str();
    if (attributionMaps && attentionAggregate.getNumOccurrences())
      return fail("--attribution maps have no --aggregate (they are the "
                  "channel mean of a positive part)");
    attention.attribution = attributionMaps;
  } else if (attentionAggregate.getNumOccurrences() ||
             attentionFormulation.getNumOccurrences() || attributionMaps) {
    return fail(attentionAggregate.getNumOccurrences()
                    ? "--aggregate needs --attention"
                : attributionMaps ? "--attribution needs --attention"
                                  : "--formulation needs --attention");
  }

  auto threads = runtime::threadsGiven(threadsOpt, 0);
  if (!threads)
    return fail(llvm::toString(threads.takeError()));
  auto target = compiler::makeTarget(cpuName, vectorWidth, *threads);
  if (!target)
    return fail(llvm::toString(target.takeError()));
  bool cuda = targetKind == TargetKind::Cuda;
  if (!cuda && (gpuArch.getNumOccurrences() || gpuBinary.getNumOccurrences() ||
                gpuTimeChunk.getNumOccurrences() || gpuEmulate))
    return fail("--gpu-arch, --gpu-binary, --gpu-time-chunk and --gpu-emulate "
                "need --target=cuda");
  if (gpuTimeChunk < 0 || gpuTimeChunk > (1 << 20))
    return fail("--gpu-time-chunk must be from 0 to 1048576 steps, not " +
                llvm::Twine(gpuTimeChunk.getValue()));
  if (cuda && emit == compiler::Stage::Executable)
    return fail("-emit=exe is for the CPU target; compile a library "
                "(-emit=lib) and run it with glint-run");
  if (!cuda && emit == compiler::Stage::Kernels)
    return fail("-emit=ptx needs --target=cuda");
  if (cuda) {
    if (llvm::Error e = compiler::makeCudaTarget(
            *target, gpuArch,
            emit == compiler::Stage::Kernels ? "isa" : gpuBinary.getValue()))
      return fail(llvm::toString(std::move(e)));
    target->gpuEmulate = gpuEmulate;
    target->gpuTimeChunk = gpuTimeChunk;
    if (gpuEmulate && emit == compiler::Stage::Kernels)
      return fail("-emit=ptx and --gpu-emulate exclude each other: emulated "
                  "kernels are CPU code");
  }
  LoopsOptions loops;
  loops.recurrenceForm = recurrenceForm;
  if (!llvm::is_contained({"auto", "f32", "bf16", "f16"}, weightDtype))
    return fail("--weight-dtype=" + weightDtype +
                ": expected auto, f32, bf16 or f16");
  loops.weightType = weightDtype == "auto" ? storedType : weightDtype;
  loops.prepareWeights = prepareWeights;
  if (cuda && loops.weightType != "f32") {
    if (weightDtype != "auto")
      return fail("--weight-dtype=" + weightDtype +
                  ": the CUDA target keeps its weights in f32 (16-bit "
                  "weights are CPU-only for now)");
    loops.weightType = "f32";
  }

  if (useCache) {
    auto library = compiler::compileCached(
        *module, functionName,
        cacheDir.empty() ? compiler::defaultCacheDirectory() : cacheDir,
        stepMode, attention, loops, *target, gradEntry);
    if (!library)
      return fail(llvm::toString(library.takeError()));
    // One line a caller can read: whether it was there, and where.
    endProgress("done");
    llvm::outs() << (library->hit ? "cached: " : "compiled: ") << library->path
                 << "\n";
    return 0;
  }

  // --mlir-timing: every pass manager of the lowering reports under one
  // root, and so does LLVM's code generation, which is no pass of MLIR's.
  DefaultTimingManager timingManager;
  applyDefaultTimingManagerCLOptions(timingManager);
  TimingScope timing = timingManager.getRootScope();
  runtime::ModelInfo info;
  auto configure = [&](PassManager &pm) {
    (void)applyPassManagerCLOptions(pm);
    pm.enableTiming(timing);
    passProgress.attach(pm);
  };
  if (llvm::Error e = compiler::lowerModule(
          *module, functionName,
          binary || emit == compiler::Stage::Kernels ? compiler::Stage::LLVM
                                                     : emit.getValue(),
          info, configure, stepMode, attention, loops, *target, gradEntry))
    return fail(llvm::toString(std::move(e)));

  if (emit == compiler::Stage::Glint || emit == compiler::Stage::Scan) {
    endProgress("done");
    auto output = openOutputFile(outputPath, &error);
    if (!output)
      return fail(error);
    module->print(output->os());
    output->os() << "\n";
    output->keep();
    return 0;
  }

  if (emit == compiler::Stage::Kernels) {
    endProgress("done");
    auto ptx = cuda::kernelAssembly(*module);
    if (!ptx)
      return fail(llvm::toString(ptx.takeError()));
    auto output = openOutputFile(outputPath, &error);
    if (!output)
      return fail(error);
    output->os() << *ptx;
    output->keep();
    return 0;
  }

  llvm::LLVMContext llvmContext;
  passProgress.setStatus("translating to LLVM IR");
  TimingScope translateTiming = timing.nest("Translate to LLVM IR");
  auto llvmModule = compiler::translateToLLVMIR(*module, llvmContext, info,
                                                functionName, *target);
  if (!llvmModule)
    return fail(llvm::toString(llvmModule.takeError()));
  translateTiming.stop();
  // Timed to the end of main: the object, library or executable written.
  TimingScope codegenTiming = timing.nest("LLVM code generation");
  passProgress.setStatus(emit == compiler::Stage::LLVM
                             ? "writing LLVM IR"
                             : "LLVM code generation");
  if (emit == compiler::Stage::Library) {
    if (llvm::Error e =
            compiler::emitLibrary(**llvmModule, outputPath, *target))
      return fail(llvm::toString(std::move(e)));
    endProgress("done");
    return 0;
  }
  if (emit == compiler::Stage::Executable) {
    if (llvm::Error e = cpu::emitExecutable(**llvmModule, outputPath, *target))
      return fail(llvm::toString(std::move(e)));
    endProgress("done");
    return 0;
  }
  if (emit == compiler::Stage::Object) {
    if (llvm::Error e = cpu::writeObject(**llvmModule, outputPath, *target))
      return fail(llvm::toString(std::move(e)));
    endProgress("done");
    return 0;
  }
  endProgress("done");
  auto output = openOutputFile(outputPath, &error);
  if (!output)
    return fail(error);
  (*llvmModule)->print(output->os(), nullptr);
  output->keep();
  return 0;
}
