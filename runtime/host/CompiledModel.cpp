//===- CompiledModel.cpp - loading and running compiled models ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/host/CompiledModel.h"
#include "runtime/io/Float16.h"
#include "runtime/io/Safetensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/bit.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdlib>
#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#endif
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <new>
#include <unistd.h>

using namespace mlir::glint::runtime;
using llvm::Error;
using llvm::Expected;

/// The bytes of one element of an interface dtype ("f32", "f64", "i64",
/// "i32", or a narrow weight's "bf16" or "f16"); std::nullopt for any other.
static std::optional<int64_t> elementBytes(llvm::StringRef dtype) {
  if (dtype == "f64" || dtype == "i64")
    return 8;
  if (dtype == "f32" || dtype == "i32")
    return 4;
  if (dtype == "bf16" || dtype == "f16")
    return 2;
  return std::nullopt;
}

/// The bytes of one element of tensor `name`, whose dtype is `dtype`; an
/// unknown dtype is an error naming both.
static Expected<int64_t> dtypeSize(llvm::StringRef dtype,
                                   llvm::StringRef name) {
  if (std::optional<int64_t> size = elementBytes(dtype))
    return *size;
  return llvm::createStringError("tensor '" + name + "' has unknown dtype '" +
                                 dtype + "'");
}

int64_t HostArray::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {
/// Released host blocks kept for reuse (allocateHostBlock).
struct HostBlockCache {
  struct Kept {
    char *block;
    size_t capacity;
  };
  std::mutex mutex;
  std::vector<Kept> kept; // the last released last
  size_t keptBytes = 0;
  size_t limit;

  HostBlockCache() {
    long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    limit = pages > 0 && pageSize > 0 ? size_t(pages) * size_t(pageSize) / 4
                                      : size_t(1) << 30;
  }
  /// Bytes in front of each block: its capacity, padded to the alignment.
  static constexpr size_t kHeader = 64;
  static constexpr size_t kMaxKept = 32;
};

/// Never destroyed: arrays released at exit, after static destructors,
/// still find it (the blocks stay reachable through it).
HostBlockCache &hostBlockCache() {
  static HostBlockCache *cache = new HostBlockCache;
  return *cache;
}
} // namespace

void *mlir::glint::runtime::allocateHostBlock(size_t bytes) {
  HostBlockCache &cache = hostBlockCache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    for (size_t i = cache.kept.size(); i-- > 0;) {
      HostBlockCache::Kept k = cache.kept[i];
      if (k.capacity < bytes || k.capacity / 2 > bytes)
        continue;
      cache.kept.erase(cache.kept.begin() + i);
      cache.keptBytes -= k.capacity;
      return k.block;
    }
  }
  size_t capacity = (bytes + 63) / 64 * 64;
  void *base = std::aligned_alloc(64, HostBlockCache::kHeader + capacity);
  if (!base)
    throw std::bad_alloc();
  char *block = static_cast<char *>(base) + HostBlockCache::kHeader;
  std::memcpy(block - sizeof(size_t), &capacity, sizeof(size_t));
  return block;
}

void mlir::glint::runtime::releaseHostBlock(void *pointer) {
  char *block = static_cast<char *>(pointer);
  size_t capacity;
  std::memcpy(&capacity, block - sizeof(size_t), sizeof(size_t));
  HostBlockCache &cache = hostBlockCache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.keptBytes + capacity <= cache.limit &&
        cache.kept.size() < HostBlockCache::kMaxKept) {
      cache.kept.push_back({block, capacity});
      cache.keptBytes += capacity;
      return;
    }
  }
  std::free(block - HostBlockCache::kHeader);
}

HostArray HostArray::uninitialized(std::vector<int64_t> shape,
                                   std::string dtype) {
  HostArray a;
  a.shape = std::move(shape);
  a.dtype = std::move(dtype);
  std::optional<int64_t> size = elementBytes(a.dtype);
  if (!size)
    llvm::report_fatal_error("HostArray: unknown dtype '" +
                             llvm::Twine(a.dtype) + "'");
  a.bytes.resize(a.numElements() * *size);
  return a;
}

HostArray HostArray::make(std::vector<int64_t> shape, std::string dtype) {
  HostArray a = uninitialized(std::move(shape), std::move(dtype));
  std::fill(a.bytes.begin(), a.bytes.end(), 0);
  return a;
}

