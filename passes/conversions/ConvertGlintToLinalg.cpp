//===- ConvertGlintToLinalg.cpp - convert-glint-to-linalg -----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the per-token and short-memory glint ops to linalg on tensors, one
// rewrite pattern per op:
//
//   glint.act         one element-wise linalg.generic
//   glint.linear      linalg.matmul (in_out) or the transposed-B matmul
//                     (out_in) on the rows collapsed to [M, I]; a contraction
//                     generic for the block-diagonal rank-3 weights
//   glint.rms_norm,   reductions (sum, then sum of squared deviations) and one
//   layer_norm,       element-wise pass; group_norm reshapes the last axis to
//   group_norm        [groups, C / groups] first
//   glint.embedding   a gather: a generic reading the table with tensor.extract
//   glint.conv1d      linalg.depthwise_conv_1d_nwc_wc on the input padded with
//                     the state (tensor.concat), the weight transposed (and
//                     flipped for `reverse`) to the named op's [W, C] filter
//   glint.token_shift tensor.concat of the state and all but the last token
//   glint.rotary      cos/sin tables of the positions, one rotation generic on
//                     the two halves (or the even and odd features) taken with
//                     extract_slice, inserted back with insert_slice
//   glint.attention   scores, masked max, masked exp, sum, weighted values,
//                     normalisation: generics over [B, L, G, H/G, L]
//
// Every lowering computes the formula of the reference evaluator in the same
// order of operations where that costs nothing, so that the lowered IR and the
// glint IR agree to rounding when both run in double. Constants are created
// in the op's element type: the f64 attributes (epsilon, scale, base) are
// rounded to it, as any compiled kernel would do.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/conversions/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

#define DEBUG_TYPE "convert-glint-to-linalg"

namespace mlir::glint {
#define GEN_PASS_DEF_CONVERTGLINTTOLINALG
#include "passes/conversions/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {
constexpr utils::IteratorType kParallel = utils::IteratorType::parallel;
constexpr utils::IteratorType kReduction = utils::IteratorType::reduction;
} // namespace

static RankedTensorType tensorTypeOf(Value value) {
  return cast<RankedTensorType>(value.getType());
}

/// The shape of a tensor with `sizes`: static where a size is a constant.
static SmallVector<int64_t> shapeOf(ArrayRef<OpFoldResult> sizes) {
  return llvm::map_to_vector(sizes, [](OpFoldResult size) {
    return getConstantIntValue(size).value_or(ShapedType::kDynamic);
  });
}

/// A scalar constant of the float type `type`; `value` is rounded to it.
static Value floatConstant(OpBuilder &b, Location loc, Type type,
                           double value) {
  return arith::ConstantOp::create(
      b, loc, cast<TypedAttr>(b.getFloatAttr(type, value)));
}

static Value indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

static Value emptyTensor(OpBuilder &b, Location loc,
                         ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

/// A tensor of `sizes` holding `value` everywhere (an accumulator's start).
static Value filledTensor(OpBuilder &b, Location loc,
                          ArrayRef<OpFoldResult> sizes, Value value) {
  Value empty = emptyTensor(b, loc, sizes, value.getType());
  return linalg::FillOp::create(b, loc, ValueRange{value}, ValueRange{empty})
      ->getResult(0);
}

/// The map from `numLoops` loops to the listed loop dims.
static AffineMap loopsToDims(MLIRContext *context, unsigned numLoops,
                             ArrayRef<unsigned> dims) {
  SmallVector<AffineExpr> exprs = llvm::map_to_vector(
      dims, [&](unsigned d) { return getAffineDimExpr(d, context); });
  return AffineMap::get(numLoops, 0, exprs, context);
}

/// A linalg.generic whose results take the types of `outputs`.
static linalg::GenericOp
makeGeneric(OpBuilder &b, Location loc, ValueRange inputs, ValueRange outputs,
            ArrayRef<AffineMap> maps, ArrayRef<utils::IteratorType> iterators,
            function_ref<void(OpBuilder &, Location, ValueRange)> body) {
  return linalg::GenericOp::create(b, loc, TypeRange(outputs), inputs, outputs,
                                   maps, iterators, body);
}

/// `n` parallel loops followed by `reductions` reduction loops.
static SmallVector<utils::IteratorType> iterators(unsigned n,
                                                  unsigned reductions = 0) {
  SmallVector<utils::IteratorType> result(n, kParallel);
  result.append(reductions, kReduction);
  return result;
}

static OpFoldResult mulIndex(OpBuilder &b, Location loc, OpFoldResult lhs,
                             OpFoldResult rhs) {
  auto l = getConstantIntValue(lhs), r = getConstantIntValue(rhs);
  if (l && r)
    return b.getIndexAttr(*l * *r);
  return arith::MulIOp::create(b, loc,
                               getValueOrCreateConstantIndexOp(b, loc, lhs),
                               getValueOrCreateConstantIndexOp(b, loc, rhs))
      .getResult();
}

static OpFoldResult divIndex(OpBuilder &b, Location loc, OpFoldResult lhs,
                             OpFoldResult rhs) {
  auto l = getConstantIntValue(lhs), r = getConstantIntValue(rhs);
  if (l && r)
    return b.getIndexAttr(*l / *r);
  return arith::DivSIOp::create(b, loc,
                                getValueOrCreateConstantIndexOp(b, loc, lhs),
                                getValueOrCreateConstantIndexOp(b, loc, rhs))
      .getResult();
}

static OpFoldResult subIndex(OpBuilder &b, Location loc, OpFoldResult lhs,
                             int64_t rhs) {
  if (auto l = getConstantIntValue(lhs))
    return b.getIndexAttr(*l - rhs);
  return arith::SubIOp::create(b, loc, cast<Value>(lhs),
                               indexConstant(b, loc, rhs))
      .getResult();
}

/// A size (an element count) as a float of `type`, for means.
static Value sizeAsFloat(OpBuilder &b, Location loc, OpFoldResult size,
                         Type type) {
  if (auto n = getConstantIntValue(size))
    return floatConstant(b, loc, type, static_cast<double>(*n));
  Value i64 =
      arith::IndexCastOp::create(b, loc, b.getI64Type(), cast<Value>(size));
  return arith::SIToFPOp::create(b, loc, type, i64);
}

/// Converts a float scalar to `type` (the table of an embedding may be
/// stored narrower or wider than the activations).
static Value convertFloat(OpBuilder &b, Location loc, Value value, Type type) {
  Type from = value.getType();
  if (from == type)
    return value;
  if (from.getIntOrFloatBitWidth() < type.getIntOrFloatBitWidth())
    return arith::ExtFOp::create(b, loc, type, value);
  return arith::TruncFOp::create(b, loc, type, value);
}

/// Casts a computed tensor to the (possibly more static) type of the result
/// it replaces.
static Value castTo(OpBuilder &b, Location loc, Value value, Type type) {
  if (value.getType() == type)
    return value;
  return tensor::CastOp::create(b, loc, type, value);
}

/// `tensor.expand_shape` with the result type derived from `sizes`.
static Value expandTo(OpBuilder &b, Location loc, Value source,
                      ArrayRef<ReassociationIndices> reassociation,
                      ArrayRef<OpFoldResult> sizes) {
  auto type = RankedTensorType::get(shapeOf(sizes),
                                    tensorTypeOf(source).getElementType());
  return tensor::ExpandShapeOp::create(b, loc, type, source, reassociation,
                                       sizes);
}

/// Reassociation that splits (expand) or merges (collapse) the dims
/// `dim, dim + 1` of a result of rank `rank`.
static SmallVector<ReassociationIndices> pairAt(int64_t rank, int64_t dim) {
  SmallVector<ReassociationIndices> groups;
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim + 1)
      continue;
    if (d == dim)
      groups.push_back({d, d + 1});
    else
      groups.push_back({d});
  }
  return groups;
}

