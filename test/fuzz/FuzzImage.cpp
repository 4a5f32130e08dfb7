//===- FuzzImage.cpp - fuzzes the PNG and JPEG readers -------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Reads the input as a picture, as glint-explain --input does (PNG or JPEG,
// told by the first bytes), and preprocesses an accepted one for a small
// model input, whose resize reads every pixel.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "explain/ImageInput.h"

#include <cstdlib>

using namespace mlir::glint::explain;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path =
      glint_fuzz::writeScratch("input.img", glint_fuzz::asText(data, size));
  auto image = readImageFile(path);
  if (!image) {
    llvm::consumeError(image.takeError());
    return 0;
  }
  if (image->width <= 0 || image->height <= 0 ||
      image->rgb.size() != size_t(image->width * image->height * 3)) {
    llvm::errs() << "an accepted picture has " << image->rgb.size()
                 << " bytes for " << image->width << "x" << image->height
                 << "\n";
    std::abort();
  }
  ImagePreprocessing preprocessing;
  preprocessing.size = 4;
  preprocessImage(*image, preprocessing);
  return 0;
}
