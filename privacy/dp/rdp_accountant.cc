#include "privacy/dp/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/log_math.h"
#include "core/base/status_macros.h"
#include "privacy/dp/noise_search.h"

namespace tessera::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The fractional series stops once both new terms are below exp(-30) (as TF Privacy does).
constexpr double kSeriesCutoff = -30.0;
constexpr int kMaxSeriesTerms = 1000000;

// log(exp(a) - exp(b)); NaN when the difference would be negative (numerical failure).
double LogSub(double a, double b) {
  if (a < b) return kNaN;
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  const double d = a - b;
  // For large d, expm1(d) overflows but log(expm1(d)) ~= d.
  if (d > 700.0) return a;
  return std::log(std::expm1(d)) + b;
}

// log(erfc(x)), accurate where erfc(x) underflows: for large x use the asymptotic series
//   log erfc(x) ~ -x^2 - log(x) - log(pi)/2 - 1/(2x^2) + 5/(8x^4) - 37/(24x^6) + 353/(64x^8).
double LogErfc(double x) {
  if (x < 25.0) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -x2 - std::log(x) - 0.5 * std::log(std::numbers::pi) - 0.5 / x2 + 0.625 / (x2 * x2) -
         37.0 / 24.0 / (x2 * x2 * x2) + 353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

// log(A_alpha) for integer alpha and 0 < q < 1 (Mironov et al. 2019, Sec. 3.3):
//   A_alpha = sum_{i=0}^{alpha} C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)).
double LogAInt(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_var = 2.0 * sigma * sigma;
  double log_a = -kInf;
  const auto n = static_cast<uint64_t>(alpha);
  for (uint64_t k = 0; k <= n; ++k) {
    const double i = static_cast<double>(k);
    const double term =
        LogBinomial(n, k) + i * log_q + (alpha - i) * log_1mq + (i * i - i) / two_var;
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

// log(A_alpha) for fractional alpha and 0 < q < 1: A_alpha split at
// z0 = sigma^2 log(1/q - 1) + 1/2 into two convergent series of generalised binomial terms
// (Mironov et al. 2019, Sec. 3.3), as in TF Privacy's _compute_log_a_frac. NaN on failure.
double LogAFrac(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_var = 2.0 * sigma * sigma;
  const double z0 = sigma * sigma * std::log(1.0 / q - 1.0) + 0.5;
  const double erfc_scale = std::sqrt(2.0) * sigma;
  const double log_half = std::log(0.5);
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  // |C(alpha, i)| in log space and its sign, updated by C(a, i+1) = C(a, i) (a - i) / (i + 1).
  double log_coef = 0.0;
  bool coef_positive = true;
  for (int k = 0; k < kMaxSeriesTerms; ++k) {
    const double i = static_cast<double>(k);
    const double j = alpha - i;
    const double log_t0 = log_coef + i * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + i * log_1mq;
    const double log_e0 = log_half + LogErfc((i - z0) / erfc_scale);
    const double log_e1 = log_half + LogErfc((z0 - j) / erfc_scale);
    const double log_s0 = log_t0 + (i * i - i) / two_var + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
    if (coef_positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::isnan(log_a0) || std::isnan(log_a1)) return kNaN;
    if (std::max(log_s0, log_s1) < kSeriesCutoff) return LogAdd(log_a0, log_a1);
    log_coef += std::log(std::abs(alpha - i)) - std::log(i + 1.0);
    if (alpha - i < 0) coef_positive = !coef_positive;
  }
  return kNaN;
}

absl::Status ValidateMechanism(double q, double noise_multiplier) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("q must be in [0, 1], got ", q));
  }
  if (!(noise_multiplier >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise_multiplier must be >= 0, got ", noise_multiplier));
  }
  return absl::OkStatus();
}

absl::Status ValidateOrder(double order) {
  if (!(order > 1.0) || !std::isfinite(order)) {
    return absl::InvalidArgumentError(
        absl::StrCat("orders must be finite and > 1, got ", order));
  }
  return absl::OkStatus();
}

absl::Status ValidateOrders(absl::Span<const double> orders) {
  if (orders.empty()) return absl::InvalidArgumentError("orders must not be empty");
  for (double order : orders) TESSERA_RETURN_IF_ERROR(ValidateOrder(order));
  return absl::OkStatus();
}

absl::Status ValidateDelta(double delta) {
  if (!(delta > 0.0 && delta < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  return absl::OkStatus();
}

// RDP of one step; arguments already validated.
absl::StatusOr<double> RdpOneStep(double q, double sigma, double order) {
  if (q == 0.0) return 0.0;
  if (sigma == 0.0) return kInf;
  if (q == 1.0) return order / (2.0 * sigma * sigma);
  const double log_a = std::floor(order) == order ? LogAInt(q, sigma, order)
                                                   : LogAFrac(q, sigma, order);
  if (std::isnan(log_a)) {
    return absl::InternalError(absl::StrCat("RDP series did not converge at order ", order,
                                            " (q=", q, ", noise_multiplier=", sigma, ")"));
  }
  // log(A_alpha) >= 0 mathematically; clamp rounding noise.
  return std::max(0.0, log_a) / (order - 1.0);
}

// (epsilon, delta) from RDP value `rdp` at `order`.
double EpsilonAtOrder(double rdp, double order, double delta, Conversion conversion) {
  if (std::isinf(rdp)) return kInf;
  if (conversion == Conversion::kClassic) return rdp - std::log(delta) / (order - 1.0);
  // dp_accounting's _compute_epsilon: when delta^2 > 1 - exp(-rdp), the KL bound
  // delta <= sqrt(1 - exp(-KL)) already gives epsilon = 0.
  if (delta * delta + std::expm1(-rdp) > 0.0) return 0.0;
  // The improved bound is numerically unstable as alpha -> 1 (dp_accounting's cut-off).
  if (order <= 1.01) return kInf;
  const double eps =
      rdp + std::log1p(-1.0 / order) - (std::log(delta) + std::log(order)) / (order - 1.0);
  return std::max(0.0, eps);
}

// Exact terms of Kairouz et al.'s tau before the tail is bounded in blocks (see DdgTau).
constexpr uint64_t kTauExactTerms = uint64_t{1} << 16;

// tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma2 k/(k+1)) (Kairouz, Liu, Steinke 2021, Thm. 1).
// The terms fall with k, so past kTauExactTerms each block [k, 2k) is charged its first term:
// an over-estimate (the safe side) by a factor below exp(2 pi^2 sigma2 / 2^17) on the tail,
// which turns num_clients = 2^32 into 16 blocks instead of 4 billion exp() calls.
double DdgTau(double sigma2, uint32_t num_clients) {
  const double c = 2.0 * std::numbers::pi * std::numbers::pi * sigma2;
  auto term = [c](uint64_t k) {
    const auto kd = static_cast<double>(k);
    return std::exp(-c * kd / (kd + 1.0));
  };
  const uint64_t last = num_clients - 1;  // k runs over 1..n-1
  double sum = 0.0;
  uint64_t k = 1;
  for (; k <= last && k < kTauExactTerms; ++k) sum += term(k);
  while (k <= last) {
    const uint64_t block_end = std::min(last, 2 * k - 1);
    sum += static_cast<double>(block_end - k + 1) * term(k);
    k = block_end + 1;
  }
  return 10.0 * sum;
}

// log of the sum in Zhu & Wang 2019's general upper bound ("Poisson Subsampled Rényi DP", ICML,
// Thm. 5) for a Poisson-subsampled mechanism with RDP eps(l) = l * rho, integer alpha >= 2 and
// 0 < q < 1, in log-sum-exp form so that alpha = 1024 neither overflows nor underflows:
//   (1-q)^(alpha-1) (alpha q - q + 1) + C(alpha,2) q^2 (1-q)^(alpha-2) e^{eps(2)}
//     + 3 sum_{l=3..alpha} C(alpha,l) q^l (1-q)^(alpha-l) e^{(l-1) eps(l)}.
// Without the factor 3 this is exactly Mironov et al.'s A_alpha when rho = 1/(2 sigma^2); the 3
// is the price of knowing nothing about the mechanism beyond its RDP curve.
double LogZhuWangSum(double q, double rho, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double log_3 = std::log(3.0);
  double log_sum = (alpha - 1.0) * log_1mq + std::log1p((alpha - 1.0) * q);
  const auto n = static_cast<uint64_t>(alpha);
  for (uint64_t k = 2; k <= n; ++k) {
    const auto l = static_cast<double>(k);
    const double term = LogBinomial(n, k) + l * log_q + (alpha - l) * log_1mq +
                        (l - 1.0) * l * rho + (k >= 3 ? log_3 : 0.0);
    log_sum = LogAdd(log_sum, term);
  }
  return log_sum;
}

}  // namespace

std::vector<double> DefaultOrders() {
  std::vector<double> orders;
  orders.reserve(156);
  for (int x = 1; x <= 99; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 11; a <= 63; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0, 1024.0}) orders.push_back(a);
  return orders;
}

absl::StatusOr<double> ComputeRdp(double q, double noise_multiplier, uint64_t steps,
                                  double order) {
  if (absl::Status s = ValidateMechanism(q, noise_multiplier); !s.ok()) return s;
  if (absl::Status s = ValidateOrder(order); !s.ok()) return s;
  if (steps == 0) return 0.0;
  absl::StatusOr<double> one = RdpOneStep(q, noise_multiplier, order);
  if (!one.ok()) return one.status();
  return *one * static_cast<double>(steps);
}

absl::StatusOr<EpsilonResult> ComputeEpsilon(double q, double noise_multiplier, uint64_t steps,
                                             double delta, absl::Span<const double> orders,
                                             Conversion conversion) {
  TESSERA_RETURN_IF_ERROR(ValidateMechanism(q, noise_multiplier));
  TESSERA_RETURN_IF_ERROR(ValidateDelta(delta));
  TESSERA_RETURN_IF_ERROR(ValidateOrders(orders));
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double order : orders) {
    TESSERA_ASSIGN_OR_RETURN(const double r, ComputeRdp(q, noise_multiplier, steps, order));
    rdp.push_back(r);
  }
  return EpsilonFromRdp(orders, rdp, delta, conversion);
}

