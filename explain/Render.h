//===- Render.h - heatmaps, overlays and HTML reports -----------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The files glint-explain writes for people: PNG heatmaps of maps, PNG
// overlays of pixel relevance on an input image, and one self-contained HTML
// report comparing methods token by token.
//
// Every writer is atomic: the file is produced in memory, written to a
// temporary file beside the destination and renamed over it, so an error
// never leaves a partial file (and leaves an existing one as it was). Errors
// name the path.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_RENDER_H
#define GLINT_EXPLAIN_RENDER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir::glint::explain {

//===----------------------------------------------------------------------===//
// Colours
//===----------------------------------------------------------------------===//

enum class ColorMap {
  /// matplotlib's viridis (perceptually uniform, dark blue → yellow): for
  /// non-negative maps.
  Viridis,
  /// matplotlib's inferno (black → yellow): for overlays, where low relevance
  /// is drawn transparent anyway.
  Inferno,
  /// Blue → white → red (ColorBrewer RdBu with a pure white centre): for
  /// signed maps; the value range is made symmetric about 0 so 0 is white.
  Diverging,
};

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb &other) const {
    return r == other.r && g == other.g && b == other.b;
  }
};

/// The colour of \p t ∈ [0, 1] (clamped; NaN gives the 0 end) in \p map,
/// linearly interpolated between the map's control points.
Rgb colorAt(ColorMap map, double t);

//===----------------------------------------------------------------------===//
// PNG
//===----------------------------------------------------------------------===//

/// \p pixels (tightly packed 8-bit RGB rows, top row first) as a PNG
/// file's bytes.
llvm::Expected<std::string> encodeRgbPng(llvm::ArrayRef<uint8_t> pixels,
                                         int64_t width, int64_t height);

struct HeatmapOptions {
  ColorMap colorMap = ColorMap::Viridis;
  /// Every cell is drawn as an s×s square with
  /// s = max(minCellPixels, ceil(targetPixels / max(rows, cols))):
  /// a 32×32 map becomes 512×512 pixels, a 2048×2048 one stays 2048×2048.
  unsigned minCellPixels = 1;
  unsigned targetPixels = 512;
  /// The values mapped to the two ends of the colour map; by default the
  /// smallest and largest value (Diverging: ±the largest |value|). Values
  /// outside are clamped.
  std::optional<double> low, high;
};

/// The PNG (8-bit RGB) of the row-major \p rows × \p cols \p values, row 0 at
/// the top. It is an error if the sizes do not match, a value is NaN or
/// infinite (the message names it and its cell), or the image would exceed
/// 2^26 pixels.
llvm::Expected<std::string>
encodeHeatmapPng(llvm::ArrayRef<double> values, int64_t rows, int64_t cols,
                 const HeatmapOptions &options = {});

/// encodeHeatmapPng written atomically to \p path.
llvm::Error writeHeatmapPng(llvm::StringRef path, llvm::ArrayRef<double> values,
                            int64_t rows, int64_t cols,
                            const HeatmapOptions &options = {});

struct OverlayOptions {
  ColorMap colorMap = ColorMap::Inferno;
  /// Every image pixel becomes a scale×scale square.
  unsigned scale = 8;
  /// Opacity of the heat at the most relevant pixel; it falls linearly to 0
  /// at the least relevant one, so the image stays visible where nothing is.
  double alpha = 0.6;
};

/// The PNG of \p image (channel-major 3×H×W, any range: scaled to [0, 1] by its
/// own minimum and maximum over all channels) under \p pixelRelevance (H×W,
/// min-max normalised to t ∈ [0, 1]), each pixel colour
/// (1 − alpha·t)·image + alpha·t·colorAt(t), enlarged by options.scale. Errors
/// as for encodeHeatmapPng.
llvm::Expected<std::string>
encodeOverlayPng(llvm::ArrayRef<float> image,
                 llvm::ArrayRef<double> pixelRelevance, int64_t H, int64_t W,
                 const OverlayOptions &options = {});

/// encodeOverlayPng written atomically to \p path.
llvm::Error writeOverlayPng(llvm::StringRef path, llvm::ArrayRef<float> image,
                            llvm::ArrayRef<double> pixelRelevance, int64_t H,
                            int64_t W, const OverlayOptions &options = {});

//===----------------------------------------------------------------------===//
// HTML
//===----------------------------------------------------------------------===//

/// One method's relevance over the report's tokens.
struct ReportMethod {
  /// Shown as the row's heading, e.g. "raw attention (layer 3)", "rollout".
  std::string name;
  /// One value per token. Each row is scaled by its own largest |value|;
  /// positive values are shaded red, negative ones blue.
  std::vector<double> relevance;
  /// Free text under the heading, e.g. the method's perturbation AUCs.
  std::string note;
};

/// A PNG embedded as a data URI.
struct ReportImage {
  std::string caption;
  /// The PNG file's bytes (encodeHeatmapPng, encodeOverlayPng, or a file).
  std::string png;
};

struct ReportData {
  std::string title = "glint-explain";
  std::string modelName;
  /// The input tokens as text; HTML is escaped, control characters are shown
  /// as their Unicode control pictures (U+2400 + c), a newline also breaks
  /// the line.
  std::vector<std::string> tokens;
  /// The tokens are whole words (a word-level vocabulary, image patches):
  /// they are shown with a space between them. Otherwise each token is shown
  /// as its text reads, its own spaces separating words, and a token that
  /// continues a word is joined to it with a dotted divider.
  bool wordTokens = false;
  /// The position explained (outlined in every row), and its label (e.g. the
  /// predicted class or next token).
  std::optional<int64_t> targetPosition;
  std::string targetLabel;
  /// What is explained, in the legend's words ("relevance to ..."), e.g.
  /// the class or next token; targetLabel when empty.
  std::string targetName;
  /// Positions known to matter (underlined in every row), if any.
  std::vector<int64_t> groundTruth;
  std::vector<ReportMethod> methods;
  std::vector<ReportImage> images;
  /// Key/value rows of the metadata table: shape, formulation, aggregation,
  /// timing, ...
  std::vector<std::pair<std::string, std::string>> metadata;
};

/// The report as one self-contained HTML page: inline CSS, images as data
/// URIs, no scripts and no external resources. It is an error if a method's
/// relevance does not have one value per token or holds NaN or infinity, or
/// a marked position is not a token.
llvm::Expected<std::string> renderHtmlReport(const ReportData &data);

/// renderHtmlReport written atomically to \p path.
llvm::Error writeHtmlReport(llvm::StringRef path, const ReportData &data);

/// \p text with &, <, >, " and ' replaced by character references.
std::string escapeHtml(llvm::StringRef text);

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

/// An error naming the first non-finite value of \p values, read as rows of
/// \p cols, by its row and column ("\p what holds nan at row 2, column 3").
llvm::Error checkFinite(llvm::ArrayRef<double> values, int64_t cols,
                        llvm::StringRef what);

/// Writes \p contents to \p path through a temporary file in the same
/// directory, renamed over \p path once complete; on any error the temporary
/// file is removed and \p path is untouched. The error names \p path.
llvm::Error writeFileAtomically(llvm::StringRef path, llvm::StringRef contents);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_RENDER_H
