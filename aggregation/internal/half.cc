#include "aggregation/internal/half.h"

#include <cmath>
#include <cstring>

namespace tessera {
namespace aggregation_internal {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const float sign = (h & 0x8000) != 0 ? -1.0f : 1.0f;
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 0x1F) {
    return mantissa == 0 ? sign * INFINITY : std::copysign(NAN, sign);
  }
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = Bits(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return sign | 0x7E00;   // NaN
  if (abs >= 0x477FF000) return sign | 0x7C00;  // >= 65520 rounds to Inf
  if (abs < 0x38800000) {
    // Below the smallest normal half (2^-14): a subnormal in units of 2^-24.
    // The product is exact, and nearbyint rounds half to even in the default
    // rounding mode. A result of 0x400 is correctly the smallest normal.
    return sign |
           static_cast<uint16_t>(std::nearbyint(FromBits(abs) * 16777216.0f));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to
  // nearest even; a carry out of the mantissa correctly bumps the exponent.
  const uint32_t odd = (abs >> 13) & 1;
  abs += 0xC8000000u + 0xFFFu + odd;
  return sign | static_cast<uint16_t>(abs >> 13);
}

float BFloat16ToFloat(uint16_t b) {
  return FromBits(static_cast<uint32_t>(b) << 16);
}

uint16_t FloatToBFloat16(float f) {
  const uint32_t x = Bits(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000)
    return static_cast<uint16_t>((x >> 16) | 0x0040);
  const uint32_t rounding = 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace aggregation_internal
}  // namespace tessera
