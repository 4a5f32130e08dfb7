//===- ExplainTest.cpp - unit tests of glint-explain's library ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Each computation is checked against an independent one: rollout against a
// plain triple-loop product and a case worked by hand, AUC against curves with
// known areas, average precision against its definition evaluated threshold
// by threshold, IoU against hand masks. Written files are read back (PNGs with
// libpng) and the atomic writers are checked to leave nothing behind on error.
//
//===----------------------------------------------------------------------===//

#include "explain/Methods.h"
#include "explain/Metrics.h"
#include "explain/Render.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Base64.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <png.h>

#include <cmath>
#include <limits>
#include <random>
#include <set>

using namespace mlir::glint::explain;
using llvm::StringRef;

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

// TestSupport.h has the same measure but pulls in the MLIR-based reference
// evaluator; this library and its tests need no MLIR.
double relativeError(llvm::ArrayRef<double> a, llvm::ArrayRef<double> b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

std::vector<double> randomVector(std::mt19937_64 &rng, size_t n, double lo,
                                 double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

std::string messageOf(llvm::Error error) {
  EXPECT_TRUE(bool(error)) << "expected an error";
  return llvm::toString(std::move(error));
}

template <typename T> std::string messageOf(llvm::Expected<T> result) {
  if (result) {
    ADD_FAILURE() << "expected an error";
    return "";
  }
  return llvm::toString(result.takeError());
}

/// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
public:
  TempDir() {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("glint-explain-test", path);
    EXPECT_FALSE(ec) << ec.message();
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string file(StringRef name) const {
    llvm::SmallString<256> p(path);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }
  /// The names of the files in the directory.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(path, ec), end; it != end && !ec;
         it.increment(ec))
      names.push_back(std::string(llvm::sys::path::filename(it->path())));
    return names;
  }
  llvm::SmallString<256> path;
};

struct Image {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb at(uint32_t x, uint32_t y) const {
    const uint8_t *p = rgb.data() + (size_t(y) * width + x) * 3;
    return {p[0], p[1], p[2]};
  }
};

/// Reads an RGB PNG with libpng, independently of the writer.
Image readPng(const std::string &path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  Image result;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    ADD_FAILURE() << "libpng cannot read " << path << ": " << image.message;
    return result;
  }
  image.format = PNG_FORMAT_RGB;
  result.width = image.width;
  result.height = image.height;
  result.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, result.rgb.data(), 0, nullptr))
    ADD_FAILURE() << "libpng cannot decode " << path << ": " << image.message;
  return result;
}

//===----------------------------------------------------------------------===//
// Methods
//===----------------------------------------------------------------------===//

/// row-normalise(|a| + I) and the product, written as plainly as possible.
std::vector<double> referenceRollout(const std::vector<std::vector<double>> &A,
                                     int64_t L, size_t start) {
  auto hat = [&](const std::vector<double> &a) {
    std::vector<double> h(L * L);
    for (int64_t i = 0; i < L; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < L; ++j)
        sum += std::fabs(a[i * L + j]) + (i == j);
      for (int64_t j = 0; j < L; ++j)
        h[i * L + j] = (std::fabs(a[i * L + j]) + (i == j)) / sum;
    }
    return h;
  };
  std::vector<double> r = hat(A[start]);
  for (size_t l = start + 1; l < A.size(); ++l) {
    std::vector<double> h = hat(A[l]), next(L * L);
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j) {
        double dot = 0;
        for (int64_t k = 0; k < L; ++k)
          dot += h[i * L + k] * r[k * L + j];
        next[i * L + j] = dot;
      }
    r = next;
  }
  return r;
}

TEST(ExplainRollout, MatchesPlainProductOnRandomLayers) {
  std::mt19937_64 rng(20240611);
  for (bool causal : {true, false}) {
    const int64_t L = 7;
    std::vector<std::vector<double>> layers;
    for (int l = 0; l < 4; ++l) {
      // Signed values, as implicit attention has.
      std::vector<double> a = randomVector(rng, L * L, -2.0, 3.0);
      if (causal)
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = i + 1; j < L; ++j)
            a[i * L + j] = 0.0;
      layers.push_back(a);
    }
    for (unsigned start : {0u, 2u, 3u}) {
      llvm::Expected<std::vector<double>> r = rollout(layers, L, start);
      ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
      EXPECT_LT(relativeError(*r, referenceRollout(layers, L, start)), 1e-13)
          << "causal " << causal << " start " << start;
      // A product of row-stochastic matrices is row-stochastic, and causal
      // stays lower-triangular.
      for (int64_t i = 0; i < L; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < L; ++j) {
          sum += (*r)[i * L + j];
          if (causal && j > i) {
            EXPECT_EQ((*r)[i * L + j], 0.0);
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-13);
      }
    }
  }
}

