//===- Metrics.h - evaluating explanations ----------------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// How glint-explain evaluates an explanation, as helpers: the caller runs the
// model, these pick what to remove and score what comes back.
//
// Perturbation tests (Chefer et al. 2021): remove tokens or patches in order of
// relevance, in 10% steps, run the model at each step and record the target's
// probability; the area under that curve (x evenly spaced on [0, 1]) scores
// the explanation.
//   - positive perturbation removes the most relevant first: a good
//     explanation makes the probability fall fast, so LOWER AUC is better;
//   - negative perturbation removes the least relevant first: a good
//     explanation keeps the probability up, so HIGHER AUC is better.
//
// Ground truth for tokens: the pointing game (does the most relevant candidate
// lie on a truth position?). Ground truth for images (a foreground mask):
// pixel accuracy, IoU and average precision, as in Chefer et al.'s
// ImageNet-segmentation evaluation.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_METRICS_H
#define GLINT_EXPLAIN_METRICS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::glint::explain {

//===----------------------------------------------------------------------===//
// Perturbation
//===----------------------------------------------------------------------===//

/// The positions of \p candidates (e.g. all but BOS/CLS) in the order a
/// perturbation test removes them: by decreasing relevance when
/// \p mostRelevantFirst (positive perturbation), increasing otherwise
/// (negative); equal relevance goes by increasing position either way. It is an
/// error if a candidate is outside \p relevance, appears twice, or has NaN
/// relevance.
llvm::Expected<std::vector<int64_t>>
removalOrder(llvm::ArrayRef<double> relevance,
             llvm::ArrayRef<int64_t> candidates, bool mostRelevantFirst);

/// The positions removed at \p step of \p numSteps: the first
/// round(step / numSteps · n) of the n in \p order (halves round up), so step
/// 0 removes nothing and step numSteps removes all. Requires
/// 0 ≤ step ≤ numSteps and numSteps > 0.
std::vector<int64_t> removedAtStep(llvm::ArrayRef<int64_t> order, unsigned step,
                                   unsigned numSteps = 10);

/// The area under the curve through \p values at x evenly spaced on [0, 1]
/// (the first at 0, the last at 1), by the trapezoid rule. It is an error if
/// there are fewer than two values or one is not finite.
llvm::Expected<double> areaUnderCurve(llvm::ArrayRef<double> values);

//===----------------------------------------------------------------------===//
// Ground truth: tokens
//===----------------------------------------------------------------------===//

/// The pointing game: whether the most relevant of \p candidates (ties to the
/// lowest position, as in removalOrder) is one of \p truthPositions. Errors as
/// for removalOrder, and if \p candidates is empty.
llvm::Expected<bool> pointingHit(llvm::ArrayRef<double> relevance,
                                 llvm::ArrayRef<int64_t> candidates,
                                 llvm::ArrayRef<int64_t> truthPositions);

/// How well a relevance ranking of tokens finds a set of relevant ones.
struct TokenScores {
  /// sklearn's average_precision_score of the candidates' relevance against
  /// membership in the relevant set.
  double averagePrecision = 0.0;
  /// The area under the ROC curve: the probability that a relevant candidate
  /// outranks an irrelevant one (ties count one half), from the rank sum.
  double auroc = 0.0;
};

/// Scores \p relevance over \p candidates against \p truthPositions. It is
/// an error if a candidate is out of range, a value is not finite, or the
/// candidates are all relevant or all irrelevant (AUROC is then undefined).
llvm::Expected<TokenScores> scoreTokens(llvm::ArrayRef<double> relevance,
                                        llvm::ArrayRef<int64_t> candidates,
                                        llvm::ArrayRef<int64_t> truthPositions);

//===----------------------------------------------------------------------===//
// Ground truth: images
//===----------------------------------------------------------------------===//

enum class Upsampling {
  /// Every pixel of a patch takes the patch's value.
  Nearest,
  /// Bilinear between patch centres, clamped at the borders: PyTorch's
  /// interpolate(mode='bilinear', align_corners=False), which Chefer et al.'s
  /// evaluation uses.
  Bilinear,
};

/// Relevance over a \p gridH × \p gridW patch grid (row-major) upsampled to a
/// row-major (gridH·patchSize) × (gridW·patchSize) pixel map. It is an error
/// if the sizes do not match or one is zero.
llvm::Expected<std::vector<double>>
upsamplePatches(llvm::ArrayRef<double> patchRelevance, int64_t gridH,
                int64_t gridW, int64_t patchSize,
                Upsampling mode = Upsampling::Nearest);

/// The scores of one image's pixel relevance against its foreground mask.
struct MaskScores {
  /// Fraction of pixels whose predicted class (foreground where the relevance
  /// exceeds its mean, background elsewhere) is the mask's.
  double pixelAccuracy = 0.0;
  /// |predicted ∩ true| / |predicted ∪ true| per class; 1 when the union is
  /// empty (both agree the class is absent).
  double iouForeground = 0.0;
  double iouBackground = 0.0;
  /// (iouForeground + iouBackground) / 2.
  double meanIoU = 0.0;
  /// Average precision of the relevance ranking against the foreground, as
  /// sklearn's average_precision_score: Σ_n (R_n − R_{n−1}) P_n over distinct
  /// relevance thresholds. 0 when the mask has no foreground.
  double averagePrecision = 0.0;
  /// Chefer et al.'s script's AP: the same over both classes at once (the
  /// min-max-normalised relevance r against the foreground, and 1 − r against
  /// the background, pooled). For comparison with published tables.
  double averagePrecisionTwoClass = 0.0;

  /// The counts behind the ratios, so a data set can be pooled by pixel.
  int64_t pixels = 0, correctPixels = 0;
  int64_t intersectionForeground = 0, unionForeground = 0;
  int64_t intersectionBackground = 0, unionBackground = 0;
};

/// Scores the H×W \p pixelRelevance against \p mask (H×W; a pixel is
/// foreground when its mask value is ≥ 0.5). The prediction thresholds the
/// relevance at its mean, as Chefer et al. 2021 do. It is an error if the
/// sizes differ or a value is NaN or infinite.
llvm::Expected<MaskScores> scoreMask(llvm::ArrayRef<double> pixelRelevance,
                                     llvm::ArrayRef<float> mask, int64_t H,
                                     int64_t W);

/// Each score of \p scores averaged over the images (every image weighs the
/// same); the counts are summed.
MaskScores meanMaskScores(llvm::ArrayRef<MaskScores> scores);

/// The data-set scores as Chefer et al.'s script reports them: pixel accuracy
/// and the per-class IoUs from counts summed over all images (large images
/// weigh more), AP averaged per image.
MaskScores pooledMaskScores(llvm::ArrayRef<MaskScores> scores);

/// The mean of \p values; NaN when there are none.
double mean(llvm::ArrayRef<double> values);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_METRICS_H
