//===- CompileTest.cpp - compiled models against the reference ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// End to end on the CPU path: glint-import's IR for each reference fixture is
// compiled to a shared library (glint-lower-to-cpu, LLVM -O3 for this CPU),
// loaded by the runtime, bound to the checkpoint, run on the fixture inputs
// and compared with the reference implementation's float64 logits.
//
// Tolerance: relative error ≤ 1e-5. The compiled model computes in float32
// (the fixtures' float32 references sit at 1e-7 .. 1e-6 from the float64
// ones), so 1e-5 leaves an order of magnitude for summation order and the
// exp/log/tanh of libm versus torch.
//
// Generation: every causal language model (the fixtures but Vision Mamba,
// and the bundled models) is also compiled with its step entry, and a
// sequence fed through it in pieces (prefill, then one token at a time)
// must give the full forward's logits at every position to 1e-5 (more only
// where the float64 model is ill-conditioned, by the evaluator), greedy
// generation must choose the tokens that rerunning the full forward
// chooses, and states that do not fit must be errors.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "import/Importers.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Safetensors.h"
#include "test/unit/ModelContext.h"

#include "compiler/Target.h"
#include "passes/cpu/Pipelines.h"
#include "passes/cuda/Pipelines.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

using namespace mlir;
namespace rt = mlir::glint::runtime;
using mlir::glint::reference::Array;
using mlir::glint::testing::relativeError;
using mlir::glint::testing::testSeed;

namespace {

/// The elements of a result as doubles.
std::vector<double> valuesOf(const rt::HostArray &a) {
  std::vector<double> values;
  for (int64_t i = 0; i < a.numElements(); ++i)
    values.push_back(a.dtype == "f32" ? a.data<float>()[i]
                                      : a.data<double>()[i]);
  return values;
}

/// The checkpoint in `dir` imported, compiled to a temporary library (the
/// file is removed when the test ends, the model stays loaded), loaded and
/// bound. With `step` Auto the library has a step entry where the model can
/// generate, which doubles the compile time: only the generation tests ask
/// for it.
void compileModel(
    const std::string &dir, std::unique_ptr<rt::Checkpoint> &checkpoint,
    std::unique_ptr<rt::CompiledModel> &model, glint::compiler::StepMode step,
    const glint::TargetOptions &target = glint::compiler::hostTarget(),
    const llvm::json::Object *overrides = nullptr,
    const glint::LoopsOptions &loops = {}) {
  auto opened = rt::Checkpoint::open(dir);
  ASSERT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
  checkpoint = std::move(*opened);

  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  glint::registerCudaDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  auto module =
      glint::import::importCheckpoint(&context, dir, *checkpoint, overrides);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());

  llvm::SmallString<128> library;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-test", "so", library));
  llvm::FileRemover removeLibrary(library);
  llvm::Error compiled = glint::compiler::compileToLibrary(
      **module, "forward", library, step, {}, loops, target);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
  auto loaded = rt::CompiledModel::load(library);
  ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
  model = std::move(*loaded);
  llvm::Error bound = model->bindWeights(*checkpoint);
  ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
}

/// A reference fixture (test/fixtures/<name>), compiled.
class CompiledFixture : public ::testing::TestWithParam<const char *> {
protected:
  virtual glint::compiler::StepMode stepMode() const {
    return glint::compiler::StepMode::Off;
  }
  virtual glint::TargetOptions target() const {
    return glint::compiler::hostTarget();
  }
  void SetUp() override {
    dir = std::string(GLINT_SOURCE_DIR) + "/test/fixtures/" + GetParam();
    compileModel(dir, checkpoint, model, stepMode(), target());
  }
  /// Runs every case of the fixture and compares with its float64 logits.
  void checkAgainstReference();

  std::string dir;
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
};

TEST_P(CompiledFixture, MatchesFloat64Reference) { checkAgainstReference(); }

void CompiledFixture::checkAgainstReference() {
  int cases = 0;
  // The first case's result, to check that a later call gives it again (a
  // model must not change its weights or keep state between calls).
  std::optional<rt::HostArray> firstInput, firstResult;
  for (int i = 0;; ++i) {
    std::string ids = llvm::formatv("{0}/input_ids_{1}.npy", dir, i).str();
    std::string pixels =
        llvm::formatv("{0}/pixel_values_{1}.npy", dir, i).str();
    rt::HostArray input;
    if (llvm::sys::fs::exists(ids)) {
      auto read = rt::readNpyI64(ids);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input = rt::HostArray::make(read->shape, "i64");
      std::memcpy(input.bytes.data(), read->data.data(), input.bytes.size());
    } else if (llvm::sys::fs::exists(pixels)) {
      auto read = rt::readNpyF32(pixels);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input = rt::HostArray::make(read->shape, "f32");
      std::memcpy(input.bytes.data(), read->data.data(), input.bytes.size());
    } else {
      break;
    }
    ++cases;
    auto result = model->run({input});
    ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    auto expected = rt::readNpyF64(
        llvm::formatv("{0}/logits_float64_{1}.npy", dir, i).str());
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    ASSERT_EQ(result->shape, expected->shape);
    double error = relativeError(valuesOf(*result), expected->data);
    std::cout << llvm::formatv("[ {0} case {1} ] compiled vs float64 "
                               "reference: {2:e}\n",
                               GetParam(), i, error)
                     .str();
    EXPECT_LT(error, 1e-5);
    if (i == 0) {
      firstInput = input;
      firstResult = std::move(*result);
    }
  }
  EXPECT_GE(cases, 2);
  auto again = model->run({*firstInput});
  ASSERT_TRUE(bool(again)) << llvm::toString(again.takeError());
  EXPECT_EQ(again->bytes, firstResult->bytes)
      << "the same input gave another result on a later call";
}

/// A long sequence (L = 16384) through the compiled model stays finite:
/// the state of every family decays instead of overflowing, and RWKV-4's
/// ratio form keeps its exponentials stabilised.
TEST_P(CompiledFixture, LongSequenceStaysFinite) {
  const rt::TensorSpec &spec = model->info().inputs[0];
  if (spec.dtype != "i64")
    GTEST_SKIP() << "image model: its sequence length is fixed";
  if (std::string(GetParam()) == "recurrentgemma_window")
    GTEST_SKIP() << "the recurrentgemma model again (its inputs differ)";
  const int64_t length = 16384;
  rt::HostArray ids = rt::HostArray::make({1, length}, "i64");
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<int64_t> token(0, spec.limit - 1);
  for (int64_t i = 0; i < length; ++i)
    ids.data<int64_t>()[i] = token(rng);
  auto result = model->run({ids});
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  for (double x : valuesOf(*result))
    ASSERT_TRUE(std::isfinite(x));
}

//===----------------------------------------------------------------------===//
// Generation: the step entry against the full forward
//===----------------------------------------------------------------------===//

/// Fresh random token ids [batch, length] inside the model's vocabulary.
rt::HostArray randomIds(const rt::CompiledModel &model, int64_t batch,
                        int64_t length, std::mt19937_64 &rng) {
  rt::HostArray ids = rt::HostArray::make({batch, length}, "i64");
  std::uniform_int_distribution<int64_t> token(0, model.info().inputs[0].limit -
                                                      1);
  for (int64_t i = 0; i < batch * length; ++i)
    ids.data<int64_t>()[i] = token(rng);
  return ids;
}

