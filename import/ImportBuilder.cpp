//===- ImportBuilder.cpp - building glint model IR ------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "runtime/io/ModelInfo.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;
using mlir::glint::runtime::shapeString;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Config
//===----------------------------------------------------------------------===//

/// "string", "list", ... for errors about a value of the wrong kind.
static std::string kindName(const json::Value &v) {
  switch (v.kind()) {
  case json::Value::Null:
    return "null";
  case json::Value::Boolean:
    return "boolean";
  case json::Value::Number:
    return "number";
  case json::Value::String:
    return "string";
  case json::Value::Array:
    return "list";
  case json::Value::Object:
    return "object";
  }
  return "value";
}

void Config::fail(const Twine &message) {
  if (!error)
    error = ("config.json: " + message + " (" + architecture + ")").str();
}

const json::Value *Config::lookup(StringRef key, bool required) {
  const json::Value *v = object.get(key);
  if ((!v || v->kind() == json::Value::Null) && required)
    fail("missing key '" + key + "'");
  return v && v->kind() != json::Value::Null ? v : nullptr;
}

int64_t Config::getInt(StringRef key, std::optional<int64_t> fallback) {
  const json::Value *v = lookup(key, !fallback);
  if (!v)
    return fallback.value_or(0);
  if (auto i = v->getAsInteger())
    return *i;
  // Some configs write integers as 16.0.
  constexpr double kExact = 9007199254740992.0; // 2^53
  if (auto d = v->getAsNumber();
      d && *d == std::floor(*d) && std::fabs(*d) <= kExact)
    return static_cast<int64_t>(*d);
  fail("key '" + key + "' should be an integer, not " +
       (v->getAsNumber() ? "a number with a fraction or beyond 2^53"
                         : "a " + kindName(*v)));
  return fallback.value_or(0);
}

int64_t Config::getSize(StringRef key, std::optional<int64_t> fallback) {
  bool hadError = error.has_value();
  int64_t size = getInt(key, fallback);
  if (!hadError && !error && (size < 1 || size > kMaxConfigSize))
    fail(llvm::formatv("key '{0}' is {1}{2}; expected a size from 1 to {3}",
                       key, size, has(key) ? "" : " (its default)",
                       kMaxConfigSize));
  // Later arithmetic sees an in-range placeholder, never the bad value.
  return error ? 1 : size;
}

double Config::getFloat(StringRef key, std::optional<double> fallback) {
  const json::Value *v = lookup(key, !fallback);
  if (!v)
    return fallback.value_or(0.0);
  if (auto d = v->getAsNumber())
    return *d;
  fail("key '" + key + "' should be a number");
  return fallback.value_or(0.0);
}

bool Config::getBool(StringRef key, std::optional<bool> fallback) {
  const json::Value *v = lookup(key, !fallback);
  if (!v)
    return fallback.value_or(false);
  if (auto b = v->getAsBoolean())
    return *b;
  fail("key '" + key + "' should be true or false");
  return fallback.value_or(false);
}

std::string Config::getString(StringRef key,
                              std::optional<std::string> fallback) {
  const json::Value *v = lookup(key, !fallback);
  if (!v)
    return fallback.value_or("");
  if (auto s = v->getAsString())
    return s->str();
  fail("key '" + key + "' should be a string");
  return fallback.value_or("");
}

std::vector<std::string> Config::getStringList(StringRef key) {
  std::vector<std::string> result;
  const json::Value *v = lookup(key, true);
  if (!v)
    return result;
  const json::Array *array = v->getAsArray();
  if (!array) {
    fail("key '" + key + "' should be a list of strings");
    return result;
  }
  for (const json::Value &item : *array) {
    auto s = item.getAsString();
    if (!s) {
      fail("key '" + key + "' should be a list of strings");
      return {};
    }
    result.push_back(s->str());
  }
  return result;
}

//===----------------------------------------------------------------------===//
// ImportBuilder
//===----------------------------------------------------------------------===//

ImportBuilder::ImportBuilder(MLIRContext *context,
                             const mlir::glint::runtime::Checkpoint &checkpoint,
                             StringRef sourceName)
    : context(context), checkpoint(checkpoint), source(sourceName.str()),
      builder(context),
      location(FileLineColLoc::get(context, sourceName, 0, 0)),
      f32(Float32Type::get(context)) {
  module = ModuleOp::create(location);
}

void ImportBuilder::fail(const Twine &message) {
  if (!error)
    error = message.str();
}

