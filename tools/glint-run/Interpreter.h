//===- Interpreter.h - glint-run --interpret --------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-run runs compiled models and loads no MLIR; --interpret needs the
// reference evaluator, which does. The same main() is built twice: as
// glint-run with NoInterpreter.cpp (makeInterpreter gives nothing and
// --interpret runs glint-interpret, next to it, with the same arguments) and
// as glint-interpret with Interpreter.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TOOLS_GLINT_RUN_INTERPRETER_H
#define GLINT_TOOLS_GLINT_RUN_INTERPRETER_H

#include "runtime/host/RunSupport.h"
#include "runtime/io/Safetensors.h"

#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir::glint::run {

struct InterpretOptions {
  /// The model IR (.mlir) and the function to run.
  std::string modelPath;
  std::string functionName;
  /// --dump-hidden: where traced values go (empty: nowhere).
  std::string hiddenDir;
  /// --f32: traced values as float32.
  bool writeF32 = false;
};

/// Runs model IR in double precision.
class Interpreter {
public:
  virtual ~Interpreter() = default;
  /// The first result of the function on `input`; traced values are
  /// written to the hidden directory, their paths added to `written`.
  virtual llvm::Expected<runtime::RunArray>
  run(const runtime::Checkpoint &checkpoint, const runtime::RunArray &input,
      std::vector<std::string> &written) = 0;
  /// Greedy generation of `count` tokens after `prompt`, rerunning the
  /// whole sequence for every token (the definition the compiled step entry
  /// must reproduce, at quadratic cost).
  virtual llvm::Expected<runtime::Generation>
  generate(const runtime::Checkpoint &checkpoint,
           const runtime::RunArray &prompt, unsigned count) = 0;
};

/// The reference evaluator on `options.modelPath`, or null in a binary built
/// without it (glint-run).
std::unique_ptr<Interpreter> makeInterpreter(InterpretOptions options);

} // namespace mlir::glint::run

#endif // GLINT_TOOLS_GLINT_RUN_INTERPRETER_H
