// RUN: glint-opt %s -convert-glint-to-linalg -split-input-file | FileCheck %s

// Tests that silu becomes one element-wise generic computing x · σ(x) with
// σ(x) = 1 / (1 + exp(-x)), on an output of the input's dynamic sizes.
// CHECK-LABEL: func @act_silu
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>)
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<?x?x8xf32>
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<?x?x8xf32>
// CHECK: %[[INIT:.+]] = tensor.empty(%[[B]], %[[L]]) : tensor<?x?x8xf32>
// CHECK: %[[Y:.+]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel"]
// CHECK-SAME: ins(%[[X]] : tensor<?x?x8xf32>) outs(%[[INIT]] : tensor<?x?x8xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[NEG:.+]] = arith.negf %[[IN]] : f32
// CHECK-NEXT: %[[E:.+]] = math.exp %[[NEG]] : f32
// CHECK-NEXT: %[[DEN:.+]] = arith.addf %[[ONE]], %[[E]] : f32
// CHECK-NEXT: %[[SIG:.+]] = arith.divf %[[ONE]], %[[DEN]] : f32
// CHECK-NEXT: %[[R:.+]] = arith.mulf %[[IN]], %[[SIG]] : f32
// CHECK-NEXT: linalg.yield %[[R]] : f32
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @act_silu(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act silu %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that sigmoid is 1 / (1 + exp(-x)), which underflows to 0 instead of
// overflowing.
// CHECK-LABEL: func @act_sigmoid
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[NEG:.+]] = arith.negf %[[IN]]
// CHECK-NEXT: %[[E:.+]] = math.exp %[[NEG]]
// CHECK-NEXT: %[[DEN:.+]] = arith.addf %[[ONE]], %[[E]]
// CHECK-NEXT: %[[SIG:.+]] = arith.divf %[[ONE]], %[[DEN]]
// CHECK-NEXT: linalg.yield %[[SIG]]
// CHECK-NOT: glint.
func.func @act_sigmoid(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act sigmoid %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that gelu is 0.5 · x · (1 + erf(x / √2)) with math.erf.
// CHECK-LABEL: func @act_gelu
// CHECK-DAG: %[[HALF:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[SQRT2:.+]] = arith.constant 1.41421354 : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[S:.+]] = arith.divf %[[IN]], %[[SQRT2]]
// CHECK-NEXT: %[[ERF:.+]] = math.erf %[[S]]
// CHECK-NEXT: %[[P:.+]] = arith.addf %[[ONE]], %[[ERF]]
// CHECK-NEXT: %[[HX:.+]] = arith.mulf %[[HALF]], %[[IN]]
// CHECK-NEXT: %[[R:.+]] = arith.mulf %[[HX]], %[[P]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_gelu(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act gelu %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that gelu_tanh is 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
// with math.tanh.
// CHECK-LABEL: func @act_gelu_tanh
// CHECK-DAG: %[[HALF:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[C:.+]] = arith.constant 0.797884583 : f32
// CHECK-DAG: %[[K:.+]] = arith.constant 4.471500e-02 : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[A:.+]] = arith.mulf %[[K]], %[[IN]]
// CHECK-NEXT: %[[A2:.+]] = arith.mulf %[[A]], %[[IN]]
// CHECK-NEXT: %[[A3:.+]] = arith.mulf %[[A2]], %[[IN]]
// CHECK-NEXT: %[[SUM:.+]] = arith.addf %[[IN]], %[[A3]]
// CHECK-NEXT: %[[ARG:.+]] = arith.mulf %[[C]], %[[SUM]]
// CHECK-NEXT: %[[T:.+]] = math.tanh %[[ARG]]
// CHECK-NEXT: %[[P:.+]] = arith.addf %[[ONE]], %[[T]]
// CHECK-NEXT: %[[HX:.+]] = arith.mulf %[[HALF]], %[[IN]]
// CHECK-NEXT: %[[R:.+]] = arith.mulf %[[HX]], %[[P]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_gelu_tanh(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act gelu_tanh %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that softplus is max(x, 0) + log1p(exp(-|x|)), which cannot overflow.
// CHECK-LABEL: func @act_softplus
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[ABS:.+]] = math.absf %[[IN]]
// CHECK-NEXT: %[[NEG:.+]] = arith.negf %[[ABS]]
// CHECK-NEXT: %[[E:.+]] = math.exp %[[NEG]]
// CHECK-NEXT: %[[LOG:.+]] = math.log1p %[[E]]
// CHECK-NEXT: %[[MAX:.+]] = arith.maximumf %[[IN]], %[[ZERO]]
// CHECK-NEXT: %[[R:.+]] = arith.addf %[[MAX]], %[[LOG]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_softplus(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act softplus %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that relu is max(x, 0) on a static rank-1 tensor.
// CHECK-LABEL: func @act_relu
// CHECK-SAME: (%[[X:.+]]: tensor<4xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[INIT:.+]] = tensor.empty() : tensor<4xf32>
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[X]] : tensor<4xf32>) outs(%[[INIT]] : tensor<4xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[R:.+]] = arith.maximumf %[[IN]], %[[ZERO]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_relu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = glint.act relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that relu_square squares max(x, 0), in the op's element type (f64).
// CHECK-LABEL: func @act_relu_square
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f64
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f64, %{{.+}}: f64):
// CHECK-NEXT: %[[M:.+]] = arith.maximumf %[[IN]], %[[ZERO]] : f64
// CHECK-NEXT: %[[R:.+]] = arith.mulf %[[M]], %[[M]] : f64
// CHECK-NEXT: linalg.yield %[[R]] : f64
// CHECK-NOT: glint.
func.func @act_relu_square(%x: tensor<4xf64>) -> tensor<4xf64> {
  %y = glint.act relu_square %x : tensor<4xf64>
  return %y : tensor<4xf64>
}

// -----

