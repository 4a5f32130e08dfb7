//===- Cache.cpp - compiled models cached by content ----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "compiler/Cache.h"

#include "glint/Version.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::glint;
using llvm::StringRef;

std::string compiler::defaultCacheDirectory() {
  if (auto dir = llvm::sys::Process::GetEnv("GLINT_CACHE_DIR");
      dir && !dir->empty())
    return *dir;
  llvm::SmallString<256> path;
  if (auto xdg = llvm::sys::Process::GetEnv("XDG_CACHE_HOME");
      xdg && !xdg->empty()) {
    path = *xdg;
  } else if (auto home = llvm::sys::Process::GetEnv("HOME");
             home && !home->empty()) {
    path = *home;
    llvm::sys::path::append(path, ".cache");
  } else {
    return "";
  }
  llvm::sys::path::append(path, "glint");
  return std::string(path);
}

/// The compiler's own build: a rebuilt glint (another commit, or local
/// changes) compiles the same IR differently.
static std::string compilerBuild() {
  static int anchor;
  std::string self = llvm::sys::fs::getMainExecutable(nullptr, &anchor);
  llvm::sys::fs::file_status status;
  if (self.empty() || llvm::sys::fs::status(self, status))
    return "unknown";
  return llvm::formatv(
             "{0} {1} {2}", self, status.getSize(),
             status.getLastModificationTime().time_since_epoch().count())
      .str();
}

std::string compiler::cacheKey(ModuleOp module, StringRef function,
                               StepMode step, const AttentionOptions &attention,
                               const LoopsOptions &loops,
                               const TargetOptions &target, bool gradient) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "glint " GLINT_VERSION " " GLINT_COMMIT "\n" << compilerBuild() << "\n";
  os << "function " << function << "\nstep " << static_cast<int>(step)
     << "\nattention " << attention.formulation << " " << attention.aggregate
     << " " << attention.attribution << "\nrecurrence-form "
     << recurrenceFormName(loops.recurrenceForm) << " " << loops.chunkSize
     << " " << loops.weightType << " " << loops.prepareWeights << "\ntarget "
     << static_cast<int>(target.kind) << " " << target.triple << " "
     << target.cpu << " " << target.features << " " << target.vectorWidth << " "
     << target.avx512 << " " << target.threads << " " << target.gpuArch << " "
     << target.gpuBinary << " " << target.gpuEmulate << " "
     << target.gpuTimeChunk << "\ngradient " << gradient << "\n";
  module->print(os);
  llvm::SHA256 hash;
  hash.update(text);
  return llvm::toHex(hash.final(), /*LowerCase=*/true);
}

llvm::Expected<compiler::CachedLibrary> compiler::compileCached(
    ModuleOp module, StringRef function, StringRef directory, StepMode step,
    const AttentionOptions &attention, const LoopsOptions &loops,
    const TargetOptions &target, bool gradient) {
  if (directory.empty())
    return llvm::createStringError(
        "no cache directory: set GLINT_CACHE_DIR, XDG_CACHE_HOME or HOME, or "
        "give --cache-dir");
  auto unwritable = [&](const llvm::Twine &why) {
    return llvm::createStringError(
        "the cache directory " + directory + " is not writable (" + why +
        "); give another with --cache-dir or GLINT_CACHE_DIR");
  };
  if (std::error_code ec = llvm::sys::fs::create_directories(directory))
    return unwritable(ec.message());
  if (std::error_code ec =
          llvm::sys::fs::access(directory, llvm::sys::fs::AccessMode::Write))
    return unwritable(ec.message());
  CachedLibrary library;
  llvm::SmallString<256> path(directory);
  llvm::sys::path::append(path, cacheKey(module, function, step, attention,
                                         loops, target, gradient) +
                                    ".so");
  library.path = std::string(path);
  if (llvm::sys::fs::exists(path)) {
    library.hit = true;
    return library;
  }
  if (llvm::Error e = compileToLibrary(module, function, library.path, step,
                                       attention, loops, target, gradient))
    return std::move(e);
  return library;
}
