// config.json, both ways: ParseCausalLmConfig reads it as transformers' LlamaConfig,
// MistralConfig and Qwen2Config do (their defaults, rope_scaling/rope_parameters, sliding
// windows), refusing any key that is not known to leave the computation unchanged, and
// CausalLmConfigToJson writes it in Hugging Face's layout (model_config.h).
#include <limits>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/json_fields.h"
#include "client/lm/checkpoint/model_config.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using internal::Dump;
using internal::FieldError;
using internal::GetBool;
using internal::GetInt;
using internal::GetNumber;
using internal::GetString;
using Json = nlohmann::json;

constexpr absl::string_view kFile = "config.json";
constexpr int64_t kMaxTokenId = std::numeric_limits<int32_t>::max();

// Keys of PretrainedConfig and the published configs that do not change the forward pass:
// bookkeeping, generation defaults, label maps and training-time knobs.
const std::set<std::string>& IgnoredKeys() {
  static const auto* keys = new std::set<std::string>{
      "_name_or_path", "add_cross_attention", "architectures", "auto_map",
      "bad_words_ids", "begin_suppress_tokens", "chunk_size_feed_forward",
      "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty",
      "do_sample", "early_stopping", "encoder_no_repeat_ngram_size",
      "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id",
      "forced_eos_token_id", "id2label", "initializer_range", "is_decoder", "label2id",
      "length_penalty", "max_length", "min_length", "no_repeat_ngram_size", "num_beam_groups",
      "num_beams", "num_return_sequences", "output_attentions", "output_hidden_states",
      "output_scores", "prefix", "problem_type", "remove_invalid_values", "repetition_penalty",
      "return_dict", "return_dict_in_generate", "sep_token_id", "suppress_tokens",
      "task_specific_params", "temperature", "tf_legacy_loss", "tie_encoder_decoder",
      "tokenizer_class", "top_k", "top_p", "torchscript", "transformers_version",
      "typical_p", "use_bfloat16", "use_cache", "unsloth_version", "unsloth_fixed",
      "pruned_heads", "is_encoder_decoder", "attn_implementation", "_attn_implementation",
      "_attn_implementation_autoset", "model_type"};
  return *keys;
}

// Keys read below, per model_type (LlamaConfig, MistralConfig, Qwen2Config).
std::set<std::string> UsedKeys(absl::string_view model_type) {
  std::set<std::string> keys = {
      "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
      "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
      "rope_parameters", "tie_word_embeddings", "attention_dropout", "torch_dtype", "dtype",
      "bos_token_id", "eos_token_id", "pad_token_id"};
  if (model_type == "llama") {
    keys.insert({"attention_bias", "mlp_bias", "pretraining_tp"});
  } else if (model_type == "mistral") {
    keys.insert("sliding_window");
  } else if (model_type == "qwen2") {
    keys.insert({"use_sliding_window", "sliding_window", "max_window_layers", "layer_types"});
  }
  return keys;
}

