//===- VectorizeElementwise.cpp - glint-vectorize-elementwise -------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The element-wise pre-activations of a scan (softplus(Δ), the SiLU and
// sigmoid gates, exp of a log-decay, RG-LRU's sqrt(1 - a²)) are each their
// own linalg.generic. Left to LLVM's loop vectoriser after linalg-to-loops,
// they run at its preferred width (256 bits on Intel server cores) or not
// at all when the strides are dynamic; next to the vectorised scan, Mamba-1's
// softplus alone took about half the scan's time (glint-bench softplus).
// This pass writes each such generic as explicit vector loops on tensors:
//
//   %y = scf.forall (%i0, ..., %i{r-2}) in (outer dims) shared_outs(%out) {
//     %row = tensor.extract_slice %out[%i0, ..., 0] [1, ..., 1, D]
//     %r = scf.for %j = 0 to D step W iter_args(%row) {
//       x = vector.transfer_read %in[%i0, ..., %j]   (masked past D)
//       y = the generic's body on vector<W x f32>
//       vector.transfer_write y, %row[%j]
//     }
//     scf.forall.in_parallel { parallel_insert_slice %r into %out[...] }
//   }
//
// so that they run at the full vector width, in their own loop (never fused
// into the scan), and on the OpenMP threads through the forall. Inputs may be
// broadcast along outer dimensions (a bias row) or along the innermost one (a
// value per row). %out is the generic's output, which bufferizes in place
// (often into a dead input's buffer), or an empty tensor when that value is
// used after the generic: the loops overwrite all of it, so copying it first
// (what bufferization does for a live value) would be wasted. Generics with
// several results, an output that the body reads, index ops or
// non-element-wise body ops are left as they are; so are reductions, except
// sums of such a map along the innermost dimension (a norm's mean and
// variance: `out[i] += f(x[i, j], ...)`), which become a forall over the
// output's elements, each summing W lanes of f at a time into a vector and
// adding its lanes once (vectorizeRowSum).
//
// Before that (option `fuse`), chains of such maps are fused into one map
// (so one loop): a map whose result is read by exactly one other map or row
// sum, element for element, is computed inside it, fills read by a map
// become scalars of its body, and broadcasts read by a map are read as
// their input. Read through a broadcast, a map keeps its loop: fused, it
// would be computed once per element it is spread over. Read by several
// ops, it keeps its loop unless it is cheap to repeat (isCheapToRepeat: at
// most four additions' worth of work per element, ops on values per row
// free, its readers reading no more rows than its loop would save); each
// reader then gets a copy of its own. On a CPU a pass costs its bytes more
// than its operations, and the backward pass is where this counts: the
// derivative of SiLU alone was six maps and two fills, and a norm's
// backward seven loops (its gain spread over the row, x̂ and ĝ each read
// twice), now three.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "glint-vectorize-elementwise"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVECTORIZEELEMENTWISE
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// How an input of the generic is read in the innermost loop.
enum class Access {
  /// W consecutive elements along the innermost dimension.
  Row,
  /// One element per row (the map has no innermost dimension): broadcast.
  Scalar,
};

/// Whether the body's ops other than `except` are element-wise ops on f32
/// scalars (comparisons and selects included) that the loops can run on
/// vectors.
bool hasElementwiseBody(Block &body, Operation *except = nullptr) {
  for (Operation &op : body.without_terminator()) {
    if (&op == except)
      continue;
    if (!OpTrait::hasElementwiseMappableTraits(&op) || op.getNumRegions() ||
        op.getNumResults() != 1 ||
        !isa<arith::ArithDialect, math::MathDialect>(op.getDialect()))
      return false;
    for (Type t : op.getResultTypes())
      if (!t.isF32() && !t.isInteger(1))
        return false;
  }
  return true;
}

