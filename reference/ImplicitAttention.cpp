//===- ImplicitAttention.cpp - attention-form maps in double --------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "reference/ImplicitAttention.h"

#include "runtime/io/ModelInfo.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <unistd.h>

using namespace mlir::glint::reference;
using llvm::ArrayRef;
using llvm::Expected;
using mlir::glint::runtime::shapeString;

namespace {

/// One (batch, channel) of a map: the L × L matrix (row-major) and the
/// channel of the value input it reads.
struct Channel {
  std::vector<double> m;
  int64_t src = 0;
};

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(message.str());
}

/// The memory a map request may use: half of this machine's RAM.
double memoryBudget() {
  double pages = static_cast<double>(sysconf(_SC_PHYS_PAGES));
  double pageSize = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (pages <= 0 || pageSize <= 0)
    return 8.0 * (1ull << 30);
  return pages * pageSize / 2.0;
}

/// Refuses a request whose arrays would not fit, naming the size it would
/// need and what to ask for instead.
llvm::Error checkMemory(double bytes, llvm::StringRef what,
                        llvm::StringRef instead) {
  double budget = memoryBudget();
  if (bytes <= budget)
    return llvm::Error::success();
  return error(llvm::formatv("{0} would need {1:F1} GiB, more than half of "
                             "this machine's memory ({2:F1} GiB); {3}",
                             what, bytes / (1ull << 30),
                             2.0 * budget / (1ull << 30), instead));
}

} // namespace

namespace mlir::glint::reference {
class MapNode {
public:
  explicit MapNode(ArrayRef<int64_t> valueShape)
      : shape(valueShape.begin(), valueShape.end()) {}
  virtual ~MapNode() = default;

  int64_t batch() const { return shape[0]; }
  int64_t len() const { return shape[1]; }
  int64_t channels() const {
    int64_t c = 1;
    for (int64_t d : ArrayRef<int64_t>(shape).drop_front(2))
      c *= d;
    return c;
  }
  virtual Expected<Channel> materialise(int64_t b, int64_t c) = 0;

  llvm::SmallVector<int64_t, 4> shape;
};
} // namespace mlir::glint::reference

namespace {

class IdentityNode : public MapNode {
public:
  using MapNode::MapNode;
  Expected<Channel> materialise(int64_t, int64_t c) override {
    int64_t n = len();
    Channel out{std::vector<double>(n * n, 0.0), c};
    for (int64_t i = 0; i < n; ++i)
      out.m[i * n + i] = 1.0;
    return out;
  }
};

class ConvNode : public MapNode {
public:
  ConvNode(MapRef in, Array weight, bool reverse)
      : MapNode(in->shape), in(std::move(in)), weight(std::move(weight)),
        reverse(reverse) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    auto x = in->materialise(b, c);
    if (!x)
      return x.takeError();
    int64_t n = len(), width = weight.shape[1];
    Channel out{std::vector<double>(n * n, 0.0), x->src};
    // Causal: y_i = Σ_d w[W-1-d] x_{i-d}; anti-causal: x_{i+d}.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < width; ++d) {
        int64_t from = reverse ? i + d : i - d;
        if (from < 0 || from >= n)
          continue;
        double w = weight.data[c * width + width - 1 - d];
        const double *row = &x->m[from * n];
        double *dst = &out.m[i * n];
        for (int64_t j = 0; j < n; ++j)
          dst[j] += w * row[j];
      }
    return out;
  }

private:
  MapRef in;
  Array weight;
  bool reverse;
};

class ShiftNode : public MapNode {
public:
  explicit ShiftNode(MapRef in) : MapNode(in->shape), in(std::move(in)) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    auto x = in->materialise(b, c);
    if (!x)
      return x.takeError();
    int64_t n = len();
    Channel out{std::vector<double>(n * n, 0.0), x->src};
    for (int64_t i = 1; i < n; ++i)
      std::copy_n(&x->m[(i - 1) * n], n, &out.m[i * n]);
    return out;
  }

private:
  MapRef in;
};

class ScaleNode : public MapNode {
public:
  ScaleNode(MapRef in, Array gain)
      : MapNode(in->shape), in(std::move(in)), gain(std::move(gain)) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    auto x = in->materialise(b, c);
    if (!x)
      return x.takeError();
    int64_t n = len(), channelCount = channels();
    for (int64_t i = 0; i < n; ++i) {
      double g = gain.data[(b * n + i) * channelCount + c];
      for (int64_t j = 0; j < n; ++j)
        x->m[i * n + j] *= g;
    }
    return x;
  }

