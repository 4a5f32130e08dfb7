//===- ToAttention.cpp - glint-to-attention -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Rewrites each token-mixing layer into its implicit attention form. The
// mixer's body is inlined; every op on the path of the value input is then
// mirrored by a factor of a `!glint.map` (the per-channel L × L matrices
// from the value input to that op's result) and, for the exact formulation,
// by the same op applied to the offset (the part of the value that the
// matrices cannot carry: biases and normalisation centring). Values off the
// path are the controls that parameterise the matrices; they stay as they
// are and are computed as before.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "glint-to-attention"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTTOATTENTION
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// Which factors a formulation keeps.
struct Factors {
  bool exact = true;     // unified: the matrix plus offset is the layer
  bool conv = true;      // conv1d and token shift
  bool gate = true;      // multiplications by a data-dependent control
  bool act = true;       // activation diagonals
  bool norm = true;      // normalisation diagonals
  bool skip = true;      // the recurrence's skip term (Mamba's D)
};

static Factors factorsOf(Formulation formulation) {
  Factors f;
  f.exact = formulation == Formulation::unified;
  switch (formulation) {
  case Formulation::unified:
    break;
  case Formulation::scan_only:
    f.conv = f.gate = f.act = f.norm = f.skip = false;
    break;
  case Formulation::no_conv:
    f.conv = false;
    break;
  case Formulation::no_gate:
    f.gate = false;
    break;
  case Formulation::no_act:
    f.act = false;
    break;
  }
  return f;
}

/// A value on the value path: its matrices and (exact formulation) offset.
struct PathValue {
  Value map;
  Value offset;
};

/// An uninitialised tensor shaped like `like`.
static Value emptyLike(OpBuilder &b, Location loc, Value like) {
  auto type = cast<RankedTensorType>(like.getType());
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dynamic.push_back(tensor::DimOp::create(b, loc, like, i));
  return tensor::EmptyOp::create(b, loc, type.getShape(),
                                 type.getElementType(), dynamic);
}

/// A tensor of zeros shaped like `like`.
static Value zerosLike(OpBuilder &b, Location loc, Value like) {
  Value zero = arith::ConstantOp::create(
      b, loc, b.getZeroAttr(getElementTypeOrSelf(like.getType())));
  return linalg::FillOp::create(b, loc, zero, emptyLike(b, loc, like))
      .getResult(0);
}

/// Broadcasts a per-channel vector `[C]` to the shape of `like` (`[..., C]`).
static Value broadcastChannels(OpBuilder &b, Location loc, Value vector,
                               Value like) {
  SmallVector<int64_t> dims;
  for (int64_t i = 0; i + 1 < cast<RankedTensorType>(like.getType()).getRank();
       ++i)
    dims.push_back(i);
  return linalg::BroadcastOp::create(b, loc, vector, emptyLike(b, loc, like),
                                     dims)
      .getResult()[0];
}

/// True when `value` is a compile-time constant (a dense constant or a
/// splat of one): multiplying by it is a fixed scale, not a gate.
static bool isConstantTensor(Value value) {
  if (matchPattern(value, m_Constant()))
    return true;
  if (auto splat = value.getDefiningOp<tensor::SplatOp>())
    return matchPattern(splat.getInput(), m_Constant());
  return false;
}

static MapType mapTypeOf(Value value) {
  return MapType::get(value.getContext(),
                      cast<RankedTensorType>(value.getType()));
}

/// Rewrites the layers of one function.
class LayerRewriter {
public:
  LayerRewriter(func::FuncOp func, const Factors &formulation,
                MapAggregate aggregate, ArrayRef<int64_t> channels,
                std::optional<int64_t> row)
      : func(func), formulation(formulation), aggregate(aggregate),
        channels(channels), row(row), rewriter(func.getContext()) {}

