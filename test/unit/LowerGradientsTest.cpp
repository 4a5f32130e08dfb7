//===- LowerGradientsTest.cpp - glint-lower-gradients vs the evaluator ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The backward scan and softmax backward that glint-lower-gradients emits
// must compute what `glint.recurrence_grad` and `glint.attention_grad`
// mean. The reference evaluator runs both the op (its O(L²) closed form, in
// double) and the lowered loops (also in double) on fresh random inputs;
// every result must agree to 1e-10 relative error. The evaluator poisons
// tensor.empty with NaN and rejects non-finite results, so a cotangent the
// loops forget to write fails. Chunks of 4 steps over sequences of 11 make
// the backward scan restart from several checkpoints, the last chunk short.
//
//===----------------------------------------------------------------------===//

#include "reference/ReferenceEvaluator.h"

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace mlir;
using namespace mlir::glint::reference;
using mlir::glint::testing::relativeError;

namespace {

/// The lowered form and the op sum in different orders, so their double
/// results differ by rounding: at most kTolerance (relative) on well
/// conditioned inputs, and at most kAmplification times the result's
/// sensitivity to a relative change of 2^-52 in every input, measured on
/// the op (RWKV-4's ratio form with keys in [-30, 60] puts one term far
/// above the others, and the gradients cancel: over 300 seeds of these
/// cases the difference reached 2·10^4 times that sensitivity and 5.6e-8
/// relative, while a wrong lowering differs by far more).
constexpr double kTolerance = 1e-10;
constexpr double kAmplification = 1e6;

enum Feature : unsigned {
  Query = 1u << 0,
  Delta = 1u << 1,
  Bonus = 1u << 2,
  Skip = 1u << 3,
  Reverse = 1u << 4,
  Normalize = 1u << 5,
  /// Batch and sequence length are `?` in the IR.
  DynamicSizes = 1u << 6,
  /// Heads and key groups are `?` too.
  DynamicHeads = 1u << 7,
};

struct GradCase {
  std::string name;
  int64_t batch, len, heads, groups, key, value;
  /// 1: [H], 2: [H, K], 3: [B, L, H], 4: [B, L, H, K].
  int decayRank;
  unsigned features;
  int64_t chunk = 4;
  bool has(Feature f) const { return (features & f) != 0; }
};

void PrintTo(const GradCase &c, std::ostream *os) { *os << c.name; }

class LowerGradientsTest : public ::testing::Test {
protected:
  LowerGradientsTest()
      : seed(mlir::glint::testing::testSeed()), rng(seed),
        trace(__FILE__, __LINE__, "seed " + std::to_string(seed)) {
    context.loadDialect<glint::GlintDialect, arith::ArithDialect,
                        func::FuncDialect, linalg::LinalgDialect,
                        math::MathDialect, scf::SCFDialect,
                        tensor::TensorDialect>();
  }

  Array random(ArrayRef<int64_t> shape, double lo, double hi) {
    return mlir::glint::testing::randomArray(rng, shape, lo, hi);
  }

  /// Lowers a copy of `module` with glint-lower-gradients, compares every
  /// result of @f with the op's on `inputs`.
  void check(ModuleOp module, ArrayRef<Array> inputs, int64_t chunk) {
    OwningOpRef<ModuleOp> lowered = module.clone();
    PassManager pm(&context);
    glint::GlintLowerGradientsOptions options;
    options.chunkSize = chunk;
    pm.addNestedPass<func::FuncOp>(glint::createGlintLowerGradients(options));
    std::string diagnostics;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return success();
    });
    ASSERT_TRUE(succeeded(pm.run(*lowered))) << diagnostics;
    int64_t left = 0;
    lowered->walk([&](Operation *op) {
      left += isa<glint::RecurrenceGradOp, glint::AttentionGradOp>(op);
    });
    EXPECT_EQ(left, 0);
    ReferenceEvaluator expectedEvaluator(module, noWeights());
    ReferenceEvaluator actualEvaluator(*lowered, noWeights());
    auto expected = expectedEvaluator.run("f", inputs);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    auto actual = actualEvaluator.run("f", inputs);
    ASSERT_TRUE(bool(actual)) << llvm::toString(actual.takeError());
    ASSERT_EQ(actual->size(), expected->size());
    // The op's results on inputs moved by a relative 2^-40 each, scaled to
    // a move of 2^-52: each result's sensitivity to rounding its inputs.
    const double delta = std::ldexp(1.0, -40);
    std::vector<Array> moved(inputs.begin(), inputs.end());
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    for (Array &a : moved)
      for (double &x : a.data)
        x *= 1.0 + delta * unit(rng);
    auto perturbed = expectedEvaluator.run("f", moved);
    ASSERT_TRUE(bool(perturbed)) << llvm::toString(perturbed.takeError());
    for (size_t i = 0; i < expected->size(); ++i) {
      // A cotangent that is zero by definition (dq of the ratio form) must
      // stay zero.
      double norm = 0.0;
      for (double x : (*expected)[i].data)
        norm += x * x;
      if (norm == 0.0) {
        for (double x : (*actual)[i].data)
          EXPECT_EQ(x, 0.0) << "result #" << i;
        continue;
      }
      double sensitivity = relativeError((*perturbed)[i], (*expected)[i]) *
                           std::ldexp(1.0, -52) / delta;
      EXPECT_LE(relativeError((*actual)[i], (*expected)[i]),
                std::max(kTolerance, kAmplification * sensitivity))
          << "result #" << i << " (sensitivity " << sensitivity << ")";
    }
  }

  MLIRContext context;
  /// The inputs' seed, printed with every failure (GLINT_TEST_SEED replays
  /// it).
  uint64_t seed;
  std::mt19937_64 rng;
  ::testing::ScopedTrace trace;
};

