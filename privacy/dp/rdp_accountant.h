// File: rdp_accountant.h
// Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism (DP-SGD / DP-FedAvg with
// Poisson client sampling): the RDP of one step, its T-fold composition, the conversion to
// (epsilon, delta), and the inverse search for a noise multiplier. Also the distributed
// discrete Gaussian (noise added by each client before secure aggregation) and per-step RDP
// curves that a ledger can sum across rounds of different mechanisms. See docs/privacy.md.
//
// Example:
//   absl::StatusOr<EpsilonResult> r = ComputeEpsilon(
//       /*q=*/0.01, /*noise_multiplier=*/1.1, /*steps=*/1000, /*delta=*/1e-5,
//       DefaultOrders(), Conversion::kImproved);
//   if (r.ok()) std::cout << r->epsilon << " at order " << r->order;
//
// All functions are pure and thread-compatible.
#ifndef TESSERA_PRIVACY_DP_RDP_ACCOUNTANT_H_
#define TESSERA_PRIVACY_DP_RDP_ACCOUNTANT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera::dp {

// How RDP at order alpha is turned into (epsilon, delta)-DP.
enum class Conversion {
  // Balle et al. 2020 ("Hypothesis testing interpretations and Rényi DP", Prop. 12) and
  // Canonne, Kamath, Steinke 2020 (Eq. 20):
  //   eps = rdp + log1p(-1/alpha) - (log(delta) + log(alpha)) / (alpha - 1),
  // used by dp_accounting / TF Privacy and Opacus. Never worse than kClassic for alpha > 1.01.
  kImproved,
  // Mironov 2017 ("Rényi Differential Privacy", Prop. 3): eps = rdp - log(delta) / (alpha - 1).
  kClassic,
};

struct EpsilonResult {
  double epsilon;  // the smallest epsilon over the orders tried
  double order;    // the RDP order that achieved it
};

// The dp_accounting default orders: 1 + x/10 for x = 1..99, then 11..63, then 128, 256, 512,
// 1024 (156 orders).
std::vector<double> DefaultOrders();

// The RDP at `order` of `steps` compositions of the Gaussian mechanism with noise standard
// deviation `noise_multiplier` times the L2 sensitivity, applied to a Poisson sample where
// every record (client) is included independently with probability `q` (Mironov, Talwar,
// Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"; add/remove-one
// adjacency). Integer orders are exact; fractional orders use the two-series expansion.
// Special cases: q == 0 or steps == 0 -> 0; noise_multiplier == 0 -> +inf;
// q == 1 -> steps * order / (2 noise_multiplier^2).
// Errors: INVALID_ARGUMENT (naming the argument) for q outside [0, 1], a negative or NaN
// noise_multiplier, or an order that is not finite and > 1; INTERNAL if the series fails
// numerically.
absl::StatusOr<double> ComputeRdp(double q, double noise_multiplier, uint64_t steps,
                                  double order);

// The smallest epsilon (and its order) such that the mechanism above is (epsilon, delta)-DP,
// minimised over `orders`.
// Errors: INVALID_ARGUMENT for the ComputeRdp cases, delta outside (0, 1), or empty `orders`.
absl::StatusOr<EpsilonResult> ComputeEpsilon(double q, double noise_multiplier, uint64_t steps,
                                             double delta, absl::Span<const double> orders,
                                             Conversion conversion);

// The per-step RDP curve of the Poisson-sampled Gaussian: ComputeRdp(q, noise_multiplier, 1,
// order) for every order, in order. Curves of single steps add up under composition, so a
// ledger can store one per round and sum them, even when rounds use different parameters.
// Errors: as ComputeRdp.
absl::StatusOr<std::vector<double>> SampledGaussianRdp(double q, double noise_multiplier,
                                                       absl::Span<const double> orders);

// The smallest epsilon (and its order) such that a mechanism with RDP curve `rdp` (rdp[i] at
// orders[i], typically a sum of per-step curves) is (epsilon, delta)-DP; the conversion rules
// of ComputeEpsilon. Orders whose rdp is +inf are skipped; if all are, epsilon is +inf (not an
// error: the curve simply gives no guarantee).
// Errors: INVALID_ARGUMENT for sizes that differ, empty `orders`, an order that is not finite
// and > 1, a negative or NaN rdp, or delta outside (0, 1).
absl::StatusOr<EpsilonResult> EpsilonFromRdp(absl::Span<const double> orders,
                                             absl::Span<const double> rdp, double delta,
                                             Conversion conversion);

