//===- ApproximateMathTest.cpp - glint's exp and exp2 against libm --------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-approximate-math replaces math.exp and math.exp2 on f32 by its own
// polynomial forms. Each form is compiled here by the CPU pipeline (as
// scalars in a linalg.generic, and as vector<16xf32>, which takes the
// AVX-512 form on hosts that have it) and run on every 1/64 step of its
// range plus the edges, against libm in double precision:
//
// * in range (exp: [-87.33, 88.0], exp2: [-126, 127]): relative error
//   <= 3e-7 (the forms are 2.1e-7 in a float32 emulation);
// * below the range: 0 <= result <= 1.21e-38 (2^-126 or less), above:
//   >= 1e38 or +inf (the saturation the pass documents). Under
//   fastmath<ninf> inputs stay below 128, where 2^y is finite. (The runtime
//   rejects non-finite inputs, so NaN and inf are not fed here.)
//
// And softplus as glint.act lowers it (whose log1p(exp(-|x|)) tail has its
// own polynomial) on [-60, 60]: relative error <= 5e-7.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "passes/cpu/Pipelines.h"
#include "runtime/host/CompiledModel.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace mlir;
namespace rt = mlir::glint::runtime;

namespace {

/// `@forward(%x: tensor<Nxf32>) -> tensor<Nxf32>` applying `op` element by
/// element: as a scalar linalg.generic, or on vector<16xf32> slices.
std::string module(int64_t n, llvm::StringRef op, bool vector) {
  if (!vector)
    return llvm::formatv(R"mlir(
#map = affine_map<(d0) -> (d0)>
func.func @forward(%x: tensor<{0}xf32>) -> tensor<{0}xf32> {{
  %init = tensor.empty() : tensor<{0}xf32>
  %y = linalg.generic {{indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%x : tensor<{0}xf32>) outs(%init : tensor<{0}xf32>) {{
  ^bb0(%a: f32, %b: f32):
    %e = {1} %a : f32
    linalg.yield %e : f32
  } -> tensor<{0}xf32>
  return %y : tensor<{0}xf32>
})mlir",
                         n, op)
        .str();
  return llvm::formatv(R"mlir(
func.func @forward(%x: tensor<{0}xf32>) -> tensor<{0}xf32> {{
  %c0 = arith.constant 0 : index
  %c16 = arith.constant 16 : index
  %cn = arith.constant {0} : index
  %pad = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<{0}xf32>
  %y = scf.for %i = %c0 to %cn step %c16 iter_args(%acc = %init) -> tensor<{0}xf32> {{
    %v = vector.transfer_read %x[%i], %pad {{in_bounds = [true]} : tensor<{0}xf32>, vector<16xf32>
    %e = {1} %v : vector<16xf32>
    %w = vector.transfer_write %e, %acc[%i] {{in_bounds = [true]} : vector<16xf32>, tensor<{0}xf32>
    scf.yield %w : tensor<{0}xf32>
  }
  return %y : tensor<{0}xf32>
})mlir",
                       n, op)
      .str();
}

struct Form {
  std::string name;
  /// The op with its attributes, e.g. "math.exp2 ... fastmath<ninf>" is
  /// written as {"math.exp2", "fastmath<ninf>"}.
  std::string op, flags;
  bool vector;
  bool base2;
  /// Whether infinite results are allowed (not with fastmath<ninf>).
  bool infinities;
};

void PrintTo(const Form &f, std::ostream *os) { *os << f.name; }

class ApproximateMathTest : public ::testing::TestWithParam<Form> {};

TEST_P(ApproximateMathTest, MatchesLibm) {
  const Form &form = GetParam();
  // The range, in steps of 1/64, past both ends, and the edges.
  // Under fastmath<ninf> no result may be infinite: inputs stay below 128.
  double lo = form.base2 ? -126.0 : -87.33, hi = form.base2 ? 127.0 : 88.0;
  double top = form.infinities ? hi + 40.0 : 127.98;
  std::vector<float> inputs;
  for (double x = lo - 40.0; x <= top; x += 1.0 / 64)
    inputs.push_back(static_cast<float>(x));
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, -1e-8f})
    inputs.push_back(x);
  while (inputs.size() % 16)
    inputs.push_back(0.5f);
  int64_t n = inputs.size();

  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string op = form.op;
  std::string source = module(n, op, form.vector);
  if (!form.flags.empty()) {
    // `%e = math.exp2 %a : f32` -> `... %a fastmath<ninf> : f32`.
    size_t colon = source.find(" : ", source.find(op));
    source.insert(colon, " " + form.flags);
  }
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, &context);
  ASSERT_TRUE(parsed) << source;

  llvm::SmallString<128> library;
  ASSERT_FALSE(
      llvm::sys::fs::createTemporaryFile("glint-math-test", "so", library));
  llvm::FileRemover removeLibrary(library);
  llvm::Error compiled =
      glint::compiler::compileToLibrary(*parsed, "forward", library);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
  auto model = rt::CompiledModel::load(library);
  ASSERT_TRUE(bool(model)) << llvm::toString(model.takeError());
  rt::HostArray x = rt::HostArray::make({n}, "f32");
  std::copy(inputs.begin(), inputs.end(), x.data<float>());
  auto result = (*model)->run({x});
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());

  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    float in = inputs[i], out = result->data<float>()[i];
    SCOPED_TRACE(llvm::formatv("{0}({1:e}) = {2:e}", form.op, in, out).str());
    if (in < lo) {
      EXPECT_GE(out, 0.0f);
      EXPECT_LE(out, 1.21e-38f); // 2^-126 = 1.18e-38, e^-87.3 = 1.2e-38

    } else if (in > hi) {
      EXPECT_GE(out, 1e38f);
    } else {
      double expected = form.base2 ? std::exp2(double(in)) : std::exp(double(in));
      double error = std::fabs(out - expected) / expected;
      worst = std::max(worst, error);
      EXPECT_LE(error, 3e-7);
    }
  }
  RecordProperty("max_relative_error", llvm::formatv("{0:e}", worst).str());
}

INSTANTIATE_TEST_SUITE_P(
    Forms, ApproximateMathTest,
    ::testing::Values(
        Form{"Exp", "math.exp", "", false, false, true},
        Form{"ExpVector", "math.exp", "", true, false, true},
        Form{"Exp2", "math.exp2", "", false, true, true},
        Form{"Exp2Vector", "math.exp2", "", true, true, true},
        Form{"Exp2VectorFinite", "math.exp2", "fastmath<ninf>", true, true,
             false},
        Form{"Exp2Finite", "math.exp2", "fastmath<ninf>", false, true,
             false}),
    [](const auto &info) { return info.param.name; });

} // namespace