// Sets *out from json[key] when present (null clears it); else leaves the default.
absl::Status OptionalTokenId(const Json& json, const char* key, std::optional<int64_t>* out) {
  if (!json.contains(key)) return absl::OkStatus();
  if (json[key].is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  TESSERA_ASSIGN_OR_RETURN(*out, GetInt(json[key], kFile, key, -1, kMaxTokenId));
  return absl::OkStatus();
}

// "rope_scaling" (transformers 4) or "rope_parameters" (transformers 5, which also holds
// rope_theta). Sets config->rope_scaling and, from rope_parameters, config->rope_theta.
absl::Status ParseRope(const Json& rope, absl::string_view field, CausalLmConfig* config) {
  if (rope.is_null()) return absl::OkStatus();
  if (!rope.is_object()) {
    return FieldError(kFile, field, absl::StrCat("must be an object or null, not ", Dump(rope)));
  }
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (!rope.contains(key)) continue;
    TESSERA_ASSIGN_OR_RETURN(std::string t,
                             GetString(rope[key], kFile, absl::StrCat(field, ".", key)));
    if (!type.empty() && t != type) {
      return FieldError(kFile, field, "has different \"rope_type\" and \"type\"");
    }
    type = t;
  }
  const bool is_parameters = field == "rope_parameters";
  if (type.empty()) {
    if (!is_parameters) return FieldError(kFile, field, "has no \"rope_type\"");
    type = "default";
  }
  if (type != "default" && type != "llama3") {
    return FieldError(kFile, field,
                      absl::StrCat("type \"", type, "\" is not supported (only llama3)"));
  }
  Llama3RopeScaling scaling;
  std::set<std::string> seen;
  for (const auto& [key, value] : rope.items()) {
    const std::string name = absl::StrCat(field, ".", key);
    if (key == "rope_type" || key == "type") continue;
    if (is_parameters && key == "rope_theta") {
      TESSERA_ASSIGN_OR_RETURN(config->rope_theta, GetNumber(value, kFile, name));
      continue;
    }
    if (is_parameters && key == "partial_rotary_factor") {
      TESSERA_ASSIGN_OR_RETURN(double f, GetNumber(value, kFile, name));
      if (f != 1.0) return FieldError(kFile, name, "other than 1.0 is not supported");
      continue;
    }
    if (type == "llama3") {
      if (key == "factor") {
        TESSERA_ASSIGN_OR_RETURN(scaling.factor, GetNumber(value, kFile, name));
      } else if (key == "low_freq_factor") {
        TESSERA_ASSIGN_OR_RETURN(scaling.low_freq_factor, GetNumber(value, kFile, name));
      } else if (key == "high_freq_factor") {
        TESSERA_ASSIGN_OR_RETURN(scaling.high_freq_factor, GetNumber(value, kFile, name));
      } else if (key == "original_max_position_embeddings") {
        TESSERA_ASSIGN_OR_RETURN(scaling.original_max_position_embeddings,
                                 GetInt(value, kFile, name, 1, kMaxPositionEmbeddings));
      } else {
        return FieldError(kFile, name, "is not supported for rope_type llama3");
      }
      seen.insert(key);
    } else {
      return FieldError(kFile, name, "is not supported for rope_type default");
    }
  }
  if (type == "default") return absl::OkStatus();
  for (const char* key : {"factor", "low_freq_factor", "high_freq_factor",
                          "original_max_position_embeddings"}) {
    if (!seen.contains(key)) {
      return FieldError(kFile, absl::StrCat(field, ".", key), "is missing (rope_type llama3)");
    }
  }
  config->rope_scaling = scaling;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CausalLmConfig> ParseCausalLmConfig(absl::string_view json_text) {
  TESSERA_ASSIGN_OR_RETURN(Json json, internal::ParseJsonObject(json_text, kFile));
  if (!json.contains("model_type")) return FieldError(kFile, "model_type", "is missing");
  CausalLmConfig c;
  TESSERA_ASSIGN_OR_RETURN(c.model_type, GetString(json["model_type"], kFile, "model_type"));
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2") {
    return FieldError(kFile, "model_type",
                      absl::StrCat("\"", c.model_type,
                                   "\" is not supported (llama, mistral, qwen2)"));
  }
  const std::set<std::string> used = UsedKeys(c.model_type);
  for (const auto& [key, value] : json.items()) {
    if (!used.contains(key) && !IgnoredKeys().contains(key)) {
      return FieldError(kFile, absl::StrCat("\"", key, "\""),
                        absl::StrCat("is not supported for model_type ", c.model_type,
                                     " (it may change the computation)"));
    }
  }

  // transformers' defaults (configuration_{llama,mistral,qwen2}.py).
  const bool llama = c.model_type == "llama";
  const bool mistral = c.model_type == "mistral";
  const bool qwen2 = c.model_type == "qwen2";
  c.vocab_size = qwen2 ? 151936 : 32000;
  c.hidden_size = 4096;
  c.intermediate_size = llama ? 11008 : mistral ? 14336 : 22016;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.max_position_embeddings = llama ? 2048 : mistral ? 4096 * 32 : 32768;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000;
  c.qkv_bias = qwen2;
  if (!qwen2) c.bos_token_id = 1;
  if (!qwen2) c.eos_token_ids = {2};

  auto get_int = [&](const char* key, int64_t* out, int64_t max) -> absl::Status {
    if (!json.contains(key) || json[key].is_null()) return absl::OkStatus();
    TESSERA_ASSIGN_OR_RETURN(*out, GetInt(json[key], kFile, key, 1, max));
    return absl::OkStatus();
  };
  TESSERA_RETURN_IF_ERROR(get_int("vocab_size", &c.vocab_size, kMaxVocabSize));
  TESSERA_RETURN_IF_ERROR(get_int("hidden_size", &c.hidden_size, kMaxHiddenSize));
  TESSERA_RETURN_IF_ERROR(
      get_int("intermediate_size", &c.intermediate_size, kMaxIntermediateSize));
  TESSERA_RETURN_IF_ERROR(get_int("num_hidden_layers", &c.num_hidden_layers, kMaxLayers));
  TESSERA_RETURN_IF_ERROR(get_int("num_attention_heads", &c.num_attention_heads, kMaxHeads));
  c.num_key_value_heads = mistral ? 8 : c.num_attention_heads;
  TESSERA_RETURN_IF_ERROR(get_int("num_key_value_heads", &c.num_key_value_heads, kMaxHeads));
  if (json.contains("head_dim") && !json["head_dim"].is_null()) {
    TESSERA_RETURN_IF_ERROR(get_int("head_dim", &c.head_dim, kMaxHeadDim));
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return FieldError(kFile, "hidden_size",
                        absl::StrCat(c.hidden_size, " is not divisible by num_attention_heads ",
                                     c.num_attention_heads, " (and there is no head_dim)"));
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  TESSERA_RETURN_IF_ERROR(
      get_int("max_position_embeddings", &c.max_position_embeddings, kMaxPositionEmbeddings));
  if (json.contains("rms_norm_eps")) {
    TESSERA_ASSIGN_OR_RETURN(c.rms_norm_eps,
                             GetNumber(json["rms_norm_eps"], kFile, "rms_norm_eps"));
  }
  if (json.contains("rope_theta")) {
    TESSERA_ASSIGN_OR_RETURN(c.rope_theta, GetNumber(json["rope_theta"], kFile, "rope_theta"));
  }
  if (json.contains("rope_scaling") && json.contains("rope_parameters") &&
      !json["rope_scaling"].is_null() && !json["rope_parameters"].is_null()) {
    return FieldError(kFile, "rope_scaling", "and rope_parameters are both set");
  }
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (json.contains(key)) TESSERA_RETURN_IF_ERROR(ParseRope(json[key], key, &c));
  }
  if (json.contains("hidden_act")) {
    TESSERA_ASSIGN_OR_RETURN(std::string act, GetString(json["hidden_act"], kFile, "hidden_act"));
    if (act != "silu") {
      return FieldError(kFile, "hidden_act",
                        absl::StrCat("\"", act, "\" is not supported (only silu)"));
    }
  }
  if (json.contains("attention_dropout") && !json["attention_dropout"].is_null()) {
    TESSERA_ASSIGN_OR_RETURN(double p, GetNumber(json["attention_dropout"], kFile,
                                                 "attention_dropout"));
    if (p != 0) return FieldError(kFile, "attention_dropout", "other than 0 is not supported");
  }
  if (json.contains("pretraining_tp") && !json["pretraining_tp"].is_null()) {
    TESSERA_ASSIGN_OR_RETURN(int64_t tp, GetInt(json["pretraining_tp"], kFile, "pretraining_tp",
                                                1, std::numeric_limits<int32_t>::max()));
    if (tp != 1) return FieldError(kFile, "pretraining_tp", "other than 1 is not supported");
  }
  if (json.contains("tie_word_embeddings")) {
    TESSERA_ASSIGN_OR_RETURN(c.tie_word_embeddings, GetBool(json["tie_word_embeddings"], kFile,
                                                            "tie_word_embeddings"));
  }
  if (json.contains("attention_bias")) {
    TESSERA_ASSIGN_OR_RETURN(c.qkv_bias,
                             GetBool(json["attention_bias"], kFile, "attention_bias"));
    c.o_proj_bias = c.qkv_bias;
  }
  if (json.contains("mlp_bias")) {
    TESSERA_ASSIGN_OR_RETURN(c.mlp_bias, GetBool(json["mlp_bias"], kFile, "mlp_bias"));
  }
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (!json.contains(key) || json[key].is_null()) continue;
    TESSERA_ASSIGN_OR_RETURN(c.torch_dtype, GetString(json[key], kFile, key));
  }
  TESSERA_RETURN_IF_ERROR(OptionalTokenId(json, "bos_token_id", &c.bos_token_id));
  TESSERA_RETURN_IF_ERROR(OptionalTokenId(json, "pad_token_id", &c.pad_token_id));
  if (json.contains("eos_token_id")) {
    const Json& eos = json["eos_token_id"];
    c.eos_token_ids.clear();
    if (eos.is_array()) {
      for (const Json& id : eos) {
        TESSERA_ASSIGN_OR_RETURN(int64_t v, GetInt(id, kFile, "eos_token_id", 0, kMaxTokenId));
        c.eos_token_ids.push_back(v);
      }
    } else if (!eos.is_null()) {
      TESSERA_ASSIGN_OR_RETURN(int64_t v, GetInt(eos, kFile, "eos_token_id", -1, kMaxTokenId));
      c.eos_token_ids.push_back(v);
    }
  }

  // Sliding windows. Mistral: "sliding_window" (default 4096; null for none). Qwen2: the
  // window applies only with use_sliding_window (and then to layers >= max_window_layers);
  // Tessera refuses longer sequences, so which layers use it does not matter.
  if (mistral) c.sliding_window = 4096;
  if (json.contains("sliding_window")) {
    if (json["sliding_window"].is_null()) {
      c.sliding_window.reset();
    } else {
      TESSERA_ASSIGN_OR_RETURN(c.sliding_window, GetInt(json["sliding_window"], kFile,
                                                        "sliding_window", 1,
                                                        std::numeric_limits<int64_t>::max()));
    }
  }
  if (qwen2) {
    bool use_sliding_window = false;
    if (json.contains("use_sliding_window")) {
      TESSERA_ASSIGN_OR_RETURN(use_sliding_window, GetBool(json["use_sliding_window"], kFile,
                                                           "use_sliding_window"));
    }
    if (json.contains("max_window_layers") && !json["max_window_layers"].is_null()) {
      TESSERA_RETURN_IF_ERROR(GetInt(json["max_window_layers"], kFile, "max_window_layers", 0,
                                     std::numeric_limits<int32_t>::max())
                                  .status());
    }
    if (json.contains("layer_types") && !json["layer_types"].is_null()) {
      const Json& types = json["layer_types"];
      if (!types.is_array()) return FieldError(kFile, "layer_types", "must be a list");
      for (const Json& t : types) {
        TESSERA_ASSIGN_OR_RETURN(std::string type, GetString(t, kFile, "layer_types"));
        if (type != "full_attention" && type != "sliding_attention") {
          return FieldError(kFile, "layer_types", absl::StrCat("\"", type, "\" is not supported"));
        }
        if (type == "sliding_attention") use_sliding_window = true;
      }
    }
    if (!use_sliding_window) c.sliding_window.reset();
    if (use_sliding_window && !c.sliding_window.has_value()) {
      return FieldError(kFile, "use_sliding_window", "is true but sliding_window is null");
    }
  }
  if (c.sliding_window.has_value() && *c.sliding_window > kMaxPositionEmbeddings) {
    c.sliding_window.reset();  // Wider than any sequence Tessera accepts: no window at all.
  }
  TESSERA_RETURN_IF_ERROR(ValidateCausalLmConfig(c));
  return c;
}

