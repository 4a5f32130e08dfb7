//===- NpyTest.cpp - unit tests of .npy reading and writing ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Round trips check the writer against the reader; files built here byte by
// byte, the way numpy lays them out, check each against the format itself.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Npy.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace mlir::glint::runtime;
using llvm::StringRef;

namespace {

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

::testing::AssertionResult failsWith(llvm::Error error, StringRef substring) {
  if (!error)
    return ::testing::AssertionFailure()
           << "succeeded; expected an error containing '" << substring.str()
           << "'";
  std::string message = llvm::toString(std::move(error));
  if (StringRef(message).contains(substring))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "error '" << message << "' does not contain '" << substring.str()
         << "'";
}

/// A .npy file as numpy lays it out: magic, version, header length (u16 for
/// version 1, u32 after), \p dict padded with spaces and a newline to a
/// multiple of 64 bytes, then \p data.
std::string npyFile(StringRef dict, StringRef data, uint8_t major = 1) {
  size_t lengthBytes = major == 1 ? 2 : 4;
  size_t preamble = 8 + lengthBytes;
  std::string header = dict.str();
  while ((preamble + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::string file = "\x93NUMPY";
  file += char(major);
  file += char(0);
  char length[4];
  if (major == 1)
    llvm::support::endian::write16le(length, uint16_t(header.size()));
  else
    llvm::support::endian::write32le(length, uint32_t(header.size()));
  file.append(length, lengthBytes);
  file += header;
  file += data.str();
  return file;
}

std::string f64Bytes(std::initializer_list<double> values) {
  std::string bytes;
  for (double value : values) {
    char le[8];
    llvm::support::endian::write64le(le, llvm::bit_cast<uint64_t>(value));
    bytes.append(le, 8);
  }
  return bytes;
}

class NpyTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("glint-npy-test", dir);
    ASSERT_FALSE(ec) << ec.message();
  }

  void TearDown() override { llvm::sys::fs::remove_directories(dir); }

  std::string path(StringRef name) const {
    llvm::SmallString<256> result(dir);
    llvm::sys::path::append(result, name);
    return std::string(result);
  }

  std::string writeRaw(StringRef name, StringRef contents) {
    std::string file = path(name);
    std::error_code ec;
    llvm::raw_fd_ostream os(file, ec);
    EXPECT_FALSE(ec) << ec.message();
    os << contents;
    return file;
  }

  std::string readRaw(StringRef file) {
    auto buffer = llvm::MemoryBuffer::getFile(file);
    EXPECT_TRUE(bool(buffer)) << file.str();
    return buffer ? (*buffer)->getBuffer().str() : std::string();
  }

  /// Every entry of \p directory, by file name.
  std::vector<std::string> listDirectory(StringRef directory) {
    std::vector<std::string> names;
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(directory, ec), end;
         !ec && it != end; it.increment(ec))
      names.push_back(llvm::sys::path::filename(it->path()).str());
    EXPECT_FALSE(ec) << ec.message();
    llvm::sort(names);
    return names;
  }

  llvm::SmallString<256> dir;
};

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST_F(NpyTest, RoundTripsF32) {
  std::string file = path("x.npy");
  std::vector<float> values = {1.0f, -2.5f, 0.1f, 3.0e38f, -0.0f, 1.0e-45f};
  ASSERT_FALSE(bool(writeNpy(file, {2, 3}, llvm::ArrayRef<float>(values))));

  // The bytes are what numpy writes for np.save(file, x) with x float32
  // of shape (2, 3).
  std::string bytes = readRaw(file);
  std::string expectedHeader =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(bytes.size(), 128u + 24u);
  EXPECT_EQ(bytes.substr(0, 8), StringRef("\x93NUMPY\x01\x00", 8).str());
  EXPECT_EQ(llvm::support::endian::read16le(bytes.data() + 8), 118u);
  EXPECT_EQ(bytes.substr(10, expectedHeader.size()), expectedHeader);
  EXPECT_EQ(bytes[127], '\n');
  EXPECT_EQ(llvm::support::endian::read32le(bytes.data() + 128),
            0x3F800000u); // 1.0f

  auto array = readNpyF32(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(array->data, values);
  EXPECT_EQ(array->fileDType, NpyDType::F32);
  EXPECT_TRUE(std::signbit(array->data[4]));

  auto widened = readNpyF64(file);
  ASSERT_TRUE(bool(widened)) << llvm::toString(widened.takeError());
  EXPECT_EQ(widened->data[2], double(0.1f));
}

TEST_F(NpyTest, RoundTripsF64) {
  std::string file = path("x.npy");
  std::vector<double> values = {0.1, -1.0e300, 5.0e-324,
                                std::numeric_limits<double>::infinity()};
  ASSERT_FALSE(bool(writeNpy(file, {4}, llvm::ArrayRef<double>(values))));
  EXPECT_NE(readRaw(file).find("'descr': '<f8', 'fortran_order': False, "
                               "'shape': (4,), }"),
            std::string::npos);
  auto array = readNpyF64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, std::vector<int64_t>{4});
  EXPECT_EQ(array->data, values);
  EXPECT_EQ(array->fileDType, NpyDType::F64);

  auto narrowed = readNpyF32(file);
  ASSERT_TRUE(bool(narrowed)) << llvm::toString(narrowed.takeError());
  EXPECT_EQ(narrowed->data[0], 0.1f);
}

