// RUN: not glint-opt %s -glint-chunk-recurrence=form=fast 2>&1 | FileCheck %s --check-prefix=FORM
// RUN: glint-opt %s -glint-chunk-recurrence="form=chunked vector-width=12" -verify-diagnostics

// Tests that an unknown form is rejected with the option's name rather than
// silently treated as auto (the form is an enum option).
// FORM: for the --form option: Cannot find option named 'fast'!

// Tests that a vector width that is not a power of two is an error on the
// module, not a miscompile.
// expected-error @below {{glint-chunk-recurrence: vector-width must be a power of two from 1 to 64 (f32 lanes), not 12}}
module {
  func.func @unknown_form(%k: tensor<?x?x1x4xf32>, %v: tensor<?x?x2x8xf32>,
      %g: tensor<2xf32>) -> tensor<?x?x2x8xf32> {
    %y = glint.recurrence k(%k) v(%v) log_decay(%g)
        : (tensor<?x?x1x4xf32>, tensor<?x?x2x8xf32>, tensor<2xf32>)
        -> tensor<?x?x2x8xf32>
    return %y : tensor<?x?x2x8xf32>
  }
}
