#include "privacy/dp/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"

namespace tessera::dp {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
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

// The per-step curve times the steps, converted by EpsilonFromRdp, reproduces ComputeEpsilon
// (and so the published values above): the ledger path and the one-shot path agree.
TEST(EpsilonFromRdpTest, ReproducesPublishedValuesFromPerStepCurves) {
  const struct {
    double q, z;
    uint64_t steps;
    std::vector<double> orders;
    Conversion conversion;
    double published, tolerance;  // the published epsilon and its precision
  } kCases[] = {
      {0.01, 4.0, 10000, IntegerOrders(2, 64), Conversion::kClassic, 1.26, 0.01},
      {kMnistQ, 1.1, kMnistSteps, DefaultOrders(), Conversion::kClassic, 3.01, 0.01},
      {1.0, 1.0, 1, IntegerOrders(2, 64), Conversion::kClassic, 5.30258509, 1e-6},
      {1.0, 1.0, 1, IntegerOrders(2, 64), Conversion::kImproved, 4.75272834, 1e-6},
  };
  for (const auto& c : kCases) {
    absl::StatusOr<std::vector<double>> curve = SampledGaussianRdp(c.q, c.z, c.orders);
    ASSERT_THAT(curve, IsOk());
    for (double& r : *curve) r *= static_cast<double>(c.steps);
    absl::StatusOr<EpsilonResult> ledger = EpsilonFromRdp(c.orders, *curve, 1e-5, c.conversion);
    absl::StatusOr<EpsilonResult> direct =
        ComputeEpsilon(c.q, c.z, c.steps, 1e-5, c.orders, c.conversion);
    ASSERT_THAT(ledger, IsOk());
    ASSERT_THAT(direct, IsOk());
    EXPECT_DOUBLE_EQ(ledger->epsilon, direct->epsilon) << "published " << c.published;
    EXPECT_EQ(ledger->order, direct->order);
    EXPECT_NEAR(ledger->epsilon, c.published, c.tolerance);
  }
}

TEST(EpsilonFromRdpTest, SkipsInfiniteOrders) {
  const std::vector<double> orders = {2.0, 3.0, 4.0};
  absl::StatusOr<EpsilonResult> r =
      EpsilonFromRdp(orders, std::vector<double>{kInf, 1.0, kInf}, 1e-5, Conversion::kClassic);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->order, 3.0);
  EXPECT_DOUBLE_EQ(r->epsilon, 1.0 - std::log(1e-5) / 2.0);
  r = EpsilonFromRdp(orders, std::vector<double>(3, kInf), 1e-5, Conversion::kImproved);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->epsilon, kInf);
}

TEST(EpsilonFromRdpTest, RejectsBadArgumentsNamingThem) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  const std::vector<double> orders = {2.0, 3.0};
  const auto eps = [&](std::vector<double> rdp, double delta) {
    return EpsilonFromRdp(orders, rdp, delta, Conversion::kImproved);
  };
  EXPECT_THAT(eps({1.0}, 1e-5), StatusIs(kBad, HasSubstr("rdp")));
  EXPECT_THAT(eps({1.0, -0.5}, 1e-5), StatusIs(kBad, HasSubstr("rdp")));
  EXPECT_THAT(eps({1.0, kNaN}, 1e-5), StatusIs(kBad, HasSubstr("rdp")));
  EXPECT_THAT(eps({1.0, 1.0}, 0.0), StatusIs(kBad, HasSubstr("delta")));
  EXPECT_THAT(EpsilonFromRdp({}, {}, 1e-5, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("orders")));
  const std::vector<double> bad_orders = {2.0, 1.0};
  EXPECT_THAT(EpsilonFromRdp(bad_orders, orders, 1e-5, Conversion::kImproved),
              StatusIs(kBad, HasSubstr("orders")));
  EXPECT_THAT(SampledGaussianRdp(2.0, 1.0, {}), StatusIs(kBad, HasSubstr("q ")));
  EXPECT_THAT(SampledGaussianRdp(0.1, -1.0, orders),
              StatusIs(kBad, HasSubstr("noise_multiplier")));
  EXPECT_THAT(SampledGaussianRdp(0.1, 1.0, bad_orders), StatusIs(kBad, HasSubstr("orders")));
}

constexpr double kDelta2 = 1000.0;  // L2 sensitivity in the integer domain
constexpr uint64_t kDim = uint64_t{1} << 20;

double DdgRho(double sigma2, uint32_t n, double delta2 = kDelta2) {
  absl::StatusOr<double> rho = DistributedDiscreteGaussianRho(delta2, sigma2, n, kDim);
  EXPECT_THAT(rho, IsOk());
  return rho.ok() ? *rho : kNaN;
}

