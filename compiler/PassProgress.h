//===- PassProgress.h - the passes run, on a progress bar -------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-compile on a large model runs for tens of seconds; on a terminal it
// shows how many passes have run and which one runs now. The pipeline is
// several pass managers whose lengths are known only as each is built, and
// a function pass runs once per function (in parallel), so the bar counts
// pass runs without a total.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_COMPILER_PASSPROGRESS_H
#define GLINT_COMPILER_PASSPROGRESS_H

#include "runtime/io/Progress.h"

#include "mlir/Pass/PassManager.h"

#include <mutex>

namespace mlir::glint::compiler {

/// Counts every pass run of the pass managers it is attached to on `bar`,
/// the pass's flag as the bar's status. Safe from the threads of a
/// multi-threaded context; must outlive the runs it counts.
class PassProgress {
public:
  explicit PassProgress(runtime::ProgressBar &bar) : bar(bar) {}

  /// Reports the passes `pm` (and the pass managers nested in it) run.
  void attach(PassManager &pm);

  /// Shows `status` (a phase that is no pass, e.g. code generation).
  void setStatus(llvm::StringRef status);

private:
  friend class PassProgressInstrumentation;
  void passRan(Pass *pass);

  runtime::ProgressBar &bar;
  std::mutex mutex;
};

} // namespace mlir::glint::compiler

#endif // GLINT_COMPILER_PASSPROGRESS_H
