// The architecture's rules (ValidateCausalLmConfig: ranges, head layout, the biases each
// model_type has) and the tensors it implies (ExpectedTensors); config.json itself is read
// and written in config_json.cc.
#include "client/lm/checkpoint/model_config.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/json_fields.h"
#include "core/base/status_macros.h"

namespace tessera::lm {
namespace {

using internal::FieldError;

constexpr absl::string_view kFile = "config.json";

absl::Status CheckRange(int64_t value, absl::string_view field, int64_t min, int64_t max) {
  if (value < min || value > max) {
    return FieldError(kFile, field, absl::StrCat(value, " is outside [", min, ", ", max, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCausalLmConfig(const CausalLmConfig& c) {
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2") {
    return FieldError(kFile, "model_type",
                      absl::StrCat("\"", c.model_type,
                                   "\" is not supported (llama, mistral, qwen2)"));
  }
  TESSERA_RETURN_IF_ERROR(CheckRange(c.vocab_size, "vocab_size", 1, kMaxVocabSize));
  TESSERA_RETURN_IF_ERROR(CheckRange(c.hidden_size, "hidden_size", 1, kMaxHiddenSize));
  TESSERA_RETURN_IF_ERROR(
      CheckRange(c.intermediate_size, "intermediate_size", 1, kMaxIntermediateSize));
  TESSERA_RETURN_IF_ERROR(CheckRange(c.num_hidden_layers, "num_hidden_layers", 1, kMaxLayers));
  TESSERA_RETURN_IF_ERROR(
      CheckRange(c.num_attention_heads, "num_attention_heads", 1, kMaxHeads));
  TESSERA_RETURN_IF_ERROR(
      CheckRange(c.num_key_value_heads, "num_key_value_heads", 1, c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError(kFile, "num_key_value_heads",
                      absl::StrCat(c.num_key_value_heads, " does not divide num_attention_heads ",
                                   c.num_attention_heads));
  }
  TESSERA_RETURN_IF_ERROR(CheckRange(c.head_dim, "head_dim", 2, kMaxHeadDim));
  if (c.head_dim % 2 != 0) {
    return FieldError(kFile, "head_dim", absl::StrCat(c.head_dim, " is odd (RoPE needs pairs)"));
  }
  TESSERA_RETURN_IF_ERROR(CheckRange(c.max_position_embeddings, "max_position_embeddings", 1,
                                     kMaxPositionEmbeddings));
  if (!std::isfinite(c.rms_norm_eps) || c.rms_norm_eps <= 0 || c.rms_norm_eps >= 1) {
    return FieldError(kFile, "rms_norm_eps", absl::StrCat(c.rms_norm_eps, " is outside (0, 1)"));
  }
  if (!std::isfinite(c.rope_theta) || c.rope_theta <= 1) {
    return FieldError(kFile, "rope_theta", absl::StrCat(c.rope_theta, " must be above 1"));
  }
  if (c.rope_scaling.has_value()) {
    const Llama3RopeScaling& s = *c.rope_scaling;
    if (!std::isfinite(s.factor) || s.factor < 1) {
      return FieldError(kFile, "rope_scaling.factor", absl::StrCat(s.factor, " is below 1"));
    }
    if (!std::isfinite(s.low_freq_factor) || !std::isfinite(s.high_freq_factor) ||
        s.low_freq_factor <= 0 || s.high_freq_factor <= s.low_freq_factor) {
      return FieldError(kFile, "rope_scaling",
                        absl::StrCat("needs 0 < low_freq_factor < high_freq_factor, not ",
                                     s.low_freq_factor, " and ", s.high_freq_factor));
    }
    TESSERA_RETURN_IF_ERROR(CheckRange(s.original_max_position_embeddings,
                                       "rope_scaling.original_max_position_embeddings", 1,
                                       kMaxPositionEmbeddings));
  }
  if (c.model_type == "qwen2" && (!c.qkv_bias || c.o_proj_bias || c.mlp_bias)) {
    return absl::InvalidArgumentError(
        "config.json: qwen2 has biases on q/k/v_proj only (qkv_bias, no o_proj_bias or "
        "mlp_bias)");
  }
  if (c.model_type == "llama" && c.qkv_bias != c.o_proj_bias) {
    return absl::InvalidArgumentError(
        "config.json: llama's attention_bias puts biases on q/k/v_proj and o_proj together");
  }
  if (c.model_type == "mistral" && (c.qkv_bias || c.o_proj_bias || c.mlp_bias)) {
    return absl::InvalidArgumentError("config.json: mistral has no biases");
  }
  if (c.sliding_window.has_value()) {
    if (c.model_type == "llama") {
      return FieldError(kFile, "sliding_window", "is not a llama field");
    }
    TESSERA_RETURN_IF_ERROR(
        CheckRange(*c.sliding_window, "sliding_window", 1, kMaxPositionEmbeddings));
  }
  if (c.torch_dtype != "float32" && c.torch_dtype != "float16" && c.torch_dtype != "bfloat16") {
    return FieldError(kFile, "torch_dtype",
                      absl::StrCat("\"", c.torch_dtype,
                                   "\" is not supported (float32, float16, bfloat16)"));
  }
  return absl::OkStatus();
}

std::vector<ExpectedTensor> ExpectedTensors(const CausalLmConfig& c) {
  std::vector<ExpectedTensor> out;
  const int64_t h = c.hidden_size;
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  auto linear = [&](const std::string& name, int64_t out_dim, int64_t in_dim, bool bias) {
    out.push_back({name + ".weight", {out_dim, in_dim}});
    if (bias) out.push_back({name + ".bias", {out_dim}});
  };
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    linear(p + "self_attn.q_proj", q_out, h, c.qkv_bias);
    linear(p + "self_attn.k_proj", kv_out, h, c.qkv_bias);
    linear(p + "self_attn.v_proj", kv_out, h, c.qkv_bias);
    linear(p + "self_attn.o_proj", h, q_out, c.o_proj_bias);
    linear(p + "mlp.gate_proj", inter, h, c.mlp_bias);
    linear(p + "mlp.up_proj", inter, h, c.mlp_bias);
    linear(p + "mlp.down_proj", h, inter, c.mlp_bias);
    out.push_back({p + "input_layernorm.weight", {h}});
    out.push_back({p + "post_attention_layernorm.weight", {h}});
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, h}});
  return out;
}

}  // namespace tessera::lm
