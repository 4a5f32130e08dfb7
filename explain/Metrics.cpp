//===- Metrics.cpp - evaluating explanations ------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "explain/Metrics.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;

namespace {

/// Checks that every candidate indexes \p relevance once and has a number.
Error checkCandidates(ArrayRef<double> relevance,
                      ArrayRef<int64_t> candidates) {
  std::vector<bool> seen(relevance.size(), false);
  for (int64_t position : candidates) {
    if (position < 0 || uint64_t(position) >= relevance.size())
      return llvm::createStringError(
          llvm::formatv("candidate position {0} is not in [0, {1})", position,
                        relevance.size())
              .str());
    if (seen[position])
      return llvm::createStringError(
          llvm::formatv("candidate position {0} is listed twice", position)
              .str());
    seen[position] = true;
    if (std::isnan(relevance[position]))
      return llvm::createStringError(
          llvm::formatv("the relevance of position {0} is NaN", position)
              .str());
  }
  return Error::success();
}

Error checkFinite(ArrayRef<double> values, llvm::StringRef what) {
  for (auto [i, v] : llvm::enumerate(values))
    if (!std::isfinite(v))
      return llvm::createStringError(
          llvm::formatv("{0} holds {1} at index {2}", what, v, i).str());
  return Error::success();
}

/// sklearn's average_precision_score: the elements sorted by decreasing score,
/// one threshold per distinct score, Σ (R_n − R_{n−1}) P_n. 0 without
/// positives.
double averagePrecision(ArrayRef<double> scores, ArrayRef<char> positive) {
  assert(scores.size() == positive.size());
  int64_t totalPositive = llvm::count(positive, 1);
  if (totalPositive == 0)
    return 0.0;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  llvm::sort(order, [&](size_t a, size_t b) { return scores[a] > scores[b]; });

  double ap = 0.0, previousRecall = 0.0;
  int64_t truePositives = 0, predicted = 0;
  for (size_t n = 0; n < order.size();) {
    // Everything tied with this score crosses the threshold together.
    double threshold = scores[order[n]];
    for (; n < order.size() && scores[order[n]] == threshold; ++n) {
      ++predicted;
      truePositives += positive[order[n]];
    }
    double recall = double(truePositives) / double(totalPositive);
    double precision = double(truePositives) / double(predicted);
    ap += (recall - previousRecall) * precision;
    previousRecall = recall;
  }
  return ap;
}

double ratioOrOne(int64_t numerator, int64_t denominator) {
  return denominator == 0 ? 1.0 : double(numerator) / double(denominator);
}

/// Fills the ratios of \p s from its counts.
void fillRatios(MaskScores &s) {
  s.pixelAccuracy = s.pixels == 0 ? 0.0 : double(s.correctPixels) / s.pixels;
  s.iouForeground = ratioOrOne(s.intersectionForeground, s.unionForeground);
  s.iouBackground = ratioOrOne(s.intersectionBackground, s.unionBackground);
  s.meanIoU = (s.iouForeground + s.iouBackground) / 2.0;
}

void addCounts(MaskScores &sum, const MaskScores &s) {
  sum.pixels += s.pixels;
  sum.correctPixels += s.correctPixels;
  sum.intersectionForeground += s.intersectionForeground;
  sum.unionForeground += s.unionForeground;
  sum.intersectionBackground += s.intersectionBackground;
  sum.unionBackground += s.unionBackground;
}

} // namespace

Expected<std::vector<int64_t>>
mlir::glint::explain::removalOrder(ArrayRef<double> relevance,
                                   ArrayRef<int64_t> candidates,
                                   bool mostRelevantFirst) {
  if (Error err = checkCandidates(relevance, candidates))
    return std::move(err);
  std::vector<int64_t> order(candidates.begin(), candidates.end());
  llvm::sort(order, [&](int64_t a, int64_t b) {
    if (relevance[a] != relevance[b])
      return mostRelevantFirst ? relevance[a] > relevance[b]
                               : relevance[a] < relevance[b];
    return a < b;
  });
  return order;
}

std::vector<int64_t>
mlir::glint::explain::removedAtStep(ArrayRef<int64_t> order, unsigned step,
                                    unsigned numSteps) {
  assert(numSteps > 0 && step <= numSteps && "step outside [0, numSteps]");
  // round(step · n / numSteps) in integers, halves up.
  uint64_t n = order.size();
  uint64_t count =
      (2 * uint64_t(step) * n + numSteps) / (2 * uint64_t(numSteps));
  count = std::min<uint64_t>(count, n);
  return std::vector<int64_t>(order.begin(), order.begin() + count);
}

