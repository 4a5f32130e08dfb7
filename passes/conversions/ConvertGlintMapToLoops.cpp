//===- ConvertGlintMapToLoops.cpp - convert-glint-map-to-loops ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the attention form (`!glint.map` factor chains, consumed by
// `glint.map_reduce` and `glint.map_apply`) to scf loops, vector arithmetic
// and tensor reads/writes, computing what the reference evaluator computes
// (runtime/reference/ImplicitAttention.cpp) one (batch, channel) at a time.
//
// Per channel, a chain is
//
//   row scales (post) · [recurrence R] · prefix
//
// where the prefix (identity, conv, shift, row scales, reshapes) is a banded
// lower-triangular matrix in the chain's step coordinates (time reversed for
// anti-causal chains), kept as `band[p, d] = P[p, p − d]` for d < W. The
// recurrence is run from each column: 16 columns at a time, one
// vector<16xf32> per key element holding the state of 16 columns, so that
// row i of R · P for those columns costs K multiplies and K multiply-adds
// per 16 entries, with exp(g) computed once per (token, key) beforehand.
// Rows are scaled by the post gains, taken |·| for mean_abs, and added into
// the accumulator as they are produced: no channel matrix is written unless
// the chain is a sum of branches aggregated with mean_abs, or is reversed.
// A channel's blocks of 16 columns write disjoint columns of the
// accumulator, so they are an scf.forall (option parallel-columns): the CPU
// pipeline runs them on its OpenMP threads, long and short columns paired
// so that each thread's share of the triangle is about equal.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/BuilderUtils.h"
#include "passes/conversions/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

#define DEBUG_TYPE "convert-glint-map-to-loops"

namespace mlir::glint {
#define GEN_PASS_DEF_CONVERTGLINTMAPTOLOOPS
#include "passes/conversions/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// One product of factors: post · scan · prefix.
struct Chain {
  SmallVector<Value> post;          // row gains applied last
  MapScanOp scan;                   // may be null
  SmallVector<Operation *> prefix;  // below the scan, in application order
  MapIdentityOp identity;
  bool reverse = false;
  int64_t width = 1;                // band width of the prefix
};

/// The key count of a chain's recurrence (0 without one).
int64_t chainKeys(const Chain &chain);

/// Splits `map` into chains (one per branch of map_add); diagnoses what
/// this lowering cannot do yet.
static LogicalResult collectChains(Value map, SmallVector<Value> post,
                                   SmallVectorImpl<Chain> &chains) {
  Value m = map;
  Operation *op = m.getDefiningOp();
  while (true) {
    op = m.getDefiningOp();
    if (!op)
      return emitError(m.getLoc(), "a !glint.map that is a block argument "
                                   "cannot be lowered");
    if (auto scale = dyn_cast<MapScaleOp>(op)) {
      post.push_back(scale.getGain());
      m = scale.getMap();
      continue;
    }
    if (auto reshape = dyn_cast<MapReshapeOp>(op)) {
      m = reshape.getMap();
      continue;
    }
    if (auto add = dyn_cast<MapAddOp>(op)) {
      if (failed(collectChains(add.getLhs(), post, chains)))
        return failure();
      return collectChains(add.getRhs(), post, chains);
    }
    break;
  }
  Chain chain;
  chain.post = std::move(post);
  if (auto scan = dyn_cast<MapScanOp>(op)) {
    if (scan.getNormalize())
      return scan.emitOpError(
          "with `normalize` (RWKV-4) is not lowered by "
          "convert-glint-map-to-loops yet; use the reference evaluator");
    chain.scan = scan;
    chain.reverse = scan.getReverse();
    m = scan.getMap();
  }
  SmallVector<Operation *> below;
  std::optional<bool> direction;
  if (chain.scan)
    direction = chain.reverse;
  while (true) {
    op = m.getDefiningOp();
    if (!op)
      return emitError(m.getLoc(), "a !glint.map that is a block argument "
                                   "cannot be lowered");
    if (auto id = dyn_cast<MapIdentityOp>(op)) {
      chain.identity = id;
      break;
    }
    if (auto conv = dyn_cast<MapConvOp>(op)) {
      if (direction && *direction != conv.getReverse())
        return conv.emitOpError(
            "mixes causal and anti-causal factors in one chain; "
            "convert-glint-map-to-loops does not lower that yet");
      direction = conv.getReverse();
      auto weight = cast<RankedTensorType>(conv.getWeight().getType());
      if (weight.isDynamicDim(1))
        return conv.emitOpError("needs a static conv width to be lowered");
      chain.width += weight.getDimSize(1) - 1;
      below.push_back(op);
      m = conv.getMap();
      continue;
    }
    if (auto shift = dyn_cast<MapShiftOp>(op)) {
      if (direction && *direction)
        return shift.emitOpError(
            "in an anti-causal chain is not lowered by "
            "convert-glint-map-to-loops yet");
      direction = false;
      chain.width += 1;
      below.push_back(op);
      m = shift.getMap();
      continue;
    }
    if (isa<MapScaleOp, MapReshapeOp>(op)) {
      below.push_back(op);
      m = op->getOperand(0);
      continue;
    }
    if (isa<MapScanOp>(op))
      return op->emitOpError(
          "below a later recurrence or gate chain (a recurrence of a "
          "recurrence) is not lowered by convert-glint-map-to-loops yet");
    if (isa<MapAttentionOp>(op))
      return op->emitOpError(
          "(softmax attention in the attention form) is not lowered by "
          "convert-glint-map-to-loops yet; use the reference evaluator");
    return op->emitOpError(
        "below another factor is not lowered by convert-glint-map-to-loops "
        "yet");
  }
  chain.reverse = direction.value_or(false);
  chain.prefix.assign(below.rbegin(), below.rend());
  chains.push_back(std::move(chain));
  return success();
}

/// The blocked form of a scanned chain for the linear aggregates (mean,
/// sum), over a group of G channels. Rows are cut into blocks starting at
/// b_m = m·T + W − 1 (m ≥ 1), columns into blocks [m·T, (m+1)·T); the band
/// of column block m ends above row b_{m+1}, so from that row down the
/// channel's entries are a sum of K products:
///
///   A[i, j] = Σ_n LQ[i, n] · d(m_i, m_j)[n] · R[j, n]
///
/// with r_m = b_m − lag the step each row block's decays count from (lag 1
/// when the state is read before its update, as with a bonus):
///
///   LQ[i, n] = gate_i · q_i[n] · Π_{s = r_{m_i} + 1}^{i − lag} E_s[n]
///   R[j, n]  = Σ_k Π_{s = k + 1}^{r_{m_j + 1}} E_s[n] · kΔ_k[n] · P[k, j]
///   d[n]     = Π_{s = r_{m_j + 1} + 1}^{r_{m_i}} E_s[n]  (D[m] per row block)
///
/// every factor a product of decays, never a quotient or the exponential of
/// a difference. The rows above b_{m_j + 1} (the diagonal block and W − 1
/// more) run the recurrence as the unblocked form does. The product for a
/// pair of blocks sums the G channels' K terms at once, so each accumulator
/// entry is read and written once per group rather than once per channel:
/// the accumulator's traffic, not the multiply-adds, bounded the unblocked
/// form (an [L, L] accumulator outgrows the caches).
struct GroupTables {
  int64_t size = 0, keys = 0, width = 1;
  Value lq; // [G, Lp + T + W + 1, K]
  Value rt; // [G, Lp / T · K, T]: R transposed, per column block K rows of
            // T contiguous columns (read in order by the product)
  Value d;  // [G, Lp / T + 2, K]
  // What the recurrence near the diagonal reads, per slot: the tables of
  // exp(gΔ), kΔ and q, the band, the gates (null without gates).
  Value tables, band, post;
};

/// How emitScan serves the blocked form: `Prepare` computes a channel's
/// tables and its row factors, decays and column factors (returned in the
/// fields), written over the given slices of its group's tables; `Exact` runs
/// the recurrence for the rows near the diagonal of the column block at `c0`
/// from given tables, into a [Lp, T] tile.
struct BlockedCall {
  enum Kind { Prepare, Exact } kind;
  Value scanTables, c0;       // Exact
  Value lq, d, rt, tablesOut; // Prepare's results, written into these:
  Value lqInto, dInto, rtInto, tablesInto;
};

/// The attribution method's entry max(0, a · g · x) (0 where the product
/// is not greater than 0), of f32 scalars or of vectors alike; without `g`,
/// max(0, a · x) (g already in a).
static Value positivePart(ImplicitLocOpBuilder &b, Value a, Value g, Value x) {
  Value v = arith::MulFOp::create(
      b, g ? arith::MulFOp::create(b, a, g).getResult() : a, x);
  Value zero =
      arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(v.getType())));
  Value positive = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, v, zero);
  return arith::SelectOp::create(b, positive, v, zero);
}

