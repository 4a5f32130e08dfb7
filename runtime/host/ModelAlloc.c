/*===- ModelAlloc.c - the allocator linked into compiled models -----------===*
 *
 * Part of the glint project.
 *
 *===----------------------------------------------------------------------===*
 *
 * Compiled models allocate every tensor through MLIR's generic allocation
 * functions (finalize-memref-to-llvm{use-generic-functions}); glint-compile
 * links this file into each library and program to provide them. Without
 * it, each call of a model mallocs its large intermediates and its result
 * afresh: above glibc's mmap threshold that is a new mapping every time,
 * and every page of it is faulted in and zeroed again (a Mamba-1 scan at
 * L = 8192 spent 25% of its time there, glint-bench). Here blocks of at
 * least 8 KiB are kept when freed, up to a limit, and handed out again to
 * requests they fit (at most twice the size asked for), so a model that
 * runs repeatedly reuses warm pages, the block freed last first. Smaller
 * blocks go straight to malloc. (From 1 MiB up only, mamba-keyword's
 * gradient at L = 2048, whose [L, 64] and [L, 32] intermediates are 256 and
 * 512 KiB, spent 15% of its time in page faults: 7.9 ms a call, 5.9 with
 * 128 KiB. From 128 KiB up only, glibc's default mmap threshold, RWKV-6's
 * gradient with its [L, 8] and [L, 16] low-rank intermediates spent 5% of
 * its samples in malloc, free and this file, 3.5% with 8 KiB.)
 *
 * Every block starts with a header holding its capacity and the distance
 * to the start of its allocation, so blocks must be freed here: the
 * results a model returns are released with `glint_free` (runtime/README.md,
 * the C ABI), never with free().
 *
 * GLINT_ALLOC_CACHE_MB (read once) sets the limit of kept blocks in MiB;
 * 0 turns the cache off. The default is a quarter of the physical memory,
 * in at most 1024 blocks.
 *
 * The bytes of the blocks handed out and not yet released are counted, with
 * their high-water mark (glint_alloc_stats): what a call of the model holds
 * at once, whether the blocks are fresh or kept ones reused. glint-bench
 * reports it per entry point (a gradient against its forward).
 *
 * Those counts also bound what a model may hold: a request of at least
 * 128 KiB that would take the bytes held past the machine's physical memory
 * (or GLINT_MEMORY_LIMIT_MB, read at each such request) fails as an
 * allocation failure, before any page is touched. Linux grants larger
 * requests than it can back (overcommit), so without this a model given a
 * too long input would be killed by the kernel part way, or push the
 * machine into swap, instead of returning an error.
 *
 *===----------------------------------------------------------------------===*/

#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#define GLINT_HIDDEN __attribute__((visibility("hidden")))
#define GLINT_EXPORT __attribute__((visibility("default")))

enum {
  /* Alignment of every block (a cache line, and AVX-512's vector size). */
  kAlign = 64,
  /* Requests from this size are checked against the memory limit. */
  kLargeBytes = 128 << 10,
  /* Blocks from this size are kept when freed. */
  kKeptBytes = 8 << 10,
  /* Kept blocks at most. */
  kSlots = 1024,
};

/* In front of every block. */
typedef struct {
  size_t capacity;
  size_t offset; /* from the start of the allocation to the block */
} Header;

typedef struct {
  char *block;
  size_t capacity;
} Kept;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Kept kept[kSlots];
static int keptCount;
static size_t keptBytes;
static long long limitBytes = -1; /* read from the environment on first use */

static Header *headerOf(void *block) { return (Header *)block - 1; }

/* Bytes handed out and not released, and their high-water mark. */
static size_t liveBytes, peakBytes;

