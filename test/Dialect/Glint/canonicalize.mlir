// RUN: glint-opt %s -canonicalize -split-input-file | FileCheck %s

// Tests that a final state nobody reads is dropped from the recurrence.
// CHECK-LABEL: func @recurrence_unused_state
// CHECK: %[[Y:.+]] = glint.recurrence
// CHECK-SAME: -> tensor<?x?x4x1xf32>
// CHECK-NEXT: return %[[Y]]
func.func @recurrence_unused_state(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>,
    %a: tensor<4x16xf32>) -> tensor<?x?x4x1xf32> {
  %y, %s = glint.recurrence k(%k) v(%v) log_decay(%a)
      : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>)
      -> (tensor<?x?x4x1xf32>, tensor<?x4x16x1xf32>)
  return %y : tensor<?x?x4x1xf32>
}

// -----

// Tests that a final state that is read stays.
// CHECK-LABEL: func @recurrence_used_state
// CHECK: %{{.+}}, %[[S:.+]] = glint.recurrence
// CHECK: return %{{.+}}, %[[S]]
func.func @recurrence_used_state(%k: tensor<?x?x1x16xf32>, %v: tensor<?x?x4x1xf32>,
    %a: tensor<4x16xf32>) -> (tensor<?x?x4x1xf32>, tensor<?x4x16x1xf32>) {
  %y, %s = glint.recurrence k(%k) v(%v) log_decay(%a)
      : (tensor<?x?x1x16xf32>, tensor<?x?x4x1xf32>, tensor<4x16xf32>)
      -> (tensor<?x?x4x1xf32>, tensor<?x4x16x1xf32>)
  return %y, %s : tensor<?x?x4x1xf32>, tensor<?x4x16x1xf32>
}

// -----

// Tests that dropping the final state keeps every operand and attribute.
// CHECK-LABEL: func @recurrence_unused_state_keeps_operands
// CHECK: glint.recurrence reverse q(%arg0) k(%arg1) v(%arg2) log_decay(%arg3) bonus(%arg4) initial_state(%arg5) : (tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<2x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x3x2x4xf32>
func.func @recurrence_unused_state_keeps_operands(%q: tensor<1x3x2x4xf32>,
    %k: tensor<1x3x2x4xf32>, %v: tensor<1x3x2x4xf32>, %w: tensor<1x3x2x4xf32>,
    %u: tensor<2x4xf32>, %s0: tensor<1x2x4x4xf32>) -> tensor<1x3x2x4xf32> {
  %y, %s = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%w) bonus(%u)
      initial_state(%s0)
      : (tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>, tensor<1x3x2x4xf32>,
         tensor<1x3x2x4xf32>, tensor<2x4xf32>, tensor<1x2x4x4xf32>)
      -> (tensor<1x3x2x4xf32>, tensor<1x2x4x4xf32>)
  return %y : tensor<1x3x2x4xf32>
}

// -----

