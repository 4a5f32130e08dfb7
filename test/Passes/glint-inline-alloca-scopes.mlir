// RUN: glint-opt %s -glint-inline-alloca-scopes -split-input-file | FileCheck %s

// Tests that a scope that allocates nothing is replaced by its body, and its
// results by the values its terminator returned.
// CHECK-LABEL: func @results
// CHECK-SAME: (%[[M:.+]]: memref<?xf32>, %[[I:.+]]: index, %[[X:.+]]: f32)
// CHECK-NOT: memref.alloca_scope
// CHECK: %[[V:.+]] = memref.load %[[M]][%[[I]]] : memref<?xf32>
// CHECK: %[[S:.+]] = arith.addf %[[V]], %[[X]] : f32
// CHECK: memref.store %[[S]], %[[M]][%[[I]]] : memref<?xf32>
// CHECK-NOT: memref.alloca_scope
// CHECK: return %[[S]] : f32
func.func @results(%m: memref<?xf32>, %i: index, %x: f32) -> f32 {
  %r = memref.alloca_scope -> (f32) {
    %v = memref.load %m[%i] : memref<?xf32>
    %s = arith.addf %v, %x : f32
    memref.store %s, %m[%i] : memref<?xf32>
    memref.alloca_scope.return %s : f32
  }
  return %r : f32
}

// -----

// Tests that a scope without results in a loop body (what
// convert-scf-to-openmp makes of a parallel loop's body) is inlined into the
// loop.
// CHECK-LABEL: func @loop_body
// CHECK-SAME: (%[[M:.+]]: memref<?xf32>, %[[N:.+]]: index, %[[ONE:.+]]: index, %[[X:.+]]: f32)
// CHECK: scf.for %[[I:.+]] = %[[ONE]] to %[[N]] step %[[ONE]] {
// CHECK-NOT: memref.alloca_scope
// CHECK-NEXT: memref.store %[[X]], %[[M]][%[[I]]] : memref<?xf32>
// CHECK-NEXT: }
// CHECK-NOT: memref.alloca_scope
// CHECK: return
func.func @loop_body(%m: memref<?xf32>, %n: index, %one: index, %x: f32) {
  scf.for %i = %one to %n step %one {
    memref.alloca_scope {
      memref.store %x, %m[%i] : memref<?xf32>
    }
  }
  return
}

// -----

// Tests that a scope holding an alloca is left alone.
// CHECK-LABEL: func @allocates
// CHECK: memref.alloca_scope
// CHECK-NEXT: %[[A:.+]] = memref.alloca() : memref<1xf32>
// CHECK-NEXT: memref.store %{{.+}}, %[[A]]
func.func @allocates(%m: memref<?xf32>, %i: index, %x: f32) {
  memref.alloca_scope {
    %a = memref.alloca() : memref<1xf32>
    memref.store %x, %a[%i] : memref<1xf32>
    %v = memref.load %a[%i] : memref<1xf32>
    memref.store %v, %m[%i] : memref<?xf32>
  }
  return
}

// -----

// Tests that an alloca in a region nested in the scope also keeps it.
// CHECK-LABEL: func @nested_alloca
// CHECK: memref.alloca_scope
// CHECK-NEXT: scf.for
// CHECK-NEXT: memref.alloca() : memref<1xf32>
func.func @nested_alloca(%m: memref<?xf32>, %n: index, %one: index, %x: f32) {
  memref.alloca_scope {
    scf.for %i = %one to %n step %one {
      %a = memref.alloca() : memref<1xf32>
      memref.store %x, %a[%one] : memref<1xf32>
      %v = memref.load %a[%one] : memref<1xf32>
      memref.store %v, %m[%i] : memref<?xf32>
    }
  }
  return
}
