//===- LowerRecurrence.cpp - glint-lower-recurrence -----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Lowers `glint.recurrence` to loops on tensors. The result computes exactly
// what the reference evaluator's `evalRecurrence` computes, in the same order
// of floating-point operations, so that the two agree to rounding: the
// evaluator is this pass's oracle (test/unit/LowerRecurrenceTest.cpp).
//
// Loop structure, for v : [B, L, H, V], key size K, key groups G and a state
// tile of K x V' per head (V' = V, or V + 2 with `normalize`):
//
//   %out0 = tensor.empty(B, L)          : [B, L, H, V]
//   %fin0 = tensor.empty(B)             : [B, H, K, V']   (with final_state)
//   scf.forall (%b, %h) in (B, H) shared_outs(%out = %out0, %fin = %fin0) {
//     %g = %h / (H / G)                   -- key group (folded if G = H, 1)
//     per-head invariants: log_decay[h] (and its exp when the decay is
//       time-invariant and there is no delta), bonus[h], skip[h]
//     %S0 = initial_state[b, h] | zeros (normalize: running max = -inf)
//     %rows0 = tensor.extract_slice %out[%b, 0, %h, 0] [1, L, 1, V] : [L, V]
//     %S, %rows = scf.for %s = 0 to L iter_args(%S = %S0, %rows = %rows0) {
//       %t = reverse ? L - 1 - %s : %s
//       k_t, q_t, v_t (and a per-key decay row) by tensor.extract_slice,
//       delta_t and a per-head decay by tensor.extract
//       %o = tensor.extract_slice %rows[%t, 0] [1, V]  -- written in place
//       one step (below) -> %S', %o'
//       scf.yield %S', tensor.insert_slice %o' into %rows[%t, 0]
//     }
//     scf.forall.in_parallel {
//       tensor.parallel_insert_slice %rows into %out[%b, 0, %h, 0]
//       tensor.parallel_insert_slice %S into %fin[%b, %h, 0, 0]
//     }
//   }
//
// One step of the linear form, as small linalg.generic ops on the K x V tile
// (each in the evaluator's order of operations, so that both agree exactly):
//   kv = k_t * delta_t;  a = exp(g_t * delta_t)   ([K], or a scalar per head)
//   bonus:    o = (sum_k q u kv) v_t + S^T q       (S = S_{t-1}, read first)
//   update:   S' = a (.) S + kv v_t^T
//   no bonus: o = S'^T q                          (q = ones when absent)
//   skip:     o = o + skip[h] v_t
// The normalised (RWKV-4, K = 1) step reads the numerator row, denominator
// and running max out of the [1, V + 2] tile and updates them with scalar
// max-stabilised exponentials.
//
// The (batch, head) body is self-contained: it reads only the op's operands
// and writes only its own slices, so the fused scan kernel can replace it
// wholesale. Everything bufferizes in place with one-shot bufferization
// except the initial-state tile (copied: the input is read-only), the
// per-step kv / decay rows (small temporaries) and the final-state slice.
// To vectorise: carry the state as vector<K x V> (iter_arg of vector type,
// kept in registers across the time loop), read k_t / q_t / v_t with
// vector.transfer_read, replace the generics by vector arithmetic
// (a broadcast along V for the decay and kv, vector.outerproduct or FMAs for
// kv v_t^T, vector.multi_reduction over K for the read-out), and lower
// math.exp with the polynomial approximation. Tiling the forall's head axis
// by the vector width (16 Mamba-1 channels per vector, V = 1) is what
// glint-vectorize-recurrence does.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/conversions/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "glint-lower-recurrence"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTLOWERRECURRENCE
#include "passes/conversions/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;

namespace {

/// Builds the loops of one `glint.recurrence`. Holds what every part of the
/// body needs: the op, the builder, the static tile sizes and the dynamic
/// extents.
class RecurrenceLowering {
public:
  RecurrenceLowering(RecurrenceOp op, RewriterBase &rewriter, int64_t timeChunk)
      : op(op), rewriter(rewriter), loc(op.getLoc()), timeChunk(timeChunk),
        elementType(cast<FloatType>(
            cast<RankedTensorType>(op.getOutput().getType()).getElementType())),
        key(op.getKeySize()), value(op.getValueSize()),
        stateValue(op.getNormalize() ? value + 2 : value) {}

  /// Replaces the op by its loops, or reports why it cannot.
  LogicalResult lower();

private:
  /// What one time step produces.
  struct Step {
    Value state;  // tensor<K x V'>
    Value output; // tensor<V>, null without an output row
    /// The step's decay (linear form): a [K] vector or a scalar.
    Value decayVector, decayScalar;
  };

