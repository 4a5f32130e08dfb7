// RUN: glint-opt %s -glint-differentiate -canonicalize | FileCheck %s

// Tests that the cotangents of disjoint slices of one tensor are written
// into one tensor, not padded with zeros and summed: the two halves of %x
// tile it, so they go into an empty tensor; %y's two slices leave a gap, so
// they go into its zeros. Canonicalised: the zero pads of the first
// cotangents are dead then.
// CHECK-LABEL: func.func @forward_grad(
// CHECK-NOT: arith.addf
// CHECK: %[[Z:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<?x9xf32>)
// CHECK: %[[B:.+]] = tensor.insert_slice %{{.+}} into %[[Z]][0, 5] [%{{.+}}, 4]
// CHECK: %[[DY:.+]] = tensor.insert_slice %{{.+}} into %[[B]][0, 0] [%{{.+}}, 4]
// CHECK-NOT: linalg.fill
// CHECK: %[[E:.+]] = tensor.empty(%{{.+}}) : tensor<?x8xf32>
// CHECK: %[[A:.+]] = tensor.insert_slice %{{.+}} into %[[E]][0, 4] [%{{.+}}, 4]
// CHECK: %[[DX:.+]] = tensor.insert_slice %{{.+}} into %[[A]][0, 0] [%{{.+}}, 4]
// CHECK: return %{{.+}}, %[[DX]], %[[DY]] :
module {
  func.func @forward(%x: tensor<?x8xf32>, %y: tensor<?x9xf32>) -> tensor<?x4xf32> {
    %c0 = arith.constant 0 : index
    %n = tensor.dim %x, %c0 : tensor<?x8xf32>
    %a = tensor.extract_slice %x[0, 0] [%n, 4] [1, 1] : tensor<?x8xf32> to tensor<?x4xf32>
    %b = tensor.extract_slice %x[0, 4] [%n, 4] [1, 1] : tensor<?x8xf32> to tensor<?x4xf32>
    %m = tensor.dim %y, %c0 : tensor<?x9xf32>
    %c = tensor.extract_slice %y[0, 0] [%m, 4] [1, 1] : tensor<?x9xf32> to tensor<?x4xf32>
    %d = tensor.extract_slice %y[0, 5] [%m, 4] [1, 1] : tensor<?x9xf32> to tensor<?x4xf32>
    %p = arith.mulf %a, %b : tensor<?x4xf32>
    %q = arith.mulf %c, %d : tensor<?x4xf32>
    %r = arith.mulf %p, %q : tensor<?x4xf32>
    return %r : tensor<?x4xf32>
  }
}
