// RUN: glint-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// Tests that a mixer's value input must be [batch, seq, channels].
func.func @f0(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{expects 'input' of rank 3 [batch, seq, channels], got 'tensor<?x8xf32>'}}
  %y = glint.mixer (%x) : tensor<?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x8xf32>):
    %e = tensor.empty() : tensor<2x3x8xf32>
    %c = tensor.cast %e : tensor<2x3x8xf32> to tensor<?x?x8xf32>
    glint.yield %c : tensor<?x?x8xf32>
  }
  return
}

// -----

// Tests that a mixer's result must be [batch, seq, channels].
func.func @f1(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects 'result' of rank 3 [batch, seq, channels]}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    %e = tensor.empty() : tensor<3x8xf32>
    %c = tensor.cast %e : tensor<3x8xf32> to tensor<?x8xf32>
    glint.yield %c : tensor<?x8xf32>
  }
  return
}

// -----

// Tests that a mixer keeps the batch size.
func.func @f2(%x: tensor<2x?x8xf32>) {
  // expected-error @+1 {{'result' dim 0 (batch) is 3, expected 2}}
  %y = glint.mixer (%x) : tensor<2x?x8xf32> -> tensor<3x?x8xf32> {
  ^bb0(%v: tensor<2x?x8xf32>):
    %c = tensor.cast %v : tensor<2x?x8xf32> to tensor<3x?x8xf32>
    glint.yield %c : tensor<3x?x8xf32>
  }
  return
}

// -----

// Tests that a mixer keeps the sequence length.
func.func @f3(%x: tensor<2x5x8xf32>) {
  // expected-error @+1 {{'result' dim 1 (seq) is 6, expected 5}}
  %y = glint.mixer (%x) : tensor<2x5x8xf32> -> tensor<2x6x8xf32> {
  ^bb0(%v: tensor<2x5x8xf32>):
    %e = tensor.empty() : tensor<2x6x8xf32>
    glint.yield %e : tensor<2x6x8xf32>
  }
  return
}

// -----

// Tests that a mixer keeps the element type.
func.func @f4(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{result #0 has element type 'f16', expected 'f32' like the other float tensors of the op}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf16> {
  ^bb0(%v: tensor<?x?x8xf32>):
    %e = tensor.empty() : tensor<2x6x8xf16>
    %c = tensor.cast %e : tensor<2x6x8xf16> to tensor<?x?x8xf16>
    glint.yield %c : tensor<?x?x8xf16>
  }
  return
}

// -----

// Tests that a mixer body takes exactly one argument.
func.func @f5(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects the body to take exactly one argument (the value input), got 2}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>, %w: tensor<?x?x8xf32>):
    glint.yield %v : tensor<?x?x8xf32>
  }
  return
}

// -----

// Tests that the body argument has the value input's type.
func.func @f6(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{body argument type 'tensor<?x?x4xf32>' does not match the value input type 'tensor<?x?x8xf32>'}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    %e = tensor.empty() : tensor<2x6x8xf32>
    %c = tensor.cast %e : tensor<2x6x8xf32> to tensor<?x?x8xf32>
    glint.yield %c : tensor<?x?x8xf32>
  }
  return
}

// -----

// Tests that the yielded value has the result type.
func.func @f7(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{body yields 'tensor<?x?x8xf32>' but the result type is 'tensor<?x?x4xf32>'}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    glint.yield %v : tensor<?x?x8xf32>
  }
  return
}

// -----

// Tests that a mixer body ends with glint.yield.
func.func @f8(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects the body to end with 'glint.yield'}}
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    "test.terminator"(%v) : (tensor<?x?x8xf32>) -> ()
  }
  return
}

// -----

// Tests that glint.yield lives only in a mixer.
func.func @f9(%x: tensor<?x?x8xf32>) {
  "test.region"() ({
    // expected-error @+1 {{expects parent op 'glint.mixer'}}
    glint.yield %x : tensor<?x?x8xf32>
  }) : () -> ()
  return
}

// -----

// Tests that keys are rank 4.
func.func @f10(%k: tensor<2x5x16xf32>, %v: tensor<2x5x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{expects 'k' of rank 4 [batch, seq, key groups, key], got 'tensor<2x5x16xf32>'}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<2x5x16xf32>, tensor<2x5x4x1xf32>, tensor<4xf32>) -> tensor<2x5x4x1xf32>
  return
}