/// Whether every input of `generic` is an f32 tensor read along the
/// innermost loop dimension or one value per row, without a transpose;
/// fills the access of each.
bool readsRowsOrScalars(linalg::GenericOp generic,
                        SmallVectorImpl<Access> &access) {
  unsigned rank = generic.getNumLoops();
  for (OpOperand *input : generic.getDpsInputOperands()) {
    auto type = dyn_cast<RankedTensorType>(input->get().getType());
    if (!type || !type.getElementType().isF32())
      return false;
    AffineMap map = generic.getMatchingIndexingMap(input);
    if (!map.isProjectedPermutation() || map.getNumSymbols())
      return false;
    // Dimensions in increasing order (a broadcast, no transpose).
    int64_t previous = -1;
    for (AffineExpr e : map.getResults()) {
      int64_t d = cast<AffineDimExpr>(e).getPosition();
      if (d <= previous)
        return false;
      previous = d;
    }
    access.push_back(previous == int64_t(rank) - 1 ? Access::Row
                                                   : Access::Scalar);
  }
  return true;
}

/// Whether `generic` is an element-wise map this pass rewrites; fills the
/// access of each input.
bool isVectorizable(linalg::GenericOp generic,
                    SmallVectorImpl<Access> &access) {
  if (!generic.hasPureTensorSemantics() || generic.getNumDpsInits() != 1 ||
      generic.getNumLoops() == 0 ||
      generic.getNumParallelLoops() != generic.getNumLoops())
    return false;
  OpOperand *init = generic.getDpsInitOperand(0);
  auto outType = cast<RankedTensorType>(init->get().getType());
  if (!outType.getElementType().isF32() ||
      !generic.getMatchingIndexingMap(init).isIdentity())
    return false;
  // The body reads the inputs only, and is made of element-wise ops on f32
  // scalars (comparisons and selects included).
  if (!generic.getMatchingBlockArgument(init).use_empty())
    return false;
  return hasElementwiseBody(generic.getRegion().front()) &&
         readsRowsOrScalars(generic, access);
}

/// Whether `value` has a use other than `op` that does not come before `op`
/// in `op`'s block (a use nested in an op after it, or in another region
/// that is not before it, counts).
bool isUsedAfter(Value value, Operation *op) {
  Block *block = op->getBlock();
  for (Operation *user : value.getUsers()) {
    if (user == op)
      continue;
    Operation *ancestor = block->findAncestorOpInBlock(*user);
    if (!ancestor || !ancestor->isBeforeInBlock(op))
      return true;
  }
  return false;
}

/// The body of `generic` on vectors of `width` lanes at (`outer`, `j`): its
/// inputs read as `access` says (a row of lanes, or one value per row in
/// every lane; `rowOf`, if given, reads the Row inputs it returns a value
/// for), then each op but `except` cloned with vector operands (scalars
/// from outside broadcast) and result types. Returns the vector of
/// `result`, a value of the body.
Value bodyOnVectors(OpBuilder &b, Location loc, linalg::GenericOp generic,
                    ArrayRef<Access> access, ValueRange outer, Value j,
                    int64_t width, bool inBounds, Value result,
                    Operation *except = nullptr,
                    function_ref<Value(OpOperand *)> rowOf = nullptr) {
  unsigned rank = generic.getNumLoops();
  auto vectorType = VectorType::get({width}, b.getF32Type());
  Value padding = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  Block &body = generic.getRegion().front();
  IRMapping mapping;
  for (auto [n, input] : llvm::enumerate(generic.getDpsInputOperands())) {
    AffineMap map = generic.getMatchingIndexingMap(input);
    SmallVector<Value> indices;
    for (AffineExpr e : map.getResults()) {
      unsigned d = cast<AffineDimExpr>(e).getPosition();
      indices.push_back(d == rank - 1 ? j : outer[d]);
    }
    Value v = access[n] == Access::Row && rowOf ? rowOf(input) : Value();
    if (!v && access[n] == Access::Row)
      v = vector::TransferReadOp::create(b, loc, vectorType, input->get(),
                                         indices, padding,
                                         ArrayRef<bool>{inBounds});
    else if (!v)
      v = vector::BroadcastOp::create(
          b, loc, vectorType,
          tensor::ExtractOp::create(b, loc, input->get(), indices));
    mapping.map(body.getArgument(n), v);
  }
  for (Operation &op : body.without_terminator()) {
    if (&op == except)
      continue;
    for (Value operand : op.getOperands())
      if (!mapping.contains(operand))
        mapping.map(
            operand,
            vector::BroadcastOp::create(
                b, loc, VectorType::get({width}, operand.getType()), operand));
    Operation *vectorOp = b.clone(op, mapping);
    vectorOp->getResult(0).setType(
        VectorType::get({width}, op.getResult(0).getType()));
  }
  Value value = mapping.lookupOrDefault(result);
  if (!isa<VectorType>(value.getType())) // a captured value
    value = vector::BroadcastOp::create(b, loc, vectorType, value);
  return value;
}

