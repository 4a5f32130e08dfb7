//===- CompiledModel.h - loading and running compiled models ----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_HOST_COMPILEDMODEL_H
#define GLINT_RUNTIME_HOST_COMPILEDMODEL_H

#include "runtime/io/ModelInfo.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <vector>

namespace llvm {
class MemoryBuffer;
} // namespace llvm

namespace mlir::glint::runtime {

class Checkpoint;

/// Blocks of at least this many bytes come from the host block cache.
constexpr size_t kHostBlockBytes = size_t(1) << 20;
/// A block of at least `bytes` (>= kHostBlockBytes), 64-byte aligned: one
/// released earlier when one fits (at most twice as large, the last
/// released first), else a new one. Throws std::bad_alloc when memory is
/// out.
void *allocateHostBlock(size_t bytes);
/// Gives back a block of allocateHostBlock: kept for reuse while the kept
/// blocks stay under a quarter of the physical memory (and 32 blocks),
/// else freed.
void releaseHostBlock(void *block);

/// An allocator whose resize leaves new bytes as they are (std::vector's
/// own zeroes them): a compiled model's results are written over right
/// after, and zeroing the gradient's outputs first had cost a pass over
/// them (3% of mamba-keyword's gradient call at L = 2048). Arrays of a MiB
/// or more reuse released blocks (allocateHostBlock): a model's results are
/// copied into fresh arrays at every call, and fresh pages of that size
/// come from the kernel zeroed, one fault per page (a Mamba-130m-shaped
/// prompt of 2048 tokens returns 412 MB of logits: page faults were 20% of
/// the calling thread's samples, with the second thread waiting).
template <typename T> struct UninitializedAllocator : std::allocator<T> {
  template <typename U> struct rebind {
    using other = UninitializedAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U> void construct(U *p) noexcept { ::new (p) U; }
  template <typename U, typename... Args> void construct(U *p, Args &&...args) {
    ::new (p) U(std::forward<Args>(args)...);
  }
  T *allocate(size_t n) {
    if (n >= kHostBlockBytes / sizeof(T))
      return static_cast<T *>(allocateHostBlock(n * sizeof(T)));
    return std::allocator<T>::allocate(n);
  }
  void deallocate(T *p, size_t n) {
    if (n >= kHostBlockBytes / sizeof(T))
      return releaseHostBlock(p);
    std::allocator<T>::deallocate(p, n);
  }
};

/// A dense row-major host array in one of the interface dtypes.
struct HostArray {
  std::vector<int64_t> shape;
  std::string dtype; // "f32", "f64", "i64" or "i32"
  /// The elements' bytes: zeroed by make(), not by resize().
  std::vector<char, UninitializedAllocator<char>> bytes;

  int64_t numElements() const;
  template <typename T> T *data() { return reinterpret_cast<T *>(bytes.data()); }
  template <typename T> const T *data() const {
    return reinterpret_cast<const T *>(bytes.data());
  }
  /// Zero-filled.
  static HostArray make(std::vector<int64_t> shape, std::string dtype);
  /// Bytes left as the allocator gives them, for an array written over
  /// right after.
  static HostArray uninitialized(std::vector<int64_t> shape, std::string dtype);
};

/// The states a generation carries from one step to the next
/// (CompiledModel::startStates, then step). After the first step they stay
/// in the buffers the step entry wrote them into and go into the next step
/// as they are: not copied out of the model and not checked again for NaN
/// (the model wrote them; step checks the logits instead). A state array
/// of the Mamba-130m shape is 2.8 MB per token otherwise copied and
/// scanned.
class StepStates {
public:
  StepStates() = default;
  StepStates(StepStates &&other) noexcept;
  StepStates &operator=(StepStates &&other) noexcept;
  StepStates(const StepStates &) = delete;
  StepStates &operator=(const StepStates &) = delete;
  ~StepStates();

  /// Copies of the states, in the step entry's order, as
  /// CompiledModel::step(inputs, arrays) takes them.
  std::vector<HostArray> read() const;

private:
  friend class CompiledModel;
  /// Releases the held buffers but those in `keep`.
  void releaseExcept(llvm::ArrayRef<void *> keep);

  /// Before the first step (and always for a CUDA library): the states as
  /// arrays.
  std::vector<HostArray> initial;
  std::vector<std::string> dtypes;
  /// After it: each state's memref descriptor, and the distinct buffers
  /// they lie in, which `release` (the library's) frees.
  std::vector<std::vector<int64_t>> held;
  std::vector<void *> buffers;
  void (*release)(void *) = nullptr;
};

/// A shared library made by `glint-compile -emit=lib`, its weights bound
/// from a checkpoint by name.
class CompiledModel {
public:
  /// Opens the library and reads its `glint_model_info`.
  static llvm::Expected<std::unique_ptr<CompiledModel>>
  load(llvm::StringRef path);
  /// A model linked into this program (a standalone executable made by
  /// `glint-compile -emit=exe`): its entry points (`step` may be null when
  /// the record has no step entry), record, and the function that releases
  /// its results (`glint_free`; null: free()).
  static llvm::Expected<std::unique_ptr<CompiledModel>>
  fromSymbols(void (*entry)(void **), void (*step)(void **), const char *record,
              void (*release)(void *) = nullptr);
  ~CompiledModel();

  const ModelInfo &info() const { return modelInfo; }

  /// Where bindWeights keeps the weights.
  enum class WeightStorage {
    /// A tensor stored in the weight's compiled dtype (F32 for f32, BF16
    /// for bf16, F16 for f16: glint-compile --weight-dtype) whose bytes are
    /// aligned for it is read in place from the checkpoint's mapped file:
    /// no copy, and the model keeps the file mapped (the Checkpoint object
    /// may go). Other dtypes and misaligned tensors are converted once,
    /// into memory of their own.
    InPlace,
    /// Every weight is converted into memory of its own; nothing refers to
    /// the checkpoint afterwards.
    Copy,
  };

  /// Binds every weight the model names from `checkpoint` (in its compiled
  /// dtype: f32, or bf16 / f16 rounded to nearest even) and checks its shape: a
  /// missing or mis-shaped weight, or a checkpoint of another model, is an
  /// error naming the weight; so is a NaN or Inf in a weight, unless
  /// `allowNonFinite`. With `InPlace`, the checkpoint's files must not be
  /// truncated while the model holds them (a file replaced by rename, as
  /// writeSafetensors does, is safe).
  llvm::Error bindWeights(const Checkpoint &checkpoint,
                          bool allowNonFinite = false,
                          WeightStorage storage = WeightStorage::InPlace);

  /// The first byte of bound weight `name` as the compiled code reads it
  /// (inside the checkpoint's mapped file when bound in place), or null if
  /// no weight of that name is bound.
  const void *weightData(llvm::StringRef name) const;

  /// Runs the full forward. The inputs must match the interface (rank,
  /// static dims, dtype, token ids inside the vocabulary); errors say which.
  llvm::Expected<HostArray> run(llvm::ArrayRef<HostArray> inputs);

  /// Runs the full forward and returns every result in record order: the
  /// logits, then (libraries compiled with --attention) one map per layer
  /// of `info().attention->layers`.
  llvm::Expected<std::vector<HostArray>>
  runAll(llvm::ArrayRef<HostArray> inputs);

  /// Whether the library runs on a GPU (compiled with --target=cuda).
  bool onDevice() const { return deviceError != nullptr; }

  /// Whether the library has a step entry (streaming generation).
  bool hasStep() const { return modelInfo.step.has_value(); }

  /// The step entry's states for `batch` sequences, all zero: the start of
  /// a sequence. An error if the library has no step entry.
  llvm::Expected<std::vector<HostArray>> initialStates(int64_t batch) const;

  /// Runs the step entry on the next piece of each sequence (`inputs`, e.g.
  /// token ids [batch, L]) continuing from `states`, which are replaced by
  /// the states after it; returns the logits of the piece. Feeding a
  /// sequence in pieces gives the full forward's logits. Inputs are checked
  /// as for run(); states must have the shapes of the record, with the
  /// inputs' batch.
  llvm::Expected<HostArray> step(llvm::ArrayRef<HostArray> inputs,
                                 std::vector<HostArray> &states);

  /// The states for `batch` sequences at their start, for the step below.
  llvm::Expected<StepStates> startStates(int64_t batch) const;

  /// step() for a generation loop: the states stay in the model's buffers
  /// from one step to the next (see StepStates); an error if the logits
  /// hold NaN.
  llvm::Expected<HostArray> step(llvm::ArrayRef<HostArray> inputs,
                                 StepStates &states);

  /// Whether the library has a gradient entry (`glint-compile --grad`).
  bool hasGradient() const { return modelInfo.gradient.has_value(); }

  /// Runs the gradient entry: `inputs` are the forward's inputs then the
  /// seed (the cotangent of the logits); returns the logits, the cotangent
  /// of each layer's output (`info().gradient->layers`), then that of the
  /// input embeddings. An error if the library has no gradient entry.
  llvm::Expected<std::vector<HostArray>>
  runGradient(llvm::ArrayRef<HostArray> inputs);

private:
  /// A bound weight: f32 elements in row-major order, either in place in a
  /// checkpoint's mapped file, which `mapping` keeps mapped, or in `owned`;
  /// or (a prepared weight, TensorSpec::hasPanels) its panels, in `panels`.
  struct Weight {
    std::vector<int64_t> shape;
    /// The shape the compiled code takes (the panels' or `shape`).
    std::vector<int64_t> layoutShape;
    /// "f32", or "bf16" / "f16" for a weight the model keeps in 16 bits.
    std::string dtype = "f32";
    const void *inPlace = nullptr;
    std::shared_ptr<const llvm::MemoryBuffer> mapping;
    std::vector<float> owned;
    std::vector<uint16_t> owned16;
    /// A page-aligned part of one block holding every prepared weight (see
    /// bindWeights), so that the products' full-width vector loads of a
    /// panel row never straddle two cache lines (std::vector's 16-byte
    /// alignment made every other 64-byte load a split one).
    std::shared_ptr<void> panels;

    const void *data() const {
      return inPlace            ? inPlace
             : panels           ? static_cast<const void *>(panels.get())
             : !owned16.empty() ? static_cast<const void *>(owned16.data())
                                : static_cast<const void *>(owned.data());
    }
  };
  static llvm::Error
  checkFinite(const TensorSpec &spec, const Weight &weight,
              const std::optional<std::vector<float>> &converted,
              int64_t count);

  CompiledModel() = default;
  /// The error for an allocation of `bytes` that failed inside a call.
  llvm::Error allocationFailure(size_t bytes) const;
  /// Calls `fn` (described by `spec`) and returns its results, then its next
  /// states. With `reuse`, the next states are copied into the storage of
  /// those arrays (taken from them) where shape and dtype agree: one
  /// generated token then allocates and clears no host state arrays. With
  /// `held`, the states come from it (not `states`) and its next states are
  /// kept there, in the callee's buffers: the results hold the others.
  llvm::Expected<std::vector<HostArray>>
  call(const EntryInfo &spec, void (*fn)(void **),
       llvm::ArrayRef<const Weight *> weights, llvm::ArrayRef<HostArray> inputs,
       llvm::ArrayRef<HostArray> states,
       std::vector<HostArray> *reuse = nullptr, StepStates *held = nullptr);

  void *handle = nullptr;
  void (*entry)(void **) = nullptr;
  void (*stepEntry)(void **) = nullptr;
  void (*gradientEntry)(void **) = nullptr;
  /// Releases a result buffer: the library's `glint_free`, or free() for
  /// libraries made before it existed.
  void (*release)(void *) = nullptr;
  /// CUDA libraries (runtime/cuda): the first error since the last clear,
  /// or null; clearing it; dropping the device copies of the weights.
  const char *(*deviceError)() = nullptr;
  /// glint_call_guarded of the library's allocator, if it has one.
  int (*guardedCall)(void (*)(void **), void **, size_t *) = nullptr;
  /// What the model holds (glint_alloc_stats) and may hold at most
  /// (glint_alloc_limit), for the message when an allocation fails.
  void (*allocStats)(size_t *, size_t *, int) = nullptr;
  size_t (*allocLimit)() = nullptr;
  void (*clearDeviceError)() = nullptr;
  void (*forgetWeights)() = nullptr;
  /// Copies result bytes to the host (they may be in device memory).
  void (*copyOut)(void *, const void *, size_t) = nullptr;
  ModelInfo modelInfo;
  std::string path;
  /// Every weight either entry names, by name, and each entry's in order.
  llvm::StringMap<Weight> weightsByName;
  std::vector<const Weight *> forwardWeights, stepWeights, gradientWeights;
};

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_HOST_COMPILEDMODEL_H
