//===- Safetensors.cpp - memory-mapped safetensors reader -----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Checkpoints come from the network and from other people's tools, so every
// number in a header is treated as hostile: sizes are computed with checked
// arithmetic and compared against the mapped file before any byte of tensor
// data is touched. Loading then needs no further bounds checks.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Safetensors.h"
#include "runtime/io/AtomicFile.h"
#include "runtime/io/Float16.h"
#include "runtime/io/InputLimits.h"
#include "runtime/io/ModelInfo.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

#if defined(__unix__)
#include <sys/mman.h>
#endif

using namespace mlir::glint::runtime;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

namespace {

/// The safetensors reference implementation rejects larger headers; a real
/// header is a few hundred bytes per tensor.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeEntry {
  DType dtype;
  const char *name;
  unsigned bits;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 8},
    {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
};

const DTypeEntry &entryOf(DType dtype) {
  for (const DTypeEntry &entry : kDTypes)
    if (entry.dtype == dtype)
      return entry;
  llvm_unreachable("DType missing from kDTypes");
}

Error makeError(const Twine &message) {
  return llvm::createStringError(
      std::make_error_code(std::errc::invalid_argument), message);
}

std::string formatJSON(const llvm::json::Value &value) {
  std::string result;
  llvm::raw_string_ostream os(result);
  os << value;
  return result;
}

/// Converts every element of a float tensor to \p T. The caller has checked
/// the dtype and that info.bytes holds exactly numElements() elements.
/// Reads go through the endian helpers because the data section need not be
/// aligned and is little-endian whatever the host.
template <typename T>
std::vector<T> convertFloats(const TensorInfo &info) {
  namespace endian = llvm::support::endian;
  const uint8_t *data = info.bytes.data();
  size_t count = size_t(info.numElements());
  std::vector<T> out(count);
  switch (info.dtype) {
  case DType::F32:
    for (size_t i = 0; i < count; ++i)
      out[i] = T(llvm::bit_cast<float>(endian::read32le(data + 4 * i)));
    break;
  case DType::F64:
    for (size_t i = 0; i < count; ++i)
      out[i] = T(llvm::bit_cast<double>(endian::read64le(data + 8 * i)));
    break;
  case DType::F16:
    for (size_t i = 0; i < count; ++i)
      out[i] = T(halfToFloat(endian::read16le(data + 2 * i)));
    break;
  case DType::BF16:
    for (size_t i = 0; i < count; ++i)
      out[i] = T(bf16ToFloat(endian::read16le(data + 2 * i)));
    break;
  default:
    llvm_unreachable("convertFloats called on a non-float dtype");
  }
  return out;
}

/// One parsed file: its tensors and metadata, pointing into \p buffer.
struct ParsedFile {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};

