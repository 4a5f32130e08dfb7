//===- Render.cpp - heatmaps, overlays and HTML reports -------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// PNGs are encoded in memory with libpng's simplified API
// (png_image_write_to_memory), which reports errors through the png_image
// instead of longjmp, so no C++ frame is ever skipped.
//
//===----------------------------------------------------------------------===//

#include "explain/Render.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Base64.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

namespace {

//===----------------------------------------------------------------------===//
// Colour maps: control points at evenly spaced t, interpolated linearly.
//===----------------------------------------------------------------------===//

/// matplotlib's viridis sampled at t = 0, 1/8, …, 1.
constexpr Rgb kViridis[] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                            {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                            {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
/// matplotlib's inferno sampled at t = 0, 1/8, …, 1.
constexpr Rgb kInferno[] = {{0, 0, 4},      {31, 12, 72},   {85, 15, 109},
                            {136, 34, 106}, {186, 54, 85},  {227, 89, 51},
                            {249, 142, 9},  {249, 203, 53}, {252, 255, 164}};
/// ColorBrewer RdBu (7 classes) from blue to red, its centre made pure white.
constexpr Rgb kDiverging[] = {{33, 102, 172},  {103, 169, 207}, {209, 229, 240},
                              {255, 255, 255}, {253, 219, 199}, {239, 138, 98},
                              {178, 24, 43}};

ArrayRef<Rgb> controlPoints(ColorMap map) {
  switch (map) {
  case ColorMap::Viridis:
    return kViridis;
  case ColorMap::Inferno:
    return kInferno;
  case ColorMap::Diverging:
    return kDiverging;
  }
  llvm_unreachable("unknown colour map");
}

/// The largest image encoded: 2^26 pixels is 192 MiB of RGB.
constexpr int64_t kMaxPixels = int64_t(1) << 26;

Error checkImageSize(int64_t height, int64_t width) {
  if (height > kMaxPixels / width)
    return llvm::createStringError(
        llvm::formatv("a {0}×{1} image is too large (more than 2^26 pixels)",
                      height, width)
            .str());
  return Error::success();
}

Error prefixPath(Error err, StringRef path) {
  if (!err)
    return Error::success();
  return llvm::createStringError("cannot write '" + path +
                                 "': " + llvm::toString(std::move(err)));
}

/// Writes \p contents, or the error that produced it, to \p path.
Error writeOrFail(StringRef path, Expected<std::string> contents) {
  if (!contents)
    return prefixPath(contents.takeError(), path);
  return writeFileAtomically(path, *contents);
}

//===----------------------------------------------------------------------===//
// HTML
//===----------------------------------------------------------------------===//

/// The page's style sheet. Shading is a translucent background so the token
/// text keeps its contrast. The token strip keeps the text's own spaces and
/// line breaks and wraps at the page's width.
constexpr const char *kStyle = R"css(
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111;
  max-width: 72em; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.4em; }
h3 { font-size: 1em; margin: 1em 0 0.3em; display: flex; align-items: center;
  gap: 1em; flex-wrap: wrap; }
.subtitle { color: #555; margin-top: 0; }
.note { color: #555; font-size: 0.9em; margin: 0 0 0.3em; }
.tokens { font-family: ui-monospace, monospace; line-height: 2.3;
  white-space: pre-wrap; overflow-wrap: anywhere; }
.tok { padding: 0.15em 0; border-radius: 3px; }
.words .tok { white-space: pre; }
.cont { border-left: 1px dotted #777; border-top-left-radius: 0;
  border-bottom-left-radius: 0; }
.target { outline: 2px solid #000; }
.tgt { font-family: system-ui, sans-serif; font-size: 0.75em; color: #000;
  white-space: nowrap; vertical-align: super; margin-left: 0.2em; }
.truth { border-bottom: 3px solid #1a9850; }
.legend { line-height: 1.9; }
.legend > span { margin-right: 1.5em; display: inline-block; }
.scale { font-weight: normal; font-size: 0.8em; color: #333;
  display: inline-flex; align-items: center; gap: 0.4em; }
.scale .bar { display: inline-block; width: 9em; height: 0.9em;
  border: 1px solid #999; }
table.meta { border-collapse: collapse; }
table.meta td, table.meta th { border: 1px solid #ccc; padding: 0.2em 0.6em;
  text-align: left; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { image-rendering: pixelated; max-width: 100%; }
)css";

/// The shading of the report's rows: red for relevance towards the target,
/// blue against it, as a fraction of the row's largest |value|.
constexpr const char *kFor = "214,39,40", *kAgainst = "33,102,172";
constexpr double kMaxAlpha = 0.85;

std::string shade(double fraction) {
  std::string css;
  llvm::raw_string_ostream(css)
      << "rgba(" << (fraction >= 0.0 ? kFor : kAgainst) << ","
      << llvm::format("%.3f", kMaxAlpha * std::min(std::fabs(fraction), 1.0))
      << ")";
  return css;
}

/// The colour bar of one row: from its most negative value (when it has
/// any) through 0 to its largest, the ends labelled with their values.
std::string scaleBar(double low, double high) {
  std::string html;
  llvm::raw_string_ostream os(html);
  bool isSigned = low < 0.0;
  double largest = std::max(std::fabs(low), std::fabs(high));
  os << "<span class=\"scale\">";
  if (isSigned)
    os << llvm::format("%.3g", -largest);
  else
    os << "0";
  os << "<span class=\"bar\" style=\"background:linear-gradient(to right,"
     << (isSigned ? shade(-1.0) + "," : std::string()) << shade(0.0) << ","
     << shade(1.0) << ")\"></span>";
  os << llvm::format("%.3g", largest) << "</span>";
  return html;
}

Error checkPosition(int64_t position, size_t numTokens, StringRef what) {
  if (position < 0 || uint64_t(position) >= numTokens)
    return llvm::createStringError(
        llvm::formatv("{0} {1} is not a token position (there are {2} tokens)",
                      what, position, numTokens)
            .str());
  return Error::success();
}

/// \p token escaped, its control characters shown as Unicode control
/// pictures (U+2400 + c) so a newline token stays visible on its line.
std::string displayToken(StringRef token) {
  std::string shown;
  for (char c : token) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20) {
      // U+2400 + u in UTF-8: E2 90 80+u.
      shown += "\xE2\x90";
      shown += char(0x80 + u);
      // The strip keeps line breaks (white-space: pre-wrap).
      if (c == '\n')
        shown += '\n';
    } else {
      shown += c;
    }
  }
  return escapeHtml(shown);
}

} // namespace

//===----------------------------------------------------------------------===//
// Colours and PNG
//===----------------------------------------------------------------------===//

Rgb mlir::glint::explain::colorAt(ColorMap map, double t) {
  ArrayRef<Rgb> points = controlPoints(map);
  if (!(t > 0.0))
    return points.front();
  if (t >= 1.0)
    return points.back();
  double position = t * double(points.size() - 1);
  size_t i = size_t(position);
  double frac = position - double(i);
  auto mix = [&](uint8_t a, uint8_t b) {
    return uint8_t(std::lround(a + (double(b) - double(a)) * frac));
  };
  const Rgb &lo = points[i], &hi = points[i + 1];
  return {mix(lo.r, hi.r), mix(lo.g, hi.g), mix(lo.b, hi.b)};
}

Expected<std::string>
mlir::glint::explain::encodeRgbPng(ArrayRef<uint8_t> pixels, int64_t width,
                                   int64_t height) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = uint32_t(width);
  image.height = uint32_t(height);
  image.format = PNG_FORMAT_RGB;
  // Room for the worst case (stored blocks), so one compression pass does.
  png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX(image);
  std::string png(size, '\0');
  if (!png_image_write_to_memory(&image, png.data(), &size,
                                 /*convert_to_8_bit=*/0, pixels.data(),
                                 /*row_stride=*/0, /*colormap=*/nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    return llvm::createStringError("libpng: " + message);
  }
  png.resize(size);
  return png;
}

Expected<std::string>
mlir::glint::explain::encodeHeatmapPng(ArrayRef<double> values, int64_t rows,
                                       int64_t cols,
                                       const HeatmapOptions &options) {
  if (rows <= 0 || cols <= 0 ||
      values.size() / uint64_t(cols) != uint64_t(rows) ||
      values.size() % uint64_t(cols) != 0)
    return llvm::createStringError(
        llvm::formatv("a {0}×{1} heatmap needs {2} values, not {3}", rows, cols,
                      rows * cols, values.size())
            .str());
  if (Error err = checkFinite(values, cols, "the heatmap"))
    return std::move(err);

  // The value range mapped onto the colour map.
  auto [minIt, maxIt] = std::minmax_element(values.begin(), values.end());
  double low = *minIt, high = *maxIt;
  if (options.colorMap == ColorMap::Diverging) {
    double largest = std::max(std::fabs(low), std::fabs(high));
    low = -largest;
    high = largest;
  }
  low = options.low.value_or(low);
  high = options.high.value_or(high);
  if (!std::isfinite(low) || !std::isfinite(high) || low > high)
    return llvm::createStringError(
        llvm::formatv("the heatmap range [{0}, {1}] is not a finite interval",
                      low, high)
            .str());
  // A flat map is drawn at the bottom of a sequential map, white in a
  // diverging one.
  double flat = options.colorMap == ColorMap::Diverging ? 0.5 : 0.0;
  auto toT = [&](double v) {
    return high > low ? (v - low) / (high - low) : flat;
  };

  int64_t longer = std::max(rows, cols);
  int64_t cell =
      std::max<int64_t>(std::max(options.minCellPixels, 1u),
                        (int64_t(options.targetPixels) + longer - 1) / longer);
  // Each factor at most 2^26, so the products cannot overflow.
  if (Error err = checkImageSize(
          std::min(rows, kMaxPixels) * std::min(cell, kMaxPixels),
          std::min(cols, kMaxPixels) * std::min(cell, kMaxPixels)))
    return std::move(err);
  int64_t width = cols * cell, height = rows * cell;

  std::vector<uint8_t> pixels(size_t(width * height * 3));
  for (int64_t i = 0; i < rows; ++i) {
    uint8_t *first = pixels.data() + i * cell * width * 3;
    for (int64_t j = 0; j < cols; ++j) {
      Rgb c = colorAt(options.colorMap, toT(values[i * cols + j]));
      for (int64_t x = 0; x < cell; ++x) {
        uint8_t *p = first + (j * cell + x) * 3;
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
      }
    }
    // The cell's other pixel rows repeat its first.
    for (int64_t y = 1; y < cell; ++y)
      std::memcpy(first + y * width * 3, first, size_t(width * 3));
  }
  return encodeRgbPng(pixels, width, height);
}

Error mlir::glint::explain::writeHeatmapPng(StringRef path,
                                            ArrayRef<double> values,
                                            int64_t rows, int64_t cols,
                                            const HeatmapOptions &options) {
  return writeOrFail(path, encodeHeatmapPng(values, rows, cols, options));
}

Expected<std::string> mlir::glint::explain::encodeOverlayPng(
    ArrayRef<float> image, ArrayRef<double> pixelRelevance, int64_t H,
    int64_t W, const OverlayOptions &options) {
  if (H <= 0 || W <= 0 || H > kMaxPixels || W > kMaxPixels ||
      image.size() != uint64_t(3 * H * W) ||
      pixelRelevance.size() != uint64_t(H * W))
    return llvm::createStringError(
        llvm::formatv("an overlay of {0}×{1} pixels needs a 3×{0}×{1} image "
                      "and {0}×{1} relevance, not {2} and {3} values",
                      H, W, image.size(), pixelRelevance.size())
            .str());
  for (auto [i, v] : llvm::enumerate(image))
    if (!std::isfinite(v))
      return llvm::createStringError(
          llvm::formatv("the image holds {0} at channel {1}, row {2}, "
                        "column {3}",
                        v, i / (H * W), i / W % H, i % W)
              .str());
  if (Error err = checkFinite(pixelRelevance, W, "the pixel relevance"))
    return std::move(err);
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0) || options.scale == 0)
    return llvm::createStringError(
        llvm::formatv("overlay alpha {0} is not in [0, 1] or scale {1} is 0",
                      options.alpha, options.scale)
            .str());
  // Each factor at most 2^26, so the products cannot overflow.
  int64_t scale = std::min<int64_t>(options.scale, kMaxPixels + 1);
  if (Error err = checkImageSize(H * scale, W * scale))
    return std::move(err);

  auto [imageMin, imageMax] = std::minmax_element(image.begin(), image.end());
  double imageLow = *imageMin, imageRange = double(*imageMax) - imageLow;
  auto [relMin, relMax] =
      std::minmax_element(pixelRelevance.begin(), pixelRelevance.end());
  double relLow = *relMin, relRange = *relMax - relLow;

  int64_t width = W * scale, height = H * scale;
  std::vector<uint8_t> pixels(size_t(width * height * 3));
  for (int64_t y = 0; y < H; ++y) {
    uint8_t *first = pixels.data() + y * scale * width * 3;
    for (int64_t x = 0; x < W; ++x) {
      double t = relRange > 0.0
                     ? (pixelRelevance[y * W + x] - relLow) / relRange
                     : 0.0;
      Rgb heat = colorAt(options.colorMap, t);
      double weight = options.alpha * t;
      uint8_t heatChannels[3] = {heat.r, heat.g, heat.b};
      uint8_t blended[3];
      for (int64_t c = 0; c < 3; ++c) {
        // A flat image is drawn mid-grey.
        double v = imageRange > 0.0
                       ? (image[(c * H + y) * W + x] - imageLow) / imageRange
                       : 0.5;
        double out = (1.0 - weight) * v * 255.0 + weight * heatChannels[c];
        blended[c] = uint8_t(std::clamp(std::lround(out), 0l, 255l));
      }
      for (int64_t k = 0; k < scale; ++k)
        std::memcpy(first + (x * scale + k) * 3, blended, 3);
    }
    for (int64_t k = 1; k < scale; ++k)
      std::memcpy(first + k * width * 3, first, size_t(width * 3));
  }
  return encodeRgbPng(pixels, width, height);
}

Error mlir::glint::explain::writeOverlayPng(StringRef path,
                                            ArrayRef<float> image,
                                            ArrayRef<double> pixelRelevance,
                                            int64_t H, int64_t W,
                                            const OverlayOptions &options) {
  return writeOrFail(path,
                     encodeOverlayPng(image, pixelRelevance, H, W, options));
}

//===----------------------------------------------------------------------===//
// HTML
//===----------------------------------------------------------------------===//

std::string mlir::glint::explain::escapeHtml(StringRef text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
    case '&':
      escaped += "&amp;";
      break;
    case '<':
      escaped += "&lt;";
      break;
    case '>':
      escaped += "&gt;";
      break;
    case '"':
      escaped += "&quot;";
      break;
    case '\'':
      escaped += "&#39;";
      break;
    default:
      escaped += c;
    }
  }
  return escaped;
}

