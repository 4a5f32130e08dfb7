//===- ConvertGlintToLinalgTest.cpp - convert-glint-to-linalg vs evaluator ===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The linalg that convert-glint-to-linalg emits must compute what the glint
// ops mean. Each module runs twice through the reference evaluator: as
// written, and after glint-inline-mixers + convert-glint-to-linalg +
// canonicalize, on the same fresh random inputs and weights; the results must
// agree to 1e-12 relative error. The evaluator poisons every tensor.empty with
// NaN and rejects non-finite results, so an element the lowering forgets to
// write fails the test.
//
// Covered: every op form on small hand-written functions (each activation,
// each norm with and without weight, bias and offset, the four linear
// layouts, conv1d of widths 1, 3, 4 in both directions with and without bias
// and state, token shift with state, rotary in both styles with an offset,
// attention with windows and grouped heads), and every example model; each
// with batch 2 and sequence lengths 1 and 7.
//
// Element types: the 1e-12 comparison runs every module with f64 tensors (the
// examples are rewritten from f32), because the lowering writes the op's f64
// attributes (epsilon, scale, the GeLU and rotary constants) as constants of
// the element type, which the evaluator then reads back rounded. The same
// modules also run in f32, where that rounding bounds the agreement
// (kF32Tolerance), to cover the element type the models use.
//
//===----------------------------------------------------------------------===//

#include "reference/ReferenceEvaluator.h"

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

using namespace mlir;
using namespace mlir::glint::reference;
using mlir::glint::testing::relativeError;
using llvm::Expected;

namespace {

/// Both sides run in double: only differently associated sums may differ.
constexpr double kTolerance = 1e-12;
/// In f32 the lowered IR holds the op's f64 attributes rounded to f32 (a
/// relative change of at most 2^-24 each), which the evaluator reproduces.
constexpr double kF32Tolerance = 1e-6;


/// `text` with every `from` replaced by `to`.
std::string replaceAll(std::string text, StringRef from, StringRef to) {
  for (size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to.str());
  return text;
}

/// The largest errors seen, per element type, reported once at the end.
struct ErrorSummary {
  double f64 = 0.0, f32 = 0.0;
  int comparisons = 0;
  ~ErrorSummary() {
    if (comparisons)
      std::printf("[convert-glint-to-linalg] %d comparisons; max relative "
                  "error f64 %.3g, f32 %.3g\n",
                  comparisons, f64, f32);
  }
};
ErrorSummary summary;

class ConvertGlintToLinalgTest : public ::testing::Test {
protected:
  ConvertGlintToLinalgTest() : seed(std::random_device{}()), rng(seed) {
    context.loadDialect<glint::GlintDialect, arith::ArithDialect,
                        func::FuncDialect, linalg::LinalgDialect,
                        math::MathDialect, ml_program::MLProgramDialect,
                        scf::SCFDialect, tensor::TensorDialect>();
  }

  Array random(ArrayRef<int64_t> shape, double range) {
    return mlir::glint::testing::randomArray(rng, shape, -range, range);
  }

  /// Fresh inputs for @`name`: dynamic dim 0 is the batch (2), any other
  /// dynamic dim the sequence (`len`); floats uniform in ±`range`, token ids
  /// in the vocabulary of the embedding they feed, `index` offsets in [0, 50).
  std::vector<Array> inputsFor(ModuleOp module, StringRef name, int64_t len,
                               double range) {
    auto fn = module.lookupSymbol<func::FuncOp>(name);
    std::vector<Array> inputs;
    for (BlockArgument arg : fn.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (!type) {
        std::uniform_int_distribution<int> offset(0, 49);
        inputs.push_back(Array::scalar(offset(rng)));
        continue;
      }
      SmallVector<int64_t> shape;
      for (auto [d, size] : llvm::enumerate(type.getShape()))
        shape.push_back(ShapedType::isDynamic(size) ? (d == 0 ? 2 : len)
                                                    : size);
      if (isa<FloatType>(type.getElementType())) {
        inputs.push_back(random(shape, range));
        continue;
      }
      int64_t vocab = 1;
      for (Operation *user : arg.getUsers())
        if (auto embedding = dyn_cast<glint::EmbeddingOp>(user))
          vocab = embedding.getTable().getType().getDimSize(0);
      Array ids(shape);
      std::uniform_int_distribution<int64_t> id(0, vocab - 1);
      for (double &x : ids.data)
        x = static_cast<double>(id(rng));
      inputs.push_back(ids);
    }
    return inputs;
  }

