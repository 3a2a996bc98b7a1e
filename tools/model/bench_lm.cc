#include "tools/model/bench_lm.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/text/text_data.h"
#include "client/lm/transformer/causal_lm.h"
#include "client/training/device.h"
#include "core/base/free_memory.h"
#include "core/base/status_macros.h"
#include "core/model/tensor.h"

namespace tessera {
namespace {

absl::StatusOr<lm::CausalLmConfig> BenchConfig(const BenchLmOptions& o) {
  lm::CausalLmConfig c;
  c.model_type = "llama";
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000;
  c.tie_word_embeddings = true;
  c.torch_dtype = "float32";
  if (o.preset == "tiny") {
    c.hidden_size = 128;
    c.intermediate_size = 352;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.vocab_size = 1024;
  } else if (o.preset == "100m") {
    c.hidden_size = 768;
    c.intermediate_size = 2048;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 12;
    c.num_key_value_heads = 4;
    c.vocab_size = 32000;
  } else if (o.preset ==
             "smollm2-135m") {  // HuggingFaceTB/SmolLM2-135M config.json
    c.hidden_size = 576;
    c.intermediate_size = 1536;
    c.num_hidden_layers = 30;
    c.num_attention_heads = 9;
    c.num_key_value_heads = 3;
    c.vocab_size = 49152;
    c.rope_theta = 100000;
  } else if (o.preset ==
             "llama-3.2-1b") {  // meta-llama/Llama-3.2-1B config.json
    c.hidden_size = 2048;
    c.intermediate_size = 8192;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.vocab_size = 128256;
    c.rope_theta = 500000;
    c.rope_scaling = lm::Llama3RopeScaling{32, 1, 4, 8192};
  } else if (!o.preset.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bench-lm: preset must be tiny, 100m, smollm2-135m or "
                     "llama-3.2-1b; got \"",
                     o.preset, "\""));
  }
  if (o.hidden_size > 0) c.hidden_size = o.hidden_size;
  if (o.intermediate_size > 0) c.intermediate_size = o.intermediate_size;
  if (o.num_layers > 0) c.num_hidden_layers = o.num_layers;
  if (o.num_heads > 0) c.num_attention_heads = o.num_heads;
  if (o.num_kv_heads > 0) c.num_key_value_heads = o.num_kv_heads;
  if (o.vocab_size > 0) c.vocab_size = o.vocab_size;
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.num_attention_heads > 0)
    c.head_dim = c.hidden_size / c.num_attention_heads;
  c.max_position_embeddings = std::max<int64_t>(o.seq_len, 2048);
  TESSERA_RETURN_IF_ERROR(lm::ValidateCausalLmConfig(c));
  return c;
}

int64_t Elements(const std::vector<lm::ExpectedTensor>& tensors) {
  int64_t n = 0;
  for (const lm::ExpectedTensor& t : tensors) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

// A /proc/self/status field in MiB ("VmHWM:  123456 kB"), or 0 when absent.
double StatusMib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, field + ":")) continue;
    std::istringstream value(line.substr(field.size() + 1));
    double kib = 0;
    value >> kib;
    return kib / 1024.0;
  }
  return 0;
}

// User + system CPU time of every thread of the process.
double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Resets VmHWM to the current VmRSS (proc(5): writing 5 to clear_refs, Linux
// >= 4.0).
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

// Uniformly random token sequences (labels = inputs: every position after the
// first is a target, as in packed pretraining-style text).
std::vector<lm::TokenizedExample> RandomExamples(size_t count, uint32_t length,
                                                 int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0,
                                               static_cast<int32_t>(vocab - 1));
  std::vector<lm::TokenizedExample> examples(count);
  for (lm::TokenizedExample& x : examples) {
    x.input_ids.resize(length);
    for (int32_t& id : x.input_ids) id = token(rng);
    x.labels = x.input_ids;
  }
  return examples;
}

}  // namespace