Expected<std::string>
mlir::glint::explain::renderHtmlReport(const ReportData &data) {
  size_t numTokens = data.tokens.size();
  if (data.targetPosition)
    if (Error err =
            checkPosition(*data.targetPosition, numTokens, "target position"))
      return std::move(err);
  for (int64_t position : data.groundTruth)
    if (Error err = checkPosition(position, numTokens, "ground-truth position"))
      return std::move(err);
  for (const ReportMethod &method : data.methods) {
    if (method.relevance.size() != numTokens)
      return llvm::createStringError(
          llvm::formatv("method '{0}' has {1} relevance values for {2} tokens",
                        method.name, method.relevance.size(), numTokens)
              .str());
    for (auto [i, r] : llvm::enumerate(method.relevance))
      if (!std::isfinite(r))
        return llvm::createStringError(
            llvm::formatv("method '{0}' has relevance {1} at position {2}",
                          method.name, r, i)
                .str());
  }

  std::vector<bool> isTruth(numTokens, false);
  for (int64_t position : data.groundTruth)
    isTruth[position] = true;

  std::string html;
  llvm::raw_string_ostream os(html);
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
        "charset=\"utf-8\">\n"
     << "<title>" << escapeHtml(data.title) << "</title>\n<style>" << kStyle
     << "</style>\n</head>\n<body>\n";
  os << "<h1>" << escapeHtml(data.title) << "</h1>\n";
  if (!data.modelName.empty())
    os << "<p class=\"subtitle\">model: <b>" << escapeHtml(data.modelName)
       << "</b></p>\n";
  if (data.targetPosition) {
    os << "<p>explaining position <b>" << *data.targetPosition << "</b> ("
       << "<span class=\"tok\">"
       << displayToken(data.tokens[*data.targetPosition]) << "</span>)";
    if (!data.targetLabel.empty())
      os << ", target <b>" << escapeHtml(data.targetLabel) << "</b>";
    os << "</p>\n";
  } else if (!data.targetLabel.empty()) {
    os << "<p>target <b>" << escapeHtml(data.targetLabel) << "</b></p>\n";
  }

  // The legend, in terms of what is explained.
  std::string target =
      escapeHtml(data.targetName.empty() ? data.targetLabel : data.targetName);
  if (target.empty())
    target = "the output";
  else
    target = "<b>" + target + "</b>";
  os << "<p class=\"legend\"><span><span class=\"tok\" style=\"background:"
     << shade(1.0) << "\">&nbsp;&nbsp;</span> relevant to " << target
     << ": read by the explained output, or raising its score</span>"
     << "<span><span class=\"tok\" style=\"background:" << shade(-1.0)
     << "\">&nbsp;&nbsp;</span> lowering the score of " << target
     << " (signed methods)</span>";
  if (data.targetPosition)
    os << "<span><span class=\"tok target\">&nbsp;&nbsp;</span> the "
          "explained position</span>";
  if (!data.groundTruth.empty())
    os << "<span><span class=\"tok truth\">&nbsp;&nbsp;</span> ground "
          "truth</span>";
  if (!data.wordTokens)
    os << "<span><span class=\"tok\">ex</span><span class=\"tok cont\">"
          "ample</span> one word in two tokens</span>";
  os << "<br><span>Each row is shaded on its own scale (the bar beside its "
        "name; 0 is white). Hover a token for its value.</span></p>\n";

  os << "<h2>Relevance per method</h2>\n";
  for (const ReportMethod &method : data.methods) {
    double largest = 0.0, low = 0.0;
    for (double r : method.relevance) {
      largest = std::max(largest, std::fabs(r));
      low = std::min(low, r);
    }
    os << "<section class=\"method\">\n<h3>" << escapeHtml(method.name)
       << scaleBar(low, largest) << "</h3>\n";
    if (!method.note.empty())
      os << "<p class=\"note\">" << escapeHtml(method.note) << "</p>\n";
    os << (data.wordTokens ? "<div class=\"tokens words\">"
                           : "<div class=\"tokens\">");
    for (size_t i = 0; i < numTokens; ++i) {
      const std::string &token = data.tokens[i];
      // A sub-word token that continues the previous token's word.
      bool continues = !data.wordTokens && i > 0 && !token.empty() &&
                       !llvm::isSpace(token.front()) &&
                       !data.tokens[i - 1].empty() &&
                       !llvm::isSpace(data.tokens[i - 1].back());
      if (data.wordTokens && i > 0)
        os << " ";
      double r = method.relevance[i];
      double fraction = largest > 0.0 ? r / largest : 0.0;
      bool isTarget =
          data.targetPosition && uint64_t(*data.targetPosition) == i;
      os << "<span class=\"tok";
      if (isTarget)
        os << " target";
      if (isTruth[i])
        os << " truth";
      if (continues)
        os << " cont";
      os << "\" style=\"background:" << shade(fraction) << "\" title=\""
         << "position " << i << ": " << llvm::format("%.6g", r) << " (scaled "
         << llvm::format("%.3f", fraction) << ")"
         << "\">" << displayToken(token) << "</span>";
      if (isTarget && !data.targetLabel.empty())
        os << "<span class=\"tgt\">&#9664; " << escapeHtml(data.targetLabel)
           << "</span>";
    }
    os << "</div>\n</section>\n";
  }

  if (!data.images.empty()) {
    os << "<h2>Images</h2>\n";
    for (const ReportImage &image : data.images)
      os << "<figure><img alt=\"" << escapeHtml(image.caption)
         << "\" src=\"data:image/png;base64," << llvm::encodeBase64(image.png)
         << "\"><figcaption>" << escapeHtml(image.caption)
         << "</figcaption></figure>\n";
  }

  if (!data.metadata.empty()) {
    os << "<h2>Details</h2>\n<table class=\"meta\">\n";
    for (const auto &[key, value] : data.metadata)
      os << "<tr><th>" << escapeHtml(key) << "</th><td>" << escapeHtml(value)
         << "</td></tr>\n";
    os << "</table>\n";
  }
  os << "</body>\n</html>\n";
  return html;
}

