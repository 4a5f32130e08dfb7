// RUN: glint-opt %s -glint-approximate-math | FileCheck %s
// RUN: glint-opt %s -glint-approximate-math=avx512 | FileCheck %s --check-prefix=AVX512

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

// Tests that exp2 on f32 vectors is n = round(y) by the shifter, the
// degree-5 polynomial in y - n and the scale from the shifter's bits, with
// a clamp to [-126, 127] (only the lower bound under fastmath<ninf>, where
// the exponent field would wrap); with AVX-512, vrndscaleps (math.roundeven)
// and vscalefps, whose LLVM intrinsic takes (a, b, passthrough, mask,
// rounding) and which needs no clamp for finite inputs.
// CHECK-LABEL: func @exp2_vector
// CHECK-SAME: (%[[Y:.+]]: vector<16xf32>, %[[F:.+]]: vector<16xf32>)
// CHECK-NOT: math.exp2
// CHECK: arith.cmpf uge, %[[Y]], %{{.+}} : vector<16xf32>
// CHECK: arith.cmpf ule
// CHECK: arith.shli
// CHECK: arith.mulf
// CHECK: %[[FGE:.+]] = arith.cmpf uge, %[[F]], %{{.+}} : vector<16xf32>
// CHECK: %[[FY:.+]] = arith.select %[[FGE]], %[[F]], %{{.+}}
// CHECK-NOT: arith.cmpf
// CHECK: %[[T:.+]] = arith.addf %[[FY]], %[[SHIFTER:.+]] : vector<16xf32>
// CHECK: %[[N:.+]] = arith.subf %[[T]], %[[SHIFTER]] : vector<16xf32>
// CHECK: %[[FR:.+]] = arith.subf %[[FY]], %[[N]] : vector<16xf32>
// CHECK-COUNT-5: math.fma %{{.+}}, %[[FR]], %{{.+}} : vector<16xf32>
// CHECK: arith.bitcast %[[T]] : vector<16xf32> to vector<16xi32>
// CHECK: return
// AVX512-LABEL: func @exp2_vector
// AVX512-SAME: (%[[Y:.+]]: vector<16xf32>, %[[F:.+]]: vector<16xf32>)
// AVX512-NOT: math.exp2
// AVX512: arith.cmpf uge, %[[Y]], %{{.+}} : vector<16xf32>
// AVX512: arith.cmpf ule
// AVX512: math.roundeven
// AVX512: llvm.call_intrinsic "llvm.x86.avx512.mask.scalef.ps.512"
// AVX512-NOT: arith.cmpf
// AVX512: %[[N:.+]] = math.roundeven %[[F]] : vector<16xf32>
// AVX512: %[[FR:.+]] = arith.subf %[[F]], %[[N]] : vector<16xf32>
// AVX512-COUNT-4: math.fma %{{.+}}, %[[FR]], %{{.+}} : vector<16xf32>
// AVX512: %[[P:.+]] = math.fma %{{.+}}, %[[FR]], %{{.+}} : vector<16xf32>
// AVX512: %[[E:.+]] = llvm.call_intrinsic "llvm.x86.avx512.mask.scalef.ps.512"(%[[P]], %[[N]], %[[P]], %{{.+}}, %{{.+}}) : (vector<16xf32>, vector<16xf32>, vector<16xf32>, i16, i32) -> vector<16xf32>
// AVX512: return %{{.+}}, %[[E]]
func.func @exp2_vector(%y: vector<16xf32>, %f: vector<16xf32>)
    -> (vector<16xf32>, vector<16xf32>) {
  %e = math.exp2 %y : vector<16xf32>
  %g = math.exp2 %f fastmath<ninf> : vector<16xf32>
  return %e, %g : vector<16xf32>, vector<16xf32>
}

// Tests that softplus's tail log1p(exp(-|x|)) becomes e q(e), a degree-8
// polynomial with no division, while a log1p of anything else keeps MLIR's
// general form (which divides).
// CHECK-LABEL: func @softplus_tail
// CHECK-SAME: (%[[X:.+]]: vector<16xf32>)
// CHECK-NOT: math.log1p
// CHECK-NOT: arith.divf
// CHECK: %[[A:.+]] = math.absf %[[X]] : vector<16xf32>
// CHECK: %[[N:.+]] = arith.negf %[[A]] : vector<16xf32>
// CHECK: %[[E:.+]] = arith.mulf %{{.+}}, %{{.+}} : vector<16xf32>
// CHECK-COUNT-8: math.fma %{{.+}}, %[[E]], %{{.+}} : vector<16xf32>
// CHECK: %[[T:.+]] = arith.mulf %{{.+}}, %[[E]] : vector<16xf32>
// CHECK: arith.divf
// CHECK: return %[[T]], %{{.+}}
func.func @softplus_tail(%x: vector<16xf32>) -> (vector<16xf32>, vector<16xf32>) {
  %a = math.absf %x : vector<16xf32>
  %n = arith.negf %a : vector<16xf32>
  %e = math.exp %n : vector<16xf32>
  %t = math.log1p %e : vector<16xf32>
  %other = math.log1p %x : vector<16xf32>
  return %t, %other : vector<16xf32>, vector<16xf32>
}

// Tests that rsqrt is left for LLVM's exact lowering, also on vectors of a
// multiple of 8 lanes, where MLIR's approximation would emit AVX2-only
// x86vector ops.
// CHECK-LABEL: func @rsqrt_kept
// CHECK: math.rsqrt %{{.+}} : vector<16xf32>
// CHECK-NOT: x86vector
func.func @rsqrt_kept(%x: vector<16xf32>) -> vector<16xf32> {
  %r = math.rsqrt %x : vector<16xf32>
  return %r : vector<16xf32>
}
