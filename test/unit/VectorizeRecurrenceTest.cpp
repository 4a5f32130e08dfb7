//===- VectorizeRecurrenceTest.cpp - vector scans against the reference ---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-vectorize-recurrence (the recurrent vector forms) and
// glint-chunk-recurrence (the chunked form of matrix-state recurrences)
// lower a recurrence to vector loops whose sums run in vector order, so
// their IR is not checked op by op against the evaluator
// (LowerRecurrenceTest does that for the scalar form). Instead, each case
// here is one recurrence in a function, compiled to a library by the CPU
// pipeline (glint-lower-to-cpu with the form under test forced, LLVM -O3
// for this host) and run in float32 on fresh random inputs; its output
// (and, in a second library, its final state) must agree with the reference
// evaluator's float64 result to 1e-5 relative error. malloc is set to fill
// new blocks with 0x7f bytes (3.4e38 as floats), so an output element the
// loops forget to write fails.
//
// Each case first checks which form the pass chose (vectorised or chunked,
// or left to the next pass). The shapes are awkward on purpose: channel
// counts and V that are not multiples of the vector width, odd K, L = 1,
// B = 2, dynamic B / L / H, reverse, initial and final states; for the
// chunked form also lengths below, between and far above multiples of the
// chunk, key groups, log-decays down to -20 per step, and L = 16384.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "passes/cpu/Pipelines.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/CompiledTestSupport.h"

#include "gtest/gtest.h"

#include <malloc.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace mlir;
namespace rt = mlir::glint::runtime;
using mlir::glint::reference::Array;

namespace {

/// Optional parts of a recurrence.
enum Feature : unsigned {
  Query = 1u << 0,
  Delta = 1u << 1,
  Bonus = 1u << 2,
  Skip = 1u << 3,
  Reverse = 1u << 4,
  InitialState = 1u << 5,
  FinalState = 1u << 6,
  /// B and L are `?` in the IR.
  DynamicSizes = 1u << 7,
  /// H and G (unless 1) are `?` too.
  DynamicHeads = 1u << 8,
};

struct Case {
  std::string name;
  int64_t batch, len, heads, groups, key, value;
  /// 1: [H], 2: [H, K], 3: [B, L, H], 4: [B, L, H, K].
  int decayRank;
  unsigned features;
  /// Whether the pass under test (glint-vectorize-recurrence, or
  /// glint-chunk-recurrence with form=chunked) is expected to take the op.
  bool vectorized = true;
  /// The range of the log-decay operand (per step, before delta).
  double decayLow = -3.0, decayHigh = -0.01;

