#include "aggregation/internal/binned_sum.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace tessera {
namespace aggregation_internal {
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

}  // namespace
}  // namespace aggregation_internal
}  // namespace tessera