  /// Parses `source`, lowers a copy, checks that only glint.recurrence is
  /// left, runs @`name` of both on the same inputs and weights, and compares
  /// every result.
  void checkLowering(StringRef source, StringRef name, int64_t len, bool isF64,
                     double range = 1.0) {
    SCOPED_TRACE(llvm::formatv("seed {0}, L = {1}, {2}", seed, len,
                               isF64 ? "f64" : "f32")
                     .str());
    std::string diagnostics;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return success();
    });
    OwningOpRef<ModuleOp> original =
        parseSourceString<ModuleOp>(source, ParserConfig(&context));
    ASSERT_TRUE(original) << diagnostics;
    OwningOpRef<ModuleOp> lowered =
        parseSourceString<ModuleOp>(source, ParserConfig(&context));
    ASSERT_TRUE(lowered) << diagnostics;

    PassManager pm(&context);
    pm.addPass(glint::createGlintInlineMixers());
    pm.addNestedPass<func::FuncOp>(glint::createConvertGlintToLinalg());
    pm.addPass(createCanonicalizerPass());
    ASSERT_TRUE(succeeded(pm.run(*lowered))) << diagnostics;
    std::string leftover;
    lowered->walk([&](Operation *op) {
      if (isa<glint::GlintDialect>(op->getDialect()) &&
          !isa<glint::RecurrenceOp>(op))
        leftover += op->getName().getStringRef().str() + " ";
    });
    ASSERT_TRUE(leftover.empty()) << "glint ops left: " << leftover;

    llvm::StringMap<Array> store;
    WeightProvider weights = [&](StringRef weight, ArrayRef<int64_t> shape) {
      auto it = store.find(weight);
      if (it == store.end())
        it = store.insert({weight, random(shape, 0.3)}).first;
      return Expected<Array>(it->second);
    };
    std::vector<Array> inputs = inputsFor(*original, name, len, range);
    ReferenceEvaluator reference(*original, weights);
    auto expected = reference.run(name, inputs);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    ReferenceEvaluator evaluator(*lowered, weights);
    auto actual = evaluator.run(name, inputs);
    ASSERT_TRUE(bool(actual)) << llvm::toString(actual.takeError());
    ASSERT_EQ(actual->size(), expected->size());
    for (size_t i = 0; i < actual->size(); ++i) {
      double error = relativeError((*actual)[i], (*expected)[i]);
      EXPECT_LE(error, isF64 ? kTolerance : kF32Tolerance) << "result #" << i;
      double &worst = isF64 ? summary.f64 : summary.f32;
      worst = std::max(worst, error);
      ++summary.comparisons;
    }
  }

  MLIRContext context;
  unsigned seed;
  std::mt19937_64 rng;
};

//===----------------------------------------------------------------------===//
// Every op form on a small function @f
//===----------------------------------------------------------------------===//

/// One function @f written with the element type `FT`.
struct OpCase {
  std::string name;
  std::string source;
  /// Inputs are uniform in ±range.
  double range = 1.0;
};

void PrintTo(const OpCase &c, std::ostream *os) { *os << c.name; }

/// `func.func @f(args) -> (results) { body; return values }`.
std::string function(StringRef args, StringRef results, StringRef body,
                     StringRef values) {
  return llvm::formatv("func.func @f({0}) -> ({1}) {{\n{2}\n  return {3} : "
                       "{1}\n}",
                       args, results, body, values)
      .str();
}

