//===- ExposeState.cpp - glint-expose-state -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The streaming form of a model: a step function that takes and returns the
// state of every op looking back along the sequence, for generation. See
// the pass description in Passes.td. Which states an op carries and how its
// step form is built is the op's rule (StreamingOpInterface, next to the op
// in dialect/GlintOps.cpp); the pass names the states and threads them
// through the step function.
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

#define DEBUG_TYPE "glint-expose-state"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTEXPOSESTATE
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

/// Why `op` cannot continue from a carried state in the step function of
/// `fn`, or "".
static std::string whyUnstreamable(StreamingOpInterface op, func::FuncOp fn) {
  Operation *parent = op->getParentOp();
  while (isa<MixerOp>(parent))
    parent = parent->getParentOp();
  if (parent != fn.getOperation())
    return ("is nested in '" + parent->getName().getStringRef() +
            "': only ops at the top level of the function or of a "
            "glint.mixer can carry a state between calls")
        .str();
  return op.getStreamingBlocker();
}

std::optional<std::string> glint::findUnstreamableOp(func::FuncOp fn) {
  std::optional<std::string> reason;
  fn.walk([&](StreamingOpInterface op) {
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

FailureOr<func::FuncOp> glint::exposeState(func::FuncOp fn,
                                           StringRef stepName) {
  bool ok = true;
  fn.walk([&](StreamingOpInterface op) {
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
    StreamingOpInterface op;
    std::string name;
  };
  SmallVector<Carrier> carriers;
  llvm::StringSet<> used;
  Value sequence; // A [B, L, ...] value whose L is this call's length.
  step.walk([&](StreamingOpInterface op) {
    if (!op.carriesState() && !op.readsPosition())
      return;
    // An op that reads the position has the sequence first ([B, L, ...]).
    if (op.readsPosition() && !sequence)
      sequence = op->getOperand(0);
    carriers.push_back({op, ""});
  });
  bool needsPosition = static_cast<bool>(sequence);
  if (needsPosition)
    used.insert("position");
  for (Carrier &carrier : carriers)
    if (carrier.op.carriesState())
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
    StreamingOpInterface op = carrier.op;
    b.setInsertionPoint(op);
    SmallVector<RankedTensorType> types;
    (void)op.getStateTypes(types);
    SmallVector<Value> states;
    for (auto [i, type] : llvm::enumerate(types))
      states.push_back(
          addState(type, carrier.name + op.getStateNameSuffix(i).str()));
    Operation *replacement = op.buildStreamingStep(b, states, position, next);
    if (!replacement)
      continue;
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
