//===- ReferenceTest.cpp - tests of the reference evaluator ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The evaluator is the oracle of every lowering, so its ops are checked here
// against independent formulas: the recurrence against its unrolled
// attention form with segment sums, RWKV-4's ratio form against the direct
// weighted average, the convolution against its Toeplitz matrix, streaming
// against a single call. Inputs are fresh random values; the seed is printed
// with any failure.
//
//===----------------------------------------------------------------------===//

#include "reference/ReferenceEvaluator.h"

#include "dialect/GlintDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>

using namespace mlir;
using namespace mlir::glint::reference;
using mlir::glint::testing::relativeError;
using llvm::Expected;

namespace {

class ReferenceTest : public ::testing::Test {
protected:
  ReferenceTest() : seed(std::random_device{}()), rng(seed) {
    context.loadDialect<glint::GlintDialect, arith::ArithDialect,
                        func::FuncDialect, linalg::LinalgDialect,
                        math::MathDialect, ml_program::MLProgramDialect,
                        scf::SCFDialect, tensor::TensorDialect>();
  }

  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, ParserConfig(&context));
  }

  Array random(ArrayRef<int64_t> shape, double lo = -1.0, double hi = 1.0) {
    return mlir::glint::testing::randomArray(rng, shape, lo, hi);
  }

  /// Runs @f of `source` on `args`.
  Expected<std::vector<Array>> evaluate(StringRef source, ArrayRef<Array> args,
                                        WeightProvider weights) {
    OwningOpRef<ModuleOp> module = parse(source);
    EXPECT_TRUE(module);
    if (!module)
      return llvm::createStringError("the test IR does not parse");
    if (!weights)
      weights = noWeights();
    ReferenceEvaluator evaluator(*module, weights);
    return evaluator.run("f", args);
  }

  /// The results of @f (fails the test on error).
  std::vector<Array> run(StringRef source, ArrayRef<Array> args,
                         WeightProvider weights = nullptr) {
    auto results = evaluate(source, args, weights);
    if (!results) {
      ADD_FAILURE() << llvm::toString(results.takeError());
      return {};
    }
    return *results;
  }

  /// The error message of running @f, or "" if it succeeded.
  std::string runError(StringRef source, ArrayRef<Array> args,
                       WeightProvider weights = nullptr) {
    auto results = evaluate(source, args, weights);
    if (results)
      return "";
    return llvm::toString(results.takeError());
  }

  MLIRContext context;
  unsigned seed;
  std::mt19937_64 rng;
};


double &at4(Array &a, int64_t i, int64_t j, int64_t k, int64_t l) {
  return a.data[((i * a.shape[1] + j) * a.shape[2] + k) * a.shape[3] + l];
}

//===----------------------------------------------------------------------===//
// The recurrence against its unrolled attention form
//===----------------------------------------------------------------------===//

struct RecurrenceCase {
  const char *name;
  int64_t batch, len, heads, groups, key, value;
  int decayRank; // 1..4
  bool delta, bonus, skip, query, reverse;
};

void PrintTo(const RecurrenceCase &c, std::ostream *os) { *os << c.name; }

class RecurrenceVsAttention
    : public ReferenceTest,
      public ::testing::WithParamInterface<RecurrenceCase> {};

std::string tensorType(ArrayRef<int64_t> shape) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + "f64>";
}

