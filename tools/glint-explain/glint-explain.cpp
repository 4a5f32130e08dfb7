//===- glint-explain.cpp - explain a glint model through its attention ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Explains a model's prediction through the implicit attention of its
// token-mixing layers:
//
//   glint-explain models/mamba-keyword --heldout 0 -o out/
//   glint-explain model.mlir --weights w.safetensors --tokens 0,5,9,1 -o out/
//   glint-explain eval models/mamba-keyword [--count 200]
//
// The model (a checkpoint directory that glint-import reads, or glint IR
// with --weights) is rewritten by glint-to-attention and evaluated by the
// double-precision reference evaluator: every layer's L×L map, attention
// rollout, and the relevance of each input token to the explained output.
//
//===----------------------------------------------------------------------===//

#include "explain/Figure.h"
#include "explain/ImageInput.h"
#include "explain/Methods.h"
#include "explain/Metrics.h"
#include "explain/Render.h"
#include "tools/ToolVersion.h"

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "import/Importers.h"
#include "passes/Passes.h"
#include "reference/ReferenceEvaluator.h"
#include "runtime/host/CompiledModel.h"
#include "runtime/host/RunSupport.h"
#include "runtime/io/InputLimits.h"
#include "runtime/io/Npy.h"
#include "runtime/io/Progress.h"
#include "runtime/io/Safetensors.h"
#include "runtime/text/Tokenizer.h"
#include "llvm/Support/FileUtilities.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "runtime/io/CrashReport.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <numeric>
#include <tuple>

using namespace mlir;
namespace rt = mlir::glint::runtime;
namespace ref = mlir::glint::reference;
namespace ex = mlir::glint::explain;
namespace cl = llvm::cl;
using llvm::Expected;

static cl::OptionCategory category("glint-explain options");
static cl::opt<std::string> modelPath(
    cl::Positional,
    cl::desc("<model directory (config.json + safetensors, anything "
             "glint-import reads), model.mlir with --weights, or a library "
             "from glint-compile --attention with --weights>"),
    cl::cat(category));
static cl::opt<std::string> modelDir(
    "m", cl::desc("The model directory (instead of the positional argument)"),
    cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> weightsPath(
    "weights", cl::desc("Weights for a .mlir model (.safetensors, index "
                        ".json or directory)"),
    cl::value_desc("path"), cl::cat(category));
static cl::opt<std::string> tokensOpt("tokens",
                                      cl::desc("Token ids, comma-separated"),
                                      cl::value_desc("ids"), cl::cat(category));
static cl::opt<std::string>
    textOpt("text",
            cl::desc("Text, through --vocab or the model directory's "
                     "tokenizer (tokenizer.json, tokenizer.model, "
                     "rwkv_vocab*.txt or vocab.json)"),
            cl::value_desc("text"), cl::cat(category));
static cl::alias textShort("p", cl::aliasopt(textOpt),
                           cl::desc("Alias for --text"), cl::cat(category));
static cl::opt<std::string> vocabPath(
    "vocab",
    cl::desc("The tokenizer file for --text and for showing tokens as text "
             "(default: the model directory's)"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> inputNpy(
    "input",
    cl::desc("Input .npy: token ids [1, L] or an image [1, 3, H, W]; or a "
             "PNG or JPEG picture for an image model, resized, cropped and "
             "normalised as the model's preprocessor_config.json or "
             "config.json says (image_mean, image_std, crop_pct; ImageNet's "
             "statistics by default)"),
    cl::value_desc("file.npy|file.png|file.jpg"), cl::cat(category));
static cl::opt<int> heldout(
    "heldout",
    cl::desc("Explain held-out example N of a bundled model directory (with "
             "its ground truth in the report)"),
    cl::init(-1), cl::cat(category));
static cl::opt<int> positionOpt(
    "position",
    cl::desc("Output position to explain (default: the position the model's "
             "result reads, e.g. the CLS token, else the last token)"),
    cl::init(INT_MIN), cl::cat(category));
static cl::opt<int> targetOpt(
    "target", cl::desc("Token id / class whose score is explained (default: "
                       "the predicted one)"),
    cl::init(-1), cl::cat(category));
static cl::opt<std::string> formulationOpt(
    "formulation",
    cl::desc("unified (default), scan-only, no-conv, no-gate or no-act"),
    cl::init("unified"), cl::cat(category));
static cl::opt<std::string> aggregateOpt(
    "aggregate",
    cl::desc("How channels are combined into a layer map: mean_abs "
             "(default), mean or sum"),
    cl::init("mean_abs"), cl::cat(category));
static cl::opt<int> layerOpt(
    "layer", cl::desc("Layer whose raw map gives the raw-attention relevance "
                      "(default: the last)"),
    cl::init(-1), cl::cat(category));
static cl::opt<unsigned> startLayer("start-layer",
                                    cl::desc("First layer of the rollout"),
                                    cl::init(0), cl::cat(category));
static cl::opt<std::string> outDir("o", cl::desc("Output directory"),
                                   cl::value_desc("dir"),
                                   cl::init("glint-explain-out"),
                                   cl::cat(category));
static cl::opt<unsigned> evalCount(
    "count", cl::desc("eval: how many held-out examples (default: all)"),
    cl::init(0), cl::cat(category));
static cl::opt<unsigned> evalSteps(
    "steps", cl::desc("eval: perturbation steps (default 10: 10% each)"),
    cl::init(10), cl::cat(category));
static cl::opt<std::string> evalJson(
    "json", cl::desc("eval: also write the table as JSON to this file"),
    cl::value_desc("file.json"), cl::cat(category));

static cl::opt<std::string> evalInputs(
    "eval-inputs",
    cl::desc("eval: your own examples instead of the bundled held-out set: "
             "token ids [N, L] or images [N, 3, H, W] (.npy); needs "
             "--eval-labels and --eval-relevant"),
    cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string>
    evalLabels("eval-labels",
               cl::desc("eval: the target token id / class per example "
                        "[N] (.npy, integers)"),
               cl::value_desc("file.npy"), cl::cat(category));
static cl::opt<std::string> evalRelevant(
    "eval-relevant",
    cl::desc("eval: the ground truth: for text a [N, L] mask of the relevant "
             "tokens (non-zero = relevant), for images [N, H, W] object "
             "masks (.npy)"),
    cl::value_desc("file.npy"), cl::cat(category));
static cl::list<std::string> methodsOpt(
    "method", cl::CommaSeparated,
    cl::desc("Explanation methods shown side by side (default: all the "
             "model supports): rollout, raw_attention, attribution (the "
             "gradient-weighted implicit attention of Ali et al. after "
             "Chefer et al.), input_x_gradient, integrated_gradients (names "
             "as in Captum)"),
    cl::value_desc("names"), cl::cat(category));
static cl::opt<unsigned>
    igSteps("ig-steps",
            cl::desc("integrated_gradients: number of steps (default 32)"),
            cl::init(32), cl::cat(category));
static cl::opt<std::string> igBaseline(
    "ig-baseline",
    cl::desc("integrated_gradients' baseline: 'zero' embeddings (token "
             "models' default), 'mean-image' (image models' default: the "
             "embeddings of the all-zero normalised picture, the dataset's "
             "mean colour; zero embeddings sit where the first RMSNorm jumps, "
             "so their integral does not converge) or a token id whose "
             "embedding fills every position"),
    cl::init("auto"), cl::cat(category));

static cl::opt<bool> referenceGradient(
    "reference-gradient",
    cl::desc("Gradient methods (attribution, input_x_gradient, "
             "integrated_gradients) through the double-precision reference "
             "evaluator; by default they call the model's compiled gradient "
             "(float32, compiled once by glint-compile --grad into the "
             "compile cache)"),
    cl::cat(category));
static cl::opt<std::string>
    cacheDir("cache-dir",
             cl::desc("The compile cache of the compiled gradient (default: "
                      "$GLINT_CACHE_DIR, else $XDG_CACHE_HOME/glint, else "
                      "~/.cache/glint)"),
             cl::value_desc("dir"), cl::cat(category));

/// This program's path, for finding glint-compile next to it.
static std::string selfPath;

static int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "glint-explain") << message << "\n";
  return 1;
}

/// Whether the reference evaluator's runs draw their own bars: when one
/// input is explained (eval draws one bar over its examples instead).
static bool evaluatorBars = false;

/// On a terminal, a bar labelled `label` over each run of `evaluator` that
/// takes more than a second: the ops of the function run (a layer's mixer
/// is one), ended with the run or the evaluator.
static void watchEvaluator(ref::ReferenceEvaluator &evaluator,
                           StringRef label) {
  if (!evaluatorBars)
    return;
  auto bar = std::make_shared<std::unique_ptr<rt::ProgressBar>>();
  evaluator.setProgress(
      [bar, label = label.str()](uint64_t done, uint64_t total) {
        if (done == 0) {
          *bar = std::make_unique<rt::ProgressBar>(
              label, total, rt::ProgressBar::kQuickWorkDelay);
          return;
        }
        if (!*bar)
          return;
        (*bar)->advance();
        if (done == total)
          (*bar)->finish();
      });
}

//===----------------------------------------------------------------------===//
// The model and its attention form
//===----------------------------------------------------------------------===//

namespace {

/// A model, its weights, and what explanations need to know about it.
struct Model {
  std::unique_ptr<MLIRContext> context;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<rt::Checkpoint> checkpoint;
  std::string name;
  /// The model directory, when the model came from one.
  std::string directory;
  /// The position the result reads (glint.readout_position), if any.
  std::optional<int64_t> readout;
  bool imageInput = false;
  /// Image models: the input's height and width (0 where dynamic).
  int64_t imageHeight = 0, imageWidth = 0;
  /// Class names by id (config.json's id2label), where the model has them.
  std::map<int64_t, std::string> classNames;
  /// A library from `glint-compile --attention`: it computes the maps of
  /// its one formulation and aggregate natively, in float32.
  std::unique_ptr<rt::CompiledModel> compiled;
  /// The compiled gradient of the embeddings-input forward (made on first
  /// use unless --reference-gradient), and its library's path.
  std::unique_ptr<rt::CompiledModel> compiledGradient;
  std::string compiledGradientPath;
  /// The attribution method's maps compiled per formulation (the attention
  /// form with glint.map_attribution, lowered by convert-glint-map-to-loops).
  std::map<std::string, std::unique_ptr<rt::CompiledModel>>
      compiledAttribution;
  /// Formulations whose attribution form convert-glint-map-to-loops cannot
  /// lower yet (softmax attention, RWKV-4's normalised scan): evaluated.
  std::set<std::string> attributionByEvaluator;
};

/// Logits and every layer's map for one batch.
struct Explained {
  ref::Array logits;
  std::vector<ref::Array> maps; // [B, L, L] each
  std::vector<std::string> labels;
};

} // namespace

static Expected<Model> loadModel() {
  Model model;
  DialectRegistry registry;
  registry.insert<glint::GlintDialect, arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  ml_program::MLProgramDialect, scf::SCFDialect,
                  tensor::TensorDialect>();
  model.context = std::make_unique<MLIRContext>(registry);
  model.context->loadAllAvailableDialects();
  model.name = llvm::sys::path::filename(
                   llvm::sys::path::remove_leading_dotslash(modelPath))
                   .str();
  if (!llvm::sys::fs::exists(modelPath))
    return llvm::createStringError(
        modelPath + ": no such model directory or IR file");
  if (llvm::sys::path::extension(modelPath) == ".so") {
    if (weightsPath.empty())
      return llvm::createStringError(
          "--weights is required with a compiled library (the checkpoint, or "
          "the bundled model's directory)");
    auto compiled = rt::CompiledModel::load(modelPath);
    if (!compiled)
      return compiled.takeError();
    if (!(*compiled)->info().attention)
      return llvm::createStringError(
          modelPath + " was compiled without its attention form; recompile "
                      "it with glint-compile --attention");
    if ((*compiled)->info().attention->aggregate == "attribution")
      return llvm::createStringError(
          modelPath + " returns attribution maps (glint-compile "
                      "--attribution), which take the layers' gradients as "
                      "inputs; recompile it without --attribution");
    auto checkpoint = rt::Checkpoint::open(weightsPath);
    if (!checkpoint)
      return checkpoint.takeError();
    model.checkpoint = std::move(*checkpoint);
    if (llvm::Error e = (*compiled)->bindWeights(*model.checkpoint))
      return std::move(e);
    model.compiled = std::move(*compiled);
    model.imageInput = model.compiled->info().inputs[0].rank() == 4;
    if (model.imageInput) {
      model.imageHeight = model.compiled->info().inputs[0].shape[2];
      model.imageWidth = model.compiled->info().inputs[0].shape[3];
    }
    // A model directory holds the held-out set, the vocabulary and the
    // config from which the readout position is known.
    if (llvm::sys::fs::is_directory(weightsPath)) {
      model.directory = weightsPath;
      auto module = glint::import::importCheckpoint(
          model.context.get(), weightsPath, *model.checkpoint);
      if (module)
        if (auto forward = (*module)->lookupSymbol<func::FuncOp>("forward"))
          if (auto readout = forward->getAttrOfType<IntegerAttr>(
                  glint::GlintDialect::kReadoutPositionAttrName))
            model.readout = readout.getInt();
      if (!module)
        llvm::consumeError(module.takeError());
    }
    return model;
  }
  if (llvm::sys::fs::is_directory(modelPath)) {
    model.directory = modelPath;
    auto checkpoint =
        rt::Checkpoint::open(weightsPath.empty() ? modelPath : weightsPath);
    if (!checkpoint)
      return checkpoint.takeError();
    model.checkpoint = std::move(*checkpoint);
    auto module = glint::import::importCheckpoint(
        model.context.get(), modelPath, *model.checkpoint);
    if (!module)
      return module.takeError();
    model.module = std::move(*module);
  } else {
    if (weightsPath.empty())
      return llvm::createStringError(
          "--weights is required with a .mlir model");
    auto checkpoint = rt::Checkpoint::open(weightsPath);
    if (!checkpoint)
      return checkpoint.takeError();
    model.checkpoint = std::move(*checkpoint);
    if (llvm::Error e = rt::checkIRFileBeforeParsing(modelPath))
      return std::move(e);
    llvm::SourceMgr sourceMgr;
    SourceMgrDiagnosticHandler diagnostics(sourceMgr, model.context.get());
    model.module = parseSourceFile<ModuleOp>(
        modelPath, sourceMgr, ParserConfig(model.context.get()));
    if (!model.module)
      return llvm::createStringError(
          modelPath + ": cannot parse the model (see the diagnostics above)");
  }
  auto forward = model.module->lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return llvm::createStringError(modelPath +
                                   ": the model has no function @forward");
  if (auto readout = forward->getAttrOfType<IntegerAttr>(
          glint::GlintDialect::kReadoutPositionAttrName))
    model.readout = readout.getInt();
  auto input = dyn_cast<RankedTensorType>(forward.getArgumentTypes()[0]);
  model.imageInput = input && input.getRank() == 4;
  if (model.imageInput) {
    model.imageHeight = std::max<int64_t>(input.getDimSize(2), 0);
    model.imageWidth = std::max<int64_t>(input.getDimSize(3), 0);
  }
  return model;
}

/// config.json's id2label of the model directory, if any: the names the
/// report gives classes.
static llvm::Error readClassNames(Model &model) {
  auto names = ex::readClassNames(model.directory);
  if (!names)
    return names.takeError();
  model.classNames = std::move(*names);
  return llvm::Error::success();
}

/// A compiled library computes one formulation and aggregate: use them
/// unless the command line asks for others (which is then an error).
static void adoptLibrarySettings(const Model &model) {
  if (!model.compiled)
    return;
  const rt::AttentionInfo &attention = *model.compiled->info().attention;
  if (!formulationOpt.getNumOccurrences())
    formulationOpt = attention.formulation;
  if (!aggregateOpt.getNumOccurrences())
    aggregateOpt = attention.aggregate;
}

/// Runs a library compiled with --attention: the logits and its maps.
static Expected<Explained> explainCompiled(Model &model,
                                           StringRef formulation,
                                           StringRef aggregate,
                                           const ref::Array &input) {
  const rt::AttentionInfo &attention = *model.compiled->info().attention;
  if (formulation != attention.formulation || aggregate != attention.aggregate)
    return llvm::createStringError(llvm::formatv(
        "{0} computes the '{1}' formulation with the '{2}' aggregate; "
        "'{3}' / '{4}' needs glint-compile --attention --formulation={3} "
        "--aggregate={4}, or the model's IR",
        modelPath, attention.formulation, attention.aggregate, formulation,
        aggregate));
  const std::string &dtype = model.compiled->info().inputs[0].dtype;
  rt::RunArray run =
      ref::toRunArray(input, /*integer=*/dtype == "i64" || dtype == "i32");
  auto results = model.compiled->runAll({rt::toHostArray(run, dtype)});
  if (!results)
    return results.takeError();
  Explained out;
  for (const rt::HostArray &result : *results) {
    ref::Array array = ref::fromRunArray(rt::fromHostArray(result));
    if (out.logits.shape.empty())
      out.logits = std::move(array);
    else
      out.maps.push_back(std::move(array));
  }
  out.labels = attention.layers;
  return out;
}

/// Rewrites a copy of the model into `formulation` and runs it on `input`
/// (or runs the compiled library, which has its one formulation).
static Expected<Explained> explainBatch(Model &model, StringRef formulation,
                                        StringRef aggregate,
                                        const ref::Array &input) {
  if (model.compiled)
    return explainCompiled(model, formulation, aggregate, input);
  OwningOpRef<ModuleOp> attention = model.module->clone();
  PassManager pm(model.context.get());
  std::string pipeline = llvm::formatv(
      "func.func(glint-to-attention{{formulation={0} aggregate={1}})",
      formulation, aggregate);
  if (failed(parsePassPipeline(pipeline, pm)))
    return llvm::createStringError("invalid attention-form options: " +
                                   pipeline);
  // The pass reports why a layer has no attention form (naming the op).
  std::string diagnostics;
  {
    ScopedDiagnosticHandler handler(model.context.get(), [&](Diagnostic &d) {
      llvm::raw_string_ostream os(diagnostics);
      os << d.getLocation() << ": " << d << "\n";
      for (Diagnostic &note : d.getNotes())
        os << "  note: " << note << "\n";
      return success();
    });
    if (failed(pm.run(*attention)))
      return llvm::createStringError(
          "the model has no attention form:\n" + diagnostics);
  }
  auto forward = attention->lookupSymbol<func::FuncOp>("forward");
  auto labels = forward->getAttrOfType<ArrayAttr>(
      glint::GlintDialect::kAttentionLayersAttrName);
  if (!labels || labels.empty())
    return llvm::createStringError(
        "the model has no token-mixing layer (no glint.mixer or "
        "glint.attention) to explain");
  ref::ReferenceEvaluator evaluator(*attention,
                                    ref::weightsFrom(*model.checkpoint));
  watchEvaluator(evaluator, "maps (reference evaluator)");
  auto results = evaluator.run("forward", {input});
  if (!results)
    return results.takeError();
  Explained out;
  out.logits = std::move((*results)[0]);
  for (size_t i = 1; i < results->size(); ++i)
    out.maps.push_back(std::move((*results)[i]));
  for (Attribute label : labels)
    out.labels.push_back(cast<StringAttr>(label).str());
  return out;
}

/// The scan-form forward (the model as written) on `input`.
static Expected<ref::Array> forwardBatch(Model &model,
                                         const ref::Array &input) {
  if (model.compiled) {
    auto explained =
        explainCompiled(model, model.compiled->info().attention->formulation,
                        model.compiled->info().attention->aggregate, input);
    if (!explained)
      return explained.takeError();
    return std::move(explained->logits);
  }
  ref::ReferenceEvaluator evaluator(*model.module,
                                    ref::weightsFrom(*model.checkpoint));
  auto results = evaluator.run("forward", {input});
  if (!results)
    return results.takeError();
  return std::move((*results)[0]);
}

/// Every layer's L×L map of batch element `b` (each result is [B, L, L]).
static std::vector<std::vector<double>> layerMaps(const Explained &explained,
                                                  int64_t b) {
  std::vector<std::vector<double>> maps;
  for (const ref::Array &m : explained.maps) {
    int64_t perMap = m.shape[1] * m.shape[2];
    maps.emplace_back(m.data.begin() + b * perMap,
                      m.data.begin() + (b + 1) * perMap);
  }
  return maps;
}

/// Softmax probability of `target` in the logits row at `offset`, `count`
/// classes.
static double probability(const ref::Array &logits, int64_t offset,
                          int64_t count, int64_t target) {
  double top = -INFINITY;
  for (int64_t i = 0; i < count; ++i)
    top = std::max(top, logits.data[offset + i]);
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i)
    total += std::exp(logits.data[offset + i] - top);
  return std::exp(logits.data[offset + target] - top) / total;
}

/// The held-out set of a bundled model directory.
namespace {
struct Heldout {
  ref::Array inputs;             // [N, L] ids or [N, 3, H, W] images
  std::vector<int64_t> labels;   // target token id / class
  std::vector<int64_t> positions; // text: the planted key word
  /// text: every relevant position of each example (the key word for the
  /// bundled sets, the mask's non-zero entries for --eval-relevant).
  std::vector<std::vector<int64_t>> relevant;
  ref::Array masks;              // image: [N, H, W]
};
} // namespace

/// Fills `set`'s relevant positions (and the first of each as its
/// position) from a [N, L] mask of `set`'s inputs; `file` and `inputs` name
/// the files in errors.
static llvm::Error readRelevantMask(Heldout &set, const ref::Array &mask,
                                    StringRef file, StringRef inputs) {
  int64_t n = set.inputs.shape[0], len = set.inputs.shape[1];
  if (mask.rank() != 2 || mask.shape[0] != n || mask.shape[1] != len)
    return llvm::createStringError(
        llvm::formatv("{0}: expected a relevance mask [{1}, {2}] matching {3}",
                      file, n, len, inputs)
            .str());
  set.positions.clear();
  set.relevant.clear();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> positions;
    for (int64_t t = 0; t < len; ++t)
      if (mask.data[i * len + t] != 0.0)
        positions.push_back(t);
    if (positions.empty())
      return llvm::createStringError(
          llvm::formatv("{0}: example {1} has no relevant token", file, i)
              .str());
    set.positions.push_back(positions.front());
    set.relevant.push_back(std::move(positions));
  }
  return llvm::Error::success();
}

