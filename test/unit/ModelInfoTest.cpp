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

} // namespace
