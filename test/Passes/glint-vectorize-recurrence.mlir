// RUN: glint-opt %s -glint-vectorize-recurrence=vector-width=16 -split-input-file | FileCheck %s

// Tests that a Mamba-1 recurrence (factored delta, per-key decay, B and C
// shared by every channel, skip) becomes the per-channel vector form: the
// decay packed once per block of 16 channels as A log2(e) (each channel's
// row of keys read as one masked vector, the 16 rows transposed in
// registers by shuffles), two chunks of
// blocks per batch element, time blocks of 4 steps, and in each step of a
// block K = 4 state vectors carried in registers, one vector
// exp2(delta A log2 e) with fastmath<ninf> per state vector, B_t[n] and
// C_t[n] broadcast, and masked reads and writes (40 channels are not a
// multiple of 16).
// CHECK-LABEL: func @mamba1
// CHECK-SAME: (%[[Q:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x40x1xf32>, %[[A:[a-z0-9_]+]]: tensor<40x4xf32>, %[[DT:[a-z0-9_]+]]: tensor<?x?x40xf32>, %[[D:[a-z0-9_]+]]: tensor<40xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[U:.+]] = tensor.collapse_shape %[[V]] {{\[}}[0], [1], [2, 3]] : tensor<?x?x40x1xf32> into tensor<?x?x40xf32>
// CHECK: %[[PACKED:.+]] = scf.forall (%{{.+}}) in (3) shared_outs(%{{.+}} = %{{.+}}) -> (tensor<3x4x16xf32>)
// CHECK:   vector.transfer_read %[[A]][%{{.+}}, %{{.+}}], %{{.+}} : tensor<40x4xf32>, vector<16xf32>
// CHECK:   vector.shuffle %{{.+}}, %{{.+}} [0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30] : vector<16xf32>, vector<16xf32>
// CHECK:   %[[LOG2E:.+]] = arith.constant dense<1.44269502> : vector<16xf32>
// CHECK:   arith.mulf %{{.+}}, %[[LOG2E]] : vector<16xf32>
// CHECK: %[[RES:.+]] = scf.forall (%[[BI:.+]], %{{.+}}) in (%{{.+}}, 2) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<?x?x40xf32>)
// CHECK:   %[[STATES0:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<2x4x16xf32>)
// CHECK:   %[[ROWS0:.+]] = tensor.extract_slice %[[OUT]][%[[BI]], 0, %{{.+}}] [1, %{{.+}}, %{{.+}}] [1, 1, 1] : tensor<?x?x40xf32> to tensor<?x?xf32>
// CHECK:   %[[C4:.+]] = arith.constant 4 : index
// CHECK:   %[[BLOCKS:.+]] = arith.ceildivsi %{{.+}}, %[[C4]] : index
// CHECK:   scf.for %{{.+}} = %{{.+}} to %[[BLOCKS]] step %{{.+}} iter_args(%{{.+}} = %[[ROWS0]], %{{.+}} = %[[STATES0]]) -> (tensor<?x?xf32>, tensor<2x4x16xf32>)
// CHECK:     scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %{{.+}}, %[[STATES:.+]] = %{{.+}}) -> (tensor<?x?xf32>, tensor<2x4x16xf32>)
// CHECK:       %[[A0:.+]] = vector.transfer_read %[[PACKED]][%{{.+}}, %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<3x4x16xf32>, vector<16xf32>
// CHECK:       %[[SKIP:.+]] = vector.transfer_read %[[D]][%{{.+}}], %{{[a-z0-9_]+}} : tensor<40xf32>, vector<16xf32>
// CHECK:       %[[S0:.+]] = vector.transfer_read %[[STATES]][%[[J]], %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<2x4x16xf32>, vector<16xf32>
// CHECK:       scf.for %[[STEP:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[SS0:.+]] = %[[S0]], %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %[[ROWS:.+]] = %{{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, tensor<?x?xf32>)
// CHECK:         %[[T:.+]] = arith.addi %{{.+}}, %[[STEP]] : index
// CHECK:         %[[UT:.+]] = vector.transfer_read %[[U]][%[[BI]], %[[T]], %[[C0:.+]]], %{{[a-z0-9_]+}} : tensor<?x?x40xf32>, vector<16xf32>
// CHECK:         %[[DTT:.+]] = vector.transfer_read %[[DT]][%[[BI]], %[[T]], %[[C0]]], %{{[a-z0-9_]+}} : tensor<?x?x40xf32>, vector<16xf32>
// CHECK:         %[[X:.+]] = arith.mulf %[[DTT]], %[[UT]] : vector<16xf32>
// CHECK:         %[[G0:.+]] = arith.mulf %[[DTT]], %[[A0]] : vector<16xf32>
// CHECK:         %[[E0:.+]] = math.exp2 %[[G0]] fastmath<ninf> : vector<16xf32>
// CHECK:         %[[KEPT:.+]] = arith.mulf %[[E0]], %[[SS0]] : vector<16xf32>
// CHECK:         %[[K0:.+]] = tensor.extract %[[K]][%[[BI]], %[[T]], %{{.+}}, %{{.+}}] : tensor<?x?x1x4xf32>
// CHECK:         %[[K0V:.+]] = vector.broadcast %[[K0]] : f32 to vector<16xf32>
// CHECK:         %[[NEW0:.+]] = math.fma %[[K0V]], %[[X]], %[[KEPT]] : vector<16xf32>
// CHECK:         %[[Q0:.+]] = tensor.extract %[[Q]][%[[BI]], %[[T]], %{{.+}}, %{{.+}}] : tensor<?x?x1x4xf32>
// CHECK:         %[[Q0V:.+]] = vector.broadcast %[[Q0]] : f32 to vector<16xf32>
// CHECK:         arith.mulf %[[Q0V]], %[[NEW0]] : vector<16xf32>
// CHECK-COUNT-3: math.exp2 %{{.+}} fastmath<ninf> : vector<16xf32>
// CHECK:         %[[Y:.+]] = math.fma %[[SKIP]], %[[UT]], %{{.+}} : vector<16xf32>
// CHECK:         %[[W:.+]] = vector.transfer_write %[[Y]], %[[ROWS]][%[[T]], %{{.+}}] : vector<16xf32>, tensor<?x?xf32>
// CHECK:         scf.yield %[[NEW0]], %{{.+}}, %{{.+}}, %{{.+}}, %[[W]] : vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, tensor<?x?xf32>
// CHECK:       vector.transfer_write %{{.+}}, %[[STATES]][%[[J]], %{{.+}}, %{{.+}}] {in_bounds = [true]} : vector<16xf32>, tensor<2x4x16xf32>
// CHECK:   scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %{{.+}} into %[[OUT]][%[[BI]], 0, %{{.+}}] [1, %{{.+}}, %{{.+}}] [1, 1, 1] : tensor<?x?xf32> into tensor<?x?x40xf32>
// CHECK: %[[Y4:.+]] = tensor.expand_shape %[[RES]] {{\[}}[0], [1], [2, 3]] output_shape [%{{.+}}, %{{.+}}, 40, 1] : tensor<?x?x40xf32> into tensor<?x?x40x1xf32>
// CHECK: return %[[Y4]] : tensor<?x?x40x1xf32>
func.func @mamba1(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x40x1xf32>, %a: tensor<40x4xf32>, %dt: tensor<?x?x40xf32>,
    %d: tensor<40xf32>) -> tensor<?x?x40x1xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x40x1xf32>,
         tensor<40x4xf32>, tensor<?x?x40xf32>, tensor<40xf32>)
      -> tensor<?x?x40x1xf32>
  return %y : tensor<?x?x40x1xf32>
}

