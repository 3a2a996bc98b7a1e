#include "privacy/dp/adaptive_clipping.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/testing/seeded_random.h"

namespace tessera::dp {
namespace {

constexpr int kDraws = 20000;
constexpr double kExpected = 5;
constexpr double kStddev = 0.5;

// The released fraction mapped back to the noised centred sum: (f - 1/2) * expected.
std::vector<double> CentredSums(uint64_t unclipped, uint64_t count, char seed) {
  SecureRandom rng = Seeded(seed);
  std::vector<double> out;
  for (int i = 0; i < kDraws; ++i) {
    absl::StatusOr<double> f =
        NoisedUnclippedFraction(unclipped, count, kExpected, kStddev, rng);
    EXPECT_THAT(f, IsOk());
    out.push_back((*f - 0.5) * kExpected);
  }
  return out;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double Stddev(const std::vector<double>& v) {
  const double m = Mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// Kolmogorov-Smirnov statistic of `v` against N(mean, stddev^2).
double KolmogorovSmirnov(std::vector<double> v, double mean, double stddev) {
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  double d = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-(v[i] - mean) / (stddev * std::sqrt(2.0)));
    d = std::max({d, cdf - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - cdf});
  }
  return d;
}

TEST(AdaptiveClippingTest, ReleaseIsTheCentredSumPlusGaussianNoise) {
  // 3 clients, all within the clip: sum (b_i - 1/2) = 1.5 (Andrew et al. 2021, TF Privacy's
  // QuantileEstimatorQuery), not the raw count 3 over the expected 5.
  const std::vector<double> s = CentredSums(3, 3, 'a');
  const double se = kStddev / std::sqrt(kDraws);
  EXPECT_NEAR(Mean(s), 1.5, 4 * se);
  EXPECT_NEAR(Stddev(s), kStddev, kStddev * 4 / std::sqrt(2.0 * kDraws));
  // KS critical value at the 1% level: 1.628 / sqrt(n).
  EXPECT_LT(KolmogorovSmirnov(s, 1.5, kStddev), 1.628 / std::sqrt(kDraws));
}

TEST(AdaptiveClippingTest, OneClientMovesTheReleaseByAtMostOneHalf) {
  // The sensitivity the accountant charges: adding or removing one client, clipped or not,
  // shifts the released centred sum by exactly 1/2 (the plain count would move by 0 or 1).
  const double base = Mean(CentredSums(3, 4, 'b'));           // 3 of 4 within the clip
  const double no_unclipped = Mean(CentredSums(2, 3, 'c'));   // one within-clip removed
  const double no_clipped = Mean(CentredSums(3, 3, 'd'));     // the clipped one removed
  const double se = kStddev / std::sqrt(kDraws);
  EXPECT_NEAR(base, 1.0, 4 * se);
  EXPECT_NEAR(no_unclipped - base, -0.5, 6 * se);
  EXPECT_NEAR(no_clipped - base, 0.5, 6 * se);
}

TEST(AdaptiveClippingTest, FractionAndClipUpdateWithoutNoise) {
  SecureRandom rng = Seeded('e');
  // 2 of 2 within the clip over an expected 4: (2 - 1) / 4 + 1/2.
  EXPECT_THAT(NoisedUnclippedFraction(2, 2, 4, 0, rng), IsOkAndHolds(0.75));
  EXPECT_THAT(NoisedUnclippedFraction(0, 4, 4, 0, rng), IsOkAndHolds(0.0));
  EXPECT_DOUBLE_EQ(NextClipNorm(2.0, 0.75, 0.2, 0.5), 2.0 * std::exp(-0.2 * 0.25));
  EXPECT_THAT(NoisedUnclippedFraction(3, 2, 4, 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoisedUnclippedFraction(1, 2, 0, 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoisedUnclippedFraction(1, 2, 4, -1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::dp
