//===- FuzzSupport.h - shared helpers of the libFuzzer harnesses -*- C++
//-*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The loaders under test read files by path (they check the file type, map
// it, name it in errors), so each harness writes the fuzzer's bytes to a
// file in a private scratch directory and hands the loader that path: the
// real entry point, not a buffer-only shortcut the tools never call.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_FUZZ_FUZZSUPPORT_H
#define GLINT_TEST_FUZZ_FUZZSUPPORT_H

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <string>

/// libLLVM.so and libMLIR.so are not instrumented, but the inline parts of
/// LLVM's BumpPtrAllocator compiled into the harness poison and unpoison
/// slabs (LLVM_ADDRESS_SANITIZER_BUILD) that the uninstrumented library
/// code then fills without unpoisoning: a false "use-after-poison". Manual
/// poisoning is therefore off; every other check stays.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

namespace glint_fuzz {

/// A scratch directory, made once per process (the harness's fuzzing jobs
/// are separate processes, so they never share one).
inline const std::string &scratchDirectory() {
  static const std::string directory = [] {
    llvm::SmallString<128> path;
    if (std::error_code ec =
            llvm::sys::fs::createUniqueDirectory("glint-fuzz", path)) {
      llvm::errs() << "glint fuzz: cannot make a scratch directory: "
                   << ec.message() << "\n";
      std::abort();
    }
    return std::string(path);
  }();
  return directory;
}

/// Writes `bytes` to `name` in the scratch directory, returning its path.
inline std::string writeScratch(llvm::StringRef name, llvm::StringRef bytes) {
  llvm::SmallString<256> path(scratchDirectory());
  llvm::sys::path::append(path, name);
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec) {
    llvm::errs() << "glint fuzz: cannot write " << path << ": " << ec.message()
                 << "\n";
    std::abort();
  }
  os << bytes;
  return std::string(path);
}

inline llvm::StringRef asText(const uint8_t *data, size_t size) {
  return llvm::StringRef(reinterpret_cast<const char *>(data), size);
}

/// Drops an expected error: a rejected input is a correct outcome.
inline void ignore(llvm::Error error) { llvm::consumeError(std::move(error)); }
template <typename T> void ignore(llvm::Expected<T> value) {
  if (!value)
    llvm::consumeError(value.takeError());
}

} // namespace glint_fuzz

#endif // GLINT_TEST_FUZZ_FUZZSUPPORT_H
