// RUN: glint-opt %s -convert-glint-map-to-loops -split-input-file -verify-diagnostics

// Tests that softmax attention in the attention form is diagnosed, naming
// the op, instead of being lowered wrongly.
func.func @attention(%v: tensor<?x?x2x4xf32>, %q: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>) -> tensor<?x?x?xf32> {
  %m0 = glint.map_identity %v : tensor<?x?x2x4xf32> -> !glint.map<tensor<?x?x2x4xf32>>
  // expected-error @+1 {{'glint.map_attention' op (softmax attention in the attention form) is not lowered by convert-glint-map-to-loops yet}}
  %m1 = glint.map_attention %m0, %q, %k scale 5.000000e-01 : (!glint.map<tensor<?x?x2x4xf32>>, tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>) -> !glint.map<tensor<?x?x2x4xf32>>
  %r = glint.map_reduce mean %m1 : !glint.map<tensor<?x?x2x4xf32>> -> tensor<?x?x?xf32>
  return %r : tensor<?x?x?xf32>
}

// -----

// Tests that the normalised (RWKV-4) recurrence is diagnosed, naming the op.
func.func @normalized(%v: tensor<?x?x4x1xf32>, %k: tensor<?x?x4x1xf32>, %w: tensor<4xf32>, %u: tensor<4x1xf32>) -> tensor<?x?x?xf32> {
  %m0 = glint.map_identity %v : tensor<?x?x4x1xf32> -> !glint.map<tensor<?x?x4x1xf32>>
  // expected-error @+1 {{'glint.map_scan' op with `normalize` (RWKV-4) is not lowered by convert-glint-map-to-loops yet}}
  %m1 = glint.map_scan normalize %m0 k(%k) log_decay(%w) bonus(%u) : (!glint.map<tensor<?x?x4x1xf32>>, tensor<?x?x4x1xf32>, tensor<4xf32>, tensor<4x1xf32>) -> !glint.map<tensor<?x?x4x1xf32>>
  %r = glint.map_reduce mean %m1 : !glint.map<tensor<?x?x4x1xf32>> -> tensor<?x?x?xf32>
  return %r : tensor<?x?x?xf32>
}
