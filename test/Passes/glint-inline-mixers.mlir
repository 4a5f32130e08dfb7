// RUN: glint-opt %s -glint-inline-mixers -split-input-file | FileCheck %s

// Tests that a mixer's body replaces it, with the value input substituted
// for the block argument and captured values left alone.
// CHECK-LABEL: func @gated
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>, %[[Z:.+]]: tensor<?x?x8xf32>, %[[W:.+]]: tensor<8x4xf32>)
// CHECK-NOT: glint.mixer
// CHECK: %[[C:.+]] = glint.conv1d %[[X]], %[[W]]
// CHECK: %[[G:.+]] = arith.mulf %[[C]], %[[Z]]
// CHECK-NOT: glint.yield
// CHECK: return %[[G]]
func.func @gated(%x: tensor<?x?x8xf32>, %z: tensor<?x?x8xf32>,
    %w: tensor<8x4xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%xv: tensor<?x?x8xf32>):
    %c = glint.conv1d %xv, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x8xf32>
    %g = arith.mulf %c, %z : tensor<?x?x8xf32>
    glint.yield %g : tensor<?x?x8xf32>
  }
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that nested and consecutive mixers are all inlined in order.
// CHECK-LABEL: func @nested
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>)
// CHECK-NOT: glint.mixer
// CHECK: %[[A:.+]] = glint.act silu %[[X]]
// CHECK: %[[B:.+]] = glint.act sigmoid %[[A]]
// CHECK: %[[C:.+]] = glint.act tanh %[[B]]
// CHECK: return %[[C]]
func.func @nested(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    %a = glint.act silu %v : tensor<?x?x8xf32>
    %z = glint.mixer (%a) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
    ^bb0(%w: tensor<?x?x8xf32>):
      %s = glint.act sigmoid %w : tensor<?x?x8xf32>
      glint.yield %s : tensor<?x?x8xf32>
    }
    glint.yield %z : tensor<?x?x8xf32>
  }
  %y2 = glint.mixer (%y) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    %t = glint.act tanh %v : tensor<?x?x8xf32>
    glint.yield %t : tensor<?x?x8xf32>
  }
  return %y2 : tensor<?x?x8xf32>
}

// -----

// Tests that an identity mixer is inlined to its input.
// CHECK-LABEL: func @identity
// CHECK-SAME: (%[[X:.+]]: tensor<?x?x8xf32>)
// CHECK-NEXT: return %[[X]]
func.func @identity(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%v: tensor<?x?x8xf32>):
    glint.yield %v : tensor<?x?x8xf32>
  }
  return %y : tensor<?x?x8xf32>
}
