//===- glint-bench.cpp - timing compiled glint kernels --------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Measures glint's benchmark cases (the scans, conv1d, softplus, the
// matmuls, whole models, an attention map) as the compiler builds them
// today and prints one JSON line per case and sequence length on stdout:
//
//   glint-bench                          # every case, L = 512, 2048, 8192
//   glint-bench --cases=mamba1,conv1d --L=8192 --repetitions=9
//   glint-bench --quick                  # a smoke run, in seconds
//   glint-bench --cases=mamba-130m --gradient --L=512,2048
//
// Each op case is a one-op glint module whose tensors are all function
// inputs (so no checkpoint is needed), compiled in process with
// compiler::compileToLibrary and loaded with the runtime. Its result is
// checked once against a naive scalar C++ loop of the same math built into
// this binary (relative error in float32 must stay ≤ 1e-4, or the case
// fails and glint-bench exits non-zero), then both are timed in the same
// run: min and median over --repetitions repetitions of each (a short
// kernel is called several times per repetition). `ratio_vs_naive` is
// the naive loop's median time over the compiled kernel's, a speed-up (> 1
// means the compiled kernel is faster).
//
// Timing is a plain std::chrono loop rather than Google Benchmark: the
// cases are long (milliseconds to seconds per call), min and median over a
// fixed number of repetitions are the figures compared, and it gives
// exactly the one-JSON-line-per-case output without post-processing.
//
// An op case's compiled kernel is timed by calling its `glint_forward`
// entry point directly with descriptors of the input buffers (freeing the
// buffer it returns), so that the runtime's input checks and result copy are
// not counted; the correctness check goes through CompiledModel::run. The
// whole-model case, whose weights CompiledModel holds, times run().
//
// Compiled kernels run their (batch, head) loops on OpenMP threads:
// --threads N (default 1, for per-core figures) sets how many, before any
// library is loaded; every line reports it as `threads`, and
// `cpu_per_wall` (process CPU time over wall time while timing the compiled
// kernel) shows how many cores it actually kept busy. The naive loops are
// always single-threaded.
//
// --gradient turns the whole-model cases (`model`, one per --model
// directory, `mamba-130m` and `rwkv6-12x768`) into gradient cases: the model is
// compiled with its gradient entry (glint-compile --grad), which is first
// checked against the reference evaluator running glint-differentiate's
// gradient function in double at --gradient-check-length (every result to 1e-4,
// relative 2-norm; past that, within 10x of the evaluator's own change when
// the weights are rounded at float32's precision, an ill-conditioned input
// said on stderr), then at each length checked again (its logits must be
// the forward's, every cotangent finite) and timed against the forward in
// interleaved rounds, so that each round's ratio grad/forward comes from one
// moment of a shared machine. The bytes each entry holds at once come from
// the library's allocator (glint_alloc_stats). One JSON line per model and
// length: forward_ms_*, gradient_ms_*, grad_over_forward_*,
// *_peak_alloc_mib.
//
// --decode turns the whole-model cases into generation cases: the model is
// compiled with its step entry; after a random prompt of L tokens (default
// 64) it generates --decode-tokens tokens greedily, one step each, and each
// step is timed alone. One JSON line per model and prompt length:
// ms_per_token_*, weight_gbps_* (the step's weight bytes over its time: a
// generated token reads every weight once) and stream_read_gbps, the read
// bandwidth of the machine on the same threads, measured again after each
// repetition (on a shared host it moves from second to second: one
// measurement per run set a two-thread f32 step at 1.37 of it), so that
// fraction_of_stream_median, the median over the repetitions of each one's
// step against the bandwidth beside it, says how close the step is to the
// memory roofline. The last step's logits must equal the full forward's on
// the whole sequence.
//
// --form chooses how matrix-state recurrences are compiled (auto, the
// compiler's choice; recurrent; chunked: glint-chunk-recurrence). Given
// several (--form=recurrent,chunked), each case is compiled once per form
// and, at each length, the forms are timed one after the other, so that
// their ratio comes from the same moment of a shared machine; each line
// says its `form`.
//
//===----------------------------------------------------------------------===//

#include "compiler/Compiler.h"
#include "import/Importers.h"
#include "passes/cpu/Pipelines.h"
#include "passes/transforms/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/AtomicFile.h"
#include "runtime/io/Safetensors.h"
#include "tools/ToolVersion.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "runtime/io/CrashReport.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#ifdef GLINT_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#define GLINT_BENCH_LIBRARY "OpenBLAS cblas_sgemm"
#else
#define GLINT_BENCH_LIBRARY ""
#endif
#include <dlfcn.h>
#include <immintrin.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

using namespace mlir;
using namespace mlir::glint;
namespace cl = llvm::cl;
namespace rt = mlir::glint::runtime;
namespace json = llvm::json;

static cl::OptionCategory category("glint-bench options");

static cl::list<std::string>
    caseNames("cases", cl::cat(category),
              cl::desc("Cases to run: mamba1, mamba2, mamba2-h2, mamba2-h1, "
                       "retnet, retnet-h1, retnet-h1-v32, retnet-k32, rwkv6, "
                       "gla, conv1d, softplus, matmul-{in_proj,x_proj,"
                       "dt_proj,out_proj,lm_head}, model, mamba-130m, "
                       "rwkv6-12x768, attn-map-mamba1, "
                       "attn-attribution-mamba1 "
                       "(default: all)"),
              cl::CommaSeparated);
static cl::list<int64_t>
    lengths("L", cl::cat(category),
            cl::desc("Sequence lengths (default 512,2048,8192; 64 "
                     "with --quick)"),
            cl::CommaSeparated);
static cl::opt<unsigned>
    repetitions("repetitions", cl::cat(category),
                cl::desc("Timed calls of each implementation per case "
                         "(default 5; 2 with --quick)"),
                cl::init(0));

static cl::list<std::string>
    formNames("recurrence-form", cl::cat(category),
              cl::desc("How matrix-state recurrences are compiled: auto (the "
                       "compiler's choice, default), recurrent, chunked "
                       "(glint-chunk-recurrence), or several (each case is "
                       "then timed in each, one after the other); printed "
                       "as `form`"),
              cl::CommaSeparated);
// The name glint-compile uses; --form was glint-bench's own.
static cl::alias formNamesOld("form", cl::aliasopt(formNames), cl::Hidden,
                              cl::desc("Alias for --recurrence-form"));
static cl::opt<cl::boolOrDefault>
    tableOpt("table", cl::cat(category),
             cl::desc("After the JSON lines, print a table of the results "
                      "(default: when the output is a terminal)"));
static cl::opt<int64_t>
    chunkSize("chunk-size", cl::cat(category),
              cl::desc("Steps per chunk of the chunked form (default: the "
                       "pass's)"),
              cl::init(0));

static cl::opt<bool> quick("quick", cl::cat(category),
                           cl::desc("A fast smoke run: L = 64, 2 "
                                    "repetitions (unless given)"));
static cl::opt<unsigned> seed("seed", cl::cat(category),
                              cl::desc("Random seed for the inputs"),
                              cl::init(1));
static cl::opt<std::string> mamba130mDir(
    "mamba-130m-dir", cl::cat(category),
    cl::desc("Where the mamba-130m case keeps its random checkpoint: written "
             "there if it has none yet, reused otherwise (default: a "
             "temporary directory, removed at the end)"));
static cl::opt<std::string> rwkv6SmallDir(
    "rwkv6-12x768-dir", cl::cat(category),
    cl::desc("Where the rwkv6-12x768 case keeps its random checkpoint "
             "(as --mamba-130m-dir)"));
static cl::list<std::string>
    modelDirs("model", cl::cat(category),
              cl::desc("Checkpoint directories of the `model` case, one line "
                       "each (default: models/mamba-keyword)"),
              cl::CommaSeparated);
static cl::opt<bool> gradientMode(
    "gradient", cl::cat(category),
    cl::desc("Whole-model cases (model, mamba-130m, rwkv6-12x768): compile "
             "the gradient "
             "entry too (glint-compile --grad), check it against the "
             "reference evaluator at --gradient-check-length, and time it "
             "against the forward in the same run"));
static cl::opt<bool> decodeMode(
    "decode", cl::cat(category),
    cl::desc("Whole-model cases (model, mamba-130m, rwkv6-12x768): time "
             "generation instead "
             "of the forward: after a prompt of L random tokens (--L, "
             "default 64 here), --decode-tokens greedy one-token steps of "
             "the step entry; ms/token and the weight bytes streamed per "
             "second against the read bandwidth measured in the same run"));
static cl::opt<unsigned> decodeTokens(
    "decode-tokens", cl::cat(category),
    cl::desc("Timed one-token steps per repetition of --decode (default 32)"),
    cl::init(32));
static cl::list<std::string> weightDtypes(
    "weight-dtype", cl::cat(category),
    cl::desc("Whole-model cases: the linear layers' and embeddings' weights "
             "in memory, f32 (default), bf16 or f16 (glint-compile "
             "--weight-dtype); given several, each model is compiled once per "
             "type and timed in each, one after the other; printed as "
             "`weight_dtype`"),
    cl::CommaSeparated);
static cl::list<std::string> prepareWeightsOpt(
    "prepare-weights", cl::cat(category),
    cl::desc("Whole-model cases: on (default), the linear layers' weights "
             "are held as the panels the products read, laid out once when "
             "bound; off, packed on every call of a prompt (glint-compile "
             "--prepare-weights); given both (on,off), each model is "
             "compiled and timed both ways; printed as `prepared_weights`"),
    cl::CommaSeparated);
static cl::opt<bool> keepLibraries(
    "keep-libraries", cl::cat(category),
    cl::desc("Leave the compiled libraries in the temporary directory (their "
             "paths go to stderr), e.g. for perf report's symbols"));
static cl::opt<int64_t> gradientCheckLength(
    "gradient-check-length", cl::cat(category),
    cl::desc("Sequence length of --gradient's check against the reference "
             "evaluator (default 8)"),
    cl::init(8));

/// Above this relative error (float32 against float32) a case fails.
static constexpr double kTolerance = 1e-4;

static void error(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-bench") << message << "\n";
}

namespace {

//===----------------------------------------------------------------------===//
// Inputs
//===----------------------------------------------------------------------===//

/// A float32 host array of `shape` filled uniformly from [lo, hi).
/// The case and length being set up, for refusing an input too large.
static std::string currentInstance;

/// This machine's physical memory in bytes (0 if unknown).
static uint64_t physicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

/// Exits with an error if an input of `shape` (elements of `bytes` bytes)
/// would take more than a quarter of the memory (a typo in --L, say): no room
/// would be left for the outputs and the reference. Checked before the
/// allocation, with the size it would take.
void refuseHugeInput(llvm::ArrayRef<int64_t> shape, uint64_t bytes) {
  uint64_t total = bytes;
  bool overflow = false;
  for (int64_t d : shape) {
    bool over = false;
    total = llvm::SaturatingMultiply(total, uint64_t(d), &over);
    overflow |= over;
  }
  uint64_t memory = physicalMemory();
  if (!overflow && (!memory || total <= memory / 4))
    return;
  std::string dims;
  for (int64_t d : shape)
    dims += (dims.empty() ? "" : ", ") + std::to_string(d);
  std::string size =
      overflow
          ? std::string("more than 2^64 bytes")
          : llvm::formatv("{0:f1} GiB", double(total) / (1ull << 30)).str();
  error(llvm::formatv("{0}: an input of shape [{1}] would take {2}, more "
                      "than a quarter of this machine's {3} GiB of memory; "
                      "choose a smaller --L",
                      currentInstance, dims, size, memory >> 30));
  std::exit(1);
}

rt::HostArray randomArray(std::mt19937 &rng, std::vector<int64_t> shape,
                          float lo, float hi) {
  refuseHugeInput(shape, sizeof(float));
  rt::HostArray a = rt::HostArray::make(std::move(shape), "f32");
  std::uniform_real_distribution<float> dist(lo, hi);
  float *p = a.data<float>();
  for (int64_t i = 0, e = a.numElements(); i < e; ++i)
    p[i] = dist(rng);
  return a;
}

/// `tensor<AxBx...xf32>`, with -1 printed as `?`.
std::string tensorType(llvm::ArrayRef<int64_t> shape) {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += (d < 0 ? std::string("?") : std::to_string(d)) + "x";
  return s + "f32>";
}

//===----------------------------------------------------------------------===//
// Naive loops
//===----------------------------------------------------------------------===//
//
// Straightforward scalar float32 C++ of each op's documented semantics
// (docs/GlintOps.md), one std::exp per decay factor, batch 1, G = 1 or
// G = H key groups, outputs [L, H, V] row-major.

/// glint.recurrence with `delta` (Mamba-1: log_decay [H, K]; Mamba-2:
/// log_decay [H]) and `skip`:
///   S_t = exp(Δ_t[h]·A[h, k]) S_{t-1} + Δ_t[h] k_t v_tᵀ,
///   o_t = S_tᵀ q_t + D[h] v_t.
/// Without `delta` (null: RetNet's constant decay per head) Δ = 1; without
/// `skip` (null) D = 0.
void naiveDeltaScan(int64_t L, int64_t H, int64_t G, int64_t K, int64_t V,
                    bool perKeyDecay, const float *q, const float *k,
                    const float *v, const float *logDecay, const float *delta,
                    const float *skip, float *out) {
  std::vector<float> state(H * K * V, 0.0f);
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / (H / G);
      const float *qt = q + (t * G + g) * K;
      const float *kt = k + (t * G + g) * K;
      const float *vt = v + (t * H + h) * V;
      float *ot = out + (t * H + h) * V;
      float dt = delta ? delta[t * H + h] : 1.0f;
      float headDecay = perKeyDecay ? 0.0f : std::exp(dt * logDecay[h]);
      for (int64_t j = 0; j < V; ++j)
        ot[j] = skip ? skip[h] * vt[j] : 0.0f;
      for (int64_t i = 0; i < K; ++i) {
        float decay =
            perKeyDecay ? std::exp(dt * logDecay[h * K + i]) : headDecay;
        float dk = dt * kt[i];
        float *s = state.data() + (h * K + i) * V;
        for (int64_t j = 0; j < V; ++j) {
          s[j] = decay * s[j] + dk * vt[j];
          ot[j] += s[j] * qt[i];
        }
      }
    }
  }
}

