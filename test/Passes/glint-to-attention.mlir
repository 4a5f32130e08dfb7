// RUN: glint-opt %s -glint-to-attention | FileCheck %s
// RUN: glint-opt %s -glint-to-attention="formulation=scan-only aggregate=mean_abs" | FileCheck %s --check-prefix=SCAN
// RUN: glint-opt %s -glint-to-attention="formulation=no-gate aggregate=full channels=1,3" | FileCheck %s --check-prefix=NOGATE
// RUN: glint-opt %s -glint-to-attention="has-row=true row=-1" | FileCheck %s --check-prefix=ROW

// A gated Mamba-1 mixer: conv → SiLU → selective scan with D → SiLU(z)
// gate. Every factor of the layer matrix, diag(SiLU(z)) · (scan + D) ·
// diag(σ(x̂)) · T_conv, appears, in order, and the layer output
// becomes A·x + offset (the conv bias carried through the later factors).

// CHECK-LABEL: func.func @mamba
// CHECK-SAME: -> (tensor<?x?x4xf32>, tensor<?x?x?xf32>)
// CHECK-SAME: glint.attention_layers = ["layers.0.mixer"]
// CHECK-SAME: glint.formulation = "unified"
// CHECK-NOT: glint.mixer
// CHECK: %[[ID:.*]] = glint.map_identity %[[X:.*]] : tensor<?x?x4xf32> -> <tensor<?x?x4xf32>>
// CHECK: %[[C:.*]] = glint.conv1d %[[X]], %[[W:.*]] bias
// CHECK: %[[T:.*]] = glint.map_conv %[[ID]], %[[W]]
// CHECK: %[[CB:.*]] = glint.conv1d %{{.*}}, %[[W]] bias
// CHECK: %[[G1:.*]] = glint.act_gain silu %[[C]]
// CHECK: %[[S1:.*]] = glint.map_scale %[[T]], %[[G1]]
// CHECK: %[[R:.*]] = glint.map_reshape %[[S1]] : <tensor<?x?x4xf32>> -> <tensor<?x?x4x1xf32>>
// CHECK: %[[SC:.*]] = glint.map_scan %[[R]] q(%{{.*}}) k(%{{.*}}) log_decay(%{{.*}}) delta(%{{.*}}) skip(%{{.*}})
// CHECK: glint.recurrence q({{.*}}) k({{.*}}) v(%{{.*}}) log_decay
// CHECK: %[[R2:.*]] = glint.map_reshape %[[SC]] : <tensor<?x?x4x1xf32>> -> <tensor<?x?x4xf32>>
// CHECK: %[[GATE:.*]] = glint.map_scale %[[R2]], %[[Z:.*]] :
// CHECK: %[[MAP:.*]] = glint.map_reduce mean %[[GATE]] : <tensor<?x?x4xf32>> -> tensor<?x?x?xf32>
// CHECK: %[[AX:.*]] = glint.map_apply %[[GATE]], %[[X]]
// CHECK: %[[Y:.*]] = arith.addf %[[AX]], %{{.*}} : tensor<?x?x4xf32>
// CHECK: return %[[Y]], %[[MAP]]

// The predecessor paper's form keeps the recurrence alone, without D, and
// leaves the layer's own output in place.
// SCAN-LABEL: func.func @mamba
// SCAN-SAME: glint.formulation = "scan-only"
// SCAN-NOT: glint.map_conv
// SCAN-NOT: glint.map_scale
// SCAN: glint.map_scan %{{.*}} q(%{{.*}}) k(%{{.*}}) log_decay(%{{.*}}) delta(%{{.*}}) :
// SCAN-NOT: glint.map_scale
// SCAN: glint.map_reduce mean_abs
// SCAN-NOT: glint.map_apply

