//===- VectorizeRecurrence.cpp - glint-vectorize-recurrence ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the `glint.recurrence` ops that have a fast vector form to loops on
// tensors with `vector` arithmetic; the others are left to
// glint-lower-recurrence (the scalar form, which the reference evaluator
// checks op by op). Two forms, W = the vector width (16 f32 on AVX-512):
//
// Per-channel (V = 1: Mamba-1, Vision Mamba, Griffin's RG-LRU). One head per
// channel, so W heads side by side fill a vector and the K-entry state of W
// channels is K vectors, carried in registers through the time loop:
//
//   scf.forall (%b, %chunk) in (B, chunks) {      -- blocks of W channels
//     scf.for %tb (time blocks of Tb steps) {
//       scf.for %blk in chunk {                    -- c0 = blk * W
//         S_n = states[blk, n]; A_n = packed A[c0 : c0+W, n]
//         scf.for %t in tb iter_args(%S0 .. %S{K-1} : vector<W>, %rows) {
//           u = v[b, t, c0 : c0+W]; dt = delta[b, t, c0 : c0+W]; x = dt * u
//           for n in 0 .. K (unrolled):
//             S_n = exp(dt * A_n) * S_n + k_t[n] * x   (k_t[n] broadcast when
//             y  += q_t[n] * S_n                         shared by all heads)
//           rows[t, c0 : c0+W] = y + D * u
//         }
//         states[blk] = S
//       }
//     }
//   }
//
// Why time blocks: a block of W channels over time reads one 64-byte line
// per row, and the rows are 4 H bytes apart, a new page at every step, where
// the hardware prefetchers stop; running all the chunk's blocks over a few
// steps before moving on reads each row as one run of consecutive lines
// (measured: 2-3x at L = 8192, see the commit). One chunk per core.
//
// Matrix state (V > 1: Mamba-2, RWKV-6, GLA, HGRN-2, RetNet). The K x V state
// of a head is tiled along V into K x Vt tiles small enough for L1 (Vt a
// multiple of W, K * Vt floats <= state-tile-bytes). A chunk of heads runs
// time blocks too, one head after the other; steps go in pairs, so that one
// pass over the tile (each row loaded and stored once) serves two steps:
//
//   scf.forall (%b, %chunk, %vt) in (B, chunks, ceil(V / Vt)) {
//     scf.for %tb { scf.for %h in chunk {
//       scf.for %pair in tb iter_args(%S : tensor<K x Vt>, %rows, %a) {
//         prefetch q, k, v, g rows of t + distance
//         v_t[v0 : v0+Vt] as R = Vt / W vectors, for both steps t
//         o_tj = bonus ? (q_t . (u (.) k_t)) v_tj : 0
//         scf.for %k = 0 to K iter_args(%S, %o..) {
//           s_j = S[k, j*W : (j+1)*W]
//           for t in pair: s_j = a_t[k] s_j + k_t[k] v_tj; o_tj += q_t[k] s_j
//           S[k, j*W ...] = s_j    (bonus: o_tj reads s_j before the update)
//         }
//         rows[t, h, v0 : v0+Vt] = o_t + skip * v_t;  %a = exp(g) of the
//                                                      next pair
//       }
//       the last step of an odd block alone (a loop of 0 or 1 iteration:
//       an scf.if made bufferization copy the tile)
//     } }
//   }
//
// Both read and write through 1-D `vector.transfer_read/write` along a
// contiguous axis; where the channel count or V is not a multiple of the
// tile, the last tile's transfers are masked (out-of-bounds lanes read 0
// and are not written), so no scalar remainder loop is needed. The decay's
// `math.exp` stays an op: glint-approximate-math turns it into a polynomial
// later. Prefetches go through `bufferization.to_buffer ... read_only` of
// the inputs, which bufferization replaces by their buffers. Summation
// orders differ from the op's reference order (they are vector orders), so
// this pass is checked by compiling and running against the float64
// reference evaluator (test/unit/VectorizeRecurrenceTest.cpp).
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/BuilderUtils.h"
#include "passes/cpu/ChannelScan.h"
#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/TargetParser/Host.h"

#define DEBUG_TYPE "glint-vectorize-recurrence"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVECTORIZERECURRENCE
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

using DecayForm = RecurrenceOp::DecayForm;

namespace {

/// What both vector forms share: the op, the builder, and small builders of
/// vector arithmetic.
class VectorRecurrenceLowering : protected LoweringBuilder {
public:
  VectorRecurrenceLowering(RecurrenceOp op, RewriterBase &rewriter,
                           int64_t width)
      : LoweringBuilder(op.getLoc()), op(op), rewriter(rewriter), width(width),
        key(op.getKeySize()), value(op.getValueSize()) {}

protected:
  Value zeroF32(OpBuilder &b) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  }
  Value add(OpBuilder &b, Value x, Value y) {
    return arith::AddFOp::create(b, loc, x, y);
  }
  Value mul(OpBuilder &b, Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y);
  }
  Value exp(OpBuilder &b, Value x) { return math::ExpOp::create(b, loc, x); }

  /// t = reverse ? L - 1 - s : s.
  Value timeIndex(OpBuilder &b, Value step, Value last) {
    return last ? arith::SubIOp::create(b, loc, last, step).getResult() : step;
  }

  RecurrenceOp op;
  RewriterBase &rewriter;
  int64_t width, key, value;
};

//===----------------------------------------------------------------------===//
// Per-channel form (V = 1)
//===----------------------------------------------------------------------===//

class ChannelLowering : public VectorRecurrenceLowering {
public:
  ChannelLowering(RecurrenceOp op, RewriterBase &rewriter, int64_t width,
                  int64_t timeBlock, int64_t channelChunks, int64_t keyBlock,
                  int64_t checkpointEvery = 0)
      : VectorRecurrenceLowering(op, rewriter, width),
        timeBlock(std::max<int64_t>(timeBlock, 1)),
        channelChunks(std::max<int64_t>(channelChunks, 1)),
        keyBlock(keyBlock > 0 ? keyBlock
                 : width <= 8 ? 8
                              : 16),
        checkpointEvery(checkpointEvery) {}

  /// Whether the op has the per-channel form: V = 1, K small enough to keep
  /// K vectors in registers, keys and queries either shared by every head
  /// (one key group) or one per head with K = 1, and a decay that is read
  /// along the channel axis.
  static bool matches(RecurrenceOp op);
  /// Replaces the op; returns the checkpoints with `checkpointEvery` (see
  /// lowerChannelRecurrenceWithCheckpoints), else null.
  Value lower();

private:
  /// One chunk of channel blocks of one batch element, all time blocks.
  void buildChunk(OpBuilder &b, Value batchIv, Value chunkIv,
                  ValueRange shared);
  /// One step of one block at time t: the K new state vectors, then y.
  /// With `prior` (the read-out of the keys before `keyBegin`), only keys
  /// [keyBegin, keyBegin + state.size()) are updated and y is prior + their
  /// read-out; without, y also has the skip term.
  SmallVector<Value> buildStep(OpBuilder &b, Value batchIv, Value t, Value c0,
                               bool inBounds, ArrayRef<Value> perKeyDecay,
                               Value headDecay, Value skip, ValueRange state,
                               int64_t keyBegin, Value prior);
  /// Offset and width (<= W) of a channel block.
  std::pair<Value, Value> blockExtent(OpBuilder &b, Value blockIv);
  /// `source[c0 + lane, n, ...]` for each n < K as K vectors over the lanes
  /// of the block (lanes past the block's width repeat its last channel).
  SmallVector<Value> gatherPerKey(OpBuilder &b, Value source, Value batchIv,
                                  Value c0, Value blockWidth);
  /// Writes lane `lane` < blockWidth of each state vector into
  /// `dest[row + lane, n]` (a [w, K] tensor).
  Value scatterState(OpBuilder &b, ValueRange state, Value dest, Value row,
                     Value blockWidth);
  /// The K vectors in a [..., K, W] tensor at `prefix`.
  SmallVector<Value> readTile(OpBuilder &b, Value source,
                              ArrayRef<Value> prefix);
  /// The [K, W] tile of `source` at `prefix`.
  Value tileSlice(OpBuilder &b, Value source, ArrayRef<OpFoldResult> prefix);
  /// `tile` with the K vectors written into it.
  Value writeTile(OpBuilder &b, ValueRange vectors, Value tile);
  /// `states` ([..., K, W]) with the K vectors stored at `prefix`.
  Value storeTile(OpBuilder &b, ValueRange vectors, Value states,
                  ArrayRef<Value> prefix);