/// Views `x : [..., I]` as rows `[M, I]` (a rank-1 input is one row), so
/// that every linear layer is one matrix product.
static Value flattenRows(OpBuilder &b, Location loc, Value x) {
  int64_t rank = tensorTypeOf(x).getRank();
  if (rank == 2)
    return x;
  if (rank == 1)
    return expandTo(b, loc, x, {{0, 1}},
                    {b.getIndexAttr(1), tensor::getMixedSize(b, loc, x, 0)});
  ReassociationIndices leading =
      llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return tensor::CollapseShapeOp::create(
      b, loc, x, ArrayRef<ReassociationIndices>{leading, {rank - 1}});
}

/// The inverse of flattenRows: `[M, O]` back to `[leading..., O]`.
static Value unflattenRows(OpBuilder &b, Location loc, Value rows,
                           ArrayRef<OpFoldResult> leading,
                           OpFoldResult features) {
  int64_t rank = leading.size() + 1;
  if (rank == 2)
    return rows;
  if (rank == 1)
    return tensor::CollapseShapeOp::create(
        b, loc, rows, ArrayRef<ReassociationIndices>{{0, 1}});
  SmallVector<OpFoldResult> sizes(leading);
  sizes.push_back(features);
  ReassociationIndices lead = llvm::to_vector(llvm::seq<int64_t>(0, rank - 1));
  return expandTo(b, loc, rows, {lead, {rank - 1}}, sizes);
}

/// Reverses `x : [B, T, C]` along its static middle axis (a convolution
/// state: `T = W - 1`).
static Value flipTime(OpBuilder &b, Location loc, Value x) {
  MLIRContext *context = b.getContext();
  int64_t steps = tensorTypeOf(x).getDimSize(1);
  AffineExpr d0 = getAffineDimExpr(0, context),
             d1 = getAffineDimExpr(1, context),
             d2 = getAffineDimExpr(2, context);
  AffineMap flipped = AffineMap::get(3, 0, {d0, (steps - 1) - d1, d2}, context);
  Value init = emptyTensor(b, loc, tensor::getMixedSizes(b, loc, x),
                           tensorTypeOf(x).getElementType());
  return makeGeneric(b, loc, x, init, {flipped, b.getMultiDimIdentityMap(3)},
                     iterators(3),
                     [](OpBuilder &nb, Location nloc, ValueRange args) {
                       linalg::YieldOp::create(nb, nloc, args[0]);
                     })
      ->getResult(0);
}

//===----------------------------------------------------------------------===//
// glint.act
//===----------------------------------------------------------------------===//

/// σ(x) = 1 / (1 + e^{-x}): for large negative x, e^{-x} overflows to +inf
/// and σ correctly underflows to 0; nothing becomes NaN.
static Value buildSigmoid(OpBuilder &b, Location loc, Value x) {
  Value one = floatConstant(b, loc, x.getType(), 1.0);
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
  return arith::DivFOp::create(b, loc, one,
                               arith::AddFOp::create(b, loc, one, e));
}

/// The scalar activation `kind` of `x`, in forms that stay finite for every
/// finite input.
static Value buildActivation(OpBuilder &b, Location loc, ActKind kind,
                             Value x) {
  Type type = x.getType();
  auto c = [&](double value) { return floatConstant(b, loc, type, value); };
  auto mul = [&](Value l, Value r) -> Value {
    return arith::MulFOp::create(b, loc, l, r);
  };
  auto add = [&](Value l, Value r) -> Value {
    return arith::AddFOp::create(b, loc, l, r);
  };
  switch (kind) {
  case ActKind::silu:
    return mul(x, buildSigmoid(b, loc, x));
  case ActKind::sigmoid:
    return buildSigmoid(b, loc, x);
  case ActKind::gelu: {
    // 0.5·x·(1 + erf(x / √2)). One op per statement: the order of a
    // call's arguments differs between compilers (GCC right to left, clang
    // left to right), and the ops must come out in the same order.
    Value scaled = arith::DivFOp::create(b, loc, x, c(std::sqrt(2.0)));
    Value erf = math::ErfOp::create(b, loc, scaled);
    Value sum = add(c(1.0), erf);
    Value halfX = mul(c(0.5), x);
    return mul(halfX, sum);
  }
  case ActKind::gelu_tanh: {
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    Value cube = mul(mul(mul(c(0.044715), x), x), x);
    Value inner = mul(c(std::sqrt(2.0 / M_PI)), add(x, cube));
    Value sum = add(c(1.0), math::TanhOp::create(b, loc, inner));
    Value halfX = mul(c(0.5), x);
    return mul(halfX, sum);
  }
  case ActKind::softplus: {
    // log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): e^x would overflow.
    Value negAbs =
        arith::NegFOp::create(b, loc, math::AbsFOp::create(b, loc, x));
    Value tail =
        math::Log1pOp::create(b, loc, math::ExpOp::create(b, loc, negAbs));
    return add(arith::MaximumFOp::create(b, loc, x, c(0.0)), tail);
  }
  case ActKind::relu:
    return arith::MaximumFOp::create(b, loc, x, c(0.0));
  case ActKind::relu_square: {
    Value r = arith::MaximumFOp::create(b, loc, x, c(0.0));
    return mul(r, r);
  }
  case ActKind::tanh:
    return math::TanhOp::create(b, loc, x);
  case ActKind::exp:
    return math::ExpOp::create(b, loc, x);
  case ActKind::neg_exp:
    return arith::NegFOp::create(b, loc, math::ExpOp::create(b, loc, x));
  }
  llvm_unreachable("unknown activation kind");
}

