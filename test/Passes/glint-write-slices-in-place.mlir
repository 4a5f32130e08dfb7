// RUN: glint-opt %s -glint-write-slices-in-place -split-input-file | FileCheck %s

// Tests that two parts inserted into a tensor.empty are computed into their
// slices of it: the whole's empty and the first insert move up in front of
// the producers, the first part goes into a slice of the empty, the second
// into a slice of the first insert, and the inserts stay.
// CHECK-LABEL: func @two_parts
// CHECK-SAME: (%[[X:.+]]: tensor<?x64xf32>)
// CHECK: %[[N:.+]] = tensor.dim %[[X]]
// CHECK: %[[N2:.+]] = tensor.dim %[[X]]
// CHECK: %[[W:.+]] = tensor.empty(%[[N2]]) : tensor<?x128xf32>
// CHECK: %[[S1:.+]] = tensor.extract_slice %[[W]][0, 64] [%[[N2]], 64] [1, 1]
// CHECK: %[[DZ:.+]] = scf.forall {{.*}} shared_outs(%{{.+}} = %[[S1]])
// CHECK: %[[I1:.+]] = tensor.insert_slice %[[DZ]] into %[[W]][0, 64]
// CHECK: %[[S2:.+]] = tensor.extract_slice %[[I1]][0, 0] [%[[N2]], 64] [1, 1]
// CHECK: %[[DX:.+]] = linalg.generic {{.*}} outs(%[[S2]] : tensor<?x64xf32>)
// CHECK: %[[I2:.+]] = tensor.insert_slice %[[DX]] into %[[I1]][0, 0]
// CHECK: return %[[I2]]
func.func @two_parts(%x: tensor<?x64xf32>) -> tensor<?x128xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%n) : tensor<?x64xf32>
  %dz = scf.forall (%i) in (%n) shared_outs(%o = %e) -> (tensor<?x64xf32>) {
    %row = tensor.extract_slice %x[%i, 0] [1, 64] [1, 1] : tensor<?x64xf32> to tensor<1x64xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %row into %o[%i, 0] [1, 64] [1, 1] : tensor<1x64xf32> into tensor<?x64xf32>
    }
  }
  %e2 = tensor.empty(%n) : tensor<?x64xf32>
  %dx = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x64xf32>) outs(%e2 : tensor<?x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.mulf %in, %in : f32
    linalg.yield %m : f32
  } -> tensor<?x64xf32>
  %n2 = tensor.dim %x, %c0 : tensor<?x64xf32>
  %w = tensor.empty(%n2) : tensor<?x128xf32>
  %0 = tensor.insert_slice %dz into %w[0, 64] [%n2, 64] [1, 1] : tensor<?x64xf32> into tensor<?x128xf32>
  %1 = tensor.insert_slice %dx into %0[0, 0] [%n2, 64] [1, 1] : tensor<?x64xf32> into tensor<?x128xf32>
  return %1 : tensor<?x128xf32>
}

// -----

// Tests that a fill read by two sums gets one copy per sum, each next to
// its sum and into its slice, and that an insert reads a part through an
// expand / collapse pair that gives it back (around a unit dimension) as
// the part itself.
// CHECK-LABEL: func @shared_fill
// CHECK-SAME: (%[[A:.+]]: tensor<4x2x8xf32>, %[[B:.+]]: tensor<4x2x8xf32>)
// CHECK: %[[W:.+]] = tensor.empty() : tensor<4x16xf32>
// CHECK: %[[S1:.+]] = tensor.extract_slice %[[W]][0, 8] [4, 8] [1, 1]
// CHECK: %[[F1:.+]] = linalg.fill {{.*}} outs(%[[S1]] : tensor<4x8xf32>)
// CHECK: %[[SUM1:.+]] = linalg.generic {{.*}} ins(%[[A]] {{.*}} outs(%[[F1]] : tensor<4x8xf32>)
// CHECK: %[[I1:.+]] = tensor.insert_slice %[[SUM1]] into %[[W]][0, 8]
// CHECK: %[[S2:.+]] = tensor.extract_slice %[[I1]][0, 0] [4, 8] [1, 1]
// CHECK: %[[F2:.+]] = linalg.fill {{.*}} outs(%[[S2]] : tensor<4x8xf32>)
// CHECK: %[[SUM2:.+]] = linalg.generic {{.*}} ins(%[[B]] {{.*}} outs(%[[F2]] : tensor<4x8xf32>)
// CHECK-NOT: tensor.expand_shape
// CHECK-NOT: tensor.collapse_shape
// CHECK: tensor.insert_slice %[[SUM2]] into %[[I1]][0, 0]
#in = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#out = affine_map<(d0, d1, d2) -> (d0, d2)>
func.func @shared_fill(%a: tensor<4x2x8xf32>, %b: tensor<4x2x8xf32>) -> tensor<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %sa = linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction", "parallel"]} ins(%a : tensor<4x2x8xf32>) outs(%f : tensor<4x8xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %sb = linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction", "parallel"]} ins(%b : tensor<4x2x8xf32>) outs(%f : tensor<4x8xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %acc, %in : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %xa = tensor.expand_shape %sa [[0, 1], [2]] output_shape [4, 1, 8] : tensor<4x8xf32> into tensor<4x1x8xf32>
  %ca = tensor.collapse_shape %xa [[0], [1, 2]] : tensor<4x1x8xf32> into tensor<4x8xf32>
  %xb = tensor.expand_shape %sb [[0, 1], [2]] output_shape [4, 1, 8] : tensor<4x8xf32> into tensor<4x1x8xf32>
  %cb = tensor.collapse_shape %xb [[0], [1, 2]] : tensor<4x1x8xf32> into tensor<4x8xf32>
  %w = tensor.empty() : tensor<4x16xf32>
  %0 = tensor.insert_slice %ca into %w[0, 8] [4, 8] [1, 1] : tensor<4x8xf32> into tensor<4x16xf32>
  %1 = tensor.insert_slice %cb into %0[0, 0] [4, 8] [1, 1] : tensor<4x8xf32> into tensor<4x16xf32>
  return %1 : tensor<4x16xf32>
}

