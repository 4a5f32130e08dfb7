/*===- CudaModel.c - the runtime linked into models compiled for CUDA -----===*
 *
 * Part of the glint project.
 *
 *===----------------------------------------------------------------------===*
 *
 * A model compiled with `glint-compile --target=cuda` is host code that
 * launches kernels through MLIR's `mgpu*` functions and allocates its
 * buffers through MLIR's generic allocation functions. glint-compile links
 * this file into each such library to provide both, over the CUDA driver
 * API loaded with dlopen: no glint binary links against CUDA, and on a
 * machine without a driver the library still loads and says why it cannot
 * run (glint_cuda_error).
 *
 * Memory: buffers are device memory when the model's host code never reads
 * or writes a buffer itself (glint-compile then defines
 * glint_cuda_device_memory; the caller reads results through
 * glint_cuda_copy_out); otherwise CUDA managed memory, which the host code
 * between the kernels can touch too. Large blocks are kept when freed and
 * handed out again, as on the CPU (runtime/host/ModelAlloc.c), so repeated
 * calls reuse pages that already live on the device (on an H200 a
 * Mamba-130m-shaped forward at L = 2048 spent 3 of its 3.6 s outside the
 * kernels with room for only 64 blocks).
 *
 * Arguments: the entry points (glint_forward, glint_step) stage every
 * argument before the call (glint_cuda_stage): inputs and states are copied
 * into managed memory for the call, weights once (cached by host address
 * and size until glint_cuda_forget_weights, which the runtime calls when it
 * binds weights).
 *
 * Profile: with GLINT_CUDA_PROFILE set (to anything but 0), each kernel's
 * calls and time (launch to end of the kernel, on the host's clock) are
 * summed and printed to stderr as JSON lines when the library is unloaded,
 * slowest first.
 *
 * Errors: the first failure (no driver, no device, a failed load, launch or
 * allocation) is kept, later launches are skipped, and glint_cuda_error
 * returns it until glint_cuda_clear_error; the runtime checks it after
 * loading a library and after every call. Launches are synchronous, so a
 * kernel's failure is reported with its name.
 *
 *===----------------------------------------------------------------------===*/

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GLINT_HIDDEN __attribute__((visibility("hidden")))
#define GLINT_EXPORT __attribute__((visibility("default")))

/* The driver API's types and the functions used, as declared by cuda.h
 * (CUDA 12/13; the _v2 names are the ones the driver exports). */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;
enum { CUDA_SUCCESS = 0, CU_MEM_ATTACH_GLOBAL = 1, CU_STREAM_NON_BLOCKING = 1 };

static struct {
  CUresult (*init)(unsigned);
  CUresult (*deviceGet)(CUdevice *, int);
  CUresult (*deviceGetCount)(int *);
  CUresult (*primaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*ctxSetCurrent)(CUcontext);
  CUresult (*moduleLoadData)(CUmodule *, const void *);
  CUresult (*moduleUnload)(CUmodule);
  CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, unsigned, CUstream, void **,
                           void **);
  CUresult (*streamCreate)(CUstream *, unsigned);
  CUresult (*streamSynchronize)(CUstream);
  CUresult (*memAllocManaged)(CUdeviceptr *, size_t, unsigned);
  CUresult (*memAlloc)(CUdeviceptr *, size_t);
  CUresult (*memcpy)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*memFree)(CUdeviceptr);
  CUresult (*getErrorName)(CUresult, const char **);
} cu;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized; /* 1: ready, -1: failed (see lastError) */
static CUcontext context;
static CUstream stream;
static char lastError[1024];

/* Keeps the first error (later ones are usually its consequences). */
static void fail(const char *format, ...) {
  if (lastError[0])
    return;
  va_list args;
  va_start(args, format);
  vsnprintf(lastError, sizeof lastError, format, args);
  va_end(args);
}

