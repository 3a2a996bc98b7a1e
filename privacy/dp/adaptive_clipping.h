// File: adaptive_clipping.h
// The private quantile estimate behind adaptive clipping (Andrew et al. 2021, "Differentially
// Private Learning with Adaptive Clipping", Algorithm 1; TF Privacy's QuantileEstimatorQuery).
// Each client in the round reports a bit b_i = 1 when its update was within the clip. The
// bits are centred, b_i - 1/2 in {-1/2, +1/2}, so adding or removing one client moves their
// sum by at most 1/2 (the count itself would move by 1). The release is
//   fraction = (sum_i (b_i - 1/2) + N(0, sigma_b^2)) / expected + 1/2
// and the clip moves geometrically, C <- C exp(-eta (fraction - target_quantile)). The count
// is thus a Gaussian mechanism with sensitivity 1/2 and noise multiplier 2 sigma_b, which is
// what the accountant charges (docs/privacy.md).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(double f, dp::NoisedUnclippedFraction(unclipped, reported,
//                                                                  expected, sigma_b, rng));
//   const double next_clip = dp::NextClipNorm(clip, f, eta, target_quantile);
#ifndef TESSERA_PRIVACY_DP_ADAPTIVE_CLIPPING_H_
#define TESSERA_PRIVACY_DP_ADAPTIVE_CLIPPING_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

// The noised fraction of the `count` updates of a round that were within the clip, of which
// `unclipped` were (see the file comment); `count_stddev` is sigma_b, `expected` the fixed
// denominator (expected clients per round). Errors: INVALID_ARGUMENT for unclipped > count,
// expected not finite and > 0, or count_stddev not finite and >= 0; INTERNAL if the
// randomness fails.
absl::StatusOr<double> NoisedUnclippedFraction(uint64_t unclipped, uint64_t count,
                                               double expected, double count_stddev,
                                               SecureRandom& rng);

// C exp(-learning_rate (fraction - target_quantile)): the geometric update of Andrew et al.
double NextClipNorm(double clip, double fraction, double learning_rate, double target_quantile);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_ADAPTIVE_CLIPPING_H_
