//===- ModelInfoTest.cpp - the record of compiled models ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint_model_info, the JSON record every compiled model carries: written by
// glint-compile, read back by the runtime, with the step entry of models that
// generate. Malformed records are errors saying what is wrong.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/ModelInfo.h"

#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

using namespace mlir::glint::runtime;

namespace {

TensorSpec spec(std::string name, std::string dtype,
                std::vector<int64_t> shape, int64_t limit = 0) {
  TensorSpec s;
  s.name = std::move(name);
  s.dtype = std::move(dtype);
  s.shape = std::move(shape);
  s.limit = limit;
  return s;
}

std::string print(const ModelInfo &info) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << toJSON(info);
  return text;
}

/// The error of parsing `text`, or "" if it parsed.
std::string errorOf(llvm::StringRef text) {
  auto parsed = parseModelInfo(text);
  return parsed ? "" : llvm::toString(parsed.takeError());
}

void expectSameSpecs(const std::vector<TensorSpec> &a,
                     const std::vector<TensorSpec> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(a[i].limit, b[i].limit);
  }
}

TEST(ModelInfoTest, StepEntryRoundTrips) {
  ModelInfo info;
  info.inputs = {spec("input0", "i64", {-1, -1}, 62)};
  info.weights = {spec("emb", "f32", {62, 8})};
  info.results = {spec("result", "f32", {-1, -1, 62})};
  EntryInfo step;
  step.entry = "glint_step";
  step.inputs = info.inputs;
  step.states = {spec("position", "i64", {}),
                 spec("layers.0.conv1d", "f32", {-1, 3, 8})};
  step.weights = info.weights;
  step.results = info.results;
  info.step = step;

  auto parsed = parseModelInfo(print(info));
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  EXPECT_EQ(parsed->entry, "glint_forward");
  expectSameSpecs(parsed->inputs, info.inputs);
  expectSameSpecs(parsed->weights, info.weights);
  expectSameSpecs(parsed->results, info.results);
  EXPECT_TRUE(parsed->states.empty());
  ASSERT_TRUE(parsed->step.has_value());
  EXPECT_EQ(parsed->step->entry, "glint_step");
  expectSameSpecs(parsed->step->inputs, step.inputs);
  expectSameSpecs(parsed->step->states, step.states);
  expectSameSpecs(parsed->step->weights, step.weights);
  expectSameSpecs(parsed->step->results, step.results);
}

/// A record without "step" (a model that cannot generate, or a library of
/// an earlier glint) has no step entry.
TEST(ModelInfoTest, RecordWithoutStep) {
  auto parsed = parseModelInfo(
      R"({"version": 1, "entry": "glint_forward", "inputs": [],
          "weights": [], "results": [{"name": "result", "dtype": "f32",
          "shape": [2]}]})");
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  EXPECT_FALSE(parsed->step.has_value());
}

TEST(ModelInfoTest, MalformedStepEntries) {
  std::string head = R"({"version": 1, "entry": "glint_forward",
      "inputs": [], "weights": [], "results": [{"name": "result",
      "dtype": "f32", "shape": [2]}], "step": )";
  EXPECT_NE(errorOf(head + "3}").find("'step' is not an object"),
            std::string::npos);
  std::string entry = R"({"entry": "glint_step", "inputs": [], "weights": [],
      "results": [{"name": "result", "dtype": "f32", "shape": [2]}])";
  EXPECT_NE(errorOf(head + entry + "}}").find("no 'states' list"),
            std::string::npos)
      << errorOf(head + entry + "}}");
  std::string dynamicState =
      head + entry +
      R"(, "states": [{"name": "s", "dtype": "f32", "shape": [-1, -1]}]}})";
  EXPECT_NE(errorOf(dynamicState)
                .find("state 's' has a dynamic dimension other than the "
                      "batch"),
            std::string::npos)
      << errorOf(dynamicState);
  std::string noEntry =
      head + R"({"inputs": [], "weights": [], "results": [], "states": []}})";
  EXPECT_NE(errorOf(noEntry).find("no entry point in 'step'"),
            std::string::npos)
      << errorOf(noEntry);
  std::string twoResults =
      head + R"({"entry": "glint_step", "inputs": [], "weights": [],
      "states": [], "results": [{"name": "a", "dtype": "f32", "shape": [2]},
      {"name": "b", "dtype": "f32", "shape": [2]}]}})";
  EXPECT_NE(errorOf(twoResults).find("expected exactly one result in 'step'"),
            std::string::npos)
      << errorOf(twoResults);
}

