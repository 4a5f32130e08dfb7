//===- Npy.h - NumPy .npy array files ---------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Reads and writes NumPy `.npy` files, the exchange format between glint's
// tools and Python: model inputs (token ids, embeddings), outputs, and
// reference results. Written files use format version 1.0, little-endian,
// C order; files numpy writes with version 2.0 or 3.0 (only for huge
// headers) are read too.
//
// Supported dtypes: `<f4` (float), `<f8` (double), `<i8` (int64) and `<i4`
// (int32).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_NPY_H
#define GLINT_RUNTIME_IO_NPY_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::glint::runtime {

/// Element types of the .npy files glint reads and writes.
enum class NpyDType { F32, F64, I32, I64 };

/// The numpy descr of \p dtype, e.g. "<f4".
llvm::StringRef npyDescr(NpyDType dtype);

/// An array read from a .npy file, its elements converted to \p T.
template <typename T>
struct NpyArray {
  /// Dimensions, outermost first; empty for a 0-d array.
  std::vector<int64_t> shape;
  /// The elements in C order; product(shape) of them.
  std::vector<T> data;
  /// The element type the file holds, before conversion.
  NpyDType fileDType;
};

/// Writes \p data with \p shape to \p path. The file appears only once it is
/// complete: it is written to a temporary file beside \p path and renamed
/// over it, so a failed write leaves \p path as it was. It is an error if
/// product(shape) differs from data.size().
llvm::Error writeNpy(llvm::StringRef path, llvm::ArrayRef<int64_t> shape,
                     llvm::ArrayRef<float> data);
llvm::Error writeNpy(llvm::StringRef path, llvm::ArrayRef<int64_t> shape,
                     llvm::ArrayRef<double> data);
llvm::Error writeNpy(llvm::StringRef path, llvm::ArrayRef<int64_t> shape,
                     llvm::ArrayRef<int64_t> data);
llvm::Error writeNpy(llvm::StringRef path, llvm::ArrayRef<int64_t> shape,
                     llvm::ArrayRef<int32_t> data);

/// Reads a `<f4` or `<f8` file as float (`<f8` is rounded to nearest).
llvm::Expected<NpyArray<float>> readNpyF32(llvm::StringRef path);
/// Reads a `<f4` or `<f8` file as double (exact).
llvm::Expected<NpyArray<double>> readNpyF64(llvm::StringRef path);
/// Reads a `<i8` or `<i4` file as int64 (exact).
llvm::Expected<NpyArray<int64_t>> readNpyI64(llvm::StringRef path);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_NPY_H