// For large sigma2 the tau term underflows and the sum of n discrete Gaussians is accounted
// exactly as one continuous Gaussian of variance n sigma2 (noise multiplier sqrt(n s2)/D).
TEST(DistributedDiscreteGaussianRhoTest, LargeSigmaMatchesContinuousGaussian) {
  for (uint32_t n : {1u, 100u, 10000u}) {
    const double z = std::sqrt(n * 100.0) / kDelta2;
    const double rho = DdgRho(100.0, n);
    for (double order : {1.5, 2.0, 32.0, 1024.0}) {
      EXPECT_THAT(ComputeRdp(1.0, z, 1, order),
                  IsOkAndHolds(DoubleNear(order * rho, 1e-9 * order * rho)))
          << "n " << n << " order " << order;
    }
  }
}

TEST(DistributedDiscreteGaussianRhoTest, TauPenaltyAndMonotone) {
  // One client: tau = 0, the single discrete Gaussian's D^2/(2 s2) even at sigma = 1/2.
  EXPECT_DOUBLE_EQ(DdgRho(0.25, 1), kDelta2 * kDelta2 / 0.5);
  // With several clients and small sigma, tau > 0 costs strictly more than the Gaussian.
  for (double sigma2 : {0.25, 1.0, 2.0}) {
    EXPECT_GT(DdgRho(sigma2, 10), kDelta2 * kDelta2 / (2.0 * 10 * sigma2)) << sigma2;
  }
  double previous = kInf;
  for (double sigma2 = 0.25; sigma2 <= 64.0; sigma2 *= 1.5) {
    const double rho = DdgRho(sigma2, 1000);
    EXPECT_LT(rho, previous) << "sigma2 " << sigma2;
    previous = rho;
  }
  previous = kInf;
  // The tail of tau's sum is bounded in blocks, so n = 2^32 - 1 costs no more than n = 2^16.
  for (uint32_t n : {1u, 2u, 10u, 1000u, 100000u, 4294967295u}) {
    const double rho = DdgRho(16.0, n);
    EXPECT_LT(rho, previous) << "n " << n;
    previous = rho;
  }
  previous = 0.0;
  for (double delta2 : {1.0, 10.0, 1000.0, 1e6}) {
    const double rho = DdgRho(1.0, 100, delta2);
    EXPECT_GT(rho, previous) << "delta2 " << delta2;
    previous = rho;
  }
}

