//===- VectorizeMatmulTest.cpp - vector matmuls against the reference -----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-vectorize-matmul sums in a different order than the reference
// evaluator, so it is checked by running: each case is one glint.linear in
// a function, compiled by the whole CPU pipeline for this host and run in
// float32 on fresh random inputs at several row counts (one library: rows
// are B x L, dynamic), on both sides of the pack-min-rows threshold and of
// the row, depth and panel blocks; the result must agree with the
// evaluator's float64 one to 1e-5 of the terms' magnitudes (the evaluator's
// Σ |x w| + |b| per output: relative to the result itself, a single output
// whose few terms happen to cancel fails now and then on float32 rounding
// alone, as CI once saw at 3.7e-5 for nine terms). malloc fills new blocks
// with 0x7f bytes (3.4e38 as floats), so an output element that the loops
// forget to write fails. The shapes are awkward on purpose: N and K not
// multiples of the vector width or the panel, K = 1, K above the depth
// block, a single row. Grouped weights ([G, out, in] or [G, in, out], as
// RWKV-6's token-shift LoRA has) become one such product per group.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "passes/cpu/Pipelines.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/io/Safetensors.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/CompiledTestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace mlir;
namespace rt = mlir::glint::runtime;
using mlir::glint::reference::Array;

namespace {

struct Case {
  std::string name;
  int64_t in, out;
  /// PyTorch's [out, in] weight, or [in, out].
  bool outIn;
  bool bias;
  /// (B, L) pairs to run; rows = B * L.
  std::vector<std::pair<int64_t, int64_t>> sizes;
  /// G > 1: a grouped weight, G blocks of in -> out.
  int64_t groups = 1;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class VectorizeMatmulTest : public glint::testing::CompiledTest<Case> {
protected:
  void checkCompiled(const Case &c);
};
class GroupedMatmulTest : public VectorizeMatmulTest {};

/// One glint.linear of case `c` in @forward, its weight of element type
/// `weightElement` (an argument, as is the bias when the case has one).
std::string linearSource(const Case &c, llvm::StringRef weightElement) {
  std::string x = llvm::formatv("tensor<?x?x{0}xf32>", c.groups * c.in).str();
  std::string y = llvm::formatv("tensor<?x?x{0}xf32>", c.groups * c.out).str();
  std::string group = c.groups > 1 ? std::to_string(c.groups) + "x" : "";
  std::string w = c.outIn ? llvm::formatv("tensor<{0}{1}x{2}x{3}>", group,
                                          c.out, c.in, weightElement)
                          : llvm::formatv("tensor<{0}{1}x{2}x{3}>", group, c.in,
                                          c.out, weightElement);
  std::string b = llvm::formatv("tensor<{0}xf32>", c.groups * c.out).str();
  return llvm::formatv(
      "func.func @forward(%x: {0}, %w: {1}{2}) -> {3} {{\n"
      "  %y = glint.linear %x, %w{4}{5} : ({0}, {1}{6}) -> {3}\n"
      "  return %y : {3}\n}",
      x, w, c.bias ? ", %b: " + b : "", y, c.bias ? " bias %b" : "",
      c.outIn ? "" : " layout in_out", c.bias ? ", " + b : "");
}

/// The pass takes the product: no linalg.matmul is left at the scan stage.
void expectVectorized(ModuleOp module) {
  OwningOpRef<ModuleOp> copy = module.clone();
  rt::ModelInfo info;
  llvm::Error lowered = glint::compiler::lowerModule(
      *copy, "forward", glint::compiler::Stage::Scan, info);
  ASSERT_FALSE(bool(lowered)) << llvm::toString(std::move(lowered));
  int64_t matmuls = 0, fmas = 0;
  copy->walk([&](Operation *op) {
    StringRef name = op->getName().getStringRef();
    matmuls += name == "linalg.matmul";
    fmas += name == "math.fma";
  });
  EXPECT_EQ(matmuls, 0);
  EXPECT_GT(fmas, 0);
}

/// `a` with each element replaced by its magnitude.
Array magnitude(Array a) {
  for (double &x : a.data)
    x = std::fabs(x);
  return a;
}

/// What `evaluator` computes from the magnitudes of the float `inputs` (token
/// ids, `ids`, are kept): Σ |x w| + |b| for each output, the scale that a
/// product's rounding error is measured against (see expectClose).
Array termMagnitudes(glint::reference::ReferenceEvaluator &evaluator,
                     ArrayRef<Array> inputs, bool ids = false) {
  std::vector<Array> magnitudes;
  for (const Array &a : inputs)
    magnitudes.push_back(ids && magnitudes.empty() ? a : magnitude(a));
  auto scale = evaluator.run("forward", magnitudes);
  EXPECT_TRUE(bool(scale)) << llvm::toString(scale.takeError());
  return scale ? (*scale)[0] : Array();
}

/// Case `c` with f32 weights, compiled, against the evaluator.
void VectorizeMatmulTest::checkCompiled(const Case &c) {
  std::string source = linearSource(c, "f32");
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  ASSERT_TRUE(module) << source;

  ASSERT_NO_FATAL_FAILURE(expectVectorized(*module));

  std::unique_ptr<rt::CompiledModel> model;
  ASSERT_NO_FATAL_FAILURE(glint::testing::compileAndLoad(*module, model));

  SmallVector<int64_t> shape = c.outIn ? SmallVector<int64_t>{c.out, c.in}
                                       : SmallVector<int64_t>{c.in, c.out};
  if (c.groups > 1)
    shape.insert(shape.begin(), c.groups);
  Array weight = mlir::glint::testing::randomArray(rng, shape, -1.0, 1.0);
  Array bias =
      mlir::glint::testing::randomArray(rng, {c.groups * c.out}, -1.0, 1.0);
  for (auto [batch, len] : c.sizes) {
    SCOPED_TRACE(llvm::formatv("B = {0}, L = {1}", batch, len).str());
    std::vector<Array> inputs = {
        mlir::glint::testing::randomArray(rng, {batch, len, c.groups * c.in},
                                          -1.0, 1.0),
        weight};
    if (c.bias)
      inputs.push_back(bias);
    glint::reference::ReferenceEvaluator evaluator(
        *module, glint::reference::noWeights());
    auto expected = evaluator.run("forward", inputs);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    Array scale = termMagnitudes(evaluator, inputs);
    auto result = model->run(glint::testing::toHost(inputs));
    ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    glint::testing::expectClose(*result, (*expected)[0], 1e-5, source, &scale);
  }
}

TEST_P(VectorizeMatmulTest, CompiledMatchesReference) {
  checkCompiled(GetParam());
}

TEST_P(GroupedMatmulTest, CompiledMatchesReference) {
  checkCompiled(GetParam());
}

/// Rounds `weight` to values exact in bf16 by clearing the low 16 bits of
/// each float (so that both sides of a bf16 check see the same values);
/// returns the bf16 bits.
std::vector<uint16_t> truncateToBF16(Array &weight) {
  std::vector<uint16_t> narrow(weight.numElements());
  for (int64_t i = 0; i < weight.numElements(); ++i) {
    float f = static_cast<float>(weight.data[i]);
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    bits &= 0xffff0000u;
    std::memcpy(&f, &bits, sizeof(f));
    weight.data[i] = f;
    narrow[i] = static_cast<uint16_t>(bits >> 16);
  }
  return narrow;
}

/// The same products with the weight kept in bf16 (glint-narrow-weights'
/// form: the f32 layer reads a narrow weight, widened in registers), given
/// as a bf16 argument: against the evaluator on the same (rounded) weight
/// values the compiled product is as close as the f32 one, in every layout
/// and across the tails and thresholds above.
TEST_P(VectorizeMatmulTest, NarrowWeightMatchesReference) {
  const Case &c = GetParam();
  std::string source = linearSource(c, "bf16");
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  ASSERT_TRUE(module) << source;
  ASSERT_NO_FATAL_FAILURE(expectVectorized(*module));
  std::unique_ptr<rt::CompiledModel> model;
  ASSERT_NO_FATAL_FAILURE(glint::testing::compileAndLoad(*module, model));

  // Random weights rounded to bf16 by truncating a float whose low 16 bits
  // are zero: exactly representable, so both sides see the same values.
  std::vector<int64_t> shape = c.outIn ? std::vector<int64_t>{c.out, c.in}
                                       : std::vector<int64_t>{c.in, c.out};
  Array weight = mlir::glint::testing::randomArray(rng, shape, -1.0, 1.0);
  rt::HostArray narrow = rt::HostArray::make(shape, "bf16");
  std::vector<uint16_t> bits = truncateToBF16(weight);
  std::copy(bits.begin(), bits.end(), narrow.data<uint16_t>());
  Array bias = mlir::glint::testing::randomArray(rng, {c.out}, -1.0, 1.0);
  for (auto [batch, len] : c.sizes) {
    SCOPED_TRACE(llvm::formatv("B = {0}, L = {1}", batch, len).str());
    Array input =
        mlir::glint::testing::randomArray(rng, {batch, len, c.in}, -1.0, 1.0);
    std::vector<Array> arguments = {input, weight};
    std::vector<rt::HostArray> hostArguments = {
        glint::testing::toHost({input}).front(), narrow};
    if (c.bias) {
      arguments.push_back(bias);
      hostArguments.push_back(glint::testing::toHost({bias}).front());
    }
    glint::reference::ReferenceEvaluator evaluator(
        *module, glint::reference::noWeights());
    auto expected = evaluator.run("forward", arguments);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    Array scale = termMagnitudes(evaluator, arguments);
    auto result = model->run(hostArguments);
    ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    glint::testing::expectClose(*result, (*expected)[0], 1e-5, source, &scale);
  }
}

/// Case `c`'s product with its weight read from the checkpoint (an
/// ml_program.global @w, f32 or bf16 in memory) and the bias an argument;
/// `tied` (an [out, in] weight): the input is token ids [B, L] whose rows of
/// @w (an embedding table, out x in) are the product's rows, as a language
/// model with a tied lm_head reads its table twice.
std::string checkpointSource(const Case &c, bool tied) {
  std::string w = c.outIn ? llvm::formatv("tensor<{0}x{1}xf32>", c.out, c.in)
                          : llvm::formatv("tensor<{0}x{1}xf32>", c.in, c.out);
  std::string x = llvm::formatv("tensor<?x?x{0}xf32>", c.in).str();
  std::string y = llvm::formatv("tensor<?x?x{0}xf32>", c.out).str();
  std::string b = llvm::formatv("tensor<{0}xf32>", c.out).str();
  std::string input = tied ? "%ids: tensor<?x?xi64>" : "%x: " + x;
  std::string embed = tied ? llvm::formatv("  %x = glint.embedding %ids, %w : "
                                           "(tensor<?x?xi64>, {0}) -> {1}\n",
                                           w, x)
                                 .str()
                           : "";
  return llvm::formatv(
      "ml_program.global private @w(#ml_program.extern : {0}) : {0}\n"
      "func.func @forward({1}{2}) -> {3} {{\n"
      "  %w = ml_program.global_load_const @w : {0}\n{4}"
      "  %y = glint.linear %x, %w{5}{6} : ({7}, {0}{8}) -> {3}\n"
      "  return %y : {3}\n}",
      w, input, c.bias ? ", %b: " + b : "", y, embed, c.bias ? " bias %b" : "",
      c.outIn ? "" : " layout in_out", x, c.bias ? ", " + b : "");
}

/// The same products with the weight bound from a checkpoint: the pass
/// holds it as prepared panels (the record says so) that the runtime lays
/// out when it binds the weights, and the products, on both sides of
/// pack-min-rows, read the panels: against the evaluator reading the same
/// checkpoint, in f32 and bf16 (values exact in bf16), every layout, and
/// (an [out, in] weight) with the weight also an embedding table read by
/// the gather, which then indexes the panels.
TEST_P(VectorizeMatmulTest, PreparedWeightMatchesReference) {
  const Case &c = GetParam();
  std::vector<int64_t> shape = c.outIn ? std::vector<int64_t>{c.out, c.in}
                                       : std::vector<int64_t>{c.in, c.out};
  Array weight = mlir::glint::testing::randomArray(rng, shape, -1.0, 1.0);
  truncateToBF16(weight);
  std::vector<float> values(weight.data.begin(), weight.data.end());
  llvm::SmallString<128> file;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-prepared",
                                                  "safetensors", file));
  llvm::FileRemover remove(file);
  ASSERT_FALSE(bool(rt::writeSafetensors(file, {{"w", shape, values}})));
  auto checkpoint = rt::Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  Array bias = mlir::glint::testing::randomArray(rng, {c.out}, -1.0, 1.0);

