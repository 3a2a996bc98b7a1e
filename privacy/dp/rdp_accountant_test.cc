#include "privacy/dp/rdp_accountant.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::dp {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMnistQ = 256.0 / 60000.0;
constexpr uint64_t kMnistSteps = 60 * 234;

std::vector<double> IntegerOrders(int from, int to) {
  std::vector<double> orders;
  for (int a = from; a <= to; ++a) orders.push_back(a);
  return orders;
}

TEST(DefaultOrdersTest, MatchesDpAccounting) {
  const std::vector<double> orders = DefaultOrders();
  ASSERT_EQ(orders.size(), 156u);
  EXPECT_DOUBLE_EQ(orders.front(), 1.1);
  EXPECT_DOUBLE_EQ(orders[98], 10.9);
  EXPECT_EQ(orders[99], 11.0);
  EXPECT_EQ(orders[151], 63.0);
  EXPECT_EQ(orders.back(), 1024.0);
}

TEST(ComputeRdpTest, SpecialCases) {
  EXPECT_THAT(ComputeRdp(0.0, 1.0, 100, 2.5), IsOkAndHolds(0.0));
  EXPECT_THAT(ComputeRdp(0.5, 1.0, 0, 2.5), IsOkAndHolds(0.0));
  EXPECT_THAT(ComputeRdp(0.5, 0.0, 1, 2.5), IsOkAndHolds(kInf));
  // q = 1 is the plain Gaussian mechanism: alpha / (2 sigma^2), times the steps.
  EXPECT_THAT(ComputeRdp(1.0, 2.0, 3, 5.0), IsOkAndHolds(DoubleNear(3 * 5.0 / 8.0, 1e-12)));
}

// dp_accounting's rdp_privacy_accountant_test (test_compute_rdp_poisson_sampled_gaussian):
// q = 0.01, sigma = 2.5, 50 steps, fractional and integer orders, rtol 1e-4.
TEST(ComputeRdpTest, MatchesDpAccountingReferenceValues) {
  const struct {
    double order;
    double rdp;
  } kCases[] = {{1.5, 6.5007e-04}, {2.5, 1.0854e-03}, {5, 2.1808e-03},
                {50, 2.3846e-02},  {100, 1.6742e+02}};
  for (const auto& c : kCases) {
    absl::StatusOr<double> rdp = ComputeRdp(0.01, 2.5, 50, c.order);
    ASSERT_THAT(rdp, IsOk());
    EXPECT_NEAR(*rdp, c.rdp, 1e-4 * c.rdp) << "order " << c.order;
  }
}

TEST(ComputeRdpTest, FractionalOrdersInterpolateIntegerOnes) {
  // RDP is non-decreasing in the order.
  double previous = 0.0;
  for (double order = 1.5; order <= 12.0; order += 0.5) {
    absl::StatusOr<double> rdp = ComputeRdp(0.02, 1.3, 1, order);
    ASSERT_THAT(rdp, IsOk());
    EXPECT_GE(*rdp, previous) << "order " << order;
    previous = *rdp;
  }
}

// Abadi et al. 2016 ("Deep Learning with Differential Privacy"), Sec. 5: q = 0.01, sigma = 4,
// 10,000 steps, delta = 1e-5 gives epsilon ~= 1.26 with the moments accountant (classic
// conversion). Integer orders give 1.25857 at order 20.
TEST(ComputeEpsilonTest, AbadiEtAl2016) {
  absl::StatusOr<EpsilonResult> ints =
      ComputeEpsilon(0.01, 4.0, 10000, 1e-5, IntegerOrders(2, 64), Conversion::kClassic);
  ASSERT_THAT(ints, IsOk());
  EXPECT_NEAR(ints->epsilon, 1.26, 0.01);
  EXPECT_EQ(ints->order, 20.0);
  absl::StatusOr<EpsilonResult> defaults =
      ComputeEpsilon(0.01, 4.0, 10000, 1e-5, DefaultOrders(), Conversion::kClassic);
  ASSERT_THAT(defaults, IsOk());
  EXPECT_NEAR(defaults->epsilon, 1.26, 0.01);
}

// TF Privacy's MNIST DP-SGD tutorial: batch 256 of 60,000, sigma = 1.1, 60 epochs,
// delta = 1e-5 -> "epsilon = 3.01" (classic conversion; two decimals).
TEST(ComputeEpsilonTest, TfPrivacyMnistTutorial) {
  absl::StatusOr<EpsilonResult> r =
      ComputeEpsilon(kMnistQ, 1.1, kMnistSteps, 1e-5, DefaultOrders(), Conversion::kClassic);
  ASSERT_THAT(r, IsOk());
  EXPECT_NEAR(r->epsilon, 3.01, 0.01);
  // The improved conversion is strictly tighter here.
  absl::StatusOr<EpsilonResult> improved =
      ComputeEpsilon(kMnistQ, 1.1, kMnistSteps, 1e-5, DefaultOrders(), Conversion::kImproved);
  ASSERT_THAT(improved, IsOk());
  EXPECT_LT(improved->epsilon, r->epsilon);
}

