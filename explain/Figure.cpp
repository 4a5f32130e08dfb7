//===- Figure.cpp - labelled PNG figures of maps and images --------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Every figure is laid out in whole pixels from the font's cell size: a
// margin, then the rotated axis title, the labels, the map, the colour bar
// and its labels, left to right; the title, the map, the bars and the
// column labels, top to bottom.
//
//===----------------------------------------------------------------------===//

#include "explain/Figure.h"
#include "explain/Font.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

//===----------------------------------------------------------------------===//
// Canvas
//===----------------------------------------------------------------------===//

Canvas::Canvas(int64_t width, int64_t height, Rgb background)
    : width_(width), height_(height), pixels_(size_t(width * height) * 3) {
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Canvas::at(int64_t x, int64_t y) const {
  const uint8_t *p = pixels_.data() + (y * width_ + x) * 3;
  return {p[0], p[1], p[2]};
}

void Canvas::set(int64_t x, int64_t y, Rgb color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    return;
  uint8_t *p = pixels_.data() + (y * width_ + x) * 3;
  p[0] = color.r;
  p[1] = color.g;
  p[2] = color.b;
}

void Canvas::fillRect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color) {
  int64_t x0 = std::max<int64_t>(x, 0), x1 = std::min(x + w, width_);
  int64_t y0 = std::max<int64_t>(y, 0), y1 = std::min(y + h, height_);
  for (int64_t j = y0; j < y1; ++j)
    for (int64_t i = x0; i < x1; ++i)
      set(i, j, color);
}

void Canvas::strokeRect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color,
                        int thickness) {
  fillRect(x, y, w, thickness, color);
  fillRect(x, y + h - thickness, w, thickness, color);
  fillRect(x, y, thickness, h, color);
  fillRect(x + w - thickness, y, thickness, h, color);
}

void Canvas::drawText(int64_t x, int64_t y, StringRef text, Rgb color,
                      int scale) {
  for (char c : text) {
    const Glyph &glyph = glyphOf(c);
    for (int gy = 0; gy < kGlyphHeight; ++gy)
      for (int gx = 0; gx < kGlyphWidth; ++gx)
        if (glyph.inked(gx, gy))
          fillRect(x + gx * scale, y + gy * scale, scale, scale, color);
    x += kGlyphAdvance * scale;
  }
}

void Canvas::drawTextUp(int64_t x, int64_t y, StringRef text, Rgb color) {
  // Glyph pixel (gx, gy) lands at (x + gy, y − gx): the baseline runs up.
  for (char c : text) {
    const Glyph &glyph = glyphOf(c);
    for (int gy = 0; gy < kGlyphHeight; ++gy)
      for (int gx = 0; gx < kGlyphWidth; ++gx)
        if (glyph.inked(gx, gy))
          set(x + gy, y - gx, color);
    y -= kGlyphAdvance;
  }
}

Expected<std::string> Canvas::encodePng() const {
  return encodeRgbPng(pixels_, width_, height_);
}

int64_t mlir::glint::explain::textWidth(StringRef text, int scale) {
  return text.empty() ? 0 : (int64_t(text.size()) * kGlyphAdvance - 1) * scale;
}

std::string mlir::glint::explain::figureLabel(StringRef text, size_t maxChars,
                                              bool markSpaces) {
  std::string label;
  for (size_t i = 0; i < text.size(); ++i) {
    auto u = static_cast<unsigned char>(text[i]);
    if (u == ' ') {
      label += markSpaces ? '_' : ' ';
    } else if (u < 0x20 || u == 0x7f) {
      label += '^';
      label += char(u == 0x7f ? '?' : u + 0x40);
    } else if (u < 0x80) {
      label += char(u);
    } else {
      // One '?' per UTF-8 sequence: skip its continuation bytes.
      label += '?';
      while (i + 1 < text.size() &&
             (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80)
        ++i;
    }
  }
  if (label.size() > maxChars) {
    label.resize(maxChars - 1);
    label += '~';
  }
  return label;
}

//===----------------------------------------------------------------------===//
// Shared pieces
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kMargin = 12;
/// Height of one line of text at scale 1, with its spacing.
constexpr int64_t kLine = kGlyphHeight + 4;
constexpr Rgb kInk = kTextColor, kMuted{110, 110, 110}, kGrey = kHiddenColor,
              kMarker = kMarkedColor, kOutline = kMaskColor, kBar = kBarColor;
constexpr int64_t kMaxPixels = int64_t(1) << 26;

Error checkCanvas(int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || width > kMaxPixels ||
      height > kMaxPixels / width)
    return llvm::createStringError(
        llvm::formatv("a {0}×{1} figure is too large (more than 2^26 pixels)",
                      width, height)
            .str());
  return Error::success();
}