namespace {
/// `glint.act` → one element-wise `linalg.generic` whose body is the scalar
/// activation.
struct ActLowering : public OpRewritePattern<ActOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ActOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    RankedTensorType type = tensorTypeOf(x);
    Value init =
        emptyTensor(rewriter, loc, tensor::getMixedSizes(rewriter, loc, x),
                    type.getElementType());
    AffineMap identity = rewriter.getMultiDimIdentityMap(type.getRank());
    ActKind kind = op.getKind();
    auto generic = makeGeneric(
        rewriter, loc, x, init, {identity, identity}, iterators(type.getRank()),
        [&](OpBuilder &b, Location nloc, ValueRange args) {
          linalg::YieldOp::create(b, nloc,
                                  buildActivation(b, nloc, kind, args[0]));
        });
    rewriter.replaceOp(
        op, castTo(rewriter, loc, generic->getResult(0), op.getType()));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.linear
//===----------------------------------------------------------------------===//

/// `glint.linear` → a matrix product on the rows `[M, I]` of the input:
/// `linalg.matmul` for an `[I, O]` weight, `linalg.matmul` with transposed-B
/// indexing maps for PyTorch's `[O, I]` (no copy of the weight), and for a
/// block-diagonal `[N, ., .]` weight a contraction `linalg.generic` over
/// `[M, N, I/N]` (the block axis sits between the rows and the features, where
/// batch_matmul cannot take it without transposing the activations). The
/// accumulator starts as the broadcast bias, which saves a pass.
struct LinearLowering : public OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Value x = op.getInput(), w = op.getWeight();
    Type elementType = tensorTypeOf(x).getElementType();
    SmallVector<OpFoldResult> xSizes = tensor::getMixedSizes(rewriter, loc, x);
    SmallVector<OpFoldResult> leading(xSizes.begin(), xSizes.end() - 1);
    SmallVector<OpFoldResult> wSizes = tensor::getMixedSizes(rewriter, loc, w);
    int64_t wRank = tensorTypeOf(w).getRank();
    bool inOut = op.isInOut();
    OpFoldResult inBlock = wSizes[inOut ? wRank - 2 : wRank - 1];
    OpFoldResult outBlock = wSizes[inOut ? wRank - 1 : wRank - 2];
    OpFoldResult outSize =
        wRank == 3 ? mulIndex(rewriter, loc, wSizes[0], outBlock) : outBlock;

    Value rows = flattenRows(rewriter, loc, x);
    OpFoldResult m = tensor::getMixedSize(rewriter, loc, rows, 0);
    Value init;
    if (Value bias = op.getBias()) {
      Value empty = emptyTensor(rewriter, loc, {m, outSize}, elementType);
      init = linalg::BroadcastOp::create(rewriter, loc, bias, empty,
                                         ArrayRef<int64_t>{0})
                 ->getResult(0);
    } else {
      init = filledTensor(rewriter, loc, {m, outSize},
                          floatConstant(rewriter, loc, elementType, 0.0));
    }

    Value product;
    if (wRank == 2 && inOut) {
      product =
          linalg::MatmulOp::create(rewriter, loc, TypeRange{init.getType()},
                                   ValueRange{rows, w}, ValueRange{init})
              ->getResult(0);
    } else if (wRank == 2) {
      product = linalg::MatmulTransposeBOp::create(
                    rewriter, loc, TypeRange{init.getType()},
                    ValueRange{rows, w}, ValueRange{init})
                    ->getResult(0);
    } else {
      // Loops (m, n, o, i): y[m, n, o] += x[m, n, i] · w[n, o, i] (out_in)
      // or w[n, i, o] (in_out).
      Value blocks =
          expandTo(rewriter, loc, rows, {{0}, {1, 2}}, {m, wSizes[0], inBlock});
      Value blockInit = expandTo(rewriter, loc, init, {{0}, {1, 2}},
                                 {m, wSizes[0], outBlock});
      AffineMap xMap = loopsToDims(context, 4, {0, 1, 3});
      AffineMap wMap = loopsToDims(context, 4,
                                   inOut ? ArrayRef<unsigned>{1, 3, 2}
                                         : ArrayRef<unsigned>{1, 2, 3});
      AffineMap yMap = loopsToDims(context, 4, {0, 1, 2});
      Value blockProduct =
          makeGeneric(
              rewriter, loc, ValueRange{blocks, w}, blockInit,
              {xMap, wMap, yMap}, iterators(3, 1),
              [](OpBuilder &b, Location nloc, ValueRange args) {
                Value p = arith::MulFOp::create(b, nloc, args[0], args[1]);
                linalg::YieldOp::create(
                    b, nloc,
                    ValueRange{arith::AddFOp::create(b, nloc, args[2], p)});
              })
              ->getResult(0);
      product = tensor::CollapseShapeOp::create(
          rewriter, loc, blockProduct,
          ArrayRef<ReassociationIndices>{{0}, {1, 2}});
    }
    Value result = unflattenRows(rewriter, loc, product, leading, outSize);
    rewriter.replaceOp(op, castTo(rewriter, loc, result, op.getType()));
    return success();
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

/// Normalises each group of the last axis of `x` exactly as the reference
/// does: a reduction for the sum (layer and group norm), a second one for the
/// sum of squared deviations from the mean (two passes, so that a large mean
/// does not cancel the variance), then one element-wise pass
/// `(x - mean) · rsqrt(var + eps) · (offset + w) + b`.
///
/// With `meanOut` the last pass writes the statistics instead
/// (`glint.norm_stats`): the returned tensor is the gain
/// `rsqrt(var + eps) · (offset + w)`, `*meanOut` the group mean (zero unless
/// `subtractMean`), both of `x`'s shape; `bias` must be null.
static Value buildNorm(OpBuilder &b, Location loc, Value x, Value weight,
                       Value bias, double epsilon, double weightOffset,
                       int64_t groups, bool subtractMean,
                       Value *meanOut = nullptr) {
  MLIRContext *context = b.getContext();
  RankedTensorType type = tensorTypeOf(x);
  Type elementType = type.getElementType();
  int64_t rank = type.getRank();
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, x);

  // Per-group statistics are per-row statistics of [..., G, C / G].
  Value grouped = x;
  OpFoldResult groupSize = sizes.back();
  SmallVector<OpFoldResult> loopSizes = sizes;
  if (groups > 1) {
    groupSize = divIndex(b, loc, sizes.back(), b.getIndexAttr(groups));
    loopSizes.back() = b.getIndexAttr(groups);
    loopSizes.push_back(groupSize);
    grouped = expandTo(b, loc, x, pairAt(rank + 1, rank - 1), loopSizes);
    auto split = [&](Value param) -> Value {
      if (!param)
        return param;
      return expandTo(b, loc, param, {{0, 1}},
                      {b.getIndexAttr(groups), groupSize});
    };
    weight = split(weight);
    bias = split(bias);
  }
  int64_t loops = loopSizes.size();
  SmallVector<OpFoldResult> rowSizes(loopSizes.begin(), loopSizes.end() - 1);

  AffineMap identity = b.getMultiDimIdentityMap(loops);
  AffineMap rowMap = AffineMap::getMultiDimIdentityMap(loops - 1, context);
  rowMap = AffineMap::get(loops, 0, rowMap.getResults(), context);
  SmallVector<unsigned> paramDims;
  if (groups > 1)
    paramDims.push_back(loops - 2);
  paramDims.push_back(loops - 1);
  AffineMap paramMap = loopsToDims(context, loops, paramDims);

  Value zero = floatConstant(b, loc, elementType, 0.0);
  Value count = sizeAsFloat(b, loc, groupSize, elementType);
  SmallVector<utils::IteratorType> reduce = iterators(loops - 1, 1);

