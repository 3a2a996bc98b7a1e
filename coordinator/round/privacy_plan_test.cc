// PrivacyPlan: what a distributed-DP round is charged, checked against Kairouz, Liu, Steinke
// 2021 (Theorem 1) written out in the test.
#include "coordinator/round/privacy_plan.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/secagg/quantizer.h"

namespace tessera::coordinator {
namespace {

// 10 * sum_{k=1}^{n-1} exp(-2 pi^2 s2 k / (k+1)).
double Tau(double s2, int n) {
  double tau = 0;
  for (int k = 1; k < n; ++k) {
    tau += 10 * std::exp(-2 * std::numbers::pi * std::numbers::pi * s2 * k / (k + 1.0));
  }
  return tau;
}

TEST(PrivacyPlanTest, DistributedTauIsTakenAtThePopulation) {
  // A small modulus and a large population make the per-client variance small (~0.75), where
  // tau is a real penalty. Any survivor count from min_clients = 2 to the population of 1000
  // can be released, so the charge must hold for all of them: tau grows with n, the Gaussian
  // term shrinks, so the bound takes the variance at 2 clients and tau at 1000.
  wire::v1::RunConfig config;
  config.mutable_selection()->set_min_clients(2);
  wire::v1::DifferentialPrivacyConfig* dp = config.mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::DISTRIBUTED);
  dp->set_noise_multiplier(1.0);
  dp->set_clip_norm(1.0);
  dp->set_population(1000);
  dp->set_expected_clients_per_round(1000);  // q = 1: RDP(alpha) = alpha * rho
  dp->set_epsilon_budget(1e9);
  dp->set_delta(1e-5);
  dp->set_dataset("tau");
  dp->set_modulus_bits(8);
  constexpr int kValues = 1 << 16;
  ArrayRecord weights;
  weights.tensors.push_back(*Tensor::FromFloats("w", {kValues}, std::vector<float>(kValues)));
  absl::StatusOr<PrivacyPlan> plan = MakePrivacyPlan(config, weights);
  ASSERT_THAT(plan, IsOk());
  ASSERT_TRUE(plan->ddg.has_value());
  const double s2 = plan->ddg->sigma2_per_client;
  const double d2 = plan->ddg->l2_sensitivity;
  const double dim = static_cast<double>(plan->ddg->padded_dimension);
  ASSERT_LT(s2, 2.0);  // the regime the test is about
  const double g = d2 * d2 / (2 * s2);
  const double tau = Tau(s2, 1000);
  const double lin = std::sqrt(g) + tau * std::sqrt(dim);
  const double rho = 0.5 * std::min(g + 2 * tau * dim, lin * lin);
  // tau at min_clients would charge visibly less.
  const double lin_small = std::sqrt(g) + Tau(s2, 2) * std::sqrt(dim);
  ASSERT_GT(rho, 1.01 * 0.5 * std::min(g + 2 * Tau(s2, 2) * dim, lin_small * lin_small));
  ASSERT_EQ(plan->round_rdp.size(), plan->orders.size());
  for (size_t i = 0; i < plan->orders.size(); ++i) {
    EXPECT_NEAR(plan->round_rdp[i], plan->orders[i] * rho, 1e-9 * plan->orders[i] * rho)
        << "order " << plan->orders[i];
  }
}

TEST(PrivacyPlanTest, CentralNoiseWithSecureAggregationCoversTheRounding) {
  // Central DP through secure aggregation: each client clips to C = 1, then the quantizer
  // rounds every value up or down by less than one unit, 1 / scale, with scale =
  // (2^(value_bits-1) - 1) / (secure_aggregation.clip * weight 1). Over d values that moves
  // the update by up to sqrt(d) / scale, so the sensitivity is C + sqrt(d) / scale
  // and the noise z times that.
  constexpr int kValues = 1024;
  wire::v1::RunConfig config;
  config.mutable_selection()->set_min_clients(2);
  wire::v1::SecureAggregationConfig* sa = config.mutable_secure_aggregation();
  sa->set_enabled(true);
  sa->set_clip(0.05);
  sa->set_value_bits(8);
  sa->set_max_examples(1);
  wire::v1::DifferentialPrivacyConfig* dp = config.mutable_differential_privacy();
  dp->set_mode(wire::v1::DifferentialPrivacyConfig::CENTRAL);
  dp->set_noise_multiplier(2.0);
  dp->set_clip_norm(1.0);
  dp->set_population(10);
  dp->set_expected_clients_per_round(10);
  dp->set_epsilon_budget(10);
  dp->set_delta(1e-5);
  dp->set_dataset("rounding");
  ArrayRecord weights;
  weights.tensors.push_back(*Tensor::FromFloats("w", {kValues}, std::vector<float>(kValues)));
  absl::StatusOr<PrivacyPlan> plan = MakePrivacyPlan(config, weights);
  ASSERT_THAT(plan, IsOk());
  const double scale = 127 / 0.05;
  const double bound = std::sqrt(double{kValues}) / scale;  // 0.0126
  EXPECT_NEAR(CentralSensitivity(*plan, 1.0), 1.0 + bound, 1e-12);
  EXPECT_EQ(plan->update_noise_multiplier, 2.0);

  // The bound is needed and enough: the real quantizer, rounding up every value of an
  // update of norm exactly C whose values sit just above a grid point, returns an update of
  // norm above C, and never above C + sqrt(d) / scale.
  absl::StatusOr<secagg::QuantizerParams> q = secagg::MakeQuantizerParams(
      {.clip = 0.05, .max_weight = 1, .max_clients = 10, .value_bits = 8});
  ASSERT_THAT(q, IsOk());
  const float x = static_cast<float>(1.0 / std::sqrt(double{kValues}));  // 1/32 = 79.4 units
  std::vector<float> update(kValues, x);
  absl::StatusOr<std::vector<uint64_t>> ints =
      secagg::Quantize(update, 1.0, *q, [] { return 0.0; });
  ASSERT_THAT(ints, IsOk());
  double norm2 = 0;
  for (double v : secagg::Dequantize(*ints, *q)) norm2 += v * v;
  EXPECT_GT(std::sqrt(norm2), 1.0 + 0.5 * bound);
  EXPECT_LE(std::sqrt(norm2), 1.0 + bound);
}

}  // namespace
}  // namespace tessera::coordinator
