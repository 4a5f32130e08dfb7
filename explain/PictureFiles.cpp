//===- PictureFiles.cpp - telling a picture from other input files --------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Needs neither libpng nor libjpeg, so that the GPU check's runner (which
// links neither, scripts/gpu-check/prepare.sh) tells pictures from .npy
// inputs exactly as glint-run and glint-explain do.
//
//===----------------------------------------------------------------------===//

#include "explain/ImageInput.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir::glint::explain;
using llvm::StringRef;

ImageFormat mlir::glint::explain::sniffImageFormat(StringRef bytes) {
  if (bytes.starts_with(StringRef("\x89PNG\r\n\x1a\n", 8)))
    return ImageFormat::Png;
  // SOI, then the first marker's FF.
  if (bytes.starts_with("\xFF\xD8\xFF"))
    return ImageFormat::Jpeg;
  return ImageFormat::Unknown;
}

bool mlir::glint::explain::isPictureFile(StringRef path) {
  StringRef extension = llvm::sys::path::extension(path);
  if (extension.equals_insensitive(".png") ||
      extension.equals_insensitive(".jpg") ||
      extension.equals_insensitive(".jpeg"))
    return true;
  auto head = llvm::MemoryBuffer::getFileSlice(path, /*MapSize=*/8,
                                               /*Offset=*/0);
  return head && sniffImageFormat((*head)->getBuffer()) != ImageFormat::Unknown;
}
