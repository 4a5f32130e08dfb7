//===- glint-compile.cpp - glint model IR to native code ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Compiles glint model IR for the host CPU. Like toyc, each stage can be
// printed with -emit=: glint (verified input), scan (loops on tensors, no
// glint op left), llvm (LLVM IR with the model record and entry point), obj,
// lib (default: a shared library that glint-run and the runtime load), exe
// (a standalone program with the runtime linked in). --attention makes the
// library also return every token-mixing layer's attention map.
//
//===----------------------------------------------------------------------===//

#include "passes/Pipelines.h"
#include "tools/glint-compile/Compiler.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::glint;
namespace cl = llvm::cl;

static cl::OptionCategory category("glint-compile options");
// MLIR's own options (--mlir-print-ir-after-all, --mlir-timing, ...) stay
// listed under --help; libLLVM's hundreds of codegen flags do not.
static cl::OptionCategory mlirCategory("MLIR options");

static cl::opt<std::string> inputPath(cl::Positional, cl::desc("<model.mlir>"),
                                      cl::Required, cl::cat(category));
static cl::opt<std::string> outputPath("o", cl::desc("Output file"),
                                       cl::value_desc("file"),
                                       cl::cat(category));
static cl::opt<compiler::Stage> emit(
    "emit", cl::desc("What to produce"), cl::init(compiler::Stage::Library),
    cl::cat(category),
    cl::values(
        clEnumValN(compiler::Stage::Glint, "glint", "the verified glint IR"),
        clEnumValN(compiler::Stage::Scan, "scan",
                   "loops on tensors, after glint-lower-to-loops"),
        clEnumValN(compiler::Stage::LLVM, "llvm",
                   "LLVM IR for the host CPU, optimised"),
        clEnumValN(compiler::Stage::Object, "obj", "an object file"),
        clEnumValN(compiler::Stage::Library, "lib",
                   "a shared library (default)"),
        clEnumValN(compiler::Stage::Executable, "exe",
                   "a standalone program: ./model --weights W --tokens ...")));
static cl::opt<std::string> functionName("function", cl::desc("Entry function"),
                                         cl::init("forward"),
                                         cl::cat(category));
static cl::opt<compiler::StepMode> stepMode(
    "step",
    cl::desc("Add the streaming step entry for generation "
             "(glint-expose-state)"),
    cl::init(compiler::StepMode::Auto), cl::cat(category),
    cl::values(
        clEnumValN(compiler::StepMode::Auto, "auto",
                   "for models over token ids that can stream (default)"),
        clEnumValN(compiler::StepMode::On, "on",
                   "always; an error names the layer that cannot stream"),
        clEnumValN(compiler::StepMode::Off, "off", "never")));

static cl::opt<std::string> attentionFormulation(
    "attention", cl::ValueOptional,
    cl::desc("Also return each token-mixing layer's [B, L, L] attention map "
             "after the logits (glint-to-attention); the value is the "
             "formulation: unified (default), scan-only, no-conv, no-gate, "
             "no-act"),
    cl::value_desc("formulation"), cl::cat(category));
static cl::opt<std::string> attentionAggregate(
    "attention-aggregate",
    cl::desc("How --attention combines a layer's per-channel matrices: "
             "mean_abs (default), mean, sum"),
    cl::init("mean_abs"), cl::cat(category));

static cl::opt<std::string> recurrenceForm(
    "recurrence-form",
    cl::desc("How matrix-state recurrences are lowered: auto (default: "
             "chunked where it is measured to win, see "
             "glint-chunk-recurrence), recurrent, chunked"),
    cl::init("auto"), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-compile") << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  for (auto &entry : cl::getRegisteredOptions())
    if (entry.first.starts_with("mlir-"))
      entry.second->addCategory(mlirCategory);
  cl::HideUnrelatedOptions({&category, &mlirCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-compile: glint model IR to native code for this CPU\n\n"
      "  glint-compile model.mlir -o model.so\n"
      "  glint-compile model.mlir -emit=scan\n"
      "  glint-compile model.mlir --attention -o model.so\n");

  bool binary = emit == compiler::Stage::Object ||
                emit == compiler::Stage::Library ||
                emit == compiler::Stage::Executable;
  if (binary && (outputPath.empty() || outputPath == "-"))
    return fail("-o FILE is required for -emit=obj, -emit=lib and -emit=exe");
  if (outputPath.empty())
    outputPath = "-";

  DialectRegistry registry;
  registerCompilerDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(inputPath, &error);
  if (!input)
    return fail(error);
  if (input->getBuffer().trim().empty())
    return fail(inputPath + ": input is empty: expected glint model IR");
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (!module)
    return 1; // Located diagnostics are printed.

  compiler::AttentionOptions attention;
  if (attentionFormulation.getNumOccurrences()) {
    attention.formulation = attentionFormulation.empty()
                                ? std::string("unified")
                                : attentionFormulation.getValue();
    attention.aggregate = attentionAggregate.getValue();
  } else if (attentionAggregate.getNumOccurrences()) {
    return fail("--attention-aggregate needs --attention");
  }

  if (recurrenceForm != "auto" && recurrenceForm != "recurrent" &&
      recurrenceForm != "chunked")
    return fail("--recurrence-form must be auto, recurrent or chunked, not '" +
                recurrenceForm + "'");
  LoopsOptions loops;
  loops.recurrenceForm = recurrenceForm;

  runtime::ModelInfo info;
  auto configure = [](PassManager &pm) { (void)applyPassManagerCLOptions(pm); };
  if (llvm::Error e = compiler::lowerModule(
          *module, functionName,
          binary ? compiler::Stage::LLVM : emit.getValue(), info, configure,
          stepMode, attention, loops))
    return fail(llvm::toString(std::move(e)));

  if (emit == compiler::Stage::Glint || emit == compiler::Stage::Scan) {
    auto output = openOutputFile(outputPath, &error);
    if (!output)
      return fail(error);
    module->print(output->os());
    output->os() << "\n";
    output->keep();
    return 0;
  }

  llvm::LLVMContext llvmContext;
  auto llvmModule =
      compiler::translateForHost(*module, llvmContext, info, functionName);
  if (!llvmModule)
    return fail(llvm::toString(llvmModule.takeError()));
  if (emit == compiler::Stage::Library) {
    if (llvm::Error e = compiler::emitLibrary(**llvmModule, outputPath))
      return fail(llvm::toString(std::move(e)));
    return 0;
  }
  if (emit == compiler::Stage::Executable) {
    if (llvm::Error e = compiler::emitExecutable(**llvmModule, outputPath))
      return fail(llvm::toString(std::move(e)));
    return 0;
  }
  if (emit == compiler::Stage::Object) {
    if (llvm::Error e = compiler::writeObject(**llvmModule, outputPath))
      return fail(llvm::toString(std::move(e)));
    return 0;
  }
  auto output = openOutputFile(outputPath, &error);
  if (!output)
    return fail(error);
  (*llvmModule)->print(output->os(), nullptr);
  output->keep();
  return 0;
}
