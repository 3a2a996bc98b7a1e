#include "client/lm/checkpoint/model_config.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/lm/checkpoint/checkpoint_test_util.h"
#include "core/base/testing/status_matchers.h"

namespace tessera::lm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The published config.json of meta-llama/Llama-3.1-8B.
constexpr char kLlama31_8B[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// Qwen/Qwen2.5-0.5B-Instruct.
constexpr char kQwen25_05B[] = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151645,
  "hidden_act": "silu",
  "hidden_size": 896,
  "initializer_range": 0.02,
  "intermediate_size": 4864,
  "max_position_embeddings": 32768,
  "max_window_layers": 21,
  "model_type": "qwen2",
  "num_attention_heads": 14,
  "num_hidden_layers": 24,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 151936
})";

// mistralai/Mistral-7B-v0.1.
constexpr char kMistral7B[] = R"({
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

// kLlama31_8B with `key` set to the JSON `value` (or removed when value is empty).
std::string LlamaWith(const std::string& key, const std::string& value) {
  nlohmann::json json = nlohmann::json::parse(kLlama31_8B);
  if (value.empty()) {
    json.erase(key);
  } else {
    json[key] = nlohmann::json::parse(value);
  }
  return json.dump();
}

void ExpectInvalid(const std::string& text, const std::string& substring) {
  EXPECT_THAT(ParseCausalLmConfig(text),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(substring)))
      << text;
}

TEST(ParseCausalLmConfigTest, Llama31) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(kLlama31_8B);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 14336);
  EXPECT_EQ(c->num_hidden_layers, 32);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // 4096 / 32
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 8);
  EXPECT_DOUBLE_EQ(c->rope_scaling->low_freq_factor, 1);
  EXPECT_DOUBLE_EQ(c->rope_scaling->high_freq_factor, 4);
  EXPECT_EQ(c->rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->o_proj_bias);
  EXPECT_FALSE(c->mlp_bias);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  EXPECT_EQ(c->bos_token_id, 128000);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001));
  EXPECT_FALSE(c->pad_token_id.has_value());
  EXPECT_FALSE(c->sliding_window.has_value());
}

TEST(ParseCausalLmConfigTest, EosListAndAttentionBias) {
  absl::StatusOr<CausalLmConfig> c =
      ParseCausalLmConfig(LlamaWith("eos_token_id", "[128001, 128008, 128009]"));
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(c->eos_token_ids, ElementsAre(128001, 128008, 128009));

  c = ParseCausalLmConfig(LlamaWith("attention_bias", "true"));
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->o_proj_bias);  // LlamaAttention: bias=config.attention_bias on all four
  EXPECT_FALSE(c->mlp_bias);
}

TEST(ParseCausalLmConfigTest, Qwen25) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(kQwen25_05B);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->model_type, "qwen2");
  EXPECT_EQ(c->head_dim, 64);  // 896 / 14
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_proj_bias);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_FALSE(c->sliding_window.has_value());  // use_sliding_window false
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
}

TEST(ParseCausalLmConfigTest, QwenSlidingWindowWhenEnabled) {
  nlohmann::json json = nlohmann::json::parse(kQwen25_05B);
  json["use_sliding_window"] = true;
  json["sliding_window"] = 4096;
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(json.dump());
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->sliding_window, 4096);
}

TEST(ParseCausalLmConfigTest, Mistral) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(kMistral7B);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->model_type, "mistral");
  EXPECT_EQ(c->sliding_window, 4096);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_FALSE(c->qkv_bias);

  nlohmann::json json = nlohmann::json::parse(kMistral7B);
  json["sliding_window"] = nullptr;  // Mistral-7B-v0.2 and later
  c = ParseCausalLmConfig(json.dump());
  ASSERT_THAT(c, IsOk());
  EXPECT_FALSE(c->sliding_window.has_value());
}

