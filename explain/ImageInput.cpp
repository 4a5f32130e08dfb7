//===- ImageInput.cpp - PNG images prepared as a model reads them --------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The resize follows PIL's resampling (and torch's antialiased interpolate,
// which copies it): output pixel i covers input coordinates around
// (i + 0.5) · in / out, and each input pixel j within the filter's support is
// weighted by the triangle max(0, 1 − |j + 0.5 − centre| / s) with
// s = max(in / out, 1), the weights normalised to sum to 1. Downscaling thus
// averages every covered pixel instead of sampling two.
//
//===----------------------------------------------------------------------===//

#include "explain/ImageInput.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <png.h>

#include <cmath>
#include <cstring>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

Expected<RgbImage> mlir::glint::explain::readPngFile(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError("cannot read '" + path +
                                   "': " + buffer.getError().message());
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, (*buffer)->getBufferStart(),
                                        (*buffer)->getBufferSize())) {
    std::string message = image.message;
    png_image_free(&image);
    return llvm::createStringError("'" + path +
                                   "' is not a PNG image: " + message);
  }
  // 2^26 pixels, as for the images glint writes.
  if (uint64_t(image.width) * image.height > (uint64_t(1) << 26)) {
    png_image_free(&image);
    return llvm::createStringError(
        llvm::formatv("'{0}': a {1}×{2} image is too large", path, image.width,
                      image.height)
            .str());
  }
  image.format = PNG_FORMAT_RGB;
  RgbImage result;
  result.width = image.width;
  result.height = image.height;
  result.rgb.resize(PNG_IMAGE_SIZE(image));
  png_color black{0, 0, 0};
  if (!png_image_finish_read(&image, &black, result.rgb.data(),
                             /*row_stride=*/0, /*colormap=*/nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    return llvm::createStringError("cannot decode '" + path + "': " + message);
  }
  return result;
}

namespace {

/// Reads `key` (a number, or three numbers) of `object` into `values`.
Error readTriple(const llvm::json::Object &object, StringRef key,
                 std::array<double, 3> &values, StringRef file) {
  const llvm::json::Value *value = object.get(key);
  if (!value || value->kind() == llvm::json::Value::Null)
    return Error::success();
  if (std::optional<double> one = value->getAsNumber()) {
    values = {*one, *one, *one};
    return Error::success();
  }
  const llvm::json::Array *array = value->getAsArray();
  if (!array || array->size() != 3)
    return llvm::createStringError(file + ": '" + key +
                                   "' must be a number or three numbers");
  for (size_t c = 0; c < 3; ++c) {
    std::optional<double> v = (*array)[c].getAsNumber();
    if (!v)
      return llvm::createStringError(file + ": '" + key +
                                     "' must be a number or three numbers");
    values[c] = *v;
  }
  return Error::success();
}

} // namespace

Expected<ImagePreprocessing>
mlir::glint::explain::readImagePreprocessing(StringRef modelDir, int64_t size) {
  ImagePreprocessing result;
  result.size = size;
  for (StringRef name : {"preprocessor_config.json", "config.json"}) {
    llvm::SmallString<256> path(modelDir);
    llvm::sys::path::append(path, name);
    if (modelDir.empty() || !llvm::sys::fs::exists(path))
      continue;
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer)
      return llvm::createStringError("cannot read " + path + ": " +
                                     buffer.getError().message());
    auto json = llvm::json::parse((*buffer)->getBuffer());
    if (!json)
      return llvm::createStringError(path + ": " +
                                     llvm::toString(json.takeError()));
    const llvm::json::Object *object = json->getAsObject();
    if (!object || !(object->get("image_mean") || object->get("image_std") ||
                     object->get("crop_pct") || object->get("do_normalize")))
      continue;
    if (Error e = readTriple(*object, "image_mean", result.mean, path))
      return std::move(e);
    if (Error e = readTriple(*object, "image_std", result.std, path))
      return std::move(e);
    // Hugging Face's processors: do_normalize false keeps [0, 1].
    if (object->getBoolean("do_normalize") == false) {
      result.mean = {0.0, 0.0, 0.0};
      result.std = {1.0, 1.0, 1.0};
    }
    const llvm::json::Value *crop = object->get("crop_pct");
    if (crop && crop->kind() != llvm::json::Value::Null) {
      std::optional<double> v = crop->getAsNumber();
      if (!v || !(*v > 0.0 && *v <= 1.0))
        return llvm::createStringError(path + ": 'crop_pct' must be in (0, 1]");
      result.cropFraction = *v;
    }
    for (double s : result.std)
      if (!(s > 0.0))
        return llvm::createStringError(path + ": 'image_std' must be positive");
    break;
  }
  return result;
}

