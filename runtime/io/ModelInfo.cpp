//===- ModelInfo.cpp - the interface of a compiled model ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/ModelInfo.h"
#include "runtime/io/InputLimits.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir::glint::runtime;
namespace json = llvm::json;

std::string mlir::glint::runtime::shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + (d < 0 ? std::string("?") : std::to_string(d));
  return s + "]";
}

std::vector<int64_t> TensorSpec::layoutShape() const {
  if (!hasPanels())
    return shape;
  int64_t n = shape[panelLayout == "nk" ? 0 : 1];
  int64_t k = shape[panelLayout == "nk" ? 1 : 0];
  return {(n + panelWidth - 1) / panelWidth, k, panelWidth};
}

static json::Value specToJSON(const TensorSpec &spec) {
  json::Array shape;
  for (int64_t d : spec.shape)
    shape.push_back(d);
  json::Object object{{"name", spec.name},
                      {"dtype", spec.dtype},
                      {"shape", std::move(shape)}};
  if (spec.limit > 0)
    object["limit"] = spec.limit;
  if (spec.hasPanels())
    object["panels"] =
        json::Object{{"layout", spec.panelLayout}, {"width", spec.panelWidth}};
  return object;
}

static json::Array listToJSON(const std::vector<TensorSpec> &specs) {
  json::Array array;
  for (const TensorSpec &spec : specs)
    array.push_back(specToJSON(spec));
  return array;
}

/// Whether any weight of `info` is read as prepared panels.
static bool hasPanels(const ModelInfo &info) {
  auto any = [](const std::vector<TensorSpec> &specs) {
    return llvm::any_of(specs,
                        [](const TensorSpec &s) { return s.hasPanels(); });
  };
  return any(info.weights) || (info.step && any(info.step->weights)) ||
         (info.gradient && any(info.gradient->weights));
}

json::Value mlir::glint::runtime::toJSON(const ModelInfo &info) {
  // A record with prepared weights is version 2: a runtime that knows only
  // version 1 would bind such a weight as the checkpoint stores it.
  json::Object object{
      {"version", std::max<int64_t>(info.version, hasPanels(info) ? 2 : 1)},
      {"entry", info.entry},
      {"inputs", listToJSON(info.inputs)},
      {"weights", listToJSON(info.weights)},
      {"results", listToJSON(info.results)}};
  if (info.step)
    object["step"] = json::Object{{"entry", info.step->entry},
                                  {"inputs", listToJSON(info.step->inputs)},
                                  {"states", listToJSON(info.step->states)},
                                  {"weights", listToJSON(info.step->weights)},
                                  {"results", listToJSON(info.step->results)}};
  if (info.gradient) {
    json::Array layers;
    for (const std::string &layer : info.gradient->layers)
      layers.push_back(layer);
    object["gradient"] =
        json::Object{{"entry", info.gradient->entry},
                     {"inputs", listToJSON(info.gradient->inputs)},
                     {"weights", listToJSON(info.gradient->weights)},
                     {"results", listToJSON(info.gradient->results)},
                     {"layers", std::move(layers)}};
  }
  if (info.attention) {
    json::Array layers;
    for (const std::string &layer : info.attention->layers)
      layers.push_back(layer);
    object["attention"] =
        json::Object{{"formulation", info.attention->formulation},
                     {"aggregate", info.attention->aggregate},
                     {"layers", std::move(layers)}};
  }
  return object;
}

static llvm::Error malformed(const llvm::Twine &what) {
  return llvm::createStringError("malformed glint_model_info: " + what);
}

static llvm::Expected<std::vector<TensorSpec>>
parseSpecs(const json::Object &object, llvm::StringRef key) {
  const json::Array *array = object.getArray(key);
  if (!array)
    return malformed("no '" + key + "' list");
  std::vector<TensorSpec> specs;
  for (const json::Value &item : *array) {
    const json::Object *spec = item.getAsObject();
    if (!spec)
      return malformed("an entry of '" + key + "' is not an object");
    TensorSpec result;
    auto name = spec->getString("name");
    auto dtype = spec->getString("dtype");
    const json::Array *shape = spec->getArray("shape");
    if (!name || !dtype || !shape)
      return malformed("an entry of '" + key +
                       "' lacks name, dtype or shape");
    if (*dtype != "f32" && *dtype != "f64" && *dtype != "i64" &&
        *dtype != "i32" && *dtype != "bf16" && *dtype != "f16")
      return malformed("unknown dtype '" + *dtype + "'");
    result.name = name->str();
    result.dtype = dtype->str();
    for (const json::Value &d : *shape) {
      auto size = d.getAsInteger();
      if (!size || *size < -1)
        return malformed("a dimension of '" + result.name +
                         "' is not an integer >= -1");
      result.shape.push_back(*size);
    }
    if (auto limit = spec->getInteger("limit"))
      result.limit = *limit;
    if (const json::Value *panels = spec->get("panels")) {
      const json::Object *object = panels->getAsObject();
      auto layout = object ? object->getString("layout") : std::nullopt;
      auto width = object ? object->getInteger("width") : std::nullopt;
      if (!layout || (*layout != "nk" && *layout != "kn") || !width ||
          *width <= 0 || result.shape.size() != 2 || result.shape[0] <= 0 ||
          result.shape[1] <= 0)
        return malformed("the panels of '" + result.name +
                         "' are not {layout: nk or kn, width > 0} of a "
                         "static matrix");
      result.panelLayout = layout->str();
      result.panelWidth = *width;
    }
    specs.push_back(std::move(result));
  }
  return specs;
}