// transformers' defaults for absent fields (configuration_*.py).
TEST(ParseCausalLmConfigTest, Defaults) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(R"({"model_type": "llama"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->vocab_size, 32000);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 11008);
  EXPECT_EQ(c->num_hidden_layers, 32);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 32);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));

  c = ParseCausalLmConfig(R"({"model_type": "mistral"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->intermediate_size, 14336);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_EQ(c->sliding_window, 4096);

  c = ParseCausalLmConfig(R"({"model_type": "qwen2"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->intermediate_size, 22016);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(ParseCausalLmConfigTest, ExplicitHeadDim) {
  // Mistral-Nemo: head_dim 128 although 5120 / 32 = 160.
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(
      R"({"model_type": "mistral", "hidden_size": 5120, "num_attention_heads": 32,
          "head_dim": 128})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->head_dim, 128);
}

// transformers 5 writes "rope_parameters" (with rope_theta inside) and "dtype".
TEST(ParseCausalLmConfigTest, Transformers5Keys) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(
      R"({"model_type": "llama", "dtype": "float16",
          "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}})");
  ASSERT_THAT(c, IsOk());
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000);
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_EQ(c->torch_dtype, "float16");

  c = ParseCausalLmConfig(
      R"({"model_type": "llama", "rope_parameters": {"rope_type": "llama3",
          "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})");
  ASSERT_THAT(c, IsOk());
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(c->rope_scaling->factor, 32);
}

TEST(ParseCausalLmConfigTest, LegacyRopeScalingTypeKey) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(LlamaWith(
      "rope_scaling", R"({"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"));
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->rope_scaling.has_value());
  c = ParseCausalLmConfig(LlamaWith("rope_scaling", "null"));
  ASSERT_THAT(c, IsOk());
  EXPECT_FALSE(c->rope_scaling.has_value());
}

TEST(ParseCausalLmConfigTest, RefusesUnsupportedFieldsByName) {
  ExpectInvalid(LlamaWith("model_type", "\"gpt2\""),
                "config.json: model_type \"gpt2\" is not supported (llama, mistral, qwen2)");
  ExpectInvalid(LlamaWith("model_type", ""), "model_type is missing");
  ExpectInvalid(LlamaWith("hidden_act", "\"gelu\""), "hidden_act \"gelu\"");
  ExpectInvalid(LlamaWith("rope_scaling", R"({"type": "linear", "factor": 2.0})"),
                "rope_scaling type \"linear\" is not supported");
  ExpectInvalid(LlamaWith("rope_scaling", R"({"rope_type": "yarn", "factor": 2.0})"),
                "\"yarn\"");
  ExpectInvalid(LlamaWith("rope_scaling", R"({"rope_type": "dynamic", "factor": 2.0})"),
                "\"dynamic\"");
  ExpectInvalid(LlamaWith("rope_scaling", R"({"rope_type": "llama3", "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})"),
                "rope_scaling.factor is missing");
  ExpectInvalid(LlamaWith("rope_scaling", R"({"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
      "beta_fast": 32})"),
                "rope_scaling.beta_fast");
  ExpectInvalid(LlamaWith("quantization_config", R"({"quant_method": "gptq"})"),
                "\"quantization_config\" is not supported");
  ExpectInvalid(LlamaWith("sliding_window", "4096"), "\"sliding_window\"");
  ExpectInvalid(LlamaWith("attention_dropout", "0.1"), "attention_dropout");
  ExpectInvalid(LlamaWith("pretraining_tp", "2"), "pretraining_tp");
  ExpectInvalid(LlamaWith("num_key_value_heads", "5"), "num_key_value_heads 5 does not divide");
  ExpectInvalid(LlamaWith("vocab_size", "2000000"), "vocab_size 2000000 is outside");
  ExpectInvalid(LlamaWith("num_hidden_layers", "0"), "num_hidden_layers 0 is outside");
  ExpectInvalid(LlamaWith("num_hidden_layers", "\"32\""), "num_hidden_layers must be an integer");
  ExpectInvalid(LlamaWith("num_hidden_layers", "32.5"), "num_hidden_layers must be an integer");
  ExpectInvalid(LlamaWith("hidden_size", "4097"), "hidden_size 4097 is not divisible");
  ExpectInvalid(LlamaWith("torch_dtype", "\"float64\""), "torch_dtype \"float64\"");
  ExpectInvalid(LlamaWith("rms_norm_eps", "0"), "rms_norm_eps");
  ExpectInvalid(LlamaWith("tie_word_embeddings", "1"), "tie_word_embeddings must be true or false");
  ExpectInvalid(R"({"model_type": "mistral", "attention_bias": true})", "\"attention_bias\"");
  ExpectInvalid(R"({"model_type": "qwen2", "use_sliding_window": true, "sliding_window": null})",
                "use_sliding_window");
  ExpectInvalid("{not json", "config.json: not valid JSON");
  ExpectInvalid("[1, 2]", "config.json: not a JSON object");
}

