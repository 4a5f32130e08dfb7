//===- ChunkRecurrence.cpp - glint-chunk-recurrence -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers matrix-state recurrences with a decay per head (Mamba-2, RetNet,
// data-dependent per-head decays) to the chunked form of Mamba-2's SSD:
// per chunk of C steps, small matrix products in vector loops; between
// chunks, only the K x V state. Three phases per pass of P chunks:
//
//   1. scf.forall (batch, key group, chunk): the chunk's keys transposed
//      and queries copied once for the group, scores = Q Kᵀ (column blocks
//      of W on or below the diagonal, 8 rows per pass over the keys); per
//      head of the group: a_i = exp(g_i (* delta_i)), the weights
//      W = scores ⊙ M ⊙ delta_j, rows = W V (+ skip v), the chunk's state
//      contribution Σ_j w_j k_j v_jᵀ and its total decay Π a_i.
//   2. scf.forall (batch, head, key row): the running state passed from
//      chunk to chunk, S ← total_c S + contribution_c, each chunk's entering
//      state written in place of its contribution.
//   3. scf.forall (batch, head, chunk): rows_i += (a_0 ... a_i) q_iᵀ S_c.
//
// Numerics. Every decay is a product of step factors a_s = exp(g_s) <= 1
// from one step to another inside a chunk: the mask row i is row i - 1
// times a_i with a 1 entering at column i (lanes right of the diagonal
// stay exactly 0: the causal mask comes free), a step's weight in the
// chunk's state is the product of the factors after it (a suffix product),
// the entering state's a prefix product. No exponential of a difference of
// cumulative sums, no cumulative sum across chunks: strong decays underflow
// to 0 instead of overflowing, and long sequences lose nothing.
//
// Speed. The products are register blocks of vector FMAs: rows of the
// output (or keys of the state) in blocks of 4 by 2 or 4 vectors of W
// lanes along V (half the vector registers as accumulators), scalars of
// the other operand broadcast from local, contiguous copies (one base
// pointer, constant offsets). Bounds are exact: a loop of whole blocks,
// then the rows left one at a time; along V, tiles of whole vectors in an
// scf.for and the rest (masked past V) after it, so that the IR does not
// grow with V. Local buffers are allocated per forall iteration (freed by
// buffer deallocation, which needs the scf interface models registered).
// Each distinct op (types, operands, direction) is lowered once, into a
// private function the ops call: layers repeat, compile time should not.
//
// Which ops, and form=auto's choice with the numbers behind it, are in the
// pass description (Passes.td); the numerics are tested against the float64
// evaluator by test/unit/VectorizeRecurrenceTest.cpp (ChunkRecurrenceTest).
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/BuilderUtils.h"
#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "glint-chunk-recurrence"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTCHUNKRECURRENCE
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

using DecayForm = RecurrenceOp::DecayForm;

namespace {

/// Rows of the output (or of the chunk state) that one register block of
/// the small matmuls accumulates at once. With the vectors along V that it
/// covers (half the vector registers' worth of accumulators: 4 x 2 with
/// AVX2's 16 registers, 4 x 4 with AVX-512's 32), each step of its inner
/// loop loads 2 (4) vectors and broadcasts 4 scalars for 8 (16) FMAs.
constexpr int64_t kRowBlock = 4;
/// Rows of the score block Q Kᵀ per pass over the keys (one vector of W
/// columns each): one load and 8 broadcasts per 8 FMAs.
constexpr int64_t kScoreRows = 8;

/// Builds the chunked form of one recurrence (see the file comment).
class ChunkLowering : LoweringBuilder {
public:
  ChunkLowering(RecurrenceOp op, OpBuilder &builder, int64_t width,
                int64_t chunk, int64_t chunksPerPass)
      : LoweringBuilder(op.getLoc()), op(op), builder(builder), width(width),
        chunk(chunk), chunksPerPass(chunksPerPass), key(op.getKeySize()),
        value(op.getValueSize()), rowBlock(std::min(kRowBlock, width)),
        scoreRows(std::min(kScoreRows, width)),
        valueVectors(width >= 16 ? 4 : 2) {}

  /// Why the op has no chunked form, or nothing when it has one.
  static std::optional<StringRef> unsupported(RecurrenceOp op);

  /// Builds the three phases at the builder's insertion point and returns
  /// the values that replace the op's results.
  SmallVector<Value> build();

private:
  //===--------------------------------------------------------------------===//
  // Small builders
  //===--------------------------------------------------------------------===//

