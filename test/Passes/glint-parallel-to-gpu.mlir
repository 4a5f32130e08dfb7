// RUN: glint-opt %s -glint-parallel-to-gpu -split-input-file -verify-diagnostics | FileCheck %s

// Tests that an outermost parallel loop becomes one launch over all its
// iterations, numbered row-major (the last loop fastest), in blocks of up
// to 256 threads (fewer, down to a warp, to have at least 264 blocks),
// guarded so that an empty loop launches nothing and the last block's
// extra threads do nothing; the inner parallel loop runs in its thread,
// unrolled (8 iterations of one op), and the constants are the kernel's own.
// CHECK-LABEL: func @nest
// CHECK-SAME: (%[[M:.+]]: memref<?x64x8xf32>, %[[N:.+]]: index)
// CHECK: %[[ANY:.+]] = arith.cmpi sgt, %[[TOTAL:.+]], %{{.+}} : index
// CHECK: scf.if %[[ANY]] {
// CHECK-DAG: %[[WARP:.+]] = arith.constant 32 : index
// CHECK-DAG: %[[MIN:.+]] = arith.constant 264 : index
// CHECK-DAG: %[[MAX:.+]] = arith.constant 256 : index
// CHECK: %[[PER:.+]] = arith.ceildivui %[[TOTAL]], %[[MIN]] : index
// CHECK: %[[WARPS:.+]] = arith.ceildivui %[[PER]], %[[WARP]] : index
// CHECK: %[[ROUND:.+]] = arith.muli %[[WARPS]], %[[WARP]] : index
// CHECK: %[[ATLEAST:.+]] = arith.maxui %[[ROUND]], %[[WARP]] : index
// CHECK: %[[THREADS:.+]] = arith.minui %[[MAX]], %[[ATLEAST]] : index
// CHECK: %[[BLOCKS:.+]] = arith.ceildivui %[[TOTAL]], %[[THREADS]] : index
// CHECK: gpu.launch blocks(%[[BX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %[[BLOCKS]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) threads(%[[TX:.+]], %{{.+}}, %{{.+}}) in (%[[SX:.+]] = %[[THREADS]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}})
// CHECK: arith.constant 1.0
// CHECK: %[[FIRST:.+]] = arith.muli %[[BX]], %[[SX]] : index
// CHECK: %[[K:.+]] = arith.addi %[[FIRST]], %[[TX]] : index
// CHECK: %[[IN:.+]] = arith.cmpi ult, %[[K]], %[[TOTAL]] : index
// CHECK: scf.if %[[IN]] {
// CHECK: %[[J:.+]] = arith.remui %[[K]], %{{.+}} : index
// CHECK: %[[REST:.+]] = arith.divui %[[K]], %{{.+}} : index
// CHECK: %[[I:.+]] = arith.remui %[[REST]], %{{.+}} : index
// CHECK-NOT: scf.for
// CHECK-NOT: scf.parallel
// CHECK-COUNT-8: memref.store %{{.+}}, %[[M]][%{{.+}}, %{{.+}}, %{{.+}}]
// CHECK-NOT: memref.store
// CHECK: gpu.terminator
func.func @nest(%m: memref<?x64x8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %x = arith.constant 1.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c64) step (%c1, %c1) {
    scf.parallel (%l) = (%c0) to (%c8) step (%c1) {
      memref.store %x, %m[%i, %j, %l] : memref<?x64x8xf32>
      scf.reduce
    }
    scf.reduce
  }
  return
}

// -----

// Tests that a loop that allocates on the heap is refused, naming it.
func.func @heap(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{cannot run this loop as a GPU kernel: it contains a heap buffer allocated or freed inside the loop}}
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %b = memref.alloc(%n) : memref<?xf32>
    memref.dealloc %b : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

// Tests that a constant buffer is fetched inside the kernel (outlining then
// copies its global into device memory), not captured from the host.
memref.global "private" constant @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
// CHECK-LABEL: func @constant
// CHECK: gpu.launch
// CHECK: %[[T:.+]] = memref.get_global @table : memref<4xf32>
// CHECK: memref.load %[[T]]
func.func @constant(%m: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %t = memref.get_global @table : memref<4xf32>
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %j = arith.andi %i, %c3 : index
    %v = memref.load %t[%j] : memref<4xf32>
    memref.store %v, %m[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
