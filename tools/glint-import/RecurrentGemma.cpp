//===- RecurrentGemma.cpp - RecurrentGemmaForCausalLM importer ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Not written yet: glint-import reports so for this architecture.
//
//===----------------------------------------------------------------------===//

#include "tools/glint-import/Importers.h"

using namespace mlir;

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::glint::import::importRecurrentGemma(
    MLIRContext *, const llvm::json::Object &,
    const ::glint::runtime::Checkpoint &, llvm::StringRef source) {
  return llvm::createStringError(
      source + ": RecurrentGemmaForCausalLM: the importer is not written yet");
}
