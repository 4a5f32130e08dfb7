//===- LowerRecurrenceTest.cpp - glint-lower-recurrence vs the evaluator --===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The loops glint-lower-recurrence emits must compute what glint.recurrence
// means. The reference evaluator runs both the op (its naive double-precision
// semantics) and the lowered scf/tensor/linalg IR, on fresh random inputs;
// the two must agree to 1e-12 relative error. The evaluator poisons every
// tensor.empty with NaN and rejects non-finite results, so an output element
// or state entry the loops forget to write fails the test.
//
// Covered: the model families one by one (named cases), every combination of
// the op's features on small shapes (one sweep), and every example model
// after glint-inline-mixers + glint-lower-recurrence; each in the sequential
// form and in the time-chunked form (time-chunk=3: several chunks, the last
// one shorter).
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
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>

using namespace mlir;
using namespace mlir::glint::reference;
using mlir::glint::testing::relativeError;
using llvm::Expected;

namespace {

/// The tolerance of every comparison: both sides run in double precision,
/// so only the rounding of differently associated sums may differ.
constexpr double kTolerance = 1e-12;


class LowerRecurrenceTest : public ::testing::Test {
protected:
  LowerRecurrenceTest() : seed(initialSeed()), rng(seed) {
    context.loadDialect<glint::GlintDialect, arith::ArithDialect,
                        func::FuncDialect, linalg::LinalgDialect,
                        math::MathDialect, ml_program::MLProgramDialect,
                        scf::SCFDialect, tensor::TensorDialect>();
  }

  /// Reports the largest error the test saw (in the XML output).
  void TearDown() override {
    RecordProperty("max_relative_error",
                   llvm::formatv("{0:e}", maxError).str());
  }

  /// A fresh seed, or GLINT_TEST_SEED to replay a failure.
  static unsigned initialSeed() {
    if (const char *fixed = std::getenv("GLINT_TEST_SEED"))
      return static_cast<unsigned>(std::strtoul(fixed, nullptr, 10));
    return std::random_device{}();
  }

  Array random(ArrayRef<int64_t> shape, double lo = -1.0, double hi = 1.0) {
    return mlir::glint::testing::randomArray(rng, shape, lo, hi);
  }

  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, ParserConfig(&context));
  }

  /// A copy of `module` after glint-lower-recurrence (preceded by
  /// glint-inline-mixers for whole models), or null with a test failure.
  OwningOpRef<ModuleOp> lower(ModuleOp module, bool inlineMixers) {
    OwningOpRef<ModuleOp> copy = module.clone();
    PassManager pm(&context);
    if (inlineMixers)
      pm.addPass(glint::createGlintInlineMixers());
    glint::GlintLowerRecurrenceOptions options;
    options.timeChunk = timeChunk;
    pm.addNestedPass<func::FuncOp>(glint::createGlintLowerRecurrence(options));
    std::string diagnostics;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return success();
    });
    if (failed(pm.run(*copy))) {
      ADD_FAILURE() << "glint-lower-recurrence failed:\n" << diagnostics;
      return nullptr;
    }
    return copy;
  }

  static int64_t count(ModuleOp module, StringRef opName) {
    int64_t n = 0;
    module.walk([&](Operation *op) {
      if (op->getName().getStringRef() == opName)
        ++n;
    });
    return n;
  }

  /// Runs @`function` of both modules on `args` and expects every result to
  /// agree within kTolerance.
  void expectSameResults(ModuleOp original, ModuleOp lowered,
                         StringRef function, ArrayRef<Array> args,
                         const WeightProvider &weights) {
    ReferenceEvaluator expectedEvaluator(original, weights);
    ReferenceEvaluator actualEvaluator(lowered, weights);
    auto expected = expectedEvaluator.run(function, args);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    auto actual = actualEvaluator.run(function, args);
    ASSERT_TRUE(bool(actual)) << llvm::toString(actual.takeError());
    ASSERT_EQ(actual->size(), expected->size());
    for (size_t i = 0; i < expected->size(); ++i) {
      double error = relativeError((*actual)[i], (*expected)[i]);
      maxError = std::max(maxError, error);
      EXPECT_LE(error, kTolerance) << "result #" << i;
    }
  }

  MLIRContext context;
  unsigned seed;
  std::mt19937_64 rng;
  double maxError = 0.0;
  /// glint-lower-recurrence's time-chunk option (0: the sequential form).
  int64_t timeChunk = 0;
};

