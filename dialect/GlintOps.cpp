//===- GlintOps.cpp - glint operations ------------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Verifiers, folders and canonicalisation patterns of the glint ops, and
// each op's rules of the glint → glint transforms (GlintInterfaces.td): its
// streaming form (glint-expose-state) and its implicit-attention form
// (glint-to-attention). Shapes are checked wherever both sides are static; a
// dynamic size (batch and sequence length usually are) agrees with anything.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"

#include <limits>

using namespace mlir;
using namespace mlir::glint;

//===----------------------------------------------------------------------===//
// Shape-checking helpers
//===----------------------------------------------------------------------===//

namespace {
/// Checks one operand or result of an op against an expected layout, naming
/// it in every message: "'k' dim 2 (key groups) is 3, expected 2".
class ShapeChecker {
public:
  explicit ShapeChecker(Operation *op) : op(op) {}

  /// Requires `value` to have rank `rank`; `layout` describes the axes.
  LogicalResult rank(Value value, StringRef name, int64_t rank,
                     StringRef layout) {
    auto type = cast<RankedTensorType>(value.getType());
    if (type.getRank() == rank)
      return success();
    return op->emitOpError() << "expects '" << name << "' of rank " << rank
                             << " " << layout << ", got " << type;
  }

  /// Requires dim `dim` of `value` to equal `expected` unless either is
  /// dynamic.
  LogicalResult dim(Value value, StringRef name, unsigned dim,
                    StringRef axis, int64_t expected) {
    int64_t actual = cast<RankedTensorType>(value.getType()).getDimSize(dim);
    if (ShapedType::isDynamic(actual) || ShapedType::isDynamic(expected) ||
        actual == expected)
      return success();
    return op->emitOpError() << "'" << name << "' dim " << dim << " ("
                             << axis << ") is " << actual << ", expected "
                             << expected;
  }

  /// Rank plus every dim at once; `axes` names each expected dim.
  LogicalResult shape(Value value, StringRef name, ArrayRef<int64_t> expected,
                      ArrayRef<StringRef> axes) {
    std::string layout = "[";
    for (auto [i, axis] : llvm::enumerate(axes))
      layout += (i ? ", " : "") + axis.str();
    layout += "]";
    if (failed(rank(value, name, expected.size(), layout)))
      return failure();
    for (unsigned i = 0; i < expected.size(); ++i)
      if (failed(dim(value, name, i, axes[i], expected[i])))
        return failure();
    return success();
  }

private:
  Operation *op;
};
} // namespace

static int64_t dimOf(Value value, unsigned dim) {
  return cast<RankedTensorType>(value.getType()).getDimSize(dim);
}

/// All floating-point tensors an op touches share one element type.
static LogicalResult verifySameFloatElementType(Operation *op) {
  Type expected;
  auto check = [&](Value value, StringRef kind,
                   unsigned index) -> LogicalResult {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !isa<FloatType>(type.getElementType()))
      return success();
    if (!expected) {
      expected = type.getElementType();
      return success();
    }
    if (type.getElementType() == expected)
      return success();
    return op->emitOpError()
           << kind << " #" << index << " has element type "
           << type.getElementType() << ", expected " << expected
           << " like the other float tensors of the op";
  };
  for (OpOperand &operand : op->getOpOperands())
    if (failed(check(operand.get(), "operand", operand.getOperandNumber())))
      return failure();
  for (OpResult result : op->getResults())
    if (failed(check(result, "result", result.getResultNumber())))
      return failure();
  return success();
}

namespace {
/// Removes the final-state result of a streaming op when nothing reads it, so
/// that lowering need not write the state back.
template <typename OpTy>
struct DropUnusedFinalState : public OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    Value finalState = op.getFinalState();
    if (!finalState || !finalState.use_empty())
      return failure();
    OperationState state(op.getLoc(), op->getName());
    state.addOperands(op->getOperands());
    state.addTypes(op.getOutput().getType());
    state.getOrAddProperties<typename OpTy::Properties>() = op.getProperties();
    state.addAttributes(llvm::to_vector(op->getDiscardableAttrs()));
    Operation *newOp = rewriter.create(state);
    rewriter.replaceAllUsesWith(op.getOutput(), newOp->getResult(0));
    rewriter.eraseOp(op);
    return success();
  }
};

/// Drops a bias operand that is a constant splat of zero.
template <typename OpTy>
struct DropZeroBias : public OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    Value bias = op.getBias();
    if (!bias || !matchPattern(bias, m_AnyZeroFloat()))
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.getBiasMutable().clear(); });
    return success();
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// Shared parts of the streaming rule (StreamingOpInterface)
//===----------------------------------------------------------------------===//

static constexpr const char *kCarriesState =
    "already carries a state; glint-expose-state expects the model function "
    "without states";
static constexpr const char *kRunsBackwards =
    "runs backwards (reverse): an anti-causal layer reads tokens that come "
    "later, so the model cannot run step by step";

/// Appends a state of `shape` with the element type of `like` to `types`, or
/// returns why it cannot be built.
static std::string appendStateType(SmallVectorImpl<RankedTensorType> &types,
                                   ArrayRef<int64_t> shape, Value like) {
  for (int64_t d : shape.drop_front())
    if (ShapedType::isDynamic(d))
      return "has a dynamic size other than the batch, which its state "
             "needs static";
  types.push_back(RankedTensorType::get(
      shape, cast<RankedTensorType>(like.getType()).getElementType()));
  return "";
}

//===----------------------------------------------------------------------===//
// MixerOp
//===----------------------------------------------------------------------===//

