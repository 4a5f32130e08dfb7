//===- GlintInterfaces.h - per-op rules of glint's passes -------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The op interfaces of GlintInterfaces.td and what their methods are given.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_DIALECT_GLINTINTERFACES_H
#define GLINT_DIALECT_GLINTINTERFACES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"

#include <string>

namespace mlir::glint {

/// Which factors a formulation of the implicit attention keeps.
struct AttentionFactors {
  bool exact = true; ///< unified: the matrix plus offset is the layer
  bool conv = true;  ///< conv1d and token shift
  bool gate = true;  ///< multiplications by a data-dependent control
  bool act = true;   ///< activation diagonals
  bool norm = true;  ///< normalisation diagonals
  bool skip = true;  ///< the recurrence's skip term (Mamba's D)
};

/// What the implicit-attention rule of an op (`ImplicitAttentionOpInterface`)
/// sees of one layer being rewritten by glint-to-attention: the values on the
/// layer's value path, each with its matrices (a `!glint.map` from the value
/// input) and, for the exact formulation, its offset. The pass implements the
/// bookkeeping; the helpers build what several rules share.
class AttentionFormBuilder {
public:
  virtual ~AttentionFormBuilder();

  /// The builder; its insertion point is right after the op being mirrored.
  virtual OpBuilder &getBuilder() = 0;
  /// The factors the formulation keeps.
  virtual const AttentionFactors &getFactors() const = 0;
  /// Whether `value` is on the value path.
  virtual bool onPath(Value value) const = 0;
  /// The matrices of `value`, a value on the path.
  virtual Value getMap(Value value) const = 0;
  /// The offset of `value`, a value on the path (null unless exact).
  virtual Value getOffset(Value value) const = 0;
  /// Puts `result` on the path with its matrices and offset.
  virtual void record(Value result, Value map, Value offset) = 0;

  bool isExact() const { return getFactors().exact; }
  /// The offset of a result of `op` when the matrices cannot change it: the
  /// same op applied to the offset of `pathOperand` (exact formulation), or
  /// null.
  Value cloneOnOffset(Operation *op, Value pathOperand);
  /// `map` left-multiplied by the diagonal `gain` when `keep`, else `map`.
  Value scaled(Location loc, Value map, Value gain, bool keep);
  /// `offset * gain` (exact formulation), or null.
  Value mulOffset(Location loc, Value offset, Value gain);
  /// A tensor of zeros shaped like `like` (the offset of a layer's value
  /// input).
  Value zerosLike(Location loc, Value like);
  /// The per-channel vector `vector` (`[C]`) broadcast to the shape of `like`
  /// (`[..., C]`).
  Value broadcastChannels(Location loc, Value vector, Value like);
};

/// What a backward rule (DifferentiableOpInterface) reads and extends: the
/// cotangents of the values of the function being differentiated.
class GradientBuilder {
public:
  virtual ~GradientBuilder();

  /// The builder; its insertion point is where the backward ops go (after
  /// every forward value).
  virtual OpBuilder &getBuilder() = 0;
  /// The cotangent of `value`, or null when it is zero.
  virtual Value getCotangent(Value value) const = 0;
  /// Whether `value` depends on the differentiated input, so that its
  /// cotangent is wanted.
  virtual bool isActive(Value value) const = 0;
  /// Adds `cotangent` to the cotangent of `value`.
  virtual void accumulate(Value value, Value cotangent) = 0;

  /// The sizes of `like` as index values (constants where static).
  SmallVector<OpFoldResult> sizesOf(Location loc, Value like);
  /// An uninitialised tensor shaped like `like`.
  Value emptyLike(Location loc, Value like);
  /// A tensor shaped like `like` holding `value` everywhere.
  Value splatLike(Location loc, Value like, double value);
  /// The per-channel vector `vector` (`[C]`, or `[G, C/G]` for a grouped
  /// view) broadcast to the shape of `like` (`[..., C]`, `[..., G, C/G]`).
  Value broadcastChannels(Location loc, Value vector, Value like);
};

} // namespace mlir::glint

#include "dialect/GlintInterfaces.h.inc"

#endif // GLINT_DIALECT_GLINTINTERFACES_H
