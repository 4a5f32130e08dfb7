//===- Progress.cpp - a progress bar on stderr ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "explain/Progress.h"

#include "llvm/Support/Format.h"

#include <algorithm>

using namespace mlir::glint::explain;

ProgressBar::ProgressBar(llvm::StringRef label, uint64_t total)
    : ProgressBar(label, total, llvm::errs(), llvm::errs().is_displayed()) {}

ProgressBar::ProgressBar(llvm::StringRef label, uint64_t total,
                         llvm::raw_ostream &os, bool enabled,
                         std::chrono::milliseconds interval)
    : label(label.str()), total(total), os(os), enabled(enabled),
      interval(interval), start(std::chrono::steady_clock::now()),
      lastDraw(start) {
  if (enabled)
    draw();
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(uint64_t steps) {
  count += steps;
  if (!enabled || finished)
    return;
  auto now = std::chrono::steady_clock::now();
  if (now - lastDraw < interval)
    return;
  lastDraw = now;
  draw();
}

void ProgressBar::finish() {
  if (finished)
    return;
  finished = true;
  if (!enabled)
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
  // Blank what is left of a longer previous line.
  size_t width = line.size();
  if (width < lastWidth)
    line.append(lastWidth - width, ' ');
  lastWidth = width;
  os << '\r' << line;
  os.flush();
}
