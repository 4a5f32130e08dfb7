//===- LowerGradients.cpp - glint-lower-gradients -------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers the backward ops of glint-differentiate (`glint.recurrence_grad`,
// `glint.attention_grad`) to scalar loops on tensors, checked against the
// reference evaluator's closed forms (test/unit/LowerGradientsTest.cpp).
//
// `glint.recurrence_grad` is a real backward scan, not the evaluator's
// O(L²) closed form. Per (batch, key group), for each head of the group in
// turn:
//
//   forward:  S runs over the sequence (processing order s = 0 … L−1, time
//             t = reverse ? L−1−s : s); the state at the start of every
//             chunk of C steps is stored: ckpt : [ceil(L/C), K, V'].
//   backward: chunks from last to first: the chunk's states are recomputed
//             from its checkpoint into states : [C+1, K, V'], then its steps
//             run backwards, carrying the state cotangent dS : [K, V'].
//
// Memory per head is O(L/C · K · V + C · K · V), never O(L · K · V).
//
// With `vector-width` (the CPU pipeline's), the linear form of an f32 op
// runs every loop over the value axis W' lanes at a time (W' the largest
// power of two up to the width dividing V; see Rows): the forward and
// recomputed state rows, dS's rows, dv, and the sums over the value axis
// as vector partials. Its key loops take G = min(K, W') keys at a time
// when G is a power of two of at least 2 dividing K (keysPerGroup): the
// keys' decays, keys and queries are read as G lanes (one vector exp), the
// G keys run one after the other inside each value chunk (dv's chunk in a
// register over them), and their G value-axis sums are added over the
// lanes together by a transposing tree of shuffles (laneSums) into G lanes
// of dq, dk and the decay's cotangent. Width 1 builds the scalar loops.
// The recomputed states step from states[i] into states[i + 1] in place.
//
// Where the keys fill vectors of at least 4 lanes and of as many as the
// values (K = V = 16 for RWKV-6's and GLA's heads of 16, 64 for theirs of
// 64), the key-vector form holds every state tile transposed, S[V, K]:
// rows along the keys, so that a step's sums over the value axis (dq = S dy,
// dkv = dS v, da = Σ_v dS ⊙ S_{t−1}) are vector multiply-adds down the
// rows, the values read one at a time (broadcast), and only dv = dSᵀ kv adds
// lanes, by one transposing tree per group of values. The value-axis form
// above needs three trees per group of keys.
//
// Linear form, S_t = a_t ⊙ S_{t−1} + kv_t v_tᵀ (a_t = exp(δ_t g_t),
// kv_t = δ_t k_t), o_t = S_tᵀ q_t (bonus: S_{t−1}ᵀ q_t + (q_t·(u ⊙ kv_t)) v_t)
// + skip v_t. One backward step, with dS the cotangent of S_t:
//
//   no bonus: dS += q_t dy_tᵀ;  dq_t += S_t dy_t
//   bonus:    dq_t += S_{t−1} dy_t + u ⊙ kv_t (v_t·dy_t);
//             dkv_t += q_t ⊙ u (v_t·dy_t);  dv_t += (q_t·(u ⊙ kv_t)) dy_t
//   dkv_t += dS v_t;  dv_t += dSᵀ kv_t;  da_t = Σ_v dS ⊙ S_{t−1}
//   dk_t += δ_t dkv_t;  dδ_t = k_t·dkv_t + Σ_k da_t a_t g_t;
//   dg_t = δ_t da_t a_t (summed over keys per head, over batch and time for
//   the time-invariant forms)
//   dS ← a_t ⊙ dS (+ q_t dy_tᵀ with a bonus: the read of S_{t−1})
//
// RWKV-4's ratio form (K = 1; state [N̂ (V), D̂, m], the true numerator
// and denominator being N̂ e^m, D̂ e^m) carries the scaled cotangents
// Ñ = dN e^m, D̃ = dD e^m, which stay bounded as the exponents do: with
// e1 = exp(w + m_{t−1} − m_t), e2 = exp(k_t − m_t),
//
//   no bonus read: Ñ += dy / D̂_t;  D̃ −= (dy·o_t) / D̂_t
//   dv_t += e2 Ñ;  dk_t += e2 (v_t·Ñ + D̃);
//   dw_t = e1 (N̂_{t−1}·Ñ + D̂_{t−1} D̃);  (Ñ, D̃) ← e1 (Ñ, D̃)
//   bonus read (of t−1, with p = max(m_{t−1}, u + k_t), f1 = e^{m_{t−1}−p},
//   f2 = e^{u+k_t−p}, Z = f1 D̂_{t−1} + f2): Ñ += f1 dy / Z;
//   D̃ −= f1 (dy·o_t) / Z;  dv_t += f2 dy / Z;  dk_t += f2 dy·(v_t − o_t) / Z
//
// Grouped keys: the heads of a group run one after the other in the same
// forall iteration, so their dq and dk sum without races. Time-invariant
// decays get a per-batch partial sum, reduced after the loops.
//
// `glint.attention_grad`: per (batch, key/value head), per query head of
// its group and query position, the probabilities of the visible keys are
// recomputed (max-stabilised), then dv += p dy, dS = scale · p ⊙ (dP −
// p·dP), dq += dS k, dk += dS q. O(L² · D) time, O(L) scratch. With a
// vector width, the loops over the head and value axes (the scores, dP and
// dv, dq and dk) take vectors of the largest power of two lanes up to it
// that divides each axis.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/BuilderUtils.h"
#include "passes/conversions/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/MathExtras.h"

#define DEBUG_TYPE "glint-lower-gradients"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTLOWERGRADIENTS
#include "passes/conversions/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// Scalar and loop builders on one OpBuilder whose insertion point the loop
/// builders move into each body and back.
struct Scalars {
  OpBuilder &b;
  Location loc;
  FloatType ft;

  Value idx(int64_t i) { return arith::ConstantIndexOp::create(b, loc, i); }
  Value f(double x) {
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(ft, x));
  }
  Value minusInf() {
    return arith::ConstantOp::create(
        b, loc,
        b.getFloatAttr(ft, APFloat::getInf(ft.getFloatSemantics(), true)));
  }
  Value add(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  /// x * y + z: one fused multiply-add on vectors (the linear form's value
  /// rows), a product and a sum on scalars, so that the scalar loops stay
  /// those the reference evaluator's closed forms were checked against.
  Value fma(Value x, Value y, Value z) {
    if (isa<VectorType>(x.getType()))
      return math::FmaOp::create(b, loc, x, y, z);
    return add(mul(x, y), z);
  }
  Value max(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value exp(Value x) { return math::ExpOp::create(b, loc, x); }
  Value iadd(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value isub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value imul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value imin(Value x, Value y) { return arith::MinSIOp::create(b, loc, x, y); }
  Value imax(Value x, Value y) { return arith::MaxSIOp::create(b, loc, x, y); }
  Value idiv(Value x, Value y) { return arith::DivSIOp::create(b, loc, x, y); }

  Value at(Value t, ValueRange indices) {
    return tensor::ExtractOp::create(b, loc, t, indices);
  }
  Value put(Value x, Value t, ValueRange indices) {
    return tensor::InsertOp::create(b, loc, x, t, indices);
  }
  /// t[indices] += x.
  Value acc(Value x, Value t, ValueRange indices) {
    return put(add(at(t, indices), x), t, indices);
  }
  Value zeros(RankedTensorType type, ValueRange dynamicSizes) {
    Value empty = tensor::EmptyOp::create(b, loc, type, dynamicSizes);
    return linalg::FillOp::create(b, loc, ValueRange{f(0.0)}, ValueRange{empty})
        .getResult(0);
  }

  /// scf.for %iv = lb to ub step `step` iter_args(inits): `body` returns
  /// the values to yield. Returns the loop's results.
  SmallVector<Value>
  loop(Value lb, Value ub, ValueRange inits,
       function_ref<SmallVector<Value>(Value, ValueRange)> body,
       int64_t step = 1) {
    auto forOp = scf::ForOp::create(
        b, loc, lb, ub, idx(step), inits,
        [&](OpBuilder &nested, Location, Value iv, ValueRange args) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nested.getInsertionBlock(),
                              nested.getInsertionPoint());
          SmallVector<Value> yields = body(iv, args);
          scf::YieldOp::create(b, loc, yields);
        });
    return SmallVector<Value>(forOp.getResults());
  }
  /// The same, for one float accumulator from `init`: returns the sum.
  Value sum(Value lb, Value ub, Value init, function_ref<Value(Value)> term,
            int64_t step = 1) {
    return loop(
        lb, ub, init,
        [&](Value iv, ValueRange args) -> SmallVector<Value> {
          return {add(args[0], term(iv))};
        },
        step)[0];
  }
};

