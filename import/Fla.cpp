//===- Fla.cpp - flash-linear-attention GLA, RetNet, HGRN-2 importers -----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The causal language models of flash-linear-attention (fla, the layout of
// the fla-hub checkpoints): GLAForCausalLM, RetNetForCausalLM and
// HGRN2ForCausalLM. Facts from fla 0.6.0's model classes
// (fla/models/{gla,retnet,hgrn2}, fla/layers/{gla,multiscale_retention,
// hgrn2}.py, fla/modules):
//
// Shared by the three (FLAModel, the *Block classes):
// - `model.embeddings.weight`; pre-norm blocks h += attn(attn_norm(h));
//   h += mlp(mlp_norm(h)); `model.norm`, `lm_head` (absent when
//   tie_word_embeddings, default false). Every norm is an RMSNorm with eps
//   norm_eps (default 1e-6); fuse_norm only picks the implementation;
// - the MLP is GatedMLP: down(silu(gate(x)) * up(x)), no biases, width
//   intermediate_size or else int(hidden * hidden_ratio * 2/3) rounded up to
//   a multiple of 256 (hidden_ratio default 4); hidden_act must be 'swish';
// - the output of the token mixer (GLA, RetNet) is a per-head RMSNorm of the
//   recurrence's output times swish(g_proj(x)): `attn.g_norm_swish_gate` when
//   fuse_norm (default) and use_output_gate, else `attn.g_norm` and the gate
//   separately (the same formula), or the norm alone without the output gate;
//   elementwise_affine false drops the norm's weight;
// - the recurrence kernels scale the query by K^-0.5 (K the key size per
//   head); glint.recurrence has no scale, so the query is scaled first;
// - hidden states (output_hidden_states) are the input of every layer (entry
//   0 the embedding) and, last, the final norm's output.
//
// GLA (GatedLinearAttention): key dim round(hidden * expand_k), value dim
// round(hidden * expand_v), num_heads heads; gk = logsigmoid(gk_proj(x)) / 16
// per key (gk_proj = Linear(hidden, rank) then Linear(rank, key dim) with a
// bias; 16 is the layer's gate_logit_normalizer, which GLAForCausalLM never
// sets from the config), then clamp_min if set; use_short_conv: depthwise
// causal convs of width conv_size without bias, each followed by SiLU, on q,
// k and v.
//
// RetNet (MultiScaleRetention): key dim hidden * expand_k (default 1), value
// dim hidden * expand_v (2), num_heads (8); rotate-half RoPE (base 10000,
// no xPos) over each head's keys and queries; constant per-head decay
// gamma_h = 1 - 2^(-5 - h). RetNetBlock does not pass use_short_conv to the
// layer, so fla's RetNet never has short convolutions whatever the config
// says.
//
// HGRN-2 (HGRN2Attention): with expand_ratio set (default 128) num_heads =
// hidden // expand_ratio (the layer ignores num_heads then), else
// expand_ratio = hidden // num_heads; forget dim = heads * expand_ratio.
// q = swish(q_proj x), g = logsigmoid(f_proj x), k = 1 - exp(g), v =
// i_proj x; a GLA recurrence with key size expand_ratio; g_norm is an RMSNorm
// over all hidden channels, then o_proj. With use_lower_bound (default true)
// `model.lower_bounds` [layers, hidden] gives per layer l > 0 the forget
// gate's lower bound lb = cumsum(softmax over layers)[l] - softmax[0], and
// g = log(lb + (1 - lb) sigmoid(f)), k = (1 - lb) sigmoid(-f); layer 0 has
// lb = 0. Short convs (no activation, no bias) on q, f and i.
//
// Unsupported settings are refused naming the key: hybrid `attn` layers
// (fla's Attention), attnres_block_size, feature_map, num_kv_heads other than
// num_heads, GLA's use_gk = false / use_gv = true, gate_logit_normalizer
// other than 16.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

