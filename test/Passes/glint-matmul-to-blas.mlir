// RUN: glint-opt %s -glint-matmul-to-blas | FileCheck %s

// Tests that an f32 product with B read as [n, k] (glint.linear's form)
// calls the runtime's cuBLAS entry with transposed = 1, the sizes, and each
// buffer's address (aligned pointer + offset * 4 bytes) and strides, and
// keeps the product as the fallback when the call returns 0.
// CHECK: func.func private @glint_cuda_sgemm(index, index, index, index, index, index, index, index, index, index, index, index, index) -> i32
// CHECK-LABEL: func @linear
// CHECK-SAME: (%[[A:.+]]: memref<?x32xf32>, %[[W:.+]]: memref<24x32xf32>, %[[C:.+]]: memref<?x24xf32>)
// CHECK: %[[M:.+]] = memref.dim %[[C]], %c0
// CHECK: %[[N:.+]] = memref.dim %[[C]], %c1
// CHECK: %[[K:.+]] = memref.dim %[[A]], %c1
// CHECK: %[[T:.+]] = arith.constant 1 : index
// CHECK-NEXT: %[[BASE:.+]], %[[OFF:.+]], %{{.+}}:2, %[[STRIDES:.+]]:2 = memref.extract_strided_metadata %[[A]]
// CHECK: %[[PTR:.+]] = memref.extract_aligned_pointer_as_index %[[A]]
// CHECK: %[[BYTES:.+]] = arith.muli %[[OFF]], %c4
// CHECK: %[[ADDR:.+]] = arith.addi %[[PTR]], %[[BYTES]]
// CHECK: %[[DONE:.+]] = call @glint_cuda_sgemm(%[[T]], %[[M]], %[[N]], %[[K]], %[[ADDR]], %[[STRIDES]]#0, %[[STRIDES]]#1,
// CHECK: %[[FALLBACK:.+]] = arith.cmpi eq, %[[DONE]], %c0_i32
// CHECK: scf.if %[[FALLBACK]] {
// CHECK-NEXT: linalg.matmul
#a = affine_map<(m, n, k) -> (m, k)>
#b = affine_map<(m, n, k) -> (n, k)>
#c = affine_map<(m, n, k) -> (m, n)>
func.func @linear(%a: memref<?x32xf32>, %w: memref<24x32xf32>, %c: memref<?x24xf32>) {
  linalg.matmul indexing_maps = [#a, #b, #c] ins(%a, %w : memref<?x32xf32>, memref<24x32xf32>) outs(%c : memref<?x24xf32>)
  return
}

// Tests that B read as [k, n] gives transposed = 0, and that products the
// runtime cannot take (f64) stay as they are.
// CHECK-LABEL: func @plain
// CHECK: memref.dim %arg0
// CHECK-NEXT: %[[T0:.+]] = arith.constant 0 : index
// CHECK: call @glint_cuda_sgemm(%[[T0]],
// CHECK-LABEL: func @double
// CHECK-NOT: glint_cuda_sgemm
// CHECK: linalg.matmul
func.func @plain(%a: memref<8x4xf32>, %b: memref<4x6xf32>, %c: memref<8x6xf32>) {
  linalg.matmul ins(%a, %b : memref<8x4xf32>, memref<4x6xf32>) outs(%c : memref<8x6xf32>)
  return
}
func.func @double(%a: memref<8x4xf64>, %b: memref<4x6xf64>, %c: memref<8x6xf64>) {
  linalg.matmul ins(%a, %b : memref<8x4xf64>, memref<4x6xf64>) outs(%c : memref<8x6xf64>)
  return
}
