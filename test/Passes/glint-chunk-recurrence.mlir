// RUN: glint-opt %s -glint-chunk-recurrence="form=chunked vector-width=8 chunk-size=16 chunks-per-pass=4 threads=2 outline=false" -split-input-file | FileCheck %s
// RUN: glint-opt %s -glint-chunk-recurrence="form=chunked vector-width=8 chunk-size=16 chunks-per-pass=4 threads=2" -split-input-file | FileCheck %s --check-prefix=OUTLINE
// RUN: glint-opt %s -glint-chunk-recurrence="vector-width=8 chunk-size=16 threads=2 min-length=256" -split-input-file | FileCheck %s --check-prefix=AUTO
// RUN: glint-opt %s -glint-chunk-recurrence="form=recurrent" -split-input-file | FileCheck %s --check-prefix=RECURRENT
// RUN: glint-opt %s -glint-chunk-recurrence="vector-width=8 chunk-size=64 threads=2" -split-input-file | FileCheck %s --check-prefix=AUTO8
// RUN: glint-opt %s -glint-chunk-recurrence="vector-width=16 chunk-size=64 threads=2" -split-input-file | FileCheck %s --check-prefix=AUTO16

// Tests that Mamba-2 (scalar decay per head factored with delta, skip, one
// key group, V = 20 not a multiple of 8) becomes the chunked form: passes of
// 4 chunks of 16 steps around three foralls. Within chunks, per (batch, key
// group, chunk): the keys transposed and the queries copied once for the
// group, the scores in blocks of 8 rows, then per head the decay factors
// exp(A delta), the masked weights (a running product of the factors with a
// 1 entering on the diagonal) and the outputs. Between chunks, per (batch,
// head, key row): the running state, written in place of each chunk's
// contribution. Last, per (batch, head, chunk): the entering state read out
// into the rows. With form=auto the op stays: it is short (L = 16 < 256)
// and does more work chunked (K = 4 is small). form=recurrent leaves it too.
// CHECK-LABEL: func @mamba2
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x3x20xf32>, %[[A:[a-z0-9_]+]]: tensor<3xf32>, %[[DT:[a-z0-9_]+]]: tensor<?x?x3xf32>, %[[D:[a-z0-9_]+]]: tensor<3xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<?x3x4x20xf32>)
// CHECK: %[[PASSES:.+]]:4 = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[OUT:.+]] = %{{.+}}, %[[RUNNING:.+]] = %[[ZERO]], %[[STASH:.+]] = %{{.+}}, %[[TOTALS:.+]] = %{{.+}}) -> (tensor<?x?x3x20xf32>, tensor<?x3x4x20xf32>, tensor<?x3x4x4x20xf32>, tensor<?x3x4xf32>)
// CHECK:   %[[INTRA:.+]]:3 = scf.forall (%[[BI:.+]], %[[GI:.+]], %[[CI:.+]]) in (%{{.+}}, 1, %{{.+}}) shared_outs(%{{.+}} = %[[OUT]], %{{.+}} = %[[STASH]], %{{.+}} = %[[TOTALS]])
// CHECK:     %[[KT0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<4x16xf32>)
// CHECK:     %[[KEY:.+]] = tensor.extract %[[K]][%[[BI]], %{{.+}}, %[[GI]], %[[KI:.+]]] : tensor<?x?x1x4xf32>
// CHECK:     tensor.insert %[[KEY]] into %{{.+}}[%[[KI]], %{{.+}}] : tensor<4x16xf32>
// CHECK:     vector.transfer_read %[[Q]][%[[BI]], %{{.+}}, %[[GI]], %{{.+}}], %{{[a-z0-9_]+}} : tensor<?x?x1x4xf32>, vector<8xf32>
// CHECK:     scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK:       vector.transfer_read %{{.+}} {in_bounds = [true]} : tensor<4x16xf32>, vector<8xf32>
// CHECK:       math.fma %{{.+}}, %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK:     %[[AH:.+]] = tensor.extract %[[A]][%[[H:.+]]] : tensor<3xf32>
// CHECK:     %[[DTT:.+]] = tensor.extract %[[DT]][%[[BI]], %{{.+}}, %[[H]]] : tensor<?x?x3xf32>
// CHECK:     %[[G:.+]] = arith.mulf %[[AH]], %[[DTT]] : f32
// CHECK:     math.exp %[[G]] : f32
// CHECK:     %[[DIAG:.+]] = arith.cmpi eq, %{{.+}}, %{{.+}} : vector<8xi32>
// CHECK:     %[[M:.+]] = arith.select %[[DIAG]], %{{.+}}, %{{.+}} : vector<8xi1>, vector<8xf32>
// CHECK:     %[[S:.+]] = vector.transfer_read %{{.+}} {in_bounds = [true]} : tensor<16x16xf32>, vector<8xf32>
// CHECK:     arith.mulf %[[S]], %[[M]] : vector<8xf32>
// CHECK:     tensor.extract %[[D]][%[[H]]] : tensor<3xf32>
// CHECK:     vector.transfer_read %[[V]][%[[BI]], %{{.+}}, %[[H]], %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x?x3x20xf32>, vector<8xf32>
// CHECK:     vector.transfer_read %[[V]][%[[BI]], %{{.+}}, %[[H]], %{{.+}}], %{{[a-z0-9_]+}} : tensor<?x?x3x20xf32>, vector<8xf32>
// CHECK:   scf.forall.in_parallel {
// CHECK:   %[[PASSING:.+]]:2 = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 3, 4) shared_outs(%{{.+}} = %[[INTRA]]#1, %{{.+}} = %[[RUNNING]]) -> (tensor<?x3x4x4x20xf32>, tensor<?x3x4x20xf32>)
// CHECK:     tensor.extract %[[INTRA]]#2
// CHECK:   %[[INTER:.+]] = scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 3, %{{.+}}) shared_outs(%{{.+}} = %[[INTRA]]#0) -> (tensor<?x?x3x20xf32>)
// CHECK:     tensor.extract_slice %[[PASSING]]#0
// CHECK:   scf.yield %[[INTER]], %[[PASSING]]#1, %[[PASSING]]#0, %[[INTRA]]#2
// CHECK: return %[[PASSES]]#0 : tensor<?x?x3x20xf32>
// AUTO-LABEL: func @mamba2
// AUTO-NEXT: glint.recurrence
// RECURRENT-LABEL: func @mamba2
// RECURRENT-NEXT: glint.recurrence
func.func @mamba2(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x3x20xf32>, %a: tensor<3xf32>, %dt: tensor<?x?x3xf32>,
    %d: tensor<3xf32>) -> tensor<?x?x3x20xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x3x20xf32>,
         tensor<3xf32>, tensor<?x?x3xf32>, tensor<3xf32>)
      -> tensor<?x?x3x20xf32>
  return %y : tensor<?x?x3x20xf32>
}