/// Positions [from, from + n) of each sequence of a [batch, L, ...] array.
rt::HostArray positions(const rt::HostArray &a, int64_t from, int64_t n) {
  std::vector<int64_t> shape = a.shape;
  shape[1] = n;
  rt::HostArray out = rt::HostArray::make(shape, a.dtype);
  size_t row = a.bytes.size() / (a.shape[0] * a.shape[1]);
  for (int64_t b = 0; b < a.shape[0]; ++b)
    std::memcpy(out.bytes.data() + b * n * row,
                a.bytes.data() + (b * a.shape[1] + from) * row, n * row);
  return out;
}

/// The tolerance of compiled (float32) against compiled: both sides round
/// alike, but the step entry sums some terms in another order (states
/// carried across calls, the attention cache concatenated).
constexpr double kStepTolerance = 1e-5;
/// The same for greedy generation's logits, which go through more steps
/// (twelve generated tokens after a prompt of six) without the
/// step-by-step check's allowance for ill-conditioned positions: GLA's
/// last token with GLINT_TEST_SEED=678890311 differs by 1.3e-5 (the same
/// before and after the guard of small parallel loops changed the code
/// around it).
constexpr double kGreedyTolerance = 3e-5;

/// The checkpoint a compiled model was made from, for the float64
/// evaluator.
struct ReferenceModel {
  std::string dir;
  const rt::Checkpoint *checkpoint = nullptr;
  const llvm::json::Object *overrides = nullptr;
};

/// The relative error of `a` against `b` ([positions, vocab], flat) at each
/// of the `positions`.
std::vector<double> perPositionErrors(llvm::ArrayRef<double> a,
                                      llvm::ArrayRef<double> b,
                                      int64_t positions) {
  int64_t vocab = b.size() / positions;
  std::vector<double> errors;
  for (int64_t p = 0; p < positions; ++p)
    errors.push_back(
        relativeError(a.slice(p * vocab, vocab), b.slice(p * vocab, vocab)));
  return errors;
}

