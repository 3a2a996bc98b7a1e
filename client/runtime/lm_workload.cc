#include "client/runtime/lm_workload.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "client/lm/checkpoint/hf_checkpoint.h"
#include "client/runtime/update_delta.h"
#include "core/base/status_macros.h"
#include "core/crypto/sha256.h"

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

namespace {

// What changes when a checkpoint's files change: their names, sizes and modification times
// (following symlinks, as CheckpointSha256 does). Empty when the directory cannot be listed.
std::string DirectoryFingerprint(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> entries;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code e;
    const std::filesystem::path p = it->path();
    if (!std::filesystem::is_regular_file(p, e)) continue;
    const uintmax_t size = std::filesystem::file_size(p, e);
    const auto mtime = std::filesystem::last_write_time(p, e).time_since_epoch().count();
    entries.push_back(absl::StrCat(p.filename().string(), "\t", size, "\t", mtime, "\n"));
  }
  if (ec) return "";
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const std::string& e : entries) out += e;
  return out;
}

}  // namespace

LmBaseCache& LmBaseCache::Global() {
  static LmBaseCache* cache = new LmBaseCache();
  return *cache;
}

absl::StatusOr<std::string> LmBaseCache::Sha256(const std::string& dir) {
  const std::string fingerprint = DirectoryFingerprint(dir);
  absl::MutexLock l(&mu_);
  auto it = hashes_.find(dir);
  if (!fingerprint.empty() && it != hashes_.end() && it->second.first == fingerprint) {
    return it->second.second;
  }
  ++stats_.hashes;
  TESSERA_ASSIGN_OR_RETURN(std::string sha256, lm::CheckpointSha256(dir));
  if (!fingerprint.empty()) hashes_[dir] = {fingerprint, sha256};
  return sha256;
}

absl::StatusOr<std::shared_ptr<const lm::CausalLm>> LmBaseCache::Base(
    const std::string& dir, const std::string& sha256, const wire::v1::LoraSpec& lora,
    const lm::LoadOptions& options) {
  const std::string key =
      absl::StrCat(dir, "|", sha256, "|", lora.SerializeAsString(), "|", options.device, "|",
                   options.dtype, "|", options.gradient_checkpointing);
  absl::MutexLock l(&mu_);
  if (std::shared_ptr<const lm::CausalLm> held = models_[key].lock()) {
    ++stats_.model_hits;
    return held;
  }
  ++stats_.model_loads;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::CausalLm> loaded,
                           lm::CausalLm::Load(dir, LoraFromSpec(lora), options));
  std::shared_ptr<const lm::CausalLm> model(std::move(loaded));
  models_[key] = model;
  // Forget the entries nobody holds any more.
  for (auto it = models_.begin(); it != models_.end();) {
    it = it->second.expired() ? models_.erase(it) : std::next(it);
  }
  return model;
}

absl::StatusOr<std::shared_ptr<const lm::Tokenizer>> LmBaseCache::Tokenizer(
    const std::string& dir, const std::string& sha256) {
  const std::string key = absl::StrCat(dir, "|", sha256);
  absl::MutexLock l(&mu_);
  if (std::shared_ptr<const lm::Tokenizer> held = tokenizers_[key].lock()) return held;
  ++stats_.tokenizer_loads;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<lm::Tokenizer> loaded, lm::LoadTokenizer(dir));
  std::shared_ptr<const lm::Tokenizer> tokenizer(std::move(loaded));
  tokenizers_[key] = tokenizer;
  for (auto it = tokenizers_.begin(); it != tokenizers_.end();) {
    it = it->second.expired() ? tokenizers_.erase(it) : std::next(it);
  }
  return tokenizer;
}

LmBaseCache::Stats LmBaseCache::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

LmWorkload::LmWorkload(LmWorkloadOptions options, LmBaseCache* cache)
    : options_(std::move(options)), cache_(cache != nullptr ? cache : &LmBaseCache::Global()) {}
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
    TESSERA_ASSIGN_OR_RETURN(verified_sha256_, cache_->Sha256(options_.base_checkpoint));
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
    model_.reset();
    base_.reset();
    TESSERA_ASSIGN_OR_RETURN(
        base_, cache_->Base(options_.base_checkpoint, want, lm_spec.lora(), load));
    TESSERA_ASSIGN_OR_RETURN(model_, base_->ShareBase());
    model_key_ = model_key;
    LOG(INFO) << "language model " << model_->config().model_type << " from "
              << options_.base_checkpoint << " on " << model_->device() << ": "
              << model_->num_parameters() << " parameters, "
              << model_->num_trainable_parameters() << " trainable (LoRA rank "
              << lm_spec.lora().rank() << ")";
  }
  if (tokenizer_ == nullptr) {
    TESSERA_ASSIGN_OR_RETURN(tokenizer_, cache_->Tokenizer(options_.base_checkpoint, want));
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
  if (task.dp().record().enabled()) {
    // Record-level DP-SGD (docs/llm.md, "Privacy"): one record is one training sequence; the
    // steps are those ChargeSiteBudget charged the site's ledger for (DpSgdSteps over the
    // same n), so the ledger and the training agree.
    const wire::v1::RecordDpConfig& rec = task.dp().record();
    DpSgdOptions dp;
    dp.noise_multiplier = rec.noise_multiplier();
    dp.clip_norm = rec.clip_norm();
    dp.expected_batch_size = rec.expected_batch_size();
    dp.max_physical_batch = rec.max_physical_batch();
    options.dp_sgd = dp;
    steps = DpSgdSteps(data_.train.size(), t.local_epochs(), rec.expected_batch_size(),
                       t.max_steps());
    options.steps = static_cast<uint32_t>(steps);
    options.first_step = (round - 1) * steps;
    options.total_steps = std::max<uint64_t>(task.total_rounds(), round) * steps;
  }
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