  int64_t timeBlock, channelChunks;
  /// State vectors per pass over a time block (the rest wait in memory): the
  /// K vectors of a Mamba-1 block and their decays do not fit AVX2's 16
  /// registers at once. Given as 0 (or less): 8 with 8 lanes or fewer, else
  /// 16.
  int64_t keyBlock;
  /// Steps between the states kept for a backward scan (0: none kept); a
  /// multiple of timeBlock.
  int64_t checkpointEvery;
  /// Channel blocks per forall iteration, and whether every chunk is full.
  int64_t chunkBlocks = 1;
  bool fullChunks = false;
  /// Keys / queries: either one row shared by all heads, or [B, L, H].
  bool sharedKeys = false;
  Value values, keys, queries, logDecay;
  /// StaticPerKey: the decay (or its exp, without delta) packed per block,
  /// [blocks, K, W].
  Value packedDecay;
  DecayForm decayForm = DecayForm::PerHead;
  OpFoldResult batch, length, heads, blocks;
  /// Whether every block is full (H static and a multiple of W).
  bool fullBlocks = false;
};

} // namespace

bool ChannelLowering::matches(RecurrenceOp op) {
  if (op.getNormalize() || op.getBonus() || op.getValueSize() != 1 ||
      !cast<RankedTensorType>(op.getV().getType()).getElementType().isF32())
    return false;
  int64_t key = op.getKeySize(), groups = op.getNumKeyGroups(),
          heads = op.getNumHeads();
  if (ShapedType::isDynamic(key) || key > 64)
    return false;
  // Keys and queries along the channel axis: one group shared by every
  // head, or a group per head with one key (a contiguous [B, L, H] row).
  bool shared = groups == 1;
  bool perChannel =
      key == 1 && !ShapedType::isDynamic(groups) && groups == heads;
  if (!shared && !perChannel)
    return false;
  // A per-key data-dependent decay is contiguous along heads only if K = 1.
  if (op.getDecayForm() == DecayForm::PerKey && key != 1)
    return false;
  return true;
}

std::pair<Value, Value> ChannelLowering::blockExtent(OpBuilder &b,
                                                     Value blockIv) {
  Value c0 = arith::MulIOp::create(b, loc, blockIv, index(b, width));
  if (fullBlocks)
    return {c0, index(b, width)};
  Value headCount = getValueOrCreateConstantIndexOp(b, loc, heads);
  return {c0, minIndex(b, arith::SubIOp::create(b, loc, headCount, c0),
                       index(b, width))};
}

SmallVector<Value> ChannelLowering::gatherPerKey(OpBuilder &b, Value source,
                                                 Value batchIv, Value c0,
                                                 Value blockWidth) {
  // `source` is [H, K] (batchIv null) or [B, H, K, 1]: rows of K keys.
  Value lastLane = arith::SubIOp::create(b, loc, blockWidth, index(b, 1));
  SmallVector<Value> channels;
  for (int64_t lane = 0; lane < width; ++lane)
    channels.push_back(arith::AddIOp::create(
        b, loc, c0, minIndex(b, index(b, lane), lastLane)));
  if (!batchIv)
    return readColumns(b, loc, source, {}, channels, key);
  return readColumns(b, loc, dropUnitLast(b, source), {batchIv}, channels,
                     key);
}

Value ChannelLowering::scatterState(OpBuilder &b, ValueRange state, Value dest,
                                    Value row, Value blockWidth) {
  // W keys at a time: the K vectors of W lanes transposed in registers into
  // W rows of W keys, row r written to dest[row + r, ...] if r < blockWidth.
  for (int64_t k0 = 0; k0 < key; k0 += width) {
    SmallVector<Value> columns;
    for (int64_t n = k0; n < k0 + width; ++n)
      columns.push_back(n < key ? state[n] : zeros(b, width));
    SmallVector<Value> rows = transposeSquare(b, loc, columns);
    bool inBounds = k0 + width <= key;
    for (int64_t lane = 0; lane < width; ++lane) {
      SmallVector<Value> at = {
          arith::AddIOp::create(b, loc, row, index(b, lane)), index(b, k0)};
      if (fullBlocks) {
        dest = write(b, rows[lane], dest, at, inBounds);
        continue;
      }
      Value inBlock = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::slt, index(b, lane), blockWidth);
      Value old = dest;
      dest = scf::IfOp::create(
                 b, loc, inBlock,
                 [&](OpBuilder &nb, Location) {
                   scf::YieldOp::create(
                       nb, loc, write(nb, rows[lane], old, at, inBounds));
                 },
                 [&](OpBuilder &nb, Location) {
                   scf::YieldOp::create(nb, loc, old);
                 })
                 .getResult(0);
    }
  }
  return dest;
}

SmallVector<Value> ChannelLowering::readTile(OpBuilder &b, Value source,
                                             ArrayRef<Value> prefix) {
  SmallVector<Value> vectors;
  for (int64_t n = 0; n < key; ++n) {
    SmallVector<Value> indices(prefix);
    indices.append({index(b, n), index(b, 0)});
    vectors.push_back(read(b, source, indices, width, true));
  }
  return vectors;
}

Value ChannelLowering::tileSlice(OpBuilder &b, Value source,
                                 ArrayRef<OpFoldResult> prefix) {
  auto type = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> offsets(prefix), sizes(prefix.size(),
                                                   b.getIndexAttr(1));
  offsets.append({b.getIndexAttr(0), b.getIndexAttr(0)});
  sizes.append({b.getIndexAttr(key), b.getIndexAttr(width)});
  return tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({key, width}, f32), source, offsets, sizes,
      SmallVector<OpFoldResult>(type.getRank(), b.getIndexAttr(1)));
}

Value ChannelLowering::writeTile(OpBuilder &b, ValueRange vectors, Value tile) {
  for (auto [n, vector] : llvm::enumerate(vectors))
    tile = write(b, vector, tile, {index(b, n), index(b, 0)}, true);
  return tile;
}

Value ChannelLowering::storeTile(OpBuilder &b, ValueRange vectors, Value states,
                                 ArrayRef<Value> prefix) {
  for (auto [n, vector] : llvm::enumerate(vectors)) {
    SmallVector<Value> indices(prefix);
    indices.append({index(b, n), index(b, 0)});
    states = write(b, vector, states, indices, true);
  }
  return states;
}