Value ImportBuilder::beginForward(RankedTensorType inputType) {
  builder.setInsertionPointToEnd(module->getBody());
  // The result type is fixed in finish(), once the body is built.
  forward = func::FuncOp::create(builder, location, "forward",
                                 builder.getFunctionType({inputType}, {}));
  Block *entry = forward.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  Value input = entry->getArgument(0);
  batchSize = tensor::DimOp::create(builder, location, input, 0);
  if (inputType.getRank() >= 2 && inputType.isDynamicDim(1))
    seqSize = tensor::DimOp::create(builder, location, input, 1);
  return input;
}

Value ImportBuilder::beginTokenForward() {
  return beginForward(RankedTensorType::get(
      {ShapedType::kDynamic, ShapedType::kDynamic},
      IntegerType::get(context, 64)));
}

Expected<OwningOpRef<ModuleOp>> ImportBuilder::finish(Value result) {
  if (error)
    return llvm::createStringError(*error);
  // A tensor the model never reads means the config describes another
  // model than the checkpoint holds (most often fewer layers): importing it
  // would silently drop part of the model.
  std::vector<std::string> unused;
  for (const std::string &name : checkpoint.names())
    if (!loadedWeights.count(name))
      unused.push_back(name);
  if (!unused.empty()) {
    std::string listed;
    for (size_t i = 0; i < unused.size() && i < 3; ++i)
      listed += (i ? ", '" : "'") + unused[i] + "'";
    if (unused.size() > 3)
      listed += llvm::formatv(" and {0} more", unused.size() - 3).str();
    return llvm::createStringError(
        source + ": the model this config describes " + "does not use " +
        std::to_string(unused.size()) +
        " tensor(s) of the checkpoint: " + listed +
        " (does the config, e.g. its layer count, match the checkpoint?)");
  }
  func::ReturnOp::create(builder, location, result);
  forward.setFunctionType(builder.getFunctionType(
      forward.getArgumentTypes(), TypeRange{result.getType()}));
  std::string diagnostics;
  {
    ScopedDiagnosticHandler handler(context, [&](Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return success();
    });
    if (mlir::failed(verify(*module)))
      return llvm::createStringError(
          "internal error: the imported IR does not verify:\n" + diagnostics);
  }
  return std::move(module);
}

bool ImportBuilder::hasWeight(StringRef name) const {
  return checkpoint.find(name) != nullptr;
}

std::vector<int64_t> ImportBuilder::weightShape(StringRef name) {
  const auto *info = checkpoint.find(name);
  if (!info) {
    fail("the checkpoint has no weight '" + name + "'");
    return {};
  }
  return info->shape;
}

Value ImportBuilder::weight(StringRef name, ArrayRef<int64_t> shape) {
  auto type = RankedTensorType::get(shape, f32);
  if (Value cached = loadedWeights.lookup(name))
    return cached;
  const auto *info = checkpoint.find(name);
  if (!info)
    fail("the checkpoint has no weight '" + name + "' (expected shape " +
         shapeString(shape) + ")");
  else if (ArrayRef<int64_t>(info->shape) != shape)
    fail("weight '" + name + "' has shape " + shapeString(info->shape) +
         " in the checkpoint, but the config implies " + shapeString(shape));
  // Globals go before the function, loads to the top of its body, so that
  // every later use (inside mixers too) is dominated.
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPoint(forward);
  ml_program::GlobalOp::create(
      builder, location, builder.getStringAttr(name), TypeAttr::get(type),
      /*is_mutable=*/nullptr, ml_program::ExternAttr::get(context, type),
      builder.getStringAttr("private"));
  // After the most recent load (remembered: searching the body for it made
  // importing quadratic in the number of layers).
  Operation *anchor = lastLoad  ? lastLoad
                      : seqSize ? seqSize.getDefiningOp()
                                : batchSize.getDefiningOp();
  builder.setInsertionPointAfter(anchor);
  auto load = ml_program::GlobalLoadConstOp::create(
      builder, location, type, SymbolRefAttr::get(context, name));
  lastLoad = load;
  Value loaded = load;
  loadedWeights[name] = loaded;
  return loaded;
}

Value ImportBuilder::optionalWeight(StringRef name, ArrayRef<int64_t> shape) {
  if (!hasWeight(name))
    return {};
  return weight(name, shape);
}

int64_t ImportBuilder::lastDim(Value v) const {
  auto type = cast<RankedTensorType>(v.getType());
  return type.getDimSize(type.getRank() - 1);
}

RankedTensorType ImportBuilder::withLastDim(Value v, int64_t last) const {
  auto type = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape.back() = last;
  return RankedTensorType::get(shape, type.getElementType());
}

