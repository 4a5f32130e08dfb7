//===- TargetOptions.h - what code is generated for ------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The machine a pipeline generates code for, as one value built by the tools
// (compiler/Target.h: from the host by default, or from --cpu,
// --vector-width, --threads) and passed to every pipeline builder, which
// hands each pass the options it needs. Passes never ask the host: the same
// IR compiled for the same TargetOptions is the same on every machine.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_TARGETOPTIONS_H
#define GLINT_PASSES_TARGETOPTIONS_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::glint {

/// How glint-chunk-recurrence lowers a matrix-state recurrence.
enum class RecurrenceForm {
  /// Chunked where the op-count model says it does less work (see the pass).
  Auto,
  /// Always the recurrent form (glint-vectorize-recurrence).
  Recurrent,
  /// The chunked form wherever it applies.
  Chunked,
};

/// The form's name on command lines (`auto`, `recurrent`, `chunked`).
inline llvm::StringRef recurrenceFormName(RecurrenceForm form) {
  switch (form) {
  case RecurrenceForm::Auto:
    return "auto";
  case RecurrenceForm::Recurrent:
    return "recurrent";
  case RecurrenceForm::Chunked:
    return "chunked";
  }
  return "auto";
}

/// The form named `name`, or nothing for an unknown name.
inline std::optional<RecurrenceForm> parseRecurrenceForm(llvm::StringRef name) {
  for (RecurrenceForm form : {RecurrenceForm::Auto, RecurrenceForm::Recurrent,
                              RecurrenceForm::Chunked})
    if (name == recurrenceFormName(form))
      return form;
  return std::nullopt;
}

struct TargetOptions {
  enum class Kind { Cpu, Cuda };
  /// What is targeted: the host CPU alone, or an NVIDIA GPU driven from the
  /// host (the fields below then describe the host side).
  Kind kind = Kind::Cpu;

  /// LLVM's target triple, CPU name and feature string ("+avx2,-avx512f,...")
  /// for code generation; an empty feature string means the CPU's own.
  std::string triple;
  std::string cpu;
  std::string features;

  /// f32 lanes of the widest vector registers the generated loops use: 4
  /// (SSE, NEON), 8 (AVX, AVX2) or 16 (AVX-512).
  int64_t vectorWidth = 8;
  /// Whether AVX-512F instructions may be named directly (vscalefps in the
  /// polynomial exp).
  bool avx512 = false;
  /// The threads the compiled code is expected to run on: picks the forms
  /// that keep them busy and sizes the parallel work.
  int64_t threads = 1;

  /// Kind::Cuda: the GPU's compute capability (`sm_90`, `sm_80`, ...).
  std::string gpuArch = "sm_90";
  /// Kind::Cuda: what the kernels are embedded as: `isa` (PTX, compiled by
  /// the driver when loaded), `bin` (a cubin for gpuArch) or `fatbin` (the
  /// cubin and the PTX). `bin` and `fatbin` need the CUDA toolkit's ptxas
  /// (and fatbinary) at compile time.
  std::string gpuBinary = "isa";
  /// Kind::Cuda: the CUDA toolkit's directory (empty: found on PATH).
  std::string cudaToolkit;
  /// Kind::Cuda: run the kernels as parallel loops on the host CPU instead
  /// (glint-gpu-launch-to-loops), to check the GPU lowering without a GPU;
  /// the result is a CPU library.
  bool gpuEmulate = false;
  /// Kind::Cuda: steps per chunk of the recurrences' time-parallel form
  /// (glint-lower-recurrence's time-chunk: one thread per channel and chunk,
  /// so that a scan over a few thousand channels fills the GPU); 0: one
  /// thread runs a channel's whole sequence.
  int64_t gpuTimeChunk = 64;
};

} // namespace mlir::glint

#endif // GLINT_PASSES_TARGETOPTIONS_H
