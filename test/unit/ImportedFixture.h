//===- ImportedFixture.h - a checkpoint, opened and imported ---*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What the model tests start from: a checkpoint directory opened and its
// config.json imported, in a context with the model dialects.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_UNIT_IMPORTEDFIXTURE_H
#define GLINT_TEST_UNIT_IMPORTEDFIXTURE_H

#include "import/Importers.h"
#include "runtime/io/Safetensors.h"
#include "test/unit/ModelContext.h"

#include "gtest/gtest.h"

#include <string>

namespace mlir::glint::testing {

/// Members in this order, so that the module goes before its context.
struct ImportedFixture {
  std::unique_ptr<runtime::Checkpoint> checkpoint;
  std::unique_ptr<MLIRContext> context;
  OwningOpRef<ModuleOp> model;
};

/// Opens `dir` and imports it into `out`; call it under
/// ASSERT_NO_FATAL_FAILURE.
inline void importFixture(const std::string &dir, ImportedFixture &out) {
  auto checkpoint = runtime::Checkpoint::open(dir);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  out.checkpoint = std::move(*checkpoint);
  out.context = makeModelContext();
  auto model =
      import::importCheckpoint(out.context.get(), dir, *out.checkpoint);
  ASSERT_TRUE(bool(model)) << llvm::toString(model.takeError());
  out.model = std::move(*model);
}

} // namespace mlir::glint::testing

#endif // GLINT_TEST_UNIT_IMPORTEDFIXTURE_H
