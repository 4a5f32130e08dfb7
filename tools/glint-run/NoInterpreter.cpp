//===- NoInterpreter.cpp - glint-run without the evaluator ----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-run's side of Interpreter.h: no evaluator linked in, so no MLIR
// loaded; --interpret is handed to glint-interpret.
//
//===----------------------------------------------------------------------===//

#include "tools/glint-run/Interpreter.h"

std::unique_ptr<mlir::glint::run::Interpreter>
mlir::glint::run::makeInterpreter(InterpretOptions) {
  return nullptr;
}
