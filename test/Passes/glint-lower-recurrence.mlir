// RUN: glint-opt %s -glint-lower-recurrence -split-input-file | FileCheck %s

// Tests that a Mamba-1 recurrence (time-invariant per-key decay kept factored
// with delta, skip, B and C shared by every head) becomes a forall over
// (batch, head) around a scan over time that carries the head's K x V state,
// with the decay row and skip hoisted out of the scan and the output rows
// written in place into the head's slice of the shared output.
// CHECK-LABEL: func @mamba1
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x8x1xf32>, %[[A:[a-z0-9_]+]]: tensor<8x4xf32>, %[[DT:[a-z0-9_]+]]: tensor<?x?x8xf32>, %[[D:[a-z0-9_]+]]: tensor<8xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[B:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x8x1xf32>
// CHECK: %[[L:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x8x1xf32>
// CHECK: %[[OUT0:.+]] = tensor.empty(%[[B]], %[[L]]) : tensor<?x?x8x1xf32>
// CHECK: %[[RES:.+]] = scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%[[B]], 8) shared_outs(%[[OUT:.+]] = %[[OUT0]]) -> (tensor<?x?x8x1xf32>) {
// CHECK:   %[[ZERO:.+]] = arith.constant 0 : index
// CHECK:   %[[AROW:.+]] = tensor.extract_slice %[[A]][%[[HI]], 0] [1, 4] [1, 1] : tensor<8x4xf32> to tensor<4xf32>
// CHECK:   %[[DH:.+]] = tensor.extract %[[D]][%[[HI]]] : tensor<8xf32>
// CHECK:   %[[S0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<4x1xf32>)
// CHECK:   %[[ROWS0:.+]] = tensor.extract_slice %[[OUT]][%[[BI]], 0, %[[HI]], 0] [1, %[[L]], 1, 1] [1, 1, 1, 1] : tensor<?x?x8x1xf32> to tensor<?x1xf32>
// CHECK:   %[[LOOP:.+]]:2 = scf.for %[[T:.+]] = %[[ZERO]] to %[[L]] step %{{.+}} iter_args(%[[S:.+]] = %[[S0]], %[[ROWS:.+]] = %[[ROWS0]]) -> (tensor<4x1xf32>, tensor<?x1xf32>) {
// CHECK:     %[[OROW:.+]] = tensor.extract_slice %[[ROWS]][%[[T]], 0] [1, 1] [1, 1] : tensor<?x1xf32> to tensor<1xf32>
// CHECK:     %[[DTT:.+]] = tensor.extract %[[DT]][%[[BI]], %[[T]], %[[HI]]] : tensor<?x?x8xf32>
// CHECK:     %[[KT:.+]] = tensor.extract_slice %[[K]][%[[BI]], %[[T]], %[[ZERO]], 0] [1, 1, 1, 4] [1, 1, 1, 1] : tensor<?x?x1x4xf32> to tensor<4xf32>
// CHECK:     %[[QT:.+]] = tensor.extract_slice %[[Q]][%[[BI]], %[[T]], %[[ZERO]], 0] [1, 1, 1, 4] [1, 1, 1, 1] : tensor<?x?x1x4xf32> to tensor<4xf32>
// CHECK:     %[[VT:.+]] = tensor.extract_slice %[[V]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 1] [1, 1, 1, 1] : tensor<?x?x8x1xf32> to tensor<1xf32>
// CHECK:     %[[KV:.+]] = linalg.generic {{.+}} ins(%[[KT]] : tensor<4xf32>)
// CHECK:       arith.mulf %{{.+}}, %[[DTT]] : f32
// CHECK:     %[[DECAY:.+]] = linalg.generic {{.+}} ins(%[[AROW]] : tensor<4xf32>)
// CHECK:       %[[GD:.+]] = arith.mulf %{{.+}}, %[[DTT]] : f32
// CHECK:       math.exp %[[GD]] : f32
// CHECK:     %[[S1:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]} ins(%[[DECAY]], %[[KV]], %[[VT]] : tensor<4xf32>, tensor<4xf32>, tensor<1xf32>) outs(%[[S]] : tensor<4x1xf32>)
// CHECK:     %[[ZEROS:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[OROW]] : tensor<1xf32>)
// CHECK:     %[[O:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%[[QT]], %[[S1]] : tensor<4xf32>, tensor<4x1xf32>) outs(%[[ZEROS]] : tensor<1xf32>)
// CHECK:     %[[OSKIP:.+]] = linalg.generic {{.+}} ins(%[[VT]] : tensor<1xf32>) outs(%[[O]] : tensor<1xf32>)
// CHECK:       arith.mulf %[[DH]], %{{.+}} : f32
// CHECK:     %[[NEWROWS:.+]] = tensor.insert_slice %[[OSKIP]] into %[[ROWS]][%[[T]], 0] [1, 1] [1, 1] : tensor<1xf32> into tensor<?x1xf32>
// CHECK:     scf.yield %[[S1]], %[[NEWROWS]] : tensor<4x1xf32>, tensor<?x1xf32>
// CHECK:   scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %[[LOOP]]#1 into %[[OUT]][%[[BI]], 0, %[[HI]], 0] [1, %[[L]], 1, 1] [1, 1, 1, 1] : tensor<?x1xf32> into tensor<?x?x8x1xf32>
// CHECK-NEXT: }
// CHECK: return %[[RES]] : tensor<?x?x8x1xf32>
func.func @mamba1(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x8x1xf32>, %a: tensor<8x4xf32>, %dt: tensor<?x?x8xf32>,
    %d: tensor<8xf32>) -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>,
         tensor<8x4xf32>, tensor<?x?x8xf32>, tensor<8xf32>)
      -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}

