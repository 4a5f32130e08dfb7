//===- Interpreter.cpp - glint-run --interpret ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The reference evaluator behind --interpret, linked into glint-interpret
// only: it needs MLIR, which glint-run (compiled models) never loads.
//
//===----------------------------------------------------------------------===//

#include "tools/glint-run/Interpreter.h"

#include "dialect/GlintDialect.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/io/InputLimits.h"
#include "runtime/io/Progress.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;
using namespace mlir::glint::run;
namespace rt = mlir::glint::runtime;
namespace ref = mlir::glint::reference;

/// The model IR parsed for the reference evaluator.
struct ModelIR {
  ModelIR() : context(registry()), diagnostics(sourceMgr, &context) {}
  static DialectRegistry registry() {
    DialectRegistry registry;
    registry.insert<mlir::glint::GlintDialect, arith::ArithDialect,
                    func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
                    ml_program::MLProgramDialect, scf::SCFDialect,
                    tensor::TensorDialect>();
    return registry;
  }
  MLIRContext context;
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics;
  OwningOpRef<ModuleOp> module;
};

static llvm::Expected<std::unique_ptr<ModelIR>>
parseModelIR(StringRef modelPath) {
  if (llvm::Error e = rt::checkIRFileBeforeParsing(modelPath))
    return std::move(e);
  auto ir = std::make_unique<ModelIR>();
  ir->module = parseSourceFile<ModuleOp>(modelPath, ir->sourceMgr,
                                         ParserConfig(&ir->context));
  if (!ir->module)
    return llvm::createStringError(
        modelPath + ": cannot parse the model (see the diagnostics above)");
  return ir;
}

namespace {
/// The reference evaluator on the model IR.
class EvaluatorInterpreter : public Interpreter {
public:
  explicit EvaluatorInterpreter(InterpretOptions options)
      : options(std::move(options)) {}
  llvm::Expected<rt::RunArray> run(const rt::Checkpoint &checkpoint,
                                   const rt::RunArray &input,
                                   std::vector<std::string> &written) override;
  llvm::Expected<rt::Generation> generate(const rt::Checkpoint &checkpoint,
                                          const rt::RunArray &prompt,
                                          unsigned count) override;

private:
  InterpretOptions options;
};
} // namespace

std::unique_ptr<Interpreter>
mlir::glint::run::makeInterpreter(InterpretOptions options) {
  return std::make_unique<EvaluatorInterpreter>(std::move(options));
}

/// Runs the IR with the reference evaluator; traced values go to
/// --dump-hidden (their paths into `written`).
llvm::Expected<rt::RunArray>
EvaluatorInterpreter::run(const rt::Checkpoint &checkpoint,
                          const rt::RunArray &runInput,
                          std::vector<std::string> &written) {
  const std::string &hiddenDir = options.hiddenDir;
  ref::Array input = ref::fromRunArray(runInput);
  auto ir = parseModelIR(options.modelPath);
  if (!ir)
    return ir.takeError();
  ModuleOp module = *(*ir)->module;

  ref::WeightProvider weights = ref::weightsFrom(checkpoint);
  if (!hiddenDir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(hiddenDir))
      return llvm::createStringError("cannot create " + hiddenDir + ": " +
                                     ec.message());
  llvm::Error traceError = llvm::Error::success();
  ref::TraceCallback trace = nullptr;
  if (!hiddenDir.empty())
    trace = [&](StringRef name, const ref::Array &value) {
      SmallString<128> path(hiddenDir);
      llvm::sys::path::append(path, name + ".npy");
      if (llvm::Error e =
              rt::writeResult(path, ref::toRunArray(value, /*integer=*/false),
                              options.writeF32))
        traceError = llvm::joinErrors(std::move(traceError), std::move(e));
      else
        written.push_back(std::string(path));
    };

  ref::ReferenceEvaluator evaluator(module, weights);
  // On a terminal, once a run has taken a second: the function's ops (a
  // layer's mixer is one).
  std::unique_ptr<rt::ProgressBar> bar;
  evaluator.setProgress([&](uint64_t done, uint64_t total) {
    if (done == 0)
      bar = std::make_unique<rt::ProgressBar>("reference evaluator", total,
                                              rt::ProgressBar::kQuickWorkDelay);
    else
      bar->advance();
  });
  auto results = evaluator.run(options.functionName, {input}, trace);
  bar.reset();
  if (!results) {
    llvm::consumeError(std::move(traceError));
    // Hidden states of a failed run would look like a complete dump.
    for (const std::string &path : written)
      llvm::sys::fs::remove(path);
    return results.takeError();
  }
  if (traceError)
    return std::move(traceError);

  return ref::toRunArray(std::move((*results)[0]), /*integer=*/false);
}

/// Greedy generation with the reference evaluator: the whole sequence so
/// far through the model for every token (the definition that the compiled
/// step entry must reproduce, at quadratic cost).
llvm::Expected<rt::Generation>
EvaluatorInterpreter::generate(const rt::Checkpoint &checkpoint,
                               const rt::RunArray &prompt, unsigned count) {
  if (prompt.shape.size() != 2 || !prompt.integer)
    return llvm::createStringError(
        "generation takes token ids [batch, seq] as its prompt");
  auto ir = parseModelIR(options.modelPath);
  if (!ir)
    return ir.takeError();
  ref::ReferenceEvaluator evaluator(*(*ir)->module,
                                    ref::weightsFrom(checkpoint));
  int64_t batch = prompt.shape[0], length = prompt.shape[1];
  rt::Generation out;
  out.tokens.shape = {batch, count};
  out.tokens.data.assign(batch * count, 0.0);
  out.logits.integer = false;
  rt::RunArray sequence = prompt;
  // On a terminal, once it has taken a second: the tokens generated.
  rt::ProgressBar bar("reference evaluator: generating", count,
                      rt::ProgressBar::kQuickWorkDelay);
  for (unsigned i = 0; i < count; ++i) {
    auto results =
        evaluator.run(options.functionName, {ref::fromRunArray(sequence)});
    if (!results) {
      bar.finish();
      return results.takeError();
    }
    bar.advance();
    rt::RunArray logits =
        ref::toRunArray(std::move((*results)[0]), /*integer=*/false);
    if (logits.shape.size() != 3 || logits.shape[1] != length + i)
      return llvm::createStringError(
          "generation needs a language model: @" + options.functionName +
          " returns no logits per position [batch, seq, vocab]");
    int64_t vocab = logits.shape.back();
    if (i == 0) {
      out.logits.shape = {batch, count, vocab};
      out.logits.data.assign(batch * count * vocab, 0.0);
    }
    std::vector<int64_t> next = rt::greedyNext(logits);
    int64_t perRow = logits.numElements() / batch;
    rt::RunArray longer;
    longer.shape = {batch, length + i + 1};
    for (int64_t b = 0; b < batch; ++b) {
      out.tokens.data[b * count + i] = static_cast<double>(next[b]);
      std::copy_n(logits.data.begin() + b * perRow + perRow - vocab, vocab,
                  out.logits.data.begin() + (b * count + i) * vocab);
      auto row = sequence.data.begin() + b * (length + i);
      longer.data.insert(longer.data.end(), row, row + length + i);
      longer.data.push_back(static_cast<double>(next[b]));
    }
    sequence = std::move(longer);
  }
  return out;
}
