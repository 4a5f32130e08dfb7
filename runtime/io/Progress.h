//===- Progress.h - a progress bar on stderr --------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// In the runtime's I/O library, which needs only LLVM's Support, so that
// every tool can draw one (glint-compile's passes, the reference evaluator
// in glint-run --interpret and glint-explain, glint-explain eval) without
// linking anything else.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_PROGRESS_H
#define GLINT_RUNTIME_IO_PROGRESS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace mlir::glint::runtime {

/// A one-line progress bar, redrawn in place:
///
///   rollout [##########----------]  50% 5/10 1.2s
///   compile 57 3.2s glint-vectorize-matmul      (total unknown, a status)
///
/// It draws only when stderr is a terminal, so logs and pipes stay clean,
/// and redraws at most every `interval` (and when it finishes), so a tight
/// loop of advance() calls costs a clock read each. With a `delay`, nothing
/// is drawn until the work has taken that long: quick work leaves no bar.
class ProgressBar {
public:
  /// A bar on stderr, drawn when stderr is a terminal. \p total is the number
  /// of steps; 0 when unknown (only the count is shown).
  ProgressBar(llvm::StringRef label, uint64_t total,
              std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  /// A bar on \p os, drawn when \p enabled (for tests and other streams).
  ProgressBar(llvm::StringRef label, uint64_t total, llvm::raw_ostream &os,
              bool enabled,
              std::chrono::milliseconds interval = kDefaultInterval,
              std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  ProgressBar(const ProgressBar &) = delete;
  ProgressBar &operator=(const ProgressBar &) = delete;
  /// Finishes the bar if finish() was not called.
  ~ProgressBar();

  /// Counts \p steps more done.
  void advance(uint64_t steps = 1);
  /// Shows \p text after the count (what is being done now), from the next
  /// redraw on.
  void setStatus(llvm::StringRef text);
  /// Draws the final state and ends the line, if anything was drawn. Later
  /// calls do nothing.
  void finish();

  uint64_t done() const { return count; }
  /// Whether anything has been drawn yet.
  bool shown() const { return lastWidth > 0; }

  static constexpr std::chrono::milliseconds kDefaultInterval{100};
  /// The delay of the bars over work that is usually quick.
  static constexpr std::chrono::milliseconds kQuickWorkDelay{1000};

private:
  void draw();

  std::string label;
  std::string status;
  uint64_t total;
  uint64_t count = 0;
  llvm::raw_ostream &os;
  bool enabled;
  bool finished = false;
  std::chrono::milliseconds interval, delay;
  std::chrono::steady_clock::time_point start, lastDraw;
  /// The width of the last line drawn, to blank what a shorter one leaves.
  size_t lastWidth = 0;
};

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_PROGRESS_H