YieldOp MixerOp::getYield() {
  return cast<YieldOp>(getBody().front().getTerminator());
}

LogicalResult MixerOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getInput(), "input", 3, "[batch, seq, channels]")) ||
      failed(check.rank(getResult(), "result", 3, "[batch, seq, channels]")) ||
      failed(check.dim(getResult(), "result", 0, "batch",
                       dimOf(getInput(), 0))) ||
      failed(check.dim(getResult(), "result", 1, "seq",
                       dimOf(getInput(), 1))))
    return failure();
  return verifySameFloatElementType(*this);
}

LogicalResult MixerOp::verifyRegions() {
  Block &body = getBody().front();
  if (body.getNumArguments() != 1)
    return emitOpError("expects the body to take exactly one argument (the "
                       "value input), got ")
           << body.getNumArguments();
  if (body.getArgument(0).getType() != getInput().getType())
    return emitOpError("body argument type ")
           << body.getArgument(0).getType()
           << " does not match the value input type " << getInput().getType();
  if (body.empty() || !isa<YieldOp>(body.back()))
    return emitOpError("expects the body to end with 'glint.yield'");
  Type yielded = getYield().getValue().getType();
  if (yielded != getResult().getType())
    return emitOpError("body yields ")
           << yielded << " but the result type is " << getResult().getType();
  return success();
}

namespace {
/// A mixer whose body yields its value input unchanged is the identity.
struct FoldIdentityMixer : public OpRewritePattern<MixerOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MixerOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getYield().getValue() != op.getValueArgument() ||
        op.getInput().getType() != op.getResult().getType())
      return failure();
    rewriter.replaceOp(op, op.getInput());
    return success();
  }
};
} // namespace

void MixerOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                          MLIRContext *context) {
  results.add<FoldIdentityMixer>(context);
}

//===----------------------------------------------------------------------===//
// RecurrenceOp
//===----------------------------------------------------------------------===//

RecurrenceOp::DecayForm RecurrenceOp::getDecayForm() {
  switch (getLogDecay().getType().getRank()) {
  case 4:
    return DecayForm::PerKey;
  case 3:
    return DecayForm::PerHead;
  case 2:
    return DecayForm::StaticPerKey;
  default:
    return DecayForm::StaticPerHead;
  }
}

int64_t RecurrenceOp::getNumHeads() { return dimOf(getV(), 2); }
int64_t RecurrenceOp::getNumKeyGroups() { return dimOf(getK(), 2); }
int64_t RecurrenceOp::getKeySize() { return dimOf(getK(), 3); }
int64_t RecurrenceOp::getValueSize() { return dimOf(getV(), 3); }

LogicalResult RecurrenceOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getK(), "k", 4, "[batch, seq, key groups, key]")) ||
      failed(check.rank(getV(), "v", 4, "[batch, seq, heads, value]")))
    return failure();
  int64_t batch = dimOf(getV(), 0), seq = dimOf(getV(), 1);
  int64_t heads = getNumHeads(), groups = getNumKeyGroups();
  int64_t key = getKeySize(), value = getValueSize();
  if (failed(check.dim(getK(), "k", 0, "batch", batch)) ||
      failed(check.dim(getK(), "k", 1, "seq", seq)))
    return failure();
  if (getQ() &&
      failed(check.shape(getQ(), "q", {batch, seq, groups, key},
                         {"batch", "seq", "key groups", "key"})))
    return failure();
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(groups) &&
      (groups == 0 || heads % groups != 0))
    return emitOpError("value heads (") << heads
           << ") must be a multiple of the key groups (" << groups << ")";

  switch (getLogDecay().getType().getRank()) {
  case 4:
    if (failed(check.shape(getLogDecay(), "log_decay",
                           {batch, seq, heads, key},
                           {"batch", "seq", "heads", "key"})))
      return failure();
    break;
  case 3:
    if (failed(check.shape(getLogDecay(), "log_decay", {batch, seq, heads},
                           {"batch", "seq", "heads"})))
      return failure();
    break;
  case 2:
    if (failed(check.shape(getLogDecay(), "log_decay", {heads, key},
                           {"heads", "key"})))
      return failure();
    break;
  case 1:
    if (failed(check.shape(getLogDecay(), "log_decay", {heads}, {"heads"})))
      return failure();
    break;
  default:
    return emitOpError("expects 'log_decay' of rank 1 [heads], 2 [heads, "
                       "key], 3 [batch, seq, heads] or 4 [batch, seq, heads, "
                       "key], got ")
           << getLogDecay().getType();
  }

  if (getDelta()) {
    if (failed(check.shape(getDelta(), "delta", {batch, seq, heads},
                           {"batch", "seq", "heads"})))
      return failure();
    if (getLogDecay().getType().getRank() > 2)
      return emitOpError("with 'delta' the log-decay must be time-invariant "
                         "([heads] or [heads, key]), got ")
             << getLogDecay().getType();
  }
  if (getBonus() && failed(check.shape(getBonus(), "bonus", {heads, key},
                                       {"heads", "key"})))
    return failure();
  if (getSkip() && failed(check.shape(getSkip(), "skip", {heads}, {"heads"})))
    return failure();

  if (getNormalize()) {
    if (getQ())
      return emitOpError("'normalize' takes no 'q' (the ratio form reads "
                         "the state with a query of one)");
    if (getDelta())
      return emitOpError("'normalize' takes no 'delta' (its keys are "
                         "log-weights)");
    if (key != 1)
      return emitOpError("'normalize' requires a static key size of 1, got ")
             << (ShapedType::isDynamic(key) ? std::string("?")
                                            : std::to_string(key));
  }

  int64_t stateValue = value;
  if (getNormalize() && !ShapedType::isDynamic(value))
    stateValue = value + 2;
  SmallVector<StringRef> stateAxes = {
      "batch", "heads", "key", getNormalize() ? "value + 2" : "value"};
  if (getInitialState() &&
      failed(check.shape(getInitialState(), "initial_state",
                         {batch, heads, key, stateValue}, stateAxes)))
    return failure();
  if (failed(check.shape(getOutput(), "output", {batch, seq, heads, value},
                         {"batch", "seq", "heads", "value"})))
    return failure();
  if (getFinalState() &&
      failed(check.shape(getFinalState(), "final_state",
                         {batch, heads, key, stateValue}, stateAxes)))
    return failure();
  return verifySameFloatElementType(*this);
}

void RecurrenceOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                               MLIRContext *context) {
  results.add<DropUnusedFinalState<RecurrenceOp>>(context);
}

std::string RecurrenceOp::getStreamingBlocker() {
  if (getReverse())
    return kRunsBackwards;
  if (getInitialState() || getFinalState())
    return kCarriesState;
  SmallVector<RankedTensorType> types;
  return getStateTypes(types);
}

std::string
RecurrenceOp::getStateTypes(SmallVectorImpl<RankedTensorType> &types) {
  int64_t value = getValueSize();
  if (getNormalize() && !ShapedType::isDynamic(value))
    value += 2;
  return appendStateType(
      types, {dimOf(getV(), 0), getNumHeads(), getKeySize(), value}, getV());
}

/// RWKV-4's ratio state `[..., numerator (V), denominator, running max]`
/// with the running max set to −∞ where the denominator is 0: a zero state
/// then means "no history", exactly as an absent initial state does.
static Value startEmptyHistories(OpBuilder &b, Location loc, Value state) {
  auto type = cast<RankedTensorType>(state.getType());
  int64_t last = type.getDimSize(3);
  SmallVector<int64_t> shape(type.getShape());
  shape.back() = 1;
  auto sliceType = RankedTensorType::get(shape, type.getElementType());
  SmallVector<Value> dynamic;
  SmallVector<OpFoldResult> sizes;
  for (int64_t i = 0; i < 4; ++i) {
    if (i == 3) {
      sizes.push_back(b.getIndexAttr(1));
    } else if (type.isDynamicDim(i)) {
      Value d = tensor::DimOp::create(b, loc, state, i);
      dynamic.push_back(d);
      sizes.push_back(d);
    } else {
      sizes.push_back(b.getIndexAttr(type.getDimSize(i)));
    }
  }
  SmallVector<OpFoldResult> ones(4, b.getIndexAttr(1));
  auto at = [&](int64_t column) {
    SmallVector<OpFoldResult> offsets(3, b.getIndexAttr(0));
    offsets.push_back(b.getIndexAttr(column));
    return offsets;
  };
  Value denominator = tensor::ExtractSliceOp::create(b, loc, sliceType, state,
                                                     at(last - 2), sizes, ones);
  Value runningMax = tensor::ExtractSliceOp::create(b, loc, sliceType, state,
                                                    at(last - 1), sizes, ones);
  auto splat = [&](double value) -> Value {
    Value scalar = arith::ConstantOp::create(
        b, loc, b.getFloatAttr(type.getElementType(), value));
    return tensor::SplatOp::create(b, loc, sliceType, scalar, dynamic);
  };
  Value empty = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                      denominator, splat(0.0));
  Value fixed = arith::SelectOp::create(
      b, loc, empty, splat(-std::numeric_limits<double>::infinity()),
      runningMax);
  return tensor::InsertSliceOp::create(b, loc, fixed, state, at(last - 1),
                                       sizes, ones);
}

Operation *
RecurrenceOp::buildStreamingStep(OpBuilder &builder, ValueRange states,
                                 Value position,
                                 SmallVectorImpl<Value> &nextStates) {
  Value initial = states[0];
  if (getNormalize())
    initial = startEmptyHistories(builder, getLoc(), initial);
  auto step = RecurrenceOp::create(
      builder, getLoc(), getOutput().getType(), states[0].getType(), getQ(),
      getK(), getV(), getLogDecay(), getDelta(), getBonus(), getSkip(), initial,
      getReverse(), getNormalize());
  nextStates.push_back(step.getFinalState());
  return step;
}

LogicalResult RecurrenceOp::buildAttentionForm(AttentionFormBuilder &form) {
  if (!form.onPath(getV()))
    return success(); // Reads the path as a control (keys, decays).
  if (getInitialState())
    return emitOpError(
        "on a layer's value path must not have an initial state: the "
        "attention form explains one sequence from its start");
  Value in = form.getMap(getV());
  Value skip = form.getFactors().skip ? getSkip() : Value();
  Value map = MapScanOp::create(form.getBuilder(), getLoc(),
                                MapType::get(getOutput().getType()), in, getQ(),
                                getK(), getLogDecay(), getDelta(), getBonus(),
                                skip, getReverseAttr(), getNormalizeAttr());
  form.record(getOutput(), map, form.cloneOnOffset(*this, getV()));
  return success();
}

//===----------------------------------------------------------------------===//
// Conv1dOp
//===----------------------------------------------------------------------===//

