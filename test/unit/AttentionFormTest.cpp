//===- AttentionFormTest.cpp - glint-to-attention against the scan form ---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The attention form must compute the same function as the scan form:
// - every factor's matrix equals the impulse response of the op it came
//   from (run by the evaluator's ordinary, independent op code): column j
//   of A_c is the op's output for a unit impulse at token j of channel c;
// - for every example model (all nine families), `A·x + offset` replaces
//   each layer's output and the logits stay the same;
// - long sequences (L = 4096) stay exact and finite.
//
//===----------------------------------------------------------------------===//

#include "TestSupport.h"

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "passes/Passes.h"
#include "reference/ReferenceEvaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include "gtest/gtest.h"

#include <random>

using namespace mlir;
using namespace mlir::glint::reference;
using mlir::glint::testing::relativeError;
using llvm::Expected;

namespace {

class AttentionFormTest : public ::testing::Test {
protected:
  AttentionFormTest() : seed(std::random_device{}()), rng(seed) {
    static bool registered = [] {
      glint::registerGlintToAttention();
      return true;
    }();
    (void)registered;
    context.loadDialect<glint::GlintDialect, arith::ArithDialect,
                        func::FuncDialect, linalg::LinalgDialect,
                        math::MathDialect, ml_program::MLProgramDialect,
                        scf::SCFDialect, tensor::TensorDialect>();
  }

  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, ParserConfig(&context));
  }

  /// Runs glint-to-attention with `options` on `module` in place.
  LogicalResult toAttention(ModuleOp module, StringRef options) {
    PassManager pm(&context);
    std::string pipeline =
        ("func.func(glint-to-attention{" + options + "})").str();
    if (failed(parsePassPipeline(pipeline, pm)))
      return failure();
    return pm.run(module);
  }

  Array random(ArrayRef<int64_t> shape, double lo = -1.0, double hi = 1.0) {
    return mlir::glint::testing::randomArray(rng, shape, lo, hi);
  }

  std::vector<Array> run(ModuleOp module, StringRef fn, ArrayRef<Array> args,
                         WeightProvider weights = nullptr) {
    if (!weights)
      weights = noWeights();
    ReferenceEvaluator evaluator(module, weights);
    auto results = evaluator.run(fn, args);
    if (!results) {
      ADD_FAILURE() << llvm::toString(results.takeError());
      return {};
    }
    return *results;
  }

  /// Checks a one-op layer against its impulse responses. `source` defines
  /// @plain(%v, controls…) → the op's output [B, L, C] and @layer(%v,
  /// controls…) → the same through a glint.mixer whose value input is %v.
  /// `controls` are the arguments after %v.
  void checkImpulseResponses(StringRef source, ArrayRef<int64_t> valueShape,
                             std::vector<Array> controls,
                             double tolerance = 1e-12) {
    SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
    OwningOpRef<ModuleOp> module = parse(source);
    ASSERT_TRUE(module);
    OwningOpRef<ModuleOp> attention = module->clone();
    ASSERT_TRUE(succeeded(toAttention(*attention, "aggregate=full")));

    int64_t batch = valueShape[0], len = valueShape[1], in = valueShape[2];
    std::vector<Array> args = {random(valueShape)};
    llvm::append_range(args, controls);
    std::vector<Array> results = run(*attention, "layer", args);
    ASSERT_EQ(results.size(), 2u);
    const Array &map = results[1]; // [B, C, L, L]
    int64_t out = map.shape[1];
    ASSERT_EQ(map.shape, (SmallVector<int64_t, 4>{batch, out, len, len}));
    // The exact form reproduces the layer.
    std::vector<Array> plain = run(*module, "plain", args);
    ASSERT_EQ(plain.size(), 1u);
    EXPECT_LT(relativeError(results[0], plain[0]), tolerance);

    // Column j of A_{b,c}: the response to a unit impulse at token j. Each
    // output channel reads one input channel (the map's src; its product
    // with x was checked above), so an impulse on every input channel at
    // once yields column j of every output channel's matrix.
    double worst = 0.0, scale = 0.0;
    for (int64_t j = 0; j < len; ++j) {
      args[0] = Array(valueShape);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < in; ++c)
          args[0].data[(b * len + j) * in + c] = 1.0;
      std::vector<Array> response = run(*module, "plain", args);
      ASSERT_EQ(response.size(), 1u);
      const Array &y = response[0]; // [B, L, out]
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t oc = 0; oc < out; ++oc)
          for (int64_t i = 0; i < len; ++i) {
            double expected = y.data[(b * len + i) * out + oc];
            double got = map.data[((b * out + oc) * len + i) * len + j];
            scale = std::max(scale, std::fabs(expected));
            worst = std::max(worst, std::fabs(expected - got));
          }
    }
    EXPECT_GT(scale, 0.0);
    EXPECT_LT(worst / scale, tolerance);
  }

  MLIRContext context;
  unsigned seed;
  std::mt19937_64 rng;
};

} // namespace

