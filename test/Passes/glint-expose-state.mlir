// RUN: glint-opt %s -glint-expose-state -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-expose-state="function=forward step-function=decode" -split-input-file | FileCheck %s --check-prefix=NAMED

// Tests that the step function is added next to an unchanged @forward, with
// the mixer inlined, the convolution's last W-1 inputs and the recurrence's
// state as arguments and results named after the mixer label, and no state
// for a convolution of width 1.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %{{.+}}: tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
// CHECK: glint.mixer label "layers.0.mixer"
// CHECK-LABEL: func.func @forward_step(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x?x8xf32>,
// CHECK-SAME: %[[CONV:[^:]+]]: tensor<?x3x8xf32> {glint.state = "layers.0.mixer.conv1d"},
// CHECK-SAME: %[[REC:[^:]+]]: tensor<?x8x2x1xf32> {glint.state = "layers.0.mixer.recurrence"})
// CHECK-SAME: -> (tensor<?x?x8xf32>, tensor<?x3x8xf32> {glint.state = "layers.0.mixer.conv1d"}, tensor<?x8x2x1xf32> {glint.state = "layers.0.mixer.recurrence"})
// CHECK-NOT: glint.mixer
// CHECK: %[[C:.+]], %[[CNEXT:.+]] = glint.conv1d %[[X]], %{{.+}} initial_state(%[[CONV]])
// CHECK: %[[P:.+]] = glint.conv1d %[[C]], %{{[^ ]+}} :
// CHECK: %[[Y:.+]], %[[RNEXT:.+]] = glint.recurrence q(%{{.+}}) k(%{{.+}}) v(%{{.+}}) log_decay(%{{.+}}) initial_state(%[[REC]])
// CHECK: return %[[Y2:.+]], %[[CNEXT]], %[[RNEXT]] :
// NAMED-LABEL: func.func @decode(
func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
  %w = arith.constant dense<0.5> : tensor<8x4xf32>
  %w1 = arith.constant dense<2.0> : tensor<8x1xf32>
  %g = arith.constant dense<-0.1> : tensor<8x2xf32>
  %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%xv: tensor<?x?x8xf32>):
    %c = glint.conv1d %xv, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x8xf32>
    %p = glint.conv1d %c, %w1 : (tensor<?x?x8xf32>, tensor<8x1xf32>) -> tensor<?x?x8xf32>
    %b = arith.constant dense<1.0> : tensor<1x1xf32>
    %c0 = arith.constant 0 : index
    %n = tensor.dim %p, %c0 : tensor<?x?x8xf32>
    %c1 = arith.constant 1 : index
    %l = tensor.dim %p, %c1 : tensor<?x?x8xf32>
    %k = tensor.expand_shape %p [[0], [1], [2, 3]] output_shape [%n, %l, 4, 2] : tensor<?x?x8xf32> into tensor<?x?x4x2xf32>
    %ks = tensor.extract_slice %k[0, 0, 0, 0] [%n, %l, 1, 2] [1, 1, 1, 1] : tensor<?x?x4x2xf32> to tensor<?x?x1x2xf32>
    %v = tensor.expand_shape %p [[0], [1], [2, 3]] output_shape [%n, %l, 8, 1] : tensor<?x?x8xf32> into tensor<?x?x8x1xf32>
    %r = glint.recurrence q(%ks) k(%ks) v(%v) log_decay(%g)
        : (tensor<?x?x1x2xf32>, tensor<?x?x1x2xf32>, tensor<?x?x8x1xf32>, tensor<8x2xf32>)
        -> tensor<?x?x8x1xf32>
    %o = tensor.collapse_shape %r [[0], [1], [2, 3]] : tensor<?x?x8x1xf32> into tensor<?x?x8xf32>
    glint.yield %o : tensor<?x?x8xf32>
  }
  return %y : tensor<?x?x8xf32>
}

// -----

