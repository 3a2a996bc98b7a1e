// File: governance_config.h
// Internal to core/config: the governance part of a run config (docs/run_config.md,
// docs/governance.md): the `[governance]` table (licenses, what clients report about their
// data, the model card's text) and the base model's provenance keys `[model] source` and
// `[model] license`. Only core/config/*.cc include this.
//
// governance.example_count_bucket: parsing fills in the default 100, but a RunConfig built
// in code without the table has 0. Validation accepts 0, and the coordinator treats 0 as
// 100 (clients do the same with a DataReportRequest whose bucket is 0).
#ifndef TESSERA_CORE_CONFIG_GOVERNANCE_CONFIG_H_
#define TESSERA_CORE_CONFIG_GOVERNANCE_CONFIG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/toml_reader.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {
namespace config_internal {

// The example-count bucket of a run without one (and of a bucket of 0).
inline constexpr uint64_t kDefaultExampleCountBucket = 100;
inline constexpr int64_t kMaxExampleCountBucket = 1000000000;
inline constexpr size_t kMaxTags = 32;
inline constexpr size_t kMaxTagChars = 64;

// The `[governance]` table: model_license, allowed_data_licenses,
// allowed_base_model_licenses, example_count_bucket (default 100), class_histogram
// (default false), description, intended_use, limitations, tags. An absent table gives the
// defaults (bucket 100, everything else empty). Errors: INVALID_ARGUMENT naming the field
// for an unknown key, a wrong type or a bucket outside [1, 1e9].
absl::StatusOr<wire::v1::GovernanceConfig> ParseGovernance(const TableReader& table);

// `[model] source` and `[model] license` into `spec` (empty when absent). The caller lists
// both keys in its CheckKeys. Errors: INVALID_ARGUMENT naming the field for a wrong type.
absl::Status ParseModelProvenance(const TableReader& model, wire::v1::ModelSpec& spec);

// config.governance() and model.source / model.license: license identifiers SPDX-like
// (data_card.h's rule), texts valid UTF-8 of at most 4096 bytes without control characters
// but '\n' and '\t', at most 32 tags of 1..64 characters, a bucket in [0, 1e9] (0: 100),
// and model.license one of governance.allowed_base_model_licenses when that list is set.
// Errors: INVALID_ARGUMENT naming the first bad field, e.g. `model.license: "X" is not in
// governance.allowed_base_model_licenses [A, B]`.
absl::Status ValidateGovernance(const wire::v1::RunConfig& config);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_GOVERNANCE_CONFIG_H_