//===----------------------------------------------------------------------===//
// One recurrence against its lowering
//===----------------------------------------------------------------------===//

/// Optional parts of a recurrence.
enum Feature : unsigned {
  Query = 1u << 0,
  Delta = 1u << 1,
  Bonus = 1u << 2,
  Skip = 1u << 3,
  Reverse = 1u << 4,
  Normalize = 1u << 5,
  InitialState = 1u << 6,
  FinalState = 1u << 7,
  /// Batch and sequence length are `?` in the IR.
  DynamicSizes = 1u << 8,
  /// Heads and key groups are `?` too (the group index is computed).
  DynamicHeads = 1u << 9,
};

struct RecurrenceCase {
  std::string name;
  int64_t batch, len, heads, groups, key, value;
  /// 1: [H], 2: [H, K], 3: [B, L, H], 4: [B, L, H, K].
  int decayRank;
  unsigned features;

  bool has(Feature f) const { return (features & f) != 0; }
};

void PrintTo(const RecurrenceCase &c, std::ostream *os) { *os << c.name; }

/// The function @f holding just the recurrence of `c`, and random inputs for
/// it.
class RecurrenceBuilder {
public:
  RecurrenceBuilder(
      const RecurrenceCase &c,
      std::function<Array(ArrayRef<int64_t>, double, double)> random)
      : c(c), random(std::move(random)) {}

  std::string source;
  std::vector<Array> inputs;

