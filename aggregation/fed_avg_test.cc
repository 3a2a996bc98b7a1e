#include "aggregation/fed_avg.h"
#include "core/model/testing/tensor_builders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace aggregation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Tensor F32(std::string name, std::vector<float> v) {
  const auto n = static_cast<int64_t>(v.size());
  return MakeTensor<float>(std::move(name), DType::kFloat32, {n}, std::move(v));
}

// A two-tensor model: "w" float32[2] and "b" float64[1].
ArrayRecord Model(float w0, float w1, double b) {
  ArrayRecord r;
  r.tensors.push_back(F32("w", {w0, w1}));
  r.tensors.push_back(MakeTensor<double>("b", DType::kFloat64, {1}, {b}));
  return r;
}

TEST(WeightedAccumulatorTest, TwoClientsWeightedOneAndThree) {
  absl::StatusOr<WeightedAccumulator> acc =
      WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(1, 2, 10), 1.0));
  TESSERA_ASSERT_OK(acc->Add(Model(5, -2, 2), 3.0));
  EXPECT_EQ(acc->count(), 2u);
  EXPECT_DOUBLE_EQ(acc->total_weight(), 4.0);
  // (1*1 + 3*5)/4 = 4, (1*2 + 3*-2)/4 = -1, (10 + 6)/4 = 4.
  absl::StatusOr<ArrayRecord> avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(4.0f, -1.0f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(4.0));
  EXPECT_EQ(avg->tensors[0].name(), "w");
  EXPECT_EQ(avg->tensors[1].dtype(), DType::kFloat64);
}

TEST(WeightedAccumulatorTest, SingleUpdateIsReturnedUnchanged) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(0.1f, -3.25f, 1e-300), 7.0));
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(0.1f, -3.25f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(1e-300));
}

TEST(WeightedAccumulatorTest, MemoryEqualsModelSizeForFloat32) {
  ArrayRecord layout;
  layout.tensors.push_back(F32("a", std::vector<float>(1000, 0.0f)));
  layout.tensors.push_back(F32("b", std::vector<float>(24, 0.0f)));
  auto acc = WeightedAccumulator::Create(layout);
  ASSERT_THAT(acc, IsOk());
  EXPECT_EQ(acc->memory_bytes(), layout.TotalBytes());
  for (int k = 0; k < 5; ++k) TESSERA_ASSERT_OK(acc->Add(layout, 1.0));
  EXPECT_EQ(acc->memory_bytes(), layout.TotalBytes());
}

TEST(WeightedAccumulatorTest, IntegersRoundToNearestAndSaturate) {
  ArrayRecord a, b;
  a.tensors.push_back(MakeTensor<int64_t>("steps", DType::kInt64, {3}, {0, 1, -1}));
  a.tensors.push_back(MakeTensor<uint8_t>("u8", DType::kUInt8, {2}, {0, 255}));
  a.tensors.push_back(MakeTensor<uint8_t>("flag", DType::kBool, {3}, {0, 1, 1}));
  a.tensors.push_back(MakeTensor<int32_t>("scalar", DType::kInt32, {}, {7}));
  b.tensors.push_back(MakeTensor<int64_t>("steps", DType::kInt64, {3}, {1, 2, -2}));
  b.tensors.push_back(MakeTensor<uint8_t>("u8", DType::kUInt8, {2}, {1, 255}));
  b.tensors.push_back(MakeTensor<uint8_t>("flag", DType::kBool, {3}, {0, 0, 1}));
  b.tensors.push_back(MakeTensor<int32_t>("scalar", DType::kInt32, {}, {8}));
  auto acc = WeightedAccumulator::Create(a);
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(a, 1.0));
  TESSERA_ASSERT_OK(acc->Add(b, 1.0));
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  // Means 0.5, 1.5, -1.5 round half away from zero.
  EXPECT_THAT(Values<int64_t>(*avg, 0), ElementsAre(1, 2, -2));
  EXPECT_THAT(Values<uint8_t>(*avg, 1), ElementsAre(1, 255));
  EXPECT_THAT(Values<uint8_t>(*avg, 2), ElementsAre(0, 1, 1));  // 0, 0.5, 1
  EXPECT_THAT(Values<int32_t>(*avg, 3), ElementsAre(8));        // 7.5
  EXPECT_TRUE(avg->tensors[3].shape().empty());
}

TEST(WeightedAccumulatorTest, IntegerWeightedAverage) {
  ArrayRecord a, b;
  a.tensors.push_back(MakeTensor<int8_t>("q", DType::kInt8, {2}, {-100, 10}));
  b.tensors.push_back(MakeTensor<int8_t>("q", DType::kInt8, {2}, {100, 20}));
  auto avg_or = FedAvg({a, b}, {1.0, 3.0});
  ASSERT_THAT(avg_or, IsOk());
  // (-100 + 300)/4 = 50, (10 + 60)/4 = 17.5 -> 18.
  EXPECT_THAT(Values<int8_t>(*avg_or, 0), ElementsAre(50, 18));
}

