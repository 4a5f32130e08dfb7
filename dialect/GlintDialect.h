//===- GlintDialect.h - glint dialect ---------------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_DIALECT_GLINTDIALECT_H
#define GLINT_DIALECT_GLINTDIALECT_H

#include "mlir/IR/Dialect.h"

#include "dialect/GlintDialect.h.inc"

#endif // GLINT_DIALECT_GLINTDIALECT_H
