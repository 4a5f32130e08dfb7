//===- glint-run.cpp - run a glint model ----------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Runs a model on token ids (or an image) and writes its outputs as .npy.
// With --interpret, the model IR is executed by the double-precision
// reference evaluator, the oracle every compiled path is checked against.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "runtime/CompiledModel.h"
#include "runtime/Npy.h"
#include "runtime/RunSupport.h"
#include "runtime/Safetensors.h"
#include "runtime/reference/ReferenceEvaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>
#include <optional>

using namespace mlir;
namespace rt = mlir::glint::runtime;
namespace ref = mlir::glint::reference;
namespace cl = llvm::cl;

static cl::OptionCategory category("glint-run options");
static cl::opt<std::string> modelPath(
    cl::Positional,
    cl::desc("<model.so from glint-compile, or model.mlir with --interpret>"),
    cl::Required, cl::cat(category));
static cl::opt<bool> interpret(
    "interpret",
    cl::desc("Execute the IR with the double-precision reference evaluator"),
    cl::cat(category));
static cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("Weights: a .safetensors file, a sharded index .json, or a "
             "checkpoint directory"),
    cl::value_desc("path"), cl::cat(category));
static cl::opt<std::string> functionName("function",
                                         cl::desc("Function to run"),
                                         cl::init("forward"),
                                         cl::cat(category));
static cl::opt<std::string>
    tokens("tokens",
           cl::desc("Token ids: comma-separated, one sequence per ';' (equal "
                    "lengths), e.g. '1,2,3;4,5,6'"),
           cl::value_desc("ids"), cl::cat(category));
static cl::opt<std::string> text(
    "text",
    cl::desc("Input words, split on spaces and mapped through --vocab; one "
             "sequence per ';'"),
    cl::value_desc("words"), cl::cat(category));
static cl::opt<std::string> vocabPath(
    "vocab",
    cl::desc("A JSON object mapping each word to its token id, or holding "
             "one under \"word_to_id\" (for --text, and to print "
             "predictions as words)"),
    cl::value_desc("vocab.json"), cl::cat(category));