// A config built in code survives CausalLmConfigToJson -> ParseCausalLmConfig; the JSON has
// the keys transformers reads.
TEST(CausalLmConfigToJsonTest, RoundTripsAndUsesHfKeys) {
  for (const char* text : {kLlama31_8B, kQwen25_05B, kMistral7B}) {
    absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(text);
    ASSERT_THAT(c, IsOk());
    const std::string json_text = CausalLmConfigToJson(*c);
    absl::StatusOr<CausalLmConfig> back = ParseCausalLmConfig(json_text);
    ASSERT_THAT(back, IsOk()) << json_text;
    EXPECT_EQ(back->model_type, c->model_type);
    EXPECT_EQ(back->vocab_size, c->vocab_size);
    EXPECT_EQ(back->hidden_size, c->hidden_size);
    EXPECT_EQ(back->intermediate_size, c->intermediate_size);
    EXPECT_EQ(back->num_hidden_layers, c->num_hidden_layers);
    EXPECT_EQ(back->num_attention_heads, c->num_attention_heads);
    EXPECT_EQ(back->num_key_value_heads, c->num_key_value_heads);
    EXPECT_EQ(back->head_dim, c->head_dim);
    EXPECT_EQ(back->max_position_embeddings, c->max_position_embeddings);
    EXPECT_EQ(back->rms_norm_eps, c->rms_norm_eps);
    EXPECT_EQ(back->rope_theta, c->rope_theta);
    EXPECT_EQ(back->rope_scaling.has_value(), c->rope_scaling.has_value());
    EXPECT_EQ(back->tie_word_embeddings, c->tie_word_embeddings);
    EXPECT_EQ(back->qkv_bias, c->qkv_bias);
    EXPECT_EQ(back->o_proj_bias, c->o_proj_bias);
    EXPECT_EQ(back->mlp_bias, c->mlp_bias);
    EXPECT_EQ(back->torch_dtype, c->torch_dtype);
    EXPECT_EQ(back->bos_token_id, c->bos_token_id);
    EXPECT_EQ(back->eos_token_ids, c->eos_token_ids);
    EXPECT_EQ(back->pad_token_id, c->pad_token_id);
    EXPECT_EQ(back->sliding_window, c->sliding_window);
  }
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(kLlama31_8B);
  ASSERT_THAT(c, IsOk());
  const nlohmann::json json = nlohmann::json::parse(CausalLmConfigToJson(*c));
  EXPECT_EQ(json["architectures"], nlohmann::json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(json["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(json["rope_scaling"]["original_max_position_embeddings"], 8192);
  EXPECT_EQ(json["attention_bias"], false);
  EXPECT_EQ(json["hidden_act"], "silu");
  c = ParseCausalLmConfig(kQwen25_05B);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(nlohmann::json::parse(CausalLmConfigToJson(*c))["architectures"][0],
            "Qwen2ForCausalLM");
  c = ParseCausalLmConfig(kMistral7B);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(nlohmann::json::parse(CausalLmConfigToJson(*c))["architectures"][0],
            "MistralForCausalLM");
}

TEST(ValidateCausalLmConfigTest, RefusesInconsistentBiases) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(kLlama31_8B);
  ASSERT_THAT(c, IsOk());
  c->qkv_bias = true;  // without o_proj_bias: not expressible as attention_bias
  EXPECT_THAT(ValidateCausalLmConfig(*c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attention_bias")));
  c = ParseCausalLmConfig(kQwen25_05B);
  ASSERT_THAT(c, IsOk());
  c->qkv_bias = false;
  EXPECT_THAT(ValidateCausalLmConfig(*c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("qwen2")));
}

// Written out by hand from Qwen2ForCausalLM's module tree: hidden 8, 2 heads of 4, 1 kv head,
// intermediate 12, vocab 10, tied.
TEST(ExpectedTensorsTest, Qwen2ByHand) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(
      R"({"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
          "tie_word_embeddings": true})");
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(Describe(ExpectedTensors(*c)),
              ElementsAre("model.embed_tokens.weight [10,8]",
                          "model.layers.0.self_attn.q_proj.weight [8,8]",
                          "model.layers.0.self_attn.q_proj.bias [8]",
                          "model.layers.0.self_attn.k_proj.weight [4,8]",
                          "model.layers.0.self_attn.k_proj.bias [4]",
                          "model.layers.0.self_attn.v_proj.weight [4,8]",
                          "model.layers.0.self_attn.v_proj.bias [4]",
                          "model.layers.0.self_attn.o_proj.weight [8,8]",
                          "model.layers.0.mlp.gate_proj.weight [12,8]",
                          "model.layers.0.mlp.up_proj.weight [12,8]",
                          "model.layers.0.mlp.down_proj.weight [8,12]",
                          "model.layers.0.input_layernorm.weight [8]",
                          "model.layers.0.post_attention_layernorm.weight [8]",
                          "model.norm.weight [8]"));
}

// Llama with attention_bias, mlp_bias and head_dim 4 (not 12 / 2), untied.
TEST(ExpectedTensorsTest, LlamaBiasesAndHeadDimByHand) {
  absl::StatusOr<CausalLmConfig> c = ParseCausalLmConfig(
      R"({"model_type": "llama", "vocab_size": 5, "hidden_size": 12, "intermediate_size": 7,
          "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 4,
          "attention_bias": true, "mlp_bias": true})");
  ASSERT_THAT(c, IsOk());
  EXPECT_THAT(Describe(ExpectedTensors(*c)),
              ElementsAre("model.embed_tokens.weight [5,12]",
                          "model.layers.0.self_attn.q_proj.weight [8,12]",
                          "model.layers.0.self_attn.q_proj.bias [8]",
                          "model.layers.0.self_attn.k_proj.weight [8,12]",
                          "model.layers.0.self_attn.k_proj.bias [8]",
                          "model.layers.0.self_attn.v_proj.weight [8,12]",
                          "model.layers.0.self_attn.v_proj.bias [8]",
                          "model.layers.0.self_attn.o_proj.weight [12,8]",
                          "model.layers.0.self_attn.o_proj.bias [12]",
                          "model.layers.0.mlp.gate_proj.weight [7,12]",
                          "model.layers.0.mlp.gate_proj.bias [7]",
                          "model.layers.0.mlp.up_proj.weight [7,12]",
                          "model.layers.0.mlp.up_proj.bias [7]",
                          "model.layers.0.mlp.down_proj.weight [12,7]",
                          "model.layers.0.mlp.down_proj.bias [12]",
                          "model.layers.0.input_layernorm.weight [12]",
                          "model.layers.0.post_attention_layernorm.weight [12]",
                          "model.norm.weight [12]", "lm_head.weight [5,12]"));
}

}  // namespace
}  // namespace tessera::lm
