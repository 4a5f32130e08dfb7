//===- GlintInterfaces.td - per-op rules of glint's passes -*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The rules that the glint → glint transforms apply op by op, as op
// interfaces: each op implements its rule next to its verifier (GlintOps.cpp),
// and a pass walks the ops and asks the interface. A new rule (a backward
// rule for gradients, say) is one more interface here and one more method per
// op, not one more switch over op kinds in a pass.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_INTERFACES_TD
#define GLINT_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Glint_StreamingOpInterface : OpInterface<"StreamingOpInterface"> {
  let description = [{
    An op that looks back along the sequence: it reads earlier tokens (a
    recurrence, a convolution, a token shift, a windowed attention) or the
    position of its tokens (a rotary embedding). `glint-expose-state` asks
    the interface whether the op can continue from a carried state, which
    states it carries, and how its step form is built: the same op reading
    the states of the previous call and returning those for the next one.
  }];
  let cppNamespace = "::mlir::glint";
  let methods = [
    InterfaceMethod<[{
        Returns why the op cannot continue from a carried state in a step
        function (it runs backwards, already carries a state, has a size its
        state needs static, ...), or an empty string when it can.
      }],
      "std::string", "getStreamingBlocker">,
    InterfaceMethod<[{
        Appends the types of the states the op carries, in order (none when
        it carries none), and returns an empty string; or returns why they
        cannot be built.
      }],
      "std::string", "getStateTypes",
      (ins "::llvm::SmallVectorImpl<::mlir::RankedTensorType> &":$types)>,
    InterfaceMethod<[{
        Returns what is appended to the op's state name for its state
        `index` (e.g. `.key_cache`), so that several states of one op are
        told apart.
      }],
      "::llvm::StringRef", "getStateNameSuffix", (ins "unsigned":$index),
      /*methodBody=*/[{}], /*defaultImplementation=*/[{ return ""; }]>,
    InterfaceMethod<[{
        Returns whether the op's step form carries states under a name of
        its own. The name is taken even when the op has no state types at
        its size (a convolution of width 1).
      }],
      "bool", "carriesState", (ins),
      /*methodBody=*/[{}], /*defaultImplementation=*/[{ return true; }]>,
    InterfaceMethod<[{
        Returns whether the op's step form reads the `position` state (the
        number of tokens before the call). The op's first operand is then a
        `[B, L, ...]` value whose `L` is the length of the call.
      }],
      "bool", "readsPosition", (ins),
      /*methodBody=*/[{}], /*defaultImplementation=*/[{ return false; }]>,
    InterfaceMethod<[{
        Builds the op's step form at the builder's insertion point, from the
        incoming `states` (typed as `getStateTypes` says) and `position`
        (an `index`, null when no op reads it), and appends the states after
        the call to `nextStates`. Returns the op whose first result replaces
        the op's (the caller moves the discardable attributes and erases the
        op), or null when the op was updated in place or needs no change.
      }],
      "::mlir::Operation *", "buildStreamingStep",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ValueRange":$states,
           "::mlir::Value":$position,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$nextStates)>,
  ];
}

def Glint_ImplicitAttentionOpInterface
    : OpInterface<"ImplicitAttentionOpInterface"> {
  let description = [{
    An op with a rule in a layer's implicit attention form
    (`glint-to-attention`): when one of its operands is on the layer's value
    path, the op contributes a factor of the layer's matrices (a
    `!glint.map`), the controls that parameterise it, and, for the exact
    formulation, its effect on the offset (the part of the value that the
    matrices cannot carry). The pass keeps the path; the op reads and
    extends it through an `AttentionFormBuilder`.
  }];
  let cppNamespace = "::mlir::glint";
  let methods = [
    InterfaceMethod<[{
        Given that an operand of the op is on the value path of `form`,
        records the op's results on the path with their maps and offsets,
        building them at the builder's insertion point (right after the op).
        Records nothing when the op reads the path only as a control (keys,
        decays). Fails with a diagnostic when the op has no attention form.
      }],
      "::llvm::LogicalResult", "buildAttentionForm",
      (ins "::mlir::glint::AttentionFormBuilder &":$form)>,
  ];
}

def Glint_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let description = [{
    An op with a backward rule for `glint-differentiate`: given the
    cotangents of its results (the gradient of the differentiated scalar
    with respect to each), the op builds the cotangents of those of its
    operands that depend on the differentiated input, from ops that run in
    the reference evaluator and compile through the CPU pipeline. The pass
    keeps the cotangents and sums the contributions of a value's uses; the
    op reads and extends them through a `GradientBuilder`.
  }];
  let cppNamespace = "::mlir::glint";
  let methods = [
    InterfaceMethod<[{
        Adds, for every operand `grad.isActive` says is wanted, its
        cotangent (`grad.accumulate`), built at the builder's insertion
        point from the op's operands, results and the result cotangents
        (`grad.getCotangent`, null for a result whose cotangent is zero).
        Fails with a diagnostic naming what has no backward rule (a weight
        that depends on the input, a carried state, ...).
      }],
      "::llvm::LogicalResult", "buildGradient",
      (ins "::mlir::glint::GradientBuilder &":$grad)>,
  ];
}

#endif // GLINT_INTERFACES_TD
