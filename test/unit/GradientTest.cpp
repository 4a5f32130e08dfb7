//===- GradientTest.cpp - glint-differentiate vs finite differences -------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Every backward rule, and the gradient of every model family, checked in
// the reference evaluator (double) against central finite differences of
// the forward: for a random seed s and random inputs x, the gradient
// function's cotangent of x must equal (⟨s, f(x + h·e_i)⟩ − ⟨s, f(x −
// h·e_i)⟩) / 2h for every element i, to a relative error (2-norm over the
// argument) of 1e-6. Weights and inputs are random and non-zero.
//
//===----------------------------------------------------------------------===//

#include "import/Importers.h"
#include "passes/transforms/Passes.h"
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
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include "test/unit/ImportedFixture.h"
#include "test/unit/ModelContext.h"
#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <numeric>
#include <random>

using namespace mlir;
namespace ref = mlir::glint::reference;
namespace rt = mlir::glint::runtime;
using mlir::glint::testing::ImportedFixture;
using mlir::glint::testing::importFixture;
using mlir::glint::testing::makeModelContext;
using mlir::glint::testing::randomArray;
using mlir::glint::testing::randomWeights;
using mlir::glint::testing::relativeError;

namespace {

constexpr double kTolerance = 1e-6;
constexpr double kStep = 1e-5;

/// ⟨seed, first result of `function`⟩.
double project(ref::ReferenceEvaluator &evaluator, StringRef function,
               ArrayRef<ref::Array> args, const ref::Array &seed) {
  auto results = evaluator.run(function, args);
  EXPECT_TRUE(bool(results)) << llvm::toString(results.takeError());
  if (!results)
    return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < seed.data.size(); ++i)
    sum += seed.data[i] * (*results)[0].data[i];
  return sum;
}

/// Differentiates @forward of `module` and compares the cotangents of its
/// float arguments with central differences at `args` (integer arguments
/// are passed through), on every element or on `sample` random ones.
void checkAgainstFiniteDifferences(ModuleOp module, ref::WeightProvider weights,
                                   std::vector<ref::Array> args,
                                   std::mt19937_64 &rng, int64_t sample = 0) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(forward);
  std::string diagnostics;
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
    diagnostics += d.str() + "\n";
    return success();
  });
  auto grad = mlir::glint::differentiate(forward, "forward_grad");
  ASSERT_TRUE(succeeded(grad)) << diagnostics;
  ASSERT_TRUE(succeeded(verify(module))) << diagnostics;

  ref::ReferenceEvaluator evaluator(module, weights);
  auto out = evaluator.run("forward", args);
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  ref::Array seed = randomArray(rng, (*out)[0].shape, -1.0, 1.0);
  std::vector<ref::Array> gradArgs = args;
  gradArgs.push_back(seed);
  auto results = evaluator.run("forward_grad", gradArgs);
  ASSERT_TRUE(bool(results)) << llvm::toString(results.takeError());
  // Results: forward's, one per layer, then one per input.
  size_t first = results->size();
  SmallVector<unsigned> floatArgs;
  for (auto [i, type] : llvm::enumerate(forward.getArgumentTypes()))
    if (isa<FloatType>(getElementTypeOrSelf(type)))
      floatArgs.push_back(i);
  first -= floatArgs.size();
  ASSERT_GE(first, forward.getNumResults());
  for (auto [n, a] : llvm::enumerate(floatArgs)) {
    ASSERT_EQ((*results)[first + n].shape, args[a].shape);
    // An argument the forward reads only for its sizes (an image model's
    // pixels once it is cut at its embeddings) has a zero cotangent.
    if (llvm::all_of(forward.getArgument(a).getUsers(),
                     [](Operation *user) { return isa<tensor::DimOp>(user); })) {
      for (double v : (*results)[first + n].data)
        ASSERT_EQ(v, 0.0) << "argument " << a << " is unused";
      continue;
    }
    std::vector<int64_t> elements(args[a].numElements());
    std::iota(elements.begin(), elements.end(), 0);
    if (sample && sample < static_cast<int64_t>(elements.size())) {
      std::shuffle(elements.begin(), elements.end(), rng);
      elements.resize(sample);
    }
    std::vector<double> analytic, numeric;
    for (int64_t i : elements) {
      analytic.push_back((*results)[first + n].data[i]);
      std::vector<ref::Array> plus = args, minus = args;
      plus[a].data[i] += kStep;
      minus[a].data[i] -= kStep;
      numeric.push_back((project(evaluator, "forward", plus, seed) -
                         project(evaluator, "forward", minus, seed)) /
                        (2 * kStep));
    }
    double error = relativeError(analytic, numeric);
    EXPECT_LE(error, kTolerance) << "argument " << a;
    double norm = 0.0;
    for (double v : numeric)
      norm += v * v;
    EXPECT_GT(norm, 1e-12) << "argument " << a
                           << " has a zero gradient: the "
                              "check would be empty";
  }
}

