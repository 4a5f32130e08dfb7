//===- ModelSummary.cpp - glint-model-summary -----------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Builds one JSON value describing the model and prints it either as JSON or
// as indented text, so that both formats always carry the same facts.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintOps.h"
#include "passes/transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"

#define DEBUG_TYPE "glint-model-summary"

namespace mlir::glint {
#define GEN_PASS_DEF_GLINTMODELSUMMARY
#include "passes/transforms/Passes.h.inc"
} // namespace mlir::glint

using namespace mlir;
using namespace mlir::glint;
namespace json = llvm::json;

static json::Value sizeValue(int64_t size) {
  if (ShapedType::isDynamic(size))
    return json::Value("?");
  return json::Value(size);
}

static StringRef decayFormName(RecurrenceOp::DecayForm form) {
  switch (form) {
  case RecurrenceOp::DecayForm::PerKey:
    return "data-dependent per key";
  case RecurrenceOp::DecayForm::PerHead:
    return "data-dependent per head";
  case RecurrenceOp::DecayForm::StaticPerKey:
    return "time-invariant per key";
  case RecurrenceOp::DecayForm::StaticPerHead:
    return "time-invariant per head";
  }
  llvm_unreachable("unknown decay form");
}

static json::Object describeRecurrence(RecurrenceOp op) {
  return json::Object{
      {"heads", sizeValue(op.getNumHeads())},
      {"key_groups", sizeValue(op.getNumKeyGroups())},
      {"key", sizeValue(op.getKeySize())},
      {"value", sizeValue(op.getValueSize())},
      {"decay", decayFormName(op.getDecayForm())},
      {"query", op.getQ() != nullptr},
      {"delta", op.getDelta() != nullptr},
      {"bonus", op.getBonus() != nullptr},
      {"skip", op.getSkip() != nullptr},
      {"normalize", op.getNormalize()},
      {"reverse", op.getReverse()},
      {"state_in", op.getInitialState() != nullptr},
      {"state_out", op.getFinalState() != nullptr},
  };
}

/// Counts the glint ops below `root` (excluding nested mixers' own op) and
/// lists the recurrences and convolutions in program order.
static json::Object describeMixer(MixerOp mixer) {
  llvm::StringMap<int64_t> counts;
  json::Array recurrences, convs;
  mixer.getBody().walk([&](Operation *op) {
    if (!isa<GlintDialect>(op->getDialect()) || isa<YieldOp>(op))
      return;
    ++counts[op->getName().getStringRef()];
    if (auto rec = dyn_cast<RecurrenceOp>(op))
      recurrences.push_back(describeRecurrence(rec));
    if (auto conv = dyn_cast<Conv1dOp>(op))
      convs.push_back(json::Object{{"channels", sizeValue(conv.getInput().getType().getDimSize(2))},
                                   {"width", conv.getWidth()},
                                   {"bias", conv.getBias() != nullptr},
                                   {"reverse", conv.getReverse()}});
  });
  json::Object ops;
  for (auto &entry : counts)
    ops[entry.getKey().str()] = entry.getValue();
  return json::Object{
      {"label", mixer.getLabel() ? json::Value(*mixer.getLabel())
                                 : json::Value(nullptr)},
      {"channels_in", sizeValue(mixer.getInput().getType().getDimSize(2))},
      {"channels_out", sizeValue(mixer.getResult().getType().getDimSize(2))},
      {"ops", std::move(ops)},
      {"recurrences", std::move(recurrences)},
      {"convolutions", std::move(convs)},
  };
}

static void printText(raw_ostream &os, const json::Object &summary) {
  const json::Object *weights = summary.getObject("weights");
  os << "glint model summary\n";
  os << "  weights: " << *weights->getInteger("count") << " external tensors, "
     << *weights->getInteger("parameters") << " parameters\n";
  for (const json::Value &fnValue : *summary.getArray("functions")) {
    const json::Object &fn = *fnValue.getAsObject();
    os << "  func @" << *fn.getString("name") << ": "
       << fn.getArray("mixers")->size() << " token mixers, "
       << *fn.getInteger("attention_layers") << " softmax attention layers\n";
    for (const json::Value &mixerValue : *fn.getArray("mixers")) {
      const json::Object &mixer = *mixerValue.getAsObject();
      std::optional<StringRef> label = mixer.getString("label");
      os << "    mixer " << (label ? *label : "(unlabelled)") << ":";
      // json::Object iterates in hash order; print the ops sorted by name.
      std::vector<std::pair<std::string, int64_t>> ops;
      for (const auto &op : *mixer.getObject("ops"))
        ops.emplace_back(op.first.str(), *op.second.getAsInteger());
      llvm::sort(ops);
      for (const auto &[name, count] : ops)
        os << " " << name << "×" << count;
      os << "\n";
      for (const json::Value &conv : *mixer.getArray("convolutions"))
        os << "      conv1d " << conv << "\n";
      for (const json::Value &rec : *mixer.getArray("recurrences"))
        os << "      recurrence " << rec << "\n";
    }
  }
}

namespace {
struct ModelSummaryPass
    : public glint::impl::GlintModelSummaryBase<ModelSummaryPass> {
  using Base::Base;

  void runOnOperation() override {
    if (outputFormat != "text" && outputFormat != "json") {
      getOperation().emitError("glint-model-summary: unknown output-format '")
          << outputFormat << "' (expected 'text' or 'json')";
      return signalPassFailure();
    }
    ModuleOp module = getOperation();

    int64_t numWeights = 0, numParameters = 0;
    json::Array dynamicWeights;
    module.walk([&](ml_program::GlobalOp global) {
      if (!isa_and_nonnull<ml_program::ExternAttr>(global.getValueAttr()))
        return;
      ++numWeights;
      auto type = dyn_cast<ShapedType>(global.getType());
      if (type && type.hasStaticShape())
        numParameters += type.getNumElements();
      else
        dynamicWeights.push_back(global.getSymName());
    });

    json::Array functions;
    module.walk([&](func::FuncOp fn) {
      json::Array mixers;
      fn.walk([&](MixerOp mixer) { mixers.push_back(describeMixer(mixer)); });
      int64_t attention = 0;
      fn.walk([&](AttentionOp) { ++attention; });
      functions.push_back(json::Object{{"name", fn.getSymName()},
                                       {"mixers", std::move(mixers)},
                                       {"attention_layers", attention}});
    });

    json::Object summary{
        {"weights", json::Object{{"count", numWeights},
                                 {"parameters", numParameters},
                                 {"dynamic_shape", std::move(dynamicWeights)}}},
        {"functions", std::move(functions)}};

    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file =
        openOutputFile(outputFile, &error);
    if (!file) {
      module.emitError("glint-model-summary: ") << error;
      return signalPassFailure();
    }
    if (outputFormat == "json")
      file->os() << json::Value(std::move(summary)) << "\n";
    else
      printText(file->os(), summary);
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