/// Emits the loops of one map consumer.
class Emitter {
public:
  /// `lanes`: the columns computed together, one vector register of f32.
  /// `parallelColumns`: column blocks as an scf.forall.
  /// `block` > 0: the blocked form (see GroupTables), columns in blocks of
  /// `block` (a multiple of `lanes`), accumulators padded to whole blocks.
  Emitter(ImplicitLocOpBuilder &b, Value x, int64_t lanes, bool parallelColumns,
          int64_t block = 0)
      : b(b), lanes(lanes), parallelColumns(parallelColumns), blockSize(block) {
    f32 = b.getF32Type();
    batch = tensor::DimOp::create(b, x, 0);
    len = tensor::DimOp::create(b, x, 1);
    // Lp = ceil(L / 16) * 16: accumulators are padded to whole vectors
    // (whole blocks in the blocked form).
    int64_t unit = block > 0 ? block : lanes;
    Value rounded = arith::AddIOp::create(b, len, idx(unit - 1));
    padded = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, rounded, idx(unit)), idx(unit));
  }

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value cst(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(float(v)));
  }
  Value zeros(ArrayRef<Value> sizes) { return scratch(b, sizes, 0.0); }
  Value zerosSquare() { return zeros({padded, padded}); }
  /// An accumulator laid out [Lp / w, Lp, w] (w = accBlock()), column
  /// block by column block, so that a block's rows are contiguous (rows of
  /// an [Lp, Lp] accumulator are pages apart, which the prefetchers do not
  /// follow: its read-modify-writes missed the caches). `at` indexes it.
  Value zerosBlocked() {
    return zeros({arith::DivUIOp::create(b, padded, idx(accBlock())), padded,
                  idx(accBlock())});
  }
  /// The columns of a blocked accumulator's block: the blocked form's
  /// blocks, else one vector.
  int64_t accBlock() const { return blockSize > 0 ? blockSize : lanes; }
  /// The indices of entry (p, q) of an [Lp, Lp] or a blocked accumulator.
  SmallVector<Value> at(OpBuilder &ob, Location loc, Value acc, Value p,
                        Value q) {
    if (cast<RankedTensorType>(acc.getType()).getRank() != 3)
      return {p, q};
    Value width = arith::ConstantIndexOp::create(ob, loc, accBlock());
    return {arith::DivUIOp::create(ob, loc, q, width), p,
            arith::RemUIOp::create(ob, loc, q, width)};
  }

  /// `value` as [B, L, C] (channel dims flattened), created once where the
  /// loops start.
  Value flat(Value value) {
    auto it = flatCache.find(value);
    if (it != flatCache.end())
      return it->second;
    auto type = cast<RankedTensorType>(value.getType());
    Value result = value;
    if (type.getRank() > 3) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(loopsStart);
      SmallVector<ReassociationIndices> groups = {{0}, {1}, {}};
      for (int64_t i = 2; i < type.getRank(); ++i)
        groups[2].push_back(i);
      result = tensor::CollapseShapeOp::create(b, value, groups);
    }
    flatCache[value] = result;
    return result;
  }

  /// Element [bi, t, c] of a [B, L, C] tensor. The blocked form reads one
  /// channel's column at a time: there it reads the [B, C, L] copy of
  /// `columns`, so that a column is contiguous.
  Value column(ImplicitLocOpBuilder &ib, Value value, Value bi, Value t,
               Value c) {
    if (blockSize <= 0)
      return tensor::ExtractOp::create(ib, value, ValueRange{bi, t, c});
    return tensor::ExtractOp::create(ib, columns(value), ValueRange{bi, c, t});
  }

  /// The blocked form's copy of a [B, L, C] tensor as [B, C, Lp + lanes],
  /// zero past L (whole vectors of columns can be read from it), made once
  /// where the loops start.
  Value columns(Value value) {
    auto it = columnCache.find(value);
    if (it == columnCache.end()) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(loopsStart);
      SmallVector<Value> dims;
      for (int64_t d = 0; d < 3; ++d)
        dims.push_back(tensor::DimOp::create(b, value, d));
      // Rows of Lp + lanes: rows Lp apart would put a power-of-two L's rows
      // of one column in the same L1 set (4 KB apart at L = 1024), and the
      // copy below writes 4 · lanes of them at a time.
      auto type = cast<RankedTensorType>(value.getType());
      auto outType = RankedTensorType::get(
          {type.getDimSize(0), type.getDimSize(2), ShapedType::kDynamic},
          type.getElementType());
      SmallVector<Value> dynamic;
      if (type.isDynamicDim(0))
        dynamic.push_back(dims[0]);
      if (type.isDynamicDim(2))
        dynamic.push_back(dims[2]);
      Value rowLength = arith::AddIOp::create(b, padded, idx(lanes));
      dynamic.push_back(rowLength);
      Value out = bufferization::AllocTensorOp::create(b, outType, dynamic);
      Value zero = idx(0), one = idx(1);
      // 4 · lanes channels per iteration, on every thread: a row's
      // channels c0 .. c0 + 4 · lanes − 1 are four neighbouring cache
      // lines, read once and in order (one channel per iteration read a
      // line per element, and each line 16 times; one line per row and
      // iteration missed the caches on every row).
      int64_t width = 4 * lanes;
      Value blocks = arith::DivUIOp::create(
          b, arith::AddIOp::create(b, dims[2], idx(width - 1)), idx(width));
      auto loop = scf::ForallOp::create(
          b, b.getLoc(), ArrayRef<OpFoldResult>{blocks}, ValueRange{out},
          /*mapping=*/std::nullopt,
          [&](OpBuilder &fb, Location loc, ValueRange args) {
            ImplicitLocOpBuilder ib(loc, fb);
            Value c0 = arith::MulIOp::create(ib, args[0], idx(width));
            Value count = arith::MinUIOp::create(
                ib, idx(width), arith::SubIOp::create(ib, dims[2], c0));
            SmallVector<OpFoldResult> offsets = {ib.getIndexAttr(0), c0,
                                                 ib.getIndexAttr(0)};
            SmallVector<OpFoldResult> sizes = {dims[0], count, rowLength};
            SmallVector<OpFoldResult> strides(3, ib.getIndexAttr(1));
            Value slice = tensor::ExtractSliceOp::create(ib, args[1], offsets,
                                                         sizes, strides);
            auto batches = scf::ForOp::create(
                ib, zero, dims[0], one, ValueRange{slice},
                [&](OpBuilder &nb, Location nloc, Value i, ValueRange a0) {
                  // Rows [from, to) of batch i: column l of row r is
                  // element(l, r).
                  auto fillRows = [&](Value from, Value to, ValueRange init,
                                      function_ref<Value(OpBuilder &, Location,
                                                         Value, Value)>
                                          element) {
                    return scf::ForOp::create(
                        nb, nloc, from, to, one, init,
                        [&](OpBuilder &rb, Location rloc, Value r,
                            ValueRange a1) {
                          auto channels = scf::ForOp::create(
                              rb, rloc, zero, count, one, a1,
                              [&](OpBuilder &cb, Location cloc, Value l,
                                  ValueRange a2) {
                                Value next = tensor::InsertOp::create(
                                    cb, cloc, element(cb, cloc, l, r), a2[0],
                                    ValueRange{i, l, r});
                                scf::YieldOp::create(cb, cloc, next);
                              });
                          scf::YieldOp::create(rb, rloc, channels.getResult(0));
                        });
                  };
                  auto rows = fillRows(
                      zero, dims[1], a0,
                      [&](OpBuilder &cb, Location cloc, Value l, Value r) {
                        Value k = arith::AddIOp::create(cb, cloc, c0, l);
                        return tensor::ExtractOp::create(cb, cloc, value,
                                                         ValueRange{i, r, k})
                            .getResult();
                      });
                  // Zero past L.
                  Value zeroF = arith::ConstantOp::create(
                      nb, nloc, nb.getF32FloatAttr(0.0f));
                  auto tail = fillRows(dims[1], rowLength, rows.getResults(),
                                       [&](OpBuilder &, Location, Value,
                                           Value) { return zeroF; });
                  scf::YieldOp::create(nb, nloc, tail.getResult(0));
                });
            auto inParallel = scf::InParallelOp::create(ib, loc);
            OpBuilder::InsertionGuard inner(ib);
            ib.setInsertionPointToEnd(inParallel.getBody());
            tensor::ParallelInsertSliceOp::create(ib, loc, batches.getResult(0),
                                                  args[1], offsets, sizes,
                                                  strides);
          });
      it = columnCache.try_emplace(value, loop.getResult(0)).first;
    }
    return it->second;
  }

  /// Step coordinate → time (the chain runs backwards when reversed).
  Value timeOf(Value p, bool reverse) {
    if (!reverse)
      return p;
    return arith::SubIOp::create(
        b, arith::SubIOp::create(b, len, idx(1)), p);
  }

  /// Accumulates channel `c` of batch `bi` of `chains` into `target`
  /// ([Lp, Lp], rows/cols in time coordinates).
  Value emitChannel(ArrayRef<Chain> chains, Value bi, Value c, Value target,
                    bool abs);

  /// The blocked form: zeroed tables for `groupSize` channels of a scanned
  /// chain.
  GroupTables groupTables(int64_t groupSize, const Chain &chain);
  /// target[L-1-p, L-1-q] += from[p, q] (step → time coordinates), or with
  /// `abs` target[p, q] += |from[p, q]|; either may be blocked (`at`).
  Value flipAdd(Value from, Value target, bool abs);
  /// A loop over the `used` slots of a group from `first`, carrying `init`:
  /// `body` gets the slot, its channel (`channels[first + slot]`) and the
  /// carried value, with this emitter's builder inside the loop.
  Value forEachUsedSlot(Value channels, Value first, Value used, Value init,
                        function_ref<Value(ImplicitLocOpBuilder &, Value slot,
                                           Value c, Value carried)>
                            body) {
    auto loop = scf::ForOp::create(
        b, idx(0), used, idx(1), ValueRange{init},
        [&](OpBuilder &nb, Location loc, Value slot, ValueRange args) {
          ImplicitLocOpBuilder ib(loc, nb);
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(ib.getInsertionBlock(), ib.getInsertionPoint());
          Value k = arith::AddIOp::create(ib, first, slot);
          Value c = tensor::ExtractOp::create(ib, channels, ValueRange{k});
          scf::YieldOp::create(ib, body(ib, slot, c, args[0]));
        });
    return loop.getResult(0);
  }
  /// The blocked form, first the preparation: the `used` channels
  /// table[first .. first + used) of a scanned chain in the slots of
  /// `tables`, in parallel (one slot per iteration).
  void emitGroupPrepare(const Chain &chain, Value bi, Value channels,
                        Value first, Value used, GroupTables &tables);
  /// Then per column block, in parallel: the rows near the diagonal of each
  /// used slot by the recurrence, and the rank-(used·K) products below, into
  /// `target` (step coordinates).
  Value emitGroupProduct(const Chain &chain, Value bi, Value channels,
                         Value first, Value used, const GroupTables &tables,
                         Value target);
  /// The blocked form of batch `bi`: the `selectedCount` channels of
  /// `table` in groups of `group` into a blocked accumulator (zerosBlocked),
  /// returned in time coordinates; the chains that run backwards accumulate
  /// in step coordinates into a second one, flipped into the first at the
  /// end.
  Value emitGroups(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains, Value bi,
                   Value table, int64_t selectedCount, int64_t group);
  /// emitGroups' parallel form: the groups in `count` (> 1) parts.
  Value emitParts(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains, Value bi,
                  Value table, int64_t selectedCount, int64_t group,
                  Value count);
  /// The same for the groups [begin, end) alone, added into `into` (a
  /// zeroed blocked accumulator) when given.
  Value groupRange(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains, Value bi,
                   Value table, int64_t selectedCount, int64_t group,
                   Value begin, Value end, Value into = Value());
  /// emitGroups splits the groups into up to this many parts, each its own
  /// accumulator and tables, in parallel (an scf.forall; the foralls inside
  /// a part then run on the thread that runs the part), summed at the end:
  /// the threads share nothing while they work and meet once per call
  /// rather than twice per group.
  int64_t parts = 1;
  /// The bytes the parts' accumulators may take together; fewer parts where
  /// they would take more (one at L = 8192).
  static constexpr int64_t kPartsBytes = int64_t(256) << 20;

  Operation *loopsStart = nullptr;

  /// Set while one channel of the attribution map is emitted by the
  /// recurrence alone (a single scanned chain forward in time): each row of
  /// 16 entries y is added as max(0, y · grad[bi, i, c] · x[j0 : +16]), the
  /// map never materialised. `xs` is x[bi, :, c], zero-padded to Lp.
  struct Attributed {
    Value grad, xs, bi, c;
  };
  std::optional<Attributed> attributed;
  /// Set while the attribution map takes the blocked form (emitGroups): a
  /// channel's entries a, its rank-K product below the diagonal blocks and
  /// its recurrence near them (through `attributed`), are added as
  /// max(0, a · grad[bi, i, c] · x[bi, j, c]) channel by channel, never
  /// summed over the group's channels first. `xt` is [C, Lp + lanes]:
  /// x[bi, :, c] per channel, zero past L (columns()).
  struct GroupAttribution {
    Value grad, xt, bi;
  };
  std::optional<GroupAttribution> groupAttribution;
  Value paddedLength() const { return padded; }
  /// One slot's slice of a group table ([G, ...] → [...]); null for null.
  Value slotOf(ImplicitLocOpBuilder &ib, Value all, Value slot);

  /// Flattens every gain the chains read, before the loops start.
  void prepare(ArrayRef<Chain> chains) {
    for (const Chain &chain : chains) {
      for (Value g : chain.post)
        flat(g);
      for (Operation *op : chain.prefix)
        if (auto scale = dyn_cast<MapScaleOp>(op))
          flat(scale.getGain());
    }
  }

private:
  Value emitChain(const Chain &chain, Value bi, Value c, Value target,
                  bool abs);
  Value emitBand(const Chain &chain, Value bi, Value c);
  Value emitPost(const Chain &chain, Value bi, Value c);
  Value emitBandOnly(const Chain &chain, Value band, Value post, Value target,
                     bool abs);
  Value emitScan(const Chain &chain, Value bi, Value c, Value band, Value post,
                 Value target, bool abs, BlockedCall *blocked = nullptr);

  /// Rows of padding before the band, so that reads at p − e stay inside.
  int64_t bandOffset(const Chain &chain) const { return chain.width + 1; }

  /// One vector of `lanes` f32 at `at` (the last index the first lane).
  Value readVec(ImplicitLocOpBuilder &ib, Value from, ArrayRef<Value> at) {
    return vector::TransferReadOp::create(ib, VectorType::get({lanes}, f32),
                                          from, at, cst(0.0),
                                          ArrayRef<bool>{true});
  }
  Value writeVec(ImplicitLocOpBuilder &ib, Value v, Value into,
                 ArrayRef<Value> at) {
    return vector::TransferWriteOp::create(ib, v, into, at,
                                           ArrayRef<bool>{true})
        .getResult();
  }
  /// An scf.forall over the Lp / width blocks of `width` columns of
  /// `target`, block q/2 for even q and the (q/2)-th from the end for odd
  /// q: block j's rows start at j·width, so every contiguous share of the
  /// iterations (OpenMP's static schedule) holds long and short columns
  /// alike. `body` gets the block, its first column and its [Lp, width]
  /// tile, and returns the tile. Returns the new target.
  Value
  forEachColumnBlock(Value target, int64_t width,
                     function_ref<Value(ImplicitLocOpBuilder &, Value block,
                                        Value c0, Value tile)>
                         body);
  /// The [Lp, width] tile of the column block `block` (first column c0) of
  /// an [Lp, Lp] or a blocked `target` (whose blocks must then be `width`
  /// wide), and where to write it back.
  struct Tile {
    Value value;
    SmallVector<OpFoldResult> offsets, sizes, strides;
  };
  Tile columnTile(ImplicitLocOpBuilder &ib, Value target, Value block, Value c0,
                  int64_t width);
  /// A scratch tensor whose every element read is written first: not
  /// filled. An alloc_tensor, not tensor.empty: CSE must not merge two
  /// scratch tensors of the same size (one read while the other is
  /// written), which would make bufferization copy inside the loops.
  Value uninitialized(OpBuilder &ob, Location loc, ArrayRef<Value> sizes) {
    SmallVector<int64_t> shape(sizes.size(), ShapedType::kDynamic);
    return bufferization::AllocTensorOp::create(
        ob, loc, RankedTensorType::get(shape, f32), ValueRange(sizes));
  }
  /// A scratch tensor filled with `fill`, created with `ib` (inside a
  /// parallel loop: one per iteration).
  Value scratch(ImplicitLocOpBuilder &ib, ArrayRef<Value> sizes, double fill);
  /// Iteration q of a forall over `count` blocks whose work shrinks with
  /// the block index: q/2 when q is even, the (q/2)-th from the end when odd,
  /// so that every contiguous share of the iterations holds long and short
  /// blocks alike.
  Value pairedBlock(ImplicitLocOpBuilder &ib, Value q, Value count);

  ImplicitLocOpBuilder &b;
  const int64_t lanes;
  const bool parallelColumns;
  const int64_t blockSize;
  Type f32;
  Value batch, len, padded;
  DenseMap<Value, Value> flatCache, columnCache;
};

} // namespace

Value Emitter::emitChannel(ArrayRef<Chain> chains, Value bi, Value c,
                           Value target, bool abs) {
  if (chains.size() > 1 && abs) {
    // |A + B| is not |A| + |B|: materialise the sum first.
    Value sum = zerosBlocked();
    for (const Chain &chain : chains)
      sum = emitChain(chain, bi, c, sum, /*abs=*/false);
    return flipAdd(sum, target, /*abs=*/true);
  }
  for (const Chain &chain : chains)
    target = emitChain(chain, bi, c, target, abs);
  return target;
}

Value Emitter::emitChain(const Chain &chain, Value bi, Value c, Value target,
                         bool abs) {
  Value band = emitBand(chain, bi, c);
  Value post = emitPost(chain, bi, c);
  if (!chain.scan)
    return emitBandOnly(chain, band, post, target, abs);
  if (!chain.reverse)
    return emitScan(chain, bi, c, band, post, target, abs);
  // The vector kernel writes step coordinates; flip them into place.
  Value steps = emitScan(chain, bi, c, band, post, zerosBlocked(), abs);
  return flipAdd(steps, target, /*abs=*/false);
}