private:
  MapRef in;
  Array gain;
};

/// out = R · M for a dense R and an M whose rows are mostly zero outside a
/// band (the identity, a convolution, a diagonal): each row of M is visited
/// only over its non-zero column range.
std::vector<double> multiply(const std::vector<double> &r,
                             const std::vector<double> &m, int64_t n) {
  std::vector<int64_t> lo(n, n), hi(n, -1);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < n; ++j)
      if (m[k * n + j] != 0.0) {
        lo[k] = std::min(lo[k], j);
        hi[k] = j;
      }
  std::vector<double> out(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      double rik = r[i * n + k];
      if (rik == 0.0 || hi[k] < 0)
        continue;
      for (int64_t j = lo[k]; j <= hi[k]; ++j)
        out[i * n + j] += rik * m[k * n + j];
    }
  return out;
}

/// A node whose matrix for channel c is R_{b, head(c)} · A_{b, input(c)}.
class HeadMatrixNode : public MapNode {
public:
  HeadMatrixNode(MapRef in, ArrayRef<int64_t> shape)
      : MapNode(shape), in(std::move(in)) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    int64_t valueSize = shape.back();
    int64_t head = c / valueSize;
    auto x = in->materialise(b, inputChannel(c));
    if (!x)
      return x.takeError();
    if (cachedBatch != b || cachedHead != head) {
      cached = headMatrix(b, head);
      cachedBatch = b;
      cachedHead = head;
    }
    return Channel{multiply(cached, x->m, len()), x->src};
  }

protected:
  virtual int64_t inputChannel(int64_t c) const { return c; }
  virtual std::vector<double> headMatrix(int64_t b, int64_t h) const = 0;

private:
  MapRef in;
  // Channels of one head are materialised one after another: keep the last
  // head's matrix only.
  std::vector<double> cached;
  int64_t cachedBatch = -1, cachedHead = -1;
};

