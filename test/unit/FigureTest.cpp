//===- FigureTest.cpp - glint-explain's figures and image input ----------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The figures are decoded with libpng independently of the writer and
// checked for what a reader relies on: a colour bar (many distinct colours
// of the map), the explained row marked, the diagonal hidden, bars under the
// map, labels or ticks, the mask outlined. Picture input is checked against
// torch's resize and normalisation on committed fixtures
// (test/fixtures/images/make_images.py).
//
//===----------------------------------------------------------------------===//

#include "explain/Figure.h"
#include "explain/Font.h"
#include "explain/ImageInput.h"
#include "explain/Render.h"
#include "runtime/io/Npy.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <png.h>

#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <tuple>

using namespace mlir::glint::explain;
using llvm::StringRef;

namespace {

std::string sourcePath(StringRef relative) {
  return std::string(GLINT_SOURCE_DIR) + "/" + relative.str();
}

template <typename T> std::string messageOf(llvm::Expected<T> value) {
  return value ? std::string() : llvm::toString(value.takeError());
}

struct Decoded {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Rgb at(int64_t x, int64_t y) const {
    const uint8_t *p = rgb.data() + (y * width + x) * 3;
    return {p[0], p[1], p[2]};
  }
  size_t count(Rgb color) const {
    size_t n = 0;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        n += at(x, y) == color;
    return n;
  }
  /// How many distinct colours the image holds.
  size_t colours() const {
    std::set<std::tuple<int, int, int>> seen;
    for (size_t i = 0; i < rgb.size(); i += 3)
      seen.insert({rgb[i], rgb[i + 1], rgb[i + 2]});
    return seen.size();
  }
};

Decoded decode(const std::string &png) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  Decoded result;
  if (!png_image_begin_read_from_memory(&image, png.data(), png.size())) {
    ADD_FAILURE() << "libpng cannot read the figure: " << image.message;
    return result;
  }
  image.format = PNG_FORMAT_RGB;
  result.width = image.width;
  result.height = image.height;
  result.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, result.rgb.data(), 0, nullptr))
    ADD_FAILURE() << "libpng cannot decode the figure: " << image.message;
  return result;
}

Decoded decodeOrFail(llvm::Expected<std::string> png) {
  if (!png) {
    ADD_FAILURE() << llvm::toString(png.takeError());
    return {};
  }
  return decode(*png);
}

/// An L×L map of two values only, so that any further colours of the
/// viridis map come from the colour bar.
MapFigure twoValueFigure(int64_t L) {
  MapFigure figure;
  figure.title = "a map";
  figure.size = L;
  figure.values.assign(L * L, 0.0);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j <= i; ++j)
      figure.values[i * L + j] = 1.0;
  return figure;
}

size_t viridisColours(const Decoded &image) {
  std::set<std::tuple<int, int, int>> onMap;
  for (int k = 0; k <= 1000; ++k) {
    Rgb c = colorAt(ColorMap::Viridis, k / 1000.0);
    onMap.insert({c.r, c.g, c.b});
  }
  std::set<std::tuple<int, int, int>> seen;
  for (size_t i = 0; i < image.rgb.size(); i += 3) {
    std::tuple<int, int, int> c{image.rgb[i], image.rgb[i + 1],
                                image.rgb[i + 2]};
    if (onMap.count(c))
      seen.insert(c);
  }
  return seen.size();
}

} // namespace

//===----------------------------------------------------------------------===//
// Font
//===----------------------------------------------------------------------===//

TEST(ExplainFont, EveryPrintableCharacterHasItsOwnGlyph) {
  std::set<std::vector<uint8_t>> shapes;
  for (int c = 33; c <= 126; ++c) {
    const Glyph &glyph = glyphOf(char(c));
    std::vector<uint8_t> rows(glyph.rows, glyph.rows + kGlyphHeight);
    int inked = 0;
    for (int y = 0; y < kGlyphHeight; ++y)
      for (int x = 0; x < kGlyphWidth; ++x)
        inked += glyph.inked(x, y);
    EXPECT_GT(inked, 1) << "'" << char(c) << "' is blank";
    EXPECT_TRUE(shapes.insert(rows).second)
        << "'" << char(c) << "' looks like another glyph";
  }
  for (int y = 0; y < kGlyphHeight; ++y)
    EXPECT_EQ(glyphOf(' ').rows[y], 0);
  // Outside printable ASCII: '?'.
  EXPECT_EQ(std::memcmp(glyphOf('\x7f').rows, glyphOf('?').rows, kGlyphHeight),
            0);
  EXPECT_EQ(std::memcmp(glyphOf('\xc3').rows, glyphOf('?').rows, kGlyphHeight),
            0);
  // Descenders reach the two rows under the baseline; capitals do not.
  EXPECT_NE(glyphOf('g').rows[8], 0);
  EXPECT_EQ(glyphOf('E').rows[7] | glyphOf('E').rows[8], 0);
}

