//===- ImportBuilder.h - building glint model IR ----------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The vocabulary the per-family importers are written in: weights bound by
// name (checked against the checkpoint), the layer ops with their result
// types inferred, reshapes into heads, mixer regions and traced hidden
// states. Errors are sticky: the first one is kept, construction goes on with
// placeholder values, and the importer reports it at the end, so family code
// reads as straight-line model code.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_IMPORT_IMPORTBUILDER_H
#define GLINT_IMPORT_IMPORTBUILDER_H

#include "dialect/GlintOps.h"
#include "runtime/io/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"

#include <functional>
#include <optional>
#include <string>

namespace mlir::glint::import {

/// The largest size a config may declare (a width, a count of layers, heads
/// or classes): 2^20, far above any real model's, and small enough that the
/// products of three sizes the importers form cannot overflow int64.
constexpr int64_t kMaxConfigSize = int64_t(1) << 20;

/// Reads config.json values, recording the first missing or mistyped key.
class Config {
public:
  Config(const llvm::json::Object &object, std::string architecture)
      : object(object), architecture(std::move(architecture)) {}

  /// An integer; a number with a fraction (or beyond 2^53, where doubles
  /// stop being exact integers) is an error. Configs may write 16 as 16.0.
  int64_t getInt(llvm::StringRef key, std::optional<int64_t> fallback = {});
  /// An integer from 1 to kMaxConfigSize (a width, a count); the fallback,
  /// when the key is absent, is checked the same way.
  int64_t getSize(llvm::StringRef key, std::optional<int64_t> fallback = {});
  double getFloat(llvm::StringRef key, std::optional<double> fallback = {});
  bool getBool(llvm::StringRef key, std::optional<bool> fallback = {});
  std::string getString(llvm::StringRef key,
                        std::optional<std::string> fallback = {});
  bool has(llvm::StringRef key) const {
    const llvm::json::Value *v = object.get(key);
    return v && v->kind() != llvm::json::Value::Null;
  }
  /// An integer list (e.g. block types), or empty with an error.
  std::vector<std::string> getStringList(llvm::StringRef key);

  const std::string &getArchitecture() const { return architecture; }
  /// The first problem found, if any.
  std::optional<std::string> error;

  /// Records `message` as the error unless there is one already.
  void fail(const llvm::Twine &message);

private:
  const llvm::json::Value *lookup(llvm::StringRef key, bool required);

  const llvm::json::Object &object;
  std::string architecture;
};

class ImportBuilder {
public:
  ImportBuilder(MLIRContext *context, const mlir::glint::runtime::Checkpoint &ckpt,
                llvm::StringRef sourceName);

  /// Starts `func.func @forward(%input: inputType) -> resultType`.
  Value beginForward(RankedTensorType inputType);
  /// Starts @forward on token ids, `tensor<?x?xi64>` ([batch, seq]).
  Value beginTokenForward();
  /// Ends @forward returning `result`; returns the module or the first error.
  llvm::Expected<OwningOpRef<ModuleOp>> finish(Value result);

  /// Records an error (the first one wins) naming the importer's subject.
  void fail(const llvm::Twine &message);
  bool failed() const { return error.has_value(); }

  //===------------------------------------------------------------------===//
  // Weights
  //===------------------------------------------------------------------===//