/// Rewrites one generic into the loops described at the top of this file.
void vectorize(linalg::GenericOp generic, ArrayRef<Access> access,
               int64_t width, RewriterBase &rewriter) {
  Location loc = generic.getLoc();
  rewriter.setInsertionPoint(generic);
  unsigned rank = generic.getNumLoops();
  Value out = generic.getDpsInitOperand(0)->get();
  auto outType = cast<RankedTensorType>(out.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, out);
  // The loops write every element and never read the output, so its
  // initial value only lends its buffer. When that value is still used
  // afterwards (a forward activation kept for the backward pass),
  // bufferization would copy it before overwriting the copy: start from an
  // empty tensor instead.
  if (isUsedAfter(out, generic))
    out =
        tensor::EmptyOp::create(rewriter, loc, sizes, outType.getElementType());
  int64_t innerSize = outType.getDimSize(rank - 1);
  bool inBounds = !ShapedType::isDynamic(innerSize) && innerSize % width == 0;
  Type f32 = rewriter.getF32Type();
  auto vectorType = VectorType::get({width}, f32);

  // One row [1, ..., 1, D] per iteration of the outer dimensions.
  auto buildRow = [&](OpBuilder &b, ValueRange outer, Value row) -> Value {
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value step = arith::ConstantIndexOp::create(b, loc, width);
    Value inner = getValueOrCreateConstantIndexOp(b, loc, sizes[rank - 1]);
    Value padding = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
    auto loop = scf::ForOp::create(
        b, loc, zero, inner, step, ValueRange{row},
        [&](OpBuilder &nb, Location, Value j, ValueRange carried) {
          // An input that is also the output (convert-elementwise-to-
          // linalg's choice of initial value) is read from the row being
          // written, before the write: read from the whole tensor, it would
          // conflict with the other iterations' writes and bufferization
          // would copy it.
          auto rowOf = [&](OpOperand *input) -> Value {
            if (input->get() != out)
              return {};
            return vector::TransferReadOp::create(
                nb, loc, vectorType, carried[0], ValueRange{j}, padding,
                ArrayRef<bool>{inBounds});
          };
          Block &body = generic.getRegion().front();
          Value result = bodyOnVectors(
              nb, loc, generic, access, outer, j, width, inBounds,
              body.getTerminator()->getOperand(0), nullptr, rowOf);
          Value written = vector::TransferWriteOp::create(
                              nb, loc, result, carried[0], ValueRange{j},
                              ArrayRef<bool>{inBounds})
                              .getResult();
          scf::YieldOp::create(nb, loc, written);
        });
    return loop.getResult(0);
  };

  Value result;
  if (rank == 1) {
    result = buildRow(rewriter, {}, out);
  } else {
    SmallVector<OpFoldResult> outerSizes(sizes.begin(), sizes.end() - 1);
    auto forall = scf::ForallOp::create(
        rewriter, loc, outerSizes, ValueRange{out}, /*mapping=*/std::nullopt,
        [&](OpBuilder &b, Location, ValueRange args) {
          ValueRange outer = args.take_front(rank - 1);
          SmallVector<OpFoldResult> offsets(outer.begin(), outer.end());
          offsets.push_back(b.getIndexAttr(0));
          SmallVector<OpFoldResult> rowSizes(rank - 1, b.getIndexAttr(1));
          rowSizes.push_back(sizes[rank - 1]);
          SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));
          Value row = tensor::ExtractSliceOp::create(
              b, loc, RankedTensorType::get({innerSize}, f32), args.back(),
              offsets, rowSizes, strides);
          Value newRow = buildRow(b, outer, row);
          auto inParallel = scf::InParallelOp::create(b, loc);
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(inParallel.getBody());
          tensor::ParallelInsertSliceOp::create(b, loc, newRow, args.back(),
                                                offsets, rowSizes, strides);
        });
    result = forall.getResult(0);
  }
  rewriter.replaceOp(generic, result);
}

