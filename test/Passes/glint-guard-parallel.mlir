// RUN: glint-opt %s --glint-guard-parallel --canonicalize | FileCheck %s
// RUN: glint-opt %s --glint-guard-parallel=min-work=5 | FileCheck %s --check-prefix=MIN
// RUN: glint-opt %s --glint-guard-parallel=min-bytes=0 --canonicalize | FileCheck %s --check-prefix=NOBYTES

// Each scf.parallel goes behind an scf.if: its work (iterations x
// operations per iteration, 4 per load, inner loops by their trip counts,
// bounds that depend on an outer induction variable by an upper bound)
// against min-work, or the bytes its loads read (counted the same way, and
// at most the sizes of the memrefs they read) against min-bytes; at least
// two iterations and more than one thread; the else branch is the same loop
// nest as scf.for loops.

// CHECK: func.func private @omp_get_max_threads() -> i32

// A loop over n tiles of 32, each running over min(m - 32 i, 32) columns,
// at most min(m, 32) (m - 32 i is at most m): work = max(n, 0) x
// (max(min(m, 32), 0) x 8 + 5): per column four operations and a load,
// per tile three, the loop and the terminator. Bytes read = max(n, 0) x
// max(min(m, 32), 0) x 4 (one f32 per column), at most the buffer's 4 x its
// size.
// CHECK-LABEL: func.func @tiles
// CHECK-SAME: (%[[N:[^:]*]]: index, %[[M:[^:]*]]: index, %[[BUF:[^:]*]]: memref<?xf32>)
// CHECK-DAG: %[[LIMIT:.*]] = arith.constant 1600000 : index
// CHECK-DAG: %[[MINBYTES:.*]] = arith.constant 2097152 : index
// CHECK-DAG: %[[FOUR:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[EIGHT:.*]] = arith.constant 8 : index
// CHECK-DAG: %[[FIVE:.*]] = arith.constant 5 : index
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i32
// CHECK: %[[THREADS:.*]] = call @omp_get_max_threads() : () -> i32
// CHECK: %[[ITER:.*]] = arith.maxsi %[[N]], %{{.*}} : index
// CHECK: %[[COLS:.*]] = arith.minsi %[[M]], %{{.*}} : index
// CHECK: %[[TRIPS:.*]] = arith.maxsi %[[COLS]], %{{.*}} : index
// CHECK: %[[INNER:.*]] = arith.muli %[[TRIPS]], %[[EIGHT]] : index
// CHECK: %[[READ:.*]] = arith.muli %[[TRIPS]], %[[FOUR]] : index
// CHECK: %[[BODY:.*]] = arith.addi %[[INNER]], %[[FIVE]] : index
// CHECK: %[[WORK:.*]] = arith.muli %[[ITER]], %[[BODY]] : index
// CHECK: %[[BIG:.*]] = arith.cmpi sge, %[[WORK]], %[[LIMIT]] : index
// CHECK: %[[LOADED:.*]] = arith.muli %[[ITER]], %[[READ]] : index
// CHECK: %[[SIZE:.*]] = memref.dim %[[BUF]], %{{.*}} : memref<?xf32>
// CHECK: %[[DISTINCT:.*]] = arith.muli %[[SIZE]], %[[FOUR]] : index
// CHECK: %[[BYTES:.*]] = arith.minsi %[[LOADED]], %[[DISTINCT]] : index
// CHECK: %[[STREAMS:.*]] = arith.cmpi sge, %[[BYTES]], %[[MINBYTES]] : index
// CHECK: %[[ENOUGH:.*]] = arith.ori %[[BIG]], %[[STREAMS]] : i1
// CHECK: %[[SEVERAL:.*]] = arith.cmpi sge, %[[ITER]], %[[TWO]] : index
// CHECK: %[[MANY:.*]] = arith.cmpi sgt, %[[THREADS]], %[[ONE]] : i32
// CHECK: %[[BOTH:.*]] = arith.andi %[[ENOUGH]], %[[SEVERAL]] : i1
// CHECK: %[[IF:.*]] = arith.andi %[[BOTH]], %[[MANY]] : i1
// CHECK: scf.if %[[IF]] {
// CHECK-NEXT: scf.parallel (%{{.*}}) = (%{{.*}}) to (%[[N]])
// CHECK: memref.store
// CHECK: } else {
// CHECK-NEXT: scf.for %[[I:.*]] = %{{.*}} to %[[N]] step %{{.*}} {
// CHECK-NEXT: arith.muli %[[I]]
// CHECK: scf.for
// CHECK: memref.load %[[BUF]]
// CHECK: memref.store
// CHECK-NOT: scf.parallel
// CHECK: return
// MIN-LABEL: func.func @tiles
// MIN: arith.constant 5 : index
// MIN: scf.if
// MIN: scf.parallel
// With min-bytes=0 only the operations count.
// NOBYTES-LABEL: func.func @tiles
// NOBYTES: %[[BIG:.*]] = arith.cmpi sge, %{{.*}}, %{{.*}} : index
// NOBYTES-NOT: arith.ori
// NOBYTES: arith.andi %[[BIG]], %{{.*}} : i1
// NOBYTES: scf.if
func.func @tiles(%n: index, %m: index, %buf: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %f = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %start = arith.muli %i, %c32 : index
    %left = arith.subi %m, %start : index
    %cols = arith.minsi %left, %c32 : index
    scf.for %j = %c0 to %cols step %c1 {
      %k = arith.addi %start, %j : index
      %x = memref.load %buf[%k] : memref<?xf32>
      %y = arith.addf %x, %f : f32
      memref.store %y, %buf[%k] : memref<?xf32>
    }
    scf.reduce
  }
  return
}

