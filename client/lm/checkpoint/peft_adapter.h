// File: peft_adapter.h
// LoRA adapters (Hu et al., 2021) as configuration and as Hugging Face PEFT directories:
// adapter_config.json + adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained
// on the same base model.
//
// Tessera names adapter tensors after the module they adapt, as PEFT does without its
// "base_model.model." prefix: "model.layers.3.self_attn.q_proj.lora_A.weight" ([r, in]) and
// "...lora_B.weight" ([out, r]). The update of module W is (alpha / r) * B @ A.
#ifndef TESSERA_CLIENT_LM_CHECKPOINT_PEFT_ADAPTER_H_
#define TESSERA_CLIENT_LM_CHECKPOINT_PEFT_ADAPTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/lm/checkpoint/model_config.h"
#include "core/model/tensor.h"

namespace tessera::lm {

struct LoraConfig {
  uint32_t rank = 8;
  double alpha = 16;
  double dropout = 0;
  // Any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  // FFA-LoRA (Sun et al., ICLR 2024): A stays at its seeded initialization and only B is
  // trained (and sent).
  bool freeze_a = false;
  // Seeds A's initialization (kaiming-uniform with a = sqrt(5), as PEFT; B = 0).
  uint64_t init_seed = 0;
};

// Errors: INVALID_ARGUMENT naming the field (rank 0 or > 1024, alpha not finite and > 0,
// dropout outside [0, 1), an unknown or repeated target module, no target module).
absl::Status ValidateLoraConfig(const LoraConfig& lora);

// The adapter tensors for `config` (Tessera names, float32), layer by layer in module order
// (q, k, v, o, gate, up, down), A before B. With freeze_a, the A tensors are still listed
// here; TrainableAdapterTensors leaves them out.
std::vector<ExpectedTensor> AdapterTensors(const CausalLmConfig& config, const LoraConfig& lora);
// AdapterTensors without the lora_A tensors when lora.freeze_a (what is trained and sent).
std::vector<ExpectedTensor> TrainableAdapterTensors(const CausalLmConfig& config,
                                                    const LoraConfig& lora);

// Writes adapter_config.json (peft_type "LORA", task_type "CAUSAL_LM", r, lora_alpha,
// lora_dropout, target_modules, bias "none", base_model_name_or_path, fan_in_fan_out false,
// inference_mode true and PEFT's defaults for the other LoraConfig fields, sorted as PEFT
// writes them) and adapter_model.safetensors with PEFT's names ("base_model.model." +
// Tessera name) and metadata {"format": "pt"}. freeze_a and init_seed are not LoraConfig
// fields (older PEFT refuses unknown keys), so they go into the safetensors metadata as
// "tessera.lora.freeze_a" and "tessera.lora.init_seed". `adapter` must be exactly
// AdapterTensors(config, lora), float32. Errors: INVALID_ARGUMENT; I/O errors.
absl::Status WritePeftAdapter(const std::string& dir, const CausalLmConfig& config,
                              const LoraConfig& lora, const ArrayRecord& adapter,
                              const std::string& base_model_name_or_path);

struct PeftAdapter {
  LoraConfig lora;
  ArrayRecord adapter;  // Tessera names, float32
};
// Reads a PEFT LoRA directory written by Tessera or PEFT for a base with `config`; float16
// and bfloat16 adapters are converted to float32, target_modules come back in module order,
// freeze_a/init_seed from the metadata (false/0 when absent, as from PEFT).
// Errors: NOT_FOUND; INVALID_ARGUMENT naming the field or tensor (not LORA, unsupported
// options such as use_dora, rank_pattern or modules_to_save, missing/mis-shaped tensors).
absl::StatusOr<PeftAdapter> ReadPeftAdapter(const std::string& dir, const CausalLmConfig& config);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_CHECKPOINT_PEFT_ADAPTER_H_