TEST(ExplainFont, LabelsAreDrawable) {
  EXPECT_EQ(figureLabel(" the"), "_the");
  EXPECT_EQ(figureLabel(" the", 14, false), " the");
  EXPECT_EQ(figureLabel("a\nb"), "a^Jb");
  EXPECT_EQ(figureLabel("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf?_?");
  EXPECT_EQ(figureLabel("internationalisation", 8), "interna~");
  EXPECT_EQ(textWidth("abc"), 3 * kGlyphAdvance - 1);
  EXPECT_EQ(textWidth("abc", 2), 2 * (3 * kGlyphAdvance - 1));
}

//===----------------------------------------------------------------------===//
// Map figures
//===----------------------------------------------------------------------===//

TEST(ExplainFigure, MapHasAColourBar) {
  Decoded image = decodeOrFail(encodeMapFigurePng(twoValueFigure(6)));
  // The map holds 2 colours; the bar's gradient adds dozens.
  EXPECT_GT(viridisColours(image), 40u);
  // A plain heat map of the same values has just the two.
  MapFigure figure = twoValueFigure(6);
  Decoded plain =
      decodeOrFail(encodeHeatmapPng(figure.values, figure.size, figure.size));
  EXPECT_EQ(viridisColours(plain), 2u);
}

TEST(ExplainFigure, MapMarksTheExplainedRow) {
  MapFigure figure = twoValueFigure(6);
  Decoded unmarked = decodeOrFail(encodeMapFigurePng(figure));
  EXPECT_EQ(unmarked.count(kMarkedColor), 0u);
  figure.markedRow = 5;
  Decoded marked = decodeOrFail(encodeMapFigurePng(figure));
  // The outline runs around the whole row: at least its two long sides.
  int64_t cells = 6 * 24; // the map is at most 24 pixels per cell
  EXPECT_GT(marked.count(kMarkedColor), size_t(2 * 6 * 4));
  EXPECT_LT(marked.count(kMarkedColor), size_t(4 * cells * 2 + 400));
  figure.markedRow = 6;
  EXPECT_NE(messageOf(encodeMapFigurePng(figure)).find("marked row 6"),
            std::string::npos);
}

TEST(ExplainFigure, MapLabelsBothAxesWhenFewPositions) {
  MapFigure figure = twoValueFigure(8);
  Decoded ticks = decodeOrFail(encodeMapFigurePng(figure));
  figure.labels = {"<bos>",   "the", "river", "was",
                   "crimson", "in",  "the",   "morning"};
  Decoded labelled = decodeOrFail(encodeMapFigurePng(figure));
  // Labels under the columns read upward: the figure grows by about the
  // longest label's width, and much more text is drawn than the ticks'.
  EXPECT_GE(labelled.height, ticks.height + 4 * kGlyphAdvance);
  EXPECT_GT(2 * labelled.count(kTextColor), 3 * ticks.count(kTextColor));
  // Long inputs get ticks: with too many positions the labels are not used.
  MapFigure longFigure = twoValueFigure(kMaxLabelledPositions + 1);
  auto withoutLabels = encodeMapFigurePng(longFigure);
  longFigure.labels.assign(kMaxLabelledPositions + 1, "word");
  auto withLabels = encodeMapFigurePng(longFigure);
  ASSERT_TRUE(bool(withoutLabels) && bool(withLabels));
  EXPECT_EQ(*withoutLabels, *withLabels);
  figure.labels.pop_back();
  EXPECT_NE(messageOf(encodeMapFigurePng(figure)).find("7 labels for 8"),
            std::string::npos);
}

TEST(ExplainFigure, RolloutHidesTheDiagonalAndShowsTheRowAsBars) {
  // A rollout-like map: a heavy diagonal and a small, varied rest.
  const int64_t L = 10;
  MapFigure figure;
  figure.size = L;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> small(0.0, 0.05);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j)
      figure.values.push_back(i == j ? 0.9 : small(rng));
  figure.markedRow = L - 1;
  Decoded shown = decodeOrFail(encodeMapFigurePng(figure));
  EXPECT_EQ(shown.count(kHiddenColor), 0u);
  EXPECT_EQ(shown.count(kBarColor), 0u);
  figure.hideDiagonal = true;
  figure.rowBars = true;
  Decoded hidden = decodeOrFail(encodeMapFigurePng(figure));
  // L grey cells of at least 1 pixel; bars for the row's other entries.
  EXPECT_GE(hidden.count(kHiddenColor), size_t(L));
  EXPECT_GT(hidden.count(kBarColor), size_t(L - 1));
  // Shown, the diagonal takes the top colour and the rest huddles at the
  // bottom; hidden, only the largest other cell (and the bar's top) does,
  // and the rest spreads over the colour map.
  Rgb top = colorAt(ColorMap::Viridis, 1.0);
  EXPECT_GT(hidden.count(top), 0u);
  EXPECT_LT(4 * hidden.count(top), shown.count(top));
  EXPECT_GT(viridisColours(hidden), viridisColours(shown));
}

