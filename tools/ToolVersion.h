//===- ToolVersion.h - glint's --version ------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TOOLS_TOOLVERSION_H
#define GLINT_TOOLS_TOOLVERSION_H

#include "glint/Version.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::glint {

/// Makes `--version` print glint's version and commit after LLVM's.
inline void addGlintVersionPrinter() {
  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream &os) {
    os << "glint version " GLINT_VERSION " (commit " GLINT_COMMIT ")\n";
  });
}

} // namespace mlir::glint

#endif // GLINT_TOOLS_TOOLVERSION_H
