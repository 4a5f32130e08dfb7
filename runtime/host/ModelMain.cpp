//===- ModelMain.cpp - main() of standalone compiled models ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// `glint-compile -emit=exe` links a model's object code with this file and
// the runtime: the program runs its model like glint-run runs a library,
//
//   ./model --weights model.safetensors --tokens 1,2,3 [-o logits.npy]
//   ./model --weights model.safetensors --tokens 1,2,3 --generate 20
//
//===----------------------------------------------------------------------===//

#include "runtime/host/CompiledModel.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/Safetensors.h"

#include "runtime/io/CrashReport.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

using namespace mlir::glint::runtime;
namespace cl = llvm::cl;

// Defined by the model's object code; glint_step only in models that can
// generate (weak: null otherwise).
extern "C" void glint_forward(void **args);
extern "C" __attribute__((weak)) void glint_step(void **args);
extern "C" const char *const glint_model_info;
// The model's allocator (runtime/ModelAlloc.c) releases its results.
extern "C" __attribute__((weak)) void glint_free(void *pointer);

static cl::OptionCategory category("model options");
static cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("Weights: a .safetensors file, a sharded index .json, or a "
             "checkpoint directory"),
    cl::value_desc("path"), cl::Required, cl::cat(category));
static cl::opt<std::string>
    tokens("tokens",
           cl::desc("Token ids: comma-separated, one sequence per ';'"),
           cl::value_desc("ids"), cl::cat(category));
static cl::opt<std::string>
    text("text", cl::desc("Input words, mapped through --vocab"),
         cl::value_desc("words"), cl::cat(category));
static cl::opt<std::string>
    vocabPath("vocab", cl::desc("JSON vocabulary (word → token id)"),
              cl::value_desc("vocab.json"), cl::cat(category));
static cl::opt<std::string>
    inputNpy("input", cl::desc("Input .npy: int64 token ids or float pixels"),
             cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string> outputPath("o",
                                       cl::desc("Write the result as .npy"),
                                       cl::value_desc("file.npy"),
                                       cl::cat(category));
// The old name of --threads (see main), kept for scripts that use it.
static cl::opt<unsigned> numThreads("num-threads", cl::Hidden,
                                    cl::desc("Same as --threads"), cl::init(0),
                                    cl::cat(category));
static cl::opt<unsigned> topK("top",
                              cl::desc("Print the top-K of the last position"),
                              cl::init(5), cl::cat(category));
static cl::opt<unsigned> generate(
    "generate",
    cl::desc("Generate N tokens greedily after the input, one per step, "
             "carrying the model's state (-o writes their logits)"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "model") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::glint::runtime::setBugReportMessage();
  cl::opt<int> *threadsOpt = adoptThreadsOption(
      category, "Threads for a compiled model's parallel loops (default: "
                "one per core)");
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "a glint model compiled for this CPU\n");
  auto threads = threadsGiven(threadsOpt, numThreads);
  if (!threads)
    return fail(llvm::toString(threads.takeError()));
  setThreads(*threads);
  if (llvm::Error e = checkGenerationLength(generate))
    return fail(llvm::toString(std::move(e)));
  auto input = readRunInput(tokens, text, vocabPath, inputNpy);
  if (!input)
    return fail(llvm::toString(input.takeError()));
  auto model = CompiledModel::fromSymbols(glint_forward, glint_step,
                                          glint_model_info, glint_free);
  if (!model)
    return fail(llvm::toString(model.takeError()));
  auto checkpoint = Checkpoint::open(weightsPath);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
  if (llvm::Error e = (*model)->bindWeights(**checkpoint))
    return fail(llvm::toString(std::move(e)));
  const Vocabulary *vocab = input->vocab ? &*input->vocab : nullptr;
  if (generate > 0) {
    auto generation = generateCompiled(**model, input->array, generate, argv[0],
                                       /*keepLogits=*/!outputPath.empty());
    if (!generation)
      return fail(llvm::toString(generation.takeError()));
    printGeneration(llvm::outs(), input->array, generation->tokens, vocab);
    llvm::outs().flush();
    printGenerationTime(llvm::errs(), *generation, input->array.shape[1]);
    if (!outputPath.empty()) {
      if (llvm::Error e = writeResult(outputPath, generation->logits,
                                      /*asFloat32=*/true))
        return fail(llvm::toString(std::move(e)));
      llvm::outs() << "wrote " << outputPath << "\n";
    }
    return 0;
  }
  auto result = runCompiled(**model, input->array, argv[0]);
  if (!result)
    return fail(llvm::toString(result.takeError()));
  printShape(llvm::outs(), *result);
  if (!outputPath.empty()) {
    if (llvm::Error e = writeResult(outputPath, *result, /*asFloat32=*/true))
      return fail(llvm::toString(std::move(e)));
    llvm::outs() << "wrote " << outputPath << "\n";
  }
  printTopK(llvm::outs(), *result, topK, vocab);
  return 0;
}
