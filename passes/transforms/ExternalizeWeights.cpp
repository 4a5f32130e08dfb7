//===- ExternalizeWeights.cpp - glint-externalize-weights -----------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

#define DEBUG_TYPE "glint-externalize-weights"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTEXTERNALIZEWEIGHTS
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;

namespace {
struct ExternalizeWeightsPass
    : public glint::impl::GlintExternalizeWeightsBase<ExternalizeWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    bool hadError = false;
    module.walk([&](func::FuncOp fn) {
      if (fn.isExternal())
        return;
      // One argument per weight, in first-use order.
      llvm::MapVector<StringRef, SmallVector<ml_program::GlobalLoadConstOp>>
          uses;
      fn.walk([&](ml_program::GlobalLoadConstOp load) {
        auto global = symbols.lookup<ml_program::GlobalOp>(
            load.getGlobal().getLeafReference());
        if (!global) {
          load.emitError("no ml_program.global named ")
              << load.getGlobal();
          hadError = true;
          return;
        }
        OpBuilder builder(load);
        if (auto dense = dyn_cast_or_null<DenseElementsAttr>(
                global.getValueAttr())) {
          load.replaceAllUsesWith(
              arith::ConstantOp::create(builder, load.getLoc(), dense)
                  .getResult());
          load.erase();
          return;
        }
        if (!isa_and_nonnull<ml_program::ExternAttr>(global.getValueAttr())) {
          load.emitError("weight '")
              << global.getSymName()
              << "' has neither an external nor a dense value";
          hadError = true;
          return;
        }
        uses[global.getSymName()].push_back(load);
      });
      // Public functions get a C entry point taking memref descriptors.
      if (fn.isPublic())
        fn->setAttr("llvm.emit_c_interface", UnitAttr::get(&getContext()));
      Block &entry = fn.getBody().front();
      for (auto &[name, loads] : uses) {
        Type type = loads.front().getType();
        unsigned index = fn.getNumArguments();
        SmallVector<NamedAttribute> attrs = {NamedAttribute(
            StringAttr::get(&getContext(),
                            glint::GlintDialect::kWeightAttrName),
            StringAttr::get(&getContext(), name))};
        // How the runtime lays the weight out (glint-vectorize-matmul).
        auto global = symbols.lookup<ml_program::GlobalOp>(name);
        if (Attribute panels =
                global->getAttr(glint::GlintDialect::kPanelsAttrName))
          attrs.push_back(NamedAttribute(
              StringAttr::get(&getContext(),
                              glint::GlintDialect::kPanelsAttrName),
              panels));
        if (mlir::failed(fn.insertArgument(
                index, type, DictionaryAttr::get(&getContext(), attrs),
                fn.getLoc()))) {
          fn.emitError("cannot add the argument of weight '") << name << "'";
          hadError = true;
          return;
        }
        for (auto load : loads) {
          load.replaceAllUsesWith(entry.getArgument(index));
          load.erase();
        }
      }
    });
    if (hadError)
      return signalPassFailure();
    // The caller owns every argument (inputs and weights, reused across
    // calls): bufferization must never write into them in place.
    module.walk([&](func::FuncOp fn) {
      if (fn.isExternal())
        return;
      for (unsigned i = 0; i < fn.getNumArguments(); ++i)
        if (isa<TensorType>(fn.getArgumentTypes()[i]))
          fn.setArgAttr(i, "bufferization.writable",
                        BoolAttr::get(&getContext(), false));
    });
    for (auto global :
         llvm::make_early_inc_range(module.getOps<ml_program::GlobalOp>()))
      if (SymbolTable::symbolKnownUseEmpty(global, module))
        global.erase();
  }
};
} // namespace
