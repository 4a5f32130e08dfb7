//===- SafetensorsTest.cpp - unit tests of the safetensors reader ---------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Every test writes its files into a fresh directory. Files are built byte by
// byte from a header string, so malformed headers are as easy to write as
// good ones, and the expected values are written out as literals rather than
// computed by the code under test.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace mlir::glint::runtime;
using llvm::StringRef;

namespace {

using Bytes = std::vector<uint8_t>;

void appendU16(Bytes &bytes, uint16_t value) {
  uint8_t le[2];
  llvm::support::endian::write16le(le, value);
  bytes.insert(bytes.end(), le, le + 2);
}

void appendF32(Bytes &bytes, float value) {
  uint8_t le[4];
  llvm::support::endian::write32le(le, llvm::bit_cast<uint32_t>(value));
  bytes.insert(bytes.end(), le, le + 4);
}

void appendF64(Bytes &bytes, double value) {
  uint8_t le[8];
  llvm::support::endian::write64le(le, llvm::bit_cast<uint64_t>(value));
  bytes.insert(bytes.end(), le, le + 8);
}

void appendI64(Bytes &bytes, int64_t value) {
  uint8_t le[8];
  llvm::support::endian::write64le(le, uint64_t(value));
  bytes.insert(bytes.end(), le, le + 8);
}

void appendI32(Bytes &bytes, int32_t value) {
  uint8_t le[4];
  llvm::support::endian::write32le(le, uint32_t(value));
  bytes.insert(bytes.end(), le, le + 4);
}

/// Checks that \p result is an error whose message contains \p substring.
template <typename T>
::testing::AssertionResult failsWith(llvm::Expected<T> result,
                                     StringRef substring) {
  if (result)
    return ::testing::AssertionFailure()
           << "succeeded; expected an error containing '" << substring.str()
           << "'";
  std::string message = llvm::toString(result.takeError());
  if (StringRef(message).contains(substring))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "error '" << message << "' does not contain '" << substring.str()
         << "'";
}

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("glint-safetensors-test", dir);
    ASSERT_FALSE(ec) << ec.message();
  }

  void TearDown() override { llvm::sys::fs::remove_directories(dir); }

  std::string path(StringRef name) const {
    llvm::SmallString<256> result(dir);
    llvm::sys::path::append(result, name);
    return std::string(result);
  }

  /// Writes \p contents verbatim to \p name in the test directory.
  std::string writeRaw(StringRef name, StringRef contents) {
    std::string file = path(name);
    std::error_code ec;
    llvm::raw_fd_ostream os(file, ec);
    EXPECT_FALSE(ec) << ec.message();
    os << contents;
    return file;
  }

  /// Writes a safetensors file: the 8-byte little-endian length of
  /// \p header, \p header, then \p data.
  std::string writeSafetensors(StringRef name, StringRef header,
                               const Bytes &data = {}) {
    return writeSafetensors(name, header.size(), header, data);
  }

  /// As above, but with \p headerLength in the length field, whatever the
  /// header's real length.
  std::string writeSafetensors(StringRef name, uint64_t headerLength,
                               StringRef header, const Bytes &data) {
    std::string contents(8, '\0');
    llvm::support::endian::write64le(contents.data(), headerLength);
    contents += header.str();
    contents.append(data.begin(), data.end());
    return writeRaw(name, contents);
  }

  /// The message of the error Checkpoint::open(file) fails with.
  std::string openError(StringRef file) {
    auto checkpoint = Checkpoint::open(file);
    if (checkpoint)
      return "<opened>";
    return llvm::toString(checkpoint.takeError());
  }

  /// Opens a one-tensor file whose entry for 'w' is \p entry over \p data.
  std::string openEntryError(StringRef entry, const Bytes &data) {
    return openError(
        writeSafetensors("model.safetensors", "{\"w\":" + entry.str() + "}",
                         data));
  }

  llvm::SmallString<256> dir;
};

#define EXPECT_CONTAINS(text, substring)                                       \
  EXPECT_NE(std::string(text).find(substring), std::string::npos)              \
      << "'" << (text) << "' does not contain '" << (substring) << "'"