// -----

// Tests that an expand / collapse pair that gives back the type but
// regroups dynamic dimensions ([m, n] -> [a, b, n] -> [a, b * n]) is not
// taken for the part itself, and that parts a call returns, parts inserted
// into a value that is not a tensor.empty, and strided slices are left
// alone.
// CHECK-LABEL: func @left_alone
// CHECK-NOT: tensor.extract_slice
// CHECK: tensor.collapse_shape
// CHECK-NOT: tensor.extract_slice
// CHECK: return
func.func private @part() -> tensor<4x8xf32>
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @left_alone(%d: tensor<4x16xf32>, %x: tensor<4x8xf32>, %y: tensor<?x?xf32>, %a: index, %b: index) -> (tensor<4x16xf32>, tensor<4x16xf32>, tensor<?x?xf32>, tensor<4x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %p = func.call @part() : () -> tensor<4x8xf32>
  %w = tensor.empty() : tensor<4x16xf32>
  %0 = tensor.insert_slice %p into %w[0, 0] [4, 8] [1, 1] : tensor<4x8xf32> into tensor<4x16xf32>
  %e = tensor.empty() : tensor<4x8xf32>
  %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<4x8xf32>
  %1 = tensor.insert_slice %g into %d[0, 0] [4, 8] [1, 1] : tensor<4x8xf32> into tensor<4x16xf32>
  %m = tensor.dim %y, %c0 : tensor<?x?xf32>
  %n = tensor.dim %y, %c1 : tensor<?x?xf32>
  %ey = tensor.empty(%m, %n) : tensor<?x?xf32>
  %gy = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%y : tensor<?x?xf32>) outs(%ey : tensor<?x?xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<?x?xf32>
  %xr = tensor.expand_shape %gy [[0, 1], [2]] output_shape [%a, %b, %n] : tensor<?x?xf32> into tensor<?x?x?xf32>
  %cr = tensor.collapse_shape %xr [[0], [1, 2]] : tensor<?x?x?xf32> into tensor<?x?xf32>
  %k = tensor.dim %cr, %c0 : tensor<?x?xf32>
  %l = tensor.dim %cr, %c1 : tensor<?x?xf32>
  %wy = tensor.empty(%k, %l) : tensor<?x?xf32>
  %2 = tensor.insert_slice %cr into %wy[0, 0] [%k, %l] [1, 1] : tensor<?x?xf32> into tensor<?x?xf32>
  %w2 = tensor.empty() : tensor<4x16xf32>
  %e3 = tensor.empty() : tensor<2x8xf32>
  %one = arith.constant 1.0 : f32
  %g3 = linalg.fill ins(%one : f32) outs(%e3 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %3 = tensor.insert_slice %g3 into %w2[0, 0] [2, 8] [2, 1] : tensor<2x8xf32> into tensor<4x16xf32>
  return %0, %1, %2, %3 : tensor<4x16xf32>, tensor<4x16xf32>, tensor<?x?xf32>, tensor<4x16xf32>
}
