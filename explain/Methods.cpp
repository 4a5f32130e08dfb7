//===- Methods.cpp - explanation methods on layer matrices ----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "explain/Methods.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <random>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;

namespace {

/// Checks that \p map is an L×L map; \p what names it in the message.
Error checkMap(ArrayRef<double> map, int64_t L, const llvm::Twine &what) {
  if (L <= 0 || L > (int64_t(1) << 31))
    return llvm::createStringError(
        llvm::formatv("sequence length {0} is not in [1, 2^31]", L).str());
  if (map.size() != uint64_t(L) * uint64_t(L))
    return llvm::createStringError(
        what +
        llvm::formatv(" holds {0} elements, not L×L = {1}×{1}", map.size(), L)
            .str());
  return Error::success();
}

/// row-normalise(|a| + I) into \p out. Every row sum is at least 1, so the
/// division is safe; non-finite elements are reported, naming the layer.
Error normalisedWithIdentity(ArrayRef<double> a, int64_t L, size_t layer,
                             std::vector<double> &out) {
  out.resize(a.size());
  for (int64_t i = 0; i < L; ++i) {
    const double *row = a.data() + i * L;
    double *outRow = out.data() + i * L;
    double sum = 0.0;
    for (int64_t j = 0; j < L; ++j) {
      if (!std::isfinite(row[j]))
        return llvm::createStringError(
            llvm::formatv("layer {0} holds {1} at ({2}, {3})", layer, row[j], i,
                          j)
                .str());
      outRow[j] = std::fabs(row[j]) + (i == j ? 1.0 : 0.0);
      sum += outRow[j];
    }
    for (int64_t j = 0; j < L; ++j)
      outRow[j] /= sum;
  }
  return Error::success();
}

/// c = a · b for L×L matrices. The i-k-j order streams rows of b, and the
/// zero test skips the upper triangle of causal maps (half the work).
void multiply(ArrayRef<double> a, ArrayRef<double> b, int64_t L,
              std::vector<double> &c) {
  c.assign(a.size(), 0.0);
  for (int64_t i = 0; i < L; ++i) {
    double *cRow = c.data() + i * L;
    for (int64_t k = 0; k < L; ++k) {
      double aik = a[i * L + k];
      if (aik == 0.0)
        continue;
      const double *bRow = b.data() + k * L;
      for (int64_t j = 0; j < L; ++j)
        cRow[j] += aik * bRow[j];
    }
  }
}

} // namespace

Expected<std::vector<double>>
mlir::glint::explain::rollout(ArrayRef<std::vector<double>> layers, int64_t L,
                              unsigned startLayer) {
  if (layers.empty())
    return llvm::createStringError("rollout needs at least one layer");
  if (startLayer >= layers.size())
    return llvm::createStringError(
        llvm::formatv("rollout start layer {0} is past the last layer ({1}): "
                      "the model has {2} layers",
                      startLayer, layers.size() - 1, layers.size())
            .str());
  for (size_t l = startLayer; l < layers.size(); ++l)
    if (Error err = checkMap(layers[l], L, llvm::formatv("layer {0}", l)))
      return std::move(err);

  std::vector<double> result, normalised, product;
  if (Error err =
          normalisedWithIdentity(layers[startLayer], L, startLayer, result))
    return std::move(err);
  for (size_t l = startLayer + 1; l < layers.size(); ++l) {
    if (Error err = normalisedWithIdentity(layers[l], L, l, normalised))
      return std::move(err);
    // Later layers multiply from the left: R_l = Â_l · R_{l−1}.
    multiply(normalised, result, L, product);
    std::swap(result, product);
  }
  return result;
}

Expected<std::vector<double>>
mlir::glint::explain::relevanceRow(ArrayRef<double> map, int64_t L,
                                   int64_t position) {
  if (Error err = checkMap(map, L, "the map"))
    return std::move(err);
  if (position < 0 || position >= L)
    return llvm::createStringError(
        llvm::formatv("position {0} is not in [0, {1})", position, L).str());
  ArrayRef<double> row = map.slice(position * L, L);
  return std::vector<double>(row.begin(), row.end());
}

std::vector<double>
mlir::glint::explain::normalizeRelevance(ArrayRef<double> relevance) {
  double largest = 0.0;
  for (double r : relevance)
    largest = std::max(largest, std::fabs(r));
  std::vector<double> result(relevance.begin(), relevance.end());
  if (largest > 0.0)
    for (double &r : result)
      r /= largest;
  return result;
}

std::vector<double> mlir::glint::explain::randomRelevance(int64_t L,
                                                          uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> result(std::max<int64_t>(L, 0));
  // The top 53 bits scaled by 2^−53: exact, and the same on every library
  // (std::uniform_real_distribution is implementation-defined).
  for (double &r : result)
    r = double(rng() >> 11) * 0x1.0p-53;
  return result;
}
