// RUN: glint-opt %s -glint-lower-gradients=vector-width=16 -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-lower-gradients -split-input-file | FileCheck %s --check-prefix=SCALAR

// Tests that with a vector width the linear form's loops over the value
// axis run on vectors: V = 32 takes 16 lanes, the state rows and their
// cotangents are transfers of the tiles; the key loops take the K = 4 keys
// together (their decays, keys and queries read as 4 lanes, one vector
// exp), and the four keys' sums over the value axis are added over the
// lanes by shuffles into 4 lanes of dq; v·dy is one reduction. Without a
// width (the default) the same op has no vector op.
// CHECK-LABEL: func @rwkv6_grad
// CHECK-NOT: glint.
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: vector.transfer_read %{{.+}} : tensor<?x?x2x4xf32>, vector<4xf32>
// CHECK: math.exp %{{.+}} : vector<4xf32>
// CHECK: vector.transfer_read %{{.+}} : tensor<?x?x2x32xf32>, vector<16xf32>
// CHECK: vector.transfer_write %{{.+}} : vector<16xf32>, tensor<65x4x32xf32>
// CHECK: vector.reduction <add>, %{{.+}} fastmath<reassoc> : vector<16xf32> into f32
// CHECK: vector.shuffle %{{.+}}, %{{.+}} [{{.+}}] : vector<16xf32>, vector<16xf32>
// CHECK: vector.transfer_write %{{.+}} : vector<4xf32>, tensor<1x?x1x4xf32>
// CHECK: scf.forall.in_parallel
// SCALAR-LABEL: func @rwkv6_grad
// SCALAR-NOT: vector.
// SCALAR: return
func.func @rwkv6_grad(%q: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>,
    %v: tensor<?x?x2x32xf32>, %w: tensor<?x?x2x4xf32>, %u: tensor<2x4xf32>,
    %dy: tensor<?x?x2x32xf32>) -> tensor<?x?x2x32xf32> {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%w) bonus(%u)
      grad(%dy)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x32xf32>,
         tensor<?x?x2x4xf32>, tensor<2x4xf32>, tensor<?x?x2x32xf32>)
      -> (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x32xf32>,
          tensor<?x?x2x4xf32>, tensor<?x?x2xf32>)
  return %r#2 : tensor<?x?x2x32xf32>
}

// -----

// Tests that the lanes are the largest power of two up to the width that
// divides V: 8 for V = 24 (K = 2: too few keys for the key-vector form).
// CHECK-LABEL: func @retnet_grad
// CHECK: vector.transfer_read %{{.+}} : tensor<?x?x2x24xf32>, vector<8xf32>
// CHECK-NOT: vector<16xf32>
// CHECK: return
func.func @retnet_grad(%q: tensor<?x?x2x2xf32>, %k: tensor<?x?x2x2xf32>,
    %v: tensor<?x?x2x24xf32>, %g: tensor<2xf32>, %dy: tensor<?x?x2x24xf32>)
    -> tensor<?x?x2x2xf32> {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%g) grad(%dy)
      : (tensor<?x?x2x2xf32>, tensor<?x?x2x2xf32>, tensor<?x?x2x24xf32>,
         tensor<2xf32>, tensor<?x?x2x24xf32>)
      -> (tensor<?x?x2x2xf32>, tensor<?x?x2x2xf32>, tensor<?x?x2x24xf32>,
          tensor<2xf32>, tensor<?x?x2xf32>)
  return %r#0 : tensor<?x?x2x2xf32>
}

// -----

// Tests the key-vector form, where the keys fill as many lanes as the
// values (K = 16, V = 8): the state tiles are [V, K] rows along the keys
// (the chunk's states [65, 8, 16]), the values are read one by one, dq and
// dk are written 16 lanes at a time without adding lanes, and dv's partials
// of 8 values are added over their lanes by shuffles into 8 lanes.
// CHECK-LABEL: func @key_vectors
// CHECK: scf.forall (%{{.+}}, %{{.+}}) in (%{{.+}}, 2) shared_outs(
// CHECK: math.exp %{{.+}} : vector<16xf32>
// CHECK: tensor.extract %{{.+}} : tensor<?x?x2x8xf32>
// CHECK: vector.transfer_write %{{.+}} : vector<16xf32>, tensor<65x8x16xf32>
// CHECK: vector.shuffle %{{.+}}, %{{.+}} [{{.+}}] : vector<16xf32>, vector<16xf32>
// CHECK: vector.transfer_write %{{.+}} : vector<8xf32>, tensor<1x?x?x8xf32>
// CHECK: vector.transfer_write %{{.+}} : vector<16xf32>, tensor<1x?x1x16xf32>
// CHECK: scf.forall.in_parallel
func.func @key_vectors(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
    %v: tensor<?x?x2x8xf32>, %w: tensor<?x?x2x16xf32>, %u: tensor<2x16xf32>,
    %dy: tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32> {
  %r:5 = glint.recurrence_grad q(%q) k(%k) v(%v) log_decay(%w) bonus(%u)
      grad(%dy)
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x8xf32>,
         tensor<?x?x2x16xf32>, tensor<2x16xf32>, tensor<?x?x2x8xf32>)
      -> (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x8xf32>,
          tensor<?x?x2x16xf32>, tensor<?x?x2xf32>)
  return %r#2 : tensor<?x?x2x8xf32>
}

