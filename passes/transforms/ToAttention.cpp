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
// are and are computed as before. A glint op's factor is its rule
// (ImplicitAttentionOpInterface, next to the op in dialect/GlintOps.cpp);
// the standard ops (products, sums, differences, channel reshapes) are
// mirrored here.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
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

static AttentionFactors factorsOf(Formulation formulation) {
  AttentionFactors f;
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

/// The value path of the layer being rewritten: the matrices and (exact
/// formulation) offset of each value on it. The ops' rules
/// (ImplicitAttentionOpInterface) read and extend it.
class ValuePath final : public AttentionFormBuilder {
public:
  ValuePath(OpBuilder &builder, const AttentionFactors &factors)
      : builder(builder), factors(factors) {}

  OpBuilder &getBuilder() override { return builder; }
  const AttentionFactors &getFactors() const override { return factors; }
  bool onPath(Value value) const override { return values.contains(value); }
  Value getMap(Value value) const override { return values.lookup(value).map; }
  Value getOffset(Value value) const override {
    return values.lookup(value).offset;
  }
  void record(Value result, Value map, Value offset) override {
    values[result] = {map, offset};
  }
  void clear() { values.clear(); }

private:
  struct Entry {
    Value map;
    Value offset;
  };
  OpBuilder &builder;
  const AttentionFactors &factors;
  DenseMap<Value, Entry> values;
};

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
  return MapType::get(cast<RankedTensorType>(value.getType()));
}

/// Rewrites the layers of one function.
class LayerRewriter {
public:
  LayerRewriter(func::FuncOp func, const AttentionFactors &formulation,
                MapAggregate aggregate, ArrayRef<int64_t> channels,
                std::optional<int64_t> row, bool attribution)
      : func(func), formulation(formulation), aggregate(aggregate),
        channels(channels), row(row), attribution(attribution),
        rewriter(func.getContext()), path(rewriter, formulation) {}

  LogicalResult run();

private:
  LogicalResult rewriteMixer(MixerOp mixer);
  LogicalResult rewriteAttentionLayer(AttentionOp attention);
  /// Mirrors `op` on the value path; returns failure with a diagnostic if
  /// the op has no attention form, or success with nothing recorded when
  /// the op only reads path values as controls. Glint ops have their rule
  /// (ImplicitAttentionOpInterface); the standard ops are mirrored here.
  LogicalResult mirror(Operation *op);
  LogicalResult mirrorMul(arith::MulFOp mul);
  LogicalResult mirrorAdd(arith::AddFOp add);
  LogicalResult mirrorSub(arith::SubFOp sub);
  template <typename ReshapeOp> LogicalResult mirrorReshape(ReshapeOp reshape);
  Value reduce(Location loc, Value map);
  /// The layer's attribution map, from its output cotangent (a new argument
  /// of the function) and its value input `input`.
  Value attribute(Location loc, Value map, Value input);
  /// Explains why the layer output is not on the value path.
  void explainBrokenPath(MixerOp mixer, Value yielded);

  func::FuncOp func;
  const AttentionFactors &formulation;
  MapAggregate aggregate;
  ArrayRef<int64_t> channels;
  std::optional<int64_t> row;
  bool attribution;
  IRRewriter rewriter;
  ValuePath path;
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

Value LayerRewriter::attribute(Location loc, Value map, Value input) {
  auto type = cast<MapType>(map.getType()).getValueType();
  Value grad = func.getBody().front().addArgument(type, loc);
  auto resultType = RankedTensorType::get(
      {type.getDimSize(0), type.getDimSize(1), type.getDimSize(1)},
      type.getElementType());
  return MapAttributionOp::create(rewriter, loc, resultType, map, grad, input);
}

LogicalResult LayerRewriter::mirror(Operation *op) {
  if (llvm::none_of(op->getOperands(), [&](Value v) { return path.onPath(v); }))
    return success();
  rewriter.setInsertionPointAfter(op);
  if (auto rule = dyn_cast<ImplicitAttentionOpInterface>(op))
    return rule.buildAttentionForm(path);
  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](arith::MulFOp mul) { return mirrorMul(mul); })
      .Case([&](arith::AddFOp add) { return mirrorAdd(add); })
      .Case([&](arith::SubFOp sub) { return mirrorSub(sub); })
      .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
          [&](auto reshape) { return mirrorReshape(reshape); })
      .Default([&](Operation *) { return success(); });
}