// Tests that an op's own glint.state name wins, repeated names are made
// unique, and an op outside any mixer is named after its kind.
// CHECK-LABEL: func.func @forward_step(
// CHECK-SAME: %[[X:[^:]+]]: tensor<2x?x4xf32>,
// CHECK-SAME: %[[A:[^:]+]]: tensor<2x4xf32> {glint.state = "blocks.0.time_shift"},
// CHECK-SAME: %[[B:[^:]+]]: tensor<2x4xf32> {glint.state = "blocks.0.time_shift.1"},
// CHECK-SAME: %[[C:[^:]+]]: tensor<2x4xf32> {glint.state = "token_shift"})
// CHECK: %[[S1:.+]], %[[N1:.+]] = glint.token_shift %[[X]] initial_state(%[[A]]) : (tensor<2x?x4xf32>, tensor<2x4xf32>) -> (tensor<2x?x4xf32>, tensor<2x4xf32>)
// CHECK-NOT: glint.state = "blocks
// CHECK: %[[S2:.+]], %[[N2:.+]] = glint.token_shift %[[S1]] initial_state(%[[B]])
// CHECK: %[[S3:.+]], %[[N3:.+]] = glint.token_shift %[[S2]] initial_state(%[[C]])
// CHECK: return %[[S3]], %[[N1]], %[[N2]], %[[N3]] :
func.func @forward(%x: tensor<2x?x4xf32>) -> tensor<2x?x4xf32> {
  %a = glint.token_shift %x {glint.state = "blocks.0.time_shift"} : (tensor<2x?x4xf32>) -> tensor<2x?x4xf32>
  %b = glint.token_shift %a {glint.state = "blocks.0.time_shift"} : (tensor<2x?x4xf32>) -> tensor<2x?x4xf32>
  %c = glint.token_shift %b : (tensor<2x?x4xf32>) -> tensor<2x?x4xf32>
  return %c : tensor<2x?x4xf32>
}

// -----

// Tests that RWKV-4's ratio state [B, H, K, V + 2] starts its running max at
// -inf where the denominator is 0, so that a zero state is an empty history.
// CHECK-LABEL: func.func @forward_step(
// CHECK-SAME: %[[S:[^:]+]]: tensor<?x4x1x3xf32> {glint.state = "wkv"})
// CHECK: %[[DEN:.+]] = tensor.extract_slice %[[S]][0, 0, 0, 1] [%{{.+}}, 4, 1, 1] [1, 1, 1, 1]
// CHECK: %[[MAX:.+]] = tensor.extract_slice %[[S]][0, 0, 0, 2] [%{{.+}}, 4, 1, 1] [1, 1, 1, 1]
// CHECK: %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[Z:.+]] = tensor.splat %[[ZERO]]
// CHECK: %[[EMPTY:.+]] = arith.cmpf oeq, %[[DEN]], %[[Z]] : tensor<?x4x1x1xf32>
// CHECK: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK: %[[NI:.+]] = tensor.splat %[[NEGINF]]
// CHECK: %[[FIXED:.+]] = arith.select %[[EMPTY]], %[[NI]], %[[MAX]] : tensor<?x4x1x1xi1>, tensor<?x4x1x1xf32>
// CHECK: %[[INIT:.+]] = tensor.insert_slice %[[FIXED]] into %[[S]][0, 0, 0, 2] [%{{.+}}, 4, 1, 1] [1, 1, 1, 1]
// CHECK: glint.recurrence normalize k(%{{.+}}) v(%{{.+}}) log_decay(%{{.+}}) bonus(%{{.+}}) initial_state(%[[INIT]])
func.func @forward(%k: tensor<?x?x4x1xf32>, %v: tensor<?x?x4x1xf32>) -> tensor<?x?x4x1xf32> {
  %w = arith.constant dense<-0.5> : tensor<4xf32>
  %u = arith.constant dense<0.3> : tensor<4x1xf32>
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u) {glint.state = "wkv"}
      : (tensor<?x?x4x1xf32>, tensor<?x?x4x1xf32>, tensor<4xf32>, tensor<4x1xf32>)
      -> tensor<?x?x4x1xf32>
  return %y : tensor<?x?x4x1xf32>
}

