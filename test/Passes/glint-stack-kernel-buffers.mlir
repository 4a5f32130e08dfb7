// RUN: glint-opt %s -glint-stack-kernel-buffers | FileCheck %s

// Tests that the small fixed buffers of a parallel loop's body, at any
// depth, go on the stack at the start of the outermost body, and that
// dynamic, large and loop-carried buffers stay where they are.
// CHECK-LABEL: func @buffers
// CHECK: scf.forall
// CHECK-DAG: memref.alloca() {alignment = 64 : i64} : memref<16xf32>
// CHECK-DAG: memref.alloca() : memref<4x4xf32>
// CHECK: memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: memref.alloc() : memref<2048xf32>
// CHECK: scf.for
// CHECK-NOT: memref.alloca
// CHECK: memref.alloc() : memref<8xf32>
// CHECK: scf.yield
func.func @buffers(%n: index, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %x = arith.constant 1.0 : f32
  scf.forall (%i) in (%n) {
    %small = memref.alloc() {alignment = 64 : i64} : memref<16xf32>
    %dynamic = memref.alloc(%n) : memref<?xf32>
    %large = memref.alloc() : memref<2048xf32>
    memref.store %x, %small[%c0] : memref<16xf32>
    %init = memref.alloc() : memref<8xf32>
    %r = scf.for %t = %c0 to %n step %c1 iter_args(%carried = %init) -> (memref<8xf32>) {
      %step = memref.alloc() : memref<4x4xf32>
      memref.store %x, %step[%c0, %c0] : memref<4x4xf32>
      %next = memref.alloc() : memref<8xf32>
      scf.yield %next : memref<8xf32>
    }
  }
  return
}