  Value constant(OpBuilder &b, float x) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(x));
  }
  // Vectors here are W lanes wide.
  Value zeros(OpBuilder &b) { return LoweringBuilder::zeros(b, width); }
  Value splat(OpBuilder &b, Value scalar) {
    return LoweringBuilder::splat(b, scalar, width);
  }
  Value add(OpBuilder &b, Value x, Value y) {
    return arith::AddIOp::create(b, loc, x, y);
  }
  Value sub(OpBuilder &b, Value x, Value y) {
    return arith::SubIOp::create(b, loc, x, y);
  }
  Value mulIndex(OpBuilder &b, Value x, int64_t y) {
    return arith::MulIOp::create(b, loc, x, index(b, y));
  }
  Value mulf(OpBuilder &b, Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y);
  }
  Value insert(OpBuilder &b, Value scalar, Value dest, ValueRange indices) {
    return tensor::InsertOp::create(b, loc, scalar, dest, indices);
  }
  /// W consecutive elements of `source` along its last axis from `indices`;
  /// lanes past the end read 0 unless `inBounds`.
  Value read(OpBuilder &b, Value source, ValueRange indices, bool inBounds) {
    return LoweringBuilder::read(b, source, indices, width, inBounds);
  }
  /// A zero-filled local tensor of static `shape`.
  Value zeroTensor(OpBuilder &b, ArrayRef<int64_t> shape) {
    Value empty = tensor::EmptyOp::create(b, loc, shape, f32);
    return linalg::FillOp::create(b, loc, ValueRange{constant(b, 0.0f)},
                                  ValueRange{empty})
        .getResult(0);
  }
  /// A slice of `source` (unit strides) of type `type`, which may drop unit
  /// dimensions.
  Value slice(OpBuilder &b, RankedTensorType type, Value source,
              ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes) {
    return tensor::ExtractSliceOp::create(
        b, loc, type, source, offsets, sizes,
        SmallVector<OpFoldResult>(offsets.size(), b.getIndexAttr(1)));
  }
  /// An scf.for from `lower` to `upper` (step `step`) with `init` carried.
  scf::ForOp
  loop(OpBuilder &b, Value lower, Value upper, int64_t step, ValueRange init,
       function_ref<SmallVector<Value>(OpBuilder &, Value, ValueRange)> body) {
    return scf::ForOp::create(
        b, loc, lower, upper, index(b, step), init,
        [&](OpBuilder &nb, Location, Value iv, ValueRange carried) {
          scf::YieldOp::create(nb, loc, body(nb, iv, carried));
        });
  }

  //===--------------------------------------------------------------------===//
  // Chunks
  //===--------------------------------------------------------------------===//

  /// Where chunk `local` of the pass lies: its first position and its
  /// length n <= C. Chunks are aligned with position 0 in both directions;
  /// a reverse recurrence walks each chunk, and the chunks, from the end.
  std::pair<Value, Value> chunkExtent(OpBuilder &b, Value local) {
    Value c = add(b, passFirst, local);
    if (op.getReverse())
      c = sub(b, sub(b, chunkCount, index(b, 1)), c);
    Value t0 = mulIndex(b, c, chunk);
    return {t0, minIndex(b, sub(b, lengthValue, t0), index(b, chunk))};
  }
  /// The local row (position - t0) of step i of a chunk of length n.
  Value rowOf(OpBuilder &b, Value i, Value n) {
    return op.getReverse() ? sub(b, sub(b, n, index(b, 1)), i) : i;
  }
  /// The position of step i.
  Value timeOf(OpBuilder &b, Value t0, Value i, Value n) {
    return add(b, t0, rowOf(b, i, n));
  }
  /// The decay factor exp(g_t (* delta_t)) of head h at position t, and
  /// delta_t (null without delta).
  std::pair<Value, Value> decayAt(OpBuilder &b, Value batchIv, Value t,
                                  Value head);

  /// A tile of vectors of W lanes along V: `count` vectors from lane
  /// `base`, the first `whole` of them wholly inside V (the one after, if
  /// any, is masked).
  struct ValueTile {
    Value base;
    int64_t count, whole;
  };
  /// The tiles of at most `valueVectors` vectors that cover V, each given to
  /// `body` with `carried`, which it returns updated: the full tiles in an
  /// scf.for (so that the IR does not grow with V), the rest after it.
  Value forEachValueTile(
      OpBuilder &b, Value carried,
      function_ref<Value(OpBuilder &, const ValueTile &, Value)> body) {
    int64_t whole = value / width, all = (value + width - 1) / width;
    int64_t fullTiles = whole / valueVectors;
    if (fullTiles == 1)
      carried = body(b, {index(b, 0), valueVectors, valueVectors}, carried);
    else if (fullTiles > 1)
      carried = loop(b, index(b, 0), index(b, fullTiles * valueVectors * width),
                     valueVectors * width, carried,
                     [&](OpBuilder &nb, Value base, ValueRange inner) {
                       return SmallVector<Value>{body(
                           nb, {base, valueVectors, valueVectors}, inner[0])};
                     })
                    .getResult(0);
    int64_t done = fullTiles * valueVectors;
    if (all > done)
      carried =
          body(b, {index(b, done * width), all - done, whole - done}, carried);
    return carried;
  }
  /// The lane where vector `x` of `tile` starts.
  Value tileColumn(OpBuilder &b, const ValueTile &tile, int64_t x) {
    return x ? add(b, tile.base, index(b, x * width)) : tile.base;
  }
  /// The tile's vectors of a row: `readAt(column, inBounds)` for each.
  SmallVector<Value>
  readTile(OpBuilder &b, const ValueTile &tile,
           function_ref<Value(OpBuilder &, Value, bool)> readAt) {
    SmallVector<Value> vectors;
    for (int64_t x = 0; x < tile.count; ++x)
      vectors.push_back(readAt(b, tileColumn(b, tile, x), x < tile.whole));
    return vectors;
  }
  /// Blocks of `block` rows over [lower, upper), then the rows left one at
  /// a time: `body(b, first, rows, carried)` builds `rows` (a static count)
  /// rows from `first` and returns the new `carried`. Exact bounds: no row
  /// is computed twice or past the end.
  Value
  blockedRows(OpBuilder &b, Value lower, Value upper, int64_t block,
              Value carried,
              function_ref<Value(OpBuilder &, Value, int64_t, Value)> body) {
    Value full =
        add(b, lower,
            mulIndex(b,
                     arith::DivSIOp::create(b, loc, sub(b, upper, lower),
                                            index(b, block)),
                     block));
    carried =
        loop(b, lower, full, block, carried,
             [&](OpBuilder &nb, Value first, ValueRange inner) {
               return SmallVector<Value>{body(nb, first, block, inner[0])};
             })
            .getResult(0);
    if (block == 1)
      return carried;
    return loop(b, full, upper, 1, carried,
                [&](OpBuilder &nb, Value first, ValueRange inner) {
                  return SmallVector<Value>{body(nb, first, 1, inner[0])};
                })
        .getResult(0);
  }
  /// first, first + 1, ..., first + count - 1.
  SmallVector<Value> consecutive(OpBuilder &b, Value first, int64_t count) {
    SmallVector<Value> values;
    for (int64_t r = 0; r < count; ++r)
      values.push_back(add(b, first, index(b, r)));
    return values;
  }
  /// The register block of the small matmuls: for `rows` output rows and
  /// the `vectors` vectors of W columns that `load(j)` returns for step j,
  /// the sums over j in [0, end) of `scalar(j, r) * load(j)[x]`, as
  /// rows x vectors accumulators (row after row).
  SmallVector<Value>
  productBlock(OpBuilder &b, int64_t rows, int64_t vectors, Value end,
               function_ref<SmallVector<Value>(OpBuilder &, Value)> load,
               function_ref<Value(OpBuilder &, Value, int64_t)> scalar) {
    SmallVector<Value> init(rows * vectors, zeros(b));
    return outerProducts(b, index(b, 0), end, init, rows, vectors, width, load,
                         scalar);
  }
  /// rows[i, :] = q at step i of the chunk, for i < n.
  Value copyQueries(OpBuilder &b, Value batchIv, Value groupIv, Value t0,
                    Value n, Value rows);
  /// Whether vector `j` along V lies wholly inside V.
  bool valueInBounds(int64_t j) const { return (j + 1) * width <= value; }

  //===--------------------------------------------------------------------===//
  // The phases
  //===--------------------------------------------------------------------===//

  /// Phase 1, one (batch, key group, chunk): the scores, then per head of
  /// the group the masked weights, the intra-chunk output (+ skip), the
  /// chunk's state contribution and its total decay.
  void buildIntraChunk(OpBuilder &b, Value batchIv, Value groupIv, Value c,
                       ValueRange shared);
  /// keysT[k, i] = k at step i of the chunk (zero past n).
  Value transposeKeys(OpBuilder &b, Value batchIv, Value groupIv, Value t0,
                      Value n, Value keysT);
  /// scores[i, j] = q_i . k_j (queries[i, :] . keysT[:, j]) for the column
  /// blocks of W on or below the diagonal (rows i >= the block's first
  /// column).
  Value buildScores(OpBuilder &b, Value n, Value queries, Value keysT,
                    Value scores);
  /// Per head: scalars[0, i] = a_i, scalars[1, i] = delta_i and
  /// scalars[2, j] = delta_j prod_{j < s < n} a_s (the weight of step j in
  /// the chunk's state); returns them and prod_s a_s.
  std::pair<Value, Value> buildChunkScalars(OpBuilder &b, Value batchIv,
                                            Value head, Value t0, Value n,
                                            Value scalars);
  /// weights[i, j] = scores[i, j] prod_{j < s <= i} a_s delta_j, 0 for
  /// j > i, on the blocks of the scores.
  Value buildWeights(OpBuilder &b, Value n, Value scores, Value scalars,
                     Value weights);
  /// rows[r(i), hl, :] = sum_{j <= i} weights[i, j] v_j (+ skip v_i).
  Value buildIntraOutput(OpBuilder &b, Value batchIv, Value head,
                         Value localHead, Value t0, Value n, Value weights,
                         Value rows);
  /// The chunk's state contribution sum_j scalars[2, j] k_j v_jᵀ into
  /// `state` [K, V], through scaled[j, :] = scalars[2, j] v_j.
  Value buildChunkState(OpBuilder &b, Value batchIv, Value head, Value t0,
                        Value n, Value keysT, Value scalars, Value scaled,
                        Value state);
  /// Phase 2, one (batch, head, key row): the states entering each chunk,
  /// in place of the contributions, and the final state.
  void buildStatePassing(OpBuilder &b, Value batchIv, Value head, Value k,
                         ValueRange shared);
  /// Phase 3, one (batch, head, chunk): rows += prod_{s <= i} a_s q_iᵀ S.
  void buildInterChunk(OpBuilder &b, Value batchIv, Value head, Value c,
                       ValueRange shared);

  RecurrenceOp op;
  OpBuilder &builder;
  int64_t width, chunk, chunksPerPass, key, value, rowBlock, scoreRows,
      valueVectors;
  OpFoldResult batch, length, heads, groups, headsPerGroup;
  Value lengthValue, chunkCount;
  /// The pass being built: its first chunk (in the order the recurrence
  /// runs) and its number of chunks.
  Value passFirst, passCount;
  /// Phase 1's total decays of the pass's chunks, read by phase 2.
  Value decays;
  /// Phase 2's result: the state entering each of the pass's chunks.
  Value entryStates;
};

} // namespace

