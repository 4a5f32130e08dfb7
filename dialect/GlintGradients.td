//===- GlintGradients.td - backward ops of sequence mixers -*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Ops that `glint-differentiate` builds for the backward pass of the ops
// whose vector–Jacobian product is not itself a composition of glint ops: a
// recurrence's backward is a scan in the other direction, softmax
// attention's needs its probabilities again. Each takes the forward op's
// operands and the cotangent of its output and returns the cotangents of
// its operands that can depend on the input.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_GRADIENTS_TD
#define GLINT_GRADIENTS_TD

include "dialect/GlintBase.td"

def Glint_RecurrenceGradOp : Glint_Op<"recurrence_grad", [
    Pure, AttrSizedOperandSegments]> {
  let summary = "vector–Jacobian product of a `glint.recurrence`";
  let description = [{
    Given the operands of a `glint.recurrence` (same names, shapes, `reverse`
    and `normalize` as there; no `initial_state`) and `grad : [B, L, H, V]`,
    the cotangent of its output, returns the cotangents of

    * `q` (`[B, L, G, K]`; for an absent `q`, that of the query of ones),
    * `k`, `v`,
    * `log_decay` (its own shape: time-invariant forms sum over the batch and
      the sequence),
    * `delta` (`[B, L, H]`; for an absent `delta`, that of a step of ones).

    The cotangents of `bonus` and `skip` (weights) are not produced. The
    backward of the scan is a scan in the opposite direction over the state
    cotangent `dS_{t-1} = exp(g_t) ⊙ dS_t + q_{t-1} grad_{t-1}ᵀ`, with the
    decay and input gradients read from the forward and backward states.
  }];
  let arguments = (ins
    Optional<Glint_FloatTensor>:$q,
    Glint_FloatTensor:$k,
    Glint_FloatTensor:$v,
    Glint_FloatTensor:$log_decay,
    Optional<Glint_FloatTensor>:$delta,
    Optional<Glint_FloatTensor>:$bonus,
    Optional<Glint_FloatTensor>:$skip,
    Glint_FloatTensor:$grad,
    UnitAttr:$reverse,
    UnitAttr:$normalize
  );
  let results = (outs Glint_FloatTensor:$grad_q, Glint_FloatTensor:$grad_k,
                      Glint_FloatTensor:$grad_v,
                      Glint_FloatTensor:$grad_log_decay,
                      Glint_FloatTensor:$grad_delta);
  let assemblyFormat = [{
    (`reverse` $reverse^)? (`normalize` $normalize^)?
    (`q` `(` $q^ `)`)? `k` `(` $k `)` `v` `(` $v `)`
    `log_decay` `(` $log_decay `)` (`delta` `(` $delta^ `)`)?
    (`bonus` `(` $bonus^ `)`)? (`skip` `(` $skip^ `)`)?
    `grad` `(` $grad `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Glint_AttentionGradOp : Glint_Op<"attention_grad", [Pure]> {
  let summary = "vector–Jacobian product of a `glint.attention`";
  let description = [{
    Given the operands of a `glint.attention` without a cache (`q`, `k`, `v`,
    `scale`, `window`) and `grad : [B, L, H, E]`, the cotangent of its output,
    returns the cotangents of `q`, `k` and `v`. With `P` the softmax
    probabilities and `dP = grad · vᵀ` per head:
    `dv = Pᵀ · grad`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dq = scale · dS · k`,
    `dk = scale · dSᵀ · q` (grouped heads summed into their key/value head).
  }];
  let arguments = (ins Glint_FloatTensor:$q, Glint_FloatTensor:$k,
                       Glint_FloatTensor:$v, Glint_FloatTensor:$grad,
                       F64Attr:$scale, OptionalAttr<I64Attr>:$window);
  let results = (outs Glint_FloatTensor:$grad_q, Glint_FloatTensor:$grad_k,
                      Glint_FloatTensor:$grad_v);
  let assemblyFormat = [{
    $q `,` $k `,` $v `grad` `(` $grad `)` `scale` $scale
    (`window` $window^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // GLINT_GRADIENTS_TD
