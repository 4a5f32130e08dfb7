// RUN: glint-opt %s | glint-opt | FileCheck %s
// RUN: glint-opt %s --mlir-print-op-generic | glint-opt | FileCheck %s
// RUN: glint-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// Tests that the Mamba-1 form of the recurrence (factored delta, shared B/C,
// skip) round-trips.
// CHECK-LABEL: func @recurrence_mamba1
// CHECK-SAME: (%[[Q:.+]]: tensor<?x?x1x16xf32>, %[[K:.+]]: tensor<?x?x1x16xf32>, %[[V:.+]]: tensor<?x?x64x1xf32>, %[[A:.+]]: tensor<64x16xf32>, %[[DT:.+]]: tensor<?x?x64xf32>, %[[D:.+]]: tensor<64xf32>)
// CHECK: glint.recurrence q(%[[Q]]) k(%[[K]]) v(%[[V]]) log_decay(%[[A]]) delta(%[[DT]]) skip(%[[D]])
// CHECK-SAME: -> tensor<?x?x64x1xf32>
// GENERIC-LABEL: sym_name = "recurrence_mamba1"
// GENERIC: "glint.recurrence"
// GENERIC-SAME: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 1, 0>
func.func @recurrence_mamba1(%q: tensor<?x?x1x16xf32>, %k: tensor<?x?x1x16xf32>,
    %v: tensor<?x?x64x1xf32>, %a: tensor<64x16xf32>, %dt: tensor<?x?x64xf32>,
    %d: tensor<64xf32>) -> tensor<?x?x64x1xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x64x1xf32>,
         tensor<64x16xf32>, tensor<?x?x64xf32>, tensor<64xf32>)
      -> tensor<?x?x64x1xf32>
  return %y : tensor<?x?x64x1xf32>
}

// Tests the RWKV-6 form: per-key data-dependent decay, bonus, state in and
// out.
// CHECK-LABEL: func @recurrence_rwkv6_streaming
// CHECK: %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} = glint.recurrence q(%{{[a-z0-9_]+}}) k(%{{[a-z0-9_]+}}) v(%{{[a-z0-9_]+}}) log_decay(%{{[a-z0-9_]+}}) bonus(%{{[a-z0-9_]+}}) initial_state(%{{[a-z0-9_]+}})
// CHECK-SAME: -> (tensor<2x5x4x16xf32>, tensor<2x4x16x16xf32>)
func.func @recurrence_rwkv6_streaming(%r: tensor<2x5x4x16xf32>,
    %k: tensor<2x5x4x16xf32>, %v: tensor<2x5x4x16xf32>,
    %w: tensor<2x5x4x16xf32>, %u: tensor<4x16xf32>,
    %s0: tensor<2x4x16x16xf32>) -> (tensor<2x5x4x16xf32>, tensor<2x4x16x16xf32>) {
  %y, %s1 = glint.recurrence q(%r) k(%k) v(%v) log_decay(%w) bonus(%u)
      initial_state(%s0)
      : (tensor<2x5x4x16xf32>, tensor<2x5x4x16xf32>, tensor<2x5x4x16xf32>,
         tensor<2x5x4x16xf32>, tensor<4x16xf32>, tensor<2x4x16x16xf32>)
      -> (tensor<2x5x4x16xf32>, tensor<2x4x16x16xf32>)
  return %y, %s1 : tensor<2x5x4x16xf32>, tensor<2x4x16x16xf32>
}

// Tests RWKV-4's normalised ratio form (no query, log-keys, state with the
// denominator and running max) and the per-head time-invariant decay.
// CHECK-LABEL: func @recurrence_rwkv4
// CHECK: glint.recurrence normalize k(%{{[a-z0-9_]+}}) v(%{{[a-z0-9_]+}}) log_decay(%{{[a-z0-9_]+}}) bonus(%{{[a-z0-9_]+}}) initial_state(%{{[a-z0-9_]+}})
func.func @recurrence_rwkv4(%k: tensor<?x?x8x1xf32>, %v: tensor<?x?x8x1xf32>,
    %w: tensor<8xf32>, %u: tensor<8x1xf32>, %s: tensor<?x8x1x3xf32>)
    -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u)
      initial_state(%s)
      : (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>, tensor<8xf32>,
         tensor<8x1xf32>, tensor<?x8x1x3xf32>) -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}

