// File: half.h
// Internal to aggregation: IEEE binary16 (float16) and bfloat16 <-> float
// conversions, float -> 16-bit rounding to nearest even. NaN stays NaN,
// overflow becomes +-Inf.
#ifndef TESSERA_AGGREGATION_INTERNAL_HALF_H_
#define TESSERA_AGGREGATION_INTERNAL_HALF_H_

#include <cstdint>

namespace tessera {
namespace aggregation_internal {

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

}  // namespace aggregation_internal
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_INTERNAL_HALF_H_