/// The user's labelled examples (--eval-inputs, --eval-labels,
/// --eval-relevant), checked against each other and the model's input kind.
static Expected<Heldout> readUserExamples(const Model &model) {
  if (evalLabels.empty() || evalRelevant.empty())
    return llvm::createStringError(
        "--eval-inputs needs --eval-labels and --eval-relevant");
  Heldout set;
  auto inputs = rt::readInputNpy(evalInputs);
  if (!inputs)
    return inputs.takeError();
  set.inputs = ref::fromRunArray(*inputs);
  int64_t rank = set.inputs.rank();
  if (rank != (model.imageInput ? 4 : 2))
    return llvm::createStringError(llvm::formatv(
        "{0}: expected {1}, got shape {2}", evalInputs,
        model.imageInput ? "images [N, 3, H, W]" : "token ids [N, L]",
        llvm::join(llvm::map_range(set.inputs.shape,
                                   [](int64_t d) { return std::to_string(d); }),
                   "x")));
  auto labels = rt::readNpyI64(evalLabels);
  if (!labels)
    return labels.takeError();
  set.labels = labels->data;
  auto truth = rt::readInputNpy(evalRelevant);
  if (!truth)
    return truth.takeError();
  ref::Array relevant = ref::fromRunArray(*truth);
  int64_t n = set.inputs.shape[0];
  if (static_cast<int64_t>(set.labels.size()) != n)
    return llvm::createStringError(
        llvm::formatv("{0} holds {1} labels for the {2} examples of {3}",
                      evalLabels, set.labels.size(), n, evalInputs));
  if (model.imageInput) {
    if (relevant.rank() != 3 || relevant.shape[0] != n ||
        relevant.shape[1] != set.inputs.shape[2] ||
        relevant.shape[2] != set.inputs.shape[3])
      return llvm::createStringError(
          evalRelevant + ": expected masks [N, H, W] matching " + evalInputs);
    set.masks = std::move(relevant);
    return set;
  }
  if (llvm::Error e = readRelevantMask(set, relevant, evalRelevant, evalInputs))
    return std::move(e);
  return set;
}

static Expected<Heldout> readHeldout(const Model &model) {
  if (!evalInputs.empty())
    return readUserExamples(model);
  if (model.directory.empty())
    return llvm::createStringError(
        "held-out examples need a bundled model directory (models/...)");
  auto file = [&](StringRef name) {
    SmallString<128> path(model.directory);
    llvm::sys::path::append(path, name);
    return std::string(path);
  };
  Heldout set;
  auto inputs = rt::readInputNpy(
      file(model.imageInput ? "heldout_images.npy" : "heldout_ids.npy"));
  if (!inputs)
    return inputs.takeError();
  set.inputs = ref::fromRunArray(*inputs);
  auto labels = rt::readNpyI64(file("heldout_labels.npy"));
  if (!labels)
    return labels.takeError();
  set.labels = labels->data;
  if (model.imageInput) {
    auto masks = rt::readInputNpy(file("heldout_masks.npy"));
    if (!masks)
      return masks.takeError();
    set.masks = ref::fromRunArray(*masks);
  } else {
    auto positions = rt::readNpyI64(file("heldout_positions.npy"));
    if (!positions)
      return positions.takeError();
    set.positions = positions->data;
    for (int64_t p : set.positions)
      set.relevant.push_back({p});
    // Tasks with several relevant tokens store them as a mask.
    std::string maskFile = file("heldout_relevant.npy");
    if (llvm::sys::fs::exists(maskFile)) {
      auto mask = rt::readInputNpy(maskFile);
      if (!mask)
        return mask.takeError();
      if (llvm::Error e = readRelevantMask(set, ref::fromRunArray(*mask),
                                           maskFile, file("heldout_ids.npy")))
        return std::move(e);
    }
  }
  int64_t n = set.inputs.shape[0];
  if (static_cast<int64_t>(set.labels.size()) != n ||
      (!model.imageInput && static_cast<int64_t>(set.positions.size()) != n) ||
      (model.imageInput && set.masks.shape[0] != n))
    return llvm::createStringError(model.directory +
                                   ": held-out files disagree on the number "
                                   "of examples");
  return set;
}