  Value sum;
  if (subtractMean)
    sum =
        makeGeneric(b, loc, grouped, filledTensor(b, loc, rowSizes, zero),
                    {identity, rowMap}, reduce,
                    [](OpBuilder &nb, Location nloc, ValueRange args) {
                      linalg::YieldOp::create(nb, nloc,
                                              ValueRange{arith::AddFOp::create(
                                                  nb, nloc, args[1], args[0])});
                    })
            ->getResult(0);

  SmallVector<Value> squareInputs{grouped};
  SmallVector<AffineMap> squareMaps{identity};
  if (sum) {
    squareInputs.push_back(sum);
    squareMaps.push_back(rowMap);
  }
  squareMaps.push_back(rowMap);
  Value squares =
      makeGeneric(
          b, loc, squareInputs, filledTensor(b, loc, rowSizes, zero),
          squareMaps, reduce,
          [&](OpBuilder &nb, Location nloc, ValueRange args) {
            Value d = args[0];
            if (sum)
              d = arith::SubFOp::create(
                  nb, nloc, d, arith::DivFOp::create(nb, nloc, args[1], count));
            Value sq = arith::MulFOp::create(nb, nloc, d, d);
            linalg::YieldOp::create(
                nb, nloc,
                ValueRange{arith::AddFOp::create(nb, nloc, args.back(), sq)});
          })
          ->getResult(0);

  Value eps = floatConstant(b, loc, elementType, epsilon);
  Value offset = weightOffset != 0.0
                     ? floatConstant(b, loc, elementType, weightOffset)
                     : Value();
  // In a map's body: the row's scale rsqrt(Σ squares / n + eps), and the
  // weight with its offset.
  auto rowScale = [&](OpBuilder &nb, Location nloc, Value squaresSum) {
    Value var = arith::DivFOp::create(nb, nloc, squaresSum, count);
    return math::RsqrtOp::create(nb, nloc,
                                 arith::AddFOp::create(nb, nloc, var, eps))
        .getResult();
  };
  auto offsetWeight = [&](OpBuilder &nb, Location nloc, Value w) -> Value {
    return offset ? arith::AddFOp::create(nb, nloc, offset, w).getResult() : w;
  };
  if (meanOut) {
    // The gain and the mean, each its own map over the loops (reading the
    // row statistics and the weight, broadcast): one map with two results
    // would stay a scalar loop (glint-vectorize-elementwise takes maps with
    // one), with an rsqrt per element.
    SmallVector<Value> gainInputs{squares};
    SmallVector<AffineMap> gainMaps{rowMap};
    if (weight) {
      gainInputs.push_back(weight);
      gainMaps.push_back(paramMap);
    }
    gainMaps.push_back(identity);
    Value gain =
        makeGeneric(b, loc, gainInputs,
                    emptyTensor(b, loc, loopSizes, elementType), gainMaps,
                    iterators(loops),
                    [&](OpBuilder &nb, Location nloc, ValueRange args) {
                      Value gain = rowScale(nb, nloc, args[0]);
                      if (weight)
                        gain = arith::MulFOp::create(
                            nb, nloc, gain, offsetWeight(nb, nloc, args[1]));
                      linalg::YieldOp::create(nb, nloc, gain);
                    })
            ->getResult(0);
    // Without centring (RMS) the mean is zero.
    Value mean =
        sum ? makeGeneric(
                  b, loc, sum, emptyTensor(b, loc, loopSizes, elementType),
                  {rowMap, identity}, iterators(loops),
                  [&](OpBuilder &nb, Location nloc, ValueRange args) {
                    linalg::YieldOp::create(nb, nloc,
                                            ValueRange{arith::DivFOp::create(
                                                nb, nloc, args[0], count)});
                  })
                  ->getResult(0)
            : filledTensor(b, loc, loopSizes, zero);
    if (groups > 1) {
      gain = tensor::CollapseShapeOp::create(b, loc, gain,
                                             pairAt(rank + 1, rank - 1));
      mean = tensor::CollapseShapeOp::create(b, loc, mean,
                                             pairAt(rank + 1, rank - 1));
    }
    *meanOut = mean;
    return gain;
  }

  SmallVector<Value> inputs{grouped};
  SmallVector<AffineMap> maps{identity};
  if (sum) {
    inputs.push_back(sum);
    maps.push_back(rowMap);
  }
  inputs.push_back(squares);
  maps.push_back(rowMap);
  if (weight) {
    inputs.push_back(weight);
    maps.push_back(paramMap);
  }
  if (bias) {
    inputs.push_back(bias);
    maps.push_back(paramMap);
  }
  maps.push_back(identity);
  Value normalised =
      makeGeneric(b, loc, inputs, emptyTensor(b, loc, loopSizes, elementType),
                  maps, iterators(loops),
                  [&](OpBuilder &nb, Location nloc, ValueRange args) {
                    unsigned next = 1;
                    Value centred = args[0];
                    if (sum) {
                      Value mean =
                          arith::DivFOp::create(nb, nloc, args[next++], count);
                      centred = arith::SubFOp::create(nb, nloc, centred, mean);
                    }
                    Value scale = rowScale(nb, nloc, args[next++]);
                    Value y = arith::MulFOp::create(nb, nloc, centred, scale);
                    if (weight)
                      y = arith::MulFOp::create(
                          nb, nloc, y, offsetWeight(nb, nloc, args[next++]));
                    if (bias)
                      y = arith::AddFOp::create(nb, nloc, y, args[next++]);
                    linalg::YieldOp::create(nb, nloc, y);
                  })
          ->getResult(0);
  if (groups > 1)
    normalised = tensor::CollapseShapeOp::create(b, loc, normalised,
                                                 pairAt(rank + 1, rank - 1));
  return normalised;
}

namespace {
/// `glint.rms_norm` → sum of squares, then `x · rsqrt(mean + eps) · (offset +
/// w)`.
struct RMSNormLowering : public OpRewritePattern<RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    Value y = buildNorm(rewriter, op.getLoc(), op.getInput(), op.getWeight(),
                        Value(), op.getEpsilon().convertToDouble(),
                        op.getWeightOffset().convertToDouble(), 1,
                        /*subtractMean=*/false);
    rewriter.replaceOp(op, castTo(rewriter, op.getLoc(), y, op.getType()));
    return success();
  }
};

/// `glint.layer_norm` → sum, sum of squared deviations, affine pass.
struct LayerNormLowering : public OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rewriter) const override {
    Value y = buildNorm(rewriter, op.getLoc(), op.getInput(), op.getWeight(),
                        op.getBias(), op.getEpsilon().convertToDouble(), 0.0, 1,
                        /*subtractMean=*/true);
    rewriter.replaceOp(op, castTo(rewriter, op.getLoc(), y, op.getType()));
    return success();
  }
};

/// `glint.group_norm` → the layer norm of `[..., G, C / G]`, with the
/// per-channel weight and bias reshaped to `[G, C / G]`.
struct GroupNormLowering : public OpRewritePattern<GroupNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GroupNormOp op,
                                PatternRewriter &rewriter) const override {
    Value y = buildNorm(rewriter, op.getLoc(), op.getInput(), op.getWeight(),
                        op.getBias(), op.getEpsilon().convertToDouble(), 0.0,
                        op.getGroups(), /*subtractMean=*/true);
    rewriter.replaceOp(op, castTo(rewriter, op.getLoc(), y, op.getType()));
    return success();
  }
};