static const char *errorName(CUresult result) {
  const char *name = NULL;
  if (cu.getErrorName && cu.getErrorName(result, &name) == CUDA_SUCCESS && name)
    return name;
  return "an unknown CUDA error";
}

/* Whether `result` is success; otherwise keeps "call(what): ERROR". */
static int check(CUresult result, const char *call, const char *what) {
  if (result == CUDA_SUCCESS)
    return 1;
  fail("%s(%s) failed: %s (%d)", call, what, errorName(result), result);
  return 0;
}

static void *symbol(void *library, const char *name) {
  void *address = dlsym(library, name);
  if (!address)
    fail("the CUDA driver library has no %s: a driver for CUDA 12 or newer "
         "is needed",
         name);
  return address;
}

/* Loads the driver, and makes device 0's primary context current. With the
 * lock held. */
static int initializeLocked(void) {
  if (initialized)
    return initialized > 0;
  initialized = -1;
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    fail("no CUDA driver (libcuda.so.1 cannot be loaded: %s); this model was "
         "compiled with --target=cuda: compile it for the CPU target to run "
         "it on this machine",
         dlerror());
    return 0;
  }
#define LOAD(field, name)                                                      \
  if (!(*(void **)&cu.field = symbol(library, name)))                          \
    return 0;
  LOAD(init, "cuInit")
  LOAD(deviceGet, "cuDeviceGet")
  LOAD(deviceGetCount, "cuDeviceGetCount")
  LOAD(primaryCtxRetain, "cuDevicePrimaryCtxRetain")
  LOAD(ctxSetCurrent, "cuCtxSetCurrent")
  LOAD(moduleLoadData, "cuModuleLoadData")
  LOAD(moduleUnload, "cuModuleUnload")
  LOAD(moduleGetFunction, "cuModuleGetFunction")
  LOAD(launchKernel, "cuLaunchKernel")
  LOAD(streamCreate, "cuStreamCreate")
  LOAD(streamSynchronize, "cuStreamSynchronize")
  LOAD(memAllocManaged, "cuMemAllocManaged")
  LOAD(memAlloc, "cuMemAlloc_v2")
  LOAD(memcpy, "cuMemcpy")
  LOAD(memFree, "cuMemFree_v2")
  LOAD(getErrorName, "cuGetErrorName")
#undef LOAD
  int count = 0;
  if (!check(cu.init(0), "cuInit", "0") ||
      !check(cu.deviceGetCount(&count), "cuDeviceGetCount", ""))
    return 0;
  if (count == 0) {
    fail("the CUDA driver sees no GPU; this model was compiled with "
         "--target=cuda: compile it for the CPU target to run it on this "
         "machine");
    return 0;
  }
  CUdevice device;
  if (!check(cu.deviceGet(&device, 0), "cuDeviceGet", "0") ||
      !check(cu.primaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain",
             "device 0") ||
      !check(cu.ctxSetCurrent(context), "cuCtxSetCurrent", "device 0") ||
      !check(cu.streamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate",
             ""))
    return 0;
  initialized = 1;
  return 1;
}

/* Whether the driver is ready (and the context current on this thread). */
static int ready(void) {
  pthread_mutex_lock(&lock);
  int ok = initializeLocked() && !lastError[0];
  pthread_mutex_unlock(&lock);
  return ok && cu.ctxSetCurrent(context) == CUDA_SUCCESS;
}

/*===-- Errors ------------------------------------------------------------===*/

GLINT_EXPORT const char *glint_cuda_error(void) {
  return lastError[0] ? lastError : NULL;
}

GLINT_EXPORT void glint_cuda_clear_error(void) {
  pthread_mutex_lock(&lock);
  /* A failed start of the driver stays an error. */
  if (initialized >= 0)
    lastError[0] = 0;
  pthread_mutex_unlock(&lock);
}

/*===-- Memory ------------------------------------------------------------===*/