/// Validates one tensor entry of a header and fills \p info.
Error parseTensorEntry(StringRef file, StringRef name,
                       const llvm::json::Value &value,
                       llvm::ArrayRef<uint8_t> dataSection, TensorInfo &info) {
  auto fail = [&](const Twine &problem) {
    return makeError(file + ": tensor '" + name + "': " + problem);
  };
  const llvm::json::Object *entry = value.getAsObject();
  if (!entry)
    return fail("entry is not a JSON object");

  const llvm::json::Value *dtypeValue = entry->get("dtype");
  if (!dtypeValue)
    return fail("missing 'dtype'");
  std::optional<StringRef> dtypeString = dtypeValue->getAsString();
  if (!dtypeString)
    return fail("'dtype' is not a string");
  std::optional<DType> dtype = parseDType(*dtypeString);
  if (!dtype)
    return fail("unknown dtype '" + *dtypeString + "'");

  const llvm::json::Value *shapeValue = entry->get("shape");
  if (!shapeValue)
    return fail("missing 'shape'");
  const llvm::json::Array *shapeArray = shapeValue->getAsArray();
  if (!shapeArray)
    return fail("'shape' is not an array");
  std::vector<int64_t> shape;
  for (auto [index, dim] : llvm::enumerate(*shapeArray)) {
    std::optional<int64_t> extent = dim.getAsInteger();
    if (!extent || *extent < 0)
      return fail("'shape' element " + Twine(index) + " is " +
                  formatJSON(dim) + ", not a non-negative integer");
    shape.push_back(*extent);
  }

  const llvm::json::Value *offsetsValue = entry->get("data_offsets");
  if (!offsetsValue)
    return fail("missing 'data_offsets'");
  const llvm::json::Array *offsetsArray = offsetsValue->getAsArray();
  std::optional<uint64_t> begin, end;
  if (offsetsArray && offsetsArray->size() == 2) {
    begin = (*offsetsArray)[0].getAsUINT64();
    end = (*offsetsArray)[1].getAsUINT64();
  }
  if (!begin || !end)
    return fail("'data_offsets' is " + formatJSON(*offsetsValue) +
                ", not [begin, end] with non-negative integers");
  if (*begin > *end)
    return fail(llvm::formatv("data_offsets [{0}, {1}] begin after end",
                              *begin, *end));
  if (*end > dataSection.size())
    return fail(llvm::formatv("data_offsets [{0}, {1}] run past the end of "
                              "the {2}-byte data section",
                              *begin, *end, dataSection.size()));

  // A zero extent makes the tensor empty however large the other extents
  // are, so check it before multiplying them.
  uint64_t numElements = 1;
  if (llvm::is_contained(shape, 0)) {
    numElements = 0;
  } else {
    for (int64_t extent : shape) {
      std::optional<uint64_t> product =
          llvm::checkedMulUnsigned(numElements, uint64_t(extent));
      if (!product)
        return fail("shape " + shapeString(shape) +
                    " has more elements than a 64-bit count holds");
      numElements = *product;
    }
  }
  StringRef dtypeText = dtypeName(*dtype);
  std::optional<uint64_t> numBits =
      llvm::checkedMulUnsigned(numElements, uint64_t(dtypeBits(*dtype)));
  if (!numBits)
    return fail(dtypeText + " " + shapeString(shape) +
                " needs more bytes than a 64-bit size holds");
  if (*numBits % 8 != 0)
    return fail(dtypeText + " " + shapeString(shape) +
                " does not fill a whole number of bytes");
  uint64_t needed = *numBits / 8;
  uint64_t held = *end - *begin;
  if (held != needed)
    return fail(llvm::formatv("data_offsets [{0}, {1}] hold {2} bytes but {3} "
                              "{4} needs {5}",
                              *begin, *end, held, dtypeText, shapeString(shape),
                              needed));

  info.name = name.str();
  info.dtype = *dtype;
  info.shape = std::move(shape);
  info.file = file.str();
  info.bytes = dataSection.slice(*begin, held);
  return Error::success();
}

/// Validates the header and data layout of one mapped safetensors file.
/// Calls `key` with the raw text (escapes kept) of every key of the
/// top-level object of `json`, which json::parse has accepted.
static void forEachTopLevelKey(StringRef json,
                               llvm::function_ref<void(StringRef)> key) {
  int depth = 0;
  bool expectKey = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (c == '"') {
      size_t end = i + 1;
      while (end < json.size() && json[end] != '"')
        end += json[end] == '\\' ? 2 : 1;
      if (depth == 1 && expectKey)
        key(json.slice(i + 1, end));
      expectKey = false;
      i = end;
    } else if (c == '{' || c == '[') {
      ++depth;
      expectKey = c == '{' && depth == 1;
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expectKey = true;
    }
  }
}

/// A key the top-level object of `json` has twice, as written.
static std::optional<std::string> repeatedTopLevelKey(StringRef json) {
  llvm::StringSet<> seen;
  std::optional<std::string> repeated;
  forEachTopLevelKey(json, [&](StringRef key) {
    if (!seen.insert(key).second && !repeated)
      repeated = key.str();
  });
  return repeated;
}

static size_t countTopLevelKeys(StringRef json) {
  size_t count = 0;
  forEachTopLevelKey(json, [&](StringRef) { ++count; });
  return count;
}