TEST_P(RecurrenceVsAttention, MatchesSegmentSumClosedForm) {
  const RecurrenceCase &c = GetParam();
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  int64_t B = c.batch, L = c.len, H = c.heads, G = c.groups, K = c.key,
          V = c.value;
  SmallVector<SmallVector<int64_t>> decayShapes = {
      {H}, {H, K}, {B, L, H}, {B, L, H, K}};
  ArrayRef<int64_t> decayShape = decayShapes[c.decayRank - 1];

  // Log-decays in [-1, 0) (times delta in (0, 1] when factored).
  Array q = random({B, L, G, K}), k = random({B, L, G, K}),
        v = random({B, L, H, V}), g = random(decayShape, -1.0, -0.01),
        dt = random({B, L, H}, 0.05, 1.0), u = random({H, K}),
        d = random({H});

  std::string args, operands, types;
  std::vector<Array> inputs;
  auto add = [&](StringRef name, const Array &a, StringRef role) {
    args += (args.empty() ? "" : ", ") + ("%" + name + ": ").str() +
            tensorType(a.shape);
    operands += (role + "(%" + name + ") ").str();
    types += (types.empty() ? "" : ", ") + tensorType(a.shape);
    inputs.push_back(a);
  };
  if (c.query)
    add("q", q, "q");
  add("k", k, "k");
  add("v", v, "v");
  add("g", g, "log_decay");
  if (c.delta)
    add("dt", dt, "delta");
  if (c.bonus)
    add("u", u, "bonus");
  if (c.skip)
    add("d", d, "skip");
  std::string source = llvm::formatv(
      "func.func @f({0}) -> {1} {{\n"
      "  %y = glint.recurrence {2} {3} : ({4}) -> {1}\n"
      "  return %y : {1}\n}",
      args, tensorType({B, L, H, V}), c.reverse ? "reverse" : "", operands,
      types);
  std::vector<Array> results = run(source, inputs);
  ASSERT_EQ(results.size(), 1u);

  // o_t = Σ_s q_t · diag(exp(Σ_{r ∈ (s, t]} g_r)) k_s (dt_s) v_s, with the
  // segment taken on the other side in reverse, and the bonus replacing the
  // s = t term.
  auto logDecay = [&](int64_t b, int64_t t, int64_t h, int64_t kk) {
    double x = c.decayRank == 1   ? g.data[h]
               : c.decayRank == 2 ? g.data[h * K + kk]
               : c.decayRank == 3 ? g.data[(b * L + t) * H + h]
                                  : at4(g, b, t, h, kk);
    return c.delta ? x * dt.data[(b * L + t) * H + h] : x;
  };
  Array expected({B, L, H, V});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t grp = h / (H / G);
      for (int64_t t = 0; t < L; ++t)
        for (int64_t s = 0; s < L; ++s) {
          bool visible = c.reverse ? s >= t : s <= t;
          if (!visible || (c.bonus && s == t))
            continue;
          double weight = 0.0;
          for (int64_t kk = 0; kk < K; ++kk) {
            double segment = 0.0;
            if (!c.reverse) // (s, t] or, with a bonus, (s, t - 1]
              for (int64_t r = s + 1; r <= (c.bonus ? t - 1 : t); ++r)
                segment += logDecay(b, r, h, kk);
            else // [t, s) or, with a bonus, [t + 1, s)
              for (int64_t r = (c.bonus ? t + 1 : t); r < s; ++r)
                segment += logDecay(b, r, h, kk);
            double qk = (c.query ? at4(q, b, t, grp, kk) : 1.0) *
                        at4(k, b, s, grp, kk);
            weight += qk * std::exp(segment);
          }
          if (c.delta)
            weight *= dt.data[(b * L + s) * H + h];
          for (int64_t j = 0; j < V; ++j)
            at4(expected, b, t, h, j) += weight * at4(v, b, s, h, j);
        }
      for (int64_t t = 0; t < L; ++t)
        for (int64_t j = 0; j < V; ++j) {
          if (c.bonus) {
            double diag = 0.0;
            for (int64_t kk = 0; kk < K; ++kk)
              diag += (c.query ? at4(q, b, t, grp, kk) : 1.0) *
                      u.data[h * K + kk] * at4(k, b, t, grp, kk) *
                      (c.delta ? dt.data[(b * L + t) * H + h] : 1.0);
            at4(expected, b, t, h, j) += diag * at4(v, b, t, h, j);
          }
          if (c.skip)
            at4(expected, b, t, h, j) += d.data[h] * at4(v, b, t, h, j);
        }
    }
  EXPECT_LT(relativeError(results[0], expected), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(
    Families, RecurrenceVsAttention,
    ::testing::Values(
        // name, B, L, H, G, K, V, decayRank, delta, bonus, skip, q, reverse
        RecurrenceCase{"Mamba1", 2, 13, 6, 1, 5, 1, 2, true, false, true,
                       true, false},
        RecurrenceCase{"VimBackward", 1, 9, 4, 1, 3, 1, 2, true, false, true,
                       true, true},
        RecurrenceCase{"Mamba2Groups", 2, 11, 4, 2, 6, 3, 1, true, false,
                       true, true, false},
        RecurrenceCase{"RWKV6", 2, 10, 3, 3, 4, 4, 4, false, true, false,
                       true, false},
        RecurrenceCase{"GLA", 1, 17, 2, 2, 4, 5, 4, false, false, false, true,
                       false},
        RecurrenceCase{"RGLRU", 2, 12, 7, 7, 1, 1, 3, false, false, false,
                       false, false},
        RecurrenceCase{"RetNetReverse", 1, 8, 4, 2, 3, 2, 1, false, false,
                       false, true, true},
        RecurrenceCase{"BonusReverse", 1, 7, 2, 1, 3, 2, 3, false, true,
                       true, true, true},
        RecurrenceCase{"SingleToken", 3, 1, 2, 1, 4, 2, 4, false, false,
                       false, true, false}),
    [](const auto &info) { return std::string(info.param.name); });

//===----------------------------------------------------------------------===//
// RWKV-4's ratio form
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, NormalizedRecurrenceIsWeightedAverage) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const int64_t B = 2, L = 11, H = 5;
  // Large log-keys exercise the max-stabilised exponentials.
  Array k = random({B, L, H, 1}, -30.0, 60.0), v = random({B, L, H, 1}),
        w = random({H}, -2.0, -0.1), u = random({H, 1}, -1.0, 3.0);
  std::string t4 = tensorType({B, L, H, 1});
  std::string source = llvm::formatv(
      "func.func @f(%k: {0}, %v: {0}, %w: {1}, %u: {2}) -> {0} {{\n"
      "  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u)"
      " : ({0}, {0}, {1}, {2}) -> {0}\n  return %y : {0}\n}",
      t4, tensorType({H}), tensorType({H, 1}));
  std::vector<Array> results = run(source, {k, v, w, u});
  ASSERT_EQ(results.size(), 1u);
  Array expected({B, L, H, 1});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < L; ++t) {
        // Exponents of each term, then a softmax-weighted average of v.
        std::vector<double> e;
        std::vector<double> vals;
        for (int64_t s = 0; s < t; ++s) {
          e.push_back((t - 1 - s) * w.data[h] + at4(k, b, s, h, 0));
          vals.push_back(at4(v, b, s, h, 0));
        }
        e.push_back(u.data[h] + at4(k, b, t, h, 0));
        vals.push_back(at4(v, b, t, h, 0));
        double m = *std::max_element(e.begin(), e.end()), num = 0, den = 0;
        for (size_t i = 0; i < e.size(); ++i) {
          num += std::exp(e[i] - m) * vals[i];
          den += std::exp(e[i] - m);
        }
        at4(expected, b, t, h, 0) = num / den;
      }
  EXPECT_LT(relativeError(results[0], expected), 1e-12);
}