//===----------------------------------------------------------------------===//
// Valid files
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, LoadsF32) {
  Bytes data;
  for (float value : {1.0f, -2.5f, 0.125f, 3.0e38f, -0.0f, 7.0f})
    appendF32(data, value);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"__metadata__":{"format":"pt"},)"
      R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
      data);

  auto checkpoint = Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ((*checkpoint)->names(), std::vector<std::string>{"w"});
  EXPECT_EQ((*checkpoint)->metadata().at("format"), "pt");

  const TensorInfo *info = (*checkpoint)->find("w");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->dtype, DType::F32);
  EXPECT_EQ(info->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(info->file, file);
  EXPECT_EQ(info->numElements(), 6);
  EXPECT_EQ(info->bytes.size(), 24u);
  EXPECT_EQ((*checkpoint)->find("absent"), nullptr);

  auto f32 = (*checkpoint)->loadF32("w", {2, 3});
  ASSERT_TRUE(bool(f32)) << llvm::toString(f32.takeError());
  EXPECT_EQ(*f32, (std::vector<float>{1.0f, -2.5f, 0.125f, 3.0e38f, -0.0f,
                                      7.0f}));
  EXPECT_TRUE(std::signbit((*f32)[4]));

  auto f64 = (*checkpoint)->loadF64("w");
  ASSERT_TRUE(bool(f64)) << llvm::toString(f64.takeError());
  EXPECT_EQ(*f64, (std::vector<double>{1.0, -2.5, 0.125, double(3.0e38f),
                                       -0.0, 7.0}));
}

TEST_F(SafetensorsTest, WriterRoundTrips) {
  // Values that are not round in binary and a 0-d tensor: the writer's file
  // must read back bit for bit through the validating reader.
  std::vector<float> a = {0.1f, -2.5e-8f, 3.0e30f, -0.0f, 7.0f, 1.0f / 3.0f};
  std::vector<float> scalar = {-1.25f};
  std::string file = path("written.safetensors");
  ASSERT_FALSE(bool(mlir::glint::runtime::writeSafetensors(
      file, {{"layer.a", {2, 3}, a}, {"s", {}, scalar}}, {{"format", "pt"}})));
  auto checkpoint = Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ((*checkpoint)->size(), 2u);
  auto loaded = (*checkpoint)->loadF32("layer.a", {2, 3});
  ASSERT_TRUE(bool(loaded)) << llvm::toString(loaded.takeError());
  ASSERT_EQ(loaded->size(), a.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(llvm::bit_cast<uint32_t>((*loaded)[i]),
              llvm::bit_cast<uint32_t>(a[i]));
  auto loadedScalar = (*checkpoint)->loadF32("s", {});
  ASSERT_TRUE(bool(loadedScalar));
  EXPECT_EQ((*loadedScalar)[0], -1.25f);
  EXPECT_EQ((*checkpoint)->metadata().at("format"), "pt");
}

TEST_F(SafetensorsTest, WriterRejectsBadTensorsAndLeavesNoFile) {
  std::vector<float> three = {1, 2, 3};
  std::string file = path("bad.safetensors");
  llvm::Error wrongSize =
      mlir::glint::runtime::writeSafetensors(file, {{"w", {2, 2}, three}});
  ASSERT_TRUE(bool(wrongSize));
  EXPECT_CONTAINS(llvm::toString(std::move(wrongSize)),
                  "tensor 'w' has 3 elements for a shape of 4");
  llvm::Error duplicate = mlir::glint::runtime::writeSafetensors(
      file, {{"w", {3}, three}, {"w", {3}, three}});
  ASSERT_TRUE(bool(duplicate));
  EXPECT_CONTAINS(llvm::toString(std::move(duplicate)), "'w' is used twice");
  EXPECT_FALSE(llvm::sys::fs::exists(file));
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec))
    ADD_FAILURE() << "left behind: " << it->path();
}

