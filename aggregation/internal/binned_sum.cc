#include "aggregation/internal/binned_sum.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "aggregation/internal/kernels.h"
#include "core/base/byte_order.h"

namespace tessera {
namespace aggregation_internal {
namespace {

constexpr int8_t kEmpty = kEmptyLevel;
constexpr int kB = BinnedSum::kBinBits;
// Double terms lie in [2^-1074, 2^1024), so levels lie in [-35, 33].
constexpr int kMinLevel = -35, kMaxLevel = 33;

// 2^e for -1022 <= e <= 1023, from its bits.
inline double Pow2(int e) {
  const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// floor(log2 |t|) for finite nonzero t.
inline int Exponent(double t) {
  uint64_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  const int biased = static_cast<int>((bits >> 52) & 0x7ff);
  return biased != 0 ? biased - 1023 : std::ilogb(t);  // ilogb only for subnormals
}

// floor(e / kB); e >= -1074, so the offset keeps the division non-negative.
inline int BinOf(int e) {
  constexpr int kOffset = 40;  // 40 * 31 > 1074
  return (e + kOffset * kB) / kB - kOffset;
}

}  // namespace

BinnedSum::BinnedSum(size_t n) : level_(n, kEmpty) {
  for (std::vector<int64_t>& b : bins_) b.assign(n, 0);
}

// Double products and terms lie in [2^-1074, 2^1024), so levels lie in [-35, 33]: int8 holds
// them, and -L = -(level - 2) * 31 lies in [-961, 1147], which two Pow2 factors cover.
namespace {

// Moves bins kept at `from` to level `to` >= from (kEmpty: none kept): the bins that fall
// off the bottom are dropped.
inline void Raise(int64_t& hi, int64_t& mid, int64_t& lo, int from, int to) {
  const int shift = from == kEmpty ? BinnedSum::kBins : to - from;
  if (shift == 0) return;
  if (shift == 1) {
    lo = mid;
    mid = hi;
  } else if (shift == 2) {
    lo = hi;
    mid = 0;
  } else {
    lo = mid = 0;
  }
  hi = 0;
}

}  // namespace

inline void BinnedSum::Add(size_t j, double term) {
  if (term == 0) return;
  int64_t& hi = bins_[0][j];
  int64_t& mid = bins_[1][j];
  int64_t& lo = bins_[2][j];
  const int bin = BinOf(Exponent(term));
  if (bin > level_[j]) {
    Raise(hi, mid, lo, level_[j], bin);
    level_[j] = static_cast<int8_t>(bin);
  }
  const int neg_l = -(level_[j] - kBins + 1) * kB;
  // Scaling by 2^-L is exact: scaling up cannot round, and scaling down leaves every
  // intermediate at least |q|, which is normal whenever it is >= 1 (smaller q has no digits).
  const double q = term * Pow2(neg_l / 2) * Pow2(neg_l - neg_l / 2);
  AddDigits(&hi, &mid, &lo, &q, 1);
}

void BinnedSum::AddProducts(const float* x, double w) {
  // In blocks, so that the few elements FoldProducts leaves (a level to raise, or a scale
  // that is not a normal double) are found again while the block is in cache.
  constexpr size_t kBlock = 2048;
  uint64_t w_bits;
  std::memcpy(&w_bits, &w, sizeof w_bits);
  const auto w_exponent = static_cast<int32_t>(w_bits >> 52);
  const size_t n = size();
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    if (FoldProducts(x + start, w, level_.data() + start, bins_[0].data() + start,
                     bins_[1].data() + start, bins_[2].data() + start, m) == 0) {
      continue;
    }
    // The same classification, with the levels FoldProducts wrote (an empty element's is
    // now its term's bin, which gives the same answer).
    for (size_t j = start; j < start + m; ++j) {
      const double term = static_cast<double>(x[j]) * w;
      if (ClassifyProduct(term, level_[j], w_exponent).slow != 0) Add(j, term);
    }
  }
}

void BinnedSum::AddTerms(const double* terms, size_t offset, size_t n) {
  for (size_t j = 0; j < n; ++j) Add(offset + j, terms[j]);
}

void BinnedSum::Merge(const BinnedSum& other) {
  const size_t n = size();
  for (size_t j = 0; j < n; ++j) {
    const int theirs = other.level_[j];
    if (theirs == kEmpty) continue;
    const int to = std::max<int>(level_[j], theirs);
    Raise(bins_[0][j], bins_[1][j], bins_[2][j], level_[j], to);
    int64_t hi = other.bins_[0][j], mid = other.bins_[1][j], lo = other.bins_[2][j];
    Raise(hi, mid, lo, theirs, to);
    bins_[0][j] += hi;
    bins_[1][j] += mid;
    bins_[2][j] += lo;
    level_[j] = static_cast<int8_t>(to);
  }
}

void BinnedSum::AppendState(std::string& out) const {
  const size_t n = size();
  out.reserve(out.size() + n * kBytesPerElement);
  for (size_t j = 0; j < n; ++j) {
    out.push_back(static_cast<char>(level_[j]));
    for (const std::vector<int64_t>& b : bins_) {
      AppendLittleEndian(out, static_cast<uint64_t>(b[j]), sizeof(int64_t));
    }
  }
}

bool BinnedSum::LoadState(absl::string_view bytes, uint64_t max_terms) {
  const size_t n = size();
  if (bytes.size() != n * kBytesPerElement || max_terms > kMaxTerms) return false;
  // |bin| <= terms * (2^kBinBits - 1) for a sum of `terms` terms.
  __extension__ using Int128 = __int128;
  const Int128 bound = static_cast<Int128>(max_terms) * ((int64_t{1} << kB) - 1);
  BinnedSum loaded(n);
  const char* p = bytes.data();
  for (size_t j = 0; j < n; ++j, p += kBytesPerElement) {
    const auto level = static_cast<int8_t>(p[0]);
    if (level != kEmpty && (level < kMinLevel || level > kMaxLevel)) return false;
    loaded.level_[j] = level;
    for (size_t b = 0; b < kBins; ++b) {
      const auto v = static_cast<int64_t>(LoadLittleEndian(p + 1 + b * sizeof(int64_t), 8));
      const Int128 m = v < 0 ? -static_cast<Int128>(v) : static_cast<Int128>(v);
      if (m > bound || (level == kEmpty && v != 0)) return false;
      loaded.bins_[b][j] = v;
    }
  }
  *this = std::move(loaded);
  return true;
}

double BinnedSum::Quotient(size_t j, double divisor) const {
  if (level_[j] == kEmpty) return 0.0;
  __extension__ using Int128 = __int128;
  // |bins| < 2^63 each, so the total is below 2^126: no overflow.
  const Int128 sum = (static_cast<Int128>(bins_[0][j]) << (2 * kB)) +
                     (static_cast<Int128>(bins_[1][j]) << kB) + static_cast<Int128>(bins_[2][j]);
  // Divide, then scale by 2^L (exact unless the result is subnormal or overflows).
  const int l = (level_[j] - kBins + 1) * kB;
  return static_cast<double>(sum) / divisor * Pow2(l / 2) * Pow2(l - l / 2);
}

}  // namespace aggregation_internal
}  // namespace tessera
