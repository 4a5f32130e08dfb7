//===- TestSupport.h - helpers shared by the unit tests ---------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_UNIT_TESTSUPPORT_H
#define GLINT_TEST_UNIT_TESTSUPPORT_H

#include "reference/ReferenceEvaluator.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>

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

} // namespace mlir::glint::testing

#endif // GLINT_TEST_UNIT_TESTSUPPORT_H
