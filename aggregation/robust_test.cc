#include "aggregation/robust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/base/testing/status_matchers.h"
#include "core/model/testing/tensor_builders.h"

namespace tessera {
namespace aggregation {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;

ArrayRecord W(std::vector<float> w) {
  ArrayRecord r;
  r.tensors.push_back(MakeVector<float>("w", DType::kFloat32, std::move(w)));
  return r;
}

// "w" float32, then "count" int64[1] and "b" float64[1].
ArrayRecord Mixed(std::vector<float> w, int64_t count, double b) {
  ArrayRecord r = W(std::move(w));
  r.tensors.push_back(MakeVector<int64_t>("count", DType::kInt64, {count}));
  r.tensors.push_back(MakeVector<double>("b", DType::kFloat64, {b}));
  return r;
}

// Four honest updates around [1, 1] and, first, one far away:
// squared distances u1-u2 1, u1-u3 4, u1-u4 2, u2-u3 1, u2-u4 1, u3-u4 2, and
// 5101, 5002, 4905, 4901 from u0 to u1..u4. With f = 1 each score sums the
// n - f - 2 = 2 nearest: u0 4901 + 4905 = 9806, u1 1 + 2 = 3, u2 1 + 1 = 2,
// u3 1 + 2 = 3, u4 1 + 2 = 3.
std::vector<ArrayRecord> OneOutlier() {
  return {W({50, -50}), W({0, 1}), W({1, 1}), W({2, 1}), W({1, 0})};
}

TEST(CoordinateMedianTest, OddCountTakesTheMiddleValue) {
  const std::vector<ArrayRecord> u = {W({1, 5, -2}), W({3, 4, 0}),
                                      W({2, 100, -1})};
  absl::StatusOr<ArrayRecord> m = CoordinateMedian(u);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(2.0f, 5.0f, -1.0f));
}

TEST(CoordinateMedianTest, EvenCountAveragesTheTwoMiddleValues) {
  // Column 0 sorted: 1 2 4 100 -> 3; column 1: -2 0 3 10 -> 1.5.
  const std::vector<ArrayRecord> u = {W({1, 10}), W({4, -2}), W({2, 3}),
                                      W({100, 0})};
  absl::StatusOr<ArrayRecord> m = CoordinateMedian(u);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(3.0f, 1.5f));
}

TEST(CoordinateMedianTest, OtherDtypesTakeThePlainMean) {
  const std::vector<ArrayRecord> u = {Mixed({1}, 10, 1.0), Mixed({2}, 20, 2.0),
                                      Mixed({9}, 40, 6.0)};
  absl::StatusOr<ArrayRecord> m = CoordinateMedian(u);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(2.0f));
  EXPECT_THAT(Values<int64_t>(*m, 1), ElementsAre(23));  // 70 / 3, rounded
  EXPECT_THAT(Values<double>(*m, 2), ElementsAre(3.0));  // mean, not median
  EXPECT_EQ(m->tensors[1].name(), "count");
}

TEST(TrimmedMeanTest, DropsTheExtremesOfEachCoordinate) {
  // n = 5, trim 0.2 -> one value off each end.
  // Column 0: 1 2 3 4 100 -> (2+3+4)/3 = 3; column 1: -50 0 1 2 3 -> 1.
  const std::vector<ArrayRecord> u = {W({100, 1}), W({2, -50}), W({1, 3}),
                                      W({4, 0}), W({3, 2})};
  absl::StatusOr<ArrayRecord> m = TrimmedMean(u, 0.2);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(3.0f, 1.0f));
  // trim 0.1 -> floor(0.5) = 0: the plain mean, 110/5 and -44/5.
  m = TrimmedMean(u, 0.1);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0),
              ElementsAre(22.0f, FloatNear(-8.8f, 1e-6f)));
}

