//===- GradientCompileTest.cpp - compiled gradient entry vs evaluator -----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// `glint-compile --grad`: the gradient function of glint-differentiate
// compiled through the CPU pipeline into the library's `glint_gradient`
// entry, run in float32 by the runtime, against the reference evaluator
// running the same gradient function in double. Every bundled model and
// every fixture checkpoint, through glint-import with its real weights, on
// random token ids (or images) and a random seed: the logits, each layer's
// cotangent and the input embeddings' must agree to 1e-4 relative error.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "import/Importers.h"
#include "passes/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/io/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include "test/unit/CompiledTestSupport.h"
#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <random>

using namespace mlir;
namespace rt = mlir::glint::runtime;
namespace ref = mlir::glint::reference;
using mlir::glint::testing::relativeError;

namespace {

constexpr double kTolerance = 1e-4;

/// Checkpoint folders under the source tree: one per mixer family by
/// default (the compile of each costs tens of seconds on CI's two cores);
/// every bundled model and fixture with GLINT_TEST_ALL_CHECKPOINTS=1.
std::vector<std::string> checkpointDirs() {
  if (!std::getenv("GLINT_TEST_ALL_CHECKPOINTS"))
    return {"models/mamba-keyword", "models/vim-shapes",
            "models/griffin-keyword", "test/fixtures/mamba2",
            "test/fixtures/rwkv6"};
  std::vector<std::string> dirs;
  for (const char *parent : {"models", "test/fixtures"}) {
    std::string root = std::string(GLINT_SOURCE_DIR) + "/" + parent;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(root, ec), end; it != end && !ec;
         it.increment(ec))
      if (llvm::sys::fs::exists(it->path() + "/config.json") &&
          llvm::sys::fs::exists(it->path() + "/model.safetensors"))
        dirs.push_back(std::string(parent) + "/" +
                       llvm::sys::path::filename(it->path()).str());
  }
  llvm::sort(dirs);
  return dirs;
}

class CompiledGradient : public ::testing::TestWithParam<std::string> {};

TEST_P(CompiledGradient, MatchesEvaluator) {
  uint64_t seed = std::random_device{}();
  if (const char *fixed = std::getenv("GLINT_TEST_SEED"))
    seed = std::strtoull(fixed, nullptr, 10);
  SCOPED_TRACE(llvm::formatv("{0}, seed {1}", GetParam(), seed).str());
  std::mt19937_64 rng(seed);

  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnostics += diag.str() + "\n";
    return success();
  });

  std::string dir = std::string(GLINT_SOURCE_DIR) + "/" + GetParam();
  auto opened = rt::Checkpoint::open(dir);
  ASSERT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
  std::unique_ptr<rt::Checkpoint> checkpoint = std::move(*opened);
  auto imported = glint::import::importCheckpoint(&context, dir, *checkpoint);
  ASSERT_TRUE(bool(imported)) << llvm::toString(imported.takeError());
  OwningOpRef<ModuleOp> module = std::move(*imported);
  OwningOpRef<ModuleOp> reference = module->clone();

  llvm::SmallString<128> library;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-grad", "so", library));
  llvm::FileRemover removeLibrary(library);
  llvm::Error compiled = glint::compiler::compileToLibrary(
      *module, "forward", library, glint::compiler::StepMode::Off, {}, {},
      glint::compiler::hostTarget(), /*gradient=*/true);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled)) << "\n"
                               << diagnostics;
  auto loaded = rt::CompiledModel::load(library);
  ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
  rt::CompiledModel &model = **loaded;
  ASSERT_TRUE(model.hasGradient());
  const rt::GradientInfo &grad = *model.info().gradient;
  EXPECT_EQ(grad.entry, "glint_gradient");
  ASSERT_FALSE(grad.layers.empty());
  ASSERT_EQ(grad.inputs.size(), 2u); // the input, the seed
  llvm::Error bound = model.bindWeights(*checkpoint);
  ASSERT_FALSE(bool(bound)) << llvm::toString(std::move(bound));

  // Two sequences of 9 tokens (or two images), and a seed on the logits:
  // short, since the evaluator's backward of a recurrence is O(L²) per head
  // (several chunks of the compiled scan are covered by LowerGradientsTest).
  const int64_t len = 9;
  std::vector<rt::HostArray> host;
  std::vector<ref::Array> args;
  for (auto [i, spec] : llvm::enumerate(grad.inputs)) {
    std::vector<int64_t> shape = spec.shape;
    for (auto [d, size] : llvm::enumerate(shape))
      if (size < 0)
        size = d == 0 ? 2 : len;
    rt::HostArray h = rt::HostArray::make(shape, spec.dtype);
    ref::Array a(shape);
    if (spec.dtype == "i64") {
      std::uniform_int_distribution<int64_t> id(0, spec.limit ? spec.limit - 1
                                                              : 7);
      for (int64_t e = 0; e < a.numElements(); ++e)
        a.data[e] = static_cast<double>(h.data<int64_t>()[e] = id(rng));
    } else {
      ASSERT_EQ(spec.dtype, "f32");
      a = glint::testing::randomArray(rng, shape, -1.0, 1.0);
      for (int64_t e = 0; e < a.numElements(); ++e)
        a.data[e] = h.data<float>()[e] = static_cast<float>(a.data[e]);
    }
    host.push_back(std::move(h));
    args.push_back(std::move(a));
  }
  auto outs = model.runGradient(host);
  ASSERT_TRUE(bool(outs)) << llvm::toString(outs.takeError());

  auto fn = reference->lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(succeeded(glint::differentiate(fn, "forward_grad")))
      << diagnostics;
  ref::ReferenceEvaluator evaluator(*reference, ref::weightsFrom(*checkpoint));
  auto expected = evaluator.run("forward_grad", args);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  ASSERT_EQ(expected->size(), outs->size());
  ASSERT_EQ(outs->size(), grad.results.size());
  for (size_t r = 0; r < outs->size(); ++r) {
    SCOPED_TRACE(grad.results[r].name);
    glint::testing::expectClose((*outs)[r], (*expected)[r], kTolerance,
                                grad.results[r].name);
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, CompiledGradient,
                         ::testing::ValuesIn(checkpointDirs()),
                         [](const auto &info) {
                           std::string name = info.param;
                           for (char &ch : name)
                             if (!isalnum(static_cast<unsigned char>(ch)))
                               ch = '_';
                           return name;
                         });

} // namespace