/// memcpy with the signature of a CUDA library's glint_cuda_copy_out.
static void copyHost(void *to, const void *from, size_t bytes) {
  std::memcpy(to, from, bytes);
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
  // Results come from the library's allocator and go back to it.
  model->release =
      reinterpret_cast<void (*)(void *)>(dlsym(model->handle, "glint_free"));
  if (!model->release)
    model->release = std::free;
  model->entry = reinterpret_cast<void (*)(void **)>(
      dlsym(model->handle, model->modelInfo.entry.c_str()));
  if (!model->entry)
    return llvm::createStringError(libraryPath + ": no entry point '" +
                                   model->modelInfo.entry + "'");
  if (model->modelInfo.step) {
    const std::string &name = model->modelInfo.step->entry;
    model->stepEntry =
        reinterpret_cast<void (*)(void **)>(dlsym(model->handle, name.c_str()));
    if (!model->stepEntry)
      return llvm::createStringError(libraryPath + ": no step entry point '" +
                                     name + "'");
  }
  if (model->modelInfo.gradient) {
    const std::string &name = model->modelInfo.gradient->entry;
    model->gradientEntry =
        reinterpret_cast<void (*)(void **)>(dlsym(model->handle, name.c_str()));
    if (!model->gradientEntry)
      return llvm::createStringError(
          libraryPath + ": no gradient entry point '" + name + "'");
  }
  // The CPU allocator's guard (runtime/host/ModelAlloc.c): an allocation
  // that fails comes back as an error instead of a store through null.
  // Libraries of an earlier glint have none and are called directly.
  model->guardedCall =
      reinterpret_cast<int (*)(void (*)(void **), void **, size_t *)>(
          dlsym(model->handle, "glint_call_guarded"));
  model->allocStats = reinterpret_cast<void (*)(size_t *, size_t *, int)>(
      dlsym(model->handle, "glint_alloc_stats"));
  model->allocLimit =
      reinterpret_cast<size_t (*)()>(dlsym(model->handle, "glint_alloc_limit"));
  // Libraries compiled for CUDA (runtime/cuda/CudaModel.c) load their
  // kernels when opened, and say so if there is no driver or no GPU.
  model->deviceError = reinterpret_cast<const char *(*)()>(
      dlsym(model->handle, "glint_cuda_error"));
  model->clearDeviceError = reinterpret_cast<void (*)()>(
      dlsym(model->handle, "glint_cuda_clear_error"));
  model->forgetWeights = reinterpret_cast<void (*)()>(
      dlsym(model->handle, "glint_cuda_forget_weights"));
  model->copyOut = reinterpret_cast<void (*)(void *, const void *, size_t)>(
      dlsym(model->handle, "glint_cuda_copy_out"));
  if (model->deviceError &&
      (!model->clearDeviceError || !model->forgetWeights || !model->copyOut))
    return llvm::createStringError(
        libraryPath + ": a CUDA model without its runtime's functions");
  if (model->deviceError)
    if (const char *error = model->deviceError())
      return llvm::createStringError(libraryPath + ": " + error);
  return model;
}

Expected<std::unique_ptr<CompiledModel>>
CompiledModel::fromSymbols(void (*entry)(void **), void (*step)(void **),
                           const char *record, void (*release)(void *)) {
  std::unique_ptr<CompiledModel> model(new CompiledModel());
  model->path = "<linked model>";
  model->release = release ? release : std::free;
  auto parsed = parseModelInfo(record ? record : "");
  if (!parsed)
    return parsed.takeError();
  model->modelInfo = std::move(*parsed);
  model->entry = entry;
  if (model->modelInfo.step) {
    if (!step)
      return llvm::createStringError("the model record has a step entry '" +
                                     model->modelInfo.step->entry +
                                     "' that is not linked in");
    model->stepEntry = step;
  }
  return model;
}

CompiledModel::~CompiledModel() {
  if (handle)
    dlclose(handle);
}

/// The first NaN or Inf of a weight about to be bound (`converted`: its f32
/// values before they are narrowed; else the bound data, f32 or 16-bit), as
/// an error naming the weight, the value and its element.
Error CompiledModel::checkFinite(
    const TensorSpec &spec, const Weight &weight,
    const std::optional<std::vector<float>> &converted, int64_t count) {
  auto report = [&](llvm::StringRef what, int64_t at) {
    return llvm::createStringError(llvm::formatv(
        "weight '{0}' holds {1} at element {2} of {3}: a model with "
        "non-finite weights computes NaN (allow it explicitly, e.g. "
        "glint-run --allow-nonfinite-weights, to run it anyway)",
        spec.name, what, at, count));
  };
  auto checkFloats = [&](const float *values, int64_t n) -> Error {
    int64_t bad = firstAllOnesExponent<uint32_t>(values, n, 0x7f800000);
    if (bad == n)
      return Error::success();
    return report(std::isnan(values[bad]) ? "NaN"
                  : values[bad] > 0       ? "+Inf"
                                          : "-Inf",
                  bad);
  };
  if (converted)
    return checkFloats(converted->data(), converted->size());
  if (weight.dtype == "f32")
    return checkFloats(static_cast<const float *>(weight.data()), count);
  // bf16 and f16: an all-ones exponent is Inf (zero mantissa) or NaN.
  uint16_t exponent = weight.dtype == "f16" ? 0x7c00 : 0x7f80;
  const auto *bits = static_cast<const uint16_t *>(weight.data());
  int64_t i = firstAllOnesExponent<uint16_t>(bits, count, exponent);
  if (i == count)
    return Error::success();
  return report((bits[i] & ~exponent & 0x7fff) ? "NaN"
                : (bits[i] & 0x8000)           ? "-Inf"
                                               : "+Inf",
                i);
}

