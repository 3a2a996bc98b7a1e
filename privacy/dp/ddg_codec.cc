// File: ddg_codec.cc
// Floating point stops at the integer grid: the scaled values are doubles with |z| <= 2^50
// (so z - floor(z) is exact), the rounded vector and the noise are int64, its norm is
// compared with Delta2 in exact 128-bit integers, and the modular reduction is unsigned.
#include "privacy/dp/ddg_codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "privacy/dp/clipping.h"
#include "privacy/dp/discrete_gaussian.h"
#include "privacy/dp/hadamard.h"

namespace tessera::dp {
namespace {

using absl::uint128;

// Redraws of the conditional rounding before giving up: each fails with probability <= beta
// (KLS 2021), so all fail with probability <= beta^100 (e^-50 at the default beta).
constexpr int kMaxRoundingTries = 100;
// Largest scaled norm C / gamma: below 2^52 a double still has a fractional part, and the
// margin keeps z - floor(z) exact and the rounded values far inside int64.
constexpr double kMaxScaledNorm = 0x1p50;
// Largest per-client variance MakeDdgParams produces, below kMaxSigma2Term = 2^48 so the
// rational rounded up from it stays representable.
constexpr double kMaxSigma2 = 0x1p46;

absl::Status BadOption(absl::string_view option, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("DdgOptions.", option, " ", why));
}

bool PositiveFinite(double v) { return std::isfinite(v) && v > 0; }

absl::Status ValidateOptions(const DdgOptions& o) {
  if (!PositiveFinite(o.clip)) return BadOption("clip", "must be finite and > 0");
  if (o.dimension == 0 || o.dimension > kMaxDdgDimension) {
    return BadOption("dimension", "must be in [1, 2^40]");
  }
  if (o.modulus_bits < 8 || o.modulus_bits > 62) {
    return BadOption("modulus_bits", "must be in [8, 62]");
  }
  if (!PositiveFinite(o.noise_stddev)) {
    return BadOption("noise_stddev", "must be finite and > 0");
  }
  if (o.max_clients == 0) return BadOption("max_clients", "must be >= 1");
  if (o.min_clients == 0 || o.min_clients > o.max_clients) {
    return BadOption("min_clients", "must be in [1, max_clients]");
  }
  if (!PositiveFinite(o.k_stddevs)) return BadOption("k_stddevs", "must be finite and > 0");
  if (!(o.beta >= 0 && o.beta < 1)) return BadOption("beta", "must be in [0, 1)");
  return absl::OkStatus();
}

// The smallest num / den >= sigma2 with den a power of two and num, den <= 2^48: rounding
// up means the clients never add less noise than the accountant is told about.
void RoundUpSigma2(double sigma2, uint64_t& num, uint64_t& den) {
  int e = 48;  // largest den = 2^e with ceil(sigma2 * 2^e) <= 2^48 (sigma2 <= 2^46 here)
  while (e > 0 && std::ceil(std::ldexp(sigma2, e)) > 0x1p48) --e;
  num = static_cast<uint64_t>(std::max(1.0, std::ceil(std::ldexp(sigma2, e))));
  den = uint64_t{1} << e;
}

// floor(v^2) for finite 0 <= v < 2^63, exactly: v = mant * 2^exp with a 53-bit integer
// mant, so v^2 = mant^2 * 2^(2 exp) with mant^2 < 2^106.
uint128 FloorSquare(double v) {
  if (v == 0) return 0;
  int exp = 0;
  const double frac = std::frexp(v, &exp);  // v = frac * 2^exp, frac in [0.5, 1)
  const uint64_t mant = static_cast<uint64_t>(std::ldexp(frac, 53));
  const int shift = 2 * (exp - 53);
  const uint128 sq = uint128{mant} * mant;
  if (shift >= 0) return sq << shift;
  return shift <= -128 ? uint128{0} : sq >> -shift;
}

// EncodeDdg and DecodeDdgSum accept only params that MakeDdgParams would return for their
// options: a hand-edited gamma, sensitivity or sigma2 would silently break the guarantee.
absl::Status CheckParams(const DdgParams& p) {
  absl::StatusOr<DdgParams> expected = MakeDdgParams(p.options);
  if (!expected.ok()) return expected.status();
  if (p.padded_dimension != expected->padded_dimension || p.gamma != expected->gamma ||
      p.l2_sensitivity != expected->l2_sensitivity || p.sigma2_num != expected->sigma2_num ||
      p.sigma2_den != expected->sigma2_den || p.modulus_mask != expected->modulus_mask) {
    return absl::InvalidArgumentError("DdgParams do not match MakeDdgParams(options)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DdgParams> MakeDdgParams(const DdgOptions& options) {
  TESSERA_RETURN_IF_ERROR(ValidateOptions(options));
  DdgParams p;
  p.options = options;
  p.padded_dimension = HadamardPaddedSize(options.dimension);
  p.modulus_mask = (uint64_t{1} << options.modulus_bits) - 1;

  const double n = options.max_clients;
  const double m = options.min_clients;
  const double d = static_cast<double>(p.padded_dimension);
  const double k = options.k_stddevs;
  const double c = options.clip;
  const double sigma = options.noise_stddev;
  const double half_modulus = std::ldexp(1.0, static_cast<int>(options.modulus_bits) - 1);
  // k^2 (A / gamma^2 + n / 4) <= M^2, with A the signal and noise variance in real units.
  const double headroom = half_modulus * half_modulus - k * k * n / 4;
  if (!(headroom > 0)) {
    return BadOption("modulus_bits",
                     absl::StrCat("too small: the rounding of ", options.max_clients,
                                  " clients alone exceeds k_stddevs standard deviations"));
  }
  const double signal_and_noise = n * n * c * c / d + n * sigma * sigma / m;
  double gamma = k * std::sqrt(signal_and_noise / headroom);
  // Coarser grids are always safe (less of the modulus is used); see the header.
  gamma = std::max(gamma, c / kMaxScaledNorm);
  gamma = std::max(gamma, sigma / std::sqrt(kMaxSigma2 * m));
  if (!PositiveFinite(gamma)) {
    return absl::InvalidArgumentError("DdgOptions give a non-finite or zero gamma");
  }
  // Recheck against the rounded gamma (the divisions above can land an ulp low).
  while (c / gamma > kMaxScaledNorm || (sigma / gamma) * (sigma / gamma) / m > kMaxSigma2) {
    gamma = std::nextafter(gamma, std::numeric_limits<double>::infinity());
  }
  p.gamma = gamma;

  const double scaled_clip = c / gamma;
  const double sqrt_d = std::sqrt(d);
  double delta_sq = (scaled_clip + sqrt_d) * (scaled_clip + sqrt_d);
  if (options.beta > 0) {
    const double tail = std::sqrt(2 * std::log(1 / options.beta));
    delta_sq =
        std::min(delta_sq, scaled_clip * scaled_clip + d / 4 + tail * (scaled_clip + sqrt_d / 2));
  }
  // Rounded up: ConditionalRound accepts norms^2 <= floor(l2_sensitivity^2) exactly.
  p.l2_sensitivity = std::nextafter(std::sqrt(delta_sq), std::numeric_limits<double>::infinity());

  RoundUpSigma2((sigma / gamma) * (sigma / gamma) / m, p.sigma2_num, p.sigma2_den);
  p.sigma2_per_client = static_cast<double>(p.sigma2_num) / static_cast<double>(p.sigma2_den);
  return p;
}

namespace ddg_internal {

absl::StatusOr<DdgScaled> ClipRotateScale(absl::Span<const float> x, const DdgParams& params,
                                          absl::string_view seed32) {
  if (x.size() != params.options.dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("DDG input has ", x.size(), " values, want ", params.options.dimension));
  }
  std::vector<float> clipped(x.begin(), x.end());
  DdgScaled out;
  out.norm_before_clip = ClipToL2Norm(absl::MakeSpan(clipped), params.options.clip);
  if (!std::isfinite(out.norm_before_clip)) {
    return absl::InvalidArgumentError("DDG input has a NaN or infinite value");
  }
  TESSERA_ASSIGN_OR_RETURN(out.values, RandomizedHadamard(clipped, seed32));
  const double inv_gamma = 1 / params.gamma;
  for (double& v : out.values) v *= inv_gamma;
  return out;
}

absl::StatusOr<std::vector<int64_t>> ConditionalRound(absl::Span<const double> scaled,
                                                      const DdgParams& params, SecureRandom& rng) {
  const size_t d = scaled.size();
  std::vector<int64_t> floors(d);
  std::vector<double> fracs(d);
  for (size_t i = 0; i < d; ++i) {
    // Inputs come from ClipRotateScale (|z| <= C / gamma <= 2^50); the check keeps the
    // int64 conversion defined for any other caller.
    if (!(std::abs(scaled[i]) <= 0x1p52)) {
      return absl::InvalidArgumentError("DDG scaled value out of range (or NaN)");
    }
    const double f = std::floor(scaled[i]);
    floors[i] = static_cast<int64_t>(f);
    fracs[i] = scaled[i] - f;  // exact: f and scaled[i] share the exponent range
  }
  const uint128 bound_sq = FloorSquare(params.l2_sensitivity);
  std::vector<int64_t> rounded(d);
  for (int attempt = 0; attempt < kMaxRoundingTries; ++attempt) {
    uint128 norm_sq = 0;
    for (size_t i = 0; i < d; ++i) {
      // P(round up) = P(U < frac) with U uniform on k / 2^53: frac to within 2^-53.
      const int64_t q = floors[i] + (rng.UniformUnit() < fracs[i] ? 1 : 0);
      rounded[i] = q;
      const uint64_t a = q < 0 ? uint64_t{0} - static_cast<uint64_t>(q) : static_cast<uint64_t>(q);
      norm_sq += uint128{a} * a;      // each term < 2^105, so stopping at the bound
      if (norm_sq > bound_sq) break;  // keeps norm_sq < 2^128
    }
    if (norm_sq <= bound_sq) return rounded;
  }
  return absl::InternalError(absl::StrCat("DDG conditional rounding exceeded the norm bound ",
                                          kMaxRoundingTries, " times"));
}

std::vector<uint64_t> ReduceModulo(absl::Span<const int64_t> values, uint64_t modulus_mask) {
  std::vector<uint64_t> out(values.size());
  // int64 -> uint64 is the value mod 2^64, and 2^b divides 2^64, so masking gives the value
  // mod 2^b for negative values too (-1 -> 2^b - 1).
  for (size_t i = 0; i < values.size(); ++i) {
    out[i] = static_cast<uint64_t>(values[i]) & modulus_mask;
  }
  return out;
}

}  // namespace ddg_internal

absl::StatusOr<DdgEncoded> EncodeDdg(absl::Span<const float> x, const DdgParams& params,
                                     absl::string_view seed32, SecureRandom& rng) {
  TESSERA_RETURN_IF_ERROR(CheckParams(params));
  TESSERA_ASSIGN_OR_RETURN(ddg_internal::DdgScaled scaled,
                           ddg_internal::ClipRotateScale(x, params, seed32));
  TESSERA_ASSIGN_OR_RETURN(std::vector<int64_t> rounded,
                           ddg_internal::ConditionalRound(scaled.values, params, rng));
  TESSERA_RETURN_IF_ERROR(
      AddDiscreteGaussianNoise(absl::MakeSpan(rounded), params.sigma2_num, params.sigma2_den, rng));
  DdgEncoded out;
  out.values = ddg_internal::ReduceModulo(rounded, params.modulus_mask);
  out.norm_before_clip = scaled.norm_before_clip;
  return out;
}

absl::StatusOr<std::vector<float>> DecodeDdgSum(absl::Span<const uint64_t> sum,
                                                const DdgParams& params, absl::string_view seed32) {
  TESSERA_RETURN_IF_ERROR(CheckParams(params));
  if (sum.size() != params.padded_dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("DDG sum has ", sum.size(), " values, want ", params.padded_dimension));
  }
  const uint64_t half = (params.modulus_mask >> 1) + 1;  // 2^(b-1)
  std::vector<double> centered(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    const uint64_t v = sum[i] & params.modulus_mask;
    // [2^(b-1), 2^b) are the negatives: v - 2^b, formed in int64 (b <= 62, so no overflow).
    const int64_t s = v >= half ? static_cast<int64_t>(v) - static_cast<int64_t>(2 * half)
                                : static_cast<int64_t>(v);
    centered[i] = static_cast<double>(s) * params.gamma;
  }
  return InverseRandomizedHadamard(centered, params.options.dimension, seed32);
}

}  // namespace tessera::dp
