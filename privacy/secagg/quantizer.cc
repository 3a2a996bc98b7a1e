#include "privacy/secagg/quantizer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace tessera::secagg {

absl::StatusOr<QuantizerParams> MakeQuantizerParams(const QuantizerOptions& o) {
  if (!(std::isfinite(o.clip) && o.clip > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("clip must be positive, got ", o.clip));
  }
  if (!(std::isfinite(o.max_weight) && o.max_weight > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_weight must be positive, got ", o.max_weight));
  }
  if (o.max_clients == 0) return absl::InvalidArgumentError("max_clients must be >= 1");
  if (o.value_bits < 2 || o.value_bits > 48) {
    return absl::InvalidArgumentError(
        absl::StrCat("value_bits must be in 2..48, got ", o.value_bits));
  }
  QuantizerParams p;
  p.clip = o.clip;
  p.max_weight = o.max_weight;
  p.max_clients = o.max_clients;
  // |q| <= 2^(value_bits-1) - 1 + 1 (stochastic rounding may round up once).
  const double max_abs = std::ldexp(1.0, static_cast<int>(o.value_bits) - 1) - 1;
  p.scale = max_abs / (o.clip * o.max_weight);
  // The sum of n values of magnitude <= 2^(value_bits-1) needs value_bits-1+ceil(log2 n)
  // magnitude bits plus a sign bit.
  const uint32_t client_bits =
      static_cast<uint32_t>(std::ceil(std::log2(static_cast<double>(o.max_clients))));
  p.modulus_bits = o.value_bits + client_bits + 1;
  if (p.modulus_bits > 62) {
    return absl::OutOfRangeError(absl::StrCat("value_bits ", o.value_bits, " with ",
                                              o.max_clients, " clients needs ",
                                              p.modulus_bits, " bits; the limit is 62"));
  }
  p.modulus_mask = (uint64_t{1} << p.modulus_bits) - 1;
  // The weights are summed as integers mod 2^b too (each client's in [1, max_weight]):
  // their sum must provably fit, with the sign bit to spare, or it wraps silently.
  const double weight_sum_bound = std::ceil(o.max_weight) * o.max_clients;
  if (weight_sum_bound >= std::ldexp(1.0, static_cast<int>(p.modulus_bits) - 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_weight (secure_aggregation.max_examples) ", o.max_weight, " times ",
        o.max_clients, " clients is ", weight_sum_bound, ", which does not fit below 2^",
        p.modulus_bits - 1, " (value_bits ", o.value_bits,
        "): raise value_bits or lower max_examples"));
  }
  return p;
}

absl::StatusOr<std::vector<uint64_t>> Quantize(absl::Span<const float> values, double weight,
                                               const QuantizerParams& params,
                                               const UniformSource& uniform) {
  if (!(weight > 0 && weight <= params.max_weight)) {
    return absl::InvalidArgumentError(absl::StrCat("weight must be in (0, ",
                                                   params.max_weight, "], got ", weight));
  }
  std::vector<uint64_t> out(values.size());
  const double factor = weight * params.scale;
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = values[i];
    if (std::isnan(x)) {
      return absl::InvalidArgumentError(absl::StrCat("NaN at index ", i));
    }
    const double v = std::clamp(x, -params.clip, params.clip) * factor;
    const double lo = std::floor(v);
    const int64_t q = static_cast<int64_t>(lo) + (uniform() < v - lo ? 1 : 0);
    out[i] = static_cast<uint64_t>(q) & params.modulus_mask;
  }
  return out;
}

void AddModular(absl::Span<const uint64_t> values, const QuantizerParams& params,
                absl::Span<uint64_t> sum) {
  for (size_t i = 0; i < sum.size(); ++i) {
    sum[i] = (sum[i] + values[i]) & params.modulus_mask;
  }
}

std::vector<int64_t> ToSigned(absl::Span<const uint64_t> sum, const QuantizerParams& params) {
  std::vector<int64_t> out(sum.size());
  const uint64_t sign = uint64_t{1} << (params.modulus_bits - 1);
  const int64_t modulus = static_cast<int64_t>(params.modulus_mask) + 1;
  for (size_t i = 0; i < sum.size(); ++i) {
    const uint64_t v = sum[i] & params.modulus_mask;
    out[i] = (v & sign) ? static_cast<int64_t>(v) - modulus : static_cast<int64_t>(v);
  }
  return out;
}

std::vector<double> Dequantize(absl::Span<const uint64_t> sum, const QuantizerParams& params) {
  std::vector<double> out;
  out.reserve(sum.size());
  for (int64_t s : ToSigned(sum, params)) out.push_back(static_cast<double>(s) / params.scale);
  return out;
}

}  // namespace tessera::secagg