// The zero-concentrated DP parameter rho of the distributed discrete Gaussian (Kairouz, Liu,
// Steinke 2021, Theorem 1 / Proposition 14): each of `num_clients` clients adds independent
// discrete Gaussian noise N_Z(0, sigma2_per_client) to every coordinate of a `dim`-dimensional
// integer vector, and one client changes the sum by at most `l2_sensitivity` in L2 norm (in
// the integer, i.e. scaled and rounded, domain). The released sum is rho-zCDP, i.e.
// RDP(alpha) <= alpha * rho for every alpha > 1, with
//   rho = min(D^2/(n s2) + 2 tau d, (D/sqrt(n s2) + tau sqrt(d))^2) / 2,
//   tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 s2 k/(k+1)).
// num_clients is the exact number of noised inputs in the sum; when that can vary (dropouts),
// use the overload below.
// Errors: INVALID_ARGUMENT (naming the argument) for an l2_sensitivity that is not finite and
// > 0, a sigma2_per_client that is not finite and >= 1/4 (the theorem needs sigma >= 1/2),
// num_clients == 0, or dim == 0.
absl::StatusOr<double> DistributedDiscreteGaussianRho(double l2_sensitivity,
                                                      double sigma2_per_client,
                                                      uint32_t num_clients, uint64_t dim);

// The same bound for a sum whose number of noised inputs n is only known to lie in
// [min_clients, max_clients] (a run releases any survivor count from selection.min_clients up
// to the population): D^2/(n s2) shrinks as n grows while tau grows with n, so both are taken
// at their worst, D^2/(min_clients s2) and tau(max_clients). Each argument of the min is then
// at least its value at any n in the range, so the result bounds rho(n) for all of them.
// Errors: as above, plus INVALID_ARGUMENT when max_clients < min_clients.
absl::StatusOr<double> DistributedDiscreteGaussianRho(double l2_sensitivity,
                                                      double sigma2_per_client,
                                                      uint32_t min_clients,
                                                      uint32_t max_clients, uint64_t dim);

// The per-step RDP curve of a rho-zCDP mechanism (such as the distributed discrete Gaussian)
// run on a Poisson sample with rate q: q == 0 -> 0; q == 1 -> alpha * rho. For 0 < q < 1 and an
// integer order, the general Poisson-subsampling upper bound of Zhu & Wang 2019 (Thm. 5) with
// eps(l) = l * rho, capped at the unsampled alpha * rho. That bound exists only for integer
// orders; a fractional order gets the bound at ceil(order) (RDP is non-decreasing in the
// order), again capped at alpha * rho. Every value is finite.
// Errors: INVALID_ARGUMENT for q outside [0, 1], a rho that is not finite and >= 0, or an order
// that is not finite and > 1.
absl::StatusOr<std::vector<double>> DistributedDiscreteGaussianRdp(
    double q, double rho, absl::Span<const double> orders);

// Relative tolerance of FindNoiseMultiplier: the returned sigma is within this fraction of the
// smallest noise multiplier that meets the target.
inline constexpr double kNoiseSearchRelativeTolerance = 1e-4;
// The largest noise multiplier FindNoiseMultiplier will consider.
inline constexpr double kMaxNoiseMultiplier = 1e4;

// The smallest noise multiplier (up to kNoiseSearchRelativeTolerance, rounded up) for which
// ComputeEpsilon(q, sigma, steps, delta, orders, conversion) <= target_epsilon. The result
// always meets the target. Returns 0 when no noise is needed (q == 0 or steps == 0).
// Errors: INVALID_ARGUMENT for a target_epsilon that is not finite and > 0, the
// ComputeEpsilon argument errors, or a target that sigma <= kMaxNoiseMultiplier cannot meet.
absl::StatusOr<double> FindNoiseMultiplier(double target_epsilon, double delta, double q,
                                           uint64_t steps, Conversion conversion,
                                           absl::Span<const double> orders);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_RDP_ACCOUNTANT_H_