enum {
  /* Room in front of every block: its capacity, and where it came from. */
  kHeader = 256,
  kLargeBytes = 1 << 20,
  /* A whole model's intermediates: a fresh managed block costs a page fault
   * per page the first time the GPU touches it, so every one is kept. */
  kSlots = 4096,
};

typedef struct {
  size_t capacity;
  int managed; /* 0: malloc (no driver) */
} Header;

typedef struct {
  char *block;
  size_t capacity;
} Kept;

static Kept kept[kSlots];
static int keptCount;

/* Whether buffers are device memory: glint-compile defines this in the
 * model (1) when no host code touches a buffer's contents (everything but
 * the kernels passes pointers around), else managed memory is used. */
extern const int32_t glint_cuda_device_memory
    __attribute__((weak, visibility("hidden")));

static int onDevice(void) {
  return &glint_cuda_device_memory && glint_cuda_device_memory;
}

/* Device blocks have no header (the host cannot write there): their
 * capacities are kept here, in an open-addressing table keyed by address. */
enum { kTable = 1 << 16 };
static Kept table[kTable];
static int tableCount;

static size_t slotOf(const char *block) {
  return (size_t)((((uintptr_t)block >> 8) * 0x9E3779B97F4A7C15ull) >> 48);
}

/* With the lock held. */
static int remember(char *block, size_t capacity) {
  if (tableCount >= kTable / 2)
    return 0;
  size_t i = slotOf(block);
  while (table[i].block)
    i = (i + 1) % kTable;
  table[i].block = block;
  table[i].capacity = capacity;
  ++tableCount;
  return 1;
}

/* The slot of `block`, or -1. With the lock held. */
static long find(const char *block) {
  for (size_t i = slotOf(block); table[i].block; i = (i + 1) % kTable)
    if (table[i].block == block)
      return (long)i;
  return -1;
}

/* With the lock held: empties slot `i`, moving later entries of its probe
 * run back so that lookups still find them. */
static void forget(size_t i) {
  table[i].block = NULL;
  --tableCount;
  for (size_t j = (i + 1) % kTable; table[j].block; j = (j + 1) % kTable) {
    Kept moved = table[j];
    table[j].block = NULL;
    size_t k = slotOf(moved.block);
    while (table[k].block)
      k = (k + 1) % kTable;
    table[k] = moved;
  }
}

/* The capacity of `block`, and whether it is device memory. */
static size_t capacityOf(char *block, int *device) {
  pthread_mutex_lock(&lock);
  long i = find(block);
  size_t capacity = i >= 0 ? table[i].capacity : 0;
  pthread_mutex_unlock(&lock);
  *device = i >= 0;
  return i >= 0 ? capacity : ((Header *)(block - kHeader))->capacity;
}

static void *fresh(size_t capacity) {
  char *base = NULL;
  int managed = 0;
  if (ready()) {
    CUdeviceptr pointer = 0;
    if (onDevice()) {
      if (check(cu.memAlloc(&pointer, capacity), "cuMemAlloc_v2", "a buffer")) {
        pthread_mutex_lock(&lock);
        int kept = remember((char *)(uintptr_t)pointer, capacity);
        pthread_mutex_unlock(&lock);
        if (kept)
          return (void *)(uintptr_t)pointer;
        cu.memFree(pointer);
        fail("more than %d device buffers at once", kTable / 2);
      }
    } else if (check(cu.memAllocManaged(&pointer, capacity + kHeader,
                                        CU_MEM_ATTACH_GLOBAL),
                     "cuMemAllocManaged", "a buffer")) {
      base = (char *)(uintptr_t)pointer;
      managed = 1;
    }
  }
  /* Without a device the host code still runs over host memory (the kernels
   * are skipped and the call reports the error), so it never dereferences
   * a null buffer. */
  if (!base && !(base = aligned_alloc(kHeader, capacity + kHeader)))
    return NULL;
  Header *header = (Header *)base;
  header->capacity = capacity;
  header->managed = managed;
  return base + kHeader;
}