Expected<double> mlir::glint::explain::areaUnderCurve(ArrayRef<double> values) {
  if (values.size() < 2)
    return llvm::createStringError(
        llvm::formatv("an area under a curve needs at least 2 points, not {0}",
                      values.size())
            .str());
  if (Error err = checkFinite(values, "the curve"))
    return std::move(err);
  double sum = 0.0;
  for (size_t i = 0; i + 1 < values.size(); ++i)
    sum += (values[i] + values[i + 1]) / 2.0;
  return sum / double(values.size() - 1);
}

Expected<bool>
mlir::glint::explain::pointingHit(ArrayRef<double> relevance,
                                  ArrayRef<int64_t> candidates,
                                  ArrayRef<int64_t> truthPositions) {
  if (candidates.empty())
    return llvm::createStringError("the pointing game needs candidates");
  Expected<std::vector<int64_t>> order =
      removalOrder(relevance, candidates, /*mostRelevantFirst=*/true);
  if (!order)
    return order.takeError();
  return llvm::is_contained(truthPositions, order->front());
}

Expected<TokenScores>
mlir::glint::explain::scoreTokens(ArrayRef<double> relevance,
                                  ArrayRef<int64_t> candidates,
                                  ArrayRef<int64_t> truthPositions) {
  std::vector<double> scores;
  std::vector<char> positive;
  for (int64_t c : candidates) {
    if (c < 0 || c >= static_cast<int64_t>(relevance.size()))
      return llvm::createStringError(
          llvm::formatv("candidate position {0} is out of range for {1} "
                        "tokens",
                        c, relevance.size())
              .str());
    if (!std::isfinite(relevance[c]))
      return llvm::createStringError(
          llvm::formatv("relevance holds {0} at position {1}", relevance[c], c)
              .str());
    scores.push_back(relevance[c]);
    positive.push_back(llvm::is_contained(truthPositions, c));
  }
  int64_t relevant = llvm::count(positive, 1);
  int64_t irrelevant = static_cast<int64_t>(scores.size()) - relevant;
  if (relevant == 0 || irrelevant == 0)
    return llvm::createStringError(
        "token AUROC needs both relevant and irrelevant candidates");
  // Mann-Whitney: average ranks (1-based, ties share their mean rank).
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  llvm::sort(order, [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rankSum = 0.0;
  for (size_t n = 0; n < order.size();) {
    size_t end = n;
    while (end < order.size() && scores[order[end]] == scores[order[n]])
      ++end;
    double rank = (n + 1 + end) / 2.0; // mean of ranks n+1 .. end
    for (size_t m = n; m < end; ++m)
      if (positive[order[m]])
        rankSum += rank;
    n = end;
  }
  TokenScores result;
  result.auroc = (rankSum - relevant * (relevant + 1) / 2.0) /
                 (static_cast<double>(relevant) * irrelevant);
  result.averagePrecision = averagePrecision(scores, positive);
  return result;
}

Expected<std::vector<double>>
mlir::glint::explain::upsamplePatches(ArrayRef<double> patchRelevance,
                                      int64_t gridH, int64_t gridW,
                                      int64_t patchSize, Upsampling mode) {
  if (gridH <= 0 || gridW <= 0 || patchSize <= 0 || gridH > (1 << 20) ||
      gridW > (1 << 20) || patchSize > (1 << 12))
    return llvm::createStringError(
        llvm::formatv("cannot upsample a {0}×{1} grid of {2}-pixel patches",
                      gridH, gridW, patchSize)
            .str());
  if (patchRelevance.size() != uint64_t(gridH * gridW))
    return llvm::createStringError(
        llvm::formatv("a {0}×{1} patch grid needs {2} values, not {3}", gridH,
                      gridW, gridH * gridW, patchRelevance.size())
            .str());
  int64_t H = gridH * patchSize, W = gridW * patchSize;
  std::vector<double> pixels(H * W);

  if (mode == Upsampling::Nearest) {
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        pixels[y * W + x] =
            patchRelevance[(y / patchSize) * gridW + x / patchSize];
    return pixels;
  }

  // PyTorch's align_corners=False source index: the centre of output pixel
  // d maps to (d + 0.5) / p − 0.5 in patch units, clamped at 0; the upper
  // neighbour is clamped to the last patch.
  struct Tap {
    int64_t lo, hi;
    double weightHi;
  };
  auto taps = [&](int64_t size, int64_t grid) {
    std::vector<Tap> result(size);
    for (int64_t d = 0; d < size; ++d) {
      double src = std::max((d + 0.5) / double(patchSize) - 0.5, 0.0);
      int64_t lo = int64_t(src);
      result[d] = {lo, lo < grid - 1 ? lo + 1 : lo, src - double(lo)};
    }
    return result;
  };
  std::vector<Tap> rows = taps(H, gridH), cols = taps(W, gridW);
  for (int64_t y = 0; y < H; ++y) {
    const Tap &r = rows[y];
    for (int64_t x = 0; x < W; ++x) {
      const Tap &c = cols[x];
      auto at = [&](int64_t gy, int64_t gx) {
        return patchRelevance[gy * gridW + gx];
      };
      double top =
          (1 - c.weightHi) * at(r.lo, c.lo) + c.weightHi * at(r.lo, c.hi);
      double bottom =
          (1 - c.weightHi) * at(r.hi, c.lo) + c.weightHi * at(r.hi, c.hi);
      pixels[y * W + x] = (1 - r.weightHi) * top + r.weightHi * bottom;
    }
  }
  return pixels;
}

Expected<MaskScores>
mlir::glint::explain::scoreMask(ArrayRef<double> pixelRelevance,
                                ArrayRef<float> mask, int64_t H, int64_t W) {
  if (H <= 0 || W <= 0 || pixelRelevance.size() != uint64_t(H * W) ||
      mask.size() != uint64_t(H * W))
    return llvm::createStringError(
        llvm::formatv("an {0}×{1} image needs {2} relevance and mask values, "
                      "not {3} and {4}",
                      H, W, H * W, pixelRelevance.size(), mask.size())
            .str());
  if (Error err = checkFinite(pixelRelevance, "the pixel relevance"))
    return std::move(err);
  for (auto [i, m] : llvm::enumerate(mask))
    if (!std::isfinite(m))
      return llvm::createStringError(
          llvm::formatv("the mask holds {0} at index {1}", m, i).str());

  size_t n = pixelRelevance.size();
  double sum = 0.0, lo = pixelRelevance[0], hi = pixelRelevance[0];
  for (double r : pixelRelevance) {
    sum += r;
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  double threshold = sum / double(n);

  MaskScores s;
  s.pixels = n;
  std::vector<char> foreground(n), background(n);
  for (size_t i = 0; i < n; ++i) {
    bool truth = mask[i] >= 0.5f;
    bool predicted = pixelRelevance[i] > threshold;
    foreground[i] = truth;
    background[i] = !truth;
    s.correctPixels += truth == predicted;
    s.intersectionForeground += truth && predicted;
    s.unionForeground += truth || predicted;
    s.intersectionBackground += !truth && !predicted;
    s.unionBackground += !truth || !predicted;
  }
  fillRatios(s);
  s.averagePrecision = averagePrecision(pixelRelevance, foreground);

  // Chefer et al.'s channels: 1 − r̂ for the background, r̂ for the
  // foreground, with r̂ min-max normalised (a constant map is all 0).
  std::vector<double> scores(2 * n);
  std::vector<char> positive(2 * n);
  double range = hi - lo;
  for (size_t i = 0; i < n; ++i) {
    double r = range > 0.0 ? (pixelRelevance[i] - lo) / range : 0.0;
    scores[i] = 1.0 - r;
    positive[i] = background[i];
    scores[n + i] = r;
    positive[n + i] = foreground[i];
  }
  s.averagePrecisionTwoClass = averagePrecision(scores, positive);
  return s;
}

MaskScores mlir::glint::explain::meanMaskScores(ArrayRef<MaskScores> scores) {
  MaskScores result;
  if (scores.empty())
    return result;
  for (const MaskScores &s : scores) {
    addCounts(result, s);
    result.pixelAccuracy += s.pixelAccuracy;
    result.iouForeground += s.iouForeground;
    result.iouBackground += s.iouBackground;
    result.meanIoU += s.meanIoU;
    result.averagePrecision += s.averagePrecision;
    result.averagePrecisionTwoClass += s.averagePrecisionTwoClass;
  }
  double count = double(scores.size());
  result.pixelAccuracy /= count;
  result.iouForeground /= count;
  result.iouBackground /= count;
  result.meanIoU /= count;
  result.averagePrecision /= count;
  result.averagePrecisionTwoClass /= count;
  return result;
}

MaskScores mlir::glint::explain::pooledMaskScores(ArrayRef<MaskScores> scores) {
  MaskScores result;
  if (scores.empty())
    return result;
  for (const MaskScores &s : scores) {
    addCounts(result, s);
    result.averagePrecision += s.averagePrecision;
    result.averagePrecisionTwoClass += s.averagePrecisionTwoClass;
  }
  fillRatios(result);
  result.averagePrecision /= double(scores.size());
  result.averagePrecisionTwoClass /= double(scores.size());
  return result;
}

double mlir::glint::explain::mean(ArrayRef<double> values) {
  if (values.empty())
    return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(values.begin(), values.end(), 0.0) /
         double(values.size());
}