/// target[L-1-p, L-1-q] += from[p, q] (reversed chains); with `abs`,
/// target[p, q] += |from[p, q]| (the materialised branch sums of mean_abs).
Value Emitter::flipAdd(Value from, Value target, bool abs) {
  Value zero = idx(0), one = idx(1);
  auto rows = scf::ForOp::create(
      b, zero, len, one, ValueRange{target},
      [&](OpBuilder &nb, Location loc, Value p, ValueRange rowArgs) {
        ImplicitLocOpBuilder rb(loc, nb);
        auto cols = scf::ForOp::create(
            rb, zero, len, one, rowArgs,
            [&](OpBuilder &cb, Location cloc, Value q, ValueRange colArgs) {
              ImplicitLocOpBuilder ib(cloc, cb);
              Value v = tensor::ExtractOp::create(
                  ib, from, at(ib, ib.getLoc(), from, p, q));
              Value r = p, s = q;
              if (abs) {
                v = math::AbsFOp::create(ib, v);
              } else {
                Value last = arith::SubIOp::create(ib, len, idx(1));
                r = arith::SubIOp::create(ib, last, p);
                s = arith::SubIOp::create(ib, last, q);
              }
              Value t = colArgs[0];
              SmallVector<Value> into = at(ib, ib.getLoc(), t, r, s);
              Value old = tensor::ExtractOp::create(ib, t, into);
              Value sum = arith::AddFOp::create(ib, old, v);
              Value next = tensor::InsertOp::create(ib, sum, t, into);
              scf::YieldOp::create(ib, next);
            });
        scf::YieldOp::create(rb, cols.getResult(0));
      });
  return rows.getResult(0);
}

Value Emitter::emitBand(const Chain &chain, Value bi, Value c) {
  int64_t w = chain.width, off = bandOffset(chain);
  Value rowsTotal = arith::AddIOp::create(b, padded, idx(off + lanes + w));
  Value zero = idx(0), one = idx(1);
  // Identity: band[p, 0] = 1.
  Value band = zeros({rowsTotal, idx(w)});
  {
    auto loop = scf::ForOp::create(
        b, zero, len, one, ValueRange{band},
        [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
          ImplicitLocOpBuilder ib(loc, nb);
          Value row = arith::AddIOp::create(ib, p, idx(off));
          Value next = tensor::InsertOp::create(ib, cst(1.0), args[0],
                                                ValueRange{row, idx(0)});
          scf::YieldOp::create(ib, next);
        });
    band = loop.getResult(0);
  }
  int64_t current = 1;
  for (Operation *factor : chain.prefix) {
    if (isa<MapReshapeOp>(factor))
      continue;
    if (auto scale = dyn_cast<MapScaleOp>(factor)) {
      Value gain = flat(scale.getGain());
      auto loop = scf::ForOp::create(
          b, zero, len, one, ValueRange{band},
          [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
            ImplicitLocOpBuilder ib(loc, nb);
            Value t = chain.reverse
                          ? arith::SubIOp::create(
                                ib, arith::SubIOp::create(ib, len, idx(1)), p)
                                .getResult()
                          : p;
            Value g = column(ib, gain, bi, t, c);
            Value row = arith::AddIOp::create(ib, p, idx(off));
            Value cur = args[0];
            for (int64_t d = 0; d < current; ++d) {
              Value v =
                  tensor::ExtractOp::create(ib, cur, ValueRange{row, idx(d)});
              v = arith::MulFOp::create(ib, v, g);
              cur = tensor::InsertOp::create(ib, v, cur, ValueRange{row, idx(d)});
            }
            scf::YieldOp::create(ib, cur);
          });
      band = loop.getResult(0);
      continue;
    }
    if (isa<MapShiftOp>(factor)) {
      // new[p, d] = old[p − 1, d − 1].
      Value fresh = zeros({rowsTotal, idx(w)});
      Value old = band;
      auto loop = scf::ForOp::create(
          b, zero, len, one, ValueRange{fresh},
          [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
            ImplicitLocOpBuilder ib(loc, nb);
            Value row = arith::AddIOp::create(ib, p, idx(off));
            Value prev = arith::SubIOp::create(ib, row, idx(1));
            Value cur = args[0];
            for (int64_t d = 1; d <= current; ++d) {
              Value v = tensor::ExtractOp::create(ib, old,
                                                  ValueRange{prev, idx(d - 1)});
              cur = tensor::InsertOp::create(ib, v, cur, ValueRange{row, idx(d)});
            }
            scf::YieldOp::create(ib, cur);
          });
      band = loop.getResult(0);
      current += 1;
      continue;
    }
    auto conv = cast<MapConvOp>(factor);
    // In step coordinates the anti-causal conv is causal:
    // new[p, d] = Σ_e w[W-1-e] · old[p − e, d − e].
    Value weight = conv.getWeight();
    int64_t width = cast<RankedTensorType>(weight.getType()).getDimSize(1);
    Value fresh = zeros({rowsTotal, idx(w)});
    Value old = band;
    SmallVector<Value> taps;
    for (int64_t e = 0; e < width; ++e)
      taps.push_back(tensor::ExtractOp::create(
          b, weight, ValueRange{c, idx(width - 1 - e)}));
    int64_t next = current + width - 1;
    auto loop = scf::ForOp::create(
        b, zero, len, one, ValueRange{fresh},
        [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
          ImplicitLocOpBuilder ib(loc, nb);
          Value row = arith::AddIOp::create(ib, p, idx(off));
          Value cur = args[0];
          for (int64_t d = 0; d < next; ++d) {
            Value acc = cst(0.0);
            for (int64_t e = 0; e < width; ++e) {
              if (d - e < 0 || d - e >= current)
                continue;
              Value from = arith::SubIOp::create(ib, row, idx(e));
              Value v = tensor::ExtractOp::create(ib, old,
                                                  ValueRange{from, idx(d - e)});
              acc = math::FmaOp::create(ib, taps[e], v, acc);
            }
            cur = tensor::InsertOp::create(ib, acc, cur, ValueRange{row, idx(d)});
          }
          scf::YieldOp::create(ib, cur);
        });
    band = loop.getResult(0);
    current = next;
  }
  return band;
}

Value Emitter::emitPost(const Chain &chain, Value bi, Value c) {
  if (chain.post.empty())
    return Value();
  SmallVector<Value> gains;
  for (Value g : chain.post)
    gains.push_back(flat(g));
  Value zero = idx(0), one = idx(1);
  Value post = zeros({arith::AddIOp::create(b, padded, idx(lanes))});
  auto loop = scf::ForOp::create(
      b, zero, len, one, ValueRange{post},
      [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
        ImplicitLocOpBuilder ib(loc, nb);
        Value t = chain.reverse
                      ? arith::SubIOp::create(
                            ib, arith::SubIOp::create(ib, len, idx(1)), p)
                            .getResult()
                      : p;
        Value prod = cst(1.0);
        for (Value g : gains)
          prod = arith::MulFOp::create(ib, prod, column(ib, g, bi, t, c));
        scf::YieldOp::create(
            ib, tensor::InsertOp::create(ib, prod, args[0], ValueRange{p})
                    .getResult());
      });
  return loop.getResult(0);
}

Value Emitter::emitBandOnly(const Chain &chain, Value band, Value post,
                            Value target, bool abs) {
  int64_t off = bandOffset(chain);
  Value zero = idx(0), one = idx(1);
  auto loop = scf::ForOp::create(
      b, zero, len, one, ValueRange{target},
      [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
        ImplicitLocOpBuilder ib(loc, nb);
        Value row = arith::AddIOp::create(ib, p, idx(off));
        Value scale = post ? tensor::ExtractOp::create(ib, post, ValueRange{p})
                                 .getResult()
                           : Value();
        Value last = arith::SubIOp::create(ib, len, idx(1));
        Value cur = args[0];
        for (int64_t d = 0; d < chain.width; ++d) {
          Value v = tensor::ExtractOp::create(ib, band, ValueRange{row, idx(d)});
          if (scale)
            v = arith::MulFOp::create(ib, v, scale);
          if (abs)
            v = math::AbsFOp::create(ib, v);
          // Column p − d; entries left of column 0 are zero: clamp.
          Value col = arith::SubIOp::create(ib, p, idx(d));
          Value inside = arith::CmpIOp::create(ib, arith::CmpIPredicate::sge,
                                               col, zero);
          col = arith::SelectOp::create(ib, inside, col, zero);
          v = arith::SelectOp::create(ib, inside, v, cst(0.0));
          Value r = p;
          if (chain.reverse) {
            r = arith::SubIOp::create(ib, last, p);
            col = arith::SubIOp::create(ib, last, col);
          }
          SmallVector<Value> into = at(ib, ib.getLoc(), cur, r, col);
          Value old = tensor::ExtractOp::create(ib, cur, into);
          cur = tensor::InsertOp::create(ib, arith::AddFOp::create(ib, old, v),
                                         cur, into);
        }
        scf::YieldOp::create(ib, cur);
      });
  return loop.getResult(0);
}

