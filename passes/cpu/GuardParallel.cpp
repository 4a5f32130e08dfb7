//===- GuardParallel.cpp - glint-guard-parallel ---------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Starting and joining a team of OpenMP threads costs about a microsecond
// (0.9-1.2 us for two threads on the 2-vCPU Zen 4 machine, libomp 22), and
// a region run on one thread through the runtime (`if(false)`, or one
// thread) still costs half of that (0.56 us: the serialized team and the
// static schedule's set-up), several times a 4096-element vector loop
// (0.18 us). A parallel loop over a few hundred vector operations (a tiny
// model's layers, or any per-token loop of a generation step) finishes
// sooner as a plain loop on the thread that reached it. This pass runs
// before `convert-scf-to-openmp` and puts each `scf.parallel` behind a
// test:
//
//   scf.if ((work >= min-work || bytes >= min-bytes
//            || argument bytes >= min-argument-bytes)
//           && iterations >= 2 && omp_get_max_threads() > 1)
//     the scf.parallel (later an omp.parallel)
//   else
//     the same loop nest as scf.for loops, no OpenMP call at all
//
//   work = iterations of the loop nest x the estimated operations of one
//   iteration
//   bytes = iterations of the loop nest x the bytes one iteration's loads
//   read, at most the sizes of the memrefs they read (each traced through
//   its views to one defined in front of the loop, counted once; the
//   region's own scratch not at all)
//   argument bytes = the part of those bytes that the function's arguments
//   hold, tested only in a function whose memref arguments take min-bytes
//   or more (their static extents; dynamic ones count 1)
//
// One iteration's operations are counted statically: each operation 1, a
// load 4, each inner `scf.for` (or `scf.parallel`) its trip count times its
// body,
// an `scf.if` both branches. The trip counts are values computed in front
// of the parallel op: a bound defined there is used as it is; one that
// depends on an outer induction variable (the end of a tile, `min(i + 32,
// n) - i`) is replaced by an upper bound read off its arithmetic (`min`:
// the smaller known side; `a - b`: a; sums and products: of the bounds),
// and an unknown lower bound by 0. The estimate can only over-count, so a
// region it guards is never one whose work is large; a region whose work
// it cannot bound (an `scf.while`, a call, a bound it cannot follow) or
// that reduces (results) is left as it was and always runs on every
// thread.
//
// min-work (1,600,000) was measured on the bundled models, one and two
// threads interleaved, on two 2-vCPU machines. There a small region costs
// more than its fork and join: the second core must first fetch the
// inputs the first one just wrote, and send back its half of the result.
// On the Zen 4 machine (`glint-run --repeat`) two threads lost to one on
// every tiny model at 64 and 512 tokens at 2,000 (rwkv-keyword at 512:
// 1.0-1.3 against 0.66 ms at 40,000), and not beyond the noise at 100,000.
// On the Emerald Rapids guest (`glint-bench --cases=model
// --repetitions=100`, four rounds, the fastest call of each) 100,000 still
// left two threads 1.12-1.25x slower at 64 and 512 tokens (mamba-keyword,
// rwkv-keyword: the selective and WKV scans of one layer split across the
// cores); at 1,600,000 the two-thread times are those of one thread
// (0.96-1.06x) and at 2048 tokens two threads stay ahead (mamba-keyword
// 1.30-1.35 against 1.38-1.46 ms, griffin-keyword 4.54 against 5.14 ms;
// 100,000 gained more there: 1.12 against 1.42 ms). A Mamba-130m-shaped
// generation step on two threads is unchanged (19.7-22.4 ms per token at
// 100,000, 400,000 and 1,600,000: its large one-row products, counted with
// their loads, stay parallel), and so is its prompt at 512 and 2048
// tokens.
//
// min-bytes (2 MiB, a core's L2 on the Emerald Rapids guest; Zen 4's is 1
// MiB) lets a loop that reads more than that run on every thread however
// few its operations: its data cannot all sit in the cache of the core
// that reached it, so a second core adds bandwidth rather than a transfer
// between the cores. Those are a Mamba-130m-shaped prompt's element-wise
// maps and norms over [512, 1536] (softplus, gates: 0.5-1.5 million
// operations, 3-6 MB read); with min-work alone they ran on one thread
// while the other waited, 4.3% of the perf samples of a two-thread prompt
// of 512 tokens (`glint-bench --cases=mamba-130m --L=512 --threads=2`),
// 0.9% with min-bytes. The tiny models were measured again with it at 64,
// 512 and 2048 tokens: none slower on two threads than on one beyond the
// machine's noise there.
//
// Bytes loaded again count once. Counted load by load, a product's weight
// panel re-read by every row tile counted each time, and on a 2-core Intel
// Xeon guest (2 MiB L2 per core) the Mamba-1 tiny models at 512 tokens ran
// 1.09-1.20x slower on two threads than on one (`glint-bench --cases=model
// --L=64,512,2048 --repetitions=30`, two rounds, every bundled model): a
// region of a few hundred KiB of distinct data, counted past 2 MiB, went to
// both cores. Bounded by the sizes of the memrefs read, the same rounds
// read 0.83-1.15 (four of six at or under 1.01), 2048 tokens kept their
// gain (0.88-0.95), and a Mamba-130m-shaped prompt on two threads, whose
// maps over [L, 1536] read megabytes once, stayed where it was (829 / 830
// and 862 / 853 tokens/s at 512, 898 / 894 and 932 / 910 at 2048, before /
// after, alternated).
//
// Arguments read from memory (min-argument-bytes, 64 KiB). A generation
// step of a Mamba-130m-shaped model reads its weights once per token, from
// memory: a layer's selective-scan step (its 98 KB state and D), its
// dt_proj product (147 KB of bf16 panels) and the exp of its A_log stayed
// on one core of two (under 1.6 million operations and 2 MiB), and `perf`
// of the two-thread bf16 step showed the step's own code at 4.9% of the
// samples while the other thread waited in libomp. Where an entry point's
// memref arguments take min-bytes or more (a tiny model's never do: their
// compiled code is byte-identical with and without this test), a loop
// that reads 64 KiB of its function's arguments goes to every thread; the
// step's own code fell to 2.0% of the samples. `glint-bench
// --cases=mamba-130m --decode --threads=2`, before / after / after /
// before, 2-core Intel Xeon guest: bf16 10.81, 10.61, 10.68, 10.85 ms per
// token; f32 18.62, 18.95, 19.20, 19.06 (no gain beyond the noise); the
// prompt at 512 and 2048 tokens on two threads unchanged (930 / 947 / 934
// / 920 and 984 / 1020 / 1012 / 1013 tokens/s).
//
//===----------------------------------------------------------------------===//

