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
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/FileSystem.h"
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
static cl::opt<std::string> tokens(
    "tokens",
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
static cl::opt<std::string> inputNpy(
    "input", cl::desc("Input array as .npy: int64 token ids [batch, seq] or "
                      "float pixels [batch, 3, H, W]"),
    cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string> outputPath(
    "o", cl::desc("Write the first result (logits) to this .npy file"),
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
// "threads" is taken by an option inside libLLVM.
static cl::opt<unsigned> threads(
    "num-threads",
    cl::desc("Threads for a compiled model's parallel loops (default: one "
             "per core)"),
    cl::init(0), cl::cat(category));
static cl::opt<unsigned> topK("top", cl::desc("Print the top-K next tokens "
                                              "per sequence"),
                              cl::init(5), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-run") << message << "\n";
  return 1;
}

/// Runs the IR with the reference evaluator; traced values go to
/// --dump-hidden (their paths into `written`).
static llvm::Expected<rt::RunArray>
interpretModel(const rt::Checkpoint &checkpoint, const rt::RunArray &runInput,
               std::vector<std::string> &written) {
  ref::Array input;
  input.shape.assign(runInput.shape.begin(), runInput.shape.end());
  input.data = runInput.data;
  DialectRegistry registry;
  registry.insert<mlir::glint::GlintDialect, arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, scf::SCFDialect,
                  tensor::TensorDialect>();
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  std::string error;
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(modelPath, sourceMgr, ParserConfig(&context));
  if (!module)
    return llvm::createStringError(
        modelPath + ": cannot parse the model (see the diagnostics above)");

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

  ref::ReferenceEvaluator evaluator(*module, weights);
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

/// Runs a library made by glint-compile.
static llvm::Expected<rt::RunArray>
runLibrary(const rt::Checkpoint &checkpoint, const rt::RunArray &input) {
  auto model = rt::CompiledModel::load(modelPath);
  if (!model)
    return model.takeError();
  if (llvm::Error e = (*model)->bindWeights(checkpoint))
    return std::move(e);
  return rt::runCompiled(**model, input, modelPath);
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-run: run a glint model on token ids or an image\n\n"
      "  glint-run --interpret model.mlir --weights model.safetensors "
      "--tokens 1,2,3 -o logits.npy\n");

  if (weightsPath.empty())
    return fail("--weights is required (a .safetensors file, an index "
                ".json or a checkpoint directory)");
  rt::setThreads(threads);
  auto input = rt::readRunInput(tokens, text, vocabPath, inputNpy);
  if (!input)
    return fail(llvm::toString(input.takeError()));
  auto checkpoint = rt::Checkpoint::open(weightsPath);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
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
