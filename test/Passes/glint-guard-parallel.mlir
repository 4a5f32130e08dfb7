// RUN: glint-opt %s --glint-guard-parallel --canonicalize | FileCheck %s
// RUN: glint-opt %s --glint-guard-parallel=min-work=5 | FileCheck %s --check-prefix=MIN

// Each omp.parallel gets an `if`: its work (iterations x operations per
// iteration, inner loops by their trip counts, bounds that depend on an
// outer induction variable by an upper bound) against min-work, and at
// least two iterations.

// A loop over n tiles of 32, each running over min(m - 32 i, 32) columns,
// at most min(m, 32) (m - 32 i is at most m): work = max(n, 0) x
// (max(min(m, 32), 0) x 5 + 5), 5 operations per column and per tile.
// CHECK-LABEL: func.func @tiles
// CHECK-SAME: (%[[N:[^:]*]]: index, %[[M:[^:]*]]: index,
// CHECK-DAG: %[[LIMIT:.*]] = arith.constant 2000 : index
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[FIVE:.*]] = arith.constant 5 : index
// CHECK: %[[ITER:.*]] = arith.maxsi %[[N]], %{{.*}} : index
// CHECK: %[[COLS:.*]] = arith.minsi %[[M]], %{{.*}} : index
// CHECK: %[[TRIPS:.*]] = arith.maxsi %[[COLS]], %{{.*}} : index
// CHECK: %[[INNER:.*]] = arith.muli %[[TRIPS]], %[[FIVE]] : index
// CHECK: %[[BODY:.*]] = arith.addi %[[INNER]], %[[FIVE]] : index
// CHECK: %[[WORK:.*]] = arith.muli %[[ITER]], %[[BODY]] : index
// CHECK: %[[BIG:.*]] = arith.cmpi sge, %[[WORK]], %[[LIMIT]] : index
// CHECK: %[[SEVERAL:.*]] = arith.cmpi sge, %[[ITER]], %[[TWO]] : index
// CHECK: %[[IF:.*]] = arith.andi %[[BIG]], %[[SEVERAL]] : i1
// CHECK: omp.parallel if(%[[IF]])
// MIN-LABEL: func.func @tiles
// MIN: arith.constant 5 : index
// MIN: omp.parallel if(
func.func @tiles(%n: index, %m: index, %buf: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %f = arith.constant 1.0 : f32
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%n) step (%c1) {
        %start = arith.muli %i, %c32 : index
        %left = arith.subi %m, %start : index
        %cols = arith.minsi %left, %c32 : index
        scf.for %j = %c0 to %cols step %c1 {
          %k = arith.addi %start, %j : index
          %x = memref.load %buf[%k] : memref<?xf32>
          %y = arith.addf %x, %f : f32
          memref.store %y, %buf[%k] : memref<?xf32>
        }
        omp.yield
      }
    }
    omp.terminator
  }
  return
}

// A bound it cannot follow (a loaded value): the region is left alone.
// CHECK-LABEL: func.func @unknown
// CHECK: omp.parallel {
// MIN-LABEL: func.func @unknown
// MIN: omp.parallel {
func.func @unknown(%n: index, %sizes: memref<?xindex>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%n) step (%c1) {
        %len = memref.load %sizes[%i] : memref<?xindex>
        scf.for %j = %c0 to %len step %c1 {
          %x = memref.load %sizes[%j] : memref<?xindex>
          memref.store %x, %sizes[%i] : memref<?xindex>
        }
        omp.yield
      }
    }
    omp.terminator
  }
  return
}
