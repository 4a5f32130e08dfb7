// RUN: glint-opt %s -glint-to-attention -split-input-file -verify-diagnostics

// A linear projection that mixes channels on the value path: the layer has
// no channel-diagonal attention form, and the pass names the op.
func.func @mixes_channels(%x: tensor<?x?x4xf32>, %w: tensor<4x4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.mixer label "bad" (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    // expected-error @+1 {{'glint.linear' op mixes channels on the value path of layer "bad" but has no attention form}}
    %p = glint.linear %v, %w : (tensor<?x?x4xf32>, tensor<4x4xf32>) -> tensor<?x?x4xf32>
    glint.yield %p : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// An activation with f(0) != 0 has no diagonal form f(x) = phi(x) x.
func.func @sigmoid_on_path(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.mixer (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    // expected-error @+1 {{'sigmoid' on a layer's value path has f(0) != 0}}
    %s = glint.act sigmoid %v : tensor<?x?x4xf32>
    glint.yield %s : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// A product of two values that both depend on the value input.
func.func @quadratic(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.mixer (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    %s = glint.act silu %v : tensor<?x?x4xf32>
    // expected-error @+1 {{multiplies two values that both depend on the layer's value input}}
    %p = arith.mulf %s, %v : tensor<?x?x4xf32>
    glint.yield %p : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// A carried state is not part of one sequence's attention matrix.
func.func @with_state(%x: tensor<?x?x4xf32>, %w: tensor<4x3xf32>, %s0: tensor<?x2x4xf32>) -> tensor<?x?x4xf32> {
  %y = glint.mixer (%x) : tensor<?x?x4xf32> -> tensor<?x?x4xf32> {
  ^bb0(%v: tensor<?x?x4xf32>):
    // expected-error @+1 {{on a layer's value path must not have an initial state}}
    %c = glint.conv1d %v, %w initial_state(%s0) : (tensor<?x?x4xf32>, tensor<4x3xf32>, tensor<?x2x4xf32>) -> tensor<?x?x4xf32>
    glint.yield %c : tensor<?x?x4xf32>
  }
  return %y : tensor<?x?x4xf32>
}

// -----

// An unknown formulation is reported, not guessed.
// RUN: not glint-opt %s -glint-to-attention=formulation=best 2>&1 | FileCheck %s --check-prefix=FORM
// FORM: unknown formulation 'best' (expected unified, scan-only, no-conv, no-gate or no-act)
func.func @any(%x: tensor<?x?x4xf32>) -> tensor<?x?x4xf32> {
  return %x : tensor<?x?x4xf32>
}