/// `glint.norm_stats` → the statistics of the norm it stands for (the same
/// reductions as rms/layer/group norm), written as the gain and the mean.
struct NormStatsLowering : public OpRewritePattern<NormStatsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NormStatsOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    int64_t channels = op.getInput().getType().getShape().back();
    if (op.getGroups() < 1 ||
        (!ShapedType::isDynamic(channels) && channels % op.getGroups() != 0))
      return rewriter.notifyMatchFailure(op, "channels do not divide");
    Value mean;
    Value gain = buildNorm(rewriter, loc, op.getInput(), op.getWeight(),
                           Value(), op.getEpsilon().convertToDouble(),
                           op.getWeightOffset().convertToDouble(),
                           op.getGroups(), op.getCenter(), &mean);
    rewriter.replaceOp(
        op, {castTo(rewriter, loc, gain, op.getGain().getType()),
             castTo(rewriter, loc, mean, op.getMean().getType())});
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.embedding
//===----------------------------------------------------------------------===//

/// `glint.embedding` → a gather: a generic over `[B, L, D]` reading
/// `table[ids[b, t], d]` with `tensor.extract`. Ids are not clamped: an id
/// outside the vocabulary is undefined behaviour in compiled code, so the
/// runtime validates the ids before calling (as the reference evaluator
/// reports them).
struct EmbeddingLowering : public OpRewritePattern<EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value ids = op.getIds(), table = op.getTable();
    Type elementType = op.getType().getElementType();
    SmallVector<OpFoldResult> sizes{
        tensor::getMixedSize(rewriter, loc, ids, 0),
        tensor::getMixedSize(rewriter, loc, ids, 1),
        tensor::getMixedSize(rewriter, loc, table, 1)};
    Value init = emptyTensor(rewriter, loc, sizes, elementType);
    AffineMap idMap = loopsToDims(rewriter.getContext(), 3, {0, 1});
    auto gather = makeGeneric(
        rewriter, loc, ids, init, {idMap, rewriter.getMultiDimIdentityMap(3)},
        iterators(3), [&](OpBuilder &b, Location nloc, ValueRange args) {
          Value row = args[0];
          if (!row.getType().isIndex())
            row = arith::IndexCastOp::create(b, nloc, b.getIndexType(), row);
          Value column = linalg::IndexOp::create(b, nloc, 2);
          Value value = tensor::ExtractOp::create(b, nloc, table,
                                                  ValueRange{row, column});
          linalg::YieldOp::create(b, nloc,
                                  convertFloat(b, nloc, value, elementType));
        });
    rewriter.replaceOp(
        op, castTo(rewriter, loc, gather->getResult(0), op.getType()));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.conv1d
//===----------------------------------------------------------------------===//