struct OpCase {
  const char *name;
  const char *ir;
  std::vector<std::vector<int64_t>> argShapes;
  double lo = -1.0, hi = 1.0;
};

std::ostream &operator<<(std::ostream &os, const OpCase &c) {
  return os << c.name;
}

class OpGradient : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpGradient, MatchesFiniteDifferences) {
  const OpCase &c = GetParam();
  auto context = makeModelContext();
  auto module = parseSourceString<ModuleOp>(c.ir, context.get());
  ASSERT_TRUE(module) << c.ir;
  std::mt19937_64 rng(std::hash<std::string>()(c.name));
  std::vector<ref::Array> args;
  for (const auto &shape : c.argShapes)
    args.push_back(randomArray(rng, shape, c.lo, c.hi));
  checkAgainstFiniteDifferences(*module, randomWeights(rng, 0.2, 0.9), args,
                                rng);
}

// Shapes: B = 2, L = 5 unless a case says otherwise.
const OpCase kOpCases[] = {
    {"linear_out_in",
     R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<6x4xf32>) : tensor<6x4xf32>
  ml_program.global private @b(#ml_program.extern : tensor<6xf32>) : tensor<6xf32>
  func.func @forward(%x: tensor<?x?x4xf32>) -> tensor<?x?x6xf32> {
    %w = ml_program.global_load_const @w : tensor<6x4xf32>
    %b = ml_program.global_load_const @b : tensor<6xf32>
    %y = glint.linear %x, %w bias %b : (tensor<?x?x4xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<?x?x6xf32>
    return %y : tensor<?x?x6xf32>
  }
})",
     {{2, 5, 4}}},
    {"linear_in_out_block_diagonal",
     R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<2x3x4xf32>) : tensor<2x3x4xf32>
  ml_program.global private @v(#ml_program.extern : tensor<2x3x4xf32>) : tensor<2x3x4xf32>
  func.func @forward(%x: tensor<?x?x6xf32>) -> tensor<?x?x6xf32> {
    %w = ml_program.global_load_const @w : tensor<2x3x4xf32>
    %v = ml_program.global_load_const @v : tensor<2x3x4xf32>
    %h = glint.linear %x, %w layout in_out : (tensor<?x?x6xf32>, tensor<2x3x4xf32>) -> tensor<?x?x8xf32>
    %y = glint.linear %h, %v : (tensor<?x?x8xf32>, tensor<2x3x4xf32>) -> tensor<?x?x6xf32>
    return %y : tensor<?x?x6xf32>
  }
})",
     {{2, 5, 6}}},
    {"norms",
     R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  ml_program.global private @b(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
    %w = ml_program.global_load_const @w : tensor<8xf32>
    %b = ml_program.global_load_const @b : tensor<8xf32>
    %r = glint.rms_norm %x weight %w epsilon 1.0e-05 {weight_offset = 1.0 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
    %l = glint.layer_norm %r weight %w bias %b epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
    %g = glint.group_norm %l groups 2 weight %w bias %b epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
    %s = arith.mulf %g, %x : tensor<?x?x8xf32>
    %n = glint.rms_norm %s epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    return %n : tensor<?x?x8xf32>
  }
})",
     {{2, 5, 8}}},
    {"activations",
     R"(module {
  func.func @forward(%x: tensor<?x?x3xf32>) -> tensor<?x?x3xf32> {
    %a = glint.act silu %x : tensor<?x?x3xf32>
    %b = glint.act sigmoid %a : tensor<?x?x3xf32>
    %c = glint.act gelu %x : tensor<?x?x3xf32>
    %d = glint.act gelu_tanh %c : tensor<?x?x3xf32>
    %e = glint.act softplus %d : tensor<?x?x3xf32>
    %f = glint.act tanh %e : tensor<?x?x3xf32>
    %g = glint.act exp %f : tensor<?x?x3xf32>
    %h = glint.act neg_exp %b : tensor<?x?x3xf32>
    %i = glint.act relu_square %x : tensor<?x?x3xf32>
    %j = glint.act relu %x : tensor<?x?x3xf32>
    %s1 = arith.addf %g, %h : tensor<?x?x3xf32>
    %s2 = arith.subf %s1, %i : tensor<?x?x3xf32>
    %s3 = arith.mulf %s2, %j : tensor<?x?x3xf32>
    %s4 = arith.addf %s3, %s2 : tensor<?x?x3xf32>
    return %s4 : tensor<?x?x3xf32>
  }
})",
     {{2, 5, 3}}},
    {"standard_ops",
     R"(module {
  func.func @forward(%x: tensor<?x?x6xf32>, %p: tensor<?x2x3xf32>) -> tensor<?x?x4xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %x, %c0 : tensor<?x?x6xf32>
    %l = tensor.dim %x, %c1 : tensor<?x?x6xf32>
    %lo = tensor.extract_slice %x[0, 0, 0] [%b, %l, 4] [1, 1, 1] : tensor<?x?x6xf32> to tensor<?x?x4xf32>
    %hi = tensor.extract_slice %x[0, 0, 2] [%b, %l, 4] [1, 1, 1] : tensor<?x?x6xf32> to tensor<?x?x4xf32>
    %e = math.exp %lo : tensor<?x?x4xf32>
    %q = arith.divf %hi, %e : tensor<?x?x4xf32>
    %sq = arith.mulf %q, %q : tensor<?x?x4xf32>
    %r = math.sqrt %e : tensor<?x?x4xf32>
    %n = arith.negf %r : tensor<?x?x4xf32>
    %s = arith.addf %sq, %n : tensor<?x?x4xf32>
    %pe = tensor.collapse_shape %p [[0], [1, 2]] : tensor<?x2x3xf32> into tensor<?x6xf32>
    %pt = tensor.expand_shape %pe [[0, 1], [2]] output_shape [%b, 1, 6] : tensor<?x6xf32> into tensor<?x1x6xf32>
    %init = tensor.empty(%b) : tensor<6x1x?xf32>
    %tr = linalg.transpose ins(%pt : tensor<?x1x6xf32>) outs(%init : tensor<6x1x?xf32>) permutation = [2, 1, 0]
    %back = tensor.empty(%b) : tensor<?x1x6xf32>
    %tt = linalg.transpose ins(%tr : tensor<6x1x?xf32>) outs(%back : tensor<?x1x6xf32>) permutation = [2, 1, 0]
    %ps = tensor.extract_slice %tt[0, 0, 1] [%b, 1, 4] [1, 1, 1] : tensor<?x1x6xf32> to tensor<?x1x4xf32>
    %cat = tensor.concat dim(1) %ps, %s : (tensor<?x1x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    %out = tensor.extract_slice %cat[0, 1, 0] [%b, %l, 4] [1, 1, 1] : tensor<?x?x4xf32> to tensor<?x?x4xf32>
    %first = tensor.extract_slice %cat[0, 0, 0] [%b, %l, 4] [1, 1, 1] : tensor<?x?x4xf32> to tensor<?x?x4xf32>
    %y = arith.mulf %out, %first : tensor<?x?x4xf32>
    return %y : tensor<?x?x4xf32>
  }
})",
     {{2, 5, 6}, {2, 2, 3}}},
    // Slices of one tensor: their cotangents are written into one tensor
    // (three tiling x's last axis, two leaving a gap in y's) rather than
    // summed, and x1, used twice, adds its own.
    {"disjoint_slices",
     R"(module {
  func.func @forward(%x: tensor<?x?x9xf32>, %y: tensor<?x?x7xf32>) -> tensor<?x?x3xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %x, %c0 : tensor<?x?x9xf32>
    %l = tensor.dim %x, %c1 : tensor<?x?x9xf32>
    %x0 = tensor.extract_slice %x[0, 0, 0] [%b, %l, 3] [1, 1, 1] : tensor<?x?x9xf32> to tensor<?x?x3xf32>
    %x1 = tensor.extract_slice %x[0, 0, 3] [%b, %l, 3] [1, 1, 1] : tensor<?x?x9xf32> to tensor<?x?x3xf32>
    %x2 = tensor.extract_slice %x[0, 0, 6] [%b, %l, 3] [1, 1, 1] : tensor<?x?x9xf32> to tensor<?x?x3xf32>
    %y0 = tensor.extract_slice %y[0, 0, 0] [%b, %l, 3] [1, 1, 1] : tensor<?x?x7xf32> to tensor<?x?x3xf32>
    %y1 = tensor.extract_slice %y[0, 0, 4] [%b, %l, 3] [1, 1, 1] : tensor<?x?x7xf32> to tensor<?x?x3xf32>
    %p = arith.mulf %x0, %x1 : tensor<?x?x3xf32>
    %q = arith.mulf %p, %x2 : tensor<?x?x3xf32>
    %r = arith.mulf %y0, %y1 : tensor<?x?x3xf32>
    %s = arith.addf %q, %r : tensor<?x?x3xf32>
    %t = math.exp %x1 : tensor<?x?x3xf32>
    %u = arith.mulf %s, %t : tensor<?x?x3xf32>
    return %u : tensor<?x?x3xf32>
  }
})",
     {{2, 5, 9}, {2, 5, 7}}},
    {"conv1d_and_token_shift",
     R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<4x3xf32>) : tensor<4x3xf32>
  ml_program.global private @b(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
  func.func @forward(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
    %w = ml_program.global_load_const @w : tensor<4x3xf32>
    %b = ml_program.global_load_const @b : tensor<4xf32>
    %c = glint.conv1d %x, %w bias %b : (tensor<?x?x4xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
    %r = glint.conv1d reverse %c, %w : (tensor<?x?x4xf32>, tensor<4x3xf32>) -> tensor<?x?x4xf32>
    %s = glint.token_shift %r : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    %m = arith.mulf %s, %x : tensor<?x?x4xf32>
    return %m : tensor<?x?x4xf32>
  }
})",
     {{2, 5, 4}}},
    {"rotary",
     R"(module {
  func.func @forward(%x: tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32> {
    %a = glint.rotary %x rotary_dim 4 base 10000.0 : tensor<?x?x2x8xf32>
    %b = glint.rotary %a rotary_dim 8 base 100.0 interleaved : tensor<?x?x2x8xf32>
    %c = glint.rotary %b rotary_dim 6 base 50.0 interleaved : tensor<?x?x2x8xf32>
    %m = arith.mulf %c, %x : tensor<?x?x2x8xf32>
    return %m : tensor<?x?x2x8xf32>
  }
})",
     {{2, 5, 2, 8}}},
    {"attention_grouped_windowed",
     R"(module {
  func.func @forward(%q: tensor<?x?x4x3xf32>, %k: tensor<?x?x2x3xf32>, %v: tensor<?x?x2x5xf32>) -> tensor<?x?x4x5xf32> {
    %o = glint.attention %q, %k, %v scale 0.7 window 3 : (tensor<?x?x4x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x2x5xf32>) -> tensor<?x?x4x5xf32>
    %p = glint.attention %q, %k, %v scale 0.5 : (tensor<?x?x4x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x2x5xf32>) -> tensor<?x?x4x5xf32>
    %s = arith.mulf %o, %p : tensor<?x?x4x5xf32>
    return %s : tensor<?x?x4x5xf32>
  }
})",
     {{2, 6, 4, 3}, {2, 6, 2, 3}, {2, 6, 2, 5}}},
    {"recurrence_mamba1_factored_delta_skip",
     R"(module {
  ml_program.global private @a(#ml_program.extern : tensor<3x4xf32>) : tensor<3x4xf32>
  ml_program.global private @d(#ml_program.extern : tensor<3xf32>) : tensor<3xf32>
  func.func @forward(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>, %v: tensor<?x?x3x1xf32>, %dt: tensor<?x?x3xf32>) -> tensor<?x?x3x1xf32> {
    %a0 = ml_program.global_load_const @a : tensor<3x4xf32>
    %a = glint.act neg_exp %a0 : tensor<3x4xf32>
    %d = ml_program.global_load_const @d : tensor<3xf32>
    %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x3x1xf32>, tensor<3x4xf32>, tensor<?x?x3xf32>, tensor<3xf32>) -> tensor<?x?x3x1xf32>
    return %y : tensor<?x?x3x1xf32>
  }
})",
     {{2, 6, 1, 4}, {2, 6, 1, 4}, {2, 6, 3, 1}, {2, 6, 3}},
     0.1,
     1.0},
    {"recurrence_per_head_data_dependent_reverse",
     R"(module {
  func.func @forward(%q: tensor<?x?x2x3xf32>, %k: tensor<?x?x2x3xf32>, %v: tensor<?x?x4x2xf32>, %g: tensor<?x?x4xf32>) -> tensor<?x?x4x2xf32> {
    %y = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%g) : (tensor<?x?x2x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x4x2xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4x2xf32>
    %z = glint.recurrence q(%q) k(%k) v(%y) log_decay(%g) : (tensor<?x?x2x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x4x2xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4x2xf32>
    return %z : tensor<?x?x4x2xf32>
  }
})",
     {{2, 5, 2, 3}, {2, 5, 2, 3}, {2, 5, 4, 2}, {2, 5, 4}},
     -0.9,
     -0.1},
    {"recurrence_mamba2_static_per_head_delta",
     R"(module {
  ml_program.global private @a(#ml_program.extern : tensor<2xf32>) : tensor<2xf32>
  func.func @forward(%q: tensor<?x?x1x3xf32>, %k: tensor<?x?x1x3xf32>, %v: tensor<?x?x2x4xf32>, %dt: tensor<?x?x2xf32>) -> tensor<?x?x2x4xf32> {
    %a0 = ml_program.global_load_const @a : tensor<2xf32>
    %a = glint.act neg_exp %a0 : tensor<2xf32>
    %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) : (tensor<?x?x1x3xf32>, tensor<?x?x1x3xf32>, tensor<?x?x2x4xf32>, tensor<2xf32>, tensor<?x?x2xf32>) -> tensor<?x?x2x4xf32>
    return %y : tensor<?x?x2x4xf32>
  }
})",
     {{1, 6, 1, 3}, {1, 6, 1, 3}, {1, 6, 2, 4}, {1, 6, 2}},
     0.1,
     1.0},
    {"recurrence_per_key_bonus_rwkv6",
     R"(module {
  ml_program.global private @u(#ml_program.extern : tensor<2x3xf32>) : tensor<2x3xf32>
  func.func @forward(%q: tensor<?x?x2x3xf32>, %k: tensor<?x?x2x3xf32>, %v: tensor<?x?x2x3xf32>, %w: tensor<?x?x2x3xf32>) -> tensor<?x?x2x3xf32> {
    %u = ml_program.global_load_const @u : tensor<2x3xf32>
    %g = glint.act neg_exp %w : tensor<?x?x2x3xf32>
    %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g) bonus(%u) : (tensor<?x?x2x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x2x3xf32>, tensor<?x?x2x3xf32>, tensor<2x3xf32>) -> tensor<?x?x2x3xf32>
    return %y : tensor<?x?x2x3xf32>
  }
})",
     {{2, 5, 2, 3}, {2, 5, 2, 3}, {2, 5, 2, 3}, {2, 5, 2, 3}}},
    {"recurrence_rglru_no_query",
     R"(module {
  func.func @forward(%k: tensor<?x?x4x1xf32>, %v: tensor<?x?x4x1xf32>, %g: tensor<?x?x4xf32>) -> tensor<?x?x4x1xf32> {
    %y = glint.recurrence k(%k) v(%v) log_decay(%g) : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4x1xf32>
    return %y : tensor<?x?x4x1xf32>
  }
})",
     {{2, 6, 4, 1}, {2, 6, 4, 1}, {2, 6, 4}},
     -0.8,
     -0.05},
    {"recurrence_rwkv4_ratio_bonus",
     R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<3xf32>) : tensor<3xf32>
  ml_program.global private @u(#ml_program.extern : tensor<3x1xf32>) : tensor<3x1xf32>
  func.func @forward(%k: tensor<?x?x3x1xf32>, %v: tensor<?x?x3x1xf32>) -> tensor<?x?x3x1xf32> {
    %w0 = ml_program.global_load_const @w : tensor<3xf32>
    %w = glint.act neg_exp %w0 : tensor<3xf32>
    %u = ml_program.global_load_const @u : tensor<3x1xf32>
    %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u) : (tensor<?x?x3x1xf32>, tensor<?x?x3x1xf32>, tensor<3xf32>, tensor<3x1xf32>) -> tensor<?x?x3x1xf32>
    return %y : tensor<?x?x3x1xf32>
  }
})",
     {{2, 6, 3, 1}, {2, 6, 3, 1}},
     -2.0,
     2.0},
    {"recurrence_ratio_data_decay_reverse",
     R"(module {
  func.func @forward(%k: tensor<?x?x2x1xf32>, %v: tensor<?x?x2x3xf32>, %g: tensor<?x?x2xf32>) -> tensor<?x?x2x3xf32> {
    %y = glint.recurrence reverse normalize k(%k) v(%v) log_decay(%g) : (tensor<?x?x2x1xf32>, tensor<?x?x2x3xf32>, tensor<?x?x2xf32>) -> tensor<?x?x2x3xf32>
    return %y : tensor<?x?x2x3xf32>
  }
})",
     {{2, 6, 2, 1}, {2, 6, 2, 3}, {2, 6, 2}},
     -1.5,
     1.5},
};