/* Copies between any two of host, managed and device memory. */
static void copyBytes(void *to, const void *from, size_t bytes) {
  if (bytes == 0)
    return;
  if (onDevice() && initialized > 0)
    check(cu.memcpy((CUdeviceptr)(uintptr_t)to, (CUdeviceptr)(uintptr_t)from,
                    bytes),
          "cuMemcpy", "an argument or result");
  else
    memcpy(to, from, bytes);
}

/* Copies `bytes` of a result (device, managed or host memory) to the host:
 * the runtime reads every result through this. */
GLINT_EXPORT void glint_cuda_copy_out(void *to, const void *from,
                                      size_t bytes) {
  copyBytes(to, from, bytes);
}

static void *allocate(size_t size) {
  if (size >= kLargeBytes) {
    void *found = NULL;
    pthread_mutex_lock(&lock);
    for (int i = keptCount - 1; i >= 0; --i)
      if (kept[i].capacity >= size && kept[i].capacity / 2 <= size) {
        found = kept[i].block;
        kept[i] = kept[--keptCount];
        break;
      }
    pthread_mutex_unlock(&lock);
    if (found)
      return found;
  }
  return fresh(size ? size : 1);
}

static void drop(char *block) {
  pthread_mutex_lock(&lock);
  long i = find(block);
  if (i >= 0)
    forget((size_t)i);
  pthread_mutex_unlock(&lock);
  if (i >= 0) { /* a device block */
    cu.memFree((CUdeviceptr)(uintptr_t)block);
    return;
  }
  Header *header = (Header *)(block - kHeader);
  if (header->managed)
    cu.memFree((CUdeviceptr)(uintptr_t)(block - kHeader));
  else
    free(block - kHeader);
}

static void release(void *pointer) {
  if (!pointer)
    return;
  char *block = pointer;
  int device;
  size_t capacity = capacityOf(block, &device);
  int gpu = device || ((Header *)(block - kHeader))->managed;
  if (capacity >= kLargeBytes && gpu) {
    char *evicted = NULL;
    pthread_mutex_lock(&lock);
    if (keptCount == kSlots) {
      evicted = kept[0].block;
      kept[0] = kept[--keptCount];
    }
    kept[keptCount].block = block;
    kept[keptCount].capacity = capacity;
    ++keptCount;
    pthread_mutex_unlock(&lock);
    if (evicted)
      drop(evicted);
    return;
  }
  drop(block);
}

GLINT_HIDDEN void *_mlir_memref_to_llvm_alloc(size_t size) {
  return allocate(size);
}

GLINT_HIDDEN void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment,
                                                      size_t size) {
  (void)alignment; /* blocks are kHeader-aligned, more than MLIR asks */
  return allocate(size);
}

GLINT_HIDDEN void _mlir_memref_to_llvm_free(void *pointer) { release(pointer); }

/* Releases a result buffer that the model returned. */
GLINT_EXPORT void glint_free(void *pointer) { release(pointer); }

/*===-- Arguments ---------------------------------------------------------===*/

/* A memref descriptor of any rank: allocated, aligned, offset, then sizes
 * and strides. */
typedef struct {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizesAndStrides[];
} Descriptor;

typedef struct {
  const void *host;
  size_t bytes;
  void *copy;
} Staged;

static Staged weights[4096];
static int weightCount;
static void *callCopies[256];
static int callCopyCount;

/* Points `descriptor` (rank `rank`, dense row-major data of elementBytes
 * each) at a managed copy of its data: for weights (kind 1) one kept
 * across calls, for inputs and states (kind 0) one for this call. */