TEST(ExplainFigure, MapRejectsBadValues) {
  MapFigure figure = twoValueFigure(4);
  figure.values[5] = NAN;
  EXPECT_NE(messageOf(encodeMapFigurePng(figure)).find("row 1, column 1"),
            std::string::npos);
  figure.values.pop_back();
  EXPECT_NE(messageOf(encodeMapFigurePng(figure)).find("needs 16 values"),
            std::string::npos);
}

TEST(ExplainFigure, GridHasOnePanelPerLayer) {
  MapGrid grid;
  grid.size = 5;
  grid.markedRow = 4;
  auto gridOf = [&](int n) {
    grid.maps.assign(n, twoValueFigure(5).values);
    grid.panelTitles.clear();
    for (int l = 0; l < n; ++l)
      grid.panelTitles.push_back("layer " + std::to_string(l));
    return decodeOrFail(encodeMapGridPng(grid));
  };
  Decoded one = gridOf(1), six = gridOf(6);
  // One marker per panel, each the same size.
  ASSERT_GT(one.count(kMarkedColor), 0u);
  EXPECT_EQ(six.count(kMarkedColor), 6 * one.count(kMarkedColor));
  // Six panels: three across, two down.
  EXPECT_GT(six.height, one.height + 100);
  grid.panelTitles.pop_back();
  EXPECT_NE(messageOf(encodeMapGridPng(grid)).find("needs as many titles"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Image figures
//===----------------------------------------------------------------------===//

TEST(ExplainFigure, ImagePanelsSideBySideWithTheMaskOutlined) {
  const int64_t H = 8, W = 8;
  ImageFigure figure;
  figure.title = "an image";
  figure.height = H;
  figure.width = W;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> noise;
  for (int64_t i = 0; i < 3 * H * W; ++i)
    figure.image.push_back(noise(rng));
  std::vector<double> relevance(H * W);
  for (int64_t i = 0; i < H * W; ++i)
    relevance[i] = double(i % W);
  figure.panels = {{"raw", relevance}, {"rollout", relevance}};
  Decoded unmasked = decodeOrFail(encodeImageFigurePng(figure));
  // Three panels of at least 192 pixels each.
  EXPECT_GE(unmasked.width, 3 * 192);
  EXPECT_EQ(unmasked.count(kMaskColor), 0u);
  // A colour bar: the inferno map's many colours.
  std::set<std::tuple<int, int, int>> inferno;
  for (int k = 0; k <= 1000; ++k) {
    Rgb c = colorAt(ColorMap::Inferno, k / 1000.0);
    inferno.insert({c.r, c.g, c.b});
  }
  size_t onMap = 0;
  for (const auto &c : inferno)
    onMap += unmasked.count({uint8_t(std::get<0>(c)), uint8_t(std::get<1>(c)),
                             uint8_t(std::get<2>(c))}) > 0;
  EXPECT_GT(onMap, 100u);

  // A 2×2 object: its outline on each of the three panels.
  figure.mask.assign(H * W, 0.0);
  for (int64_t y : {3, 4})
    for (int64_t x : {3, 4})
      figure.mask[y * W + x] = 1.0;
  Decoded masked = decodeOrFail(encodeImageFigurePng(figure));
  int64_t scale = 192 / W; // 24 pixels per image pixel
  // Per panel: the 2×2 square's border, 2 pixels wide, 4 sides of 2 pixels.
  size_t perPanel = size_t(4 * (2 * scale) * 2 - 4 * 4);
  EXPECT_GE(masked.count(kMaskColor), 3 * perPanel);
  EXPECT_LE(masked.count(kMaskColor), 3 * perPanel + 16 * 3 + 100);

  figure.mask.pop_back();
  EXPECT_NE(messageOf(encodeImageFigurePng(figure)).find("mask has 63"),
            std::string::npos);
}

TEST(ExplainFigure, PicturesAreShownAsTheyWere) {
  // A flat image: mid-grey when scaled by its own range, its own grey when
  // it is a picture in [0, 1].
  ImageFigure figure;
  figure.height = figure.width = 4;
  figure.image.assign(3 * 16, 0.25f);
  size_t panel = size_t(192) * 192;
  EXPECT_GE(decodeOrFail(encodeImageFigurePng(figure)).count({128, 128, 128}),
            panel);
  figure.inUnitRange = true;
  Decoded picture = decodeOrFail(encodeImageFigurePng(figure));
  EXPECT_GE(picture.count({64, 64, 64}), panel);
  EXPECT_LT(picture.count({128, 128, 128}), panel);
}

//===----------------------------------------------------------------------===//
// Picture input
//===----------------------------------------------------------------------===//

/// The fixture pictures as a model with 8×8 inputs reads them, against
/// torch's antialiased bilinear resize, torchvision's centre crop and
/// normalisation (make_images.py): downscaled with a crop (17×23) and
/// upscaled (5×6).
TEST(ExplainImageInput, MatchesTorchResizeCropAndNormalise) {
  for (auto [name, crop] :
       {std::pair<const char *, double>{"rgb-17x23", 0.8}, {"rgb-5x6", 1.0}}) {
    SCOPED_TRACE(name);
    auto picture = readPngFile(
        sourcePath(std::string("test/fixtures/images/") + name + ".png"));
    ASSERT_TRUE(bool(picture)) << llvm::toString(picture.takeError());
    auto expected = mlir::glint::runtime::readNpyF32(
        sourcePath(std::string("test/fixtures/images/") + name + ".npy"));
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    ImagePreprocessing preprocessing;
    preprocessing.size = 8;
    preprocessing.cropFraction = crop;
    std::vector<float> got = preprocessImage(*picture, preprocessing);
    ASSERT_EQ(got.size(), expected->data.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - expected->data[i]));
    EXPECT_LT(worst, 1e-5);
  }
}

/// The bundled image model's preprocessing maps its PNG back onto the
/// values it was trained on: the fixture is held-out image 1 written as
/// x / 6 + 0.5 in 8 bits.
TEST(ExplainImageInput, BundledModelReadsItsPicture) {
  auto preprocessing =
      readImagePreprocessing(sourcePath("models/vim-shapes"), 32);
  ASSERT_TRUE(bool(preprocessing)) << llvm::toString(preprocessing.takeError());
  EXPECT_DOUBLE_EQ(preprocessing->mean[1], 0.5);
  EXPECT_NEAR(preprocessing->std[2], 1.0 / 6.0, 1e-12);
  auto picture = readPngFile(sourcePath("test/fixtures/images/cross.png"));
  ASSERT_TRUE(bool(picture)) << llvm::toString(picture.takeError());
  ASSERT_EQ(picture->width, 32);
  std::vector<float> got = preprocessImage(*picture, *preprocessing);
  auto images = mlir::glint::runtime::readNpyF32(
      sourcePath("models/vim-shapes/heldout_images.npy"));
  ASSERT_TRUE(bool(images)) << llvm::toString(images.takeError());
  const float *x = images->data.data() + 3 * 32 * 32;
  size_t compared = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(x[i]) > 3.0) // clipped when written
      continue;
    EXPECT_NEAR(got[i], x[i], 0.5 / 255.0 * 6.0 + 1e-6) << "at " << i;
    ++compared;
  }
  EXPECT_GT(compared, got.size() * 9 / 10);
  // Without a preprocessing file: ImageNet's statistics.
  auto defaults = readImagePreprocessing(sourcePath("models/mamba-keyword"), 8);
  ASSERT_TRUE(bool(defaults));
  EXPECT_DOUBLE_EQ(defaults->mean[0], 0.485);
  EXPECT_DOUBLE_EQ(defaults->std[2], 0.225);
}

