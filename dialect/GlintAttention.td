//===- GlintAttention.td - the implicit-attention form -----*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Ops of the attention form that `glint-to-attention` produces: each
// token-mixing layer becomes an explicit per-channel matrix `A(x)` applied to
// its value input, built factor by factor from the layer's structure.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_ATTENTION_TD
#define GLINT_ATTENTION_TD

include "dialect/GlintBase.td"

def Glint_MapType : TypeDef<Glint_Dialect, "Map"> {
  let mnemonic = "map";
  let summary = "per-channel token-mixing matrices from a layer's value input";
  let description = [{
    `!glint.map<T>` stands for a linear map from the value input `x` of one
    token-mixing layer (`[B, L, C₀]`) to a value of type `T = [B, L, c…]`
    that mixes tokens but not channels: every channel `c` of `T` (its
    channel dims flattened row-major) is `A_c · x[:, :, src(c)]` for one
    `L × L` matrix `A_c` per batch element and one source channel `src(c)`.
    The matrices are a product of factors (diagonals, banded Toeplitz
    matrices, recurrence and softmax matrices); a consumer materialises them
    one channel at a time, so the `C × L × L` tensor need never exist.
  }];
  let parameters = (ins "::mlir::RankedTensorType":$valueType);
  let assemblyFormat = "`<` $valueType `>`";
  let builders = [
    TypeBuilderWithInferredContext<(ins "::mlir::RankedTensorType":$valueType),
                                   [{
      return $_get(valueType.getContext(), valueType);
    }]>
  ];
}

def Glint_MapAggregate : I32EnumAttr<"MapAggregate",
    "how map_reduce combines the per-channel matrices", [
    I32EnumAttrCase<"mean", 0>,
    I32EnumAttrCase<"mean_abs", 1>,
    I32EnumAttrCase<"sum", 2>,
    I32EnumAttrCase<"full", 3>
  ]> {
  let cppNamespace = "::mlir::glint";
  let genSpecializedAttr = 0;
}
def Glint_MapAggregateAttr
    : EnumAttr<Glint_Dialect, Glint_MapAggregate, "aggregate"> {
  let assemblyFormat = "$value";
}

class Glint_MapOp<string mnemonic, list<Trait> traits = []>
    : Glint_Op<mnemonic, !listconcat([Pure], traits)>;