#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "glint-guard-parallel"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTGUARDPARALLEL
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {

/// What a load counts for: it may wait for memory, and a loop that streams
/// from memory (a generation step's one-row products) gains from a second
/// core at fewer operations than one that computes in the caches.
constexpr int64_t kLoadWork = 4;

/// Whether `op` reads memory.
bool isLoad(Operation &op) {
  return isa<vector::LoadOp, vector::TransferReadOp, vector::GatherOp,
             vector::MaskedLoadOp, memref::LoadOp>(op);
}

/// The operations `op` counts for in a loop's work.
int64_t operationWork(Operation &op) { return isLoad(op) ? kLoadWork : 1; }

/// The memref a load reads.
Value loadedMemref(Operation &op) {
  if (auto load = dyn_cast<vector::LoadOp>(op))
    return load.getBase();
  if (auto read = dyn_cast<vector::TransferReadOp>(op))
    return isa<MemRefType>(read.getBase().getType()) ? read.getBase()
                                                     : Value();
  if (auto gather = dyn_cast<vector::GatherOp>(op))
    return gather.getBase();
  if (auto masked = dyn_cast<vector::MaskedLoadOp>(op))
    return masked.getBase();
  if (auto load = dyn_cast<memref::LoadOp>(op))
    return load.getMemRef();
  return {};
}

/// The bytes of one scalar of `type` (an index counts 8).
int64_t scalarBytes(Type type) {
  return type.isIntOrFloat() ? llvm::divideCeil(type.getIntOrFloatBitWidth(), 8)
                             : 8;
}

/// The bytes `op` reads.
int64_t bytesRead(Operation &op) {
  if (!isLoad(op))
    return 0;
  Type type = op.getResult(0).getType();
  if (auto vector = dyn_cast<VectorType>(type))
    return vector.getNumElements() * scalarBytes(vector.getElementType());
  return scalarBytes(type);
}

/// The callee that says how many threads a parallel region would get.
constexpr llvm::StringLiteral kMaxThreads = "omp_get_max_threads";

/// Builds, in front of one `scf.parallel`, the index values that bound its
/// work. Every method returns a null Value when it cannot bound.
class WorkEstimate {
public:
  WorkEstimate(scf::ParallelOp parallel)
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

  /// What one execution of a region runs: its operations and, when asked
  /// for, the bytes its loads read.
  struct Cost {
    Value work;
    Value bytes; // Null unless asked for.
  };

  /// The cost of one execution of `region`: inner loops count their trip
  /// count times their body, an `scf.if` both branches. Null when it cannot
  /// be bounded.
  std::optional<Cost> regionCost(Region &region, bool withBytes) {
    int64_t fixedWork = 0, fixedBytes = 0;
    Value work, bytes;
    auto add = [&](Value &sum, Value v) {
      sum = sum ? arith::AddIOp::create(b, loc, sum, v).getResult() : v;
    };
    // A nested region run `trips` times (1 when null).
    auto addNested = [&](Value trips, const Cost &body) {
      auto times = [&](Value v) {
        return trips ? arith::MulIOp::create(b, loc, trips, v).getResult() : v;
      };
      add(work, times(body.work));
      if (withBytes)
        add(bytes, times(body.bytes));
    };
    for (Block &block : region) {
      for (Operation &op : block) {
        fixedWork += operationWork(op);
        fixedBytes += bytesRead(op);
        if (auto loop = dyn_cast<scf::ForOp>(op)) {
          Value trips = tripCount(loop.getLowerBound(), loop.getUpperBound(),
                                  loop.getStep());
          std::optional<Cost> body = regionCost(loop.getRegion(), withBytes);
          if (!trips || !body)
            return std::nullopt;
          addNested(trips, *body);
          continue;
        }
        if (auto inner = dyn_cast<scf::ParallelOp>(op)) {
          Value trips = iterations(inner);
          std::optional<Cost> body = regionCost(inner.getRegion(), withBytes);
          if (!trips || !body)
            return std::nullopt;
          addNested(trips, *body);
          continue;
        }
        // An inner region's guard asks for the thread count: one operation.
        if (auto call = dyn_cast<func::CallOp>(op);
            call && call.getCallee() == kMaxThreads)
          continue;
        if (isa<scf::WhileOp, func::CallOp, func::CallIndirectOp>(op))
          return std::nullopt;
        // scf.if (both branches), memref.alloca_scope and the like.
        for (Region &nested : op.getRegions()) {
          std::optional<Cost> cost = regionCost(nested, withBytes);
          if (!cost)
            return std::nullopt;
          addNested(Value(), *cost);
        }
      }
    }
    auto total = [&](Value variable, int64_t fixed) -> Value {
      Value constant = constantIndex(fixed);
      return variable
                 ? arith::AddIOp::create(b, loc, variable, constant).getResult()
                 : constant;
    };
    return Cost{total(work, fixedWork),
                withBytes ? total(bytes, fixedBytes) : Value()};
  }

  /// An upper bound of the iterations of the loop nest of `loop`.
  Value iterations(scf::ParallelOp loop) {
    Value count = constantIndex(1);
    for (auto [lower, upper, step] : llvm::zip(
             loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      Value trips = tripCount(lower, upper, step);
      if (!trips)
        return {};
      count = arith::MulIOp::create(b, loc, count, trips);
    }
    return count;
  }

  /// Upper bounds of the distinct bytes a loop's loads can read.
  struct Footprint {
    /// All of them; null when a load's memref cannot be sized.
    Value all;
    /// The part the function's arguments hold (weights, inputs, states:
    /// memory the call did not write first); null unless asked for, or
    /// when one of those arguments cannot be sized.
    Value arguments;
  };

  /// The sizes of the memrefs the loop's loads read, each traced through
  /// its views to a memref defined in front of the loop and counted once,
  /// in one walk. Scratch the region allocates itself is left out (it
  /// lives in the cache of the core that uses it). None when a load's
  /// memref cannot be traced.
  std::optional<Footprint> footprint(bool withArguments) {
    llvm::SetVector<Value> sources;
    bool traced = true;
    parallel.getRegion().walk([&](Operation *op) {
      if (!isLoad(*op))
        return WalkResult::advance();
      Value memref = loadedMemref(*op);
      while (memref && !definedOutside(memref)) {
        Operation *def = memref.getDefiningOp();
        if (def && isa<memref::AllocaOp, memref::AllocOp>(def)) {
          memref = Value();
          break;
        }
        auto view = dyn_cast_or_null<ViewLikeOpInterface>(def);
        if (!view) {
          traced = false;
          return WalkResult::interrupt();
        }
        memref = view.getViewSource();
      }
      if (memref)
        sources.insert(memref);
      return WalkResult::advance();
    });
    if (!traced)
      return std::nullopt;
    Footprint total{constantIndex(0),
                    withArguments ? constantIndex(0) : Value()};
    bool allSized = true, argumentsSized = true;
    for (Value source : sources) {
      bool argument = withArguments && isFunctionArgument(source);
      auto type = dyn_cast<MemRefType>(source.getType());
      if (!type || !type.getElementType().isIntOrIndexOrFloat()) {
        allSized = false;
        argumentsSized &= !argument;
        continue;
      }
      Value size = constantIndex(scalarBytes(type.getElementType()));
      for (int64_t d = 0; d < type.getRank(); ++d) {
        Value extent = type.isDynamicDim(d)
                           ? memref::DimOp::create(b, loc, source, d).getResult()
                           : constantIndex(type.getDimSize(d));
        size = arith::MulIOp::create(b, loc, size, extent);
      }
      total.all = arith::AddIOp::create(b, loc, total.all, size);
      if (argument)
        total.arguments =
            arith::AddIOp::create(b, loc, total.arguments, size);
    }
    if (!allSized)
      total.all = Value();
    if (!argumentsSized)
      total.arguments = Value();
    return total;
  }

  /// Whether the parallel loop is worth its threads, on this machine's
  /// thread count (`maxThreads`, an i32) when the region is reached: an
  /// i1, or null when its work cannot be bounded. `minBytes` 0 leaves the
  /// bytes read out of it.
  ///
  /// With `minArgumentBytes` > 0 (the function's arguments are too large to
  /// stay in the caches between calls), a loop that reads at least that
  /// many bytes of them is worth the threads too: they come from memory.
  Value worthThreads(int64_t minWork, int64_t minBytes,
                     int64_t minArgumentBytes, Value maxThreads) {
    Value count = iterations(parallel);
    std::optional<Cost> body =
        count ? regionCost(parallel.getRegion(), /*withBytes=*/minBytes > 0)
              : std::nullopt;
    if (!body)
      return {};
    Value work = arith::MulIOp::create(b, loc, count, body->work);
    Value enough = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                         work, constantIndex(minWork));
    if (body->bytes) {
      Value bytes = arith::MulIOp::create(b, loc, count, body->bytes);
      // A small operand read again and again (a weight panel re-read by
      // every row tile) stays in the cache: what counts is the distinct
      // bytes, where they can be bounded.
      std::optional<Footprint> distinct = footprint(minArgumentBytes > 0);
      if (distinct && distinct->all)
        bytes = arith::MinSIOp::create(b, loc, bytes, distinct->all);
      Value streams = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                            bytes, constantIndex(minBytes));
      enough = arith::OrIOp::create(b, loc, enough, streams);
      if (distinct && distinct->arguments) {
        Value cold = arith::MinSIOp::create(b, loc, bytes, distinct->arguments);
        Value fromMemory =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, cold,
                                  constantIndex(minArgumentBytes));
        enough = arith::OrIOp::create(b, loc, enough, fromMemory);
      }
    }
    Value several = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                          count, constantIndex(2));
    Value threads = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::sgt, maxThreads,
        arith::ConstantIntOp::create(b, loc, b.getI32Type(), 1));
    return arith::AndIOp::create(
        b, loc, arith::AndIOp::create(b, loc, enough, several), threads);
  }

