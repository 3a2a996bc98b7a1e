// File: kernels.h
// Internal to aggregation: the memory-bound inner loops. They live in their own
// file so that one compile flag (see aggregation/CMakeLists.txt) makes g++
// vectorize them at -O2, and so they stay free of branches the vectorizer
// cannot handle.
#ifndef TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
#define TESSERA_AGGREGATION_INTERNAL_KERNELS_H_

#include <cstddef>

namespace tessera {
namespace aggregation_internal {

// acc[i] += w * x[i] for i in [0, n). REQUIRES: acc and x do not overlap.
void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n);
void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n);

}  // namespace aggregation_internal
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