std::optional<StringRef> ChunkLowering::unsupported(RecurrenceOp op) {
  if (op.getNormalize())
    return StringRef("RWKV-4's ratio form has no chunked form");
  if (ShapedType::isDynamic(op.getValueSize()) ||
      ShapedType::isDynamic(op.getKeySize()))
    return StringRef("K and V must be static");
  if (op.getValueSize() == 1)
    return StringRef("V = 1: the per-channel form keeps the state in "
                     "registers");
  if (!cast<RankedTensorType>(op.getV().getType()).getElementType().isF32())
    return StringRef("only f32 is lowered");
  DecayForm form = op.getDecayForm();
  if (form == DecayForm::PerKey || form == DecayForm::StaticPerKey)
    return StringRef("per-key decays have no safe factored mask");
  if (op.getBonus())
    return StringRef("bonus");
  return std::nullopt;
}

std::pair<Value, Value> ChunkLowering::decayAt(OpBuilder &b, Value batchIv,
                                               Value t, Value head) {
  Value g = op.getDecayForm() == DecayForm::PerHead
                ? element(b, op.getLogDecay(), {batchIv, t, head})
                : element(b, op.getLogDecay(), {head});
  Value dt;
  if (Value delta = op.getDelta()) {
    dt = element(b, delta, {batchIv, t, head});
    g = mulf(b, g, dt);
  }
  return {math::ExpOp::create(b, loc, g), dt};
}

//===----------------------------------------------------------------------===//
// Phase 1: within chunks
//===----------------------------------------------------------------------===//

Value ChunkLowering::transposeKeys(OpBuilder &b, Value batchIv, Value groupIv,
                                   Value t0, Value n, Value keysT) {
  // Scalar copies: K n of them, next to the K n W-lane FMAs per row block
  // of scores that read them.
  Value zero = index(b, 0);
  return loop(b, zero, n, 1, keysT,
              [&](OpBuilder &jb, Value j, ValueRange carried) {
                Value t = timeOf(jb, t0, j, n);
                return SmallVector<Value>{
                    loop(jb, index(jb, 0), index(jb, key), 1, carried,
                         [&](OpBuilder &kb, Value k, ValueRange inner) {
                           Value x =
                               element(kb, op.getK(), {batchIv, t, groupIv, k});
                           return SmallVector<Value>{
                               insert(kb, x, inner[0], {k, j})};
                         })
                        .getResult(0)};
              })
      .getResult(0);
}

Value ChunkLowering::copyQueries(OpBuilder &b, Value batchIv, Value groupIv,
                                 Value t0, Value n, Value rows) {
  // A contiguous copy, so that the rows of a register block are one base
  // pointer and constant offsets.
  int64_t vectors = (key + width - 1) / width;
  return loop(b, index(b, 0), n, 1, rows,
              [&](OpBuilder &nb, Value i, ValueRange carried) {
                Value t = timeOf(nb, t0, i, n);
                Value out = carried[0];
                for (int64_t x = 0; x < vectors; ++x) {
                  Value column = index(nb, x * width);
                  bool inBounds = (x + 1) * width <= key;
                  out = write(nb,
                              read(nb, op.getQ(), {batchIv, t, groupIv, column},
                                   inBounds),
                              out, {i, column}, inBounds);
                }
                return SmallVector<Value>{out};
              })
      .getResult(0);
}

Value ChunkLowering::buildScores(OpBuilder &b, Value n, Value queries,
                                 Value keysT, Value scores) {
  Value blocks = arith::CeilDivSIOp::create(b, loc, n, index(b, width));
  return loop(b, index(b, 0), blocks, 1, scores,
              [&](OpBuilder &cb, Value block, ValueRange carried) {
                Value column = mulIndex(cb, block, width);
                // Rows from the block's first column down: the blocks right
                // of the diagonal are never read.
                return SmallVector<Value>{blockedRows(
                    cb, column, n, scoreRows, carried[0],
                    [&](OpBuilder &rb, Value i0, int64_t count, Value out) {
                      SmallVector<Value> rows = consecutive(rb, i0, count);
                      SmallVector<Value> sums = productBlock(
                          rb, count, 1, index(rb, key),
                          [&](OpBuilder &kb, Value k) {
                            return SmallVector<Value>{
                                read(kb, keysT, {k, column}, true)};
                          },
                          [&](OpBuilder &kb, Value k, int64_t r) {
                            return queries ? element(kb, queries, {rows[r], k})
                                           : constant(kb, 1.0f);
                          });
                      for (int64_t r = 0; r < count; ++r)
                        out = write(rb, sums[r], out, {rows[r], column}, true);
                      return out;
                    })};
              })
      .getResult(0);
}