namespace {

/// Softplus as glint lowers it, max(x, 0) + log1p(exp(-|x|)), whose tail
/// glint-approximate-math replaces by e q(e): against libm in double.
TEST(ApproximateMathSoftplusTest, MatchesLibm) {
  std::vector<float> inputs;
  for (double x = -60.0; x <= 60.0; x += 1.0 / 128)
    inputs.push_back(static_cast<float>(x));
  while (inputs.size() % 16)
    inputs.push_back(0.25f);
  int64_t n = inputs.size();
  std::string type = llvm::formatv("tensor<{0}xf32>", n).str();
  std::string source =
      llvm::formatv("func.func @forward(%x: {0}) -> {0} {{\n"
                    "  %y = glint.act softplus %x : {0}\n"
                    "  return %y : {0}\n}",
                    type)
          .str();
  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(source, &context);
  ASSERT_TRUE(parsed) << source;
  llvm::SmallString<128> library;
  ASSERT_FALSE(
      llvm::sys::fs::createTemporaryFile("glint-math-test", "so", library));
  llvm::FileRemover removeLibrary(library);
  llvm::Error compiled =
      glint::compiler::compileToLibrary(*parsed, "forward", library);
  ASSERT_FALSE(bool(compiled)) << llvm::toString(std::move(compiled));
  auto model = rt::CompiledModel::load(library);
  ASSERT_TRUE(bool(model)) << llvm::toString(model.takeError());
  rt::HostArray x = rt::HostArray::make({n}, "f32");
  std::copy(inputs.begin(), inputs.end(), x.data<float>());
  auto result = (*model)->run({x});
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  for (int64_t i = 0; i < n; ++i) {
    double in = inputs[i];
    double expected = std::max(in, 0.0) + std::log1p(std::exp(-std::fabs(in)));
    double error = std::fabs(result->data<float>()[i] - expected) / expected;
    EXPECT_LE(error, 5e-7) << "softplus(" << in << ")";
  }
}

} // namespace
