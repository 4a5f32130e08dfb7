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

/// Success if `path` may be replaced by an output: it is missing, a regular
/// file, or "-" (standard output). Anything else (a FIFO, which would block
/// or be replaced by a file; a device node; a directory) is an error naming
/// `path`. Tools check each output path with this before doing any work.
llvm::Error checkReplaceable(llvm::StringRef path);

/// checkReplaceable for a tool's `-o` written in place (llvm::ToolOutputFile),
/// which may also be /dev/null: opened and written, never replaced.
llvm::Error checkOutputPath(llvm::StringRef path);

/// Writes `path` through `write`: into a temporary file beside it (so the
/// rename cannot cross file systems), renamed into place once everything is
/// written. A failure removes the temporary file and leaves `path` as it
/// was; its message starts with `path`.
llvm::Error
writeFileAtomically(llvm::StringRef path,
                    llvm::function_ref<void(llvm::raw_ostream &)> write);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_ATOMICFILE_H