  LogicalResult run();

private:
  LogicalResult rewriteMixer(MixerOp mixer);
  LogicalResult rewriteAttentionLayer(AttentionOp attention);
  /// Mirrors `op` on the value path; returns failure with a diagnostic if
  /// the op has no attention form, or success with nothing recorded when
  /// the op only reads path values as controls.
  LogicalResult mirror(Operation *op);
  void record(Value result, Value map, Value offset) {
    path[result] = PathValue{map, offset};
  }
  Value reduce(Location loc, Value map);
  /// Explains why the layer output is not on the value path.
  void explainBrokenPath(MixerOp mixer, Value yielded);

  func::FuncOp func;
  const Factors &formulation;
  MapAggregate aggregate;
  ArrayRef<int64_t> channels;
  std::optional<int64_t> row;
  IRRewriter rewriter;
  DenseMap<Value, PathValue> path;
  SmallVector<Value> layerMaps;
  SmallVector<Attribute> layerLabels;
};

} // namespace

Value LayerRewriter::reduce(Location loc, Value map) {
  auto type = cast<MapType>(map.getType()).getValueType();
  int64_t batch = type.getDimSize(0), len = type.getDimSize(1);
  SmallVector<int64_t> shape = {batch};
  if (aggregate == MapAggregate::full) {
    int64_t count = 1;
    for (int64_t d : type.getShape().drop_front(2))
      count *= d;
    shape.push_back(channels.empty() ? count : channels.size());
  }
  if (!row)
    shape.push_back(len);
  shape.push_back(len);
  auto resultType = RankedTensorType::get(shape, type.getElementType());
  auto op = MapReduceOp::create(
      rewriter, loc, resultType, map,
      MapAggregateAttr::get(rewriter.getContext(), aggregate),
      channels.empty() ? DenseI64ArrayAttr()
                       : rewriter.getDenseI64ArrayAttr(channels),
      row ? rewriter.getI64IntegerAttr(*row) : IntegerAttr());
  return op.getResult();
}

