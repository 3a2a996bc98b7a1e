#include "aggregation/internal/kernels.h"

#include <cstdint>
#include <cstring>

namespace tessera {
namespace aggregation_internal {

void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

// A value is NaN or Inf exactly when all its exponent bits are set. OR-ing that
// test over the array is an integer reduction, which vectorizes (a float
// compare chain would not, without -ffast-math).
bool AllFinite(const float* x, size_t n) {
  constexpr uint32_t kExp = 0x7F800000u;
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & kExp) == kExp);
  }
  return bad == 0;
}

bool AllFinite(const double* x, size_t n) {
  constexpr uint64_t kExp = 0x7FF0000000000000ull;
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bad |= static_cast<uint64_t>((bits & kExp) == kExp);
  }
  return bad == 0;
}

}  // namespace aggregation_internal
}  // namespace tessera