TEST_F(NpyTest, RoundTripsI64) {
  std::string file = path("ids.npy");
  std::vector<int64_t> values = {0, -1, 50277, 7, 8, 9,
                                 std::numeric_limits<int64_t>::max(),
                                 std::numeric_limits<int64_t>::min()};
  ASSERT_FALSE(
      bool(writeNpy(file, {2, 2, 2}, llvm::ArrayRef<int64_t>(values))));
  EXPECT_NE(readRaw(file).find("'descr': '<i8'"), std::string::npos);
  auto array = readNpyI64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(array->data, values);
  EXPECT_EQ(array->fileDType, NpyDType::I64);
}

TEST_F(NpyTest, RoundTripsI32) {
  std::string file = path("ids.npy");
  std::vector<int32_t> values = {-7, 0, std::numeric_limits<int32_t>::min()};
  ASSERT_FALSE(bool(writeNpy(file, {3, 1}, llvm::ArrayRef<int32_t>(values))));
  EXPECT_NE(readRaw(file).find("'descr': '<i4'"), std::string::npos);
  auto array = readNpyI64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(array->data, (std::vector<int64_t>{-7, 0, -2147483648LL}));
  EXPECT_EQ(array->fileDType, NpyDType::I32);
}

TEST_F(NpyTest, RoundTripsZeroDimensional) {
  std::string file = path("scalar.npy");
  std::vector<double> values = {42.5};
  ASSERT_FALSE(bool(writeNpy(file, {}, llvm::ArrayRef<double>(values))));
  EXPECT_NE(readRaw(file).find("'shape': (), }"), std::string::npos);
  auto array = readNpyF64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_TRUE(array->shape.empty());
  EXPECT_EQ(array->data, values);
}

TEST_F(NpyTest, RoundTripsEmpty) {
  std::string file = path("empty.npy");
  ASSERT_FALSE(bool(writeNpy(file, {0, 3}, llvm::ArrayRef<float>())));
  std::string bytes = readRaw(file);
  EXPECT_EQ(bytes.size(), 128u);
  EXPECT_NE(bytes.find("'shape': (0, 3), }"), std::string::npos);
  auto array = readNpyF32(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(array->data.empty());
}

TEST_F(NpyTest, OverwritesAndLeavesNoTemporaryFiles) {
  std::string file = path("x.npy");
  std::vector<int64_t> first = {1, 2, 3}, second = {4};
  ASSERT_FALSE(bool(writeNpy(file, {3}, llvm::ArrayRef<int64_t>(first))));
  ASSERT_FALSE(bool(writeNpy(file, {1}, llvm::ArrayRef<int64_t>(second))));
  auto array = readNpyI64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->data, second);
  EXPECT_EQ(listDirectory(dir), std::vector<std::string>{"x.npy"});
}

//===----------------------------------------------------------------------===//
// Files from elsewhere
//===----------------------------------------------------------------------===//

TEST_F(NpyTest, ReadsHandBuiltFiles) {
  // Double-quoted strings, no trailing comma, other key order and spacing:
  // all valid Python, all accepted.
  std::string file = writeRaw(
      "v1.npy",
      npyFile("{\"shape\":(3,),'fortran_order':False,'descr':'<f8'}",
              f64Bytes({1.0, -0.5, 1.0e-310})));
  auto array = readNpyF64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, std::vector<int64_t>{3});
  EXPECT_EQ(array->data, (std::vector<double>{1.0, -0.5, 1.0e-310}));

  // Version 2.0 differs only in a 4-byte header length.
  file = writeRaw(
      "v2.npy",
      npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }",
              f64Bytes({2.0}), /*major=*/2));
  array = readNpyF64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->shape, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(array->data, std::vector<double>{2.0});
}

