//===- ImplicitAttention.h - attention-form maps in double ------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The reference evaluator's model of a `!glint.map`: the per-channel L × L
// matrices of one layer's attention form, kept as the product of its factors
// and materialised one (batch, channel) at a time, in double precision, from
// closed forms (log-space segment sums for recurrences, max-stabilised
// softmax weights). Peak memory is a few L × L matrices, never C × L × L.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_REFERENCE_IMPLICITATTENTION_H
#define GLINT_REFERENCE_IMPLICITATTENTION_H

#include "reference/ReferenceEvaluator.h"

#include <memory>
#include <optional>

namespace mlir::glint::reference {

class MapNode;
using MapRef = std::shared_ptr<MapNode>;

/// The controls of a recurrence (see glint.recurrence); arrays are copied.
struct ScanControls {
  std::optional<Array> q;
  Array k, logDecay;
  std::optional<Array> delta, bonus, skip;
  bool reverse = false, normalize = false;
};

/// How map_reduce combines channels.
enum class Aggregate { Mean, MeanAbs, Sum, Full };

/// `valueShape` is the run-time shape `[B, L, channels...]` of the map's
/// value; factories check their operands against it.
llvm::Expected<MapRef> mapIdentity(llvm::ArrayRef<int64_t> valueShape);
llvm::Expected<MapRef> mapConv(MapRef in, const Array &weight, bool reverse);
MapRef mapShift(MapRef in);
llvm::Expected<MapRef> mapScale(MapRef in, const Array &gain);
llvm::Expected<MapRef> mapScan(MapRef in, ScanControls controls);
llvm::Expected<MapRef> mapAttention(MapRef in, const Array &q, const Array &k,
                                    double scale, std::optional<int64_t> window);
llvm::Expected<MapRef> mapAdd(MapRef lhs, MapRef rhs);
llvm::Expected<MapRef> mapReshape(MapRef in,
                                  llvm::ArrayRef<int64_t> valueShape);

/// Reduces over `channels` (all when empty): `[B, L, L]`, or `[B, C, L, L]`
/// for Full; with `row`, only that row (negative: from the end).
llvm::Expected<Array> reduceMap(const MapRef &map, Aggregate aggregate,
                                llvm::ArrayRef<int64_t> channels,
                                std::optional<int64_t> row);
/// `y[b, :, c] = A_{b,c} · x[b, :, src(c)]`, shaped like the map's value.
llvm::Expected<Array> applyMap(const MapRef &map, const Array &x);
/// mean_c max(0, A_c[b, i, j] · grad[b, i, c] · input[b, j, src(c)]), one
/// channel's matrix at a time: the gradient-weighted attribution map.
llvm::Expected<Array> attributeMap(const MapRef &map, const Array &grad,
                                   const Array &input);

/// The run-time value shape of a map.
llvm::ArrayRef<int64_t> mapValueShape(const MapRef &map);

} // namespace mlir::glint::reference

#endif // GLINT_REFERENCE_IMPLICITATTENTION_H