namespace {

/// Records a config problem (the first one wins), as Config does.
void configError(Config &config, const Twine &message) {
  if (!config.error)
    config.error =
        ("config.json: " + message + " (" + config.getArchitecture() + ")")
            .str();
}

/// What the three families share: the block skeleton and its settings.
struct FlaCommon {
  int64_t vocab = 1, hidden = 1, layers = 1, intermediate = 1;
  double eps = 1e-6;
  bool tied = false, fuseNorm = true, affine = true;
  std::string mode;

  void read(Config &config, llvm::ArrayRef<llvm::StringRef> modes) {
    vocab = config.getSize("vocab_size");
    hidden = config.getSize("hidden_size");
    layers = config.getSize("num_hidden_layers");
    eps = config.getFloat("norm_eps", 1e-6);
    tied = config.getBool("tie_word_embeddings", false);
    fuseNorm = config.getBool("fuse_norm", true);
    affine = config.getBool("elementwise_affine", true);
    mode = config.getString("attn_mode", "chunk");
    std::string act = config.getString("hidden_act", "swish");
    if (config.has("intermediate_size")) {
      intermediate = config.getSize("intermediate_size");
    } else {
      // GatedMLP: int(hidden * ratio * 2 / 3), rounded up to 256.
      int64_t ratio = config.getSize("hidden_ratio", 4);
      int64_t width = static_cast<int64_t>(
          static_cast<double>(hidden) * static_cast<double>(ratio) * 2.0 / 3.0);
      intermediate = 256 * ((width + 255) / 256);
    }
    if (config.error)
      return;
    if (act != "swish")
      configError(config, "hidden_act '" + act +
                              "' is not supported (fla's GatedMLP: only "
                              "'swish')");
    if (!llvm::is_contained(modes, mode)) {
      std::string known;
      for (llvm::StringRef m : modes)
        known += (known.empty() ? "'" : ", '") + m.str() + "'";
      configError(config, "attn_mode '" + mode + "' is not known (expected " +
                              known + ")");
    }
    if (!(eps >= 0.0) || !std::isfinite(eps))
      configError(config, "norm_eps must be a finite number >= 0");
    for (llvm::StringRef key : {"attn", "attnres_block_size"})
      if (config.has(key))
        configError(config, "key '" + key +
                                "' is set: hybrid softmax-attention layers and "
                                "attention residuals of fla models are not "
                                "supported");
    if (config.has("feature_map"))
      configError(config, "feature_map '" +
                              config.getString("feature_map", "") +
                              "' is not supported (only null)");
  }
};

/// `x` as printf's %g writes it (0.3, 9.6, 1e-06).
std::string shortNumber(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", x);
  return text;
}

/// A `tensor<N x f32>` constant.
Value constantVector(ImportBuilder &b, llvm::ArrayRef<float> values) {
  auto type = RankedTensorType::get({static_cast<int64_t>(values.size())},
                                    b.elementType());
  return arith::ConstantOp::create(b.getBuilder(), b.loc(),
                                   DenseElementsAttr::get(type, values));
}

/// `q · size^-0.5`, the recurrence kernels' default query scale. When the
/// factor is not exactly a float (size not a power of 4), it is computed in
/// the IR as q / sqrt(size), so that double-precision evaluation is exact.
Value scaleQuery(ImportBuilder &b, Value q, int64_t size) {
  double factor = 1.0 / std::sqrt(static_cast<double>(size));
  if (static_cast<double>(static_cast<float>(factor)) == factor)
    return b.scale(q, factor);
  Value root = math::SqrtOp::create(b.getBuilder(), b.loc(),
                                    b.splat(static_cast<double>(size), q));
  return b.div(q, root);
}

/// A tensor like `like` filled with `value` exactly in double precision:
/// the sum of up to three float splats (a double's 53 significant bits in
/// pieces of 24), so that the reference evaluator sees `value` itself (the
/// compiled model, computing in float, sees it rounded once).
Value splatExact(ImportBuilder &b, double value, Value like) {
  float hi = static_cast<float>(value);
  double rest = value - static_cast<double>(hi);
  float mid = static_cast<float>(rest);
  float lo = static_cast<float>(rest - static_cast<double>(mid));
  Value sum = b.splat(hi, like);
  if (mid != 0.0f)
    sum = b.add(sum, b.splat(mid, like));
  if (lo != 0.0f)
    sum = b.add(sum, b.splat(lo, like));
  return sum;
}

/// logsigmoid(x) = -softplus(-x).
Value logSigmoid(ImportBuilder &b, Value x) {
  return b.scale(b.act(ActKind::softplus, b.scale(x, -1.0)), -1.0);
}

/// A depthwise short convolution `<p><name>.weight` [C, 1, W] (bias if the
/// checkpoint has one).
Value shortConv(ImportBuilder &b, Value x, const std::string &name,
                int64_t width) {
  int64_t channels = b.lastDim(x);
  Value w = b.squeezeWeight(b.weight(name + ".weight", {channels, 1, width}),
                            {channels, width});
  Value bias = b.optionalWeight(name + ".bias", {channels});
  return b.conv1d(x, w, bias, /*reverse=*/false, name);
}

/// GatedMLP: down(silu(gate(x)) * up(x)).
Value gatedMlp(ImportBuilder &b, Value x, const std::string &p,
               const FlaCommon &c) {
  Value gate =
      b.linear(x, b.weight(p + "gate_proj.weight", {c.intermediate, c.hidden}));
  Value up =
      b.linear(x, b.weight(p + "up_proj.weight", {c.intermediate, c.hidden}));
  return b.linear(b.mul(b.act(ActKind::silu, gate), up),
                  b.weight(p + "down_proj.weight", {c.hidden, c.intermediate}));
}

/// The output of a GLA / RetNet mixer from the recurrence output `o`
/// [B, L, H, V]: per-head RMSNorm, times swish(g) with the output gate.
Value gatedOutput(ImportBuilder &b, Value o, Value g, const std::string &a,
                  const FlaCommon &c, bool outputGate) {
  int64_t headV = b.lastDim(o);
  bool fused = outputGate && c.fuseNorm;
  std::string norm = a + (fused ? "g_norm_swish_gate" : "g_norm");
  Value w = c.affine ? b.weight(norm + ".weight", {headV}) : Value();
  Value y = b.mergeHeads(b.rmsNorm(o, w, c.eps));
  return outputGate ? b.mul(y, b.act(ActKind::silu, g)) : y;
}

/// The model around the token mixers: embedding, blocks, final norm, head.
/// `mixer(i, n)` builds layer i's token mixer output on the normed input n.
Expected<OwningOpRef<ModuleOp>>
buildFlaModel(ImportBuilder &b, const FlaCommon &c,
              const std::function<Value(int64_t, Value)> &mixer) {
  Value ids = b.beginTokenForward();
  Value table = b.weight("model.embeddings.weight", {c.vocab, c.hidden});
  Value h = b.embedding(ids, table);
  b.trace(h, "hidden_states.0");
  for (int64_t i = 0; i < c.layers; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("model.layers.{0}.", i).str();
    Value n = b.rmsNorm(h, b.weight(p + "attn_norm.weight", {c.hidden}), c.eps);
    h = b.add(h, mixer(i, n));
    Value m = b.rmsNorm(h, b.weight(p + "mlp_norm.weight", {c.hidden}), c.eps);
    h = b.add(h, gatedMlp(b, m, p + "mlp.", c));
    if (i + 1 < c.layers)
      b.trace(h, llvm::formatv("hidden_states.{0}", i + 1).str());
  }
  Value nf = b.rmsNorm(h, b.weight("model.norm.weight", {c.hidden}), c.eps);
  b.trace(nf, llvm::formatv("hidden_states.{0}", c.layers).str());
  // A tied checkpoint saved by save_pretrained has no lm_head.weight; one
  // converted from a state dict may hold the copy.
  Value head = c.tied && !b.hasWeight("lm_head.weight")
                   ? table
                   : b.weight("lm_head.weight", {c.vocab, c.hidden});
  return b.finish(b.linear(nf, head));
}

/// Key and value widths hidden * expand, which must be integers dividing
/// into the heads.
void readExpand(Config &config, int64_t hidden, int64_t heads, double defaultK,
                double defaultV, int64_t &keyDim, int64_t &valueDim) {
  double expandK = config.getFloat("expand_k", defaultK);
  double expandV = config.getFloat("expand_v", defaultV);
  keyDim = valueDim = heads;
  if (config.error)
    return;
  auto width = [&](llvm::StringRef key, double expand, int64_t &out) {
    double w = static_cast<double>(hidden) * expand;
    double rounded = std::round(w);
    if (!(rounded >= 1 && rounded <= kMaxConfigSize) ||
        std::fabs(w - rounded) > 1e-9 * std::max(1.0, w))
      return configError(
          config, llvm::formatv("{0} = {1}: hidden_size * {0} = {2} must be "
                                "a whole number from 1 to {3}",
                                key, shortNumber(expand), shortNumber(w),
                                kMaxConfigSize));
    out = static_cast<int64_t>(rounded);
    if (out % heads != 0)
      configError(config, llvm::formatv("hidden_size * {0} = {1} does not "
                                        "split into num_heads = {2} heads",
                                        key, out, heads));
  };
  width("expand_k", expandK, keyDim);
  width("expand_v", expandV, valueDim);
}

/// num_kv_heads other than num_heads (grouped keys and values) is refused.
void refuseKvHeads(Config &config, int64_t heads) {
  if (!config.has("num_kv_heads"))
    return;
  int64_t kvHeads = config.getSize("num_kv_heads");
  if (!config.error && kvHeads != heads)
    configError(config, llvm::formatv("num_kv_heads = {0} (other than "
                                      "num_heads = {1}) is not supported",
                                      kvHeads, heads));
}

} // namespace