/// How far float32 rounding alone moves the logits at each position of
/// `ids` ([batch, length]): the float64 evaluator run twice, every weight
/// multiplied each time by its own random 1 + u * 2^-24 (u uniform in
/// [-1, 1], float32's relative rounding), and the relative difference of
/// the two runs' logits per position. It is ~1e-7 where the model is well
/// conditioned and far larger where a per-head norm divides a nearly
/// vanishing q·k or q·S (eps below the head's scale): there any two float32
/// summation orders differ that much, whichever is right.
std::vector<double> float32Sensitivity(const ReferenceModel &reference,
                                       const rt::HostArray &ids,
                                       uint64_t seed) {
  std::unique_ptr<MLIRContext> context =
      mlir::glint::testing::makeModelContext();
  auto module = glint::import::importCheckpoint(
      context.get(), reference.dir, *reference.checkpoint, reference.overrides);
  EXPECT_TRUE(bool(module)) << llvm::toString(module.takeError());
  if (!module)
    return {};
  int64_t batch = ids.shape[0], length = ids.shape[1];
  Array argument(ids.shape);
  for (int64_t i = 0; i < batch * length; ++i)
    argument.data[i] = double(ids.data<int64_t>()[i]);
  glint::reference::WeightProvider exact =
      glint::reference::weightsFrom(*reference.checkpoint);
  std::vector<std::vector<double>> logits;
  for (int run = 0; run < 2; ++run) {
    std::mt19937_64 rng(seed + run);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    glint::reference::ReferenceEvaluator evaluator(
        **module,
        [&](llvm::StringRef weight,
            llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Array> {
          auto array = exact(weight, shape);
          if (array)
            for (double &x : array->data)
              x *= 1.0 + u(rng) * 0x1p-24;
          return array;
        });
    auto result = evaluator.run("forward", {argument});
    EXPECT_TRUE(bool(result)) << llvm::toString(result.takeError());
    if (!result)
      return {};
    logits.push_back(std::move((*result)[0].data));
  }
  return perPositionErrors(logits[0], logits[1], batch * length);
}

/// Feeds random sequences through the step entry in pieces (a prompt of 5,
/// then single tokens, 3 at once, single tokens; 24 in all, longer than
/// RecurrentGemma's attention window of 16) and compares the logits at
/// every position with the full forward's on the whole sequences: to
/// kStepTolerance, or, where the float64 model itself is ill-conditioned
/// (float32Sensitivity of `reference` above kStepTolerance / 10), to ten
/// times its sensitivity there.
void checkStepByStep(rt::CompiledModel &model, llvm::StringRef name,
                     const ReferenceModel &reference) {
  ASSERT_TRUE(model.hasStep());
  uint64_t seed = testSeed();
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::mt19937_64 rng(seed);
  const int64_t batch = 2, length = 24;
  rt::HostArray ids = randomIds(model, batch, length, rng);
  auto full = model.run({ids});
  ASSERT_TRUE(bool(full)) << llvm::toString(full.takeError());
  std::vector<double> expected = valuesOf(*full);
  int64_t vocab = full->shape.back();

  auto states = model.initialStates(batch);
  ASSERT_TRUE(bool(states)) << llvm::toString(states.takeError());
  std::vector<int64_t> pieces = {5, 1, 1, 1, 1, 1, 1, 1, 1, 3};
  while (std::accumulate(pieces.begin(), pieces.end(), int64_t(0)) < length)
    pieces.push_back(1);
  std::vector<double> streamed(expected.size(), std::nan(""));
  int64_t position = 0;
  for (int64_t n : pieces) {
    auto logits = model.step({positions(ids, position, n)}, *states);
    ASSERT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
    ASSERT_EQ(logits->shape, (std::vector<int64_t>{batch, n, vocab}));
    std::vector<double> values = valuesOf(*logits);
    for (int64_t b = 0; b < batch; ++b)
      std::copy_n(values.begin() + b * n * vocab, n * vocab,
                  streamed.begin() + (b * length + position) * vocab);
    position += n;
  }
  std::vector<double> errors =
      perPositionErrors(streamed, expected, batch * length);
  double worst = *std::max_element(errors.begin(), errors.end());
  // The evaluator runs only when some position needs its word.
  std::vector<double> sensitivity;
  if (worst > kStepTolerance)
    sensitivity = float32Sensitivity(reference, ids, seed);
  int illConditioned = 0;
  for (int64_t p = 0; p < batch * length; ++p) {
    double tolerance = kStepTolerance;
    if (!sensitivity.empty() && 10 * sensitivity[p] > kStepTolerance) {
      tolerance = 10 * sensitivity[p];
      ++illConditioned;
    }
    EXPECT_LE(errors[p], tolerance)
        << "sequence " << p / length << ", position " << p % length
        << (sensitivity.empty()
                ? std::string()
                : llvm::formatv(" (float32 sensitivity of the float64 "
                                "logits there: {0:e})",
                                sensitivity[p])
                      .str());
  }
  std::cout << llvm::formatv("[ {0} ] step by step vs full forward "
                             "(compiled, float32), worst position: {1:e}{2}\n",
                             name, worst,
                             illConditioned
                                 ? llvm::formatv("; {0} ill-conditioned "
                                                 "position(s), tolerance 10x "
                                                 "their float32 sensitivity",
                                                 illConditioned)
                                       .str()
                                 : std::string())
                   .str();
}

/// Greedy generation through the step entry (prefill, then one token per
/// call) chooses the tokens that the full forward chooses when rerun on the
/// whole sequence for every token (or one whose logit ties with it to
/// kGreedyTolerance), from logits equal to kGreedyTolerance.
void checkGreedyGeneration(rt::CompiledModel &model) {
  uint64_t seed = testSeed();
  SCOPED_TRACE(llvm::formatv("seed {0}", seed).str());
  std::mt19937_64 rng(seed);
  const int64_t batch = 2, promptLength = 6;
  const unsigned count = 12;
  rt::RunArray prompt =
      rt::fromHostArray(randomIds(model, batch, promptLength, rng));
  auto generated = rt::generateCompiled(model, prompt, count, "model");
  ASSERT_TRUE(bool(generated)) << llvm::toString(generated.takeError());
  ASSERT_EQ(generated->tokens.shape, (std::vector<int64_t>{batch, count}));
  EXPECT_EQ(generated->steps, count - 1);

  rt::RunArray sequence = prompt;
  for (unsigned i = 0; i < count; ++i) {
    auto logits = model.run({rt::toHostArray(sequence, "i64")});
    ASSERT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
    rt::RunArray full = rt::fromHostArray(*logits);
    std::vector<int64_t> next = rt::greedyNext(full);
    int64_t vocab = full.shape.back(), length = full.shape[1];
    rt::RunArray longer;
    longer.shape = {batch, length + 1};
    for (int64_t b = 0; b < batch; ++b) {
      llvm::ArrayRef<double> last = llvm::ArrayRef<double>(full.data).slice(
          (b * length + length - 1) * vocab, vocab);
      // The same token, unless the two logits tie to float32 rounding (the
      // step and the full forward sum in different orders; seen once in
      // hundreds of runs, mamba2: 1.16 vs 1.16): then the sequence goes on
      // with the generated token, so later steps are still compared.
      auto chosen = static_cast<int64_t>(generated->tokens.data[b * count + i]);
      ASSERT_TRUE(chosen >= 0 && chosen < vocab);
      if (chosen != next[b]) {
        double scale = 0.0;
        for (double v : last)
          scale = std::max(scale, std::fabs(v));
        EXPECT_LE(last[next[b]] - last[chosen], kGreedyTolerance * scale)
            << "token " << i << " of sequence " << b << ": generated " << chosen
            << ", the full forward's argmax is " << next[b];
      }
      llvm::ArrayRef<double> chosenFrom =
          llvm::ArrayRef<double>(generated->logits.data)
              .slice((b * count + i) * vocab, vocab);
      EXPECT_LE(relativeError(chosenFrom, last), kGreedyTolerance)
          << "token " << i << " of sequence " << b;
      auto row = sequence.data.begin() + b * length;
      longer.data.insert(longer.data.end(), row, row + length);
      longer.data.push_back(static_cast<double>(chosen));
    }
    sequence = std::move(longer);
  }
}

/// States that do not fit the step entry are errors naming the state, not
/// out-of-bounds reads in compiled code.
void checkBadStates(rt::CompiledModel &model) {
  std::mt19937_64 rng(7);
  rt::HostArray ids = randomIds(model, 2, 3, rng);
  const rt::EntryInfo &step = *model.info().step;
  auto errorOf = [&](std::vector<rt::HostArray> states) {
    auto result = model.step({ids}, states);
    return result ? std::string() : llvm::toString(result.takeError());
  };
  auto states = model.initialStates(2);
  ASSERT_TRUE(bool(states));

  // A state of another shape.
  std::vector<rt::HostArray> wrongShape = *states;
  std::vector<int64_t> shape = wrongShape.back().shape;
  shape.back() += 1;
  wrongShape.back() = rt::HostArray::make(shape, wrongShape.back().dtype);
  std::string error = errorOf(wrongShape);
  EXPECT_NE(
      error.find(llvm::formatv("state #{0} ('{1}') is", states->size() - 1,
                               step.states.back().name)
                     .str()),
      std::string::npos)
      << error;
  EXPECT_NE(error.find("but the model takes"), std::string::npos) << error;

  // States of another batch than the input's.
  auto single = model.initialStates(1);
  ASSERT_TRUE(bool(single));
  error = errorOf(*single);
  EXPECT_NE(error.find("is for a batch of 1 sequences, but the input has 2"),
            std::string::npos)
      << error;

  // A state missing.
  std::vector<rt::HostArray> fewer(states->begin(), states->end() - 1);
  error = errorOf(fewer);
  EXPECT_NE(error.find(llvm::formatv("the step entry carries {0} states, got "
                                     "{1}",
                                     states->size(), fewer.size())
                           .str()),
            std::string::npos)
      << error;

  // A NaN in a float state.
  std::vector<rt::HostArray> poisoned = *states;
  for (rt::HostArray &state : poisoned)
    if (state.dtype == "f32") {
      state.data<float>()[0] = std::nanf("");
      break;
    }
  error = errorOf(poisoned);
  EXPECT_NE(error.find("holds NaN at flat index 0"), std::string::npos)
      << error;
}

/// The states kept in the model's buffers between steps (StepStates) give
/// the same logits, bit for bit, as states passed as arrays, and the same
/// states when read back; they survive a move, and a batch that does not
/// match them is still an error.
void checkHeldStates(rt::CompiledModel &model) {
  std::mt19937_64 rng(testSeed());
  const int64_t batch = 2, length = 9;
  rt::HostArray ids = randomIds(model, batch, length, rng);
  auto arrays = model.initialStates(batch);
  ASSERT_TRUE(bool(arrays)) << llvm::toString(arrays.takeError());
  auto started = model.startStates(batch);
  ASSERT_TRUE(bool(started)) << llvm::toString(started.takeError());
  rt::StepStates held = std::move(*started);
  int64_t position = 0;
  for (int64_t n : {4, 1, 1, 3}) {
    rt::HostArray piece = positions(ids, position, n);
    auto expected = model.step({piece}, *arrays);
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    auto got = model.step({piece}, held);
    ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
    ASSERT_EQ(got->shape, expected->shape);
    EXPECT_EQ(got->bytes, expected->bytes) << "logits at position " << position;
    position += n;
    if (n == 1) {
      // Moved mid-sequence: the buffers go with it.
      rt::StepStates moved = std::move(held);
      held = std::move(moved);
    }
  }
  std::vector<rt::HostArray> read = held.read();
  ASSERT_EQ(read.size(), arrays->size());
  for (auto [got, expected] : llvm::zip(read, *arrays)) {
    EXPECT_EQ(got.shape, expected.shape);
    EXPECT_EQ(got.dtype, expected.dtype);
    EXPECT_EQ(got.bytes, expected.bytes);
  }
  // Held states of two sequences, an input of one.
  auto single = model.step({positions(randomIds(model, 1, 1, rng), 0, 1)}, held);
  ASSERT_FALSE(bool(single));
  std::string error = llvm::toString(single.takeError());
  EXPECT_NE(error.find("is for a batch of 2 sequences, but the input has 1"),
            std::string::npos)
      << error;
}

/// A reference fixture compiled with its step entry.
class GeneratingFixture : public CompiledFixture {
protected:
  glint::compiler::StepMode stepMode() const override {
    return glint::compiler::StepMode::Auto;
  }
};

TEST_P(GeneratingFixture, GenerationMatchesFullForward) {
  if (std::string(GetParam()) == "vim") {
    // Bidirectional: no step entry, and asking for one says why.
    EXPECT_FALSE(model->hasStep());
    auto states = model->initialStates(1);
    ASSERT_FALSE(bool(states));
    std::string error = llvm::toString(states.takeError());
    EXPECT_NE(error.find("has no step entry for generation"), std::string::npos)
        << error;
    std::vector<rt::HostArray> none;
    auto stepped = model->step({}, none);
    ASSERT_FALSE(bool(stepped));
    llvm::consumeError(stepped.takeError());
    return;
  }
  // One test per model for every generation check: each test process
  // compiles its model again.
  {
    SCOPED_TRACE("step by step");
    checkStepByStep(*model, GetParam(), {dir, checkpoint.get()});
  }
  {
    SCOPED_TRACE("greedy generation");
    checkGreedyGeneration(*model);
  }
  {
    SCOPED_TRACE("bad states");
    checkBadStates(*model);
  }
  {
    SCOPED_TRACE("held states");
    checkHeldStates(*model);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CompiledFixture,
                         ::testing::Values("mamba_conv3", "mamba_conv4_untied",
                                           "mamba2", "rwkv4", "recurrentgemma",
                                           "recurrentgemma_window", "rwkv6",
                                           "vim", "gla", "gla_conv", "retnet",
                                           "hgrn2"));

//===----------------------------------------------------------------------===//
// Weights kept in 16 bits (glint-compile --weight-dtype)
//===----------------------------------------------------------------------===//

/// `x` rounded to the nearest value of a binary float with `precision`
/// significant bits whose smallest subnormal is 2^`minExponent` (bf16: 8,
/// -133; f16: 11, -24), ties to even: the rounding the runtime applies when
/// it binds a narrow weight, computed here another way (frexp and
/// nearbyint instead of bit manipulation).
double roundToPrecision(double x, int precision, int minExponent) {
  if (x == 0 || !std::isfinite(x))
    return x;
  int exponent;
  std::frexp(x, &exponent); // |x| = m 2^exponent, m in [0.5, 1)
  int quantum = std::max(exponent - precision, minExponent);
  return std::ldexp(std::nearbyint(std::ldexp(x, -quantum)), quantum);
}

/// Each fixture compiled with its matrix weights kept in bf16 or f16: the
/// weights narrowed are the products' and the embeddings' (the record says
/// which); against the reference evaluator given exactly those weights
/// rounded the same way, the compiled model agrees as closely as an f32
/// one does (the widening in the kernels is exact, only f32 arithmetic
/// differs). Against the float64 logits of the unrounded weights the error
/// is what the rounding costs: printed, and bounded per type.
class NarrowWeightsFixture
    : public ::testing::TestWithParam<std::tuple<const char *, const char *>> {
};

TEST_P(NarrowWeightsFixture, MatchesEvaluatorOnRoundedWeights) {
  auto [name, dtype] = GetParam();
  std::string dir = std::string(GLINT_SOURCE_DIR) + "/test/fixtures/" + name;
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
  glint::LoopsOptions loops;
  loops.weightType = dtype;
  ASSERT_NO_FATAL_FAILURE(
      compileModel(dir, checkpoint, model, glint::compiler::StepMode::Off,
                   glint::compiler::hostTarget(), nullptr, loops));
  bool half = std::string(dtype) == "f16";
  int precision = half ? 11 : 8, minExponent = half ? -24 : -133;
  llvm::StringSet<> narrowed;
  int64_t narrowBytes = 0, allBytes = 0;
  for (const rt::TensorSpec &spec : model->info().weights) {
    int64_t n = 1;
    for (int64_t d : spec.shape)
      n *= d;
    bool narrow = spec.dtype == dtype;
    allBytes += n * (narrow ? 2 : 4);
    if (narrow) {
      narrowed.insert(spec.name);
      narrowBytes += 2 * n;
    }
  }
  ASSERT_FALSE(narrowed.empty()) << "no weight was narrowed";
  std::cout << llvm::formatv("[ {0} {1} ] {2} weights narrowed: {3:f1}% of "
                             "the weight bytes\n",
                             name, dtype, narrowed.size(),
                             100.0 * narrowBytes / allBytes)
                   .str();

  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  auto module = glint::import::importCheckpoint(&context, dir, *checkpoint);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  glint::reference::WeightProvider exact =
      glint::reference::weightsFrom(*checkpoint);
  glint::reference::ReferenceEvaluator evaluator(
      **module,
      [&](llvm::StringRef weight,
          llvm::ArrayRef<int64_t> shape) -> llvm::Expected<Array> {
        auto array = exact(weight, shape);
        if (array && narrowed.contains(weight))
          for (double &x : array->data)
            x = roundToPrecision(x, precision, minExponent);
        return array;
      });

  int cases = 0;
  for (int i = 0;; ++i) {
    std::string ids = llvm::formatv("{0}/input_ids_{1}.npy", dir, i).str();
    std::string pixels =
        llvm::formatv("{0}/pixel_values_{1}.npy", dir, i).str();
    rt::HostArray input;
    Array argument;
    if (llvm::sys::fs::exists(ids)) {
      auto read = rt::readNpyI64(ids);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input = rt::HostArray::make(read->shape, "i64");
      std::memcpy(input.bytes.data(), read->data.data(), input.bytes.size());
      argument = Array(read->shape);
      for (size_t k = 0; k < read->data.size(); ++k)
        argument.data[k] = double(read->data[k]);
    } else if (llvm::sys::fs::exists(pixels)) {
      auto read = rt::readNpyF32(pixels);
      ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
      input = rt::HostArray::make(read->shape, "f32");
      std::memcpy(input.bytes.data(), read->data.data(), input.bytes.size());
      argument = Array(read->shape);
      for (size_t k = 0; k < read->data.size(); ++k)
        argument.data[k] = double(read->data[k]);
    } else {
      break;
    }
    ++cases;
    auto result = model->run({input});
    ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    auto expected = evaluator.run("forward", {argument});
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    double error = relativeError(valuesOf(*result), (*expected)[0].data);
    auto unrounded = rt::readNpyF64(
        llvm::formatv("{0}/logits_float64_{1}.npy", dir, i).str());
    ASSERT_TRUE(bool(unrounded)) << llvm::toString(unrounded.takeError());
    double rounding = relativeError(valuesOf(*result), unrounded->data);
    std::cout << llvm::formatv("[ {0} {1} case {2} ] vs the evaluator on the "
                               "rounded weights: {3:e}; vs the f32 weights' "
                               "float64 logits: {4:e}\n",
                               name, dtype, i, error, rounding)
                     .str();
    EXPECT_LT(error, 1e-5);
    EXPECT_LT(rounding, half ? 5e-3 : 5e-2);
  }
  EXPECT_GE(cases, 2);
}

INSTANTIATE_TEST_SUITE_P(
    Families, NarrowWeightsFixture,
    ::testing::Combine(::testing::Values("mamba_conv3", "mamba_conv4_untied",
                                         "mamba2", "rwkv4", "recurrentgemma",
                                         "rwkv6", "vim"),
                       ::testing::Values("bf16", "f16")),
    [](const auto &info) {
      return std::string(std::get<0>(info.param)) + "_" +
             std::get<1>(info.param);
    });

// Arrays of a MiB or more go through the host block cache: a released
// block is handed out again to a request it fits (at most twice as large),
// the last released first, so a model's results copied out at every call
// land in pages already mapped; a request it does not fit gets a new block.
TEST(HostArrays, LargeBlocksAreReused) {
  using rt::HostArray;
  const int64_t n = 3 << 18; // 3 MiB of f32
  auto at = [](const HostArray &a) {
    return static_cast<const void *>(a.bytes.data());
  };
  const void *first;
  {
    HostArray a = HostArray::uninitialized({n}, "f32");
    first = at(a);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
    a.data<float>()[0] = 1.5f;
  }
  {
    // Smaller, within half: the kept block, its bytes as they were left
    // (a block unmapped and mapped again at the same address would read 0).
    HostArray b = HostArray::uninitialized({n - 1000}, "f32");
    EXPECT_EQ(at(b), first);
    EXPECT_EQ(b.data<float>()[0], 1.5f);
    b.data<float>()[0] = 2.5f;
  }
  {
    // With the 3 MiB block kept again: a request over twice as large, or
    // under half of it, gets a block of its own (and make() still zeroes).
    HostArray c = HostArray::make({2 * n + 16}, "f32");
    EXPECT_NE(at(c), first);
    EXPECT_EQ(c.data<float>()[2 * n], 0.0f);
    HostArray d = HostArray::make({n / 3}, "f32");
    EXPECT_NE(at(d), first);
    EXPECT_EQ(d.data<float>()[n / 3 - 1], 0.0f);
    // ... and the kept block is still there for one it fits.
    HostArray e = HostArray::uninitialized({n}, "f32");
    EXPECT_EQ(at(e), first);
    EXPECT_EQ(e.data<float>()[0], 2.5f);
  }
  // Small arrays are plain allocations, untouched by the cache.
  HostArray small = HostArray::make({16}, "f32");
  EXPECT_EQ(small.data<float>()[15], 0.0f);
}

/// RecurrentGemma imported with Griffin's window (glint_window_rule =
/// "griffin": query i sees i-W <= j <= i), compiled: the full forward matches
/// the Griffin-masked transformers model on inputs longer than W, and
/// generation step by step (24 positions, W = 16) matches the full forward.
TEST(CompiledWindowRule, GriffinRuleMatchesReferenceAndGenerates) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/recurrentgemma_window";
  llvm::json::Object overrides;
  overrides["glint_window_rule"] = "griffin";
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
  compileModel(dir, checkpoint, model, glint::compiler::StepMode::Auto,
               glint::compiler::hostTarget(), &overrides);
  ASSERT_TRUE(model);
  for (int i = 0; i < 2; ++i) {
    auto read =
        rt::readNpyI64(llvm::formatv("{0}/input_ids_{1}.npy", dir, i).str());
    ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
    rt::HostArray input = rt::HostArray::make(read->shape, "i64");
    std::memcpy(input.bytes.data(), read->data.data(), input.bytes.size());
    auto result = model->run({input});
    ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
    for (bool griffin : {true, false}) {
      auto expected =
          rt::readNpyF64(llvm::formatv("{0}/logits_{1}float64_{2}.npy", dir,
                                       griffin ? "griffin_" : "", i)
                             .str());
      ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
      ASSERT_EQ(result->shape, expected->shape);
      double error = relativeError(valuesOf(*result), expected->data);
      if (griffin) {
        std::cout << llvm::formatv("[ recurrentgemma_window griffin case {0} ] "
                                   "compiled vs float64 reference: {1:e}\n",
                                   i, error)
                         .str();
        EXPECT_LT(error, 1e-5);
      } else {
        EXPECT_GT(error, 1e-2) << "the rules should differ for L > W";
      }
    }
  }
  checkStepByStep(*model, "recurrentgemma_window (griffin)",
                  {dir, checkpoint.get(), &overrides});
}
// The gla and retnet fixtures normalise each head's output with an RMSNorm
// whose eps (1e-5, 1e-6) is above the head's scale where q·S or q·k nearly
// vanishes: there float32 cancellation is amplified (retnet, token 62 first:
// layer 1's head 1 has q·k = -1.4e-5 from terms 44,000 times larger, and the
// step entry's logits differ from the full forward's by 4.6e-5). The
// per-position tolerance of checkStepByStep takes that from the evaluator.
INSTANTIATE_TEST_SUITE_P(Families, GeneratingFixture,
                         ::testing::Values("mamba_conv3", "mamba_conv4_untied",
                                           "mamba2", "rwkv4", "recurrentgemma",
                                           "rwkv6", "vim", "gla", "gla_conv",
                                           "retnet", "hgrn2"));

/// A weight holding NaN or ±Inf is refused when the weights are bound, the
/// message naming the weight, the value and its element; allowed on
/// request.
/// `checkpoint`'s tensors written to `file` with element 3 of `victim`
/// replaced by `bad`, and opened again (null after a failed expectation).
std::unique_ptr<rt::Checkpoint> poisonedCopy(const rt::Checkpoint &checkpoint,
                                             llvm::StringRef victim, float bad,
                                             llvm::StringRef file) {
  std::vector<std::vector<float>> values;
  std::vector<rt::F32Tensor> tensors;
  const std::vector<std::string> names = checkpoint.names();
  for (const std::string &name : names) {
    auto data = checkpoint.loadF32(name);
    EXPECT_TRUE(bool(data)) << llvm::toString(data.takeError());
    if (!data)
      return nullptr;
    values.push_back(std::move(*data));
    if (name == victim)
      values.back()[3] = bad;
  }
  EXPECT_TRUE(llvm::is_contained(names, victim)) << victim.str();
  for (auto [name, data] : llvm::zip(names, values))
    tensors.push_back({name, checkpoint.find(name)->shape, data});
  EXPECT_FALSE(bool(rt::writeSafetensors(file, tensors)));
  auto opened = rt::Checkpoint::open(file);
  EXPECT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
  return opened ? std::move(*opened) : nullptr;
}

TEST(CompiledModelWeights, NonFiniteWeightsAreRefused) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/mamba_conv3";
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
  compileModel(dir, checkpoint, model, glint::compiler::StepMode::Off);
  ASSERT_TRUE(model);
  // The fixture's tensors, with one value of one weight replaced.
  const std::string victim = model->info().weights.back().name;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::infinity()}) {
    llvm::SmallString<128> file;
    ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-nonfinite",
                                                    "safetensors", file));
    llvm::FileRemover remove(file);
    std::unique_ptr<rt::Checkpoint> broken =
        poisonedCopy(*checkpoint, victim, bad, file);
    ASSERT_TRUE(broken);
    llvm::Error refused = model->bindWeights(*broken);
    ASSERT_TRUE(bool(refused));
    std::string message = llvm::toString(std::move(refused));
    EXPECT_NE(message.find("weight '" + victim + "' holds " +
                           (std::isnan(bad) ? "NaN" : "-Inf") +
                           " at element 3 of"),
              std::string::npos)
        << message;
    EXPECT_FALSE(bool(model->bindWeights(*broken, /*allowNonFinite=*/true)));
  }
}