std::pair<Value, Value>
ChunkLowering::buildChunkScalars(OpBuilder &b, Value batchIv, Value head,
                                 Value t0, Value n, Value scalars) {
  Value zero = index(b, 0), one = index(b, 1), two = index(b, 2);
  Value lastRow = sub(b, n, one);
  scalars = loop(b, zero, n, 1, scalars,
                 [&](OpBuilder &nb, Value i, ValueRange carried) {
                   auto [a, dt] =
                       decayAt(nb, batchIv, timeOf(nb, t0, i, n), head);
                   Value next = insert(nb, a, carried[0], {index(nb, 0), i});
                   if (dt)
                     next = insert(nb, dt, next, {one, i});
                   return SmallVector<Value>{next};
                 })
                .getResult(0);
  // From the last step back: the decay a step's input still meets before
  // the chunk ends is the product of the factors after it (a product, not
  // the exponential of a difference: nothing can overflow).
  auto suffix =
      loop(b, zero, n, 1, ValueRange{scalars, constant(b, 1.0f)},
           [&](OpBuilder &nb, Value s, ValueRange carried) {
             Value i = sub(nb, lastRow, s);
             Value product = carried[1];
             Value weight =
                 op.getDelta()
                     ? mulf(nb, product, element(nb, carried[0], {one, i}))
                     : product;
             Value next = insert(nb, weight, carried[0], {two, i});
             product = mulf(nb, product, element(nb, next, {index(nb, 0), i}));
             return SmallVector<Value>{next, product};
           });
  return {suffix.getResult(0), suffix.getResult(1)};
}

Value ChunkLowering::buildWeights(OpBuilder &b, Value n, Value scores,
                                  Value scalars, Value weights) {
  Value zero = index(b, 0), one = index(b, 1);
  Value blocks = arith::CeilDivSIOp::create(b, loc, n, index(b, width));
  auto i32 = b.getI32Type();
  SmallVector<int32_t> lanes(width);
  for (int64_t l = 0; l < width; ++l)
    lanes[l] = static_cast<int32_t>(l);
  Value iota = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(VectorType::get({width}, i32),
                             ArrayRef<int32_t>(lanes)));
  Value ones = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(VectorType::get({width}, f32), 1.0f));
  return loop(
             b, zero, blocks, 1, weights,
             [&](OpBuilder &cb, Value block, ValueRange carried) {
               Value column = mulIndex(cb, block, width);
               Value deltas = op.getDelta()
                                  ? read(cb, scalars, {one, column}, true)
                                  : Value();
               // m[j] = prod_{j < s <= i} a_s for j <= i, 0 for j > i: each
               // row is the last times a_i, with a 1 entering at j = i.
               // Lanes past i stay exactly 0, which is the causal mask.
               auto rows = loop(
                   cb, column, n, 1, ValueRange{carried[0], zeros(cb)},
                   [&](OpBuilder &rb, Value i, ValueRange inner) {
                     Value a = element(rb, scalars, {index(rb, 0), i});
                     Value m = mulf(rb, splat(rb, a), inner[1]);
                     Value lane = arith::IndexCastOp::create(
                         rb, loc, i32, sub(rb, i, column));
                     Value diagonal = arith::CmpIOp::create(
                         rb, loc, arith::CmpIPredicate::eq, iota,
                         vector::BroadcastOp::create(
                             rb, loc, VectorType::get({width}, i32), lane));
                     m = arith::SelectOp::create(rb, loc, diagonal, ones, m);
                     Value w = mulf(rb, read(rb, scores, {i, column}, true), m);
                     if (deltas)
                       w = mulf(rb, w, deltas);
                     return SmallVector<Value>{
                         write(rb, w, inner[0], {i, column}, true), m};
                   });
               return SmallVector<Value>{rows.getResult(0)};
             })
      .getResult(0);
}

Value ChunkLowering::buildIntraOutput(OpBuilder &b, Value batchIv, Value head,
                                      Value localHead, Value t0, Value n,
                                      Value weights, Value rows) {
  Value skip =
      op.getSkip() ? splat(b, element(b, op.getSkip(), {head})) : Value();
  return forEachValueTile(
      b, rows, [&](OpBuilder &tb, const ValueTile &tile, Value tileRows) {
        int64_t count = tile.count;
        return blockedRows(
            tb, index(tb, 0), n, rowBlock, tileRows,
            [&](OpBuilder &rb, Value i0, int64_t rowCount, Value out) {
              // Weights past a row's diagonal are 0, and a block of rows lies
              // within one block of columns of the weights, so the block can
              // run to its last row's diagonal.
              SmallVector<Value> steps = consecutive(rb, i0, rowCount);
              Value end = add(rb, steps.back(), index(rb, 1));
              SmallVector<Value> sums = productBlock(
                  rb, rowCount, count, end,
                  [&](OpBuilder &jb, Value j) {
                    Value t = timeOf(jb, t0, j, n);
                    return readTile(
                        jb, tile,
                        [&](OpBuilder &xb, Value column, bool inBounds) {
                          return read(xb, op.getV(), {batchIv, t, head, column},
                                      inBounds);
                        });
                  },
                  [&](OpBuilder &jb, Value j, int64_t r) {
                    return element(jb, weights, {steps[r], j});
                  });
              for (int64_t r = 0; r < rowCount; ++r) {
                Value t = timeOf(rb, t0, steps[r], n);
                Value row = rowOf(rb, steps[r], n);
                for (int64_t x = 0; x < count; ++x) {
                  Value column = tileColumn(rb, tile, x);
                  Value o = sums[r * count + x];
                  if (skip)
                    o = fma(rb, skip,
                            read(rb, op.getV(), {batchIv, t, head, column},
                                 x < tile.whole),
                            o);
                  out = write(rb, o, out, {row, localHead, column},
                              x < tile.whole);
                }
              }
              return out;
            });
      });
}

Value ChunkLowering::buildChunkState(OpBuilder &b, Value batchIv, Value head,
                                     Value t0, Value n, Value keysT,
                                     Value scalars, Value scaled, Value state) {
  Value zero = index(b, 0), two = index(b, 2);
  int64_t vectors = (value + width - 1) / width;
  // scaled[j, :] = weight_j v_j, once per step rather than once per key.
  scaled = loop(b, zero, n, 1, scaled,
                [&](OpBuilder &jb, Value j, ValueRange carried) {
                  Value t = timeOf(jb, t0, j, n);
                  Value w = splat(jb, element(jb, scalars, {two, j}));
                  Value out = carried[0];
                  for (int64_t x = 0; x < vectors; ++x) {
                    Value column = index(jb, x * width);
                    Value vj = read(jb, op.getV(), {batchIv, t, head, column},
                                    valueInBounds(x));
                    out = write(jb, mulf(jb, w, vj), out, {j, column},
                                valueInBounds(x));
                  }
                  return SmallVector<Value>{out};
                })
               .getResult(0);
  return forEachValueTile(
      b, state, [&](OpBuilder &tb, const ValueTile &tile, Value tileState) {
        int64_t count = tile.count;
        return blockedRows(
            tb, index(tb, 0), index(tb, key), rowBlock, tileState,
            [&](OpBuilder &kb, Value k0, int64_t keyCount, Value out) {
              SmallVector<Value> keys = consecutive(kb, k0, keyCount);
              SmallVector<Value> sums = productBlock(
                  kb, keyCount, count, n,
                  [&](OpBuilder &jb, Value j) {
                    return readTile(
                        jb, tile,
                        [&](OpBuilder &xb, Value column, bool inBounds) {
                          return read(xb, scaled, {j, column}, inBounds);
                        });
                  },
                  [&](OpBuilder &jb, Value j, int64_t r) {
                    return element(jb, keysT, {keys[r], j});
                  });
              for (int64_t r = 0; r < keyCount; ++r)
                for (int64_t x = 0; x < count; ++x)
                  out =
                      write(kb, sums[r * count + x], out,
                            {keys[r], tileColumn(kb, tile, x)}, x < tile.whole);
              return out;
            });
      });
}

