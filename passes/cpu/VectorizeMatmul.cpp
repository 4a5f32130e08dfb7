//===- VectorizeMatmul.cpp - glint-vectorize-matmul -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the model's matrix products (`glint.linear` becomes a 2-D
// `linalg.matmul`, its weight either PyTorch's [N, K] — the transposed-B
// form — or [K, N]) to register-blocked vector loops on tensors. Left to
// convert-linalg-to-loops, a matmul ran at 2 GFLOP/s on one core, 40x under
// OpenBLAS on the same shapes; this pass is the BLIS recipe written as MLIR:
//
// Many rows (M >= pack-min-rows: a prompt, a training-length sequence). The
// weight is packed into panels of NR = tile-vectors * W columns, laid out
// [P, K, NR] (P = ceil(N / NR), the last panel zero-padded), so that a
// panel's columns at one k are one contiguous run of NR floats. The output is
// then computed in MR x NR tiles held in MR * tile-vectors vector registers
// (6 x 16 with AVX2: 12 accumulators, 2 panel vectors, 1 broadcast = 15 of
// the 16 ymm registers; 6 x 32 with AVX-512), each k an outer product of
// MR broadcast elements of A and the panel's NR-wide row:
//
//   Bp = pack(B)                                     : [P, K, NR]
//   scf.forall (%mb, %pc) in (ceil(M / MC), ceil(P / PC)) shared_outs(%C) {
//     %tile = %C[rows of block mb, pc PC NR : +PC NR]
//             (the ceil(M / MR) row tiles dealt evenly to the blocks)
//     scf.for %kb = 0 to K step KC {                 -- A block in L2
//       scf.for %p in the chunk's PC panels {        -- panel block in L1
//         scf.for %m = 0 to rows step MR {
//           acc[i][j] = tile[m + i, p NR + j W : +W]    (masked at N)
//           scf.for %k = kb to kb + KC iter_args(acc) {
//             b_j = Bp[p, k, j W : +W]
//             acc[i][j] = fma(broadcast(A[m + i, k]), b_j, acc[i][j])
//           }
//           tile[m + i, ...] = acc[i][j]
//         }
//         (rows past the last full tile: the same with MR = 1)
//       }
//     }
//   }
//
// The accumulators start from the output's initial value (zeros, or the
// broadcast bias), so the bias costs nothing extra and depth blocks simply
// accumulate. Packing costs one pass over the weight (N K) per call, small
// next to the product's M N K multiply-adds at these row counts.
//
// Few rows (M < pack-min-rows: a generation step, one token per sequence).
// The product is bound by reading the weight once; packing would double that.
// With the [N, K] weight each output is a dot product along k, the
// contiguous axis of both operands: one weight row after the other, read
// front to back (so the weight streams in memory order), 2 W lanes along k
// per step, one horizontal sum per output; NB = 8 outputs written at once. With
// the [K, N] weight, the outer-product tile above with MR = 1 reads the weight
// rows directly. On prepared panels (below) each row of A is an outer product
// with S neighbouring panels, and each panel's row is prefetched
// `prefetch-bytes` ahead: the loads alone keep too few lines in flight for
// one core to reach its read bandwidth, the fewer the narrower the weight
// (a Mamba-130m-shaped bf16 generation step on one Zen 5 core: 0.64-0.69 of
// the read bandwidth without, 0.75-0.80 with; a kernel of that shape alone
// on 256 MiB of panels: bf16 14 -> 27 GB/s, f32 19 -> 28).
//
// Grouped weights ([G, I, O] or [G, O, I]: G independent blocks, a generic
// over (m, g, o, i) that convert-linalg-to-loops would run with the output
// element loaded and stored at every step of i) are split first into a loop
// over G of 2-D products on the group's slices of x, w and y.
//
// Both paths are emitted; an `scf.if` on M picks one at run time (M is the
// batch times the sequence length, dynamic). Only f32 products whose K and N
// are static (a weight's shape) are rewritten; the others are left to
// convert-linalg-to-loops. A product inside another parallel loop is left
// alone too (its forall would nest). Sums run in a different order than the
// reference evaluator's, so this pass is checked by compiling and running
// against the float64 evaluator (test/unit/VectorizeMatmulTest.cpp).
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "passes/BuilderUtils.h"
#include "passes/cpu/MatrixWeights.h"
#include "passes/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/FormatVariadic.h"

#define DEBUG_TYPE "glint-vectorize-matmul"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTVECTORIZEMATMUL
#include "passes/cpu/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// Where the weight's contraction axis is.
enum class Layout {
  /// C[m, n] = init[m, n] + Σ_k A[m, k] B[k, n].
  KN,
  /// C[m, n] = init[m, n] + Σ_k A[m, k] B[n, k] (PyTorch's [out, in]).
  NK,
};

/// Where the accumulators start: the product's `outs` operand, recognised
/// when it is a fill or a broadcast row, so that the kernel starts from
/// registers and writes into an empty tensor instead of reading a
/// materialised [M, N] initial value back from memory.
struct Initial {
  enum Kind {
    /// Any [M, N] tensor: read from the output (which starts as it).
    Tensor,
    /// linalg.broadcast of a [N] row along the rows (a bias).
    Row,
    /// linalg.fill with a scalar (zero when there is no bias).
    Scalar,
  } kind = Tensor;
  Value value;
};

/// Bytes of a cache line: the few-rows path prefetches one per line.
static constexpr int64_t kCacheLine = 64;

/// The blocking, in elements (see the file comment).
struct Blocking {
  int64_t width;       // W: f32 lanes per vector
  int64_t tileRows;    // MR
  int64_t tileVectors; // NR / W
  int64_t rowBlock;    // MC, a multiple of MR
  int64_t depthBlock;  // KC
  int64_t panelChunk;  // PC: panels per parallel work item
  int64_t packMinRows;
  int64_t streamPanels;  // S: prepared panels the few-rows path reads at once
  int64_t threads;       // the threads the few-rows path's work items feed
  int64_t prefetchBytes; // how far ahead the few-rows path prefetches panels
  /// Weight rows per dot-product block of the few-rows [N, K] path.
  static constexpr int64_t kDotRows = 8;
  /// Accumulators per weight row on that path (the depth unrolled by U W).
  static constexpr int64_t kDotUnroll = 2;
};

class MatmulLowering : LoweringBuilder {
public:
  /// Lowers `op`; with `prepared`, its weight is read from those panels
  /// ([P, K, NR], a prepared weight) instead of its B operand.
  MatmulLowering(linalg::MatmulOp op, Layout layout, RewriterBase &rewriter,
                 const Blocking &blocking, Value prepared = Value())
      : LoweringBuilder(op.getLoc()), op(op), layout(layout),
        rewriter(rewriter), blk(blocking) {
    a = op.getDpsInputOperand(0)->get();
    weight = op.getDpsInputOperand(1)->get();
    auto weightType = cast<RankedTensorType>(weight.getType());
    depth = weightType.getDimSize(layout == Layout::KN ? 0 : 1);
    cols = weightType.getDimSize(layout == Layout::KN ? 1 : 0);
    blk = fitted(blocking, cols);
    panelWidth = blk.tileVectors * blk.width;
    panels = ceilDiv(cols, panelWidth);
    packedDepth =
        layout == Layout::NK ? ceilDiv(depth, blk.width) * blk.width : depth;
    if (prepared) {
      weight = prepared;
      isPrepared = true;
    }
  }

  /// The type of `weightType`'s prepared panels: [P, K, NR], its element
  /// type.
  static RankedTensorType panelType(RankedTensorType weightType, Layout layout,
                                    const Blocking &blocking) {
    int64_t k = weightType.getDimSize(layout == Layout::KN ? 0 : 1);
    int64_t n = weightType.getDimSize(layout == Layout::KN ? 1 : 0);
    Blocking own = fitted(blocking, n);
    int64_t width = own.tileVectors * own.width;
    return RankedTensorType::get({ceilDiv(n, width), k, width},
                                 weightType.getElementType());
  }