/// Row `index` of a batch array [N, ...] as a batch of one.
static ref::Array example(const ref::Array &batch, int64_t index) {
  ref::Array one;
  one.shape = batch.shape;
  one.shape[0] = 1;
  int64_t per = batch.numElements() / batch.shape[0];
  one.data.assign(batch.data.begin() + index * per,
                  batch.data.begin() + (index + 1) * per);
  return one;
}

/// Image models: token index of patch p (the CLS token sits at `cls`).
static int64_t tokenOfPatch(int64_t patch, std::optional<int64_t> cls) {
  return cls && patch >= *cls ? patch + 1 : patch;
}

/// The positions an explanation ranks: every token but BOS and the explained
/// position (text), or every patch token (images).
static std::vector<int64_t> candidatePositions(const Model &model,
                                               int64_t len, int64_t position) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < len; ++t) {
    if (model.imageInput ? (model.readout && t == *model.readout)
                         : (t == 0 || t == position))
      continue;
    out.push_back(t);
  }
  return out;
}

/// Relevance per patch (row-major grid) from relevance per token.
static std::vector<double> patchRelevance(const Model &model,
                                          ArrayRef<double> tokens,
                                          int64_t patches) {
  std::vector<double> out(patches);
  for (int64_t p = 0; p < patches; ++p)
    out[p] = tokens[tokenOfPatch(p, model.readout)];
  return out;
}

//===----------------------------------------------------------------------===//
// glint-explain: one input
//===----------------------------------------------------------------------===//

namespace {
/// The input explained (a batch of one), the vocabulary that names its
/// tokens, and with --heldout the held-out set it comes from.
struct ExplainInput {
  ref::Array input;
  std::optional<rt::Vocabulary> vocab;
  /// A tokenizer other than a word-level vocab.json, for --text and names.
  std::shared_ptr<mlir::glint::text::Tokenizer> tokenizer;
  std::optional<Heldout> truth;
  /// How a picture input was normalised, to show it as the picture it was.
  std::optional<ex::ImagePreprocessing> picture;
};
} // namespace

/// A PNG or JPEG picture as the image model reads it: resized to its input
/// size, centre-cropped and normalised as its preprocessing (returned in
/// `used`) says.
static Expected<ref::Array> readPicture(const Model &model, StringRef path,
                                        ex::ImagePreprocessing &used) {
  if (!model.imageInput)
    return llvm::createStringError(
        path + ": a picture is input for an image model; this model reads "
               "token ids");
  if (model.imageHeight <= 0 || model.imageHeight != model.imageWidth)
    return llvm::createStringError(llvm::formatv(
        "{0}: the model's input is {1}x{2}; pictures are resized to a "
        "square of static size only",
        path, model.imageHeight, model.imageWidth));
  auto picture = ex::readImageFile(path);
  if (!picture)
    return picture.takeError();
  auto preprocessing =
      ex::readImagePreprocessing(model.directory, model.imageHeight);
  if (!preprocessing)
    return preprocessing.takeError();
  ref::Array input(
      ArrayRef<int64_t>{1, 3, model.imageHeight, model.imageWidth});
  std::vector<float> pixels = ex::preprocessImage(*picture, *preprocessing);
  input.data.assign(pixels.begin(), pixels.end());
  used = *preprocessing;
  return input;
}

/// Reads the one input that --tokens, --text, --input or --heldout gives and
/// the vocabulary (--vocab, or the model directory's vocab.json), and checks
/// that the input is one example of the kind the model reads, all finite.
static Expected<ExplainInput> readExplainInput(const Model &model) {
  ExplainInput result;
  ref::Array &input = result.input;
  std::optional<rt::Vocabulary> &vocab = result.vocab;
  std::string vocabFile = vocabPath;
  if (vocabFile.empty() && !model.directory.empty()) {
    SmallString<128> path(model.directory);
    llvm::sys::path::append(path, "vocab.json");
    if (llvm::sys::fs::exists(path))
      vocabFile = std::string(path);
  }
  int sources = !tokensOpt.empty() + (textOpt.getNumOccurrences() > 0) +
                !inputNpy.empty() + (heldout >= 0);
  if (sources != 1)
    return llvm::createStringError("give exactly one input: --tokens, --text, "
                                   "--input or --heldout");
  // A tokenizer other than a word-level vocab.json: --vocab, or the model
  // directory's (needed for --text, else only to name the tokens).
  namespace tx = mlir::glint::text;
  if (!vocabPath.empty() || !model.directory.empty()) {
    auto tokenizer = !vocabPath.empty()
                         ? tx::Tokenizer::open(vocabPath)
                         : tx::Tokenizer::fromDirectory(model.directory);
    if (!tokenizer && textOpt.getNumOccurrences() &&
        (!vocabPath.empty() || vocabFile.empty()))
      return llvm::createStringError("--text: " +
                                     llvm::toString(tokenizer.takeError()));
    if (!tokenizer)
      llvm::consumeError(tokenizer.takeError());
    else if (!(*tokenizer)->isWordLevel())
      result.tokenizer = std::move(*tokenizer);
  }
  if (result.tokenizer && textOpt.getNumOccurrences()) {
    auto ids = result.tokenizer->encodePrompt(textOpt);
    if (!ids)
      return llvm::createStringError("--text: " +
                                     llvm::toString(ids.takeError()));
    rt::RunArray run;
    run.shape = {1, static_cast<int64_t>(ids->size())};
    run.data.assign(ids->begin(), ids->end());
    input = ref::fromRunArray(run);
  } else if (textOpt.getNumOccurrences() && textOpt.empty()) {
    return llvm::createStringError("--text: the prompt is empty");
  } else if (heldout >= 0) {
    auto set = readHeldout(model);
    if (!set)
      return set.takeError();
    if (heldout >= set->inputs.shape[0])
      return llvm::createStringError(
          llvm::formatv("--heldout {0} is out of range: {1} has {2} "
                        "held-out examples",
                        heldout, model.directory, set->inputs.shape[0]));
    input = example(set->inputs, heldout);
    result.truth = std::move(*set);
    if (!vocabFile.empty() && !result.tokenizer) {
      auto v = rt::readVocabulary(vocabFile);
      if (!v)
        return v.takeError();
      vocab = std::move(*v);
    }
  } else if (ex::isPictureFile(inputNpy)) {
    ex::ImagePreprocessing used;
    auto picture = readPicture(model, inputNpy, used);
    if (!picture)
      return picture.takeError();
    input = std::move(*picture);
    result.picture = used;
  } else {
    auto run = rt::readRunInput(tokensOpt, textOpt,
                                result.tokenizer  ? StringRef()
                                : textOpt.empty() ? StringRef(vocabPath)
                                                  : StringRef(vocabFile),
                                inputNpy);
    if (!run)
      return run.takeError();
    input = ref::fromRunArray(run->array);
    vocab = std::move(run->vocab);
    if (!vocab && !vocabFile.empty() && !result.tokenizer) {
      auto v = rt::readVocabulary(vocabFile);
      if (!v)
        return v.takeError();
      vocab = std::move(*v);
    }
  }
  if (input.shape.empty() || input.shape[0] != 1)
    return llvm::createStringError(
        llvm::formatv("glint-explain explains one input at a time; "
                      "got a batch of {0}",
                      input.shape.empty() ? 0 : input.shape[0]));
  if (model.imageInput != (input.rank() == 4))
    return llvm::createStringError(
        model.imageInput ? "the model reads images [1, 3, H, W]; give --input "
                           "image.npy or --heldout"
                         : "the model reads token ids; give --tokens, --text, "
                           "--input ids.npy or --heldout");
  for (double x : input.data)
    if (!std::isfinite(x))
      return llvm::createStringError(
          "the input holds a non-finite value (NaN or infinity)");
  return result;
}

namespace {
/// What is explained: an output position and a class / token there.
struct ExplainedOutput {
  int64_t position;
  /// The output's classes (or vocabulary), and where the explained
  /// position's logits start.
  int64_t classes, offset;
  int64_t target;
  /// The layer whose raw map is shown (--layer, else the last).
  int64_t rawLayer;
};
} // namespace

/// Chooses the explained position (--position, else the position the result
/// reads, else the last) and target (--target, else the prediction there),
/// and checks --layer and --start-layer against the model's `layers`.
static Expected<ExplainedOutput> chooseTarget(const Model &model,
                                              const ref::Array &logits,
                                              int64_t len, int64_t layers) {
  int64_t position = positionOpt != INT_MIN ? positionOpt
                     : model.readout        ? *model.readout
                                            : len - 1;
  if (position < 0)
    position += len;
  if (position < 0 || position >= len)
    return llvm::createStringError(
        llvm::formatv("--position {0} is out of range for {1} tokens",
                      static_cast<int>(positionOpt), len));
  bool perPosition = logits.rank() == 3;
  int64_t classes = logits.shape.back();
  int64_t offset = perPosition ? position * classes : 0;
  int64_t predicted = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (logits.data[offset + c] > logits.data[offset + predicted])
      predicted = c;
  int64_t target = targetOpt >= 0 ? targetOpt : predicted;
  if (target >= classes)
    return llvm::createStringError(
        llvm::formatv("--target {0} is out of range: the model has "
                      "{1} outputs",
                      target, classes));
  if (layerOpt >= layers || layerOpt < -1)
    return llvm::createStringError(
        llvm::formatv("--layer {0} is out of range: the model has {1} "
                      "token-mixing layers",
                      static_cast<int>(layerOpt), layers));
  int64_t rawLayer = layerOpt >= 0 ? layerOpt : layers - 1;
  if (startLayer >= layers)
    return llvm::createStringError(
        llvm::formatv("--start-layer {0} is out of range: the model "
                      "has {1} token-mixing layers",
                      static_cast<unsigned>(startLayer), layers));
  return ExplainedOutput{position, classes, offset, target, rawLayer};
}

/// The rollout relevance row of the scan-only formulation, to show beside
/// the chosen one; none when that is scan-only or the model is a library
/// (which computes only its own formulation).
static Expected<std::optional<std::vector<double>>>
scanOnlyRelevance(Model &model, const ref::Array &input, int64_t len,
                  int64_t position) {
  StringRef scanOnlyName =
      glint::stringifyFormulation(glint::Formulation::scan_only);
  if (formulationOpt == scanOnlyName || model.compiled)
    return std::nullopt;
  auto scanOnly = explainBatch(model, scanOnlyName, aggregateOpt, input);
  if (!scanOnly)
    return scanOnly.takeError();
  auto scanRolled = ex::rollout(layerMaps(*scanOnly, 0), len, startLayer);
  if (!scanRolled)
    return scanRolled.takeError();
  auto row = ex::relevanceRow(*scanRolled, len, position);
  if (!row)
    return row.takeError();
  return std::optional<std::vector<double>>(std::move(*row));
}

namespace {
/// The files of one explanation, written into a fresh directory (-o): on
/// failure everything written is removed, so nothing looks complete that is
/// not.
struct OutputFiles {
  std::vector<std::string> written;

  /// The path of `name` in the directory, recorded as written.
  std::string file(StringRef name) {
    SmallString<128> path(outDir);
    llvm::sys::path::append(path, name);
    written.push_back(std::string(path));
    return written.back();
  }
  /// Removes every file written and fails with `error`.
  int abort(llvm::Error error) {
    for (const std::string &path : written)
      llvm::sys::fs::remove(path);
    return fail(llvm::toString(std::move(error)));
  }
};
} // namespace

namespace {
/// The relevance an explanation shows: every layer's [len, len] map, their
/// rollout, the explained position's rows of the raw map (--layer) and of
/// the rollout, and the scan-only rollout row for comparison.
struct Relevance {
  std::vector<std::vector<double>> maps;
  std::vector<double> rolled, rawRow, rollRow;
  std::optional<std::vector<double>> scanOnlyRow;
};

/// One method's relevance row beside rollout and raw attention.
struct MethodRow {
  std::string method, title, note;
  std::vector<double> relevance;
};

/// One input's explanation: what the report, summary.json and the answer on
/// stdout are made of.
struct Explanation {
  ExplainInput read;
  Explained explained;
  /// The input's tokens (or patches) and the token-mixing layers.
  int64_t len, layers;
  ExplainedOutput output;
  Relevance relevance;
  std::string targetName;
  double targetProbability;
  /// The gradient-based methods' rows (attribution, input x gradient,
  /// integrated gradients).
  std::vector<MethodRow> gradientRows;
};
} // namespace

/// Whether the input's names are whole words (a vocab.json's, patches,
/// bare ids) rather than a tokenizer's pieces that carry their own spaces.
static bool wordTokens(const Explanation &explanation) {
  return explanation.read.input.rank() == 4 || !explanation.read.tokenizer;
}

/// The colour bar's caption for a layer map of `aggregate`.
static std::string mapValueName(StringRef aggregate) {
  if (aggregate == "mean_abs")
    return "mean |A| over channels";
  if (aggregate == "mean")
    return "mean A over channels";
  return (aggregate + " of A over channels").str();
}

