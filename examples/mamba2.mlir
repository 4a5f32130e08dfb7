// Mamba-2 (Hugging Face Mamba2ForCausalLM layout), one layer.
//   vocab 64, d_model 32, expand 2 -> d_inner 64, head_dim 16 -> 4 heads,
//   n_groups 1, d_state 16, conv width 4 (with bias) over the xBC channels
//   (64 + 2*1*16 = 96), in_proj [164, 32] -> [z 64, xBC 96, dt 4] (no d_mlp part),
//   no in/out_proj bias, RMSNorm eps 1e-5, gated RMSNorm with norm_before_gate=False,
//   time_step_limit (0, inf) (a no-op after softplus), lm_head tied to the
//   embedding (as in the state-spaces/mamba2 checkpoints).
// Weights are external and bound by their checkpoint names.
module {
  ml_program.global private @"backbone.embeddings.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"backbone.layers.0.norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"backbone.layers.0.mixer.in_proj.weight"(#ml_program.extern : tensor<164x32xf32>) : tensor<164x32xf32>
  ml_program.global private @"backbone.layers.0.mixer.conv1d.weight"(#ml_program.extern : tensor<96x1x4xf32>) : tensor<96x1x4xf32>
  ml_program.global private @"backbone.layers.0.mixer.conv1d.bias"(#ml_program.extern : tensor<96xf32>) : tensor<96xf32>
  ml_program.global private @"backbone.layers.0.mixer.dt_bias"(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private @"backbone.layers.0.mixer.A_log"(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private @"backbone.layers.0.mixer.D"(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
  ml_program.global private @"backbone.layers.0.mixer.norm.weight"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"backbone.layers.0.mixer.out_proj.weight"(#ml_program.extern : tensor<32x64xf32>) : tensor<32x64xf32>
  ml_program.global private @"backbone.norm_f.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %emb = ml_program.global_load_const @"backbone.embeddings.weight" : tensor<64x32xf32>
    %h0 = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<64x32xf32>) -> tensor<?x?x32xf32>
    %b = tensor.dim %h0, %c0 : tensor<?x?x32xf32>
    %l = tensor.dim %h0, %c1 : tensor<?x?x32xf32>

    // Layer 0: h1 = h0 + out_proj(mixer(in_proj(rms_norm(h0)))).
    %nw = ml_program.global_load_const @"backbone.layers.0.norm.weight" : tensor<32xf32>
    %n = glint.rms_norm %h0 weight %nw epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %w_in = ml_program.global_load_const @"backbone.layers.0.mixer.in_proj.weight" : tensor<164x32xf32>
    %zxbcdt = glint.linear %n, %w_in : (tensor<?x?x32xf32>, tensor<164x32xf32>) -> tensor<?x?x164xf32>
    // Split [z 64 | x 64 | B 16 | C 16 | dt 4]; x, B and C are the xBC channels.
    %z = tensor.extract_slice %zxbcdt[0, 0, 0] [%b, %l, 64] [1, 1, 1] : tensor<?x?x164xf32> to tensor<?x?x64xf32>
    %x = tensor.extract_slice %zxbcdt[0, 0, 64] [%b, %l, 64] [1, 1, 1] : tensor<?x?x164xf32> to tensor<?x?x64xf32>
    %bc = tensor.extract_slice %zxbcdt[0, 0, 128] [%b, %l, 32] [1, 1, 1] : tensor<?x?x164xf32> to tensor<?x?x32xf32>
    %dtr = tensor.extract_slice %zxbcdt[0, 0, 160] [%b, %l, 4] [1, 1, 1] : tensor<?x?x164xf32> to tensor<?x?x4xf32>
    // The conv is depthwise, so the xBC conv splits exactly by channel: the
    // x channels (0..63) stay on the value path, B and C (64..95) are control.
    %cw3 = ml_program.global_load_const @"backbone.layers.0.mixer.conv1d.weight" : tensor<96x1x4xf32>
    %cw = tensor.collapse_shape %cw3 [[0, 1], [2]] : tensor<96x1x4xf32> into tensor<96x4xf32>
    %cb = ml_program.global_load_const @"backbone.layers.0.mixer.conv1d.bias" : tensor<96xf32>
    %cw_x = tensor.extract_slice %cw[0, 0] [64, 4] [1, 1] : tensor<96x4xf32> to tensor<64x4xf32>
    %cb_x = tensor.extract_slice %cb[0] [64] [1] : tensor<96xf32> to tensor<64xf32>
    %cw_bc = tensor.extract_slice %cw[64, 0] [32, 4] [1, 1] : tensor<96x4xf32> to tensor<32x4xf32>
    %cb_bc = tensor.extract_slice %cb[64] [32] [1] : tensor<96xf32> to tensor<32xf32>
    %bcc = glint.conv1d %bc, %cw_bc bias %cb_bc : (tensor<?x?x32xf32>, tensor<32x4xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    %bca = glint.act silu %bcc : tensor<?x?x32xf32>
    %bm = tensor.extract_slice %bca[0, 0, 0] [%b, %l, 16] [1, 1, 1] : tensor<?x?x32xf32> to tensor<?x?x16xf32>
    %cm = tensor.extract_slice %bca[0, 0, 16] [%b, %l, 16] [1, 1, 1] : tensor<?x?x32xf32> to tensor<?x?x16xf32>
    // One key group: B and C are shared by all 4 heads.
    %k = tensor.expand_shape %bm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    %q = tensor.expand_shape %cm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    // dt = softplus(dt + dt_bias), one step per head.
    %dtbias = ml_program.global_load_const @"backbone.layers.0.mixer.dt_bias" : tensor<4xf32>
    %dtinit = tensor.empty(%b, %l) : tensor<?x?x4xf32>
    %dtb = linalg.broadcast ins(%dtbias : tensor<4xf32>) outs(%dtinit : tensor<?x?x4xf32>) dimensions = [0, 1]
    %dts = arith.addf %dtr, %dtb : tensor<?x?x4xf32>
    %dt = glint.act softplus %dts : tensor<?x?x4xf32>
    // A = -exp(A_log): one scalar per head, kept factored with dt.
    %alog = ml_program.global_load_const @"backbone.layers.0.mixer.A_log" : tensor<4xf32>
    %a = glint.act neg_exp %alog : tensor<4xf32>
    %d = ml_program.global_load_const @"backbone.layers.0.mixer.D" : tensor<4xf32>
    %normw = ml_program.global_load_const @"backbone.layers.0.mixer.norm.weight" : tensor<64xf32>
    %y = glint.mixer label "backbone.layers.0.mixer" (%x) : tensor<?x?x64xf32> -> tensor<?x?x64xf32> {
    ^bb0(%xv: tensor<?x?x64xf32>):
      // Causal conv on the x channels, then SiLU.
      %xc = glint.conv1d %xv, %cw_x bias %cb_x : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
      %u = glint.act silu %xc : tensor<?x?x64xf32>
      // SSD: 4 heads of head_dim 16, K = d_state; v = x (delta scales the input
      // term, B̄ = dt·B), D skip on x per head.
      %v = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, %l, 4, 16] : tensor<?x?x64xf32> into tensor<?x?x4x16xf32>
      %s = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x4x16xf32>, tensor<4xf32>, tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4x16xf32>
      %s2 = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x4x16xf32> into tensor<?x?x64xf32>
      // Gated RMSNorm (MambaRMSNormGated): rms_norm(y * SiLU(z)) * w, over all
      // 64 channels (one group).
      %gz = glint.act silu %z : tensor<?x?x64xf32>
      %g = arith.mulf %s2, %gz : tensor<?x?x64xf32>
      %gn = glint.rms_norm %g weight %normw epsilon 1.0e-05 : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
      glint.yield %gn : tensor<?x?x64xf32>
    }
    %w_out = ml_program.global_load_const @"backbone.layers.0.mixer.out_proj.weight" : tensor<32x64xf32>
    %o = glint.linear %y, %w_out : (tensor<?x?x64xf32>, tensor<32x64xf32>) -> tensor<?x?x32xf32>
    %h1 = arith.addf %h0, %o : tensor<?x?x32xf32>

    %nfw = ml_program.global_load_const @"backbone.norm_f.weight" : tensor<32xf32>
    %nf = glint.rms_norm %h1 weight %nfw epsilon 1.0e-05 : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
    // Tied lm_head: the embedding table is the [vocab, d_model] weight.
    %logits = glint.linear %nf, %emb : (tensor<?x?x32xf32>, tensor<64x32xf32>) -> tensor<?x?x64xf32>
    return %logits : tensor<?x?x64xf32>
  }
}
