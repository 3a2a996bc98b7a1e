#include "client/lm/checkpoint/peft_adapter.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/lm/checkpoint/hf_layout.h"
#include "client/lm/checkpoint/json_fields.h"
#include "core/base/file.h"
#include "core/base/status_macros.h"
#include "core/model/safetensors.h"
#include "core/serde/update_codec.h"

namespace tessera::lm {
namespace {

namespace fs = std::filesystem;
using internal::Dump;
using internal::FieldError;
using internal::JoinPath;
using internal::ShapeString;

constexpr uint32_t kMaxLoraRank = 1024;
constexpr char kConfigFile[] = "adapter_config.json";
constexpr char kWeightsFile[] = "adapter_model.safetensors";
constexpr char kPeftPrefix[] = "base_model.model.";
// Tessera's own settings travel in the safetensors "__metadata__": PEFT refuses unknown
// keys in adapter_config.json (older releases) but ignores the metadata.
constexpr char kFreezeAKey[] = "tessera.lora.freeze_a";
constexpr char kInitSeedKey[] = "tessera.lora.init_seed";

constexpr const char* kModules[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                    "gate_proj", "up_proj", "down_proj"};

bool IsModule(absl::string_view name) {
  for (const char* m : kModules) {
    if (name == m) return true;
  }
  return false;
}

// [in, out] of a module of one layer.
std::pair<int64_t, int64_t> ModuleDims(const CausalLmConfig& c, absl::string_view module) {
  const int64_t h = c.hidden_size;
  const int64_t q = c.num_attention_heads * c.head_dim;
  const int64_t kv = c.num_key_value_heads * c.head_dim;
  if (module == "q_proj") return {h, q};
  if (module == "k_proj" || module == "v_proj") return {h, kv};
  if (module == "o_proj") return {q, h};
  if (module == "down_proj") return {c.intermediate_size, h};
  return {h, c.intermediate_size};  // gate_proj, up_proj
}

absl::Status CheckAdapter(const std::vector<ExpectedTensor>& expected,
                          const ArrayRecord& adapter) {
  if (adapter.tensors.size() != expected.size()) {
    return absl::InvalidArgumentError(absl::StrCat("adapter: ", adapter.tensors.size(),
                                                   " tensors but the LoRA config needs ",
                                                   expected.size()));
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const Tensor& t = adapter.tensors[i];
    if (t.name() != expected[i].name || t.shape() != expected[i].shape ||
        t.dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter: tensor ", i, " is ", t.DebugString(), " but the LoRA config needs \"",
          expected[i].name, "\" float32", ShapeString(expected[i].shape)));
    }
  }
  return absl::OkStatus();
}

// PEFT saves adapters in the model's dtype; Tessera works on float32 adapters.
absl::StatusOr<Tensor> ToFloat32(Tensor t) {
  if (t.dtype() == DType::kFloat32) return t;
  if (t.dtype() != DType::kFloat16 && t.dtype() != DType::kBFloat16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", t.name(), "\" has dtype ", DTypeName(t.dtype()),
        " (float32, float16 or bfloat16)"));
  }
  const auto halves = t.values<uint16_t>();
  std::vector<float> values(halves.size());
  for (size_t i = 0; i < halves.size(); ++i) {
    values[i] = t.dtype() == DType::kBFloat16 ? BFloat16BitsToFloat(halves[i])
                                              : HalfBitsToFloat(halves[i]);
  }
  return Tensor::FromFloats(t.name(), t.shape(), values);
}

// adapter_config.json keys that do not change the adapted model's forward pass.
const std::set<std::string>& IgnoredKeys() {
  static const auto* keys = new std::set<std::string>{
      "auto_mapping",     "base_model_name_or_path", "revision",       "inference_mode",
      "init_lora_weights", "loftq_config",           "eva_config",     "corda_config",
      "lora_ga_config",   "megatron_config",         "megatron_core",  "layers_pattern",
      "peft_version",     "qalora_group_size",       "ensure_weight_tying"};
  return *keys;
}