std::vector<OpCase> activationCases() {
  std::vector<OpCase> cases;
  for (StringRef kind : {"silu", "sigmoid", "gelu", "gelu_tanh", "softplus",
                         "relu", "relu_square", "tanh", "exp", "neg_exp"}) {
    std::string t = "tensor<?x?x5xFT>";
    cases.push_back(
        {("act_" + kind).str(),
         function("%x: " + t, t,
                  ("  %y = glint.act " + kind + " %x : " + t).str(), "%y"),
         /*range=*/6.0});
  }
  // Rank 1 and rank 4 inputs.
  cases.push_back({"act_silu_rank1",
                   function("%x: tensor<9xFT>", "tensor<9xFT>",
                            "  %y = glint.act silu %x : tensor<9xFT>", "%y"),
                   6.0});
  cases.push_back(
      {"act_gelu_rank4",
       function("%x: tensor<?x?x2x3xFT>", "tensor<?x?x2x3xFT>",
                "  %y = glint.act gelu %x : tensor<?x?x2x3xFT>", "%y"),
       6.0});
  return cases;
}

std::vector<OpCase> normCases() {
  std::vector<OpCase> cases;
  std::string t = "tensor<?x?x8xFT>", w = "tensor<8xFT>";
  auto norm = [&](StringRef name, StringRef op, bool weight, bool bias,
                  StringRef extra, StringRef type = "tensor<?x?x8xFT>") {
    std::string args = ("%x: " + type).str(), operands, types = type.str();
    if (weight) {
      args += ", %w: " + w;
      operands += " weight %w";
      types += ", " + w;
    }
    if (bias) {
      args += ", %b: " + w;
      operands += " bias %b";
      types += ", " + w;
    }
    // group_norm takes its group count before the affine operands.
    std::string groups;
    if (extra.starts_with("groups")) {
      size_t split = extra.find(" epsilon");
      groups = " " + extra.substr(0, split).str();
      extra = extra.substr(split + 1);
    }
    std::string body = llvm::formatv("  %y = glint.{0} %x{1}{2} {3} : ({4}) "
                                     "-> {5}",
                                     op, groups, operands, extra, types, type);
    // A large mean makes the two-pass variance matter.
    cases.push_back({name.str(), function(args, type, body, "%y"), 3.0});
  };
  norm("rms_norm", "rms_norm", false, false, "epsilon 1.0e-05");
  norm("rms_norm_weight", "rms_norm", true, false, "epsilon 1.0e-06");
  norm("rms_norm_weight_offset", "rms_norm", true, false,
       "epsilon 1.0e-06 {weight_offset = 1.0 : f64}");
  norm("rms_norm_per_head", "rms_norm", false, false, "epsilon 0.01",
       "tensor<?x?x2x4xFT>");
  norm("layer_norm", "layer_norm", false, false, "epsilon 1.0e-05");
  norm("layer_norm_weight", "layer_norm", true, false, "epsilon 1.0e-05");
  norm("layer_norm_bias", "layer_norm", false, true, "epsilon 1.0e-05");
  norm("layer_norm_weight_bias", "layer_norm", true, true, "epsilon 0.1");
  norm("group_norm", "group_norm", false, false, "groups 2 epsilon 1.0e-05");
  norm("group_norm_weight_bias", "group_norm", true, true,
       "groups 4 epsilon 6.4e-04");
  norm("group_norm_weight", "group_norm", true, false,
       "groups 8 epsilon 1.0e-05");
  norm("group_norm_one_group_bias", "group_norm", false, true,
       "groups 1 epsilon 1.0e-05");
  // Dynamic channels (the test makes them L): the count is computed.
  norm("layer_norm_dynamic_channels", "layer_norm", false, false,
       "epsilon 1.0e-05", "tensor<?x?x?xFT>");
  norm("group_norm_dynamic_channels", "group_norm", false, false,
       "groups 1 epsilon 1.0e-05", "tensor<?x?x?xFT>");
  // Static shapes (no batch or sequence).
  cases.push_back(
      {"layer_norm_static",
       function("%x: tensor<3x6xFT>, %w: tensor<6xFT>", "tensor<3x6xFT>",
                "  %y = glint.layer_norm %x weight %w epsilon 1.0e-05 : "
                "(tensor<3x6xFT>, tensor<6xFT>) -> tensor<3x6xFT>",
                "%y")});
  return cases;
}

