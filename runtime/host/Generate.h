//===- Generate.h - sampling and streamed generation ------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Generation as the one-command run does it (glint-run -m DIR -p TEXT): one
// sequence, the prompt in one call of the step entry, then one call per
// token, each token handed to a callback as soon as it is chosen (to print
// it), chosen greedily or by sampling with temperature, top-k and top-p from
// a seeded generator (the same seed, the same tokens, on every machine).
// No MLIR here.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_HOST_GENERATE_H
#define GLINT_RUNTIME_HOST_GENERATE_H

#include "runtime/host/CompiledModel.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <random>

namespace mlir::glint::runtime {

struct SamplingOptions {
  /// 0: greedy (the largest logit, the lowest id on ties).
  double temperature = 0.0;
  /// Keep the k most likely tokens (0: all).
  int64_t topK = 0;
  /// Keep the most likely tokens whose probabilities add up to p (1: all).
  double topP = 1.0;
  uint64_t seed = 0;
};

/// Chooses the next token from one position's logits.
class Sampler {
public:
  explicit Sampler(const SamplingOptions &options);
  /// An error for a temperature below 0, top-p outside (0, 1] or top-k
  /// below 0, naming the option.
  static llvm::Error check(const SamplingOptions &options);
  int64_t next(llvm::ArrayRef<float> logits);

private:
  SamplingOptions options;
  /// mt19937_64 is specified exactly by the standard; the conversion to
  /// [0, 1) is ours, so that seeded runs agree across standard libraries.
  std::mt19937_64 engine;
};

/// What generateStream measured.
struct StreamStats {
  int64_t promptTokens = 0, generated = 0, steps = 0;
  double promptSeconds = 0.0, stepSeconds = 0.0;
};

/// Generates up to `count` tokens after `prompt` with `model`'s step entry,
/// calling `onToken` with each as soon as it is chosen; generation stops
/// early when it returns false. `modelName` names the model in errors.
llvm::Expected<StreamStats>
generateStream(CompiledModel &model, llvm::ArrayRef<int64_t> prompt,
               unsigned count, Sampler &sampler,
               llvm::function_ref<bool(int64_t)> onToken,
               llvm::StringRef modelName);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_HOST_GENERATE_H