/// glint.recurrence with a data-dependent per-key log-decay [L, H, K]
/// (GLA), optionally with RWKV-6's `bonus` u [H, K]:
///   without: S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t;
///   with:    o_t = S_{t-1}ᵀ q_t + (q_t · (u ⊙ k_t)) v_t, S_t as above.
void naiveGatedScan(int64_t L, int64_t H, int64_t K, int64_t V, const float *q,
                    const float *k, const float *v, const float *logDecay,
                    const float *bonus, float *out) {
  std::vector<float> state(H * K * V, 0.0f);
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      const float *qt = q + (t * H + h) * K;
      const float *kt = k + (t * H + h) * K;
      const float *gt = logDecay + (t * H + h) * K;
      const float *vt = v + (t * H + h) * V;
      float *ot = out + (t * H + h) * V;
      for (int64_t j = 0; j < V; ++j)
        ot[j] = 0.0f;
      if (bonus) {
        float qu = 0.0f;
        for (int64_t i = 0; i < K; ++i)
          qu += qt[i] * bonus[h * K + i] * kt[i];
        for (int64_t j = 0; j < V; ++j)
          ot[j] = qu * vt[j];
      }
      for (int64_t i = 0; i < K; ++i) {
        float decay = std::exp(gt[i]);
        float *s = state.data() + (h * K + i) * V;
        if (bonus) {
          for (int64_t j = 0; j < V; ++j) {
            ot[j] += s[j] * qt[i];
            s[j] = decay * s[j] + kt[i] * vt[j];
          }
        } else {
          for (int64_t j = 0; j < V; ++j) {
            s[j] = decay * s[j] + kt[i] * vt[j];
            ot[j] += s[j] * qt[i];
          }
        }
      }
    }
  }
}

/// glint.conv1d, causal, with bias, zero initial state:
///   y[t, c] = b[c] + Σ_i w[c, i] · x[t - (W-1) + i, c].
void naiveConv1d(int64_t L, int64_t C, int64_t W, const float *x,
                 const float *w, const float *b, float *y) {
  for (int64_t t = 0; t < L; ++t) {
    for (int64_t c = 0; c < C; ++c) {
      float acc = b[c];
      for (int64_t i = 0; i < W; ++i) {
        int64_t s = t - (W - 1) + i;
        if (s >= 0)
          acc += w[c * W + i] * x[s * C + c];
      }
      y[t * C + c] = acc;
    }
  }
}

//===----------------------------------------------------------------------===//
// Cases
//===----------------------------------------------------------------------===//

/// One benchmark case at one sequence length.
struct Instance {
  std::vector<rt::HostArray> inputs;
  /// Runs the naive loop on `inputs` into `out` (already sized); null when
  /// there is none (the whole-model case).
  std::function<void(const std::vector<rt::HostArray> &, float *)> naive;
  /// The same through a tuned library (OpenBLAS), where one applies and
  /// glint-bench was built with it; timed in the same run.
  std::function<void(const std::vector<rt::HostArray> &, float *)> library;
  /// Units of work per call (updates, taps or tokens).
  double work = 0;
};

struct Case {
  std::string name;
  std::string description;
  /// "updates", "taps" or "tokens".
  std::string unit;
  /// Sizes reported with every line (D, N, H, K, V, W, ...).
  std::vector<std::pair<std::string, int64_t>> sizes;
  /// The module to compile (MLIR text), or empty for the model case.
  std::string ir;
  std::function<Instance(std::mt19937 &, int64_t L)> make;
  /// Extra fields of each JSON line, from the median time (optional).
  std::function<void(json::Object &, double seconds, int64_t L)> annotate;
  /// A check against the double-precision reference evaluator on a smaller
  /// instance, run once: the relative error, or an error (optional).
  std::function<llvm::Expected<double>(MLIRContext &, std::mt19937 &)>
      referenceCheck;
  /// The checkpoint directory of the `model` case.
  std::string dir;
};

/// The cases that compile a whole model from a checkpoint (--decode,
/// --gradient and --weight-dtype apply to them only).
bool isWholeModel(const Case &c) {
  return c.name == "model" || c.name == "mamba-130m" ||
         c.name == "rwkv6-12x768";
}

/// `func.func @forward` of one op over function inputs of `shapes`.
std::string oneOpModule(llvm::ArrayRef<std::vector<int64_t>> shapes,
                        llvm::ArrayRef<std::string> names,
                        llvm::StringRef opText,
                        llvm::ArrayRef<int64_t> resultShape) {
  std::string args, types;
  for (auto [i, shape] : llvm::enumerate(shapes)) {
    args += (i ? ", %" : "%") + names[i] + ": " + tensorType(shape);
    types += (i ? ", " : "") + tensorType(shape);
  }
  std::string result = tensorType(resultShape);
  return llvm::formatv("module {{\n"
                       "  func.func @forward({0}) -> {1} {{\n"
                       "    %y = {2} : ({3}) -> {1}\n"
                       "    return %y : {1}\n"
                       "  }\n"
                       "}\n",
                       args, result, opText, types)
      .str();
}

Case mamba1Case() {
  const int64_t D = 1536, N = 16;
  Case c;
  c.name = "mamba1";
  c.description = "Mamba-1 selective scan (B=1, per-channel A[D,N], delta, "
                  "skip, shared B/C)";
  c.unit = "updates";
  c.sizes = {{"D", D}, {"N", N}, {"H", D}, {"K", N}, {"V", 1}};
  c.ir = oneOpModule({{-1, -1, 1, N},
                      {-1, -1, 1, N},
                      {-1, -1, D, 1},
                      {D, N},
                      {-1, -1, D},
                      {D}},
                     {"q", "k", "v", "a", "dt", "d"},
                     "glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) "
                     "delta(%dt) skip(%d)",
                     {-1, -1, D, 1});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, D, 1}, -1, 1));
    in.inputs.push_back(randomArray(rng, {D, N}, -4, -0.1f));
    in.inputs.push_back(randomArray(rng, {1, L, D}, 0.001f, 0.1f));
    in.inputs.push_back(randomArray(rng, {D}, -1, 1));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveDeltaScan(L, D, 1, N, 1, /*perKeyDecay=*/true, a[0].data<float>(),
                     a[1].data<float>(), a[2].data<float>(), a[3].data<float>(),
                     a[4].data<float>(), a[5].data<float>(), out);
    };
    in.work = double(L) * D * N;
    return in;
  };
  return c;
}

/// Mamba-2 with H heads (24: the case `mamba2`; 1 or 2: fewer heads than
/// threads).
Case mamba2Case(int64_t H = 24) {
  const int64_t N = 128, P = 64;
  Case c;
  c.name = H == 24 ? "mamba2" : "mamba2-h" + std::to_string(H);
  c.description = "Mamba-2 scan (B=1, scalar decay per head, delta, skip, "
                  "one B/C group)";
  c.unit = "updates";
  c.sizes = {{"H", H}, {"N", N}, {"P", P}, {"K", N}, {"V", P}};
  c.ir = oneOpModule(
      {{-1, -1, 1, N}, {-1, -1, 1, N}, {-1, -1, H, P}, {H}, {-1, -1, H}, {H}},
      {"q", "k", "v", "a", "dt", "d"},
      "glint.recurrence q(%q) k(%k) v(%v) log_decay(%a) "
      "delta(%dt) skip(%d)",
      {-1, -1, H, P});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, P}, -1, 1));
    in.inputs.push_back(randomArray(rng, {H}, -4, -0.1f));
    in.inputs.push_back(randomArray(rng, {1, L, H}, 0.001f, 0.1f));
    in.inputs.push_back(randomArray(rng, {H}, -1, 1));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveDeltaScan(L, H, 1, N, P, /*perKeyDecay=*/false, a[0].data<float>(),
                     a[1].data<float>(), a[2].data<float>(), a[3].data<float>(),
                     a[4].data<float>(), a[5].data<float>(), out);
    };
    in.work = double(L) * H * N * P;
    return in;
  };
  return c;
}

/// RetNet-like retention: H heads of K keys and V values (by default
/// K = 128, V = 256: values twice as wide as keys, as in RetNet), a
/// constant decay per head, no delta or skip.
Case retnetCase(std::string name, int64_t H, int64_t K = 128, int64_t V = 256) {
  Case c;
  c.name = std::move(name);
  c.description = "RetNet-like retention (B=1, constant decay per head, "
                  "own keys per head)";
  c.unit = "updates";
  c.sizes = {{"H", H}, {"K", K}, {"V", V}};
  c.ir = oneOpModule({{-1, -1, H, K}, {-1, -1, H, K}, {-1, -1, H, V}, {H}},
                     {"q", "k", "v", "g"},
                     "glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)",
                     {-1, -1, H, V});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, H, K}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, K}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, V}, -1, 1));
    // Stronger than RetNet's own (1 - 2^-(5 + h), log-decays from -0.03 to
    // -0.0001), whose memory of thousands of steps makes two float32
    // results drift apart by more than the check's 1e-4.
    in.inputs.push_back(randomArray(rng, {H}, -0.3f, -0.03f));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveDeltaScan(L, H, H, K, V, /*perKeyDecay=*/false, a[0].data<float>(),
                     a[1].data<float>(), a[2].data<float>(), a[3].data<float>(),
                     /*delta=*/nullptr, /*skip=*/nullptr, out);
    };
    in.work = double(L) * H * K * V;
    return in;
  };
  return c;
}

/// RWKV-6 (with bonus) or GLA (without): H heads of K = V = 64, per-key
/// data-dependent decay.
Case gatedCase(bool rwkv6) {
  const int64_t H = 32, K = 64, V = 64;
  Case c;
  c.name = rwkv6 ? "rwkv6" : "gla";
  c.description = rwkv6 ? "RWKV-6 wkv (per-key data-dependent decay, bonus u)"
                        : "GLA (per-key data-dependent decay)";
  c.unit = "updates";
  c.sizes = {{"H", H}, {"K", K}, {"V", V}};
  std::vector<std::vector<int64_t>> shapes = {
      {-1, -1, H, K}, {-1, -1, H, K}, {-1, -1, H, V}, {-1, -1, H, K}};
  std::vector<std::string> names = {"q", "k", "v", "g"};
  std::string op = "glint.recurrence q(%q) k(%k) v(%v) log_decay(%g)";
  if (rwkv6) {
    shapes.push_back({H, K});
    names.push_back("u");
    op += " bonus(%u)";
  }
  c.ir = oneOpModule(shapes, names, op, {-1, -1, H, V});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, H, K}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, K}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, V}, -1, 1));
    in.inputs.push_back(randomArray(rng, {1, L, H, K}, -1, -0.01f));
    if (rwkv6)
      in.inputs.push_back(randomArray(rng, {H, K}, -1, 1));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveGatedScan(L, H, K, V, a[0].data<float>(), a[1].data<float>(),
                     a[2].data<float>(), a[3].data<float>(),
                     rwkv6 ? a[4].data<float>() : nullptr, out);
    };
    in.work = double(L) * H * K * V;
    return in;
  };
  return c;
}

Case conv1dCase() {
  const int64_t D = 1536, W = 4;
  Case c;
  c.name = "conv1d";
  c.description = "causal depthwise conv1d with bias (updates = taps)";
  c.unit = "taps";
  c.sizes = {{"D", D}, {"W", W}};
  c.ir = oneOpModule({{-1, -1, D}, {D, W}, {D}}, {"x", "w", "b"},
                     "glint.conv1d %x, %w bias %b", {-1, -1, D});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, D}, -1, 1));
    in.inputs.push_back(randomArray(rng, {D, W}, -1, 1));
    in.inputs.push_back(randomArray(rng, {D}, -1, 1));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveConv1d(L, D, W, a[0].data<float>(), a[1].data<float>(),
                  a[2].data<float>(), out);
    };
    in.work = double(L) * D * W;
    return in;
  };
  return c;
}

/// softplus(x) = max(x, 0) + log1p(e^{-|x|}) over [L, D]: Mamba's delta
/// pre-activation, one element per (step, channel), computed in its own
/// loop before the scan.
void naiveSoftplus(int64_t n, const float *x, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = std::max(x[i], 0.0f) + std::log1p(std::exp(-std::fabs(x[i])));
}

Case softplusCase() {
  const int64_t D = 1536;
  Case c;
  c.name = "softplus";
  c.description = "softplus pre-activation of Mamba-1's delta over [L, D] "
                  "(updates = elements)";
  c.unit = "elements";
  c.sizes = {{"D", D}};
  // glint.act has one type (operand = result), not a functional type.
  std::string type = tensorType({-1, -1, D});
  c.ir = llvm::formatv("module {{\n"
                       "  func.func @forward(%x: {0}) -> {0} {{\n"
                       "    %y = glint.act softplus %x : {0}\n"
                       "    return %y : {0}\n"
                       "  }\n"
                       "}\n",
                       type)
             .str();
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, D}, -6, 3));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveSoftplus(L * D, a[0].data<float>(), out);
    };
    in.work = double(L) * D;
    return in;
  };
  return c;
}

