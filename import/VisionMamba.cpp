//===- VisionMamba.cpp - Vision Mamba (Vim) importer ----------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Vision Mamba ("Vim", hustvl) with bidirectional "bimamba v2" layers, as its
// fused CUDA path computes them (the repository's slow path runs only the
// forward direction). Checkpoint names as in the Vim .pth files, converted
// to safetensors unchanged:
//
//   python -c "import torch, safetensors.torch as s; \
//     s.save_file({k: v.contiguous() for k, v in \
//     torch.load('vim_t.pth', map_location='cpu')['model'].items()}, \
//     'model.safetensors')"
//
// plus a config.json with `"model_type": "vim"` and the model's constructor
// arguments (img_size, patch_size, stride, channels, embed_dim, depth,
// d_state, d_conv, expand, dt_rank, num_classes, norm_epsilon, ...).
//
// Facts from the reference implementation: Conv2d patch embedding (kernel =
// stride = patch size) flattened row-major; CLS token inserted at the middle
// index (num_patches // 2); learned position embedding; per block the
// residual stream h_{k+1} = h_k + mixer(RMSNorm(h_k)); each mixer shares
// in_proj/out_proj, runs a forward branch (conv1d, x_proj, dt_proj, A_log,
// D) and a backward branch on the flipped sequence with its own weights
// (conv1d_b, x_proj_b, dt_proj_b, A_b_log, D_b), gates each by silu(z) and
// averages them (if_devide_out); final RMSNorm norm_f; the head (with bias)
// reads the CLS token. glint expresses the backward branch with `reverse`
// on the conv and the recurrence, so no flips appear in the IR.
//
// Hidden states: entry k is the residual stream entering block k (entry 0 is
// the embedded sequence), the last is norm_f over all tokens.
//
//===----------------------------------------------------------------------===//

#include "import/ImportBuilder.h"
#include "import/Importers.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::glint;
using namespace mlir::glint::import;
using llvm::Expected;

/// Broadcasts a [D] vector to [B, rows, D] (B dynamic, from `like`).
static Value broadcastRows(ImportBuilder &b, Value vector, int64_t rows,
                           Value like) {
  OpBuilder &builder = b.getBuilder();
  int64_t width = cast<RankedTensorType>(vector.getType()).getDimSize(0);
  auto type = RankedTensorType::get({ShapedType::kDynamic, rows, width},
                                    b.elementType());
  Value batch = tensor::DimOp::create(builder, b.loc(), like, 0);
  Value init = tensor::EmptyOp::create(builder, b.loc(), type,
                                       ValueRange{batch});
  return linalg::BroadcastOp::create(builder, b.loc(), vector, init,
                                     ArrayRef<int64_t>{0, 1})
      ->getResult(0);
}