TEST(DistributedDiscreteGaussianRhoTest, CohortRangeTakesTauAtTheLargestCohort) {
  // Kairouz, Liu, Steinke 2021, Thm. 1 written out here: with n in [2, 50] survivors, the
  // variance term at n = 2 and tau = 10 sum_{k=1}^{49} exp(-2 pi^2 s2 k/(k+1)) at n = 50.
  const double d2 = 100, s2 = 1;
  const uint64_t dim = 1024;
  double tau = 0;
  for (int k = 1; k <= 49; ++k) tau += 10 * std::exp(-2 * std::numbers::pi * std::numbers::pi * s2 * k / (k + 1.0));
  const double g = d2 * d2 / (2 * s2);
  const double lin = std::sqrt(g) + tau * std::sqrt(double{dim});
  const double expected = 0.5 * std::min(g + 2 * tau * dim, lin * lin);
  absl::StatusOr<double> rho = DistributedDiscreteGaussianRho(d2, s2, 2, 50, dim);
  ASSERT_THAT(rho, IsOk());
  EXPECT_NEAR(*rho, expected, 1e-12 * expected);
  // Strictly more than tau at the smallest cohort, and a bound for every cohort in range.
  EXPECT_GT(*rho, *DistributedDiscreteGaussianRho(d2, s2, 2, dim));
  for (uint32_t n = 2; n <= 50; ++n) {
    EXPECT_GE(*rho, *DistributedDiscreteGaussianRho(d2, s2, n, dim)) << n;
  }
  EXPECT_THAT(DistributedDiscreteGaussianRho(d2, s2, 5, 4, dim),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_clients")));
}

TEST(DistributedDiscreteGaussianTest, RejectsBadArgumentsNamingThem) {
  const auto kBad = absl::StatusCode::kInvalidArgument;
  for (double bad : {0.0, -1.0, kInf, kNaN}) {
    EXPECT_THAT(DistributedDiscreteGaussianRho(bad, 1.0, 10, 10),
                StatusIs(kBad, HasSubstr("l2_sensitivity")));
  }
  for (double bad : {0.0, 0.2, -1.0, kInf, kNaN}) {
    EXPECT_THAT(DistributedDiscreteGaussianRho(1.0, bad, 10, 10),
                StatusIs(kBad, HasSubstr("sigma2_per_client")));
  }
  EXPECT_THAT(DistributedDiscreteGaussianRho(1.0, 1.0, 0, 10),
              StatusIs(kBad, HasSubstr("num_clients")));
  EXPECT_THAT(DistributedDiscreteGaussianRho(1.0, 1.0, 10, 0), StatusIs(kBad, HasSubstr("dim")));
  const std::vector<double> orders = {2.0};
  for (double bad : {-0.1, 1.5, kNaN}) {
    EXPECT_THAT(DistributedDiscreteGaussianRdp(bad, 1.0, orders), StatusIs(kBad, HasSubstr("q ")));
  }
  for (double bad : {-1.0, kInf, kNaN}) {
    EXPECT_THAT(DistributedDiscreteGaussianRdp(0.1, bad, orders), StatusIs(kBad, HasSubstr("rho")));
  }
  EXPECT_THAT(DistributedDiscreteGaussianRdp(0.1, 1.0, std::vector<double>{1.0}),
              StatusIs(kBad, HasSubstr("orders")));
}

// Zhu & Wang's general bound applied to a Gaussian (rho = 1/(2 z^2)) is the exact sampled-
// Gaussian sum with the terms l >= 3 tripled, so exact <= bound <= exact + log(3)/(alpha - 1),
// equality at alpha = 2. At q = 0.01, z = 1 the bound is within a factor 2.5 (2.31 at worst).
TEST(DistributedDiscreteGaussianRdpTest, BracketsExactSampledGaussian) {
  std::vector<double> orders = IntegerOrders(2, 64);
  orders.insert(orders.end(), {128.0, 256.0, 512.0, 1024.0});
  for (double q : {0.001, 0.01, 0.1, 0.5}) {
    for (double z : {0.5, 1.0, 2.0, 5.0}) {
      absl::StatusOr<std::vector<double>> bound =
          DistributedDiscreteGaussianRdp(q, 1.0 / (2.0 * z * z), orders);
      absl::StatusOr<std::vector<double>> exact = SampledGaussianRdp(q, z, orders);
      ASSERT_THAT(bound, IsOk());
      ASSERT_THAT(exact, IsOk());
      for (size_t i = 0; i < orders.size(); ++i) {
        const double a = orders[i];
        const double e = (*exact)[i];
        const double b = (*bound)[i];
        SCOPED_TRACE(testing::Message() << "q " << q << " z " << z << " order " << a);
        // The sums are added in different orders: 1e-9 relative rounding is allowed.
        EXPECT_GE(b, e * (1 - 1e-9));
        EXPECT_LE(b, e + std::log(3.0) / (a - 1.0) + 1e-12);
        EXPECT_LE(b, a == 2.0 ? e * (1 + 1e-9) : (q == 0.01 && z == 1.0 ? 2.5 * e : kInf));
      }
    }
  }
}

// q = 0 is free, q = 1 is the unsampled alpha * rho, and in between the bound grows with q.
TEST(DistributedDiscreteGaussianRdpTest, EdgeCasesAndMonotoneInQ) {
  const std::vector<double> orders = DefaultOrders();
  const double rho = 0.3;
  std::vector<double> previous(orders.size(), 0.0);
  for (double q : {0.0, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0}) {
    absl::StatusOr<std::vector<double>> rdp = DistributedDiscreteGaussianRdp(q, rho, orders);
    ASSERT_THAT(rdp, IsOk());
    for (size_t i = 0; i < orders.size(); ++i) {
      // Pinned to 0 at q = 0 and to alpha * rho at q = 1; finite and non-decreasing in q.
      const double unsampled = orders[i] * rho;
      EXPECT_GE((*rdp)[i], q == 1.0 ? unsampled : previous[i]) << "q " << q << " " << orders[i];
      EXPECT_LE((*rdp)[i], q == 0.0 ? 0.0 : unsampled) << "q " << q << " order " << orders[i];
    }
    previous = *rdp;
  }
}

TEST(DistributedDiscreteGaussianRdpTest, ByHandAndFractionalOrders) {
  // Order 3: log((1-q)^2 (1+2q) + 3 q^2 (1-q) e^{2 rho} + 3 q^3 e^{6 rho}) / 2, q = rho = 1/2.
  const double by_hand = std::log(0.5 + 0.375 * std::exp(1.0) + 0.375 * std::exp(3.0)) / 2.0;
  EXPECT_THAT(DistributedDiscreteGaussianRdp(0.5, 0.5, std::vector<double>{3.0}),
              IsOkAndHolds(ElementsAre(DoubleNear(by_hand, 1e-12))));
  // A fractional order takes the bound at its ceiling.
  const std::vector<double> orders = {1.5, 2.0, 2.5, 3.0};
  absl::StatusOr<std::vector<double>> rdp = DistributedDiscreteGaussianRdp(0.01, 0.5, orders);
  ASSERT_THAT(rdp, IsOk());
  EXPECT_THAT(*rdp, ElementsAre((*rdp)[1], (*rdp)[1], (*rdp)[3], (*rdp)[3]));
  // Still an upper bound on the exact Gaussian (rho = 0.5 is z = 1) at the fractional order.
  absl::StatusOr<std::vector<double>> exact = SampledGaussianRdp(0.01, 1.0, orders);
  ASSERT_THAT(exact, IsOk());
  for (size_t i = 0; i < orders.size(); ++i) EXPECT_GE((*rdp)[i], (*exact)[i] * (1 - 1e-9));
  // Capped by the unsampled alpha * rho where that is smaller.
  EXPECT_THAT(DistributedDiscreteGaussianRdp(0.9, 100.0, std::vector<double>{1.5}),
              IsOkAndHolds(ElementsAre(150.0)));
}

}  // namespace
}  // namespace tessera::dp
