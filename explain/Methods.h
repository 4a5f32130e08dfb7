//===- Methods.h - explanation methods on layer matrices --------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Turns the per-layer L×L attention maps glint-explain computes (explicit
// softmax attention or the implicit attention of a gated-linear RNN) into
// relevance: attention rollout, single rows, normalisation, and a random
// baseline for the perturbation tests.
//
// Conventions shared by every file of this library: a map is a row-major
// `std::vector<double>` of L×L elements, row i the output (query) position
// and column j the input position it reads; causal maps are lower-triangular,
// bidirectional ones (Vision Mamba) are not. A relevance vector holds one
// value per position, L of them.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_EXPLAIN_METHODS_H
#define GLINT_EXPLAIN_METHODS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::glint::explain {

/// Attention rollout (Abnar & Zuidema 2020, as used by Chefer et al. 2021 and
/// the Mamba explainability papers): with Â_l = row-normalise(|A_l| + I),
/// returns R = Â_{last} · … · Â_{startLayer}, an L×L map. Absolute values are
/// taken because implicit attention may be negative; the identity (the
/// residual connection) keeps every row sum positive. It is an error if
/// \p layers is empty, a layer does not hold L×L elements, holds NaN or
/// infinity, or \p startLayer is not the index of a layer. O(L³) per layer.
llvm::Expected<std::vector<double>>
rollout(llvm::ArrayRef<std::vector<double>> layers, int64_t L,
        unsigned startLayer = 0);

/// Row \p position of the L×L \p map: the relevance of every input position
/// to the output at \p position. It is an error if \p map does not hold L×L
/// elements or \p position is not in [0, L).
llvm::Expected<std::vector<double>> relevanceRow(llvm::ArrayRef<double> map,
                                                 int64_t L, int64_t position);

/// \p relevance divided by its largest absolute value, so non-negative
/// relevance lands in [0, 1] (signed relevance in [−1, 1], signs kept). An
/// all-zero vector stays all zero.
std::vector<double> normalizeRelevance(llvm::ArrayRef<double> relevance);

/// L values uniform in [0, 1): the random baseline of the perturbation tests.
/// The same \p seed gives the same values on every platform (the values are
/// drawn from std::mt19937_64's raw output, not a library distribution).
std::vector<double> randomRelevance(int64_t L, uint64_t seed);

} // namespace mlir::glint::explain

#endif // GLINT_EXPLAIN_METHODS_H
