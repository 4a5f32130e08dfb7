//===- ExposeState.cpp - glint-expose-state -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The streaming form of a model: a step function that takes and returns the
// state of every op looking back along the sequence, for generation. See
// the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringSet.h"

#include <limits>

#define DEBUG_TYPE "glint-expose-state"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTEXPOSESTATE
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

/// Ops that look back along the sequence (rotary needs the position only).
static bool looksBack(Operation *op) {
  return isa<RecurrenceOp, Conv1dOp, TokenShiftOp, AttentionOp, RotaryOp>(op);
}

static int64_t dimOf(Value value, unsigned dim) {
  return cast<RankedTensorType>(value.getType()).getDimSize(dim);
}

/// The types of the states `op` carries, in order (none for rotary and a
/// convolution of width 1), or why it cannot carry them.
static std::string stateTypes(Operation *op,
                              SmallVectorImpl<RankedTensorType> &types) {
  auto make = [&](ArrayRef<int64_t> shape, Value like) -> std::string {
    for (int64_t d : shape.drop_front())
      if (ShapedType::isDynamic(d))
        return "has a dynamic size other than the batch, which its state "
               "needs static";
    types.push_back(RankedTensorType::get(
        shape, cast<RankedTensorType>(like.getType()).getElementType()));
    return "";
  };
  if (auto r = dyn_cast<RecurrenceOp>(op)) {
    int64_t value = r.getValueSize();
    if (r.getNormalize() && !ShapedType::isDynamic(value))
      value += 2;
    return make({dimOf(r.getV(), 0), r.getNumHeads(), r.getKeySize(), value},
                r.getV());
  }
  if (auto c = dyn_cast<Conv1dOp>(op)) {
    if (c.getWidth() == 1)
      return "";
    return make(
        {dimOf(c.getInput(), 0), c.getWidth() - 1, dimOf(c.getInput(), 2)},
        c.getInput());
  }
  if (auto t = dyn_cast<TokenShiftOp>(op))
    return make({dimOf(t.getInput(), 0), dimOf(t.getInput(), 2)}, t.getInput());
  if (auto a = dyn_cast<AttentionOp>(op)) {
    int64_t rows = a.getWindowAttr().getInt() - 1;
    if (rows == 0)
      return ""; // A window of 1 sees only the query's own position.
    std::string why =
        make({dimOf(a.getK(), 0), rows, dimOf(a.getK(), 2), dimOf(a.getK(), 3)},
             a.getK());
    if (!why.empty())
      return why;
    return make(
        {dimOf(a.getV(), 0), rows, dimOf(a.getV(), 2), dimOf(a.getV(), 3)},
        a.getV());
  }
  return "";
}

/// Why `op` (one that looks back) cannot continue from a carried state in
/// the step function of `fn`, or "".
static std::string whyUnstreamable(Operation *op, func::FuncOp fn) {
  Operation *parent = op->getParentOp();
  while (isa<MixerOp>(parent))
    parent = parent->getParentOp();
  if (parent != fn.getOperation())
    return ("is nested in '" + parent->getName().getStringRef() +
            "': only ops at the top level of the function or of a "
            "glint.mixer can carry a state between calls")
        .str();
  const char *carries = "already carries a state; glint-expose-state "
                        "expects the model function without states";
  const char *backwards =
      "runs backwards (reverse): an anti-causal layer reads tokens that "
      "come later, so the model cannot run step by step";
  if (auto r = dyn_cast<RecurrenceOp>(op)) {
    if (r.getReverse())
      return backwards;
    if (r.getInitialState() || r.getFinalState())
      return carries;
  } else if (auto c = dyn_cast<Conv1dOp>(op)) {
    if (c.getReverse())
      return backwards;
    if (c.getInitialState() || c.getFinalState())
      return carries;
  } else if (auto t = dyn_cast<TokenShiftOp>(op)) {
    if (t.getInitialState() || t.getFinalState())
      return carries;
  } else if (auto a = dyn_cast<AttentionOp>(op)) {
    if (!a.getWindowAttr())
      return "attends to the whole sequence (no window): its key/value "
             "cache would grow with the sequence, so the model cannot run "
             "step by step in constant memory";
    if (a.getKeyCache())
      return carries;
  } else if (auto r = dyn_cast<RotaryOp>(op)) {
    if (r.getOffset())
      return "already has a position offset; glint-expose-state expects "
             "the model function without one";
  }
  SmallVector<RankedTensorType> types;
  return stateTypes(op, types);
}