std::vector<OpCase> linearCases() {
  auto linear = [](StringRef name, StringRef in, StringRef weight,
                   StringRef out, StringRef bias, StringRef layout) {
    std::string args = ("%x: " + in + ", %w: " + weight).str();
    std::string types = (in + ", " + weight).str(), operands = "%x, %w";
    if (!bias.empty()) {
      args += (", %b: " + bias).str();
      types += (", " + bias).str();
      operands += " bias %b";
    }
    if (!layout.empty())
      operands += (" layout " + layout).str();
    return OpCase{name.str(),
                  function(args, out,
                           llvm::formatv("  %y = glint.linear {0} : ({1}) -> "
                                         "{2}",
                                         operands, types, out)
                               .str(),
                           "%y")};
  };
  return {
      linear("linear_out_in_bias", "tensor<?x?x6xFT>", "tensor<5x6xFT>",
             "tensor<?x?x5xFT>", "tensor<5xFT>", ""),
      linear("linear_out_in", "tensor<?x?x6xFT>", "tensor<5x6xFT>",
             "tensor<?x?x5xFT>", "", "out_in"),
      linear("linear_in_out", "tensor<?x?x6xFT>", "tensor<6x5xFT>",
             "tensor<?x?x5xFT>", "", "in_out"),
      linear("linear_in_out_bias", "tensor<?x?x6xFT>", "tensor<6x5xFT>",
             "tensor<?x?x5xFT>", "tensor<5xFT>", "in_out"),
      // Block-diagonal: [N, O/N, I/N] and [N, I/N, O/N].
      linear("linear_blocks_out_in_bias", "tensor<?x?x6xFT>",
             "tensor<2x3x3xFT>", "tensor<?x?x6xFT>", "tensor<6xFT>", ""),
      linear("linear_blocks_in_out", "tensor<?x?x6xFT>", "tensor<3x2x4xFT>",
             "tensor<?x?x12xFT>", "", "in_out"),
      linear("linear_blocks_in_out_bias", "tensor<?x?x6xFT>",
             "tensor<3x2x4xFT>", "tensor<?x?x12xFT>", "tensor<12xFT>",
             "in_out"),
      linear("linear_blocks_out_in", "tensor<?x?x8xFT>", "tensor<4x1x2xFT>",
             "tensor<?x?x4xFT>", "", "out_in"),
      // Other input ranks, and a static result from a dynamic input.
      linear("linear_rank1", "tensor<6xFT>", "tensor<5x6xFT>", "tensor<5xFT>",
             "tensor<5xFT>", ""),
      linear("linear_rank2", "tensor<?x6xFT>", "tensor<6x5xFT>",
             "tensor<?x5xFT>", "", "in_out"),
      linear("linear_rank4", "tensor<?x?x2x6xFT>", "tensor<5x6xFT>",
             "tensor<?x?x2x5xFT>", "tensor<5xFT>", ""),
      linear("linear_static_result", "tensor<?x?x6xFT>", "tensor<2x3x3xFT>",
             "tensor<2x?x6xFT>", "", ""),
  };
}

