#include "aggregation/internal/kernels.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tessera {
namespace aggregation_internal {

void Axpy(float* __restrict acc, const float* __restrict x, float w, size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
}

void Axpy(double* __restrict acc, const double* __restrict x, double w,
          size_t n) {
  for (size_t i = 0; i < n; ++i) acc[i] += w * x[i];
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

namespace {

// FoldProducts, inlined into one function per instruction set. D is the integer type the
// digits are converted to: int32 (cvttpd2dq, every x86-64) or int64 (AVX-512's cvttpd2qq,
// no sign extension); each digit is below 2^31 in magnitude, so both give the same values.
// The float arithmetic is the same in every variant: one rounding of x * w and of
// x * (w * 2^-L), then exact steps (a contracted fused multiply-add of q - d * 2^k would be
// exact too: d * 2^k is exact).
template <typename D>
[[gnu::always_inline]] inline size_t FoldProductsBody(const float* __restrict x, double w,
                                                      int8_t* __restrict level,
                                                      int64_t* __restrict hi,
                                                      int64_t* __restrict mid,
                                                      int64_t* __restrict lo, size_t n) {
  uint64_t w_bits;
  std::memcpy(&w_bits, &w, sizeof w_bits);
  const auto w_exponent = static_cast<int32_t>(w_bits >> 52);
  size_t slow = 0;
  for (size_t i = 0; i < n; ++i) {
    const ProductLane lane = ClassifyProduct(static_cast<double>(x[i]) * w, level[i], w_exponent);
    // w * 2^-L from w's bits (exact when the lane folds), and zero when it does not.
    const uint64_t scale_bits =
        (w_bits + (static_cast<uint64_t>(static_cast<int64_t>((2 - lane.level) * 31)) << 52)) &
        static_cast<uint64_t>(static_cast<int64_t>(lane.fold));
    double scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    const double q = static_cast<double>(x[i]) * scale;
    slow -= static_cast<size_t>(static_cast<int64_t>(lane.slow));  // += 1 where slow
    // As AddDigits: each subtraction is exact.
    const auto d0 = static_cast<D>(q * 0x1p-62);
    const double r1 = q - static_cast<double>(d0) * 0x1p62;
    const auto d1 = static_cast<D>(r1 * 0x1p-31);
    const double r2 = r1 - static_cast<double>(d1) * 0x1p31;
    hi[i] += d0;
    mid[i] += d1;
    lo[i] += static_cast<D>(r2);
    level[i] = static_cast<int8_t>(lane.level);
  }
  return slow;
}

size_t FoldProductsPortable(const float* __restrict x, double w, int8_t* __restrict level,
                            int64_t* __restrict hi, int64_t* __restrict mid,
                            int64_t* __restrict lo, size_t n) {
  return FoldProductsBody<int32_t>(x, w, level, hi, mid, lo, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TESSERA_FOLD_VARIANTS 1
__attribute__((target("avx2"))) size_t FoldProductsAvx2(
    const float* __restrict x, double w, int8_t* __restrict level, int64_t* __restrict hi,
    int64_t* __restrict mid, int64_t* __restrict lo, size_t n) {
  return FoldProductsBody<int32_t>(x, w, level, hi, mid, lo, n);
}

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) size_t FoldProductsAvx512(
    const float* __restrict x, double w, int8_t* __restrict level, int64_t* __restrict hi,
    int64_t* __restrict mid, int64_t* __restrict lo, size_t n) {
  return FoldProductsBody<int64_t>(x, w, level, hi, mid, lo, n);
}
#endif

FoldProductsFn ChooseFoldProducts() {
  FoldProductsFn best = nullptr;
  for (const FoldProductsVariant& v : FoldProductsVariants()) {
    if (v.supported) best = v.fn;
  }
  return best;
}

std::atomic<FoldProductsFn>& ChosenFoldProducts() {
  static std::atomic<FoldProductsFn> fn{ChooseFoldProducts()};
  return fn;
}

}  // namespace

std::vector<FoldProductsVariant> FoldProductsVariants() {
  std::vector<FoldProductsVariant> out = {{"portable", &FoldProductsPortable, true}};
#ifdef TESSERA_FOLD_VARIANTS
  __builtin_cpu_init();
  out.push_back({"avx2", &FoldProductsAvx2, __builtin_cpu_supports("avx2") != 0});
  out.push_back({"avx512", &FoldProductsAvx512,
                 __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")});
#endif
  return out;
}

size_t FoldProducts(const float* __restrict x, double w, int8_t* __restrict level,
                    int64_t* __restrict hi, int64_t* __restrict mid, int64_t* __restrict lo,
                    size_t n) {
  return ChosenFoldProducts().load(std::memory_order_relaxed)(x, w, level, hi, mid, lo, n);
}

FoldProductsFn UseFoldProductsVariant(FoldProductsFn fn) {
  return ChosenFoldProducts().exchange(fn != nullptr ? fn : ChooseFoldProducts());
}

}  // namespace aggregation_internal
}  // namespace tessera