//===----------------------------------------------------------------------===//
// GLA
//===----------------------------------------------------------------------===//

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importGla(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "GLAForCausalLM");
  FlaCommon c;
  c.read(config, {"chunk", "fused_recurrent", "fused_chunk"});
  int64_t heads = config.getSize("num_heads", 4);
  int64_t keyDim = 1, valueDim = 1;
  readExpand(config, c.hidden, heads, 0.5, 1.0, keyDim, valueDim);
  refuseKvHeads(config, heads);
  bool useConv = config.getBool("use_short_conv", false);
  int64_t convSize = config.getSize("conv_size", 4);
  bool outputGate = config.getBool("use_output_gate", true);
  std::optional<double> clampMin;
  if (config.has("clamp_min"))
    clampMin = config.getFloat("clamp_min");
  if (!config.getBool("use_gk", true))
    configError(config, "use_gk = false is not supported (fla's "
                        "GatedLinearAttention always has the key gate)");
  if (config.getBool("use_gv", false))
    configError(config, "use_gv = true is not supported (no value gate)");
  double normalizer = config.getFloat("gate_logit_normalizer", 16.0);
  if (!config.error && normalizer != 16.0)
    configError(config,
                llvm::formatv("gate_logit_normalizer = {0} is not supported: "
                              "fla's GLAForCausalLM does not pass it to its "
                              "layers, which use 16",
                              shortNumber(normalizer)));
  if (config.error)
    return llvm::createStringError(*config.error);

  int64_t headK = keyDim / heads;
  ImportBuilder b(context, checkpoint, source);
  // The gate's low rank from the weights (the config key, where present,
  // must agree).
  std::vector<int64_t> gk0 =
      b.weightShape("model.layers.0.attn.gk_proj.0.weight");
  int64_t rank = gk0.size() == 2 ? gk0[0] : 1;
  if (config.has("gate_low_rank_dim")) {
    int64_t declared = config.getSize("gate_low_rank_dim");
    if (!config.error && declared != rank)
      configError(config, llvm::formatv("gate_low_rank_dim = {0}, but "
                                        "gk_proj.0.weight has {1} rows",
                                        declared, rank));
    if (config.error)
      return llvm::createStringError(*config.error);
  }

  return buildFlaModel(b, c, [&](int64_t i, Value n) {
    std::string a = llvm::formatv("model.layers.{0}.attn.", i).str();
    Value q = b.linear(n, b.weight(a + "q_proj.weight", {keyDim, c.hidden}));
    Value k = b.linear(n, b.weight(a + "k_proj.weight", {keyDim, c.hidden}));
    Value v = b.linear(n, b.weight(a + "v_proj.weight", {valueDim, c.hidden}));
    if (useConv) {
      q = b.act(ActKind::silu, shortConv(b, q, a + "q_conv1d", convSize));
      k = b.act(ActKind::silu, shortConv(b, k, a + "k_conv1d", convSize));
    }
    Value gk = b.linear(
        b.linear(n, b.weight(a + "gk_proj.0.weight", {rank, c.hidden})),
        b.weight(a + "gk_proj.1.weight", {keyDim, rank}),
        b.weight(a + "gk_proj.1.bias", {keyDim}));
    gk = b.scale(logSigmoid(b, gk), 1.0 / 16.0);
    // max(gk, c) written c + relu(gk - c), which glint-differentiate knows.
    if (clampMin) {
      Value c = splatExact(b, *clampMin, gk);
      gk = b.add(c, b.act(ActKind::relu, b.sub(gk, c)));
    }
    Value g =
        outputGate
            ? b.linear(n, b.weight(a + "g_proj.weight", {valueDim, c.hidden}))
            : Value();
    Value qs = scaleQuery(b, q, headK);
    // The value projection is the layer's value input (its short conv and
    // SiLU inside); q, k, the gates and the per-head norm's statistics are
    // control values.
    Value y = b.mixer(a.substr(0, a.size() - 1), v, [&](Value xv) {
      if (useConv)
        xv = b.act(ActKind::silu, shortConv(b, xv, a + "v_conv1d", convSize));
      ImportBuilder::RecurrenceOperands r;
      r.q = b.splitHeads(qs, heads);
      r.k = b.splitHeads(k, heads);
      r.v = b.splitHeads(xv, heads);
      r.logDecay = b.splitHeads(gk, heads);
      r.name = a + "gla";
      return gatedOutput(b, b.recurrence(r), g, a, c, outputGate);
    });
    return b.linear(y, b.weight(a + "o_proj.weight", {c.hidden, valueDim}));
  });
}