/// `glint.conv1d` → `linalg.depthwise_conv_1d_nwc_wc` over the input padded
/// with the `W - 1` positions before it (the initial state or zeros,
/// `tensor.concat`). The filter is the weight transposed to `[W, C]`. The
/// anti-causal (`reverse`) form is the causal one on the flipped sequence,
/// `y[t] = b + Σ_i w[i] · x[t + W-1 - i]`: the padding goes after the input
/// (the state flipped in time, as the state counts from the far end) and the
/// filter is flipped, so no activation is ever reversed. The final state is a
/// slice of the padded input.
struct Conv1dLowering : public OpRewritePattern<Conv1dOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(Conv1dOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Value x = op.getInput(), w = op.getWeight();
    Type elementType = tensorTypeOf(x).getElementType();
    int64_t width = op.getWidth();
    bool reverse = op.getReverse();
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, x);
    OpFoldResult batch = sizes[0], len = sizes[1], channels = sizes[2];

    // filter[j, c] = w[c, j], or w[c, W-1-j] for the anti-causal form.
    Value filterInit = emptyTensor(rewriter, loc,
                                   {rewriter.getIndexAttr(width),
                                    tensor::getMixedSize(rewriter, loc, w, 0)},
                                   elementType);
    Value filter;
    if (!reverse) {
      filter = linalg::TransposeOp::create(rewriter, loc, w, filterInit,
                                           ArrayRef<int64_t>{1, 0})
                   ->getResult(0);
    } else {
      AffineExpr j = getAffineDimExpr(0, context),
                 c = getAffineDimExpr(1, context);
      AffineMap flipped = AffineMap::get(2, 0, {c, (width - 1) - j}, context);
      filter = makeGeneric(rewriter, loc, w, filterInit,
                           {flipped, rewriter.getMultiDimIdentityMap(2)},
                           iterators(2),
                           [](OpBuilder &b, Location nloc, ValueRange args) {
                             linalg::YieldOp::create(b, nloc, args[0]);
                           })
                   ->getResult(0);
    }

    Value padded = x;
    if (width > 1) {
      Value history;
      if (Value state = op.getInitialState())
        history = reverse ? flipTime(rewriter, loc, state) : state;
      else
        history = filledTensor(
            rewriter, loc, {batch, rewriter.getIndexAttr(width - 1), channels},
            floatConstant(rewriter, loc, elementType, 0.0));
      SmallVector<Value> parts{history, x};
      if (reverse)
        std::swap(parts[0], parts[1]);
      padded = tensor::ConcatOp::create(rewriter, loc, 1, parts);
    }

    Value init;
    if (Value bias = op.getBias())
      init = linalg::BroadcastOp::create(
                 rewriter, loc, bias,
                 emptyTensor(rewriter, loc, sizes, elementType),
                 ArrayRef<int64_t>{0, 1})
                 ->getResult(0);
    else
      init = filledTensor(rewriter, loc, sizes,
                          floatConstant(rewriter, loc, elementType, 0.0));
    Value y = linalg::DepthwiseConv1DNwcWcOp::create(
                  rewriter, loc, TypeRange{init.getType()},
                  ValueRange{padded, filter}, ValueRange{init})
                  ->getResult(0);
    SmallVector<Value> results{
        castTo(rewriter, loc, y, op.getOutput().getType())};

    if (Value finalState = op.getFinalState()) {
      // The last W-1 inputs: padded[L, L + W-1) forward; backward the first
      // W-1 positions of the padded input, flipped back to state order.
      SmallVector<OpFoldResult> stateSizes{
          batch, rewriter.getIndexAttr(width - 1), channels};
      Value state;
      if (width == 1) {
        state = emptyTensor(rewriter, loc, stateSizes, elementType);
      } else {
        OpFoldResult zero = rewriter.getIndexAttr(0);
        OpFoldResult one = rewriter.getIndexAttr(1);
        state = tensor::ExtractSliceOp::create(
            rewriter, loc, padded, {zero, reverse ? zero : len, zero},
            stateSizes, {one, one, one});
        if (reverse)
          state = flipTime(rewriter, loc, state);
      }
      results.push_back(castTo(rewriter, loc, state, finalState.getType()));
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.token_shift
//===----------------------------------------------------------------------===//

/// `glint.token_shift` → `concat(state, x[:, 0 : L-1])` along the sequence
/// (zeros for an absent state); the final state is `x[:, L-1]`. The op
/// requires `L ≥ 1` (its final state is the last token).
struct TokenShiftLowering : public OpRewritePattern<TokenShiftOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TokenShiftOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    RankedTensorType type = tensorTypeOf(x);
    Type elementType = type.getElementType();
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, x);
    OpFoldResult zero = rewriter.getIndexAttr(0);
    OpFoldResult one = rewriter.getIndexAttr(1);

    Value first;
    if (Value state = op.getInitialState())
      first = expandTo(rewriter, loc, state, {{0, 1}, {2}},
                       {tensor::getMixedSize(rewriter, loc, state, 0), one,
                        tensor::getMixedSize(rewriter, loc, state, 1)});
    else
      first = filledTensor(rewriter, loc, {sizes[0], one, sizes[2]},
                           floatConstant(rewriter, loc, elementType, 0.0));
    OpFoldResult last = subIndex(rewriter, loc, sizes[1], 1);
    Value head = tensor::ExtractSliceOp::create(
        rewriter, loc, x, {zero, zero, zero}, {sizes[0], last, sizes[2]},
        {one, one, one});
    Value shifted =
        tensor::ConcatOp::create(rewriter, loc, 1, ValueRange{first, head});
    SmallVector<Value> results{
        castTo(rewriter, loc, shifted, op.getOutput().getType())};

    if (Value finalState = op.getFinalState()) {
      auto stateType = RankedTensorType::get(
          {type.getDimSize(0), type.getDimSize(2)}, elementType);
      Value state = tensor::ExtractSliceOp::create(
          rewriter, loc, stateType, x, {zero, last, zero},
          {sizes[0], one, sizes[2]}, {one, one, one});
      results.push_back(castTo(rewriter, loc, state, finalState.getType()));
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.rotary
//===----------------------------------------------------------------------===//

/// `glint.rotary` → the angle tables `cos, sin : [L, R/2]` of the positions
/// `offset + t` times the inverse frequencies `base^(-2i/R)` (a constant),
/// then one generic rotating the pairs: the two halves of the first `R`
/// features (rotate-half), or the even and odd ones (interleaved, a stride-2
/// slice). The rotated halves are inserted back into the input, so the
/// features past `R` pass through untouched.
struct RotaryLowering : public OpRewritePattern<RotaryOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RotaryOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Value x = op.getInput();
    Type elementType = tensorTypeOf(x).getElementType();
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, x);
    int64_t rotaryDim = op.getRotaryDim(), half = rotaryDim / 2;
    double base = op.getBase().convertToDouble();

    // Computed here in double, rounded once to the element type.
    SmallVector<Attribute> frequencies;
    for (int64_t i = 0; i < half; ++i)
      frequencies.push_back(rewriter.getFloatAttr(
          elementType, std::pow(base, -2.0 * i / rotaryDim)));
    Value inverseFrequency = arith::ConstantOp::create(
        rewriter, loc,
        DenseElementsAttr::get(RankedTensorType::get({half}, elementType),
                               frequencies));

    OpFoldResult halfSize = rewriter.getIndexAttr(half);
    SmallVector<OpFoldResult> tableSizes{sizes[1], halfSize};
    Value offset = op.getOffset();
    auto tables = makeGeneric(
        rewriter, loc, inverseFrequency,
        ValueRange{emptyTensor(rewriter, loc, tableSizes, elementType),
                   emptyTensor(rewriter, loc, tableSizes, elementType)},
        {loopsToDims(context, 2, {1}), rewriter.getMultiDimIdentityMap(2),
         rewriter.getMultiDimIdentityMap(2)},
        iterators(2), [&](OpBuilder &b, Location nloc, ValueRange args) {
          Value position = linalg::IndexOp::create(b, nloc, 0);
          if (offset)
            position = arith::AddIOp::create(b, nloc, offset, position);
          Value asInt =
              arith::IndexCastOp::create(b, nloc, b.getI64Type(), position);
          Value asFloat = arith::SIToFPOp::create(b, nloc, elementType, asInt);
          Value theta = arith::MulFOp::create(b, nloc, asFloat, args[0]);
          linalg::YieldOp::create(
              b, nloc,
              ValueRange{math::CosOp::create(b, nloc, theta),
                         math::SinOp::create(b, nloc, theta)});
        });
    Value cos = tables->getResult(0), sin = tables->getResult(1);

    bool interleaved = op.getInterleaved();
    OpFoldResult zero = rewriter.getIndexAttr(0);
    OpFoldResult one = rewriter.getIndexAttr(1);
    OpFoldResult stride = rewriter.getIndexAttr(interleaved ? 2 : 1);
    SmallVector<OpFoldResult> pairSizes{sizes[0], sizes[1], sizes[2], halfSize};
    SmallVector<OpFoldResult> strides{one, one, one, stride};
    SmallVector<OpFoldResult> firstOffsets{zero, zero, zero, zero};
    SmallVector<OpFoldResult> secondOffsets{
        zero, zero, zero, rewriter.getIndexAttr(interleaved ? 1 : half)};
    Value first = tensor::ExtractSliceOp::create(rewriter, loc, x, firstOffsets,
                                                 pairSizes, strides);
    Value second = tensor::ExtractSliceOp::create(
        rewriter, loc, x, secondOffsets, pairSizes, strides);

    AffineMap identity = rewriter.getMultiDimIdentityMap(4);
    AffineMap tableMap = loopsToDims(context, 4, {1, 3});
    auto rotated = makeGeneric(
        rewriter, loc, ValueRange{first, second, cos, sin},
        ValueRange{emptyTensor(rewriter, loc, pairSizes, elementType),
                   emptyTensor(rewriter, loc, pairSizes, elementType)},
        {identity, identity, tableMap, tableMap, identity, identity},
        iterators(4), [](OpBuilder &b, Location nloc, ValueRange args) {
          Value a = args[0], c = args[1], cosT = args[2], sinT = args[3];
          auto mul = [&](Value l, Value r) -> Value {
            return arith::MulFOp::create(b, nloc, l, r);
          };
          Value ra = arith::SubFOp::create(b, nloc, mul(a, cosT), mul(c, sinT));
          Value rc = arith::AddFOp::create(b, nloc, mul(c, cosT), mul(a, sinT));
          linalg::YieldOp::create(b, nloc, ValueRange{ra, rc});
        });
    Value result =
        tensor::InsertSliceOp::create(rewriter, loc, rotated->getResult(0), x,
                                      firstOffsets, pairSizes, strides);
    result = tensor::InsertSliceOp::create(rewriter, loc, rotated->getResult(1),
                                           result, secondOffsets, pairSizes,
                                           strides);
    rewriter.replaceOp(op, castTo(rewriter, loc, result, op.getType()));
    return success();
  }
};

//===----------------------------------------------------------------------===//
// glint.attention
//===----------------------------------------------------------------------===//

