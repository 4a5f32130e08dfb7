// RUN: glint-opt %s --glint-narrow-weights | FileCheck %s
// RUN: glint-opt %s --glint-narrow-weights=dtype=f16 | FileCheck %s --check-prefix=HALF
// RUN: not glint-opt %s --glint-narrow-weights=dtype=f8 2>&1 | FileCheck %s --check-prefix=BAD

// Only the rank-2 weights read by a dense glint.linear or as an embedding
// table become 16-bit; a weight with any other use, a gain, a bias and a
// block-diagonal (rank-3) weight stay f32.

// CHECK-DAG: ml_program.global private @table(#{{.*}}) : tensor<50x8xbf16>
// CHECK-DAG: ml_program.global private @proj(#{{.*}}) : tensor<16x8xbf16>
// CHECK-DAG: ml_program.global private @shared(#{{.*}}) : tensor<8x8xf32>
// CHECK-DAG: ml_program.global private @bias(#{{.*}}) : tensor<16xf32>
// CHECK-DAG: ml_program.global private @gain(#{{.*}}) : tensor<8xf32>
// CHECK-DAG: ml_program.global private @blocks(#{{.*}}) : tensor<2x4x4xf32>
// CHECK-DAG: ml_program.global private @constant(dense<{{.*}}>) : tensor<8x8xf32>
// HALF-DAG: ml_program.global private @table(#{{.*}}) : tensor<50x8xf16>
// HALF-DAG: ml_program.global private @proj(#{{.*}}) : tensor<16x8xf16>
// BAD: glint-narrow-weights: dtype 'f8' is not bf16 or f16

// CHECK-LABEL: func.func @forward
// CHECK: %[[T:.*]] = ml_program.global_load_const @table : tensor<50x8xbf16>
// CHECK: glint.embedding %{{.*}}, %[[T]] : (tensor<?x?xi64>, tensor<50x8xbf16>) -> tensor<?x?x8xf32>
// CHECK: %[[P:.*]] = ml_program.global_load_const @proj : tensor<16x8xbf16>
// CHECK: glint.linear %{{.*}}, %[[P]] bias %{{.*}} : (tensor<?x?x8xf32>, tensor<16x8xbf16>, tensor<16xf32>) -> tensor<?x?x16xf32>
// CHECK: ml_program.global_load_const @shared : tensor<8x8xf32>
ml_program.global private @table(#ml_program.extern : tensor<50x8xf32>) : tensor<50x8xf32>
ml_program.global private @proj(#ml_program.extern : tensor<16x8xf32>) : tensor<16x8xf32>
ml_program.global private @shared(#ml_program.extern : tensor<8x8xf32>) : tensor<8x8xf32>
ml_program.global private @bias(#ml_program.extern : tensor<16xf32>) : tensor<16xf32>
ml_program.global private @gain(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
ml_program.global private @blocks(#ml_program.extern : tensor<2x4x4xf32>) : tensor<2x4x4xf32>
ml_program.global private @constant(dense<1.0> : tensor<8x8xf32>) : tensor<8x8xf32>
func.func @forward(%ids: tensor<?x?xi64>) -> (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) {
  %table = ml_program.global_load_const @table : tensor<50x8xf32>
  %h = glint.embedding %ids, %table : (tensor<?x?xi64>, tensor<50x8xf32>) -> tensor<?x?x8xf32>
  %gain = ml_program.global_load_const @gain : tensor<8xf32>
  %n = glint.rms_norm %h weight %gain epsilon 1.0e-05 : (tensor<?x?x8xf32>, tensor<8xf32>) -> tensor<?x?x8xf32>
  %proj = ml_program.global_load_const @proj : tensor<16x8xf32>
  %bias = ml_program.global_load_const @bias : tensor<16xf32>
  %y = glint.linear %n, %proj bias %bias : (tensor<?x?x8xf32>, tensor<16x8xf32>, tensor<16xf32>) -> tensor<?x?x16xf32>
  // Read as a product's weight, but also by an element-wise op: stays f32.
  %shared = ml_program.global_load_const @shared : tensor<8x8xf32>
  %s = glint.linear %n, %shared : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %c = ml_program.global_load_const @constant : tensor<8x8xf32>
  %s2 = glint.linear %s, %c : (tensor<?x?x8xf32>, tensor<8x8xf32>) -> tensor<?x?x8xf32>
  %shared2 = ml_program.global_load_const @shared : tensor<8x8xf32>
  %e = arith.addf %shared2, %shared2 : tensor<8x8xf32>
  %blocks = ml_program.global_load_const @blocks : tensor<2x4x4xf32>
  %b = glint.linear %s2, %blocks : (tensor<?x?x8xf32>, tensor<2x4x4xf32>) -> tensor<?x?x8xf32>
  return %y, %b, %s2 : tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>
}
