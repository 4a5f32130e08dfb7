//===- Passes.td - glint passes ----------------------------*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_TD
#define GLINT_PASSES_TD

include "mlir/Pass/PassBase.td"

def GlintInlineMixers : Pass<"glint-inline-mixers"> {
  let summary = "Replaces each glint.mixer by the ops of its body";
  let description = [{
    The first step of the scan pipeline: the token-mixer structure matters to
    the attention-form rewrite only. The body of each `glint.mixer` is moved
    in front of the mixer, its block argument replaced by the mixer's value
    input, and the mixer's result by the yielded value.

    Before:
    ```mlir
    %y = glint.mixer (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
    ^bb0(%v: tensor<?x?x8xf32>):
      %a = glint.act silu %v : tensor<?x?x8xf32>
      glint.yield %a : tensor<?x?x8xf32>
    }
    ```
    After:
    ```mlir
    %y = glint.act silu %x : tensor<?x?x8xf32>
    ```
  }];
  let dependentDialects = [];
}

def GlintModelSummary : Pass<"glint-model-summary", "ModuleOp"> {
  let summary = "Reports the layer structure and weights of a glint model";
  let description = [{
    An analysis pass that leaves the IR unchanged and prints, per function,
    each token mixer (its label and the glint ops in it, with the form of
    every recurrence: heads, key and value sizes, decay form, delta, bonus,
    skip, direction), the softmax attention layers, and the external weights
    (`ml_program.global` with `#ml_program.extern`) with their parameter
    count. `output-format=json` prints one JSON object for tools.
  }];
  let options = [
    Option<"outputFormat", "output-format", "std::string", /*default=*/"\"text\"",
           "Output format: 'text' or 'json'">,
    Option<"outputFile", "output-file", "std::string", /*default=*/"\"-\"",
           "Where to write the summary ('-' is stdout)">
  ];
}

#endif // GLINT_PASSES_TD