TEST_F(SafetensorsTest, ConvertsF16Exactly) {
  // IEEE binary16 bit patterns and the values they encode.
  const std::pair<uint16_t, double> cases[] = {
      {0x3C00, 1.0},
      {0xC100, -2.5},
      {0x7BFF, 65504.0},                 // largest finite
      {0x0400, 6.103515625e-05},         // smallest normal, 2^-14
      {0x0001, 5.9604644775390625e-08},  // smallest subnormal, 2^-24
      {0x03FF, 6.097555160522461e-05},   // largest subnormal, 1023 * 2^-24
      {0x8001, -5.9604644775390625e-08}, // negative subnormal
      {0x3555, 0.333251953125},
      {0x0000, 0.0},
  };
  Bytes data;
  for (const auto &[bits, value] : cases)
    appendU16(data, bits);
  for (uint16_t bits : {0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x8000})
    appendU16(data, bits);
  size_t count = data.size() / 2;
  std::string header = R"({"h":{"dtype":"F16","shape":[)" +
                       std::to_string(count) + R"(],"data_offsets":[0,)" +
                       std::to_string(data.size()) + "]}}";
  auto checkpoint =
      Checkpoint::open(writeSafetensors("model.safetensors", header, data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());

  auto f32 = (*checkpoint)->loadF32("h");
  ASSERT_TRUE(bool(f32)) << llvm::toString(f32.takeError());
  auto f64 = (*checkpoint)->loadF64("h");
  ASSERT_TRUE(bool(f64)) << llvm::toString(f64.takeError());
  ASSERT_EQ(f32->size(), count);
  ASSERT_EQ(f64->size(), count);
  size_t i = 0;
  for (const auto &[bits, value] : cases) {
    EXPECT_EQ((*f32)[i], float(value)) << "bits 0x" << std::hex << bits;
    EXPECT_EQ((*f64)[i], value) << "bits 0x" << std::hex << bits;
    ++i;
  }
  EXPECT_EQ((*f32)[i], std::numeric_limits<float>::infinity());
  EXPECT_EQ((*f64)[i++], std::numeric_limits<double>::infinity());
  EXPECT_EQ((*f32)[i], -std::numeric_limits<float>::infinity());
  EXPECT_EQ((*f64)[i++], -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan((*f32)[i]));
  EXPECT_TRUE(std::isnan((*f64)[i++]));
  EXPECT_TRUE(std::isnan((*f32)[i]));
  EXPECT_TRUE(std::signbit((*f32)[i]));
  EXPECT_TRUE(std::isnan((*f64)[i++]));
  EXPECT_EQ((*f32)[i], 0.0f);
  EXPECT_TRUE(std::signbit((*f32)[i]));
  EXPECT_TRUE(std::signbit((*f64)[i]));
}

TEST_F(SafetensorsTest, ConvertsBF16) {
  // bfloat16 bit patterns and the values they encode.
  const std::pair<uint16_t, double> cases[] = {
      {0x3F80, 1.0},
      {0xC020, -2.5},
      {0x4049, 3.140625},
      {0x7F7F, 3.3895313892515355e+38}, // largest finite
      {0x0080, 1.1754943508222875e-38}, // smallest normal, 2^-126
      {0x0001, 9.183549615799121e-41},  // smallest subnormal, 2^-133
      {0x8000, -0.0},
  };
  Bytes data;
  for (const auto &[bits, value] : cases)
    appendU16(data, bits);
  appendU16(data, 0x7F80);
  appendU16(data, 0x7FC0);
  std::string header = R"({"b":{"dtype":"BF16","shape":[9],)"
                       R"("data_offsets":[0,18]}})";
  auto checkpoint =
      Checkpoint::open(writeSafetensors("model.safetensors", header, data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  auto f64 = (*checkpoint)->loadF64("b", {9});
  ASSERT_TRUE(bool(f64)) << llvm::toString(f64.takeError());
  for (size_t i = 0; i < std::size(cases); ++i)
    EXPECT_EQ((*f64)[i], cases[i].second) << "bits 0x" << std::hex
                                          << cases[i].first;
  EXPECT_TRUE(std::signbit((*f64)[6]));
  EXPECT_EQ((*f64)[7], std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan((*f64)[8]));
}

/// A tensor's bytes stay readable in place after its Checkpoint is gone
/// (every tensor shares its file's mapping) and after releasePages (the
/// pages come back from the file), for a file mapped (256 KiB) and one read
/// into memory (16 bytes, below MemoryBuffer's threshold for mapping).
TEST_F(SafetensorsTest, BytesOutliveCheckpointAndReleasedPages) {
  for (uint64_t count : {uint64_t(4), uint64_t(64 * 1024)}) {
    Bytes data;
    for (uint64_t i = 0; i < count; ++i)
      appendF32(data, 0.5f * float(i) + 1.0f);
    std::string header = R"({"w":{"dtype":"F32","shape":[)" +
                         std::to_string(count) + R"(],"data_offsets":[0,)" +
                         std::to_string(4 * count) + "]}}";
    auto opened =
        Checkpoint::open(writeSafetensors("model.safetensors", header, data));
    ASSERT_TRUE(bool(opened)) << llvm::toString(opened.takeError());
    std::unique_ptr<Checkpoint> checkpoint = std::move(*opened);
    TensorInfo w = *checkpoint->find("w");
    ASSERT_TRUE(w.mapping);
    EXPECT_EQ(w.mapping->getBufferKind() ==
                  llvm::MemoryBuffer::MemoryBuffer_MMap,
              count > 4)
        << count << " elements";
    checkpoint.reset();
    w.releasePages();
    ASSERT_EQ(w.bytes.size(), 4 * count);
    for (uint64_t i = 0; i < count; ++i)
      ASSERT_EQ(llvm::support::endian::read32le(w.bytes.data() + 4 * i),
                llvm::bit_cast<uint32_t>(0.5f * float(i) + 1.0f))
          << "element " << i << " of " << count;
  }
}

TEST_F(SafetensorsTest, LoadsF64) {
  Bytes data;
  for (double value : {0.1, -1.0e300, 5.0e-324, 2.0})
    appendF64(data, value);
  auto checkpoint = Checkpoint::open(writeSafetensors(
      "model.safetensors",
      R"({"d":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]}})", data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  auto f64 = (*checkpoint)->loadF64("d", {2, 2});
  ASSERT_TRUE(bool(f64)) << llvm::toString(f64.takeError());
  EXPECT_EQ(*f64, (std::vector<double>{0.1, -1.0e300, 5.0e-324, 2.0}));
  // Narrowing rounds to nearest: overflow goes to infinity, underflow to 0.
  auto f32 = (*checkpoint)->loadF32("d");
  ASSERT_TRUE(bool(f32)) << llvm::toString(f32.takeError());
  EXPECT_EQ(*f32, (std::vector<float>{0.1f,
                                      -std::numeric_limits<float>::infinity(),
                                      0.0f, 2.0f}));
}

TEST_F(SafetensorsTest, LoadsIntegers) {
  Bytes data;
  for (int64_t value : {int64_t(0), int64_t(-1), int64_t(50277),
                        std::numeric_limits<int64_t>::min()})
    appendI64(data, value);
  for (int32_t value : {7, -7, std::numeric_limits<int32_t>::max()})
    appendI32(data, value);
  auto checkpoint = Checkpoint::open(writeSafetensors(
      "model.safetensors",
      R"({"ids":{"dtype":"I64","shape":[1,4],"data_offsets":[0,32]},)"
      R"("pos":{"dtype":"I32","shape":[3],"data_offsets":[32,44]}})",
      data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ((*checkpoint)->names(), (std::vector<std::string>{"ids", "pos"}));
  auto ids = (*checkpoint)->loadI64("ids", {1, 4});
  ASSERT_TRUE(bool(ids)) << llvm::toString(ids.takeError());
  EXPECT_EQ(*ids, (std::vector<int64_t>{0, -1, 50277,
                                        std::numeric_limits<int64_t>::min()}));
  auto pos = (*checkpoint)->loadI64("pos");
  ASSERT_TRUE(bool(pos)) << llvm::toString(pos.takeError());
  EXPECT_EQ(*pos, (std::vector<int64_t>{7, -7, 2147483647}));

  EXPECT_TRUE(failsWith((*checkpoint)->loadF32("ids"),
                        "tensor 'ids' has dtype I64; loadF32 supports F32, "
                        "F16, BF16 and F64 (I64 and I32 load with loadI64)"));
  Bytes floats;
  appendF32(floats, 1.0f);
  auto floatCheckpoint = Checkpoint::open(writeSafetensors(
      "f.safetensors",
      R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats));
  ASSERT_TRUE(bool(floatCheckpoint))
      << llvm::toString(floatCheckpoint.takeError());
  EXPECT_TRUE(failsWith((*floatCheckpoint)->loadI64("x"),
                        "tensor 'x' has dtype F32; loadI64 supports I64 and "
                        "I32"));
}

TEST_F(SafetensorsTest, LoadsUnalignedData) {
  // Nothing aligns the data section or the tensors in it; a loader that
  // dereferenced a float pointer into the mapping would trip UBSan here.
  std::string header =
      R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[1,17]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[17,21]}})";
  // Pad so that 'a', 1 byte into the data section, is not 4-byte aligned
  // in the file; 'b', 16 bytes further, is then misaligned too.
  while ((8 + header.size() + 1) % 4 == 0)
    header += ' ';
  Bytes data = {0xAA};
  appendF64(data, 1.5);
  appendF64(data, -0.25);
  appendF32(data, 6.0f);
  auto checkpoint =
      Checkpoint::open(writeSafetensors("model.safetensors", header, data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  auto a = (*checkpoint)->loadF64("a");
  ASSERT_TRUE(bool(a)) << llvm::toString(a.takeError());
  EXPECT_EQ(*a, (std::vector<double>{1.5, -0.25}));
  auto b = (*checkpoint)->loadF32("b");
  ASSERT_TRUE(bool(b)) << llvm::toString(b.takeError());
  EXPECT_EQ(*b, std::vector<float>{6.0f});
}

TEST_F(SafetensorsTest, LoadsScalarAndEmptyTensors) {
  Bytes data;
  appendF32(data, 42.0f);
  auto checkpoint = Checkpoint::open(writeSafetensors(
      "model.safetensors",
      R"({"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("empty":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},)"
      R"("huge_empty":{"dtype":"F16","shape":[1099511627776,0,)"
      R"(1099511627776],"data_offsets":[0,0]}})",
      data));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  auto scalar = (*checkpoint)->loadF32("scalar");
  ASSERT_TRUE(bool(scalar)) << llvm::toString(scalar.takeError());
  EXPECT_EQ(*scalar, std::vector<float>{42.0f});
  EXPECT_TRUE((*checkpoint)->find("scalar")->shape.empty());
  auto empty = (*checkpoint)->loadF64("empty", {0, 5});
  ASSERT_TRUE(bool(empty)) << llvm::toString(empty.takeError());
  EXPECT_TRUE(empty->empty());
  auto hugeEmpty = (*checkpoint)->loadF32("huge_empty");
  ASSERT_TRUE(bool(hugeEmpty)) << llvm::toString(hugeEmpty.takeError());
  EXPECT_TRUE(hugeEmpty->empty());
}

TEST_F(SafetensorsTest, AcceptsPaddedHeaderAndEmptyCheckpoint) {
  // The format pads headers with spaces to align the data section.
  auto padded = Checkpoint::open(writeSafetensors(
      "padded.safetensors",
      R"({"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}     )",
      Bytes{0x80, 0x3F}));
  ASSERT_TRUE(bool(padded)) << llvm::toString(padded.takeError());
  auto x = (*padded)->loadF32("x");
  ASSERT_TRUE(bool(x)) << llvm::toString(x.takeError());
  EXPECT_EQ(*x, std::vector<float>{1.0f});

  auto empty = Checkpoint::open(writeSafetensors("empty.safetensors", "{}"));
  ASSERT_TRUE(bool(empty)) << llvm::toString(empty.takeError());
  EXPECT_EQ((*empty)->size(), 0u);
}

TEST_F(SafetensorsTest, OpensDirectory) {
  Bytes data;
  appendF32(data, 3.0f);
  writeSafetensors(
      "model.safetensors",
      R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data);
  auto checkpoint = Checkpoint::open(dir);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ((*checkpoint)->find("x")->file, path("model.safetensors"));
}

//===----------------------------------------------------------------------===//
// Malformed files
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RejectsMissingFileAndEmptyDirectory) {
  std::string missing = path("missing.safetensors");
  EXPECT_CONTAINS(openError(missing), missing + ": No such file or directory");
  EXPECT_CONTAINS(openError(dir), "directory holds neither model.safetensors "
                                  "nor model.safetensors.index.json");
}

TEST_F(SafetensorsTest, RejectsRepeatedNamesAndFilesThatAreNotRegular) {
  Bytes data;
  appendF32(data, 1.0f);
  appendF32(data, 2.0f);
  // The same name twice, as written and in another spelling ("\u0061" is
  // "a"); a name inside a tensor's entry does not count.
  std::string twice = writeSafetensors(
      "twice.safetensors",
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      data);
  EXPECT_CONTAINS(openError(twice), "header names 'a' more than once");
  std::string escaped = writeSafetensors(
      "escaped.safetensors",
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      data);
  EXPECT_CONTAINS(openError(escaped), "header repeats a name");
  std::string nested = writeSafetensors(
      "nested.safetensors",
      R"({"__metadata__":{"a":"x","b":"y"},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      data);
  EXPECT_EQ(openError(nested), "<opened>");
  // A directory named like a weights file, and a device.
  llvm::SmallString<256> folder(dir);
  llvm::sys::path::append(folder, "folder.safetensors");
  ASSERT_FALSE(llvm::sys::fs::create_directory(folder));
  EXPECT_CONTAINS(openError("/dev/null"),
                  "/dev/null: not a regular file (weights are read from "
                  "regular files only)");
}

TEST_F(SafetensorsTest, RejectsShortFiles) {
  std::string empty = writeRaw("empty.safetensors", "");
  EXPECT_CONTAINS(openError(empty),
                  empty + ": file is 0 bytes, too short for the 8-byte "
                          "header length");
  std::string seven = writeRaw("seven.safetensors",
                               StringRef("\x02\0\0\0\0\0\0", 7));
  EXPECT_CONTAINS(openError(seven), "file is 7 bytes, too short");
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastEnd) {
  std::string file = writeSafetensors("model.safetensors", 100, "{}", {});
  EXPECT_CONTAINS(openError(file), file + ": header length 100 runs past the "
                                          "end of the file (10 bytes)");
  // One byte short of the real header.
  file = writeSafetensors("short.safetensors", 3, "{}", {});
  EXPECT_CONTAINS(openError(file), "header length 3 runs past the end");
}

TEST_F(SafetensorsTest, RejectsAbsurdHeaderLength) {
  std::string file = writeSafetensors("big.safetensors", 100'000'001, "{}", {});
  EXPECT_CONTAINS(openError(file), "header length 100000001 exceeds the limit "
                                   "of 100000000 bytes");
  // Would wrap around if 8 + length were computed naively.
  file = writeSafetensors("wrap.safetensors",
                          std::numeric_limits<uint64_t>::max() - 3, "{}", {});
  EXPECT_CONTAINS(openError(file), "header length 18446744073709551612 "
                                   "exceeds the limit");
}

TEST_F(SafetensorsTest, RejectsInvalidJSON) {
  EXPECT_CONTAINS(openError(writeSafetensors("a.safetensors", "{\"w\":")),
                  "header is not valid JSON: ");
  EXPECT_CONTAINS(openError(writeSafetensors("b.safetensors", "{} trailing")),
                  "header is not valid JSON: ");
  EXPECT_CONTAINS(openError(writeSafetensors("c.safetensors", "[1, 2]")),
                  "header is not a JSON object");
  EXPECT_CONTAINS(openError(writeSafetensors("d.safetensors", "\"str\"")),
                  "header is not a JSON object");
}

TEST_F(SafetensorsTest, RejectsMalformedEntries) {
  Bytes data(24, 0);
  EXPECT_CONTAINS(openEntryError("3", data),
                  "tensor 'w': entry is not a JSON object");
  EXPECT_CONTAINS(
      openEntryError(R"({"shape":[6],"data_offsets":[0,24]})", data),
      "tensor 'w': missing 'dtype'");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","data_offsets":[0,24]})", data),
      "tensor 'w': missing 'shape'");
  EXPECT_CONTAINS(openEntryError(R"({"dtype":"F32","shape":[6]})", data),
                  "tensor 'w': missing 'data_offsets'");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":32,"shape":[6],"data_offsets":[0,24]})",
                     data),
      "tensor 'w': 'dtype' is not a string");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":6,"data_offsets":[0,24]})",
                     data),
      "tensor 'w': 'shape' is not an array");
}

