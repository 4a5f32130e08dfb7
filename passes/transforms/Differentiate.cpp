//===- Differentiate.cpp - glint-differentiate ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Builds a model's reverse-mode gradient function: the forward ops, then
// their backward rules in reverse program order, each turning the cotangents
// of an op's results into those of its input-dependent operands. A glint
// op's rule is its DifferentiableOpInterface (dialect/GlintGradients.cpp);
// the standard ops' rules are here. Only values that depend on the input
// (the embeddings, or a floating-point argument) get cotangents: weights are
// constants.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "glint-differentiate"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTDIFFERENTIATE
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

std::string mlir::glint::gradientFunctionName(StringRef function) {
  return (function + "_grad").str();
}

namespace {

/// The cotangents of one function's values, and which values depend on its
/// input.
class Cotangents final : public GradientBuilder {
public:
  explicit Cotangents(OpBuilder &builder) : builder(builder) {}

  OpBuilder &getBuilder() override { return builder; }
  Value getCotangent(Value value) const override {
    return cotangents.lookup(value);
  }
  bool isActive(Value value) const override { return active.contains(value); }
  void accumulate(Value value, Value cotangent) override {
    Value &sum = cotangents[value];
    if (!sum) {
      sum = cotangent;
      return;
    }
    if (Value joined = joinSlices(sum, cotangent)) {
      sum = joined;
      return;
    }
    sum = arith::AddFOp::create(builder, cotangent.getLoc(), sum, cotangent)
              .getResult();
  }

  void markActive(Value value) { active.insert(value); }

  /// The backward rule of a standard op; fails with a diagnostic naming the
  /// op when it has none.
  LogicalResult differentiateStandard(Operation *op);

private:
  /// A slice written into zeros: what the cotangent of an extract_slice's
  /// source is.
  struct Slice {
    Value source;
    SmallVector<OpFoldResult> offsets, sizes;
  };
  /// `value` as slices written (unit strides) into a zero fill, the first
  /// written first; the fill, or null if `value` is no such chain.
  static linalg::FillOp slicesIntoZeros(Value value,
                                        SmallVector<Slice> &slices);
  /// The sum of two such chains whose slices do not overlap, written as one
  /// chain without the sum: into the first one's zeros, or into an empty
  /// tensor where the slices cover it; null for anything else (the caller
  /// adds). The old chains are left as they are (another cotangent may be
  /// the same value); unused, they go with the next canonicalisation.
  Value joinSlices(Value sum, Value cotangent);

  OpBuilder &builder;
  DenseMap<Value, Value> cotangents;
  DenseSet<Value> active;
};

/// Whether two sizes or offsets are the same: equal constants, one value,
/// or the same dimension of one tensor.
bool sameSize(OpFoldResult a, OpFoldResult b) {
  if (isEqualConstantIntOrValue(a, b))
    return true;
  auto dimOf = [](OpFoldResult size) {
    auto value = dyn_cast<Value>(size);
    return value ? value.getDefiningOp<tensor::DimOp>() : tensor::DimOp();
  };
  tensor::DimOp dimA = dimOf(a), dimB = dimOf(b);
  if (!dimA || !dimB || dimA.getSource() != dimB.getSource())
    return false;
  std::optional<int64_t> ia = dimA.getConstantIndex(),
                         ib = dimB.getConstantIndex();
  return ia && ib && *ia == *ib;
}

/// Whether two slices provably do not overlap: in some dimension both
/// ranges are constant and apart.
bool disjoint(ArrayRef<OpFoldResult> offsetsA, ArrayRef<OpFoldResult> sizesA,
              ArrayRef<OpFoldResult> offsetsB, ArrayRef<OpFoldResult> sizesB) {
  for (size_t d = 0; d < offsetsA.size(); ++d) {
    std::optional<int64_t> oa = getConstantIntValue(offsetsA[d]),
                           sa = getConstantIntValue(sizesA[d]),
                           ob = getConstantIntValue(offsetsB[d]),
                           sb = getConstantIntValue(sizesB[d]);
    if (oa && sa && ob && sb && (*oa + *sa <= *ob || *ob + *sb <= *oa))
      return true;
  }
  return false;
}

} // namespace

