#include "privacy/dp/grid_gaussian.h"

#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/testing/seeded_random.h"

namespace tessera::dp {
namespace {

using ::testing::HasSubstr;

TEST(GridGaussianTest, GridAndVarianceFollowTheDefinition) {
  // z * sens = 2 * 1.5 = 3, so g = 2^(1 - 20); Delta = 1.5 / g + sqrt(4) = 786,434.
  absl::StatusOr<GridNoise> n = MakeGridNoise(1.5, 2.0, 4);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->grid, std::ldexp(1.0, -19));
  EXPECT_EQ(n->integer_sensitivity, 786434.0);
  const double s2 = static_cast<double>(n->sigma2_num) / static_cast<double>(n->sigma2_den);
  const double want = (2.0 * 786434) * (2.0 * 786434);
  EXPECT_GE(s2, want);
  EXPECT_LE(s2, want * (1 + 1e-9));
  EXPECT_NEAR(n->stddev, 2.0 * (1.5 + 2 * std::ldexp(1.0, -19)), 1e-9);
}

TEST(GridGaussianTest, OutputDependsOnlyOnTheSnappedInput) {
  // Mironov 2012: with floating-point noise, two inputs that differ only in their low bits
  // give outputs that differ in their low bits even with the same randomness, which is what
  // the attack reads. On the grid they give bit-identical outputs, always multiples of g.
  absl::StatusOr<GridNoise> n = MakeGridNoise(1.0, 1.0, 1000);
  ASSERT_THAT(n, IsOk());
  std::vector<double> a(1000), b(1000);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = 0.001 * static_cast<double>(i) - 0.3;
    // Within the same grid cell: a few ulps away, still rounding to the same k.
    b[i] = std::nextafter(std::nextafter(a[i], 1.0), 1.0);
    ASSERT_EQ(std::nearbyint(a[i] / n->grid), std::nearbyint(b[i] / n->grid));
  }
  SecureRandom ra = Seeded('g'), rb = Seeded('g');
  TESSERA_ASSERT_OK(AddGridGaussianNoise(absl::MakeSpan(a), *n, ra));
  TESSERA_ASSERT_OK(AddGridGaussianNoise(absl::MakeSpan(b), *n, rb));
  EXPECT_EQ(a, b);
  for (double v : a) EXPECT_EQ(v / n->grid, std::nearbyint(v / n->grid)) << v;

  // The textbook floating-point sampler (clipping.h's AddGaussianNoise) leaks them.
  std::vector<float> fa = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> fb = fa;
  for (float& v : fb) v = std::nextafter(v, 10.0f);
  SecureRandom fra = Seeded('h'), frb = Seeded('h');
  TESSERA_ASSERT_OK(AddGaussianNoise(absl::MakeSpan(fa), 1e-6, fra));
  TESSERA_ASSERT_OK(AddGaussianNoise(absl::MakeSpan(fb), 1e-6, frb));
  EXPECT_NE(fa, fb);
}

TEST(GridGaussianTest, NoiseIsGaussianWithTheStatedStddev) {
  constexpr int kValues = 50000;
  absl::StatusOr<GridNoise> n = MakeGridNoise(1.0, 2.0, kValues);
  ASSERT_THAT(n, IsOk());
  std::vector<double> v(kValues, 0.25);
  SecureRandom rng = Seeded('n');
  TESSERA_ASSERT_OK(AddGridGaussianNoise(absl::MakeSpan(v), *n, rng));
  double sum = 0, sum_sq = 0, fourth = 0;
  for (double x : v) {
    sum += x - 0.25;
    sum_sq += (x - 0.25) * (x - 0.25);
  }
  const double mean = sum / kValues;
  const double var = sum_sq / kValues - mean * mean;
  for (double x : v) fourth += std::pow(x - 0.25 - mean, 4);
  // The stated stddev is z (sens + g sqrt(d)) = 2 (1 + 2^-19 * 223.6), 0.04% above 2.
  const double sd = 2.0 * (1 + std::ldexp(1.0, -19) * std::sqrt(double{kValues}));
  EXPECT_NEAR(n->stddev, sd, 1e-6);
  EXPECT_NEAR(mean, 0, 4 * sd / std::sqrt(double{kValues}));
  EXPECT_NEAR(std::sqrt(var), sd, 4 * sd / std::sqrt(2.0 * kValues));
  EXPECT_NEAR(fourth / kValues / (var * var), 3.0, 0.1);  // Gaussian kurtosis
}

TEST(GridGaussianTest, RejectsBadArguments) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(MakeGridNoise(0, 1, 1), StatusIs(kBad, HasSubstr("l2_sensitivity")));
  EXPECT_THAT(MakeGridNoise(1, NAN, 1), StatusIs(kBad, HasSubstr("noise_multiplier")));
  EXPECT_THAT(MakeGridNoise(1, 1, 0), StatusIs(kBad, HasSubstr("dimension")));
  EXPECT_THAT(MakeGridNoise(1, 1e4, uint64_t{1} << 40), StatusIs(kBad, HasSubstr("2^46")));
  absl::StatusOr<GridNoise> n = MakeGridNoise(1, 1, 2);
  ASSERT_THAT(n, IsOk());
  SecureRandom rng = Seeded('r');
  std::vector<double> v = {1, INFINITY};
  EXPECT_THAT(AddGridGaussianNoise(absl::MakeSpan(v), *n, rng), StatusIs(kBad));
  EXPECT_EQ(v[0], 1);
  std::vector<double> three = {1, 2, 3};
  EXPECT_THAT(AddGridGaussianNoise(absl::MakeSpan(three), *n, rng), StatusIs(kBad));
}

}  // namespace
}  // namespace tessera::dp
