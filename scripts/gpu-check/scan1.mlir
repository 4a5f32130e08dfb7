// The Mamba-1 selective scan at the issue's benchmark shape (D = 4096,
// N = 16), fed from token ids so that glint-run can drive it: u, delta, B
// and C are rows of tables picked by the ids, A and the skip D are weights.
// gpu-check.sh times the scan kernel alone (GLINT_CUDA_PROFILE).
module {
  ml_program.global private @"u.weight"(#ml_program.extern : tensor<256x4096xf32>) : tensor<256x4096xf32>
  ml_program.global private @"dt.weight"(#ml_program.extern : tensor<256x4096xf32>) : tensor<256x4096xf32>
  ml_program.global private @"b.weight"(#ml_program.extern : tensor<256x16xf32>) : tensor<256x16xf32>
  ml_program.global private @"c.weight"(#ml_program.extern : tensor<256x16xf32>) : tensor<256x16xf32>
  ml_program.global private @"A"(#ml_program.extern : tensor<4096x16xf32>) : tensor<4096x16xf32>
  ml_program.global private @"D"(#ml_program.extern : tensor<4096xf32>) : tensor<4096xf32>

  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x4096xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %tu = ml_program.global_load_const @"u.weight" : tensor<256x4096xf32>
    %tdt = ml_program.global_load_const @"dt.weight" : tensor<256x4096xf32>
    %tb = ml_program.global_load_const @"b.weight" : tensor<256x16xf32>
    %tc = ml_program.global_load_const @"c.weight" : tensor<256x16xf32>
    %a = ml_program.global_load_const @"A" : tensor<4096x16xf32>
    %d = ml_program.global_load_const @"D" : tensor<4096xf32>
    %u = glint.embedding %ids, %tu : (tensor<?x?xi64>, tensor<256x4096xf32>) -> tensor<?x?x4096xf32>
    %dt = glint.embedding %ids, %tdt : (tensor<?x?xi64>, tensor<256x4096xf32>) -> tensor<?x?x4096xf32>
    %bm = glint.embedding %ids, %tb : (tensor<?x?xi64>, tensor<256x16xf32>) -> tensor<?x?x16xf32>
    %cm = glint.embedding %ids, %tc : (tensor<?x?xi64>, tensor<256x16xf32>) -> tensor<?x?x16xf32>
    %b = tensor.dim %u, %c0 : tensor<?x?x4096xf32>
    %l = tensor.dim %u, %c1 : tensor<?x?x4096xf32>
    %q = tensor.expand_shape %cm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    %k = tensor.expand_shape %bm [[0], [1], [2, 3]] output_shape [%b, %l, 1, 16] : tensor<?x?x16xf32> into tensor<?x?x1x16xf32>
    %v = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, %l, 4096, 1] : tensor<?x?x4096xf32> into tensor<?x?x4096x1xf32>
    %s = glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) delta(%dt) skip(%d) : (tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x4096x1xf32>, tensor<4096x16xf32>, tensor<?x?x4096xf32>, tensor<4096xf32>) -> tensor<?x?x4096x1xf32>
    %y = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x4096x1xf32> into tensor<?x?x4096xf32>
    return %y : tensor<?x?x4096xf32>
  }
}
