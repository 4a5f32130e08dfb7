// RWKV-6 "Finch" (layout of the public RWKV-6 checkpoints, RWKV-LM x060),
// one block.
//   vocab 64, n_embd 64, dim_att 64, head_size 16 → 4 heads, D_MIX_LORA 8,
//   D_DECAY_LORA 16, dim_ffn 224, LayerNorm eps 1e-5, ln0 on block 0, no
//   linear biases, untied head.
// Time-mix, data-dependent token shift (ddlerp): xx = shift(x) − x (zero at
//   t = 0), m = tanh((x + xx·maa_x) @ maa_w1) in 5 groups of D_MIX, group i
//   @ maa_w2[i]; x_i = x + xx·(maa_i + m_i) for i = w, k, v, r, g (the
//   checkpoint's group order). Decay w = time_decay + tanh(x_w @ decay_w1)
//   @ decay_w2, log-decay −exp(w) per key. Per head (K = V = 16):
//   S_t = diag(exp(−exp(w_t))) S_{t−1} + k_t v_tᵀ,
//   o_t = S_{t−1}ᵀ r_t + (r_t·(u ⊙ k_t)) v_t with u = time_faaaa.
//   Then ln_x = GroupNorm(4) with eps 1e-5 · head_size_divisor² = 6.4e-4,
//   ⊙ silu(gate(x_g)), output.
// Channel-mix: σ(receptance(xr)) ⊙ value(relu(key(xk))²) with
//   xk, xr = x + xx·maa_k, x + xx·maa_r.
// Weights are external and bound by their checkpoint names; the [1, 1, C]
// maa and time_decay tensors are collapsed to [C]; the LoRA matrices are
// stored [in, out] (layout in_out).
#tok = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#chan = affine_map<(d0, d1, d2) -> (d2)>
#tok5 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#each5 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
module {
  ml_program.global private @"emb.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.ln0.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ln0.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ln1.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ln1.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ln2.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ln2.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.att.time_maa_x"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_w"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_k"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_v"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_r"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_g"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_maa_w1"(#ml_program.extern : tensor<64x40xf32>) : tensor<64x40xf32>
  ml_program.global private @"blocks.0.att.time_maa_w2"(#ml_program.extern : tensor<5x8x64xf32>) : tensor<5x8x64xf32>
  ml_program.global private @"blocks.0.att.time_decay"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.att.time_decay_w1"(#ml_program.extern : tensor<64x16xf32>) : tensor<64x16xf32>
  ml_program.global private @"blocks.0.att.time_decay_w2"(#ml_program.extern : tensor<16x64xf32>) : tensor<16x64xf32>
  ml_program.global private @"blocks.0.att.time_faaaa"(#ml_program.extern : tensor<4x16xf32>) : tensor<4x16xf32>
  ml_program.global private @"blocks.0.att.receptance.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.att.key.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.att.value.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.att.gate.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.att.output.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.att.ln_x.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.att.ln_x.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"blocks.0.ffn.time_maa_k"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.ffn.time_maa_r"(#ml_program.extern : tensor<1x1x64xf32>) : tensor<1x1x64xf32>
  ml_program.global private @"blocks.0.ffn.key.weight"(#ml_program.extern : tensor<224x64xf32>) : tensor<224x64xf32>
  ml_program.global private @"blocks.0.ffn.receptance.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
  ml_program.global private @"blocks.0.ffn.value.weight"(#ml_program.extern : tensor<64x224xf32>) : tensor<64x224xf32>
  ml_program.global private @"ln_out.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"ln_out.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"head.weight"(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %emb = ml_program.global_load_const @"emb.weight" : tensor<64x64xf32>
    %e = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %b = tensor.dim %e, %c0 : tensor<?x?x64xf32>
    %l = tensor.dim %e, %c1 : tensor<?x?x64xf32>
    %init = tensor.empty(%b, %l) : tensor<?x?x64xf32>
    %l0w = ml_program.global_load_const @"blocks.0.ln0.weight" : tensor<64xf32>
    %l0b = ml_program.global_load_const @"blocks.0.ln0.bias" : tensor<64xf32>
    %h0 = glint.layer_norm %e weight %l0w bias %l0b epsilon 1.0e-05 : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>

    // Time-mix on x = ln1(h0).
    %l1w = ml_program.global_load_const @"blocks.0.ln1.weight" : tensor<64xf32>
    %l1b = ml_program.global_load_const @"blocks.0.ln1.bias" : tensor<64xf32>
    %x = glint.layer_norm %h0 weight %l1w bias %l1b epsilon 1.0e-05 : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %sx = glint.token_shift %x : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %xx = arith.subf %sx, %x : tensor<?x?x64xf32>
    %mx3 = ml_program.global_load_const @"blocks.0.att.time_maa_x" : tensor<1x1x64xf32>
    %mx = tensor.collapse_shape %mx3 [[0, 1, 2]] : tensor<1x1x64xf32> into tensor<64xf32>
    %xxx = linalg.generic {indexing_maps = [#tok, #tok, #chan, #tok], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %xx, %mx : tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<64xf32>) outs(%init : tensor<?x?x64xf32>) {
    ^bb0(%a: f32, %d: f32, %m: f32, %o: f32):
      %p = arith.mulf %d, %m : f32
      %s = arith.addf %a, %p : f32
      linalg.yield %s : f32
    } -> tensor<?x?x64xf32>
    %w1 = ml_program.global_load_const @"blocks.0.att.time_maa_w1" : tensor<64x40xf32>
    %lo = glint.linear %xxx, %w1 layout in_out : (tensor<?x?x64xf32>, tensor<64x40xf32>) -> tensor<?x?x40xf32>
    %lt = glint.act tanh %lo : tensor<?x?x40xf32>
    // maa_w2 [5, D_MIX, C] is a block-diagonal [in, out] weight: one linear
    // is the reference's bmm over the 5 groups, and the five maa_i as its
    // bias give maa_i + m_i directly.
    %mw3 = ml_program.global_load_const @"blocks.0.att.time_maa_w" : tensor<1x1x64xf32>
    %mk3 = ml_program.global_load_const @"blocks.0.att.time_maa_k" : tensor<1x1x64xf32>
    %mv3 = ml_program.global_load_const @"blocks.0.att.time_maa_v" : tensor<1x1x64xf32>
    %mr3 = ml_program.global_load_const @"blocks.0.att.time_maa_r" : tensor<1x1x64xf32>
    %mg3 = ml_program.global_load_const @"blocks.0.att.time_maa_g" : tensor<1x1x64xf32>
    %maa3 = tensor.concat dim(2) %mw3, %mk3, %mv3, %mr3, %mg3 : (tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>) -> tensor<1x1x320xf32>
    %maa = tensor.collapse_shape %maa3 [[0, 1, 2]] : tensor<1x1x320xf32> into tensor<320xf32>
    %w2 = ml_program.global_load_const @"blocks.0.att.time_maa_w2" : tensor<5x8x64xf32>
    %mm = glint.linear %lt, %w2 bias %maa layout in_out : (tensor<?x?x40xf32>, tensor<5x8x64xf32>, tensor<320xf32>) -> tensor<?x?x320xf32>
    %mm5 = tensor.expand_shape %mm [[0], [1], [2, 3]] output_shape [%b, %l, 5, 64] : tensor<?x?x320xf32> into tensor<?x?x5x64xf32>
    %init5 = tensor.empty(%b, %l) : tensor<?x?x5x64xf32>
    %xs = linalg.generic {indexing_maps = [#each5, #each5, #tok5, #tok5], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %xx, %mm5 : tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x5x64xf32>) outs(%init5 : tensor<?x?x5x64xf32>) {
    ^bb0(%a: f32, %d: f32, %m: f32, %o: f32):
      %p = arith.mulf %d, %m : f32
      %s = arith.addf %a, %p : f32
      linalg.yield %s : f32
    } -> tensor<?x?x5x64xf32>
    %xw = tensor.extract_slice %xs[0, 0, 0, 0] [%b, %l, 1, 64] [1, 1, 1, 1] : tensor<?x?x5x64xf32> to tensor<?x?x64xf32>
    %xk = tensor.extract_slice %xs[0, 0, 1, 0] [%b, %l, 1, 64] [1, 1, 1, 1] : tensor<?x?x5x64xf32> to tensor<?x?x64xf32>
    %xv = tensor.extract_slice %xs[0, 0, 2, 0] [%b, %l, 1, 64] [1, 1, 1, 1] : tensor<?x?x5x64xf32> to tensor<?x?x64xf32>
    %xr = tensor.extract_slice %xs[0, 0, 3, 0] [%b, %l, 1, 64] [1, 1, 1, 1] : tensor<?x?x5x64xf32> to tensor<?x?x64xf32>
    %xg = tensor.extract_slice %xs[0, 0, 4, 0] [%b, %l, 1, 64] [1, 1, 1, 1] : tensor<?x?x5x64xf32> to tensor<?x?x64xf32>
    %wr = ml_program.global_load_const @"blocks.0.att.receptance.weight" : tensor<64x64xf32>
    %wk = ml_program.global_load_const @"blocks.0.att.key.weight" : tensor<64x64xf32>
    %wv = ml_program.global_load_const @"blocks.0.att.value.weight" : tensor<64x64xf32>
    %wg = ml_program.global_load_const @"blocks.0.att.gate.weight" : tensor<64x64xf32>
    %r = glint.linear %xr, %wr : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %k = glint.linear %xk, %wk : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %v = glint.linear %xv, %wv : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %gl = glint.linear %xg, %wg : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %g = glint.act silu %gl : tensor<?x?x64xf32>
    // Decay LoRA; time_decay is the bias of its second matrix.
    %dw1 = ml_program.global_load_const @"blocks.0.att.time_decay_w1" : tensor<64x16xf32>
    %dw2 = ml_program.global_load_const @"blocks.0.att.time_decay_w2" : tensor<16x64xf32>
    %td3 = ml_program.global_load_const @"blocks.0.att.time_decay" : tensor<1x1x64xf32>
    %td = tensor.collapse_shape %td3 [[0, 1, 2]] : tensor<1x1x64xf32> into tensor<64xf32>
    %dl = glint.linear %xw, %dw1 layout in_out : (tensor<?x?x64xf32>, tensor<64x16xf32>) -> tensor<?x?x16xf32>
    %dt = glint.act tanh %dl : tensor<?x?x16xf32>
    %w = glint.linear %dt, %dw2 bias %td layout in_out : (tensor<?x?x16xf32>, tensor<16x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %lw = glint.act neg_exp %w : tensor<?x?x64xf32>
    // The value input is the flat value projection: a mixer's value input is
    // [batch, seq, channels], and the head split is only a reshape inside.
    // r, k and the decay are control values. The mixer ends at the
    // recurrence: ln_x subtracts a per-head mean, which mixes channels.
    %y = glint.mixer label "blocks.0.att" (%v) : tensor<?x?x64xf32> -> tensor<?x?x64xf32> {
    ^bb0(%vin: tensor<?x?x64xf32>):
      %u = ml_program.global_load_const @"blocks.0.att.time_faaaa" : tensor<4x16xf32>
      %r4 = tensor.expand_shape %r [[0], [1], [2, 3]] output_shape [%b, %l, 4, 16] : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
      %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [%b, %l, 4, 16] : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
      %v4 = tensor.expand_shape %vin [[0], [1], [2, 3]] output_shape [%b, %l, 4, 16] : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
      %lw4 = tensor.expand_shape %lw [[0], [1], [2, 3]] output_shape [%b, %l, 4, 16] : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
      %o4 = glint.recurrence q(%r4) k(%k4) v(%v4) log_decay(%lw4) bonus(%u) : (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<4x16xf32>) -> tensor<?x?x4x16xf32>
      %o = tensor.collapse_shape %o4 [[0], [1], [2, 3]] : tensor<?x?x4x16xf32> into tensor<?x?x64xf32>
      glint.yield %o : tensor<?x?x64xf32>
    }
    %lxw = ml_program.global_load_const @"blocks.0.att.ln_x.weight" : tensor<64xf32>
    %lxb = ml_program.global_load_const @"blocks.0.att.ln_x.bias" : tensor<64xf32>
    %yn = glint.group_norm %y groups 4 weight %lxw bias %lxb epsilon 6.4e-04 : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %yg = arith.mulf %yn, %g : tensor<?x?x64xf32>
    %wo = ml_program.global_load_const @"blocks.0.att.output.weight" : tensor<64x64xf32>
    %att = glint.linear %yg, %wo : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %h1 = arith.addf %h0, %att : tensor<?x?x64xf32>

    // Channel-mix on ln2(h1); only the time-mix is a glint.mixer.
    %l2w = ml_program.global_load_const @"blocks.0.ln2.weight" : tensor<64xf32>
    %l2b = ml_program.global_load_const @"blocks.0.ln2.bias" : tensor<64xf32>
    %f = glint.layer_norm %h1 weight %l2w bias %l2b epsilon 1.0e-05 : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %sf = glint.token_shift %f : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %ff = arith.subf %sf, %f : tensor<?x?x64xf32>
    %fk3 = ml_program.global_load_const @"blocks.0.ffn.time_maa_k" : tensor<1x1x64xf32>
    %fr3 = ml_program.global_load_const @"blocks.0.ffn.time_maa_r" : tensor<1x1x64xf32>
    %fmk = tensor.collapse_shape %fk3 [[0, 1, 2]] : tensor<1x1x64xf32> into tensor<64xf32>
    %fmr = tensor.collapse_shape %fr3 [[0, 1, 2]] : tensor<1x1x64xf32> into tensor<64xf32>
    %fx:2 = linalg.generic {indexing_maps = [#tok, #tok, #chan, #chan, #tok, #tok], iterator_types = ["parallel", "parallel", "parallel"]} ins(%f, %ff, %fmk, %fmr : tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) outs(%init, %init : tensor<?x?x64xf32>, tensor<?x?x64xf32>) {
    ^bb0(%a: f32, %d: f32, %mk: f32, %mr: f32, %o0: f32, %o1: f32):
      %pk = arith.mulf %d, %mk : f32
      %sk = arith.addf %a, %pk : f32
      %pr = arith.mulf %d, %mr : f32
      %sr = arith.addf %a, %pr : f32
      linalg.yield %sk, %sr : f32, f32
    } -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>)
    %fwk = ml_program.global_load_const @"blocks.0.ffn.key.weight" : tensor<224x64xf32>
    %fwv = ml_program.global_load_const @"blocks.0.ffn.value.weight" : tensor<64x224xf32>
    %fwr = ml_program.global_load_const @"blocks.0.ffn.receptance.weight" : tensor<64x64xf32>
    %fkl = glint.linear %fx#0, %fwk : (tensor<?x?x64xf32>, tensor<224x64xf32>) -> tensor<?x?x224xf32>
    %fka = glint.act relu_square %fkl : tensor<?x?x224xf32>
    %fv = glint.linear %fka, %fwv : (tensor<?x?x224xf32>, tensor<64x224xf32>) -> tensor<?x?x64xf32>
    %frl = glint.linear %fx#1, %fwr : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    %fr = glint.act sigmoid %frl : tensor<?x?x64xf32>
    %ffn = arith.mulf %fr, %fv : tensor<?x?x64xf32>
    %h2 = arith.addf %h1, %ffn : tensor<?x?x64xf32>

    %ow = ml_program.global_load_const @"ln_out.weight" : tensor<64xf32>
    %ob = ml_program.global_load_const @"ln_out.bias" : tensor<64xf32>
    %nf = glint.layer_norm %h2 weight %ow bias %ob epsilon 1.0e-05 : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %head = ml_program.global_load_const @"head.weight" : tensor<64x64xf32>
    %logits = glint.linear %nf, %head : (tensor<?x?x64xf32>, tensor<64x64xf32>) -> tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