LogicalResult Conv1dOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getInput(), "input", 3, "[batch, seq, channels]")) ||
      failed(check.rank(getWeight(), "weight", 2, "[channels, width]")))
    return failure();
  int64_t batch = dimOf(getInput(), 0), seq = dimOf(getInput(), 1);
  int64_t channels = dimOf(getInput(), 2);
  int64_t width = getWidth();
  if (ShapedType::isDynamic(width))
    return emitOpError("expects a static convolution width, got weight ")
           << getWeight().getType();
  if (width < 1)
    return emitOpError("expects a convolution width of at least 1, got ")
           << width;
  if (failed(check.dim(getWeight(), "weight", 0, "channels", channels)))
    return failure();
  if (getBias() &&
      failed(check.shape(getBias(), "bias", {channels}, {"channels"})))
    return failure();
  if (getInitialState() &&
      failed(check.shape(getInitialState(), "initial_state",
                         {batch, width - 1, channels},
                         {"batch", "width - 1", "channels"})))
    return failure();
  if (failed(check.shape(getOutput(), "output", {batch, seq, channels},
                         {"batch", "seq", "channels"})))
    return failure();
  if (getFinalState() &&
      failed(check.shape(getFinalState(), "final_state",
                         {batch, width - 1, channels},
                         {"batch", "width - 1", "channels"})))
    return failure();
  return verifySameFloatElementType(*this);
}

void Conv1dOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropUnusedFinalState<Conv1dOp>, DropZeroBias<Conv1dOp>>(
      context);
}

std::string Conv1dOp::getStreamingBlocker() {
  if (getReverse())
    return kRunsBackwards;
  if (getInitialState() || getFinalState())
    return kCarriesState;
  SmallVector<RankedTensorType> types;
  return getStateTypes(types);
}

std::string Conv1dOp::getStateTypes(SmallVectorImpl<RankedTensorType> &types) {
  // The last W - 1 inputs; none for a width of 1.
  if (getWidth() == 1)
    return "";
  return appendStateType(
      types, {dimOf(getInput(), 0), getWidth() - 1, dimOf(getInput(), 2)},
      getInput());
}

Operation *Conv1dOp::buildStreamingStep(OpBuilder &builder, ValueRange states,
                                        Value position,
                                        SmallVectorImpl<Value> &nextStates) {
  if (states.empty())
    return nullptr; // Width 1: no history.
  auto step = Conv1dOp::create(builder, getLoc(), getOutput().getType(),
                               states[0].getType(), getInput(), getWeight(),
                               getBias(), states[0], getReverse());
  nextStates.push_back(step.getFinalState());
  return step;
}

LogicalResult Conv1dOp::buildAttentionForm(AttentionFormBuilder &form) {
  if (!form.onPath(getInput()))
    return success();
  if (getInitialState())
    return emitOpError(
        "on a layer's value path must not have an initial state: the "
        "attention form explains one sequence from its start");
  Value in = form.getMap(getInput());
  Value map = form.getFactors().conv
                  ? MapConvOp::create(form.getBuilder(), getLoc(), in.getType(),
                                      in, getWeight(), getReverseAttr())
                        .getResult()
                  : in;
  form.record(getOutput(), map, form.cloneOnOffset(*this, getInput()));
  return success();
}

//===----------------------------------------------------------------------===//
// TokenShiftOp
//===----------------------------------------------------------------------===//

LogicalResult TokenShiftOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getInput(), "input", 3, "[batch, seq, channels]")))
    return failure();
  int64_t batch = dimOf(getInput(), 0), seq = dimOf(getInput(), 1);
  int64_t channels = dimOf(getInput(), 2);
  if (getInitialState() &&
      failed(check.shape(getInitialState(), "initial_state",
                         {batch, channels}, {"batch", "channels"})))
    return failure();
  if (failed(check.shape(getOutput(), "output", {batch, seq, channels},
                         {"batch", "seq", "channels"})))
    return failure();
  if (getFinalState() &&
      failed(check.shape(getFinalState(), "final_state", {batch, channels},
                         {"batch", "channels"})))
    return failure();
  return verifySameFloatElementType(*this);
}

void TokenShiftOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                               MLIRContext *context) {
  results.add<DropUnusedFinalState<TokenShiftOp>>(context);
}

std::string TokenShiftOp::getStreamingBlocker() {
  if (getInitialState() || getFinalState())
    return kCarriesState;
  SmallVector<RankedTensorType> types;
  return getStateTypes(types);
}

std::string
TokenShiftOp::getStateTypes(SmallVectorImpl<RankedTensorType> &types) {
  return appendStateType(types, {dimOf(getInput(), 0), dimOf(getInput(), 2)},
                         getInput());
}

Operation *
TokenShiftOp::buildStreamingStep(OpBuilder &builder, ValueRange states,
                                 Value position,
                                 SmallVectorImpl<Value> &nextStates) {
  auto step = TokenShiftOp::create(builder, getLoc(), getOutput().getType(),
                                   states[0].getType(), getInput(), states[0]);
  nextStates.push_back(step.getFinalState());
  return step;
}

