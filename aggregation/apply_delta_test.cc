#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "aggregation/fed_avg.h"
#include "core/model/testing/tensor_builders.h"
#include "core/base/testing/status_matchers.h"

namespace tessera {
namespace aggregation {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ArrayRecord Mixed(std::vector<float> f, std::vector<int64_t> i,
                  std::vector<int8_t> q) {
  ArrayRecord r;
  r.tensors.push_back(MakeVector<float>("f", DType::kFloat32, std::move(f)));
  r.tensors.push_back(MakeVector<int64_t>("i", DType::kInt64, std::move(i)));
  r.tensors.push_back(MakeVector<int8_t>("q", DType::kInt8, std::move(q)));
  return r;
}

TEST(ApplyDeltaTest, AddsPerTensorExactlyForIntegers) {
  ArrayRecord global = Mixed({1.5f, -2.0f}, {int64_t{1} << 60, 5}, {100, -100});
  const ArrayRecord delta = Mixed({0.25f, 2.0f}, {1, -7}, {27, -28});
  TESSERA_ASSERT_OK(ApplyDelta(global, delta));
  EXPECT_THAT(Values<float>(global, 0), ElementsAre(1.75f, 0.0f));
  EXPECT_THAT(Values<int64_t>(global, 1),
              ElementsAre((int64_t{1} << 60) + 1, -2));
  EXPECT_THAT(Values<int8_t>(global, 2), ElementsAre(127, -128));
}

TEST(ApplyDeltaTest, Float64AndHalfTypes) {
  ArrayRecord global, delta;
  global.tensors.push_back(MakeVector<double>("d", DType::kFloat64, {1.0, 2.0}));
  global.tensors.push_back(
      MakeVector<uint16_t>("h", DType::kFloat16, {0x3C00}));  // 1.0
  global.tensors.push_back(
      MakeVector<uint16_t>("bf", DType::kBFloat16, {0x3F80}));  // 1.0
  delta.tensors.push_back(MakeVector<double>("d", DType::kFloat64, {0.5, -4.0}));
  delta.tensors.push_back(MakeVector<uint16_t>("h", DType::kFloat16, {0x3C00}));
  delta.tensors.push_back(MakeVector<uint16_t>("bf", DType::kBFloat16, {0x3F80}));
  TESSERA_ASSERT_OK(ApplyDelta(global, delta));
  EXPECT_THAT(Values<double>(global, 0), ElementsAre(1.5, -2.0));
  EXPECT_THAT(Values<uint16_t>(global, 1), ElementsAre(0x4000));  // 2.0
  EXPECT_THAT(Values<uint16_t>(global, 2), ElementsAre(0x4000));  // 2.0
}

TEST(ApplyDeltaTest, IntegerOverflowLeavesGlobalUnchanged) {
  ArrayRecord global = Mixed({1.0f}, {1}, {120});
  const ArrayRecord before = global;
  EXPECT_THAT(ApplyDelta(global, Mixed({1.0f}, {1}, {8})),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("\"q\"")));
  EXPECT_THAT(Values<float>(global, 0), ElementsAre(1.0f));
  EXPECT_THAT(Values<int64_t>(global, 1), ElementsAre(1));
  EXPECT_THAT(Values<int8_t>(global, 2), ElementsAre(120));

  ArrayRecord big = Mixed({0}, {std::numeric_limits<int64_t>::max()}, {0});
  EXPECT_THAT(ApplyDelta(big, Mixed({0}, {1}, {0})),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("index 0")));
}

