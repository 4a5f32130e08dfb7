//===- FixtureTest.cpp - importer + evaluator against reference models ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Each directory under test/fixtures holds a tiny random model of one family
// saved by its reference implementation (Hugging Face transformers, or the
// reference formulas of RWKV-6 and Vim), inputs, and the reference logits and
// hidden states (scripts/fixtures/make_fixtures.py made them; see
// test/fixtures/README.md). Here glint-import's library turns the checkpoint
// into IR and the reference evaluator runs it in double precision.
//
// Tolerances, as relative errors ‖glint − ref‖ / ‖ref‖:
//   - against the float64 references: 1e-10 (both sides compute in double;
//     what is left is summation order);
//   - against the float32 references: 1e-5 (the float32 model's own rounding,
//     measured at 1e-7 .. 1e-6 by the fixture script, dominates).
//
//===----------------------------------------------------------------------===//

#include "import/Importers.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Safetensors.h"

#include "dialect/GlintDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace mlir;
namespace ref = mlir::glint::reference;
namespace rt = mlir::glint::runtime;
using mlir::glint::testing::relativeError;

namespace {


class Fixture : public ::testing::TestWithParam<const char *> {};

TEST_P(Fixture, ImportedModelMatchesReference) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/" + GetParam();
  auto checkpoint = rt::Checkpoint::open(dir);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());

  DialectRegistry registry;
  registry.insert<mlir::glint::GlintDialect, arith::ArithDialect,
                  func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, tensor::TensorDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  auto module =
      mlir::glint::import::importCheckpoint(&context, dir, **checkpoint);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());

  ref::WeightProvider weights = ref::weightsFrom(**checkpoint);
  ref::ReferenceEvaluator evaluator(**module, weights);

  int cases = 0;
  for (int i = 0;; ++i) {
    std::string ids = llvm::formatv("{0}/input_ids_{1}.npy", dir, i).str();
    std::string pixels =
        llvm::formatv("{0}/pixel_values_{1}.npy", dir, i).str();
    ref::Array input;
    if (llvm::sys::fs::exists(ids)) {
      auto read = rt::readNpyI64(ids);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input.shape.assign(read->shape.begin(), read->shape.end());
      input.data.assign(read->data.begin(), read->data.end());
    } else if (llvm::sys::fs::exists(pixels)) {
      auto read = rt::readNpyF64(pixels);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input.shape.assign(read->shape.begin(), read->shape.end());
      input.data = std::move(read->data);
    } else {
      break;
    }
    ++cases;
    SCOPED_TRACE(llvm::formatv("input case {0}", i).str());

    std::map<std::string, ref::Array> traced;
    auto results = evaluator.run(
        "forward", {input}, [&](StringRef name, const ref::Array &value) {
          traced[name.str()] = value;
        });
    ASSERT_TRUE(bool(results)) << llvm::toString(results.takeError());
    const ref::Array &logits = (*results)[0];

    for (bool f64 : {true, false}) {
      double tolerance = f64 ? 1e-10 : 1e-5;
      const char *suffix = f64 ? "_float64" : "";
      auto expected =
          rt::readNpyF64(llvm::formatv("{0}/logits{1}_{2}.npy", dir, suffix, i)
                             .str());
      ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
      ASSERT_EQ(ArrayRef<int64_t>(expected->shape),
                ArrayRef<int64_t>(logits.shape));
      double error = relativeError(logits.data, expected->data);
      EXPECT_LT(error, tolerance) << "logits" << suffix;
      if (f64)
        std::cout << llvm::formatv("[ {0} case {1} ] logits vs float64 "
                                   "reference: {2:e}\n",
                                   GetParam(), i, error)
                         .str();

      auto hidden = rt::readNpyF64(
          llvm::formatv("{0}/hidden_states{1}_{2}.npy", dir, suffix, i).str());
      ASSERT_TRUE(bool(hidden)) << llvm::toString(hidden.takeError());
      int64_t entries = hidden->shape[0];
      int64_t perEntry = hidden->data.size() / entries;
      for (int64_t k = 0; k < entries; ++k) {
        std::string name = llvm::formatv("hidden_states.{0}", k).str();
        auto it = traced.find(name);
        ASSERT_NE(it, traced.end()) << "the IR does not trace " << name;
        ASSERT_EQ(it->second.numElements(), perEntry) << name;
        double e = relativeError(
            it->second.data,
            ArrayRef<double>(hidden->data).slice(k * perEntry, perEntry));
        EXPECT_LT(e, tolerance) << name << suffix;
      }
      EXPECT_EQ(traced.size(), static_cast<size_t>(entries))
          << "the IR traces values the reference does not have";
    }
  }
  EXPECT_GE(cases, 2);
}