/// A model directory's preprocessing keys, as Hugging Face writes them.
TEST(ExplainImageInput, PreprocessingKeys) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("glint-pre", dir));
  auto write = [&](StringRef text) {
    std::error_code ec;
    llvm::raw_fd_ostream os((dir + "/preprocessor_config.json").str(), ec);
    os << text;
  };
  write(R"({"image_mean": [0.5, 0.5, 0.5], "image_std": 0.25,
            "crop_pct": null})");
  auto read = readImagePreprocessing(dir, 224);
  ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
  EXPECT_EQ(read->size, 224);
  EXPECT_DOUBLE_EQ(read->std[1], 0.25);
  EXPECT_DOUBLE_EQ(read->cropFraction, 1.0);
  write(R"({"do_normalize": false, "crop_pct": 0.875})");
  read = readImagePreprocessing(dir, 224);
  ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
  EXPECT_DOUBLE_EQ(read->mean[0], 0.0);
  EXPECT_DOUBLE_EQ(read->std[0], 1.0);
  EXPECT_DOUBLE_EQ(read->cropFraction, 0.875);
  write(R"({"image_std": [0.2, 0.0, 0.2]})");
  EXPECT_NE(messageOf(readImagePreprocessing(dir, 8))
                .find("'image_std' must be positive"),
            std::string::npos);
  write(R"({"image_mean": [0.5, 0.5]})");
  EXPECT_NE(messageOf(readImagePreprocessing(dir, 8))
                .find("must be a number or three numbers"),
            std::string::npos);
  llvm::sys::fs::remove_directories(dir);
}

