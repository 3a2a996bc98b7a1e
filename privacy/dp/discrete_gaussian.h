// File: discrete_gaussian.h
// Exact samplers for the discrete Gaussian and discrete Laplace distributions on the
// integers, following Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for Differential
// Privacy" (Algorithms 1-3). Every sampling decision is made with integer or rational
// arithmetic on uniform integers from SecureRandom, so the output distribution is exactly
// the stated one (no floating-point rounding, no table truncation). This is the noise of the
// distributed discrete Gaussian mechanism (Kairouz, Liu, Steinke 2021): each client adds
// integer noise to its quantized, rotated update before secure aggregation.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
//   // sigma^2 = 5/2
//   TESSERA_RETURN_IF_ERROR(dp::AddDiscreteGaussianNoise(absl::MakeSpan(q), 5, 2, rng));
//
// Limits: sigma^2 = sigma2_num / sigma2_den with both terms in [1, kMaxSigma2Term = 2^48], so
// intermediate products fit in 128 bits. With those limits one case is not exact: a discrete
// Laplace proposal so far out (|Y| * sigma2_den * t - sigma2_num >= 2^64, t = floor(sigma)+1)
// that its acceptance probability is below exp(-2^29) is rejected outright. Such a proposal
// itself has probability below exp(-2^14), so the total-variation error is below
// exp(-2^29): unobservable.
#ifndef TESSERA_PRIVACY_DP_DISCRETE_GAUSSIAN_H_
#define TESSERA_PRIVACY_DP_DISCRETE_GAUSSIAN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

// Largest accepted numerator or denominator of sigma^2.
inline constexpr uint64_t kMaxSigma2Term = uint64_t{1} << 48;

// A Bernoulli(exp(-num/den)) draw, exactly (CKS 2020 Algorithm 1: for gamma in [0, 1], count
// successive Bernoulli(gamma / k) successes and return whether the count is even; for larger
// gamma, floor(gamma) Bernoulli(exp(-1)) draws and one for the fractional part). Any
// num/den works; den == 0 is read as gamma = +infinity and returns false. Expected cost is
// O(1) draws for gamma <= 1 and at most about 1.6 + cost(gamma <= 1) otherwise.
bool BernoulliExp(uint64_t num, uint64_t den, SecureRandom& rng);

// A discrete Laplace draw with scale t/s: P(Y = y) proportional to exp(-|y| * s / t) for
// every integer y (CKS 2020 Algorithm 2). Requires s >= 1 and t >= 1; returns 0 when either
// is 0 (a degenerate distribution). Expected cost is O(1) Bernoulli draws. A draw
// whose magnitude would exceed INT64_MAX (probability below exp(-2^62 * s / t)) is
// redrawn.
int64_t DiscreteLaplace(uint64_t s, uint64_t t, SecureRandom& rng);

// A draw from the discrete Gaussian N_Z(0, sigma^2): P(Y = y) proportional to
// exp(-y^2 / (2 sigma^2)), with sigma^2 = sigma2_num / sigma2_den (CKS 2020 Algorithm 3:
// discrete Laplace proposals with t = floor(sigma) + 1, accepted with probability
// exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))). Its variance is below sigma^2 for small sigma
// (by 14% at sigma^2 = 1/4, 2e-7 relative at sigma^2 = 1) and equal to it to double
// precision from sigma^2 = 2 on.
// Errors: INVALID_ARGUMENT if either term is 0 or above kMaxSigma2Term.
absl::StatusOr<int64_t> SampleDiscreteGaussian(uint64_t sigma2_num, uint64_t sigma2_den,
                                               SecureRandom& rng);

// Adds an independent N_Z(0, sigma2_num / sigma2_den) draw to every element.
// Errors: INVALID_ARGUMENT as SampleDiscreteGaussian (values untouched); OUT_OF_RANGE if some
// sum would overflow int64 (values untouched: all noise is drawn and checked first).
absl::Status AddDiscreteGaussianNoise(absl::Span<int64_t> values, uint64_t sigma2_num,
                                      uint64_t sigma2_den, SecureRandom& rng);

}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_DISCRETE_GAUSSIAN_H_
