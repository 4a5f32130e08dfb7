//===- Cache.h - compiled models cached by content --------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The compile cache behind the one-command run (glint-run -m DIR): a model's
// shared library is kept under a key that hashes everything the code depends
// on, so that the second run of the same model starts at once:
//
//   SHA-256( glint's version and commit, the compiler's own build,
//            the glint IR as printed (architecture and shapes; the weights'
//            values are bound at load time, so they are not part of it),
//            the entry function, the target (triple, CPU, features, vector
//            width, threads, GPU), the step, attention and loop options,
//            whether the gradient entry is added )
//
// Libraries are written atomically: concurrent runs cannot see half a file.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_COMPILER_CACHE_H
#define GLINT_COMPILER_CACHE_H

#include "compiler/Compiler.h"

namespace mlir::glint::compiler {

/// The cache directory: `$GLINT_CACHE_DIR`, else `$XDG_CACHE_HOME/glint`,
/// else `$HOME/.cache/glint`; empty if none of these is set.
std::string defaultCacheDirectory();

/// The key of a library compiled from `module` with these options.
std::string cacheKey(ModuleOp module, llvm::StringRef function, StepMode step,
                     const AttentionOptions &attention,
                     const LoopsOptions &loops, const TargetOptions &target,
                     bool gradient = false);

/// A library in the cache.
struct CachedLibrary {
  std::string path;
  /// Whether it was there already (else it was compiled now).
  bool hit = false;
};

/// The library for `module` in `directory` (created if missing), compiled
/// with compileToLibrary when it is not there yet. An unwritable directory
/// is an error that names it and says how to choose another.
llvm::Expected<CachedLibrary> compileCached(
    ModuleOp module, llvm::StringRef function, llvm::StringRef directory,
    StepMode step = StepMode::Auto, const AttentionOptions &attention = {},
    const LoopsOptions &loops = {}, const TargetOptions &target = hostTarget(),
    bool gradient = false);

} // namespace mlir::glint::compiler

#endif // GLINT_COMPILER_CACHE_H
