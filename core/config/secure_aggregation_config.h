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
// the keys and types of a disabled table are still checked. Errors:
// INVALID_ARGUMENT naming the field for unknown keys, wrong types and, when
// enabled, integers that do not fit their range.
absl::StatusOr<wire::v1::SecureAggregationConfig> ParseSecureAggregation(
    const TableReader& table);

// When config.secure_aggregation().enabled(): every field in range and
// selection.min_clients >= 2 (and, with a fixed selection.clients_per_round,
// a modulus of at most 62 bits). Nothing is checked when not enabled.
// Errors: INVALID_ARGUMENT naming the first bad field, e.g.
// "secure_aggregation.clip: must be finite and in (0, 1000000], got 0".
absl::Status ValidateSecureAggregation(const wire::v1::RunConfig& config);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_SECURE_AGGREGATION_CONFIG_H_