class ScanNode : public HeadMatrixNode {
public:
  ScanNode(MapRef in, ScanControls s, ArrayRef<int64_t> shape)
      : HeadMatrixNode(std::move(in), shape), s(std::move(s)) {}

protected:
  std::vector<double> headMatrix(int64_t b, int64_t h) const override {
    int64_t n = len(), heads = shape[2];
    int64_t groups = s.k.shape[2], key = s.k.shape[3];
    int64_t g = h / (heads / groups);
    auto at4 = [](const Array &a, int64_t i, int64_t j, int64_t l, int64_t m) {
      return a.data[((i * a.shape[1] + j) * a.shape[2] + l) * a.shape[3] + m];
    };
    // Sequence position of scan step p.
    auto pos = [&](int64_t p) { return s.reverse ? n - 1 - p : p; };
    auto delta = [&](int64_t t) {
      return s.delta ? s.delta->data[(b * n + t) * heads + h] : 1.0;
    };
    auto logDecay = [&](int64_t t, int64_t kk) {
      const Array &d = s.logDecay;
      double v = d.rank() == 1   ? d.data[h]
                 : d.rank() == 2 ? d.data[h * key + kk]
                 : d.rank() == 3 ? d.data[(b * n + t) * heads + h]
                                 : at4(d, b, t, h, kk);
      return v * delta(t);
    };
    auto keyAt = [&](int64_t t, int64_t kk) { return at4(s.k, b, t, g, kk); };
    auto queryAt = [&](int64_t t, int64_t kk) {
      return s.q ? at4(*s.q, b, t, g, kk) : 1.0;
    };
    bool bonus = s.bonus.has_value();
    // Decays never grow the state: once every segment sum of a column is
    // below exp's range, the rest of the column is exactly zero.
    bool decaying = true;
    for (int64_t t = 0; t < n && decaying; ++t)
      for (int64_t kk = 0; kk < key; ++kk)
        decaying &= logDecay(t, kk) <= 0.0;
    const double negligible = -800.0;

    // R in step coordinates first: rs[pi * n + pj], pj <= pi.
    std::vector<double> rs(n * n, 0.0);
    std::vector<double> seg(key);
    if (s.normalize) {
      // Log-weights, then a max-stabilised normalisation of each row.
      const double none = -std::numeric_limits<double>::infinity();
      std::vector<double> lw(n * n, none);
      for (int64_t pj = 0; pj < n; ++pj) {
        int64_t tj = pos(pj);
        double sum = 0.0; // Σ g over the steps after pj up to the read
        for (int64_t pi = pj; pi < n; ++pi) {
          int64_t ti = pos(pi);
          if (bonus) {
            if (pi == pj) {
              lw[pi * n + pj] = s.bonus->data[h * key] + keyAt(tj, 0);
              continue;
            }
            if (pi > pj + 1)
              sum += logDecay(pos(pi - 1), 0);
          } else if (pi > pj) {
            sum += logDecay(ti, 0);
          }
          lw[pi * n + pj] = keyAt(tj, 0) + sum;
        }
      }
      for (int64_t pi = 0; pi < n; ++pi) {
        double top = none;
        for (int64_t pj = 0; pj <= pi; ++pj)
          top = std::max(top, lw[pi * n + pj]);
        double total = 0.0;
        for (int64_t pj = 0; pj <= pi; ++pj)
          total += rs[pi * n + pj] = std::exp(lw[pi * n + pj] - top);
        for (int64_t pj = 0; pj <= pi; ++pj)
          rs[pi * n + pj] /= total;
      }
    } else {
      for (int64_t pj = 0; pj < n; ++pj) {
        int64_t tj = pos(pj);
        double dj = delta(tj);
        std::fill(seg.begin(), seg.end(), 0.0);
        for (int64_t pi = pj; pi < n; ++pi) {
          int64_t ti = pos(pi);
          double value = 0.0;
          if (bonus && pi == pj) {
            for (int64_t kk = 0; kk < key; ++kk)
              value += queryAt(ti, kk) * s.bonus->data[h * key + kk] *
                       keyAt(tj, kk) * dj;
            rs[pi * n + pj] = value;
            continue;
          }
          // Segment sum of g over (pj, pi] (plain) or (pj, pi-1] (bonus:
          // the read is of the state before step pi).
          int64_t last = bonus ? pi - 1 : pi;
          if (last > pj)
            for (int64_t kk = 0; kk < key; ++kk)
              seg[kk] += logDecay(pos(last), kk);
          bool alive = false;
          for (int64_t kk = 0; kk < key; ++kk) {
            if (seg[kk] > negligible)
              alive = true;
            value += queryAt(ti, kk) * std::exp(seg[kk]) * keyAt(tj, kk) * dj;
          }
          rs[pi * n + pj] = value;
          if (decaying && !alive)
            break;
        }
      }
    }
    if (s.skip)
      for (int64_t p = 0; p < n; ++p)
        rs[p * n + p] += s.skip->data[h];
    if (!s.reverse)
      return rs;
    std::vector<double> r(n * n);
    for (int64_t pi = 0; pi < n; ++pi)
      for (int64_t pj = 0; pj < n; ++pj)
        r[pos(pi) * n + pos(pj)] = rs[pi * n + pj];
    return r;
  }

private:
  ScanControls s;
};

class AttentionNode : public HeadMatrixNode {
public:
  AttentionNode(MapRef in, Array q, Array k, double scale, int64_t window,
                ArrayRef<int64_t> shape)
      : HeadMatrixNode(std::move(in), shape), q(std::move(q)),
        k(std::move(k)), scale(scale), window(window) {}

protected:
  int64_t inputChannel(int64_t c) const override {
    int64_t heads = shape[2], valueSize = shape[3];
    int64_t kvHeads = k.shape[2];
    int64_t h = c / valueSize, e = c % valueSize;
    return (h / (heads / kvHeads)) * valueSize + e;
  }
  std::vector<double> headMatrix(int64_t b, int64_t h) const override {
    int64_t n = len(), heads = q.shape[2], dim = q.shape[3];
    int64_t kvHeads = k.shape[2], g = h / (heads / kvHeads);
    std::vector<double> p(n * n, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      int64_t first = std::max<int64_t>(0, i - window + 1);
      double top = -std::numeric_limits<double>::infinity();
      for (int64_t j = first; j <= i; ++j) {
        double score = 0.0;
        for (int64_t d = 0; d < dim; ++d)
          score += q.data[((b * n + i) * heads + h) * dim + d] *
                   k.data[((b * n + j) * kvHeads + g) * dim + d];
        p[i * n + j] = scale * score;
        top = std::max(top, p[i * n + j]);
      }
      double total = 0.0;
      for (int64_t j = first; j <= i; ++j)
        total += p[i * n + j] = std::exp(p[i * n + j] - top);
      for (int64_t j = first; j <= i; ++j)
        p[i * n + j] /= total;
    }
    return p;
  }

private:
  Array q, k;
  double scale;
  int64_t window;
};