/// A map's colours: viridis from its smallest value, or blue-white-red
/// about 0 where it has negative values (the signed aggregates).
static ex::ColorMap mapColors(ArrayRef<double> map) {
  return llvm::any_of(map, [](double v) { return v < 0.0; })
             ? ex::ColorMap::Diverging
             : ex::ColorMap::Viridis;
}

/// Writes the figure `png` as `name` in the output directory and returns
/// its bytes.
static Expected<std::string> writeFigure(OutputFiles &outputs, StringRef name,
                                         Expected<std::string> png) {
  if (!png)
    return png.takeError();
  if (llvm::Error e = ex::writeFileAtomically(outputs.file(name), *png))
    return std::move(e);
  return std::move(*png);
}

/// Writes every layer's map (layer<l>.npy and a labelled layer<l>.png), the
/// layers as small multiples (layers.png), the rollout (rollout.npy and
/// rollout.png, its explained row as bars) and the two relevance rows; adds
/// the rollout, the raw layer's map and the layers to the report, and
/// returns the layers' entries of summary.json.
static Expected<llvm::json::Array> writeMaps(OutputFiles &outputs,
                                             const Explanation &explanation,
                                             ArrayRef<std::string> names,
                                             ex::ReportData &report) {
  const Explained &explained = explanation.explained;
  const Relevance &relevance = explanation.relevance;
  const ExplainedOutput &output = explanation.output;
  int64_t len = explanation.len, layers = explained.maps.size();
  std::string rawBytes;
  llvm::json::Array layerJson;
  for (int64_t l = 0; l < layers; ++l) {
    std::string npy = outputs.file(llvm::formatv("layer{0}.npy", l).str());
    if (llvm::Error e = rt::writeNpy(npy, {len, len}, relevance.maps[l]))
      return std::move(e);
    ex::MapFigure figure;
    figure.title =
        llvm::formatv("layer {0}: implicit attention ({1})", l, formulationOpt)
            .str();
    figure.subtitle = explained.labels[l];
    figure.values = relevance.maps[l];
    figure.size = len;
    figure.labels = names;
    figure.markSpaces = !wordTokens(explanation);
    figure.markedRow = output.position;
    figure.colorMap = mapColors(figure.values);
    figure.valueName = mapValueName(aggregateOpt);
    std::string name = llvm::formatv("layer{0}.png", l).str();
    auto png = writeFigure(outputs, name, ex::encodeMapFigurePng(figure));
    if (!png)
      return png.takeError();
    if (l == output.rawLayer)
      rawBytes = std::move(*png);
    layerJson.push_back(
        llvm::json::Object{{"index", l},
                           {"label", explained.labels[l]},
                           {"map", llvm::sys::path::filename(npy).str()},
                           {"png", name}});
  }

  ex::MapGrid grid;
  grid.title =
      llvm::formatv("{0} token-mixing layers ({1})", layers, formulationOpt)
          .str();
  for (int64_t l = 0; l < layers; ++l)
    grid.panelTitles.push_back(llvm::formatv("layer {0}", l).str());
  grid.maps = relevance.maps;
  grid.size = len;
  grid.markedRow = output.position;
  bool signedMaps = llvm::any_of(grid.maps, [](const std::vector<double> &m) {
    return mapColors(m) == ex::ColorMap::Diverging;
  });
  grid.colorMap = signedMaps ? ex::ColorMap::Diverging : ex::ColorMap::Viridis;
  auto gridBytes =
      writeFigure(outputs, "layers.png", ex::encodeMapGridPng(grid));
  if (!gridBytes)
    return gridBytes.takeError();

  if (llvm::Error e = rt::writeNpy(outputs.file("rollout.npy"), {len, len},
                                   relevance.rolled))
    return std::move(e);
  ex::MapFigure rolloutFigure;
  rolloutFigure.title = llvm::formatv("attention rollout, layers {0}-{1} ({2})",
                                      static_cast<unsigned>(startLayer),
                                      layers - 1, formulationOpt)
                            .str();
  rolloutFigure.subtitle =
      "diagonal (each position on itself, with the residual identity) in "
      "grey, outside the colour range";
  rolloutFigure.values = relevance.rolled;
  rolloutFigure.size = len;
  rolloutFigure.labels = names;
  rolloutFigure.markSpaces = !wordTokens(explanation);
  rolloutFigure.markedRow = output.position;
  rolloutFigure.valueName = "rolled-out attention";
  rolloutFigure.hideDiagonal = true;
  rolloutFigure.rowBars = true;
  auto rolloutBytes = writeFigure(outputs, "rollout.png",
                                  ex::encodeMapFigurePng(rolloutFigure));
  if (!rolloutBytes)
    return rolloutBytes.takeError();
  report.images.insert(
      report.images.begin(),
      {ex::ReportImage{"attention rollout: row " +
                           std::to_string(output.position) +
                           " (outlined, and as bars underneath) is the "
                           "explained output",
                       std::move(*rolloutBytes)},
       ex::ReportImage{llvm::formatv("layer {0} ({1}): the map behind the "
                                     "raw-attention row",
                                     output.rawLayer,
                                     explained.labels[output.rawLayer])
                           .str(),
                       std::move(rawBytes)},
       ex::ReportImage{"every token-mixing layer", std::move(*gridBytes)}});
  if (llvm::Error e = rt::writeNpy(outputs.file("relevance_raw.npy"), {len},
                                   relevance.rawRow))
    return std::move(e);
  if (llvm::Error e = rt::writeNpy(outputs.file("relevance_rollout.npy"), {len},
                                   relevance.rollRow))
    return std::move(e);
  return layerJson;
}

/// The `count` most probable outputs at the explained position, most
/// probable first.
static std::vector<int64_t> mostProbable(const Explanation &explanation,
                                         size_t count) {
  const ExplainedOutput &output = explanation.output;
  const ref::Array &logits = explanation.explained.logits;
  std::vector<int64_t> ids(output.classes);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) {
    return logits.data[output.offset + a] > logits.data[output.offset + b];
  });
  ids.resize(std::min(count, ids.size()));
  return ids;
}

/// The name of class `id`: config.json's id2label, else "class <id>".
static std::string className(const Model &model, int64_t id) {
  auto it = model.classNames.find(id);
  if (it == model.classNames.end())
    return llvm::formatv("class {0}", id).str();
  return llvm::formatv("{0} (class {1})", it->second, id).str();
}

/// Image models: the relevance of each patch laid over the image
/// (overlay_rollout.png, overlay_raw.png) and the figure of the image
/// beside both (explanation.png: the object outlined when the ground truth
/// is known, the five most probable classes underneath), added to the
/// report.
static llvm::Error writeOverlays(OutputFiles &outputs, const Model &model,
                                 const Explanation &explanation,
                                 ex::ReportData &report) {
  const ref::Array &input = explanation.read.input;
  int64_t len = explanation.len;
  int64_t height = input.shape[2], width = input.shape[3];
  int64_t patches = len - (model.readout ? 1 : 0);
  int64_t grid = static_cast<int64_t>(std::lround(std::sqrt(patches)));
  if (grid * grid != patches || height % grid != 0 || height != width)
    return llvm::createStringError(
        llvm::formatv("cannot lay {0} patch tokens over a {1}x{2} image",
                      patches, height, width));
  std::vector<float> image(input.data.begin(), input.data.end());
  ex::ImageFigure figure;
  figure.image = image;
  // A picture is shown as it was (resized and cropped), not normalised.
  if (const std::optional<ex::ImagePreprocessing> &picture =
          explanation.read.picture) {
    int64_t pixels = height * width;
    for (int64_t i = 0; i < 3 * pixels; ++i)
      figure.image[i] = float(image[i] * picture->std[i / pixels] +
                              picture->mean[i / pixels]);
    figure.inUnitRange = true;
  }
  figure.height = height;
  figure.width = width;
  const Relevance &relevance = explanation.relevance;
  std::string rawTitle =
      llvm::formatv("raw attention, layer {0}", explanation.output.rawLayer)
          .str();
  // original | raw | rollout | each gradient method (attribution, input x
  // gradient, integrated gradients), as their rows were computed.
  std::vector<std::tuple<std::string, std::string, const std::vector<double> *>>
      shown = {{"overlay_raw.png", rawTitle, &relevance.rawRow},
               {"overlay_rollout.png", "rollout", &relevance.rollRow}};
  for (const MethodRow &row : explanation.gradientRows)
    shown.push_back({"overlay_" + row.method + ".png",
                     StringRef(row.title).starts_with("integrated gradients")
                         ? std::string("integrated gradients")
                         : row.title,
                     &row.relevance});
  for (const auto &[name, title, row] : shown) {
    auto pixels =
        ex::upsamplePatches(patchRelevance(model, *row, patches), grid, grid,
                            height / grid, ex::Upsampling::Bilinear);
    if (!pixels)
      return pixels.takeError();
    figure.panels.push_back({title, *pixels});
    auto png = ex::encodeOverlayPng(image, *pixels, height, width);
    if (!png)
      return png.takeError();
    if (llvm::Error e = ex::writeFileAtomically(outputs.file(name), *png))
      return e;
  }
  const std::optional<Heldout> &truth = explanation.read.truth;
  if (truth) {
    int64_t perMask = height * width;
    figure.mask.assign(truth->masks.data.begin() + heldout * perMask,
                       truth->masks.data.begin() + (heldout + 1) * perMask);
  }
  const ExplainedOutput &output = explanation.output;
  const ref::Array &logits = explanation.explained.logits;
  figure.title = llvm::formatv("{0}: explaining {1}", model.name,
                               className(model, output.target))
                     .str();
  figure.notes.push_back("most probable classes:");
  for (auto [k, id] : llvm::enumerate(mostProbable(explanation, 5)))
    figure.notes.push_back(
        llvm::formatv("  {0}. {1,-24} p = {2:F3}", k + 1, className(model, id),
                      probability(logits, output.offset, output.classes, id)));
  if (truth)
    figure.notes.push_back("true class: " +
                           className(model, truth->labels[heldout]));
  auto png =
      writeFigure(outputs, "explanation.png", ex::encodeImageFigurePng(figure));
  if (!png)
    return png.takeError();
  report.images.insert(
      report.images.begin(),
      ex::ReportImage{"the image and each method's relevance, upsampled "
                      "bilinearly from the patches" +
                          std::string(truth ? "; the object outlined" : ""),
                      std::move(*png)});
  return llvm::Error::success();
}

/// Rolls out `explained`'s maps from --start-layer and reads the rows of
/// the explained position.
static Expected<Relevance> computeRelevance(Model &model,
                                            const ref::Array &input,
                                            const Explained &explained,
                                            int64_t len,
                                            const ExplainedOutput &output) {
  Relevance result;
  result.maps = layerMaps(explained, 0);
  auto rolled = ex::rollout(result.maps, len, startLayer);
  if (!rolled)
    return rolled.takeError();
  auto rawRow =
      ex::relevanceRow(result.maps[output.rawLayer], len, output.position);
  auto rollRow = ex::relevanceRow(*rolled, len, output.position);
  if (!rawRow || !rollRow) {
    llvm::consumeError(rawRow.takeError());
    llvm::consumeError(rollRow.takeError());
    return llvm::createStringError("cannot read the relevance row");
  }
  auto scanOnly = scanOnlyRelevance(model, input, len, output.position);
  if (!scanOnly)
    return scanOnly.takeError();
  result.rolled = std::move(*rolled);
  result.rawRow = std::move(*rawRow);
  result.rollRow = std::move(*rollRow);
  result.scanOnlyRow = std::move(*scanOnly);
  return result;
}

//===----------------------------------------------------------------------===//
// Gradient-based methods
//===----------------------------------------------------------------------===//

namespace {
/// The explanation methods, named as Captum names them where it has them.
constexpr StringLiteral kRollout = "rollout", kRaw = "raw_attention",
                        kAttribution = "attribution",
                        kInputXGradient = "input_x_gradient",
                        kIntegratedGradients = "integrated_gradients";

/// A model's @forward as a function of its embeddings (the token lookup, or
/// an image model's patch embeddings, replaced by an argument after the ids
/// or pixels), with its gradient function.
struct EmbeddingGradient {
  OwningOpRef<ModuleOp> module;
  /// The module as printed before differentiation: what glint-compile --grad
  /// compiles (the same text for every input, so one library serves all).
  std::string forwardText;
  ref::Array embeddings; // of the input, [B, L, D]
  ref::Array table;      // the lookup's table, [vocab, D]; none for images
  /// Images: the embeddings of the all-zero (normalised) picture.
  ref::Array meanImage;
  int64_t layers = 0;
  std::vector<std::string> labels; // of the layers, in order
};
} // namespace

static bool methodWanted(StringRef name) {
  return methodsOpt.empty() || llvm::is_contained(methodsOpt, name);
}

/// Runs the diagnostics of `body` into an error with `what` in front.
static llvm::Error withDiagnostics(MLIRContext *context, StringRef what,
                                   function_ref<LogicalResult()> body) {
  std::string diagnostics;
  ScopedDiagnosticHandler handler(context, [&](Diagnostic &d) {
    llvm::raw_string_ostream os(diagnostics);
    os << d.getLocation() << ": " << d << "\n";
    return success();
  });
  if (failed(body()))
    return llvm::createStringError(what + ":\n" + diagnostics);
  return llvm::Error::success();
}

