// File: grid_gaussian.h
// Central Gaussian noise without floating-point leaks. Mironov 2012 ("On significance of the
// least significant bits for differential privacy", CCS) showed that x + noise computed in
// floating point can reveal x through its low bits: the doubles a textbook sampler returns
// are sparse and unevenly spaced, so the set of reachable outputs depends on x. Here the
// release is a function of integers only (the discrete Gaussian mechanism of Canonne, Kamath,
// Steinke 2020 on a power-of-two grid):
//
//   g = 2^(floor(log2(z * sens)) - 20)       the grid: z * sens / g in [2^20, 2^21)
//   k_i = round(x_i / g)                     each value snapped to the grid, exactly
//   Delta = sens / g + sqrt(d)               L2 sensitivity of k (each |k_i - k'_i| is at
//                                            most |x_i - x'_i| / g + 1)
//   out_i = (k_i + N_Z(0, s2)) * g,  s2 >= (z * Delta)^2
//
// The noise is an exact discrete Gaussian (discrete_gaussian.h) with variance rounded up, and
// out_i is computed exactly in double, so the output depends on x only through the integers
// k: there are no low bits to leak. The mechanism is the discrete Gaussian with noise
// multiplier at least z on an integer vector of sensitivity Delta, which is rho-zCDP with
// rho = 1/(2 z^2) (CKS 2020, Theorem 4), like a continuous Gaussian with multiplier z. The
// snapping costs a factor 1 + g sqrt(d) / sens <= 1 + sqrt(d) 2^-20 z of extra noise
// (5e-4 at z = 2, d = 65,536).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(dp::GridNoise noise, dp::MakeGridNoise(clip, z, values.size()));
//   TESSERA_RETURN_IF_ERROR(dp::AddGridGaussianNoise(absl::MakeSpan(values), noise, rng));
#ifndef TESSERA_PRIVACY_DP_GRID_GAUSSIAN_H_
#define TESSERA_PRIVACY_DP_GRID_GAUSSIAN_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

struct GridNoise {
  double grid = 0;                // g, a power of two
  uint64_t dimension = 0;         // d
  double integer_sensitivity = 0;  // Delta = sens / g + sqrt(d), in grid units
  uint64_t sigma2_num = 0;        // s2 = sigma2_num / sigma2_den >= (z * Delta)^2, exactly
  uint64_t sigma2_den = 0;
  // The noise's stddev in real units, sqrt(s2) * g (>= z * (sens + g sqrt(d))).
  double stddev = 0;
};

// The grid and noise for `dimension` values whose L2 sensitivity is `l2_sensitivity`, with
// noise multiplier `noise_multiplier` (see the file comment). Errors: INVALID_ARGUMENT unless
// both are finite and > 0 and dimension >= 1, or when z * sqrt(dimension) is so large that s2
// would exceed 2^46 (beyond 10^12 values at z = 2).
absl::StatusOr<GridNoise> MakeGridNoise(double l2_sensitivity, double noise_multiplier,
                                        uint64_t dimension);

// Snaps every value to the grid and adds the integer noise, then maps back (see the file
// comment). Errors: INVALID_ARGUMENT if values.size() != noise.dimension, a value is not
// finite, or |value| / g >= 2^52 (values untouched in all cases); INTERNAL if the randomness
// fails.
absl::Status AddGridGaussianNoise(absl::Span<double> values, const GridNoise& noise,
                                  SecureRandom& rng);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_GRID_GAUSSIAN_H_