  /// `blocking` for a product of `cols` columns: tiles no wider than the
  /// vectors the columns need, and those vectors no wider than the columns
  /// (down to 8 lanes). A panel of NR = 2 W columns for a product of 8 or
  /// 16 (RWKV-6's LoRA products and their backward) multiplied zeros in
  /// three or two of every four lanes.
  static Blocking fitted(Blocking blocking, int64_t cols) {
    int64_t accumulators = blocking.tileRows * blocking.tileVectors;
    blocking.tileVectors = std::clamp<int64_t>(ceilDiv(cols, blocking.width), 1,
                                               blocking.tileVectors);
    while (blocking.tileVectors == 1 && cols * 2 <= blocking.width &&
           blocking.width % 2 == 0 && blocking.width >= 16)
      blocking.width /= 2;
    // As many accumulators as the full tile, in more rows: a tile of one
    // vector per row kept six, fewer multiply-adds in flight than the FMA
    // pipes' latency needs (RWKV-6's 8-column LoRA backward ran at half its
    // lanes' peak). Each output's sum is the same, in the same order.
    if (blocking.tileRows * blocking.tileVectors < accumulators) {
      blocking.tileRows = accumulators / blocking.tileVectors;
      blocking.rowBlock =
          std::max<int64_t>(blocking.rowBlock / blocking.tileRows, 1) *
          blocking.tileRows;
    }
    return blocking;
  }
  /// Whether `op` is a product this pass rewrites, and its layout.
  static std::optional<Layout> match(linalg::MatmulOp op);
  /// Where `op`'s accumulators start.
  static Initial initialOf(linalg::MatmulOp op);
  void lower();

private:
  static int64_t ceilDiv(int64_t x, int64_t y) { return (x + y - 1) / y; }

  // Small builders.
  Value add(OpBuilder &b, Value x, Value y) {
    return arith::AddIOp::create(b, loc, x, y);
  }
  Value add(OpBuilder &b, Value x, int64_t y) {
    return y == 0 ? x : add(b, x, index(b, y));
  }
  Value mul(OpBuilder &b, Value x, int64_t y) {
    return arith::MulIOp::create(b, loc, x, index(b, y));
  }
  Value sub(OpBuilder &b, Value x, Value y) {
    return arith::SubIOp::create(b, loc, x, y);
  }
  Value min(OpBuilder &b, Value x, Value y) { return minIndex(b, x, y); }
  Value min(OpBuilder &b, Value x, int64_t y) { return min(b, x, index(b, y)); }
  Value forLoop(OpBuilder &b, Value from, Value to, int64_t step, Value carried,
                llvm::function_ref<Value(OpBuilder &, Value, Value)> body) {
    return scf::ForOp::create(
               b, loc, from, to, index(b, step), ValueRange{carried},
               [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
                 scf::YieldOp::create(nb, loc, body(nb, iv, args[0]));
               })
        .getResult(0);
  }
  /// A forall over `counts` with `dest` as its shared output: `body(b, ivs,
  /// out)` returns the slice it computed, published at `offsets(ivs)` with
  /// `sizes(ivs)`.
  Value parallel(OpBuilder &b, ArrayRef<OpFoldResult> counts, Value dest,
                 llvm::function_ref<Value(OpBuilder &, ValueRange, Value,
                                          SmallVectorImpl<OpFoldResult> &,
                                          SmallVectorImpl<OpFoldResult> &)>
                     body);

  /// `lanes` elements of the weight along its last axis from `indices` as
  /// f32 (lanes past the end are zeros unless `inBounds`): a bf16 or f16
  /// weight (glint-narrow-weights) is read narrow and widened in registers.
  Value readWeight(OpBuilder &b, ValueRange indices, int64_t lanes,
                   bool inBounds) {
    return widened(b, read(b, weight, indices, lanes, inBounds));
  }
  /// `lanes` as f32: itself, or a bf16 / f16 vector widened.
  Value widened(OpBuilder &b, Value lanes) {
    auto type = cast<VectorType>(lanes.getType());
    if (type.getElementType().isF32())
      return lanes;
    return arith::ExtFOp::create(b, loc, type.clone(f32), lanes);
  }
  /// The initial value of `lanes` accumulators at tile position (row, col)
  /// (global column `globalCol`), as `initial` says.
  Value initialVector(OpBuilder &b, Value tile, Value row, Value col,
                      Value globalCol, int64_t lanes, bool inBounds);
  /// The weight as panels [P, K', NR] (K' = K rounded up to W for [N, K]),
  /// zero past N: one contiguous run of NR floats per panel and k.
  Value pack(OpBuilder &b);
  /// The many-rows path: tiles over the packed weight.
  Value packedProduct(OpBuilder &b, Value packed, Value dest);
  /// W lanes of panel `panel` at depth `k` from column `j` W of `packed` as
  /// f32 (a bf16 or f16 prepared weight is widened in registers).
  Value readPanel(OpBuilder &b, Value packed, Value panel, Value k, int64_t j) {
    return widened(b, read(b, packed, {panel, k, index(b, j * blk.width)},
                           blk.width, /*inBounds=*/true));
  }
  /// The few-rows path on prepared panels: each row of A an outer product
  /// with S (stream-panels) neighbouring panels at a time, which stream in
  /// memory order in S places at once; the chunk's last panels one at a
  /// time.
  Value panelRowsProduct(OpBuilder &b, Value dest);
  /// The panels of work item `item` (chunks of `pc` panels): the first, its
  /// first column, the chunk's columns and panel count (fewer at the end).
  struct PanelChunk {
    Value firstPanel, col0, width, count;
  };
  PanelChunk panelChunk(OpBuilder &b, Value item, int64_t pc) {
    PanelChunk chunk;
    chunk.firstPanel = mul(b, item, pc);
    chunk.col0 = mul(b, chunk.firstPanel, panelWidth);
    chunk.width = min(b, sub(b, index(b, cols), chunk.col0), pc * panelWidth);
    chunk.count = min(b, sub(b, index(b, panels), chunk.firstPanel), pc);
    return chunk;
  }
  /// Reads a panel's j-th vector at depth k: panelRow(b, k, j).
  using PanelRow = llvm::function_ref<Value(OpBuilder &, Value, int64_t)>;
  /// Runs `body(b, tile, col, inBounds, panelRow)` on each of `steps`
  /// groups of `group` neighbouring panels of `packed` from `firstPanel` in
  /// turn, `tile` carried: `col` is the group's first column in the tile,
  /// `panelRow` reads its group x NR / W vectors side by side (panels are
  /// zero-padded: always in bounds), `inBounds` says whether all its
  /// columns exist (forColumns masks only the group that crosses N).
  Value forEachPanel(
      OpBuilder &b, Value packed, Value firstPanel, Value steps, Value tile,
      llvm::function_ref<Value(OpBuilder &, Value, Value, bool, PanelRow)> body,
      int64_t group = 1, Value prefetchView = Value());
  /// One rows x (vectors W) tile at tile row `m` and column `col` over depth
  /// [k0, k0 + kLen). Rows m + i past `lastRow` (when given) are clamped to
  /// it: a partial tile recomputes the last row and rewrites it with
  /// identical values, so no tile of another height is needed. A is read at
  /// row `aRow0` + tile row, the weight through `panelRow(b, k, j)` (the
  /// j-th vector at depth k); the tile's columns start at global column
  /// `col0`. The accumulators start from the initial value when `fromStart`
  /// (the first depth block), or when the i1 `first` is true at run time if
  /// it is given; otherwise from the tile (the sums of earlier depth
  /// blocks). `inBounds`: the tile's columns all exist.
  Value outerProductTile(
      OpBuilder &b, Value tile, Value m, Value lastRow, Value aRow0, Value col,
      Value col0, int64_t rows, int64_t vectors, Value k0, Value kLen,
      bool fromStart, Value first, bool inBounds,
      llvm::function_ref<Value(OpBuilder &, Value, int64_t)> panelRow);
  /// Runs `body(b, tile, inBounds)` on a block of columns ending at
  /// `blockEnd`: in bounds when N is a multiple of the block (`blockCols`),
  /// else through an scf.if that masks only the block that crosses N.
  Value forColumns(OpBuilder &b, int64_t blockCols, Value blockEnd, Value tile,
                   llvm::function_ref<Value(OpBuilder &, Value, bool)> body);
  /// The few-rows path.
  Value directProduct(OpBuilder &b, Value dest);
  /// Few rows, [N, K] weight: the dot products of every row of A with
  /// weight rows [n0, n0 + NB), written at tile column `col`.
  Value dotProducts(OpBuilder &b, Value tile, Value rowCount, Value n0,
                    Value col);