// Tests the RG-LRU form (no query, per-head data-dependent decay) in the
// reverse direction, in f16.
// CHECK-LABEL: func @recurrence_reverse_per_head
// CHECK: glint.recurrence reverse k(%{{[a-z0-9_]+}}) v(%{{[a-z0-9_]+}}) log_decay(%{{[a-z0-9_]+}}) :
func.func @recurrence_reverse_per_head(%k: tensor<1x3x6x1xf16>,
    %v: tensor<1x3x6x1xf16>, %g: tensor<1x3x6xf16>) -> tensor<1x3x6x1xf16> {
  %y = glint.recurrence reverse k(%k) v(%v) log_decay(%g)
      : (tensor<1x3x6x1xf16>, tensor<1x3x6x1xf16>, tensor<1x3x6xf16>)
      -> tensor<1x3x6x1xf16>
  return %y : tensor<1x3x6x1xf16>
}

// Tests grouped keys (4 value heads over 2 key groups) with a constant
// per-head decay (RetNet).
// CHECK-LABEL: func @recurrence_grouped_retnet
// CHECK: glint.recurrence q(%{{[a-z0-9_]+}}) k(%{{[a-z0-9_]+}}) v(%{{[a-z0-9_]+}}) log_decay(%{{[a-z0-9_]+}}) : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x4x16xf32>, tensor<4xf32>) -> tensor<?x?x4x16xf32>
func.func @recurrence_grouped_retnet(%q: tensor<?x?x2x8xf32>,
    %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x4x16xf32>, %g: tensor<4xf32>)
    -> tensor<?x?x4x16xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x4x16xf32>,
         tensor<4xf32>) -> tensor<?x?x4x16xf32>
  return %y : tensor<?x?x4x16xf32>
}

// Tests the causal conv with bias and streaming state, and the anti-causal
// form.
// CHECK-LABEL: func @conv1d
// CHECK: %{{[a-z0-9_]+}}, %[[S:.+]] = glint.conv1d %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} bias %{{[a-z0-9_]+}} initial_state(%{{[a-z0-9_]+}}) : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>, tensor<?x3x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x3x64xf32>)
// CHECK: glint.conv1d reverse %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} : (tensor<?x?x64xf32>, tensor<64x3xf32>) -> tensor<?x?x64xf32>
func.func @conv1d(%x: tensor<?x?x64xf32>, %w: tensor<64x4xf32>,
    %b: tensor<64xf32>, %s: tensor<?x3x64xf32>, %w3: tensor<64x3xf32>)
    -> (tensor<?x?x64xf32>, tensor<?x3x64xf32>, tensor<?x?x64xf32>) {
  %y, %s1 = glint.conv1d %x, %w bias %b initial_state(%s)
      : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>,
         tensor<?x3x64xf32>) -> (tensor<?x?x64xf32>, tensor<?x3x64xf32>)
  %r = glint.conv1d reverse %x, %w3
      : (tensor<?x?x64xf32>, tensor<64x3xf32>) -> tensor<?x?x64xf32>
  return %y, %s1, %r : tensor<?x?x64xf32>, tensor<?x3x64xf32>, tensor<?x?x64xf32>
}

// Tests the token shift with and without streaming state.
// CHECK-LABEL: func @token_shift
// CHECK: glint.token_shift %{{[a-z0-9_]+}} : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
// CHECK: %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} = glint.token_shift %{{[a-z0-9_]+}} initial_state(%{{[a-z0-9_]+}}) : (tensor<?x?x32xf32>, tensor<?x32xf32>) -> (tensor<?x?x32xf32>, tensor<?x32xf32>)
func.func @token_shift(%x: tensor<?x?x32xf32>, %s: tensor<?x32xf32>)
    -> (tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x32xf32>) {
  %a = glint.token_shift %x : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
  %b, %last = glint.token_shift %x initial_state(%s)
      : (tensor<?x?x32xf32>, tensor<?x32xf32>)
      -> (tensor<?x?x32xf32>, tensor<?x32xf32>)
  return %a, %b, %last : tensor<?x?x32xf32>, tensor<?x?x32xf32>, tensor<?x32xf32>
}