TEST(ApplyDeltaTest, FloatOverflowIsOutOfRange) {
  ArrayRecord global = Mixed({3e38f}, {0}, {0});
  EXPECT_THAT(ApplyDelta(global, Mixed({3e38f}, {0}, {0})),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(Values<float>(global, 0), ElementsAre(3e38f));
}

TEST(ApplyDeltaTest, BoolMustStayZeroOrOne) {
  ArrayRecord global, delta;
  global.tensors.push_back(MakeVector<uint8_t>("m", DType::kBool, {0, 1}));
  delta.tensors.push_back(MakeVector<uint8_t>("m", DType::kBool, {1, 0}));
  TESSERA_ASSERT_OK(ApplyDelta(global, delta));
  EXPECT_THAT(Values<uint8_t>(global, 0), ElementsAre(1, 1));
  EXPECT_THAT(ApplyDelta(global, delta),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(ApplyDeltaTest, RejectsNaNDeltaAndLayoutMismatch) {
  ArrayRecord global = Mixed({1.0f, 2.0f}, {1}, {1});
  EXPECT_THAT(
      ApplyDelta(global, Mixed({0.0f, std::nanf("")}, {1}, {1})),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 1")));
  EXPECT_THAT(ApplyDelta(global, Mixed({0.0f}, {1}, {1})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ArrayRecord fewer;
  fewer.tensors.push_back(MakeVector<float>("f", DType::kFloat32, {0.0f, 0.0f}));
  EXPECT_THAT(ApplyDelta(global, fewer),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Values<float>(global, 0), ElementsAre(1.0f, 2.0f));
}

TEST(ApplyDeltaRangeTest, AddsARangeOfOneTensorAsApplyDeltaAdds) {
  Tensor global = MakeVector<float>("f", DType::kFloat32, {1.0f, 2.0f, 3.0f, 4.0f});
  TESSERA_ASSERT_OK(ApplyDeltaRange(global, 1, MakeVector<float>("x", DType::kFloat32,
                                                                {0.5f, -3.0f})));
  EXPECT_THAT(global.values<float>(), ElementsAre(1.0f, 2.5f, 0.0f, 4.0f));
  Tensor h = MakeVector<uint16_t>("h", DType::kFloat16, {0x3C00, 0x3C00});  // 1.0, 1.0
  TESSERA_ASSERT_OK(ApplyDeltaRange(h, 1, MakeVector<uint16_t>("x", DType::kFloat16, {0x3C00})));
  EXPECT_THAT(h.values<uint16_t>(), ElementsAre(0x3C00, 0x4000));  // 1.0, 2.0
  Tensor q = MakeVector<int8_t>("q", DType::kInt8, {1, 2, 3});
  TESSERA_ASSERT_OK(ApplyDeltaRange(q, 0, MakeVector<int8_t>("x", DType::kInt8, {-1, 125, 0})));
  EXPECT_THAT(q.values<int8_t>(), ElementsAre(0, 127, 3));
  // An empty range at the end changes nothing.
  TESSERA_ASSERT_OK(ApplyDeltaRange(q, 3, MakeVector<int8_t>("x", DType::kInt8, {})));
  EXPECT_THAT(q.values<int8_t>(), ElementsAre(0, 127, 3));
}

TEST(ApplyDeltaRangeTest, ErrorsNameTheTensorAndIndexAndLeaveItUnchanged) {
  Tensor q = MakeVector<int8_t>("q", DType::kInt8, {1, 2, 120});
  const std::string before = q.data();
  // Element 2 of q (index 1 of the range) overflows: nothing of the range is written.
  EXPECT_THAT(ApplyDeltaRange(q, 1, MakeVector<int8_t>("x", DType::kInt8, {1, 8})),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("\"q\": int8 sum overflows at index 2")));
  EXPECT_EQ(q.data(), before);
  EXPECT_THAT(ApplyDeltaRange(q, 2, MakeVector<int8_t>("x", DType::kInt8, {1, 1})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("elements 2..4 of 3")));
  EXPECT_THAT(ApplyDeltaRange(q, 0, MakeVector<int16_t>("x", DType::kInt16, {1})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"q\" is int8; the delta is int16")));
  Tensor f = MakeVector<float>("f", DType::kFloat32, {1.0f, 3e38f});
  EXPECT_THAT(ApplyDeltaRange(f, 0, MakeVector<float>("x", DType::kFloat32, {NAN})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  EXPECT_THAT(ApplyDeltaRange(f, 1, MakeVector<float>("x", DType::kFloat32, {3e38f})),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("at index 1")));
  EXPECT_THAT(f.values<float>(), ElementsAre(1.0f, 3e38f));
  EXPECT_EQ(q.data(), before);
}

}  // namespace
}  // namespace aggregation
}  // namespace tessera
