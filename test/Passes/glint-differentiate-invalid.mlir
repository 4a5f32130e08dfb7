// RUN: glint-opt %s -glint-differentiate -split-input-file -verify-diagnostics

// Tests that an op on the path from the input to the output without a
// backward rule is named.
module {
  func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{'math.tanh' op depends on the differentiated input but has no backward rule}}
    %y = math.tanh %x : tensor<4xf32>
    return %y : tensor<4xf32>
  }
}

// -----

// Tests that a weight that depends on the input (a hypernetwork) is
// refused: no gradient with respect to weights is built.
module {
  func.func @forward(%x: tensor<?x?x4xf32>, %w: tensor<4x4xf32>) -> tensor<?x?x4xf32> {
    // expected-error @+1 {{'glint.linear' op 'weight' depends on the differentiated input}}
    %y = glint.linear %x, %w : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    return %y : tensor<?x?x4xf32>
  }
}

// -----

// Tests that a recurrence continuing a carried state is refused: the
// gradient is that of a whole-sequence forward.
module {
  func.func @forward(%k: tensor<?x?x1x2xf32>, %v: tensor<?x?x4x1xf32>, %s: tensor<?x4x2x1xf32>) -> tensor<?x?x4x1xf32> {
    %g = arith.constant dense<-0.5> : tensor<4x2xf32>
    // expected-error @+1 {{'glint.recurrence' op continues a carried state}}
    %y, %f = glint.recurrence q(%k) k(%k) v(%v) log_decay(%g) initial_state(%s)
        : (tensor<?x?x1x2xf32>, tensor<?x?x1x2xf32>, tensor<?x?x4x1xf32>, tensor<4x2xf32>, tensor<?x4x2x1xf32>)
        -> (tensor<?x?x4x1xf32>, tensor<?x4x2x1xf32>)
    return %y : tensor<?x?x4x1xf32>
  }
}

// -----

// Tests that a function whose result does not depend on its input is
// refused rather than given an all-zero gradient.
module {
  // expected-error @+1 {{'func.func' op its result does not depend on its input}}
  func.func @forward(%x: tensor<4xf32>) -> tensor<4xf32> {
    %c = arith.constant dense<1.0> : tensor<4xf32>
    func.return %c : tensor<4xf32>
  }
}
