// The Poisson-subsampled Gaussian's privacy-loss distribution, discretized by "connect the
// dots" in each direction, and the accountant's queries (PldEpsilon, PldDelta,
// PldNoiseMultiplier) on its composition (discrete_pld.h).
#include "privacy/dp/pld_accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/discrete_pld.h"
#include "privacy/dp/noise_search.h"
#include "privacy/dp/rdp_accountant.h"

namespace tessera::dp {
namespace {

using internal::Composed;
using internal::Compose;
using internal::DeltaOf;
using internal::EpsilonOf;
using internal::Pld;

constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Direction {
  // P = (1-q) N(0, s^2) + q N(1, s^2), Q = N(0, s^2): the loss log(P/Q) is increasing in x.
  kRemove,
  // P = N(0, s^2), Q = (1-q) N(0, s^2) + q N(1, s^2): the loss is decreasing in x.
  kAdd,
};

// P(Z > z) and P(Z <= z) for a standard normal Z.
double NormalSf(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }
double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// The z > 0 with NormalSf(z) = tail (0 < tail < 1/2), by bisection.
double NormalUpperQuantile(double tail) {
  double lo = 0.0;
  double hi = 40.0;
  for (int i = 0; i < 200 && hi - lo > 1e-12; ++i) {
    const double mid = 0.5 * (lo + hi);
    (NormalSf(mid) > tail ? lo : hi) = mid;
  }
  return hi;
}

// log((1-q) + q exp(u)) without overflow or cancellation.
double LogMixture(double q, double u) {
  if (u > 0.0) return u + std::log(q + (1.0 - q) * std::exp(-u));
  const double change = q * std::expm1(u);  // in [-q, 0]
  if (change > -0.5) return std::log1p(change);
  // Near -1 (q close to 1, u very negative) log1p loses everything: add the two logs.
  const double a = std::log1p(-q);
  const double b = std::log(q) + u;
  const double hi = std::max(a, b);
  return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

// The privacy loss log(P(x)/Q(x)) at output x (sensitivity 1, noise s).
double PrivacyLoss(Direction d, double q, double s, double x) {
  const double u = (2.0 * x - 1.0) / (2.0 * s * s);
  const double l = LogMixture(q, u);
  return d == Direction::kRemove ? l : -l;
}

// The exact hockey-stick divergence delta(eps) = sup_S P(S) - e^eps Q(S) of one step.
//   remove: the optimal S is {x > x*}, x* = s^2 log((e^eps - (1-q)) / q) + 1/2, so
//     delta = q Sf((x* - 1)/s) + (1 - q) Sf(x*/s) - e^eps Sf(x*/s);
//     when e^eps <= 1 - q every x is in S and delta = 1 - e^eps.
//   add: the optimal S is {x < xa}, xa = s^2 log((e^-eps - (1-q)) / q) + 1/2, so
//     delta = Cdf(xa/s) - e^eps ((1-q) Cdf(xa/s) + q Cdf((xa - 1)/s));
//     when e^-eps <= 1 - q the set is empty and delta = 0.
double HockeyStick(Direction d, double q, double s, double eps) {
  if (d == Direction::kRemove) {
    const double a = std::expm1(eps) + q;  // e^eps - (1 - q)
    if (a <= 0.0) return -std::expm1(eps);
    const double x = s * s * std::log1p(std::expm1(eps) / q) + 0.5;
    const double delta = q * NormalSf((x - 1.0) / s) - a * NormalSf(x / s);
    return std::max(delta, 0.0);
  }
  const double a = std::expm1(-eps) + q;  // e^-eps - (1 - q)
  if (a <= 0.0) return 0.0;
  const double x = s * s * std::log1p(std::expm1(-eps) / q) + 0.5;
  const double e = std::exp(eps);
  // Cdf(x/s) (1 - (1-q) e^eps) - q e^eps Cdf((x-1)/s), with 1 - (1-q) e^eps = q e^eps - expm1(eps).
  const double delta =
      q * e * (NormalCdf(x / s) - NormalCdf((x - 1.0) / s)) - std::expm1(eps) * NormalCdf(x / s);
  return std::max(delta, 0.0);
}

// The connect-the-dots discretization of one step on the grid k*h, kmin <= k <= kmax: the
// discrete PLD whose delta(eps) equals the exact one at every knot and is linear in e^eps in
// between (and from (e^eps, delta) = (0, 1) to the first knot). With d_i = delta(l_i) and
// y_i = e^{l_i}, the slopes are s_i = (d_{i+1} - d_i) / (y_{i+1} - y_i), s_{-1} = (d_0 - 1)/y_0,
// s_n = 0, and the masses are w_i = y_i (s_i - s_{i-1}), w_inf = d_n; dividing through by y_i
// (y_{i+1} - y_i = y_i expm1(h)) keeps everything in range.
Pld ConnectTheDots(Direction d, double q, double s, int64_t kmin, int64_t kmax, double h) {
  const int64_t n = kmax - kmin;  // n + 1 knots
  std::vector<double> delta(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; ++i) {
    delta[static_cast<size_t>(i)] = HockeyStick(d, q, s, static_cast<double>(kmin + i) * h);
  }
  const double em1 = std::expm1(h);
  const double eh = std::exp(h);
  Pld pld;
  pld.h = h;
  pld.first_index = static_cast<double>(kmin);
  pld.mass.resize(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; ++i) {
    const size_t k = static_cast<size_t>(i);
    // y_i s_i and y_i s_{i-1}.
    const double right = i < n ? (delta[k + 1] - delta[k]) / em1 : 0.0;
    const double left = i > 0 ? eh * (delta[k] - delta[k - 1]) / em1 : delta[k] - 1.0;
    // Convexity makes this >= 0; clamp rounding noise.
    pld.mass[k] = std::max(right - left, 0.0);
  }
  pld.infinity_mass = delta.back();
  return pld;
}

// The smallest power of two f >= 1 such that `points` / f fits in kMaxPldGridPoints: the
// factor by which to widen the grid interval (the point count shrinks about as fast).
double CoarseningFactor(double points) {
  double f = 1.0;
  while (points / f > static_cast<double>(kMaxPldGridPoints) && f < 1e300) f *= 2.0;
  return f;
}

// The composed PLD of one direction, widening the grid interval until it fits.
Pld ComposedPld(Direction d, double q, double s, uint64_t steps, const PldOptions& options) {
  const double tail = options.tail_mass_truncation;
  const double z = NormalUpperQuantile(tail);
  // Outputs outside [-z s, 1 + z s] have mass <= tail under P in either direction.
  double l_lo = PrivacyLoss(d, q, s, d == Direction::kRemove ? -z * s : 1.0 + z * s);
  double l_hi = PrivacyLoss(d, q, s, d == Direction::kRemove ? 1.0 + z * s : -z * s);
  if (q < 1.0) {
    // The loss never leaves (log(1-q), inf) (remove) or (-inf, -log(1-q)) (add).
    if (d == Direction::kRemove) l_lo = std::max(l_lo, std::log1p(-q));
    if (d == Direction::kAdd) l_hi = std::min(l_hi, -std::log1p(-q));
  }
  Pld trivial;  // delta = 1: returned only if the loss range is not finite (never expected)
  trivial.h = options.value_discretization_interval;
  trivial.infinity_mass = 1.0;
  if (!std::isfinite(l_lo) || !std::isfinite(l_hi)) return trivial;
  double h = options.value_discretization_interval;
  h *= CoarseningFactor((l_hi - l_lo) / h + 3.0);
  // Each retry widens h by at least 2; a few suffice because the window width in grid points
  // shrinks like 1/h.
  for (int attempt = 0; attempt < 64; ++attempt) {
    const double kmin = std::floor(l_lo / h);
    const double kmax = std::max(std::ceil(l_hi / h), kmin + 1.0);
    const Pld one = ConnectTheDots(d, q, s, static_cast<int64_t>(kmin),
                                   static_cast<int64_t>(kmax), h);
    if (steps == 1) return one;
    Composed c = Compose(one, steps, tail, kMaxPldGridPoints);
    if (c.grid_width == 0.0) return std::move(c.pld);
    h *= std::max(2.0, CoarseningFactor(c.grid_width));
  }
  return trivial;
}

// Both directions; for q == 1 they have the same PLD (N(1/(2s^2), 1/s^2)), so one suffices.
std::vector<Direction> Directions(double q) {
  if (q == 1.0) return {Direction::kRemove};
  return {Direction::kRemove, Direction::kAdd};
}

absl::Status ValidateMechanism(double q, double noise_multiplier, const PldOptions& options) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("q must be in [0, 1], got ", q));
  }
  if (!(noise_multiplier > 0.0) || !std::isfinite(noise_multiplier)) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise_multiplier must be finite and > 0, got ", noise_multiplier));
  }
  const double h = options.value_discretization_interval;
  if (!(h > 0.0) || !std::isfinite(h)) {
    return absl::InvalidArgumentError(
        absl::StrCat("value_discretization_interval must be finite and > 0, got ", h));
  }
  const double tail = options.tail_mass_truncation;
  if (!(tail > 0.0 && tail <= 1e-3)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tail_mass_truncation must be in (0, 0.001], got ", tail));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> PldEpsilon(double q, double noise_multiplier, uint64_t steps, double delta,
                                  const PldOptions& options) {
  TESSERA_RETURN_IF_ERROR(ValidateMechanism(q, noise_multiplier, options));
  if (!(delta > 0.0 && delta < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  if (q == 0.0 || steps == 0) return 0.0;
  double epsilon = 0.0;
  for (Direction d : Directions(q)) {
    epsilon = std::max(
        epsilon, EpsilonOf(ComposedPld(d, q, noise_multiplier, steps, options), delta));
  }
  return epsilon;
}

absl::StatusOr<double> PldDelta(double q, double noise_multiplier, uint64_t steps, double epsilon,
                                const PldOptions& options) {
  TESSERA_RETURN_IF_ERROR(ValidateMechanism(q, noise_multiplier, options));
  if (!(epsilon >= 0.0) || !std::isfinite(epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon must be finite and >= 0, got ", epsilon));
  }
  if (q == 0.0 || steps == 0) return 0.0;
  double delta = 0.0;
  for (Direction d : Directions(q)) {
    delta = std::max(delta, DeltaOf(ComposedPld(d, q, noise_multiplier, steps, options), epsilon));
  }
  return delta;
}

absl::StatusOr<double> PldNoiseMultiplier(double target_epsilon, double delta, double q,
                                          uint64_t steps, const PldOptions& options) {
  if (!(target_epsilon > 0.0) || !std::isfinite(target_epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_epsilon must be finite and > 0, got ", target_epsilon));
  }
  // Validates every argument (sigma = 1 is a valid placeholder) without composing.
  if (absl::StatusOr<double> probe = PldEpsilon(q, 1.0, 0, delta, options); !probe.ok()) {
    return probe.status();
  }
  if (q == 0.0 || steps == 0) return 0.0;
  auto meets = [&](double sigma) -> absl::StatusOr<bool> {
    TESSERA_ASSIGN_OR_RETURN(double eps, PldEpsilon(q, sigma, steps, delta, options));
    return eps <= target_epsilon;
  };
  // Start from the RDP answer, which PLD almost always meets, so that the search never has to
  // evaluate tiny noise multipliers (whose loss grids are huge), and look below it from there.
  absl::StatusOr<double> rdp_sigma =
      FindNoiseMultiplier(target_epsilon, delta, q, steps, Conversion::kImproved,
                          DefaultOrders());
  return internal::SmallestNoiseMultiplier(
      meets, {.start = rdp_sigma.ok() ? std::min(*rdp_sigma, kMaxPldNoiseMultiplier) : 1.0,
              .max_sigma = kMaxPldNoiseMultiplier,
              .tolerance = kPldNoiseRelativeTolerance,
              .search_below = true,
              .unreachable = absl::StrCat("target_epsilon ", target_epsilon,
                                          " is unreachable with noise_multiplier <= ",
                                          kMaxPldNoiseMultiplier, " (delta=", delta, ", q=", q,
                                          ", steps=", steps, ")")});
}

}  // namespace tessera::dp
