//===- Rwkv6.cpp - RWKV-6 (Finch) importer --------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// RWKV-6 "Finch" in the layout of the public checkpoints (RWKV-LM x060:
// `emb.weight`, `blocks.N.{ln0,ln1,ln2,att.*,ffn.*}`, `ln_out`, `head`),
// converted from .pth to safetensors unchanged. Sizes come from the weight
// shapes, so a config.json needs only the architecture and, optionally,
// `layer_norm_eps` (1e-5) and `ln_x_eps` (1e-5 · head_size_divisor², with
// head_size_divisor 8 by default).
//
// Facts from the reference implementation: LayerNorm ln0 before block 0;
// data-dependent token shift (ddlerp): with xx = shift(x) − x,
// m = tanh((x + xx·maa_x) @ maa_w1) split in 5 blocks of D_mix, each @ its
// maa_w2[i] (a block-diagonal linear), and x_i = x + xx·(maa_i + m_i) for
// i in (w, k, v, r, g); decay w = time_decay + tanh(x_w @ decay_w1) @
// decay_w2 with per-key log-decay −exp(w); bonus u = time_faaaa; r is the
// query; GroupNorm ln_x per head; gate silu(gate(x_g)); channel mix
// sigmoid(receptance(x_r)) · value(relu(key(x_k))²) with a plain lerp.
//
// Hidden states: entry k is the output of block k, the last is ln_out's.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

/// Size `dim` of weight `name`, or 0 (with the builder's error) if missing
/// or of another rank.
static int64_t weightDim(ImportBuilder &b, StringRef name, unsigned rank,
                         unsigned dim) {
  std::vector<int64_t> shape = b.weightShape(name);
  if (shape.size() != rank) {
    if (!shape.empty())
      b.fail(llvm::formatv("weight '{0}' should have rank {1}", name, rank));
    return 0;
  }
  return shape[dim];
}

