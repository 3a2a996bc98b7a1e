// File: secure_aggregation_config.h
// Internal to core/config: the `[secure_aggregation]` table of a run config
// (docs/run_config.md, docs/secagg.md). Split from run_config.cc to keep one
// concept per file; only core/config/*.cc include this.
#ifndef TESSERA_CORE_CONFIG_SECURE_AGGREGATION_CONFIG_H_
#define TESSERA_CORE_CONFIG_SECURE_AGGREGATION_CONFIG_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/toml_reader.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {
namespace config_internal {

// The `[secure_aggregation]` table (or inline table). A present table turns
// secure aggregation on unless it says `enabled = false`; unset keys take the
// defaults of docs/run_config.md. An absent table, or one with
// `enabled = false`, gives an empty config (enabled = false, every field 0);
// the keys and types of a disabled table are still checked. value_bits "auto" (the default)
// is left 0 for ResolveAutoValueBits. Errors:
// INVALID_ARGUMENT naming the field for unknown keys, wrong types and, when
// enabled, integers that do not fit their range.
absl::StatusOr<wire::v1::SecureAggregationConfig> ParseSecureAggregation(
    const TableReader& table);

// The width `value_bits = "auto"` stands for (docs/secagg.md, "Bit width"): with central or
// distributed DP, 32 (the quantizer's rounding lengthens a clipped update by up to
// sqrt(d) / scale, which the DP noise must cover, and the model size d is not in the config).
// Otherwise the smallest v in [2, 48] such that
//   (precision) the secure mean's rounding error, of standard deviation at most
//     sqrt(n) / (2 * scale * W) with scale = (2^(v-1) - 1) / (clip * max_examples), is at most
//     2^-20 * clip whenever the n clients hold W >= n * max(1, max_examples / 1024) examples:
//     2^(v-1) - 1 >= 2^19 * min(max_examples, 1024) / sqrt(n);
//   (headroom) n * ceil(max_examples) < 2^(v + ceil(log2 n)), so the summed weights cannot
//     wrap (the values' sum has its own bit, b = v + ceil(log2 n) + 1);
// with n = selection.clients_per_round, or selection.min_clients with selection.fraction
// (the smallest round has the largest relative error), and at least 2. 48 when no width fits.
uint32_t AutoValueBits(const wire::v1::RunConfig& config);

// Replaces a value_bits of 0 ("auto" or absent in the TOML) by AutoValueBits(config) when
// secure aggregation is enabled; call once selection, DP and secure aggregation are parsed.
void ResolveAutoValueBits(wire::v1::RunConfig& config);

// When config.secure_aggregation().enabled(): every field in range and
// selection.min_clients >= 2 (and, with a fixed selection.clients_per_round,
// a modulus of at most 62 bits). Nothing is checked when not enabled.
// Errors: INVALID_ARGUMENT naming the first bad field, e.g.
// "secure_aggregation.clip: must be finite and in (0, 1000000], got 0".
absl::Status ValidateSecureAggregation(const wire::v1::RunConfig& config);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_SECURE_AGGREGATION_CONFIG_H_
