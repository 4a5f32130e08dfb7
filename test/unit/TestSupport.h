//===- TestSupport.h - helpers shared by the unit tests ---------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_UNIT_TESTSUPPORT_H
#define GLINT_TEST_UNIT_TESTSUPPORT_H

#include "reference/ReferenceEvaluator.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace mlir::glint::testing {

/// A fresh seed for a test's random inputs, or GLINT_TEST_SEED to replay a
/// failure (tests print the seed they used).
inline uint64_t testSeed() {
  if (const char *fixed = std::getenv("GLINT_TEST_SEED"))
    return std::strtoull(fixed, nullptr, 10);
  return std::random_device{}();
}

/// ‖a − b‖ / ‖scale‖.
inline double errorRelativeTo(llvm::ArrayRef<double> a,
                              llvm::ArrayRef<double> b,
                              llvm::ArrayRef<double> scale) {
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(b.size(), scale.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size() && i < scale.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += scale[i] * scale[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

/// ‖a − b‖ / ‖b‖, the error measure of every numerical test.
inline double relativeError(llvm::ArrayRef<double> a,
                            llvm::ArrayRef<double> b) {
  return errorRelativeTo(a, b, b);
}

/// The same for evaluator arrays, whose shapes must agree.
inline double relativeError(const reference::Array &a,
                            const reference::Array &b) {
  EXPECT_EQ(a.shape, b.shape);
  return relativeError(a.data, b.data);
}

/// An array of `shape` with elements uniform in [lo, hi).
inline reference::Array randomArray(std::mt19937_64 &rng,
                                    llvm::ArrayRef<int64_t> shape, double lo,
                                    double hi) {
  reference::Array a(shape);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (double &x : a.data)
    x = dist(rng);
  return a;
}

/// Weights uniform in [lo, hi), the same array each time a name is asked
/// for (so two modules or two runs bind identical weights). `rng` must
/// outlive the provider.
inline reference::WeightProvider randomWeights(std::mt19937_64 &rng,
                                               double lo, double hi) {
  auto store = std::make_shared<llvm::StringMap<reference::Array>>();
  return [&rng, store, lo, hi](llvm::StringRef name,
                               llvm::ArrayRef<int64_t> shape) {
    auto it = store->find(name);
    if (it == store->end())
      it = store->insert({name, randomArray(rng, shape, lo, hi)}).first;
    return llvm::Expected<reference::Array>(it->second);
  };
}

/// The shapes of one `glint.attention_grad` case: q [B, L, H, D], k
/// [B, L, KV, D], v [B, L, KV, Dv] and dy [B, L, H, Dv].
struct AttentionGradCase {
  std::string name;
  int64_t batch, len, heads, kvHeads, dim, valueDim;
  int64_t window; // 0: none

  std::vector<int64_t> shape(int64_t headCount, int64_t size) const {
    return {batch, len, headCount, size};
  }
  /// The shapes of q, k, v and dy.
  std::array<std::vector<int64_t>, 4> shapes() const {
    return {shape(heads, dim), shape(kvHeads, dim), shape(kvHeads, valueDim),
            shape(heads, valueDim)};
  }
  /// The elements of q, k, v and dy.
  std::array<int64_t, 4> elements() const {
    std::array<int64_t, 4> out;
    for (auto [n, s] : llvm::zip(out, shapes()))
      n = s[0] * s[1] * s[2] * s[3];
    return out;
  }
  /// The tensor types of q, k, v and dy.
  std::array<std::string, 4> types() const {
    std::array<std::string, 4> out;
    for (auto [type, s] : llvm::zip(out, shapes()))
      type = "tensor<" + std::to_string(s[0]) + "x" + std::to_string(s[1]) +
             "x" + std::to_string(s[2]) + "x" + std::to_string(s[3]) + "xf32>";
    return out;
  }
  /// The op's ` window N`, or nothing.
  std::string windowSuffix() const {
    return window ? " window " + std::to_string(window) : "";
  }
  /// q, k, v and dy uniform in [-1, 1).
  std::vector<reference::Array> randomInputs(std::mt19937_64 &rng) const {
    std::vector<reference::Array> inputs;
    for (const std::vector<int64_t> &s : shapes())
      inputs.push_back(randomArray(rng, s, -1.0, 1.0));
    return inputs;
  }
};

inline void PrintTo(const AttentionGradCase &c, std::ostream *os) {
  *os << c.name;
}

} // namespace mlir::glint::testing

#endif // GLINT_TEST_UNIT_TESTSUPPORT_H