  for (bool tied : {false, true}) {
    if (tied && !c.outIn)
      continue;
    std::string source = checkpointSource(c, tied);
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(source, context.get());
    ASSERT_TRUE(module) << source;
    for (const char *type : {"f32", "bf16"}) {
      SCOPED_TRACE(std::string(type) + (tied ? ", tied" : ""));
      glint::LoopsOptions loops;
      loops.weightType = type;
      std::unique_ptr<rt::CompiledModel> model;
      ASSERT_NO_FATAL_FAILURE(
          glint::testing::compileAndLoad(*module, model, loops));
      ASSERT_EQ(model->info().weights.size(), 1u);
      const rt::TensorSpec &spec = model->info().weights[0];
      EXPECT_EQ(spec.panelLayout, c.outIn ? "nk" : "kn");
      EXPECT_EQ(spec.shape, shape);
      EXPECT_EQ(spec.dtype, type);
      // Panels of two vectors, or of one for outputs that one fills, of
      // half the lanes (down to 8) for outputs that fill at most half.
      int64_t vector = glint::compiler::hostTarget().vectorWidth;
      int64_t width =
          std::min<int64_t>(2, (c.out + vector - 1) / vector) * vector;
      while (c.out <= vector && 2 * c.out <= width && width >= 16)
        width /= 2;
      EXPECT_EQ(spec.panelWidth, width);
      llvm::Error bound = model->bindWeights(**checkpoint);
      ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
      EXPECT_NE(model->weightData("w"), (*checkpoint)->find("w")->bytes.data())
          << "panels are the model's own memory";
      glint::reference::ReferenceEvaluator evaluator(
          *module, glint::reference::weightsFrom(**checkpoint));
      glint::reference::ReferenceEvaluator magnitudes(
          *module,
          [&](StringRef name,
              ArrayRef<int64_t> shape) -> llvm::Expected<Array> {
            auto stored =
                glint::reference::weightsFrom(**checkpoint)(name, shape);
            if (!stored)
              return stored.takeError();
            return magnitude(std::move(*stored));
          });
      for (auto [batch, len] : c.sizes) {
        SCOPED_TRACE(llvm::formatv("B = {0}, L = {1}", batch, len).str());
        std::vector<Array> inputs;
        if (tied) {
          Array ids(ArrayRef<int64_t>{batch, len});
          std::uniform_int_distribution<int64_t> token(0, c.out - 1);
          for (double &id : ids.data)
            id = static_cast<double>(token(rng));
          inputs.push_back(ids);
        } else {
          inputs.push_back(mlir::glint::testing::randomArray(
              rng, {batch, len, c.in}, -1.0, 1.0));
        }
        if (c.bias)
          inputs.push_back(bias);
        auto expected = evaluator.run("forward", inputs);
        ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
        std::vector<rt::HostArray> host =
            glint::testing::toHost(tied ? ArrayRef<Array>(inputs).drop_front()
                                        : ArrayRef<Array>(inputs));
        if (tied) {
          rt::HostArray ids = rt::HostArray::make({batch, len}, "i64");
          for (int64_t i = 0; i < inputs[0].numElements(); ++i)
            ids.data<int64_t>()[i] = static_cast<int64_t>(inputs[0].data[i]);
          host.insert(host.begin(), std::move(ids));
        }
        Array scale = termMagnitudes(magnitudes, inputs, tied);
        auto result = model->run(host);
        ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
        glint::testing::expectClose(*result, (*expected)[0], 1e-5, source,
                                    &scale);
      }
    }
  }
}