// -----

// Tests that a reverse RetNet-like recurrence (static decay per head, own
// keys per head, no delta) with an initial and a final state takes the
// chunked form: the running state starts from the initial state, phase 2
// walks the pass's chunks from the last, and the final state is the running
// state after the last pass. Its K = V = 64 make the chunked form do less
// work (form=auto), but L is not known: auto chooses at run time, on
// L >= 256, with the op itself in the else branch for the recurrent forms.
// CHECK-LABEL: func @retnet_reverse_state
// CHECK-SAME: (%{{.+}}: tensor<?x?x2x64xf32>, %{{.+}}: tensor<?x?x2x64xf32>, %{{.+}}: tensor<?x?x2x64xf32>, %{{.+}}: tensor<2xf32>, %[[S0:[a-z0-9_]+]]: tensor<?x2x64x64xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[PASSES:.+]]:4 = scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %[[S0]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}})
// CHECK:   scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 2, %{{.+}})
// CHECK:   scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 2, 64)
// CHECK:   scf.forall (%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}}, 2, %{{.+}})
// CHECK: return %[[PASSES]]#0, %[[PASSES]]#1 : tensor<?x?x2x64xf32>, tensor<?x2x64x64xf32>
// AUTO-LABEL: func @retnet_reverse_state
// AUTO: %[[L:.+]] = tensor.dim %{{.+}}, %{{.+}} : tensor<?x?x2x64xf32>
// AUTO: %[[LONG:.+]] = arith.cmpi sge, %[[L]], %{{.+}} : index
// AUTO: %[[R:.+]]:2 = scf.if %[[LONG]] -> (tensor<?x?x2x64xf32>, tensor<?x2x64x64xf32>) {
// AUTO:   %[[C:.+]]:2 = func.call @__glint_chunked_recurrence(
// AUTO:   scf.yield %[[C]]#0, %[[C]]#1
// AUTO: } else {
// AUTO:   %[[Y:.+]], %[[S:.+]] = glint.recurrence reverse
// AUTO:   scf.yield %[[Y]], %[[S]]
// AUTO: return %[[R]]#0, %[[R]]#1
// AUTO: func.func private @__glint_chunked_recurrence(
// AUTO:   scf.for
func.func @retnet_reverse_state(%q: tensor<?x?x2x64xf32>,
    %k: tensor<?x?x2x64xf32>, %v: tensor<?x?x2x64xf32>, %g: tensor<2xf32>,
    %s0: tensor<?x2x64x64xf32>)
    -> (tensor<?x?x2x64xf32>, tensor<?x2x64x64xf32>) {
  %y, %s = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%g)
      initial_state(%s0)
      : (tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>, tensor<?x?x2x64xf32>,
         tensor<2xf32>, tensor<?x2x64x64xf32>)
      -> (tensor<?x?x2x64xf32>, tensor<?x2x64x64xf32>)
  return %y, %s : tensor<?x?x2x64xf32>, tensor<?x2x64x64xf32>
}

