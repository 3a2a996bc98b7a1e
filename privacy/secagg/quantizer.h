// File: quantizer.h
// Floats to integers mod 2^b for secure aggregation (docs/secagg.md, Bonawitz et al. 2017):
// each value is clipped to [-clip, clip], multiplied by the client's weight, scaled,
// stochastically rounded to an integer and reduced mod 2^b, with b chosen so that the sum
// of up to `max_clients` such integers cannot wrap. The masked sum the coordinator unmasks
// is then exactly the sum of the clients' integers, and dividing by the summed weights gives
// weighted FedAvg.
#ifndef TESSERA_PRIVACY_SECAGG_QUANTIZER_H_
#define TESSERA_PRIVACY_SECAGG_QUANTIZER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tessera::secagg {

struct QuantizerOptions {
  double clip = 1.0;             // values are clipped to [-clip, clip]
  double max_weight = 1.0;       // largest client weight (e.g. example count) allowed
  uint32_t max_clients = 1000;   // largest number of summed inputs
  uint32_t value_bits = 16;      // resolution: clip * max_weight maps to 2^(value_bits-1) - 1
};

// The derived parameters every participant must share.
struct QuantizerParams {
  double clip = 0;
  double max_weight = 0;
  uint32_t max_clients = 0;
  double scale = 0;            // integer units per unit of weight * value
  uint32_t modulus_bits = 0;   // b: integers live mod 2^b, b <= 62
  uint64_t modulus_mask = 0;   // 2^b - 1
};

// INVALID_ARGUMENT for non-positive or non-finite clip/max_weight, max_clients of 0,
// value_bits outside 2..48, or ceil(max_weight) * max_clients >= 2^(b-1) (the summed
// integer weights could wrap); OUT_OF_RANGE when the sum would need more than 62 bits.
absl::StatusOr<QuantizerParams> MakeQuantizerParams(const QuantizerOptions& options);

// A source of uniform numbers in [0, 1) for stochastic rounding (injected for tests; the
// product uses a cryptographic PRG).
using UniformSource = std::function<double()>;

// weight * clip(x) for each x, scaled, stochastically rounded and reduced mod 2^b. NaN is
// INVALID_ARGUMENT; weight must be in (0, max_weight].
absl::StatusOr<std::vector<uint64_t>> Quantize(absl::Span<const float> values, double weight,
                                               const QuantizerParams& params,
                                               const UniformSource& uniform);

// Adds `values` into `sum` mod 2^b. REQUIRES: equal lengths.
void AddModular(absl::Span<const uint64_t> values, const QuantizerParams& params,
                absl::Span<uint64_t> sum);

// Each sum read as a signed integer mod 2^b (two's complement in b bits).
std::vector<int64_t> ToSigned(absl::Span<const uint64_t> sum, const QuantizerParams& params);

// Interprets each sum as a signed integer mod 2^b and divides by scale: the sum of the
// clients' weight * clipped values (up to rounding). Divide by the summed weights for FedAvg.
std::vector<double> Dequantize(absl::Span<const uint64_t> sum, const QuantizerParams& params);

}  // namespace tessera::secagg

#endif  // TESSERA_PRIVACY_SECAGG_QUANTIZER_H_