  linalg::MatmulOp op;
  Layout layout;
  RewriterBase &rewriter;
  Blocking blk;
  /// The weight: the product's B operand, or its prepared panels.
  Value a, weight;
  bool isPrepared = false;
  Initial initial;
  int64_t depth, cols, panelWidth, panels, packedDepth;
};

} // namespace

/// The tensor types of a product's A, weight and output (two inputs, one
/// init, all ranked tensors), or nothing; nothing too for one nested in
/// another parallel loop, where its forall would nest.
static std::optional<std::array<RankedTensorType, 3>>
productTypes(linalg::LinalgOp op) {
  if (!op.hasPureTensorSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op->getParentOfType<scf::ForallOp>() ||
      op->getParentOfType<scf::ParallelOp>())
    return std::nullopt;
  auto typeOf = [](Value v) { return dyn_cast<RankedTensorType>(v.getType()); };
  std::array<RankedTensorType, 3> types = {
      typeOf(op.getDpsInputOperand(0)->get()),
      typeOf(op.getDpsInputOperand(1)->get()),
      typeOf(op.getDpsInitOperand(0)->get())};
  if (!types[0] || !types[1] || !types[2])
    return std::nullopt;
  return types;
}

std::optional<Layout> MatmulLowering::match(linalg::MatmulOp op) {
  std::optional<std::array<RankedTensorType, 3>> types = productTypes(op);
  if (!types)
    return std::nullopt;
  auto [aType, wType, cType] = *types;
  if (aType.getRank() != 2 || wType.getRank() != 2 || cType.getRank() != 2 ||
      !aType.getElementType().isF32() ||
      !isa<Float32Type, BFloat16Type, Float16Type>(wType.getElementType()) ||
      !cType.getElementType().isF32() || !wType.hasStaticShape() ||
      aType.isDynamicDim(1))
    return std::nullopt;
  MLIRContext *context = op.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto map = [&](ArrayRef<AffineExpr> results) {
    return AffineMap::get(3, 0, results, context);
  };
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps.size() != 3 || maps[0] != map({m, k}) || maps[2] != map({m, n}))
    return std::nullopt;
  if (maps[1] == map({k, n}))
    return Layout::KN;
  if (maps[1] == map({n, k}))
    return Layout::NK;
  return std::nullopt;
}

Value MatmulLowering::parallel(
    OpBuilder &b, ArrayRef<OpFoldResult> counts, Value dest,
    llvm::function_ref<Value(OpBuilder &, ValueRange, Value,
                             SmallVectorImpl<OpFoldResult> &,
                             SmallVectorImpl<OpFoldResult> &)>
        body) {
  auto forall = scf::ForallOp::create(
      b, loc, counts, ValueRange{dest}, /*mapping=*/std::nullopt,
      [&](OpBuilder &fb, Location, ValueRange args) {
        SmallVector<OpFoldResult> offsets, sizes;
        Value result = body(fb, args.drop_back(), args.back(), offsets, sizes);
        publish(fb, loc, scf::InParallelOp::create(fb, loc), result,
                args.back(), offsets, sizes);
      });
  return forall.getResult(0);
}

Value MatmulLowering::initialVector(OpBuilder &b, Value tile, Value row,
                                    Value col, Value globalCol, int64_t lanes,
                                    bool inBounds) {
  switch (initial.kind) {
  case Initial::Tensor:
    return read(b, tile, {row, col}, lanes, inBounds);
  case Initial::Row:
    return read(b, initial.value, {globalCol}, lanes, inBounds);
  case Initial::Scalar:
    return splat(b, initial.value, lanes);
  }
  llvm_unreachable("unknown initial value");
}

Value MatmulLowering::pack(OpBuilder &b) {
  int64_t w = blk.width, nv = blk.tileVectors;
  Value packed = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{panels, packedDepth, panelWidth}, f32);
  Value zero = index(b, 0);
  return parallel(
      b, {b.getIndexAttr(panels)}, packed,
      [&](OpBuilder &fb, ValueRange ivs, Value out,
          SmallVectorImpl<OpFoldResult> &offsets,
          SmallVectorImpl<OpFoldResult> &sizes) {
        Value p = ivs[0];
        offsets.assign({p, fb.getIndexAttr(0), fb.getIndexAttr(0)});
        sizes.assign({fb.getIndexAttr(1), fb.getIndexAttr(packedDepth),
                      fb.getIndexAttr(panelWidth)});
        auto panelType = RankedTensorType::get({packedDepth, panelWidth}, f32);
        Value panel = tensor::ExtractSliceOp::create(
            fb, loc, panelType, out, offsets, sizes,
            SmallVector<OpFoldResult>(3, fb.getIndexAttr(1)));
        Value col0 = mul(fb, p, panelWidth);
        bool full = cols % panelWidth == 0;
        if (layout == Layout::KN) {
          // Rows of the weight are already contiguous along n: copy each
          // panel's NR columns, zeros past N.
          return forLoop(
              fb, zero, index(fb, depth), 1, panel,
              [&](OpBuilder &kb, Value k, Value tile) {
                for (int64_t j = 0; j < nv; ++j) {
                  Value v = readWeight(kb, {k, add(kb, col0, j * w)}, w, full);
                  tile = write(kb, v, tile, {k, index(kb, j * w)}, true);
                }
                return tile;
              });
        }
        // [N, K]: for each W consecutive k, read them from each of the
        // panel's rows (rows past N repeat the last; their columns are never
        // stored) and store them down the panel's columns: the block of W
        // panel rows being written stays in L1.
        Value lastRow = index(fb, cols - 1);
        return forLoop(
            fb, zero, index(fb, packedDepth), w, panel,
            [&](OpBuilder &kb, Value k0, Value tile) {
              return forLoop(
                  kb, zero, index(kb, panelWidth), 1, tile,
                  [&](OpBuilder &rb, Value r, Value t) {
                    Value row = full ? add(rb, col0, r)
                                     : min(rb, add(rb, col0, r), lastRow);
                    Value v = readWeight(rb, {row, k0}, w, depth % w == 0);
                    for (int64_t c = 0; c < w; ++c) {
                      Value e = vector::ExtractOp::create(rb, loc, v, c);
                      t = tensor::InsertOp::create(
                          rb, loc, e, t, ValueRange{add(rb, k0, c), r});
                    }
                    return t;
                  });
            });
      });
}

Value MatmulLowering::forColumns(
    OpBuilder &b, int64_t blockCols, Value blockEnd, Value tile,
    llvm::function_ref<Value(OpBuilder &, Value, bool)> body) {
  if (cols % blockCols == 0)
    return body(b, tile, /*inBounds=*/true);
  Value crosses = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt,
                                        blockEnd, index(b, cols));
  return scf::IfOp::create(
             b, loc, crosses,
             [&](OpBuilder &tb, Location) {
               scf::YieldOp::create(tb, loc, body(tb, tile, false));
             },
             [&](OpBuilder &eb, Location) {
               scf::YieldOp::create(eb, loc, body(eb, tile, true));
             })
      .getResult(0);
}