/// glint.linear with PyTorch's [N, K] weight and no bias over [L, K] rows:
///   y[m, n] = Σ_k x[m, k] w[n, k].
/// The naive loop transposes the weight (part of its time) and runs the
/// m, k, n loop nest, whose innermost loop g++ vectorises.
void naiveLinear(int64_t M, int64_t K, int64_t N, const float *x,
                 const float *w, float *y) {
  std::vector<float> wt(K * N);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      wt[k * N + n] = w[n * K + k];
  for (int64_t m = 0; m < M; ++m) {
    float *row = y + m * N;
    std::fill(row, row + N, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      float a = x[m * K + k];
      const float *b = wt.data() + k * N;
      for (int64_t n = 0; n < N; ++n)
        row[n] += a * b[n];
    }
  }
}

/// One of Mamba-130m's linear layers (d_model 768, d_inner 1536, dt_rank
/// 48, N 16, vocabulary 50280) over L rows: `in_proj`, `x_proj`, `dt_proj`,
/// `out_proj` or `lm_head`. With OpenBLAS, `library_*` fields time
/// cblas_sgemm on the same operands (its threads set to --threads).
Case matmulCase(llvm::StringRef layer) {
  static const std::map<std::string, std::pair<int64_t, int64_t>> shapes = {
      {"in_proj", {768, 3072}},
      {"x_proj", {1536, 80}},
      {"dt_proj", {48, 1536}},
      {"out_proj", {1536, 768}},
      {"lm_head", {768, 50280}}};
  auto [K, N] = shapes.at(layer.str());
  Case c;
  c.name = ("matmul-" + layer).str();
  c.description = llvm::formatv("Mamba-130m's {0}: glint.linear [L, {1}] x "
                                "[{2}, {1}]^T, no bias (updates = "
                                "multiply-adds)",
                                layer, K, N)
                      .str();
  c.unit = "updates";
  c.sizes = {{"K", K}, {"N", N}};
  c.ir = oneOpModule({{1, -1, K}, {N, K}}, {"x", "w"}, "glint.linear %x, %w",
                     {1, -1, N});
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs.push_back(randomArray(rng, {1, L, K}, -1, 1));
    in.inputs.push_back(randomArray(rng, {N, K}, -0.1f, 0.1f));
    in.naive = [=](const std::vector<rt::HostArray> &a, float *out) {
      naiveLinear(L, K, N, a[0].data<float>(), a[1].data<float>(), out);
    };
#ifdef GLINT_BENCH_HAVE_OPENBLAS
    in.library = [=](const std::vector<rt::HostArray> &a, float *out) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, N, K, 1.0f,
                  a[0].data<float>(), K, a[1].data<float>(), K, 0.0f, out, N);
    };
#endif
    in.work = double(L) * K * N;
    return in;
  };
  c.annotate = [](json::Object &line, double seconds, int64_t L) {
    const json::Value *work = line.get("work");
    if (work && work->getAsNumber())
      line["gflops"] = 2 * *work->getAsNumber() / seconds * 1e-9;
  };
  return c;
}

/// The whole forward pass of a bundled model on random token ids; its
/// `limit` (vocabulary) is filled in once the model is loaded.
Case modelCase(std::string dir) {
  Case c;
  c.name = "model";
  c.dir = dir;
  c.description = "whole-model forward of " +
                  llvm::sys::path::filename(dir).str() +
                  " (no naive loop: ratio_vs_naive is null; correct = finite "
                  "logits)";
  c.unit = "tokens";
  return c;
}

/// A whole model of Mamba-130m's shape (state-spaces/mamba-130m-hf: 24
/// layers, d_model 768, d_inner 1536, N 16, conv 4, dt_rank 48, vocabulary
/// 50280, tied head) with random weights, written as a checkpoint
/// (writeMamba130m, from loadCaseModule) to a temporary directory or
/// --mamba-130m-dir (0.5 GB of float32).
Case mamba130mCase() {
  Case c;
  c.name = "mamba-130m";
  c.description = "whole-model forward of a Mamba-130m-shaped model with "
                  "random weights (no naive loop: ratio_vs_naive is null; "
                  "correct = finite logits)";
  c.unit = "tokens";
  return c;
}

/// The tensors of a checkpoint to write, in order: (name, shape).
struct TensorShapes
    : std::vector<std::pair<std::string, std::vector<int64_t>>> {
  void add(std::string name, std::vector<int64_t> shape) {
    push_back({std::move(name), std::move(shape)});
  }
};

/// Writes a checkpoint into `dir`: `config` as config.json, and
/// model.safetensors with one f32 tensor per (name, shape) of `shapes`, its
/// values set by `fill(name, shape, values)`.
llvm::Error writeRandomCheckpoint(
    llvm::StringRef dir, json::Object config, const TensorShapes &shapes,
    llvm::function_ref<void(llvm::StringRef, llvm::ArrayRef<int64_t>,
                            std::vector<float> &)>
        fill) {
  if (llvm::Error e = rt::writeFileAtomically(
          dir.str() + "/config.json", [&](llvm::raw_ostream &os) {
            os << json::Value(std::move(config)) << "\n";
          }))
    return e;
  std::vector<std::vector<float>> data(shapes.size());
  for (auto [i, entry] : llvm::enumerate(shapes)) {
    const auto &[name, shape] = entry;
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    data[i].resize(n);
    fill(name, shape, data[i]);
  }
  std::vector<rt::F32Tensor> tensors;
  for (auto [i, entry] : llvm::enumerate(shapes))
    tensors.push_back({entry.first, entry.second, data[i]});
  return rt::writeSafetensors(dir.str() + "/model.safetensors", tensors,
                              {{"format", "pt"}});
}

/// Writes the mamba-130m case's checkpoint (config.json and
/// model.safetensors) into `dir`. Weights follow the reference
/// implementation's initialisation closely enough to keep activations in
/// range: A = -[1..N], D = 1, Δ's bias giving softplus(bias) in [1e-3, 0.1],
/// linear weights uniform with the fan-in's scale.
llvm::Error writeMamba130m(llvm::StringRef dir, std::mt19937 &rng) {
  const int64_t layers = 24, hidden = 768, inner = 1536, state = 16, width = 4,
                rank = 48, vocab = 50280;
  json::Object config{{"architectures", json::Array{"MambaForCausalLM"}},
                      {"model_type", "mamba"},
                      {"vocab_size", vocab},
                      {"hidden_size", hidden},
                      {"intermediate_size", inner},
                      {"num_hidden_layers", layers},
                      {"state_size", state},
                      {"conv_kernel", width},
                      {"time_step_rank", rank},
                      {"layer_norm_epsilon", 1e-5},
                      {"hidden_act", "silu"},
                      {"use_bias", false},
                      {"use_conv_bias", true},
                      {"tie_word_embeddings", true}};
  TensorShapes shapes;
  shapes.add("backbone.embeddings.weight", {vocab, hidden});
  for (int64_t l = 0; l < layers; ++l) {
    std::string p = "backbone.layers." + std::to_string(l) + ".";
    shapes.add(p + "norm.weight", {hidden});
    shapes.add(p + "mixer.in_proj.weight", {2 * inner, hidden});
    shapes.add(p + "mixer.conv1d.weight", {inner, 1, width});
    shapes.add(p + "mixer.conv1d.bias", {inner});
    shapes.add(p + "mixer.x_proj.weight", {rank + 2 * state, inner});
    shapes.add(p + "mixer.dt_proj.weight", {inner, rank});
    shapes.add(p + "mixer.dt_proj.bias", {inner});
    shapes.add(p + "mixer.A_log", {inner, state});
    shapes.add(p + "mixer.D", {inner});
    shapes.add(p + "mixer.out_proj.weight", {hidden, inner});
  }
  shapes.add("backbone.norm_f.weight", {hidden});
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  return writeRandomCheckpoint(
      dir, std::move(config), shapes,
      [&](llvm::StringRef key, llvm::ArrayRef<int64_t> shape,
          std::vector<float> &v) {
        if (key.ends_with("norm.weight") || key.ends_with("norm_f.weight") ||
            key.ends_with(".D")) {
          std::fill(v.begin(), v.end(), 1.0f);
        } else if (key.ends_with("A_log")) {
          for (size_t j = 0; j < v.size(); ++j)
            v[j] = std::log(float(j % state + 1));
        } else if (key.ends_with("dt_proj.bias")) {
          // softplus⁻¹ of Δ log-uniform in [1e-3, 0.1].
          std::uniform_real_distribution<float> logDt(std::log(1e-3f),
                                                      std::log(0.1f));
          for (float &x : v) {
            float dt = std::exp(logDt(rng));
            x = dt + std::log(-std::expm1(-dt));
          }
        } else {
          // Uniform with variance 1 / fan-in (the embedding: 0.02-ish).
          float scale = key.ends_with("embeddings.weight")
                            ? 0.035f
                            : std::sqrt(3.0f / float(shape.back()));
          for (float &x : v)
            x = scale * unit(rng);
        }
      });
}

/// A whole RWKV-6 model of 12 layers × 768 (head size 64, 12 heads, dim_ffn
/// 2688 = 3.5 × 768, token-shift LoRA 32, decay LoRA 64, vocabulary 65536:
/// the shape of RWKV's 0.1B-class models) with random weights, written as a
/// checkpoint (writeRwkv6Small, from loadCaseModule) to a temporary
/// directory or --rwkv6-12x768-dir (0.8 GB of float32).
Case rwkv6SmallCase() {
  Case c;
  c.name = "rwkv6-12x768";
  c.description = "whole-model forward of a 12-layer, 768-wide RWKV-6 with "
                  "random weights (no naive loop: ratio_vs_naive is null; "
                  "correct = finite logits)";
  c.unit = "tokens";
  return c;
}

/// Writes the rwkv6-12x768 case's checkpoint into `dir`, initialised after
/// the reference implementation's scheme closely enough to keep activations
/// in range: the token-shift mixes in [0, 1), decay speeds from -6 to -1
/// across the channels (ratio-shaped), bonus in [0, 1), the LoRAs small,
/// norms at one and zero, linear weights uniform with the fan-in's scale.
llvm::Error writeRwkv6Small(llvm::StringRef dir, std::mt19937 &rng) {
  const int64_t layers = 12, embd = 768, ffn = 2688, headSize = 64,
                heads = embd / headSize, mixRank = 32, decayRank = 64,
                vocab = 65536;
  json::Object config{{"architecture", "RWKV_x060"},
                      {"model_type", "rwkv6"},
                      {"n_layer", layers},
                      {"n_embd", embd},
                      {"dim_att", embd},
                      {"dim_ffn", ffn},
                      {"head_size_a", headSize},
                      {"n_head", heads},
                      {"head_size_divisor", 8},
                      {"D_MIX_LORA", mixRank},
                      {"D_DECAY_LORA", decayRank},
                      {"vocab_size", vocab},
                      {"layer_norm_eps", 1e-5},
                      {"ln_x_eps", 64e-5},
                      {"tie_word_embeddings", false}};
  TensorShapes shapes;
  shapes.add("emb.weight", {vocab, embd});
  for (int64_t l = 0; l < layers; ++l) {
    std::string p = "blocks." + std::to_string(l) + ".";
    if (l == 0) {
      shapes.add(p + "ln0.weight", {embd});
      shapes.add(p + "ln0.bias", {embd});
    }
    for (const char *norm : {"ln1", "ln2", "att.ln_x"}) {
      shapes.add(p + norm + ".weight", {embd});
      shapes.add(p + norm + ".bias", {embd});
    }
    for (const char *mix : {"x", "w", "k", "v", "r", "g"})
      shapes.add(p + "att.time_maa_" + mix, {1, 1, embd});
    shapes.add(p + "att.time_maa_w1", {embd, 5 * mixRank});
    shapes.add(p + "att.time_maa_w2", {5, mixRank, embd});
    shapes.add(p + "att.time_decay", {1, 1, embd});
    shapes.add(p + "att.time_decay_w1", {embd, decayRank});
    shapes.add(p + "att.time_decay_w2", {decayRank, embd});
    shapes.add(p + "att.time_faaaa", {heads, headSize});
    for (const char *proj : {"receptance", "key", "value", "gate", "output"})
      shapes.add(p + "att." + proj + ".weight", {embd, embd});
    shapes.add(p + "ffn.time_maa_k", {1, 1, embd});
    shapes.add(p + "ffn.time_maa_r", {1, 1, embd});
    shapes.add(p + "ffn.key.weight", {ffn, embd});
    shapes.add(p + "ffn.receptance.weight", {embd, embd});
    shapes.add(p + "ffn.value.weight", {embd, ffn});
  }
  shapes.add("ln_out.weight", {embd});
  shapes.add("ln_out.bias", {embd});
  shapes.add("head.weight", {vocab, embd});
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), fraction(0, 1);
  return writeRandomCheckpoint(
      dir, std::move(config), shapes,
      [&](llvm::StringRef key, llvm::ArrayRef<int64_t> shape,
          std::vector<float> &v) {
        if (key.ends_with(".weight") && shape.size() == 1) {
          std::fill(v.begin(), v.end(), 1.0f); // norms' gains
        } else if (key.ends_with(".bias")) {
          std::fill(v.begin(), v.end(), 0.0f);
        } else if (key.ends_with("_w1") || key.ends_with("_w2")) {
          for (float &x : v)
            x = 0.01f * unit(rng); // the LoRAs' factors
        } else if (key.contains("time_maa_") || key.contains("time_faaaa")) {
          for (float &x : v)
            x = fraction(rng);
        } else if (key.ends_with("time_decay")) {
          for (size_t j = 0; j < v.size(); ++j)
            v[j] = -6.0f + 5.0f * std::pow(float(j) / float(v.size() - 1),
                                           0.7f + 1.3f * fraction(rng));
        } else {
          float scale = key == "emb.weight"
                            ? 0.035f
                            : std::sqrt(3.0f / float(shape.back()));
          for (float &x : v)
            x = scale * unit(rng);
        }
      });
}

