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
static cl::opt<unsigned> topK("top", cl::desc("Print the top-K next tokens "
                                              "per sequence"),
                              cl::init(5), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-run") << message << "\n";
  return 1;
}

/// Parses --tokens into a [batch, seq] array.
static llvm::Expected<ref::Array> parseTokens(StringRef text) {
  SmallVector<StringRef> rows;
  text.split(rows, ';', -1, /*KeepEmpty=*/false);
  if (rows.empty())
    return llvm::createStringError("--tokens: no token ids given");
  ref::Array ids;
  int64_t length = -1;
  for (auto [r, row] : llvm::enumerate(rows)) {
    SmallVector<StringRef> items;
    row.split(items, ',', -1, /*KeepEmpty=*/false);
    if (length >= 0 && static_cast<int64_t>(items.size()) != length)
      return llvm::createStringError(llvm::formatv(
          "--tokens: sequence {0} has {1} ids but sequence 0 has {2}; all "
          "sequences of a batch need the same length",
          r, items.size(), length));
    length = items.size();
    for (StringRef item : items) {
      int64_t id;
      if (item.trim().getAsInteger(10, id))
        return llvm::createStringError(llvm::formatv(
            "--tokens: '{0}' in sequence {1} is not an integer token id",
            item.trim(), r));
      ids.data.push_back(static_cast<double>(id));
    }
  }
  if (length == 0)
    return llvm::createStringError("--tokens: empty sequence");
  ids.shape = {static_cast<int64_t>(rows.size()), length};
  return ids;
}

/// Word → id and id → word, from a JSON object {"word": id, ...}.
struct Vocabulary {
  llvm::StringMap<int64_t> ids;
  std::map<int64_t, std::string> words;
};

