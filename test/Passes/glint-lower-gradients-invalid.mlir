// RUN: glint-opt %s -glint-lower-gradients -split-input-file -verify-diagnostics

// Tests that a dynamic value size is rejected: the state cotangent is a
// static K x V tile.
func.func @dynamic_value(%k: tensor<?x?x1x4xf32>, %v: tensor<?x?x4x?xf32>,
    %g: tensor<4xf32>, %dy: tensor<?x?x4x?xf32>) -> tensor<?x?x4x?xf32> {
  // expected-error @+1 {{cannot lower 'glint.recurrence_grad' with a dynamic value size}}
  %r:5 = glint.recurrence_grad k(%k) v(%v) log_decay(%g) grad(%dy)
      : (tensor<?x?x1x4xf32>, tensor<?x?x4x?xf32>, tensor<4xf32>,
         tensor<?x?x4x?xf32>)
      -> (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x4x?xf32>,
          tensor<4xf32>, tensor<?x?x4xf32>)
  return %r#2 : tensor<?x?x4x?xf32>
}
