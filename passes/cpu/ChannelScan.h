//===- ChannelScan.h - the per-channel forward scan, shared ----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// glint-vectorize-recurrence's per-channel form (V = 1: Mamba-1, Vision
// Mamba, RG-LRU), callable from glint-vectorize-gradients: a gradient
// function holds the forward `glint.recurrence` and its
// `glint.recurrence_grad` on the same operands, and the backward scan
// restarts from the states the forward passes through anyway. Lowered
// together, the forward also stores those states every C steps and the
// backward reads them, instead of running the whole forward scan a second
// time to find them.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_CHANNELSCAN_H
#define GLINT_PASSES_CPU_CHANNELSCAN_H

#include "dialect/GlintOps.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::glint {

/// How the per-channel forward scan is laid out (glint-vectorize-recurrence's
/// options of the same names).
struct ChannelScanOptions {
  /// f32 lanes per vector: W channels side by side.
  int64_t width = 8;
  /// Steps each chunk of channels runs before the next time block.
  int64_t timeBlock = 4;
  /// Chunks of channel blocks per batch element (the parallel work).
  int64_t channelChunks = 2;
  /// State vectors kept in registers per pass over a time block (0: 8 with
  /// 8 lanes or fewer, else 16).
  int64_t keyBlock = 0;
};

/// Whether `op` has glint-vectorize-recurrence's per-channel form.
bool isChannelRecurrence(RecurrenceOp op);

/// Lowers `op` (isChannelRecurrence, no initial or final state) to that
/// form, and also returns its state before every `every`-th step,
/// [B, ceil(H / W), ceil(L / every) + 1, K, W]: slot c of block j holds the
/// K vectors of channels j W .. j W + W - 1 before step c · every (in the
/// op's order: from the end when reversed) for every c · every < L; the
/// last slot is scratch. `every` must be a multiple of the time block.
Value lowerChannelRecurrenceWithCheckpoints(RecurrenceOp op,
                                            RewriterBase &rewriter,
                                            const ChannelScanOptions &options,
                                            int64_t every);

} // namespace mlir::glint

#endif // GLINT_PASSES_CPU_CHANNELSCAN_H