Error checkMap(ArrayRef<double> values, int64_t size, StringRef what) {
  if (size <= 0 || size > kMaxPixels ||
      values.size() != uint64_t(size) * uint64_t(size))
    return llvm::createStringError(
        llvm::formatv("{0}: a {1}×{1} map needs {2} values, not {3}", what,
                      size, size > 0 ? size * size : 0, values.size())
            .str());
  return checkFinite(values, size, what);
}

std::string number(double v) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%.3g", v);
  return s;
}

/// The interval mapped onto a colour map, and t ∈ [0, 1] of a value in it.
struct Range {
  double low = 0.0, high = 0.0;
  bool diverging = false;

  static Range of(ArrayRef<double> values, ColorMap map,
                  llvm::function_ref<bool(size_t)> include) {
    Range r;
    r.diverging = map == ColorMap::Diverging;
    bool any = false;
    for (auto [i, v] : llvm::enumerate(values)) {
      if (!include(i))
        continue;
      r.low = any ? std::min(r.low, v) : v;
      r.high = any ? std::max(r.high, v) : v;
      any = true;
    }
    if (r.diverging) {
      double largest = std::max(std::fabs(r.low), std::fabs(r.high));
      r.low = -largest;
      r.high = largest;
    }
    return r;
  }
  double t(double v) const {
    if (!(high > low))
      return diverging ? 0.5 : 0.0;
    return std::clamp((v - low) / (high - low), 0.0, 1.0);
  }
};

/// The first of 1, 2, 5, 10, 20, 50, ... at least \p minimum.
int64_t niceStep(double minimum) {
  for (int64_t decade = 1;; decade *= 10)
    for (int64_t m : {1, 2, 5})
      if (double(m * decade) >= minimum)
        return m * decade;
}

/// A vertical colour bar at (x, y), \p h tall, \p map from \p range.low at
/// the bottom to \p range.high at the top, with the two ends and the middle
/// labelled to its right, and \p caption reading upward beyond them
/// (colorBarWidth wide).
void drawColorBar(Canvas &canvas, int64_t x, int64_t y, int64_t h, ColorMap map,
                  const Range &range, StringRef caption,
                  StringRef highLabel = {}, StringRef lowLabel = {}) {
  constexpr int64_t barWidth = 14;
  for (int64_t k = 0; k < h; ++k) {
    double t = h > 1 ? 1.0 - double(k) / double(h - 1) : 1.0;
    canvas.fillRect(x, y + k, barWidth, 1, colorAt(map, t));
  }
  canvas.strokeRect(x - 1, y - 1, barWidth + 2, h + 2, kMuted);
  std::string high = highLabel.empty() ? number(range.high) : highLabel.str();
  std::string low = lowLabel.empty() ? number(range.low) : lowLabel.str();
  std::string mid = number((range.low + range.high) / 2);
  int64_t labelX = x + barWidth + 5;
  canvas.fillRect(x + barWidth, y, 3, 1, kInk);
  canvas.fillRect(x + barWidth, y + h - 1, 3, 1, kInk);
  canvas.fillRect(x + barWidth, y + h / 2, 3, 1, kInk);
  canvas.drawText(labelX, y, high, kInk);
  canvas.drawText(labelX, y + h - kGlyphHeight, low, kInk);
  if (h >= 4 * kLine)
    canvas.drawText(labelX, y + h / 2 - kGlyphHeight / 2, mid, kInk);
  int64_t labelsWidth =
      std::max({textWidth(high), textWidth(low), textWidth(mid)});
  int64_t captionX = labelX + labelsWidth + 6;
  int64_t captionY = y + h / 2 + textWidth(caption) / 2;
  canvas.drawTextUp(captionX, captionY, caption, kMuted);
}