//===----------------------------------------------------------------------===//
// Sums along the innermost dimension
//===----------------------------------------------------------------------===//

/// The sum of an element-wise map along the innermost dimension of a
/// linalg.generic, `out[i] += f(x[i, j], y[i], ...)` over j: a norm's mean
/// and variance, RWKV-6's group norm over its heads. Returns the value the
/// body adds to its output (the map's result, `f`), or null when `generic`
/// is not of that form: one f32 output indexed by the outer dimensions, the
/// innermost dimension a reduction and every other parallel, the body's
/// yield `out + f` (or `f + out`) and its only read of `out`, the rest as
/// isVectorizable takes (element-wise arith and math on f32, inputs read
/// along the row or one value per row, no transposes).
Value rowSum(linalg::GenericOp generic, SmallVectorImpl<Access> &access) {
  unsigned rank = generic.getNumLoops();
  if (!generic.hasPureTensorSemantics() || generic.getNumDpsInits() != 1 ||
      rank < 2 || generic.getNumReductionLoops() != 1 ||
      !linalg::isReductionIterator(generic.getIteratorTypesArray().back()))
    return {};
  OpOperand *init = generic.getDpsInitOperand(0);
  auto outType = cast<RankedTensorType>(init->get().getType());
  AffineMap outMap = generic.getMatchingIndexingMap(init);
  if (!outType.getElementType().isF32() || outMap.getNumSymbols() ||
      outMap.getNumResults() != rank - 1)
    return {};
  for (unsigned d = 0; d + 1 < rank; ++d)
    if (outMap.getResult(d) != getAffineDimExpr(d, generic.getContext()))
      return {};
  Block &body = generic.getRegion().front();
  BlockArgument outArg = generic.getMatchingBlockArgument(init);
  auto sum = dyn_cast_or_null<arith::AddFOp>(
      body.getTerminator()->getOperand(0).getDefiningOp());
  if (!sum || !outArg.hasOneUse() || sum->getBlock() != &body ||
      (sum.getLhs() != outArg && sum.getRhs() != outArg))
    return {};
  Value term = sum.getLhs() == outArg ? sum.getRhs() : sum.getLhs();
  if (term == outArg || !term.getType().isF32() ||
      !hasElementwiseBody(body, sum) || !readsRowsOrScalars(generic, access) ||
      !llvm::is_contained(access, Access::Row))
    return {};
  return term;
}