LogicalResult LayerRewriter::mirror(Operation *op) {
  auto onPath = [&](Value v) { return path.count(v) != 0; };
  if (llvm::none_of(op->getOperands(), onPath))
    return success();
  Location loc = op->getLoc();
  rewriter.setInsertionPointAfter(op);
  bool exact = formulation.exact;

  // The offset version of a path op: the same op with the offset in place
  // of the path operand.
  auto cloneOnOffset = [&](Value pathOperand) -> Value {
    if (!exact)
      return Value();
    IRMapping mapping;
    mapping.map(pathOperand, path[pathOperand].offset);
    return rewriter.clone(*op, mapping)->getResult(0);
  };
  auto scaled = [&](Value map, Value gain, bool keep) -> Value {
    if (!keep)
      return map;
    return MapScaleOp::create(rewriter, loc, map.getType(), map, gain);
  };
  auto mulOffset = [&](Value offset, Value gain) -> Value {
    if (!exact)
      return Value();
    return arith::MulFOp::create(rewriter, loc, offset, gain);
  };

  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](Conv1dOp conv) -> LogicalResult {
        if (!onPath(conv.getInput()))
          return success();
        if (conv.getInitialState())
          return conv.emitOpError(
              "on a layer's value path must not have an initial state: the "
              "attention form explains one sequence from its start");
        Value in = path[conv.getInput()].map;
        Value map = formulation.conv
                        ? MapConvOp::create(rewriter, loc, in.getType(), in,
                                            conv.getWeight(),
                                            conv.getReverseAttr())
                              .getResult()
                        : in;
        record(conv.getOutput(), map, cloneOnOffset(conv.getInput()));
        return success();
      })
      .Case([&](TokenShiftOp shift) -> LogicalResult {
        if (shift.getInitialState())
          return shift.emitOpError(
              "on a layer's value path must not have an initial state");
        Value in = path[shift.getInput()].map;
        Value map = formulation.conv
                        ? MapShiftOp::create(rewriter, loc, in).getResult()
                        : in;
        record(shift.getOutput(), map, cloneOnOffset(shift.getInput()));
        return success();
      })
      .Case([&](ActOp act) -> LogicalResult {
        switch (act.getKind()) {
        case ActKind::sigmoid:
        case ActKind::softplus:
        case ActKind::exp:
        case ActKind::neg_exp:
          return act.emitOpError()
                 << "'" << stringifyActKind(act.getKind())
                 << "' on a layer's value path has f(0) != 0, so it is no "
                    "data-controlled diagonal f(x) = phi(x) * x; the layer "
                    "has no attention form";
        default:
          break;
        }
        Value gain = ActGainOp::create(rewriter, loc, act.getKindAttr(),
                                       act.getInput());
        PathValue in = path[act.getInput()];
        record(act.getOutput(), scaled(in.map, gain, formulation.act),
               mulOffset(in.offset, gain));
        return success();
      })
      .Case([&](arith::MulFOp mul) -> LogicalResult {
        if (onPath(mul.getLhs()) && onPath(mul.getRhs()))
          return mul.emitOpError(
              "multiplies two values that both depend on the layer's value "
              "input: the layer is not linear in it and has no attention "
              "form");
        Value p = onPath(mul.getLhs()) ? mul.getLhs() : mul.getRhs();
        Value control = p == mul.getLhs() ? mul.getRhs() : mul.getLhs();
        bool keep = isConstantTensor(control) || formulation.gate;
        PathValue in = path[p];
        record(mul.getResult(), scaled(in.map, control, keep),
               mulOffset(in.offset, control));
        return success();
      })
      .Case([&](arith::AddFOp add) -> LogicalResult {
        Value lhs = add.getLhs(), rhs = add.getRhs();
        if (onPath(lhs) && onPath(rhs)) {
          Value map = MapAddOp::create(rewriter, loc, path[lhs].map,
                                       path[rhs].map);
          Value offset = exact ? arith::AddFOp::create(rewriter, loc,
                                                       path[lhs].offset,
                                                       path[rhs].offset)
                                     .getResult()
                               : Value();
          record(add.getResult(), map, offset);
          return success();
        }
        Value p = onPath(lhs) ? lhs : rhs;
        Value control = p == lhs ? rhs : lhs;
        Value offset = exact ? arith::AddFOp::create(rewriter, loc,
                                                     path[p].offset, control)
                                   .getResult()
                             : Value();
        record(add.getResult(), path[p].map, offset);
        return success();
      })
      .Case([&](arith::SubFOp sub) -> LogicalResult {
        if (onPath(sub.getRhs()))
          return sub.emitOpError(
              "subtracts a value that depends on the layer's value input; "
              "only `path - control` has an attention form here");
        PathValue in = path[sub.getLhs()];
        Value offset = exact ? arith::SubFOp::create(rewriter, loc, in.offset,
                                                     sub.getRhs())
                                   .getResult()
                             : Value();
        record(sub.getResult(), in.map, offset);
        return success();
      })
      .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
          [&](auto reshape) -> LogicalResult {
            auto reassociation = reshape.getReassociationIndices();
            if (reassociation.size() < 2 || reassociation[0].size() != 1 ||
                reassociation[1].size() != 1)
              return reshape.emitOpError(
                  "regroups the batch or sequence axes of a layer's value "
                  "path; only channel axes can be regrouped in the "
                  "attention form");
            Value in = path[reshape.getSrc()].map;
            Value map = MapReshapeOp::create(
                rewriter, loc, mapTypeOf(reshape.getResult()), in);
            record(reshape.getResult(), map, cloneOnOffset(reshape.getSrc()));
            return success();
          })
      .Case([&](RecurrenceOp rec) -> LogicalResult {
        if (!onPath(rec.getV()))
          return success(); // reads the path as a control (keys, decays)
        if (rec.getInitialState())
          return rec.emitOpError(
              "on a layer's value path must not have an initial state: the "
              "attention form explains one sequence from its start");
        Value in = path[rec.getV()].map;
        Value skip = formulation.skip ? rec.getSkip() : Value();
        Value map = MapScanOp::create(
            rewriter, loc, mapTypeOf(rec.getOutput()), in, rec.getQ(),
            rec.getK(), rec.getLogDecay(), rec.getDelta(), rec.getBonus(),
            skip, rec.getReverseAttr(), rec.getNormalizeAttr());
        record(rec.getOutput(), map, cloneOnOffset(rec.getV()));
        return success();
      })
      .Case([&](AttentionOp att) -> LogicalResult {
        if (!onPath(att.getV()))
          return success();
        Value in = path[att.getV()].map;
        Value map = MapAttentionOp::create(
            rewriter, loc, mapTypeOf(att.getOutput()), in, att.getQ(),
            att.getK(), att.getScaleAttr(), att.getWindowAttr());
        record(att.getOutput(), map, cloneOnOffset(att.getV()));
        return success();
      })
      .Case<RMSNormOp, LayerNormOp, GroupNormOp>(
          [&](auto norm) -> LogicalResult {
            Value input = norm.getInput();
            int64_t groups = 1;
            double weightOffset = 0.0;
            bool center = !isa<RMSNormOp>(norm.getOperation());
            Value bias;
            if constexpr (std::is_same_v<decltype(norm), GroupNormOp>)
              groups = norm.getGroups();
            if constexpr (std::is_same_v<decltype(norm), RMSNormOp>)
              weightOffset = norm.getWeightOffset().convertToDouble();
            else
              bias = norm.getBias();
            auto stats = NormStatsOp::create(
                rewriter, loc, input.getType(), input.getType(), input,
                rewriter.getI64IntegerAttr(groups), norm.getWeight(),
                norm.getEpsilonAttr(), rewriter.getF64FloatAttr(weightOffset),
                center ? rewriter.getUnitAttr() : UnitAttr());
            PathValue in = path[input];
            Value offset;
            if (exact) {
              offset = in.offset;
              if (center)
                offset = arith::SubFOp::create(rewriter, loc, offset,
                                               stats.getMean());
              offset = arith::MulFOp::create(rewriter, loc, offset,
                                             stats.getGain());
              if (bias)
                offset = arith::AddFOp::create(
                    rewriter, loc, offset,
                    broadcastChannels(rewriter, loc, bias, offset));
            }
            record(norm.getOutput(),
                   scaled(in.map, stats.getGain(), formulation.norm), offset);
            return success();
          })
      .Default([&](Operation *) { return success(); });
}

