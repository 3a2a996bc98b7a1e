// File: hadamard.cc
#include "privacy/dp/hadamard.h"

#include <cmath>
#include <cstdint>

#include "core/base/status_macros.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {
namespace {

// In-place unnormalized fast Walsh-Hadamard transform (Sylvester order); size a power of 2.
void FastWalshHadamard(std::vector<double>& v) {
  const size_t d = v.size();
  for (size_t h = 1; h < d; h *= 2) {
    for (size_t i = 0; i < d; i += 2 * h) {
      for (size_t j = i; j < i + h; ++j) {
        const double a = v[j];
        const double b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

// The d Rademacher signs derived from the seed, as +1.0 / -1.0.
absl::StatusOr<std::vector<double>> Signs(size_t d, absl::string_view seed32) {
  TESSERA_ASSIGN_OR_RETURN(SecureRandom rng, SecureRandom::FromSeed(seed32));
  std::vector<double> signs(d);
  uint64_t word = 0;
  for (size_t i = 0; i < d; ++i) {
    if (i % 64 == 0) word = rng.NextUint64();
    signs[i] = ((word >> (i % 64)) & 1) != 0 ? -1.0 : 1.0;
  }
  return signs;
}

}  // namespace

size_t HadamardPaddedSize(size_t n) {
  if (n == 0) return 0;
  size_t d = 1;
  while (d < n) d *= 2;
  return d;
}

absl::StatusOr<std::vector<double>> RandomizedHadamard(absl::Span<const float> x,
                                                       absl::string_view seed32) {
  const size_t d = HadamardPaddedSize(x.size());
  TESSERA_ASSIGN_OR_RETURN(std::vector<double> y, Signs(d, seed32));
  for (size_t i = 0; i < d; ++i) y[i] = i < x.size() ? y[i] * x[i] : 0.0;
  FastWalshHadamard(y);
  const double norm = d == 0 ? 1.0 : 1.0 / std::sqrt(static_cast<double>(d));
  for (double& v : y) v *= norm;
  return y;
}

absl::StatusOr<std::vector<float>> InverseRandomizedHadamard(absl::Span<const double> y,
                                                             size_t original_size,
                                                             absl::string_view seed32) {
  const size_t d = HadamardPaddedSize(original_size);
  if (y.size() != d) {
    return absl::InvalidArgumentError(
        "inverse Hadamard input size must be the padded size of original_size");
  }
  TESSERA_ASSIGN_OR_RETURN(std::vector<double> signs, Signs(d, seed32));
  std::vector<double> v(y.begin(), y.end());
  FastWalshHadamard(v);
  const double norm = d == 0 ? 1.0 : 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<float> x(original_size);
  for (size_t i = 0; i < original_size; ++i) {
    x[i] = static_cast<float>(v[i] * norm * signs[i]);
  }
  return x;
}

}  // namespace tessera::dp