//===----------------------------------------------------------------------===//
// Factors against the ops they come from
//===----------------------------------------------------------------------===//

TEST_F(AttentionFormTest, MambaScanIsItsImpulseResponse) {
  // One head per channel (V = 1), factored delta, skip D, B and C shared.
  const char *source = R"mlir(
func.func @plain(%v: tensor<2x9x3xf64>, %q: tensor<2x9x1x5xf64>, %k: tensor<2x9x1x5xf64>, %a: tensor<3x5xf64>, %dt: tensor<2x9x3xf64>, %d: tensor<3xf64>) -> tensor<2x9x3xf64> {
  %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [2, 9, 3, 1] : tensor<2x9x3xf64> into tensor<2x9x3x1xf64>
  %o = glint.recurrence q(%q) k(%k) v(%v4) log_decay(%a) delta(%dt) skip(%d) : (tensor<2x9x1x5xf64>, tensor<2x9x1x5xf64>, tensor<2x9x3x1xf64>, tensor<3x5xf64>, tensor<2x9x3xf64>, tensor<3xf64>) -> tensor<2x9x3x1xf64>
  %y = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<2x9x3x1xf64> into tensor<2x9x3xf64>
  return %y : tensor<2x9x3xf64>
}
func.func @layer(%v: tensor<2x9x3xf64>, %q: tensor<2x9x1x5xf64>, %k: tensor<2x9x1x5xf64>, %a: tensor<3x5xf64>, %dt: tensor<2x9x3xf64>, %d: tensor<3xf64>) -> tensor<2x9x3xf64> {
  %r = glint.mixer label "scan" (%v) : tensor<2x9x3xf64> -> tensor<2x9x3xf64> {
  ^bb0(%x: tensor<2x9x3xf64>):
    %v4 = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [2, 9, 3, 1] : tensor<2x9x3xf64> into tensor<2x9x3x1xf64>
    %o = glint.recurrence q(%q) k(%k) v(%v4) log_decay(%a) delta(%dt) skip(%d) : (tensor<2x9x1x5xf64>, tensor<2x9x1x5xf64>, tensor<2x9x3x1xf64>, tensor<3x5xf64>, tensor<2x9x3xf64>, tensor<3xf64>) -> tensor<2x9x3x1xf64>
    %y = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<2x9x3x1xf64> into tensor<2x9x3xf64>
    glint.yield %y : tensor<2x9x3xf64>
  }
  return %r : tensor<2x9x3xf64>
}
)mlir";
  checkImpulseResponses(source, {2, 9, 3},
                        {random({2, 9, 1, 5}), random({2, 9, 1, 5}),
                         random({3, 5}, -2.0, -0.1), random({2, 9, 3}, 0.0, 1.0),
                         random({3})});
}