// Options whose non-default value changes the computation: they must be absent, null, false,
// {} or [] (as PEFT writes their defaults).
const std::set<std::string>& MustBeOffKeys() {
  static const auto* keys = new std::set<std::string>{
      "modules_to_save",  "layers_to_transform",  "rank_pattern",     "alpha_pattern",
      "use_rslora",       "use_dora",             "layer_replication", "lora_bias",
      "exclude_modules",  "trainable_token_indices", "target_parameters", "use_qalora",
      "use_bdlora",       "arrow_config",         "alora_invocation_tokens", "fan_in_fan_out"};
  return *keys;
}

}  // namespace

absl::Status ValidateLoraConfig(const LoraConfig& lora) {
  if (lora.rank == 0 || lora.rank > kMaxLoraRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA rank ", lora.rank, " is outside [1, ", kMaxLoraRank, "]"));
  }
  if (!std::isfinite(lora.alpha) || lora.alpha <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA alpha ", lora.alpha, " must be finite and above 0"));
  }
  if (!std::isfinite(lora.dropout) || lora.dropout < 0 || lora.dropout >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA dropout ", lora.dropout, " is outside [0, 1)"));
  }
  if (lora.target_modules.empty()) {
    return absl::InvalidArgumentError("LoRA target_modules is empty");
  }
  std::set<std::string> seen;
  for (const std::string& m : lora.target_modules) {
    if (!IsModule(m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "LoRA target_modules: \"", m, "\" is not one of ", absl::StrJoin(kModules, ", ")));
    }
    if (!seen.insert(m).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("LoRA target_modules: \"", m, "\" is listed twice"));
    }
  }
  return absl::OkStatus();
}

std::vector<ExpectedTensor> AdapterTensors(const CausalLmConfig& config,
                                           const LoraConfig& lora) {
  std::vector<ExpectedTensor> out;
  const std::set<std::string> targets(lora.target_modules.begin(), lora.target_modules.end());
  const int64_t r = lora.rank;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const char* module : kModules) {
      if (!targets.contains(module)) continue;
      const absl::string_view m = module;
      const char* parent =
          m == "gate_proj" || m == "up_proj" || m == "down_proj" ? "mlp" : "self_attn";
      const std::string base = absl::StrCat("model.layers.", layer, ".", parent, ".", module);
      const auto [in, out_dim] = ModuleDims(config, m);
      out.push_back({base + ".lora_A.weight", {r, in}});
      out.push_back({base + ".lora_B.weight", {out_dim, r}});
    }
  }
  return out;
}

std::vector<ExpectedTensor> TrainableAdapterTensors(const CausalLmConfig& config,
                                                    const LoraConfig& lora) {
  std::vector<ExpectedTensor> all = AdapterTensors(config, lora);
  if (!lora.freeze_a) return all;
  std::vector<ExpectedTensor> out;
  for (ExpectedTensor& t : all) {
    if (!absl::EndsWith(t.name, ".lora_A.weight")) out.push_back(std::move(t));
  }
  return out;
}