INSTANTIATE_TEST_SUITE_P(Rules, OpGradient, ::testing::ValuesIn(kOpCases),
                         [](const auto &info) { return info.param.name; });

/// A model family's @forward with its embedding lookup replaced by a float
/// argument after the ids: the function of the embeddings that the gradient
/// is taken of.
OwningOpRef<ModuleOp> fromEmbeddings(ModuleOp model, ref::Array ids,
                                     ref::WeightProvider weights,
                                     ref::Array &embeddings) {
  OwningOpRef<ModuleOp> module = model.clone();
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  mlir::glint::EmbeddingOp embedding;
  forward.walk([&](mlir::glint::EmbeddingOp e) { embedding = e; });
  if (!embedding)
    return module; // An image model: its argument is already float.
  // The embeddings the ids select, computed by the evaluator.
  {
    OwningOpRef<ModuleOp> probe = model.clone();
    auto f = probe->lookupSymbol<func::FuncOp>("forward");
    mlir::glint::EmbeddingOp e;
    f.walk([&](mlir::glint::EmbeddingOp op) { e = op; });
    auto ret = cast<func::ReturnOp>(f.getBody().front().getTerminator());
    ret->setOperands({e.getResult()});
    f.setFunctionType(
        FunctionType::get(f.getContext(), f.getArgumentTypes(), {e.getType()}));
    auto out = ref::ReferenceEvaluator(*probe, weights).run("forward", {ids});
    EXPECT_TRUE(bool(out)) << llvm::toString(out.takeError());
    if (out)
      embeddings = (*out)[0];
  }
  Block &block = forward.getBody().front();
  BlockArgument arg =
      block.addArgument(embedding.getType(), embedding.getLoc());
  embedding.getResult().replaceAllUsesWith(arg);
  embedding.erase();
  forward.setFunctionType(
      FunctionType::get(forward.getContext(), block.getArgumentTypes(),
                        forward.getFunctionType().getResults()));
  return module;
}