Value ImportBuilder::add(Value a, Value b) {
  return arith::AddFOp::create(builder, location, a, b);
}
Value ImportBuilder::sub(Value a, Value b) {
  return arith::SubFOp::create(builder, location, a, b);
}
Value ImportBuilder::mul(Value a, Value b) {
  return arith::MulFOp::create(builder, location, a, b);
}
Value ImportBuilder::div(Value a, Value b) {
  return arith::DivFOp::create(builder, location, a, b);
}

Value ImportBuilder::splat(double value, Value like) {
  auto type = cast<RankedTensorType>(like.getType());
  if (type.hasStaticShape())
    return arith::ConstantOp::create(
        builder, location,
        DenseElementsAttr::get(type, builder.getFloatAttr(f32, value)));
  SmallVector<Value> dims;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dims.push_back(tensor::DimOp::create(builder, location, like, i));
  Value scalar = arith::ConstantOp::create(builder, location,
                                           builder.getFloatAttr(f32, value));
  return tensor::SplatOp::create(builder, location, type, scalar, dims);
}

/// Broadcasts a [C] vector to the type of `x` ([..., C]).
static Value broadcastChannels(OpBuilder &builder, Location loc, Value x,
                               Value vector) {
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<Value> dims;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dims.push_back(tensor::DimOp::create(builder, loc, x, i));
  Value init = tensor::EmptyOp::create(builder, loc, type, dims);
  SmallVector<int64_t> added;
  for (int64_t i = 0; i + 1 < type.getRank(); ++i)
    added.push_back(i);
  return linalg::BroadcastOp::create(builder, loc, vector, init, added)
      ->getResult(0);
}

Value ImportBuilder::addChannelVector(Value x, Value vector) {
  return add(x, broadcastChannels(builder, location, x, vector));
}

Value ImportBuilder::mulChannelVector(Value x, Value vector) {
  return mul(x, broadcastChannels(builder, location, x, vector));
}

Value ImportBuilder::lerp(Value a, Value b, Value mix) {
  return add(a, mulChannelVector(sub(b, a), mix));
}

Value ImportBuilder::sliceLast(Value x, int64_t offset, int64_t size) {
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<OpFoldResult> offsets, sizes, strides;
  for (int64_t i = 0; i < type.getRank(); ++i) {
    bool last = i + 1 == type.getRank();
    offsets.push_back(builder.getIndexAttr(last ? offset : 0));
    if (last)
      sizes.push_back(builder.getIndexAttr(size));
    else if (type.isDynamicDim(i))
      sizes.push_back(
          tensor::DimOp::create(builder, location, x, i).getResult());
    else
      sizes.push_back(builder.getIndexAttr(type.getDimSize(i)));
    strides.push_back(builder.getIndexAttr(1));
  }
  return tensor::ExtractSliceOp::create(builder, location,
                                        withLastDim(x, size), x, offsets,
                                        sizes, strides);
}

Value ImportBuilder::splitHeads(Value x, int64_t heads) {
  auto type = cast<RankedTensorType>(x.getType());
  int64_t width = type.getDimSize(type.getRank() - 1);
  if (heads <= 0 || width % heads != 0) {
    fail(llvm::formatv("{0} channels do not split into {1} heads", width,
                       heads));
    heads = 1;
  }
  SmallVector<int64_t> shape(type.getShape().drop_back());
  shape.push_back(heads);
  shape.push_back(width / heads);
  auto result = RankedTensorType::get(shape, type.getElementType());
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i + 1 < type.getRank(); ++i)
    groups.push_back({i});
  groups.push_back({type.getRank() - 1, type.getRank()});
  SmallVector<OpFoldResult> outputShape;
  for (int64_t i = 0; i < result.getRank(); ++i)
    if (result.isDynamicDim(i))
      outputShape.push_back(
          tensor::DimOp::create(builder, location, x, i).getResult());
    else
      outputShape.push_back(builder.getIndexAttr(result.getDimSize(i)));
  return tensor::ExpandShapeOp::create(builder, location, result, x, groups,
                                       outputShape);
}

Value ImportBuilder::mergeHeads(Value x) {
  auto type = cast<RankedTensorType>(x.getType());
  int64_t rank = type.getRank();
  SmallVector<int64_t> shape(type.getShape().drop_back(2));
  shape.push_back(type.getDimSize(rank - 2) * type.getDimSize(rank - 1));
  SmallVector<ReassociationIndices> groups;
  for (int64_t i = 0; i + 2 < rank; ++i)
    groups.push_back({i});
  groups.push_back({rank - 2, rank - 1});
  return tensor::CollapseShapeOp::create(
      builder, location, RankedTensorType::get(shape, type.getElementType()),
      x, groups);
}

