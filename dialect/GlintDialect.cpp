//===- GlintDialect.cpp - glint dialect -----------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::glint;

#include "dialect/GlintDialect.cpp.inc"
#include "dialect/GlintEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/GlintAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialect/GlintTypes.cpp.inc"

void GlintDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/GlintAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/GlintTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialect/GlintOps.cpp.inc"
      >();
}
