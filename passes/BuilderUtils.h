//===- BuilderUtils.h - builders the lowering passes share ------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What every vectorising pass (recurrence, chunked recurrence, matmul,
// conv) builds the same way: 1-D transfers along a tensor's contiguous axis
// (f32 lanes, zero padding past the end unless in bounds), the slices a
// forall iteration publishes, and the short builders of their lowering
// classes (LoweringBuilder).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_BUILDERUTILS_H
#define GLINT_PASSES_BUILDERUTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::glint {

/// `lanes` consecutive elements of `source` along its last axis from
/// `indices`, in its element type; lanes past the end read 0 (masked) unless
/// `inBounds`.
inline Value readLanes(OpBuilder &b, Location loc, Value source,
                       ValueRange indices, int64_t lanes, bool inBounds) {
  Type element = cast<ShapedType>(source.getType()).getElementType();
  Value zero = arith::ConstantOp::create(
      b, loc, cast<TypedAttr>(b.getZeroAttr(element)));
  return vector::TransferReadOp::create(
      b, loc, VectorType::get({lanes}, element), source, indices, zero,
      ArrayRef<bool>{inBounds});
}

/// Writes `vector` into `dest` along its last axis from `indices`; lanes
/// past the end are dropped (masked) unless `inBounds`. Returns the new
/// tensor.
inline Value writeLanes(OpBuilder &b, Location loc, Value vector, Value dest,
                        ValueRange indices, bool inBounds) {
  return vector::TransferWriteOp::create(b, loc, vector, dest, indices,
                                         ArrayRef<bool>{inBounds})
      .getResult();
}

/// Publishes `value` into `dest` at `offsets` / `sizes` (unit strides) from
/// the terminator of the forall that `inParallel` ends.
inline void publish(OpBuilder &b, Location loc, scf::InParallelOp inParallel,
                    Value value, Value dest, ArrayRef<OpFoldResult> offsets,
                    ArrayRef<OpFoldResult> sizes) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(inParallel.getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, value, dest, offsets, sizes,
      SmallVector<OpFoldResult>(offsets.size(), b.getIndexAttr(1)));
}

/// The key group that value head `head` reads when `heads` value heads
/// share `groups` key groups (heads is a multiple of groups): the head itself
/// when each head has its own group, 0 when there is one group, else
/// head / (heads / groups). `headsPerGroup` is that ratio when the caller
/// has already built it; otherwise it is built here.
inline Value groupOf(OpBuilder &b, Location loc, Value head, OpFoldResult heads,
                     OpFoldResult groups, Value headsPerGroup = {}) {
  std::optional<int64_t> h = getConstantIntValue(heads),
                         g = getConstantIntValue(groups);
  if (h && g && *h == *g)
    return head;
  if (g && *g == 1)
    return arith::ConstantIndexOp::create(b, loc, 0);
  Value ratio = headsPerGroup;
  if (!ratio && h && g)
    ratio = arith::ConstantIndexOp::create(b, loc, *h / *g);
  else if (!ratio)
    ratio = arith::DivSIOp::create(
        b, loc, getValueOrCreateConstantIndexOp(b, loc, heads),
        getValueOrCreateConstantIndexOp(b, loc, groups));
  return arith::DivSIOp::create(b, loc, head, ratio);
}

/// The sum of the lanes of the vector `x`, in any order (`reassoc`: a tree
/// of shuffles and vector adds; without it LLVM adds the lanes one after
/// the other, a chain of scalar adds).
inline Value addLanes(OpBuilder &b, Location loc, Value x) {
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, x,
                                     arith::FastMathFlags::reassoc);
}

/// The lane sums of K vectors of W lanes (K and W powers of two, K <= W)
/// as one vector of K lanes, by a transposing tree: two vectors x, y whose
/// lanes hold segments of partial sums (one segment per source vector, s
/// lanes each) become one, x's and y's segments interleaved, each of s / 2
/// lanes: the low halves of the segments plus the high halves (two
/// shuffles, one add). After log2(K) levels one vector holds K segments of
/// W / K lanes; halving them in place leaves one lane each, and a last
/// shuffle puts the sources in order. 2(K - 1) + 2 log2(W / K) + 1
/// shuffles for K vectors, against K horizontal reductions.
Value laneSums(OpBuilder &b, Location loc, ArrayRef<Value> vectors);

/// The transpose of the square matrix whose rows are `rows` (W vectors of W
/// lanes, W a power of two): log2(W) levels of W two-source shuffles, level
/// b swapping the off-diagonal b × b blocks of each pair of rows b apart
/// (element (i, k) with bit b clear in i and set in k trades places with
/// (i + b, k − b)); after every bit, (i, k) is at (k, i). W log2(W)
/// shuffles, against W² lane extracts and inserts.
SmallVector<Value> transposeSquare(OpBuilder &b, Location loc,
                                   ArrayRef<Value> rows);

