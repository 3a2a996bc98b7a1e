// File: ddg_codec.h
// The client encoder and server decoder of the distributed discrete Gaussian mechanism
// (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for Federated
// Learning with Secure Aggregation", Algorithms 1 and 2). Each client clips its update,
// rotates it with the randomized Hadamard transform, scales it to an integer grid of
// granularity gamma, rounds it randomly (conditionally on a norm bound), adds discrete
// Gaussian noise and reduces mod 2^b. Secure aggregation sums the clients' vectors mod 2^b;
// the server maps the sum back to signed integers, rescales and undoes the rotation, and
// gets the real-valued sum of the clipped updates plus noise of stddev noise_stddev
// (when min_clients clients took part; sqrt(n / min_clients) times that for n clients).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(dp::DdgParams params, dp::MakeDdgParams(
//       {.clip = 1.0, .dimension = update.size(), .noise_stddev = z * 1.0}));
//   TESSERA_ASSIGN_OR_RETURN(dp::SecureRandom rng, dp::SecureRandom::Create());
//   TESSERA_ASSIGN_OR_RETURN(dp::DdgEncoded enc, dp::EncodeDdg(update, params, seed, rng));
//   ... secure aggregation of enc.values mod 2^b over all clients ...
//   TESSERA_ASSIGN_OR_RETURN(std::vector<float> sum, dp::DecodeDdgSum(agg, params, seed));
//
// Choice of gamma (MakeDdgParams). With n = max_clients, m = min_clients, d the padded
// dimension, C the clip, sigma the noise stddev and M = 2^(b-1), one coordinate of the sum
// has, in integer units, variance at most
//   (n C / gamma)^2 / d      the signal: n clipped updates, worst case all aligned, spread
//                            evenly over d coordinates by the rotation;
//   + n / 4                  the randomized rounding (a Bernoulli has variance <= 1/4);
//   + n (sigma / gamma)^2 / m  the noise (each client adds variance (sigma / gamma)^2 / m).
// gamma is the smallest value keeping k_stddevs standard deviations of that sum inside
// [-M, M): gamma = k sqrt(n^2 C^2 / d + n sigma^2 / m) / sqrt(M^2 - k^2 n / 4). This needs
// M > k sqrt(n) / 2 (else the rounding alone fills the modulus). gamma is then raised, if
// needed, so that C / gamma <= 2^50 (scaled values keep a fractional part in a double) and
// sigma^2_per_client <= 2^46 (the exact sampler's limit is 2^48): a coarser grid only
// leaves modulus headroom unused, at a rounding error far below the noise. k_stddevs = 4
// leaves a wrap probability of about 6e-5 per coordinate in that worst case (tens of
// coordinates at d = 2^20); typical updates are far from aligned, and a larger k_stddevs
// trades resolution for fewer wraps.
//
// Conditional randomized rounding and l2_sensitivity. Each scaled coordinate z is rounded
// to floor(z) + Bernoulli(z - floor(z)) (unbiased), and the whole vector is redrawn until
// its L2 norm is at most Delta2, where (KLS 2021, with c = C / gamma)
//   Delta2^2 = min(c^2 + d/4 + sqrt(2 log(1/beta)) (c + sqrt(d)/2),  (c + sqrt(d))^2).
// The second term always holds (rounding moves each coordinate by less than 1); the first
// holds with probability >= 1 - beta (KLS), so a draw is accepted with probability
// >= 1 - beta (0.39 at beta = exp(-0.5)) and usually far more. Delta2 is the integer-domain
// L2 sensitivity of one client for the privacy accountant (l2_sensitivity, rounded up).
//
// Randomness. The rotation signs come from the shared, public per-round seed32 (client and
// server must derive the same rotation). The rounding bits and the noise come from the
// caller's SecureRandom, which in production must be SecureRandom::Create() (the AES-CTR
// CSPRNG seeded from the OS): they are the privacy of the mechanism and must be secret
// and fresh per call. Uniforms are 53-bit, so a rounding probability is off by < 2^-53.
#ifndef TESSERA_PRIVACY_DP_DDG_CODEC_H_
#define TESSERA_PRIVACY_DP_DDG_CODEC_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "privacy/dp/random_source.h"

