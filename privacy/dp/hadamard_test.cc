#include "privacy/dp/hadamard.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/clipping.h"

namespace tessera::dp {
namespace {

const std::string kSeed(32, 's');

double Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

TEST(HadamardTest, PaddedSize) {
  EXPECT_EQ(HadamardPaddedSize(0), 0u);
  EXPECT_EQ(HadamardPaddedSize(1), 1u);
  EXPECT_EQ(HadamardPaddedSize(5), 8u);
  EXPECT_EQ(HadamardPaddedSize(1024), 1024u);
  EXPECT_EQ(HadamardPaddedSize(1025), 2048u);
}

TEST(HadamardTest, RoundTripAndNormPreserved) {
  for (size_t n : {1u, 2u, 7u, 100u, 1000u, 4096u}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::sin(0.7 * i + 1) * 3);
    absl::StatusOr<std::vector<double>> y = RandomizedHadamard(x, kSeed);
    ASSERT_THAT(y, IsOk());
    ASSERT_EQ(y->size(), HadamardPaddedSize(n));
    EXPECT_NEAR(Norm(*y), L2Norm(x), 1e-9 * (1 + L2Norm(x)));
    absl::StatusOr<std::vector<float>> back = InverseRandomizedHadamard(*y, n, kSeed);
    ASSERT_THAT(back, IsOk());
    ASSERT_EQ(back->size(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR((*back)[i], x[i], 1e-5) << "n=" << n;
  }
}

TEST(HadamardTest, InvertsSumsWithSharedSeed) {
  std::vector<float> a = {1, 2, 3}, b = {-4, 0.5, 9};
  absl::StatusOr<std::vector<double>> ya = RandomizedHadamard(a, kSeed);
  absl::StatusOr<std::vector<double>> yb = RandomizedHadamard(b, kSeed);
  ASSERT_THAT(ya, IsOk());
  ASSERT_THAT(yb, IsOk());
  std::vector<double> sum(ya->size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = (*ya)[i] + (*yb)[i];
  absl::StatusOr<std::vector<float>> back = InverseRandomizedHadamard(sum, 3, kSeed);
  ASSERT_THAT(back, IsOk());
  EXPECT_NEAR((*back)[0], -3, 1e-5);
  EXPECT_NEAR((*back)[1], 2.5, 1e-5);
  EXPECT_NEAR((*back)[2], 12, 1e-5);
}

TEST(HadamardTest, FlattensSpikyInput) {
  constexpr size_t kN = 1000;  // padded to 1024
  std::vector<float> spike(kN, 0.0f);
  spike[17] = 100.0f;
  absl::StatusOr<std::vector<double>> y = RandomizedHadamard(spike, kSeed);
  ASSERT_THAT(y, IsOk());
  double max_abs = 0;
  for (double v : *y) max_abs = std::max(max_abs, std::abs(v));
  EXPECT_NEAR(max_abs, 100.0 / 32, 1e-9);  // every coordinate is +-||x|| / sqrt(d)

  std::vector<float> sparse(kN, 0.0f);  // a few spikes: still O(||x|| sqrt(log d / d))
  sparse[1] = 50;
  sparse[500] = -80;
  sparse[999] = 30;
  sparse[3] = 60;
  y = RandomizedHadamard(sparse, kSeed);
  ASSERT_THAT(y, IsOk());
  max_abs = 0;
  for (double v : *y) max_abs = std::max(max_abs, std::abs(v));
  EXPECT_LT(max_abs, 0.15 * L2Norm(sparse));
}

TEST(HadamardTest, SignsDependOnSeed) {
  std::vector<float> x(64, 1.0f);
  absl::StatusOr<std::vector<double>> a = RandomizedHadamard(x, kSeed);
  absl::StatusOr<std::vector<double>> b = RandomizedHadamard(x, std::string(32, 't'));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(*a, *b);
  absl::StatusOr<std::vector<double>> a2 = RandomizedHadamard(x, kSeed);
  ASSERT_THAT(a2, IsOk());
  EXPECT_EQ(*a, *a2);
}

TEST(HadamardTest, RejectsBadArguments) {
  std::vector<float> x = {1, 2, 3};
  EXPECT_THAT(RandomizedHadamard(x, "short"), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<double> y(4, 0.0);
  EXPECT_THAT(InverseRandomizedHadamard(y, 5, kSeed),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InverseRandomizedHadamard(y, 3, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<double>> empty = RandomizedHadamard({}, kSeed);
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace tessera::dp