TEST(ExplainImageInput, BadFilesAreNamed) {
  std::string notPng = sourcePath("models/vim-shapes/config.json");
  EXPECT_NE(messageOf(readPngFile(notPng)).find("is not a PNG image"),
            std::string::npos);
  EXPECT_NE(
      messageOf(readPngFile(sourcePath("no/such.png"))).find("cannot read"),
      std::string::npos);
}

/// The JPEG fixtures (make_images.py: baseline 4:2:0 with odd sizes,
/// progressive, greyscale) decode as Pillow decodes them, and preprocess as
/// torch does Pillow's pixels. libjpeg versions may round differently (the
/// IDCT, the chroma upsampling), so a decoded value may be 1 off; Pillow
/// here is libjpeg-turbo 3.2.0, glint Debian's 2.1.5, and they agree
/// exactly. One level is 1/255 of [0, 1], at most 1 / (255 · 0.224) after
/// normalisation by the smallest std.
TEST(ExplainImageInput, JpegMatchesPillow) {
  for (const char *name :
       {"rgb-17x23.jpg", "rgb-17x23-progressive.jpg", "grey-17x23.jpg"}) {
    SCOPED_TRACE(name);
    std::string path = sourcePath(std::string("test/fixtures/images/") + name);
    auto picture = readImageFile(path);
    ASSERT_TRUE(bool(picture)) << llvm::toString(picture.takeError());
    auto pixels = mlir::glint::runtime::readNpyI64(path + ".pixels.npy");
    ASSERT_TRUE(bool(pixels)) << llvm::toString(pixels.takeError());
    ASSERT_EQ(pixels->shape, (std::vector<int64_t>{17, 23, 3}));
    ASSERT_EQ(picture->height, 17);
    ASSERT_EQ(picture->width, 23);
    ASSERT_EQ(picture->rgb.size(), pixels->data.size());
    size_t exact = 0;
    int64_t worstLevel = 0;
    for (size_t i = 0; i < pixels->data.size(); ++i) {
      int64_t diff = std::abs(int64_t(picture->rgb[i]) - pixels->data[i]);
      worstLevel = std::max(worstLevel, diff);
      exact += diff == 0;
    }
    EXPECT_LE(worstLevel, 1);
    // A different upsampling or IDCT would move far more than a few values.
    EXPECT_GE(exact, pixels->data.size() * 99 / 100);
    if (StringRef(name).starts_with("grey"))
      for (size_t i = 0; i < picture->rgb.size(); i += 3) {
        EXPECT_EQ(picture->rgb[i], picture->rgb[i + 1]);
        EXPECT_EQ(picture->rgb[i], picture->rgb[i + 2]);
      }

    auto expected = mlir::glint::runtime::readNpyF32(path + ".npy");
    ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
    ImagePreprocessing preprocessing;
    preprocessing.size = 8;
    preprocessing.cropFraction = 0.8;
    std::vector<float> got = preprocessImage(*picture, preprocessing);
    ASSERT_EQ(got.size(), expected->data.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::fabs(double(got[i]) - expected->data[i]));
    EXPECT_LT(worst, 1.0 / (255.0 * 0.224) + 1e-5);
  }
}

