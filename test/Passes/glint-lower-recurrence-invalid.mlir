// RUN: glint-opt %s -glint-lower-recurrence -split-input-file -verify-diagnostics

// Tests that a dynamic key size is rejected: the per-head state is a tile
// whose shape must be known when the loops are built.
func.func @dynamic_key(%k: tensor<?x?x1x?xf32>, %v: tensor<?x?x4x2xf32>,
    %g: tensor<4xf32>) -> tensor<?x?x4x2xf32> {
  // expected-error @+1 {{cannot lower 'glint.recurrence' with a dynamic key size: the per-head state must be a static K x V tile}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x1x?xf32>, tensor<?x?x4x2xf32>, tensor<4xf32>)
      -> tensor<?x?x4x2xf32>
  return %y : tensor<?x?x4x2xf32>
}

// -----

// Tests that a dynamic value size is rejected for the same reason.
func.func @dynamic_value(%k: tensor<?x?x1x4xf32>, %v: tensor<?x?x4x?xf32>,
    %g: tensor<4xf32>) -> tensor<?x?x4x?xf32> {
  // expected-error @+1 {{cannot lower 'glint.recurrence' with a dynamic value size: the per-head state must be a static K x V tile}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x1x4xf32>, tensor<?x?x4x?xf32>, tensor<4xf32>)
      -> tensor<?x?x4x?xf32>
  return %y : tensor<?x?x4x?xf32>
}