/// The width of drawColorBar's drawing for these labels.
int64_t colorBarWidth(const Range &range, StringRef highLabel = {},
                      StringRef lowLabel = {}) {
  std::string high = highLabel.empty() ? number(range.high) : highLabel.str();
  std::string low = lowLabel.empty() ? number(range.low) : lowLabel.str();
  std::string mid = number((range.low + range.high) / 2);
  return 14 + 5 + std::max({textWidth(high), textWidth(low), textWidth(mid)}) +
         6 + kGlyphHeight;
}

/// A right-pointing triangle, \p size tall, its tip at (x, y).
void drawMarker(Canvas &canvas, int64_t x, int64_t y, int64_t size, Rgb color) {
  for (int64_t k = 0; k <= size / 2; ++k)
    canvas.fillRect(x - size / 2 + k, y - (size / 2 - k), 1,
                    2 * (size / 2 - k) + 1, color);
}

} // namespace

//===----------------------------------------------------------------------===//
// One map
//===----------------------------------------------------------------------===//

Expected<std::string>
mlir::glint::explain::encodeMapFigurePng(const MapFigure &figure) {
  const int64_t L = figure.size;
  if (Error err = checkMap(figure.values, L, "the map"))
    return std::move(err);
  if (!figure.labels.empty() && figure.labels.size() != uint64_t(L))
    return llvm::createStringError(
        llvm::formatv("the map has {0} labels for {1} positions",
                      figure.labels.size(), L)
            .str());
  if (figure.markedRow && (*figure.markedRow < 0 || *figure.markedRow >= L))
    return llvm::createStringError(
        llvm::formatv("marked row {0} is not a position (there are {1})",
                      *figure.markedRow, L)
            .str());

  bool labelled = !figure.labels.empty() && L <= kMaxLabelledPositions;
  int64_t cell = std::clamp<int64_t>(512 / L, labelled ? kLine : 1, 24);
  int64_t mapPx = L * cell;
  std::vector<std::string> labels;
  size_t labelChars = 0;
  if (labelled)
    for (const std::string &label : figure.labels) {
      labels.push_back(figureLabel(label, 14, figure.markSpaces));
      labelChars = std::max(labelChars, labels.back().size());
    }
  // Ticks every `step` positions when there are no labels: far enough
  // apart for their numbers.
  int64_t digits = int64_t(std::to_string(L - 1).size());
  int64_t stepX = niceStep(double(digits * kGlyphAdvance + 8) / double(cell));
  int64_t stepY = niceStep(double(kLine + 2) / double(cell));

  auto include = [&](size_t i) {
    return !figure.hideDiagonal || L == 1 || int64_t(i) / L != int64_t(i) % L;
  };
  Range range = Range::of(figure.values, figure.colorMap, include);

  // The row under the bars: the marked row, its diagonal left out.
  std::vector<double> bars;
  bool drawBars = figure.rowBars && figure.markedRow;
  if (drawBars) {
    int64_t row = *figure.markedRow;
    bars.assign(figure.values.begin() + row * L,
                figure.values.begin() + (row + 1) * L);
    if (figure.hideDiagonal)
      bars[row] = 0.0;
  }

  // Horizontal layout.
  int64_t axisTitle = kGlyphHeight + 6;
  int64_t rowLabels = labelled ? int64_t(labelChars) * kGlyphAdvance + 6
                               : digits * kGlyphAdvance + 8;
  int64_t markerWidth = figure.markedRow ? 10 : 0;
  int64_t mapX = kMargin + axisTitle + rowLabels + markerWidth;
  int64_t barX = mapX + mapPx + 16;
  int64_t width = barX + colorBarWidth(range) + kMargin;
  width = std::max(width, kMargin * 2 + textWidth(figure.title, 2));
  width = std::max(width, kMargin * 2 + textWidth(figure.subtitle));
  // Vertical layout.
  int64_t mapY =
      kMargin + 2 * kGlyphHeight + 8 + (figure.subtitle.empty() ? 0 : kLine);
  int64_t barsHeight = drawBars ? 80 : 0;
  // The bars' caption, then the bars.
  int64_t barsY = mapY + mapPx + 8 + kLine;
  int64_t colLabelsY =
      mapY + mapPx + (drawBars ? 8 + kLine + barsHeight + 4 : 0) + 4;
  int64_t colLabels =
      labelled ? int64_t(labelChars) * kGlyphAdvance + 2 : kGlyphHeight + 6;
  int64_t height = colLabelsY + colLabels + 6 + kLine + kMargin;
  height = std::max(height, mapY + std::max<int64_t>(mapPx, 60) + kMargin);
  if (Error err = checkCanvas(width, height))
    return std::move(err);

  Canvas canvas(width, height);
  canvas.drawText(kMargin, kMargin, figure.title, kInk, 2);
  if (!figure.subtitle.empty())
    canvas.drawText(kMargin, kMargin + 2 * kGlyphHeight + 6, figure.subtitle,
                    kMuted);

  // The map.
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      double v = figure.values[i * L + j];
      Rgb c = figure.hideDiagonal && i == j && L > 1
                  ? kGrey
                  : colorAt(figure.colorMap, range.t(v));
      canvas.fillRect(mapX + j * cell, mapY + i * cell, cell, cell, c);
    }
  canvas.strokeRect(mapX - 1, mapY - 1, mapPx + 2, mapPx + 2, kMuted);
  // Red stands out on viridis; on blue-white-red the outline is black.
  Rgb marked = figure.colorMap == ColorMap::Diverging ? kBlack : kMarker;
  if (figure.markedRow) {
    int64_t rowY = mapY + *figure.markedRow * cell;
    int thickness = cell >= 8 ? 2 : 1;
    canvas.strokeRect(mapX - thickness, rowY - thickness, mapPx + 2 * thickness,
                      cell + 2 * thickness, marked, thickness);
    drawMarker(canvas, mapX - 3, rowY + cell / 2, 8, marked);
  }

  // Row labels (right-aligned, left of the map) and column labels (reading
  // upward under each column), or ticks.
  int64_t labelRight = mapX - markerWidth - 4;
  for (int64_t i = 0; i < L; ++i) {
    bool isMarked = figure.markedRow && i == *figure.markedRow;
    // Ticks every stepY rows, and the marked row's number in place of the
    // ticks too close to it.
    if (!labelled && !isMarked &&
        (i % stepY != 0 ||
         (figure.markedRow && std::abs(i - *figure.markedRow) * cell < kLine)))
      continue;
    std::string text = labelled ? labels[i] : std::to_string(i);
    Rgb color = isMarked ? marked : kInk;
    int64_t cy = mapY + i * cell + cell / 2;
    canvas.drawText(labelRight - textWidth(text), cy - kGlyphHeight / 2 + 1,
                    text, color);
    if (!labelled)
      canvas.fillRect(mapX - 4, cy, 3, 1, kInk);
  }
  for (int64_t j = 0; j < L; ++j) {
    if (!labelled && j % stepX != 0)
      continue;
    int64_t cx = mapX + j * cell + cell / 2;
    if (labelled) {
      canvas.drawTextUp(cx - kGlyphHeight / 2,
                        colLabelsY + textWidth(labels[j]), labels[j], kInk);
    } else {
      std::string text = std::to_string(j);
      canvas.fillRect(cx, mapY + mapPx + 1, 1, 3, kInk);
      canvas.drawText(cx - textWidth(text) / 2, colLabelsY + 2, text, kInk);
    }
  }
  // Axis titles: input position along the bottom, output position down the
  // left.
  std::string inputTitle = "input position ->";
  canvas.drawText(mapX + mapPx / 2 - textWidth(inputTitle) / 2,
                  colLabelsY + colLabels + 4, inputTitle, kMuted);
  // Reading upward, "<-" comes first and points down.
  std::string outputTitle = "<- output position";
  canvas.drawTextUp(kMargin, mapY + mapPx / 2 + textWidth(outputTitle) / 2,
                    outputTitle, kMuted);

  // The marked row as bars: each input's value in that row, on a shared
  // zero line.
  if (drawBars) {
    double top = 0.0, bottom = 0.0;
    for (double v : bars) {
      top = std::max(top, v);
      bottom = std::min(bottom, v);
    }
    double span = top - bottom;
    int64_t zeroY =
        barsY +
        (span > 0 ? int64_t(std::lround(barsHeight * top / span)) : barsHeight);
    canvas.fillRect(mapX, barsY, mapPx, barsHeight, {246, 246, 246});
    for (int64_t j = 0; j < L; ++j) {
      if (span <= 0)
        break;
      int64_t h = int64_t(std::lround(barsHeight * std::fabs(bars[j]) / span));
      int64_t gap = cell >= 4 ? 1 : 0;
      canvas.fillRect(mapX + j * cell + gap, bars[j] >= 0 ? zeroY - h : zeroY,
                      cell - 2 * gap, h, kBar);
    }
    canvas.fillRect(mapX, zeroY, mapPx, 1, kMuted);
    std::string caption =
        llvm::formatv(
            "row {0} (explained output){1}: max {2}", *figure.markedRow,
            figure.hideDiagonal ? ", own entry left out" : "", number(top))
            .str();
    canvas.drawText(mapX, barsY - kLine, caption, kMuted);
    std::string topLabel = number(top);
    canvas.drawText(mapX - markerWidth - 4 - textWidth(topLabel), barsY,
                    topLabel, kInk);
  }

  drawColorBar(canvas, barX, mapY, std::max<int64_t>(mapPx, 60),
               figure.colorMap, range, figure.valueName);
  return canvas.encodePng();
}

