//===- ModelInfo.cpp - the interface of a compiled model ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/ModelInfo.h"

using namespace mlir::glint::runtime;
namespace json = llvm::json;

static json::Value specToJSON(const TensorSpec &spec) {
  json::Array shape;
  for (int64_t d : spec.shape)
    shape.push_back(d);
  json::Object object{{"name", spec.name},
                      {"dtype", spec.dtype},
                      {"shape", std::move(shape)}};
  if (spec.limit > 0)
    object["limit"] = spec.limit;
  return object;
}

json::Value mlir::glint::runtime::toJSON(const ModelInfo &info) {
  auto list = [](const std::vector<TensorSpec> &specs) {
    json::Array array;
    for (const TensorSpec &spec : specs)
      array.push_back(specToJSON(spec));
    return array;
  };
  return json::Object{{"version", info.version},
                      {"entry", info.entry},
                      {"inputs", list(info.inputs)},
                      {"weights", list(info.weights)},
                      {"results", list(info.results)}};
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
        *dtype != "i32")
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
    specs.push_back(std::move(result));
  }
  return specs;
}

llvm::Expected<ModelInfo>
mlir::glint::runtime::parseModelInfo(llvm::StringRef text) {
  auto parsed = json::parse(text);
  if (!parsed)
    return malformed(llvm::toString(parsed.takeError()));
  const json::Object *object = parsed->getAsObject();
  if (!object)
    return malformed("not a JSON object");
  ModelInfo info;
  auto version = object->getInteger("version");
  if (!version || *version != 1)
    return malformed("unsupported version (expected 1)");
  auto entry = object->getString("entry");
  if (!entry)
    return malformed("no entry point");
  info.entry = entry->str();
  auto inputs = parseSpecs(*object, "inputs");
  if (!inputs)
    return inputs.takeError();
  auto weights = parseSpecs(*object, "weights");
  if (!weights)
    return weights.takeError();
  auto results = parseSpecs(*object, "results");
  if (!results)
    return results.takeError();
  if (results->size() != 1)
    return malformed("expected exactly one result");
  info.inputs = std::move(*inputs);
  info.weights = std::move(*weights);
  info.results = std::move(*results);
  return info;
}
