//===- GlintOps.h - glint operations ----------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_DIALECT_GLINTOPS_H
#define GLINT_DIALECT_GLINTOPS_H

#include "dialect/GlintDialect.h"
#include "dialect/GlintInterfaces.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/GlintEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/GlintAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialect/GlintTypes.h.inc"

#define GET_OP_CLASSES
#include "dialect/GlintOps.h.inc"

#endif // GLINT_DIALECT_GLINTOPS_H