class AddNode : public MapNode {
public:
  AddNode(MapRef lhs, MapRef rhs)
      : MapNode(lhs->shape), lhs(std::move(lhs)), rhs(std::move(rhs)) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    auto x = lhs->materialise(b, c);
    if (!x)
      return x.takeError();
    auto y = rhs->materialise(b, c);
    if (!y)
      return y.takeError();
    if (x->src != y->src)
      return error(llvm::formatv(
          "map_add: channel {0} reads input channel {1} on one side and {2} "
          "on the other; the sum mixes channels",
          c, x->src, y->src));
    for (size_t i = 0; i < x->m.size(); ++i)
      x->m[i] += y->m[i];
    return x;
  }

private:
  MapRef lhs, rhs;
};

class ReshapeNode : public MapNode {
public:
  ReshapeNode(MapRef in, ArrayRef<int64_t> shape)
      : MapNode(shape), in(std::move(in)) {}
  Expected<Channel> materialise(int64_t b, int64_t c) override {
    return in->materialise(b, c);
  }

private:
  MapRef in;
};

llvm::Error checkShape(const Array &a, ArrayRef<int64_t> expected,
                       llvm::StringRef what) {
  if (ArrayRef<int64_t>(a.shape) == expected)
    return llvm::Error::success();
  return error(llvm::Twine("'") + what + "' has run-time shape " +
               shapeString(a.shape) + ", expected " + shapeString(expected));
}

} // namespace

Expected<MapRef>
mlir::glint::reference::mapIdentity(ArrayRef<int64_t> valueShape) {
  if (valueShape.size() < 3)
    return error("the value input must be [batch, seq, channels...], got " +
                 shapeString(valueShape));
  return std::make_shared<IdentityNode>(valueShape);
}

Expected<MapRef> mlir::glint::reference::mapConv(MapRef in,
                                                 const Array &weight,
                                                 bool reverse) {
  if (weight.rank() != 2 || weight.shape[0] != in->channels())
    return error("conv weight has shape " + shapeString(weight.shape) +
                 ", expected [" + std::to_string(in->channels()) +
                 ", width]");
  return std::make_shared<ConvNode>(std::move(in), weight, reverse);
}

MapRef mlir::glint::reference::mapShift(MapRef in) {
  return std::make_shared<ShiftNode>(std::move(in));
}

Expected<MapRef> mlir::glint::reference::mapScale(MapRef in,
                                                  const Array &gain) {
  if (auto e = checkShape(gain, in->shape, "gain"))
    return std::move(e);
  return std::make_shared<ScaleNode>(std::move(in), gain);
}

Expected<MapRef> mlir::glint::reference::mapScan(MapRef in, ScanControls s) {
  if (in->shape.size() != 4)
    return error("map_scan needs a [batch, seq, heads, value] map, got " +
                 shapeString(in->shape));
  int64_t batch = in->batch(), len = in->len(), heads = in->shape[2];
  if (s.k.rank() != 4 || s.k.shape[0] != batch || s.k.shape[1] != len)
    return error("'k' has run-time shape " + shapeString(s.k.shape));
  int64_t groups = s.k.shape[2], key = s.k.shape[3];
  if (groups == 0 || heads % groups != 0)
    return error(llvm::formatv("{0} heads do not divide into {1} key groups",
                               heads, groups));
  if (s.q)
    if (auto e = checkShape(*s.q, s.k.shape, "q"))
      return std::move(e);
  llvm::SmallVector<llvm::SmallVector<int64_t>> decayShapes = {
      {heads}, {heads, key}, {batch, len, heads}, {batch, len, heads, key}};
  if (s.logDecay.rank() < 1 || s.logDecay.rank() > 4)
    return error("'log_decay' has rank " + std::to_string(s.logDecay.rank()));
  if (auto e = checkShape(s.logDecay, decayShapes[s.logDecay.rank() - 1],
                          "log_decay"))
    return std::move(e);
  if (s.delta)
    if (auto e = checkShape(*s.delta, {batch, len, heads}, "delta"))
      return std::move(e);
  if (s.bonus)
    if (auto e = checkShape(*s.bonus, {heads, key}, "bonus"))
      return std::move(e);
  if (s.skip)
    if (auto e = checkShape(*s.skip, {heads}, "skip"))
      return std::move(e);
  if (s.normalize && key != 1)
    return error("the normalised (RWKV-4) form needs key size 1");
  llvm::SmallVector<int64_t> shape(in->shape.begin(), in->shape.end());
  return std::make_shared<ScanNode>(std::move(in), std::move(s), shape);
}