absl::StatusOr<BenchLmResult> BenchLm(const BenchLmOptions& o) {
  if (o.seq_len < 2 || o.batch_size == 0 || o.steps == 0) {
    return absl::InvalidArgumentError(
        "bench-lm: need seq_len >= 2, batch_size > 0 and steps > 0");
  }
  TESSERA_ASSIGN_OR_RETURN(lm::CausalLmConfig config, BenchConfig(o));
  if (!o.full_finetune) TESSERA_RETURN_IF_ERROR(lm::ValidateLoraConfig(o.lora));

  BenchLmResult r;
  r.preset = o.preset.empty() ? "custom" : o.preset;
  r.config = config;
  r.full_finetune = o.full_finetune;
  r.rank = o.full_finetune ? 0 : o.lora.rank;
  r.targets = o.full_finetune ? "" : absl::StrJoin(o.lora.target_modules, ",");
  r.seq_len = o.seq_len;
  r.batch_size = o.batch_size;
  r.warmup_steps = o.warmup_steps;
  r.base_parameters = Elements(lm::ExpectedTensors(config));
  const int64_t adapter_params = Elements(lm::AdapterTensors(config, o.lora));
  const int64_t sent_adapter_params =
      Elements(lm::TrainableAdapterTensors(config, o.lora));
  r.adapter_bytes = static_cast<uint64_t>(sent_adapter_params) * sizeof(float);
  r.full_bytes = static_cast<uint64_t>(r.base_parameters) * sizeof(float);
  r.adapter_fraction =
      static_cast<double>(r.adapter_bytes) / static_cast<double>(r.full_bytes);
  r.parameters = r.base_parameters + (o.full_finetune ? 0 : adapter_params);
  r.trainable_parameters =
      o.full_finetune ? r.base_parameters : sent_adapter_params;
  if (o.sizes_only) {
    r.device = "none";
    r.dtype = "float32";
    return r;
  }

  TESSERA_RETURN_IF_ERROR(SetTorchThreads(o.threads));
  r.threads = TorchThreads();
  std::optional<lm::LoraConfig> lora;
  if (!o.full_finetune) lora = o.lora;
  lm::LoadOptions load;
  load.device = o.device;
  load.dtype = o.dtype;
  std::unique_ptr<lm::CausalLm> model;
  {
    TESSERA_ASSIGN_OR_RETURN(
        lm::HfCheckpoint init,
        lm::InitializedCheckpoint(config, o.seed, "<bench-lm random init>"));
    TESSERA_ASSIGN_OR_RETURN(model,
                             lm::CausalLm::FromCheckpoint(init, lora, load));
  }  // the host copy of the weights is freed here...
  ReleaseFreeMemory();  // ...and handed back (core/base/free_memory.h)
  if (model->num_parameters() != r.parameters ||
      model->num_trainable_parameters() != r.trainable_parameters) {
    return absl::InternalError(absl::StrCat(
        "bench-lm: the model has ", model->num_parameters(), " parameters (",
        model->num_trainable_parameters(), " trainable); the tensor lists say ",
        r.parameters, " (", r.trainable_parameters, ")"));
  }
  r.device = model->device();
  r.dtype = o.dtype;
  const double load_peak = StatusMib("VmHWM");
  r.rss_after_load_mib = StatusMib("VmRSS");
  r.train_peak_reset = ResetPeakRss();

  const std::vector<lm::TokenizedExample> examples =
      RandomExamples(static_cast<size_t>(o.batch_size) * 4, o.seq_len,
                     config.vocab_size, o.seed + 1);
  lm::LmTrainOptions train;
  train.batch_size = o.batch_size;
  train.learning_rate = o.learning_rate;
  train.seed = o.seed;
  if (o.warmup_steps > 0) {
    train.steps = o.warmup_steps;
    TESSERA_RETURN_IF_ERROR(model->Train(examples, train).status());
  }
  train.steps = o.steps;
  train.seed = o.seed + 1;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds();
  TESSERA_ASSIGN_OR_RETURN(lm::LmTrainResult timed,
                           model->Train(examples, train));
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  r.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  r.steps = timed.steps;
  r.tokens = static_cast<uint64_t>(o.batch_size) * o.seq_len * timed.steps;
  r.tokens_per_second = static_cast<double>(r.tokens) / r.seconds;
  r.final_loss = timed.train_loss;

  r.train_peak_rss_mib = StatusMib("VmHWM");
  r.peak_rss_mib = r.train_peak_reset
                       ? std::max(load_peak, r.train_peak_rss_mib)
                       : r.train_peak_rss_mib;
  return r;
}

std::string FormatBenchLmResult(const BenchLmResult& r, bool json) {
  const lm::CausalLmConfig& c = r.config;
  if (json) {
    nlohmann::ordered_json j = {
        {"implementation", "tessera"},
        {"preset", r.preset},
        {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size},
        {"num_layers", c.num_hidden_layers},
        {"num_heads", c.num_attention_heads},
        {"num_kv_heads", c.num_key_value_heads},
        {"vocab_size", c.vocab_size},
        {"full_finetune", r.full_finetune},
        {"rank", r.rank},
        {"targets", r.targets},
        {"device", r.device},
        {"dtype", r.dtype},
        {"threads", r.threads},
        {"seq_len", r.seq_len},
        {"batch_size", r.batch_size},
        {"warmup_steps", r.warmup_steps},
        {"steps", r.steps},
        {"tokens", r.tokens},
        {"seconds", r.seconds},
        {"cpu_seconds", r.cpu_seconds},
        {"tokens_per_second", r.tokens_per_second},
        {"final_loss", r.final_loss},
        {"parameters", r.parameters},
        {"trainable_parameters", r.trainable_parameters},
        {"base_parameters", r.base_parameters},
        {"adapter_bytes", r.adapter_bytes},
        {"full_bytes", r.full_bytes},
        {"adapter_fraction", r.adapter_fraction},
        {"rss_after_load_mib", r.rss_after_load_mib},
        {"peak_rss_mib", r.peak_rss_mib},
        {"train_peak_rss_mib", r.train_peak_rss_mib},
        {"train_peak_reset", r.train_peak_reset}};
    return j.dump() + "\n";
  }
  std::string out = absl::StrFormat(
      "%s: hidden %d, intermediate %d, %d layers, %d heads (%d key/value), "
      "vocab %d: %d parameters, %d trainable (%s)\n"
      "bytes per round (float32): adapters %d, full model %d (%.3f%%)\n",
      r.preset, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
      c.num_attention_heads, c.num_key_value_heads, c.vocab_size, r.parameters,
      r.trainable_parameters,
      r.full_finetune ? "full fine-tuning"
                      : absl::StrCat("LoRA r=", r.rank, " on ", r.targets),
      r.adapter_bytes, r.full_bytes, 100.0 * r.adapter_fraction);
  if (r.steps == 0) return out;
  absl::StrAppendFormat(
      &out,
      "training on %s (%d threads, %s): %.1f tokens/s (%d steps of %u x %u "
      "tokens in %.2f s, %.2f CPU s, after %u warm-up steps, loss %.4f)\n"
      "memory: %.0f MiB after loading, peak %.0f MiB (training peak %.0f "
      "MiB%s)\n",
      r.device, r.threads, r.dtype, r.tokens_per_second, r.steps, r.batch_size,
      r.seq_len, r.seconds, r.cpu_seconds, r.warmup_steps, r.final_loss,
      r.rss_after_load_mib, r.peak_rss_mib, r.train_peak_rss_mib,
      r.train_peak_reset ? "" : ", not reset");
  return out;
}

}  // namespace tessera
