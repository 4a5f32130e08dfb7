// RUN: glint-opt %s --split-input-file --glint-guard-parallel --canonicalize | FileCheck %s
// RUN: glint-opt %s --split-input-file --glint-guard-parallel=min-argument-bytes=0 --canonicalize | FileCheck %s --check-prefix=NOARGS

// A module one of whose entry points takes min-bytes (2 MiB) of memref
// arguments or more (static extents; dynamic ones count 1) cannot keep them
// in a core's cache between calls (a generation step's weights and states):
// in every function of it, a loop that reads min-argument-bytes (64 KiB)
// of its function's arguments or more runs on every thread, however few
// its operations. @streamed's iterations read 64 bytes of row i of a 4 MiB
// weight each: min(64 x n, 4 MiB) bytes of arguments.
// CHECK-LABEL: func.func @streamed
// CHECK-DAG: %[[ARGMIN:.*]] = arith.constant 65536 : index
// CHECK-DAG: %[[SIZE:.*]] = arith.constant 4194304 : index
// CHECK: %[[BYTES:.*]] = arith.minsi %{{.*}}, %[[SIZE]] : index
// CHECK: %[[STREAMS:.*]] = arith.cmpi sge, %[[BYTES]], %{{.*}} : index
// CHECK: %[[ENOUGH:.*]] = arith.ori %{{.*}}, %[[STREAMS]] : i1
// CHECK: %[[FROMMEMORY:.*]] = arith.cmpi sge, %{{.*}}, %[[ARGMIN]] : index
// CHECK: arith.ori %[[ENOUGH]], %[[FROMMEMORY]] : i1
// CHECK: scf.if
// NOARGS-LABEL: func.func @streamed
// NOARGS-NOT: 65536
// NOARGS: scf.if
func.func @streamed(%n: index, %w: memref<1024x1024xf32>, %out: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = vector.load %w[%i, %c0] : memref<1024x1024xf32>, vector<16xf32>
    vector.store %v, %out[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    scf.reduce
  }
  return
}

// A private function of that module (an outlined product, given a slice of
// the weights): its own arguments count, here a 128 KiB panel.
// CHECK-LABEL: func.func private @product
// CHECK-DAG: %[[ARGMIN:.*]] = arith.constant 65536 : index
// CHECK-DAG: %[[PANEL:.*]] = arith.constant 131072 : index
// CHECK: %[[BYTES:.*]] = arith.minsi %{{.*}}, %[[PANEL]] : index
// CHECK: %[[COLD:.*]] = arith.minsi %[[BYTES]], %[[PANEL]] : index
// CHECK: arith.cmpi sge, %[[COLD]], %[[ARGMIN]] : index
// CHECK: scf.if
func.func private @product(%n: index, %panel: memref<2048x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %scratch = memref.alloc(%n) : memref<?x16xf32>
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = vector.load %panel[%i, %c0] : memref<2048x16xf32>, vector<16xf32>
    vector.store %v, %scratch[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    scf.reduce
  }
  memref.dealloc %scratch : memref<?x16xf32>
  return
}

// -----

// A module whose entry points take less than min-bytes (a tiny model's
// weights stay in the caches): no argument test.
// CHECK-LABEL: func.func @cached
// CHECK-NOT: 65536
// CHECK: scf.if
func.func @cached(%n: index, %w: memref<64x1024xf32>, %out: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = vector.load %w[%i, %c0] : memref<64x1024xf32>, vector<16xf32>
    vector.store %v, %out[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    scf.reduce
  }
  return
}