TEST_F(SafetensorsTest, RejectsUnknownDType) {
  Bytes data(24, 0);
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F33","shape":[6],"data_offsets":[0,24]})",
                     data),
      "tensor 'w': unknown dtype 'F33'");
  // Spelled as the format spells it, upper case.
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"f32","shape":[6],"data_offsets":[0,24]})",
                     data),
      "unknown dtype 'f32'");
}

TEST_F(SafetensorsTest, UnsupportedDTypeFailsOnLoad) {
  // Other dtypes open (so a checkpoint with, say, a BOOL mask still opens),
  // but do not load.
  Bytes data(8, 0);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"q":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]},)"
      R"("e":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[4,8]}})",
      data);
  auto checkpoint = Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ((*checkpoint)->find("q")->dtype, DType::I8);
  EXPECT_TRUE(failsWith((*checkpoint)->loadF32("q"),
                        file + ": tensor 'q' has dtype I8; loadF32 supports "
                               "F32, F16, BF16 and F64"));
  EXPECT_TRUE(failsWith((*checkpoint)->loadF64("e"),
                        "tensor 'e' has dtype F8_E4M3; loadF64 supports F32, "
                        "F16, BF16 and F64"));
  EXPECT_TRUE(failsWith((*checkpoint)->loadI64("q"),
                        "tensor 'q' has dtype I8; loadI64 supports I64 and "
                        "I32"));
}

