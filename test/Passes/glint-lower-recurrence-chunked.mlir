// RUN: glint-opt %s -glint-lower-recurrence=time-chunk=16 -split-input-file | FileCheck %s

// Tests the time-chunked form (the GPU's): a Mamba-1 recurrence of dynamic
// length becomes a run-time choice between the three phases over chunks of
// 16 steps and the sequential scan. Phase 1 scans each (batch, chunk, head)
// from zeros, carrying the chunk's decay product; phase 2 passes the states
// from chunk to chunk per (batch, head, key row), in place of the chunk
// contributions; phase 3 rescans each chunk from its entering state into its
// slice of the output rows.
// CHECK-LABEL: func @mamba1
// CHECK-NOT: glint.recurrence
// CHECK: %[[L:.+]] = tensor.dim %{{.+}}, %c1
// CHECK: %[[LONG:.+]] = arith.cmpi sgt, %[[L]], %c16
// CHECK: scf.if %[[LONG]] -> (tensor<?x?x8x1xf32>) {
// CHECK:   %[[C:.+]] = arith.ceildivsi %[[L]], %c16
// CHECK:   %[[P1:.+]]:2 = scf.forall (%{{.+}}, %[[C1:.+]], %{{.+}}) in (%{{.+}}, %[[C]], 8) shared_outs({{.+}}) -> (tensor<?x?x8x4x1xf32>, tensor<?x?x8x4xf32>) {
// CHECK:     %[[FIRST:.+]] = arith.muli %[[C1]], %c16
// CHECK:     %[[NEXT:.+]] = arith.addi %[[FIRST]], %c16
// CHECK:     %[[END:.+]] = arith.minsi %[[NEXT]], %[[L]]
// CHECK:     scf.for %{{.+}} = %[[FIRST]] to %[[END]] step %{{.+}} iter_args(%{{.+}} = %{{.+}}, %[[PROD:.+]] = %{{.+}}) -> (tensor<4x1xf32>, tensor<4xf32>)
// CHECK:       math.exp
// CHECK:       linalg.generic {{.+}} ins(%{{.+}} : tensor<4xf32>) outs(%[[PROD]] : tensor<4xf32>)
// CHECK:   %[[P2:.+]] = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 8, 4) shared_outs(%{{.+}} = %[[P1]]#0) -> (tensor<?x?x8x4x1xf32>) {
// CHECK:     scf.for %{{.+}} = %{{.+}} to %[[C]] step
// CHECK:       tensor.extract %[[P1]]#1
// CHECK:       linalg.generic {{.+}} outs(%{{.+}}, %{{.+}} : tensor<1xf32>, tensor<1xf32>)
// CHECK:   %[[P3:.+]] = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, %[[C]], 8) shared_outs({{.+}}) -> (tensor<?x?x8x1xf32>) {
// CHECK:     tensor.extract_slice %[[P2]]
// CHECK:     scf.for
// CHECK:   scf.yield %[[P3]] : tensor<?x?x8x1xf32>
// CHECK: } else {
// CHECK:   scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 8)
// CHECK:   scf.yield
func.func @mamba1(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x8x1xf32>, %a: tensor<8x4xf32>, %dt: tensor<?x?x8xf32>,
    %d: tensor<8xf32>) -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>)
      -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}

// -----

// Tests that a sequence no longer than a chunk (a generated token's step)
// and RWKV-4's ratio form stay sequential: one forall over (batch, head).
// CHECK-LABEL: func @short_and_ratio
// CHECK-NOT: scf.if
// CHECK-COUNT-2: scf.forall (%{{.+}}, %{{.+}}) in (1, 2)
// CHECK-NOT: scf.forall (
func.func @short_and_ratio(%k: tensor<1x16x2x1xf32>, %v: tensor<1x16x2x1xf32>,
    %g: tensor<2xf32>, %k2: tensor<1x40x2x1xf32>, %v2: tensor<1x40x2x1xf32>)
    -> (tensor<1x16x2x1xf32>, tensor<1x40x2x1xf32>) {
  %y = glint.recurrence k(%k) v(%v) log_decay(%g)
      : (tensor<1x16x2x1xf32>, tensor<1x16x2x1xf32>, tensor<2xf32>)
      -> tensor<1x16x2x1xf32>
  %z = glint.recurrence normalize k(%k2) v(%v2) log_decay(%g)
      : (tensor<1x40x2x1xf32>, tensor<1x40x2x1xf32>, tensor<2xf32>)
      -> tensor<1x40x2x1xf32>
  return %y, %z : tensor<1x16x2x1xf32>, tensor<1x40x2x1xf32>
}
