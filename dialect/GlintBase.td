//===- GlintBase.td - glint dialect definition -------------*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The glint dialect: gated-linear recurrences and the layers around them.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_BASE_TD
#define GLINT_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Glint_Dialect : Dialect {
  let name = "glint";
  let cppNamespace = "::mlir::glint";
  let summary = "Gated-linear RNN layers: recurrences, convolutions, norms, "
                "attention";
  let description = [{
    The `glint` dialect expresses gated-linear recurrent models (Mamba,
    Mamba-2, RWKV-4/6, Griffin/Hawk, GLA, RetNet, HGRN-2, bidirectional Vision
    Mamba) and their hybrids with softmax attention, layer by layer, on
    tensors. It adds an op only where the op carries meaning that a later
    pass needs: the general recurrence `glint.recurrence` (the scan kernels
    and the implicit-attention rewrite are built from it), the causal
    convolution and token shift (banded Toeplitz matrices in the attention
    form), the activations (data-controlled diagonals), the token-mixer
    region `glint.mixer` that delimits the matrix `A(x)` of one layer, and
    the softmax attention whose matrix is explicit. Everything else uses the
    standard dialects (`func`, `arith`, `math`, `tensor`, `linalg`,
    `ml_program` for weights bound by name).
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let hasCanonicalizer = 0;
  let extraClassDeclaration = [{
    /// The discardable attributes that glint's importers, passes, compiler
    /// and tools agree on, named once here.

    /// On a function argument: the checkpoint tensor the argument is bound
    /// to (glint-externalize-weights).
    static constexpr ::llvm::StringLiteral kWeightAttrName = "glint.weight";
    /// On a weight (an ml_program.global, then the function argument that
    /// glint-externalize-weights makes of it): the weight is held as the
    /// prepared panels of its checkpoint matrix, [ceil(N / NR), K, NR] with
    /// NR = `width` columns of the product per panel, zero past N
    /// (glint-vectorize-matmul); `layout` is "nk" for a checkpoint matrix
    /// [N, K] (PyTorch's [out, in]) and "kn" for [K, N], `shape` its shape.
    /// The runtime lays the checkpoint's tensor out so when it binds it.
    static constexpr ::llvm::StringLiteral kPanelsAttrName = "glint.panels";
    /// On an op that carries a state across calls: the state's name
    /// (glint-import); on a step function's argument or result: the state it
    /// carries (glint-expose-state).
    static constexpr ::llvm::StringLiteral kStateAttrName = "glint.state";
    /// On an op: the name its result is recorded under (a layer's hidden
    /// state, `hidden_states.<k>`), for glint-run --dump-hidden.
    static constexpr ::llvm::StringLiteral kTraceAttrName = "glint.trace";
    /// On a function rewritten by glint-to-attention: the labels of its
    /// token-mixing layers, one per returned map.
    static constexpr ::llvm::StringLiteral kAttentionLayersAttrName =
        "glint.attention_layers";
    /// On a function rewritten by glint-to-attention: its formulation.
    static constexpr ::llvm::StringLiteral kFormulationAttrName =
        "glint.formulation";
    /// On a classifier's function: the position whose logits are the
    /// answer (glint-import; glint-explain explains it).
    static constexpr ::llvm::StringLiteral kReadoutPositionAttrName =
        "glint.readout_position";
    /// On a function built by glint-differentiate: the labels of the
    /// token-mixing layers whose output cotangents it returns, in order.
    static constexpr ::llvm::StringLiteral kGradientLayersAttrName =
        "glint.gradient_layers";
    /// On the private function of glint-chunk-recurrence's chunked form:
    /// the signature it serves.
    static constexpr ::llvm::StringLiteral kChunkedRecurrenceAttrName =
        "glint.chunked_recurrence";
  }];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Glint_ActKind : I32EnumAttr<"ActKind", "element-wise activation", [
    I32EnumAttrCase<"silu", 0>,
    I32EnumAttrCase<"sigmoid", 1>,
    I32EnumAttrCase<"gelu", 2>,
    I32EnumAttrCase<"gelu_tanh", 3>,
    I32EnumAttrCase<"softplus", 4>,
    I32EnumAttrCase<"relu", 5>,
    I32EnumAttrCase<"relu_square", 6>,
    I32EnumAttrCase<"tanh", 7>,
    I32EnumAttrCase<"exp", 8>,
    I32EnumAttrCase<"neg_exp", 9>
  ]> {
  let cppNamespace = "::mlir::glint";
  let genSpecializedAttr = 0;
}
def Glint_ActKindAttr : EnumAttr<Glint_Dialect, Glint_ActKind, "act"> {
  let assemblyFormat = "$value";
}

def Glint_WeightLayout : I32EnumAttr<"WeightLayout", "linear weight layout", [
    I32EnumAttrCase<"out_in", 0>,
    I32EnumAttrCase<"in_out", 1>
  ]> {
  let cppNamespace = "::mlir::glint";
  let genSpecializedAttr = 0;
}
def Glint_WeightLayoutAttr
    : EnumAttr<Glint_Dialect, Glint_WeightLayout, "layout"> {
  let assemblyFormat = "$value";
}

// The formulations of glint-to-attention, named once for the pass,
// glint-compile --attention and glint-explain --formulation.
def Glint_Formulation : I32EnumAttr<"Formulation",
    "which factors a layer's implicit attention keeps", [
    I32EnumAttrCase<"unified", 0>,
    I32EnumAttrCase<"scan_only", 1, "scan-only">,
    I32EnumAttrCase<"no_conv", 2, "no-conv">,
    I32EnumAttrCase<"no_gate", 3, "no-gate">,
    I32EnumAttrCase<"no_act", 4, "no-act">
  ]> {
  let cppNamespace = "::mlir::glint";
  let genSpecializedAttr = 0;
}

class Glint_Op<string mnemonic, list<Trait> traits = []>
    : Op<Glint_Dialect, mnemonic, traits>;

#endif // GLINT_BASE_TD