// -----

// Tests that a data-dependent per-key decay (GLA) is read per step and
// exponentiated inside the scan, and that with one key group per head the
// head index addresses q and k directly.
// CHECK-LABEL: func @gla
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x2x8xf32>, %[[G:[a-z0-9_]+]]: tensor<?x?x2x4xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%{{.+}}, 2) shared_outs
// CHECK-NOT: math.exp
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[S:.+]] = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<4x8xf32>, tensor<?x8xf32>)
// CHECK:   %[[KT:.+]] = tensor.extract_slice %[[K]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 4]
// CHECK:   %[[QT:.+]] = tensor.extract_slice %[[Q]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 4]
// CHECK:   %[[VT:.+]] = tensor.extract_slice %[[V]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 8]
// CHECK:   %[[GT:.+]] = tensor.extract_slice %[[G]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 4]
// CHECK:   %[[DECAY:.+]] = linalg.generic {{.+}} ins(%[[GT]] : tensor<4xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:   %[[E:.+]] = math.exp %[[IN]] : f32
// CHECK-NEXT:   linalg.yield %[[E]] : f32
// CHECK:   %[[S1:.+]] = linalg.generic {{.+}} ins(%[[DECAY]], %[[KT]], %[[VT]] : tensor<4xf32>, tensor<4xf32>, tensor<8xf32>) outs(%[[S]] : tensor<4x8xf32>)
// CHECK:   linalg.generic {{.+}} ins(%[[QT]], %[[S1]] : tensor<4xf32>, tensor<4x8xf32>)
// CHECK:   scf.yield %[[S1]], %{{.+}} : tensor<4x8xf32>, tensor<?x8xf32>
func.func @gla(%q: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>,
    %v: tensor<?x?x2x8xf32>, %g: tensor<?x?x2x4xf32>) -> tensor<?x?x2x8xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x8xf32>,
         tensor<?x?x2x4xf32>) -> tensor<?x?x2x8xf32>
  return %y : tensor<?x?x2x8xf32>
}

// -----