  void build() {
    const int64_t B = c.batch, L = c.len, H = c.heads, G = c.groups, K = c.key,
                  V = c.value;
    int64_t stateValue = c.has(Normalize) ? V + 2 : V;
    bool normalize = c.has(Normalize);
    // Keys are log-weights in the ratio form: a wide range exercises the
    // max-stabilised exponentials.
    double keyLo = normalize ? -30.0 : -1.0, keyHi = normalize ? 60.0 : 1.0;
    if (c.has(Query))
      add("q", "q", random({B, L, G, K}, -1.0, 1.0), {'B', 'L', 'G', 'K'});
    add("k", "k", random({B, L, G, K}, keyLo, keyHi), {'B', 'L', 'G', 'K'});
    add("v", "v", random({B, L, H, V}, -1.0, 1.0), {'B', 'L', 'H', 'V'});
    static const SmallVector<SmallVector<char>> decayAxes = {
        {'H'}, {'H', 'K'}, {'B', 'L', 'H'}, {'B', 'L', 'H', 'K'}};
    ArrayRef<char> axes = decayAxes[c.decayRank - 1];
    add("g", "log_decay", random(shapeOf(axes), -1.0, -0.01), axes);
    if (c.has(Delta))
      add("dt", "delta", random({B, L, H}, 0.05, 1.0), {'B', 'L', 'H'});
    if (c.has(Bonus))
      add("u", "bonus", random({H, K}, -1.0, normalize ? 3.0 : 1.0),
          {'H', 'K'});
    if (c.has(Skip))
      add("d", "skip", random({H}, -1.0, 1.0), {'H'});
    if (c.has(InitialState)) {
      Array s0 = random({B, H, K, stateValue}, -1.0, 1.0);
      if (normalize) {
        // [numerator (V), denominator > 0, running max].
        for (int64_t i = 0; i < B * H * K; ++i) {
          s0.data[i * stateValue + V] =
              0.5 + std::fabs(s0.data[i * stateValue + V]);
          s0.data[i * stateValue + V + 1] *= 3.0;
        }
      }
      add("s0", "initial_state", s0, {'B', 'H', 'K', 'S'});
    }

    std::string outType = typeOf({'B', 'L', 'H', 'V'});
    std::string resultTypes = outType, results = "%y";
    if (c.has(FinalState)) {
      resultTypes = "(" + outType + ", " + typeOf({'B', 'H', 'K', 'S'}) + ")";
      results = "%y, %s";
    }
    std::string returnTypes = resultTypes;
    if (c.has(FinalState))
      returnTypes = resultTypes.substr(1, resultTypes.size() - 2);
    source = llvm::formatv("func.func @f({0}) -> {1} {{\n"
                           "  {2} = glint.recurrence {3}{4}{5}: ({6}) -> {1}\n"
                           "  return {2} : {7}\n}",
                           arguments, resultTypes, results,
                           c.has(Reverse) ? "reverse " : "",
                           normalize ? "normalize " : "", operands, types,
                           returnTypes)
                 .str();
  }

private:
  /// The run-time size of an axis.
  int64_t sizeOf(char axis) const {
    switch (axis) {
    case 'B':
      return c.batch;
    case 'L':
      return c.len;
    case 'H':
      return c.heads;
    case 'G':
      return c.groups;
    case 'K':
      return c.key;
    case 'V':
      return c.value;
    default: // the state's last axis
      return c.has(Normalize) ? c.value + 2 : c.value;
    }
  }
  SmallVector<int64_t> shapeOf(ArrayRef<char> axes) const {
    SmallVector<int64_t> shape;
    for (char a : axes)
      shape.push_back(sizeOf(a));
    return shape;
  }
  /// The IR type of a tensor with these axes; dynamic where the case asks.
  std::string typeOf(ArrayRef<char> axes) const {
    std::string s = "tensor<";
    for (char a : axes) {
      bool dynamic = ((a == 'B' || a == 'L') && c.has(DynamicSizes)) ||
                     ((a == 'H' || a == 'G') && c.has(DynamicHeads));
      s += (dynamic ? std::string("?") : std::to_string(sizeOf(a))) + "x";
    }
    return s + "f32>";
  }
  void add(StringRef name, StringRef role, Array array, ArrayRef<char> axes) {
    arguments += (arguments.empty() ? "" : ", ") + ("%" + name).str() + ": " +
                 typeOf(axes);
    operands += (role + "(%" + name + ") ").str();
    types += (types.empty() ? "" : ", ") + typeOf(axes);
    inputs.push_back(std::move(array));
  }

  const RecurrenceCase &c;
  std::function<Array(ArrayRef<int64_t>, double, double)> random;
  std::string arguments, operands, types;
};

class LowerRecurrenceCaseTest : public LowerRecurrenceTest {
protected:
  /// Lowers the recurrence of `c` and compares it with the op on random
  /// inputs.
  void check(const RecurrenceCase &c) {
    SCOPED_TRACE(llvm::formatv("case {0}, seed {1}", c.name, seed).str());
    RecurrenceBuilder builder(
        c, [this](ArrayRef<int64_t> shape, double lo, double hi) {
          return random(shape, lo, hi);
        });
    builder.build();
    OwningOpRef<ModuleOp> module = parse(builder.source);
    ASSERT_TRUE(module) << builder.source;
    ASSERT_EQ(count(*module, "glint.recurrence"), 1);
    OwningOpRef<ModuleOp> lowered = lower(*module, /*inlineMixers=*/false);
    ASSERT_TRUE(lowered);
    EXPECT_EQ(count(*lowered, "glint.recurrence"), 0);
    if (timeChunk == 0 || c.has(Normalize) ||
        (!c.has(DynamicSizes) && c.len <= timeChunk)) {
      EXPECT_EQ(count(*lowered, "scf.forall"), 1);
      EXPECT_EQ(count(*lowered, "scf.for"), 1);
    } else {
      // Three phases, and the sequential form beside them when the length
      // is only known at run time.
      int64_t sequential = c.has(DynamicSizes) ? 1 : 0;
      EXPECT_EQ(count(*lowered, "scf.forall"), 3 + sequential);
      EXPECT_EQ(count(*lowered, "scf.for"), 3 + sequential);
      EXPECT_EQ(count(*lowered, "scf.if"), sequential);
    }
    expectSameResults(*module, *lowered, "f", builder.inputs,
                      glint::reference::noWeights());
  }
};

