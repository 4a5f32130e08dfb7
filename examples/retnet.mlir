// RetNet, multi-scale retention (torchscale RetNetDecoder layout, the
// paper's variant: LayerNorm pre-norm blocks and a GELU FFN), one layer.
//   vocab 64, embed 32, 2 retention heads, key 16 per head, value_factor 2
//   → value 32 per head, FFN 64 (use_glu and subln off: fc1, gelu, fc2,
//   with biases), LayerNorm eps 1e-6 (layernorm_eps) everywhere, no
//   embedding scale (no_scale_embedding), no xPos, untied
//   output_projection.
// Per head h: S_t = γ_h S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ q_t, with
//   γ_h = 1 − 2^(−5−h), k scaled by K^−0.5 and q, k rotated (theta_shift).
//   torchscale's parallel form also divides each score row by the decay
//   mask's row norm and by its clamped absolute row sum: positive per-token,
//   per-head factors that the per-head LayerNorm below removes (up to eps),
//   so the plain recurrence is the same model.
// Rotary: torchscale rotates interleaved pairs (rotate_every_two) by angles
//   10000^(−i / (K/2 − 1)) (torch.linspace(0, 1, K/2)), not 10000^(−2i/K);
//   glint.rotary's base^(−2i/K) matches with base = 10000^(K/(K−2)) =
//   10000^(8/7) = 37275.937203149402 for K = 16.
// Output: LayerNorm per head without affine (group_norm, 2 groups),
//   ⊙ silu(g_proj(x)), out_proj.
// Weights are external and bound by their checkpoint names; the decay is a
// constant (torchscale's retnet_rel_pos.decay buffer holds the same values).
module {
  ml_program.global private @"embed_tokens.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"layers.0.retention_layer_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layers.0.retention_layer_norm.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layers.0.retention.q_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"layers.0.retention.k_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"layers.0.retention.v_proj.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"layers.0.retention.g_proj.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"layers.0.retention.out_proj.weight"(#ml_program.extern : tensor<32x64xf32>) : tensor<32x64xf32>
  ml_program.global private @"layers.0.final_layer_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layers.0.final_layer_norm.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layers.0.ffn.fc1.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"layers.0.ffn.fc1.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.ffn.fc2.weight"(#ml_program.extern : tensor<32x64xf32>) : tensor<32x64xf32>
  ml_program.global private @"layers.0.ffn.fc2.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layer_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layer_norm.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"output_projection.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %emb = ml_program.global_load_const @"embed_tokens.weight" : tensor<64x32xf32>
    %h0 = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
    %b = tensor.dim %h0, %c0 : tensor<?x?x32xf32>
    %l = tensor.dim %h0, %c1 : tensor<?x?x32xf32>

    // Layer 0: h1 = h0 + out_proj(retention(retention_layer_norm(h0))).
    %nw = ml_program.global_load_const @"layers.0.retention_layer_norm.weight" : tensor<32xf32>
    %nb = ml_program.global_load_const @"layers.0.retention_layer_norm.bias" : tensor<32xf32>
    %n = glint.layer_norm %h0 weight %nw bias %nb epsilon 1.0e-06 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wq = ml_program.global_load_const @"layers.0.retention.q_proj.weight" : tensor<32x32xf32>
    %wk = ml_program.global_load_const @"layers.0.retention.k_proj.weight" : tensor<32x32xf32>
    %wv = ml_program.global_load_const @"layers.0.retention.v_proj.weight" : tensor<64x32xf32>
    %wg = ml_program.global_load_const @"layers.0.retention.g_proj.weight" : tensor<64x32xf32>
    %q = glint.linear %n, %wq : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %k = glint.linear %n, %wk : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %v = glint.linear %n, %wv : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    %g = glint.linear %n, %wg : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    // k · K^−0.5 (K = 16) before the rotation, as torchscale does.
    %scale = arith.constant 2.500000e-01 : f32
    %scales = tensor.splat %scale[%b, %l] : tensor<?x?x32xf32>
    %ks = arith.mulf %k, %scales : tensor<?x?x32xf32>
    %q4 = tensor.expand_shape %q [[0], [1], [2, 3]] output_shape [%b, %l, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
    %k4 = tensor.expand_shape %ks [[0], [1], [2, 3]] output_shape [%b, %l, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
    %qr = glint.rotary %q4 rotary_dim 16 base 37275.937203149402 interleaved : tensor<?x?x2x16xf32>
    %kr = glint.rotary %k4 rotary_dim 16 base 37275.937203149402 interleaved : tensor<?x?x2x16xf32>
    // log γ_h = log(1 − 2^(−5−h)), h = 0, 1.
    %logdecay = arith.constant dense<[-0.031748698314580301, -0.015748356968139169]> : tensor<2xf32>
    // The value projection is the value input; the rotated q and k are
    // control values. The mixer ends at the recurrence: the per-head
    // LayerNorm subtracts a mean, which mixes channels.
    %y = glint.mixer label "layers.0.retention" (%v) : tensor<?x?x64xf32> -> tensor<?x?x64xf32> {
    ^bb0(%xv: tensor<?x?x64xf32>):
      %v4 = tensor.expand_shape %xv [[0], [1], [2, 3]] output_shape [%b, %l, 2, 32] : tensor<?x?x64xf32> into tensor<?x?x2x32xf32>
      %o4 = glint.recurrence q(%qr) k(%kr) v(%v4) log_decay(%logdecay) : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x32xf32>, tensor<2xf32>) -> tensor<?x?x2x32xf32>
      %o = tensor.collapse_shape %o4 [[0], [1], [2, 3]] : tensor<?x?x2x32xf32> into tensor<?x?x64xf32>
      glint.yield %o : tensor<?x?x64xf32>
    }
    %yn = glint.group_norm %y groups 2 epsilon 1.0e-06 : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    %gs = glint.act silu %g : tensor<?x?x64xf32>
    %yg = arith.mulf %gs, %yn : tensor<?x?x64xf32>
    %wo = ml_program.global_load_const @"layers.0.retention.out_proj.weight" : tensor<32x64xf32>
    %ret = glint.linear %yg, %wo : (tensor<?x?x64xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
    %h1 = arith.addf %h0, %ret : tensor<?x?x32xf32>

    // h2 = h1 + fc2(gelu(fc1(final_layer_norm(h1)))); gelu is erf-based.
    %fw = ml_program.global_load_const @"layers.0.final_layer_norm.weight" : tensor<32xf32>
    %fb = ml_program.global_load_const @"layers.0.final_layer_norm.bias" : tensor<32xf32>
    %f = glint.layer_norm %h1 weight %fw bias %fb epsilon 1.0e-06 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %w1 = ml_program.global_load_const @"layers.0.ffn.fc1.weight" : tensor<64x32xf32>
    %b1 = ml_program.global_load_const @"layers.0.ffn.fc1.bias" : tensor<64xf32>
    %w2 = ml_program.global_load_const @"layers.0.ffn.fc2.weight" : tensor<32x64xf32>
    %b2 = ml_program.global_load_const @"layers.0.ffn.fc2.bias" : tensor<32xf32>
    %f1 = glint.linear %f, %w1 bias %b1 : (tensor<?x?x32xf32>, tensor<64x32xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    %fa = glint.act gelu %f1 : tensor<?x?x64xf32>
    %f2 = glint.linear %fa, %w2 bias %b2 : (tensor<?x?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %h2 = arith.addf %h1, %f2 : tensor<?x?x32xf32>

    %ow = ml_program.global_load_const @"layer_norm.weight" : tensor<32xf32>
    %ob = ml_program.global_load_const @"layer_norm.bias" : tensor<32xf32>
    %nf = glint.layer_norm %h2 weight %ow bias %ob epsilon 1.0e-06 : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %head = ml_program.global_load_const @"output_projection.weight" : tensor<64x32xf32>
    %logits = glint.linear %nf, %head : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
