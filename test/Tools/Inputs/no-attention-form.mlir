// Input of glint-explain.test: a mixer whose value path goes through a
// channel-mixing projection (no attention form). Not a test by itself.
module {
  ml_program.global private @"backbone.embeddings.weight"(#ml_program.extern : tensor<62x32xf32>) : tensor<62x32xf32>
  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x32xf32> {
    %emb = ml_program.global_load_const @"backbone.embeddings.weight" : tensor<62x32xf32>
    %h = glint.embedding %ids, %emb : (tensor<?x?xi64>, tensor<62x32xf32>) -> tensor<?x?x32xf32>
    %y = glint.mixer label "mixing" (%h) : tensor<?x?x32xf32> -> tensor<?x?x32xf32> {
    ^bb0(%x: tensor<?x?x32xf32>):
      %p = glint.linear %x, %emb : (tensor<?x?x32xf32>, tensor<62x32xf32>) -> tensor<?x?x62xf32>
      %q = tensor.extract_slice %p[0, 0, 0] [1, 2, 32] [1, 1, 1] : tensor<?x?x62xf32> to tensor<1x2x32xf32>
      %r = tensor.cast %q : tensor<1x2x32xf32> to tensor<?x?x32xf32>
      glint.yield %r : tensor<?x?x32xf32>
    }
    return %y : tensor<?x?x32xf32>
  }
}
