// RUN: glint-opt %s -glint-vectorize-matmul="vector-width=8 outline=false" -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-vectorize-matmul=vector-width=8 -split-input-file | FileCheck %s --check-prefix=OUTLINE

// Tests that a transposed-B product (PyTorch's [out, in] weight) with a
// broadcast bias becomes the two register-blocked paths chosen at run time
// by the row count: from 16 rows the weight is packed into 16-column
// panels [3, 64, 16] and 6 x 16 tiles run 12 FMAs per k on vector<8xf32>
// accumulators that start from the bias row (the output starts empty, the
// broadcast is not read back); below 16 rows, dot products along k, one
// weight row after the other (a loop over 8 rows, each read front to back
// with two accumulators), with one reassociating horizontal sum per output
// (the 8 sums added to the bias as one vector<8xf32>). 40 columns are not a
// multiple of the panel, so the last panel's transfers are masked.
// CHECK-LABEL: func @out_in_with_bias
// CHECK-SAME: (%[[A:[a-z0-9_]+]]: tensor<?x64xf32>, %[[W:[a-z0-9_]+]]: tensor<40x64xf32>, %[[BIAS:[a-z0-9_]+]]: tensor<40xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: linalg.broadcast
// CHECK: %[[DEST:.+]] = tensor.empty(%{{.+}}) : tensor<?x40xf32>
// CHECK: %[[ROWS:.+]] = tensor.dim %[[A]], %{{.+}} : tensor<?x64xf32>
// CHECK: %[[MANY:.+]] = arith.cmpi sge, %[[ROWS]], %{{.+}} : index
// CHECK: %[[Y:.+]] = scf.if %[[MANY]] -> (tensor<?x40xf32>) {
// CHECK:   %[[PACKED:.+]] = scf.forall (%{{.+}}) in (3) shared_outs(%{{.+}} = %{{.+}}) -> (tensor<3x64x16xf32>)
// CHECK:     vector.transfer_read %[[W]]
// CHECK:     tensor.insert
// CHECK:   scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 1) shared_outs(%{{.+}} = %[[DEST]]) -> (tensor<?x40xf32>)
// CHECK:     scf.if
// CHECK:       %[[B0:.+]] = vector.transfer_read %[[BIAS]][%{{.+}}], %{{.+}} : tensor<40xf32>, vector<8xf32>
// CHECK:       scf.for {{.+}} iter_args({{.+}} = %[[B0]], {{.+}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:         %[[P0:.+]] = vector.transfer_read %[[PACKED]]{{.+}} {in_bounds = [true]} : tensor<3x64x16xf32>, vector<8xf32>
// CHECK:         %[[P1:.+]] = vector.transfer_read %[[PACKED]]{{.+}} {in_bounds = [true]} : tensor<3x64x16xf32>, vector<8xf32>
// CHECK:         %[[X:.+]] = tensor.extract %[[A]]
// CHECK:         %[[XS:.+]] = vector.broadcast %[[X]] : f32 to vector<8xf32>
// CHECK:         math.fma %[[XS]], %[[P0]], %{{.+}} : vector<8xf32>
// CHECK:         math.fma %[[XS]], %[[P1]], %{{.+}} : vector<8xf32>
// CHECK-COUNT-10: math.fma
// CHECK:       vector.transfer_write {{.+}} : vector<8xf32>, tensor<?x?xf32>
// CHECK:   } else {
// CHECK:       vector.transfer_read %[[BIAS]]{{.+}} {in_bounds = [true]} : tensor<40xf32>, vector<8xf32>
// CHECK: } else {
// CHECK:   scf.forall (%{{.+}}) in (1) shared_outs(%{{.+}} = %[[DEST]]) -> (tensor<?x40xf32>)
// CHECK:     scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[DOTS:.+]] = %{{.+}}) -> (vector<8xf32>)
// CHECK:       %[[ACC:.+]]:2 = scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>)
// CHECK:         vector.transfer_read %[[W]]{{.+}} {in_bounds = [true]} : tensor<40x64xf32>, vector<8xf32>
// CHECK:         vector.transfer_read %[[A]]{{.+}} {in_bounds = [true]} : tensor<?x64xf32>, vector<8xf32>
// CHECK:         math.fma
// CHECK:         vector.transfer_read %[[W]]{{.+}} {in_bounds = [true]} : tensor<40x64xf32>, vector<8xf32>
// CHECK:         vector.transfer_read %[[A]]{{.+}} {in_bounds = [true]} : tensor<?x64xf32>, vector<8xf32>
// CHECK:         math.fma
// CHECK:       %[[BOTH:.+]] = arith.addf %[[ACC]]#0, %[[ACC]]#1 : vector<8xf32>
// CHECK:       %[[DOT:.+]] = vector.reduction <add>, %[[BOTH]] fastmath<reassoc> : vector<8xf32> into f32
// CHECK:       vector.insert %[[DOT]], %[[DOTS]] [%[[J]]] : f32 into vector<8xf32>
// CHECK:     vector.transfer_read %[[BIAS]]{{.+}} {in_bounds = [true]} : tensor<40xf32>, vector<8xf32>
// CHECK: return %[[Y]] : tensor<?x40xf32>
func.func @out_in_with_bias(%a: tensor<?x64xf32>, %w: tensor<40x64xf32>, %bias: tensor<40xf32>) -> tensor<?x40xf32> {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %a, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%m) : tensor<?x40xf32>
  %init = linalg.broadcast ins(%bias : tensor<40xf32>) outs(%e : tensor<?x40xf32>) dimensions = [0]
  %y = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%a, %w : tensor<?x64xf32>, tensor<40x64xf32>) outs(%init : tensor<?x40xf32>) -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}

