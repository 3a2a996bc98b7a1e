// DP on whole model updates: clipping across tensors, flattening, and the central
// DP-FedAvg estimator's scale and noise.
#include "privacy/dp/update_dp.h"

#include <cmath>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/testing/seeded_random.h"

namespace tessera::dp {
namespace {

ArrayRecord Update(std::vector<float> a, std::vector<float> b) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("a", {static_cast<int64_t>(a.size())}, a));
  const int64_t steps[] = {7, -3};
  std::string bytes(reinterpret_cast<const char*>(steps), sizeof(steps));
  r.tensors.push_back(*Tensor::Create("steps", DType::kInt64, {2}, bytes));
  r.tensors.push_back(*Tensor::FromFloats("b", {static_cast<int64_t>(b.size())}, b));
  return r;
}

TEST(UpdateDpTest, ClipUpdateBoundsTheJointNormAndZeroesIntegers) {
  ArrayRecord u = Update({3, 0}, {0, 4});  // joint norm 5
  EXPECT_DOUBLE_EQ(ClipUpdate(u, 1.0), 5.0);
  EXPECT_LE(L2Norm(FlattenFloat32(u)), 1.0);
  EXPECT_NEAR(u.tensors[0].values<float>()[0], 0.6, 1e-5);
  EXPECT_NEAR(u.tensors[2].values<float>()[1], 0.8, 1e-5);
  EXPECT_THAT(u.tensors[1].values<int64_t>(), testing::ElementsAre(0, 0));
  ArrayRecord small = Update({0.1f, 0}, {0, 0.1f});
  ClipUpdate(small, 1.0);
  EXPECT_FLOAT_EQ(small.tensors[0].values<float>()[0], 0.1f);  // untouched below the clip
}

TEST(UpdateDpTest, NonFiniteUpdatesBecomeZero) {
  ArrayRecord u = Update({1, 2}, {3, 4});
  EXPECT_FALSE(ZeroIfNotFinite(u));
  EXPECT_THAT(FlattenFloat32(u), testing::ElementsAre(1, 2, 3, 4));
  ArrayRecord bad = Update({1, std::nanf("")}, {3, 4});
  EXPECT_TRUE(ZeroIfNotFinite(bad));
  EXPECT_THAT(FlattenFloat32(bad), testing::ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(bad.tensors[1].values<int64_t>(), testing::ElementsAre(0, 0));
}

TEST(UpdateDpTest, FlattenAndUnflattenRoundTrip) {
  const ArrayRecord u = Update({1, 2, 3}, {4, 5});
  const std::vector<float> flat = FlattenFloat32(u);
  EXPECT_THAT(flat, testing::ElementsAre(1, 2, 3, 4, 5));
  absl::StatusOr<ArrayRecord> back = UnflattenFloat32(flat, u, 0.5);
  ASSERT_THAT(back, IsOk());
  EXPECT_THAT(back->tensors[2].values<float>(), testing::ElementsAre(2, 2.5));
  EXPECT_THAT(back->tensors[1].values<int64_t>(), testing::ElementsAre(0, 0));
  EXPECT_THAT(UnflattenFloat32(absl::MakeConstSpan(flat).subspan(1), u, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<float> longer = flat;
  longer.push_back(0);
  EXPECT_THAT(UnflattenFloat32(longer, u, 1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UpdateDpTest, NoisedMeanHidesTheLowBitsOfTheMean) {
  // Mironov 2012: two means that differ only in their last bits must not be told apart by
  // the low bits of the release. With the same randomness, both releases are bit-identical
  // (a floating-point sampler adds its noise to each and keeps the difference).
  ArrayRecord a = Update({0.25f, -0.5f, 0.125f}, {1.0f, 0.75f});
  ArrayRecord b = Update({std::nextafter(0.25f, 1.0f), -0.5f, 0.125f},
                         {1.0f, std::nextafter(0.75f, 0.0f)});
  SecureRandom ra = Seeded(5), rb = Seeded(5);
  TESSERA_ASSERT_OK(NoisedMeanFromMean(a, 3, 3, 1.0, 1.0, ra));
  TESSERA_ASSERT_OK(NoisedMeanFromMean(b, 3, 3, 1.0, 1.0, rb));
  EXPECT_EQ(FlattenFloat32(a), FlattenFloat32(b));
  EXPECT_NE(FlattenFloat32(a), FlattenFloat32(Update({0.25f, -0.5f, 0.125f}, {1.0f, 0.75f})));
}

TEST(UpdateDpTest, NoisedMeanUsesTheExpectedCountAndTheStatedNoise) {
  constexpr int kValues = 20000;
  ArrayRecord mean = Update(std::vector<float>(kValues, 1.0f), {});
  SecureRandom rng = Seeded(3);
  // 4 clients reported, 8 expected: the signal halves; sensitivity 1 and noise multiplier 2
  // give noise of stddev 2/8 on the mean.
  TESSERA_ASSERT_OK(NoisedMeanFromMean(mean, 4, 8, 1.0, 2.0, rng));
  double sum = 0, sum2 = 0;
  for (float x : mean.tensors[0].values<float>()) {
    sum += x;
    sum2 += (x - 0.5) * (x - 0.5);
  }
  EXPECT_NEAR(sum / kValues, 0.5, 0.01);
  EXPECT_NEAR(std::sqrt(sum2 / kValues), 0.25, 0.01);
  EXPECT_THAT(NoisedMeanFromMean(mean, 4, 0, 1, 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoisedMeanFromMean(mean, 4, 8, 1, -1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NoisedMeanFromMean(mean, 4, 8, 0, 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::dp