std::optional<std::string> glint::findUnstreamableOp(func::FuncOp fn) {
  std::optional<std::string> reason;
  fn.walk([&](Operation *op) {
    if (!looksBack(op))
      return WalkResult::advance();
    std::string why = whyUnstreamable(op, fn);
    if (why.empty())
      return WalkResult::advance();
    std::string where;
    llvm::raw_string_ostream os(where);
    os << "'" << op->getName() << "' at " << op->getLoc() << " " << why;
    reason = where;
    return WalkResult::interrupt();
  });
  return reason;
}

/// The name of `op`'s state: its `glint.state` attribute (set by
/// glint-import), else its location name, else its mixer's label and its
/// kind, else its kind; made unique among `used`.
static std::string stateName(Operation *op, llvm::StringSet<> &used) {
  std::string base;
  if (auto attr = op->getAttrOfType<StringAttr>(GlintDialect::kStateAttrName)) {
    base = attr.str();
  } else if (auto named = op->getLoc()->findInstanceOf<NameLoc>()) {
    base = named.getName().str();
  } else {
    base = op->getName().stripDialect().str();
    auto mixer = op->getParentOfType<MixerOp>();
    if (mixer && mixer.getLabel())
      base = (*mixer.getLabel() + "." + base).str();
  }
  std::string name = base;
  for (unsigned n = 1; used.contains(name); ++n)
    name = base + "." + std::to_string(n);
  used.insert(name);
  return name;
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

FailureOr<func::FuncOp> glint::exposeState(func::FuncOp fn,
                                           StringRef stepName) {
  bool ok = true;
  fn.walk([&](Operation *op) {
    if (!looksBack(op))
      return;
    std::string why = whyUnstreamable(op, fn);
    if (why.empty())
      return;
    op->emitOpError(why);
    ok = false;
  });
  if (!ok)
    return failure();
  auto module = fn->getParentOfType<ModuleOp>();
  if (!module)
    return fn.emitError("is not inside a module");
  if (SymbolTable::lookupSymbolIn(module, stepName))
    return fn.emitError("cannot add the step function: the module already "
                        "has a symbol @")
           << stepName;
  if (fn.getBody().getBlocks().size() != 1)
    return fn.emitError("glint-expose-state expects a function of one block");

  MLIRContext *context = fn.getContext();
  func::FuncOp step = fn.clone();
  step.setSymName(stepName);
  SymbolTable(module).insert(step, std::next(Block::iterator(fn)));

  // The ops that look back, with their state names, read before the mixers
  // (and their labels) go.
  struct Carrier {
    Operation *op;
    std::string name;
  };
  SmallVector<Carrier> carriers;
  llvm::StringSet<> used;
  Value sequence; // A [B, L, ...] value whose L is this call's length.
  step.walk([&](Operation *op) {
    if (!looksBack(op))
      return;
    auto attention = dyn_cast<AttentionOp>(op);
    if (attention && attention.getWindowAttr().getInt() == 1)
      return; // A window of 1: nothing to carry.
    // Rotary embeddings and attention caches read the position; the
    // sequence length comes from their first operand ([B, L, ...]).
    if (isa<RotaryOp, AttentionOp>(op) && !sequence)
      sequence = op->getOperand(0);
    carriers.push_back({op, ""});
  });
  bool needsPosition = static_cast<bool>(sequence);
  if (needsPosition)
    used.insert("position");
  for (Carrier &carrier : carriers)
    if (!isa<RotaryOp>(carrier.op))
      carrier.name = stateName(carrier.op, used);
  inlineMixers(step);

  Block &entry = step.getBody().front();
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  Location loc = step.getLoc();
  OpBuilder b(context);
  auto stateAttr = [&](StringRef name) {
    return DictionaryAttr::get(
        context,
        {NamedAttribute(StringAttr::get(context, GlintDialect::kStateAttrName),
                        StringAttr::get(context, name))});
  };
  SmallVector<Value> next;
  SmallVector<std::string> names;
  auto addState = [&](Type type, StringRef name) -> Value {
    unsigned index = step.getNumArguments();
    (void)step.insertArgument(index, type, stateAttr(name), loc);
    names.push_back(name.str());
    return entry.getArgument(index);
  };

  // position: tensor<i64> in, position + L out.
  Value position, positionI64;
  if (needsPosition) {
    Value arg = addState(RankedTensorType::get({}, b.getI64Type()), "position");
    b.setInsertionPointToStart(&entry);
    positionI64 = tensor::ExtractOp::create(b, loc, arg, ValueRange{});
    position =
        arith::IndexCastOp::create(b, loc, b.getIndexType(), positionI64);
    next.push_back(Value()); // Filled in at the return.
  }

  for (Carrier &carrier : carriers) {
    Operation *op = carrier.op;
    b.setInsertionPoint(op);
    SmallVector<RankedTensorType> types;
    (void)stateTypes(op, types);
    Operation *replacement = nullptr;
    if (auto r = dyn_cast<RecurrenceOp>(op)) {
      Value initial = addState(types[0], carrier.name);
      if (r.getNormalize())
        initial = startEmptyHistories(b, r.getLoc(), initial);
      auto newOp = RecurrenceOp::create(
          b, r.getLoc(), r.getOutput().getType(), types[0], r.getQ(), r.getK(),
          r.getV(), r.getLogDecay(), r.getDelta(), r.getBonus(), r.getSkip(),
          initial, r.getReverse(), r.getNormalize());
      next.push_back(newOp.getFinalState());
      replacement = newOp;
    } else if (auto c = dyn_cast<Conv1dOp>(op)) {
      if (types.empty())
        continue; // Width 1: no history.
      Value initial = addState(types[0], carrier.name);
      auto newOp = Conv1dOp::create(b, c.getLoc(), c.getOutput().getType(),
                                    types[0], c.getInput(), c.getWeight(),
                                    c.getBias(), initial, c.getReverse());
      next.push_back(newOp.getFinalState());
      replacement = newOp;
    } else if (auto t = dyn_cast<TokenShiftOp>(op)) {
      Value initial = addState(types[0], carrier.name);
      auto newOp = TokenShiftOp::create(b, t.getLoc(), t.getOutput().getType(),
                                        types[0], t.getInput(), initial);
      next.push_back(newOp.getFinalState());
      replacement = newOp;
    } else if (auto a = dyn_cast<AttentionOp>(op)) {
      Value keys = addState(types[0], carrier.name + ".key_cache");
      Value values = addState(types[1], carrier.name + ".value_cache");
      auto newOp = AttentionOp::create(
          b, a.getLoc(), a.getOutput().getType(), TypeRange{types[0], types[1]},
          a.getQ(), a.getK(), a.getV(), keys, values, position,
          a.getScaleAttr(), a.getWindowAttr());
      next.push_back(newOp.getFinalKeyCache());
      next.push_back(newOp.getFinalValueCache());
      replacement = newOp;
    } else if (auto r = dyn_cast<RotaryOp>(op)) {
      r.getOffsetMutable().assign(position);
      continue;
    }
    replacement->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    replacement->removeAttr(GlintDialect::kStateAttrName);
    op->getResult(0).replaceAllUsesWith(replacement->getResult(0));
    op->erase();
  }

  b.setInsertionPoint(ret);
  if (needsPosition) {
    Value length = tensor::DimOp::create(b, loc, sequence, 1);
    Value after = arith::AddIOp::create(
        b, loc, positionI64,
        arith::IndexCastOp::create(b, loc, b.getI64Type(), length));
    next[0] = tensor::SplatOp::create(
        b, loc, RankedTensorType::get({}, b.getI64Type()), after, ValueRange{});
  }
  unsigned firstState = ret.getNumOperands();
  ret.getOperandsMutable().append(next);
  step.setFunctionType(FunctionType::get(context, step.getArgumentTypes(),
                                         ret.getOperandTypes()));
  for (auto [i, name] : llvm::enumerate(names))
    step.setResultAttrs(firstState + i, stateAttr(name));
  return step;
}

namespace {
struct ExposeStatePass
    : public glint::impl::GlintExposeStateBase<ExposeStatePass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fn = module.lookupSymbol<func::FuncOp>(function);
    if (!fn) {
      module.emitError("glint-expose-state: no function @") << function;
      return signalPassFailure();
    }
    std::string name =
        stepFunction.empty() ? stepFunctionName(function) : stepFunction;
    if (failed(exposeState(fn, name)))
      signalPassFailure();
  }
};
} // namespace

std::string glint::stepFunctionName(StringRef function) {
  return (function + "_step").str();
}