/// The bytes of the panels `spec` names (TensorSpec::layoutShape) in
/// elements of `elementBytes`.
static size_t panelBytes(const TensorSpec &spec, size_t elementBytes) {
  std::vector<int64_t> layout = spec.layoutShape();
  return layout[0] * layout[1] * layout[2] * elementBytes;
}

/// Lays `matrix` (row-major, `spec.shape`) out as the panels that `spec`
/// names, at `panels`: element (n, k) of the product's weight at
/// [n / NR, k, n % NR], zeros past N (TensorSpec::panelLayout).
template <typename T>
static void layOutPanels(const T *matrix, const TensorSpec &spec, T *panels) {
  std::vector<int64_t> layout = spec.layoutShape();
  int64_t depth = layout[1], width = layout[2];
  int64_t panel = depth * width;
  std::fill(panels, panels + layout[0] * panel, T(0));
  if (spec.panelLayout == "nk") {
    // Row n of the matrix goes down column n % NR of its panel, in blocks
    // of kBlock depths so that the panel rows being written stay in L1
    // (row by row over the whole depth, each element's store touched
    // another cache line: ~1 s for the f32 Mamba-130m shape).
    constexpr int64_t kBlock = 64;
    int64_t n = spec.shape[0];
    for (int64_t col0 = 0; col0 < n; col0 += width) {
      T *out = panels + col0 / width * panel;
      int64_t cols = std::min(width, n - col0);
      for (int64_t k0 = 0; k0 < depth; k0 += kBlock) {
        int64_t k1 = std::min(depth, k0 + kBlock);
        for (int64_t j = 0; j < cols; ++j) {
          const T *row = matrix + (col0 + j) * depth;
          for (int64_t k = k0; k < k1; ++k)
            out[k * width + j] = row[k];
        }
      }
    }
    return;
  }
  // [K, N]: each row's NR columns are one panel row.
  int64_t n = spec.shape[1];
  for (int64_t k = 0; k < depth; ++k)
    for (int64_t col = 0; col < n; col += width)
      std::copy(matrix + k * n + col, matrix + k * n + std::min(n, col + width),
                panels + col / width * panel + k * width);
}