class ModelGradient : public ::testing::TestWithParam<const char *> {};

TEST_P(ModelGradient, MatchesFiniteDifferences) {
  ImportedFixture fixture;
  ASSERT_NO_FATAL_FAILURE(importFixture(
      std::string(GLINT_SOURCE_DIR) + "/" + GetParam(), fixture));
  ModuleOp model = *fixture.model;
  ref::WeightProvider weights = ref::weightsFrom(*fixture.checkpoint);
  std::mt19937_64 rng(7);
  auto forward = model.lookupSymbol<func::FuncOp>("forward");
  auto inputType = cast<RankedTensorType>(forward.getArgumentTypes()[0]);
  std::vector<ref::Array> args;
  ref::Array embeddings;
  OwningOpRef<ModuleOp> module;
  if (inputType.getRank() == 4) {
    SmallVector<int64_t> shape(inputType.getShape());
    shape[0] = 1;
    args.push_back(randomArray(rng, shape, -1.0, 1.0));
    module = model.clone();
  } else {
    ref::Array ids(ArrayRef<int64_t>{1, 6});
    int64_t vocab = 0;
    forward.walk([&](mlir::glint::EmbeddingOp e) {
      vocab = e.getTable().getType().getDimSize(0);
    });
    ASSERT_GT(vocab, 0);
    std::uniform_int_distribution<int64_t> token(0, vocab - 1);
    for (double &id : ids.data)
      id = static_cast<double>(token(rng));
    module = fromEmbeddings(model, ids, weights, embeddings);
    args.push_back(ids); // Still read for the sizes of the sequence.
    args.push_back(embeddings);
  }
  checkAgainstFiniteDifferences(*module, weights, args, rng, /*sample=*/96);
}

