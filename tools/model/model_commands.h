// File: model_commands.h
// The subcommands of tessera-model, the tool that turns model programs into federated
// weights and back. This library links LibTorch (through client/training) so that the
// operator CLI and the coordinator never do.
//
// Files: weights are safetensors (core/model/safetensors.h); model programs are
// TorchScript archives (torch.jit.save in PyTorch). info tells them apart by content.
#ifndef TESSERA_TOOLS_MODEL_MODEL_COMMANDS_H_
#define TESSERA_TOOLS_MODEL_MODEL_COMMANDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/tensor.h"

namespace tessera {

// Version of the metadata tessera-model writes into safetensors files.
inline constexpr char kTesseraFormatVersion[] = "1";

// Writes the initial weights of a built-in architecture drawn from `seed` to `out`, with
// metadata architecture, seed, format ("pt"), tessera_format_version and tessera_version.
// Errors: INVALID_ARGUMENT for an unknown architecture; write errors of
// WriteSafetensorsFile.
absl::Status InitModel(absl::string_view architecture, uint64_t seed,
                       const std::string& out);

// Writes the parameters and buffers of a TorchScript file to `out`, with metadata
// source ("torchscript"), format and tessera_format_version.
// Errors: NOT_FOUND / INVALID_ARGUMENT from LocalModel::LoadTorchScriptFile; write errors.
absl::Status ImportTorchScript(const std::string& torchscript, const std::string& out);

// Loads the program `base`, replaces its weights with those of the safetensors file
// `weights` and saves the result to `out` (a TorchScript file PyTorch can load).
// Errors: as ImportTorchScript and ReadSafetensorsFile; INVALID_ARGUMENT from
// LocalModel::SetWeights naming a mismatching tensor.
absl::Status ExportTorchScript(const std::string& base, const std::string& weights,
                               const std::string& out);

enum class ModelFileFormat { kSafetensors, kTorchScript };

struct ModelFileInfo {
  std::string path;
  ModelFileFormat format = ModelFileFormat::kSafetensors;
  // Tensors in file order (state_dict order for TorchScript).
  ArrayRecord record;
  std::map<std::string, std::string> metadata;  // safetensors only
  // Elements of all tensors (parameters and buffers).
  int64_t total_parameters = 0;
  // Elements of the parameters alone (TorchScript only).
  std::optional<int64_t> trainable_parameters;
};

// Reads a safetensors or TorchScript file (by content: TorchScript archives are zip
// files). Errors: NOT_FOUND; INVALID_ARGUMENT when the file is neither.
absl::StatusOr<ModelFileInfo> ReadModelFileInfo(const std::string& path);

// One line per tensor ("name dtype [d0,d1]") and a totals line; or, with `json`, one JSON
// object {"path", "format", "metadata", "tensors": [{"name","dtype","shape"}],
// "num_tensors", "total_parameters", "total_bytes"[, "trainable_parameters"]}.
std::string FormatModelFileInfo(const ModelFileInfo& info, bool json);

}  // namespace tessera

#endif  // TESSERA_TOOLS_MODEL_MODEL_COMMANDS_H_
