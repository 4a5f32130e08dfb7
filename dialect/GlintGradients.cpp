//===- GlintGradients.cpp - backward rules of the glint ops ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Each glint op's DifferentiableOpInterface rule, and the verifiers of the
// backward ops (GlintGradients.td). A rule builds the cotangents of the op's
// input-dependent operands from glint, arith, tensor and linalg ops that the
// reference evaluator runs and the CPU pipeline compiles; only the sequence
// mixers whose backward is a pass of its own (a reverse scan, softmax
// attention) get a backward op.
//
// Weights are constants of the differentiated function: a rule whose weight
// operand depends on the input (a hypernetwork) fails, naming the operand.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <cmath>

using namespace mlir;
using namespace mlir::glint;

//===----------------------------------------------------------------------===//
// Shared pieces
//===----------------------------------------------------------------------===//

namespace {
/// Element-wise arithmetic on same-shaped tensors, at one location.
struct Arith {
  OpBuilder &b;
  Location loc;
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value neg(Value x) { return arith::NegFOp::create(b, loc, x); }
  Value act(ActKind kind, Value x) { return ActOp::create(b, loc, kind, x); }
  Value gain(ActKind kind, Value x) {
    return ActGainOp::create(b, loc, ActKindAttr::get(b.getContext(), kind), x);
  }
};
} // namespace

/// Fails naming the operand when a weight-like operand depends on the input:
/// its cotangent (a gradient with respect to a weight) is not built.
static LogicalResult requireInactive(Operation *op, GradientBuilder &grad,
                                     Value operand, StringRef name) {
  if (!operand || !grad.isActive(operand))
    return success();
  return op->emitOpError() << "'" << name
                           << "' depends on the differentiated input; "
                              "glint-differentiate builds no gradient with "
                              "respect to it";
}

/// A constant tensor of `type` (static) holding `values` (or one splat
/// value).
static Value constantTensor(OpBuilder &b, Location loc, RankedTensorType type,
                            ArrayRef<double> values) {
  SmallVector<Attribute> attrs;
  for (double v : values)
    attrs.push_back(b.getFloatAttr(type.getElementType(), v));
  auto dense = attrs.size() == 1 ? DenseElementsAttr::get(type, attrs.front())
                                 : DenseElementsAttr::get(type, attrs);
  return arith::ConstantOp::create(b, loc, type, dense);
}

/// x · c for a constant c that the element type (f32) may not hold exactly
/// (1/√(2π), 0.044715, 1/24, ...): c = hi + lo, hi being c rounded to the
/// element type and lo the rounded remainder, so that the reference
/// evaluator, which computes in double, sees c to about 1e-15 rather than
/// float32's 6e-8 (the forward ops carry such constants as f64 attributes).
/// One multiplication where c is exact in the element type.
static Value mulConstant(Arith &a, GradientBuilder &grad, Value x, double c) {
  Type element = getElementTypeOrSelf(x.getType());
  auto hi = cast<FloatAttr>(a.b.getFloatAttr(element, c));
  double rest = c - hi.getValueAsDouble();
  Value product = a.mul(x, grad.splatLike(a.loc, x, hi.getValueAsDouble()));
  if (rest == 0.0)
    return product;
  return a.add(product, a.mul(x, grad.splatLike(a.loc, x, rest)));
}

//===----------------------------------------------------------------------===//
// Per-token ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::buildGradient(GradientBuilder &grad) {
  return requireInactive(*this, grad, getTable(), "table");
}

/// dx = dy · W: the same weight read in the other layout.
LogicalResult LinearOp::buildGradient(GradientBuilder &grad) {
  if (failed(requireInactive(*this, grad, getWeight(), "weight")) ||
      failed(requireInactive(*this, grad, getBias(), "bias")))
    return failure();
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent || !grad.isActive(getInput()))
    return success();
  OpBuilder &b = grad.getBuilder();
  auto other = isInOut() ? WeightLayout::out_in : WeightLayout::in_out;
  WeightLayoutAttr layout;
  if (other != WeightLayout::out_in)
    layout = WeightLayoutAttr::get(getContext(), other);
  Value dx = LinearOp::create(b, getLoc(), getInput().getType(), cotangent,
                              getWeight(), Value(), layout);
  grad.accumulate(getInput(), dx);
  return success();
}

