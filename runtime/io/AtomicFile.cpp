//===- AtomicFile.cpp - files that appear complete or not at all ----------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/AtomicFile.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FileSystem.h"

using llvm::Error;
using llvm::StringRef;
using llvm::Twine;

Error mlir::glint::runtime::checkReplaceable(StringRef path) {
  // Only a missing path or a regular file is replaced: renaming over a FIFO,
  // a device node or a directory entry of another kind would turn it into a
  // regular file (as root, a device node), and opening a FIFO blocks.
  llvm::sys::fs::file_status status;
  if (path != "-" && !llvm::sys::fs::status(path, status) &&
      status.type() != llvm::sys::fs::file_type::regular_file)
    return llvm::createStringError(
        std::make_error_code(std::errc::invalid_argument),
        path + ": exists and is not a regular file; refusing to replace it");
  return Error::success();
}

Error mlir::glint::runtime::checkOutputPath(StringRef path) {
  if (path == "/dev/null")
    return Error::success();
  return checkReplaceable(path);
}

Error mlir::glint::runtime::writeFileAtomically(
    StringRef path, llvm::function_ref<void(llvm::raw_ostream &)> write) {
  auto fail = [&](const Twine &problem) {
    return llvm::createStringError(
        std::make_error_code(std::errc::invalid_argument),
        path + ": " + problem);
  };
  if (Error e = checkReplaceable(path))
    return e;
  int fd;
  llvm::SmallString<256> tempPath;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(
          path + ".tmp-%%%%%%%%", fd, tempPath))
    return fail("cannot create a temporary file: " + ec.message());

  std::error_code writeError;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    write(os);
    os.close();
    // raw_fd_ostream aborts on destruction with an unchecked error.
    if (os.has_error()) {
      writeError = os.error();
      os.clear_error();
    }
  }
  if (writeError) {
    llvm::sys::fs::remove(tempPath);
    return fail("cannot write '" + tempPath + "': " + writeError.message());
  }
  if (std::error_code ec = llvm::sys::fs::rename(tempPath, path)) {
    llvm::sys::fs::remove(tempPath);
    return fail("cannot rename '" + tempPath + "' into place: " +
                ec.message());
  }
  return Error::success();
}
