#include "aggregation/internal/kernels.h"

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

}  // namespace aggregation_internal
}  // namespace tessera