  /// The body of the forall: one (batch, head) pair, start to end of the
  /// sequence.
  void buildHeadBody(OpBuilder &b, Value batchIv, Value headIv,
                     ValueRange shared);
  /// The key group of the head, and the per-head invariants hoisted out of
  /// the time loop (set as members).
  Value prepareHead(OpBuilder &b, Value headIv, Value zero);
  /// The head's state before its first step: its slice of initial_state, or
  /// zeros (RWKV-4's running max -inf).
  Value startState(OpBuilder &b, Value batchIv, Value headIv, Value zero);
  /// The time loop over steps s = `first` .. `end` - 1 (time t = s, or
  /// `last` - s in reverse, `last` = L - 1) from `state`. With `rows`
  /// ([n, V], the output rows of times `rowsStart` ...), each step writes
  /// its output row; with `product` ([K]), each multiplies its decay into
  /// it. Returns the loop's results: the state, then the rows and the
  /// product where given.
  ValueRange buildSteps(OpBuilder &b, Value batchIv, Value headIv,
                        Value groupIv, Value first, Value end, Value one,
                        Value last, Value state, Value rows, Value rowsStart,
                        Value product);
  /// The time-chunked form (below lower()); returns the op's results.
  SmallVector<Value> buildChunked(OpBuilder &b);
  /// One step of the linear form at time `t`; the output row is written
  /// into `outputRow` (the row's slice of the head's output), unless it is
  /// null (a step that only advances the state).
  Step buildLinearStep(OpBuilder &b, Value batchIv, Value headIv, Value groupIv,
                       Value t, Value state, Value outputRow);
  /// One step of RWKV-4's ratio form at time `t`.
  Step buildNormalizedStep(OpBuilder &b, Value batchIv, Value headIv,
                           Value groupIv, Value t, Value state,
                           Value outputRow);
  /// Adds `skip[h] * v_t` to the output row, in place.
  Value addSkip(OpBuilder &b, Value output, Value valueRow);

  //===--------------------------------------------------------------------===//
  // Small builders
  //===--------------------------------------------------------------------===//

  Value index(OpBuilder &b, int64_t i) {
    return arith::ConstantIndexOp::create(b, loc, i);
  }
  Value constantFloat(OpBuilder &b, double x) {
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(elementType, x));
  }
  Value add(OpBuilder &b, Value x, Value y) {
    return arith::AddFOp::create(b, loc, x, y);
  }
  Value sub(OpBuilder &b, Value x, Value y) {
    return arith::SubFOp::create(b, loc, x, y);
  }
  Value mul(OpBuilder &b, Value x, Value y) {
    return arith::MulFOp::create(b, loc, x, y);
  }
  Value exp(OpBuilder &b, Value x) { return math::ExpOp::create(b, loc, x); }

  /// The 1-D row `source[prefix..., 0 : size]` of a tensor whose last axis
  /// has `size` elements, as a tensor<size>.
  Value row(OpBuilder &b, Value source, ArrayRef<Value> prefix, int64_t size);
  /// The scalar `source[indices...]`.
  Value element(OpBuilder &b, Value source, ArrayRef<Value> indices) {
    return tensor::ExtractOp::create(b, loc, source, indices);
  }
  /// A tensor of `shape` filled with `x`.
  Value filled(OpBuilder &b, ArrayRef<int64_t> shape, Value x);

  /// An element-wise linalg.generic over [size] into a new tensor: `body`
  /// receives the scalar element of each input and returns the output
  /// element.
  Value map(OpBuilder &b, ValueRange inputs, int64_t size,
            function_ref<Value(OpBuilder &, ValueRange)> body);
  /// The same into the 1-D tensor `init`, whose element `body` receives
  /// after the inputs'.
  Value mapInto(OpBuilder &b, ValueRange inputs, Value init,
                function_ref<Value(OpBuilder &, ValueRange)> body);
  /// A linalg.generic with one output `init`; `body` receives the scalar
  /// elements of the inputs and of the output.
  Value generic(OpBuilder &b, ValueRange inputs, Value init,
                ArrayRef<AffineMap> maps,
                ArrayRef<utils::IteratorType> iterators,
                function_ref<Value(OpBuilder &, ValueRange)> body);

  /// `o[j] = init[j] + sum_k q[k] S[k, j]`, with q = ones when `query` is
  /// null, summed in increasing k.
  Value readOut(OpBuilder &b, Value state, Value query, Value init);

  RecurrenceOp op;
  RewriterBase &rewriter;
  Location loc;
  /// Steps per chunk of the time-chunked form; 0: one sequential scan.
  int64_t timeChunk;
  FloatType elementType;
  int64_t key, value, stateValue;

  /// Extents, set by lower(): [B, L, H] of `v`, G of `k`.
  OpFoldResult batch, length, heads, groups;
  /// Per-head invariants, set by buildHeadBody() (null when absent).
  Value decayRow, decayScalar, expDecayRow, expDecayScalar, bonusRow,
      bonusScalar, skipScalar;
};

} // namespace

Value RecurrenceLowering::row(OpBuilder &b, Value source,
                              ArrayRef<Value> prefix, int64_t size) {
  auto type = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> offsets(prefix.begin(), prefix.end());
  offsets.push_back(b.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes(prefix.size(), b.getIndexAttr(1));
  sizes.push_back(b.getIndexAttr(size));
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  auto rowType = RankedTensorType::get({size}, type.getElementType());
  return tensor::ExtractSliceOp::create(b, loc, rowType, source, offsets, sizes,
                                        strides);
}

Value RecurrenceLowering::filled(OpBuilder &b, ArrayRef<int64_t> shape,
                                 Value x) {
  Value empty = tensor::EmptyOp::create(b, loc, shape, elementType);
  return linalg::FillOp::create(b, loc, ValueRange{x}, ValueRange{empty})
      .getResult(0);
}

Value RecurrenceLowering::generic(
    OpBuilder &b, ValueRange inputs, Value init, ArrayRef<AffineMap> maps,
    ArrayRef<utils::IteratorType> iterators,
    function_ref<Value(OpBuilder &, ValueRange)> body) {
  auto op = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
      iterators, [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        linalg::YieldOp::create(nested, nestedLoc, body(nested, args));
      });
  return op.getResult(0);
}

