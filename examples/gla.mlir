// Gated Linear Attention (flash-linear-attention GLAForCausalLM layout), one
// layer.
//   vocab 64, hidden 32, 2 heads, expand_k 0.5 → key 16 (8 per head),
//   expand_v 1 → value 32 (16 per head), gate_low_rank_dim 4,
//   gate_logit_normalizer 16, SwiGLU MLP with intermediate_size 64,
//   norm_eps 1e-5 for every RMSNorm (set in the config: GLAConfig's default
//   is 1e-6), fuse_norm (g_norm_swish_gate), no short conv, no feature map,
//   no clamp_min, untied lm_head.
// Per head: S_t = diag(exp(gk_t)) S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ (q_t · K^−0.5)
//   with gk = logsigmoid(gk_proj(x)) / 16 per key. fla's kernels apply the
//   K^−0.5 scale to q inside; glint.recurrence has no scale, so q is scaled
//   first. logsigmoid(x) is written −softplus(−x).
// Output: RMSNorm over each head's values, ⊙ silu(g_proj(x)), o_proj.
// Weights are external and bound by their checkpoint names.
module {
  ml_program.global private @"model.embeddings.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"model.layers.0.attn_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.attn.q_proj.weight"(#ml_program.extern : tensor<16x32xf32>) : tensor<16x32xf32>
  ml_program.global private @"model.layers.0.attn.k_proj.weight"(#ml_program.extern : tensor<16x32xf32>) : tensor<16x32xf32>
  ml_program.global private @"model.layers.0.attn.v_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.attn.g_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.attn.gk_proj.0.weight"(#ml_program.extern : tensor<4x32xf32>) : tensor<4x32xf32>
  ml_program.global private @"model.layers.0.attn.gk_proj.1.weight"(#ml_program.extern : tensor<16x4xf32>) : tensor<16x4xf32>
  ml_program.global private @"model.layers.0.attn.gk_proj.1.bias"(#ml_program.extern : tensor<16xf32>) : tensor<16xf32>
  ml_program.global private @"model.layers.0.attn.g_norm_swish_gate.weight"(#ml_program.extern : tensor<16xf32>) : tensor<16xf32>
  ml_program.global private @"model.layers.0.attn.o_proj.weight"(#ml_program.extern : tensor<32x32xf32>) : tensor<32x32xf32>
  ml_program.global private @"model.layers.0.mlp_norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"model.layers.0.mlp.gate_proj.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"model.layers.0.mlp.up_proj.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"model.layers.0.mlp.down_proj.weight"(#ml_program.extern : tensor<32x64xf32>) : tensor<32x64xf32>
  ml_program.global private @"model.norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"lm_head.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %emb = ml_program.global_load_const @"model.embeddings.weight" : tensor<64x32xf32>
    %h0 = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
    %b = tensor.dim %h0, %c0 : tensor<?x?x32xf32>
    %l = tensor.dim %h0, %c1 : tensor<?x?x32xf32>

    // Layer 0: h1 = h0 + o_proj(attn(attn_norm(h0))).
    %nw = ml_program.global_load_const @"model.layers.0.attn_norm.weight" : tensor<32xf32>
    %n = glint.rms_norm %h0 weight %nw epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wq = ml_program.global_load_const @"model.layers.0.attn.q_proj.weight" : tensor<16x32xf32>
    %wk = ml_program.global_load_const @"model.layers.0.attn.k_proj.weight" : tensor<16x32xf32>
    %wv = ml_program.global_load_const @"model.layers.0.attn.v_proj.weight" : tensor<32x32xf32>
    %wg = ml_program.global_load_const @"model.layers.0.attn.g_proj.weight" : tensor<32x32xf32>
    %q = glint.linear %n, %wq : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %k = glint.linear %n, %wk : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %v = glint.linear %n, %wv : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %g = glint.linear %n, %wg : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    // q · K^−0.5 with K = 8.
    %scale = arith.constant 0.35355339059327373 : f32
    %scales = tensor.splat %scale[%b, %l] : tensor<?x?x16xf32>
    %qs = arith.mulf %q, %scales : tensor<?x?x16xf32>
    // Low-rank gate, bias on the second linear only, then
    // logsigmoid(x) / 16 = softplus(−x) / −16.
    %wgk0 = ml_program.global_load_const @"model.layers.0.attn.gk_proj.0.weight" : tensor<4x32xf32>
    %wgk1 = ml_program.global_load_const @"model.layers.0.attn.gk_proj.1.weight" : tensor<16x4xf32>
    %bgk1 = ml_program.global_load_const @"model.layers.0.attn.gk_proj.1.bias" : tensor<16xf32>
    %gk0 = glint.linear %n, %wgk0 : (tensor<?x?x32xf32>, tensor<4x32xf32>) -> tensor<?x?x4xf32>
    %gk1 = glint.linear %gk0, %wgk1 bias %bgk1 : (tensor<?x?x4xf32>, tensor<16x4xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
    %gkn = arith.negf %gk1 : tensor<?x?x16xf32>
    %gksp = glint.act softplus %gkn : tensor<?x?x16xf32>
    %norm = arith.constant -16.0 : f32
    %norms = tensor.splat %norm[%b, %l] : tensor<?x?x16xf32>
    %gk = arith.divf %gksp, %norms : tensor<?x?x16xf32>
    // The value projection is the value input; q, k, gk and the output gate
    // g are control values. The per-head RMSNorm is the data-controlled
    // diagonal diag(w / rms_t), so it stays inside the matrix.
    %y = glint.mixer label "model.layers.0.attn" (%v) : tensor<?x?x32xf32> -> tensor<?x?x32xf32> {
    ^bb0(%xv: tensor<?x?x32xf32>):
      %q4 = tensor.expand_shape %qs [[0], [1], [2, 3]] output_shape [%b, %l, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
      %k4 = tensor.expand_shape %k [[0], [1], [2, 3]] output_shape [%b, %l, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
      %gk4 = tensor.expand_shape %gk [[0], [1], [2, 3]] output_shape [%b, %l, 2, 8] : tensor<?x?x16xf32> into tensor<?x?x2x8xf32>
      %v4 = tensor.expand_shape %xv [[0], [1], [2, 3]] output_shape [%b, %l, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
      %o = glint.recurrence q(%q4) k(%k4) v(%v4) log_decay(%gk4) : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x8xf32>) -> tensor<?x?x2x16xf32>
      // FusedRMSNormSwishGate: rms_norm(o) · w ⊙ silu(g), per head.
      %gnw = ml_program.global_load_const @"model.layers.0.attn.g_norm_swish_gate.weight" : tensor<16xf32>
      %on = glint.rms_norm %o weight %gnw epsilon 1.0e-05 : (tensor<?x?x2x16xf32>, tensor<16xf32>) -> tensor<?x?x2x16xf32>
      %g4 = tensor.expand_shape %g [[0], [1], [2, 3]] output_shape [%b, %l, 2, 16] : tensor<?x?x32xf32> into tensor<?x?x2x16xf32>
      %gs = glint.act silu %g4 : tensor<?x?x2x16xf32>
      %og = arith.mulf %on, %gs : tensor<?x?x2x16xf32>
      %o3 = tensor.collapse_shape %og [[0], [1], [2, 3]] : tensor<?x?x2x16xf32> into tensor<?x?x32xf32>
      glint.yield %o3 : tensor<?x?x32xf32>
    }
    %wo = ml_program.global_load_const @"model.layers.0.attn.o_proj.weight" : tensor<32x32xf32>
    %att = glint.linear %y, %wo : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %h1 = arith.addf %h0, %att : tensor<?x?x32xf32>

    // h2 = h1 + down(silu(gate(m)) ⊙ up(m)), m = mlp_norm(h1).
    %mw = ml_program.global_load_const @"model.layers.0.mlp_norm.weight" : tensor<32xf32>
    %m = glint.rms_norm %h1 weight %mw epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %wgate = ml_program.global_load_const @"model.layers.0.mlp.gate_proj.weight" : tensor<64x32xf32>
    %wup = ml_program.global_load_const @"model.layers.0.mlp.up_proj.weight" : tensor<64x32xf32>
    %wdown = ml_program.global_load_const @"model.layers.0.mlp.down_proj.weight" : tensor<32x64xf32>
    %mg = glint.linear %m, %wgate : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    %mu = glint.linear %m, %wup : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    %mgs = glint.act silu %mg : tensor<?x?x64xf32>
    %mh = arith.mulf %mgs, %mu : tensor<?x?x64xf32>
    %md = glint.linear %mh, %wdown : (tensor<?x?x64xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
    %h2 = arith.addf %h1, %md : tensor<?x?x32xf32>

    %nfw = ml_program.global_load_const @"model.norm.weight" : tensor<32xf32>
    %nf = glint.rms_norm %h2 weight %nfw epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %head = ml_program.global_load_const @"lm_head.weight" : tensor<64x32xf32>
    %logits = glint.linear %nf, %head : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
