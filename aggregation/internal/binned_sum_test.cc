#include "aggregation/internal/binned_sum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "aggregation/internal/kernels.h"

namespace tessera {
namespace aggregation_internal {

// Names the kernel variant in a failed parameterized test (found by argument-dependent
// lookup, so it lives in the type's namespace).
void PrintTo(const FoldProductsVariant& v, std::ostream* os) { *os << v.name; }

namespace {

// The sum of `terms` (one element) added in the given order, divided by 1.
double SumInOrder(const std::vector<double>& terms) {
  BinnedSum s(1);
  for (double t : terms) s.AddTerms(&t, 0, 1);
  return s.Quotient(0, 1.0);
}

TEST(BinnedSumTest, EveryOrderOfMixedMagnitudesGivesTheExactSum) {
  // Terms k * 2^e with |k| < 2^20 and e in [-40, 30]: the exact sum is an integer multiple of
  // 2^-40 below 2^71, computed here in int128, and every term lies within 62 bits of the
  // largest, so no truncation applies and the result is the exact sum rounded once.
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> terms;
    __extension__ __int128 exact = 0;
    for (int i = 0; i < 7; ++i) {
      const auto k = static_cast<int64_t>(rng() % (1u << 20)) - (1 << 19);
      const int e = static_cast<int>(rng() % 71) - 40;
      terms.push_back(std::ldexp(static_cast<double>(k), e));
      exact += static_cast<__int128>(k) << (e + 40);
    }
    const double want = std::ldexp(static_cast<double>(exact), -40);
    std::sort(terms.begin(), terms.end());
    int orders = 0;
    do {
      ASSERT_EQ(SumInOrder(terms), want) << "trial " << trial << " order " << orders;
      ++orders;
    } while (std::next_permutation(terms.begin(), terms.end()));
    EXPECT_EQ(orders, 5040);
  }
}

TEST(BinnedSumTest, TruncatesBelowTheGridTheSameWayInEveryOrder) {
  // 2^92 sets the element's level to bin 2 (bits 62..92), so the grid is 2^0 and 0.5
  // is truncated away: the sum is 0 in every order, where naive float addition gives
  // 0.5 or 0 depending on the order.
  std::vector<double> terms = {-0x1p92, 0.5, 0x1p92};
  do {
    EXPECT_EQ(SumInOrder(terms), 0.0);
  } while (std::next_permutation(terms.begin(), terms.end()));
  // A small term folded before the large one arrives is truncated to the same grid: 1.5
  // keeps its integer part in both orders.
  EXPECT_EQ(SumInOrder({1.5, 0x1p80, -0x1p80}), 1.0);
  EXPECT_EQ(SumInOrder({0x1p80, -0x1p80, 1.5}), 1.0);
}

TEST(BinnedSumTest, ExtremeMagnitudesSurvive) {
  EXPECT_EQ(SumInOrder({4.9406564584124654e-324}), 4.9406564584124654e-324);  // subnormal
  EXPECT_EQ(SumInOrder({DBL_MAX / 4, DBL_MAX / 4}), DBL_MAX / 2);
  EXPECT_EQ(SumInOrder({0x1p-996, -0x1.8p-995}), -0x1p-995);  // 2^-996 - 3 * 2^-996
  EXPECT_EQ(SumInOrder({-7.0}), -7.0);
  EXPECT_EQ(SumInOrder({}), 0.0);
  EXPECT_EQ(SumInOrder({0.0, -0.0}), 0.0);
}

TEST(BinnedSumTest, ProductsAndQuotient) {
  // 3 * {0.5, -2} + 5 * {0.25, 1} = {2.75, -1}; divided by 8.
  BinnedSum s(2);
  const float a[] = {0.5f, -2.0f}, b[] = {0.25f, 1.0f};
  s.AddProducts(a, 3.0);
  s.AddProducts(b, 5.0);
  EXPECT_EQ(s.Quotient(0, 8.0), 2.75 / 8);
  EXPECT_EQ(s.Quotient(1, 8.0), -1.0 / 8);
  EXPECT_EQ(s.memory_bytes(), 2 * (3 * 8 + 1));
}

TEST(BinnedSumTest, ManyTermsCarryAcrossBins) {
  // 2^20 copies of 2^62 - 2^9 (53 one bits): both kept digits are near their maximum, so
  // the bins carry far beyond 31 bits; the exact total is 2^20 times the term.
  const double term = 0x1p62 - 0x1p9;
  BinnedSum s(1);
  for (int i = 0; i < (1 << 20); ++i) s.AddTerms(&term, 0, 1);
  EXPECT_EQ(s.Quotient(0, 1.0), std::ldexp(term, 20));
}

TEST(BinnedSumTest, MergeRaisesAPartialToTheHigherLevelAndDropsItsLowBins) {
  // Partial a = {1.5, 0.125} (level -1: both kept exactly, 1.625); partial b = {2^62, -2^62}
  // (level 2: the grid is 2^((2 - 2) * 31) = 1, sum 0). One sum of all four terms keeps its
  // bins at level 2, where each term is truncated to an integer: 1 + 0 + 2^62 - 2^62 = 1.
  // Merging must give that 1, not 1.625.
  const double a_terms[] = {1.5, 0.125}, b_terms[] = {0x1p62, -0x1p62};
  BinnedSum a(1), b(1), whole(1);
  for (double t : a_terms) a.AddTerms(&t, 0, 1);
  for (double t : b_terms) b.AddTerms(&t, 0, 1);
  for (double t : {1.5, 0x1p62, 0.125, -0x1p62}) whole.AddTerms(&t, 0, 1);
  EXPECT_EQ(a.Quotient(0, 1.0), 1.625);
  EXPECT_EQ(whole.Quotient(0, 1.0), 1.0);
  BinnedSum ab = a, ba = b;
  ab.Merge(b);
  ba.Merge(a);
  EXPECT_EQ(ab.Quotient(0, 1.0), 1.0);
  EXPECT_EQ(ba.Quotient(0, 1.0), 1.0);
  // An empty partial changes nothing; merging into an empty sum copies.
  BinnedSum empty(1);
  a.Merge(empty);
  EXPECT_EQ(a.Quotient(0, 1.0), 1.625);
  empty.Merge(a);
  EXPECT_EQ(empty.Quotient(0, 1.0), 1.625);
}

TEST(BinnedSumTest, StateRoundTripsAndLoadChecksIt) {
  BinnedSum s(2);
  const double terms[] = {-3.25, 0x1p40};
  s.AddTerms(terms, 0, 2);  // element 0: -3.25; element 1: 2^40
  std::string bytes;
  s.AppendState(bytes);
  ASSERT_EQ(bytes.size(), 2 * BinnedSum::kBytesPerElement);
  BinnedSum back(2);
  ASSERT_TRUE(back.LoadState(bytes, 1));
  EXPECT_EQ(back.Quotient(0, 1.0), -3.25);
  EXPECT_EQ(back.Quotient(1, 1.0), 0x1p40);
  EXPECT_FALSE(back.LoadState(bytes.substr(1), 1));
  EXPECT_FALSE(back.LoadState(bytes, 0));  // nonzero bins from no terms
  EXPECT_FALSE(back.LoadState(bytes, BinnedSum::kMaxTerms + 1));
  std::string empty_with_bin(2 * BinnedSum::kBytesPerElement, '\0');
  empty_with_bin[0] = static_cast<char>(-128);  // empty element...
  empty_with_bin[1] = 1;                        // ...with a nonzero bin
  empty_with_bin[BinnedSum::kBytesPerElement] = static_cast<char>(-128);
  EXPECT_FALSE(back.LoadState(empty_with_bin, 5));
  EXPECT_EQ(back.Quotient(1, 1.0), 0x1p40);  // a refused load leaves the state
}

// ---- The vectorized fold of float32 products (kernels.h FoldProducts), every variant.

__extension__ using Int128 = __int128;

// An independent reference for one element (binned_sum.h's contract, computed directly):
// the element's level is the bin floor(floor(log2 |t|) / 31) of its largest nonzero term, and
// its sum is the exact sum of trunc(t / 2^L) * 2^L, L = (level - 2) * 31, rounded once to
// double (Quotient with divisor 1). 0 when every term is zero.
double ReferenceSum(const std::vector<double>& terms) {
  int level = -1000;
  for (double t : terms) {
    if (t == 0) continue;
    const int e = std::ilogb(t);
    level = std::max(level, e >= 0 ? e / 31 : -((-e + 30) / 31));
  }
  if (level == -1000) return 0.0;
  const int l = (level - 2) * 31;
  Int128 sum = 0;
  for (double t : terms) {
    // |t / 2^L| < 2^93: its truncation is an integer that a double holds and an int128 takes.
    sum += static_cast<Int128>(std::trunc(std::ldexp(t, -l)));
  }
  return std::ldexp(static_cast<double>(sum), l);
}

// A float32 with random bits, never NaN or Inf; zeros and subnormals included.
float RandomFloat(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0:
      return 0.0f;
    case 1:
      return -0.0f;
    case 2:  // subnormal
      return std::bit_cast<float>(static_cast<uint32_t>(rng()) & 0x807fffffu);
    case 3:  // a typical update value
      return static_cast<float>(static_cast<int64_t>(rng() % 2000001) - 1000000) * 1e-7f;
    default: {
      uint32_t bits = static_cast<uint32_t>(rng());
      if ((bits & 0x7f800000u) == 0x7f800000u) bits &= 0xbfffffffu;  // Inf/NaN -> finite
      return std::bit_cast<float>(bits);
    }
  }
}

// A weight in [FLT_MIN, FLT_MAX]: example counts, the extremes, random magnitudes.
double RandomWeight(std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0:
      return static_cast<double>(1 + rng() % 5000);
    case 1:
      return FLT_MIN;
    case 2:
      return FLT_MAX;
    default:
      return std::ldexp(1.0 + static_cast<double>(rng() % 1000000) / 1e6,
                        static_cast<int>(rng() % 253) - 126);
  }
}

