//===- Float16.h - IEEE half and bfloat16 to and from float -----*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The 16-bit float formats of checkpoints, converted one element at a time
// on the host (the compiled kernels widen in registers). Widening is exact;
// narrowing rounds to nearest, ties to even, as PyTorch's `.to()` does.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_FLOAT16_H
#define GLINT_RUNTIME_IO_FLOAT16_H

#include "llvm/ADT/bit.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace mlir::glint::runtime {

/// IEEE half to float. Every half is exactly a float, so this is exact for
/// normals, subnormals, zeros and infinities; NaNs keep their payload.
inline float halfToFloat(uint16_t half) {
  uint32_t sign = uint32_t(half & 0x8000) << 16;
  uint32_t exponent = (half >> 10) & 0x1f;
  uint32_t mantissa = half & 0x3ff;
  if (exponent == 0x1f)
    return llvm::bit_cast<float>(sign | 0x7f800000 | (mantissa << 13));
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, which a float holds exactly.
    float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  // Rebias the exponent from 15 to 127.
  return llvm::bit_cast<float>(sign | ((exponent + 112) << 23) |
                               (mantissa << 13));
}

/// bfloat16 is the high half of a float.
inline float bf16ToFloat(uint16_t bits) {
  return llvm::bit_cast<float>(uint32_t(bits) << 16);
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its bits; a NaN
/// stays a quiet NaN.
inline uint16_t floatToBF16(float x) {
  uint32_t u = llvm::bit_cast<uint32_t>(x);
  if (std::isnan(x))
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

/// `x` rounded to the nearest IEEE half (ties to even), as its bits; values
/// past the largest half become infinities.
inline uint16_t floatToHalf(float x) {
  uint32_t u = llvm::bit_cast<uint32_t>(x);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  uint32_t magnitude = u & 0x7fffffff;
  if (magnitude > 0x7f800000) // NaN
    return sign | 0x7e00;
  if (magnitude >= 0x477ff000) // Rounds past 65504, or Inf.
    return sign | 0x7c00;
  if (magnitude < 0x38800000) {
    // A half subnormal (or zero): the magnitude in units of 2^-24, rounded
    // to nearest even.
    float scaled = llvm::bit_cast<float>(magnitude) * 16777216.0f; // Exact.
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Normal: rebias the exponent (127 -> 15), round the mantissa to 10 bits.
  uint32_t rounded = magnitude + 0xfff + ((magnitude >> 13) & 1);
  return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
}

/// The index of the first element of `bits` whose exponent field (the bits
/// of `exponent`) is all ones: an Inf or a NaN of that float format (0x7f800000
/// for float, 0x7ff0000000000000 for double, 0x7f80 for bfloat16, 0x7c00 for
/// half); `count` if there is none. Blocks are scanned without branches
/// (an OR of compares, which compilers vectorise with SSE2 already); only a block that holds one is looked
/// at element by element. (Checked on every generation step's states and
/// every bound weight, so it must run at memory speed.)
template <typename Bits>
int64_t firstAllOnesExponent(const void *data, int64_t count, Bits exponent) {
  using AliasingBits __attribute__((may_alias)) = Bits;
  const auto *bits = static_cast<const AliasingBits *>(data);
  constexpr int64_t kBlock = 4096;
  for (int64_t start = 0; start < count; start += kBlock) {
    int64_t end = std::min(count, start + kBlock);
    Bits hit = 0;
    for (int64_t i = start; i < end; ++i)
      hit |= Bits((bits[i] & exponent) == exponent);
    if (hit)
      for (int64_t i = start; i < end; ++i)
        if ((bits[i] & exponent) == exponent)
          return i;
  }
  return count;
}

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_FLOAT16_H