TEST_F(SafetensorsTest, ValidatesSubByteDTypes) {
  // F4 packs two elements a byte; an odd count cannot fill whole bytes.
  Bytes data(2, 0);
  EXPECT_EQ(
      openEntryError(R"({"dtype":"F4","shape":[2,2],"data_offsets":[0,2]})",
                     data),
      "<opened>");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F4","shape":[3],"data_offsets":[0,2]})",
                     data),
      "tensor 'w': F4 [3] does not fill a whole number of bytes");
}

TEST_F(SafetensorsTest, RejectsBadShapes) {
  Bytes data(24, 0);
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]})",
                     data),
      "tensor 'w': 'shape' element 1 is -3, not a non-negative integer");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,24]})",
                     data),
      "'shape' element 0 is 2.5, not a non-negative integer");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":["6"],"data_offsets":[0,24]})",
                     data),
      "'shape' element 0 is \"6\", not a non-negative integer");
  EXPECT_CONTAINS(
      openEntryError(
          R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,24]})",
          data),
      "'shape' element 0 is 18446744073709551615, not a non-negative integer");
}

TEST_F(SafetensorsTest, RejectsBadOffsets) {
  Bytes data(24, 0);
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[100],"data_offsets":[0,400]})",
                     data),
      "tensor 'w': data_offsets [0, 400] run past the end of the 24-byte data "
      "section");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})",
                     data),
      "tensor 'w': data_offsets [8, 4] begin after end");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})",
                     data),
      "tensor 'w': 'data_offsets' is [0], not [begin, end] with non-negative "
      "integers");
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})",
                     data),
      "'data_offsets' is [-4,0], not [begin, end]");
  EXPECT_CONTAINS(
      openEntryError(
          R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", data),
      "not [begin, end]");
  // An end beyond 2^64 - 1 must not wrap.
  EXPECT_CONTAINS(
      openEntryError(
          R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})",
          data),
      "run past the end of the 24-byte data section");
}

