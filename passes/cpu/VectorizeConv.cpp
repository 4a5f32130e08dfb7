//===- VectorizeConv.cpp - glint-vectorize-conv ---------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers `glint.conv1d` (the causal depthwise convolution before Mamba's and
// Griffin's scans) to vector loops on tensors. Through linalg it became a
// padded copy of the input and a scalar depthwise-convolution loop nest,
// about as fast as the naive C++ loop (glint-bench conv1d, 1.07x); with
// the scan fast, it is the next bottleneck. Here each output row
// is computed from the W input rows it reads, W lanes of channels at a
// time, straight from the input (no padded copy):
//
//   wt = transpose(w) : [W, C]                  -- taps contiguous per channel
//   scf.forall (%b, %chunk) in (B, chunks) shared_outs(%out) {
//     scf.for %s = 0 to L {                     -- steps in processing order
//       t = reverse ? L - 1 - s : s
//       scf.for %c in the chunk's channels step W {
//         y = bias[c : c + W]
//         for i < K (unrolled): y = fma(wt[i, c : c + W], x_i, y)
//           x_i = the input at step s - (K-1) + i: x[b, t_i, c : c + W],
//                 or initial_state[b, s - (K-1) + i + K-1, c : ...], or 0
//         out[b, t, c : c + W] = y
//       }
//     }
//   }
//
// Rows are walked in memory order, so the hardware prefetchers stream the
// input and the output; the K - 1 earlier rows are still in L1. The first
// K - 1 steps, which may read the initial state, run in a loop of their own
// so that the main loop has no branch. Channels past the last full vector
// are masked. The final state (the last K - 1 inputs in processing order,
// or the initial state where L < K - 1) is copied out after the loop. The
// anti-causal form (`reverse`) is the same loop over the flipped sequence:
// the state then holds the positions after the end, as the op defines.
// Sums run in tap order with fused multiply-adds, so the result agrees with
// the reference to float32 rounding (test/unit/VectorizeConvTest.cpp).
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
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "glint-vectorize-conv"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVECTORIZECONV
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

class ConvLowering : LoweringBuilder {
public:
  ConvLowering(Conv1dOp op, RewriterBase &rewriter, int64_t lanes,
               int64_t chunks)
      : LoweringBuilder(op.getLoc()), op(op), rewriter(rewriter), lanes(lanes),
        chunks(chunks), taps(op.getWidth()) {}

  /// f32, a static channel count (the weight's) and a static width.
  static bool matches(Conv1dOp op) {
    auto type = cast<RankedTensorType>(op.getInput().getType());
    auto weight = cast<RankedTensorType>(op.getWeight().getType());
    return type.getElementType().isF32() && !type.isDynamicDim(2) &&
           weight.hasStaticShape();
  }
  void lower();

private:
  Value add(OpBuilder &b, Value x, int64_t y) {
    return y == 0 ? x : arith::AddIOp::create(b, loc, x, index(b, y));
  }
  Value sub(OpBuilder &b, Value x, Value y) {
    return arith::SubIOp::create(b, loc, x, y);
  }
  Value zeros(OpBuilder &b) { return LoweringBuilder::zeros(b, lanes); }
  /// A vector of channels, masked past C unless it is a multiple of W.
  Value read(OpBuilder &b, Value source, ValueRange indices) {
    return LoweringBuilder::read(b, source, indices, lanes, fullVectors);
  }
  Value write(OpBuilder &b, Value vector, Value dest, ValueRange indices) {
    return LoweringBuilder::write(b, vector, dest, indices, fullVectors);
  }
  /// The time index of processing step `s` (reverse: L - 1 - s).
  Value timeOf(OpBuilder &b, Value s) {
    if (!op.getReverse())
      return s;
    return sub(b, sub(b, length, s), index(b, 1));
  }
  /// The input vector of processing step `s` (an index that may be
  /// negative when `mayBeEarly`: then the initial state's row s + K - 1, or
  /// zeros) at channel `c` of batch `batchIv`.
  Value input(OpBuilder &b, Value batchIv, Value s, Value c, bool mayBeEarly);