//===----------------------------------------------------------------------===//
// Timing
//===----------------------------------------------------------------------===//

/// Calls the compiled entry point directly on `inputs` and `weights`: the
/// same descriptors CompiledModel::run builds, without its checks and
/// result copy. The result buffer the callee allocates is released to its
/// allocator (glint_free), as the runtime does.
class DirectCall {
public:
  DirectCall(void (*entry)(void **), void (*release)(void *),
             const std::vector<rt::HostArray> &inputs, int64_t resultRank)
      : entry(entry), release(release), result(3 + 2 * resultRank, 0) {
    for (const rt::HostArray &a : inputs) {
      int64_t rank = a.shape.size();
      std::vector<int64_t> words(3 + 2 * rank);
      auto pointer = reinterpret_cast<int64_t>(a.bytes.data());
      words[0] = words[1] = pointer;
      int64_t stride = 1;
      for (int64_t i = rank - 1; i >= 0; --i) {
        words[3 + i] = a.shape[i];
        words[3 + rank + i] = stride;
        stride *= a.shape[i];
      }
      descriptors.push_back(std::move(words));
    }
  }
  void operator()() {
    std::vector<void *> args;
    args.push_back(result.data());
    for (auto &d : descriptors)
      args.push_back(d.data());
    entry(args.data());
    release(reinterpret_cast<void *>(result[0]));
  }

private:
  void (*entry)(void **);
  void (*release)(void *);
  std::vector<int64_t> result;
  std::vector<std::vector<int64_t>> descriptors;
};

struct Timing {
  double min = 0, median = 0;
  /// Process CPU time over wall time across the timed repetitions.
  double cpuPerWall = 0;
  /// Calls per timed repetition (seconds are per call).
  int64_t calls = 1;
};

/// One repetition should last at least this long, so that short kernels
/// are not timed at the clock's resolution.
static constexpr double kMinRepetitionSeconds = 0.01;

/// CPU time of every thread of this process so far.
double processCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/// Times `fn`: one untimed call to warm caches and pick how many calls a
/// repetition makes, then `reps` repetitions; min and median per call.
Timing timeIt(unsigned reps, const std::function<void()> &fn) {
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  fn();
  double once = std::chrono::duration<double>(Clock::now() - start).count();
  Timing t;
  if (once < kMinRepetitionSeconds)
    t.calls = static_cast<int64_t>(
        std::ceil(kMinRepetitionSeconds / std::max(once, 1e-7)));
  std::vector<double> seconds;
  double cpuStart = processCpuSeconds();
  auto wallStart = Clock::now();
  for (unsigned i = 0; i < reps; ++i) {
    start = Clock::now();
    for (int64_t j = 0; j < t.calls; ++j)
      fn();
    seconds.push_back(
        std::chrono::duration<double>(Clock::now() - start).count() / t.calls);
  }
  t.cpuPerWall =
      (processCpuSeconds() - cpuStart) /
      std::chrono::duration<double>(Clock::now() - wallStart).count();
  std::sort(seconds.begin(), seconds.end());
  t.min = seconds.front();
  size_t n = seconds.size();
  t.median =
      n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  return t;
}

/// ‖a − b‖∞ / ‖b‖∞ over float32 arrays; infinity on a NaN.
double maxRelativeError(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d))
      return INFINITY;
    num = std::max(num, d);
    den = std::max(den, std::fabs(double(b[i])));
  }
  return num / std::max(den, 1e-30);
}

/// What the cases compile for: the host, at --threads.
static TargetOptions benchTarget;

/// Compiles `module` to a temporary library at `path` (the caller removes
/// it) and loads it.
llvm::Expected<std::unique_ptr<rt::CompiledModel>>
compileAndLoad(ModuleOp module, RecurrenceForm recurrenceForm,
               llvm::SmallString<128> &path, double &compileSeconds,
               bool gradient = false, bool step = false,
               llvm::StringRef weightType = "f32", bool prepared = true) {
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("glint-bench", "so", path))
    return llvm::createStringError(ec, "cannot create a temporary file");
  auto start = std::chrono::steady_clock::now();
  // Only --decode times the step entry; the other cases leave it out (half
  // the compile time).
  LoopsOptions loops;
  loops.recurrenceForm = recurrenceForm;
  loops.chunkSize = chunkSize;
  loops.weightType = weightType.str();
  loops.prepareWeights = prepared;
  if (llvm::Error e = compiler::compileToLibrary(
          module, "forward", path,
          step ? compiler::StepMode::On : compiler::StepMode::Off,
          /*attention=*/{}, loops, benchTarget, gradient))
    return std::move(e);
  compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return rt::CompiledModel::load(path);
}

/// The attention form of one Mamba-1 layer (glint-to-attention's, after
/// Zimerman, Ali & Wolf, ICLR 2025): conv → SiLU → selective scan with Δ
/// and D → SiLU(z) gate, reduced to the channel mean; with `attribution`,
/// the attribution method's map instead (the channel mean of the positive
/// part of A ⊙ (g xᵀ), %gr the layer output's cotangent, a last argument).
std::string attnMapMamba1Module(int64_t E, int64_t N, int64_t W,
                                bool attribution = false) {
  std::string v = llvm::formatv("tensor<?x?x{0}xf32>", E).str();
  std::string v4 = llvm::formatv("tensor<?x?x{0}x1xf32>", E).str();
  std::string m = "!glint.map<" + v + ">", m4 = "!glint.map<" + v4 + ">";
  std::string bc = llvm::formatv("tensor<?x?x1x{0}xf32>", N).str();
  std::string a = llvm::formatv("tensor<{0}x{1}xf32>", E, N).str();
  std::string w = llvm::formatv("tensor<{0}x{1}xf32>", E, W).str();
  std::string d = llvm::formatv("tensor<{0}xf32>", E).str();
  return llvm::formatv(
             "module {{\n"
             "  func.func @forward(%x: {0}, %w: {6}, %xc: {0}, %q: {4}, "
             "%k: {4}, %a: {5}, %dt: {0}, %d: {7}, %z: {0}{8}) -> "
             "tensor<?x?x?xf32> {{\n"
             "    %m0 = glint.map_identity %x : {0} -> {2}\n"
             "    %m1 = glint.map_conv %m0, %w : ({2}, {6}) -> {2}\n"
             "    %g = glint.act_gain silu %xc : {0}\n"
             "    %m2 = glint.map_scale %m1, %g : ({2}, {0}) -> {2}\n"
             "    %m3 = glint.map_reshape %m2 : {2} -> {3}\n"
             "    %m4 = glint.map_scan %m3 q(%q) k(%k) log_decay(%a) "
             "delta(%dt) skip(%d) : ({3}, {4}, {4}, {5}, {0}, {7}) -> {3}\n"
             "    %m5 = glint.map_reshape %m4 : {3} -> {2}\n"
             "    %sz = glint.act silu %z : {0}\n"
             "    %m6 = glint.map_scale %m5, %sz : ({2}, {0}) -> {2}\n"
             "    %r = {9}\n"
             "    return %r : tensor<?x?x?xf32>\n"
             "  }\n"
             "}\n",
             v, v4, m, m4, bc, a, w, d, attribution ? ", %gr: " + v : "",
             attribution
                 ? "glint.map_attribution %m6, %gr, %x : (" + m + ", " + v +
                       ", " + v + ") -> tensor<?x?x?xf32>"
                 : "glint.map_reduce mean %m6 : " + m + " -> tensor<?x?x?xf32>")
      .str();
}

/// Random controls of the Mamba-1 layer map, in the module's argument order.
std::vector<rt::HostArray> attnMapMamba1Inputs(std::mt19937 &rng, int64_t E,
                                               int64_t N, int64_t W, int64_t L,
                                               bool attribution = false) {
  std::vector<rt::HostArray> in;
  in.push_back(randomArray(rng, {1, L, E}, -1, 1));        // x
  in.push_back(randomArray(rng, {E, W}, -0.5f, 0.5f));     // conv weight
  in.push_back(randomArray(rng, {1, L, E}, -2, 2));        // conv output
  in.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));     // C
  in.push_back(randomArray(rng, {1, L, 1, N}, -1, 1));     // B
  in.push_back(randomArray(rng, {E, N}, -4, -0.1f));       // A
  in.push_back(randomArray(rng, {1, L, E}, 0.001f, 0.1f)); // Δ
  in.push_back(randomArray(rng, {E}, -1, 1));              // D
  in.push_back(randomArray(rng, {1, L, E}, -2, 2));        // z
  if (attribution)
    in.push_back(randomArray(rng, {1, L, E}, -1, 1)); // cotangent
  return in;
}

#if defined(__AVX512F__)
/// The sum of a vector's lanes (through memory: GCC 12 warns about its own
/// _mm512_reduce_add_ps).
static float sumLanes(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0;
  for (float lane : lanes)
    sum += lane;
  return sum;
}
#endif

/// Measured fp32 FMA throughput of one core (multiply-adds per second):
/// 12 independent 512-bit FMA chains, enough to cover the latency.
double measureFmaPeak() {
#if defined(__AVX512F__)
  __m512 acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 mul = _mm512_set1_ps(0.9999f), add = _mm512_set1_ps(1e-4f);
  const int64_t iterations = 20000000;
  auto start = std::chrono::steady_clock::now();
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  float sink = 0;
  for (int i = 0; i < 12; ++i)
    sink += sumLanes(acc[i]);
  volatile float keep = sink;
  (void)keep;
  return double(iterations) * 12 * 16 / seconds;
#else
  return 0;
#endif
}