INSTANTIATE_TEST_SUITE_P(Families, Fixture,
                         ::testing::Values("mamba_conv3", "mamba_conv4_untied",
                                           "mamba2", "rwkv4", "recurrentgemma",
                                           "rwkv6", "vim", "gla", "gla_conv",
                                           "retnet", "hgrn2"));

// RecurrentGemma on inputs longer than attention_window_size W = 16
// (test/fixtures/recurrentgemma_window, made by make_window_fixture.py from
// the recurrentgemma case): the default rule is transformers 5.24's (query i
// sees keys i-W < j <= i), glint_window_rule = "griffin" is DeepMind
// Griffin's (i-W <= j <= i). Each import must match its own float64
// reference and be far from the other's, so the test tells the rules apart.
TEST(WindowRule, RecurrentGemmaMatchesTheChosenImplementation) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/recurrentgemma_window";
  auto checkpoint = rt::Checkpoint::open(dir);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  DialectRegistry registry;
  registry.insert<mlir::glint::GlintDialect, arith::ArithDialect,
                  func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, tensor::TensorDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  ref::WeightProvider weights = ref::weightsFrom(**checkpoint);

  struct Rule {
    const char *key;    // glint_window_rule; nullptr: the default
    const char *suffix; // its reference logits
    const char *other;  // the other rule's
  };
  for (Rule rule : {Rule{nullptr, "float64", "griffin_float64"},
                    Rule{"cache", "float64", "griffin_float64"},
                    Rule{"griffin", "griffin_float64", "float64"}}) {
    SCOPED_TRACE(rule.key ? rule.key : "(default)");
    llvm::json::Object overrides;
    if (rule.key)
      overrides["glint_window_rule"] = rule.key;
    auto module = mlir::glint::import::importCheckpoint(
        &context, dir, **checkpoint, &overrides);
    ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
    ref::ReferenceEvaluator evaluator(**module, weights);
    for (int i = 0; i < 2; ++i) {
      SCOPED_TRACE(llvm::formatv("input case {0}", i).str());
      auto ids =
          rt::readNpyI64(llvm::formatv("{0}/input_ids_{1}.npy", dir, i).str());
      ASSERT_TRUE(bool(ids)) << llvm::toString(ids.takeError());
      ref::Array input;
      input.shape.assign(ids->shape.begin(), ids->shape.end());
      input.data.assign(ids->data.begin(), ids->data.end());
      ASSERT_GT(input.shape[1], 16) << "the fixture must be longer than W";
      auto results = evaluator.run("forward", {input});
      ASSERT_TRUE(bool(results)) << llvm::toString(results.takeError());
      const ref::Array &logits = (*results)[0];
      auto expected = rt::readNpyF64(
          llvm::formatv("{0}/logits_{1}_{2}.npy", dir, rule.suffix, i).str());
      auto other = rt::readNpyF64(
          llvm::formatv("{0}/logits_{1}_{2}.npy", dir, rule.other, i).str());
      ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
      ASSERT_TRUE(bool(other)) << llvm::toString(other.takeError());
      ASSERT_EQ(ArrayRef<int64_t>(expected->shape),
                ArrayRef<int64_t>(logits.shape));
      double error = relativeError(logits.data, expected->data);
      EXPECT_LT(error, 1e-10);
      EXPECT_GT(relativeError(logits.data, other->data), 1e-2);
      std::cout << llvm::formatv("[ window rule {0} case {1} ] logits vs "
                                 "float64 reference: {2:e}\n",
                                 rule.key ? rule.key : "(default)", i, error)
                       .str();
    }
  }

  // A rule glint does not know is refused, naming the key.
  llvm::json::Object bad;
  bad["glint_window_rule"] = "inclusive";
  auto module =
      mlir::glint::import::importCheckpoint(&context, dir, **checkpoint, &bad);
  ASSERT_FALSE(bool(module));
  EXPECT_NE(llvm::toString(module.takeError()).find("glint_window_rule"),
            std::string::npos);
}

} // namespace
