// RUN: glint-opt %s -glint-vectorize-matmul=vector-width=8 | FileCheck %s
// RUN: glint-opt %s -glint-vectorize-matmul="vector-width=8 prepare-weights=false" | FileCheck %s --check-prefix=PACKED
// RUN: glint-opt %s -glint-vectorize-matmul="vector-width=8 stream-panels=2" -canonicalize -cse | FileCheck %s --check-prefix=GROUP
// RUN: glint-opt %s -glint-vectorize-matmul="vector-width=8 prefetch-bytes=0" | FileCheck %s --check-prefix=NOPREFETCH
// NOPREFETCH-NOT: memref.prefetch

// Prepared weights. @table is read by a product as PyTorch's [out, in]
// weight (the logits of a tied embedding) and element by element (the
// gather): it becomes its panels [3, 64, 16] (40 columns in panels of
// NR = 16, zero past 40) with the glint.panels attribute the runtime lays
// the checkpoint's matrix out by; the gather reads panels[n / 16, k, n % 16];
// the product's kernel takes the panels and packs nothing: from 16 rows
// its tiles read the panels, below 16 each row of A is an outer product
// with stream-panels (4) neighbouring panels at a time, here (3 panels)
// one after the other (two 8-lane accumulators per row). @shared
// is read by two products in different layouts and @added also by an
// element-wise op: both stay as they are, packed on every call.

// CHECK-DAG: ml_program.global private @table(#{{.*}}) : tensor<3x64x16xf32> {glint.panels = {layout = "nk", shape = array<i64: 40, 64>, width = 16 : i64}}
// CHECK-DAG: ml_program.global private @shared(#{{.*}}) : tensor<64x64xf32>{{$}}
// CHECK-DAG: ml_program.global private @added(#{{.*}}) : tensor<64x24xf32>{{$}}
// CHECK-LABEL: func.func @tied
// CHECK: %[[TABLE:.+]] = ml_program.global_load_const @table : tensor<3x64x16xf32>
// CHECK: linalg.generic
// CHECK: ^bb0(%[[ID:.+]]: index, %{{.+}}: f32):
// CHECK:   %[[D:.+]] = linalg.index 1 : index
// CHECK:   %[[P:.+]] = arith.divui %[[ID]], %[[NR:.+]] : index
// CHECK:   %[[J:.+]] = arith.remui %[[ID]], %[[NR]] : index
// CHECK:   tensor.extract %[[TABLE]][%[[P]], %[[D]], %[[J]]] : tensor<3x64x16xf32>
// CHECK: call @__glint_linear_nk_dx64x40x64_fill_panels(%{{.+}}, %[[TABLE]], %{{.+}}) : (tensor<?x64xf32>, tensor<3x64x16xf32>, f32) -> tensor<?x40xf32>
// CHECK: %[[SHARED:.+]] = ml_program.global_load_const @shared : tensor<64x64xf32>
// CHECK: call @__glint_linear_kn_dx64x64x64_fill(%{{.+}}, %[[SHARED]], %{{.+}})
// CHECK: call @__glint_linear_nk_dx64x64x64_fill(%{{.+}}, %[[SHARED]], %{{.+}})
// CHECK: %[[ADDED:.+]] = ml_program.global_load_const @added : tensor<64x24xf32>
// CHECK: call @__glint_linear_kn_dx64x64x24_fill(%{{.+}}, %[[ADDED]], %{{.+}})
// CHECK-LABEL: func.func private @__glint_linear_nk_dx64x40x64_fill_panels(
// CHECK-SAME: %[[A:[a-z0-9_]+]]: tensor<?x64xf32>, %[[W:[a-z0-9_]+]]: tensor<3x64x16xf32>
// CHECK-NOT: tensor.insert
// CHECK: scf.if
// CHECK:   scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 1)
// CHECK:     vector.transfer_read %[[W]][%{{.+}}, %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<3x64x16xf32>, vector<8xf32>
// CHECK: } else {
// CHECK:   scf.forall (%{{.+}}) in (1)
// CHECK:     scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// CHECK:       scf.if
// CHECK:       scf.for %[[ROW:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// CHECK:       scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (vector<8xf32>, vector<8xf32>)
// CHECK:         vector.transfer_read %[[W]][%{{.+}}, %[[K]], %{{.+}}]
// CHECK:         vector.transfer_read %[[W]][%{{.+}}, %[[K]], %{{.+}}]
// CHECK:         tensor.extract %[[A]][%[[ROW]], %[[K]]]
// CHECK:         math.fma
// CHECK:         math.fma
// CHECK-LABEL: func.func private @__glint_linear_kn_dx64x64x64_fill(

