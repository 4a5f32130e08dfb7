// RWKV-4 (Hugging Face RwkvForCausalLM layout), one block.
//   vocab 64, hidden 32, attention_hidden 32, intermediate 128, LayerNorm
//   eps 1e-5 (layer_norm_epsilon, and ln_out's default), extra pre_ln on
//   block 0, no linear biases, untied head.
// Time-mix: zero-padded token shift, lerps x·μ + shift(x)·(1 − μ) for k, v
//   and r, then wkv in the ratio form of glint.recurrence (normalize): one
//   head per channel (K = V = 1), keys are the log-weights k,
//   w = −exp(time_decay), bonus u = time_first on the diagonal only;
//   out = output(σ(r) ⊙ wkv).
// Channel-mix: σ(receptance(xr)) ⊙ value(relu(key(xk))²).
// rescale_every (6 when the config omits it) leaves a 1-block model as is:
//   block 0's weights are divided by 2^(0 // 6) = 1 and the stream is halved
//   after block b only when (b + 1) % 6 == 0.
// Weights are external and bound by their checkpoint names; the [1, 1, C]
// time_mix tensors are collapsed to [C].
#tok = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#chan = affine_map<(d0, d1, d2) -> (d2)>
module {
  ml_program.global private @"rwkv.embeddings.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"rwkv.blocks.0.pre_ln.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.pre_ln.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.ln1.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.ln1.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.ln2.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.ln2.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.time_decay"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.time_first"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.time_mix_key"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.time_mix_value"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.time_mix_receptance"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.key.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.value.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.receptance.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"rwkv.blocks.0.attention.output.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"rwkv.blocks.0.feed_forward.time_mix_key"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"rwkv.blocks.0.feed_forward.time_mix_receptance"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"rwkv.blocks.0.feed_forward.key.weight"(#ml_program.extern : tensor<128x32xf32>) : tensor<128x32xf32>
  ml_program.global private @"rwkv.blocks.0.feed_forward.receptance.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"rwkv.blocks.0.feed_forward.value.weight"(#ml_program.extern : tensor<32x128xf32>) : tensor<32x128xf32>
  ml_program.global private @"rwkv.ln_out.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"rwkv.ln_out.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"head.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %one = arith.constant 1.0 : f32
    %emb = ml_program.global_load_const @"rwkv.embeddings.weight" : tensor<64x32xf32>
    %e = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
    %b = tensor.dim %e, %c0 : tensor<?x?x32xf32>
    %l = tensor.dim %e, %c1 : tensor<?x?x32xf32>
    %init = tensor.empty(%b, %l) : tensor<?x?x32xf32>
    // Block 0 alone normalises the embeddings first (pre_ln).
    %pw = ml_program.global_load_const @"rwkv.blocks.0.pre_ln.weight" : tensor<32xf32>
    %pb = ml_program.global_load_const @"rwkv.blocks.0.pre_ln.bias" : tensor<32xf32>
    %h0 = glint.layer_norm %e weight %pw bias %pb epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>

    // Time-mix: h1 = h0 + output(σ(r) ⊙ wkv(k, v)), all on ln1(h0).
    %n1w = ml_program.global_load_const @"rwkv.blocks.0.ln1.weight" : tensor<32xf32>
    %n1b = ml_program.global_load_const @"rwkv.blocks.0.ln1.bias" : tensor<32xf32>
    %n1 = glint.layer_norm %h0 weight %n1w bias %n1b epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %s1 = glint.token_shift %n1 : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
    %mk3 = ml_program.global_load_const @"rwkv.blocks.0.attention.time_mix_key" : tensor<1x1x32xf32>
    %mv3 = ml_program.global_load_const @"rwkv.blocks.0.attention.time_mix_value" : tensor<1x1x32xf32>
    %mr3 = ml_program.global_load_const @"rwkv.blocks.0.attention.time_mix_receptance" : tensor<1x1x32xf32>
    %mk = tensor.collapse_shape %mk3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    %mv = tensor.collapse_shape %mv3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    %mr = tensor.collapse_shape %mr3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    // The three lerps x·μ + shift(x)·(1 − μ), written as HF evaluates them.
    %xm:3 = linalg.generic {indexing_maps = [#tok, #tok, #chan, #chan, #chan, #tok, #tok, #tok], iterator_types = ["parallel", "parallel", "parallel"]} ins(%n1, %s1, %mk, %mv, %mr : tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>, tensor<32xf32>) outs(%init, %init, %init : tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>) {
    ^bb0(%x: f32, %sx: f32, %uk: f32, %uv: f32, %ur: f32, %o0: f32, %o1: f32, %o2: f32):
      %xk0 = arith.mulf %x, %uk : f32
      %ck = arith.subf %one, %uk : f32
      %xk1 = arith.mulf %sx, %ck : f32
      %xk = arith.addf %xk0, %xk1 : f32
      %xv0 = arith.mulf %x, %uv : f32
      %cv = arith.subf %one, %uv : f32
      %xv1 = arith.mulf %sx, %cv : f32
      %xv = arith.addf %xv0, %xv1 : f32
      %xr0 = arith.mulf %x, %ur : f32
      %cr = arith.subf %one, %ur : f32
      %xr1 = arith.mulf %sx, %cr : f32
      %xr = arith.addf %xr0, %xr1 : f32
      linalg.yield %xk, %xv, %xr : f32, f32, f32
    } -> (tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x?x32xf32>)
    %wk = ml_program.global_load_const @"rwkv.blocks.0.attention.key.weight" : tensor<32x32xf32>
    %wv = ml_program.global_load_const @"rwkv.blocks.0.attention.value.weight" : tensor<32x32xf32>
    %wr = ml_program.global_load_const @"rwkv.blocks.0.attention.receptance.weight" : tensor<32x32xf32>
    %k = glint.linear %xm#0, %wk : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %v = glint.linear %xm#1, %wv : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %rl = glint.linear %xm#2, %wr : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %r = glint.act sigmoid %rl : tensor<?x?x32xf32>
    // The value projection is the value input; k (log-weights) and σ(r) are
    // control values captured from above. The shifts and lerps feed the
    // projections, so they stay outside the matrix.
    %y = glint.mixer label "rwkv.blocks.0.attention" (%v) : tensor<?x?x32xf32> -> tensor<?x?x32xf32> {
    ^bb0(%xv: tensor<?x?x32xf32>):
      %td = ml_program.global_load_const @"rwkv.blocks.0.attention.time_decay" : tensor<32xf32>
      %w = glint.act neg_exp %td : tensor<32xf32>
      %tf = ml_program.global_load_const @"rwkv.blocks.0.attention.time_first" : tensor<32xf32>
      %u = tensor.expand_shape %tf [[0, 1]] output_shape [32, 1] : tensor<32xf32> into tensor<32x1xf32>
      // One head per channel, K = V = 1: row t of each channel's matrix is a
      // softmax over {k_j + (t−1−j)·w : j < t} ∪ {u + k_t}.
      %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [%b, %l, 32, 1] : tensor<?x?x32xf32> into tensor<?x?x32x1xf32>
      %v4 = tensor.expand_shape %xv [[0], [1], [2, 3]] output_shape [%b, %l, 32, 1] : tensor<?x?x32xf32> into tensor<?x?x32x1xf32>
      %wkv = glint.recurrence normalize k(%k4) v(%v4) log_decay(%w) bonus(%u) : (tensor<?x?x32x1xf32>, tensor<?x?x32x1xf32>, tensor<32xf32>, tensor<32x1xf32>) -> tensor<?x?x32x1xf32>
      %wkv3 = tensor.collapse_shape %wkv [[0], [1], [2, 3]] : tensor<?x?x32x1xf32> into tensor<?x?x32xf32>
      %g = arith.mulf %r, %wkv3 : tensor<?x?x32xf32>
      glint.yield %g : tensor<?x?x32xf32>
    }
    %wo = ml_program.global_load_const @"rwkv.blocks.0.attention.output.weight" : tensor<32x32xf32>
    %att = glint.linear %y, %wo : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %h1 = arith.addf %h0, %att : tensor<?x?x32xf32>

    // Channel-mix: h2 = h1 + σ(receptance(xr)) ⊙ value(relu(key(xk))²) on
    // ln2(h1). Its token shift mixes neighbours too, but, as in the implicit
    // attention formulation, only the time-mix is a glint.mixer.
    %n2w = ml_program.global_load_const @"rwkv.blocks.0.ln2.weight" : tensor<32xf32>
    %n2b = ml_program.global_load_const @"rwkv.blocks.0.ln2.bias" : tensor<32xf32>
    %n2 = glint.layer_norm %h1 weight %n2w bias %n2b epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %s2 = glint.token_shift %n2 : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
    %fk3 = ml_program.global_load_const @"rwkv.blocks.0.feed_forward.time_mix_key" : tensor<1x1x32xf32>
    %fr3 = ml_program.global_load_const @"rwkv.blocks.0.feed_forward.time_mix_receptance" : tensor<1x1x32xf32>
    %fmk = tensor.collapse_shape %fk3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    %fmr = tensor.collapse_shape %fr3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    %fm:2 = linalg.generic {indexing_maps = [#tok, #tok, #chan, #chan, #tok, #tok], iterator_types = ["parallel", "parallel", "parallel"]} ins(%n2, %s2, %fmk, %fmr : tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) outs(%init, %init : tensor<?x?x32xf32>, tensor<?x?x32xf32>) {
    ^bb0(%x: f32, %sx: f32, %uk: f32, %ur: f32, %o0: f32, %o1: f32):
      %xk0 = arith.mulf %x, %uk : f32
      %ck = arith.subf %one, %uk : f32
      %xk1 = arith.mulf %sx, %ck : f32
      %xk = arith.addf %xk0, %xk1 : f32
      %xr0 = arith.mulf %x, %ur : f32
      %cr = arith.subf %one, %ur : f32
      %xr1 = arith.mulf %sx, %cr : f32
      %xr = arith.addf %xr0, %xr1 : f32
      linalg.yield %xk, %xr : f32, f32
    } -> (tensor<?x?x32xf32>, tensor<?x?x32xf32>)
    %fwk = ml_program.global_load_const @"rwkv.blocks.0.feed_forward.key.weight" : tensor<128x32xf32>
    %fwv = ml_program.global_load_const @"rwkv.blocks.0.feed_forward.value.weight" : tensor<32x128xf32>
    %fwr = ml_program.global_load_const @"rwkv.blocks.0.feed_forward.receptance.weight" : tensor<32x32xf32>
    %fkl = glint.linear %fm#0, %fwk : (tensor<?x?x32xf32>, tensor<128x32xf32>) -> tensor<?x?x128xf32>
    %fka = glint.act relu_square %fkl : tensor<?x?x128xf32>
    %fv = glint.linear %fka, %fwv : (tensor<?x?x128xf32>, tensor<32x128xf32>) -> tensor<?x?x32xf32>
    %frl = glint.linear %fm#1, %fwr : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %fr = glint.act sigmoid %frl : tensor<?x?x32xf32>
    %ffn = arith.mulf %fr, %fv : tensor<?x?x32xf32>
    %h2 = arith.addf %h1, %ffn : tensor<?x?x32xf32>

    %ow = ml_program.global_load_const @"rwkv.ln_out.weight" : tensor<32xf32>
    %ob = ml_program.global_load_const @"rwkv.ln_out.bias" : tensor<32xf32>
    %nf = glint.layer_norm %h2 weight %ow bias %ob epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %head = ml_program.global_load_const @"head.weight" : tensor<64x32xf32>
    %logits = glint.linear %nf, %head : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