/// Builds the embeddings-input gradient function of a model and the
/// embeddings of `input`: for a token model, the lookup's result (read from
/// the table the lookup reads); for an image model, what its layers start
/// from (evaluated from the pixels by the reference evaluator), so that the
/// gradient methods attribute to patches and the class token as positions.
static Expected<EmbeddingGradient> embeddingGradient(Model &model,
                                                     const ref::Array &input) {
  EmbeddingGradient result;
  result.module = model.module->clone();
  auto forward = result.module->lookupSymbol<func::FuncOp>("forward");
  Value embedded = glint::findInputEmbeddings(forward);
  if (!embedded)
    return llvm::createStringError(
        model.imageInput
            ? "gradient methods need the image model's embedding output (an "
              "op traced 'hidden_states.0', as glint-import marks it)"
            : "gradient methods need a model with one embedding lookup");
  if (model.imageInput) {
    // Its value at `input`: the forward cut there, on the evaluator.
    OwningOpRef<ModuleOp> cut = result.module->clone();
    auto prefix = cut->lookupSymbol<func::FuncOp>("forward");
    Value cutAt = glint::findInputEmbeddings(prefix);
    Operation *ret = prefix.getBody().front().getTerminator();
    ret->setOperands(ValueRange{cutAt});
    prefix.setFunctionType(FunctionType::get(
        prefix.getContext(), prefix.getArgumentTypes(), {cutAt.getType()}));
    ref::ReferenceEvaluator evaluator(*cut,
                                      ref::weightsFrom(*model.checkpoint));
    auto values = evaluator.run("forward", {input});
    if (!values)
      return values.takeError();
    result.embeddings = std::move(values->front());
    auto mean = evaluator.run("forward", {ref::Array(input.shape)});
    if (!mean)
      return mean.takeError();
    result.meanImage = std::move(mean->front());
  } else {
    auto lookup = embedded.getDefiningOp<glint::EmbeddingOp>();
    auto load =
        lookup.getTable().getDefiningOp<ml_program::GlobalLoadConstOp>();
    if (!load)
      return llvm::createStringError(
          "the embedding table is not a checkpoint weight");
    auto tableType = cast<RankedTensorType>(lookup.getTable().getType());
    auto table = ref::weightsFrom(*model.checkpoint)(
        load.getGlobal().getLeafReference(), tableType.getShape());
    if (!table)
      return table.takeError();
    result.table = std::move(*table);
    int64_t width = tableType.getDimSize(1), tokens = input.numElements();
    result.embeddings =
        ref::Array(ArrayRef<int64_t>{input.shape[0], input.shape[1], width});
    for (int64_t t = 0; t < tokens; ++t)
      std::copy_n(result.table.data.begin() +
                      static_cast<int64_t>(input.data[t]) * width,
                  width, result.embeddings.data.begin() + t * width);
  }
  // The embeddings become an argument after the ids (or pixels).
  glint::embeddingsAsArgument(forward, embedded);
  {
    llvm::raw_string_ostream os(result.forwardText);
    result.module->print(os);
  }
  FailureOr<func::FuncOp> grad;
  if (llvm::Error e = withDiagnostics(
          model.context.get(), "the model has no gradient", [&] {
            grad = glint::differentiate(forward, "forward_grad");
            return success(succeeded(grad));
          }))
    return std::move(e);
  for (Attribute label : (*grad)->getAttrOfType<ArrayAttr>(
           glint::GlintDialect::kGradientLayersAttrName))
    result.labels.push_back(cast<StringAttr>(label).str());
  result.layers = result.labels.size();
  return result;
}

/// The seed that selects the explained score: the target's logit at the
/// explained position.
static ref::Array scoreSeed(const ref::Array &logits,
                            const ExplainedOutput &output) {
  ref::Array seed(logits.shape);
  seed.data[output.offset + output.target] = 1.0;
  return seed;
}

/// The gradient function's results at `embeddings`: the logits, each layer's
/// output cotangent, and the embeddings' cotangent.
/// Compiles `gradient`'s forward with its gradient entry (glint-compile
/// --grad, through the compile cache) and binds the checkpoint's weights,
/// once per run; says on stderr which library it uses.
static llvm::Error loadCompiledGradient(Model &model,
                                        const EmbeddingGradient &gradient) {
  if (model.compiledGradient)
    return llvm::Error::success();
  llvm::SmallString<128> path;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
          "glint-explain-gradient", "mlir", path))
    return llvm::createStringError("cannot create a temporary file: " +
                                   ec.message());
  llvm::FileRemover remove(path);
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec)
      return llvm::createStringError(path + ": " + ec.message());
    os << gradient.forwardText;
  }
  auto library = rt::compileInCache(selfPath, path, {"--grad"}, cacheDir,
                                    "the compiled gradient");
  if (!library)
    return library.takeError();
  auto compiled = rt::CompiledModel::load(library->path);
  if (!compiled)
    return compiled.takeError();
  if (llvm::Error e = (*compiled)->bindWeights(*model.checkpoint))
    return e;
  if (!(*compiled)->hasGradient())
    return llvm::createStringError(library->path + " has no gradient entry");
  model.compiledGradient = std::move(*compiled);
  model.compiledGradientPath = library->path;
  llvm::errs() << "glint-explain: gradient methods use the compiled gradient "
                  "(float32; "
               << (library->cached ? "from the compile cache: "
                                   : "compiled into the compile cache: ")
               << library->path
               << "); --reference-gradient uses the reference evaluator\n";
  return llvm::Error::success();
}

static Expected<std::vector<ref::Array>>
runGradient(Model &model, const EmbeddingGradient &gradient,
            const ref::Array &ids, const ref::Array &embeddings,
            const ref::Array &seed, StringRef barLabel = {}) {
  Expected<std::vector<ref::Array>> results = std::vector<ref::Array>();
  if (!referenceGradient) {
    if (llvm::Error e = loadCompiledGradient(model, gradient))
      return std::move(e);
    const rt::EntryInfo &entry = *model.compiledGradient->info().gradient;
    std::vector<rt::HostArray> args;
    const ref::Array *arrays[] = {&ids, &embeddings, &seed};
    for (auto [i, array] : llvm::enumerate(arrays)) {
      const std::string &dtype =
          entry.inputs.size() > i ? entry.inputs[i].dtype : std::string("f32");
      args.push_back(rt::toHostArray(
          ref::toRunArray(*array, dtype == "i64" || dtype == "i32"), dtype));
    }
    auto outs = model.compiledGradient->runGradient(args);
    if (!outs)
      return outs.takeError();
    results->clear();
    for (const rt::HostArray &out : *outs)
      results->push_back(ref::fromRunArray(rt::fromHostArray(out)));
  } else {
    ref::ReferenceEvaluator evaluator(*gradient.module,
                                      ref::weightsFrom(*model.checkpoint));
    if (!barLabel.empty())
      watchEvaluator(evaluator, barLabel);
    results = evaluator.run("forward_grad", {ids, embeddings, seed});
  }
  if (!results)
    return results.takeError();
  // Name the first non-finite cotangent: a layer's output (deepest first is
  // where it appears, since the sweep runs from the output) or the input.
  const std::vector<std::string> &labels = gradient.labels;
  size_t first = results->size() - labels.size() - 1;
  for (size_t k = results->size(); k-- > first;) {
    const ref::Array &r = (*results)[k];
    for (size_t i = 0; i < r.data.size(); ++i)
      if (!std::isfinite(r.data[i])) {
        std::string where = k < first + labels.size()
                                ? "the output of layer " + labels[k - first]
                                : std::string("the input embeddings");
        return llvm::createStringError(llvm::formatv(
            "the gradient of the explained score is {0} at element {1} of "
            "the cotangent of {2}",
            r.data[i], i, where));
      }
  }
  return std::move(*results);
}

/// Σ_d a[i, t, d] · b[i, t, d] per position of example `i`: the token-level
/// sum of an element-wise product of [B, L, D] arrays.
static std::vector<double> perToken(const ref::Array &a, const ref::Array &b,
                                    int64_t i = 0) {
  int64_t len = a.shape[1], width = a.shape[2];
  std::vector<double> row(len, 0.0);
  for (int64_t t = 0; t < len; ++t)
    for (int64_t d = 0; d < width; ++d) {
      int64_t at = (i * len + t) * width + d;
      row[t] += a.data[at] * b.data[at];
    }
  return row;
}

/// Every layer's gradient-weighted attribution map ([B, L, L] each) in
/// `formulation`, from the layers' output cotangents.
static Expected<std::vector<ref::Array>>
attributionMaps(Model &model, StringRef formulation, const ref::Array &input,
                ArrayRef<ref::Array> layerGradients) {
  OwningOpRef<ModuleOp> attention = model.module->clone();
  PassManager pm(model.context.get());
  std::string pipeline = llvm::formatv(
      "func.func(glint-to-attention{{formulation={0} attribution=true})",
      formulation);
  if (failed(parsePassPipeline(pipeline, pm)))
    return llvm::createStringError("invalid pipeline " + pipeline);
  if (llvm::Error e = withDiagnostics(model.context.get(),
                                      "the model has no attention "
                                      "form",
                                      [&] { return pm.run(*attention); }))
    return std::move(e);
  std::vector<ref::Array> args = {input};
  llvm::append_range(args, layerGradients);
  if (!referenceGradient &&
      !model.attributionByEvaluator.count(formulation.str())) {
    // glint-compile --attention --attribution, once per formulation (through
    // the compile cache), run in float32 like the gradient itself.
    std::unique_ptr<rt::CompiledModel> &compiled =
        model.compiledAttribution[formulation.str()];
    if (!compiled) {
      // A form the loop lowering cannot take yet stays on the evaluator.
      OwningOpRef<ModuleOp> probe = attention->clone();
      PassManager lower(model.context.get());
      lower.addNestedPass<func::FuncOp>(glint::createConvertGlintMapToLoops());
      std::string why;
      LogicalResult lowered = failure();
      {
        ScopedDiagnosticHandler quiet(model.context.get(), [&](Diagnostic &d) {
          if (why.empty())
            why = d.str();
          return success();
        });
        lowered = lower.run(*probe);
      }
      if (failed(lowered)) {
        llvm::errs() << "glint-explain: attribution maps (" << formulation
                     << ") use the reference evaluator: " << why << "\n";
        model.attributionByEvaluator.insert(formulation.str());
        return attributionMaps(model, formulation, input, layerGradients);
      }
    }
    if (!compiled) {
      std::string text;
      llvm::raw_string_ostream(text) << *model.module;
      llvm::SmallString<128> path;
      if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
              "glint-explain-attribution", "mlir", path))
        return llvm::createStringError("cannot create a temporary file: " +
                                       ec.message());
      llvm::FileRemover remove(path);
      if (llvm::Error e = ex::writeFileAtomically(path.str(), text))
        return e;
      auto library =
          rt::compileInCache(selfPath, path,
                             {"--attention", "--attribution",
                              "--formulation=" + formulation.str()},
                             cacheDir, "the compiled attribution maps");
      if (!library)
        return library.takeError();
      auto loaded = rt::CompiledModel::load(library->path);
      if (!loaded)
        return loaded.takeError();
      if (llvm::Error e = (*loaded)->bindWeights(*model.checkpoint))
        return e;
      compiled = std::move(*loaded);
      llvm::errs() << "glint-explain: attribution maps (" << formulation
                   << ") use the compiled attention form (float32; "
                   << (library->cached ? "from the compile cache: "
                                       : "compiled into the compile cache: ")
                   << library->path << ")\n";
    }
    const rt::EntryInfo &entry = compiled->info();
    std::vector<rt::HostArray> hostArgs;
    for (auto [i, array] : llvm::enumerate(args)) {
      const std::string &dtype =
          entry.inputs.size() > i ? entry.inputs[i].dtype : std::string("f32");
      hostArgs.push_back(rt::toHostArray(
          ref::toRunArray(array, dtype == "i64" || dtype == "i32"), dtype));
    }
    auto outs = compiled->runAll(hostArgs);
    if (!outs)
      return outs.takeError();
    std::vector<ref::Array> maps;
    for (size_t k = 1; k < outs->size(); ++k)
      maps.push_back(ref::fromRunArray(rt::fromHostArray((*outs)[k])));
    return maps;
  }
  ref::ReferenceEvaluator evaluator(*attention,
                                    ref::weightsFrom(*model.checkpoint));
  watchEvaluator(evaluator, "attribution (reference evaluator)");
  auto results = evaluator.run("forward", args);
  if (!results)
    return results.takeError();
  results->erase(results->begin());
  return std::move(*results);
}

/// The attribution method: each layer's gradient-weighted map (the positive
/// part of A ⊙ ∂s/∂A, channel mean) rolled out with the identity, read at
/// the explained position of example `i`.
static Expected<std::vector<double>>
attributionRelevance(ArrayRef<ref::Array> maps, int64_t len, int64_t i,
                     int64_t position) {
  std::vector<std::vector<double>> layers;
  for (const ref::Array &m : maps)
    layers.push_back(std::vector<double>(m.data.begin() + i * len * len,
                                         m.data.begin() + (i + 1) * len * len));
  auto rolled = ex::rollout(layers, len, startLayer);
  if (!rolled)
    return rolled.takeError();
  return ex::relevanceRow(*rolled, len, position);
}