// Tests that tanh is math.tanh.
// CHECK-LABEL: func @act_tanh
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[R:.+]] = math.tanh %[[IN]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_tanh(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act tanh %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that exp is math.exp.
// CHECK-LABEL: func @act_exp
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[R:.+]] = math.exp %[[IN]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @act_exp(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.act exp %x : tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that neg_exp is -exp(x), in f16.
// CHECK-LABEL: func @act_neg_exp
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f16, %{{.+}}: f16):
// CHECK-NEXT: %[[E:.+]] = math.exp %[[IN]] : f16
// CHECK-NEXT: %[[R:.+]] = arith.negf %[[E]] : f16
// CHECK-NEXT: linalg.yield %[[R]] : f16
// CHECK-NOT: glint.
func.func @act_neg_exp(%x: tensor<4xf16>) -> tensor<4xf16> {
  %y = glint.act neg_exp %x : tensor<4xf16>
  return %y : tensor<4xf16>
}

// -----

// Tests that a PyTorch-layout ([out, in]) linear layer is one linalg.matmul
// with the transposed-B indexing maps on the rows [B·L, I], accumulating
// into the broadcast bias, expanded back to [B, L, O].
// CHECK-DAG: #[[$A:.+]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[$BT:.+]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$C:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func @linear_out_in_bias
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<4x8xf32>, %[[BIAS:.+]]: tensor<4xf32>)
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<?x?x8xf32>
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<?x?x8xf32>
// CHECK: %[[ROWS:.+]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1], [2]] : tensor<?x?x8xf32> into tensor<?x8xf32>
// CHECK: %[[M:.+]] = tensor.dim %[[ROWS]]
// CHECK: %[[EMPTY:.+]] = tensor.empty(%[[M]]) : tensor<?x4xf32>
// CHECK: %[[INIT:.+]] = linalg.broadcast ins(%[[BIAS]] : tensor<4xf32>) outs(%[[EMPTY]] : tensor<?x4xf32>) dimensions = [0]
// CHECK: %[[MM:.+]] = linalg.matmul indexing_maps = [#[[$A]], #[[$BT]], #[[$C]]] ins(%[[ROWS]], %[[W]] : tensor<?x8xf32>, tensor<4x8xf32>) outs(%[[INIT]] : tensor<?x4xf32>)
// CHECK: %[[Y:.+]] = tensor.expand_shape %[[MM]] {{\[\[}}0, 1], [2]] output_shape [%[[B]], %[[L]], 4] : tensor<?x4xf32> into tensor<?x?x4xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @linear_out_in_bias(%x: tensor<?x?x8xf32>, %w: tensor<4x8xf32>,
    %b: tensor<4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.linear %x, %w bias %b : (tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}

// -----

// Tests that an [in, out] weight is a plain linalg.matmul into zeros, and
// that a rank-1 input becomes a single row and back.
// CHECK-LABEL: func @linear_in_out_rank1
// CHECK-SAME: (%[[X:.+]]: tensor<8xf32>, %[[W:.+]]: tensor<8x4xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[ROW:.+]] = tensor.expand_shape %[[X]] {{\[\[}}0, 1]] output_shape [1, 8] : tensor<8xf32> into tensor<1x8xf32>
// CHECK: %[[EMPTY:.+]] = tensor.empty() : tensor<1x4xf32>
// CHECK: %[[INIT:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[EMPTY]] : tensor<1x4xf32>)
// CHECK: %[[MM:.+]] = linalg.matmul ins(%[[ROW]], %[[W]] : tensor<1x8xf32>, tensor<8x4xf32>) outs(%[[INIT]] : tensor<1x4xf32>)
// CHECK: %[[Y:.+]] = tensor.collapse_shape %[[MM]] {{\[\[}}0, 1]] : tensor<1x4xf32> into tensor<4xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @linear_in_out_rank1(%x: tensor<8xf32>, %w: tensor<8x4xf32>) -> tensor<4xf32> {
  %y = glint.linear %x, %w layout in_out : (tensor<8xf32>, tensor<8x4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that a block-diagonal [N, O/N, I/N] weight is a contraction generic
// over (rows, block, out, in) on the rows split as [M, N, I/N].
// CHECK-DAG: #[[$X:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[$W:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d2, d3)>
// CHECK-DAG: #[[$Y:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func @linear_blocks_out_in
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<2x3x4xf32>, %[[BIAS:.+]]: tensor<6xf32>)
// CHECK: %[[ROWS:.+]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1], [2]]
// CHECK: %[[M:.+]] = tensor.dim %[[ROWS]]
// CHECK: %[[INIT:.+]] = linalg.broadcast ins(%[[BIAS]] : tensor<6xf32>)
// CHECK: %[[XB:.+]] = tensor.expand_shape %[[ROWS]] {{\[\[}}0], [1, 2]] output_shape [%[[M]], 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
// CHECK: %[[IB:.+]] = tensor.expand_shape %[[INIT]] {{\[\[}}0], [1, 2]] output_shape [%[[M]], 2, 3] : tensor<?x6xf32> into tensor<?x2x3xf32>
// CHECK: %[[P:.+]] = linalg.generic {indexing_maps = [#[[$X]], #[[$W]], #[[$Y]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[XB]], %[[W]] : tensor<?x2x4xf32>, tensor<2x3x4xf32>) outs(%[[IB]] : tensor<?x2x3xf32>)
// CHECK-NEXT: ^bb0(%[[A:.+]]: f32, %[[B:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[AB:.+]] = arith.mulf %[[A]], %[[B]]
// CHECK-NEXT: %[[S:.+]] = arith.addf %[[ACC]], %[[AB]]
// CHECK-NEXT: linalg.yield %[[S]]
// CHECK: %[[FLAT:.+]] = tensor.collapse_shape %[[P]] {{\[\[}}0], [1, 2]] : tensor<?x2x3xf32> into tensor<?x6xf32>
// CHECK: %[[R:.+]] = tensor.expand_shape %[[FLAT]] {{\[\[}}0, 1], [2]]
// CHECK-NOT: glint.
// CHECK: return %[[R]]
func.func @linear_blocks_out_in(%x: tensor<?x?x8xf32>, %w: tensor<2x3x4xf32>,
    %b: tensor<6xf32>) -> tensor<?x?x6xf32> {
  %y = glint.linear %x, %w bias %b : (tensor<?x?x8xf32>, tensor<2x3x4xf32>, tensor<6xf32>) -> tensor<?x?x6xf32>
  return %y : tensor<?x?x6xf32>
}

// -----

// Tests that a block-diagonal [N, I/N, O/N] weight reads the weight with the
// last two loops swapped.
// CHECK-DAG: #[[$W:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d3, d2)>
// CHECK-LABEL: func @linear_blocks_in_out
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<2x4x3xf32>)
// CHECK: linalg.fill
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[$W]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%{{.+}}, %[[W]] : tensor<?x2x4xf32>, tensor<2x4x3xf32>)
// CHECK-NOT: glint.
func.func @linear_blocks_in_out(%x: tensor<?x?x8xf32>, %w: tensor<2x4x3xf32>) -> tensor<?x?x6xf32> {
  %y = glint.linear %x, %w layout in_out : (tensor<?x?x8xf32>, tensor<2x4x3xf32>) -> tensor<?x?x6xf32>
  return %y : tensor<?x?x6xf32>
}

// -----

