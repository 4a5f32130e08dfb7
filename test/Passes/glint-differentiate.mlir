// RUN: glint-opt %s -glint-differentiate -split-input-file | FileCheck %s

// Tests that the gradient function is added next to an unchanged @forward:
// the seed after the inputs, the forward result, the cotangent of the
// mixer's output (labelled), then that of the embeddings; the conv1d's
// backward is the anti-causal conv1d with the same weights and no bias, the
// recurrence's a glint.recurrence_grad, and the weights get no cotangent.
// CHECK-LABEL: func.func @forward(
// CHECK: glint.mixer label "layers.0.mixer"
// CHECK-LABEL: func.func @forward_grad(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<?x?xi64>, %[[SEED:[^:]+]]: tensor<?x?x8xf32>)
// CHECK-SAME: -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>)
// CHECK-SAME: glint.gradient_layers = ["layers.0.mixer"]
// CHECK-NOT: glint.mixer
// CHECK: %[[EMB:.+]] = glint.embedding %[[IDS]]
// CHECK: glint.conv1d %[[EMB]], %[[W:[^ ]+]] bias
// CHECK: %[[Y:.+]] = glint.recurrence k(
// CHECK: %[[OUT:.+]] = glint.linear
// CHECK: %[[DY:.+]] = glint.linear %[[SEED]], %{{.+}} layout in_out
// CHECK: glint.recurrence_grad k(%{{.+}}) v(%{{.+}}) log_decay(%{{.+}}) grad(
// CHECK: %[[DX:.+]] = glint.conv1d reverse %{{.+}}, %[[W]] :
// CHECK: return %[[OUT]], %[[DY]], %[[DX]] :
module {
  ml_program.global private @emb(#ml_program.extern : tensor<16x8xf32>) : tensor<16x8xf32>
  ml_program.global private @conv(#ml_program.extern : tensor<8x3xf32>) : tensor<8x3xf32>
  ml_program.global private @bias(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  ml_program.global private @decay(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  ml_program.global private @out(#ml_program.extern : tensor<8x8xf32>) : tensor<8x8xf32>
  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x8xf32> {
    %e = ml_program.global_load_const @emb : tensor<16x8xf32>
    %h = glint.embedding %ids, %e : (tensor<?x?xi64>, tensor<16x8xf32>) -> tensor<?x?x8xf32>
    %y = glint.mixer label "layers.0.mixer" (%h) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
    ^bb0(%x: tensor<?x?x8xf32>):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %b = tensor.dim %x, %c0 : tensor<?x?x8xf32>
      %l = tensor.dim %x, %c1 : tensor<?x?x8xf32>
      %w = ml_program.global_load_const @conv : tensor<8x3xf32>
      %cb = ml_program.global_load_const @bias : tensor<8xf32>
      %c = glint.conv1d %x, %w bias %cb : (tensor<?x?x8xf32>, tensor<8x3xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
      %a = ml_program.global_load_const @decay : tensor<8xf32>
      %k = tensor.expand_shape %c [[0], [1], [2, 3]] output_shape [%b, %l, 8, 1] : tensor<?x?x8xf32> into tensor<?x?x8x1xf32>
      %s = glint.recurrence k(%k) v(%k) log_decay(%a) : (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>, tensor<8xf32>) -> tensor<?x?x8x1xf32>
      %s2 = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x8x1xf32> into tensor<?x?x8xf32>
      glint.yield %s2 : tensor<?x?x8xf32>
    }
    %wo = ml_program.global_load_const @out : tensor<8x8xf32>
    %o = glint.linear %y, %wo : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
    return %o : tensor<?x?x8xf32>
  }
}


// -----

// Tests a group norm's backward: x, its cotangent and the weight are viewed
// as [..., G, C / G] (here [?, ?, 2, 4] and [2, 4]), the statistics are
// those of one group over the view's last axis (glint.norm_stats groups 1,
// centred), and the input's cotangent is collapsed back to [?, ?, 8].
// CHECK-LABEL: func.func @forward_grad(
// CHECK: %[[H:.+]] = glint.embedding
// CHECK: %[[XV:.+]] = tensor.expand_shape %[[H]] {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, %{{.+}}, 2, 4] : tensor<?x?x8xf32> into tensor<?x?x2x4xf32>
// CHECK: %[[DYV:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, %{{.+}}, 2, 4] : tensor<?x?x8xf32> into tensor<?x?x2x4xf32>
// CHECK: %[[WV:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0, 1]] output_shape [2, 4] : tensor<8xf32> into tensor<2x4xf32>
// CHECK: %{{.+}}, %{{.+}} = glint.norm_stats %[[XV]] groups 1 epsilon 6.400000e-04 center : (tensor<?x?x2x4xf32>)
// CHECK: linalg.broadcast ins(%[[WV]] : tensor<2x4xf32>) outs(%{{.+}} : tensor<?x?x2x4xf32>) dimensions = [0, 1]
// CHECK-COUNT-2: glint.norm_stats %{{.+}} groups 1 epsilon 1.000000e+00 center : (tensor<?x?x2x4xf32>)
// CHECK: %[[DX:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1], [2, 3]] : tensor<?x?x2x4xf32> into tensor<?x?x8xf32>
// CHECK: return %{{.+}}, %[[DX]] :
module {
  ml_program.global private @emb(#ml_program.extern : tensor<16x8xf32>) : tensor<16x8xf32>
  ml_program.global private @gw(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  ml_program.global private @gb(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x8xf32> {
    %e = ml_program.global_load_const @emb : tensor<16x8xf32>
    %h = glint.embedding %ids, %e : (tensor<?x?xi64>, tensor<16x8xf32>) -> tensor<?x?x8xf32>
    %w = ml_program.global_load_const @gw : tensor<8xf32>
    %b = ml_program.global_load_const @gb : tensor<8xf32>
    %y = glint.group_norm %h groups 2 weight %w bias %b epsilon 6.400000e-04 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
    return %y : tensor<?x?x8xf32>
  }
}
