// File: peft_adapter_fuzz.cc
// Fuzzes reading a PEFT LoRA adapter directory (client/lm/checkpoint): ReadPeftAdapter on
// adapter_config.json and adapter_model.safetensors for a fixed small Llama base.
// Input: adapter_config.json, kFileSeparator, adapter_model.safetensors.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/lm/checkpoint/model_config.h"
#include "client/lm/checkpoint/peft_adapter.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// The base of client/lm/testing/hf_reference.py's "llama" variant, whose adapter the seeds
// hold.
const tessera::lm::CausalLmConfig& Base() {
  static const tessera::lm::CausalLmConfig* config = [] {
    absl::StatusOr<tessera::lm::CausalLmConfig> c = tessera::lm::ParseCausalLmConfig(R"({
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 61,
      "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
      "rms_norm_eps": 1e-05, "rope_theta": 100.0, "tie_word_embeddings": false,
      "hidden_act": "silu", "torch_dtype": "float32"})");
    tessera::fuzz::Check(c.ok(), "the base config parses");
    return new tessera::lm::CausalLmConfig(*std::move(c));
  }();
  return *config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::fuzz::Check;
  const std::vector<std::string> files = tessera::fuzz::SplitFiles(data, size);
  tessera::fuzz::TempDir dir;
  dir.Write("adapter_config.json", files[0]);
  if (files.size() > 1) dir.Write("adapter_model.safetensors", files[1]);
  absl::StatusOr<tessera::lm::PeftAdapter> adapter =
      tessera::lm::ReadPeftAdapter(dir.path(), Base());
  tessera::fuzz::Report(adapter.status());
  if (!adapter.ok()) return 0;
  Check(tessera::lm::ValidateLoraConfig(adapter->lora).ok(), "a read LoRA config is valid");
  const std::vector<tessera::lm::ExpectedTensor> expected =
      tessera::lm::AdapterTensors(Base(), adapter->lora);
  Check(expected.size() == adapter->adapter.tensors.size(), "exactly the adapter tensors");
  return 0;
}