Value Emitter::emitScan(const Chain &chain, Value bi, Value c, Value band,
                        Value post, Value target, bool abs,
                        BlockedCall *blocked) {
  MapScanOp scan = chain.scan;
  auto valueType = cast<MapType>(scan.getResult().getType()).getValueType();
  int64_t heads = valueType.getDimSize(2), valueSize = valueType.getDimSize(3);
  auto keyType = cast<RankedTensorType>(scan.getK().getType());
  int64_t groups = keyType.getDimSize(2), keys = keyType.getDimSize(3);
  auto decayType = cast<RankedTensorType>(scan.getLogDecay().getType());
  int64_t w = chain.width, off = bandOffset(chain);
  bool reverse = chain.reverse, bonus = bool(scan.getBonus());
  Value zero = idx(0), one = idx(1);

  Value head = arith::DivUIOp::create(b, c, idx(valueSize));
  Value group = arith::DivUIOp::create(b, head, idx(heads / groups));
  Value skip = scan.getSkip()
                   ? tensor::ExtractOp::create(b, scan.getSkip(),
                                               ValueRange{head})
                         .getResult()
                   : Value();
  SmallVector<Value> bonusU;
  if (bonus)
    for (int64_t n = 0; n < keys; ++n)
      bonusU.push_back(tensor::ExtractOp::create(
          b, scan.getBonus(), ValueRange{head, idx(n)}));

  // Per step p: E = exp(g·Δ), KD = k·Δ, Q = q, in step coordinates.
  bool exactOnly = blocked && blocked->kind == BlockedCall::Exact;
  Value tables = blocked ? blocked->scanTables : Value();
  if (!exactOnly) {
    // The blocked form writes into its group's tables, zeroed once: the
    // rows at or past L it reads (decays up to W + 1 rows past the last
    // block) stay zero.
    tables = blocked ? blocked->tablesInto
                     : zeros({arith::AddIOp::create(b, padded, idx(lanes)),
                              idx(3 * keys)});
    // Row p's E, KΔ and Q of key n (time t), into `cur`; with `vec`, of
    // the `lanes` keys from n.
    auto tableRow = [&](ImplicitLocOpBuilder &jb, Value t, Value p, Value n,
                        Value delta, Value cur, bool vec) -> Value {
      auto vecType = VectorType::get({lanes}, f32);
      auto splat = [&](Value x) -> Value {
        return vec ? vector::BroadcastOp::create(jb, vecType, x).getResult()
                   : x;
      };
      auto read = [&](Value from, ArrayRef<Value> at) -> Value {
        return vec ? readVec(jb, from, at)
                   : tensor::ExtractOp::create(jb, from, at).getResult();
      };
      Value logDecay = scan.getLogDecay(), ld;
      switch (decayType.getRank()) {
      case 1:
        ld = splat(tensor::ExtractOp::create(jb, logDecay, ValueRange{head}));
        break;
      case 2:
        ld = read(logDecay, {head, n});
        break;
      case 3:
        ld = splat(column(jb, logDecay, bi, t, head));
        break;
      default:
        ld = read(logDecay, {bi, t, head, n});
        break;
      }
      Value k = read(scan.getK(), {bi, t, group, n});
      if (delta) {
        ld = arith::MulFOp::create(jb, ld, splat(delta));
        k = arith::MulFOp::create(jb, k, splat(delta));
      }
      Value e = math::ExpOp::create(jb, ld);
      Value q =
          scan.getQ() ? read(scan.getQ(), {bi, t, group, n}) : splat(cst(1.0));
      auto put = [&](Value v, Value column) -> Value {
        return vec ? writeVec(jb, v, cur, {p, column})
                   : tensor::InsertOp::create(jb, v, cur, ValueRange{p, column})
                         .getResult();
      };
      cur = put(e, n);
      cur = put(k, arith::AddIOp::create(jb, n, idx(keys)));
      return put(q, arith::AddIOp::create(jb, n, idx(2 * keys)));
    };
    auto loop = scf::ForOp::create(
        b, zero, len, one, ValueRange{tables},
        [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
          ImplicitLocOpBuilder ib(loc, nb);
          Value t = reverse ? arith::SubIOp::create(
                                  ib, arith::SubIOp::create(ib, len, idx(1)), p)
                                  .getResult()
                            : p;
          Value delta = scan.getDelta()
                            ? column(ib, scan.getDelta(), bi, t, head)
                            : Value();
          if (blocked) {
            // The keys fill whole vectors: a vector of keys at a time.
            Value cur = args[0];
            for (int64_t h = 0; h < keys / lanes; ++h)
              cur = tableRow(ib, t, p, idx(h * lanes), delta, cur,
                             /*vec=*/true);
            scf::YieldOp::create(ib, cur);
            return;
          }
          auto inner = scf::ForOp::create(
              ib, zero, idx(keys), one, args,
              [&](OpBuilder &kb, Location kloc, Value n, ValueRange kargs) {
                ImplicitLocOpBuilder jb(kloc, kb);
                scf::YieldOp::create(jb, tableRow(jb, t, p, n, delta, kargs[0],
                                                  /*vec=*/false));
              });
          scf::YieldOp::create(ib, inner.getResult(0));
        });
    tables = loop.getResult(0);
  }

  auto vecType = VectorType::get({lanes}, f32);
  int64_t injectRows = lanes + w - 1;

  // One row i of the 16 columns [j0, j0 + 16): update the state, read it,
  // add the row into the target.
  // `xv`: with `attributed`, the inputs x of the 16 columns.
  auto step = [&](ImplicitLocOpBuilder &ib, Value i, Value col,
                  SmallVector<Value> states, Value v, Value tgt,
                  Value xv) -> std::pair<SmallVector<Value>, Value> {
    auto load = [&](int64_t column) -> Value {
      Value s = tensor::ExtractOp::create(ib, tables,
                                          ValueRange{i, idx(column)});
      return vector::BroadcastOp::create(ib, vecType, s);
    };
    auto read = [&](ArrayRef<Value> st) {
      // Four partial sums keep the multiply-add chains short.
      SmallVector<Value> partial;
      for (int64_t n = 0; n < keys; ++n) {
        Value q = load(2 * keys + n);
        if ((int64_t)partial.size() < 4 && n < 4)
          partial.push_back(arith::MulFOp::create(ib, q, st[n]));
        else
          partial[n % 4] = vector::FMAOp::create(ib, q, st[n], partial[n % 4]);
      }
      if (partial.empty())
        llvm_unreachable("a recurrence reads at least one key");
      Value y = partial[0];
      for (size_t k = 1; k < partial.size(); ++k)
        y = arith::AddFOp::create(ib, y, partial[k]);
      return y;
    };
    Value y;
    if (bonus) {
      y = read(states);
      if (v) {
        // The diagonal: q_i · (u ⊙ k_i Δ_i) v_i.
        Value coeff = cst(0.0);
        for (int64_t n = 0; n < keys; ++n) {
          Value q = tensor::ExtractOp::create(
              ib, tables, ValueRange{i, idx(2 * keys + n)});
          Value k =
              tensor::ExtractOp::create(ib, tables, ValueRange{i, idx(keys + n)});
          coeff = math::FmaOp::create(
              ib, arith::MulFOp::create(ib, q, bonusU[n]), k, coeff);
        }
        y = vector::FMAOp::create(
            ib, vector::BroadcastOp::create(ib, vecType, coeff), v, y);
      }
    }
    for (int64_t n = 0; n < keys; ++n) {
      states[n] = arith::MulFOp::create(ib, states[n], load(n));
      if (v)
        states[n] = vector::FMAOp::create(ib, load(keys + n), v, states[n]);
    }
    if (!bonus)
      y = read(states);
    if (skip && v)
      y = vector::FMAOp::create(
          ib, vector::BroadcastOp::create(ib, vecType, skip), v, y);
    if (post) {
      Value s = tensor::ExtractOp::create(ib, post, ValueRange{i});
      y = arith::MulFOp::create(ib, y,
                                vector::BroadcastOp::create(ib, vecType, s));
    }
    if (abs)
      y = math::AbsFOp::create(ib, y);
    if (xv) {
      Value g = tensor::ExtractOp::create(
          ib, attributed->grad, ValueRange{attributed->bi, i, attributed->c});
      y = positivePart(ib, y, vector::BroadcastOp::create(ib, vecType, g), xv);
    }
    Value old = vector::TransferReadOp::create(
        ib, vecType, tgt, ValueRange{i, col}, cst(0.0),
        ArrayRef<bool>{true});
    Value sum = arith::AddFOp::create(ib, old, y);
    Value next = vector::TransferWriteOp::create(ib, sum, tgt,
                                                 ValueRange{i, col},
                                                 ArrayRef<bool>{true})
                     .getResult();
    return {states, next};
  };

  Value zeroVec = arith::ConstantOp::create(
      b, vecType, DenseElementsAttr::get(vecType, b.getF32FloatAttr(0.0f)));
  // The columns [j0, j0 + lanes) of `tgt` (`col`: where they start in it)
  // from rows j0 on.
  auto columnBlock = [&](ImplicitLocOpBuilder &ib, Value j0, Value tgt,
                         Value col, Value rowEnd) -> Value {
    SmallVector<Value> init(keys, zeroVec);
    init.push_back(tgt);
    Value xv = attributed ? readVec(ib, attributed->xs, {j0}) : Value();
    // Rows where the band of these columns enters the state.
    Value left = arith::SubIOp::create(ib, len, j0);
    Value injectEnd = arith::MinUIOp::create(ib, left, idx(injectRows));
    auto inject = scf::ForOp::create(
        ib, zero, injectEnd, one, init,
        [&](OpBuilder &rb, Location rloc, Value r, ValueRange args) {
          ImplicitLocOpBuilder jb(rloc, rb);
          Value i = arith::AddIOp::create(jb, j0, r);
          Value row = arith::AddIOp::create(jb, i, idx(off));
          // v[l] = P[i, j0 + l] = band[i, r − l].
          Value v = zeroVec;
          for (int64_t d = 0; d < w; ++d) {
            Value lane = arith::SubIOp::create(jb, r, idx(d));
            Value inside = arith::AndIOp::create(
                jb,
                arith::CmpIOp::create(jb, arith::CmpIPredicate::sge, lane,
                                      zero),
                arith::CmpIOp::create(jb, arith::CmpIPredicate::slt, lane,
                                      idx(lanes)));
            Value safe = arith::SelectOp::create(jb, inside, lane, zero);
            Value val =
                tensor::ExtractOp::create(jb, band, ValueRange{row, idx(d)});
            Value put = vector::InsertOp::create(
                jb, val, v, ArrayRef<OpFoldResult>{safe});
            v = arith::SelectOp::create(jb, inside, put, v);
          }
          SmallVector<Value> st(args.drop_back());
          auto [ns, nt] = step(jb, i, col, st, v, args.back(), xv);
          ns.push_back(nt);
          scf::YieldOp::create(jb, ns);
        });
    Value start = arith::AddIOp::create(ib, j0, injectEnd);
    auto rest = scf::ForOp::create(
        ib, start, rowEnd, one, inject.getResults(),
        [&](OpBuilder &rb, Location rloc, Value i, ValueRange args) {
          ImplicitLocOpBuilder jb(rloc, rb);
          SmallVector<Value> st(args.drop_back());
          auto [ns, nt] = step(jb, i, col, st, Value(), args.back(), xv);
          ns.push_back(nt);
          scf::YieldOp::create(jb, ns);
        });
    return rest.getResults().back();
  };

  if (exactOnly) {
    // Rows [j0, b_{m+1}) of each vector of columns of the block at c0.
    int64_t T = blockSize;
    Value c0 = blocked->c0;
    Value rowEnd = arith::MinUIOp::create(
        b, len, arith::AddIOp::create(b, c0, idx(T + w - 1)));
    Value left = arith::SubIOp::create(b, len, c0);
    Value vectors = arith::MinUIOp::create(
        b, idx(T / lanes),
        arith::DivUIOp::create(
            b, arith::AddIOp::create(b, left, idx(lanes - 1)), idx(lanes)));
    auto exact = scf::ForOp::create(
        b, zero, vectors, one, ValueRange{target},
        [&](OpBuilder &nb, Location nloc, Value v, ValueRange vargs) {
          ImplicitLocOpBuilder jb(nloc, nb);
          Value col = arith::MulIOp::create(jb, v, idx(lanes));
          Value j0 = arith::AddIOp::create(jb, c0, col);
          scf::YieldOp::create(jb, columnBlock(jb, j0, vargs[0], col, rowEnd));
        });
    return exact.getResult(0);
  }

  if (blocked) {
    // Prepare (GroupTables): the row factors LQ and the row blocks' decays
    // D, one pass over the rows; then per column block its column factors.
    int64_t T = blockSize, lag = bonus ? 1 : 0, chunks = keys / lanes;
    Value ones = arith::ConstantOp::create(
        b, vecType, DenseElementsAttr::get(vecType, b.getF32FloatAttr(1.0f)));
    Value blockCount = arith::DivUIOp::create(b, padded, idx(T));
    Value lrRows = arith::AddIOp::create(b, padded, idx(T + w + 1));
    // Rows read before they are written: none (a block's first row selects
    // 1 over the row above; LQ rows at or past L feed no product row; each
    // row block's D is written by its rows).
    Value running = uninitialized(b, b.getLoc(), {lrRows, idx(keys)});
    Value lqOut = blocked->lqInto, dOut = blocked->dInto;
    auto rowsLoop = scf::ForOp::create(
        b, idx(T + w - 1), len, one, ValueRange{running, lqOut, dOut},
        [&](OpBuilder &nb, Location loc, Value p, ValueRange args) {
          ImplicitLocOpBuilder ib(loc, nb);
          Value rel = arith::SubIOp::create(ib, p, idx(w - 1));
          Value m = arith::DivUIOp::create(ib, rel, idx(T));
          Value starts = arith::CmpIOp::create(
              ib, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(ib, rel, idx(T)), zero);
          Value prevRow = arith::SubIOp::create(ib, p, one);
          Value from = arith::SubIOp::create(ib, p, idx(lag));
          Value next = arith::AddIOp::create(ib, from, one);
          Value gain;
          if (post)
            gain = vector::BroadcastOp::create(
                ib, vecType,
                tensor::ExtractOp::create(ib, post, ValueRange{p}));
          Value lr = args[0], lq = args[1], d = args[2];
          for (int64_t h = 0; h < chunks; ++h) {
            Value n0 = idx(h * lanes);
            // Π_{s = r_m + 1}^{p − lag} E_s: 1 on a block's first row.
            Value now = arith::SelectOp::create(
                ib, starts, ones,
                arith::MulFOp::create(ib, readVec(ib, lr, {prevRow, n0}),
                                      readVec(ib, tables, {from, n0})));
            lr = writeVec(ib, now, lr, {p, n0});
            Value v = arith::MulFOp::create(
                ib, now, readVec(ib, tables, {p, idx(2 * keys + h * lanes)}));
            if (gain)
              v = arith::MulFOp::create(ib, v, gain);
            lq = writeVec(ib, v, lq, {p, n0});
            // Rewritten on each row: the block's last row leaves D[m].
            Value dm =
                arith::MulFOp::create(ib, now, readVec(ib, tables, {next, n0}));
            d = writeVec(ib, dm, d, {m, n0});
          }
          scf::YieldOp::create(ib, ValueRange{lr, lq, d});
        });
    blocked->lq = rowsLoop.getResult(1);
    blocked->d = rowsLoop.getResult(2);
    blocked->tablesOut = tables;

    // Per column block m: KS[k − c0] = Π_{s = k + 1}^{r} E_s · kΔ_k for
    // k = r down to c0 (r = b_{m+1} − lag), then
    // R[j, n] = Σ_d KS[j + d − c0, n] · P[j + d, j], written transposed
    // into rows m·K .. m·K + K − 1.
    int64_t span = T + w - lag; // k − c0 in [0, span)
    Value ks = uninitialized(b, b.getLoc(), {idx(T + w + 1), idx(keys)});
    Value rtOut = blocked->rtInto;
    auto blocksLoop = scf::ForOp::create(
        b, zero, blockCount, one, ValueRange{rtOut, ks},
        [&](OpBuilder &bb, Location bloc, Value block, ValueRange bargs) {
          ImplicitLocOpBuilder ib(bloc, bb);
          Value c0 = arith::MulIOp::create(ib, block, idx(T));
          Value firstKey = arith::MulIOp::create(ib, block, idx(keys));
          SmallVector<Value> init(chunks, ones);
          init.push_back(bargs[1]);
          auto suffix = scf::ForOp::create(
              ib, zero, idx(span), one, init,
              [&](OpBuilder &nb, Location nloc, Value t, ValueRange sargs) {
                ImplicitLocOpBuilder jb(nloc, nb);
                Value rowK = arith::SubIOp::create(jb, idx(span - 1), t);
                Value k = arith::AddIOp::create(jb, c0, rowK);
                SmallVector<Value> next;
                Value cur = sargs.back();
                for (int64_t h = 0; h < chunks; ++h) {
                  Value kd = readVec(jb, tables, {k, idx(keys + h * lanes)});
                  cur = writeVec(jb, arith::MulFOp::create(jb, sargs[h], kd),
                                 cur, {rowK, idx(h * lanes)});
                  next.push_back(arith::MulFOp::create(
                      jb, sargs[h], readVec(jb, tables, {k, idx(h * lanes)})));
                }
                next.push_back(cur);
                scf::YieldOp::create(jb, next);
              });
          Value ksNow = suffix.getResults().back();
          // `lanes` columns at a time: per vector of keys, their `lanes`
          // vectors of R (one per column) transposed in registers into one
          // vector of columns per key, written as rows of rt.
          auto columns = scf::ForOp::create(
              ib, zero, idx(T), idx(lanes), ValueRange{bargs[0]},
              [&](OpBuilder &nb, Location nloc, Value jj0, ValueRange cargs) {
                ImplicitLocOpBuilder jb(nloc, nb);
                Value cur = cargs[0];
                SmallVector<SmallVector<Value>> taps;
                for (int64_t l = 0; l < lanes; ++l) {
                  Value j = arith::AddIOp::create(
                      jb, c0, arith::AddIOp::create(jb, jj0, idx(l)));
                  taps.emplace_back();
                  for (int64_t d = 0; d < w; ++d) {
                    Value row = arith::AddIOp::create(jb, j, idx(d + off));
                    taps.back().push_back(vector::BroadcastOp::create(
                        jb, vecType,
                        tensor::ExtractOp::create(jb, band,
                                                  ValueRange{row, idx(d)})));
                  }
                }
                for (int64_t h = 0; h < chunks; ++h) {
                  SmallVector<Value> perColumn;
                  for (int64_t l = 0; l < lanes; ++l) {
                    Value acc = zeroVec;
                    for (int64_t d = 0; d < w; ++d) {
                      Value at = arith::AddIOp::create(jb, jj0, idx(l + d));
                      acc = vector::FMAOp::create(
                          jb, taps[l][d],
                          readVec(jb, ksNow, {at, idx(h * lanes)}), acc);
                    }
                    perColumn.push_back(acc);
                  }
                  SmallVector<Value> perKey =
                      transposeSquare(jb, jb.getLoc(), perColumn);
                  for (int64_t n = 0; n < lanes; ++n) {
                    Value row =
                        arith::AddIOp::create(jb, firstKey, idx(h * lanes + n));
                    cur = writeVec(jb, perKey[n], cur, {row, jj0});
                  }
                }
                scf::YieldOp::create(jb, cur);
              });
          scf::YieldOp::create(ib, ValueRange{columns.getResult(0), ksNow});
        });
    blocked->rt = blocksLoop.getResult(0);
    return Value();
  }

  if (!parallelColumns) {
    auto blocks = scf::ForOp::create(
        b, zero, padded, idx(lanes), ValueRange{target},
        [&](OpBuilder &nb, Location loc, Value j0, ValueRange blockArgs) {
          ImplicitLocOpBuilder ib(loc, nb);
          Value acc = blockArgs[0];
          if (cast<RankedTensorType>(acc.getType()).getRank() != 3) {
            scf::YieldOp::create(ib, columnBlock(ib, j0, acc, j0, len));
            return;
          }
          // A blocked accumulator: the block's [Lp, lanes] tile.
          Tile tile = columnTile(
              ib, acc, arith::DivUIOp::create(ib, j0, idx(lanes)), j0, lanes);
          Value done = columnBlock(ib, j0, tile.value, zero, len);
          scf::YieldOp::create(
              ib, tensor::InsertSliceOp::create(ib, done, acc, tile.offsets,
                                                tile.sizes, tile.strides)
                      .getResult());
        });
    return blocks.getResult(0);
  }
  // Column blocks write disjoint columns: an scf.forall, on the CPU's
  // threads.
  return forEachColumnBlock(
      target, lanes,
      [&](ImplicitLocOpBuilder &ib, Value, Value j0, Value tile) -> Value {
        return columnBlock(ib, j0, tile, zero, len);
      });
}