//===----------------------------------------------------------------------===//
// Small multiples
//===----------------------------------------------------------------------===//

Expected<std::string>
mlir::glint::explain::encodeMapGridPng(const MapGrid &grid) {
  const int64_t L = grid.size;
  int64_t n = grid.maps.size();
  if (n == 0 || grid.panelTitles.size() != grid.maps.size())
    return llvm::createStringError(
        llvm::formatv("a grid of {0} maps needs as many titles, not {1}", n,
                      grid.panelTitles.size())
            .str());
  for (auto [l, map] : llvm::enumerate(grid.maps))
    if (Error err = checkMap(map, L, "map " + grid.panelTitles[l]))
      return std::move(err);
  if (grid.markedRow && (*grid.markedRow < 0 || *grid.markedRow >= L))
    return llvm::createStringError(
        llvm::formatv("marked row {0} is not a position (there are {1})",
                      *grid.markedRow, L)
            .str());

  int64_t columns = grid.columns
                        ? grid.columns
                        : int64_t(std::ceil(std::sqrt(double(n)) - 1e-9));
  columns = std::clamp<int64_t>(columns, 1, n);
  int64_t rows = (n + columns - 1) / columns;
  int64_t cell = std::max<int64_t>(1, 160 / L);
  int64_t panel = std::max<int64_t>(L * cell, 14 * kGlyphAdvance);
  int64_t gap = 18;
  int64_t panelW = panel + gap, panelH = 2 * kLine + panel + gap;
  int64_t gridY = kMargin + 2 * kGlyphHeight + 8 + kLine;
  Range unit{0.0, 1.0, grid.colorMap == ColorMap::Diverging};
  if (unit.diverging)
    unit.low = -1.0;
  std::string subtitle = "output position down, input position right; each "
                         "panel scaled to its own range";
  int64_t width = std::max({kMargin * 2 + 8 + columns * panelW +
                                colorBarWidth(unit, "max", "0") + 12,
                            kMargin * 2 + textWidth(grid.title, 2),
                            kMargin * 2 + textWidth(subtitle)});
  int64_t height = gridY + rows * panelH + kMargin;
  if (Error err = checkCanvas(width, height))
    return std::move(err);

  Canvas canvas(width, height);
  canvas.drawText(kMargin, kMargin, grid.title, kInk, 2);
  canvas.drawText(kMargin, kMargin + 2 * kGlyphHeight + 6, subtitle, kMuted);
  for (int64_t l = 0; l < n; ++l) {
    int64_t px = kMargin + 8 + (l % columns) * panelW;
    int64_t py = gridY + (l / columns) * panelH;
    Range range =
        Range::of(grid.maps[l], grid.colorMap, [](size_t) { return true; });
    canvas.drawText(px, py, figureLabel(grid.panelTitles[l], 26, false), kInk);
    canvas.drawText(
        px, py + kLine,
        "max " + number(std::max(std::fabs(range.low), std::fabs(range.high))),
        kMuted);
    int64_t mapY = py + 2 * kLine;
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j)
        canvas.fillRect(
            px + j * cell, mapY + i * cell, cell, cell,
            colorAt(grid.colorMap, range.t(grid.maps[l][i * L + j])));
    canvas.strokeRect(px - 1, mapY - 1, L * cell + 2, L * cell + 2, kMuted);
    if (grid.markedRow)
      drawMarker(canvas, px - 3, mapY + *grid.markedRow * cell + cell / 2, 6,
                 kMarker);
  }
  drawColorBar(canvas, kMargin + 8 + columns * panelW, gridY + 2 * kLine,
               std::max<int64_t>(panel, 60), grid.colorMap, unit,
               "fraction of the panel's max", "max",
               unit.diverging ? "-max" : "0");
  return canvas.encodePng();
}