// -----

// Tests that values are rank 4.
func.func @f11(%k: tensor<2x5x1x16xf32>, %v: tensor<2x5x4xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{expects 'v' of rank 4 [batch, seq, heads, value]}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<2x5x1x16xf32>, tensor<2x5x4xf32>, tensor<4xf32>) -> tensor<2x5x4x1xf32>
  return
}

// -----

// Tests that keys and values agree on the batch.
func.func @f12(%k: tensor<3x5x1x16xf32>, %v: tensor<2x5x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{'k' dim 0 (batch) is 3, expected 2}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<3x5x1x16xf32>, tensor<2x5x4x1xf32>, tensor<4xf32>) -> tensor<2x5x4x1xf32>
  return
}

// -----

// Tests that keys and values agree on the sequence length.
func.func @f13(%k: tensor<2x6x1x16xf32>, %v: tensor<2x5x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{'k' dim 1 (seq) is 6, expected 5}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<2x6x1x16xf32>, tensor<2x5x4x1xf32>, tensor<4xf32>) -> tensor<2x5x4x1xf32>
  return
}

// -----

// Tests that queries have the keys' shape.
func.func @f14(%q: tensor<?x?x1x8xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{'q' dim 3 (key) is 8, expected 16}}
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x8xf32>, tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that value heads are a multiple of the key groups.
func.func @f15(%k: tensor<?x?x4x16xf32>, %v: tensor<?x?x6x1xf32>, %a: tensor<6xf32>) {
  // expected-error @+1 {{value heads (6) must be a multiple of the key groups (4)}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x4x16xf32>, tensor<?x?x6x1xf32>, tensor<6xf32>) -> tensor<?x?x6x1xf32>
  return
}

// -----