Error CompiledModel::bindWeights(const Checkpoint &checkpoint,
                                 bool allowNonFinite, WeightStorage storage) {
  // The device copies of the old weights go; the new ones are copied on the
  // next call.
  if (forgetWeights)
    forgetWeights();
  weightsByName.clear();
  forwardWeights.clear();
  stepWeights.clear();
  gradientWeights.clear();
  std::vector<const TensorSpec *> specs;
  for (const TensorSpec &spec : modelInfo.weights)
    specs.push_back(&spec);
  if (modelInfo.step)
    for (const TensorSpec &spec : modelInfo.step->weights)
      specs.push_back(&spec);
  if (modelInfo.gradient)
    for (const TensorSpec &spec : modelInfo.gradient->weights)
      specs.push_back(&spec);
  // Every prepared weight's panels in one block, each at a multiple of 4
  // KiB (its full-width vector loads never straddle two cache lines), the
  // block aligned to 2 MiB and asked for huge pages (Linux's transparent
  // huge pages, where they are given only on request): a generated token
  // streams every weight once, and with 4 KiB pages that is a page walk
  // every 4 KiB. One block, not one per weight: rounding each weight up to
  // whole huge pages would waste up to 2 MiB per weight.
  constexpr size_t kPage = 4096, kHugePage = 2 << 20;
  llvm::StringMap<size_t> panelOffsets;
  size_t arenaBytes = 0;
  for (const TensorSpec *spec : specs)
    if (spec->hasPanels() && !panelOffsets.count(spec->name)) {
      panelOffsets[spec->name] = arenaBytes;
      size_t bytes = panelBytes(*spec, spec->dtype == "f32" ? 4 : 2);
      arenaBytes += (bytes + kPage - 1) / kPage * kPage;
    }
  std::shared_ptr<void> arena;
  if (arenaBytes) {
    size_t alignment = arenaBytes >= kHugePage ? kHugePage : kPage;
    size_t rounded = (arenaBytes + alignment - 1) / alignment * alignment;
    arena.reset(std::aligned_alloc(alignment, rounded), std::free);
    if (!arena)
      return llvm::createStringError(llvm::formatv(
          "no memory for the prepared weights' panels ({0} bytes)", rounded));
#ifdef MADV_HUGEPAGE
    if (alignment == kHugePage)
      (void)madvise(arena.get(), rounded, MADV_HUGEPAGE);
#endif
  }
  // The tensors whose file pages the model no longer reads.
  std::vector<const TensorInfo *> released;
  for (const TensorSpec *spec : specs) {
    if (spec->dtype != "f32" && spec->dtype != "bf16" && spec->dtype != "f16")
      return llvm::createStringError(
          "weight '" + spec->name + "' has dtype " + spec->dtype +
          "; compiled models take f32, bf16 or f16 weights");
    if (auto it = weightsByName.find(spec->name); it != weightsByName.end()) {
      if (it->second.shape != spec->shape || it->second.dtype != spec->dtype ||
          it->second.layoutShape != spec->layoutShape())
        return llvm::createStringError(
            "weight '" + spec->name +
            "' has different types in two entries of the model");
      continue;
    }
    Expected<const TensorInfo *> tensor =
        checkpoint.lookup(spec->name, spec->shape);
    if (!tensor)
      return tensor.takeError();
    const TensorInfo &info = **tensor;
    Weight weight;
    weight.shape = spec->shape;
    weight.layoutShape = spec->layoutShape();
    weight.dtype = spec->dtype;
    // A weight the model keeps in 16 bits (glint-compile --weight-dtype).
    bool narrow = spec->dtype != "f32";
    bool half = spec->dtype == "f16";
    DType stored = half ? DType::F16 : narrow ? DType::BF16 : DType::F32;
    size_t elementBytes = narrow ? 2 : 4;
    // The compiled code reads weights as memrefs of their dtype and assumes
    // no more than the element's alignment (its vector loads and stores
    // carry align 4, or 2). The safetensors format promises no alignment (a
    // header's length, or a 2-byte tensor before this one, can shift it),
    // so a misaligned tensor is copied like a converted one.
    bool inPlace =
        storage == WeightStorage::InPlace && info.dtype == stored &&
        llvm::endianness::native == llvm::endianness::little &&
        reinterpret_cast<uintptr_t>(info.bytes.data()) % elementBytes == 0;
    std::optional<std::vector<float>> converted;
    if (inPlace) {
      weight.inPlace = info.bytes.data();
      weight.mapping = info.mapping;
    } else {
      // Converted straight into the weight's own buffer; the file's copy is
      // not read again, so its pages need not stay resident beside it.
      auto data = checkpoint.loadF32(spec->name, spec->shape);
      if (!data)
        return data.takeError();
      if (narrow)
        converted = std::move(*data);
      else
        weight.owned = std::move(*data);
      info.releasePages();
      released.push_back(&info);
    }
    // NaN or Inf in a weight makes every output it reaches NaN, silently.
    if (!allowNonFinite) {
      if (Error e = checkFinite(*spec, weight, converted, info.numElements()))
        return e;
    }
    if (converted) {
      // Exact for a checkpoint stored in the weight's type (read in place
      // unless misaligned), rounded to nearest even from any other.
      weight.owned16.resize(converted->size());
      for (size_t i = 0; i < converted->size(); ++i)
        weight.owned16[i] =
            half ? floatToHalf((*converted)[i]) : floatToBF16((*converted)[i]);
      if (half && !allowNonFinite)
        for (size_t i = 0; i < converted->size(); ++i)
          if ((weight.owned16[i] & 0x7c00) == 0x7c00)
            return llvm::createStringError(llvm::formatv(
                "weight '{0}' holds {1} at element {2}, beyond the largest "
                "f16 (65504): compile with --weight-dtype=bf16 or f32",
                spec->name, (*converted)[i], i));
    }
    // A prepared weight: laid out as the compiled products read it, once.
    if (spec->hasPanels()) {
      const void *stored = weight.data();
      // Shares the block's ownership.
      weight.panels = std::shared_ptr<void>(
          arena, static_cast<char *>(arena.get()) + panelOffsets[spec->name]);
      if (narrow)
        layOutPanels(static_cast<const uint16_t *>(stored), *spec,
                     static_cast<uint16_t *>(weight.panels.get()));
      else
        layOutPanels(static_cast<const float *>(stored), *spec,
                     static_cast<float *>(weight.panels.get()));
      // The stored order goes (assigning {} would keep the capacity).
      std::vector<float>().swap(weight.owned);
      std::vector<uint16_t>().swap(weight.owned16);
      // Its file pages go with the others' below.
      if (weight.inPlace) {
        weight.inPlace = nullptr;
        weight.mapping.reset();
        released.push_back(&info);
      }
    }
    weightsByName[spec->name] = std::move(weight);
    // Reading a tensor can map pages of tensors released before it back
    // into the process (seen: 47 MB of a BF16 Mamba-130m-shaped
    // checkpoint's 252 MB resident beside the panels laid out from it,
    // mostly the small tensors between large ones): released again after
    // each weight, not only at the end, which would leave them in the peak.
    for (const TensorInfo *info : released)
      info->releasePages();
  }
  for (const TensorSpec &spec : modelInfo.weights)
    forwardWeights.push_back(&weightsByName.find(spec.name)->second);
  if (modelInfo.step)
    for (const TensorSpec &spec : modelInfo.step->weights)
      stepWeights.push_back(&weightsByName.find(spec.name)->second);
  if (modelInfo.gradient)
    for (const TensorSpec &spec : modelInfo.gradient->weights)
      gradientWeights.push_back(&weightsByName.find(spec.name)->second);
  return Error::success();
}

