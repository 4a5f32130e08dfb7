//===- VectorizeConvTest.cpp - vector conv1d against the reference --------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-vectorize-conv sums a convolution's taps with fused multiply-adds,
// so it is checked by running: each case is one glint.conv1d in a function,
// compiled by the whole CPU pipeline for this host and run in float32 on
// fresh random inputs at several lengths (one library: B and L are
// dynamic), its output and final state compared with the evaluator's
// float64 ones (relative error <= 1e-6). malloc fills new blocks with 0x7f
// bytes (3.4e38 as floats), so an element the loops forget to write fails.
// The shapes are awkward on purpose: channel counts that are not multiples
// of the vector width, widths 1 to 5, L = 1 and L shorter than the
// history, B = 2, reverse, initial and final states.
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

#include <random>
#include <string>
#include <vector>

using namespace mlir;
namespace rt = mlir::glint::runtime;
using mlir::glint::reference::Array;

namespace {

struct Case {
  std::string name;
  int64_t channels, width;
  bool bias, reverse, initialState, finalState;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class VectorizeConvTest : public glint::testing::CompiledTest<Case> {};

TEST_P(VectorizeConvTest, CompiledMatchesReference) {
  const Case &c = GetParam();
  const int64_t C = c.channels, W = c.width;
  std::string x = llvm::formatv("tensor<?x?x{0}xf32>", C).str();
  std::string w = llvm::formatv("tensor<{0}x{1}xf32>", C, W).str();
  std::string b = llvm::formatv("tensor<{0}xf32>", C).str();
  std::string s = llvm::formatv("tensor<?x{0}x{1}xf32>", W - 1, C).str();
  std::string args = "%x: " + x + ", %w: " + w, types = x + ", " + w;
  std::string operands = "%x, %w";
  if (c.bias) {
    args += ", %b: " + b;
    types += ", " + b;
    operands += " bias %b";
  }
  if (c.initialState) {
    args += ", %s: " + s;
    types += ", " + s;
    operands += " initial_state(%s)";
  }
  // The final state, when asked for, is returned after the output.
  std::string results = c.finalState ? "(" + x + ", " + s + ")" : x;
  std::string source =
      llvm::formatv("func.func @forward({0}) -> {1} {{\n"
                    "  {2} = glint.conv1d {3}{4} : ({5}) -> {1}\n"
                    "  return {2} : {1}\n}",
                    args, results, c.finalState ? "%y, %f" : "%y",
                    c.reverse ? "reverse " : "", operands, types)
          .str();
  if (c.finalState)
    source =
        llvm::formatv("func.func @forward({0}) -> {1} {{\n"
                      "  %y, %f = glint.conv1d {2}{3} : ({4}) -> ({5}, "
                      "{1})\n"
                      "  return %f : {1}\n}",
                      args, s, c.reverse ? "reverse " : "", operands, types, x)
            .str();
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(source, context.get());
  ASSERT_TRUE(module) << source;

  // The pass takes the op.
  {
    OwningOpRef<ModuleOp> copy = module->clone();
    PassManager pm(context.get());
    pm.addNestedPass<func::FuncOp>(glint::createGlintVectorizeConv());
    ASSERT_TRUE(succeeded(pm.run(*copy)));
    int64_t convs = 0;
    copy->walk([&](Operation *op) {
      convs += op->getName().getStringRef() == "glint.conv1d";
    });
    EXPECT_EQ(convs, 0) << source;
  }

  std::unique_ptr<rt::CompiledModel> model;
  ASSERT_NO_FATAL_FAILURE(glint::testing::compileAndLoad(*module, model));

  using mlir::glint::testing::randomArray;
  Array weight = randomArray(rng, {C, W}, -1.0, 1.0);
  Array bias = randomArray(rng, {C}, -1.0, 1.0);
  for (auto [batch, len] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {2, 2}, {1, 3}, {2, 9}, {1, 40}}) {
    SCOPED_TRACE(llvm::formatv("B = {0}, L = {1}", batch, len).str());
    std::vector<Array> inputs = {randomArray(rng, {batch, len, C}, -1.0, 1.0),
                                 weight};
    if (c.bias)
      inputs.push_back(bias);
    if (c.initialState)
      inputs.push_back(randomArray(rng, {batch, W - 1, C}, -1.0, 1.0));
    glint::testing::expectMatchesEvaluator(*model, *module, inputs, 1e-6,
                                           source);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VectorizeConvTest,
    ::testing::Values(
        // name, C, W, bias, reverse, initial state, final state
        Case{"Mamba", 37, 4, true, false, false, false},
        Case{"FullVectors", 64, 4, true, false, false, false},
        Case{"NoBiasWidth2", 19, 2, false, false, false, false},
        Case{"WidthOne", 21, 1, true, false, false, false},
        Case{"Width5", 35, 5, true, false, false, false},
        Case{"Reverse", 37, 4, true, true, false, false},
        Case{"Streaming", 37, 4, true, false, true, false},
        Case{"StreamingFinalState", 37, 4, true, false, true, true},
        Case{"FinalStateFromZeros", 16, 3, false, false, false, true},
        Case{"ReverseStreaming", 23, 4, true, true, true, false},
        Case{"ReverseFinalState", 23, 4, false, true, true, true}),
    [](const ::testing::TestParamInfo<Case> &info) { return info.param.name; });

} // namespace