LogicalResult TokenShiftOp::buildAttentionForm(AttentionFormBuilder &form) {
  if (getInitialState())
    return emitOpError(
        "on a layer's value path must not have an initial state");
  Value in = form.getMap(getInput());
  Value map =
      form.getFactors().conv
          ? MapShiftOp::create(form.getBuilder(), getLoc(), in).getResult()
          : in;
  form.record(getOutput(), map, form.cloneOnOffset(*this, getInput()));
  return success();
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getQ(), "q", 4, "[batch, seq, heads, head_dim]")) ||
      failed(check.rank(getK(), "k", 4, "[batch, seq, kv heads, head_dim]")) ||
      failed(check.rank(getV(), "v", 4, "[batch, seq, kv heads, value_dim]")))
    return failure();
  int64_t batch = dimOf(getQ(), 0), seq = dimOf(getQ(), 1);
  int64_t heads = dimOf(getQ(), 2), headDim = dimOf(getQ(), 3);
  int64_t kvHeads = dimOf(getK(), 2), valueDim = dimOf(getV(), 3);
  if (failed(check.shape(getK(), "k", {batch, seq, kvHeads, headDim},
                         {"batch", "seq", "kv heads", "head_dim"})) ||
      failed(check.shape(getV(), "v", {batch, seq, kvHeads, valueDim},
                         {"batch", "seq", "kv heads", "value_dim"})))
    return failure();
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads) &&
      (kvHeads == 0 || heads % kvHeads != 0))
    return emitOpError("query heads (")
           << heads << ") must be a multiple of the key/value heads ("
           << kvHeads << ")";
  if (!std::isfinite(getScale().convertToDouble()) ||
      getScale().convertToDouble() == 0.0)
    return emitOpError("expects a finite non-zero scale, got ")
           << getScale().convertToDouble();
  if (getWindowAttr() && getWindowAttr().getInt() < 1)
    return emitOpError("expects a window of at least 1 position, got ")
           << getWindowAttr().getInt();
  if (failed(check.shape(getOutput(), "output",
                         {batch, seq, heads, valueDim},
                         {"batch", "seq", "heads", "value_dim"})))
    return failure();
  if (bool(getKeyCache()) != bool(getValueCache()))
    return emitOpError("expects both a key and a value cache, or neither");
  if (getFinalCaches().size() != 0 && getFinalCaches().size() != 2)
    return emitOpError("expects the final key and value caches as results, "
                       "or neither; got ")
           << getFinalCaches().size() << " final caches";
  if (!getKeyCache()) {
    if (getPosition())
      return emitOpError("has a position but no key/value cache");
    if (getFinalKeyCache())
      return emitOpError("returns final caches but has no key/value cache");
    return verifySameFloatElementType(*this);
  }
  if (!getWindowAttr())
    return emitOpError("with a key/value cache needs a window (the cache "
                       "holds the window - 1 previous positions)");
  if (!getPosition())
    return emitOpError("with a key/value cache needs a position (the number "
                       "of tokens before this call)");
  int64_t cache = getCacheLength();
  SmallVector<StringRef> axes{"batch", "window - 1", "kv heads", "head_dim"};
  if (failed(check.shape(getKeyCache(), "key_cache",
                         {batch, cache, kvHeads, headDim}, axes)))
    return failure();
  if (getFinalKeyCache() &&
      failed(check.shape(getFinalKeyCache(), "final_key_cache",
                         {batch, cache, kvHeads, headDim}, axes)))
    return failure();
  axes.back() = "value_dim";
  if (failed(check.shape(getValueCache(), "value_cache",
                         {batch, cache, kvHeads, valueDim}, axes)))
    return failure();
  if (getFinalValueCache() &&
      failed(check.shape(getFinalValueCache(), "final_value_cache",
                         {batch, cache, kvHeads, valueDim}, axes)))
    return failure();
  return verifySameFloatElementType(*this);
}

int64_t AttentionOp::getCacheLength() {
  if (!getKeyCache() || !getWindowAttr())
    return 0;
  return getWindowAttr().getInt() - 1;
}

namespace {
/// A window at least as long as a static sequence masks nothing.
struct DropInactiveWindow : public OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    int64_t seq = dimOf(op.getQ(), 1);
    // With a cache, the window reaches back past the start of this call.
    if (!op.getWindowAttr() || op.getKeyCache() || ShapedType::isDynamic(seq) ||
        op.getWindowAttr().getInt() < seq)
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.removeWindowAttr(); });
    return success();
  }
};
} // namespace

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropInactiveWindow>(context);
}

/// A window of 1 sees only the query's own position: nothing to carry, no
/// position to read.
static bool hasWindowOfOne(AttentionOp op) {
  return op.getWindow() && *op.getWindow() == 1;
}

std::string AttentionOp::getStreamingBlocker() {
  if (!getWindowAttr())
    return "attends to the whole sequence (no window): its key/value cache "
           "would grow with the sequence, so the model cannot run step by "
           "step in constant memory";
  if (getKeyCache())
    return kCarriesState;
  SmallVector<RankedTensorType> types;
  return getStateTypes(types);
}

std::string
AttentionOp::getStateTypes(SmallVectorImpl<RankedTensorType> &types) {
  int64_t rows = getWindowAttr().getInt() - 1;
  if (rows == 0)
    return "";
  std::string why = appendStateType(
      types, {dimOf(getK(), 0), rows, dimOf(getK(), 2), dimOf(getK(), 3)},
      getK());
  if (!why.empty())
    return why;
  return appendStateType(
      types, {dimOf(getV(), 0), rows, dimOf(getV(), 2), dimOf(getV(), 3)},
      getV());
}

StringRef AttentionOp::getStateNameSuffix(unsigned index) {
  return index == 0 ? ".key_cache" : ".value_cache";
}

bool AttentionOp::carriesState() { return !hasWindowOfOne(*this); }

bool AttentionOp::readsPosition() { return !hasWindowOfOne(*this); }

Operation *AttentionOp::buildStreamingStep(OpBuilder &builder,
                                           ValueRange states, Value position,
                                           SmallVectorImpl<Value> &nextStates) {
  auto step =
      AttentionOp::create(builder, getLoc(), getOutput().getType(),
                          states.getTypes(), getQ(), getK(), getV(), states[0],
                          states[1], position, getScaleAttr(), getWindowAttr());
  nextStates.push_back(step.getFinalKeyCache());
  nextStates.push_back(step.getFinalValueCache());
  return step;
}

