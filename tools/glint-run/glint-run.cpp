//===- glint-run.cpp - run a glint model ----------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Runs a model on token ids (or an image) and writes its outputs as .npy.
// With -m DIR -p TEXT it is the one-command run of a checkpoint: the
// tokenizer DIR ships, the model compiled by glint-compile --cache (once;
// later runs load it from the cache), the continuation printed as text as
// it is generated.
// With --interpret, the model IR is executed by the double-precision
// reference evaluator, the oracle every compiled path is checked against;
// glint-run itself loads no MLIR and hands that mode to glint-interpret (see
// Interpreter.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"
#include "tools/ToolVersion.h"
#include "tools/glint-run/Interpreter.h"

#include "explain/ImageInput.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/host/Generate.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Safetensors.h"
#include "runtime/text/Tokenizer.h"

#include "runtime/io/CrashReport.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace rt = mlir::glint::runtime;
namespace ex = mlir::glint::explain;
namespace run = mlir::glint::run;
namespace cl = llvm::cl;
namespace tx = mlir::glint::text;
#include <chrono>
#include <random>

using llvm::StringRef;

static cl::OptionCategory category("glint-run options");
static cl::opt<std::string> modelPath(
    cl::Positional,
    cl::desc("<model.so from glint-compile, or model.mlir with --interpret>"),
    cl::cat(category));

static cl::OptionCategory
    runCategory("One-command run (glint-run -m DIR -p TEXT -n N)");
static cl::opt<std::string> checkpointDir(
    "m",
    cl::desc("A checkpoint directory (config.json, safetensors and a "
             "tokenizer): compile it (cached) and generate text after -p"),
    cl::value_desc("dir"), cl::cat(runCategory));
static cl::alias checkpointDirLong("model", cl::aliasopt(checkpointDir),
                                   cl::desc("Alias for -m"),
                                   cl::cat(runCategory));
static cl::opt<std::string> prompt("p", cl::desc("The prompt (-m)"),
                                   cl::value_desc("text"),
                                   cl::cat(runCategory));
static cl::alias promptLong("prompt", cl::aliasopt(prompt),
                            cl::desc("Alias for -p"), cl::cat(runCategory));
static cl::opt<std::string>
    promptFile("f",
               cl::desc("Read the prompt from this file (-m), byte for byte"),
               cl::value_desc("file"), cl::cat(runCategory));
static cl::alias promptFileLong("file", cl::aliasopt(promptFile),
                                cl::desc("Alias for -f"), cl::cat(runCategory));
static cl::opt<unsigned> predict("n",
                                 cl::desc("Tokens to generate (-m; default "
                                          "32)"),
                                 cl::value_desc("N"), cl::init(32),
                                 cl::cat(runCategory));
static cl::alias predictLong("n-predict", cl::aliasopt(predict),
                             cl::desc("Alias for -n"), cl::cat(runCategory));
static cl::opt<double>
    temperature("temp",
                cl::desc("Sampling temperature (-m; default 0: greedy)"),
                cl::init(0.0), cl::cat(runCategory));
static cl::opt<int64_t>
    topKSampling("top-k",
                 cl::desc("Sample from the K most likely tokens (-m; 0: all)"),
                 cl::init(0), cl::cat(runCategory));
static cl::opt<double>
    topP("top-p",
         cl::desc("Sample from the most likely tokens that make up "
                  "probability P (-m; default 1: all)"),
         cl::init(1.0), cl::cat(runCategory));
static cl::opt<uint64_t>
    seed("seed",
         cl::desc("Seed of the sampler (-m; default: a random one, printed)"),
         cl::cat(runCategory));
static cl::opt<std::string>
    cacheDir("cache-dir",
             cl::desc("The compile cache (-m; default: $GLINT_CACHE_DIR, else "
                      "$XDG_CACHE_HOME/glint, else ~/.cache/glint)"),
             cl::value_desc("dir"), cl::cat(runCategory));
static cl::opt<bool> ignoreEos(
    "ignore-eos",
    cl::desc("-m: go on after the end-of-sequence token (config.json's "
             "eos_token_id)"),
    cl::cat(runCategory));