Value Emitter::forEachColumnBlock(
    Value target, int64_t width,
    function_ref<Value(ImplicitLocOpBuilder &, Value, Value, Value)> body) {
  Value blockCount = arith::DivUIOp::create(b, padded, idx(width));
  auto forall = scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{blockCount}, ValueRange{target},
      /*mapping=*/std::nullopt,
      [&](OpBuilder &fb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder ib(loc, fb);
        Value q = args[0], out = args[1];
        Value block = pairedBlock(ib, q, blockCount);
        Value c0 = arith::MulIOp::create(ib, block, idx(width));
        Tile tile = columnTile(ib, out, block, c0, width);
        Value done = body(ib, block, c0, tile.value);
        auto inParallel = scf::InParallelOp::create(ib, loc);
        OpBuilder::InsertionGuard guard(ib);
        ib.setInsertionPointToEnd(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(ib, loc, done, out, tile.offsets,
                                              tile.sizes, tile.strides);
      });
  return forall.getResult(0);
}

Emitter::Tile Emitter::columnTile(ImplicitLocOpBuilder &ib, Value target,
                                  Value block, Value c0, int64_t width) {
  Tile tile;
  tile.offsets = {ib.getIndexAttr(0), c0};
  tile.sizes = {padded, ib.getIndexAttr(width)};
  if (cast<RankedTensorType>(target.getType()).getRank() == 3) {
    assert(width == accBlock() &&
           "a blocked accumulator's blocks are the column blocks");
    // A blocked accumulator's block is one contiguous [Lp, width].
    tile.offsets = {block, ib.getIndexAttr(0), ib.getIndexAttr(0)};
    tile.sizes.insert(tile.sizes.begin(), ib.getIndexAttr(1));
  }
  tile.strides.assign(tile.offsets.size(), ib.getIndexAttr(1));
  tile.value = tensor::ExtractSliceOp::create(
      ib, RankedTensorType::get({ShapedType::kDynamic, width}, f32), target,
      tile.offsets, tile.sizes, tile.strides);
  return tile;
}

Value Emitter::scratch(ImplicitLocOpBuilder &ib, ArrayRef<Value> sizes,
                       double fill) {
  Value empty = uninitialized(ib, ib.getLoc(), sizes);
  Value v = arith::ConstantOp::create(ib, ib.getF32FloatAttr(float(fill)));
  return linalg::FillOp::create(ib, v, empty).getResult(0);
}

Value Emitter::slotOf(ImplicitLocOpBuilder &ib, Value all, Value slot) {
  if (!all)
    return Value();
  auto type = cast<RankedTensorType>(all.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), ib.getIndexAttr(0));
  offsets[0] = slot;
  SmallVector<OpFoldResult> sizes = {ib.getIndexAttr(1)};
  for (int64_t d = 1; d < type.getRank(); ++d)
    sizes.push_back(tensor::DimOp::create(ib, all, d).getResult());
  SmallVector<OpFoldResult> strides(type.getRank(), ib.getIndexAttr(1));
  SmallVector<int64_t> shape(type.getRank() - 1, ShapedType::kDynamic);
  return tensor::ExtractSliceOp::create(ib, RankedTensorType::get(shape, f32),
                                        all, offsets, sizes, strides);
}

Value Emitter::pairedBlock(ImplicitLocOpBuilder &ib, Value q, Value count) {
  Value half = arith::DivUIOp::create(ib, q, idx(2));
  Value odd =
      arith::CmpIOp::create(ib, arith::CmpIPredicate::ne,
                            arith::RemUIOp::create(ib, q, idx(2)), idx(0));
  Value fromEnd =
      arith::SubIOp::create(ib, arith::SubIOp::create(ib, count, idx(1)), half);
  return arith::SelectOp::create(ib, odd, fromEnd, half);
}

GroupTables Emitter::groupTables(int64_t groupSize, const Chain &chain) {
  GroupTables t;
  t.size = groupSize;
  t.keys = chainKeys(chain);
  t.width = chain.width;
  int64_t T = blockSize, w = chain.width, keys = t.keys;
  Value g = idx(groupSize);
  Value blockCount = arith::DivUIOp::create(b, padded, idx(T));
  auto rows = [&](int64_t extra) {
    return arith::AddIOp::create(b, padded, idx(extra)).getResult();
  };
  t.lq = zeros({g, rows(T + w + 1), idx(keys)});
  t.d = zeros({g, arith::AddIOp::create(b, blockCount, idx(2)), idx(keys)});
  t.rt = zeros({g, arith::MulIOp::create(b, blockCount, idx(keys)), idx(T)});
  t.tables = zeros({g, rows(lanes + w + 1), idx(3 * keys)});
  t.band = zeros({g, rows(bandOffset(chain) + lanes + w), idx(w)});
  if (!chain.post.empty())
    t.post = zeros({g, rows(lanes)});
  return t;
}

void Emitter::emitGroupPrepare(const Chain &chain, Value bi, Value channels,
                               Value first, Value used, GroupTables &tables) {
  SmallVector<Value> outs = {tables.lq, tables.d, tables.rt, tables.tables,
                             tables.band};
  if (tables.post)
    outs.push_back(tables.post);
  auto forall = scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{used}, outs,
      /*mapping=*/std::nullopt,
      [&](OpBuilder &fb, Location loc, ValueRange args) {
        // `fb` is `b`, inside the body: the emitters below write there.
        ImplicitLocOpBuilder ib(loc, fb);
        Value slot = args[0];
        Value k = arith::AddIOp::create(ib, first, slot);
        Value c = tensor::ExtractOp::create(ib, channels, ValueRange{k});
        Value band = emitBand(chain, bi, c);
        Value post = emitPost(chain, bi, c);
        BlockedCall call;
        call.kind = BlockedCall::Prepare;
        // Written in place: the slot's slices of the group's tables.
        call.lqInto = slotOf(ib, args[1], slot);
        call.dInto = slotOf(ib, args[2], slot);
        call.rtInto = slotOf(ib, args[3], slot);
        call.tablesInto = slotOf(ib, args[4], slot);
        emitScan(chain, bi, c, band, post, Value(), /*abs=*/false, &call);
        SmallVector<Value> sources = {call.lq, call.d, call.rt, call.tablesOut,
                                      band};
        if (post)
          sources.push_back(post);
        SmallVector<SmallVector<OpFoldResult>> sizes;
        for (Value src : sources) {
          SmallVector<OpFoldResult> sz = {ib.getIndexAttr(1)};
          auto type = cast<RankedTensorType>(src.getType());
          for (int64_t d = 0; d < type.getRank(); ++d)
            sz.push_back(tensor::DimOp::create(ib, src, d).getResult());
          sizes.push_back(sz);
        }
        auto inParallel = scf::InParallelOp::create(ib, loc);
        OpBuilder::InsertionGuard guard(ib);
        ib.setInsertionPointToEnd(inParallel.getBody());
        for (size_t i = 0; i < sources.size(); ++i) {
          SmallVector<OpFoldResult> offsets(sizes[i].size(),
                                            ib.getIndexAttr(0));
          offsets[0] = slot;
          SmallVector<OpFoldResult> strides(sizes[i].size(),
                                            ib.getIndexAttr(1));
          tensor::ParallelInsertSliceOp::create(
              ib, loc, sources[i], args[1 + i], offsets, sizes[i], strides);
        }
      });
  tables.lq = forall.getResult(0);
  tables.d = forall.getResult(1);
  tables.rt = forall.getResult(2);
  tables.tables = forall.getResult(3);
  tables.band = forall.getResult(4);
  if (tables.post)
    tables.post = forall.getResult(5);
}