//===----------------------------------------------------------------------===//
// Image panels
//===----------------------------------------------------------------------===//

Expected<std::string>
mlir::glint::explain::encodeImageFigurePng(const ImageFigure &figure) {
  const int64_t H = figure.height, W = figure.width;
  if (H <= 0 || W <= 0 || H > 4096 || W > 4096 ||
      figure.image.size() != uint64_t(3 * H * W))
    return llvm::createStringError(
        llvm::formatv("an image figure of {0}×{1} pixels needs a 3×{0}×{1} "
                      "image, not {2} values",
                      H, W, figure.image.size())
            .str());
  if (!figure.mask.empty() && figure.mask.size() != uint64_t(H * W))
    return llvm::createStringError(
        llvm::formatv("the mask has {0} values for {1}×{2} pixels",
                      figure.mask.size(), H, W)
            .str());
  for (float v : figure.image)
    if (!std::isfinite(v))
      return llvm::createStringError("the image holds a non-finite value");
  for (const ImageFigure::Panel &panel : figure.panels) {
    if (panel.relevance.size() != uint64_t(H * W))
      return llvm::createStringError(
          llvm::formatv("panel '{0}' has {1} relevance values for {2}×{3} "
                        "pixels",
                        panel.title, panel.relevance.size(), H, W)
              .str());
    for (double v : panel.relevance)
      if (!std::isfinite(v))
        return llvm::createStringError(
            llvm::formatv("panel '{0}' holds a non-finite relevance",
                          panel.title)
                .str());
  }

  // Every panel at least 192 pixels wide, in whole pixels per image pixel.
  int64_t scale = std::max<int64_t>(1, (192 + W - 1) / W);
  int64_t panelW = W * scale, panelH = H * scale, gap = 14;
  int64_t count = 1 + int64_t(figure.panels.size());
  int64_t panelsY = kMargin + 2 * kGlyphHeight + 8 + kLine;
  int64_t barY = panelsY + panelH + 14;
  int64_t notesY = barY + 14 + kLine + 10;
  int64_t width = kMargin * 2 + count * panelW + (count - 1) * gap;
  width = std::max(width, kMargin * 2 + textWidth(figure.title, 2));
  for (const std::string &note : figure.notes)
    width = std::max(width, kMargin * 2 + textWidth(note));
  int64_t height = notesY + int64_t(figure.notes.size()) * kLine + kMargin;
  if (Error err = checkCanvas(width, height))
    return std::move(err);

  Canvas canvas(width, height);
  canvas.drawText(kMargin, kMargin, figure.title, kInk, 2);

  // The image in [0, 1]: as it is, or by its own range (a flat image is
  // mid-grey).
  auto [lowIt, highIt] =
      std::minmax_element(figure.image.begin(), figure.image.end());
  double low = *lowIt, span = double(*highIt) - low;
  auto channel = [&](int64_t c, int64_t y, int64_t x) {
    double v = figure.image[(c * H + y) * W + x];
    if (figure.inUnitRange)
      return std::clamp(v, 0.0, 1.0);
    return span > 0 ? (v - low) / span : 0.5;
  };
  auto inMask = [&](int64_t y, int64_t x) {
    return y >= 0 && x >= 0 && y < H && x < W && figure.mask[y * W + x] != 0;
  };
  // The mask's outline: the panel pixels of object pixels next to a
  // background pixel, along the shared edge, 2 pixels wide.
  auto outline = [&](int64_t ox) {
    if (figure.mask.empty())
      return;
    int64_t t = std::min<int64_t>(2, scale);
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        if (!inMask(y, x))
          continue;
        int64_t sx = ox + x * scale, sy = panelsY + y * scale;
        if (!inMask(y - 1, x))
          canvas.fillRect(sx, sy, scale, t, kOutline);
        if (!inMask(y + 1, x))
          canvas.fillRect(sx, sy + scale - t, scale, t, kOutline);
        if (!inMask(y, x - 1))
          canvas.fillRect(sx, sy, t, scale, kOutline);
        if (!inMask(y, x + 1))
          canvas.fillRect(sx + scale - t, sy, t, scale, kOutline);
      }
  };

  for (int64_t p = 0; p < count; ++p) {
    int64_t ox = kMargin + p * (panelW + gap);
    const ImageFigure::Panel *panel = p ? &figure.panels[p - 1] : nullptr;
    canvas.drawText(
        ox, panelsY - kLine,
        panel ? figureLabel(panel->title, panelW / kGlyphAdvance, false)
              : std::string("input"),
        kInk);
    double relLow = 0.0, relSpan = 0.0;
    if (panel) {
      auto [a, b] =
          std::minmax_element(panel->relevance.begin(), panel->relevance.end());
      relLow = *a;
      relSpan = *b - *a;
    }
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        double rgb[3] = {channel(0, y, x), channel(1, y, x), channel(2, y, x)};
        Rgb out;
        if (!panel) {
          out = {uint8_t(std::lround(rgb[0] * 255)),
                 uint8_t(std::lround(rgb[1] * 255)),
                 uint8_t(std::lround(rgb[2] * 255))};
        } else {
          // Heat over the image in grey: the heat's own colour where it is
          // high, the image (dimmed) showing through where it is low.
          double t = relSpan > 0
                         ? (panel->relevance[y * W + x] - relLow) / relSpan
                         : 0.0;
          double grey = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
          Rgb heat = colorAt(ColorMap::Inferno, t);
          double w = 0.35 + 0.6 * t;
          auto mix = [&](uint8_t h) {
            return uint8_t(std::clamp<long>(
                std::lround((1 - w) * grey * 200.0 + w * h), 0, 255));
          };
          out = {mix(heat.r), mix(heat.g), mix(heat.b)};
        }
        canvas.fillRect(ox + x * scale, panelsY + y * scale, scale, scale, out);
      }
    outline(ox);
  }

  // A horizontal colour bar under the heat panels.
  if (!figure.panels.empty()) {
    int64_t bx = kMargin + panelW + gap;
    int64_t bw = int64_t(figure.panels.size()) * (panelW + gap) - gap;
    for (int64_t k = 0; k < bw; ++k)
      canvas.fillRect(bx + k, barY, 1, 12,
                      colorAt(ColorMap::Inferno, double(k) / double(bw - 1)));
    canvas.strokeRect(bx - 1, barY - 1, bw + 2, 14, kMuted);
    canvas.drawText(bx, barY + 16, "least", kInk);
    std::string most = "most relevant (each panel scaled to its own range)";
    canvas.drawText(bx + bw - textWidth(most), barY + 16, most, kInk);
  }
  if (!figure.mask.empty()) {
    canvas.fillRect(kMargin, barY + 3, 16, 3, kOutline);
    canvas.drawText(kMargin + 20, barY, "object (ground truth)", kInk);
  }
  for (auto [i, note] : llvm::enumerate(figure.notes))
    canvas.drawText(kMargin, notesY + int64_t(i) * kLine, note, kInk);
  return canvas.encodePng();
}