Expected<MapRef> mlir::glint::reference::mapAttention(
    MapRef in, const Array &q, const Array &k, double scale,
    std::optional<int64_t> window) {
  if (in->shape.size() != 4)
    return error("map_attention needs a [batch, seq, kv_heads, value] map");
  int64_t batch = in->batch(), len = in->len(), kvHeads = in->shape[2];
  if (q.rank() != 4 || q.shape[0] != batch || q.shape[1] != len)
    return error("'q' has run-time shape " + shapeString(q.shape));
  if (auto e = checkShape(k, {batch, len, kvHeads, q.shape[3]}, "k"))
    return std::move(e);
  if (kvHeads == 0 || q.shape[2] % kvHeads != 0)
    return error(llvm::formatv("{0} query heads do not divide into {1} "
                               "key/value heads",
                               q.shape[2], kvHeads));
  llvm::SmallVector<int64_t> shape = {batch, len, q.shape[2], in->shape[3]};
  return std::make_shared<AttentionNode>(std::move(in), q, k, scale,
                                         window.value_or(len), shape);
}

Expected<MapRef> mlir::glint::reference::mapAdd(MapRef lhs, MapRef rhs) {
  if (lhs->shape != rhs->shape)
    return error("map_add of maps over " + shapeString(lhs->shape) + " and " +
                 shapeString(rhs->shape));
  return std::make_shared<AddNode>(std::move(lhs), std::move(rhs));
}

Expected<MapRef> mlir::glint::reference::mapReshape(
    MapRef in, ArrayRef<int64_t> valueShape) {
  auto node = std::make_shared<ReshapeNode>(in, valueShape);
  if (valueShape.size() < 3 || valueShape[0] != in->batch() ||
      valueShape[1] != in->len() || node->channels() != in->channels())
    return error("map_reshape from " + shapeString(in->shape) + " to " +
                 shapeString(valueShape));
  return node;
}

ArrayRef<int64_t> mlir::glint::reference::mapValueShape(const MapRef &map) {
  return map->shape;
}

Expected<Array> mlir::glint::reference::reduceMap(const MapRef &map,
                                                  Aggregate aggregate,
                                                  ArrayRef<int64_t> channels,
                                                  std::optional<int64_t> row) {
  int64_t batch = map->batch(), n = map->len(), count = map->channels();
  std::vector<int64_t> selected(channels.begin(), channels.end());
  if (selected.empty())
    for (int64_t c = 0; c < count; ++c)
      selected.push_back(c);
  for (int64_t c : selected)
    if (c < 0 || c >= count)
      return error(llvm::formatv("channel {0} is out of range: the layer has "
                                 "{1} channels",
                                 c, count));
  int64_t first = 0, rows = n;
  if (row) {
    first = *row < 0 ? n + *row : *row;
    if (first < 0 || first >= n)
      return error(llvm::formatv(
          "row {0} is out of range for a sequence of {1} tokens", *row, n));
    rows = 1;
  }
  bool full = aggregate == Aggregate::Full;
  int64_t perMatrix = rows * n;
  // One channel's matrix is built at a time (with a few of the same size
  // for its factors); the result holds every selected channel only for
  // `full`.
  if (auto e = checkMemory(
          6.0 * n * n * sizeof(double),
          llvm::formatv("an L x L matrix per channel at L = {0}", n).str(),
          "explain a shorter sequence"))
    return std::move(e);
  if (full)
    if (auto e = checkMemory(
            static_cast<double>(batch) * selected.size() * perMatrix *
                sizeof(double),
            llvm::formatv("aggregate 'full' of {0} channels x {1} x {2} "
                          "(batch {3})",
                          selected.size(), rows, n, batch)
                .str(),
            "request a channel aggregate (mean, mean_abs, sum), a channel "
            "subset, or single rows"))
      return std::move(e);
  llvm::SmallVector<int64_t> shape = {batch};
  if (full)
    shape.push_back(static_cast<int64_t>(selected.size()));
  if (!row)
    shape.push_back(n);
  shape.push_back(n);
  Array out(shape);
  for (int64_t b = 0; b < batch; ++b)
    for (auto [index, c] : llvm::enumerate(selected)) {
      auto channel = map->materialise(b, c);
      if (!channel)
        return channel.takeError();
      const double *src = channel->m.data() + first * n;
      double *dst =
          out.data.data() + (full ? (b * selected.size() + index) * perMatrix
                                  : b * perMatrix);
      for (int64_t i = 0; i < perMatrix; ++i)
        dst[i] += aggregate == Aggregate::MeanAbs ? std::fabs(src[i]) : src[i];
    }
  if (aggregate == Aggregate::Mean || aggregate == Aggregate::MeanAbs)
    for (double &x : out.data)
      x /= static_cast<double>(selected.size());
  return out;
}

