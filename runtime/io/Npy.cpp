//===- Npy.cpp - NumPy .npy array files -----------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The .npy format (numpy/lib/format.py): the magic "\x93NUMPY", a major and
// minor version byte, the header length (u16 in version 1.0, u32 in 2.0 and
// 3.0, little-endian), then the header: a Python dict literal such as
// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with
// spaces and ended by '\n' so the data starts 64-byte aligned. The data
// follows, with nothing after it.
//
// The header is a Python literal, not JSON, so it is parsed here; only the
// subset numpy itself writes is accepted.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Npy.h"
#include "runtime/io/AtomicFile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/EndianStream.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <type_traits>

using namespace mlir::glint::runtime;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

Error makeError(const Twine &message) {
  return llvm::createStringError(
      std::make_error_code(std::errc::invalid_argument), message);
}

unsigned itemSize(NpyDType dtype) {
  switch (dtype) {
  case NpyDType::F32:
  case NpyDType::I32:
    return 4;
  case NpyDType::F64:
  case NpyDType::I64:
    return 8;
  }
  llvm_unreachable("unknown NpyDType");
}

std::optional<NpyDType> parseDescr(StringRef descr) {
  for (NpyDType dtype :
       {NpyDType::F32, NpyDType::F64, NpyDType::I32, NpyDType::I64})
    if (descr == npyDescr(dtype))
      return dtype;
  return std::nullopt;
}

/// The shape as a Python tuple, the way numpy prints it: "()", "(3,)",
/// "(2, 3)".
std::string formatTuple(llvm::ArrayRef<int64_t> shape) {
  std::string result = "(";
  llvm::raw_string_ostream os(result);
  llvm::interleave(shape, os, ", ");
  if (shape.size() == 1)
    os << ",";
  os << ")";
  return result;
}

