//===- WriteSlicesInPlace.cpp - glint-write-slices-in-place ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// A tensor assembled from parts (tensor.insert_slice of each into a
// tensor.empty, as glint-differentiate joins the cotangents of Mamba's x/z
// and dt/B/C splits) bufferizes into one allocation for the whole and one
// for each part, and a copy of each part into the whole. When a part is
// computed into a tensor.empty of its own (the init of the loop, forall or
// linalg op that produces it), that empty can as well be the part's slice
// of the insert's destination: both are tensors whose contents are
// undefined until the producer writes them, so the rewrite changes no
// value, and one-shot bufferization then writes the part in place and the
// copy folds away.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dominance.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define DEBUG_TYPE "glint-write-slices-in-place"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTWRITESLICESINPLACE
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// The init operand that `result` was computed into: the tied operand of a
/// destination-style op, the shared output of an scf.forall, the initial
/// value of an scf.for's iteration argument.
OpOperand *tiedInit(OpResult result) {
  Operation *op = result.getOwner();
  if (auto forall = dyn_cast<scf::ForallOp>(op))
    return forall.getTiedOpOperand(result);
  if (auto loop = dyn_cast<scf::ForOp>(op))
    return loop.getTiedLoopInit(result);
  if (auto dps = dyn_cast<DestinationStyleOpInterface>(op))
    if (dps.hasPureTensorSemantics())
      return dps.getTiedOpOperand(result);
  return nullptr;
}

/// `value` itself, or the source of a collapse_shape(expand_shape(source))
/// pair that gives back the source (the vector passes leave such pairs
/// around unit dimensions, [?, ?, 8] to [?, ?, 1, 8] and back, which the
/// reshapes' folder keeps when two dimensions are dynamic): each dimension
/// of the result groups the same dimensions of the middle shape, unit
/// dimensions aside, as the expansion split the source's from.
Value throughIdentityReshapes(Value value) {
  auto collapse = value.getDefiningOp<tensor::CollapseShapeOp>();
  if (!collapse)
    return value;
  auto expand = collapse.getSrc().getDefiningOp<tensor::ExpandShapeOp>();
  if (!expand || expand.getSrc().getType() != collapse.getType())
    return value;
  ArrayRef<int64_t> middle = expand.getResultType().getShape();
  auto withoutUnits = [&](ReassociationIndicesRef group) {
    SmallVector<int64_t> dims;
    for (int64_t d : group)
      if (middle[d] != 1)
        dims.push_back(d);
    return dims;
  };
  for (auto [grouped, split] :
       llvm::zip_equal(collapse.getReassociationIndices(),
                       expand.getReassociationIndices()))
    if (withoutUnits(grouped) != withoutUnits(split))
      return value;
  return expand.getSrc();
}

/// Follows `value` back through the ops that computed it into their inits
/// to the use of a tensor.empty that it was first written into: the
/// operand to redirect. A linalg.fill on the way moves right before the op
/// that reads it, where the slice it will fill may already exist; one that
/// others read too is cloned there instead (each reader then accumulates
/// into zeros of its own, which bufferization would otherwise copy). Null
/// when the chain leaves `block` or does not start at a tensor.empty.
OpOperand *emptyInitOf(Value value, Block *block) {
  for (;;) {
    auto result = dyn_cast<OpResult>(value);
    if (!result || result.getOwner()->getBlock() != block)
      return nullptr;
    OpOperand *init = tiedInit(result);
    if (!init)
      return nullptr;
    Value into = init->get();
    if (into.getDefiningOp<tensor::EmptyOp>())
      return init;
    if (auto fill = into.getDefiningOp<linalg::FillOp>();
        fill && fill->getBlock() == block) {
      if (into.hasOneUse()) {
        fill->moveBefore(init->getOwner());
      } else {
        OpBuilder b(init->getOwner());
        into = b.clone(*fill)->getResult(0);
        init->set(into);
      }
    }
    value = into;
  }
}

/// Moves the pure ops that define `value` (and their operands) in front of
/// `point` in its block when they come after it. False when `value` cannot
/// be made to dominate `point`.
bool hoistBefore(Value value, Operation *point, DominanceInfo &dominance) {
  if (dominance.properlyDominates(value, point))
    return true;
  Operation *def = value.getDefiningOp();
  if (!def || def->getBlock() != point->getBlock() || def->getNumRegions() ||
      !isMemoryEffectFree(def))
    return false;
  for (Value operand : def->getOperands())
    if (!hoistBefore(operand, point, dominance))
      return false;
  def->moveBefore(point);
  return true;
}

/// The tensor.empty that a chain of insert_slice ops ending in `insert`
/// started from.
tensor::EmptyOp chainRoot(tensor::InsertSliceOp insert) {
  Value dest = insert.getDest();
  while (auto inner = dest.getDefiningOp<tensor::InsertSliceOp>())
    dest = inner.getDest();
  return dest.getDefiningOp<tensor::EmptyOp>();
}

struct WriteSlicesInPlacePass
    : public glint::impl::GlintWriteSlicesInPlaceBase<WriteSlicesInPlacePass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    SmallVector<tensor::InsertSliceOp> inserts;
    func.walk([&](tensor::InsertSliceOp op) { inserts.push_back(op); });
    DominanceInfo dominance(func);
    for (tensor::InsertSliceOp insert : inserts) {
      tensor::EmptyOp whole = chainRoot(insert);
      Block *block = insert->getBlock();
      if (!whole || whole->getBlock() != block ||
          insert.getSourceType().getRank() != insert.getType().getRank() ||
          !llvm::all_of(insert.getMixedStrides(), [](OpFoldResult stride) {
            return isConstantIntValue(stride, 1);
          }))
        continue;
      // The insert reads the part itself rather than a reshaped view of
      // it, which bufferization would copy even when both are the same
      // memory.
      if (Value part = throughIdentityReshapes(insert.getSource());
          part != insert.getSource()) {
        auto collapse =
            insert.getSource().getDefiningOp<tensor::CollapseShapeOp>();
        insert.getSourceMutable().assign(part);
        Operation *expand = collapse.getSrc().getDefiningOp();
        if (collapse->use_empty())
          collapse->erase();
        if (expand->use_empty())
          expand->erase();
      }
      OpOperand *init = emptyInitOf(insert.getSource(), block);
      if (!init || init->get().getType() != insert.getSourceType())
        continue;
      Operation *producer = init->getOwner();
      // The part is computed into its slice of the insert's destination
      // (the whole with the parts before it inserted), which with the
      // slice's offsets and sizes must be there before the part's
      // producer: the whole's tensor.empty, the inserts of the parts
      // before and the tensor.dim ops that size them move up when they
      // came after. (A slice of the empty itself would do for the values,
      // but bufferization then sees the part written into the whole before
      // the earlier inserts read it, and copies.)
      SmallVector<Value> needed{insert.getDest()};
      llvm::append_range(needed, insert.getOffsets());
      llvm::append_range(needed, insert.getSizes());
      if (!llvm::all_of(needed, [&](Value value) {
            return hoistBefore(value, producer, dominance);
          }))
        continue;
      OpBuilder b(producer);
      Value slice = tensor::ExtractSliceOp::create(
          b, insert.getLoc(), insert.getSourceType(), insert.getDest(),
          insert.getMixedOffsets(), insert.getMixedSizes(),
          insert.getMixedStrides());
      init->set(slice);
    }
  }
};

} // namespace