/// Builds the two functions for a recurrence over [B, L, H, V] values with
/// the given operand clause and control argument list.
static std::string recurrenceSource(int64_t b, int64_t l, int64_t h,
                                    int64_t v, StringRef controlArgs,
                                    StringRef clause, StringRef controlTypes,
                                    StringRef attrs) {
  std::string flat = llvm::formatv("tensor<{0}x{1}x{2}xf64>", b, l, h * v);
  std::string four = llvm::formatv("tensor<{0}x{1}x{2}x{3}xf64>", b, l, h, v);
  std::string body = llvm::formatv(
      R"mlir(    %v4 = tensor.expand_shape %IN [[0], [1], [2, 3]] output_shape [{0}, {1}, {2}, {3}] : {4} into {5}
    %o = glint.recurrence {6} {7} : ({8}) -> {5}
    %y = tensor.collapse_shape %o [[0], [1], [2, 3]] : {5} into {4})mlir",
      b, l, h, v, flat, four, attrs, clause, controlTypes);
  auto with = [&](StringRef in) {
    std::string s = body;
    size_t at;
    while ((at = s.find("%IN")) != std::string::npos)
      s.replace(at, 3, in.str());
    return s;
  };
  return llvm::formatv(R"mlir(
func.func @plain(%v: {0}{1}) -> {0} {{
{2}
  return %y : {0}
}
func.func @layer(%v: {0}{1}) -> {0} {{
  %r = glint.mixer label "scan" (%v) : {0} -> {0} {{
  ^bb0(%x: {0}):
{3}
    glint.yield %y : {0}
  }
  return %r : {0}
}
)mlir",
                       flat, controlArgs, with("%v"), with("%x"))
      .str();
}

TEST_F(AttentionFormTest, Rwkv6ScanWithBonusIsItsImpulseResponse) {
  // Matrix state, per-key data-dependent decay, bonus u, 2 heads of 3.
  std::string source = recurrenceSource(
      2, 8, 2, 3,
      ", %q: tensor<2x8x2x4xf64>, %k: tensor<2x8x2x4xf64>, %w: "
      "tensor<2x8x2x4xf64>, %u: tensor<2x4xf64>",
      "q(%q) k(%k) v(%v4) log_decay(%w) bonus(%u)",
      "tensor<2x8x2x4xf64>, tensor<2x8x2x4xf64>, tensor<2x8x2x3xf64>, "
      "tensor<2x8x2x4xf64>, tensor<2x4xf64>",
      "");
  checkImpulseResponses(source, {2, 8, 6},
                        {random({2, 8, 2, 4}), random({2, 8, 2, 4}),
                         random({2, 8, 2, 4}, -1.5, -0.01), random({2, 4})});
}

TEST_F(AttentionFormTest, Mamba2GroupedReverseScanIsItsImpulseResponse) {
  // 4 heads of 2 sharing 2 key groups, per-head decay with delta, skip,
  // run backwards (a bidirectional branch).
  std::string source = recurrenceSource(
      1, 7, 4, 2,
      ", %q: tensor<1x7x2x3xf64>, %k: tensor<1x7x2x3xf64>, %a: "
      "tensor<4xf64>, %dt: tensor<1x7x4xf64>, %d: tensor<4xf64>",
      "q(%q) k(%k) v(%v4) log_decay(%a) delta(%dt) skip(%d)",
      "tensor<1x7x2x3xf64>, tensor<1x7x2x3xf64>, tensor<1x7x4x2xf64>, "
      "tensor<4xf64>, tensor<1x7x4xf64>, tensor<4xf64>",
      "reverse");
  checkImpulseResponses(source, {1, 7, 8},
                        {random({1, 7, 2, 3}), random({1, 7, 2, 3}),
                         random({4}, -2.0, -0.1), random({1, 7, 4}, 0.0, 1.0),
                         random({4})});
}

TEST_F(AttentionFormTest, Rwkv4NormalisedScanIsItsImpulseResponse) {
  // K = 1 ratio form with bonus: each row is a softmax over log-weights.
  std::string source = recurrenceSource(
      2, 9, 4, 1,
      ", %k: tensor<2x9x4x1xf64>, %w: tensor<4xf64>, %u: tensor<4x1xf64>",
      "k(%k) v(%v4) log_decay(%w) bonus(%u)",
      "tensor<2x9x4x1xf64>, tensor<2x9x4x1xf64>, tensor<4xf64>, "
      "tensor<4x1xf64>",
      "normalize");
  checkImpulseResponses(source, {2, 9, 4},
                        {random({2, 9, 4, 1}, -3.0, 3.0),
                         random({4}, -1.0, -0.05), random({4, 1})});
}

TEST_F(AttentionFormTest, RgLruScanWithoutQueryIsItsImpulseResponse) {
  // Griffin: K = V = 1, no query, data-dependent per-head decay.
  std::string source = recurrenceSource(
      2, 10, 5, 1, ", %k: tensor<2x10x5x1xf64>, %g: tensor<2x10x5xf64>",
      "k(%k) v(%v4) log_decay(%g)",
      "tensor<2x10x5x1xf64>, tensor<2x10x5x1xf64>, tensor<2x10x5xf64>", "");
  checkImpulseResponses(source, {2, 10, 5},
                        {random({2, 10, 5, 1}), random({2, 10, 5}, -2.0, 0.0)});
}

TEST_F(AttentionFormTest, ConvShiftGateAndActivationAreTheirImpulseResponses) {
  // A short chain: conv (with bias → offset), SiLU diagonal, token shift,
  // reverse conv, gate, RMSNorm diagonal. The full chain is not linear in
  // %v (SiLU and the norm read it), so the impulse check uses a chain whose
  // controls are arguments: the conv pair, shift and gate.
  const char *source = R"mlir(
func.func @plain(%v: tensor<2x8x3xf64>, %w: tensor<3x4xf64>, %wb: tensor<3x2xf64>, %g: tensor<2x8x3xf64>) -> tensor<2x8x3xf64> {
  %c = glint.conv1d %v, %w : (tensor<2x8x3xf64>, tensor<3x4xf64>) -> tensor<2x8x3xf64>
  %s = glint.token_shift %c : (tensor<2x8x3xf64>) -> tensor<2x8x3xf64>
  %r = glint.conv1d reverse %s, %wb : (tensor<2x8x3xf64>, tensor<3x2xf64>) -> tensor<2x8x3xf64>
  %y = arith.mulf %r, %g : tensor<2x8x3xf64>
  return %y : tensor<2x8x3xf64>
}
func.func @layer(%v: tensor<2x8x3xf64>, %w: tensor<3x4xf64>, %wb: tensor<3x2xf64>, %g: tensor<2x8x3xf64>) -> tensor<2x8x3xf64> {
  %out = glint.mixer label "conv" (%v) : tensor<2x8x3xf64> -> tensor<2x8x3xf64> {
  ^bb0(%x: tensor<2x8x3xf64>):
    %c = glint.conv1d %x, %w : (tensor<2x8x3xf64>, tensor<3x4xf64>) -> tensor<2x8x3xf64>
    %s = glint.token_shift %c : (tensor<2x8x3xf64>) -> tensor<2x8x3xf64>
    %r = glint.conv1d reverse %s, %wb : (tensor<2x8x3xf64>, tensor<3x2xf64>) -> tensor<2x8x3xf64>
    %y = arith.mulf %r, %g : tensor<2x8x3xf64>
    glint.yield %y : tensor<2x8x3xf64>
  }
  return %out : tensor<2x8x3xf64>
}
)mlir";
  checkImpulseResponses(source, {2, 8, 3},
                        {random({3, 4}), random({3, 2}), random({2, 8, 3})});
}

