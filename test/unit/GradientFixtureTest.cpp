//===- GradientFixtureTest.cpp - glint-differentiate vs torch autograd ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint's gradient function, run by the reference evaluator (double), against
// torch.autograd in float64 on the reference fixtures that carry a grad.json
// (written by scripts/fixtures/make_fixtures.py --gradients; see
// test/fixtures/README.md). The scalar is one logit, logits[batch, position,
// token] of input_ids_<input>.npy; the seed of @forward_grad is the one-hot
// array at that logit. Every cotangent @forward_grad returns (each
// token-mixing layer's output, then the embeddings) must match the stored
// torch gradient of the same tensor to a relative error (2-norm over the
// whole array) of 1e-10. The expected values are torch's, read from the
// .npy files; grad.json says which torch tensor each file is the gradient of.
//
//===----------------------------------------------------------------------===//

#include "import/Importers.h"
#include "passes/transforms/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/io/Npy.h"
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
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "test/unit/ImportedFixture.h"
#include "test/unit/TestSupport.h"

#include "gtest/gtest.h"

#include <iostream>

using namespace mlir;
namespace ref = mlir::glint::reference;
namespace rt = mlir::glint::runtime;
using mlir::glint::testing::relativeError;

namespace {

constexpr double kTolerance = 1e-10;

ref::Array readF64(const std::string &path) {
  ref::Array array;
  auto read = rt::readNpyF64(path);
  EXPECT_TRUE(bool(read)) << path << ": " << llvm::toString(read.takeError());
  if (read) {
    array.shape.assign(read->shape.begin(), read->shape.end());
    array.data = std::move(read->data);
  }
  return array;
}

int64_t getInt(const llvm::json::Object &object, StringRef key) {
  std::optional<int64_t> value = object.getInteger(key);
  EXPECT_TRUE(value.has_value())
      << "grad.json: no integer '" << key.str() << "'";
  return value.value_or(-1);
}

std::string getString(const llvm::json::Object &object, StringRef key) {
  std::optional<StringRef> value = object.getString(key);
  EXPECT_TRUE(value.has_value())
      << "grad.json: no string '" << key.str() << "'";
  return value ? value->str() : std::string();
}

class GradientFixture : public ::testing::TestWithParam<const char *> {};

TEST_P(GradientFixture, MatchesTorchAutograd) {
  std::string dir =
      std::string(GLINT_SOURCE_DIR) + "/test/fixtures/" + GetParam();
  auto text = llvm::MemoryBuffer::getFile(dir + "/grad.json");
  ASSERT_TRUE(bool(text)) << dir << "/grad.json: " << text.getError().message();
  auto json = llvm::json::parse((*text)->getBuffer());
  ASSERT_TRUE(bool(json)) << llvm::toString(json.takeError());
  const llvm::json::Object *root = json->getAsObject();
  ASSERT_TRUE(root);
  const llvm::json::Object *target = root->getObject("target");
  ASSERT_TRUE(target) << "grad.json: no 'target'";
  int64_t input = getInt(*target, "input_index");
  int64_t batch = getInt(*target, "batch");
  int64_t position = getInt(*target, "position");
  int64_t token = getInt(*target, "token");
  const llvm::json::Array *layerList = root->getArray("layers");
  const llvm::json::Object *embeddings = root->getObject("embeddings");
  ASSERT_TRUE(layerList && embeddings) << "grad.json: no 'layers' or "
                                          "'embeddings'";

  mlir::glint::testing::ImportedFixture fixture;
  ASSERT_NO_FATAL_FAILURE(mlir::glint::testing::importFixture(dir, fixture));
  ModuleOp module = *fixture.model;
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  ASSERT_TRUE(forward);
  std::string diagnostics;
  ScopedDiagnosticHandler handler(fixture.context.get(), [&](Diagnostic &d) {
    diagnostics += d.str() + "\n";
    return success();
  });
  auto grad = mlir::glint::differentiate(forward, "forward_grad");
  ASSERT_TRUE(succeeded(grad)) << diagnostics;
  ASSERT_TRUE(succeeded(verify(module))) << diagnostics;
  auto labels = (*grad)->getAttrOfType<ArrayAttr>(
      mlir::glint::GlintDialect::kGradientLayersAttrName);
  ASSERT_TRUE(labels);

  // The fixture's input ids, and the one-hot seed at the chosen logit.
  auto ids =
      rt::readNpyI64(llvm::formatv("{0}/input_ids_{1}.npy", dir, input).str());
  ASSERT_TRUE(bool(ids)) << llvm::toString(ids.takeError());
  ref::Array idArray;
  idArray.shape.assign(ids->shape.begin(), ids->shape.end());
  idArray.data.assign(ids->data.begin(), ids->data.end());
  ref::ReferenceEvaluator evaluator(module, ref::weightsFrom(*fixture.checkpoint));
  auto out = evaluator.run("forward", {idArray});
  ASSERT_TRUE(bool(out)) << llvm::toString(out.takeError());
  const ref::Array &logits = (*out)[0];
  ASSERT_EQ(logits.shape.size(), 3u);
  ASSERT_LT(batch, logits.shape[0]);
  ASSERT_LT(position, logits.shape[1]);
  ASSERT_LT(token, logits.shape[2]);
  // The forward itself agrees with the stored float64 logits (so that a
  // gradient mismatch below is a gradient problem).
  ref::Array storedLogits =
      readF64(llvm::formatv("{0}/logits_float64_{1}.npy", dir, input).str());
  EXPECT_LE(relativeError(logits, storedLogits), kTolerance);

  ref::Array seed(logits.shape);
  seed.data[(batch * logits.shape[1] + position) * logits.shape[2] + token] =
      1.0;
  auto results = evaluator.run("forward_grad", {idArray, seed});
  ASSERT_TRUE(bool(results)) << llvm::toString(results.takeError());
  // Results: the logits, one cotangent per layer, the embeddings' cotangent.
  size_t layers = layerList->size();
  ASSERT_EQ(results->size(), 1 + layers + 1)
      << "grad.json lists " << layers << " layers";
  ASSERT_EQ(labels.size(), layers);

  auto compare = [&](const llvm::json::Object &entry, const ref::Array &got,
                     const std::string &what) {
    ref::Array expected = readF64(dir + "/" + getString(entry, "file"));
    // glint's cotangent may split heads ([B, L, H, d] for [B, L, H·d]); the
    // row-major order is the same, so compare element counts and data.
    ASSERT_EQ(got.numElements(), expected.numElements()) << what;
    ASSERT_EQ(got.shape[0], expected.shape[0]) << what;
    ASSERT_EQ(got.shape[1], expected.shape[1]) << what;
    double error = relativeError(got.data, expected.data);
    double norm = 0.0;
    for (double v : expected.data)
      norm += v * v;
    EXPECT_GT(norm, 1e-20) << what
                           << ": torch's gradient is zero, the "
                              "check would be empty";
    EXPECT_LE(error, kTolerance) << what;
    std::cout << llvm::formatv("[ {0} ] {1}: relative error {2:e}\n",
                               GetParam(), what, error)
                     .str();
  };
  for (size_t k = 0; k < layers; ++k) {
    const llvm::json::Object *entry = (*layerList)[k].getAsObject();
    ASSERT_TRUE(entry);
    std::string label = cast<StringAttr>(labels[k]).getValue().str();
    EXPECT_EQ(label, getString(*entry, "glint_label")) << "layer " << k;
    compare(*entry, (*results)[1 + k],
            "layer " + std::to_string(k) + " (" + label + ")");
  }
  compare(*embeddings, results->back(), "embeddings");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GradientFixture,
                         ::testing::Values("mamba_conv3", "recurrentgemma"));

} // namespace
