//===- RecurrentGemma.cpp - RecurrentGemmaForCausalLM importer ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Hugging Face RecurrentGemmaForCausalLM (Griffin / Hawk). Facts from the
// reference implementation (transformers 5):
//
// - the embedding is scaled by sqrt(hidden_size) rounded to bfloat16 (50.5,
//   not 50.596, for hidden 2560), also when the model runs in float32/64;
// - every block is pre-norm, h += temporal(norm(h)); h += mlp(norm(h)), with
//   RMSNorm x * rsqrt(mean x^2 + eps) * (1 + w);
// - block_types cycles over the layers; "recurrent" is the recurrent block,
//   "attention" local attention;
// - recurrent block: y = act(linear_y(x)); x = linear_x(x) -> causal
//   depthwise conv1d (bias, no activation) -> RG-LRU; out = linear_out(x * y),
//   every linear with a bias. RG-LRU: gate_x = sigmoid(x_h W_x[h] + b_x[h]),
//   gate_a = sigmoid(x_h W_a[h] + b_a[h]) block-diagonal over
//   num_attention_heads blocks with weights stored [head, in, out];
//   log_a = -8 gate_a softplus(recurrent_param); h_t = a_t h_{t-1} +
//   sqrt(1 - a_t^2) gate_x x_t, where position 0 resets (a = 0, multiplier
//   1);
// - attention block: head_dim = hidden / heads (the config's head_dim is
//   recomputed so), q/k/v biases only with attention_bias, o_proj always with
//   a bias, rotate-half RoPE on the first int(head_dim *
//   partial_rotary_factor) features of each head, scale head_dim^-0.5,
//   grouped key/value heads, a sliding window of W = attention_window_size
//   positions including the query's own: query i sees keys i - W < j <= i
//   (transformers 5.24's full-sequence mask, sliding_window_overlay
//   `kv_idx > q_idx - sliding_window`, and its decode cache agree on that;
//   glint.attention's `window` rule is the same). DeepMind's Griffin code
//   lets i see i - W <= j <= i (W + 1 keys: `q <= k + window_size` in
//   _compute_causal_mask); the glint-only config key glint_window_rule =
//   "griffin" (glint-import --window-rule=griffin) imports that rule as
//   `window W + 1`. The default, "cache", is transformers'. Both are pinned
//   by test/fixtures/recurrentgemma_window (L > W);
// - MLP: down(act(gate(x)) * up(x)), width intermediate_size / 2, biases;
// - final RMSNorm, lm_head tied to the embedding unless tie_word_embeddings
//   is false, logits soft-capped: tanh(logits / cap) * cap.
//
// Where HF computes in float32 even in a float64 model (RMSNorm, the RG-LRU
// scan, softmax, RoPE angles), glint computes the same formulas exactly.
//
// Hidden states traced as Hugging Face returns them: entry 0 is the scaled
// embedding (the input of layer 0), entry k (0 < k < layers) the output of
// layer k - 1, and the last entry (k = layers) the final norm's output, which
// replaces the last layer's own output.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"
#include "runtime/io/Float16.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdint>

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

/// The glint activation for a transformers ACT2FN name, if glint has it.
static std::optional<ActKind> activationKind(StringRef name) {
  return llvm::StringSwitch<std::optional<ActKind>>(name)
      .Case("gelu_pytorch_tanh", ActKind::gelu_tanh)
      .Case("gelu_python_tanh", ActKind::gelu_tanh)
      .Case("gelu_new", ActKind::gelu_tanh)
      .Case("gelu", ActKind::gelu)
      .Case("gelu_python", ActKind::gelu)
      .Case("silu", ActKind::silu)
      .Case("swish", ActKind::silu)
      .Case("relu", ActKind::relu)
      .Case("relu2", ActKind::relu_square)
      .Default(std::nullopt);
}

/// Records a config problem (the first one wins), as Config does.
static void configError(Config &config, const Twine &message) {
  if (!config.error)
    config.error =
        ("config.json: " + message + " (" + config.getArchitecture() + ")")
            .str();
}

