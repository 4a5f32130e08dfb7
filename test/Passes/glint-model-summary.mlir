// RUN: glint-opt %s -glint-model-summary -o /dev/null | FileCheck %s --check-prefix=TEXT
// RUN: glint-opt %s -glint-model-summary=output-format=json -o /dev/null | FileCheck %s --check-prefix=JSON
// RUN: glint-opt %s -glint-model-summary | FileCheck %s --check-prefix=IR
// RUN: not glint-opt %s -glint-model-summary=output-format=xml -o /dev/null 2>&1 | FileCheck %s --check-prefix=BAD

// Tests the summary of a two-mixer model with weights and an attention layer.

// TEXT: glint model summary
// TEXT-NEXT: weights: 3 external tensors, 72 parameters
// TEXT-NEXT: func @forward: 2 token mixers, 1 softmax attention layers
// TEXT-NEXT: mixer layers.0.mixer: glint.act×1 glint.conv1d×1 glint.recurrence×1
// TEXT-NEXT: conv1d {"bias":false,"channels":8,"reverse":false,"width":4}
// TEXT-NEXT: recurrence {"bonus":false,"decay":"time-invariant per key","delta":true,"heads":8,"key":4,"key_groups":1,"normalize":false,"query":true,"reverse":true,"skip":false,"state_in":false,"state_out":false,"value":1}
// TEXT-NEXT: mixer (unlabelled): glint.act×1

// JSON: {"functions":[{"attention_layers":1,"mixers":[{"channels_in":8,"channels_out":8,"convolutions":[{"bias":false,"channels":8,"reverse":false,"width":4}],"label":"layers.0.mixer","ops":{"glint.act":1,"glint.conv1d":1,"glint.recurrence":1},"recurrences":[{{.*}}"heads":8{{.*}}]},{"channels_in":8,"channels_out":8,"convolutions":[],"label":null,"ops":{"glint.act":1},"recurrences":[]}],"name":"forward"}],"weights":{"count":3,"dynamic_shape":[],"parameters":72}}

// The pass leaves the IR as it was.
// IR: glint.mixer label "layers.0.mixer"

// BAD: unknown output-format 'xml' (expected 'text' or 'json')

module {
  ml_program.global private @"conv.weight"(#ml_program.extern : tensor<8x4xf32>) : tensor<8x4xf32>
  ml_program.global private @"A"(#ml_program.extern : tensor<8x4xf32>) : tensor<8x4xf32>
  ml_program.global private @"dt"(#ml_program.extern : tensor<8xf32>) : tensor<8xf32>
  func.func @forward(%x: tensor<?x?x8xf32>, %q: tensor<?x?x1x4xf32>,
      %k: tensor<?x?x1x4xf32>, %dt: tensor<?x?x8xf32>,
      %aq: tensor<?x?x2x4xf32>, %ak: tensor<?x?x1x4xf32>) -> tensor<?x?x8xf32> {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %b = tensor.dim %x, %c0 : tensor<?x?x8xf32>
    %l = tensor.dim %x, %c1 : tensor<?x?x8xf32>
    %y = glint.mixer label "layers.0.mixer" (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
    ^bb0(%xv: tensor<?x?x8xf32>):
      %w = ml_program.global_load_const @"conv.weight" : tensor<8x4xf32>
      %c = glint.conv1d %xv, %w : (tensor<?x?x8xf32>, tensor<8x4xf32>) -> tensor<?x?x8xf32>
      %u = glint.act silu %c : tensor<?x?x8xf32>
      %v = tensor.expand_shape %u [[0], [1], [2, 3]] output_shape [%b, %l, 8, 1] : tensor<?x?x8xf32> into tensor<?x?x8x1xf32>
      %a = ml_program.global_load_const @"A" : tensor<8x4xf32>
      %s = glint.recurrence reverse q(%q) k(%k) v(%v) log_decay(%a) delta(%dt)
          : (tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x8x1xf32>, tensor<8x4xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8x1xf32>
      %s2 = tensor.collapse_shape %s [[0], [1], [2, 3]] : tensor<?x?x8x1xf32> into tensor<?x?x8xf32>
      glint.yield %s2 : tensor<?x?x8xf32>
    }
    %y2 = glint.mixer (%y) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
    ^bb0(%v: tensor<?x?x8xf32>):
      %t = glint.act tanh %v : tensor<?x?x8xf32>
      glint.yield %t : tensor<?x?x8xf32>
    }
    %o = glint.attention %aq, %ak, %ak scale 0.5
        : (tensor<?x?x2x4xf32>, tensor<?x?x1x4xf32>, tensor<?x?x1x4xf32>) -> tensor<?x?x2x4xf32>
    return %y2 : tensor<?x?x8xf32>
  }
}