static void *counted(char *block) {
  size_t now = __atomic_add_fetch(&liveBytes, headerOf(block)->capacity,
                                  __ATOMIC_RELAXED);
  size_t peak = __atomic_load_n(&peakBytes, __ATOMIC_RELAXED);
  while (now > peak &&
         !__atomic_compare_exchange_n(&peakBytes, &peak, now, 1,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
  return block;
}

/* The machine's physical memory in bytes, or 0 if it cannot be told; asked
 * once (sysconf(_SC_PHYS_PAGES) is a sysinfo system call, and every request
 * from 128 KiB asks: 1% of RWKV-6's gradient at L = 2048 went to it). */
static size_t physicalBytes(void) {
  static size_t bytes = (size_t)-1;
  size_t known = __atomic_load_n(&bytes, __ATOMIC_RELAXED);
  if (known == (size_t)-1) {
    long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    known = pages > 0 && pageSize > 0 ? (size_t)pages * (size_t)pageSize : 0;
    __atomic_store_n(&bytes, known, __ATOMIC_RELAXED);
  }
  return known;
}

static size_t cacheLimit(void) {
  if (limitBytes < 0) {
    const char *text = getenv("GLINT_ALLOC_CACHE_MB");
    /* A quarter of the physical memory: a whole-model forward holds GBs
     * at long prompts (Mamba-130m at L = 2048: 2 GB or more of activations
     * in ~150 blocks), and whatever does not fit is faulted in and zeroed
     * again on the next call. */
    size_t physical = physicalBytes();
    long long mib = physical ? (long long)(physical / 4 >> 20) : 1024;
    if (text && *text) {
      char *end;
      long long parsed = strtoll(text, &end, 10);
      if (*end == '\0' && parsed >= 0)
        mib = parsed;
    }
    limitBytes = mib << 20;
  }
  return (size_t)limitBytes;
}

/* The most a model may hold at once, in bytes: GLINT_MEMORY_LIMIT_MB when
 * set to a positive number, else the machine's physical memory. */
GLINT_EXPORT size_t glint_alloc_limit(void) {
  const char *text = getenv("GLINT_MEMORY_LIMIT_MB");
  if (text && *text) {
    char *end;
    long long mib = strtoll(text, &end, 10);
    if (*end == '\0' && mib > 0 && mib < (1ll << 43))
      return (size_t)mib << 20;
  }
  size_t physical = physicalBytes();
  return physical ? physical : SIZE_MAX;
}

/* Whether `size` more bytes would take what is held past the limit. */
static int overLimit(size_t size) {
  size_t held = __atomic_load_n(&liveBytes, __ATOMIC_RELAXED);
  size_t limit = glint_alloc_limit();
  return held > limit || size > limit - held;
}

static void *fresh(size_t capacity, size_t alignment) {
  /* The header sits in the `alignment` bytes before the block. */
  if (alignment < kAlign)
    alignment = kAlign;
  void *base;
  if (capacity > SIZE_MAX - alignment ||
      posix_memalign(&base, alignment, capacity + alignment) != 0)
    return NULL;
  char *block = (char *)base + alignment;
  headerOf(block)->capacity = capacity;
  headerOf(block)->offset = alignment;
  return block;
}

/* Subnormal floats flushed to zero: every entry point of a compiled model
 * and every OpenMP region in it calls glint_denormals_off first and
 * glint_denormals_restore with its result last (glint-flush-denormals). On
 * x86 that sets MXCSR's flush-to-zero (bit 15) and denormals-are-zero
 * (bit 6) bits and restores the register; elsewhere both do nothing. */
static unsigned floatModes(void) {
#if defined(__x86_64__) || defined(__i386__)
  return _mm_getcsr();
#else
  return 0;
#endif
}

GLINT_HIDDEN unsigned glint_denormals_off(void) {
  unsigned old = floatModes();
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(old | 0x8040u);
#endif
  return old;
}

GLINT_HIDDEN void glint_denormals_restore(unsigned modes) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(modes);
#else
  (void)modes;
#endif
}

/* Generated code stores through what it allocates without a check, so a
 * failed allocation must not return. glint_call_guarded (below) arms
 * `guard` on the calling thread; a failure there jumps back to it, which
 * then returns the failure to the host as an error. A failure on any other
 * thread (a worker of a parallel loop) cannot unwind the caller: it says
 * what happened and ends the process, still better than a segfault. */
static __thread jmp_buf *guard;
static __thread size_t failedBytes;

static void *failed(size_t size) {
  if (guard) {
    failedBytes = size;
    longjmp(*guard, 1);
  }
  char message[192];
  int length = snprintf(message, sizeof message,
                        "glint: a compiled model could not allocate %zu "
                        "more bytes (out of memory, or past the limit: the "
                        "physical memory or GLINT_MEMORY_LIMIT_MB)\n",
                        size);
  if (length > 0)
    (void)!write(2, message, (size_t)length);
  _exit(1);
}

static void *allocateOrNull(size_t size, size_t alignment);

static void *allocate(size_t size, size_t alignment) {
  void *block = allocateOrNull(size, alignment);
  return block ? counted(block) : failed(size);
}

static void *allocateOrNull(size_t size, size_t alignment) {
  if (size == 0)
    size = 1;
  if (size >= kLargeBytes && overLimit(size))
    return NULL;
  if (size >= kKeptBytes && alignment <= kAlign) {
    /* Round up, so that sizes that differ a little share blocks. */
    size_t grain = size >= kLargeBytes ? 0xffff : 0xfff;
    size_t rounded = (size + grain) & ~grain;
    /* The smallest kept block that fits and wastes at most half of itself,
     * the one released last among equals (its lines may still be in the
     * cache). A model called again asks for the sizes it asked for last
     * time, so the search usually ends early, at a block of the rounded
     * size (every capacity is a multiple of 4 KiB, and from 128 KiB of
     * 64 KiB: none fits between the size and the rounded size). */
    pthread_mutex_lock(&lock);
    int best = -1;
    for (int i = keptCount - 1; i >= 0; --i) {
      size_t capacity = kept[i].capacity;
      if (capacity < size || capacity / 2 > size ||
          (best >= 0 && capacity >= kept[best].capacity))
        continue;
      best = i;
      if (capacity == rounded)
        break;
    }
    char *block = NULL;
    if (best >= 0) {
      block = kept[best].block;
      keptBytes -= kept[best].capacity;
      /* The others keep their order, oldest first. */
      for (int i = best + 1; i < keptCount; ++i)
        kept[i - 1] = kept[i];
      --keptCount;
    }
    pthread_mutex_unlock(&lock);
    if (block)
      return block;
    size = rounded;
  }
  return fresh(size, alignment);
}

static void release(void *pointer) {
  if (!pointer)
    return;
  char *block = pointer;
  Header *header = headerOf(block);
  __atomic_sub_fetch(&liveBytes, header->capacity, __ATOMIC_RELAXED);
  if (header->capacity >= kKeptBytes && header->offset == kAlign) {
    size_t limit = cacheLimit();
    char *evicted[kSlots];
    int evictedCount = 0;
    int keep = 0;
    pthread_mutex_lock(&lock);
    if (header->capacity <= limit) {
      /* Make room by dropping the oldest kept blocks. */
      while (keptCount > 0 &&
             (keptCount == kSlots || keptBytes + header->capacity > limit)) {
        evicted[evictedCount++] = kept[0].block;
        keptBytes -= kept[0].capacity;
        for (int i = 1; i < keptCount; ++i)
          kept[i - 1] = kept[i];
        --keptCount;
      }
      kept[keptCount].block = block;
      kept[keptCount].capacity = header->capacity;
      ++keptCount;
      keptBytes += header->capacity;
      keep = 1;
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < evictedCount; ++i)
      free(evicted[i] - headerOf(evicted[i])->offset);
    if (keep)
      return;
  }
  free(block - header->offset);
}

/* The kept blocks go back to the system when the library is unloaded. */
__attribute__((destructor)) static void drain(void) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < keptCount; ++i)
    free(kept[i].block - headerOf(kept[i].block)->offset);
  keptCount = 0;
  keptBytes = 0;
  pthread_mutex_unlock(&lock);
}

