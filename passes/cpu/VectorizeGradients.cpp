//===- VectorizeGradients.cpp - glint-vectorize-gradients -----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the `glint.recurrence_grad` ops of the per-channel form (V = 1:
// Mamba-1, Vision Mamba, Griffin's RG-LRU) to vector loops on tensors, the
// backward counterpart of glint-vectorize-recurrence's per-channel form; the
// others are left to glint-lower-gradients (the scalar form, checked against
// the reference evaluator op by op). The algorithm is glint-lower-gradients'
// checkpointed backward scan (see LowerGradients.cpp for the step's
// equations), with W heads side by side in a vector instead of one head at a
// time, so that the K-entry state of W channels and its cotangent are K
// vectors each:
//
//   scf.forall (%b, %chunk) in (B, chunks) {     -- chunks of blocks of W
//     scf.for %blk in chunk {                     -- channels c0 .. c0+W
//       forward: S_n (K vectors) over the sequence, stored every C steps
//                into ckpt : [ceil(L / C), K, W]
//       scf.for chunks of C steps, last first iter_args(dS_n, ...) {
//         recompute the chunk's states from its checkpoint: [C + 1, K, W],
//         and its steps' decay factors a_n: [C, K, W]; prefetch the rows of
//         dy and q, which only the backward steps read (perf: a third of
//         the steps' time was the wait for them, one new line per step
//         going backwards)
//         scf.for its steps, last first {
//           dy, v, delta = transfer_read [b, t, c0 : c0 + W]
//           dS_n += q_t[n] dy;  dq_t[n] += S_t,n dy   (lanes summed later)
//           dv = D dy + sum_n dS_n k_t[n] delta;  dk_t[n] += dS_n v delta
//           dlog_n += dS_n S_{t-1},n a_n delta; ddelta = ...
//           dS_n = a_n dS_n
//         }
//       }
//     }
//   }
//
// A gradient function also holds the forward glint.recurrence on the same
// operands, whose result the layers after it read. Where it has the
// per-channel form and starts from zero, it is lowered here as well (by
// glint-vectorize-recurrence's builder, ChannelScan.h), its time blocks that
// start a chunk storing the state into a [B, blocks, ceil(L / C) + 1, K, W]
// tensor, and the backward reads its checkpoints there instead of running
// the forward above: the same operations on the same inputs, so the same
// floats. The exp of a step's decay is then taken twice per state entry
// (forward, recompute) where it was four times.
//
// Keys and queries shared by every head (one key group, Mamba-1) are
// broadcast, and their cotangents are sums over the channels: at every step
// the K vectors of a block are summed over their lanes by a transposing
// tree of shuffles (laneSums) and added into the chunk's [L, K] partial,
// and the partials over the chunks after the loop (a few). When K or W is
// not a power of two or K > W, they are accumulated per lane into a
// [L, K, W] scratch of each chunk instead, whose lanes are summed
// (vector.reduction) into the partial when its blocks are done; that
// scratch is read and written by every block, which at L = 2048 and K = 16
// is 2 MiB per cotangent, past the L2 cache. With one group per channel
// (K = 1, RG-LRU) they are rows like dv. Time-invariant decays are accumulated
// in registers over the sequence, per batch element, and summed over it after
// the loop. Memory is that of the scalar form: checkpoints and one chunk's
// states per block, no state per step. Sums run in vector order, so the result
// agrees with the scalar form to float32 rounding; GradientCompileTest checks
// whole models against the reference evaluator.
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
#include "llvm/Support/MathExtras.h"

#define DEBUG_TYPE "glint-vectorize-gradients"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVECTORIZEGRADIENTS
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

class ChannelGradLowering : protected LoweringBuilder {
public:
  /// `checkpoints`: the forward's states every `chunk` steps, as
  /// lowerChannelRecurrenceWithCheckpoints returns them, or null to find
  /// them with a forward scan of its own.
  ChannelGradLowering(RecurrenceGradOp op, RewriterBase &rewriter,
                      int64_t width, int64_t channelChunks, int64_t chunk,
                      Value checkpoints = Value())
      : LoweringBuilder(op.getLoc()), op(op), rewriter(rewriter), width(width),
        channelChunks(std::max<int64_t>(channelChunks, 1)),
        chunk(std::max<int64_t>(chunk, 1)), forwardCheckpoints(checkpoints) {
    auto kType = cast<RankedTensorType>(op.getK().getType());
    auto vType = cast<RankedTensorType>(op.getV().getType());
    key = kType.getShape()[3];
    groups = kType.getShape()[2];
    heads = vType.getShape()[2];
    decayRank = cast<RankedTensorType>(op.getLogDecay().getType()).getRank();
  }

  /// Whether the op has the per-channel form this pass lowers: f32, V = 1,
  /// static K, H and key groups, keys shared by every head or one per head
  /// with K = 1, a decay read along the channel axis, no ratio form, no
  /// bonus.
  static bool matches(RecurrenceGradOp op);
  void lower();

private:
  /// Outputs of the forall, in this order.
  enum Out { DV, DDelta, DLog, DQ, DK, NumOuts };