/// Pictures are told apart by their first bytes, not their names: a JPEG
/// called .png is read as the JPEG it is.
TEST(ExplainImageInput, FormatsAreToldByTheirBytes) {
  EXPECT_EQ(sniffImageFormat(StringRef("\x89PNG\r\n\x1a\n\0\0", 10)),
            ImageFormat::Png);
  EXPECT_EQ(sniffImageFormat("\xFF\xD8\xFF\xE0"), ImageFormat::Jpeg);
  EXPECT_EQ(sniffImageFormat("\x93NUMPY"), ImageFormat::Unknown);
  EXPECT_EQ(sniffImageFormat("\xFF\xD8"), ImageFormat::Unknown);
  EXPECT_EQ(sniffImageFormat(""), ImageFormat::Unknown);

  auto jpeg = llvm::MemoryBuffer::getFile(
      sourcePath("test/fixtures/images/rgb-17x23.jpg"));
  ASSERT_TRUE(bool(jpeg));
  llvm::SmallString<128> misnamed;
  ASSERT_FALSE(
      llvm::sys::fs::createTemporaryFile("glint-jpeg", "png", misnamed));
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(misnamed, ec);
    ASSERT_FALSE(ec);
    os << (*jpeg)->getBuffer();
  }
  auto read = readImageFile(misnamed);
  ASSERT_TRUE(bool(read)) << llvm::toString(read.takeError());
  auto direct = decodeJpeg((*jpeg)->getBuffer(), "rgb-17x23.jpg");
  ASSERT_TRUE(bool(direct)) << llvm::toString(direct.takeError());
  EXPECT_EQ(read->rgb, direct->rgb);
  auto png = readImageFile(sourcePath("test/fixtures/images/rgb-17x23.png"));
  ASSERT_TRUE(bool(png)) << llvm::toString(png.takeError());
  EXPECT_EQ(png->width, 23);
  EXPECT_NE(messageOf(readImageFile(sourcePath("models/vim-shapes/"
                                               "config.json")))
                .find("config.json' is not a PNG or JPEG image"),
            std::string::npos);
  llvm::sys::fs::remove(misnamed);
}