//===----------------------------------------------------------------------===//
// Streaming: two calls carrying the state equal one call
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, StreamingRecurrenceConvAndShiftMatchOneCall) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const int64_t B = 2, L1 = 5, L2 = 4, C = 3, K = 2, W = 4;
  // One layer: shift, conv and a recurrence over C heads with key size K.
  auto source = [&](int64_t L) {
    return llvm::formatv(R"mlir(
      func.func @f(%x: {0}, %qk: {1}, %g: {2}, %w: {3}, %s0: {4}, %c0: {5},
                   %t0: {6}) -> ({7}, {4}, {5}, {0}, {6}) {{
        %sh, %t1 = glint.token_shift %x initial_state(%t0) : ({0}, {6}) -> ({0}, {6})
        %c, %c1 = glint.conv1d %sh, %w initial_state(%c0) : ({0}, {3}, {5}) -> ({0}, {5})
        %v = tensor.expand_shape %c [[0], [1], [2, 3]] output_shape [{8}, {9}, {10}, 1] : {0} into {7}
        %y, %s1 = glint.recurrence q(%qk) k(%qk) v(%v) log_decay(%g) initial_state(%s0)
            : ({1}, {1}, {7}, {2}, {4}) -> ({7}, {4})
        return %y, %s1, %c1, %sh, %t1 : {7}, {4}, {5}, {0}, {6}
      })mlir",
                         tensorType({B, L, C}), tensorType({B, L, 1, K}),
                         tensorType({B, L, C, K}), tensorType({C, W}),
                         tensorType({B, C, K, 1}), tensorType({B, W - 1, C}),
                         tensorType({B, C}), tensorType({B, L, C, 1}), B, L,
                         C)
        .str();
  };
  const int64_t L = L1 + L2;
  Array x = random({B, L, C}), qk = random({B, L, 1, K}),
        g = random({B, L, C, K}, -1.0, -0.01), w = random({C, W}),
        s0 = random({B, C, K, 1}), c0 = random({B, W - 1, C}),
        t0 = random({B, C});
  auto slice = [](const Array &a, int64_t from, int64_t to) {
    SmallVector<int64_t, 4> shape(a.shape);
    shape[1] = to - from;
    Array out(shape);
    int64_t inner = a.numElements() / (a.shape[0] * a.shape[1]);
    for (int64_t b = 0; b < a.shape[0]; ++b)
      std::copy_n(a.data.begin() + (b * a.shape[1] + from) * inner,
                  (to - from) * inner,
                  out.data.begin() + b * (to - from) * inner);
    return out;
  };
  std::vector<Array> whole = run(source(L), {x, qk, g, w, s0, c0, t0});
  std::vector<Array> first =
      run(source(L1), {slice(x, 0, L1), slice(qk, 0, L1), slice(g, 0, L1), w,
                       s0, c0, t0});
  ASSERT_EQ(first.size(), 5u);
  std::vector<Array> second =
      run(source(L2), {slice(x, L1, L), slice(qk, L1, L), slice(g, L1, L), w,
                       first[1], first[2], first[4]});
  ASSERT_EQ(whole.size(), 5u);
  ASSERT_EQ(second.size(), 5u);
  EXPECT_LT(relativeError(first[0], slice(whole[0], 0, L1)), 1e-13);
  EXPECT_LT(relativeError(second[0], slice(whole[0], L1, L)), 1e-13);
  EXPECT_LT(relativeError(second[1], whole[1]), 1e-13);
  EXPECT_LT(relativeError(second[2], whole[2]), 1e-13);
  EXPECT_LT(relativeError(second[4], whole[4]), 1e-13);
}

