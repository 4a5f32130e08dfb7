//===- ExposeStateTest.cpp - step functions against the full forward ------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-expose-state's step function, run by the reference evaluator in
// double precision, must compute what the full forward computes: for every
// causal language-model fixture and bundled model, a sequence fed through
// @forward_step in pieces (a prompt, then one token at a time, then a few at
// once), each call continuing from the states the previous one returned,
// gives the logits of @forward on the whole sequence at every position.
// Sequences are fresh random token ids, batch 2, longer than RecurrentGemma's
// attention window (16 in its fixture) so that the cache wraps.
//
// Tolerance: relative error ≤ 1e-12. Both sides compute in double and, op by
// op, the same sums in the same order; only the attention's concatenation
// and the recurrences' carried states separate them.
//
//===----------------------------------------------------------------------===//

#include "import/Importers.h"
#include "passes/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/io/Safetensors.h"

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <numeric>
#include <random>

using namespace mlir;
namespace ref = mlir::glint::reference;
namespace rt = mlir::glint::runtime;
using mlir::glint::testing::relativeError;

namespace {

constexpr double kTolerance = 1e-12;

/// Rows [from, from + n) along axis 1 of a [B, L, ...] array.
ref::Array slicePositions(const ref::Array &a, int64_t from, int64_t n) {
  SmallVector<int64_t> shape(a.shape.begin(), a.shape.end());
  shape[1] = n;
  ref::Array out(shape);
  int64_t row = a.numElements() / (a.shape[0] * a.shape[1]);
  for (int64_t b = 0; b < a.shape[0]; ++b)
    std::copy_n(a.data.begin() + (b * a.shape[1] + from) * row, n * row,
                out.data.begin() + (b * n) * row);
  return out;
}

class ExposeState : public ::testing::TestWithParam<const char *> {};

TEST_P(ExposeState, StepByStepMatchesFullForward) {
  std::string dir = std::string(GLINT_SOURCE_DIR) + "/" + GetParam();
  auto checkpoint = rt::Checkpoint::open(dir);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  DialectRegistry registry;
  registry.insert<mlir::glint::GlintDialect, arith::ArithDialect,
                  func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, tensor::TensorDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnostics += diag.str() + "\n";
    return success();
  });
  auto module =
      mlir::glint::import::importCheckpoint(&context, dir, **checkpoint);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  PassManager pm(&context);
  pm.addPass(mlir::glint::createGlintExposeState());
  ASSERT_TRUE(succeeded(pm.run(**module))) << diagnostics;
  auto step = (*module)->lookupSymbol<func::FuncOp>("forward_step");
  ASSERT_TRUE(step);

  // Fresh random ids in the vocabulary, longer than the attention window.
  const int64_t batch = 2, length = 24;
  int64_t vocab = 0;
  step.walk([&](mlir::glint::EmbeddingOp e) {
    vocab = e.getTable().getType().getDimSize(0);
  });
  ASSERT_GT(vocab, 0);
  unsigned seed = std::random_device{}();
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(0, vocab - 1);
  ref::Array ids(ArrayRef<int64_t>{batch, length});
  for (double &x : ids.data)
    x = static_cast<double>(token(rng));

  ref::ReferenceEvaluator evaluator(**module, ref::weightsFrom(**checkpoint));
  auto full = evaluator.run("forward", {ids});
  ASSERT_TRUE(bool(full)) << llvm::toString(full.takeError());

  // Zero states of the batch, in argument order after the ids.
  std::vector<ref::Array> states;
  for (unsigned i = 1; i < step.getNumArguments(); ++i) {
    ASSERT_TRUE(step.getArgAttr(i, "glint.state")) << "argument " << i;
    auto type = cast<RankedTensorType>(step.getArgumentTypes()[i]);
    SmallVector<int64_t> shape(type.getShape());
    if (!shape.empty() && ShapedType::isDynamic(shape[0]))
      shape[0] = batch;
    states.emplace_back(shape, 0.0);
  }
  ASSERT_FALSE(states.empty());

  const ref::Array &expected = (*full)[0];
  ref::Array streamed(expected.shape, 0.0);
  int64_t row = expected.numElements() / (batch * length);
  int64_t position = 0;
  // Prefill 5, one by one, then 3 at once, then one by one to the end.
  std::vector<int64_t> pieces = {5};
  for (int i = 0; i < 8; ++i)
    pieces.push_back(1);
  pieces.push_back(3);
  while (position + std::accumulate(pieces.begin(), pieces.end(), 0) < length)
    pieces.push_back(1);
  for (int64_t n : pieces) {
    std::vector<ref::Array> args{slicePositions(ids, position, n)};
    args.insert(args.end(), states.begin(), states.end());
    auto out = evaluator.run("forward_step", args);
    ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
    ASSERT_EQ(out->size(), 1 + states.size());
    const ref::Array &logits = (*out)[0];
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(logits.data.begin() + b * n * row, n * row,
                  streamed.data.begin() + (b * length + position) * row);
    states.assign(out->begin() + 1, out->end());
    position += n;
  }
  ASSERT_EQ(position, length);
  double error = relativeError(streamed, expected);
  std::cout << llvm::formatv("[ {0} ] step by step vs full forward "
                             "(evaluator, double): {1:e}\n",
                             GetParam(), error)
                   .str();
  EXPECT_LE(error, kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Models, ExposeState,
    ::testing::Values("test/fixtures/mamba_conv3",
                      "test/fixtures/mamba_conv4_untied",
                      "test/fixtures/mamba2", "test/fixtures/rwkv4",
                      "test/fixtures/rwkv6", "test/fixtures/recurrentgemma",
                      "models/mamba-keyword", "models/rwkv-keyword",
                      "models/griffin-keyword"),
    [](const ::testing::TestParamInfo<const char *> &info) {
      std::string name = llvm::StringRef(info.param).rsplit('/').second.str();
      for (char &c : name)
        if (!isalnum(static_cast<unsigned char>(c)))
          c = '_';
      return name;
    });

/// A bidirectional model cannot stream: the pass names the first op that
/// runs backwards.
TEST(ExposeStateErrors, VisionMambaIsRejected) {
  std::string dir = std::string(GLINT_SOURCE_DIR) + "/test/fixtures/vim";
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
  auto forward = (*module)->lookupSymbol<func::FuncOp>("forward");
  std::optional<std::string> reason = mlir::glint::findUnstreamableOp(forward);
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("runs backwards (reverse)"), std::string::npos)
      << *reason;
}

} // namespace