/// The integrated-gradients baseline: zero embeddings, or the embedding of
/// the --ig-baseline token at every position.
static Expected<ref::Array> igBaselineOf(const EmbeddingGradient &gradient) {
  ref::Array baseline(gradient.embeddings.shape);
  bool image = gradient.table.shape.empty();
  if (igBaseline == "zero" || (igBaseline == "auto" && !image))
    return baseline;
  if (igBaseline == "mean-image" || igBaseline == "auto") {
    if (!image)
      return llvm::createStringError(
          "--ig-baseline=mean-image is for image models; a token model takes "
          "'zero' or a token id");
    return gradient.meanImage;
  }
  int64_t id;
  if (StringRef(igBaseline).getAsInteger(10, id))
    return llvm::createStringError("--ig-baseline must be 'zero', "
                                   "'mean-image' or a token id (got '" +
                                   igBaseline + "')");
  if (image)
    return llvm::createStringError(
        "--ig-baseline " + igBaseline +
        " is a token id, but an image model has no tokens: use "
        "--ig-baseline=mean-image or zero");
  int64_t vocab = gradient.table.shape[0], width = gradient.table.shape[1];
  if (id < 0 || id >= vocab)
    return llvm::createStringError(
        llvm::formatv("--ig-baseline {0} is not a token id of the model "
                      "(0..{1})",
                      id, vocab - 1));
  for (int64_t t = 0; t < baseline.numElements() / width; ++t)
    std::copy_n(gradient.table.data.begin() + id * width, width,
                baseline.data.begin() + t * width);
  return baseline;
}

namespace {
/// Integrated gradients of a batch: per example, the token attributions
/// and the completeness check's two sides.
struct IntegratedGradients {
  std::vector<std::vector<double>> rows;
  std::vector<double> sums, deltas;
};
} // namespace

/// Integrated gradients from the baseline to the inputs' embeddings with
/// the midpoint rule over --ig-steps; `seed` selects each example's score.
static Expected<IntegratedGradients>
integratedGradients(Model &model, const EmbeddingGradient &gradient,
                    const ref::Array &ids, const ref::Array &seed,
                    rt::ProgressBar *progress = nullptr) {
  if (igSteps == 0)
    return llvm::createStringError("--ig-steps must be at least 1");
  auto baseline = igBaselineOf(gradient);
  if (!baseline)
    return baseline.takeError();
  ref::Array mean(baseline->shape), point(baseline->shape);
  for (unsigned k = 0; k < igSteps; ++k) {
    double alpha = (k + 0.5) / igSteps;
    for (size_t i = 0; i < point.data.size(); ++i)
      point.data[i] = baseline->data[i] +
                      alpha * (gradient.embeddings.data[i] - baseline->data[i]);
    auto results = runGradient(model, gradient, ids, point, seed);
    if (!results)
      return results.takeError();
    for (size_t i = 0; i < mean.data.size(); ++i)
      mean.data[i] += results->back().data[i] / igSteps;
    if (progress)
      progress->advance();
  }
  ref::Array difference(baseline->shape);
  for (size_t i = 0; i < difference.data.size(); ++i)
    difference.data[i] = gradient.embeddings.data[i] - baseline->data[i];
  // The scores at the input and at the baseline, per example: the
  // evaluator's forward, or the compiled gradient's logits.
  ref::ReferenceEvaluator evaluator(*gradient.module,
                                    ref::weightsFrom(*model.checkpoint));
  IntegratedGradients result;
  int64_t batch = ids.shape[0];
  int64_t perExample = seed.numElements() / batch;
  std::vector<double> scores[2];
  const ref::Array *points[] = {&gradient.embeddings, &*baseline};
  for (const ref::Array *at : points) {
    auto out = referenceGradient ? evaluator.run("forward", {ids, *at})
                                 : runGradient(model, gradient, ids, *at, seed);
    if (!out)
      return out.takeError();
    std::vector<double> &side = scores[at == &*baseline];
    for (int64_t i = 0; i < batch; ++i) {
      double score = 0.0;
      for (int64_t e = i * perExample; e < (i + 1) * perExample; ++e)
        score += seed.data[e] * (*out)[0].data[e];
      side.push_back(score);
    }
  }
  for (int64_t i = 0; i < batch; ++i) {
    result.rows.push_back(perToken(difference, mean, i));
    double total = 0.0;
    for (double v : result.rows.back())
      total += v;
    result.sums.push_back(total);
    result.deltas.push_back(scores[0][i] - scores[1][i]);
  }
  return result;
}

/// The completeness gap |Σ attributions − (s(x) − s(baseline))| relative to
/// |s(x) − s(baseline)|.
static double completenessGap(double sum, double delta) {
  return std::fabs(sum - delta) / std::max(std::fabs(delta), 1e-12);
}

/// The gradient-based rows the command line asks for (all by default) of
/// a token model given as IR; none for images and compiled libraries, which
/// have no gradient function yet (said in the report's notes).
static Expected<std::vector<MethodRow>>
gradientRows(Model &model, const ref::Array &input, const ref::Array &logits,
             int64_t len, const ExplainedOutput &output) {
  std::vector<MethodRow> rows;
  bool wanted = methodWanted(kAttribution) || methodWanted(kInputXGradient) ||
                methodWanted(kIntegratedGradients);
  if (!wanted || model.compiled) {
    if (!methodsOpt.empty() && wanted)
      return llvm::createStringError(
          "gradient methods need the model's IR (a compiled library has no "
          "gradient entry point yet)");
    return rows;
  }
  auto gradient = embeddingGradient(model, input);
  if (!gradient)
    return gradient.takeError();
  ref::Array seed = scoreSeed(logits, output);
  auto at = runGradient(model, *gradient, input, gradient->embeddings, seed,
                        "gradient (reference evaluator)");
  if (!at)
    return at.takeError();
  size_t firstLayer = 1;
  ArrayRef<ref::Array> layerGradients(at->data() + firstLayer,
                                      gradient->layers);
  const ref::Array &inputGradient = at->back();
  if (methodWanted(kAttribution)) {
    auto maps = attributionMaps(model, formulationOpt, input, layerGradients);
    if (!maps)
      return maps.takeError();
    auto row = attributionRelevance(*maps, len, 0, output.position);
    if (!row)
      return row.takeError();
    rows.push_back({std::string(kAttribution),
                    llvm::formatv("attribution ({0})", formulationOpt).str(),
                    "positive part of implicit attention x its gradient, "
                    "channel mean, rolled out",
                    std::move(*row)});
  }
  if (methodWanted(kInputXGradient))
    rows.push_back({std::string(kInputXGradient), "input x gradient",
                    "embedding . gradient of the score, per token",
                    perToken(gradient->embeddings, inputGradient)});
  if (methodWanted(kIntegratedGradients)) {
    rt::ProgressBar steps("integrated gradients (reference evaluator)", igSteps,
                          rt::ProgressBar::kQuickWorkDelay);
    auto ig = integratedGradients(model, *gradient, input, seed, &steps);
    steps.finish();
    if (!ig)
      return ig.takeError();
    rows.push_back(
        {std::string(kIntegratedGradients),
         llvm::formatv("integrated gradients ({0} steps, {1} baseline)",
                       static_cast<unsigned>(igSteps),
                       igBaseline != "auto"     ? std::string(igBaseline)
                       : model.imageInput ? std::string("mean-image")
                                          : std::string("zero"))
             .str(),
         llvm::formatv("completeness: sum {0:F4} vs s(x) - s(baseline) "
                       "{1:F4} (gap {2:P1})",
                       ig->sums[0], ig->deltas[0],
                       completenessGap(ig->sums[0], ig->deltas[0]))
             .str(),
         std::move(ig->rows[0])});
  }
  return rows;
}

/// The text of token `id`: its word in the vocabulary, else the
/// tokenizer's text of it, else the id.
static std::string tokenText(const ExplainInput &read, int64_t id) {
  const std::optional<rt::Vocabulary> &vocab = read.vocab;
  if (read.tokenizer && !vocab)
    return read.tokenizer->tokenText(id);
  if (vocab)
    if (auto it = vocab->words.find(id); it != vocab->words.end())
      return it->second;
  return std::to_string(id);
}

/// The name of every input position: each token's text, or for images
/// "patch <p>" and "[CLS]".
static std::vector<std::string> positionNames(const Model &model,
                                              const Explanation &explanation) {
  std::vector<std::string> names;
  if (model.imageInput) {
    for (int64_t t = 0; t < explanation.len; ++t)
      names.push_back(model.readout && t == *model.readout
                          ? std::string("[CLS]")
                          : llvm::formatv("patch {0}", t - (model.readout &&
                                                            t > *model.readout))
                                .str());
  } else {
    for (double id : explanation.read.input.data)
      names.push_back(tokenText(explanation.read, static_cast<int64_t>(id)));
  }
  return names;
}

/// Reads the input, computes its maps with the chosen formulation and
/// aggregate, chooses what to explain and reads its relevance.
static Expected<Explanation> computeExplanation(Model &model) {
  auto read = readExplainInput(model);
  if (!read)
    return read.takeError();
  auto explained =
      explainBatch(model, formulationOpt, aggregateOpt, read->input);
  if (!explained)
    return explained.takeError();
  int64_t layers = explained->maps.size();
  int64_t len = explained->maps[0].shape[1];
  auto output = chooseTarget(model, explained->logits, len, layers);
  if (!output)
    return output.takeError();
  auto relevance =
      computeRelevance(model, read->input, *explained, len, *output);
  if (!relevance)
    return relevance.takeError();
  std::string targetName = model.imageInput ? className(model, output->target)
                                            : tokenText(*read, output->target);
  double targetProbability = probability(explained->logits, output->offset,
                                         output->classes, output->target);
  auto rows = gradientRows(model, read->input, explained->logits, len, *output);
  if (!rows)
    return rows.takeError();
  return Explanation{std::move(*read),
                     std::move(*explained),
                     len,
                     layers,
                     *output,
                     std::move(*relevance),
                     std::move(targetName),
                     targetProbability,
                     std::move(*rows)};
}

/// Fills in the report's title, explained output, methods and metadata
/// (its images and token names are added as they are written and read).
static void fillReport(ex::ReportData &report, const Model &model,
                       const Explanation &explanation, double seconds) {
  const ExplainedOutput &output = explanation.output;
  const Relevance &relevance = explanation.relevance;
  const std::optional<Heldout> &truth = explanation.read.truth;
  report.title = "glint-explain: " + model.name;
  report.modelName = model.name;
  report.targetPosition = output.position;
  report.targetName = explanation.targetName;
  // Words of a vocab.json, patches and bare ids are shown with spaces
  // between them; a tokenizer's tokens carry their own.
  report.wordTokens = wordTokens(explanation);
  report.targetLabel = llvm::formatv("{0} (p = {1:F3})", explanation.targetName,
                                     explanation.targetProbability)
                           .str();
  if (truth && !model.imageInput)
    llvm::append_range(report.groundTruth, truth->relevant[heldout]);
  // The explained position's own entry (its self-attention, and the
  // identity the rollout adds) would dwarf the inputs' relevance: the
  // report shows the other positions, each row scaled to its largest value.
  auto shown = [&](std::vector<double> row) {
    row[output.position] = 0.0;
    return row;
  };
  if (methodWanted(kRollout))
    report.methods.push_back(
        {llvm::formatv("rollout ({0})", formulationOpt).str(),
         shown(relevance.rollRow),
         llvm::formatv("layers {0}..{1}", static_cast<unsigned>(startLayer),
                       explanation.layers - 1)
             .str()});
  if (methodWanted(kRaw))
    report.methods.push_back({llvm::formatv("raw attention, layer {0} ({1})",
                                            output.rawLayer, formulationOpt)
                                  .str(),
                              shown(relevance.rawRow),
                              explanation.explained.labels[output.rawLayer]});
  for (const MethodRow &row : explanation.gradientRows)
    report.methods.push_back({row.title, shown(row.relevance), row.note});
  if (relevance.scanOnlyRow && methodWanted(kRollout))
    report.methods.push_back({"rollout (scan-only, for comparison)",
                              shown(*relevance.scanOnlyRow),
                              "the recurrence alone, as in Ali et al. 2024"});
  const ref::Array &input = explanation.read.input;
  report.metadata = {
      {"input",
       model.imageInput
           ? llvm::formatv("image {0}x{1}", input.shape[2], input.shape[3])
                 .str()
           : llvm::formatv("{0} tokens", explanation.len).str()},
      {"formulation", formulationOpt},
      {"channel aggregate", aggregateOpt},
      {"layers", std::to_string(explanation.layers)},
      {"explained output", llvm::formatv("position {0}, {1}", output.position,
                                         explanation.targetName)
                               .str()},
      {"most probable",
       llvm::join(llvm::map_range(
                      mostProbable(explanation, 5),
                      [&](int64_t id) {
                        return llvm::formatv(
                                   "{0} {1:F3}",
                                   model.imageInput
                                       ? className(model, id)
                                       : tokenText(explanation.read, id),
                                   probability(explanation.explained.logits,
                                               output.offset, output.classes,
                                               id))
                            .str();
                      }),
                  ", ")},
      {"shading", "each row on its own scale; the explained position's own "
                  "value (its self-attention and the identity) left out"},
      {"time", llvm::formatv("{0:F2} s", seconds).str()}};
  if (truth)
    report.metadata.push_back(
        {"ground truth",
         model.imageInput ? "the object's pixels (heldout_masks.npy)"
         : truth->relevant[heldout].size() == 1
             ? llvm::formatv("key word at position {0}",
                             truth->positions[heldout])
                   .str()
             : "relevant tokens at positions " +
                   llvm::join(llvm::map_range(
                                  truth->relevant[heldout],
                                  [](int64_t p) { return std::to_string(p); }),
                              ", ")});
}