//===----------------------------------------------------------------------===//
// glint.recurrence_grad
//===----------------------------------------------------------------------===//

class RecurrenceGradCases : public LowerGradientsTest,
                            public ::testing::WithParamInterface<GradCase> {
protected:
  std::string typeOf(const GradCase &c, StringRef axes) {
    std::string s = "tensor<";
    for (char a : axes) {
      int64_t size = a == 'B'   ? c.batch
                     : a == 'L' ? c.len
                     : a == 'H' ? c.heads
                     : a == 'G' ? c.groups
                     : a == 'K' ? c.key
                                : c.value;
      bool dynamic = ((a == 'B' || a == 'L') && c.has(DynamicSizes)) ||
                     ((a == 'H' || a == 'G') && c.has(DynamicHeads));
      s += (dynamic ? std::string("?") : std::to_string(size)) + "x";
    }
    return s + "f32>";
  }
  SmallVector<int64_t> shapeOf(const GradCase &c, StringRef axes) {
    SmallVector<int64_t> shape;
    for (char a : axes)
      shape.push_back(a == 'B'   ? c.batch
                      : a == 'L' ? c.len
                      : a == 'H' ? c.heads
                      : a == 'G' ? c.groups
                      : a == 'K' ? c.key
                                 : c.value);
    return shape;
  }
};