absl::StatusOr<std::vector<double>> SampledGaussianRdp(double q, double noise_multiplier,
                                                       absl::Span<const double> orders) {
  // Validated up front so that an empty `orders` does not hide a bad mechanism.
  TESSERA_RETURN_IF_ERROR(ValidateMechanism(q, noise_multiplier));
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double order : orders) {
    TESSERA_ASSIGN_OR_RETURN(const double r, ComputeRdp(q, noise_multiplier, 1, order));
    rdp.push_back(r);
  }
  return rdp;
}

absl::StatusOr<EpsilonResult> EpsilonFromRdp(absl::Span<const double> orders,
                                             absl::Span<const double> rdp, double delta,
                                             Conversion conversion) {
  if (orders.size() != rdp.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rdp has ", rdp.size(), " values but orders has ", orders.size()));
  }
  TESSERA_RETURN_IF_ERROR(ValidateDelta(delta));
  TESSERA_RETURN_IF_ERROR(ValidateOrders(orders));
  for (double r : rdp) {
    if (!(r >= 0.0)) {
      return absl::InvalidArgumentError(absl::StrCat("rdp values must be >= 0, got ", r));
    }
  }
  // An infinite rdp converts to an infinite epsilon, which never beats the initial best.
  EpsilonResult best{kInf, orders.front()};
  for (size_t i = 0; i < orders.size(); ++i) {
    const double eps = EpsilonAtOrder(rdp[i], orders[i], delta, conversion);
    if (eps < best.epsilon) best = {eps, orders[i]};
  }
  return best;
}

