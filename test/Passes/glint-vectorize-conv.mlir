// RUN: glint-opt %s -glint-vectorize-conv=vector-width=8 -split-input-file | FileCheck %s

// Tests that Mamba's causal convolution becomes vector loops over the
// channels: the weight transposed to [taps, C] once, a forall over the batch
// and two chunks of channels, the first K - 1 = 3 steps (which may read
// before the start: zeros here, through an scf.if per tap) in their own
// loop, then the main loop reading the 4 input rows directly, each output
// starting from the bias. 20 channels are not a multiple of 8: transfers are
// masked (no in_bounds).
// CHECK-LABEL: func @mamba_conv
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x20xf32>, %[[W:[a-z0-9_]+]]: tensor<20x4xf32>, %[[B:[a-z0-9_]+]]: tensor<20xf32>)
// CHECK-NOT: glint.conv1d
// CHECK: %[[WT:.+]] = linalg.transpose ins(%[[W]] : tensor<20x4xf32>) outs(%{{.+}} : tensor<4x20xf32>) permutation = [1, 0]
// CHECK: %[[Y:.+]] = scf.forall (%[[BI:.+]], %[[CHUNK:.+]]) in (%{{.+}}, 2) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<?x?x20xf32>)
// CHECK:   %[[ROWS:.+]] = tensor.extract_slice %[[OUT]][%[[BI]], 0, %[[C0:.+]]] [1, %{{.+}}, %{{.+}}] [1, 1, 1]
// CHECK:   %[[HEAD:.+]] = scf.for %[[S:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %[[ROWS]])
// CHECK:     scf.for
// CHECK:       %[[BIAS:.+]] = vector.transfer_read %[[B]][%{{.+}}], %{{.+}} : tensor<20xf32>, vector<8xf32>
// CHECK:       vector.transfer_read %[[WT]]
// CHECK:       %[[EARLY:.+]] = arith.cmpi slt
// CHECK:       scf.if %[[EARLY]] -> (vector<8xf32>)
// CHECK:       math.fma %{{.+}}, %{{.+}}, %[[BIAS]] : vector<8xf32>
// CHECK-COUNT-3: math.fma
// CHECK:   %[[MAIN:.+]] = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %[[HEAD]])
// CHECK:     scf.for
// CHECK-NOT:   scf.if
// CHECK:       vector.transfer_read %[[X]][%[[BI]], %{{.+}}, %{{.+}}], %{{.+}} : tensor<?x?x20xf32>, vector<8xf32>
// CHECK:       math.fma
// CHECK:       vector.transfer_write %{{.+}}, %{{.+}}[%{{.+}}, %{{.+}}, %{{.+}}] : vector<8xf32>, tensor<1x?x?xf32>
// CHECK:   scf.forall.in_parallel
// CHECK-NEXT: tensor.parallel_insert_slice %[[MAIN]] into %[[OUT]][%[[BI]], 0, %[[C0]]]
// CHECK: return %[[Y]]
func.func @mamba_conv(%x: tensor<?x?x20xf32>, %w: tensor<20x4xf32>, %b: tensor<20xf32>) -> tensor<?x?x20xf32> {
  %y = glint.conv1d %x, %w bias %b : (tensor<?x?x20xf32>, tensor<20x4xf32>, tensor<20xf32>) -> tensor<?x?x20xf32>
  return %y : tensor<?x?x20xf32>
}

// -----

// Tests that the streaming form reads steps before the start from the
// initial state (row s + K - 1), runs backwards for `reverse` (t = L - 1 -
// s), keeps full vectors unmasked (16 channels), and copies the final state
// out after the loop.
// CHECK-LABEL: func @reverse_streaming
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x16xf32>, %[[W:[a-z0-9_]+]]: tensor<16x3xf32>, %[[S:[a-z0-9_]+]]: tensor<?x2x16xf32>)
// CHECK-NOT: glint.conv1d
// CHECK: scf.forall
// CHECK:   scf.if
// CHECK:     vector.transfer_read %[[S]][%{{.+}}, %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x2x16xf32>, vector<8xf32>
// CHECK:   } else {
// CHECK:     %[[T:.+]] = arith.subi
// CHECK:     vector.transfer_read %[[X]][%{{.+}}, %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]}
// CHECK: %[[FINAL:.+]] = scf.for {{.+}} -> (tensor<?x2x16xf32>)
// CHECK:   vector.transfer_write {{.+}} {in_bounds = [true]} : vector<8xf32>, tensor<?x2x16xf32>
// CHECK: return %{{.+}}, %[[FINAL]]
func.func @reverse_streaming(%x: tensor<?x?x16xf32>, %w: tensor<16x3xf32>, %s: tensor<?x2x16xf32>) -> (tensor<?x?x16xf32>, tensor<?x2x16xf32>) {
  %y, %f = glint.conv1d reverse %x, %w initial_state(%s) : (tensor<?x?x16xf32>, tensor<16x3xf32>, tensor<?x2x16xf32>) -> (tensor<?x?x16xf32>, tensor<?x2x16xf32>)
  return %y, %f : tensor<?x?x16xf32>, tensor<?x2x16xf32>
}

// -----

// Tests that a convolution over a dynamic channel count is left to
// convert-glint-to-linalg.
// CHECK-LABEL: func @dynamic_channels
// CHECK: glint.conv1d
func.func @dynamic_channels(%x: tensor<?x?x?xf32>, %w: tensor<?x4xf32>) -> tensor<?x?x?xf32> {
  %y = glint.conv1d %x, %w : (tensor<?x?x?xf32>, tensor<?x4xf32>) -> tensor<?x?x?xf32>
  return %y : tensor<?x?x?xf32>
}