Expected<OwningOpRef<ModuleOp>>
mlir::glint::import::importRwkv6(MLIRContext *context,
                                 const llvm::json::Object &object,
                                 const mlir::glint::runtime::Checkpoint &checkpoint,
                                 StringRef source) {
  Config config(object, "RWKV-6");
  double eps = config.getFloat("layer_norm_eps", 1e-5);
  int64_t divisor = config.getSize("head_size_divisor", 8);
  double lnxEps =
      config.getFloat("ln_x_eps", 1e-5 * static_cast<double>(divisor * divisor));
  if (config.error)
    return llvm::createStringError(*config.error);

  ImportBuilder b(context, checkpoint, source);
  int64_t layers = 0;
  while (b.hasWeight(llvm::formatv("blocks.{0}.ln1.weight", layers).str()))
    ++layers;
  if (layers == 0)
    return llvm::createStringError(
        source + ": no 'blocks.0.ln1.weight' in the checkpoint: not the "
                 "RWKV-6 layout");
  int64_t vocab = weightDim(b, "emb.weight", 2, 0);
  int64_t hidden = weightDim(b, "emb.weight", 2, 1);
  int64_t att = weightDim(b, "blocks.0.att.key.weight", 2, 0);
  int64_t heads = weightDim(b, "blocks.0.att.time_faaaa", 2, 0);
  int64_t headSize = weightDim(b, "blocks.0.att.time_faaaa", 2, 1);
  int64_t mix = weightDim(b, "blocks.0.att.time_maa_w2", 3, 1);
  int64_t decayRank = weightDim(b, "blocks.0.att.time_decay_w1", 2, 1);
  int64_t ffn = weightDim(b, "blocks.0.ffn.key.weight", 2, 0);
  if (!b.failed() && heads * headSize != att)
    b.fail(llvm::formatv("time_faaaa [{0}, {1}] does not cover the attention "
                         "width {2}",
                         heads, headSize, att));

  Value ids = b.beginTokenForward();
  Value x = b.embedding(ids, b.weight("emb.weight", {vocab, hidden}));
  auto vec = [&](const std::string &name, int64_t size) {
    return b.squeezeWeight(b.weight(name, {1, 1, size}), {size});
  };
  auto layerNorm = [&](Value v, const std::string &name) {
    return b.layerNorm(v, b.weight(name + ".weight", {hidden}),
                       b.weight(name + ".bias", {hidden}), eps);
  };

  for (int64_t i = 0; i < layers; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("blocks.{0}.", i).str();
    if (i == 0)
      x = layerNorm(x, p + "ln0");

    // Time mix.
    std::string a = p + "att.";
    Value xa = layerNorm(x, p + "ln1");
    Value xx = b.sub(b.tokenShift(xa, a + "time_shift"), xa);
    Value xxx = b.add(xa, b.mulChannelVector(xx, vec(a + "time_maa_x", hidden)));
    Value lora = b.act(ActKind::tanh,
                       b.linear(xxx, b.weight(a + "time_maa_w1", {hidden, 5 * mix}),
                                Value(), WeightLayout::in_out));
    Value m = b.linear(lora, b.weight(a + "time_maa_w2", {5, mix, hidden}),
                       Value(), WeightLayout::in_out);
    auto branch = [&](int64_t index, StringRef name) {
      Value mi = b.sliceLast(m, index * hidden, hidden);
      Value mixVec = b.addChannelVector(mi, vec(a + "time_maa_" + name.str(),
                                                hidden));
      return b.add(xa, b.mul(xx, mixVec));
    };
    Value xw = branch(0, "w"), xk = branch(1, "k"), xv = branch(2, "v"),
          xr = branch(3, "r"), xg = branch(4, "g");
    Value r = b.linear(xr, b.weight(a + "receptance.weight", {att, hidden}));
    Value k = b.linear(xk, b.weight(a + "key.weight", {att, hidden}));
    Value v = b.linear(xv, b.weight(a + "value.weight", {att, hidden}));
    Value g = b.act(ActKind::silu,
                    b.linear(xg, b.weight(a + "gate.weight", {att, hidden})));
    Value w = b.linear(
        b.act(ActKind::tanh,
              b.linear(xw, b.weight(a + "time_decay_w1", {hidden, decayRank}),
                       Value(), WeightLayout::in_out)),
        b.weight(a + "time_decay_w2", {decayRank, att}),
        vec(a + "time_decay", att), WeightLayout::in_out);
    Value logDecay = b.act(ActKind::neg_exp, w);
    // The mixer holds the paper's unified form, diag(gate) · ln_x · A_wkv:
    // ln_x's scale is a diagonal; its centring (which mixes the head's
    // channels) is part of the layer's offset in the attention form.
    Value y = b.mixer(a + "wkv", v, [&](Value vv) {
      ImportBuilder::RecurrenceOperands rec;
      rec.q = b.splitHeads(r, heads);
      rec.k = b.splitHeads(k, heads);
      rec.v = b.splitHeads(vv, heads);
      rec.logDecay = b.splitHeads(logDecay, heads);
      rec.bonus = b.weight(a + "time_faaaa", {heads, headSize});
      rec.name = a + "wkv";
      Value o = b.groupNorm(b.mergeHeads(b.recurrence(rec)), heads,
                            b.weight(a + "ln_x.weight", {att}),
                            b.weight(a + "ln_x.bias", {att}), lnxEps);
      return b.mul(o, g);
    });
    x = b.add(x, b.linear(y, b.weight(a + "output.weight", {hidden, att})));

    // Channel mix.
    std::string f = p + "ffn.";
    Value xf = layerNorm(x, p + "ln2");
    Value shifted = b.tokenShift(xf, f + "time_shift");
    Value fk = b.lerp(xf, shifted, vec(f + "time_maa_k", hidden));
    Value fr = b.lerp(xf, shifted, vec(f + "time_maa_r", hidden));
    Value kk = b.act(ActKind::relu_square,
                     b.linear(fk, b.weight(f + "key.weight", {ffn, hidden})));
    Value rr = b.act(ActKind::sigmoid,
                     b.linear(fr, b.weight(f + "receptance.weight",
                                           {hidden, hidden})));
    x = b.add(x, b.mul(rr, b.linear(kk, b.weight(f + "value.weight",
                                                 {hidden, ffn}))));
    b.trace(x, llvm::formatv("hidden_states.{0}", i).str());
  }
  Value out = layerNorm(x, "ln_out");
  b.trace(out, llvm::formatv("hidden_states.{0}", layers).str());
  Value head = b.hasWeight("head.weight")
                   ? b.weight("head.weight", {vocab, hidden})
                   : b.weight("emb.weight", {vocab, hidden});
  return b.finish(b.linear(out, head));
}
