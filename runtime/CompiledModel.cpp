//===- CompiledModel.cpp - loading and running compiled models ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/CompiledModel.h"
#include "runtime/Safetensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

using namespace mlir::glint::runtime;
using llvm::Error;
using llvm::Expected;

static int64_t dtypeSize(llvm::StringRef dtype) {
  return dtype == "f64" || dtype == "i64" ? 8 : 4;
}

static std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + (d < 0 ? std::string("?") : std::to_string(d));
  return s + "]";
}

int64_t HostArray::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

HostArray HostArray::make(std::vector<int64_t> shape, std::string dtype) {
  HostArray a;
  a.shape = std::move(shape);
  a.dtype = std::move(dtype);
  a.bytes.resize(a.numElements() * dtypeSize(a.dtype));
  return a;
}

Expected<std::unique_ptr<CompiledModel>>
CompiledModel::load(llvm::StringRef libraryPath) {
  std::unique_ptr<CompiledModel> model(new CompiledModel());
  // dlopen searches the library path for names without a slash.
  llvm::SmallString<256> absolute(libraryPath);
  if (std::error_code ec = llvm::sys::fs::make_absolute(absolute))
    return llvm::createStringError(libraryPath + ": " + ec.message());
  model->path = std::string(absolute);
  // RTLD_LOCAL: two models may be loaded side by side.
  model->handle = dlopen(model->path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!model->handle)
    return llvm::createStringError(libraryPath + ": cannot load: " +
                                   dlerror());
  auto *info = static_cast<const char *const *>(
      dlsym(model->handle, "glint_model_info"));
  if (!info || !*info)
    return llvm::createStringError(libraryPath +
                                   ": not a glint model (no glint_model_info)");
  auto parsed = parseModelInfo(*info);
  if (!parsed)
    return llvm::createStringError(libraryPath + ": " +
                                   llvm::toString(parsed.takeError()));
  model->modelInfo = std::move(*parsed);
  model->entry = reinterpret_cast<void (*)(void **)>(
      dlsym(model->handle, model->modelInfo.entry.c_str()));
  if (!model->entry)
    return llvm::createStringError(libraryPath + ": no entry point '" +
                                   model->modelInfo.entry + "'");
  return model;
}

Expected<std::unique_ptr<CompiledModel>>
CompiledModel::fromSymbols(void (*entry)(void **), const char *record) {
  std::unique_ptr<CompiledModel> model(new CompiledModel());
  model->path = "<linked model>";
  auto parsed = parseModelInfo(record ? record : "");
  if (!parsed)
    return parsed.takeError();
  model->modelInfo = std::move(*parsed);
  model->entry = entry;
  return model;
}

CompiledModel::~CompiledModel() {
  if (handle)
    dlclose(handle);
}

Error CompiledModel::bindWeights(const Checkpoint &checkpoint) {
  weights.clear();
  for (const TensorSpec &spec : modelInfo.weights) {
    if (spec.dtype != "f32")
      return llvm::createStringError("weight '" + spec.name + "' has dtype " +
                                     spec.dtype +
                                     "; compiled models take f32 weights");
    auto data = checkpoint.loadF32(spec.name, spec.shape);
    if (!data)
      return data.takeError();
    HostArray array = HostArray::make(spec.shape, spec.dtype);
    std::memcpy(array.bytes.data(), data->data(), array.bytes.size());
    weights.push_back(std::move(array));
  }
  return Error::success();
}

/// A strided memref descriptor {allocated, aligned, offset, sizes, strides}
/// as 64-bit words.
static std::vector<int64_t> descriptorOf(const HostArray &array) {
  int64_t rank = array.shape.size();
  std::vector<int64_t> words(3 + 2 * rank);
  auto pointer = reinterpret_cast<int64_t>(array.bytes.data());
  words[0] = pointer;
  words[1] = pointer;
  words[2] = 0;
  int64_t stride = 1;
  for (int64_t i = rank - 1; i >= 0; --i) {
    words[3 + i] = array.shape[i];
    words[3 + rank + i] = stride;
    stride *= array.shape[i];
  }
  return words;
}

