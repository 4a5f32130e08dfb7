//===- ReferenceEvaluator.cpp - double-precision glint oracle -------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Each op is a plain loop nest over row-major double arrays, written from the
// definition in the op's documentation (docs/GlintOps.md) and nothing else.
// Shapes are re-checked at run time, where dynamic dims become known.
//
//===----------------------------------------------------------------------===//

#include "reference/ReferenceEvaluator.h"
#include "reference/ImplicitAttention.h"

#include "dialect/GlintOps.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/ModelInfo.h"
#include "runtime/io/Safetensors.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <unordered_map>

using namespace mlir;
using namespace mlir::glint::reference;
using llvm::Error;
using llvm::Expected;
using mlir::glint::runtime::shapeString;

//===----------------------------------------------------------------------===//
// Array
//===----------------------------------------------------------------------===//

Array::Array(ArrayRef<int64_t> shape, double fill) : shape(shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  data.assign(n, fill);
}

SmallVector<int64_t, 4> Array::strides() const {
  SmallVector<int64_t, 4> result(shape.size(), 1);
  for (int64_t i = rank() - 2; i >= 0; --i)
    result[i] = result[i + 1] * shape[i + 1];
  return result;
}

Expected<int64_t> mlir::glint::reference::numElementsOf(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return llvm::createStringError("negative dimension in shape");
    if (llvm::MulOverflow(n, d, n))
      return llvm::createStringError("shape has too many elements");
  }
  return n;
}

//===----------------------------------------------------------------------===//
// The interpreter
//===----------------------------------------------------------------------===//

namespace {
struct ValueHash {
  size_t operator()(Value v) const {
    return llvm::hash_value(v.getAsOpaquePointer());
  }
};
/// Values computed so far. A node-based map: evaluating an op inserts new
/// entries (block arguments of loop and linalg bodies) while pointers to its
/// operands' arrays are held, and those must stay valid.
using ValueMap = std::unordered_map<Value, Array, ValueHash>;

/// An error raised while executing one op: carries the message; the op and
/// its location are added where it is caught.
struct OpFailure {
  std::string message;
};

class Interpreter {
public:
  Interpreter(ModuleOp module, WeightProvider &weights, TraceCallback &trace)
      : module(module), weights(weights), trace(trace) {}

  /// Reports the ops of `block` (the called function's body) to `callback`
  /// as they are done.
  void reportProgress(Block &block, const ProgressCallback &callback) {
    progressBlock = &block;
    progress = &callback;
  }

  Expected<std::vector<Array>> callFunction(func::FuncOp fn,
                                            ArrayRef<Array> arguments);

private:
  using Values = ValueMap;

  /// Runs the ops of `block` and returns the operands of its terminator.
  Expected<std::vector<Array>> runBlock(Block &block, Values &values);
  /// Evaluates one non-terminator op, or returns a message.
  std::optional<OpFailure> evaluate(Operation *op, Values &values);
  /// Parts of evaluate(): the glint model ops, and the array that an
  /// ml_program.global_load_const reads (see their definitions).
  std::optional<std::optional<OpFailure>>
  evaluateGlintOp(Operation *op, ArrayRef<const Array *> in, Values &values);
  std::optional<OpFailure> loadWeight(ml_program::GlobalLoadConstOp load,
                                      Array &out);
  /// Runs a structured linalg op (generic or named): its body once per point
  /// of the iteration space, on scalars, through evaluate().
  std::optional<OpFailure> evaluateLinalg(linalg::LinalgOp op,
                                          ArrayRef<const Array *> in,
                                          Values &values,
                                          SmallVector<Array> &outs);
  /// Runs an scf.for, returning its results.
  std::optional<OpFailure> evaluateFor(scf::ForOp op, Values &values);
  /// Runs an scf.forall with shared outputs.
  std::optional<OpFailure> evaluateForall(scf::ForallOp op, Values &values);

  /// The iteration point of the innermost linalg op being run (linalg.index).
  SmallVector<int64_t> linalgPoint;

  Error opError(Operation *op, const Twine &message) {
    std::string location;
    llvm::raw_string_ostream os(location);
    if (auto fileLoc = dyn_cast<FileLineColLoc>(op->getLoc()))
      os << fileLoc.getFilename().getValue() << ":" << fileLoc.getLine()
         << ":" << fileLoc.getColumn();
    else
      op->getLoc().print(os);
    return llvm::createStringError(llvm::formatv(
        "{0}: '{1}' op: {2}", location, op->getName().getStringRef(),
        message.str()));
  }

  ModuleOp module;
  WeightProvider &weights;
  TraceCallback &trace;
  /// The block whose ops are reported to `progress`, if any.
  Block *progressBlock = nullptr;
  const ProgressCallback *progress = nullptr;
  /// Weights loaded so far, by global name.
  llvm::StringMap<Array> weightCache;
  /// The attention-form maps computed so far.
  std::unordered_map<Value, MapRef, ValueHash> maps;

  /// Evaluates the attention-form ops (map_*, act_gain, norm_stats); None
  /// when `op` is not one of them.
  std::optional<std::optional<OpFailure>>
  evaluateAttentionForm(Operation *op, Values &values);
};
} // namespace

/// Checks that a run-time shape conforms to a (possibly dynamic) IR type.
static std::optional<OpFailure> checkAgainstType(const Array &value, Type type,
                                                 StringRef what) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped) {
    if (value.rank() != 0)
      return OpFailure{(what + " is a scalar in the IR but has shape " +
                        shapeString(value.shape))
                           .str()};
    return std::nullopt;
  }
  bool ok = shaped.getRank() == value.rank();
  for (int64_t i = 0; ok && i < value.rank(); ++i)
    ok = shaped.isDynamicDim(i) || shaped.getDimSize(i) == value.shape[i];
  if (!ok)
    return OpFailure{(what + " has run-time shape " + shapeString(value.shape) +
                      " but the IR declares " +
                      shapeString(shaped.getShape()))
                         .str()};
  return std::nullopt;
}

Expected<std::vector<Array>>
Interpreter::callFunction(func::FuncOp fn, ArrayRef<Array> arguments) {
  if (fn.isExternal())
    return llvm::createStringError(
        llvm::formatv("function @{0} has no body", fn.getSymName()));
  Block &entry = fn.getBody().front();
  if (arguments.size() != entry.getNumArguments())
    return llvm::createStringError(llvm::formatv(
        "function @{0} takes {1} arguments, got {2}", fn.getSymName(),
        entry.getNumArguments(), arguments.size()));
  Values values;
  for (auto [i, arg] : llvm::enumerate(entry.getArguments())) {
    if (auto failure = checkAgainstType(arguments[i], arg.getType(),
                                        "argument #" + std::to_string(i)))
      return llvm::createStringError(llvm::formatv(
          "function @{0}: {1}", fn.getSymName(), failure->message));
    for (double x : arguments[i].data)
      if (std::isnan(x))
        return llvm::createStringError(llvm::formatv(
            "function @{0}: argument #{1} holds NaN", fn.getSymName(), i));
    values[arg] = arguments[i];
  }
  return runBlock(entry, values);
}

Expected<std::vector<Array>> Interpreter::runBlock(Block &block,
                                                   Values &values) {
  bool report = progress && &block == progressBlock;
  uint64_t done = 0, total = 0;
  if (report) {
    total = block.getOperations().size() - block.mightHaveTerminator();
    (*progress)(0, total);
  }
  for (Operation &op : block) {
    if (op.hasTrait<OpTrait::IsTerminator>()) {
      std::vector<Array> results;
      for (Value operand : op.getOperands())
        results.push_back(values.at(operand));
      return results;
    }
    if (auto failure = evaluate(&op, values))
      return opError(&op, failure->message);
    // NaN never comes out of finite inputs legitimately; catch it where it
    // starts. (Infinities can be intermediate, e.g. log(0) before exp.)
    bool inputsNaN = llvm::any_of(op.getOperands(), [&](Value v) {
      auto it = values.find(v);
      return it != values.end() &&
             llvm::any_of(it->second.data, [](double x) { return std::isnan(x); });
    });
    // tensor.empty is poisoned with NaN on purpose.
    inputsNaN |= isa<tensor::EmptyOp>(op);
    for (OpResult result : op.getResults()) {
      const Array &array = values[result];
      if (!inputsNaN && llvm::any_of(array.data, [](double x) {
            return std::isnan(x);
          }))
        return opError(&op, "produced NaN from inputs without NaN");
      if (auto failure = checkAgainstType(
              array, result.getType(),
              "result #" + std::to_string(result.getResultNumber())))
        return opError(&op, failure->message);
    }
    if (trace)
      if (auto name =
              op.getAttrOfType<StringAttr>(glint::GlintDialect::kTraceAttrName))
        trace(name.getValue(), values[op.getResult(0)]);
    if (report)
      (*progress)(++done, total);
  }
  return llvm::createStringError("block without a terminator");
}

//===----------------------------------------------------------------------===//
// Element-wise helpers
//===----------------------------------------------------------------------===//

static std::optional<OpFailure> sameShape(const Array &a, const Array &b,
                                          StringRef what) {
  if (a.shape == b.shape)
    return std::nullopt;
  return OpFailure{(what + " have different run-time shapes " +
                    shapeString(a.shape) + " and " + shapeString(b.shape))
                       .str()};
}

template <typename Fn>
static Array mapArray(const Array &a, Fn fn) {
  Array out = a;
  for (double &x : out.data)
    x = fn(x);
  return out;
}

static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
static double softplus(double x) {
  // log(1 + e^x) without overflow.
  return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

static double activation(glint::ActKind kind, double x) {
  using glint::ActKind;
  switch (kind) {
  case ActKind::silu:
    return x * sigmoid(x);
  case ActKind::sigmoid:
    return sigmoid(x);
  case ActKind::gelu:
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  case ActKind::gelu_tanh: {
    const double c = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
  }
  case ActKind::softplus:
    return softplus(x);
  case ActKind::relu:
    return x > 0.0 ? x : 0.0;
  case ActKind::relu_square:
    return x > 0.0 ? x * x : 0.0;
  case ActKind::tanh:
    return std::tanh(x);
  case ActKind::exp:
    return std::exp(x);
  case ActKind::neg_exp:
    return -std::exp(x);
  }
  llvm_unreachable("unknown activation");
}

/// Reads an OpFoldResult (static attribute or index value) as an integer.
static int64_t foldedInt(OpFoldResult ofr,
                         const ValueMap &values) {
  if (auto attr = dyn_cast<Attribute>(ofr))
    return cast<IntegerAttr>(attr).getInt();
  return static_cast<int64_t>(values.at(cast<Value>(ofr)).data[0]);
}

/// Calls `fn(index)` for every multi-index of `shape` in row-major order.
template <typename Fn>
static void forEachIndex(ArrayRef<int64_t> shape, Fn fn) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  SmallVector<int64_t, 4> index(shape.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    fn(ArrayRef<int64_t>(index));
    for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
      if (++index[i] < shape[i])
        break;
      index[i] = 0;
    }
  }
}