/// A CMYK JPEG is refused, and every truncation of a JPEG fails with an
/// error naming it (libjpeg would only warn and fill the rest in grey; its
/// default error handler would exit the process).
TEST(ExplainImageInput, BadJpegsAreRefusedByName) {
  std::string cmyk = sourcePath("test/fixtures/images/cmyk-6x5.jpg");
  EXPECT_NE(messageOf(readImageFile(cmyk))
                .find("cmyk-6x5.jpg' is a CMYK JPEG: glint reads RGB and "
                      "greyscale pictures"),
            std::string::npos);

  for (const char *name : {"rgb-17x23.jpg", "rgb-17x23-progressive.jpg"}) {
    SCOPED_TRACE(name);
    auto jpeg = llvm::MemoryBuffer::getFile(
        sourcePath(std::string("test/fixtures/images/") + name));
    ASSERT_TRUE(bool(jpeg));
    StringRef bytes = (*jpeg)->getBuffer();
    ASSERT_TRUE(bool(decodeJpeg(bytes, "whole.jpg")));
    size_t refused = 0;
    for (size_t length = 0; length < bytes.size(); ++length) {
      std::string message =
          messageOf(decodeJpeg(bytes.take_front(length), "cut.jpg"));
      refused += message.find("cannot decode 'cut.jpg' as a JPEG image") !=
                 std::string::npos;
    }
    EXPECT_EQ(refused, bytes.size());
    // Cut in the middle of the scan data: the message says so.
    EXPECT_NE(messageOf(decodeJpeg(bytes.take_front(bytes.size() / 2 + 200),
                                   "cut.jpg"))
                  .find("Premature end of JPEG file"),
              std::string::npos);
  }
  // A JPEG signature followed by garbage.
  EXPECT_NE(messageOf(decodeJpeg(StringRef("\xFF\xD8\xFF\x00garbage", 11),
                                 "junk.jpg"))
                .find("cannot decode 'junk.jpg' as a JPEG image"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// The report's token strip
//===----------------------------------------------------------------------===//

namespace {
ReportData stripData() {
  ReportData data;
  data.tokens = {"<bos>", " The", " quick", " ex", "ample", "\n", "ends", "?"};
  data.targetPosition = 7;
  data.targetName = "negative";
  data.targetLabel = "negative (p = 0.910)";
  data.methods = {{"rollout", {0, 0.1, 0.2, 0.3, 0.4, 0.05, 0.5, 0}, ""},
                  {"signed", {0, -0.25, 0.5, 0.1, 0, 0, 0.2, 0}, ""}};
  return data;
}
} // namespace

TEST(ExplainReport, SubwordTokensReadAsText) {
  auto html = renderHtmlReport(stripData());
  ASSERT_TRUE(bool(html)) << llvm::toString(html.takeError());
  StringRef page(*html);
  // Tokens carry their own spaces; "ample" continues " ex" and is joined to
  // it visibly, " The" and "ends" (after a newline) start words.
  EXPECT_TRUE(page.contains("<div class=\"tokens\">"));
  EXPECT_EQ(page.count("class=\"tok cont\""), 2u + 1u); // 2 rows + legend
  EXPECT_TRUE(page.contains(">ample</span>"));
  EXPECT_FALSE(page.contains("class=\"tok cont\" style=\"background:rgba("
                             "214,39,40,0.000)\" title=\"position 1"));
  // The newline token is shown (␊) and breaks the line.
  EXPECT_TRUE(page.contains("\xE2\x90\x8A\n</span>"));
  // The explained position is labelled with what it predicts, per row.
  EXPECT_EQ(page.count("<span class=\"tgt\">&#9664; negative (p = "
                       "0.910)</span>"),
            2u);
  // The legend speaks of the target, not of signs.
  EXPECT_TRUE(page.contains("relevant to <b>negative</b>"));
  EXPECT_TRUE(page.contains("lowering the score of <b>negative</b>"));
  EXPECT_FALSE(page.contains("</span> positive</span>"));
  // Each row's colour bar with its range: 0..0.5 for a non-negative row,
  // -0.5..0.5 (symmetric) for a signed one.
  EXPECT_TRUE(page.contains("<span class=\"scale\">0<span class=\"bar\""));
  EXPECT_TRUE(page.contains("</span>0.5</span>"));
  EXPECT_TRUE(page.contains("<span class=\"scale\">-0.5<span"));
}

TEST(ExplainReport, WordTokensAreSpacedAndWrap) {
  ReportData data = stripData();
  data.tokens = {"<bos>", "the",      "quick", "example",
                 "of",    "patch 12", "ends",  "?"};
  data.wordTokens = true;
  auto html = renderHtmlReport(data);
  ASSERT_TRUE(bool(html)) << llvm::toString(html.takeError());
  StringRef page(*html);
  EXPECT_TRUE(page.contains("<div class=\"tokens words\">"));
  EXPECT_FALSE(page.contains("tok cont"));
  // A space between words (where lines may break), none inside a span.
  EXPECT_TRUE(page.contains(">the</span> <span"));
  EXPECT_TRUE(page.contains(".words .tok { white-space: pre; }"));
  // The strip wraps instead of scrolling.
  EXPECT_TRUE(page.contains("white-space: pre-wrap"));
  EXPECT_FALSE(page.contains("overflow-x"));
}