private:
  static bool isFunctionArgument(Value v) {
    auto argument = dyn_cast<BlockArgument>(v);
    return argument && argument.getOwner()->isEntryBlock() &&
           isa<FunctionOpInterface>(argument.getOwner()->getParentOp());
  }
  bool definedOutside(Value v) {
    Region *region = v.getParentRegion();
    return !parallel.getRegion().isAncestor(region);
  }
  Value constantIndex(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }

  scf::ParallelOp parallel;
  OpBuilder b;
  Location loc;
};

/// The loop nest of `parallel` as scf.for loops at the builder's insertion
/// point, its body in a `memref.alloca_scope` if it allocates on the stack
/// (once per iteration, as the OpenMP lowering scopes it).
void buildSerialLoops(OpBuilder &b, scf::ParallelOp parallel) {
  Location loc = parallel.getLoc();
  IRMapping mapping;
  for (auto [iv, lower, upper, step] :
       llvm::zip(parallel.getInductionVars(), parallel.getLowerBound(),
                 parallel.getUpperBound(), parallel.getStep())) {
    auto loop = scf::ForOp::create(b, loc, lower, upper, step);
    mapping.map(iv, loop.getInductionVar());
    b.setInsertionPoint(loop.getBody()->getTerminator());
  }
  bool allocates = false;
  parallel.getRegion().walk([&](memref::AllocaOp) { allocates = true; });
  if (allocates) {
    auto scope = memref::AllocaScopeOp::create(b, loc, TypeRange{});
    Block *body = b.createBlock(&scope.getBodyRegion());
    b.setInsertionPointToStart(body);
    memref::AllocaScopeReturnOp::create(b, loc, ValueRange{});
    b.setInsertionPointToStart(body);
  }
  for (Operation &op : parallel.getBody()->without_terminator())
    b.clone(op, mapping);
}