/// Rewrites such a sum into vector loops: per element of the output (a
/// forall over the outer dimensions), W lanes of `f` at a time summed into
/// a vector, masked past the row's end, then its lanes added (in any
/// order) and the output's value added to them. LLVM, given the scalar
/// loops, vectorised a 16-element row's sum across 16 rows with gathers
/// and scatters: RWKV-6's group-norm statistics were 15% of its forward.
void vectorizeRowSum(linalg::GenericOp generic, Value term,
                     ArrayRef<Access> access, int64_t width,
                     RewriterBase &rewriter) {
  Location loc = generic.getLoc();
  rewriter.setInsertionPoint(generic);
  unsigned rank = generic.getNumLoops();
  Value out = generic.getDpsInitOperand(0)->get();
  SmallVector<OpFoldResult> outSizes =
      tensor::getMixedSizes(rewriter, loc, out);
  // The row's length, from the first input read along it.
  Value rowSource;
  for (auto [n, input] : llvm::enumerate(generic.getDpsInputOperands()))
    if (access[n] == Access::Row) {
      rowSource = input->get();
      break;
    }
  auto rowType = cast<RankedTensorType>(rowSource.getType());
  OpFoldResult rowSize =
      tensor::getMixedSize(rewriter, loc, rowSource, rowType.getRank() - 1);
  std::optional<int64_t> staticRow = getConstantIntValue(rowSize);
  bool inBounds = staticRow && *staticRow % width == 0;
  Type f32 = rewriter.getF32Type();
  auto vectorType = VectorType::get({width}, f32);
  Block &body = generic.getRegion().front();

  auto forall = scf::ForallOp::create(
      rewriter, loc, outSizes, ValueRange{out}, /*mapping=*/std::nullopt,
      [&](OpBuilder &b, Location, ValueRange args) {
        ValueRange outer = args.take_front(rank - 1);
        Value zero = arith::ConstantIndexOp::create(b, loc, 0);
        Value step = arith::ConstantIndexOp::create(b, loc, width);
        Value length = getValueOrCreateConstantIndexOp(b, loc, rowSize);
        Value zeros = arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(vectorType, 0.0f));
        auto loop = scf::ForOp::create(
            b, loc, zero, length, step, ValueRange{zeros},
            [&](OpBuilder &nb, Location, Value j, ValueRange carried) {
              Value value = bodyOnVectors(
                  nb, loc, generic, access, outer, j, width, inBounds, term,
                  body.getTerminator()->getOperand(0).getDefiningOp());
              if (!inBounds) {
                // Lanes past the row's end add nothing.
                Value left = arith::SubIOp::create(nb, loc, length, j);
                Value mask = vector::CreateMaskOp::create(
                    nb, loc, VectorType::get({width}, nb.getI1Type()),
                    ValueRange{left});
                value = arith::SelectOp::create(nb, loc, mask, value, zeros);
              }
              scf::YieldOp::create(
                  nb, loc,
                  ValueRange{arith::AddFOp::create(nb, loc, carried[0], value)
                                 .getResult()});
            });
        Value lanes = vector::ReductionOp::create(
            b, loc, vector::CombiningKind::ADD, loop.getResult(0),
            arith::FastMathFlags::reassoc);
        // The output's element as a one-element slice, written in place.
        SmallVector<OpFoldResult> offsets(outer.begin(), outer.end());
        SmallVector<OpFoldResult> ones(rank - 1, b.getIndexAttr(1));
        Value element = tensor::ExtractSliceOp::create(
            b, loc, RankedTensorType::get({1}, f32), args.back(), offsets, ones,
            ones);
        Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
        Value old = tensor::ExtractOp::create(b, loc, element, ValueRange{c0});
        Value total = arith::AddFOp::create(b, loc, old, lanes);
        Value written =
            tensor::InsertOp::create(b, loc, total, element, ValueRange{c0});
        auto inParallel = scf::InParallelOp::create(b, loc);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(b, loc, written, args.back(),
                                              offsets, ones, ones);
      });
  rewriter.replaceOp(generic, forall.getResults());
}

//===----------------------------------------------------------------------===//
// Fusing chains
//===----------------------------------------------------------------------===//

/// Whether `generic` is an element-wise map the loops above take.
bool isVectorizable(linalg::GenericOp generic) {
  SmallVector<Access> access;
  return isVectorizable(generic, access);
}

/// Whether `generic` is an element-wise map or a row sum this pass
/// vectorizes: what a producer may be fused into.
bool isMapOrRowSum(linalg::GenericOp generic) {
  SmallVector<Access> access;
  return isVectorizable(generic) || rowSum(generic, access);
}