//===----------------------------------------------------------------------===//
// Convolution and attention against direct formulas
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, ConvIsToeplitzAndReverseIsFlipped) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const int64_t B = 2, L = 9, C = 3, W = 3;
  Array x = random({B, L, C}), w = random({C, W}), bias = random({C});
  std::string t = tensorType({B, L, C});
  std::string source = llvm::formatv(
      "func.func @f(%x: {0}, %w: {1}, %b: {2}) -> ({0}, {0}) {{\n"
      "  %y = glint.conv1d %x, %w bias %b : ({0}, {1}, {2}) -> {0}\n"
      "  %r = glint.conv1d reverse %x, %w bias %b : ({0}, {1}, {2}) -> {0}\n"
      "  return %y, %r : {0}, {0}\n}",
      t, tensorType({C, W}), tensorType({C}));
  std::vector<Array> results = run(source, {x, w, bias});
  ASSERT_EQ(results.size(), 2u);
  Array causal({B, L, C}), anti({B, L, C});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < L; ++i) {
        causal.data[(b * L + i) * C + c] = bias.data[c];
        anti.data[(b * L + i) * C + c] = bias.data[c];
        for (int64_t j = 0; j < L; ++j) {
          // T[i, j] = w[W-1-(i-j)] for 0 <= i-j < W; the reverse is Tᵀ.
          if (i - j >= 0 && i - j < W)
            causal.data[(b * L + i) * C + c] +=
                w.data[c * W + W - 1 - (i - j)] * x.data[(b * L + j) * C + c];
          if (j - i >= 0 && j - i < W)
            anti.data[(b * L + i) * C + c] +=
                w.data[c * W + W - 1 - (j - i)] * x.data[(b * L + j) * C + c];
        }
      }
  EXPECT_LT(relativeError(results[0], causal), 1e-13);
  EXPECT_LT(relativeError(results[1], anti), 1e-13);
}

TEST_F(ReferenceTest, WindowedGroupedAttention) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const int64_t B = 1, L = 10, H = 4, G = 2, D = 3, E = 2, W = 4;
  Array q = random({B, L, H, D}, -3, 3), k = random({B, L, G, D}, -3, 3),
        v = random({B, L, G, E});
  std::string source = llvm::formatv(
      "func.func @f(%q: {0}, %k: {1}, %v: {2}) -> {3} {{\n"
      "  %o = glint.attention %q, %k, %v scale 0.7 window {4} : ({0}, {1}, "
      "{2}) -> {3}\n  return %o : {3}\n}",
      tensorType({B, L, H, D}), tensorType({B, L, G, D}),
      tensorType({B, L, G, E}), tensorType({B, L, H, E}), W);
  std::vector<Array> results = run(source, {q, k, v});
  ASSERT_EQ(results.size(), 1u);
  Array expected({B, L, H, E});
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < L; ++i) {
      // Unnormalised exponentials of the visible scores, then normalise.
      double total = 0.0;
      std::vector<double> p(L, 0.0);
      for (int64_t j = 0; j <= i; ++j) {
        if (i - j >= W)
          continue;
        double s = 0.0;
        for (int64_t d = 0; d < D; ++d)
          s += at4(q, 0, i, h, d) * at4(k, 0, j, h / 2, d);
        p[j] = std::exp(0.7 * s);
        total += p[j];
      }
      for (int64_t j = 0; j < L; ++j)
        for (int64_t e = 0; e < E; ++e)
          at4(expected, 0, i, h, e) += p[j] / total * at4(v, 0, j, h / 2, e);
    }
  EXPECT_LT(relativeError(results[0], expected), 1e-13);
}

