//===- RunSupport.h - inputs and outputs of the run tools -------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What glint-run and the standalone model executables share: reading token
// ids, words or images, running a compiled model on them, and printing and
// writing the result. No MLIR here.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_HOST_RUNSUPPORT_H
#define GLINT_RUNTIME_HOST_RUNSUPPORT_H

#include "runtime/host/CompiledModel.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::glint::runtime {

/// An input or output array as doubles, with whether it holds integers
/// (token ids) or floating-point values (pixels, logits).
struct RunArray {
  std::vector<int64_t> shape;
  std::vector<double> data;
  bool integer = true;

  int64_t numElements() const { return static_cast<int64_t>(data.size()); }
};

/// Word → id and id → word.
struct Vocabulary {
  llvm::StringMap<int64_t> ids;
  std::map<int64_t, std::string> words;
};

/// Sets how many threads compiled models use for their parallel loops (the
/// batch × head loops of the recurrences); 0 keeps the default, one per
/// core. Must be called before the first run.
void setThreads(unsigned threads);

/// The tool's `--threads=N`. libLLVM.so, which every tool links, registers
/// an option of that name (a cl::opt<int>), and registering a second one
/// aborts: the tool takes that one over, with `description`, under
/// `category`. Null if this libLLVM has none.
llvm::cl::opt<int> *adoptThreadsOption(llvm::cl::OptionCategory &category,
                                       llvm::StringRef description);

/// The most threads `--threads` may ask for: more is a typo, and OpenMP
/// aborts the process when it cannot create them.
constexpr unsigned kMaxThreads = 1024;

/// The most tokens `--generate` may ask for.
constexpr unsigned kMaxGeneratedTokens = 1'000'000;

/// An error naming `option` if `count` exceeds kMaxGeneratedTokens.
llvm::Error checkGenerationLength(unsigned count,
                                  llvm::StringRef option = "--generate");

/// After parsing: the count given with `--threads` (`option`, from
/// adoptThreadsOption) or else `fallback`; an error names a count below 1
/// or above kMaxThreads.
llvm::Expected<unsigned> threadsGiven(llvm::cl::opt<int> *option,
                                      unsigned fallback);

/// Token ids "1,2,3;4,5,6": comma-separated, one sequence per ';', equal
/// lengths.
llvm::Expected<RunArray> parseTokens(llvm::StringRef text);

/// A JSON object {"word": id, ...}, or one holding such an object under
/// "word_to_id" (the bundled models' vocab.json).
llvm::Expected<Vocabulary> readVocabulary(llvm::StringRef path);

/// Words split on spaces and mapped through `vocab`; one sequence per ';'.
llvm::Expected<RunArray> parseText(llvm::StringRef text,
                                   const Vocabulary &vocab,
                                   llvm::StringRef vocabPath);

/// A .npy file: int64/int32 token ids, or float pixels.
llvm::Expected<RunArray> readInputNpy(llvm::StringRef path);

/// The input of a run and the vocabulary, if one was given.
struct RunInput {
  RunArray array;
  std::optional<Vocabulary> vocab;
};

/// Reads the one input the command line gives: token ids (`tokens`), words
/// mapped through the vocabulary at `vocabPath` (`text`), or a .npy file
/// (`inputNpy`); exactly one of the three must be non-empty. The vocabulary
/// is read whenever `vocabPath` is set, to print predictions as words.
llvm::Expected<RunInput> readRunInput(llvm::StringRef tokens,
                                      llvm::StringRef text,
                                      llvm::StringRef vocabPath,
                                      llvm::StringRef inputNpy);

/// Runs a compiled model with one input, converting it to the model's dtype;
/// `modelName` names the model in errors.
llvm::Expected<RunArray> runCompiled(CompiledModel &model,
                                     const RunArray &input,
                                     llvm::StringRef modelName);

/// A run array in a model's dtype, and back (as doubles).
HostArray toHostArray(const RunArray &array, llvm::StringRef dtype);
RunArray fromHostArray(const HostArray &array);

/// Greedy decoding: the id with the largest logit at the last position of
/// each sequence of `logits` ([batch, L, vocab]); the lowest id on ties.
std::vector<int64_t> greedyNext(const RunArray &logits);

/// The result of generating tokens.
struct Generation {
  /// [batch, count]: the generated token ids.
  RunArray tokens;
  /// [batch, count, vocab]: the logits each token was chosen from (empty
  /// when the caller did not ask to keep them).
  RunArray logits;
  /// The prompt's call (prefill), and the calls after it (one token each).
  double prefillSeconds = 0.0, stepSeconds = 0.0;
  int64_t steps = 0;
};

/// Greedy generation of `count` tokens after `prompt` (token ids [batch,
/// P]) with a compiled model's step entry: the prompt in one call from zero
/// states (prefill), then one call per token, each continuing from the
/// states of the one before, so that a token costs the same however long
/// the sequence is. `modelName` names the model in errors. Each token's
/// logits are kept in the result only with `keepLogits`.
llvm::Expected<Generation>
generateCompiled(CompiledModel &model, const RunArray &prompt, unsigned count,
                 llvm::StringRef modelName, bool keepLogits = true);

/// Prints "sequence <r>: <prompt> => <generated>" per sequence, as words
/// when `vocab` has them.
void printGeneration(llvm::raw_ostream &os, const RunArray &prompt,
                     const RunArray &tokens, const Vocabulary *vocab);

/// The same with each token named by `name` (a tokenizer's text of it).
void printGeneration(llvm::raw_ostream &os, const RunArray &prompt,
                     const RunArray &tokens,
                     llvm::function_ref<std::string(int64_t)> name);

/// Prints the time per generated token on `os` (prefill and steps).
void printGenerationTime(llvm::raw_ostream &os, const Generation &generation,
                         int64_t promptLength);

/// Writes an array as .npy, in float32 or float64.
llvm::Error writeResult(llvm::StringRef path, const RunArray &array,
                        bool asFloat32);

/// Prints "result: [shape]".
void printShape(llvm::raw_ostream &os, const RunArray &result);

/// Prints the top-`k` entries of the last position of each sequence (of each
/// row, for a classifier), as words when `vocab` has them.
void printTopK(llvm::raw_ostream &os, const RunArray &result, unsigned k,
               const Vocabulary *vocab);

/// The same with each token named by `name` (a tokenizer's text of it).
void printTopK(llvm::raw_ostream &os, const RunArray &result, unsigned k,
               llvm::function_ref<std::string(int64_t)> name);

/// A library in the compile cache, and whether it was there already.
struct CachedLibrary {
  std::string path;
  bool cached = false;
};

/// Runs `glint-compile INPUT --cache OPTIONS...` (the glint-compile next to
/// the running program `self`), which finds INPUT's library in the compile
/// cache (`cacheDir`; empty: glint-compile's default) or compiles it there.
/// glint-compile's one-line errors become the error; longer diagnostics go
/// to stderr first. `user` names the feature in the error when glint-compile
/// is missing.
llvm::Expected<CachedLibrary>
compileInCache(llvm::StringRef self, llvm::StringRef input,
               llvm::ArrayRef<std::string> options, llvm::StringRef cacheDir,
               llvm::StringRef user);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_HOST_RUNSUPPORT_H