Value MatmulLowering::outerProductTile(
    OpBuilder &b, Value tile, Value m, Value lastRow, Value aRow0, Value col,
    Value col0, int64_t rows, int64_t vectors, Value k0, Value kLen,
    bool fromStart, Value first, bool inBounds,
    llvm::function_ref<Value(OpBuilder &, Value, int64_t)> panelRow) {
  int64_t w = blk.width;
  SmallVector<Value> tileRows, aRows, columns, globalColumns;
  for (int64_t i = 0; i < rows; ++i) {
    Value r = add(b, m, i);
    tileRows.push_back(lastRow && i > 0 ? min(b, r, lastRow) : r);
    aRows.push_back(aRow0 ? add(b, aRow0, tileRows.back()) : tileRows.back());
  }
  for (int64_t j = 0; j < vectors; ++j) {
    columns.push_back(add(b, col, j * w));
    globalColumns.push_back(add(b, col0, columns.back()));
  }

  // The accumulators: from the initial value, or from the tile (a later
  // depth block), or chosen at run time.
  auto fromInitial = [&](OpBuilder &ib) {
    SmallVector<Value> acc;
    SmallVector<Value> row;
    for (int64_t j = 0; j < vectors; ++j)
      row.push_back(initialVector(ib, tile, tileRows[0], columns[j],
                                  globalColumns[j], w, inBounds));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < vectors; ++j)
        acc.push_back(initial.kind == Initial::Tensor && i > 0
                          ? initialVector(ib, tile, tileRows[i], columns[j],
                                          globalColumns[j], w, inBounds)
                          : row[j]);
    return acc;
  };
  auto fromTile = [&](OpBuilder &ib) {
    SmallVector<Value> acc;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < vectors; ++j)
        acc.push_back(read(ib, tile, {tileRows[i], columns[j]}, w, inBounds));
    return acc;
  };
  SmallVector<Value> acc;
  if (initial.kind == Initial::Tensor || (!first && !fromStart)) {
    acc = fromTile(b);
  } else if (!first) {
    acc = fromInitial(b);
  } else {
    SmallVector<Type> types(rows * vectors, VectorType::get({w}, f32));
    auto choice =
        scf::IfOp::create(b, loc, types, first, /*withElseRegion=*/true);
    OpBuilder tb = choice.getThenBodyBuilder();
    scf::YieldOp::create(tb, loc, fromInitial(tb));
    OpBuilder eb = choice.getElseBodyBuilder();
    scf::YieldOp::create(eb, loc, fromTile(eb));
    acc.assign(choice.getResults().begin(), choice.getResults().end());
  }

  SmallVector<Value> sums = outerProducts(
      b, k0, add(b, k0, kLen), acc, rows, vectors, w,
      [&](OpBuilder &nb, Value k) {
        SmallVector<Value> panel;
        for (int64_t j = 0; j < vectors; ++j)
          panel.push_back(panelRow(nb, k, j));
        return panel;
      },
      [&](OpBuilder &nb, Value k, int64_t i) {
        return element(nb, a, {aRows[i], k});
      });
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < vectors; ++j)
      tile = write(b, sums[i * vectors + j], tile, {tileRows[i], columns[j]},
                   inBounds);
  return tile;
}

Value MatmulLowering::packedProduct(OpBuilder &b, Value packed, Value dest) {
  int64_t mr = blk.tileRows, mc = blk.rowBlock, pc = blk.panelChunk;
  int64_t kc = std::min(blk.depthBlock, depth);
  int64_t depthBlocks = ceilDiv(depth, kc);
  Value rowsTotal = tensor::DimOp::create(b, loc, a, 0);
  Value rowBlocks = arith::CeilDivSIOp::create(b, loc, rowsTotal, index(b, mc));
  // The row tiles dealt out evenly: block i starts at tile floor(i T / n)
  // of the T tiles and n blocks, so blocks differ by at most one tile (and
  // hold at most MC rows). With blocks of MC rows and a short last one, the
  // threads' static halves of the (block, chunk) items differed in work:
  // 288 against 224 of 512 rows.
  Value rowTiles = arith::CeilDivSIOp::create(b, loc, rowsTotal, index(b, mr));
  auto tileStart = [&](OpBuilder &fb, Value block) {
    Value scaled = arith::MulIOp::create(fb, loc, block, rowTiles);
    return mul(fb, arith::DivUIOp::create(fb, loc, scaled, rowBlocks), mr);
  };
  return parallel(
      b, {rowBlocks, b.getIndexAttr(ceilDiv(panels, pc))}, dest,
      [&](OpBuilder &fb, ValueRange ivs, Value out,
          SmallVectorImpl<OpFoldResult> &offsets,
          SmallVectorImpl<OpFoldResult> &sizes) {
        Value row0 = tileStart(fb, ivs[0]);
        Value next = arith::AddIOp::create(fb, loc, ivs[0], index(fb, 1));
        Value rowEnd = min(fb, tileStart(fb, next), rowsTotal);
        Value rows = min(fb, sub(fb, rowEnd, row0), mc);
        PanelChunk chunk = panelChunk(fb, ivs[1], pc);
        Value firstPanel = chunk.firstPanel, col0 = chunk.col0,
              width = chunk.width, chunkPanels = chunk.count;
        Value lastRow = sub(fb, rows, index(fb, 1));
        offsets.assign({row0, col0});
        sizes.assign({rows, width});
        Value tile = tensor::ExtractSliceOp::create(
            fb, loc, out, offsets, sizes,
            SmallVector<OpFoldResult>(2, fb.getIndexAttr(1)));

        // Depth blocks, the chunk's panels, row tiles.
        return forLoop(
            fb, index(fb, 0), index(fb, depthBlocks), 1, tile,
            [&](OpBuilder &db, Value kb, Value dTile) {
              Value k0 = mul(db, kb, kc);
              Value kLen = depth % kc == 0
                               ? index(db, kc)
                               : min(db, sub(db, index(db, depth), k0), kc);
              Value first =
                  depthBlocks > 1
                      ? arith::CmpIOp::create(db, loc, arith::CmpIPredicate::eq,
                                              kb, index(db, 0))
                            .getResult()
                      : Value();
              return forEachPanel(
                  db, packed, firstPanel, chunkPanels, dTile,
                  [&](OpBuilder &tb, Value t, Value col, bool inBounds,
                      PanelRow panelRow) {
                    return forLoop(tb, index(tb, 0), rows, mr, t,
                                   [&](OpBuilder &rb, Value m, Value rTile) {
                                     return outerProductTile(
                                         rb, rTile, m, lastRow, row0, col, col0,
                                         mr, blk.tileVectors, k0, kLen,
                                         /*fromStart=*/depthBlocks == 1, first,
                                         inBounds, panelRow);
                                   });
                  });
            });
      });
}