/// Whether `operand` is an input that its generic reads element for
/// element (no broadcast, which would compute a fused producer again for
/// every element it is spread over), the generic being an element-wise map
/// this pass vectorizes or a sum of one along the innermost dimension
/// (rowSum): a norm's backward sums ĝ and ĝ ⊙ x̂ over each row.
bool readsElementwise(OpOperand &operand) {
  auto consumer = dyn_cast<linalg::GenericOp>(operand.getOwner());
  if (!consumer || !consumer.isDpsInput(&operand))
    return false;
  return consumer.getMatchingIndexingMap(&operand).isIdentity() &&
         isMapOrRowSum(consumer);
}

/// Whether `operand` only lends its buffer: the output of such a map (whose
/// body does not read it).
bool lendsBuffer(OpOperand &operand) {
  auto generic = dyn_cast<linalg::GenericOp>(operand.getOwner());
  return generic && generic.isDpsInit(&operand) && isVectorizable(generic);
}

/// Whether `input` of `generic` is one of its full-size operands (read
/// along every loop dimension, as a [B, L, C] activation), rather than a
/// parameter spread over the rows or a value per row: only those make
/// memory traffic that a repeated computation would add to.
bool isFullSize(linalg::GenericOp generic, OpOperand *input) {
  return generic.getMatchingIndexingMap(input).getNumResults() ==
         generic.getNumLoops();
}

/// The work a map's body does per element, in additions: the ops that read
/// a value that varies along the row (an input read along the innermost
/// dimension, or an op on one), additions, subtractions, multiplications,
/// negations, comparisons, selects, minima and maxima 1, divisions and
/// (reciprocal) square roots 4, anything else (a transcendental) too much
/// (nullopt). Ops on values per row only (a norm's gain from its variance)
/// do not count: they are the same for every element of the row (and LLVM
/// takes them out of the loop along it).
std::optional<int64_t> perElementWork(linalg::GenericOp generic) {
  SmallVector<Access> access;
  if (!readsRowsOrScalars(generic, access))
    return std::nullopt;
  Block &body = generic.getRegion().front();
  llvm::SmallPtrSet<Value, 8> varying;
  for (auto [input, how] : llvm::zip(generic.getDpsInputOperands(), access))
    if (how == Access::Row)
      varying.insert(generic.getMatchingBlockArgument(input));
  int64_t work = 0;
  for (Operation &op : body.without_terminator()) {
    if (llvm::none_of(op.getOperands(),
                      [&](Value v) { return varying.contains(v); }))
      continue;
    varying.insert(op.getResult(0));
    if (isa<arith::MulFOp, arith::AddFOp, arith::SubFOp, arith::NegFOp,
            math::FmaOp, arith::CmpFOp, arith::SelectOp, arith::MaximumFOp,
            arith::MinimumFOp, arith::MaxNumFOp, arith::MinNumFOp>(op))
      work += 1;
    else if (isa<arith::DivFOp, math::SqrtOp, math::RsqrtOp>(op))
      work += 4;
    else
      return std::nullopt;
  }
  return work;
}

/// Whether a map is cheap enough to compute once per reader rather than
/// once in a loop of its own: at most four additions' worth of work per
/// element (perElementWork), and no more memory read by its readers than
/// its own loop would read and write: with k full-size inputs and n
/// readers, each reader then reads the k, n k <= k + 1 + n (the map's loop
/// reads k, writes one, and each reader reads that). On a CPU such a pass
/// costs its bytes (an [L, 32] f32 activation at L = 2048 is 256 KiB, more
/// than the L1 and a share of the L2), so a few more operations per element
/// in each reader cost less than a loop: a map of values per row only (a
/// norm's gain, spread over the row) is always repeated.
bool isCheapToRepeat(linalg::GenericOp producer, int64_t readers) {
  std::optional<int64_t> work = perElementWork(producer);
  if (!work || *work > 4)
    return false;
  int64_t inputs = 0;
  for (OpOperand *input : producer.getDpsInputOperands())
    if (isFullSize(producer, input) &&
        !producer.getMatchingBlockArgument(input).use_empty())
      ++inputs;
  return readers * inputs <= inputs + 1 + readers;
}