TEST_F(NpyTest, RejectsTruncatedFiles) {
  std::string file = path("x.npy");
  std::vector<float> values(6, 1.0f);
  ASSERT_FALSE(bool(writeNpy(file, {2, 3}, llvm::ArrayRef<float>(values))));
  std::string bytes = readRaw(file);

  std::string truncated = writeRaw("data.npy", StringRef(bytes).drop_back());
  EXPECT_TRUE(failsWith(readNpyF32(truncated),
                        truncated + ": data holds 23 bytes but '<f4' (2, 3) "
                                    "needs 24"));
  std::string extra = writeRaw("extra.npy", bytes + "x");
  EXPECT_TRUE(failsWith(readNpyF32(extra),
                        "data holds 25 bytes but '<f4' (2, 3) needs 24"));
  std::string header = writeRaw("header.npy", StringRef(bytes).take_front(50));
  EXPECT_TRUE(failsWith(readNpyF32(header),
                        header + ": header length 118 runs past the end of "
                                 "the file (50 bytes)"));
  std::string preamble =
      writeRaw("preamble.npy", StringRef(bytes).take_front(9));
  EXPECT_TRUE(failsWith(readNpyF32(preamble),
                        "file is truncated before the header length"));
  std::string empty = writeRaw("empty.npy", "");
  EXPECT_TRUE(failsWith(readNpyF32(empty),
                        empty + ": not a .npy file (bad magic)"));
  EXPECT_TRUE(failsWith(readNpyF32(path("missing.npy")),
                        "missing.npy: No such file or directory"));
}

TEST_F(NpyTest, RejectsBadMagicAndVersion) {
  std::string good =
      npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
              f64Bytes({1.0}));
  std::string badMagic = good;
  badMagic[1] = 'X';
  std::string file = writeRaw("magic.npy", badMagic);
  EXPECT_TRUE(failsWith(readNpyF64(file),
                        file + ": not a .npy file (bad magic)"));
  std::string badVersion = good;
  badVersion[6] = 9;
  file = writeRaw("version.npy", badVersion);
  EXPECT_TRUE(failsWith(readNpyF64(file),
                        file + ": unsupported .npy format version 9.0"));
}

TEST_F(NpyTest, RejectsFortranOrder) {
  std::string file = writeRaw(
      "f.npy",
      npyFile("{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }",
              f64Bytes({1.0})));
  EXPECT_TRUE(failsWith(readNpyF64(file),
                        file + ": fortran_order is True; only C-order arrays "
                               "are supported"));
}

TEST_F(NpyTest, RejectsUnsupportedDescr) {
  for (StringRef descr : {">f4", "|u1", "<f2", "|b1", "<c8"}) {
    std::string file = writeRaw(
        "d.npy", npyFile(("{'descr': '" + descr +
                          "', 'fortran_order': False, 'shape': (2,), }")
                             .str(),
                         std::string(8, '\0')));
    EXPECT_TRUE(failsWith(readNpyF32(file),
                          "unsupported descr '" + descr.str() +
                              "'; supported: '<f4', '<f8', '<i8', '<i4'"));
  }
}

TEST_F(NpyTest, RejectsWrongReader) {
  std::string file = path("ids.npy");
  std::vector<int64_t> ids = {1};
  ASSERT_FALSE(bool(writeNpy(file, {1}, llvm::ArrayRef<int64_t>(ids))));
  EXPECT_TRUE(failsWith(readNpyF32(file),
                        file + ": holds '<i8'; readNpyF32 reads '<f4' and "
                               "'<f8'"));
  std::string floats = path("x.npy");
  std::vector<float> values = {1.0f};
  ASSERT_FALSE(bool(writeNpy(floats, {1}, llvm::ArrayRef<float>(values))));
  EXPECT_TRUE(failsWith(readNpyI64(floats),
                        "holds '<f4'; readNpyI64 reads '<i8' and '<i4'"));
}