absl::StatusOr<double> FindNoiseMultiplier(double target_epsilon, double delta, double q,
                                           uint64_t steps, Conversion conversion,
                                           absl::Span<const double> orders) {
  if (!(target_epsilon > 0.0) || !std::isfinite(target_epsilon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target_epsilon must be finite and > 0, got ", target_epsilon));
  }
  // Validates every argument (sigma = 1 is a valid placeholder).
  if (absl::StatusOr<EpsilonResult> probe =
          ComputeEpsilon(q, 1.0, steps, delta, orders, conversion);
      !probe.ok()) {
    return probe.status();
  }
  if (q == 0.0 || steps == 0) return 0.0;
  auto meets = [&](double sigma) -> absl::StatusOr<bool> {
    absl::StatusOr<EpsilonResult> r = ComputeEpsilon(q, sigma, steps, delta, orders, conversion);
    if (!r.ok()) return r.status();
    return r->epsilon <= target_epsilon;
  };
  return internal::SmallestNoiseMultiplier(
      meets, {.start = 1.0,
              .max_sigma = kMaxNoiseMultiplier,
              .tolerance = kNoiseSearchRelativeTolerance,
              .unreachable = absl::StrCat("target_epsilon ", target_epsilon,
                                          " is unreachable with noise_multiplier <= ",
                                          kMaxNoiseMultiplier, " (delta=", delta, ", q=", q,
                                          ", steps=", steps, ")")});
}

absl::StatusOr<double> DistributedDiscreteGaussianRho(double l2_sensitivity,
                                                      double sigma2_per_client,
                                                      uint32_t num_clients, uint64_t dim) {
  return DistributedDiscreteGaussianRho(l2_sensitivity, sigma2_per_client, num_clients,
                                        num_clients, dim);
}

absl::StatusOr<double> DistributedDiscreteGaussianRho(double l2_sensitivity,
                                                      double sigma2_per_client,
                                                      uint32_t min_clients,
                                                      uint32_t max_clients, uint64_t dim) {
  if (!(l2_sensitivity > 0.0) || !std::isfinite(l2_sensitivity)) {
    return absl::InvalidArgumentError(
        absl::StrCat("l2_sensitivity must be finite and > 0, got ", l2_sensitivity));
  }
  // Kairouz et al. prove the bound for sigma >= 1/2 only.
  if (!(sigma2_per_client >= 0.25) || !std::isfinite(sigma2_per_client)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sigma2_per_client must be finite and >= 0.25, got ", sigma2_per_client));
  }
  if (min_clients == 0) return absl::InvalidArgumentError("num_clients must be > 0");
  if (max_clients < min_clients) {
    return absl::InvalidArgumentError(absl::StrCat("max_clients ", max_clients,
                                                   " is below min_clients ", min_clients));
  }
  if (dim == 0) return absl::InvalidArgumentError("dim must be > 0");
  // Kairouz, Liu, Steinke 2021, Prop. 14 bounds RDP(alpha) for all alpha >= 1 by both
  //   alpha/2 * D^2/(n s2) + tau d          and   alpha/2 * (D/sqrt(n s2) + tau sqrt(d))^2;
  // the first is <= alpha/2 * (D^2/(n s2) + 2 tau d) for alpha >= 1, which gives the zCDP form
  // (eps^2/2 with eps = min(sqrt(D^2/(n s2) + 2 tau d), D/sqrt(n s2) + tau sqrt(d)), Thm. 1).
  // With n = 1, tau = 0 and this is the discrete Gaussian's D^2/(2 s2) (Canonne et al. 2020).
  // Over a range of n, the Gaussian term at the fewest clients and tau at the most.
  const double gaussian = l2_sensitivity * l2_sensitivity /
                          (static_cast<double>(min_clients) * sigma2_per_client);
  const double tau = DdgTau(sigma2_per_client, max_clients);
  const auto d = static_cast<double>(dim);
  const double linear = std::sqrt(gaussian) + tau * std::sqrt(d);
  return 0.5 * std::min(gaussian + 2.0 * tau * d, linear * linear);
}

absl::StatusOr<std::vector<double>> DistributedDiscreteGaussianRdp(
    double q, double rho, absl::Span<const double> orders) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("q must be in [0, 1], got ", q));
  }
  if (!(rho >= 0.0) || !std::isfinite(rho)) {
    return absl::InvalidArgumentError(absl::StrCat("rho must be finite and >= 0, got ", rho));
  }
  for (double order : orders) TESSERA_RETURN_IF_ERROR(ValidateOrder(order));
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double order : orders) {
    const double unsampled = order * rho;
    if (q == 0.0 || rho == 0.0) {
      rdp.push_back(0.0);
    } else if (q == 1.0) {
      rdp.push_back(unsampled);
    } else {
      // Zhu & Wang's bound needs an integer order; Rényi divergence is non-decreasing in the
      // order, so the bound at ceil(order) also holds at a fractional order.
      const double alpha = std::max(2.0, std::ceil(order));
      // The sum is >= 1 mathematically; clamp rounding noise.
      const double sampled = std::max(0.0, LogZhuWangSum(q, rho, alpha)) / (alpha - 1.0);
      // Sampling never hurts: the unsampled bound holds for the subsampled mechanism too.
      rdp.push_back(std::min(unsampled, sampled));
    }
  }
  return rdp;
}

}  // namespace tessera::dp