/// An axis of rows (the value axis of a head's state; the attention
/// backward's head and value axes), `width` elements at a time: one
/// (tensor.extract / insert of scalars, as everywhere else in this file) or
/// a vector of `width` lanes (vector.transfer_read / write on tensors, in
/// bounds: `width` divides V). Every loop of the linear form over the value
/// axis goes through it, so the CPU pipeline runs them on vectors
/// (`vector-width`) and width 1 builds exactly the scalar loops.
struct Rows {
  Scalars &s;
  int64_t width;

  Value at(Value t, ValueRange indices) {
    if (width == 1)
      return s.at(t, indices);
    return readLanes(s.b, s.loc, t, indices, width, /*inBounds=*/true);
  }
  Value put(Value x, Value t, ValueRange indices) {
    if (width == 1)
      return s.put(x, t, indices);
    return writeLanes(s.b, s.loc, x, t, indices, /*inBounds=*/true);
  }
  /// t[indices ...] += x.
  Value acc(Value x, Value t, ValueRange indices) {
    return put(s.add(at(t, indices), x), t, indices);
  }
  /// `scalar` in every lane.
  Value splat(Value scalar) {
    if (width == 1)
      return scalar;
    return vector::BroadcastOp::create(s.b, s.loc,
                                       VectorType::get({width}, s.ft), scalar);
  }
  Value zero() { return splat(s.f(0.0)); }
  /// The sum of the lanes of `x`, in any order (addLanes; adding them one
  /// after the other was a third of RWKV-6's backward scan).
  Value total(Value x) {
    if (width == 1)
      return x;
    return addLanes(s.b, s.loc, x);
  }
  /// scf.for %j = lb to ub step width.
  SmallVector<Value>
  loop(Value lb, Value ub, ValueRange inits,
       function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    return s.loop(lb, ub, inits, body, width);
  }
  /// The scalar sum over j in [lb, ub) of `term(j)` (lanes from j on).
  Value sum(Value lb, Value ub, function_ref<Value(Value)> term) {
    return total(s.sum(lb, ub, zero(), term, width));
  }
  /// Lane `e` of `x`.
  Value lane(Value x, int64_t e) {
    if (width == 1)
      return x;
    return vector::ExtractOp::create(s.b, s.loc, x, ArrayRef<int64_t>{e});
  }
  /// Each lane of `x`, a vector of `from`'s lanes, in every lane of one of
  /// these: the per-key scalars of a key group, for its keys' rows.
  SmallVector<Value> splatEach(Rows &from, Value x) {
    SmallVector<Value> splats;
    for (int64_t e = 0; e < from.width; ++e)
      splats.push_back(splat(from.lane(x, e)));
    return splats;
  }
};

/// The slice `source[offsets] [sizes]` (unit strides, rank kept).
Value slice(OpBuilder &b, Location loc, Value source,
            ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes) {
  auto type = cast<RankedTensorType>(source.getType());
  SmallVector<int64_t> shape;
  for (OpFoldResult size : sizes)
    shape.push_back(getConstantIntValue(size).value_or(ShapedType::kDynamic));
  return tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get(shape, type.getElementType()), source,
      offsets, sizes,
      SmallVector<OpFoldResult>(sizes.size(), b.getIndexAttr(1)));
}

/// An empty tensor of `type` whose dynamic dims take their sizes from
/// `sizes` (one per dim).
Value emptyOfType(OpBuilder &b, Location loc, RankedTensorType type,
                  ArrayRef<OpFoldResult> sizes) {
  SmallVector<Value> dynamicSizes;
  for (auto [dim, size] : llvm::enumerate(type.getShape()))
    if (ShapedType::isDynamic(size))
      dynamicSizes.push_back(
          getValueOrCreateConstantIndexOp(b, loc, sizes[dim]));
  return tensor::EmptyOp::create(b, loc, type, dynamicSizes);
}

/// The f32 lanes of an axis of `size` elements on vectors of up to
/// `vectorWidth` lanes: the largest power of two up to it that divides
/// `size` (1: scalar loops).
int64_t lanesDividing(int64_t size, int64_t vectorWidth) {
  int64_t lanes = 1;
  while (lanes * 2 <= vectorWidth && size % (lanes * 2) == 0)
    lanes *= 2;
  return lanes;
}

//===----------------------------------------------------------------------===//
// glint.recurrence_grad
//===----------------------------------------------------------------------===//

class RecurrenceGradLowering {
public:
  RecurrenceGradLowering(RecurrenceGradOp op, RewriterBase &rewriter,
                         int64_t chunk, int64_t vectorWidth)
      : op(op), rewriter(rewriter), loc(op.getLoc()), chunk(chunk),
        ft(cast<FloatType>(
            cast<RankedTensorType>(op.getV().getType()).getElementType())),
        key(cast<RankedTensorType>(op.getK().getType()).getShape()[3]),
        value(cast<RankedTensorType>(op.getV().getType()).getShape()[3]),
        decayRank(cast<RankedTensorType>(op.getLogDecay().getType()).getRank()),
        normalize(op.getNormalize()), bonus(op.getBonus()) {
    stateValue = normalize ? value + 2 : value;
    // The linear form's value loops on f32 vectors of the largest power of
    // two lanes, up to `vectorWidth`, that divides V.
    if (!normalize && ft.isF32() && !ShapedType::isDynamic(value) && value > 0)
      width = lanesDividing(value, vectorWidth);
    int64_t g = std::min(key, width);
    if (width > 1 && !ShapedType::isDynamic(key) && g >= 2 &&
        llvm::isPowerOf2_64(g) && key % g == 0)
      keysPerGroup = g;
    if (!normalize && ft.isF32() && !ShapedType::isDynamic(key) &&
        !ShapedType::isDynamic(value) && key > 0 && value > 0 &&
        lanesDividing(key, vectorWidth) >= std::max<int64_t>(4, width))
      keyWidth = lanesDividing(key, vectorWidth);
  }

  LogicalResult lower();

private:
  /// The per-(batch, group) body; `shared` are the forall's outputs.
  void buildGroupBody(Scalars &s, Value b, Value g, ValueRange shared,
                      scf::InParallelOp inParallel);
  /// One forward step at processing step `p`: the state S[from..., K, V']
  /// steps into S[to..., K, V'] (`from` and `to` the same tile, or two
  /// rows of the chunk's states). Returns the new S.
  Value forwardStep(Scalars &s, Value S, ValueRange from, ValueRange to,
                    Value b, Value h, Value g, Value p);
  /// The backward step of the key-vector form (keyWidth): `dS` the
  /// cotangent of S_t, `o` the outputs, which it updates; returns the
  /// cotangent of S_{t-1}.
  Value keyVectorStep(Scalars &s, Value dS, MutableArrayRef<Value> o,
                      Value states, Value i, Value b, Value t, Value h,
                      Value hl, Value g);
  /// Where the decay's cotangent of head `hl` (of the forall's slice) at
  /// time t and key kk is accumulated: [0, hl], [0, hl, kk], [0, t, hl] or
  /// [0, t, hl, kk] by the decay's rank.
  SmallVector<Value> dLogIndex(Value zero, Value t, Value hl, Value kk) const {
    switch (decayRank) {
    case 1:
      return {zero, hl};
    case 2:
      return {zero, hl, kk};
    case 3:
      return {zero, t, hl};
    default:
      return {zero, t, hl, kk};
    }
  }
  /// The key-vector form's reads of `keys.width` keys from kb at time t:
  /// the key, its decay factor a = exp(δ g) and δ k (δ = `delta` or 1).
  struct KeyChunk {
    Value k, raw, a, kv;
  };
  KeyChunk keyChunk(Scalars &s, Rows keys, Value b, Value t, Value h, Value g,
                    Value kb, Value delta) {
    KeyChunk c;
    c.raw = rawDecay(s, keys, b, t, h, kb);
    c.k = keys.at(op.getK(), {b, t, g, kb});
    Value gk = delta ? s.mul(c.raw, keys.splat(delta)) : c.raw;
    c.kv = delta ? s.mul(c.k, keys.splat(delta)) : c.k;
    c.a = s.exp(gk);
    return c;
  }
  /// The key axis of the linear form, keysPerGroup keys at a time.
  Rows keyLanes(Scalars &s) { return Rows{s, keysPerGroup}; }
  /// The raw log-decays of head h at time t for the `keys.width` keys from
  /// kb (the same value in every lane for the per-head forms; one scalar for
  /// width 1).
  Value rawDecay(Scalars &s, Rows keys, Value b, Value t, Value h, Value kb);
  Value timeOf(Scalars &s, Value p) {
    return op.getReverse() ? s.isub(lastIndex, p) : p;
  }