Expected<ParsedFile> parseFile(StringRef file, const llvm::MemoryBuffer &buf) {
  auto fail = [&](const Twine &problem) {
    return makeError(file + ": " + problem);
  };
  llvm::ArrayRef<uint8_t> bytes(
      reinterpret_cast<const uint8_t *>(buf.getBufferStart()),
      buf.getBufferSize());
  if (bytes.size() < 8)
    return fail("file is " + Twine(bytes.size()) +
                " bytes, too short for the 8-byte header length");
  uint64_t headerSize = llvm::support::endian::read64le(bytes.data());
  if (headerSize > kMaxHeaderBytes)
    return fail("header length " + Twine(headerSize) + " exceeds the limit of " +
                Twine(kMaxHeaderBytes) + " bytes");
  if (headerSize > bytes.size() - 8)
    return fail("header length " + Twine(headerSize) +
                " runs past the end of the file (" + Twine(bytes.size()) +
                " bytes)");
  StringRef headerText(reinterpret_cast<const char *>(bytes.data() + 8),
                       headerSize);
  llvm::ArrayRef<uint8_t> dataSection = bytes.drop_front(8 + headerSize);

  Expected<llvm::json::Value> header = parseJSON(headerText);
  if (!header)
    return fail("header is not valid JSON: " +
                llvm::toString(header.takeError()));
  const llvm::json::Object *root = header->getAsObject();
  if (!root)
    return fail("header is not a JSON object");

  // json::parse keeps one entry of a name given twice: which tensor is
  // meant would be a guess, so a repeated name is an error.
  if (std::optional<std::string> repeated = repeatedTopLevelKey(headerText))
    return fail("header names '" + *repeated + "' more than once");
  auto countedKeys = countTopLevelKeys(headerText);
  if (countedKeys != root->size())
    return fail("header repeats a name (in another spelling of the same "
                "characters)");

  // Validate in name order so that, of several problems, the same one is
  // always reported (json::Object iterates in hash order).
  std::vector<StringRef> keys;
  for (const auto &member : *root)
    keys.push_back(member.first);
  llvm::sort(keys);

  ParsedFile parsed;
  for (StringRef key : keys) {
    const llvm::json::Value &value = *root->get(key);
    if (key == "__metadata__") {
      const llvm::json::Object *metadata = value.getAsObject();
      if (!metadata)
        return fail("'__metadata__' is not an object of strings");
      for (const auto &[metaKey, metaValue] : *metadata) {
        std::optional<StringRef> text = metaValue.getAsString();
        if (!text)
          return fail("'__metadata__' entry '" + StringRef(metaKey) +
                      "' is " + formatJSON(metaValue) + ", not a string");
        parsed.metadata[metaKey.str()] = text->str();
      }
      continue;
    }
    TensorInfo info;
    if (Error err = parseTensorEntry(file, key, value, dataSection, info))
      return std::move(err);
    parsed.tensors.emplace(key.str(), std::move(info));
  }

  // Overlapping tensors would alias each other's data. Empty tensors occupy
  // no bytes and overlap nothing. Holes are allowed; they cost nothing.
  std::vector<const TensorInfo *> byOffset;
  for (const auto &[name, info] : parsed.tensors)
    if (!info.bytes.empty())
      byOffset.push_back(&info);
  llvm::sort(byOffset, [](const TensorInfo *a, const TensorInfo *b) {
    return a->bytes.data() < b->bytes.data();
  });
  for (size_t i = 1; i < byOffset.size(); ++i) {
    const TensorInfo *prev = byOffset[i - 1], *next = byOffset[i];
    if (next->bytes.data() < prev->bytes.end()) {
      auto offsetOf = [&](const uint8_t *p) {
        return uint64_t(p - dataSection.data());
      };
      return fail(llvm::formatv(
          "tensors '{0}' [{1}, {2}] and '{3}' [{4}, {5}] overlap", prev->name,
          offsetOf(prev->bytes.data()), offsetOf(prev->bytes.end()),
          next->name, offsetOf(next->bytes.data()),
          offsetOf(next->bytes.end())));
    }
  }
  return std::move(parsed);
}