/// `glint.attention` → with the query heads split as `[G, H/G]` so that each
/// query head group meets its key/value head through a plain (projected
/// permutation) indexing map:
///   S[b, i, g, r, j] = Σ_d q[b, i, g, r, d] · k[b, j, g, d]   (contraction)
///   M[b, i, g, r]    = max over visible j of scale · S          (reduction)
///   E                = visible ? exp(scale · S - M) : 0         (element-wise)
///   Z[b, i, g, r]    = Σ_j E                                    (reduction)
///   O[b, i, g, r, e] = Σ_j E · v[b, j, g, e] / Z                (contraction,
///                                                              then divide)
/// where `j` is visible from `i` when `j ≤ i` (and `i - j < window`). The
/// layouts keep the head axes between the sequence axes, where batch_matmul
/// cannot take them without transposing q, k and v; the generics are
/// contractions the vectoriser handles all the same.
///
/// With a cache of `C` rows, the keys and values are `concat(cache, k)` and
/// `concat(cache, v)`, query `i` sits at key position `C + i`, the cache rows
/// before `C - min(position, C)` (before the sequence start) are invisible,
/// and the final caches are the last `C` rows of the concatenations.
///
/// With a window `w` and no cache, the key axis is the band of the
/// `n = min(w, L)` keys up to each query (at least 1) instead of all L: the
/// keys and values get `n - 1` zero rows in front (`kp = concat(0, k)`),
/// loop `j` runs over `[0, n)` and reads key row `i + j` of `kp` (key
/// `i + j - (n - 1)`), visible when that is not before the sequence. The work
/// is then L·n, not L², and the results are the same to the bit: the same
/// products, summed in the same order (only the invisible zeros differ).
struct AttentionLowering : public OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *context = rewriter.getContext();
    Value q = op.getQ(), k = op.getK(), v = op.getV();
    Type elementType = tensorTypeOf(q).getElementType();
    int64_t cacheLength = op.getCacheLength();
    if (op.getKeyCache()) {
      k = tensor::ConcatOp::create(rewriter, loc, 1,
                                   ValueRange{op.getKeyCache(), k});
      v = tensor::ConcatOp::create(rewriter, loc, 1,
                                   ValueRange{op.getValueCache(), v});
    }

    SmallVector<OpFoldResult> qSizes = tensor::getMixedSizes(rewriter, loc, q);
    OpFoldResult batch = qSizes[0], len = qSizes[1], heads = qSizes[2],
                 headDim = qSizes[3];
    OpFoldResult groups = tensor::getMixedSize(rewriter, loc, k, 2);
    OpFoldResult keyLen =
        op.getKeyCache() ? tensor::getMixedSize(rewriter, loc, k, 1) : len;
    OpFoldResult valueDim = tensor::getMixedSize(rewriter, loc, v, 3);
    OpFoldResult perGroup = divIndex(rewriter, loc, heads, groups);
    Value grouped = expandTo(rewriter, loc, q, {{0}, {1}, {2, 3}, {4}},
                             {batch, len, groups, perGroup, headDim});

    Value zero = floatConstant(rewriter, loc, elementType, 0.0);
    Value scale = floatConstant(rewriter, loc, elementType,
                                op.getScale().convertToDouble());
    Value minusInf = arith::getIdentityValue(arith::AtomicRMWKind::maximumf,
                                             elementType, rewriter, loc);
    std::optional<int64_t> window;
    if (auto attr = op.getWindowAttr())
      window = attr.getInt();
    // The first cache row inside the sequence: max(C - position, 0).
    Value firstKey;
    if (op.getKeyCache()) {
      Value c = arith::ConstantIndexOp::create(rewriter, loc, cacheLength);
      Value before = arith::SubIOp::create(rewriter, loc, c, op.getPosition());
      firstKey = arith::MaxSIOp::create(
          rewriter, loc, before,
          arith::ConstantIndexOp::create(rewriter, loc, 0));
    }
    // The band of a window: n = min(w, L) keys per query, after n - 1 zero
    // rows in front of the keys and values.
    bool banded = window && !op.getKeyCache();
    Value bandFirst; // n - 1: the first row of the padded keys in the sequence
    if (banded) {
      Value lenValue = getValueOrCreateConstantIndexOp(rewriter, loc, len);
      // At least one key, so that an empty sequence pads no rows (-1).
      Value band = arith::MaxSIOp::create(
          rewriter, loc,
          arith::MinSIOp::create(
              rewriter, loc, lenValue,
              arith::ConstantIndexOp::create(rewriter, loc, *window)),
          arith::ConstantIndexOp::create(rewriter, loc, 1));
      bandFirst = arith::SubIOp::create(
          rewriter, loc, band,
          arith::ConstantIndexOp::create(rewriter, loc, 1));
      keyLen = band;
      auto padFront = [&](Value x) -> Value {
        SmallVector<OpFoldResult> sizes =
            tensor::getMixedSizes(rewriter, loc, x);
        sizes[1] = bandFirst;
        return tensor::ConcatOp::create(
            rewriter, loc, 1,
            ValueRange{filledTensor(rewriter, loc, sizes, zero), x});
      };
      k = padFront(k);
      v = padFront(v);
    }
    // Inside a generic over (b, i, g, r, j): may query i see key j?
    auto visible = [window, cacheLength, firstKey,
                    bandFirst](OpBuilder &b, Location nloc) -> Value {
      Value i = linalg::IndexOp::create(b, nloc, 1);
      Value j = linalg::IndexOp::create(b, nloc, 4);
      if (bandFirst) // key row i + j of the padded keys: in the sequence?
        return arith::CmpIOp::create(b, nloc, arith::CmpIPredicate::uge,
                                     arith::AddIOp::create(b, nloc, i, j),
                                     bandFirst);
      if (cacheLength > 0)
        i = arith::AddIOp::create(
            b, nloc, i, arith::ConstantIndexOp::create(b, nloc, cacheLength));
      Value causal =
          arith::CmpIOp::create(b, nloc, arith::CmpIPredicate::ule, j, i);
      if (firstKey)
        causal = arith::AndIOp::create(
            b, nloc, causal,
            arith::CmpIOp::create(b, nloc, arith::CmpIPredicate::uge, j,
                                  firstKey));
      if (!window)
        return causal;
      Value limit = arith::AddIOp::create(
          b, nloc, j, arith::ConstantIndexOp::create(b, nloc, *window));
      Value recent =
          arith::CmpIOp::create(b, nloc, arith::CmpIPredicate::ult, i, limit);
      return arith::AndIOp::create(b, nloc, causal, recent);
    };

    // The map of k (or v) in loops (b, i, g, r, ..., with j at `jLoop` and
    // the head dimension at `dLoop`): row j, or i + j of the band.
    auto keyMap = [&](unsigned jLoop, unsigned dLoop) {
      AffineExpr row = getAffineDimExpr(jLoop, context);
      if (banded)
        row = getAffineDimExpr(1, context) + row;
      return AffineMap::get(6, 0,
                            {getAffineDimExpr(0, context), row,
                             getAffineDimExpr(2, context),
                             getAffineDimExpr(dLoop, context)},
                            context);
    };
    SmallVector<OpFoldResult> rowSizes{batch, len, groups, perGroup};
    SmallVector<OpFoldResult> scoreSizes{batch, len, groups, perGroup, keyLen};
    AffineMap score5 = rewriter.getMultiDimIdentityMap(5);
    AffineMap row5 = loopsToDims(context, 5, {0, 1, 2, 3});

    // Loops (b, i, g, r, j, d).
    Value scores =
        makeGeneric(
            rewriter, loc, ValueRange{grouped, k},
            filledTensor(rewriter, loc, scoreSizes, zero),
            {loopsToDims(context, 6, {0, 1, 2, 3, 5}), keyMap(4, 5),
             loopsToDims(context, 6, {0, 1, 2, 3, 4})},
            iterators(5, 1),
            [](OpBuilder &b, Location nloc, ValueRange args) {
              Value p = arith::MulFOp::create(b, nloc, args[0], args[1]);
              linalg::YieldOp::create(
                  b, nloc,
                  ValueRange{arith::AddFOp::create(b, nloc, args[2], p)});
            })
            ->getResult(0);

    // Loops (b, i, g, r, j).
    Value rowMax =
        makeGeneric(
            rewriter, loc, scores,
            filledTensor(rewriter, loc, rowSizes, minusInf), {score5, row5},
            iterators(4, 1),
            [&](OpBuilder &b, Location nloc, ValueRange args) {
              // A visible score above the running maximum replaces
              // it: one ordered compare, where `maximumf` costs a
              // NaN and a signed-zero test per element on x86. A
              // NaN score is skipped here, and still reaches the
              // output through its weight exp(NaN - M); M = +0 or
              // -0 gives the same weights.
              Value s = arith::MulFOp::create(b, nloc, scale, args[0]);
              Value above = arith::CmpFOp::create(
                  b, nloc, arith::CmpFPredicate::OGT, s, args[1]);
              Value take =
                  arith::AndIOp::create(b, nloc, visible(b, nloc), above);
              linalg::YieldOp::create(b, nloc,
                                      ValueRange{arith::SelectOp::create(
                                          b, nloc, take, s, args[1])});
            })
            ->getResult(0);

    Value weights =
        makeGeneric(rewriter, loc, ValueRange{scores, rowMax},
                    emptyTensor(rewriter, loc, scoreSizes, elementType),
                    {score5, row5, score5}, iterators(5),
                    [&](OpBuilder &b, Location nloc, ValueRange args) {
                      Value s = arith::MulFOp::create(b, nloc, scale, args[0]);
                      Value e = math::ExpOp::create(
                          b, nloc, arith::SubFOp::create(b, nloc, s, args[1]));
                      linalg::YieldOp::create(
                          b, nloc,
                          ValueRange{arith::SelectOp::create(
                              b, nloc, visible(b, nloc), e, zero)});
                    })
            ->getResult(0);

    Value total =
        makeGeneric(
            rewriter, loc, weights, filledTensor(rewriter, loc, rowSizes, zero),
            {score5, row5}, iterators(4, 1),
            [](OpBuilder &b, Location nloc, ValueRange args) {
              linalg::YieldOp::create(
                  b, nloc,
                  ValueRange{arith::AddFOp::create(b, nloc, args[1], args[0])});
            })
            ->getResult(0);

    // Loops (b, i, g, r, j, e): the value axis innermost, so that a key's
    // weight scales a contiguous row of v into a contiguous row of O (a
    // vector loop), where with j innermost each output element summed its
    // column of v one scalar at a time, stored back at every step. Each
    // element still adds its terms in the order of j: the same sums.
    SmallVector<OpFoldResult> outSizes{batch, len, groups, perGroup, valueDim};
    SmallVector<utils::IteratorType> keysThenValues = iterators(4, 1);
    keysThenValues.push_back(kParallel);
    Value weighted =
        makeGeneric(
            rewriter, loc, ValueRange{weights, v},
            filledTensor(rewriter, loc, outSizes, zero),
            {loopsToDims(context, 6, {0, 1, 2, 3, 4}), keyMap(4, 5),
             loopsToDims(context, 6, {0, 1, 2, 3, 5})},
            keysThenValues,
            [](OpBuilder &b, Location nloc, ValueRange args) {
              Value p = arith::MulFOp::create(b, nloc, args[0], args[1]);
              linalg::YieldOp::create(
                  b, nloc,
                  ValueRange{arith::AddFOp::create(b, nloc, args[2], p)});
            })
            ->getResult(0);

    // Loops (b, i, g, r, e).
    Value normalised =
        makeGeneric(rewriter, loc, ValueRange{weighted, total},
                    emptyTensor(rewriter, loc, outSizes, elementType),
                    {score5, row5, score5}, iterators(5),
                    [](OpBuilder &b, Location nloc, ValueRange args) {
                      linalg::YieldOp::create(b, nloc,
                                              ValueRange{arith::DivFOp::create(
                                                  b, nloc, args[0], args[1])});
                    })
            ->getResult(0);
    Value result = tensor::CollapseShapeOp::create(
        rewriter, loc, normalised,
        ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}, {4}});
    SmallVector<Value> results{
        castTo(rewriter, loc, result, op.getOutput().getType())};
    if (op.getFinalKeyCache()) {
      // The last C rows: [len, len + C) of the concatenations.
      OpFoldResult zeroIndex = rewriter.getIndexAttr(0);
      OpFoldResult one = rewriter.getIndexAttr(1);
      OpFoldResult rows = rewriter.getIndexAttr(cacheLength);
      for (auto [full, finalCache] : {std::pair(k, op.getFinalKeyCache()),
                                      std::pair(v, op.getFinalValueCache())}) {
        SmallVector<OpFoldResult> sizes =
            tensor::getMixedSizes(rewriter, loc, full);
        sizes[1] = rows;
        Value slice = tensor::ExtractSliceOp::create(
            rewriter, loc, full, {zeroIndex, len, zeroIndex, zeroIndex}, sizes,
            {one, one, one, one});
        results.push_back(castTo(rewriter, loc, slice, finalCache.getType()));
      }
    }
    rewriter.replaceOp(op, results);
    return success();
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {
struct ConvertGlintToLinalgPass
    : public glint::impl::ConvertGlintToLinalgBase<ConvertGlintToLinalgPass> {
  void runOnOperation() override {
    MLIRContext *context = &getContext();
    RewritePatternSet patterns(context);
    patterns
        .add<ActLowering, AttentionLowering, Conv1dLowering, EmbeddingLowering,
             GroupNormLowering, LayerNormLowering, LinearLowering,
             NormStatsLowering, RMSNormLowering, RotaryLowering,
             TokenShiftLowering>(context);
    // Only the glint ops are rewritten: folding the surrounding IR is
    // canonicalisation's job, and keeps this pass's output predictable.
    GreedyRewriteConfig config;
    config.enableFolding(false);
    config.setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
    // Every pattern succeeds on every op its verifier accepts, so a leftover
    // is a bug in this pass: report it rather than hand it on.
    WalkResult leftover = getOperation().walk([](Operation *op) {
      if (!isa<ActOp, AttentionOp, Conv1dOp, EmbeddingOp, GroupNormOp,
               LayerNormOp, LinearOp, NormStatsOp, RMSNormOp, RotaryOp,
               TokenShiftOp>(op))
        return WalkResult::advance();
      op->emitOpError("was not lowered to linalg");
      return WalkResult::interrupt();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
