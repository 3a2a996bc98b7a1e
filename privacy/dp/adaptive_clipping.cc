// File: adaptive_clipping.cc
#include "privacy/dp/adaptive_clipping.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/status_macros.h"
#include "privacy/dp/grid_gaussian.h"

namespace tessera::dp {

absl::StatusOr<double> NoisedUnclippedFraction(uint64_t unclipped, uint64_t count,
                                               double expected, double count_stddev,
                                               SecureRandom& rng) {
  if (unclipped > count) {
    return absl::InvalidArgumentError(absl::StrCat(
        unclipped, " updates within the clip of only ", count, " in the round"));
  }
  if (!(expected > 0) || !std::isfinite(expected)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected number of clients must be > 0, got ", expected));
  }
  // sum_i (b_i - 1/2), exact in double (counts far below 2^52).
  const double centred = static_cast<double>(unclipped) - 0.5 * static_cast<double>(count);
  if (!(count_stddev >= 0) || !std::isfinite(count_stddev)) {
    return absl::InvalidArgumentError(
        absl::StrCat("count stddev must be finite and >= 0, got ", count_stddev));
  }
  if (count_stddev == 0) return centred / expected + 0.5;
  // The grid discrete Gaussian (no floating-point leak, Mironov 2012) with sensitivity 1/2
  // and noise multiplier 2 sigma_b: its stddev is sigma_b (1 + 2^-21 z) at most.
  TESSERA_ASSIGN_OR_RETURN(GridNoise noise, MakeGridNoise(0.5, 2 * count_stddev, 1));
  double sum[1] = {centred};
  TESSERA_RETURN_IF_ERROR(AddGridGaussianNoise(absl::MakeSpan(sum), noise, rng));
  return sum[0] / expected + 0.5;
}

double NextClipNorm(double clip, double fraction, double learning_rate,
                    double target_quantile) {
  return clip * std::exp(-learning_rate * (fraction - target_quantile));
}

}  // namespace tessera::dp
