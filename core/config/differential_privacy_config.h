// File: differential_privacy_config.h
// Internal to core/config: the `[differential_privacy]` table of a run config
// (docs/run_config.md, docs/privacy.md). Only core/config/*.cc include this.
#ifndef TESSERA_CORE_CONFIG_DIFFERENTIAL_PRIVACY_CONFIG_H_
#define TESSERA_CORE_CONFIG_DIFFERENTIAL_PRIVACY_CONFIG_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/toml_reader.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {
namespace config_internal {

// The `[differential_privacy]` table, with its optional `adaptive_clipping`
// and `record` sub-tables. An absent table gives mode MODE_UNSPECIFIED (no DP).
// mode = "record" (record-level DP-SGD alone) takes only `noise_multiplier`,
// `clip_norm`, `expected_batch_size` (required) and `max_physical_batch`
// (default 256), into `record`. For "central" and "distributed", `mode`,
// `noise_multiplier`, `clip_norm`, `population`, `epsilon`, `delta` and
// `dataset` are required: there is no safe default for any of them; a
// `record` sub-table with the DP-SGD keys adds record-level DP. Errors:
// INVALID_ARGUMENT naming the field for unknown keys, wrong types, a missing
// required key or an unknown mode.
absl::StatusOr<wire::v1::DifferentialPrivacyConfig> ParseDifferentialPrivacy(
    const TableReader& table);

// When a mode is set: every field in range and consistent with the rest of
// the run (see docs/run_config.md): noise_multiplier > 0, clip_norm > 0,
// 0 < delta < 1/population, 2 <= selection.min_clients <=
// expected_clients_per_round <= population, selection.clients_per_round unset
// (DP samples clients itself), DISTRIBUTED only with secure aggregation,
// adaptive clipping only in CENTRAL mode without secure aggregation. Record-level
// DP-SGD: noise_multiplier and clip_norm as above, expected_batch_size >= 1,
// max_physical_batch in [1, 65536], and a built-in model architecture.
// Errors: INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateDifferentialPrivacy(const wire::v1::RunConfig& config);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_DIFFERENTIAL_PRIVACY_CONFIG_H_
