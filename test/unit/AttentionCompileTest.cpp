//===- AttentionCompileTest.cpp - compiled attention form vs evaluator ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The attention form compiled to native code (convert-glint-map-to-loops in
// glint-lower-to-cpu, glint-compile's library, the runtime) against the
// reference evaluator's maps in double: every family's factor chain that
// the lowering handles, every aggregate, rows, channel subsets, map_apply,
// sums of branches, reversed chains, lengths that are not a multiple of the
// kernel's 16 columns, and a long Mamba-1 layer. Relative error ≤ 1e-5
// (float32 against double).
//
//===----------------------------------------------------------------------===//

#include "runtime/CompiledModel.h"
#include "runtime/reference/ReferenceEvaluator.h"
#include "tools/glint-compile/Compiler.h"

#include "passes/Pipelines.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdlib>
#include <random>

using namespace mlir;
namespace rt = mlir::glint::runtime;
namespace ref = mlir::glint::reference;
using mlir::glint::testing::relativeError;

namespace {

struct Arg {
  std::vector<int64_t> shape;
  double lo, hi;
};

struct MapCase {
  const char *name;
  std::string body; // ops of @forward, ending in `return %r`
  std::string signature;
  std::vector<Arg> args;
  double tolerance = 1e-5;
};

/// Mamba-1 (DESIGN §1.2) over E channels, N keys, conv width 4, ending in
/// `tail` (which reads the gated map %m6 and returns %r : `result`).
MapCase mamba1(const char *name, int64_t B, int64_t L, int64_t E, int64_t N,
               std::string tail, std::string result) {
  std::string v = llvm::formatv("tensor<?x?x{0}xf32>", E);
  std::string v4 = llvm::formatv("tensor<?x?x{0}x1xf32>", E);
  std::string m = "!glint.map<" + v + ">", m4 = "!glint.map<" + v4 + ">";
  std::string bc = llvm::formatv("tensor<?x?x1x{0}xf32>", N);
  std::string a = llvm::formatv("tensor<{0}x{1}xf32>", E, N);
  std::string w = llvm::formatv("tensor<{0}x4xf32>", E);
  std::string d = llvm::formatv("tensor<{0}xf32>", E);
  MapCase c;
  c.name = name;
  c.signature = llvm::formatv(
      "%x: {0}, %w: {1}, %xc: {0}, %q: {2}, %k: {2}, %a: {3}, %dt: {0}, "
      "%d: {4}, %z: {0}) -> {5}",
      v, w, bc, a, d, result);
  c.body = llvm::formatv(
      "%m0 = glint.map_identity %x : {0} -> {1}\n"
      "%m1 = glint.map_conv %m0, %w : ({1}, {2}) -> {1}\n"
      "%g = glint.act_gain silu %xc : {0}\n"
      "%m2 = glint.map_scale %m1, %g : ({1}, {0}) -> {1}\n"
      "%m3 = glint.map_reshape %m2 : {1} -> {3}\n"
      "%m4 = glint.map_scan %m3 q(%q) k(%k) log_decay(%a) delta(%dt) "
      "skip(%d) : ({3}, {4}, {4}, {5}, {0}, {6}) -> {3}\n"
      "%m5 = glint.map_reshape %m4 : {3} -> {1}\n"
      "%sz = glint.act silu %z : {0}\n"
      "%m6 = glint.map_scale %m5, %sz : ({1}, {0}) -> {1}\n",
      v, m, w, m4, bc, a, d);
  c.body += tail;
  c.args = {{{B, L, E}, -1, 1},     {{E, 4}, -0.5, 0.5},
            {{B, L, E}, -2, 2},     {{B, L, 1, N}, -1, 1},
            {{B, L, 1, N}, -1, 1},  {{E, N}, -4, -0.1},
            {{B, L, E}, 0.01, 0.3}, {{E}, -1, 1},
            {{B, L, E}, -2, 2}};
  return c;
}

std::vector<MapCase> cases() {
  std::vector<MapCase> all;
  std::string m5 = "!glint.map<tensor<?x?x5xf32>>";
  all.push_back(mamba1("Mamba1Mean", 2, 37, 5, 3,
                       "%r = glint.map_reduce mean %m6 : " + m5 +
                           " -> tensor<?x?x?xf32>\n",
                       "tensor<?x?x?xf32>"));
  all.push_back(mamba1("Mamba1MeanAbs", 1, 50, 5, 4,
                       "%r = glint.map_reduce mean_abs %m6 : " + m5 +
                           " -> tensor<?x?x?xf32>\n",
                       "tensor<?x?x?xf32>"));
  all.push_back(mamba1("Mamba1FullSubset", 2, 21, 5, 3,
                       "%r = glint.map_reduce full %m6 channels [4, 1] : " +
                           m5 + " -> tensor<?x2x?x?xf32>\n",
                       "tensor<?x2x?x?xf32>"));
  all.push_back(mamba1("Mamba1LastRowSum", 1, 33, 5, 3,
                       "%r = glint.map_reduce sum %m6 row -1 : " + m5 +
                           " -> tensor<?x?xf32>\n",
                       "tensor<?x?xf32>"));
  all.push_back(mamba1("Mamba1Apply", 2, 19, 5, 3,
                       "%r = glint.map_apply %m6, %x : (" + m5 +
                           ", tensor<?x?x5xf32>) -> tensor<?x?x5xf32>\n",
                       "tensor<?x?x5xf32>"));
  // L = 4096: finite and exact (the products of decays underflow to zero
  // far from the diagonal, never to NaN).
  all.push_back(mamba1("Mamba1Long", 1, 4096, 1, 16,
                       "%r = glint.map_reduce mean %m6 : "
                       "!glint.map<tensor<?x?x1xf32>> -> tensor<?x?x?xf32>\n",
                       "tensor<?x?x?xf32>"));

  // RWKV-6 / GLA: matrix state (heads 2, value 3, key 4), per-key
  // data-dependent decay, bonus on the diagonal.
  {
    MapCase c;
    c.name = "Rwkv6BonusPerKeyDecay";
    std::string v = "tensor<?x?x2x3xf32>", m = "!glint.map<" + v + ">";
    std::string qk = "tensor<?x?x2x4xf32>";
    c.signature = "%x: " + v + ", %q: " + qk + ", %k: " + qk + ", %g: " + qk +
                  ", %u: tensor<2x4xf32>) -> tensor<?x?x?xf32>";
    c.body = "%m0 = glint.map_identity %x : " + v + " -> " + m + "\n" +
             "%m1 = glint.map_scan %m0 q(%q) k(%k) log_decay(%g) bonus(%u) : (" +
             m + ", " + qk + ", " + qk + ", " + qk +
             ", tensor<2x4xf32>) -> " + m + "\n" +
             "%r = glint.map_reduce mean %m1 : " + m +
             " -> tensor<?x?x?xf32>\n";
    c.args = {{{2, 29, 2, 3}, -1, 1},
              {{2, 29, 2, 4}, -1, 1},
              {{2, 29, 2, 4}, -1, 1},
              {{2, 29, 2, 4}, -1.5, -0.01},
              {{2, 4}, -1, 1}};
    all.push_back(c);
  }
  // Mamba-2: scalar decay per head with Δ, B/C shared by both heads, skip.
  {
    MapCase c;
    c.name = "Mamba2GroupedScalarDecay";
    std::string v = "tensor<?x?x2x2xf32>", m = "!glint.map<" + v + ">";
    std::string qk = "tensor<?x?x1x8xf32>";
    c.signature = "%x: " + v + ", %q: " + qk + ", %k: " + qk +
                  ", %a: tensor<2xf32>, %dt: tensor<?x?x2xf32>, %d: "
                  "tensor<2xf32>) -> tensor<?x?x?xf32>";
    c.body = "%m0 = glint.map_identity %x : " + v + " -> " + m + "\n" +
             "%m1 = glint.map_scan %m0 q(%q) k(%k) log_decay(%a) delta(%dt) "
             "skip(%d) : (" +
             m + ", " + qk + ", " + qk +
             ", tensor<2xf32>, tensor<?x?x2xf32>, tensor<2xf32>) -> " + m +
             "\n" + "%r = glint.map_reduce mean %m1 : " + m +
             " -> tensor<?x?x?xf32>\n";
    c.args = {{{1, 40, 2, 2}, -1, 1}, {{1, 40, 1, 8}, -1, 1},
              {{1, 40, 1, 8}, -1, 1}, {{2}, -3, -0.5},
              {{1, 40, 2}, 0.01, 0.5}, {{2}, -1, 1}};
    all.push_back(c);
  }
  // RG-LRU: no query, key size 1, data-dependent decay per channel, input
  // gate as the key; the GeLU-gated output as a scale.
  {
    MapCase c;
    c.name = "RgLruNoQuery";
    std::string v = "tensor<?x?x6x1xf32>", m = "!glint.map<" + v + ">";
    std::string k = "tensor<?x?x6x1xf32>";
    c.signature = "%x: " + v + ", %k: " + k +
                  ", %a: tensor<?x?x6xf32>, %gate: " + v +
                  ") -> tensor<?x?x?xf32>";
    c.body = "%m0 = glint.map_identity %x : " + v + " -> " + m + "\n" +
             "%m1 = glint.map_scan %m0 k(%k) log_decay(%a) : (" + m + ", " + k +
             ", tensor<?x?x6xf32>) -> " + m + "\n" +
             "%gg = glint.act_gain gelu_tanh %gate : " + v + "\n" +
             "%m2 = glint.map_scale %m1, %gg : (" + m + ", " + v + ") -> " + m +
             "\n" + "%r = glint.map_reduce mean_abs %m2 : " + m +
             " -> tensor<?x?x?xf32>\n";
    c.args = {{{1, 45, 6, 1}, -1, 1},
              {{1, 45, 6, 1}, -1, 1},
              {{1, 45, 6}, -2, -0.01},
              {{1, 45, 6, 1}, -2, 2}};
    all.push_back(c);
  }
  // Vision Mamba's bidirectional layer: a causal and an anti-causal branch
  // (conv and scan each reversed), summed; mean and mean_abs.
  for (const char *aggregate : {"mean", "mean_abs"}) {
    MapCase c;
    c.name = std::string(aggregate) == "mean" ? "BidirectionalMean"
                                              : "BidirectionalMeanAbs";
    std::string v = "tensor<?x?x3xf32>", m = "!glint.map<" + v + ">";
    std::string v4 = "tensor<?x?x3x1xf32>", m4 = "!glint.map<" + v4 + ">";
    std::string qk = "tensor<?x?x1x4xf32>";
    c.signature = "%x: " + v + ", %w: tensor<3x3xf32>, %wb: tensor<3x3xf32>, "
                  "%q: " + qk + ", %k: " + qk + ", %a: tensor<3x4xf32>, %dt: " +
                  v + ", %gate: " + v + ") -> tensor<?x?x?xf32>";
    auto branch = [&](const std::string &p, const std::string &w,
                      const char *rev) {
      return "%" + p + "1 = glint.map_conv " + rev + "%m0, " + w + " : (" + m +
             ", tensor<3x3xf32>) -> " + m + "\n" + "%" + p +
             "2 = glint.map_reshape %" + p + "1 : " + m + " -> " + m4 + "\n" +
             "%" + p + "3 = glint.map_scan " + rev + "%" + p +
             "2 q(%q) k(%k) log_decay(%a) delta(%dt) : (" + m4 + ", " + qk +
             ", " + qk + ", tensor<3x4xf32>, " + v + ") -> " + m4 + "\n" +
             "%" + p + "4 = glint.map_reshape %" + p + "3 : " + m4 + " -> " +
             m + "\n";
    };
    c.body = "%m0 = glint.map_identity %x : " + v + " -> " + m + "\n" +
             branch("f", "%w", "") + branch("b", "%wb", "reverse ") +
             "%s = glint.map_add %f4, %b4 : " + m + "\n" +
             "%t = glint.map_scale %s, %gate : (" + m + ", " + v + ") -> " + m +
             "\n" + "%r = glint.map_reduce " + aggregate + " %t : " + m +
             " -> tensor<?x?x?xf32>\n";
    c.args = {{{1, 26, 3}, -1, 1},     {{3, 3}, -1, 1},
              {{3, 3}, -1, 1},         {{1, 26, 1, 4}, -1, 1},
              {{1, 26, 1, 4}, -1, 1},  {{3, 4}, -2, -0.1},
              {{1, 26, 3}, 0.01, 0.5}, {{1, 26, 3}, -1, 1}};
    all.push_back(c);
  }
  // Token shift and gates without a recurrence (a band only), summed.
  {
    MapCase c;
    c.name = "ShiftAndGateBand";
    std::string v = "tensor<?x?x4xf32>", m = "!glint.map<" + v + ">";
    c.signature = "%x: " + v + ", %g: " + v + ", %w: tensor<4x2xf32>) -> "
                  "tensor<?x?x?xf32>";
    c.body = "%m0 = glint.map_identity %x : " + v + " -> " + m + "\n" +
             "%m1 = glint.map_shift %m0 : " + m + "\n" +
             "%m2 = glint.map_conv %m1, %w : (" + m +
             ", tensor<4x2xf32>) -> " + m + "\n" +
             "%m3 = glint.map_scale %m2, %g : (" + m + ", " + v + ") -> " + m +
             "\n" + "%r = glint.map_reduce sum %m3 : " + m +
             " -> tensor<?x?x?xf32>\n";
    c.args = {{{2, 17, 4}, -1, 1}, {{2, 17, 4}, -1, 1}, {{4, 2}, -1, 1}};
    all.push_back(c);
  }
  return all;
}

class CompiledMap : public ::testing::TestWithParam<MapCase> {};

TEST_P(CompiledMap, MatchesReferenceEvaluator) {
  const MapCase &c = GetParam();
  // A fresh seed, or GLINT_TEST_SEED to replay a failure.
  uint64_t seed = std::random_device{}();
  if (const char *fixed = std::getenv("GLINT_TEST_SEED"))
    seed = std::strtoull(fixed, nullptr, 10);
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::mt19937_64 rng(seed);

  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string ir = "module {\nfunc.func @forward(" + c.signature + " {\n" +
                   c.body + "return %r : " +
                   c.signature.substr(c.signature.rfind("-> ") + 3) +
                   "\n}\n}\n";
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(ir, &context);
  ASSERT_TRUE(module) << ir;
  OwningOpRef<ModuleOp> copy = module->clone();

  std::vector<ref::Array> args;
  std::vector<rt::HostArray> inputs;
  for (const Arg &a : c.args) {
    // Values exactly representable in float32, so both see the same input.
    ref::Array r = mlir::glint::testing::randomArray(rng, a.shape, a.lo, a.hi);
    rt::HostArray h = rt::HostArray::make(a.shape, "f32");
    for (int64_t i = 0; i < r.numElements(); ++i) {
      h.data<float>()[i] = static_cast<float>(r.data[i]);
      r.data[i] = h.data<float>()[i];
    }
    args.push_back(std::move(r));
    inputs.push_back(std::move(h));
  }
  ref::ReferenceEvaluator evaluator(
      *copy, [](llvm::StringRef name, llvm::ArrayRef<int64_t>)
                 -> llvm::Expected<ref::Array> {
        return llvm::createStringError("no weight " + name.str());
      });
  auto expected = evaluator.run("forward", args);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());

  llvm::SmallString<128> library;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-map", "so", library));
  llvm::FileRemover removeLibrary(library);
  llvm::Error compiled =
      glint::compiler::compileToLibrary(*module, "forward", library);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
  auto model = rt::CompiledModel::load(library);
  ASSERT_TRUE(bool(model)) << llvm::toString(model.takeError());
  auto result = (*model)->run(inputs);
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());

  const ref::Array &want = (*expected)[0];
  ASSERT_EQ(result->shape, std::vector<int64_t>(want.shape.begin(),
                                                want.shape.end()));
  std::vector<double> got;
  bool finite = true;
  for (int64_t i = 0; i < result->numElements(); ++i) {
    got.push_back(result->data<float>()[i]);
    finite &= std::isfinite(got.back());
  }
  EXPECT_TRUE(finite);
  EXPECT_LT(relativeError(got, want.data), c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(All, CompiledMap, ::testing::ValuesIn(cases()),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

} // namespace