// -----

// Tests that an RG-LRU recurrence (K = 1, a key per channel, a
// data-dependent decay per channel, no query) takes the per-channel form
// with the keys read along the channels like the values, one exp per step,
// and unmasked transfers (32 channels are two full blocks).
// CHECK-LABEL: func @rglru
// CHECK-SAME: (%[[K:[a-z0-9_]+]]: tensor<?x?x32x1xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x32x1xf32>, %[[A:[a-z0-9_]+]]: tensor<?x?x32xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[U:.+]] = tensor.collapse_shape %[[V]]
// CHECK: %[[KC:.+]] = tensor.collapse_shape %[[K]]
// CHECK: scf.forall (%[[BI:.+]], %{{.+}}) in (%{{.+}}, 2)
// CHECK:   scf.for %{{.+}} iter_args(%[[S:.+]] = %{{.+}}, %[[ROWS:.+]] = %{{.+}}) -> (vector<16xf32>, tensor<?x16xf32>)
// CHECK:     %[[UT:.+]] = vector.transfer_read %[[U]][%[[BI]], %[[T:.+]], %[[C0:.+]]], %{{.+}} {in_bounds = [true]} : tensor<?x?x32xf32>, vector<16xf32>
// CHECK:     %[[AT:.+]] = vector.transfer_read %[[A]][%[[BI]], %[[T]], %[[C0]]], %{{.+}} {in_bounds = [true]} : tensor<?x?x32xf32>, vector<16xf32>
// CHECK:     %[[E:.+]] = math.exp %[[AT]] : vector<16xf32>
// CHECK:     %[[KEPT:.+]] = arith.mulf %[[E]], %[[S]] : vector<16xf32>
// CHECK:     %[[KT:.+]] = vector.transfer_read %[[KC]][%[[BI]], %[[T]], %[[C0]]], %{{.+}} {in_bounds = [true]} : tensor<?x?x32xf32>, vector<16xf32>
// CHECK:     %[[NEW:.+]] = math.fma %[[KT]], %[[UT]], %[[KEPT]] : vector<16xf32>
// CHECK:     %[[W:.+]] = vector.transfer_write %[[NEW]], %[[ROWS]][%[[T]], %{{.+}}] {in_bounds = [true]} : vector<16xf32>, tensor<?x16xf32>
// CHECK:     scf.yield %[[NEW]], %[[W]] : vector<16xf32>, tensor<?x16xf32>
func.func @rglru(%k: tensor<?x?x32x1xf32>, %v: tensor<?x?x32x1xf32>,
    %a: tensor<?x?x32xf32>) -> tensor<?x?x32x1xf32> {
  %y = glint.recurrence k(%k) v(%v) log_decay(%a)
      : (tensor<?x?x32x1xf32>, tensor<?x?x32x1xf32>, tensor<?x?x32xf32>)
      -> tensor<?x?x32x1xf32>
  return %y : tensor<?x?x32x1xf32>
}

