// RUN: glint-opt %s -glint-expose-state -split-input-file -verify-diagnostics

// Tests that a backward scan (one branch of a bidirectional layer) is
// rejected: it reads tokens that have not been generated yet.
func.func @forward(%k: tensor<?x?x1x2xf32>, %v: tensor<?x?x4x1xf32>) -> tensor<?x?x4x1xf32> {
  %g = arith.constant dense<-0.5> : tensor<4x2xf32>
  // expected-error @+1 {{'glint.recurrence' op runs backwards (reverse): an anti-causal layer reads tokens that come later, so the model cannot run step by step}}
  %y = glint.recurrence reverse q(%k) k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x1x2xf32>, tensor<?x?x1x2xf32>, tensor<?x?x4x1xf32>, tensor<4x2xf32>)
      -> tensor<?x?x4x1xf32>
  return %y : tensor<?x?x4x1xf32>
}

// -----

// Tests that an anti-causal convolution is rejected.
func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %w = arith.constant dense<0.5> : tensor<8x4xf32>
  // expected-error @+1 {{'glint.conv1d' op runs backwards (reverse)}}
  %y = glint.conv1d reverse %x, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x8xf32>
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that attention over the whole sequence is rejected: its cache would
// grow with every token.
func.func @forward(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x1x8xf32>) -> tensor<?x?x2x8xf32> {
  // expected-error @+1 {{'glint.attention' op attends to the whole sequence (no window): its key/value cache would grow with the sequence, so the model cannot run step by step in constant memory}}
  %o = glint.attention %q, %k, %k scale 0.5
      : (tensor<?x?x2x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x2x8xf32>
  return %o : tensor<?x?x2x8xf32>
}

// -----

// Tests that an op that already carries a state is rejected.
func.func @forward(%x: tensor<?x?x4xf32>, %s: tensor<?x4xf32>) -> tensor<?x?x4xf32> {
  // expected-error @+1 {{'glint.token_shift' op already carries a state; glint-expose-state expects the model function without states}}
  %y = glint.token_shift %x initial_state(%s) : (tensor<?x?x4xf32>, tensor<?x4xf32>) -> tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}

// -----

// Tests that a rotary embedding with its own offset is rejected.
func.func @forward(%x: tensor<?x?x2x8xf32>, %p: index) -> tensor<?x?x2x8xf32> {
  // expected-error @+1 {{'glint.rotary' op already has a position offset}}
  %y = glint.rotary %x offset(%p) rotary_dim 4 base 10000.0 : tensor<?x?x2x8xf32>
  return %y : tensor<?x?x2x8xf32>
}

// -----

// Tests that a state needs static sizes besides the batch.
func.func @forward(%x: tensor<?x?x?xf32>) -> tensor<?x?x?xf32> {
  // expected-error @+1 {{'glint.token_shift' op has a dynamic size other than the batch, which its state needs static}}
  %y = glint.token_shift %x : (tensor<?x?x?xf32>) -> tensor<?x?x?xf32>
  return %y : tensor<?x?x?xf32>
}

// -----

// Tests that a stateful op inside another region is rejected.
func.func @forward(%x: tensor<?x?x4xf32>, %c: i1) -> tensor<?x?x4xf32> {
  %y = scf.if %c -> tensor<?x?x4xf32> {
    // expected-error @+1 {{'glint.token_shift' op is nested in 'scf.if': only ops at the top level of the function or of a glint.mixer can carry a state between calls}}
    %s = glint.token_shift %x : (tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
    scf.yield %s : tensor<?x?x4xf32>
  } else {
    scf.yield %x : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// Tests that the model function must exist.
// expected-error @+1 {{glint-expose-state: no function @forward}}
module {
  func.func @main(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
    return %x : tensor<?x?x4xf32>
  }
}

// -----

// Tests that an existing symbol is not overwritten by the step function.
// expected-error @+1 {{cannot add the step function: the module already has a symbol @forward_step}}
func.func @forward(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  return %x : tensor<?x?x4xf32>
}
func.func @forward_step(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  return %x : tensor<?x?x4xf32>
}