LogicalResult AttentionOp::buildAttentionForm(AttentionFormBuilder &form) {
  if (!form.onPath(getV()))
    return success();
  Value in = form.getMap(getV());
  Value map = MapAttentionOp::create(
      form.getBuilder(), getLoc(), MapType::get(getOutput().getType()), in,
      getQ(), getK(), getScaleAttr(), getWindowAttr());
  form.record(getOutput(), map, form.cloneOnOffset(*this, getV()));
  return success();
}

//===----------------------------------------------------------------------===//
// RotaryOp
//===----------------------------------------------------------------------===//

LogicalResult RotaryOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getInput(), "input", 4,
                        "[batch, seq, heads, head_dim]")))
    return failure();
  int64_t headDim = dimOf(getInput(), 3);
  int64_t rotaryDim = getRotaryDim();
  if (rotaryDim < 2 || rotaryDim % 2 != 0)
    return emitOpError("expects an even rotary_dim of at least 2, got ")
           << rotaryDim;
  if (!ShapedType::isDynamic(headDim) && rotaryDim > headDim)
    return emitOpError("rotary_dim (")
           << rotaryDim << ") exceeds the head size (" << headDim << ")";
  double base = getBase().convertToDouble();
  if (!std::isfinite(base) || base <= 1.0)
    return emitOpError("expects a finite base greater than 1, got ") << base;
  return success();
}

OpFoldResult RotaryOp::fold(FoldAdaptor adaptor) {
  // Rotating by position 0 is the identity: a single token at offset 0.
  if (dimOf(getInput(), 1) != 1)
    return {};
  if (getOffset() && !matchPattern(getOffset(), m_Zero()))
    return {};
  return getInput();
}

std::string RotaryOp::getStreamingBlocker() {
  if (getOffset())
    return "already has a position offset; glint-expose-state expects the "
           "model function without one";
  return "";
}

std::string RotaryOp::getStateTypes(SmallVectorImpl<RankedTensorType> &types) {
  return ""; // The position only.
}

bool RotaryOp::carriesState() { return false; }

bool RotaryOp::readsPosition() { return true; }

Operation *RotaryOp::buildStreamingStep(OpBuilder &builder, ValueRange states,
                                        Value position,
                                        SmallVectorImpl<Value> &nextStates) {
  getOffsetMutable().assign(position);
  return nullptr;
}

//===----------------------------------------------------------------------===//
// ActOp
//===----------------------------------------------------------------------===//

OpFoldResult ActOp::fold(FoldAdaptor adaptor) {
  // relu is idempotent.
  if (getKind() == ActKind::relu)
    if (auto inner = getInput().getDefiningOp<ActOp>())
      if (inner.getKind() == ActKind::relu)
        return getInput();
  return {};
}

LogicalResult ActOp::buildAttentionForm(AttentionFormBuilder &form) {
  switch (getKind()) {
  case ActKind::sigmoid:
  case ActKind::softplus:
  case ActKind::exp:
  case ActKind::neg_exp:
    return emitOpError() << "'" << stringifyActKind(getKind())
                         << "' on a layer's value path has f(0) != 0, so it "
                            "is no data-controlled diagonal f(x) = phi(x) * "
                            "x; the layer has no attention form";
  default:
    break;
  }
  Location loc = getLoc();
  Value gain =
      ActGainOp::create(form.getBuilder(), loc, getKindAttr(), getInput());
  Value offset = form.mulOffset(loc, form.getOffset(getInput()), gain);
  Value map =
      form.scaled(loc, form.getMap(getInput()), gain, form.getFactors().act);
  form.record(getOutput(), map, offset);
  return success();
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

int64_t LinearOp::getNumBlocks() {
  return getWeight().getType().getRank() == 3 ? dimOf(getWeight(), 0) : 1;
}

static int64_t mulDims(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b))
    return ShapedType::kDynamic;
  return a * b;
}

LogicalResult LinearOp::verify() {
  auto inputType = getInput().getType();
  auto weightType = getWeight().getType();
  if (inputType.getRank() < 1)
    return emitOpError("expects an input of rank at least 1, got ")
           << inputType;
  int64_t rank = weightType.getRank();
  if (rank != 2 && rank != 3)
    return emitOpError("expects a weight of rank 2 ([out, in] or [in, out]) "
                       "or 3 (block-diagonal [blocks, out, in] or [blocks, "
                       "in, out]), got ")
           << weightType;
  int64_t blocks = rank == 3 ? weightType.getDimSize(0) : 1;
  int64_t a = weightType.getDimSize(rank - 2);
  int64_t b = weightType.getDimSize(rank - 1);
  int64_t in = mulDims(blocks, isInOut() ? a : b);
  int64_t out = mulDims(blocks, isInOut() ? b : a);
  int64_t inputFeatures = inputType.getDimSize(inputType.getRank() - 1);
  if (!ShapedType::isDynamic(in) && !ShapedType::isDynamic(inputFeatures) &&
      in != inputFeatures)
    return emitOpError("input features (")
           << inputFeatures << ") do not match the weight's input size ("
           << in << ") for weight " << weightType << " in layout "
           << (isInOut() ? "in_out" : "out_in");
  ShapeChecker check(*this);
  if (getBias() && failed(check.shape(getBias(), "bias", {out}, {"out"})))
    return failure();
  auto outputType = getOutput().getType();
  if (outputType.getRank() != inputType.getRank())
    return emitOpError("expects an output of the input's rank ")
           << inputType.getRank() << ", got " << outputType;
  for (int64_t i = 0, e = inputType.getRank() - 1; i < e; ++i)
    if (failed(check.dim(getOutput(), "output", i, "leading",
                         inputType.getDimSize(i))))
      return failure();
  if (failed(check.dim(getOutput(), "output", outputType.getRank() - 1,
                       "out features", out)))
    return failure();
  // An f32 layer may keep its weight in a 16-bit float (glint-narrow-weights):
  // it is widened as it is read.
  Type weightElement = weightType.getElementType();
  if (weightElement != inputType.getElementType() &&
      isa<BFloat16Type, Float16Type>(weightElement) &&
      inputType.getElementType().isF32()) {
    if (outputType.getElementType() != inputType.getElementType() ||
        (getBias() &&
         getBias().getType().getElementType() != inputType.getElementType()))
      return emitOpError("expects the input, bias and output to share one "
                         "element type");
    return success();
  }
  return verifySameFloatElementType(*this);
}

void LinearOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropZeroBias<LinearOp>>(context);
}

//===----------------------------------------------------------------------===//
// EmbeddingOp
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  ShapeChecker check(*this);
  if (failed(check.rank(getIds(), "ids", 2, "[batch, seq]")) ||
      failed(check.rank(getTable(), "table", 2, "[vocab, hidden]")))
    return failure();
  return check.shape(getOutput(), "output",
                     {dimOf(getIds(), 0), dimOf(getIds(), 1),
                      dimOf(getTable(), 1)},
                     {"batch", "seq", "hidden"});
}

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

/// Shared checks of the three norms: per-channel affine parameters on the
/// last axis, an output of the input's type and a sane epsilon.
static LogicalResult verifyNorm(Operation *op, Value input, Value weight,
                                Value bias, Value output, double epsilon) {
  auto inputType = cast<RankedTensorType>(input.getType());
  if (inputType.getRank() < 1)
    return op->emitOpError("expects an input of rank at least 1, got ")
           << inputType;
  if (output.getType() != inputType)
    return op->emitOpError("expects the output type ")
           << output.getType() << " to equal the input type " << inputType;
  if (!std::isfinite(epsilon) || epsilon < 0.0)
    return op->emitOpError("expects a finite, non-negative epsilon, got ")
           << epsilon;
  ShapeChecker check(op);
  int64_t channels = inputType.getDimSize(inputType.getRank() - 1);
  if (weight &&
      failed(check.shape(weight, "weight", {channels}, {"channels"})))
    return failure();
  if (bias && failed(check.shape(bias, "bias", {channels}, {"channels"})))
    return failure();
  return verifySameFloatElementType(op);
}

LogicalResult RMSNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), Value(), getOutput(),
                    getEpsilon().convertToDouble());
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput(), getWeight(), getBias(), getOutput(),
                    getEpsilon().convertToDouble());
}

void LayerNormOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropZeroBias<LayerNormOp>>(context);
}

LogicalResult GroupNormOp::verify() {
  if (failed(verifyNorm(*this, getInput(), getWeight(), getBias(),
                        getOutput(), getEpsilon().convertToDouble())))
    return failure();
  int64_t groups = getGroups();
  int64_t channels = dimOf(getInput(), getInput().getType().getRank() - 1);
  if (groups < 1)
    return emitOpError("expects at least 1 group, got ") << groups;
  if (!ShapedType::isDynamic(channels) && channels % groups != 0)
    return emitOpError("channels (")
           << channels << ") are not divisible into " << groups << " groups";
  return success();
}

void GroupNormOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropZeroBias<GroupNormOp>>(context);
}

/// The attention form of the three norms: the diagonal `gain` of
/// `glint.norm_stats` on the map; on the offset (exact formulation) the
/// centring, the gain and the bias.
template <typename NormOp>
static LogicalResult
buildNormAttentionForm(NormOp norm, AttentionFormBuilder &form, int64_t groups,
                       double weightOffset, bool center, Value bias) {
  OpBuilder &b = form.getBuilder();
  Location loc = norm.getLoc();
  Value input = norm.getInput();
  auto stats = NormStatsOp::create(
      b, loc, input.getType(), input.getType(), input,
      b.getI64IntegerAttr(groups), norm.getWeight(), norm.getEpsilonAttr(),
      b.getF64FloatAttr(weightOffset), center ? b.getUnitAttr() : UnitAttr());
  Value offset;
  if (form.isExact()) {
    offset = form.getOffset(input);
    if (center)
      offset = arith::SubFOp::create(b, loc, offset, stats.getMean());
    offset = arith::MulFOp::create(b, loc, offset, stats.getGain());
    if (bias)
      offset = arith::AddFOp::create(b, loc, offset,
                                     form.broadcastChannels(loc, bias, offset));
  }
  form.record(norm.getOutput(),
              form.scaled(loc, form.getMap(input), stats.getGain(),
                          form.getFactors().norm),
              offset);
  return success();
}

LogicalResult RMSNormOp::buildAttentionForm(AttentionFormBuilder &form) {
  return buildNormAttentionForm(*this, form, /*groups=*/1,
                                getWeightOffset().convertToDouble(),
                                /*center=*/false, /*bias=*/Value());
}

LogicalResult LayerNormOp::buildAttentionForm(AttentionFormBuilder &form) {
  return buildNormAttentionForm(*this, form, /*groups=*/1,
                                /*weightOffset=*/0.0, /*center=*/true,
                                getBias());
}

LogicalResult GroupNormOp::buildAttentionForm(AttentionFormBuilder &form) {
  return buildNormAttentionForm(*this, form, getGroups(),
                                /*weightOffset=*/0.0, /*center=*/true,
                                getBias());
}