// Tests that rms_norm is a sum-of-squares reduction over the last axis, then
// one element-wise pass x · rsqrt(sum / C + eps) · (offset + w).
// CHECK-DAG: #[[$ID:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[$ROW:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$CH:.+]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-LABEL: func @rms_norm_weight_offset
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8xf32>)
// CHECK-DAG: %[[OFFSET:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[EPS:.+]] = arith.constant 9.99999997E-7 : f32
// CHECK-DAG: %[[C:.+]] = arith.constant 8.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[E0:.+]] = tensor.empty(%{{.+}}, %{{.+}}) : tensor<?x?xf32>
// CHECK: %[[Z:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[E0]] : tensor<?x?xf32>)
// CHECK: %[[SQ:.+]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[X]] : tensor<?x?x8xf32>) outs(%[[Z]] : tensor<?x?xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[P:.+]] = arith.mulf %[[IN]], %[[IN]]
// CHECK-NEXT: %[[S:.+]] = arith.addf %[[ACC]], %[[P]]
// CHECK-NEXT: linalg.yield %[[S]]
// CHECK: %[[Y:.+]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]], #[[$CH]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[X]], %[[SQ]], %[[W]] : tensor<?x?x8xf32>, tensor<?x?xf32>, tensor<8xf32>)
// CHECK-NEXT: ^bb0(%[[XI:.+]]: f32, %[[SI:.+]]: f32, %[[WI:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[VAR:.+]] = arith.divf %[[SI]], %[[C]]
// CHECK-NEXT: %[[VE:.+]] = arith.addf %[[VAR]], %[[EPS]]
// CHECK-NEXT: %[[RS:.+]] = math.rsqrt %[[VE]]
// CHECK-NEXT: %[[N:.+]] = arith.mulf %[[XI]], %[[RS]]
// CHECK-NEXT: %[[G:.+]] = arith.addf %[[OFFSET]], %[[WI]]
// CHECK-NEXT: %[[R:.+]] = arith.mulf %[[N]], %[[G]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @rms_norm_weight_offset(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.rms_norm %x weight %w epsilon 1.0e-06 {weight_offset = 1.0 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that rms_norm without a weight scales by nothing but the rsqrt.
// CHECK-LABEL: func @rms_norm
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel"]
// CHECK-SAME: ins(%{{.+}}, %{{.+}} : tensor<?x?x8xf32>, tensor<?x?xf32>)
// CHECK: %[[RS:.+]] = math.rsqrt
// CHECK-NEXT: %[[R:.+]] = arith.mulf %{{.+}}, %[[RS]]
// CHECK-NEXT: linalg.yield %[[R]]
// CHECK-NOT: glint.
func.func @rms_norm(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.rms_norm %x epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that layer_norm takes two reductions (the sum, then the squared
// deviations from the mean) before the affine pass.
// CHECK-LABEL: func @layer_norm
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8xf32>, %[[BIAS:.+]]: tensor<8xf32>)
// CHECK-DAG: %[[C:.+]] = arith.constant 8.000000e+00 : f32
// CHECK: %[[SUM:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-SAME: ins(%[[X]] : tensor<?x?x8xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[S:.+]] = arith.addf %[[ACC]], %[[IN]]
// CHECK-NEXT: linalg.yield %[[S]]
// CHECK: %[[SQ:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-SAME: ins(%[[X]], %[[SUM]] : tensor<?x?x8xf32>, tensor<?x?xf32>)
// CHECK-NEXT: ^bb0(%[[IN2:.+]]: f32, %[[SUM2:.+]]: f32, %[[ACC2:.+]]: f32):
// CHECK-NEXT: %[[MEAN:.+]] = arith.divf %[[SUM2]], %[[C]]
// CHECK-NEXT: %[[D:.+]] = arith.subf %[[IN2]], %[[MEAN]]
// CHECK-NEXT: %[[D2:.+]] = arith.mulf %[[D]], %[[D]]
// CHECK-NEXT: %[[S2:.+]] = arith.addf %[[ACC2]], %[[D2]]
// CHECK-NEXT: linalg.yield %[[S2]]
// CHECK: %[[Y:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel"]
// CHECK-SAME: ins(%[[X]], %[[SUM]], %[[SQ]], %[[W]], %[[BIAS]] : tensor<?x?x8xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<8xf32>, tensor<8xf32>)
// CHECK-NEXT: ^bb0(%{{.+}}: f32, %{{.+}}: f32, %{{.+}}: f32, %[[WI:.+]]: f32, %[[BI:.+]]: f32, %{{.+}}: f32):
// CHECK: %[[RS:.+]] = math.rsqrt
// CHECK-NEXT: %[[N:.+]] = arith.mulf %{{.+}}, %[[RS]]
// CHECK-NEXT: %[[SCALED:.+]] = arith.mulf %[[N]], %[[WI]]
// CHECK-NEXT: %[[AFF:.+]] = arith.addf %[[SCALED]], %[[BI]]
// CHECK-NEXT: linalg.yield %[[AFF]]
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @layer_norm(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.layer_norm %x weight %w bias %b epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that group_norm normalises [B, L, G, C/G] per group, with the weight
// and bias reshaped to [G, C/G], and collapses the result back.
// CHECK-DAG: #[[$PARAM:.+]] = affine_map<(d0, d1, d2, d3) -> (d2, d3)>
// CHECK-LABEL: func @group_norm
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8xf32>, %[[BIAS:.+]]: tensor<8xf32>)
// CHECK-DAG: %[[C:.+]] = arith.constant 4.000000e+00 : f32
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK: %[[XG:.+]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1], [2, 3]] output_shape [%[[B]], %[[L]], 2, 4] : tensor<?x?x8xf32> into tensor<?x?x2x4xf32>
// CHECK: %[[WG:.+]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1]] output_shape [2, 4] : tensor<8xf32> into tensor<2x4xf32>
// CHECK: %[[BG:.+]] = tensor.expand_shape %[[BIAS]] {{\[\[}}0, 1]] output_shape [2, 4] : tensor<8xf32> into tensor<2x4xf32>
// CHECK: %[[SUM:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK-SAME: outs(%{{.+}} : tensor<?x?x2xf32>)
// CHECK: %[[SQ:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: arith.divf %{{.+}}, %[[C]]
// CHECK: %[[Y:.+]] = linalg.generic {indexing_maps = [#{{.+}}, #{{.+}}, #{{.+}}, #[[$PARAM]], #[[$PARAM]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[XG]], %[[SUM]], %[[SQ]], %[[WG]], %[[BG]] :
// CHECK: %[[R:.+]] = tensor.collapse_shape %[[Y]] {{\[\[}}0], [1], [2, 3]] : tensor<?x?x2x4xf32> into tensor<?x?x8xf32>
// CHECK-NOT: glint.
// CHECK: return %[[R]]
func.func @group_norm(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.group_norm %x groups 2 weight %w bias %b epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that norm_stats with groups and centring takes the group norm's two
// reductions over [B, L, G, C/G], then one map writing the gain
// rsqrt(var + eps) · (offset + w) and one the group mean (each a map of its
// own, one result each, which glint-vectorize-elementwise takes), both
// collapsed back.
// CHECK-DAG: #[[$ROW:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[$PARAM:.+]] = affine_map<(d0, d1, d2, d3) -> (d2, d3)>
// CHECK-DAG: #[[$ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func @norm_stats_grouped
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8xf32>)
// CHECK-DAG: %[[OFFSET:.+]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[C:.+]] = arith.constant 4.000000e+00 : f32
// CHECK: %[[XG:.+]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1], [2, 3]]
// CHECK: %[[WG:.+]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1]] output_shape [2, 4]
// CHECK: %[[SUM:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: %[[SQ:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK: %[[GAIN:.+]] = linalg.generic {indexing_maps = [#[[$ROW]], #[[$PARAM]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[SQ]], %[[WG]] :
// CHECK-NEXT: ^bb0(%[[QI:.+]]: f32, %[[WI:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[VAR:.+]] = arith.divf %[[QI]], %[[C]]
// CHECK-NEXT: %[[VE:.+]] = arith.addf %[[VAR]], %{{.+}}
// CHECK-NEXT: %[[RS:.+]] = math.rsqrt %[[VE]]
// CHECK-NEXT: %[[WO:.+]] = arith.addf %[[OFFSET]], %[[WI]]
// CHECK-NEXT: %[[G0:.+]] = arith.mulf %[[RS]], %[[WO]]
// CHECK-NEXT: linalg.yield %[[G0]]
// CHECK: %[[MEAN:.+]] = linalg.generic {indexing_maps = [#[[$ROW]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[SUM]] :
// CHECK-NEXT: ^bb0(%[[SI:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[M0:.+]] = arith.divf %[[SI]], %[[C]]
// CHECK-NEXT: linalg.yield %[[M0]]
// CHECK: %[[G:.+]] = tensor.collapse_shape %[[GAIN]] {{\[\[}}0], [1], [2, 3]] : tensor<?x?x2x4xf32> into tensor<?x?x8xf32>
// CHECK: %[[M:.+]] = tensor.collapse_shape %[[MEAN]] {{\[\[}}0], [1], [2, 3]] : tensor<?x?x2x4xf32> into tensor<?x?x8xf32>
// CHECK-NOT: glint.
// CHECK: return %[[G]], %[[M]]
func.func @norm_stats_grouped(%x: tensor<?x?x8xf32>, %w: tensor<8xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>) {
  %g, %m = glint.norm_stats %x groups 2 weight %w epsilon 1.0e-05 center {weight_offset = 1.0 : f64} : (tensor<?x?x8xf32>, tensor<8xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>)
  return %g, %m : tensor<?x?x8xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that norm_stats without centring (RMS) takes one reduction and
// yields a zero mean (a fill); without a weight the gain is the rsqrt alone.
// CHECK-LABEL: func @norm_stats_rms
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "reduction"]
// CHECK-NOT: iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: %[[GAIN:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel"]
// CHECK: %[[RS:.+]] = math.rsqrt
// CHECK-NEXT: linalg.yield %[[RS]]
// CHECK: %[[MEAN:.+]] = linalg.fill ins(%[[ZERO]] : f32)
// CHECK-NOT: glint.
// CHECK: return %[[GAIN]], %[[MEAN]]
func.func @norm_stats_rms(%x: tensor<?x?x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>) {
  %g, %m = glint.norm_stats %x groups 1 epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>)
  return %g, %m : tensor<?x?x8xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that an embedding is a gather: a generic over [B, L, D] reading the