// Tests that the log-decay has one of the four layouts.
func.func @f16(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<1x1x1x4x16xf32>) {
  // expected-error @+1 {{expects 'log_decay' of rank 1 [heads], 2 [heads, key], 3 [batch, seq, heads] or 4 [batch, seq, heads, key], got 'tensor<1x1x1x4x16xf32>'}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<1x1x1x4x16xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that a per-key log-decay matches the key size.
func.func @f17(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<?x?x4x8xf32>) {
  // expected-error @+1 {{'log_decay' dim 3 (key) is 8, expected 16}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<?x?x4x8xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that a per-head log-decay matches the heads.
func.func @f18(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<?x?x3xf32>) {
  // expected-error @+1 {{'log_decay' dim 2 (heads) is 3, expected 4}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<?x?x3xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that a time-invariant per-key log-decay is [heads, key].
func.func @f19(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4x15xf32>) {
  // expected-error @+1 {{'log_decay' dim 1 (key) is 15, expected 16}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x15xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that a time-invariant per-head log-decay is [heads].
func.func @f20(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<5xf32>) {
  // expected-error @+1 {{'log_decay' dim 0 (heads) is 5, expected 4}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<5xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that delta is [batch, seq, heads].
func.func @f21(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4x16xf32>, %dt: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'delta' dim 2 (heads) is 8, expected 4}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) delta(%dt) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>, tensor<?x?x8xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that delta requires a time-invariant log-decay.
func.func @f22(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<?x?x4xf32>, %dt: tensor<?x?x4xf32>) {
  // expected-error @+1 {{with 'delta' the log-decay must be time-invariant ([heads] or [heads, key]), got 'tensor<?x?x4xf32>'}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) delta(%dt) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<?x?x4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the bonus is [heads, key].
func.func @f23(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>, %a: tensor<?x?x2x16xf32>, %u: tensor<2x8xf32>) {
  // expected-error @+1 {{'bonus' dim 1 (key) is 8, expected 16}}
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) bonus(%u) : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<2x8xf32>) -> tensor<?x?x2x16xf32>
  return
}

// -----

// Tests that the skip is [heads].
func.func @f24(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4x16xf32>, %d: tensor<3xf32>) {
  // expected-error @+1 {{'skip' dim 0 (heads) is 3, expected 4}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) skip(%d) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>, tensor<3xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the ratio form takes no query.
func.func @f25(%q: tensor<?x?x4x1xf32>, %k: tensor<?x?x4x1xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{'normalize' takes no 'q' (the ratio form reads the state with a query of one)}}
  %y = glint.recurrence normalize q(%q) k(%k) v(%v) log_decay(%a) : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the ratio form takes no delta.
func.func @f26(%k: tensor<?x?x4x1xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4xf32>, %dt: tensor<?x?x4xf32>) {
  // expected-error @+1 {{'normalize' takes no 'delta' (its keys are log-weights)}}
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%a) delta(%dt) : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>, tensor<?x?x4xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the ratio form has a key size of 1.
func.func @f27(%k: tensor<?x?x4x2xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{'normalize' requires a static key size of 1, got 2}}
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%a) : (tensor<?x?x4x2xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the initial state is [batch, heads, key, value].
func.func @f28(%k: tensor<2x?x1x16xf32>, %v: tensor<2x?x4x8xf32>, %a: tensor<4x16xf32>, %s: tensor<2x4x16x7xf32>) {
  // expected-error @+1 {{'initial_state' dim 3 (value) is 7, expected 8}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) initial_state(%s) : (tensor<2x?x1x16xf32>, tensor<2x?x4x8xf32>, tensor<4x16xf32>, tensor<2x4x16x7xf32>) -> tensor<2x?x4x8xf32>
  return
}

// -----

// Tests that the ratio form's state carries the denominator and maximum.
func.func @f29(%k: tensor<?x?x4x1xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4xf32>, %s: tensor<?x4x1x1xf32>) {
  // expected-error @+1 {{'initial_state' dim 3 (value + 2) is 1, expected 3}}
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%a) initial_state(%s) : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>, tensor<?x4x1x1xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the output is [batch, seq, heads, value].
func.func @f30(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4x16xf32>) {
  // expected-error @+1 {{'output' dim 2 (heads) is 2, expected 4}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>) -> tensor<?x?x2x1xf32>
  return
}

// -----

// Tests that the final state is [batch, heads, key, value].
func.func @f31(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>, %a: tensor<4x16xf32>) {
  // expected-error @+1 {{'final_state' dim 2 (key) is 8, expected 16}}
  %y:2 = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>) -> (tensor<?x?x4x1xf32>, tensor<?x4x8x1xf32>)
  return
}

// -----

// Tests that all tensors share one element type.
func.func @f32(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf16>, %a: tensor<4x16xf32>) {
  // expected-error @+1 {{operand #1 has element type 'f16', expected 'f32' like the other float tensors of the op}}
  %y = glint.recurrence k(%k) v(%v) log_decay(%a) : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf16>, tensor<4x16xf32>) -> tensor<?x?x4x1xf32>
  return
}

// -----

// Tests that the conv input is [batch, seq, channels].
func.func @f33(%x: tensor<?x8xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{expects 'input' of rank 3 [batch, seq, channels]}}
  %y = glint.conv1d %x, %w : (tensor<?x8xf32>, tensor<8x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the conv weight is [channels, width].
func.func @f34(%x: tensor<?x?x8xf32>, %w: tensor<8x1x4xf32>) {
  // expected-error @+1 {{expects 'weight' of rank 2 [channels, width], got 'tensor<8x1x4xf32>'}}
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x1x4xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv width is static.
func.func @f35(%x: tensor<?x?x8xf32>, %w: tensor<8x?xf32>) {
  // expected-error @+1 {{expects a static convolution width, got weight 'tensor<8x?xf32>'}}
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x?xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv width is at least 1.
func.func @f36(%x: tensor<?x?x8xf32>, %w: tensor<8x0xf32>) {
  // expected-error @+1 {{expects a convolution width of at least 1, got 0}}
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x0xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv weight has one row per channel.
func.func @f37(%x: tensor<?x?x8xf32>, %w: tensor<6x4xf32>) {
  // expected-error @+1 {{'weight' dim 0 (channels) is 6, expected 8}}
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<6x4xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv bias is per channel.
func.func @f38(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'bias' dim 0 (channels) is 4, expected 8}}
  %y = glint.conv1d %x, %w bias %b : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv state holds width - 1 positions.
func.func @f39(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>, %s: tensor<?x4x8xf32>) {
  // expected-error @+1 {{'initial_state' dim 1 (width - 1) is 4, expected 3}}
  %y = glint.conv1d %x, %w initial_state(%s) : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<?x4x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the conv output has the input's shape.
func.func @f40(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{'output' dim 2 (channels) is 4, expected 8}}
  %y = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x4xf32>
  return
}

// -----

// Tests that the conv final state holds width - 1 positions.
func.func @f41(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{'final_state' dim 1 (width - 1) is 2, expected 3}}
  %y:2 = glint.conv1d %x, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> (tensor<?x?x8xf32>, tensor<?x2x8xf32>)
  return
}

// -----

// Tests that the token shift input is [batch, seq, channels].
func.func @f42(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{expects 'input' of rank 3 [batch, seq, channels]}}
  %y = glint.token_shift %x : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the token shift state is [batch, channels].
func.func @f43(%x: tensor<?x?x8xf32>, %s: tensor<?x4xf32>) {
  // expected-error @+1 {{'initial_state' dim 1 (channels) is 4, expected 8}}
  %y = glint.token_shift %x initial_state(%s) : (tensor<?x?x8xf32>, tensor<?x4xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the token shift output has the input's shape.
func.func @f44(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects 'output' of rank 3 [batch, seq, channels]}}
  %y = glint.token_shift %x : (tensor<?x?x8xf32>) -> tensor<?x?x8x1xf32>
  return
}

// -----

// Tests that the token shift final state is [batch, channels].
func.func @f45(%x: tensor<2x?x8xf32>) {
  // expected-error @+1 {{'final_state' dim 0 (batch) is 3, expected 2}}
  %y:2 = glint.token_shift %x : (tensor<2x?x8xf32>) -> (tensor<2x?x8xf32>, tensor<3x8xf32>)
  return
}

// -----

// Tests that attention queries are rank 4.
func.func @f46(%q: tensor<?x?x64xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{expects 'q' of rank 4 [batch, seq, heads, head_dim]}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x64xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that attention keys are rank 4.
func.func @f47(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x16xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{expects 'k' of rank 4 [batch, seq, kv heads, head_dim]}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x4x16xf32>, tensor<?x?x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that attention values are rank 4.
func.func @f48(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x16xf32>) {
  // expected-error @+1 {{expects 'v' of rank 4 [batch, seq, kv heads, value_dim]}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that queries and keys share the head size.
func.func @f49(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x8xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{'k' dim 3 (head_dim) is 8, expected 16}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x4x16xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that keys and values share the kv heads.
func.func @f50(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'v' dim 2 (kv heads) is 2, expected 1}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that query heads are a multiple of the kv heads.
func.func @f51(%q: tensor<?x?x3x16xf32>, %k: tensor<?x?x2x16xf32>, %v: tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{query heads (3) must be a multiple of the key/value heads (2)}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x3x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) -> tensor<?x?x3x16xf32>
  return
}

// -----

// Tests that the attention scale is finite and non-zero.
func.func @f52(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{expects a finite non-zero scale, got 0}}
  %y = glint.attention %q, %k, %v scale 0.0 : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that the attention window is at least 1.
func.func @f53(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{expects a window of at least 1 position, got 0}}
  %y = glint.attention %q, %k, %v scale 0.25 window 0 : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that the attention output is [batch, seq, heads, value_dim].
func.func @f54(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x32xf32>) {
  // expected-error @+1 {{'output' dim 3 (value_dim) is 16, expected 32}}
  %y = glint.attention %q, %k, %v scale 0.25 : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x32xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that a key/value cache needs a window.
func.func @attention_cache_no_window(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{with a key/value cache needs a window (the cache holds the window - 1 previous positions)}}
  %y = glint.attention %q, %k, %v scale 0.25 cache(%kc, %kc) position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>, index) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that a key/value cache needs the position of the call.
func.func @attention_cache_no_position(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x3x1x16xf32>) {
  // expected-error @+1 {{with a key/value cache needs a position (the number of tokens before this call)}}
  %y = glint.attention %q, %k, %v scale 0.25 window 4 cache(%kc, %kc) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that a position without a cache is rejected.
func.func @attention_position_no_cache(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %p: index) {
  // expected-error @+1 {{has a position but no key/value cache}}
  %y = glint.attention %q, %k, %v scale 0.25 window 4 position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, index) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that the key cache holds window - 1 rows.
func.func @attention_cache_rows(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x4x1x16xf32>, %vc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{'key_cache' dim 1 (window - 1) is 4, expected 3}}
  %y = glint.attention %q, %k, %v scale 0.25 window 4 cache(%kc, %vc) position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x4x1x16xf32>, tensor<?x3x1x16xf32>, index) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that the value cache has the value size.
func.func @attention_value_cache_size(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x8xf32>, %kc: tensor<?x3x1x16xf32>, %vc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{'value_cache' dim 3 (value_dim) is 16, expected 8}}
  %y = glint.attention %q, %k, %v scale 0.25 window 4 cache(%kc, %vc) position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>, index) -> tensor<?x?x4x8xf32>
  return
}

// -----

// Tests that the final key cache has the shape of the cache.
func.func @attention_final_cache_shape(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{'final_key_cache' dim 1 (window - 1) is 2, expected 3}}
  %y, %fk, %fv = glint.attention %q, %k, %v scale 0.25 window 4 cache(%kc, %kc) position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>, index) -> (tensor<?x?x4x16xf32>, tensor<?x2x1x16xf32>, tensor<?x3x1x16xf32>)
  return
}

// -----

// Tests that final caches need a cache to continue.
func.func @attention_final_cache_without_cache(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>) {
  // expected-error @+1 {{returns final caches but has no key/value cache}}
  %y, %fk, %fv = "glint.attention"(%q, %k, %v) <{scale = 2.500000e-01 : f64, window = 4 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}> : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> (tensor<?x?x4x16xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>)
  return
}

// -----

// Tests that the final caches come as a key and value pair.
func.func @attention_one_final_cache(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{expects the final key and value caches as results, or neither; got 1 final caches}}
  %y, %fk = glint.attention %q, %k, %v scale 0.25 window 4 cache(%kc, %kc) position(%p) : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x16xf32>, index) -> (tensor<?x?x4x16xf32>, tensor<?x3x1x16xf32>)
  return
}

// -----

// Tests that the key and value caches come together.
func.func @attention_key_cache_only(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x1x16xf32>, %v: tensor<?x?x1x16xf32>, %kc: tensor<?x3x1x16xf32>, %p: index) {
  // expected-error @+1 {{expects both a key and a value cache, or neither}}
  %y = "glint.attention"(%q, %k, %v, %kc, %p) <{scale = 2.500000e-01 : f64, window = 4 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 1>}> : (tensor<?x?x4x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x3x1x16xf32>, index) -> tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that rotary input is [batch, seq, heads, head_dim].
func.func @f55(%x: tensor<?x?x64xf32>) {
  // expected-error @+1 {{expects 'input' of rank 4 [batch, seq, heads, head_dim]}}
  %y = glint.rotary %x rotary_dim 8 base 10000.0 : tensor<?x?x64xf32>
  return
}

// -----

// Tests that rotary_dim is even.
func.func @f56(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{expects an even rotary_dim of at least 2, got 7}}
  %y = glint.rotary %x rotary_dim 7 base 10000.0 : tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that rotary_dim fits in a head.
func.func @f57(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{rotary_dim (32) exceeds the head size (16)}}
  %y = glint.rotary %x rotary_dim 32 base 10000.0 : tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that the rotary base exceeds 1.
func.func @f58(%x: tensor<?x?x4x16xf32>) {
  // expected-error @+1 {{expects a finite base greater than 1, got 1}}
  %y = glint.rotary %x rotary_dim 8 base 1.0 : tensor<?x?x4x16xf32>
  return
}

// -----

// Tests that a linear input has at least one axis.
func.func @f59(%x: tensor<f32>, %w: tensor<4x1xf32>) {
  // expected-error @+1 {{expects an input of rank at least 1, got 'tensor<f32>'}}
  %y = glint.linear %x, %w : (tensor<f32>, tensor<4x1xf32>) -> tensor<4xf32>
  return
}

// -----

// Tests that a linear weight is rank 2 or 3.
func.func @f60(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{expects a weight of rank 2 ([out, in] or [in, out]) or 3 (block-diagonal [blocks, out, in] or [blocks, in, out]), got 'tensor<8xf32>'}}
  %y = glint.linear %x, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the linear weight matches the input features.
func.func @f61(%x: tensor<?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{input features (8) do not match the weight's input size (16) for weight 'tensor<16x8xf32>' in layout in_out}}
  %y = glint.linear %x, %w layout in_out : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that the linear bias has the output size.
func.func @f62(%x: tensor<?x8xf32>, %w: tensor<16x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'bias' dim 0 (out) is 8, expected 16}}
  %y = glint.linear %x, %w bias %b : (tensor<?x8xf32>, tensor<16x8xf32>, tensor<8xf32>) -> tensor<?x16xf32>
  return
}

// -----

// Tests that a linear keeps the rank.
func.func @f63(%x: tensor<?x?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{expects an output of the input's rank 3, got 'tensor<?x16xf32>'}}
  %y = glint.linear %x, %w : (tensor<?x?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return
}

// -----

// Tests that a linear keeps the leading axes.
func.func @f64(%x: tensor<2x?x8xf32>, %w: tensor<16x8xf32>) {
  // expected-error @+1 {{'output' dim 0 (leading) is 3, expected 2}}
  %y = glint.linear %x, %w : (tensor<2x?x8xf32>, tensor<16x8xf32>) -> tensor<3x?x16xf32>
  return
}

// -----

// Tests that a linear output has the weight's output size.
func.func @f65(%x: tensor<?x8xf32>, %w: tensor<2x3x4xf32>) {
  // expected-error @+1 {{'output' dim 1 (out features) is 8, expected 6}}
  %y = glint.linear %x, %w : (tensor<?x8xf32>, tensor<2x3x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that token ids are [batch, seq].
func.func @f66(%ids: tensor<?xi64>, %t: tensor<64x8xf32>) {
  // expected-error @+1 {{expects 'ids' of rank 2 [batch, seq]}}
  %y = glint.embedding %ids, %t : (tensor<?xi64>, tensor<64x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that token ids are integers.
func.func @f67(%ids: tensor<?x?xf32>, %t: tensor<64x8xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of signless integer or index values}}
  %y = glint.embedding %ids, %t : (tensor<?x?xf32>, tensor<64x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the embedding table is [vocab, hidden].
func.func @f68(%ids: tensor<?x?xi64>, %t: tensor<64x8x1xf32>) {
  // expected-error @+1 {{expects 'table' of rank 2 [vocab, hidden]}}
  %y = glint.embedding %ids, %t : (tensor<?x?xi64>, tensor<64x8x1xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the embedding output is [batch, seq, hidden].
func.func @f69(%ids: tensor<?x?xi64>, %t: tensor<64x8xf32>) {
  // expected-error @+1 {{'output' dim 2 (hidden) is 16, expected 8}}
  %y = glint.embedding %ids, %t : (tensor<?x?xi64>, tensor<64x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

// Tests that a norm input has at least one axis.
func.func @f70(%x: tensor<f32>) {
  // expected-error @+1 {{expects an input of rank at least 1, got 'tensor<f32>'}}
  %y = glint.rms_norm %x epsilon 1.0e-05 : (tensor<f32>) -> tensor<f32>
  return
}

// -----

// Tests that a norm keeps the input type.
func.func @f71(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects the output type 'tensor<?x?x4xf32>' to equal the input type 'tensor<?x?x8xf32>'}}
  %y = glint.rms_norm %x epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x4xf32>
  return
}

// -----

// Tests that the norm epsilon is not negative.
func.func @f72(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects a finite, non-negative epsilon, got -1.000000e-05}}
  %y = glint.layer_norm %x epsilon -1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the norm weight is per channel.
func.func @f73(%x: tensor<?x?x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'weight' dim 0 (channels) is 4, expected 8}}
  %y = glint.rms_norm %x weight %w epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<4xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that the norm bias is per channel.
func.func @f74(%x: tensor<?x?x8xf32>, %b: tensor<8x1xf32>) {
  // expected-error @+1 {{expects 'bias' of rank 1 [channels]}}
  %y = glint.layer_norm %x bias %b epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8x1xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that a group norm has at least one group.
func.func @f75(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{expects at least 1 group, got 0}}
  %y = glint.group_norm %x groups 0 epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that group norm channels divide into the groups.
func.func @f76(%x: tensor<?x?x8xf32>) {
  // expected-error @+1 {{channels (8) are not divisible into 3 groups}}
  %y = glint.group_norm %x groups 3 epsilon 1.0e-05 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return
}