/// Reads the RoPE settings as transformers 5 resolves them: an entry of
/// `rope_parameters` wins over the legacy top-level key, then the defaults
/// (theta 10000, partial rotary factor 0.5); only the "default" RoPE type.
static void readRope(Config &config, const llvm::json::Object &object,
                     double &theta, double &partialFactor) {
  theta = config.getFloat("rope_theta", 10000.0);
  partialFactor = config.getFloat("partial_rotary_factor", 0.5);
  auto checkType = [&](const llvm::json::Object &rope, StringRef key) {
    const llvm::json::Value *v = rope.get(key);
    if (!v || v->kind() == llvm::json::Value::Null)
      return;
    auto type = v->getAsString();
    if (!type || *type != "default")
      configError(config,
                  key +
                      " of RoPE must be \"default\" (other RoPE types are not "
                      "supported)");
  };
  if (const llvm::json::Value *scaling = object.get("rope_scaling");
      scaling && scaling->kind() != llvm::json::Value::Null) {
    const llvm::json::Object *s = scaling->getAsObject();
    if (!s) {
      configError(config, "rope_scaling should be an object");
    } else {
      checkType(*s, "rope_type");
      checkType(*s, "type");
    }
  }
  const llvm::json::Value *v = object.get("rope_parameters");
  if (!v || v->kind() == llvm::json::Value::Null)
    return;
  const llvm::json::Object *rope = v->getAsObject();
  if (!rope) {
    configError(config, "rope_parameters should be an object");
    return;
  }
  checkType(*rope, "rope_type");
  auto number = [&](StringRef key, double &out) {
    const llvm::json::Value *n = rope->get(key);
    if (!n || n->kind() == llvm::json::Value::Null)
      return;
    if (auto d = n->getAsNumber())
      out = *d;
    else
      configError(config, "rope_parameters." + key + " should be a number");
  };
  number("rope_theta", theta);
  number("partial_rotary_factor", partialFactor);
}

static Value rotary(ImportBuilder &b, Value x, int64_t rotaryDim, double base) {
  OpBuilder &builder = b.getBuilder();
  return RotaryOp::create(builder, b.loc(), x, /*offset=*/Value(),
                          builder.getI64IntegerAttr(rotaryDim),
                          builder.getF64FloatAttr(base));
}

