#include "aggregation/fed_avg.h"
#include "core/model/testing/tensor_builders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
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

TEST(WeightedAccumulatorTest, MemoryIsFixedPerParameter) {
  ArrayRecord layout;
  layout.tensors.push_back(F32("a", std::vector<float>(1000, 0.0f)));
  layout.tensors.push_back(F32("b", std::vector<float>(24, 0.0f)));
  auto acc = WeightedAccumulator::Create(layout);
  ASSERT_THAT(acc, IsOk());
  // Three int64 bins and a one-byte level per parameter, plus the same for the weight sum.
  const uint64_t want = (1000 + 24 + 1) * (3 * 8 + 1);
  EXPECT_EQ(acc->memory_bytes(), want);
  for (int k = 0; k < 5; ++k) TESSERA_ASSERT_OK(acc->Add(layout, 1.0));
  EXPECT_EQ(acc->memory_bytes(), want);
}

// Updates of a mixed-dtype model with values spread over many magnitudes and signs, so naive
// float folding differs between orders.
std::vector<ArrayRecord> MixedUpdates(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::vector<ArrayRecord> updates;
  for (int k = 0; k < count; ++k) {
    std::vector<float> w(257);
    for (float& v : w) v = std::ldexp(unit(rng), exponent(rng));
    std::vector<double> d(3);
    for (double& v : d) v = std::ldexp(static_cast<double>(unit(rng)), exponent(rng)) / 3.0;
    ArrayRecord r;
    r.tensors.push_back(F32("w", w));
    r.tensors.push_back(MakeTensor<double>("d", DType::kFloat64, {3}, d));
    r.tensors.push_back(MakeTensor<int64_t>("steps", DType::kInt64, {1}, {k * 7 - 3}));
    r.tensors.push_back(
        MakeTensor<uint16_t>("h", DType::kFloat16, {1}, {static_cast<uint16_t>(0x3C00 + k)}));
    updates.push_back(std::move(r));
  }
  return updates;
}

TEST(WeightedAccumulatorTest, EveryArrivalOrderGivesTheSameBits) {
  const std::vector<ArrayRecord> updates = MixedUpdates(6, 1);
  const std::vector<double> weights = {1, 3, 250, 7, 0.1, 12345.5};
  std::vector<size_t> order = {0, 1, 2, 3, 4, 5};
  std::string first;
  int orders = 0;
  do {
    std::vector<ArrayRecord> u;
    std::vector<double> w;
    for (size_t i : order) {
      u.push_back(updates[i]);
      w.push_back(weights[i]);
    }
    absl::StatusOr<ArrayRecord> avg = FedAvg(u, w);
    ASSERT_THAT(avg, IsOk());
    std::string bits;
    for (const Tensor& t : avg->tensors) bits += std::string(t.data());
    if (orders == 0) first = bits;
    ASSERT_EQ(bits, first) << "order " << orders;
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(orders, 720);

  // The same check against what naive float32 folding does: it differs between orders for
  // this data, so the test above is not passing vacuously.
  std::vector<float> forward(257, 0.0f), backward(257, 0.0f);
  for (size_t k = 0; k < updates.size(); ++k) {
    auto a = updates[k].tensors[0].values<float>();
    auto b = updates[updates.size() - 1 - k].tensors[0].values<float>();
    for (size_t j = 0; j < a.size(); ++j) {
      forward[j] += static_cast<float>(weights[k]) * a[j];
      backward[j] += static_cast<float>(weights[updates.size() - 1 - k]) * b[j];
    }
  }
  EXPECT_NE(forward, backward);
}

TEST(WeightedAccumulatorTest, MatchesAnExactReferenceRoundedOnce) {
  // Integer weights below 2^24 and float32 values: every product is exact in double and,
  // with values within 2^60 of each other, the sum is exact in the 64-bit significand of a
  // long double accumulated in any order; the reference rounds that exact mean once.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-8, 8);
  std::uniform_int_distribution<int> examples(1, 5000);
  constexpr int kClients = 50, kParams = 4096;
  std::vector<ArrayRecord> updates;
  std::vector<double> weights;
  std::vector<long double> sum(kParams, 0.0L);
  long double total = 0;
  for (int k = 0; k < kClients; ++k) {
    std::vector<float> v(kParams);
    for (float& x : v) x = std::ldexp(unit(rng), exponent(rng));
    weights.push_back(examples(rng));
    total += weights.back();
    for (int j = 0; j < kParams; ++j) sum[j] += static_cast<long double>(weights.back()) * v[j];
    ArrayRecord r;
    r.tensors.push_back(F32("w", v));
    updates.push_back(std::move(r));
  }
  absl::StatusOr<ArrayRecord> avg = FedAvg(updates, weights);
  ASSERT_THAT(avg, IsOk());
  auto got = avg->tensors[0].values<float>();
  for (int j = 0; j < kParams; ++j) {
    // The accumulator rounds the exact sum to double, divides in double and rounds to float;
    // that is the correctly rounded float unless the exact mean lies within ~2^-28 float ulp
    // of a tie, which this data does not hit.
    EXPECT_EQ(got[j], static_cast<float>(sum[j] / total)) << j;
  }
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

TEST(WeightedAccumulatorTest, HugeFloat32ValuesAverageWithoutOverflow) {
  // The exact sum 6e38 is beyond float32 but the accumulator never holds it as a float.
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  TESSERA_ASSERT_OK(acc->Add(Model(3e38f, 0, 0), 1.0));
  TESSERA_ASSERT_OK(acc->Add(Model(3e38f, 0, 0), 1.0));
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(3e38f, 0.0f));
}

TEST(WeightedAccumulatorTest, OverflowingFloat64ProductIsRejectedBeforeAnyFold) {
  auto acc = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(acc, IsOk());
  EXPECT_THAT(acc->Add(Model(1, 1, 1e308), 1e10),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("\"b\"")));
  EXPECT_EQ(acc->count(), 0u);
  // The mean of two values near DBL_MAX is representable, their sum is not.
  TESSERA_ASSERT_OK(acc->Add(Model(1, 1, 1.5e308), 1.0));
  TESSERA_ASSERT_OK(acc->Add(Model(1, 1, 1.7e308), 1.0));
  auto avg = std::move(*acc).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(1.5e308 / 2 + 1.7e308 / 2));
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