Error mlir::glint::explain::writeHtmlReport(StringRef path,
                                            const ReportData &data) {
  return writeOrFail(path, renderHtmlReport(data));
}

//===----------------------------------------------------------------------===//
// Files
//===----------------------------------------------------------------------===//

Error mlir::glint::explain::writeFileAtomically(StringRef path,
                                                StringRef contents) {
  // Beside the destination, so the rename stays on one file system. TempFile
  // also removes the file if the process dies on a signal before the rename.
  Expected<llvm::sys::fs::TempFile> temp =
      llvm::sys::fs::TempFile::create(path + ".tmp-%%%%%%%%");
  if (!temp)
    return prefixPath(temp.takeError(), path);

  std::error_code writeError;
  {
    llvm::raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    os << contents;
    os.flush();
    // raw_fd_ostream aborts on destruction with an unchecked error.
    if (os.has_error()) {
      writeError = os.error();
      os.clear_error();
    }
  }
  if (writeError) {
    Error discarded = temp->discard();
    return prefixPath(llvm::joinErrors(llvm::errorCodeToError(writeError),
                                       std::move(discarded)),
                      path);
  }
  return prefixPath(temp->keep(path), path);
}

Error mlir::glint::explain::checkFinite(ArrayRef<double> values, int64_t cols,
                                        StringRef what) {
  for (auto [i, v] : llvm::enumerate(values))
    if (!std::isfinite(v))
      return llvm::createStringError(
          llvm::formatv("{0} holds {1} at row {2}, column {3}", what, v,
                        int64_t(i) / cols, int64_t(i) % cols)
              .str());
  return Error::success();
}