  bool has(Feature f) const { return (features & f) != 0; }
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

/// The module of a case: @forward with the recurrence, returning its output
/// or (with `returnState`) its final state; and the inputs in order.
struct Built {
  std::string source;
  std::vector<Array> inputs;
};

Built build(const Case &c, bool returnState, std::mt19937_64 &rng) {
  Built built;
  const int64_t B = c.batch, L = c.len, H = c.heads, G = c.groups, K = c.key,
                V = c.value;
  auto size = [&](char axis) -> int64_t {
    switch (axis) {
    case 'B':
      return B;
    case 'L':
      return L;
    case 'H':
      return H;
    case 'G':
      return G;
    case 'K':
      return K;
    default:
      return V;
    }
  };
  auto type = [&](StringRef axes) {
    std::string s = "tensor<";
    for (char a : axes) {
      // One key group stays static: shared keys are what the per-channel
      // form needs to know at compile time.
      bool dynamic = ((a == 'B' || a == 'L') && c.has(DynamicSizes)) ||
                     ((a == 'H' || (a == 'G' && G > 1)) &&
                      c.has(DynamicHeads));
      s += (dynamic ? std::string("?") : std::to_string(size(a))) + "x";
    }
    return s + "f32>";
  };
  std::string arguments, operands, types;
  auto add = [&](StringRef name, StringRef role, StringRef axes, double lo,
                 double hi) {
    SmallVector<int64_t> shape;
    for (char a : axes)
      shape.push_back(size(a));
    built.inputs.push_back(
        mlir::glint::testing::randomArray(rng, shape, lo, hi));
    arguments += (arguments.empty() ? "" : ", ") + ("%" + name).str() + ": " +
                 type(axes);
    operands += (role + "(%" + name + ") ").str();
    types += (types.empty() ? "" : ", ") + type(axes);
  };
  if (c.has(Query))
    add("q", "q", "BLGK", -1.0, 1.0);
  add("k", "k", "BLGK", -1.0, 1.0);
  add("v", "v", "BLHV", -1.0, 1.0);
  static const char *decayAxes[] = {"H", "HK", "BLH", "BLHK"};
  // Log-decays down to -3 by default (with delta up to 1): the state
  // forgets within a few steps in some channels and keeps most of itself in
  // others.
  add("g", "log_decay", decayAxes[c.decayRank - 1], c.decayLow, c.decayHigh);
  if (c.has(Delta))
    add("dt", "delta", "BLH", 0.05, 1.0);
  if (c.has(Bonus))
    add("u", "bonus", "HK", -1.0, 1.0);
  if (c.has(Skip))
    add("d", "skip", "H", -1.0, 1.0);
  if (c.has(InitialState))
    add("s0", "initial_state", "BHKV", -1.0, 1.0);
  std::string output = type("BLHV"), state = type("BHKV");
  std::string results = c.has(FinalState) ? "(" + output + ", " + state + ")"
                                          : output;
  std::string names = c.has(FinalState) ? "%y, %s" : "%y";
  built.source =
      llvm::formatv("func.func @forward({0}) -> {1} {{\n"
                    "  {2} = glint.recurrence {3}{4}: ({5}) -> {6}\n"
                    "  return {7} : {1}\n}",
                    arguments, returnState ? state : output, names,
                    c.has(Reverse) ? "reverse " : "", operands, types, results,
                    returnState ? "%s" : "%y")
          .str();
  return built;
}

/// The lowering under test: a form forced, or glint-chunk-recurrence's
/// form=auto for two threads.
enum class Form { Recurrent, Chunked, Auto };

class CompiledRecurrenceTest : public glint::testing::CompiledTest<Case> {
protected:

  static int64_t count(ModuleOp module, StringRef opName) {
    int64_t n = 0;
    module.walk([&](Operation *op) {
      if (op->getName().getStringRef() == opName)
        ++n;
    });
    return n;
  }

  /// `module` compiled to a library by the CPU pipeline with `form` forced,
  /// and loaded.
  void compile(ModuleOp module, Form form,
               std::unique_ptr<rt::CompiledModel> &model) {
    glint::LoopsOptions loops;
    loops.recurrenceForm =
        form == Form::Chunked ? glint::RecurrenceForm::Chunked
        : form == Form::Auto  ? glint::RecurrenceForm::Auto
                              : glint::RecurrenceForm::Recurrent;
    glint::TargetOptions target = glint::compiler::hostTarget();
    target.threads = 2;
    glint::testing::compileAndLoad(module, model, loops, target);
  }

  /// The inputs of `built` in float32.
  static std::vector<rt::HostArray> hostInputs(const Built &built) {
    return glint::testing::toHost(built.inputs);
  }