  Conv1dOp op;
  RewriterBase &rewriter;
  int64_t lanes, chunks, taps;
  /// Whether C is a multiple of the lanes (no masks).
  bool fullVectors = false;
  Value length, transposed;
};

} // namespace

Value ConvLowering::input(OpBuilder &b, Value batchIv, Value s, Value c,
                          bool mayBeEarly) {
  Value x = op.getInput();
  if (!mayBeEarly)
    return read(b, x, {batchIv, timeOf(b, s), c});
  Value early =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, s, index(b, 0));
  auto choice = scf::IfOp::create(
      b, loc, early,
      [&](OpBuilder &tb, Location) {
        Value state = op.getInitialState();
        Value v = state ? read(tb, state, {batchIv, add(tb, s, taps - 1), c})
                        : zeros(tb);
        scf::YieldOp::create(tb, loc, v);
      },
      [&](OpBuilder &eb, Location) {
        scf::YieldOp::create(eb, loc, read(eb, x, {batchIv, timeOf(eb, s), c}));
      });
  return choice.getResult(0);
}

void ConvLowering::lower() {
  rewriter.setInsertionPoint(op);
  Value x = op.getInput(), w = op.getWeight();
  auto type = cast<RankedTensorType>(x.getType());
  int64_t channels = type.getDimSize(2);
  fullVectors = channels % lanes == 0;
  Value batch = tensor::DimOp::create(rewriter, loc, x, 0);
  length = tensor::DimOp::create(rewriter, loc, x, 1);

  // The taps of a vector of channels, contiguous: wt[i, c] = w[c, i].
  Value empty = tensor::EmptyOp::create(rewriter, loc,
                                        ArrayRef<int64_t>{taps, channels}, f32);
  transposed = linalg::TransposeOp::create(rewriter, loc, w, empty,
                                           ArrayRef<int64_t>{1, 0})
                   ->getResult(0);

  // Channel chunks: whole vectors, `chunks` of them at most.
  int64_t vectors = (channels + lanes - 1) / lanes;
  int64_t chunkVectors = (vectors + chunks - 1) / chunks;
  int64_t chunkCount = (vectors + chunkVectors - 1) / chunkVectors;

  SmallVector<Value> outputs;
  auto outType = cast<RankedTensorType>(op.getOutput().getType());
  SmallVector<Value> dynamic;
  if (outType.isDynamicDim(0))
    dynamic.push_back(batch);
  if (outType.isDynamicDim(1))
    dynamic.push_back(length);
  outputs.push_back(tensor::EmptyOp::create(rewriter, loc, outType, dynamic));

  auto forall = scf::ForallOp::create(
      rewriter, loc,
      ArrayRef<OpFoldResult>{batch, rewriter.getIndexAttr(chunkCount)}, outputs,
      /*mapping=*/std::nullopt, [&](OpBuilder &b, Location, ValueRange args) {
        Value batchIv = args[0], chunk = args[1], out = args[2];
        Value c0 = arith::MulIOp::create(b, loc, chunk,
                                         index(b, chunkVectors * lanes));
        Value c1 = arith::MinSIOp::create(
            b, loc, add(b, c0, chunkVectors * lanes), index(b, channels));
        // The batch element's rows for the chunk's channels, written in
        // place.
        SmallVector<OpFoldResult> offsets = {batchIv, b.getIndexAttr(0),
                                             b.getIndexAttr(0)};
        SmallVector<OpFoldResult> sizes = {b.getIndexAttr(1), length,
                                           b.getIndexAttr(channels)};
        SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
        // Each chunk writes only its channels, but the slice spans all of
        // them: parallel_insert_slice of disjoint channel ranges needs
        // offsets along C. Slice along C instead.
        Value cWidth = sub(b, c1, c0);
        offsets[2] = c0;
        sizes[2] = cWidth;
        Value rows = tensor::ExtractSliceOp::create(b, loc, out, offsets, sizes,
                                                    strides);
        // Inside the slice, channels count from 0 and the batch index is 0.
        Value zero = index(b, 0);
        Value local = rows;
        auto localSteps = [&](OpBuilder &nb, Value from, Value to, Value dest,
                              bool early) {
          // Reads use global channels (c0 + j), writes the slice's (j).
          Value bias = op.getBias();
          auto stepLoop = scf::ForOp::create(
              nb, loc, from, to, index(nb, 1), ValueRange{dest},
              [&](OpBuilder &sb, Location, Value s, ValueRange carried) {
                Value t = timeOf(sb, s);
                auto channelLoop = scf::ForOp::create(
                    sb, loc, zero, cWidth, index(sb, lanes), carried,
                    [&](OpBuilder &cb, Location, Value j, ValueRange cCarried) {
                      Value c = arith::AddIOp::create(cb, loc, c0, j);
                      Value y = bias ? read(cb, bias, {c}) : zeros(cb);
                      for (int64_t i = 0; i < taps; ++i) {
                        Value si = add(cb, s, i - (taps - 1));
                        Value wi = read(cb, transposed, {index(cb, i), c});
                        y = math::FmaOp::create(
                            cb, loc, wi, input(cb, batchIv, si, c, early), y);
                      }
                      scf::YieldOp::create(
                          cb, loc, write(cb, y, cCarried[0], {zero, t, j}));
                    });
                scf::YieldOp::create(sb, loc, channelLoop.getResults());
              });
          return stepLoop.getResult(0);
        };
        // Steps that may read before the start, then the rest.
        Value head = arith::MinSIOp::create(b, loc, index(b, taps - 1), length);
        local = localSteps(b, zero, head, local, /*early=*/true);
        local = localSteps(b, head, length, local, /*early=*/false);

        publish(b, loc, scf::InParallelOp::create(b, loc), local, out, offsets,
                sizes);
      });
  SmallVector<Value> results = {forall.getResult(0)};

  if (Value finalState = op.getFinalState()) {
    // Row j: processing step L - (K-1) + j (the state's row L + j when that
    // is before the start).
    auto stateType = cast<RankedTensorType>(finalState.getType());
    SmallVector<Value> stateDynamic;
    if (stateType.isDynamicDim(0))
      stateDynamic.push_back(batch);
    Value state =
        tensor::EmptyOp::create(rewriter, loc, stateType, stateDynamic);
    Value zero = index(rewriter, 0), one = index(rewriter, 1);
    auto batchLoop = scf::ForOp::create(
        rewriter, loc, zero, batch, one, ValueRange{state},
        [&](OpBuilder &bb, Location, Value batchIv, ValueRange bCarried) {
          auto rowLoop = scf::ForOp::create(
              bb, loc, zero, index(bb, taps - 1), one, bCarried,
              [&](OpBuilder &rb, Location, Value j, ValueRange rCarried) {
                Value s = arith::AddIOp::create(
                    rb, loc, sub(rb, length, index(rb, taps - 1)), j);
                auto channelLoop = scf::ForOp::create(
                    rb, loc, zero, index(rb, channels), index(rb, lanes),
                    rCarried,
                    [&](OpBuilder &cb, Location, Value c, ValueRange cCarried) {
                      Value v = input(cb, batchIv, s, c, /*mayBeEarly=*/true);
                      scf::YieldOp::create(
                          cb, loc, write(cb, v, cCarried[0], {batchIv, j, c}));
                    });
                scf::YieldOp::create(rb, loc, channelLoop.getResults());
              });
          scf::YieldOp::create(bb, loc, rowLoop.getResults());
        });
    results.push_back(batchLoop.getResult(0));
  }
  rewriter.replaceOp(op, results);
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {
struct VectorizeConvPass
    : public glint::impl::GlintVectorizeConvBase<VectorizeConvPass> {
  using GlintVectorizeConvBase::GlintVectorizeConvBase;

  void runOnOperation() override {
    int64_t lanes = vectorWidth;
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(), lanes)))
      return signalPassFailure();
    SmallVector<Conv1dOp> convs;
    getOperation()->walk([&](Conv1dOp op) { convs.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (Conv1dOp op : convs)
      if (ConvLowering::matches(op))
        ConvLowering(op, rewriter, lanes, std::max<int64_t>(chunks, 1)).lower();
  }
};
} // namespace