TEST(TrimmedMeanTest, TrimCountToleratesRoundingOfTheProduct) {
  // 0.29 * 100 is 28.999999999999996 in double; 29 values go off each end.
  // Values i^2, i = 0..99: mean of i^2 for i in [29, 71) = 109081 / 42.
  std::vector<ArrayRecord> u;
  for (int i = 99; i >= 0; --i) u.push_back(W({static_cast<float>(i * i)}));
  absl::StatusOr<ArrayRecord> m = TrimmedMean(u, 0.29);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(FloatNear(2597.1667f, 1e-3f)));
}

TEST(TrimmedMeanTest, RefusesFractionsOutsideTheRange) {
  const std::vector<ArrayRecord> u = {W({1}), W({2})};
  for (double f : {-0.1, 0.5, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(TrimmedMean(u, f), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("trim_fraction")));
  }
  EXPECT_THAT(TrimmedMean(u, 0.4999999999999),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("leaves nothing")));
}

TEST(KrumTest, SelectsTheHonestCentreNotTheOutlier) {
  const std::vector<ArrayRecord> u = OneOutlier();
  EXPECT_THAT(KrumSelect(u, 1, 1), IsOkAndHolds(ElementsAre(2u)));
  // Scores 3, 3, 3 for u1 = [0,1], u3 = [2,1], u4 = [1,0]: ties go to the update with the
  // lexicographically smaller values (u1 < u4 < u3), not to the earlier arrival.
  EXPECT_THAT(KrumSelect(u, 1, 3), IsOkAndHolds(ElementsAre(2u, 1u, 4u)));
  EXPECT_THAT(KrumSelect(u, 1, 5),
              IsOkAndHolds(ElementsAre(2u, 1u, 4u, 3u, 0u)));
  // The same updates in reverse arrival order select the same updates.
  const std::vector<ArrayRecord> reversed(u.rbegin(), u.rend());
  EXPECT_THAT(KrumSelect(reversed, 1, 3), IsOkAndHolds(ElementsAre(2u, 3u, 0u)));
  absl::StatusOr<ArrayRecord> krum = MultiKrum(u, 1, 1);
  ASSERT_THAT(krum, IsOk());
  EXPECT_THAT(Values<float>(*krum, 0), ElementsAre(1.0f, 1.0f));
}

TEST(KrumTest, MultiKrumAveragesTheSelected) {
  // Selected u1..u4: ([0,1] + [1,1] + [2,1] + [1,0]) / 4 = [1, 0.75].
  absl::StatusOr<ArrayRecord> m = MultiKrum(OneOutlier(), 1, 4);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(1.0f, 0.75f));
}

TEST(KrumTest, EqualScoresSelectInIndexOrder) {
  const std::vector<ArrayRecord> u(5, W({1, 2}));
  EXPECT_THAT(KrumSelect(u, 1, 3), IsOkAndHolds(ElementsAre(0u, 1u, 2u)));
}

TEST(KrumTest, DistancesUseFloat32OnlyAndOthersAreAveraged) {
  // A huge counter on u2 would make it the outlier if it counted.
  std::vector<ArrayRecord> u = {Mixed({50, -50}, 1, 0.0), Mixed({0, 1}, 2, 1.0),
                                Mixed({1, 1}, 1000000, 2.0),
                                Mixed({2, 1}, 6, 3.0), Mixed({1, 0}, 8, 4.0)};
  EXPECT_THAT(KrumSelect(u, 1, 1), IsOkAndHolds(ElementsAre(2u)));
  // u1, u3 and u4 tie (score 3); the value order u1 < u4 < u3 picks u1 and u4.
  absl::StatusOr<ArrayRecord> m = MultiKrum(u, 1, 3);  // u1, u2, u4
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(Values<float>(*m, 0), ElementsAre(2.0f / 3, 2.0f / 3));
  EXPECT_THAT(Values<int64_t>(*m, 1), ElementsAre(333337));  // 1000010 / 3 = 333336.67
  EXPECT_THAT(Values<double>(*m, 2), ElementsAre(7.0 / 3));
}