  /// Cotangents accumulated per head: the slices of the shared outputs.
  enum Out { DQ, DK, DV, DLog, DDelta, NumOuts };

  RecurrenceGradOp op;
  RewriterBase &rewriter;
  Location loc;
  int64_t chunk;
  FloatType ft;
  int64_t key, value, stateValue, decayRank;
  /// Elements of the value axis per step of its loops (see Rows).
  int64_t width = 1;
  /// Keys per step of the linear form's key loops: G = min(K, width) when
  /// that is a power of two of at least 2 dividing K, else 1. Each step
  /// reads the keys' scalars (decay, key, query, bonus) as G lanes, takes
  /// the exponentials of the decays together, runs the G keys' value loops
  /// one after the other (unrolled) and adds their value-axis partials over
  /// the lanes together (laneSums: G sums for the shuffles of about two
  /// horizontal reductions) into G lanes of dq, dk and the decay's
  /// cotangent.
  int64_t keysPerGroup = 1;
  /// Lanes of the key-vector form, 0 where it does not apply: the linear
  /// form's state held as rows along the keys, S[V, K] (every tile, the
  /// checkpoints and the chunk's states), so that a step's sums over the
  /// value axis (dq = S dy, dkv = dS v, da = Σ_v dS ⊙ S_{t-1}) are vector
  /// multiply-adds along the rows, and only dv = dSᵀ kv needs lanes added
  /// (laneSums, for `keyWidth` values at a time): one transposing tree per
  /// step and value group where the rows along the values take three per
  /// key group (perf, RWKV-6 with K = V = 16: the step loop was 11% of the
  /// gradient function's samples, the trees a third of its instructions).
  /// Chosen where the keys take vectors of at least 4 lanes, and of as
  /// many as the values (K = 4, V = 32 keeps 16 lanes along the values).
  int64_t keyWidth = 0;
  bool normalize;
  Value bonus;
  OpFoldResult batch, length, heads, groups;
  Value lengthValue, lastIndex, headsPerGroup;
};

} // namespace

Value RecurrenceGradLowering::rawDecay(Scalars &s, Rows keys, Value b, Value t,
                                       Value h, Value kb) {
  Value decay = op.getLogDecay();
  switch (decayRank) {
  case 1:
    return keys.splat(s.at(decay, {h}));
  case 2:
    return keys.at(decay, {h, kb});
  case 3:
    return keys.splat(s.at(decay, {b, t, h}));
  default:
    return keys.at(decay, {b, t, h, kb});
  }
}

Value RecurrenceGradLowering::forwardStep(Scalars &s, Value S, ValueRange from,
                                          ValueRange to, Value b, Value h,
                                          Value g, Value p) {
  Value t = timeOf(s, p);
  Value zero = s.idx(0);
  auto in = [&](ValueRange prefix, Value row, Value col) {
    SmallVector<Value> indices(prefix);
    indices.append({row, col});
    return indices;
  };
  if (normalize) {
    Value kt = s.at(op.getK(), {b, t, g, zero});
    Value w = rawDecay(s, Rows{s, 1}, b, t, h, zero);
    Value den = s.at(S, in(from, zero, s.idx(value)));
    Value m = s.at(S, in(from, zero, s.idx(value + 1)));
    Value wd = s.add(w, m);
    Value top = s.max(wd, kt);
    Value e1 = s.exp(s.sub(wd, top)), e2 = s.exp(s.sub(kt, top));
    S = s.loop(zero, s.idx(value), S,
               [&](Value j, ValueRange args) -> SmallVector<Value> {
                 Value num = s.at(args[0], in(from, zero, j));
                 Value vj = s.at(op.getV(), {b, t, h, j});
                 return {s.put(s.add(s.mul(e1, num), s.mul(e2, vj)), args[0],
                               in(to, zero, j))};
               })[0];
    S = s.put(s.add(s.mul(e1, den), e2), S, in(to, zero, s.idx(value)));
    return s.put(top, S, in(to, zero, s.idx(value + 1)));
  }
  Value delta = op.getDelta() ? s.at(op.getDelta(), {b, t, h}) : Value();
  if (keyWidth) {
    // S[v, :] = a ⊙ S[v, :] + v_t[v] kv, rows along the keys.
    Rows kr{s, keyWidth};
    SmallVector<KeyChunk> chunks;
    for (int64_t c = 0; c < key / keyWidth; ++c)
      chunks.push_back(keyChunk(s, kr, b, t, h, g, s.idx(c * keyWidth), delta));
    return s.loop(zero, s.idx(value), S,
                  [&](Value j, ValueRange args) -> SmallVector<Value> {
                    Value vj = kr.splat(s.at(op.getV(), {b, t, h, j}));
                    Value St = args[0];
                    for (int64_t c = 0; c < key / keyWidth; ++c) {
                      Value kb = s.idx(c * keyWidth);
                      Value old = kr.at(St, in(from, j, kb));
                      St = kr.put(
                          s.fma(chunks[c].a, old, s.mul(chunks[c].kv, vj)), St,
                          in(to, j, kb));
                    }
                    return {St};
                  })[0];
  }
  Rows rows{s, width}, keys = keyLanes(s);
  return s.loop(
      zero, s.idx(key), S,
      [&](Value kb, ValueRange args) -> SmallVector<Value> {
        Value gk = rawDecay(s, keys, b, t, h, kb);
        Value kv = keys.at(op.getK(), {b, t, g, kb});
        if (delta) {
          gk = s.mul(gk, keys.splat(delta));
          kv = s.mul(kv, keys.splat(delta));
        }
        SmallVector<Value> ae = rows.splatEach(keys, s.exp(gk));
        SmallVector<Value> kve = rows.splatEach(keys, kv);
        return rows.loop(zero, s.idx(value), args[0],
                         [&](Value j, ValueRange inner) -> SmallVector<Value> {
                           Value vj = rows.at(op.getV(), {b, t, h, j});
                           Value St = inner[0];
                           for (int64_t e = 0; e < keys.width; ++e) {
                             Value kk = s.iadd(kb, s.idx(e));
                             Value old = rows.at(St, in(from, kk, j));
                             St = rows.put(s.fma(ae[e], old, s.mul(kve[e], vj)),
                                           St, in(to, kk, j));
                           }
                           return {St};
                         });
      },
      keys.width)[0];
}

