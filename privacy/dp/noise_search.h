// File: noise_search.h
// Internal to privacy/dp: the noise-multiplier search behind FindNoiseMultiplier (RDP) and
// PldNoiseMultiplier (PLD). Epsilon falls as the noise multiplier grows, so the smallest sigma
// that meets a target is found by bracketing and bisection.
#ifndef TESSERA_PRIVACY_DP_NOISE_SEARCH_H_
#define TESSERA_PRIVACY_DP_NOISE_SEARCH_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace tessera::dp::internal {

struct NoiseSearch {
  double start = 1.0;           // first sigma tried
  double max_sigma = 1e4;       // the largest sigma considered
  double tolerance = 1e-4;      // relative width of the final bracket
  // When `start` already meets the target, halve it (up to 20 times) to find a lower end that
  // does not, instead of bisecting down from 0 (for accountants slow at tiny sigma).
  bool search_below = false;
  std::string unreachable;      // the INVALID_ARGUMENT message when max_sigma does not meet it
};

// The smallest sigma (within `tolerance` of it, rounded up) with meets(sigma) true, for a
// `meets` that is false below some sigma and true above. The bracket doubles up from `start`
// (capped at max_sigma) until it meets, then bisects.
// Errors: those of `meets`; INVALID_ARGUMENT (search.unreachable) when max_sigma does not meet.
absl::StatusOr<double> SmallestNoiseMultiplier(
    const std::function<absl::StatusOr<bool>(double sigma)>& meets, const NoiseSearch& search);

}  // namespace tessera::dp::internal

#endif  // TESSERA_PRIVACY_DP_NOISE_SEARCH_H_