TEST_F(AttentionFormTest, GroupedSoftmaxAttentionIsItsImpulseResponse) {
  // 4 query heads over 2 key/value heads, window 3.
  const char *source = R"mlir(
func.func @plain(%v: tensor<1x9x4xf64>, %q: tensor<1x9x4x3xf64>, %k: tensor<1x9x2x3xf64>) -> tensor<1x9x8xf64> {
  %v4 = tensor.expand_shape %v [[0], [1], [2, 3]] output_shape [1, 9, 2, 2] : tensor<1x9x4xf64> into tensor<1x9x2x2xf64>
  %o = glint.attention %q, %k, %v4 scale 0.5 window 3 : (tensor<1x9x4x3xf64>, tensor<1x9x2x3xf64>, tensor<1x9x2x2xf64>) -> tensor<1x9x4x2xf64>
  %y = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<1x9x4x2xf64> into tensor<1x9x8xf64>
  return %y : tensor<1x9x8xf64>
}
func.func @layer(%v: tensor<1x9x4xf64>, %q: tensor<1x9x4x3xf64>, %k: tensor<1x9x2x3xf64>) -> tensor<1x9x8xf64> {
  %out = glint.mixer label "attn" (%v) : tensor<1x9x4xf64> -> tensor<1x9x8xf64> {
  ^bb0(%x: tensor<1x9x4xf64>):
    %v4 = tensor.expand_shape %x [[0], [1], [2, 3]] output_shape [1, 9, 2, 2] : tensor<1x9x4xf64> into tensor<1x9x2x2xf64>
    %o = glint.attention %q, %k, %v4 scale 0.5 window 3 : (tensor<1x9x4x3xf64>, tensor<1x9x2x3xf64>, tensor<1x9x2x2xf64>) -> tensor<1x9x4x2xf64>
    %y = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<1x9x4x2xf64> into tensor<1x9x8xf64>
    glint.yield %y : tensor<1x9x8xf64>
  }
  return %out : tensor<1x9x8xf64>
}
)mlir";
  checkImpulseResponses(source, {1, 9, 4},
                        {random({1, 9, 4, 3}), random({1, 9, 2, 3})});
}