/// f'(x) for each activation, from glint ops and arithmetic.
LogicalResult ActOp::buildGradient(GradientBuilder &grad) {
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent || !grad.isActive(getInput()))
    return success();
  Location loc = getLoc();
  Arith a{grad.getBuilder(), loc};
  Value x = getInput(), y = getOutput();
  auto splat = [&](double v) { return grad.splatLike(loc, x, v); };
  Value slope;
  switch (getKind()) {
  case ActKind::silu: {
    // σ(x) · (1 + x · (1 − σ(x)))
    Value s = a.act(ActKind::sigmoid, x);
    slope = a.mul(s, a.add(splat(1.0), a.mul(x, a.sub(splat(1.0), s))));
    break;
  }
  case ActKind::sigmoid:
    slope = a.mul(y, a.sub(splat(1.0), y));
    break;
  case ActKind::gelu: {
    // Φ(x) + x · φ(x), φ(x) = exp(−x²/2) / √(2π)
    Value pdf = mulConstant(
        a, grad, a.act(ActKind::exp, a.mul(a.mul(x, x), splat(-0.5))),
        1.0 / std::sqrt(2.0 * M_PI));
    slope = a.add(a.gain(ActKind::gelu, x), a.mul(x, pdf));
    break;
  }
  case ActKind::gelu_tanh: {
    // f = ½x(1 + tanh u), u = c(x + 0.044715x³):
    // f' = ½(1 + tanh u) + ½x(1 − tanh² u) · c(1 + 3 · 0.044715x²)
    const double c = std::sqrt(2.0 / M_PI), k = 0.044715;
    Value x2 = a.mul(x, x);
    Value u = mulConstant(a, grad,
                          a.add(x, mulConstant(a, grad, a.mul(x2, x), k)), c);
    Value t = a.act(ActKind::tanh, u);
    Value du = mulConstant(
        a, grad, a.add(splat(1.0), mulConstant(a, grad, x2, 3.0 * k)), c);
    Value left = a.mul(a.add(splat(1.0), t), splat(0.5));
    Value right =
        a.mul(a.mul(a.mul(x, splat(0.5)), a.sub(splat(1.0), a.mul(t, t))), du);
    slope = a.add(left, right);
    break;
  }
  case ActKind::softplus:
    slope = a.act(ActKind::sigmoid, x);
    break;
  case ActKind::relu:
    slope = a.gain(ActKind::relu, x);
    break;
  case ActKind::relu_square:
    slope = a.mul(a.gain(ActKind::relu_square, x), splat(2.0));
    break;
  case ActKind::tanh:
    slope = a.sub(splat(1.0), a.mul(y, y));
    break;
  case ActKind::exp:
  case ActKind::neg_exp:
    slope = y;
    break;
  }
  grad.accumulate(x, a.mul(cotangent, slope));
  return success();
}

/// The mean of each group of `groups` consecutive channels of `z`
/// (`[..., C]`), broadcast back to every channel of its group: the centre
/// that `glint.norm_stats` computes for a centred norm. Its gain is unused
/// (compiled code drops it); epsilon 1 keeps it finite where the evaluator
/// computes it, as for a row of zero cotangents.
static Value groupMean(GradientBuilder &grad, Location loc, Value z,
                       int64_t groups) {
  OpBuilder &b = grad.getBuilder();
  auto type = cast<RankedTensorType>(z.getType());
  return NormStatsOp::create(b, loc, type, type, z, b.getI64IntegerAttr(groups),
                             Value(), b.getF64FloatAttr(1.0),
                             b.getF64FloatAttr(0.0), b.getUnitAttr())
      .getMean();
}