//===----------------------------------------------------------------------===//
// Attention-form ops
//===----------------------------------------------------------------------===//

/// A map's value type must be `[B, L, channels...]` with static channels.
static LogicalResult verifyMapValueType(Operation *op, MapType type,
                                        StringRef name) {
  RankedTensorType value = type.getValueType();
  if (value.getRank() < 3)
    return op->emitOpError() << "expects " << name
                             << " over a [batch, seq, channels...] value, got "
                             << value;
  for (int64_t dim : value.getShape().drop_front(2))
    if (ShapedType::isDynamic(dim))
      return op->emitOpError()
             << "expects static channel dims in " << name << ", got " << value;
  return success();
}

static int64_t numMapChannels(MapType type) {
  int64_t channels = 1;
  for (int64_t dim : type.getValueType().getShape().drop_front(2))
    channels *= dim;
  return channels;
}

/// The value tensor `value` has the map's value type up to dynamic dims.
static LogicalResult verifyMatchesMap(Operation *op, Value value,
                                      StringRef name, MapType type) {
  auto tensor = cast<RankedTensorType>(value.getType());
  if (succeeded(verifyCompatibleShape(tensor, type.getValueType())) &&
      tensor.getElementType() == type.getValueType().getElementType())
    return success();
  return op->emitOpError() << "expects '" << name << "' of the map's value type "
                           << type.getValueType() << ", got " << tensor;
}

LogicalResult MapIdentityOp::verify() {
  auto type = cast<MapType>(getResult().getType());
  if (failed(verifyMapValueType(*this, type, "the result")))
    return failure();
  return verifyMatchesMap(*this, getInput(), "input", type);
}

LogicalResult MapConvOp::verify() {
  auto type = cast<MapType>(getMap().getType());
  if (getResult().getType() != type)
    return emitOpError("expects the result type to equal the map's type");
  if (type.getValueType().getRank() != 3)
    return emitOpError("expects a map over [batch, seq, channels], got ")
           << type.getValueType();
  ShapeChecker check(*this);
  if (failed(check.rank(getWeight(), "weight", 2, "[channels, width]")))
    return failure();
  return check.dim(getWeight(), "weight", 0, "channels",
                   type.getValueType().getDimSize(2));
}

LogicalResult MapScaleOp::verify() {
  auto type = cast<MapType>(getMap().getType());
  if (getResult().getType() != type)
    return emitOpError("expects the result type to equal the map's type");
  return verifyMatchesMap(*this, getGain(), "gain", type);
}

LogicalResult MapReshapeOp::verify() {
  auto from = cast<MapType>(getMap().getType());
  auto to = cast<MapType>(getResult().getType());
  if (failed(verifyMapValueType(*this, from, "the operand")) ||
      failed(verifyMapValueType(*this, to, "the result")))
    return failure();
  if (numMapChannels(from) != numMapChannels(to))
    return emitOpError() << "cannot regroup " << numMapChannels(from)
                         << " channels into " << numMapChannels(to);
  return success();
}

LogicalResult MapReduceOp::verify() {
  auto type = cast<MapType>(getMap().getType());
  if (failed(verifyMapValueType(*this, type, "the operand")))
    return failure();
  int64_t channels = numMapChannels(type);
  if (auto selected = getChannelsAttr()) {
    if (selected.empty())
      return emitOpError("expects at least one selected channel");
    for (int64_t c : selected.asArrayRef())
      if (c < 0 || c >= channels)
        return emitOpError() << "selects channel " << c << ", but the map has "
                             << channels << " channels";
  }
  bool full = getAggregate() == MapAggregate::full;
  int64_t rank = 3 + (full ? 1 : 0) - (getRowAttr() ? 1 : 0);
  auto result = cast<RankedTensorType>(getResult().getType());
  if (result.getRank() != rank)
    return emitOpError() << "expects a result of rank " << rank << " for "
                         << stringifyMapAggregate(getAggregate())
                         << (getRowAttr() ? " rows" : " matrices") << ", got "
                         << result;
  return success();
}

LogicalResult MapApplyOp::verify() {
  auto type = cast<MapType>(getMap().getType());
  if (failed(verifyMatchesMap(*this, getResult(), "result", type)))
    return failure();
  auto input = cast<RankedTensorType>(getInput().getType());
  if (input.getRank() < 3)
    return emitOpError("expects a [batch, seq, channels...] value input, got ")
           << input;
  return success();
}

LogicalResult MapAttributionOp::verify() {
  auto type = cast<MapType>(getMap().getType());
  if (failed(verifyMatchesMap(*this, getGrad(), "grad", type)))
    return failure();
  auto input = cast<RankedTensorType>(getInput().getType());
  if (input.getRank() < 3)
    return emitOpError("expects a [batch, seq, channels...] value input, got ")
           << input;
  auto result = cast<RankedTensorType>(getResult().getType());
  if (result.getRank() != 3)
    return emitOpError("result must be [batch, seq, seq], got ") << result;
  return success();
}

LogicalResult ActGainOp::verify() {
  switch (getKind()) {
  case ActKind::sigmoid:
  case ActKind::softplus:
  case ActKind::exp:
  case ActKind::neg_exp:
    return emitOpError() << "activation '" << stringifyActKind(getKind())
                         << "' has f(0) != 0 and so no diagonal form "
                            "f(x) = phi(x) * x";
  default:
    return success();
  }
}

#define GET_OP_CLASSES
#include "dialect/GlintOps.cpp.inc"
