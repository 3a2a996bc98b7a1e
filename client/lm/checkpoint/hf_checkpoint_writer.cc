// WriteHfCheckpoint: config.json and the weights as one model.safetensors or as
// transformers' shards with model.safetensors.index.json, replacing an earlier checkpoint's
// weight files in the same directory.
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/checkpoint/hf_layout.h"
#include "client/lm/checkpoint/json_fields.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/model/safetensors.h"

namespace tessera::lm {
namespace {

namespace fs = std::filesystem;
using internal::IsShardName;
using internal::IsSupportedWeightDType;
using internal::JoinPath;
using internal::kConfigFile;
using internal::kIndexFile;
using internal::kSingleFile;
using internal::ShapeString;
using internal::ShardName;

// Checks that `weights` is exactly ExpectedTensors(config) with float dtypes.
absl::Status CheckWeights(const CausalLmConfig& config, const ArrayRecord& weights) {
  const std::vector<ExpectedTensor> expected = ExpectedTensors(config);
  if (weights.tensors.size() != expected.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights: ", weights.tensors.size(), " tensors but the ", config.model_type,
                     " config needs ", expected.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const Tensor& t = weights.tensors[i];
    if (t.name() != expected[i].name) {
      return absl::InvalidArgumentError(absl::StrCat("weights: tensor ", i, " is \"", t.name(),
                                                     "\" but the config needs \"",
                                                     expected[i].name, "\" there"));
    }
    if (t.shape() != expected[i].shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights: tensor \"", t.name(), "\" has shape ", ShapeString(t.shape()),
                       " but the config needs ", ShapeString(expected[i].shape)));
    }
    if (!IsSupportedWeightDType(t.dtype())) {
      return absl::InvalidArgumentError(absl::StrCat("weights: tensor \"", t.name(),
                                                     "\" has dtype ", DTypeName(t.dtype()),
                                                     " (float32, float16 or bfloat16)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteHfCheckpoint(const std::string& dir, const CausalLmConfig& config,
                               const ArrayRecord& weights, uint64_t max_shard_bytes) {
  TESSERA_RETURN_IF_ERROR(ValidateCausalLmConfig(config));
  TESSERA_RETURN_IF_ERROR(CheckWeights(config, weights));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};

  // transformers' sharding: tensors in order, a new shard when the next tensor would take
  // the current one over the limit (a tensor larger than the limit gets a shard of its own).
  std::vector<ArrayRecord> shards(1);
  uint64_t shard_bytes = 0;
  if (max_shard_bytes > 0 && weights.TotalBytes() > max_shard_bytes) {
    for (const Tensor& t : weights.tensors) {
      if (!shards.back().tensors.empty() && shard_bytes + t.byte_size() > max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().tensors.push_back(t);
      shard_bytes += t.byte_size();
    }
  }
  std::set<std::string> written;
  if (shards.size() == 1) {
    TESSERA_RETURN_IF_ERROR(
        WriteSafetensorsFile(JoinPath(dir, kSingleFile), weights, metadata));
    written.insert(kSingleFile);
  } else {
    nlohmann::json index;
    index["metadata"] = {{"total_size", weights.TotalBytes()}};
    index["weight_map"] = nlohmann::json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name = ShardName(i, shards.size());
      TESSERA_RETURN_IF_ERROR(WriteSafetensorsFile(JoinPath(dir, name), shards[i], metadata));
      for (const Tensor& t : shards[i].tensors) index["weight_map"][t.name()] = name;
      written.insert(name);
    }
    TESSERA_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, kIndexFile),
                                                index.dump(2) + "\n", 0644, /*replace=*/true));
    written.insert(kIndexFile);
  }
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(
      JoinPath(dir, kConfigFile), CausalLmConfigToJson(config), 0644, /*replace=*/true));

  // Weights of an earlier checkpoint in the same folder would shadow or mix with these.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if ((name == kSingleFile || name == kIndexFile || IsShardName(name)) &&
        !written.contains(name)) {
      fs::remove(entry.path(), ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat("cannot remove stale ", entry.path().string(), ": ", ec.message()));
      }
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace tessera::lm
