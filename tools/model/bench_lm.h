// File: bench_lm.h
// Language-model fine-tuning benchmark (docs/llm.md, issue 18): tokens/s of
// AdamW steps on a randomly initialized Llama-architecture model (LoRA, or full
// fine-tuning), the bytes a client sends per round (adapters vs the full model)
// and the process's peak resident memory. scripts/bench_lm.py runs it next to
// the same model in plain PyTorch eager.
//
// Example:
//   BenchLmOptions o;
//   o.preset = "100m";
//   TESSERA_ASSIGN_OR_RETURN(BenchLmResult r, BenchLm(o));
//   std::cout << FormatBenchLmResult(r, /*json=*/true);
#ifndef TESSERA_TOOLS_MODEL_BENCH_LM_H_
#define TESSERA_TOOLS_MODEL_BENCH_LM_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/lm/checkpoint/model_config.h"
#include "client/lm/checkpoint/peft_adapter.h"

namespace tessera {

struct BenchLmOptions {
  // "tiny": hidden 128, intermediate 352, 4 layers, 4 heads (2 key/value),
  // vocab 1024
  //   (the `pretrain` demo model, 0.8M parameters).
  // "100m": hidden 768, intermediate 2048, 12 layers, 12 heads (4 key/value),
  // vocab 32000,
  //   tied embeddings (100.1M parameters).
  // "smollm2-135m", "llama-3.2-1b": the published configs (sizes only is
  // sensible for 1B).
  std::string preset = "tiny";
  // Non-zero values override the preset's.
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t vocab_size = 0;

  uint32_t seq_len = 128;
  uint32_t batch_size = 8;
  uint32_t warmup_steps = 2;
  uint32_t steps = 10;  // timed
  double learning_rate = 1e-4;
  lm::LoraConfig lora;         // rank 8, alpha 16, q_proj,v_proj
  bool full_finetune = false;  // every base weight trained, no adapters
  int threads = 0;  // LibTorch intra-op threads; 0 = LibTorch's default
  std::string device = "cpu";
  std::string dtype = "auto";  // LoadOptions::dtype
  uint64_t seed = 1;           // weights and tokens
  // Only the configuration's sizes (parameters, bytes per round): no model is
  // built.
  bool sizes_only = false;
};

struct BenchLmResult {
  std::string preset;
  lm::CausalLmConfig config;
  bool full_finetune = false;
  uint32_t rank = 0;
  std::string targets;  // "q_proj,v_proj"
  std::string device;
  std::string dtype;
  int threads = 0;
  uint32_t seq_len = 0;
  uint32_t batch_size = 0;
  uint32_t warmup_steps = 0;
  uint64_t steps = 0;
  uint64_t tokens = 0;     // batch_size * seq_len * steps
  double seconds = 0;      // the timed steps only
  double cpu_seconds = 0;  // process CPU time (all threads) of the timed steps
  double tokens_per_second = 0;
  double final_loss = 0;
  int64_t parameters = 0;  // base weights + adapters
  int64_t trainable_parameters =
      0;  // adapters (trainable ones), or all base weights
  int64_t base_parameters = 0;
  // Bytes a client sends per round, float32: the trainable adapter tensors (A
  // and B), and the full model (every base weight, a tied head once).
  uint64_t adapter_bytes = 0;
  uint64_t full_bytes = 0;
  double adapter_fraction = 0;  // adapter_bytes / full_bytes
  // /proc/self/status in MiB: VmRSS after the model is built (the in-memory
  // checkpoint freed), VmHWM of the whole process, and VmHWM of the training
  // alone (the peak is reset through /proc/self/clear_refs after loading; equal
  // to peak_rss_mib when that fails).
  double rss_after_load_mib = 0;
  double peak_rss_mib = 0;
  double train_peak_rss_mib = 0;
  bool train_peak_reset = false;
};

// Errors: INVALID_ARGUMENT for an unknown preset, an invalid configuration or
// options; errors of CausalLm::FromCheckpoint and Train.
absl::StatusOr<BenchLmResult> BenchLm(const BenchLmOptions& options);

// One JSON object per line with --json; else a few lines of text.
std::string FormatBenchLmResult(const BenchLmResult& result, bool json);

}  // namespace tessera

#endif  // TESSERA_TOOLS_MODEL_BENCH_LM_H_
