//===- GlintOps.td - glint operations ----------------------*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_OPS_TD
#define GLINT_OPS_TD

include "dialect/GlintBase.td"
include "dialect/GlintInterfaces.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Glint_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Glint_IdTensor : RankedTensorOf<[AnySignlessInteger, Index]>;

//===----------------------------------------------------------------------===//
// Token-mixer structure
//===----------------------------------------------------------------------===//

def Glint_MixerOp : Glint_Op<"mixer", [
    SingleBlock, RecursiveMemoryEffects]> {
  let summary = "one token-mixing layer, as a function of its value input";
  let description = [{
    Delimits one token-mixing layer: the region computes the layer's output
    from its *value input* `x`, a `[batch, seq, channels]` tensor passed in as
    the region's single block argument. The implicit-attention rewrite
    (`glint-to-attention`) reads the region as `y = A(x) · x + bias`: it
    follows the value input through the region (convolutions become banded
    Toeplitz matrices, activations and gates data-controlled diagonals,
    recurrences their unrolled attention matrices) while every other value
    the region uses (gates, keys, decays, weights; captured from above or
    computed inside) is a *control* input that parameterises `A`.

    The scan pipeline simply inlines the region (`glint-inline-mixers`).
    The optional `label` names the layer in reports.

    Example (a gated Mamba-1 mixer, abbreviated):

    ```mlir
    %y = glint.mixer label "layers.0.mixer" (%x)
        : tensor<?x?x64xf32> -> tensor<?x?x64xf32> {
    ^bb0(%xv: tensor<?x?x64xf32>):
      %c = glint.conv1d %xv, %w bias %cb
          : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>)
          -> tensor<?x?x64xf32>
      %u = glint.act silu %c : tensor<?x?x64xf32>
      // ... recurrence, gate ...
      glint.yield %u : tensor<?x?x64xf32>
    }
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input, OptionalAttr<StrAttr>:$label);
  let results = (outs Glint_FloatTensor:$result);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    (`label` $label^)? `(` $input `)` attr-dict `:` type($input) `->`
    type($result) $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The block argument that stands for the value input inside the body.
    BlockArgument getValueArgument() { return getBody().getArgument(0); }
    YieldOp getYield();
  }];
}

def Glint_YieldOp : Glint_Op<"yield", [
    Pure, HasParent<"MixerOp">, ReturnLike, Terminator]> {
  let summary = "returns the output of a `glint.mixer` region";
  let description = [{
    Terminates the body of a `glint.mixer`; its operand is the layer output.

    ```mlir
    glint.yield %out : tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

//===----------------------------------------------------------------------===//
// The recurrence
//===----------------------------------------------------------------------===//

def Glint_RecurrenceOp : Glint_Op<"recurrence", [
    Pure, AttrSizedOperandSegments, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>,
    DeclareOpInterfaceMethods<Glint_StreamingOpInterface>,
    DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>]> {
  let summary = "general gated-linear recurrence (matrix state per head)";
  let description = [{
    Per batch element and head `h`, a state `S` of shape `K × V` evolves over
    the sequence as

    ```
    S_t = diag(exp(g_t)) · S_{t-1} + k_t v_tᵀ        (g_t ≤ 0: log-decay)
    o_t = S_tᵀ q_t (+ skip[h] · v_t)
    ```

    Operands, with `B` batch, `L` sequence, `H` value heads, `G` key groups
    (`H % G == 0`; head `h` uses key group `h / (H / G)`), `K` key size and
    `V` value size:

    * `q`: `[B, L, G, K]` queries; absent means a query of ones (the state is
      summed over its key axis, as for RG-LRU where `K = 1`).
    * `k`: `[B, L, G, K]` keys; `v`: `[B, L, H, V]` values.
    * `log_decay`: the log-decay `g`, in one of four forms:
      `[B, L, H, K]` (data-dependent, per key: GLA, RWKV-6, HGRN-2),
      `[B, L, H]` (data-dependent, per head: RG-LRU, Mamba-2 without `delta`),
      `[H, K]` or `[H]` (time-invariant: Mamba's `A`, RetNet, RWKV-4).
    * `delta`: `[B, L, H]`, the discretisation step of Mamba-1/-2. With it the
      decay is kept factored, `g_t[h, :] = delta_t[h] · log_decay[h, :]`, and
      the input term is scaled by it: `S_t = … + delta_t[h] · k_t v_tᵀ`
      (Euler `B̄ = Δ·B`). No `[B, L, H, K]` tensor is ever materialised.
      `log_decay` must then be time-invariant.
    * `bonus`: `[H, K]`, RWKV's `u`: the current token enters the read-out
      with key `u ⊙ k_t` instead of through the state, and the state read is
      `S_{t-1}`: `o_t = S_{t-1}ᵀ q_t + (q_t · (u ⊙ k_t)) v_t`.
    * `skip`: `[H]`, Mamba's `D`: adds `skip[h] · v_t` to the output.
    * `initial_state`: `[B, H, K, V]` (`[B, H, K, V + 2]` with `normalize`);
      zero when absent. The optional second result is the final state, so
      that generation can carry the state between calls.

    `reverse` runs the recurrence from the last position to the first (the
    backward branch of a bidirectional layer); outputs stay in sequence
    order.

    `normalize` selects RWKV-4's ratio form (requires `K = 1` and no `q` or
    `delta`): keys are *log*-weights, the output is the ratio of a scan over
    `v` to a scan over ones,

    ```
    o_t = Σ_{j<t} e^{G(j,t) + k_j} v_j + e^{u + k_t} v_t
          ---------------------------------------------
          Σ_{j<t} e^{G(j,t) + k_j}     + e^{u + k_t}
    ```

    evaluated with max-stabilised exponentials; its state holds
    `[numerator (V), denominator, running max]` along the last axis.

    Example (Mamba-1, 64 channels, state 16, `B` and `C` shared by all
    channels):

    ```mlir
    %y = glint.recurrence q(%C) k(%B) v(%u) log_decay(%A) delta(%dt) skip(%D)
        : (tensor<?x?x1x16xf32>, tensor<?x?x1x16xf32>, tensor<?x?x64x1xf32>,
           tensor<64x16xf32>, tensor<?x?x64xf32>, tensor<64xf32>)
        -> tensor<?x?x64x1xf32>
    ```
  }];
  let arguments = (ins
    Optional<Glint_FloatTensor>:$q,
    Glint_FloatTensor:$k,
    Glint_FloatTensor:$v,
    Glint_FloatTensor:$log_decay,
    Optional<Glint_FloatTensor>:$delta,
    Optional<Glint_FloatTensor>:$bonus,
    Optional<Glint_FloatTensor>:$skip,
    Optional<Glint_FloatTensor>:$initial_state,
    UnitAttr:$reverse,
    UnitAttr:$normalize
  );
  let results = (outs Glint_FloatTensor:$output,
                      Optional<Glint_FloatTensor>:$final_state);
  let assemblyFormat = [{
    (`reverse` $reverse^)? (`normalize` $normalize^)?
    (`q` `(` $q^ `)`)? `k` `(` $k `)` `v` `(` $v `)`
    `log_decay` `(` $log_decay `)` (`delta` `(` $delta^ `)`)?
    (`bonus` `(` $bonus^ `)`)? (`skip` `(` $skip^ `)`)?
    (`initial_state` `(` $initial_state^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// How the log-decay operand is laid out.
    enum class DecayForm { PerKey, PerHead, StaticPerKey, StaticPerHead };
    DecayForm getDecayForm();
    /// `[B, L, H, V]` sizes taken from `v` and `K` from `k`.
    int64_t getNumHeads();
    int64_t getNumKeyGroups();
    int64_t getKeySize();
    int64_t getValueSize();
  }];
}

//===----------------------------------------------------------------------===//
// Sequence ops with short memory
//===----------------------------------------------------------------------===//

def Glint_Conv1dOp : Glint_Op<"conv1d", [
    Pure, AttrSizedOperandSegments, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>,
    DeclareOpInterfaceMethods<Glint_StreamingOpInterface>,
    DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>]> {
  let summary = "causal depthwise 1-D convolution along the sequence";
  let description = [{
    For input `x : [B, L, C]`, weight `w : [C, W]` (any width `W ≥ 1`) and
    optional bias `b : [C]`:

    ```
    y[t, c] = b[c] + Σ_{i=0}^{W-1} w[c, i] · x[t - (W-1) + i, c]
    ```

    Positions before the start read `initial_state : [B, W-1, C]` (the last
    `W-1` inputs of a previous call), or zero when it is absent; the optional
    second result is the state after this call. With `reverse` the
    convolution is anti-causal, `y = flip(conv1d(flip(x)))`, as in the
    backward branch of a bidirectional layer (the state then holds the
    positions after the end). In the attention form the op is the banded
    Toeplitz matrix `T[i, j] = w[W-1-(i-j)]` for `0 ≤ i-j < W`.

    A PyTorch depthwise `Conv1d` weight `[C, 1, W]` is collapsed to `[C, W]`.

    ```mlir
    %y = glint.conv1d %x, %w bias %b
        : (tensor<?x?x64xf32>, tensor<64x4xf32>, tensor<64xf32>)
        -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input, Glint_FloatTensor:$weight,
                       Optional<Glint_FloatTensor>:$bias,
                       Optional<Glint_FloatTensor>:$initial_state,
                       UnitAttr:$reverse);
  let results = (outs Glint_FloatTensor:$output,
                      Optional<Glint_FloatTensor>:$final_state);
  let assemblyFormat = [{
    (`reverse` $reverse^)? $input `,` $weight (`bias` $bias^)?
    (`initial_state` `(` $initial_state^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    int64_t getWidth() {
      return getWeight().getType().getDimSize(1);
    }
  }];
}

def Glint_TokenShiftOp : Glint_Op<"token_shift", [
    Pure, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>, DeclareOpInterfaceMethods<Glint_StreamingOpInterface>,
    DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>]> {
  let summary = "shifts a sequence one position later (RWKV token shift)";
  let description = [{
    `y[t] = x[t-1]` for `x : [B, L, C]`; `y[0]` is `initial_state : [B, C]`
    (the last token of a previous call), or zero when absent. The optional
    second result is `x[L-1]`, the state for the next call. In the attention
    form it is the sub-diagonal shift matrix.

    ```mlir
    %xx = glint.token_shift %x : (tensor<?x?x64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input,
                       Optional<Glint_FloatTensor>:$initial_state);
  let results = (outs Glint_FloatTensor:$output,
                      Optional<Glint_FloatTensor>:$final_state);
  let assemblyFormat = [{
    $input (`initial_state` `(` $initial_state^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// Softmax attention (hybrid models)
//===----------------------------------------------------------------------===//

def Glint_AttentionOp : Glint_Op<"attention", [
    Pure, AttrSizedOperandSegments, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>,
    DeclareOpInterfaceMethods<Glint_StreamingOpInterface, [
        "getStateNameSuffix", "carriesState", "readsPosition"]>,
    DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>]> {
  let summary = "causal softmax attention, optionally windowed, grouped heads";
  let description = [{
    Causal multi-head softmax attention with grouped (or multi-query) key /
    value heads: `q : [B, L, H, D]`, `k : [B, L, G, D]`, `v : [B, L, G, E]`
    with `H % G == 0` (`G = 1` is multi-query). Query head `h` uses key/value
    head `h / (H / G)`. Position `i` attends to `j ≤ i`, and with
    `window = W` only to the `W` most recent positions `i - W < j ≤ i`
    (the rule of Hugging Face's RecurrentGemma decode cache; DeepMind's
    Griffin attends to `W + 1` positions, which is `window = W + 1` here).

    ```
    o_i = Σ_j softmax_j(scale · q_i · k_j) v_j
    ```

    For generation, a windowed attention can continue a sequence from a
    cache of the keys and values of the `C = W - 1` positions before this
    call: `cache(key_cache : [B, C, G, D], value_cache : [B, C, G, E])` with
    `position(p)`, the number of tokens before this call. The keys seen by
    query `i` are those of `concat(key_cache, k)` at positions
    `C + i - W < j ≤ C + i`, except the first `C - min(p, C)` cache rows,
    which lie before the start of the sequence. The optional second and
    third results (`final_caches`, both or neither) are the key and value
    caches after this call (the last `C` rows of `concat(key_cache, k)` and
    of `concat(value_cache, v)`), so that calls
    on consecutive pieces of a sequence compute what one call on the whole
    sequence computes.

    The matrix is explicit, so the attention form passes it through as is.

    ```mlir
    %o = glint.attention %q, %k, %v scale 0.125 window 2048
        : (tensor<?x?x4x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>)
        -> tensor<?x?x4x64xf32>
    %o2, %kc2, %vc2 = glint.attention %q, %k, %v scale 0.125 window 2048
        cache(%kc, %vc) position(%p)
        : (tensor<?x?x4x64xf32>, tensor<?x?x1x64xf32>, tensor<?x?x1x64xf32>,
           tensor<?x2047x1x64xf32>, tensor<?x2047x1x64xf32>, index)
        -> (tensor<?x?x4x64xf32>, tensor<?x2047x1x64xf32>,
            tensor<?x2047x1x64xf32>)
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$q, Glint_FloatTensor:$k,
                       Glint_FloatTensor:$v,
                       Optional<Glint_FloatTensor>:$key_cache,
                       Optional<Glint_FloatTensor>:$value_cache,
                       Optional<Index>:$position, F64Attr:$scale,
                       OptionalAttr<I64Attr>:$window);
  let results = (outs Glint_FloatTensor:$output,
                      Variadic<Glint_FloatTensor>:$final_caches);
  let assemblyFormat = [{
    $q `,` $k `,` $v `scale` $scale (`window` $window^)?
    (`cache` `(` $key_cache^ `,` $value_cache `)`)?
    (`position` `(` $position^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let builders = [
    // Attention over one whole sequence (no cache).
    OpBuilder<(ins "Type":$output, "Value":$q, "Value":$k, "Value":$v,
                   "FloatAttr":$scale, "IntegerAttr":$window), [{
      build($_builder, $_state, output, TypeRange(), q, k, v, Value(),
            Value(), Value(), scale, window);
    }]>
  ];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// Rows of the key/value cache (`window - 1`), or 0 without a cache.
    int64_t getCacheLength();
    /// The caches after this call, or null when not returned.
    Value getFinalKeyCache() {
      return getFinalCaches().empty() ? Value() : getFinalCaches()[0];
    }
    Value getFinalValueCache() {
      return getFinalCaches().size() < 2 ? Value() : getFinalCaches()[1];
    }
  }];
}

def Glint_RotaryOp : Glint_Op<"rotary", [
    Pure, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>, AllTypesMatch<["input", "output"]>,
    DeclareOpInterfaceMethods<Glint_StreamingOpInterface, [
        "carriesState", "readsPosition"]>]> {
  let summary = "rotary position embedding on (a leading part of) each head";
  let description = [{
    Rotates the first `rotary_dim` features of each head of
    `x : [B, L, H, D]` by the angle `(offset + t) · base^(-2i / rotary_dim)`
    for the pair `i`. Pairs are `(i, i + rotary_dim/2)` ("rotate half", the
    Hugging Face convention) or, with `interleaved`, `(2i, 2i + 1)`. The
    remaining `D - rotary_dim` features pass through (partial rotary, as in
    RecurrentGemma). `offset` (an `index`, default 0) is the position of the
    first token, for generation.

    ```mlir
    %r = glint.rotary %q rotary_dim 32 base 10000.0 : tensor<?x?x4x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input, Optional<Index>:$offset,
                       I64Attr:$rotary_dim, F64Attr:$base,
                       UnitAttr:$interleaved);
  let results = (outs Glint_FloatTensor:$output);
  let assemblyFormat = [{
    $input (`offset` `(` $offset^ `)`)? `rotary_dim` $rotary_dim
    `base` $base (`interleaved` $interleaved^)? attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Per-token layers
//===----------------------------------------------------------------------===//

def Glint_ActOp : Glint_Op<"act", [
    Pure, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>, SameOperandsAndResultType,
    DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>]> {
  let summary = "element-wise activation";
  let description = [{
    Applies an activation element-wise. The attention form writes each as a
    data-controlled diagonal, `f(x) = diag(φ(x)) · x`:

    | kind | f(x) | φ(x) |
    |---|---|---|
    | `silu` | x·σ(x) | σ(x) |
    | `sigmoid` | σ(x) | σ(x)/x |
    | `gelu` | x·Φ(x) (erf) | Φ(x) |
    | `gelu_tanh` | x·½(1+tanh(√(2/π)(x+0.044715x³))) | the bracket |
    | `softplus` | log(1+eˣ) | |
    | `relu` | max(x, 0) | 1[x>0] |
    | `relu_square` | max(x, 0)² | max(x, 0) |
    | `tanh` | tanh(x) | |
    | `exp` | eˣ | |
    | `neg_exp` | −eˣ (e.g. `A = −exp(A_log)`) | |

    ```mlir
    %u = glint.act silu %x : tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_ActKindAttr:$kind, Glint_FloatTensor:$input);
  let results = (outs Glint_FloatTensor:$output);
  let assemblyFormat = "$kind $input attr-dict `:` type($input)";
  let hasFolder = 1;
}

def Glint_LinearOp : Glint_Op<"linear", [
    Pure, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>]> {
  let summary = "dense or block-diagonal linear layer on the last axis";
  let description = [{
    `y = x · Wᵀ + b` on the last axis of `x : [..., I]`. The weight is bound
    as stored in the checkpoint, in one of these layouts:

    * rank 2, `layout out_in` (default, PyTorch `nn.Linear`): `[O, I]`;
    * rank 2, `layout in_out`: `[I, O]`;
    * rank 3, block-diagonal with `N` blocks (RecurrentGemma's per-head
      gates): `[N, O/N, I/N]` (`out_in`) or `[N, I/N, O/N]` (`in_out`).

    The optional bias is `[O]`. In the attention form the bias of a linear
    layer inside a mixer is reported as the layer's bias contribution.
    The input, bias and output share one float type; with f32 ones the
    weight may be bf16 or f16 instead (`glint-narrow-weights`: it is kept
    narrow in memory and widened as it is read).

    ```mlir
    %y = glint.linear %x, %w bias %b
        : (tensor<?x?x64xf32>, tensor<128x64xf32>, tensor<128xf32>)
        -> tensor<?x?x128xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input, Glint_FloatTensor:$weight,
                       Optional<Glint_FloatTensor>:$bias,
                       OptionalAttr<Glint_WeightLayoutAttr>:$layout);
  let results = (outs Glint_FloatTensor:$output);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? (`layout` $layout^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    bool isInOut() {
      return getLayout() && *getLayout() == WeightLayout::in_out;
    }
    /// Number of diagonal blocks (1 for a dense weight).
    int64_t getNumBlocks();
  }];
}

def Glint_EmbeddingOp : Glint_Op<"embedding", [
    Pure, DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>]> {
  let summary = "token embedding lookup";
  let description = [{
    `y[b, t, :] = table[ids[b, t], :]` for `ids : [B, L]` (any integer type)
    and `table : [N, D]`. An id outside `[0, N)` is a run-time error.

    ```mlir
    %h = glint.embedding %ids, %table
        : (tensor<?x?xi64>, tensor<256x64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_IdTensor:$ids, Glint_FloatTensor:$table);
  let results = (outs Glint_FloatTensor:$output);
  let assemblyFormat = [{
    $ids `,` $table attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

class Glint_NormOp<string mnemonic, list<Trait> traits = []>
    : Glint_Op<mnemonic, !listconcat([
        Pure, DeclareOpInterfaceMethods<Glint_ImplicitAttentionOpInterface>,
        DeclareOpInterfaceMethods<Glint_DifferentiableOpInterface>],
        traits)> {
  let results = (outs Glint_FloatTensor:$output);
  let hasVerifier = 1;
}

def Glint_RMSNormOp : Glint_NormOp<"rms_norm"> {
  let summary = "RMS normalisation over the last axis";
  let description = [{
    `y = x · rsqrt(mean(x²) + epsilon) · (weight_offset + w)` over the last
    axis of `x : [..., C]`, with optional `w : [C]` (a scale of ones when
    absent). `weight_offset` is 0 for Mamba and 1 for Gemma-style models,
    whose checkpoints store `w - 1`. To normalise per head, reshape to
    `[..., H, C/H]` first. In the attention form this is the
    data-controlled diagonal `diag(w / rms_t)`.

    ```mlir
    %n = glint.rms_norm %h weight %w epsilon 1.0e-05
        : (tensor<?x?x64xf32>, tensor<64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input,
                       Optional<Glint_FloatTensor>:$weight, F64Attr:$epsilon,
                       DefaultValuedAttr<F64Attr, "0.0">:$weight_offset);
  let assemblyFormat = [{
    $input (`weight` $weight^)? `epsilon` $epsilon
    attr-dict `:` functional-type(operands, results)
  }];
}

def Glint_LayerNormOp
    : Glint_NormOp<"layer_norm", [AttrSizedOperandSegments]> {
  let summary = "layer normalisation over the last axis";
  let description = [{
    `y = (x - mean(x)) · rsqrt(var(x) + epsilon) · w + b` over the last axis
    of `x : [..., C]` (biased variance), with optional `w, b : [C]`.

    ```mlir
    %n = glint.layer_norm %h weight %w bias %b epsilon 1.0e-05
        : (tensor<?x?x64xf32>, tensor<64xf32>, tensor<64xf32>)
        -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input,
                       Optional<Glint_FloatTensor>:$weight,
                       Optional<Glint_FloatTensor>:$bias, F64Attr:$epsilon);
  let assemblyFormat = [{
    $input (`weight` $weight^)? (`bias` $bias^)? `epsilon` $epsilon
    attr-dict `:` functional-type(operands, results)
  }];
  let hasCanonicalizer = 1;
}

def Glint_GroupNormOp
    : Glint_NormOp<"group_norm", [AttrSizedOperandSegments]> {
  let summary = "group normalisation over groups of the last axis";
  let description = [{
    Splits the last axis of `x : [..., C]` into `groups` equal groups and
    layer-normalises each group on its own (per token), then applies the
    optional per-channel `w, b : [C]`. RWKV-6's `ln_x` and RetNet's output
    norm normalise each head this way.

    ```mlir
    %n = glint.group_norm %o groups 4 weight %w bias %b epsilon 6.4e-04
        : (tensor<?x?x256xf32>, tensor<256xf32>, tensor<256xf32>)
        -> tensor<?x?x256xf32>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input, I64Attr:$groups,
                       Optional<Glint_FloatTensor>:$weight,
                       Optional<Glint_FloatTensor>:$bias, F64Attr:$epsilon);
  let assemblyFormat = [{
    $input `groups` $groups (`weight` $weight^)? (`bias` $bias^)?
    `epsilon` $epsilon attr-dict `:` functional-type(operands, results)
  }];
  let hasCanonicalizer = 1;
}

include "dialect/GlintAttention.td"
include "dialect/GlintGradients.td"

#endif // GLINT_OPS_TD