def Glint_MapIdentityOp : Glint_MapOp<"map_identity"> {
  let summary = "the identity map of a layer's value input";
  let description = [{
    Starts a layer's attention form: `A_c = I` and `src(c) = c` for the value
    input `x`.

    ```mlir
    %m = glint.map_identity %x : tensor<?x?x64xf32> -> !glint.map<tensor<?x?x64xf32>>
    ```
  }];
  let arguments = (ins Glint_FloatTensor:$input);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Glint_MapConvOp : Glint_MapOp<"map_conv"> {
  let summary = "left-multiplies by the banded Toeplitz matrix of a conv1d";
  let description = [{
    `A_c ← T_c · A_c` with `T_c[i, j] = w[c, W-1-(i-j)]` for `0 ≤ i-j < W`
    (the transpose band with `reverse`), the matrix of `glint.conv1d`
    without its bias.
  }];
  let arguments = (ins Glint_MapType:$map, Glint_FloatTensor:$weight,
                       UnitAttr:$reverse);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = [{
    (`reverse` $reverse^)? $map `,` $weight attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Glint_MapShiftOp : Glint_MapOp<"map_shift",
    [AllTypesMatch<["map", "result"]>]> {
  let summary = "left-multiplies by the sub-diagonal shift of token_shift";
  let description = [{ `A_c ← S · A_c` with `S[i, i-1] = 1`. }];
  let arguments = (ins Glint_MapType:$map);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = "$map attr-dict `:` type($map)";
}

def Glint_MapScaleOp : Glint_MapOp<"map_scale"> {
  let summary = "left-multiplies by a data-controlled diagonal";
  let description = [{
    `A_c ← diag(gain[b, :, c]) · A_c`: gates, the diagonals of activations
    (`act(v) = diag(φ(v)) · v`) and of normalisations. `gain` has the map's
    value type.
  }];
  let arguments = (ins Glint_MapType:$map, Glint_FloatTensor:$gain);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = "$map `,` $gain attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Glint_MapScanOp : Glint_MapOp<"map_scan", [AttrSizedOperandSegments]> {
  let summary = "left-multiplies by the unrolled matrix of a recurrence";
  let description = [{
    For the map's value type `[B, L, H, V]` and the control operands of a
    `glint.recurrence` (same meaning and shapes), `A_c ← R_{b,h} · A_c` for
    the channels `c = (h, v)` of head `h`, where `R` is the recurrence
    unrolled (docs/rationale.md, "One recurrence for all families"):
    `R[i, j] = Σ_n q_i[n] exp(Σ_{s=j+1}^{i} g_s[n]) k_j[n] δ_j` for `j ≤ i`
    (read of `S_{i-1}` plus `q_i·(u ⊙ k_i)` on the diagonal with `bonus`;
    softmax-like weights over `{G + k_j}` with `normalize`), plus
    `skip[h]` on the diagonal, anti-causal with `reverse`. Exponents are
    segment sums over `(j, i]`, never differences of prefix sums.
  }];
  let arguments = (ins Glint_MapType:$map,
    Optional<Glint_FloatTensor>:$q,
    Glint_FloatTensor:$k,
    Glint_FloatTensor:$log_decay,
    Optional<Glint_FloatTensor>:$delta,
    Optional<Glint_FloatTensor>:$bonus,
    Optional<Glint_FloatTensor>:$skip,
    UnitAttr:$reverse,
    UnitAttr:$normalize
  );
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = [{
    (`reverse` $reverse^)? (`normalize` $normalize^)? $map
    (`q` `(` $q^ `)`)? `k` `(` $k `)`
    `log_decay` `(` $log_decay `)` (`delta` `(` $delta^ `)`)?
    (`bonus` `(` $bonus^ `)`)? (`skip` `(` $skip^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
}

def Glint_MapAttentionOp : Glint_MapOp<"map_attention"> {
  let summary = "left-multiplies by a softmax attention matrix";
  let description = [{
    The explicit matrix of `glint.attention` (same `q`, `k`, `scale`,
    `window`), passed through unchanged: for the map's value type
    `[B, L, G, E]` (key/value heads) the result has `H` query heads,
    `[B, L, H, E]`, with `A_{(h,e)} ← P_{b,h} · A_{(h / (H/G), e)}`.
  }];
  let arguments = (ins Glint_MapType:$map, Glint_FloatTensor:$q,
                       Glint_FloatTensor:$k, F64Attr:$scale,
                       OptionalAttr<I64Attr>:$window);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = [{
    $map `,` $q `,` $k `scale` $scale (`window` $window^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Glint_MapAddOp : Glint_MapOp<"map_add", [SameOperandsAndResultType]> {
  let summary = "sum of two maps (parallel branches of one layer)";
  let description = [{
    `A_c ← A_c + B_c`. Both maps must read the same source channel for each
    output channel (checked when evaluated).
  }];
  let arguments = (ins Glint_MapType:$lhs, Glint_MapType:$rhs);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Glint_MapReshapeOp : Glint_MapOp<"map_reshape"> {
  let summary = "regroups the channel dims of a map";
  let description = [{
    The map of an `expand_shape` / `collapse_shape` that keeps the batch and
    sequence dims: the row-major flattened channel index is unchanged.
  }];
  let arguments = (ins Glint_MapType:$map);
  let results = (outs Glint_MapType:$result);
  let assemblyFormat = "$map attr-dict `:` type($map) `->` type($result)";
  let hasVerifier = 1;
}

def Glint_MapReduceOp : Glint_MapOp<"map_reduce"> {
  let summary = "materialises a map: channel aggregate, subset, or rows";
  let description = [{
    Combines the per-channel matrices over the channels listed in `channels`
    (all when absent): `mean`, `mean_abs` (mean of absolute values), `sum`
    give `[B, L, L]`; `full` gives every selected channel, `[B, C, L, L]`.
    With `row = i` only row `i` of each matrix is produced (`[B, L]`, or
    `[B, C, L]` for `full`); a negative `i` counts from the end (`-1`: the
    last token). Consumers stream the channels: peak memory is that of the
    result plus one channel's matrix.
  }];
  let arguments = (ins Glint_MapType:$map,
                       Glint_MapAggregateAttr:$aggregate,
                       OptionalAttr<DenseI64ArrayAttr>:$channels,
                       OptionalAttr<I64Attr>:$row);
  let results = (outs Glint_FloatTensor:$result);
  let assemblyFormat = [{
    $aggregate $map (`channels` $channels^)? (`row` $row^)? attr-dict `:`
    type($map) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Glint_MapAttributionOp : Glint_MapOp<"map_attribution"> {
  let summary = "gradient-weighted attribution map of a layer";
  let description = [{
    The attribution of Chefer et al. (2021) as the Mamba explainability
    papers apply it to implicit attention: for the layer `y = A · x` per
    channel, the gradient of a score `s` with respect to `A_c` is
    `∂s/∂A_c[i, j] = g[i, c] · x[j, src(c)]`, with `g = ∂s/∂y` (`grad`, of
    the map's value type) and `x` the layer's value input (`input`). The
    result is the channel mean of the positive part of the product,
    `R[b, i, j] = mean_c max(0, A_c[b, i, j] · g[b, i, c] · x[b, j, src(c)])`,
    `[B, L, L]`, streamed one channel at a time like `map_reduce`.
  }];
  let arguments = (ins Glint_MapType:$map, Glint_FloatTensor:$grad,
                       Glint_FloatTensor:$input);
  let results = (outs Glint_FloatTensor:$result);
  let assemblyFormat = [{
    $map `,` $grad `,` $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Glint_MapApplyOp : Glint_MapOp<"map_apply"> {
  let summary = "applies a map to its value input: y[:, :, c] = A_c · x[:, :, src(c)]";
  let arguments = (ins Glint_MapType:$map, Glint_FloatTensor:$input);
  let results = (outs Glint_FloatTensor:$result);
  let assemblyFormat = [{
    $map `,` $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Glint_ActGainOp : Glint_Op<"act_gain", [Pure, SameOperandsAndResultType]> {
  let summary = "the data-controlled diagonal φ(x) of an activation";
  let description = [{
    `φ(x)` with `act(x) = φ(x) · x` (see `glint.act`): σ(x) for `silu`, Φ(x)
    for `gelu`, the tanh bracket for `gelu_tanh`, 1[x>0] for `relu`,
    max(x, 0) for `relu_square`, tanh(x)/x (1 at 0) for `tanh`. Activations
    with `act(0) ≠ 0` (sigmoid, softplus, exp) have no such diagonal.
  }];
  let arguments = (ins Glint_ActKindAttr:$kind, Glint_FloatTensor:$input);
  let results = (outs Glint_FloatTensor:$output);
  let assemblyFormat = "$kind $input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Glint_NormStatsOp : Glint_Op<"norm_stats", [Pure]> {
  let summary = "the diagonal and centre of a normalisation";
  let description = [{
    For `x : [..., C]` split into `groups` groups: `gain[…, c] =
    (weight_offset + w[c]) / sqrt(var_g + epsilon)` and `mean[…, c] = μ_g`
    (zero unless `center`), so that the normalisation is
    `gain ⊙ (x − mean) + b`. `rms_norm` is `groups = 1` without `center`
    (var = mean of squares); `layer_norm` and `group_norm` centre. In the
    attention form `gain` is a diagonal and the centring (which mixes
    channels) goes to the layer's offset.
  }];
  let arguments = (ins Glint_FloatTensor:$input, I64Attr:$groups,
                       Optional<Glint_FloatTensor>:$weight, F64Attr:$epsilon,
                       DefaultValuedAttr<F64Attr, "0.0">:$weight_offset,
                       UnitAttr:$center);
  let results = (outs Glint_FloatTensor:$gain, Glint_FloatTensor:$mean);
  let assemblyFormat = [{
    $input `groups` $groups (`weight` $weight^)? `epsilon` $epsilon
    (`center` $center^)? attr-dict `:` functional-type(operands, results)
  }];
}

#endif // GLINT_ATTENTION_TD