class RecurrenceFamilies
    : public LowerRecurrenceCaseTest,
      public ::testing::WithParamInterface<RecurrenceCase> {};

TEST_P(RecurrenceFamilies, LoweringMatchesOp) { check(GetParam()); }

TEST_P(RecurrenceFamilies, ChunkedLoweringMatchesOp) {
  timeChunk = 3;
  check(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Families, RecurrenceFamilies,
    ::testing::Values(
        // name, B, L, H, G, K, V, decay rank, features
        RecurrenceCase{"Mamba1", 2, 13, 6, 1, 5, 1, 2,
                       Query | Delta | Skip | DynamicSizes},
        RecurrenceCase{"VimBackward", 1, 9, 4, 1, 3, 1, 2,
                       Query | Delta | Skip | Reverse | DynamicSizes},
        RecurrenceCase{"Mamba2Groups", 2, 11, 4, 2, 6, 3, 1,
                       Query | Delta | Skip | DynamicSizes},
        RecurrenceCase{"Mamba2DynamicHeads", 2, 6, 6, 3, 4, 2, 1,
                       Query | Delta | Skip | DynamicSizes | DynamicHeads},
        RecurrenceCase{"RWKV6", 2, 10, 3, 3, 4, 4, 4,
                       Query | Bonus | DynamicSizes},
        RecurrenceCase{"GLA", 1, 17, 2, 2, 4, 5, 4, Query},
        RecurrenceCase{"RGLRU", 2, 12, 7, 7, 1, 1, 3, DynamicSizes},
        RecurrenceCase{"RetNet", 1, 8, 4, 2, 3, 2, 1, Query | DynamicSizes},
        RecurrenceCase{"RetNetReverse", 1, 8, 4, 2, 3, 2, 1, Query | Reverse},
        RecurrenceCase{"BonusReverse", 1, 7, 2, 1, 3, 2, 3,
                       Query | Bonus | Skip | Reverse | DynamicSizes},
        RecurrenceCase{"SingleToken", 3, 1, 2, 1, 4, 2, 4,
                       Query | DynamicSizes},
        RecurrenceCase{"RWKV4Bonus", 2, 11, 5, 5, 1, 1, 1,
                       Normalize | Bonus | DynamicSizes},
        RecurrenceCase{"RWKV4InitialState", 2, 9, 5, 5, 1, 1, 1,
                       Normalize | Bonus | InitialState | FinalState |
                           DynamicSizes},
        RecurrenceCase{"RWKV4WideValues", 2, 8, 3, 1, 1, 4, 4,
                       Normalize | Skip | Reverse | FinalState},
        RecurrenceCase{"StreamingGLA", 2, 5, 3, 3, 2, 3, 4,
                       Query | InitialState | FinalState | DynamicSizes},
        RecurrenceCase{"StreamingMamba1", 2, 6, 4, 1, 3, 1, 2,
                       Query | Delta | Skip | InitialState | FinalState |
                           DynamicSizes}),
    [](const auto &info) { return info.param.name; });

/// Every combination the verifier allows, on small shapes: 4 decay forms ×
/// delta (time-invariant decay only) × q × bonus × skip × reverse × initial
/// state × final state, and the ratio form (no q, no delta, K = 1) with
/// each decay form × bonus × skip × reverse × initial × final state.
class AllFeatureCombinations : public LowerRecurrenceCaseTest,
                               public ::testing::WithParamInterface<int64_t> {};

TEST_P(AllFeatureCombinations, LoweringMatchesOp) {
  timeChunk = GetParam();
  int64_t cases = 0;
  for (int decayRank = 1; decayRank <= 4; ++decayRank)
    // The first eight features, each on or off.
    for (unsigned features = 0; features < (1u << 8); ++features) {
      bool normalize = features & Normalize;
      if ((features & Delta) && decayRank > 2)
        continue;
      if (normalize && (features & (Query | Delta)))
        continue;
      // Static and dynamic extents in turn.
      unsigned extents = cases % 2 ? unsigned(DynamicSizes) : 0u;
      if (cases % 3 == 0)
        extents |= DynamicHeads;
      RecurrenceCase c;
      c.name =
          llvm::formatv("rank{0}-features{1:x}", decayRank, features | extents);
      c.batch = 2, c.len = 4, c.heads = 4, c.value = 2;
      c.groups = normalize ? 4 : 2;
      c.key = normalize ? 1 : 3;
      c.decayRank = decayRank;
      c.features = features | extents;
      ASSERT_NO_FATAL_FAILURE(check(c));
      ++cases;
    }
  // Linear form: 2^7 with a time-invariant decay, 2^6 without delta
  // otherwise; ratio form: 2^5 per decay form.
  EXPECT_EQ(cases, 2 * 128 + 2 * 64 + 4 * 32);
}

// L = 4: sequential, and chunks of 3 + 1 steps.
INSTANTIATE_TEST_SUITE_P(TimeChunks, AllFeatureCombinations,
                         ::testing::Values(0, 3), [](const auto &info) {
                           return info.param ? "Chunked" : "Sequential";
                         });

//===----------------------------------------------------------------------===//
// Whole example models
//===----------------------------------------------------------------------===//

/// The names of examples/*.mlir, read when the tests are registered so that
/// a new example is covered without touching this file.
std::vector<std::string> exampleNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator
           it(std::string(GLINT_SOURCE_DIR) + "/examples", ec),
       end;
       it != end && !ec; it.increment(ec))
    if (llvm::sys::path::extension(it->path()) == ".mlir")
      names.push_back(llvm::sys::path::stem(it->path()).str());
  std::sort(names.begin(), names.end());
  return names;
}