Value MatmulLowering::dotProducts(OpBuilder &b, Value tile, Value rowCount,
                                  Value n0, Value col) {
  int64_t w = blk.width, nb = Blocking::kDotRows, u = Blocking::kDotUnroll;
  int64_t fullDepth = depth / w * w;
  int64_t unrolledDepth = depth / (u * w) * (u * w);
  bool inBounds = cols % nb == 0;
  return forLoop(
      b, index(b, 0), rowCount, 1, tile,
      [&](OpBuilder &rb, Value m, Value rTile) {
        // One weight row after the other, each read front to back: the
        // weight streams through memory in its own order. (Eight rows read
        // side by side, W lanes of each per step, ran at 0.4-0.6 of that
        // speed on Zen 4: many short interleaved streams defeat the hardware
        // prefetcher.) U accumulators per row hide the FMA latency.
        // A loop over the rows, not NB copies of the row's loop: LLVM would
        // unroll those and interleave their loads again.
        Value dots = forLoop(
            rb, index(rb, 0), index(rb, nb), 1, zeros(rb, nb),
            [&](OpBuilder &jb, Value j, Value dotsSoFar) {
              // Weight row n0 + j, clamped to the last (its sum is not
              // stored).
              Value row = add(jb, n0, j);
              if (!inBounds)
                row = min(jb, row, cols - 1);
              auto step = [&](OpBuilder &sb, Value k, Value acc,
                              bool kInBounds) {
                // Sequenced (argument order differs between compilers):
                // the weight first, as GCC had it.
                Value weights = readWeight(sb, {row, k}, w, kInBounds);
                Value lanes = read(sb, a, {m, k}, w, kInBounds);
                return fma(sb, lanes, weights, acc);
              };
              SmallVector<Value> acc(u, zeros(jb, w));
              if (unrolledDepth > 0) {
                auto kLoop = scf::ForOp::create(
                    jb, loc, index(jb, 0), index(jb, unrolledDepth),
                    index(jb, u * w), acc,
                    [&](OpBuilder &kb, Location, Value k, ValueRange carried) {
                      SmallVector<Value> next;
                      for (int64_t i = 0; i < u; ++i)
                        next.push_back(
                            step(kb, add(kb, k, i * w), carried[i], true));
                      scf::YieldOp::create(kb, loc, next);
                    });
                acc.assign(kLoop.getResults().begin(),
                           kLoop.getResults().end());
              }
              for (int64_t k = unrolledDepth; k < fullDepth; k += w)
                acc[0] = step(jb, index(jb, k), acc[0], true);
              if (fullDepth < depth)
                acc[0] = step(jb, index(jb, fullDepth), acc[0], false);
              Value total = acc[0];
              for (int64_t i = 1; i < u; ++i)
                total = arith::AddFOp::create(jb, loc, total, acc[i]);
              Value dot = addLanes(jb, loc, total);
              return vector::InsertOp::create(jb, loc, dot, dotsSoFar,
                                              OpFoldResult(j))
                  .getResult();
            });
        Value start = initialVector(rb, rTile, m, col, n0, nb, inBounds);
        Value sum = arith::AddFOp::create(rb, loc, start, dots);
        return write(rb, sum, rTile, {m, col}, inBounds);
      });
}

Value MatmulLowering::directProduct(OpBuilder &b, Value dest) {
  // Work items: chunks of PC panels' columns (fewer if N is less), all
  // rows.
  int64_t chunkCols = std::min(blk.panelChunk * panelWidth,
                               ceilDiv(cols, blk.width) * blk.width);
  Value rowsTotal = tensor::DimOp::create(b, loc, a, 0);
  return parallel(
      b, {b.getIndexAttr(ceilDiv(cols, chunkCols))}, dest,
      [&](OpBuilder &fb, ValueRange ivs, Value out,
          SmallVectorImpl<OpFoldResult> &offsets,
          SmallVectorImpl<OpFoldResult> &sizes) {
        Value col0 = mul(fb, ivs[0], chunkCols);
        Value width = min(fb, sub(fb, index(fb, cols), col0), chunkCols);
        offsets.assign({fb.getIndexAttr(0), col0});
        sizes.assign({rowsTotal, width});
        Value tile = tensor::ExtractSliceOp::create(
            fb, loc, out, offsets, sizes,
            SmallVector<OpFoldResult>(2, fb.getIndexAttr(1)));
        if (layout == Layout::NK) {
          int64_t nb = Blocking::kDotRows;
          Value blocks =
              arith::CeilDivSIOp::create(fb, loc, width, index(fb, nb));
          return forLoop(fb, index(fb, 0), blocks, 1, tile,
                         [&](OpBuilder &bb, Value j, Value t) {
                           Value col = mul(bb, j, nb);
                           return dotProducts(bb, t, rowsTotal,
                                              add(bb, col0, col), col);
                         });
        }
        // [K, N]: each row is one tile as wide as the chunk (PC * NR
        // columns, or N rounded up to W if less), so that a step reads that
        // many consecutive floats of a weight row.
        int64_t vectors = chunkCols / blk.width;
        auto weightRow = [&](OpBuilder &nb, Value k, int64_t j, bool inBounds) {
          return readWeight(nb, {k, add(nb, col0, j * blk.width)}, blk.width,
                            inBounds);
        };
        Value chunkEnd = add(fb, col0, chunkCols);
        return forColumns(fb, chunkCols, chunkEnd, tile,
                          [&](OpBuilder &tb, Value t, bool inBounds) {
                            return forLoop(
                                tb, index(tb, 0), rowsTotal, 1, t,
                                [&](OpBuilder &rb, Value m, Value rTile) {
                                  return outerProductTile(
                                      rb, rTile, m, Value(), Value(),
                                      index(rb, 0), col0, 1, vectors,
                                      index(rb, 0), index(rb, depth),
                                      /*fromStart=*/true, Value(), inBounds,
                                      [&](OpBuilder &nb, Value k, int64_t j) {
                                        return weightRow(nb, k, j, inBounds);
                                      });
                                });
                          });
      });
}

Value MatmulLowering::forEachPanel(
    OpBuilder &b, Value packed, Value firstPanel, Value steps, Value tile,
    llvm::function_ref<Value(OpBuilder &, Value, Value, bool, PanelRow)> body,
    int64_t group, Value prefetchView) {
  int64_t tv = blk.tileVectors;
  // With a view to prefetch through: each cache line of a panel's row at
  // depth k is prefetched at depth k + ahead (the last row past the end).
  auto packedType = cast<RankedTensorType>(packed.getType());
  int64_t elementBytes = packedType.getElementTypeBitWidth() / 8;
  int64_t rowBytes = panelWidth * elementBytes;
  int64_t ahead = std::max<int64_t>(1, blk.prefetchBytes / rowBytes);
  int64_t lastDepth = packedType.getShape()[1] - 1;
  int64_t vectorBytes = blk.width * elementBytes;
  return forLoop(
      b, index(b, 0), steps, 1, tile, [&](OpBuilder &pb, Value p, Value pTile) {
        Value panel = add(pb, firstPanel, group == 1 ? p : mul(pb, p, group));
        Value col = mul(pb, p, group * panelWidth);
        auto panelRow = [&](OpBuilder &nb, Value k, int64_t j) {
          Value at = add(nb, panel, j / tv);
          int64_t offset = (j % tv) * vectorBytes;
          if (prefetchView && offset % kCacheLine == 0)
            memref::PrefetchOp::create(
                nb, loc, prefetchView,
                ValueRange{at, min(nb, add(nb, k, ahead), index(nb, lastDepth)),
                           index(nb, (j % tv) * blk.width)},
                /*isWrite=*/false, /*localityHint=*/3, /*isDataCache=*/true);
          return readPanel(nb, packed, at, k, j % tv);
        };
        Value panelEnd = mul(pb, add(pb, panel, group), panelWidth);
        return forColumns(pb, panelWidth, panelEnd, pTile,
                          [&](OpBuilder &tb, Value t, bool inBounds) {
                            return body(tb, t, col, inBounds, panelRow);
                          });
      });
}

