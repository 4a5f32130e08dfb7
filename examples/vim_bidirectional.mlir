// Vision Mamba (Vim, "bimamba v2", hustvl/Vim layout), tiny classifier, one layer.
//   image 3x32x32, patch 8 (4x4 = 16 patches, row-major), d_model 32, d_inner 64,
//   d_state 16, dt_rank 2, conv width 4, 10 classes, RMSNorm eps 1e-5.
//   CLS token in the middle of the sequence (index 16 // 2 = 8), learned absolute
//   position embedding [1, 17, 32] added after the CLS token is inserted.
//   The layer shares in_proj / out_proj between a forward branch (conv1d, x_proj,
//   dt_proj, A_log, D) and a backward branch (conv1d_b, x_proj_b, dt_proj_b,
//   A_b_log, D_b); Vim runs the backward branch on the flipped sequence and flips
//   it back, which here is `reverse` on glint.conv1d and glint.recurrence.
//   Output (y_f + y_b) / 2 (if_devide_out), gated by SiLU(z), then out_proj.
//   The head reads the final-normed CLS row.
// Weights are external and bound by their checkpoint names.
module {
  ml_program.global private @"patch_embed.proj.weight"(#ml_program.extern : tensor<32x3x8x8xf32>) : tensor<32x3x8x8xf32>
  ml_program.global private @"patch_embed.proj.bias"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"cls_token"(#ml_program.extern : tensor<1x1x32xf32>) : tensor<1x1x32xf32>
  ml_program.global private @"pos_embed"(#ml_program.extern : tensor<1x17x32xf32>) : tensor<1x17x32xf32>
  ml_program.global private @"layers.0.norm.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"layers.0.mixer.in_proj.weight"(#ml_program.extern : tensor<128x32xf32>) : tensor<128x32xf32>
  ml_program.global private @"layers.0.mixer.conv1d.weight"(#ml_program.extern : tensor<64x1x4xf32>) : tensor<64x1x4xf32>
  ml_program.global private @"layers.0.mixer.conv1d.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.x_proj.weight"(#ml_program.extern : tensor<34x64xf32>) : tensor<34x64xf32>
  ml_program.global private @"layers.0.mixer.dt_proj.weight"(#ml_program.extern : tensor<64x2xf32>) : tensor<64x2xf32>
  ml_program.global private @"layers.0.mixer.dt_proj.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.A_log"(#ml_program.extern : tensor<64x16xf32>) : tensor<64x16xf32>
  ml_program.global private @"layers.0.mixer.D"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.conv1d_b.weight"(#ml_program.extern : tensor<64x1x4xf32>) : tensor<64x1x4xf32>
  ml_program.global private @"layers.0.mixer.conv1d_b.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.x_proj_b.weight"(#ml_program.extern : tensor<34x64xf32>) : tensor<34x64xf32>
  ml_program.global private @"layers.0.mixer.dt_proj_b.weight"(#ml_program.extern : tensor<64x2xf32>) : tensor<64x2xf32>
  ml_program.global private @"layers.0.mixer.dt_proj_b.bias"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.A_b_log"(#ml_program.extern : tensor<64x16xf32>) : tensor<64x16xf32>
  ml_program.global private @"layers.0.mixer.D_b"(#ml_program.extern : tensor<64xf32>) : tensor<64xf32>
  ml_program.global private @"layers.0.mixer.out_proj.weight"(#ml_program.extern : tensor<32x64xf32>) : tensor<32x64xf32>
  ml_program.global private @"norm_f.weight"(#ml_program.extern : tensor<32xf32>) : tensor<32xf32>
  ml_program.global private @"head.weight"(#ml_program.extern : tensor<10x32xf32>) : tensor<10x32xf32>
  ml_program.global private @"head.bias"(#ml_program.extern : tensor<10xf32>) : tensor<10xf32>

  func.func @forward(%img: tensor<?x3x32x32xf32>) -> tensor<?x10xf32> attributes {glint.readout_position = 8 : i64} {
    %c0 = arith.constant 0 : index
    %half = arith.constant 5.000000e-01 : f32
    %b = tensor.dim %img, %c0 : tensor<?x3x32x32xf32>

    // Patch embedding: the stride-8 Conv2d is a linear map on each 3x8x8 patch.
    // [B, C, Hp*8, Wp*8] -> [B, C, Hp, 8, Wp, 8] -> [B, Hp, Wp, C, 8, 8] -> [B, 16, 192],
    // the (c, kh, kw) order of the conv weight [32, 3, 8, 8] collapsed to [32, 192].
    %p6 = tensor.expand_shape %img [[0], [1], [2, 3], [4, 5]] output_shape [%b, 3, 4, 8, 4, 8] : tensor<?x3x32x32xf32> into tensor<?x3x4x8x4x8xf32>
    %pinit = tensor.empty(%b) : tensor<?x4x4x3x8x8xf32>
    %pt = linalg.transpose ins(%p6 : tensor<?x3x4x8x4x8xf32>) outs(%pinit : tensor<?x4x4x3x8x8xf32>) permutation = [0, 2, 4, 1, 3, 5]
    %patches = tensor.collapse_shape %pt [[0], [1, 2], [3, 4, 5]] : tensor<?x4x4x3x8x8xf32> into tensor<?x16x192xf32>
    %pw4 = ml_program.global_load_const @"patch_embed.proj.weight" : tensor<32x3x8x8xf32>
    %pw = tensor.collapse_shape %pw4 [[0], [1, 2, 3]] : tensor<32x3x8x8xf32> into tensor<32x192xf32>
    %pb = ml_program.global_load_const @"patch_embed.proj.bias" : tensor<32xf32>
    %tok = glint.linear %patches, %pw bias %pb : (tensor<?x16x192xf32>, tensor<32x192xf32>, tensor<32xf32>) -> tensor<?x16x32xf32>

    // CLS token inserted between patches 0..7 and 8..15, then + pos_embed.
    %cls3 = ml_program.global_load_const @"cls_token" : tensor<1x1x32xf32>
    %cls1 = tensor.collapse_shape %cls3 [[0, 1, 2]] : tensor<1x1x32xf32> into tensor<32xf32>
    %clsinit = tensor.empty(%b) : tensor<?x1x32xf32>
    %cls = linalg.broadcast ins(%cls1 : tensor<32xf32>) outs(%clsinit : tensor<?x1x32xf32>) dimensions = [0, 1]
    %front = tensor.extract_slice %tok[0, 0, 0] [%b, 8, 32] [1, 1, 1] : tensor<?x16x32xf32> to tensor<?x8x32xf32>
    %back = tensor.extract_slice %tok[0, 8, 0] [%b, 8, 32] [1, 1, 1] : tensor<?x16x32xf32> to tensor<?x8x32xf32>
    %seq = tensor.concat dim(1) %front, %cls, %back : (tensor<?x8x32xf32>, tensor<?x1x32xf32>, tensor<?x8x32xf32>) -> tensor<?x17x32xf32>
    %pos3 = ml_program.global_load_const @"pos_embed" : tensor<1x17x32xf32>
    %pos2 = tensor.collapse_shape %pos3 [[0, 1], [2]] : tensor<1x17x32xf32> into tensor<17x32xf32>
    %posinit = tensor.empty(%b) : tensor<?x17x32xf32>
    %pos = linalg.broadcast ins(%pos2 : tensor<17x32xf32>) outs(%posinit : tensor<?x17x32xf32>) dimensions = [0]
    %h0 = arith.addf %seq, %pos : tensor<?x17x32xf32>

    // Layer 0: h1 = h0 + out_proj(mixer(in_proj(rms_norm(h0)))).
    %nw = ml_program.global_load_const @"layers.0.norm.weight" : tensor<32xf32>
    %n = glint.rms_norm %h0 weight %nw epsilon 1.0e-05 : (tensor<?x17x32xf32>, tensor<32xf32>) -> tensor<?x17x32xf32>
    %w_in = ml_program.global_load_const @"layers.0.mixer.in_proj.weight" : tensor<128x32xf32>
    %xz = glint.linear %n, %w_in : (tensor<?x17x32xf32>, tensor<128x32xf32>) -> tensor<?x17x128xf32>
    %x = tensor.extract_slice %xz[0, 0, 0] [%b, 17, 64] [1, 1, 1] : tensor<?x17x128xf32> to tensor<?x17x64xf32>
    %z = tensor.extract_slice %xz[0, 0, 64] [%b, 17, 64] [1, 1, 1] : tensor<?x17x128xf32> to tensor<?x17x64xf32>
    %hinit = tensor.empty(%b) : tensor<?x17x64xf32>
    %halves = linalg.fill ins(%half : f32) outs(%hinit : tensor<?x17x64xf32>) -> tensor<?x17x64xf32>
    %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x17x64xf32> -> tensor<?x17x64xf32> {
    ^bb0(%xv: tensor<?x17x64xf32>):
      // Forward branch: causal conv, SiLU, selective scan (as in Mamba-1).
      %cw3 = ml_program.global_load_const @"layers.0.mixer.conv1d.weight" : tensor<64x1x4xf32>
      %cw = tensor.collapse_shape %cw3 [[0, 1], [2]] : tensor<64x1x4xf32> into tensor<64x4xf32>
      %cb = ml_program.global_load_const @"layers.0.mixer.conv1d.bias" : tensor<64xf32>
      %xc = glint.conv1d %xv, %cw bias %cb : (tensor<?x17x64xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<?x17x64xf32>
      %u = glint.act silu %xc : tensor<?x17x64xf32>
      %w_x = ml_program.global_load_const @"layers.0.mixer.x_proj.weight" : tensor<34x64xf32>
      %dbc = glint.linear %u, %w_x : (tensor<?x17x64xf32>, tensor<34x64xf32>) -> tensor<?x17x34xf32>
      %dtr = tensor.extract_slice %dbc[0, 0, 0] [%b, 17, 2] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x2xf32>
      %bm = tensor.extract_slice %dbc[0, 0, 2] [%b, 17, 16] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x16xf32>
      %cm = tensor.extract_slice %dbc[0, 0, 18] [%b, 17, 16] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x16xf32>
      %w_dt = ml_program.global_load_const @"layers.0.mixer.dt_proj.weight" : tensor<64x2xf32>
      %b_dt = ml_program.global_load_const @"layers.0.mixer.dt_proj.bias" : tensor<64xf32>
      %dtl = glint.linear %dtr, %w_dt bias %b_dt : (tensor<?x17x2xf32>, tensor<64x2xf32>, tensor<64xf32>) -> tensor<?x17x64xf32>
      %dt = glint.act softplus %dtl : tensor<?x17x64xf32>
      %alog = ml_program.global_load_const @"layers.0.mixer.A_log" : tensor<64x16xf32>
      %a = glint.act neg_exp %alog : tensor<64x16xf32>
      %d = ml_program.global_load_const @"layers.0.mixer.D" : tensor<64xf32>
      %k = tensor.expand_shape %bm [[0], [1], [2, 3]] output_shape [%b, 17, 1, 16] : tensor<?x17x16xf32> into tensor<?x17x1x16xf32>
      %q = tensor.expand_shape %cm [[0], [1], [2, 3]] output_shape [%b, 17, 1, 16] : tensor<?x17x16xf32> into tensor<?x17x1x16xf32>
      %v = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, 17, 64, 1] : tensor<?x17x64xf32> into tensor<?x17x64x1xf32>
      %sf = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x17x1x16xf32>, tensor<?x17x1x16xf32>, tensor<?x17x64x1xf32>, tensor<64x16xf32>, tensor<?x17x64xf32>, tensor<64xf32>) -> tensor<?x17x64x1xf32>
      %yf = tensor.collapse_shape %sf [[0], [1], [2, 3]] : tensor<?x17x64x1xf32> into tensor<?x17x64xf32>

      // Backward branch, own weights: flip -> causal op -> flip is the anti-causal
      // op (`reverse`), so the branch reads the same %xv and stays in sequence order.
      %cw3b = ml_program.global_load_const @"layers.0.mixer.conv1d_b.weight" : tensor<64x1x4xf32>
      %cwb = tensor.collapse_shape %cw3b [[0, 1], [2]] : tensor<64x1x4xf32> into tensor<64x4xf32>
      %cbb = ml_program.global_load_const @"layers.0.mixer.conv1d_b.bias" : tensor<64xf32>
      %xcb = glint.conv1d reverse %xv, %cwb bias %cbb : (tensor<?x17x64xf32>, tensor<64x4xf32>, tensor<64xf32>) -> tensor<?x17x64xf32>
      %ub = glint.act silu %xcb : tensor<?x17x64xf32>
      %w_xb = ml_program.global_load_const @"layers.0.mixer.x_proj_b.weight" : tensor<34x64xf32>
      %dbcb = glint.linear %ub, %w_xb : (tensor<?x17x64xf32>, tensor<34x64xf32>) -> tensor<?x17x34xf32>
      %dtrb = tensor.extract_slice %dbcb[0, 0, 0] [%b, 17, 2] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x2xf32>
      %bmb = tensor.extract_slice %dbcb[0, 0, 2] [%b, 17, 16] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x16xf32>
      %cmb = tensor.extract_slice %dbcb[0, 0, 18] [%b, 17, 16] [1, 1, 1] : tensor<?x17x34xf32> to tensor<?x17x16xf32>
      %w_dtb = ml_program.global_load_const @"layers.0.mixer.dt_proj_b.weight" : tensor<64x2xf32>
      %b_dtb = ml_program.global_load_const @"layers.0.mixer.dt_proj_b.bias" : tensor<64xf32>
      %dtlb = glint.linear %dtrb, %w_dtb bias %b_dtb : (tensor<?x17x2xf32>, tensor<64x2xf32>, tensor<64xf32>) -> tensor<?x17x64xf32>
      %dtb = glint.act softplus %dtlb : tensor<?x17x64xf32>
      %alogb = ml_program.global_load_const @"layers.0.mixer.A_b_log" : tensor<64x16xf32>
      %ab = glint.act neg_exp %alogb : tensor<64x16xf32>
      %db = ml_program.global_load_const @"layers.0.mixer.D_b" : tensor<64xf32>
      %kb = tensor.expand_shape %bmb [[0], [1], [2, 3]] output_shape [%b, 17, 1, 16] : tensor<?x17x16xf32> into tensor<?x17x1x16xf32>
      %qb = tensor.expand_shape %cmb [[0], [1], [2, 3]] output_shape [%b, 17, 1, 16] : tensor<?x17x16xf32> into tensor<?x17x1x16xf32>
      %vb = tensor.expand_shape %ub [[0], [1], [2, 3]] output_shape [%b, 17, 64, 1] : tensor<?x17x64xf32> into tensor<?x17x64x1xf32>
      %sb = glint.recurrence reverse q(%qb) k(%kb) v(%vb) log_decay(%ab) delta(%dtb) skip(%db) : (tensor<?x17x1x16xf32>, tensor<?x17x1x16xf32>, tensor<?x17x64x1xf32>, tensor<64x16xf32>, tensor<?x17x64xf32>, tensor<64xf32>) -> tensor<?x17x64x1xf32>
      %yb = tensor.collapse_shape %sb [[0], [1], [2, 3]] : tensor<?x17x64x1xf32> into tensor<?x17x64xf32>

      // Vim gates each branch by SiLU(z) and averages; the gate is common, so
      // (y_f + y_b) * 0.5 * SiLU(z). Layer matrix: diag(SiLU z)/2 (A_f + J A_b J).
      %ysum = arith.addf %yf, %yb : tensor<?x17x64xf32>
      %yavg = arith.mulf %ysum, %halves : tensor<?x17x64xf32>
      %gz = glint.act silu %z : tensor<?x17x64xf32>
      %g = arith.mulf %yavg, %gz : tensor<?x17x64xf32>
      glint.yield %g : tensor<?x17x64xf32>
    }
    %w_out = ml_program.global_load_const @"layers.0.mixer.out_proj.weight" : tensor<32x64xf32>
    %o = glint.linear %y, %w_out : (tensor<?x17x64xf32>, tensor<32x64xf32>) -> tensor<?x17x32xf32>
    %h1 = arith.addf %h0, %o : tensor<?x17x32xf32>

    // Final norm, then the CLS row (index 8) through the classification head.
    %nfw = ml_program.global_load_const @"norm_f.weight" : tensor<32xf32>
    %nf = glint.rms_norm %h1 weight %nfw epsilon 1.0e-05 : (tensor<?x17x32xf32>, tensor<32xf32>) -> tensor<?x17x32xf32>
    %clsout = tensor.extract_slice %nf[0, 8, 0] [%b, 1, 32] [1, 1, 1] : tensor<?x17x32xf32> to tensor<?x32xf32>
    %hw = ml_program.global_load_const @"head.weight" : tensor<10x32xf32>
    %hb = ml_program.global_load_const @"head.bias" : tensor<10xf32>
    %logits = glint.linear %clsout, %hw bias %hb : (tensor<?x32xf32>, tensor<10x32xf32>, tensor<10xf32>) -> tensor<?x10xf32>
    return %logits : tensor<?x10xf32>
  }
}