static int64_t offsetOf(ArrayRef<int64_t> index, ArrayRef<int64_t> strides) {
  int64_t offset = 0;
  for (auto [i, s] : llvm::zip(index, strides))
    offset += i * s;
  return offset;
}

/// Converts a constant attribute to an array of the given type's shape.
static std::optional<Array> constantArray(Attribute attr, Type type) {
  if (auto dense = dyn_cast<DenseElementsAttr>(attr)) {
    Array out(dense.getType().getShape());
    if (isa<FloatType>(dense.getElementType())) {
      int64_t i = 0;
      for (APFloat v : dense.getValues<APFloat>())
        out.data[i++] = v.convertToDouble();
    } else if (dense.getElementType().isIntOrIndex()) {
      int64_t i = 0;
      for (APInt v : dense.getValues<APInt>())
        out.data[i++] = static_cast<double>(
            dense.getElementType().isUnsignedInteger() ? v.getZExtValue()
                                                       : v.getSExtValue());
    } else {
      return std::nullopt;
    }
    return out;
  }
  if (auto f = dyn_cast<FloatAttr>(attr))
    return Array::scalar(f.getValueAsDouble());
  if (auto i = dyn_cast<IntegerAttr>(attr))
    return Array::scalar(static_cast<double>(
        i.getType().isUnsignedInteger() ? i.getValue().getZExtValue()
                                        : i.getValue().getSExtValue()));
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// glint ops
//===----------------------------------------------------------------------===//

using Failure = std::optional<OpFailure>;
static Failure fail(const Twine &message) { return OpFailure{message.str()}; }

static Failure evalEmbedding(const Array &ids, const Array &table,
                             Array &out) {
  int64_t vocab = table.shape[0], hidden = table.shape[1];
  out = Array(ArrayRef<int64_t>{ids.shape[0], ids.shape[1], hidden});
  for (int64_t i = 0; i < ids.numElements(); ++i) {
    double id = ids.data[i];
    if (id != std::floor(id))
      return fail(llvm::formatv("token id {0} at [{1}, {2}] is not an integer",
                                id, i / ids.shape[1], i % ids.shape[1]));
    if (!(id >= 0 && id < vocab))
      return fail(llvm::formatv("token id {0} at [{1}, {2}] is outside the "
                                "vocabulary [0, {3})",
                                static_cast<int64_t>(id), i / ids.shape[1],
                                i % ids.shape[1], vocab));
    std::copy_n(table.data.begin() + static_cast<int64_t>(id) * hidden, hidden,
                out.data.begin() + i * hidden);
  }
  return std::nullopt;
}

static Failure evalLinear(glint::LinearOp op, const Array &x, const Array &w,
                          const Array *bias, Array &out) {
  bool inOut = op.isInOut();
  int64_t blocks = w.rank() == 3 ? w.shape[0] : 1;
  int64_t a = w.shape[w.rank() - 2], b = w.shape[w.rank() - 1];
  int64_t inBlock = inOut ? a : b, outBlock = inOut ? b : a;
  int64_t in = blocks * inBlock, outSize = blocks * outBlock;
  if (x.shape.back() != in)
    return fail(llvm::formatv("input has {0} features at run time but the "
                              "weight {1} takes {2}",
                              x.shape.back(), shapeString(w.shape), in));
  if (bias && bias->numElements() != outSize)
    return fail(llvm::formatv("bias has {0} elements, expected {1}",
                              bias->numElements(), outSize));
  SmallVector<int64_t, 4> shape(x.shape);
  shape.back() = outSize;
  out = Array(shape);
  int64_t rows = x.numElements() / std::max<int64_t>(in, 1);
  for (int64_t r = 0; r < rows; ++r) {
    const double *xr = x.data.data() + r * in;
    double *yr = out.data.data() + r * outSize;
    for (int64_t n = 0; n < blocks; ++n)
      for (int64_t o = 0; o < outBlock; ++o) {
        double sum = 0.0;
        for (int64_t i = 0; i < inBlock; ++i) {
          int64_t widx = inOut ? (n * inBlock + i) * outBlock + o
                               : (n * outBlock + o) * inBlock + i;
          sum += xr[n * inBlock + i] * w.data[widx];
        }
        yr[n * outBlock + o] = sum + (bias ? bias->data[n * outBlock + o] : 0);
      }
  }
  return std::nullopt;
}

/// The statistics of a normalisation over groups of the last axis: per
/// element, `gain = (weightOffset + w) / sqrt(var + eps)` and the group's
/// mean (zero unless `center`; var is then the mean of squares), so that the
/// normalisation is `gain · (x − mean) + bias`.
static Failure normStats(const Array &x, const Array *weight, double epsilon,
                         double weightOffset, int64_t groups, bool center,
                         Array &gain, Array &mean) {
  int64_t channels = x.shape.back();
  if (weight && weight->numElements() != channels)
    return fail(llvm::formatv("weight has {0} elements, expected {1}",
                              weight->numElements(), channels));
  if (groups < 1 || channels % groups != 0)
    return fail(llvm::formatv("{0} channels do not divide into {1} groups",
                              channels, groups));
  int64_t size = channels / groups;
  gain = Array(x.shape);
  mean = Array(x.shape);
  int64_t rows = x.numElements() / std::max<int64_t>(channels, 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const double *v = x.data.data() + r * channels + g * size;
      double mu = 0.0;
      if (center) {
        for (int64_t i = 0; i < size; ++i)
          mu += v[i];
        mu /= size;
      }
      double var = 0.0;
      for (int64_t i = 0; i < size; ++i)
        var += (v[i] - mu) * (v[i] - mu);
      double scale = 1.0 / std::sqrt(var / size + epsilon);
      for (int64_t i = 0; i < size; ++i) {
        int64_t c = g * size + i, at = r * channels + c;
        gain.data[at] = scale * (weight ? weightOffset + weight->data[c] : 1.0);
        mean.data[at] = mu;
      }
    }
  return std::nullopt;
}

/// Normalises each group of the last axis: RMS (no mean) or layer norm
/// (mean and biased variance), then the affine terms.
static Failure evalNorm(const Array &x, const Array *weight, const Array *bias,
                        double epsilon, double weightOffset, int64_t groups,
                        bool subtractMean, Array &out) {
  int64_t channels = x.shape.back();
  if (bias && bias->numElements() != channels)
    return fail(llvm::formatv("bias has {0} elements, expected {1}",
                              bias->numElements(), channels));
  Array gain, mean;
  if (Failure f = normStats(x, weight, epsilon, weightOffset, groups,
                            subtractMean, gain, mean))
    return f;
  out = Array(x.shape);
  for (int64_t i = 0; i < x.numElements(); ++i)
    out.data[i] = (x.data[i] - mean.data[i]) * gain.data[i] +
                  (bias ? bias->data[i % channels] : 0.0);
  return std::nullopt;
}

static Failure evalConv1d(glint::Conv1dOp op, const Array &xIn,
                          const Array &w, const Array *bias,
                          const Array *state, Array &out, Array *finalState) {
  int64_t batch = xIn.shape[0], len = xIn.shape[1], ch = xIn.shape[2];
  int64_t width = w.shape[1];
  if (w.shape[0] != ch)
    return fail(llvm::formatv("weight has {0} channels, input {1}", w.shape[0],
                              ch));
  if (state && (state->shape[0] != batch || state->shape[1] != width - 1 ||
                state->shape[2] != ch))
    return fail("initial_state has run-time shape " +
                shapeString(state->shape) + ", expected " +
                shapeString({batch, width - 1, ch}));
  // The anti-causal form is the causal form on the flipped sequence.
  bool reverse = op.getReverse();
  auto pos = [&](int64_t t) { return reverse ? len - 1 - t : t; };
  // x(b, s, c) for s in [-(W-1), L): the state before the start, then x.
  auto input = [&](int64_t b, int64_t s, int64_t c) -> double {
    if (s >= 0)
      return xIn.data[(b * len + pos(s)) * ch + c];
    if (!state)
      return 0.0;
    return state->data[(b * (width - 1) + (width - 1 + s)) * ch + c];
  };
  out = Array(ArrayRef<int64_t>{batch, len, ch});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < len; ++t)
      for (int64_t c = 0; c < ch; ++c) {
        double sum = bias ? bias->data[c] : 0.0;
        for (int64_t i = 0; i < width; ++i)
          sum += w.data[c * width + i] * input(b, t - (width - 1) + i, c);
        out.data[(b * len + pos(t)) * ch + c] = sum;
      }
  if (finalState) {
    *finalState = Array(ArrayRef<int64_t>{batch, width - 1, ch});
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t j = 0; j < width - 1; ++j)
        for (int64_t c = 0; c < ch; ++c)
          finalState->data[(b * (width - 1) + j) * ch + c] =
              input(b, len - (width - 1) + j, c);
  }
  return std::nullopt;
}

static Failure evalTokenShift(const Array &x, const Array *state, Array &out,
                              Array *finalState) {
  int64_t batch = x.shape[0], len = x.shape[1], ch = x.shape[2];
  if (state && (state->shape[0] != batch || state->shape[1] != ch))
    return fail("initial_state has run-time shape " +
                shapeString(state->shape) + ", expected " +
                shapeString({batch, ch}));
  out = Array(ArrayRef<int64_t>{batch, len, ch});
  if (finalState)
    *finalState = Array(ArrayRef<int64_t>{batch, ch});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < ch; ++c) {
      double previous = state ? state->data[b * ch + c] : 0.0;
      for (int64_t t = 0; t < len; ++t) {
        out.data[(b * len + t) * ch + c] = previous;
        previous = x.data[(b * len + t) * ch + c];
      }
      if (finalState)
        finalState->data[b * ch + c] = previous;
    }
  return std::nullopt;
}

namespace {
/// The operands of a recurrence, as run-time arrays.
struct RecurrenceArgs {
  const Array *q, &k, &v, &logDecay, *delta, *bonus, *skip, *state;
};
} // namespace

static Failure checkRuntimeShape(const Array &a, ArrayRef<int64_t> expected,
                                 StringRef name) {
  if (a.shape == expected)
    return std::nullopt;
  return fail("'" + name + "' has run-time shape " + shapeString(a.shape) +
              ", expected " + shapeString(expected));
}

/// The run-time shapes shared by a recurrence and its backward op: `k` and
/// `q` [B, L, G, K], heads divisible into key groups, `log_decay` in one of
/// its four forms, `delta` [B, L, H].
static Failure checkRecurrenceOperands(const Array *q, const Array &k,
                                       const Array &v, const Array &decay,
                                       const Array *delta) {
  int64_t batch = v.shape[0], len = v.shape[1], heads = v.shape[2];
  int64_t groups = k.shape[2], key = k.shape[3];
  if (auto f = checkRuntimeShape(k, {batch, len, groups, key}, "k"))
    return f;
  if (q)
    if (auto f = checkRuntimeShape(*q, k.shape, "q"))
      return f;
  if (groups == 0 || heads % groups != 0)
    return fail(llvm::formatv("{0} heads do not divide into {1} key groups",
                              heads, groups));
  SmallVector<SmallVector<int64_t>> decayShapes = {
      {heads}, {heads, key}, {batch, len, heads}, {batch, len, heads, key}};
  if (auto f = checkRuntimeShape(decay, decayShapes[decay.rank() - 1],
                                 "log_decay"))
    return f;
  if (delta)
    if (auto f = checkRuntimeShape(*delta, {batch, len, heads}, "delta"))
      return f;
  return std::nullopt;
}