Value RecurrenceGradLowering::keyVectorStep(Scalars &s, Value dS,
                                            MutableArrayRef<Value> o,
                                            Value states, Value i, Value b,
                                            Value t, Value h, Value hl,
                                            Value g) {
  Value zero = s.idx(0), next = s.iadd(i, s.idx(1));
  Rows kr{s, keyWidth};
  int64_t chunks = key / keyWidth;
  // Values per lane sum of dv.
  int64_t group = lanesDividing(value, keyWidth);
  Value delta = op.getDelta() ? s.at(op.getDelta(), {b, t, h}) : Value();
  auto scaled = [&](Value x) { return delta ? s.mul(x, kr.splat(delta)) : x; };
  // The step's key vectors, chunk by chunk.
  SmallVector<Value> q, k, kv, raw, a, bonusU;
  for (int64_t c = 0; c < chunks; ++c) {
    Value kb = s.idx(c * keyWidth);
    q.push_back(op.getQ() ? kr.at(op.getQ(), {b, t, g, kb})
                          : kr.splat(s.f(1.0)));
    KeyChunk keys = keyChunk(s, kr, b, t, h, g, kb, delta);
    k.push_back(keys.k);
    kv.push_back(keys.kv);
    raw.push_back(keys.raw);
    a.push_back(keys.a);
    if (bonus)
      bonusU.push_back(kr.at(bonus, {h, kb}));
  }
  auto dyAt = [&](Value j) { return s.at(op.getGrad(), {b, t, h, j}); };
  auto vAt = [&](Value j) { return s.at(op.getV(), {b, t, h, j}); };
  // With a bonus, o_t = S_{t-1}ᵀ q_t + (q_t·(u ⊙ kv_t)) v_t: the diagonal
  // term's cotangents need q_t·(u ⊙ kv_t) (for dv, in the loop below) and
  // v_t·dy_t (summed in the loop, `group` lanes at a time).
  Rows vr{s, group};
  Value diag;
  if (bonus) {
    diag = s.f(0.0);
    for (int64_t c = 0; c < chunks; ++c)
      diag = s.add(diag, kr.total(s.mul(s.mul(q[c], bonusU[c]), kv[c])));
  }
  // Value by value, `group` at a time: dS's row, dq, dkv and da along the
  // keys; dv's partials along them, their lanes added per group.
  SmallVector<Value> inits = {dS, o[DV]};
  inits.append(3 * chunks, kr.zero());
  if (bonus)
    inits.push_back(vr.zero());
  SmallVector<Value> r = s.loop(
      zero, s.idx(value), inits,
      [&](Value v0, ValueRange x) -> SmallVector<Value> {
        Value dSt = x[0];
        SmallVector<Value> dq(x.slice(2, chunks)),
            dkv(x.slice(2 + chunks, chunks)),
            da(x.slice(2 + 2 * chunks, chunks));
        SmallVector<Value> parts;
        for (int64_t e = 0; e < group; ++e) {
          Value j = s.iadd(v0, s.idx(e));
          Value dy = kr.splat(dyAt(j)), vj = kr.splat(vAt(j));
          Value part = kr.zero();
          for (int64_t c = 0; c < chunks; ++c) {
            Value kb = s.idx(c * keyWidth);
            Value d = kr.at(dSt, {j, kb});
            Value prev = kr.at(states, {i, j, kb});
            if (bonus) {
              // The read of S_{t-1}: dq += S_{t-1} dy.
              dq[c] = s.fma(prev, dy, dq[c]);
            } else {
              // The read of S_t: dS += q dyᵀ, dq += S_t dy.
              d = s.fma(q[c], dy, d);
              dq[c] = s.fma(kr.at(states, {next, j, kb}), dy, dq[c]);
            }
            // S_t = a ⊙ S_{t-1} + kv vᵀ.
            part = s.fma(d, kv[c], part);
            dkv[c] = s.fma(d, vj, dkv[c]);
            da[c] = s.fma(d, prev, da[c]);
            Value decayed =
                bonus ? s.fma(a[c], d, s.mul(q[c], dy)) : s.mul(a[c], d);
            dSt = kr.put(decayed, dSt, {j, kb});
          }
          parts.push_back(part);
        }
        Value sums =
            group == 1 ? kr.total(parts.front()) : laneSums(s.b, s.loc, parts);
        Value dyv;
        if (bonus) {
          Value dy = vr.at(op.getGrad(), {b, t, h, v0});
          sums = s.fma(vr.splat(diag), dy, sums);
          dyv = s.fma(vr.at(op.getV(), {b, t, h, v0}), dy, x.back());
        }
        SmallVector<Value> out = {dSt, vr.acc(sums, x[1], {zero, t, hl, v0})};
        out.append(dq);
        out.append(dkv);
        out.append(da);
        if (bonus)
          out.push_back(dyv);
        return out;
      },
      group);
  o[DV] = r[1];
  Value dyv = bonus ? vr.total(r.back()) : Value();
  Value dDelta = s.f(0.0), headDecay = s.f(0.0);
  for (int64_t c = 0; c < chunks; ++c) {
    Value kb = s.idx(c * keyWidth);
    Value dq = r[2 + c], dkv = r[2 + chunks + c], da = r[2 + 2 * chunks + c];
    if (bonus) {
      Value dyvs = kr.splat(dyv);
      dq = s.fma(s.mul(bonusU[c], kv[c]), dyvs, dq);
      dkv = s.fma(s.mul(q[c], bonusU[c]), dyvs, dkv);
    }
    o[DQ] = kr.acc(dq, o[DQ], {zero, t, zero, kb});
    o[DK] = kr.acc(scaled(dkv), o[DK], {zero, t, zero, kb});
    Value dga = s.mul(da, a[c]); // cotangent of δ g
    // Without delta, dδ is that of the input term's step only (as the
    // evaluator defines it): the decay is not factored.
    dDelta = s.add(dDelta, kr.total(delta ? s.fma(dkv, k[c], s.mul(dga, raw[c]))
                                          : s.mul(dkv, k[c])));
    Value dg = scaled(dga);
    if (decayRank == 1 || decayRank == 3)
      headDecay = s.add(headDecay, kr.total(dg));
    else
      o[DLog] = kr.acc(dg, o[DLog], dLogIndex(zero, t, hl, kb));
  }
  if (decayRank == 1 || decayRank == 3)
    o[DLog] = s.acc(headDecay, o[DLog], dLogIndex(zero, t, hl, Value()));
  o[DDelta] = s.acc(dDelta, o[DDelta], {zero, t, hl});
  return r[0];
}