Value MatmulLowering::panelRowsProduct(OpBuilder &b, Value dest) {
  // Work items: chunks of PC panels, all rows; fewer panels per chunk where
  // PC would leave a thread without one (x_proj's 3 panels of a generation
  // step were one work item, on one core of two).
  int64_t pc = blk.panelChunk;
  if (blk.threads > 1)
    pc = std::max<int64_t>(1, std::min(pc, ceilDiv(panels, blk.threads)));
  Value rowsTotal = tensor::DimOp::create(b, loc, a, 0);
  // The panels as a buffer to prefetch through (bufferization makes it the
  // weight's own).
  Value view = blk.prefetchBytes > 0 ? prefetchView(b, weight) : Value();
  return parallel(
      b, {b.getIndexAttr(ceilDiv(panels, pc))}, dest,
      [&](OpBuilder &fb, ValueRange ivs, Value out,
          SmallVectorImpl<OpFoldResult> &offsets,
          SmallVectorImpl<OpFoldResult> &sizes) {
        PanelChunk chunk = panelChunk(fb, ivs[0], pc);
        Value firstPanel = chunk.firstPanel, col0 = chunk.col0,
              width = chunk.width, chunkPanels = chunk.count;
        offsets.assign({fb.getIndexAttr(0), col0});
        sizes.assign({rowsTotal, width});
        Value tile = tensor::ExtractSliceOp::create(
            fb, loc, out, offsets, sizes,
            SmallVector<OpFoldResult>(2, fb.getIndexAttr(1)));
        // Each row times `vectors` W columns from `col`, read through
        // `panelRow`.
        auto rowsTimes = [&](OpBuilder &tb, Value t, Value col, bool inBounds,
                             int64_t vectors, PanelRow panelRow) {
          return forLoop(tb, index(tb, 0), rowsTotal, 1, t,
                         [&](OpBuilder &rb, Value m, Value rTile) {
                           return outerProductTile(
                               rb, rTile, m, Value(), Value(), col, col0, 1,
                               vectors, index(rb, 0), index(rb, depth),
                               /*fromStart=*/true, Value(), inBounds, panelRow);
                         });
        };
        // Groups of S neighbouring panels side by side: S streams through
        // memory at once, which the hardware prefetchers keep ahead of the
        // loads better than one.
        int64_t s = std::min(blk.streamPanels, pc);
        int64_t tv = blk.tileVectors;
        Value groups =
            s > 1 ? arith::DivUIOp::create(fb, loc, chunkPanels, index(fb, s))
                        .getResult()
                  : index(fb, 0);
        if (s > 1)
          tile = forEachPanel(
              fb, weight, firstPanel, groups, tile,
              [&](OpBuilder &tb, Value t, Value col, bool inBounds,
                  PanelRow panelRow) {
                return rowsTimes(tb, t, col, inBounds, s * tv, panelRow);
              },
              s, view);
        // The rest one at a time.
        Value done = mul(fb, groups, s);
        return forEachPanel(
            fb, weight, add(fb, firstPanel, done), sub(fb, chunkPanels, done),
            tile,
            [&](OpBuilder &tb, Value t, Value col, bool inBounds,
                PanelRow panelRow) {
              return rowsTimes(tb, t, add(tb, col, mul(tb, done, panelWidth)),
                               inBounds, tv, panelRow);
            },
            /*group=*/1, view);
      });
}

Initial MatmulLowering::initialOf(linalg::MatmulOp op) {
  Value init = op.getDpsInitOperand(0)->get();
  if (auto fill = init.getDefiningOp<linalg::FillOp>())
    return {Initial::Scalar, fill.getInputs()[0]};
  if (auto bcast = init.getDefiningOp<linalg::BroadcastOp>())
    if (bcast.getDimensions() == ArrayRef<int64_t>{0} &&
        cast<ShapedType>(bcast.getInput().getType()).getRank() == 1)
      return {Initial::Row, bcast.getInput()};
  return {Initial::Tensor, init};
}

void MatmulLowering::lower() {
  rewriter.setInsertionPoint(op);
  // A zero / scalar fill or a broadcast bias row: the output then starts
  // empty and the accumulators start from registers.
  Value init = op.getDpsInitOperand(0)->get();
  Value dest = init;
  initial = initialOf(op);
  Value filled = initial.kind == Initial::Tensor
                     ? Value()
                     : cast<DestinationStyleOpInterface>(init.getDefiningOp())
                           .getDpsInitOperand(0)
                           ->get();
  if (filled && filled.getDefiningOp<tensor::ExtractSliceOp>()) {
    // A slice of a larger tensor (a group of a grouped product): the product
    // overwrites it in place.
    dest = filled;
  } else if (initial.kind != Initial::Tensor) {
    // Its row count is A's: asking the fill or broadcast for it would keep
    // that alive, and bufferization would then write the whole output once
    // before the product does.
    auto type = cast<RankedTensorType>(init.getType());
    SmallVector<Value> dynamic;
    for (int64_t d = 0; d < 2; ++d)
      if (type.isDynamicDim(d))
        dynamic.push_back(
            tensor::DimOp::create(rewriter, loc, d == 0 ? a : init, d));
    dest = tensor::EmptyOp::create(rewriter, loc, type, dynamic);
  }

  Value rowsTotal = tensor::DimOp::create(rewriter, loc, a, 0);
  Value many =
      arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::sge, rowsTotal,
                            index(rewriter, blk.packMinRows));
  auto choice = scf::IfOp::create(
      rewriter, loc, many,
      [&](OpBuilder &tb, Location) {
        Value packed = isPrepared ? weight : pack(tb);
        scf::YieldOp::create(tb, loc, packedProduct(tb, packed, dest));
      },
      [&](OpBuilder &eb, Location) {
        scf::YieldOp::create(eb, loc,
                             isPrepared ? panelRowsProduct(eb, dest)
                                        : directProduct(eb, dest));
      });
  rewriter.replaceOp(op, choice.getResults());
  if (dest == filled && init.use_empty())
    rewriter.eraseOp(init.getDefiningOp());
}

//===----------------------------------------------------------------------===//
// Outlining
//===----------------------------------------------------------------------===//

/// Replaces `op`, whose initial value is a fill or a bias row, by a call to
/// a private function computing the same product from (A, weight, bias row
/// or fill scalar), created on first use and shared by every product of the
/// same layout, types and initial kind: a model repeats the same linear
/// shapes in every layer, and one copy of each kernel keeps the generated
/// code (and LLVM's time on it) independent of the depth. With `prepared`
/// (the weight's panels), the kernel takes the panels in its place.
static void outlineProduct(linalg::MatmulOp op, Layout layout,
                           const Initial &initial, ModuleOp module,
                           SymbolTable &symbols, IRRewriter &rewriter,
                           const Blocking &blocking, Value prepared) {
  Location loc = op.getLoc();
  Value a = op.getDpsInputOperand(0)->get();
  Value weight = op.getDpsInputOperand(1)->get();
  auto aType = cast<RankedTensorType>(a.getType());
  auto weightType = cast<RankedTensorType>(weight.getType());
  Value weightArg = prepared ? prepared : weight;
  Type resultType = op.getResultTypes()[0];
  auto dim = [](int64_t d) {
    return ShapedType::isDynamic(d) ? std::string("d") : std::to_string(d);
  };
  // A narrow weight's kernel says its type: __glint_linear_..._fill_bf16.
  std::string weightSuffix;
  if (!weightType.getElementType().isF32()) {
    llvm::raw_string_ostream os(weightSuffix);
    os << "_" << weightType.getElementType();
  }
  if (prepared)
    weightSuffix += "_panels";
  std::string name =
      llvm::formatv("__glint_linear_{0}_{1}x{2}x{3}x{4}_{5}{6}",
                    layout == Layout::NK ? "nk" : "kn",
                    dim(aType.getDimSize(0)), dim(aType.getDimSize(1)),
                    weightType.getDimSize(0), weightType.getDimSize(1),
                    initial.kind == Initial::Row ? "bias" : "fill",
                    weightSuffix)
          .str();
  SmallVector<Type> argTypes = {aType, weightArg.getType(),
                                initial.value.getType()};
  // The kernel of this signature, or a free name for it (another symbol may
  // hold the name: a suffix is added).
  func::FuncOp kernel;
  for (unsigned suffix = 0;; ++suffix) {
    std::string candidate = suffix ? name + "_" + std::to_string(suffix) : name;
    Operation *existing = symbols.lookup(candidate);
    auto fn = dyn_cast_or_null<func::FuncOp>(existing);
    if (fn && fn.getFunctionType() ==
                  rewriter.getFunctionType(argTypes, TypeRange{resultType})) {
      kernel = fn;
      break;
    }
    if (!existing) {
      name = candidate;
      break;
    }
  }
  if (!kernel) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToEnd(module.getBody());
    kernel = func::FuncOp::create(
        rewriter, loc, name,
        rewriter.getFunctionType(argTypes, TypeRange{resultType}));
    kernel.setPrivate();
    symbols.insert(kernel);
    Block *entry = kernel.addEntryBlock();
    rewriter.setInsertionPointToStart(entry);
    Value ka = entry->getArgument(0), kw = entry->getArgument(1),
          start = entry->getArgument(2);
    auto type = cast<RankedTensorType>(resultType);
    SmallVector<Value> dynamic;
    if (type.isDynamicDim(0))
      dynamic.push_back(tensor::DimOp::create(rewriter, loc, ka, 0));
    Value empty = tensor::EmptyOp::create(rewriter, loc, type, dynamic);
    Value init = initial.kind == Initial::Row
                     ? linalg::BroadcastOp::create(rewriter, loc, start, empty,
                                                   ArrayRef<int64_t>{0})
                           ->getResult(0)
                     : linalg::FillOp::create(rewriter, loc, ValueRange{start},
                                              ValueRange{empty})
                           .getResult(0);
    // The clone's B operand: the weight argument, or (panels) a stand-in
    // of the weight's type that goes with the product.
    Value standIn;
    if (prepared)
      standIn = tensor::EmptyOp::create(rewriter, loc, weightType.getShape(),
                                        weightType.getElementType());
    IRMapping mapping;
    mapping.map(a, ka);
    mapping.map(weight, prepared ? standIn : kw);
    mapping.map(op.getDpsInitOperand(0)->get(), init);
    auto product = cast<linalg::MatmulOp>(rewriter.clone(*op, mapping));
    func::ReturnOp::create(rewriter, loc, product->getResults());
    MatmulLowering(product, layout, rewriter, blocking, prepared ? kw : Value())
        .lower();
    if (standIn)
      rewriter.eraseOp(standIn.getDefiningOp());
  }
  rewriter.setInsertionPoint(op);
  rewriter.replaceOpWithNewOp<func::CallOp>(
      op, kernel, ValueRange{a, weightArg, initial.value});
}

