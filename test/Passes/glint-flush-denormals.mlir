// RUN: glint-opt %s -glint-flush-denormals | FileCheck %s

// Tests that the entry point (public, with a body) and the OpenMP region's
// body are bracketed by the runtime's calls, the region's own saved modes
// restored before its terminator and the entry's before each return; a
// private helper and a declaration are left alone, and the two runtime
// functions are declared once.
// CHECK-DAG: func.func private @glint_denormals_off() -> i32
// CHECK-DAG: func.func private @glint_denormals_restore(i32)
// CHECK-LABEL: func.func private @helper(
// CHECK-NOT: glint_denormals
// CHECK: return
// CHECK-LABEL: func.func @forward(
// CHECK-NEXT: %[[SAVED:.+]] = call @glint_denormals_off() : () -> i32
// CHECK: omp.parallel {
// CHECK-NEXT: %[[INNER:.+]] = func.call @glint_denormals_off() : () -> i32
// CHECK: memref.store
// CHECK: func.call @glint_denormals_restore(%[[INNER]]) : (i32) -> ()
// CHECK-NEXT: omp.terminator
// CHECK: call @glint_denormals_restore(%[[SAVED]]) : (i32) -> ()
// CHECK-NEXT: return
module {
  func.func private @external(f32) -> f32
  func.func private @helper(%x: f32) -> f32 {
    %y = arith.mulf %x, %x : f32
    return %y : f32
  }
  func.func @forward(%m: memref<4xf32>, %x: f32) -> f32 {
    omp.parallel {
      %c0 = arith.constant 0 : index
      memref.store %x, %m[%c0] : memref<4xf32>
      omp.terminator
    }
    %y = call @helper(%x) : (f32) -> f32
    return %y : f32
  }
}