// -----

// Tests that windowed attention gets a key/value cache of window - 1 rows,
// that rotary embeddings and the cache read a position state, and that the
// next position is the position plus this call's length.
// CHECK-LABEL: func.func @forward_step(
// CHECK-SAME: %[[Q:[^:]+]]: tensor<?x?x2x8xf32>, %[[K:[^:]+]]: tensor<?x?x1x8xf32>, %[[V:[^:]+]]: tensor<?x?x1x6xf32>,
// CHECK-SAME: %[[POS:[^:]+]]: tensor<i64> {glint.state = "position"},
// CHECK-SAME: %[[KC:[^:]+]]: tensor<?x3x1x8xf32> {glint.state = "attn.key_cache"},
// CHECK-SAME: %[[VC:[^:]+]]: tensor<?x3x1x6xf32> {glint.state = "attn.value_cache"})
// CHECK-SAME: -> (tensor<?x?x2x6xf32>, tensor<i64> {glint.state = "position"}, tensor<?x3x1x8xf32> {glint.state = "attn.key_cache"}, tensor<?x3x1x6xf32> {glint.state = "attn.value_cache"})
// CHECK: %[[P64:.+]] = tensor.extract %[[POS]][] : tensor<i64>
// CHECK: %[[P:.+]] = arith.index_cast %[[P64]] : i64 to index
// CHECK: %[[QR:.+]] = glint.rotary %[[Q]] offset(%[[P]]) rotary_dim 4
// CHECK: %[[KR:.+]] = glint.rotary %[[K]] offset(%[[P]]) rotary_dim 4
// CHECK: %[[O:.+]], %[[CACHES:.+]]:2 = glint.attention %[[QR]], %[[KR]], %[[V]] scale 5.000000e-01 window 4 cache(%[[KC]], %[[VC]]) position(%[[P]])
// CHECK: %[[L:.+]] = tensor.dim %[[Q]], %{{.+}} : tensor<?x?x2x8xf32>
// CHECK: %[[L64:.+]] = arith.index_cast %[[L]] : index to i64
// CHECK: %[[NEXT:.+]] = arith.addi %[[P64]], %[[L64]] : i64
// CHECK: %[[NEXTT:.+]] = tensor.splat %[[NEXT]] : tensor<i64>
// CHECK: return %[[O]], %[[NEXTT]], %[[CACHES]]#0, %[[CACHES]]#1 :
func.func @forward(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x1x8xf32>, %v: tensor<?x?x1x6xf32>) -> tensor<?x?x2x6xf32> {
  %qr = glint.rotary %q rotary_dim 4 base 10000.0 : tensor<?x?x2x8xf32>
  %kr = glint.rotary %k rotary_dim 4 base 10000.0 : tensor<?x?x1x8xf32>
  %o = glint.attention %qr, %kr, %v scale 0.5 window 4 {glint.state = "attn"}
      : (tensor<?x?x2x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x6xf32>) -> tensor<?x?x2x6xf32>
  return %o : tensor<?x?x2x6xf32>
}

// -----

// Tests that attention with a window of 1 (each query sees only itself)
// carries nothing, and needs no position.
// CHECK-LABEL: func.func @forward_step(
// CHECK-SAME: %{{[^:]+}}: tensor<?x?x2x8xf32>, %{{[^:]+}}: tensor<?x?x1x8xf32>) -> tensor<?x?x2x8xf32>
// CHECK: glint.attention %{{.+}} scale 5.000000e-01 window 1 :
func.func @forward(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x1x8xf32>) -> tensor<?x?x2x8xf32> {
  %o = glint.attention %q, %k, %k scale 0.5 window 1
      : (tensor<?x?x2x8xf32>, tensor<?x?x1x8xf32>, tensor<?x?x1x8xf32>) -> tensor<?x?x2x8xf32>
  return %o : tensor<?x?x2x8xf32>
}
