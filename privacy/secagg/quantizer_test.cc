#include "privacy/secagg/quantizer.h"

#include <cmath>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::secagg {
namespace {

using ::testing::HasSubstr;

UniformSource Seeded(uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
}

TEST(QuantizerTest, ModulusGrowsWithClientsAndRejectsWhatCannotFit) {
  auto small = MakeQuantizerParams({.clip = 1, .max_weight = 1, .max_clients = 2, .value_bits = 16});
  auto large = MakeQuantizerParams({.clip = 1, .max_weight = 1, .max_clients = 1000, .value_bits = 16});
  ASSERT_THAT(small, IsOk());
  ASSERT_THAT(large, IsOk());
  EXPECT_EQ(small->modulus_bits, 16u + 1 + 1);
  EXPECT_EQ(large->modulus_bits, 16u + 10 + 1);
  EXPECT_THAT(MakeQuantizerParams({.clip = 1, .max_weight = 1, .max_clients = 1u << 20, .value_bits = 48}),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("limit is 62")));
  EXPECT_THAT(MakeQuantizerParams({.clip = -1}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeQuantizerParams({.max_clients = 0}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeQuantizerParams({.value_bits = 1}), StatusIs(absl::StatusCode::kInvalidArgument));
}

// The integer weights are summed mod 2^b too: n * max_weight must stay below 2^(b-1).
// value_bits 8 with 10 clients gives b = 8 + ceil(log2 10) + 1 = 13, so at most 4095.
TEST(QuantizerTest, RefusesWeightsWhoseSumCouldWrap) {
  EXPECT_THAT(MakeQuantizerParams({.clip = 1, .max_weight = 12000, .max_clients = 10, .value_bits = 8}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_examples")));
  EXPECT_THAT(MakeQuantizerParams({.clip = 1, .max_weight = 410, .max_clients = 10, .value_bits = 8}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2^12")));
  auto fits = MakeQuantizerParams({.clip = 1, .max_weight = 409, .max_clients = 10, .value_bits = 8});
  ASSERT_THAT(fits, IsOk());
  EXPECT_EQ(fits->modulus_bits, 13u);
}

// The defining property: the modular sum of quantized vectors, read back as signed
// integers, equals the plain integer sum of the same quantized values, bit for bit, even at
// the extremes of the range and the client count.
TEST(QuantizerTest, ModularSumEqualsPlainIntegerSumExactly) {
  const uint32_t n = 64;
  auto params = MakeQuantizerParams({.clip = 0.5, .max_weight = 100, .max_clients = n, .value_bits = 20});
  ASSERT_THAT(params, IsOk());
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);  // beyond clip: exercises clipping
  const size_t d = 1000;
  std::vector<uint64_t> sum(d, 0);
  std::vector<int64_t> plain(d, 0);
  for (uint32_t c = 0; c < n; ++c) {
    std::vector<float> x(d);
    for (auto& v : x) v = value(rng);
    x[0] = 1e9f;   // extreme values clip to the range's ends
    x[1] = -1e9f;
    const double weight = c % 2 == 0 ? 100.0 : 1.0 + c;
    auto q = Quantize(x, weight, *params, Seeded(c));
    ASSERT_THAT(q, IsOk());
    AddModular(*q, *params, absl::MakeSpan(sum));
    for (size_t i = 0; i < d; ++i) {
      // Undo the reduction to get the client's signed integer.
      int64_t s = static_cast<int64_t>((*q)[i]);
      if (s >= int64_t{1} << (params->modulus_bits - 1)) s -= int64_t{1} << params->modulus_bits;
      plain[i] += s;
    }
  }
  EXPECT_EQ(ToSigned(sum, *params), plain);
}

TEST(QuantizerTest, WeightedMeanIsRecoveredWithinTheResolution) {
  auto params = MakeQuantizerParams({.clip = 1, .max_weight = 1000, .max_clients = 3, .value_bits = 24});
  ASSERT_THAT(params, IsOk());
  const std::vector<std::vector<float>> xs = {{0.25f, -0.5f}, {0.75f, 0.1f}, {-0.3f, 0.9f}};
  const std::vector<double> ws = {10, 300, 1000};
  std::vector<uint64_t> sum(2, 0);
  double total_w = 0;
  std::vector<double> expected(2, 0);
  for (size_t c = 0; c < xs.size(); ++c) {
    auto q = Quantize(xs[c], ws[c], *params, Seeded(c + 1));
    ASSERT_THAT(q, IsOk());
    AddModular(*q, *params, absl::MakeSpan(sum));
    total_w += ws[c];
    for (size_t i = 0; i < 2; ++i) expected[i] += ws[c] * xs[c][i];
  }
  std::vector<double> back = Dequantize(sum, *params);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(back[i] / total_w, expected[i] / total_w, 3.0 / params->scale / total_w);
  }
}

TEST(QuantizerTest, StochasticRoundingIsUnbiased) {
  auto params = MakeQuantizerParams({.clip = 1, .max_weight = 1, .max_clients = 1, .value_bits = 4});
  ASSERT_THAT(params, IsOk());
  // 0.1 lies between two integer levels at this coarse resolution; the mean of many
  // stochastic roundings approaches it.
  const std::vector<float> x(20000, 0.1f);
  auto q = Quantize(x, 1.0, *params, Seeded(3));
  ASSERT_THAT(q, IsOk());
  double mean = 0;
  for (double v : Dequantize(*q, *params)) mean += v;
  mean /= x.size();
  EXPECT_NEAR(mean, 0.1, 0.005);
}

TEST(QuantizerTest, RejectsNanAndBadWeights) {
  auto params = MakeQuantizerParams({.clip = 1, .max_weight = 10, .max_clients = 2, .value_bits = 16});
  ASSERT_THAT(params, IsOk());
  const std::vector<float> nan = {0.0f, std::nanf("")};
  EXPECT_THAT(Quantize(nan, 1.0, *params, Seeded(1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 1")));
  const std::vector<float> ok = {0.5f};
  EXPECT_THAT(Quantize(ok, 0.0, *params, Seeded(1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Quantize(ok, 11.0, *params, Seeded(1)), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tessera::secagg