/// The backward of `(x − μ_g) · r_g · w′ + b` over groups of the last axis
/// (μ = 0 for RMS): with x̂ = (x − μ) r and ĝ = dy ⊙ w′,
/// dx = r ⊙ (ĝ − mean_g(ĝ) − x̂ ⊙ mean_g(ĝ ⊙ x̂)), without the middle term
/// for RMS. Several groups are computed on `[..., G, C / G]` views of x, dy
/// and w′, as one group over the last axis: every statistic is then a value
/// per row of the view, read by the element-wise maps as such (through
/// `[..., C]` they would be spread over each group's channels and reshaped,
/// a pass over memory each when compiled).
static LogicalResult normGradient(Operation *op, GradientBuilder &grad, Value x,
                                  Value weight, Value bias, Value output,
                                  double epsilon, double weightOffset,
                                  int64_t groups, bool center) {
  if (failed(requireInactive(op, grad, weight, "weight")) ||
      failed(requireInactive(op, grad, bias, "bias")))
    return failure();
  Value cotangent = grad.getCotangent(output);
  if (!cotangent || !grad.isActive(x))
    return success();
  auto type = cast<RankedTensorType>(x.getType());
  if (type.isDynamicDim(type.getRank() - 1))
    return op->emitOpError("has a dynamic channel count; its backward rule "
                           "needs it static");
  OpBuilder &b = grad.getBuilder();
  Location loc = op->getLoc();
  Arith a{b, loc};
  Value w;
  if (weight) {
    w = weight;
    if (weightOffset != 0.0)
      w = a.add(w,
                constantTensor(b, loc, cast<RankedTensorType>(weight.getType()),
                               {weightOffset}));
  }
  int64_t last = type.getRank() - 1, channels = type.getDimSize(last);
  SmallVector<ReassociationIndices> split;
  Value xs = x, dys = cotangent;
  if (groups > 1) {
    // [..., C] as [..., G, C / G], and the weight as [G, C / G].
    for (int64_t i = 0; i < last; ++i)
      split.push_back({i});
    split.push_back({last, last + 1});
    SmallVector<int64_t> shape(type.getShape());
    shape.back() = groups;
    shape.push_back(channels / groups);
    SmallVector<OpFoldResult> sizes = grad.sizesOf(loc, x);
    sizes.back() = b.getIndexAttr(groups);
    sizes.push_back(b.getIndexAttr(channels / groups));
    auto viewType = RankedTensorType::get(shape, type.getElementType());
    auto view = [&](Value v) -> Value {
      return tensor::ExpandShapeOp::create(b, loc, viewType, v, split, sizes);
    };
    xs = view(x);
    dys = view(cotangent);
    if (w)
      w = tensor::ExpandShapeOp::create(
          b, loc,
          RankedTensorType::get({groups, channels / groups},
                                type.getElementType()),
          w, SmallVector<ReassociationIndices>{{0, 1}},
          ArrayRef<OpFoldResult>{b.getIndexAttr(groups),
                                 b.getIndexAttr(channels / groups)});
  }
  auto viewType = cast<RankedTensorType>(xs.getType());
  auto stats = NormStatsOp::create(
      b, loc, viewType, viewType, xs, b.getI64IntegerAttr(1), Value(),
      b.getF64FloatAttr(epsilon), b.getF64FloatAttr(0.0),
      center ? b.getUnitAttr() : UnitAttr());
  Value r = stats.getGain(), xhat = a.mul(a.sub(xs, stats.getMean()), r);
  Value ghat = dys;
  if (w)
    ghat = a.mul(dys, grad.broadcastChannels(loc, w, xs));
  Value inner =
      a.sub(ghat, a.mul(xhat, groupMean(grad, loc, a.mul(ghat, xhat), 1)));
  if (center)
    inner = a.sub(inner, groupMean(grad, loc, ghat, 1));
  Value dx = a.mul(r, inner);
  if (groups > 1)
    dx = tensor::CollapseShapeOp::create(b, loc, type, dx, split);
  grad.accumulate(x, dx);
  return success();
}

LogicalResult RMSNormOp::buildGradient(GradientBuilder &grad) {
  return normGradient(*this, grad, getInput(), getWeight(), Value(),
                      getOutput(), getEpsilon().convertToDouble(),
                      getWeightOffset().convertToDouble(), 1,
                      /*center=*/false);
}

LogicalResult LayerNormOp::buildGradient(GradientBuilder &grad) {
  return normGradient(*this, grad, getInput(), getWeight(), getBias(),
                      getOutput(), getEpsilon().convertToDouble(), 0.0, 1,
                      /*center=*/true);
}

LogicalResult GroupNormOp::buildGradient(GradientBuilder &grad) {
  return normGradient(*this, grad, getInput(), getWeight(), getBias(),
                      getOutput(), getEpsilon().convertToDouble(), 0.0,
                      getGroups(), /*center=*/true);
}

//===----------------------------------------------------------------------===//
// Sequence ops
//===----------------------------------------------------------------------===//

/// Fails when the op continues a carried state: the differentiated function
/// is a whole-sequence forward.
static LogicalResult requireNoState(Operation *op, Value state) {
  if (!state)
    return success();
  return op->emitOpError("continues a carried state; glint-differentiate "
                         "differentiates whole-sequence forwards only");
}

/// The transpose of a causal convolution is the anti-causal one with the
/// same weights: dx[s] = Σ_i w[i] · dy[s + W − 1 − i].
LogicalResult Conv1dOp::buildGradient(GradientBuilder &grad) {
  if (failed(requireNoState(*this, getInitialState())) ||
      failed(requireInactive(*this, grad, getWeight(), "weight")) ||
      failed(requireInactive(*this, grad, getBias(), "bias")))
    return failure();
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent || !grad.isActive(getInput()))
    return success();
  Value dx = Conv1dOp::create(grad.getBuilder(), getLoc(), getInput().getType(),
                              Type(), cotangent, getWeight(), Value(), Value(),
                              !getReverse())
                 .getOutput();
  grad.accumulate(getInput(), dx);
  return success();
}

