//===- RunSupport.cpp - inputs and outputs of the run tools ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/host/RunSupport.h"
#include "runtime/io/InputLimits.h"
#include "runtime/io/Npy.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

using namespace mlir::glint::runtime;
using llvm::Expected;
using llvm::StringRef;

void mlir::glint::runtime::setThreads(unsigned threads) {
  // Compiled models run their parallel loops on LLVM's OpenMP runtime, which
  // reads this when it starts, at the first parallel loop.
  if (threads > 0)
    setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
}

llvm::cl::opt<int> *
mlir::glint::runtime::adoptThreadsOption(llvm::cl::OptionCategory &category,
                                         StringRef description) {
  auto &options = llvm::cl::getRegisteredOptions();
  auto it = options.find("threads");
  if (it == options.end())
    return nullptr;
  auto *option = static_cast<llvm::cl::opt<int> *>(it->second);
  option->setDescription(description);
  option->setValueStr("n");
  option->addCategory(category);
  return option;
}

Expected<unsigned>
mlir::glint::runtime::threadsGiven(llvm::cl::opt<int> *option,
                                   unsigned fallback) {
  if (!option || !option->getNumOccurrences()) {
    if (fallback > kMaxThreads)
      return llvm::createStringError(
          llvm::formatv("--num-threads: {0} exceeds the limit of {1} threads",
                        fallback, kMaxThreads));
    return fallback;
  }
  if (option->getValue() < 1)
    return llvm::createStringError(llvm::formatv(
        "--threads: {0} is not a positive count", option->getValue()));
  if (static_cast<unsigned>(option->getValue()) > kMaxThreads)
    return llvm::createStringError(
        llvm::formatv("--threads: {0} exceeds the limit of {1} threads",
                      option->getValue(), kMaxThreads));
  return static_cast<unsigned>(option->getValue());
}

llvm::Error mlir::glint::runtime::checkGenerationLength(unsigned count,
                                                        StringRef option) {
  if (count > kMaxGeneratedTokens)
    return llvm::createStringError(
        llvm::formatv("{0}: {1} exceeds the limit of {2} tokens", option, count,
                      kMaxGeneratedTokens));
  return llvm::Error::success();
}