/// States kept in the model's buffers are not checked again at each step:
/// a NaN the model computes is reported from the step's logits instead of
/// being generated from. Here a NaN weight, bound on request.
TEST(CompiledModelSteps, NaNLogitsOfHeldStatesAreAnError) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/mamba_conv3";
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
  compileModel(dir, checkpoint, model, glint::compiler::StepMode::On);
  ASSERT_TRUE(model && model->hasStep());
  llvm::SmallString<128> file;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-nanstep",
                                                  "safetensors", file));
  llvm::FileRemover remove(file);
  std::unique_ptr<rt::Checkpoint> broken =
      poisonedCopy(*checkpoint, model->info().step->weights.back().name,
                   std::numeric_limits<float>::quiet_NaN(), file);
  ASSERT_TRUE(broken);
  llvm::Error bound = model->bindWeights(*broken, /*allowNonFinite=*/true);
  ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
  auto states = model->startStates(1);
  ASSERT_TRUE(bool(states)) << llvm::toString(states.takeError());
  std::mt19937_64 rng(testSeed());
  auto logits = model->step({randomIds(*model, 1, 3, rng)}, *states);
  ASSERT_FALSE(bool(logits));
  std::string error = llvm::toString(logits.takeError());
  EXPECT_NE(error.find("the step's logits hold NaN at flat index"),
            std::string::npos)
      << error;
}