void ChannelLowering::buildChunk(OpBuilder &b, Value batchIv, Value chunkIv,
                                 ValueRange shared) {
  Value zero = index(b, 0), one = index(b, 1);
  Value blockCount = getValueOrCreateConstantIndexOp(b, loc, blocks);
  Value headCount = getValueOrCreateConstantIndexOp(b, loc, heads);
  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  Value delta = op.getDelta();
  bool inBounds = fullBlocks;

  // The chunk: blocks [firstBlock, firstBlock + chunkSize), channels
  // [chunkStart, chunkStart + chunkWidth).
  Value firstBlock =
      arith::MulIOp::create(b, loc, chunkIv, index(b, chunkBlocks));
  Value chunkSize =
      fullChunks ? index(b, chunkBlocks)
                 : minIndex(b, arith::SubIOp::create(b, loc, blockCount,
                                                     firstBlock),
                            index(b, chunkBlocks));
  Value chunkStart = arith::MulIOp::create(b, loc, firstBlock, index(b, width));
  bool staticWidth = fullChunks && fullBlocks;
  Value chunkWidth =
      staticWidth
          ? index(b, chunkBlocks * width)
          : minIndex(b, arith::SubIOp::create(b, loc, headCount, chunkStart),
                     index(b, chunkBlocks * width));
  OpFoldResult chunkWidthSize =
      staticWidth ? OpFoldResult(b.getIndexAttr(chunkBlocks * width))
                  : OpFoldResult(chunkWidth);

  // The chunk's states between time blocks, [chunkBlocks, K, W]: from
  // initial_state, or zeros.
  Value state = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{chunkBlocks, key, width}, f32);
  state = linalg::FillOp::create(b, loc, ValueRange{zeroF32(b)},
                                 ValueRange{state})
              .getResult(0);
  if (Value init = op.getInitialState()) {
    auto loop = scf::ForOp::create(
        b, loc, zero, chunkSize, one, ValueRange{state},
        [&](OpBuilder &nb, Location, Value j, ValueRange carried) {
          auto [c0, blockWidth] =
              blockExtent(nb, arith::AddIOp::create(nb, loc, firstBlock, j));
          SmallVector<Value> vectors =
              gatherPerKey(nb, init, batchIv, c0, blockWidth);
          scf::YieldOp::create(nb, loc,
                               storeTile(nb, vectors, carried[0], j));
        });
    state = loop.getResult(0);
  }

  // The chunk's output rows [L, chunkWidth], written in place.
  SmallVector<OpFoldResult> outOffsets = {batchIv, b.getIndexAttr(0),
                                          chunkStart};
  SmallVector<OpFoldResult> outSizes = {b.getIndexAttr(1), length,
                                        chunkWidthSize};
  auto rowsType = RankedTensorType::get(
      {getConstantIntValue(length).value_or(ShapedType::kDynamic),
       staticWidth ? chunkBlocks * width : ShapedType::kDynamic},
      f32);
  Value rows = tensor::ExtractSliceOp::create(
      b, loc, rowsType, shared[0], outOffsets, outSizes,
      SmallVector<OpFoldResult>(3, b.getIndexAttr(1)));

  // The chunk's checkpoints, [chunkSize, slots, K, W] (see
  // lowerChannelRecurrenceWithCheckpoints), written in place.
  SmallVector<Value> timeInit = {rows, state};
  SmallVector<OpFoldResult> ckptOffsets, ckptSizes;
  Value spareSlot;
  if (checkpointEvery > 0) {
    Value slots = tensor::DimOp::create(b, loc, shared.back(), 2);
    spareSlot = arith::SubIOp::create(b, loc, slots, one);
    OpFoldResult z = b.getIndexAttr(0);
    ckptOffsets = {batchIv, firstBlock, z, z, z};
    ckptSizes = {b.getIndexAttr(1),
                 fullChunks ? OpFoldResult(b.getIndexAttr(chunkBlocks))
                            : OpFoldResult(chunkSize),
                 slots, b.getIndexAttr(key), b.getIndexAttr(width)};
    auto type =
        RankedTensorType::get({fullChunks ? chunkBlocks : ShapedType::kDynamic,
                               ShapedType::kDynamic, key, width},
                              f32);
    timeInit.push_back(tensor::ExtractSliceOp::create(
        b, loc, type, shared.back(), ckptOffsets, ckptSizes,
        SmallVector<OpFoldResult>(5, b.getIndexAttr(1))));
  }

  Value last = op.getReverse()
                   ? arith::SubIOp::create(b, loc, lengthValue, one).getResult()
                   : Value();
  Value timeBlocks = arith::CeilDivSIOp::create(b, loc, lengthValue,
                                                index(b, timeBlock));
  auto timeBlockLoop = scf::ForOp::create(
      b, loc, zero, timeBlocks, one, timeInit,
      [&](OpBuilder &tb, Location, Value timeIv, ValueRange blockCarried) {
        Value t0 = arith::MulIOp::create(tb, loc, timeIv, index(tb, timeBlock));
        Value len =
            minIndex(tb, arith::SubIOp::create(tb, loc, lengthValue, t0),
                     index(tb, timeBlock));
        auto blockLoop = scf::ForOp::create(
            tb, loc, zero, chunkSize, one, blockCarried,
            [&](OpBuilder &bb, Location, Value j, ValueRange carried) {
              Value blockIv = arith::AddIOp::create(bb, loc, firstBlock, j);
              auto [c0, blockWidth] = blockExtent(bb, blockIv);
              Value column = arith::MulIOp::create(bb, loc, j, index(bb, width));

              // The block's invariants: the time-invariant decay, the skip,
              // the state.
              SmallVector<Value> perKeyDecay;
              Value headDecay;
              if (decayForm == DecayForm::StaticPerKey) {
                perKeyDecay = readTile(bb, packedDecay, {blockIv});
              } else if (decayForm == DecayForm::StaticPerHead) {
                headDecay = read(bb, logDecay, {c0}, width, inBounds);
                headDecay = delta ? mul(bb, headDecay, log2e(bb, width))
                                  : exp(bb, headDecay);
              }
              Value skip = op.getSkip()
                               ? read(bb, op.getSkip(), {c0}, width, inBounds)
                               : Value();
              SmallVector<Value> blockState = readTile(bb, carried[1], {j});
              // Kept for the backward scan where a checkpoint interval
              // starts; other time blocks write the spare slot.
              Value ckpt;
              if (checkpointEvery > 0) {
                Value every = index(bb, checkpointEvery);
                Value starts = arith::CmpIOp::create(
                    bb, loc, arith::CmpIPredicate::eq,
                    arith::RemUIOp::create(bb, loc, t0, every), zero);
                Value slot = arith::SelectOp::create(
                    bb, loc, starts, arith::DivUIOp::create(bb, loc, t0, every),
                    spareSlot);
                ckpt = storeTile(bb, blockState, carried[2], {j, slot});
              }

              // The time block, once per slice of keyBlock keys; later
              // slices add their read-out to the rows the first wrote.
              Value rows = carried[0];
              SmallVector<Value> newState;
              for (int64_t k0 = 0; k0 < key; k0 += keyBlock) {
                int64_t count = std::min(keyBlock, key - k0);
                SmallVector<Value> init(blockState.begin() + k0,
                                        blockState.begin() + k0 + count);
                init.push_back(rows);
                auto timeLoop = scf::ForOp::create(
                    bb, loc, zero, len, one, init,
                    [&](OpBuilder &nb, Location, Value step,
                        ValueRange stepCarried) {
                      Value s = arith::AddIOp::create(nb, loc, t0, step);
                      Value t = timeIndex(nb, s, last);
                      Value stepRows = stepCarried[count];
                      Value prior = k0 == 0 ? Value()
                                            : read(nb, stepRows, {t, column},
                                                   width, inBounds);
                      SmallVector<Value> next = buildStep(
                          nb, batchIv, t, c0, inBounds, perKeyDecay, headDecay,
                          skip, stepCarried.take_front(count), k0, prior);
                      Value y = next.pop_back_val();
                      next.push_back(
                          write(nb, y, stepRows, {t, column}, inBounds));
                      scf::YieldOp::create(nb, loc, next);
                    });
                rows = timeLoop.getResults()[count];
                newState.append(timeLoop.getResults().begin(),
                                timeLoop.getResults().begin() + count);
              }
              SmallVector<Value> yields = {
                  rows, storeTile(bb, newState, carried[1], j)};
              if (ckpt)
                yields.push_back(ckpt);
              scf::YieldOp::create(bb, loc, yields);
            });
        scf::YieldOp::create(tb, loc, blockLoop.getResults());
      });

  // The final state: each block's lanes into the chunk's [w, K] rows.
  Value finalTile;
  SmallVector<OpFoldResult> stateOffsets, stateSizes;
  if (op.getFinalState()) {
    stateOffsets = {batchIv, chunkStart, b.getIndexAttr(0), b.getIndexAttr(0)};
    stateSizes = {b.getIndexAttr(1), chunkWidthSize, b.getIndexAttr(key),
                  b.getIndexAttr(1)};
    auto tileType = RankedTensorType::get(
        {staticWidth ? chunkBlocks * width : ShapedType::kDynamic, key}, f32);
    Value tile = tensor::ExtractSliceOp::create(
        b, loc, tileType, shared[1], stateOffsets, stateSizes,
        SmallVector<OpFoldResult>(4, b.getIndexAttr(1)));
    Value blockStates = timeBlockLoop.getResult(1);
    auto loop = scf::ForOp::create(
        b, loc, zero, chunkSize, one, ValueRange{tile},
        [&](OpBuilder &nb, Location, Value j, ValueRange carried) {
          auto [c0, blockWidth] =
              blockExtent(nb, arith::AddIOp::create(nb, loc, firstBlock, j));
          SmallVector<Value> vectors = readTile(nb, blockStates, {j});
          Value row = arith::MulIOp::create(nb, loc, j, index(nb, width));
          scf::YieldOp::create(
              nb, loc, scatterState(nb, vectors, carried[0], row, blockWidth));
        });
    finalTile = loop.getResult(0);
  }

  auto inParallel = scf::InParallelOp::create(b, loc);
  publish(b, loc, inParallel, timeBlockLoop.getResult(0), shared[0],
          outOffsets, outSizes);
  if (finalTile)
    publish(b, loc, inParallel, finalTile, shared[1], stateOffsets,
            stateSizes);
  if (checkpointEvery > 0)
    publish(b, loc, inParallel, timeBlockLoop.getResult(2), shared.back(),
            ckptOffsets, ckptSizes);
}