GLINT_EXPORT void glint_cuda_stage(void *descriptorPointer, int32_t rank,
                                   int64_t elementBytes, int32_t kind) {
  Descriptor *descriptor = descriptorPointer;
  size_t bytes = (size_t)elementBytes;
  for (int32_t i = 0; i < rank; ++i)
    bytes *= (size_t)descriptor->sizesAndStrides[i];
  const char *host =
      (const char *)descriptor->aligned + descriptor->offset * elementBytes;
  if (bytes == 0 || !ready())
    return;
  void *copy = NULL;
  pthread_mutex_lock(&lock);
  if (kind == 1)
    for (int i = 0; i < weightCount && !copy; ++i)
      if (weights[i].host == host && weights[i].bytes == bytes)
        copy = weights[i].copy;
  pthread_mutex_unlock(&lock);
  if (!copy) {
    copy = allocate(bytes);
    if (!copy) {
      fail("out of memory staging an argument of %zu bytes", bytes);
      return;
    }
    copyBytes(copy, host, bytes);
    pthread_mutex_lock(&lock);
    if (kind == 1 && weightCount < (int)(sizeof weights / sizeof *weights))
      weights[weightCount++] = (Staged){host, bytes, copy};
    else if (callCopyCount < (int)(sizeof callCopies / sizeof *callCopies))
      callCopies[callCopyCount++] = copy;
    else
      fail("more than %d arguments to stage in one call",
           (int)(sizeof callCopies / sizeof *callCopies));
    pthread_mutex_unlock(&lock);
  }
  descriptor->allocated = copy;
  descriptor->aligned = copy;
  descriptor->offset = 0;
}

/* Frees the copies made for the call that just returned. */
GLINT_EXPORT void glint_cuda_end_call(void) {
  pthread_mutex_lock(&lock);
  int count = callCopyCount;
  void *copies[sizeof callCopies / sizeof *callCopies];
  memcpy(copies, callCopies, count * sizeof *copies);
  callCopyCount = 0;
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < count; ++i)
    release(copies[i]);
}

/* Forgets the weights' device copies: the next call copies them again. */
GLINT_EXPORT void glint_cuda_forget_weights(void) {
  pthread_mutex_lock(&lock);
  int count = weightCount;
  Staged copies[sizeof weights / sizeof *weights];
  memcpy(copies, weights, count * sizeof *copies);
  weightCount = 0;
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < count; ++i)
    release(copies[i].copy);
}

static double now(void);
static int profiling = -1; /* GLINT_CUDA_PROFILE, read on first use */
static long long blasCalls;
static double blasSeconds;

static int profileOn(void) {
  if (profiling < 0) {
    const char *env = getenv("GLINT_CUDA_PROFILE");
    profiling = env && *env && strcmp(env, "0") != 0;
  }
  return profiling;
}

/*===-- Matrix products (glint-matmul-to-blas)
 * -----------------------------===*/

/* cuBLAS, loaded on first use: the names its libraries have in CUDA 13 and
 * 12, found through the loader's path (LD_LIBRARY_PATH, ldconfig) or in
 * /usr/local/cuda. GLINT_CUDA_BLAS=0 turns it off (the kernels run). */
typedef struct cublasContext *cublasHandle_t;
static struct {
  int state; /* 0: not tried, 1: ready, -1: unavailable */
  cublasHandle_t handle;
  int (*setStream)(cublasHandle_t, CUstream);
  int (*sgemm)(cublasHandle_t, int, int, int, int, int, const float *,
               const float *, int, const float *, int, const float *, float *,
               int);
} blas;

static int blasReady(void) {
  pthread_mutex_lock(&lock);
  if (blas.state == 0) {
    blas.state = -1;
    const char *off = getenv("GLINT_CUDA_BLAS");
    const char *names[] = {"libcublas.so.13", "libcublas.so.12",
                           "/usr/local/cuda/lib64/libcublas.so.13",
                           "/usr/local/cuda/lib64/libcublas.so.12",
                           "libcublas.so"};
    void *library = NULL;
    for (size_t i = 0; !(off && strcmp(off, "0") == 0) && !library &&
                       i < sizeof names / sizeof *names;
         ++i)
      library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    int (*create)(cublasHandle_t *) =
        library ? (int (*)(cublasHandle_t *))dlsym(library, "cublasCreate_v2")
                : NULL;
    if (library) {
      *(void **)&blas.setStream = dlsym(library, "cublasSetStream_v2");
      *(void **)&blas.sgemm = dlsym(library, "cublasSgemm_v2");
    }
    if (create && blas.setStream && blas.sgemm && create(&blas.handle) == 0 &&
        blas.setStream(blas.handle, stream) == 0)
      blas.state = 1;
  }
  int ready = blas.state > 0;
  pthread_mutex_unlock(&lock);
  return ready;
}