// id, casting it to index (no clamp) and extracting the table row.
// CHECK-DAG: #[[$IDS:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$OUT:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func @embedding
// CHECK-SAME: (%[[IDS:.+]]: tensor<?x?xi64>, %[[TABLE:.+]]: tensor<10x8xf32>)
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[IDS]], %{{.+}} : tensor<?x?xi64>
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[IDS]], %{{.+}} : tensor<?x?xi64>
// CHECK: %[[INIT:.+]] = tensor.empty(%[[B]], %[[L]]) : tensor<?x?x8xf32>
// CHECK: %[[Y:.+]] = linalg.generic {indexing_maps = [#[[$IDS]], #[[$OUT]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[IDS]] : tensor<?x?xi64>) outs(%[[INIT]] : tensor<?x?x8xf32>)
// CHECK-NEXT: ^bb0(%[[ID:.+]]: i64, %{{.+}}: f32):
// CHECK-NEXT: %[[ROW:.+]] = arith.index_cast %[[ID]] : i64 to index
// CHECK-NEXT: %[[COL:.+]] = linalg.index 2 : index
// CHECK-NEXT: %[[V:.+]] = tensor.extract %[[TABLE]][%[[ROW]], %[[COL]]] : tensor<10x8xf32>
// CHECK-NEXT: linalg.yield %[[V]] : f32
// CHECK-NOT: glint.
// CHECK-NOT: arith.minsi
// CHECK: return %[[Y]]
func.func @embedding(%ids: tensor<?x?xi64>, %t: tensor<10x8xf32>) -> tensor<?x?x8xf32> {
  %h = glint.embedding %ids, %t : (tensor<?x?xi64>, tensor<10x8xf32>) -> tensor<?x?x8xf32>
  return %h : tensor<?x?x8xf32>
}

// -----