static Failure evalRecurrence(glint::RecurrenceOp op, const RecurrenceArgs &in,
                              Array &out, Array *finalState) {
  const Array &k = in.k, &v = in.v, &decay = in.logDecay;
  int64_t batch = v.shape[0], len = v.shape[1], heads = v.shape[2];
  int64_t valueSize = v.shape[3];
  int64_t groups = k.shape[2], key = k.shape[3];
  if (Failure f = checkRecurrenceOperands(in.q, k, v, decay, in.delta))
    return f;
  if (in.bonus)
    if (auto f = checkRuntimeShape(*in.bonus, {heads, key}, "bonus"))
      return f;
  if (in.skip)
    if (auto f = checkRuntimeShape(*in.skip, {heads}, "skip"))
      return f;
  bool normalize = op.getNormalize();
  int64_t stateValue = normalize ? valueSize + 2 : valueSize;
  if (in.state)
    if (auto f = checkRuntimeShape(*in.state, {batch, heads, key, stateValue},
                                   "initial_state"))
      return f;

  int64_t headsPerGroup = heads / groups;
  auto at4 = [](const Array &a, int64_t i, int64_t j, int64_t l, int64_t m) {
    return a.data[((i * a.shape[1] + j) * a.shape[2] + l) * a.shape[3] + m];
  };
  // g_t[h, kk], with Mamba's factored delta applied.
  auto logDecayAt = [&](int64_t b, int64_t t, int64_t h, int64_t kk) {
    double g = 0.0;
    switch (decay.rank()) {
    case 1:
      g = decay.data[h];
      break;
    case 2:
      g = decay.data[h * key + kk];
      break;
    case 3:
      g = decay.data[(b * len + t) * heads + h];
      break;
    default:
      g = at4(decay, b, t, h, kk);
    }
    if (in.delta)
      g *= in.delta->data[(b * len + t) * heads + h];
    return g;
  };

  out = Array(ArrayRef<int64_t>{batch, len, heads, valueSize});
  if (finalState)
    *finalState = Array(ArrayRef<int64_t>{batch, heads, key, stateValue});
  std::vector<double> state(key * stateValue), qv(key), kv(key), o(valueSize);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / headsPerGroup;
      if (in.state)
        std::copy_n(in.state->data.begin() + (b * heads + h) * key * stateValue,
                    key * stateValue, state.begin());
      else
        std::fill(state.begin(), state.end(), 0.0);
      if (normalize && !in.state)
        state[valueSize + 1] = -std::numeric_limits<double>::infinity();

      for (int64_t step = 0; step < len; ++step) {
        int64_t t = op.getReverse() ? len - 1 - step : step;
        double dt = in.delta ? in.delta->data[(b * len + t) * heads + h] : 1.0;
        const double *vt = &v.data[((b * len + t) * heads + h) * valueSize];
        for (int64_t kk = 0; kk < key; ++kk) {
          kv[kk] = at4(k, b, t, g, kk) * (normalize ? 1.0 : dt);
          qv[kk] = in.q ? at4(*in.q, b, t, g, kk) : 1.0;
        }
        if (normalize) {
          // RWKV-4 (K = 1): numerator[V], denominator, running max, all
          // scaled by exp(-max).
          double *num = state.data(), &den = state[valueSize],
                 &pmax = state[valueSize + 1];
          double kt = kv[0];
          if (in.bonus) {
            double ww = in.bonus->data[h] + kt;
            double p = std::max(pmax, ww);
            double e1 = std::exp(pmax - p), e2 = std::exp(ww - p);
            for (int64_t j = 0; j < valueSize; ++j)
              o[j] = (e1 * num[j] + e2 * vt[j]) / (e1 * den + e2);
          }
          double wd = logDecayAt(b, t, h, 0) + pmax;
          double p = std::max(wd, kt);
          double e1 = std::exp(wd - p), e2 = std::exp(kt - p);
          for (int64_t j = 0; j < valueSize; ++j)
            num[j] = e1 * num[j] + e2 * vt[j];
          den = e1 * den + e2;
          pmax = p;
          if (!in.bonus)
            for (int64_t j = 0; j < valueSize; ++j)
              o[j] = num[j] / den;
        } else {
          if (in.bonus) {
            // Read S_{t-1}, plus the current token through u ⊙ k_t.
            double diag = 0.0;
            for (int64_t kk = 0; kk < key; ++kk)
              diag += qv[kk] * in.bonus->data[h * key + kk] * kv[kk];
            for (int64_t j = 0; j < valueSize; ++j) {
              double sum = diag * vt[j];
              for (int64_t kk = 0; kk < key; ++kk)
                sum += qv[kk] * state[kk * valueSize + j];
              o[j] = sum;
            }
          }
          for (int64_t kk = 0; kk < key; ++kk) {
            double a = std::exp(logDecayAt(b, t, h, kk));
            for (int64_t j = 0; j < valueSize; ++j)
              state[kk * valueSize + j] =
                  a * state[kk * valueSize + j] + kv[kk] * vt[j];
          }
          if (!in.bonus)
            for (int64_t j = 0; j < valueSize; ++j) {
              double sum = 0.0;
              for (int64_t kk = 0; kk < key; ++kk)
                sum += qv[kk] * state[kk * valueSize + j];
              o[j] = sum;
            }
        }
        double *ot = &out.data[((b * len + t) * heads + h) * valueSize];
        for (int64_t j = 0; j < valueSize; ++j)
          ot[j] = o[j] + (in.skip ? in.skip->data[h] * vt[j] : 0.0);
      }
      if (finalState)
        std::copy(state.begin(), state.end(),
                  finalState->data.begin() +
                      (b * heads + h) * key * stateValue);
    }
  return std::nullopt;
}

/// `concat(cache, x)` along the sequence axis of [B, L, G, D] arrays.
static Array concatSequence(const Array *cache, const Array &x) {
  if (!cache)
    return x;
  int64_t batch = x.shape[0], rows = cache->shape[1], len = x.shape[1];
  int64_t row = x.shape[2] * x.shape[3];
  Array out(ArrayRef<int64_t>{batch, rows + len, x.shape[2], x.shape[3]});
  for (int64_t b = 0; b < batch; ++b) {
    std::copy_n(cache->data.begin() + b * rows * row, rows * row,
                out.data.begin() + b * (rows + len) * row);
    std::copy_n(x.data.begin() + b * len * row, len * row,
                out.data.begin() + (b * (rows + len) + rows) * row);
  }
  return out;
}

/// The last `rows` positions of a [B, T, G, D] array.
static Array lastRows(const Array &x, int64_t rows) {
  int64_t batch = x.shape[0], total = x.shape[1];
  int64_t row = x.shape[2] * x.shape[3];
  Array out(ArrayRef<int64_t>{batch, rows, x.shape[2], x.shape[3]});
  for (int64_t b = 0; b < batch; ++b)
    std::copy_n(x.data.begin() + (b * total + total - rows) * row, rows * row,
                out.data.begin() + b * rows * row);
  return out;
}

/// Softmax attention; with a cache of C rows the keys and values are
/// `concat(cache, k)` and `concat(cache, v)`, query i sits at key position
/// C + i, and cache rows before C - min(position, C) are not attended.
static Failure evalAttention(glint::AttentionOp op, const Array &q,
                             const Array &kIn, const Array &vIn,
                             const Array *keyCache, const Array *valueCache,
                             double position, Array &out, Array *finalKeys,
                             Array *finalValues) {
  int64_t batch = q.shape[0], len = q.shape[1], heads = q.shape[2];
  int64_t dim = q.shape[3], kvHeads = kIn.shape[2], valueDim = vIn.shape[3];
  if (auto f = checkRuntimeShape(kIn, {batch, len, kvHeads, dim}, "k"))
    return f;
  if (auto f = checkRuntimeShape(vIn, {batch, len, kvHeads, valueDim}, "v"))
    return f;
  if (kvHeads == 0 || heads % kvHeads != 0)
    return fail(llvm::formatv("{0} query heads do not divide into {1} "
                              "key/value heads",
                              heads, kvHeads));
  int64_t cached = op.getCacheLength();
  if (keyCache) {
    if (auto f = checkRuntimeShape(*keyCache, {batch, cached, kvHeads, dim},
                                   "key_cache"))
      return f;
    if (auto f = checkRuntimeShape(
            *valueCache, {batch, cached, kvHeads, valueDim}, "value_cache"))
      return f;
    if (position < 0)
      return fail(llvm::formatv("negative position {0}", position));
  }
  Array k = concatSequence(keyCache, kIn), v = concatSequence(valueCache, vIn);
  int64_t total = cached + len;
  int64_t firstKey =
      std::max<int64_t>(0, cached - static_cast<int64_t>(position));
  double scale = op.getScale().convertToDouble();
  int64_t window = op.getWindowAttr() ? op.getWindowAttr().getInt() : total;
  out = Array(ArrayRef<int64_t>{batch, len, heads, valueDim});
  std::vector<double> scores(total);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / (heads / kvHeads);
      for (int64_t i = 0; i < len; ++i) {
        int64_t at = cached + i;
        int64_t first = std::max<int64_t>(firstKey, at - window + 1);
        double maxScore = -std::numeric_limits<double>::infinity();
        for (int64_t j = first; j <= at; ++j) {
          double s = 0.0;
          for (int64_t d = 0; d < dim; ++d)
            s += q.data[((b * len + i) * heads + h) * dim + d] *
                 k.data[((b * total + j) * kvHeads + g) * dim + d];
          scores[j] = scale * s;
          maxScore = std::max(maxScore, scores[j]);
        }
        double sum = 0.0;
        for (int64_t j = first; j <= at; ++j)
          sum += scores[j] = std::exp(scores[j] - maxScore);
        double *o = &out.data[((b * len + i) * heads + h) * valueDim];
        for (int64_t j = first; j <= at; ++j)
          for (int64_t e = 0; e < valueDim; ++e)
            o[e] += scores[j] / sum *
                    v.data[((b * total + j) * kvHeads + g) * valueDim + e];
      }
    }
  if (finalKeys) {
    *finalKeys = lastRows(k, cached);
    *finalValues = lastRows(v, cached);
  }
  return std::nullopt;
}

namespace {
/// The operands of a recurrence's backward op, as run-time arrays.
struct RecurrenceGradArgs {
  const Array *q, &k, &v, &logDecay, *delta, *bonus, *skip, &grad;
};
/// Its results.
struct RecurrenceGrads {
  Array q, k, v, logDecay, delta;
};
} // namespace

