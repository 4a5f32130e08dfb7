//===- VectorizeGradientsTest.cpp - vector backward scans vs evaluator ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The CPU pipeline's vector backward scans, compiled and run in float32,
// against the reference evaluator's closed form of `glint.recurrence_grad`
// in double: every cotangent to 1e-4 relative error. Each case is one op in
// a function; lengths past the default chunk of 64 steps make the scan
// restart from several checkpoints (the last chunk short). Per-channel
// cases (V = 1) go through glint-vectorize-gradients, which must take the
// op (none left for glint-lower-gradients), and head counts that are not a
// multiple of the vector width mask its last block; shared keys with K a
// power of two up to the width are summed over the lanes at each step
// (shuffles), others through a per-lane scratch; matrix-state cases
// (V > 1: GLA, RWKV-6 with its bonus, RetNet, Mamba-2's shared keys)
// through glint-lower-gradients' vector forms, along the value axis (V = 24
// and 6 take 8 and 2 lanes) or, where the keys fill as many lanes, along
// the keys (K = 16 and V = 32, 8, 5). The softmax
// attention backward likewise, its head and value axes on the lanes that
// divide them.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "dialect/GlintOps.h"
#include "passes/conversions/Passes.h"
#include "passes/cpu/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"

#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include "test/unit/CompiledTestSupport.h"
#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <set>

using namespace mlir;
namespace rt = mlir::glint::runtime;

