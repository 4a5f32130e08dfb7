//===- glint-run.cpp - run a glint model ----------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Runs a model on token ids (or an image) and writes its outputs as .npy.
// With --interpret, the model IR is executed by the double-precision
// reference evaluator, the oracle every compiled path is checked against;
// glint-run itself loads no MLIR and hands that mode to glint-interpret (see
// Interpreter.h).
//
//===----------------------------------------------------------------------===//

#include "tools/glint-run/Interpreter.h"

#include "runtime/host/CompiledModel.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Safetensors.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace rt = mlir::glint::runtime;
namespace run = mlir::glint::run;
namespace cl = llvm::cl;
#include <chrono>

using llvm::StringRef;

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

static cl::opt<bool> allowNonFinite(
    "allow-nonfinite-weights",
    cl::desc("Compiled models: run even if a weight holds NaN or Inf (by "
             "default that is an error naming the weight)"),
    cl::cat(category));

static cl::opt<unsigned> repeat(
    "repeat",
    cl::desc("Compiled models: after the first forward, call the model N "
             "more times on the same input and print the mean time per call "
             "(the call and copying its result to the host) and tokens per "
             "second"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-run") << message << "\n";
  return 1;
}

/// The reference evaluator (--interpret) when this binary has it.
static std::unique_ptr<run::Interpreter> interpreter;

/// Runs glint-interpret, next to this program, with this program's
/// arguments, and returns its exit code.
static int runInterpreterTool(int argc, char **argv) {
  std::string self = llvm::sys::fs::getMainExecutable(
      argv[0], reinterpret_cast<void *>(&fail));
  llvm::SmallString<256> tool(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(tool, "glint-interpret");
  if (!llvm::sys::fs::can_execute(tool))
    return fail("--interpret runs glint-interpret, which is not next to "
                "glint-run (" +
                tool + ")");
  std::vector<StringRef> args = {tool};
  for (int i = 1; i < argc; ++i)
    args.push_back(argv[i]);
  std::string error;
  int rc =
      llvm::sys::ExecuteAndWait(tool, args, std::nullopt, {}, 0, 0, &error);
  if (rc < 0)
    return fail("cannot run " + tool + ": " + error);
  return rc;
}

/// The library made by glint-compile, its weights bound.
static llvm::Expected<std::unique_ptr<rt::CompiledModel>>
loadLibrary(const rt::Checkpoint &checkpoint) {
  auto model = rt::CompiledModel::load(modelPath);
  if (!model)
    return model.takeError();
  if (llvm::Error e = (*model)->bindWeights(checkpoint, allowNonFinite))
    return std::move(e);
  return model;
}

/// Runs a library made by glint-compile (and with --repeat, times it).
static llvm::Expected<rt::RunArray> runLibrary(const rt::Checkpoint &checkpoint,
                                               const rt::RunArray &input) {
  auto model = loadLibrary(checkpoint);
  if (!model)
    return model.takeError();
  auto result = rt::runCompiled(**model, input, modelPath);
  if (!result || repeat == 0)
    return result;
  // The calls alone: the input is converted once, and each call's result is
  // copied to the host (as every caller's is) but not converted further.
  const rt::TensorSpec &spec = (*model)->info().inputs.front();
  rt::HostArray hostInput = rt::toHostArray(input, spec.dtype);
  auto start = std::chrono::steady_clock::now();
  for (unsigned i = 0; i < repeat; ++i)
    if (auto again = (*model)->run({hostInput}); !again)
      return again.takeError();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count() /
      repeat;
  int64_t tokens = 1;
  for (size_t k = 0; k < std::min<size_t>(2, input.shape.size()); ++k)
    tokens *= input.shape[k];
  llvm::errs() << llvm::formatv("forward: {0:f3} ms per call over {1} calls "
                                "({2:f1} tokens/s, {3})\n",
                                seconds * 1e3, repeat, tokens / seconds,
                                (*model)->onDevice() ? "GPU" : "CPU");
  return result;
}

/// --generate: prints the tokens, writes their logits with -o.
static int runGeneration(const rt::Checkpoint &checkpoint,
                         const rt::RunInput &input) {
  if (!hiddenDir.empty())
    return fail("--dump-hidden does not combine with --generate");
  auto generation = [&]() -> llvm::Expected<rt::Generation> {
    if (interpreter)
      return interpreter->generate(checkpoint, input.array, generate);
    auto model = loadLibrary(checkpoint);
    if (!model)
      return model.takeError();
    return rt::generateCompiled(**model, input.array, generate, modelPath);
  }();
  if (!generation)
    return fail(llvm::toString(generation.takeError()));
  rt::printGeneration(llvm::outs(), input.array, generation->tokens,
                      input.vocab ? &*input.vocab : nullptr);
  if (!interpreter) {
    llvm::outs().flush();
    rt::printGenerationTime(llvm::errs(), *generation, input.array.shape[1]);
  }
  if (!outputPath.empty()) {
    if (llvm::Error e = rt::writeResult(outputPath, generation->logits,
                                        writeF32 || !interpreter))
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

  interpreter =
      run::makeInterpreter({modelPath, functionName, hiddenDir, writeF32});
  if (interpret && !interpreter)
    return runInterpreterTool(argc, argv);

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
  if (interpreter) {
    auto result = interpreter->run(**checkpoint, input->array, written);
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
            rt::writeResult(outputPath, logits, writeF32 || !interpreter))
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