// Tests that without q (RG-LRU) the read-out sums the state over its key
// axis, and that a data-dependent per-head decay is one scalar exp per step.
// CHECK-LABEL: func @rglru
// CHECK-SAME: (%[[K:[a-z0-9_]+]]: tensor<?x?x16x1xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x16x1xf32>, %[[A:[a-z0-9_]+]]: tensor<?x?x16xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%{{.+}}, 16) shared_outs
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[S:.+]] = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<1x1xf32>, tensor<?x1xf32>)
// CHECK:   %[[KT:.+]] = tensor.extract_slice %[[K]][%[[BI]], %[[T]], %[[HI]], 0]
// CHECK:   %[[VT:.+]] = tensor.extract_slice %[[V]][%[[BI]], %[[T]], %[[HI]], 0]
// CHECK:   %[[AT:.+]] = tensor.extract %[[A]][%[[BI]], %[[T]], %[[HI]]] : tensor<?x?x16xf32>
// CHECK:   %[[DECAY:.+]] = math.exp %[[AT]] : f32
// CHECK:   %[[S1:.+]] = linalg.generic {{.+}} ins(%[[KT]], %[[VT]] : tensor<1xf32>, tensor<1xf32>) outs(%[[S]] : tensor<1x1xf32>)
// CHECK-NEXT: ^bb0(%[[KK:.+]]: f32, %[[VV:.+]]: f32, %[[SS:.+]]: f32):
// CHECK-NEXT:   %[[KEPT:.+]] = arith.mulf %[[DECAY]], %[[SS]] : f32
// CHECK-NEXT:   %[[INPUT:.+]] = arith.mulf %[[KK]], %[[VV]] : f32
// CHECK-NEXT:   %[[NEW:.+]] = arith.addf %[[KEPT]], %[[INPUT]] : f32
// CHECK-NEXT:   linalg.yield %[[NEW]] : f32
// CHECK:   linalg.generic {{.+}} iterator_types = ["parallel", "reduction"]} ins(%[[S1]] : tensor<1x1xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT:   %[[SUM:.+]] = arith.addf %[[ACC]], %[[IN]] : f32
// CHECK-NEXT:   linalg.yield %[[SUM]] : f32
func.func @rglru(%k: tensor<?x?x16x1xf32>, %v: tensor<?x?x16x1xf32>,
    %a: tensor<?x?x16xf32>) -> tensor<?x?x16x1xf32> {
  %y = glint.recurrence k(%k) v(%v) log_decay(%a)
      : (tensor<?x?x16x1xf32>, tensor<?x?x16x1xf32>, tensor<?x?x16xf32>)
      -> tensor<?x?x16x1xf32>
  return %y : tensor<?x?x16x1xf32>
}

// -----

// Tests that a reverse scan (RetNet's static per-head decay, two heads per
// key group) runs t = L - 1 - s, exponentiates the time-invariant decay once
// per head, and maps head h to key group h / 2.
// CHECK-LABEL: func @retnet_reverse
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x4x8xf32>, %[[G:[a-z0-9_]+]]: tensor<4xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: tensor.dim %[[V]], %{{.+}} : tensor<?x?x4x8xf32>
// CHECK: %[[L:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x4x8xf32>
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%{{.+}}, 4) shared_outs
// CHECK:   %[[TWO:.+]] = arith.constant 2 : index
// CHECK:   %[[GI:.+]] = arith.divsi %[[HI]], %[[TWO]] : index
// CHECK:   %[[GH:.+]] = tensor.extract %[[G]][%[[HI]]] : tensor<4xf32>
// CHECK:   %[[DECAY:.+]] = math.exp %[[GH]] : f32
// CHECK:   %[[LAST:.+]] = arith.subi %[[L]], %{{.+}} : index
// CHECK:   scf.for %[[STEP:.+]] = %{{.+}} to %[[L]] step
// CHECK:     %[[T:.+]] = arith.subi %[[LAST]], %[[STEP]] : index
// CHECK:     %[[OROW:.+]] = tensor.extract_slice %{{.+}}[%[[T]], 0] [1, 8] [1, 1]
// CHECK:     tensor.extract_slice %[[K]][%[[BI]], %[[T]], %[[GI]], 0]
// CHECK:     tensor.extract_slice %[[Q]][%[[BI]], %[[T]], %[[GI]], 0]
// CHECK:     tensor.extract_slice %[[V]][%[[BI]], %[[T]], %[[HI]], 0]
// CHECK-NOT: math.exp
// CHECK:     arith.mulf %[[DECAY]], %{{.+}} : f32
// CHECK:     tensor.insert_slice %{{.+}} into %{{.+}}[%[[T]], 0] [1, 8] [1, 1]
func.func @retnet_reverse(%q: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>,
    %v: tensor<?x?x4x8xf32>, %g: tensor<4xf32>) -> tensor<?x?x4x8xf32> {
  %y = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x4x8xf32>,
         tensor<4xf32>) -> tensor<?x?x4x8xf32>
  return %y : tensor<?x?x4x8xf32>
}