/// Maps \p file without copying it.
Expected<std::unique_ptr<llvm::MemoryBuffer>> mapFile(StringRef file) {
  // A FIFO or a device would block or never end (/dev/zero): weights come
  // from regular files only, checked before anything is opened.
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(file, status))
    return makeError(file + ": " + ec.message());
  if (status.type() != llvm::sys::fs::file_type::regular_file)
    return makeError(file + ": not a regular file (weights are read from "
                            "regular files only)");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(file, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return makeError(file + ": " + buffer.getError().message());
  return std::move(*buffer);
}

/// Rejects shard names that would reach outside the checkpoint directory.
bool isPlainRelativePath(StringRef shard) {
  if (shard.empty() || llvm::sys::path::is_absolute(shard))
    return false;
  return llvm::none_of(
      llvm::make_range(llvm::sys::path::begin(shard),
                       llvm::sys::path::end(shard)),
      [](StringRef component) { return component == ".."; });
}

} // namespace

StringRef mlir::glint::runtime::dtypeName(DType dtype) {
  return entryOf(dtype).name;
}

std::optional<DType> mlir::glint::runtime::parseDType(StringRef name) {
  for (const DTypeEntry &entry : kDTypes)
    if (name == entry.name)
      return entry.dtype;
  return std::nullopt;
}

unsigned mlir::glint::runtime::dtypeBits(DType dtype) { return entryOf(dtype).bits; }

int64_t TensorInfo::numElements() const {
  // Validated at open: the product fits, because the bytes are in the file.
  int64_t count = 1;
  for (int64_t extent : shape)
    count *= extent;
  return count;
}

void TensorInfo::releasePages() const {
#if defined(__unix__) && defined(MADV_DONTNEED)
  if (!mapping || bytes.empty() ||
      mapping->getBufferKind() != llvm::MemoryBuffer::MemoryBuffer_MMap)
    return;
  // Only whole pages inside the tensor: a page it shares with a neighbour
  // may be read in place by a compiled model. The mapping is read-only, so
  // MADV_DONTNEED drops clean file pages (they stay in the page cache) and
  // never discards data; on heap memory it would zero it, hence the check
  // above.
  uint64_t page = llvm::sys::Process::getPageSizeEstimate();
  uint64_t begin =
      llvm::alignTo(reinterpret_cast<uintptr_t>(bytes.begin()), page);
  uint64_t end =
      llvm::alignDown(reinterpret_cast<uintptr_t>(bytes.end()), page);
  if (begin < end)
    madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
#endif
}

/// `text` inside a single-quoted Python string inside a double-quoted shell
/// word.
static std::string quoteForPythonInShell(StringRef text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\\\\\"; // Python's \\, each doubled for the shell
    else if (c == '\'')
      out += "\\'"; // Python's \' (a backslash before ' stays in the shell)
    else if (c == '"' || c == '$' || c == '`')
      out += std::string("\\") + c;
    else
      out += c;
  }
  return out;
}