/// product(shape), or std::nullopt if an extent is negative or the product
/// overflows.
std::optional<uint64_t> elementCount(llvm::ArrayRef<int64_t> shape) {
  if (llvm::any_of(shape, [](int64_t extent) { return extent < 0; }))
    return std::nullopt;
  if (llvm::is_contained(shape, 0))
    return 0;
  uint64_t count = 1;
  for (int64_t extent : shape) {
    std::optional<uint64_t> product =
        llvm::checkedMulUnsigned(count, uint64_t(extent));
    if (!product)
      return std::nullopt;
    count = *product;
  }
  return count;
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

/// The fields of a .npy header dict.
struct NpyHeader {
  NpyDType dtype;
  std::vector<int64_t> shape;
};

/// A cursor over the header dict literal. Each parse* method consumes one
/// token or reports what it found instead.
class HeaderParser {
public:
  explicit HeaderParser(StringRef text) : rest(text) {}

  Expected<NpyHeader> parse() {
    std::optional<StringRef> descr;
    std::optional<bool> fortranOrder;
    std::optional<std::vector<int64_t>> shape;

    if (!consume('{'))
      return problem("expected '{'");
    while (!consume('}')) {
      StringRef key;
      if (Error err = parseString(key))
        return std::move(err);
      if (!consume(':'))
        return problem("expected ':' after '" + key + "'");
      if (key == "descr") {
        StringRef value;
        if (Error err = parseString(value))
          return std::move(err);
        descr = value;
      } else if (key == "fortran_order") {
        bool value = false;
        if (Error err = parseBool(value))
          return std::move(err);
        fortranOrder = value;
      } else if (key == "shape") {
        std::vector<int64_t> value;
        if (Error err = parseTuple(value))
          return std::move(err);
        shape = std::move(value);
      } else {
        return problem("unexpected key '" + key + "'");
      }
      // numpy writes a trailing comma after the last entry.
      if (!consume(',') && !peek('}'))
        return problem("expected ',' or '}'");
    }
    skipSpace();
    if (!rest.empty())
      return problem("unexpected text after the dict");

    if (!descr)
      return problem("missing 'descr'");
    if (!fortranOrder)
      return problem("missing 'fortran_order'");
    if (!shape)
      return problem("missing 'shape'");
    if (*fortranOrder)
      return makeError("fortran_order is True; only C-order arrays are "
                       "supported");
    std::optional<NpyDType> dtype = parseDescr(*descr);
    if (!dtype)
      return makeError("unsupported descr '" + *descr +
                       "'; supported: '<f4', '<f8', '<i8', '<i4'");
    return NpyHeader{*dtype, std::move(*shape)};
  }

private:
  void skipSpace() { rest = rest.ltrim(" \t\r\n"); }

  bool peek(char c) {
    skipSpace();
    return rest.starts_with(StringRef(&c, 1));
  }

  bool consume(char c) {
    if (!peek(c))
      return false;
    rest = rest.drop_front();
    return true;
  }

  Error problem(const Twine &what) {
    StringRef near = rest.take_front(16);
    return makeError("malformed header: " + what + " at '" + near + "'");
  }

  Error parseString(StringRef &out) {
    skipSpace();
    if (rest.empty() || (rest.front() != '\'' && rest.front() != '"'))
      return problem("expected a string");
    char quote = rest.front();
    size_t close = rest.find(quote, 1);
    if (close == StringRef::npos)
      return problem("unterminated string");
    out = rest.slice(1, close);
    rest = rest.drop_front(close + 1);
    return Error::success();
  }

  Error parseBool(bool &out) {
    skipSpace();
    if (rest.consume_front("True")) {
      out = true;
      return Error::success();
    }
    if (rest.consume_front("False")) {
      out = false;
      return Error::success();
    }
    return problem("expected True or False");
  }

  Error parseTuple(std::vector<int64_t> &out) {
    if (!consume('('))
      return problem("expected a shape tuple");
    while (!consume(')')) {
      skipSpace();
      // A header may end inside the number (found by fuzz-npy: dropping
      // npos characters read past the header).
      size_t digits =
          std::min(rest.find_first_not_of("0123456789"), rest.size());
      if (digits == 0 || rest.empty())
        return problem("expected a non-negative integer");
      uint64_t value;
      if (rest.take_front(digits).getAsInteger(10, value) ||
          value > uint64_t(std::numeric_limits<int64_t>::max()))
        return problem("shape extent out of range");
      rest = rest.drop_front(digits);
      // Python 2 numpy wrote longs as "3L".
      rest.consume_front("L");
      out.push_back(int64_t(value));
      if (!consume(',') && !peek(')'))
        return problem("expected ',' or ')' in the shape");
    }
    return Error::success();
  }

  StringRef rest;
};

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

/// A validated file: its header and exactly the bytes of its data.
struct NpyFile {
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  NpyHeader header;
  llvm::ArrayRef<uint8_t> data;
};

Expected<NpyFile> openNpy(StringRef path) {
  auto fail = [&](const Twine &problem) {
    return makeError(path + ": " + problem);
  };
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fail(buffer.getError().message());
  llvm::ArrayRef<uint8_t> bytes(
      reinterpret_cast<const uint8_t *>((*buffer)->getBufferStart()),
      (*buffer)->getBufferSize());

  if (bytes.size() < kMagicSize ||
      StringRef(reinterpret_cast<const char *>(bytes.data()), kMagicSize) !=
          StringRef(kMagic, kMagicSize))
    return fail("not a .npy file (bad magic)");
  if (bytes.size() < kMagicSize + 2)
    return fail("file is truncated before the format version");
  unsigned major = bytes[kMagicSize], minor = bytes[kMagicSize + 1];
  size_t lengthBytes;
  if (major == 1 && minor == 0)
    lengthBytes = 2;
  else if ((major == 2 || major == 3) && minor == 0)
    lengthBytes = 4;
  else
    return fail(llvm::formatv("unsupported .npy format version {0}.{1}",
                              major, minor));
  size_t preamble = kMagicSize + 2 + lengthBytes;
  if (bytes.size() < preamble)
    return fail("file is truncated before the header length");
  uint64_t headerSize =
      lengthBytes == 2
          ? llvm::support::endian::read16le(bytes.data() + kMagicSize + 2)
          : llvm::support::endian::read32le(bytes.data() + kMagicSize + 2);
  if (headerSize > bytes.size() - preamble)
    return fail("header length " + Twine(headerSize) +
                " runs past the end of the file (" + Twine(bytes.size()) +
                " bytes)");
  StringRef headerText(reinterpret_cast<const char *>(bytes.data() + preamble),
                       headerSize);

  Expected<NpyHeader> header = HeaderParser(headerText).parse();
  if (!header)
    return fail(llvm::toString(header.takeError()));

  llvm::ArrayRef<uint8_t> data = bytes.drop_front(preamble + headerSize);
  std::optional<uint64_t> count = elementCount(header->shape);
  std::optional<uint64_t> needed;
  if (count)
    needed = llvm::checkedMulUnsigned(*count,
                                      uint64_t(itemSize(header->dtype)));
  if (!needed)
    return fail("shape " + formatTuple(header->shape) +
                " has more bytes than a 64-bit size holds");
  if (data.size() != *needed)
    return fail(llvm::formatv("data holds {0} bytes but '{1}' {2} needs {3}",
                              data.size(), npyDescr(header->dtype),
                              formatTuple(header->shape), *needed));
  return NpyFile{std::move(*buffer), std::move(*header), data};
}

/// Reads element \p i of \p file as \p T. Reads go through the endian
/// helpers because the data is little-endian and, in files other tools
/// wrote, not necessarily aligned.
template <typename T>
T elementAt(const NpyFile &file, size_t i) {
  namespace endian = llvm::support::endian;
  const uint8_t *data = file.data.data();
  switch (file.header.dtype) {
  case NpyDType::F32:
    return T(llvm::bit_cast<float>(endian::read32le(data + 4 * i)));
  case NpyDType::F64:
    return T(llvm::bit_cast<double>(endian::read64le(data + 8 * i)));
  case NpyDType::I32:
    return T(int32_t(endian::read32le(data + 4 * i)));
  case NpyDType::I64:
    return T(int64_t(endian::read64le(data + 8 * i)));
  }
  llvm_unreachable("unknown NpyDType");
}

/// Opens \p path and converts its elements to \p T if its dtype is one of
/// \p accepted; \p reader and \p acceptedText name the caller in errors.
template <typename T>
Expected<NpyArray<T>> readAs(StringRef path, StringRef reader,
                             llvm::ArrayRef<NpyDType> accepted,
                             StringRef acceptedText) {
  Expected<NpyFile> file = openNpy(path);
  if (!file)
    return file.takeError();
  if (!llvm::is_contained(accepted, file->header.dtype))
    return makeError(path + ": holds '" + npyDescr(file->header.dtype) +
                     "'; " + reader + " reads " + acceptedText);
  NpyArray<T> array;
  array.fileDType = file->header.dtype;
  array.shape = file->header.shape;
  size_t count = file->data.size() / itemSize(file->header.dtype);
  array.data.resize(count);
  for (size_t i = 0; i < count; ++i)
    array.data[i] = elementAt<T>(*file, i);
  return std::move(array);
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

template <typename T>
constexpr NpyDType dtypeOf() {
  if constexpr (std::is_same_v<T, float>)
    return NpyDType::F32;
  else if constexpr (std::is_same_v<T, double>)
    return NpyDType::F64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return NpyDType::I32;
  else
    return NpyDType::I64;
}

/// Writes \p data little-endian.
template <typename T>
void writeElements(llvm::raw_ostream &os, llvm::ArrayRef<T> data) {
  if (data.empty())
    return;
  if constexpr (llvm::endianness::native == llvm::endianness::little) {
    os.write(reinterpret_cast<const char *>(data.data()),
             data.size() * sizeof(T));
  } else {
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    for (T value : data)
      llvm::support::endian::write(os, llvm::bit_cast<Bits>(value),
                                   llvm::endianness::little);
  }
}

template <typename T>
Error writeAs(StringRef path, llvm::ArrayRef<int64_t> shape,
              llvm::ArrayRef<T> data) {
  auto fail = [&](const Twine &problem) {
    return makeError(path + ": " + problem);
  };
  std::optional<uint64_t> count = elementCount(shape);
  if (!count)
    return fail("invalid shape " + formatTuple(shape));
  if (*count != data.size())
    return fail(llvm::formatv("shape {0} has {1} elements but {2} were given",
                              formatTuple(shape), *count, data.size()));

  NpyDType dtype = dtypeOf<T>();
  std::string header = ("{'descr': '" + npyDescr(dtype) +
                        "', 'fortran_order': False, 'shape': " +
                        formatTuple(shape) + ", }")
                           .str();
  // Pad with spaces so the data starts 64-byte aligned, as numpy does, then
  // end with the newline the format requires.
  size_t preamble = kMagicSize + 2 + 2;
  size_t unpadded = preamble + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  if (header.size() > std::numeric_limits<uint16_t>::max())
    return fail("shape " + formatTuple(shape) +
                " makes a header too long for .npy format 1.0");

  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os.write(kMagic, kMagicSize);
    os << char(1) << char(0);
    llvm::support::endian::write(os, uint16_t(header.size()),
                                 llvm::endianness::little);
    os << header;
    writeElements(os, data);
  });
}

} // namespace