Value RecurrenceLowering::mapInto(
    OpBuilder &b, ValueRange inputs, Value init,
    function_ref<Value(OpBuilder &, ValueRange)> body) {
  SmallVector<AffineMap> maps(inputs.size() + 1,
                              b.getMultiDimIdentityMap(/*rank=*/1));
  return generic(b, inputs, init, maps, {utils::IteratorType::parallel}, body);
}

Value RecurrenceLowering::map(
    OpBuilder &b, ValueRange inputs, int64_t size,
    function_ref<Value(OpBuilder &, ValueRange)> body) {
  Value init =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{size}, elementType);
  return mapInto(b, inputs, init, [&](OpBuilder &nested, ValueRange args) {
    return body(nested, args.drop_back());
  });
}

Value RecurrenceLowering::addSkip(OpBuilder &b, Value output, Value valueRow) {
  return mapInto(b, valueRow, output, [&](OpBuilder &nested, ValueRange args) {
    Value skipped = mul(nested, skipScalar, args[0]);
    return add(nested, args[1], skipped);
  });
}

Value RecurrenceLowering::readOut(OpBuilder &b, Value state, Value query,
                                  Value init) {
  // Iteration (j, k): j over values (parallel), k over keys (reduction), k
  // innermost so that each sum runs in the evaluator's order.
  MLIRContext *ctx = b.getContext();
  AffineExpr j = getAffineDimExpr(0, ctx), k = getAffineDimExpr(1, ctx);
  SmallVector<AffineMap> maps;
  SmallVector<Value> inputs;
  if (query) {
    inputs.push_back(query);
    maps.push_back(AffineMap::get(2, 0, {k}, ctx));
  }
  inputs.push_back(state);
  maps.push_back(AffineMap::get(2, 0, {k, j}, ctx));
  maps.push_back(AffineMap::get(2, 0, {j}, ctx));
  return generic(
      b, inputs, init, maps,
      {utils::IteratorType::parallel, utils::IteratorType::reduction},
      [&](OpBuilder &nested, ValueRange args) {
        Value term = query ? mul(nested, args[0], args[1]) : args[0];
        return add(nested, args.back(), term);
      });
}

RecurrenceLowering::Step
RecurrenceLowering::buildLinearStep(OpBuilder &b, Value batchIv, Value headIv,
                                    Value groupIv, Value t, Value state,
                                    Value outputRow) {
  MLIRContext *ctx = b.getContext();
  Value delta =
      op.getDelta() ? element(b, op.getDelta(), {batchIv, t, headIv}) : Value();
  Value keyRow = row(b, op.getK(), {batchIv, t, groupIv}, key);
  Value query =
      op.getQ() ? row(b, op.getQ(), {batchIv, t, groupIv}, key) : Value();
  Value valueRow = row(b, op.getV(), {batchIv, t, headIv}, value);
  // The GPU's form sums the read-out in a private row (registers) rather
  // than in the output's memory, which the sum would otherwise load and
  // store once per key; the caller copies it into place.
  if (outputRow && timeChunk > 0)
    outputRow =
        tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{value}, elementType);

  // Euler input term: kv = k_t * delta_t.
  Value kv = keyRow;
  if (delta)
    kv = map(b, keyRow, key, [&](OpBuilder &nested, ValueRange args) {
      return mul(nested, args[0], delta);
    });

  // Decay a = exp(g_t * delta_t), per key ([K]) or per head (scalar), unless
  // it was hoisted out of the time loop.
  Value decayVector = expDecayRow, decayScalarValue = expDecayScalar;
  switch (op.getDecayForm()) {
  case RecurrenceOp::DecayForm::PerKey:
  case RecurrenceOp::DecayForm::StaticPerKey: {
    if (decayVector)
      break;
    Value logRow = op.getDecayForm() == RecurrenceOp::DecayForm::PerKey
                       ? row(b, op.getLogDecay(), {batchIv, t, headIv}, key)
                       : decayRow;
    decayVector = map(b, logRow, key, [&](OpBuilder &nested, ValueRange args) {
      Value g = delta ? mul(nested, args[0], delta) : args[0];
      return exp(nested, g);
    });
    break;
  }
  case RecurrenceOp::DecayForm::PerHead:
  case RecurrenceOp::DecayForm::StaticPerHead: {
    if (decayScalarValue)
      break;
    Value g = op.getDecayForm() == RecurrenceOp::DecayForm::PerHead
                  ? element(b, op.getLogDecay(), {batchIv, t, headIv})
                  : decayScalar;
    if (delta)
      g = mul(b, g, delta);
    decayScalarValue = exp(b, g);
    break;
  }
  }

  // The bonus reads S_{t-1}: the output is formed before the update, from
  // an init of (sum_k q u kv) v_t.
  Value output;
  if (op.getBonus() && outputRow) {
    Value diagInit = filled(b, {}, constantFloat(b, 0.0));
    AffineExpr k = getAffineDimExpr(0, ctx);
    AffineMap perKey = AffineMap::get(1, 0, {k}, ctx);
    AffineMap scalar = AffineMap::get(1, 0, {}, ctx);
    SmallVector<Value> inputs;
    SmallVector<AffineMap> maps;
    if (query) {
      inputs.push_back(query);
      maps.push_back(perKey);
    }
    inputs.append({bonusRow, kv});
    maps.append({perKey, perKey, scalar});
    Value diagTensor = generic(
        b, inputs, diagInit, maps, {utils::IteratorType::reduction},
        [&](OpBuilder &nested, ValueRange args) {
          unsigned n = args.size();
          Value weighted =
              query ? mul(nested, args[0], args[n - 3]) : args[n - 3];
          return add(nested, args[n - 1], mul(nested, weighted, args[n - 2]));
        });
    Value diag = element(b, diagTensor, {});
    Value init = mapInto(b, valueRow, outputRow,
                         [&](OpBuilder &nested, ValueRange args) {
                           return mul(nested, diag, args[0]);
                         });
    output = readOut(b, state, query, init);
  }

  // S' = a (.) S + kv v_t^T on the (k, j) tile.
  {
    AffineExpr k = getAffineDimExpr(0, ctx), j = getAffineDimExpr(1, ctx);
    AffineMap perKey = AffineMap::get(2, 0, {k}, ctx);
    SmallVector<Value> inputs;
    SmallVector<AffineMap> maps;
    if (decayVector) {
      inputs.push_back(decayVector);
      maps.push_back(perKey);
    }
    inputs.append({kv, valueRow});
    maps.append(
        {perKey, AffineMap::get(2, 0, {j}, ctx), b.getMultiDimIdentityMap(2)});
    state =
        generic(b, inputs, state, maps,
                {utils::IteratorType::parallel, utils::IteratorType::parallel},
                [&](OpBuilder &nested, ValueRange args) {
                  unsigned n = args.size();
                  Value a = decayVector ? args[0] : decayScalarValue;
                  Value decayed = mul(nested, a, args[n - 1]);
                  Value input = mul(nested, args[n - 3], args[n - 2]);
                  return add(nested, decayed, input);
                });
  }

  if (!op.getBonus() && outputRow) {
    Value zeros =
        linalg::FillOp::create(b, loc, ValueRange{constantFloat(b, 0.0)},
                               ValueRange{outputRow})
            .getResult(0);
    output = readOut(b, state, query, zeros);
  }
  if (skipScalar && outputRow)
    output = addSkip(b, output, valueRow);
  return {state, output, decayVector, decayScalarValue};
}

