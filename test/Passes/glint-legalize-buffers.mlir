// RUN: glint-opt %s -glint-legalize-buffers -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-legalize-buffers=contiguous-as-memcpy -split-input-file | FileCheck %s --check-prefix=MEMCPY
// RUN: glint-opt %s -glint-legalize-buffers='copy-rows-as-vectors vector-width=16' -split-input-file | FileCheck %s --check-prefix=ROWS

// Tests that an expand_shape splitting one contiguous dim into two dynamic
// ones becomes a reinterpret_cast with row-major strides.
// CHECK-LABEL: func @expand
// CHECK-SAME: (%[[M:.+]]: memref<?x96xf32>, %[[B:.+]]: index, %[[L:.+]]: index)
// CHECK: %[[S:.+]] = arith.muli %[[L]], %{{.+}} : index
// CHECK: memref.reinterpret_cast %[[M]] to offset: [0], sizes: [%[[B]], %[[L]], 96], strides: [%[[S]], 96, 1]
// CHECK-NOT: memref.expand_shape
func.func @expand(%m: memref<?x96xf32>, %b: index, %l: index) -> memref<?x?x96xf32> {
  %e = memref.expand_shape %m [[0, 1], [2]] output_shape [%b, %l, 96] : memref<?x96xf32> into memref<?x?x96xf32>
  return %e : memref<?x?x96xf32>
}

// -----

// Tests that an expand_shape of a strided view is left alone.
// CHECK-LABEL: func @strided
// CHECK: memref.expand_shape
func.func @strided(%m: memref<?x8xf32, strided<[16, 1]>>, %b: index) -> memref<?x2x4xf32, strided<[16, 4, 1]>> {
  %e = memref.expand_shape %m [[0], [1, 2]] output_shape [%b, 2, 4] : memref<?x8xf32, strided<[16, 1]>> into memref<?x2x4xf32, strided<[16, 4, 1]>>
  return %e : memref<?x2x4xf32, strided<[16, 4, 1]>>
}

// -----

// Tests that memref.copy becomes linalg.copy (plain loops later, no runtime
// library call).
// CHECK-LABEL: func @copy
// CHECK: linalg.copy ins(%{{.+}} : memref<?xf32, strided<[2]>>) outs(%{{.+}} : memref<?xf32>)
// CHECK-NOT: memref.copy
func.func @copy(%a: memref<?xf32, strided<[2]>>, %b: memref<?xf32>) {
  memref.copy %a, %b : memref<?xf32, strided<[2]>> to memref<?xf32>
  return
}

// -----

// Tests that with contiguous-as-memcpy a copy between two contiguous buffers
// (identity layout, or a static contiguous row-major view with an offset)
// stays memref.copy (llvm.memcpy later), while a strided or empty strided
// one still becomes linalg.copy (MemRefToLLVM would call memrefCopy).
// MEMCPY-LABEL: func @copies
// MEMCPY-NEXT: memref.copy %{{.+}}, %{{.+}} : memref<?x32xf32> to memref<?x32xf32>
// MEMCPY-NEXT: memref.copy %{{.+}}, %{{.+}} : memref<4x8xf32, strided<[8, 1], offset: 16>> to memref<4x8xf32>
// MEMCPY-NEXT: linalg.copy ins(%{{.+}} : memref<?xf32, strided<[2]>>) outs(%{{.+}} : memref<?xf32>)
// MEMCPY-NEXT: linalg.copy ins(%{{.+}} : memref<0x8xf32, strided<[8, 1], offset: 16>>) outs(%{{.+}} : memref<0x8xf32>)
// MEMCPY-NEXT: return
func.func @copies(%a: memref<?x32xf32>, %b: memref<?x32xf32>,
                  %c: memref<4x8xf32, strided<[8, 1], offset: 16>>, %d: memref<4x8xf32>,
                  %e: memref<?xf32, strided<[2]>>, %f: memref<?xf32>,
                  %g: memref<0x8xf32, strided<[8, 1], offset: 16>>, %h: memref<0x8xf32>) {
  memref.copy %a, %b : memref<?x32xf32> to memref<?x32xf32>
  memref.copy %c, %d : memref<4x8xf32, strided<[8, 1], offset: 16>> to memref<4x8xf32>
  memref.copy %e, %f : memref<?xf32, strided<[2]>> to memref<?xf32>
  memref.copy %g, %h : memref<0x8xf32, strided<[8, 1], offset: 16>> to memref<0x8xf32>
  return
}

// -----

// Tests that with copy-rows-as-vectors a copy between views whose rows are
// contiguous (a slice of a wider buffer into a shifted view) becomes loops
// over the outer dimensions moving each row by vector transfers of 16 lanes,
// in bounds when the row is a multiple of 16 floats, masked otherwise;
// a copy whose rows are strided still becomes linalg.copy.
// ROWS-LABEL: func @rows
// ROWS-SAME: (%[[A:[a-z0-9_]+]]: memref<?x?x32xf32, strided<[?, 160, 1], offset: 32>>, %[[B:[a-z0-9_]+]]: memref<?x?x32xf32, strided<[?, 32, 1], offset: 32>>
// ROWS: scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// ROWS:   scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// ROWS:     scf.for %[[K:.+]] = %{{.+}} to %{{.+}} step %[[C16:.+]] {
// ROWS:       %[[V:.+]] = vector.transfer_read %[[A]][%[[I]], %[[J]], %[[K]]], %{{.+}} {in_bounds = [true]} : memref<?x?x32xf32, strided<[?, 160, 1], offset: 32>>, vector<16xf32>
// ROWS:       vector.transfer_write %[[V]], %[[B]][%[[I]], %[[J]], %[[K]]] {in_bounds = [true]} : vector<16xf32>, memref<?x?x32xf32, strided<[?, 32, 1], offset: 32>>
// ROWS: vector.transfer_read %{{.+}} : memref<?x20xf32, strided<[?, 1], offset: ?>>, vector<16xf32>
// ROWS-NOT: in_bounds
// ROWS: linalg.copy ins(%{{.+}} : memref<?xf32, strided<[2]>>)
func.func @rows(%a: memref<?x?x32xf32, strided<[?, 160, 1], offset: 32>>,
                %b: memref<?x?x32xf32, strided<[?, 32, 1], offset: 32>>,
                %c: memref<?x20xf32, strided<[?, 1], offset: ?>>, %d: memref<?x20xf32>,
                %e: memref<?xf32, strided<[2]>>, %f: memref<?xf32>) {
  memref.copy %a, %b : memref<?x?x32xf32, strided<[?, 160, 1], offset: 32>> to memref<?x?x32xf32, strided<[?, 32, 1], offset: 32>>
  memref.copy %c, %d : memref<?x20xf32, strided<[?, 1], offset: ?>> to memref<?x20xf32>
  memref.copy %e, %f : memref<?xf32, strided<[2]>> to memref<?xf32>
  return
}