linalg::FillOp Cotangents::slicesIntoZeros(Value value,
                                           SmallVector<Slice> &slices) {
  SmallVector<Slice> reversed;
  while (auto insert = value.getDefiningOp<tensor::InsertSliceOp>()) {
    if (!llvm::all_of(insert.getMixedStrides(), [](OpFoldResult stride) {
          return isConstantIntValue(stride, 1);
        }))
      return {};
    reversed.push_back(
        {insert.getSource(), insert.getMixedOffsets(), insert.getMixedSizes()});
    value = insert.getDest();
  }
  auto fill = value.getDefiningOp<linalg::FillOp>();
  if (!fill || reversed.empty() ||
      !matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
    return {};
  // Rank-reducing slices are left alone.
  for (const Slice &slice : reversed)
    if (cast<RankedTensorType>(slice.source.getType()).getRank() !=
        static_cast<int64_t>(slice.offsets.size()))
      return {};
  slices.append(reversed.rbegin(), reversed.rend());
  return fill;
}

Value Cotangents::joinSlices(Value sum, Value cotangent) {
  SmallVector<Slice> slices, more;
  linalg::FillOp zeros = slicesIntoZeros(sum, slices);
  if (!zeros || !slicesIntoZeros(cotangent, more))
    return {};
  for (const Slice &b : more)
    for (const Slice &a : slices)
      if (!disjoint(a.offsets, a.sizes, b.offsets, b.sizes))
        return {};
  slices.append(more);

  // The slices cover the tensor when all but one dimension are whole in
  // each, and their ranges in that one tile it.
  auto type = cast<RankedTensorType>(sum.getType());
  Value empty = zeros.getOutputs()[0];
  auto emptyOp = empty.getDefiningOp<tensor::EmptyOp>();
  if (!emptyOp)
    return {};
  SmallVector<OpFoldResult> full = emptyOp.getMixedSizes();
  bool covered = false;
  for (int64_t d = 0; d < type.getRank() && !covered; ++d) {
    if (type.isDynamicDim(d))
      continue;
    SmallVector<std::pair<int64_t, int64_t>> ranges;
    bool whole = true;
    for (const Slice &slice : slices) {
      for (int64_t e = 0; e < type.getRank(); ++e)
        if (e != d && !(isConstantIntValue(slice.offsets[e], 0) &&
                        sameSize(slice.sizes[e], full[e])))
          whole = false;
      std::optional<int64_t> o = getConstantIntValue(slice.offsets[d]),
                             n = getConstantIntValue(slice.sizes[d]);
      if (!o || !n)
        whole = false;
      else
        ranges.push_back({*o, *o + *n});
    }
    if (!whole)
      continue;
    llvm::sort(ranges);
    int64_t end = 0;
    for (auto [begin, stop] : ranges)
      if (begin <= end)
        end = std::max(end, stop);
    covered = end >= type.getDimSize(d);
  }

  Location loc = cotangent.getLoc();
  Value chain = covered ? empty : zeros.getResult(0);
  for (const Slice &slice : slices)
    chain = tensor::InsertSliceOp::create(
                builder, loc, slice.source, chain, slice.offsets, slice.sizes,
                SmallVector<OpFoldResult>(slice.offsets.size(),
                                          builder.getIndexAttr(1)))
                .getResult();
  return chain;
}

LogicalResult Cotangents::differentiateStandard(Operation *op) {
  Location loc = op->getLoc();
  OpBuilder &b = builder;
  auto give = [&](Value operand, function_ref<Value()> cotangent) {
    if (isActive(operand))
      accumulate(operand, cotangent());
  };
  Value dy = op->getNumResults() ? getCotangent(op->getResult(0)) : Value();
  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](arith::AddFOp add) {
        give(add.getLhs(), [&] { return dy; });
        give(add.getRhs(), [&] { return dy; });
        return success();
      })
      .Case([&](arith::SubFOp sub) {
        give(sub.getLhs(), [&] { return dy; });
        give(sub.getRhs(),
             [&] { return arith::NegFOp::create(b, loc, dy).getResult(); });
        return success();
      })
      .Case([&](arith::MulFOp mul) {
        give(mul.getLhs(), [&] {
          return arith::MulFOp::create(b, loc, dy, mul.getRhs()).getResult();
        });
        give(mul.getRhs(), [&] {
          return arith::MulFOp::create(b, loc, dy, mul.getLhs()).getResult();
        });
        return success();
      })
      .Case([&](arith::DivFOp div) {
        // d(l / r) = dl / r − (l / r) · dr / r
        Value scaled = arith::DivFOp::create(b, loc, dy, div.getRhs());
        give(div.getLhs(), [&] { return scaled; });
        give(div.getRhs(), [&] {
          Value t = arith::MulFOp::create(b, loc, scaled, div.getResult());
          return arith::NegFOp::create(b, loc, t).getResult();
        });
        return success();
      })
      .Case([&](arith::NegFOp neg) {
        give(neg.getOperand(),
             [&] { return arith::NegFOp::create(b, loc, dy).getResult(); });
        return success();
      })
      .Case([&](math::ExpOp exp) {
        give(exp.getOperand(), [&] {
          return arith::MulFOp::create(b, loc, dy, exp.getResult()).getResult();
        });
        return success();
      })
      .Case([&](math::SqrtOp sqrt) {
        // d√x = dy / (2√x)
        give(sqrt.getOperand(), [&] {
          Value twice =
              arith::AddFOp::create(b, loc, sqrt.getResult(), sqrt.getResult());
          return arith::DivFOp::create(b, loc, dy, twice).getResult();
        });
        return success();
      })
      .Case([&](tensor::ExtractSliceOp slice) {
        give(slice.getSource(), [&] {
          Value zeros = splatLike(loc, slice.getSource(), 0.0);
          return tensor::InsertSliceOp::create(
                     b, loc, dy, zeros, slice.getMixedOffsets(),
                     slice.getMixedSizes(), slice.getMixedStrides())
              .getResult();
        });
        return success();
      })
      .Case([&](tensor::ExpandShapeOp expand) {
        give(expand.getSrc(), [&] {
          return tensor::CollapseShapeOp::create(
                     b, loc, expand.getSrcType(), dy,
                     expand.getReassociationIndices())
              .getResult();
        });
        return success();
      })
      .Case([&](tensor::CollapseShapeOp collapse) {
        give(collapse.getSrc(), [&] {
          return tensor::ExpandShapeOp::create(
                     b, loc, collapse.getSrcType(), dy,
                     collapse.getReassociationIndices(),
                     sizesOf(loc, collapse.getSrc()))
              .getResult();
        });
        return success();
      })
      .Case([&](tensor::ConcatOp concat) {
        int64_t dim = concat.getDim();
        int64_t rank = concat.getResultType().getRank();
        OpFoldResult offset = b.getIndexAttr(0);
        for (Value part : concat.getInputs()) {
          SmallVector<OpFoldResult> sizes = sizesOf(loc, part);
          give(part, [&] {
            SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
            offsets[dim] = offset;
            SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
            return tensor::ExtractSliceOp::create(
                       b, loc, cast<RankedTensorType>(part.getType()), dy,
                       offsets, sizes, strides)
                .getResult();
          });
          Value at = getValueOrCreateConstantIndexOp(b, loc, offset);
          Value size = getValueOrCreateConstantIndexOp(b, loc, sizes[dim]);
          offset = arith::AddIOp::create(b, loc, at, size).getResult();
        }
        return success();
      })
      .Case([&](linalg::TransposeOp transpose) {
        give(transpose.getInput(), [&] {
          SmallVector<int64_t> inverse(transpose.getPermutation().size());
          for (auto [i, p] : llvm::enumerate(transpose.getPermutation()))
            inverse[p] = i;
          Value init = emptyLike(loc, transpose.getInput());
          return linalg::TransposeOp::create(b, loc, dy, init, inverse)
              .getResult()[0];
        });
        return success();
      })
      .Default([&](Operation *) {
        return op->emitOpError()
               << "depends on the differentiated input but has no backward "
                  "rule (glint-differentiate knows the glint ops, arith "
                  "addf/subf/mulf/divf/negf, math exp/sqrt, tensor slices, "
                  "reshapes and concat, and linalg.transpose)";
      });
}