/// The vector–Jacobian product of a recurrence, from its closed form rather
/// than its scan: in processing order (reversed with `reverse`), the output
/// read at step i is
///   o_i = Σ_{j ≤ i'} Σ_κ q_i[κ] e^{Γ_κ(j, i')} δ_j k_j[κ] v_j
///         (+ Σ_κ q_i[κ] u[κ] δ_i k_i[κ] v_i with a bonus) + skip · v_i,
/// with i' = i − 1 when there is a bonus (the state before the token) and i
/// otherwise, and Γ_κ(j, i') = Σ_{s=j+1}^{i'} g_s[κ] the log-decay between
/// them (g = δ · log_decay when factored). RWKV-4's ratio form is the same
/// sum as a softmax over the scores s_ij = k_j + Γ(j, i') (u + k_i for the
/// bonus). Every term is differentiated as written; the cotangent of Γ is
/// spread over the steps it sums with a difference array. O(L²) per head:
/// this is the oracle the compiled backward scan is checked against.
static Failure evalRecurrenceGrad(glint::RecurrenceGradOp op,
                                  const RecurrenceGradArgs &in,
                                  RecurrenceGrads &out) {
  const Array &k = in.k, &v = in.v, &decay = in.logDecay, &dy = in.grad;
  int64_t batch = v.shape[0], len = v.shape[1], heads = v.shape[2];
  int64_t valueSize = v.shape[3], groups = k.shape[2], key = k.shape[3];
  if (Failure f = checkRecurrenceOperands(in.q, k, v, decay, in.delta))
    return f;
  if (auto f = checkRuntimeShape(dy, v.shape, "grad"))
    return f;
  bool normalize = op.getNormalize(), hasBonus = in.bonus;
  if (normalize && key != 1)
    return fail("the ratio form needs a key size of 1");

  out.q = Array(k.shape);
  out.k = Array(k.shape);
  out.v = Array(v.shape);
  out.logDecay = Array(decay.shape);
  out.delta = Array(ArrayRef<int64_t>{batch, len, heads});
  int64_t headsPerGroup = heads / groups;
  auto timeOf = [&](int64_t p) { return op.getReverse() ? len - 1 - p : p; };
  auto keyAt = [&](const Array &a, int64_t b, int64_t t, int64_t g) {
    return ((b * len + t) * groups + g) * key;
  };
  auto valueAt = [&](int64_t b, int64_t t, int64_t h) {
    return ((b * len + t) * heads + h) * valueSize;
  };
  auto rawDecay = [&](int64_t b, int64_t t, int64_t h, int64_t kk) {
    switch (decay.rank()) {
    case 1:
      return decay.data[h];
    case 2:
      return decay.data[h * key + kk];
    case 3:
      return decay.data[(b * len + t) * heads + h];
    default:
      return decay.data[((b * len + t) * heads + h) * key + kk];
    }
  };
  auto dot = [&](const double *x, const double *y) {
    double sum = 0.0;
    for (int64_t j = 0; j < valueSize; ++j)
      sum += x[j] * y[j];
    return sum;
  };

  // Per head, in processing order: the step δ, the prefix sums of the
  // effective log-decay, and the cotangents gathered along the way.
  std::vector<double> step(len), prefix((len + 1) * key),
      spread((len + 1) * key);
  std::vector<double> dStep(len), scores(len), ratio(valueSize);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / headsPerGroup;
      for (int64_t p = 0; p < len; ++p) {
        int64_t t = timeOf(p);
        step[p] = in.delta ? in.delta->data[(b * len + t) * heads + h] : 1.0;
        for (int64_t kk = 0; kk < key; ++kk)
          prefix[(p + 1) * key + kk] =
              prefix[p * key + kk] + step[p] * rawDecay(b, t, h, kk);
      }
      std::fill(spread.begin(), spread.end(), 0.0);
      std::fill(dStep.begin(), dStep.end(), 0.0);
      // Γ_κ(j, r) = prefix[r + 1] − prefix[j + 1]; its cotangent goes to the
      // steps j + 1 … r.
      auto gamma = [&](int64_t j, int64_t r, int64_t kk) {
        return prefix[(r + 1) * key + kk] - prefix[(j + 1) * key + kk];
      };
      auto spreadGamma = [&](int64_t j, int64_t r, int64_t kk, double d) {
        spread[(j + 1) * key + kk] += d;
        spread[(r + 1) * key + kk] -= d;
      };
      for (int64_t i = 0; i < len; ++i) {
        int64_t ti = timeOf(i), last = hasBonus ? i - 1 : i;
        const double *dyi = &dy.data[valueAt(b, ti, h)];
        double *dvi = &out.v.data[valueAt(b, ti, h)];
        const double *vi = &v.data[valueAt(b, ti, h)];
        if (in.skip)
          for (int64_t e = 0; e < valueSize; ++e)
            dvi[e] += in.skip->data[h] * dyi[e];
        if (normalize) {
          // Softmax over the scores of the keys the read sees.
          double top = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j <= last; ++j) {
            scores[j] = k.data[keyAt(k, b, timeOf(j), g)] + gamma(j, last, 0);
            top = std::max(top, scores[j]);
          }
          double diag =
              hasBonus ? in.bonus->data[h] + k.data[keyAt(k, b, ti, g)] : 0.0;
          if (hasBonus)
            top = std::max(top, diag);
          double total = 0.0;
          for (int64_t j = 0; j <= last; ++j)
            total += scores[j] = std::exp(scores[j] - top);
          double diagWeight = hasBonus ? std::exp(diag - top) : 0.0;
          total += diagWeight;
          std::fill(ratio.begin(), ratio.end(), 0.0);
          for (int64_t j = 0; j <= last; ++j)
            for (int64_t e = 0; e < valueSize; ++e)
              ratio[e] +=
                  scores[j] / total * v.data[valueAt(b, timeOf(j), h) + e];
          for (int64_t e = 0; e < valueSize; ++e)
            ratio[e] += diagWeight / total * vi[e];
          double mean = dot(dyi, ratio.data());
          for (int64_t j = 0; j <= last; ++j) {
            int64_t tj = timeOf(j);
            double pj = scores[j] / total;
            double *dvj = &out.v.data[valueAt(b, tj, h)];
            for (int64_t e = 0; e < valueSize; ++e)
              dvj[e] += pj * dyi[e];
            double ds = pj * (dot(dyi, &v.data[valueAt(b, tj, h)]) - mean);
            out.k.data[keyAt(k, b, tj, g)] += ds;
            spreadGamma(j, last, 0, ds);
          }
          if (hasBonus) {
            double pi = diagWeight / total;
            for (int64_t e = 0; e < valueSize; ++e)
              dvi[e] += pi * dyi[e];
            out.k.data[keyAt(k, b, ti, g)] += pi * (dot(dyi, vi) - mean);
          }
          continue;
        }
        const double *qi = in.q ? &in.q->data[keyAt(k, b, ti, g)] : nullptr;
        double *dqi = &out.q.data[keyAt(k, b, ti, g)];
        auto query = [&](int64_t kk) { return qi ? qi[kk] : 1.0; };
        for (int64_t j = 0; j <= last; ++j) {
          int64_t tj = timeOf(j);
          const double *kj = &k.data[keyAt(k, b, tj, g)];
          double *dkj = &out.k.data[keyAt(k, b, tj, g)];
          double a = dot(dyi, &v.data[valueAt(b, tj, h)]), weight = 0.0;
          for (int64_t kk = 0; kk < key; ++kk) {
            double e = std::exp(gamma(j, last, kk));
            double keyScaled = step[j] * kj[kk];
            double term = query(kk) * e * keyScaled * a;
            weight += query(kk) * e * keyScaled;
            dqi[kk] += e * keyScaled * a;
            double dKeyScaled = query(kk) * e * a;
            dkj[kk] += dKeyScaled * step[j];
            dStep[j] += dKeyScaled * kj[kk];
            spreadGamma(j, last, kk, term);
          }
          double *dvj = &out.v.data[valueAt(b, tj, h)];
          for (int64_t e = 0; e < valueSize; ++e)
            dvj[e] += weight * dyi[e];
        }
        if (hasBonus) {
          const double *ki = &k.data[keyAt(k, b, ti, g)];
          double *dki = &out.k.data[keyAt(k, b, ti, g)];
          double a = dot(dyi, vi), weight = 0.0;
          for (int64_t kk = 0; kk < key; ++kk) {
            double u = in.bonus->data[h * key + kk];
            weight += query(kk) * u * step[i] * ki[kk];
            dqi[kk] += u * step[i] * ki[kk] * a;
            double dKeyScaled = query(kk) * u * a;
            dki[kk] += dKeyScaled * step[i];
            dStep[i] += dKeyScaled * ki[kk];
          }
          for (int64_t e = 0; e < valueSize; ++e)
            dvi[e] += weight * dyi[e];
        }
      }
      // The cotangent of each step's effective log-decay g_s = δ_s · raw_s,
      // then of its factors.
      std::vector<double> running(key, 0.0);
      for (int64_t s = 0; s < len; ++s) {
        int64_t ts = timeOf(s);
        for (int64_t kk = 0; kk < key; ++kk) {
          running[kk] += spread[s * key + kk];
          double dg = running[kk];
          if (in.delta)
            dStep[s] += dg * rawDecay(b, ts, h, kk);
          double dRaw = dg * step[s];
          switch (decay.rank()) {
          case 1:
            out.logDecay.data[h] += dRaw;
            break;
          case 2:
            out.logDecay.data[h * key + kk] += dRaw;
            break;
          case 3:
            out.logDecay.data[(b * len + ts) * heads + h] += dRaw;
            break;
          default:
            out.logDecay.data[((b * len + ts) * heads + h) * key + kk] += dRaw;
          }
        }
        out.delta.data[(b * len + ts) * heads + h] += dStep[s];
      }
    }
  return std::nullopt;
}

