// File: lm_commands.h
// tessera-model's language-model commands (docs/llm.md):
//   hash      the base checkpoint identity a run config names (model.causal_lm.base_sha256)
//   lora-init the initial adapter a run starts from (model.initial_weights)
//   generate  look at what a (federated) adapter does: greedy or top-p, with a KV cache
//   export    a federated adapter as a PEFT directory, and optionally merged weights
//   pretrain  a tiny Llama-architecture base model from scratch (demos: no checkpoint can be
//             downloaded on these machines)
#ifndef TESSERA_TOOLS_MODEL_LM_COMMANDS_H_
#define TESSERA_TOOLS_MODEL_LM_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/lm/checkpoint/peft_adapter.h"
#include "client/lm/text/text_data.h"
#include "client/lm/transformer/causal_lm.h"

namespace tessera {

// The LoRA and text settings of a run configuration's [model.causal_lm] (so that the tools
// use exactly what the run's clients use).
struct LmRunSettings {
  lm::LoraConfig lora;
  lm::TextDataOptions text;
};
// Errors: those of the run configuration parser; INVALID_ARGUMENT when it has no
// [model.causal_lm].
absl::StatusOr<LmRunSettings> LmSettingsFromRunConfig(const std::string& path);

// Hex SHA-256 identity of a checkpoint directory (CheckpointSha256).
absl::StatusOr<std::string> LmHash(const std::string& checkpoint);

// Writes the adapter tensors a run federates (A and B, or B alone with freeze_a) at their
// initialization from lora.init_seed, as safetensors with the LoRA settings in its metadata.
absl::Status LoraInit(const std::string& checkpoint, const lm::LoraConfig& lora,
                      const std::string& out);

struct GenerateCommandOptions {
  std::string checkpoint;
  // A PEFT adapter directory, or a .safetensors adapter a run produced (then `lora` says
  // its shape; FFA-LoRA's A is regenerated from lora.init_seed). Empty: the base model.
  std::string adapter;
  lm::LoraConfig lora;
  std::string prompt;
  // Render `prompt` as a user turn with the checkpoint's chat template (tokenizer_config.json
  // "chat_template", add_generation_prompt) instead of continuing it as plain text.
  bool chat = false;
  uint32_t max_new_tokens = 64;
  double temperature = 0;
  double top_p = 1;
  uint64_t seed = 0;
  std::string device = "auto";
};
// The generated continuation (text).
absl::StatusOr<std::string> Generate(const GenerateCommandOptions& options);

struct ExportCommandOptions {
  std::string checkpoint;
  std::string adapter;  // .safetensors from a run (tessera model export / the final model)
  lm::LoraConfig lora;
  std::string peft_out;    // PEFT adapter directory to write
  std::string merged_out;  // optional: merged full checkpoint directory (+ tokenizer files)
  std::string base_name;   // base_model_name_or_path in adapter_config.json
};
absl::Status ExportLm(const ExportCommandOptions& options);

struct EvalCommandOptions {
  std::string checkpoint;
  std::string adapter;  // as GenerateCommandOptions::adapter; empty: the base model
  lm::LoraConfig lora;
  std::string data;  // JSONL
  lm::TextDataOptions text;
  std::string device = "auto";
};
// Token-level loss and perplexity on the held-out split of `data`, split exactly as a client
// splits its data (the same seed), so that the numbers are those a client reports.
absl::StatusOr<lm::LmEvalResult> EvalLm(const EvalCommandOptions& options);

struct PretrainOptions {
  std::vector<std::string> corpus;  // JSONL files with "text" records
  std::string out;
  int32_t vocab_size = 1024;
  int64_t hidden_size = 128;
  int64_t intermediate_size = 352;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  uint32_t max_seq_length = 128;
  uint32_t steps = 300;
  uint32_t batch_size = 16;
  double learning_rate = 3e-3;
  uint64_t seed = 1;
  std::string device = "auto";
};
// Trains a byte-level BPE tokenizer and a randomly initialized Llama model on the corpus and
// writes a Hugging Face checkpoint directory (config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json, generation_config.json, README.md model card).
absl::Status Pretrain(const PretrainOptions& options);

}  // namespace tessera

#endif  // TESSERA_TOOLS_MODEL_LM_COMMANDS_H_