/// Writes summary.json: what was explained and the files that hold it,
/// with `layerJson` from writeMaps.
static llvm::Error writeSummary(OutputFiles &outputs, const Model &model,
                                const Explanation &explanation,
                                llvm::json::Array layerJson, double seconds) {
  const ExplainedOutput &output = explanation.output;
  const std::optional<Heldout> &truth = explanation.read.truth;
  llvm::json::Object summary{
      {"model", model.name},
      {"formulation", formulationOpt},
      {"aggregate", aggregateOpt},
      {"input_shape", llvm::json::Array(explanation.read.input.shape)},
      {"sequence_length", explanation.len},
      {"position", output.position},
      {"target", output.target},
      {"target_name", explanation.targetName},
      {"target_probability", explanation.targetProbability},
      {"layers", std::move(layerJson)},
      {"rollout",
       llvm::json::Object{{"start_layer", static_cast<int64_t>(startLayer)},
                          {"map", "rollout.npy"},
                          {"relevance", "relevance_rollout.npy"}}},
      {"raw", llvm::json::Object{{"layer", output.rawLayer},
                                 {"relevance", "relevance_raw.npy"}}},
      {"report", "report.html"},
      {"seconds", seconds}};
  llvm::json::Array methods;
  for (const MethodRow &row : explanation.gradientRows)
    methods.push_back(llvm::json::Object{
        {"method", row.method},
        {"title", row.title},
        {"note", row.note},
        {"relevance", ("relevance_" + row.method + ".npy")}});
  summary["gradient_methods"] = std::move(methods);
  if (truth && !model.imageInput) {
    summary["ground_truth_position"] = truth->positions[heldout];
    summary["ground_truth_positions"] =
        llvm::json::Array(truth->relevant[heldout]);
  }
  std::string json;
  llvm::raw_string_ostream(json)
      << llvm::formatv("{0:2}", llvm::json::Value(std::move(summary))) << "\n";
  return ex::writeFileAtomically(outputs.file("summary.json"), json);
}

/// The short answer on stdout: the explained output, the three most
/// relevant inputs by rollout, the ground truth if known, and the report.
static void printAnswer(const Model &model, const Explanation &explanation,
                        const std::vector<std::string> &names, StringRef html) {
  const ExplainedOutput &output = explanation.output;
  const std::vector<double> &rollRow = explanation.relevance.rollRow;
  const std::optional<Heldout> &truth = explanation.read.truth;
  llvm::outs() << model.name << ": explained " << explanation.targetName
               << llvm::formatv(" (p = {0:F3})", explanation.targetProbability)
               << " at position " << output.position << ", "
               << explanation.layers << " token-mixing layers, formulation "
               << formulationOpt << "\n";
  std::vector<int64_t> candidates =
      candidatePositions(model, explanation.len, output.position);
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [&](int64_t a, int64_t b) { return rollRow[a] > rollRow[b]; });
  llvm::outs() << "most relevant inputs (rollout):";
  for (size_t i = 0; i < std::min<size_t>(3, candidates.size()); ++i)
    llvm::outs() << " " << names[candidates[i]] << "@" << candidates[i]
                 << llvm::formatv(" ({0:F3})", rollRow[candidates[i]]);
  llvm::outs() << "\n";
  if (truth && !model.imageInput) {
    llvm::outs() << "ground truth:";
    for (int64_t p : truth->relevant[heldout])
      llvm::outs() << " " << names[p] << "@" << p;
    llvm::outs() << "\n";
  }
  llvm::outs() << "report: " << html << " (open it in a browser)\n";
}

/// Explains one input: writes the maps, report.html and summary.json into
/// -o (all or nothing) and prints the short answer.
/// On a terminal, when the maps come from the reference evaluator: one note
/// saying so, with the commands that make and use the compiled attention
/// form instead.
static void noteEvaluatorPath(const Model &model, bool eval) {
  if (model.compiled || !llvm::errs().is_displayed())
    return;
  StringRef weights =
      weightsPath.empty() ? StringRef(modelPath) : StringRef(weightsPath);
  std::string library = llvm::sys::path::stem(model.name).str() + "-attn.so";
  std::string compile =
      llvm::formatv("glint-compile {0} --attention "
                    "--formulation={1} --aggregate={2} -o "
                    "{3}",
                    modelPath, formulationOpt, aggregateOpt, library)
          .str();
  llvm::raw_ostream &note =
      llvm::WithColor::note(llvm::errs(), "glint-explain");
  if (eval)
    note << "eval runs the reference evaluator (double precision, slow), "
            "for every formulation and the gradient methods; to score one "
            "formulation's maps natively in float32, run `"
         << compile << "`, then `glint-explain eval " << library
         << " --weights " << weights << "`\n";
  else
    note << "the maps come from the reference evaluator (double precision, "
            "slow for long inputs); for native float32 maps, run `"
         << compile << "`, then `glint-explain " << library << " --weights "
         << weights << "` with the same input\n";
}

static int explainOne() {
  auto start = std::chrono::steady_clock::now();
  auto model = loadModel();
  if (!model)
    return fail(llvm::toString(model.takeError()));
  if (llvm::Error e = readClassNames(*model))
    return fail(llvm::toString(std::move(e)));
  adoptLibrarySettings(*model);
  noteEvaluatorPath(*model, /*eval=*/false);
  evaluatorBars = true;
  auto explanation = computeExplanation(*model);
  if (!explanation)
    return fail(llvm::toString(explanation.takeError()));

  if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
    return fail("cannot create " + outDir + ": " + ec.message());
  OutputFiles outputs;
  ex::ReportData report;
  report.tokens = positionNames(*model, *explanation);
  auto layerJson = writeMaps(outputs, *explanation, report.tokens, report);
  if (!layerJson)
    return outputs.abort(layerJson.takeError());
  for (const MethodRow &row : explanation->gradientRows)
    if (llvm::Error e =
            rt::writeNpy(outputs.file("relevance_" + row.method + ".npy"),
                         {explanation->len}, row.relevance))
      return outputs.abort(std::move(e));
  if (model->imageInput)
    if (llvm::Error e = writeOverlays(outputs, *model, *explanation, report))
      return outputs.abort(std::move(e));

  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  fillReport(report, *model, *explanation, seconds);
  std::string html = outputs.file("report.html");
  if (llvm::Error e = ex::writeHtmlReport(html, report))
    return outputs.abort(std::move(e));
  if (llvm::Error e = writeSummary(outputs, *model, *explanation,
                                   std::move(*layerJson), seconds))
    return outputs.abort(std::move(e));

  printAnswer(*model, *explanation, report.tokens, html);
  return 0;
}

//===----------------------------------------------------------------------===//
// glint-explain eval: score explanations on the held-out set
//===----------------------------------------------------------------------===//

namespace {
struct Row {
  std::string formulation, method;
  double positiveAuc = 0.0, negativeAuc = 0.0;
  double pointing = 0.0;                      // text
  double tokenAp = 0.0, tokenAuroc = 0.0;     // text
  /// Integrated gradients: the mean completeness gap.
  std::optional<double> completenessGap;
  double pixelAccuracy = 0.0, meanIoU = 0.0,  // images
      averagePrecision = 0.0;
};
} // namespace

/// The probabilities of the targets after removing, for every example, the
/// positions in `removed[i]`: text drops those tokens (all sequences lose
/// the same number, so they stay one batch); images zero those patches.
static Expected<std::vector<double>>
scorePerturbed(Model &model, const Heldout &set, int64_t count,
               const std::vector<std::vector<int64_t>> &removed) {
  ref::Array batch;
  if (model.imageInput) {
    batch = set.inputs;
    batch.shape[0] = count;
    batch.data.resize(count * (set.inputs.numElements() / set.inputs.shape[0]));
    int64_t channels = batch.shape[1], height = batch.shape[2],
            width = batch.shape[3];
    // 8×8 patches (checked by the caller), row-major over the image.
    const int64_t p = 8;
    int64_t gw = width / p;
    for (int64_t i = 0; i < count; ++i)
      for (int64_t token : removed[i]) {
        int64_t patch =
            model.readout && token > *model.readout ? token - 1 : token;
        int64_t py = patch / gw, px = patch % gw;
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t y = py * p; y < (py + 1) * p; ++y)
            for (int64_t x = px * p; x < (px + 1) * p; ++x)
              batch.data[((i * channels + c) * height + y) * width + x] = 0.0;
      }
  } else {
    int64_t len = set.inputs.shape[1];
    int64_t kept = len - static_cast<int64_t>(removed[0].size());
    batch = ref::Array(ArrayRef<int64_t>{count, kept});
    for (int64_t i = 0; i < count; ++i) {
      std::vector<bool> drop(len, false);
      for (int64_t t : removed[i])
        drop[t] = true;
      int64_t k = 0;
      for (int64_t t = 0; t < len; ++t)
        if (!drop[t])
          batch.data[i * kept + k++] = set.inputs.data[i * len + t];
    }
  }
  auto logits = forwardBatch(model, batch);
  if (!logits)
    return logits.takeError();
  int64_t classes = logits->shape.back();
  std::vector<double> probs(count);
  for (int64_t i = 0; i < count; ++i) {
    int64_t offset = logits->rank() == 3
                         ? (i * logits->shape[1] + logits->shape[1] - 1) *
                               classes
                         : i * classes;
    probs[i] = probability(*logits, offset, classes, set.labels[i]);
  }
  return probs;
}