/// The vector–Jacobian product of softmax attention without a cache,
/// written from the probabilities of each query row.
static Failure evalAttentionGrad(glint::AttentionGradOp op, const Array &q,
                                 const Array &k, const Array &v,
                                 const Array &dy, Array &dq, Array &dk,
                                 Array &dv) {
  int64_t batch = q.shape[0], len = q.shape[1], heads = q.shape[2];
  int64_t dim = q.shape[3], kvHeads = k.shape[2], valueDim = v.shape[3];
  if (auto f = checkRuntimeShape(k, {batch, len, kvHeads, dim}, "k"))
    return f;
  if (auto f = checkRuntimeShape(v, {batch, len, kvHeads, valueDim}, "v"))
    return f;
  if (auto f = checkRuntimeShape(dy, {batch, len, heads, valueDim}, "grad"))
    return f;
  if (kvHeads == 0 || heads % kvHeads != 0)
    return fail(llvm::formatv("{0} query heads do not divide into {1} "
                              "key/value heads",
                              heads, kvHeads));
  double scale = op.getScale().convertToDouble();
  int64_t window = op.getWindowAttr() ? op.getWindowAttr().getInt() : len;
  dq = Array(q.shape);
  dk = Array(k.shape);
  dv = Array(v.shape);
  std::vector<double> prob(len), dprob(len);
  auto qAt = [&](int64_t b, int64_t i, int64_t h) {
    return ((b * len + i) * heads + h) * dim;
  };
  auto kAt = [&](int64_t b, int64_t j, int64_t g) {
    return ((b * len + j) * kvHeads + g) * dim;
  };
  auto vAt = [&](int64_t b, int64_t j, int64_t g) {
    return ((b * len + j) * kvHeads + g) * valueDim;
  };
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      int64_t g = h / (heads / kvHeads);
      for (int64_t i = 0; i < len; ++i) {
        int64_t first = std::max<int64_t>(0, i - window + 1);
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t j = first; j <= i; ++j) {
          double s = 0.0;
          for (int64_t d = 0; d < dim; ++d)
            s += q.data[qAt(b, i, h) + d] * k.data[kAt(b, j, g) + d];
          prob[j] = scale * s;
          top = std::max(top, prob[j]);
        }
        double total = 0.0;
        for (int64_t j = first; j <= i; ++j)
          total += prob[j] = std::exp(prob[j] - top);
        const double *dyi = &dy.data[((b * len + i) * heads + h) * valueDim];
        double mean = 0.0;
        for (int64_t j = first; j <= i; ++j) {
          prob[j] /= total;
          double d = 0.0;
          for (int64_t e = 0; e < valueDim; ++e) {
            d += dyi[e] * v.data[vAt(b, j, g) + e];
            dv.data[vAt(b, j, g) + e] += prob[j] * dyi[e];
          }
          dprob[j] = d;
          mean += prob[j] * d;
        }
        for (int64_t j = first; j <= i; ++j) {
          double ds = scale * prob[j] * (dprob[j] - mean);
          for (int64_t d = 0; d < dim; ++d) {
            dq.data[qAt(b, i, h) + d] += ds * k.data[kAt(b, j, g) + d];
            dk.data[kAt(b, j, g) + d] += ds * q.data[qAt(b, i, h) + d];
          }
        }
      }
    }
  return std::nullopt;
}

