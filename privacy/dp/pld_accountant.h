// File: pld_accountant.h
// Privacy-loss-distribution (PLD) accounting for the Poisson-subsampled Gaussian mechanism
// (DP-SGD / DP-FedAvg with Poisson client sampling): a tighter alternative to the Rényi-DP
// accountant in rdp_accountant.h, with the same conventions (add/remove-one adjacency, Poisson
// sampling rate q, noise multiplier sigma, steps T). See docs/privacy.md.
//
// Method ("connect the dots", Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022, as in Google's
// dp_accounting): for one step, the exact hockey-stick curve delta(eps) of the pair
//   remove: P = (1-q) N(0, s^2) + q N(1, s^2)  vs  Q = N(0, s^2)
//   add:    P = N(0, s^2)  vs  Q = (1-q) N(0, s^2) + q N(1, s^2)
// is evaluated at the grid points eps = k * h, and a discrete PLD on that grid is built whose
// curve passes through those points and is linear in exp(eps) between them. delta(eps) is convex
// in exp(eps), so the discrete curve lies on or above the exact one everywhere: the discrete
// pair dominates the real one, and domination survives composition. The T-fold composition is
// one FFT, a pointwise T-th power and an inverse FFT. Tail mass that falls outside the FFT
// window on the high-loss side (bounded by a Chernoff bound on the discrete PLD) is charged to
// delta, and mass beyond the single-step grid is charged through delta(eps_max). The result is
// therefore an upper bound on the true epsilon (up to floating-point rounding in the FFT, far
// below any delta of interest); the two directions are computed separately and the larger
// epsilon (delta) is reported. Epsilon is resolved to about the grid interval h, so for a tiny
// epsilon (below ~10 h, e.g. q = 1e-6) the RDP accountant can be the tighter of the two.
//
// Cost: O(n log n) in the composed grid size n (the loss range of T steps divided by h); about
// 0.1-0.2 s for q = 0.01, sigma = 1.1, T = 10000 with the default options.
//
// Example:
//   absl::StatusOr<double> eps = PldEpsilon(/*q=*/0.01, /*noise_multiplier=*/1.1,
//                                           /*steps=*/1000, /*delta=*/1e-5);
//
// All functions are pure and thread-compatible.
#ifndef TESSERA_PRIVACY_DP_PLD_ACCOUNTANT_H_
#define TESSERA_PRIVACY_DP_PLD_ACCOUNTANT_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace tessera::dp {

struct PldOptions {
  // The grid spacing h of privacy-loss values. Smaller is tighter and slower (time and memory
  // grow like 1/h). If the composed grid would need more than kMaxPldGridPoints points, h is
  // doubled until it fits: still an upper bound, only looser.
  double value_discretization_interval = 1e-4;
  // The single-step grid stops where the sampled Gaussian's tail beyond it has at most this
  // mass, and the FFT window is sized so that the composed tails beyond it have at most this
  // mass each (by a Chernoff bound). Both are charged pessimistically.
  double tail_mass_truncation = 1e-15;
};

// The largest composed grid (FFT length) the accountant will use: 2^22 points (64 MiB of
// complex values).
inline constexpr int64_t kMaxPldGridPoints = int64_t{1} << 22;

// The smallest epsilon >= 0 such that `steps` compositions of the Gaussian mechanism with noise
// standard deviation `noise_multiplier` (times the L2 sensitivity), on a Poisson sample with rate
// `q`, are (epsilon, delta)-DP under add/remove-one adjacency, as an upper bound computed from
// the discretized PLD (max of the add and the remove direction). +inf when no finite epsilon
// meets delta on the grid.
// Special cases: q == 0 or steps == 0 -> 0.
// Errors: INVALID_ARGUMENT (naming the argument) for q outside [0, 1], a noise_multiplier that is
// not finite and > 0, delta outside (0, 1), or options whose interval or tail mass is not finite
// and > 0 (the tail mass must also be <= 1e-3).
absl::StatusOr<double> PldEpsilon(double q, double noise_multiplier, uint64_t steps, double delta,
                                  const PldOptions& options = {});

// The smallest delta such that the same mechanism is (epsilon, delta)-DP, as an upper bound
// (max of the add and the remove direction).
// Special cases: q == 0 or steps == 0 -> 0.
// Errors: INVALID_ARGUMENT as PldEpsilon, with epsilon < 0 (or NaN) instead of the delta check.
absl::StatusOr<double> PldDelta(double q, double noise_multiplier, uint64_t steps, double epsilon,
                                const PldOptions& options = {});

// The smallest noise multiplier (up to kPldNoiseRelativeTolerance, rounded up) for which
// PldEpsilon(q, sigma, steps, delta, options) <= target_epsilon, by bisection. The result always
// meets the target. Returns 0 when no noise is needed (q == 0 or steps == 0).
// Errors: INVALID_ARGUMENT for a target_epsilon that is not finite and > 0, the PldEpsilon
// argument errors, or a target that sigma <= kMaxPldNoiseMultiplier cannot meet.
inline constexpr double kPldNoiseRelativeTolerance = 1e-4;
inline constexpr double kMaxPldNoiseMultiplier = 1e4;
absl::StatusOr<double> PldNoiseMultiplier(double target_epsilon, double delta, double q,
                                          uint64_t steps, const PldOptions& options = {});

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_PLD_ACCOUNTANT_H_
