// RUN: glint-opt %s -glint-approximate-math | FileCheck %s

// Tests that exp, tanh and erf on f32 become straight-line polynomial
// arithmetic, with no math call left.
// CHECK-LABEL: func @approximate
// CHECK-NOT: math.exp
// CHECK-NOT: math.tanh
// CHECK-NOT: math.erf
// CHECK: arith.mulf
// CHECK: return
func.func @approximate(%x: f32, %v: vector<8xf32>) -> (f32, f32, vector<8xf32>) {
  %e = math.exp %x : f32
  %t = math.tanh %x : f32
  %r = math.erf %v : vector<8xf32>
  return %e, %t, %r : f32, f32, vector<8xf32>
}