//===----------------------------------------------------------------------===//
// Whole models: the attention form computes the same function
//===----------------------------------------------------------------------===//

class ExampleAttentionForm : public AttentionFormTest,
                             public ::testing::WithParamInterface<const char *> {
};

TEST_P(ExampleAttentionForm, UnifiedFormReproducesEveryLayer) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::string path =
      std::string(GLINT_SOURCE_DIR) + "/examples/" + GetParam() + ".mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << path;
  OwningOpRef<ModuleOp> module = parse((*buffer)->getBuffer());
  ASSERT_TRUE(module);
  WeightProvider weights =
      mlir::glint::testing::randomWeights(rng, -0.3, 0.3);
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(fn);
  auto inputType = cast<RankedTensorType>(fn.getArgumentTypes()[0]);
  Array input;
  int64_t len = 23;
  if (inputType.getRank() == 4) {
    input = random({2, inputType.getDimSize(1), inputType.getDimSize(2),
                    inputType.getDimSize(3)});
    len = 17; // 16 patches + the middle CLS token
  } else {
    input = Array(ArrayRef<int64_t>{2, len});
    std::uniform_int_distribution<int> id(0, 63);
    for (double &x : input.data)
      x = id(rng);
  }
  std::vector<Array> scan = run(*module, "forward", {input}, weights);
  ASSERT_EQ(scan.size(), 1u);

  for (StringRef formulation :
       {"unified", "scan-only", "no-conv", "no-gate", "no-act"}) {
    SCOPED_TRACE(formulation.str());
    OwningOpRef<ModuleOp> attention = module->clone();
    ASSERT_TRUE(succeeded(toAttention(
        *attention, ("formulation=" + formulation + " aggregate=mean").str())));
    auto rewritten = attention->lookupSymbol<func::FuncOp>("forward");
    auto labels =
        rewritten->getAttrOfType<ArrayAttr>("glint.attention_layers");
    ASSERT_TRUE(labels);
    ASSERT_GE(labels.size(), 1u);
    std::vector<Array> results = run(*attention, "forward", {input}, weights);
    ASSERT_EQ(results.size(), 1 + labels.size());
    // unified: every layer output is A·x + offset, so the logits are the
    // scan form's; the comparison formulations keep the layer outputs.
    EXPECT_LT(relativeError(results[0], scan[0]), 1e-10);
    for (size_t l = 1; l < results.size(); ++l) {
      EXPECT_EQ(results[l].shape,
                (SmallVector<int64_t, 4>{2, len, len}));
      double total = 0.0;
      for (double x : results[l].data)
        total += std::fabs(x);
      EXPECT_GT(total, 0.0) << "layer " << l << " has an all-zero map";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, ExampleAttentionForm,
                         ::testing::Values("mamba1", "vim_bidirectional",
                                           "mamba2", "rwkv4", "rwkv6",
                                           "griffin", "gla", "retnet",
                                           "hgrn2"));

TEST_F(AttentionFormTest, AggregatesRowsAndChannelsAgreeWithFullMaps) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::string path = std::string(GLINT_SOURCE_DIR) + "/examples/mamba1.mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer));
  OwningOpRef<ModuleOp> module = parse((*buffer)->getBuffer());
  ASSERT_TRUE(module);
  WeightProvider weights =
      mlir::glint::testing::randomWeights(rng, -0.3, 0.3);
  const int64_t len = 11;
  Array input(ArrayRef<int64_t>{1, len});
  for (double &x : input.data)
    x = std::uniform_int_distribution<int>(0, 63)(rng);
  auto mapsWith = [&](StringRef options) {
    OwningOpRef<ModuleOp> attention = module->clone();
    EXPECT_TRUE(succeeded(toAttention(*attention, options)));
    std::vector<Array> results = run(*attention, "forward", {input}, weights);
    EXPECT_EQ(results.size(), 2u);
    return results.size() == 2 ? results[1] : Array();
  };
  Array full = mapsWith("aggregate=full");
  ASSERT_EQ(full.shape, (SmallVector<int64_t, 4>{1, 64, len, len}));
  Array mean(ArrayRef<int64_t>{1, len, len}),
      meanAbs(ArrayRef<int64_t>{1, len, len});
  for (int64_t c = 0; c < 64; ++c)
    for (int64_t i = 0; i < len * len; ++i) {
      mean.data[i] += full.data[c * len * len + i] / 64.0;
      meanAbs.data[i] += std::fabs(full.data[c * len * len + i]) / 64.0;
    }
  EXPECT_LT(relativeError(mapsWith("aggregate=mean"), mean), 1e-14);
  EXPECT_LT(relativeError(mapsWith("aggregate=mean_abs"), meanAbs), 1e-14);
  // The last row, and a channel subset.
  Array row = mapsWith("aggregate=mean has-row=true row=-1");
  ASSERT_EQ(row.shape, (SmallVector<int64_t, 4>{1, len}));
  EXPECT_LT(relativeError(row.data, ArrayRef<double>(mean.data).take_back(len)),
            1e-14);
  Array subset = mapsWith("aggregate=full channels=5,17");
  ASSERT_EQ(subset.shape, (SmallVector<int64_t, 4>{1, 2, len, len}));
  EXPECT_LT(relativeError(ArrayRef<double>(subset.data).take_front(len * len),
                          ArrayRef<double>(full.data)
                              .slice(5 * len * len, len * len)),
            1e-15);
  // Causal: nothing above the diagonal.
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = i + 1; j < len; ++j)
      EXPECT_EQ(mean.data[i * len + j], 0.0);
}

