#include "privacy/dp/discrete_gaussian.h"
#include "privacy/dp/testing/seeded_random.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/types/span.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::dp {
namespace {

TEST(BernoulliExpTest, MatchesExpFrequencies) {
  SecureRandom rng = Seeded('b');
  constexpr int kN = 100000;
  struct Case { uint64_t num, den; };
  for (Case c : {Case{1, 2}, Case{3, 1}, Case{6, 2}, Case{7, 10}}) {
    int hits = 0;
    for (int i = 0; i < kN; ++i) hits += BernoulliExp(c.num, c.den, rng) ? 1 : 0;
    const double p = std::exp(-static_cast<double>(c.num) / c.den);
    const double freq = static_cast<double>(hits) / kN;
    std::printf("BernoulliExp(%lu/%lu): freq %.5f, exp %.5f\n", static_cast<unsigned long>(c.num),
                static_cast<unsigned long>(c.den), freq, p);
    EXPECT_NEAR(freq, p, 4 * std::sqrt(p * (1 - p) / kN));
  }
}

TEST(BernoulliExpTest, EdgeCases) {
  SecureRandom rng = Seeded('e');
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(BernoulliExp(0, 5, rng));
    EXPECT_FALSE(BernoulliExp(1, 0, rng));
    EXPECT_FALSE(BernoulliExp(UINT64_MAX, 1, rng));  // exp(-2^64)
  }
}

TEST(DiscreteLaplaceTest, MatchesMassAndVariance) {
  SecureRandom rng = Seeded('l');
  constexpr int kN = 50000;
  // Scale t/s = 3/2: P(y) = (1 - q) / (1 + q) q^|y| with q = exp(-2/3).
  const double q = std::exp(-2.0 / 3.0);
  double sum = 0, sum2 = 0;
  int zeros = 0;
  for (int i = 0; i < kN; ++i) {
    const double y = static_cast<double>(DiscreteLaplace(2, 3, rng));
    sum += y;
    sum2 += y * y;
    zeros += y == 0 ? 1 : 0;
  }
  const double var = 2 * q / ((1 - q) * (1 - q));
  const double p0 = (1 - q) / (1 + q);
  EXPECT_NEAR(sum / kN, 0.0, 4 * std::sqrt(var / kN));
  EXPECT_NEAR(sum2 / kN / var, 1.0, 0.05);
  EXPECT_NEAR(static_cast<double>(zeros) / kN, p0, 4 * std::sqrt(p0 * (1 - p0) / kN));
  EXPECT_EQ(DiscreteLaplace(0, 3, rng), 0);
}

// The exact N_Z(0, sigma^2) mass at 0 and variance, by summing over |x| <= 60 sigma + 60.
struct ExactMoments { double p0, variance; std::map<int64_t, double> mass; };
ExactMoments Exact(double sigma2) {
  const int64_t r = static_cast<int64_t>(60 * std::sqrt(sigma2)) + 60;
  double z = 0, m2 = 0;
  for (int64_t x = -r; x <= r; ++x) {
    const double w = std::exp(-static_cast<double>(x * x) / (2 * sigma2));
    z += w;
    m2 += static_cast<double>(x * x) * w;
  }
  ExactMoments e{1 / z, m2 / z, {}};
  for (int64_t x = -r; x <= r; ++x) {
    e.mass[x] = std::exp(-static_cast<double>(x * x) / (2 * sigma2)) / z;
  }
  return e;
}

struct GaussCase { uint64_t num, den; char seed; };
class DiscreteGaussianStatsTest : public ::testing::TestWithParam<GaussCase> {};