INSTANTIATE_TEST_SUITE_P(
    Families, ModelGradient,
    ::testing::Values("test/fixtures/mamba_conv3",
                      "test/fixtures/mamba_conv4_untied",
                      "test/fixtures/mamba2", "test/fixtures/rwkv4",
                      "test/fixtures/rwkv6", "test/fixtures/recurrentgemma",
                      "test/fixtures/vim"),
    [](const auto &info) {
      std::string name = llvm::sys::path::filename(info.param).str();
      return name;
    });

/// An image model as a function of what its layers start from (the patch
/// embeddings with the class token and position embeddings: what
/// glint-explain's gradient methods attribute to), cut where the importer
/// traced "hidden_states.0": the gradient with respect to that argument
/// against central differences, at the embeddings of random pixels.
TEST(ModelGradient, ImageEmbeddingsMatchFiniteDifferences) {
  ImportedFixture fixture;
  ASSERT_NO_FATAL_FAILURE(importFixture(
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/vim", fixture));
  ModuleOp model = *fixture.model;
  MLIRContext *context = fixture.context.get();
  ref::WeightProvider weights = ref::weightsFrom(*fixture.checkpoint);
  std::mt19937_64 rng(11);
  auto inputType = cast<RankedTensorType>(
      model.lookupSymbol<func::FuncOp>("forward").getArgumentTypes()[0]);
  SmallVector<int64_t> shape(inputType.getShape());
  shape[0] = 1;
  ref::Array pixels = randomArray(rng, shape, -1.0, 1.0);

  // The embeddings of the pixels: the forward cut there, evaluated.
  OwningOpRef<ModuleOp> probe = model.clone();
  auto prefix = probe->lookupSymbol<func::FuncOp>("forward");
  Value cut = mlir::glint::findInputEmbeddings(prefix);
  ASSERT_TRUE(cut) << "no op traced hidden_states.0";
  ASSERT_FALSE(cut.getDefiningOp<mlir::glint::EmbeddingOp>());
  prefix.getBody().front().getTerminator()->setOperands(ValueRange{cut});
  prefix.setFunctionType(FunctionType::get(
      context, prefix.getArgumentTypes(), {cut.getType()}));
  auto embeddings = ref::ReferenceEvaluator(*probe, weights).run("forward",
                                                                 {pixels});
  ASSERT_TRUE(bool(embeddings)) << llvm::toString(embeddings.takeError());

  OwningOpRef<ModuleOp> module = model.clone();
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  Value at = mlir::glint::findInputEmbeddings(forward);
  BlockArgument argument = mlir::glint::embeddingsAsArgument(forward, at);
  EXPECT_EQ(argument.getArgNumber(), 1u);
  // What computed the embeddings from the pixels is gone.
  int64_t linears = 0;
  forward.walk([&](mlir::glint::LinearOp) { ++linears; });
  int64_t before = 0;
  model.lookupSymbol<func::FuncOp>("forward").walk(
      [&](mlir::glint::LinearOp) { ++before; });
  EXPECT_EQ(linears, before - 1) << "the patch projection should be erased";
  checkAgainstFiniteDifferences(*module, weights,
                                {pixels, (*embeddings)[0]}, rng,
                                /*sample=*/96);
}

/// An op on the path without a backward rule is an error naming it.
TEST(Differentiate, OpWithoutRuleIsNamed) {
  auto context = makeModelContext();
  auto module = parseSourceString<ModuleOp>(R"(module {
  func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
    %y = math.tanh %x : tensor<4xf32>
    return %y : tensor<4xf32>
  }
})",
                                            context.get());
  ASSERT_TRUE(module);
  std::string diagnostics;
  ScopedDiagnosticHandler handler(context.get(), [&](Diagnostic &d) {
    diagnostics += d.str();
    return success();
  });
  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  EXPECT_TRUE(failed(mlir::glint::differentiate(forward, "forward_grad")));
  EXPECT_NE(diagnostics.find("'math.tanh' op depends on the differentiated "
                             "input but has no backward rule"),
            std::string::npos)
      << diagnostics;
  EXPECT_FALSE(module->lookupSymbol("forward_grad"));
}

} // namespace