const void *CompiledModel::weightData(llvm::StringRef name) const {
  auto it = weightsByName.find(name);
  return it == weightsByName.end() ? nullptr : it->second.data();
}

/// Appends a strided memref descriptor {allocated, aligned, offset, sizes,
/// strides} as 64-bit words.
static void appendDescriptor(std::vector<int64_t> &out, const void *data,
                             llvm::ArrayRef<int64_t> shape) {
  int64_t rank = shape.size();
  size_t start = out.size();
  out.resize(start + 3 + 2 * rank);
  int64_t *words = out.data() + start;
  auto pointer = reinterpret_cast<int64_t>(data);
  words[0] = pointer;
  words[1] = pointer;
  words[2] = 0;
  int64_t stride = 1;
  for (int64_t i = rank - 1; i >= 0; --i) {
    words[3 + i] = shape[i];
    words[3 + rank + i] = stride;
    stride *= shape[i];
  }
}

/// The flat index of the first NaN of an f32 or f64 array, or -1. States
/// hold hundreds of thousands of values: a vectorised pass for Inf or NaN,
/// the elements only looked at past one (Inf is allowed).
static int64_t firstNaN(const HostArray &array) {
  auto find = [&](auto *values, auto exponent) -> int64_t {
    int64_t n = array.numElements();
    for (int64_t i = 0; i < n; ++i) {
      i += firstAllOnesExponent(values + i, n - i, exponent);
      if (i < n && std::isnan(values[i]))
        return i;
    }
    return -1;
  };
  if (array.dtype == "f32")
    return find(array.data<float>(), uint32_t(0x7f800000));
  if (array.dtype == "f64")
    return find(array.data<double>(), uint64_t(0x7ff0000000000000));
  return -1;
}

/// Checks an input (`kind` "input") or a state (`kind` "state").
static Error checkInput(const TensorSpec &spec, const HostArray &array,
                        unsigned index, llvm::StringRef kind = "input") {
  bool ok = array.dtype == spec.dtype && array.shape.size() == spec.shape.size();
  for (size_t i = 0; ok && i < spec.shape.size(); ++i)
    ok = spec.shape[i] < 0 || spec.shape[i] == array.shape[i];
  if (!ok)
    return llvm::createStringError(llvm::formatv(
        "{6} #{0} ('{1}') is {2} {3}, but the model takes {4} {5}", index,
        spec.name, array.dtype, shapeString(array.shape), spec.dtype,
        shapeString(spec.shape), kind));
  Expected<int64_t> size = dtypeSize(array.dtype, spec.name);
  if (!size)
    return size.takeError();
  if (array.bytes.size() != static_cast<size_t>(array.numElements() * *size))
    return llvm::createStringError(
        llvm::formatv("{0} #{1} ('{2}') holds {3} bytes, but {4} {5} needs {6}",
                      kind, index, spec.name, array.bytes.size(), array.dtype,
                      shapeString(array.shape), array.numElements() * *size));
  for (int64_t d : array.shape)
    if (d <= 0)
      return llvm::createStringError(
          llvm::formatv("{3} #{0} ('{1}') has an empty dimension: {2}", index,
                        spec.name, shapeString(array.shape), kind));
  if (spec.limit > 0) {
    auto check = [&](auto *values) -> Error {
      for (int64_t i = 0; i < array.numElements(); ++i)
        if (values[i] < 0 || values[i] >= spec.limit)
          return llvm::createStringError(llvm::formatv(
              "{5} #{0} ('{1}'): token id {2} at flat index {3} is outside "
              "the vocabulary [0, {4})",
              index, spec.name, static_cast<int64_t>(values[i]), i, spec.limit,
              kind));
      return Error::success();
    };
    if (array.dtype == "i64")
      return check(array.data<int64_t>());
    if (array.dtype == "i32")
      return check(array.data<int32_t>());
  }
  if (int64_t at = firstNaN(array); at >= 0)
    return llvm::createStringError(
        llvm::formatv("{3} #{0} ('{1}') holds NaN at flat index {2}", index,
                      spec.name, at, kind));
  return Error::success();
}