/// The error for PyTorch pickle weights (`pytorch_model.bin`, or its shards
/// through `pytorch_model.bin.index.json`) where safetensors are expected:
/// glint never unpickles, so it names the one command that converts them
/// into `<dir>/model.safetensors`. Tensors that share storage (tied
/// embeddings) are written once, under their first name, as
/// save_pretrained does; the rest are cloned so that save_file accepts them.
static Error pickleWeightsError(StringRef directory, bool sharded) {
  std::string d = quoteForPythonInShell(directory);
  std::string load =
      sharded ? "sd={}; [sd.update(torch.load(d+'/'+f, map_location='cpu', "
                "weights_only=True)) for f in sorted(set(json.load(open(d+'/"
                "pytorch_model.bin.index.json'))['weight_map'].values()))]; "
              : "sd=torch.load(d+'/pytorch_model.bin', map_location='cpu', "
                "weights_only=True); ";
  std::string command =
      std::string("python -c \"") +
      (sharded ? "import json, torch" : "import torch") +
      "; from safetensors.torch import save_file; d='" + d + "'; " + load +
      "s=set(); save_file({k: v.contiguous().clone() for k, v in sd.items() "
      "if not ((p:=(v.untyped_storage().data_ptr(), v.storage_offset(), "
      "tuple(v.shape))) in s or s.add(p))}, d+'/model.safetensors', "
      "metadata={'format': 'pt'})\"";
  return makeError(directory + ": holds PyTorch pickle weights (" +
                   (sharded ? "pytorch_model.bin.index.json and its shards"
                            : "pytorch_model.bin") +
                   ") but no model.safetensors; glint reads safetensors only. "
                   "Convert once with: " +
                   command);
}

Expected<std::unique_ptr<Checkpoint>> Checkpoint::open(StringRef path) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->path = path.str();

  llvm::SmallString<256> file(path);
  if (llvm::sys::fs::is_directory(path)) {
    llvm::sys::path::append(file, "model.safetensors");
    if (!llvm::sys::fs::exists(file)) {
      file = path;
      llvm::sys::path::append(file, "model.safetensors.index.json");
      if (!llvm::sys::fs::exists(file)) {
        for (bool sharded : {false, true}) {
          llvm::SmallString<256> pickle(path);
          llvm::sys::path::append(pickle, sharded
                                              ? "pytorch_model.bin.index.json"
                                              : "pytorch_model.bin");
          if (llvm::sys::fs::exists(pickle))
            return pickleWeightsError(path, sharded);
        }
        return makeError(path + ": directory holds neither model.safetensors "
                                "nor model.safetensors.index.json");
      }
    }
  }

  if (!llvm::sys::path::extension(file).equals_insensitive(".json")) {
    Expected<std::unique_ptr<llvm::MemoryBuffer>> buffer = mapFile(file);
    if (!buffer)
      return buffer.takeError();
    Expected<ParsedFile> parsed = parseFile(file, **buffer);
    if (!parsed)
      return parsed.takeError();
    std::shared_ptr<const llvm::MemoryBuffer> mapping = std::move(*buffer);
    for (auto &[name, info] : parsed->tensors) {
      info.mapping = mapping;
      checkpoint->tensors.emplace(name, std::move(info));
    }
    checkpoint->metadataMap = std::move(parsed->metadata);
    return std::move(checkpoint);
  }

  // A sharded checkpoint: the index maps every tensor to the shard file,
  // relative to the index's directory, that holds it.
  StringRef indexFile = file;
  auto fail = [&](const Twine &problem) {
    return makeError(indexFile + ": " + problem);
  };
  Expected<std::unique_ptr<llvm::MemoryBuffer>> indexBuffer = mapFile(file);
  if (!indexBuffer)
    return indexBuffer.takeError();
  Expected<llvm::json::Value> index = parseJSON((*indexBuffer)->getBuffer());
  if (!index)
    return fail("index is not valid JSON: " +
                llvm::toString(index.takeError()));
  const llvm::json::Object *root = index->getAsObject();
  if (!root)
    return fail("index is not a JSON object");
  // `metadata` (e.g. total_size) is informative only, but if present it must
  // be what the format says.
  if (const llvm::json::Value *metadata = root->get("metadata"))
    if (!metadata->getAsObject())
      return fail("'metadata' is not an object");
  const llvm::json::Value *weightMapValue = root->get("weight_map");
  if (!weightMapValue)
    return fail("missing 'weight_map'");
  const llvm::json::Object *weightMap = weightMapValue->getAsObject();
  if (!weightMap)
    return fail("'weight_map' is not an object");

  // tensor -> shard, sorted so errors are reproducible.
  std::map<std::string, std::string> shardOf;
  for (const auto &[tensor, shardValue] : *weightMap) {
    std::optional<StringRef> shard = shardValue.getAsString();
    if (!shard)
      return fail("'weight_map' entry '" + StringRef(tensor) + "' is " +
                  formatJSON(shardValue) + ", not a file name");
    if (!isPlainRelativePath(*shard))
      return fail("'weight_map' entry '" + StringRef(tensor) +
                  "' names shard '" + *shard +
                  "', which is not a relative path inside the checkpoint");
    shardOf[tensor.str()] = shard->str();
  }
  std::map<std::string, std::string> firstTensorOf;
  for (const auto &[tensor, shard] : shardOf)
    firstTensorOf.try_emplace(shard, tensor);

  StringRef directory = llvm::sys::path::parent_path(indexFile);
  for (const auto &[shard, firstTensor] : firstTensorOf) {
    llvm::SmallString<256> shardPath(directory);
    llvm::sys::path::append(shardPath, shard);
    if (!llvm::sys::fs::exists(shardPath))
      return fail("shard '" + shard + "' (holding '" + firstTensor +
                  "') does not exist");
    Expected<std::unique_ptr<llvm::MemoryBuffer>> buffer = mapFile(shardPath);
    if (!buffer)
      return buffer.takeError();
    Expected<ParsedFile> parsed = parseFile(shardPath, **buffer);
    if (!parsed)
      return parsed.takeError();
    std::shared_ptr<const llvm::MemoryBuffer> mapping = std::move(*buffer);
    // The index and the shards must agree exactly: a tensor the index does
    // not place in this shard is either stale or claimed twice, and which
    // copy is meant cannot be known.
    for (auto &[tensor, info] : parsed->tensors) {
      auto it = shardOf.find(tensor);
      if (it == shardOf.end())
        return fail("shard '" + shard + "' holds tensor '" + tensor +
                    "', which the index does not list");
      if (it->second != shard)
        return fail("tensor '" + tensor + "' is claimed twice: the index "
                    "places it in shard '" + it->second + "' but shard '" +
                    shard + "' holds it too");
      info.mapping = mapping;
      checkpoint->tensors.emplace(tensor, std::move(info));
    }
    for (auto &[key, value] : parsed->metadata)
      checkpoint->metadataMap.try_emplace(key, std::move(value));
  }
  for (const auto &[tensor, shard] : shardOf)
    if (!checkpoint->tensors.count(tensor))
      return fail("tensor '" + tensor + "' is mapped to shard '" + shard +
                  "', which does not hold it");
  return std::move(checkpoint);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> result;
  result.reserve(tensors.size());
  for (const auto &[name, info] : tensors)
    result.push_back(name);
  return result;
}