static llvm::Expected<Vocabulary> readVocabulary(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto parsed = llvm::json::parse((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(path + ": invalid JSON: " +
                                   llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  // The bundled models' vocabularies keep the map under "word_to_id".
  if (object && object->getObject("word_to_id"))
    object = object->getObject("word_to_id");
  if (!object)
    return llvm::createStringError(
        path + ": expected an object mapping words to token ids");
  Vocabulary vocab;
  for (const auto &[word, value] : *object) {
    auto id = value.getAsInteger();
    if (!id)
      return llvm::createStringError(path + ": the id of '" + word.str() +
                                     "' is not an integer");
    vocab.ids[word.str()] = *id;
    vocab.words[*id] = word.str();
  }
  return vocab;
}

/// Maps --text through the vocabulary into a [batch, seq] array.
static llvm::Expected<ref::Array> parseText(StringRef input,
                                            const Vocabulary &vocab) {
  std::string ids;
  SmallVector<StringRef> rows;
  input.split(rows, ';', -1, /*KeepEmpty=*/false);
  for (auto [r, row] : llvm::enumerate(rows)) {
    SmallVector<StringRef> words;
    row.split(words, ' ', -1, /*KeepEmpty=*/false);
    if (r)
      ids += ";";
    for (auto [i, word] : llvm::enumerate(words)) {
      auto it = vocab.ids.find(word);
      if (it == vocab.ids.end())
        return llvm::createStringError(llvm::formatv(
            "--text: '{0}' (word {1} of sequence {2}) is not in the "
            "vocabulary {3}",
            word, i, r, vocabPath));
      ids += (i ? "," : "") + std::to_string(it->second);
    }
  }
  return parseTokens(ids);
}

/// Whether the input holds integers (token ids) rather than floats.
static bool inputIsInteger = true;

static llvm::Expected<ref::Array> readInput(StringRef path) {
  // Token ids first; a float file is an image.
  if (auto ints = rt::readNpyI64(path)) {
    ref::Array a;
    a.shape.assign(ints->shape.begin(), ints->shape.end());
    a.data.assign(ints->data.begin(), ints->data.end());
    return a;
  } else {
    llvm::consumeError(ints.takeError());
  }
  auto floats = rt::readNpyF64(path);
  if (!floats)
    return floats.takeError();
  inputIsInteger = false;
  ref::Array a;
  a.shape.assign(floats->shape.begin(), floats->shape.end());
  a.data = std::move(floats->data);
  return a;
}

static llvm::Error writeArray(StringRef path, const ref::Array &a) {
  if (writeF32 || !interpret) {
    std::vector<float> data(a.data.begin(), a.data.end());
    return rt::writeNpy(path, a.shape, ArrayRef<float>(data));
  }
  return rt::writeNpy(path, a.shape, ArrayRef<double>(a.data));
}

/// Runs the IR with the reference evaluator; traced values go to
/// --dump-hidden (their paths into `written`).
static llvm::Expected<ref::Array>
interpretModel(const rt::Checkpoint &checkpoint, const ref::Array &input,
               std::vector<std::string> &written) {
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
      if (llvm::Error e = writeArray(path, value))
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

  return std::move((*results)[0]);
}

/// Runs a library made by glint-compile.
static llvm::Expected<ref::Array> runCompiled(const rt::Checkpoint &checkpoint,
                                              const ref::Array &input) {
  auto model = rt::CompiledModel::load(modelPath);
  if (!model)
    return model.takeError();
  if (llvm::Error e = (*model)->bindWeights(checkpoint))
    return std::move(e);
  const rt::ModelInfo &info = (*model)->info();
  if (info.inputs.size() != 1)
    return llvm::createStringError(llvm::formatv(
        "{0} takes {1} inputs; glint-run passes one", modelPath,
        info.inputs.size()));
  const std::string &dtype = info.inputs[0].dtype;
  bool wantsIntegers = dtype == "i64" || dtype == "i32";
  if (wantsIntegers != inputIsInteger)
    return llvm::createStringError(llvm::formatv(
        "{0} takes {1} ({2}), but the input holds {3}", modelPath,
        wantsIntegers ? "token ids" : "floating-point values", dtype,
        inputIsInteger ? "integers" : "floating-point values"));
  rt::HostArray host = rt::HostArray::make(
      std::vector<int64_t>(input.shape.begin(), input.shape.end()), dtype);
  for (int64_t i = 0; i < input.numElements(); ++i) {
    double x = input.data[i];
    if (dtype == "i64")
      host.data<int64_t>()[i] = static_cast<int64_t>(x);
    else if (dtype == "i32")
      host.data<int32_t>()[i] = static_cast<int32_t>(x);
    else if (dtype == "f32")
      host.data<float>()[i] = static_cast<float>(x);
    else
      host.data<double>()[i] = x;
  }
  auto result = (*model)->run({host});
  if (!result)
    return result.takeError();
  ref::Array out;
  out.shape.assign(result->shape.begin(), result->shape.end());
  for (int64_t i = 0; i < result->numElements(); ++i)
    out.data.push_back(result->dtype == "f32" ? result->data<float>()[i]
                                              : result->data<double>()[i]);
  return out;
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
  if (!tokens.empty() + !inputNpy.empty() + !text.empty() != 1)
    return fail("give exactly one input: --tokens, --text or --input");
  std::optional<Vocabulary> vocab;
  if (!vocabPath.empty()) {
    auto read = readVocabulary(vocabPath);
    if (!read)
      return fail(llvm::toString(read.takeError()));
    vocab = std::move(*read);
  }
  if (!text.empty() && !vocab)
    return fail("--text needs --vocab (a JSON object mapping words to ids)");

  auto checkpoint = rt::Checkpoint::open(weightsPath);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));
  auto input = !text.empty()     ? parseText(text, *vocab)
               : !tokens.empty() ? parseTokens(tokens)
                                 : readInput(inputNpy);
  if (!input)
    return fail(llvm::toString(input.takeError()));

  ref::Array logits;
  std::vector<std::string> written;
  if (interpret) {
    auto result = interpretModel(**checkpoint, *input, written);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    logits = std::move(*result);
  } else {
    if (!hiddenDir.empty())
      return fail("--dump-hidden needs --interpret (compiled models do not "
                  "record hidden states yet)");
    auto result = runCompiled(**checkpoint, *input);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    logits = std::move(*result);
  }
  llvm::outs() << "result: [";
  llvm::interleaveComma(logits.shape, llvm::outs());
  llvm::outs() << "]\n";
  if (!outputPath.empty()) {
    if (llvm::Error e = writeArray(outputPath, logits))
      return fail(llvm::toString(std::move(e)));
    llvm::outs() << "wrote " << outputPath << "\n";
  }
  if (!written.empty())
    llvm::outs() << "wrote " << written.size() << " traced values to "
                 << hiddenDir << "\n";
  // Top-K of the last position of each sequence (or of each row for a
  // classifier's [batch, classes] output).
  if (topK > 0 && logits.rank() >= 2) {
    int64_t classes = logits.shape.back();
    int64_t rows = logits.shape[0];
    int64_t perRow = logits.numElements() / rows;
    for (int64_t r = 0; r < rows; ++r) {
      const double *last = logits.data.data() + r * perRow + perRow - classes;
      std::vector<int64_t> order(classes);
      for (int64_t i = 0; i < classes; ++i)
        order[i] = i;
      unsigned k = std::min<int64_t>(topK, classes);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int64_t a, int64_t b) { return last[a] > last[b]; });
      llvm::outs() << "sequence " << r << ": top " << k << ":";
      for (unsigned i = 0; i < k; ++i) {
        llvm::outs() << " " << order[i];
        if (vocab && vocab->words.count(order[i]))
          llvm::outs() << " '" << vocab->words[order[i]] << "'";
        llvm::outs() << llvm::formatv(" ({0:F3})", last[order[i]]);
      }
      llvm::outs() << "\n";
    }
  }
  return 0;
}