  void buildChunk(OpBuilder &b, Value batchIv, Value chunkIv,
                  ValueRange shared);
  /// One forward step of a block at time t from the K state vectors; the
  /// step's K decay factors go to `decays` if given.
  SmallVector<Value> forwardStep(OpBuilder &b, Value batchIv, Value t, Value c0,
                                 ArrayRef<Value> staticDecay, ValueRange state,
                                 SmallVector<Value> *decays = nullptr);
  /// The key (or query) of entry n at time t for the block's lanes.
  Value perKey(OpBuilder &b, Value source, Value batchIv, Value t, Value c0,
               int64_t n);
  /// The raw log-decay of entry n at time t (`staticDecay`: the block's
  /// time-invariant decay vectors, one or K).
  Value rawDecay(OpBuilder &b, Value batchIv, Value t, Value c0,
                 ArrayRef<Value> staticDecay, int64_t n);
  /// `source[c0 + lane, n]` ([H, K]) for each n < K as K vectors (lanes
  /// past the last channel repeat it).
  SmallVector<Value> gatherPerKey(OpBuilder &b, Value source, Value c0);
  /// The K vectors of a [..., K, W] tensor at `prefix`, and the tensor
  /// with K vectors stored there.
  SmallVector<Value> readTile(OpBuilder &b, Value source,
                              ArrayRef<Value> prefix);
  Value storeTile(OpBuilder &b, ValueRange vectors, Value into,
                  ArrayRef<Value> prefix);
  Value timeOf(OpBuilder &b, Value step) {
    return op.getReverse()
               ? arith::SubIOp::create(b, loc, lastIndex, step).getResult()
               : step;
  }
  Value add(OpBuilder &b, Value x, Value y) {
    return arith::AddFOp::create(b, loc, x, y);
  }
  Value mul(OpBuilder &b, Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y);
  }
  Value zeroF32(OpBuilder &b) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  }
  /// A step's decay factor exp(raw * dt) (exp(raw) without dt). With dt it
  /// is built as glint-vectorize-recurrence's forward builds it,
  /// decayExp2((raw log2 e) dt): the same factors as the forward's, and
  /// glint-approximate-math makes it 7 instructions with AVX-512 where exp
  /// takes 13 (once or twice per state entry and step here: the recompute,
  /// and the forward unless the forward scan kept the checkpoints; the
  /// backward steps read the recompute's). `raw log2 e` of a
  /// time-invariant decay is hoisted out of the loops by LLVM.
  Value stepDecay(OpBuilder &b, Value raw, Value dt) {
    if (!dt)
      return math::ExpOp::create(b, loc, raw);
    return decayExp2(b, mul(b, dt, mul(b, raw, log2e(b, width))));
  }
  /// `value` as `type` (the op's result types may be more static).
  Value castTo(Value value, Type type) {
    if (value.getType() == type)
      return value;
    return tensor::CastOp::create(rewriter, loc, type, value);
  }

  RecurrenceGradOp op;
  RewriterBase &rewriter;
  int64_t width, channelChunks, chunk;
  /// [B, blocks, slots, K, W] from the forward scan, or null.
  Value forwardCheckpoints;
  int64_t key = 0, groups = 0, heads = 0, decayRank = 0;
  bool sharedKeys = false, fullBlocks = false, fullChunks = false;
  /// Shared keys' cotangents summed over the lanes at every step (see
  /// laneSums): K and W powers of two, K <= W.
  bool laneSummed = false;
  int64_t blocks = 0, chunkBlocks = 0, chunkCount = 0;
  /// [B, L, H] views of v, grad, delta, the per-time decay, and of k and q
  /// when each channel has its own (K = 1).
  Value values, grads, keys, queries, logDecay;
  /// Buffer views of grads and queries for prefetching.
  Value gradView, queryView;
  OpFoldResult batch, length;
  Value lengthValue, lastIndex;
};

} // namespace

bool ChannelGradLowering::matches(RecurrenceGradOp op) {
  auto vType = cast<RankedTensorType>(op.getV().getType());
  auto kType = cast<RankedTensorType>(op.getK().getType());
  if (op.getNormalize() || op.getBonus() || !vType.getElementType().isF32() ||
      vType.getShape()[3] != 1)
    return false;
  int64_t key = kType.getShape()[3], groups = kType.getShape()[2],
          heads = vType.getShape()[2];
  if (ShapedType::isDynamic(key) || ShapedType::isDynamic(groups) ||
      ShapedType::isDynamic(heads) || key > 32)
    return false;
  if (groups != 1 && !(groups == heads && key == 1))
    return false;
  // A per-key data-dependent decay is contiguous along heads only if K = 1.
  int64_t rank = cast<RankedTensorType>(op.getLogDecay().getType()).getRank();
  return rank != 4 || key == 1;
}

SmallVector<Value> ChannelGradLowering::gatherPerKey(OpBuilder &b, Value source,
                                                     Value c0) {
  Value lastChannel = index(b, heads - 1);
  SmallVector<Value> channels;
  for (int64_t lane = 0; lane < width; ++lane)
    channels.push_back(minIndex(
        b, arith::AddIOp::create(b, loc, c0, index(b, lane)), lastChannel));
  return readColumns(b, loc, source, {}, channels, key);
}