// With stream-panels=2 the few-rows path reads panels 0 and 1 side by side
// (four accumulators per row, columns 0-31 in bounds), then panel 2 alone
// (columns 32-47, the write past column 40 masked). Each panel's row at
// depth k (16 floats: one 64-byte line) is prefetched 2048 bytes ahead, at
// depth min(k + 32, 63), through a read-only buffer view of the panels;
// prefetch-bytes=0 turns that off.
// GROUP-LABEL: func.func private @__glint_linear_nk_dx64x40x64_fill_panels(
// GROUP-SAME: %[[A:[a-z0-9_]+]]: tensor<?x64xf32>, %[[W:[a-z0-9_]+]]: tensor<3x64x16xf32>
// GROUP: scf.forall.in_parallel
// GROUP: } else {
// GROUP: %[[VIEW:.+]] = bufferization.to_buffer %[[W]] read_only : tensor<3x64x16xf32> to memref<3x64x16xf32, strided<[?, ?, ?], offset: ?>>
// GROUP: scf.for %[[ROW:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// GROUP: scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// GROUP: %[[NEXT:.+]] = arith.addi %[[K]], %c32 : index
// GROUP: %[[AHEAD:.+]] = arith.minsi %[[NEXT]], %c63 : index
// GROUP: memref.prefetch %[[VIEW]][%c0, %[[AHEAD]], %c0], read, locality<3>, data
// GROUP: vector.transfer_read %[[W]][%c0, %[[K]], %c0]
// GROUP: vector.transfer_read %[[W]][%c0, %[[K]], %c8]
// GROUP: memref.prefetch %[[VIEW]][%c1, %[[AHEAD]], %c0], read, locality<3>, data
// GROUP: vector.transfer_read %[[W]][%c1, %[[K]], %c0]
// GROUP: vector.transfer_read %[[W]][%c1, %[[K]], %c8]
// GROUP: tensor.extract %[[A]][%[[ROW]], %[[K]]]
// GROUP-COUNT-4: math.fma
// GROUP: vector.transfer_write %{{.+}}, %{{.+}}[%[[ROW]], %c24] {in_bounds = [true]}
// GROUP: scf.for %[[ROW2:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// GROUP: scf.for %[[K2:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (vector<8xf32>, vector<8xf32>)
// GROUP: vector.transfer_read %[[W]][%c2, %[[K2]], %c0]
// GROUP: vector.transfer_read %[[W]][%c2, %[[K2]], %c8]
// GROUP: vector.transfer_write %{{.+}}, %{{.+}}[%[[ROW2]], %c32] {in_bounds = [true]}
// GROUP: vector.transfer_write %{{.+}}, %{{.+}}[%[[ROW2]], %c40] : vector<8xf32>

// Without prepared weights every weight keeps its type and is packed.
// PACKED: ml_program.global private @table(#{{.*}}) : tensor<40x64xf32>{{$}}
// PACKED-NOT: glint.panels
// PACKED: call @__glint_linear_nk_dx64x40x64_fill(
// PACKED-NOT: _panels

ml_program.global private @table(#ml_program.extern : tensor<40x64xf32>) : tensor<40x64xf32>
ml_program.global private @shared(#ml_program.extern : tensor<64x64xf32>) : tensor<64x64xf32>
ml_program.global private @added(#ml_program.extern : tensor<64x24xf32>) : tensor<64x24xf32>
func.func @tied(%ids: tensor<?xindex>, %a: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x40xf32>, tensor<?x64xf32>, tensor<?x24xf32>, tensor<64x24xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %rows = tensor.dim %a, %c0 : tensor<?x64xf32>
  %table = ml_program.global_load_const @table : tensor<40x64xf32>
  %e0 = tensor.empty(%rows) : tensor<?x64xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(m, d) -> (m)>, affine_map<(m, d) -> (m, d)>], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<?xindex>) outs(%e0 : tensor<?x64xf32>) {
  ^bb0(%id: index, %out: f32):
    %d = linalg.index 1 : index
    %v = tensor.extract %table[%id, %d] : tensor<40x64xf32>
    linalg.yield %v : f32
  } -> tensor<?x64xf32>
  %e1 = tensor.empty(%rows) : tensor<?x40xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<?x40xf32>) -> tensor<?x40xf32>
  %logits = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%h, %table : tensor<?x64xf32>, tensor<40x64xf32>) outs(%f1 : tensor<?x40xf32>) -> tensor<?x40xf32>
  %shared = ml_program.global_load_const @shared : tensor<64x64xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %s1 = linalg.matmul ins(%a, %shared : tensor<?x64xf32>, tensor<64x64xf32>) outs(%f2 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %s2 = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] ins(%a, %shared : tensor<?x64xf32>, tensor<64x64xf32>) outs(%f2 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %added = ml_program.global_load_const @added : tensor<64x24xf32>
  %e3 = tensor.empty(%rows) : tensor<?x24xf32>
  %f3 = linalg.fill ins(%zero : f32) outs(%e3 : tensor<?x24xf32>) -> tensor<?x24xf32>
  %p = linalg.matmul ins(%a, %added : tensor<?x64xf32>, tensor<64x24xf32>) outs(%f3 : tensor<?x24xf32>) -> tensor<?x24xf32>
  %twice = arith.addf %added, %added : tensor<64x24xf32>
  return %h, %logits, %s1, %p, %twice : tensor<?x64xf32>, tensor<?x40xf32>, tensor<?x64xf32>, tensor<?x24xf32>, tensor<64x24xf32>
}
