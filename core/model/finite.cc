// The NaN/Inf scans behind CheckFinite and the aggregation's validation. They live in their
// own file so that one compile flag (core/CMakeLists.txt) makes g++ vectorize them at -O2.
#include <cstdint>
#include <cstring>

#include "core/model/tensor.h"

namespace tessera {

// A value is NaN or Inf exactly when all its exponent bits are set. OR-ing that test over the
// array is an integer reduction, which vectorizes (a float compare chain would not, without
// -ffast-math).
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

}  // namespace tessera
