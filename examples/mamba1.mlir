// Mamba-1 (Hugging Face MambaForCausalLM layout), one layer.
//   vocab 64, d_model 32, d_inner 64, d_state 16, dt_rank 2, conv width 4,
//   RMSNorm eps 1e-5, lm_head tied to the embedding.
// Weights are external and bound by their checkpoint names.
module {
  ml_program.global private @"backbone.embeddings.weight"(#ml_program.extern : tensor<64x32xf32>) : tensor<64x32xf32>
  ml_program.global private @"backbone.layers.0.norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"backbone.layers.0.mixer.in_proj.weight"(#ml_program.extern : tensor<128x32xf32>) : tensor<128x32xf32>
  ml_program.global private @"backbone.layers.0.mixer.conv1d.weight"(#ml_program.extern : tensor<64x1x4xf32>) : tensor<64x1x4xf32>
  ml_program.global private @"backbone.layers.0.mixer.conv1d.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"backbone.layers.0.mixer.x_proj.weight"(#ml_program.extern : tensor<34x64xf32>) : tensor<34x64xf32>
  ml_program.global private @"backbone.layers.0.mixer.dt_proj.weight"(#ml_program.extern : tensor<64x2xf32>) : tensor<64x2xf32>
  ml_program.global private @"backbone.layers.0.mixer.dt_proj.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"backbone.layers.0.mixer.A_log"(#ml_program.extern : tensor<64x16xf32>) : tensor<64x16xf32>
  ml_program.global private @"backbone.layers.0.mixer.D"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
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
    %w_in = ml_program.global_load_const @"backbone.layers.0.mixer.in_proj.weight" : tensor<128x32xf32>
    %xz = glint.linear %n, %w_in : (tensor<?x?x32xf32>, tensor<128x32xf32>) -> tensor<?x?x128xf32>
    %x = tensor.extract_slice %xz[0, 0, 0] [%b, %l, 64] [1, 1, 1] : tensor<?x?x128xf32> to tensor<?x?x64xf32>
    %z = tensor.extract_slice %xz[0, 0, 64] [%b, %l, 64] [1, 1, 1] : tensor<?x?x128xf32> to tensor<?x?x64xf32>
    %y = glint.mixer label "backbone.layers.0.mixer" (%x) : tensor<?x?x64xf32> -> tensor<?x?x64xf32> {
    ^bb0(%xv: tensor<?x?x64xf32>):
      // Causal depthwise conv (left padding 3, with bias), then SiLU.
      %cw3 = ml_program.global_load_const @"backbone.layers.0.mixer.conv1d.weight" : tensor<64x1x4xf32>
      %cw = tensor.collapse_shape %cw3 [[0, 1], [2]] : tensor<64x1x4xf32> into tensor<64x4xf32>
      %cb = ml_program.global_load_const @"backbone.layers.0.mixer.conv1d.bias" : tensor<64xf32>
      %xc = glint.conv1d %xv, %cw bias %cb : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
      %u = glint.act silu %xc : tensor<?x?x64xf32>
      // Selection: dt (rank 2), B and C (16 each) from x_proj(u).
      %w_x = ml_program.global_load_const @"backbone.layers.0.mixer.x_proj.weight" : tensor<34x64xf32>
      %dbc = glint.linear %u, %w_x : (tensor<?x?x64xf32>, tensor<34x64xf32>) -> tensor<?x?x34xf32>
      %dtr = tensor.extract_slice %dbc[0, 0, 0] [%b, %l, 2] [1, 1, 1] : tensor<?x?x34xf32> to tensor<?x?x2xf32>
      %bm = tensor.extract_slice %dbc[0, 0, 2] [%b, %l, 16] [1, 1, 1] : tensor<?x?x34xf32> to tensor<?x?x16xf32>
      %cm = tensor.extract_slice %dbc[0, 0, 18] [%b, %l, 16] [1, 1, 1] : tensor<?x?x34xf32> to tensor<?x?x16xf32>
      // delta = softplus(dt_proj(dt) + bias): the bias goes before softplus.
      %w_dt = ml_program.global_load_const @"backbone.layers.0.mixer.dt_proj.weight" : tensor<64x2xf32>
      %b_dt = ml_program.global_load_const @"backbone.layers.0.mixer.dt_proj.bias" : tensor<64xf32>
      %dtl = glint.linear %dtr, %w_dt bias %b_dt : (tensor<?x?x2xf32>, tensor<64x2xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
      %dt = glint.act softplus %dtl : tensor<?x?x64xf32>
      // A = -exp(A_log), kept factored with delta by the recurrence.
      %alog = ml_program.global_load_const @"backbone.layers.0.mixer.A_log" : tensor<64x16xf32>
      %a = glint.act neg_exp %alog : tensor<64x16xf32>
      %d = ml_program.global_load_const @"backbone.layers.0.mixer.D" : tensor<64xf32>
      // One head per channel (V = 1); B and C are shared by all 64 heads.
      %k = tensor.expand_shape %bm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
      %q = tensor.expand_shape %cm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
      %v = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, %l, 64, 1] : tensor<?x?x64xf32> into tensor<?x?x64x1xf32>
      %s = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x64x1xf32>, tensor<64x16xf32>, tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64x1xf32>
      %s2 = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x64x1xf32> into tensor<?x?x64xf32>
      // Output gate SiLU(z).
      %gz = glint.act silu %z : tensor<?x?x64xf32>
      %g = arith.mulf %s2, %gz : tensor<?x?x64xf32>
      glint.yield %g : tensor<?x?x64xf32>
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
