// Reading a Hugging Face model directory (ReadHfConfig, ReadHfCheckpoint: one
// model.safetensors or the shards model.safetensors.index.json lists, checked against
// ExpectedTensors) and the freshly initialized checkpoint of a config
// (InitializedCheckpoint). Writing is in hf_checkpoint_writer.cc, the identity hash in
// checkpoint_identity.cc.
#include "client/lm/checkpoint/hf_checkpoint.h"

#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_layout.h"
#include "client/lm/checkpoint/json_fields.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/model/safetensors.h"

namespace tessera::lm {
namespace {

namespace fs = std::filesystem;
using internal::IsFile;
using internal::IsSupportedWeightDType;
using internal::JoinPath;
using internal::kConfigFile;
using internal::kIndexFile;
using internal::kSingleFile;
using internal::ShapeString;

// Tensors HF checkpoints may carry that are not weights: older transformers saved the RoPE
// frequencies of every layer (they are recomputed from config.json).
bool IsIgnorableTensor(const std::string& name) {
  static const std::regex* re =
      new std::regex(R"(model\.layers\.[0-9]+\.self_attn\.rotary_emb\.inv_freq)");
  return std::regex_match(name, *re);
}

// A shard name from an index: a plain file name in the directory (no path separators), so an
// index cannot make the reader open files elsewhere.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\\') == std::string::npos;
}

// file name -> the tensor names the index assigns to it, in index order.
struct ShardPlan {
  std::map<std::string, std::set<std::string>> files;
};

absl::StatusOr<ShardPlan> ReadIndex(const std::string& path) {
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  TESSERA_ASSIGN_OR_RETURN(nlohmann::json json, internal::ParseJsonObject(text, path));
  if (!json.contains("weight_map") || !json["weight_map"].is_object()) {
    return internal::FieldError(path, "weight_map", "is missing or not an object");
  }
  ShardPlan plan;
  for (const auto& [tensor, file] : json["weight_map"].items()) {
    const std::string field = absl::StrCat("weight_map[\"", tensor, "\"]");
    TESSERA_ASSIGN_OR_RETURN(std::string name, internal::GetString(file, path, field));
    if (!IsPlainFileName(name)) {
      return internal::FieldError(path, field,
                                  absl::StrCat("\"", name, "\" is not a file name in the folder"));
    }
    plan.files[name].insert(tensor);
  }
  if (plan.files.empty()) return internal::FieldError(path, "weight_map", "is empty");
  return plan;
}

// Reads the files of a checkpoint into name -> (tensor, file it came from).
struct Loaded {
  Tensor tensor;
  std::string file;
};

absl::Status AddTensors(const std::string& file, ArrayRecord record,
                        const std::set<std::string>* allowed,
                        std::map<std::string, Loaded>* out) {
  for (Tensor& t : record.tensors) {
    if (allowed != nullptr && !allowed->contains(t.name())) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": tensor \"", t.name(), "\" is not assigned to this file by ", kIndexFile));
    }
    std::string name = t.name();
    if (!out->emplace(name, Loaded{std::move(t), file}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": tensor \"", name, "\" is also in another shard"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ArrayRecord> ReadFileTensors(const std::string& path) {
  absl::StatusOr<ArrayRecord> record = ReadSafetensorsFile(path);
  if (!record.ok() && record.status().code() != absl::StatusCode::kNotFound &&
      !absl::StrContains(record.status().message(), path)) {
    return absl::Status(record.status().code(),
                        absl::StrCat(path, ": ", record.status().message()));
  }
  return record;
}

}  // namespace

absl::StatusOr<CausalLmConfig> ReadHfConfig(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  }
  const std::string path = JoinPath(dir, kConfigFile);
  if (!IsFile(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  absl::StatusOr<CausalLmConfig> config = ParseCausalLmConfig(text);
  if (!config.ok()) {
    // The parser's messages start with "config.json: "; name the full path instead.
    std::string message(config.status().message());
    if (absl::StartsWith(message, "config.json: ")) message = message.substr(13);
    return absl::Status(config.status().code(), absl::StrCat(path, ": ", message));
  }
  return config;
}

absl::StatusOr<HfCheckpoint> ReadHfCheckpoint(const std::string& dir) {
  HfCheckpoint checkpoint;
  checkpoint.dir = dir;
  TESSERA_ASSIGN_OR_RETURN(checkpoint.config, ReadHfConfig(dir));

  std::map<std::string, Loaded> loaded;
  const std::string index_path = JoinPath(dir, kIndexFile);
  const std::string single_path = JoinPath(dir, kSingleFile);
  std::string where;  // What a missing tensor is reported against.
  if (IsFile(index_path)) {
    where = index_path;
    TESSERA_ASSIGN_OR_RETURN(ShardPlan plan, ReadIndex(index_path));
    for (const auto& [file, tensors] : plan.files) {
      const std::string path = JoinPath(dir, file);
      if (!IsFile(path)) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_path, ": shard \"", file, "\" (holding \"", *tensors.begin(),
            "\") is not in the folder"));
      }
      TESSERA_ASSIGN_OR_RETURN(ArrayRecord record, ReadFileTensors(path));
      const size_t before = loaded.size();
      TESSERA_RETURN_IF_ERROR(AddTensors(path, std::move(record), &tensors, &loaded));
      if (loaded.size() - before != tensors.size()) {
        for (const std::string& name : tensors) {
          if (!loaded.contains(name) || loaded[name].file != path) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ": tensor \"", name, "\" is missing (", kIndexFile,
                             " puts it in this shard)"));
          }
        }
      }
    }
  } else if (IsFile(single_path)) {
    where = single_path;
    TESSERA_ASSIGN_OR_RETURN(ArrayRecord record, ReadFileTensors(single_path));
    TESSERA_RETURN_IF_ERROR(AddTensors(single_path, std::move(record), nullptr, &loaded));
  } else {
    std::string hint;
    if (IsFile(JoinPath(dir, "pytorch_model.bin")) ||
        IsFile(JoinPath(dir, "pytorch_model.bin.index.json"))) {
      hint = " (pytorch_model.bin is not read: convert it to safetensors)";
    }
    return absl::NotFoundError(absl::StrCat(dir, ": no ", kSingleFile, " or ", kIndexFile, hint));
  }

  // A tied checkpoint may still store lm_head.weight (a copy of the embedding); transformers
  // ties it to model.embed_tokens.weight and ignores the stored one, and so does Tessera.
  if (checkpoint.config.tie_word_embeddings) loaded.erase("lm_head.weight");
  for (auto it = loaded.begin(); it != loaded.end();) {
    it = IsIgnorableTensor(it->first) ? loaded.erase(it) : std::next(it);
  }

  const std::vector<ExpectedTensor> expected = ExpectedTensors(checkpoint.config);
  std::set<std::string> expected_names;
  for (const ExpectedTensor& e : expected) expected_names.insert(e.name);
  for (const auto& [name, l] : loaded) {
    if (!expected_names.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          l.file, ": unexpected tensor \"", name, "\" (not part of a ",
          checkpoint.config.model_type, " model with this config.json)"));
    }
  }
  checkpoint.weights.tensors.reserve(expected.size());
  for (const ExpectedTensor& e : expected) {
    auto it = loaded.find(e.name);
    if (it == loaded.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor \"", e.name, "\" is missing (shape ",
                       ShapeString(e.shape), " for this config.json)"));
    }
    const Tensor& t = it->second.tensor;
    if (t.shape() != e.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(it->second.file, ": tensor \"", e.name, "\" has shape ",
                       ShapeString(t.shape()), " but config.json needs ", ShapeString(e.shape)));
    }
    if (!IsSupportedWeightDType(t.dtype())) {
      return absl::InvalidArgumentError(absl::StrCat(
          it->second.file, ": tensor \"", e.name, "\" has dtype ", DTypeName(t.dtype()),
          " (only float32, float16 and bfloat16 weights are read)"));
    }
    checkpoint.weights.tensors.push_back(std::move(it->second.tensor));
  }
  return checkpoint;
}

absl::StatusOr<HfCheckpoint> InitializedCheckpoint(const CausalLmConfig& config, uint64_t seed,
                                                   std::string dir) {
  TESSERA_RETURN_IF_ERROR(ValidateCausalLmConfig(config));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  HfCheckpoint out;
  out.dir = std::move(dir);
  out.config = config;
  for (const ExpectedTensor& e : ExpectedTensors(config)) {
    TESSERA_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(e.name, DType::kFloat32, e.shape));
    if (absl::EndsWith(e.name, "norm.weight")) {
      for (float& v : t.mutable_values<float>()) v = 1.0f;
    } else if (!absl::EndsWith(e.name, ".bias")) {
      for (float& v : t.mutable_values<float>()) v = normal(rng);
    }
    out.weights.tensors.push_back(std::move(t));
  }
  return out;
}

}  // namespace tessera::lm