void RecurrenceGradLowering::buildGroupBody(Scalars &s, Value b, Value g,
                                            ValueRange shared,
                                            scf::InParallelOp inParallel) {
  OpBuilder &builder = s.b;
  Value zero = s.idx(0), one = s.idx(1);
  Value h0 = s.imul(g, headsPerGroup);
  OpFoldResult z = builder.getIndexAttr(0), u = builder.getIndexAttr(1);
  OpFoldResult hpg = getAsOpFoldResult(headsPerGroup);

  // The slices this iteration owns, zeroed: the cotangents accumulate.
  SmallVector<SmallVector<OpFoldResult>> offsets(NumOuts), sizes(NumOuts);
  offsets[DQ] = offsets[DK] = {b, z, g, z};
  sizes[DQ] = sizes[DK] = {u, length, u, builder.getIndexAttr(key)};
  offsets[DV] = {b, z, h0, z};
  sizes[DV] = {u, length, hpg, builder.getIndexAttr(value)};
  offsets[DDelta] = {b, z, h0};
  sizes[DDelta] = {u, length, hpg};
  switch (decayRank) {
  case 1:
    offsets[DLog] = {b, h0};
    sizes[DLog] = {u, hpg};
    break;
  case 2:
    offsets[DLog] = {b, h0, z};
    sizes[DLog] = {u, hpg, builder.getIndexAttr(normalize ? 1 : key)};
    break;
  case 3:
    offsets[DLog] = {b, z, h0};
    sizes[DLog] = {u, length, hpg};
    break;
  default:
    offsets[DLog] = {b, z, h0, z};
    sizes[DLog] = {u, length, hpg, builder.getIndexAttr(normalize ? 1 : key)};
    break;
  }
  SmallVector<Value> outs;
  for (int i = 0; i < NumOuts; ++i) {
    Value part = slice(builder, loc, shared[i], offsets[i], sizes[i]);
    outs.push_back(linalg::FillOp::create(builder, loc, ValueRange{s.f(0.0)},
                                          ValueRange{part})
                       .getResult(0));
  }

  Value chunkSize = s.idx(chunk);
  Value chunks = s.idiv(s.iadd(lengthValue, s.idx(chunk - 1)), chunkSize);
  // A head's state tile: [K, V'], or [V, K] in the key-vector form.
  int64_t tileRows = keyWidth ? value : key;
  int64_t tileCols = keyWidth ? key : stateValue;
  auto tileType = RankedTensorType::get({tileRows, tileCols}, ft);
  auto ckptType =
      RankedTensorType::get({ShapedType::kDynamic, tileRows, tileCols}, ft);
  auto statesType = RankedTensorType::get({chunk + 1, tileRows, tileCols}, ft);
  auto insertTile = [&](Value tile, Value into, Value at) {
    SmallVector<OpFoldResult> o = {at, z, z};
    SmallVector<OpFoldResult> sz = {u, builder.getIndexAttr(tileRows),
                                    builder.getIndexAttr(tileCols)};
    return tensor::InsertSliceOp::create(builder, loc, tile, into, o, sz,
                                         SmallVector<OpFoldResult>(3, u))
        .getResult();
  };
  auto extractTile = [&](Value from, Value at) {
    SmallVector<OpFoldResult> o = {at, z, z};
    SmallVector<OpFoldResult> sz = {u, builder.getIndexAttr(tileRows),
                                    builder.getIndexAttr(tileCols)};
    return tensor::ExtractSliceOp::create(builder, loc, tileType, from, o, sz,
                                          SmallVector<OpFoldResult>(3, u))
        .getResult();
  };

  outs = s.loop(zero, headsPerGroup, outs, [&](Value hl, ValueRange hArgs) {
    Value h = s.iadd(h0, hl);
    // Forward: the state at the start of each chunk.
    Value init = s.zeros(tileType, {});
    if (normalize)
      init = s.put(s.minusInf(), init, {zero, s.idx(value + 1)});
    Value ckpt0 = tensor::EmptyOp::create(builder, loc, ckptType, chunks);
    // The last chunk's steps are not run: no chunk starts after it.
    Value lastStart = s.imul(s.isub(chunks, one), chunkSize);
    Value ckpt = s.loop(
        zero, chunks, {init, ckpt0},
        [&](Value c, ValueRange args) -> SmallVector<Value> {
          Value saved = insertTile(args[0], args[1], c);
          Value start = s.imul(c, chunkSize);
          Value end = s.imin(lastStart, s.iadd(start, chunkSize));
          Value S = s.loop(start, end, args[0], [&](Value p, ValueRange st) {
            return SmallVector<Value>{
                forwardStep(s, st[0], {}, {}, b, h, g, p)};
          })[0];
          return {S, saved};
        })[1];

    Value skip = op.getSkip() ? s.at(op.getSkip(), {h}) : Value();
    Value bonusRow = bonus;
    // Backward over the chunks, last first.
    SmallVector<Value> carried = {s.zeros(tileType, {})};
    carried.append(hArgs.begin(), hArgs.end());
    carried = s.loop(zero, chunks, carried, [&](Value cr, ValueRange cArgs) {
      Value c = s.isub(s.isub(chunks, one), cr);
      Value start = s.imul(c, chunkSize);
      Value end = s.imin(lengthValue, s.iadd(start, chunkSize));
      Value n = s.isub(end, start);
      Value states0 =
          tensor::EmptyOp::create(builder, loc, statesType, ValueRange{});
      Value first = extractTile(ckpt, c);
      states0 = insertTile(first, states0, zero);
      // Each step reads states[i] and writes states[i + 1] in place.
      Value states =
          s.loop(zero, n, states0,
                 [&](Value i, ValueRange args) -> SmallVector<Value> {
                   return {forwardStep(s, args[0], {i}, {s.iadd(i, one)}, b, h,
                                       g, s.iadd(start, i))};
                 })[0];
      return s.loop(zero, n, cArgs, [&](Value ir, ValueRange a) {
        Value i = s.isub(s.isub(n, one), ir);
        Value t = timeOf(s, s.iadd(start, i));
        Value next = s.iadd(i, one);
        Value dS = a[0];
        SmallVector<Value> o(a.drop_front());
        Rows rows{s, width};
        auto dyAt = [&](Value j) {
          return rows.at(op.getGrad(), {b, t, h, j});
        };
        auto vAt = [&](Value j) { return rows.at(op.getV(), {b, t, h, j}); };
        Value vIdx = s.idx(value);
        // dLog at (t, h, kk) gets x.
        auto dLogAcc = [&](Value x, Value kk) {
          o[DLog] = s.acc(x, o[DLog], dLogIndex(zero, t, hl, kk));
        };
        if (skip)
          o[DV] = rows.loop(zero, vIdx, o[DV],
                            [&](Value j, ValueRange r) -> SmallVector<Value> {
                              return {rows.acc(s.mul(rows.splat(skip), dyAt(j)),
                                               r[0], {zero, t, hl, j})};
                            })[0];

        if (normalize) {
          Value kt = s.at(op.getK(), {b, t, g, zero});
          Value w = rawDecay(s, Rows{s, 1}, b, t, h, zero);
          Value denIdx = s.idx(value), maxIdx = s.idx(value + 1);
          Value denP = s.at(states, {i, zero, denIdx});
          Value mP = s.at(states, {i, zero, maxIdx});
          Value denC = s.at(states, {next, zero, denIdx});
          Value mC = s.at(states, {next, zero, maxIdx});
          Value dk = s.f(0.0);
          if (!bonus) {
            // o_t = N_t / D_t: the read of the state after the step.
            Value dyo = s.sum(zero, vIdx, s.f(0.0), [&](Value j) {
              return s.mul(dyAt(j), s.at(states, {next, zero, j}));
            });
            dS = s.loop(zero, vIdx, dS,
                        [&](Value j, ValueRange r) -> SmallVector<Value> {
                          return {s.acc(s.div(dyAt(j), denC), r[0], {zero, j})};
                        })[0];
            dS = s.acc(s.div(s.sub(s.f(0.0), s.div(dyo, denC)), denC), dS,
                       {zero, denIdx});
          }
          Value e1 = s.exp(s.sub(s.add(w, mP), mC));
          Value e2 = s.exp(s.sub(kt, mC));
          Value dD = s.at(dS, {zero, denIdx});
          // dv += e2 Ñ; dk += e2 (v·Ñ + D̃); dw = e1 (N̂_{t-1}·Ñ + D̂_{t-1} D̃).
          SmallVector<Value> r = s.loop(
              zero, vIdx, {o[DV], s.f(0.0), s.f(0.0)},
              [&](Value j, ValueRange r) -> SmallVector<Value> {
                Value dn = s.at(dS, {zero, j});
                return {s.acc(s.mul(e2, dn), r[0], {zero, t, hl, j}),
                        s.add(r[1], s.mul(vAt(j), dn)),
                        s.add(r[2], s.mul(s.at(states, {i, zero, j}), dn))};
              });
          o[DV] = r[0];
          dk = s.add(dk, s.mul(e2, s.add(r[1], dD)));
          dLogAcc(s.mul(e1, s.add(r[2], s.mul(denP, dD))), zero);
          dS = s.loop(zero, s.idx(value + 1), dS,
                      [&](Value j, ValueRange r) -> SmallVector<Value> {
                        return {s.put(s.mul(e1, s.at(r[0], {zero, j})), r[0],
                                      {zero, j})};
                      })[0];
          if (bonus) {
            // The read of the state before the step, with the current token
            // at weight e^{u + k_t}.
            Value ww = s.add(s.at(bonus, {h, zero}), kt);
            Value top = s.max(mP, ww);
            Value f1 = s.exp(s.sub(mP, top)), f2 = s.exp(s.sub(ww, top));
            Value zsum = s.add(s.mul(f1, denP), f2);
            auto oAt = [&](Value j) {
              Value num = s.at(states, {i, zero, j});
              return s.div(s.add(s.mul(f1, num), s.mul(f2, vAt(j))), zsum);
            };
            SmallVector<Value> rb = s.loop(
                zero, vIdx, {dS, o[DV], s.f(0.0), s.f(0.0)},
                [&](Value j, ValueRange r) -> SmallVector<Value> {
                  Value dy = dyAt(j), oj = oAt(j);
                  return {
                      s.acc(s.div(s.mul(f1, dy), zsum), r[0], {zero, j}),
                      s.acc(s.div(s.mul(f2, dy), zsum), r[1], {zero, t, hl, j}),
                      s.add(r[2], s.mul(dy, oj)),
                      s.add(r[3], s.mul(dy, s.sub(vAt(j), oj)))};
                });
            dS = s.acc(s.div(s.sub(s.f(0.0), s.mul(f1, rb[2])), zsum), rb[0],
                       {zero, denIdx});
            o[DV] = rb[1];
            dk = s.add(dk, s.div(s.mul(f2, rb[3]), zsum));
          }
          o[DK] = s.acc(dk, o[DK], {zero, t, zero, zero});
          SmallVector<Value> yields = {dS};
          yields.append(o);
          return yields;
        }

        if (keyWidth) {
          dS = keyVectorStep(s, dS, o, states, i, b, t, h, hl, g);
          SmallVector<Value> yields = {dS};
          yields.append(o);
          return yields;
        }
        // The linear form: the key loops take G keys at a time (see
        // keyLanes), their per-key sums over the value axis added over the
        // lanes together.
        Value kIdx = s.idx(key);
        Value delta = op.getDelta() ? s.at(op.getDelta(), {b, t, h}) : Value();
        Rows keys = keyLanes(s);
        auto qLanes = [&](Value kb) {
          return op.getQ() ? keys.at(op.getQ(), {b, t, g, kb})
                           : keys.splat(s.f(1.0));
        };
        auto kLanes = [&](Value kb) {
          return keys.at(op.getK(), {b, t, g, kb});
        };
        auto scaled = [&](Value x) {
          return delta ? s.mul(x, keys.splat(delta)) : x;
        };
        // The sums of the value-axis partials of G keys, as G lanes.
        auto sums = [&](ArrayRef<Value> parts) {
          return parts.size() == 1 ? rows.total(parts.front())
                                   : laneSums(builder, loc, parts);
        };
        // G zero partials, one per key of a group.
        SmallVector<Value> zeros(keys.width, rows.zero());
        Value dDelta = s.f(0.0);
        Value dyv;
        if (bonus) {
          // The diagonal term (q·(u ⊙ kv)) v_t and the read of S_{t-1}.
          dyv = rows.sum(zero, vIdx,
                         [&](Value j) { return s.mul(vAt(j), dyAt(j)); });
          Value diag = keys.total(s.sum(
              zero, kIdx, keys.zero(),
              [&](Value kb) {
                return s.mul(s.mul(qLanes(kb), keys.at(bonusRow, {h, kb})),
                             scaled(kLanes(kb)));
              },
              keys.width));
          o[DV] = rows.loop(zero, vIdx, o[DV],
                            [&](Value j, ValueRange r) -> SmallVector<Value> {
                              Value at[] = {zero, t, hl, j};
                              return {rows.put(s.fma(rows.splat(diag), dyAt(j),
                                                     rows.at(r[0], at)),
                                               r[0], at)};
                            })[0];
          o[DQ] = s.loop(
              zero, kIdx, o[DQ],
              [&](Value kb, ValueRange r) -> SmallVector<Value> {
                SmallVector<Value> parts = rows.loop(
                    zero, vIdx, zeros,
                    [&](Value j, ValueRange x) -> SmallVector<Value> {
                      Value dy = dyAt(j);
                      SmallVector<Value> out;
                      for (int64_t e = 0; e < keys.width; ++e) {
                        Value kk = s.iadd(kb, s.idx(e));
                        out.push_back(
                            s.fma(rows.at(states, {i, kk, j}), dy, x[e]));
                      }
                      return out;
                    });
                Value term =
                    s.mul(s.mul(keys.at(bonusRow, {h, kb}), scaled(kLanes(kb))),
                          keys.splat(dyv));
                return {keys.acc(s.add(sums(parts), term), r[0],
                                 {zero, t, zero, kb})};
              },
              keys.width)[0];
        } else {
          // o_t = S_tᵀ q_t: dS += q dyᵀ, dq += S_t dy.
          SmallVector<Value> r = s.loop(
              zero, kIdx, {dS, o[DQ]},
              [&](Value kb, ValueRange r) -> SmallVector<Value> {
                SmallVector<Value> qk = rows.splatEach(keys, qLanes(kb));
                SmallVector<Value> inits = {r[0]};
                inits.append(zeros);
                SmallVector<Value> in = rows.loop(
                    zero, vIdx, inits,
                    [&](Value j, ValueRange x) -> SmallVector<Value> {
                      Value dy = dyAt(j);
                      SmallVector<Value> out = {x[0]};
                      for (int64_t e = 0; e < keys.width; ++e) {
                        Value kk = s.iadd(kb, s.idx(e));
                        out[0] =
                            rows.put(s.fma(qk[e], dy, rows.at(out[0], {kk, j})),
                                     out[0], {kk, j});
                        out.push_back(s.fma(rows.at(states, {next, kk, j}), dy,
                                            x[1 + e]));
                      }
                      return out;
                    });
                return {in[0], keys.acc(sums(ArrayRef(in).drop_front()), r[1],
                                        {zero, t, zero, kb})};
              },
              keys.width);
          dS = r[0];
          o[DQ] = r[1];
        }
        // The update S_t = a ⊙ S_{t-1} + kv vᵀ, G keys at a time.
        SmallVector<Value> keyArgs = {dS, o[DK], o[DV], o[DLog], dDelta};
        Value headDecay = s.f(0.0);
        if (decayRank == 1 || decayRank == 3)
          keyArgs.push_back(headDecay);
        keyArgs = s.loop(
            zero, kIdx, keyArgs,
            [&](Value kb, ValueRange r) -> SmallVector<Value> {
              Value raw = rawDecay(s, keys, b, t, h, kb);
              Value a = s.exp(scaled(raw));
              Value k = kLanes(kb);
              Value kv = scaled(k);
              Value q = bonus ? qLanes(kb) : Value();
              SmallVector<Value> ae = rows.splatEach(keys, a);
              SmallVector<Value> kve = rows.splatEach(keys, kv);
              SmallVector<Value> qk =
                  bonus ? rows.splatEach(keys, q) : SmallVector<Value>();
              // Value chunk by value chunk, the group's keys one after the
              // other: dv's chunk stays in a register over the keys.
              SmallVector<Value> inits = {r[0], r[2]};
              inits.append(zeros);
              inits.append(zeros);
              SmallVector<Value> in =
                  rows.loop(zero, vIdx, inits,
                            [&](Value j, ValueRange x) -> SmallVector<Value> {
                              Value vj = vAt(j);
                              Value dy = bonus ? dyAt(j) : Value();
                              Value dSk = x[0];
                              Value dv = rows.at(x[1], {zero, t, hl, j});
                              SmallVector<Value> dkvs, das;
                              for (int64_t e = 0; e < keys.width; ++e) {
                                Value kk = s.iadd(kb, s.idx(e));
                                Value d = rows.at(dSk, {kk, j});
                                dv = s.fma(d, kve[e], dv);
                                dkvs.push_back(s.fma(d, vj, x[2 + e]));
                                das.push_back(s.fma(d,
                                                    rows.at(states, {i, kk, j}),
                                                    x[2 + keys.width + e]));
                                Value decayed =
                                    bonus ? s.fma(ae[e], d, s.mul(qk[e], dy))
                                          : s.mul(ae[e], d);
                                dSk = rows.put(decayed, dSk, {kk, j});
                              }
                              SmallVector<Value> out = {
                                  dSk, rows.put(dv, x[1], {zero, t, hl, j})};
                              out.append(dkvs);
                              out.append(das);
                              return out;
                            });
              Value dSk = in[0], dv = in[1];
              ArrayRef<Value> dkvParts = ArrayRef(in).slice(2, keys.width);
              ArrayRef<Value> daParts = ArrayRef(in).slice(2 + keys.width);
              Value dkv = sums(dkvParts);
              Value da = sums(daParts);
              if (bonus)
                dkv = s.add(dkv, s.mul(s.mul(q, keys.at(bonusRow, {h, kb})),
                                       keys.splat(dyv)));
              Value dk = keys.acc(scaled(dkv), r[1], {zero, t, zero, kb});
              Value dga = s.mul(da, a); // cotangent of δ g
              // Without delta, dδ is that of the input term's step only (as
              // the evaluator defines it): the decay is not factored.
              Value dDel = s.add(
                  r[4], keys.total(delta ? s.add(s.mul(dkv, k), s.mul(dga, raw))
                                         : s.mul(dkv, k)));
              Value dg = scaled(dga);
              SmallVector<Value> res = {dSk, dk, dv, r[3], dDel};
              if (decayRank == 1 || decayRank == 3) {
                res.push_back(s.add(r[5], keys.total(dg)));
              } else {
                res[3] = keys.acc(dg, r[3], dLogIndex(zero, t, hl, kb));
              }
              return res;
            },
            keys.width);
        dS = keyArgs[0];
        o[DK] = keyArgs[1];
        o[DV] = keyArgs[2];
        o[DLog] = keyArgs[3];
        if (decayRank == 1 || decayRank == 3)
          dLogAcc(keyArgs[5], zero);
        o[DDelta] = s.acc(keyArgs[4], o[DDelta], {zero, t, hl});
        SmallVector<Value> yields = {dS};
        yields.append(o);
        return yields;
      });
    });
    return SmallVector<Value>(carried.begin() + 1, carried.end());
  });

  for (int i = 0; i < NumOuts; ++i)
    publish(builder, loc, inParallel, outs[i], shared[i], offsets[i], sizes[i]);
}

