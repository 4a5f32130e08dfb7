// RUN: glint-opt %s -glint-vectorize-elementwise=vector-width=16 -cse -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-vectorize-elementwise="vector-width=16 fuse=false" -split-input-file | FileCheck %s --check-prefix=NOFUSE

// Tests that SiLU's derivative as glint-differentiate writes it (a sigmoid
// read twice, 1 - s through a fill of ones, x (1 - s), s * that, times the
// incoming cotangent) becomes one loop: every map read by one other map is
// fused into it, the sigmoid too once all its readers are one map (its two
// copies in the body are one after CSE), the fill is a scalar of the body.
// Without fusion it is five loops and the fill.
// CHECK-LABEL: func @silu_grad
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x64xf32>, %[[G:[a-z0-9_]+]]: tensor<?x64xf32>)
// CHECK-NOT: linalg.
// CHECK: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK: %[[Y:.+]] = scf.forall (%[[I:.+]]) in (%{{.+}}) shared_outs(%[[OUT:.+]] = %[[G]]) -> (tensor<?x64xf32>)
// CHECK:   scf.for %[[K:[a-z0-9_]+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[ACC:.+]] = %{{.+}}) -> (tensor<64xf32>)
// CHECK-DAG:  %[[GV:.+]] = vector.transfer_read %[[ACC]][%[[K]]]
// CHECK-DAG:  %[[XV:.+]] = vector.transfer_read %[[X]][%[[I]], %[[K]]]
// CHECK:     %[[NEG:.+]] = arith.negf %[[XV]] : vector<16xf32>
// CHECK:     %[[E:.+]] = math.exp %[[NEG]] : vector<16xf32>
// CHECK:     %[[ONES:.+]] = vector.broadcast %[[ONE]] : f32 to vector<16xf32>
// CHECK:     %[[D:.+]] = arith.addf %[[E]], %[[ONES]] : vector<16xf32>
// CHECK:     %[[S:.+]] = arith.divf %[[ONES]], %[[D]] : vector<16xf32>
// CHECK-NOT: math.exp
// CHECK:     %[[T:.+]] = arith.subf %[[ONES]], %[[S]] : vector<16xf32>
// CHECK:     %[[U:.+]] = arith.mulf %[[XV]], %[[T]] : vector<16xf32>
// CHECK:     %[[W:.+]] = arith.mulf %[[S]], %[[U]] : vector<16xf32>
// CHECK:     %[[R:.+]] = arith.mulf %[[GV]], %[[W]] : vector<16xf32>
// CHECK:     vector.transfer_write %[[R]], %[[ACC]][%[[K]]]
// CHECK-NOT: scf.forall (
// CHECK: return %[[Y]]
// NOFUSE-LABEL: func @silu_grad
// NOFUSE: scf.forall (
// NOFUSE: linalg.fill
// NOFUSE-COUNT-4: scf.forall (
// NOFUSE-NOT: scf.forall (
// NOFUSE: return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @silu_grad(%x: tensor<?x64xf32>, %g: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %c0 = arith.constant 0 : index
  %one = arith.constant 1.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e0 = tensor.empty(%n) : tensor<?x64xf32>
  %sig = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x64xf32>) outs(%e0 : tensor<?x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.negf %a : f32
    %e = math.exp %m : f32
    %p = arith.addf %e, %one : f32
    %s = arith.divf %one, %p : f32
    linalg.yield %s : f32
  } -> tensor<?x64xf32>
  %e1 = tensor.empty(%n) : tensor<?x64xf32>
  %ones = linalg.fill ins(%one : f32) outs(%e1 : tensor<?x64xf32>) -> tensor<?x64xf32>
  %t = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%ones, %sig : tensor<?x64xf32>, tensor<?x64xf32>) outs(%ones : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.subf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %u = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%x, %t : tensor<?x64xf32>, tensor<?x64xf32>) outs(%t : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %w = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%sig, %u : tensor<?x64xf32>, tensor<?x64xf32>) outs(%u : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%g, %w : tensor<?x64xf32>, tensor<?x64xf32>) outs(%g : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests the map that keeps its own loop: exp(s) is read through a
// broadcast (one value per row: fused, it would be computed 64 times per
// row). x * x has two readers but is cheap to repeat (one multiplication,
// one input): each reader computes it, and its own loop goes. Without
// fusion the same four loops.
// CHECK-LABEL: func @not_fused
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x64xf32>, %[[SC:[a-z0-9_]+]]: tensor<?xf32>)
// CHECK: %[[ES:.+]] = scf.for
// CHECK:   math.exp
// CHECK: %[[Y:.+]] = scf.forall
// CHECK-NOT: math.exp
// CHECK:   %[[XV:.+]] = vector.transfer_read %[[X]]
// CHECK:   tensor.extract %[[ES]]
// CHECK:   %[[SQ:.+]] = arith.mulf %[[XV]], %[[XV]]
// CHECK:   arith.mulf %[[SQ]]
// CHECK: %[[Z:.+]] = scf.forall
// CHECK:   %[[XV2:.+]] = vector.transfer_read %[[X]]
// CHECK:   %[[SQ2:.+]] = arith.mulf %[[XV2]], %[[XV2]]
// CHECK:   arith.addf %[[SQ2]], %[[SQ2]]
// CHECK-NOT: scf.forall (
// CHECK: return %[[Y]], %[[Z]]
// NOFUSE-LABEL: func @not_fused
// NOFUSE: scf.for
// NOFUSE-COUNT-3: scf.forall (
// NOFUSE-NOT: scf.forall (
// NOFUSE: return
func.func @not_fused(%x: tensor<?x64xf32>, %s: tensor<?xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e0 = tensor.empty(%n) : tensor<?xf32>
  %es = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%s : tensor<?xf32>) outs(%e0 : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  } -> tensor<?xf32>
  %e1 = tensor.empty(%n) : tensor<?x64xf32>
  %sq = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x64xf32>) outs(%e1 : tensor<?x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.mulf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %e2 = tensor.empty(%n) : tensor<?x64xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%sq, %es : tensor<?x64xf32>, tensor<?xf32>) outs(%e2 : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %e3 = tensor.empty(%n) : tensor<?x64xf32>
  %z = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%sq : tensor<?x64xf32>) outs(%e3 : tensor<?x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  return %y, %z : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Tests that a broadcast read element for element by maps (a norm's weight
// spread over [B, L, C] for two products) is read as the weight itself in
// each of them, through a map without the broadcast dimensions, and is gone.
// CHECK-LABEL: func @broadcast_read
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x?x32xf32>, %[[W:[a-z0-9_]+]]: tensor<32xf32>)
// CHECK-NOT: linalg.broadcast
// CHECK: scf.forall
// CHECK-DAG: vector.transfer_read %[[X]][%[[I:[a-z0-9_]+]], %[[J:[a-z0-9_]+]], %[[K:[a-z0-9_]+]]]
// CHECK-DAG: vector.transfer_read %[[W]][%[[K]]]
// CHECK: arith.mulf
// CHECK: scf.forall
// CHECK-DAG: vector.transfer_read %[[W]][%[[K2:[a-z0-9_]+]]]
// CHECK-DAG: vector.transfer_read %[[X]][%{{.+}}, %{{.+}}, %[[K2]]]
// CHECK: arith.addf
// CHECK-NOT: linalg.broadcast
// NOFUSE-LABEL: func @broadcast_read
// NOFUSE: linalg.broadcast
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @broadcast_read(%x: tensor<?x?x32xf32>, %w: tensor<32xf32>) -> (tensor<?x?x32xf32>, tensor<?x?x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = tensor.dim %x, %c0 : tensor<?x?x32xf32>
  %l = tensor.dim %x, %c1 : tensor<?x?x32xf32>
  %e = tensor.empty(%b, %l) : tensor<?x?x32xf32>
  %wb = linalg.broadcast ins(%w : tensor<32xf32>) outs(%e : tensor<?x?x32xf32>) dimensions = [0, 1]
  %e1 = tensor.empty(%b, %l) : tensor<?x?x32xf32>
  %y = linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %wb : tensor<?x?x32xf32>, tensor<?x?x32xf32>) outs(%e1 : tensor<?x?x32xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %r = arith.mulf %a, %c : f32
    linalg.yield %r : f32
  } -> tensor<?x?x32xf32>
  %e2 = tensor.empty(%b, %l) : tensor<?x?x32xf32>
  %z = linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%wb, %x : tensor<?x?x32xf32>, tensor<?x?x32xf32>) outs(%e2 : tensor<?x?x32xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %r = arith.addf %a, %c : f32
    linalg.yield %r : f32
  } -> tensor<?x?x32xf32>
  return %y, %z : tensor<?x?x32xf32>, tensor<?x?x32xf32>
}

