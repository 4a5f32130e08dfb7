// RUN: glint-opt %s -glint-flush-denormals -verify-diagnostics

// Tests that an entry point of several blocks (the pass runs before the
// loops become control flow, so a model's never has) is refused, naming it.
// expected-error @+1 {{has several blocks; glint-flush-denormals brackets single-block bodies only}}
func.func @forward(%x: f32) -> f32 {
  cf.br ^next(%x : f32)
^next(%y: f32):
  return %y : f32
}