/// The producer of `operand` if it can be computed inside its consumer:
/// both are element-wise maps this pass vectorizes, in the same block, the
/// consumer reads the producer's result element for element, and either
/// nothing else uses that result (else it would be computed twice, or the
/// fused map would have two results) or the producer is cheap to repeat and
/// every use of its result is such a read (each reader then computes it
/// from a copy of its own, and its loop goes when the last one has).
linalg::GenericOp fusableProducer(OpOperand &operand) {
  auto consumer = cast<linalg::GenericOp>(operand.getOwner());
  auto producer = operand.get().getDefiningOp<linalg::GenericOp>();
  if (!producer || producer->getBlock() != consumer->getBlock() ||
      producer->getNumResults() != 1 || !readsElementwise(operand) ||
      !isVectorizable(producer))
    return {};
  int64_t readers = 0;
  bool shared = false, repeatable = true;
  for (OpOperand &use : operand.get().getUses()) {
    if (use.getOwner() != consumer)
      shared = true;
    if (use.getOwner()->getBlock() != consumer->getBlock())
      repeatable = false;
    else if (readsElementwise(use))
      ++readers;
    else if (!lendsBuffer(use))
      repeatable = false;
  }
  if (shared && (!repeatable || !isCheapToRepeat(producer, readers)))
    return {};
  return linalg::areElementwiseOpsFusable(&operand) ? producer
                                                    : linalg::GenericOp();
}

/// An empty tensor of `value`'s type and sizes.
Value emptyLike(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  return tensor::EmptyOp::create(b, loc, tensor::getMixedSizes(b, loc, value),
                                 type.getElementType());
}

/// Computes chains of element-wise maps in one loop: a map whose result
/// only another map reads, element for element, is fused into it (its body
/// inlined into the reader's), fills read by a map become a scalar of its
/// body, and broadcasts read by a map a broadcast read of their input. A
/// backward pass is made of such chains (SiLU's derivative alone is six
/// maps and two fills), each a pass over memory of its own otherwise.
void fuseChains(Operation *root, RewriterBase &rewriter) {
  SmallVector<linalg::GenericOp> generics;
  root->walk([&](linalg::GenericOp g) { generics.push_back(g); });
  // Producers come before their consumers: when a map is visited, the maps
  // it reads have taken in their own chains already.
  for (linalg::GenericOp generic : generics) {
    if (!isMapOrRowSum(generic))
      continue;
    // Inputs that are fills: the fill's scalar in the body instead (the
    // input, now unread, is dropped below).
    for (OpOperand *input : generic.getDpsInputOperands())
      if (auto fill = input->get().getDefiningOp<linalg::FillOp>())
        rewriter.replaceAllUsesWith(generic.getMatchingBlockArgument(input),
                                    fill.getInputs()[0]);
    // Inputs that are broadcasts read element for element: the broadcast's
    // input, through a map without the broadcast dimensions (the
    // broadcast, a copy, goes when nothing else reads it).
    for (OpOperand *input : generic.getDpsInputOperands()) {
      auto broadcast = input->get().getDefiningOp<linalg::BroadcastOp>();
      if (!broadcast || !broadcast.hasPureTensorSemantics() ||
          !generic.getMatchingIndexingMap(input).isIdentity())
        continue;
      SmallVector<AffineMap> maps = generic.getIndexingMapsArray();
      maps[input->getOperandNumber()] =
          maps[input->getOperandNumber()].dropResults(
              broadcast.getDimensions());
      rewriter.modifyOpInPlace(generic, [&] {
        input->set(broadcast.getInput());
        generic.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
      });
    }
    while (true) {
      OpOperand *fused = nullptr;
      for (OpOperand *input : generic.getDpsInputOperands())
        if (fusableProducer(*input)) {
          fused = input;
          break;
        }
      if (!fused)
        break;
      auto producer = cast<linalg::GenericOp>(fused->get().getDefiningOp());
      // An output that only lends the producer's buffer (the body does not
      // read it) takes an empty tensor instead, sized like the producer's
      // own output (same shape, not its result): so that the producer goes
      // away, and so that a value others still read is not copied first.
      Value shared = fused->get();
      Value producerInit = producer.getDpsInitOperand(0)->get();
      auto lendEmpty = [&](OpOperand &use) {
        rewriter.setInsertionPoint(use.getOwner());
        Value empty =
            emptyLike(rewriter, use.getOwner()->getLoc(), producerInit);
        rewriter.modifyOpInPlace(use.getOwner(), [&] { use.set(empty); });
      };
      OpOperand *init = generic.getDpsInitOperand(0);
      if (init->get() == shared)
        lendEmpty(*init);
      // A producer that others read too (cheap to repeat): this reader's
      // own copy of it. Once only buffer lends are left, those take empty
      // tensors too, and the original goes.
      if (llvm::any_of(shared.getUsers(),
                       [&](Operation *user) { return user != generic; })) {
        linalg::GenericOp original = producer;
        rewriter.setInsertionPoint(original);
        producer = cast<linalg::GenericOp>(rewriter.clone(*original));
        rewriter.modifyOpInPlace(generic,
                                 [&] { fused->set(producer->getResult(0)); });
        if (llvm::all_of(shared.getUses(), lendsBuffer)) {
          for (OpOperand &use : llvm::make_early_inc_range(shared.getUses()))
            lendEmpty(use);
          rewriter.eraseOp(original);
        }
      }
      rewriter.setInsertionPoint(generic);
      FailureOr<linalg::ElementwiseOpFusionResult> result =
          linalg::fuseElementwiseOps(rewriter, fused);
      if (failed(result))
        break;
      for (auto [original, replacement] : result->replacements)
        rewriter.replaceUsesWithIf(original, replacement, [&](OpOperand &use) {
          return use.getOwner() != producer;
        });
      rewriter.eraseOp(generic);
      if (producer->use_empty())
        rewriter.eraseOp(producer);
      generic = cast<linalg::GenericOp>(result->fusedOp);
    }
  }
}