/// The entry, inputs, weights and results of `object` (and its states when
/// `withStates`); `what` names it in errors.
static llvm::Error parseEntry(const json::Object &object, EntryInfo &entry,
                              bool withStates, llvm::StringRef what,
                              size_t numResults = 1) {
  auto symbol = object.getString("entry");
  if (!symbol)
    return malformed("no entry point" + what);
  entry.entry = symbol->str();
  auto inputs = parseSpecs(object, "inputs");
  if (!inputs)
    return inputs.takeError();
  auto weights = parseSpecs(object, "weights");
  if (!weights)
    return weights.takeError();
  auto results = parseSpecs(object, "results");
  if (!results)
    return results.takeError();
  if (numResults == 0) {
    // The caller checks the count.
  } else if (numResults == 1 && results->size() != 1)
    return malformed("expected exactly one result" + what);
  else if (results->size() != numResults)
    return malformed(llvm::formatv("expected {0} results (the logits and "
                                   "one map per attention layer), found {1}",
                                   numResults, results->size())
                         .str());
  entry.inputs = std::move(*inputs);
  entry.weights = std::move(*weights);
  entry.results = std::move(*results);
  if (!withStates)
    return llvm::Error::success();
  auto states = parseSpecs(object, "states");
  if (!states)
    return states.takeError();
  for (const TensorSpec &state : *states)
    for (auto [i, d] : llvm::enumerate(state.shape))
      if (d < 0 && i != 0)
        return malformed("state '" + state.name +
                         "' has a dynamic dimension other than the batch");
  entry.states = std::move(*states);
  return llvm::Error::success();
}

llvm::Expected<ModelInfo>
mlir::glint::runtime::parseModelInfo(llvm::StringRef text) {
  auto parsed = parseJSON(text);
  if (!parsed)
    return malformed(llvm::toString(parsed.takeError()));
  const json::Object *object = parsed->getAsObject();
  if (!object)
    return malformed("not a JSON object");
  ModelInfo info;
  auto version = object->getInteger("version");
  if (!version || (*version != 1 && *version != 2))
    return malformed("unsupported version (expected 1 or 2)");
  if (const json::Value *attention = object->get("attention")) {
    const json::Object *attentionObject = attention->getAsObject();
    if (!attentionObject)
      return malformed("'attention' is not an object");
    AttentionInfo parsed;
    auto formulation = attentionObject->getString("formulation");
    auto aggregate = attentionObject->getString("aggregate");
    const json::Array *layers = attentionObject->getArray("layers");
    if (!formulation || !aggregate || !layers)
      return malformed("'attention' needs 'formulation', 'aggregate' and "
                       "'layers'");
    parsed.formulation = formulation->str();
    parsed.aggregate = aggregate->str();
    for (const json::Value &layer : *layers) {
      auto label = layer.getAsString();
      if (!label)
        return malformed("an attention layer label is not a string");
      parsed.layers.push_back(label->str());
    }
    info.attention = std::move(parsed);
  }
  size_t numResults = 1 + (info.attention ? info.attention->layers.size() : 0);
  if (llvm::Error e =
          parseEntry(*object, info, /*withStates=*/false, "", numResults))
    return std::move(e);
  if (const json::Value *step = object->get("step")) {
    const json::Object *stepObject = step->getAsObject();
    if (!stepObject)
      return malformed("'step' is not an object");
    EntryInfo entry;
    if (llvm::Error e =
            parseEntry(*stepObject, entry, /*withStates=*/true, " in 'step'"))
      return std::move(e);
    info.step = std::move(entry);
  }
  if (const json::Value *gradient = object->get("gradient")) {
    const json::Object *gradientObject = gradient->getAsObject();
    if (!gradientObject)
      return malformed("'gradient' is not an object");
    GradientInfo entry;
    if (llvm::Error e = parseEntry(*gradientObject, entry, /*withStates=*/false,
                                   " in 'gradient'", /*numResults=*/0))
      return std::move(e);
    const json::Array *layers = gradientObject->getArray("layers");
    if (!layers)
      return malformed("'gradient' needs 'layers'");
    for (const json::Value &layer : *layers) {
      auto label = layer.getAsString();
      if (!label)
        return malformed("a gradient layer label is not a string");
      entry.layers.push_back(label->str());
    }
    // The logits, one cotangent per layer, at least one input cotangent.
    if (entry.results.size() < entry.layers.size() + 2)
      return malformed(llvm::formatv("the gradient entry returns {0} results; "
                                     "expected the logits, {1} layer "
                                     "cotangents and the input's",
                                     entry.results.size(), entry.layers.size())
                           .str());
    info.gradient = std::move(entry);
  }
  return info;
}
