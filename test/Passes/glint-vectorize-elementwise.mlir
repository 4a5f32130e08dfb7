// RUN: glint-opt %s -glint-vectorize-elementwise=vector-width=16 -split-input-file | FileCheck %s

// Tests that softplus(delta), a pre-activation of the scan, becomes its own
// vector loop: a forall over the outer dimensions, 16 lanes along the
// innermost one, masked transfers (40 is not a multiple of 16), the body on
// vector<16xf32> with its captured scalar broadcast.
// CHECK-LABEL: func @softplus
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x40xf32>)
// CHECK-NOT: linalg.generic
// CHECK: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[INIT:.+]] = tensor.empty(%{{.+}}, %{{.+}}) : tensor<?x?x40xf32>
// CHECK: %[[Y:.+]] = scf.forall (%[[I:.+]], %[[J:.+]]) in (%{{.+}}, %{{.+}}) shared_outs(%[[OUT:.+]] = %[[INIT]]) -> (tensor<?x?x40xf32>)
// CHECK:   %[[ROW:.+]] = tensor.extract_slice %[[OUT]][%[[I]], %[[J]], 0] [1, 1, 40] [1, 1, 1] : tensor<?x?x40xf32> to tensor<40xf32>
// CHECK:   %[[C16:.+]] = arith.constant 16 : index
// CHECK:   %[[C40:.+]] = arith.constant 40 : index
// CHECK:   %[[NEW:.+]] = scf.for %[[K:[a-z0-9_]+]] = %{{.+}} to %[[C40]] step %[[C16]] iter_args(%[[ACC:.+]] = %[[ROW]]) -> (tensor<40xf32>)
// CHECK:     %[[V:.+]] = vector.transfer_read %[[X]][%[[I]], %[[J]], %[[K]]], %{{[a-z0-9_]+}} : tensor<?x?x40xf32>, vector<16xf32>
// CHECK:     %[[A:.+]] = math.absf %[[V]] : vector<16xf32>
// CHECK:     %[[N:.+]] = arith.negf %[[A]] : vector<16xf32>
// CHECK:     %[[E:.+]] = math.exp %[[N]] : vector<16xf32>
// CHECK:     %[[T:.+]] = math.log1p %[[E]] : vector<16xf32>
// CHECK:     %[[ZV:.+]] = vector.broadcast %[[ZERO]] : f32 to vector<16xf32>
// CHECK:     %[[M:.+]] = arith.maximumf %[[V]], %[[ZV]] : vector<16xf32>
// CHECK:     %[[S:.+]] = arith.addf %[[M]], %[[T]] : vector<16xf32>
// CHECK:     %[[W:.+]] = vector.transfer_write %[[S]], %[[ACC]][%[[K]]] : vector<16xf32>, tensor<40xf32>
// CHECK:     scf.yield %[[W]] : tensor<40xf32>
// CHECK:   scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %[[NEW]] into %[[OUT]][%[[I]], %[[J]], 0] [1, 1, 40] [1, 1, 1] : tensor<40xf32> into tensor<?x?x40xf32>
// CHECK: return %[[Y]] : tensor<?x?x40xf32>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @softplus(%x: tensor<?x?x40xf32>) -> tensor<?x?x40xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %b = tensor.dim %x, %c0 : tensor<?x?x40xf32>
  %l = tensor.dim %x, %c1 : tensor<?x?x40xf32>
  %init = tensor.empty(%b, %l) : tensor<?x?x40xf32>
  %y = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x : tensor<?x?x40xf32>) outs(%init : tensor<?x?x40xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = math.absf %in : f32
    %n = arith.negf %a : f32
    %e = math.exp %n : f32
    %t = math.log1p %e : f32
    %m = arith.maximumf %in, %zero : f32
    %s = arith.addf %m, %t : f32
    linalg.yield %s : f32
  } -> tensor<?x?x40xf32>
  return %y : tensor<?x?x40xf32>
}

// -----

