//===- GuardParallel.cpp - glint-guard-parallel ---------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Starting and joining a team of OpenMP threads costs microseconds; a
// parallel loop over a few hundred vector operations (a tiny model's
// layers, or any per-token loop of a generation step) finishes sooner on
// the thread that reached it. This pass gives each `omp.parallel` an `if`
// clause that runs it on one thread unless its work is large enough:
//
//   work = iterations of the loop nest x the estimated operations of one
//   iteration  >=  min-work,   and   iterations >= 2
//
// One iteration's operations are counted statically: each operation 1,
// each inner `scf.for` its trip count times its body, an `scf.if` both
// branches. The trip counts are values computed in front of the parallel
// op: a bound defined there is used as it is; one that depends on an outer
// induction variable (the end of a tile, `min(i + 32, n) - i`) is replaced
// by an upper bound read off its arithmetic (`min`: the smaller known
// side; `a - b`: a; sums and products: of the bounds), and an unknown lower
// bound by 0. The estimate can only over-count, so a region it guards is
// never one whose work is large; a region whose work it cannot bound (an
// `scf.while`, a call, a bound it cannot follow) keeps running on every
// thread, as before.
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"

#define DEBUG_TYPE "glint-guard-parallel"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTGUARDPARALLEL
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// Builds, in front of one `omp.parallel`, the index values that bound its
/// work. Every method returns a null Value when it cannot bound.
class WorkEstimate {
public:
  WorkEstimate(omp::ParallelOp parallel)
      : parallel(parallel), b(parallel), loc(parallel.getLoc()) {}

  /// An upper bound of the index value `v` at every point of the region.
  Value upperBound(Value v, int depth = 0) {
    if (!v || depth > 16)
      return {};
    if (definedOutside(v))
      return v;
    Operation *def = v.getDefiningOp();
    if (!def)
      return {};
    APInt constant;
    if (matchPattern(v, m_ConstantInt(&constant)))
      return constantIndex(constant.getSExtValue());
    auto both = [&](auto combine) -> Value {
      Value x = upperBound(def->getOperand(0), depth + 1);
      Value y = upperBound(def->getOperand(1), depth + 1);
      return x && y ? combine(x, y) : Value();
    };
    if (isa<arith::MinSIOp, arith::MinUIOp>(def)) {
      Value x = upperBound(def->getOperand(0), depth + 1);
      Value y = upperBound(def->getOperand(1), depth + 1);
      if (x && y)
        return arith::MinSIOp::create(b, loc, x, y);
      return x ? x : y;
    }
    if (isa<arith::MaxSIOp, arith::MaxUIOp>(def))
      return both([&](Value x, Value y) {
        return arith::MaxSIOp::create(b, loc, x, y);
      });
    if (isa<arith::AddIOp>(def))
      return both([&](Value x, Value y) {
        return arith::AddIOp::create(b, loc, x, y);
      });
    if (isa<arith::MulIOp>(def))
      return both([&](Value x, Value y) {
        return arith::MulIOp::create(b, loc, x, y);
      });
    // a - b, a / b, a ceildiv b: at most a (b counts or sizes, >= 0 or 1).
    if (isa<arith::SubIOp, arith::DivSIOp, arith::DivUIOp, arith::CeilDivSIOp,
            arith::CeilDivUIOp, arith::FloorDivSIOp>(def))
      return upperBound(def->getOperand(0), depth + 1);
    if (isa<arith::IndexCastOp, arith::IndexCastUIOp>(def) &&
        def->getResult(0).getType().isIndex()) {
      Value x = upperBound(def->getOperand(0), depth + 1);
      return x ? arith::IndexCastOp::create(b, loc, b.getIndexType(), x)
                     .getResult()
               : Value();
    }
    return {};
  }

  /// An upper bound of the trip count of a loop from `lower` to `upper` by
  /// `step`.
  Value tripCount(Value lower, Value upper, Value step) {
    Value hi = upperBound(upper);
    if (!hi)
      return {};
    Value lo = definedOutside(lower) ? lower : Value();
    APInt constant;
    if (!lo && matchPattern(lower, m_ConstantInt(&constant)))
      lo = constantIndex(constant.getSExtValue());
    Value span = lo ? arith::SubIOp::create(b, loc, hi, lo).getResult() : hi;
    span = arith::MaxSIOp::create(b, loc, span, constantIndex(0));
    // An unknown step counts as 1 (more work, never less).
    Value by = definedOutside(step) ? step : Value();
    if (!by && matchPattern(step, m_ConstantInt(&constant)))
      by = constantIndex(std::max<int64_t>(constant.getSExtValue(), 1));
    return by ? arith::CeilDivSIOp::create(b, loc, span, by).getResult() : span;
  }