// -----

// Tests that with a bonus (RWKV-6) the output reads the state before the
// update, starting from (q · (u ⊙ k_t)) v_t, and the update then writes the
// state.
// CHECK-LABEL: func @rwkv6_bonus
// CHECK-SAME: (%[[R:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[W:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[U:[a-z0-9_]+]]: tensor<2x4xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%{{.+}}, 2) shared_outs
// CHECK:   %[[UROW:.+]] = tensor.extract_slice %[[U]][%[[HI]], 0] [1, 4] [1, 1] : tensor<2x4xf32> to tensor<4xf32>
// CHECK:   scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[S:.+]] = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<4x4xf32>, tensor<?x4xf32>)
// CHECK:     %[[OROW:.+]] = tensor.extract_slice
// CHECK:     %[[KT:.+]] = tensor.extract_slice %[[K]]
// CHECK:     %[[RT:.+]] = tensor.extract_slice %[[R]]
// CHECK:     %[[VT:.+]] = tensor.extract_slice %[[V]]
// CHECK:     %[[DECAY:.+]] = linalg.generic
// CHECK:     %[[DIAG0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<f32>)
// CHECK:     %[[DIAGT:.+]] = linalg.generic {{.+}} iterator_types = ["reduction"]} ins(%[[RT]], %[[UROW]], %[[KT]] : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) outs(%[[DIAG0]] : tensor<f32>)
// CHECK:     %[[DIAG:.+]] = tensor.extract %[[DIAGT]][] : tensor<f32>
// CHECK:     %[[INIT:.+]] = linalg.generic {{.+}} ins(%[[VT]] : tensor<4xf32>) outs(%[[OROW]] : tensor<4xf32>)
// CHECK:       arith.mulf %[[DIAG]], %{{.+}} : f32
// CHECK:     %[[O:.+]] = linalg.generic {{.+}} ins(%[[RT]], %[[S]] : tensor<4xf32>, tensor<4x4xf32>) outs(%[[INIT]] : tensor<4xf32>)
// CHECK:     %[[S1:.+]] = linalg.generic {{.+}} ins(%[[DECAY]], %[[KT]], %[[VT]] : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) outs(%[[S]] : tensor<4x4xf32>)
// CHECK:     %[[ROWS:.+]] = tensor.insert_slice %[[O]] into
// CHECK:     scf.yield %[[S1]], %[[ROWS]]
func.func @rwkv6_bonus(%r: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>,
    %v: tensor<?x?x2x4xf32>, %w: tensor<?x?x2x4xf32>, %u: tensor<2x4xf32>)
    -> tensor<?x?x2x4xf32> {
  %y = glint.recurrence q(%r) k(%k) v(%v) log_decay(%w) bonus(%u)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>,
         tensor<?x?x2x4xf32>, tensor<2x4xf32>) -> tensor<?x?x2x4xf32>
  return %y : tensor<?x?x2x4xf32>
}

