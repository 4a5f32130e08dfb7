//===- Progress.h - a progress bar on stderr --------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_PROGRESS_H
#define GLINT_EXPLAIN_PROGRESS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace mlir::glint::explain {

/// A one-line progress bar, redrawn in place:
///
///   rollout [##########----------]  50% 5/10 1.2s
///
/// It draws only when stderr is a terminal, so logs and pipes stay clean,
/// and redraws at most every `interval` (and when it finishes), so a tight
/// loop of advance() calls costs a clock read each.
class ProgressBar {
public:
  /// A bar on stderr, drawn when stderr is a terminal. \p total is the number
  /// of steps; 0 when unknown (only the count is shown).
  ProgressBar(llvm::StringRef label, uint64_t total);
  /// A bar on \p os, drawn when \p enabled (for tests and other streams).
  ProgressBar(llvm::StringRef label, uint64_t total, llvm::raw_ostream &os,
              bool enabled,
              std::chrono::milliseconds interval = kDefaultInterval);
  ProgressBar(const ProgressBar &) = delete;
  ProgressBar &operator=(const ProgressBar &) = delete;
  /// Finishes the bar if finish() was not called.
  ~ProgressBar();

  /// Counts \p steps more done.
  void advance(uint64_t steps = 1);
  /// Draws the final state and ends the line. Later calls do nothing.
  void finish();

  uint64_t done() const { return count; }

  static constexpr std::chrono::milliseconds kDefaultInterval{100};

private:
  void draw();

  std::string label;
  uint64_t total;
  uint64_t count = 0;
  llvm::raw_ostream &os;
  bool enabled;
  bool finished = false;
  std::chrono::milliseconds interval;
  std::chrono::steady_clock::time_point start, lastDraw;
  /// The width of the last line drawn, to blank what a shorter one leaves.
  size_t lastWidth = 0;
};

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_PROGRESS_H