TEST_F(AttentionFormTest, LongSequenceStaysExactAndFinite) {
  // One Mamba-1 layer (conv, SiLU, selective scan with D, gate) over
  // L = 4096 tokens: the segment sums span thousands of steps.
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  const char *source = R"mlir(
func.func @f(%x: tensor<1x?x2xf64>, %z: tensor<1x?x2xf64>, %w: tensor<2x4xf64>, %cb: tensor<2xf64>, %q: tensor<1x?x1x4xf64>, %k: tensor<1x?x1x4xf64>, %a: tensor<2x4xf64>, %dt: tensor<1x?x2xf64>, %d: tensor<2xf64>) -> tensor<1x?x2xf64> {
  %c1 = arith.constant 1 : index
  %l = tensor.dim %x, %c1 : tensor<1x?x2xf64>
  %y = glint.mixer label "mamba" (%x) : tensor<1x?x2xf64> -> tensor<1x?x2xf64> {
  ^bb0(%v: tensor<1x?x2xf64>):
    %c = glint.conv1d %v, %w bias %cb : (tensor<1x?x2xf64>, tensor<2x4xf64>, tensor<2xf64>) -> tensor<1x?x2xf64>
    %u = glint.act silu %c : tensor<1x?x2xf64>
    %u4 = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [1, %l, 2, 1] : tensor<1x?x2xf64> into tensor<1x?x2x1xf64>
    %o = glint.recurrence q(%q) k(%k) v(%u4) log_decay(%a) delta(%dt) skip(%d) : (tensor<1x?x1x4xf64>, tensor<1x?x1x4xf64>, tensor<1x?x2x1xf64>, tensor<2x4xf64>, tensor<1x?x2xf64>, tensor<2xf64>) -> tensor<1x?x2x1xf64>
    %o3 = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<1x?x2x1xf64> into tensor<1x?x2xf64>
    %g = glint.act silu %z : tensor<1x?x2xf64>
    %r = arith.mulf %o3, %g : tensor<1x?x2xf64>
    glint.yield %r : tensor<1x?x2xf64>
  }
  return %y : tensor<1x?x2xf64>
}
)mlir";
  OwningOpRef<ModuleOp> module = parse(source);
  ASSERT_TRUE(module);
  OwningOpRef<ModuleOp> attention = module->clone();
  ASSERT_TRUE(succeeded(toAttention(*attention, "aggregate=mean_abs has-row=true row=-1")));
  const int64_t len = 4096;
  // Small steps: the state remembers hundreds of tokens.
  std::vector<Array> args = {
      random({1, len, 2}),          random({1, len, 2}),
      random({2, 4}),               random({2}),
      random({1, len, 1, 4}),       random({1, len, 1, 4}),
      random({2, 4}, -1.0, -0.05),  random({1, len, 2}, 0.001, 0.05),
      random({2})};
  std::vector<Array> scan = run(*module, "f", args);
  std::vector<Array> form = run(*attention, "f", args);
  ASSERT_EQ(scan.size(), 1u);
  ASSERT_EQ(form.size(), 2u);
  EXPECT_LT(relativeError(form[0], scan[0]), 1e-10);
  ASSERT_EQ(form[1].shape, (SmallVector<int64_t, 4>{1, len}));
  for (double x : form[1].data)
    ASSERT_TRUE(std::isfinite(x));
  // Early tokens still reach the last row (long memory), and nothing is
  // negative in a mean of absolute values.
  EXPECT_GT(form[1].data[len - 300], 0.0);
}