/// attn-map-mamba1, or with `attribution` attn-attribution-mamba1.
Case attnMapMamba1Case(bool attribution = false) {
  const int64_t E = 1536, N = 16, W = 4;
  Case c;
  c.name = attribution ? "attn-attribution-mamba1" : "attn-map-mamba1";
  c.description =
      attribution
          ? "attention form: the attribution method's map of one Mamba-1 "
            "layer (channel mean of the positive part of A * g x^T, taken "
            "per channel), never materialising a channel's matrix"
          : "attention form: channel-mean map of one Mamba-1 layer "
            "(conv, SiLU, scan with delta and D, SiLU(z) gate), never "
            "materialising a channel's matrix";
  c.unit = "fmas";
  c.sizes = {{"E", E}, {"N", N}, {"W", W}};
  c.ir = attnMapMamba1Module(E, N, W, attribution);
  c.make = [=](std::mt19937 &rng, int64_t L) {
    Instance in;
    in.inputs = attnMapMamba1Inputs(rng, E, N, W, L, attribution);
    // L²·E·N/2 multiply-adds: the closed form's work.
    in.work = double(L) * L * E * N / 2;
    return in;
  };
  c.annotate = [](json::Object &line, double seconds, int64_t L) {
    static double peak = measureFmaPeak();
    double work = double(L) * L * E * N / 2;
    line["fma_peak_per_s_measured"] = peak;
    line["fma_bound_seconds"] = peak > 0 ? work / peak : 0.0;
    line["fma_bound_fraction"] = peak > 0 ? (work / seconds) / peak : 0.0;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    line["peak_rss_mib"] = double(usage.ru_maxrss) / 1024.0;
    line["channel_matrices_mib"] = double(E) * L * L * 4 / (1024.0 * 1024.0);
  };
  c.referenceCheck = [=](MLIRContext &context,
                         std::mt19937 &rng) -> llvm::Expected<double> {
    const int64_t e = 24, n = 16, w = 4, l = 200;
    auto module = parseSourceString<ModuleOp>(
        attnMapMamba1Module(e, n, w, attribution), &context);
    if (!module)
      return llvm::createStringError("the small module does not parse");
    OwningOpRef<ModuleOp> copy = module->clone();
    std::vector<rt::HostArray> inputs =
        attnMapMamba1Inputs(rng, e, n, w, l, attribution);
    std::vector<reference::Array> args;
    for (const rt::HostArray &a : inputs) {
      reference::Array r(a.shape);
      for (int64_t i = 0; i < a.numElements(); ++i)
        r.data[i] = a.data<float>()[i];
      args.push_back(std::move(r));
    }
    reference::ReferenceEvaluator evaluator(*copy, reference::noWeights());
    auto expected = evaluator.run("forward", args);
    if (!expected)
      return expected.takeError();
    llvm::SmallString<128> path;
    double compileSeconds = 0;
    auto model =
        compileAndLoad(*module, RecurrenceForm::Auto, path, compileSeconds);
    llvm::FileRemover removeLibrary(path);
    if (!model)
      return model.takeError();
    auto got = (*model)->run(inputs);
    if (!got)
      return got.takeError();
    const reference::Array &want = (*expected)[0];
    if (got->numElements() != want.numElements())
      return llvm::createStringError("the compiled map has the wrong size");
    double num = 0, den = 0;
    for (int64_t i = 0; i < want.numElements(); ++i) {
      double d = double(got->data<float>()[i]) - want.data[i];
      num += d * d;
      den += want.data[i] * want.data[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
  };
  return c;
}

/// One compiled form of a case, loaded.
struct CompiledForm {
  std::string form;
  /// The weights' type in memory (--weight-dtype).
  std::string weightType = "f32";
  /// Whether the products' weights are prepared panels (--prepare-weights).
  bool prepared = true;
  llvm::SmallString<128> path;
  std::unique_ptr<rt::CompiledModel> model;
  void *handle = nullptr;
  void (*entry)(void **) = nullptr;
  double compileSeconds = 0;

  CompiledForm() = default;
  CompiledForm(const CompiledForm &) = delete;
  ~CompiledForm() {
    if (handle)
      dlclose(handle);
    if (!path.empty() && !keepLibraries)
      llvm::sys::fs::remove(path);
    else if (!path.empty())
      llvm::errs() << "glint-bench: kept " << path << "\n";
  }
};

/// The module of case `c` and, for the whole-model cases, the checkpoint of
/// its weights: the case's IR, or the import of the model's checkpoint
/// (mamba-130m's or rwkv6-12x768's written first, into --mamba-130m-dir /
/// --rwkv6-12x768-dir or a temporary
/// directory left in `generatedDir` for the caller to remove), whose
/// config.json sizes are added to c.sizes. Null after an error is reported.
OwningOpRef<ModuleOp>
loadCaseModule(MLIRContext &context, Case &c, bool wholeModel,
               std::mt19937 &rng, llvm::SmallString<128> &generatedDir,
               std::unique_ptr<rt::Checkpoint> &checkpoint) {
  OwningOpRef<ModuleOp> module;
  std::string checkpointDir = c.dir;
  // The cases of random checkpoints: their directory option and writer.
  std::string keptDir;
  llvm::Error (*write)(llvm::StringRef, std::mt19937 &) = nullptr;
  if (c.name == "mamba-130m") {
    keptDir = mamba130mDir;
    write = writeMamba130m;
  } else if (c.name == "rwkv6-12x768") {
    keptDir = rwkv6SmallDir;
    write = writeRwkv6Small;
  }
  if (write) {
    if (!keptDir.empty()) {
      checkpointDir = keptDir;
      if (std::error_code ec =
              llvm::sys::fs::create_directories(checkpointDir)) {
        error(c.name + ": cannot create '" + checkpointDir +
              "': " + ec.message());
        return nullptr;
      }
    } else {
      if (std::error_code ec = llvm::sys::fs::createUniqueDirectory(
              "glint-bench-" + c.name, generatedDir)) {
        error(c.name +
              ": cannot create a temporary directory: " + ec.message());
        return nullptr;
      }
      checkpointDir = generatedDir.str().str();
    }
    if (!llvm::sys::fs::exists(checkpointDir + "/model.safetensors"))
      if (llvm::Error e = write(checkpointDir, rng)) {
        error(c.name + ": " + llvm::toString(std::move(e)));
        return nullptr;
      }
  }
  if (wholeModel) {
    auto opened = rt::Checkpoint::open(checkpointDir);
    if (!opened) {
      error("model: " + llvm::toString(opened.takeError()));
      return nullptr;
    }
    checkpoint = std::move(*opened);
    auto imported =
        import::importCheckpoint(&context, checkpointDir, *checkpoint);
    if (!imported) {
      error("model: " + llvm::toString(imported.takeError()));
      return nullptr;
    }
    module = std::move(*imported);
    // Report the model's shape from its config.json.
    if (auto buffer =
            llvm::MemoryBuffer::getFile(checkpointDir + "/config.json")) {
      if (auto config = json::parse((*buffer)->getBuffer())) {
        if (const json::Object *o = config->getAsObject())
          for (auto [key, field] :
               {std::pair{"layers", "num_hidden_layers"},
                std::pair{"d_model", "hidden_size"},
                std::pair{"d_inner", "intermediate_size"},
                std::pair{"N", "state_size"}, std::pair{"vocab", "vocab_size"},
                // RWKV's names.
                std::pair{"layers", "n_layer"}, std::pair{"d_model", "n_embd"},
                std::pair{"d_ffn", "dim_ffn"},
                std::pair{"head_size", "head_size_a"}})
            if (std::optional<int64_t> v = o->getInteger(field))
              c.sizes.push_back({key, *v});
      } else {
        llvm::consumeError(config.takeError());
      }
    }
  } else {
    module = parseSourceString<ModuleOp>(c.ir, &context);
    if (!module) {
      error(c.name + ": the generated IR does not parse:\n" + c.ir);
      return nullptr;
    }
  }
  return module;
}

/// The table's form column: the recurrence form, and the weights' type
/// when it is not f32, and "packed" for weights packed on every call.
std::string formLabel(const CompiledForm &one) {
  std::string label =
      one.weightType == "f32" ? one.form : one.form + "/" + one.weightType;
  return one.prepared ? label : label + "/packed";
}

/// Compiles `module` once per form and --weight-dtype (each its own copy:
/// lowering rewrites the module), loads each library, binds the
/// checkpoint's weights (whole-model cases) and finds its entry point.
/// False after an error is reported.
bool compileForms(const Case &c, ModuleOp module,
                  llvm::ArrayRef<std::string> forms,
                  const rt::Checkpoint *checkpoint,
                  std::vector<std::unique_ptr<CompiledForm>> &compiled) {
  // Op cases have no weights to narrow: one type.
  std::vector<std::string> types(weightDtypes.begin(), weightDtypes.end());
  if (types.empty() || !checkpoint)
    types = {"f32"};
  std::vector<bool> preparations;
  for (const std::string &p : prepareWeightsOpt)
    preparations.push_back(p == "on");
  if (preparations.empty() || !checkpoint)
    preparations = {true};
  for (const std::string &f : forms)
    for (const std::string &type : types)
      for (bool prepared : preparations) {
        auto one = std::make_unique<CompiledForm>();
        one->form = f;
        one->weightType = type;
        one->prepared = prepared;
        OwningOpRef<ModuleOp> copy = module.clone();
        auto model = compileAndLoad(
            *copy, *parseRecurrenceForm(f), one->path, one->compileSeconds,
            /*gradient=*/gradientMode && checkpoint,
            /*step=*/decodeMode && checkpoint, type, prepared);
        if (!model) {
          error(c.name + ": " + llvm::toString(model.takeError()));
          return false;
        }
        one->model = std::move(*model);
        if (llvm::Error e = checkpoint ? one->model->bindWeights(*checkpoint)
                                       : llvm::Error::success()) {
          error(c.name + ": " + llvm::toString(std::move(e)));
          return false;
        }
        // Op cases have no weights: run() only checks that as many are bound as
        // the model names (zero), so they need no checkpoint.
        const rt::ModelInfo &info = one->model->info();
        one->handle = dlopen(one->path.c_str(), RTLD_NOW | RTLD_LOCAL);
        one->entry = one->handle ? reinterpret_cast<void (*)(void **)>(
                                       dlsym(one->handle, info.entry.c_str()))
                                 : nullptr;
        if (!one->entry) {
          error(c.name + ": cannot find " + info.entry + " in the library");
          return false;
        }
        // (--gradient takes any inputs: it makes them from the record.)
        if (checkpoint && !gradientMode &&
            (info.inputs.size() != 1 || info.inputs[0].dtype != "i64" ||
             info.inputs[0].rank() != 2)) {
          error(c.name + ": the model case takes a model of token ids [B, L]");
          return false;
        }
        compiled.push_back(std::move(one));
      }
  return true;
}

/// A whole-model case (--gradient, --decode) loaded and compiled once per
/// form: its checkpoint, module and libraries. A checkpoint written for the
/// case (mamba-130m without --mamba-130m-dir) is removed with it.
struct CompiledWholeModel {
  std::unique_ptr<rt::Checkpoint> checkpoint;
  llvm::SmallString<128> generatedDir;
  OwningOpRef<ModuleOp> module;
  std::vector<std::unique_ptr<CompiledForm>> compiled;

  CompiledWholeModel() = default;
  CompiledWholeModel(const CompiledWholeModel &) = delete;
  ~CompiledWholeModel() {
    if (!generatedDir.empty())
      llvm::sys::fs::remove_directories(generatedDir);
  }
};

/// Fills `whole` for case `c`; false after an error is reported.
bool compileWholeModel(MLIRContext &context, Case &c,
                       llvm::ArrayRef<std::string> forms, std::mt19937 &rng,
                       CompiledWholeModel &whole) {
  whole.module = loadCaseModule(context, c, /*wholeModel=*/true, rng,
                                whole.generatedDir, whole.checkpoint);
  return whole.module && compileForms(c, *whole.module, forms,
                                      whole.checkpoint.get(), whole.compiled);
}

/// The fields every line of a whole-model mode (--gradient, --decode)
/// starts with: the case, the mode and what it times, the model, threads,
/// form, weight type, CPU use, batch and the model's sizes.
json::Object wholeModelLine(const Case &c, const CompiledForm &one,
                            llvm::StringRef mode, llvm::StringRef description,
                            int64_t threadsUsed, double cpuPerWall) {
  json::Object line;
  line["case"] = c.name;
  line["mode"] = mode;
  line["description"] = description;
  if (!c.dir.empty())
    line["model"] = llvm::sys::path::filename(c.dir).str();
  line["threads"] = threadsUsed;
  line["form"] = one.form;
  line["weight_dtype"] = one.weightType;
  line["prepared_weights"] = one.prepared;
  line["cpu_per_wall"] = cpuPerWall;
  line["B"] = 1;
  for (auto &[key, value] : c.sizes)
    line[key] = value;
  return line;
}

/// The inputs of case `c` at length L: random token ids [1, L] for a whole
/// model (its interface is `info`), else the case's own.
Instance makeInstance(Case &c, bool wholeModel, const rt::ModelInfo &info,
                      std::mt19937 &rng, int64_t L) {
  Instance in;
  currentInstance = llvm::formatv("{0} L={1}", c.name, L).str();
  if (wholeModel) {
    refuseHugeInput({1, L}, sizeof(int64_t));
    rt::HostArray ids = rt::HostArray::make({1, L}, "i64");
    std::uniform_int_distribution<int64_t> token(
        0, std::max<int64_t>(info.inputs[0].limit, 1) - 1);
    for (int64_t i = 0; i < L; ++i)
      ids.data<int64_t>()[i] = token(rng);
    in.inputs.push_back(std::move(ids));
    in.work = double(L);
  } else {
    in = c.make(rng, L);
  }
  return in;
}

/// Checks a compiled result against the naive loop's (computed into
/// `expected` on first use) or, without a naive loop, that it is finite;
/// reports a failure. Returns whether it is correct, and the relative error
/// against the naive loop when there is one.
std::pair<bool, std::optional<double>>
checkResult(const Case &c, const CompiledForm &one, int64_t L,
            const Instance &in, const rt::HostArray &result,
            std::vector<float> &expected) {
  std::optional<double> relError;
  if (in.naive) {
    if (expected.empty()) {
      expected.assign(result.numElements(), 0.0f);
      in.naive(in.inputs, expected.data());
    }
    relError = maxRelativeError(result.data<float>(), expected.data(),
                                result.numElements());
  }
  // Without a naive loop (the model case) only check that the result is
  // finite.
  bool correct = relError
                     ? *relError <= kTolerance
                     : llvm::all_of(llvm::ArrayRef<float>(result.data<float>(),
                                                          result.numElements()),
                                    [](float x) { return std::isfinite(x); });
  if (!relError && !correct)
    error(llvm::formatv("{0} L={1}: FAILED: the result is not finite", c.name,
                        L));
  if (relError && !correct)
    error(llvm::formatv("{0} L={1} form={2}: FAILED: compiled result "
                        "differs from the naive loop by {3:e} (relative, "
                        "max norm) > {4:e}",
                        c.name, L, one.form, *relError, kTolerance));
  return {correct, relError};
}

/// Times the compiled kernel of one form: op cases call the entry point
/// directly; the model case has weights (held inside CompiledModel), so it
/// times run(), whose input checks and logits copy are small next to a
/// forward pass.
Timing timeCompiled(CompiledForm &one, const rt::ModelInfo &info,
                    const Instance &in, unsigned reps) {
  rt::CompiledModel &model = *one.model;
  Timing timing;
  if (info.weights.empty()) {
    auto *release =
        reinterpret_cast<void (*)(void *)>(dlsym(one.handle, "glint_free"));
    DirectCall call(one.entry, release ? release : std::free, in.inputs,
                    info.results[0].rank());
    timing = timeIt(reps, call);
  } else {
    timing = timeIt(reps, [&] {
      auto again = model.run(in.inputs);
      if (!again)
        llvm::report_fatal_error(again.takeError());
    });
  }
  return timing;
}

/// One form of a case measured at one length: what its JSON line reports.
struct Measurement {
  int64_t L = 0;
  Timing timing;
  bool correct = false;
  /// The relative errors against the naive loop, the tuned library and (on
  /// a smaller instance) the reference evaluator, where measured.
  std::optional<double> relError, libraryError, referenceError;
  /// The naive loop's and the library's timings, and the naive loop's
  /// repetitions.
  std::optional<Timing> naive, library;
  unsigned naiveReps = 0;
};

/// One row of the --table summary.
struct TableRow {
  std::string name, form, L, median, rate, ratio;
  bool correct;
};
static std::vector<TableRow> tableRows;

/// Prints `line` as one JSON line with "case" first, the other keys sorted
/// (json::Value sorts them all, which put "B" and "L" first).
static void printJsonLine(json::Object line) {
  {
    json::OStream out(llvm::outs());
    out.object([&] {
      if (const json::Value *name = line.get("case"))
        out.attribute("case", *name);
      std::vector<std::string> keys;
      for (auto &entry : line)
        if (entry.first != "case")
          keys.push_back(entry.first.str());
      llvm::sort(keys);
      for (const std::string &key : keys)
        out.attribute(key, *line.get(key));
    });
  }
  llvm::outs() << "\n";
  llvm::outs().flush();
}

/// Prints the table of every line printed so far.
static void printTable() {
  std::vector<TableRow> rows = {
      {"case", "form", "L", "median", "per second", "vs naive", true}};
  rows.insert(rows.end(), tableRows.begin(), tableRows.end());
  size_t w[6] = {0, 0, 0, 0, 0, 0};
  for (const TableRow &r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.form.size());
    w[2] = std::max(w[2], r.L.size());
    w[3] = std::max(w[3], r.median.size());
    w[4] = std::max(w[4], r.rate.size());
    w[5] = std::max(w[5], r.ratio.size());
  }
  llvm::outs() << "\n";
  for (const TableRow &r : rows)
    llvm::outs() << llvm::left_justify(r.name, w[0]) << "  "
                 << llvm::left_justify(r.form, w[1]) << "  "
                 << llvm::right_justify(r.L, w[2]) << "  "
                 << llvm::right_justify(r.median, w[3]) << "  "
                 << llvm::right_justify(r.rate, w[4]) << "  "
                 << llvm::right_justify(r.ratio, w[5])
                 << (r.correct ? "" : "  WRONG") << "\n";
}

/// Prints the JSON line of one form of a case at one length.
void printLine(const Case &c, const CompiledForm &one,
               const rt::ModelInfo &info, const Instance &in, unsigned reps,
               int64_t threadsUsed, const Measurement &m) {
  json::Object line;
  line["case"] = c.name;
  line["description"] = c.description;
  line["threads"] = threadsUsed;
  line["form"] = one.form;
  if (!info.weights.empty()) {
    line["weight_dtype"] = one.weightType;
    line["prepared_weights"] = one.prepared;
  }
  if (chunkSize > 0)
    line["chunk_size"] = chunkSize.getValue();
  line["cpu_per_wall"] = m.timing.cpuPerWall;
  line["B"] = 1;
  line["L"] = m.L;
  for (auto &[key, value] : c.sizes)
    line[key] = value;
  line["repetitions"] = int64_t(reps);
  line["calls_per_repetition"] = m.timing.calls;
  line["unit"] = c.unit;
  line["work"] = in.work;
  line["seconds_min"] = m.timing.min;
  line["seconds_median"] = m.timing.median;
  line["updates_per_s"] = in.work / m.timing.median;
  line["updates_per_s_best"] = in.work / m.timing.min;
  if (c.unit != "updates")
    line[c.unit + "_per_s"] = in.work / m.timing.median;
  if (m.naive) {
    line["naive_build"] = GLINT_BENCH_NAIVE_FLAGS;
    line["naive_calls_per_repetition"] = m.naive->calls;
    line["naive_repetitions"] = int64_t(m.naiveReps);
    line["naive_threads"] = 1;
    line["naive_seconds_min"] = m.naive->min;
    line["naive_seconds_median"] = m.naive->median;
    line["naive_updates_per_s"] = in.work / m.naive->median;
    line["ratio_vs_naive"] = m.naive->median / m.timing.median;
    line["max_rel_error_vs_naive"] = *m.relError;
  } else {
    line["ratio_vs_naive"] = nullptr;
    line["max_rel_error_vs_naive"] = nullptr;
  }
  if (m.library) {
    line["library"] = GLINT_BENCH_LIBRARY;
    line["library_seconds_min"] = m.library->min;
    line["library_seconds_median"] = m.library->median;
    line["library_updates_per_s"] = in.work / m.library->median;
    // > 1: the compiled kernel is faster than the library.
    line["ratio_vs_library"] = m.library->median / m.timing.median;
    line["max_rel_error_vs_library"] = *m.libraryError;
  }
  if (m.referenceError)
    line["rel_error_vs_reference_small"] = *m.referenceError;
  if (c.annotate)
    c.annotate(line, m.timing.median, m.L);
  line["correct"] = m.correct;
  line["timed"] = info.weights.empty() ? "glint_forward" : "CompiledModel::run";
  line["compile_seconds"] = one.compileSeconds;
  tableRows.push_back(
      {c.name, formLabel(one), std::to_string(m.L),
       llvm::formatv("{0:f3} ms", 1e3 * m.timing.median).str(),
       llvm::formatv("{0:e2} {1}", in.work / m.timing.median, c.unit).str(),
       m.naive
           ? llvm::formatv("{0:f2}x", m.naive->median / m.timing.median).str()
           : "-",
       m.correct});
  printJsonLine(std::move(line));
}

//===----------------------------------------------------------------------===//
// --gradient: a whole model's gradient entry against its forward
//===----------------------------------------------------------------------===//

/// Runs `fn` and returns the most bytes the library's allocator held at
/// once during it beyond what it held before (glint_alloc_stats of
/// runtime/host/ModelAlloc.c), or nothing if the library has no counters.
std::optional<double> peakBytesDuring(void *handle,
                                      const std::function<void()> &fn) {
  auto stats = reinterpret_cast<void (*)(size_t *, size_t *, int)>(
      dlsym(handle, "glint_alloc_stats"));
  if (!stats) {
    fn();
    return std::nullopt;
  }
  size_t before = 0, peak = 0;
  stats(&before, nullptr, /*reset=*/1);
  fn();
  stats(nullptr, &peak, 0);
  return double(peak - before);
}

/// Random inputs of an entry point: dynamic dims are the batch (1, dim 0)
/// or the length L; token ids uniform in the vocabulary, floats uniform in
/// [-1, 1). With `reference`, the same values as evaluator arrays.
std::vector<rt::HostArray>
randomEntryInputs(const rt::EntryInfo &entry, int64_t L, std::mt19937 &rng,
                  std::vector<reference::Array> *reference = nullptr) {
  std::vector<rt::HostArray> inputs;
  for (const rt::TensorSpec &spec : entry.inputs) {
    std::vector<int64_t> shape = spec.shape;
    for (auto [d, size] : llvm::enumerate(shape))
      if (size < 0)
        size = d == 0 ? 1 : L;
    rt::HostArray h = rt::HostArray::make(shape, spec.dtype);
    reference::Array a(shape);
    std::uniform_int_distribution<int64_t> id(
        0, std::max<int64_t>(spec.limit, 1) - 1);
    std::uniform_real_distribution<float> x(-1.0f, 1.0f);
    for (int64_t e = 0; e < h.numElements(); ++e) {
      if (spec.dtype == "i64")
        a.data[e] = double(h.data<int64_t>()[e] = id(rng));
      else
        a.data[e] = double(h.data<float>()[e] = x(rng));
    }
    inputs.push_back(std::move(h));
    if (reference)
      reference->push_back(std::move(a));
  }
  return inputs;
}

/// ‖a − b‖₂ / ‖b‖₂ of values `a` (float32 or double) against the
/// evaluator's `b`; infinite when their sizes differ.
template <typename T>
double relativeError2(llvm::ArrayRef<T> a, llvm::ArrayRef<double> b) {
  if (a.size() != b.size())
    return INFINITY;
  double num = 0, den = 0;
  for (auto [x, y] : llvm::zip_equal(a, b)) {
    double d = double(x) - y;
    num += d * d;
    den += y * y;
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

/// ‖a − b‖₂ / ‖b‖₂ of a float32 result against the evaluator's double one.
double relativeError2(const rt::HostArray &a, const reference::Array &b) {
  return relativeError2(llvm::ArrayRef<float>(a.data<float>(), a.numElements()),
                        llvm::ArrayRef<double>(b.data));
}

bool allFinite(const rt::HostArray &a) {
  return llvm::all_of(llvm::ArrayRef<float>(a.data<float>(), a.numElements()),
                      [](float x) { return std::isfinite(x); });
}

/// What --gradient's check found.
struct GradientCheck {
  /// The largest relative error (2-norm) of the compiled results against
  /// the evaluator's.
  double error = 0;
  /// Only when `error` exceeds the tolerance: the largest relative change
  /// of the evaluator's own results (in double) when every weight is
  /// multiplied by 1 + 2^-24 u, u uniform in [-1, 1] — the input's
  /// conditioning at float32's rounding of the weights alone. A float32
  /// computation cannot be expected to be much closer than that; a defect
  /// is.
  std::optional<double> sensitivity;
};

/// How far past the sensitivity the compiled error may be: float32 rounds
/// every intermediate, not only the weights (3.0× and 4.2× on the worst
/// rwkv6-12x768 input seen, two draws of the rounding).
static constexpr double kSensitivityFactor = 10;

/// The largest relative error (2-norm) over `results` against `expected`.
double worstRelativeError(llvm::ArrayRef<reference::Array> results,
                          llvm::ArrayRef<reference::Array> expected) {
  double worst = 0;
  for (auto [got, want] : llvm::zip_equal(results, expected))
    worst = std::max(worst, relativeError2(llvm::ArrayRef<double>(got.data),
                                           llvm::ArrayRef<double>(want.data)));
  return worst;
}

/// The check of --gradient: the compiled gradient entry and the reference
/// evaluator's gradient function (glint-differentiate of `module`, the
/// model before lowering, run in double) on the same random inputs and
/// seed at length `L`; the largest relative error over the results
/// (logits, each layer's cotangent, the input embeddings'), and past the
/// tolerance the input's sensitivity to the weights' rounding.
llvm::Expected<GradientCheck> checkGradient(ModuleOp module,
                                            const rt::Checkpoint &checkpoint,
                                            rt::CompiledModel &model, int64_t L,
                                            std::mt19937 &rng) {
  OwningOpRef<ModuleOp> copy = module.clone();
  auto fn = copy->lookupSymbol<func::FuncOp>("forward");
  if (!fn || failed(differentiate(fn, "forward_grad")))
    return llvm::createStringError("glint-differentiate failed");
  std::vector<reference::Array> args;
  std::vector<rt::HostArray> inputs =
      randomEntryInputs(*model.info().gradient, L, rng, &args);
  auto outs = model.runGradient(inputs);
  if (!outs)
    return outs.takeError();
  reference::ReferenceEvaluator evaluator(*copy,
                                          reference::weightsFrom(checkpoint));
  auto expected = evaluator.run("forward_grad", args);
  if (!expected)
    return expected.takeError();
  if (expected->size() != outs->size())
    return llvm::createStringError(
        llvm::formatv("{0} compiled results, {1} from the evaluator",
                      outs->size(), expected->size()));
  GradientCheck check;
  for (size_t r = 0; r < outs->size(); ++r)
    check.error =
        std::max(check.error, relativeError2((*outs)[r], (*expected)[r]));
  if (check.error <= kTolerance)
    return check;
  reference::WeightProvider exact = reference::weightsFrom(checkpoint);
  std::mt19937 noise(rng());
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  reference::ReferenceEvaluator rounded(
      *copy,
      [&](llvm::StringRef name,
          llvm::ArrayRef<int64_t> shape) -> llvm::Expected<reference::Array> {
        auto weight = exact(name, shape);
        if (weight)
          for (double &x : weight->data)
            x *= 1 + 0x1p-24 * unit(noise);
        return weight;
      });
  auto moved = rounded.run("forward_grad", args);
  if (!moved)
    return moved.takeError();
  check.sensitivity = worstRelativeError(*moved, *expected);
  return check;
}

/// --gradient for one whole-model case: compiles the model with its
/// gradient entry, checks the gradient against the reference evaluator
/// at --gradient-check-length, then at each length checks that the
/// gradient entry's logits are the forward's and every result finite, and
/// times the forward and the gradient in interleaved rounds (so that each
/// round's ratio comes from one moment of a shared machine). Prints one
/// JSON line per form and length.
bool runGradientCase(MLIRContext &context, Case &c, llvm::ArrayRef<int64_t> Ls,
                     llvm::ArrayRef<std::string> forms, unsigned reps,
                     int64_t threadsUsed, std::mt19937 &rng) {
  CompiledWholeModel whole;
  if (!compileWholeModel(context, c, forms, rng, whole))
    return false;
  std::unique_ptr<rt::Checkpoint> &checkpoint = whole.checkpoint;
  OwningOpRef<ModuleOp> &module = whole.module;
  std::vector<std::unique_ptr<CompiledForm>> &compiled = whole.compiled;

  bool ok = true;
  for (std::unique_ptr<CompiledForm> &one : compiled) {
    rt::CompiledModel &model = *one->model;
    if (!model.hasGradient()) {
      error(c.name + ": the library has no gradient entry");
      return false;
    }
    const rt::GradientInfo &gradient = *model.info().gradient;
    auto checked =
        checkGradient(*module, *checkpoint, model, gradientCheckLength, rng);
    if (!checked) {
      error(c.name +
            ": gradient check: " + llvm::toString(checked.takeError()));
      return false;
    }
    double referenceError = checked->error;
    std::optional<double> sensitivity = checked->sensitivity;
    // Past the tolerance, an error within reach of the input's own
    // sensitivity is float32's, not the compiler's.
    bool referenceOk =
        referenceError <= kTolerance ||
        (sensitivity && referenceError <= kSensitivityFactor * *sensitivity);
    if (sensitivity)
      llvm::errs() << llvm::formatv(
          "glint-bench: {0} form={1}: the compiled gradient differs from the "
          "reference evaluator's by {2:e} at L={3}, past {4:e}; the "
          "evaluator's own gradient moves by {5:e} when the weights are "
          "rounded at float32's precision (2^-24): {6}\n",
          c.name, one->form, referenceError, gradientCheckLength.getValue(),
          kTolerance, *sensitivity,
          referenceOk
              ? "an ill-conditioned input, accepted (within " +
                    std::to_string(int(kSensitivityFactor)) + "x of that)"
              : std::string("more than float32 explains"));
    if (!referenceOk) {
      error(llvm::formatv("{0} form={1}: FAILED: the compiled gradient "
                          "differs from the reference evaluator's by {2:e} "
                          "(relative, 2-norm) at L={3}",
                          c.name, one->form, referenceError,
                          gradientCheckLength.getValue()));
      ok = false;
    }
    // A model whose inputs have a fixed size past the batch (an image) is
    // measured once.
    bool sized = llvm::any_of(gradient.inputs, [](const rt::TensorSpec &s) {
      return llvm::any_of(llvm::drop_begin(s.shape),
                          [](int64_t d) { return d < 0; });
    });
    for (int64_t L : sized ? Ls : Ls.take_front()) {
      std::vector<rt::HostArray> gradInputs =
          randomEntryInputs(gradient, L, rng);
      std::vector<rt::HostArray> inputs;
      for (size_t i = 0; i + 1 < gradInputs.size(); ++i) // all but the seed
        inputs.push_back(gradInputs[i]);

      // Once each, counting the bytes held: warms the caches too.
      llvm::Expected<rt::HostArray> logits = rt::HostArray();
      llvm::Expected<std::vector<rt::HostArray>> outs =
          std::vector<rt::HostArray>();
      std::optional<double> forwardBytes =
          peakBytesDuring(one->handle, [&] { logits = model.run(inputs); });
      std::optional<double> gradientBytes = peakBytesDuring(
          one->handle, [&] { outs = model.runGradient(gradInputs); });
      if (!logits || !outs) {
        error(llvm::formatv("{0} L={1}: {2}", c.name, L,
                            llvm::toString(llvm::joinErrors(
                                logits.takeError(), outs.takeError()))));
        ok = false;
        continue;
      }
      double logitsError =
          maxRelativeError(outs->front().data<float>(), logits->data<float>(),
                           logits->numElements());
      bool correct =
          logitsError <= kTolerance && llvm::all_of(*outs, allFinite);
      if (!correct) {
        error(llvm::formatv("{0} L={1}: FAILED: the gradient entry's logits "
                            "differ from the forward's by {2:e}, or a result "
                            "is not finite",
                            c.name, L, logitsError));
        ok = false;
      }

      // Interleaved rounds; a call shorter than kMinRepetitionSeconds is
      // repeated within its round.
      using Clock = std::chrono::steady_clock;
      auto seconds = [](int64_t calls, const std::function<void()> &fn) {
        auto start = Clock::now();
        for (int64_t i = 0; i < calls; ++i)
          fn();
        return std::chrono::duration<double>(Clock::now() - start).count() /
               calls;
      };
      auto forward = [&] {
        if (auto r = model.run(inputs); !r)
          llvm::report_fatal_error(r.takeError());
      };
      auto backward = [&] {
        if (auto r = model.runGradient(gradInputs); !r)
          llvm::report_fatal_error(r.takeError());
      };
      auto callsFor = [](double once) {
        return once < kMinRepetitionSeconds
                   ? int64_t(std::ceil(kMinRepetitionSeconds /
                                       std::max(once, 1e-7)))
                   : int64_t(1);
      };
      int64_t forwardCalls = callsFor(seconds(1, forward));
      int64_t gradientCalls = callsFor(seconds(1, backward));
      std::vector<double> fs, gs, ratios;
      double cpuStart = processCpuSeconds();
      auto wallStart = Clock::now();
      for (unsigned r = 0; r < reps; ++r) {
        fs.push_back(seconds(forwardCalls, forward));
        gs.push_back(seconds(gradientCalls, backward));
        ratios.push_back(gs.back() / fs.back());
      }
      double cpuPerWall =
          (processCpuSeconds() - cpuStart) /
          std::chrono::duration<double>(Clock::now() - wallStart).count();
      auto median = [](std::vector<double> v) {
        llvm::sort(v);
        size_t n = v.size();
        return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
      };
      auto minimum = [](const std::vector<double> &v) {
        return *llvm::min_element(v);
      };

      json::Object line = wholeModelLine(
          c, *one, "gradient",
          "compiled gradient (glint_gradient: logits, every layer's "
          "cotangent and the input embeddings', for a random seed on the "
          "logits) against the compiled forward (glint_forward), timed in "
          "interleaved rounds",
          threadsUsed, cpuPerWall);
      if (sized)
        line["L"] = L;
      else
        line["L"] = nullptr; // a fixed input size (an image)
      line["layers_differentiated"] = int64_t(gradient.layers.size());
      line["repetitions"] = int64_t(reps);
      line["forward_calls_per_repetition"] = forwardCalls;
      line["gradient_calls_per_repetition"] = gradientCalls;
      line["forward_ms_min"] = 1e3 * minimum(fs);
      line["forward_ms_median"] = 1e3 * median(fs);
      line["gradient_ms_min"] = 1e3 * minimum(gs);
      line["gradient_ms_median"] = 1e3 * median(gs);
      // Each round's gradient time over its forward time.
      line["grad_over_forward_min"] = minimum(ratios);
      line["grad_over_forward_median"] = median(ratios);
      // The most bytes the library's allocator held at once during one call
      // (activations, scratch, results; not the weights, which the host
      // holds).
      if (forwardBytes && gradientBytes) {
        line["forward_peak_alloc_mib"] = *forwardBytes / (1 << 20);
        line["gradient_peak_alloc_mib"] = *gradientBytes / (1 << 20);
        line["gradient_over_forward_alloc"] =
            *gradientBytes / std::max(*forwardBytes, 1.0);
      }
      line["gradient_check_L"] = gradientCheckLength.getValue();
      line["gradient_rel_error_vs_reference"] = referenceError;
      if (sensitivity)
        line["gradient_reference_sensitivity"] = *sensitivity;
      line["logits_rel_error_vs_forward"] = logitsError;
      line["correct"] = correct && referenceOk;
      line["timed"] = "CompiledModel::run, CompiledModel::runGradient";
      line["compile_seconds"] = one->compileSeconds;
      tableRows.push_back(
          {c.name + " (gradient)", formLabel(*one),
           sized ? std::to_string(L) : "-",
           llvm::formatv("{0:f3} ms", 1e3 * median(gs)).str(),
           llvm::formatv("{0:f2}x forward", median(ratios)).str(), "-",
           correct && referenceOk});
      printJsonLine(std::move(line));
    }
  }
  return ok;
}

//===----------------------------------------------------------------------===//
// --decode: generation, one token at a time
//===----------------------------------------------------------------------===//

/// The bytes per second this machine reads from memory on `threads`
/// threads: passes summing a 1 GiB buffer (far past any cache), each thread
/// its own contiguous part, four independent vector accumulators per
/// thread. The yardstick of a memory-bound generation step, which streams
/// every weight once per token. The buffer is filled once, when the probe
/// is made; --decode measures it again beside every repetition, since on a
/// shared host the bandwidth a core gets moves from second to second.
class ReadBandwidthProbe {
public:
  explicit ReadBandwidthProbe(unsigned threads)
      : threads(threads),
        buffer(static_cast<float *>(std::aligned_alloc(64, kBytes)),
               &std::free),
        pool(llvm::hardware_concurrency(threads)),
        part(kBytes / sizeof(float) / threads / 64 * 64), sums(threads) {
    // Each thread first touches (so its pages are its NUMA node's) and
    // then reads its own part.
    if (buffer)
      forParts([](float *p, size_t n) {
        for (size_t i = 0; i < n; ++i)
          p[i] = float(i & 1023) * 1e-3f;
      });
  }

  /// The best of `passes` passes, in bytes per second (0 without memory).
  double measure(int passes) {
    if (!buffer)
      return 0;
    double best = 0;
    for (int pass = 0; pass < passes; ++pass) {
      auto start = std::chrono::steady_clock::now();
      forParts([&](float *p, size_t n) {
        sums[(p - buffer.get()) / part] = sumFloats(p, n);
      });
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      best = std::max(best, double(part) * threads * sizeof(float) / seconds);
    }
    volatile float keep = std::accumulate(sums.begin(), sums.end(), 0.0f);
    (void)keep;
    return best;
  }

private:
  static constexpr size_t kBytes = size_t(1) << 30;

  void forParts(const std::function<void(float *, size_t)> &fn) {
    for (unsigned t = 0; t < threads; ++t)
      pool.async([&, t] { fn(buffer.get() + t * part, part); });
    pool.wait();
  }
  static float sumFloats(const float *p, size_t n) {
#if defined(__AVX512F__)
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (size_t i = 0; i < n; i += 64)
      for (int j = 0; j < 4; ++j)
        acc[j] = _mm512_add_ps(acc[j], _mm512_load_ps(p + i + 16 * j));
    return sumLanes(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]),
                                  _mm512_add_ps(acc[2], acc[3])));
#else
    float acc[8] = {};
    for (size_t i = 0; i < n; i += 8)
      for (int j = 0; j < 8; ++j)
        acc[j] += p[i + j];
    float s = 0;
    for (float a : acc)
      s += a;
    return s;
#endif
  }

  unsigned threads;
  std::unique_ptr<float, decltype(&std::free)> buffer;
  llvm::StdThreadPool pool;
  size_t part;
  std::vector<float> sums;
};