/* The bytes of the blocks the model holds now (`*live`) and the most it
 * has held at once (`*peak`) since the library was loaded or the last
 * reset; with `reset`, the mark restarts from what is held now. */
GLINT_EXPORT void glint_alloc_stats(size_t *live, size_t *peak, int reset) {
  size_t now = __atomic_load_n(&liveBytes, __ATOMIC_RELAXED);
  if (reset)
    __atomic_store_n(&peakBytes, now, __ATOMIC_RELAXED);
  if (live)
    *live = now;
  if (peak)
    *peak = __atomic_load_n(&peakBytes, __ATOMIC_RELAXED);
}

/* Calls a model's entry point `fn` with `args`; 0 if it returned, or 1 with
 * `*bytes` set to the size of the allocation that failed. The buffers the
 * call had allocated until then are lost (the process is short of memory
 * already; no attempt is made to free them). */
GLINT_EXPORT int glint_call_guarded(void (*fn)(void **), void **args,
                                    size_t *bytes) {
  jmp_buf here;
  jmp_buf *volatile outer = guard;
  /* The model's entry restores the floating-point modes it changes
   * (glint_denormals_off) when it returns, not when an allocation failure
   * jumps out of it: restored here then. */
  unsigned modes = floatModes();
  if (setjmp(here)) {
    glint_denormals_restore(modes);
    guard = outer;
    *bytes = failedBytes;
    return 1;
  }
  guard = &here;
  fn(args);
  guard = outer;
  return 0;
}

GLINT_HIDDEN void *_mlir_memref_to_llvm_alloc(size_t size) {
  return allocate(size, kAlign);
}

GLINT_HIDDEN void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment,
                                                      size_t size) {
  return allocate(size, alignment);
}

GLINT_HIDDEN void _mlir_memref_to_llvm_free(void *pointer) { release(pointer); }

/* Releases a result buffer that the model returned (its `allocated`
 * pointer). */
GLINT_EXPORT void glint_free(void *pointer) { release(pointer); }