//===----------------------------------------------------------------------===//
// RetNet
//===----------------------------------------------------------------------===//

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importRetNet(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "RetNetForCausalLM");
  FlaCommon c;
  c.read(config, {"chunk", "fused_chunk", "parallel", "fused_recurrent"});
  int64_t heads = config.getSize("num_heads", 8);
  int64_t keyDim = 1, valueDim = 1;
  readExpand(config, c.hidden, heads, 1.0, 2.0, keyDim, valueDim);
  refuseKvHeads(config, heads);
  bool outputGate = config.getBool("use_output_gate", true);
  int64_t headK = keyDim / heads;
  if (!config.error && headK % 2 != 0)
    configError(config, llvm::formatv("the key size per head ({0}) must be "
                                      "even for the rotary embedding",
                                      headK));
  if (config.error)
    return llvm::createStringError(*config.error);

  ImportBuilder b(context, checkpoint, source);
  return buildFlaModel(b, c, [&](int64_t i, Value n) {
    std::string a = llvm::formatv("model.layers.{0}.attn.", i).str();
    OpBuilder &ob = b.getBuilder();
    auto rotary = [&](Value x) -> Value {
      return RotaryOp::create(ob, b.loc(), x, /*offset=*/Value(),
                              ob.getI64IntegerAttr(headK),
                              ob.getF64FloatAttr(10000.0));
    };
    Value q = rotary(b.splitHeads(
        b.linear(n, b.weight(a + "q_proj.weight", {keyDim, c.hidden})), heads));
    Value k = rotary(b.splitHeads(
        b.linear(n, b.weight(a + "k_proj.weight", {keyDim, c.hidden})), heads));
    Value v = b.linear(n, b.weight(a + "v_proj.weight", {valueDim, c.hidden}));
    Value g =
        outputGate
            ? b.linear(n, b.weight(a + "g_proj.weight", {valueDim, c.hidden}))
            : Value();
    Value qs = scaleQuery(b, q, headK);
    // log gamma_h = log1p(-2^(-5-h)); the powers of two are exact floats and
    // the logarithm is taken in the IR, so that a double evaluation is exact.
    std::vector<float> powers;
    for (int64_t h = 0; h < heads; ++h)
      powers.push_back(-std::ldexp(1.0f, static_cast<int>(-5 - h)));
    Value logDecay =
        math::Log1pOp::create(ob, b.loc(), constantVector(b, powers));
    Value y = b.mixer(a.substr(0, a.size() - 1), v, [&](Value xv) {
      ImportBuilder::RecurrenceOperands r;
      r.q = qs;
      r.k = k;
      r.v = b.splitHeads(xv, heads);
      r.logDecay = logDecay;
      r.name = a + "retention";
      return gatedOutput(b, b.recurrence(r), g, a, c, outputGate);
    });
    return b.linear(y, b.weight(a + "o_proj.weight", {c.hidden, valueDim}));
  });
}