TEST_P(DiscreteGaussianStatsTest, MatchesExactDistribution) {
  const GaussCase c = GetParam();
  const double sigma2 = static_cast<double>(c.num) / c.den;
  const ExactMoments exact = Exact(sigma2);
  SecureRandom rng = Seeded(c.seed);
  constexpr int kN = 50000;
  std::map<int64_t, int> counts;
  double sum = 0, sum2 = 0;
  int pos = 0, neg = 0;
  for (int i = 0; i < kN; ++i) {
    absl::StatusOr<int64_t> y = SampleDiscreteGaussian(c.num, c.den, rng);
    ASSERT_THAT(y, IsOk());
    sum += static_cast<double>(*y);
    sum2 += static_cast<double>(*y) * static_cast<double>(*y);
    pos += *y > 0 ? 1 : 0;
    neg += *y < 0 ? 1 : 0;
    ++counts[*y];
  }
  const double mean = sum / kN;
  const double var = sum2 / kN - mean * mean;
  // Pearson chi-square over the cells with expected count >= 20, plus one pooled tail cell.
  double chi2 = 0, tail_expected = kN;
  int cells = 0, tail_observed = kN;
  for (const auto& [x, p] : exact.mass) {
    const double expected = p * kN;
    if (expected < 20) continue;
    const auto it = counts.find(x);
    const int observed = it == counts.end() ? 0 : it->second;
    chi2 += (observed - expected) * (observed - expected) / expected;
    tail_expected -= expected;
    tail_observed -= observed;
    ++cells;
  }
  if (tail_expected >= 1) {
    chi2 += (tail_observed - tail_expected) * (tail_observed - tail_expected) / tail_expected;
    ++cells;
  }
  const double df = cells - 1;
  const double p0 = static_cast<double>(counts[0]) / kN;
  std::printf("sigma^2=%.2f: mean %.4f, var %.4f (exact %.4f, rel %+.4f), P0 %.4f (exact %.4f), "
              "pos %d neg %d, chi2 %.1f on %.0f df\n",
              sigma2, mean, var, exact.variance, var / exact.variance - 1, p0, exact.p0, pos,
              neg, chi2, df);
  EXPECT_LT(std::abs(mean), 4 * std::sqrt(exact.variance / kN));
  EXPECT_NEAR(var / exact.variance, 1.0, 0.04);
  EXPECT_LT(std::abs(pos - neg), 4 * std::sqrt(static_cast<double>(pos + neg)));
  EXPECT_NEAR(p0, exact.p0, 4 * std::sqrt(exact.p0 * (1 - exact.p0) / kN));
  EXPECT_LT(chi2, df + 5 * std::sqrt(2 * df));
}

INSTANTIATE_TEST_SUITE_P(Sigmas, DiscreteGaussianStatsTest,
                         ::testing::Values(GaussCase{4, 1, '4'}, GaussCase{25, 1, '5'},
                                           GaussCase{5, 2, '2'}, GaussCase{1, 4, 'q'}));

TEST(DiscreteGaussianTest, ExactVarianceIsBelowSigma2ForSmallSigma) {
  EXPECT_LT(Exact(0.25).variance, 0.25 * 0.9);
  EXPECT_NEAR(Exact(4).variance, 4.0, 1e-6);
}

TEST(DiscreteGaussianTest, DeterministicWithFromSeed) {
  SecureRandom a = Seeded('d');
  SecureRandom b = Seeded('d');
  std::vector<int64_t> va(500, 0), vb(500, 0);
  ASSERT_THAT(AddDiscreteGaussianNoise(absl::MakeSpan(va), 9, 1, a), IsOk());
  ASSERT_THAT(AddDiscreteGaussianNoise(absl::MakeSpan(vb), 9, 1, b), IsOk());
  EXPECT_EQ(va, vb);
  int nonzero = 0;
  for (int64_t v : va) nonzero += v != 0 ? 1 : 0;
  EXPECT_GT(nonzero, 350);
}

TEST(DiscreteGaussianTest, RejectsOutOfRangeParameters) {
  SecureRandom rng = Seeded('r');
  EXPECT_THAT(SampleDiscreteGaussian(0, 1, rng), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SampleDiscreteGaussian(1, 0, rng), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SampleDiscreteGaussian(kMaxSigma2Term + 1, 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<int64_t> v = {1, 2};
  EXPECT_THAT(AddDiscreteGaussianNoise(absl::MakeSpan(v), 1, kMaxSigma2Term + 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DiscreteGaussianTest, ExtremeParametersStillSample) {
  SecureRandom rng = Seeded('x');
  // sigma^2 = 2^48 (sigma = 2^24), and sigma^2 = 2^-48.
  double sum2 = 0;
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<int64_t> y = SampleDiscreteGaussian(kMaxSigma2Term, 1, rng);
    ASSERT_THAT(y, IsOk());
    sum2 += static_cast<double>(*y) * static_cast<double>(*y);
  }
  EXPECT_NEAR(sum2 / 2000 / static_cast<double>(kMaxSigma2Term), 1.0, 0.15);
  for (int i = 0; i < 100; ++i) {
    EXPECT_THAT(SampleDiscreteGaussian(1, kMaxSigma2Term, rng), IsOkAndHolds(0));
  }
}

TEST(DiscreteGaussianTest, OverflowLeavesValuesUntouched) {
  SecureRandom rng = Seeded('o');
  std::vector<int64_t> v(64, INT64_MAX);
  v[0] = 0;
  EXPECT_THAT(AddDiscreteGaussianNoise(absl::MakeSpan(v), 100, 1, rng),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], INT64_MAX);
}

}  // namespace
}  // namespace tessera::dp