/// The first `keys` columns of W rows of `source` ([..., H, K], K >= `keys`)
/// as `keys` vectors of W lanes: lane r of column n is
/// source[prefix..., rows[r], n] (W = rows.size(), a power of two). Each
/// row is read W keys at a time (masked past K) and each W x W tile
/// transposed in registers (transposeSquare): W log2(W) shuffles per tile
/// against W² lane inserts.
SmallVector<Value> readColumns(OpBuilder &b, Location loc, Value source,
                               ArrayRef<Value> prefix, ArrayRef<Value> rows,
                               int64_t keys);

/// The short builders that the lowering classes of the vectorising passes
/// share, all at the location of the op being lowered; each class derives
/// from it and adds its own.
class LoweringBuilder {
protected:
  explicit LoweringBuilder(Location loc)
      : loc(loc), f32(Float32Type::get(loc.getContext())) {}

  Value index(OpBuilder &b, int64_t i) const {
    return arith::ConstantIndexOp::create(b, loc, i);
  }
  Value minIndex(OpBuilder &b, Value x, Value y) const {
    return arith::MinSIOp::create(b, loc, x, y);
  }
  /// A vector of `lanes` f32 zeros.
  Value zeros(OpBuilder &b, int64_t lanes) const {
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(VectorType::get({lanes}, f32), 0.0f));
  }
  /// `scalar` in each of `lanes` f32 lanes.
  Value splat(OpBuilder &b, Value scalar, int64_t lanes) const {
    return vector::BroadcastOp::create(b, loc, VectorType::get({lanes}, f32),
                                       scalar);
  }
  /// `source` [..., X, 1] as [..., X].
  Value dropUnitLast(OpBuilder &b, Value source) const {
    auto type = cast<RankedTensorType>(source.getType());
    SmallVector<ReassociationIndices> groups;
    for (int64_t i = 0; i + 2 < type.getRank(); ++i)
      groups.push_back({i});
    groups.push_back({type.getRank() - 2, type.getRank() - 1});
    return tensor::CollapseShapeOp::create(b, loc, source, groups);
  }
  /// A read-only view of `source` as a buffer of any strided layout, for
  /// prefetching: bufferization replaces it by the tensor's own buffer.
  Value prefetchView(OpBuilder &b, Value source) const {
    auto type = cast<RankedTensorType>(source.getType());
    SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
    auto layout =
        StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
    return bufferization::ToBufferOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType(), layout),
        source, /*read_only=*/true);
  }
  /// x * y + z.
  Value fma(OpBuilder &b, Value x, Value y, Value z) const {
    return math::FmaOp::create(b, loc, x, y, z);
  }
  /// log2(e) in each of `lanes` f32 lanes.
  Value log2e(OpBuilder &b, int64_t lanes) const {
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(VectorType::get({lanes}, f32),
                               static_cast<float>(M_LOG2E)));
  }
  /// 2^x for the decay of a step, x = delta * A log2(e) <= 0 and finite:
  /// `ninf` lets glint-approximate-math leave out its clamps. The forward
  /// scans and the backward scans' recomputed states use it alike.
  Value decayExp2(OpBuilder &b, Value x) const {
    return math::Exp2Op::create(b, loc, x, arith::FastMathFlags::ninf);
  }
  Value element(OpBuilder &b, Value source, ValueRange indices) const {
    return tensor::ExtractOp::create(b, loc, source, indices);
  }
  /// See readLanes.
  Value read(OpBuilder &b, Value source, ValueRange indices, int64_t lanes,
             bool inBounds) const {
    return readLanes(b, loc, source, indices, lanes, inBounds);
  }
  /// See writeLanes.
  Value write(OpBuilder &b, Value vector, Value dest, ValueRange indices,
              bool inBounds) const {
    return writeLanes(b, loc, vector, dest, indices, inBounds);
  }

  /// The inner loop of a register-blocked product, over k in [lower,
  /// upper): `acc` holds rows x vectors accumulators (row after row) of
  /// `lanes` lanes; each step loads the `vectors` vectors `load(k)` once,
  /// broadcasts `scalar(k, r)` once per row r, and adds their products.
  /// Returns the accumulators after the loop.
  SmallVector<Value>
  outerProducts(OpBuilder &b, Value lower, Value upper, ValueRange acc,
                int64_t rows, int64_t vectors, int64_t lanes,
                function_ref<SmallVector<Value>(OpBuilder &, Value)> load,
                function_ref<Value(OpBuilder &, Value, int64_t)> scalar) const {
    auto steps = scf::ForOp::create(
        b, loc, lower, upper, index(b, 1), acc,
        [&](OpBuilder &kb, Location, Value k, ValueRange carried) {
          SmallVector<Value> loaded = load(kb, k);
          assert(int64_t(loaded.size()) == vectors);
          SmallVector<Value> next(carried);
          for (int64_t r = 0; r < rows; ++r) {
            Value factor = splat(kb, scalar(kb, k, r), lanes);
            for (int64_t x = 0; x < vectors; ++x)
              next[r * vectors + x] =
                  fma(kb, factor, loaded[x], next[r * vectors + x]);
          }
          scf::YieldOp::create(kb, loc, next);
        });
    return SmallVector<Value>(steps.getResults());
  }

  Location loc;
  FloatType f32;
};

} // namespace mlir::glint

#endif // GLINT_PASSES_BUILDERUTILS_H
