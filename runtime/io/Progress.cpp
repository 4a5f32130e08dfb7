//===- Progress.cpp - a progress bar on stderr ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Progress.h"

#include "llvm/Support/Format.h"

#include <algorithm>

using namespace mlir::glint::runtime;

ProgressBar::ProgressBar(llvm::StringRef label, uint64_t total,
                         std::chrono::milliseconds delay)
    : ProgressBar(label, total, llvm::errs(), llvm::errs().is_displayed(),
                  kDefaultInterval, delay) {}

ProgressBar::ProgressBar(llvm::StringRef label, uint64_t total,
                         llvm::raw_ostream &os, bool enabled,
                         std::chrono::milliseconds interval,
                         std::chrono::milliseconds delay)
    : label(label.str()), total(total), os(os), enabled(enabled),
      interval(interval), delay(delay), start(std::chrono::steady_clock::now()),
      lastDraw(start) {
  if (enabled && delay.count() <= 0)
    draw();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(uint64_t steps) {
  count += steps;
  if (!enabled || finished)
    return;
  auto now = std::chrono::steady_clock::now();
  if (!shown() ? now - start < delay : now - lastDraw < interval)
    return;
  lastDraw = now;
  draw();
}

void ProgressBar::setStatus(llvm::StringRef text) { status = text.str(); }

void ProgressBar::finish() {
  if (finished)
    return;
  finished = true;
  // A bar still hidden by its delay stays so: the work was quick.
  if (!enabled || !shown())
    return;
  draw();
  os << '\n';
  os.flush();
}

void ProgressBar::draw() {
  constexpr uint64_t kBarWidth = 30;
  std::string line;
  llvm::raw_string_ostream ls(line);
  ls << label << ' ';
  if (total > 0) {
    uint64_t shown = std::min(count, total);
    uint64_t filled = shown * kBarWidth / total;
    ls << '[' << std::string(filled, '#')
       << std::string(kBarWidth - filled, '-') << "] "
       << llvm::format("%3u%%", unsigned(shown * 100 / total)) << ' ' << count
       << '/' << total;
  } else {
    ls << count;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ls << ' ' << llvm::format("%.1fs", seconds);
  if (!status.empty())
    ls << ' ' << status;
  // Blank what is left of a longer previous line.
  size_t width = std::max<size_t>(line.size(), 1);
  if (line.size() < lastWidth)
    line.append(lastWidth - line.size(), ' ');
  lastWidth = width;
  os << '\r' << line;
  os.flush();
}
