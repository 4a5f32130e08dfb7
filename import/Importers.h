//===- Importers.h - per-family importers -----------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_IMPORT_IMPORTERS_H
#define GLINT_IMPORT_IMPORTERS_H

#include "runtime/io/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::glint::import {

/// One supported architecture: its config.json `architectures` name (or
/// `model_type`) and the function that builds its IR.
struct Architecture {
  llvm::StringRef name;
  llvm::StringRef description;
  llvm::Expected<OwningOpRef<ModuleOp>> (*build)(
      MLIRContext *context, const llvm::json::Object &config,
      const mlir::glint::runtime::Checkpoint &checkpoint, llvm::StringRef source);
};

/// Every architecture glint-import knows.
llvm::ArrayRef<Architecture> architectures();

/// Reads `<dir>/config.json`, picks the architecture and builds the model.
/// Keys in `overrides` (a tool's flags, e.g. glint-import --window-rule)
/// replace or add to the file's. Errors name the file and list what is
/// supported.
llvm::Expected<OwningOpRef<ModuleOp>>
importCheckpoint(MLIRContext *context, llvm::StringRef directory,
                 const mlir::glint::runtime::Checkpoint &checkpoint,
                 const llvm::json::Object *overrides = nullptr);

llvm::Expected<OwningOpRef<ModuleOp>>
importMamba(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);

llvm::Expected<OwningOpRef<ModuleOp>>
importMamba2(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importRwkv4(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importRecurrentGemma(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importRwkv6(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);
/// flash-linear-attention's GLA, RetNet and HGRN-2 (import/Fla.cpp).
llvm::Expected<OwningOpRef<ModuleOp>>
importGla(MLIRContext *context, const llvm::json::Object &config,
          const mlir::glint::runtime::Checkpoint &checkpoint,
          llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importRetNet(MLIRContext *context, const llvm::json::Object &config,
             const mlir::glint::runtime::Checkpoint &checkpoint,
             llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importHgrn2(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);
llvm::Expected<OwningOpRef<ModuleOp>>
importVisionMamba(MLIRContext *context, const llvm::json::Object &config,
            const mlir::glint::runtime::Checkpoint &checkpoint,
            llvm::StringRef source);

} // namespace mlir::glint::import

#endif // GLINT_IMPORT_IMPORTERS_H