namespace {

/// A layer whose output cotangent the gradient function returns.
struct Layer {
  Value output;
  std::string label;
};

} // namespace

/// Inlines the mixers of `fn` (one block) and returns every token-mixing
/// layer's output with its label, labelled as glint-to-attention does.
static FailureOr<SmallVector<Layer>> inlineLayers(func::FuncOp fn) {
  SmallVector<Operation *> ops;
  fn.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (isa<MixerOp>(op)) {
      ops.push_back(op);
      return WalkResult::skip();
    }
    if (isa<AttentionOp>(op))
      ops.push_back(op);
    return WalkResult::advance();
  });
  IRRewriter rewriter(fn.getContext());
  SmallVector<Layer> layers;
  for (Operation *op : ops) {
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      layers.push_back({attention.getOutput(),
                        llvm::formatv("attention{0}", layers.size()).str()});
      continue;
    }
    auto mixer = cast<MixerOp>(op);
    std::string label = mixer.getLabelAttr()
                            ? mixer.getLabelAttr().str()
                            : llvm::formatv("layer{0}", layers.size()).str();
    Block &body = mixer.getBody().front();
    Value yielded = mixer.getYield().getValue();
    if (yielded.getParentBlock() != &body || isa<BlockArgument>(yielded) ||
        !yielded.hasOneUse())
      return mixer.emitOpError()
             << "yields a value that is also used elsewhere (or its input); "
                "layer '"
             << label << "' has no output of its own to differentiate";
    if (!body.getOps<MixerOp>().empty())
      return mixer.emitOpError("contains another glint.mixer");
    rewriter.eraseOp(mixer.getYield());
    rewriter.inlineBlockBefore(&body, mixer, ValueRange{mixer.getInput()});
    rewriter.replaceOp(mixer, yielded);
    layers.push_back({yielded, label});
  }
  return layers;
}