// -----

// Tests that an odd V with K = 4 takes the key-vector form on 4 lanes (the
// chunk's states [65, 5, 4]), its values' partials of dv added one by one.
// CHECK-LABEL: func @odd_value
// CHECK: vector.transfer_write %{{.+}} : vector<4xf32>, tensor<65x5x4xf32>
// CHECK: vector.reduction <add>, %{{.+}} fastmath<reassoc> : vector<4xf32> into f32
// CHECK: return
func.func @odd_value(%k: tensor<?x?x2x4xf32>, %v: tensor<?x?x2x5xf32>,
    %g: tensor<2xf32>, %dy: tensor<?x?x2x5xf32>) -> tensor<?x?x2x4xf32> {
  %r:5 = glint.recurrence_grad k(%k) v(%v) log_decay(%g) grad(%dy)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x5xf32>, tensor<2xf32>,
         tensor<?x?x2x5xf32>)
      -> (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x5xf32>,
          tensor<2xf32>, tensor<?x?x2xf32>)
  return %r#1 : tensor<?x?x2x4xf32>
}

// -----

// Tests that an odd V with K = 2, a double op and RWKV-4's ratio form keep
// the scalar loops.
// CHECK-LABEL: func @odd_both
// CHECK-NOT: vector.
// CHECK: return
func.func @odd_both(%k: tensor<?x?x2x2xf32>, %v: tensor<?x?x2x5xf32>,
    %g: tensor<2xf32>, %dy: tensor<?x?x2x5xf32>) -> tensor<?x?x2x2xf32> {
  %r:5 = glint.recurrence_grad k(%k) v(%v) log_decay(%g) grad(%dy)
      : (tensor<?x?x2x2xf32>, tensor<?x?x2x5xf32>, tensor<2xf32>,
         tensor<?x?x2x5xf32>)
      -> (tensor<?x?x2x2xf32>, tensor<?x?x2x2xf32>, tensor<?x?x2x5xf32>,
          tensor<2xf32>, tensor<?x?x2xf32>)
  return %r#1 : tensor<?x?x2x2xf32>
}

// -----

// CHECK-LABEL: func @double
// CHECK-NOT: vector.
// CHECK: return
func.func @double(%k: tensor<?x?x2x4xf64>, %v: tensor<?x?x2x16xf64>,
    %g: tensor<2xf64>, %dy: tensor<?x?x2x16xf64>) -> tensor<?x?x2x4xf64> {
  %r:5 = glint.recurrence_grad k(%k) v(%v) log_decay(%g) grad(%dy)
      : (tensor<?x?x2x4xf64>, tensor<?x?x2x16xf64>, tensor<2xf64>,
         tensor<?x?x2x16xf64>)
      -> (tensor<?x?x2x4xf64>, tensor<?x?x2x4xf64>, tensor<?x?x2x16xf64>,
          tensor<2xf64>, tensor<?x?x2xf64>)
  return %r#1 : tensor<?x?x2x4xf64>
}

// -----

// CHECK-LABEL: func @rwkv4_ratio
// CHECK-NOT: vector.
// CHECK: return
func.func @rwkv4_ratio(%k: tensor<?x?x2x1xf32>, %v: tensor<?x?x2x16xf32>,
    %w: tensor<2x1xf32>, %u: tensor<2x1xf32>, %dy: tensor<?x?x2x16xf32>)
    -> tensor<?x?x2x16xf32> {
  %r:5 = glint.recurrence_grad normalize k(%k) v(%v) log_decay(%w) bonus(%u)
      grad(%dy)
      : (tensor<?x?x2x1xf32>, tensor<?x?x2x16xf32>, tensor<2x1xf32>,
         tensor<2x1xf32>, tensor<?x?x2x16xf32>)
      -> (tensor<?x?x2x1xf32>, tensor<?x?x2x1xf32>, tensor<?x?x2x16xf32>,
          tensor<2x1xf32>, tensor<?x?x2xf32>)
  return %r#2 : tensor<?x?x2x16xf32>
}
