// File: discrete_gaussian.cc
// Internally gamma = num/den is carried in absl::uint128 so the discrete Gaussian's
// acceptance exponent (|Y| d t - n)^2 / (2 n d t^2) is exact without a bignum.
#include "privacy/dp/discrete_gaussian.h"

#include <limits>
#include <vector>

#include "absl/numeric/int128.h"

namespace tessera::dp {
namespace {

using absl::uint128;

// Uniform on [0, n) for a 128-bit n >= 1, by rejection on the smallest covering power of 2.
uint128 UniformBelow128(uint128 n, SecureRandom& rng) {
  if (absl::Uint128High64(n) == 0) return rng.UniformBelow(absl::Uint128Low64(n));
  const uint128 m = n - 1;  // >= 2^64, so its high word is nonzero
  const int high_bits = 64 - __builtin_clzll(absl::Uint128High64(m));
  const uint64_t high_mask =
      high_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << high_bits) - 1;
  while (true) {  // accepts with probability > 1/2
    const uint64_t hi = rng.NextUint64() & high_mask;
    const uint64_t lo = rng.NextUint64();
    const uint128 x = absl::MakeUint128(hi, lo);
    if (x < n) return x;
  }
}

// Bernoulli(num / den) for 0 <= num <= den, den >= 1.
bool BernoulliRational(uint128 num, uint128 den, SecureRandom& rng) {
  if (num >= den) return true;
  if (num == 0) return false;
  return UniformBelow128(den, rng) < num;
}

// CKS 2020 Algorithm 1 for gamma = num/den in [0, 1]: K = 1; while Bernoulli(gamma / K)
// succeeds, K += 1; return whether K is odd. Bernoulli(gamma / K) is drawn as the product
// of independent Bernoulli(1 / K) and Bernoulli(gamma), so den * K is never formed.
bool BernoulliExpUnit(uint128 num, uint128 den, SecureRandom& rng) {
  uint64_t k = 1;
  while (true) {
    const bool a = rng.UniformBelow(k) == 0 && BernoulliRational(num, den, rng);
    if (!a) break;
    ++k;  // Bernoulli(1/k) fails long before k could wrap
  }
  return (k & 1) == 1;
}

// Bernoulli(exp(-num / den)) for any num and den >= 1.
bool BernoulliExp128(uint128 num, uint128 den, SecureRandom& rng) {
  uint128 whole = num / den;
  const uint128 frac = num % den;
  // exp(-gamma) = exp(-1)^floor(gamma) * exp(-frac(gamma)); stop at the first failure.
  for (; whole > 0; --whole) {
    if (!BernoulliExpUnit(1, 1, rng)) return false;
  }
  return BernoulliExpUnit(frac, den, rng);
}

// floor(sqrt(num / den)) for den >= 1, exactly: the largest r with r^2 * den <= num.
uint64_t FloorSqrtRatio(uint64_t num, uint64_t den) {
  const uint64_t q = num / den;  // floor(sqrt(floor(x))) == floor(sqrt(x))
  uint64_t lo = 0;
  uint64_t hi = uint64_t{1} << 32;  // sqrt(2^64) bound; invariant lo^2 <= q < hi^2
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (uint128{mid} * mid <= q) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

absl::Status ValidateSigma2(uint64_t sigma2_num, uint64_t sigma2_den) {
  if (sigma2_num == 0 || sigma2_den == 0 || sigma2_num > kMaxSigma2Term ||
      sigma2_den > kMaxSigma2Term) {
    return absl::InvalidArgumentError(
        "discrete Gaussian sigma^2 = num/den needs num and den in [1, 2^48]");
  }
  return absl::OkStatus();
}

// The discrete Gaussian draw for already validated parameters.
int64_t SampleValidated(uint64_t n, uint64_t d, SecureRandom& rng) {
  const uint64_t t = FloorSqrtRatio(n, d) + 1;  // <= 2^24 + 1
  const uint128 dt = uint128{d} * t;            // <= 2^73
  const uint128 den = uint128{2} * n * d * t * t;  // 2 n d t^2 <= 2^99 (see header)
  const uint128 kTwo64 = absl::MakeUint128(1, 0);
  while (true) {
    const int64_t y = DiscreteLaplace(1, t, rng);
    const uint64_t abs_y = y < 0 ? uint64_t{0} - static_cast<uint64_t>(y)
                                 : static_cast<uint64_t>(y);
    // gamma = (|Y| - sigma^2/t)^2 / (2 sigma^2) = (|Y| d t - n)^2 / (2 n d t^2).
    // |Y| < 2^63 and dt <= 2^73 could overflow 128 bits, so bound |Y| first.
    if (abs_y != 0 && dt > std::numeric_limits<uint128>::max() / abs_y) continue;
    const uint128 a = dt * abs_y;
    const uint128 diff = a >= n ? a - n : uint128{n} - a;
    if (diff >= kTwo64) continue;  // acceptance probability < exp(-2^29); see header
    if (BernoulliExp128(diff * diff, den, rng)) return y;
  }
}

}  // namespace

bool BernoulliExp(uint64_t num, uint64_t den, SecureRandom& rng) {
  if (den == 0) return false;
  return BernoulliExp128(num, den, rng);
}

int64_t DiscreteLaplace(uint64_t s, uint64_t t, SecureRandom& rng) {
  if (s == 0 || t == 0) return 0;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  while (true) {
    const uint64_t u = rng.UniformBelow(t);
    if (!BernoulliExp(u, t, rng)) continue;
    uint64_t v = 0;  // geometric: the number of Bernoulli(exp(-1)) successes before a failure
    while (BernoulliExpUnit(1, 1, rng)) ++v;
    // X = U + t V is geometric with parameter exp(-1/t); Y = floor(X / s) has exp(-s/t).
    if (v > (kMax - u) / t) continue;  // X > INT64_MAX: probability < exp(-2^62 / t)
    const uint64_t x = u + t * v;
    const uint64_t y = x / s;
    const bool negative = rng.NextBit();
    if (negative && y == 0) continue;  // so that 0 is not counted twice
    return negative ? -static_cast<int64_t>(y) : static_cast<int64_t>(y);
  }
}

absl::StatusOr<int64_t> SampleDiscreteGaussian(uint64_t sigma2_num, uint64_t sigma2_den,
                                               SecureRandom& rng) {
  if (absl::Status s = ValidateSigma2(sigma2_num, sigma2_den); !s.ok()) return s;
  return SampleValidated(sigma2_num, sigma2_den, rng);
}

absl::Status AddDiscreteGaussianNoise(absl::Span<int64_t> values, uint64_t sigma2_num,
                                      uint64_t sigma2_den, SecureRandom& rng) {
  if (absl::Status s = ValidateSigma2(sigma2_num, sigma2_den); !s.ok()) return s;
  std::vector<int64_t> noisy(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t noise = SampleValidated(sigma2_num, sigma2_den, rng);
    if (__builtin_add_overflow(values[i], noise, &noisy[i])) {
      return absl::OutOfRangeError("discrete Gaussian noise overflows int64");
    }
  }
  for (size_t i = 0; i < values.size(); ++i) values[i] = noisy[i];
  return absl::OkStatus();
}

}  // namespace tessera::dp