//===----------------------------------------------------------------------===//
// Grouped products
//===----------------------------------------------------------------------===//

/// A `glint.linear` with a grouped weight [G, I, O] (in_out) or [G, O, I]
/// (out_in), as convert-glint-to-linalg writes it: a generic over
/// (m, g, o, i), y[m, g, o] += x[m, g, i] · w[g, ...], on f32. Returns the
/// layout of each group's 2-D product, or nothing for any other op.
static std::optional<Layout> matchGroupedProduct(linalg::GenericOp op) {
  std::optional<std::array<RankedTensorType, 3>> types = productTypes(op);
  if (!types || op.getNumLoops() != 4)
    return std::nullopt;
  auto [xType, wType, yType] = *types;
  if (xType.getRank() != 3 || wType.getRank() != 3 || yType.getRank() != 3 ||
      !xType.getElementType().isF32() || !wType.getElementType().isF32() ||
      !yType.getElementType().isF32() || !wType.hasStaticShape() ||
      xType.isDynamicDim(1) || xType.isDynamicDim(2))
    return std::nullopt;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (iterators !=
      SmallVector<utils::IteratorType>{
          utils::IteratorType::parallel, utils::IteratorType::parallel,
          utils::IteratorType::parallel, utils::IteratorType::reduction})
    return std::nullopt;
  MLIRContext *context = op.getContext();
  AffineExpr m, g, o, i;
  bindDims(context, m, g, o, i);
  auto map = [&](ArrayRef<AffineExpr> results) {
    return AffineMap::get(4, 0, results, context);
  };
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[0] != map({m, g, i}) || maps[2] != map({m, g, o}))
    return std::nullopt;
  std::optional<Layout> layout;
  if (maps[1] == map({g, i, o}))
    layout = Layout::KN;
  else if (maps[1] == map({g, o, i}))
    layout = Layout::NK;
  else
    return std::nullopt;
  // The body: out + x * w.
  Block &body = op.getRegion().front();
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
  if (!add || add.getLhs() != body.getArgument(2))
    return std::nullopt;
  auto mul = add.getRhs().getDefiningOp<arith::MulFOp>();
  if (!mul || mul.getLhs() != body.getArgument(0) ||
      mul.getRhs() != body.getArgument(1) || body.getOperations().size() != 3)
    return std::nullopt;
  return layout;
}

/// Marks the 2-D products of a grouped one: lowered in place, never outlined.
static constexpr llvm::StringLiteral kGroupSliceAttr = "glint.group_slice";

/// Rewrites a grouped product into one 2-D `linalg.matmul` per group, on
/// the group's slices (a loop over G): the products this pass lowers, in
/// place (marked with kGroupSliceAttr). A group's output is its slice of the
/// loop's tensor, filled with the generic's fill scalar when the initial
/// value is a filled tensor (reshaped; the loop's tensor then starts empty),
/// else the slice of the initial value. The products read the slices of x
/// and w and write their slice of y where they lie: an outlined kernel
/// takes and returns contiguous buffers, so every group's input and result
/// were copied (1.6 MB per RWKV-6 layer at L = 2048, a tenth of the
/// forward's time).
static void splitGroupedProduct(linalg::GenericOp op, Layout layout,
                                IRRewriter &rewriter) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  Value x = op.getDpsInputOperand(0)->get();
  Value w = op.getDpsInputOperand(1)->get();
  Value init = op.getDpsInitOperand(0)->get();
  auto xType = cast<RankedTensorType>(x.getType());
  auto wType = cast<RankedTensorType>(w.getType());
  auto yType = cast<RankedTensorType>(init.getType());
  int64_t groups = wType.getDimSize(0);
  Value fillScalar;
  Value source = init;
  while (auto expand = source.getDefiningOp<tensor::ExpandShapeOp>())
    source = expand.getSrc();
  if (auto fill = source.getDefiningOp<linalg::FillOp>())
    fillScalar = fill.getInputs()[0];
  Value rows = tensor::DimOp::create(rewriter, loc, x, 0);
  // Every group's product overwrites its whole slice, so a filled initial
  // value is never read: the loop starts from an empty tensor instead (the
  // fill was a memset of the whole output, 1.3 MB per RWKV-6 layer at
  // L = 2048).
  Value filledInit = init;
  if (fillScalar && !yType.isDynamicDim(1) && !yType.isDynamicDim(2))
    init = tensor::EmptyOp::create(
        rewriter, loc, yType.getShape(), yType.getElementType(),
        yType.isDynamicDim(0) ? ValueRange{rows} : ValueRange{});
  Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
  Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
  Value count = arith::ConstantIndexOp::create(rewriter, loc, groups);
  auto loop = scf::ForOp::create(
      rewriter, loc, zero, count, one, ValueRange{init},
      [&](OpBuilder &b, Location, Value g, ValueRange args) {
        OpFoldResult z = b.getIndexAttr(0), u = b.getIndexAttr(1);
        auto rowsOf = [&](Value from, int64_t cols) {
          auto type = RankedTensorType::get({ShapedType::kDynamic, cols},
                                            b.getF32Type());
          return tensor::ExtractSliceOp::create(
              b, loc, type, from, ArrayRef<OpFoldResult>{z, g, z},
              ArrayRef<OpFoldResult>{rows, u, b.getIndexAttr(cols)},
              ArrayRef<OpFoldResult>{u, u, u});
        };
        Value xs = rowsOf(x, xType.getDimSize(2));
        auto wsType = RankedTensorType::get(
            {wType.getDimSize(1), wType.getDimSize(2)}, b.getF32Type());
        Value ws = tensor::ExtractSliceOp::create(
            b, loc, wsType, w, ArrayRef<OpFoldResult>{g, z, z},
            ArrayRef<OpFoldResult>{u, b.getIndexAttr(wType.getDimSize(1)),
                                   b.getIndexAttr(wType.getDimSize(2))},
            ArrayRef<OpFoldResult>{u, u, u});
        int64_t cols = yType.getDimSize(2);
        Value start = rowsOf(args[0], cols);
        if (fillScalar)
          start = linalg::FillOp::create(b, loc, ValueRange{fillScalar},
                                         ValueRange{start})
                      .getResult(0);
        Operation *product = layout == Layout::KN
                                 ? linalg::MatmulOp::create(
                                       b, loc, TypeRange{start.getType()},
                                       ValueRange{xs, ws}, ValueRange{start})
                                       .getOperation()
                                 : linalg::MatmulTransposeBOp::create(
                                       b, loc, TypeRange{start.getType()},
                                       ValueRange{xs, ws}, ValueRange{start})
                                       .getOperation();
        product->setAttr(kGroupSliceAttr, b.getUnitAttr());
        Value next = tensor::InsertSliceOp::create(
            b, loc, product->getResult(0), args[0],
            ArrayRef<OpFoldResult>{z, g, z},
            ArrayRef<OpFoldResult>{rows, u, b.getIndexAttr(cols)},
            ArrayRef<OpFoldResult>{u, u, u});
        scf::YieldOp::create(b, loc, next);
      });
  rewriter.replaceOp(op, loop.getResults());
  // The fill the loop no longer starts from, and its reshapes.
  for (Value old = init == filledInit ? Value() : filledInit;
       old && old.use_empty();) {
    Operation *producer = old.getDefiningOp();
    if (isa<tensor::ExpandShapeOp>(producer))
      old = producer->getOperand(0);
    else if (auto fill = dyn_cast<linalg::FillOp>(producer))
      old = fill.getOutputs()[0];
    else
      old = Value();
    rewriter.eraseOp(producer);
  }
}

