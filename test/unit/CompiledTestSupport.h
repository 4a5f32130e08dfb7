//===- CompiledTestSupport.h - compile, run, compare ------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What the tests of compiled kernels share: a fixture with the compiler's
// dialects and a poisoned heap, the conversion of evaluator arrays to the
// float32 inputs of a compiled model, and the comparison of a compiled
// result with the evaluator's.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_UNIT_COMPILEDTESTSUPPORT_H
#define GLINT_TEST_UNIT_COMPILEDTESTSUPPORT_H

#include "compiler/Compiler.h"
#include "passes/cpu/Pipelines.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "test/unit/TestSupport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/SmallString.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"

#include "gtest/gtest.h"

#include <malloc.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

namespace mlir::glint::testing {

/// A parameterised test that compiles and runs glint IR: an MLIR context
/// with the compiler's dialects, a random engine seeded afresh, and, for the
/// test's lifetime, new heap blocks that read 0x7f7f7f7f = 3.4e38 as
/// floats, so that an output element the compiled loops forget to write
/// cannot pass for a correct one.
template <typename Param>
class CompiledTest : public ::testing::TestWithParam<Param> {
protected:
  CompiledTest() : rng(std::random_device{}()) {
    registerCompilerDialects(registry);
    context = std::make_unique<MLIRContext>(registry);
    context->loadAllAvailableDialects();
    mallopt(M_PERTURB, 0x80);
  }
  ~CompiledTest() override { mallopt(M_PERTURB, 0); }

  DialectRegistry registry;
  std::unique_ptr<MLIRContext> context;
  std::mt19937_64 rng;
};

/// `module` compiled by the CPU pipeline (with `loops`, for `target`) into a
/// temporary library, loaded into `model`; the library file is removed once
/// loaded and `module` is left as it was (the pipeline rewrites a copy).
inline void
compileAndLoad(ModuleOp module, std::unique_ptr<runtime::CompiledModel> &model,
               const LoopsOptions &loops = {},
               const TargetOptions &target = compiler::hostTarget()) {
  llvm::SmallString<128> library;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("glint-test", "so", library));
  llvm::FileRemover removeLibrary(library);
  OwningOpRef<ModuleOp> copy = module.clone();
  llvm::Error compiled = compiler::compileToLibrary(
      *copy, "forward", library, compiler::StepMode::Auto,
      /*attention=*/{}, loops, target);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
  auto loaded = runtime::CompiledModel::load(library);
  ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
  model = std::move(*loaded);
}

/// `arrays` as float32 host arrays, the inputs of a compiled model.
inline std::vector<runtime::HostArray>
toHost(llvm::ArrayRef<reference::Array> arrays) {
  std::vector<runtime::HostArray> host;
  for (const reference::Array &a : arrays) {
    runtime::HostArray h = runtime::HostArray::make(
        std::vector<int64_t>(a.shape.begin(), a.shape.end()), "f32");
    for (int64_t i = 0; i < a.numElements(); ++i)
      h.data<float>()[i] = static_cast<float>(a.data[i]);
    host.push_back(std::move(h));
  }
  return host;
}

/// Checks that a compiled float32 result has the reference's shape, is
/// finite, and agrees with it to `tolerance` relative error
/// (‖a − b‖ / ‖b‖), or, given `scale`, relative to that instead
/// (‖a − b‖ / ‖scale‖): for a sum of products the scale is the same sum of
/// the terms' magnitudes (Σ |x w| + |b|), which bounds the rounding error of
/// any summation order, where ‖b‖ alone can be arbitrarily small when the
/// terms cancel (one output of a few terms, say).
inline void expectClose(const runtime::HostArray &result,
                        const reference::Array &reference, double tolerance,
                        llvm::StringRef context,
                        const reference::Array *scale = nullptr) {
  ASSERT_EQ(result.shape, std::vector<int64_t>(reference.shape.begin(),
                                               reference.shape.end()))
      << context.str();
  std::vector<double> actual(result.data<float>(),
                             result.data<float>() + result.numElements());
  EXPECT_TRUE(llvm::all_of(actual, [](double x) { return std::isfinite(x); }))
      << "a compiled result is not finite\n"
      << context.str();
  if (!scale) {
    EXPECT_LT(relativeError(actual, reference.data), tolerance)
        << context.str();
    return;
  }
  ASSERT_EQ(scale->shape, reference.shape) << context.str();
  EXPECT_LT(errorRelativeTo(actual, reference.data, scale->data), tolerance)
      << "error relative to the magnitude of the terms\n"
      << context.str();
}

/// What `fn` of `module` returns in the reference evaluator, for a module
/// whose arrays are all arguments (it reads no weights).
inline llvm::Expected<std::vector<reference::Array>>
evaluateWithoutWeights(ModuleOp module, llvm::ArrayRef<reference::Array> inputs,
                       llvm::StringRef fn = "forward") {
  reference::ReferenceEvaluator evaluator(module, reference::noWeights());
  return evaluator.run(fn, inputs);
}

/// Runs `model` on `inputs` in float32 and checks its first result against
/// what the evaluator computes from `module` (see expectClose).
inline void expectMatchesEvaluator(runtime::CompiledModel &model,
                                   ModuleOp module,
                                   llvm::ArrayRef<reference::Array> inputs,
                                   double tolerance, llvm::StringRef context) {
  auto expected = evaluateWithoutWeights(module, inputs);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  auto result = model.run(toHost(inputs));
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  expectClose(*result, (*expected)[0], tolerance, context);
}

} // namespace mlir::glint::testing

#endif // GLINT_TEST_UNIT_COMPILEDTESTSUPPORT_H