Expected<RunArray> mlir::glint::runtime::parseTokens(StringRef text) {
  llvm::SmallVector<StringRef> rows;
  text.split(rows, ';', -1, /*KeepEmpty=*/false);
  if (rows.empty())
    return llvm::createStringError("--tokens: no token ids given");
  RunArray ids;
  int64_t length = -1;
  for (auto [r, row] : llvm::enumerate(rows)) {
    llvm::SmallVector<StringRef> items;
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

Expected<Vocabulary> mlir::glint::runtime::readVocabulary(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto parsed = parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(
        path + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
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

Expected<RunArray> mlir::glint::runtime::parseText(StringRef text,
                                                   const Vocabulary &vocab,
                                                   StringRef vocabPath) {
  std::string ids;
  llvm::SmallVector<StringRef> rows;
  text.split(rows, ';', -1, /*KeepEmpty=*/false);
  for (auto [r, row] : llvm::enumerate(rows)) {
    llvm::SmallVector<StringRef> words;
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

Expected<RunArray> mlir::glint::runtime::readInputNpy(StringRef path) {
  // Token ids first; a float file is an image.
  if (auto ints = readNpyI64(path)) {
    RunArray a;
    a.shape = ints->shape;
    a.data.assign(ints->data.begin(), ints->data.end());
    return a;
  } else {
    llvm::consumeError(ints.takeError());
  }
  auto floats = readNpyF64(path);
  if (!floats)
    return floats.takeError();
  RunArray a;
  a.shape = floats->shape;
  a.data = std::move(floats->data);
  a.integer = false;
  // NaN or Inf pixels make every output NaN without a word.
  for (size_t i = 0; i < a.data.size(); ++i)
    if (!std::isfinite(a.data[i]))
      return llvm::createStringError(llvm::formatv(
          "{0}: element {1} is {2}; inputs must be finite", path, i,
          std::isnan(a.data[i]) ? "NaN"
          : a.data[i] > 0       ? "+inf"
                                : "-inf"));
  return a;
}

/// An input without elements has no last position to report on.
static llvm::Error checkNotEmpty(const RunArray &array, StringRef source) {
  if (array.shape.empty() || array.numElements() == 0)
    return llvm::createStringError(
        source + ": the input is empty (shape " + shapeString(array.shape) +
        "); expected at least one sequence of at least one element");
  return llvm::Error::success();
}

Expected<RunInput> mlir::glint::runtime::readRunInput(StringRef tokens,
                                                      StringRef text,
                                                      StringRef vocabPath,
                                                      StringRef inputNpy) {
  if (!tokens.empty() + !inputNpy.empty() + !text.empty() != 1)
    return llvm::createStringError(
        "give exactly one input: --tokens, --text or --input");
  RunInput input;
  if (!vocabPath.empty()) {
    auto vocab = readVocabulary(vocabPath);
    if (!vocab)
      return vocab.takeError();
    input.vocab = std::move(*vocab);
  }
  if (!text.empty() && !input.vocab)
    return llvm::createStringError(
        "--text needs --vocab (a JSON object mapping words to ids)");
  auto array = !text.empty()     ? parseText(text, *input.vocab, vocabPath)
               : !tokens.empty() ? parseTokens(tokens)
                                 : readInputNpy(inputNpy);
  if (!array)
    return array.takeError();
  if (llvm::Error e =
          checkNotEmpty(*array, !inputNpy.empty() ? inputNpy
                                : !text.empty()   ? StringRef("--text")
                                                  : StringRef("--tokens")))
    return std::move(e);
  input.array = std::move(*array);
  return input;
}

HostArray mlir::glint::runtime::toHostArray(const RunArray &input,
                                            StringRef dtype) {
  HostArray host = HostArray::make(input.shape, dtype.str());
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
  return host;
}

RunArray mlir::glint::runtime::fromHostArray(const HostArray &array) {
  RunArray out;
  out.shape = array.shape;
  out.integer = array.dtype == "i64" || array.dtype == "i32";
  auto widen = [&](const auto *values) {
    out.data.assign(values, values + array.numElements());
  };
  if (array.dtype == "f32")
    widen(array.data<float>());
  else if (array.dtype == "f64")
    widen(array.data<double>());
  else if (array.dtype == "i64")
    widen(array.data<int64_t>());
  else
    widen(array.data<int32_t>());
  return out;
}

/// Checks that `model` takes one input of `input`'s kind; its dtype.
static Expected<std::string> singleInputDtype(const EntryInfo &entry,
                                              const RunArray &input,
                                              StringRef modelName) {
  if (entry.inputs.size() != 1)
    return llvm::createStringError(llvm::formatv(
        "{0} takes {1} inputs; one is given", modelName, entry.inputs.size()));
  const std::string &dtype = entry.inputs[0].dtype;
  bool wantsIntegers = dtype == "i64" || dtype == "i32";
  if (wantsIntegers != input.integer)
    return llvm::createStringError(llvm::formatv(
        "{0} takes {1} ({2}), but the input holds {3}", modelName,
        wantsIntegers ? "token ids" : "floating-point values", dtype,
        input.integer ? "integers" : "floating-point values"));
  return dtype;
}

Expected<RunArray> mlir::glint::runtime::runCompiled(CompiledModel &model,
                                                     const RunArray &input,
                                                     StringRef modelName) {
  auto dtype = singleInputDtype(model.info(), input, modelName);
  if (!dtype)
    return dtype.takeError();
  auto result = model.run({toHostArray(input, *dtype)});
  if (!result)
    return result.takeError();
  RunArray out = fromHostArray(*result);
  out.integer = false;
  return out;
}

std::vector<int64_t> mlir::glint::runtime::greedyNext(const RunArray &logits) {
  int64_t batch = logits.shape.front(), vocab = logits.shape.back();
  int64_t perRow = logits.numElements() / batch;
  std::vector<int64_t> next;
  for (int64_t b = 0; b < batch; ++b) {
    const double *last = logits.data.data() + b * perRow + perRow - vocab;
    next.push_back(std::max_element(last, last + vocab) - last);
  }
  return next;
}

Expected<Generation>
mlir::glint::runtime::generateCompiled(CompiledModel &model,
                                       const RunArray &prompt, unsigned count,
                                       StringRef modelName, bool keepLogits) {
  if (!model.hasStep())
    return model.initialStates(1).takeError(); // Says why there is none.
  if (count == 0)
    return llvm::createStringError("no tokens to generate");
  const EntryInfo &step = *model.info().step;
  auto dtype = singleInputDtype(step, prompt, modelName);
  if (!dtype)
    return dtype.takeError();
  if (prompt.shape.size() != 2)
    return llvm::createStringError(
        "generation takes token ids [batch, seq] as its prompt");
  int64_t batch = prompt.shape[0];
  auto states = model.startStates(batch);
  if (!states)
    return states.takeError();

  Generation out;
  out.tokens.shape = {batch, count};
  out.tokens.data.assign(batch * count, 0.0);
  out.logits.integer = false;
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  auto logits = model.step({toHostArray(prompt, *dtype)}, *states);
  out.prefillSeconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  for (unsigned i = 0; i < count; ++i) {
    if (!logits)
      return logits.takeError();
    RunArray last = fromHostArray(*logits);
    int64_t vocab = last.shape.back();
    if (i == 0 && keepLogits) {
      out.logits.shape = {batch, count, vocab};
      out.logits.data.assign(batch * count * vocab, 0.0);
    }
    std::vector<int64_t> next = greedyNext(last);
    int64_t perRow = last.numElements() / batch;
    RunArray fed;
    fed.shape = {batch, 1};
    for (int64_t b = 0; b < batch; ++b) {
      out.tokens.data[b * count + i] = static_cast<double>(next[b]);
      if (keepLogits)
        std::copy_n(last.data.begin() + b * perRow + perRow - vocab, vocab,
                    out.logits.data.begin() + (b * count + i) * vocab);
      fed.data.push_back(static_cast<double>(next[b]));
    }
    if (i + 1 == count)
      break;
    start = Clock::now();
    logits = model.step({toHostArray(fed, *dtype)}, *states);
    out.stepSeconds +=
        std::chrono::duration<double>(Clock::now() - start).count();
    ++out.steps;
  }
  return out;
}

/// Token `id` as its word when the vocabulary has one.
static std::string tokenText(int64_t id, const Vocabulary *vocab) {
  if (vocab)
    if (auto it = vocab->words.find(id); it != vocab->words.end())
      return it->second;
  return std::to_string(id);
}

void mlir::glint::runtime::printGeneration(llvm::raw_ostream &os,
                                           const RunArray &prompt,
                                           const RunArray &tokens,
                                           const Vocabulary *vocab) {
  printGeneration(os, prompt, tokens,
                  [&](int64_t id) { return tokenText(id, vocab); });
}

void mlir::glint::runtime::printGeneration(
    llvm::raw_ostream &os, const RunArray &prompt, const RunArray &tokens,
    llvm::function_ref<std::string(int64_t)> name) {
  int64_t batch = tokens.shape[0], count = tokens.shape[1];
  int64_t length = prompt.shape[1];
  os << "generated " << count << " tokens per sequence (greedy)\n";
  for (int64_t b = 0; b < batch; ++b) {
    os << "sequence " << b << ":";
    for (int64_t t = 0; t < length; ++t)
      os << " " << name(static_cast<int64_t>(prompt.data[b * length + t]));
    os << " =>";
    for (int64_t t = 0; t < count; ++t)
      os << " " << name(static_cast<int64_t>(tokens.data[b * count + t]));
    os << "\n";
  }
}

void mlir::glint::runtime::printGenerationTime(llvm::raw_ostream &os,
                                               const Generation &generation,
                                               int64_t promptLength) {
  os << llvm::formatv("prefill: {0} tokens in {1:F3} ms", promptLength,
                      generation.prefillSeconds * 1e3);
  if (generation.steps > 0)
    os << llvm::formatv("; {0} steps of one token in {1:F3} ms ({2:F4} ms "
                        "per token)",
                        generation.steps, generation.stepSeconds * 1e3,
                        generation.stepSeconds * 1e3 / generation.steps);
  os << "\n";
}

llvm::Error mlir::glint::runtime::writeResult(StringRef path,
                                              const RunArray &array,
                                              bool asFloat32) {
  if (asFloat32) {
    std::vector<float> data(array.data.begin(), array.data.end());
    return writeNpy(path, array.shape, llvm::ArrayRef<float>(data));
  }
  return writeNpy(path, array.shape, llvm::ArrayRef<double>(array.data));
}

void mlir::glint::runtime::printShape(llvm::raw_ostream &os,
                                      const RunArray &result) {
  os << "result: [";
  llvm::interleaveComma(result.shape, os);
  os << "]\n";
}

void mlir::glint::runtime::printTopK(llvm::raw_ostream &os,
                                     const RunArray &result, unsigned k,
                                     const Vocabulary *vocab) {
  printTopK(os, result, k, [&](int64_t id) -> std::string {
    if (vocab && vocab->words.count(id))
      return vocab->words.at(id);
    return "";
  });
}

void mlir::glint::runtime::printTopK(
    llvm::raw_ostream &os, const RunArray &result, unsigned k,
    llvm::function_ref<std::string(int64_t)> name) {
  if (k == 0 || result.shape.size() < 2)
    return;
  int64_t classes = result.shape.back();
  int64_t rows = result.shape[0];
  int64_t perRow = result.numElements() / rows;
  for (int64_t r = 0; r < rows; ++r) {
    const double *last = result.data.data() + r * perRow + perRow - classes;
    std::vector<int64_t> order(classes);
    for (int64_t i = 0; i < classes; ++i)
      order[i] = i;
    unsigned top = std::min<int64_t>(k, classes);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int64_t a, int64_t b) { return last[a] > last[b]; });
    os << "sequence " << r << ": top " << top << ":";
    for (unsigned i = 0; i < top; ++i) {
      os << " " << order[i];
      if (std::string word = name(order[i]); !word.empty())
        os << " '" << word << "'";
      os << llvm::formatv(" ({0:F3})", last[order[i]]);
    }
    os << "\n";
  }
}

Expected<CachedLibrary>
mlir::glint::runtime::compileInCache(StringRef self, StringRef input,
                                     llvm::ArrayRef<std::string> options,
                                     StringRef cacheDir, StringRef user) {
  llvm::SmallString<256> tool(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(tool, "glint-compile");
  if (!llvm::sys::fs::can_execute(tool))
    return llvm::createStringError(user +
                                   " compiles with glint-compile, "
                                   "which is not next to " +
                                   llvm::sys::path::filename(self) + " (" +
                                   tool + ")");
  llvm::SmallString<128> out, err;
  for (llvm::SmallString<128> *path : {&out, &err})
    if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
            "glint-compile", path == &out ? "out" : "err", *path))
      return llvm::createStringError("cannot create a temporary file: " +
                                     ec.message());
  llvm::FileRemover removeOut(out), removeErr(err);
  std::string cacheOption = "--cache-dir=" + cacheDir.str();
  std::vector<StringRef> args = {tool, input, "--cache"};
  for (const std::string &option : options)
    args.push_back(option);
  if (!cacheDir.empty())
    args.push_back(cacheOption);
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(out),
                                          StringRef(err)};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(tool, args, std::nullopt, redirects, 0, 0,
                                     &error);
  auto read = [](StringRef path) {
    auto buffer = llvm::MemoryBuffer::getFile(path);
    return buffer ? (*buffer)->getBuffer().str() : std::string();
  };
  std::string messages = read(err);
  if (rc < 0)
    return llvm::createStringError("cannot run " + tool + ": " + error);
  StringRef prefix = "glint-compile: error: ";
  if (rc != 0) {
    StringRef m = StringRef(messages).trim();
    if (m.starts_with(prefix) && !m.contains('\n'))
      return llvm::createStringError(m.drop_front(prefix.size()));
    llvm::errs() << messages;
    return llvm::createStringError("glint-compile cannot compile " + input +
                                   " (see above)");
  }
  llvm::errs() << messages; // Warnings, if any.
  std::string record = StringRef(read(out)).trim().str();
  StringRef line = record;
  CachedLibrary library;
  library.cached = line.consume_front("cached: ");
  if (!library.cached && !line.consume_front("compiled: "))
    return llvm::createStringError("glint-compile --cache printed '" + record +
                                   "', not the library's path");
  library.path = line.str();
  return library;
}
