// RUN: glint-opt %s -glint-vectorize-gradients="vector-width=4 chunks=2" -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-vectorize-gradients="vector-width=4 chunks=2 fuse-forward=false" -split-input-file | FileCheck %s --check-prefix=APART

// Tests that a Mamba-1 recurrence's backward (keys shared by every head,
// per-key static decay, delta, skip) becomes a forall over (batch, chunk of
// channel blocks) whose backward scan carries the K state cotangents as
// vectors and leaves no glint op behind. With K = 4 keys and 4 lanes, the
// shared keys' cotangents are summed over the lanes at every step by
// shuffles, into the zeroed [L, K] partial of the chunk (no per-lane
// scratch, no reduction after the loop); the partials over the chunks and
// the decay's per-batch partial are summed after the forall. The decay
// factor is exp2((A log2 e) dt) with ninf, as in the forward.
// CHECK-LABEL: func @mamba1_grad
// CHECK-NOT: glint.
// CHECK: %[[PARTS:.+]]:5 = scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: %[[DQ:.+]] = tensor.extract_slice %{{.+}} : tensor<?x2x?x4xf32> to tensor<?x4xf32>
// CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[DQ]] : tensor<?x4xf32>)
// CHECK: %[[DK:.+]] = tensor.extract_slice %{{.+}} : tensor<?x2x?x4xf32> to tensor<?x4xf32>
// CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[DK]] : tensor<?x4xf32>)
// CHECK-NOT: bufferization.alloc_tensor
// CHECK: tensor.empty(%{{.+}}) : tensor<?x4x4xf32>
// CHECK: tensor.empty() : tensor<65x4x4xf32>
// CHECK: %[[LOG2E:.+]] = arith.constant dense<1.44269502> : vector<4xf32>
// CHECK: %[[SCALED:.+]] = arith.mulf %{{.+}}, %[[LOG2E]] : vector<4xf32>
// CHECK: %[[ARG:.+]] = arith.mulf %{{.+}}, %[[SCALED]] : vector<4xf32>
// CHECK: math.exp2 %[[ARG]] fastmath<ninf> : vector<4xf32>
// CHECK: vector.shuffle %{{.+}}, %{{.+}} [0, 1, 4, 5] : vector<4xf32>, vector<4xf32>
// CHECK-NOT: vector.reduction
// CHECK: scf.forall.in_parallel
// CHECK: linalg.generic {{.+}} ins(%[[PARTS]]#2 : tensor<?x4x8xf32>) outs(%{{.+}} : tensor<8x4xf32>)
// CHECK: linalg.generic {{.+}} ins(%[[PARTS]]#3 : tensor<?x2x?x4xf32>)
// CHECK: return
func.func @mamba1_grad(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x8x1xf32>, %a: tensor<8x4xf32>, %dt: tensor<?x?x8xf32>,
    %d: tensor<8xf32>, %dy: tensor<?x?x8x1xf32>)
    -> (tensor<?x?x1x4xf32>, tensor<8x4xf32>, tensor<?x?x8xf32>) {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      skip(%d) grad(%dy)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>,
         tensor<?x?x8x1xf32>)
      -> (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
          tensor<8x4xf32>, tensor<?x?x8xf32>)
  return %r#0, %r#3, %r#4 : tensor<?x?x1x4xf32>, tensor<8x4xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that the forward glint.recurrence on the same operands (a gradient
// function's) is lowered here too, with the backward: glint-vectorize-
// recurrence's per-channel form with a second shared output, the state at
// the start of each chunk of 64 steps ([B, blocks, ceil(L / 64) + 1, K, W]),
// written by the time blocks that start a chunk (the others write the
// spare last slot). The backward reads its checkpoints there and runs no
// forward scan of its own: its only exp2 are the recompute's, whose decay
// factors the backward steps read back; the recompute prefetches the rows
// of dy and q that only the backward steps read. With fuse-forward=false the forward
// op is left for glint-vectorize-recurrence.
// CHECK-LABEL: func @mamba1_forward_and_grad
// CHECK-NOT: glint.
// CHECK: %[[FWD:.+]]:2 = scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<?x?x8xf32>, tensor<?x2x?x4x4xf32>)
// CHECK: %[[STARTS:.+]] = arith.cmpi eq, %{{.+}}, %{{.+}} : index
// CHECK: arith.select %[[STARTS]], %{{.+}}, %{{.+}} : index
// CHECK-COUNT-4: vector.transfer_write {{.+}} : vector<4xf32>, tensor<1x?x4x4xf32>
// CHECK-COUNT-4: math.exp2
// CHECK: tensor.parallel_insert_slice %{{.+}} into %{{.+}}[%{{.+}}, %{{.+}}, 0, 0, 0] [1, 1, %{{.+}}, 4, 4]
// CHECK: %[[DYVIEW:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x?x8xf32>
// CHECK: %[[QVIEW:.+]] = bufferization.to_buffer %{{.+}} read_only : tensor<?x?x1x4xf32>
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: tensor.empty() : tensor<65x4x4xf32>
// CHECK: tensor.empty() : tensor<64x4x4xf32>
// CHECK-COUNT-4: vector.transfer_read %[[FWD]]#1[
// CHECK-COUNT-4: math.exp2
// CHECK: memref.prefetch %[[DYVIEW]][%{{.+}}, %[[T:.+]], %{{.+}}], read, locality<3>, data
// CHECK: memref.prefetch %[[QVIEW]][%{{.+}}, %[[T]], %{{.+}}, %{{.+}}], read, locality<3>, data
// CHECK-NOT: math.exp2
// CHECK: scf.forall.in_parallel
// CHECK: return %{{.+}}, %{{.+}} :
// APART-LABEL: func @mamba1_forward_and_grad
// APART: glint.recurrence q(
// APART-NOT: glint.recurrence_grad
// APART: return
func.func @mamba1_forward_and_grad(%q: tensor<?x?x1x4xf32>,
    %k: tensor<?x?x1x4xf32>, %v: tensor<?x?x8x1xf32>, %a: tensor<8x4xf32>,
    %dt: tensor<?x?x8xf32>, %d: tensor<8xf32>, %dy: tensor<?x?x8x1xf32>)
    -> (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>) {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>)
      -> tensor<?x?x8x1xf32>
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      skip(%d) grad(%dy)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>,
         tensor<?x?x8x1xf32>)
      -> (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
          tensor<8x4xf32>, tensor<?x?x8xf32>)
  return %y, %r#2 : tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>
}