// q = 1, sigma = 1, one step: rdp = alpha / 2, so the conversions have closed forms.
TEST(ComputeEpsilonTest, GaussianMechanismClosedForm) {
  const std::vector<double> orders = IntegerOrders(2, 64);
  absl::StatusOr<EpsilonResult> classic =
      ComputeEpsilon(1.0, 1.0, 1, 1e-5, orders, Conversion::kClassic);
  ASSERT_THAT(classic, IsOk());
  EXPECT_NEAR(classic->epsilon, 5.30258509, 1e-6 * 5.30258509);
  EXPECT_EQ(classic->order, 6.0);
  absl::StatusOr<EpsilonResult> improved =
      ComputeEpsilon(1.0, 1.0, 1, 1e-5, orders, Conversion::kImproved);
  ASSERT_THAT(improved, IsOk());
  EXPECT_NEAR(improved->epsilon, 4.75272834, 1e-6 * 4.75272834);
  EXPECT_EQ(improved->order, 5.0);
}

TEST(ComputeEpsilonTest, NoSamplingIsFree) {
  EXPECT_THAT(ComputeEpsilon(0.0, 1.0, 1000, 1e-5, DefaultOrders(), Conversion::kImproved),
              IsOk());
  absl::StatusOr<EpsilonResult> r =
      ComputeEpsilon(0.0, 1.0, 1000, 1e-5, DefaultOrders(), Conversion::kImproved);
  EXPECT_EQ(r->epsilon, 0.0);
}

TEST(ComputeEpsilonTest, RejectsBadArgumentsNamingThem) {
  const std::vector<double> orders = DefaultOrders();
  const auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(ComputeEpsilon(1.5, 1.0, 1, 1e-5, orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("q ")));
  EXPECT_THAT(ComputeEpsilon(-0.1, 1.0, 1, 1e-5, orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("q ")));
  EXPECT_THAT(ComputeEpsilon(0.1, -1.0, 1, 1e-5, orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("noise_multiplier")));
  EXPECT_THAT(ComputeEpsilon(0.1, 1.0, 1, 0.0, orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("delta")));
  EXPECT_THAT(ComputeEpsilon(0.1, 1.0, 1, 1.0, orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("delta")));
  EXPECT_THAT(ComputeEpsilon(0.1, 1.0, 1, 1e-5, {}, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("orders")));
  const std::vector<double> bad_orders = {2.0, 1.0};
  EXPECT_THAT(ComputeEpsilon(0.1, 1.0, 1, 1e-5, bad_orders, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("orders")));
  EXPECT_THAT(ComputeRdp(0.1, 1.0, 1, 0.5), StatusIs(kBad, HasSubstr("orders")));
  EXPECT_THAT(ComputeRdp(0.1, 1.0, 1, kInf), StatusIs(kBad, HasSubstr("orders")));
  EXPECT_THAT(ComputeRdp(std::nan(""), 1.0, 1, 2.0), StatusIs(kBad, HasSubstr("q ")));
}

TEST(FindNoiseMultiplierTest, RoundTrips) {
  const std::vector<double> orders = DefaultOrders();
  for (Conversion conversion : {Conversion::kImproved, Conversion::kClassic}) {
    for (double target : {0.5, 1.0, 3.0, 8.0}) {
      absl::StatusOr<double> sigma =
          FindNoiseMultiplier(target, 1e-5, kMnistQ, kMnistSteps, conversion, orders);
      ASSERT_THAT(sigma, IsOk());
      absl::StatusOr<EpsilonResult> at =
          ComputeEpsilon(kMnistQ, *sigma, kMnistSteps, 1e-5, orders, conversion);
      absl::StatusOr<EpsilonResult> below =
          ComputeEpsilon(kMnistQ, *sigma * 0.99, kMnistSteps, 1e-5, orders, conversion);
      ASSERT_THAT(at, IsOk());
      ASSERT_THAT(below, IsOk());
      EXPECT_LE(at->epsilon, target) << "target " << target;
      EXPECT_GT(below->epsilon, target) << "target " << target;
    }
  }
}

TEST(FindNoiseMultiplierTest, TfPrivacyMnistInverse) {
  // The inverse of the tutorial setting: epsilon 3.01 (classic) needs sigma ~= 1.1.
  absl::StatusOr<double> sigma = FindNoiseMultiplier(
      3.01, 1e-5, kMnistQ, kMnistSteps, Conversion::kClassic, DefaultOrders());
  ASSERT_THAT(sigma, IsOk());
  EXPECT_NEAR(*sigma, 1.1, 0.01);
}

TEST(FindNoiseMultiplierTest, NoSamplingNeedsNoNoise) {
  EXPECT_THAT(FindNoiseMultiplier(1.0, 1e-5, 0.0, 100, Conversion::kImproved, DefaultOrders()),
              IsOkAndHolds(0.0));
}

TEST(FindNoiseMultiplierTest, RejectsUnreachableAndBadTargets) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  // With q = 1 and 10^9 steps, even sigma = 1e4 leaves epsilon far above 1e-6.
  EXPECT_THAT(
      FindNoiseMultiplier(1e-6, 1e-5, 1.0, 1000000000, Conversion::kImproved, DefaultOrders()),
      StatusIs(kBad, HasSubstr("unreachable")));
  EXPECT_THAT(FindNoiseMultiplier(0.0, 1e-5, 0.1, 10, Conversion::kImproved, DefaultOrders()),
              StatusIs(kBad, HasSubstr("target_epsilon")));
  EXPECT_THAT(FindNoiseMultiplier(1.0, 2.0, 0.1, 10, Conversion::kImproved, DefaultOrders()),
              StatusIs(kBad, HasSubstr("delta")));
  EXPECT_THAT(FindNoiseMultiplier(1.0, 1e-5, 0.1, 10, Conversion::kImproved, {}),
              StatusIs(kBad, HasSubstr("orders")));
}

}  // namespace
}  // namespace tessera::dp