// -----

// Tests that RWKV-6 (matrix state, per-key data-dependent decay, bonus)
// takes the matrix form: a forall over (batch, head chunk, V tile), the
// chunk's K x Vt tiles, steps in pairs that share one pass over the tile's
// rows (and a loop for the last step of an odd block), the next steps' rows
// prefetched, the decays of a pair exponentiated as vector<K> a pair ahead
// into two slots, the bonus (r . (u (.) k_t)) as a vector reduction, and a
// loop over keys that loads each state row once, reads it (S_{t-1}) into
// the first step's output before updating it, then the second step's, and
// stores it once.
// CHECK-LABEL: func @rwkv6_bonus
// CHECK-SAME: (%[[R:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x2x32xf32>, %[[W:[a-z0-9_]+]]: tensor<?x?x2x4xf32>, %[[U:[a-z0-9_]+]]: tensor<2x4xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: %[[RBUF:.+]] = bufferization.to_buffer %[[R]] read_only : tensor<?x?x2x4xf32> to memref<?x?x2x4xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: scf.forall (%[[BI:.+]], %{{.+}}, %{{.+}}) in (%{{.+}}, 2, 1) shared_outs(%[[OUT:.+]] = %{{.+}}) -> (tensor<?x?x2x32xf32>)
// CHECK:   %[[TILES:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x4x32xf32>)
// CHECK:   %[[DECAYS:.+]] = tensor.empty() : tensor<2x4xf32>
// CHECK:   scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %[[TILES]], %{{.+}} = %[[DECAYS]]) -> (tensor<?x1x32xf32>, tensor<1x4x32xf32>, tensor<2x4xf32>)
// CHECK:     scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %[[TS:.+]] = %{{.+}}, %[[A0:.+]] = %{{.+}}) -> (tensor<?x1x32xf32>, tensor<1x4x32xf32>, tensor<2x4xf32>)
// CHECK:       %[[TILE:.+]] = tensor.extract_slice %[[TS]][%{{.+}}, 0, 0] [1, 4, 32] [1, 1, 1] : tensor<1x4x32xf32> to tensor<4x32xf32>
// CHECK:       %[[UROW:.+]] = vector.transfer_read %[[U]][%{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<2x4xf32>, vector<4xf32>
// CHECK:       %[[G0:.+]] = vector.transfer_read %[[W]]{{.+}} : tensor<?x?x2x4xf32>, vector<4xf32>
// CHECK:       %[[E0:.+]] = math.exp %[[G0]] : vector<4xf32>
// CHECK:       %[[SLOT0:.+]] = vector.transfer_write %[[E0]], %[[A0]]{{.+}} : vector<4xf32>, tensor<2x4xf32>
// CHECK:       %[[E1:.+]] = math.exp %{{.+}} : vector<4xf32>
// CHECK:       %[[SLOTS:.+]] = vector.transfer_write %[[E1]], %[[SLOT0]]{{.+}} : vector<4xf32>, tensor<2x4xf32>
// CHECK:       %[[PAIRS:.+]] = arith.divui %{{.+}}, %{{.+}} : index
// CHECK:       %[[PAIRED:.+]]:3 = scf.for %{{.+}} = %{{.+}} to %[[PAIRS]] step %{{.+}} iter_args(%[[S:.+]] = %[[TILE]], %{{.+}} = %{{.+}}, %[[A:.+]] = %[[SLOTS]]) -> (tensor<4x32xf32>, tensor<?x1x32xf32>, tensor<2x4xf32>)
// CHECK:         memref.prefetch %[[RBUF]][%[[BI]], %{{.+}}], read, locality<3>, data
// CHECK:         %[[V0:.+]] = vector.transfer_read %[[V]][%[[BI]], %[[T:.+]], %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x?x2x32xf32>, vector<16xf32>
// CHECK:         %[[KROW:.+]] = vector.transfer_read %[[K]][%[[BI]], %[[T]], %{{.+}}, %{{.+}}]
// CHECK:         %[[UK:.+]] = arith.mulf %[[UROW]], %[[KROW]] : vector<4xf32>
// CHECK:         %[[RROW:.+]] = vector.transfer_read %[[R]][%[[BI]], %[[T]], %{{.+}}, %{{.+}}]
// CHECK:         %[[RUK:.+]] = arith.mulf %[[UK]], %[[RROW]] : vector<4xf32>
// CHECK:         %[[DIAG:.+]] = vector.reduction <add>, %[[RUK]] fastmath<reassoc> : vector<4xf32> into f32
// CHECK:         %[[DIAGV:.+]] = vector.broadcast %[[DIAG]] : f32 to vector<16xf32>
// CHECK:         %[[O0:.+]] = arith.mulf %[[DIAGV]], %[[V0]] : vector<16xf32>
// CHECK:         memref.prefetch %[[RBUF]]
// CHECK:         %[[V1:.+]] = vector.transfer_read %[[V]][%[[BI]], %[[T1:.+]], %{{.+}}, %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<?x?x2x32xf32>, vector<16xf32>
// CHECK:         vector.reduction <add>
// CHECK:         scf.for %[[KI:[a-z0-9_]+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%[[SK:.+]] = %[[S]], %[[OK0:.+]] = %[[O0]], %{{.+}} = %{{.+}}, %[[OK1:.+]] = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<4x32xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:           %[[AK:.+]] = tensor.extract %[[A]][%{{.+}}, %[[KI]]] : tensor<2x4xf32>
// CHECK:           %[[AV:.+]] = vector.broadcast %[[AK]] : f32 to vector<16xf32>
// CHECK:           %[[KK:.+]] = tensor.extract %[[K]][%[[BI]], %[[T]], %{{.+}}, %[[KI]]] : tensor<?x?x2x4xf32>
// CHECK:           %[[KV:.+]] = vector.broadcast %[[KK]] : f32 to vector<16xf32>
// CHECK:           %[[RK:.+]] = tensor.extract %[[R]][%[[BI]], %[[T]], %{{.+}}, %[[KI]]] : tensor<?x?x2x4xf32>
// CHECK:           %[[RV:.+]] = vector.broadcast %[[RK]] : f32 to vector<16xf32>
// CHECK:           %[[AK1:.+]] = tensor.extract %[[A]][%{{.+}}, %[[KI]]] : tensor<2x4xf32>
// CHECK:           %[[AV1:.+]] = vector.broadcast %[[AK1]] : f32 to vector<16xf32>
// CHECK:           tensor.extract %[[K]][%[[BI]], %[[T1]], %{{.+}}, %[[KI]]]
// CHECK:           %[[KV1:.+]] = vector.broadcast
// CHECK:           tensor.extract %[[R]][%[[BI]], %[[T1]], %{{.+}}, %[[KI]]]
// CHECK:           %[[RV1:.+]] = vector.broadcast
// CHECK:           %[[ROW:.+]] = vector.transfer_read %[[SK]][%[[KI]], %{{.+}}], %{{.+}} {in_bounds = [true]} : tensor<4x32xf32>, vector<16xf32>
// CHECK:           %[[ON:.+]] = math.fma %[[RV]], %[[ROW]], %[[OK0]] : vector<16xf32>
// CHECK:           %[[KEPT:.+]] = arith.mulf %[[AV]], %[[ROW]] : vector<16xf32>
// CHECK:           %[[NEW:.+]] = math.fma %[[KV]], %[[V0]], %[[KEPT]] : vector<16xf32>
// CHECK:           %[[ON1:.+]] = math.fma %[[RV1]], %[[NEW]], %[[OK1]] : vector<16xf32>
// CHECK:           %[[KEPT1:.+]] = arith.mulf %[[AV1]], %[[NEW]] : vector<16xf32>
// CHECK:           %[[NEW1:.+]] = math.fma %[[KV1]], %[[V1]], %[[KEPT1]] : vector<16xf32>
// CHECK:           vector.transfer_write %[[NEW1]], %[[SK]][%[[KI]], %{{.+}}] {in_bounds = [true]} : vector<16xf32>, tensor<4x32xf32>
// CHECK:         math.exp %{{.+}} : vector<4xf32>
// CHECK:         math.exp %{{.+}} : vector<4xf32>
// CHECK:       %[[LAST:.+]]:2 = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %[[PAIRED]]#0, %{{.+}} = %[[PAIRED]]#1) -> (tensor<4x32xf32>, tensor<?x1x32xf32>)
// CHECK:         scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (tensor<4x32xf32>, vector<16xf32>, vector<16xf32>)
// CHECK:       tensor.insert_slice %[[LAST]]#0 into %[[TS]][%{{.+}}, 0, 0] [1, 4, 32] [1, 1, 1] : tensor<4x32xf32> into tensor<1x4x32xf32>
// CHECK:   scf.forall.in_parallel {
// CHECK-NEXT: tensor.parallel_insert_slice %{{.+}} into %[[OUT]][%[[BI]], 0, %{{.+}}, %{{.+}}] [1, %{{.+}}, 1, 32] [1, 1, 1, 1] : tensor<?x1x32xf32> into tensor<?x?x2x32xf32>
func.func @rwkv6_bonus(%r: tensor<?x?x2x4xf32>, %k: tensor<?x?x2x4xf32>,
    %v: tensor<?x?x2x32xf32>, %w: tensor<?x?x2x4xf32>, %u: tensor<2x4xf32>)
    -> tensor<?x?x2x32xf32> {
  %y = glint.recurrence q(%r) k(%k) v(%v) log_decay(%w) bonus(%u)
      : (tensor<?x?x2x4xf32>, tensor<?x?x2x4xf32>, tensor<?x?x2x32xf32>,
         tensor<?x?x2x4xf32>, tensor<2x4xf32>) -> tensor<?x?x2x32xf32>
  return %y : tensor<?x?x2x32xf32>
}