  /// The operations one execution of `region` runs.
  Value regionCost(Region &region) {
    int64_t fixed = 0;
    Value variable;
    auto add = [&](Value v) {
      variable =
          variable ? arith::AddIOp::create(b, loc, variable, v).getResult() : v;
    };
    for (Block &block : region) {
      for (Operation &op : block) {
        ++fixed;
        if (auto loop = dyn_cast<scf::ForOp>(op)) {
          Value trips = tripCount(loop.getLowerBound(), loop.getUpperBound(),
                                  loop.getStep());
          Value body = regionCost(loop.getRegion());
          if (!trips || !body)
            return {};
          add(arith::MulIOp::create(b, loc, trips, body));
          continue;
        }
        if (isa<scf::WhileOp, func::CallOp, func::CallIndirectOp,
                omp::ParallelOp>(op))
          return {};
        // scf.if (both branches), memref.alloca_scope and the like.
        for (Region &nested : op.getRegions()) {
          Value cost = regionCost(nested);
          if (!cost)
            return {};
          add(cost);
        }
      }
    }
    Value total = constantIndex(fixed);
    return variable ? arith::AddIOp::create(b, loc, variable, total).getResult()
                    : total;
  }

  /// Whether the parallel region is worth its threads: an i1, or null when
  /// its work cannot be bounded.
  Value worthThreads(int64_t minWork) {
    omp::LoopNestOp nest;
    parallel.getRegion().walk([&](omp::LoopNestOp n) {
      if (!nest)
        nest = n;
    });
    if (!nest || nest->getParentOfType<omp::ParallelOp>() != parallel)
      return {};
    Value iterations = constantIndex(1);
    for (auto [lower, upper, step] :
         llvm::zip(nest.getLoopLowerBounds(), nest.getLoopUpperBounds(),
                   nest.getLoopSteps())) {
      Value trips = tripCount(lower, upper, step);
      if (!trips)
        return {};
      iterations = arith::MulIOp::create(b, loc, iterations, trips);
    }
    // What runs once per thread outside the loop nest is small: only the
    // nest's body is counted.
    Value body = regionCost(nest.getRegion());
    if (!body)
      return {};
    Value work = arith::MulIOp::create(b, loc, iterations, body);
    Value enough = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                         work, constantIndex(minWork));
    Value several = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                          iterations, constantIndex(2));
    return arith::AndIOp::create(b, loc, enough, several);
  }

private:
  bool definedOutside(Value v) {
    Region *region = v.getParentRegion();
    return !parallel.getRegion().isAncestor(region);
  }
  Value constantIndex(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }

  omp::ParallelOp parallel;
  OpBuilder b;
  Location loc;
};

struct GuardParallelPass
    : public glint::impl::GlintGuardParallelBase<GuardParallelPass> {
  using GlintGuardParallelBase::GlintGuardParallelBase;

  void runOnOperation() override {
    SmallVector<omp::ParallelOp> regions;
    getOperation()->walk([&](omp::ParallelOp op) {
      if (!op.getIfExpr())
        regions.push_back(op);
    });
    for (omp::ParallelOp parallel : regions) {
      // The estimate's arithmetic goes in front of the op; if it cannot
      // bound the work, it is erased again and the region is left alone.
      Block *block = parallel->getBlock();
      auto before = parallel->getIterator();
      bool atStart = before == block->begin();
      Operation *previous = atStart ? nullptr : &*std::prev(before);
      Value worth = WorkEstimate(parallel).worthThreads(minWork);
      if (worth) {
        parallel.getIfExprMutable().assign(worth);
        continue;
      }
      auto first =
          atStart ? block->begin() : std::next(previous->getIterator());
      SmallVector<Operation *> created;
      for (auto it = first; it != parallel->getIterator(); ++it)
        created.push_back(&*it);
      for (Operation *op : llvm::reverse(created))
        if (op->use_empty())
          op->erase();
    }
  }
};

} // namespace