SmallVector<Value> ChannelGradLowering::readTile(OpBuilder &b, Value source,
                                                 ArrayRef<Value> prefix) {
  SmallVector<Value> vectors;
  for (int64_t n = 0; n < key; ++n) {
    SmallVector<Value> indices(prefix);
    indices.append({index(b, n), index(b, 0)});
    vectors.push_back(read(b, source, indices, width, true));
  }
  return vectors;
}

Value ChannelGradLowering::storeTile(OpBuilder &b, ValueRange vectors,
                                     Value into, ArrayRef<Value> prefix) {
  for (auto [n, vector] : llvm::enumerate(vectors)) {
    SmallVector<Value> indices(prefix);
    indices.append({index(b, n), index(b, 0)});
    into = write(b, vector, into, indices, true);
  }
  return into;
}

Value ChannelGradLowering::perKey(OpBuilder &b, Value source, Value batchIv,
                                  Value t, Value c0, int64_t n) {
  if (sharedKeys)
    return splat(b, element(b, source, {batchIv, t, index(b, 0), index(b, n)}),
                 width);
  return read(b, source, {batchIv, t, c0}, width, fullBlocks);
}

Value ChannelGradLowering::rawDecay(OpBuilder &b, Value batchIv, Value t,
                                    Value c0, ArrayRef<Value> staticDecay,
                                    int64_t n) {
  switch (decayRank) {
  case 1:
    return staticDecay[0];
  case 2:
    return staticDecay[n];
  default: // [B, L, H] (per key with K = 1 collapsed)
    return read(b, logDecay, {batchIv, t, c0}, width, fullBlocks);
  }
}

SmallVector<Value>
ChannelGradLowering::forwardStep(OpBuilder &b, Value batchIv, Value t, Value c0,
                                 ArrayRef<Value> staticDecay, ValueRange state,
                                 SmallVector<Value> *decays) {
  Value u = read(b, values, {batchIv, t, c0}, width, fullBlocks);
  Value dt = op.getDelta()
                 ? read(b, op.getDelta(), {batchIv, t, c0}, width, fullBlocks)
                 : Value();
  Value x = dt ? mul(b, dt, u) : u;
  Value timeDecay;
  SmallVector<Value> next;
  for (int64_t n = 0; n < key; ++n) {
    Value raw;
    if (decayRank >= 3)
      raw = timeDecay ? timeDecay
                      : (timeDecay = rawDecay(b, batchIv, t, c0, {}, n));
    else
      raw = rawDecay(b, batchIv, t, c0, staticDecay, n);
    Value a = stepDecay(b, raw, dt);
    if (decays)
      decays->push_back(a);
    next.push_back(
        fma(b, perKey(b, keys, batchIv, t, c0, n), x, mul(b, a, state[n])));
  }
  return next;
}