/// dx[t] = dy[t + 1] (zero at the end): an anti-causal convolution of width
/// two with weights [1, 0].
LogicalResult TokenShiftOp::buildGradient(GradientBuilder &grad) {
  if (failed(requireNoState(*this, getInitialState())))
    return failure();
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent || !grad.isActive(getInput()))
    return success();
  auto type = cast<RankedTensorType>(getInput().getType());
  int64_t channels = type.getShape().back();
  if (ShapedType::isDynamic(channels))
    return emitOpError("has a dynamic channel count; its backward rule needs "
                       "it static");
  OpBuilder &b = grad.getBuilder();
  SmallVector<double> weights;
  for (int64_t c = 0; c < channels; ++c)
    weights.append({1.0, 0.0});
  Value w = constantTensor(
      b, getLoc(), RankedTensorType::get({channels, 2}, type.getElementType()),
      weights);
  Value dx = Conv1dOp::create(b, getLoc(), type, Type(), cotangent, w, Value(),
                              Value(), /*reverse=*/true)
                 .getOutput();
  grad.accumulate(getInput(), dx);
  return success();
}

/// Exchanges the two members of every rotated pair of `z` ([B, L, H, D]),
/// leaving the features past `rotaryDim` in place.
static Value swapPairs(OpBuilder &b, Location loc, GradientBuilder &grad,
                       Value z, int64_t rotaryDim, bool interleaved) {
  auto type = cast<RankedTensorType>(z.getType());
  int64_t dim = type.getShape().back(), half = rotaryDim / 2;
  SmallVector<OpFoldResult> sizes = grad.sizesOf(loc, z);
  auto slice = [&](Value source, int64_t axis, int64_t offset, int64_t size) {
    auto sourceType = cast<RankedTensorType>(source.getType());
    SmallVector<OpFoldResult> offsets(sourceType.getRank(), b.getIndexAttr(0));
    SmallVector<OpFoldResult> lengths = grad.sizesOf(loc, source);
    SmallVector<OpFoldResult> strides(sourceType.getRank(), b.getIndexAttr(1));
    offsets[axis] = b.getIndexAttr(offset);
    lengths[axis] = b.getIndexAttr(size);
    SmallVector<int64_t> shape(sourceType.getShape());
    shape[axis] = size;
    return tensor::ExtractSliceOp::create(
               b, loc,
               RankedTensorType::get(shape, sourceType.getElementType()),
               source, offsets, lengths, strides)
        .getResult();
  };
  auto concat = [&](int64_t axis, ValueRange parts) {
    return tensor::ConcatOp::create(b, loc, axis, parts).getResult();
  };
  int64_t last = type.getRank() - 1;
  if (!interleaved) {
    SmallVector<Value> parts = {slice(z, last, half, half),
                                slice(z, last, 0, half)};
    if (rotaryDim < dim)
      parts.push_back(slice(z, last, rotaryDim, dim - rotaryDim));
    return concat(last, parts);
  }
  // Pairs (2i, 2i + 1): view the last axis as [D/2, 2].
  SmallVector<int64_t> pairShape(type.getShape());
  pairShape.back() = dim / 2;
  pairShape.push_back(2);
  SmallVector<OpFoldResult> pairSizes(sizes);
  pairSizes.back() = b.getIndexAttr(dim / 2);
  pairSizes.push_back(b.getIndexAttr(2));
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i < last; ++i)
    groups.push_back({i});
  groups.push_back({last, last + 1});
  Value pairs = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get(pairShape, type.getElementType()), z,
      groups, pairSizes);
  Value rotated = slice(pairs, last, 0, half);
  Value swapped = concat(last + 1, {slice(rotated, last + 1, 1, 1),
                                    slice(rotated, last + 1, 0, 1)});
  if (rotaryDim < dim)
    swapped = concat(last, {swapped, slice(pairs, last, half, dim / 2 - half)});
  return tensor::CollapseShapeOp::create(b, loc, type, swapped, groups);
}

