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
//===----------------------------------------------------------------------===//

#include "runtime/CompiledModel.h"
#include "runtime/Npy.h"
#include "runtime/Safetensors.h"
#include "tools/glint-compile/Compiler.h"
#include "tools/glint-import/Importers.h"

#include "passes/Pipelines.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"

#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

using namespace mlir;
namespace rt = mlir::glint::runtime;
using mlir::glint::testing::relativeError;

namespace {

/// The elements of a result as doubles.
std::vector<double> valuesOf(const rt::HostArray &a) {
  std::vector<double> values;
  for (int64_t i = 0; i < a.numElements(); ++i)
    values.push_back(a.dtype == "f32" ? a.data<float>()[i]
                                      : a.data<double>()[i]);
  return values;
}

/// The fixture `name` imported, compiled to a temporary library (removed
/// when the test ends, the model stays loaded), loaded and bound to its
/// checkpoint.
class CompiledFixture : public ::testing::TestWithParam<const char *> {
protected:
  void SetUp() override {
    dir = std::string(GLINT_SOURCE_DIR) + "/test/fixtures/" + GetParam();
    auto opened = rt::Checkpoint::open(dir);
    ASSERT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
    checkpoint = std::move(*opened);

    DialectRegistry registry;
    glint::registerCompilerDialects(registry);
    MLIRContext context(registry);
    context.loadAllAvailableDialects();
    auto module = glint::import::importCheckpoint(&context, dir, *checkpoint);
    ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());

    llvm::SmallString<128> library;
    ASSERT_FALSE(
        llvm::sys::fs::createTemporaryFile("glint-test", "so", library));
    llvm::FileRemover removeLibrary(library);
    llvm::Error compiled =
        glint::compiler::compileToLibrary(**module, "forward", library);
    ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
    auto loaded = rt::CompiledModel::load(library);
    ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
    model = std::move(*loaded);
    llvm::Error bound = model->bindWeights(*checkpoint);
    ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));
  }

  std::string dir;
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::unique_ptr<rt::CompiledModel> model;
};

TEST_P(CompiledFixture, MatchesFloat64Reference) {

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

INSTANTIATE_TEST_SUITE_P(Families, CompiledFixture,
                         ::testing::Values("mamba_conv3",
                                           "mamba_conv4_untied", "mamba2",
                                           "rwkv4", "recurrentgemma", "rwkv6",
                                           "vim"));

} // namespace