/* C[m, n] += A[m, k] B (B[k, n], or B[n, k] when `transposed`), each given
 * by its address and row and column strides in elements. Returns 1 when
 * cuBLAS did it, 0 when the caller must (no cuBLAS, columns not
 * contiguous, sizes beyond int). Row-major C = A op(B) is column-major
 * Cᵀ = op(B)ᵀ Aᵀ, which is what cuBLAS is asked for. */
GLINT_HIDDEN int32_t glint_cuda_sgemm(int64_t transposed, int64_t m, int64_t n,
                                      int64_t k, int64_t a, int64_t aRow,
                                      int64_t aCol, int64_t b, int64_t bRow,
                                      int64_t bCol, int64_t c, int64_t cRow,
                                      int64_t cCol) {
  if (m == 0 || n == 0)
    return 1;
  if (aCol != 1 || bCol != 1 || cCol != 1 || m > 0x7fffffff || n > 0x7fffffff ||
      k > 0x7fffffff || aRow > 0x7fffffff || bRow > 0x7fffffff ||
      cRow > 0x7fffffff || !ready() || !blasReady())
    return 0;
  if (k == 0)
    return 1; /* C += nothing */
  static const float one = 1.0f;
  enum { kNoTranspose = 0, kTranspose = 1 };
  double start = profileOn() ? now() : 0;
  int status = blas.sgemm(blas.handle, transposed ? kTranspose : kNoTranspose,
                          kNoTranspose, (int)n, (int)m, (int)k, &one,
                          (const float *)(uintptr_t)b, (int)bRow,
                          (const float *)(uintptr_t)a, (int)aRow, &one,
                          (float *)(uintptr_t)c, (int)cRow);
  if (status != 0) {
    fail("cublasSgemm_v2(%ldx%ldx%ld) failed: status %d", (long)m, (long)n,
         (long)k, status);
    return 1;
  }
  check(cu.streamSynchronize(stream), "cublasSgemm_v2", "a matrix product");
  if (profiling > 0) {
    pthread_mutex_lock(&lock);
    blasCalls += 1;
    blasSeconds += now() - start;
    pthread_mutex_unlock(&lock);
  }
  return 1;
}

/*===-- MLIR's mgpu* functions (gpu-to-llvm's host code calls these) ------===*/

/* The kernels' names, for messages, and their profile. */
static struct {
  CUfunction function;
  char name[96];
  long long calls;
  double seconds;
  long long threads; /* of the last launch */
} names[1024];
static int nameCount;

static int indexOf(CUfunction function) {
  for (int i = 0; i < nameCount; ++i)
    if (names[i].function == function)
      return i;
  return -1;
}