/// The probe of `threads` threads, made once per run (its buffer filled
/// once).
ReadBandwidthProbe &readBandwidthProbe(unsigned threads) {
  static std::map<unsigned, std::unique_ptr<ReadBandwidthProbe>> probes;
  std::unique_ptr<ReadBandwidthProbe> &probe = probes[threads];
  if (!probe)
    probe = std::make_unique<ReadBandwidthProbe>(threads);
  return *probe;
}

/// The index of the largest of the last row's logits (greedy decoding).
int64_t argmaxLastRow(const rt::HostArray &logits) {
  int64_t vocab = logits.shape.back();
  const float *row = logits.data<float>() + logits.numElements() - vocab;
  return std::max_element(row, row + vocab) - row;
}

/// --decode for one whole-model case: compiles the model with its step
/// entry; at each prompt length L, per repetition, feeds a random prompt of
/// L tokens to the step entry and then --decode-tokens greedy one-token
/// steps, each timed alone (CompiledModel::step, the path glint-run's
/// generation takes: its input checks and state copies included). The
/// last step's logits are checked against the full forward of the whole
/// sequence. The weight bytes of the step entry over the time of a step is
/// the bandwidth the step achieves if it reads every weight once (true of
/// models whose output head is the embedding, like Mamba's; the embedding
/// of an untied model is read one row at a time, which this overstates);
/// it is compared with the read bandwidth measured in the same run.
bool runDecodeCase(MLIRContext &context, Case &c, llvm::ArrayRef<int64_t> Ls,
                   llvm::ArrayRef<std::string> forms, unsigned reps,
                   int64_t threadsUsed, std::mt19937 &rng) {
  CompiledWholeModel whole;
  if (!compileWholeModel(context, c, forms, rng, whole))
    return false;
  std::vector<std::unique_ptr<CompiledForm>> &compiled = whole.compiled;

  bool ok = true;
  for (std::unique_ptr<CompiledForm> &one : compiled) {
    rt::CompiledModel &model = *one->model;
    if (!model.hasStep()) {
      error(c.name + ": the library has no step entry");
      return false;
    }
    double weightBytes = 0;
    for (const rt::TensorSpec &spec : model.info().step->weights) {
      double n = 1;
      for (int64_t d : spec.shape)
        n *= double(d);
      weightBytes += n * (spec.dtype == "f64" || spec.dtype == "i64"    ? 8
                          : spec.dtype == "bf16" || spec.dtype == "f16" ? 2
                                                                        : 4);
    }
    for (int64_t L : Ls) {
      rt::HostArray prompt =
          makeInstance(c, /*wholeModel=*/true, model.info(), rng, L)
              .inputs.front();
      std::vector<double> seconds;
      // Beside each timed repetition: the read bandwidth just after it, and
      // the fraction of it that repetition's median step streamed.
      ReadBandwidthProbe &probe = readBandwidthProbe(unsigned(threadsUsed));
      std::vector<double> streams, fractions;
      std::vector<int64_t> fed; // the first repetition's tokens
      std::optional<rt::HostArray> lastLogits;
      double cpuStart = processCpuSeconds();
      auto wallStart = std::chrono::steady_clock::now();
      llvm::Error failure = llvm::Error::success();
      for (unsigned r = 0; r < reps + 1 && !failure; ++r) {
        auto states = model.startStates(1);
        if (!states) {
          failure = states.takeError();
          break;
        }
        auto logits = model.step({prompt}, *states);
        for (unsigned t = 0; t < decodeTokens && logits; ++t) {
          rt::HostArray token = rt::HostArray::make({1, 1}, "i64");
          token.data<int64_t>()[0] = argmaxLastRow(*logits);
          if (r == 1)
            fed.push_back(token.data<int64_t>()[0]);
          auto start = std::chrono::steady_clock::now();
          logits = model.step({token}, *states);
          // Repetition 0 warms the caches and the allocator: not timed.
          if (r > 0)
            seconds.push_back(std::chrono::duration<double>(
                                  std::chrono::steady_clock::now() - start)
                                  .count());
        }
        if (!logits) {
          failure = logits.takeError();
          break;
        }
        if (r == 1)
          lastLogits = std::move(*logits);
        if (r > 0) {
          std::vector<double> own(seconds.end() - decodeTokens, seconds.end());
          llvm::sort(own);
          double stream = probe.measure(/*passes=*/2);
          streams.push_back(stream);
          if (stream > 0)
            fractions.push_back(weightBytes / own[own.size() / 2] / stream);
        }
      }
      double cpuPerWall = (processCpuSeconds() - cpuStart) /
                          std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - wallStart)
                              .count();
      if (failure) {
        error(llvm::formatv("{0} L={1}: {2}", c.name, L,
                            llvm::toString(std::move(failure))));
        ok = false;
        continue;
      }
      // The same sequence through the full forward: its last row must be
      // the last step's logits.
      rt::HostArray whole =
          rt::HostArray::make({1, L + int64_t(fed.size())}, "i64");
      std::copy_n(prompt.data<int64_t>(), L, whole.data<int64_t>());
      std::copy(fed.begin(), fed.end(), whole.data<int64_t>() + L);
      auto forward = model.run({whole});
      if (!forward) {
        error(llvm::formatv("{0} L={1}: {2}", c.name, L,
                            llvm::toString(forward.takeError())));
        ok = false;
        continue;
      }
      int64_t vocab = forward->shape.back();
      double logitsError = maxRelativeError(
          lastLogits->data<float>() + lastLogits->numElements() - vocab,
          forward->data<float>() + forward->numElements() - vocab, vocab);
      bool correct = logitsError <= kTolerance;
      if (!correct) {
        error(llvm::formatv("{0} L={1}: FAILED: the last step's logits "
                            "differ from the full forward's by {2:e}",
                            c.name, L, logitsError));
        ok = false;
      }
      llvm::sort(seconds);
      double min = seconds.front();
      double median = seconds[seconds.size() / 2];
      llvm::sort(streams);
      llvm::sort(fractions);
      double stream = streams[streams.size() / 2];
      double fraction = fractions.empty() ? 0 : fractions[fractions.size() / 2];

      json::Object line = wholeModelLine(
          c, *one, "decode",
          "greedy generation through the step entry after a random prompt "
          "of L tokens: the time of one one-token step (CompiledModel::step); "
          "weight_gbps = the step entry's weight bytes over that time, "
          "stream_read_gbps = this machine's read bandwidth on the same "
          "threads, measured after each repetition (the median; min and max "
          "beside it); fraction_of_stream_median = the median over the "
          "repetitions of the weight bytes over the repetition's median step "
          "time and the bandwidth measured after it",
          threadsUsed, cpuPerWall);
      line["L"] = L;
      line["decode_tokens"] = int64_t(decodeTokens);
      line["repetitions"] = int64_t(reps);
      line["ms_per_token_min"] = 1e3 * min;
      line["ms_per_token_median"] = 1e3 * median;
      line["tokens_per_s_median"] = 1.0 / median;
      line["weight_mib"] = weightBytes / (1 << 20);
      line["weight_gbps_median"] = weightBytes / median * 1e-9;
      line["weight_gbps_max"] = weightBytes / min * 1e-9;
      line["stream_read_gbps"] = stream * 1e-9;
      line["stream_read_gbps_min"] = streams.front() * 1e-9;
      line["stream_read_gbps_max"] = streams.back() * 1e-9;
      line["fraction_of_stream_median"] = fraction;
      line["logits_rel_error_vs_forward"] = logitsError;
      line["correct"] = correct;
      line["timed"] = "CompiledModel::step, one token";
      line["compile_seconds"] = one->compileSeconds;
      tableRows.push_back(
          {c.name + " (decode)", formLabel(*one), std::to_string(L),
           llvm::formatv("{0:f3} ms", 1e3 * median).str(),
           llvm::formatv("{0:f1} GB/s", weightBytes / median * 1e-9).str(),
           llvm::formatv("{0:f2} of stream", fraction).str(), correct});
      printJsonLine(std::move(line));
    }
  }
  return ok;
}