TEST(WeightedAccumulatorTest, HalfAndBFloat16) {
  ArrayRecord a, b;
  // float16: 1.0 = 0x3C00, 3.0 = 0x4200; bfloat16: 1.0 = 0x3F80, 3.0 = 0x4040.
  a.tensors.push_back(MakeTensor<uint16_t>("h", DType::kFloat16, {1}, {0x3C00}));
  a.tensors.push_back(MakeTensor<uint16_t>("bf", DType::kBFloat16, {1}, {0x3F80}));
  b.tensors.push_back(MakeTensor<uint16_t>("h", DType::kFloat16, {1}, {0x4200}));
  b.tensors.push_back(MakeTensor<uint16_t>("bf", DType::kBFloat16, {1}, {0x4040}));
  auto avg = FedAvg({a, b}, {1.0, 1.0});
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<uint16_t>(*avg, 0), ElementsAre(0x4000));  // 2.0
  EXPECT_THAT(Values<uint16_t>(*avg, 1), ElementsAre(0x4000));  // 2.0
}

TEST(WeightedAccumulatorTest, LayoutMismatchLeavesAccumulatorUnchanged) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(2, 4, 6), 1.0));

  ArrayRecord renamed = Model(100, 100, 100);
  renamed.tensors[1] = MakeTensor<double>("bias", DType::kFloat64, {1}, {100});
  EXPECT_THAT(acc->Add(renamed, 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bias")));
  ArrayRecord reshaped;
  reshaped.tensors.push_back(F32("w", {1, 2, 3}));
  reshaped.tensors.push_back(MakeTensor<double>("b", DType::kFloat64, {1}, {0}));
  EXPECT_THAT(acc->Add(reshaped, 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord missing;
  missing.tensors.push_back(F32("w", {1, 2}));
  EXPECT_THAT(acc->Add(missing, 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument));

  EXPECT_EQ(acc->count(), 1u);
  EXPECT_DOUBLE_EQ(acc->total_weight(), 1.0);
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(2.0f, 4.0f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(6.0));
}

TEST(WeightedAccumulatorTest, NonFiniteValuesRejectedBeforeAnyFold) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(2, 4, 6), 1.0));
  // The first tensor is fine; the NaN is in the second, so nothing may be
  // folded.
  EXPECT_THAT(acc->Add(Model(1, 1, std::nan("")), 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"b\"")));
  EXPECT_THAT(
      acc->Add(Model(1, std::numeric_limits<float>::infinity(), 0), 1.0),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 1")));
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(2.0f, 4.0f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(6.0));
}

TEST(WeightedAccumulatorTest, NaNFoundInLongTensor) {
  std::vector<float> v(10007, 1.0f);
  v[9999] = std::nanf("");
  ArrayRecord layout;
  layout.tensors.push_back(F32("big", std::vector<float>(v.size(), 0.0f)));
  ArrayRecord bad;
  bad.tensors.push_back(F32("big", v));
  auto acc = WeightedAccumulator::Create(layout);
  ASSERT_THAT(acc, IsOk());
  EXPECT_THAT(acc->Add(bad, 1.0), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("index 9999")));
  EXPECT_EQ(acc->count(), 0u);
}

TEST(WeightedAccumulatorTest, RejectsBadWeights) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  for (double w : {0.0, -1.0, std::nan(""),
                   std::numeric_limits<double>::infinity(), 1e300}) {
    EXPECT_THAT(
        acc->Add(Model(1, 1, 1), w),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight")))
        << w;
  }
  EXPECT_EQ(acc->count(), 0u);
  EXPECT_EQ(acc->total_weight(), 0.0);
}

TEST(WeightedAccumulatorTest, AverageWithNoUpdatesFails) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  EXPECT_THAT(std::move(*acc).Average(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(WeightedAccumulatorTest, OverflowingSumReportsOutOfRange) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(3e38f, 0, 0), 1.0));
  TESSERA_ASSERT_OK(acc->Add(Model(3e38f, 0, 0), 1.0));
  EXPECT_THAT(std::move(*acc).Average(),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("\"w\"")));
}

TEST(WeightedAccumulatorTest, CreateRejectsDuplicateNames) {
  ArrayRecord dup;
  dup.tensors.push_back(F32("w", {1}));
  dup.tensors.push_back(F32("w", {1}));
  EXPECT_THAT(WeightedAccumulator::Create(dup),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FedAvgTest, MatchesHandComputedMean) {
  std::vector<ArrayRecord> updates = {Model(1, 0, 0), Model(2, 0, 0),
                                      Model(6, 3, 9)};
  auto avg = FedAvg(updates, {1.0, 1.0, 2.0});
  ASSERT_THAT(avg, IsOk());
  // (1 + 2 + 12)/4 = 3.75, (0 + 0 + 6)/4 = 1.5, 18/4 = 4.5.
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(3.75f, 1.5f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(4.5));
}

TEST(FedAvgTest, RejectsEmptyAndMismatchedSpans) {
  EXPECT_THAT(FedAvg({}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<ArrayRecord> updates = {Model(1, 0, 0), Model(2, 0, 0)};
  EXPECT_THAT(FedAvg(updates, {1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FedAvgTest, ErrorNamesTheUpdate) {
  std::vector<ArrayRecord> updates = {Model(1, 0, 0),
                                      Model(2, 0, std::nan(""))};
  EXPECT_THAT(
      FedAvg(updates, {1.0, 1.0}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("update 1")));
}

}  // namespace
}  // namespace aggregation
}  // namespace tessera
