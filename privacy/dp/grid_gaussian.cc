// File: grid_gaussian.cc
#include "privacy/dp/grid_gaussian.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/discrete_gaussian.h"

namespace tessera::dp {
namespace {

constexpr int kGridBitsBelowStddev = 20;
constexpr double kMaxSigma2 = 0x1p46;
constexpr double kMaxScaled = 0x1p52;

bool PositiveFinite(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

absl::StatusOr<GridNoise> MakeGridNoise(double l2_sensitivity, double noise_multiplier,
                                        uint64_t dimension) {
  if (!PositiveFinite(l2_sensitivity)) {
    return absl::InvalidArgumentError(
        absl::StrCat("l2_sensitivity must be finite and > 0, got ", l2_sensitivity));
  }
  if (!PositiveFinite(noise_multiplier)) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise_multiplier must be finite and > 0, got ", noise_multiplier));
  }
  if (dimension == 0) return absl::InvalidArgumentError("dimension must be >= 1");
  GridNoise n;
  n.dimension = dimension;
  const double target = noise_multiplier * l2_sensitivity;
  if (!PositiveFinite(target)) {
    return absl::InvalidArgumentError("noise_multiplier * l2_sensitivity is not finite");
  }
  n.grid = std::ldexp(1.0, std::ilogb(target) - kGridBitsBelowStddev);
  n.integer_sensitivity =
      l2_sensitivity / n.grid + std::sqrt(static_cast<double>(dimension));
  const double z_delta = noise_multiplier * n.integer_sensitivity;
  // A relative 2^-40 up covers the rounding of the products above; then up to den = 2^e.
  const double s2 = z_delta * z_delta * (1 + 0x1p-40);
  if (!(s2 <= kMaxSigma2)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exact central noise for ", dimension, " values at noise multiplier ",
        noise_multiplier, " needs a variance of ", s2, " grid units, above 2^46"));
  }
  int e = 48;
  while (e > 0 && std::ceil(std::ldexp(s2, e)) > 0x1p48) --e;
  n.sigma2_num = static_cast<uint64_t>(std::ceil(std::ldexp(s2, e)));
  n.sigma2_den = uint64_t{1} << e;
  n.stddev = std::sqrt(static_cast<double>(n.sigma2_num) / static_cast<double>(n.sigma2_den)) *
             n.grid;
  return n;
}

absl::Status AddGridGaussianNoise(absl::Span<double> values, const GridNoise& noise,
                                  SecureRandom& rng) {
  if (values.size() != noise.dimension) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", noise.dimension,
                                                   " values, got ", values.size()));
  }
  std::vector<int64_t> k(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const double scaled = values[i] / noise.grid;  // exact: g is a power of two
    if (!std::isfinite(scaled) || !(std::fabs(scaled) < kMaxScaled)) {
      return absl::InvalidArgumentError(
          absl::StrCat("value ", values[i], " at index ", i, " is not finite or too large"));
    }
    k[i] = static_cast<int64_t>(std::nearbyint(scaled));
  }
  // The noise is far below 2^51 (s2 <= 2^46), so k + noise stays exact in a double.
  TESSERA_RETURN_IF_ERROR(
      AddDiscreteGaussianNoise(absl::MakeSpan(k), noise.sigma2_num, noise.sigma2_den, rng));
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<double>(k[i]) * noise.grid;
  }
  return absl::OkStatus();
}

}  // namespace tessera::dp
