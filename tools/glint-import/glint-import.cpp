//===- glint-import.cpp - checkpoints to glint model IR -------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Reads a Hugging Face-style checkpoint directory (config.json plus
// safetensors, single or sharded) and writes glint model IR whose weights
// are bound by their checkpoint names. The weights themselves stay in the
// checkpoint: only their names and shapes are read here.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "import/Importers.h"
#include "runtime/io/AtomicFile.h"
#include "tools/ToolVersion.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AsmState.h"
#include "mlir/Support/FileUtilities.h"
#include "runtime/io/CrashReport.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("glint-import options");
// Optional for the parser so that --list alone parses; main() requires it
// otherwise.
static cl::opt<std::string> checkpointDir(cl::Positional,
                                          cl::desc("<checkpoint directory>"),
                                          cl::cat(category));
static cl::opt<std::string> outputPath("o", cl::desc("Output .mlir file"),
                                       cl::value_desc("file"), cl::init("-"),
                                       cl::cat(category));
static cl::opt<bool> listArchitectures(
    "list", cl::desc("List the supported architectures and exit"),
    cl::cat(category));

static cl::opt<std::string> windowRule(
    "window-rule",
    cl::desc("RecurrentGemma's sliding window when the input is longer than "
             "attention_window_size W (sets the config key glint_window_rule)"),
    cl::value_desc("cache|griffin"), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-import") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::glint::addGlintVersionPrinter();
  mlir::glint::runtime::setBugReportMessage();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-import: a Hugging Face-style checkpoint to glint model IR\n\n"
      "  glint-import path/to/checkpoint -o model.mlir\n");
  if (listArchitectures) {
    for (const auto &a : mlir::glint::import::architectures())
      llvm::outs() << a.name << "  " << a.description << "\n";
    return 0;
  }
  if (checkpointDir.empty())
    return fail("no checkpoint directory given (see glint-import --help)");

  if (llvm::Error e = mlir::glint::runtime::checkOutputPath(outputPath))
    return fail(llvm::toString(std::move(e)));
  auto checkpoint = mlir::glint::runtime::Checkpoint::open(checkpointDir);
  if (!checkpoint)
    return fail(llvm::toString(checkpoint.takeError()));

  DialectRegistry registry;
  registry.insert<mlir::glint::GlintDialect, arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, tensor::TensorDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  llvm::json::Object overrides;
  if (!windowRule.empty()) {
    if (windowRule != "cache" && windowRule != "griffin")
      return fail("--window-rule must be 'cache' (query i sees keys "
                  "i-W < j <= i, as transformers 5.24) or 'griffin' "
                  "(i-W <= j <= i, as DeepMind's Griffin), not '" +
                  windowRule + "'");
    overrides["glint_window_rule"] = windowRule.getValue();
  }
  auto module = mlir::glint::import::importCheckpoint(&context, checkpointDir,
                                                      **checkpoint, &overrides);
  if (!module)
    return fail(llvm::toString(module.takeError()));

  std::string error;
  auto output = openOutputFile(outputPath, &error);
  if (!output)
    return fail(error);
  (*module)->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}