// -----

// Tests that RWKV-4's ratio form carries [numerator, denominator, running
// max] in a 1 x (V + 2) tile whose max starts at -inf, and updates it with
// max-stabilised exponentials.
// CHECK-LABEL: func @rwkv4_normalize
// CHECK-SAME: (%[[K:[a-z0-9_]+]]: tensor<?x?x8x1xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x8x1xf32>, %[[W:[a-z0-9_]+]]: tensor<8xf32>, %[[U:[a-z0-9_]+]]: tensor<8x1xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%{{.+}}, 8) shared_outs
// CHECK:   %[[WH:.+]] = tensor.extract %[[W]][%[[HI]]] : tensor<8xf32>
// CHECK:   %[[UH:.+]] = tensor.extract %[[U]][%[[HI]], %{{.+}}] : tensor<8x1xf32>
// CHECK:   %[[ZEROS:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x3xf32>)
// CHECK:   %[[MINF:.+]] = arith.constant 0xFF800000 : f32
// CHECK:   %[[S0:.+]] = tensor.insert %[[MINF]] into %[[ZEROS]][%{{.+}}, %{{.+}}] : tensor<1x3xf32>
// CHECK:   scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[S:.+]] = %[[S0]], %{{.+}} = %{{.+}}) -> (tensor<1x3xf32>, tensor<?x1xf32>)
// CHECK:     %[[KT:.+]] = tensor.extract %[[K]][%[[BI]], %[[T]], %[[HI]], %{{.+}}] : tensor<?x?x8x1xf32>
// CHECK:     %[[VT:.+]] = tensor.extract_slice %[[V]][%[[BI]], %[[T]], %[[HI]], 0] [1, 1, 1, 1]
// CHECK:     %[[NUM:.+]] = tensor.extract_slice %[[S]][%{{.+}}, 0] [1, 1] [1, 1] : tensor<1x3xf32> to tensor<1xf32>
// CHECK:     %[[DEN:.+]] = tensor.extract %[[S]][%{{.+}}, %{{.+}}] : tensor<1x3xf32>
// CHECK:     %[[MAX:.+]] = tensor.extract %[[S]][%{{.+}}, %{{.+}}] : tensor<1x3xf32>
// CHECK:     %[[WW:.+]] = arith.addf %[[UH]], %[[KT]] : f32
// CHECK:     %[[P:.+]] = arith.maximumf %[[MAX]], %[[WW]] : f32
// CHECK:     %[[D1:.+]] = arith.subf %[[MAX]], %[[P]] : f32
// CHECK:     %[[E1:.+]] = math.exp %[[D1]] : f32
// CHECK:     %[[D2:.+]] = arith.subf %[[WW]], %[[P]] : f32
// CHECK:     %[[E2:.+]] = math.exp %[[D2]] : f32
// CHECK:     %[[O:.+]] = linalg.generic {{.+}} ins(%[[NUM]], %[[VT]] : tensor<1xf32>, tensor<1xf32>)
// CHECK:       arith.divf
// CHECK:     %[[WD:.+]] = arith.addf %[[WH]], %[[MAX]] : f32
// CHECK:     %[[P2:.+]] = arith.maximumf %[[WD]], %[[KT]] : f32
// CHECK:     %[[NEWNUM:.+]] = linalg.generic {{.+}} ins(%[[NUM]], %[[VT]] : tensor<1xf32>, tensor<1xf32>)
// CHECK:     %[[S1:.+]] = tensor.insert_slice %[[NEWNUM]] into %[[S]][0, 0] [1, 1] [1, 1]
// CHECK:     %[[S2:.+]] = tensor.insert %{{.+}} into %[[S1]][%{{.+}}, %{{.+}}] : tensor<1x3xf32>
// CHECK:     %[[S3:.+]] = tensor.insert %[[P2]] into %[[S2]][%{{.+}}, %{{.+}}] : tensor<1x3xf32>
// CHECK:     %[[ROWS:.+]] = tensor.insert_slice %[[O]] into
// CHECK:     scf.yield %[[S3]], %[[ROWS]]
func.func @rwkv4_normalize(%k: tensor<?x?x8x1xf32>, %v: tensor<?x?x8x1xf32>,
    %w: tensor<8xf32>, %u: tensor<8x1xf32>) -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u)
      : (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>, tensor<8xf32>,
         tensor<8x1xf32>) -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}