Value ImportBuilder::squeezeWeight(Value w, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(w.getType());
  if (type.getShape() == shape)
    return w;
  auto target = RankedTensorType::get(shape, type.getElementType());
  auto groups = getReassociationIndicesForCollapse(type.getShape(), shape);
  if (!groups) {
    fail("cannot reshape weight " + shapeString(type.getShape()) + " to " +
         shapeString(shape));
    return w;
  }
  return tensor::CollapseShapeOp::create(builder, location, target, w,
                                         *groups);
}

Value ImportBuilder::embedding(Value ids, Value table) {
  auto idsType = cast<RankedTensorType>(ids.getType());
  auto tableType = cast<RankedTensorType>(table.getType());
  auto type = RankedTensorType::get(
      {idsType.getDimSize(0), idsType.getDimSize(1), tableType.getDimSize(1)},
      f32);
  return EmbeddingOp::create(builder, location, type, ids, table);
}

Value ImportBuilder::linear(Value x, Value w, Value bias,
                            WeightLayout layout) {
  auto wType = cast<RankedTensorType>(w.getType());
  int64_t rank = wType.getRank();
  int64_t blocks = rank == 3 ? wType.getDimSize(0) : 1;
  int64_t out = blocks * (layout == WeightLayout::in_out
                              ? wType.getDimSize(rank - 1)
                              : wType.getDimSize(rank - 2));
  WeightLayoutAttr layoutAttr;
  if (layout != WeightLayout::out_in)
    layoutAttr = WeightLayoutAttr::get(context, layout);
  return LinearOp::create(builder, location, withLastDim(x, out), x, w, bias,
                          layoutAttr);
}

Value ImportBuilder::act(ActKind kind, Value x) {
  return ActOp::create(builder, location, kind, x);
}

Value ImportBuilder::rmsNorm(Value x, Value w, double eps,
                             double weightOffset) {
  return RMSNormOp::create(builder, location, x.getType(), x, w,
                           builder.getF64FloatAttr(eps),
                           builder.getF64FloatAttr(weightOffset));
}

Value ImportBuilder::layerNorm(Value x, Value w, Value b, double eps) {
  return LayerNormOp::create(builder, location, x.getType(), x, w, b,
                             builder.getF64FloatAttr(eps));
}

Value ImportBuilder::groupNorm(Value x, int64_t groups, Value w, Value b,
                               double eps) {
  return GroupNormOp::create(builder, location, x.getType(), x,
                             builder.getI64IntegerAttr(groups), w, b,
                             builder.getF64FloatAttr(eps));
}

Operation *ImportBuilder::nameState(Operation *op, StringRef name) {
  if (!name.empty())
    op->setAttr(GlintDialect::kStateAttrName, builder.getStringAttr(name));
  return op;
}

Value ImportBuilder::conv1d(Value x, Value w, Value bias, bool reverse,
                            StringRef name) {
  return nameState(Conv1dOp::create(builder, location, x.getType(), Type(), x,
                                    w, bias, Value(), reverse),
                   name)
      ->getResult(0);
}

Value ImportBuilder::tokenShift(Value x, StringRef name) {
  return nameState(TokenShiftOp::create(builder, location, x.getType(), Type(),
                                        x, Value()),
                   name)
      ->getResult(0);
}

Value ImportBuilder::recurrence(const RecurrenceOperands &in) {
  return nameState(RecurrenceOp::create(builder, location, in.v.getType(),
                                        Type(), in.q, in.k, in.v, in.logDecay,
                                        in.delta, in.bonus, in.skip, Value(),
                                        in.reverse, in.normalize),
                   in.name)
      ->getResult(0);
}

Value ImportBuilder::mixer(StringRef label, Value x,
                           const std::function<Value(Value)> &fn) {
  // The result type is that of what the body yields: build the body first
  // in a detached region.
  auto region = std::make_unique<Region>();
  Block *body = new Block();
  region->push_back(body);
  Value argument = body->addArgument(x.getType(), location);
  Value yielded;
  {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(body);
    yielded = fn(argument);
    YieldOp::create(builder, location, yielded);
  }
  auto op = MixerOp::create(builder, location, yielded.getType(), x,
                            builder.getStringAttr(label));
  op.getBody().takeBody(*region);
  return op.getResult();
}

void ImportBuilder::trace(Value v, StringRef name) {
  Operation *op = v.getDefiningOp();
  if (!op || op->hasAttr(GlintDialect::kTraceAttrName) ||
      op->getNumResults() != 1)
    op = tensor::CastOp::create(builder, location, v.getType(), v);
  op->setAttr(GlintDialect::kTraceAttrName, builder.getStringAttr(name));
}