SmallVector<Value> ChannelLowering::buildStep(OpBuilder &nb, Value batchIv,
                                              Value t, Value c0, bool inBounds,
                                              ArrayRef<Value> perKeyDecay,
                                              Value headDecay, Value skip,
                                              ValueRange state,
                                              int64_t keyBegin, Value prior) {
  Value zero = index(nb, 0);
  Value u = read(nb, values, {batchIv, t, c0}, width, inBounds);
  Value dt = op.getDelta()
                 ? read(nb, op.getDelta(), {batchIv, t, c0}, width, inBounds)
                 : Value();
  // The input term x = delta * v (Euler B̄ = Δ·B).
  Value x = dt ? mul(nb, dt, u) : u;
  // A decay shared by the K entries of a channel.
  Value channelDecay;
  if (decayForm == DecayForm::PerHead || decayForm == DecayForm::PerKey)
    channelDecay =
        exp(nb, read(nb, logDecay, {batchIv, t, c0}, width, inBounds));
  else if (decayForm == DecayForm::StaticPerHead)
    channelDecay = dt ? decayExp2(nb, mul(nb, dt, headDecay)) : headDecay;
  // Keys / queries of this step: a broadcast of the shared row's entry n,
  // or the channels' own (K = 1).
  auto perKey = [&](Value source, int64_t n) -> Value {
    if (sharedKeys)
      return splat(nb, element(nb, source, {batchIv, t, zero, index(nb, n)}),
                   width);
    return read(nb, source, {batchIv, t, c0}, width, inBounds);
  };
  Value y = prior;
  SmallVector<Value> next;
  for (int64_t n = keyBegin, e = keyBegin + state.size(); n < e; ++n) {
    Value a = channelDecay;
    if (!a)
      a = dt ? decayExp2(nb, mul(nb, dt, perKeyDecay[n])) : perKeyDecay[n];
    // Sequenced: argument order differs between compilers.
    Value kept = mul(nb, a, state[n - keyBegin]);
    Value sn = fma(nb, perKey(keys, n), x, kept);
    next.push_back(sn);
    if (!queries)
      y = y ? add(nb, y, sn) : sn;
    else
      y = y ? fma(nb, perKey(queries, n), sn, y)
            : mul(nb, perKey(queries, n), sn);
  }
  if (skip && !prior)
    y = fma(nb, skip, u, y);
  next.push_back(y);
  return next;
}