RecurrenceLowering::Step
RecurrenceLowering::buildNormalizedStep(OpBuilder &b, Value batchIv,
                                        Value headIv, Value groupIv, Value t,
                                        Value state, Value outputRow) {
  // K = 1: the tile is [1, V + 2] = [numerator (V), denominator, max].
  Value zero = index(b, 0), denIndex = index(b, value),
        maxIndex = index(b, value + 1);
  Value kt = element(b, op.getK(), {batchIv, t, groupIv, zero});
  Value valueRow = row(b, op.getV(), {batchIv, t, headIv}, value);
  Value num = row(b, state, {zero}, value);
  Value den = element(b, state, {zero, denIndex});
  Value runningMax = element(b, state, {zero, maxIndex});

  Value output;
  if (op.getBonus()) {
    // The current token with weight e^{u + k_t}, against the state.
    Value ww = add(b, bonusScalar, kt);
    Value p = arith::MaximumFOp::create(b, loc, runningMax, ww);
    Value e1 = exp(b, sub(b, runningMax, p)), e2 = exp(b, sub(b, ww, p));
    Value denominator = add(b, mul(b, e1, den), e2);
    output = mapInto(
        b, {num, valueRow}, outputRow, [&](OpBuilder &nested, ValueRange args) {
          Value past = mul(nested, e1, args[0]);
          Value current = mul(nested, e2, args[1]);
          return arith::DivFOp::create(nested, loc, add(nested, past, current),
                                       denominator)
              .getResult();
        });
  }

  Value w;
  switch (op.getDecayForm()) {
  case RecurrenceOp::DecayForm::PerKey:
    w = element(b, op.getLogDecay(), {batchIv, t, headIv, zero});
    break;
  case RecurrenceOp::DecayForm::PerHead:
    w = element(b, op.getLogDecay(), {batchIv, t, headIv});
    break;
  case RecurrenceOp::DecayForm::StaticPerKey:
  case RecurrenceOp::DecayForm::StaticPerHead:
    w = decayScalar;
    break;
  }
  Value wd = add(b, w, runningMax);
  Value p = arith::MaximumFOp::create(b, loc, wd, kt);
  Value e1 = exp(b, sub(b, wd, p)), e2 = exp(b, sub(b, kt, p));
  Value newNum =
      map(b, {num, valueRow}, value, [&](OpBuilder &nested, ValueRange args) {
        Value past = mul(nested, e1, args[0]);
        Value current = mul(nested, e2, args[1]);
        return add(nested, past, current);
      });
  Value newDen = add(b, mul(b, e1, den), e2);
  if (!op.getBonus())
    output =
        mapInto(b, newNum, outputRow, [&](OpBuilder &nested, ValueRange args) {
          return arith::DivFOp::create(nested, loc, args[0], newDen)
              .getResult();
        });

  SmallVector<OpFoldResult> offsets = {b.getIndexAttr(0), b.getIndexAttr(0)};
  SmallVector<OpFoldResult> sizes = {b.getIndexAttr(1), b.getIndexAttr(value)};
  SmallVector<OpFoldResult> strides = {b.getIndexAttr(1), b.getIndexAttr(1)};
  state = tensor::InsertSliceOp::create(b, loc, newNum, state, offsets, sizes,
                                        strides);
  state = tensor::InsertOp::create(b, loc, newDen, state,
                                   ValueRange{zero, denIndex});
  state =
      tensor::InsertOp::create(b, loc, p, state, ValueRange{zero, maxIndex});

  if (skipScalar)
    output = addSkip(b, output, valueRow);
  return {state, output};
}