// Runs the test body with BinnedSum's fold set to each variant this CPU supports.
class FoldVariantTest : public ::testing::TestWithParam<FoldProductsVariant> {
 protected:
  void SetUp() override {
    if (!GetParam().supported) GTEST_SKIP() << GetParam().name << " not supported here";
    previous_ = UseFoldProductsVariant(GetParam().fn);
  }
  void TearDown() override {
    if (GetParam().supported) UseFoldProductsVariant(previous_);
  }
  FoldProductsFn previous_ = nullptr;
};

TEST_P(FoldVariantTest, MatchesTheExactReferenceAtEveryBlockTail) {
  // Sizes around the vector widths (2, 4, 8, 16, 32, 64 lanes) and BinnedSum's 2048 block.
  std::mt19937_64 rng(11);
  for (size_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 2047, 2048, 2049,
                   4097}) {
    constexpr int kUpdates = 5;
    std::vector<std::vector<float>> xs(kUpdates, std::vector<float>(n));
    std::vector<double> ws(kUpdates);
    BinnedSum sum(n), scalar(n);
    for (int k = 0; k < kUpdates; ++k) {
      for (float& v : xs[k]) v = RandomFloat(rng);
      ws[k] = RandomWeight(rng);
      sum.AddProducts(xs[k].data(), ws[k]);
      for (size_t j = 0; j < n; ++j) {
        const double t = static_cast<double>(xs[k][j]) * ws[k];
        scalar.AddTerms(&t, j, 1);
      }
    }
    for (size_t j = 0; j < n; ++j) {
      std::vector<double> terms;
      for (int k = 0; k < kUpdates; ++k) terms.push_back(static_cast<double>(xs[k][j]) * ws[k]);
      ASSERT_EQ(sum.Quotient(j, 1.0), ReferenceSum(terms)) << "n " << n << " element " << j;
    }
    // The whole state (levels and bins), not only the sums, equals the one-by-one fold's.
    std::string fast_state, scalar_state;
    sum.AppendState(fast_state);
    scalar.AppendState(scalar_state);
    ASSERT_EQ(fast_state, scalar_state) << "n " << n;
  }
}