Value ChannelLowering::lower() {
  rewriter.setInsertionPoint(op);
  values = dropUnitLast(rewriter, op.getV());
  batch = tensor::getMixedSize(rewriter, loc, values, 0);
  length = tensor::getMixedSize(rewriter, loc, values, 1);
  heads = tensor::getMixedSize(rewriter, loc, values, 2);
  sharedKeys = op.getNumKeyGroups() == 1;
  keys = sharedKeys ? op.getK() : dropUnitLast(rewriter, op.getK());
  if (Value q = op.getQ())
    queries = sharedKeys ? q : dropUnitLast(rewriter, q);
  decayForm = op.getDecayForm();
  logDecay = op.getLogDecay();
  if (decayForm == DecayForm::PerKey) // K = 1: one decay per channel.
    logDecay = dropUnitLast(rewriter, logDecay);

  // Blocks of W channels, `channelChunks` chunks of blocks per batch
  // element: one per thread, so that each chunk's part of a row is a long
  // run of consecutive lines that the hardware prefetchers stream in.
  std::optional<int64_t> staticHeads = getConstantIntValue(heads);
  fullBlocks = staticHeads && *staticHeads % width == 0;
  Value headCount = getValueOrCreateConstantIndexOp(rewriter, loc, heads);
  if (staticHeads) {
    int64_t count = (*staticHeads + width - 1) / width;
    blocks = rewriter.getIndexAttr(count);
    chunkBlocks = (count + channelChunks - 1) / channelChunks;
    fullChunks = count % chunkBlocks == 0;
  } else {
    blocks = arith::CeilDivSIOp::create(rewriter, loc, headCount,
                                        index(rewriter, width))
                 .getResult();
    chunkBlocks = 24; // 384 channels
    fullChunks = false;
  }
  Value blockCount = getValueOrCreateConstantIndexOp(rewriter, loc, blocks);

  // The time-invariant per-key decay, packed once per block: [blocks, K, W].
  if (decayForm == DecayForm::StaticPerKey) {
    SmallVector<int64_t> shape = {
        getConstantIntValue(blocks).value_or(ShapedType::kDynamic), key,
        width};
    SmallVector<Value> dynamic;
    if (!getConstantIntValue(blocks))
      dynamic.push_back(blockCount);
    Value empty = tensor::EmptyOp::create(rewriter, loc, shape, f32, dynamic);
    auto packing = scf::ForallOp::create(
        rewriter, loc, ArrayRef<OpFoldResult>{blocks}, ValueRange{empty},
        /*mapping=*/std::nullopt, [&](OpBuilder &b, Location, ValueRange args) {
          auto [c0, blockWidth] = blockExtent(b, args[0]);
          SmallVector<Value> decay =
              gatherPerKey(b, logDecay, Value(), c0, blockWidth);
          // With delta, A log2(e): the step's factor is then
          // exp2(delta * A log2(e)), one multiply fewer than exp.
          for (Value &a : decay)
            a = op.getDelta() ? mul(b, a, log2e(b, width)) : exp(b, a);
          Value tile = writeTile(b, decay, tileSlice(b, args[1], {args[0]}));
          auto inParallel = scf::InParallelOp::create(b, loc);
          publish(b, loc, inParallel, tile, args[1],
                  {args[0], b.getIndexAttr(0), b.getIndexAttr(0)},
                  {b.getIndexAttr(1), b.getIndexAttr(key),
                   b.getIndexAttr(width)});
        });
    packedDecay = packing.getResult(0);
  }

  // Outputs: [B, L, H] rows (and the [B, H, K, 1] final state).
  auto valuesType = cast<RankedTensorType>(values.getType());
  SmallVector<Value> dynamicSizes;
  for (int64_t d = 0; d < 3; ++d)
    if (valuesType.isDynamicDim(d))
      dynamicSizes.push_back(tensor::DimOp::create(rewriter, loc, values, d));
  SmallVector<Value> outputs = {
      tensor::EmptyOp::create(rewriter, loc, valuesType, dynamicSizes)};
  if (Value finalState = op.getFinalState()) {
    auto type = cast<RankedTensorType>(finalState.getType());
    SmallVector<Value> sizes;
    if (type.isDynamicDim(0))
      sizes.push_back(getValueOrCreateConstantIndexOp(rewriter, loc, batch));
    if (type.isDynamicDim(1))
      sizes.push_back(headCount);
    outputs.push_back(tensor::EmptyOp::create(rewriter, loc, type, sizes));
  }
  // The states kept for a backward scan: [B, blocks, slots, K, W].
  if (checkpointEvery > 0) {
    Value lengthValue = getValueOrCreateConstantIndexOp(rewriter, loc, length);
    Value slots = arith::AddIOp::create(
        rewriter, loc,
        arith::CeilDivSIOp::create(rewriter, loc, lengthValue,
                                   index(rewriter, checkpointEvery)),
        index(rewriter, 1));
    SmallVector<Value> sizes;
    if (valuesType.isDynamicDim(0))
      sizes.push_back(getValueOrCreateConstantIndexOp(rewriter, loc, batch));
    std::optional<int64_t> staticBlocks = getConstantIntValue(blocks);
    if (!staticBlocks)
      sizes.push_back(blockCount);
    sizes.push_back(slots);
    outputs.push_back(tensor::EmptyOp::create(
        rewriter, loc,
        ArrayRef<int64_t>{valuesType.getShape()[0],
                          staticBlocks.value_or(ShapedType::kDynamic),
                          ShapedType::kDynamic, key, width},
        f32, sizes));
  }

  OpFoldResult chunks =
      getConstantIntValue(blocks)
          ? OpFoldResult(rewriter.getIndexAttr(
                (*getConstantIntValue(blocks) + chunkBlocks - 1) /
                chunkBlocks))
          : OpFoldResult(arith::CeilDivSIOp::create(
                             rewriter, loc, blockCount,
                             index(rewriter, chunkBlocks))
                             .getResult());
  auto forall = scf::ForallOp::create(
      rewriter, loc, ArrayRef<OpFoldResult>{batch, chunks}, outputs,
      /*mapping=*/std::nullopt, [&](OpBuilder &b, Location, ValueRange args) {
        buildChunk(b, args[0], args[1], args.drop_front(2));
      });

  // Back to [B, L, H, 1].
  auto outputType = cast<RankedTensorType>(op.getOutput().getType());
  SmallVector<OpFoldResult> outputShape = {batch, length, heads,
                                           rewriter.getIndexAttr(1)};
  SmallVector<Value> results = {tensor::ExpandShapeOp::create(
      rewriter, loc, outputType, forall.getResult(0),
      SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}}, outputShape)};
  if (op.getFinalState())
    results.push_back(forall.getResult(1));
  rewriter.replaceOp(op, results);
  return checkpointEvery > 0 ? forall.getResults().back() : Value();
}

//===----------------------------------------------------------------------===//
// Matrix-state form (V > 1)
//===----------------------------------------------------------------------===//

namespace {

class MatrixLowering : public VectorRecurrenceLowering {
public:
  MatrixLowering(RecurrenceOp op, RewriterBase &rewriter, int64_t width,
                 int64_t tileBytes, int64_t timeBlock, int64_t headChunks,
                 int64_t prefetchDistance)
      : VectorRecurrenceLowering(op, rewriter, width),
        timeBlock(std::max<int64_t>(timeBlock, 1)),
        headChunks(std::max<int64_t>(headChunks, 1)),
        prefetchDistance(prefetchDistance) {
    // Row vectors of W lanes (or all of a short V), R of them per tile, as
    // many as keep the K x Vt tile within `tileBytes` (at most 4).
    if (value < width) {
      rowWidth = value;
      rowsPerTile = 1;
    } else {
      rowWidth = width;
      int64_t fit = tileBytes / (4 * key * width);
      int64_t needed = (value + width - 1) / width;
      rowsPerTile = std::clamp<int64_t>(fit, 1, std::min<int64_t>(4, needed));
    }
    tileWidth = rowWidth * rowsPerTile;
    tiles = (value + tileWidth - 1) / tileWidth;
    fullTiles = value % tileWidth == 0;
  }

  static bool matches(RecurrenceOp op) {
    return !op.getNormalize() && op.getValueSize() > 1 &&
           !ShapedType::isDynamic(op.getValueSize()) &&
           !ShapedType::isDynamic(op.getKeySize()) &&
           cast<RankedTensorType>(op.getV().getType())
               .getElementType()
               .isF32();
  }
  void lower();

private:
  /// One chunk of heads of one batch element and one V tile, all time
  /// blocks.
  void buildChunk(OpBuilder &b, Value batchIv, Value chunkIv, Value tileIv,
                  ValueRange shared);
  /// The steps [t0, t0 + len) of head `headIv`, whose tile is `tile`:
  /// returns the new tile, rows and decay buffer.
  SmallVector<Value> buildHeadSteps(OpBuilder &b, Value batchIv, Value headIv,
                                    Value column, Value v0, Value t0, Value len,
                                    Value tile, Value rows, Value decays);
  /// Prefetches the rows that step `t` of a tile reads, `prefetchDistance`
  /// steps ahead.
  void prefetchRows(OpBuilder &b, Value batchIv, Value headIv, Value groupIv,
                    Value v0, Value t, Value last);

  int64_t timeBlock, headChunks, prefetchDistance;
  int64_t rowWidth, rowsPerTile, tileWidth, tiles;
  bool fullTiles;
  /// Heads per forall iteration, and whether every chunk is full.
  int64_t chunkHeads = 1;
  bool fullChunks = false;
  OpFoldResult batch, length, heads, groups;
  /// Read-only buffer views of q, k, v and a per-key log-decay, and of the
  /// [B, L, H] operands (delta, a per-head log-decay), for prefetching
  /// (null / empty when absent or not prefetched).
  Value qView, kView, vView, decayView;
  SmallVector<Value> headViews;
};

} // namespace

