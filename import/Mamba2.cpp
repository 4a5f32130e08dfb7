//===- Mamba2.cpp - Mamba2ForCausalLM importer ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Hugging Face Mamba2ForCausalLM. Facts from the reference implementation
// (transformers' modeling_mamba2.py, torch path):
// - in_proj gives [z (inner), xBC (inner + 2·G·N), dt (heads)] in that
//   order, with inner = int(expand · hidden) = heads · head_dim; there is no
//   d_mlp part (the projection is exactly that size), bias iff use_bias;
// - depthwise causal conv over the xBC channels (bias iff use_conv_bias),
//   then hidden_act (SiLU), then the split [x (inner), B (G·N), C (G·N)];
// - delta = clamp(softplus(dt + dt_bias), time_step_limit), bias before the
//   softplus; A = −exp(A_log), one scalar per head; Euler B̄ = Δ·B; head h
//   reads B and C of group h / (heads / G); D skips x per head;
// - gated RMSNorm (MambaRMSNormGated, norm_before_gate = False):
//   rmsnorm(y · SiLU(z)) · w, normalised over each of the G groups of
//   inner / G channels separately, eps = layer_norm_epsilon; the gate is
//   always SiLU whatever hidden_act says;
// - pre-norm RMSNorm blocks, h += out_proj(mixer(norm(h))); final norm_f;
//   lm_head untied unless tie_word_embeddings is true (Mamba-2's default is
//   false, unlike Mamba-1).
// The conv is depthwise, so it splits exactly by channel: the x channels are
// convolved inside the `glint.mixer` (whose value input is the x part of
// in_proj, before the conv), the B and C channels outside it, as control.
//
// Hidden states traced as Hugging Face (transformers 5) returns them: entry k
// is the output of layer k (the embedding is not an entry), the last entry is
// norm_f's output.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

