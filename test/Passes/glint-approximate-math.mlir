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

// Tests that exp on f32 vectors is glint's 13-instruction form: a clamp to
// [-126 ln 2, 127 ln 2], n = round(x log2 e) by the 1.5 * 2^23 + 127 shifter
// (0x4B40007F), a two-step Cody-Waite reduction, a degree-5 polynomial and
// the scale 2^n built from the shifter's low bits.
// CHECK-LABEL: func @exp_vector
// CHECK-SAME: (%[[X:.+]]: vector<16xf32>)
// CHECK-DAG: %[[SHIFTER:.+]] = arith.constant dense<0x4B40007F> : vector<16xf32>
// CHECK-DAG: %[[LOG2E:.+]] = arith.constant dense<1.44269502> : vector<16xf32>
// CHECK-DAG: %[[LO:.+]] = arith.constant dense<-87.336{{[0-9]+}}> : vector<16xf32>
// CHECK-DAG: %[[HI:.+]] = arith.constant dense<88.029{{[0-9]+}}> : vector<16xf32>
// CHECK-DAG: %[[C23:.+]] = arith.constant dense<23> : vector<16xi32>
// CHECK-NOT: math.exp
// CHECK: %[[GE:.+]] = arith.cmpf uge, %[[X]], %[[LO]] : vector<16xf32>
// CHECK: %[[X1:.+]] = arith.select %[[GE]], %[[X]], %[[LO]]
// CHECK: %[[LE:.+]] = arith.cmpf ule, %[[X1]], %[[HI]] : vector<16xf32>
// CHECK: %[[X2:.+]] = arith.select %[[LE]], %[[X1]], %[[HI]]
// CHECK: %[[T:.+]] = math.fma %[[X2]], %[[LOG2E]], %[[SHIFTER]] : vector<16xf32>
// CHECK: %[[N:.+]] = arith.subf %[[T]], %[[SHIFTER]] : vector<16xf32>
// CHECK: %[[R0:.+]] = math.fma %[[N]], %{{.+}}, %[[X2]] : vector<16xf32>
// CHECK: %[[R:.+]] = math.fma %[[N]], %{{.+}}, %[[R0]] : vector<16xf32>
// CHECK-COUNT-5: math.fma %{{.+}}, %[[R]], %{{.+}} : vector<16xf32>
// CHECK: %[[BITS:.+]] = arith.bitcast %[[T]] : vector<16xf32> to vector<16xi32>
// CHECK: %[[SHIFTED:.+]] = arith.shli %[[BITS]], %[[C23]] : vector<16xi32>
// CHECK: %[[SCALE:.+]] = arith.bitcast %[[SHIFTED]] : vector<16xi32> to vector<16xf32>
// CHECK: %[[E:.+]] = arith.mulf %{{.+}}, %[[SCALE]] : vector<16xf32>
// CHECK: return %[[E]] : vector<16xf32>
func.func @exp_vector(%x: vector<16xf32>) -> vector<16xf32> {
  %e = math.exp %x : vector<16xf32>
  return %e : vector<16xf32>
}
