// File: model_config.h
// The architecture of a decoder-only Hugging Face checkpoint, from its config.json
// (model_type llama, mistral or qwen2), and the tensors such a checkpoint must hold.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(dir + "/config.json"));
//   TESSERA_ASSIGN_OR_RETURN(CausalLmConfig config, ParseCausalLmConfig(text));
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_MODEL_CONFIG_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tessera::lm {

// Llama 3.1's "rope_scaling": {"rope_type": "llama3", ...} (the only scaling supported; a
// config with another rope_type, e.g. "linear", "dynamic" or "yarn", is refused by name).
struct Llama3RopeScaling {
  double factor = 8;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
};

struct CausalLmConfig {
  std::string model_type;  // "llama", "mistral" or "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads when absent
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  std::optional<Llama3RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  // Biases on q/k/v projections (qwen2 always; llama's "attention_bias" also puts one on
  // o_proj, see o_proj_bias).
  bool qkv_bias = false;
  bool o_proj_bias = false;
  bool mlp_bias = false;
  std::string torch_dtype = "float32";  // "float32", "float16" or "bfloat16"
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // "eos_token_id" may be a number or a list
  std::optional<int64_t> pad_token_id;
  // mistral / qwen2: attention window; sequences longer than it are refused at run time.
  std::optional<int64_t> sliding_window;
};

// Parses config.json. Accepts the fields Hugging Face's LlamaConfig, MistralConfig and
// Qwen2Config define; fields that do not change the computation (e.g. "architectures",
// "transformers_version", "initializer_range", "use_cache") are ignored; any field that
// would change it and is not supported (hidden_act other than "silu", rope_scaling other
// than llama3, pretraining_tp > 1, attention_dropout other than 0, quantization_config, or
// any field not known to be harmless) is refused. Absent fields take transformers' defaults
// for the model_type. A sliding window (mistral's "sliding_window", qwen2's with
// "use_sliding_window": true) is kept in `sliding_window`: longer sequences are refused at
// run time, so the window never changes the computation. transformers 5's "rope_parameters"
// and "dtype" are read like "rope_theta"/"rope_scaling" and "torch_dtype".
// Errors: INVALID_ARGUMENT naming the field, e.g.
// "config.json: model_type \"gpt2\" is not supported (llama, mistral, qwen2)".
absl::StatusOr<CausalLmConfig> ParseCausalLmConfig(absl::string_view json_text);

// The range and consistency checks ParseCausalLmConfig applies (positive sizes under the
// kMax* bounds, heads divisible by key/value heads, even head_dim, qwen2 with q/k/v biases
// and no o_proj bias, llama with both or neither, mistral with none, ...), for configs built
// in code. Errors: INVALID_ARGUMENT naming the field.
absl::Status ValidateCausalLmConfig(const CausalLmConfig& config);

// Upper bounds on what a config may ask for (far above published models; they keep a
// corrupt config from asking for absurd allocations).
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 20;
inline constexpr int64_t kMaxHiddenSize = 65536;
inline constexpr int64_t kMaxIntermediateSize = int64_t{1} << 20;
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 1024;
inline constexpr int64_t kMaxPositionEmbeddings = int64_t{1} << 24;

// config.json for `config` in Hugging Face's layout (with "architectures":
// ["LlamaForCausalLM"] etc.), so that transformers' AutoModelForCausalLM loads it.
std::string CausalLmConfigToJson(const CausalLmConfig& config);

// The tensors a checkpoint of this architecture holds, in Hugging Face's names and
// state_dict order: model.embed_tokens.weight; per layer N, model.layers.N.
// self_attn.{q,k,v,o}_proj.weight (each followed by its .bias when configured),
// mlp.{gate,up,down}_proj.weight (and biases with mlp_bias), input_layernorm.weight,
// post_attention_layernorm.weight; then model.norm.weight and lm_head.weight (absent when
// tied). Shapes are [out, in] as in torch.nn.Linear.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<ExpectedTensor> ExpectedTensors(const CausalLmConfig& config);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_MODEL_CONFIG_H_