absl::Status WritePeftAdapter(const std::string& dir, const CausalLmConfig& config,
                              const LoraConfig& lora, const ArrayRecord& adapter,
                              const std::string& base_model_name_or_path) {
  TESSERA_RETURN_IF_ERROR(ValidateLoraConfig(lora));
  TESSERA_RETURN_IF_ERROR(ValidateCausalLmConfig(config));
  TESSERA_RETURN_IF_ERROR(CheckAdapter(AdapterTensors(config, lora), adapter));

  // The keys and defaults of PEFT's LoraConfig that every release since 0.9 reads; PEFT
  // writes them sorted with indent 2 (nlohmann::json objects are sorted too).
  nlohmann::json json;
  json["alpha_pattern"] = nlohmann::json::object();
  json["auto_mapping"] = nullptr;
  json["base_model_name_or_path"] = base_model_name_or_path;
  json["bias"] = "none";
  json["fan_in_fan_out"] = false;
  json["inference_mode"] = true;
  json["init_lora_weights"] = true;
  json["layers_pattern"] = nullptr;
  json["layers_to_transform"] = nullptr;
  json["loftq_config"] = nlohmann::json::object();
  if (std::trunc(lora.alpha) == lora.alpha && std::fabs(lora.alpha) < 1e15) {
    json["lora_alpha"] = static_cast<int64_t>(lora.alpha);
  } else {
    json["lora_alpha"] = lora.alpha;
  }
  json["lora_dropout"] = lora.dropout;
  json["megatron_config"] = nullptr;
  json["megatron_core"] = "megatron.core";
  json["modules_to_save"] = nullptr;
  json["peft_type"] = "LORA";
  json["r"] = lora.rank;
  json["rank_pattern"] = nlohmann::json::object();
  json["revision"] = nullptr;
  json["target_modules"] = lora.target_modules;
  json["task_type"] = "CAUSAL_LM";
  json["use_dora"] = false;
  json["use_rslora"] = false;

  ArrayRecord peft;
  peft.tensors.reserve(adapter.tensors.size());
  for (const Tensor& t : adapter.tensors) {
    TESSERA_ASSIGN_OR_RETURN(Tensor renamed, Tensor::Create(absl::StrCat(kPeftPrefix, t.name()),
                                                            t.dtype(), t.shape(), t.data()));
    peft.tensors.push_back(std::move(renamed));
  }
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {kFreezeAKey, lora.freeze_a ? "true" : "false"},
      {kInitSeedKey, absl::StrCat(lora.init_seed)}};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  TESSERA_RETURN_IF_ERROR(WriteSafetensorsFile(JoinPath(dir, kWeightsFile), peft, metadata));
  return WriteFileAtomically(JoinPath(dir, kConfigFile), json.dump(2) + "\n", 0644,
                             /*replace=*/true);
}