  /// True if the checkpoint holds `name`.
  bool hasWeight(llvm::StringRef name) const;
  /// The checkpoint's shape of `name` (empty and an error if missing).
  std::vector<int64_t> weightShape(llvm::StringRef name);
  /// Binds weight `name`, which must exist with exactly `shape`, as an
  /// external global and loads it.
  Value weight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);
  /// Like weight() when the checkpoint has it, else a null Value.
  Value optionalWeight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);

  //===------------------------------------------------------------------===//
  // Shapes and element-wise arithmetic
  //===------------------------------------------------------------------===//

  /// Batch and sequence sizes of the input, as `index` values.
  Value batch() const { return batchSize; }
  Value seq() const { return seqSize; }
  int64_t lastDim(Value v) const;

  Value add(Value a, Value b);
  Value sub(Value a, Value b);
  Value mul(Value a, Value b);
  Value div(Value a, Value b);
  /// A tensor of `like`'s type filled with `value`.
  Value splat(double value, Value like);
  Value scale(Value v, double factor) { return mul(v, splat(factor, v)); }
  /// Adds a [C] vector along the last axis of a [..., C] tensor.
  Value addChannelVector(Value x, Value vector);
  /// Multiplies along the last axis by a [C] vector.
  Value mulChannelVector(Value x, Value vector);
  /// Element-wise `a + (b - a) * mix` with `mix` a [C] vector (RWKV's lerp).
  Value lerp(Value a, Value b, Value mix);

  /// `x[..., offset : offset + size]`.
  Value sliceLast(Value x, int64_t offset, int64_t size);
  /// `[B, L, H*P]` → `[B, L, H, P]` and back.
  Value splitHeads(Value x, int64_t heads);
  Value mergeHeads(Value x);
  /// Collapses all leading unit dims of a weight, e.g. [1, 1, C] → [C] or
  /// [C, 1, W] → [C, W].
  Value squeezeWeight(Value w, llvm::ArrayRef<int64_t> shape);

  //===------------------------------------------------------------------===//
  // glint ops
  //===------------------------------------------------------------------===//

  Value embedding(Value ids, Value table);
  Value linear(Value x, Value w, Value bias = {},
               WeightLayout layout = WeightLayout::out_in);
  Value act(ActKind kind, Value x);
  Value rmsNorm(Value x, Value w, double eps, double weightOffset = 0.0);
  Value layerNorm(Value x, Value w, Value b, double eps);
  Value groupNorm(Value x, int64_t groups, Value w, Value b, double eps);
  /// Ops that carry a state in generation take a `name`, set as their
  /// `glint.state` attribute: glint-expose-state names the state after it.
  Value conv1d(Value x, Value w, Value bias, bool reverse = false,
               llvm::StringRef name = {});
  Value tokenShift(Value x, llvm::StringRef name = {});

  struct RecurrenceOperands {
    Value q, k, v, logDecay, delta, bonus, skip;
    bool reverse = false, normalize = false;
    /// Names the recurrence's state in generation.
    std::string name;
  };
  Value recurrence(const RecurrenceOperands &operands);

  /// A `glint.mixer` over value input `x` whose body `fn` builds the layer
  /// from the block argument.
  Value mixer(llvm::StringRef label, Value x,
              const std::function<Value(Value)> &fn);

  /// Marks `v` so that the evaluator and tools report it as `name`.
  void trace(Value v, llvm::StringRef name);

  /// Records on @forward the sequence position its result reads (e.g. a
  /// classifier's CLS token), as `glint.readout_position`: the row that
  /// explanations of the result start from.
  void setReadoutPosition(int64_t position) {
    forward->setAttr(glint::GlintDialect::kReadoutPositionAttrName,
                     builder.getI64IntegerAttr(position));
  }

  OpBuilder &getBuilder() { return builder; }
  Location loc() const { return location; }
  /// Names the state `op` carries in generation (`glint.state`), unless
  /// `name` is empty; returns `op`.
  Operation *nameState(Operation *op, llvm::StringRef name);
  Type elementType() const { return f32; }

private:
  RankedTensorType withLastDim(Value v, int64_t last) const;

  MLIRContext *context;
  const mlir::glint::runtime::Checkpoint &checkpoint;
  /// The config's path, for errors about the model as a whole.
  std::string source;
  OwningOpRef<ModuleOp> module;
  OpBuilder builder;
  Location location;
  Type f32;
  func::FuncOp forward;
  Value batchSize, seqSize;
  llvm::StringMap<Value> loadedWeights;
  /// The most recent weight load: the next one goes after it.
  Operation *lastLoad = nullptr;
  std::optional<std::string> error;
};

} // namespace mlir::glint::import

#endif // GLINT_IMPORT_IMPORTBUILDER_H