// Tests that a causal conv1d with bias is linalg.depthwise_conv_1d_nwc_wc on
// the input padded with W-1 zero positions in front, with the weight
// transposed to the [W, C] filter and the bias as the accumulator.
// CHECK-LABEL: func @conv1d_bias
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8x4xf32>, %[[BIAS:.+]]: tensor<8xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK: %[[FE:.+]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[FILTER:.+]] = linalg.transpose ins(%[[W]] : tensor<8x4xf32>) outs(%[[FE]] : tensor<4x8xf32>) permutation = [1, 0]
// CHECK: %[[PE:.+]] = tensor.empty(%[[B]]) : tensor<?x3x8xf32>
// CHECK: %[[PAD:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[PE]] : tensor<?x3x8xf32>)
// CHECK: %[[XP:.+]] = tensor.concat dim(1) %[[PAD]], %[[X]] : (tensor<?x3x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK: %[[OE:.+]] = tensor.empty(%[[B]], %[[L]]) : tensor<?x?x8xf32>
// CHECK: %[[INIT:.+]] = linalg.broadcast ins(%[[BIAS]] : tensor<8xf32>) outs(%[[OE]] : tensor<?x?x8xf32>) dimensions = [0, 1]
// CHECK: %[[Y:.+]] = linalg.depthwise_conv_1d_nwc_wc ins(%[[XP]], %[[FILTER]] : tensor<?x?x8xf32>, tensor<4x8xf32>) outs(%[[INIT]] : tensor<?x?x8xf32>)
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @conv1d_bias(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>, %b: tensor<8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.conv1d %x, %w bias %b : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that the initial state pads the input directly and that the final
// state is the slice of the padded input after the first L positions.
// CHECK-LABEL: func @conv1d_state
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8x4xf32>, %[[S:.+]]: tensor<?x3x8xf32>)
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK: %[[FILTER:.+]] = linalg.transpose ins(%[[W]]
// CHECK: %[[XP:.+]] = tensor.concat dim(1) %[[S]], %[[X]] : (tensor<?x3x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK: %[[INIT:.+]] = linalg.fill
// CHECK: %[[Y:.+]] = linalg.depthwise_conv_1d_nwc_wc ins(%[[XP]], %[[FILTER]] : {{.+}}) outs(%[[INIT]] : tensor<?x?x8xf32>)
// CHECK: %[[F:.+]] = tensor.extract_slice %[[XP]][0, %[[L]], 0] [%[[B]], 3, 8] [1, 1, 1] : tensor<?x?x8xf32> to tensor<?x3x8xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]], %[[F]]
func.func @conv1d_state(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>, %s: tensor<?x3x8xf32>)
    -> (tensor<?x?x8xf32>, tensor<?x3x8xf32>) {
  %y, %f = glint.conv1d %x, %w initial_state(%s) : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<?x3x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x3x8xf32>)
  return %y, %f : tensor<?x?x8xf32>, tensor<?x3x8xf32>
}

// -----

// Tests that the anti-causal conv1d flips the filter and the state instead of
// the activations: the state, reversed in time, goes after the input, and the
// final state is the first W-1 padded positions reversed.
// CHECK-DAG: #[[$FLIPW:.+]] = affine_map<(d0, d1) -> (d1, -d0 + 3)>
// CHECK-DAG: #[[$FLIPT:.+]] = affine_map<(d0, d1, d2) -> (d0, -d1 + 2, d2)>
// CHECK-LABEL: func @conv1d_reverse_state
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8x4xf32>, %[[S:.+]]: tensor<?x3x8xf32>)
// CHECK: %[[FILTER:.+]] = linalg.generic {indexing_maps = [#[[$FLIPW]], #{{.+}}], iterator_types = ["parallel", "parallel"]} ins(%[[W]] : tensor<8x4xf32>) outs(%{{.+}} : tensor<4x8xf32>)
// CHECK: %[[SR:.+]] = linalg.generic {indexing_maps = [#[[$FLIPT]], #{{.+}}], {{.+}} ins(%[[S]] : tensor<?x3x8xf32>)
// CHECK: %[[XP:.+]] = tensor.concat dim(1) %[[X]], %[[SR]] : (tensor<?x?x8xf32>, tensor<?x3x8xf32>) -> tensor<?x?x8xf32>
// CHECK: %[[Y:.+]] = linalg.depthwise_conv_1d_nwc_wc ins(%[[XP]], %[[FILTER]] :
// CHECK: %[[HEAD:.+]] = tensor.extract_slice %[[XP]][0, 0, 0] [%{{.+}}, 3, 8] [1, 1, 1] : tensor<?x?x8xf32> to tensor<?x3x8xf32>
// CHECK: %[[F:.+]] = linalg.generic {indexing_maps = [#[[$FLIPT]], #{{.+}}], {{.+}} ins(%[[HEAD]] : tensor<?x3x8xf32>)
// CHECK-NOT: glint.
// CHECK: return %[[Y]], %[[F]]
func.func @conv1d_reverse_state(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>, %s: tensor<?x3x8xf32>)
    -> (tensor<?x?x8xf32>, tensor<?x3x8xf32>) {
  %y, %f = glint.conv1d reverse %x, %w initial_state(%s) : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<?x3x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x3x8xf32>)
  return %y, %f : tensor<?x?x8xf32>, tensor<?x3x8xf32>
}

// -----

// Tests that a width-1 conv1d needs no padding.
// CHECK-LABEL: func @conv1d_width1
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8x1xf32>)
// CHECK-NOT: tensor.concat
// CHECK: %[[Y:.+]] = linalg.depthwise_conv_1d_nwc_wc ins(%[[X]], %{{.+}} : tensor<?x?x8xf32>, tensor<1x8xf32>)
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @conv1d_width1(%x: tensor<?x?x8xf32>, %w: tensor<8x1xf32>) -> tensor<?x?x8xf32> {
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x1xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that a token shift is the concatenation of a zero row and all but the
// last token.
// CHECK-LABEL: func @token_shift
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[C1:.+]] = arith.constant 1 : index
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK: %[[E:.+]] = tensor.empty(%[[B]]) : tensor<?x1x8xf32>
// CHECK: %[[FIRST:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[E]] : tensor<?x1x8xf32>)
// CHECK: %[[LM1:.+]] = arith.subi %[[L]], %[[C1]] : index
// CHECK: %[[HEAD:.+]] = tensor.extract_slice %[[X]][0, 0, 0] [%[[B]], %[[LM1]], 8] [1, 1, 1]
// CHECK: %[[Y:.+]] = tensor.concat dim(1) %[[FIRST]], %[[HEAD]] : (tensor<?x1x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @token_shift(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.token_shift %x : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that the token-shift state is the first row and the final state the
// last token, as a rank-reducing slice.
// CHECK-LABEL: func @token_shift_state
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[S:.+]]: tensor<?x8xf32>)
// CHECK-DAG: %[[SB:.+]] = tensor.dim %[[S]], %{{.+}} : tensor<?x8xf32>
// CHECK: %[[FIRST:.+]] = tensor.expand_shape %[[S]] {{\[\[}}0, 1], [2]] output_shape [%[[SB]], 1, 8] : tensor<?x8xf32> into tensor<?x1x8xf32>
// CHECK: %[[LM1:.+]] = arith.subi
// CHECK: %[[HEAD:.+]] = tensor.extract_slice %[[X]][0, 0, 0]
// CHECK: %[[Y:.+]] = tensor.concat dim(1) %[[FIRST]], %[[HEAD]]
// CHECK: %[[F:.+]] = tensor.extract_slice %[[X]][0, %[[LM1]], 0] [%{{.+}}, 1, 8] [1, 1, 1] : tensor<?x?x8xf32> to tensor<?x8xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]], %[[F]]
func.func @token_shift_state(%x: tensor<?x?x8xf32>, %s: tensor<?x8xf32>)
    -> (tensor<?x?x8xf32>, tensor<?x8xf32>) {
  %y, %f = glint.token_shift %x initial_state(%s) : (tensor<?x?x8xf32>, tensor<?x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x8xf32>)
  return %y, %f : tensor<?x?x8xf32>, tensor<?x8xf32>
}