namespace {

struct GradCase {
  std::string name;
  int64_t batch, len, heads, groups, key;
  /// 1: [H], 2: [H, K], 3: [B, L, H], 4: [B, L, H, K].
  int decayRank;
  bool query, delta, skip, reverse;
  /// The value size V, and whether the op has RWKV-6's bonus [H, K].
  int64_t value = 1;
  bool bonus = false;
  /// Whether the function also runs the forward glint.recurrence on the
  /// same operands (as a gradient function does), and returns its output
  /// after the cotangents: glint-vectorize-gradients then lowers it with
  /// the backward, its time blocks keeping the checkpoints.
  bool forward = false;
};

void PrintTo(const GradCase &c, std::ostream *os) { *os << c.name; }

/// Checks each part of a compiled result that holds several results
/// flattened one after the other (`sizes` elements each) against the same
/// part of the evaluator's, on its own, so that a small one is not hidden
/// by a large.
void expectPartsClose(const rt::HostArray &out,
                      const glint::reference::Array &expected,
                      ArrayRef<int64_t> sizes, ArrayRef<const char *> names,
                      const std::string &source) {
  int64_t offset = 0;
  for (auto [n, name] : llvm::zip(sizes, names)) {
    rt::HostArray part = rt::HostArray::make({n}, "f32");
    glint::reference::Array want(llvm::ArrayRef<int64_t>{n});
    for (int64_t e = 0; e < n; ++e) {
      part.data<float>()[e] = out.data<float>()[offset + e];
      want.data[e] = expected.data[offset + e];
    }
    offset += n;
    glint::testing::expectClose(part, want, 1e-4, name + ("\n" + source));
  }
}

/// The lanes glint-lower-gradients takes along an axis of `size`: the
/// largest power of two up to `width` that divides it.
int64_t lanesOf(int64_t size, int64_t width) {
  int64_t lanes = 1;
  while (lanes * 2 <= width && size % (lanes * 2) == 0)
    lanes *= 2;
  return lanes;
}

class VectorizeGradientsTest : public glint::testing::CompiledTest<GradCase> {};

TEST_P(VectorizeGradientsTest, CompiledMatchesReference) {
  const GradCase &c = GetParam();
  std::string args, operands, types;
  std::vector<glint::reference::Array> inputs;
  auto typeOf = [&](StringRef axes, SmallVector<int64_t> &shape) {
    std::string s = "tensor<";
    for (char a : axes) {
      int64_t size = a == 'B'   ? c.batch
                     : a == 'L' ? c.len
                     : a == 'H' ? c.heads
                     : a == 'G' ? c.groups
                     : a == 'K' ? c.key
                     : a == 'V' ? c.value
                                : 1;
      shape.push_back(size);
      s += std::to_string(size) + "x";
    }
    return s + "f32>";
  };
  auto add = [&](StringRef name, StringRef role, StringRef axes, double lo,
                 double hi) {
    SmallVector<int64_t> shape;
    std::string type = typeOf(axes, shape);
    args += (args.empty() ? "" : ", ") + ("%" + name + ": ").str() + type;
    operands += (role + "(%" + name + ") ").str();
    types += (types.empty() ? "" : ", ") + type;
    inputs.push_back(glint::testing::randomArray(rng, shape, lo, hi));
  };
  if (c.query)
    add("q", "q", "BLGK", -1.0, 1.0);
  add("k", "k", "BLGK", -1.0, 1.0);
  add("v", "v", "BLHV", -1.0, 1.0);
  static const char *decayAxes[] = {"H", "HK", "BLH", "BLHK"};
  std::string decay = decayAxes[c.decayRank - 1];
  add("g", "log_decay", decay, -1.0, -0.01);
  if (c.delta)
    add("dt", "delta", "BLH", 0.05, 1.0);
  if (c.bonus)
    add("u", "bonus", "HK", -0.5, 0.5);
  if (c.skip)
    add("d", "skip", "H", -1.0, 1.0);
  std::string forwardOperands = operands, forwardTypes = types;
  add("dy", "grad", "BLHV", -1.0, 1.0);
  // A compiled model returns one result: the five cotangents flattened
  // into one vector, one after the other.
  int parts = c.forward ? 6 : 5;
  std::vector<SmallVector<int64_t>> shapes(parts);
  std::vector<std::string> resultTypes = {
      typeOf("BLGK", shapes[0]), typeOf("BLGK", shapes[1]),
      typeOf("BLHV", shapes[2]), typeOf(decay, shapes[3]),
      typeOf("BLH", shapes[4])};
  std::string results = llvm::join(resultTypes, ", ");
  std::string forward;
  if (c.forward) {
    resultTypes.push_back(typeOf("BLHV", shapes[5]));
    forward = llvm::formatv("  %r5 = glint.recurrence {0}{1}: ({2}) -> {3}\n",
                            c.reverse ? "reverse " : "", forwardOperands,
                            forwardTypes, resultTypes[5]);
  }
  int64_t total = 0;
  std::string pack;
  for (int i = 0; i < parts; ++i) {
    int64_t n = 1;
    for (int64_t d : shapes[i])
      n *= d;
    std::string dims;
    for (size_t d = 0; d < shapes[i].size(); ++d)
      dims += (d ? ", " : "") + std::to_string(d);
    std::string result = i < 5 ? "%r#" + std::to_string(i) : "%r5";
    pack += llvm::formatv(
        "  %f{0} = tensor.collapse_shape {6} [[{1}]] : {2} into "
        "tensor<{3}xf32>\n"
        "  %p{4} = tensor.insert_slice %f{0} into %p{0}[{5}] [{3}] [1] : "
        "tensor<{3}xf32> into tensor<TOTALxf32>\n",
        i, dims, resultTypes[i], n, i + 1, total, result);
    total += n;
  }
  std::string source =
      llvm::formatv("func.func @forward({0}) -> tensor<TOTALxf32> {{\n{6}"
                    "  %r:5 = glint.recurrence_grad {1}{2}: ({3}) -> ({4})\n"
                    "  %p0 = tensor.empty() : tensor<TOTALxf32>\n{5}"
                    "  return %p{7} : tensor<TOTALxf32>\n}",
                    args, c.reverse ? "reverse " : "", operands, types, results,
                    pack, forward, parts)
          .str();
  for (size_t at; (at = source.find("TOTAL")) != std::string::npos;)
    source.replace(at, 5, std::to_string(total));
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  ASSERT_TRUE(module) << source;

  // The vector form takes the op.
  {
    OwningOpRef<ModuleOp> copy = module->clone();
    PassManager pm(context.get());
    int64_t width = glint::compiler::hostTarget().vectorWidth;
    if (c.value == 1) {
      glint::GlintVectorizeGradientsOptions options;
      options.vectorWidth = width;
      pm.addNestedPass<func::FuncOp>(
          glint::createGlintVectorizeGradients(options));
    } else {
      glint::GlintLowerGradientsOptions options;
      options.vectorWidth = width;
      pm.addNestedPass<func::FuncOp>(glint::createGlintLowerGradients(options));
    }
    ASSERT_TRUE(succeeded(pm.run(*copy)));
    int64_t left = 0, reads = 0, shuffles = 0, reductions = 0;
    copy->walk([&](glint::RecurrenceGradOp) { ++left; });
    // With the forward: lowered here too, with the backward.
    copy->walk([&](glint::RecurrenceOp) { ++left; });
    copy->walk([&](vector::TransferReadOp) { ++reads; });
    copy->walk([&](vector::ShuffleOp) { ++shuffles; });
    copy->walk([&](vector::ReductionOp) { ++reductions; });
    EXPECT_EQ(left, 0) << source;
    EXPECT_GT(reads, 0) << source;
    // Shared keys (one group, V = 1) with K and W powers of two, K <= W:
    // their cotangents summed over the lanes at each step by shuffles, no
    // per-lane scratch reduced afterwards; otherwise the scratch. (The
    // per-key decay is gathered by shuffles, transposed, either way.)
    if (c.value == 1 && c.groups == 1) {
      bool laneSums = llvm::isPowerOf2_64(c.key) && c.key <= width;
      if (laneSums) {
        EXPECT_GT(shuffles, 0) << source;
      }
      EXPECT_EQ(reductions > 0, !laneSums) << source;
    }
    // Matrix states. Where the keys take vectors of at least 4 lanes and
    // of as many as the values (w), the key-vector form: rows along the
    // keys, dv's partials of groups of values added over the lanes by
    // shuffles when a group holds two or more. Otherwise the key loops
    // take G = min(K, w) keys at a time when G is a power of two of at
    // least 2 dividing K, their value-axis sums added over the lanes by
    // shuffles.
    if (c.value > 1) {
      int64_t w = lanesOf(c.value, width), kw = lanesOf(c.key, width);
      bool laneSums;
      if (kw >= std::max<int64_t>(4, w)) {
        laneSums = lanesOf(c.value, kw) >= 2;
      } else {
        int64_t g = std::min(c.key, w);
        laneSums = g >= 2 && llvm::isPowerOf2_64(g) && c.key % g == 0;
      }
      EXPECT_EQ(shuffles > 0, laneSums) << source;
    }
  }

  std::unique_ptr<rt::CompiledModel> model;
  glint::TargetOptions target = glint::compiler::hostTarget();
  target.threads = 2;
  ASSERT_NO_FATAL_FAILURE(
      glint::testing::compileAndLoad(*module, model, {}, target));
  auto expected = glint::testing::evaluateWithoutWeights(*module, inputs);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  auto out = model->run(glint::testing::toHost(inputs));
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  static const char *names[] = {"dq",         "dk",     "dv",
                                "dlog_decay", "ddelta", "forward output"};
  SmallVector<int64_t> sizes;
  for (const SmallVector<int64_t> &shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    sizes.push_back(n);
  }
  expectPartsClose(*out, (*expected)[0], sizes, ArrayRef(names, parts), source);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, VectorizeGradientsTest,
    ::testing::Values(
        // name, B, L, H, G, K, decay rank, query, delta, skip, reverse
        GradCase{"Mamba1", 2, 150, 37, 1, 5, 2, true, true, true, false},
        // K a power of two up to the vector width: lane sums by shuffles
        // (K = 16 and 32 fall back to the scratch where W is 8 or 16).
        GradCase{"Mamba1LaneSums", 2, 150, 37, 1, 8, 2, true, true, true,
                 false},
        GradCase{"Mamba1LaneSumsK16", 1, 130, 20, 1, 16, 2, true, true, true,
                 false},
        GradCase{"Mamba1LaneSumsK32", 1, 70, 20, 1, 32, 2, true, true, false,
                 false},
        GradCase{"ReverseLaneSumsK2", 1, 100, 9, 1, 2, 1, true, true, false,
                 true},
        GradCase{"LaneSumsK1", 1, 70, 18, 1, 1, 2, true, true, true, false},
        GradCase{"VimReverseHeadDecay", 1, 130, 20, 1, 3, 1, true, true, false,
                 true},
        GradCase{"RGLRU", 2, 70, 19, 19, 1, 3, false, false, true, false},
        GradCase{"PerKeyDecay", 1, 65, 16, 16, 1, 4, true, true, false, false},
        // With the forward scan, which keeps the backward's checkpoints:
        // L past several chunks of 64 and not a multiple of the time block,
        // a masked last block, reversed, and per-time decays (RG-LRU).
        GradCase{"Mamba1WithForward", 2, 150, 37, 1, 8, 2, true, true, true,
                 false, 1, false, true},
        GradCase{"VimReverseWithForward", 1, 130, 20, 1, 3, 1, true, true,
                 false, true, 1, false, true},
        GradCase{"RGLRUWithForward", 2, 70, 19, 19, 1, 3, false, false, true,
                 false, 1, false, true},
        // Matrix states: name, B, L, H, G, K, decay rank, query, delta,
        // skip, reverse, V, bonus.
        GradCase{"GLA", 2, 150, 4, 4, 8, 4, true, false, false, false, 16},
        GradCase{"RWKV6Bonus", 1, 130, 3, 3, 16, 4, true, false, false, false,
                 32, true},
        GradCase{"RWKV6ReverseBonus", 1, 70, 2, 2, 4, 4, true, false, false,
                 true, 16, true},
        GradCase{"RetNetHeadDecay", 1, 70, 2, 2, 8, 1, true, false, true, false,
                 24},
        GradCase{"Mamba2SharedKeys", 2, 100, 6, 1, 16, 3, true, true, true,
                 false, 8},
        GradCase{"TwoLanes", 1, 66, 2, 2, 3, 2, true, true, false, false, 6},
        // Two groups of keys (K = 32, 16 lanes with AVX-512), per-key decay
        // scaled by delta, reversed.
        GradCase{"KeyGroupsDelta", 1, 70, 2, 2, 32, 2, true, true, false, true,
                 16},
        // Four keys of 16 lanes, no query, shared keys, per-step decay.
        GradCase{"FourKeysNoQuery", 2, 67, 4, 1, 4, 3, false, true, true, false,
                 16},
        // The key-vector form (keys on at least as many lanes as the
        // values): per-key decays per step without a bonus (GLA's), two
        // groups of values; an odd V, whose partials of dv are added one
        // value at a time, with delta, skip and per-key decays.
        GradCase{"KeyVectorsGLA", 1, 70, 2, 2, 16, 4, true, false, false, false,
                 32},
        GradCase{"KeyVectorsOddValue", 2, 67, 2, 1, 8, 2, true, true, true,
                 false, 5}),
    [](const ::testing::TestParamInfo<GradCase> &info) {
      return info.param.name;
    });

//===----------------------------------------------------------------------===//
// glint.attention_grad
//===----------------------------------------------------------------------===//

using AttentionCase = glint::testing::AttentionGradCase;

class VectorizeAttentionGradTest
    : public glint::testing::CompiledTest<AttentionCase> {};

// The softmax backward compiled with the target's vector width (the head
// and value axes on vectors of the lanes that divide them, scalar where
// that is one) against the evaluator's closed form in double: dq, dk and
// dv each to 1e-4.
TEST_P(VectorizeAttentionGradTest, CompiledMatchesReference) {
  const AttentionCase &c = GetParam();
  auto [q, k, v, y] = c.types();
  auto [nq, nk, nv, ny] = c.elements();
  // A compiled model returns one result: dq, dk and dv flattened into one
  // vector, one after the other.
  std::string source =
      llvm::formatv(
          "func.func @forward(%q: {0}, %k: {1}, %v: {2}, %dy: {3}) -> "
          "tensor<{7}xf32> {{\n"
          "  %r:3 = glint.attention_grad %q, %k, %v grad(%dy) scale 0.25{4} "
          ": ({0}, {1}, {2}, {3}) -> ({0}, {1}, {2})\n"
          "  %fq = tensor.collapse_shape %r#0 [[0, 1, 2, 3]] : {0} into "
          "tensor<{5}xf32>\n"
          "  %fk = tensor.collapse_shape %r#1 [[0, 1, 2, 3]] : {1} into "
          "tensor<{6}xf32>\n"
          "  %fv = tensor.collapse_shape %r#2 [[0, 1, 2, 3]] : {2} into "
          "tensor<{8}xf32>\n"
          "  %p0 = tensor.empty() : tensor<{7}xf32>\n"
          "  %p1 = tensor.insert_slice %fq into %p0[0] [{5}] [1] : "
          "tensor<{5}xf32> into tensor<{7}xf32>\n"
          "  %p2 = tensor.insert_slice %fk into %p1[{5}] [{6}] [1] : "
          "tensor<{6}xf32> into tensor<{7}xf32>\n"
          "  %p3 = tensor.insert_slice %fv into %p2[{9}] [{8}] [1] : "
          "tensor<{8}xf32> into tensor<{7}xf32>\n"
          "  return %p3 : tensor<{7}xf32>\n}",
          q, k, v, y, c.windowSuffix(), nq, nk, nq + nk + nv, nv, nq + nk)
          .str();
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  ASSERT_TRUE(module) << source;

  // The vector form: transfers of the lanes that divide the head and value
  // axes, none where both take one lane.
  {
    OwningOpRef<ModuleOp> copy = module->clone();
    PassManager pm(context.get());
    int64_t width = glint::compiler::hostTarget().vectorWidth;
    glint::GlintLowerGradientsOptions options;
    options.vectorWidth = width;
    pm.addNestedPass<func::FuncOp>(glint::createGlintLowerGradients(options));
    ASSERT_TRUE(succeeded(pm.run(*copy)));
    std::set<int64_t> readLanes;
    copy->walk([&](vector::TransferReadOp read) {
      readLanes.insert(read.getVectorType().getNumElements());
    });
    std::set<int64_t> expectedLanes;
    for (int64_t size : {c.dim, c.valueDim})
      if (int64_t lanes = lanesOf(size, width); lanes > 1)
        expectedLanes.insert(lanes);
    EXPECT_EQ(readLanes, expectedLanes) << source;
  }

  std::vector<glint::reference::Array> inputs = c.randomInputs(rng);
  std::unique_ptr<rt::CompiledModel> model;
  glint::TargetOptions target = glint::compiler::hostTarget();
  target.threads = 2;
  ASSERT_NO_FATAL_FAILURE(
      glint::testing::compileAndLoad(*module, model, {}, target));
  auto expected = glint::testing::evaluateWithoutWeights(*module, inputs);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  auto out = model->run(glint::testing::toHost(inputs));
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  static const char *names[] = {"dq", "dk", "dv"};
  expectPartsClose(*out, (*expected)[0], {nq, nk, nv}, names, source);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, VectorizeAttentionGradTest,
    ::testing::Values(
        // name, B, L, H, KV heads, D, Dv, window
        // Griffin's shape: 16-lane rows (two vectors of 8 with AVX2), a
        // window shorter than the sequence, two query heads per key head.
        AttentionCase{"GriffinWindow", 2, 70, 2, 1, 16, 16, 9},
        // 8 and 2 lanes; causal over the whole sequence, grouped.
        AttentionCase{"EightAndTwoLanes", 1, 40, 4, 2, 24, 6, 0},
        // Odd head size: scalar scores, dq and dk; dv on 4 lanes.
        AttentionCase{"ScalarHeadAxis", 2, 33, 3, 3, 3, 4, 5},
        // Rows of 32: two vectors of 16 (or four of 8) per row.
        AttentionCase{"TwoVectorRows", 1, 50, 2, 2, 32, 32, 0}),
    [](const ::testing::TestParamInfo<AttentionCase> &info) {
      return info.param.name;
    });

} // namespace
