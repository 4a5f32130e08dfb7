//===- glint-opt.cpp - glint optimizer driver -----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// mlir-opt with the glint dialect, its passes, and only the dialects glint
// models are written in.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target.h"
#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "passes/Passes.h"
#include "passes/cpu/Pipelines.h"
#include "passes/cuda/Pipelines.h"
#include "tools/ToolVersion.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "runtime/io/AtomicFile.h"
#include "runtime/io/CrashReport.h"
#include "runtime/io/InputLimits.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::glint::runtime::setBugReportMessage();
  DialectRegistry registry;
  glint::registerCompilerDialects(registry);
  glint::registerCudaDialects(registry);
  registerTransformsPasses();
  glint::registerGlintPasses();
  // The pipelines' target defaults to this machine.
  glint::registerGlintCpuPipelines(glint::compiler::hostTarget());
  glint::registerGlintCudaPipelines(glint::compiler::hostTarget());

  glint::addGlintVersionPrinter();
  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv, "glint optimizer driver\n", registry);
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input =
      openInputFile(inputFilename, &error);
  if (!input) {
    llvm::WithColor::error(llvm::errs(), "glint-opt") << error << "\n";
    return 1;
  }
  // An empty file would parse as an empty module and "succeed": a model file
  // with nothing in it is almost certainly a mistake, so say so.
  if (input->getBuffer().trim().empty()) {
    llvm::SourceMgr sourceMgr;
    unsigned id = sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    sourceMgr.PrintMessage(
        llvm::SMLoc::getFromPointer(
            sourceMgr.getMemoryBuffer(id)->getBufferStart()),
        llvm::SourceMgr::DK_Error,
        "input is empty: expected a module with glint model IR");
    return 1;
  }

  // MLIR's parser recurses once per level of nesting.
  if (llvm::Error e = mlir::glint::runtime::checkIRBeforeParsing(
          input->getBuffer(), input->getBufferIdentifier())) {
    llvm::WithColor::error(llvm::errs(), "glint-opt")
        << llvm::toString(std::move(e)) << "\n";
    return 1;
  }

  if (llvm::Error e = mlir::glint::runtime::checkOutputPath(outputFilename)) {
    llvm::WithColor::error(llvm::errs(), "glint-opt")
        << llvm::toString(std::move(e)) << "\n";
    return 1;
  }

  // Written to a temporary file that replaces the output only on success, so
  // a failed run never leaves a partial file behind.
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputFilename, &error);
  if (!output) {
    llvm::WithColor::error(llvm::errs(), "glint-opt") << error << "\n";
    return 1;
  }
  if (failed(MlirOptMain(output->os(), std::move(input), registry, config)))
    return 1;
  output->keep();
  return 0;
}
