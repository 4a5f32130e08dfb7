//===- Font.h - a 5×9 bitmap font for figure labels -------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The one font of glint's PNG figures: printable ASCII as 5×9 pixel bitmaps
// (caps 7 pixels tall, two rows of descender), drawn at integer scales. A
// bitmap font keeps the figures free of a font library and of font files
// looked up at run time, and makes them identical on every machine.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_FONT_H
#define GLINT_EXPLAIN_FONT_H

#include <cstdint>

namespace mlir::glint::explain {

constexpr int kGlyphWidth = 5, kGlyphHeight = 9;
/// Horizontal distance from one glyph to the next (one blank column).
constexpr int kGlyphAdvance = kGlyphWidth + 1;

struct Glyph {
  /// Row y's pixels as bits, the leftmost pixel in bit kGlyphWidth − 1.
  uint8_t rows[kGlyphHeight] = {};
  bool inked(int x, int y) const {
    return rows[y] >> (kGlyphWidth - 1 - x) & 1;
  }
};

/// The glyph of \p c; characters outside printable ASCII are drawn as '?'.
const Glyph &glyphOf(char c);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_FONT_H
