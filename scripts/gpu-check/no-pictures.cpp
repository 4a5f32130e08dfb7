//===- no-pictures.cpp - the GPU runner's picture-input stand-ins ---------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The runner that prepare.sh builds for the GPU machine links no libpng or
// libjpeg (that machine may have neither): a PNG or JPEG given as --input
// is refused with a message; pixel values as .npy work as in glint-run.
// Pictures are told from other inputs by explain/PictureFiles.cpp, which
// prepare.sh compiles too.
//
//===----------------------------------------------------------------------===//

#include "explain/ImageInput.h"

using namespace mlir::glint::explain;

llvm::Expected<RgbImage>
mlir::glint::explain::readImageFile(llvm::StringRef path) {
  return llvm::createStringError(
      path + ": pictures are not in the GPU check's runner (it links no "
             "libpng or libjpeg); give the pixel values as .npy");
}

llvm::Expected<std::map<int64_t, std::string>>
mlir::glint::explain::readClassNames(llvm::StringRef) {
  return std::map<int64_t, std::string>();
}

llvm::Expected<ImagePreprocessing>
mlir::glint::explain::readImagePreprocessing(llvm::StringRef modelDir,
                                             int64_t) {
  return llvm::createStringError(
      modelDir + ": pictures are not in the GPU check's runner");
}

std::vector<float>
mlir::glint::explain::preprocessImage(const RgbImage &,
                                      const ImagePreprocessing &) {
  return {};
}