Expected<OwningOpRef<ModuleOp>>
mlir::glint::import::importVisionMamba(
    MLIRContext *context, const llvm::json::Object &object,
    const mlir::glint::runtime::Checkpoint &checkpoint, StringRef source) {
  Config config(object, "VisionMamba");
  int64_t image = config.getSize("img_size");
  int64_t patch = config.getSize("patch_size");
  int64_t stride = config.getSize("stride", patch);
  int64_t channels = config.getSize("channels", 3);
  int64_t hidden = config.getSize("embed_dim");
  int64_t depth = config.getSize("depth");
  int64_t state = config.getSize("d_state", 16);
  int64_t width = config.getSize("d_conv", 4);
  int64_t inner = config.getSize("expand", 2) * hidden;
  int64_t rank =
      config.has("dt_rank") ? config.getSize("dt_rank") : (hidden + 15) / 16;
  int64_t classes = config.getSize("num_classes");
  double eps = config.getFloat("norm_epsilon", 1e-5);
  bool divideOut = config.getBool("if_devide_out", true);
  auto require = [&](StringRef key, bool expected, bool fallback) {
    if (config.getBool(key, fallback) != expected && !config.error)
      config.error = ("config.json: " + key + " = " +
                      (expected ? "false" : "true") +
                      " is not supported (VisionMamba: glint imports the "
                      "bidirectional, middle-CLS, absolute-position, RMSNorm "
                      "configuration of the Vim checkpoints)")
                         .str();
  };
  require("rms_norm", true, true);
  require("if_cls_token", true, true);
  require("use_middle_cls_token", true, true);
  require("use_double_cls_token", false, false);
  require("if_abs_pos_embed", true, true);
  require("if_rope", false, false);
  if (config.getString("bimamba_type", "v2") != "v2" && !config.error)
    config.error = "config.json: bimamba_type must be \"v2\" (VisionMamba)";
  if (stride != patch && !config.error)
    config.error = llvm::formatv("config.json: stride {0} differs from "
                                 "patch_size {1}: overlapping patches are "
                                 "not supported (VisionMamba)",
                                 stride, patch)
                       .str();
  if (image % patch != 0 && !config.error)
    config.error = llvm::formatv("config.json: img_size {0} is not a "
                                 "multiple of patch_size {1} (VisionMamba)",
                                 image, patch)
                       .str();
  if (config.error)
    return llvm::createStringError(*config.error);

  int64_t grid = image / patch, patches = grid * grid;
  int64_t tokens = patches + 1, cls = patches / 2;
  int64_t patchSize = channels * patch * patch;

  ImportBuilder b(context, checkpoint, source);
  OpBuilder &builder = b.getBuilder();
  Location loc = b.loc();
  Type f32 = b.elementType();
  constexpr int64_t dyn = ShapedType::kDynamic;
  Value img = b.beginForward(
      RankedTensorType::get({dyn, channels, image, image}, f32));
  Value batch = b.batch();

  // Patchify: [B, C, gh·p, gw·p] → [B, gh, gw, C, p, p] → [B, P, C·p·p],
  // the order of Conv2d's flatten(2).transpose(1, 2).
  auto split = RankedTensorType::get({dyn, channels, grid, patch, grid, patch},
                                     f32);
  Value expanded = tensor::ExpandShapeOp::create(
      builder, loc, split, img,
      SmallVector<ReassociationIndices>{{0}, {1}, {2, 3}, {4, 5}},
      SmallVector<OpFoldResult>{batch, builder.getIndexAttr(channels),
                                builder.getIndexAttr(grid),
                                builder.getIndexAttr(patch),
                                builder.getIndexAttr(grid),
                                builder.getIndexAttr(patch)});
  auto permutedType = RankedTensorType::get(
      {dyn, grid, grid, channels, patch, patch}, f32);
  Value init = tensor::EmptyOp::create(builder, loc, permutedType,
                                       ValueRange{batch});
  Value permuted =
      linalg::TransposeOp::create(builder, loc, expanded, init,
                                  ArrayRef<int64_t>{0, 2, 4, 1, 3, 5})
          ->getResult(0);
  Value rows = tensor::CollapseShapeOp::create(
      builder, loc, RankedTensorType::get({dyn, patches, patchSize}, f32),
      permuted, SmallVector<ReassociationIndices>{{0}, {1, 2}, {3, 4, 5}});
  Value embedW = b.squeezeWeight(
      b.weight("patch_embed.proj.weight", {hidden, channels, patch, patch}),
      {hidden, patchSize});
  Value x = b.linear(rows, embedW,
                     b.weight("patch_embed.proj.bias", {hidden}));

  // The CLS token goes in the middle, then the position embedding.
  Value clsVec = b.squeezeWeight(b.weight("cls_token", {1, 1, hidden}),
                                 {hidden});
  Value clsRow = broadcastRows(b, clsVec, 1, img);
  auto part = [&](int64_t offset, int64_t size) -> Value {
    return tensor::ExtractSliceOp::create(
        builder, loc, RankedTensorType::get({dyn, size, hidden}, f32), x,
        ArrayRef<OpFoldResult>{builder.getIndexAttr(0),
                               builder.getIndexAttr(offset),
                               builder.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{batch, builder.getIndexAttr(size),
                               builder.getIndexAttr(hidden)},
        ArrayRef<OpFoldResult>{builder.getIndexAttr(1),
                               builder.getIndexAttr(1),
                               builder.getIndexAttr(1)});
  };
  Value seq = tensor::ConcatOp::create(
      builder, loc, /*dim=*/1,
      ValueRange{part(0, cls), clsRow, part(cls, patches - cls)});
  Value pos = b.squeezeWeight(b.weight("pos_embed", {1, tokens, hidden}),
                              {tokens, hidden});
  auto posType = RankedTensorType::get({dyn, tokens, hidden}, f32);
  Value posInit = tensor::EmptyOp::create(builder, loc, posType,
                                          ValueRange{batch});
  Value h = b.add(seq, linalg::BroadcastOp::create(builder, loc, pos, posInit,
                                                   ArrayRef<int64_t>{0})
                           ->getResult(0));

  for (int64_t i = 0; i < depth; ++i) {
    // Stop at the first error: the rest would be built on placeholders.
    if (b.failed())
      break;
    std::string p = llvm::formatv("layers.{0}.", i).str();
    b.trace(h, llvm::formatv("hidden_states.{0}", i).str());
    Value n = b.rmsNorm(h, b.weight(p + "norm.weight", {hidden}), eps);
    Value xz = b.linear(n, b.weight(p + "mixer.in_proj.weight",
                                    {2 * inner, hidden}),
                        b.optionalWeight(p + "mixer.in_proj.bias", {2 * inner}));
    Value xs = b.sliceLast(xz, 0, inner);
    Value z = b.sliceLast(xz, inner, inner);
    Value y = b.mixer(p + "mixer", xs, [&](Value xv) {
      // One direction: `suffix` names its weights, `reverse` its order.
      auto direction = [&](StringRef suffix, StringRef aName, StringRef dName,
                           bool reverse) {
        std::string m = p + "mixer.";
        Value convW = b.squeezeWeight(
            b.weight(m + "conv1d" + suffix.str() + ".weight",
                     {inner, 1, width}),
            {inner, width});
        Value convB = b.optionalWeight(m + "conv1d" + suffix.str() + ".bias",
                                       {inner});
        Value u = b.act(ActKind::silu, b.conv1d(xv, convW, convB, reverse));
        Value dbc = b.linear(u, b.weight(m + "x_proj" + suffix.str() +
                                             ".weight",
                                         {rank + 2 * state, inner}));
        Value delta = b.act(
            ActKind::softplus,
            b.linear(b.sliceLast(dbc, 0, rank),
                     b.weight(m + "dt_proj" + suffix.str() + ".weight",
                              {inner, rank}),
                     b.weight(m + "dt_proj" + suffix.str() + ".bias",
                              {inner})));
        ImportBuilder::RecurrenceOperands r;
        r.k = b.splitHeads(b.sliceLast(dbc, rank, state), 1);
        r.q = b.splitHeads(b.sliceLast(dbc, rank + state, state), 1);
        r.v = b.splitHeads(u, inner);
        r.logDecay = b.act(ActKind::neg_exp,
                           b.weight(m + aName.str(), {inner, state}));
        r.delta = delta;
        r.skip = b.weight(m + dName.str(), {inner});
        r.reverse = reverse;
        return b.mergeHeads(b.recurrence(r));
      };
      Value yf = direction("", "A_log", "D", /*reverse=*/false);
      Value yb = direction("_b", "A_b_log", "D_b", /*reverse=*/true);
      Value sum = b.add(yf, yb);
      if (divideOut)
        sum = b.scale(sum, 0.5);
      return b.mul(sum, b.act(ActKind::silu, z));
    });
    h = b.add(h, b.linear(y, b.weight(p + "mixer.out_proj.weight",
                                      {hidden, inner}),
                          b.optionalWeight(p + "mixer.out_proj.bias",
                                           {hidden})));
  }
  Value final = b.rmsNorm(h, b.weight("norm_f.weight", {hidden}), eps);
  b.trace(final, llvm::formatv("hidden_states.{0}", depth).str());
  // The CLS row, [B, D].
  Value clsOut = tensor::ExtractSliceOp::create(
      builder, loc, RankedTensorType::get({dyn, hidden}, f32), final,
      ArrayRef<OpFoldResult>{builder.getIndexAttr(0),
                             builder.getIndexAttr(cls),
                             builder.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{batch, builder.getIndexAttr(1),
                             builder.getIndexAttr(hidden)},
      ArrayRef<OpFoldResult>{builder.getIndexAttr(1), builder.getIndexAttr(1),
                             builder.getIndexAttr(1)});
  b.setReadoutPosition(cls);
  return b.finish(b.linear(clsOut, b.weight("head.weight", {classes, hidden}),
                           b.optionalWeight("head.bias", {classes})));
}
