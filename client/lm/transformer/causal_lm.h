// File: causal_lm.h
// A decoder-only language model of the Llama family (model_type llama, mistral, qwen2) loaded
// from a Hugging Face checkpoint directory, with LoRA adapters (Hu et al., 2021) on chosen
// projections: the one place that runs these models with LibTorch. The base weights are
// frozen (no gradients, no optimizer state); only the adapters are trained, and only they
// cross this boundary as tessera::ArrayRecord (peft_adapter.h names them).
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<CausalLm> lm,
//                            CausalLm::Load(dir, lora, {.device = "auto"}));
//   TESSERA_RETURN_IF_ERROR(lm->SetAdapter(global_adapter));
//   TESSERA_ASSIGN_OR_RETURN(LmTrainResult r, lm->Train(data.train, options));
//   TESSERA_ASSIGN_OR_RETURN(ArrayRecord update, lm->GetAdapter());
#ifndef TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_H_
#define TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/lm/checkpoint/model_config.h"
#include "client/lm/checkpoint/peft_adapter.h"
#include "client/lm/text/text_data.h"
#include "client/training/local_model.h"
#include "core/model/tensor.h"

namespace tessera::lm {

struct LoadOptions {
  // A ResolveDevice spec: "auto", "cpu", "cuda", "cuda:N".
  std::string device = "cpu";
  // The dtype the frozen base weights are kept and computed in: "auto" (float32 on the CPU;
  // on CUDA the checkpoint's torch_dtype when it is bfloat16 or float16, else float32),
  // "float32", "bfloat16", "float16". Adapters, norms' statistics, softmax and the loss are
  // always float32.
  std::string dtype = "auto";
  // Recompute each decoder layer's activations in the backward pass instead of keeping them
  // (memory for compute, as transformers' gradient_checkpointing_enable()).
  bool gradient_checkpointing = false;
};

struct LmTrainOptions {
  uint32_t batch_size = 8;
  // Optimizer steps this call takes (the examples are cycled in a fresh shuffled order per
  // pass).
  uint32_t steps = 10;
  double learning_rate = 2e-4;
  // AdamW (Loshchilov & Hutter, 2019) as torch.optim.AdamW: decoupled weight decay.
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double weight_decay = 0;
  // "constant", "linear" or "cosine" with linear warm-up (transformers'
  // get_{constant,linear,cosine}_schedule_with_warmup) over a run of total_steps steps, of
  // which this call is steps [first_step, first_step + steps).
  std::string lr_schedule = "constant";
  uint64_t warmup_steps = 0;
  uint64_t first_step = 0;
  uint64_t total_steps = 0;  // 0: first_step + steps
  // Clip the adapter gradient's global L2 norm to this before each step (0 = off). With
  // dp_sgd it clips the noised mean gradient (post-processing: it costs no privacy, and it
  // is not the per-example clip that DP-SGD's guarantee rests on).
  double max_grad_norm = 0;
  uint64_t seed = 0;  // shuffling and LoRA dropout
  std::function<void(double progress)> on_progress;
  // Set: record-level DP-SGD (tessera::DpSgdOptions, the image models' semantics; see
  // docs/privacy.md "Record-level DP-SGD"), where one record is one TokenizedExample (one
  // training sequence). Each of the `steps` steps Poisson-samples the examples with rate
  // q = expected_batch_size / n (n = examples.size()), takes each sampled example's
  // gradient over all trainable tensors (the adapters; every base weight without LoRA) of
  // its own loss, the mean cross-entropy over that example's target tokens (an example
  // without targets has a zero gradient), clips it jointly to L2 norm clip_norm (factor
  // min(1, C / (||g|| + 1e-6))), sums, adds N(0, (noise_multiplier * clip_norm)^2) to
  // every coordinate from a dp::SecureRandom CSPRNG, divides by expected_batch_size, and
  // hands that gradient to AdamW (weight decay, the schedule and max_grad_norm act on it
  // as post-processing). batch_size is unused; the caller chooses `steps`
  // (DpSgdSteps(n, epochs, B, max_steps) for the image models' step count) and charges its
  // accountant for `steps` steps at q.
  // Per-example gradients are one batch-of-1 backward pass per sampled example
  // (max_physical_batch is checked but changes nothing). LoRA dropout stays on (its masks
  // come from `seed`, not from the CSPRNG: they do not affect the guarantee).
  std::optional<DpSgdOptions> dp_sgd;
};

struct LmTrainResult {
  uint64_t steps = 0;
  uint64_t target_tokens = 0;   // loss terms over all steps
  double train_loss = 0;        // mean over steps of the step's token-mean loss
  double seconds = 0;
  double last_learning_rate = 0;
  // DP-SGD only (kept local: none of these is differentially private, and neither are
  // target_tokens and train_loss, which are then over the sampled examples, train_loss
  // being the mean of their per-example losses): the Poisson sampling rate q, the summed
  // sample sizes over all steps, and how many sampled examples had a gradient norm above
  // clip_norm.
  double sampling_rate = 0;
  uint64_t sampled_examples = 0;
  uint64_t clipped_examples = 0;
};

struct LmEvalResult {
  uint64_t target_tokens = 0;
  double loss = 0;  // mean token-level cross-entropy (nats)
  double perplexity = 0;  // exp(loss)
  double accuracy = 0;    // fraction of targets that are the arg-max next token
};

struct GenerateOptions {
  uint32_t max_new_tokens = 64;
  // 0: greedy. Otherwise sample from softmax(logits / temperature) restricted to the
  // smallest set of tokens whose probability reaches top_p (nucleus sampling).
  double temperature = 0;
  double top_p = 1;
  uint64_t seed = 0;
  // Stop at any of these ids (default: the checkpoint's eos_token_ids).
  std::vector<int64_t> stop_ids;
};

class CausalLm {
 public:
  // Reads the checkpoint (ReadHfCheckpoint) and adds LoRA adapters as `lora` says (A drawn
  // from lora.init_seed as PEFT's kaiming-uniform, B = 0), so the model starts equal to the
  // base. A LoraConfig with no target modules is not allowed; use `lora = std::nullopt` for
  // the plain base model (full fine-tuning trains every base weight then).
  // Errors: as ReadHfCheckpoint and ValidateLoraConfig; INVALID_ARGUMENT for a bad device
  // or dtype; FAILED_PRECONDITION for CUDA without a GPU.
  static absl::StatusOr<std::unique_ptr<CausalLm>> Load(const std::string& dir,
                                                        const std::optional<LoraConfig>& lora,
                                                        const LoadOptions& options = {});
  // From weights already in memory (tests, the simulator's shared base).
  static absl::StatusOr<std::unique_ptr<CausalLm>> FromCheckpoint(
      const HfCheckpoint& checkpoint, const std::optional<LoraConfig>& lora,
      const LoadOptions& options = {});

