//===- MatmulToBlas.cpp - glint-matmul-to-blas ----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/cuda/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTMATMULTOBLAS
#include "passes/cuda/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

static constexpr llvm::StringLiteral kSgemm = "glint_cuda_sgemm";

/// Whether `matmul` reads B as [n, k] (true), as [k, n] (false), or is not
/// a plain f32 product of rank-2 buffers (nothing).
static std::optional<bool> transposedB(linalg::MatmulOp matmul) {
  if (!matmul.hasPureBufferSemantics() || matmul.getInputs().size() != 2)
    return std::nullopt;
  for (Value operand : matmul->getOperands()) {
    auto type = dyn_cast<MemRefType>(operand.getType());
    if (!type || type.getRank() != 2 || !type.getElementType().isF32())
      return std::nullopt;
  }
  MLIRContext *context = matmul.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto map = [&](ArrayRef<AffineExpr> results) {
    return AffineMap::get(3, 0, results, context);
  };
  SmallVector<AffineMap> maps = matmul.getIndexingMapsArray();
  if (maps[0] != map({m, k}) || maps[2] != map({m, n}))
    return std::nullopt;
  if (maps[1] == map({k, n}))
    return false;
  if (maps[1] == map({n, k}))
    return true;
  return std::nullopt;
}

/// The runtime's entry: (transposed, m, n, k, then pointer, row stride and
/// column stride of A, B and C) -> 1 when done.
static func::FuncOp declareSgemm(ModuleOp module) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(kSgemm))
    return fn;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  SmallVector<Type> args(13, b.getIndexType());
  auto fn = func::FuncOp::create(b, module.getLoc(), kSgemm,
                                 b.getFunctionType(args, {b.getI32Type()}));
  fn.setPrivate();
  return fn;
}

/// Pointer (aligned + offset, in bytes) and the two strides of `buffer`.
static void describe(OpBuilder &b, Location loc, Value buffer,
                     SmallVectorImpl<Value> &args) {
  auto metadata = memref::ExtractStridedMetadataOp::create(b, loc, buffer);
  Value aligned =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
  Value bytes = arith::MulIOp::create(
      b, loc, metadata.getOffset(), arith::ConstantIndexOp::create(b, loc, 4));
  args.push_back(arith::AddIOp::create(b, loc, aligned, bytes));
  args.push_back(metadata.getStrides()[0]);
  args.push_back(metadata.getStrides()[1]);
}

namespace {
struct GlintMatmulToBlas
    : public glint::impl::GlintMatmulToBlasBase<GlintMatmulToBlas> {
  // A module pass: it declares the runtime's function in the module (as a
  // function pass, two functions could declare it at once).
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::MatmulOp> matmuls;
    module.walk([&](linalg::MatmulOp matmul) { matmuls.push_back(matmul); });
    for (linalg::MatmulOp matmul : matmuls) {
      std::optional<bool> transposed = transposedB(matmul);
      if (!transposed)
        continue;
      func::FuncOp sgemm = declareSgemm(module);
      OpBuilder b(matmul);
      Location loc = matmul.getLoc();
      Value A = matmul.getInputs()[0], B = matmul.getInputs()[1];
      Value C = matmul.getOutputs()[0];
      Value m = memref::DimOp::create(b, loc, C, 0);
      Value n = memref::DimOp::create(b, loc, C, 1);
      Value k = memref::DimOp::create(b, loc, A, 1);
      SmallVector<Value> args = {
          arith::ConstantIndexOp::create(b, loc, *transposed ? 1 : 0), m, n, k};
      describe(b, loc, A, args);
      describe(b, loc, B, args);
      describe(b, loc, C, args);
      auto call = func::CallOp::create(b, loc, sgemm, args);
      Value zero = arith::ConstantIntOp::create(b, loc, 0, 32);
      Value fallback = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                             call.getResult(0), zero);
      auto guard = scf::IfOp::create(b, loc, fallback,
                                     /*withElseRegion=*/false);
      matmul->moveBefore(guard.thenBlock()->getTerminator());
    }
  }
};
} // namespace