// Tests that inputs broadcast along the outer dimensions (a bias row) are
// read along the innermost one, inputs broadcast along the innermost one
// (one value per row) are extracted once and broadcast, comparisons become
// vector<16xi1> masks, and full rows (64 lanes) need no mask.
// CHECK-LABEL: func @broadcasts
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<2x?x64xf32>, %[[BIAS:[a-z0-9_]+]]: tensor<64xf32>, %[[SCALE:[a-z0-9_]+]]: tensor<2x?xf32>)
// CHECK-NOT: linalg.generic
// CHECK: scf.forall (%[[I:.+]], %[[J:.+]]) in (2, %{{.+}})
// CHECK:   scf.for %[[K:[a-z0-9_]+]] =
// CHECK:     %[[V:.+]] = vector.transfer_read %[[X]][%[[I]], %[[J]], %[[K]]], %{{.+}} {in_bounds = [true]} : tensor<2x?x64xf32>, vector<16xf32>
// CHECK:     %[[B:.+]] = vector.transfer_read %[[BIAS]][%[[K]]], %{{.+}} {in_bounds = [true]} : tensor<64xf32>, vector<16xf32>
// CHECK:     %[[S:.+]] = tensor.extract %[[SCALE]][%[[I]], %[[J]]] : tensor<2x?xf32>
// CHECK:     %[[SV:.+]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK:     %[[P:.+]] = arith.addf %[[V]], %[[B]] : vector<16xf32>
// CHECK:     %[[Q:.+]] = arith.mulf %[[P]], %[[SV]] : vector<16xf32>
// CHECK:     %[[C:.+]] = arith.cmpf ogt, %[[Q]], %[[V]] : vector<16xf32>
// CHECK:     %[[R:.+]] = arith.select %[[C]], %[[Q]], %[[V]] : vector<16xi1>, vector<16xf32>
// CHECK:     vector.transfer_write %[[R]], %{{.+}}[%[[K]]] {in_bounds = [true]} : vector<16xf32>, tensor<64xf32>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row = affine_map<(d0, d1, d2) -> (d2)>
#perrow = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @broadcasts(%x: tensor<2x?x64xf32>, %bias: tensor<64xf32>, %scale: tensor<2x?xf32>) -> tensor<2x?x64xf32> {
  %c1 = arith.constant 1 : index
  %l = tensor.dim %x, %c1 : tensor<2x?x64xf32>
  %init = tensor.empty(%l) : tensor<2x?x64xf32>
  %y = linalg.generic {indexing_maps = [#id3, #row, #perrow, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %bias, %scale : tensor<2x?x64xf32>, tensor<64xf32>, tensor<2x?xf32>) outs(%init : tensor<2x?x64xf32>) {
  ^bb0(%in: f32, %bb: f32, %sc: f32, %out: f32):
    %p = arith.addf %in, %bb : f32
    %q = arith.mulf %p, %sc : f32
    %c = arith.cmpf ogt, %q, %in : f32
    %r = arith.select %c, %q, %in : f32
    linalg.yield %r : f32
  } -> tensor<2x?x64xf32>
  return %y : tensor<2x?x64xf32>
}

// -----

// Tests that a reduction other than a sum along the innermost dimension (a
// maximum), a body with linalg.index and an innermost dimension shorter
// than half a vector are left as linalg.generic.
// CHECK-LABEL: func @left_alone
// CHECK-NOT: vector.
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]
// CHECK: linalg.generic
// CHECK:   linalg.index 1
// CHECK: linalg.generic
// CHECK:   math.exp %{{.+}} : f32
// CHECK-NOT: vector.
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#red = affine_map<(d0, d1) -> (d0)>
func.func @left_alone(%x: tensor<4x64xf32>, %y: tensor<4x2xf32>) -> (tensor<4xf32>, tensor<4x64xf32>, tensor<4x2xf32>) {
  %init = tensor.empty() : tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#id2, #red], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<4x64xf32>) outs(%init : tensor<4xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.maximumf %acc, %in : f32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  %init2 = tensor.empty() : tensor<4x64xf32>
  %idx = linalg.generic {indexing_maps = [#id2], iterator_types = ["parallel", "parallel"]} outs(%init2 : tensor<4x64xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 1 : index
    %ii = arith.index_cast %i : index to i64
    %f = arith.sitofp %ii : i64 to f32
    linalg.yield %f : f32
  } -> tensor<4x64xf32>
  %init3 = tensor.empty() : tensor<4x2xf32>
  %narrow = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%y : tensor<4x2xf32>) outs(%init3 : tensor<4x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %e = math.exp %in : f32
    linalg.yield %e : f32
  } -> tensor<4x2xf32>
  return %sum, %idx, %narrow : tensor<4xf32>, tensor<4x64xf32>, tensor<4x2xf32>
}

// -----