class LowerRecurrenceExamples
    : public LowerRecurrenceTest,
      public ::testing::WithParamInterface<std::tuple<std::string, int64_t>> {};

TEST_P(LowerRecurrenceExamples, LoweredModelMatches) {
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  timeChunk = std::get<1>(GetParam());
  std::string path = std::string(GLINT_SOURCE_DIR) + "/examples/" +
                     std::get<0>(GetParam()) + ".mlir";
  auto buffer = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(bool(buffer)) << path;
  OwningOpRef<ModuleOp> module = parse((*buffer)->getBuffer());
  ASSERT_TRUE(module) << path;
  EXPECT_GT(count(*module, "glint.recurrence"), 0);
  OwningOpRef<ModuleOp> lowered = lower(*module, /*inlineMixers=*/true);
  ASSERT_TRUE(lowered);
  EXPECT_EQ(count(*lowered, "glint.recurrence"), 0);
  EXPECT_EQ(count(*lowered, "glint.mixer"), 0);

  // Weights uniform in [-0.3, 0.3], the same array for both modules.
  WeightProvider weights =
      mlir::glint::testing::randomWeights(rng, -0.3, 0.3);
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(fn);
  auto inputType = cast<RankedTensorType>(fn.getArgumentTypes()[0]);
  Array input;
  if (inputType.getRank() == 4) { // images [B, C, H, W]
    input = random({2, inputType.getDimSize(1), inputType.getDimSize(2),
                    inputType.getDimSize(3)});
  } else { // token ids [B, L]
    input = Array(ArrayRef<int64_t>{2, 7});
    std::uniform_int_distribution<int> id(0, 63);
    for (double &x : input.data)
      x = id(rng);
  }
  expectSameResults(*module, *lowered, "forward", {input}, weights);
}

// Sequences of 7 tokens: sequential, and chunks of 3 + 3 + 1 steps.
INSTANTIATE_TEST_SUITE_P(All, LowerRecurrenceExamples,
                         ::testing::Combine(::testing::ValuesIn(exampleNames()),
                                            ::testing::Values(0, 3)),
                         [](const auto &info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) ? "_chunked" : "");
                         });

} // namespace