std::vector<OpCase> conv1dCases() {
  std::vector<OpCase> cases;
  for (int64_t width : {1, 3, 4})
    for (bool reverse : {false, true})
      for (bool bias : {false, true})
        for (int state = 0; state < 3; ++state) {
          // state: 0 none, 1 initial and final, 2 only the final state.
          std::string x = "tensor<?x?x5xFT>";
          std::string w = llvm::formatv("tensor<5x{0}xFT>", width);
          std::string s = llvm::formatv("tensor<?x{0}x5xFT>", width - 1);
          std::string args = "%x: " + x + ", %w: " + w, types = x + ", " + w;
          std::string operands = "%x, %w";
          if (bias) {
            args += ", %b: tensor<5xFT>";
            types += ", tensor<5xFT>";
            operands += " bias %b";
          }
          if (state == 1) {
            args += ", %s: " + s;
            types += ", " + s;
            operands += " initial_state(%s)";
          }
          std::string results = state ? x + ", " + s : x;
          std::string body =
              llvm::formatv("  {0} = glint.conv1d {1}{2} : ({3}) -> ({4})",
                            state ? "%y, %f" : "%y", reverse ? "reverse " : "",
                            operands, types, results);
          cases.push_back(
              {llvm::formatv("conv1d_w{0}{1}{2}{3}", width,
                             reverse ? "_reverse" : "", bias ? "_bias" : "",
                             state == 1   ? "_state"
                             : state == 2 ? "_final_state"
                                          : "")
                   .str(),
               function(args, results, body, state ? "%y, %f" : "%y")});
        }
  return cases;
}

std::vector<OpCase> tokenShiftCases() {
  std::string x = "tensor<?x?x6xFT>", s = "tensor<?x6xFT>";
  return {
      {"token_shift",
       function("%x: " + x, x,
                "  %y = glint.token_shift %x : (" + x + ") -> " + x, "%y")},
      {"token_shift_state",
       function("%x: " + x + ", %s: " + s, x + ", " + s,
                "  %y, %f = glint.token_shift %x initial_state(%s) : (" + x +
                    ", " + s + ") -> (" + x + ", " + s + ")",
                "%y, %f")},
      {"token_shift_final_state",
       function("%x: " + x, x + ", " + s,
                "  %y, %f = glint.token_shift %x : (" + x + ") -> (" + x +
                    ", " + s + ")",
                "%y, %f")},
  };
}

std::vector<OpCase> rotaryCases() {
  auto rotary = [](StringRef name, int64_t rotaryDim, bool interleaved,
                   bool offset) {
    std::string t = "tensor<?x?x2x8xFT>";
    std::string args = "%x: " + t + (offset ? ", %o: index" : "");
    std::string body = llvm::formatv(
        "  %y = glint.rotary %x {0}rotary_dim {1} base 10000.0{2} : {3}",
        offset ? "offset(%o) " : "", rotaryDim,
        interleaved ? " interleaved" : "", t);
    return OpCase{name.str(), function(args, t, body, "%y")};
  };
  return {
      rotary("rotary_half", 8, false, false),
      rotary("rotary_half_partial_offset", 4, false, true),
      rotary("rotary_interleaved_offset", 8, true, true),
      rotary("rotary_interleaved_partial", 6, true, false),
      rotary("rotary_half_partial_offset_base", 2, false, true),
  };
}

/// Windowed attention continuing from a cache, returning the final caches.
/// `position` < 0 makes it an argument (random in [0, 50)).
OpCase cachedAttention(StringRef name, int64_t heads, int64_t groups,
                       int64_t window, int64_t position = -1) {
  std::string q = llvm::formatv("tensor<?x?x{0}x3xFT>", heads);
  std::string k = llvm::formatv("tensor<?x?x{0}x3xFT>", groups);
  std::string v = llvm::formatv("tensor<?x?x{0}x5xFT>", groups);
  std::string o = llvm::formatv("tensor<?x?x{0}x5xFT>", heads);
  std::string kc = llvm::formatv("tensor<?x{0}x{1}x3xFT>", window - 1, groups);
  std::string vc = llvm::formatv("tensor<?x{0}x{1}x5xFT>", window - 1, groups);
  std::string body =
      position < 0
          ? ""
          : llvm::formatv("  %p = arith.constant {0} : index\n", position)
                .str();
  body +=
      llvm::formatv(
          "  %o, %kf, %vf = glint.attention %q, %k, %v scale 0.6 window {0} "
          "cache(%kc, %vc) position(%p) : ({1}, {2}, {3}, {4}, {5}, index) -> "
          "({6}, {4}, {5})",
          window, q, k, v, kc, vc, o)
          .str();
  return OpCase{name.str(),
                function("%q: " + q + ", %k: " + k + ", %v: " + v +
                             ", %kc: " + kc + ", %vc: " + vc +
                             (position < 0 ? ", %p: index" : ""),
                         o + ", " + kc + ", " + vc, body, "%o, %kf, %vf"),
                /*range=*/3.0};
}