void MatrixLowering::prefetchRows(OpBuilder &b, Value batchIv, Value headIv,
                                  Value groupIv, Value v0, Value t,
                                  Value last) {
  // A head's rows of consecutive steps are H * K floats apart: each step
  // reads other pages, where the hardware prefetchers do not follow.
  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  Value distance = index(b, prefetchDistance);
  Value ahead =
      last ? arith::MaxSIOp::create(b, loc,
                                    arith::SubIOp::create(b, loc, t, distance),
                                    index(b, 0))
                 .getResult()
           : minIndex(b, arith::AddIOp::create(b, loc, t, distance),
                      arith::SubIOp::create(b, loc, lengthValue,
                                            index(b, 1)));
  auto lines = [&](Value view, Value row, Value start, int64_t size) {
    if (!view)
      return;
    // One prefetch per 64-byte line of the row's `size` floats.
    for (int64_t offset = 0; offset < size; offset += 16) {
      SmallVector<Value> indices = {batchIv, ahead};
      if (row)
        indices.push_back(row);
      if (start)
        indices.push_back(
            offset ? arith::AddIOp::create(b, loc, start, index(b, offset))
                         .getResult()
                   : start);
      memref::PrefetchOp::create(b, loc, view, indices, /*isWrite=*/false,
                                 /*localityHint=*/3, /*isDataCache=*/true);
    }
  };
  Value zero = index(b, 0);
  lines(qView, groupIv, zero, key);
  lines(kView, groupIv, zero, key);
  lines(decayView, headIv, zero, key);
  lines(vView, headIv, v0, std::min(tileWidth, value));
  for (Value view : headViews)
    lines(view, headIv, Value(), 1);
}

SmallVector<Value>
MatrixLowering::buildHeadSteps(OpBuilder &b, Value batchIv, Value headIv,
                               Value column, Value v0, Value t0, Value len,
                               Value tile, Value rows, Value decays) {
  Value zero = index(b, 0), one = index(b, 1), two = index(b, 2);
  Value groupIv = groupOf(b, loc, headIv, heads, groups);
  Value delta = op.getDelta();
  DecayForm form = op.getDecayForm();

  // The head's invariants.
  Value staticRow, staticScalar;
  if (form == DecayForm::StaticPerKey) {
    staticRow = read(b, op.getLogDecay(), {headIv, zero}, key, true);
    if (!delta) {
      Value factors = exp(b, staticRow);
      for (int64_t slot = 0; slot < 2; ++slot)
        decays = write(b, factors, decays, {index(b, slot), zero}, true);
    }
  } else if (form == DecayForm::StaticPerHead) {
    staticScalar = element(b, op.getLogDecay(), {headIv});
    if (!delta)
      staticScalar = exp(b, staticScalar);
  }
  Value bonusRow =
      op.getBonus() ? read(b, op.getBonus(), {headIv, zero}, key, true)
                    : Value();
  Value skip = op.getSkip()
                   ? splat(b, element(b, op.getSkip(), {headIv}), rowWidth)
                   : Value();

  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  Value last = op.getReverse()
                   ? arith::SubIOp::create(b, loc, lengthValue, one).getResult()
                   : Value();
  Value lastStep = arith::SubIOp::create(b, loc, len, one);
  auto timeOf = [&](OpBuilder &nb, Value step) {
    return timeIndex(nb, arith::AddIOp::create(nb, loc, t0, step), last);
  };
  // Per-step factors exp(g_t (* delta_t)) of the K keys, for two steps at a
  // time (slots 0, 1), computed a pair of steps ahead: read back one by one
  // right after a wide store to the same bytes, they would wait for the
  // store.
  bool perStepDecays = form == DecayForm::PerKey ||
                       (form == DecayForm::StaticPerKey && delta);
  auto computeDecays = [&](OpBuilder &nb, Value step, Value buffer,
                           int64_t slot) -> Value {
    Value t = timeOf(nb, minIndex(nb, step, lastStep));
    Value g = form == DecayForm::PerKey
                  ? read(nb, op.getLogDecay(), {batchIv, t, headIv, zero}, key,
                         true)
                  : staticRow;
    if (delta)
      g = mul(nb, g, splat(nb, element(nb, delta, {batchIv, t, headIv}), key));
    return write(nb, exp(nb, g), buffer, {index(nb, slot), zero}, true);
  };
  if (perStepDecays) { // len >= 1 here.
    decays = computeDecays(b, zero, decays, 0);
    decays = computeDecays(b, one, decays, 1);
  }

  // Steps `steps` (one or two) in one pass over the state's rows: each row
  // is loaded and stored once for all of them, which halves the L1 traffic
  // per update with two.
  auto buildGroup = [&](OpBuilder &nb, ArrayRef<Value> steps, Value state,
                        Value rowsIn, Value factors) {
    int64_t count = steps.size();
    SmallVector<Value> times, deltas, headDecays;
    SmallVector<SmallVector<Value>> valueRows(count), outputs(count);
    for (auto [g, step] : llvm::enumerate(steps)) {
      Value t = timeOf(nb, step);
      times.push_back(t);
      if (prefetchDistance > 0)
        prefetchRows(nb, batchIv, headIv, groupIv, v0, t, last);
      Value dt = delta ? element(nb, delta, {batchIv, t, headIv}) : Value();
      deltas.push_back(dt);
      for (int64_t j = 0; j < rowsPerTile; ++j) {
        Value offset =
            arith::AddIOp::create(nb, loc, v0, index(nb, j * rowWidth));
        valueRows[g].push_back(read(nb, op.getV(),
                                    {batchIv, t, headIv, offset}, rowWidth,
                                    fullTiles));
      }
      // A decay of the head (per key: in `factors`).
      Value headDecay;
      if (form == DecayForm::PerHead)
        headDecay =
            exp(nb, element(nb, op.getLogDecay(), {batchIv, t, headIv}));
      else if (form == DecayForm::StaticPerHead)
        headDecay = dt ? exp(nb, mul(nb, staticScalar, dt)) : staticScalar;
      headDecays.push_back(headDecay ? splat(nb, headDecay, rowWidth)
                                     : Value());
      // Output accumulators: the bonus term (q . (u (.) k dt)) v_t, or 0.
      if (bonusRow) {
        Value weights = mul(
            nb, bonusRow,
            read(nb, op.getK(), {batchIv, t, groupIv, zero}, key, true));
        if (dt)
          weights = mul(nb, weights, splat(nb, dt, key));
        if (op.getQ())
          weights = mul(
              nb, weights,
              read(nb, op.getQ(), {batchIv, t, groupIv, zero}, key, true));
        Value diag = addLanes(nb, loc, weights);
        Value diagVector = splat(nb, diag, rowWidth);
        for (Value v : valueRows[g])
          outputs[g].push_back(mul(nb, diagVector, v));
      } else {
        outputs[g].assign(rowsPerTile, zeros(nb, rowWidth));
      }
    }

    // The rows of the state, one key at a time.
    SmallVector<Value> keyInit = {state};
    for (auto &o : outputs)
      keyInit.append(o);
    auto keyLoop = scf::ForOp::create(
        nb, loc, zero, index(nb, key), one, keyInit,
        [&](OpBuilder &kb, Location, Value k, ValueRange kc) {
          SmallVector<Value> a(count), kv(count), q(count);
          for (int64_t g = 0; g < count; ++g) {
            a[g] = headDecays[g];
            if (!a[g])
              a[g] = splat(kb, element(kb, factors, {index(kb, g), k}),
                           rowWidth);
            Value kk = element(kb, op.getK(), {batchIv, times[g], groupIv, k});
            if (deltas[g])
              kk = mul(kb, kk, deltas[g]);
            kv[g] = splat(kb, kk, rowWidth);
            if (op.getQ())
              q[g] = splat(
                  kb, element(kb, op.getQ(), {batchIv, times[g], groupIv, k}),
                  rowWidth);
          }
          auto accumulate = [&](int64_t g, Value o, Value s) -> Value {
            return q[g] ? fma(kb, q[g], s, o) : add(kb, o, s);
          };
          Value current = kc[0];
          SmallVector<Value> newOutputs(kc.begin() + 1, kc.end());
          for (int64_t j = 0; j < rowsPerTile; ++j) {
            Value c = index(kb, j * rowWidth);
            Value s = read(kb, current, {k, c}, rowWidth, true);
            for (int64_t g = 0; g < count; ++g) {
              Value &o = newOutputs[g * rowsPerTile + j];
              if (bonusRow) // The bonus form reads S_{t-1}.
                o = accumulate(g, o, s);
              s = fma(kb, kv[g], valueRows[g][j], mul(kb, a[g], s));
              if (!bonusRow)
                o = accumulate(g, o, s);
            }
            current = write(kb, s, current, {k, c}, true);
          }
          SmallVector<Value> next = {current};
          next.append(newOutputs);
          scf::YieldOp::create(kb, loc, next);
        });

    Value newRows = rowsIn;
    for (int64_t g = 0; g < count; ++g)
      for (int64_t j = 0; j < rowsPerTile; ++j) {
        Value o = keyLoop.getResult(1 + g * rowsPerTile + j);
        if (skip)
          o = fma(nb, skip, valueRows[g][j], o);
        newRows = write(nb, o, newRows,
                        {times[g], column, index(nb, j * rowWidth)},
                        fullTiles);
      }
    return std::make_pair(keyLoop.getResult(0), newRows);
  };

  // Pairs of steps, then the last step of an odd block.
  SmallVector<Value> init = {tile, rows};
  if (decays)
    init.push_back(decays);
  Value pairs = arith::DivUIOp::create(b, loc, len, two);
  auto pairLoop = scf::ForOp::create(
      b, loc, zero, pairs, one, init,
      [&](OpBuilder &nb, Location, Value pair, ValueRange carried) {
        Value first = arith::MulIOp::create(nb, loc, pair, two);
        Value second = arith::AddIOp::create(nb, loc, first, one);
        Value factors = decays ? carried[2] : Value();
        auto [state, newRows] =
            buildGroup(nb, {first, second}, carried[0], carried[1], factors);
        SmallVector<Value> next = {state, newRows};
        if (decays) {
          if (perStepDecays) {
            factors = computeDecays(
                nb, arith::AddIOp::create(nb, loc, first, two), factors, 0);
            factors = computeDecays(
                nb, arith::AddIOp::create(nb, loc, first, index(nb, 3)),
                factors, 1);
          }
          next.push_back(factors);
        }
        scf::YieldOp::create(nb, loc, next);
      });
  // The last step of an odd block, as a loop of zero or one iteration (an
  // scf.if would keep bufferization from updating the tile in place).
  ValueRange afterPairs = pairLoop.getResults();
  auto tail = scf::ForOp::create(
      b, loc, arith::MulIOp::create(b, loc, pairs, two), len, one,
      ValueRange{afterPairs[0], afterPairs[1]},
      [&](OpBuilder &nb, Location, Value step, ValueRange carried) {
        // The factors of this step are in slot 0 (computed ahead).
        auto [state, newRows] =
            buildGroup(nb, {step}, carried[0], carried[1],
                       decays ? afterPairs[2] : Value());
        scf::YieldOp::create(nb, loc, ValueRange{state, newRows});
      });
  SmallVector<Value> results = {tail.getResult(0), tail.getResult(1)};
  if (decays)
    results.push_back(afterPairs[2]);
  return results;
}

