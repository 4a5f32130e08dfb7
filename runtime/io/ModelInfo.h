//===- ModelInfo.h - the interface of a compiled model ----------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What glint-compile records in every compiled model (as the JSON string
// `glint_model_info`) and what the runtime reads back to call it: the entry
// points, their inputs, the weights they expect by name, their results, and
// for the streaming step entry the states it carries between calls. The C
// ABI is documented in runtime/README.md:
//
// Every entry point is `void <entry>(void **args)`. args[0] points to the
// results' memref descriptors, one after another (the results, then for the
// step entry the next states, in the order listed), which the callee fills;
// each buffer is malloc'ed and owned by the caller. Then come one pointer
// per input, per state (step entry) and per weight, in the order listed, to
// a strided memref descriptor {allocated, aligned, offset, sizes[rank],
// strides[rank]} (64-bit words).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_MODELINFO_H
#define GLINT_RUNTIME_IO_MODELINFO_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::glint::runtime {

/// One tensor of the interface. Dynamic dims are -1.
struct TensorSpec {
  std::string name;
  /// "f32", "f64", "i64" or "i32"; weights may also be "bf16" or "f16"
  /// (kept narrow in memory: glint-compile --weight-dtype).
  std::string dtype;
  std::vector<int64_t> shape;
  /// For token-id inputs: every value must lie in [0, limit) (the
  /// vocabulary); 0 when unchecked. Compiled code does not bounds-check, so
  /// the runtime does.
  int64_t limit = 0;
  /// For a weight the compiled code reads as prepared panels (glint.panels):
  /// "nk" when `shape` is [N, K], "kn" when it is [K, N]; empty for a
  /// weight read as the checkpoint stores it. The code takes the matrix as
  /// [ceil(N / panelWidth), K, panelWidth], element (n, k) at
  /// [n / panelWidth, k, n % panelWidth], zeros past N.
  std::string panelLayout;
  int64_t panelWidth = 0;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  bool hasPanels() const { return !panelLayout.empty(); }
  /// The shape the compiled code takes: the panels' for a prepared weight,
  /// else `shape`.
  std::vector<int64_t> layoutShape() const;
};

/// A shape as error messages print it, e.g. `[2, ?, 64]`: a dynamic dim (any
/// negative value: -1 in a record, ShapedType::kDynamic in IR) prints as `?`.
std::string shapeString(llvm::ArrayRef<int64_t> shape);

/// One entry point of a compiled model.
struct EntryInfo {
  /// The symbol of `void entry(void **args)`.
  std::string entry;
  std::vector<TensorSpec> inputs;
  /// Carried between calls (step entry only): passed after the inputs,
  /// returned after the results, in this order. Every state starts as zeros;
  /// a dynamic dim (-1) is the batch.
  std::vector<TensorSpec> states;
  std::vector<TensorSpec> weights;
  std::vector<TensorSpec> results;
};

/// What a library compiled with `glint-compile --attention` returns after
/// the logits: one `[B, L, L]` map per token-mixing layer (the layer's
/// per-channel matrices combined by `aggregate`), in the order of `layers`.
struct AttentionInfo {
  /// glint-to-attention's formulation: unified, scan-only, no-conv, no-gate
  /// or no-act.
  std::string formulation;
  /// mean, mean_abs or sum; "attribution" for the attribution method's maps
  /// (glint-compile --attribution: the layers' output cotangents are inputs
  /// after the model's own).
  std::string aggregate;
  /// The layers' labels (`glint.attention_layers`), one per extra result.
  std::vector<std::string> layers;
};

/// What a library compiled with `glint-compile --grad` adds: the gradient
/// entry (glint-differentiate's `@forward_grad`). It takes the forward's
/// inputs, then the seed (the cotangent of the logits), and returns the
/// logits, the cotangent of each token-mixing layer's output (in the order
/// of `layers`, from `glint.gradient_layers`), then that of the input
/// embeddings.
struct GradientInfo : EntryInfo {
  std::vector<std::string> layers;
};

/// The record: the full forward at the top level (`glint_forward`), and the
/// streaming step entry under "step" when the model can generate.
struct ModelInfo : EntryInfo {
  ModelInfo() { entry = "glint_forward"; }
  /// Format version of this record: 1, or 2 (written when a weight is read
  /// as prepared panels, which a runtime knowing only version 1 would bind
  /// wrongly).
  int64_t version = 1;
  /// `@forward_step` of glint-expose-state: `glint_step`.
  std::optional<EntryInfo> step;
  /// With --attention: the forward's results after the first are the
  /// layers' maps.
  std::optional<AttentionInfo> attention;
  /// `@forward_grad`: `glint_gradient`.
  std::optional<GradientInfo> gradient;
};

llvm::json::Value toJSON(const ModelInfo &info);
/// Parses and validates a record; errors say what is missing or malformed.
llvm::Expected<ModelInfo> parseModelInfo(llvm::StringRef json);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_MODELINFO_H