static Failure evalRotary(glint::RotaryOp op, const Array &x, double offset,
                          Array &out) {
  int64_t rotaryDim = op.getRotaryDim(), dim = x.shape[3];
  if (rotaryDim > dim)
    return fail(llvm::formatv("rotary_dim {0} exceeds the head size {1}",
                              rotaryDim, dim));
  double base = op.getBase().convertToDouble();
  int64_t half = rotaryDim / 2;
  out = x;
  int64_t len = x.shape[1];
  int64_t rows = x.numElements() / std::max<int64_t>(dim, 1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t t = (r / x.shape[2]) % len;
    double position = offset + t;
    double *o = &out.data[r * dim];
    const double *in = &x.data[r * dim];
    for (int64_t i = 0; i < half; ++i) {
      double theta = position * std::pow(base, -2.0 * i / rotaryDim);
      int64_t a = op.getInterleaved() ? 2 * i : i;
      int64_t c = op.getInterleaved() ? 2 * i + 1 : i + half;
      o[a] = in[a] * std::cos(theta) - in[c] * std::sin(theta);
      o[c] = in[c] * std::cos(theta) + in[a] * std::sin(theta);
    }
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Standard ops
//===----------------------------------------------------------------------===//

/// Row-major copy of a strided box of `source` into a dense array.
static Array extractBox(const Array &source, ArrayRef<int64_t> offsets,
                        ArrayRef<int64_t> sizes, ArrayRef<int64_t> strides) {
  Array out(sizes);
  SmallVector<int64_t, 4> sourceStrides = source.strides();
  int64_t flat = 0;
  forEachIndex(sizes, [&](ArrayRef<int64_t> index) {
    int64_t offset = 0;
    for (size_t d = 0; d < index.size(); ++d)
      offset += (offsets[d] + index[d] * strides[d]) * sourceStrides[d];
    out.data[flat++] = source.data[offset];
  });
  return out;
}

/// The run-time offsets, sizes and strides of a slice op.
static std::tuple<SmallVector<int64_t>, SmallVector<int64_t>,
                  SmallVector<int64_t>>
sliceBox(OffsetSizeAndStrideOpInterface op,
         const ValueMap &values) {
  auto read = [&](ArrayRef<OpFoldResult> list) {
    SmallVector<int64_t> result;
    for (OpFoldResult v : list)
      result.push_back(foldedInt(v, values));
    return result;
  };
  return {read(op.getMixedOffsets()), read(op.getMixedSizes()),
          read(op.getMixedStrides())};
}

static Failure checkBox(ArrayRef<int64_t> shape, ArrayRef<int64_t> offsets,
                        ArrayRef<int64_t> sizes, ArrayRef<int64_t> strides) {
  for (size_t d = 0; d < shape.size(); ++d) {
    int64_t last = offsets[d] + (sizes[d] - 1) * strides[d];
    if (offsets[d] < 0 || sizes[d] < 0 ||
        (sizes[d] > 0 && (last < 0 || last >= shape[d])))
      return fail(llvm::formatv("slice of dim {0} (offset {1}, size {2}, "
                                "stride {3}) is outside the size {4}",
                                d, offsets[d], sizes[d], strides[d],
                                shape[d]));
  }
  return std::nullopt;
}

/// Evaluates the scalar ops of arith and math on whole arrays.
static std::optional<Failure> evalElementwise(Operation *op,
                                              ArrayRef<const Array *> in,
                                              Array &out) {
  auto unary = [&](auto fn) -> Failure {
    out = mapArray(*in[0], fn);
    return std::nullopt;
  };
  auto binary = [&](auto fn) -> Failure {
    if (auto f = sameShape(*in[0], *in[1], "operands"))
      return f;
    out = *in[0];
    for (int64_t i = 0; i < out.numElements(); ++i)
      out.data[i] = fn(in[0]->data[i], in[1]->data[i]);
    return std::nullopt;
  };
  return llvm::TypeSwitch<Operation *, std::optional<Failure>>(op)
      .Case([&](arith::AddFOp) { return binary(std::plus<double>()); })
      .Case([&](arith::SubFOp) { return binary(std::minus<double>()); })
      .Case([&](arith::MulFOp) { return binary(std::multiplies<double>()); })
      .Case([&](arith::DivFOp) { return binary(std::divides<double>()); })
      .Case([&](arith::AddIOp) { return binary(std::plus<double>()); })
      .Case([&](arith::SubIOp) { return binary(std::minus<double>()); })
      .Case([&](arith::MulIOp) { return binary(std::multiplies<double>()); })
      .Case([&](arith::DivSIOp) {
        return binary([](double a, double b) { return std::trunc(a / b); });
      })
      .Case([&](arith::CeilDivSIOp) {
        return binary([](double a, double b) { return std::ceil(a / b); });
      })
      .Case<arith::MaximumFOp, arith::MaxNumFOp>([&](auto) {
        return binary([](double a, double b) { return std::max(a, b); });
      })
      .Case<arith::MinimumFOp, arith::MinNumFOp>([&](auto) {
        return binary([](double a, double b) { return std::min(a, b); });
      })
      .Case([&](math::PowFOp) {
        return binary([](double a, double b) { return std::pow(a, b); });
      })
      .Case([&](arith::RemSIOp) {
        return binary([](double a, double b) { return std::fmod(a, b); });
      })
      .Case<arith::MaxSIOp, arith::MaxUIOp>([&](auto) {
        return binary([](double a, double b) { return std::max(a, b); });
      })
      .Case<arith::MinSIOp, arith::MinUIOp>([&](auto) {
        return binary([](double a, double b) { return std::min(a, b); });
      })
      .Case([&](arith::AndIOp) {
        return binary([](double a, double b) {
          return static_cast<double>(static_cast<int64_t>(a) &
                                     static_cast<int64_t>(b));
        });
      })
      .Case([&](arith::OrIOp) {
        return binary([](double a, double b) {
          return static_cast<double>(static_cast<int64_t>(a) |
                                     static_cast<int64_t>(b));
        });
      })
      .Case([&](arith::CmpIOp cmp) {
        return binary([pred = cmp.getPredicate()](double a, double b) {
          using P = arith::CmpIPredicate;
          switch (pred) {
          case P::eq:
            return double(a == b);
          case P::ne:
            return double(a != b);
          case P::slt:
          case P::ult:
            return double(a < b);
          case P::sle:
          case P::ule:
            return double(a <= b);
          case P::sgt:
          case P::ugt:
            return double(a > b);
          case P::sge:
          case P::uge:
            return double(a >= b);
          }
          return 0.0;
        });
      })
      .Case([&](arith::CmpFOp cmp) {
        return binary([pred = cmp.getPredicate()](double a, double b) {
          using P = arith::CmpFPredicate;
          bool unordered = std::isnan(a) || std::isnan(b);
          switch (pred) {
          case P::OEQ:
            return double(!unordered && a == b);
          case P::ONE:
            return double(!unordered && a != b);
          case P::OLT:
            return double(!unordered && a < b);
          case P::OLE:
            return double(!unordered && a <= b);
          case P::OGT:
            return double(!unordered && a > b);
          case P::OGE:
            return double(!unordered && a >= b);
          case P::UEQ:
            return double(unordered || a == b);
          case P::UNE:
            return double(unordered || a != b);
          case P::ULT:
            return double(unordered || a < b);
          case P::ULE:
            return double(unordered || a <= b);
          case P::UGT:
            return double(unordered || a > b);
          case P::UGE:
            return double(unordered || a >= b);
          case P::ORD:
            return double(!unordered);
          case P::UNO:
            return double(unordered);
          case P::AlwaysTrue:
            return 1.0;
          case P::AlwaysFalse:
            return 0.0;
          }
          return 0.0;
        });
      })
      .Case([&](arith::FPToSIOp) {
        return unary([](double x) { return std::trunc(x); });
      })
      .Case([&](arith::NegFOp) { return unary(std::negate<double>()); })
      // The reference computes in double whatever the IR's float type.
      .Case<arith::ExtFOp, arith::TruncFOp, arith::SIToFPOp,
            arith::UIToFPOp, arith::IndexCastOp, arith::ExtSIOp,
            arith::ExtUIOp, arith::TruncIOp>(
          [&](auto) { return unary([](double x) { return x; }); })
      .Case([&](math::ExpOp) { return unary([](double x) { return std::exp(x); }); })
      .Case([&](math::Exp2Op) { return unary([](double x) { return std::exp2(x); }); })
      .Case([&](math::ExpM1Op) { return unary([](double x) { return std::expm1(x); }); })
      .Case([&](math::LogOp) { return unary([](double x) { return std::log(x); }); })
      .Case([&](math::Log1pOp) { return unary([](double x) { return std::log1p(x); }); })
      .Case([&](math::SqrtOp) { return unary([](double x) { return std::sqrt(x); }); })
      .Case([&](math::RsqrtOp) { return unary([](double x) { return 1.0 / std::sqrt(x); }); })
      .Case([&](math::TanhOp) { return unary([](double x) { return std::tanh(x); }); })
      .Case([&](math::ErfOp) { return unary([](double x) { return std::erf(x); }); })
      .Case([&](math::AbsFOp) { return unary([](double x) { return std::fabs(x); }); })
      .Case([&](math::SinOp) { return unary([](double x) { return std::sin(x); }); })
      .Case([&](math::CosOp) { return unary([](double x) { return std::cos(x); }); })
      .Default([](Operation *) { return std::nullopt; });
}


//===----------------------------------------------------------------------===//
// Structured ops and loops
//===----------------------------------------------------------------------===//

std::optional<OpFailure>
Interpreter::evaluateLinalg(linalg::LinalgOp op, ArrayRef<const Array *> in,
                            Values &values, SmallVector<Array> &outs) {
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  unsigned numLoops = op.getNumLoops();
  // Loop bounds from the operand dims each loop indexes directly.
  SmallVector<int64_t> bounds(numLoops, -1);
  for (auto [operandIndex, map] : llvm::enumerate(maps))
    for (auto [d, expr] : llvm::enumerate(map.getResults()))
      if (auto dim = dyn_cast<AffineDimExpr>(expr)) {
        int64_t size = in[operandIndex]->shape[d];
        int64_t &bound = bounds[dim.getPosition()];
        if (bound >= 0 && bound != size)
          return fail(llvm::formatv("loop {0} has run-time extents {1} and "
                                    "{2} in different operands",
                                    dim.getPosition(), bound, size));
        bound = size;
      }
  for (int64_t b : bounds)
    if (b < 0)
      return fail("a loop bound is not given by any operand dimension");
  unsigned numInputs = op.getNumDpsInputs();
  outs.clear();
  for (unsigned i = numInputs; i < in.size(); ++i)
    outs.push_back(*in[i]);
  Block *body = op.getBlock();
  SmallVector<SmallVector<int64_t, 4>> strides;
  for (const Array *array : in)
    strides.push_back(array->strides());
  SmallVector<int64_t> savedPoint = linalgPoint;
  Failure failure;
  forEachIndex(bounds, [&](ArrayRef<int64_t> point) {
    if (failure)
      return;
    linalgPoint.assign(point.begin(), point.end());
    SmallVector<int64_t> flat(in.size());
    for (auto [i, map] : llvm::enumerate(maps)) {
      SmallVector<int64_t> index = map.compose(point);
      flat[i] = offsetOf(index, strides[i]);
      const Array &source = i < numInputs ? *in[i] : outs[i - numInputs];
      values[body->getArgument(i)] = Array::scalar(source.data[flat[i]]);
    }
    for (Operation &inner : *body) {
      if (auto yield = dyn_cast<linalg::YieldOp>(inner)) {
        for (auto [j, value] : llvm::enumerate(yield.getOperands()))
          outs[j].data[flat[numInputs + j]] = values[value].data[0];
        break;
      }
      if (auto f = evaluate(&inner, values)) {
        failure = f;
        return;
      }
    }
  });
  linalgPoint = savedPoint;
  return failure;
}

std::optional<OpFailure> Interpreter::evaluateFor(scf::ForOp op,
                                                  Values &values) {
  auto scalar = [&](Value v) {
    return static_cast<int64_t>(values.find(v)->second.data[0]);
  };
  int64_t lower = scalar(op.getLowerBound()),
          upper = scalar(op.getUpperBound()), step = scalar(op.getStep());
  if (step <= 0)
    return fail(llvm::formatv("scf.for with step {0}", step));
  std::vector<Array> carried;
  for (Value init : op.getInitArgs())
    carried.push_back(values.find(init)->second);
  Block &body = *op.getBody();
  for (int64_t i = lower; i < upper; i += step) {
    values[op.getInductionVar()] = Array::scalar(static_cast<double>(i));
    for (auto [arg, value] : llvm::zip(op.getRegionIterArgs(), carried))
      values[arg] = value;
    auto results = runBlock(body, values);
    if (!results)
      return fail(llvm::toString(results.takeError()));
    carried = std::move(*results);
  }
  for (auto [result, value] : llvm::zip(op.getResults(), carried))
    values[result] = value;
  return std::nullopt;
}

std::optional<OpFailure> Interpreter::evaluateForall(scf::ForallOp op,
                                                     Values &values) {
  SmallVector<int64_t> lower, upper, steps;
  for (OpFoldResult v : op.getMixedLowerBound())
    lower.push_back(foldedInt(v, values));
  for (OpFoldResult v : op.getMixedUpperBound())
    upper.push_back(foldedInt(v, values));
  for (OpFoldResult v : op.getMixedStep())
    steps.push_back(foldedInt(v, values));
  SmallVector<int64_t> counts;
  for (auto [l, u, s] : llvm::zip(lower, upper, steps)) {
    if (s <= 0)
      return fail("scf.forall with a non-positive step");
    counts.push_back(u > l ? (u - l + s - 1) / s : 0);
  }
  std::vector<Array> shared;
  for (Value init : op.getOutputs())
    shared.push_back(values.find(init)->second);
  Block &body = *op.getBody();
  Failure failure;
  // The reference runs the iterations in order; they must not depend on it.
  forEachIndex(counts, [&](ArrayRef<int64_t> index) {
    if (failure)
      return;
    for (auto [d, iv] : llvm::enumerate(op.getInductionVars()))
      values[iv] = Array::scalar(lower[d] + index[d] * steps[d]);
    for (auto [arg, value] : llvm::zip(op.getRegionIterArgs(), shared))
      values[arg] = value;
    for (Operation &inner : body.without_terminator())
      if (auto f = evaluate(&inner, values)) {
        failure = f;
        return;
      }
    for (Operation &yielding : op.getTerminator().getYieldingOps()) {
      auto insert = cast<tensor::ParallelInsertSliceOp>(yielding);
      auto [offsets, sizes, strides] =
          sliceBox(cast<OffsetSizeAndStrideOpInterface>(yielding), values);
      unsigned which =
          cast<BlockArgument>(insert.getDest()).getArgNumber() -
          op.getInductionVars().size();
      Array &dest = shared[which];
      const Array &source = values.find(insert.getSource())->second;
      if (auto f = checkBox(dest.shape, offsets, sizes, strides)) {
        failure = f;
        return;
      }
      SmallVector<int64_t, 4> destStrides = dest.strides();
      int64_t flat = 0;
      forEachIndex(sizes, [&](ArrayRef<int64_t> at) {
        int64_t offset = 0;
        for (size_t d = 0; d < at.size(); ++d)
          offset += (offsets[d] + at[d] * strides[d]) * destStrides[d];
        dest.data[offset] = source.data[flat++];
      });
    }
  });
  if (failure)
    return failure;
  for (auto [result, value] : llvm::zip(op.getResults(), shared))
    values[result] = value;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

/// Evaluates the arith and tensor ops that make, reshape, read and write
/// whole tensors (constant, dim, empty, cast, splat, extract, slices,
/// reshapes, concat, select, insert); None when `op` is not one of them.
static std::optional<Failure>
evalTensorOp(Operation *op, ArrayRef<const Array *> in, ValueMap &values) {
  auto set = [&](unsigned i, Array array) {
    values[op->getResult(i)] = std::move(array);
  };
  return llvm::TypeSwitch<Operation *, std::optional<Failure>>(op)
      .Case([&](arith::ConstantOp c) -> Failure {
        auto value = constantArray(c.getValue(), c.getType());
        if (!value)
          return fail("unsupported constant");
        set(0, std::move(*value));
        return std::nullopt;
      })
      .Case([&](tensor::DimOp d) -> Failure {
        int64_t index = static_cast<int64_t>(in[1]->data[0]);
        if (index < 0 || index >= in[0]->rank())
          return fail(llvm::formatv("dim {0} of a rank-{1} tensor", index,
                                    in[0]->rank()));
        set(0, Array::scalar(in[0]->shape[index]));
        return std::nullopt;
      })
      .Case([&](tensor::EmptyOp e) -> Failure {
        SmallVector<int64_t> shape;
        unsigned dynamic = 0;
        for (int64_t d : e.getType().getShape())
          shape.push_back(ShapedType::isDynamic(d)
                              ? static_cast<int64_t>(in[dynamic++]->data[0])
                              : d);
        auto n = numElementsOf(shape);
        if (!n)
          return fail("tensor.empty of shape " + shapeString(shape) + ": " +
                      llvm::toString(n.takeError()));
        // Poisoned: a read of an element nobody wrote shows up as NaN.
        set(0, Array(shape, std::numeric_limits<double>::quiet_NaN()));
        return std::nullopt;
      })
      .Case([&](tensor::CastOp) -> Failure {
        set(0, *in[0]);
        return std::nullopt;
      })
      .Case([&](tensor::SplatOp) -> Failure {
        auto type = cast<RankedTensorType>(op->getResult(0).getType());
        SmallVector<int64_t> shape;
        unsigned dynamic = 1;
        for (int64_t d : type.getShape())
          shape.push_back(ShapedType::isDynamic(d)
                              ? static_cast<int64_t>(in[dynamic++]->data[0])
                              : d);
        set(0, Array(shape, in[0]->data[0]));
        return std::nullopt;
      })
      .Case([&](tensor::ExtractOp e) -> Failure {
        SmallVector<int64_t> index;
        for (unsigned i = 1; i < in.size(); ++i)
          index.push_back(static_cast<int64_t>(in[i]->data[0]));
        SmallVector<int64_t> ones(index.size(), 1);
        if (Failure f = checkBox(in[0]->shape, index, ones, ones))
          return f;
        set(0, Array::scalar(in[0]->data[offsetOf(index, in[0]->strides())]));
        return std::nullopt;
      })
      .Case([&](tensor::ExtractSliceOp s) -> Failure {
        auto [offsets, sizes, strides] = sliceBox(s, values);
        if (Failure f = checkBox(in[0]->shape, offsets, sizes, strides))
          return f;
        Array out = extractBox(*in[0], offsets, sizes, strides);
        // Rank-reducing slices drop unit dims.
        llvm::SmallBitVector dropped = s.getDroppedDims();
        SmallVector<int64_t, 4> shape;
        for (auto [d, size] : llvm::enumerate(sizes))
          if (!dropped.test(d))
            shape.push_back(size);
        out.shape = shape;
        set(0, std::move(out));
        return std::nullopt;
      })
      .Case([&](tensor::InsertSliceOp s) -> Failure {
        auto [offsets, sizes, strides] = sliceBox(s, values);
        const Array &source = *in[0];
        Array out = *in[1];
        if (Failure f = checkBox(out.shape, offsets, sizes, strides))
          return f;
        auto n = numElementsOf(sizes);
        if (!n || *n != source.numElements())
          return fail("inserted slice has " +
                      std::to_string(source.numElements()) +
                      " elements, the box " + shapeString(sizes) + " differs");
        SmallVector<int64_t, 4> destStrides = out.strides();
        int64_t flat = 0;
        forEachIndex(sizes, [&](ArrayRef<int64_t> index) {
          int64_t offset = 0;
          for (size_t d = 0; d < index.size(); ++d)
            offset += (offsets[d] + index[d] * strides[d]) * destStrides[d];
          out.data[offset] = source.data[flat++];
        });
        set(0, std::move(out));
        return std::nullopt;
      })
      .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
          [&](auto reshape) -> Failure {
            auto type = cast<RankedTensorType>(reshape.getType());
            SmallVector<int64_t> shape;
            if constexpr (std::is_same_v<decltype(reshape),
                                         tensor::ExpandShapeOp>) {
              for (OpFoldResult v : reshape.getMixedOutputShape())
                shape.push_back(foldedInt(v, values));
            } else {
              for (const ReassociationIndices &group :
                   reshape.getReassociationIndices()) {
                int64_t size = 1;
                for (int64_t d : group)
                  size *= in[0]->shape[d];
                shape.push_back(size);
              }
            }
            (void)type;
            auto n = numElementsOf(shape);
            if (!n || *n != in[0]->numElements())
              return fail("reshape of " + shapeString(in[0]->shape) + " to " +
                          shapeString(shape) +
                          " changes the number of elements");
            Array out = *in[0];
            out.shape.assign(shape.begin(), shape.end());
            set(0, std::move(out));
            return std::nullopt;
          })
      .Case([&](tensor::ConcatOp c) -> Failure {
        int64_t dim = c.getDim();
        SmallVector<int64_t, 4> shape(in[0]->shape);
        shape[dim] = 0;
        for (const Array *a : in) {
          for (int64_t d = 0; d < a->rank(); ++d)
            if (d != dim && a->shape[d] != shape[d])
              return fail("concatenated tensors differ in dim " +
                          std::to_string(d));
          shape[dim] += a->shape[dim];
        }
        Array out(shape);
        SmallVector<int64_t, 4> outStrides = out.strides();
        int64_t at = 0;
        for (const Array *a : in) {
          int64_t flat = 0;
          forEachIndex(a->shape, [&](ArrayRef<int64_t> index) {
            SmallVector<int64_t, 4> target(index);
            target[dim] += at;
            out.data[offsetOf(target, outStrides)] = a->data[flat++];
          });
          at += a->shape[dim];
        }
        set(0, std::move(out));
        return std::nullopt;
      })
      .Case([&](arith::SelectOp) -> Failure {
        // Scalar or element-wise condition.
        Array out = *in[1];
        for (int64_t i = 0; i < out.numElements(); ++i) {
          double c = in[0]->data[in[0]->numElements() == 1 ? 0 : i];
          out.data[i] = c != 0.0 ? in[1]->data[i] : in[2]->data[i];
        }
        set(0, std::move(out));
        return std::nullopt;
      })
      .Case([&](tensor::InsertOp insert) -> Failure {
        SmallVector<int64_t> index;
        for (unsigned i = 2; i < in.size(); ++i)
          index.push_back(static_cast<int64_t>(in[i]->data[0]));
        SmallVector<int64_t> ones(index.size(), 1);
        if (Failure f = checkBox(in[1]->shape, index, ones, ones))
          return f;
        Array out = *in[1];
        out.data[offsetOf(index, out.strides())] = in[0]->data[0];
        set(0, std::move(out));
        return std::nullopt;
      })
      .Default([](Operation *) { return std::nullopt; });
}

/// Evaluates the model ops of the glint dialect (mixer, embedding, linear,
/// norms, act, conv1d, token shift, recurrence, attention, rotary); None when
/// `op` is not one of them.
std::optional<std::optional<OpFailure>>
Interpreter::evaluateGlintOp(Operation *op, ArrayRef<const Array *> in,
                             Values &values) {
  auto get = [&](Value v) -> const Array * {
    if (!v)
      return nullptr;
    return &values.find(v)->second;
  };
  auto set = [&](unsigned i, Array array) {
    values[op->getResult(i)] = std::move(array);
  };
  auto single = [&](auto fn) -> Failure {
    Array out;
    if (Failure f = fn(out))
      return f;
    set(0, std::move(out));
    return std::nullopt;
  };
  // Ops with a streaming state: second result only when requested.
  auto withState = [&](Value finalStateResult, auto fn) -> Failure {
    Array out, state;
    if (Failure f = fn(out, finalStateResult ? &state : nullptr))
      return f;
    set(0, std::move(out));
    if (finalStateResult)
      set(1, std::move(state));
    return std::nullopt;
  };

  return llvm::TypeSwitch<Operation *, std::optional<Failure>>(op)
      .Case([&](glint::MixerOp mixer) -> Failure {
        values[mixer.getValueArgument()] = *in[0];
        auto results = runBlock(mixer.getBody().front(), values);
        if (!results)
          return fail(llvm::toString(results.takeError()));
        set(0, std::move((*results)[0]));
        return std::nullopt;
      })
      .Case([&](glint::EmbeddingOp e) {
        return single([&](Array &out) {
          return evalEmbedding(*get(e.getIds()), *get(e.getTable()), out);
        });
      })
      .Case([&](glint::LinearOp l) {
        return single([&](Array &out) {
          return evalLinear(l, *get(l.getInput()), *get(l.getWeight()),
                            get(l.getBias()), out);
        });
      })
      .Case([&](glint::RMSNormOp n) {
        return single([&](Array &out) {
          return evalNorm(*get(n.getInput()), get(n.getWeight()), nullptr,
                          n.getEpsilon().convertToDouble(),
                          n.getWeightOffset().convertToDouble(), 1,
                          /*subtractMean=*/false, out);
        });
      })
      .Case([&](glint::LayerNormOp n) {
        return single([&](Array &out) {
          return evalNorm(*get(n.getInput()), get(n.getWeight()),
                          get(n.getBias()), n.getEpsilon().convertToDouble(),
                          0.0, 1, /*subtractMean=*/true, out);
        });
      })
      .Case([&](glint::GroupNormOp n) {
        return single([&](Array &out) {
          return evalNorm(*get(n.getInput()), get(n.getWeight()),
                          get(n.getBias()), n.getEpsilon().convertToDouble(),
                          0.0, n.getGroups(), /*subtractMean=*/true, out);
        });
      })
      .Case([&](glint::ActOp a) {
        return single([&](Array &out) -> Failure {
          out = mapArray(*in[0],
                         [&](double x) { return activation(a.getKind(), x); });
          return std::nullopt;
        });
      })
      .Case([&](glint::Conv1dOp c) {
        return withState(c.getFinalState(), [&](Array &out, Array *state) {
          return evalConv1d(c, *get(c.getInput()), *get(c.getWeight()),
                            get(c.getBias()), get(c.getInitialState()), out,
                            state);
        });
      })
      .Case([&](glint::TokenShiftOp t) {
        return withState(t.getFinalState(), [&](Array &out, Array *state) {
          return evalTokenShift(*get(t.getInput()), get(t.getInitialState()),
                                out, state);
        });
      })
      .Case([&](glint::RecurrenceOp r) {
        return withState(r.getFinalState(), [&](Array &out, Array *state) {
          RecurrenceArgs args{get(r.getQ()),     *get(r.getK()),
                              *get(r.getV()),    *get(r.getLogDecay()),
                              get(r.getDelta()), get(r.getBonus()),
                              get(r.getSkip()),  get(r.getInitialState())};
          return evalRecurrence(r, args, out, state);
        });
      })
      .Case([&](glint::AttentionOp a) -> Failure {
        Array out, keys, values;
        bool caches = bool(a.getFinalKeyCache());
        double position = a.getPosition() ? get(a.getPosition())->data[0] : 0;
        if (Failure f = evalAttention(
                a, *get(a.getQ()), *get(a.getK()), *get(a.getV()),
                get(a.getKeyCache()), get(a.getValueCache()), position, out,
                caches ? &keys : nullptr, caches ? &values : nullptr))
          return f;
        set(0, std::move(out));
        if (caches) {
          set(1, std::move(keys));
          set(2, std::move(values));
        }
        return std::nullopt;
      })
      .Case([&](glint::RecurrenceGradOp r) -> Failure {
        RecurrenceGradArgs args{get(r.getQ()),     *get(r.getK()),
                                *get(r.getV()),    *get(r.getLogDecay()),
                                get(r.getDelta()), get(r.getBonus()),
                                get(r.getSkip()),  *get(r.getGrad())};
        RecurrenceGrads grads;
        if (Failure f = evalRecurrenceGrad(r, args, grads))
          return f;
        set(0, std::move(grads.q));
        set(1, std::move(grads.k));
        set(2, std::move(grads.v));
        set(3, std::move(grads.logDecay));
        set(4, std::move(grads.delta));
        return std::nullopt;
      })
      .Case([&](glint::AttentionGradOp a) -> Failure {
        Array dq, dk, dv;
        if (Failure f = evalAttentionGrad(a, *get(a.getQ()), *get(a.getK()),
                                          *get(a.getV()), *get(a.getGrad()), dq,
                                          dk, dv))
          return f;
        set(0, std::move(dq));
        set(1, std::move(dk));
        set(2, std::move(dv));
        return std::nullopt;
      })
      .Case([&](glint::RotaryOp r) {
        return single([&](Array &out) {
          double offset = r.getOffset() ? get(r.getOffset())->data[0] : 0.0;
          return evalRotary(r, *get(r.getInput()), offset, out);
        });
      })
      .Default([](Operation *) { return std::nullopt; });
}

/// The array an ml_program.global_load_const reads: a weight loaded before,
/// an external weight from the weight provider (checked against the global's
/// type and for non-finite values), or the global's own value.
std::optional<OpFailure>
Interpreter::loadWeight(ml_program::GlobalLoadConstOp load, Array &out) {
  auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
      load, load.getGlobalAttr());
  if (!global)
    return fail("no ml_program.global named " +
                load.getGlobal().getLeafReference().getValue());
  StringRef name = global.getSymName();
  if (auto cached = weightCache.find(name); cached != weightCache.end()) {
    out = cached->second;
    return std::nullopt;
  }
  Array array;
  if (isa_and_nonnull<ml_program::ExternAttr>(global.getValueAttr())) {
    auto type = dyn_cast<RankedTensorType>(global.getType());
    if (!type || !type.hasStaticShape())
      return fail("external weight '" + name + "' needs a static tensor type");
    auto loaded = weights(name, type.getShape());
    if (!loaded)
      return fail(llvm::toString(loaded.takeError()));
    array = std::move(*loaded);
    if (array.shape != SmallVector<int64_t, 4>(type.getShape()))
      return fail("weight '" + name + "' has shape " +
                  shapeString(array.shape) + " but the IR declares " +
                  shapeString(type.getShape()));
    for (auto [i, x] : llvm::enumerate(array.data))
      if (!std::isfinite(x))
        return fail(llvm::formatv("weight '{0}' holds a non-finite "
                                  "value ({1}) at flat index {2}",
                                  name, x, i));
  } else if (auto value =
                 constantArray(global.getValueAttr(), global.getType())) {
    array = std::move(*value);
  } else {
    return fail("global '" + name + "' has no usable value");
  }
  weightCache[name] = array;
  out = std::move(array);
  return std::nullopt;
}

std::optional<OpFailure> Interpreter::evaluate(Operation *op, Values &values) {
  SmallVector<const Array *> in;
  for (Value operand : op->getOperands()) {
    if (isa<glint::MapType>(operand.getType())) {
      in.push_back(nullptr); // held in `maps`
      continue;
    }
    auto it = values.find(operand);
    if (it == values.end())
      return fail("operand defined outside the evaluated function");
    in.push_back(&it->second);
  }
  auto set = [&](unsigned i, Array array) {
    values[op->getResult(i)] = std::move(array);
  };

  if (auto handled = evaluateAttentionForm(op, values))
    return *handled;

  if (Array out; auto handled = evalElementwise(op, in, out)) {
    if (*handled)
      return *handled;
    set(0, std::move(out));
    return std::nullopt;
  }

  if (auto handled = evaluateGlintOp(op, in, values))
    return *handled;

  if (auto handled = evalTensorOp(op, in, values))
    return *handled;

  return llvm::TypeSwitch<Operation *, Failure>(op)
      .Case([&](ml_program::GlobalLoadConstOp load) -> Failure {
        Array array;
        if (Failure f = loadWeight(load, array))
          return f;
        set(0, std::move(array));
        return std::nullopt;
      })
      // linalg structure, loops, calls.
      .Case([&](linalg::IndexOp index) -> Failure {
        if (index.getDim() >= linalgPoint.size())
          return fail("linalg.index outside a linalg op body");
        set(0, Array::scalar(linalgPoint[index.getDim()]));
        return std::nullopt;
      })
      .Case([&](linalg::LinalgOp linalgOp) -> Failure {
        SmallVector<Array> outs;
        if (Failure f = evaluateLinalg(linalgOp, in, values, outs))
          return f;
        for (auto [i, out] : llvm::enumerate(outs))
          set(i, std::move(out));
        return std::nullopt;
      })
      .Case([&](scf::ForOp forOp) { return evaluateFor(forOp, values); })
      .Case(
          [&](scf::ForallOp forall) { return evaluateForall(forall, values); })
      .Case([&](scf::IfOp ifOp) -> Failure {
        Region &region = in[0]->data[0] != 0.0 ? ifOp.getThenRegion()
                                                : ifOp.getElseRegion();
        if (region.empty())
          return std::nullopt;
        auto results = runBlock(region.front(), values);
        if (!results)
          return fail(llvm::toString(results.takeError()));
        for (auto [i, r] : llvm::enumerate(*results))
          set(i, std::move(r));
        return std::nullopt;
      })
      .Case([&](func::CallOp call) -> Failure {
        auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
            call, call.getCalleeAttr());
        if (!callee)
          return fail("unknown callee @" + call.getCallee());
        SmallVector<Array> args;
        for (const Array *a : in)
          args.push_back(*a);
        auto results = callFunction(callee, args);
        if (!results)
          return fail(llvm::toString(results.takeError()));
        for (auto [i, r] : llvm::enumerate(*results))
          set(i, std::move(r));
        return std::nullopt;
      })
      .Default([&](Operation *) {
        return fail("the reference evaluator does not support this op");
      });
}