// The result bits of an accumulator's Average().
std::string AverageBits(WeightedAccumulator acc) {
  absl::StatusOr<ArrayRecord> avg = std::move(acc).Average();
  EXPECT_THAT(avg, IsOk());
  std::string bits;
  if (avg.ok()) {
    for (const Tensor& t : avg->tensors) bits += std::string(t.data());
  }
  return bits;
}

// MixedUpdates plus a float32 tensor whose values span 2^-100..2^100, far more than the 62
// bits an element keeps: the partials reach different levels, and raising a partial's bins
// to the merged level must drop exactly what one accumulator would have truncated.
std::vector<ArrayRecord> WideUpdates(int count, uint32_t seed) {
  std::vector<ArrayRecord> updates = MixedUpdates(count, seed);
  std::mt19937 rng(seed + 100);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-100, 100);
  for (ArrayRecord& r : updates) {
    std::vector<float> v(64);
    for (float& x : v) x = std::ldexp(unit(rng), exponent(rng));
    r.tensors.push_back(F32("wide", v));
  }
  return updates;
}

TEST(WeightedAccumulatorTest, MergeHandComputed) {
  // Partial A holds update (1, 2, 10) with weight 1, partial B holds (5, -2, 2) with weight
  // 3: merged, (1 + 15) / 4 = 4, (2 - 6) / 4 = -1, (10 + 6) / 4 = 4.
  auto a = WeightedAccumulator::Create(Model(0, 0, 0));
  auto b = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  TESSERA_ASSERT_OK(a->Add(Model(1, 2, 10), 1.0));
  TESSERA_ASSERT_OK(b->Add(Model(5, -2, 2), 3.0));
  TESSERA_ASSERT_OK(a->Merge(*b));
  EXPECT_EQ(a->count(), 2u);
  EXPECT_EQ(a->total_weight(), 4.0);
  EXPECT_EQ(b->count(), 1u);  // unchanged
  absl::StatusOr<ArrayRecord> avg = std::move(*a).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(4.0f, -1.0f));
  EXPECT_THAT(Values<double>(*avg, 1), ElementsAre(4.0));
}

TEST(WeightedAccumulatorTest, MergedPartialsEqualOneAccumulatorBitForBit) {
  const std::vector<ArrayRecord> updates = WideUpdates(12, 3);
  std::vector<double> weights;
  for (int k = 0; k < 12; ++k) weights.push_back(1 + 37 * k);
  auto whole = WeightedAccumulator::Create(updates[0]);
  ASSERT_THAT(whole, IsOk());
  for (size_t k = 0; k < updates.size(); ++k) {
    TESSERA_ASSERT_OK(whole->Add(updates[k], weights[k]));
  }
  const std::string want = AverageBits(*std::move(whole));
  // Every split into 1..4 partials by k mod parts, merged in every order of the partials,
  // some through Serialize/Deserialize as another process would send them.
  for (size_t parts = 1; parts <= 4; ++parts) {
    std::vector<size_t> order(parts);
    for (size_t p = 0; p < parts; ++p) order[p] = p;
    do {
      auto merged = WeightedAccumulator::Create(updates[0]);
      ASSERT_THAT(merged, IsOk());
      for (size_t p : order) {
        auto partial = WeightedAccumulator::Create(updates[0]);
        ASSERT_THAT(partial, IsOk());
        for (size_t k = p; k < updates.size(); k += parts) {
          TESSERA_ASSERT_OK(partial->Add(updates[k], weights[k]));
        }
        if (p % 2 == 1) {
          auto copy = WeightedAccumulator::Deserialize(updates[0], partial->Serialize());
          ASSERT_THAT(copy, IsOk());
          TESSERA_ASSERT_OK(merged->Merge(*copy));
        } else {
          TESSERA_ASSERT_OK(merged->Merge(*partial));
        }
      }
      EXPECT_EQ(merged->count(), updates.size());
      EXPECT_EQ(AverageBits(*std::move(merged)), want) << parts << " partials";
    } while (std::next_permutation(order.begin(), order.end()));
  }
}