/// A header that ends inside a shape extent, without the padding numpy
/// writes (the first crash fuzz-npy found: the parser stepped past the end
/// of the header).
TEST_F(NpyTest, RejectsHeaderEndingInsideTheShape) {
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (12";
  std::string bytes = "\x93NUMPY";
  bytes += char(1);
  bytes += char(0);
  bytes += char(dict.size());
  bytes += char(0);
  bytes += dict + std::string(96, '\0');
  std::string file = writeRaw("cut.npy", bytes);
  EXPECT_TRUE(failsWith(readNpyF64(file), "expected ',' or ')' in the shape"));
}

TEST_F(NpyTest, RejectsMalformedHeaders) {
  auto headerError = [&](StringRef dict) {
    std::string file = writeRaw("h.npy", npyFile(dict, f64Bytes({1.0})));
    auto array = readNpyF64(file);
    if (array)
      return std::string("<read>");
    return llvm::toString(array.takeError());
  };
  auto contains = [](const std::string &text, StringRef substring) {
    return StringRef(text).contains(substring);
  };
  std::string error =
      headerError("{'descr': '<f8', 'fortran_order': False, }");
  EXPECT_TRUE(contains(error, "malformed header: missing 'shape'")) << error;
  error = headerError("{'descr': '<f8', 'shape': (1,), }");
  EXPECT_TRUE(contains(error, "missing 'fortran_order'")) << error;
  error = headerError("{'fortran_order': False, 'shape': (1,), }");
  EXPECT_TRUE(contains(error, "missing 'descr'")) << error;
  error = headerError(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1, }");
  EXPECT_TRUE(contains(error, "unexpected key 'x'")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}");
  EXPECT_TRUE(contains(error, "expected True or False")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(-1,)}");
  EXPECT_TRUE(contains(error, "expected a non-negative integer")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(99999999999999999999,)}");
  EXPECT_TRUE(contains(error, "shape extent out of range")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(4294967296, 4294967296, 4294967296)}");
  EXPECT_TRUE(contains(error, "more bytes than a 64-bit size holds")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': False, 'shape': (1,");
  EXPECT_TRUE(contains(error, "malformed header")) << error;
  error = headerError("{'descr': [('a', '<f8')], 'fortran_order': False, "
                      "'shape': (1,)}");
  EXPECT_TRUE(contains(error, "expected a string")) << error;
  error = headerError("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(1,)} extra");
  EXPECT_TRUE(contains(error, "unexpected text after the dict")) << error;
  error = headerError("{'descr: '<f8'}");
  EXPECT_TRUE(contains(error, "malformed header")) << error;
}

//===----------------------------------------------------------------------===//
// Failed writes
//===----------------------------------------------------------------------===//

TEST_F(NpyTest, FailedWriteInUnwritableDirectoryLeavesNoFile) {
  // A directory that cannot hold files, whoever runs the test (root ignores
  // permission bits): its path runs through a regular file.
  std::string notADirectory = writeRaw("file", "contents");
  std::string file = notADirectory + "/x.npy";
  std::vector<float> values = {1.0f};
  EXPECT_TRUE(failsWith(writeNpy(file, {1}, llvm::ArrayRef<float>(values)),
                        file + ": cannot create a temporary file: "));
  EXPECT_FALSE(llvm::sys::fs::exists(file));

  std::string missing = path("no-such-directory/x.npy");
  EXPECT_TRUE(failsWith(writeNpy(missing, {1}, llvm::ArrayRef<float>(values)),
                        "cannot create a temporary file: "));
  EXPECT_EQ(listDirectory(dir), std::vector<std::string>{"file"});
}

TEST_F(NpyTest, DirectoryTargetIsRefusedAndLeavesNoFile) {
  // A destination that exists and is not a regular file (here a directory)
  // is refused before anything is written: no temporary is left and the
  // directory stays as it was.
  std::string target = path("target.npy");
  ASSERT_FALSE(llvm::sys::fs::create_directory(target));
  std::vector<double> values = {1.0, 2.0};
  EXPECT_TRUE(failsWith(writeNpy(target, {2}, llvm::ArrayRef<double>(values)),
                        target + ": exists and is not a regular file; "
                                 "refusing to replace it"));
  EXPECT_TRUE(llvm::sys::fs::is_directory(target));
  EXPECT_EQ(listDirectory(dir), std::vector<std::string>{"target.npy"});
  EXPECT_TRUE(listDirectory(target).empty());
}

TEST_F(NpyTest, RejectsShapeDataMismatchWithoutTouchingTheFile) {
  std::string file = path("x.npy");
  std::vector<int32_t> old = {5};
  ASSERT_FALSE(bool(writeNpy(file, {1}, llvm::ArrayRef<int32_t>(old))));
  std::vector<int32_t> values = {1, 2, 3, 4, 5};
  EXPECT_TRUE(failsWith(writeNpy(file, {2, 3}, llvm::ArrayRef<int32_t>(values)),
                        file + ": shape (2, 3) has 6 elements but 5 were "
                               "given"));
  EXPECT_TRUE(failsWith(writeNpy(file, {-1}, llvm::ArrayRef<int32_t>(values)),
                        "invalid shape (-1,)"));
  auto array = readNpyI64(file);
  ASSERT_TRUE(bool(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->data, std::vector<int64_t>{5});
  EXPECT_EQ(listDirectory(dir), std::vector<std::string>{"x.npy"});
}

} // namespace