FailureOr<func::FuncOp> mlir::glint::differentiate(func::FuncOp forward,
                                                   StringRef name) {
  if (!forward.getBody().hasOneBlock())
    return forward.emitOpError("has several blocks; glint-differentiate "
                               "expects a model function with one block");
  if (forward.getNumResults() == 0 ||
      !isa<RankedTensorType>(forward.getResultTypes()[0]))
    return forward.emitOpError("returns no tensor to differentiate");
  auto module = forward->getParentOfType<ModuleOp>();
  if (module && module.lookupSymbol(name))
    return forward.emitOpError() << "cannot add its gradient function: @"
                                 << name << " already exists";

  OpBuilder top(forward);
  top.setInsertionPointAfter(forward);
  auto fn = cast<func::FuncOp>(top.clone(*forward));
  fn.setSymName(name);
  fn->removeAttr(GlintDialect::kAttentionLayersAttrName);
  llvm::scope_exit cleanup([&] {
    if (fn)
      fn.erase();
  });

  FailureOr<SmallVector<Layer>> layers = inlineLayers(fn);
  if (failed(layers))
    return failure();

  Block &block = fn.getBody().front();
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  Type seedType = fn.getResultTypes()[0];
  Value seed = block.addArgument(seedType, fn.getLoc());

  OpBuilder builder(ret);
  Cotangents grad(builder);

  // The input: the embeddings of a token model, else its float arguments.
  SmallVector<Value> inputs;
  fn.walk([&](EmbeddingOp embedding) { inputs.push_back(embedding); });
  if (inputs.empty())
    for (BlockArgument arg : block.getArguments().drop_back())
      if (isa<FloatType>(getElementTypeOrSelf(arg.getType())))
        inputs.push_back(arg);
  if (inputs.empty())
    return fn.emitOpError("has no input to differentiate with respect to (no "
                          "glint.embedding and no floating-point argument)");
  for (Value input : inputs)
    grad.markActive(input);
  SmallVector<Operation *> ops;
  for (Operation &op : block.without_terminator()) {
    ops.push_back(&op);
    if (llvm::any_of(op.getOperands(),
                     [&](Value v) { return grad.isActive(v); }))
      for (Value result : op.getResults())
        if (isa<FloatType>(getElementTypeOrSelf(result.getType())))
          grad.markActive(result);
  }

  Value output = ret.getOperand(0);
  if (!grad.isActive(output))
    return fn.emitOpError("its result does not depend on its input");
  grad.accumulate(output, seed);
  for (Operation *op : llvm::reverse(ops)) {
    if (llvm::none_of(op->getResults(),
                      [&](Value r) { return grad.getCotangent(r); }) ||
        llvm::none_of(op->getOperands(),
                      [&](Value v) { return grad.isActive(v); }))
      continue;
    LogicalResult result =
        isa<DifferentiableOpInterface>(op)
            ? cast<DifferentiableOpInterface>(op).buildGradient(grad)
            : grad.differentiateStandard(op);
    if (failed(result))
      return failure();
  }

  SmallVector<Value> results(ret.getOperands());
  SmallVector<Attribute> labels;
  auto cotangentOrZeros = [&](Value v) {
    Value ct = grad.getCotangent(v);
    return ct ? ct : grad.splatLike(v.getLoc(), v, 0.0);
  };
  for (const Layer &layer : *layers) {
    results.push_back(cotangentOrZeros(layer.output));
    labels.push_back(builder.getStringAttr(layer.label));
  }
  for (Value input : inputs)
    results.push_back(cotangentOrZeros(input));
  ret->setOperands(results);
  fn.setFunctionType(builder.getFunctionType(block.getArgumentTypes(),
                                             TypeRange(ValueRange(results))));
  fn->setAttr(GlintDialect::kGradientLayersAttrName,
              builder.getArrayAttr(labels));
  func::FuncOp done = fn;
  fn = nullptr;
  return done;
}

