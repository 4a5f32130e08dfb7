//===- ImageInput.h - pictures prepared as a model reads them ---*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// An image model (Vision Mamba) reads a normalised 3×H×W float tensor, not a
// picture. This turns a PNG or JPEG file into that tensor the way the
// model's own preprocessing does (torchvision's Resize + CenterCrop +
// Normalize, which timm and Hugging Face image processors also follow):
//
//   1. resize so the shorter side is floor(size / crop_pct), the longer one in
//      proportion, with antialiased bilinear filtering (PIL's and
//      torch.nn.functional.interpolate(..., antialias=True)'s filter);
//   2. crop the centre size × size;
//   3. scale to [0, 1] and normalise each channel c: (x − mean[c]) / std[c].
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_IMAGEINPUT_H
#define GLINT_EXPLAIN_IMAGEINPUT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mlir::glint::explain {

/// An 8-bit RGB picture, rows top first.
struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

/// The picture formats glint reads, as their first bytes tell them apart.
enum class ImageFormat { Unknown, Png, Jpeg };

/// The format whose signature \p bytes start with (PNG: 89 'PNG' 0D 0A 1A 0A;
/// JPEG: FF D8 FF), whatever the file is called.
ImageFormat sniffImageFormat(llvm::StringRef bytes);

/// Reads a PNG or a JPEG file, told apart by their first bytes, as 8-bit
/// RGB. Errors name the path.
llvm::Expected<RgbImage> readImageFile(llvm::StringRef path);

/// Whether `path` names a picture: a PNG or JPEG by its first bytes, or by
/// its extension (so that a broken one is reported as a picture, not as a
/// broken .npy).
bool isPictureFile(llvm::StringRef path);

/// The class names of config.json's id2label ({"0": "cat", ...}) in
/// `modelDir`; empty if there is no config or no id2label, an error if
/// id2label is not a map of ids to names.
llvm::Expected<std::map<int64_t, std::string>>
readClassNames(llvm::StringRef modelDir);

/// Reads a PNG file (any bit depth, grey, palette or with alpha, which is
/// composited on black) as 8-bit RGB. Errors name the path.
llvm::Expected<RgbImage> readPngFile(llvm::StringRef path);

/// Decodes PNG bytes as readPngFile does; errors name \p name.
llvm::Expected<RgbImage> decodePng(llvm::StringRef bytes, llvm::StringRef name);

/// Decodes JPEG bytes (baseline or progressive; colour, or greyscale, which
/// becomes three equal channels) as 8-bit RGB with libjpeg's defaults (the
/// accurate integer IDCT and smooth chroma upsampling, as PIL decodes). A
/// CMYK or YCCK JPEG is refused, and so is data libjpeg finds corrupt or
/// truncated, even where it would only warn and fill in grey: an
/// explanation of made-up pixels would mislead. Errors name \p name.
llvm::Expected<RgbImage> decodeJpeg(llvm::StringRef bytes,
                                    llvm::StringRef name);

struct ImagePreprocessing {
  /// The model's input height and width.
  int64_t size = 224;
  /// The fraction of the resized image kept by the centre crop.
  double cropFraction = 1.0;
  /// ImageNet's statistics, the default of timm and of Vision Mamba.
  std::array<double, 3> mean = {0.485, 0.456, 0.406};
  std::array<double, 3> std = {0.229, 0.224, 0.225};
};

/// The preprocessing of the model in \p modelDir for \p size × \p size
/// inputs: `image_mean`, `image_std` and `crop_pct` (and `do_normalize`
/// false: none) from preprocessor_config.json (Hugging Face) or else
/// config.json, ImageNet's values and no crop where neither has them. It is an
/// error if a file is not JSON or a key has the wrong shape, or a std is not
/// positive.
llvm::Expected<ImagePreprocessing>
readImagePreprocessing(llvm::StringRef modelDir, int64_t size);

/// \p image resized, cropped and normalised as described above:
/// channel-major 3 × size × size.
std::vector<float> preprocessImage(const RgbImage &image,
                                   const ImagePreprocessing &preprocessing);

/// Resizes one channel (row-major \p inH × \p inW) to \p outH × \p outW with
/// the antialiased bilinear filter.
std::vector<double> resizeBilinearAntialiased(llvm::ArrayRef<double> channel,
                                              int64_t inH, int64_t inW,
                                              int64_t outH, int64_t outW);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_IMAGEINPUT_H
