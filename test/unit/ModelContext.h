//===- ModelContext.h - an MLIRContext for model IR in tests ----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The context the gradient tests parse, import and differentiate model IR
// in: glint and the upstream dialects imported models use.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_TEST_UNIT_MODELCONTEXT_H
#define GLINT_TEST_UNIT_MODELCONTEXT_H

#include "dialect/GlintDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>

namespace mlir::glint::testing {

inline std::unique_ptr<MLIRContext> makeModelContext() {
  DialectRegistry registry;
  registry.insert<GlintDialect, arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, tensor::TensorDialect>();
  auto context = std::make_unique<MLIRContext>(registry);
  context->loadAllAvailableDialects();
  return context;
}

} // namespace mlir::glint::testing

#endif // GLINT_TEST_UNIT_MODELCONTEXT_H