void ChannelGradLowering::buildChunk(OpBuilder &b, Value batchIv, Value chunkIv,
                                     ValueRange shared) {
  Value zero = index(b, 0), one = index(b, 1);
  OpFoldResult z = b.getIndexAttr(0), u1 = b.getIndexAttr(1);
  Value headCount = index(b, heads);
  Value delta = op.getDelta();

  // The chunk: blocks [firstBlock, firstBlock + size), channels
  // [chunkStart, chunkStart + chunkWidth).
  Value firstBlock =
      arith::MulIOp::create(b, loc, chunkIv, index(b, chunkBlocks));
  Value size =
      fullChunks
          ? index(b, chunkBlocks)
          : minIndex(
                b, arith::SubIOp::create(b, loc, index(b, blocks), firstBlock),
                index(b, chunkBlocks));
  Value chunkStart = arith::MulIOp::create(b, loc, firstBlock, index(b, width));
  bool staticWidth = fullChunks && fullBlocks;
  Value chunkWidth =
      staticWidth
          ? index(b, chunkBlocks * width)
          : minIndex(b, arith::SubIOp::create(b, loc, headCount, chunkStart),
                     index(b, chunkBlocks * width));
  OpFoldResult widthSize =
      staticWidth ? OpFoldResult(b.getIndexAttr(chunkBlocks * width))
                  : OpFoldResult(chunkWidth);
  int64_t staticWidthDim =
      staticWidth ? chunkBlocks * width : ShapedType::kDynamic;
  int64_t lengthDim =
      getConstantIntValue(length).value_or(ShapedType::kDynamic);

  // The slices this iteration owns.
  SmallVector<SmallVector<OpFoldResult>> offsets(NumOuts), sizes(NumOuts);
  SmallVector<RankedTensorType> types(NumOuts);
  auto rows = [&](Out o) {
    offsets[o] = {batchIv, z, chunkStart};
    sizes[o] = {u1, length, widthSize};
    types[o] = RankedTensorType::get({lengthDim, staticWidthDim}, f32);
  };
  rows(DV);
  rows(DDelta);
  switch (decayRank) {
  case 1:
    offsets[DLog] = {batchIv, chunkStart};
    sizes[DLog] = {u1, widthSize};
    types[DLog] = RankedTensorType::get({staticWidthDim}, f32);
    break;
  case 2:
    offsets[DLog] = {batchIv, z, chunkStart};
    sizes[DLog] = {u1, b.getIndexAttr(key), widthSize};
    types[DLog] = RankedTensorType::get({key, staticWidthDim}, f32);
    break;
  default:
    rows(DLog);
  }
  for (Out o : {DQ, DK}) {
    if (!sharedKeys) {
      rows(o);
      continue;
    }
    offsets[o] = {batchIv, chunkIv, z, z};
    sizes[o] = {u1, u1, length, b.getIndexAttr(key)};
    types[o] = RankedTensorType::get({lengthDim, key}, f32);
  }
  SmallVector<Value> slices, partials(NumOuts);
  for (int o = 0; o < NumOuts; ++o) {
    Value slice = tensor::ExtractSliceOp::create(
        b, loc, types[o], shared[o], offsets[o], sizes[o],
        SmallVector<OpFoldResult>(offsets[o].size(), u1));
    // The loops write everything but the shared keys' cotangents, which
    // accumulate.
    if (laneSummed && (o == DQ || o == DK)) {
      // Summed over the lanes at every step, into the zeroed [L, K] slice.
      slice = linalg::FillOp::create(b, loc, ValueRange{zeroF32(b)},
                                     ValueRange{slice})
                  .getResult(0);
    } else if (sharedKeys && (o == DQ || o == DK)) {
      // Per lane, in a zeroed [L, K, W] scratch. Each scratch is an
      // allocation of its own: two equal tensor.empty ops and their fills
      // would be merged by CSE, and bufferization would then copy the
      // zeros into a second buffer at every chunk.
      partials[o] = slice;
      Value scratch = bufferization::AllocTensorOp::create(
          b, loc, RankedTensorType::get({lengthDim, key, width}, f32),
          lengthDim == ShapedType::kDynamic ? ValueRange{lengthValue}
                                            : ValueRange{});
      slice = linalg::FillOp::create(b, loc, ValueRange{zeroF32(b)},
                                     ValueRange{scratch})
                  .getResult(0);
    }
    slices.push_back(slice);
  }

  // Scratch, reused by every block: the checkpoints (unless the forward
  // kept them), a chunk's states and its steps' decay factors.
  Value chunks =
      arith::CeilDivSIOp::create(b, loc, lengthValue, index(b, chunk));
  SmallVector<Value> blockInits(slices);
  if (!forwardCheckpoints)
    blockInits.push_back(tensor::EmptyOp::create(
        b, loc, ArrayRef<int64_t>{ShapedType::kDynamic, key, width}, f32,
        ValueRange{chunks}));
  blockInits.push_back(tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{chunk + 1, key, width}, f32));
  blockInits.push_back(tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{chunk, key, width}, f32));
  auto blockLoop = scf::ForOp::create(
      b, loc, zero, size, one, blockInits,
      [&](OpBuilder &bb, Location, Value j, ValueRange carried) {
        Value blockIv = arith::AddIOp::create(bb, loc, firstBlock, j);
        Value c0 = arith::MulIOp::create(bb, loc, blockIv, index(bb, width));
        Value column = arith::MulIOp::create(bb, loc, j, index(bb, width));
        SmallVector<Value> outs(carried.take_front(NumOuts));
        Value ckpt = forwardCheckpoints ? Value() : carried[NumOuts];
        Value states = carried[carried.size() - 2], decays = carried.back();

        // The block's invariants.
        SmallVector<Value> staticDecay;
        if (decayRank == 1)
          staticDecay.push_back(
              read(bb, op.getLogDecay(), {c0}, width, fullBlocks));
        else if (decayRank == 2)
          staticDecay = gatherPerKey(bb, op.getLogDecay(), c0);
        Value skip = op.getSkip()
                         ? read(bb, op.getSkip(), {c0}, width, fullBlocks)
                         : Value();

        // Forward: the state at the start of each chunk of steps (the last
        // chunk's steps are not needed: nothing starts after it), unless
        // the forward scan kept them.
        if (!forwardCheckpoints) {
          SmallVector<Value> init(key, zeros(bb, width));
          init.push_back(ckpt);
          Value lastStart = arith::MulIOp::create(
              bb, loc, arith::SubIOp::create(bb, loc, chunks, one),
              index(bb, chunk));
          auto forward = scf::ForOp::create(
              bb, loc, zero, chunks, one, init,
              [&](OpBuilder &fb, Location, Value c, ValueRange args) {
                Value saved = storeTile(fb, args.take_front(key), args[key], c);
                Value start =
                    arith::MulIOp::create(fb, loc, c, index(fb, chunk));
                Value end = minIndex(
                    fb, lastStart,
                    arith::AddIOp::create(fb, loc, start, index(fb, chunk)));
                auto steps = scf::ForOp::create(
                    fb, loc, start, end, one, args.take_front(key),
                    [&](OpBuilder &sb, Location, Value p, ValueRange s) {
                      scf::YieldOp::create(sb, loc,
                                           forwardStep(sb, batchIv,
                                                       timeOf(sb, p), c0,
                                                       staticDecay, s));
                    });
                SmallVector<Value> yields(steps.getResults());
                yields.push_back(saved);
                scf::YieldOp::create(fb, loc, yields);
              });
          ckpt = forward.getResults()[key];
        }

        // Backward over the chunks, last first, carrying dS, the
        // time-invariant decay's accumulators and the outputs.
        int64_t accumulators = decayRank == 1 ? 1 : decayRank == 2 ? key : 0;
        SmallVector<Value> backInit(key + accumulators, zeros(bb, width));
        backInit.append(outs);
        backInit.append({states, decays});
        auto backward = scf::ForOp::create(
            bb, loc, zero, chunks, one, backInit,
            [&](OpBuilder &cb, Location, Value cr, ValueRange args) {
              Value c = arith::SubIOp::create(
                  cb, loc, arith::SubIOp::create(cb, loc, chunks, one), cr);
              Value start = arith::MulIOp::create(cb, loc, c, index(cb, chunk));
              Value end = minIndex(
                  cb, lengthValue,
                  arith::AddIOp::create(cb, loc, start, index(cb, chunk)));
              Value n = arith::SubIOp::create(cb, loc, end, start);
              // The chunk's states, from its checkpoint.
              SmallVector<Value> first =
                  forwardCheckpoints
                      ? readTile(cb, forwardCheckpoints, {batchIv, blockIv, c})
                      : readTile(cb, ckpt, c);
              // The chunk's states, from its checkpoint, and the decay
              // factors of its steps (the backward's, without exp again).
              Value st = storeTile(cb, first, args[args.size() - 2], zero);
              SmallVector<Value> recomputeInit(first);
              recomputeInit.append({st, args.back()});
              auto recompute = scf::ForOp::create(
                  cb, loc, zero, n, one, recomputeInit,
                  [&](OpBuilder &rb, Location, Value i, ValueRange s) {
                    Value t =
                        timeOf(rb, arith::AddIOp::create(rb, loc, start, i));
                    SmallVector<Value> decayFactors;
                    SmallVector<Value> next =
                        forwardStep(rb, batchIv, t, c0, staticDecay,
                                    s.take_front(key), &decayFactors);
                    // The rows only the backward steps read (the others
                    // this step has just read), for those steps.
                    auto prefetch = [&](Value view, ValueRange at) {
                      memref::PrefetchOp::create(rb, loc, view, at,
                                                 /*isWrite=*/false,
                                                 /*localityHint=*/3,
                                                 /*isDataCache=*/true);
                    };
                    prefetch(gradView, {batchIv, t, c0});
                    if (queryView && sharedKeys)
                      prefetch(queryView,
                               {batchIv, t, index(rb, 0), index(rb, 0)});
                    else if (queryView)
                      prefetch(queryView, {batchIv, t, c0});
                    Value stored =
                        storeTile(rb, next, s[key],
                                  {arith::AddIOp::create(rb, loc, i, one)});
                    next.push_back(stored);
                    next.push_back(storeTile(rb, decayFactors, s[key + 1], i));
                    scf::YieldOp::create(rb, loc, next);
                  });
              st = recompute.getResults()[key];
              Value dec = recompute.getResults()[key + 1];

              // Its steps, last first.
              SmallVector<Value> stepInit(args.drop_back(2));
              auto steps = scf::ForOp::create(
                  cb, loc, zero, n, one, stepInit,
                  [&](OpBuilder &sb, Location, Value ir, ValueRange a) {
                    Value i = arith::SubIOp::create(
                        sb, loc, arith::SubIOp::create(sb, loc, n, one), ir);
                    Value t =
                        timeOf(sb, arith::AddIOp::create(sb, loc, start, i));
                    SmallVector<Value> dS(a.take_front(key));
                    SmallVector<Value> acc(a.slice(key, accumulators));
                    SmallVector<Value> o(a.drop_front(key + accumulators));
                    SmallVector<Value> prev = readTile(sb, st, i);
                    SmallVector<Value> factors = readTile(sb, dec, i);
                    SmallVector<Value> cur = readTile(
                        sb, st, {arith::AddIOp::create(sb, loc, i, one)});
                    Value dy =
                        read(sb, grads, {batchIv, t, c0}, width, fullBlocks);
                    Value u =
                        read(sb, values, {batchIv, t, c0}, width, fullBlocks);
                    Value dt = delta ? read(sb, delta, {batchIv, t, c0}, width,
                                            fullBlocks)
                                     : Value();
                    Value dv = skip ? mul(sb, skip, dy) : zeros(sb, width);
                    // o_t = S_tᵀ q_t: dS += q dy, dq += S_t dy.
                    SmallVector<Value> laneParts[NumOuts];
                    auto accumulate = [&](Out which, int64_t entry, Value x) {
                      if (laneSummed) {
                        laneParts[which].push_back(x);
                      } else if (sharedKeys) {
                        SmallVector<Value> at = {t, index(sb, entry),
                                                 index(sb, 0)};
                        Value old = read(sb, o[which], at, width, true);
                        o[which] =
                            write(sb, add(sb, old, x), o[which], at, true);
                      } else {
                        o[which] = write(sb, x, o[which], {t, column},
                                         fullBlocks && fullChunks);
                      }
                    };
                    for (int64_t e = 0; e < key; ++e) {
                      Value q = queries ? perKey(sb, queries, batchIv, t, c0, e)
                                        : Value();
                      dS[e] = q ? fma(sb, q, dy, dS[e]) : add(sb, dS[e], dy);
                      accumulate(DQ, e, mul(sb, cur[e], dy));
                    }
                    // S_t = a ⊙ S_{t-1} + (δ k) v, key by key. The input
                    // term's cotangents share Σ_n dS_n k_n: dv = δ Σ, and
                    // dδ = v Σ + Σ_n dS_n S_{t-1},n a_n g_n.
                    Value dKeys = zeros(sb, width);
                    Value dDelta = zeros(sb, width);
                    Value dHead = zeros(sb, width);
                    Value scaledInput = dt ? mul(sb, u, dt) : u;
                    Value timeDecay;
                    for (int64_t e = 0; e < key; ++e) {
                      Value raw;
                      if (decayRank >= 3)
                        raw = timeDecay ? timeDecay
                                        : (timeDecay = rawDecay(sb, batchIv, t,
                                                                c0, {}, e));
                      else
                        raw = rawDecay(sb, batchIv, t, c0, staticDecay, e);
                      Value a = factors[e];
                      Value k = perKey(sb, keys, batchIv, t, c0, e);
                      Value d = dS[e];
                      dKeys = fma(sb, d, k, dKeys);
                      Value dga = mul(sb, mul(sb, d, prev[e]), a);
                      dS[e] = mul(sb, a, d);
                      accumulate(DK, e, mul(sb, d, scaledInput));
                      // Without delta, dδ is that of the input term only
                      // (as the evaluator defines it).
                      if (dt)
                        dDelta = fma(sb, dga, raw, dDelta);
                      Value &sum = decayRank == 2 ? acc[e] : dHead;
                      sum = dt ? fma(sb, dga, dt, sum) : add(sb, sum, dga);
                    }
                    dv = dt ? fma(sb, dKeys, dt, dv) : add(sb, dv, dKeys);
                    dDelta = fma(sb, u, dKeys, dDelta);
                    for (Out which : {DQ, DK}) {
                      if (!laneSummed)
                        continue;
                      SmallVector<Value> at = {t, index(sb, 0)};
                      Value old = read(sb, o[which], at, key, true);
                      Value sums = laneSums(sb, loc, laneParts[which]);
                      o[which] =
                          write(sb, add(sb, old, sums), o[which], at, true);
                    }
                    bool inBounds = fullBlocks && fullChunks;
                    o[DV] = write(sb, dv, o[DV], {t, column}, inBounds);
                    o[DDelta] =
                        write(sb, dDelta, o[DDelta], {t, column}, inBounds);
                    if (decayRank >= 3)
                      o[DLog] =
                          write(sb, dHead, o[DLog], {t, column}, inBounds);
                    else if (decayRank == 1)
                      acc[0] = add(sb, acc[0], dHead);
                    SmallVector<Value> yields(dS);
                    yields.append(acc);
                    yields.append(o);
                    scf::YieldOp::create(sb, loc, yields);
                  });
              SmallVector<Value> yields(steps.getResults());
              yields.append({st, dec});
              scf::YieldOp::create(cb, loc, yields);
            });
        ValueRange results = backward.getResults();
        SmallVector<Value> next(results.slice(key + accumulators, NumOuts));
        // The time-invariant decay's sums over the sequence.
        bool inBounds = fullBlocks && fullChunks;
        if (decayRank == 1)
          next[DLog] = write(bb, results[key], next[DLog], {column}, inBounds);
        for (int64_t e = 0; decayRank == 2 && e < key; ++e)
          next[DLog] = write(bb, results[key + e], next[DLog],
                             {index(bb, e), column}, inBounds);
        if (ckpt)
          next.push_back(ckpt);
        next.append({results[results.size() - 2], results.back()});
        scf::YieldOp::create(bb, loc, next);
      });

  // The shared keys' scratch summed over its lanes: [L, K].
  SmallVector<Value> results(blockLoop.getResults().take_front(NumOuts));
  for (Out o : {DQ, DK}) {
    if (!sharedKeys || laneSummed)
      continue;
    Value scratch = results[o];
    auto sum = scf::ForOp::create(
        b, loc, zero, lengthValue, one, ValueRange{partials[o]},
        [&](OpBuilder &nb, Location, Value t, ValueRange carried) {
          Value part = carried[0];
          for (int64_t e = 0; e < key; ++e) {
            Value lanes =
                read(nb, scratch, {t, index(nb, e), index(nb, 0)}, width, true);
            Value total = addLanes(nb, loc, lanes);
            part = tensor::InsertOp::create(nb, loc, total, part,
                                            ValueRange{t, index(nb, e)});
          }
          scf::YieldOp::create(nb, loc, part);
        });
    results[o] = sum.getResult(0);
  }
  auto inParallel = scf::InParallelOp::create(b, loc);
  for (int o = 0; o < NumOuts; ++o)
    publish(b, loc, inParallel, results[o], shared[o], offsets[o], sizes[o]);
}