//===----------------------------------------------------------------------===//
// HGRN-2
//===----------------------------------------------------------------------===//

/// Row `index` of a static 2-D weight [R, C], as a [C] vector.
static Value weightRow(ImportBuilder &b, Value w, int64_t index) {
  auto type = cast<RankedTensorType>(w.getType());
  int64_t width = type.getDimSize(1);
  OpBuilder &ob = b.getBuilder();
  auto row = tensor::ExtractSliceOp::create(
      ob, b.loc(), RankedTensorType::get({1, width}, type.getElementType()), w,
      ArrayRef<OpFoldResult>{ob.getIndexAttr(index), ob.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{ob.getIndexAttr(1), ob.getIndexAttr(width)},
      ArrayRef<OpFoldResult>{ob.getIndexAttr(1), ob.getIndexAttr(1)});
  return b.squeezeWeight(row, {width});
}

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importHgrn2(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "HGRN2ForCausalLM");
  FlaCommon c;
  c.read(config, {"chunk", "fused_recurrent", "fused_chunk"});
  bool useConv = config.getBool("use_short_conv", false);
  int64_t convSize = config.getSize("conv_size", 4);
  bool lowerBound = config.getBool("use_lower_bound", true);
  int64_t heads = 1, ratio = 1;
  if (config.has("expand_ratio")) {
    // HGRN2Attention derives the heads from expand_ratio and ignores
    // num_heads.
    ratio = config.getSize("expand_ratio");
    if (!config.error) {
      heads = c.hidden / ratio;
      if (heads < 1)
        configError(config, llvm::formatv("expand_ratio = {0} is larger "
                                          "than hidden_size = {1}",
                                          ratio, c.hidden));
    }
  } else if (config.has("num_heads")) {
    heads = config.getSize("num_heads");
    ratio = config.error ? 1 : std::max<int64_t>(c.hidden / heads, 1);
  } else {
    configError(config, "one of 'expand_ratio' or 'num_heads' is needed");
  }
  int64_t forgetDim = heads * ratio;
  if (!config.error && c.hidden % heads != 0)
    configError(config, llvm::formatv("hidden_size = {0} does not split into "
                                      "{1} heads (hidden_size // "
                                      "expand_ratio)",
                                      c.hidden, heads));
  if (!config.error && lowerBound && forgetDim != c.hidden)
    configError(config, llvm::formatv("use_lower_bound needs num_heads * "
                                      "expand_ratio ({0}) = hidden_size ({1})",
                                      forgetDim, c.hidden));
  if (config.error)
    return llvm::createStringError(*config.error);

  ImportBuilder b(context, checkpoint, source);
  // The lower bounds of the forget gates, one [hidden] vector per layer:
  // softmax over the layers, cumulative sum, minus the first row (layer 0's
  // bound is zero). Max-stabilised: e_j = exp(w_j - max_j w_j).
  std::vector<Value> bounds;
  auto computeBounds = [&]() {
    Value w = b.weight("model.lower_bounds", {c.layers, c.hidden});
    std::vector<Value> rows;
    for (int64_t j = 0; j < c.layers; ++j)
      rows.push_back(weightRow(b, w, j));
    Value max = rows[0];
    for (int64_t j = 1; j < c.layers; ++j)
      max = arith::MaximumFOp::create(b.getBuilder(), b.loc(), max, rows[j]);
    std::vector<Value> e;
    for (Value row : rows)
      e.push_back(b.act(ActKind::exp, b.sub(row, max)));
    Value total = e[0];
    for (int64_t j = 1; j < c.layers; ++j)
      total = b.add(total, e[j]);
    bounds.assign(c.layers, Value());
    Value cumulative;
    for (int64_t j = 1; j < c.layers; ++j) {
      cumulative = cumulative ? b.add(cumulative, e[j]) : e[j];
      bounds[j] = b.div(cumulative, total);
    }
  };

  return buildFlaModel(b, c, [&](int64_t i, Value n) {
    if (lowerBound && bounds.empty())
      computeBounds();
    std::string a = llvm::formatv("model.layers.{0}.attn.", i).str();
    Value q = b.linear(n, b.weight(a + "q_proj.weight", {forgetDim, c.hidden}));
    Value f = b.linear(n, b.weight(a + "f_proj.weight", {forgetDim, c.hidden}));
    Value in = b.linear(n, b.weight(a + "i_proj.weight", {c.hidden, c.hidden}));
    if (useConv) {
      q = shortConv(b, q, a + "q_conv1d", convSize);
      f = shortConv(b, f, a + "f_conv1d", convSize);
    }
    q = scaleQuery(b, b.act(ActKind::silu, q), ratio);
    Value minusF = b.scale(f, -1.0);
    Value g, k;
    if (lowerBound && i > 0) {
      // g = log(lb + (1 - lb) sigmoid(f)) = softplus(log lb - f) -
      // softplus(-f) (fla's logaddexp(log lb, log1p(-lb) + logsigmoid(f))),
      // k = 1 - exp(g) = (1 - lb) sigmoid(-f). log lb depends on the weights
      // only.
      Value lb = bounds[i];
      Value rest = b.sub(b.splat(1.0, lb), lb);
      Value logLb = math::LogOp::create(b.getBuilder(), b.loc(), lb);
      g = b.sub(b.act(ActKind::softplus, b.addChannelVector(minusF, logLb)),
                b.act(ActKind::softplus, minusF));
      k = b.mulChannelVector(b.act(ActKind::sigmoid, minusF), rest);
    } else {
      // g = logsigmoid(f), k = 1 - sigmoid(f) = sigmoid(-f).
      g = logSigmoid(b, f);
      k = b.act(ActKind::sigmoid, minusF);
    }
    Value normW =
        c.affine ? b.weight(a + "g_norm.weight", {c.hidden}) : Value();
    // The input projection is the value input; q, the forget gate (k and g)
    // and g_norm's statistics are control values.
    Value y = b.mixer(a.substr(0, a.size() - 1), in, [&](Value xv) {
      if (useConv)
        xv = shortConv(b, xv, a + "i_conv1d", convSize);
      ImportBuilder::RecurrenceOperands r;
      r.q = b.splitHeads(q, heads);
      r.k = b.splitHeads(k, heads);
      r.v = b.splitHeads(xv, heads);
      r.logDecay = b.splitHeads(g, heads);
      r.name = a + "hgrn2";
      return b.rmsNorm(b.mergeHeads(b.recurrence(r)), normW, c.eps);
    });
    return b.linear(y, b.weight(a + "o_proj.weight", {c.hidden, c.hidden}));
  });
}