Value Emitter::emitGroupProduct(const Chain &chain, Value bi, Value channels,
                                Value first, Value used,
                                const GroupTables &tables, Value target) {
  int64_t T = blockSize, keys = tables.keys, w = tables.width;
  int64_t terms = tables.size * keys, vectors = T / lanes,
          chunks = keys / lanes;
  // A product's rows: as many accumulators as fit the vector registers
  // beside the column factors and one broadcast row factor (32 registers
  // with 16 lanes, AVX-512; 16 with fewer, AVX2: 4 rows there spilled
  // accumulators in the inner loop), at most 4 rows.
  // The attribution keeps each channel's sums apart from the group's: twice
  // the registers per row.
  int64_t registers = lanes >= 16 ? 32 : 16;
  int64_t perRow = groupAttribution ? 2 * vectors : vectors;
  int64_t tileRows =
      std::clamp<int64_t>((registers - vectors - 1) / perRow, 1, 4);
  auto vecType = VectorType::get({lanes}, f32);
  Value zero = idx(0), one = idx(1);
  Value zeroVec = arith::ConstantOp::create(
      b, vecType, DenseElementsAttr::get(vecType, b.getF32FloatAttr(0.0f)));
  // Row blocks m ≥ 1 with b_m = m·T + W − 1 < L: m < (L + T − W) / T.
  Value rowBlocks = arith::DivUIOp::create(
      b, arith::AddIOp::create(b, len, idx(T - w)), idx(T));
  Value usedTerms = arith::MulIOp::create(b, used, idx(keys));
  Value lq = tables.lq, rt = tables.rt, dm = tables.d;
  // For each used slot e and vector h of its keys, term = e·K + h·lanes:
  // into[row, term] (into[term] without a row) = value(e, h, term, into).
  auto perTerm = [&](ImplicitLocOpBuilder &ib, Value into,
                     function_ref<Value(ImplicitLocOpBuilder &, Value, int64_t,
                                        Value, Value)>
                         value,
                     Value row) -> Value {
    auto slots = scf::ForOp::create(
        ib, zero, used, one, ValueRange{into},
        [&](OpBuilder &eb, Location eloc, Value e, ValueRange ea) {
          ImplicitLocOpBuilder xb(eloc, eb);
          Value x = ea[0];
          Value base = arith::MulIOp::create(xb, e, idx(keys));
          for (int64_t h = 0; h < chunks; ++h) {
            Value term = arith::AddIOp::create(xb, base, idx(h * lanes));
            Value v = value(xb, e, h, term, x);
            x = row ? writeVec(xb, v, x, {row, term})
                    : writeVec(xb, v, x, {term});
          }
          scf::YieldOp::create(xb, x);
        });
    return slots.getResult(0);
  };
  return forEachColumnBlock(
      target, T,
      [&](ImplicitLocOpBuilder &ib, Value block, Value c0,
          Value tile) -> Value {
        // The rows near the diagonal, slot after slot.
        tile = forEachUsedSlot(
            channels, first, used, tile,
            [&](ImplicitLocOpBuilder &jb, Value e, Value c, Value cur) {
              BlockedCall call;
              call.kind = BlockedCall::Exact;
              call.scanTables = slotOf(jb, tables.tables, e);
              call.c0 = c0;
              if (groupAttribution)
                attributed = Attributed{groupAttribution->grad,
                                        slotOf(jb, groupAttribution->xt, c),
                                        groupAttribution->bi, c};
              Value done = emitScan(chain, bi, c, slotOf(jb, tables.band, e),
                                    slotOf(jb, tables.post, e), cur,
                                    /*abs=*/false, &call);
              attributed.reset();
              return done;
            });

        Value d = scratch(ib, {idx(terms)}, 1.0);
        Value firstRow = arith::MulIOp::create(ib, block, idx(keys));
        // The scaled row factors of the rows of one product, rewritten for
        // the used terms before each: small, so that they and the column
        // factors the product reads stay in the L1 cache together (scaling a
        // whole row block's rows at once, 32 KB at G = 8, K = 16, evicted
        // the column factors: the product ran at 60% of the FMA bound).
        Value lqs = uninitialized(ib, ib.getLoc(), {idx(tileRows), idx(terms)});

        // Rows r0 .. r0 + rows − 1 of the row block at bm: T columns, the
        // used slots' terms summed in registers, then added to the tile.
        auto product = [&](ImplicitLocOpBuilder &jb, Value cur, Value lqsNow,
                           Value dNow, Value bm, Value r0,
                           int64_t rows) -> std::pair<Value, Value> {
          // LQS[r, e·K + n] = LQ[e, bm + r0 + r, n] · d[e·K + n], for the
          // attribution times grad[bi, bm + r0 + r, c_e] (the group's
          // channels of a row are neighbours there).
          for (int64_t r = 0; r < rows; ++r) {
            Value row = arith::AddIOp::create(
                jb, bm, arith::AddIOp::create(jb, r0, idx(r)));
            lqsNow = perTerm(
                jb, lqsNow,
                [&](ImplicitLocOpBuilder &xb, Value e, int64_t h, Value term,
                    Value) -> Value {
                  Value v = arith::MulFOp::create(
                      xb, readVec(xb, lq, {e, row, idx(h * lanes)}),
                      readVec(xb, dNow, {term}));
                  if (!groupAttribution)
                    return v;
                  Value c = tensor::ExtractOp::create(
                      xb, channels,
                      ValueRange{arith::AddIOp::create(xb, first, e)});
                  Value g = tensor::ExtractOp::create(
                      xb, groupAttribution->grad,
                      ValueRange{groupAttribution->bi, row, c});
                  return arith::MulFOp::create(
                      xb, v, vector::BroadcastOp::create(xb, vecType, g));
                },
                idx(r));
          }
          SmallVector<Value> init(rows * vectors, zeroVec);
          // Σ over terms [from, to) of LQS[r, k] · RT[k, columns], added to
          // `sums` (rows × vectors of them).
          auto termSums = [&](ImplicitLocOpBuilder &sb, Value from, Value to,
                              ValueRange sums) -> ValueRange {
            auto loop = scf::ForOp::create(
                sb, from, to, one, sums,
                [&](OpBuilder &nb, Location nloc, Value k, ValueRange acc) {
                  ImplicitLocOpBuilder kb(nloc, nb);
                  SmallVector<Value> cols, next(acc);
                  Value slot = arith::DivUIOp::create(kb, k, idx(keys));
                  Value row = arith::AddIOp::create(
                      kb, firstRow, arith::RemUIOp::create(kb, k, idx(keys)));
                  for (int64_t v = 0; v < vectors; ++v)
                    cols.push_back(
                        readVec(kb, rt, {slot, row, idx(v * lanes)}));
                  for (int64_t r = 0; r < rows; ++r) {
                    Value l = vector::BroadcastOp::create(
                        kb, vecType,
                        tensor::ExtractOp::create(kb, lqsNow,
                                                  ValueRange{idx(r), k}));
                    for (int64_t v = 0; v < vectors; ++v)
                      next[r * vectors + v] = vector::FMAOp::create(
                          kb, l, cols[v], next[r * vectors + v]);
                  }
                  scf::YieldOp::create(kb, next);
                });
            return loop.getResults();
          };
          ValueRange sum;
          if (!groupAttribution) {
            sum = termSums(jb, zero, usedTerms, init);
          } else {
            // Slot by slot: the channel's K terms, then its entries'
            // positive parts into the group's sums.
            const GroupAttribution &ga = *groupAttribution;
            auto slots = scf::ForOp::create(
                jb, zero, used, one, init,
                [&](OpBuilder &nb, Location nloc, Value e, ValueRange acc) {
                  ImplicitLocOpBuilder kb(nloc, nb);
                  Value from = arith::MulIOp::create(kb, e, idx(keys));
                  ValueRange a = termSums(
                      kb, from, arith::AddIOp::create(kb, from, idx(keys)),
                      init);
                  Value c = tensor::ExtractOp::create(
                      kb, channels,
                      ValueRange{arith::AddIOp::create(kb, first, e)});
                  SmallVector<Value> xs, next(acc);
                  for (int64_t v = 0; v < vectors; ++v)
                    xs.push_back(readVec(
                        kb, ga.xt,
                        {c, arith::AddIOp::create(kb, c0, idx(v * lanes))}));
                  // g is in the row factors (LQS).
                  for (int64_t r = 0; r < rows; ++r)
                    for (int64_t v = 0; v < vectors; ++v)
                      next[r * vectors + v] = arith::AddFOp::create(
                          kb, next[r * vectors + v],
                          positivePart(kb, a[r * vectors + v], Value(), xs[v]));
                  scf::YieldOp::create(kb, next);
                });
            sum = slots.getResults();
          }
          for (int64_t r = 0; r < rows; ++r) {
            Value row = arith::AddIOp::create(
                jb, bm, arith::AddIOp::create(jb, r0, idx(r)));
            for (int64_t v = 0; v < vectors; ++v) {
              Value col = idx(v * lanes);
              Value old = readVec(jb, cur, {row, col});
              cur = writeVec(
                  jb, arith::AddFOp::create(jb, old, sum[r * vectors + v]), cur,
                  {row, col});
            }
          }
          return {cur, lqsNow};
        };

        auto rowBlockLoop = scf::ForOp::create(
            ib, arith::AddIOp::create(ib, block, one), rowBlocks, one,
            ValueRange{tile, d, lqs},
            [&](OpBuilder &nb, Location nloc, Value m, ValueRange rargs) {
              ImplicitLocOpBuilder jb(nloc, nb);
              Value bm = arith::AddIOp::create(
                  jb, arith::MulIOp::create(jb, m, idx(T)), idx(w - 1));
              Value rows = arith::MinUIOp::create(
                  jb, idx(T), arith::SubIOp::create(jb, len, bm));
              Value cur = rargs[0], dNow = rargs[1], lqsNow = rargs[2];
              Value whole = arith::MulIOp::create(
                  jb, arith::DivUIOp::create(jb, rows, idx(tileRows)),
                  idx(tileRows));
              auto fours = scf::ForOp::create(
                  jb, zero, whole, idx(tileRows), ValueRange{cur, lqsNow},
                  [&](OpBuilder &sb, Location sloc, Value r0, ValueRange sa) {
                    ImplicitLocOpBuilder kb(sloc, sb);
                    auto [next, scaled] =
                        product(kb, sa[0], sa[1], dNow, bm, r0, tileRows);
                    scf::YieldOp::create(kb, ValueRange{next, scaled});
                  });
              auto singles = scf::ForOp::create(
                  jb, whole, rows, one, fours.getResults(),
                  [&](OpBuilder &sb, Location sloc, Value r0, ValueRange sa) {
                    ImplicitLocOpBuilder kb(sloc, sb);
                    auto [next, scaled] =
                        product(kb, sa[0], sa[1], dNow, bm, r0, 1);
                    scf::YieldOp::create(kb, ValueRange{next, scaled});
                  });
              cur = singles.getResult(0);
              lqsNow = singles.getResult(1);
              // d ← d · D[m]: the decays of row block m, for the next one.
              Value decays = perTerm(
                  jb, dNow,
                  [&](ImplicitLocOpBuilder &xb, Value e, int64_t h, Value term,
                      Value carried) {
                    return arith::MulFOp::create(
                        xb, readVec(xb, carried, {term}),
                        readVec(xb, dm, {e, m, idx(h * lanes)}));
                  },
                  Value());
              scf::YieldOp::create(jb, ValueRange{cur, decays, lqsNow});
            });
        return rowBlockLoop.getResult(0);
      });
}

Value Emitter::emitGroups(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains,
                          Value bi, Value table, int64_t selectedCount,
                          int64_t group) {
  int64_t groups = (selectedCount + group - 1) / group;
  if (parts <= 1 || groups < 2)
    return groupRange(ib, chains, bi, table, selectedCount, group, idx(0),
                      idx(groups));
  // P = min(parts, groups, what kPartsBytes holds of [Lp, Lp] accumulators),
  // at least 1: long sequences fall back to one part. That part runs the
  // unparted loops, outside any forall, so that their own foralls run on
  // every thread: inside a forall of one iteration they would be nested
  // OpenMP regions, which run on the thread that meets them (measured:
  // L = 8192 took as long on two threads as on one).
  Value accBytes = arith::MulIOp::create(
      b, arith::MulIOp::create(b, padded, padded), idx(4));
  Value byMemory = arith::MaxUIOp::create(
      b, idx(1), arith::DivUIOp::create(b, idx(kPartsBytes), accBytes));
  Value count =
      arith::MinUIOp::create(b, idx(std::min(parts, groups)), byMemory);
  Value several =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, count, idx(1));
  auto choice = scf::IfOp::create(
      b, several,
      [&](OpBuilder &tb, Location loc) {
        // `tb` is `b`, inside the branch.
        ImplicitLocOpBuilder pb(loc, tb);
        scf::YieldOp::create(
            pb, emitParts(pb, chains, bi, table, selectedCount, group, count));
      },
      [&](OpBuilder &eb, Location loc) {
        ImplicitLocOpBuilder sb(loc, eb);
        Value whole = groupRange(sb, chains, bi, table, selectedCount, group,
                                 idx(0), idx(groups));
        scf::YieldOp::create(sb, whole);
      });
  return choice.getResult(0);
}

Value Emitter::emitParts(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains,
                         Value bi, Value table, int64_t selectedCount,
                         int64_t group, Value count) {
  int64_t groups = (selectedCount + group - 1) / group;
  Value blocks = arith::DivUIOp::create(b, padded, idx(accBlock()));
  Value all = uninitialized(
      b, b.getLoc(),
      {arith::MulIOp::create(b, count, blocks), padded, idx(accBlock())});
  auto forall = scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{count}, ValueRange{all},
      /*mapping=*/std::nullopt,
      [&](OpBuilder &fb, Location loc, ValueRange args) {
        // `fb` is `b`, inside the body.
        ImplicitLocOpBuilder pb(loc, fb);
        Value part = args[0];
        // Groups [part · groups / P, (part + 1) · groups / P).
        auto bound = [&](Value k) {
          return arith::DivUIOp::create(
                     pb, arith::MulIOp::create(pb, k, idx(groups)), count)
              .getResult();
        };
        SmallVector<OpFoldResult> offsets = {
            arith::MulIOp::create(pb, part, blocks).getResult(),
            pb.getIndexAttr(0), pb.getIndexAttr(0)};
        // (The width as a value: the part's accumulator is ?x?x?.)
        SmallVector<OpFoldResult> sizes = {blocks, padded, idx(accBlock())};
        SmallVector<OpFoldResult> strides(3, pb.getIndexAttr(1));
        // The part accumulates in its own blocks of the shared tensor.
        Value own = tensor::ExtractSliceOp::create(
            pb,
            RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic,
                                   ShapedType::kDynamic},
                                  f32),
            args[1], offsets, sizes, strides);
        own = linalg::FillOp::create(pb, cst(0.0), own).getResult(0);
        Value acc =
            groupRange(pb, chains, bi, table, selectedCount, group, bound(part),
                       bound(arith::AddIOp::create(pb, part, idx(1))), own);
        auto inParallel = scf::InParallelOp::create(pb, loc);
        OpBuilder::InsertionGuard guard(pb);
        pb.setInsertionPointToEnd(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(pb, loc, acc, args[1], offsets,
                                              sizes, strides);
      });
  Value parted = forall.getResult(0);
  // The parts summed, column block by column block, in parallel (every
  // entry written: no fill).
  auto vecType = VectorType::get({lanes}, f32);
  Value summed = uninitialized(b, b.getLoc(), {blocks, padded, idx(accBlock())});
  auto sum = scf::ForallOp::create(
      b, b.getLoc(), ArrayRef<OpFoldResult>{blocks}, ValueRange{summed},
      /*mapping=*/std::nullopt,
      [&](OpBuilder &fb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder sb(loc, fb);
        Value q = args[0];
        Tile tile = columnTile(sb, args[1], q,
                               arith::MulIOp::create(sb, q, idx(accBlock())),
                               accBlock());
        auto rows = scf::ForOp::create(
            sb, idx(0), padded, idx(1), ValueRange{tile.value},
            [&](OpBuilder &rb, Location rloc, Value r, ValueRange ra) {
              ImplicitLocOpBuilder jb(rloc, rb);
              Value cur = ra[0];
              for (int64_t v = 0; v < accBlock() / lanes; ++v) {
                Value col = idx(v * lanes);
                auto over = scf::ForOp::create(
                    jb, idx(0), count, idx(1),
                    ValueRange{arith::ConstantOp::create(
                        jb, vecType,
                        DenseElementsAttr::get(vecType,
                                               jb.getF32FloatAttr(0.0f)))},
                    [&](OpBuilder &ob, Location oloc, Value k, ValueRange oa) {
                      ImplicitLocOpBuilder kb(oloc, ob);
                      Value at = arith::AddIOp::create(
                          kb, arith::MulIOp::create(kb, k, blocks), q);
                      scf::YieldOp::create(
                          kb, arith::AddFOp::create(
                                  kb, oa[0], readVec(kb, parted, {at, r, col}))
                                  .getResult());
                    });
                cur = writeVec(jb, over.getResult(0), cur, {r, col});
              }
              scf::YieldOp::create(jb, cur);
            });
        auto inParallel = scf::InParallelOp::create(sb, loc);
        OpBuilder::InsertionGuard guard(sb);
        sb.setInsertionPointToEnd(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(sb, loc, rows.getResult(0),
                                              args[1], tile.offsets, tile.sizes,
                                              tile.strides);
      });
  return sum.getResult(0);
}