TEST_F(SafetensorsTest, RejectsSizeMismatch) {
  Bytes data(256, 0);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"backbone.layers.0.mixer.D":{"dtype":"F32","shape":[64],)"
      R"("data_offsets":[0,100]}})",
      data);
  EXPECT_EQ(openError(file),
            file + ": tensor 'backbone.layers.0.mixer.D': data_offsets "
                   "[0, 100] hold 100 bytes but F32 [64] needs 256");
}

TEST_F(SafetensorsTest, RejectsSizeOverflow) {
  Bytes data(24, 0);
  // 2^40 * 2^40 elements overflow a 64-bit count.
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[1099511627776,1099511627776],)"
                     R"("data_offsets":[0,24]})",
                     data),
      "tensor 'w': shape [1099511627776, 1099511627776] has more elements "
      "than a 64-bit count holds");
  // 2^62 elements fit, but 2^62 * 32 bits do not.
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F32","shape":[4611686018427387904],)"
                     R"("data_offsets":[0,24]})",
                     data),
      "tensor 'w': F32 [4611686018427387904] needs more bytes than a 64-bit "
      "size holds");
  // The product wraps to exactly the bytes held if computed modulo 2^64:
  // 2^61 * 8 bytes = 2^64 = 0.
  EXPECT_CONTAINS(
      openEntryError(R"({"dtype":"F64","shape":[2305843009213693952],)"
                     R"("data_offsets":[0,0]})",
                     data),
      "needs more bytes than a 64-bit size holds");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  Bytes data(24, 0);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
      data);
  EXPECT_CONTAINS(openError(file),
                  file + ": tensors 'a' [0, 16] and 'b' [8, 24] overlap");
  // One tensor inside another.
  file = writeSafetensors(
      "nested.safetensors",
      R"({"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}})",
      data);
  EXPECT_CONTAINS(openError(file), "tensors 'a' [0, 24] and 'b' [20, 24] "
                                   "overlap");
  // Adjacent tensors and an empty tensor inside another are fine.
  file = writeSafetensors(
      "adjacent.safetensors",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]},)"
      R"("c":{"dtype":"F32","shape":[0],"data_offsets":[12,12]}})",
      data);
  EXPECT_EQ(openError(file), "<opened>");
}