void LayerRewriter::explainBrokenPath(MixerOp mixer, Value yielded) {
  // Walk back from the output to the first op that consumes a path value
  // but has no mirror: that op cut the path.
  SmallVector<Value> work = {yielded};
  DenseSet<Value> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    Operation *def = v.getDefiningOp();
    if (!def)
      continue;
    if (llvm::any_of(def->getOperands(),
                     [&](Value o) { return path.count(o); })) {
      InFlightDiagnostic diag = def->emitOpError();
      if (isa<LinearOp>(def))
        diag << "mixes channels on the value path of layer ";
      else
        diag << "is on the value path of layer ";
      diag << mixer.getLabelAttr()
           << " but has no attention form (only convolutions, token shift, "
              "activations, gates, norms, recurrences, softmax attention, "
              "sums and channel reshapes do)";
      return;
    }
    for (Value operand : def->getOperands())
      work.push_back(operand);
  }
  mixer.emitOpError("output does not depend on the layer's value input");
}

LogicalResult LayerRewriter::rewriteMixer(MixerOp mixer) {
  Location loc = mixer.getLoc();
  Value input = mixer.getInput();
  rewriter.setInsertionPoint(mixer);
  Value identity = MapIdentityOp::create(rewriter, loc, mapTypeOf(input),
                                         input);
  Value zeros = formulation.exact ? zerosLike(rewriter, loc, input) : Value();

  Block &body = mixer.getBody().front();
  if (!body.getOps<MixerOp>().empty())
    return mixer.emitOpError("contains another glint.mixer; nested mixers "
                             "have no attention form");
  SmallVector<Operation *> ops;
  for (Operation &op : body.without_terminator())
    ops.push_back(&op);
  Value yielded = mixer.getYield().getValue();
  bool identityBody = yielded == mixer.getValueArgument();
  rewriter.eraseOp(mixer.getYield());
  rewriter.inlineBlockBefore(&body, mixer, ValueRange{input});
  if (identityBody)
    yielded = input;

  path.clear();
  record(input, identity, zeros);
  for (Operation *op : ops)
    if (failed(mirror(op)))
      return failure();
  auto it = path.find(yielded);
  if (it == path.end()) {
    explainBrokenPath(mixer, yielded);
    return failure();
  }

  rewriter.setInsertionPoint(mixer);
  layerMaps.push_back(reduce(loc, it->second.map));
  layerLabels.push_back(mixer.getLabelAttr()
                            ? Attribute(mixer.getLabelAttr())
                            : rewriter.getStringAttr(llvm::formatv(
                                  "layer{0}", layerLabels.size())));
  Value output = yielded;
  if (formulation.exact) {
    Value applied = MapApplyOp::create(rewriter, loc, yielded.getType(),
                                       it->second.map, input);
    output = arith::AddFOp::create(rewriter, loc, applied,
                                   it->second.offset);
  }
  rewriter.replaceOp(mixer, output);
  return success();
}

