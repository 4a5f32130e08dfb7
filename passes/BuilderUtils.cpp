//===- BuilderUtils.cpp - builders the lowering passes share --------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "passes/BuilderUtils.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;

Value mlir::glint::laneSums(OpBuilder &b, Location loc,
                            ArrayRef<Value> vectors) {
  int64_t k = vectors.size();
  int64_t w = cast<VectorType>(vectors.front().getType()).getNumElements();
  assert(llvm::isPowerOf2_64(k) && llvm::isPowerOf2_64(w) && k <= w);
  // level[i] holds segments of partial sums; segment j of level[i] sums
  // vectors[sources[i][j]].
  SmallVector<Value> level(vectors.begin(), vectors.end());
  SmallVector<SmallVector<int64_t>> sources;
  for (int64_t e = 0; e < k; ++e)
    sources.push_back({e});
  while (level.size() > 1) {
    SmallVector<Value> next;
    SmallVector<SmallVector<int64_t>> nextSources;
    for (size_t i = 0; i < level.size(); i += 2) {
      ArrayRef<int64_t> x = sources[i], y = sources[i + 1];
      int64_t segments = x.size(), size = w / segments;
      SmallVector<int64_t> low, high, merged;
      for (int64_t j = 0; j < segments; ++j) {
        for (int64_t from : {int64_t(0), w}) // x's lanes, then y's
          for (int64_t l = 0; l < size / 2; ++l) {
            low.push_back(from + j * size + l);
            high.push_back(from + j * size + size / 2 + l);
          }
        merged.append({x[j], y[j]});
      }
      next.push_back(arith::AddFOp::create(
          b, loc,
          vector::ShuffleOp::create(b, loc, level[i], level[i + 1], low),
          vector::ShuffleOp::create(b, loc, level[i], level[i + 1], high)));
      nextSources.push_back(std::move(merged));
    }
    level = std::move(next);
    sources = std::move(nextSources);
  }
  Value lanes = level.front();
  for (int64_t n = w; n > k; n /= 2) {
    int64_t size = n / k;
    SmallVector<int64_t> low, high;
    for (int64_t j = 0; j < k; ++j)
      for (int64_t l = 0; l < size / 2; ++l) {
        low.push_back(j * size + l);
        high.push_back(j * size + size / 2 + l);
      }
    lanes = arith::AddFOp::create(
        b, loc, vector::ShuffleOp::create(b, loc, lanes, lanes, low),
        vector::ShuffleOp::create(b, loc, lanes, lanes, high));
  }
  SmallVector<int64_t> order(k);
  for (auto [j, source] : llvm::enumerate(sources.front()))
    order[source] = j;
  return vector::ShuffleOp::create(b, loc, lanes, lanes, order);
}

SmallVector<Value> mlir::glint::transposeSquare(OpBuilder &b, Location loc,
                                                ArrayRef<Value> rows) {
  int64_t w = rows.size();
  assert(llvm::isPowerOf2_64(w) &&
         cast<VectorType>(rows.front().getType()).getNumElements() == w);
  SmallVector<Value> m(rows.begin(), rows.end());
  for (int64_t bit = 1; bit < w; bit *= 2) {
    SmallVector<int64_t> low, high; // the new rows i and i + bit
    for (int64_t k = 0; k < w; ++k) {
      bool set = k & bit;
      low.push_back(set ? w + k - bit : k);
      high.push_back(set ? w + k : k + bit);
    }
    for (int64_t i = 0; i < w; ++i) {
      if (i & bit)
        continue;
      Value x = m[i], y = m[i + bit];
      m[i] = vector::ShuffleOp::create(b, loc, x, y, low);
      m[i + bit] = vector::ShuffleOp::create(b, loc, x, y, high);
    }
  }
  return m;
}

SmallVector<Value> mlir::glint::readColumns(OpBuilder &b, Location loc,
                                            Value source,
                                            ArrayRef<Value> prefix,
                                            ArrayRef<Value> rows,
                                            int64_t keys) {
  int64_t w = rows.size();
  int64_t size = cast<RankedTensorType>(source.getType()).getShape().back();
  SmallVector<Value> columns;
  for (int64_t k0 = 0; k0 < keys; k0 += w) {
    bool inBounds = !ShapedType::isDynamic(size) && k0 + w <= size;
    SmallVector<Value> tile;
    for (Value row : rows) {
      SmallVector<Value> indices(prefix);
      indices.append({row, arith::ConstantIndexOp::create(b, loc, k0)});
      tile.push_back(readLanes(b, loc, source, indices, w, inBounds));
    }
    SmallVector<Value> transposed = transposeSquare(b, loc, tile);
    for (int64_t n = 0; n < w && k0 + n < keys; ++n)
      columns.push_back(transposed[n]);
  }
  return columns;
}