struct VectorizeElementwisePass
    : public glint::impl::GlintVectorizeElementwiseBase<
          VectorizeElementwisePass> {
  using GlintVectorizeElementwiseBase::GlintVectorizeElementwiseBase;

  void runOnOperation() override {
    int64_t width = vectorWidth;
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(), width)))
      return signalPassFailure();
    if (fuse) {
      IRRewriter rewriter(&getContext());
      fuseChains(getOperation(), rewriter);
      // Inputs the fused bodies no longer read (fills, a value read twice).
      RewritePatternSet patterns(&getContext());
      linalg::populateEraseUnusedOperandsAndResultsPatterns(patterns);
      if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
        return signalPassFailure();
    }
    SmallVector<std::pair<linalg::GenericOp, SmallVector<Access>>> work;
    getOperation()->walk([&](linalg::GenericOp generic) {
      SmallVector<Access> access;
      if (!isVectorizable(generic, access))
        return;
      // An innermost dimension known to be shorter than half a vector
      // would waste most lanes.
      auto type = cast<RankedTensorType>(
          generic.getDpsInitOperand(0)->get().getType());
      int64_t inner = type.getDimSize(type.getRank() - 1);
      if (!ShapedType::isDynamic(inner) && 2 * inner < width)
        return;
      work.push_back({generic, std::move(access)});
    });
    // Sums along the innermost dimension, rows of at least W / 2.
    SmallVector<std::tuple<linalg::GenericOp, Value, SmallVector<Access>>> sums;
    getOperation()->walk([&](linalg::GenericOp generic) {
      SmallVector<Access> access;
      Value term = rowSum(generic, access);
      int64_t row = generic.getStaticLoopRanges().back();
      if (!term || (!ShapedType::isDynamic(row) && 2 * row < width))
        return;
      sums.push_back({generic, term, std::move(access)});
    });
    IRRewriter rewriter(&getContext());
    for (auto &[generic, access] : work)
      vectorize(generic, access, width, rewriter);
    for (auto &[generic, term, access] : sums)
      vectorizeRowSum(generic, term, access, width, rewriter);
  }
};

} // namespace