/// A sequence split into pieces, each continuing from the previous piece's
/// key/value cache and position, gives the attention of the whole sequence:
/// the empty cache at position 0 is masked, early pieces see a partly filled
/// cache, later ones a full one.
TEST_F(ReferenceTest, AttentionCacheContinuesTheSequence) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const int64_t B = 2, L = 11, H = 4, G = 2, D = 3, E = 2, W = 4;
  Array q = random({B, L, H, D}, -3, 3), k = random({B, L, G, D}, -3, 3),
        v = random({B, L, G, E});
  std::string whole = llvm::formatv(
      "func.func @f(%q: {0}, %k: {1}, %v: {2}) -> {3} {{\n"
      "  %o = glint.attention %q, %k, %v scale 0.7 window {4} : ({0}, {1}, "
      "{2}) -> {3}\n  return %o : {3}\n}",
      tensorType({B, L, H, D}), tensorType({B, L, G, D}),
      tensorType({B, L, G, E}), tensorType({B, L, H, E}), W);
  std::vector<Array> expected = run(whole, {q, k, v});
  ASSERT_EQ(expected.size(), 1u);

  std::string kc = tensorType({B, W - 1, G, D}),
              vc = tensorType({B, W - 1, G, E});
  std::string piece = llvm::formatv(
      "func.func @f(%q: tensor<{0}x?x{1}x{2}xf64>, %k: "
      "tensor<{0}x?x{3}x{2}xf64>,"
      " %v: tensor<{0}x?x{3}x{4}xf64>, %kc: {5}, %vc: {6}, %p: index) -> "
      "(tensor<{0}x?x{1}x{4}xf64>, {5}, {6}) {{\n"
      "  %o, %kf, %vf = glint.attention %q, %k, %v scale 0.7 window {7} "
      "cache(%kc, %vc) position(%p) : (tensor<{0}x?x{1}x{2}xf64>, "
      "tensor<{0}x?x{3}x{2}xf64>, tensor<{0}x?x{3}x{4}xf64>, {5}, {6}, index) "
      "-> (tensor<{0}x?x{1}x{4}xf64>, {5}, {6})\n"
      "  return %o, %kf, %vf : tensor<{0}x?x{1}x{4}xf64>, {5}, {6}\n}",
      B, H, D, G, E, kc, vc, W);
  // Rows [from, from + n) of a [B, L, X, Y] array.
  auto rows = [](const Array &a, int64_t from, int64_t n) {
    Array out(ArrayRef<int64_t>{a.shape[0], n, a.shape[2], a.shape[3]});
    int64_t row = a.shape[2] * a.shape[3];
    for (int64_t b = 0; b < a.shape[0]; ++b)
      std::copy_n(a.data.begin() + (b * a.shape[1] + from) * row, n * row,
                  out.data.begin() + b * n * row);
    return out;
  };
  // Poisoned caches: rows before the sequence start must not be read.
  Array keys(ArrayRef<int64_t>{B, W - 1, G, D}, 1e3);
  Array values(ArrayRef<int64_t>{B, W - 1, G, E}, 1e3);
  Array actual(ArrayRef<int64_t>{B, L, H, E});
  int64_t position = 0;
  for (int64_t n : {1, 1, 3, 1, 5}) {
    std::vector<Array> out = run(
        piece, {rows(q, position, n), rows(k, position, n),
                rows(v, position, n), keys, values, Array::scalar(position)});
    ASSERT_EQ(out.size(), 3u);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t e = 0; e < E; ++e)
            at4(actual, b, position + t, h, e) = at4(out[0], b, t, h, e);
    keys = out[1];
    values = out[2];
    position += n;
  }
  ASSERT_EQ(position, L);
  EXPECT_LT(relativeError(actual, expected[0]), 1e-13);
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, TokenIdOutsideVocabularyIsAnError) {
  std::string source = R"mlir(
    ml_program.global private @"emb"(#ml_program.extern : tensor<8x2xf32>) : tensor<8x2xf32>
    func.func @f(%ids: tensor<?x?xi64>) -> tensor<?x?x2xf32> {
      %t = ml_program.global_load_const @"emb" : tensor<8x2xf32>
      %h = glint.embedding %ids, %t : (tensor<?x?xi64>, tensor<8x2xf32>) -> tensor<?x?x2xf32>
      return %h : tensor<?x?x2xf32>
    })mlir";
  WeightProvider weights = [&](StringRef, ArrayRef<int64_t> shape) {
    return Expected<Array>(random(shape));
  };
  Array ids(ArrayRef<int64_t>{1, 3});
  ids.data = {1, 8, 2};
  std::string error = runError(source, {ids}, weights);
  EXPECT_NE(error.find("'glint.embedding' op: token id 8 at [0, 1] is "
                       "outside the vocabulary [0, 8)"),
            std::string::npos)
      << error;
}