TEST(ExplainRollout, HandWorkedTwoLayers) {
  // Â0 = rownorm(|A0| + I) = [[1, 0], [1/2, 1/2]];
  // Â1 = rownorm(|A1| + I) = [[1/2, 1/2], [0, 1]] (|−1| = 1);
  // R = Â1 · Â0 = [[3/4, 1/4], [1/2, 1/2]], while Â0 · Â1 would be
  // [[1/2, 1/2], [1/4, 3/4]]: the order is checked too.
  std::vector<std::vector<double>> layers = {{0.0, 0.0, 1.0, 0.0},
                                             {0.0, -1.0, 0.0, 0.0}};
  llvm::Expected<std::vector<double>> r = rollout(layers, 2, 0);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  std::vector<double> expected = {0.75, 0.25, 0.5, 0.5};
  for (int i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ((*r)[i], expected[i]) << i;

  // From layer 1 only: Â1 itself.
  r = rollout(layers, 2, 1);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  expected = {0.5, 0.5, 0.0, 1.0};
  for (int i = 0; i < 4; ++i)
    EXPECT_DOUBLE_EQ((*r)[i], expected[i]) << i;

  // |[[1, 0], [2, −3]]| + I = [[2, 0], [2, 4]] → [[1, 0], [1/3, 2/3]].
  r = rollout({{1.0, 0.0, 2.0, -3.0}}, 2, 0);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  EXPECT_DOUBLE_EQ((*r)[2], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ((*r)[3], 2.0 / 3.0);
}

TEST(ExplainRollout, RejectsBadInput) {
  std::mt19937_64 rng(7);
  std::vector<std::vector<double>> layers(2, randomVector(rng, 9, 0.1, 1.0));
  std::string message = messageOf(rollout(layers, 3, 2));
  EXPECT_NE(message.find("start layer 2"), std::string::npos) << message;
  EXPECT_NE(message.find("2 layers"), std::string::npos) << message;
  EXPECT_NE(messageOf(rollout({}, 3, 0)).find("at least one layer"),
            std::string::npos);
  message = messageOf(rollout(layers, 4, 0));
  EXPECT_NE(message.find("layer 0 holds 9 elements"), std::string::npos)
      << message;
  layers[1][5] = std::numeric_limits<double>::quiet_NaN();
  message = messageOf(rollout(layers, 3, 0));
  EXPECT_NE(message.find("layer 1 holds nan at (1, 2)"), std::string::npos)
      << message;
}

TEST(ExplainMethods, RelevanceRowAndNormalisation) {
  std::mt19937_64 rng(11);
  const int64_t L = 6;
  std::vector<double> map = randomVector(rng, L * L, -1.0, 1.0);
  llvm::Expected<std::vector<double>> row = relevanceRow(map, L, 4);
  ASSERT_TRUE(bool(row)) << llvm::toString(row.takeError());
  EXPECT_EQ(*row, std::vector<double>(map.begin() + 24, map.begin() + 30));
  EXPECT_NE(
      messageOf(relevanceRow(map, L, 6)).find("position 6 is not in [0, 6)"),
      std::string::npos);
  EXPECT_NE(messageOf(relevanceRow(map, 5, 0)).find("holds 36 elements"),
            std::string::npos);

  std::vector<double> normalised = normalizeRelevance(*row);
  double largest = 0;
  for (double r : *row)
    largest = std::max(largest, std::fabs(r));
  double normLargest = 0;
  for (size_t i = 0; i < normalised.size(); ++i) {
    EXPECT_DOUBLE_EQ(normalised[i], (*row)[i] / largest);
    normLargest = std::max(normLargest, std::fabs(normalised[i]));
  }
  EXPECT_DOUBLE_EQ(normLargest, 1.0);
  EXPECT_EQ(normalizeRelevance({0.0, 0.0, 0.0}),
            std::vector<double>({0.0, 0.0, 0.0}));
}

TEST(ExplainMethods, RandomBaselineIsSeeded) {
  std::vector<double> a = randomRelevance(100, 42),
                      b = randomRelevance(100, 42),
                      c = randomRelevance(100, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double sum = 0;
  for (double r : a) {
    EXPECT_GE(r, 0.0);
    EXPECT_LT(r, 1.0);
    sum += r;
  }
  // Mean of 100 uniforms: 0.5 ± 0.029 (1 sigma).
  EXPECT_NEAR(sum / 100, 0.5, 0.15);
  EXPECT_EQ(std::set<double>(a.begin(), a.end()).size(), 100u);
}

//===----------------------------------------------------------------------===//
// Perturbation and pointing
//===----------------------------------------------------------------------===//

TEST(ExplainMetrics, RemovalOrderBreaksTiesByPosition) {
  std::vector<double> relevance = {0.5, 0.9, 0.5, 0.1, 0.9};
  std::vector<int64_t> all = {0, 1, 2, 3, 4};
  auto most = removalOrder(relevance, all, true);
  auto least = removalOrder(relevance, all, false);
  ASSERT_TRUE(most && least);
  EXPECT_EQ(*most, std::vector<int64_t>({1, 4, 0, 2, 3}));
  EXPECT_EQ(*least, std::vector<int64_t>({3, 0, 2, 1, 4}));
  // Candidates in any order; position 1 (say, BOS) excluded.
  auto some = removalOrder(relevance, {4, 2, 0, 3}, true);
  ASSERT_TRUE(bool(some));
  EXPECT_EQ(*some, std::vector<int64_t>({4, 0, 2, 3}));

  EXPECT_NE(messageOf(removalOrder(relevance, {0, 5}, true))
                .find("position 5 is not in [0, 5)"),
            std::string::npos);
  EXPECT_NE(messageOf(removalOrder(relevance, {2, 2}, true)).find("twice"),
            std::string::npos);
  relevance[3] = std::nan("");
  EXPECT_NE(
      messageOf(removalOrder(relevance, all, true)).find("position 3 is NaN"),
      std::string::npos);
}

TEST(ExplainMetrics, RemovedAtStepRoundsTheFraction) {
  std::vector<int64_t> order = {6, 2, 5, 0, 1, 4, 3};
  // round(step · 7 / 10): 0, 0.7→1, 1.4→1, 2.1→2, 2.8→3, 3.5→4, ... 7.
  std::vector<size_t> expected = {0, 1, 1, 2, 3, 4, 4, 5, 6, 6, 7};
  for (unsigned step = 0; step <= 10; ++step) {
    std::vector<int64_t> removed = removedAtStep(order, step);
    EXPECT_EQ(removed, std::vector<int64_t>(order.begin(),
                                            order.begin() + expected[step]))
        << "step " << step;
  }
  EXPECT_EQ(removedAtStep(order, 2, 4).size(), 4u); // 3.5 → 4
  EXPECT_TRUE(removedAtStep({}, 5).empty());
}

TEST(ExplainMetrics, AreaUnderKnownCurves) {
  auto auc = [](std::vector<double> v) {
    llvm::Expected<double> a = areaUnderCurve(v);
    EXPECT_TRUE(bool(a));
    return a ? *a : std::nan("");
  };
  EXPECT_DOUBLE_EQ(auc(std::vector<double>(11, 0.37)), 0.37);
  std::vector<double> line, square;
  for (int i = 0; i <= 10; ++i) {
    line.push_back(1.0 - i / 10.0);
    square.push_back((i / 10.0) * (i / 10.0));
  }
  EXPECT_NEAR(auc(line), 0.5, 1e-15);
  // The trapezoid rule overestimates ∫x² = 1/3 by h²/6 (h = 0.1).
  EXPECT_NEAR(auc(square), 1.0 / 3.0 + 0.01 / 6.0, 1e-15);
  EXPECT_DOUBLE_EQ(auc({0.2, 0.8}), 0.5);

  // Random curves against trapezoids on explicit x.
  std::mt19937_64 rng(5);
  for (size_t n : {3u, 6u, 11u, 21u}) {
    std::vector<double> y = randomVector(rng, n, 0.0, 1.0);
    double area = 0;
    for (size_t i = 1; i < n; ++i) {
      double x0 = double(i - 1) / double(n - 1), x1 = double(i) / double(n - 1);
      area += (x1 - x0) * (y[i - 1] + y[i]) / 2;
    }
    EXPECT_NEAR(auc(y), area, 1e-14) << n;
  }
  EXPECT_NE(messageOf(areaUnderCurve({0.5})).find("at least 2 points"),
            std::string::npos);
  EXPECT_NE(messageOf(areaUnderCurve({0.5, INFINITY})).find("INF at index 1"),
            std::string::npos);
}

TEST(ExplainMetrics, PointingGame) {
  std::vector<double> relevance = {0.9, 0.2, 0.7, 0.7, 0.1};
  // Position 0 excluded: 2 and 3 tie; the lower position wins.
  auto hit = pointingHit(relevance, {1, 2, 3, 4}, {2});
  ASSERT_TRUE(bool(hit));
  EXPECT_TRUE(*hit);
  hit = pointingHit(relevance, {1, 2, 3, 4}, {3, 4});
  ASSERT_TRUE(bool(hit));
  EXPECT_FALSE(*hit);
  hit = pointingHit(relevance, {0, 1, 2, 3, 4}, {0});
  ASSERT_TRUE(bool(hit));
  EXPECT_TRUE(*hit);
  EXPECT_NE(messageOf(pointingHit(relevance, {}, {0})).find("needs candidates"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Images
//===----------------------------------------------------------------------===//

TEST(ExplainMetrics, UpsamplePatches) {
  auto nearest = upsamplePatches({1, 2, 3, 4, 5, 6}, 2, 3, 2);
  ASSERT_TRUE(bool(nearest));
  EXPECT_EQ(*nearest, std::vector<double>({1, 1, 2, 2, 3, 3, //
                                           1, 1, 2, 2, 3, 3, //
                                           4, 4, 5, 5, 6, 6, //
                                           4, 4, 5, 5, 6, 6}));
  // PyTorch: interpolate([[0, 1]], scale_factor=2, mode='bilinear',
  // align_corners=False) = [0, 0.25, 0.75, 1].
  auto bilinear = upsamplePatches({0.0, 1.0}, 1, 2, 2, Upsampling::Bilinear);
  ASSERT_TRUE(bool(bilinear));
  EXPECT_EQ(*bilinear, std::vector<double>({0, 0.25, 0.75, 1, //
                                            0, 0.25, 0.75, 1}));
  // Separable: a 2-D grid a_i·b_j upsamples to the product of the 1-D ones.
  std::mt19937_64 rng(3);
  std::vector<double> a = randomVector(rng, 3, 0.5, 2.0),
                      b = randomVector(rng, 4, 0.5, 2.0), grid;
  for (double x : a)
    for (double y : b)
      grid.push_back(x * y);
  auto up = upsamplePatches(grid, 3, 4, 4, Upsampling::Bilinear);
  auto upA = upsamplePatches(a, 3, 1, 4, Upsampling::Bilinear);
  auto upB = upsamplePatches(b, 1, 4, 4, Upsampling::Bilinear);
  ASSERT_TRUE(up && upA && upB);
  std::vector<double> expected;
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 16; ++x)
      expected.push_back((*upA)[y * 4] * (*upB)[x]);
  EXPECT_LT(relativeError(*up, expected), 1e-15);
  EXPECT_NE(
      messageOf(upsamplePatches({1, 2, 3}, 2, 2, 4)).find("needs 4 values"),
      std::string::npos);
}

/// sklearn's definition evaluated threshold by threshold: for each distinct
/// score t (decreasing), P(t) and R(t) over the elements scoring ≥ t.
double bruteForceAp(const std::vector<double> &scores,
                    const std::vector<bool> &positive) {
  std::set<double, std::greater<double>> thresholds(scores.begin(),
                                                    scores.end());
  double total = std::count(positive.begin(), positive.end(), true);
  double ap = 0, previousRecall = 0;
  for (double t : thresholds) {
    double selected = 0, hits = 0;
    for (size_t i = 0; i < scores.size(); ++i)
      if (scores[i] >= t) {
        ++selected;
        hits += positive[i];
      }
    ap += (hits / total - previousRecall) * (hits / selected);
    previousRecall = hits / total;
  }
  return ap;
}

TEST(ExplainMetrics, AveragePrecision) {
  // sklearn's documentation example: y = [0, 0, 1, 1],
  // scores = [0.1, 0.4, 0.35, 0.8] → AP = 0.8333.
  auto s = scoreMask({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}, 1, 4);
  ASSERT_TRUE(bool(s));
  EXPECT_NEAR(s->averagePrecision, 5.0 / 6.0, 1e-15);

  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> level(0, 5);
  std::bernoulli_distribution coin(0.3);
  for (int trial = 0; trial < 5; ++trial) {
    const int64_t H = 9, W = 11;
    std::vector<double> relevance(H * W);
    std::vector<float> mask(H * W);
    std::vector<bool> fg(H * W), bg(H * W);
    for (int64_t i = 0; i < H * W; ++i) {
      // Few levels, so many ties; half the trials continuous.
      relevance[i] = trial % 2 ? level(rng) * 0.3 - 0.4
                               : std::uniform_real_distribution<>(-1, 2)(rng);
      fg[i] = coin(rng);
      bg[i] = !fg[i];
      mask[i] = fg[i] ? 1.0f : 0.0f;
    }
    auto scores = scoreMask(relevance, mask, H, W);
    ASSERT_TRUE(bool(scores)) << llvm::toString(scores.takeError());
    EXPECT_NEAR(scores->averagePrecision, bruteForceAp(relevance, fg), 1e-12);

    // Chefer et al.'s two channels, pooled.
    auto [lo, hi] = std::minmax_element(relevance.begin(), relevance.end());
    std::vector<double> pooled;
    std::vector<bool> pooledTruth;
    for (int64_t i = 0; i < H * W; ++i) {
      pooled.push_back(1 - (relevance[i] - *lo) / (*hi - *lo));
      pooledTruth.push_back(bg[i]);
    }
    for (int64_t i = 0; i < H * W; ++i) {
      pooled.push_back((relevance[i] - *lo) / (*hi - *lo));
      pooledTruth.push_back(fg[i]);
    }
    EXPECT_NEAR(scores->averagePrecisionTwoClass,
                bruteForceAp(pooled, pooledTruth), 1e-12);
  }
}

TEST(ExplainMetrics, MaskScoresOnHandMasks) {
  // Relevance 1..6 on 2×3 has mean 3.5: predicted foreground {3, 4, 5}.
  // True foreground {3}: IoU fg = 1/3; background predicted {0, 1, 2}, true
  // {0, 1, 2, 4, 5}: IoU bg = 3/5; pixels right: 0, 1, 2, 3.
  auto s = scoreMask({1, 2, 3, 4, 5, 6}, {0, 0, 0, 1, 0, 0}, 2, 3);
  ASSERT_TRUE(bool(s));
  EXPECT_DOUBLE_EQ(s->iouForeground, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s->iouBackground, 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(s->meanIoU, 7.0 / 15.0);
  EXPECT_DOUBLE_EQ(s->pixelAccuracy, 4.0 / 6.0);
  // Ranked 6, 5, 4(+): P = 1/3 at R = 1.
  EXPECT_DOUBLE_EQ(s->averagePrecision, 1.0 / 3.0);

  // A pixel at the mean (2) is background: the threshold is strict.
  auto atMean = scoreMask({1, 2, 3}, {0, 1, 1}, 1, 3);
  ASSERT_TRUE(bool(atMean));
  EXPECT_DOUBLE_EQ(atMean->iouForeground, 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(atMean->iouBackground, 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(atMean->pixelAccuracy, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(atMean->averagePrecision, 1.0);

  // A perfect map.
  auto perfect = scoreMask({0.1, 0.2, 0.9, 0.8}, {0, 0, 1, 1}, 2, 2);
  ASSERT_TRUE(bool(perfect));
  EXPECT_DOUBLE_EQ(perfect->meanIoU, 1.0);
  EXPECT_DOUBLE_EQ(perfect->pixelAccuracy, 1.0);
  EXPECT_DOUBLE_EQ(perfect->averagePrecision, 1.0);

  // Means weigh images equally; pooling weighs pixels.
  MaskScores mean = meanMaskScores({*s, *perfect});
  EXPECT_DOUBLE_EQ(mean.pixelAccuracy, (4.0 / 6.0 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(mean.meanIoU, (7.0 / 15.0 + 1.0) / 2);
  MaskScores pooled = pooledMaskScores({*s, *perfect});
  EXPECT_DOUBLE_EQ(pooled.pixelAccuracy, 8.0 / 10.0);
  EXPECT_DOUBLE_EQ(pooled.iouForeground, (1.0 + 2.0) / (3.0 + 2.0));
  EXPECT_DOUBLE_EQ(pooled.iouBackground, (3.0 + 2.0) / (5.0 + 2.0));
  EXPECT_DOUBLE_EQ(pooled.averagePrecision, (1.0 / 3.0 + 1.0) / 2);
  EXPECT_EQ(pooled.pixels, 10);

  EXPECT_NE(messageOf(scoreMask({1, 2, 3}, {0, 1}, 1, 3)).find("needs 3"),
            std::string::npos);
  EXPECT_NE(messageOf(scoreMask({1, NAN, 3}, {0, 1, 0}, 1, 3)).find("nan"),
            std::string::npos);
  EXPECT_TRUE(std::isnan(mlir::glint::explain::mean({})));
  EXPECT_DOUBLE_EQ(mlir::glint::explain::mean({1, 2, 6}), 3.0);
}

//===----------------------------------------------------------------------===//
// Rendering
//===----------------------------------------------------------------------===//

TEST(ExplainRender, ColourMapEnds) {
  EXPECT_EQ(colorAt(ColorMap::Viridis, 0.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(colorAt(ColorMap::Viridis, 1.0), (Rgb{253, 231, 37}));
  EXPECT_EQ(colorAt(ColorMap::Viridis, -3.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(colorAt(ColorMap::Viridis, 0.5), (Rgb{33, 145, 140}));
  EXPECT_EQ(colorAt(ColorMap::Diverging, 0.5), (Rgb{255, 255, 255}));
  EXPECT_EQ(colorAt(ColorMap::Diverging, 0.0), (Rgb{33, 102, 172}));
  EXPECT_EQ(colorAt(ColorMap::Diverging, 1.0), (Rgb{178, 24, 43}));
  // Halfway between the first two viridis points (68,1,84), (71,45,123).
  EXPECT_EQ(colorAt(ColorMap::Viridis, 1.0 / 16.0), (Rgb{70, 23, 104}));
  // Near the centre the diverging map is nearly white.
  Rgb nearWhite = colorAt(ColorMap::Diverging, 0.45);
  EXPECT_GT(nearWhite.r, 200);
  EXPECT_EQ(colorAt(ColorMap::Inferno, 0.0), (Rgb{0, 0, 4}));
}

TEST(ExplainRender, HeatmapPngReadsBack) {
  TempDir dir;
  std::mt19937_64 rng(1234);
  const int64_t L = 32;
  std::vector<double> map = randomVector(rng, L * L, 0.05, 0.95);
  map[3 * L + 5] = 1.5;   // the maximum
  map[20 * L + 7] = -0.5; // the minimum
  std::string path = dir.file("map.png");
  ASSERT_FALSE(bool(writeHeatmapPng(path, map, L, L)));
  Image image = readPng(path);
  EXPECT_EQ(image.width, 512u);
  EXPECT_EQ(image.height, 512u);
  // 16-pixel cells: the centre of cell (3, 5) is (x, y) = (88, 56).
  EXPECT_EQ(image.at(5 * 16 + 8, 3 * 16 + 8), (Rgb{253, 231, 37}));
  EXPECT_EQ(image.at(5 * 16, 3 * 16), (Rgb{253, 231, 37}));
  EXPECT_EQ(image.at(5 * 16 + 15, 3 * 16 + 15), (Rgb{253, 231, 37}));
  EXPECT_EQ(image.at(7 * 16 + 3, 20 * 16 + 12), (Rgb{68, 1, 84}));
  // Any other cell: the colour of its value.
  double t = (map[10 * L + 30] + 0.5) / 2.0;
  EXPECT_EQ(image.at(30 * 16 + 1, 10 * 16 + 2), colorAt(ColorMap::Viridis, t));
  // No temporary file is left beside it.
  EXPECT_EQ(dir.entries(), std::vector<std::string>({"map.png"}));

  // Non-square, a fixed range and a minimum cell size.
  HeatmapOptions options;
  options.minCellPixels = 3;
  options.targetPixels = 0;
  options.low = 0.0;
  options.high = 1.0;
  ASSERT_FALSE(bool(
      writeHeatmapPng(path, {0.0, 1.0, 2.0, 0.5, 0.25, -1.0}, 2, 3, options)));
  image = readPng(path);
  EXPECT_EQ(image.width, 9u);
  EXPECT_EQ(image.height, 6u);
  EXPECT_EQ(image.at(7, 1), (Rgb{253, 231, 37})); // 2.0 clamped to the top
  EXPECT_EQ(image.at(7, 4), (Rgb{68, 1, 84})); // −1.0 clamped to the bottom
  EXPECT_EQ(image.at(4, 4), colorAt(ColorMap::Viridis, 0.25));
}

TEST(ExplainRender, DivergingHeatmapIsSymmetric) {
  TempDir dir;
  std::string path = dir.file("signed.png");
  HeatmapOptions options;
  options.colorMap = ColorMap::Diverging;
  // Range ±2: −2 is the blue end, 0 white, 1 three quarters up.
  ASSERT_FALSE(
      bool(writeHeatmapPng(path, {-2.0, 0.0, 1.0, 0.5}, 2, 2, options)));
  Image image = readPng(path);
  ASSERT_EQ(image.width, 512u);
  EXPECT_EQ(image.at(10, 10), (Rgb{33, 102, 172}));
  EXPECT_EQ(image.at(300, 10), (Rgb{255, 255, 255}));
  EXPECT_EQ(image.at(10, 300), colorAt(ColorMap::Diverging, 0.75));
  EXPECT_EQ(image.at(300, 300), colorAt(ColorMap::Diverging, 0.625));
}

TEST(ExplainRender, WritersRejectNonFiniteAndLeaveNoFile) {
  TempDir dir;
  std::mt19937_64 rng(77);
  std::vector<double> map = randomVector(rng, 16, 0.0, 1.0);
  std::string path = dir.file("heat.png");

  // An existing file survives a failed write unchanged.
  ASSERT_FALSE(bool(writeHeatmapPng(path, map, 4, 4)));
  auto before = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(before));
  std::string original = (*before)->getBuffer().str();

  map[6] = std::numeric_limits<double>::quiet_NaN();
  std::string message = messageOf(writeHeatmapPng(path, map, 4, 4));
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("nan at row 1, column 2"), std::string::npos)
      << message;
  map[6] = -std::numeric_limits<double>::infinity();
  message = messageOf(writeHeatmapPng(path, map, 4, 4));
  EXPECT_NE(message.find("-INF at row 1, column 2"), std::string::npos)
      << message;
  auto after = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(after));
  EXPECT_EQ((*after)->getBuffer().str(), original);

  std::string fresh = dir.file("never.png");
  EXPECT_NE(messageOf(writeHeatmapPng(fresh, map, 4, 4)).find(fresh),
            std::string::npos);
  EXPECT_FALSE(llvm::sys::fs::exists(fresh));
  EXPECT_NE(
      messageOf(writeHeatmapPng(fresh, map, 4, 5)).find("needs 20 values"),
      std::string::npos);
  EXPECT_EQ(dir.entries(), std::vector<std::string>({"heat.png"}));

  // A directory that does not exist: the error names the path.
  std::string missing = dir.file("no-such-dir/out.html");
  message = messageOf(writeFileAtomically(missing, "text"));
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  ReportData data;
  data.tokens = {"a"};
  message = messageOf(writeHtmlReport(missing, data));
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_FALSE(llvm::sys::fs::exists(missing));
  EXPECT_EQ(dir.entries(), std::vector<std::string>({"heat.png"}));
}

TEST(ExplainRender, OverlayBlendsHeatOverTheImage) {
  TempDir dir;
  std::mt19937_64 rng(8);
  const int64_t H = 5, W = 6;
  // Any range: the image is normalised by its own minimum and maximum.
  std::vector<double> values = randomVector(rng, 3 * H * W, -3.0, 40.0);
  std::vector<float> image(values.begin(), values.end());
  image[0] = -3.0f;
  image[1] = 40.0f;
  std::vector<double> relevance = randomVector(rng, H * W, 0.2, 0.8);
  relevance[2 * W + 3] = 1.0; // most relevant
  relevance[4 * W + 1] = 0.0; // least relevant: the image alone
  std::string path = dir.file("overlay.png");
  OverlayOptions options;
  ASSERT_FALSE(bool(writeOverlayPng(path, image, relevance, H, W, options)));
  Image png = readPng(path);
  EXPECT_EQ(png.width, uint32_t(W * 8));
  EXPECT_EQ(png.height, uint32_t(H * 8));

  auto pixelOf = [&](int64_t y, int64_t x, int64_t c) {
    return (image[(c * H + y) * W + x] + 3.0) / 43.0 * 255.0;
  };
  Rgb plain = png.at(1 * 8 + 4, 4 * 8 + 4);
  EXPECT_EQ(plain.r, std::lround(pixelOf(4, 1, 0)));
  EXPECT_EQ(plain.g, std::lround(pixelOf(4, 1, 1)));
  EXPECT_EQ(plain.b, std::lround(pixelOf(4, 1, 2)));
  Rgb hot = png.at(3 * 8 + 7, 2 * 8);
  Rgb top = colorAt(ColorMap::Inferno, 1.0);
  EXPECT_EQ(hot.r, std::lround(0.4 * pixelOf(2, 3, 0) + 0.6 * top.r));
  EXPECT_EQ(hot.g, std::lround(0.4 * pixelOf(2, 3, 1) + 0.6 * top.g));
  EXPECT_EQ(hot.b, std::lround(0.4 * pixelOf(2, 3, 2) + 0.6 * top.b));

  image[3] = std::numeric_limits<float>::infinity();
  std::string message =
      messageOf(writeOverlayPng(path, image, relevance, H, W));
  EXPECT_NE(message.find("INF at channel 0, row 0, column 3"),
            std::string::npos)
      << message;
  EXPECT_NE(messageOf(encodeOverlayPng(image, relevance, H, W + 1))
                .find("needs a 3×5×7 image"),
            std::string::npos);
}

TEST(ExplainRender, HtmlReportIsEscapedAndSelfContained) {
  std::mt19937_64 rng(31);
  ReportData data;
  data.title = "Why <b>\"this\"</b>?";
  data.modelName = "mamba-130m & co";
  data.tokens = {
      "<s>", " The",  " cat's", " \"quoted\"", " <script>alert(1)</script>",
      "\n",  " &amp;"};
  data.targetPosition = 6;
  data.targetLabel = "next: <eos>";
  data.groundTruth = {2};
  ReportMethod raw{"raw attention (layer 3)", randomVector(rng, 7, 0.0, 1.0),
                   "AUC+ 0.21"};
  ReportMethod signedMethod{"rollout <signed>", randomVector(rng, 7, -1.0, 1.0),
                            ""};
  data.methods = {raw, signedMethod};
  auto png = encodeHeatmapPng(randomVector(rng, 49, 0.0, 1.0), 7, 7);
  ASSERT_TRUE(bool(png));
  data.images = {{"rollout map", *png}};
  data.metadata = {{"shape", "7×7"}, {"formulation", "S6 <exact>"}};

  auto html = renderHtmlReport(data);
  ASSERT_TRUE(bool(html)) << llvm::toString(html.takeError());
  StringRef page(*html);
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_FALSE(page.contains("<script"));
  EXPECT_TRUE(page.contains("&lt;s&gt;"));
  EXPECT_TRUE(page.contains(" cat&#39;s"));
  EXPECT_TRUE(page.contains(" &quot;quoted&quot;"));
  EXPECT_TRUE(page.contains(" &amp;amp;"));
  EXPECT_TRUE(page.contains("\xE2\x90\x8A")); // the newline token as ␊
  EXPECT_TRUE(page.contains("Why &lt;b&gt;&quot;this&quot;&lt;/b&gt;?"));
  EXPECT_TRUE(page.contains("mamba-130m &amp; co"));
  EXPECT_TRUE(page.contains("next: &lt;eos&gt;"));
  EXPECT_TRUE(page.contains("raw attention (layer 3)"));
  EXPECT_TRUE(page.contains("rollout &lt;signed&gt;"));
  EXPECT_TRUE(page.contains("AUC+ 0.21"));
  EXPECT_TRUE(page.contains("S6 &lt;exact&gt;"));
  // One target and one ground-truth token per method row (+ the legend).
  EXPECT_EQ(page.count("class=\"tok target\""), 3u);
  EXPECT_EQ(page.count("class=\"tok truth\""), 3u);
  // Each token's value in its hover title.
  std::string title;
  llvm::raw_string_ostream(title)
      << "title=\"position 0: " << llvm::format("%.6g", raw.relevance[0]);
  EXPECT_TRUE(page.contains(title)) << title;
  // Nothing outside the file.
  EXPECT_FALSE(page.contains("http:"));
  EXPECT_FALSE(page.contains("https:"));
  EXPECT_FALSE(page.contains("src=\"//"));
  EXPECT_FALSE(page.contains("url("));
  EXPECT_FALSE(page.contains("<link"));
  // The image round-trips through its data URI.
  size_t start = page.find("data:image/png;base64,");
  ASSERT_NE(start, StringRef::npos);
  start += strlen("data:image/png;base64,");
  StringRef encoded = page.substr(start, page.find('"', start) - start);
  std::vector<char> decoded;
  ASSERT_FALSE(bool(llvm::decodeBase64(encoded, decoded)));
  EXPECT_EQ(std::string(decoded.begin(), decoded.end()), *png);

  // Written to a file, the same page.
  TempDir dir;
  std::string path = dir.file("report.html");
  ASSERT_FALSE(bool(writeHtmlReport(path, data)));
  auto file = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(file));
  EXPECT_EQ((*file)->getBuffer(), page);

  data.methods[1].relevance.pop_back();
  EXPECT_NE(messageOf(renderHtmlReport(data))
                .find("'rollout <signed>' has 6 relevance values for 7 tokens"),
            std::string::npos);
  data.methods[1].relevance.push_back(NAN);
  EXPECT_NE(
      messageOf(renderHtmlReport(data)).find("relevance nan at position 6"),
      std::string::npos);
  data.methods.pop_back();
  data.targetPosition = 7;
  EXPECT_NE(messageOf(renderHtmlReport(data)).find("target position 7"),
            std::string::npos);
  EXPECT_FALSE(llvm::sys::fs::exists(dir.file("never.html")));
}

} // namespace

// Token AUROC from the rank sum against the definition counted pair by pair
// (ties one half), on random relevance with ties, and AP against the
// definition on a small case.
TEST(TokenScores, AurocMatchesPairwiseCount) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> level(0, 6); // few levels: many ties
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<double> relevance(20);
    for (double &r : relevance)
      r = level(rng) / 3.0;
    std::vector<int64_t> candidates;
    for (int64_t t = 1; t < 20; ++t)
      candidates.push_back(t);
    std::vector<int64_t> truth = {int64_t(1 + trial % 19),
                                  int64_t(1 + (trial * 7) % 19)};
    auto scores = scoreTokens(relevance, candidates, truth);
    ASSERT_TRUE(bool(scores)) << llvm::toString(scores.takeError());
    double wins = 0.0, pairs = 0.0;
    for (int64_t a : candidates)
      for (int64_t b : candidates) {
        bool aRelevant = llvm::is_contained(truth, a);
        bool bRelevant = llvm::is_contained(truth, b);
        if (!aRelevant || bRelevant)
          continue;
        pairs += 1.0;
        wins += relevance[a] > relevance[b]    ? 1.0
                : relevance[a] == relevance[b] ? 0.5
                                               : 0.0;
      }
    EXPECT_NEAR(scores->auroc, wins / pairs, 1e-12);
  }
}

TEST(TokenScores, AveragePrecisionAndErrors) {
  // Ranking 3 > 1 > 2 > 0 with relevant {3, 2}: precision 1/1 at recall
  // 1/2, then 2/3 at recall 1: AP = 0.5 + 0.5 * 2/3.
  std::vector<double> relevance = {0.1, 0.7, 0.4, 0.9};
  auto scores = scoreTokens(relevance, {0, 1, 2, 3}, {3, 2});
  ASSERT_TRUE(bool(scores)) << llvm::toString(scores.takeError());
  EXPECT_NEAR(scores->averagePrecision, 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(scores->auroc, 3.0 / 4.0, 1e-12);
  auto none = scoreTokens(relevance, {0, 1}, {3});
  ASSERT_FALSE(bool(none));
  EXPECT_NE(llvm::toString(none.takeError())
                .find("both relevant and "
                      "irrelevant"),
            std::string::npos);
  auto range = scoreTokens(relevance, {0, 9}, {0});
  ASSERT_FALSE(bool(range));
  llvm::consumeError(range.takeError());
}
