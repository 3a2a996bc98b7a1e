// File: clipping.h
// L2 clipping and central Gaussian noise for DP-FedAvg (McMahan et al. 2018, "Learning
// Differentially Private Recurrent Language Models"): each client update is scaled to L2
// norm at most C (over all of its tensors together), so one client moves the sum by at most
// C, and the server adds N(0, (z C)^2) noise to the sum.
//
// Example:
//   std::vector<absl::Span<float>> tensors = {absl::MakeSpan(w), absl::MakeSpan(b)};
//   double norm = dp::ClipTensorsToL2Norm(tensors, /*clip=*/1.0);
//   TESSERA_RETURN_IF_ERROR(dp::AddGaussianNoise(absl::MakeSpan(sum), z * 1.0, rng));
//
// Non-finite inputs give non-finite outputs (a NaN or infinite norm cannot be clipped):
// reject such updates before clipping.
#ifndef TESSERA_PRIVACY_DP_CLIPPING_H_
#define TESSERA_PRIVACY_DP_CLIPPING_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

// The L2 norm, accumulated in double.
double L2Norm(absl::Span<const float> values);

// Scales `values` by min(1, clip / norm) and returns the norm before clipping. Values with
// norm <= clip are left bit-for-bit unchanged. When clipping, the scale is shrunk by a
// relative 2^-22 so that rounding the scaled values to float cannot leave the norm above
// `clip` (the DP sensitivity bound). A clip <= 0 or NaN zeroes every value with a nonzero
// norm.
double ClipToL2Norm(absl::Span<float> values, double clip);

// As ClipToL2Norm over the concatenation of `tensors` (the global norm, as for one model
// update of several tensors); returns the global norm before clipping.
double ClipTensorsToL2Norm(const std::vector<absl::Span<float>>& tensors, double clip);

// Adds independent N(0, stddev^2) noise to every value. Normals come from the Marsaglia polar
// method on 53-bit uniforms from `rng`. Floating-point Gaussian sampling leaks through the
// low-order bits (Mironov 2012: the set of doubles a sampler can return is sparse and
// uneven), so no release uses it: central DP uses grid_gaussian.h and the distributed
// mechanism the exact integer sampler in discrete_gaussian.h.
// Errors: INVALID_ARGUMENT unless stddev is finite and >= 0 (values untouched).
absl::Status AddGaussianNoise(absl::Span<float> values, double stddev, SecureRandom& rng);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_CLIPPING_H_