LogicalResult LayerRewriter::rewriteAttentionLayer(AttentionOp attention) {
  Location loc = attention.getLoc();
  rewriter.setInsertionPointAfter(attention);
  Value identity = MapIdentityOp::create(
      rewriter, loc, mapTypeOf(attention.getV()), attention.getV());
  Value map = MapAttentionOp::create(
      rewriter, loc, mapTypeOf(attention.getOutput()), identity,
      attention.getQ(), attention.getK(), attention.getScaleAttr(),
      attention.getWindowAttr());
  layerMaps.push_back(reduce(loc, map));
  layerLabels.push_back(rewriter.getStringAttr(
      llvm::formatv("attention{0}", layerLabels.size()).str()));
  return success();
}

LogicalResult LayerRewriter::run() {
  SmallVector<Operation *> layers;
  func.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (isa<MixerOp>(op)) {
      layers.push_back(op);
      return WalkResult::skip();
    }
    if (isa<AttentionOp>(op))
      layers.push_back(op);
    return WalkResult::advance();
  });
  if (layers.empty())
    return success();
  for (Operation *layer : layers) {
    LogicalResult result =
        isa<MixerOp>(layer) ? rewriteMixer(cast<MixerOp>(layer))
                            : rewriteAttentionLayer(cast<AttentionOp>(layer));
    if (failed(result))
      return failure();
  }

  if (!func.getBody().hasOneBlock())
    return func.emitOpError("has several blocks; glint-to-attention expects "
                            "a model function with one block");
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  ret->insertOperands(ret->getNumOperands(), layerMaps);
  SmallVector<Type> results(func.getFunctionType().getResults());
  for (Value map : layerMaps)
    results.push_back(map.getType());
  func.setFunctionType(rewriter.getFunctionType(
      func.getFunctionType().getInputs(), results));
  func->setAttr(GlintDialect::kAttentionLayersAttrName,
                rewriter.getArrayAttr(layerLabels));
  return success();
}

namespace {
struct ToAttentionPass
    : public glint::impl::GlintToAttentionBase<ToAttentionPass> {
  using GlintToAttentionBase::GlintToAttentionBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    std::optional<Formulation> named = symbolizeFormulation(formulation);
    if (!named) {
      func.emitError() << "unknown formulation '" << formulation
                       << "' (expected unified, scan-only, no-conv, no-gate "
                          "or no-act)";
      return signalPassFailure();
    }
    Factors factors = factorsOf(*named);
    std::optional<MapAggregate> kind = symbolizeMapAggregate(aggregate);
    if (!kind) {
      func.emitError() << "unknown aggregate '" << aggregate
                       << "' (expected mean, mean_abs, sum or full)";
      return signalPassFailure();
    }
    SmallVector<int64_t> selected(channels.begin(), channels.end());
    std::optional<int64_t> selectedRow;
    if (hasRow)
      selectedRow = row;
    LayerRewriter layers(func, factors, *kind, selected, selectedRow);
    if (failed(layers.run()))
      return signalPassFailure();
    func->setAttr(GlintDialect::kFormulationAttrName,
                  StringAttr::get(&getContext(), formulation));
  }
};
} // namespace