void ChunkLowering::buildIntraChunk(OpBuilder &b, Value batchIv, Value groupIv,
                                    Value c, ValueRange shared) {
  auto [t0, n] = chunkExtent(b, c);
  Value zero = index(b, 0);
  Value perGroup = getValueOrCreateConstantIndexOp(b, loc, headsPerGroup);
  Value firstHead = arith::MulIOp::create(b, loc, groupIv, perGroup);
  std::optional<int64_t> staticPerGroup = getConstantIntValue(headsPerGroup);
  int64_t perGroupSize = staticPerGroup.value_or(ShapedType::kDynamic);
  OpFoldResult one = b.getIndexAttr(1), zeroAttr = b.getIndexAttr(0);

  // This chunk's rows of the group's heads, [n, H/G, V]; their state
  // contributions [H/G, K, V] and total decays [H/G].
  SmallVector<OpFoldResult> rowOffsets = {batchIv, t0, firstHead, zeroAttr};
  SmallVector<OpFoldResult> rowSizes = {one, n, headsPerGroup,
                                        b.getIndexAttr(value)};
  Value rows = slice(
      b,
      RankedTensorType::get({ShapedType::kDynamic, perGroupSize, value}, f32),
      shared[0], rowOffsets, rowSizes);
  SmallVector<OpFoldResult> stateOffsets = {batchIv, firstHead, c, zeroAttr,
                                            zeroAttr};
  SmallVector<OpFoldResult> stateSizes = {
      one, headsPerGroup, one, b.getIndexAttr(key), b.getIndexAttr(value)};
  Value states =
      slice(b, RankedTensorType::get({perGroupSize, key, value}, f32),
            shared[1], stateOffsets, stateSizes);
  SmallVector<OpFoldResult> decayOffsets = {batchIv, firstHead, c};
  SmallVector<OpFoldResult> decaySizes = {one, headsPerGroup, one};
  Value totals = slice(b, RankedTensorType::get({perGroupSize}, f32), shared[2],
                       decayOffsets, decaySizes);

  // Local buffers, zero past n so that the unused lanes of full-width
  // vectors stay finite.
  Value keysT = zeroTensor(b, {key, chunk});
  keysT = transposeKeys(b, batchIv, groupIv, t0, n, keysT);
  Value queries;
  if (op.getQ())
    queries = copyQueries(
        b, batchIv, groupIv, t0, n,
        tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk, key}, f32));
  Value scores =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk, chunk}, f32);
  scores = buildScores(b, n, queries, keysT, scores);
  Value scalars = zeroTensor(b, {3, chunk});
  Value weights =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk, chunk}, f32);
  Value scaled =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk, value}, f32);

  auto headLoop = loop(
      b, zero, perGroup, 1,
      ValueRange{rows, states, totals, scalars, weights, scaled},
      [&](OpBuilder &hb, Value local, ValueRange carried) {
        Value head = add(hb, firstHead, local);
        auto [newScalars, total] =
            buildChunkScalars(hb, batchIv, head, t0, n, carried[3]);
        Value newWeights = buildWeights(hb, n, scores, newScalars, carried[4]);
        Value newRows = buildIntraOutput(hb, batchIv, head, local, t0, n,
                                         newWeights, carried[0]);
        SmallVector<OpFoldResult> tileOffsets = {local, zeroAttr, zeroAttr};
        SmallVector<OpFoldResult> tileSizes = {one, hb.getIndexAttr(key),
                                               hb.getIndexAttr(value)};
        Value state = slice(hb, RankedTensorType::get({key, value}, f32),
                            carried[1], tileOffsets, tileSizes);
        state = buildChunkState(hb, batchIv, head, t0, n, keysT, newScalars,
                                carried[5], state);
        Value newStates = tensor::InsertSliceOp::create(
            hb, loc, state, carried[1], tileOffsets, tileSizes,
            SmallVector<OpFoldResult>(3, one));
        Value newTotals = insert(hb, total, carried[2], {local});
        return SmallVector<Value>{newRows,    newStates,  newTotals,
                                  newScalars, newWeights, carried[5]};
      });

  auto inParallel = scf::InParallelOp::create(b, loc);
  publish(b, loc, inParallel, headLoop.getResult(0), shared[0], rowOffsets,
          rowSizes);
  publish(b, loc, inParallel, headLoop.getResult(1), shared[1], stateOffsets,
          stateSizes);
  publish(b, loc, inParallel, headLoop.getResult(2), shared[2], decayOffsets,
          decaySizes);
}

//===----------------------------------------------------------------------===//
// Phase 2: between chunks
//===----------------------------------------------------------------------===//

void ChunkLowering::buildStatePassing(OpBuilder &b, Value batchIv, Value head,
                                      Value k, ValueRange shared) {
  OpFoldResult one = b.getIndexAttr(1), zeroAttr = b.getIndexAttr(0);
  int64_t vectors = (value + width - 1) / width;
  // Row k of the pass's chunk states, [P, V], and of the running state.
  SmallVector<OpFoldResult> offsets = {batchIv, head, zeroAttr, k, zeroAttr};
  SmallVector<OpFoldResult> sizes = {one, one, b.getIndexAttr(chunksPerPass),
                                     one, b.getIndexAttr(value)};
  Value column = slice(b, RankedTensorType::get({chunksPerPass, value}, f32),
                       shared[0], offsets, sizes);
  SmallVector<OpFoldResult> runningOffsets = {batchIv, head, k, zeroAttr};
  SmallVector<OpFoldResult> runningSizes = {one, one, one,
                                            b.getIndexAttr(value)};
  Value running = slice(b, RankedTensorType::get({value}, f32), shared[1],
                        runningOffsets, runningSizes);
  SmallVector<Value> init = {column};
  for (int64_t x = 0; x < vectors; ++x)
    init.push_back(read(b, running, {index(b, x * width)}, valueInBounds(x)));
  auto passing = loop(
      b, index(b, 0), passCount, 1, init,
      [&](OpBuilder &nb, Value c, ValueRange carried) {
        Value decay = splat(nb, element(nb, decays, {batchIv, head, c}));
        Value out = carried[0];
        SmallVector<Value> next = {Value()};
        for (int64_t x = 0; x < vectors; ++x) {
          Value offset = index(nb, x * width);
          Value contribution = read(nb, out, {c, offset}, valueInBounds(x));
          out = write(nb, carried[1 + x], out, {c, offset}, valueInBounds(x));
          next.push_back(fma(nb, decay, carried[1 + x], contribution));
        }
        next[0] = out;
        return next;
      });
  for (int64_t x = 0; x < vectors; ++x)
    running = write(b, passing.getResult(1 + x), running, {index(b, x * width)},
                    valueInBounds(x));
  auto inParallel = scf::InParallelOp::create(b, loc);
  publish(b, loc, inParallel, passing.getResult(0), shared[0], offsets, sizes);
  publish(b, loc, inParallel, running, shared[1], runningOffsets, runningSizes);
}