void RecurrenceLowering::buildHeadBody(OpBuilder &b, Value batchIv,
                                       Value headIv, ValueRange shared) {
  Value zero = index(b, 0), one = index(b, 1);
  Value groupIv = prepareHead(b, headIv, zero);
  Value initialState = startState(b, batchIv, headIv, zero);

  // The head's output rows [L, V], written one step at a time. They start
  // as the head's slice of the shared output, so that bufferization writes
  // the rows in place.
  SmallVector<OpFoldResult> outputOffsets = {batchIv, b.getIndexAttr(0), headIv,
                                             b.getIndexAttr(0)};
  SmallVector<OpFoldResult> outputSizes = {
      b.getIndexAttr(1), length, b.getIndexAttr(1), b.getIndexAttr(value)};
  SmallVector<OpFoldResult> unitStrides(4, b.getIndexAttr(1));
  auto rowsType = RankedTensorType::get(
      {getConstantIntValue(length).value_or(ShapedType::kDynamic), value},
      elementType);
  Value rows = tensor::ExtractSliceOp::create(
      b, loc, rowsType, shared[0], outputOffsets, outputSizes, unitStrides);
  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  Value last = op.getReverse() ? arith::SubIOp::create(b, loc, lengthValue, one)
                               : Value();
  ValueRange scanned =
      buildSteps(b, batchIv, headIv, groupIv, zero, lengthValue, one, last,
                 initialState, rows, /*rowsStart=*/Value(), Value());

  // Publish the head's rows (and final state) into the shared outputs.
  auto inParallel = scf::InParallelOp::create(b, loc);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(inParallel.getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, scanned[1], shared[0], outputOffsets, outputSizes, unitStrides);
  if (shared.size() > 1)
    tensor::ParallelInsertSliceOp::create(
        b, loc, scanned[0], shared[1],
        ArrayRef<OpFoldResult>{batchIv, headIv, b.getIndexAttr(0),
                               b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1),
                               b.getIndexAttr(key), b.getIndexAttr(stateValue)},
        unitStrides);
}

Value RecurrenceLowering::prepareHead(OpBuilder &b, Value headIv, Value zero) {
  // Key group of the head: h / (H / G), folded when G is H or 1.
  Value groupIv;
  std::optional<int64_t> staticHeads = getConstantIntValue(heads),
                         staticGroups = getConstantIntValue(groups);
  if (staticHeads && staticGroups && *staticHeads == *staticGroups) {
    groupIv = headIv;
  } else if (staticGroups && *staticGroups == 1) {
    groupIv = zero;
  } else if (staticHeads && staticGroups) {
    groupIv = arith::DivSIOp::create(b, loc, headIv,
                                     index(b, *staticHeads / *staticGroups));
  } else {
    Value ratio = arith::DivSIOp::create(
        b, loc, getValueOrCreateConstantIndexOp(b, loc, heads),
        getValueOrCreateConstantIndexOp(b, loc, groups));
    groupIv = arith::DivSIOp::create(b, loc, headIv, ratio);
  }

  // Per-head invariants, hoisted out of the time loop. A time-invariant
  // decay without delta is exponentiated once.
  decayRow = decayScalar = expDecayRow = expDecayScalar = Value();
  bonusRow = bonusScalar = skipScalar = Value();
  bool normalize = op.getNormalize();
  switch (op.getDecayForm()) {
  case RecurrenceOp::DecayForm::StaticPerKey:
    if (normalize) {
      decayScalar = element(b, op.getLogDecay(), {headIv, zero});
      break;
    }
    decayRow = row(b, op.getLogDecay(), {headIv}, key);
    if (!op.getDelta())
      expDecayRow =
          map(b, decayRow, key, [&](OpBuilder &nested, ValueRange args) {
            return exp(nested, args[0]);
          });
    break;
  case RecurrenceOp::DecayForm::StaticPerHead:
    decayScalar = element(b, op.getLogDecay(), {headIv});
    if (!normalize && !op.getDelta())
      expDecayScalar = exp(b, decayScalar);
    break;
  default:
    break;
  }
  if (op.getBonus()) {
    if (normalize)
      bonusScalar = element(b, op.getBonus(), {headIv, zero});
    else
      bonusRow = row(b, op.getBonus(), {headIv}, key);
  }
  if (op.getSkip())
    skipScalar = element(b, op.getSkip(), {headIv});

  return groupIv;
}

Value RecurrenceLowering::startState(OpBuilder &b, Value batchIv, Value headIv,
                                     Value zero) {
  bool normalize = op.getNormalize();
  // The state tile: the head's initial state, or zeros (RWKV-4's running
  // max starts at -inf, so the first token's weight is exactly e^0).
  SmallVector<OpFoldResult> stateOffsets = {batchIv, headIv, b.getIndexAttr(0),
                                            b.getIndexAttr(0)};
  SmallVector<OpFoldResult> stateSizes = {b.getIndexAttr(1), b.getIndexAttr(1),
                                          b.getIndexAttr(key),
                                          b.getIndexAttr(stateValue)};
  Value initialState;
  if (Value init = op.getInitialState()) {
    initialState = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({key, stateValue}, elementType), init,
        stateOffsets, stateSizes,
        SmallVector<OpFoldResult>(4, b.getIndexAttr(1)));
  } else {
    initialState = filled(b, {key, stateValue}, constantFloat(b, 0.0));
    if (normalize) {
      Value minusInf = arith::ConstantOp::create(
          b, loc,
          b.getFloatAttr(elementType,
                         APFloat::getInf(elementType.getFloatSemantics(),
                                         /*Negative=*/true)));
      initialState =
          tensor::InsertOp::create(b, loc, minusInf, initialState,
                                   ValueRange{zero, index(b, value + 1)});
    }
  }
  return initialState;
}