/// A rotation's transpose is the rotation by the opposite angle, which is
/// the same rotation with the members of each pair exchanged before and
/// after: dx = swap(rotary(swap(dy))).
LogicalResult RotaryOp::buildGradient(GradientBuilder &grad) {
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent || !grad.isActive(getInput()))
    return success();
  auto type = cast<RankedTensorType>(getInput().getType());
  if (type.isDynamicDim(type.getRank() - 1))
    return emitOpError("has a dynamic head size; its backward rule needs it "
                       "static");
  OpBuilder &b = grad.getBuilder();
  Location loc = getLoc();
  int64_t rotaryDim = getRotaryDim();
  Value swapped =
      swapPairs(b, loc, grad, cotangent, rotaryDim, getInterleaved());
  Value rotated =
      RotaryOp::create(b, loc, swapped, getOffset(), getRotaryDimAttr(),
                       getBaseAttr(), getInterleavedAttr());
  grad.accumulate(getInput(), swapPairs(b, loc, grad, rotated, rotaryDim,
                                        getInterleaved()));
  return success();
}

LogicalResult AttentionOp::buildGradient(GradientBuilder &grad) {
  if (failed(requireNoState(*this, getKeyCache())))
    return failure();
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent)
    return success();
  auto op = AttentionGradOp::create(
      grad.getBuilder(), getLoc(),
      TypeRange{getQ().getType(), getK().getType(), getV().getType()}, getQ(),
      getK(), getV(), cotangent, getScaleAttr(), getWindowAttr());
  Value operands[] = {getQ(), getK(), getV()};
  for (auto [operand, result] : llvm::zip(operands, op.getResults()))
    if (grad.isActive(operand))
      grad.accumulate(operand, result);
  return success();
}

LogicalResult RecurrenceOp::buildGradient(GradientBuilder &grad) {
  if (failed(requireNoState(*this, getInitialState())))
    return failure();
  if (getFinalState() && grad.getCotangent(getFinalState()))
    return emitOpError("returns its final state to a value the "
                       "differentiated output depends on; its backward rule "
                       "covers the output only");
  if (failed(requireInactive(*this, grad, getBonus(), "bonus")) ||
      failed(requireInactive(*this, grad, getSkip(), "skip")))
    return failure();
  Value cotangent = grad.getCotangent(getOutput());
  if (!cotangent)
    return success();
  auto vType = cast<RankedTensorType>(getV().getType());
  auto deltaType = RankedTensorType::get(vType.getShape().take_front(3),
                                         vType.getElementType());
  Type qType = getQ() ? getQ().getType() : getK().getType();
  auto op = RecurrenceGradOp::create(
      grad.getBuilder(), getLoc(),
      TypeRange{qType, getK().getType(), vType, getLogDecay().getType(),
                deltaType},
      getQ(), getK(), getV(), getLogDecay(), getDelta(), getBonus(), getSkip(),
      cotangent, getReverse(), getNormalize());
  auto accumulate = [&](Value operand, Value result) {
    if (operand && grad.isActive(operand))
      grad.accumulate(operand, result);
  };
  accumulate(getQ(), op.getGradQ());
  accumulate(getK(), op.getGradK());
  accumulate(getV(), op.getGradV());
  accumulate(getLogDecay(), op.getGradLogDecay());
  accumulate(getDelta(), op.getGradDelta());
  return success();
}

//===----------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------===//

LogicalResult RecurrenceGradOp::verify() {
  auto same = [&](Value result, Type expected,
                  StringRef name) -> LogicalResult {
    if (result.getType() == expected)
      return success();
    return emitOpError() << "result '" << name << "' has type "
                         << result.getType() << ", expected " << expected;
  };
  if (getGrad().getType() != getV().getType())
    return emitOpError("'grad' must have the type of 'v' (the output's)");
  auto vType = cast<RankedTensorType>(getV().getType());
  if (vType.getRank() != 4)
    return emitOpError("'v' must be [B, L, H, V]");
  auto deltaType = RankedTensorType::get(vType.getShape().take_front(3),
                                         vType.getElementType());
  return success(
      succeeded(same(getGradQ(), getQ() ? getQ().getType() : getK().getType(),
                     "grad_q")) &&
      succeeded(same(getGradK(), getK().getType(), "grad_k")) &&
      succeeded(same(getGradV(), vType, "grad_v")) &&
      succeeded(
          same(getGradLogDecay(), getLogDecay().getType(), "grad_log_decay")) &&
      succeeded(same(getGradDelta(),
                     getDelta() ? getDelta().getType() : Type(deltaType),
                     "grad_delta")));
}

LogicalResult AttentionGradOp::verify() {
  if (getGradQ().getType() != getQ().getType() ||
      getGradK().getType() != getK().getType() ||
      getGradV().getType() != getV().getType())
    return emitOpError("results must have the types of 'q', 'k' and 'v'");
  auto grad = cast<RankedTensorType>(getGrad().getType());
  if (grad.getRank() != 4)
    return emitOpError("'grad' must be [B, L, H, E]");
  return success();
}
