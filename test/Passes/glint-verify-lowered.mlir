// RUN: glint-opt %s -glint-verify-lowered -split-input-file -verify-diagnostics

// Tests that a glint op left after lowering is reported at its location.
func.func @left_over(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'glint.act' was not lowered: no pattern of the pipeline handles this form of the op}}
  %y = glint.act silu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that lowered IR passes.
func.func @lowered(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = math.exp %x : tensor<4xf32>
  return %y : tensor<4xf32>
}
