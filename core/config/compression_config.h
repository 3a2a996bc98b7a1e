// File: compression_config.h
// Internal to core/config: the `[compression]` table of a run config (docs/compression.md,
// docs/run_config.md). Only core/config/*.cc include this.
#ifndef TESSERA_CORE_CONFIG_COMPRESSION_CONFIG_H_
#define TESSERA_CORE_CONFIG_COMPRESSION_CONFIG_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/toml_reader.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {
namespace config_internal {

// Defaults of a present table: method "none", block_size 4096, topk_fraction 0.01,
// error_feedback true. Block 4096 costs 4 bytes of scale per 4096 codes (3.996x fewer bytes
// than float32) while one outlier still coarsens only its own block; block 256 (3.94x) and
// per-tensor scales (block 0) end within 0.2 points of it on the NIID-Bench CNN
// (docs/compression.md, "Accuracy and bytes").
inline constexpr int64_t kDefaultCompressionBlockSize = 4096;
inline constexpr double kDefaultTopKFraction = 0.01;
// block_size is 0 (one scale per tensor) or in this range; below 16 the scales would cost more
// than a quarter of the codes.
inline constexpr Range kCompressionBlockSize{16, 1 << 20};
// Above one half, top-k's indices and values outweigh float32.
inline constexpr double kMaxTopKFraction = 0.5;

// The `[compression]` table; absent gives an empty config (method NONE). Errors:
// INVALID_ARGUMENT naming the field for unknown keys, wrong types, an unknown method and
// out-of-range values.
absl::StatusOr<wire::v1::CompressionConfig> ParseCompression(const TableReader& table);

// When config.compression().method() is not NONE: block_size and topk_fraction in range, and
// no secure aggregation and no distributed DP (secure aggregation's quantization,
// secure_aggregation.value_bits, is the compression there) and no robust strategy (median,
// trimmed mean and Krum are not linear: compression error would not average out). Central DP
// and record-level DP-SGD are accepted (docs/compression.md). Errors: INVALID_ARGUMENT naming
// the field.
absl::Status ValidateCompression(const wire::v1::RunConfig& config);

}  // namespace config_internal
}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_COMPRESSION_CONFIG_H_