// Tests that unused conv and token-shift states are dropped, and a zero conv
// bias with them.
// CHECK-LABEL: func @conv_shift_unused_state
// CHECK: glint.conv1d %arg0, %arg1 initial_state(%arg2) : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<?x3x8xf32>) -> tensor<?x?x8xf32>
// CHECK: glint.token_shift %arg0 : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
func.func @conv_shift_unused_state(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>,
    %s: tensor<?x3x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>) {
  %zero = arith.constant dense<0.0> : tensor<8xf32>
  %y, %s1 = glint.conv1d %x, %w bias %zero initial_state(%s)
      : (tensor<?x?x8xf32>, tensor<8x4xf32>, tensor<8xf32>, tensor<?x3x8xf32>)
      -> (tensor<?x?x8xf32>, tensor<?x3x8xf32>)
  %t, %last = glint.token_shift %x : (tensor<?x?x8xf32>) -> (tensor<?x?x8xf32>, tensor<?x8xf32>)
  return %y, %t : tensor<?x?x8xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that zero biases are dropped from linear and norm layers, and
// non-zero ones kept.
// CHECK-LABEL: func @zero_bias
// CHECK: %[[ONE:.+]] = arith.constant dense<1.000000e+00> : tensor<4xf32>
// CHECK: glint.linear %arg0, %arg1 : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
// CHECK: glint.linear %arg0, %arg1 bias %[[ONE]]
// CHECK: glint.layer_norm %{{.+}} weight %arg2 epsilon
// CHECK: glint.group_norm %{{.+}} groups 2 epsilon
func.func @zero_bias(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %g: tensor<4xf32>)
    -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %zero = arith.constant dense<0.0> : tensor<4xf32>
  %one = arith.constant dense<1.0> : tensor<4xf32>
  %a = glint.linear %x, %w bias %zero : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %b = glint.linear %x, %w bias %one : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %c = glint.layer_norm %a weight %g bias %zero epsilon 1.0e-05
      : (tensor<?x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %d = glint.group_norm %c groups 2 bias %zero epsilon 1.0e-05
      : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return %b, %d : tensor<?x4xf32>, tensor<?x4xf32>
}

// -----

// Tests that a mixer yielding its value input is the identity.
// CHECK-LABEL: func @identity_mixer
// CHECK-NOT: glint.mixer
// CHECK: return %arg0
func.func @identity_mixer(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    glint.yield %v : tensor<?x?x8xf32>
  }
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that a mixer doing work is kept.
// CHECK-LABEL: func @working_mixer
// CHECK: glint.mixer
// CHECK: glint.act silu
func.func @working_mixer(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    %s = glint.act silu %v : tensor<?x?x8xf32>
    glint.yield %s : tensor<?x?x8xf32>
  }
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that an attention window covering a static sequence is dropped, and
// kept where it masks something or the length is dynamic.
// CHECK-LABEL: func @attention_window
// CHECK: glint.attention %arg0, %arg1, %arg2 scale 2.500000e-01 :
// CHECK: glint.attention %arg0, %arg1, %arg2 scale 2.500000e-01 window 4 :
// CHECK: glint.attention %arg3, %arg4, %arg5 scale 2.500000e-01 window 2048 :
func.func @attention_window(%q: tensor<1x8x2x4xf32>, %k: tensor<1x8x1x4xf32>,
    %v: tensor<1x8x1x4xf32>, %dq: tensor<?x?x2x4xf32>, %dk: tensor<?x?x1x4xf32>,
    %dv: tensor<?x?x1x4xf32>) -> (tensor<1x8x2x4xf32>, tensor<1x8x2x4xf32>, tensor<?x?x2x4xf32>) {
  %a = glint.attention %q, %k, %v scale 0.25 window 8
      : (tensor<1x8x2x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>) -> tensor<1x8x2x4xf32>
  %b = glint.attention %q, %k, %v scale 0.25 window 4
      : (tensor<1x8x2x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>) -> tensor<1x8x2x4xf32>
  %c = glint.attention %dq, %dk, %dv scale 0.25 window 2048
      : (tensor<?x?x2x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>) -> tensor<?x?x2x4xf32>
  return %a, %b, %c : tensor<1x8x2x4xf32>, tensor<1x8x2x4xf32>, tensor<?x?x2x4xf32>
}

// -----

// Tests that the window of an attention with a key/value cache is kept even
// when it covers the static sequence: the cache reaches back before it.
// CHECK-LABEL: func @attention_window_cache
// CHECK: glint.attention %arg0, %arg1, %arg2 scale 2.500000e-01 window 8 cache(
func.func @attention_window_cache(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x1x4xf32>,
    %v: tensor<1x1x1x4xf32>, %kc: tensor<1x7x1x4xf32>, %p: index) -> tensor<1x1x2x4xf32> {
  %a = glint.attention %q, %k, %v scale 0.25 window 8 cache(%kc, %kc) position(%p)
      : (tensor<1x1x2x4xf32>, tensor<1x1x1x4xf32>, tensor<1x1x1x4xf32>,
         tensor<1x7x1x4xf32>, tensor<1x7x1x4xf32>, index) -> tensor<1x1x2x4xf32>
  return %a : tensor<1x1x2x4xf32>
}

// -----

// Tests that relu of relu folds to one relu, and other pairs stay.
// CHECK-LABEL: func @relu_idempotent
// CHECK: %[[R:.+]] = glint.act relu %arg0
// CHECK-NEXT: %[[S:.+]] = glint.act silu %[[R]]
// CHECK-NEXT: %[[T:.+]] = glint.act silu %[[S]]
// CHECK-NEXT: return %[[R]], %[[T]]
func.func @relu_idempotent(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = glint.act relu %x : tensor<4xf32>
  %1 = glint.act relu %0 : tensor<4xf32>
  %2 = glint.act silu %1 : tensor<4xf32>
  %3 = glint.act silu %2 : tensor<4xf32>
  return %1, %3 : tensor<4xf32>, tensor<4xf32>
}

// -----

// Tests that rotating one token at position 0 folds away, and at another
// position, or for longer sequences, does not.
// CHECK-LABEL: func @rotary_single_token
// CHECK-NOT: glint.rotary %arg0 rotary_dim
// CHECK: glint.rotary %arg0 offset(%arg2)
// CHECK: glint.rotary %arg1 rotary_dim
// CHECK: return %arg0,
func.func @rotary_single_token(%x: tensor<?x1x2x8xf32>, %y: tensor<?x?x2x8xf32>,
    %pos: index) -> (tensor<?x1x2x8xf32>, tensor<?x1x2x8xf32>, tensor<?x1x2x8xf32>, tensor<?x?x2x8xf32>) {
  %c0 = arith.constant 0 : index
  %a = glint.rotary %x rotary_dim 8 base 10000.0 : tensor<?x1x2x8xf32>
  %b = glint.rotary %x offset(%c0) rotary_dim 8 base 10000.0 : tensor<?x1x2x8xf32>
  %c = glint.rotary %x offset(%pos) rotary_dim 8 base 10000.0 : tensor<?x1x2x8xf32>
  %d = glint.rotary %y rotary_dim 8 base 10000.0 : tensor<?x?x2x8xf32>
  return %a, %b, %c, %d : tensor<?x1x2x8xf32>, tensor<?x1x2x8xf32>, tensor<?x1x2x8xf32>, tensor<?x?x2x8xf32>
}