const TensorInfo *Checkpoint::find(StringRef name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

Expected<const TensorInfo *>
Checkpoint::lookup(StringRef name, llvm::ArrayRef<int64_t> expectedShape) const {
  if (const TensorInfo *info = find(name)) {
    if (!expectedShape.empty() &&
        expectedShape != llvm::ArrayRef<int64_t>(info->shape))
      return makeError(info->file + ": tensor '" + name + "' has shape " +
                       shapeString(info->shape) + " but " +
                       shapeString(expectedShape) + " was expected");
    return info;
  }
  // Suggest the closest name: a typo or a renamed layer is the usual cause.
  // Quadratic in the name length, linear in the tensor count; only paid on
  // the error path.
  std::string hint;
  unsigned bestDistance = std::max<unsigned>(3, name.size() / 4) + 1;
  for (const auto &[candidate, info] : tensors) {
    unsigned distance = name.edit_distance(candidate, /*AllowReplacements=*/true,
                                           /*MaxEditDistance=*/bestDistance);
    if (distance < bestDistance) {
      bestDistance = distance;
      hint = candidate;
    }
  }
  std::string message = path + ": no tensor named '" + name.str() + "'";
  if (!hint.empty())
    message += " (did you mean '" + hint + "'?)";
  return makeError(message);
}

/// loadF32 and loadF64: any float dtype, converted to T.
template <typename T>
static Expected<std::vector<T>>
loadFloats(Expected<const TensorInfo *> info, StringRef name,
           StringRef loader) {
  if (!info)
    return info.takeError();
  switch ((*info)->dtype) {
  case DType::F32:
  case DType::F64:
  case DType::F16:
  case DType::BF16:
    return convertFloats<T>(**info);
  default:
    return makeError((*info)->file + ": tensor '" + name + "' has dtype " +
                     dtypeName((*info)->dtype) + "; " + loader +
                     " supports F32, F16, BF16 and F64 "
                     "(I64 and I32 load with loadI64)");
  }
}

Expected<std::vector<float>>
Checkpoint::loadF32(StringRef name, llvm::ArrayRef<int64_t> expectedShape) const {
  return loadFloats<float>(lookup(name, expectedShape), name, "loadF32");
}

Expected<std::vector<double>>
Checkpoint::loadF64(StringRef name, llvm::ArrayRef<int64_t> expectedShape) const {
  return loadFloats<double>(lookup(name, expectedShape), name, "loadF64");
}

Expected<std::vector<int64_t>>
Checkpoint::loadI64(StringRef name, llvm::ArrayRef<int64_t> expectedShape) const {
  namespace endian = llvm::support::endian;
  Expected<const TensorInfo *> info = lookup(name, expectedShape);
  if (!info)
    return info.takeError();
  const TensorInfo &tensor = **info;
  const uint8_t *data = tensor.bytes.data();
  size_t count = size_t(tensor.numElements());
  std::vector<int64_t> out(count);
  switch (tensor.dtype) {
  case DType::I64:
    for (size_t i = 0; i < count; ++i)
      out[i] = int64_t(endian::read64le(data + 8 * i));
    return out;
  case DType::I32:
    for (size_t i = 0; i < count; ++i)
      out[i] = int32_t(endian::read32le(data + 4 * i));
    return out;
  default:
    return makeError(tensor.file + ": tensor '" + name + "' has dtype " +
                     dtypeName(tensor.dtype) +
                     "; loadI64 supports I64 and I32 (F32, F16, BF16 and F64 "
                     "load with loadF32 or loadF64)");
  }
}

Error mlir::glint::runtime::writeSafetensors(
    StringRef path, llvm::ArrayRef<F32Tensor> tensors,
    const std::map<std::string, std::string> &metadata) {
  auto fail = [&](const Twine &message) {
    return makeError(path + ": " + message);
  };
  llvm::json::Object header;
  if (!metadata.empty()) {
    llvm::json::Object meta;
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const F32Tensor &t : tensors) {
    if (t.name == "__metadata__" || header.find(t.name) != header.end())
      return fail("tensor name '" + t.name + "' is used twice or reserved");
    int64_t elements = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        return fail("tensor '" + t.name + "' has a negative dimension");
      elements *= d;
    }
    if (elements != static_cast<int64_t>(t.data.size()))
      return fail(llvm::formatv("tensor '{0}' has {1} elements for a shape of "
                                "{2}",
                                t.name, t.data.size(), elements));
    uint64_t end = offset + 4 * uint64_t(elements);
    header[t.name] =
        llvm::json::Object{{"dtype", "F32"},
                           {"shape", llvm::json::Array(t.shape)},
                           {"data_offsets", llvm::json::Array{offset, end}}};
    offset = end;
  }
  std::string text;
  llvm::raw_string_ostream(text) << llvm::json::Value(std::move(header));
  // Pad with spaces so the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    char length[8];
    llvm::support::endian::write64le(length, text.size());
    os.write(length, sizeof(length));
    os << text;
    for (const F32Tensor &t : tensors) {
      if constexpr (llvm::endianness::native == llvm::endianness::little) {
        os.write(reinterpret_cast<const char *>(t.data.data()),
                 t.data.size() * sizeof(float));
      } else {
        for (float x : t.data) {
          char bytes[4];
          llvm::support::endian::write32le(bytes, llvm::bit_cast<uint32_t>(x));
          os.write(bytes, sizeof(bytes));
        }
      }
    }
  });
}