void MatrixLowering::buildChunk(OpBuilder &b, Value batchIv, Value chunkIv,
                                Value tileIv, ValueRange shared) {
  Value zero = index(b, 0), one = index(b, 1);
  Value headCount = getValueOrCreateConstantIndexOp(b, loc, heads);
  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  DecayForm form = op.getDecayForm();

  // Heads [firstHead, firstHead + chunkSize), values [v0, v0 + tileSize).
  Value firstHead =
      arith::MulIOp::create(b, loc, chunkIv, index(b, chunkHeads));
  Value chunkSize =
      fullChunks
          ? index(b, chunkHeads)
          : minIndex(b, arith::SubIOp::create(b, loc, headCount, firstHead),
                     index(b, chunkHeads));
  OpFoldResult chunkSizeOfr = fullChunks
                                  ? OpFoldResult(b.getIndexAttr(chunkHeads))
                                  : OpFoldResult(chunkSize);
  Value v0 = arith::MulIOp::create(b, loc, tileIv, index(b, tileWidth));
  OpFoldResult tileSize =
      fullTiles
          ? OpFoldResult(b.getIndexAttr(tileWidth))
          : OpFoldResult(minIndex(b,
                                  arith::SubIOp::create(b, loc,
                                                        index(b, value), v0),
                                  index(b, tileWidth)));
  int64_t staticChunk = fullChunks ? chunkHeads : ShapedType::kDynamic;
  int64_t staticTile = fullTiles ? tileWidth : ShapedType::kDynamic;

  // The chunk's K x Vt state tiles, [chunkHeads, K, Vt]: initial_state or
  // zeros (columns past V stay zero: their values read 0).
  Value states = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{chunkHeads, key, tileWidth}, f32);
  states = linalg::FillOp::create(b, loc, ValueRange{zeroF32(b)},
                                  ValueRange{states})
               .getResult(0);
  SmallVector<OpFoldResult> stateOffsets = {batchIv, firstHead,
                                            b.getIndexAttr(0), v0};
  SmallVector<OpFoldResult> stateSizes = {b.getIndexAttr(1), chunkSizeOfr,
                                          b.getIndexAttr(key), tileSize};
  SmallVector<OpFoldResult> localOffsets(3, b.getIndexAttr(0));
  SmallVector<OpFoldResult> localSizes = {chunkSizeOfr, b.getIndexAttr(key),
                                          tileSize};
  auto stateSliceType =
      RankedTensorType::get({staticChunk, key, staticTile}, f32);
  if (Value init = op.getInitialState()) {
    Value slice = tensor::ExtractSliceOp::create(
        b, loc, stateSliceType, init, stateOffsets, stateSizes,
        SmallVector<OpFoldResult>(4, b.getIndexAttr(1)));
    states = tensor::InsertSliceOp::create(
        b, loc, slice, states, localOffsets, localSizes,
        SmallVector<OpFoldResult>(3, b.getIndexAttr(1)));
  }
  bool perKey = form == DecayForm::PerKey || form == DecayForm::StaticPerKey;
  Value decays;
  if (perKey)
    decays = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{2, key}, f32);

  // The chunk's output rows [L, chunkSize, tileSize], written in place.
  SmallVector<OpFoldResult> outOffsets = {batchIv, b.getIndexAttr(0),
                                          firstHead, v0};
  SmallVector<OpFoldResult> outSizes = {b.getIndexAttr(1), length,
                                        chunkSizeOfr, tileSize};
  auto rowsType = RankedTensorType::get(
      {getConstantIntValue(length).value_or(ShapedType::kDynamic), staticChunk,
       staticTile},
      f32);
  Value rows = tensor::ExtractSliceOp::create(
      b, loc, rowsType, shared[0], outOffsets, outSizes,
      SmallVector<OpFoldResult>(4, b.getIndexAttr(1)));

  // Time blocks, and in each the chunk's heads one after the other: the
  // heads share the pages of a block's rows.
  Value timeBlocks = arith::CeilDivSIOp::create(b, loc, lengthValue,
                                                index(b, timeBlock));
  SmallVector<Value> init = {rows, states};
  if (decays)
    init.push_back(decays);
  auto timeBlockLoop = scf::ForOp::create(
      b, loc, zero, timeBlocks, one, init,
      [&](OpBuilder &tb, Location, Value timeIv, ValueRange blockCarried) {
        Value t0 = arith::MulIOp::create(tb, loc, timeIv, index(tb, timeBlock));
        Value len =
            minIndex(tb, arith::SubIOp::create(tb, loc, lengthValue, t0),
                     index(tb, timeBlock));
        auto headLoop = scf::ForOp::create(
            tb, loc, zero, chunkSize, one, blockCarried,
            [&](OpBuilder &hb, Location, Value j, ValueRange carried) {
              Value headIv = arith::AddIOp::create(hb, loc, firstHead, j);
              SmallVector<OpFoldResult> tileOffsets = {j, hb.getIndexAttr(0),
                                                       hb.getIndexAttr(0)};
              SmallVector<OpFoldResult> tileSizes = {
                  hb.getIndexAttr(1), hb.getIndexAttr(key),
                  hb.getIndexAttr(tileWidth)};
              SmallVector<OpFoldResult> unit3(3, hb.getIndexAttr(1));
              Value tile = tensor::ExtractSliceOp::create(
                  hb, loc, RankedTensorType::get({key, tileWidth}, f32),
                  carried[1], tileOffsets, tileSizes, unit3);
              SmallVector<Value> results = buildHeadSteps(
                  hb, batchIv, headIv, j, v0, t0, len, tile, carried[0],
                  decays ? carried[2] : Value());
              Value newStates = tensor::InsertSliceOp::create(
                  hb, loc, results[0], carried[1], tileOffsets, tileSizes,
                  unit3);
              SmallVector<Value> next = {results[1], newStates};
              if (decays)
                next.push_back(results[2]);
              scf::YieldOp::create(hb, loc, next);
            });
        scf::YieldOp::create(tb, loc, headLoop.getResults());
      });

  Value finalTile;
  if (shared.size() > 1)
    finalTile = tensor::ExtractSliceOp::create(
        b, loc, stateSliceType, timeBlockLoop.getResult(1), localOffsets,
        localSizes, SmallVector<OpFoldResult>(3, b.getIndexAttr(1)));
  auto inParallel = scf::InParallelOp::create(b, loc);
  publish(b, loc, inParallel, timeBlockLoop.getResult(0), shared[0],
          outOffsets, outSizes);
  if (finalTile)
    publish(b, loc, inParallel, finalTile, shared[1], stateOffsets,
            stateSizes);
}