TEST_F(ReferenceTest, WeightErrorsNameTheWeight) {
  std::string source = R"mlir(
    ml_program.global private @"layer.w"(#ml_program.extern : tensor<3x2xf32>) : tensor<3x2xf32>
    func.func @f(%x: tensor<?x2xf32>) -> tensor<?x3xf32> {
      %w = ml_program.global_load_const @"layer.w" : tensor<3x2xf32>
      %y = glint.linear %x, %w : (tensor<?x2xf32>, tensor<3x2xf32>) -> tensor<?x3xf32>
      return %y : tensor<?x3xf32>
    })mlir";
  Array x = random({4, 2});
  // Missing.
  std::string missing = runError(source, {x});
  EXPECT_NE(missing.find("no weight layer.w"), std::string::npos) << missing;
  // Mis-shaped.
  std::string shaped = runError(source, {x}, [&](StringRef, ArrayRef<int64_t>) {
    return Expected<Array>(random({2, 3}));
  });
  EXPECT_NE(shaped.find("weight 'layer.w' has shape [2, 3] but the IR "
                        "declares [3, 2]"),
            std::string::npos)
      << shaped;
  // Holding NaN.
  std::string nan = runError(source, {x}, [&](StringRef, ArrayRef<int64_t> s) {
    Array a = random(s);
    a.data[4] = std::nan("");
    return Expected<Array>(a);
  });
  EXPECT_NE(nan.find("weight 'layer.w' holds a non-finite value (nan) at "
                     "flat index 4"),
            std::string::npos)
      << nan;
}

TEST_F(ReferenceTest, RunTimeShapeMismatchAndNaNInputsAreErrors) {
  std::string source = R"mlir(
    func.func @f(%a: tensor<?x?xf64>, %b: tensor<?x?xf64>) -> tensor<?x?xf64> {
      %c = arith.addf %a, %b : tensor<?x?xf64>
      return %c : tensor<?x?xf64>
    })mlir";
  std::string mismatch = runError(source, {random({2, 3}), random({2, 4})});
  EXPECT_NE(mismatch.find("'arith.addf' op: operands have different run-time "
                          "shapes [2, 3] and [2, 4]"),
            std::string::npos)
      << mismatch;
  Array withNaN = random({2, 3});
  withNaN.data[2] = std::nan("");
  std::string nan = runError(source, {withNaN, random({2, 3})});
  EXPECT_NE(nan.find("argument #0 holds NaN"), std::string::npos) << nan;
  std::string rank = runError(source, {random({2, 3, 1}), random({2, 3})});
  EXPECT_NE(rank.find("argument #0 has run-time shape [2, 3, 1] but the IR "
                      "declares [?, ?]"),
            std::string::npos)
      << rank;
}

TEST_F(ReferenceTest, NaNProducedInsideIsLocated) {
  std::string source = R"mlir(
    func.func @f(%a: tensor<3xf64>) -> tensor<3xf64> {
      %s = math.sqrt %a : tensor<3xf64> loc("model.mlir":7:12)
      return %s : tensor<3xf64>
    })mlir";
  Array a(ArrayRef<int64_t>{3});
  a.data = {1.0, -4.0, 9.0};
  std::string error = runError(source, {a});
  EXPECT_NE(error.find("model.mlir:7:12: "), std::string::npos) << error;
  EXPECT_NE(error.find("'math.sqrt' op: produced NaN from inputs without NaN"),
            std::string::npos)
      << error;
}

//===----------------------------------------------------------------------===//
// Whole example models: every op they use is supported, batches are
// independent, and causal models are causal
//===----------------------------------------------------------------------===//

class ExampleModels : public ReferenceTest,
                      public ::testing::WithParamInterface<const char *> {};