/// One tensor of a checkpoint written by writePlaced: little-endian bytes
/// at a chosen offset of the data section.
struct PlacedTensor {
  std::string name;
  std::string dtype; // "F32" or "BF16"
  std::vector<int64_t> shape;
  std::vector<char> bytes;
  uint64_t offset = 0;
};

/// Writes `tensors` as a safetensors file whose data section starts 64-byte
/// aligned (the header padded with spaces), each tensor at its offset, the
/// holes between them zero. A mapped file is page-aligned, so a tensor at
/// offset k (mod 64) lies k bytes past a 64-byte boundary in memory.
void writePlaced(llvm::StringRef path, llvm::ArrayRef<PlacedTensor> tensors) {
  llvm::json::Object header;
  uint64_t size = 0;
  for (const PlacedTensor &t : tensors) {
    uint64_t end = t.offset + t.bytes.size();
    header[t.name] =
        llvm::json::Object{{"dtype", t.dtype},
                           {"shape", llvm::json::Array(t.shape)},
                           {"data_offsets", llvm::json::Array{t.offset, end}}};
    size = std::max(size, end);
  }
  std::string text;
  llvm::raw_string_ostream(text) << llvm::json::Value(std::move(header));
  text.append(llvm::alignTo(8 + text.size(), 64) - 8 - text.size(), ' ');
  std::string contents(8, '\0');
  llvm::support::endian::write64le(contents.data(), text.size());
  contents += text;
  size_t data = contents.size();
  contents.resize(data + size, '\0');
  for (const PlacedTensor &t : tensors)
    std::memcpy(contents.data() + data + t.offset, t.bytes.data(),
                t.bytes.size());
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  ASSERT_FALSE(ec) << ec.message();
  os << contents;
}