TEST_P(FoldVariantTest, LevelsOutsideTheProductRangeTakeTheScalarPath) {
  // Double terms set levels that float32 products cannot reach: 1.5 * 2^1023 (bin 33, where
  // w * 2^-L is subnormal for w = FLT_MIN) and 2^-1074 (bin -35, raised by any product, and
  // where w * 2^-L overflows for w = 1). The products are then truncated to that element's
  // grid or raise it, exactly as the reference says.
  const double huge = 0x1.8p1023, tiny = 0x1p-1074;
  const float x[] = {3.0f, -0x1p100f, 0.0f, 0x1p-149f};
  for (double w : {static_cast<double>(FLT_MIN), 1.0, 7.0, static_cast<double>(FLT_MAX)}) {
    BinnedSum high(4), low(4);
    for (size_t j = 0; j < 4; ++j) {
      high.AddTerms(&huge, j, 1);
      low.AddTerms(&tiny, j, 1);
    }
    high.AddProducts(x, w);
    low.AddProducts(x, w);
    for (size_t j = 0; j < 4; ++j) {
      const double t = static_cast<double>(x[j]) * w;
      EXPECT_EQ(high.Quotient(j, 1.0), ReferenceSum({huge, t})) << "w " << w << " j " << j;
      EXPECT_EQ(low.Quotient(j, 1.0), ReferenceSum({tiny, t})) << "w " << w << " j " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, FoldVariantTest, ::testing::ValuesIn(FoldProductsVariants()),
                         [](const ::testing::TestParamInfo<FoldProductsVariant>& info) {
                           return std::string(info.param.name);
                         });

TEST(FoldProductsTest, AnEmptyElementTakesItsFirstTermsBinWithoutTheScalarPath) {
  // Hand-derived: 1 (exponent 0) is in bin 0, so L = -62 and its digits are (1, 0, 0);
  // -2^40 is in bin 1 (31 <= 40 < 62), L = -31, q = -2^71: digits (-2^9, 0, 0); 0 leaves the
  // element empty; 2^-20 is in bin -1, L = -93, q = 2^73: digits (2^11, 0, 0).
  for (const FoldProductsVariant& v : FoldProductsVariants()) {
    if (!v.supported) continue;
    const float x[] = {1.0f, -0x1p40f, 0.0f, 0x1p-20f};
    int8_t level[4];
    std::fill(level, level + 4, static_cast<int8_t>(kEmptyLevel));
    int64_t hi[4] = {}, mid[4] = {}, lo[4] = {};
    EXPECT_EQ(v.fn(x, 1.0, level, hi, mid, lo, 4), 0u) << v.name;
    EXPECT_EQ(std::vector<int>(level, level + 4), (std::vector<int>{0, 1, kEmptyLevel, -1}))
        << v.name;
    EXPECT_EQ(std::vector<int64_t>(hi, hi + 4), (std::vector<int64_t>{1, -512, 0, 2048}))
        << v.name;
    EXPECT_EQ(std::vector<int64_t>(mid, mid + 4), (std::vector<int64_t>{0, 0, 0, 0})) << v.name;
    EXPECT_EQ(std::vector<int64_t>(lo, lo + 4), (std::vector<int64_t>{0, 0, 0, 0})) << v.name;
    // A term in a higher bin than the element's level is left for the scalar path, the
    // element unchanged: 2^31 is in bin 1 > 0.
    const float big[] = {0x1p31f};
    EXPECT_EQ(v.fn(big, 1.0, level, hi, mid, lo, 1), 1u) << v.name;
    EXPECT_EQ(level[0], 0) << v.name;
    EXPECT_EQ(hi[0], 1) << v.name;
  }
}

TEST(FoldProductsTest, TermBinIsTheFloorOfTheExponentOverThirtyOneForEveryExponent) {
  // ClassifyProduct's multiply-shift against integer floor division, for every biased
  // exponent of a normal double: an empty element takes the term's bin.
  for (int biased = 1; biased <= 2046; ++biased) {
    const double t = std::bit_cast<double>(static_cast<uint64_t>(biased) << 52);
    const int e = biased - 1023;
    const int want = e >= 0 ? e / 31 : -((-e + 30) / 31);
    EXPECT_EQ(ClassifyProduct(t, kEmptyLevel, 1023).level, want) << "exponent " << e;
  }
  EXPECT_EQ(ClassifyProduct(0.0, kEmptyLevel, 1023).level, kEmptyLevel);
  EXPECT_EQ(ClassifyProduct(-0.0, 5, 1023).level, 5);
}

}  // namespace
}  // namespace aggregation_internal
}  // namespace tessera