Value Emitter::groupRange(ImplicitLocOpBuilder &ib, ArrayRef<Chain> chains,
                          Value bi, Value table, int64_t selectedCount,
                          int64_t group, Value begin, Value end, Value into) {
  Value one = idx(1);
  bool reversed =
      llvm::any_of(chains, [](const Chain &c) { return c.scan && c.reverse; });
  SmallVector<Value> init = {into ? into : zerosBlocked()};
  if (reversed)
    init.push_back(zerosBlocked());
  // Per scanned chain, its group tables, carried through the groups.
  SmallVector<GroupTables> tables;
  auto fields = [](GroupTables &t) {
    SmallVector<Value *> f = {&t.lq, &t.d, &t.rt, &t.tables, &t.band};
    if (t.post)
      f.push_back(&t.post);
    return f;
  };
  for (const Chain &chain : chains)
    if (chain.scan) {
      tables.push_back(groupTables(group, chain));
      for (Value *v : fields(tables.back()))
        init.push_back(*v);
    }
  auto loop = scf::ForOp::create(
      ib, begin, end, one, init,
      [&](OpBuilder &gb, Location gloc, Value g, ValueRange gargs) {
        ImplicitLocOpBuilder jb(gloc, gb);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(jb.getInsertionBlock(), jb.getInsertionPoint());
        Value acc = gargs[0], accRev = reversed ? gargs[1] : Value();
        size_t next = reversed ? 2 : 1, t = 0;
        Value first = arith::MulIOp::create(b, g, idx(group));
        Value used = arith::MinUIOp::create(
            b, idx(group), arith::SubIOp::create(b, idx(selectedCount), first));
        SmallVector<Value> results;
        for (const Chain &chain : chains) {
          if (!chain.scan) {
            // A band alone: per channel, in time coordinates.
            acc = forEachUsedSlot(
                table, first, used, acc,
                [&](ImplicitLocOpBuilder &, Value, Value c, Value cur) {
                  return emitChannel(chain, bi, c, cur, false);
                });
            continue;
          }
          GroupTables gt = tables[t++];
          for (Value *v : fields(gt))
            *v = gargs[next++];
          emitGroupPrepare(chain, bi, table, first, used, gt);
          Value &into = chain.reverse ? accRev : acc;
          into = emitGroupProduct(chain, bi, table, first, used, gt, into);
          for (Value *v : fields(gt))
            results.push_back(*v);
        }
        SmallVector<Value> yields = {acc};
        if (reversed)
          yields.push_back(accRev);
        yields.append(results);
        scf::YieldOp::create(b, yields);
      });
  Value out = loop.getResult(0);
  if (reversed)
    out = flipAdd(loop.getResult(1), out, /*abs=*/false);
  return out;
}

