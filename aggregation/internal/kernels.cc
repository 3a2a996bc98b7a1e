#include "aggregation/internal/kernels.h"

#include <cmath>
#include <cstdint>

namespace tessera {
namespace aggregation_internal {

void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

bool ScaleByLevel(const float* __restrict x, const int8_t* __restrict level,
                  const double* __restrict table, double* __restrict q, size_t n) {
  bool ok = true;
  for (size_t i = 0; i < n; ++i) {
    q[i] = static_cast<double>(x[i]) * table[level[i] + 128];
    ok &= std::fabs(q[i]) < 0x1p93;
  }
  return ok;
}

void AddDigits(int64_t* __restrict hi, int64_t* __restrict mid, int64_t* __restrict lo,
               const double* __restrict q, size_t n) {
  // Each subtraction is exact: it clears the bits already taken, and what is left has fewer
  // significant bits than q.
  for (size_t i = 0; i < n; ++i) {
    const auto d0 = static_cast<int32_t>(q[i] * 0x1p-62);
    const double r1 = q[i] - static_cast<double>(d0) * 0x1p62;
    const auto d1 = static_cast<int32_t>(r1 * 0x1p-31);
    const double r2 = r1 - static_cast<double>(d1) * 0x1p31;
    hi[i] += d0;
    mid[i] += d1;
    lo[i] += static_cast<int32_t>(r2);
  }
}

}  // namespace aggregation_internal
}  // namespace tessera