//===----------------------------------------------------------------------===//
// Phase 3: the state entering each chunk, read out
//===----------------------------------------------------------------------===//

void ChunkLowering::buildInterChunk(OpBuilder &b, Value batchIv, Value head,
                                    Value c, ValueRange shared) {
  auto [t0, n] = chunkExtent(b, c);
  Value zero = index(b, 0);
  Value groupIv =
      groupOf(b, loc, head, heads, groups, dyn_cast<Value>(headsPerGroup));
  OpFoldResult one = b.getIndexAttr(1), zeroAttr = b.getIndexAttr(0);
  SmallVector<OpFoldResult> rowOffsets = {batchIv, t0, head, zeroAttr};
  SmallVector<OpFoldResult> rowSizes = {one, n, one, b.getIndexAttr(value)};
  Value rows =
      slice(b, RankedTensorType::get({ShapedType::kDynamic, value}, f32),
            shared[0], rowOffsets, rowSizes);
  Value state =
      slice(b, RankedTensorType::get({key, value}, f32), entryStates,
            {batchIv, head, c, zeroAttr, zeroAttr},
            {one, one, one, b.getIndexAttr(key), b.getIndexAttr(value)});
  Value queries;
  if (op.getQ())
    queries = copyQueries(
        b, batchIv, groupIv, t0, n,
        tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk, key}, f32));

  // prefix[i] = prod_{s <= i} a_s: how much of the entering state is left
  // at step i.
  Value prefix = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{chunk}, f32);
  prefix =
      loop(b, zero, n, 1, ValueRange{prefix, constant(b, 1.0f)},
           [&](OpBuilder &nb, Value i, ValueRange carried) {
             Value a = decayAt(nb, batchIv, timeOf(nb, t0, i, n), head).first;
             Value product = mulf(nb, carried[1], a);
             return SmallVector<Value>{insert(nb, product, carried[0], {i}),
                                       product};
           })
          .getResult(0);

  rows = forEachValueTile(
      b, rows, [&](OpBuilder &tb, const ValueTile &tile, Value tileRows) {
        int64_t count = tile.count;
        return blockedRows(
            tb, index(tb, 0), n, rowBlock, tileRows,
            [&](OpBuilder &rb, Value i0, int64_t rowCount, Value out) {
              SmallVector<Value> steps = consecutive(rb, i0, rowCount);
              SmallVector<Value> sums = productBlock(
                  rb, rowCount, count, index(rb, key),
                  [&](OpBuilder &kb, Value k) {
                    return readTile(
                        kb, tile,
                        [&](OpBuilder &xb, Value column, bool inBounds) {
                          return read(xb, state, {k, column}, inBounds);
                        });
                  },
                  [&](OpBuilder &kb, Value k, int64_t r) {
                    return queries ? element(kb, queries, {steps[r], k})
                                   : constant(kb, 1.0f);
                  });
              for (int64_t r = 0; r < rowCount; ++r) {
                Value p = splat(rb, element(rb, prefix, {steps[r]}));
                Value row = rowOf(rb, steps[r], n);
                for (int64_t x = 0; x < count; ++x) {
                  Value column = tileColumn(rb, tile, x);
                  Value old = read(rb, out, {row, column}, x < tile.whole);
                  out = write(rb, fma(rb, p, sums[r * count + x], old), out,
                              {row, column}, x < tile.whole);
                }
              }
              return out;
            });
      });
  auto inParallel = scf::InParallelOp::create(b, loc);
  publish(b, loc, inParallel, rows, shared[0], rowOffsets, rowSizes);
}

//===----------------------------------------------------------------------===//
// The three phases
//===----------------------------------------------------------------------===//