// -----

// Tests that streaming starts each head from its slice of initial_state and
// publishes the final state as a second shared output.
// CHECK-LABEL: func @streaming
// CHECK-SAME: (%{{.+}}: tensor<?x?x1x4xf32>, %{{.+}}: tensor<?x?x1x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x2x3xf32>, %{{.+}}: tensor<?x?x2x4xf32>, %[[S0:[a-z0-9_]+]]: tensor<?x2x4x3xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[B:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x2x3xf32>
// CHECK: %[[OUT0:.+]] = tensor.empty(%[[B]], %{{.+}}) : tensor<?x?x2x3xf32>
// CHECK: %[[FIN0:.+]] = tensor.empty(%[[B]]) : tensor<?x2x4x3xf32>
// CHECK: %[[RES:.+]]:2 = scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%[[B]], 2) shared_outs(%[[OUT:.+]] = %[[OUT0]], %[[FIN:.+]] = %[[FIN0]]) -> (tensor<?x?x2x3xf32>, tensor<?x2x4x3xf32>)
// CHECK:   %[[INIT:.+]] = tensor.extract_slice %[[S0]][%[[BI]], %[[HI]], 0, 0] [1, 1, 4, 3] [1, 1, 1, 1] : tensor<?x2x4x3xf32> to tensor<4x3xf32>
// CHECK:   %[[LOOP:.+]]:2 = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %[[INIT]], %{{.+}} = %{{.+}}) -> (tensor<4x3xf32>, tensor<?x3xf32>)
// CHECK:   scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %[[LOOP]]#1 into %[[OUT]][%[[BI]], 0, %[[HI]], 0] [1, %{{.+}}, 1, 3] [1, 1, 1, 1] : tensor<?x3xf32> into tensor<?x?x2x3xf32>
// CHECK-NEXT: tensor.parallel_insert_slice %[[LOOP]]#0 into %[[FIN]][%[[BI]], %[[HI]], 0, 0] [1, 1, 4, 3] [1, 1, 1, 1] : tensor<4x3xf32> into tensor<?x2x4x3xf32>
// CHECK-NEXT: }
// CHECK: return %[[RES]]#0, %[[RES]]#1 : tensor<?x?x2x3xf32>, tensor<?x2x4x3xf32>
func.func @streaming(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x2x3xf32>, %g: tensor<?x?x2x4xf32>, %s0: tensor<?x2x4x3xf32>)
    -> (tensor<?x?x2x3xf32>, tensor<?x2x4x3xf32>) {
  %y, %s = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g) initial_state(%s0)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x2x3xf32>,
         tensor<?x?x2x4xf32>, tensor<?x2x4x3xf32>)
      -> (tensor<?x?x2x3xf32>, tensor<?x2x4x3xf32>)
  return %y, %s : tensor<?x?x2x3xf32>, tensor<?x2x4x3xf32>
}

// -----