// -----

// Tests that an [in, out] weight with a zero fill needs no masks (32
// columns are two full panels), that its panels are plain copies of the
// weight's rows, that the accumulators start from the fill's scalar, and
// that the few-rows path reads the weight's rows directly, one tile as wide
// as the column chunk (here the whole 32 columns: 4 vectors).
// CHECK-LABEL: func @in_out_zero
// CHECK-SAME: (%[[A:[a-z0-9_]+]]: tensor<?x48xf32>, %[[W:[a-z0-9_]+]]: tensor<48x32xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: scf.if
// CHECK:   scf.forall (%{{.+}}) in (2) shared_outs(%{{.+}}) -> (tensor<2x48x16xf32>)
// CHECK:     vector.transfer_read %[[W]][%{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<48x32xf32>, vector<8xf32>
// CHECK:     vector.transfer_write %{{.+}} {in_bounds = [true]} : vector<8xf32>, tensor<48x16xf32>
// CHECK:   scf.forall
// CHECK-NOT: scf.if
// CHECK:     %[[Z:.+]] = vector.broadcast %[[ZERO]] : f32 to vector<8xf32>
// CHECK:     scf.for {{.+}} iter_args({{.+}} = %[[Z]], {{.+}} = %[[Z]],
// CHECK:     vector.transfer_write {{.+}} {in_bounds = [true]} : vector<8xf32>, tensor<?x?xf32>
// CHECK: } else {
// CHECK:   scf.forall (%{{.+}}) in (1)
// CHECK:     scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:       vector.transfer_read %[[W]]{{.+}} {in_bounds = [true]} : tensor<48x32xf32>, vector<8xf32>
func.func @in_out_zero(%a: tensor<?x48xf32>, %w: tensor<48x32xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %a, %c0 : tensor<?x48xf32>
  %e = tensor.empty(%m) : tensor<?x32xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = linalg.matmul ins(%a, %w : tensor<?x48xf32>, tensor<48x32xf32>) outs(%init : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that an initial value the pass does not recognise is the output
// itself: the accumulators are read from it, and it is the forall's
// destination.
// CHECK-LABEL: func @accumulate
// CHECK-SAME: (%[[A:[a-z0-9_]+]]: tensor<?x16xf32>, %[[W:[a-z0-9_]+]]: tensor<16x16xf32>, %[[C:[a-z0-9_]+]]: tensor<?x16xf32>)
// CHECK-NOT: linalg.matmul
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 1) shared_outs(%[[OUT:.+]] = %[[C]])
// CHECK:   %[[TILE:.+]] = tensor.extract_slice %[[OUT]]
// CHECK:   scf.for {{.+}} iter_args(%{{.+}} = %[[TILE]])
// CHECK:   scf.for {{.+}} iter_args(%[[T:.+]] = %{{.+}})
// CHECK:   scf.for {{.+}} iter_args(%[[R:.+]] = %[[T]])
// CHECK:     %[[ACC:.+]] = vector.transfer_read %[[R]]
// CHECK:     scf.for {{.+}} iter_args(%{{.+}} = %[[ACC]],
func.func @accumulate(%a: tensor<?x16xf32>, %w: tensor<16x16xf32>, %c: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %y = linalg.matmul ins(%a, %w : tensor<?x16xf32>, tensor<16x16xf32>) outs(%c : tensor<?x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that products the pass does not handle are left as they are: f64,
// a weight of dynamic shape, and a product inside a parallel loop.
// CHECK-LABEL: func @left_alone
// CHECK-COUNT-3: linalg.matmul
// CHECK-NOT: vector.
func.func @left_alone(%a: tensor<?x8xf64>, %w: tensor<8x8xf64>, %c: tensor<?x8xf64>,
                      %b: tensor<?x8xf32>, %v: tensor<?x8xf32>, %d: tensor<?x8xf32>,
                      %e: tensor<4x8x8xf32>, %u: tensor<8x8xf32>) -> (tensor<?x8xf64>, tensor<?x8xf32>, tensor<4x8x8xf32>) {
  %0 = linalg.matmul ins(%a, %w : tensor<?x8xf64>, tensor<8x8xf64>) outs(%c : tensor<?x8xf64>) -> tensor<?x8xf64>
  %1 = linalg.matmul ins(%b, %v : tensor<?x8xf32>, tensor<?x8xf32>) outs(%d : tensor<?x8xf32>) -> tensor<?x8xf32>
  %2 = scf.forall (%i) in (4) shared_outs(%out = %e) -> (tensor<4x8x8xf32>) {
    %s = tensor.extract_slice %out[%i, 0, 0] [1, 8, 8] [1, 1, 1] : tensor<4x8x8xf32> to tensor<8x8xf32>
    %p = linalg.matmul ins(%u, %u : tensor<8x8xf32>, tensor<8x8xf32>) outs(%s : tensor<8x8xf32>) -> tensor<8x8xf32>
    scf.forall.in_parallel {
      tensor.parallel_insert_slice %p into %out[%i, 0, 0] [1, 8, 8] [1, 1, 1] : tensor<8x8xf32> into tensor<4x8x8xf32>
    }
  }
  return %0, %1, %2 : tensor<?x8xf64>, tensor<?x8xf32>, tensor<4x8x8xf32>
}

// -----

// Tests that with outlining (the default) products of the same shapes and
// initial kind share one private kernel function, called with the bias row
// or the fill's scalar; another shape gets its own kernel, and a product
// whose initial value is a tensor stays inline.
// CHECK-LABEL: func @layers
// CHECK-NOT: call
// CHECK-NOT: linalg.matmul
// OUTLINE-LABEL: func @layers
// OUTLINE-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x64xf32>, %[[W0:[a-z0-9_]+]]: tensor<64x64xf32>, %[[W1:[a-z0-9_]+]]: tensor<64x64xf32>, %[[W2:[a-z0-9_]+]]: tensor<32x64xf32>, %[[B:[a-z0-9_]+]]: tensor<64xf32>, %[[C:[a-z0-9_]+]]: tensor<?x32xf32>)
// OUTLINE-NOT: linalg.matmul
// OUTLINE: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// OUTLINE: %[[Y0:.+]] = call @__glint_linear_nk_dx64x64x64_bias(%[[X]], %[[W0]], %[[B]]) : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
// OUTLINE: %[[Y1:.+]] = call @__glint_linear_nk_dx64x64x64_bias(%[[Y0]], %[[W1]], %[[B]])
// OUTLINE: %[[Y2:.+]] = call @__glint_linear_nk_dx64x32x64_fill(%[[Y1]], %[[W2]], %[[ZERO]]) : (tensor<?x64xf32>, tensor<32x64xf32>, f32) -> tensor<?x32xf32>
// OUTLINE: scf.if
// OUTLINE: return
// OUTLINE-LABEL: func private @__glint_linear_nk_dx64x64x64_bias
// OUTLINE-SAME: (%{{.+}}: tensor<?x64xf32>, %{{.+}}: tensor<64x64xf32>, %{{.+}}: tensor<64xf32>) -> tensor<?x64xf32>
// OUTLINE: scf.if
// OUTLINE: math.fma
// OUTLINE-LABEL: func private @__glint_linear_nk_dx64x32x64_fill
// OUTLINE-SAME: (%{{.+}}: tensor<?x64xf32>, %{{.+}}: tensor<32x64xf32>, %{{.+}}: f32) -> tensor<?x32xf32>
// OUTLINE-NOT: func private @__glint_linear
#a = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#c = affine_map<(m, n, k) -> (m, n)>
func.func @layers(%x: tensor<?x64xf32>, %w0: tensor<64x64xf32>, %w1: tensor<64x64xf32>, %w2: tensor<32x64xf32>, %bias: tensor<64xf32>, %c: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%m) : tensor<?x64xf32>
  %i0 = linalg.broadcast ins(%bias : tensor<64xf32>) outs(%e : tensor<?x64xf32>) dimensions = [0]
  %y0 = linalg.matmul indexing_maps = [#a, #w, #c] ins(%x, %w0 : tensor<?x64xf32>, tensor<64x64xf32>) outs(%i0 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %y1 = linalg.matmul indexing_maps = [#a, #w, #c] ins(%y0, %w1 : tensor<?x64xf32>, tensor<64x64xf32>) outs(%i0 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %e2 = tensor.empty(%m) : tensor<?x32xf32>
  %i2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y2 = linalg.matmul indexing_maps = [#a, #w, #c] ins(%y1, %w2 : tensor<?x64xf32>, tensor<32x64xf32>) outs(%i2 : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y3 = linalg.matmul indexing_maps = [#a, #w, #c] ins(%y1, %w2 : tensor<?x64xf32>, tensor<32x64xf32>) outs(%c : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y2, %y3 : tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Tests that a grouped product (a generic over (m, g, o, i), as
// convert-glint-to-linalg writes a linear with a [G, I, O] weight) becomes a
// loop over the groups whose products are lowered in place, outlined or not:
// each reads its slice of x and of the weight and writes its slice of the
// output where they lie (a kernel call would copy both slices), the zero
// fill of the whole output is gone (every group overwrites its slice), and
// the loop starts from an empty tensor.
// CHECK-LABEL: func @grouped
// OUTLINE-LABEL: func @grouped
// OUTLINE-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x4x8xf32>, %[[W:[a-z0-9_]+]]: tensor<4x8x16xf32>)
// OUTLINE-NOT: call
// OUTLINE-NOT: linalg.fill
// OUTLINE: %[[EMPTY:.+]] = tensor.empty(%{{.+}}) : tensor<?x4x16xf32>
// OUTLINE: scf.for %[[G:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[Y:.+]] = %[[EMPTY]]) -> (tensor<?x4x16xf32>)
// OUTLINE-DAG: %[[XS:.+]] = tensor.extract_slice %[[X]][0, %[[G]], 0] [%{{.+}}, 1, 8] [1, 1, 1] : tensor<?x4x8xf32> to tensor<?x8xf32>
// OUTLINE-DAG: %[[WS:.+]] = tensor.extract_slice %[[W]][%[[G]], 0, 0] [1, 8, 16] [1, 1, 1] : tensor<4x8x16xf32> to tensor<8x16xf32>
// OUTLINE-DAG: %[[YS:.+]] = tensor.extract_slice %[[Y]][0, %[[G]], 0] [%{{.+}}, 1, 16] [1, 1, 1] : tensor<?x4x16xf32> to tensor<?x16xf32>
// OUTLINE: scf.if
// OUTLINE:   scf.forall {{.+}} shared_outs(%{{.+}} = %[[YS]])
// OUTLINE:     tensor.extract %[[XS]]
// OUTLINE: } else {
// OUTLINE:   scf.forall {{.+}} shared_outs(%{{.+}} = %[[YS]])
// OUTLINE: tensor.insert_slice %{{.+}} into %[[Y]][0, %[[G]], 0] [%{{.+}}, 1, 16] [1, 1, 1] : tensor<?x16xf32> into tensor<?x4x16xf32>
// OUTLINE-NOT: func private @__glint_linear
#gx = affine_map<(m, g, o, i) -> (m, g, i)>
#gw = affine_map<(m, g, o, i) -> (g, i, o)>
#gy = affine_map<(m, g, o, i) -> (m, g, o)>
func.func @grouped(%x: tensor<?x4x8xf32>, %w: tensor<4x8x16xf32>) -> tensor<?x4x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x4x8xf32>
  %e = tensor.empty(%m) : tensor<?x64xf32>
  %filled = linalg.fill ins(%zero : f32) outs(%e : tensor<?x64xf32>) -> tensor<?x64xf32>
  %init = tensor.expand_shape %filled [[0], [1, 2]] output_shape [%m, 4, 16] : tensor<?x64xf32> into tensor<?x4x16xf32>
  %y = linalg.generic {indexing_maps = [#gx, #gw, #gy], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x4x8xf32>, tensor<4x8x16xf32>) outs(%init : tensor<?x4x16xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  } -> tensor<?x4x16xf32>
  return %y : tensor<?x4x16xf32>
}

// -----

// Tests that a product whose columns fill one vector (8 with 8 lanes) packs
// panels of one vector, not of the default two: the second would hold
// zeros, multiplied at every step. Its tiles keep the default tile's
// twelve accumulators in twelve rows of one vector (six would leave too few
// multiply-adds in flight for the FMA pipes).
// CHECK-LABEL: func @narrow
// OUTLINE-LABEL: func @narrow
// CHECK: scf.forall (%{{.+}}) in (1) shared_outs(%{{.+}}) -> (tensor<1x24x8xf32>)
// CHECK-NOT: tensor<1x24x16xf32>
// CHECK: scf.for %{{.+}} step %c12
// CHECK: scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>) {
// CHECK-COUNT-12: math.fma
func.func @narrow(%a: tensor<?x24xf32>, %w: tensor<24x8xf32>) -> tensor<?x8xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = tensor.dim %a, %c0 : tensor<?x24xf32>
  %e = tensor.empty(%m) : tensor<?x8xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
  %y = linalg.matmul ins(%a, %w : tensor<?x24xf32>, tensor<24x8xf32>) outs(%init : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
