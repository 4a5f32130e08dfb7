//===- Safetensors.h - memory-mapped safetensors reader ---------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Reads model weights from Hugging Face safetensors checkpoints: one
// `.safetensors` file, a directory holding `model.safetensors`, or a sharded
// checkpoint described by `model.safetensors.index.json`. Files are mapped,
// every header is validated when the checkpoint is opened, and tensors are
// converted to float/double (or int64 for token ids) only when loaded, or
// read in place (TensorInfo::bytes, kept mapped by TensorInfo::mapping).
//
// The file format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header
// `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}`,
// then the data section; offsets are relative to the start of the data
// section and every tensor is stored little-endian in C order.
//
// This library depends on LLVM's Support library only, so tools that never
// build IR can use it.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_SAFETENSORS_H
#define GLINT_RUNTIME_IO_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::glint::runtime {

/// Every element type the safetensors format defines. A checkpoint holding
/// any of them opens (its sizes are validated); only F32, F16, BF16 and F64
/// load as floating point and only I64 and I32 load as integers.
enum class DType {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

/// The dtype's name as it is spelled in a safetensors header ("BF16").
llvm::StringRef dtypeName(DType dtype);

/// The dtype a header spelling names, or std::nullopt if it names none.
std::optional<DType> parseDType(llvm::StringRef name);

/// Bits per element; F4 and the F6 types are narrower than a byte.
unsigned dtypeBits(DType dtype);

/// One validated tensor of a checkpoint.
struct TensorInfo {
  std::string name;
  DType dtype;
  /// Dimensions, outermost first; empty for a 0-d tensor.
  std::vector<int64_t> shape;
  /// Path of the file that holds the tensor (the shard, when sharded).
  std::string file;
  /// The raw little-endian bytes inside the mapped file; valid while the
  /// Checkpoint or a copy of `mapping` lives. Exactly
  /// numElements() * dtypeBits(dtype) / 8 bytes.
  llvm::ArrayRef<uint8_t> bytes;
  /// The file that holds `bytes`, mapped (small files are read into memory
  /// instead). Shared by every tensor of the file: whoever reads `bytes` in
  /// place after the Checkpoint is gone keeps a copy of it.
  std::shared_ptr<const llvm::MemoryBuffer> mapping;

  /// Product of the shape (1 for a 0-d tensor).
  int64_t numElements() const;

  /// Lets this process's resident memory drop the file pages that hold
  /// only this tensor's bytes (pages shared with a neighbour stay), for a
  /// caller that has converted the tensor and will not read `bytes` again.
  /// Reading them later is still correct: the pages come back from the
  /// file. Does nothing for a file read into memory rather than mapped, or
  /// on systems without madvise.
  void releasePages() const;
};

/// A read-only view of every tensor of a checkpoint, by name. Nothing in it
/// changes after open(), so it may be read from several threads at once.
class Checkpoint {
public:
  /// Opens \p path: a `.safetensors` file, a `.json` shard index, or a
  /// directory holding `model.safetensors` or, failing that,
  /// `model.safetensors.index.json`. Every header and the index are
  /// validated here, so a returned Checkpoint never reads out of bounds.
  static llvm::Expected<std::unique_ptr<Checkpoint>> open(llvm::StringRef path);

  /// Every tensor name, sorted.
  std::vector<std::string> names() const;

  /// Number of tensors.
  size_t size() const { return tensors.size(); }

  /// The tensor named \p name, or null.
  const TensorInfo *find(llvm::StringRef name) const;

  /// The string pairs of the header's `__metadata__`; for a sharded
  /// checkpoint, those of every shard (the first shard to set a key wins).
  const std::map<std::string, std::string> &metadata() const {
    return metadataMap;
  }

  /// Loads tensor \p name as float, converting F16, BF16 and F64 (F64 is
  /// rounded to nearest). With a non-empty \p expectedShape, a different
  /// shape is an error; an empty one accepts any shape.
  llvm::Expected<std::vector<float>>
  loadF32(llvm::StringRef name, llvm::ArrayRef<int64_t> expectedShape = {}) const;

  /// Loads tensor \p name as double; every supported float dtype converts
  /// exactly. \p expectedShape as for loadF32.
  llvm::Expected<std::vector<double>>
  loadF64(llvm::StringRef name, llvm::ArrayRef<int64_t> expectedShape = {}) const;

  /// Loads an I64 or I32 tensor \p name (token ids, positions) as int64.
  /// \p expectedShape as for loadF32.
  llvm::Expected<std::vector<int64_t>>
  loadI64(llvm::StringRef name, llvm::ArrayRef<int64_t> expectedShape = {}) const;

  /// Finds \p name and checks its shape (any shape when \p expectedShape
  /// is empty), or explains what is wrong: a missing name suggests the
  /// closest one.
  llvm::Expected<const TensorInfo *>
  lookup(llvm::StringRef name, llvm::ArrayRef<int64_t> expectedShape) const;

private:
  Checkpoint() = default;

  /// Every tensor by name; each keeps its file mapped (TensorInfo::mapping).
  std::map<std::string, TensorInfo, std::less<>> tensors;
  std::map<std::string, std::string> metadataMap;
  /// What open() was given, for errors that concern no single file.
  std::string path;
};

/// One float32 tensor to write: its name, shape (outermost first) and
/// C-order elements (as many as the shape has).
struct F32Tensor {
  std::string name;
  std::vector<int64_t> shape;
  llvm::ArrayRef<float> data;
};

/// Writes \p tensors as one F32 safetensors file at \p path, in the order
/// given, with \p metadata as its `__metadata__`. The file appears
/// complete or not at all (written beside \p path, then renamed). A
/// duplicate name or a shape that disagrees with its data is an error.
llvm::Error
writeSafetensors(llvm::StringRef path, llvm::ArrayRef<F32Tensor> tensors,
                 const std::map<std::string, std::string> &metadata = {});

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_SAFETENSORS_H
