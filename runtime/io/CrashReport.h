//===- CrashReport.h - what a glint tool says when it crashes ---*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Every tool starts with llvm::InitLLVM, whose signal handlers print the
// command line and a stack trace on a crash, and then calls
// setBugReportMessage() so that the trace ends with glint's own request
// instead of LLVM's (which would send the report to the wrong project).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_CRASHREPORT_H
#define GLINT_RUNTIME_IO_CRASHREPORT_H

#include "llvm/Support/PrettyStackTrace.h"

namespace mlir::glint::runtime {

inline void setBugReportMessage() {
  llvm::setBugReportMsg(
      "glint crashed: this is a bug in glint, not in your input. Please "
      "report it with the command line and the stack trace below, and the "
      "input files they name.\n");
}

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_CRASHREPORT_H