Expected<Array> mlir::glint::reference::applyMap(const MapRef &map,
                                                 const Array &x) {
  int64_t batch = map->batch(), n = map->len(), count = map->channels();
  if (x.rank() < 3 || x.shape[0] != batch || x.shape[1] != n)
    return error("map_apply: input has run-time shape " +
                 shapeString(x.shape) + ", expected [" +
                 std::to_string(batch) + ", " + std::to_string(n) +
                 ", channels...]");
  int64_t inChannels = x.numElements() / std::max<int64_t>(batch * n, 1);
  Array out(map->shape);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < count; ++c) {
      auto channel = map->materialise(b, c);
      if (!channel)
        return channel.takeError();
      if (channel->src < 0 || channel->src >= inChannels)
        return error(llvm::formatv("map_apply: channel {0} reads input "
                                   "channel {1} of {2}",
                                   c, channel->src, inChannels));
      for (int64_t i = 0; i < n; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j)
          sum += channel->m[i * n + j] *
                 x.data[(b * n + j) * inChannels + channel->src];
        out.data[(b * n + i) * count + c] = sum;
      }
    }
  return out;
}

Expected<Array> mlir::glint::reference::attributeMap(const MapRef &map,
                                                     const Array &grad,
                                                     const Array &input) {
  int64_t batch = map->batch(), n = map->len(), count = map->channels();
  if (grad.shape != map->shape)
    return error("map_attribution: grad has run-time shape " +
                 shapeString(grad.shape) + ", expected " +
                 shapeString(map->shape));
  if (input.rank() < 3 || input.shape[0] != batch || input.shape[1] != n)
    return error("map_attribution: input has run-time shape " +
                 shapeString(input.shape) + ", expected [" +
                 std::to_string(batch) + ", " + std::to_string(n) +
                 ", channels...]");
  if (auto e = checkMemory(
          6.0 * n * n * sizeof(double),
          llvm::formatv("an L x L matrix per channel at L = {0}", n).str(),
          "explain a shorter sequence"))
    return std::move(e);
  int64_t inChannels = input.numElements() / std::max<int64_t>(batch * n, 1);
  Array out(ArrayRef<int64_t>{batch, n, n});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < count; ++c) {
      auto channel = map->materialise(b, c);
      if (!channel)
        return channel.takeError();
      if (channel->src < 0 || channel->src >= inChannels)
        return error(llvm::formatv("map_attribution: channel {0} reads input "
                                   "channel {1} of {2}",
                                   c, channel->src, inChannels));
      double *dst = out.data.data() + b * n * n;
      for (int64_t i = 0; i < n; ++i) {
        double g = grad.data[(b * n + i) * count + c];
        for (int64_t j = 0; j < n; ++j) {
          double v = channel->m[i * n + j] * g *
                     input.data[(b * n + j) * inChannels + channel->src];
          if (v > 0.0)
            dst[i * n + j] += v;
        }
      }
    }
  for (double &x : out.data)
    x /= static_cast<double>(std::max<int64_t>(count, 1));
  return out;
}