TEST_P(ExampleModels, RunsBatchIndependentAndCausal) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::string path =
      std::string(GLINT_SOURCE_DIR) + "/examples/" + GetParam() + ".mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << path;
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>((*buffer)->getBuffer(), ParserConfig(&context));
  ASSERT_TRUE(module);
  // Weights: uniform in [-0.3, 0.3], the same array each time a name is
  // asked for.
  WeightProvider weights =
      mlir::glint::testing::randomWeights(rng, -0.3, 0.3);
  ReferenceEvaluator evaluator(*module, weights);
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(fn);
  auto inputType = cast<RankedTensorType>(fn.getArgumentTypes()[0]);
  bool image = inputType.getRank() == 4;
  const int64_t L = 7;
  Array input;
  if (image) {
    input = random({2, inputType.getDimSize(1), inputType.getDimSize(2),
                    inputType.getDimSize(3)});
  } else {
    input = Array(ArrayRef<int64_t>{2, L});
    std::uniform_int_distribution<int> id(0, 63);
    for (double &x : input.data)
      x = id(rng);
  }
  auto both = evaluator.run("forward", {input});
  ASSERT_TRUE(bool(both)) << llvm::toString(both.takeError());
  const Array &out = (*both)[0];
  EXPECT_EQ(out.shape[0], 2);
  // Batch independence: the second row alone gives the same output.
  Array second = input;
  second.shape[0] = 1;
  second.data.erase(second.data.begin(),
                    second.data.begin() + input.numElements() / 2);
  auto alone = evaluator.run("forward", {second});
  ASSERT_TRUE(bool(alone)) << llvm::toString(alone.takeError());
  Array outSecond = out;
  outSecond.shape[0] = 1;
  outSecond.data.erase(outSecond.data.begin(),
                       outSecond.data.begin() + out.numElements() / 2);
  EXPECT_LT(relativeError((*alone)[0], outSecond), 1e-13);
  if (image)
    return;
  // Causality: changing the last token changes no earlier position.
  Array changed = input;
  changed.data[L - 1] = static_cast<int>(changed.data[L - 1] + 1) % 64;
  auto after = evaluator.run("forward", {changed});
  ASSERT_TRUE(bool(after)) << llvm::toString(after.takeError());
  int64_t perPosition = out.numElements() / (2 * L);
  for (int64_t i = 0; i < (L - 1) * perPosition; ++i)
    ASSERT_EQ((*after)[0].data[i], out.data[i]) << "element " << i;
  double lastDiff = 0.0;
  for (int64_t i = (L - 1) * perPosition; i < L * perPosition; ++i)
    lastDiff += std::fabs((*after)[0].data[i] - out.data[i]);
  EXPECT_GT(lastDiff, 0.0);
}

/// A run reports 0 of N before the first op of the called function's body
/// and each op after it (the ops inside a mixer are not counted apart), and
/// reporting changes nothing in the results.
TEST_F(ReferenceTest, ProgressCountsTheFunctionsOps) {
  std::string path = std::string(GLINT_SOURCE_DIR) + "/examples/mamba1.mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << path;
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      (*buffer)->getBuffer(), ParserConfig(&context));
  ASSERT_TRUE(module);
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(fn);
  uint64_t ops = fn.getBody().front().getOperations().size() - 1;
  ASSERT_GT(ops, 3u);
  WeightProvider weights = mlir::glint::testing::randomWeights(rng, -0.3, 0.3);
  Array input(ArrayRef<int64_t>{1, 5});
  for (auto [i, x] : llvm::enumerate(input.data))
    x = double(i * 7 % 64);
  ReferenceEvaluator evaluator(*module, weights);
  auto quiet = evaluator.run("forward", {input});
  ASSERT_TRUE(bool(quiet)) << llvm::toString(quiet.takeError());

  std::vector<std::pair<uint64_t, uint64_t>> calls;
  evaluator.setProgress([&](uint64_t done, uint64_t total) {
    calls.push_back({done, total});
  });
  auto reported = evaluator.run("forward", {input});
  ASSERT_TRUE(bool(reported)) << llvm::toString(reported.takeError());
  ASSERT_EQ(calls.size(), ops + 1);
  for (uint64_t i = 0; i <= ops; ++i)
    EXPECT_EQ(calls[i], std::make_pair(i, ops));
  EXPECT_EQ((*reported)[0].data, (*quiet)[0].data);

  // A failed run stops reporting where it failed.
  calls.clear();
  input.data[0] = 1000; // outside the vocabulary: the embedding fails
  EXPECT_FALSE(bool(evaluator.run("forward", {input})));
  ASSERT_FALSE(calls.empty());
  EXPECT_LT(calls.back().first, ops);
}