  CausalLm(const CausalLm&) = delete;
  CausalLm& operator=(const CausalLm&) = delete;
  ~CausalLm();

  // A second model that shares this one's frozen base weights (no copy) with its own
  // adapters, equal to this one's now: the simulator's virtual clients. Not for full
  // fine-tuning (FAILED_PRECONDITION without LoRA).
  absl::StatusOr<std::unique_ptr<CausalLm>> ShareBase() const;

  const CausalLmConfig& config() const;
  const std::optional<LoraConfig>& lora() const;
  std::string device() const;

  // The adapter tensors (AdapterTensors order, float32 CPU copies), or with trainable_only
  // those Train changes (without A when lora.freeze_a).
  absl::StatusOr<ArrayRecord> GetAdapter(bool trainable_only = false) const;
  // Sets adapter tensors by name: every trainable tensor must be present; A tensors may be
  // left out when freeze_a. Nothing changes on error.
  // Errors: INVALID_ARGUMENT naming a missing, unknown, mis-shaped, non-float32 or
  // non-finite tensor.
  absl::Status SetAdapter(const ArrayRecord& adapter);

  // Trainable parameter elements (adapters; all base weights without LoRA) and all.
  int64_t num_trainable_parameters() const;
  int64_t num_parameters() const;

  // Logits [batch, seq, vocab] (float32, row-major) for a batch of equal-length sequences.
  // Errors: INVALID_ARGUMENT for ragged or empty input, ids outside the vocabulary, or a
  // sequence longer than max_position_embeddings (or the sliding window).
  absl::StatusOr<std::vector<float>> Logits(const std::vector<std::vector<int32_t>>& ids);

  // AdamW on the mean token-level cross-entropy of each batch of examples (right-padded; the
  // padding is never attended to because attention is causal, and is not a target).
  // With options.dp_sgd, record-level DP-SGD instead (see LmTrainOptions::dp_sgd).
  // Errors: INVALID_ARGUMENT for no examples, steps or batch_size 0, ids outside the
  // vocabulary, an unknown schedule, non-finite hyperparameters, a non-finite loss; with
  // dp_sgd also a noise_multiplier or clip_norm that is not finite and > 0, an
  // expected_batch_size below 1 or above the number of examples, max_physical_batch 0, or a
  // random_seed that is neither empty nor 32 bytes.
  absl::StatusOr<LmTrainResult> Train(const std::vector<TokenizedExample>& examples,
                                      const LmTrainOptions& options);
  // Token-level loss over the examples' targets, without gradients.
  absl::StatusOr<LmEvalResult> Evaluate(const std::vector<TokenizedExample>& examples,
                                        uint32_t batch_size = 8);

  // Continues `prompt` (ids) with a KV cache. Returns the new ids only.
  absl::StatusOr<std::vector<int32_t>> Generate(const std::vector<int32_t>& prompt,
                                                const GenerateOptions& options);

  // The base weights with the adapters merged (W + (alpha / r) B A), in the checkpoint's
  // names and stored dtype (float32 computation): a full checkpoint for WriteHfCheckpoint.
  absl::StatusOr<ArrayRecord> MergedWeights() const;

 private:
  class Impl;
  explicit CausalLm(std::unique_ptr<Impl> impl);
  // FromCheckpoint; with `release` (the checkpoint's own weights), each host tensor is freed
  // as soon as it is on the device, so loading peaks near one copy of the model, not two.
  static absl::StatusOr<std::unique_ptr<CausalLm>> Build(const HfCheckpoint& checkpoint,
                                                        ArrayRecord* release,
                                                        const std::optional<LoraConfig>& lora,
                                                        const LoadOptions& options);
  // Train's DP-SGD loop (lm_train.cc), after the options and examples are checked.
  absl::StatusOr<LmTrainResult> TrainDpSgd(const std::vector<TokenizedExample>& examples,
                                           const LmTrainOptions& options);
  std::unique_ptr<Impl> impl_;
};

// The learning rate at global step `step` (0-based) of `total_steps`, as transformers'
// schedulers: step < warmup: lr * step / warmup; then constant, linear decay
// lr * (total - step) / (total - warmup), or cosine lr * 0.5 * (1 + cos(pi * progress)).
// Errors: INVALID_ARGUMENT for an unknown schedule name.
absl::StatusOr<double> ScheduledLearningRate(absl::string_view schedule, double base_lr,
                                             uint64_t step, uint64_t warmup_steps,
                                             uint64_t total_steps);

}  // namespace tessera::lm

#endif  // TESSERA_CLIENT_LM_TRANSFORMER_CAUSAL_LM_H_
