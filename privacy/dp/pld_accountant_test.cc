#include "privacy/dp/pld_accountant.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/base/testing/status_matchers.h"
#include "privacy/dp/rdp_accountant.h"

namespace tessera::dp {
namespace {

using ::testing::AllOf;
using ::testing::DoubleNear;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Le;

double Phi(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

// Balle & Wang 2018 ("Improving the Gaussian mechanism for differential privacy", Thm. 8): the
// Gaussian mechanism with sensitivity 1 and noise s is (eps, delta)-DP exactly for
//   delta = Phi(1/(2s) - eps s) - e^eps Phi(-1/(2s) - eps s).
// T compositions of noise sigma are one Gaussian mechanism with s = sigma / sqrt(T).
double ExactGaussianDelta(double s, double eps) {
  return Phi(1.0 / (2.0 * s) - eps * s) - std::exp(eps) * Phi(-1.0 / (2.0 * s) - eps * s);
}

// The exact epsilon for a delta, by bisection on the formula above (delta is decreasing in eps).
double ExactGaussianEpsilon(double s, double delta) {
  double lo = 0.0;
  double hi = 1000.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (ExactGaussianDelta(s, mid) > delta ? lo : hi) = mid;
  }
  return hi;
}

double RdpEpsilon(double q, double sigma, uint64_t steps, double delta) {
  absl::StatusOr<EpsilonResult> r =
      ComputeEpsilon(q, sigma, steps, delta, DefaultOrders(), Conversion::kImproved);
  EXPECT_THAT(r, IsOk());
  return r.ok() ? r->epsilon : 0.0;
}

TEST(PldAccountantTest, SpecialCases) {
  EXPECT_THAT(PldEpsilon(0.0, 1.0, 100, 1e-5), IsOkAndHolds(0.0));
  EXPECT_THAT(PldEpsilon(0.5, 1.0, 0, 1e-5), IsOkAndHolds(0.0));
  EXPECT_THAT(PldDelta(0.0, 1.0, 100, 0.5), IsOkAndHolds(0.0));
  EXPECT_THAT(PldDelta(0.5, 1.0, 0, 0.0), IsOkAndHolds(0.0));
}

// q = 1: T steps of the Gaussian mechanism are exactly the Gaussian mechanism with noise
// sigma / sqrt(T); the PLD bound must lie on or above the exact curve, and close to it (0.1%;
// the brief for this accountant allowed 1-2%).
TEST(PldAccountantTest, UnsampledGaussianMatchesBalleWang) {
  const struct {
    double sigma;
    uint64_t steps;
    double eps;
  } kCases[] = {{1.1, 1, 1.0}, {1.1, 1, 3.0}, {2.0, 10, 1.0}, {2.0, 10, 4.0},
                {5.0, 100, 2.0}, {0.8, 4, 2.0}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(testing::Message() << "sigma=" << c.sigma << " steps=" << c.steps
                                    << " eps=" << c.eps);
    const double s = c.sigma / std::sqrt(static_cast<double>(c.steps));
    const double exact_delta = ExactGaussianDelta(s, c.eps);
    ASSERT_GT(exact_delta, 1e-9);
    EXPECT_THAT(PldDelta(1.0, c.sigma, c.steps, c.eps),
                IsOkAndHolds(AllOf(Ge(exact_delta), Le(exact_delta * 1.001))));
    // And the inverse: the epsilon for that delta is at least the exact one, within 0.1%.
    const double exact_eps = ExactGaussianEpsilon(s, exact_delta);
    ASSERT_NEAR(exact_eps, c.eps, 1e-9);
    EXPECT_THAT(PldEpsilon(1.0, c.sigma, c.steps, exact_delta),
                IsOkAndHolds(AllOf(Ge(exact_eps - 1e-9), Le(exact_eps * 1.001))));
  }
}

// A composed loss range too wide for kMaxPldGridPoints at the default interval (mean 500,
// standard deviation about 32) forces a coarser grid: still above the exact epsilon, and close.
TEST(PldAccountantTest, CoarsenedGridIsStillAnUpperBound) {
  const double s = 1.0 / std::sqrt(1000.0);
  const double exact_eps = ExactGaussianEpsilon(s, 1e-5);
  ASSERT_NEAR(exact_eps, 633.93, 0.01);
  EXPECT_THAT(PldEpsilon(1.0, 1.0, 1000, 1e-5),
              IsOkAndHolds(AllOf(Ge(exact_eps - 1e-9), Le(exact_eps + 0.01))));
}

// dp_accounting, python/dp_accounting/dp_accounting/pld/pld_privacy_accountant_test.py
// (google/differential-privacy), test_gaussian_basic: GaussianDpEvent(sqrt(3)) composed 3
// times, exact epsilon 1 <-> delta 0.126936, checked there to 1e-3.
TEST(PldAccountantTest, MatchesDpAccountingGaussianBasic) {
  EXPECT_THAT(PldDelta(1.0, std::sqrt(3.0), 3, 1.0),
              IsOkAndHolds(AllOf(Ge(0.126936 - 1e-6), Le(0.126936 + 1e-3))));
  EXPECT_THAT(PldEpsilon(1.0, std::sqrt(3.0), 3, 0.126936),
              IsOkAndHolds(DoubleNear(1.0, 1e-3)));
}

// The same file, test_poisson_subsampled_gaussian: PoissonSampledDpEvent(0.2,
// GaussianDpEvent(0.5)) composed 3 times, add-or-remove adjacency: epsilon 1 <-> delta 0.15594,
// checked there to 1e-3.
TEST(PldAccountantTest, MatchesDpAccountingPoissonSubsampledGaussian) {
  EXPECT_THAT(PldDelta(0.2, 0.5, 3, 1.0), IsOkAndHolds(DoubleNear(0.15594, 1e-3)));
  EXPECT_THAT(PldEpsilon(0.2, 0.5, 3, 0.15594), IsOkAndHolds(DoubleNear(1.0, 1e-2)));
}

// Opacus, opacus/tests/accountants_test.py (pytorch/opacus), test_prv_accountant: sigma 1.5,
// sample rate 0.04, steps int(90 // 0.04) = 2249, delta 1e-5 -> 6.777395712150674. That is
// Opacus' PRVAccountant.get_epsilon, i.e. the PRV (Gopi et al. 2021) upper bound
// eps_estimate + eps_error with eps_error = 0.01 (opacus/accountants/prv.py), so the true
// epsilon lies within [6.7774 - 0.02, 6.7774]. The RDP accountant gives 7.33 for 2250 steps in
// the same file (test_rdp_accountant: 7.32911117143).
TEST(PldAccountantTest, MatchesOpacusPrvAccountant) {
  constexpr double kOpacusPrvUpper = 6.777395712150674;
  absl::StatusOr<double> eps = PldEpsilon(0.04, 1.5, 2249, 1e-5);
  ASSERT_THAT(eps, IsOk());
  EXPECT_GE(*eps, kOpacusPrvUpper - 0.02);
  EXPECT_LE(*eps, kOpacusPrvUpper);
  EXPECT_LT(*eps, RdpEpsilon(0.04, 1.5, 2249, 1e-5));
}

// Tighter than RDP (and still a real bound) for typical DP-SGD settings.
TEST(PldAccountantTest, NoLargerThanRdp) {
  const struct {
    double q;
    double sigma;
    uint64_t steps;
    double delta;
  } kCases[] = {{0.01, 1.1, 10000, 1e-5},
                {256.0 / 60000.0, 1.1, 60 * 234, 1e-5},
                {5e-3, 0.8, 1000, 1e-6},
                {0.1, 2.0, 100, 1e-5}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(testing::Message() << "q=" << c.q << " sigma=" << c.sigma
                                    << " steps=" << c.steps);
    const double rdp = RdpEpsilon(c.q, c.sigma, c.steps, c.delta);
    absl::StatusOr<double> pld = PldEpsilon(c.q, c.sigma, c.steps, c.delta);
    ASSERT_THAT(pld, IsOk());
    EXPECT_GT(*pld, 0.0);
    EXPECT_LT(*pld, rdp);
  }
}

TEST(PldAccountantTest, DeltaAndEpsilonAreInverse) {
  absl::StatusOr<double> eps = PldEpsilon(0.01, 1.1, 1000, 1e-5);
  ASSERT_THAT(eps, IsOk());
  absl::StatusOr<double> delta = PldDelta(0.01, 1.1, 1000, *eps);
  ASSERT_THAT(delta, IsOk());
  EXPECT_NEAR(*delta / 1e-5, 1.0, 1e-6);
}

TEST(PldAccountantTest, Monotone) {
  const double base = *PldEpsilon(0.01, 1.1, 1000, 1e-5);
  EXPECT_GT(*PldEpsilon(0.01, 1.1, 2000, 1e-5), base);  // more steps
  EXPECT_GT(*PldEpsilon(0.02, 1.1, 1000, 1e-5), base);  // larger q
  EXPECT_LT(*PldEpsilon(0.01, 1.3, 1000, 1e-5), base);  // more noise
  EXPECT_LT(*PldEpsilon(0.01, 1.1, 1000, 1e-4), base);  // larger delta
  EXPECT_GT(*PldDelta(0.01, 1.1, 1000, 0.5), *PldDelta(0.01, 1.1, 1000, 1.0));
}

TEST(PldAccountantTest, ArgumentErrorsNameTheArgument) {
  EXPECT_THAT(PldEpsilon(-0.1, 1.0, 10, 1e-5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("q must be in [0, 1]")));
  EXPECT_THAT(PldEpsilon(1.5, 1.0, 10, 1e-5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("q must be in [0, 1]")));
  EXPECT_THAT(PldEpsilon(0.1, 0.0, 10, 1e-5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise_multiplier")));
  EXPECT_THAT(PldEpsilon(0.1, std::numeric_limits<double>::infinity(), 10, 1e-5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise_multiplier")));
  EXPECT_THAT(PldEpsilon(0.1, std::nan(""), 10, 1e-5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("noise_multiplier")));
  EXPECT_THAT(PldEpsilon(0.1, 1.0, 10, 0.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
  EXPECT_THAT(PldEpsilon(0.1, 1.0, 10, 1.0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta")));
  EXPECT_THAT(PldDelta(0.1, 1.0, 10, -0.5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epsilon")));
  PldOptions zero_interval;
  zero_interval.value_discretization_interval = 0.0;
  EXPECT_THAT(PldEpsilon(0.1, 1.0, 10, 1e-5, zero_interval),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("value_discretization_interval")));
  PldOptions big_tail;
  big_tail.tail_mass_truncation = 0.5;
  EXPECT_THAT(PldEpsilon(0.1, 1.0, 10, 1e-5, big_tail),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tail_mass_truncation")));
  EXPECT_THAT(PldNoiseMultiplier(0.0, 1e-5, 0.1, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target_epsilon")));
}

// The noise search meets its target, is within its tolerance of the boundary, and needs less
// noise than RDP's search for the same target.
TEST(PldNoiseMultiplierTest, MeetsTargetAndBeatsRdp) {
  absl::StatusOr<double> sigma = PldNoiseMultiplier(2.0, 1e-5, 0.01, 1000);
  ASSERT_THAT(sigma, IsOk());
  EXPECT_LE(*PldEpsilon(0.01, *sigma, 1000, 1e-5), 2.0);
  EXPECT_GT(*PldEpsilon(0.01, *sigma * (1 - 2 * kPldNoiseRelativeTolerance), 1000, 1e-5), 2.0);
  absl::StatusOr<double> rdp_sigma =
      FindNoiseMultiplier(2.0, 1e-5, 0.01, 1000, Conversion::kImproved, DefaultOrders());
  ASSERT_THAT(rdp_sigma, IsOk());
  EXPECT_LT(*sigma, *rdp_sigma);
  EXPECT_THAT(PldNoiseMultiplier(2.0, 1e-5, 0.0, 1000), IsOkAndHolds(0.0));
}

}  // namespace
}  // namespace tessera::dp
