// File: binned_sum.h
// Internal to aggregation: an element-wise sum of doubles whose result does not depend on the
// order in which the terms are added, bit for bit.
//
// Each term t is split at fixed binary positions (multiples of kBinBits, the same for every
// term and every run) into signed digits d_b(t) = sign(t) * (floor(|t| / 2^(b*kBinBits))
// mod 2^kBinBits). Each element keeps the integer sums of its digits in the kBins highest
// bins that any of its terms reached (its level, raised as larger terms arrive; bins that
// fall off the bottom are dropped with everything folded into them). Integer sums are
// associative, and the bins an element keeps at the end depend only on its largest term, so
// the final bins hold exactly
//   sum over the element's terms of trunc(t / 2^L) * 2^L,   L = (level - kBins + 1) * kBinBits
// whatever the order: each term is truncated toward zero to a grid at least
// (kBins - 1) * kBinBits = 62 bits below the element's largest term. Related to Demmel and
// Nguyen's binned reproducible summation (ReproBLAS), with integer bins.
#ifndef TESSERA_AGGREGATION_INTERNAL_BINNED_SUM_H_
#define TESSERA_AGGREGATION_INTERNAL_BINNED_SUM_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tessera {
namespace aggregation_internal {

class BinnedSum {
 public:
  static constexpr int kBinBits = 31;
  static constexpr int kBins = 3;
  // Terms per element before an int64 bin could overflow (each digit is below 2^31).
  static constexpr uint64_t kMaxTerms = uint64_t{1} << 32;
  // Bytes per element: kBins int64 bins and an int8 level.
  static constexpr uint64_t kBytesPerElement = kBins * sizeof(int64_t) + sizeof(int8_t);

  explicit BinnedSum(size_t n);

  size_t size() const { return level_.size(); }

  // Adds round(w * x[j]) (one rounding to double) to element j, j < size().
  // REQUIRES: x finite, w finite and in [FLT_MIN, FLT_MAX].
  void AddProducts(const float* x, double w);
  // Adds terms[j] to element offset + j for j < n. REQUIRES: terms finite.
  void AddTerms(const double* terms, size_t offset, size_t n);

  // Element j's sum divided by `divisor`: the exact bin sum rounded to double, then divided
  // in double (two roundings, the same bits on every machine with IEEE doubles).
  // 0 if nothing nonzero was added. May be +-Inf if the quotient overflows.
  double Quotient(size_t j, double divisor) const;

  uint64_t memory_bytes() const { return kBytesPerElement * size(); }

  // Adds every term folded into `other` to this sum: element j ends with exactly the bins it
  // would hold had it been given both sums' terms (each bin is the integer sum of its terms'
  // digits at that fixed position, so raising both to the higher level and adding the bins
  // is exact). REQUIRES: other.size() == size(), and the two together hold at most
  // kMaxTerms terms per element.
  void Merge(const BinnedSum& other);

  // The state as bytes (kBytesPerElement per element: the level, then the bins from the
  // highest, little-endian), for another process to Load and Merge.
  void AppendState(std::string& out) const;
  // Replaces the state with one AppendState wrote for a sum of size() elements and at most
  // `max_terms` terms per element. False (the state unchanged) when `bytes` is not exactly
  // that long, a level is out of range, an empty element has a nonzero bin, or a bin exceeds
  // max_terms digits (|bin| < max_terms * 2^kBinBits), which also keeps Merge from
  // overflowing.
  bool LoadState(absl::string_view bytes, uint64_t max_terms);

 private:
  void Add(size_t j, double term);

  std::vector<int8_t> level_;                     // bin index of element j's largest term
  std::array<std::vector<int64_t>, kBins> bins_;  // bins_[0][j] is bin level_[j]
};

}  // namespace aggregation_internal
}  // namespace tessera

#endif  // TESSERA_AGGREGATION_INTERNAL_BINNED_SUM_H_