std::string CausalLmConfigToJson(const CausalLmConfig& c) {
  nlohmann::ordered_json json;
  const bool llama = c.model_type == "llama";
  const bool mistral = c.model_type == "mistral";
  const bool qwen2 = c.model_type == "qwen2";
  json["architectures"] = {llama     ? "LlamaForCausalLM"
                           : mistral ? "MistralForCausalLM"
                           : qwen2   ? "Qwen2ForCausalLM"
                                     : c.model_type};
  json["model_type"] = c.model_type;
  json["vocab_size"] = c.vocab_size;
  json["hidden_size"] = c.hidden_size;
  json["intermediate_size"] = c.intermediate_size;
  json["num_hidden_layers"] = c.num_hidden_layers;
  json["num_attention_heads"] = c.num_attention_heads;
  json["num_key_value_heads"] = c.num_key_value_heads;
  json["head_dim"] = c.head_dim;
  json["hidden_act"] = "silu";
  json["max_position_embeddings"] = c.max_position_embeddings;
  json["rms_norm_eps"] = c.rms_norm_eps;
  json["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.has_value()) {
    json["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling->factor},
        {"low_freq_factor", c.rope_scaling->low_freq_factor},
        {"high_freq_factor", c.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings}};
  } else {
    json["rope_scaling"] = nullptr;
  }
  json["tie_word_embeddings"] = c.tie_word_embeddings;
  json["attention_dropout"] = 0.0;
  if (llama) {
    json["attention_bias"] = c.qkv_bias || c.o_proj_bias;
    json["mlp_bias"] = c.mlp_bias;
    json["pretraining_tp"] = 1;
  }
  if (mistral) {
    json["sliding_window"] = c.sliding_window.has_value() ? Json(*c.sliding_window) : Json();
  }
  if (qwen2) {
    json["use_sliding_window"] = c.sliding_window.has_value();
    json["sliding_window"] = c.sliding_window.has_value() ? Json(*c.sliding_window) : Json();
    // With a window, every layer uses it: the strictest reading (see ParseCausalLmConfig).
    json["max_window_layers"] = c.sliding_window.has_value() ? 0 : c.num_hidden_layers;
  }
  json["torch_dtype"] = c.torch_dtype;
  json["bos_token_id"] = c.bos_token_id.has_value() ? Json(*c.bos_token_id) : Json();
  if (c.eos_token_ids.size() == 1) {
    json["eos_token_id"] = c.eos_token_ids[0];
  } else if (c.eos_token_ids.empty()) {
    json["eos_token_id"] = nullptr;
  } else {
    json["eos_token_id"] = c.eos_token_ids;
  }
  json["pad_token_id"] = c.pad_token_id.has_value() ? Json(*c.pad_token_id) : Json();
  json["initializer_range"] = 0.02;
  json["use_cache"] = true;
  return json.dump(2) + "\n";
}

}  // namespace tessera::lm
