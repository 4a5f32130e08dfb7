// Griffin / RecurrentGemma (Hugging Face RecurrentGemmaForCausalLM layout), two layers:
//   block_types (recurrent, attention). vocab 64, hidden 32, lru_width 32, 2 heads,
//   conv width 4 (with bias), intermediate_size 64 -> MLP width 32, hidden_activation
//   gelu_pytorch_tanh, RMSNorm eps 1e-6 with scale (1 + w), embedding scaled by
//   sqrt(32) rounded to bfloat16 (5.65625), attention: 2 query heads, 1 kv head,
//   head_dim 16, partial rotary factor 0.5 (rotary_dim 8, rope_theta 10000),
//   scale 16^-0.5, window 2048, o_proj bias; lm_head tied, logits soft-capped at 30.
//   RG-LRU gates are block-diagonal per head, stored [heads, in/heads, out/heads].
// Weights are external and bound by their checkpoint names.
module {
  ml_program.global private @"model.embed_tokens.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"model.layers.0.temporal_pre_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_y.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_y.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_x.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_x.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.temporal_block.conv_1d.weight"(#ml_program.extern : tensor<32x1x4xf32>) : tensor<32x1x4xf32>
  ml_program.global private @"model.layers.0.temporal_block.conv_1d.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.temporal_block.rg_lru.input_gate_weight"(#ml_program.extern : tensor<2x16x16xf32>) : tensor<2x16x16xf32>
  ml_program.global private @"model.layers.0.temporal_block.rg_lru.input_gate_bias"(#ml_program.extern : tensor<2x16xf32>) : tensor<2x16xf32>
  ml_program.global private @"model.layers.0.temporal_block.rg_lru.recurrent_gate_weight"(#ml_program.extern : tensor<2x16x16xf32>) : tensor<2x16x16xf32>
  ml_program.global private @"model.layers.0.temporal_block.rg_lru.recurrent_gate_bias"(#ml_program.extern : tensor<2x16xf32>) : tensor<2x16xf32>
  ml_program.global private @"model.layers.0.temporal_block.rg_lru.recurrent_param"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_out.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.temporal_block.linear_out.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.channel_pre_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.mlp_block.gate_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.mlp_block.gate_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.mlp_block.up_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.mlp_block.up_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.mlp_block.down_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.mlp_block.down_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.temporal_pre_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.temporal_block.q_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.1.temporal_block.k_proj.weight"(#ml_program.extern : tensor<16x32xf32>) : tensor<16x32xf32>
  ml_program.global private @"model.layers.1.temporal_block.v_proj.weight"(#ml_program.extern : tensor<16x32xf32>) : tensor<16x32xf32>
  ml_program.global private @"model.layers.1.temporal_block.o_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.1.temporal_block.o_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.channel_pre_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.mlp_block.gate_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.1.mlp_block.gate_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.mlp_block.up_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.1.mlp_block.up_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.1.mlp_block.down_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.1.mlp_block.down_proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.final_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %one = arith.constant 1.000000e+00 : f32
    %normalizer = arith.constant 5.656250e+00 : f32
    %cap = arith.constant 3.000000e+01 : f32
    %emb = ml_program.global_load_const @"model.embed_tokens.weight" : tensor<64x32xf32>
    %e = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
    %b = tensor.dim %e, %c0 : tensor<?x?x32xf32>
    %l = tensor.dim %e, %c1 : tensor<?x?x32xf32>
    %init32 = tensor.empty(%b, %l) : tensor<?x?x32xf32>
    %ones = linalg.fill ins(%one : f32) outs(%init32 : tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
    // Embedding times bf16(sqrt(32)) = 5.65625, not 5.65685.
    %nrm = linalg.fill ins(%normalizer : f32) outs(%init32 : tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
    %h0 = arith.mulf %e, %nrm : tensor<?x?x32xf32>

    // Layer 0, recurrent block: r = h0 + linear_out(rglru(conv(linear_x(n))) * gelu(linear_y(n))).
    %tn0w = ml_program.global_load_const @"model.layers.0.temporal_pre_norm.weight" : tensor<32xf32>
    %tn0 = glint.rms_norm %h0 weight %tn0w epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wy = ml_program.global_load_const @"model.layers.0.temporal_block.linear_y.weight" : tensor<32x32xf32>
    %by = ml_program.global_load_const @"model.layers.0.temporal_block.linear_y.bias" : tensor<32xf32>
    %yl = glint.linear %tn0, %wy bias %by : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %ybr = glint.act gelu_tanh %yl : tensor<?x?x32xf32>
    %wx = ml_program.global_load_const @"model.layers.0.temporal_block.linear_x.weight" : tensor<32x32xf32>
    %bx = ml_program.global_load_const @"model.layers.0.temporal_block.linear_x.bias" : tensor<32xf32>
    %xl = glint.linear %tn0, %wx bias %bx : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    // Per-channel decay scale c = -8 * softplus(recurrent_param), from weights only.
    %lam = ml_program.global_load_const @"model.layers.0.temporal_block.rg_lru.recurrent_param" : tensor<32xf32>
    %splam = glint.act softplus %lam : tensor<32xf32>
    %m8 = arith.constant dense<-8.000000e+00> : tensor<32xf32>
    %cdec = arith.mulf %splam, %m8 : tensor<32xf32>
    %cdecb = linalg.broadcast ins(%cdec : tensor<32xf32>) outs(%init32 : tensor<?x?x32xf32>) dimensions = [0, 1]
    %y0 = glint.mixer label "model.layers.0.temporal_block" (%xl) : tensor<?x?x32xf32> -> tensor<?x?x32xf32> {
    ^bb0(%xv: tensor<?x?x32xf32>):
      // Causal depthwise conv with bias (no activation in Griffin).
      %cw3 = ml_program.global_load_const @"model.layers.0.temporal_block.conv_1d.weight" : tensor<32x1x4xf32>
      %cw = tensor.collapse_shape %cw3 [[0, 1], [2]] : tensor<32x1x4xf32> into tensor<32x4xf32>
      %cb = ml_program.global_load_const @"model.layers.0.temporal_block.conv_1d.bias" : tensor<32xf32>
      %xc = glint.conv1d %xv, %cw bias %cb : (tensor<?x?x32xf32>, tensor<32x4xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
      // RG-LRU gates: block-diagonal per head, x @ W[h] + b[h] (weight [in, out] per block).
      %wi = ml_program.global_load_const @"model.layers.0.temporal_block.rg_lru.input_gate_weight" : tensor<2x16x16xf32>
      %bi2 = ml_program.global_load_const @"model.layers.0.temporal_block.rg_lru.input_gate_bias" : tensor<2x16xf32>
      %bi = tensor.collapse_shape %bi2 [[0, 1]] : tensor<2x16xf32> into tensor<32xf32>
      %gil = glint.linear %xc, %wi bias %bi layout in_out : (tensor<?x?x32xf32>, tensor<2x16x16xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
      %gx = glint.act sigmoid %gil : tensor<?x?x32xf32>
      %wa = ml_program.global_load_const @"model.layers.0.temporal_block.rg_lru.recurrent_gate_weight" : tensor<2x16x16xf32>
      %ba2 = ml_program.global_load_const @"model.layers.0.temporal_block.rg_lru.recurrent_gate_bias" : tensor<2x16xf32>
      %ba = tensor.collapse_shape %ba2 [[0, 1]] : tensor<2x16xf32> into tensor<32xf32>
      %gal = glint.linear %xc, %wa bias %ba layout in_out : (tensor<?x?x32xf32>, tensor<2x16x16xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
      %ga = glint.act sigmoid %gal : tensor<?x?x32xf32>
      // log a = -8 * gate_a * softplus(Λ); a² = exp(2 log a); multiplier sqrt(1 - a²).
      %loga = arith.mulf %ga, %cdecb : tensor<?x?x32xf32>
      %loga2 = arith.addf %loga, %loga : tensor<?x?x32xf32>
      %asq = math.exp %loga2 : tensor<?x?x32xf32>
      %oma = arith.subf %ones, %asq : tensor<?x?x32xf32>
      %mul0 = math.sqrt %oma : tensor<?x?x32xf32>
      // Reset at position 0 (position_ids == 0): multiplier 1 there. HF also sets
      // a = 0 there, which only multiplies the zero initial state, so it is omitted.
      %onerow = tensor.extract_slice %ones[0, 0, 0] [%b, 1, 32] [1, 1, 1] : tensor<?x?x32xf32> to tensor<?x1x32xf32>
      %mul = tensor.insert_slice %onerow into %mul0[0, 0, 0] [%b, 1, 32] [1, 1, 1] : tensor<?x1x32xf32> into tensor<?x?x32xf32>
      // One head per channel, K = V = 1, no query (ones). The value is the conv
      // output x (the value path); the key carries gate_x * sqrt(1 - a²), so
      // k v = normalized_x exactly as HF computes it.
      %kk = arith.mulf %mul, %gx : tensor<?x?x32xf32>
      %k = tensor.expand_shape %kk [[0], [1], [2, 3]] output_shape [%b, %l, 32, 1] : tensor<?x?x32xf32> into tensor<?x?x32x1xf32>
      %v = tensor.expand_shape %xc [[0], [1], [2, 3]] output_shape [%b, %l, 32, 1] : tensor<?x?x32xf32> into tensor<?x?x32x1xf32>
      %s = glint.recurrence k(%k) v(%v) log_decay(%loga) : (tensor<?x?x32x1xf32>, tensor<?x?x32x1xf32>, tensor<?x?x32xf32>) -> tensor<?x?x32x1xf32>
      %s2 = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x32x1xf32> into tensor<?x?x32xf32>
      // Output gate: the GeLU-tanh y branch.
      %g = arith.mulf %s2, %ybr : tensor<?x?x32xf32>
      glint.yield %g : tensor<?x?x32xf32>
    }
    %wo0 = ml_program.global_load_const @"model.layers.0.temporal_block.linear_out.weight" : tensor<32x32xf32>
    %bo0 = ml_program.global_load_const @"model.layers.0.temporal_block.linear_out.bias" : tensor<32xf32>
    %o0 = glint.linear %y0, %wo0 bias %bo0 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %r0 = arith.addf %h0, %o0 : tensor<?x?x32xf32>
    // Layer 0 MLP: h1 = r0 + down(gelu_tanh(gate(n)) * up(n)).
    %cn0w = ml_program.global_load_const @"model.layers.0.channel_pre_norm.weight" : tensor<32xf32>
    %cn0 = glint.rms_norm %r0 weight %cn0w epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wg0 = ml_program.global_load_const @"model.layers.0.mlp_block.gate_proj.weight" : tensor<32x32xf32>
    %bg0 = ml_program.global_load_const @"model.layers.0.mlp_block.gate_proj.bias" : tensor<32xf32>
    %gp0 = glint.linear %cn0, %wg0 bias %bg0 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %ga0 = glint.act gelu_tanh %gp0 : tensor<?x?x32xf32>
    %wu0 = ml_program.global_load_const @"model.layers.0.mlp_block.up_proj.weight" : tensor<32x32xf32>
    %bu0 = ml_program.global_load_const @"model.layers.0.mlp_block.up_proj.bias" : tensor<32xf32>
    %up0 = glint.linear %cn0, %wu0 bias %bu0 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %mm0 = arith.mulf %ga0, %up0 : tensor<?x?x32xf32>
    %wd0 = ml_program.global_load_const @"model.layers.0.mlp_block.down_proj.weight" : tensor<32x32xf32>
    %bd0 = ml_program.global_load_const @"model.layers.0.mlp_block.down_proj.bias" : tensor<32xf32>
    %dn0 = glint.linear %mm0, %wd0 bias %bd0 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %h1 = arith.addf %r0, %dn0 : tensor<?x?x32xf32>

    // Layer 1, local multi-query attention (explicit matrix, so no mixer region).
    %tn1w = ml_program.global_load_const @"model.layers.1.temporal_pre_norm.weight" : tensor<32xf32>
    %tn1 = glint.rms_norm %h1 weight %tn1w epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wq = ml_program.global_load_const @"model.layers.1.temporal_block.q_proj.weight" : tensor<32x32xf32>
    %wk = ml_program.global_load_const @"model.layers.1.temporal_block.k_proj.weight" : tensor<16x32xf32>
    %wv = ml_program.global_load_const @"model.layers.1.temporal_block.v_proj.weight" : tensor<16x32xf32>
    %q2 = glint.linear %tn1, %wq : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %k2 = glint.linear %tn1, %wk : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %v2 = glint.linear %tn1, %wv : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %q4 = tensor.expand_shape %q2 [[0], [1], [2, 3]] output_shape [%b, %l, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
    %k4 = tensor.expand_shape %k2 [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    %v4 = tensor.expand_shape %v2 [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    // Partial rotary: rotate-half on the first 8 of 16 features of each head.
    %qr = glint.rotary %q4 rotary_dim 8 base 10000.0 : tensor<?x?x2x16xf32>
    %kr = glint.rotary %k4 rotary_dim 8 base 10000.0 : tensor<?x?x1x16xf32>
    // HF's decode-cache rule: the 2048 most recent positions (equal to HF's
    // plain causal full-sequence forward while L <= 2048).
    %att = glint.attention %qr, %kr, %v4 scale 0.25 window 2048 : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x2x16xf32>
    %att2 = tensor.collapse_shape %att [[0], [1], [2, 3]] : tensor<?x?x2x16xf32> into tensor<?x?x32xf32>
    %wo1 = ml_program.global_load_const @"model.layers.1.temporal_block.o_proj.weight" : tensor<32x32xf32>
    %bo1 = ml_program.global_load_const @"model.layers.1.temporal_block.o_proj.bias" : tensor<32xf32>
    %o1 = glint.linear %att2, %wo1 bias %bo1 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %r1 = arith.addf %h1, %o1 : tensor<?x?x32xf32>
    // Layer 1 MLP.
    %cn1w = ml_program.global_load_const @"model.layers.1.channel_pre_norm.weight" : tensor<32xf32>
    %cn1 = glint.rms_norm %r1 weight %cn1w epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wg1 = ml_program.global_load_const @"model.layers.1.mlp_block.gate_proj.weight" : tensor<32x32xf32>
    %bg1 = ml_program.global_load_const @"model.layers.1.mlp_block.gate_proj.bias" : tensor<32xf32>
    %gp1 = glint.linear %cn1, %wg1 bias %bg1 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %ga1 = glint.act gelu_tanh %gp1 : tensor<?x?x32xf32>
    %wu1 = ml_program.global_load_const @"model.layers.1.mlp_block.up_proj.weight" : tensor<32x32xf32>
    %bu1 = ml_program.global_load_const @"model.layers.1.mlp_block.up_proj.bias" : tensor<32xf32>
    %up1 = glint.linear %cn1, %wu1 bias %bu1 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %mm1 = arith.mulf %ga1, %up1 : tensor<?x?x32xf32>
    %wd1 = ml_program.global_load_const @"model.layers.1.mlp_block.down_proj.weight" : tensor<32x32xf32>
    %bd1 = ml_program.global_load_const @"model.layers.1.mlp_block.down_proj.bias" : tensor<32xf32>
    %dn1 = glint.linear %mm1, %wd1 bias %bd1 : (tensor<?x?x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %h2 = arith.addf %r1, %dn1 : tensor<?x?x32xf32>

    %fnw = ml_program.global_load_const @"model.final_norm.weight" : tensor<32xf32>
    %fn = glint.rms_norm %h2 weight %fnw epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    // Tied lm_head, then soft cap: tanh(logits / 30) * 30.
    %lg = glint.linear %fn, %emb : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    %init64 = tensor.empty(%b, %l) : tensor<?x?x64xf32>
    %caps = linalg.fill ins(%cap : f32) outs(%init64 : tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %lgs = arith.divf %lg, %caps : tensor<?x?x64xf32>
    %lgt = glint.act tanh %lgs : tensor<?x?x64xf32>
    %logits = arith.mulf %lgt, %caps : tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