TEST_F(AttentionFormTest, RequestsThatCannotFitAreRefusedWithTheirSize) {
  const char *source = R"mlir(
func.func @wide(%x: tensor<1x?x2000xf64>) -> tensor<1x?x2000xf64> {
  %y = glint.mixer label "wide" (%x) : tensor<1x?x2000xf64> -> tensor<1x?x2000xf64> {
  ^bb0(%v: tensor<1x?x2000xf64>):
    %s = glint.token_shift %v : (tensor<1x?x2000xf64>) -> tensor<1x?x2000xf64>
    glint.yield %s : tensor<1x?x2000xf64>
  }
  return %y : tensor<1x?x2000xf64>
}
func.func @long(%x: tensor<1x?x1xf64>) -> tensor<1x?x1xf64> {
  %y = glint.mixer label "long" (%x) : tensor<1x?x1xf64> -> tensor<1x?x1xf64> {
  ^bb0(%v: tensor<1x?x1xf64>):
    %s = glint.token_shift %v : (tensor<1x?x1xf64>) -> tensor<1x?x1xf64>
    glint.yield %s : tensor<1x?x1xf64>
  }
  return %y : tensor<1x?x1xf64>
}
)mlir";
  OwningOpRef<ModuleOp> module = parse(source);
  ASSERT_TRUE(module);
  ASSERT_TRUE(succeeded(toAttention(*module, "formulation=scan-only aggregate=full")));
  ReferenceEvaluator evaluator(*module, noWeights());
  // 2000 channels × 4096² doubles is 250 GiB: refused before allocating.
  auto full = evaluator.run("wide", {random({1, 4096, 2000})});
  ASSERT_FALSE(bool(full));
  std::string message = llvm::toString(full.takeError());
  EXPECT_NE(message.find("aggregate 'full' of 2000 channels x 4096 x 4096 "
                         "(batch 1) would need 250.0 GiB"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("request a channel aggregate"), std::string::npos);
  // A single channel's matrix at L = 200000 cannot be built either.
  auto huge = evaluator.run("long", {random({1, 200000, 1})});
  ASSERT_FALSE(bool(huge));
  message = llvm::toString(huge.takeError());
  EXPECT_NE(message.find("an L x L matrix per channel at L = 200000 would "
                         "need"),
            std::string::npos)
      << message;
}