// -----

// Tests the same with K = 8 keys, more than the 4 lanes: the shared keys'
// cotangents accumulate per lane in a [L, K, W] scratch per chunk, whose
// lanes are summed (vector.reduction) when the chunk's blocks are done. The
// two scratch tensors are allocations of their own (CSE must not merge
// them, or bufferization would copy the zeros at every chunk).
// CHECK-LABEL: func @mamba1_grad_scratch
// CHECK-NOT: glint.
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: %[[S1:.+]] = bufferization.alloc_tensor(%{{.+}}) : tensor<?x8x4xf32>
// CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[S1]] : tensor<?x8x4xf32>)
// CHECK: %[[S2:.+]] = bufferization.alloc_tensor(%{{.+}}) : tensor<?x8x4xf32>
// CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[S2]] : tensor<?x8x4xf32>)
// The per-key decay, read as rows of 4 keys and transposed 4 x 4 in
// registers (two tiles of 2 x 4 shuffles), is the only use of shuffles:
// CHECK-COUNT-16: vector.shuffle
// CHECK-NOT: vector.shuffle
// CHECK: vector.reduction <add>
// CHECK: scf.forall.in_parallel
// CHECK: return
func.func @mamba1_grad_scratch(%q: tensor<?x?x1x8xf32>, %k: tensor<?x?x1x8xf32>,
    %v: tensor<?x?x8x1xf32>, %a: tensor<8x8xf32>, %dt: tensor<?x?x8xf32>,
    %d: tensor<8xf32>, %dy: tensor<?x?x8x1xf32>)
    -> (tensor<?x?x1x8xf32>, tensor<8x8xf32>, tensor<?x?x8xf32>) {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      skip(%d) grad(%dy)
      : (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x8x1xf32>,
         tensor<8x8xf32>, tensor<?x?x8xf32>, tensor<8xf32>,
         tensor<?x?x8x1xf32>)
      -> (tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x8x1xf32>,
          tensor<8x8xf32>, tensor<?x?x8xf32>)
  return %r#0, %r#3, %r#4 : tensor<?x?x1x8xf32>, tensor<8x8xf32>, tensor<?x?x8xf32>
}

// -----

// Tests that an RG-LRU backward (one key per channel, no query, a decay per
// step and channel) writes every cotangent as rows, masked where H = 6 is
// not a multiple of the width, with no partials to sum.
// CHECK-LABEL: func @rglru_grad
// CHECK-NOT: glint.
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: vector.transfer_read %{{.+}}[%{{.+}}, %{{.+}}, %{{.+}}], %{{.+}} : tensor<?x?x6xf32>, vector<4xf32>
// CHECK: scf.forall.in_parallel
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @rglru_grad(%k: tensor<?x?x6x1xf32>, %v: tensor<?x?x6x1xf32>,
    %a: tensor<?x?x6xf32>, %dy: tensor<?x?x6x1xf32>)
    -> (tensor<?x?x6x1xf32>, tensor<?x?x6xf32>) {
  %r:5 = glint.recurrence_grad k(%k) v(%v) log_decay(%a) grad(%dy)
      : (tensor<?x?x6x1xf32>, tensor<?x?x6x1xf32>, tensor<?x?x6xf32>,
         tensor<?x?x6x1xf32>)
      -> (tensor<?x?x6x1xf32>, tensor<?x?x6x1xf32>, tensor<?x?x6x1xf32>,
          tensor<?x?x6xf32>, tensor<?x?x6xf32>)
  return %r#1, %r#3 : tensor<?x?x6x1xf32>, tensor<?x?x6xf32>
}

// -----

// Tests that a matrix-state backward (V > 1) is left to
// glint-lower-gradients.
// CHECK-LABEL: func @matrix_grad
// CHECK: glint.recurrence_grad
func.func @matrix_grad(%q: tensor<1x5x2x4xf32>, %k: tensor<1x5x2x4xf32>,
    %v: tensor<1x5x2x8xf32>, %a: tensor<1x5x2x4xf32>,
    %dy: tensor<1x5x2x8xf32>) -> tensor<1x5x2x8xf32> {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%a) grad(%dy)
      : (tensor<1x5x2x4xf32>, tensor<1x5x2x4xf32>, tensor<1x5x2x8xf32>,
         tensor<1x5x2x4xf32>, tensor<1x5x2x8xf32>)
      -> (tensor<1x5x2x4xf32>, tensor<1x5x2x4xf32>, tensor<1x5x2x8xf32>,
          tensor<1x5x2x4xf32>, tensor<1x5x2xf32>)
  return %r#2 : tensor<1x5x2x8xf32>
}