/// bfloat16 nearest to `x` (ties to even; `x` is finite).
uint16_t toBF16(float x) {
  uint32_t bits = llvm::bit_cast<uint32_t>(x);
  return uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

/// Every tensor of `checkpoint` as `dtype` ("F32", or "BF16" rounded to
/// nearest), one after another in name order, each starting `shift` bytes
/// past a 64-byte boundary of the data section; `misplaced` (if named)
/// starts 2 bytes past one instead, misaligned for f32.
/// The row-major matrix whose prepared panels (TensorSpec::panelLayout)
/// `data` holds: element (n, k) of the product's weight is at
/// [n / NR, k, n % NR]; the panels' columns past N must be zeros.
std::vector<float> fromPanels(const float *data, const rt::TensorSpec &spec) {
  bool nk = spec.panelLayout == "nk";
  int64_t n = spec.shape[nk ? 0 : 1], k = spec.shape[nk ? 1 : 0];
  int64_t width = spec.panelWidth;
  std::vector<float> matrix(n * k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      matrix[nk ? i * k + j : j * n + i] =
          data[i / width * k * width + j * width + i % width];
  int64_t panels = (n + width - 1) / width;
  for (int64_t i = n; i < panels * width; ++i)
    for (int64_t j = 0; j < k; ++j)
      EXPECT_EQ(data[i / width * k * width + j * width + i % width], 0.0f)
          << spec.name << ": padding column " << i;
  return matrix;
}

std::vector<PlacedTensor> relaidOut(const rt::Checkpoint &checkpoint,
                                    llvm::StringRef dtype, uint64_t shift,
                                    llvm::StringRef misplaced = "") {
  std::vector<PlacedTensor> tensors;
  uint64_t end = 0;
  for (const std::string &name : checkpoint.names()) {
    PlacedTensor t;
    t.name = name;
    t.dtype = dtype.str();
    t.shape = checkpoint.find(name)->shape;
    auto values = checkpoint.loadF32(name);
    EXPECT_TRUE(bool(values)) << llvm::toString(values.takeError());
    if (!values)
      return {};
    for (float x : *values) {
      char bytes[4];
      if (dtype == "BF16") {
        llvm::support::endian::write16le(bytes, toBF16(x));
        t.bytes.insert(t.bytes.end(), bytes, bytes + 2);
      } else {
        llvm::support::endian::write32le(bytes, llvm::bit_cast<uint32_t>(x));
        t.bytes.insert(t.bytes.end(), bytes, bytes + 4);
      }
    }
    t.offset = llvm::alignTo(end, 64) + (name == misplaced ? 2 : shift);
    end = t.offset + t.bytes.size();
    tensors.push_back(std::move(t));
  }
  return tensors;
}

/// Binding weights in place (read from the mapped checkpoint, no copy)
/// against copying them: mamba_conv3 with its step entry, compiled once.
/// Each test first binds the fixture's checkpoint by copy and records what
/// the model computes on fresh random ids (the forward's logits, the step
/// entry's logits and next states), then binds a checkpoint laid out for
/// the test and expects the same bytes.
class WeightBinding : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    compileModel(std::string(GLINT_SOURCE_DIR) + "/test/fixtures/mamba_conv3",
                 fixture, model, glint::compiler::StepMode::On);
  }
  static void TearDownTestSuite() {
    model.reset();
    fixture.reset();
  }

  void SetUp() override {
    ASSERT_TRUE(model && model->hasStep());
    ASSERT_FALSE(
        llvm::sys::fs::createUniqueDirectory("glint-weight-binding", dir));
    unsigned seed = std::random_device{}();
    std::mt19937_64 rng(seed);
    ids = randomIds(*model, 2, 9, rng);
    llvm::Error bound = model->bindWeights(
        *fixture, false, rt::CompiledModel::WeightStorage::Copy);
    ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
    for (const rt::TensorSpec &spec : model->info().weights)
      EXPECT_NE(model->weightData(spec.name),
                fixture->find(spec.name)->bytes.data())
          << spec.name << " is not a copy";
    expected = outputs();
    ASSERT_FALSE(expected.empty());
  }
  void TearDown() override { llvm::sys::fs::remove_directories(dir); }

  /// The forward's logits, then the step entry's logits and next states,
  /// for `ids`; empty after a failure.
  std::vector<rt::HostArray> outputs() {
    auto forward = model->run({ids});
    EXPECT_TRUE(bool(forward)) << llvm::toString(forward.takeError());
    auto states = model->initialStates(ids.shape[0]);
    EXPECT_TRUE(bool(states)) << llvm::toString(states.takeError());
    if (!forward || !states)
      return {};
    auto logits = model->step({ids}, *states);
    EXPECT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
    if (!logits)
      return {};
    std::vector<rt::HostArray> all;
    all.push_back(std::move(*forward));
    all.push_back(std::move(*logits));
    for (rt::HostArray &state : *states)
      all.push_back(std::move(state));
    return all;
  }

  /// Expects outputs() to equal `reference`, byte for byte.
  void expectSameOutputs(const std::vector<rt::HostArray> &reference) {
    std::vector<rt::HostArray> actual = outputs();
    ASSERT_EQ(actual.size(), reference.size());
    for (auto [i, pair] : llvm::enumerate(llvm::zip(actual, reference))) {
      const auto &[a, b] = pair;
      EXPECT_EQ(a.shape, b.shape) << "output " << i;
      EXPECT_TRUE(a.bytes == b.bytes) << "output " << i << " differs";
    }
  }

  /// Writes `tensors` to `name` in the test's directory and opens it.
  std::unique_ptr<rt::Checkpoint> placed(llvm::StringRef name,
                                         llvm::ArrayRef<PlacedTensor> tensors) {
    llvm::SmallString<128> file(dir);
    llvm::sys::path::append(file, name);
    writePlaced(file, tensors);
    auto opened = rt::Checkpoint::open(file);
    EXPECT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
    return opened ? std::move(*opened) : nullptr;
  }

  /// Binds `checkpoint` in place.
  void bindInPlace(const rt::Checkpoint &checkpoint) {
    llvm::Error bound = model->bindWeights(checkpoint);
    ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
  }

  static inline std::unique_ptr<rt::Checkpoint> fixture;
  static inline std::unique_ptr<rt::CompiledModel> model;
  llvm::SmallString<128> dir;
  rt::HostArray ids;
  std::vector<rt::HostArray> expected;
};

