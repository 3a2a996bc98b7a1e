// File: run_config.h
// The operator's run configuration: parsed from TOML (docs/run_config.md) into
// the wire::v1::RunConfig the coordinator stores and distributes, and
// validated.
//
// Example run.toml:
//   name = "fmnist-demo"
//   rounds = 5
//   [model]
//   architecture = "niid_cnn"
//   [train]
//   learning_rate = 0.01
//   [selection]
//   min_clients = 2
//   [secure_aggregation]   # optional: on with the defaults
//
// Error messages name the field by its TOML path, e.g.
//   "train.learning_rate: must be > 0 and <= 10, got -1".
#ifndef TESSERA_CORE_CONFIG_RUN_CONFIG_H_
#define TESSERA_CORE_CONFIG_RUN_CONFIG_H_

#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tessera/wire/v1/run_config.pb.h"

namespace tessera {

struct RunConfigFile {
  // Every field filled, defaults applied. When the model is TorchScript,
  // config.model().torchscript_sha256() is still empty: the caller hashes the
  // file.
  wire::v1::RunConfig config;
  // model.initial_weights and model.torchscript, resolved against the config
  // file's directory; empty when not set.
  std::string initial_safetensors_path;
  std::string torchscript_path;
};

// Parses and validates a run configuration. Relative paths are resolved against
// `base_dir` (left relative when `base_dir` is empty).
// Errors: INVALID_ARGUMENT for TOML syntax errors ("line L, column C: ..."),
// unknown keys or tables, wrong value types, missing required keys and
// out-of-range values; the message names the field path.
// `extra_tables` names top-level tables another program reads from the same file (the
// simulator's [simulation]); they are allowed and ignored here.
absl::StatusOr<RunConfigFile> ParseRunConfigToml(
    absl::string_view toml_text, absl::string_view base_dir,
    std::initializer_list<absl::string_view> extra_tables = {});

// Reads `path` and parses it with base_dir = the file's directory. Errors: as
// ParseRunConfigToml, prefixed with the path; NOT_FOUND etc. when the file
// cannot be read.
absl::StatusOr<RunConfigFile> LoadRunConfigFile(const std::string& path);

// Checks every field of a complete RunConfig (the coordinator calls this on
// every CreateRun). The model must name exactly one of a known architecture or
// a TorchScript program (a 32-byte torchscript_sha256). secure_aggregation is
// checked only when enabled (then selection.min_clients must be >= 2). Errors:
// INVALID_ARGUMENT naming the first bad field, e.g. "train.learning_rate: must
// be > 0 and <= 10, got -1".
absl::Status ValidateRunConfig(const wire::v1::RunConfig& config);

// The TOML name of a strategy ("fedavg", "fedprox", ..., docs/strategies.md); "fedavg" for
// KIND_UNSPECIFIED.
absl::string_view StrategyName(wire::v1::StrategyConfig::Kind kind);

// How clients encode their updates, for documents (the model card, `tessera run report`):
// the method, its bytes per float32 value and the resulting ratio to float32 (nominal: from
// the codec's layout, docs/compression.md), and whether error feedback is on, e.g.
// "int8 (stochastic rounding, one float32 scale per 256 values): 1.016 bytes per float32
// value, 3.94x fewer than float32; error feedback on". "" when method is NONE.
std::string CompressionSummary(const wire::v1::CompressionConfig& compression);

}  // namespace tessera

#endif  // TESSERA_CORE_CONFIG_RUN_CONFIG_H_