/// Runs one case at every length, in each of `forms`; prints its JSON lines
/// (per length, the forms one after the other, so that their ratios come
/// from the same moment of a busy machine). Returns false if it could not
/// run or a result was wrong.
bool runCase(MLIRContext &context, Case &c, llvm::ArrayRef<int64_t> Ls,
             llvm::ArrayRef<std::string> forms, unsigned reps,
             int64_t threadsUsed, std::mt19937 &rng) {
  std::unique_ptr<rt::Checkpoint> checkpoint;
  bool wholeModel = isWholeModel(c);
  if (gradientMode && wholeModel)
    return runGradientCase(context, c, Ls, forms, reps, threadsUsed, rng);
  if (decodeMode && wholeModel)
    return runDecodeCase(context, c, Ls, forms, reps, threadsUsed, rng);
  llvm::SmallString<128> generatedDir;
  llvm::scope_exit removeGenerated([&] {
    if (!generatedDir.empty())
      llvm::sys::fs::remove_directories(generatedDir);
  });
  OwningOpRef<ModuleOp> module =
      loadCaseModule(context, c, wholeModel, rng, generatedDir, checkpoint);
  if (!module)
    return false;

  std::vector<std::unique_ptr<CompiledForm>> compiled;
  if (!compileForms(c, *module, forms, checkpoint.get(), compiled))
    return false;
  const rt::ModelInfo &info = compiled.front()->model->info();

  bool ok = true;
  std::optional<double> referenceError;
  if (c.referenceCheck) {
    auto checked = c.referenceCheck(context, rng);
    if (!checked) {
      error(c.name +
            ": reference check: " + llvm::toString(checked.takeError()));
      return false;
    }
    referenceError = *checked;
    // ‖compiled − reference‖ / ‖reference‖ in f32 against double.
    if (*referenceError > 1e-5) {
      error(llvm::formatv("{0}: FAILED: the compiled map differs from the "
                          "reference evaluator by {1:e} (relative, 2-norm)",
                          c.name, *referenceError));
      ok = false;
    }
  }
  for (int64_t L : Ls) {
    Instance in = makeInstance(c, wholeModel, info, rng, L);

    std::vector<float> expected;
    std::optional<Timing> naive, library;
    unsigned naiveReps = reps;
    for (std::unique_ptr<CompiledForm> &one : compiled) {
      rt::CompiledModel &model = *one->model;
      // Correctness, once, through the runtime's checked entry.
      auto result = model.run(in.inputs);
      if (!result) {
        error(llvm::formatv("{0} L={1}: {2}", c.name, L,
                            llvm::toString(result.takeError())));
        ok = false;
        continue;
      }
      auto [correct, relError] = checkResult(c, *one, L, in, *result, expected);
      if (!correct)
        ok = false;

      Timing timing = timeCompiled(*one, info, in, reps);
      // Like the compiled entry point, which allocates its result on every
      // call, the naive loop writes a freshly allocated (untouched) buffer.
      // Timed once per length, after the first form; a naive loop that runs
      // for seconds (a large matmul) only one repetition.
      if (in.naive && !naive) {
        auto start = std::chrono::steady_clock::now();
        std::unique_ptr<float[]> out(new float[expected.size()]);
        in.naive(in.inputs, out.get());
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                          start)
                .count() > 2.0)
          naiveReps = 1;
        naive = timeIt(naiveReps, [&] {
          std::unique_ptr<float[]> out(new float[expected.size()]);
          in.naive(in.inputs, out.get());
        });
      }
      // The tuned library, where the case has one: once per length too.
      std::optional<double> libraryError;
      if (in.library) {
        std::vector<float> got(expected.size());
        in.library(in.inputs, got.data());
        libraryError = maxRelativeError(result->data<float>(), got.data(),
                                        result->numElements());
        if (!library)
          library = timeIt(reps, [&] {
            std::unique_ptr<float[]> out(new float[expected.size()]);
            in.library(in.inputs, out.get());
          });
      }

      printLine(c, *one, info, in, reps, threadsUsed,
                Measurement{L, timing, correct, relError, libraryError,
                            referenceError, naive, library, naiveReps});
    }
  }
  return ok;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::glint::addGlintVersionPrinter();
  mlir::glint::runtime::setBugReportMessage();
  cl::opt<int> *threadsOpt = rt::adoptThreadsOption(
      category, "Threads for the compiled kernels' parallel loops (default 1)");
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "glint-bench: times compiled glint kernels against naive loops, one "
      "JSON line per case (\"case\" first), and a table on a terminal\n\n"
      "  glint-bench --cases=mamba1,conv1d --L=512,2048 --repetitions=5\n"
      "  glint-bench --quick\n");

  std::vector<int64_t> Ls(lengths.begin(), lengths.end());
  if (Ls.empty())
    Ls = quick || decodeMode ? std::vector<int64_t>{64}
                             : std::vector<int64_t>{512, 2048, 8192};
  for (int64_t L : Ls)
    if (L <= 0) {
      error(llvm::formatv("--L: {0} is not a positive length", L));
      return 1;
    }
  if (repetitions.getNumOccurrences() && repetitions == 0) {
    error("--repetitions: at least one");
    return 1;
  }
  unsigned reps = repetitions ? unsigned(repetitions) : (quick ? 2 : 5);
  if (chunkSize < 0) {
    error(llvm::formatv("--chunk-size: {0} is not a positive count "
                        "(0: the pass's default)",
                        chunkSize.getValue()));
    return 1;
  }
  if (gradientMode && gradientCheckLength <= 0) {
    error(llvm::formatv("--gradient-check-length: {0} is not a positive "
                        "length",
                        gradientCheckLength.getValue()));
    return 1;
  }
  if (gradientMode && decodeMode) {
    error("--gradient and --decode: choose one");
    return 1;
  }
  for (const std::string &type : weightDtypes)
    if (!llvm::is_contained({"f32", "bf16", "f16"}, type)) {
      error("--weight-dtype: '" + type + "' is not f32, bf16 or f16");
      return 1;
    }
  for (const std::string &p : prepareWeightsOpt)
    if (p != "on" && p != "off") {
      error("--prepare-weights: '" + p + "' is not on or off");
      return 1;
    }
  if (decodeMode && decodeTokens == 0) {
    error("--decode-tokens: at least one token");
    return 1;
  }
  auto threadsGiven = rt::threadsGiven(threadsOpt, 1);
  if (!threadsGiven) {
    error(llvm::toString(threadsGiven.takeError()));
    return 1;
  }
  int64_t threadsUsed = *threadsGiven;
  // Before any library is loaded: OpenMP reads it when it starts.
  rt::setThreads(static_cast<unsigned>(threadsUsed));
