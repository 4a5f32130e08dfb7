// RUN: glint-opt %s -convert-glint-map-to-loops | FileCheck %s
// RUN: glint-opt %s -convert-glint-map-to-loops -canonicalize | FileCheck %s --check-prefix=NOGLINT
// RUN: glint-opt %s -convert-glint-map-to-loops=parallel-columns=false | FileCheck %s --check-prefix=SERIAL

// Tests that a Mamba-1 layer's map (conv → SiLU → scan with Δ and D → gate)
// reduced to the channel mean becomes a loop over (batch, channel) around
// the 16-column vector kernel: exponentials once per (token, key), one
// multiply and one multiply-add per key for every 16 entries, the gate and
// the mean fused into the row's accumulation. The blocks of 16 columns are
// an scf.forall whose iteration q takes block q/2 (even q) or the (q/2)-th
// from the end (odd q), each writing its [Lp, 16] block of the blocked
// accumulator ([Lp / 16, Lp, 16]: a block's rows contiguous), which the
// mean reads back entry by entry; with parallel-columns=false they are a
// loop (the GPU pipeline's form) over the same blocks.
// CHECK-LABEL: func.func @mamba
// CHECK: %[[GAIN:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK: scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK: math.exp
// CHECK: %[[BLOCKS:.*]] = arith.divui %{{.*}}, %c16
// CHECK: scf.forall (%[[Q:.*]]) in (%[[BLOCKS]]) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:   %[[HALF:.*]] = arith.divui %[[Q]], %c2
// CHECK:   %[[LAST:.*]] = arith.subi %[[BLOCKS]], %c1
// CHECK:   %[[END:.*]] = arith.subi %[[LAST]], %[[HALF]]
// CHECK:   %[[BLOCK:.*]] = arith.select %{{.*}}, %[[END]], %[[HALF]]
// CHECK:   %[[TILE:.*]] = tensor.extract_slice %[[OUT]][%[[BLOCK]], 0, 0] [1, %{{.*}}, 16] [1, 1, 1] : tensor<?x?x?xf32> to tensor<?x16xf32>
// CHECK:   vector.fma
// CHECK:   vector.transfer_write %{{.*}}, %{{.*}}[%{{.*}}, %c0{{.*}}] {in_bounds = [true]} : vector<16xf32>, tensor<?x16xf32>
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%[[BLOCK]], 0, 0] [1, %{{.*}}, 16] [1, 1, 1]
// CHECK: %[[COLUMNS:.*]] = arith.divui %{{.*}}, %c16
// CHECK: tensor.extract %{{.*}}[%[[COLUMNS]], %{{.*}}, %{{.*}}] : tensor<?x?x?xf32>
// CHECK-NOT: glint.map
// CHECK: return
// SERIAL-LABEL: func.func @mamba
// SERIAL-NOT: scf.forall
// SERIAL: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c16
// SERIAL: tensor.extract_slice %{{.*}} [1, %{{.*}}, 16] [1, 1, 1] : tensor<?x?x?xf32> to tensor<?x16xf32>
// SERIAL: vector.fma
// SERIAL: vector.transfer_write
// SERIAL-NOT: scf.forall
// SERIAL: return
// NOGLINT-LABEL: func.func @mamba
// NOGLINT-NOT: glint.
func.func @mamba(%x: tensor<?x?x4xf32>, %w: tensor<4x4xf32>, %xc: tensor<?x?x4xf32>,
    %q: tensor<?x?x1x3xf32>, %k: tensor<?x?x1x3xf32>, %a: tensor<4x3xf32>,
    %dt: tensor<?x?x4xf32>, %d: tensor<4xf32>, %z: tensor<?x?x4xf32>) -> (tensor<?x?x?xf32>, tensor<?x?x4xf32>) {
  %m0 = glint.map_identity %x : tensor<?x?x4xf32> -> !glint.map<tensor<?x?x4xf32>>
  %m1 = glint.map_conv %m0, %w : (!glint.map<tensor<?x?x4xf32>>, tensor<4x4xf32>) -> !glint.map<tensor<?x?x4xf32>>
  %g = glint.act_gain silu %xc : tensor<?x?x4xf32>
  %m2 = glint.map_scale %m1, %g : (!glint.map<tensor<?x?x4xf32>>, tensor<?x?x4xf32>) -> !glint.map<tensor<?x?x4xf32>>
  %m3 = glint.map_reshape %m2 : !glint.map<tensor<?x?x4xf32>> -> !glint.map<tensor<?x?x4x1xf32>>
  %m4 = glint.map_scan %m3 q(%q) k(%k) log_decay(%a) delta(%dt) skip(%d) : (!glint.map<tensor<?x?x4x1xf32>>, tensor<?x?x1x3xf32>, tensor<?x?x1x3xf32>, tensor<4x3xf32>, tensor<?x?x4xf32>, tensor<4xf32>) -> !glint.map<tensor<?x?x4x1xf32>>
  %m5 = glint.map_reshape %m4 : !glint.map<tensor<?x?x4x1xf32>> -> !glint.map<tensor<?x?x4xf32>>
  %m6 = glint.map_scale %m5, %z : (!glint.map<tensor<?x?x4xf32>>, tensor<?x?x4xf32>) -> !glint.map<tensor<?x?x4xf32>>
  %r = glint.map_reduce mean %m6 : !glint.map<tensor<?x?x4xf32>> -> tensor<?x?x?xf32>
  %y = glint.map_apply %m6, %x : (!glint.map<tensor<?x?x4xf32>>, tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  return %r, %y : tensor<?x?x?xf32>, tensor<?x?x4xf32>
}