/// The bytes of the memref arguments of `function`, each dynamic extent
/// counted as 1 (a batch of one, a token): a lower bound.
int64_t argumentBytes(FunctionOpInterface function) {
  int64_t total = 0;
  for (Type type : function.getArgumentTypes()) {
    auto memref = dyn_cast<MemRefType>(type);
    if (!memref || !memref.getElementType().isIntOrIndexOrFloat())
      continue;
    int64_t bytes = scalarBytes(memref.getElementType());
    for (int64_t extent : memref.getShape())
      if (!ShapedType::isDynamic(extent))
        bytes *= extent;
    total += bytes;
  }
  return total;
}

struct GuardParallelPass
    : public glint::impl::GlintGuardParallelBase<GuardParallelPass> {
  using GlintGuardParallelBase::GlintGuardParallelBase;

  /// Whether the arguments of an entry point of `module` (a public
  /// function) outgrow a core's cache (min-bytes), so that each call reads
  /// them from memory. The functions it calls (the outlined products) get
  /// its weights as their own arguments.
  bool argumentsStream(ModuleOp module) {
    if (minArgumentBytes <= 0 || minBytes <= 0)
      return false;
    for (auto function : module.getOps<FunctionOpInterface>())
      if (function.isPublic() && !function.isExternal() &&
          argumentBytes(function) >= minBytes)
        return true;
    return false;
  }

  void runOnOperation() override {
    SmallVector<scf::ParallelOp> loops;
    getOperation()->walk([&](scf::ParallelOp op) {
      if (op.getNumResults() == 0)
        loops.push_back(op);
    });
    if (loops.empty())
      return;
    // func.func private @omp_get_max_threads() -> i32, once per module.
    auto module = dyn_cast<ModuleOp>(getOperation());
    if (!module)
      module = getOperation()->getParentOfType<ModuleOp>();
    if (!module) {
      getOperation()->emitError("glint-guard-parallel needs a module");
      return signalPassFailure();
    }
    MLIRContext *context = &getContext();
    auto type = FunctionType::get(context, {}, {IntegerType::get(context, 32)});
    if (auto existing = module.lookupSymbol<func::FuncOp>(kMaxThreads)) {
      if (existing.getFunctionType() != type) {
        existing.emitError() << kMaxThreads << " has another type";
        return signalPassFailure();
      }
    } else {
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      func::FuncOp::create(b, module.getLoc(), kMaxThreads, type).setPrivate();
    }
    bool streams = argumentsStream(module);
    // Inner loops first (the walk's order): an outer loop's estimate counts
    // their guards.
    for (scf::ParallelOp parallel : loops) {
      // The estimate's arithmetic goes in front of the op; if it cannot
      // bound the work, it is erased again and the region is left alone.
      Block *block = parallel->getBlock();
      auto before = parallel->getIterator();
      bool atStart = before == block->begin();
      Operation *previous = atStart ? nullptr : &*std::prev(before);
      OpBuilder b(parallel);
      Location loc = parallel.getLoc();
      Value threads =
          func::CallOp::create(b, loc, kMaxThreads,
                               TypeRange{IntegerType::get(context, 32)})
              .getResult(0);
      Value worth = WorkEstimate(parallel).worthThreads(
          minWork, minBytes, streams ? minArgumentBytes : 0, threads);
      if (worth) {
        auto guard = scf::IfOp::create(b, loc, worth, /*withElseRegion=*/true);
        parallel->moveBefore(guard.thenBlock()->getTerminator());
        b.setInsertionPoint(guard.elseBlock()->getTerminator());
        buildSerialLoops(b, parallel);
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