ValueRange RecurrenceLowering::buildSteps(OpBuilder &b, Value batchIv,
                                          Value headIv, Value groupIv,
                                          Value first, Value end, Value one,
                                          Value last, Value state, Value rows,
                                          Value rowsStart, Value product) {
  SmallVector<Value> carried = {state};
  if (rows)
    carried.push_back(rows);
  if (product)
    carried.push_back(product);
  bool normalize = op.getNormalize();
  auto timeLoop = scf::ForOp::create(
      b, loc, first, end, one, carried,
      [&](OpBuilder &nested, Location, Value step, ValueRange carried) {
        Value t = op.getReverse()
                      ? arith::SubIOp::create(nested, loc, last, step)
                      : step;
        SmallVector<Value> yielded;
        Value outputRow;
        SmallVector<OpFoldResult> offsets, sizes, strides;
        if (rows) {
          Value r =
              rowsStart ? arith::SubIOp::create(nested, loc, t, rowsStart) : t;
          offsets = {r, nested.getIndexAttr(0)};
          sizes = {nested.getIndexAttr(1), nested.getIndexAttr(value)};
          strides.assign(2, nested.getIndexAttr(1));
          outputRow = tensor::ExtractSliceOp::create(
              nested, loc, RankedTensorType::get({value}, elementType),
              carried[1], offsets, sizes, strides);
        }
        Step result =
            normalize ? buildNormalizedStep(nested, batchIv, headIv, groupIv, t,
                                            carried[0], outputRow)
                      : buildLinearStep(nested, batchIv, headIv, groupIv, t,
                                        carried[0], outputRow);
        yielded.push_back(result.state);
        if (rows)
          yielded.push_back(tensor::InsertSliceOp::create(
              nested, loc, result.output, carried[1], offsets, sizes, strides));
        if (product) {
          // P <- a (.) P, in place: the chunk's total decay, step by step.
          Value a = result.decayVector;
          yielded.push_back(
              mapInto(nested, a ? ValueRange{a} : ValueRange{}, carried.back(),
                      [&](OpBuilder &inner, ValueRange args) {
                        return mul(inner, a ? args[0] : result.decayScalar,
                                   args.back());
                      }));
        }
        scf::YieldOp::create(nested, loc, yielded);
      });
  return timeLoop.getResults();
}

/// An empty tensor of `type` whose dynamic dims take their sizes from
/// `sizes` (one per dim of `type`).
static Value emptyOfType(OpBuilder &b, Location loc, RankedTensorType type,
                         ArrayRef<OpFoldResult> sizes) {
  SmallVector<Value> dynamicSizes;
  for (auto [dim, size] : llvm::enumerate(type.getShape()))
    if (ShapedType::isDynamic(size))
      dynamicSizes.push_back(
          getValueOrCreateConstantIndexOp(b, loc, sizes[dim]));
  return tensor::EmptyOp::create(b, loc, type, dynamicSizes);
}