TEST(WeightedAccumulatorTest, MergeRefusesAnotherLayoutOrTooManyUpdates) {
  auto a = WeightedAccumulator::Create(Model(0, 0, 0));
  ArrayRecord other;
  other.tensors.push_back(F32("w", {0, 0, 0}));
  other.tensors.push_back(MakeTensor<double>("b", DType::kFloat64, {1}, {0}));
  auto b = WeightedAccumulator::Create(other);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  TESSERA_ASSERT_OK(a->Add(Model(1, 2, 3), 2.0));
  TESSERA_ASSERT_OK(b->Add(other, 1.0));
  EXPECT_THAT(a->Merge(*b), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("merge: tensor 0: expected w float32[2]")));
  ArrayRecord one;
  one.tensors.push_back(F32("w", {0, 0}));
  auto c = WeightedAccumulator::Create(one);
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(a->Merge(*c), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("expected 2 tensors, got 1")));
  EXPECT_EQ(a->count(), 1u);
  EXPECT_EQ(a->total_weight(), 2.0);
  // A partial claiming 2^32 - 1 updates (the limit) cannot join one that holds any.
  std::string bytes = a->Serialize();
  const uint64_t limit = (uint64_t{1} << 32) - 1;
  for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((limit >> (8 * i)) & 0xff);
  auto full = WeightedAccumulator::Deserialize(Model(0, 0, 0), bytes);
  ASSERT_THAT(full, IsOk());
  EXPECT_THAT(a->Merge(*full), StatusIs(absl::StatusCode::kResourceExhausted,
                                        HasSubstr("exceed the accumulator's limit of 4294967295")));
  EXPECT_EQ(a->count(), 1u);
}

TEST(WeightedAccumulatorTest, DeserializeRefusesMalformedBytes) {
  auto a = WeightedAccumulator::Create(Model(0, 0, 0));
  ASSERT_THAT(a, IsOk());
  TESSERA_ASSERT_OK(a->Add(Model(1, 2, 3), 2.0));
  const std::string bytes = a->Serialize();
  // 8 (count) + 25 per element: the weight sum and 3 parameters.
  ASSERT_EQ(bytes.size(), 8u + 25u * 4);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THAT(WeightedAccumulator::Deserialize(Model(0, 0, 0), bytes.substr(0, n)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(absl::StrCat("expected 108 bytes for the layout, got ", n))));
  }
  EXPECT_THAT(WeightedAccumulator::Deserialize(Model(0, 0, 0), bytes + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 109")));
  std::string over = bytes;  // count 2^32
  over[0] = 0;
  over[4] = 1;
  EXPECT_THAT(WeightedAccumulator::Deserialize(Model(0, 0, 0), over),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("update count 4294967296 exceeds the limit of 4294967295")));
  std::string level = bytes;  // the weight sum's level byte: 100 is beyond any double
  level[8] = 100;
  EXPECT_THAT(WeightedAccumulator::Deserialize(Model(0, 0, 0), level),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("malformed sums of the weights")));
  std::string bin = bytes;  // tensor w's first element: high bin 2^40, more than 1 update makes
  const size_t w0 = 8 + 25;
  for (size_t i = 0; i < 8; ++i) bin[w0 + 1 + i] = 0;
  bin[w0 + 1 + 5] = 1;
  EXPECT_THAT(WeightedAccumulator::Deserialize(Model(0, 0, 0), bin),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("malformed sums of tensor \"w\"")));
  auto back = WeightedAccumulator::Deserialize(Model(0, 0, 0), bytes);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->count(), 1u);
  EXPECT_EQ(back->total_weight(), 2.0);
  absl::StatusOr<ArrayRecord> avg = std::move(*back).Average();
  ASSERT_THAT(avg, IsOk());
  EXPECT_THAT(Values<float>(*avg, 0), ElementsAre(1.0f, 2.0f));
}

}  // namespace
}  // namespace aggregation
}  // namespace tessera