absl::StatusOr<PeftAdapter> ReadPeftAdapter(const std::string& dir,
                                            const CausalLmConfig& config) {
  const std::string config_path = JoinPath(dir, kConfigFile);
  const std::string weights_path = JoinPath(dir, kWeightsFile);
  std::error_code ec;
  if (!fs::is_regular_file(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat(config_path, ": no such file"));
  }
  if (!fs::is_regular_file(weights_path, ec)) {
    const bool has_bin = fs::is_regular_file(JoinPath(dir, "adapter_model.bin"), ec);
    return absl::NotFoundError(absl::StrCat(
        weights_path, ": no such file",
        has_bin ? " (adapter_model.bin is not read: save with safe_serialization)" : ""));
  }
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
  TESSERA_ASSIGN_OR_RETURN(nlohmann::json json, internal::ParseJsonObject(text, config_path));
  const std::string& f = config_path;

  PeftAdapter result;
  LoraConfig& lora = result.lora;
  for (const char* key : {"peft_type", "r", "lora_alpha", "target_modules"}) {
    if (!json.contains(key)) return FieldError(f, key, "is missing");
  }
  for (const auto& [key, value] : json.items()) {
    if (key == "peft_type") {
      TESSERA_ASSIGN_OR_RETURN(std::string type, internal::GetString(value, f, key));
      if (type != "LORA") {
        return FieldError(f, key, absl::StrCat("\"", type, "\" is not supported (only LORA)"));
      }
    } else if (key == "task_type") {
      if (value.is_null()) continue;
      TESSERA_ASSIGN_OR_RETURN(std::string type, internal::GetString(value, f, key));
      if (type != "CAUSAL_LM") {
        return FieldError(f, key, absl::StrCat("\"", type, "\" is not supported (CAUSAL_LM)"));
      }
    } else if (key == "r") {
      TESSERA_ASSIGN_OR_RETURN(int64_t r, internal::GetInt(value, f, key, 1, kMaxLoraRank));
      lora.rank = static_cast<uint32_t>(r);
    } else if (key == "lora_alpha") {
      TESSERA_ASSIGN_OR_RETURN(lora.alpha, internal::GetNumber(value, f, key));
    } else if (key == "lora_dropout") {
      TESSERA_ASSIGN_OR_RETURN(lora.dropout, internal::GetNumber(value, f, key));
    } else if (key == "target_modules") {
      if (!value.is_array()) {
        return FieldError(f, key,
                          absl::StrCat("must be a list of module names (a regular expression "
                                       "or \"all-linear\" is not supported), not ",
                                       Dump(value)));
      }
      lora.target_modules.clear();
      for (const nlohmann::json& m : value) {
        TESSERA_ASSIGN_OR_RETURN(std::string name, internal::GetString(m, f, key));
        lora.target_modules.push_back(name);
      }
    } else if (key == "bias") {
      TESSERA_ASSIGN_OR_RETURN(std::string bias, internal::GetString(value, f, key));
      if (bias != "none") {
        return FieldError(f, key, absl::StrCat("\"", bias, "\" is not supported (only none)"));
      }
    } else if (MustBeOffKeys().contains(key)) {
      if (!internal::IsNullOrEmpty(value) && value != false) {
        return FieldError(f, key, absl::StrCat(Dump(value), " is not supported"));
      }
    } else if (!IgnoredKeys().contains(key)) {
      return FieldError(f, absl::StrCat("\"", key, "\""),
                        "is not supported (it may change the computation)");
    }
  }
  TESSERA_RETURN_IF_ERROR(ValidateLoraConfig(lora));
  // PEFT keeps target_modules as a set: put them in Tessera's module order.
  std::vector<std::string> ordered;
  for (const char* m : kModules) {
    for (const std::string& t : lora.target_modules) {
      if (t == m) ordered.push_back(t);
    }
  }
  lora.target_modules = std::move(ordered);

  std::map<std::string, std::string> metadata;
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord stored, ReadSafetensorsFile(weights_path, &metadata));
  if (auto it = metadata.find(kFreezeAKey); it != metadata.end()) {
    if (it->second != "true" && it->second != "false") {
      return FieldError(weights_path, absl::StrCat("__metadata__ ", kFreezeAKey),
                        "must be \"true\" or \"false\"");
    }
    lora.freeze_a = it->second == "true";
  }
  if (auto it = metadata.find(kInitSeedKey); it != metadata.end()) {
    if (!absl::SimpleAtoi(it->second, &lora.init_seed)) {
      return FieldError(weights_path, absl::StrCat("__metadata__ ", kInitSeedKey),
                        "is not an unsigned integer");
    }
  }

  std::map<std::string, Tensor> by_name;
  for (Tensor& t : stored.tensors) {
    absl::string_view name = t.name();
    if (!absl::ConsumePrefix(&name, kPeftPrefix)) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor \"", t.name(),
                                                     "\" does not start with \"", kPeftPrefix,
                                                     "\""));
    }
    std::string tessera_name(name);
    // Tensor names are immutable: re-create under the Tessera name (moving the bytes).
    TESSERA_ASSIGN_OR_RETURN(Tensor renamed,
                             Tensor::Create(tessera_name, t.dtype(), t.shape(),
                                            std::move(*t.mutable_data())));
    by_name.emplace(std::move(tessera_name), std::move(renamed));
  }
  const std::vector<ExpectedTensor> expected = AdapterTensors(config, lora);
  std::set<std::string> expected_names;
  for (const ExpectedTensor& e : expected) expected_names.insert(e.name);
  for (const auto& [name, t] : by_name) {
    if (!expected_names.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          weights_path, ": unexpected tensor \"", kPeftPrefix, name,
          "\" (not a LoRA tensor of the target modules for this base model)"));
    }
  }
  for (const ExpectedTensor& e : expected) {
    auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor \"", kPeftPrefix,
                                                     e.name, "\" is missing"));
    }
    if (it->second.shape() != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          weights_path, ": tensor \"", kPeftPrefix, e.name, "\" has shape ",
          ShapeString(it->second.shape()), " but rank ", lora.rank, " and the base model need ",
          ShapeString(e.shape)));
    }
    absl::StatusOr<Tensor> t = ToFloat32(std::move(it->second));
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat(weights_path, ": ",
                                                                t.status().message()));
    result.adapter.tensors.push_back(*std::move(t));
  }
  return result;
}

}  // namespace tessera::lm
