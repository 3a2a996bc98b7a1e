// File: kernels.h
// Internal to aggregation: the memory-bound inner loops. They live in their own
// file so that one compile flag (see aggregation/CMakeLists.txt) makes g++
// vectorize them at -O2, and so they stay free of branches the vectorizer
// cannot handle.
#ifndef TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
#define TESSERA_AGGREGATION_INTERNAL_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tessera {
namespace aggregation_internal {

// acc[i] += w * x[i] for i in [0, n). REQUIRES: acc and x do not overlap.
void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n);
void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n);

// hi[i] += trunc(q[i] / 2^62), mid[i] += the next 31 bits, lo[i] += the next 31 bits, each
// with q[i]'s sign. REQUIRES: |q[i]| < 2^93; the arrays do not overlap.
void AddDigits(int64_t* __restrict hi, int64_t* __restrict mid, int64_t* __restrict lo,
               const double* __restrict q, size_t n);

// BinnedSum's fast path (binned_sum.h has the bins and levels; kEmptyLevel is an element
// that holds nothing yet). For one term t = x * w (a float32 times a weight in
// [FLT_MIN, FLT_MAX]: zero or a normal double), ProductLane says what FoldProducts does
// with the element whose level is `level`:
//   level: its level afterwards: an empty element takes the bin of a nonzero t;
//   fold:  all ones when t's digits are added here; then the level is at least t's bin and
//          w * 2^-L is a normal double, so x * (w * 2^-L) is t * 2^-L exactly;
//   slow:  all ones when t is nonzero and was not added: it needs a higher level, or
//          w * 2^-L is not a normal double (levels only LoadState brings in); the caller
//          adds it one by one (BinnedSum::Add).
// The masks are int32 arithmetic, not branches, so that the same function inlined into the
// vectorized loop and into the caller's scalar pass gives the same answers.
constexpr int32_t kEmptyLevel = -128;
struct ProductLane {
  int32_t level;
  int32_t fold;
  int32_t slow;
};
inline ProductLane ClassifyProduct(double t, int32_t level, int32_t w_biased_exponent) {
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  const auto biased = static_cast<int32_t>((bits >> 52) & 0x7ff);  // 0 only for t == 0
  const int32_t zero = (biased - 1) >> 31;
  // floor((biased - 1023) / 31) as ((biased + 217) * 33826 >> 20) - 40: exact for
  // 0 <= biased + 217 < 4096 (checked for every biased exponent in binned_sum_test).
  const int32_t bin = (((biased + 217) * 33826) >> 20) - 40;
  const int32_t term_bin = (bin & ~zero) | (kEmptyLevel & zero);
  const int32_t empty = (level - kEmptyLevel - 1) >> 31;
  const int32_t lvl = (term_bin & empty) | (level & ~empty);
  const int32_t raise = (lvl - term_bin) >> 31;
  // w * 2^-L with L = (lvl - 2) * 31 is normal iff its biased exponent is in [1, 2046].
  const int32_t scaled = w_biased_exponent + (2 - lvl) * 31;
  const int32_t bad_scale = ((scaled - 1) | (2046 - scaled)) >> 31;
  return {lvl, ~(bad_scale | raise), (bad_scale | raise) & ~zero};
}

// For i in [0, n): t = double(x[i]) * w (rounded once), classified by ClassifyProduct with
// level[i]: level[i] is set to the lane's level and, where it says fold, hi/mid/lo[i] get the
// digits of t * 2^-L as AddDigits adds them. Returns how many elements it marked slow; they
// are unchanged but for an empty element's level. REQUIRES: x finite; w finite and in
// [FLT_MIN, FLT_MAX]; the arrays do not overlap.
size_t FoldProducts(const float* __restrict x, double w, int8_t* __restrict level,
                    int64_t* __restrict hi, int64_t* __restrict mid, int64_t* __restrict lo,
                    size_t n);

// The compiled variants of FoldProducts, the portable one first (for tests and the bench;
// FoldProducts runs the last one this CPU supports, chosen once). They differ only in the
// instruction set the compiler vectorized for; every variant gives the same bits.
using FoldProductsFn = size_t (*)(const float* __restrict, double, int8_t* __restrict,
                                  int64_t* __restrict, int64_t* __restrict,
                                  int64_t* __restrict, size_t);
struct FoldProductsVariant {
  const char* name;
  FoldProductsFn fn;
  bool supported;  // this CPU (and OS) runs it
};
std::vector<FoldProductsVariant> FoldProductsVariants();
// Tests and the bench: makes FoldProducts (and so BinnedSum) run `fn` (one this CPU
// supports), null: the CPU's choice again. Returns the one it ran before.
FoldProductsFn UseFoldProductsVariant(FoldProductsFn fn);

}  // namespace aggregation_internal
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_INTERNAL_KERNELS_H_
