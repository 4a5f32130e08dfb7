//===- Importers.cpp - choosing an importer -------------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "import/Importers.h"
#include "runtime/io/InputLimits.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::glint::import;
using llvm::Expected;
namespace json = llvm::json;

ArrayRef<Architecture> mlir::glint::import::architectures() {
  static const Architecture table[] = {
      {"MambaForCausalLM", "Mamba-1 (model_type 'mamba')", importMamba},
      {"Mamba2ForCausalLM", "Mamba-2 (model_type 'mamba2')", importMamba2},
      {"RwkvForCausalLM", "RWKV-4 (model_type 'rwkv')", importRwkv4},
      {"RecurrentGemmaForCausalLM",
       "Griffin / RecurrentGemma (model_type 'recurrent_gemma')",
       importRecurrentGemma},
      {"Rwkv6ForCausalLM",
       "RWKV-6 Finch, public checkpoint layout (model_type 'rwkv6')",
       importRwkv6},
      {"VisionMamba",
       "Vision Mamba (Vim), bidirectional, middle CLS token (model_type "
       "'vim')",
       importVisionMamba},
      {"GLAForCausalLM",
       "Gated Linear Attention, flash-linear-attention layout (model_type "
       "'gla')",
       importGla},
      {"RetNetForCausalLM",
       "RetNet, flash-linear-attention layout (model_type 'retnet')",
       importRetNet},
      {"HGRN2ForCausalLM",
       "HGRN-2, flash-linear-attention layout (model_type 'hgrn2')",
       importHgrn2},
  };
  return table;
}

/// The `model_type` each architecture's config carries, for configs without
/// an `architectures` list.
static StringRef architectureForModelType(StringRef modelType) {
  if (modelType == "mamba")
    return "MambaForCausalLM";
  if (modelType == "mamba2")
    return "Mamba2ForCausalLM";
  if (modelType == "rwkv")
    return "RwkvForCausalLM";
  if (modelType == "recurrent_gemma")
    return "RecurrentGemmaForCausalLM";
  if (modelType == "rwkv6")
    return "Rwkv6ForCausalLM";
  if (modelType == "vim")
    return "VisionMamba";
  if (modelType == "gla")
    return "GLAForCausalLM";
  if (modelType == "retnet")
    return "RetNetForCausalLM";
  if (modelType == "hgrn2")
    return "HGRN2ForCausalLM";
  return "";
}

Expected<OwningOpRef<ModuleOp>> mlir::glint::import::importCheckpoint(
    MLIRContext *context, StringRef directory,
    const mlir::glint::runtime::Checkpoint &ckpt,
    const json::Object *overrides) {
  SmallString<256> configPath(directory);
  llvm::sys::path::append(configPath, "config.json");
  auto buffer = llvm::MemoryBuffer::getFile(configPath);
  if (!buffer)
    return llvm::createStringError(configPath + ": " +
                                   buffer.getError().message());
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(configPath + ": invalid JSON: " +
                                   llvm::toString(parsed.takeError()));
  json::Object *config = parsed->getAsObject();
  if (!config)
    return llvm::createStringError(configPath +
                                   ": expected a JSON object at the top");
  if (overrides)
    for (const auto &[key, value] : *overrides)
      (*config)[key] = value;

  std::string name;
  if (const json::Array *list = config->getArray("architectures");
      list && !list->empty() && (*list)[0].getAsString())
    name = (*list)[0].getAsString()->str();
  else if (auto modelType = config->getString("model_type"))
    name = architectureForModelType(*modelType).str();

  // A glint-only key read by one importer: elsewhere it would be ignored
  // silently, so it is refused.
  if (config->get("glint_window_rule") && name != "RecurrentGemmaForCausalLM")
    return llvm::createStringError(
        configPath +
        ": glint_window_rule (glint-import --window-rule) "
        "applies to RecurrentGemmaForCausalLM only, not '" +
        name + "'");

  std::string supported;
  for (const Architecture &a : architectures()) {
    if (a.name == name)
      return a.build(context, *config, ckpt, configPath);
    supported += "\n  " + a.name.str() + "  " + a.description.str();
  }
  return llvm::createStringError(
      configPath + ": " +
      (name.empty() ? std::string("no 'architectures' or known 'model_type'")
                    : "unsupported architecture '" + name + "'") +
      "; glint-import supports:" + supported);
}