//===----------------------------------------------------------------------===//
// The attention form
//===----------------------------------------------------------------------===//

/// φ(x) with act(x) = φ(x)·x.
static double activationGain(glint::ActKind kind, double x) {
  using glint::ActKind;
  switch (kind) {
  case ActKind::silu:
    return sigmoid(x);
  case ActKind::gelu:
    return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
  case ActKind::gelu_tanh: {
    const double c = std::sqrt(2.0 / M_PI);
    return 0.5 * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
  }
  case ActKind::relu:
    return x > 0.0 ? 1.0 : 0.0;
  case ActKind::relu_square:
    return x > 0.0 ? x : 0.0;
  case ActKind::tanh:
    return x == 0.0 ? 1.0 : std::tanh(x) / x;
  default:
    return std::numeric_limits<double>::quiet_NaN();
  }
}

std::optional<std::optional<OpFailure>>
Interpreter::evaluateAttentionForm(Operation *op, Values &values) {
  if (!isa<glint::MapIdentityOp, glint::MapConvOp, glint::MapShiftOp,
           glint::MapScaleOp, glint::MapScanOp, glint::MapAttentionOp,
           glint::MapAddOp, glint::MapReshapeOp, glint::MapReduceOp,
           glint::MapApplyOp, glint::MapAttributionOp, glint::ActGainOp,
           glint::NormStatsOp>(op))
    return std::nullopt;
  auto array = [&](Value v) -> const Array * {
    return v ? &values.find(v)->second : nullptr;
  };
  auto optional = [&](Value v) -> std::optional<Array> {
    if (!v)
      return std::nullopt;
    return *array(v);
  };
  auto setMap = [&](Expected<MapRef> map) -> Failure {
    if (!map)
      return fail(llvm::toString(map.takeError()));
    maps[op->getResult(0)] = std::move(*map);
    return std::nullopt;
  };
  auto setArray = [&](Expected<Array> result) -> Failure {
    if (!result)
      return fail(llvm::toString(result.takeError()));
    values[op->getResult(0)] = std::move(*result);
    return std::nullopt;
  };
  auto map = [&](Value v) { return maps.find(v)->second; };

  return llvm::TypeSwitch<Operation *, Failure>(op)
      .Case([&](glint::MapIdentityOp m) {
        return setMap(mapIdentity(array(m.getInput())->shape));
      })
      .Case([&](glint::MapConvOp m) {
        return setMap(
            mapConv(map(m.getMap()), *array(m.getWeight()), m.getReverse()));
      })
      .Case([&](glint::MapShiftOp m) {
        return setMap(mapShift(map(m.getMap())));
      })
      .Case([&](glint::MapScaleOp m) {
        return setMap(mapScale(map(m.getMap()), *array(m.getGain())));
      })
      .Case([&](glint::MapScanOp m) {
        ScanControls controls{optional(m.getQ()),
                              *array(m.getK()),
                              *array(m.getLogDecay()),
                              optional(m.getDelta()),
                              optional(m.getBonus()),
                              optional(m.getSkip()),
                              m.getReverse(),
                              m.getNormalize()};
        return setMap(mapScan(map(m.getMap()), std::move(controls)));
      })
      .Case([&](glint::MapAttentionOp m) {
        std::optional<int64_t> window;
        if (m.getWindowAttr())
          window = m.getWindowAttr().getInt();
        return setMap(mapAttention(map(m.getMap()), *array(m.getQ()),
                                   *array(m.getK()),
                                   m.getScale().convertToDouble(), window));
      })
      .Case([&](glint::MapAddOp m) {
        return setMap(mapAdd(map(m.getLhs()), map(m.getRhs())));
      })
      .Case([&](glint::MapReshapeOp m) {
        MapRef in = map(m.getMap());
        auto type = cast<glint::MapType>(m.getResult().getType());
        SmallVector<int64_t> shape = {mapValueShape(in)[0],
                                      mapValueShape(in)[1]};
        llvm::append_range(shape, type.getValueType().getShape().drop_front(2));
        return setMap(mapReshape(in, shape));
      })
      .Case([&](glint::MapReduceOp m) {
        static const Aggregate kinds[] = {Aggregate::Mean, Aggregate::MeanAbs,
                                          Aggregate::Sum, Aggregate::Full};
        SmallVector<int64_t> channels;
        if (auto selected = m.getChannelsAttr())
          llvm::append_range(channels, selected.asArrayRef());
        std::optional<int64_t> row;
        if (m.getRowAttr())
          row = m.getRowAttr().getInt();
        return setArray(reduceMap(map(m.getMap()),
                                  kinds[static_cast<int>(m.getAggregate())],
                                  channels, row));
      })
      .Case([&](glint::MapApplyOp m) {
        return setArray(applyMap(map(m.getMap()), *array(m.getInput())));
      })
      .Case([&](glint::MapAttributionOp m) {
        return setArray(attributeMap(map(m.getMap()), *array(m.getGrad()),
                                     *array(m.getInput())));
      })
      .Case([&](glint::ActGainOp g) -> Failure {
        glint::ActKind kind = g.getKind();
        values[g.getResult()] = mapArray(
            *array(g.getInput()), [&](double x) { return activationGain(kind, x); });
        return std::nullopt;
      })
      .Case([&](glint::NormStatsOp n) -> Failure {
        Array gain, mean;
        if (Failure f = normStats(*array(n.getInput()), array(n.getWeight()),
                                  n.getEpsilon().convertToDouble(),
                                  n.getWeightOffset().convertToDouble(),
                                  n.getGroups(), n.getCenter(), gain, mean))
          return f;
        values[n.getGain()] = std::move(gain);
        values[n.getMean()] = std::move(mean);
        return std::nullopt;
      });
}

