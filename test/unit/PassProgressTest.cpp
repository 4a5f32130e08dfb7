//===- PassProgressTest.cpp - glint-compile's pass counter ----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "compiler/PassProgress.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "gtest/gtest.h"

using namespace mlir;
using mlir::glint::compiler::PassProgress;
using mlir::glint::runtime::ProgressBar;

namespace {

/// Every pass run is counted once, a function pass once per function (run
/// on the context's threads), the adaptor that runs them not at all, and
/// the bar shows the flag of the last pass.
TEST(PassProgress, CountsPassRuns) {
  MLIRContext context;
  context.loadDialect<func::FuncDialect, arith::ArithDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(R"mlir(
    func.func @a(%x: i32) -> i32 {
      %c = arith.constant 0 : i32
      %y = arith.addi %x, %c : i32
      return %y : i32
    }
    func.func private @b() { return }
    func.func @c(%x: i32) -> i32 { return %x : i32 }
  )mlir",
                                                             &context);
  ASSERT_TRUE(module);
  std::string out;
  llvm::raw_string_ostream os(out);
  ProgressBar bar("compile", 0, os, /*enabled=*/true,
                  std::chrono::milliseconds(0));
  PassProgress progress(bar);
  PassManager pm(&context);
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  pm.addPass(createSymbolDCEPass());
  progress.attach(pm);
  ASSERT_TRUE(succeeded(pm.run(*module)));
  EXPECT_EQ(bar.done(), 3u * 2 + 1);
  progress.setStatus("LLVM code generation");
  bar.finish();
  llvm::StringRef text(out);
  EXPECT_TRUE(text.contains("s symbol-dce")) << out;
  EXPECT_TRUE(text.rtrim().ends_with("s LLVM code generation")) << out;
  EXPECT_TRUE(text.contains("compile 7 ")) << out;
}

} // namespace