TEST_F(SafetensorsTest, RejectsBadMetadata) {
  EXPECT_CONTAINS(
      openError(writeSafetensors("a.safetensors", R"({"__metadata__":[1]})")),
      "'__metadata__' is not an object of strings");
  EXPECT_CONTAINS(openError(writeSafetensors(
                      "b.safetensors",
                      R"({"__metadata__":{"format":"pt","n":1}})")),
                  "'__metadata__' entry 'n' is 1, not a string");
}

TEST_F(SafetensorsTest, ReportsMissingTensor) {
  Bytes data(8, 0);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"backbone.layers.0.mixer.A_log":{"dtype":"F32","shape":[2],)"
      R"("data_offsets":[0,8]}})",
      data);
  auto checkpoint = Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_TRUE(failsWith(
      (*checkpoint)->loadF32("backbone.layers.0.mixer.A"),
      file + ": no tensor named 'backbone.layers.0.mixer.A' (did you mean "
             "'backbone.layers.0.mixer.A_log'?)"));
  auto unrelated = (*checkpoint)->loadF64("lm_head.weight");
  ASSERT_FALSE(bool(unrelated));
  std::string message = llvm::toString(unrelated.takeError());
  EXPECT_CONTAINS(message, "no tensor named 'lm_head.weight'");
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, ReportsShapeMismatch) {
  Bytes data(24, 0);
  std::string file = writeSafetensors(
      "model.safetensors",
      R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", data);
  auto checkpoint = Checkpoint::open(file);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_TRUE(failsWith((*checkpoint)->loadF32("w", {3, 2}),
                        file + ": tensor 'w' has shape [2, 3] but [3, 2] was "
                               "expected"));
  EXPECT_TRUE(failsWith((*checkpoint)->loadF64("w", {6}),
                        "tensor 'w' has shape [2, 3] but [6] was expected"));
}

//===----------------------------------------------------------------------===//
// Sharded checkpoints
//===----------------------------------------------------------------------===//

class ShardedTest : public SafetensorsTest {
protected:
  static constexpr const char *kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char *kShard2 = "model-00002-of-00002.safetensors";

  /// Writes two shards: 'a' (F32 [2]) and 'b' (BF16 [1]) in the first, 'c'
  /// (F64 [1]) in the second.
  void writeShards() {
    Bytes first;
    appendF32(first, 1.0f);
    appendF32(first, 2.0f);
    appendU16(first, 0xC020); // -2.5
    writeSafetensors(
        kShard1,
        R"({"__metadata__":{"format":"pt"},)"
        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]}})",
        first);
    Bytes second;
    appendF64(second, 0.1);
    writeSafetensors(
        kShard2, R"({"c":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
        second);
  }

  std::string writeIndex(StringRef weightMap) {
    return writeRaw("model.safetensors.index.json",
                    R"({"metadata":{"total_size":18},"weight_map":)" +
                        weightMap.str() + "}");
  }

  std::string goodWeightMap() const {
    return std::string(R"({"a":")") + kShard1 + R"(","b":")" + kShard1 +
           R"(","c":")" + kShard2 + R"("})";
  }
};