static const char *nameOf(CUfunction function) {
  int i = indexOf(function);
  return i < 0 ? "a kernel" : names[i].name;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

__attribute__((destructor)) static void printProfile(void) {
  if (profiling <= 0)
    return;
  int order[sizeof names / sizeof *names];
  for (int i = 0; i < nameCount; ++i)
    order[i] = i;
  for (int i = 1; i < nameCount; ++i) /* insertion sort, slowest first */
    for (int j = i;
         j > 0 && names[order[j]].seconds > names[order[j - 1]].seconds; --j) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  if (blasCalls)
    fprintf(stderr,
            "{\"kernel\": \"cublasSgemm_v2 (all matrix products)\", "
            "\"calls\": %lld, \"ms\": %.4f, \"ms_per_call\": %.4f}\n",
            blasCalls, blasSeconds * 1e3, blasSeconds * 1e3 / blasCalls);
  for (int k = 0; k < nameCount; ++k) {
    int i = order[k];
    if (names[i].calls == 0)
      continue;
    fprintf(stderr,
            "{\"kernel\": \"%s\", \"calls\": %lld, \"ms\": %.4f, "
            "\"ms_per_call\": %.4f, \"threads\": %lld}\n",
            names[i].name, names[i].calls, names[i].seconds * 1e3,
            names[i].seconds * 1e3 / names[i].calls, names[i].threads);
  }
}

GLINT_HIDDEN void *mgpuModuleLoad(void *data, size_t size) {
  (void)size;
  CUmodule module = NULL;
  if (ready())
    check(cu.moduleLoadData(&module, data), "cuModuleLoadData",
          "the model's kernels");
  return module;
}

/* PTX (`--gpu-binary=isa`): the driver compiles it for the device. */
GLINT_HIDDEN void *mgpuModuleLoadJIT(void *data, int optLevel) {
  (void)optLevel;
  return mgpuModuleLoad(data, 0);
}

GLINT_HIDDEN void mgpuModuleUnload(void *module) {
  if (module && initialized > 0)
    cu.moduleUnload((CUmodule)module);
}

GLINT_HIDDEN void *mgpuModuleGetFunction(void *module, const char *name) {
  CUfunction function = NULL;
  if (!module || !ready())
    return NULL;
  if (!check(cu.moduleGetFunction(&function, (CUmodule)module, name),
             "cuModuleGetFunction", name))
    return NULL;
  pthread_mutex_lock(&lock);
  if (nameCount < (int)(sizeof names / sizeof *names)) {
    names[nameCount].function = function;
    snprintf(names[nameCount].name, sizeof names[nameCount].name, "%s", name);
    ++nameCount;
  }
  pthread_mutex_unlock(&lock);
  return function;
}

GLINT_HIDDEN void *mgpuStreamCreate(void) { return stream; }

GLINT_HIDDEN void mgpuStreamDestroy(void *unused) { (void)unused; }

GLINT_HIDDEN void mgpuStreamSynchronize(void *unused) {
  (void)unused;
  if (ready())
    check(cu.streamSynchronize(stream), "cuStreamSynchronize",
          "after a kernel");
}

GLINT_HIDDEN void mgpuLaunchKernel(void *function, intptr_t gridX,
                                   intptr_t gridY, intptr_t gridZ,
                                   intptr_t blockX, intptr_t blockY,
                                   intptr_t blockZ, int32_t sharedBytes,
                                   void *unused, void **params, void **extra,
                                   size_t paramCount) {
  (void)unused;
  (void)paramCount;
  if (!function || !ready())
    return;
  const char *name = nameOf(function);
  double start = profileOn() ? now() : 0;
  if (gridX > 0x7fffffff || gridY > 65535 || gridZ > 65535) {
    fail("kernel %s: a grid of %ld x %ld x %ld blocks is more than the GPU "
         "takes",
         name, (long)gridX, (long)gridY, (long)gridZ);
    return;
  }
  if (check(cu.launchKernel((CUfunction)function, gridX, gridY, gridZ, blockX,
                            blockY, blockZ, sharedBytes, stream, params, extra),
            "cuLaunchKernel", name))
    check(cu.streamSynchronize(stream), "kernel", name);
  if (profiling) {
    double seconds = now() - start;
    pthread_mutex_lock(&lock);
    int i = indexOf((CUfunction)function);
    if (i >= 0) {
      names[i].calls += 1;
      names[i].seconds += seconds;
      names[i].threads =
          (long long)gridX * gridY * gridZ * blockX * blockY * blockZ;
    }
    pthread_mutex_unlock(&lock);
  }
}
