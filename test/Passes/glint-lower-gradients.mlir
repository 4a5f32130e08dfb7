// RUN: glint-opt %s -glint-lower-gradients -split-input-file | FileCheck %s

// Tests that a recurrence's backward becomes a forall over (batch, key
// group) with a checkpointed forward scan and a backward scan over chunks,
// and leaves no glint op behind.
// CHECK-LABEL: func @mamba1_grad
// CHECK-NOT: glint.
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 1) shared_outs(
// CHECK: tensor.empty(%{{.+}}) : tensor<?x4x1xf32>
// CHECK: math.exp
// CHECK: tensor.empty() : tensor<65x4x1xf32>
// CHECK: scf.forall.in_parallel
// CHECK: linalg.generic
// CHECK: return
func.func @mamba1_grad(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x8x1xf32>, %a: tensor<8x4xf32>, %dt: tensor<?x?x8xf32>,
    %d: tensor<8xf32>, %dy: tensor<?x?x8x1xf32>)
    -> (tensor<?x?x1x4xf32>, tensor<?x?x8xf32>) {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      skip(%d) grad(%dy)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>,
         tensor<?x?x8x1xf32>)
      -> (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
          tensor<8x4xf32>, tensor<?x?x8xf32>)
  return %r#0, %r#4 : tensor<?x?x1x4xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that softmax attention's backward becomes a forall over (batch,
// key/value head) with loops over the query heads of the group.
// CHECK-LABEL: func @attention_grad
// CHECK-NOT: glint.
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (2, 1) shared_outs(
// CHECK: math.exp
// CHECK: scf.forall.in_parallel
func.func @attention_grad(%q: tensor<2x5x2x3xf32>, %k: tensor<2x5x1x3xf32>,
    %v: tensor<2x5x1x4xf32>, %dy: tensor<2x5x2x4xf32>)
    -> tensor<2x5x1x3xf32> {
  %r:3 = glint.attention_grad %q, %k, %v grad(%dy) scale 0.5 window 3
      : (tensor<2x5x2x3xf32>, tensor<2x5x1x3xf32>, tensor<2x5x1x4xf32>,
         tensor<2x5x2x4xf32>)
      -> (tensor<2x5x2x3xf32>, tensor<2x5x1x3xf32>, tensor<2x5x1x4xf32>)
  return %r#1 : tensor<2x5x1x3xf32>
}