SmallVector<Value> ChunkLowering::build() {
  OpBuilder &b = builder;
  Value v = op.getV();
  batch = tensor::getMixedSize(b, loc, v, 0);
  length = tensor::getMixedSize(b, loc, v, 1);
  heads = tensor::getMixedSize(b, loc, v, 2);
  groups = tensor::getMixedSize(b, loc, op.getK(), 2);
  std::optional<int64_t> staticHeads = getConstantIntValue(heads),
                         staticGroups = getConstantIntValue(groups);
  if (staticHeads && staticGroups)
    headsPerGroup = b.getIndexAttr(*staticHeads / *staticGroups);
  else
    headsPerGroup = arith::DivSIOp::create(
                        b, loc, getValueOrCreateConstantIndexOp(b, loc, heads),
                        getValueOrCreateConstantIndexOp(b, loc, groups))
                        .getResult();
  lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  chunkCount = arith::CeilDivSIOp::create(b, loc, lengthValue, index(b, chunk));

  auto empty = [&](ArrayRef<OpFoldResult> sizes) -> Value {
    SmallVector<int64_t> shape;
    SmallVector<Value> dynamic;
    for (OpFoldResult size : sizes) {
      std::optional<int64_t> s = getConstantIntValue(size);
      shape.push_back(s.value_or(ShapedType::kDynamic));
      if (!s)
        dynamic.push_back(cast<Value>(size));
    }
    return tensor::EmptyOp::create(b, loc, shape, f32, dynamic);
  };
  OpFoldResult keySize = b.getIndexAttr(key), valueSize = b.getIndexAttr(value);
  OpFoldResult perPass = b.getIndexAttr(chunksPerPass);

  // The running state of every (batch, head), from pass to pass: the
  // initial state (copied by bufferization: inputs are read-only) or zeros.
  Value running;
  if (Value init = op.getInitialState())
    running = init;
  else
    running = linalg::FillOp::create(
                  b, loc, ValueRange{constant(b, 0.0f)},
                  ValueRange{empty({batch, heads, keySize, valueSize})})
                  .getResult(0);

  // Passes of P chunks: the chunks' states [B, H, P, K, V] live only for a
  // pass, so that this scratch stays small however long the sequence.
  Value passes =
      arith::CeilDivSIOp::create(b, loc, chunkCount, index(b, chunksPerPass));
  auto passLoop = loop(
      b, index(b, 0), passes, 1,
      ValueRange{empty({batch, length, heads, valueSize}), running,
                 empty({batch, heads, perPass, keySize, valueSize}),
                 empty({batch, heads, perPass})},
      [&](OpBuilder &pb, Value pass, ValueRange carried) {
        passFirst = mulIndex(pb, pass, chunksPerPass);
        passCount = minIndex(pb, sub(pb, chunkCount, passFirst),
                             index(pb, chunksPerPass));
        // Phase 1, in parallel over (batch, key group, chunk).
        auto intra = scf::ForallOp::create(
            pb, loc, ArrayRef<OpFoldResult>{batch, groups, passCount},
            ValueRange{carried[0], carried[2], carried[3]},
            /*mapping=*/std::nullopt,
            [&](OpBuilder &nb, Location, ValueRange args) {
              buildIntraChunk(nb, args[0], args[1], args[2],
                              args.drop_front(3));
            });
        decays = intra.getResult(2);
        // Phase 2, in parallel over (batch, head, key row).
        auto passing = scf::ForallOp::create(
            pb, loc, ArrayRef<OpFoldResult>{batch, heads, keySize},
            ValueRange{intra.getResult(1), carried[1]},
            /*mapping=*/std::nullopt,
            [&](OpBuilder &nb, Location, ValueRange args) {
              buildStatePassing(nb, args[0], args[1], args[2],
                                args.drop_front(3));
            });
        entryStates = passing.getResult(0);
        // Phase 3, in parallel over (batch, head, chunk).
        auto inter = scf::ForallOp::create(
            pb, loc, ArrayRef<OpFoldResult>{batch, heads, passCount},
            ValueRange{intra.getResult(0)}, /*mapping=*/std::nullopt,
            [&](OpBuilder &nb, Location, ValueRange args) {
              buildInterChunk(nb, args[0], args[1], args[2],
                              args.drop_front(3));
            });
        return SmallVector<Value>{inter.getResult(0), passing.getResult(1),
                                  passing.getResult(0), intra.getResult(2)};
      });

  SmallVector<Value> results = {passLoop.getResult(0)};
  if (op.getFinalState())
    results.push_back(passLoop.getResult(1));
  return results;
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

/// The state tile of glint-vectorize-recurrence's matrix form (its
/// `state-tile-bytes` default, which the pipelines keep).
static constexpr int64_t kRecurrentTileBytes = 16384;

/// The parallel work items per batch element of glint-vectorize-recurrence's
/// matrix form, as it splits them: min(H, 2) chunks of heads (its `chunks`
/// default) times the K x Vt state tiles along V.
static int64_t recurrentItemsPerBatch(RecurrenceOp op, int64_t width) {
  int64_t key = op.getKeySize(), value = op.getValueSize();
  int64_t heads = op.getNumHeads();
  int64_t headChunks =
      ShapedType::isDynamic(heads) ? 2 : std::min<int64_t>(heads, 2);
  int64_t tileWidth = value;
  if (value >= width) {
    int64_t fit = kRecurrentTileBytes / (4 * key * width);
    int64_t needed = (value + width - 1) / width;
    tileWidth =
        width * std::clamp<int64_t>(fit, 1, std::min<int64_t>(4, needed));
  }
  return headChunks * ((value + tileWidth - 1) / tileWidth);
}

/// The op-count model behind form=auto: per step and head, the recurrent
/// form scales, updates and reads out the K x V state (3 K V vector ops);
/// the chunked form adds each step to its chunk's state and reads the
/// entering state (2 K V FMAs) and spends C V / 2 on the masked intra-chunk
/// product and C K / 2 on the scores, shared by the H / G heads of a key
/// group. Whether the chunked form does clearly less work: at most
/// `chunkedWorkLimit(width)` of the recurrent form's. Measured on one
/// thread (see the pass description), chunked over recurrent, W = 8 (AVX2,
/// AMD Zen 2): model ratio 0.76 ran 1.35-1.37x, 0.79 1.05-1.29x, 0.83
/// 1.11-1.20x, 0.92 0.99-1.04x, 1.08 0.66-0.69x, 1.17 0.48-0.55x; W = 16
/// (AVX-512, Intel Xeon), where the recurrent form's K x Vt tile is four
/// 16-lane rows per key: 0.76 1.00-1.09x, 0.79 0.84-0.98x, 0.92 0.77-0.81x.
static double chunkedWorkLimit(int64_t width) {
  return width >= 16 ? 0.77 : 0.9;
}

static bool chunkedDoesLessWork(RecurrenceOp op, int64_t chunk,
                                int64_t width) {
  int64_t key = op.getKeySize(), value = op.getValueSize();
  int64_t heads = op.getNumHeads(), groups = op.getNumKeyGroups();
  int64_t perGroup =
      !ShapedType::isDynamic(heads) && !ShapedType::isDynamic(groups)
          ? heads / groups
          : 1;
  double chunked =
      2.0 * key * value + chunk * value / 2.0 + chunk * key / (2.0 * perGroup);
  return chunked <= chunkedWorkLimit(width) * 3.0 * key * value;
}

/// Chunks per pass: as many as keep a batch element's chunk states within
/// 4 MiB (shared cache, not memory, between the phases), between twice the
/// threads and 64, a multiple of the threads so that a pass divides evenly.
/// Each pass is three parallel regions, so few heads want long passes.
static int64_t defaultChunksPerPass(RecurrenceOp op, int64_t threads) {
  int64_t heads = op.getNumHeads();
  int64_t perChunk = (ShapedType::isDynamic(heads) ? 1 : heads) *
                     op.getKeySize() * op.getValueSize() * 4;
  int64_t fit = (int64_t(4) << 20) / std::max<int64_t>(perChunk, 1);
  int64_t chunks =
      std::clamp<int64_t>(fit, 2 * threads, std::max<int64_t>(64, 2 * threads));
  return std::max<int64_t>(chunks / threads * threads, threads);
}

namespace {
/// The shape of the chunked code: vector width, chunk size, chunks per
/// pass.
struct ChunkParameters {
  int64_t width = 0, chunk = 0, perPass = 0;
};

struct ChunkRecurrencePass
    : public glint::impl::GlintChunkRecurrenceBase<ChunkRecurrencePass> {
  using GlintChunkRecurrenceBase::GlintChunkRecurrenceBase;

  /// Builds the chunked form of `op` at the rewriter's insertion point,
  /// inline or (with `outline`) as a call of a shared private function;
  /// `results` replace the op's.
  void chunked(RecurrenceOp op, RewriterBase &rewriter,
               const ChunkParameters &parameters,
               SmallVectorImpl<Value> &results);

  /// With form=auto: whether the chunked form runs `op`, as a constant or
  /// a condition on B and L built before `op` (null: the recurrent form).
  Value autoCondition(OpBuilder &b, RecurrenceOp op, int64_t width,
                      int64_t chunk, int64_t threadCount);

  void runOnOperation() override;

  SymbolTable *symbols = nullptr;
};
} // namespace

Value ChunkRecurrencePass::autoCondition(OpBuilder &b, RecurrenceOp op,
                                         int64_t width, int64_t chunk,
                                         int64_t threadCount) {
  Location loc = op.getLoc();
  // A chunk per thread at least: shorter, the chunked form cannot spread
  // its work over the threads (measured at two threads, one chunk: 0.5x).
  int64_t shortest = minLength > 0 ? int64_t(minLength) : chunk * threadCount;
  bool lessWork = chunkedDoesLessWork(op, chunk, width);
  int64_t items = recurrentItemsPerBatch(op, width);
  // More work and no threads to gain (even at B = 1): never. With 16 lanes
  // the recurrent form on one thread outran the chunked form on two
  // (measured: H = 1, K = 128, V = 32, 1.19-1.27x), so idle threads alone
  // do not choose it there.
  if (!lessWork && (items >= threadCount || width >= 16))
    return Value();
  auto v = cast<RankedTensorType>(op.getV().getType());
  auto constantIndex = [&](int64_t i) {
    return arith::ConstantIndexOp::create(b, loc, i);
  };
  auto size = [&](int64_t dim) -> Value {
    return tensor::DimOp::create(b, loc, op.getV(), dim);
  };
  Value condition;
  if (!v.isDynamicDim(1)) {
    if (v.getDimSize(1) < shortest)
      return Value();
  } else {
    condition = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                      size(1), constantIndex(shortest));
  }
  // With more work, only where the recurrent form leaves threads idle.
  if (!lessWork) {
    Value idle;
    if (!v.isDynamicDim(0)) {
      if (v.getDimSize(0) * items >= threadCount)
        return Value();
    } else {
      idle = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::slt,
          arith::MulIOp::create(b, loc, size(0), constantIndex(items)),
          constantIndex(threadCount));
    }
    if (idle)
      condition =
          condition ? arith::AndIOp::create(b, loc, condition, idle).getResult()
                    : idle;
  }
  if (!condition)
    condition = arith::ConstantIntOp::create(b, loc, 1, 1);
  return condition;
}