//===----------------------------------------------------------------------===//
// ReferenceEvaluator
//===----------------------------------------------------------------------===//

WeightProvider mlir::glint::reference::weightsFrom(
    const mlir::glint::runtime::Checkpoint &checkpoint) {
  return [&checkpoint](StringRef name,
                       ArrayRef<int64_t> shape) -> Expected<Array> {
    auto data = checkpoint.loadF64(name, shape);
    if (!data)
      return data.takeError();
    Array array;
    array.shape.assign(shape.begin(), shape.end());
    array.data = std::move(*data);
    return array;
  };
}

WeightProvider mlir::glint::reference::noWeights() {
  return [](StringRef name, ArrayRef<int64_t>) -> Expected<Array> {
    return llvm::createStringError("no weight " + name.str());
  };
}

Array mlir::glint::reference::fromRunArray(
    const glint::runtime::RunArray &array) {
  Array out;
  out.shape.assign(array.shape.begin(), array.shape.end());
  out.data = array.data;
  return out;
}

glint::runtime::RunArray mlir::glint::reference::toRunArray(Array array,
                                                            bool integer) {
  runtime::RunArray out;
  out.shape.assign(array.shape.begin(), array.shape.end());
  out.data = std::move(array.data);
  out.integer = integer;
  return out;
}

ReferenceEvaluator::ReferenceEvaluator(ModuleOp module, WeightProvider weights)
    : module(module), weights(std::move(weights)) {}

Expected<std::vector<Array>>
ReferenceEvaluator::run(StringRef name, ArrayRef<Array> arguments,
                        TraceCallback trace) {
  auto fn = module.lookupSymbol<func::FuncOp>(name);
  if (!fn)
    return llvm::createStringError(
        llvm::formatv("the module has no function @{0}", name));
  Interpreter interpreter(module, weights, trace);
  if (progress && !fn.isExternal())
    interpreter.reportProgress(fn.getBody().front(), progress);
  auto results = interpreter.callFunction(fn, arguments);
  if (!results)
    return results.takeError();
  for (auto [i, result] : llvm::enumerate(*results))
    for (double x : result.data)
      if (!std::isfinite(x))
        return llvm::createStringError(llvm::formatv(
            "function @{0}: result #{1} holds a non-finite value ({2})", name,
            i, x));
  return results;
}
