//===- Passes.td - glint passes: target-independent glint to glint rewrites ---*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_TRANSFORMS_PASSES_TD
#define GLINT_PASSES_TRANSFORMS_PASSES_TD

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

def GlintExposeState : Pass<"glint-expose-state", "ModuleOp"> {
  let summary = "Adds a step function that carries the sequence state between calls";
  let description = [{
    Clones the model function `@forward(inputs) -> results` into
    `@forward_step(inputs, states) -> (results, next states)`: called on
    consecutive pieces of a sequence (a prompt, then one token at a time),
    each call continuing from the states the previous one returned, it
    computes what `@forward` computes on the whole sequence, at a cost that
    does not grow with the length of what came before (greedy generation).
    The step function inlines the mixers (it is an execution form) and gives
    every op that looks back along the sequence its carried state:

    * `glint.recurrence`: `initial_state` in, `final_state` out
      (`[B, H, K, V]`; RWKV-4's ratio form `[B, H, K, V + 2]`, where a zero
      denominator marks an empty history and starts the running max at
      −∞);
    * `glint.conv1d` of width `W > 1`: its last `W − 1` inputs `[B, W−1, C]`;
    * `glint.token_shift`: its last input `[B, C]`;
    * windowed `glint.attention`: the keys and values of the last `W − 1`
      positions (`[B, W−1, G, D]`, `[B, W−1, G, E]`);
    * a `position` state (`tensor<i64>`, the number of tokens before the
      call) when a `glint.rotary` or an attention cache needs it.

    Every state starts as zeros: the first call starts a sequence. States
    follow the inputs, in program order (`position` first); the function
    returns the original results, then the next states in the same order.
    Each state argument and result carries `glint.state = "<name>"`: the
    op's own `glint.state` attribute (glint-import names every stateful op
    after its checkpoint prefix, e.g. `backbone.layers.0.mixer.conv1d`), else
    its location name (`NameLoc`), else the enclosing mixer's label and the
    op (`layers.0.mixer.recurrence`), else the op; made unique with `.1`,
    `.2`, …; an attention's two caches add `.key_cache` and `.value_cache`.

    Ops that cannot continue from a state are rejected with an error naming
    them: anything running backwards (`reverse`), attention without a window
    (its cache would grow with the sequence), ops that already carry a state
    or a rotary offset, and stateful ops nested in other regions. The model
    must be causal otherwise: the ops between the stateful ones act on each
    token on its own.

    Before:
    ```mlir
    func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
      %y = glint.token_shift %x : (tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
      return %y : tensor<?x?x8xf32>
    }
    ```
    After (`@forward` unchanged):
    ```mlir
    func.func @forward_step(%x: tensor<?x?x8xf32>,
        %s: tensor<?x8xf32> {glint.state = "token_shift"})
        -> (tensor<?x?x8xf32>, tensor<?x8xf32> {glint.state = "token_shift"}) {
      %y, %next = glint.token_shift %x initial_state(%s)
          : (tensor<?x?x8xf32>, tensor<?x8xf32>)
          -> (tensor<?x?x8xf32>, tensor<?x8xf32>)
      return %y, %next : tensor<?x?x8xf32>, tensor<?x8xf32>
    }
    ```
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"forward\"",
           "The model function">,
    Option<"stepFunction", "step-function", "std::string", /*default=*/"\"\"",
           "Name of the step function (default: <function>_step)">
  ];
  let dependentDialects = ["arith::ArithDialect", "tensor::TensorDialect"];
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

def GlintExternalizeWeights
    : Pass<"glint-externalize-weights", "ModuleOp"> {
  let summary = "Turns weights bound by name into arguments of the model";
  let description = [{
    Rewrites each function that loads external weights
    (`ml_program.global_load_const` of an `ml_program.global` whose value is
    `#ml_program.extern`) to take them as trailing arguments instead, in
    first-use order, each marked with the argument attribute
    `glint.weight = "<name>"`; weights with an inline value become
    constants. The globals are then removed, every tensor argument is marked
    `bufferization.writable = false` (the caller's inputs and weights are
    reused across calls and must never be updated in place), and public
    functions are marked `llvm.emit_c_interface`. This is the ABI of compiled models: the runtime
    maps a checkpoint and passes each tensor by name.

    Before:
    ```mlir
    ml_program.global private @w(#ml_program.extern : tensor<4xf32>) : tensor<4xf32>
    func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %w = ml_program.global_load_const @w : tensor<4xf32>
      ...
    ```
    After:
    ```mlir
    func.func @forward(%x: tensor<?x4xf32>,
                       %w: tensor<4xf32> {glint.weight = "w"}) -> tensor<?x4xf32> {
      ...
    ```
  }];
  let dependentDialects = ["arith::ArithDialect"];
}

def GlintToAttention : Pass<"glint-to-attention", "func::FuncOp"> {
  let summary = "Rewrites every token-mixing layer into its implicit attention";
  let description = [{
    The attention form (after Zimerman, Ali & Wolf, ICLR 2025; see
    docs/rationale.md, "The attention form").
    Each `glint.mixer` is read as `y = A(x) · x + offset`: the pass follows the
    value input `x` through the layer's body and rewrites every op on that
    path into a factor of a per-channel `L × L` matrix (`!glint.map`):

    | op on the value path | factor |
    |---|---|
    | `glint.conv1d` | banded Toeplitz matrix (`map_conv`); its bias → offset |
    | `glint.token_shift` | shift matrix (`map_shift`) |
    | `glint.act` | data-controlled diagonal φ(v) (`act_gain`, `map_scale`) |
    | `arith.mulf` by a control | gate diagonal (`map_scale`) |
    | `rms_norm`, `layer_norm`, `group_norm` | diagonal w/σ; the centring → offset |
    | `glint.recurrence` (value operand) | its unrolled matrix (`map_scan`) |
    | `glint.attention` (value operand) | its softmax matrix (`map_attention`) |
    | `arith.addf` of two branches | sum (`map_add`), e.g. bidirectional layers |
    | `expand_shape` / `collapse_shape` of channels | `map_reshape` |

    Every other value (gates, keys, decays, the selective Δ, B, C computed
    from `x`) is a control that parameterises the matrix. An op that mixes
    channels on the value path (e.g. `glint.linear`), or multiplies two
    values that both depend on `x`, has no such form: the pass fails, naming
    it. Softmax `glint.attention` layers outside any mixer are hybrid layers
    whose explicit matrix passes through unchanged.

    Each layer's matrices are reduced by `glint.map_reduce` (option
    `aggregate`, `channels`, `row`) and appended to the function's results,
    in layer order; the function gets `glint.attention_layers` (the labels)
    and `glint.formulation`. With the exact `unified` formulation the layer
    output is recomputed as `map_apply(A, x) + offset` (offset: conv and
    norm biases and norm centring, carried through the later factors), so
    the rewritten model computes the same function as the scan form. The
    comparison formulations keep the layer's own output: `scan-only` (the
    recurrence alone, as in Ali et al. 2024, without the skip `D`),
    `no-conv`, `no-gate`, `no-act` (the unified matrix without that factor).
  }];
  let options = [
    Option<"formulation", "formulation", "std::string", /*default=*/"\"unified\"",
           "unified | scan-only | no-conv | no-gate | no-act">,
    Option<"aggregate", "aggregate", "std::string", /*default=*/"\"mean\"",
           "mean | mean_abs | sum | full (every channel)">,
    ListOption<"channels", "channels", "int64_t",
               "Only these (flattened) output channels of each layer">,
    Option<"row", "row", "int64_t", /*default=*/"0",
           "With has-row: only this row of each matrix (negative: from the end)">,
    Option<"hasRow", "has-row", "bool", /*default=*/"false",
           "Produce one row per matrix instead of the whole matrix">,
    Option<"attribution", "attribution", "bool", /*default=*/"false",
           "Return each layer's gradient-weighted attribution map "
           "(glint.map_attribution) instead of its channel aggregate; the "
           "cotangent of each layer's output (glint-differentiate) is read "
           "from one more function argument per layer, after the inputs">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "tensor::TensorDialect"];
}