// Without the gate: conv and activation stay, the multiplication by the
// SiLU(z) control does not become a factor.
// NOGATE-LABEL: func.func @mamba
// NOGATE-SAME: tensor<?x2x?x?xf32>
// NOGATE: glint.map_conv
// NOGATE: glint.map_scale
// NOGATE: glint.map_scan
// NOGATE-NOT: glint.map_scale
// NOGATE: glint.map_reduce full %{{.*}} channels [1, 3] : <tensor<?x?x4xf32>> -> tensor<?x2x?x?xf32>

// ROW: glint.map_reduce mean %{{.*}} row -1 : <tensor<?x?x4xf32>> -> tensor<?x?xf32>
func.func @mamba(%xz: tensor<?x?x8xf32>, %w: tensor<4x4xf32>, %cb: tensor<4xf32>,
    %q: tensor<?x?x1x3xf32>, %k: tensor<?x?x1x3xf32>, %a: tensor<4x3xf32>,
    %dt: tensor<?x?x4xf32>, %d: tensor<4xf32>) -> tensor<?x?x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %xz, %c0 : tensor<?x?x8xf32>
  %l = tensor.dim %xz, %c1 : tensor<?x?x8xf32>
  %x = tensor.extract_slice %xz[0, 0, 0] [%b, %l, 4] [1, 1, 1] : tensor<?x?x8xf32> to tensor<?x?x4xf32>
  %z = tensor.extract_slice %xz[0, 0, 4] [%b, %l, 4] [1, 1, 1] : tensor<?x?x8xf32> to tensor<?x?x4xf32>
  %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    %c = glint.conv1d %v, %w bias %cb : (tensor<?x?x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<?x?x4xf32>
    %u = glint.act silu %c : tensor<?x?x4xf32>
    %u4 = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, %l, 4, 1] : tensor<?x?x4xf32> into tensor<?x?x4x1xf32>
    %o = glint.recurrence q(%q) k(%k) v(%u4) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x?x1x3xf32>, tensor<?x?x1x3xf32>, tensor<?x?x4x1xf32>, tensor<4x3xf32>, tensor<?x?x4xf32>, tensor<4xf32>) -> tensor<?x?x4x1xf32>
    %o3 = tensor.collapse_shape %o [[0], [1], [2, 3]] : tensor<?x?x4x1xf32> into tensor<?x?x4xf32>
    %g = glint.act silu %z : tensor<?x?x4xf32>
    %r = arith.mulf %o3, %g : tensor<?x?x4xf32>
    glint.yield %r : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// A softmax attention layer outside any mixer (a hybrid model's attention
// block) passes its explicit matrix through.
// CHECK-LABEL: func.func @hybrid_attention
// CHECK-SAME: glint.attention_layers = ["attention0"]
// CHECK: %[[O:.*]] = glint.attention %[[Q:.*]], %[[K:.*]], %[[V:.*]] scale
// CHECK: %[[I:.*]] = glint.map_identity %[[V]] : tensor<?x?x1x4xf32> -> <tensor<?x?x1x4xf32>>
// CHECK: %[[P:.*]] = glint.map_attention %[[I]], %[[Q]], %[[K]] scale 5.000000e-01 window 8 : {{.*}} -> !glint.map<tensor<?x?x2x4xf32>>
// CHECK: %[[M:.*]] = glint.map_reduce mean %[[P]]
// CHECK: return %[[O]], %[[M]]
func.func @hybrid_attention(%q: tensor<?x?x2x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x1x4xf32>) -> tensor<?x?x2x4xf32> {
  %o = glint.attention %q, %k, %v scale 0.5 window 8 : (tensor<?x?x2x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>) -> tensor<?x?x2x4xf32>
  return %o : tensor<?x?x2x4xf32>
}

// A function without token-mixing layers is left alone.
// CHECK-LABEL: func.func @no_layers
// CHECK-NOT: glint.attention_layers
// CHECK-NOT: glint.map_
func.func @no_layers(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.act silu %x : tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}