std::vector<OpCase> attentionCases() {
  auto attention = [](StringRef name, int64_t heads, int64_t groups,
                      StringRef scale, StringRef window) {
    std::string q = llvm::formatv("tensor<?x?x{0}x3xFT>", heads);
    std::string k = llvm::formatv("tensor<?x?x{0}x3xFT>", groups);
    std::string v = llvm::formatv("tensor<?x?x{0}x5xFT>", groups);
    std::string o = llvm::formatv("tensor<?x?x{0}x5xFT>", heads);
    std::string body = llvm::formatv(
        "  %o = glint.attention %q, %k, %v scale {0}{1} : ({2}, {3}, {4}) -> "
        "{5}",
        scale, window.empty() ? "" : (" window " + window).str(), q, k, v, o);
    return OpCase{
        name.str(),
        function("%q: " + q + ", %k: " + k + ", %v: " + v, o, body, "%o"),
        /*range=*/3.0};
  };
  return {
      attention("attention_grouped", 4, 2, "0.57735026918962584", ""),
      attention("attention_grouped_window", 4, 2, "0.7", "3"),
      attention("attention_multi_query_window", 4, 1, "0.25", "1"),
      attention("attention_per_head", 2, 2, "1.5", "2"),
      attention("attention_window_covers_all", 3, 1, "0.5", "16"),
      // With a key/value cache of window - 1 rows and a random position in
      // [0, 50): before and after the cache is full of sequence rows.
      cachedAttention("attention_cache_grouped", 4, 2, 3),
      cachedAttention("attention_cache_multi_query", 2, 1, 5),
      cachedAttention("attention_cache_window_1", 2, 2, 1),
      // Early in a sequence: only the last `position` cache rows are real.
      cachedAttention("attention_cache_start", 2, 1, 4, 0),
      cachedAttention("attention_cache_partly_filled", 4, 2, 5, 2),
      // Dynamic heads (the test makes them L): the group split is computed.
      {"attention_dynamic_heads",
       function("%q: tensor<?x?x?x3xFT>, %k: tensor<?x?x?x3xFT>, "
                "%v: tensor<?x?x?x2xFT>",
                "tensor<?x?x?x2xFT>",
                "  %o = glint.attention %q, %k, %v scale 0.5 window 2 : "
                "(tensor<?x?x?x3xFT>, tensor<?x?x?x3xFT>, tensor<?x?x?x2xFT>) "
                "-> tensor<?x?x?x2xFT>",
                "%o")},
  };
}

std::vector<OpCase> embeddingCases() {
  auto embedding = [](StringRef name, StringRef idType) {
    std::string ids = ("tensor<?x?x" + idType + ">").str();
    return OpCase{name.str(),
                  function("%ids: " + ids + ", %t: tensor<10x4xFT>",
                           "tensor<?x?x4xFT>",
                           "  %h = glint.embedding %ids, %t : (" + ids +
                               ", tensor<10x4xFT>) -> tensor<?x?x4xFT>",
                           "%h")};
  };
  return {embedding("embedding_i64", "i64"), embedding("embedding_i32", "i32"),
          embedding("embedding_index", "index")};
}