TEST_F(ShardedTest, OpensTwoShards) {
  writeShards();
  std::string index = writeIndex(goodWeightMap());
  for (const std::string &target : {index, std::string(dir)}) {
    auto checkpoint = Checkpoint::open(target);
    ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
    EXPECT_EQ((*checkpoint)->names(),
              (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ((*checkpoint)->metadata().at("format"), "pt");
    EXPECT_EQ((*checkpoint)->find("a")->file, path(kShard1));
    EXPECT_EQ((*checkpoint)->find("c")->file, path(kShard2));
    auto a = (*checkpoint)->loadF32("a", {2});
    ASSERT_TRUE(bool(a)) << llvm::toString(a.takeError());
    EXPECT_EQ(*a, (std::vector<float>{1.0f, 2.0f}));
    auto b = (*checkpoint)->loadF32("b");
    ASSERT_TRUE(bool(b)) << llvm::toString(b.takeError());
    EXPECT_EQ(*b, std::vector<float>{-2.5f});
    auto c = (*checkpoint)->loadF64("c");
    ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError());
    EXPECT_EQ(*c, std::vector<double>{0.1});
    EXPECT_TRUE(failsWith((*checkpoint)->loadF32("d"),
                          target + ": no tensor named 'd'"));
  }
}

TEST_F(ShardedTest, RejectsMissingShard) {
  writeShards();
  std::string index = writeIndex(
      std::string(R"({"a":")") + kShard1 + R"(","b":")" + kShard1 +
      R"(","c":"model-00003-of-00003.safetensors"})");
  EXPECT_CONTAINS(openError(index),
                  index + ": shard 'model-00003-of-00003.safetensors' "
                          "(holding 'c') does not exist");
}

TEST_F(ShardedTest, RejectsTensorAbsentFromShard) {
  writeShards();
  std::string index =
      writeIndex(std::string(R"({"a":")") + kShard1 + R"(","b":")" + kShard1 +
                 R"(","c":")" + kShard2 + R"(","d":")" + kShard2 + R"("})");
  EXPECT_CONTAINS(openError(index),
                  index + ": tensor 'd' is mapped to shard '" + kShard2 +
                      "', which does not hold it");
}

TEST_F(ShardedTest, RejectsTensorClaimedTwice) {
  writeShards();
  // The second shard also holds 'a'.
  Bytes second;
  appendF64(second, 0.1);
  appendF32(second, 9.0f);
  appendF32(second, 9.0f);
  writeSafetensors(
      kShard2,
      R"({"c":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
      second);
  std::string index = writeIndex(goodWeightMap());
  EXPECT_CONTAINS(openError(index),
                  index + ": tensor 'a' is claimed twice: the index places it "
                          "in shard '" + kShard1 + "' but shard '" + kShard2 +
                      "' holds it too");
}

TEST_F(ShardedTest, RejectsUnlistedTensor) {
  writeShards();
  std::string index = writeIndex(std::string(R"({"a":")") + kShard1 +
                                 R"(","c":")" + kShard2 + R"("})");
  EXPECT_CONTAINS(openError(index), "shard '" + std::string(kShard1) +
                                        "' holds tensor 'b', which the index "
                                        "does not list");
}

TEST_F(ShardedTest, ReportsErrorsInShardsWithTheShardName) {
  writeShards();
  writeSafetensors(kShard2, "not json");
  writeIndex(goodWeightMap());
  EXPECT_CONTAINS(openError(dir),
                  path(kShard2) + ": header is not valid JSON");
}

TEST_F(ShardedTest, RejectsMalformedIndex) {
  writeShards();
  std::string index =
      writeRaw("model.safetensors.index.json", R"({"weight_map": {"a": )");
  EXPECT_CONTAINS(openError(index), index + ": index is not valid JSON: ");
  writeRaw("model.safetensors.index.json", "[]");
  EXPECT_CONTAINS(openError(index), index + ": index is not a JSON object");
  writeRaw("model.safetensors.index.json", R"({"metadata":{}})");
  EXPECT_CONTAINS(openError(index), index + ": missing 'weight_map'");
  writeRaw("model.safetensors.index.json", R"({"weight_map":[]})");
  EXPECT_CONTAINS(openError(index), "'weight_map' is not an object");
  writeRaw("model.safetensors.index.json",
           R"({"metadata":3,"weight_map":{}})");
  EXPECT_CONTAINS(openError(index), "'metadata' is not an object");
  writeIndex(R"({"a":1})");
  EXPECT_CONTAINS(openError(index),
                  "'weight_map' entry 'a' is 1, not a file name");
  writeIndex(R"({"a":"/etc/passwd"})");
  EXPECT_CONTAINS(openError(index),
                  "'weight_map' entry 'a' names shard '/etc/passwd', which is "
                  "not a relative path inside the checkpoint");
  writeIndex(R"({"a":"../model.safetensors"})");
  EXPECT_CONTAINS(openError(index), "not a relative path inside the "
                                    "checkpoint");
}

} // namespace