INSTANTIATE_TEST_SUITE_P(All, ExampleModels,
                         ::testing::Values("mamba1", "vim_bidirectional",
                                           "mamba2", "rwkv4", "rwkv6",
                                           "griffin", "gla", "retnet",
                                           "hgrn2"));

} // namespace

namespace {
//===----------------------------------------------------------------------===//
// Structured ops and loops (what lowered IR is made of)
//===----------------------------------------------------------------------===//

TEST_F(ReferenceTest, StructuredOpsAndLoops) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  // y1 = a @ b (linalg.matmul); y2[i, j] = i >= j ? a[i, j] : -a[i, j]
  // (generic with linalg.index, cmpi, select); y3 = sum over rows of a with
  // scf.for; y4 = rows of a doubled by an scf.forall.
  std::string source = R"mlir(
    func.func @f(%a: tensor<3x4xf64>, %b: tensor<4x2xf64>)
        -> (tensor<3x2xf64>, tensor<3x4xf64>, tensor<4xf64>, tensor<3x4xf64>) {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c3 = arith.constant 3 : index
      %zero = arith.constant 0.0 : f64
      %e = tensor.empty() : tensor<3x2xf64>
      %z = linalg.fill ins(%zero : f64) outs(%e : tensor<3x2xf64>) -> tensor<3x2xf64>
      %y1 = linalg.matmul ins(%a, %b : tensor<3x4xf64>, tensor<4x2xf64>) outs(%z : tensor<3x2xf64>) -> tensor<3x2xf64>
      %e2 = tensor.empty() : tensor<3x4xf64>
      %y2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                            iterator_types = ["parallel", "parallel"]}
          ins(%a : tensor<3x4xf64>) outs(%e2 : tensor<3x4xf64>) {
      ^bb0(%x: f64, %o: f64):
        %i = linalg.index 0 : index
        %j = linalg.index 1 : index
        %ge = arith.cmpi sge, %i, %j : index
        %n = arith.negf %x : f64
        %r = arith.select %ge, %x, %n : f64
        linalg.yield %r : f64
      } -> tensor<3x4xf64>
      %e3 = tensor.empty() : tensor<4xf64>
      %init = linalg.fill ins(%zero : f64) outs(%e3 : tensor<4xf64>) -> tensor<4xf64>
      %y3 = scf.for %i = %c0 to %c3 step %c1 iter_args(%acc = %init) -> (tensor<4xf64>) {
        %row = tensor.extract_slice %a[%i, 0] [1, 4] [1, 1] : tensor<3x4xf64> to tensor<4xf64>
        %s = arith.addf %acc, %row : tensor<4xf64>
        scf.yield %s : tensor<4xf64>
      }
      %y4 = scf.forall (%i) in (3) shared_outs(%o = %e2) -> (tensor<3x4xf64>) {
        %row = tensor.extract_slice %a[%i, 0] [1, 4] [1, 1] : tensor<3x4xf64> to tensor<1x4xf64>
        %d = arith.addf %row, %row : tensor<1x4xf64>
        scf.forall.in_parallel {
          tensor.parallel_insert_slice %d into %o[%i, 0] [1, 4] [1, 1] : tensor<1x4xf64> into tensor<3x4xf64>
        }
      }
      return %y1, %y2, %y3, %y4 : tensor<3x2xf64>, tensor<3x4xf64>, tensor<4xf64>, tensor<3x4xf64>
    })mlir";
  Array a = random({3, 4}), b = random({4, 2});
  std::vector<Array> r = run(source, {a, b});
  ASSERT_EQ(r.size(), 4u);
  Array y1(ArrayRef<int64_t>{3, 2}), y2(ArrayRef<int64_t>{3, 4}),
      y3(ArrayRef<int64_t>{4}), y4(ArrayRef<int64_t>{3, 4});
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) {
      double x = a.data[i * 4 + j];
      for (int k = 0; k < 2; ++k)
        y1.data[i * 2 + k] += x * b.data[j * 2 + k];
      y2.data[i * 4 + j] = i >= j ? x : -x;
      y3.data[j] += x;
      y4.data[i * 4 + j] = 2 * x;
    }
  EXPECT_LT(relativeError(r[0], y1), 1e-14);
  EXPECT_LT(relativeError(r[1], y2), 1e-15);
  EXPECT_LT(relativeError(r[2], y3), 1e-15);
  EXPECT_LT(relativeError(r[3], y4), 1e-15);
}
} // namespace