Value glint::findInputEmbeddings(func::FuncOp forward) {
  SmallVector<EmbeddingOp> lookups;
  forward.walk([&](EmbeddingOp e) { lookups.push_back(e); });
  if (lookups.size() == 1)
    return lookups.front().getResult();
  if (!lookups.empty())
    return Value();
  Value traced;
  forward.walk([&](Operation *op) {
    auto trace = op->getAttrOfType<StringAttr>(GlintDialect::kTraceAttrName);
    if (trace && trace.getValue() == "hidden_states.0" &&
        op->getNumResults() == 1)
      traced = op->getResult(0);
  });
  return traced;
}

BlockArgument glint::embeddingsAsArgument(func::FuncOp forward,
                                          Value embeddings) {
  Block &block = forward.getBody().front();
  BlockArgument argument =
      block.addArgument(embeddings.getType(), embeddings.getLoc());
  embeddings.replaceAllUsesWith(argument);
  for (bool erased = true; erased;) {
    erased = false;
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (isOpTriviallyDead(&op)) {
        op.erase();
        erased = true;
      }
  }
  forward.setFunctionType(
      FunctionType::get(forward.getContext(), block.getArgumentTypes(),
                        forward.getFunctionType().getResults()));
  return argument;
}

namespace {
struct DifferentiatePass
    : public glint::impl::GlintDifferentiateBase<DifferentiatePass> {
  using GlintDifferentiateBase::GlintDifferentiateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward) {
      module.emitError() << "no function @" << function << " to differentiate";
      return signalPassFailure();
    }
    std::string name = gradientFunction.empty() ? gradientFunctionName(function)
                                                : std::string(gradientFunction);
    if (failed(differentiate(forward, name)))
      signalPassFailure();
  }
};
} // namespace