/// `bytes` as a reader takes it in: MiB up to 10 GiB, GiB above.
static std::string readableBytes(size_t bytes) {
  double mib = static_cast<double>(bytes) / (1 << 20);
  if (mib < 10 * 1024)
    return llvm::formatv("{0:F1} MiB", mib).str();
  return llvm::formatv("{0:F1} GiB", mib / 1024).str();
}

Error CompiledModel::allocationFailure(size_t bytes) const {
  std::string message =
      llvm::formatv("{0}: the model could not allocate {1} bytes ({2})", path,
                    bytes, readableBytes(bytes));
  if (allocStats && allocLimit) {
    // The blocks held when it failed stay counted (they are not freed).
    size_t held = 0;
    allocStats(&held, nullptr, 0);
    size_t limit = allocLimit();
    if (held <= limit && bytes <= limit - held)
      message += llvm::formatv(" while holding {0}: out of memory",
                               readableBytes(held));
    else
      message += llvm::formatv(
          ": with the {0} it holds, more than the limit of {1} ({2})",
          readableBytes(held), readableBytes(limit),
          std::getenv("GLINT_MEMORY_LIMIT_MB")
              ? "GLINT_MEMORY_LIMIT_MB"
              : "this machine's memory; GLINT_MEMORY_LIMIT_MB sets another");
  } else {
    message += ": out of memory";
  }
  return llvm::createStringError(message +
                                 "; try a shorter input or a smaller batch");
}