  /// Compiles `source` with `form` forced, runs it on `inputs` in float32
  /// and compares its result with the evaluator's float64 one.
  void check(const Case &c, const Built &built, Form form) {
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(built.source, context.get());
    ASSERT_TRUE(module) << built.source;

    // Which form the pass takes.
    {
      OwningOpRef<ModuleOp> copy = module->clone();
      PassManager pm(context.get());
      if (form != Form::Recurrent) {
        glint::GlintChunkRecurrenceOptions options;
        options.form = form == Form::Chunked ? glint::RecurrenceForm::Chunked
                                             : glint::RecurrenceForm::Auto;
        options.threads = 2;
        options.vectorWidth = glint::compiler::hostTarget().vectorWidth;
        pm.addPass(glint::createGlintChunkRecurrence(options));
      } else {
        glint::GlintVectorizeRecurrenceOptions options;
        options.vectorWidth = glint::compiler::hostTarget().vectorWidth;
        pm.addNestedPass<func::FuncOp>(
            glint::createGlintVectorizeRecurrence(options));
      }
      ASSERT_TRUE(succeeded(pm.run(*copy)));
      if (form == Form::Auto) {
        // Both forms, chosen by an scf.if on L; the op itself in the else
        // branch.
        EXPECT_EQ(count(*copy, "scf.if"), 1) << built.source;
        EXPECT_EQ(count(*copy, "glint.recurrence"), 1) << built.source;
      } else {
        EXPECT_EQ(count(*copy, "glint.recurrence"), c.vectorized ? 0 : 1)
            << built.source;
      }
      if (c.vectorized && form != Form::Auto) {
        EXPECT_GT(count(*copy, "vector.transfer_read"), 0);
        // Within chunks, between chunks, the entering states read out.
        if (form == Form::Chunked) {
          EXPECT_EQ(count(*copy, "scf.forall"), 3);
        }
      }
    }

    std::unique_ptr<rt::CompiledModel> model;
    ASSERT_NO_FATAL_FAILURE(compile(*module, form, model));
    ASSERT_NO_FATAL_FAILURE(glint::testing::expectMatchesEvaluator(
        *model, *module, built.inputs, 1e-5, built.source));
  }
};

class VectorizeRecurrenceTest : public CompiledRecurrenceTest {};

TEST_P(VectorizeRecurrenceTest, CompiledMatchesReference) {
  const Case &c = GetParam();
  ASSERT_NO_FATAL_FAILURE(
      check(c, build(c, /*returnState=*/false, rng), Form::Recurrent));
  if (c.has(FinalState)) {
    ASSERT_NO_FATAL_FAILURE(
        check(c, build(c, /*returnState=*/true, rng), Form::Recurrent));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VectorizeRecurrenceTest,
    ::testing::Values(
        // name, B, L, H, G, K, V, decay rank, features
        // Per-channel form (V = 1).
        Case{"Mamba1", 2, 13, 37, 1, 5, 1, 2,
             Query | Delta | Skip | DynamicSizes},
        Case{"Mamba1FullBlocks", 1, 9, 64, 1, 16, 1, 2, Query | Delta | Skip},
        // K = 19: with 8-lane vectors, passes of 8, 8 and 3 keys.
        Case{"Mamba1KeyPasses", 2, 11, 21, 1, 19, 1, 2,
             Query | Delta | Skip | Reverse | InitialState | FinalState |
                 DynamicSizes},
        Case{"Mamba1ManyChunks", 2, 7, 200, 1, 3, 1, 2,
             Query | Delta | Skip | DynamicSizes},
        Case{"Mamba1SingleToken", 2, 1, 19, 1, 4, 1, 2,
             Query | Delta | Skip | DynamicSizes},
        Case{"VimBackward", 2, 11, 21, 1, 3, 1, 2,
             Query | Delta | Skip | Reverse | DynamicSizes},
        Case{"Mamba1Streaming", 2, 6, 35, 1, 7, 1, 2,
             Query | Delta | Skip | InitialState | FinalState | DynamicSizes},
        Case{"Mamba1StreamingFull", 1, 5, 32, 1, 4, 1, 2,
             Query | Delta | InitialState | FinalState},
        Case{"Mamba1DynamicHeads", 2, 5, 23, 1, 5, 1, 2,
             Query | Delta | Skip | DynamicSizes | DynamicHeads},
        Case{"RGLRU", 2, 12, 20, 20, 1, 1, 3, DynamicSizes},
        Case{"RGLRUReverseStreaming", 2, 8, 17, 17, 1, 1, 3,
             Reverse | InitialState | FinalState | DynamicSizes},
        Case{"ChannelPerKeyDecay", 1, 10, 18, 18, 1, 1, 4, Query | Skip},
        Case{"ChannelStaticHeadDecay", 2, 9, 19, 1, 3, 1, 1,
             Query | Delta | DynamicSizes},
        Case{"ChannelNoDelta", 1, 6, 16, 1, 2, 1, 2, Query},
        // Matrix-state form (V > 1).
        Case{"Mamba2Groups", 2, 9, 4, 2, 6, 20, 1,
             Query | Delta | Skip | DynamicSizes},
        Case{"Mamba2Wide", 1, 5, 2, 1, 128, 64, 1, Query | Delta | Skip},
        Case{"RWKV6", 2, 10, 3, 3, 7, 5, 4, Query | Bonus | DynamicSizes},
        Case{"RWKV6Heads64", 1, 4, 2, 2, 64, 64, 4, Query | Bonus},
        Case{"GLAStreaming", 1, 17, 2, 2, 16, 40, 4,
             Query | InitialState | FinalState},
        Case{"RetNetReverse", 1, 8, 4, 1, 3, 2, 1, Query | Reverse},
        Case{"HeadDecayNoQuery", 2, 6, 3, 3, 2, 17, 3, DynamicSizes},
        Case{"StaticKeyDecayDelta", 2, 5, 2, 2, 3, 3, 2,
             Query | Delta | Skip | Reverse | DynamicSizes},
        Case{"BonusSkipReverse", 1, 7, 2, 1, 3, 18, 3,
             Query | Bonus | Skip | Reverse | InitialState | FinalState},
        Case{"MatrixSingleToken", 2, 1, 2, 1, 4, 33, 4, Query | DynamicSizes},
        Case{"MatrixDynamicHeads", 2, 4, 4, 2, 5, 24, 1,
             Query | Delta | DynamicSizes | DynamicHeads},
        // Left to glint-lower-recurrence: V = 1 with key groups that are
        // neither shared nor one per channel.
        Case{"ChannelGroups", 1, 5, 8, 2, 3, 1, 2, Query | Delta, false}),
    [](const auto &info) { return info.param.name; });

class ChunkRecurrenceTest : public CompiledRecurrenceTest {};

TEST_P(ChunkRecurrenceTest, CompiledMatchesReference) {
  const Case &c = GetParam();
  ASSERT_NO_FATAL_FAILURE(
      check(c, build(c, /*returnState=*/false, rng), Form::Chunked));
  if (c.has(FinalState)) {
    ASSERT_NO_FATAL_FAILURE(
        check(c, build(c, /*returnState=*/true, rng), Form::Chunked));
  }
}

// The default chunk is 64 steps (a multiple of every vector width).
INSTANTIATE_TEST_SUITE_P(
    Cases, ChunkRecurrenceTest,
    ::testing::Values(
        // name, B, L, H, G, K, V, decay rank, features[, taken, decay range]
        // Mamba-2: delta, skip, two key groups, L = 3 C + 8, odd K.
        Case{"Mamba2Groups", 2, 200, 4, 2, 7, 20, 1,
             Query | Delta | Skip | DynamicSizes},
        Case{"Mamba2Wide", 1, 130, 2, 1, 128, 64, 1, Query | Delta | Skip},
        Case{"Mamba2DynamicHeads", 2, 100, 4, 2, 5, 24, 1,
             Query | Delta | DynamicSizes | DynamicHeads},
        // One step; shorter than a chunk; L = 3 C + 5.
        Case{"SingleToken", 2, 1, 3, 1, 5, 17, 3, Query | DynamicSizes},
        Case{"RetNetShort", 1, 37, 2, 2, 16, 33, 1, Query},
        Case{"RetNetReverse", 1, 197, 4, 4, 9, 24, 1, Query | Reverse},
        // Data-dependent per-head decay, initial and final state.
        Case{"HeadDecayStreaming", 2, 150, 3, 3, 6, 18, 3,
             Query | InitialState | FinalState | DynamicSizes},
        Case{"ReverseStreaming", 2, 130, 2, 1, 8, 16, 1,
             Query | Delta | Skip | Reverse | InitialState | FinalState},
        Case{"HeadDecayNoQuery", 2, 70, 3, 3, 2, 17, 3, DynamicSizes},
        // Log-decays down to -20 per step: factors of e^-20 that underflow
        // within a chunk.
        Case{"StrongDecay", 1, 300, 2, 1, 12, 40, 3, Query, true, -20.0},
        Case{"StrongDecayDelta", 2, 133, 3, 1, 9, 20, 1,
             Query | Delta | Skip | Reverse | InitialState | FinalState, true,
             -20.0},
        // 256 chunks, the state remembering tens of steps (weaker decays
        // make float32 itself, in any form, drift past 1e-5 here).
        Case{"Long", 1, 16384, 2, 1, 4, 17, 3, Query | Skip, true, -0.05,
             -0.01},
        // Left to the recurrent forms: per-key decays, bonus, V = 1.
        Case{"RWKV6", 2, 70, 3, 3, 7, 5, 4, Query | Bonus | DynamicSizes,
             false},
        Case{"GLA", 1, 70, 2, 2, 16, 40, 4, Query | InitialState | FinalState,
             false},
        Case{"Mamba1", 2, 70, 37, 1, 5, 1, 2,
             Query | Delta | Skip | DynamicSizes, false}),
    [](const auto &info) { return info.param.name; });

class AutoFormTest : public CompiledRecurrenceTest {};

// Tests that form=auto's run-time choice compiles and runs both ways: with a
// dynamic length, an op that does less work chunked (K = V = 256, model
// ratio 0.75 at 64-step chunks: within the limit of either vector width)
// runs chunked from L = 128 (a chunk per thread at two threads) and
// recurrent below; at both lengths it agrees with the evaluator.
TEST_P(AutoFormTest, BothBranchesMatchReference) {
  Case c = GetParam();
  for (int64_t len : {40, 300}) {
    c.len = len;
    ASSERT_NO_FATAL_FAILURE(
        check(c, build(c, /*returnState=*/false, rng), Form::Auto));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, AutoFormTest,
                         ::testing::Values(Case{"RetNetDynamicLength", 2, 0, 2,
                                                2, 256, 256, 1,
                                                Query | DynamicSizes}),
                         [](const auto &info) { return info.param.name; });

/// Bytes in use in the main malloc arena (where the calling thread's share
/// of a parallel loop allocates).
size_t heapInUse() { return mallinfo2().uordblks; }

class RecurrenceHeapTest : public CompiledRecurrenceTest {};

// Tests that repeated calls of a compiled matrix-state recurrence free what
// they allocate, the scratch of every parallel iteration included (buffer
// deallocation only sees inside scf.forall with the scf interface models:
// without them the recurrent form leaked 32 KiB per call here, the chunked
// one 0.7 MiB).
TEST_P(RecurrenceHeapTest, RepeatedCallsFreeTheirBuffers) {
  const Case &c = GetParam();
  for (Form form : {Form::Recurrent, Form::Chunked}) {
    Built built = build(c, /*returnState=*/false, rng);
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(built.source, context.get());
    ASSERT_TRUE(module) << built.source;
    std::unique_ptr<rt::CompiledModel> model;
    ASSERT_NO_FATAL_FAILURE(compile(*module, form, model));
    std::vector<rt::HostArray> inputs = hostInputs(built);
    auto call = [&] {
      auto result = model->run(inputs);
      ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    };
    // The first calls start OpenMP's threads, grow the arena and fill the
    // threads' malloc caches (tcache chunks count as in use: after only 3
    // calls the 50 below once grew it by 75 KiB under a loaded machine).
    for (int i = 0; i < 20; ++i)
      ASSERT_NO_FATAL_FAILURE(call());
    size_t before = heapInUse();
    for (int i = 0; i < 50; ++i)
      ASSERT_NO_FATAL_FAILURE(call());
    // 50 calls: a leak of even 8 KiB per call would show as 400 KiB.
    EXPECT_LT(heapInUse(), before + (size_t(64) << 10))
        << (form == Form::Chunked ? "chunked" : "recurrent") << " form\n"
        << built.source;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RecurrenceHeapTest,
                         ::testing::Values(Case{"Mamba2", 1, 512, 4, 1, 32, 64,
                                                1, Query | Delta | Skip}),
                         [](const auto &info) { return info.param.name; });

} // namespace