static cl::opt<bool>
    showIds("show-ids",
            cl::desc("-m: also print the prompt's and the generated token ids"),
            cl::cat(runCategory));
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
    cl::desc("Input text, through --vocab or the tokenizer of the --weights "
             "directory (with a word-level vocab.json: words split on "
             "spaces, one sequence per ';')"),
    cl::value_desc("text"), cl::cat(category));
static cl::opt<std::string> vocabPath(
    "vocab",
    cl::desc("The tokenizer for --text and for printing tokens as text: a "
             "tokenizer.json, tokenizer.model, RWKV rwkv_vocab*.txt or a "
             "word-level vocab.json (default: the one in the --weights "
             "directory)"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string>
    inputNpy("input",
             cl::desc("Input array as .npy: int64 token ids [batch, seq] or "
                      "float pixels [batch, 3, H, W]; or a PNG or JPEG "
                      "picture for a compiled image model, resized and "
                      "normalised as the --weights directory's config says"),
             cl::value_desc("file.npy|picture"), cl::cat(category));
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

/// Class names of an image model (config.json's id2label), by class id.
static std::map<int64_t, std::string> classNames;

/// Where a picture's preprocessing config and class names are: the
/// --weights directory, or the folder of the --weights file.
static std::string pictureModelDirectory() {
  return llvm::sys::fs::is_directory(weightsPath)
             ? weightsPath.getValue()
             : llvm::sys::path::parent_path(weightsPath).str();
}

/// A PNG or JPEG picture as the compiled image model at modelPath reads
/// it: decoded, resized to its [1, 3, H, W] input, centre-cropped and
/// normalised as the preprocessing config of the --weights directory says
/// (ImageNet's statistics by default), as glint-explain does.
static llvm::Expected<rt::RunArray> readPicture(StringRef path) {
  if (interpreter)
    return llvm::createStringError(
        path + ": pictures are read for compiled models (the input size comes "
               "from the library); with --interpret give the pixels as .npy, "
               "or explain the picture with glint-explain");
  auto model = rt::CompiledModel::load(modelPath);
  if (!model)
    return model.takeError();
  const rt::TensorSpec &spec = (*model)->info().inputs.front();
  if (spec.rank() != 4 || spec.shape[1] != 3 || spec.shape[2] <= 0 ||
      spec.shape[2] != spec.shape[3])
    return llvm::createStringError(
        path +
        ": a picture is input for an image model with a square "
        "[batch, 3, H, W] input of static size; " +
        modelPath + " reads " + spec.dtype + " of rank " +
        std::to_string(spec.rank()));
  auto picture = ex::readImageFile(path);
  if (!picture)
    return picture.takeError();
  auto preprocessing =
      ex::readImagePreprocessing(pictureModelDirectory(), spec.shape[2]);
  if (!preprocessing)
    return preprocessing.takeError();
  std::vector<float> pixels = ex::preprocessImage(*picture, *preprocessing);
  rt::RunArray input;
  input.integer = false;
  input.shape = {1, 3, spec.shape[2], spec.shape[3]};
  input.data.assign(pixels.begin(), pixels.end());
  return input;
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
                         const rt::RunInput &input,
                         llvm::function_ref<std::string(int64_t)> name) {
  if (!hiddenDir.empty())
    return fail("--dump-hidden does not combine with --generate");
  auto generation = [&]() -> llvm::Expected<rt::Generation> {
    if (interpreter)
      return interpreter->generate(checkpoint, input.array, generate);
    auto model = loadLibrary(checkpoint);
    if (!model)
      return model.takeError();
    // The logits of every generated token (count x vocab doubles: 161 MB
    // for 400 tokens of a 50k vocabulary) are kept only for -o.
    return rt::generateCompiled(**model, input.array, generate, modelPath,
                                /*keepLogits=*/!outputPath.empty());
  }();
  if (!generation)
    return fail(llvm::toString(generation.takeError()));
  rt::printGeneration(llvm::outs(), input.array, generation->tokens, name);
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

/// config.json's eos_token_id (a number, or the first of a list), if any.
static std::optional<int64_t> endOfSequence(StringRef directory) {
  llvm::SmallString<256> path(directory);
  llvm::sys::path::append(path, "config.json");
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return std::nullopt;
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed) {
    llvm::consumeError(parsed.takeError());
    return std::nullopt;
  }
  const llvm::json::Object *config = parsed->getAsObject();
  const llvm::json::Value *eos = config ? config->get("eos_token_id") : nullptr;
  if (!eos)
    return std::nullopt;
  if (const llvm::json::Array *list = eos->getAsArray())
    return list->empty() ? std::nullopt : (*list)[0].getAsInteger();
  return eos->getAsInteger();
}

/// glint-run -m DIR -p TEXT: tokenizes the prompt, finds or compiles the
/// model in the compile cache, and prints the prompt and its continuation
/// as text as each token is chosen; times on stderr. Every check of the
/// input comes before any output.
static int runCheckpoint(const char *argv0,
                         std::chrono::steady_clock::time_point started) {
  if (!modelPath.empty())
    return fail("-m DIR runs the checkpoint in DIR: give no model file (" +
                modelPath + ") with it");
  if (!tokens.empty() || !text.empty() || !inputNpy.empty() ||
      !weightsPath.empty() || !vocabPath.empty() || generate > 0 ||
      !outputPath.empty() || interpret || !hiddenDir.empty() || repeat > 0)
    return fail("-m DIR -p TEXT takes its weights and tokenizer from DIR: it "
                "does not combine with --tokens, --text, --input, --weights, "
                "--vocab, --generate, --interpret, --dump-hidden, --repeat or "
                "-o");
  if (prompt.getNumOccurrences() + promptFile.getNumOccurrences() != 1)
    return fail("-m needs one prompt: -p TEXT or -f FILE");
  if (llvm::Error e = rt::checkGenerationLength(predict, "-n"))
    return fail(llvm::toString(std::move(e)));
  if (!promptFile.empty()) {
    auto buffer = llvm::MemoryBuffer::getFile(promptFile);
    if (!buffer)
      return fail("-f " + promptFile + ": " + buffer.getError().message());
    prompt = (*buffer)->getBuffer().str();
  }
  if (!llvm::sys::fs::is_directory(checkpointDir))
    return fail(checkpointDir + ": not a checkpoint directory");
  rt::SamplingOptions sampling;
  sampling.temperature = temperature;
  sampling.topK = topKSampling;
  sampling.topP = topP;
  if (llvm::Error e = rt::Sampler::check(sampling))
    return fail(llvm::toString(std::move(e)));
  sampling.seed =
      seed.getNumOccurrences() ? seed.getValue() : std::random_device()();
  auto tokenizer = tx::Tokenizer::fromDirectory(checkpointDir);
  if (!tokenizer)
    return fail(llvm::toString(tokenizer.takeError()));
  auto ids = (*tokenizer)->encodePrompt(prompt);
  if (!ids)
    return fail("-p: " + llvm::toString(ids.takeError()));
  auto checkpoint = rt::Checkpoint::open(checkpointDir);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
  auto library = rt::compileInCache(
      llvm::sys::fs::getMainExecutable(argv0, reinterpret_cast<void *>(&fail)),
      checkpointDir, {}, cacheDir, "-m");
  if (!library)
    return fail(llvm::toString(library.takeError()));
  auto model = rt::CompiledModel::load(library->path);
  if (!model)
    return fail(llvm::toString(model.takeError()));
  if (llvm::Error e = (*model)->bindWeights(**checkpoint, allowNonFinite))
    return fail(llvm::toString(std::move(e)));
  const rt::ModelInfo &info = (*model)->info();
  int64_t limit = info.inputs.empty() ? 0 : info.inputs.front().limit;
  for (int64_t id : *ids)
    if (limit > 0 && id >= limit)
      return fail(llvm::formatv("-p: token {0} of the prompt is outside the "
                                "model's vocabulary: the tokenizer of {1} "
                                "does not belong to this model",
                                id, checkpointDir));
  double startup =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  std::optional<int64_t> eos =
      ignoreEos ? std::nullopt : endOfSequence(checkpointDir);

  // The continuation, printed as soon as its bytes make whole characters.
  const tx::Tokenizer &tok = **tokenizer;
  std::vector<int64_t> sequence = *ids;
  size_t base = tok.decodeBytes(*ids).size(), printed = 0;
  std::string pending;
  llvm::outs() << prompt;
  llvm::outs().flush();
  rt::Sampler sampler(sampling);
  auto stats = rt::generateStream(
      **model, *ids, predict, sampler,
      [&](int64_t token) {
        if (eos && token == *eos)
          return false;
        sequence.push_back(token);
        std::string all = tok.decodeBytes(sequence);
        if (all.size() >= base + printed) {
          StringRef fresh = StringRef(all).drop_front(base + printed);
          size_t whole = tx::completeUtf8Prefix(fresh);
          llvm::outs() << tx::toValidUtf8(fresh.take_front(whole));
          printed += whole;
        }
        llvm::outs().flush();
        return true;
      },
      library->path);
  if (!stats) {
    llvm::outs() << "\n";
    return fail(llvm::toString(stats.takeError()));
  }
  std::string all = tok.decodeBytes(sequence);
  if (all.size() > base + printed)
    llvm::outs() << tx::toValidUtf8(StringRef(all).drop_front(base + printed));
  llvm::outs() << "\n";
  if (showIds) {
    llvm::outs() << "ids:";
    for (int64_t id : *ids)
      llvm::outs() << " " << id;
    llvm::outs() << " =>";
    for (size_t i = ids->size(); i < sequence.size(); ++i)
      llvm::outs() << " " << sequence[i];
    llvm::outs() << "\n";
  }
  llvm::outs().flush();

  auto rate = [](int64_t n, double seconds) {
    return seconds > 0 ? llvm::formatv("{0:F1} tokens/s", n / seconds).str()
                       : std::string("- tokens/s");
  };
  llvm::errs() << llvm::formatv(
      "start-up: {0:F1} ms ({1} {2}; {3} tokenizer {4})\n", startup * 1e3,
      library->cached ? "library from the compile cache:"
                      : "compiled into the compile cache:",
      library->path, tok.kind(), tok.path());
  if (temperature > 0)
    llvm::errs() << llvm::formatv(
        "sampling: temperature {0}, top-k {1}, "
        "top-p {2}, seed {3}\n",
        llvm::format("%g", sampling.temperature), sampling.topK,
        llvm::format("%g", sampling.topP), sampling.seed);
  llvm::errs() << llvm::formatv(
      "prompt: {0} tokens in {1:F3} ms ({2})\n", stats->promptTokens,
      stats->promptSeconds * 1e3,
      rate(stats->promptTokens, stats->promptSeconds));
  llvm::errs() << llvm::formatv(
      "generation: {0} tokens; {1} steps of one token in {2:F3} ms ({3})\n",
      stats->generated, stats->steps, stats->stepSeconds * 1e3,
      rate(stats->steps, stats->stepSeconds));
  return 0;
}

int main(int argc, char **argv) {
  auto started = std::chrono::steady_clock::now();
  llvm::InitLLVM init(argc, argv);
  mlir::glint::addGlintVersionPrinter();
  mlir::glint::runtime::setBugReportMessage();
  cl::opt<int> *threadsOpt = rt::adoptThreadsOption(
      category, "Threads for a compiled model's parallel loops (default: "
                "one per core)");
  cl::HideUnrelatedOptions({&category, &runCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-run: run a glint model on token ids or an image\n\n"
      "  glint-run -m checkpoint/ -p 'Once upon a time' -n 32\n"
      "  glint-run model.so --weights checkpoint/ --text 'Once upon' "
      "--generate 8\n"
      "  glint-run --interpret model.mlir --weights model.safetensors "
      "--tokens 1,2,3 -o logits.npy\n");

  if (!checkpointDir.empty() || prompt.getNumOccurrences() ||
      promptFile.getNumOccurrences()) {
    if (checkpointDir.empty())
      return fail("-p and -f need -m DIR (the checkpoint to run)");
    auto threads = rt::threadsGiven(threadsOpt, numThreads);
    if (!threads)
      return fail(llvm::toString(threads.takeError()));
    rt::setThreads(*threads);
    return runCheckpoint(argv[0], started);
  }
  if (modelPath.empty())
    return fail("no model given: glint-run MODEL.so --weights DIR ..., or "
                "glint-run -m CHECKPOINT_DIR -p TEXT (see glint-run --help)");

  interpreter =
      run::makeInterpreter({modelPath, functionName, hiddenDir, writeF32});
  if (interpret && !interpreter)
    return runInterpreterTool(argc, argv);
  // dlopen's message for a text file ("invalid ELF header") says nothing of
  // what to do.
  if (!interpret && llvm::sys::path::extension(modelPath) == ".mlir")
    return fail(modelPath +
                " is model IR, not a compiled library: compile "
                "it with glint-compile " +
                modelPath +
                " -o model.so, or run it with --interpret (the "
                "double-precision reference evaluator)");

  if (weightsPath.empty())
    return fail("--weights is required (a .safetensors file, an index "
                ".json or a checkpoint directory)");
  auto threads = rt::threadsGiven(threadsOpt, numThreads);
  if (!threads)
    return fail(llvm::toString(threads.takeError()));
  rt::setThreads(*threads);
  if (llvm::Error e = rt::checkGenerationLength(generate))
    return fail(llvm::toString(std::move(e)));
  // The tokenizer: --vocab, else (for --text) the --weights directory's.
  std::unique_ptr<tx::Tokenizer> tokenizer;
  if (!vocabPath.empty()) {
    auto t = tx::Tokenizer::open(vocabPath);
    if (!t)
      return fail(llvm::toString(t.takeError()));
    tokenizer = std::move(*t);
  } else if (!text.empty()) {
    auto t = llvm::sys::fs::is_directory(weightsPath)
                 ? tx::Tokenizer::fromDirectory(weightsPath)
                 : llvm::createStringError("--weights is a file");
    if (!t)
      return fail("--text needs --vocab (a tokenizer file) or a --weights "
                  "directory with a tokenizer: " +
                  llvm::toString(t.takeError()));
    tokenizer = std::move(*t);
  }
  llvm::Expected<rt::RunInput> input = rt::RunInput();
  if (tokenizer && tokenizer->isWordLevel()) {
    // Words split on spaces, one sequence per ';', as always.
    input = rt::readRunInput(tokens, text, tokenizer->path(), inputNpy);
  } else if (!text.empty()) {
    if (!tokens.empty() || !inputNpy.empty())
      return fail("give exactly one input: --tokens, --text or --input");
    auto ids = tokenizer->encodePrompt(text);
    if (!ids)
      return fail("--text: " + llvm::toString(ids.takeError()));
    input->array.shape = {1, static_cast<int64_t>(ids->size())};
    input->array.data.assign(ids->begin(), ids->end());
  } else if (!inputNpy.empty() && ex::isPictureFile(inputNpy)) {
    if (!tokens.empty())
      return fail("give exactly one input: --tokens, --text or --input");
    auto pixels = readPicture(inputNpy);
    if (!pixels)
      return fail(llvm::toString(pixels.takeError()));
    input->array = std::move(*pixels);
    auto names = ex::readClassNames(pictureModelDirectory());
    if (!names)
      return fail(llvm::toString(names.takeError()));
    classNames = std::move(*names);
  } else {
    input = rt::readRunInput(tokens, "", "", inputNpy);
  }
  if (!input)
    return fail(llvm::toString(input.takeError()));
  // Tokens as text: the word-level vocabulary's words, or the tokenizer's.
  auto word = [&](int64_t id) -> std::string {
    if (auto it = classNames.find(id); it != classNames.end())
      return it->second;
    if (input->vocab)
      return input->vocab->words.count(id) ? input->vocab->words.at(id) : "";
    return tokenizer ? tokenizer->tokenText(id) : "";
  };
  auto name = [&](int64_t id) {
    std::string w = word(id);
    return w.empty() ? std::to_string(id) : w;
  };
  auto checkpoint = rt::Checkpoint::open(weightsPath);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
  if (generate > 0)
    return runGeneration(**checkpoint, *input, name);
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
  rt::printTopK(llvm::outs(), logits, topK, word);
  return 0;
}
