//===- AtomicFile.h - files that appear complete or not at all --*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_ATOMICFILE_H
#define GLINT_RUNTIME_IO_ATOMICFILE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::glint::runtime {

/// Writes `path` through `write`: into a temporary file beside it (so the
/// rename cannot cross file systems), renamed into place once everything is
/// written. A failure removes the temporary file and leaves `path` as it
/// was; its message starts with `path`.
llvm::Error
writeFileAtomically(llvm::StringRef path,
                    llvm::function_ref<void(llvm::raw_ostream &)> write);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_ATOMICFILE_H
