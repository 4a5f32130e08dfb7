// RUN: glint-opt %s -convert-glint-map-to-loops | FileCheck %s
// RUN: glint-opt %s -convert-glint-map-to-loops=group-channels=0 | FileCheck %s --check-prefix=UNBLOCKED
// RUN: not glint-opt %s -convert-glint-map-to-loops=group-channels=-1 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: glint-opt %s -convert-glint-map-to-loops=vector-width=8 | FileCheck %s --check-prefix=AVX2
// RUN: glint-opt %s -convert-glint-map-to-loops=channel-parts=2 | FileCheck %s --check-prefix=PARTS
// RUN: not glint-opt %s -convert-glint-map-to-loops=channel-parts=0 2>&1 | FileCheck %s --check-prefix=BADPARTS

// Tests the blocked form of a linear aggregate (mean) of a Mamba-1 layer
// whose 16 keys fill a vector: accumulators padded to blocks of 64
// columns; the channels in groups of 8 (the last group uses 4 slots).
// Per group, first a forall over the used slots that prepares each
// channel (its tables, band and gates, row factors, block decays and
// column factors) into its slot of six group tables; then a forall over
// the 64-column blocks that runs the recurrence near the diagonal for
// each used slot and adds the rows below as products of 4 rows × 4
// vectors, the used slots' 16 terms each summed in registers before the
// tile is read and written. The accumulator is blocked ([Lp / 64, Lp, 64],
// each column block's rows contiguous) and read back entry by entry into
// the result after the last group.
// CHECK-LABEL: func.func @mamba
// CHECK: arith.constant 63 : index
// CHECK: scf.for %{{.*}} = %{{.*}} to %c2{{.*}} step %c1{{.*}} iter_args
// CHECK: %[[USED:.*]] = arith.minui %c8{{.*}}, %{{.*}} : index
// CHECK: %{{.*}}:6 = scf.forall (%[[SLOT:.*]]) in (%[[USED]])
// CHECK: scf.forall.in_parallel
// CHECK-COUNT-5: tensor.parallel_insert_slice %{{.*}} into %{{.*}}[%[[SLOT]], 0, 0] [1, %{{.*}}, %{{.*}}] [1, 1, 1] : tensor<?x?xf32> into tensor<?x?x?xf32>
// CHECK: tensor.parallel_insert_slice %{{.*}} into %{{.*}}[%[[SLOT]], 0] [1, %{{.*}}] [1, 1] : tensor<?xf32> into tensor<?x?xf32>
// CHECK: %[[TERMS:.*]] = arith.muli %[[USED]], %c16
// CHECK: scf.forall
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[USED]] step %c1
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c4
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[TERMS]] step %c1{{.*}} iter_args
// CHECK-COUNT-16: vector.fma
// CHECK: scf.yield
// CHECK: tensor.parallel_insert_slice %{{.*}}[%{{.*}}, 0, 0] [1, %{{.*}}, 64] [1, 1, 1] : tensor<?x64xf32> into tensor<?x?x?xf32>
// CHECK: %[[BLOCK:.*]] = arith.divui %{{.*}}, %c64
// CHECK: %[[COLUMN:.*]] = arith.remui %{{.*}}, %c64
// CHECK: tensor.extract %{{.*}}[%[[BLOCK]], %{{.*}}, %[[COLUMN]]] : tensor<?x?x?xf32>
// CHECK-NOT: glint.map
// CHECK: return
// The unblocked form: one channel at a time, no products.
// UNBLOCKED-LABEL: func.func @mamba
// UNBLOCKED-NOT: step %c4
// UNBLOCKED: return
// BAD: group-channels must not be negative, not -1
// BADPARTS: channel-parts must be positive, not 0
// In parts (channel-parts=2; 12 channels are two groups): min(2, groups)
// parts, fewer where 256 MiB would not hold their accumulators; each part
// zeroes its own blocks of one shared tensor and runs its groups' foralls
// (nested: on the part's thread); then a forall over the column blocks
// sums the parts, a vector of 16 columns at a time. Where that leaves one
// part, the groups run outside any forall (the else branch), so that
// their own foralls are not nested.
// PARTS-LABEL: func.func @mamba
// PARTS: %[[BYMEM:.*]] = arith.maxui %c1{{.*}}, %{{.*}} : index
// PARTS: %[[PARTS:.*]] = arith.minui %c2{{.*}}, %[[BYMEM]] : index
// PARTS: %[[SEVERAL:.*]] = arith.cmpi ugt, %[[PARTS]], %c1{{.*}} : index
// PARTS: scf.if %[[SEVERAL]] -> (tensor<?x?x?xf32>)
// PARTS: scf.forall (%{{.*}}) in (%[[PARTS]]) shared_outs
// PARTS: %[[OWN:.*]] = tensor.extract_slice %{{.*}}[%{{.*}}, 0, 0] [%{{.*}}, %{{.*}}, %{{.*}}] [1, 1, 1]
// PARTS: linalg.fill ins(%{{.*}} : f32) outs(%[[OWN]] : tensor<?x?x?xf32>)
// PARTS: %{{.*}}:6 = scf.forall
// PARTS: scf.forall
// PARTS: tensor.parallel_insert_slice %{{.*}}[%{{.*}}, 0, 0] [1, %{{.*}}, 64] [1, 1, 1] : tensor<?x64xf32> into tensor<?x?x?xf32>
// PARTS: tensor.parallel_insert_slice
// PARTS: scf.forall
// PARTS-COUNT-4: scf.for %{{.*}} = %{{.*}} to %[[PARTS]] step %{{.*}} -> (vector<16xf32>)
// PARTS: } else {
// PARTS: %[[TWO:.*]] = arith.constant 2 : index
// PARTS: %[[ZERO:.*]] = arith.constant 0 : index
// PARTS-NOT: scf.forall (%{{.*}}) in (%[[PARTS]])
// PARTS: scf.for %{{.*}} = %[[ZERO]] to %[[TWO]] step
// PARTS: %{{.*}}:6 = scf.forall
// PARTS: return
// With 8 lanes (AVX2's 16 vector registers) a product takes 2 rows × 4
// vectors: 8 accumulators beside 4 column factors and a row factor (4 rows
// spilled accumulators in the inner loop there).
// AVX2-LABEL: func.func @mamba
// AVX2: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c2{{.*}} iter_args({{.*}}) -> (tensor<?x32xf32>, tensor<?x?xf32>)
// AVX2: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>) {
// AVX2-COUNT-8: vector.fma %{{.*}} : vector<8xf32>
// AVX2-NEXT: scf.yield
func.func @mamba(%x: tensor<?x?x12xf32>, %w: tensor<12x4xf32>, %xc: tensor<?x?x12xf32>,
    %q: tensor<?x?x1x16xf32>, %k: tensor<?x?x1x16xf32>, %a: tensor<12x16xf32>,
    %dt: tensor<?x?x12xf32>, %d: tensor<12xf32>, %z: tensor<?x?x12xf32>) -> tensor<?x?x?xf32> {
  %m0 = glint.map_identity %x : tensor<?x?x12xf32> -> !glint.map<tensor<?x?x12xf32>>
  %m1 = glint.map_conv %m0, %w : (!glint.map<tensor<?x?x12xf32>>, tensor<12x4xf32>) -> !glint.map<tensor<?x?x12xf32>>
  %g = glint.act_gain silu %xc : tensor<?x?x12xf32>
  %m2 = glint.map_scale %m1, %g : (!glint.map<tensor<?x?x12xf32>>, tensor<?x?x12xf32>) -> !glint.map<tensor<?x?x12xf32>>
  %m3 = glint.map_reshape %m2 : !glint.map<tensor<?x?x12xf32>> -> !glint.map<tensor<?x?x12x1xf32>>
  %m4 = glint.map_scan %m3 q(%q) k(%k) log_decay(%a) delta(%dt) skip(%d) : (!glint.map<tensor<?x?x12x1xf32>>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<12x16xf32>, tensor<?x?x12xf32>, tensor<12xf32>) -> !glint.map<tensor<?x?x12x1xf32>>
  %m5 = glint.map_reshape %m4 : !glint.map<tensor<?x?x12x1xf32>> -> !glint.map<tensor<?x?x12xf32>>
  %m6 = glint.map_scale %m5, %z : (!glint.map<tensor<?x?x12xf32>>, tensor<?x?x12xf32>) -> !glint.map<tensor<?x?x12xf32>>
  %r = glint.map_reduce mean %m6 : !glint.map<tensor<?x?x12xf32>> -> tensor<?x?x?xf32>
  return %r : tensor<?x?x?xf32>
}

