//===- ImageInput.cpp - pictures prepared as a model reads them ----------===//
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
#include "runtime/io/InputLimits.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <png.h>

// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <jpeglib.h>
// After jpeglib.h: the message codes (JWRN_*).
#include <jerror.h>

#include <cmath>
#include <csetjmp>
#include <cstring>

using namespace mlir::glint::explain;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

/// 2^26 pixels, as for the images glint writes.
static constexpr uint64_t kMaxPixels = uint64_t(1) << 26;

static Error tooLarge(StringRef name, uint64_t width, uint64_t height) {
  return llvm::createStringError(
      llvm::formatv("'{0}': a {1}×{2} image is too large (at most {3} pixels)",
                    name, width, height, kMaxPixels)
          .str());
}

Expected<RgbImage> mlir::glint::explain::readImageFile(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError("cannot read '" + path +
                                   "': " + buffer.getError().message());
  StringRef bytes = (*buffer)->getBuffer();
  switch (sniffImageFormat(bytes)) {
  case ImageFormat::Png:
    return decodePng(bytes, path);
  case ImageFormat::Jpeg:
    return decodeJpeg(bytes, path);
  case ImageFormat::Unknown:
    break;
  }
  return llvm::createStringError(
      "'" + path +
      "' is not a PNG or JPEG image: it starts with neither signature");
}

Expected<RgbImage> mlir::glint::explain::readPngFile(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return llvm::createStringError("cannot read '" + path +
                                   "': " + buffer.getError().message());
  return decodePng((*buffer)->getBuffer(), path);
}

Expected<RgbImage> mlir::glint::explain::decodePng(StringRef bytes,
                                                   StringRef name) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    std::string message = image.message;
    png_image_free(&image);
    return llvm::createStringError("'" + name +
                                   "' is not a PNG image: " + message);
  }
  if (uint64_t(image.width) * image.height > kMaxPixels) {
    png_image_free(&image);
    return tooLarge(name, image.width, image.height);
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
    return llvm::createStringError("cannot decode '" + name + "': " + message);
  }
  return result;
}

//===----------------------------------------------------------------------===//
// JPEG
//===----------------------------------------------------------------------===//
//
// libjpeg reports a fatal error by calling error_exit, which must not return
// (its default calls exit()). Ours formats the message and longjmps back to
// decodeJpegPixels, whose frame holds no C++ object with a destructor, so the
// jump skips none; the caller turns the outcome into an llvm::Error.

namespace {

struct JpegErrors {
  /// First, so that libjpeg's pointer to it is a pointer to the whole.
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpegErrorExit(j_common_ptr info) {
  auto *errors = reinterpret_cast<JpegErrors *>(info->err);
  info->err->format_message(info, errors->message);
  std::longjmp(errors->jump, 1);
}

/// Warnings (level -1) about the picture's data are errors: libjpeg would go
/// on with grey or garbled pixels. Those about metadata glint does not use
/// are not. Trace messages (level >= 0) are dropped, as by default.
void jpegEmitMessage(j_common_ptr info, int level) {
  if (level >= 0)
    return;
  int code = info->err->msg_code;
  if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
      code == JWRN_BOGUS_ICC) {
    ++info->err->num_warnings;
    return;
  }
  jpegErrorExit(info);
}

void jpegOutputMessage(j_common_ptr) {}

enum class JpegOutcome { Decoded, Failed, FourChannel, TooLarge };

/// Decodes \p data into \p image; on Failed, errors.message says why. The
/// frame between setjmp and the longjmp of an error holds only trivially
/// destructible objects, and what it changes after setjmp and reads after the
/// jump is volatile.
JpegOutcome decodeJpegPixels(const unsigned char *data, size_t size,
                             JpegErrors &errors, RgbImage &image) {
  jpeg_decompress_struct info;
  info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = jpegErrorExit;
  errors.manager.emit_message = jpegEmitMessage;
  errors.manager.output_message = jpegOutputMessage;
  errors.message[0] = '\0';
  volatile bool created = false;
  if (setjmp(errors.jump)) {
    if (created)
      jpeg_destroy_decompress(&info);
    return JpegOutcome::Failed;
  }
  jpeg_create_decompress(&info);
  created = true;
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, /*require_image=*/TRUE);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    return JpegOutcome::FourChannel;
  }
  if (uint64_t(info.image_width) * info.image_height > kMaxPixels) {
    image.width = info.image_width;
    image.height = info.image_height;
    jpeg_destroy_decompress(&info);
    return JpegOutcome::TooLarge;
  }
  bool grey = info.jpeg_color_space == JCS_GRAYSCALE;
  info.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  if (info.output_components != (grey ? 1 : 3)) {
    std::snprintf(errors.message, sizeof(errors.message),
                  "%d output components", info.output_components);
    jpeg_destroy_decompress(&info);
    return JpegOutcome::Failed;
  }
  image.width = info.output_width;
  image.height = info.output_height;
  image.rgb.assign(size_t(image.width) * image.height * 3, 0);
  size_t stride = size_t(image.width) * 3;
  while (info.output_scanline < info.output_height) {
    unsigned char *row = image.rgb.data() + info.output_scanline * stride;
    jpeg_read_scanlines(&info, &row, 1);
    // A grey row fills the first third of its place: spread it from the
    // right, where no grey value not yet read is overwritten.
    if (grey)
      for (int64_t x = image.width - 1; x >= 0; --x)
        row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = row[x];
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return JpegOutcome::Decoded;
}

} // namespace

Expected<RgbImage> mlir::glint::explain::decodeJpeg(StringRef bytes,
                                                    StringRef name) {
  RgbImage image;
  JpegErrors errors;
  switch (
      decodeJpegPixels(reinterpret_cast<const unsigned char *>(bytes.data()),
                       bytes.size(), errors, image)) {
  case JpegOutcome::Decoded:
    return image;
  case JpegOutcome::FourChannel:
    return llvm::createStringError(
        "'" + name +
        "' is a CMYK JPEG: glint reads RGB and greyscale pictures; convert it "
        "to RGB first");
  case JpegOutcome::TooLarge:
    return tooLarge(name, image.width, image.height);
  case JpegOutcome::Failed:
    break;
  }
  return llvm::createStringError(
      "cannot decode '" + name +
      "' as a JPEG image (corrupt or truncated?): " + errors.message);
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

llvm::Expected<std::map<int64_t, std::string>>
mlir::glint::explain::readClassNames(StringRef modelDir) {
  std::map<int64_t, std::string> names;
  if (modelDir.empty())
    return names;
  llvm::SmallString<128> path(modelDir);
  llvm::sys::path::append(path, "config.json");
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return names;
  auto json = runtime::parseJSON((*buffer)->getBuffer());
  if (!json)
    return llvm::createStringError(path + ": " +
                                   llvm::toString(json.takeError()));
  const llvm::json::Object *config = json->getAsObject();
  const llvm::json::Object *labels =
      config ? config->getObject("id2label") : nullptr;
  if (!labels)
    return names;
  for (const auto &[key, value] : *labels) {
    int64_t id;
    std::optional<StringRef> name = value.getAsString();
    if (StringRef(key).getAsInteger(10, id) || !name)
      return llvm::createStringError(
          path + ": id2label must map class ids to names (\"0\": \"cat\")");
    names[id] = name->str();
  }
  return names;
}
