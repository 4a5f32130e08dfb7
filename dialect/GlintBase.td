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

class Glint_Op<string mnemonic, list<Trait> traits = []>
    : Op<Glint_Dialect, mnemonic, traits>;

#endif // GLINT_BASE_TD