// -----

// Tests that rotate-half rotary builds cos/sin tables of the positions
// (offset + t) times the constant inverse frequencies, rotates the two
// halves of the first rotary_dim features in one generic, and inserts them
// back so that the other features pass through.
// CHECK-DAG: #[[$FREQ:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[$TABLE:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-LABEL: func @rotary_half_offset
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x2x8xf32>, %[[OFF:.+]]: index)
// CHECK-DAG: %[[INV:.+]] = arith.constant dense<[1.000000e+00, 0.00999999977]> : tensor<2xf32>
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[X]], %{{.+}}
// CHECK: %[[TABLES:.+]]:2 = linalg.generic {indexing_maps = [#[[$FREQ]], #{{.+}}, #{{.+}}], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME: ins(%[[INV]] : tensor<2xf32>) outs(%{{.+}}, %{{.+}} : tensor<?x2xf32>, tensor<?x2xf32>)
// CHECK-NEXT: ^bb0(%[[F:.+]]: f32, %{{.+}}: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[T:.+]] = linalg.index 0 : index
// CHECK-NEXT: %[[POS:.+]] = arith.addi %[[OFF]], %[[T]] : index
// CHECK-NEXT: %[[POSI:.+]] = arith.index_cast %[[POS]] : index to i64
// CHECK-NEXT: %[[POSF:.+]] = arith.sitofp %[[POSI]] : i64 to f32
// CHECK-NEXT: %[[THETA:.+]] = arith.mulf %[[POSF]], %[[F]]
// CHECK-NEXT: %[[COS:.+]] = math.cos %[[THETA]]
// CHECK-NEXT: %[[SIN:.+]] = math.sin %[[THETA]]
// CHECK-NEXT: linalg.yield %[[COS]], %[[SIN]]
// CHECK: %[[X1:.+]] = tensor.extract_slice %[[X]][0, 0, 0, 0] [%[[B]], %[[L]], 2, 2] [1, 1, 1, 1]
// CHECK: %[[X2:.+]] = tensor.extract_slice %[[X]][0, 0, 0, 2] [%[[B]], %[[L]], 2, 2] [1, 1, 1, 1]
// CHECK: %[[ROT:.+]]:2 = linalg.generic {indexing_maps = [#{{.+}}, #{{.+}}, #[[$TABLE]], #[[$TABLE]], #{{.+}}, #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[X1]], %[[X2]], %[[TABLES]]#0, %[[TABLES]]#1 :
// CHECK-NEXT: ^bb0(%[[A:.+]]: f32, %[[C:.+]]: f32, %[[CT:.+]]: f32, %[[ST:.+]]: f32, %{{.+}}: f32, %{{.+}}: f32):
// CHECK-DAG: %[[CS:.+]] = arith.mulf %[[C]], %[[ST]]
// CHECK-DAG: %[[AC:.+]] = arith.mulf %[[A]], %[[CT]]
// CHECK-DAG: %[[RA:.+]] = arith.subf %[[AC]], %[[CS]]
// CHECK-DAG: %[[AS:.+]] = arith.mulf %[[A]], %[[ST]]
// CHECK-DAG: %[[CC:.+]] = arith.mulf %[[C]], %[[CT]]
// CHECK-DAG: %[[RC:.+]] = arith.addf %[[CC]], %[[AS]]
// CHECK: linalg.yield %[[RA]], %[[RC]]
// CHECK: %[[Y1:.+]] = tensor.insert_slice %[[ROT]]#0 into %[[X]][0, 0, 0, 0] [%[[B]], %[[L]], 2, 2] [1, 1, 1, 1]
// CHECK: %[[Y:.+]] = tensor.insert_slice %[[ROT]]#1 into %[[Y1]][0, 0, 0, 2] [%[[B]], %[[L]], 2, 2] [1, 1, 1, 1]
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @rotary_half_offset(%x: tensor<?x?x2x8xf32>, %o: index) -> tensor<?x?x2x8xf32> {
  %y = glint.rotary %x offset(%o) rotary_dim 4 base 10000.0 : tensor<?x?x2x8xf32>
  return %y : tensor<?x?x2x8xf32>
}

// -----