//===----------------------------------------------------------------------===//
// Prepared weights
//===----------------------------------------------------------------------===//

/// Gives each weight (an `ml_program.global` bound from the checkpoint,
/// rank 2) that only products read, as their B operand in one layout, and
/// element reads (`tensor.extract`: a tied embedding table's gather)
/// otherwise, the type of its panels [P, K, NR] and the `glint.panels`
/// attribute that tells the runtime to lay the checkpoint's matrix out so,
/// once, when it binds it: the products then read the prepared panels
/// instead of packing the weight on every call, and the element reads
/// index them. Returns, for each load of such a weight, the load of its
/// panels that replaces it (the old loads go when nothing uses them).
static llvm::DenseMap<Value, Value> prepareWeights(ModuleOp module,
                                                   const Blocking &blocking,
                                                   IRRewriter &rewriter) {
  MLIRContext *context = module.getContext();
  llvm::DenseMap<Value, Value> panelsOf;
  for (MatrixWeight &weight : matrixWeights(module)) {
    RankedTensorType type = weight.type;
    ArrayRef<ml_program::GlobalLoadConstOp> globalLoads = weight.loads;
    if (!type.hasStaticShape() ||
        !isa<Float32Type, BFloat16Type, Float16Type>(type.getElementType()))
      continue;
    std::optional<Layout> layout;
    bool qualifies = true;
    SmallVector<tensor::ExtractOp> elementReads;
    for (ml_program::GlobalLoadConstOp load : globalLoads) {
      for (OpOperand &use : load->getUses()) {
        Operation *user = use.getOwner();
        if (auto product = dyn_cast<linalg::MatmulOp>(user)) {
          std::optional<Layout> read = MatmulLowering::match(product);
          qualifies &= use.getOperandNumber() == 1 && read &&
                       (!layout || *layout == *read);
          layout = read;
        } else if (auto extract = dyn_cast<tensor::ExtractOp>(user)) {
          elementReads.push_back(extract);
        } else {
          qualifies = false;
        }
      }
    }
    if (!qualifies || !layout)
      continue;

    auto panelType = MatmulLowering::panelType(type, *layout, blocking);
    int64_t width = panelType.getDimSize(2);
    for (ml_program::GlobalLoadConstOp load : globalLoads) {
      rewriter.setInsertionPointAfter(load);
      panelsOf[load.getResult()] = ml_program::GlobalLoadConstOp::create(
          rewriter, load.getLoc(), panelType, load.getGlobalAttr());
    }
    // Element (i0, i1) of the matrix, column n and depth k of the product,
    // is panels[n / NR, k, n % NR].
    for (tensor::ExtractOp extract : elementReads) {
      rewriter.setInsertionPoint(extract);
      Location loc = extract.getLoc();
      Value n = extract.getIndices()[*layout == Layout::NK ? 0 : 1];
      Value k = extract.getIndices()[*layout == Layout::NK ? 1 : 0];
      Value nr = arith::ConstantIndexOp::create(rewriter, loc, width);
      Value panel = arith::DivUIOp::create(rewriter, loc, n, nr);
      Value column = arith::RemUIOp::create(rewriter, loc, n, nr);
      rewriter.replaceOpWithNewOp<tensor::ExtractOp>(
          extract, panelsOf.lookup(extract.getTensor()),
          ValueRange{panel, k, column});
    }
    weight.setGlobalType(panelType);
    weight.global->setAttr(
        GlintDialect::kPanelsAttrName,
        DictionaryAttr::get(
            context,
            {NamedAttribute(
                 StringAttr::get(context, "layout"),
                 StringAttr::get(context, *layout == Layout::NK ? "nk" : "kn")),
             NamedAttribute(StringAttr::get(context, "shape"),
                            DenseI64ArrayAttr::get(context, type.getShape())),
             NamedAttribute(
                 StringAttr::get(context, "width"),
                 IntegerAttr::get(IntegerType::get(context, 64), width))}));
  }
  return panelsOf;
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace {
struct VectorizeMatmulPass
    : public glint::impl::GlintVectorizeMatmulBase<VectorizeMatmulPass> {
  using GlintVectorizeMatmulBase::GlintVectorizeMatmulBase;

  void runOnOperation() override {
    Blocking blocking;
    blocking.width = vectorWidth;
    if (failed(glint::checkVectorWidth(getOperation(), getArgument(),
                                       vectorWidth)))
      return signalPassFailure();
    blocking.tileRows = std::max<int64_t>(tileRows, 1);
    blocking.tileVectors = std::max<int64_t>(tileVectors, 1);
    blocking.rowBlock =
        std::max<int64_t>(rowBlock / blocking.tileRows, 1) * blocking.tileRows;
    blocking.depthBlock = std::max<int64_t>(depthBlock, 1);
    blocking.panelChunk = std::max<int64_t>(panelChunk, 1);
    blocking.packMinRows = std::max<int64_t>(packMinRows, 1);
    blocking.streamPanels = std::max<int64_t>(streamPanels, 1);
    blocking.threads = std::max<int64_t>(threads, 1);
    blocking.prefetchBytes = std::max<int64_t>(prefetchBytes, 0);
    IRRewriter rewriter(&getContext());
    SmallVector<std::pair<linalg::GenericOp, Layout>> grouped;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (std::optional<Layout> layout = matchGroupedProduct(op))
        grouped.push_back({op, *layout});
    });
    for (auto [op, layout] : grouped)
      splitGroupedProduct(op, layout, rewriter);
    SmallVector<linalg::MatmulOp> products;
    getOperation()->walk([&](linalg::MatmulOp op) { products.push_back(op); });
    llvm::DenseMap<Value, Value> panelsOf;
    if (prepare)
      panelsOf = prepareWeights(getOperation(), blocking, rewriter);
    SymbolTable symbols(getOperation());
    for (linalg::MatmulOp op : products) {
      std::optional<Layout> layout = MatmulLowering::match(op);
      if (!layout)
        continue;
      Initial initial = MatmulLowering::initialOf(op);
      Value prepared = panelsOf.lookup(op.getDpsInputOperand(1)->get());
      if (outline && initial.kind != Initial::Tensor &&
          !op->hasAttr(kGroupSliceAttr))
        outlineProduct(op, *layout, initial, getOperation(), symbols, rewriter,
                       blocking, prepared);
      else
        MatmulLowering(op, *layout, rewriter, blocking, prepared).lower();
    }
    // The loads the panels replaced.
    for (auto [load, panels] : panelsOf)
      if (load.use_empty())
        rewriter.eraseOp(load.getDefiningOp());
  }
};
} // namespace