// The attribution method's map (the positive part of each channel's
// entries times g_i x_j, before the channels are summed) in the blocked
// form: per used slot, the channel's 16 terms summed for 3 rows × 4
// vectors (12 sums beside the group's 12: 3 rows, not 4, fit the
// registers), then max(0, a · g · x) of each added into the group's sums.
// CHECK-LABEL: func.func @attribution
// CHECK: %{{.*}}:5 = scf.forall (%{{.*}}) in (%[[AUSED:.*]]) shared_outs
// CHECK: scf.forall
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c3
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[AUSED]] step %c1{{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: scf.for %{{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-COUNT-12: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-12: arith.cmpf ogt, %{{.*}} : vector<16xf32>
// CHECK: scf.yield
// CHECK-NOT: glint.map
// CHECK: return
func.func @attribution(%x: tensor<?x?x12xf32>, %w: tensor<12x4xf32>,
    %q: tensor<?x?x1x16xf32>, %k: tensor<?x?x1x16xf32>, %a: tensor<12x16xf32>,
    %dt: tensor<?x?x12xf32>, %gr: tensor<?x?x12xf32>) -> tensor<?x?x?xf32> {
  %m0 = glint.map_identity %x : tensor<?x?x12xf32> -> !glint.map<tensor<?x?x12xf32>>
  %m1 = glint.map_conv %m0, %w : (!glint.map<tensor<?x?x12xf32>>, tensor<12x4xf32>) -> !glint.map<tensor<?x?x12xf32>>
  %m2 = glint.map_reshape %m1 : !glint.map<tensor<?x?x12xf32>> -> !glint.map<tensor<?x?x12x1xf32>>
  %m3 = glint.map_scan %m2 q(%q) k(%k) log_decay(%a) delta(%dt) : (!glint.map<tensor<?x?x12x1xf32>>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<12x16xf32>, tensor<?x?x12xf32>) -> !glint.map<tensor<?x?x12x1xf32>>
  %m4 = glint.map_reshape %m3 : !glint.map<tensor<?x?x12x1xf32>> -> !glint.map<tensor<?x?x12xf32>>
  %r = glint.map_attribution %m4, %gr, %x : (!glint.map<tensor<?x?x12xf32>>, tensor<?x?x12xf32>, tensor<?x?x12xf32>) -> tensor<?x?x?xf32>
  return %r : tensor<?x?x?xf32>
}