def GlintDifferentiate : Pass<"glint-differentiate", "ModuleOp"> {
  let summary = "Adds the reverse-mode gradient function of a model";
  let description = [{
    Clones the model function `@forward(inputs) -> (out, ...)` into
    `@forward_grad(inputs, seed) -> (out, ..., g_1, ..., g_n, g_in...)`, which
    also computes the vector–Jacobian product of its first result with
    `seed` (a tensor of `out`'s type: a one-hot seed picks one logit or one
    class score at one position), with respect to

    * the output of every token-mixing layer (each `glint.mixer`, and each
      `glint.attention` outside one), in program order, labelled as
      glint-to-attention labels them (`glint.gradient_layers`);
    * the model input: the result of every `glint.embedding` (token
      models), else every floating-point argument (images).

    Weights are constants. The mixers are inlined; each op on a path from
    the input to the output contributes its backward rule: a glint op's is
    its `DifferentiableOpInterface` (next to the op; recurrences and softmax
    attention get `glint.recurrence_grad` / `glint.attention_grad`), the
    standard ops' (sums, products, quotients, negation, `math.exp`,
    `math.sqrt`, slices, concatenation, reshapes, transposes) are here.
    Contributions of several uses are summed. An op on such a path without a
    rule is an error naming it.

    Before:
    ```mlir
    func.func @forward(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
      %y = glint.act tanh %x : tensor<?x?x8xf32>
      return %y : tensor<?x?x8xf32>
    }
    ```
    After (`@forward` unchanged; `g` is the cotangent of `%x`):
    ```mlir
    func.func @forward_grad(%x: tensor<?x?x8xf32>, %seed: tensor<?x?x8xf32>)
        -> (tensor<?x?x8xf32>, tensor<?x?x8xf32>) {
      %y = glint.act tanh %x : tensor<?x?x8xf32>
      // g = seed * (1 - y * y)
      ...
      return %y, %g : tensor<?x?x8xf32>, tensor<?x?x8xf32>
    }
    ```
  }];
  let options = [
    Option<"function", "function", "std::string", /*default=*/"\"forward\"",
           "The model function">,
    Option<"gradientFunction", "gradient-function", "std::string",
           /*default=*/"\"\"",
           "Name of the gradient function (default: <function>_grad)">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "tensor::TensorDialect"];
}

#endif // GLINT_PASSES_TRANSFORMS_PASSES_TD