/// `path * control`: a gate (a diagonal), or a fixed scale when the control
/// is a constant.
LogicalResult LayerRewriter::mirrorMul(arith::MulFOp mul) {
  Value lhs = mul.getLhs(), rhs = mul.getRhs();
  if (path.onPath(lhs) && path.onPath(rhs))
    return mul.emitOpError(
        "multiplies two values that both depend on the layer's value "
        "input: the layer is not linear in it and has no attention "
        "form");
  Value p = path.onPath(lhs) ? lhs : rhs;
  Value control = p == lhs ? rhs : lhs;
  bool keep = isConstantTensor(control) || formulation.gate;
  Location loc = mul.getLoc();
  Value offset = path.mulOffset(loc, path.getOffset(p), control);
  Value map = path.scaled(loc, path.getMap(p), control, keep);
  path.record(mul.getResult(), map, offset);
  return success();
}

/// `path + path` sums the maps; `path + control` changes only the offset.
LogicalResult LayerRewriter::mirrorAdd(arith::AddFOp add) {
  Location loc = add.getLoc();
  bool exact = formulation.exact;
  Value lhs = add.getLhs(), rhs = add.getRhs();
  if (path.onPath(lhs) && path.onPath(rhs)) {
    Value map =
        MapAddOp::create(rewriter, loc, path.getMap(lhs), path.getMap(rhs));
    Value offset =
        exact ? arith::AddFOp::create(rewriter, loc, path.getOffset(lhs),
                                      path.getOffset(rhs))
                    .getResult()
              : Value();
    path.record(add.getResult(), map, offset);
    return success();
  }
  Value p = path.onPath(lhs) ? lhs : rhs;
  Value control = p == lhs ? rhs : lhs;
  Value offset =
      exact ? arith::AddFOp::create(rewriter, loc, path.getOffset(p), control)
                  .getResult()
            : Value();
  path.record(add.getResult(), path.getMap(p), offset);
  return success();
}

/// `path - control` changes only the offset.
LogicalResult LayerRewriter::mirrorSub(arith::SubFOp sub) {
  if (path.onPath(sub.getRhs()))
    return sub.emitOpError(
        "subtracts a value that depends on the layer's value input; "
        "only `path - control` has an attention form here");
  Value lhs = sub.getLhs();
  Value offset = formulation.exact
                     ? arith::SubFOp::create(rewriter, sub.getLoc(),
                                             path.getOffset(lhs), sub.getRhs())
                           .getResult()
                     : Value();
  path.record(sub.getResult(), path.getMap(lhs), offset);
  return success();
}

/// A reshape that regroups channels only.
template <typename ReshapeOp>
LogicalResult LayerRewriter::mirrorReshape(ReshapeOp reshape) {
  auto reassociation = reshape.getReassociationIndices();
  if (reassociation.size() < 2 || reassociation[0].size() != 1 ||
      reassociation[1].size() != 1)
    return reshape.emitOpError(
        "regroups the batch or sequence axes of a layer's value "
        "path; only channel axes can be regrouped in the "
        "attention form");
  Value map = MapReshapeOp::create(rewriter, reshape.getLoc(),
                                   mapTypeOf(reshape.getResult()),
                                   path.getMap(reshape.getSrc()));
  path.record(reshape.getResult(), map,
              path.cloneOnOffset(reshape, reshape.getSrc()));
  return success();
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
                     [&](Value o) { return path.onPath(o); })) {
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
  Value zeros = formulation.exact ? path.zerosLike(loc, input) : Value();

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
  path.record(input, identity, zeros);
  for (Operation *op : ops)
    if (failed(mirror(op)))
      return failure();
  if (!path.onPath(yielded)) {
    explainBrokenPath(mixer, yielded);
    return failure();
  }

  rewriter.setInsertionPoint(mixer);
  Value map = path.getMap(yielded);
  layerMaps.push_back(attribution ? attribute(loc, map, input)
                                  : reduce(loc, map));
  layerLabels.push_back(mixer.getLabelAttr()
                            ? Attribute(mixer.getLabelAttr())
                            : rewriter.getStringAttr(llvm::formatv(
                                  "layer{0}", layerLabels.size())));
  Value output = yielded;
  if (formulation.exact) {
    Value applied =
        MapApplyOp::create(rewriter, loc, yielded.getType(), map, input);
    output =
        arith::AddFOp::create(rewriter, loc, applied, path.getOffset(yielded));
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
  layerMaps.push_back(attribution ? attribute(loc, map, attention.getV())
                                  : reduce(loc, map));
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
      func.getBody().front().getArgumentTypes(), results));
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
    AttentionFactors factors = factorsOf(*named);
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
    LayerRewriter layers(func, factors, *kind, selected, selectedRow,
                         attribution);
    if (failed(layers.run()))
      return signalPassFailure();
    func->setAttr(GlintDialect::kFormulationAttrName,
                  StringAttr::get(&getContext(), formulation));
  }
};
} // namespace