// -----

// Tests that form=auto decides at compile time when L and B are static: a
// long sequence (L = 512) with less work chunked takes the chunked form
// outright, without a run-time choice.
// CHECK-LABEL: func @static_long
// CHECK-NOT: glint.recurrence
// AUTO-LABEL: func @static_long
// AUTO-NOT: scf.if
// AUTO-NOT: glint.recurrence
// AUTO: scf.forall
// AUTO: return
func.func @static_long(%q: tensor<1x512x2x64xf32>, %k: tensor<1x512x2x64xf32>,
    %v: tensor<1x512x2x64xf32>, %g: tensor<1x512x2xf32>)
    -> tensor<1x512x2x64xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<1x512x2x64xf32>, tensor<1x512x2x64xf32>,
         tensor<1x512x2x64xf32>, tensor<1x512x2xf32>) -> tensor<1x512x2x64xf32>
  return %y : tensor<1x512x2x64xf32>
}

// -----

// Tests that form=auto, where the chunked form would do more work (K = 128
// but V = 8: the intra-chunk and score products are not paid back), still
// takes it when the recurrent form would leave threads idle: one batch
// element and one head make a single work item for two threads.
// CHECK-LABEL: func @one_head_idle_threads
// CHECK-NOT: glint.recurrence
// AUTO-LABEL: func @one_head_idle_threads
// AUTO-NOT: scf.if
// AUTO-NOT: glint.recurrence
// AUTO: scf.forall
// With 16 lanes, idle threads alone do not choose the chunked form.
// AUTO8-LABEL: func @one_head_idle_threads
// AUTO8-NOT: glint.recurrence
// AUTO8: scf.forall
// AUTO16-LABEL: func @one_head_idle_threads
// AUTO16-NEXT: glint.recurrence
func.func @one_head_idle_threads(%q: tensor<1x512x1x128xf32>,
    %k: tensor<1x512x1x128xf32>, %v: tensor<1x512x1x8xf32>,
    %g: tensor<1x512x1xf32>) -> tensor<1x512x1x8xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<1x512x1x128xf32>, tensor<1x512x1x128xf32>,
         tensor<1x512x1x8xf32>, tensor<1x512x1xf32>) -> tensor<1x512x1x8xf32>
  return %y : tensor<1x512x1x8xf32>
}

// -----

// Tests form=auto's work limit per vector width on a RetNet-like shape
// (H = 2, K = 128, V = 256, C = 64: the chunked form does 0.79 of the
// recurrent form's work): chunked with 8 lanes (limit 0.9), recurrent with
// 16 (limit 0.77), as measured on the machines in the pass description.
// AUTO8-LABEL: func @retnet_work_limit
// AUTO8-NOT: glint.recurrence
// AUTO8: scf.forall
// AUTO16-LABEL: func @retnet_work_limit
// AUTO16-NEXT: glint.recurrence
func.func @retnet_work_limit(%q: tensor<1x512x2x128xf32>,
    %k: tensor<1x512x2x128xf32>, %v: tensor<1x512x2x256xf32>,
    %g: tensor<2xf32>) -> tensor<1x512x2x256xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      : (tensor<1x512x2x128xf32>, tensor<1x512x2x128xf32>,
         tensor<1x512x2x256xf32>, tensor<2xf32>) -> tensor<1x512x2x256xf32>
  return %y : tensor<1x512x2x256xf32>
}

// -----

// Tests that RWKV-4's ratio form has no chunked form and is left alone,
// even with form=chunked.
// CHECK-LABEL: func @rwkv4_normalize
// CHECK: glint.recurrence normalize
// CHECK-NOT: scf.forall
func.func @rwkv4_normalize(%k: tensor<?x?x8x1xf32>, %v: tensor<?x?x8x1xf32>,
    %w: tensor<8xf32>, %u: tensor<8x1xf32>) -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u)
      : (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>, tensor<8xf32>,
         tensor<8x1xf32>) -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}

