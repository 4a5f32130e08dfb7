//===- Generate.cpp - sampling and streamed generation --------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/host/Generate.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

using namespace mlir::glint::runtime;
using llvm::Expected;

Sampler::Sampler(const SamplingOptions &options)
    : options(options), engine(options.seed) {}

llvm::Error Sampler::check(const SamplingOptions &options) {
  if (!(options.temperature >= 0.0) || !std::isfinite(options.temperature))
    return llvm::createStringError(
        llvm::formatv("--temp {0}: the temperature must be 0 (greedy) or "
                      "positive",
                      llvm::format("%g", options.temperature)));
  if (!(options.topP > 0.0 && options.topP <= 1.0))
    return llvm::createStringError(llvm::formatv(
        "--top-p {0}: must be in (0, 1]", llvm::format("%g", options.topP)));
  if (options.topK < 0)
    return llvm::createStringError(llvm::formatv(
        "--top-k {0}: must be 0 (all tokens) or positive", options.topK));
  return llvm::Error::success();
}

int64_t Sampler::next(llvm::ArrayRef<float> logits) {
  int64_t vocab = logits.size();
  if (options.temperature == 0.0)
    return std::max_element(logits.begin(), logits.end()) - logits.begin();
  // The candidates, most likely first (ties: the lower id first).
  std::vector<int64_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  if (options.topK > 0 && options.topK < vocab)
    order.resize(options.topK);
  std::vector<double> p(order.size());
  double top = logits[order.front()], sum = 0.0;
  for (size_t i = 0; i < order.size(); ++i)
    sum += p[i] = std::exp((logits[order[i]] - top) / options.temperature);
  size_t keep = order.size();
  if (options.topP < 1.0) {
    double mass = 0.0;
    for (size_t i = 0; i < order.size(); ++i) {
      mass += p[i] / sum;
      if (mass >= options.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  double u = static_cast<double>(engine() >> 11) * 0x1.0p-53 * kept;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0.0)
      return order[i];
  }
  return order[keep - 1];
}

/// The logits of the last position of a [1, L, V] (or [1, V]) result.
static std::vector<float> lastLogits(const HostArray &logits) {
  int64_t vocab = logits.shape.back(), n = logits.numElements();
  std::vector<float> out(vocab);
  for (int64_t i = 0; i < vocab; ++i) {
    int64_t k = n - vocab + i;
    out[i] = logits.dtype == "f32"
                 ? logits.data<float>()[k]
                 : static_cast<float>(logits.data<double>()[k]);
  }
  return out;
}

/// Token ids [1, ids.size()] in the step entry's dtype.
static HostArray tokenArray(llvm::ArrayRef<int64_t> ids,
                            const std::string &dtype) {
  HostArray array =
      HostArray::make({1, static_cast<int64_t>(ids.size())}, dtype);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (dtype == "i32")
      array.data<int32_t>()[i] = static_cast<int32_t>(ids[i]);
    else
      array.data<int64_t>()[i] = ids[i];
  }
  return array;
}

Expected<StreamStats> mlir::glint::runtime::generateStream(
    CompiledModel &model, llvm::ArrayRef<int64_t> prompt, unsigned count,
    Sampler &sampler, llvm::function_ref<bool(int64_t)> onToken,
    llvm::StringRef modelName) {
  if (!model.hasStep())
    return model.initialStates(1).takeError(); // Says why there is none.
  const EntryInfo &step = *model.info().step;
  if (step.inputs.size() != 1 ||
      (step.inputs[0].dtype != "i64" && step.inputs[0].dtype != "i32"))
    return llvm::createStringError(
        modelName + " does not take token ids: it cannot generate text");
  if (prompt.empty())
    return llvm::createStringError("the prompt is empty");
  std::string dtype = step.inputs[0].dtype;
  auto states = model.startStates(1);
  if (!states)
    return states.takeError();
  using Clock = std::chrono::steady_clock;
  StreamStats stats;
  stats.promptTokens = prompt.size();
  auto start = Clock::now();
  auto logits = model.step({tokenArray(prompt, dtype)}, *states);
  stats.promptSeconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  for (unsigned i = 0; i < count; ++i) {
    if (!logits)
      return logits.takeError();
    int64_t token = sampler.next(lastLogits(*logits));
    ++stats.generated;
    if (!onToken(token) || i + 1 == count)
      break;
    start = Clock::now();
    logits = model.step({tokenArray({token}, dtype)}, *states);
    stats.stepSeconds +=
        std::chrono::duration<double>(Clock::now() - start).count();
    ++stats.steps;
  }
  return stats;
}
