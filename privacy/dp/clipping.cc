// File: clipping.cc
#include "privacy/dp/clipping.h"

#include <cmath>

namespace tessera::dp {
namespace {

double SumOfSquares(absl::Span<const float> values) {
  double sum = 0.0;
  for (float v : values) sum += static_cast<double>(v) * static_cast<double>(v);
  return sum;
}

// The factor that brings `norm` to at most `clip`, or 1 when no clipping is needed.
double ClipScale(double norm, double clip) {
  if (!(clip > 0.0)) return norm > 0.0 ? 0.0 : 1.0;  // also catches a NaN clip
  if (!(norm > clip)) return 1.0;
  // Rounding each scaled value to float moves it by at most 2^-24 relative, so shrinking
  // by 2^-22 keeps the clipped norm below clip despite rounding and the norm's own error.
  return clip / norm * (1.0 - 0x1.0p-22);
}

void Scale(absl::Span<float> values, double scale) {
  for (float& v : values) v = static_cast<float>(static_cast<double>(v) * scale);
}

}  // namespace

double L2Norm(absl::Span<const float> values) { return std::sqrt(SumOfSquares(values)); }

double ClipToL2Norm(absl::Span<float> values, double clip) {
  const double norm = L2Norm(values);
  const double scale = ClipScale(norm, clip);
  if (scale != 1.0) Scale(values, scale);
  return norm;
}

double ClipTensorsToL2Norm(const std::vector<absl::Span<float>>& tensors, double clip) {
  double sum = 0.0;
  for (absl::Span<float> t : tensors) sum += SumOfSquares(t);
  const double norm = std::sqrt(sum);
  const double scale = ClipScale(norm, clip);
  if (scale != 1.0) {
    for (absl::Span<float> t : tensors) Scale(t, scale);
  }
  return norm;
}

absl::Status AddGaussianNoise(absl::Span<float> values, double stddev, SecureRandom& rng) {
  if (!std::isfinite(stddev) || stddev < 0.0) {
    return absl::InvalidArgumentError("Gaussian noise stddev must be finite and >= 0");
  }
  // Marsaglia polar method: (u, v) uniform in the unit disc gives two independent normals.
  size_t i = 0;
  while (i < values.size()) {
    const double u = 2.0 * rng.UniformUnit() - 1.0;
    const double v = 2.0 * rng.UniformUnit() - 1.0;
    const double s = u * u + v * v;
    if (s >= 1.0 || s == 0.0) continue;
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    values[i] = static_cast<float>(values[i] + stddev * u * f);
    ++i;
    if (i < values.size()) {
      values[i] = static_cast<float>(values[i] + stddev * v * f);
      ++i;
    }
  }
  return absl::OkStatus();
}

}  // namespace tessera::dp