/// The slice [offsets, offsets + sizes) of `source`, dropping the unit
/// dimensions that `type` (the slice's type) does not have.
static Value slice(OpBuilder &b, Location loc, RankedTensorType type,
                   Value source, ArrayRef<OpFoldResult> offsets,
                   ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> strides(offsets.size(), b.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(b, loc, type, source, offsets, sizes,
                                        strides);
}

SmallVector<Value> RecurrenceLowering::buildChunked(OpBuilder &b) {
  // Chunks of T steps (the last one shorter): s in [c T, min(c T + T, L)).
  Value zero = index(b, 0), one = index(b, 1), chunkSize = index(b, timeChunk);
  Value lengthValue = getValueOrCreateConstantIndexOp(b, loc, length);
  Value last = op.getReverse() ? arith::SubIOp::create(b, loc, lengthValue, one)
                               : Value();
  OpFoldResult chunks;
  if (std::optional<int64_t> l = getConstantIntValue(length))
    chunks = b.getIndexAttr(llvm::divideCeil(*l, timeChunk));
  else
    chunks =
        arith::CeilDivSIOp::create(b, loc, lengthValue, chunkSize).getResult();
  auto chunkSteps = [&](OpBuilder &nested, Value c) {
    Value first = arith::MulIOp::create(nested, loc, c, chunkSize);
    Value next = arith::AddIOp::create(nested, loc, first, chunkSize);
    Value end = arith::MinSIOp::create(nested, loc, next, lengthValue);
    return std::make_pair(first, end);
  };
  OpFoldResult keys = b.getIndexAttr(key), values = b.getIndexAttr(value),
               unit = b.getIndexAttr(1), origin = b.getIndexAttr(0);
  auto tileType = RankedTensorType::get({key, value}, elementType);
  auto staticOr = [](OpFoldResult size) {
    return getConstantIntValue(size).value_or(ShapedType::kDynamic);
  };

  // 1. Per (batch, chunk, head): the chunk's own contribution to the state
  //    (its scan from zeros) and its total decay, the product of its steps'.
  auto localType = RankedTensorType::get(
      {staticOr(batch), staticOr(chunks), staticOr(heads), key, value},
      elementType);
  auto productType = RankedTensorType::get(
      {staticOr(batch), staticOr(chunks), staticOr(heads), key}, elementType);
  SmallVector<Value> phase1Outputs = {
      emptyOfType(b, loc, localType, {batch, chunks, heads, keys, values}),
      emptyOfType(b, loc, productType, {batch, chunks, heads, keys})};
  auto phase1 = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{batch, chunks, heads}, phase1Outputs,
      /*mapping=*/std::nullopt,
      [&](OpBuilder &nested, Location, ValueRange args) {
        Value batchIv = args[0], chunkIv = args[1], headIv = args[2];
        Value groupIv = prepareHead(nested, headIv, zero);
        auto [first, end] = chunkSteps(nested, chunkIv);
        Value state = filled(nested, {key, value}, constantFloat(nested, 0.0));
        Value product = filled(nested, {key}, constantFloat(nested, 1.0));
        ValueRange scanned =
            buildSteps(nested, batchIv, headIv, groupIv, first, end, one, last,
                       state, /*rows=*/Value(), Value(), product);
        auto inParallel = scf::InParallelOp::create(nested, loc);
        OpBuilder::InsertionGuard guard(nested);
        nested.setInsertionPointToStart(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(
            nested, loc, scanned[0], args[3],
            ArrayRef<OpFoldResult>{batchIv, chunkIv, headIv, origin, origin},
            ArrayRef<OpFoldResult>{unit, unit, unit, keys, values},
            SmallVector<OpFoldResult>(5, unit));
        tensor::ParallelInsertSliceOp::create(
            nested, loc, scanned[1], args[4],
            ArrayRef<OpFoldResult>{batchIv, chunkIv, headIv, origin},
            ArrayRef<OpFoldResult>{unit, unit, unit, keys},
            SmallVector<OpFoldResult>(4, unit));
      });
  Value contributions = phase1.getResult(0), products = phase1.getResult(1);

  // 2. Per (batch, head, key): the state's row k entering each chunk, from
  //    chunk to chunk (S_k <- P_c[k] S_k + contribution_c[k]), written in
  //    place of the chunk's contribution; the last one is the final state.
  //    Rows are independent: a thread each.
  SmallVector<Value> phase2Outputs = {contributions};
  if (Value finalState = op.getFinalState())
    phase2Outputs.push_back(
        emptyOfType(b, loc, cast<RankedTensorType>(finalState.getType()),
                    {batch, heads, keys, values}));
  auto valueRowType = RankedTensorType::get({value}, elementType);
  auto phase2 = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{batch, heads, keys}, phase2Outputs,
      /*mapping=*/std::nullopt,
      [&](OpBuilder &nested, Location, ValueRange args) {
        Value batchIv = args[0], headIv = args[1], keyIv = args[2];
        Value state;
        if (Value init = op.getInitialState())
          state = slice(nested, loc, valueRowType, init,
                        {batchIv, headIv, keyIv, origin},
                        {unit, unit, unit, values});
        else
          state = filled(nested, {value}, constantFloat(nested, 0.0));
        auto slabType =
            RankedTensorType::get({staticOr(chunks), value}, elementType);
        Value slab = slice(nested, loc, slabType, args[3],
                           {batchIv, origin, headIv, keyIv, origin},
                           {unit, chunks, unit, unit, values});
        SmallVector<AffineMap> maps(2, nested.getMultiDimIdentityMap(1));
        auto chunkLoop = scf::ForOp::create(
            nested, loc, zero,
            getValueOrCreateConstantIndexOp(nested, loc, chunks), one,
            ValueRange{state, slab},
            [&](OpBuilder &inner, Location, Value c, ValueRange carried) {
              Value product =
                  element(inner, products, {batchIv, c, headIv, keyIv});
              Value entry = slice(inner, loc, valueRowType, carried[1],
                                  {c, origin}, {unit, values});
              // Both in place: entry[j] <- S[j] while
              // S[j] <- P S[j] + entry[j].
              auto update = linalg::GenericOp::create(
                  inner, loc, TypeRange{valueRowType, valueRowType},
                  ValueRange{}, ValueRange{carried[0], entry}, maps,
                  {utils::IteratorType::parallel},
                  [&](OpBuilder &body, Location, ValueRange x) {
                    Value next = add(body, mul(body, product, x[0]), x[1]);
                    linalg::YieldOp::create(body, loc, ValueRange{next, x[0]});
                  });
              Value newSlab = tensor::InsertSliceOp::create(
                  inner, loc, update.getResult(1), carried[1],
                  ArrayRef<OpFoldResult>{c, origin},
                  ArrayRef<OpFoldResult>{unit, values},
                  SmallVector<OpFoldResult>(2, unit));
              scf::YieldOp::create(inner, loc,
                                   ValueRange{update.getResult(0), newSlab});
            });
        auto inParallel = scf::InParallelOp::create(nested, loc);
        OpBuilder::InsertionGuard guard(nested);
        nested.setInsertionPointToStart(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(
            nested, loc, chunkLoop.getResult(1), args[3],
            ArrayRef<OpFoldResult>{batchIv, origin, headIv, keyIv, origin},
            ArrayRef<OpFoldResult>{unit, chunks, unit, unit, values},
            SmallVector<OpFoldResult>(5, unit));
        if (args.size() > 4)
          tensor::ParallelInsertSliceOp::create(
              nested, loc, chunkLoop.getResult(0), args[4],
              ArrayRef<OpFoldResult>{batchIv, headIv, keyIv, origin},
              ArrayRef<OpFoldResult>{unit, unit, unit, values},
              SmallVector<OpFoldResult>(4, unit));
      });
  Value entering = phase2.getResult(0);

  // 3. Per (batch, chunk, head): the chunk's scan again, from the state
  //    entering it, writing its output rows.
  Value output0 =
      emptyOfType(b, loc, cast<RankedTensorType>(op.getOutput().getType()),
                  {batch, length, heads, values});
  auto phase3 = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{batch, chunks, heads}, ValueRange{output0},
      /*mapping=*/std::nullopt,
      [&](OpBuilder &nested, Location, ValueRange args) {
        Value batchIv = args[0], chunkIv = args[1], headIv = args[2];
        Value groupIv = prepareHead(nested, headIv, zero);
        auto [first, end] = chunkSteps(nested, chunkIv);
        Value steps = arith::SubIOp::create(nested, loc, end, first);
        // The chunk's times: [first, end), or [L - end, L - first) reversed.
        Value rowsStart =
            op.getReverse()
                ? arith::SubIOp::create(nested, loc, lengthValue, end)
                : first;
        Value state = slice(nested, loc, tileType, entering,
                            {batchIv, chunkIv, headIv, origin, origin},
                            {unit, unit, unit, keys, values});
        SmallVector<OpFoldResult> rowOffsets = {batchIv, rowsStart, headIv,
                                                origin};
        SmallVector<OpFoldResult> rowSizes = {unit, steps, unit, values};
        Value rows = slice(
            nested, loc,
            RankedTensorType::get({ShapedType::kDynamic, value}, elementType),
            args[3], rowOffsets, rowSizes);
        ValueRange scanned =
            buildSteps(nested, batchIv, headIv, groupIv, first, end, one, last,
                       state, rows, rowsStart, Value());
        auto inParallel = scf::InParallelOp::create(nested, loc);
        OpBuilder::InsertionGuard guard(nested);
        nested.setInsertionPointToStart(inParallel.getBody());
        tensor::ParallelInsertSliceOp::create(
            nested, loc, scanned[1], args[3], rowOffsets, rowSizes,
            SmallVector<OpFoldResult>(4, unit));
      });

  SmallVector<Value> results = {phase3.getResult(0)};
  if (op.getFinalState())
    results.push_back(phase2.getResult(1));
  return results;
}