TEST_P(RecurrenceGradCases, LoweringMatchesOp) {
  const GradCase &c = GetParam();
  bool normalize = c.has(Normalize);
  std::string args, operands, types;
  std::vector<Array> inputs;
  auto add = [&](StringRef name, StringRef role, StringRef axes, double lo,
                 double hi) {
    std::string type = typeOf(c, axes);
    args += (args.empty() ? "" : ", ") + ("%" + name + ": ").str() + type;
    operands += (role + "(%" + name + ") ").str();
    types += (types.empty() ? "" : ", ") + type;
    inputs.push_back(random(shapeOf(c, axes), lo, hi));
  };
  if (c.has(Query))
    add("q", "q", "BLGK", -1.0, 1.0);
  add("k", "k", "BLGK", normalize ? -30.0 : -1.0, normalize ? 60.0 : 1.0);
  add("v", "v", "BLHV", -1.0, 1.0);
  static const char *decayAxes[] = {"H", "HK", "BLH", "BLHK"};
  std::string decay = decayAxes[c.decayRank - 1];
  add("g", "log_decay", decay, -1.0, -0.01);
  if (c.has(Delta))
    add("dt", "delta", "BLH", 0.05, 1.0);
  if (c.has(Bonus))
    add("u", "bonus", "HK", -1.0, normalize ? 3.0 : 1.0);
  if (c.has(Skip))
    add("d", "skip", "H", -1.0, 1.0);
  add("dy", "grad", "BLHV", -1.0, 1.0);
  std::string results =
      llvm::formatv("{0}, {0}, {1}, {2}, {3}", typeOf(c, "BLGK"),
                    typeOf(c, "BLHV"), typeOf(c, decay),
                    c.has(Delta) ? typeOf(c, "BLH") : typeOf(c, "BLH"))
          .str();
  std::string source =
      llvm::formatv("func.func @f({0}) -> ({1}) {{\n"
                    "  %r:5 = glint.recurrence_grad {2}{3}{4}: ({5}) -> ({1})\n"
                    "  return %r#0, %r#1, %r#2, %r#3, %r#4 : {1}\n}",
                    args, results, c.has(Reverse) ? "reverse " : "",
                    normalize ? "normalize " : "", operands, types)
          .str();
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, ParserConfig(&context));
  ASSERT_TRUE(module) << source;
  check(*module, inputs, c.chunk);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, RecurrenceGradCases,
    ::testing::Values(
        // name, B, L, H, G, K, V, decay rank, features
        GradCase{"mamba1", 2, 11, 3, 1, 4, 1, 2, Query | Delta | Skip},
        GradCase{"mamba1_reverse", 1, 11, 3, 1, 4, 1, 2,
                 Query | Delta | Skip | Reverse},
        GradCase{"mamba2", 2, 11, 4, 1, 3, 2, 1, Query | Delta | Skip},
        GradCase{"gla_grouped", 1, 11, 4, 2, 3, 2, 4, Query},
        GradCase{"rwkv6", 2, 11, 2, 2, 3, 3, 4, Query | Bonus},
        GradCase{"rwkv6_reverse_delta", 1, 11, 2, 2, 3, 2, 2,
                 Query | Bonus | Delta | Reverse},
        GradCase{"retnet_grouped", 2, 11, 4, 2, 2, 3, 1, Query},
        GradCase{"rglru_no_query", 2, 11, 3, 3, 1, 1, 3, Skip},
        GradCase{"per_head_delta", 1, 11, 2, 1, 2, 2, 1,
                 Query | Delta | Bonus | Skip},
        GradCase{"per_head_data", 1, 11, 2, 2, 2, 2, 3, Query | Reverse},
        GradCase{"rwkv4", 2, 11, 3, 3, 1, 1, 1, Normalize | Bonus},
        GradCase{"rwkv4_values", 1, 11, 2, 2, 1, 3, 2,
                 Normalize | Bonus | Skip | Reverse},
        GradCase{"ratio_no_bonus", 2, 11, 2, 1, 1, 2, 3, Normalize},
        GradCase{"ratio_per_key", 1, 11, 2, 2, 1, 2, 4, Normalize | Bonus},
        GradCase{"dynamic", 2, 11, 4, 2, 2, 2, 2,
                 Query | Delta | Skip | DynamicSizes | DynamicHeads},
        GradCase{"one_chunk", 1, 11, 2, 1, 2, 2, 4, Query | Bonus, 64},
        GradCase{"exact_chunks", 1, 12, 2, 1, 2, 2, 1, Query | Skip, 3}),
    [](const ::testing::TestParamInfo<GradCase> &info) {
      return info.param.name;
    });

//===----------------------------------------------------------------------===//
// glint.attention_grad
//===----------------------------------------------------------------------===//

using AttentionCase = mlir::glint::testing::AttentionGradCase;

class AttentionGradCases : public LowerGradientsTest,
                           public ::testing::WithParamInterface<AttentionCase> {
};

TEST_P(AttentionGradCases, LoweringMatchesOp) {
  const AttentionCase &c = GetParam();
  auto [q, k, v, y] = c.types();
  std::string source =
      llvm::formatv(
          "func.func @f(%q: {0}, %k: {1}, %v: {2}, %dy: {3}) -> ({0}, {1}, "
          "{2}) {{\n"
          "  %r:3 = glint.attention_grad %q, %k, %v grad(%dy) scale 0.5{4} "
          ": ({0}, {1}, {2}, {3}) -> ({0}, {1}, {2})\n"
          "  return %r#0, %r#1, %r#2 : {0}, {1}, {2}\n}",
          q, k, v, y, c.windowSuffix())
          .str();
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, ParserConfig(&context));
  ASSERT_TRUE(module) << source;
  std::vector<Array> inputs = c.randomInputs(rng);
  check(*module, inputs, 4);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, AttentionGradCases,
    ::testing::Values(AttentionCase{"causal", 2, 9, 2, 2, 3, 4, 0},
                      AttentionCase{"grouped", 1, 9, 4, 2, 3, 2, 0},
                      AttentionCase{"windowed_grouped", 2, 9, 4, 1, 2, 3, 3}),
    [](const ::testing::TestParamInfo<AttentionCase> &info) {
      return info.param.name;
    });

} // namespace