// Tests that interleaved rotary takes the even and odd features as stride-2
// slices, and that positions start at 0 without an offset.
// CHECK-LABEL: func @rotary_interleaved
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x2x8xf32>)
// CHECK-DAG: arith.constant dense<[1.000000e+00, 0.211474255, 0.0447213612, 0.0094574159]> : tensor<4xf32>
// CHECK: %[[T:.+]] = linalg.index 0 : index
// CHECK-NEXT: arith.index_cast %[[T]] : index to i64
// CHECK: %[[EVEN:.+]] = tensor.extract_slice %[[X]][0, 0, 0, 0] [%{{.+}}, %{{.+}}, 2, 4] [1, 1, 1, 2]
// CHECK: %[[ODD:.+]] = tensor.extract_slice %[[X]][0, 0, 0, 1] [%{{.+}}, %{{.+}}, 2, 4] [1, 1, 1, 2]
// CHECK: %[[ROT:.+]]:2 = linalg.generic
// CHECK-SAME: ins(%[[EVEN]], %[[ODD]],
// CHECK: %[[Y1:.+]] = tensor.insert_slice %[[ROT]]#0 into %[[X]][0, 0, 0, 0] [%{{.+}}, %{{.+}}, 2, 4] [1, 1, 1, 2]
// CHECK: %[[Y:.+]] = tensor.insert_slice %[[ROT]]#1 into %[[Y1]][0, 0, 0, 1] [%{{.+}}, %{{.+}}, 2, 4] [1, 1, 1, 2]
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @rotary_interleaved(%x: tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32> {
  %y = glint.rotary %x rotary_dim 8 base 500.0 interleaved : tensor<?x?x2x8xf32>
  return %y : tensor<?x?x2x8xf32>
}

// -----

// Tests that grouped attention splits the query heads as [G, H/G] and runs
// scores, masked max, masked exp, sum, weighted values and normalisation as
// generics; with a window w (and no cache) over the band of
// n = max(min(w, L), 1) keys up to each query: the keys and values get
// n - 1 zero rows in front, loop j reads their row i + j, visible when
// i + j >= n - 1 (not before the sequence; causal and within the window by
// construction).
// CHECK-DAG: #[[$Q:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d5)>
// CHECK-DAG: #[[$K:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 + d4, d2, d5)>
// CHECK-DAG: #[[$S:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$ID5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$ROW5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func @attention_grouped_window
// CHECK-SAME: (%[[Q:.+]]: tensor<?x?x4x8xf32>, %[[K:.+]]: tensor<?x?x2x8xf32>, %[[V:.+]]: tensor<?x?x2x6xf32>)
// CHECK-DAG: %[[WINDOW:.+]] = arith.constant 3 : index
// CHECK-DAG: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 3.000000e-01 : f32
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[B:.+]] = tensor.dim %[[Q]], %{{.+}}
// CHECK-DAG: %[[L:.+]] = tensor.dim %[[Q]], %{{.+}}
// CHECK: %[[QG:.+]] = tensor.expand_shape %[[Q]] {{\[\[}}0], [1], [2, 3], [4]] output_shape [%[[B]], %[[L]], 2, 2, 8] : tensor<?x?x4x8xf32> into tensor<?x?x2x2x8xf32>
// CHECK: %[[MIN:.+]] = arith.minsi %[[L]], %[[WINDOW]] : index
// CHECK: %[[BAND:.+]] = arith.maxsi %[[MIN]], %{{.+}} : index
// CHECK: %[[FIRST:.+]] = arith.subi %[[BAND]], %{{.+}} : index
// CHECK: %[[KZ:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%{{.+}} : tensor<?x?x2x8xf32>)
// CHECK: %[[KP:.+]] = tensor.concat dim(1) %[[KZ]], %[[K]]
// CHECK: %[[VZ:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%{{.+}} : tensor<?x?x2x6xf32>)
// CHECK: %[[VP:.+]] = tensor.concat dim(1) %[[VZ]], %[[V]]
// CHECK: %[[SE:.+]] = tensor.empty(%[[B]], %[[L]], %[[BAND]]) : tensor<?x?x2x2x?xf32>
// CHECK: %[[SZ:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[SE]] : tensor<?x?x2x2x?xf32>)
// CHECK: %[[SCORES:.+]] = linalg.generic {indexing_maps = [#[[$Q]], #[[$K]], #[[$S]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[QG]], %[[KP]] : tensor<?x?x2x2x8xf32>, tensor<?x?x2x8xf32>) outs(%[[SZ]] : tensor<?x?x2x2x?xf32>)
// CHECK: %[[MINIT:.+]] = linalg.fill ins(%[[NEGINF]] : f32)
// CHECK: %[[MAX:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$ROW5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[SCORES]] : tensor<?x?x2x2x?xf32>) outs(%[[MINIT]] : tensor<?x?x2x2xf32>)
// CHECK-NEXT: ^bb0(%[[SIN:.+]]: f32, %[[MACC:.+]]: f32):
// CHECK-NEXT: %[[SS:.+]] = arith.mulf %[[SCALE]], %[[SIN]]
// CHECK-NEXT: %[[ABOVE:.+]] = arith.cmpf ogt, %[[SS]], %[[MACC]] : f32
// CHECK-NEXT: %[[I:.+]] = linalg.index 1 : index
// CHECK-NEXT: %[[J:.+]] = linalg.index 4 : index
// CHECK-NEXT: %[[ROW:.+]] = arith.addi %[[I]], %[[J]] : index
// CHECK-NEXT: %[[VIS:.+]] = arith.cmpi uge, %[[ROW]], %[[FIRST]] : index
// CHECK-NEXT: %[[TAKE:.+]] = arith.andi %[[VIS]], %[[ABOVE]] : i1
// CHECK-NEXT: %[[MSEL:.+]] = arith.select %[[TAKE]], %[[SS]], %[[MACC]] : f32
// CHECK-NEXT: linalg.yield %[[MSEL]]
// CHECK: %[[EXP:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$ROW5]], #[[$ID5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[SCORES]], %[[MAX]] :
// CHECK-NEXT: ^bb0(%[[S2:.+]]: f32, %[[M2:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[SS2:.+]] = arith.mulf %[[SCALE]], %[[S2]]
// CHECK-NEXT: %[[D:.+]] = arith.subf %[[SS2]], %[[M2]]
// CHECK-NEXT: %[[E:.+]] = math.exp %[[D]]
// CHECK: %[[ESEL:.+]] = arith.select %{{.+}}, %[[E]], %[[ZERO]] : f32
// CHECK-NEXT: linalg.yield %[[ESEL]]
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$ROW5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[EXP]] : tensor<?x?x2x2x?xf32>)
// CHECK: %[[OE:.+]] = tensor.empty(%[[B]], %[[L]]) : tensor<?x?x2x2x6xf32>
// CHECK: %[[OZ:.+]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[OE]] :
// The weighted values run over (b, i, g, r, j, e), the value axis innermost:
// the weights read as the scores were written, v's row i + j of the band as
// k's, the output at (b, i, g, r, e).
// CHECK: %[[WEIGHTED:.+]] = linalg.generic {indexing_maps = [#[[$S]], #[[$K]], #[[$Q]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[EXP]], %[[VP]] : tensor<?x?x2x2x?xf32>, tensor<?x?x2x6xf32>) outs(%[[OZ]] : tensor<?x?x2x2x6xf32>)
// CHECK: %[[NORM:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$ROW5]], #[[$ID5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[WEIGHTED]], %[[SUM]] :
// CHECK-NEXT: ^bb0(%[[NUM:.+]]: f32, %[[DEN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT: %[[O:.+]] = arith.divf %[[NUM]], %[[DEN]]
// CHECK-NEXT: linalg.yield %[[O]]
// CHECK: %[[Y:.+]] = tensor.collapse_shape %[[NORM]] {{\[\[}}0], [1], [2, 3], [4]] : tensor<?x?x2x2x6xf32> into tensor<?x?x4x6xf32>
// CHECK-NOT: glint.
// CHECK: return %[[Y]]
func.func @attention_grouped_window(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x2x8xf32>,
    %v: tensor<?x?x2x6xf32>) -> tensor<?x?x4x6xf32> {
  %o = glint.attention %q, %k, %v scale 0.3 window 3 : (tensor<?x?x4x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x6xf32>) -> tensor<?x?x4x6xf32>
  return %o : tensor<?x?x4x6xf32>
}

// -----