static int evaluate() {
  auto model = loadModel();
  if (!model)
    return fail(llvm::toString(model.takeError()));
  adoptLibrarySettings(*model);
  noteEvaluatorPath(*model, /*eval=*/true);
  auto set = readHeldout(*model);
  if (!set)
    return fail(llvm::toString(set.takeError()));
  int64_t available = set->inputs.shape[0];
  int64_t count = evalCount ? std::min<int64_t>(evalCount, available)
                            : available;
  if (evalSteps < 1 || evalSteps > 100)
    return fail("--steps must be between 1 and 100");
  ref::Array inputs = set->inputs;
  inputs.shape[0] = count;
  inputs.data.resize(count * (set->inputs.numElements() / available));
  if (model->imageInput && (inputs.shape[2] % 8 || inputs.shape[3] % 8))
    return fail("eval supports images made of 8x8 patches");

  // A compiled library has its one formulation; IR is rewritten into all.
  std::vector<std::string> formulations;
  for (uint32_t i = 0; i <= glint::getMaxEnumValForFormulation(); ++i)
    formulations.push_back(
        glint::stringifyFormulation(static_cast<glint::Formulation>(i)).str());
  if (model->compiled)
    formulations = {model->compiled->info().attention->formulation};
  std::vector<Row> rows;
  // Gradient methods need the model's IR; asked for explicitly, their
  // absence is an error, else they are skipped and said.
  bool wantGradients = methodWanted(kAttribution) ||
                       methodWanted(kInputXGradient) ||
                       methodWanted(kIntegratedGradients);
  bool gradients = wantGradients && !model->compiled;
  if (wantGradients && !gradients) {
    StringRef why = "a compiled library has no gradient entry point yet";
    if (!methodsOpt.empty())
      return fail("gradient methods: " + why);
    llvm::errs() << "glint-explain: gradient methods skipped: " << why << "\n";
  }
  unsigned perFormulation = methodWanted(kRaw) + methodWanted(kRollout) +
                            (gradients && methodWanted(kAttribution));
  unsigned overall = 1 + (gradients && methodWanted(kInputXGradient)) +
                     (gradients && methodWanted(kIntegratedGradients));
  rt::ProgressBar progress(
      "eval " + model->name,
      (formulations.size() * perFormulation + overall) * (2 * evalSteps + 2) +
          (gradients && methodWanted(kIntegratedGradients) ? igSteps : 0));
  int64_t len = model->imageInput ? 0 : inputs.shape[1];
  // Relevance per (method, example), for every formulation and the random
  // baseline.
  auto scoreRelevance = [&](StringRef formulation, StringRef method,
                            const std::vector<std::vector<double>> &relevance)
      -> llvm::Error {
    Row row{formulation.str(), method.str()};
    int64_t position = model->readout ? *model->readout : len - 1;
    std::vector<int64_t> candidates =
        candidatePositions(*model, len, position);
    for (bool positive : {true, false}) {
      std::vector<std::vector<int64_t>> orders(count);
      for (int64_t i = 0; i < count; ++i) {
        auto order = ex::removalOrder(relevance[i], candidates, positive);
        if (!order)
          return order.takeError();
        orders[i] = std::move(*order);
      }
      std::vector<double> aucs(count, 0.0);
      std::vector<std::vector<double>> curve(count);
      for (unsigned step = 0; step <= evalSteps; ++step) {
        std::vector<std::vector<int64_t>> removed(count);
        for (int64_t i = 0; i < count; ++i)
          removed[i] = ex::removedAtStep(orders[i], step, evalSteps);
        auto probs = scorePerturbed(*model, *set, count, removed);
        if (!probs)
          return probs.takeError();
        for (int64_t i = 0; i < count; ++i)
          curve[i].push_back((*probs)[i]);
        progress.advance();
      }
      for (int64_t i = 0; i < count; ++i) {
        auto auc = ex::areaUnderCurve(curve[i]);
        if (!auc)
          return auc.takeError();
        aucs[i] = *auc;
      }
      (positive ? row.positiveAuc : row.negativeAuc) = ex::mean(aucs);
    }
    if (model->imageInput) {
      int64_t height = inputs.shape[2], width = inputs.shape[3];
      int64_t grid = height / 8;
      std::vector<ex::MaskScores> scores;
      for (int64_t i = 0; i < count; ++i) {
        auto pixels = ex::upsamplePatches(
            patchRelevance(*model, relevance[i], grid * (width / 8)), grid,
            width / 8, 8);
        if (!pixels)
          return pixels.takeError();
        std::vector<float> mask(set->masks.data.begin() + i * height * width,
                                set->masks.data.begin() +
                                    (i + 1) * height * width);
        auto s = ex::scoreMask(*pixels, mask, height, width);
        if (!s)
          return s.takeError();
        scores.push_back(*s);
      }
      ex::MaskScores m = ex::meanMaskScores(scores);
      row.pixelAccuracy = m.pixelAccuracy;
      row.meanIoU = m.meanIoU;
      row.averagePrecision = m.averagePrecision;
    } else {
      int64_t hits = 0;
      std::vector<double> aps, aurocs;
      for (int64_t i = 0; i < count; ++i) {
        auto hit = ex::pointingHit(relevance[i], candidates, set->relevant[i]);
        if (!hit)
          return hit.takeError();
        hits += *hit;
        auto scores =
            ex::scoreTokens(relevance[i], candidates, set->relevant[i]);
        if (!scores)
          return scores.takeError();
        aps.push_back(scores->averagePrecision);
        aurocs.push_back(scores->auroc);
      }
      row.pointing = static_cast<double>(hits) / count;
      row.tokenAp = ex::mean(aps);
      row.tokenAuroc = ex::mean(aurocs);
    }
    progress.advance();
    rows.push_back(row);
    return llvm::Error::success();
  };

  auto start = std::chrono::steady_clock::now();
  // The explained score of every example (its label's logit at the read
  // position) and, for the gradient methods, every layer's output cotangent
  // and the embeddings', from one batched gradient run.
  std::optional<EmbeddingGradient> gradient;
  std::vector<ref::Array> atInput;
  ref::Array seed;
  if (gradients) {
    auto built = embeddingGradient(*model, inputs);
    if (!built)
      return fail(llvm::toString(built.takeError()));
    gradient = std::move(*built);
    auto logits = forwardBatch(*model, inputs);
    if (!logits)
      return fail(llvm::toString(logits.takeError()));
    seed = ref::Array(logits->shape);
    int64_t classes = logits->shape.back();
    int64_t position = model->readout ? *model->readout : len - 1;
    for (int64_t i = 0; i < count; ++i) {
      if (set->labels[i] < 0 || set->labels[i] >= classes)
        return fail(llvm::formatv("example {0}: target {1} is out of range "
                                  "for {2} outputs",
                                  i, set->labels[i], classes));
      int64_t offset =
          logits->rank() == 3 ? (i * len + position) * classes : i * classes;
      seed.data[offset + set->labels[i]] = 1.0;
    }
    auto results =
        runGradient(*model, *gradient, inputs, gradient->embeddings, seed);
    if (!results)
      return fail(llvm::toString(results.takeError()));
    atInput = std::move(*results);
  }
  for (const std::string &formulation : formulations) {
    auto explained = explainBatch(*model, formulation, aggregateOpt, inputs);
    if (!explained)
      return fail(formulation + ": " + llvm::toString(explained.takeError()));
    len = explained->maps[0].shape[1];
    int64_t layers = explained->maps.size();
    int64_t position = model->readout ? *model->readout : len - 1;
    std::vector<std::vector<double>> raw(count), rolled(count);
    for (int64_t i = 0; i < count; ++i) {
      std::vector<std::vector<double>> maps = layerMaps(*explained, i);
      auto r = ex::rollout(maps, len, 0);
      if (!r)
        return fail(llvm::toString(r.takeError()));
      raw[i] = *ex::relevanceRow(maps[layers - 1], len, position);
      rolled[i] = *ex::relevanceRow(*r, len, position);
    }
    if (methodWanted(kRaw))
      if (llvm::Error e = scoreRelevance(formulation, "raw (last layer)", raw))
        return fail(llvm::toString(std::move(e)));
    if (methodWanted(kRollout))
      if (llvm::Error e = scoreRelevance(formulation, "rollout", rolled))
        return fail(llvm::toString(std::move(e)));
    if (gradients && methodWanted(kAttribution)) {
      ArrayRef<ref::Array> layerGradients(atInput.data() + 1, layers);
      auto maps = attributionMaps(*model, formulation, inputs, layerGradients);
      if (!maps)
        return fail(formulation + ": " + llvm::toString(maps.takeError()));
      std::vector<std::vector<double>> attributed(count);
      for (int64_t i = 0; i < count; ++i) {
        auto row = attributionRelevance(*maps, len, i, position);
        if (!row)
          return fail(llvm::toString(row.takeError()));
        attributed[i] = std::move(*row);
      }
      if (llvm::Error e =
              scoreRelevance(formulation, "attribution", attributed))
        return fail(llvm::toString(std::move(e)));
    }
  }
  if (gradients && methodWanted(kInputXGradient)) {
    std::vector<std::vector<double>> products(count);
    for (int64_t i = 0; i < count; ++i)
      products[i] = perToken(gradient->embeddings, atInput.back(), i);
    if (llvm::Error e = scoreRelevance("-", "input x gradient", products))
      return fail(llvm::toString(std::move(e)));
  }
  if (gradients && methodWanted(kIntegratedGradients)) {
    auto ig = integratedGradients(*model, *gradient, inputs, seed, &progress);
    if (!ig)
      return fail(llvm::toString(ig.takeError()));
    if (llvm::Error e = scoreRelevance(
            "-",
            llvm::formatv("int. gradients/{0}", static_cast<unsigned>(igSteps))
                .str(),
            ig->rows))
      return fail(llvm::toString(std::move(e)));
    std::vector<double> gaps;
    for (int64_t i = 0; i < count; ++i)
      gaps.push_back(completenessGap(ig->sums[i], ig->deltas[i]));
    rows.back().completenessGap = ex::mean(gaps);
  }
  std::vector<std::vector<double>> random(count);
  for (int64_t i = 0; i < count; ++i)
    random[i] = ex::randomRelevance(len, 1000 + i);
  if (llvm::Error e = scoreRelevance("random", "baseline", random))
    return fail(llvm::toString(std::move(e)));
  progress.finish();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  // The table.
  llvm::outs() << llvm::formatv(
      "{0}: {1} held-out examples, {2} perturbation steps, channel aggregate "
      "{3}, {4:F1} s\n",
      model->name, count, static_cast<unsigned>(evalSteps), aggregateOpt,
      seconds);
  llvm::outs() << "perturbation AUC of the target's probability: positive "
                  "(most relevant removed first; lower is better), negative "
                  "(least relevant first; higher is better)\n";
  if (model->imageInput)
    llvm::outs() << llvm::formatv("{0,-10} {1,-17} {2,8} {3,8} {4,8} {5,8} "
                                  "{6,8}\n",
                                  "form", "method", "pos-AUC", "neg-AUC",
                                  "pix-acc", "mIoU", "mAP");
  else
    llvm::outs() << llvm::formatv("{0,-10} {1,-20} {2,8} {3,8} {4,9} {5,7} "
                                  "{6,9}\n",
                                  "form", "method", "pos-AUC", "neg-AUC",
                                  "pointing", "tok-AP", "tok-AUROC");
  llvm::json::Array json;
  for (const Row &row : rows) {
    if (model->imageInput)
      llvm::outs() << llvm::formatv(
          "{0,-10} {1,-17} {2,8:F3} {3,8:F3} {4,8:F3} {5,8:F3} {6,8:F3}\n",
          row.formulation, row.method, row.positiveAuc, row.negativeAuc,
          row.pixelAccuracy, row.meanIoU, row.averagePrecision);
    else
      llvm::outs() << llvm::formatv("{0,-10} {1,-20} {2,8:F3} {3,8:F3} "
                                    "{4,9:F3} {5,7:F3} {6,9:F3}\n",
                                    row.formulation, row.method,
                                    row.positiveAuc, row.negativeAuc,
                                    row.pointing, row.tokenAp, row.tokenAuroc);
    llvm::json::Object entry{{"formulation", row.formulation},
                             {"method", row.method},
                             {"positive_auc", row.positiveAuc},
                             {"negative_auc", row.negativeAuc}};
    if (model->imageInput) {
      entry["pixel_accuracy"] = row.pixelAccuracy;
      entry["miou"] = row.meanIoU;
      entry["map"] = row.averagePrecision;
    } else {
      entry["pointing_accuracy"] = row.pointing;
      entry["token_ap"] = row.tokenAp;
      entry["token_auroc"] = row.tokenAuroc;
    }
    if (row.completenessGap)
      entry["completeness_gap"] = *row.completenessGap;
    json.push_back(std::move(entry));
  }
  if (!evalJson.empty()) {
    std::string text;
    llvm::raw_string_ostream(text) << llvm::formatv(
        "{0:2}", llvm::json::Value(llvm::json::Object{
                     {"model", model->name},
                     {"examples", count},
                     {"steps", static_cast<int64_t>(evalSteps)},
                     {"aggregate", aggregateOpt},
                     {"gradient",
                      model->compiledGradient
                          ? "compiled (float32): " + model->compiledGradientPath
                          : std::string("reference evaluator "
                                        "(float64)")},
                     {"rows", std::move(json)}}));
    if (llvm::Error e = ex::writeFileAtomically(evalJson, text + "\n"))
      return fail(llvm::toString(std::move(e)));
  }
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  selfPath = llvm::sys::fs::getMainExecutable(
      argv[0], reinterpret_cast<void *>(&selfPath));
  mlir::glint::addGlintVersionPrinter();
  mlir::glint::runtime::setBugReportMessage();
  glint::registerGlintToAttention();
  cl::opt<int> *threadsOpt = rt::adoptThreadsOption(
      category, "Threads for a compiled model's parallel loops (default: "
                "one per core)");
  // `glint-explain eval MODEL ...` scores explanations; otherwise explain one
  // input.
  bool evalMode = argc > 1 && StringRef(argv[1]) == "eval";
  std::vector<char *> args(argv, argv + argc);
  if (evalMode)
    args.erase(args.begin() + 1);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      static_cast<int>(args.size()), args.data(),
      "glint-explain: explain a gated-linear RNN through its implicit "
      "attention\n\n"
      "  glint-explain -m models/mamba-keyword -p \"<bos> tiger ... ?\" -o "
      "out/\n"
      "  glint-explain models/mamba-keyword --heldout 0 -o out/\n"
      "  glint-explain models/mamba-keyword --text \"<bos> tiger ... ?\" -o "
      "out/\n"
      "  glint-explain model.mlir --weights w.safetensors --tokens 0,5,1 -o "
      "out/\n"
      "  glint-explain eval models/mamba-keyword [--count 200] [--json "
      "t.json]\n");
  if (!modelDir.empty() && !modelPath.empty())
    return fail("give the model once: -m DIR or the positional argument");
  if (!modelDir.empty())
    modelPath = modelDir.getValue();
  if (modelPath.empty())
    return fail("no model given: glint-explain -m DIR -p TEXT, or "
                "glint-explain MODEL ... (see glint-explain --help)");
  std::optional<glint::MapAggregate> aggregate =
      glint::symbolizeMapAggregate(aggregateOpt);
  if (!aggregate || *aggregate == glint::MapAggregate::full)
    return fail("--aggregate must be mean_abs, mean or sum (got '" +
                aggregateOpt + "')");
  if (!glint::symbolizeFormulation(formulationOpt))
    return fail("--formulation must be unified, scan-only, no-conv, no-gate "
                "or no-act (got '" +
                formulationOpt + "')");
  for (const std::string &method : methodsOpt)
    if (!llvm::is_contained({kRollout, kRaw, kAttribution, kInputXGradient,
                             kIntegratedGradients},
                            StringRef(method)))
      return fail("unknown --method '" + method +
                  "' (expected rollout, raw_attention, attribution, "
                  "input_x_gradient or integrated_gradients)");
  if (igSteps == 0)
    return fail("--ig-steps must be at least 1");
  // eval prints its table (and writes --json FILE): it has no directory.
  if (evalMode && outDir.getNumOccurrences())
    return fail("-o does not apply to eval: it prints a table; write it as "
                "JSON with --json FILE");
  // Before a library is loaded: OpenMP reads it when it starts.
  auto threads = rt::threadsGiven(threadsOpt, 0);
  if (!threads)
    return fail(llvm::toString(threads.takeError()));
  rt::setThreads(*threads);
  return evalMode ? evaluate() : explainOne();
}