StringRef mlir::glint::runtime::npyDescr(NpyDType dtype) {
  switch (dtype) {
  case NpyDType::F32:
    return "<f4";
  case NpyDType::F64:
    return "<f8";
  case NpyDType::I32:
    return "<i4";
  case NpyDType::I64:
    return "<i8";
  }
  llvm_unreachable("unknown NpyDType");
}

Error mlir::glint::runtime::writeNpy(StringRef path, llvm::ArrayRef<int64_t> shape,
                               llvm::ArrayRef<float> data) {
  return writeAs(path, shape, data);
}

Error mlir::glint::runtime::writeNpy(StringRef path, llvm::ArrayRef<int64_t> shape,
                               llvm::ArrayRef<double> data) {
  return writeAs(path, shape, data);
}

Error mlir::glint::runtime::writeNpy(StringRef path, llvm::ArrayRef<int64_t> shape,
                               llvm::ArrayRef<int64_t> data) {
  return writeAs(path, shape, data);
}

Error mlir::glint::runtime::writeNpy(StringRef path, llvm::ArrayRef<int64_t> shape,
                               llvm::ArrayRef<int32_t> data) {
  return writeAs(path, shape, data);
}

Expected<NpyArray<float>> mlir::glint::runtime::readNpyF32(StringRef path) {
  return readAs<float>(path, "readNpyF32", {NpyDType::F32, NpyDType::F64},
                       "'<f4' and '<f8'");
}

Expected<NpyArray<double>> mlir::glint::runtime::readNpyF64(StringRef path) {
  return readAs<double>(path, "readNpyF64", {NpyDType::F32, NpyDType::F64},
                        "'<f4' and '<f8'");
}

Expected<NpyArray<int64_t>> mlir::glint::runtime::readNpyI64(StringRef path) {
  return readAs<int64_t>(path, "readNpyI64", {NpyDType::I64, NpyDType::I32},
                         "'<i8' and '<i4'");
}