// -----

// Tests that per-channel recurrences (V = 1: Mamba-1) are left to the
// per-channel vector form, which keeps their state in registers.
// CHECK-LABEL: func @mamba1
// CHECK: glint.recurrence
// CHECK-NOT: scf.forall
func.func @mamba1(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x40x1xf32>, %a: tensor<40x4xf32>, %dt: tensor<?x?x40xf32>)
    -> tensor<?x?x40x1xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x40x1xf32>,
         tensor<40x4xf32>, tensor<?x?x40xf32>) -> tensor<?x?x40x1xf32>
  return %y : tensor<?x?x40x1xf32>
}

// -----

// Tests that per-key decays (GLA) and RWKV-6's bonus are left to the
// recurrent form: their mask does not factor into safe per-step terms.
// CHECK-LABEL: func @gla_rwkv6
// CHECK: glint.recurrence q
// CHECK: glint.recurrence q
// CHECK-NOT: scf.forall
func.func @gla_rwkv6(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>,
    %v: tensor<?x?x2x16xf32>, %w: tensor<?x?x2x8xf32>, %u: tensor<2x8xf32>,
    %g: tensor<2xf32>) -> (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>) {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%w)
      : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x16xf32>,
         tensor<?x?x2x8xf32>) -> tensor<?x?x2x16xf32>
  %z = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g) bonus(%u)
      : (tensor<?x?x2x8xf32>, tensor<?x?x2x8xf32>, tensor<?x?x2x16xf32>,
         tensor<2xf32>, tensor<2x8xf32>) -> tensor<?x?x2x16xf32>
  return %y, %z : tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>
}

// -----

// Tests that the chunked form goes into a private function shared by the
// ops of the same types, operands and direction (a model's layers), called
// in their place; another direction gets its own function. The layer's
// state name does not make a signature. With outline=false each op is
// lowered in place.
// CHECK-LABEL: func @layers
// CHECK-NOT: call
// CHECK-COUNT-3: scf.for {{.*}} -> (tensor<?x?x2x16xf32>, tensor<?x2x16x16xf32>, tensor<?x2x4x16x16xf32>, tensor<?x2x4xf32>)
// CHECK-NOT: call
// OUTLINE-LABEL: func @layers
// OUTLINE-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x2x16xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x2x16xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x2x16xf32>, %[[G:[a-z0-9_]+]]: tensor<2xf32>)
// OUTLINE-NOT: glint.recurrence
// OUTLINE: %[[Y0:.+]] = call @__glint_chunked_recurrence(%[[Q]], %[[K]], %[[V]], %[[G]])
// OUTLINE: %[[Y1:.+]] = call @__glint_chunked_recurrence(%[[Q]], %[[K]], %[[Y0]], %[[G]])
// OUTLINE: %[[Y2:.+]] = call @[[REVERSE:__glint_chunked_recurrence_[0-9]+]](%[[Q]], %[[K]], %[[Y1]], %[[G]])
// OUTLINE: return %[[Y2]]
// OUTLINE: func.func private @__glint_chunked_recurrence({{.*}}) -> tensor<?x?x2x16xf32> attributes {glint.chunked_recurrence = "{{.*}}reverse0{{.*}}"}
// OUTLINE-NOT: glint.state
// OUTLINE:   scf.forall
// OUTLINE: func.func private @[[REVERSE]]({{.*}}) -> tensor<?x?x2x16xf32> attributes {glint.chunked_recurrence = "{{.*}}reverse1{{.*}}"}
// OUTLINE-NOT: glint.state
// OUTLINE:   scf.forall
func.func @layers(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
    %v: tensor<?x?x2x16xf32>, %g: tensor<2xf32>) -> tensor<?x?x2x16xf32> {
  %y0 = glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)
      {glint.state = "layers.0.mixer.recurrence"}
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>,
         tensor<2xf32>) -> tensor<?x?x2x16xf32>
  %y1 = glint.recurrence q(%q) k(%k) v(%y0) log_decay(%g)
      {glint.state = "layers.1.mixer.recurrence"}
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>,
         tensor<2xf32>) -> tensor<?x?x2x16xf32>
  %y2 = glint.recurrence reverse q(%q) k(%k) v(%y1) log_decay(%g)
      : (tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32>,
         tensor<2xf32>) -> tensor<?x?x2x16xf32>
  return %y2 : tensor<?x?x2x16xf32>
}
