// RUN: glint-opt %s -glint-externalize-weights | FileCheck %s

// Tests that external weights become trailing arguments named by
// glint.weight in first-use order, that a weight used twice is one argument,
// that inline values become constants, that every tensor argument is marked
// read-only for bufferization, and that the globals are gone.
// CHECK-NOT: ml_program.global
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:.+]]: tensor<?x4xf32> {bufferization.writable = false},
// CHECK-SAME: %[[B:.+]]: tensor<4xf32> {bufferization.writable = false, glint.weight = "layer.b"},
// CHECK-SAME: %[[W:.+]]: tensor<4x4xf32> {bufferization.writable = false, glint.weight = "layer.w"})
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK: %[[C:.+]] = arith.constant dense<2.000000e+00> : tensor<4xf32>
// CHECK: glint.linear %[[X]], %[[W]] bias %[[B]]
// CHECK: glint.linear %{{.+}}, %[[W]] bias %[[C]]
ml_program.global private @"layer.w"(#ml_program.extern : tensor<4x4xf32>) : tensor<4x4xf32>
ml_program.global private @"layer.b"(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
ml_program.global private @"two"(dense<2.0> : tensor<4xf32>) : tensor<4xf32>
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %b = ml_program.global_load_const @"layer.b" : tensor<4xf32>
  %w = ml_program.global_load_const @"layer.w" : tensor<4x4xf32>
  %two = ml_program.global_load_const @"two" : tensor<4xf32>
  %y = glint.linear %x, %w bias %b : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %w2 = ml_program.global_load_const @"layer.w" : tensor<4x4xf32>
  %z = glint.linear %y, %w2 bias %two : (tensor<?x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return %z : tensor<?x4xf32>
}