TEST(KrumTest, RefusesTooFewUpdatesStatingTheRequirement) {
  std::vector<ArrayRecord> u = OneOutlier();
  u.pop_back();  // n = 4 < 2 * 1 + 3
  EXPECT_THAT(KrumSelect(u, 1, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("n >= 2f + 3"), HasSubstr("n = 4"))));
  EXPECT_THAT(MultiKrum(u, 1, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KrumSelect(OneOutlier(), std::numeric_limits<size_t>::max(), 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KrumSelect(OneOutlier(), 0, 1), IsOk());
}

TEST(KrumTest, RefusesBadSelectionCounts) {
  EXPECT_THAT(
      KrumSelect(OneOutlier(), 1, 0),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_selected")));
  EXPECT_THAT(
      KrumSelect(OneOutlier(), 1, 6),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_selected")));
}

TEST(RobustTest, LayoutMismatchNamesUpdateAndTensor) {
  ArrayRecord renamed;
  renamed.tensors.push_back(MakeVector<float>("x", DType::kFloat32, {0, 0}));
  std::vector<ArrayRecord> u = OneOutlier();
  u[2] = renamed;
  const auto bad =
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("update 2"), HasSubstr("x float32")));
  EXPECT_THAT(CoordinateMedian(u), bad);
  EXPECT_THAT(TrimmedMean(u, 0.2), bad);
  EXPECT_THAT(KrumSelect(u, 1, 1), bad);
  EXPECT_THAT(MultiKrum(u, 1, 1), bad);
}

TEST(RobustTest, NanIsRefusedNamingUpdateTensorAndIndex) {
  std::vector<ArrayRecord> u = OneOutlier();
  u[1] = W({0, std::numeric_limits<float>::quiet_NaN()});
  const auto bad = StatusIs(
      absl::StatusCode::kInvalidArgument,
      AllOf(HasSubstr("update 1"), HasSubstr("\"w\""), HasSubstr("index 1")));
  EXPECT_THAT(CoordinateMedian(u), bad);
  EXPECT_THAT(TrimmedMean(u, 0.2), bad);
  EXPECT_THAT(KrumSelect(u, 1, 1), bad);
  EXPECT_THAT(MultiKrum(u, 1, 2), bad);
}

TEST(RobustTest, NoUpdatesIsRefused) {
  EXPECT_THAT(CoordinateMedian({}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(TrimmedMean({}, 0.1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KrumSelect({}, 0, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RobustTest, LargeTensorsCrossBlockBoundaries) {
  // 1500 coordinates (three blocks); update k holds k + j at coordinate j.
  std::vector<ArrayRecord> u;
  for (int k = 0; k < 5; ++k) {
    std::vector<float> w(1500);
    for (size_t j = 0; j < w.size(); ++j) w[j] = static_cast<float>(k + j);
    u.push_back(W(std::move(w)));
  }
  absl::StatusOr<ArrayRecord> med = CoordinateMedian(u);
  absl::StatusOr<ArrayRecord> trim = TrimmedMean(u, 0.2);
  ASSERT_THAT(med, IsOk());
  ASSERT_THAT(trim, IsOk());
  const std::vector<float> med_w = Values<float>(*med, 0);
  const std::vector<float> trim_w = Values<float>(*trim, 0);
  for (size_t j = 0; j < 1500; ++j) {
    ASSERT_EQ(med_w[j], static_cast<float>(2 + j)) << j;
    ASSERT_EQ(trim_w[j], static_cast<float>(2 + j)) << j;
  }
  // Consecutive updates are 1500 apart (squared): u1, u2 and u3 score
  // 1500 + 1500, u0 and u4 1500 + 6000.
  EXPECT_THAT(KrumSelect(u, 1, 4), IsOkAndHolds(ElementsAre(1u, 2u, 3u, 0u)));
}

}  // namespace
}  // namespace aggregation
}  // namespace tessera