/// A linalg.generic summing `input` into a zero `init` of `type` over the
/// dims of `input` that `outMap` leaves out.
static Value sumInto(OpBuilder &b, Location loc, Value input,
                     RankedTensorType type, ArrayRef<Value> dynamicSizes,
                     AffineMap inMap, AffineMap outMap) {
  Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  Value init =
      linalg::FillOp::create(
          b, loc, ValueRange{zero},
          ValueRange{tensor::EmptyOp::create(b, loc, type, dynamicSizes)})
          .getResult(0);
  SmallVector<utils::IteratorType> iterators(inMap.getNumDims(),
                                             utils::IteratorType::reduction);
  for (AffineExpr e : outMap.getResults())
    iterators[cast<AffineDimExpr>(e).getPosition()] =
        utils::IteratorType::parallel;
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ValueRange{input}, ValueRange{init},
             ArrayRef<AffineMap>{inMap, outMap}, iterators,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{arith::AddFOp::create(nb, nl, args[1], args[0])
                                  .getResult()});
             })
      .getResult(0);
}

void ChannelGradLowering::lower() {
  rewriter.setInsertionPoint(op);
  MLIRContext *ctx = rewriter.getContext();
  sharedKeys = groups == 1;
  laneSummed = sharedKeys && llvm::isPowerOf2_64(key) &&
               llvm::isPowerOf2_64(width) && key <= width;
  values = dropUnitLast(rewriter, op.getV());
  grads = dropUnitLast(rewriter, op.getGrad());
  keys = sharedKeys ? op.getK() : dropUnitLast(rewriter, op.getK());
  if (Value q = op.getQ())
    queries = sharedKeys ? q : dropUnitLast(rewriter, q);
  gradView = prefetchView(rewriter, grads);
  if (queries)
    queryView = prefetchView(rewriter, queries);
  logDecay = op.getLogDecay();
  if (decayRank == 4) // K = 1: one decay per channel.
    logDecay = dropUnitLast(rewriter, logDecay);
  batch = tensor::getMixedSize(rewriter, loc, values, 0);
  length = tensor::getMixedSize(rewriter, loc, values, 1);
  lengthValue = getValueOrCreateConstantIndexOp(rewriter, loc, length);
  lastIndex =
      arith::SubIOp::create(rewriter, loc, lengthValue, index(rewriter, 1));
  Value batchValue = getValueOrCreateConstantIndexOp(rewriter, loc, batch);

  blocks = (heads + width - 1) / width;
  fullBlocks = heads % width == 0;
  chunkBlocks = (blocks + channelChunks - 1) / channelChunks;
  chunkCount = (blocks + chunkBlocks - 1) / chunkBlocks;
  fullChunks = blocks % chunkBlocks == 0;

  // The forall's outputs.
  auto rowsType = cast<RankedTensorType>(values.getType());
  SmallVector<Value> rowSizes;
  for (int64_t d = 0; d < 2; ++d)
    if (rowsType.isDynamicDim(d))
      rowSizes.push_back(tensor::DimOp::create(rewriter, loc, values, d));
  auto emptyRows = [&] {
    return tensor::EmptyOp::create(rewriter, loc, rowsType, rowSizes)
        .getResult();
  };
  SmallVector<Value> outputs = {emptyRows(), emptyRows()};
  SmallVector<Value> batchSize;
  if (rowsType.isDynamicDim(0))
    batchSize.push_back(batchValue);
  int64_t batchDim = rowsType.getShape()[0];
  RankedTensorType partialLogType;
  if (decayRank == 1) {
    partialLogType = RankedTensorType::get({batchDim, heads}, f32);
    outputs.push_back(
        tensor::EmptyOp::create(rewriter, loc, partialLogType, batchSize));
  } else if (decayRank == 2) {
    partialLogType = RankedTensorType::get({batchDim, key, heads}, f32);
    outputs.push_back(
        tensor::EmptyOp::create(rewriter, loc, partialLogType, batchSize));
  } else {
    outputs.push_back(emptyRows());
  }
  auto partialType = RankedTensorType::get(
      {batchDim, chunkCount, rowsType.getShape()[1], key}, f32);
  SmallVector<Value> partialSizes(rowSizes);
  for (int i = 0; i < 2; ++i)
    outputs.push_back(sharedKeys ? tensor::EmptyOp::create(
                                       rewriter, loc, partialType, partialSizes)
                                       .getResult()
                                 : emptyRows());

  auto forall = scf::ForallOp::create(
      rewriter, loc,
      ArrayRef<OpFoldResult>{batch, rewriter.getIndexAttr(chunkCount)}, outputs,
      /*mapping=*/std::nullopt, [&](OpBuilder &b, Location, ValueRange args) {
        buildChunk(b, args[0], args[1], args.drop_front(2));
      });

  // Back to the op's result types.
  auto expandRows = [&](Value rows, Type type) -> Value {
    SmallVector<OpFoldResult> shape = {
        batch, length, rewriter.getIndexAttr(heads), rewriter.getIndexAttr(1)};
    return tensor::ExpandShapeOp::create(
        rewriter, loc, cast<RankedTensorType>(type), rows,
        SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}}, shape);
  };
  auto dims = [&](unsigned n, ArrayRef<unsigned> pick) {
    SmallVector<AffineExpr> exprs;
    for (unsigned d : pick)
      exprs.push_back(getAffineDimExpr(d, ctx));
    return AffineMap::get(n, 0, exprs, ctx);
  };
  SmallVector<Value> results(5);
  results[2] = expandRows(forall.getResult(DV), op.getGradV().getType());
  results[4] = castTo(forall.getResult(DDelta), op.getGradDelta().getType());
  auto logType = cast<RankedTensorType>(op.getGradLogDecay().getType());
  if (decayRank == 1)
    results[3] =
        sumInto(rewriter, loc, forall.getResult(DLog), logType, {},
                AffineMap::getMultiDimIdentityMap(2, ctx), dims(2, {1}));
  else if (decayRank == 2) // [B, K, H] to [H, K]
    results[3] = sumInto(rewriter, loc, forall.getResult(DLog), logType, {},
                         dims(3, {0, 2, 1}), dims(3, {1, 2}));
  else if (decayRank == 3)
    results[3] = castTo(forall.getResult(DLog), logType);
  else
    results[3] = expandRows(forall.getResult(DLog), logType);
  for (auto [i, o] : {std::pair{0, DQ}, std::pair{1, DK}}) {
    Type type = i == 0 ? op.getGradQ().getType() : op.getGradK().getType();
    if (!sharedKeys) {
      results[i] = expandRows(forall.getResult(o), type);
      continue;
    }
    // [B, chunks, L, K] summed to [B, L, K], then [B, L, 1, K].
    auto sumType =
        RankedTensorType::get({batchDim, rowsType.getShape()[1], key}, f32);
    Value sum =
        sumInto(rewriter, loc, forall.getResult(o), sumType, partialSizes,
                AffineMap::getMultiDimIdentityMap(4, ctx), dims(4, {0, 2, 3}));
    SmallVector<OpFoldResult> shape = {batch, length, rewriter.getIndexAttr(1),
                                       rewriter.getIndexAttr(key)};
    results[i] = tensor::ExpandShapeOp::create(
        rewriter, loc, cast<RankedTensorType>(type), sum,
        SmallVector<ReassociationIndices>{{0}, {1, 2}, {3}}, shape);
  }
  rewriter.replaceOp(op, results);
}