// -----

// Tests the maps read by several that are not cheap to repeat: exp(x) (a
// transcendental), and x * y * z read by three maps (each would read three
// inputs, 9 rows, where its own loop and the readers read 7). p = x * y,
// read by one map and lending its buffer to another, is computed in the
// reader, and the other writes into an empty tensor instead: p's loop goes.
// CHECK-LABEL: func @repeat_only_cheap
// CHECK-NOT: linalg.generic
// CHECK: scf.forall (
// CHECK:   math.exp
// CHECK: scf.forall (
// CHECK-COUNT-2: arith.mulf
// CHECK-COUNT-4: scf.forall (
// CHECK-NOT: scf.forall (
// CHECK: return
#rid = affine_map<(d0, d1) -> (d0, d1)>
func.func @repeat_only_cheap(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %z: tensor<?x64xf32>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%n) : tensor<?x64xf32>
  %ex = linalg.generic {indexing_maps = [#rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = math.exp %a : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %xyz = linalg.generic {indexing_maps = [#rid, #rid, #rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%x, %y, %z : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    %r2 = arith.mulf %r, %c : f32
    linalg.yield %r2 : f32
  } -> tensor<?x64xf32>
  %p = linalg.generic {indexing_maps = [#rid, #rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%x, %y : tensor<?x64xf32>, tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %u = linalg.generic {indexing_maps = [#rid, #rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%ex, %xyz : tensor<?x64xf32>, tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %v = linalg.generic {indexing_maps = [#rid, #rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%ex, %xyz : tensor<?x64xf32>, tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.subf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %w = linalg.generic {indexing_maps = [#rid, #rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%p, %xyz : tensor<?x64xf32>, tensor<?x64xf32>) outs(%e : tensor<?x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.mulf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  %q = linalg.generic {indexing_maps = [#rid, #rid], iterator_types = ["parallel", "parallel"]} ins(%z : tensor<?x64xf32>) outs(%p : tensor<?x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.negf %a : f32
    linalg.yield %r : f32
  } -> tensor<?x64xf32>
  return %u, %v, %w, %q : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Tests a norm's backward as glint-differentiate writes it, lowered: the
// gain spread over the row (a map of values per row only), x̂ = (x − μ) r
// and ĝ = g ⊙ w, each read by several maps and by the row sums of ĝ ⊙ x̂
// and ĝ. The gain is repeated wherever it is read (it costs nothing per
// element), x̂ and ĝ too (two and one operations per element on one
// full-size input), and producers are fused into the row sums that read
// them: two sums and one map, each reading x and g where they lie, and no
// [N, 32] intermediate written. Without fusion, seven loops.
// CHECK-LABEL: func @norm_backward
// CHECK-SAME: (%[[X:[a-z0-9_]+]]: tensor<?x32xf32>, %[[G:[a-z0-9_]+]]: tensor<?x32xf32>, %[[W:[a-z0-9_]+]]: tensor<32xf32>
// CHECK-NOT: linalg.generic
// CHECK: %[[S2:.+]] = scf.forall (%{{.+}}) in (%{{.+}}) shared_outs(%{{.+}}) -> (tensor<?xf32>)
// CHECK-DAG: vector.transfer_read %[[X]]
// CHECK-DAG: vector.transfer_read %[[G]]
// CHECK-DAG: math.rsqrt
// CHECK: vector.reduction <add>
// CHECK: %[[S1:.+]] = scf.forall (%{{.+}}) in (%{{.+}}) shared_outs(%{{.+}}) -> (tensor<?xf32>)
// CHECK-NOT: vector.transfer_read %[[X]]
// CHECK: vector.transfer_read %[[G]]
// CHECK: vector.reduction <add>
// CHECK: %[[DX:.+]] = scf.forall (%{{.+}}) in (%{{.+}}) shared_outs(%{{.+}}) -> (tensor<?x32xf32>)
// CHECK-DAG: vector.transfer_read %[[X]]
// CHECK-DAG: vector.transfer_read %[[G]]
// CHECK-DAG: tensor.extract %[[S1]]
// CHECK-DAG: tensor.extract %[[S2]]
// CHECK-NOT: scf.forall (
// CHECK: return %[[DX]]
// NOFUSE-LABEL: func @norm_backward
// NOFUSE-COUNT-7: scf.forall (
// NOFUSE-NOT: scf.forall (
// NOFUSE: return
#n2 = affine_map<(d0, d1) -> (d0, d1)>
#nrow = affine_map<(d0, d1) -> (d0)>
#nch = affine_map<(d0, d1) -> (d1)>
func.func @norm_backward(%x: tensor<?x32xf32>, %g: tensor<?x32xf32>, %w: tensor<32xf32>,
                         %sum: tensor<?xf32>, %var: tensor<?xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %count = arith.constant 32.0 : f32
  %eps = arith.constant 1.0e-5 : f32
  %n = tensor.dim %x, %c0 : tensor<?x32xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %gain = linalg.generic {indexing_maps = [#nrow, #n2], iterator_types = ["parallel", "parallel"]} ins(%var : tensor<?xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.divf %v, %count : f32
    %p = arith.addf %m, %eps : f32
    %r = math.rsqrt %p : f32
    linalg.yield %r : f32
  } -> tensor<?x32xf32>
  %xhat = linalg.generic {indexing_maps = [#n2, #nrow, #n2, #n2], iterator_types = ["parallel", "parallel"]} ins(%x, %sum, %gain : tensor<?x32xf32>, tensor<?xf32>, tensor<?x32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%a: f32, %s: f32, %r: f32, %o: f32):
    %mu = arith.divf %s, %count : f32
    %c = arith.subf %a, %mu : f32
    %y = arith.mulf %c, %r : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  %ghat = linalg.generic {indexing_maps = [#n2, #nch, #n2], iterator_types = ["parallel", "parallel"]} ins(%g, %w : tensor<?x32xf32>, tensor<32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %y = arith.mulf %a, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  %gx = linalg.generic {indexing_maps = [#n2, #n2, #n2], iterator_types = ["parallel", "parallel"]} ins(%ghat, %xhat : tensor<?x32xf32>, tensor<?x32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %y = arith.mulf %a, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  %er = tensor.empty(%n) : tensor<?xf32>
  %zr = linalg.fill ins(%zero : f32) outs(%er : tensor<?xf32>) -> tensor<?xf32>
  %s2 = linalg.generic {indexing_maps = [#n2, #nrow], iterator_types = ["parallel", "reduction"]} ins(%gx : tensor<?x32xf32>) outs(%zr : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.addf %o, %a : f32
    linalg.yield %y : f32
  } -> tensor<?xf32>
  %s1 = linalg.generic {indexing_maps = [#n2, #nrow], iterator_types = ["parallel", "reduction"]} ins(%ghat : tensor<?x32xf32>) outs(%zr : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.addf %o, %a : f32
    linalg.yield %y : f32
  } -> tensor<?xf32>
  %dx = linalg.generic {indexing_maps = [#n2, #n2, #n2, #nrow, #nrow, #n2], iterator_types = ["parallel", "parallel"]} ins(%gain, %ghat, %xhat, %s1, %s2 : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xf32>, tensor<?xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%r: f32, %gh: f32, %xh: f32, %a1: f32, %a2: f32, %o: f32):
    %m1 = arith.divf %a1, %count : f32
    %m2 = arith.divf %a2, %count : f32
    %t = arith.mulf %xh, %m2 : f32
    %u = arith.subf %gh, %t : f32
    %v = arith.subf %u, %m1 : f32
    %y = arith.mulf %r, %v : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  return %dx : tensor<?x32xf32>
}