void MatrixLowering::lower() {
  rewriter.setInsertionPoint(op);
  Value v = op.getV();
  batch = tensor::getMixedSize(rewriter, loc, v, 0);
  length = tensor::getMixedSize(rewriter, loc, v, 1);
  heads = tensor::getMixedSize(rewriter, loc, v, 2);
  groups = tensor::getMixedSize(rewriter, loc, op.getK(), 2);
  if (prefetchDistance > 0) {
    if (Value q = op.getQ())
      qView = prefetchView(rewriter, q);
    kView = prefetchView(rewriter, op.getK());
    vView = prefetchView(rewriter, v);
    if (op.getDecayForm() == DecayForm::PerKey)
      decayView = prefetchView(rewriter, op.getLogDecay());
    else if (op.getDecayForm() == DecayForm::PerHead)
      headViews.push_back(prefetchView(rewriter, op.getLogDecay()));
    if (Value delta = op.getDelta())
      headViews.push_back(prefetchView(rewriter, delta));
  }

  // Chunks of heads: `headChunks` per batch element and V tile (one per
  // thread), fewer if there are fewer heads.
  std::optional<int64_t> staticHeads = getConstantIntValue(heads);
  OpFoldResult chunks;
  if (staticHeads) {
    chunkHeads = std::max<int64_t>(
        1, (*staticHeads + headChunks - 1) / headChunks);
    fullChunks = *staticHeads % chunkHeads == 0;
    chunks = rewriter.getIndexAttr((*staticHeads + chunkHeads - 1) /
                                   chunkHeads);
  } else {
    chunkHeads = 4;
    fullChunks = false;
    chunks = arith::CeilDivSIOp::create(
                 rewriter, loc,
                 getValueOrCreateConstantIndexOp(rewriter, loc, heads),
                 index(rewriter, chunkHeads))
                 .getResult();
  }

  auto outputType = cast<RankedTensorType>(op.getOutput().getType());
  SmallVector<Value> dynamicSizes;
  for (int64_t d = 0; d < 3; ++d)
    if (outputType.isDynamicDim(d))
      dynamicSizes.push_back(tensor::DimOp::create(rewriter, loc, v, d));
  SmallVector<Value> outputs = {
      tensor::EmptyOp::create(rewriter, loc, outputType, dynamicSizes)};
  if (Value finalState = op.getFinalState()) {
    auto type = cast<RankedTensorType>(finalState.getType());
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < 2; ++d)
      if (type.isDynamicDim(d))
        sizes.push_back(getValueOrCreateConstantIndexOp(
            rewriter, loc, d == 0 ? batch : heads));
    outputs.push_back(tensor::EmptyOp::create(rewriter, loc, type, sizes));
  }
  auto forall = scf::ForallOp::create(
      rewriter, loc,
      ArrayRef<OpFoldResult>{batch, chunks, rewriter.getIndexAttr(tiles)},
      outputs, /*mapping=*/std::nullopt,
      [&](OpBuilder &b, Location, ValueRange args) {
        buildChunk(b, args[0], args[1], args[2], args.drop_front(3));
      });
  rewriter.replaceOp(op, forall.getResults());
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

bool glint::isChannelRecurrence(RecurrenceOp op) {
  return ChannelLowering::matches(op);
}

Value glint::lowerChannelRecurrenceWithCheckpoints(
    RecurrenceOp op, RewriterBase &rewriter, const ChannelScanOptions &options,
    int64_t every) {
  assert(every > 0 && every % options.timeBlock == 0 && !op.getInitialState() &&
         !op.getFinalState() &&
         "checkpoints at time block starts, of a scan from zero");
  return ChannelLowering(op, rewriter, options.width, options.timeBlock,
                         options.channelChunks, options.keyBlock, every)
      .lower();
}

namespace {
struct VectorizeRecurrencePass
    : public glint::impl::GlintVectorizeRecurrenceBase<
          VectorizeRecurrencePass> {
  using GlintVectorizeRecurrenceBase::GlintVectorizeRecurrenceBase;

  void runOnOperation() override {
    int64_t width = vectorWidth;
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(), width)))
      return signalPassFailure();
    SmallVector<RecurrenceOp> recurrences;
    getOperation()->walk([&](RecurrenceOp op) { recurrences.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (RecurrenceOp op : recurrences) {
      if (ChannelLowering::matches(op))
        ChannelLowering(op, rewriter, width, timeBlock, chunks, keyBlock)
            .lower();
      else if (MatrixLowering::matches(op))
        MatrixLowering(op, rewriter, width, stateTileBytes, timeBlock, chunks,
                       prefetchDistance)
            .lower();
    }
  }
};
} // namespace