LogicalResult RecurrenceGradLowering::lower() {
  if (ShapedType::isDynamic(key) || ShapedType::isDynamic(value))
    return op.emitError()
           << "cannot lower 'glint.recurrence_grad' with a dynamic "
           << (ShapedType::isDynamic(key) ? "key" : "value")
           << " size: the per-head state must be a static K x V tile";
  if (normalize && key != 1)
    return op.emitError("cannot lower 'glint.recurrence_grad' in the ratio "
                        "form with a key size other than 1");

  rewriter.setInsertionPoint(op);
  Scalars s{rewriter, loc, ft};
  Value v = op.getV();
  batch = tensor::getMixedSize(rewriter, loc, v, 0);
  length = tensor::getMixedSize(rewriter, loc, v, 1);
  heads = tensor::getMixedSize(rewriter, loc, v, 2);
  groups = tensor::getMixedSize(rewriter, loc, op.getK(), 2);
  lengthValue = getValueOrCreateConstantIndexOp(rewriter, loc, length);
  lastIndex = s.isub(lengthValue, s.idx(1));
  headsPerGroup =
      s.idiv(getValueOrCreateConstantIndexOp(rewriter, loc, heads),
             getValueOrCreateConstantIndexOp(rewriter, loc, groups));

  // The shared outputs; time-invariant decays get a per-batch partial.
  auto withBatch = [&](Type type) {
    auto t = cast<RankedTensorType>(type);
    SmallVector<int64_t> shape = {ShapedType::kDynamic};
    llvm::append_range(shape, t.getShape());
    return RankedTensorType::get(shape, ft);
  };
  auto sizesOf = [&](Value x) {
    SmallVector<OpFoldResult> sizes;
    for (int64_t d = 0; d < cast<RankedTensorType>(x.getType()).getRank(); ++d)
      sizes.push_back(tensor::getMixedSize(rewriter, loc, x, d));
    return sizes;
  };
  SmallVector<Value> outputs;
  outputs.push_back(emptyOfType(rewriter, loc,
                                cast<RankedTensorType>(op.getGradQ().getType()),
                                sizesOf(op.getK())));
  outputs.push_back(emptyOfType(rewriter, loc,
                                cast<RankedTensorType>(op.getGradK().getType()),
                                sizesOf(op.getK())));
  outputs.push_back(emptyOfType(rewriter, loc,
                                cast<RankedTensorType>(op.getGradV().getType()),
                                sizesOf(v)));
  bool staticDecay = decayRank <= 2;
  if (staticDecay) {
    SmallVector<OpFoldResult> sizes = {batch};
    llvm::append_range(sizes, sizesOf(op.getLogDecay()));
    outputs.push_back(emptyOfType(
        rewriter, loc, withBatch(op.getLogDecay().getType()), sizes));
  } else {
    outputs.push_back(emptyOfType(
        rewriter, loc, cast<RankedTensorType>(op.getGradLogDecay().getType()),
        sizesOf(op.getLogDecay())));
  }
  outputs.push_back(emptyOfType(
      rewriter, loc, cast<RankedTensorType>(op.getGradDelta().getType()),
      {batch, length, heads}));

  auto forall = scf::ForallOp::create(
      rewriter, loc, ArrayRef<OpFoldResult>{batch, groups}, outputs,
      /*mapping=*/std::nullopt, /*bodyBuilderFn=*/nullptr);
  {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToStart(forall.getBody());
    Scalars inner{rewriter, loc, ft};
    ValueRange ivs = forall.getInductionVars();
    buildGroupBody(inner, ivs[0], ivs[1], forall.getRegionIterArgs(),
                   forall.getTerminator());
  }
  SmallVector<Value> results(forall.getResults());
  if (staticDecay) {
    // Sum the per-batch partials.
    auto type = cast<RankedTensorType>(op.getGradLogDecay().getType());
    Value init = linalg::FillOp::create(
                     rewriter, loc, ValueRange{s.f(0.0)},
                     ValueRange{emptyOfType(rewriter, loc, type,
                                            sizesOf(op.getLogDecay()))})
                     .getResult(0);
    int64_t rank = type.getRank();
    MLIRContext *ctx = rewriter.getContext();
    SmallVector<AffineExpr> inExprs, outExprs;
    for (int64_t d = 0; d <= rank; ++d)
      inExprs.push_back(getAffineDimExpr(d, ctx));
    for (int64_t d = 1; d <= rank; ++d)
      outExprs.push_back(getAffineDimExpr(d, ctx));
    SmallVector<utils::IteratorType> iterators(rank + 1,
                                               utils::IteratorType::parallel);
    iterators[0] = utils::IteratorType::reduction;
    auto sum = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{results[DLog]},
        ValueRange{init},
        ArrayRef<AffineMap>{AffineMap::get(rank + 1, 0, inExprs, ctx),
                            AffineMap::get(rank + 1, 0, outExprs, ctx)},
        iterators, [&](OpBuilder &nb, Location nl, ValueRange args) {
          linalg::YieldOp::create(
              nb, nl,
              ValueRange{
                  arith::AddFOp::create(nb, nl, args[1], args[0]).getResult()});
        });
    results[DLog] = sum.getResult(0);
  }
  rewriter.replaceOp(op, results);
  return success();
}