// A bound it cannot follow (a loaded value): the loop is left alone.
// CHECK-LABEL: func.func @unknown
// CHECK-NOT: scf.if
// CHECK-NOT: call
// CHECK: scf.parallel
// MIN-LABEL: func.func @unknown
// MIN-NOT: scf.if
// MIN: scf.parallel
func.func @unknown(%n: index, %sizes: memref<?xindex>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %len = memref.load %sizes[%i] : memref<?xindex>
    scf.for %j = %c0 to %len step %c1 {
      %x = memref.load %sizes[%j] : memref<?xindex>
      memref.store %x, %sizes[%i] : memref<?xindex>
    }
    scf.reduce
  }
  return
}

// A body that allocates on the stack runs in an alloca_scope per
// iteration in the serial loops too (the OpenMP lowering scopes each
// iteration the same way); the two dimensions become two loops. (Checked
// without --canonicalize, which inlines the scope into scf.for, itself an
// allocation scope in MLIR.)
// MIN-LABEL: func.func @scoped
// MIN: scf.if
// MIN: scf.parallel
// MIN: } else {
// MIN-NEXT: scf.for
// MIN-NEXT: scf.for
// MIN-NEXT: memref.alloca_scope {
// MIN-NEXT: memref.alloca() : memref<16xf32>
func.func @scoped(%n: index, %buf: memref<?x4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c4) step (%c1, %c1) {
    %tmp = memref.alloca() : memref<16xf32>
    %x = memref.load %buf[%i, %j] : memref<?x4xf32>
    memref.store %x, %tmp[%c0] : memref<16xf32>
    %y = memref.load %tmp[%c0] : memref<16xf32>
    memref.store %y, %buf[%i, %j] : memref<?x4xf32>
    scf.reduce
  }
  return
}

// A vector load reads its vector's bytes: 64 for vector<16xf32>, so 2 MiB
// at 32768 iterations, well below min-work's operations (32768 x 7: the
// load 4, the add, the store and the terminator 1 each).
// CHECK-LABEL: func.func @vectors
// CHECK-DAG: %[[SIXTYFOUR:.*]] = arith.constant 64 : index
// CHECK: %[[LOADED:.*]] = arith.muli %{{.*}}, %[[SIXTYFOUR]] : index
// CHECK: %[[BYTES:.*]] = arith.minsi %[[LOADED]], %{{.*}} : index
// CHECK: %[[STREAMS:.*]] = arith.cmpi sge, %[[BYTES]], %{{.*}} : index
// CHECK: arith.ori %{{.*}}, %[[STREAMS]] : i1
// CHECK: scf.if
func.func @vectors(%n: index, %buf: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = vector.load %buf[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    %w = arith.addf %v, %v : vector<16xf32>
    vector.store %w, %buf[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    scf.reduce
  }
  return
}

// A small operand read again by every iteration (a weight panel re-read by
// every row tile) counts once: each iteration loads 64 bytes of a 1 KiB
// table (through a subview: its source counts), 64 bytes of its own scratch
// (an alloca: loaded, but no distinct bytes) and 64 bytes of its own row of
// the [n, 16] buffer, so the bytes are min(192 x max(n, 0), 1024 + 64 n):
// the table's size is static, the buffer's read with memref.dim.
// CHECK-LABEL: func.func @reread
// CHECK-SAME: (%[[N:[^:]*]]: index, %[[TABLE:[^:]*]]: memref<16x16xf32>, %[[ROWS:[^:]*]]: memref<?x16xf32>)
// CHECK-DAG: %[[C192:.*]] = arith.constant 192 : index
// CHECK-DAG: %[[C64:.*]] = arith.constant 64 : index
// CHECK-DAG: %[[C1024:.*]] = arith.constant 1024 : index
// CHECK: %[[ITER:.*]] = arith.maxsi %[[N]], %{{.*}} : index
// CHECK: %[[LOADED:.*]] = arith.muli %[[ITER]], %[[C192]] : index
// CHECK: %[[DIM:.*]] = memref.dim %[[ROWS]], %{{.*}} : memref<?x16xf32>
// CHECK: %[[ROWBYTES:.*]] = arith.muli %[[DIM]], %[[C64]] : index
// CHECK: %[[DISTINCT:.*]] = arith.addi %[[ROWBYTES]], %[[C1024]] : index
// CHECK: %[[BYTES:.*]] = arith.minsi %[[LOADED]], %[[DISTINCT]] : index
// CHECK: arith.cmpi sge, %[[BYTES]], %{{.*}} : index
// CHECK: scf.if
func.func @reread(%n: index, %table: memref<16x16xf32>, %rows: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %t = memref.subview %table[%c3, 0] [1, 16] [1, 1] : memref<16x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    %scratch = memref.alloca() : memref<16xf32>
    %a = vector.load %t[%c0] : memref<16xf32, strided<[1], offset: ?>>, vector<16xf32>
    vector.store %a, %scratch[%c0] : memref<16xf32>, vector<16xf32>
    %s = vector.load %scratch[%c0] : memref<16xf32>, vector<16xf32>
    %r = vector.load %rows[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    %w = arith.addf %s, %r : vector<16xf32>
    vector.store %w, %rows[%i, %c0] : memref<?x16xf32>, vector<16xf32>
    scf.reduce
  }
  return
}