// Tests that dynamic heads and key groups (Mamba-2, static per-head decay
// factored with delta) give a dynamic forall bound and a computed key group,
// and that the decay is exp(A[h] · delta_t), one scalar per step.
// CHECK-LABEL: func @mamba2_dynamic_heads
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x?x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x?x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x?x2xf32>, %[[A:[a-z0-9_]+]]: tensor<?xf32>, %[[DT:[a-z0-9_]+]]: tensor<?x?x?xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[B:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x?x2xf32>
// CHECK: %[[L:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x?x2xf32>
// CHECK: %[[H:.+]] = tensor.dim %[[V]], %{{.+}} : tensor<?x?x?x2xf32>
// CHECK: %[[G:.+]] = tensor.dim %[[K]], %{{.+}} : tensor<?x?x?x4xf32>
// CHECK: scf.forall (%[[BI:.+]], %[[HI:.+]]) in (%[[B]], %[[H]]) shared_outs
// CHECK:   %[[RATIO:.+]] = arith.divsi %[[H]], %[[G]] : index
// CHECK:   %[[GI:.+]] = arith.divsi %[[HI]], %[[RATIO]] : index
// CHECK:   %[[AH:.+]] = tensor.extract %[[A]][%[[HI]]] : tensor<?xf32>
// CHECK:   scf.for %[[T:.+]] = %{{.+}} to %[[L]] step
// CHECK:     %[[DTT:.+]] = tensor.extract %[[DT]][%[[BI]], %[[T]], %[[HI]]]
// CHECK:     tensor.extract_slice %[[K]][%[[BI]], %[[T]], %[[GI]], 0]
// CHECK:     %[[GD:.+]] = arith.mulf %[[AH]], %[[DTT]] : f32
// CHECK:     %[[DECAY:.+]] = math.exp %[[GD]] : f32
// CHECK:     linalg.generic
// CHECK:       arith.mulf %[[DECAY]], %{{.+}} : f32
func.func @mamba2_dynamic_heads(%q: tensor<?x?x?x4xf32>, %k: tensor<?x?x?x4xf32>,
    %v: tensor<?x?x?x2xf32>, %a: tensor<?xf32>, %dt: tensor<?x?x?xf32>)
    -> tensor<?x?x?x2xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      : (tensor<?x?x?x4xf32>, tensor<?x?x?x4xf32>, tensor<?x?x?x2xf32>,
         tensor<?xf32>, tensor<?x?x?xf32>) -> tensor<?x?x?x2xf32>
  return %y : tensor<?x?x?x2xf32>
}

// -----

// Tests that every recurrence of a function is lowered, each to its own
// loops (a bidirectional Vision Mamba layer with a static sequence length).
// CHECK-LABEL: func @bidirectional
// CHECK-NOT: glint.recurrence
// CHECK: %[[F:.+]] = scf.forall
// CHECK:   tensor.empty() : tensor<4x1xf32>
// CHECK:   tensor.extract_slice %{{.+}} [1, 17, 1, 1] [1, 1, 1, 1] : tensor<?x17x8x1xf32> to tensor<17x1xf32>
// CHECK-NOT: arith.subi
// CHECK: %[[R:.+]] = scf.forall
// CHECK:   %[[C17:.+]] = arith.constant 17 : index
// CHECK:   arith.subi %[[C17]], %{{.+}} : index
// CHECK: arith.addf %[[F]], %[[R]]
func.func @bidirectional(%q: tensor<?x17x1x4xf32>, %k: tensor<?x17x1x4xf32>,
    %v: tensor<?x17x8x1xf32>, %a: tensor<8x4xf32>, %dt: tensor<?x17x8xf32>)
    -> tensor<?x17x8x1xf32> {
  %f = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      : (tensor<?x17x1x4xf32>, tensor<?x17x1x4xf32>, tensor<?x17x8x1xf32>,
         tensor<8x4xf32>, tensor<?x17x8xf32>) -> tensor<?x17x8x1xf32>
  %r = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      : (tensor<?x17x1x4xf32>, tensor<?x17x1x4xf32>, tensor<?x17x8x1xf32>,
         tensor<8x4xf32>, tensor<?x17x8xf32>) -> tensor<?x17x8x1xf32>
  %y = arith.addf %f, %r : tensor<?x17x8x1xf32>
  return %y : tensor<?x17x8x1xf32>
}
