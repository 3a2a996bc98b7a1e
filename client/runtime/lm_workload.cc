#include "client/runtime/lm_workload.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/runtime/update_delta.h"
#include "core/base/status_macros.h"
#include "privacy/crypto/sha256.h"

namespace tessera {

lm::LoraConfig LoraFromSpec(const wire::v1::LoraSpec& spec) {
  lm::LoraConfig lora;
  lora.rank = spec.rank();
  lora.alpha = spec.alpha();
  lora.dropout = spec.dropout();
  lora.target_modules.assign(spec.target_modules().begin(), spec.target_modules().end());
  lora.freeze_a = spec.freeze_a();
  lora.init_seed = spec.init_seed();
  return lora;
}

lm::TextDataOptions TextOptionsFromSpec(const wire::v1::TextSpec& spec) {
  lm::TextDataOptions text;
  text.format = spec.format();
  text.prompt_template = spec.prompt_template();
  text.max_seq_length = spec.max_seq_length();
  text.packing = spec.packing();
  text.heldout_fraction = spec.heldout_fraction();
  return text;
}

LmWorkload::LmWorkload(LmWorkloadOptions options) : options_(std::move(options)) {}
LmWorkload::~LmWorkload() = default;

absl::Status LmWorkload::Ensure(const wire::v1::ModelSpec& spec) {
  const wire::v1::CausalLmSpec& lm_spec = spec.causal_lm();
  if (options_.base_checkpoint.empty()) {
    return absl::FailedPreconditionError(
        "this run fine-tunes a language model: start the client with --base-checkpoint DIR "
        "(its copy of the base model)");
  }
  if (options_.text_path.empty()) {
    return absl::FailedPreconditionError(
        "this run fine-tunes a language model: start the client with --data jsonl:FILE");
  }
  if (verified_sha256_.empty()) {
    TESSERA_ASSIGN_OR_RETURN(verified_sha256_, lm::CheckpointSha256(options_.base_checkpoint));
  }
  const std::string want = crypto::HexEncode(lm_spec.base_sha256());
  if (verified_sha256_ != want) {
    return absl::FailedPreconditionError(absl::StrCat(
        "base checkpoint ", options_.base_checkpoint, " has sha256 ", verified_sha256_,
        "; the run requires ", want, " (a different model or a modified copy)"));
  }
  const std::string model_key =
      absl::StrCat(want, "|", lm_spec.lora().SerializeAsString(), "|",
                   lm_spec.gradient_checkpointing());
  if (model_ == nullptr || model_key != model_key_) {
    lm::LoadOptions load;
    load.device = options_.device;
    load.gradient_checkpointing = lm_spec.gradient_checkpointing();
    TESSERA_ASSIGN_OR_RETURN(
        model_, lm::CausalLm::Load(options_.base_checkpoint, LoraFromSpec(lm_spec.lora()), load));
    model_key_ = model_key;
    LOG(INFO) << "language model " << model_->config().model_type << " from "
              << options_.base_checkpoint << " on " << model_->device() << ": "
              << model_->num_parameters() << " parameters, "
              << model_->num_trainable_parameters() << " trainable (LoRA rank "
              << lm_spec.lora().rank() << ")";
  }
  if (tokenizer_ == nullptr) {
    TESSERA_ASSIGN_OR_RETURN(tokenizer_, lm::LoadTokenizer(options_.base_checkpoint));
  }
  const std::string data_key = lm_spec.text().SerializeAsString();
  if (data_key != data_key_) {
    lm::TextDataOptions text = TextOptionsFromSpec(lm_spec.text());
    text.split_seed = options_.split_seed;
    TESSERA_ASSIGN_OR_RETURN(data_, lm::LoadTextData(options_.text_path, *tokenizer_, text));
    data_key_ = data_key;
    LOG(INFO) << "text data " << options_.text_path << ": " << data_.train_records
              << " train records -> " << data_.train.size() << " examples ("
              << data_.train_target_tokens << " target tokens), " << data_.heldout_records
              << " held-out records -> " << data_.heldout.size() << " examples";
  }
  if (data_.train.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.text_path, ": no training examples after the held-out split"));
  }
  return absl::OkStatus();
}

uint64_t LmWorkload::num_train_examples() const { return data_.train.size(); }

absl::StatusOr<EvalResult> LmWorkload::Evaluate(const ArrayRecord& global) {
  if (model_ == nullptr) return absl::FailedPreconditionError("no model loaded yet");
  TESSERA_RETURN_IF_ERROR(model_->SetAdapter(global));
  if (data_.heldout.empty()) {
    return absl::FailedPreconditionError(
        "no held-out examples to evaluate on (text.heldout_fraction is 0)");
  }
  TESSERA_ASSIGN_OR_RETURN(lm::LmEvalResult r, model_->Evaluate(data_.heldout));
  EvalResult out;
  out.loss = r.loss;
  out.accuracy = r.accuracy;
  out.num_examples = r.target_tokens;
  return out;
}

absl::StatusOr<ArrayRecord> LmWorkload::Train(const wire::v1::Task& task,
                                              const ArrayRecord& global, uint64_t seed,
                                              TrainResult* result) {
  if (model_ == nullptr) return absl::FailedPreconditionError("no model loaded yet");
  TESSERA_RETURN_IF_ERROR(model_->SetAdapter(global));
  const wire::v1::TrainConfig& t = task.train();
  lm::LmTrainOptions options;
  options.batch_size = t.batch_size();
  const uint64_t per_epoch = (data_.train.size() + t.batch_size() - 1) / t.batch_size();
  uint64_t steps = std::max<uint64_t>(1, t.local_epochs()) * per_epoch;
  if (t.max_steps() > 0) steps = std::min<uint64_t>(steps, t.max_steps());
  options.steps = static_cast<uint32_t>(steps);
  options.learning_rate = t.learning_rate();
  options.adam_beta1 = t.adam_beta1();
  options.adam_beta2 = t.adam_beta2();
  options.adam_epsilon = t.adam_epsilon();
  options.weight_decay = t.weight_decay();
  options.max_grad_norm = t.max_grad_norm();
  options.lr_schedule = t.lr_schedule().empty() ? "constant" : t.lr_schedule();
  options.warmup_steps = t.warmup_steps();
  // The schedule runs over the whole run: round r (1-based) takes steps
  // [(r - 1) * steps, r * steps) of rounds * steps.
  const uint64_t round = std::max<uint64_t>(1, task.round());
  options.first_step = (round - 1) * steps;
  options.total_steps = std::max<uint64_t>(task.total_rounds(), round) * steps;
  options.seed = seed;
  TESSERA_ASSIGN_OR_RETURN(lm::LmTrainResult r, model_->Train(data_.train, options));
  TESSERA_ASSIGN_OR_RETURN(ArrayRecord trained, model_->GetAdapter(/*trainable_only=*/true));
  result->num_examples = data_.train.size();
  result->train_loss = r.train_loss;
  result->steps = r.steps;
  result->examples_processed = r.steps * options.batch_size;
  result->seconds = r.seconds;
  return ComputeDelta(std::move(trained), global);
}

}  // namespace tessera