/// A prepared weight (glint-vectorize-matmul's panels) keeps its checkpoint
/// shape and says how the runtime lays it out; a record with one is version
/// 2, one without stays version 1. The layout shape is the panels'.
TEST(ModelInfoTest, PreparedWeightsRoundTripAsVersion2) {
  ModelInfo info;
  info.inputs = {spec("input0", "i64", {-1, -1}, 50)};
  info.weights = {spec("emb", "f32", {50, 8}), spec("gain", "f32", {8})};
  info.weights[0].panelLayout = "nk";
  info.weights[0].panelWidth = 16;
  info.results = {spec("result", "f32", {-1, -1, 50})};
  std::string text = print(info);
  EXPECT_NE(text.find(R"("version":2)"), std::string::npos) << text;
  auto parsed = parseModelInfo(text);
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  expectSameSpecs(parsed->weights, info.weights);
  EXPECT_EQ(parsed->weights[0].panelLayout, "nk");
  EXPECT_EQ(parsed->weights[0].panelWidth, 16);
  // 50 columns in panels of 16: 4 panels, the last padded.
  EXPECT_EQ(parsed->weights[0].layoutShape(), (std::vector<int64_t>{4, 8, 16}));
  EXPECT_FALSE(parsed->weights[1].hasPanels());
  EXPECT_EQ(parsed->weights[1].layoutShape(), (std::vector<int64_t>{8}));
  // [K, N]: N is the second dimension.
  parsed->weights[0].panelLayout = "kn";
  EXPECT_EQ(parsed->weights[0].layoutShape(),
            (std::vector<int64_t>{1, 50, 16}));

  info.weights[0].panelLayout.clear();
  EXPECT_NE(print(info).find(R"("version":1)"), std::string::npos);
}

TEST(ModelInfoTest, MalformedPanels) {
  auto record = [](llvm::StringRef weight) {
    return (R"({"version": 2, "entry": "glint_forward", "inputs": [],
        "weights": [)" +
            weight + R"(], "results": [{"name": "result", "dtype": "f32",
        "shape": [2]}]})")
        .str();
  };
  for (
      llvm::StringRef bad :
      {R"({"name": "w", "dtype": "f32", "shape": [4, 8], "panels": 3})",
       R"({"name": "w", "dtype": "f32", "shape": [4, 8], "panels": {"layout": "mk", "width": 16}})",
       R"({"name": "w", "dtype": "f32", "shape": [4, 8], "panels": {"layout": "nk", "width": 0}})",
       R"({"name": "w", "dtype": "f32", "shape": [4, 8], "panels": {"layout": "nk"}})",
       R"({"name": "w", "dtype": "f32", "shape": [32], "panels": {"layout": "nk", "width": 16}})",
       R"({"name": "w", "dtype": "f32", "shape": [-1, 8], "panels": {"layout": "kn", "width": 16}})"}) {
    std::string error = errorOf(record(bad));
    EXPECT_NE(error.find("the panels of 'w' are not"), std::string::npos)
        << bad.str() << ": " << error;
  }
  EXPECT_EQ(errorOf(record(R"({"name": "w", "dtype": "f32", "shape": [4, 8],
      "panels": {"layout": "kn", "width": 16}})")),
            "");
  EXPECT_NE(errorOf(R"({"version": 3, "entry": "glint_forward", "inputs": [],
      "weights": [], "results": []})")
                .find("unsupported version (expected 1 or 2)"),
            std::string::npos);
}

} // namespace