/// Rows `[offset, offset + size)` of a static 2-D weight `[R, C]`.
static Value sliceRows(ImportBuilder &b, Value w, int64_t offset,
                       int64_t size) {
  auto type = cast<RankedTensorType>(w.getType());
  OpBuilder &builder = b.getBuilder();
  auto result = RankedTensorType::get({size, type.getDimSize(1)},
                                      type.getElementType());
  return tensor::ExtractSliceOp::create(
      builder, b.loc(), result, w,
      ArrayRef<OpFoldResult>{builder.getIndexAttr(offset),
                             builder.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{builder.getIndexAttr(size),
                             builder.getIndexAttr(type.getDimSize(1))},
      ArrayRef<OpFoldResult>{builder.getIndexAttr(1), builder.getIndexAttr(1)});
}

/// A JSON number as transformers writes it: a plain number, or (for
/// non-finite values) `{"__float__": "Infinity"}` or the bare string.
static std::optional<double> getJsonFloat(const llvm::json::Value &v) {
  if (auto d = v.getAsNumber())
    return *d;
  std::optional<StringRef> text = v.getAsString();
  if (const llvm::json::Object *o = v.getAsObject())
    if (const llvm::json::Value *inner = o->get("__float__"))
      text = inner->getAsString();
  if (!text)
    return std::nullopt;
  if (*text == "Infinity" || *text == "inf")
    return std::numeric_limits<double>::infinity();
  if (*text == "-Infinity" || *text == "-inf")
    return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importMamba2(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "Mamba2ForCausalLM");
  int64_t vocab = config.getSize("vocab_size");
  int64_t hidden = config.getSize("hidden_size");
  int64_t layers = config.getSize("num_hidden_layers");
  int64_t state = config.getSize("state_size");
  int64_t heads = config.getSize("num_heads");
  int64_t headDim = config.getSize("head_dim");
  int64_t groups = config.getSize("n_groups", 8);
  int64_t width = config.getSize("conv_kernel", 4);
  double expand = config.getFloat("expand", 2);
  if (!(expand > 0 && expand * hidden <= kMaxConfigSize))
    config.fail(llvm::formatv("key 'expand' is {0}; expand * hidden_size "
                              "should be a size from 1 to {1}",
                              expand, kMaxConfigSize));
  int64_t inner = config.error ? 1 : static_cast<int64_t>(expand * hidden);
  double eps = config.getFloat("layer_norm_epsilon", 1e-5);
  bool useBias = config.getBool("use_bias", false);
  bool useConvBias = config.getBool("use_conv_bias", true);
  bool tied = config.getBool("tie_word_embeddings", false);
  std::string activation = config.getString("hidden_act", "silu");
  double dtMin = 0.0, dtMax = std::numeric_limits<double>::infinity();
  if (config.has("time_step_limit")) {
    const llvm::json::Array *limit = object.getArray("time_step_limit");
    std::optional<double> lo, hi;
    if (limit && limit->size() == 2) {
      lo = getJsonFloat((*limit)[0]);
      hi = getJsonFloat((*limit)[1]);
    }
    if (!lo || !hi || !(*lo <= *hi)) {
      if (!config.error)
        config.error = "config.json: time_step_limit should be a pair of "
                       "numbers [min, max] with min <= max";
    } else {
      dtMin = *lo;
      dtMax = *hi;
    }
  }
  if (!config.error) {
    if (activation != "silu" && activation != "swish")
      config.error = "config.json: hidden_act '" + activation +
                     "' is not supported (Mamba2ForCausalLM: only 'silu')";
    else if (groups <= 0 || heads <= 0 || heads % groups != 0)
      config.error = llvm::formatv("config.json: num_heads ({0}) should be a "
                                   "positive multiple of n_groups ({1})",
                                   heads, groups)
                         .str();
    else if (inner != heads * headDim)
      config.error =
          llvm::formatv("config.json: hidden_size * expand ({0}) should "
                        "equal num_heads * head_dim ({1} * {2})",
                        inner, heads, headDim)
              .str();
  }
  if (config.error)
    return llvm::createStringError(*config.error);

  int64_t groupState = groups * state;
  int64_t convDim = inner + 2 * groupState;
  int64_t projection = inner + convDim + heads;

  ImportBuilder b(context, checkpoint, source);
  Value ids = b.beginTokenForward();
  Value table = b.weight("backbone.embeddings.weight", {vocab, hidden});
  Value h = b.embedding(ids, table);

  for (int64_t i = 0; i < layers; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("backbone.layers.{0}.", i).str();
    Value n = b.rmsNorm(h, b.weight(p + "norm.weight", {hidden}), eps);
    Value proj = b.linear(
        n, b.weight(p + "mixer.in_proj.weight", {projection, hidden}),
        useBias ? b.weight(p + "mixer.in_proj.bias", {projection}) : Value());
    Value z = b.sliceLast(proj, 0, inner);
    Value x = b.sliceLast(proj, inner, inner);
    Value bcIn = b.sliceLast(proj, 2 * inner, 2 * groupState);
    Value dt = b.sliceLast(proj, inner + convDim, heads);

    // The depthwise conv over xBC, split by channel: x | B, C.
    Value convW = b.squeezeWeight(
        b.weight(p + "mixer.conv1d.weight", {convDim, 1, width}),
        {convDim, width});
    Value convB =
        useConvBias ? b.weight(p + "mixer.conv1d.bias", {convDim}) : Value();
    Value convWx = sliceRows(b, convW, 0, inner);
    Value convWbc = sliceRows(b, convW, inner, 2 * groupState);
    Value convBx = convB ? b.sliceLast(convB, 0, inner) : Value();
    Value convBbc =
        convB ? b.sliceLast(convB, inner, 2 * groupState) : Value();
    Value bc =
        b.act(ActKind::silu, b.conv1d(bcIn, convWbc, convBbc, /*reverse=*/false,
                                      p + "mixer.conv1d.bc"));
    Value bm = b.sliceLast(bc, 0, groupState);
    Value cm = b.sliceLast(bc, groupState, groupState);

    Value delta = b.act(
        ActKind::softplus,
        b.addChannelVector(dt, b.weight(p + "mixer.dt_bias", {heads})));
    OpBuilder &ob = b.getBuilder();
    if (dtMin > 0.0)
      delta = arith::MaximumFOp::create(ob, b.loc(), delta,
                                        b.splat(dtMin, delta));
    if (dtMax < std::numeric_limits<double>::infinity())
      delta = arith::MinimumFOp::create(ob, b.loc(), delta,
                                        b.splat(dtMax, delta));
    Value a = b.act(ActKind::neg_exp, b.weight(p + "mixer.A_log", {heads}));
    Value d = b.weight(p + "mixer.D", {heads});
    Value normW = b.weight(p + "mixer.norm.weight", {inner});

    Value y = b.mixer(p + "mixer", x, [&](Value xv) {
      Value u =
          b.act(ActKind::silu, b.conv1d(xv, convWx, convBx, /*reverse=*/false,
                                        p + "mixer.conv1d.x"));
      ImportBuilder::RecurrenceOperands r;
      r.q = b.splitHeads(cm, groups);
      r.k = b.splitHeads(bm, groups);
      r.v = b.splitHeads(u, heads);
      r.logDecay = a;
      r.delta = delta;
      r.skip = d;
      r.name = p + "mixer.ssm";
      Value s = b.mergeHeads(b.recurrence(r));
      Value g = b.mul(s, b.act(ActKind::silu, z));
      // MambaRMSNormGated: each of the G groups normalised on its own.
      if (groups == 1)
        return b.rmsNorm(g, normW, eps);
      Value gn = b.mergeHeads(b.rmsNorm(b.splitHeads(g, groups), {}, eps));
      return b.mulChannelVector(gn, normW);
    });
    Value o = b.linear(
        y, b.weight(p + "mixer.out_proj.weight", {hidden, inner}),
        useBias ? b.weight(p + "mixer.out_proj.bias", {hidden}) : Value());
    h = b.add(h, o);
    b.trace(h, llvm::formatv("hidden_states.{0}", i).str());
  }
  Value nf = b.rmsNorm(h, b.weight("backbone.norm_f.weight", {hidden}), eps);
  b.trace(nf, llvm::formatv("hidden_states.{0}", layers).str());
  Value head = tied ? table : b.weight("lm_head.weight", {vocab, hidden});
  return b.finish(b.linear(nf, head));
}