Expected<std::vector<HostArray>> CompiledModel::call(
    const EntryInfo &spec, void (*fn)(void **),
    llvm::ArrayRef<const Weight *> weights, llvm::ArrayRef<HostArray> inputs,
    llvm::ArrayRef<HostArray> states, std::vector<HostArray> *reuse,
    StepStates *held) {
  // Held states past the first step are passed as the descriptors the
  // previous step returned; before it, as its zero arrays.
  bool heldBuffers = held && !held->held.empty();
  if (held && !heldBuffers)
    states = held->initial;
  if (inputs.size() != spec.inputs.size())
    return llvm::createStringError(
        llvm::formatv("the model takes {0} inputs, got {1}", spec.inputs.size(),
                      inputs.size()));
  size_t stateCount = heldBuffers ? held->held.size() : states.size();
  if (stateCount != spec.states.size())
    return llvm::createStringError(
        llvm::formatv("the step entry carries {0} states, got {1}",
                      spec.states.size(), stateCount));
  if (weights.size() != spec.weights.size())
    return llvm::createStringError("the model's weights are not bound");
  for (auto [i, input] : llvm::enumerate(inputs))
    if (Error e = checkInput(spec.inputs[i], input, i))
      return std::move(e);
  for (auto [i, state] : llvm::enumerate(states))
    if (Error e = checkInput(spec.states[i], state, i, "state"))
      return std::move(e);
  // Compiled code trusts that every batch dimension agrees (a held
  // state's first size is word 3 of its descriptor).
  if (!inputs.empty() && stateCount > 0) {
    int64_t batch = inputs[0].shape.empty() ? 0 : inputs[0].shape[0];
    for (size_t i = 0; i < stateCount; ++i) {
      if (spec.states[i].shape.empty() || spec.states[i].shape[0] >= 0)
        continue;
      int64_t stateBatch =
          heldBuffers ? held->held[i][3] : states[i].shape[0];
      if (stateBatch != batch)
        return llvm::createStringError(llvm::formatv(
            "state #{0} ('{1}') is for a batch of {2} sequences, but the "
            "input has {3}",
            i, spec.states[i].name, stateBatch, batch));
    }
  }

  // Results, then next states: their descriptors lie one after another.
  std::vector<const TensorSpec *> outSpecs;
  for (const TensorSpec &result : spec.results)
    outSpecs.push_back(&result);
  for (const TensorSpec &state : spec.states)
    outSpecs.push_back(&state);
  std::vector<size_t> at;
  std::vector<int64_t> elementSizes;
  size_t words = 0;
  for (const TensorSpec *out : outSpecs) {
    Expected<int64_t> size = dtypeSize(out->dtype, out->name);
    if (!size)
      return size.takeError();
    elementSizes.push_back(*size);
    at.push_back(words);
    words += 3 + 2 * out->rank();
  }
  std::vector<int64_t> results(std::max<size_t>(words, 1), 0);
  // Every argument's descriptor in one buffer (a generation step passes
  // hundreds of weights), then pointers into it.
  std::vector<int64_t> descriptors;
  std::vector<size_t> starts;
  auto append = [&](const void *data, llvm::ArrayRef<int64_t> shape) {
    starts.push_back(descriptors.size());
    appendDescriptor(descriptors, data, shape);
  };
  for (const HostArray &input : inputs)
    append(input.bytes.data(), input.shape);
  if (heldBuffers) {
    for (const std::vector<int64_t> &state : held->held) {
      starts.push_back(descriptors.size());
      descriptors.insert(descriptors.end(), state.begin(), state.end());
    }
  } else {
    for (const HostArray &state : states)
      append(state.bytes.data(), state.shape);
  }
  for (const Weight *weight : weights)
    append(weight->data(), weight->layoutShape);
  std::vector<void *> args;
  args.reserve(1 + starts.size());
  args.push_back(results.data());
  for (size_t start : starts)
    args.push_back(descriptors.data() + start);
  if (guardedCall) {
    size_t failedBytes = 0;
    if (guardedCall(fn, args.data(), &failedBytes))
      return allocationFailure(failedBytes);
  } else {
    fn(args.data());
  }
  std::string deviceFailure;
  if (deviceError)
    if (const char *error = deviceError()) {
      deviceFailure = error;
      clearDeviceError();
    }

  // Copy each result out of the callee's buffer, then free the buffers
  // (once each: two results may share one). Held states stay where the
  // callee wrote them: their descriptors are kept, their buffers not freed.
  std::vector<HostArray> outs;
  std::vector<void *> owned, kept;
  std::vector<std::vector<int64_t>> nextHeld;
  size_t firstState = outSpecs.size() - spec.states.size();
  for (auto [n, out] : llvm::enumerate(outSpecs)) {
    const int64_t *d = results.data() + at[n];
    int64_t rank = out->rank();
    if (held && n >= firstState) {
      nextHeld.emplace_back(d, d + 3 + 2 * rank);
      auto *allocated = reinterpret_cast<void *>(d[0]);
      if (!llvm::is_contained(kept, allocated))
        kept.push_back(allocated);
      continue;
    }
    std::vector<int64_t> shape(d + 3, d + 3 + rank);
    HostArray *old = reuse && n >= firstState && n - firstState < reuse->size()
                         ? &(*reuse)[n - firstState]
                         : nullptr;
    HostArray array = old && old->shape == shape && old->dtype == out->dtype
                          ? std::move(*old)
                          : HostArray::uninitialized(shape, out->dtype);
    int64_t size = elementSizes[n];
    const char *base = reinterpret_cast<const char *>(d[1]) + d[2] * size;
    // Row-major results (the usual case) are one copy; others go element
    // by element.
    bool rowMajor = true;
    for (int64_t k = rank - 1, stride = 1; k >= 0; --k) {
      rowMajor &= shape[k] == 1 || d[3 + rank + k] == stride;
      stride *= shape[k];
    }
    // A CUDA library's results may be in device memory: they are read
    // through its copy function, the strided ones as the span they cover.
    std::vector<char> span;
    if (copyOut && !rowMajor && array.numElements() > 0) {
      int64_t last = 0;
      for (int64_t k = 0; k < rank; ++k)
        last += (shape[k] - 1) * d[3 + rank + k];
      span.resize((last + 1) * size);
      copyOut(span.data(), base, span.size());
      base = span.data();
    }
    if (rowMajor) {
      if (array.numElements() > 0)
        (copyOut ? copyOut : copyHost)(array.bytes.data(), base,
                                       array.numElements() * size);
    } else {
      std::vector<int64_t> index(rank, 0);
      for (int64_t flat = 0; flat < array.numElements(); ++flat) {
        int64_t offset = 0;
        for (int64_t k = 0; k < rank; ++k)
          offset += index[k] * d[3 + rank + k];
        std::memcpy(array.bytes.data() + flat * size, base + offset * size,
                    size);
        for (int64_t k = rank - 1; k >= 0; --k) {
          if (++index[k] < shape[k])
            break;
          index[k] = 0;
        }
      }
    }
    auto *allocated = reinterpret_cast<void *>(d[0]);
    if (!llvm::is_contained(owned, allocated))
      owned.push_back(allocated);
    outs.push_back(std::move(array));
  }
  for (void *buffer : owned)
    if (!llvm::is_contained(kept, buffer))
      release(buffer);
  if (held) {
    held->releaseExcept(kept);
    held->held = std::move(nextHeld);
    held->buffers = std::move(kept);
    held->initial.clear();
  }
  if (!deviceFailure.empty())
    return llvm::createStringError(path + ": " + spec.entry +
                                   " failed on the GPU: " + deviceFailure);
  return outs;
}

Expected<HostArray> CompiledModel::run(llvm::ArrayRef<HostArray> inputs) {
  auto outs = call(modelInfo, entry, forwardWeights, inputs, {});
  if (!outs)
    return outs.takeError();
  return std::move(outs->front());
}

Expected<std::vector<HostArray>>
CompiledModel::runAll(llvm::ArrayRef<HostArray> inputs) {
  return call(modelInfo, entry, forwardWeights, inputs, {});
}