#ifdef GLINT_BENCH_HAVE_OPENBLAS
  openblas_set_num_threads(static_cast<int>(threadsUsed));
#endif
  // The cases compile for this host, for the threads they run on.
  auto target = compiler::makeTarget("", 0, threadsUsed);
  if (!target) {
    error(llvm::toString(target.takeError()));
    return 1;
  }
  benchTarget = *target;

  std::vector<std::string> forms(formNames.begin(), formNames.end());
  if (forms.empty())
    forms.push_back("auto");
  for (const std::string &f : forms)
    if (!parseRecurrenceForm(f)) {
      error("--recurrence-form: '" + f + "' is not auto, recurrent or chunked");
      return 1;
    }
  std::vector<Case> all = {
      mamba1Case(), mamba2Case(), mamba2Case(2), mamba2Case(1),
      retnetCase("retnet", 8), retnetCase("retnet-h1", 1),
      // One head of 32 values: a single work item for the recurrent form.
      retnetCase("retnet-h1-v32", 1, 128, 32),
      // Small keys: the chunked form's intra-chunk work outweighs its saving.
      retnetCase("retnet-k32", 16, 32, 64), gatedCase(true), gatedCase(false),
      conv1dCase(), softplusCase(), matmulCase("in_proj"), matmulCase("x_proj"),
      matmulCase("dt_proj"), matmulCase("out_proj"), matmulCase("lm_head"),
      mamba130mCase(), rwkv6SmallCase(), attnMapMamba1Case(),
      attnMapMamba1Case(/*attribution=*/true)};
  // One `model` case per --model directory, in the order of the cases'
  // list (before mamba-130m).
  std::vector<std::string> dirs(modelDirs.begin(), modelDirs.end());
  if (dirs.empty())
    dirs.push_back(GLINT_SOURCE_DIR "/models/mamba-keyword");
  auto at =
      llvm::find_if(all, [](const Case &c) { return c.name == "mamba-130m"; });
  for (const std::string &dir : llvm::reverse(dirs))
    at = all.insert(at, modelCase(dir));
  // What only the whole-model cases do; the others would ignore it.
  std::string wholeModelOnly =
      decodeMode     ? "--decode"
      : gradientMode ? "--gradient"
      : llvm::any_of(weightDtypes,
                     [](const std::string &t) { return t != "f32"; })
          ? "--weight-dtype"
      : llvm::is_contained(prepareWeightsOpt, "off") ? "--prepare-weights"
                                                     : "";
  std::vector<Case *> selected;
  if (caseNames.empty()) {
    // All cases, or with such an option, all that it applies to.
    for (Case &c : all)
      if (wholeModelOnly.empty() || isWholeModel(c))
        selected.push_back(&c);
  } else {
    for (const std::string &name : caseNames) {
      auto it = llvm::find_if(all, [&](Case &c) { return c.name == name; });
      if (it == all.end()) {
        std::string known;
        llvm::StringSet<> listed;
        for (Case &c : all)
          if (listed.insert(c.name).second)
            known += (known.empty() ? "" : ", ") + c.name;
        error("unknown case '" + name + "' (known: " + known + ")");
        return 1;
      }
      // Every case of that name (`model`: one per --model directory).
      for (Case &c : all)
        if (c.name == name)
          selected.push_back(&c);
    }
  }

  if (!wholeModelOnly.empty())
    for (Case *c : selected)
      if (!isWholeModel(*c)) {
        error(wholeModelOnly +
              " applies to the whole-model cases (model, "
              "mamba-130m, rwkv6-12x768), not to '" +
              c->name + "'");
        return 1;
      }

  DialectRegistry registry;
  registerCompilerDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  std::mt19937 rng(seed);
  bool ok = true;
  for (Case *c : selected)
    ok &= runCase(context, *c, Ls, forms, reps, threadsUsed, rng);
  if (tableOpt == cl::BOU_TRUE ||
      (tableOpt == cl::BOU_UNSET && llvm::outs().is_displayed()))
    printTable();
  if (!ok)
    error("some cases failed (see above)");
  return ok ? 0 : 1;
}
