// File: hadamard.h
// The randomized Hadamard transform of the distributed discrete Gaussian mechanism (Kairouz,
// Liu, Steinke 2021): before quantizing, each client rotates its update by
// U = (1/sqrt(d)) H D, where D is a diagonal of random signs and H the d x d Walsh-Hadamard
// matrix (d = the next power of two, the input zero-padded). U is orthonormal, so the L2 norm
// is preserved, and it spreads a spiky vector evenly over all d coordinates, so the per-
// coordinate range (and the modular-wrap probability) after quantization is small. The signs
// come from SecureRandom::FromSeed(seed32), so client and server derive the same D from a
// shared seed and the server can undo the rotation on the aggregate.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::vector<double> y, dp::RandomizedHadamard(x, seed));
//   ... quantize, add discrete Gaussian noise, securely aggregate, dequantize ...
//   TESSERA_ASSIGN_OR_RETURN(std::vector<float> sum,
//                            dp::InverseRandomizedHadamard(y_sum, x.size(), seed));
//
// Cost O(d log d) time and O(d) memory. Sign i is bit (i mod 64) of keystream word i / 64.
#ifndef TESSERA_PRIVACY_DP_HADAMARD_H_
#define TESSERA_PRIVACY_DP_HADAMARD_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tessera::dp {

// The transform dimension for an input of n values: the smallest power of two >= n, and 0
// for n == 0.
size_t HadamardPaddedSize(size_t n);

// y = (1/sqrt(d)) H D pad(x), with d = HadamardPaddedSize(x.size()).
// Errors: INVALID_ARGUMENT unless `seed32` is 32 bytes; INTERNAL if OpenSSL fails.
absl::StatusOr<std::vector<double>> RandomizedHadamard(absl::Span<const float> x,
                                                       absl::string_view seed32);

// The inverse: the first `original_size` values of D (1/sqrt(d)) H y (H is symmetric and
// H H = d I). Linear, so it also inverts a sum of transforms made with the same seed.
// Errors: INVALID_ARGUMENT unless y.size() == HadamardPaddedSize(original_size) and
// `seed32` is 32 bytes; INTERNAL if OpenSSL fails.
absl::StatusOr<std::vector<float>> InverseRandomizedHadamard(absl::Span<const double> y,
                                                             size_t original_size,
                                                             absl::string_view seed32);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_HADAMARD_H_