static Error checkInput(const TensorSpec &spec, const HostArray &array,
                        unsigned index) {
  bool ok = array.dtype == spec.dtype && array.shape.size() == spec.shape.size();
  for (size_t i = 0; ok && i < spec.shape.size(); ++i)
    ok = spec.shape[i] < 0 || spec.shape[i] == array.shape[i];
  if (!ok)
    return llvm::createStringError(llvm::formatv(
        "input #{0} ('{1}') is {2} {3}, but the model takes {4} {5}", index,
        spec.name, array.dtype, shapeString(array.shape), spec.dtype,
        shapeString(spec.shape)));
  for (int64_t d : array.shape)
    if (d <= 0)
      return llvm::createStringError(llvm::formatv(
          "input #{0} ('{1}') has an empty dimension: {2}", index, spec.name,
          shapeString(array.shape)));
  if (spec.limit > 0) {
    auto check = [&](auto *values) -> Error {
      for (int64_t i = 0; i < array.numElements(); ++i)
        if (values[i] < 0 || values[i] >= spec.limit)
          return llvm::createStringError(llvm::formatv(
              "input #{0} ('{1}'): token id {2} at flat index {3} is outside "
              "the vocabulary [0, {4})",
              index, spec.name, static_cast<int64_t>(values[i]), i,
              spec.limit));
      return Error::success();
    };
    if (array.dtype == "i64")
      return check(array.data<int64_t>());
    if (array.dtype == "i32")
      return check(array.data<int32_t>());
  }
  if (array.dtype == "f32" || array.dtype == "f64")
    for (int64_t i = 0; i < array.numElements(); ++i) {
      double x = array.dtype == "f32" ? array.data<float>()[i]
                                      : array.data<double>()[i];
      if (std::isnan(x))
        return llvm::createStringError(llvm::formatv(
            "input #{0} ('{1}') holds NaN at flat index {2}", index,
            spec.name, i));
    }
  return Error::success();
}

Expected<HostArray> CompiledModel::run(llvm::ArrayRef<HostArray> inputs) {
  if (inputs.size() != modelInfo.inputs.size())
    return llvm::createStringError(llvm::formatv(
        "the model takes {0} inputs, got {1}", modelInfo.inputs.size(),
        inputs.size()));
  if (weights.size() != modelInfo.weights.size())
    return llvm::createStringError("the model's weights are not bound");
  for (auto [i, input] : llvm::enumerate(inputs))
    if (Error e = checkInput(modelInfo.inputs[i], input, i))
      return std::move(e);

  const TensorSpec &resultSpec = modelInfo.results[0];
  std::vector<int64_t> result(3 + 2 * resultSpec.rank(), 0);
  std::vector<std::vector<int64_t>> descriptors;
  for (const HostArray &input : inputs)
    descriptors.push_back(descriptorOf(input));
  for (const HostArray &weight : weights)
    descriptors.push_back(descriptorOf(weight));
  std::vector<void *> args;
  args.push_back(result.data());
  for (auto &d : descriptors)
    args.push_back(d.data());
  entry(args.data());

  // Copy the result out of the callee's buffer, then free it.
  std::vector<int64_t> shape(result.begin() + 3,
                             result.begin() + 3 + resultSpec.rank());
  HostArray out = HostArray::make(shape, resultSpec.dtype);
  int64_t size = dtypeSize(resultSpec.dtype);
  const char *base =
      reinterpret_cast<const char *>(result[1]) + result[2] * size;
  // The strides may not be the row-major ones.
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t flat = 0; flat < out.numElements(); ++flat) {
    int64_t offset = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      offset += index[d] * result[3 + shape.size() + d];
    std::memcpy(out.bytes.data() + flat * size, base + offset * size, size);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
  std::free(reinterpret_cast<void *>(result[0]));
  return out;
}