// Tests that without a window the mask is only causal (the maximum's
// select also needs the score above it; the weights' the mask alone), and
// that multi-query attention (one key/value head) splits the query heads as
// [1, H].
// CHECK-LABEL: func @attention_multi_query
// CHECK: tensor.expand_shape %{{.+}} {{\[\[}}0], [1], [2, 3], [4]] output_shape [%{{.+}}, %{{.+}}, 1, 4, 8]
// CHECK: %[[ABOVE:.+]] = arith.cmpf ogt
// CHECK-NEXT: %[[I:.+]] = linalg.index 1 : index
// CHECK-NEXT: %[[J:.+]] = linalg.index 4 : index
// CHECK-NEXT: %[[CAUSAL:.+]] = arith.cmpi ule, %[[J]], %[[I]] : index
// CHECK-NEXT: %[[TAKE:.+]] = arith.andi %[[CAUSAL]], %[[ABOVE]] : i1
// CHECK-NEXT: arith.select %[[TAKE]]
// CHECK: %[[I2:.+]] = linalg.index 1 : index
// CHECK-NEXT: %[[J2:.+]] = linalg.index 4 : index
// CHECK-NEXT: %[[CAUSAL2:.+]] = arith.cmpi ule, %[[J2]], %[[I2]] : index
// CHECK-NEXT: arith.select %[[CAUSAL2]]
// CHECK-NOT: arith.andi
// CHECK-NOT: glint.
// CHECK: tensor.collapse_shape %{{.+}} {{\[\[}}0], [1], [2, 3], [4]] : tensor<?x?x1x4x6xf32> into tensor<?x?x4x6xf32>
func.func @attention_multi_query(%q: tensor<?x?x4x8xf32>, %k: tensor<?x?x1x8xf32>,
    %v: tensor<?x?x1x6xf32>) -> tensor<?x?x4x6xf32> {
  %o = glint.attention %q, %k, %v scale 0.3 : (tensor<?x?x4x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x6xf32>) -> tensor<?x?x4x6xf32>
  return %o : tensor<?x?x4x6xf32>
}

// -----

// Tests that glint.recurrence and glint.mixer are left for their own passes
// while the ops around and inside them are lowered.
// CHECK-LABEL: func @recurrence_and_mixer_stay
// CHECK: glint.mixer
// CHECK-NOT: glint.act
// CHECK: linalg.generic
// CHECK: glint.recurrence
// CHECK: glint.yield
// CHECK: return
func.func @recurrence_and_mixer_stay(%x: tensor<?x?x4xf32>, %k: tensor<?x?x4x1xf32>,
    %g: tensor<4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.mixer (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%xv: tensor<?x?x4xf32>):
    %a = glint.act silu %xv : tensor<?x?x4xf32>
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %xv, %c0 : tensor<?x?x4xf32>
    %l = tensor.dim %xv, %c1 : tensor<?x?x4xf32>
    %v = tensor.expand_shape %a [[0], [1], [2, 3]] output_shape [%b, %l, 4, 1] : tensor<?x?x4xf32> into tensor<?x?x4x1xf32>
    %s = glint.recurrence k(%k) v(%v) log_decay(%g) : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>) -> tensor<?x?x4x1xf32>
    %o = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x4x1xf32> into tensor<?x?x4xf32>
    glint.yield %o : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// Tests that attention with a cache attends over the cache and the new keys
// concatenated, places query i at key position C + i, hides the cache rows
// before max(C - position, 0), and returns the last C rows as the caches.
// CHECK-LABEL: func @attention_cache
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<?x?x2x8xf32>, %[[K:[^:]+]]: tensor<?x?x1x8xf32>, %[[V:[^:]+]]: tensor<?x?x1x6xf32>, %[[KC:[^:]+]]: tensor<?x3x1x8xf32>, %[[VC:[^:]+]]: tensor<?x3x1x6xf32>, %[[P:[^:]+]]: index)
// CHECK-DAG: %[[KS:.+]] = tensor.concat dim(1) %[[KC]], %[[K]] : (tensor<?x3x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x1x8xf32>
// CHECK-DAG: %[[VS:.+]] = tensor.concat dim(1) %[[VC]], %[[V]] : (tensor<?x3x1x6xf32>, tensor<?x?x1x6xf32>) -> tensor<?x?x1x6xf32>
// CHECK-DAG: %[[C3:.+]] = arith.constant 3 : index
// CHECK: tensor.dim %[[Q]], %{{.+}}
// CHECK-NEXT: %[[L:.+]] = tensor.dim %[[Q]], %{{.+}}
// CHECK: %[[BEFORE:.+]] = arith.subi %[[C3]], %[[P]] : index
// CHECK: %[[FIRST:.+]] = arith.maxsi %[[BEFORE]], %{{.+}} : index
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %[[KS]] :
// CHECK: %[[I:.+]] = linalg.index 1 : index
// CHECK-NEXT: %[[J:.+]] = linalg.index 4 : index
// CHECK-NEXT: %[[AT:.+]] = arith.addi %[[I]], %[[C3]] : index
// CHECK-NEXT: %[[CAUSAL:.+]] = arith.cmpi ule, %[[J]], %[[AT]] : index
// CHECK-NEXT: %[[INSIDE:.+]] = arith.cmpi uge, %[[J]], %[[FIRST]] : index
// CHECK-NEXT: %[[BOTH:.+]] = arith.andi %[[CAUSAL]], %[[INSIDE]] : i1
// CHECK: arith.cmpi ult, %[[AT]],
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %[[VS]] :
// CHECK: %[[KF:.+]] = tensor.extract_slice %[[KS]][0, %[[L]], 0, 0] [%{{.+}}, 3, 1, 8] [1, 1, 1, 1] : tensor<?x?x1x8xf32> to tensor<?x3x1x8xf32>
// CHECK: %[[VF:.+]] = tensor.extract_slice %[[VS]][0, %[[L]], 0, 0] [%{{.+}}, 3, 1, 6] [1, 1, 1, 1] : tensor<?x?x1x6xf32> to tensor<?x3x1x6xf32>
// CHECK-NOT: glint.
// CHECK: return %{{.+}}, %[[KF]], %[[VF]]
func.func @attention_cache(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x1x8xf32>,
    %v: tensor<?x?x1x6xf32>, %kc: tensor<?x3x1x8xf32>, %vc: tensor<?x3x1x6xf32>,
    %p: index) -> (tensor<?x?x2x6xf32>, tensor<?x3x1x8xf32>, tensor<?x3x1x6xf32>) {
  %o, %kf, %vf = glint.attention %q, %k, %v scale 0.3 window 4 cache(%kc, %vc) position(%p)
      : (tensor<?x?x2x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x6xf32>,
         tensor<?x3x1x8xf32>, tensor<?x3x1x6xf32>, index)
      -> (tensor<?x?x2x6xf32>, tensor<?x3x1x8xf32>, tensor<?x3x1x6xf32>)
  return %o, %kf, %vf : tensor<?x?x2x6xf32>, tensor<?x3x1x8xf32>, tensor<?x3x1x6xf32>
}