/// A layer mixing several ops inside a mixer, as the models write them.
std::vector<OpCase> compositeCases() {
  return {{"mixer_conv_act_linear_norm", R"mlir(
func.func @f(%x: tensor<?x?x4xFT>, %w: tensor<4x3xFT>, %p: tensor<8x4xFT>,
             %g: tensor<8xFT>) -> tensor<?x?x8xFT> {
  %y = glint.mixer (%x) : tensor<?x?x4xFT> -> tensor<?x?x4xFT> {
  ^bb0(%v: tensor<?x?x4xFT>):
    %c = glint.conv1d %v, %w : (tensor<?x?x4xFT>, tensor<4x3xFT>) -> tensor<?x?x4xFT>
    %a = glint.act silu %c : tensor<?x?x4xFT>
    %s = glint.token_shift %a : (tensor<?x?x4xFT>) -> tensor<?x?x4xFT>
    %m = arith.mulf %a, %s : tensor<?x?x4xFT>
    glint.yield %m : tensor<?x?x4xFT>
  }
  %l = glint.linear %y, %p : (tensor<?x?x4xFT>, tensor<8x4xFT>) -> tensor<?x?x8xFT>
  %n = glint.rms_norm %l weight %g epsilon 1.0e-05 : (tensor<?x?x8xFT>, tensor<8xFT>) -> tensor<?x?x8xFT>
  return %n : tensor<?x?x8xFT>
})mlir"}};
}

std::vector<OpCase> allOpCases() {
  std::vector<OpCase> all;
  for (auto cases : {activationCases(), normCases(), linearCases(),
                     conv1dCases(), tokenShiftCases(), rotaryCases(),
                     attentionCases(), embeddingCases(), compositeCases()})
    all.insert(all.end(), cases.begin(), cases.end());
  return all;
}

class LinalgOpForms
    : public ConvertGlintToLinalgTest,
      public ::testing::WithParamInterface<std::tuple<OpCase, int64_t, bool>> {
};

TEST_P(LinalgOpForms, LoweredMatchesReference) {
  const auto &[c, len, isF64] = GetParam();
  checkLowering(replaceAll(c.source, "FT", isF64 ? "f64" : "f32"), "f", len,
                isF64, c.range);
}

INSTANTIATE_TEST_SUITE_P(Linalg, LinalgOpForms,
                         ::testing::Combine(::testing::ValuesIn(allOpCases()),
                                            ::testing::Values(1, 7),
                                            ::testing::Bool()),
                         [](const auto &info) {
                           return std::get<0>(info.param).name + "_L" +
                                  std::to_string(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) ? "_f64" : "_f32");
                         });

//===----------------------------------------------------------------------===//
// The example models
//===----------------------------------------------------------------------===//

class LinalgExamples : public ConvertGlintToLinalgTest,
                       public ::testing::WithParamInterface<
                           std::tuple<const char *, int64_t, bool>> {};

TEST_P(LinalgExamples, LoweredMatchesReference) {
  const auto &[model, len, isF64] = GetParam();
  std::string path =
      std::string(GLINT_SOURCE_DIR) + "/examples/" + model + ".mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << path;
  std::string source = (*buffer)->getBuffer().str();
  if (isF64)
    source = replaceAll(source, "f32", "f64");
  checkLowering(source, "forward", len, isF64);
}

INSTANTIATE_TEST_SUITE_P(
    Linalg, LinalgExamples,
    ::testing::Combine(::testing::Values("mamba1", "vim_bidirectional",
                                         "mamba2", "rwkv4", "rwkv6", "griffin",
                                         "gla", "retnet", "hgrn2"),
                       ::testing::Values(1, 7), ::testing::Bool()),
    [](const auto &info) {
      return std::string(std::get<0>(info.param)) + "_L" +
             std::to_string(std::get<1>(info.param)) +
             (std::get<2>(info.param) ? "_f64" : "_f32");
    });

} // namespace
