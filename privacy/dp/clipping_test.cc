#include "privacy/dp/clipping.h"
#include "privacy/dp/testing/seeded_random.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::dp {
namespace {

TEST(ClippingTest, L2Norm) {
  EXPECT_EQ(L2Norm({}), 0.0);
  const std::vector<float> v = {3, -4};
  EXPECT_DOUBLE_EQ(L2Norm(v), 5.0);
  // Double accumulation: 1e6 values of 1e-3 sum exactly enough for 1.0 to 1e-9.
  const std::vector<float> many(1000000, 1e-3f);
  EXPECT_NEAR(L2Norm(many), 1.0, 1e-6);
}

TEST(ClippingTest, NoClippingAtOrBelowBound) {
  std::vector<float> v = {3, -4};
  const std::vector<float> original = v;
  EXPECT_DOUBLE_EQ(ClipToL2Norm(absl::MakeSpan(v), 5.0), 5.0);
  EXPECT_EQ(v, original);
  EXPECT_DOUBLE_EQ(ClipToL2Norm(absl::MakeSpan(v), 100.0), 5.0);
  EXPECT_EQ(v, original);
}

TEST(ClippingTest, ClipsAboveBoundPreservingDirection) {
  std::vector<float> v = {3, -4};
  EXPECT_DOUBLE_EQ(ClipToL2Norm(absl::MakeSpan(v), 1.0), 5.0);
  EXPECT_NEAR(v[0], 0.6, 1e-6);
  EXPECT_NEAR(v[1], -0.8, 1e-6);
  EXPECT_LE(L2Norm(v), 1.0);
}

TEST(ClippingTest, ClippedNormNeverExceedsBound) {
  SecureRandom rng = Seeded('c');
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> v(1 + rng.UniformBelow(300));
    for (float& x : v) x = static_cast<float>(rng.UniformUnit() * 20 - 10);
    const double clip = 0.01 + rng.UniformUnit();
    ClipToL2Norm(absl::MakeSpan(v), clip);
    ASSERT_LE(L2Norm(v), clip);
    ASSERT_GT(L2Norm(v), clip * (1 - 1e-5));
  }
}

TEST(ClippingTest, NonPositiveClipZeroes) {
  std::vector<float> v = {1, 2};
  ClipToL2Norm(absl::MakeSpan(v), 0.0);
  EXPECT_EQ(v, (std::vector<float>{0, 0}));
  std::vector<float> w = {1, 2};
  ClipToL2Norm(absl::MakeSpan(w), std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(w, (std::vector<float>{0, 0}));
}

TEST(ClippingTest, GlobalNormAcrossTensors) {
  std::vector<float> a = {3, 0};
  std::vector<float> b = {4};
  // Each tensor alone is within 4.5; together the norm is 5.
  EXPECT_DOUBLE_EQ(
      ClipTensorsToL2Norm({absl::MakeSpan(a), absl::MakeSpan(b)}, 4.5), 5.0);
  EXPECT_NEAR(a[0], 3 * 0.9, 1e-5);
  EXPECT_NEAR(b[0], 4 * 0.9, 1e-5);
  EXPECT_LE(std::sqrt(L2Norm(a) * L2Norm(a) + L2Norm(b) * L2Norm(b)), 4.5);
  std::vector<float> c = {1}, d = {1};
  EXPECT_DOUBLE_EQ(ClipTensorsToL2Norm({absl::MakeSpan(c), absl::MakeSpan(d)}, 2.0),
                   std::sqrt(2.0));
  EXPECT_EQ(c[0], 1.0f);
  EXPECT_EQ(d[0], 1.0f);
}

TEST(GaussianNoiseTest, MeanAndStddev) {
  SecureRandom rng = Seeded('g');
  constexpr int kN = 100001;  // odd: exercises the unpaired last normal
  std::vector<float> v(kN, 1.0f);
  ASSERT_THAT(AddGaussianNoise(absl::MakeSpan(v), 2.5, rng), IsOk());
  double sum = 0, sum2 = 0, sum4 = 0;
  for (float x : v) sum += x - 1.0;
  const double mean = sum / kN;
  for (float x : v) {
    const double d = x - 1.0 - mean;
    sum2 += d * d;
    sum4 += d * d * d * d;
  }
  const double sd = std::sqrt(sum2 / (kN - 1));
  const double kurtosis = sum4 / kN / ((sum2 / kN) * (sum2 / kN));
  std::printf("Gaussian noise sd 2.5: mean %.4f, sd %.4f, kurtosis %.3f\n", mean, sd, kurtosis);
  EXPECT_NEAR(mean, 0.0, 4 * 2.5 / std::sqrt(kN));
  EXPECT_NEAR(sd, 2.5, 4 * 2.5 / std::sqrt(2.0 * kN));
  EXPECT_NEAR(kurtosis, 3.0, 0.1);
}

TEST(GaussianNoiseTest, RejectsBadStddev) {
  SecureRandom rng = Seeded('h');
  std::vector<float> v = {1, 2};
  EXPECT_THAT(AddGaussianNoise(absl::MakeSpan(v), -1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AddGaussianNoise(absl::MakeSpan(v), std::numeric_limits<double>::infinity(), rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(v, (std::vector<float>{1, 2}));
  ASSERT_THAT(AddGaussianNoise(absl::MakeSpan(v), 0.0, rng), IsOk());
  EXPECT_EQ(v, (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace tessera::dp
