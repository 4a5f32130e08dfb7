//===- Mamba.cpp - MambaForCausalLM importer ------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Hugging Face MambaForCausalLM. Facts from the reference implementation:
// in_proj gives [x, z]; depthwise causal conv with bias, then SiLU;
// x_proj gives [dt (rank R), B (N), C (N)]; delta = softplus(dt_proj(dt) +
// bias) with the bias before the softplus; A = -exp(A_log); Euler B̄ = Δ·B;
// D skips the post-conv activation; gate SiLU(z); pre-norm RMSNorm blocks
// with the residual added after the mixer; final norm_f; lm_head tied to the
// embedding unless tie_word_embeddings is false.
//
// Hidden states traced as Hugging Face (transformers 5) returns them: entry k
// is the output of layer k (the embedding is not an entry), the last entry is
// norm_f's output.
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
mlir::glint::import::importMamba(MLIRContext *context,
                                 const llvm::json::Object &object,
                                 const mlir::glint::runtime::Checkpoint &checkpoint,
                                 StringRef source) {
  Config config(object, "MambaForCausalLM");
  int64_t vocab = config.getSize("vocab_size");
  int64_t hidden = config.getSize("hidden_size");
  int64_t layers = config.getSize("num_hidden_layers");
  int64_t state = config.getSize("state_size");
  int64_t width = config.getSize("conv_kernel", 4);
  int64_t inner =
      config.getSize("intermediate_size", config.getSize("expand", 2) * hidden);
  double eps = config.getFloat("layer_norm_epsilon", 1e-5);
  bool tied = config.getBool("tie_word_embeddings", true);
  int64_t rank = static_cast<int64_t>(std::ceil(hidden / 16.0));
  if (config.has("time_step_rank")) {
    if (auto s = object.getString("time_step_rank")) {
      if (*s != "auto")
        config.error = "config.json: time_step_rank should be an integer "
                       "or \"auto\"";
    } else {
      rank = config.getSize("time_step_rank");
    }
  }
  std::string activation = config.getString("hidden_act", "silu");
  if (activation != "silu" && !config.error)
    config.error = "config.json: hidden_act '" + activation +
                   "' is not supported (MambaForCausalLM: only 'silu')";
  if (config.error)
    return llvm::createStringError(*config.error);

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
    Value xz = b.linear(n, b.weight(p + "mixer.in_proj.weight",
                                    {2 * inner, hidden}),
                        b.optionalWeight(p + "mixer.in_proj.bias", {2 * inner}));
    Value x = b.sliceLast(xz, 0, inner);
    Value z = b.sliceLast(xz, inner, inner);
    Value y = b.mixer(p + "mixer", x, [&](Value xv) {
      Value convW = b.squeezeWeight(
          b.weight(p + "mixer.conv1d.weight", {inner, 1, width}),
          {inner, width});
      Value convB = b.optionalWeight(p + "mixer.conv1d.bias", {inner});
      Value u =
          b.act(ActKind::silu, b.conv1d(xv, convW, convB,
                                        /*reverse=*/false, p + "mixer.conv1d"));
      Value dbc = b.linear(
          u, b.weight(p + "mixer.x_proj.weight", {rank + 2 * state, inner}));
      Value dt = b.sliceLast(dbc, 0, rank);
      Value bm = b.sliceLast(dbc, rank, state);
      Value cm = b.sliceLast(dbc, rank + state, state);
      Value delta = b.act(
          ActKind::softplus,
          b.linear(dt, b.weight(p + "mixer.dt_proj.weight", {inner, rank}),
                   b.weight(p + "mixer.dt_proj.bias", {inner})));
      Value a = b.act(ActKind::neg_exp,
                      b.weight(p + "mixer.A_log", {inner, state}));
      ImportBuilder::RecurrenceOperands r;
      r.q = b.splitHeads(cm, 1);
      r.k = b.splitHeads(bm, 1);
      r.v = b.splitHeads(u, inner);
      r.logDecay = a;
      r.delta = delta;
      r.skip = b.weight(p + "mixer.D", {inner});
      r.name = p + "mixer.ssm";
      Value s = b.mergeHeads(b.recurrence(r));
      return b.mul(s, b.act(ActKind::silu, z));
    });
    Value o = b.linear(y, b.weight(p + "mixer.out_proj.weight", {hidden, inner}),
                       b.optionalWeight(p + "mixer.out_proj.bias", {hidden}));
    h = b.add(h, o);
    b.trace(h, llvm::formatv("hidden_states.{0}", i).str());
  }
  Value nf = b.rmsNorm(h, b.weight("backbone.norm_f.weight", {hidden}), eps);
  b.trace(nf, llvm::formatv("hidden_states.{0}", layers).str());
  Value head = tied ? table : b.weight("lm_head.weight", {vocab, hidden});
  return b.finish(b.linear(nf, head));
}
