#include "privacy/secagg/update_codec.h"

#include <cmath>

#include "core/base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

ArrayRecord Update(float a, float b) {
  ArrayRecord r;
  r.tensors.push_back(*Tensor::FromFloats("w", {2}, {a, b}));
  r.tensors.push_back(*Tensor::Zeros("steps", DType::kInt64, {}));
  r.tensors.push_back(*Tensor::FromFloats("bias", {1}, {a - b}));
  return r;
}

QuantizerParams Params() {
  return *MakeQuantizerParams(
      {.clip = 1.0, .max_weight = 1000, .max_clients = 4, .value_bits = 32});
}

TEST(UpdateCodecTest, SumsOnlyFloatTensorsInOrder) {
  const std::vector<TensorSpec> specs = SummedTensors(Update(0, 0));
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "w");
  EXPECT_EQ(specs[0].length, 2u);
  EXPECT_EQ(specs[1].name, "bias");
}

TEST(UpdateCodecTest, MeanOfSumIsWeightedFedAvg) {
  const QuantizerParams p = Params();
  auto uniform = SecureUniformSource();
  ASSERT_THAT(uniform, IsOk());
  auto q1 = QuantizeUpdate(Update(0.5f, -0.25f), 100, p, *uniform);
  auto q2 = QuantizeUpdate(Update(-0.1f, 0.75f), 300, p, *uniform);
  ASSERT_THAT(q1, IsOk());
  ASSERT_THAT(q2, IsOk());
  std::vector<QuantizedTensor> sum = *q1;
  for (size_t t = 0; t < sum.size(); ++t) AddModular((*q2)[t].values, p, absl::MakeSpan(sum[t].values));
  auto mean = MeanDeltaFromSum(sum, 400, p, Update(0, 0));
  ASSERT_THAT(mean, IsOk());
  const auto w = mean->tensors[0].values<float>();
  EXPECT_NEAR(w[0], (0.5 * 100 - 0.1 * 300) / 400, 1e-6);
  EXPECT_NEAR(w[1], (-0.25 * 100 + 0.75 * 300) / 400, 1e-6);
  EXPECT_EQ(mean->tensors[1].dtype(), DType::kInt64);
  EXPECT_EQ(mean->tensors[1].values<int64_t>()[0], 0);
  EXPECT_NEAR(mean->tensors[2].values<float>()[0], (0.75 * 100 - 0.85 * 300) / 400, 1e-6);
}

TEST(UpdateCodecTest, ClipsToTheConfiguredRange) {
  const QuantizerParams p = Params();
  auto uniform = SecureUniformSource();
  auto q = QuantizeUpdate(Update(5.0f, -7.0f), 10, p, *uniform);
  ASSERT_THAT(q, IsOk());
  auto mean = MeanDeltaFromSum(*q, 10, p, Update(0, 0));
  ASSERT_THAT(mean, IsOk());
  EXPECT_NEAR(mean->tensors[0].values<float>()[0], 1.0, 1e-6);
  EXPECT_NEAR(mean->tensors[0].values<float>()[1], -1.0, 1e-6);
}

TEST(UpdateCodecTest, RejectsBadInputs) {
  const QuantizerParams p = Params();
  auto uniform = SecureUniformSource();
  EXPECT_THAT(QuantizeUpdate(Update(NAN, 0), 1, p, *uniform),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensor w")));
  EXPECT_THAT(QuantizeUpdate(Update(0, 0), 1001, p, *uniform),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto q = QuantizeUpdate(Update(0, 0), 1, p, *uniform);
  EXPECT_THAT(MeanDeltaFromSum(*q, 0, p, Update(0, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<QuantizedTensor> short_sum = {(*q)[0]};
  EXPECT_THAT(MeanDeltaFromSum(short_sum, 1, p, Update(0, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bias")));
}

TEST(UpdateCodecTest, SumDigestCoversEveryValueAndTheWeight) {
  std::vector<QuantizedTensor> s = {{"a", {1, 2, 3}}};
  const std::string d = SumDigest(s, 7);
  EXPECT_EQ(d.size(), 32u);
  EXPECT_EQ(SumDigest(s, 7), d);
  EXPECT_NE(SumDigest(s, 8), d);
  s[0].values[2] = 4;
  EXPECT_NE(SumDigest(s, 7), d);
}

TEST(UpdateCodecTest, SecureUniformIsInUnitInterval) {
  auto uniform = SecureUniformSource();
  ASSERT_THAT(uniform, IsOk());
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = (*uniform)();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

}  // namespace
}  // namespace tessera::secagg