// -----

// Tests that Mamba-2 (scalar decay per head factored with delta, V = 20 not
// a multiple of 16) exponentiates one scalar per step, scales each key by
// delta, and masks the value reads and output writes of its 32-wide tile.
// CHECK-LABEL: func @mamba2
// CHECK-SAME: (%{{.+}}: tensor<?x?x1x4xf32>, %[[K:[a-z0-9_]+]]: tensor<?x?x1x4xf32>, %[[V:[a-z0-9_]+]]: tensor<?x?x3x20xf32>, %[[A:[a-z0-9_]+]]: tensor<3xf32>, %[[DT:[a-z0-9_]+]]: tensor<?x?x3xf32>)
// CHECK-NOT: glint.recurrence
// CHECK: scf.forall (%[[BI:.+]], %{{.+}}, %{{.+}}) in (%{{.+}}, 2, 1)
// CHECK:   linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<2x4x32xf32>)
// CHECK:       %[[AH:.+]] = tensor.extract %[[A]][%[[H:.+]]] : tensor<3xf32>
// CHECK:       scf.for
// CHECK:         %[[DTT:.+]] = tensor.extract %[[DT]][%[[BI]], %[[T:.+]], %[[H]]] : tensor<?x?x3xf32>
// CHECK:         vector.transfer_read %[[V]][%[[BI]], %[[T]], %[[H]], %{{.+}}], %{{[a-z0-9_]+}} : tensor<?x?x3x20xf32>, vector<16xf32>
// CHECK:         %[[G:.+]] = arith.mulf %[[AH]], %[[DTT]] : f32
// CHECK:         %[[E:.+]] = math.exp %[[G]] : f32
// CHECK:         %[[EV:.+]] = vector.broadcast %[[E]] : f32 to vector<16xf32>
// CHECK:         scf.for %[[KI:[a-z0-9_]+]] =
// CHECK:           %[[KK:.+]] = tensor.extract %[[K]][%[[BI]], %[[T]], %{{.+}}, %[[KI]]] : tensor<?x?x1x4xf32>
// CHECK:           arith.mulf %[[KK]], %[[DTT]] : f32
// CHECK:           arith.mulf %[[EV]], %{{.+}} : vector<16xf32>
// CHECK:         vector.transfer_write %{{.+}}, %{{.+}}[%[[T]], %{{.+}}, %{{.+}}] : vector<16xf32>, tensor<?x?x?xf32>
func.func @mamba2(%q: tensor<?x?x1x4xf32>, %k: tensor<?x?x1x4xf32>,
    %v: tensor<?x?x3x20xf32>, %a: tensor<3xf32>, %dt: tensor<?x?x3xf32>)
    -> tensor<?x?x3x20xf32> {
  %y = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
      : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x3x20xf32>,
         tensor<3xf32>, tensor<?x?x3xf32>) -> tensor<?x?x3x20xf32>
  return %y : tensor<?x?x3x20xf32>
}

// -----

// Tests that RWKV-4's ratio form, which has no vector form, is left to
// glint-lower-recurrence.
// CHECK-LABEL: func @rwkv4_normalize
// CHECK: glint.recurrence normalize
// CHECK-NOT: vector.
func.func @rwkv4_normalize(%k: tensor<?x?x8x1xf32>, %v: tensor<?x?x8x1xf32>,
    %w: tensor<8xf32>, %u: tensor<8x1xf32>) -> tensor<?x?x8x1xf32> {
  %y = glint.recurrence normalize k(%k) v(%v) log_decay(%w) bonus(%u)
      : (tensor<?x?x8x1xf32>, tensor<?x?x8x1xf32>, tensor<8xf32>,
         tensor<8x1xf32>) -> tensor<?x?x8x1xf32>
  return %y : tensor<?x?x8x1xf32>
}