/// Row counts around the thresholds: 1 row (a generation step), 15 / 16 /
/// 17 (pack-min-rows), 100 (not a multiple of the 6-row tile: two row
/// blocks of 8 and 9 tiles, the last partial), 2 x 150 = 300 (four row
/// blocks of 12 and 13 tiles, the last partial).
const std::vector<std::pair<int64_t, int64_t>> kRows = {
    {1, 1}, {1, 15}, {1, 16}, {1, 17}, {1, 100}, {2, 150}};

INSTANTIATE_TEST_SUITE_P(
    Cases, VectorizeMatmulTest,
    ::testing::Values(
        // name, in (K), out (N), [out, in], bias, rows
        Case{"OutInBias", 37, 45, true, true, kRows},
        Case{"OutInFullPanels", 64, 96, true, false, kRows},
        Case{"InOutBias", 37, 45, false, true, kRows},
        Case{"InOutFullPanels", 48, 32, false, false, kRows},
        Case{"DeepOutIn", 300, 20, true, true, kRows},
        Case{"DeepInOut", 521, 70, false, false, kRows},
        Case{"DepthOne", 1, 33, true, true, kRows},
        Case{"DepthOneInOut", 1, 17, false, false, kRows},
        Case{"SingleOutput", 40, 1, true, true, kRows},
        Case{"SingleOutputInOut", 9, 1, false, true, kRows},
        Case{"WideOutIn", 24, 300, true, true, kRows},
        Case{"WideInOut", 24, 300, false, true, kRows},
        // 250 columns: the few-rows path's last group of four panels of 32
        // (AVX-512) crosses N.
        Case{"GroupCrossesOutIn", 24, 250, true, false, kRows},
        Case{"GroupCrossesInOut", 24, 250, false, true, kRows}),
    [](const ::testing::TestParamInfo<Case> &info) { return info.param.name; });

// Grouped weights: in and out are each group's; a grouped product without
// a bias starts from a fill (outlined like the others), one with a bias
// from the bias rows.
INSTANTIATE_TEST_SUITE_P(
    Cases, GroupedMatmulTest,
    ::testing::Values(
        // name, in (K), out (N), [out, in], bias, rows, groups
        Case{"OutIn", 32, 8, true, false, kRows, 5},
        Case{"InOut", 8, 32, false, false, kRows, 5},
        Case{"OutInBias", 19, 13, true, true, kRows, 3},
        Case{"InOutBias", 13, 40, false, true, kRows, 2}),
    [](const ::testing::TestParamInfo<Case> &info) { return info.param.name; });

} // namespace