// Tests multi-query windowed attention and partial rotary embeddings.
// CHECK-LABEL: func @attention_rotary
// CHECK: glint.rotary %{{[a-z0-9_]+}} rotary_dim 8 base 1.000000e+04 : tensor<?x?x2x16xf32>
// CHECK: glint.rotary %{{[a-z0-9_]+}} offset(%{{[a-z0-9_]+}}) rotary_dim 16 base 5.000000e+05 interleaved : tensor<?x?x1x16xf32>
// CHECK: glint.attention %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} scale 2.500000e-01 window 2048 : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>) -> tensor<?x?x2x16xf32>
// CHECK: glint.attention %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} scale 2.500000e-01 :
func.func @attention_rotary(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x1x16xf32>,
    %v: tensor<?x?x1x16xf32>, %pos: index) -> (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) {
  %qr = glint.rotary %q rotary_dim 8 base 10000.0 : tensor<?x?x2x16xf32>
  %kr = glint.rotary %k offset(%pos) rotary_dim 16 base 500000.0 interleaved
      : tensor<?x?x1x16xf32>
  %o = glint.attention %qr, %kr, %v scale 0.25 window 2048
      : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
      -> tensor<?x?x2x16xf32>
  %o2 = glint.attention %qr, %kr, %v scale 0.25
      : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>)
      -> tensor<?x?x2x16xf32>
  return %o, %o2 : tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
}

// Tests windowed attention continuing from a key/value cache.
// CHECK-LABEL: func @attention_cache
// CHECK: %{{.+}}, %{{.+}}:2 = glint.attention %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} scale 2.500000e-01 window 4 cache(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}) position(%{{[a-z0-9_]+}}) : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>, index) -> (tensor<?x?x2x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>)
func.func @attention_cache(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x1x16xf32>,
    %v: tensor<?x?x1x8xf32>, %kc: tensor<?x3x1x16xf32>, %vc: tensor<?x3x1x8xf32>,
    %pos: index) -> (tensor<?x?x2x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>) {
  %o, %kf, %vf = glint.attention %q, %k, %v scale 0.25 window 4
      cache(%kc, %vc) position(%pos)
      : (tensor<?x?x2x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x1x8xf32>,
         tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>, index)
      -> (tensor<?x?x2x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>)
  return %o, %kf, %vf : tensor<?x?x2x8xf32>, tensor<?x3x1x16xf32>, tensor<?x3x1x8xf32>
}

// Tests every activation kind.
// CHECK-LABEL: func @activations
// CHECK: glint.act silu
// CHECK: glint.act sigmoid
// CHECK: glint.act gelu %
// CHECK: glint.act gelu_tanh
// CHECK: glint.act softplus
// CHECK: glint.act relu %
// CHECK: glint.act relu_square
// CHECK: glint.act tanh
// CHECK: glint.act exp
// CHECK: glint.act neg_exp
// GENERIC-LABEL: sym_name = "activations"
// GENERIC: "glint.act"(%{{[a-z0-9_]+}}) <{kind = #glint<act silu>}>
func.func @activations(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = glint.act silu %x : tensor<4x8xf32>
  %1 = glint.act sigmoid %0 : tensor<4x8xf32>
  %2 = glint.act gelu %1 : tensor<4x8xf32>
  %3 = glint.act gelu_tanh %2 : tensor<4x8xf32>
  %4 = glint.act softplus %3 : tensor<4x8xf32>
  %5 = glint.act relu %4 : tensor<4x8xf32>
  %6 = glint.act relu_square %5 : tensor<4x8xf32>
  %7 = glint.act tanh %6 : tensor<4x8xf32>
  %8 = glint.act exp %7 : tensor<4x8xf32>
  %9 = glint.act neg_exp %8 : tensor<4x8xf32>
  return %9 : tensor<4x8xf32>
}

