//===- Rwkv4.cpp - RwkvForCausalLM (RWKV-4) importer ----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Hugging Face RwkvForCausalLM (RWKV-4). Facts from the reference
// implementation (transformers' modeling_rwkv.py):
// - block 0 first applies an extra LayerNorm `pre_ln` to the embeddings;
//   every block is h += att(ln1(h)), then h += ffn(ln2(h)); LayerNorms use
//   layer_norm_epsilon, but the final `ln_out` is built with LayerNorm's
//   default eps 1e-5 whatever the config says;
// - the token shift is zero-padded at t = 0, and the per-channel lerps are
//   x·μ + shift(x)·(1 − μ) with μ = time_mix_* stored as [1, 1, C];
// - time-mix: k, v, r = key, value, receptance of the lerps (no biases),
//   wkv with w = −exp(time_decay) and bonus u = time_first on the current
//   token only (max-stabilised ratio of two scans), out = output(σ(r)·wkv);
// - channel-mix: σ(receptance(xr)) · value(relu(key(xk))²);
// - rescale_every R (6 when the config omits it; ≤ 0 disables it): in eval
//   mode HF divides, in place and when it first switches to inference, block
//   b's attention.output and feed_forward.value weights by 2^(b // R), and
//   halves the hidden state after every block with (b + 1) % R == 0. The
//   checkpoint holds the unscaled weights, so the IR scales them (by exact
//   powers of two). Not numerically neutral: LayerNorm's eps sees the halved
//   stream.
// - the head is untied unless tie_word_embeddings is true.
//
// The wkv is a `glint.recurrence normalize` with one head per channel
// (K = V = 1): keys are the log-weights k, log-decay w, bonus u. The
// `glint.mixer` of each block's time-mix takes the value projection as its
// value input; k and σ(r) are control values computed outside it.
//
// Hidden states traced as Hugging Face (transformers 5) returns them: entry k
// is the output of block k after its rescale halving, if any (the embedding
// is not an entry); the last entry is ln_out's output.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

Expected<OwningOpRef<ModuleOp>>
mlir::glint::import::importRwkv4(MLIRContext *context,
                                 const llvm::json::Object &object,
                                 const mlir::glint::runtime::Checkpoint &checkpoint,
                                 StringRef source) {
  Config config(object, "RwkvForCausalLM");
  int64_t vocab = config.getSize("vocab_size");
  int64_t hidden = config.getSize("hidden_size");
  int64_t layers = config.getSize("num_hidden_layers");
  int64_t attention = config.getSize("attention_hidden_size", hidden);
  int64_t inner = config.getSize("intermediate_size", 4 * hidden);
  double eps = config.getFloat("layer_norm_epsilon", 1e-5);
  int64_t rescaleEvery = config.getInt("rescale_every", 6);
  bool tied = config.getBool("tie_word_embeddings", false);
  if (!config.error) {
    for (auto [key, value] :
         {std::pair<StringRef, int64_t>{"vocab_size", vocab},
          {"hidden_size", hidden},
          {"attention_hidden_size", attention},
          {"intermediate_size", inner}})
      if (value <= 0 && !config.error)
        config.error = ("config.json: " + key + " should be positive, got " +
                        std::to_string(value) + " (RwkvForCausalLM)")
                           .str();
    if (layers < 0 && !config.error)
      config.error = "config.json: num_hidden_layers should not be negative "
                     "(RwkvForCausalLM)";
    if (!(eps >= 0) && !config.error)
      config.error = "config.json: layer_norm_epsilon should not be negative "
                     "(RwkvForCausalLM)";
  }
  if (config.error)
    return llvm::createStringError(*config.error);

  ImportBuilder b(context, checkpoint, source);
  Value ids = b.beginTokenForward();
  Value table = b.weight("rwkv.embeddings.weight", {vocab, hidden});
  Value h = b.embedding(ids, table);

  // A [1, 1, C] time-mix vector as [C].
  auto mix = [&](const std::string &name) {
    return b.squeezeWeight(b.weight(name, {1, 1, hidden}), {hidden});
  };
  auto norm = [&](Value x, const std::string &name, double epsilon) {
    return b.layerNorm(x, b.weight(name + ".weight", {hidden}),
                       b.weight(name + ".bias", {hidden}), epsilon);
  };

  for (int64_t i = 0; i < layers; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("rwkv.blocks.{0}.", i).str();
    // Inference rescaling of the two projections that write the stream.
    double rescale = rescaleEvery > 0
                         ? std::ldexp(1.0, -static_cast<int>(i / rescaleEvery))
                         : 1.0;
    auto scaled = [&](Value w) {
      return rescale == 1.0 ? w : b.scale(w, rescale);
    };
    if (i == 0)
      h = norm(h, p + "pre_ln", eps);

    // Time-mix.
    Value x = norm(h, p + "ln1", eps);
    Value shifted = b.tokenShift(x, p + "attention.time_shift");
    std::string a = p + "attention.";
    Value xk = b.lerp(shifted, x, mix(a + "time_mix_key"));
    Value xv = b.lerp(shifted, x, mix(a + "time_mix_value"));
    Value xr = b.lerp(shifted, x, mix(a + "time_mix_receptance"));
    Value k = b.linear(xk, b.weight(a + "key.weight", {attention, hidden}));
    Value v = b.linear(xv, b.weight(a + "value.weight", {attention, hidden}));
    Value r = b.act(
        ActKind::sigmoid,
        b.linear(xr, b.weight(a + "receptance.weight", {attention, hidden})));
    Value y = b.mixer(p + "attention", v, [&](Value value) {
      ImportBuilder::RecurrenceOperands wkv;
      wkv.k = b.splitHeads(k, attention);
      wkv.v = b.splitHeads(value, attention);
      wkv.logDecay =
          b.act(ActKind::neg_exp, b.weight(a + "time_decay", {attention}));
      wkv.bonus =
          b.splitHeads(b.weight(a + "time_first", {attention}), attention);
      wkv.normalize = true;
      wkv.name = p + "attention.wkv";
      return b.mul(r, b.mergeHeads(b.recurrence(wkv)));
    });
    Value wo = scaled(b.weight(a + "output.weight", {hidden, attention}));
    h = b.add(h, b.linear(y, wo));

    // Channel-mix.
    Value x2 = norm(h, p + "ln2", eps);
    Value shifted2 = b.tokenShift(x2, p + "feed_forward.time_shift");
    std::string f = p + "feed_forward.";
    Value fk = b.lerp(shifted2, x2, mix(f + "time_mix_key"));
    Value fr = b.lerp(shifted2, x2, mix(f + "time_mix_receptance"));
    Value key =
        b.act(ActKind::relu_square,
              b.linear(fk, b.weight(f + "key.weight", {inner, hidden})));
    Value fv =
        b.linear(key, scaled(b.weight(f + "value.weight", {hidden, inner})));
    Value gate = b.act(
        ActKind::sigmoid,
        b.linear(fr, b.weight(f + "receptance.weight", {hidden, hidden})));
    h = b.add(h, b.mul(gate, fv));

    if (rescaleEvery > 0 && (i + 1) % rescaleEvery == 0)
      h = b.scale(h, 0.5);
    b.trace(h, llvm::formatv("hidden_states.{0}", i).str());
  }
  // ln_out is nn.LayerNorm(hidden_size): its eps is always 1e-5.
  Value out = norm(h, "rwkv.ln_out", 1e-5);
  b.trace(out, llvm::formatv("hidden_states.{0}", layers).str());
  Value head = tied ? table : b.weight("head.weight", {vocab, hidden});
  return b.finish(b.linear(out, head));
}