/// F32 weights are read where the mapped checkpoint holds them, also 4
/// bytes past a 64-byte boundary (the compiled code may assume no more
/// than float's alignment), and compute what copies of them compute. The
/// products' weights are the exception: their panels are laid out when
/// bound (prepared weights), in the model's own memory.
TEST_F(WeightBinding, InPlaceMatchesCopiedBitForBit) {
  ASSERT_NO_FATAL_FAILURE(bindInPlace(*fixture));
  int panels = 0;
  for (const rt::TensorSpec &spec : model->info().weights) {
    bool inPlace =
        model->weightData(spec.name) == fixture->find(spec.name)->bytes.data();
    EXPECT_EQ(inPlace, !spec.hasPanels()) << spec.name;
    panels += spec.hasPanels();
  }
  EXPECT_GT(panels, 0) << "the fixture's products read no prepared weight";
  expectSameOutputs(expected);

  auto shifted = placed("shifted.safetensors", relaidOut(*fixture, "F32", 4));
  ASSERT_TRUE(shifted);
  ASSERT_NO_FATAL_FAILURE(bindInPlace(*shifted));
  for (const rt::TensorSpec &spec : model->info().weights) {
    const void *data = model->weightData(spec.name);
    if (spec.hasPanels())
      continue;
    EXPECT_EQ(data, shifted->find(spec.name)->bytes.data()) << spec.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 4u) << spec.name;
  }
  expectSameOutputs(expected);
}

/// A tensor that is not aligned for float is copied; the others stay in
/// place; the results do not change.
TEST_F(WeightBinding, MisalignedTensorIsCopied) {
  const std::vector<rt::TensorSpec> &weights = model->info().weights;
  // One read in place (the prepared weights never are).
  std::vector<std::string> candidates;
  for (const rt::TensorSpec &spec : weights)
    if (!spec.hasPanels())
      candidates.push_back(spec.name);
  ASSERT_FALSE(candidates.empty());
  const std::string victim = candidates[candidates.size() / 2];
  auto misaligned =
      placed("misaligned.safetensors", relaidOut(*fixture, "F32", 0, victim));
  ASSERT_TRUE(misaligned);
  const uint8_t *stored = misaligned->find(victim)->bytes.data();
  ASSERT_NE(reinterpret_cast<uintptr_t>(stored) % alignof(float), 0u);
  ASSERT_NO_FATAL_FAILURE(bindInPlace(*misaligned));
  for (const rt::TensorSpec &spec : weights) {
    const void *data = model->weightData(spec.name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % alignof(float), 0u)
        << spec.name;
    if (spec.name == victim)
      EXPECT_NE(data, stored) << "the misaligned tensor was not copied";
    else
      EXPECT_EQ(data == misaligned->find(spec.name)->bytes.data(),
                !spec.hasPanels())
          << spec.name;
  }
  expectSameOutputs(expected);
}

/// Weights bound in place keep their file mapped: the Checkpoint object can
/// go, and the file too.
TEST_F(WeightBinding, WeightsOutliveTheCheckpoint) {
  auto shifted = placed("shifted.safetensors", relaidOut(*fixture, "F32", 4));
  ASSERT_TRUE(shifted);
  ASSERT_NO_FATAL_FAILURE(bindInPlace(*shifted));
  std::vector<const void *> before;
  for (const rt::TensorSpec &spec : model->info().weights) {
    before.push_back(model->weightData(spec.name));
    EXPECT_EQ(before.back() == shifted->find(spec.name)->bytes.data(),
              !spec.hasPanels());
  }
  shifted.reset();
  llvm::sys::fs::remove_directories(dir);
  for (auto [spec, data] : llvm::zip(model->info().weights, before))
    EXPECT_EQ(model->weightData(spec.name), data) << spec.name;
  expectSameOutputs(expected);
}

/// A BF16 checkpoint is converted to f32 once, into memory the model owns
/// (the file's pages are then released, see TensorInfo::releasePages):
/// the model computes what an F32 checkpoint of the same values gives, and
/// the checkpoint still reads back the values the model holds.
TEST_F(WeightBinding, BF16CheckpointIsConverted) {
  auto bf16 = placed("bf16.safetensors", relaidOut(*fixture, "BF16", 0));
  ASSERT_TRUE(bf16);
  auto widened = placed("widened.safetensors", relaidOut(*bf16, "F32", 0));
  ASSERT_TRUE(widened);
  ASSERT_NO_FATAL_FAILURE(bindInPlace(*widened));
  std::vector<rt::HostArray> reference = outputs();
  ASSERT_FALSE(reference.empty());

  ASSERT_NO_FATAL_FAILURE(bindInPlace(*bf16));
  bool rounded = false;
  for (const rt::TensorSpec &spec : model->info().weights) {
    const rt::TensorInfo *tensor = bf16->find(spec.name);
    const auto *data = static_cast<const float *>(model->weightData(spec.name));
    EXPECT_NE(static_cast<const void *>(data), tensor->bytes.data());
    auto values = bf16->loadF32(spec.name);
    ASSERT_TRUE(bool(values)) << llvm::toString(values.takeError());
    if (spec.hasPanels())
      EXPECT_TRUE(std::equal(values->begin(), values->end(),
                             fromPanels(data, spec).begin()))
          << spec.name;
    else
      EXPECT_TRUE(std::equal(values->begin(), values->end(), data))
          << spec.name;
    auto original = fixture->loadF32(spec.name);
    ASSERT_TRUE(bool(original)) << llvm::toString(original.takeError());
    rounded |= *original != *values;
  }
  EXPECT_TRUE(rounded) << "no weight changed in BF16: the test proves little";
  expectSameOutputs(reference);
}

