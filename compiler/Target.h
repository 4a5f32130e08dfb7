//===- Target.h - the machine glint compiles for ----------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Builds the TargetOptions value the pipelines take: from the host by
// default, or from a CPU name and overrides given on a command line. This is
// the one place that asks the machine what it is; passes only read the
// value they are given.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_COMPILER_TARGET_H
#define GLINT_COMPILER_TARGET_H

#include "passes/TargetOptions.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace mlir::glint::compiler {

/// The threads OpenMP gives compiled code when nothing sets them at run time,
/// as far as this process can tell: the first entry of OMP_NUM_THREADS if it
/// is set (glint-run and glint-bench set it from --threads), else the
/// hardware threads.
int64_t defaultThreads();

/// The host CPU: its triple, name and features, its widest vector unit (16
/// f32 lanes with AVX-512F, 8 with AVX, else 4) and defaultThreads().
TargetOptions hostTarget();

/// A target from command-line choices: `cpu` is an LLVM CPU name
/// (`skylake-avx512`, `znver4`, `haswell`, `x86-64-v3`, ...) of the host's
/// architecture, or empty / `native` / `host` for the host itself;
/// `vectorWidth` (4, 8 or 16) and `threads` override what the CPU and
/// defaultThreads() give when positive. Unknown CPUs and bad values are
/// errors that say what is accepted.
llvm::Expected<TargetOptions>
makeTarget(llvm::StringRef cpu, int64_t vectorWidth = 0, int64_t threads = 0);

/// The CUDA toolkit's directory (the one holding bin/ptxas): $CUDA_HOME,
/// $CUDA_PATH, the one of the ptxas on PATH, or /usr/local/cuda; empty if
/// none is found.
std::string findCudaToolkit();

/// Makes `target` (whose host side is already set, e.g. by makeTarget) a
/// CUDA target for `gpuArch` (`sm_80`, `sm_90`, ...), its kernels embedded
/// as `binary`: `isa` (PTX), `bin` (cubin), `fatbin`, or `auto` (fatbin when
/// the CUDA toolkit is found, else PTX). Bad names, and cubins without the
/// toolkit, are errors that say what is accepted.
llvm::Error makeCudaTarget(TargetOptions &target, llvm::StringRef gpuArch,
                           llvm::StringRef binary = "auto");

} // namespace mlir::glint::compiler

#endif // GLINT_COMPILER_TARGET_H