namespace tessera::dp {

// Largest accepted DdgOptions::dimension (keeps padding and norm arithmetic far from
// overflow; far beyond any model).
inline constexpr uint64_t kMaxDdgDimension = uint64_t{1} << 40;

struct DdgOptions {
  // L2 clip C of one client's update, real units. Finite, > 0.
  double clip = 1.0;
  // Number of values of one update (before padding to a power of two). In [1, 2^40].
  uint64_t dimension = 0;
  // Secure aggregation sums mod 2^modulus_bits. In [8, 62].
  uint32_t modulus_bits = 20;
  // Stddev of the noise in the SUM of min_clients updates, real units (= z * C). Finite, > 0.
  double noise_stddev = 1.0;
  // The sum always has at least this many inputs; each client adds 1/min_clients of the
  // variance, so the sum of fewer clients would be under-noised. In [1, max_clients].
  uint32_t min_clients = 3;
  // Most inputs ever summed: sizes the modulus headroom (a larger value coarsens gamma).
  uint32_t max_clients = 1000;
  // Modular-wrap headroom in standard deviations of one coordinate of the sum. Finite, > 0.
  double k_stddevs = 4.0;
  // Conditional rounding parameter, in [0, 1): 0 uses only the deterministic norm bound.
  double beta = 0.6065306597126334;  // exp(-0.5)
};

struct DdgParams {
  DdgOptions options;
  uint64_t padded_dimension = 0;  // d = HadamardPaddedSize(dimension)
  double gamma = 0;               // granularity: one integer unit = gamma real units
  // Integer-domain L2 bound of one client's rounded vector (Delta2 for the accountant);
  // every encoded vector's norm before noise is <= this, exactly.
  double l2_sensitivity = 0;
  // Per-client integer-domain noise variance as an exact rational, num and den in
  // [1, kMaxSigma2Term]; rounded up from (noise_stddev / gamma)^2 / min_clients.
  uint64_t sigma2_num = 0;
  uint64_t sigma2_den = 0;
  double sigma2_per_client = 0;  // = sigma2_num / sigma2_den
  uint64_t modulus_mask = 0;     // 2^modulus_bits - 1
};

// Validates `options` and derives gamma, the sensitivity and the noise (see the file
// comment). Errors: INVALID_ARGUMENT naming the option for a NaN, infinite or
// out-of-range option, and naming modulus_bits when 2^(b-1) <= k_stddevs sqrt(max_clients)/2.
absl::StatusOr<DdgParams> MakeDdgParams(const DdgOptions& options);

struct DdgEncoded {
  std::vector<uint64_t> values;  // padded_dimension values in [0, 2^modulus_bits)
  double norm_before_clip = 0;   // L2 norm of the input before clipping, real units
};

// The client side: clip `x` to L2 norm C, rotate with seed32 (shared, public, per round),
// scale by 1/gamma, conditionally round with `rng`, add N_Z(0, sigma2) per coordinate with
// the exact sampler and `rng`, reduce mod 2^b.
// Errors: INVALID_ARGUMENT if x.size() != dimension, x has a NaN or infinity, `params` is
// not a MakeDdgParams result, or seed32 is not 32 bytes; INTERNAL if 100 rounding draws
// all exceed l2_sensitivity (probability <= beta^100) or OpenSSL fails.
absl::StatusOr<DdgEncoded> EncodeDdg(absl::Span<const float> x, const DdgParams& params,
                                     absl::string_view seed32, SecureRandom& rng);

// The server side: the sum mod 2^b of any number of EncodeDdg outputs (each value is
// reduced mod 2^b first, so a plain wrapping uint64 sum works too) -> signed integers in
// [-2^(b-1), 2^(b-1)) -> times gamma -> inverse rotation -> the first `dimension` values:
// the noisy real-valued sum of the clipped updates.
// Errors: INVALID_ARGUMENT if sum.size() != padded_dimension, `params` is not a
// MakeDdgParams result, or seed32 is not 32 bytes; INTERNAL if OpenSSL fails.
absl::StatusOr<std::vector<float>> DecodeDdgSum(absl::Span<const uint64_t> sum,
                                                const DdgParams& params, absl::string_view seed32);

// The stages of EncodeDdg, exposed for tests and benchmarks. Unlike EncodeDdg they do not
// check `params` against MakeDdgParams(params.options); otherwise the same errors.
namespace ddg_internal {

struct DdgScaled {
  std::vector<double> values;  // padded_dimension values, L2 norm <= C / gamma
  double norm_before_clip = 0;
};

// Clip, rotate, scale by 1/gamma.
absl::StatusOr<DdgScaled> ClipRotateScale(absl::Span<const float> x, const DdgParams& params,
                                          absl::string_view seed32);

// Conditional randomized rounding of `scaled` to integers with L2 norm <= l2_sensitivity.
absl::StatusOr<std::vector<int64_t>> ConditionalRound(absl::Span<const double> scaled,
                                                      const DdgParams& params, SecureRandom& rng);

// Each value mod 2^b (two's complement, so negative values wrap correctly).
std::vector<uint64_t> ReduceModulo(absl::Span<const int64_t> values, uint64_t modulus_mask);

}  // namespace ddg_internal
}  // namespace tessera::dp

#endif  // TESSERA_PRIVACY_DP_DDG_CODEC_H_