static cl::opt<std::string>
    inputNpy("input",
             cl::desc("Input array as .npy: int64 token ids [batch, seq] or "
                      "float pixels [batch, 3, H, W]"),
             cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string>
    outputPath("o",
               cl::desc("Write the first result (logits) to this .npy file"),
               cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string> hiddenDir(
    "dump-hidden",
    cl::desc("Write every value marked glint.trace (each layer's hidden "
             "state) to DIR/<name>.npy"),
    cl::value_desc("DIR"), cl::cat(category));
static cl::opt<bool> writeF32("f32",
                              cl::desc("Write .npy outputs as float32 "
                                       "(default: float64 with --interpret, "
                                       "float32 for compiled models)"),
                              cl::cat(category));
// The old name of --threads (see main), kept for scripts that use it.
static cl::opt<unsigned> numThreads("num-threads", cl::Hidden,
                                    cl::desc("Same as --threads"), cl::init(0),
                                    cl::cat(category));
static cl::opt<unsigned> topK("top",
                              cl::desc("Print the top-K next tokens "
                                       "per sequence"),
                              cl::init(5), cl::cat(category));
static cl::opt<unsigned> generate(
    "generate",
    cl::desc("Generate N tokens greedily after the input (a causal language "
             "model): compiled models run the prompt once, then one token "
             "per step carrying their state; --interpret reruns the whole "
             "sequence each step. -o writes the logits each token was "
             "chosen from"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-run") << message << "\n";
  return 1;
}

/// The model IR parsed for the reference evaluator.
struct ModelIR {
  ModelIR() : context(registry()), diagnostics(sourceMgr, &context) {}
  static DialectRegistry registry() {
    DialectRegistry registry;
    registry.insert<mlir::glint::GlintDialect, arith::ArithDialect,
                    func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                    ml_program::MLProgramDialect, scf::SCFDialect,
                    tensor::TensorDialect>();
    return registry;
  }
  MLIRContext context;
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics;
  OwningOpRef<ModuleOp> module;
};

static llvm::Expected<std::unique_ptr<ModelIR>> parseModelIR() {
  auto ir = std::make_unique<ModelIR>();
  ir->module = parseSourceFile<ModuleOp>(modelPath, ir->sourceMgr,
                                         ParserConfig(&ir->context));
  if (!ir->module)
    return llvm::createStringError(
        modelPath + ": cannot parse the model (see the diagnostics above)");
  return ir;
}

static ref::Array toEvaluatorArray(const rt::RunArray &array) {
  ref::Array out;
  out.shape.assign(array.shape.begin(), array.shape.end());
  out.data = array.data;
  return out;
}

/// Runs the IR with the reference evaluator; traced values go to
/// --dump-hidden (their paths into `written`).
static llvm::Expected<rt::RunArray>
interpretModel(const rt::Checkpoint &checkpoint, const rt::RunArray &runInput,
               std::vector<std::string> &written) {
  ref::Array input = toEvaluatorArray(runInput);
  auto ir = parseModelIR();
  if (!ir)
    return ir.takeError();
  ModuleOp module = *(*ir)->module;

  ref::WeightProvider weights = ref::weightsFrom(checkpoint);
  if (!hiddenDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(hiddenDir))
      return llvm::createStringError("cannot create " + hiddenDir + ": " +
                                     ec.message());
  llvm::Error traceError = llvm::Error::success();
  ref::TraceCallback trace = nullptr;
  if (!hiddenDir.empty())
    trace = [&](StringRef name, const ref::Array &value) {
      SmallString<128> path(hiddenDir);
      llvm::sys::path::append(path, name + ".npy");
      rt::RunArray traced;
      traced.shape.assign(value.shape.begin(), value.shape.end());
      traced.data = value.data;
      traced.integer = false;
      if (llvm::Error e = rt::writeResult(path, traced, writeF32))
        traceError = llvm::joinErrors(std::move(traceError), std::move(e));
      else
        written.push_back(std::string(path));
    };

  ref::ReferenceEvaluator evaluator(module, weights);
  auto results = evaluator.run(functionName, {input}, trace);
  if (!results) {
    llvm::consumeError(std::move(traceError));
    // Hidden states of a failed run would look like a complete dump.
    for (const std::string &path : written)
      llvm::sys::fs::remove(path);
    return results.takeError();
  }
  if (traceError)
    return std::move(traceError);

  rt::RunArray out;
  out.shape.assign((*results)[0].shape.begin(), (*results)[0].shape.end());
  out.data = std::move((*results)[0].data);
  out.integer = false;
  return out;
}

/// Greedy generation with the reference evaluator: the whole sequence so
/// far through the model for every token (the definition that the compiled
/// step entry must reproduce, at quadratic cost).
static llvm::Expected<rt::Generation>
interpretGeneration(const rt::Checkpoint &checkpoint,
                    const rt::RunArray &prompt) {
  if (prompt.shape.size() != 2 || !prompt.integer)
    return llvm::createStringError(
        "generation takes token ids [batch, seq] as its prompt");
  auto ir = parseModelIR();
  if (!ir)
    return ir.takeError();
  ref::ReferenceEvaluator evaluator(*(*ir)->module,
                                    ref::weightsFrom(checkpoint));
  int64_t batch = prompt.shape[0], length = prompt.shape[1];
  unsigned count = generate;
  rt::Generation out;
  out.tokens.shape = {batch, count};
  out.tokens.data.assign(batch * count, 0.0);
  out.logits.integer = false;
  rt::RunArray sequence = prompt;
  for (unsigned i = 0; i < count; ++i) {
    auto results = evaluator.run(functionName, {toEvaluatorArray(sequence)});
    if (!results)
      return results.takeError();
    rt::RunArray logits;
    logits.shape.assign((*results)[0].shape.begin(), (*results)[0].shape.end());
    logits.data = std::move((*results)[0].data);
    if (logits.shape.size() != 3 || logits.shape[1] != length + i)
      return llvm::createStringError(
          "generation needs a language model: @" + functionName +
          " returns no logits per position [batch, seq, vocab]");
    int64_t vocab = logits.shape.back();
    if (i == 0) {
      out.logits.shape = {batch, count, vocab};
      out.logits.data.assign(batch * count * vocab, 0.0);
    }
    std::vector<int64_t> next = rt::greedyNext(logits);
    int64_t perRow = logits.numElements() / batch;
    rt::RunArray longer;
    longer.shape = {batch, length + i + 1};
    for (int64_t b = 0; b < batch; ++b) {
      out.tokens.data[b * count + i] = static_cast<double>(next[b]);
      std::copy_n(logits.data.begin() + b * perRow + perRow - vocab, vocab,
                  out.logits.data.begin() + (b * count + i) * vocab);
      auto row = sequence.data.begin() + b * (length + i);
      longer.data.insert(longer.data.end(), row, row + length + i);
      longer.data.push_back(static_cast<double>(next[b]));
    }
    sequence = std::move(longer);
  }
  return out;
}

/// The library made by glint-compile, its weights bound.
static llvm::Expected<std::unique_ptr<rt::CompiledModel>>
loadLibrary(const rt::Checkpoint &checkpoint) {
  auto model = rt::CompiledModel::load(modelPath);
  if (!model)
    return model.takeError();
  if (llvm::Error e = (*model)->bindWeights(checkpoint))
    return std::move(e);
  return model;
}

/// Runs a library made by glint-compile.
static llvm::Expected<rt::RunArray> runLibrary(const rt::Checkpoint &checkpoint,
                                               const rt::RunArray &input) {
  auto model = loadLibrary(checkpoint);
  if (!model)
    return model.takeError();
  return rt::runCompiled(**model, input, modelPath);
}

/// --generate: prints the tokens, writes their logits with -o.
static int runGeneration(const rt::Checkpoint &checkpoint,
                         const rt::RunInput &input) {
  if (!hiddenDir.empty())
    return fail("--dump-hidden does not combine with --generate");
  auto generation = [&]() -> llvm::Expected<rt::Generation> {
    if (interpret)
      return interpretGeneration(checkpoint, input.array);
    auto model = loadLibrary(checkpoint);
    if (!model)
      return model.takeError();
    return rt::generateCompiled(**model, input.array, generate, modelPath);
  }();
  if (!generation)
    return fail(llvm::toString(generation.takeError()));
  rt::printGeneration(llvm::outs(), input.array, generation->tokens,
                      input.vocab ? &*input.vocab : nullptr);
  if (!interpret) {
    llvm::outs().flush();
    rt::printGenerationTime(llvm::errs(), *generation, input.array.shape[1]);
  }
  if (!outputPath.empty()) {
    if (llvm::Error e = rt::writeResult(outputPath, generation->logits,
                                        writeF32 || !interpret))
      return fail(llvm::toString(std::move(e)));
    llvm::outs() << "wrote " << outputPath << "\n";
  }
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::opt<int> *threadsOpt = rt::adoptThreadsOption(
      category, "Threads for a compiled model's parallel loops (default: "
                "one per core)");
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-run: run a glint model on token ids or an image\n\n"
      "  glint-run --interpret model.mlir --weights model.safetensors "
      "--tokens 1,2,3 -o logits.npy\n");

  if (weightsPath.empty())
    return fail("--weights is required (a .safetensors file, an index "
                ".json or a checkpoint directory)");
  auto threads = rt::threadsGiven(threadsOpt, numThreads);
  if (!threads)
    return fail(llvm::toString(threads.takeError()));
  rt::setThreads(*threads);
  auto input = rt::readRunInput(tokens, text, vocabPath, inputNpy);
  if (!input)
    return fail(llvm::toString(input.takeError()));
  auto checkpoint = rt::Checkpoint::open(weightsPath);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
  if (generate > 0)
    return runGeneration(**checkpoint, *input);
  rt::RunArray logits;
  std::vector<std::string> written;
  if (interpret) {
    auto result = interpretModel(**checkpoint, input->array, written);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    logits = std::move(*result);
  } else {
    if (!hiddenDir.empty())
      return fail("--dump-hidden needs --interpret (compiled models do not "
                  "record hidden states yet)");
    auto result = runLibrary(**checkpoint, input->array);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    logits = std::move(*result);
  }
  rt::printShape(llvm::outs(), logits);
  if (!outputPath.empty()) {
    // Compiled models compute in float32: writing float64 would invent
    // precision.
    if (llvm::Error e =
            rt::writeResult(outputPath, logits, writeF32 || !interpret))
      return fail(llvm::toString(std::move(e)));
    llvm::outs() << "wrote " << outputPath << "\n";
  }
  if (!written.empty())
    llvm::outs() << "wrote " << written.size() << " traced values to "
                 << hiddenDir << "\n";
  rt::printTopK(llvm::outs(), logits, topK,
                input->vocab ? &*input->vocab : nullptr);
  return 0;
}