//===----------------------------------------------------------------------===//
// glint.attention_grad
//===----------------------------------------------------------------------===//

static LogicalResult lowerAttentionGrad(AttentionGradOp op,
                                        RewriterBase &rewriter,
                                        int64_t vectorWidth) {
  Location loc = op.getLoc();
  auto qType = cast<RankedTensorType>(op.getQ().getType());
  auto vType = cast<RankedTensorType>(op.getV().getType());
  int64_t dim = qType.getShape()[3], valueDim = vType.getShape()[3];
  if (ShapedType::isDynamic(dim) || ShapedType::isDynamic(valueDim))
    return op.emitError("cannot lower 'glint.attention_grad' with a dynamic "
                        "head size");
  auto ft = cast<FloatType>(qType.getElementType());
  rewriter.setInsertionPoint(op);
  Scalars s{rewriter, loc, ft};
  Value q = op.getQ(), k = op.getK(), v = op.getV(), dy = op.getGrad();
  OpFoldResult batch = tensor::getMixedSize(rewriter, loc, q, 0);
  OpFoldResult length = tensor::getMixedSize(rewriter, loc, q, 1);
  OpFoldResult heads = tensor::getMixedSize(rewriter, loc, q, 2);
  OpFoldResult kvHeads = tensor::getMixedSize(rewriter, loc, k, 2);
  Value lengthValue = getValueOrCreateConstantIndexOp(rewriter, loc, length);
  Value headsPerGroup =
      s.idiv(getValueOrCreateConstantIndexOp(rewriter, loc, heads),
             getValueOrCreateConstantIndexOp(rewriter, loc, kvHeads));
  double scale = op.getScale().convertToDouble();
  std::optional<int64_t> window;
  if (op.getWindowAttr())
    window = op.getWindowAttr().getInt();

  SmallVector<Value> outputs = {
      emptyOfType(rewriter, loc, qType,
                  {batch, length, heads, rewriter.getIndexAttr(dim)}),
      emptyOfType(rewriter, loc, cast<RankedTensorType>(k.getType()),
                  {batch, length, kvHeads, rewriter.getIndexAttr(dim)}),
      emptyOfType(rewriter, loc, vType,
                  {batch, length, kvHeads, rewriter.getIndexAttr(valueDim)})};
  auto forall = scf::ForallOp::create(
      rewriter, loc, ArrayRef<OpFoldResult>{batch, kvHeads}, outputs,
      /*mapping=*/std::nullopt, /*bodyBuilderFn=*/nullptr);
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(forall.getBody());
  Scalars in{rewriter, loc, ft};
  Value b = forall.getInductionVars()[0], g = forall.getInductionVars()[1];
  Value zero = in.idx(0), one = in.idx(1);
  Value h0 = in.imul(g, headsPerGroup);
  OpFoldResult z = rewriter.getIndexAttr(0), u = rewriter.getIndexAttr(1);
  SmallVector<SmallVector<OpFoldResult>> offsets = {
      {b, z, h0, z}, {b, z, g, z}, {b, z, g, z}};
  SmallVector<SmallVector<OpFoldResult>> sizes = {
      {u, length, getAsOpFoldResult(headsPerGroup), rewriter.getIndexAttr(dim)},
      {u, length, u, rewriter.getIndexAttr(dim)},
      {u, length, u, rewriter.getIndexAttr(valueDim)}};
  SmallVector<Value> outs;
  for (int i = 0; i < 3; ++i) {
    Value part = slice(rewriter, loc, forall.getRegionIterArgs()[i], offsets[i],
                       sizes[i]);
    outs.push_back(linalg::FillOp::create(rewriter, loc, ValueRange{in.f(0.0)},
                                          ValueRange{part})
                       .getResult(0));
  }
  auto rowType = RankedTensorType::get({ShapedType::kDynamic}, ft);
  Value dimIdx = in.idx(dim), valueIdx = in.idx(valueDim);
  // The head and value axes on f32 vectors of the largest power of two
  // lanes, up to `vectorWidth`, that divides each (width 1: scalar loops).
  auto lanesFor = [&](int64_t size) {
    return ft.isF32() ? lanesDividing(size, vectorWidth) : 1;
  };
  Rows headAxis{in, lanesFor(dim)}, valueAxis{in, lanesFor(valueDim)};
  outs = in.loop(zero, headsPerGroup, outs, [&](Value hl, ValueRange hArgs) {
    Value h = in.iadd(h0, hl);
    return in.loop(zero, lengthValue, hArgs, [&](Value i, ValueRange a) {
      Value first = zero;
      if (window)
        first = in.imax(zero, in.isub(in.iadd(i, one), in.idx(*window)));
      Value end = in.iadd(i, one);
      Value prob0 = tensor::EmptyOp::create(rewriter, loc, rowType,
                                            ValueRange{lengthValue});
      // Scores and their maximum.
      SmallVector<Value> r =
          in.loop(first, end, {prob0, in.minusInf()},
                  [&](Value j, ValueRange x) -> SmallVector<Value> {
                    Value dot = headAxis.sum(zero, dimIdx, [&](Value d) {
                      return in.mul(headAxis.at(q, {b, i, h, d}),
                                    headAxis.at(k, {b, j, g, d}));
                    });
                    Value score = in.mul(in.f(scale), dot);
                    // As the forward: a score above the running maximum
                    // replaces it (one ordered compare, no NaN test).
                    Value above = arith::CmpFOp::create(
                        rewriter, loc, arith::CmpFPredicate::OGT, score, x[1]);
                    return {in.put(score, x[0], {j}),
                            arith::SelectOp::create(rewriter, loc, above, score,
                                                    x[1])};
                  });
      Value top = r[1];
      r = in.loop(first, end, {r[0], in.f(0.0)},
                  [&](Value j, ValueRange x) -> SmallVector<Value> {
                    Value e = in.exp(in.sub(in.at(x[0], {j}), top));
                    return {in.put(e, x[0], {j}), in.add(x[1], e)};
                  });
      Value total = r[1];
      // p, dP = dy · v_j, dv += p dy, mean = Σ p dP.
      Value dprob0 = tensor::EmptyOp::create(rewriter, loc, rowType,
                                             ValueRange{lengthValue});
      r = in.loop(first, end, {r[0], dprob0, a[2], in.f(0.0)},
                  [&](Value j, ValueRange x) -> SmallVector<Value> {
                    Value p = in.div(in.at(x[0], {j}), total);
                    Value ps = valueAxis.splat(p);
                    SmallVector<Value> e = valueAxis.loop(
                        zero, valueIdx, {x[2], valueAxis.zero()},
                        [&](Value c, ValueRange y) -> SmallVector<Value> {
                          Value d = valueAxis.at(dy, {b, i, h, c});
                          return {
                              valueAxis.acc(in.mul(ps, d), y[0],
                                            {zero, j, zero, c}),
                              in.add(y[1],
                                     in.mul(d, valueAxis.at(v, {b, j, g, c})))};
                        });
                    Value dp = valueAxis.total(e[1]);
                    return {in.put(p, x[0], {j}), in.put(dp, x[1], {j}), e[0],
                            in.add(x[3], in.mul(p, dp))};
                  });
      Value prob = r[0], dprob = r[1], mean = r[3];
      SmallVector<Value> res = {a[0], a[1], r[2]};
      r = in.loop(
          first, end, {a[0], a[1]},
          [&](Value j, ValueRange x) -> SmallVector<Value> {
            Value ds =
                in.mul(in.f(scale), in.mul(in.at(prob, {j}),
                                           in.sub(in.at(dprob, {j}), mean)));
            Value dss = headAxis.splat(ds);
            return headAxis.loop(
                zero, dimIdx, {x[0], x[1]},
                [&](Value d, ValueRange y) -> SmallVector<Value> {
                  return {
                      headAxis.acc(in.mul(dss, headAxis.at(k, {b, j, g, d})),
                                   y[0], {zero, i, hl, d}),
                      headAxis.acc(in.mul(dss, headAxis.at(q, {b, i, h, d})),
                                   y[1], {zero, j, zero, d})};
                });
          });
      res[0] = r[0];
      res[1] = r[1];
      return res;
    });
  });
  for (int i = 0; i < 3; ++i)
    publish(rewriter, loc, forall.getTerminator(), outs[i],
            forall.getRegionIterArgs()[i], offsets[i], sizes[i]);
  rewriter.setInsertionPoint(op);
  rewriter.replaceOp(op, forall.getResults());
  return success();
}

namespace {
struct LowerGradientsPass
    : public glint::impl::GlintLowerGradientsBase<LowerGradientsPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<RecurrenceGradOp, AttentionGradOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    bool failed = false;
    for (Operation *op : ops) {
      if (auto r = dyn_cast<RecurrenceGradOp>(op))
        failed |= mlir::failed(
            RecurrenceGradLowering(r, rewriter, chunkSize, vectorWidth)
                .lower());
      else
        failed |= mlir::failed(lowerAttentionGrad(cast<AttentionGradOp>(op),
                                                  rewriter, vectorWidth));
    }
    if (failed)
      signalPassFailure();
  }
};
} // namespace