// Tests that an input which is also the output (convert-elementwise-to-
// linalg's choice for a residual add) is read from the row being written,
// not from the whole tensor, so that bufferization can write in place.
// CHECK-LABEL: func @in_place
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x32xf32>, %[[R:[a-z0-9_]+]]: tensor<?x32xf32>)
// CHECK: scf.forall (%[[I:.+]]) in (%{{.+}}) shared_outs(%[[OUT:.+]] = %[[X]]) -> (tensor<?x32xf32>)
// CHECK:   %[[ROW:.+]] = tensor.extract_slice %[[OUT]][%[[I]], 0] [1, 32] [1, 1]
// CHECK:   scf.for %[[K:[a-z0-9_]+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %[[ROW]]) -> (tensor<32xf32>)
// CHECK:     %[[A:.+]] = vector.transfer_read %[[ACC]][%[[K]]], %{{.+}} {in_bounds = [true]} : tensor<32xf32>, vector<16xf32>
// CHECK:     %[[B:.+]] = vector.transfer_read %[[R]][%[[I]], %[[K]]], %{{.+}} {in_bounds = [true]} : tensor<?x32xf32>, vector<16xf32>
// CHECK:     %[[S:.+]] = arith.addf %[[A]], %[[B]] : vector<16xf32>
// CHECK:     vector.transfer_write %[[S]], %[[ACC]][%[[K]]]
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @in_place(%x: tensor<?x32xf32>, %r: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x, %r : tensor<?x32xf32>, tensor<?x32xf32>) outs(%x : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that an output whose initial value is used after the generic (a
// forward activation the backward pass reads again) is replaced by an empty
// tensor: bufferization would otherwise copy it before it is overwritten.
// The input is then read from the original tensor.
// CHECK-LABEL: func @used_after
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x32xf32>, %[[R:[a-z0-9_]+]]: tensor<?x32xf32>)
// CHECK: %[[INIT:.+]] = tensor.empty(%{{.+}}) : tensor<?x32xf32>
// CHECK: %[[Y:.+]] = scf.forall (%[[I:.+]]) in (%{{.+}}) shared_outs(%[[OUT:.+]] = %[[INIT]]) -> (tensor<?x32xf32>)
// CHECK:   vector.transfer_read %[[X]][%[[I]], %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x32xf32>, vector<16xf32>
// CHECK:   vector.transfer_read %[[R]][%[[I]], %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x32xf32>, vector<16xf32>
// CHECK: return %[[Y]], %[[X]]
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @used_after(%x: tensor<?x32xf32>, %r: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x, %r : tensor<?x32xf32>, tensor<?x32xf32>) outs(%x : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<?x32xf32>
  return %y, %x : tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Tests that the sum of an element-wise map along the innermost dimension
// (a norm's variance, (x - mean)² summed per row, the mean one value per
// row) becomes a forall over the output's elements, 16 lanes of the map
// summed into a vector, its lanes added once per element and the output's
// own value added to them, written through a one-element slice; a row of
// 40 masks the lanes past its end out of the sum.
// CHECK-LABEL: func @row_sums
// CHECK: scf.forall (%[[I:.+]], %[[J:.+]]) in (2, %{{.+}}) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<2x?xf32>)
// CHECK:   scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %{{.+}}) -> (vector<16xf32>)
// CHECK:     vector.transfer_read %{{.+}}[%[[I]], %[[J]], %[[K]]], %{{.+}} {in_bounds = [true]} : tensor<2x?x64xf32>, vector<16xf32>
// CHECK:     tensor.extract %{{.+}}[%[[I]], %[[J]]] : tensor<2x?xf32>
// CHECK:     arith.mulf
// CHECK:     arith.addf %[[ACC]]
// CHECK:   vector.reduction <add>, %{{.+}} fastmath<reassoc> : vector<16xf32> into f32
// CHECK:   %[[ONE:.+]] = tensor.extract_slice %[[OUT]][%[[I]], %[[J]]] [1, 1] [1, 1] : tensor<2x?xf32> to tensor<1xf32>
// CHECK:   tensor.extract %[[ONE]]
// CHECK:   tensor.insert %{{.+}} into %[[ONE]]
// CHECK:   tensor.parallel_insert_slice
// CHECK: scf.forall
// CHECK:   vector.transfer_read {{.+}} : tensor<?x40xf32>, vector<16xf32>
// CHECK:   vector.create_mask
// CHECK:   arith.select
// CHECK:   vector.reduction <add>
// CHECK-NOT: linalg.generic
#x3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row3 = affine_map<(d0, d1, d2) -> (d0, d1)>
#x2 = affine_map<(d0, d1) -> (d0, d1)>
#row2 = affine_map<(d0, d1) -> (d0)>
func.func @row_sums(%x: tensor<2x?x64xf32>, %mean: tensor<2x?xf32>, %z: tensor<?x40xf32>) -> (tensor<2x?xf32>, tensor<?xf32>) {
  %c1 = arith.constant 1 : index
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c1 : tensor<2x?x64xf32>
  %e = tensor.empty(%n) : tensor<2x?xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<2x?xf32>) -> tensor<2x?xf32>
  %var = linalg.generic {indexing_maps = [#x3, #row3, #row3], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %mean : tensor<2x?x64xf32>, tensor<2x?xf32>) outs(%init : tensor<2x?xf32>) {
  ^bb0(%in: f32, %m: f32, %acc: f32):
    %d = arith.subf %in, %m : f32
    %sq = arith.mulf %d, %d : f32
    %s = arith.addf %acc, %sq : f32
    linalg.yield %s : f32
  } -> tensor<2x?xf32>
  %r = tensor.dim %z, %c0 : tensor<?x40xf32>
  %e2 = tensor.empty(%r) : tensor<?xf32>
  %init2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?xf32>) -> tensor<?xf32>
  %sum = linalg.generic {indexing_maps = [#x2, #row2], iterator_types = ["parallel", "reduction"]} ins(%z : tensor<?x40xf32>) outs(%init2 : tensor<?xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %ex = math.exp %in : f32
    %s = arith.addf %ex, %acc : f32
    linalg.yield %s : f32
  } -> tensor<?xf32>
  return %var, %sum : tensor<2x?xf32>, tensor<?xf32>
}