LogicalResult RecurrenceLowering::lower() {
  // The state is a tile carried through the time loop, and later a vector
  // in registers: its shape must be known at compile time.
  if (ShapedType::isDynamic(key) || ShapedType::isDynamic(value))
    return op.emitError()
           << "cannot lower 'glint.recurrence' with a dynamic "
           << (ShapedType::isDynamic(key) ? "key" : "value")
           << " size: the per-head state must be a static K x V tile";

  rewriter.setInsertionPoint(op);
  Value v = op.getV();
  batch = tensor::getMixedSize(rewriter, loc, v, 0);
  length = tensor::getMixedSize(rewriter, loc, v, 1);
  heads = tensor::getMixedSize(rewriter, loc, v, 2);
  groups = tensor::getMixedSize(rewriter, loc, op.getK(), 2);

  auto sequential = [&](OpBuilder &b) {
    SmallVector<Value> outputs = {
        emptyOfType(b, loc, cast<RankedTensorType>(op.getOutput().getType()),
                    {batch, length, heads, b.getIndexAttr(value)})};
    if (Value finalState = op.getFinalState())
      outputs.push_back(emptyOfType(
          b, loc, cast<RankedTensorType>(finalState.getType()),
          {batch, heads, b.getIndexAttr(key), b.getIndexAttr(stateValue)}));
    auto forall = scf::ForallOp::create(
        b, loc, ArrayRef<OpFoldResult>{batch, heads}, outputs,
        /*mapping=*/std::nullopt,
        [&](OpBuilder &nb, Location, ValueRange args) {
          buildHeadBody(nb, args[0], args[1], args.drop_front(2));
        });
    return SmallVector<Value>(forall.getResults());
  };

  // The time-chunked form where asked for, the linear form has it and the
  // sequence can be longer than one chunk; a run-time choice when its
  // length is not known.
  std::optional<int64_t> staticLength = getConstantIntValue(length);
  if (timeChunk <= 0 || op.getNormalize() ||
      (staticLength && *staticLength <= timeChunk)) {
    rewriter.replaceOp(op, sequential(rewriter));
    return success();
  }
  if (staticLength) {
    rewriter.replaceOp(op, buildChunked(rewriter));
    return success();
  }
  Value longer = arith::CmpIOp::create(
      rewriter, loc, arith::CmpIPredicate::sgt,
      getValueOrCreateConstantIndexOp(rewriter, loc, length),
      index(rewriter, timeChunk));
  auto choice = scf::IfOp::create(rewriter, loc, op->getResultTypes(), longer,
                                  /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointToStart(choice.thenBlock());
    scf::YieldOp::create(rewriter, loc, buildChunked(rewriter));
    rewriter.setInsertionPointToStart(choice.elseBlock());
    scf::YieldOp::create(rewriter, loc, sequential(rewriter));
  }
  rewriter.replaceOp(op, choice.getResults());
  return success();
}

namespace {
/// Rewrites every glint.recurrence of a function into the loops described at
/// the top of this file: scf.forall over (batch, head), scf.for over time
/// with the head's K x V' state as an iter_arg, per-step linalg.generic tile
/// updates. Fails, with an error on the op, if K or V is dynamic.
struct LowerRecurrencePass
    : public glint::impl::GlintLowerRecurrenceBase<LowerRecurrencePass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<RecurrenceOp> recurrences;
    getOperation()->walk([&](RecurrenceOp op) { recurrences.push_back(op); });
    IRRewriter rewriter(&getContext());
    bool failed = false;
    for (RecurrenceOp op : recurrences)
      failed |=
          mlir::failed(RecurrenceLowering(op, rewriter, timeChunk).lower());
    if (failed)
      signalPassFailure();
  }
};
} // namespace