namespace {

/// glint.map_attribution against the per-channel maps (aggregate `full`)
/// combined by hand: mean_c max(0, A_c[i, j] · g[i, c] · x[j, c]).
TEST(Attribution, MatchesPerChannelMaps) {
  mlir::glint::registerGlintToAttention();
  auto context = makeModelContext();
  const char *ir = R"(module {
  ml_program.global private @w(#ml_program.extern : tensor<4x3xf32>) : tensor<4x3xf32>
  func.func @forward(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
    %y = glint.mixer label "mix" (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
    ^bb0(%v: tensor<?x?x4xf32>):
      %w = ml_program.global_load_const @w : tensor<4x3xf32>
      %c = glint.conv1d %v, %w : (tensor<?x?x4xf32>, tensor<4x3xf32>) -> tensor<?x?x4xf32>
      %m = glint.act silu %c : tensor<?x?x4xf32>
      glint.yield %m : tensor<?x?x4xf32>
    }
    return %y : tensor<?x?x4xf32>
  }
})";
  std::mt19937_64 rng(11);
  ref::WeightProvider weights = randomWeights(rng, -1.0, 1.0);
  ref::Array x = randomArray(rng, {1, 6, 4}, -1.0, 1.0);
  ref::Array g = randomArray(rng, {1, 6, 4}, -1.0, 1.0);
  auto run = [&](StringRef pipeline,
                 std::vector<ref::Array> args) -> std::vector<ref::Array> {
    auto module = parseSourceString<ModuleOp>(ir, context.get());
    EXPECT_TRUE(module);
    PassManager pm(context.get());
    EXPECT_TRUE(succeeded(parsePassPipeline(pipeline, pm)));
    EXPECT_TRUE(succeeded(pm.run(*module)));
    auto results =
        ref::ReferenceEvaluator(*module, weights).run("forward", args);
    EXPECT_TRUE(bool(results)) << llvm::toString(results.takeError());
    return results ? *results : std::vector<ref::Array>();
  };
  auto full = run("func.func(glint-to-attention{aggregate=full})", {x});
  auto attributed =
      run("func.func(glint-to-attention{attribution=true})", {x, g});
  ASSERT_EQ(full.size(), 2u);
  ASSERT_EQ(attributed.size(), 2u);
  int64_t n = 6, channels = 4;
  ref::Array expected(ArrayRef<int64_t>{1, n, n});
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double v = full[1].data[(c * n + i) * n + j] *
                   g.data[i * channels + c] * x.data[j * channels + c];
        expected.data[i * n + j] += std::max(v, 0.0) / channels;
      }
  EXPECT_LE(relativeError(attributed[1], expected), 1e-12);
  double total = 0.0;
  for (double v : expected.data)
    total += v;
  EXPECT_GT(total, 0.0);
}

} // namespace