static Value attention(ImportBuilder &b, Value q, Value k, Value v,
                       double scale, int64_t window, StringRef name) {
  OpBuilder &builder = b.getBuilder();
  auto qType = cast<RankedTensorType>(q.getType());
  auto vType = cast<RankedTensorType>(v.getType());
  SmallVector<int64_t> shape(qType.getShape());
  shape.back() = vType.getShape().back();
  return b
      .nameState(AttentionOp::create(
                     builder, b.loc(),
                     RankedTensorType::get(shape, qType.getElementType()), q, k,
                     v, builder.getF64FloatAttr(scale),
                     builder.getI64IntegerAttr(window)),
                 name)
      ->getResult(0);
}

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importRecurrentGemma(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "RecurrentGemmaForCausalLM");
  int64_t vocab = config.getSize("vocab_size");
  int64_t hidden = config.getSize("hidden_size");
  int64_t layers = config.getSize("num_hidden_layers");
  int64_t heads = config.getSize("num_attention_heads");
  int64_t intermediate = config.getSize("intermediate_size");
  int64_t lruWidth = config.getSize("lru_width", hidden);
  int64_t kvHeads = config.getSize("num_key_value_heads", heads);
  int64_t window = config.getSize("attention_window_size", 2048);
  std::string windowRule = config.getString("glint_window_rule", "cache");
  int64_t convWidth = config.getSize("conv1d_width", 4);
  double softCap = config.getFloat("logits_soft_cap", 30.0);
  double eps = config.getFloat("rms_norm_eps", 1e-6);
  bool attentionBias = config.getBool("attention_bias", false);
  bool tied = config.getBool("tie_word_embeddings", true);
  std::string activation =
      config.getString("hidden_activation", "gelu_pytorch_tanh");
  std::vector<std::string> blockTypes = {"recurrent", "recurrent", "attention"};
  if (config.has("block_types"))
    blockTypes = config.getStringList("block_types");
  double ropeTheta = 10000.0, partialFactor = 0.5;
  readRope(config, object, ropeTheta, partialFactor);

  auto unsupported = [&](const Twine &message) {
    configError(config, message);
  };
  std::optional<ActKind> act = activationKind(activation);
  if (!act)
    unsupported("hidden_activation '" + activation +
                "' is not supported (supported: gelu_pytorch_tanh, "
                "gelu_python_tanh, gelu_new, gelu, gelu_python, silu, swish, "
                "relu, relu2)");
  if (blockTypes.empty())
    unsupported("block_types is empty");
  for (const std::string &type : blockTypes)
    if (type != "recurrent" && type != "attention")
      unsupported("block type '" + type +
                  "' is not supported (expected 'recurrent' or 'attention')");
  if (layers < 1)
    unsupported("num_hidden_layers must be at least 1");
  if (heads < 1 || hidden < heads)
    unsupported(llvm::formatv("num_attention_heads ({0}) must be between 1 "
                              "and hidden_size ({1})",
                              heads, hidden));
  if (kvHeads < 1 || (heads >= 1 && heads % kvHeads != 0))
    unsupported(llvm::formatv("num_attention_heads ({0}) must be a multiple "
                              "of num_key_value_heads ({1})",
                              heads, kvHeads));
  if (heads >= 1 && (lruWidth < heads || lruWidth % heads != 0))
    unsupported(llvm::formatv("lru_width ({0}) must be a multiple of "
                              "num_attention_heads ({1})",
                              lruWidth, heads));
  if (intermediate / 2 < 1)
    unsupported("intermediate_size must be at least 2");
  if (convWidth < 1)
    unsupported("conv1d_width must be at least 1");
  if (window < 1)
    unsupported("attention_window_size must be at least 1");
  if (windowRule != "cache" && windowRule != "griffin")
    unsupported("glint_window_rule '" + windowRule +
                "' is not supported (expected 'cache': query i sees keys "
                "i-W < j <= i, as transformers 5.24; or 'griffin': "
                "i-W <= j <= i, as DeepMind's Griffin)");
  // glint.attention's `window` counts the keys a query sees, its own
  // included; Griffin's W is the distance back to the oldest one.
  int64_t attentionWindow = windowRule == "griffin" ? window + 1 : window;
  if (!std::isfinite(softCap) || softCap == 0.0)
    unsupported("logits_soft_cap must be a finite non-zero number");
  int64_t headDim = heads >= 1 ? hidden / heads : 1;
  int64_t rotaryDim = static_cast<int64_t>(headDim * partialFactor);
  if (!(partialFactor >= 0.0 && partialFactor <= 1.0) || rotaryDim % 2 != 0)
    unsupported(llvm::formatv("partial_rotary_factor {0:F4} gives a rotary "
                              "dimension of int({1} * {0:F4}) = {2}; it must "
                              "be even and at most head_dim",
                              partialFactor, headDim, rotaryDim));
  if (!(ropeTheta > 1.0) || !std::isfinite(ropeTheta))
    unsupported("rope_theta must be a finite number greater than 1");
  if (config.error)
    return llvm::createStringError(*config.error);

  int64_t mlpWidth = intermediate / 2;
  int64_t blockWidth = lruWidth / heads;
  int64_t qWidth = heads * headDim, kvWidth = kvHeads * headDim;
  // HF: torch.tensor(hidden_size ** 0.5, dtype=torch.bfloat16), which
  // rounds to float32 and then to bfloat16; sqrt of a float32 is exact in
  // float32, so the float sqrt gives the same value.
  double normalizer = runtime::bf16ToFloat(
      runtime::floatToBF16(std::sqrt(static_cast<float>(hidden))));

  ImportBuilder b(context, checkpoint, source);
  Value ids = b.beginTokenForward();
  Value table = b.weight("model.embed_tokens.weight", {vocab, hidden});
  Value h = b.scale(b.embedding(ids, table), normalizer);
  b.trace(h, "hidden_states.0");

  for (int64_t i = 0; i < layers; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("model.layers.{0}.", i).str();
    std::string t = p + "temporal_block.";
    const std::string &blockType = blockTypes[i % blockTypes.size()];
    Value n = b.rmsNorm(h, b.weight(p + "temporal_pre_norm.weight", {hidden}),
                        eps, /*weightOffset=*/1.0);
    Value o;
    if (blockType == "recurrent") {
      Value y = b.act(
          *act, b.linear(n, b.weight(t + "linear_y.weight", {lruWidth, hidden}),
                         b.weight(t + "linear_y.bias", {lruWidth})));
      Value x = b.linear(n, b.weight(t + "linear_x.weight", {lruWidth, hidden}),
                         b.weight(t + "linear_x.bias", {lruWidth}));
      Value r = b.mixer(t.substr(0, t.size() - 1), x, [&](Value xv) {
        Value convW = b.squeezeWeight(
            b.weight(t + "conv_1d.weight", {lruWidth, 1, convWidth}),
            {lruWidth, convWidth});
        Value c = b.conv1d(xv, convW, b.weight(t + "conv_1d.bias", {lruWidth}),
                           /*reverse=*/false, t + "conv_1d");
        std::string g = t + "rg_lru.";
        auto gate = [&](StringRef name) {
          Value w = b.weight(g + name.str() + "_gate_weight",
                             {heads, blockWidth, blockWidth});
          Value bias = b.squeezeWeight(
              b.weight(g + name.str() + "_gate_bias", {heads, blockWidth}),
              {lruWidth});
          return b.act(ActKind::sigmoid,
                       b.linear(c, w, bias, WeightLayout::in_out));
        };
        Value gateX = gate("input");
        Value gateA = gate("recurrent");
        // log a = -8 * gate_a * softplus(recurrent_param).
        Value decayScale =
            b.scale(b.act(ActKind::softplus,
                          b.weight(g + "recurrent_param", {lruWidth})),
                    -8.0);
        Value logA = b.mulChannelVector(gateA, decayScale);
        // multiplier = sqrt(1 - a^2) with a^2 = exp(2 log a), and 1 at the
        // reset (position 0). There a = 0 too in HF, which only scales the
        // zero initial state, so log a stays as it is. "After the start" is a
        // token shift of ones (0 at position 0, 1 after it), so that it
        // carries over calls on consecutive pieces of a sequence
        // (generation), which a fixed position 0 would not:
        // multiplier = after · sqrt(1 - a^2) + (1 - after), exact at both.
        Value aSquare = b.act(ActKind::exp, b.scale(logA, 2.0));
        Value ones = b.splat(1.0, aSquare);
        Value multiplier =
            math::SqrtOp::create(b.getBuilder(), b.loc(), b.sub(ones, aSquare));
        Value after = b.tokenShift(ones, g + "reset");
        multiplier = b.add(b.mul(after, multiplier), b.sub(ones, after));
        // One head per channel, K = V = 1, no query. The value is the conv
        // output (the layer's value path); the key carries the data-dependent
        // input scale gate_x * sqrt(1 - a^2), so k v = normalized_x.
        ImportBuilder::RecurrenceOperands rec;
        rec.k = b.splitHeads(b.mul(multiplier, gateX), lruWidth);
        rec.v = b.splitHeads(c, lruWidth);
        rec.logDecay = logA;
        rec.name = g.substr(0, g.size() - 1);
        Value s = b.mergeHeads(b.recurrence(rec));
        return b.mul(s, y);
      });
      o = b.linear(r, b.weight(t + "linear_out.weight", {hidden, lruWidth}),
                   b.weight(t + "linear_out.bias", {hidden}));
    } else {
      auto projection = [&](StringRef name, int64_t width) {
        std::string w = t + name.str();
        return b.linear(n, b.weight(w + ".weight", {width, hidden}),
                        attentionBias ? b.weight(w + ".bias", {width})
                                      : Value());
      };
      Value q = b.splitHeads(projection("q_proj", qWidth), heads);
      Value k = b.splitHeads(projection("k_proj", kvWidth), kvHeads);
      Value v = b.splitHeads(projection("v_proj", kvWidth), kvHeads);
      if (rotaryDim > 0) {
        q = rotary(b, q, rotaryDim, ropeTheta);
        k = rotary(b, k, rotaryDim, ropeTheta);
      }
      Value a = b.mergeHeads(
          attention(b, q, k, v, 1.0 / std::sqrt(static_cast<double>(headDim)),
                    attentionWindow, t + "attention"));
      o = b.linear(a, b.weight(t + "o_proj.weight", {hidden, qWidth}),
                   b.weight(t + "o_proj.bias", {hidden}));
    }
    Value residual = b.add(o, h);
    Value m = b.rmsNorm(residual,
                        b.weight(p + "channel_pre_norm.weight", {hidden}), eps,
                        /*weightOffset=*/1.0);
    std::string mlp = p + "mlp_block.";
    Value gateProj =
        b.linear(m, b.weight(mlp + "gate_proj.weight", {mlpWidth, hidden}),
                 b.weight(mlp + "gate_proj.bias", {mlpWidth}));
    Value up = b.linear(m, b.weight(mlp + "up_proj.weight", {mlpWidth, hidden}),
                        b.weight(mlp + "up_proj.bias", {mlpWidth}));
    Value down =
        b.linear(b.mul(b.act(*act, gateProj), up),
                 b.weight(mlp + "down_proj.weight", {hidden, mlpWidth}),
                 b.weight(mlp + "down_proj.bias", {hidden}));
    h = b.add(down, residual);
    if (i + 1 < layers)
      b.trace(h, llvm::formatv("hidden_states.{0}", i + 1).str());
  }
  Value nf = b.rmsNorm(h, b.weight("model.final_norm.weight", {hidden}), eps,
                       /*weightOffset=*/1.0);
  b.trace(nf, llvm::formatv("hidden_states.{0}", layers).str());
  Value head = tied ? table : b.weight("lm_head.weight", {vocab, hidden});
  Value logits = b.linear(nf, head);
  // Soft cap: tanh(logits / cap) * cap.
  Value capped = b.act(ActKind::tanh, b.div(logits, b.splat(softCap, logits)));
  return b.finish(b.scale(capped, softCap));
}
