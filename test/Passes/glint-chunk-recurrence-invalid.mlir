// RUN: glint-opt %s -glint-chunk-recurrence=form=fast -verify-diagnostics

// Tests that an unknown form is rejected with the forms there are, rather
// than silently treated as auto.
// expected-error @below {{glint-chunk-recurrence: form must be auto, recurrent or chunked, not 'fast'}}
module {
  func.func @unknown_form(%k: tensor<?x?x1x4xf32>, %v: tensor<?x?x2x8xf32>,
      %g: tensor<2xf32>) -> tensor<?x?x2x8xf32> {
    %y = glint.recurrence k(%k) v(%v) log_decay(%g)
        : (tensor<?x?x1x4xf32>, tensor<?x?x2x8xf32>, tensor<2xf32>)
        -> tensor<?x?x2x8xf32>
    return %y : tensor<?x?x2x8xf32>
  }
}
