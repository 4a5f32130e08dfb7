//===- Figure.h - labelled PNG figures of maps and images -------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The PNG figures a researcher reads: a layer's or the rollout's L×L map
// with its axes, token labels, colour bar and the explained row marked; the
// layers as a grid of small multiples; an image beside its relevance
// panels. They are drawn on a Canvas (an RGB raster with rectangles and the
// bitmap text of Font.h) and encoded with libpng; errors are reported as in
// Render.h.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_FIGURE_H
#define GLINT_EXPLAIN_FIGURE_H

#include "explain/Render.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::glint::explain {

//===----------------------------------------------------------------------===//
// Canvas
//===----------------------------------------------------------------------===//

constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0};
/// The figures' colours, beside the colour maps': text, the explained row's
/// outline and marker, the hidden diagonal, the bars of the explained row
/// and the ground-truth mask's outline.
constexpr Rgb kTextColor{34, 34, 34}, kMarkedColor{228, 26, 28},
    kHiddenColor{200, 200, 200}, kBarColor{58, 98, 160},
    kMaskColor{0, 230, 230};

/// An RGB raster, (0, 0) at the top left. Drawing is clipped to it.
class Canvas {
public:
  Canvas(int64_t width, int64_t height, Rgb background = kWhite);

  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  Rgb at(int64_t x, int64_t y) const;

  void set(int64_t x, int64_t y, Rgb color);
  void fillRect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color);
  /// The border of the rectangle, \p thickness pixels inward.
  void strokeRect(int64_t x, int64_t y, int64_t w, int64_t h, Rgb color,
                  int thickness = 1);
  /// \p text with its top-left corner at (x, y), each font pixel a
  /// \p scale × \p scale square.
  void drawText(int64_t x, int64_t y, llvm::StringRef text, Rgb color,
                int scale = 1);
  /// \p text rotated a quarter turn anticlockwise, reading upward from
  /// (x, y), its glyphs' tops facing left: a label under a column.
  void drawTextUp(int64_t x, int64_t y, llvm::StringRef text, Rgb color);

  llvm::Expected<std::string> encodePng() const;

private:
  int64_t width_, height_;
  std::vector<uint8_t> pixels_;
};

/// The width in pixels of \p text drawn at \p scale.
int64_t textWidth(llvm::StringRef text, int scale = 1);

/// \p text as the figures can draw it: spaces shown as '_' when
/// \p markSpaces (a token's leading space matters), control characters as
/// ^X, other non-ASCII characters as '?', at most \p maxChars characters
/// (longer ones end in '~').
std::string figureLabel(llvm::StringRef text, size_t maxChars = 14,
                        bool markSpaces = true);

//===----------------------------------------------------------------------===//
// Figures
//===----------------------------------------------------------------------===//

/// An L×L map (row i the output position, column j the input position).
struct MapFigure {
  std::string title;
  /// A second line under the title, e.g. what the colour range leaves out.
  std::string subtitle;
  std::vector<double> values;
  int64_t size = 0;
  /// One per position, or none. They label both axes when L is at most
  /// kMaxLabelledPositions; otherwise (or without labels) the axes get
  /// position ticks.
  std::vector<std::string> labels;
  /// Show the labels' spaces as '_' (sub-word tokens, whose leading space
  /// matters); off for words and patch names.
  bool markSpaces = true;
  /// The explained output's row: outlined, with a marker on the left.
  std::optional<int64_t> markedRow;
  ColorMap colorMap = ColorMap::Viridis;
  /// What the values are, along the colour bar.
  std::string valueName = "value";
  /// Draw the diagonal grey and leave it out of the colour range: in a
  /// rollout it holds the residual identity, which would leave every other
  /// cell dark.
  bool hideDiagonal = false;
  /// Draw the marked row as bars under the map, lined up with the input
  /// positions (its diagonal entry left out when hideDiagonal).
  bool rowBars = false;
};

constexpr int64_t kMaxLabelledPositions = 64;

/// The figure's PNG. It is an error if the sizes do not match, a value is
/// not finite, the marked row is not a position, or the image would exceed
/// 2^26 pixels.
llvm::Expected<std::string> encodeMapFigurePng(const MapFigure &figure);

/// Several L×L maps (one per layer) as a grid of small multiples, each
/// scaled to its own range and titled with its name and largest value.
struct MapGrid {
  std::string title;
  std::vector<std::string> panelTitles;
  std::vector<std::vector<double>> maps;
  int64_t size = 0;
  std::optional<int64_t> markedRow;
  ColorMap colorMap = ColorMap::Viridis;
  /// Panels per row of the grid (0: about as many rows as columns).
  unsigned columns = 0;
};

/// The grid's PNG; errors as for encodeMapFigurePng.
llvm::Expected<std::string> encodeMapGridPng(const MapGrid &grid);

/// An image and, beside it, its pixel relevance by several methods.
struct ImageFigure {
  std::string title;
  /// Channel-major 3×H×W in any range (shown scaled by its minimum and
  /// maximum), or in [0, 1] when inUnitRange (shown as it is, clamped).
  std::vector<float> image;
  bool inUnitRange = false;
  int64_t height = 0, width = 0;
  struct Panel {
    std::string title;
    /// H×W, shown as heat over the image, scaled to its own range.
    std::vector<double> relevance;
  };
  std::vector<Panel> panels;
  /// H×W, non-zero on the object; outlined on every panel when given.
  std::vector<double> mask;
  /// Lines of text under the panels, e.g. the top classes.
  std::vector<std::string> notes;
};

/// original | panel 1 | panel 2 | ..., with a colour bar; errors as for
/// encodeMapFigurePng.
llvm::Expected<std::string> encodeImageFigurePng(const ImageFigure &figure);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_FIGURE_H