Expected<std::vector<HostArray>>
CompiledModel::runGradient(llvm::ArrayRef<HostArray> inputs) {
  if (!modelInfo.gradient || !gradientEntry)
    return llvm::createStringError(
        path + " has no gradient entry: compile it with glint-compile --grad");
  if (gradientWeights.size() != modelInfo.gradient->weights.size())
    return llvm::createStringError(path + ": the gradient entry's weights are "
                                          "not bound (bindWeights)");
  return call(*modelInfo.gradient, gradientEntry, gradientWeights, inputs, {});
}

/// The error for a library without a step entry.
static Error noStepEntry(llvm::StringRef path) {
  return llvm::createStringError(
      path + " has no step entry for generation: glint-compile adds one to "
             "causal language models whose every layer can carry its state "
             "(glint-compile --step=on names the layer that cannot)");
}

Expected<std::vector<HostArray>>
CompiledModel::initialStates(int64_t batch) const {
  if (!modelInfo.step)
    return noStepEntry(path);
  if (batch <= 0)
    return llvm::createStringError(
        llvm::formatv("a batch of {0} sequences", batch));
  std::vector<HostArray> states;
  for (const TensorSpec &spec : modelInfo.step->states) {
    std::vector<int64_t> shape = spec.shape;
    for (int64_t &d : shape)
      if (d < 0)
        d = batch;
    states.push_back(HostArray::make(shape, spec.dtype)); // Zero-filled.
  }
  return states;
}

Expected<StepStates> CompiledModel::startStates(int64_t batch) const {
  auto initial = initialStates(batch);
  if (!initial)
    return initial.takeError();
  StepStates states;
  states.release = release;
  states.initial = std::move(*initial);
  for (const TensorSpec &spec : modelInfo.step->states)
    states.dtypes.push_back(spec.dtype);
  return states;
}

Expected<HostArray> CompiledModel::step(llvm::ArrayRef<HostArray> inputs,
                                        StepStates &states) {
  if (!modelInfo.step)
    return noStepEntry(path);
  // A CUDA library's states live in device memory between its calls'
  // copies: they go through host arrays, as with step(inputs, arrays).
  if (copyOut)
    return step(inputs, states.initial);
  if (stepWeights.size() != modelInfo.step->weights.size())
    return llvm::createStringError("the model's weights are not bound");
  auto outs = call(*modelInfo.step, stepEntry, stepWeights, inputs, {},
                   nullptr, &states);
  if (!outs)
    return outs.takeError();
  // The states are not checked again at the next step: a NaN they take on
  // shows in the logits (every product of a NaN is one).
  if (int64_t at = firstNaN(outs->front()); at >= 0)
    return llvm::createStringError(llvm::formatv(
        "{0}: the step's logits hold NaN at flat index {1} (its states or "
        "its arithmetic overflowed)",
        path, at));
  return std::move(outs->front());
}

StepStates::StepStates(StepStates &&other) noexcept { *this = std::move(other); }

StepStates &StepStates::operator=(StepStates &&other) noexcept {
  if (this != &other) {
    releaseExcept({});
    initial = std::move(other.initial);
    dtypes = std::move(other.dtypes);
    held = std::move(other.held);
    buffers = std::move(other.buffers);
    release = other.release;
    other.held.clear();
    other.buffers.clear();
  }
  return *this;
}

StepStates::~StepStates() { releaseExcept({}); }

void StepStates::releaseExcept(llvm::ArrayRef<void *> keep) {
  for (void *buffer : buffers)
    if (!llvm::is_contained(keep, buffer))
      release(buffer);
  buffers.clear();
}

std::vector<HostArray> StepStates::read() const {
  if (held.empty())
    return initial;
  std::vector<HostArray> arrays;
  for (auto [words, dtype] : llvm::zip(held, dtypes)) {
    int64_t rank = (words.size() - 3) / 2;
    std::vector<int64_t> shape(words.begin() + 3, words.begin() + 3 + rank);
    HostArray array = HostArray::uninitialized(shape, dtype);
    size_t size = array.numElements() == 0
                      ? 0
                      : array.bytes.size() / array.numElements();
    // Row-major (the step entry's results have identity layouts), from the
    // offset on.
    const char *base = reinterpret_cast<const char *>(words[1]) + words[2] * size;
    std::memcpy(array.bytes.data(), base, array.bytes.size());
    arrays.push_back(std::move(array));
  }
  return arrays;
}

Expected<HostArray> CompiledModel::step(llvm::ArrayRef<HostArray> inputs,
                                        std::vector<HostArray> &states) {
  if (!modelInfo.step)
    return noStepEntry(path);
  if (stepWeights.size() != modelInfo.step->weights.size())
    return llvm::createStringError("the model's weights are not bound");
  auto outs =
      call(*modelInfo.step, stepEntry, stepWeights, inputs, states, &states);
  if (!outs)
    return outs.takeError();
  size_t results = modelInfo.step->results.size();
  states.assign(std::make_move_iterator(outs->begin() + results),
                std::make_move_iterator(outs->end()));
  return std::move(outs->front());
}
