//===- GlintInterfaces.cpp - per-op rules of glint's passes ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The interfaces' generated code and the helpers that several ops' rules
// share. Each op's rule is in GlintOps.cpp, next to the op.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintInterfaces.h"
#include "dialect/GlintOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::glint;

#include "dialect/GlintInterfaces.cpp.inc"

//===----------------------------------------------------------------------===//
// AttentionFormBuilder
//===----------------------------------------------------------------------===//

AttentionFormBuilder::~AttentionFormBuilder() = default;

Value AttentionFormBuilder::cloneOnOffset(Operation *op, Value pathOperand) {
  if (!isExact())
    return Value();
  IRMapping mapping;
  mapping.map(pathOperand, getOffset(pathOperand));
  return getBuilder().clone(*op, mapping)->getResult(0);
}

Value AttentionFormBuilder::scaled(Location loc, Value map, Value gain,
                                   bool keep) {
  if (!keep)
    return map;
  return MapScaleOp::create(getBuilder(), loc, map.getType(), map, gain);
}

Value AttentionFormBuilder::mulOffset(Location loc, Value offset, Value gain) {
  if (!isExact())
    return Value();
  return arith::MulFOp::create(getBuilder(), loc, offset, gain);
}

/// An uninitialised tensor shaped like `like`.
static Value emptyLike(OpBuilder &b, Location loc, Value like) {
  auto type = cast<RankedTensorType>(like.getType());
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dynamic.push_back(tensor::DimOp::create(b, loc, like, i));
  return tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType(),
                                 dynamic);
}

/// A tensor shaped like `like` filled with `value`.
static Value fillLike(OpBuilder &b, Location loc, Value like, double value) {
  Type element = getElementTypeOrSelf(like.getType());
  Value scalar =
      arith::ConstantOp::create(b, loc, b.getFloatAttr(element, value));
  return linalg::FillOp::create(b, loc, scalar, emptyLike(b, loc, like))
      .getResult(0);
}

/// `vector` (`[C]`, or `[G, C/G]` for a grouped view) broadcast over the
/// leading axes of `like` it lacks (`like` is `[..., C]` or `[..., G, C/G]`).
static Value broadcastLastAxis(OpBuilder &b, Location loc, Value vector,
                               Value like) {
  SmallVector<int64_t> dims;
  for (int64_t i = 0,
               e = cast<RankedTensorType>(like.getType()).getRank() -
                   cast<RankedTensorType>(vector.getType()).getRank();
       i < e; ++i)
    dims.push_back(i);
  return linalg::BroadcastOp::create(b, loc, vector, emptyLike(b, loc, like),
                                     dims)
      .getResult()[0];
}

Value AttentionFormBuilder::zerosLike(Location loc, Value like) {
  return fillLike(getBuilder(), loc, like, 0.0);
}

Value AttentionFormBuilder::broadcastChannels(Location loc, Value vector,
                                              Value like) {
  return broadcastLastAxis(getBuilder(), loc, vector, like);
}

//===----------------------------------------------------------------------===//
// GradientBuilder
//===----------------------------------------------------------------------===//

GradientBuilder::~GradientBuilder() = default;

SmallVector<OpFoldResult> GradientBuilder::sizesOf(Location loc, Value like) {
  OpBuilder &b = getBuilder();
  auto type = cast<RankedTensorType>(like.getType());
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    sizes.push_back(type.isDynamicDim(i)
                        ? OpFoldResult(tensor::DimOp::create(b, loc, like, i))
                        : OpFoldResult(b.getIndexAttr(type.getDimSize(i))));
  return sizes;
}

Value GradientBuilder::emptyLike(Location loc, Value like) {
  return ::emptyLike(getBuilder(), loc, like);
}

Value GradientBuilder::splatLike(Location loc, Value like, double value) {
  return fillLike(getBuilder(), loc, like, value);
}

Value GradientBuilder::broadcastChannels(Location loc, Value vector,
                                         Value like) {
  return broadcastLastAxis(getBuilder(), loc, vector, like);
}