/// A model compiled with 16-bit matrices (glint-compile --weight-dtype=bf16)
/// reads a BF16 checkpoint's matrices in place, converts the tensors it
/// keeps in f32 (gains, convolutions, decays), and computes bit for bit
/// what it computes from copies of them, or from an F32 checkpoint holding
/// the same values (rounded to bf16 when bound, which is then exact).
TEST_F(WeightBinding, NarrowWeightsReadBF16InPlace) {
  std::unique_ptr<rt::Checkpoint> unused;
  std::unique_ptr<rt::CompiledModel> narrow;
  glint::LoopsOptions loops;
  loops.weightType = "bf16";
  ASSERT_NO_FATAL_FAILURE(
      compileModel(std::string(GLINT_SOURCE_DIR) + "/test/fixtures/mamba_conv3",
                   unused, narrow, glint::compiler::StepMode::On,
                   glint::compiler::hostTarget(), nullptr, loops));
  auto bf16 = placed("bf16.safetensors", relaidOut(*fixture, "BF16", 0));
  ASSERT_TRUE(bf16);
  auto widened = placed("widened.safetensors", relaidOut(*bf16, "F32", 0));
  ASSERT_TRUE(widened);
  // outputs() runs `model`: the narrow one for this test.
  std::swap(model, narrow);
  llvm::scope_exit restore([&] { std::swap(model, narrow); });

  llvm::Error copied =
      model->bindWeights(*bf16, false, rt::CompiledModel::WeightStorage::Copy);
  ASSERT_FALSE(bool(copied)) << llvm::toString(std::move(copied));
  std::vector<rt::HostArray> reference = outputs();
  ASSERT_FALSE(reference.empty());

  ASSERT_NO_FATAL_FAILURE(bindInPlace(*bf16));
  int narrowWeights = 0;
  for (const rt::TensorSpec &spec : model->info().weights) {
    bool same =
        model->weightData(spec.name) == bf16->find(spec.name)->bytes.data();
    // Prepared panels are laid out from the bf16 bytes, in bf16.
    EXPECT_EQ(same, spec.dtype == "bf16" && !spec.hasPanels()) << spec.name;
    narrowWeights += spec.dtype == "bf16";
  }
  EXPECT_GT(narrowWeights, 0);
  expectSameOutputs(reference);

  ASSERT_NO_FATAL_FAILURE(bindInPlace(*widened));
  for (const rt::TensorSpec &spec : model->info().weights) {
    if (spec.dtype == "bf16") {
      EXPECT_NE(model->weightData(spec.name),
                widened->find(spec.name)->bytes.data())
          << spec.name;
    }
  }
  expectSameOutputs(reference);

  // A NaN in a matrix read in place (bf16 bits 0x7fc1 at element 3) is
  // refused, naming the weight and the element; allowed on request.
  std::vector<PlacedTensor> poisoned = relaidOut(*fixture, "BF16", 0);
  auto victim = llvm::find_if(poisoned, [&](const PlacedTensor &t) {
    return llvm::any_of(model->info().weights, [&](const rt::TensorSpec &s) {
      return s.name == t.name && s.dtype == "bf16";
    });
  });
  ASSERT_NE(victim, poisoned.end());
  llvm::support::endian::write16le(victim->bytes.data() + 6, 0x7fc1);
  auto bad = placed("nan.safetensors", poisoned);
  ASSERT_TRUE(bad);
  llvm::Error refused = model->bindWeights(*bad);
  ASSERT_TRUE(bool(refused));
  std::string message = llvm::toString(std::move(refused));
  EXPECT_NE(
      message.find("weight '" + victim->name + "' holds NaN at element 3"),
      std::string::npos)
      << message;
  llvm::Error allowed = model->bindWeights(*bad, /*allowNonFinite=*/true);
  EXPECT_FALSE(bool(allowed)) << llvm::toString(std::move(allowed));
}

/// The CUDA target with its kernels run as loops on this CPU (glint-compile
/// --target=cuda --gpu-emulate): the GPU lowering's structure (one thread
/// per iteration of each parallel loop nest, the index arithmetic, bounds
/// guards and per-thread stack buffers, the scalar recurrences) against the
/// float64 reference without a GPU, at the same tolerance, forward and step
/// by step. Chunks of 4 steps in the recurrences' time-parallel form, so
/// that the fixtures' sequences span several chunks (the last one shorter)
/// while a generated token's step stays sequential. Not covered here: NVVM
/// code generation and the CUDA runtime (scripts/gpu-check.sh, on a GPU).
glint::TargetOptions emulatedGpu() {
  glint::TargetOptions target = glint::compiler::hostTarget();
  target.kind = glint::TargetOptions::Kind::Cuda;
  target.gpuEmulate = true;
  target.gpuTimeChunk = 4;
  return target;
}

class EmulatedGpuFixture : public CompiledFixture {
protected:
  glint::TargetOptions target() const override { return emulatedGpu(); }
};

TEST_P(EmulatedGpuFixture, MatchesFloat64Reference) { checkAgainstReference(); }

class EmulatedGpuGenerating : public CompiledFixture {
protected:
  glint::compiler::StepMode stepMode() const override {
    return glint::compiler::StepMode::On;
  }
  glint::TargetOptions target() const override { return emulatedGpu(); }
};

TEST_P(EmulatedGpuGenerating, StepByStepMatchesFullForward) {
  checkStepByStep(*model, GetParam(), {dir, checkpoint.get()});
}

INSTANTIATE_TEST_SUITE_P(Families, EmulatedGpuFixture,
                         ::testing::Values("mamba_conv3", "mamba_conv4_untied",
                                           "mamba2", "rwkv4", "recurrentgemma",
                                           "rwkv6", "vim"));
INSTANTIATE_TEST_SUITE_P(Families, EmulatedGpuGenerating,
                         ::testing::Values("mamba_conv3", "mamba2", "rwkv4",
                                           "recurrentgemma", "rwkv6"));

} // namespace

namespace {

/// A bundled trained model (models/<name>), compiled.
class CompiledBundledModel : public ::testing::TestWithParam<const char *> {
protected:
  void SetUp() override {
    compileModel(dir(), checkpoint, model, glint::compiler::StepMode::Auto);
  }
  std::string dir() const {
    return std::string(GLINT_SOURCE_DIR) + "/models/" + GetParam();
  }

  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
};

TEST_P(CompiledBundledModel, GenerationMatchesFullForward) {
  {
    SCOPED_TRACE("step by step");
    checkStepByStep(*model, GetParam(), {dir(), checkpoint.get()});
  }
  {
    SCOPED_TRACE("greedy generation");
    checkGreedyGeneration(*model);
  }
}

INSTANTIATE_TEST_SUITE_P(Bundled, CompiledBundledModel,
                         ::testing::Values("mamba-keyword", "rwkv-keyword",
                                           "griffin-keyword"));

} // namespace