/// What makes two recurrences lower to the same chunked code: their types,
/// which optional operands they have, and their direction.
static std::string kernelSignature(RecurrenceOp op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << op->getOperandTypes() << " -> " << op->getResultTypes() << " q"
     << bool(op.getQ()) << " delta" << bool(op.getDelta()) << " skip"
     << bool(op.getSkip()) << " init" << bool(op.getInitialState())
     << " reverse" << op.getReverse();
  return text;
}

void ChunkRecurrencePass::chunked(RecurrenceOp op, RewriterBase &rewriter,
                                  const ChunkParameters &parameters,
                                  SmallVectorImpl<Value> &results) {
  if (!outline) {
    results = ChunkLowering(op, rewriter, parameters.width, parameters.chunk,
                            parameters.perPass)
                  .build();
    return;
  }
  // A private function per signature and parameters, created on first use:
  // a model repeats the same recurrence in every layer, and one copy keeps
  // the generated code (and LLVM's time on it) independent of the depth.
  ModuleOp module = getOperation();
  std::string signature =
      kernelSignature(op) + llvm::formatv(" W{0} C{1} P{2}", parameters.width,
                                          parameters.chunk, parameters.perPass)
                                .str();
  func::FuncOp kernel;
  for (auto fn : module.getOps<func::FuncOp>())
    if (auto attr = fn->getAttrOfType<StringAttr>(
            GlintDialect::kChunkedRecurrenceAttrName))
      if (attr.getValue() == signature)
        kernel = fn;
  if (!kernel) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToEnd(module.getBody());
    Location loc = op.getLoc();
    kernel = func::FuncOp::create(
        rewriter, loc, "__glint_chunked_recurrence",
        rewriter.getFunctionType(op->getOperandTypes(), op->getResultTypes()));
    kernel.setPrivate();
    kernel->setAttr(GlintDialect::kChunkedRecurrenceAttrName,
                    rewriter.getStringAttr(signature));
    symbols->insert(kernel); // Renamed if the name is taken.
    Block *entry = kernel.addEntryBlock();
    rewriter.setInsertionPointToStart(entry);
    IRMapping mapping;
    mapping.map(op->getOperands(), entry->getArguments());
    auto copy = cast<RecurrenceOp>(rewriter.clone(*op, mapping));
    copy->removeAttr(GlintDialect::kStateAttrName);
    rewriter.setInsertionPoint(copy);
    SmallVector<Value> built =
        ChunkLowering(copy, rewriter, parameters.width, parameters.chunk,
                      parameters.perPass)
            .build();
    rewriter.setInsertionPoint(copy);
    func::ReturnOp::create(rewriter, loc, built);
    rewriter.eraseOp(copy);
  }
  auto call =
      func::CallOp::create(rewriter, op.getLoc(), kernel, op->getOperands());
  results.assign(call->result_begin(), call->result_end());
}

void ChunkRecurrencePass::runOnOperation() {
  if (chunkSize < 1) {
    getOperation()->emitError()
        << "glint-chunk-recurrence: chunk-size must be positive, not "
        << chunkSize;
    return signalPassFailure();
  }
  if (threads < 1) {
    getOperation()->emitError()
        << "glint-chunk-recurrence: threads must be positive, not " << threads;
    return signalPassFailure();
  }
  if (failed(
          glint::checkVectorWidth(getOperation(), getArgument(), vectorWidth)))
    return signalPassFailure();
  if (form == RecurrenceForm::Recurrent)
    return;
  ChunkParameters parameters;
  parameters.width = vectorWidth;
  // Whole vectors of columns per chunk.
  parameters.chunk =
      (chunkSize + parameters.width - 1) / parameters.width * parameters.width;
  int64_t threadCount = threads;
  SmallVector<RecurrenceOp> recurrences;
  getOperation()->walk([&](RecurrenceOp op) {
    if (std::optional<StringRef> why = ChunkLowering::unsupported(op)) {
      LLVM_DEBUG(llvm::dbgs() << "left to the recurrent forms (" << *why
                              << "): " << op << "\n");
      return;
    }
    recurrences.push_back(op);
  });
  SymbolTable symbolTable(getOperation());
  symbols = &symbolTable;
  IRRewriter rewriter(&getContext());
  for (RecurrenceOp op : recurrences) {
    parameters.perPass = chunksPerPass > 0
                             ? int64_t(chunksPerPass)
                             : defaultChunksPerPass(op, threadCount);
    rewriter.setInsertionPoint(op);
    Value condition;
    if (form == RecurrenceForm::Auto) {
      condition = autoCondition(rewriter, op, parameters.width,
                                parameters.chunk, threadCount);
      if (!condition)
        continue;
      std::optional<int64_t> constant = getConstantIntValue(condition);
      if (constant && *constant) {
        rewriter.eraseOp(condition.getDefiningOp());
        condition = Value();
      }
    }
    SmallVector<Value> results;
    if (!condition) {
      chunked(op, rewriter, parameters, results);
      rewriter.replaceOp(op, results);
      continue;
    }
    // Chosen at run time: the chunked form, or the op itself, for
    // glint-vectorize-recurrence.
    auto choice = scf::IfOp::create(rewriter, op.getLoc(), op->getResultTypes(),
                                    condition,
                                    /*withElseRegion=*/true);
    rewriter.setInsertionPointToStart(choice.thenBlock());
    chunked(op, rewriter, parameters, results);
    scf::YieldOp::create(rewriter, op.getLoc(), results);
    rewriter.setInsertionPointToStart(choice.elseBlock());
    Operation *recurrent = rewriter.clone(*op);
    scf::YieldOp::create(rewriter, op.getLoc(), recurrent->getResults());
    rewriter.replaceOp(op, choice.getResults());
  }
}
