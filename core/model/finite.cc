// The NaN/Inf scans behind CheckFinite and the aggregation's validation. They live in their
// own file so that one compile flag (core/CMakeLists.txt) makes g++ vectorize them at -O2.
#include <cstdint>
#include <cstring>

#include "core/model/tensor.h"

namespace tessera {

namespace {

// A value is NaN or Inf exactly when all its exponent bits are set. OR-ing that test over the
// array is an integer reduction, which vectorizes (a float compare chain would not, without
// -ffast-math).
template <typename Bits, typename T>
bool NoExponentAllOnes(const T* x, size_t n, Bits exponent) {
  static_assert(sizeof(Bits) == sizeof(T));
  Bits bad = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bad |= static_cast<Bits>((bits & exponent) == exponent);
  }
  return bad == 0;
}

}  // namespace

bool AllFinite(const float* x, size_t n) { return NoExponentAllOnes<uint32_t>(x, n, 0x7F800000u); }

bool AllFinite(const double* x, size_t n) {
  return NoExponentAllOnes<uint64_t>(x, n, 0x7FF0000000000000ull);
}

}  // namespace tessera
