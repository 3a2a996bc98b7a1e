// File: kernels.h
// Internal to aggregation: the memory-bound inner loops. They live in their own
// file so that one compile flag (see aggregation/CMakeLists.txt) makes g++
// vectorize them at -O2, and so they stay free of branches the vectorizer
// cannot handle.
#ifndef TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
#define TESSERA_AGGREGATION_INTERNAL_KERNELS_H_

#include <cstddef>
#include <cstdint>

namespace tessera {
namespace aggregation_internal {

// acc[i] += w * x[i] for i in [0, n). REQUIRES: acc and x do not overlap.
void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n);
void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n);

// BinnedSum's fast path. q[i] = x[i] * table[level[i] + 128]; returns whether every
// |q[i]| < 2^93 (false also for NaN, which the table uses to send an element to the slow
// path). REQUIRES: the arrays do not overlap; table has 256 entries.
bool ScaleByLevel(const float* __restrict x, const int8_t* __restrict level,
                  const double* __restrict table, double* __restrict q, size_t n);
// hi[i] += trunc(q[i] / 2^62), mid[i] += the next 31 bits, lo[i] += the next 31 bits, each
// with q[i]'s sign. REQUIRES: |q[i]| < 2^93; the arrays do not overlap.
void AddDigits(int64_t* __restrict hi, int64_t* __restrict mid, int64_t* __restrict lo,
               const double* __restrict q, size_t n);

}  // namespace aggregation_internal
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