namespace {

/// For each output index of a 1-D resize from `in` to `out` samples: the
/// first input index it reads and the normalised weights from there.
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::vector<double>> weights;
};

Taps resampleTaps(int64_t in, int64_t out) {
  Taps taps;
  double scale = double(in) / double(out);
  double filterScale = std::max(scale, 1.0);
  double support = filterScale;
  for (int64_t i = 0; i < out; ++i) {
    double centre = (double(i) + 0.5) * scale;
    // Truncation toward zero, as PIL and torch compute the bounds.
    int64_t lo = std::max<int64_t>(int64_t(centre - support + 0.5), 0);
    int64_t hi = std::min<int64_t>(int64_t(centre + support + 0.5), in);
    std::vector<double> w;
    double total = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      double x = (double(j) - centre + 0.5) / filterScale;
      w.push_back(std::max(0.0, 1.0 - std::fabs(x)));
      total += w.back();
    }
    for (double &v : w)
      v = total > 0.0 ? v / total : 0.0;
    taps.first.push_back(lo);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

} // namespace

std::vector<double>
mlir::glint::explain::resizeBilinearAntialiased(ArrayRef<double> channel,
                                                int64_t inH, int64_t inW,
                                                int64_t outH, int64_t outW) {
  // Along rows first, then along columns (PIL's order).
  Taps across = resampleTaps(inW, outW), down = resampleTaps(inH, outH);
  std::vector<double> wide(size_t(inH * outW), 0.0);
  for (int64_t y = 0; y < inH; ++y)
    for (int64_t x = 0; x < outW; ++x) {
      double sum = 0.0;
      for (size_t k = 0; k < across.weights[x].size(); ++k)
        sum += across.weights[x][k] * channel[y * inW + across.first[x] + k];
      wide[y * outW + x] = sum;
    }
  std::vector<double> out(size_t(outH * outW), 0.0);
  for (int64_t y = 0; y < outH; ++y)
    for (int64_t x = 0; x < outW; ++x) {
      double sum = 0.0;
      for (size_t k = 0; k < down.weights[y].size(); ++k)
        sum += down.weights[y][k] * wide[(down.first[y] + k) * outW + x];
      out[y * outW + x] = sum;
    }
  return out;
}

std::vector<float>
mlir::glint::explain::preprocessImage(const RgbImage &image,
                                      const ImagePreprocessing &p) {
  // The shorter side becomes floor(size / crop), the longer in proportion
  // (truncated, as torchvision's Resize computes it).
  int64_t shorter = int64_t(std::floor(double(p.size) / p.cropFraction));
  int64_t outH, outW;
  if (image.height <= image.width) {
    outH = shorter;
    outW =
        int64_t(double(shorter) * double(image.width) / double(image.height));
  } else {
    outW = shorter;
    outH =
        int64_t(double(shorter) * double(image.height) / double(image.width));
  }
  outH = std::max(outH, p.size);
  outW = std::max(outW, p.size);
  // The centre crop's corner, rounded as torchvision's CenterCrop does
  // (Python's round: halves to even, as nearbyint in the default mode).
  int64_t top = int64_t(std::nearbyint(double(outH - p.size) / 2.0));
  int64_t left = int64_t(std::nearbyint(double(outW - p.size) / 2.0));
  int64_t pixels = image.width * image.height;
  std::vector<float> out(size_t(3 * p.size * p.size));
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<double> channel(pixels);
    for (int64_t i = 0; i < pixels; ++i)
      channel[i] = image.rgb[i * 3 + c] / 255.0;
    std::vector<double> resized = resizeBilinearAntialiased(
        channel, image.height, image.width, outH, outW);
    for (int64_t y = 0; y < p.size; ++y)
      for (int64_t x = 0; x < p.size; ++x)
        out[(c * p.size + y) * p.size + x] = float(
            (resized[(top + y) * outW + left + x] - p.mean[c]) / p.std[c]);
  }
  return out;
}