namespace {

/// The flattened channel count of a map's value type.
int64_t channelCount(Value map) {
  auto type = cast<MapType>(map.getType()).getValueType();
  int64_t count = 1;
  for (int64_t d : type.getShape().drop_front(2))
    count *= d;
  return count;
}

LogicalResult checkMap(Operation *op, Value map) {
  auto type = cast<MapType>(map.getType()).getValueType();
  if (!type.getElementType().isF32())
    return op->emitOpError("convert-glint-map-to-loops lowers f32 maps only");
  for (int64_t d : type.getShape().drop_front(2))
    if (ShapedType::isDynamic(d))
      return op->emitOpError(
          "needs static channel dims to be lowered to loops");
  return success();
}

LogicalResult checkScans(ArrayRef<Chain> chains) {
  for (const Chain &chain : chains) {
    MapScanOp scan = chain.scan;
    if (!scan)
      continue;
    auto value = cast<MapType>(scan.getResult().getType()).getValueType();
    auto key = cast<RankedTensorType>(scan.getK().getType());
    if (value.getRank() != 4 || key.getRank() != 4 || key.isDynamicDim(2) ||
        key.isDynamicDim(3) || value.isDynamicDim(2) || value.isDynamicDim(3))
      return scan.emitOpError(
          "needs static heads, key groups and key size to be lowered");
    if (key.getDimSize(3) > 256)
      return scan.emitOpError(
          "has a key size above 256, which this lowering keeps in registers");
  }
  return success();
}

/// The key count of a chain's recurrence (0 without one).
int64_t chainKeys(const Chain &chain) {
  if (!chain.scan)
    return 0;
  MapScanOp scan = chain.scan;
  return cast<RankedTensorType>(scan.getK().getType()).getDimSize(3);
}

/// `channels` as a constant table of indices.
Value channelTable(ImplicitLocOpBuilder &b, ArrayRef<int64_t> channels) {
  auto tableType =
      RankedTensorType::get({(int64_t)channels.size()}, b.getIndexType());
  return arith::ConstantOp::create(
      b, tableType,
      DenseElementsAttr::get(
          tableType, llvm::to_vector(
                         llvm::map_range(channels, [&](int64_t c) -> Attribute {
                           return b.getIndexAttr(c);
                         }))));
}

LogicalResult lowerReduce(MapReduceOp op, int64_t lanes, bool parallel,
                          int64_t group, int64_t parts) {
  Value map = op.getMap();
  if (failed(checkMap(op, map)))
    return failure();
  SmallVector<Chain> chains;
  if (failed(collectChains(map, {}, chains)) || failed(checkScans(chains)))
    return failure();
  MapAggregate aggregate = op.getAggregate();
  bool full = aggregate == MapAggregate::full;
  bool abs = aggregate == MapAggregate::mean_abs;
  // The blocked form (GroupTables) for the linear aggregates, when every
  // recurrence's keys fill whole vectors.
  bool blocked =
      group > 0 && lanes > 1 && !full && !abs &&
      llvm::any_of(chains, [](const Chain &c) { return bool(c.scan); }) &&
      llvm::all_of(chains, [&](const Chain &c) {
        return chainKeys(c) % lanes == 0 && c.width <= lanes;
      });
  ImplicitLocOpBuilder b(op.getLoc(), op);
  Value x = chains.front().identity.getInput();
  Emitter e(b, x, lanes, parallel, blocked ? 4 * lanes : 0);
  e.parts = parts;
  e.loopsStart = op;
  e.prepare(chains);

  int64_t count = channelCount(map);
  SmallVector<int64_t> selected;
  if (auto list = op.getChannels())
    selected.assign(list->begin(), list->end());
  else
    for (int64_t c = 0; c < count; ++c)
      selected.push_back(c);
  for (int64_t c : selected)
    if (c < 0 || c >= count)
      return op.emitOpError() << "selects channel " << c << ", but the map has "
                              << count << " channels";
  double scale = (aggregate == MapAggregate::mean || abs)
                     ? 1.0 / double(selected.size())
                     : 1.0;
  std::optional<int64_t> row;
  if (auto r = op.getRow())
    row = static_cast<int64_t>(*r);
  Value len = tensor::DimOp::create(b, x, 1);
  Value rowIndex;
  if (row) {
    // Negative rows count from the end (the verifier cannot check L).
    rowIndex = *row >= 0 ? e.idx(*row)
                         : arith::AddIOp::create(b, len, e.idx(*row))
                               .getResult();
  }

  SmallVector<Value> sizes;
  Value batch = tensor::DimOp::create(b, x, 0);
  sizes.push_back(batch);
  if (full)
    sizes.push_back(e.idx(selected.size()));
  if (!row)
    sizes.push_back(len);
  sizes.push_back(len);
  Value result = e.zeros(sizes);

  Value table = channelTable(b, selected);
  Value zero = e.idx(0), one = e.idx(1);

  // Copies (scaled) rows of `acc` into `res` at [prefix..., i, j].
  auto store = [&](ImplicitLocOpBuilder &ib, Value acc, Value res,
                   SmallVector<Value> prefix) -> Value {
    Value firstRow = row ? rowIndex : zero;
    Value endRow = row ? arith::AddIOp::create(ib, rowIndex, one).getResult()
                       : len;
    auto rows = scf::ForOp::create(
        ib, firstRow, endRow, one, ValueRange{res},
        [&](OpBuilder &nb, Location loc, Value i, ValueRange rargs) {
          ImplicitLocOpBuilder rb(loc, nb);
          auto cols = scf::ForOp::create(
              rb, zero, len, one, rargs,
              [&](OpBuilder &cb, Location cloc, Value j, ValueRange cargs) {
                ImplicitLocOpBuilder jb(cloc, cb);
                Value v = tensor::ExtractOp::create(
                    jb, acc, e.at(jb, jb.getLoc(), acc, i, j));
                if (scale != 1.0)
                  v = arith::MulFOp::create(
                      jb, v,
                      arith::ConstantOp::create(
                          jb, jb.getF32FloatAttr(float(scale))));
                SmallVector<Value> at(prefix);
                if (!row)
                  at.push_back(i);
                at.push_back(j);
                scf::YieldOp::create(
                    jb, tensor::InsertOp::create(jb, v, cargs[0], at)
                            .getResult());
              });
          scf::YieldOp::create(rb, cols.getResult(0));
        });
    return rows.getResult(0);
  };

  int64_t selectedCount = selected.size();

  auto batches = scf::ForOp::create(
      b, zero, batch, one, ValueRange{result},
      [&](OpBuilder &nb, Location loc, Value bi, ValueRange bargs) {
        ImplicitLocOpBuilder ib(loc, nb);
        OpBuilder::InsertionGuard outer(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        if (blocked) {
          Value out = e.emitGroups(ib, chains, bi, table, selectedCount, group);
          scf::YieldOp::create(ib, store(ib, out, bargs[0], {bi}));
          return;
        }
        Value init = full ? bargs[0] : e.zerosBlocked();
        auto channels = scf::ForOp::create(
            ib, zero, e.idx(selected.size()), one, ValueRange{init},
            [&](OpBuilder &cb, Location cloc, Value k, ValueRange cargs) {
              ImplicitLocOpBuilder jb(cloc, cb);
              Value c = tensor::ExtractOp::create(jb, table, ValueRange{k});
              // Emit with the inner builder's insertion point.
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPoint(jb.getInsertionBlock(),
                                  jb.getInsertionPoint());
              if (full) {
                Value acc = e.emitChannel(chains, bi, c, e.zerosBlocked(), abs);
                Value res = store(b, acc, cargs[0], {bi, k});
                scf::YieldOp::create(b, res);
              } else {
                Value acc = e.emitChannel(chains, bi, c, cargs[0], abs);
                scf::YieldOp::create(b, acc);
              }
            });
        Value out = channels.getResult(0);
        if (!full)
          out = store(ib, out, bargs[0], {bi});
        scf::YieldOp::create(ib, out);
      });
  Value reduced = batches.getResult(0);
  if (reduced.getType() != op.getType())
    reduced = tensor::CastOp::create(b, op.getType(), reduced);
  op.getResult().replaceAllUsesWith(reduced);
  op.erase();
  return success();
}

/// `glint.map_attribution`: per (batch, channel) the channel's matrix A_c is
/// materialised ([Lp, Lp], branches summed, in time coordinates), then
/// acc[i, j] += max(0, A_c[i, j] · g[b, i, c] · x[b, j, c]) with x's column
/// copied to a contiguous row first; the result is acc / channels.
LogicalResult lowerAttribution(MapAttributionOp op, int64_t lanes,
                               bool parallel, int64_t group, int64_t parts) {
  Value map = op.getMap();
  if (failed(checkMap(op, map)))
    return failure();
  SmallVector<Chain> chains;
  if (failed(collectChains(map, {}, chains)) || failed(checkScans(chains)))
    return failure();
  int64_t count = channelCount(map);
  auto inputType = cast<RankedTensorType>(op.getInput().getType());
  int64_t inChannels = 1;
  for (int64_t d : inputType.getShape().drop_front(2))
    inChannels = ShapedType::isDynamic(d) || inChannels < 0 ? -1
                                                            : inChannels * d;
  if (inChannels != count)
    return op.emitOpError() << "reads a value input of " << inputType
                            << ", whose channels are not the map's " << count
                            << " (convert-glint-map-to-loops lowers one input "
                               "channel per map channel)";
  // One recurrence forward in time (most models): its rows go straight
  // into the sum (Emitter::attributed), and when its keys fill whole vectors
  // through the blocked form (Emitter::groupAttribution); otherwise
  // (branches to sum first, a reversed or band-only chain) each channel's
  // matrix is materialised.
  bool fused = lanes > 1 && chains.size() == 1 && chains.front().scan &&
               !chains.front().reverse;
  bool blocked = fused && group > 0 && chainKeys(chains.front()) % lanes == 0 &&
                 chains.front().width <= lanes;
  ImplicitLocOpBuilder b(op.getLoc(), op);
  Value x = chains.front().identity.getInput();
  Emitter e(b, x, lanes, parallel, blocked ? 4 * lanes : 0);
  e.parts = parts;
  e.loopsStart = op;
  e.prepare(chains);
  Value input = e.flat(op.getInput());
  Value grad = e.flat(op.getGrad());
  Value batch = tensor::DimOp::create(b, x, 0);
  Value len = tensor::DimOp::create(b, x, 1);
  Value zero = e.idx(0), one = e.idx(1);
  Value result = e.zeros({batch, len, len});
  auto batches = scf::ForOp::create(
      b, zero, batch, one, ValueRange{result},
      [&](OpBuilder &nb, Location loc, Value bi, ValueRange bargs) {
        ImplicitLocOpBuilder ib(loc, nb);
        OpBuilder::InsertionGuard outer(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value acc;
        if (blocked) {
          // x[bi, :, c] as row c: batch bi of the [B, C, Lp + lanes] copy.
          e.groupAttribution = Emitter::GroupAttribution{
              grad, e.slotOf(ib, e.columns(input), bi), bi};
          SmallVector<int64_t> all =
              llvm::to_vector(llvm::seq<int64_t>(0, count));
          acc =
              e.emitGroups(ib, chains, bi, channelTable(b, all), count, group);
          e.groupAttribution.reset();
        } else {
          // Zero past L: the fused form reads x a vector of columns at a time.
          Value column = e.zeros({e.paddedLength()});
          // The channel matrices and the sum are blocked accumulators
          // (zerosBlocked): block after block, a block's rows contiguous.
          int64_t width = e.accBlock();
          Value blocks = arith::DivUIOp::create(
              ib, arith::AddIOp::create(ib, len, e.idx(width - 1)),
              e.idx(width));
          auto channels = scf::ForOp::create(
              ib, zero, e.idx(count), one, ValueRange{e.zerosBlocked()},
              [&](OpBuilder &cb, Location cloc, Value c, ValueRange cargs) {
                OpBuilder::InsertionGuard guard(b);
                b.setInsertionPoint(cb.getInsertionBlock(),
                                    cb.getInsertionPoint());
                // x[b, :, c] as a contiguous row.
                auto copy = scf::ForOp::create(
                    b, zero, len, one, ValueRange{column},
                    [&](OpBuilder &kb, Location kloc, Value j, ValueRange k) {
                      Value v = tensor::ExtractOp::create(kb, kloc, input,
                                                          ValueRange{bi, j, c});
                      scf::YieldOp::create(kb, kloc,
                                           tensor::InsertOp::create(
                                               kb, kloc, v, k[0], ValueRange{j})
                                               .getResult());
                    });
                Value xs = copy.getResult(0);
                if (fused) {
                  e.attributed = Emitter::Attributed{grad, xs, bi, c};
                  Value acc = e.emitChannel(chains, bi, c, cargs[0], false);
                  e.attributed.reset();
                  scf::YieldOp::create(b, acc);
                  return;
                }
                Value m = e.emitChannel(chains, bi, c, e.zerosBlocked(), false);
                auto perBlock = scf::ForOp::create(
                    b, zero, blocks, one, cargs,
                    [&](OpBuilder &qb, Location qloc, Value q, ValueRange qa) {
                      ImplicitLocOpBuilder pb(qloc, qb);
                      Value j0 = arith::MulIOp::create(pb, q, e.idx(width));
                      Value columns = arith::MinUIOp::create(
                          pb, e.idx(width), arith::SubIOp::create(pb, len, j0));
                      auto rows = scf::ForOp::create(
                          pb, zero, len, one, qa,
                          [&](OpBuilder &rb, Location rloc, Value i,
                              ValueRange r) {
                            ImplicitLocOpBuilder jb(rloc, rb);
                            Value g = tensor::ExtractOp::create(
                                jb, grad, ValueRange{bi, i, c});
                            auto cols = scf::ForOp::create(
                                jb, zero, columns, one, r,
                                [&](OpBuilder &db, Location dloc, Value jj,
                                    ValueRange acc) {
                                  ImplicitLocOpBuilder kb(dloc, db);
                                  Value j = arith::AddIOp::create(kb, j0, jj);
                                  Value a = tensor::ExtractOp::create(
                                      kb, m, ValueRange{q, i, jj});
                                  Value xj = tensor::ExtractOp::create(
                                      kb, xs, ValueRange{j});
                                  Value kept = positivePart(kb, a, g, xj);
                                  Value old = tensor::ExtractOp::create(
                                      kb, acc[0], ValueRange{q, i, jj});
                                  Value sum =
                                      arith::AddFOp::create(kb, old, kept);
                                  scf::YieldOp::create(
                                      kb,
                                      tensor::InsertOp::create(
                                          kb, sum, acc[0], ValueRange{q, i, jj})
                                          .getResult());
                                });
                            scf::YieldOp::create(jb, cols.getResult(0));
                          });
                      scf::YieldOp::create(pb, rows.getResult(0));
                    });
                scf::YieldOp::create(b, perBlock.getResult(0));
              });
          acc = channels.getResult(0);
        }
        // The channel mean into the result.
        Value scale = e.cst(1.0 / double(count));
        auto rows = scf::ForOp::create(
            ib, zero, len, one, bargs,
            [&](OpBuilder &rb, Location rloc, Value i, ValueRange r) {
              ImplicitLocOpBuilder jb(rloc, rb);
              auto cols = scf::ForOp::create(
                  jb, zero, len, one, r,
                  [&](OpBuilder &db, Location dloc, Value j, ValueRange out) {
                    ImplicitLocOpBuilder kb(dloc, db);
                    Value v = arith::MulFOp::create(
                        kb,
                        tensor::ExtractOp::create(
                            kb, acc, e.at(kb, kb.getLoc(), acc, i, j)),
                        scale);
                    scf::YieldOp::create(
                        kb, tensor::InsertOp::create(kb, v, out[0],
                                                     ValueRange{bi, i, j})
                                .getResult());
                  });
              scf::YieldOp::create(jb, cols.getResult(0));
            });
        scf::YieldOp::create(ib, rows.getResult(0));
      });
  Value attributed = batches.getResult(0);
  if (attributed.getType() != op.getType())
    attributed = tensor::CastOp::create(b, op.getType(), attributed);
  op.getResult().replaceAllUsesWith(attributed);
  op.erase();
  return success();
}

LogicalResult lowerApply(MapApplyOp op, int64_t lanes, bool parallel) {
  Value map = op.getMap();
  if (failed(checkMap(op, map)))
    return failure();
  SmallVector<Chain> chains;
  if (failed(collectChains(map, {}, chains)) || failed(checkScans(chains)))
    return failure();
  ImplicitLocOpBuilder b(op.getLoc(), op);
  Value x = chains.front().identity.getInput();
  Emitter e(b, x, lanes, parallel);
  e.loopsStart = op;
  e.prepare(chains);
  int64_t count = channelCount(map);
  Value input = e.flat(op.getInput());
  Value batch = tensor::DimOp::create(b, x, 0);
  Value len = tensor::DimOp::create(b, x, 1);
  Value zero = e.idx(0), one = e.idx(1);
  Value out = e.zeros({batch, len, e.idx(count)});
  auto batches = scf::ForOp::create(
      b, zero, batch, one, ValueRange{out},
      [&](OpBuilder &nb, Location loc, Value bi, ValueRange bargs) {
        ImplicitLocOpBuilder ib(loc, nb);
        auto channels = scf::ForOp::create(
            ib, zero, e.idx(count), one, bargs,
            [&](OpBuilder &cb, Location cloc, Value c, ValueRange cargs) {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPoint(cb.getInsertionBlock(),
                                  cb.getInsertionPoint());
              Value m = e.emitChannel(chains, bi, c, e.zerosSquare(), false);
              auto rows = scf::ForOp::create(
                  b, zero, len, one, cargs,
                  [&](OpBuilder &rb, Location rloc, Value i, ValueRange rargs) {
                    ImplicitLocOpBuilder jb(rloc, rb);
                    auto dot = scf::ForOp::create(
                        jb, zero, len, one, ValueRange{e.cst(0.0)},
                        [&](OpBuilder &db, Location dloc, Value j,
                            ValueRange dargs) {
                          ImplicitLocOpBuilder kb(dloc, db);
                          Value a = tensor::ExtractOp::create(kb, m,
                                                              ValueRange{i, j});
                          Value v = tensor::ExtractOp::create(
                              kb, input, ValueRange{bi, j, c});
                          scf::YieldOp::create(
                              kb, math::FmaOp::create(kb, a, v, dargs[0])
                                      .getResult());
                        });
                    scf::YieldOp::create(
                        jb, tensor::InsertOp::create(jb, dot.getResult(0),
                                                     rargs[0],
                                                     ValueRange{bi, i, c})
                                .getResult());
                  });
              scf::YieldOp::create(b, rows.getResult(0));
            });
        scf::YieldOp::create(ib, channels.getResult(0));
      });
  Value result = batches.getResult(0);
  auto resultType = cast<RankedTensorType>(op.getType());
  result = tensor::CastOp::create(
      b,
      RankedTensorType::get({ShapedType::kDynamic, ShapedType::kDynamic, count},
                            b.getF32Type()),
      result);
  if (resultType.getRank() > 3) {
    SmallVector<ReassociationIndices> groups = {{0}, {1}, {}};
    for (int64_t i = 2; i < resultType.getRank(); ++i)
      groups[2].push_back(i);
    SmallVector<int64_t> shape = {ShapedType::kDynamic, ShapedType::kDynamic};
    llvm::append_range(shape, resultType.getShape().drop_front(2));
    result = tensor::ExpandShapeOp::create(
        b, RankedTensorType::get(shape, b.getF32Type()), result, groups);
  }
  if (result.getType() != resultType)
    result = tensor::CastOp::create(b, resultType, result);
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

/// φ(x) of act(x) = φ(x)·x, element-wise.
Value actGain(OpBuilder &nb, Location loc, ActKind kind, Value x) {
  ImplicitLocOpBuilder b(loc, nb);
  Type type = x.getType();
  auto cst = [&](double v) -> Value {
    return arith::ConstantOp::create(b, FloatAttr::get(type, v));
  };
  switch (kind) {
  case ActKind::silu: {
    Value e = math::ExpOp::create(b, arith::NegFOp::create(b, x));
    return arith::DivFOp::create(b, cst(1.0),
                                 arith::AddFOp::create(b, cst(1.0), e));
  }
  case ActKind::gelu: {
    Value erf = math::ErfOp::create(
        b, arith::MulFOp::create(b, x, cst(M_SQRT1_2)));
    return arith::MulFOp::create(b, cst(0.5),
                                 arith::AddFOp::create(b, cst(1.0), erf));
  }
  case ActKind::gelu_tanh: {
    Value x3 = arith::MulFOp::create(b, arith::MulFOp::create(b, x, x), x);
    Value inner = arith::MulFOp::create(
        b, cst(std::sqrt(2.0 / M_PI)),
        arith::AddFOp::create(b, x, arith::MulFOp::create(b, cst(0.044715), x3)));
    return arith::MulFOp::create(
        b, cst(0.5),
        arith::AddFOp::create(b, cst(1.0), math::TanhOp::create(b, inner)));
  }
  case ActKind::relu: {
    Value pos = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, cst(0));
    return arith::SelectOp::create(b, pos, cst(1.0), cst(0.0));
  }
  case ActKind::relu_square:
    return arith::MaximumFOp::create(b, x, cst(0.0));
  case ActKind::tanh: {
    Value zero = arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, x, cst(0));
    Value safe = arith::SelectOp::create(b, zero, cst(1.0), x);
    Value ratio = arith::DivFOp::create(b, math::TanhOp::create(b, safe), safe);
    return arith::SelectOp::create(b, zero, cst(1.0), ratio);
  }
  default:
    return Value();
  }
}

LogicalResult lowerActGain(ActGainOp op) {
  ImplicitLocOpBuilder b(op.getLoc(), op);
  auto type = cast<RankedTensorType>(op.getType());
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dynamic.push_back(tensor::DimOp::create(b, op.getInput(), i));
  Value empty = tensor::EmptyOp::create(b, type.getShape(),
                                        type.getElementType(), dynamic);
  auto id = b.getMultiDimIdentityMap(type.getRank());
  SmallVector<utils::IteratorType> iterators(type.getRank(),
                                             utils::IteratorType::parallel);
  bool ok = true;
  auto generic = linalg::GenericOp::create(
      b, TypeRange{type}, ValueRange{op.getInput()}, ValueRange{empty},
      ArrayRef<AffineMap>{id, id}, iterators,
      [&](OpBuilder &nb, Location loc, ValueRange args) {
        Value g = actGain(nb, loc, op.getKind(), args[0]);
        if (!g) {
          ok = false;
          g = args[0];
        }
        linalg::YieldOp::create(nb, loc, g);
      });
  if (!ok) {
    generic.erase();
    return op.emitOpError("has no data-controlled diagonal to lower");
  }
  op.getOutput().replaceAllUsesWith(generic.getResult(0));
  op.erase();
  return success();
}

struct ConvertGlintMapToLoopsPass
    : public glint::impl::ConvertGlintMapToLoopsBase<
          ConvertGlintMapToLoopsPass> {
  using Base::Base;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (groupChannels < 0) {
      func.emitError() << "convert-glint-map-to-loops: group-channels must "
                          "not be negative, not "
                       << static_cast<int64_t>(groupChannels);
      return signalPassFailure();
    }
    if (vectorWidth < 1) {
      func.emitError() << "convert-glint-map-to-loops: vector-width must be "
                          "positive, not "
                       << static_cast<int64_t>(vectorWidth);
      return signalPassFailure();
    }
    if (channelParts < 1) {
      func.emitError() << "convert-glint-map-to-loops: channel-parts must be "
                          "positive, not "
                       << static_cast<int64_t>(channelParts);
      return signalPassFailure();
    }
    SmallVector<Operation *> consumers;
    func.walk([&](Operation *op) {
      if (isa<MapReduceOp, MapApplyOp, MapAttributionOp>(op))
        consumers.push_back(op);
    });
    for (Operation *op : consumers) {
      LogicalResult r =
          isa<MapReduceOp>(op)
              ? lowerReduce(cast<MapReduceOp>(op), vectorWidth, parallelColumns,
                            groupChannels, channelParts)
          : isa<MapApplyOp>(op)
              ? lowerApply(cast<MapApplyOp>(op), vectorWidth, parallelColumns)
              : lowerAttribution(cast<MapAttributionOp>(op), vectorWidth,
                                 parallelColumns, groupChannels, channelParts);
      if (failed(r))
        return signalPassFailure();
    }
    // The map values are now dead: erase them, users first.
    SmallVector<Operation *> dead;
    func.walk([&](Operation *op) {
      if (llvm::any_of(op->getResultTypes(),
                       [](Type t) { return isa<MapType>(t); }))
        dead.push_back(op);
    });
    for (Operation *op : llvm::reverse(dead)) {
      if (!op->use_empty()) {
        op->emitOpError("has a use that convert-glint-map-to-loops does not "
                        "lower");
        return signalPassFailure();
      }
      op->erase();
    }
    // `norm_stats` shares the norms' reductions, so convert-glint-to-linalg
    // lowers it with them; a dead one goes now.
    SmallVector<Operation *> rest;
    func.walk([&](Operation *op) {
      if (isa<ActGainOp, NormStatsOp>(op))
        rest.push_back(op);
    });
    for (Operation *op : rest) {
      if (auto gain = dyn_cast<ActGainOp>(op)) {
        if (failed(lowerActGain(gain)))
          return signalPassFailure();
        continue;
      }
      if (op->use_empty())
        op->erase();
    }
  }
};

} // namespace