namespace {
struct VectorizeGradientsPass
    : public glint::impl::GlintVectorizeGradientsBase<VectorizeGradientsPass> {
  using Base::Base;
  void runOnOperation() override {
    int64_t width = vectorWidth;
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(), width)))
      return signalPassFailure();
    SmallVector<std::pair<RecurrenceGradOp, RecurrenceOp>> ops;
    llvm::SmallPtrSet<Operation *, 4> paired;
    getOperation()->walk([&](RecurrenceGradOp op) {
      if (!ChannelGradLowering::matches(op))
        return;
      RecurrenceOp forward = fuseForward ? forwardOf(op) : RecurrenceOp();
      if (forward && !paired.insert(forward).second)
        forward = RecurrenceOp();
      ops.push_back({op, forward});
    });
    IRRewriter rewriter(&getContext());
    ChannelScanOptions scan;
    scan.width = width;
    scan.timeBlock = timeBlock;
    scan.channelChunks = chunks;
    for (auto [op, forward] : ops) {
      Value checkpoints;
      if (forward)
        checkpoints = lowerChannelRecurrenceWithCheckpoints(forward, rewriter,
                                                            scan, chunkSize);
      ChannelGradLowering(op, rewriter, width, chunks, chunkSize, checkpoints)
          .lower();
    }
  }

  /// The forward scan of `op` that can keep the backward's checkpoints: a
  /// per-channel glint.recurrence earlier in the same block on the same
  /// operands, from a zero state, whose time blocks start every checkpoint.
  RecurrenceOp forwardOf(RecurrenceGradOp op) {
    if (timeBlock < 1 || chunkSize % timeBlock != 0)
      return {};
    for (Operation *user : op.getV().getUsers()) {
      auto forward = dyn_cast<RecurrenceOp>(user);
      if (!forward || forward->getBlock() != op->getBlock() ||
          !forward->isBeforeInBlock(op) || !isChannelRecurrence(forward) ||
          forward.getInitialState() || forward.getFinalState() ||
          forward.getQ() != op.getQ() || forward.getK() != op.getK() ||
          forward.getLogDecay() != op.getLogDecay() ||
          forward.getDelta() != op.getDelta() ||
          forward.getBonus() != op.getBonus() ||
          forward.getSkip() != op.getSkip() ||
          forward.getReverse() != op.getReverse() ||
          forward.getNormalize() != op.getNormalize())
        continue;
      return forward;
    }
    return {};
  }
};
} // namespace