// Tests dense and block-diagonal linear layers in both weight layouts.
// CHECK-LABEL: func @linear
// CHECK: glint.linear %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} bias %{{[a-z0-9_]+}} : (tensor<?x?x32xf32>, tensor<64x32xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
// CHECK: glint.linear %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} layout in_out : (tensor<?x?x32xf32>, tensor<32x64xf32>) -> tensor<?x?x64xf32>
// CHECK: glint.linear %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} bias %{{[a-z0-9_]+}} layout in_out : (tensor<?x?x32xf32>, tensor<2x16x16xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
func.func @linear(%x: tensor<?x?x32xf32>, %w: tensor<64x32xf32>,
    %b: tensor<64xf32>, %wt: tensor<32x64xf32>, %wb: tensor<2x16x16xf32>,
    %bb: tensor<32xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x32xf32>) {
  %0 = glint.linear %x, %w bias %b
      : (tensor<?x?x32xf32>, tensor<64x32xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
  %1 = glint.linear %x, %wt layout in_out
      : (tensor<?x?x32xf32>, tensor<32x64xf32>) -> tensor<?x?x64xf32>
  %2 = glint.linear %x, %wb bias %bb layout in_out
      : (tensor<?x?x32xf32>, tensor<2x16x16xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
  return %0, %1, %2 : tensor<?x?x64xf32>, tensor<?x?x64xf32>, tensor<?x?x32xf32>
}

// Tests the embedding and the three norms with and without affine terms.
// CHECK-LABEL: func @embedding_norms
// CHECK: glint.embedding %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}} : (tensor<?x?xi32>, tensor<100x32xf32>) -> tensor<?x?x32xf32>
// CHECK: glint.rms_norm %{{[a-z0-9_]+}} weight %{{[a-z0-9_]+}} epsilon 9.9999999999999995E-7 {weight_offset = 1.000000e+00 : f64}
// CHECK: glint.rms_norm %{{[a-z0-9_]+}} epsilon 1.000000e-05 : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
// CHECK: glint.layer_norm %{{[a-z0-9_]+}} weight %{{[a-z0-9_]+}} bias %{{[a-z0-9_]+}} epsilon 1.000000e-05
// CHECK: glint.group_norm %{{[a-z0-9_]+}} groups 4 weight %{{[a-z0-9_]+}} bias %{{[a-z0-9_]+}} epsilon 6.400000e-04
// CHECK: glint.group_norm %{{[a-z0-9_]+}} groups 2 epsilon 9.9999999999999995E-7 :
func.func @embedding_norms(%ids: tensor<?x?xi32>, %t: tensor<100x32xf32>,
    %w: tensor<32xf32>, %b: tensor<32xf32>) -> tensor<?x?x32xf32> {
  %h = glint.embedding %ids, %t : (tensor<?x?xi32>, tensor<100x32xf32>) -> tensor<?x?x32xf32>
  %0 = glint.rms_norm %h weight %w epsilon 1.0e-06 {weight_offset = 1.0 : f64}
      : (tensor<?x?x32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
  %1 = glint.rms_norm %0 epsilon 1.0e-05 : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
  %2 = glint.layer_norm %1 weight %w bias %b epsilon 1.0e-05
      : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
  %3 = glint.group_norm %2 groups 4 weight %w bias %b epsilon 6.4e-04
      : (tensor<?x?x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x?x32xf32>
  %4 = glint.group_norm %3 groups 2 epsilon 1.0e-06
      : (tensor<?x?x32xf32>) -> tensor<?x?x32xf32>
  return %4 : tensor<?x?x32xf32>
}

// Tests a labelled mixer region capturing a gate from above.
// CHECK-LABEL: func @mixer
// CHECK: glint.mixer label "layers.0.mixer"(%{{[a-z0-9_]+}}) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
// CHECK: ^bb0(%[[XV:.+]]: tensor<?x?x8xf32>):
// CHECK: glint.conv1d %[[XV]]
// CHECK: glint.yield %{{[a-z0-9_]+}} : tensor<?x?x8xf32>
// CHECK: glint.mixer(%{{[a-z0-9_]+}})
func.func @mixer(%x: tensor<?x?x8xf32>, %z: tensor<?x?x8xf32>,
    %w: tensor<8x4xf32>) -> tensor<?x?x8xf32> {
  %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%xv: tensor<?x?x8xf32>):
    %c = glint.conv1d %xv, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x8xf32>
    %g = arith.mulf %c, %z : tensor<?x?x8xf32>
    glint.yield %g : tensor<?x?x8xf32>
  }
  %y2 = glint.mixer (%y) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
  ^bb0(%xv: tensor<?x?x8xf32>):
    %s = glint.act silu %xv : tensor<?x?x8xf32>
    glint.yield %s : tensor<?x?x8xf32>
  }
  return %y2 : tensor<?x?x8xf32>
}
