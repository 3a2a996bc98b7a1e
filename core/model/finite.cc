// The NaN/Inf scans behind CheckFinite and the aggregation's validation. They live in their
// own file so that one compile flag (core/CMakeLists.txt) makes g++ vectorize them at -O2.
#include <cstdint>
#include <cstring>

#include "core/model/finite.h"

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

// The same over n values of `size` bytes at any alignment.
template <typename Bits>
bool NoExponentAllOnes(const char* x, size_t n, Bits exponent, size_t size) {
  Bits bad = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits bits;
    std::memcpy(&bits, x + i * size, sizeof(bits));
    bad |= static_cast<Bits>((bits & exponent) == exponent);
  }
  return bad == 0;
}

}  // namespace

bool AllFinite(const float* x, size_t n) { return NoExponentAllOnes<uint32_t>(x, n, 0x7F800000u); }

bool AllFinite(const double* x, size_t n) {
  return NoExponentAllOnes<uint64_t>(x, n, 0x7FF0000000000000ull);
}

bool AllFiniteBytes(DType dtype, const char* data, size_t n) {
  switch (dtype) {
    case DType::kFloat32:
      return NoExponentAllOnes<uint32_t>(data, n, 0x7F800000u, sizeof(float));
    case DType::kFloat64:
      return NoExponentAllOnes<uint64_t>(data, n, 0x7FF0000000000000ull, sizeof(double));
    case DType::kFloat16:
      return NoExponentAllOnes<uint16_t>(data, n, uint16_t{0x7C00}, 2);
    case DType::kBFloat16:
      return NoExponentAllOnes<uint16_t>(data, n, uint16_t{0x7F80}, 2);
    default:
      return true;
  }
}

}  // namespace tessera
